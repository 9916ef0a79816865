#include "edi/report/status.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "edi/core/context.hpp"
#include "edi/core/error.hpp"

namespace edi::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Modification time of `p` in seconds since the epoch, if it exists.
std::optional<double> mtime(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  return static_cast<double>(st.st_mtim.tv_sec) + 1e-9 * static_cast<double>(st.st_mtim.tv_nsec);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string iso_utc(double t) {
  const std::time_t s = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// A committed JSON file, or null when absent or unreadable (a torn read cannot
/// happen: writers rename into place, so a parse failure means a bad file).
json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return json();
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  return j.is_discarded() ? json() : j;
}

std::string first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

/// The pid holding a lock on `p` on this machine (from /proc/locks), if any.
std::optional<long> lock_holder(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  std::ifstream locks("/proc/locks");
  char want[64];
  std::snprintf(want, sizeof want, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  for (std::string line; std::getline(locks, line);) {
    // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"; waiters are marked "->".
    if (line.find("->") != std::string::npos) continue;
    std::istringstream f(line);
    std::string id, kind, mode, rw, pid, where;
    if (!(f >> id >> kind >> mode >> rw >> pid >> where)) continue;
    if (where == want) return std::stol(pid);
  }
  return std::nullopt;
}

/// Whether the lock file names this host as a whole word (the runner writes host and pid into it).
bool lock_names_this_host(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str(), host = host_name();
  if (host.empty()) return false;
  for (auto pos = s.find(host); pos != std::string::npos; pos = s.find(host, pos + 1)) {
    const auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'; };
    const bool left = pos == 0 || !word(s[pos - 1]);
    const bool right = pos + host.size() == s.size() || !word(s[pos + host.size()]);
    if (left && right) return true;
  }
  return false;
}

/// Newest modification time of the committed progress files: provenance.json and
/// the non-hidden files in checkpoints/ (temp files of writers are hidden).
std::optional<double> newest_progress(const fs::path& dir) {
  std::optional<double> newest = mtime(dir / "provenance.json");
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir / "checkpoints", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (auto t = mtime(it->path()); t && (!newest || *t > *newest)) newest = t;
  }
  return newest;
}

std::string config_value(const json& prov, const char* key, const std::string& fallback) {
  if (prov.is_object() && prov.contains("config") && prov["config"].is_object() && prov["config"].contains(key) &&
      prov["config"][key].is_string())
    return prov["config"][key].get<std::string>();
  return fallback;
}

/// The loop's pass limit as the runner computes it (0 for runs without passes).
int pass_limit(const json& prov, const std::string& method) {
  if (method != "edi") return 0;
  const std::string stop = config_value(prov, "stop", "image");
  const std::string v = stop == "fixed" ? config_value(prov, "passes", "10") : config_value(prov, "max-passes", "50");
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  return *end == '\0' && n >= 0 ? static_cast<int>(n) : 50;
}

/// Pass, counts, risk and ETA from the pass history in checkpoints/run.json.
void read_history(const fs::path& dir, const json& prov, RunProgress& st) {
  const json run = read_json(dir / "checkpoints" / "run.json");
  if (!run.is_object() || !run.contains("passes") || !run["passes"].is_array() || run["passes"].empty()) return;
  double seconds = 0;
  for (const auto& p : run["passes"]) seconds += p.value("seconds", 0.0);
  const json& last = run["passes"].back();
  st.pass = last.value("pass", -1);
  st.active = last.value("active", -1LL);
  st.identified = last.value("identified", -1LL);
  st.total = last.value("total", -1LL);
  if (last.contains("risk_percent") && last["risk_percent"].is_number()) st.risk_percent = last["risk_percent"].get<double>();
  const double mean = seconds / static_cast<double>(run["passes"].size());
  const int remaining = st.active == 0 ? 0 : std::max(0, pass_limit(prov, st.method) - st.pass);
  st.eta_s = remaining * mean;
}

/// A shard-major run while it runs: shards final, images done and active, and
/// the ETA from checkpoints/progress.json (rank 0 rewrites it as it prints).
void read_shard_progress(const fs::path& dir, RunProgress& st) {
  const json p = read_json(dir / "checkpoints" / "progress.json");
  if (!p.is_object() || p.value("schedule", "") != "shard") return;
  st.shards_final = p.value("shards_final", -1LL);
  st.shards = p.value("shards", -1LL);
  st.images_done = p.value("images_done", -1LL);
  st.total = p.value("images", st.total);
  st.active = p.value("active", st.active);
  const double eta = p.value("eta_seconds", -1.0);
  if (eta >= 0) st.eta_s = eta;
  st.eta_is_estimate = true;
}

/// Fills state and why for a run that is not done.
void decide_unfinished(const fs::path& dir, const StatusOptions& options, RunProgress& st) {
  const fs::path lock = dir / ".lock";
  const bool started = fs::exists(dir / "provenance.json") || fs::exists(dir / "checkpoints");
  if (const auto pid = lock_holder(lock)) {
    st.state = RunState::kRunning;
    st.why = "lock held by pid " + std::to_string(*pid);
    return;
  }
  if (fs::exists(dir / "error.txt")) {
    st.state = RunState::kFailed;
    st.error = first_line(dir / "error.txt");
    st.why = "error.txt";
    return;
  }
  // A lock file that names this host and is not held: the run is not alive anywhere.
  const bool known_dead = fs::exists(lock) && lock_names_this_host(lock);
  if (started && !known_dead && st.last_progress_age_s && *st.last_progress_age_s < options.stale_seconds) {
    st.state = RunState::kRunning;
    char buf[160];
    std::snprintf(buf, sizeof buf, "last checkpoint %.0f s ago (no lock visible on this host)", *st.last_progress_age_s);
    st.why = buf;
    return;
  }
  if (started) {
    st.state = RunState::kInterrupted;
    st.why = fs::exists(dir / "summary.json") ? "summary.json without complete.json: rerun the same command to finish"
                                               : "resumable: rerun the same command";
    return;
  }
  st.state = RunState::kPending;
  st.why = "nothing committed yet";
}

void fill_done(const fs::path& dir, RunProgress& st) {
  st.state = RunState::kDone;
  st.why = "complete.json";
  const json done = read_json(dir / "complete.json");
  const json summary = read_json(dir / "summary.json");
  st.pass = done.is_object() ? done.value("passes_run", st.pass) : st.pass;
  st.total = done.is_object() ? done.value("images", st.total) : st.total;
  st.active = 0;
  if (summary.is_object() && summary.contains("final_risk_percent") && summary["final_risk_percent"].is_number())
    st.risk_percent = summary["final_risk_percent"].get<double>();
  if (done.is_object() && done.contains("finished") && done["finished"].is_string())
    st.last_progress_utc = done["finished"].get<std::string>();
  if (auto t = mtime(dir / "complete.json")) st.last_progress_age_s = now_s() - *t;
  st.eta_s = 0.0;
}

std::string duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0f s", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) / 60 % 60);
  return buf;
}

}  // namespace

const char* run_state_name(RunState state) noexcept {
  switch (state) {
    case RunState::kDone: return "done";
    case RunState::kFailed: return "failed";
    case RunState::kRunning: return "running";
    case RunState::kInterrupted: return "interrupted";
    case RunState::kPending: return "pending";
  }
  return "?";
}

bool is_run_dir(const fs::path& dir) {
  for (const char* f : {"provenance.json", "checkpoints", "complete.json", "error.txt"})
    if (fs::exists(dir / f)) return true;
  return false;
}

RunProgress run_progress(const fs::path& dir, const StatusOptions& options) {
  RunProgress st;
  st.dir = dir;
  st.name = dir.filename().string();
  if (!fs::is_directory(dir)) {
    st.why = "no directory yet";
    return st;
  }
  const json prov = read_json(dir / "provenance.json");
  st.method = config_value(prov, "method", prov.is_object() ? "edi" : "");
  if (auto t = newest_progress(dir)) {
    st.last_progress_age_s = std::max(0.0, now_s() - *t);
    st.last_progress_utc = iso_utc(*t);
  }
  read_history(dir, prov, st);
  const auto done_t = mtime(dir / "complete.json");
  const auto error_t = mtime(dir / "error.txt");
  if (done_t && !(error_t && *error_t >= *done_t)) {
    fill_done(dir, st);
    return st;
  }
  read_shard_progress(dir, st);
  decide_unfinished(dir, options, st);
  if (st.state == RunState::kRunning && st.eta_s && st.last_progress_age_s)
    st.eta_s = std::max(0.0, *st.eta_s - *st.last_progress_age_s);
  if (st.state == RunState::kFailed || st.state == RunState::kPending) st.eta_s.reset();
  return st;
}

int StatusReport::count(RunState state) const {
  return static_cast<int>(std::count_if(runs.begin(), runs.end(), [&](const RunProgress& r) { return r.state == state; }));
}

std::vector<int> StatusReport::left_indices() const {
  std::vector<int> out;
  for (const auto& r : runs)
    if (r.state != RunState::kDone && r.index >= 0) out.push_back(r.index);
  return out;
}

std::vector<std::string> StatusReport::left_names() const {
  std::vector<std::string> out;
  for (const auto& r : runs)
    if (r.state != RunState::kDone) out.push_back(r.name);
  return out;
}

StatusReport collect_status(const fs::path& dir, const std::vector<std::string>& plan, const StatusOptions& options) {
  StatusReport rep;
  rep.dir = dir;
  if (plan.empty() && is_run_dir(dir)) {
    rep.runs.push_back(run_progress(dir, options));
    return rep;
  }
  rep.sweep = true;
  if (!plan.empty()) {
    for (std::size_t i = 0; i < plan.size(); ++i) {
      rep.runs.push_back(run_progress(dir / plan[i], options));
      rep.runs.back().index = static_cast<int>(i);
    }
    return rep;
  }
  if (!fs::is_directory(dir)) throw DataError(dir.string() + ": no such directory (expected a run or a sweep directory)");
  std::vector<fs::path> subdirs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && is_run_dir(e.path())) subdirs.push_back(e.path());
  if (subdirs.empty())
    throw DataError(dir.string() + ": neither a run directory (no provenance.json, checkpoints/, complete.json or "
                                   "error.txt) nor a sweep directory holding run directories (give --config SWEEP.ini "
                                   "to list the runs not started yet)");
  std::sort(subdirs.begin(), subdirs.end());
  for (const auto& d : subdirs) rep.runs.push_back(run_progress(d, options));
  return rep;
}

std::string status_text(const StatusReport& rep) {
  std::size_t width = 4;
  for (const auto& r : rep.runs) width = std::max(width, r.name.size() + (r.index >= 0 ? 5 : 0));
  std::ostringstream out;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-*s  %-11s %5s %7s %8s  %-30s %s\n", static_cast<int>(width), "run", "state", "pass",
                "active", "risk %", "last progress", "ETA");
  out << buf;
  for (const auto& r : rep.runs) {
    const std::string name = r.index >= 0 ? std::to_string(r.index) + "  " + r.name : r.name;
    // Shard-major while it runs: shards final instead of a pass ("s3/8").
    const std::string pass = r.shards >= 0 && r.state != RunState::kDone
                                 ? "s" + std::to_string(r.shards_final) + "/" + std::to_string(r.shards)
                                 : r.pass >= 0 ? std::to_string(r.pass) : "-";
    const std::string active = r.active >= 0 ? std::to_string(r.active) : "-";
    char risk[32] = "-";
    if (r.risk_percent) std::snprintf(risk, sizeof risk, "%.2f", *r.risk_percent);
    const std::string when = r.last_progress_utc.empty()
                                 ? "-"
                                 : r.last_progress_utc + (r.last_progress_age_s ? " (" + duration(*r.last_progress_age_s) + " ago)" : "");
    const std::string eta = !r.eta_s ? "-" : *r.eta_s == 0 ? "0" : (r.eta_is_estimate ? "~ " : "<= ") + duration(*r.eta_s);
    std::snprintf(buf, sizeof buf, "%-*s  %-11s %5s %7s %8s  %-30s %s\n", static_cast<int>(width), name.c_str(),
                  run_state_name(r.state), pass.c_str(), active.c_str(), risk, when.c_str(), eta.c_str());
    out << buf;
    if (r.state == RunState::kFailed) out << std::string(width + 2, ' ') << "error: " << r.error << "\n";
  }
  std::snprintf(buf, sizeof buf, "%zu run(s): %d done, %d running, %d interrupted, %d failed, %d pending\n",
                rep.runs.size(), rep.count(RunState::kDone), rep.count(RunState::kRunning),
                rep.count(RunState::kInterrupted), rep.count(RunState::kFailed), rep.count(RunState::kPending));
  out << buf;
  if (rep.sweep) {
    const auto idx = rep.left_indices();
    const auto names = rep.left_names();
    if (names.empty()) {
      out << "left: none\n";
    } else if (!idx.empty()) {
      out << "left: --index";
      for (std::size_t i = 0; i < idx.size(); ++i) out << (i ? "," : " ") << idx[i];
      out << "\n";
    } else {
      out << "left:";
      for (const auto& n : names) out << " " << n;
      out << "\n";
    }
  }
  return out.str();
}

std::string status_json(const StatusReport& rep) {
  json runs = json::array();
  for (const auto& r : rep.runs) {
    json j = {{"name", r.name}, {"dir", r.dir.string()}, {"state", run_state_name(r.state)}, {"why", r.why}};
    j["index"] = r.index >= 0 ? json(r.index) : json();
    j["error"] = r.state == RunState::kFailed ? json(r.error) : json();
    j["method"] = r.method.empty() ? json() : json(r.method);
    j["pass"] = r.pass >= 0 ? json(r.pass) : json();
    j["active"] = r.active >= 0 ? json(r.active) : json();
    j["identified"] = r.identified >= 0 ? json(r.identified) : json();
    j["total"] = r.total >= 0 ? json(r.total) : json();
    j["risk_percent"] = r.risk_percent ? json(*r.risk_percent) : json();
    j["last_progress"] = r.last_progress_utc.empty() ? json() : json(r.last_progress_utc);
    j["last_progress_age_s"] = r.last_progress_age_s ? json(*r.last_progress_age_s) : json();
    j["eta_s"] = r.eta_s ? json(*r.eta_s) : json();
    j["eta_kind"] = !r.eta_s ? json() : json(r.eta_is_estimate ? "estimate" : "upper bound");
    j["shards_final"] = r.shards >= 0 ? json(r.shards_final) : json();
    j["shards"] = r.shards >= 0 ? json(r.shards) : json();
    j["images_done"] = r.images_done >= 0 ? json(r.images_done) : json();
    runs.push_back(std::move(j));
  }
  json out = {{"format", "edi-anon-status"}, {"version", 1}, {"dir", rep.dir.string()},
              {"kind", rep.sweep ? "sweep" : "run"}, {"generated", utc_now()}, {"runs", runs}};
  out["summary"] = {{"runs", rep.runs.size()},
                    {"done", rep.count(RunState::kDone)},
                    {"running", rep.count(RunState::kRunning)},
                    {"interrupted", rep.count(RunState::kInterrupted)},
                    {"failed", rep.count(RunState::kFailed)},
                    {"pending", rep.count(RunState::kPending)}};
  if (rep.sweep) {
    out["left_indices"] = rep.left_indices();
    out["left"] = rep.left_names();
  }
  return out.dump(2) + "\n";
}

}  // namespace edi::report
