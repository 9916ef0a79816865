#include "edi/report/aggregate.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/core/progress.hpp"
#include "edi/metrics/format.hpp"
#include "edi/metrics/stats.hpp"
#include "edi/rundir/layout.hpp"
#include "edi/version.hpp"

namespace edi::report {

namespace fs = std::filesystem;
namespace rd = ::edi::rundir;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// One evaluated run or snapshot.
struct Row {
  fs::path dir;
  std::string name;       ///< run name, or <run>@<T> for a snapshot
  std::string run_name;   ///< the run's name (= name for a run)
  double target = kNaN;   ///< snapshot target in %, NaN for a run and a PSNR snapshot
  bool psnr_snapshot = false;  ///< snapshots/psnr<T>/ (--snapshot-psnr): never a risk target
  json m;                 ///< metrics.json
  std::string method, op, description;
  bool control() const { return method == "none"; }
  bool snapshot() const { return !std::isnan(target) || psnr_snapshot; }
};

double num(const json& j) { return j.is_number() ? j.get<double>() : kNaN; }

/// A Rate/interval object {value, lo, hi, ...} or null.
struct Iv {
  double v = kNaN, lo = kNaN, hi = kNaN;
};
Iv iv(const json& j) {
  if (!j.is_object()) return {};
  return {num(j.value("value", json())), num(j.value("lo", json())), num(j.value("hi", json()))};
}

std::string f1(double x, int prec = 1) { return metrics::format_number(x, metrics::display(prec)); }
std::string raw(double x) { return metrics::format_number(x, metrics::kCsvNumber); }
std::string show(const Iv& x, int prec = 1) {
  if (std::isnan(x.v)) return "–";
  return f1(x.v, prec) + " [" + f1(x.lo, prec) + ", " + f1(x.hi, prec) + "]";
}

const json& path_or_null(const json& j, std::initializer_list<const char*> keys) {
  static const json null;
  const json* p = &j;
  for (const char* k : keys) {
    if (!p->is_object() || !p->contains(k)) return null;
    p = &(*p)[k];
  }
  return *p;
}

/// An attacker's top-1 risk under threat model `tm` ("heldout" or "linkage").
Iv attacker_risk(const json& a, const std::string& tm) {
  if (!a.value("available", false)) return {};
  return iv(path_or_null(a, {"top1", tm.c_str()}));
}

const json* find_attacker(const json& m, const std::string& name) {
  if (!m.contains("privacy") || !m["privacy"].contains("attackers")) return nullptr;
  for (const auto& a : m["privacy"]["attackers"])
    if (a.value("name", "") == name) return &a;
  return nullptr;
}
const json* find_task(const json& m, const std::string& task) {
  if (!m.contains("utility")) return nullptr;
  for (const auto& u : m["utility"])
    if (u.value("task", "") == task) return &u;
  return nullptr;
}

Iv steering(const Row& r, const char* tm, const char* k = "top1") { return iv(path_or_null(r.m, {"privacy", "steering", k, tm})); }

/// The risk used for --match-risk (steering in_loop top-1, or an attacker's heldout top-1).
Iv match_risk(const Row& r, const std::string& which) {
  if (which == "steering") return steering(r, "in_loop");
  const json* a = find_attacker(r.m, which);
  return a ? attacker_risk(*a, "heldout") : Iv{};
}

/// Operator family for matching: the eyes/mouth/eyes-mouth baselines are masking.
std::string family(const std::string& op) {
  return op == "eyes" || op == "mouth" || op == "eyes-mouth" ? "mask" : op;
}

std::string now_utc() {
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return date;
}

/// pdflatex-safe text: specials escaped, the dashes and minus written in ASCII.
std::string tex_escape(const std::string& s) {
  std::string o;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (s.compare(i, 3, "\xE2\x80\x93") == 0) {  // en dash
      o += "--";
      i += 2;
      continue;
    }
    if (s.compare(i, 3, "\xE2\x88\x92") == 0) {  // minus sign
      o += "$-$";
      i += 2;
      continue;
    }
    if (c == '_' || c == '%' || c == '&' || c == '#' || c == '$' || c == '{' || c == '}') o += '\\';
    if (c == '~') {
      o += "\\textasciitilde{}";
      continue;
    }
    if (c == '<' || c == '>') {
      o += c == '<' ? "$<$" : "$>$";
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

RunStatus classify_run(const fs::path& dir) {
  RunStatus s;
  s.dir = dir;
  if (!fs::is_directory(dir)) {
    s.state = "missing";
    s.reason = "no such directory";
    return s;
  }
  for (const char* marker : {rd::file::kError, "error.json", "FAILED"}) {
    if (fs::exists(dir / marker)) {
      s.state = "failed";
      std::string text;
      try {
        text = read_file(dir / marker);
      } catch (const Error&) {
      }
      const auto nl = text.find('\n');
      text = text.substr(0, nl);
      s.reason = std::string(marker) + (text.empty() ? "" : ": " + text.substr(0, 200));
      return s;
    }
  }
  const bool snapshot = metrics::is_snapshot_dir(dir);
  if (!snapshot && !metrics::run_finished(dir)) {
    s.state = "not-finished";
    s.reason = fs::is_regular_file(dir / rd::file::kSummary)
                   ? "no complete.json: the run is running, was interrupted, or is being resumed"
                   : "no complete.json and no results: the run did not finish";
    return s;
  }
  if (fs::is_regular_file(dir / rd::file::kMetrics)) {
    const json m = json::parse(read_file(dir / rd::file::kMetrics), nullptr, false);
    if (m.is_discarded() || m.value("format", "") != "edi-anon-metrics") {
      s.state = "failed";
      s.reason = "metrics.json is not a valid edi-anon metrics file";
      return s;
    }
    const fs::path marker = dir / (snapshot ? rd::file::kSnapshotMarker : rd::file::kComplete);
    if (fs::last_write_time(dir / rd::file::kMetrics) >= fs::last_write_time(marker) && m.value("version", 0) >= 2) {
      s.state = "ok";
      return s;
    }
    s.state = "not-evaluated";
    s.reason = "metrics.json is older than the run's last completion or of schema version 1 (run edi-anon evaluate again)";
    return s;
  }
  s.state = "not-evaluated";
  s.reason = "finished but no metrics.json (run edi-anon evaluate, or aggregate --evaluate)";
  return s;
}

namespace {

/// Classify `dir`, evaluating it first when asked and it is finished but not evaluated.
RunStatus classify_evaluating(const fs::path& dir, const AggregateConfig& cfg, const std::function<void(const std::string&)>& log) {
  RunStatus st = classify_run(dir);
  if (st.state == "not-evaluated" && cfg.evaluate_missing) {
    if (log) log("evaluating " + dir.string());
    try {
      metrics::evaluate_run(dir, cfg.eval, log);
      st = classify_run(dir);
    } catch (const std::exception& e) {
      st.state = "failed";
      st.reason = std::string("evaluate: ") + e.what();
    }
  }
  return st;
}

Row make_row(const fs::path& dir, const std::string& run_name, double target, bool psnr_snapshot = false) {
  Row r;
  r.dir = dir;
  r.run_name = run_name;
  r.target = target;
  r.psnr_snapshot = psnr_snapshot;
  r.name = r.snapshot() ? run_name + "@" + dir.filename().string() : run_name;
  r.m = json::parse(read_file(dir / rd::file::kMetrics));
  r.method = r.m["run"].value("method", "?");
  r.op = r.m["run"].value("operator", "?");
  r.description = r.m["run"].value("description", "");
  return r;
}

std::string run_name_of(const fs::path& dir) {
  std::string name = fs::absolute(dir).lexically_normal().filename().string();
  if (name.empty()) name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  return name;
}

/// Run directories → evaluated rows (each run, then its snapshots, highest target first; control runs first of all).
std::vector<Row> load_rows(const AggregateConfig& cfg, const std::function<void(const std::string&)>& log, AggregateResult& res) {
  std::vector<Row> rows;
  Progress progress("aggregate: runs read" + std::string(cfg.evaluate_missing ? " or evaluated" : ""), cfg.runs.size(), "runs");
  for (const fs::path& dir : cfg.runs) {
    const RunStatus st = classify_evaluating(dir, cfg, log);
    const std::string name = run_name_of(dir);
    if (st.state == "ok") rows.push_back(make_row(dir, name, kNaN));
    res.runs.push_back(st);
    for (const fs::path& snap : metrics::list_snapshots(dir)) {
      RunStatus ss = classify_evaluating(snap, cfg, log);
      const bool by_psnr = snap.filename().string().rfind("psnr", 0) == 0;
      if (ss.state == "ok") rows.push_back(make_row(snap, name, by_psnr ? kNaN : std::strtod(snap.filename().c_str(), nullptr), by_psnr));
      res.snapshots.push_back(ss);
    }
    progress.add();
  }
  progress.finish();
  std::stable_partition(rows.begin(), rows.end(), [](const Row& r) { return r.control(); });
  return rows;
}

/// Attackers and tasks seen in any run (first-seen order), manifests and code versions, identities.
struct Columns {
  std::vector<std::string> attackers, tasks;
  std::set<std::string> manifests, versions;
  std::set<long long> identities, seeds, resamples;
};
Columns collect_columns(const std::vector<Row>& rows) {
  Columns c;
  for (const auto& r : rows) {
    for (const auto& a : r.m["privacy"].value("attackers", json::array())) {
      const std::string n = a.value("name", "");
      if (a.value("steered", false)) continue;
      if (std::find(c.attackers.begin(), c.attackers.end(), n) == c.attackers.end()) c.attackers.push_back(n);
    }
    for (const auto& u : r.m.value("utility", json::array())) {
      const std::string t = u.value("task", "");
      if (std::find(c.tasks.begin(), c.tasks.end(), t) == c.tasks.end()) c.tasks.push_back(t);
    }
    c.manifests.insert(r.m["run"].value("manifest_hash", ""));
    c.versions.insert(r.m.value("code_version", ""));
    c.identities.insert(r.m["privacy"].value("identities_probed", 0LL));
    c.seeds.insert(r.m["privacy"].value("seed", 0LL));
    c.resamples.insert(r.m["privacy"].value("bootstrap", 0LL));
  }
  return c;
}

/// Context shared by every file: as JSON and as lines.
struct Context {
  json j;
  std::vector<std::string> lines;
  std::string unit;  ///< one line: unit, identities, interval method, seed (every table header)
};
template <typename Set>
std::string joined(const Set& xs) {
  std::ostringstream o;
  bool first = true;
  for (const auto& x : xs) o << (first ? "" : ", ") << x, first = false;
  return o.str();
}
std::string unit_line(const Columns& cols) {
  return "unit: identity; 95% intervals from an identity-cluster bootstrap (identities resampled with all their images; " +
         joined(cols.resamples) + " resamples, seed " + joined(cols.seeds) + "), exact Clopper-Pearson at 0 % and 100 %; " +
         joined(cols.identities) + " identities probed";
}
Context make_context(const AggregateConfig& cfg, const std::vector<Row>& rows, const Columns& cols) {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::size_t n_runs = 0;
  for (const auto& r : rows) n_runs += !r.snapshot();
  Context c;
  c.unit = unit_line(cols);
  c.j = {{"date", now_utc()},
         {"host", host},
         {"code_version", std::string(version()) + " (" + git_describe() + ")"},
         {"run_code_versions", cols.versions},
         {"manifest_hashes", cols.manifests},
         {"runs", cfg.runs.size()},
         {"runs_ok", n_runs},
         {"runs_not_ok", cfg.runs.size() - n_runs},
         {"snapshot_rows", rows.size() - n_runs},
         {"unit", "identity"},
         {"identities", cols.identities},
         {"bootstrap", cols.resamples},
         {"seed", cols.seeds},
         {"risk_unit", "% of images re-identified (top-1 unless noted); " + c.unit},
         {"random_guess_percent", rows.empty() ? json(nullptr) : rows.front().m["random_guess_percent"]["top1"]}};
  c.lines = {"edi-anon aggregate", "date: " + c.j["date"].get<std::string>(), std::string("host: ") + host,
             "code version: " + c.j["code_version"].get<std::string>()};
  c.lines.push_back("run code versions: " + joined(cols.versions));
  c.lines.push_back("data manifest sha256: " + joined(cols.manifests));
  c.lines.push_back("runs: " + std::to_string(cfg.runs.size()) + " given, " + std::to_string(n_runs) + " evaluated (+" +
                    std::to_string(rows.size() - n_runs) + " snapshot rows), " + std::to_string(cfg.runs.size() - n_runs) +
                    " missing/failed/not finished/not evaluated (listed below)");
  if (!rows.empty())
    c.lines.push_back("random-guess risk: " + f1(rows.front().m["random_guess_percent"]["top1"].get<double>(), 2) + " % (1/" +
                      std::to_string(rows.front().m["identities"].get<int>()) + " identities)");
  c.lines.push_back("risks and utility in %, value [95% interval]; " + c.unit);
  c.lines.push_back("threat models: steering in_loop = the steering model on every image it steered (authors' protocol); "
                    "heldout = probes whose originals the attacker never saw (classifiers: test split; LBPH and face-api "
                    "galleries: leave-one-out); linkage = the attacker holds the probes' originals");
  return c;
}

/// A table as display strings, as CSV numbers, and as JSON rows.
struct Table {
  std::vector<std::string> head, csv_head;
  std::vector<std::vector<std::string>> rows, csv_rows;
  json j = json::array();
};

void add_iv_columns(Table& t, const std::string& display, const std::string& csv) {
  t.head.push_back(display);
  for (const char* s : {"", "_lo", "_hi"}) t.csv_head.push_back(csv + s);
}

void runs_table_head(Table& t, const Columns& cols) {
  t.head = {"run", "method", "operator", "parameters", "passes", "images"};
  t.csv_head = {"run", "dir", "method", "operator", "parameters", "passes", "images", "snapshot_target"};
  add_iv_columns(t, "steering in_loop top-1", "steering_in_loop_top1");
  add_iv_columns(t, "steering heldout top-1", "steering_heldout_top1");
  add_iv_columns(t, "steering in_loop top-5", "steering_in_loop_top5");
  for (const auto& a : cols.attackers) {
    add_iv_columns(t, a + " heldout top-1", a + "_heldout_top1");
    add_iv_columns(t, a + " linkage top-1", a + "_linkage_top1");
  }
  for (const auto& tk : cols.tasks) {
    add_iv_columns(t, tk + " acc", tk + "_accuracy");
    add_iv_columns(t, tk + " macro-F1", tk + "_macro_f1");
    add_iv_columns(t, tk + " agreement", tk + "_agreement");
  }
  add_iv_columns(t, "PSNR dB", "psnr_db");
  add_iv_columns(t, "SSIM", "ssim");
  t.head.insert(t.head.end(), {"changed %", "seconds"});
  t.csv_head.insert(t.csv_head.end(), {"changed_percent", "seconds"});
}

void push_iv(std::vector<std::string>& t, std::vector<std::string>& c, const Iv& x, const std::string& cell) {
  t.push_back(cell);
  c.insert(c.end(), {raw(x.v), raw(x.lo), raw(x.hi)});
}

/// One run's cells for the attackers and utility tasks.
void runs_table_cells(const Row& r, const Columns& cols, std::vector<std::string>& t, std::vector<std::string>& c, json& jr) {
  const json& m = r.m;
  for (const auto& a : cols.attackers) {
    const json* aj = find_attacker(m, a);
    const bool na = aj && !aj->value("available", false);
    const bool dependent = aj && (aj->value("steered", false) || !aj->value("independent", true));  // steered or judged the run
    for (const char* tm : {"heldout", "linkage"}) {
      Iv x = aj ? attacker_risk(*aj, tm) : Iv{};
      if (dependent) x = Iv{};
      push_iv(t, c, x, dependent ? "not independent" : na ? "n/a" : show(x));
    }
    jr["attackers"][a] = aj ? *aj : json(nullptr);
  }
  for (const auto& tk : cols.tasks) {
    const json* u = find_task(m, tk);
    Iv acc, mf, agree;
    if (u && u->value("labels", false)) acc = iv((*u)["accuracy"]), mf = iv((*u)["macro_f1"]);
    if (u) agree = iv(u->value("agreement_with_original", json()));
    std::string agree_cell = show(agree);
    if (u && u->contains("mae_vs_original")) agree_cell = show(iv((*u)["mae_vs_original"])) + " MAE";
    push_iv(t, c, acc, show(acc));
    push_iv(t, c, mf, show(mf));
    push_iv(t, c, agree, agree_cell);
    jr["utility"][tk] = u ? *u : json(nullptr);
  }
}

Table runs_table(const std::vector<Row>& rows, const Columns& cols) {
  Table tb;
  runs_table_head(tb, cols);
  for (const auto& r : rows) {
    const json& m = r.m;
    const std::string dir = fs::absolute(r.dir).lexically_normal().string();
    const std::string passes = std::to_string(m["run"].value("passes_run", 0)), images = std::to_string(m.value("images", 0));
    std::vector<std::string> t = {r.name, r.method, r.op, r.description, passes, images};
    std::vector<std::string> c = {r.name, dir, r.method, r.op, r.description, passes, images, std::isnan(r.target) ? "" : raw(r.target)};
    const Iv s1 = steering(r, "in_loop"), sh = steering(r, "heldout"), s5 = steering(r, "in_loop", "top5");
    push_iv(t, c, s1, show(s1));
    push_iv(t, c, sh, show(sh));
    push_iv(t, c, s5, show(s5));
    json jr = {{"run", r.name}, {"dir", dir}, {"method", r.method}, {"operator", r.op}, {"control", r.control()},
               {"snapshot_target", std::isnan(r.target) ? json(nullptr) : json(r.target)},
               {"parameters", r.description}, {"passes", m["run"].value("passes_run", 0)}, {"images", m.value("images", 0)},
               {"steering", path_or_null(m, {"privacy", "steering"})}, {"attackers", json::object()}, {"utility", json::object()}};
    runs_table_cells(r, cols, t, c, jr);
    const Iv ps = iv(m["quality"]["psnr_db"]), ss = iv(m["quality"]["ssim"]), ch = iv(m["quality"]["changed_share_percent"]);
    const double secs = m["run"].value("seconds", 0.0);
    push_iv(t, c, ps, show(ps));
    push_iv(t, c, ss, show(ss, 3));
    t.insert(t.end(), {f1(ch.v), f1(secs)});
    c.insert(c.end(), {raw(ch.v), raw(secs)});
    jr["quality"] = m["quality"];
    jr["seconds"] = secs;
    tb.rows.push_back(t);
    tb.csv_rows.push_back(c);
    tb.j.push_back(jr);
  }
  return tb;
}

// --- matched tables -------------------------------------------------------

/// Per-image utility of one task from metrics-images.csv, by image id.
struct ImageUtility {
  int identity = -1, label = -1, pred = -1, pred_original = -1;
};
std::map<std::string, ImageUtility> read_image_utility(const fs::path& dir, const std::string& task) {
  std::map<std::string, ImageUtility> out;
  const fs::path p = dir / rd::file::kMetricsImages;
  if (!fs::is_regular_file(p)) return out;
  const CsvTable csv = parse_csv(read_file(p), p.string());
  const int ci = csv_column(csv, "id"), cid = csv_column(csv, "identity"), cl = csv_column(csv, task + "_label"),
            cp = csv_column(csv, task + "_pred"), co = csv_column(csv, task + "_pred_original");
  if (ci < 0 || cid < 0 || cp < 0 || co < 0) return out;
  const auto as_int = [](const std::string& s) { return s.empty() ? -1 : std::atoi(s.c_str()); };
  for (const auto& row : csv.rows) {
    ImageUtility u;
    u.identity = as_int(row[static_cast<std::size_t>(cid)]);
    u.label = cl < 0 ? -1 : as_int(row[static_cast<std::size_t>(cl)]);
    u.pred = as_int(row[static_cast<std::size_t>(cp)]);
    u.pred_original = as_int(row[static_cast<std::size_t>(co)]);
    out[row[static_cast<std::size_t>(ci)]] = u;
  }
  return out;
}

/// EDI − baseline utility over the images both rows hold, with an identity-cluster interval.
struct PairedDiff {
  std::string measure;             ///< "macro-F1" (labels) or "agreement" (with the prediction on the original)
  double base = kNaN, edi = kNaN;
  metrics::Interval d;
  std::size_t paired = 0, identities = 0;
};

bool labelled(const Row& r, const std::string& task) {
  const json* u = find_task(r.m, task);
  return u && u->value("labels", false);
}

PairedDiff paired_utility(const Row& b, const Row& e, const std::string& task, const metrics::BootstrapSpec& spec) {
  PairedDiff p;
  p.d.value = p.d.lo = p.d.hi = kNaN;
  const bool with_labels = labelled(b, task) && labelled(e, task);
  p.measure = with_labels ? "macro-F1" : "agreement";
  const auto ub = read_image_utility(b.dir, task), ue = read_image_utility(e.dir, task);
  std::vector<int> truth, pb, pe, ids;
  std::vector<double> ab, ae;
  int classes = 1;
  for (const auto& [id, x] : ub) {
    const auto it = ue.find(id);
    if (it == ue.end() || x.pred < 0 || it->second.pred < 0) continue;
    if (with_labels && (x.label < 0 || x.label != it->second.label)) continue;
    truth.push_back(x.label), pb.push_back(x.pred), pe.push_back(it->second.pred), ids.push_back(x.identity);
    ab.push_back(x.pred == x.pred_original ? 100.0 : 0.0);
    ae.push_back(it->second.pred == it->second.pred_original ? 100.0 : 0.0);
    classes = std::max({classes, x.label + 1, x.pred + 1, it->second.pred + 1});
  }
  p.paired = truth.size();
  p.identities = metrics::count_clusters(ids);
  if (p.paired == 0) return p;
  const auto stat = [&](const std::vector<int>& pred, const std::vector<double>& agree, const std::vector<std::size_t>& idx) {
    if (with_labels) return 100.0 * metrics::classification_scores(truth, pred, classes, idx).macro_f1;
    double s = 0.0;
    for (std::size_t i : idx) s += agree[i];
    return s / static_cast<double>(idx.size());
  };
  std::vector<std::size_t> all(p.paired);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  p.base = stat(pb, ab, all);
  p.edi = stat(pe, ae, all);
  p.d = metrics::cluster_bootstrap(
      ids, [&](const std::vector<std::size_t>& idx) { return stat(pe, ae, idx) - stat(pb, ab, idx); }, spec,
      "matched/" + b.name + "/" + e.name + "/" + task);
  return p;
}

/// matched-to = "name:target,name:target": the target this EDI run took from baseline `baseline`.
double matched_target(const Row& e, const std::string& baseline) {
  const json& opt = path_or_null(e.m, {"run", "options", "matched-to"});
  if (!opt.is_string()) return kNaN;
  std::stringstream ss(opt.get<std::string>());
  std::string pair;
  while (std::getline(ss, pair, ',')) {
    const auto colon = pair.rfind(':');
    if (colon != std::string::npos && pair.substr(0, colon) == baseline) return std::strtod(pair.c_str() + colon + 1, nullptr);
  }
  return kNaN;
}

/// The fixed pair of a baseline: the EDI snapshot its matched-to names, else the
/// EDI run or snapshot of the same family whose risk is closest at or below the baseline's.
const Row* pick_edi(const Row& b, const std::vector<Row>& rows, const std::function<Iv(const Row&)>& risk, bool use_matched_to,
                    std::string& how) {
  if (use_matched_to)
    for (const auto& e : rows) {
      if (e.method != "edi" || family(e.op) != family(b.op)) continue;
      const double t = matched_target(e, b.run_name);
      if (std::isnan(t)) continue;
      for (const auto& s : rows)
        if (s.run_name == e.run_name && s.snapshot() && std::fabs(s.target - t) < 1e-9) {
          how = "matched-to";
          return &s;
        }
    }
  const Iv rb = risk(b);
  const Row* best = nullptr;
  for (const auto& e : rows) {
    if (e.method != "edi" || family(e.op) != family(b.op)) continue;
    const Iv re = risk(e);
    if (std::isnan(re.v) || std::isnan(rb.v) || re.v > rb.v) continue;
    if (!best || re.v > risk(*best).v) best = &e;
  }
  how = "closest at or below";
  return best;
}

/// The independent attacker with the highest heldout top-1 on the baseline (or the one --match-risk names).
std::string strongest_attacker(const Row& b, const Columns& cols, const std::string& forced) {
  if (forced != "steering") return forced;
  std::string best;
  double best_v = -1;
  for (const auto& a : cols.attackers) {
    const json* aj = find_attacker(b.m, a);
    const double v = aj && !aj->value("steered", false) ? attacker_risk(*aj, "heldout").v : kNaN;
    if (!std::isnan(v) && v > best_v) best = a, best_v = v;
  }
  return best;
}

json iv_json(const Iv& x) {
  const auto n = [](double v) { return std::isnan(v) ? json(nullptr) : json(v); };
  return {{"value", n(x.v)}, {"lo", n(x.lo)}, {"hi", n(x.hi)}};
}

/// One matched row (display line and JSON) for baseline b under risk `risk_name`.
std::pair<std::vector<std::string>, json> matched_row(const Row& b, const std::vector<Row>& rows, const std::string& risk_name,
                                                      const std::function<Iv(const Row&)>& risk, bool use_matched_to,
                                                      const std::string& task, const metrics::BootstrapSpec& spec) {
  std::string how;
  const Row* e = pick_edi(b, rows, risk, use_matched_to, how);
  const Iv rb = risk(b);
  json mj = {{"baseline", b.name}, {"operator", b.op}, {"family", family(b.op)}, {"baseline_parameters", b.description},
             {"risk", risk_name}, {"baseline_risk", std::isnan(rb.v) ? json(nullptr) : json(rb.v)},
             {"baseline_risk_interval", iv_json(rb)}, {"task", task}};
  std::vector<std::string> line = {b.name, family(b.op), b.description, risk_name, show(rb)};
  const std::string dash = "–";
  if (!e) {
    mj["edi"] = nullptr;
    mj["reason"] = "no evaluated EDI run or snapshot of family " + family(b.op) + " with " + risk_name + " risk <= " + f1(rb.v) + " %";
    line.insert(line.end(), {dash, dash, dash, dash, dash, dash, dash, mj["reason"].get<std::string>(), "0", "0"});
    return {line, mj};
  }
  const Iv re = risk(*e);
  const PairedDiff p = task.empty() ? PairedDiff{} : paired_utility(b, *e, task, spec);
  const int passes = e->m["run"].value("passes_run", 0);
  mj.update({{"edi", e->name}, {"edi_parameters", e->description}, {"pairing", how},
             {"edi_risk", std::isnan(re.v) ? json(nullptr) : json(re.v)}, {"edi_risk_interval", iv_json(re)}, {"edi_passes", passes},
             {"measure", p.measure}, {"baseline_utility", std::isnan(p.base) ? json(nullptr) : json(p.base)},
             {"edi_utility", std::isnan(p.edi) ? json(nullptr) : json(p.edi)},
             {"difference", iv_json({p.d.value, p.d.lo, p.d.hi})}});
  mj["difference"].update({{"paired_images", p.paired}, {"n_identities", p.identities}, {"method", "cluster-bootstrap"}});
  line.insert(line.end(), {e->name, how, show(re), std::to_string(passes), p.measure.empty() ? dash : task + " " + p.measure,
                           f1(p.base), f1(p.edi),
                           p.paired ? show({p.d.value, p.d.lo, p.d.hi}) : "– (no paired images with predictions)",
                           std::to_string(p.paired), std::to_string(p.identities)});
  return {line, mj};
}

std::vector<std::string> matched_head(const std::string& task) {
  return {"baseline", "family", "baseline parameters", "risk", "baseline risk", "EDI row", "pairing", "EDI risk", "EDI passes",
          "utility" + std::string(task.empty() ? "" : " (" + task + ")"), "baseline utility", "EDI utility",
          "difference EDI − baseline [95% identity-cluster]", "paired images", "identities"};
}

/// Both matched tables: on the steering in_loop risk, and on the heldout risk of the strongest independent attacker.
struct Matched {
  Table steering, attacker;
  std::string task, rule;
};
Matched matched_tables(const std::vector<Row>& rows, const Columns& cols, const AggregateConfig& cfg, const std::string& task) {
  Matched m;
  m.task = task;
  m.rule = "pairs fixed in advance by operator family (eyes, mouth and eyes-mouth pair with EDI masking) and target: a baseline pairs "
           "with the EDI snapshot whose matched-to option names it, else with the EDI run or snapshot of its family whose risk is "
           "closest at or below the baseline's (no utility-based selection); utility = macro-F1 against labels where both rows "
           "have them, else agreement with the utility model's prediction on the original";
  m.steering.head = m.attacker.head = matched_head(task);
  for (const auto& b : rows) {
    if (b.method != "conventional") continue;
    auto s = matched_row(b, rows, "steering in_loop top-1", [](const Row& r) { return steering(r, "in_loop"); }, true, task,
                         cfg.bootstrap);
    m.steering.rows.push_back(s.first);
    m.steering.j.push_back(s.second);
    const std::string a = strongest_attacker(b, cols, cfg.match_risk);
    if (a.empty()) continue;
    auto t = matched_row(b, rows, a + " heldout top-1", [&a](const Row& r) { return match_risk(r, a); }, false, task, cfg.bootstrap);
    t.second["attacker"] = a;
    m.attacker.rows.push_back(t.first);
    m.attacker.j.push_back(t.second);
  }
  return m;
}

/// The utility task of the matched tables: --match-task, else the first labelled classification task, else the first with agreement.
std::string default_task(const std::vector<Row>& rows, const std::string& given) {
  if (!given.empty()) return given;
  for (const bool need_labels : {true, false})
    for (const auto& r : rows)
      for (const auto& u : r.m.value("utility", json::array()))
        if (u.value("kind", "") == "classification" && (!need_labels || u.value("labels", false))) return u.value("task", "");
  return "";
}

/// Everything the writers need.
struct Tables {
  Context ctx;
  Table runs;
  Matched matched;
  std::vector<RunStatus> bad;
};

std::string csv_text(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::string out = csv_line(head);
  for (const auto& r : rows) out += csv_line(r);
  return out;
}

/// aggregate.csv and matched.csv: plain tables (pandas.read_csv reads them as they are); context in aggregate.meta.json.
void write_csvs(const AggregateConfig& cfg, const Tables& t) {
  write_file_atomic(cfg.out / "aggregate.csv", csv_text(t.runs.csv_head, t.runs.csv_rows));
  std::vector<std::string> head = {"matching"};
  head.insert(head.end(), t.matched.steering.head.begin(), t.matched.steering.head.end());
  std::vector<std::vector<std::string>> rows;
  for (const auto* tb : {&t.matched.steering, &t.matched.attacker})
    for (const auto& r : tb->rows) {
      std::vector<std::string> line = {tb == &t.matched.steering ? "steering" : "attacker"};
      line.insert(line.end(), r.begin(), r.end());
      rows.push_back(line);
    }
  write_file_atomic(cfg.out / "matched.csv", csv_text(head, rows));
}

json not_included_json(const std::vector<RunStatus>& bad) {
  json jb = json::array();
  for (const auto& s : bad) jb.push_back({{"dir", s.dir.string()}, {"state", s.state}, {"reason", s.reason}});
  return jb;
}

std::string meta_json(const AggregateConfig& cfg, const Tables& t) {
  json j = {{"format", "edi-anon-aggregate-meta"}, {"version", 1}, {"context", t.ctx.j}, {"context_lines", t.ctx.lines},
            {"not_included", not_included_json(t.bad)},
            {"files", {{"aggregate.csv", "one row per run and snapshot; columns <x>, <x>_lo, <x>_hi per interval"},
                       {"matched.csv", "both matched tables; column 'matching' = steering | attacker"}}},
            {"matched_rule", t.matched.rule}, {"match_risk", cfg.match_risk}};
  return j.dump(2) + "\n";
}

std::string md_table(const std::vector<std::string>& h, const std::vector<std::vector<std::string>>& rs) {
  auto cell = [](const std::string& s) {
    std::string o;
    for (char ch : s) o += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return o;
  };
  std::string o = "|";
  for (const auto& x : h) o += " " + cell(x) + " |";
  o += "\n|";
  for (std::size_t i = 0; i < h.size(); ++i) o += "---|";
  o += "\n";
  for (const auto& r : rs) {
    o += "|";
    for (const auto& x : r) o += " " + cell(x) + " |";
    o += "\n";
  }
  return o;
}

/// A display cell for LaTeX: "v [lo, hi]" on two lines (the interval in \tiny), else escaped text.
std::string tex_cell(const std::string& s) {
  const auto b = s.find(" [");
  if (b == std::string::npos || s.empty() || s.back() != ']') return tex_escape(s);
  return "\\begin{tabular}[t]{@{}r@{}}" + tex_escape(s.substr(0, b)) + "\\\\{\\tiny " + tex_escape(s.substr(b + 1)) + "}\\end{tabular}";
}
/// A header on two lines (first word, rest).
std::string tex_head(const std::string& s) {
  const auto sp = s.find(' ');
  if (sp == std::string::npos) return tex_escape(s);
  return "\\begin{tabular}[b]{@{}c@{}}" + tex_escape(s.substr(0, sp)) + "\\\\" + tex_escape(s.substr(sp + 1)) + "\\end{tabular}";
}

/// One float with booktabs rules. The tabular is set in a box and only scaled down where needed: wider than
/// the line, scaled to the line; taller than 0.85 of the text height, scaled to that. A `wide` table goes into a
/// table* and, when wider than the line, is turned by 90 degrees (a landscape float) before fitting (graphicx).
std::string tex_table(const Table& t, const std::string& caption, bool wide, const std::string& spec = "") {
  const std::string env = wide ? "table*" : "table";
  std::string cols = spec;
  if (cols.empty())
    for (std::size_t i = 0; i < t.head.size(); ++i) cols += i == 0 ? "l" : "r";
  std::string o = "\\begin{" + env + "}[tp]\n\\centering\\scriptsize\n\\caption{" + tex_escape(caption) + "}\n";
  o += "\\sbox{\\edianonbox}{\\begin{tabular}{" + cols + "}\n\\toprule\n";
  for (std::size_t i = 0; i < t.head.size(); ++i) o += (i ? " & " : "") + tex_head(t.head[i]);
  o += " \\\\\n\\midrule\n";
  for (const auto& r : t.rows) {
    for (std::size_t i = 0; i < r.size(); ++i) o += (i ? " & " : "") + tex_cell(r[i]);
    o += " \\\\\n";
  }
  o += "\\bottomrule\n\\end{tabular}}\n";
  if (wide) o += "\\ifdim\\wd\\edianonbox>\\linewidth\\sbox{\\edianonbox}{\\rotatebox{90}{\\usebox{\\edianonbox}}}\\fi\n";
  o += "\\edianonfit\n\\end{" + env + "}\n";
  return o;
}

/// The columns of `full` whose header satisfies `keep` (plus column 0, the run).
Table select_columns(const Table& full, const std::function<bool(const std::string&)>& keep) {
  std::vector<std::size_t> idx = {0};
  for (std::size_t i = 1; i < full.head.size(); ++i)
    if (keep(full.head[i])) idx.push_back(i);
  Table t;
  for (std::size_t i : idx) t.head.push_back(full.head[i]);
  for (const auto& r : full.rows) {
    std::vector<std::string> line;
    for (std::size_t i : idx) line.push_back(r[i]);
    t.rows.push_back(line);
  }
  return t;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The utility column of the compact table: the first task's macro-F1 where any row has labels, else its agreement.
std::string compact_utility(const Table& full, const Columns& cols) {
  if (cols.tasks.empty()) return "";
  const std::string f1h = cols.tasks[0] + " macro-F1";
  const auto it = std::find(full.head.begin(), full.head.end(), f1h);
  if (it == full.head.end()) return cols.tasks[0] + " agreement";
  const auto c = static_cast<std::size_t>(it - full.head.begin());
  for (const auto& r : full.rows)
    if (r[c] != "–") return f1h;
  return cols.tasks[0] + " agreement";
}

/// The column set of --columns: "compact", or any of privacy, utility, quality ("all" = the three).
struct ColumnChoice {
  bool compact = false, privacy = false, utility = false, quality = false;
  std::string name;
};
ColumnChoice parse_columns(const std::string& text) {
  ColumnChoice c;
  c.name = text;
  if (text == "compact") c.compact = true;
  else if (text == "all") c.privacy = c.utility = c.quality = true;
  else {
    std::stringstream ss(text);
    std::string part;
    while (std::getline(ss, part, ',')) {
      if (part == "privacy") c.privacy = true;
      else if (part == "utility") c.utility = true;
      else if (part == "quality") c.quality = true;
      else
        throw ConfigError("--columns " + text + ": '" + part +
                          "' is not a column set (expected compact, all, or a comma list of privacy, utility, quality)");
    }
    if (!c.privacy && !c.utility && !c.quality) throw ConfigError("--columns: empty (expected compact, all, privacy, utility, quality)");
  }
  return c;
}

bool privacy_head(const std::string& h) { return ends_with(h, " top-1") || ends_with(h, " top-5"); }
bool utility_head(const std::string& h) { return ends_with(h, " acc") || ends_with(h, " macro-F1") || ends_with(h, " agreement"); }
bool quality_head(const std::string& h) { return h == "PSNR dB" || h == "SSIM" || h == "changed %"; }

/// What the Markdown and LaTeX files show: the runs table in the chosen columns with short labels, a table from the
/// labels to the full parameters, and the matched tables with the same labels.
struct Views {
  std::string what, caption, labels_spec;
  bool wide = false;
  Table runs, labels, matched_steering, matched_attacker;
};

/// Replace cells of the given columns that name a row by its label.
Table relabel(const Table& in, const std::map<std::string, std::string>& label, const std::set<std::string>& columns) {
  Table t = in;
  for (std::size_t c = 0; c < t.head.size(); ++c) {
    if (!columns.count(t.head[c])) continue;
    for (auto& r : t.rows)
      if (const auto it = label.find(r[c]); it != label.end()) r[c] = it->second;
  }
  return t;
}

Views make_views(const Tables& t, const Columns& cols, const ColumnChoice& ch) {
  Views v;
  const std::string util = compact_utility(t.runs, cols);
  v.runs = select_columns(t.runs, [&](const std::string& h) {
    if (ch.compact)
      return h == "steering in_loop top-1" || (ends_with(h, " heldout top-1") && h != "steering heldout top-1") || h == util ||
             h == "PSNR dB";
    return (ch.privacy && privacy_head(h)) || (ch.utility && utility_head(h)) || (ch.quality && quality_head(h));
  });
  v.wide = !ch.compact;
  v.what = ch.compact ? "compact (steering in_loop and attackers' heldout top-1, utility, PSNR)" : ch.name;
  if (ch.compact) v.caption = "Re-identification risk in % (steering model in the loop; independent attackers heldout), utility and PSNR.";
  else {
    std::vector<std::string> parts;
    if (ch.privacy) parts.push_back("re-identification risk in % (steering model in_loop and heldout; independent attackers heldout and linkage)");
    if (ch.utility) parts.push_back("utility in %");
    if (ch.quality) parts.push_back("image quality");
    v.caption = "Per run: " + joined(parts) + ".";
  }
  // Short labels (R1, R2, ...) when a run name is too long for a narrow first column.
  bool long_names = false;
  for (const auto& r : t.runs.rows) long_names = long_names || r[0].size() > 16;
  std::map<std::string, std::string> label;
  for (std::size_t i = 0; i < t.runs.rows.size(); ++i) label[t.runs.rows[i][0]] = long_names ? "R" + std::to_string(i + 1) : t.runs.rows[i][0];
  const std::set<std::string> name_columns = {"run", "baseline", "EDI row"};
  v.runs = relabel(v.runs, label, name_columns);
  v.matched_steering = relabel(t.matched.steering, label, name_columns);
  v.matched_attacker = relabel(t.matched.attacker, label, name_columns);
  v.labels = select_columns(t.runs, [](const std::string& h) {
    return h == "method" || h == "operator" || h == "parameters" || h == "passes" || h == "images" || h == "seconds";
  });
  v.labels_spec = "lllp{0.45\\linewidth}rrr";
  if (long_names) {
    v.labels.head.insert(v.labels.head.begin(), "label");
    for (std::size_t i = 0; i < v.labels.rows.size(); ++i) v.labels.rows[i].insert(v.labels.rows[i].begin(), "R" + std::to_string(i + 1));
    v.labels_spec = "l" + v.labels_spec;
  }
  return v;
}

std::string markdown(const Tables& t, const Views& v) {
  std::string md = "# EDI-Anon aggregate\n\n";
  for (std::size_t i = 1; i < t.ctx.lines.size(); ++i) md += "- " + t.ctx.lines[i] + "\n";
  md += "\n## Runs: " + v.what + " (" + t.ctx.unit + ")\n\n" + md_table(v.runs.head, v.runs.rows);
  md += "\nThe control run (method none: the originals) comes first. A row `<run>@<T>` is the snapshot of that run at the first "
        "pass whose steering risk was at or below T %. Independent attackers never steered the run. Other column sets: "
        "--columns privacy, utility, quality (or a comma list of them), all; every column is in aggregate.csv.\n";
  md += "\n## Run labels\n\n" + md_table(v.labels.head, v.labels.rows);
  const std::string task = t.matched.task.empty() ? std::string("no utility task") : t.matched.task;
  md += "\n## Matched privacy on the steering risk (" + task + "; " + t.ctx.unit + ")\n\n" + t.matched.rule + ".\n\n";
  md += v.matched_steering.rows.empty() ? std::string("No conventional baseline among the evaluated runs.\n")
                                        : md_table(v.matched_steering.head, v.matched_steering.rows);
  md += "\n## Matched privacy on the strongest independent attacker's heldout risk (" + task + "; " + t.ctx.unit + ")\n\n";
  md += v.matched_attacker.rows.empty() ? std::string("No baseline with an independent attacker's heldout risk.\n")
                                        : md_table(v.matched_attacker.head, v.matched_attacker.rows);
  md += "\n## Missing, failed or unfinished runs\n\n";
  if (t.bad.empty()) md += "None.\n";
  for (const auto& s : t.bad) md += "- `" + s.dir.string() + "`: **" + s.state + "**: " + s.reason + "\n";
  return md;
}

std::string latex_matched(const Tables& t, const Table& m, const std::string& what) {
  const Table s = select_columns(m, [](const std::string& h) {
    return h == "EDI row" || h == "pairing" || h == "baseline risk" || h == "EDI risk" || h == "baseline utility" ||
           h == "EDI utility" || h.rfind("difference", 0) == 0 || h == "identities";
  });
  return "\n" + tex_table(s, "Matched privacy on " + what + " (" + (t.matched.task.empty() ? "no utility task" : t.matched.task) +
                                 "): " + t.matched.rule + ". " + t.ctx.unit + ".", true);
}

/// The preamble of aggregate.tex: what it needs, the context, the fitting macro (defined once per document).
std::string latex_preamble(const Tables& t) {
  std::string tex = "% edi-anon aggregate tables for pdflatex (ASCII only). Needs \\usepackage{booktabs} and \\usepackage{graphicx}.\n";
  for (const auto& l : t.ctx.lines) tex += "% " + tex_escape(l) + "\n";
  for (const auto& s : t.bad) tex += "% NOT INCLUDED (" + s.state + "): " + tex_escape(s.dir.string() + ": " + s.reason) + "\n";
  tex += "\\ifdefined\\edianonbox\\else\\newsavebox{\\edianonbox}\\fi\n";
  tex += "\\providecommand{\\edianonfit}{%\n"
         "  \\ifdim\\wd\\edianonbox>\\linewidth\\sbox{\\edianonbox}{\\resizebox{\\linewidth}{!}{\\usebox{\\edianonbox}}}\\fi\n"
         "  \\ifdim\\dimexpr\\ht\\edianonbox+\\dp\\edianonbox\\relax>0.85\\textheight\n"
         "    \\sbox{\\edianonbox}{\\resizebox*{!}{0.85\\textheight}{\\usebox{\\edianonbox}}}\\fi\n"
         "  \\usebox{\\edianonbox}}\n";
  return tex;
}

std::string latex(const Tables& t, const Views& v) {
  std::string tex = latex_preamble(t);
  const std::string unit = " " + t.ctx.unit + ".";
  tex += tex_table(v.runs, v.caption + unit, v.wide);
  tex += "\n" + tex_table(v.labels, "Run labels and their full parameters.", true, v.labels_spec);
  if (!v.matched_steering.rows.empty()) tex += latex_matched(t, v.matched_steering, "the steering risk");
  if (!v.matched_attacker.rows.empty()) tex += latex_matched(t, v.matched_attacker, "the strongest independent attacker's heldout risk");
  return tex;
}

std::string aggregate_json(const AggregateConfig& cfg, const Tables& t) {
  json all = {{"format", "edi-anon-aggregate"}, {"version", 2}, {"context", t.ctx.j}, {"runs", t.runs.j},
              {"not_included", not_included_json(t.bad)},
              {"matched", {{"risk", "steering in_loop top-1"}, {"task", t.matched.task}, {"rule", t.matched.rule},
                           {"rows", t.matched.steering.j}, {"attacker_rows", t.matched.attacker.j}, {"match_risk", cfg.match_risk}}}};
  return all.dump(2) + "\n";
}

}  // namespace

AggregateResult aggregate_runs(const AggregateConfig& cfg, const std::function<void(const std::string&)>& log) {
  if (cfg.runs.empty()) throw ConfigError("aggregate: no run directories given");
  const ColumnChoice choice = parse_columns(cfg.columns);
  const HtmlReporter html = cfg.html ? find_html_reporter() : HtmlReporter{};  // missing python3 etc.: before any work
  AggregateResult res;
  const std::vector<Row> rows = load_rows(cfg, log, res);
  if (cfg.match_risk != "steering") {
    bool known = rows.empty();
    for (const auto& r : rows) known = known || find_attacker(r.m, cfg.match_risk) != nullptr;
    if (!known) throw ConfigError("--match-risk " + cfg.match_risk + ": no run reports such an attacker (use steering, lbph, faceapi, faceres, adaptive or model:<file>)");
  }
  const Columns cols = collect_columns(rows);
  Tables t;
  t.ctx = make_context(cfg, rows, cols);
  t.runs = runs_table(rows, cols);
  t.matched = matched_tables(rows, cols, cfg, default_task(rows, cfg.match_task));
  for (const auto* list : {&res.runs, &res.snapshots})
    for (const auto& s : *list)
      if (s.state != "ok") t.bad.push_back(s);
  create_private_dir(cfg.out);
  write_csvs(cfg, t);
  write_file_atomic(cfg.out / "aggregate.meta.json", meta_json(cfg, t));
  const Views views = make_views(t, cols, choice);
  res.markdown = markdown(t, views);
  write_file_atomic(cfg.out / "aggregate.md", res.markdown);
  write_file_atomic(cfg.out / "aggregate.tex", latex(t, views));
  write_file_atomic(cfg.out / "aggregate.json", aggregate_json(cfg, t));
  for (const char* f : {"aggregate.csv", "aggregate.meta.json", "aggregate.md", "aggregate.tex", "aggregate.json", "matched.csv"})
    res.files.push_back(cfg.out / f);
  if (cfg.html && rows.empty() && log) log("report.html not written: no evaluated run to show");
  if (cfg.html && !rows.empty()) res.files.push_back(write_html_report(html, cfg.out, log));
  return res;
}

}  // namespace edi::report
