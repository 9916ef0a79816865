#include "edi/report/export.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/manifest.hpp"
#include "edi/data/private_file.hpp"
#include "edi/engine/run_io.hpp"
#include "edi/rundir/layout.hpp"
#include "edi/rundir/read.hpp"

namespace edi::report {

namespace fs = std::filesystem;
namespace rd = ::edi::rundir;

namespace {

/// 128 random bits from the OS, hex: the secret that makes names unlinkable
/// to ids (names are sha256(secret, task, id)); it is kept only in the mapping.
std::string os_secret() {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  unsigned char b[16];
  if (!urandom.read(reinterpret_cast<char*>(b), sizeof b)) throw IoError("/dev/urandom: cannot read");
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) s += hex[c >> 4], s += hex[c & 15];
  return s;
}

bool inside(const fs::path& child, const fs::path& parent) {
  const fs::path c = fs::weakly_canonical(child), p = fs::weakly_canonical(parent);
  auto ci = c.begin();
  for (auto pi = p.begin(); pi != p.end(); ++pi, ++ci)
    if (ci == c.end() || *ci != *pi) return false;
  return true;
}

/// The tasks to export (indices into m.tasks), each with safe folder names.
std::vector<int> chosen_tasks(const ExportConfig& cfg, const data::Manifest& m) {
  std::vector<int> tasks;
  if (cfg.tasks.empty()) {
    for (std::size_t t = 0; t < m.tasks.size(); ++t) tasks.push_back(static_cast<int>(t));
  } else {
    for (const auto& name : cfg.tasks) {
      const int t = m.task_index(name);
      if (t < 0) {
        std::string known;
        for (const auto& x : m.tasks) known += (known.empty() ? "" : ", ") + x.name;
        throw ConfigError("--task " + name + ": the data set has no such attribute task (known: " + (known.empty() ? "none" : known) + ")");
      }
      tasks.push_back(t);
    }
  }
  if (tasks.empty()) throw ConfigError(cfg.run.string() + ": the data set has no attribute tasks (labels.csv) to export");
  const std::string src = (cfg.run / rd::file::kManifest).string();
  for (int t : tasks) {
    const auto& task = m.tasks[static_cast<std::size_t>(t)];
    if (const std::string why = path_component_problem(task.name); !why.empty())
      throw DataError(src + ": task '" + task.name + "' cannot be an export folder name: " + why);
    for (const auto& cls : task.classes)
      if (const std::string why = path_component_problem(cls); !why.empty())
        throw DataError(src + ": " + task.name + " class '" + cls + "' cannot be an export folder name: " + why);
  }
  return tasks;
}

struct CopyJob {
  fs::path src, dst;
};

/// Copy in the given (shuffled) order; every file gets the fixed mtime.
void write_files(const std::vector<CopyJob>& jobs, const fs::path& out) {
  const timespec times[2] = {{kExportMtime, 0}, {kExportMtime, 0}};
  for (const auto& j : jobs) {
    std::error_code ec;
    fs::create_directories(j.dst.parent_path(), ec);
    if (ec) throw IoError(j.dst.parent_path().string() + ": cannot create directory: " + ec.message());
    write_file_atomic(j.dst, read_file(j.src), Durability::kProcessCrash);
    if (::utimensat(AT_FDCWD, j.dst.c_str(), times, 0) != 0)
      throw IoError(j.dst.string() + ": cannot set the modification time: " + std::strerror(errno));
  }
  // Folders last (writing a file changes its folder's mtime), deepest first.
  std::vector<fs::path> dirs{out};
  for (auto it = fs::recursive_directory_iterator(out); it != fs::recursive_directory_iterator(); ++it)
    if (it->is_directory()) dirs.push_back(it->path());
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) { return a.string().size() > b.string().size(); });
  for (const auto& d : dirs)
    if (::utimensat(AT_FDCWD, d.c_str(), times, 0) != 0)
      throw IoError(d.string() + ": cannot set the modification time: " + std::strerror(errno));
}

}  // namespace

std::string path_component_problem(const std::string& name) {
  if (name.empty()) return "empty";
  if (name.size() > 100) return "longer than 100 characters";
  if (name[0] == '.' || name[0] == ' ') return "starts with '" + name.substr(0, 1) + "'";
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '_' ||
                    c == '-' || c == '.' || c == '+';
    if (!ok) {
      const std::string shown = c == '/' ? "'/'" : (c >= 32 && c < 127) ? std::string("'") + c + "'" : "a non-ASCII or control byte";
      return "contains " + shown + " (expected letters, digits, space and _ - . +)";
    }
  }
  return "";
}

ExportResult export_run(const ExportConfig& cfg) {
  for (const char* f : {rd::file::kManifest, rd::file::kOutcomes})
    if (!fs::is_regular_file(cfg.run / f)) throw DataError(cfg.run.string() + ": not a finished run directory (no " + f + ")");
  if (!fs::is_directory(cfg.run / rd::dir::kImages)) throw DataError(cfg.run.string() + ": the run wrote no images (run without --no-images)");
  const data::Manifest m = data::read_manifest(cfg.run / rd::file::kManifest);
  if (fs::exists(cfg.out) && !fs::is_empty(cfg.out)) throw ConfigError("--out " + cfg.out.string() + ": exists and is not empty");
  if (inside(cfg.out, cfg.run)) throw ConfigError("--out " + cfg.out.string() + ": must not be inside the run directory");
  if (inside(cfg.out, m.data_root)) throw ConfigError("--out " + cfg.out.string() + ": must not be inside the data directory");

  ExportResult r;
  const std::vector<int> tasks = chosen_tasks(cfg, m);
  for (int t : tasks) r.tasks.push_back(m.tasks[static_cast<std::size_t>(t)].name);

  const fs::path outcomes = cfg.run / rd::file::kOutcomes;
  std::map<std::string, const data::ManifestEntry*> by_id;
  for (const auto& e : m.entries) by_id[e.id] = &e;

  const std::string secret = os_secret();
  std::string mapping = "# export of " + fs::absolute(cfg.run).lexically_normal().string() + " to " +
                        fs::absolute(cfg.out).lexically_normal().string() + "; names = sha256(secret + task + id)[:20], per task tree\n";
  mapping += "# secret " + secret + "\n";
  mapping += csv_line({"name", "task", "id", "identity", "split", "state"});
  std::vector<std::vector<std::string>> rows;
  std::vector<CopyJob> jobs;
  for (const rd::OutcomeRow& row : rd::read_outcomes(outcomes)) {
    const std::string& id = row.id;
    const auto it = by_id.find(id);
    if (it == by_id.end()) throw DataError(outcomes.string() + ": image " + id + " is not in the manifest");
    const data::ManifestEntry& e = *it->second;
    const std::string identity = m.identities[static_cast<std::size_t>(e.identity)];
    const std::string split = data::split_name(e.split);
    const fs::path src = rd::image_path(cfg.run / rd::dir::kImages, data::checked_relative_id(id, outcomes.string()).generic_string());
    if (!fs::is_regular_file(src)) throw DataError(src.string() + ": anonymized image missing");
    bool unchanged = sha256_file(src) == e.sha256;
    if (row.changed_share && *row.changed_share == 0.0) unchanged = true;
    if (unchanged) {
      ++r.withheld_unchanged;
      rows.push_back({"", "", id, identity, split, "withheld: identical to the original"});
      continue;
    }
    const bool identified = row.identified;
    const std::string& status = row.status;
    if (identified && cfg.withhold_identified) {
      ++r.withheld_identified;
      rows.push_back({"", "", id, identity, split, "withheld: still identified (status " + status + ")"});
      continue;
    }
    bool any = false;
    for (int t : tasks) {
      const int label = e.attributes[static_cast<std::size_t>(t)];
      if (label < 0) {
        ++r.unlabelled;
        continue;
      }
      const auto& task = m.tasks[static_cast<std::size_t>(t)];
      const std::string name = sha256_hex(secret + "\n" + task.name + "\n" + id).substr(0, 20);
      jobs.push_back({src, cfg.out / task.name / split / task.classes[static_cast<std::size_t>(label)] / (name + ".png")});
      rows.push_back({name, task.name, id, identity, split, identified ? "exported; still identified (status " + status + ")" : "exported"});
      any = true;
    }
    if (!any) {
      rows.push_back({"", "", id, identity, split, "skipped: no label for the exported tasks"});
      continue;
    }
    ++r.exported;
    if (identified) ++r.still_identified;
  }
  // The mapping first, at 0600 from its first byte: a crash mid-copy still
  // leaves the key to what was written.
  std::sort(rows.begin(), rows.end());
  for (const auto& x : rows) mapping += csv_line(x);
  r.mapping = cfg.run / rd::file::kExportMapping;
  data::write_private_file(r.mapping, mapping);
  // Shuffled order: neither creation order nor inode numbers follow identity.
  std::seed_seq seq(secret.begin(), secret.end());
  std::mt19937_64 rng(seq);
  std::shuffle(jobs.begin(), jobs.end(), rng);
  // Into a sibling folder renamed into place at the end: a failed export
  // leaves no half-filled tree behind.
  const fs::path out_abs = fs::absolute(cfg.out).lexically_normal();
  const fs::path partial = out_abs.parent_path() / ("." + out_abs.filename().string() + ".partial-" + secret.substr(0, 8));
  try {
    std::error_code ec;
    fs::create_directories(partial, ec);
    if (ec) throw IoError(partial.string() + ": cannot create directory: " + ec.message());
    for (auto& j : jobs) j.dst = partial / j.dst.lexically_relative(cfg.out);
    write_files(jobs, partial);
    fs::rename(partial, out_abs, ec);  // `out` is absent or an empty folder
    if (ec) throw IoError(out_abs.string() + ": cannot move the finished export into place: " + ec.message());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(partial, ec);
    throw;
  }
  r.files = jobs.size();
  return r;
}

}  // namespace edi::report
