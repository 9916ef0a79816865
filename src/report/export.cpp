#include "edi/report/export.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/manifest.hpp"
#include "edi/engine/runner.hpp"

namespace edi::report {

namespace fs = std::filesystem;

namespace {

/// 128 random bits from the OS, hex: the secret that makes names unlinkable
/// to ids (names are sha256(secret, id)); it is kept only in the mapping.
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

}  // namespace

ExportResult export_run(const ExportConfig& cfg) {
  for (const char* f : {"manifest.csv", "outcomes.csv"})
    if (!fs::is_regular_file(cfg.run / f)) throw DataError(cfg.run.string() + ": not a finished run directory (no " + f + ")");
  if (!fs::is_directory(cfg.run / "images")) throw DataError(cfg.run.string() + ": the run wrote no images (run without --no-images)");
  const data::Manifest m = data::read_manifest(cfg.run / "manifest.csv");
  if (fs::exists(cfg.out) && !fs::is_empty(cfg.out)) throw ConfigError("--out " + cfg.out.string() + ": exists and is not empty");
  if (inside(cfg.out, cfg.run)) throw ConfigError("--out " + cfg.out.string() + ": must not be inside the run directory");
  if (inside(cfg.out, m.data_root)) throw ConfigError("--out " + cfg.out.string() + ": must not be inside the data directory");

  std::vector<int> tasks;
  ExportResult r;
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
  for (int t : tasks) r.tasks.push_back(m.tasks[static_cast<std::size_t>(t)].name);

  const CsvTable out = parse_csv(read_file(cfg.run / "outcomes.csv"), (cfg.run / "outcomes.csv").string());
  const int c_id = csv_column(out, "id"), c_changed = csv_column(out, "changed_share");
  if (c_id < 0) throw DataError((cfg.run / "outcomes.csv").string() + ": no column 'id'");
  std::map<std::string, const data::ManifestEntry*> by_id;
  for (const auto& e : m.entries) by_id[e.id] = &e;

  const std::string secret = os_secret();
  std::string mapping = "# " + std::string("export of ") + fs::absolute(cfg.run).lexically_normal().string() + " to " +
                        fs::absolute(cfg.out).lexically_normal().string() + "; names = sha256(secret + id)[:20]\n";
  mapping += "# secret " + secret + "\n";
  mapping += csv_line({"name", "id", "identity", "split", "state", "trees"});
  fs::create_directories(cfg.out);
  // Rows in name order, so the mapping's order says nothing about identity.
  std::vector<std::vector<std::string>> rows;
  for (const auto& row : out.rows) {
    const std::string& id = row[static_cast<std::size_t>(c_id)];
    const auto it = by_id.find(id);
    if (it == by_id.end()) throw DataError((cfg.run / "outcomes.csv").string() + ": image " + id + " is not in the manifest");
    const data::ManifestEntry& e = *it->second;
    const std::string name = sha256_hex(secret + "\n" + id).substr(0, 20);
    const std::string identity = m.identities[static_cast<std::size_t>(e.identity)];
    const fs::path src = engine::image_output_path(cfg.run / "images", id);
    if (!fs::is_regular_file(src)) throw DataError(src.string() + ": anonymized image missing");
    const std::string sha = sha256_file(src);
    const fs::path original = fs::path(m.data_root) / e.id;
    bool unchanged = sha == e.sha256;
    if (c_changed >= 0) {
      const std::string& ch = row[static_cast<std::size_t>(c_changed)];
      if (!ch.empty() && std::stod(ch) == 0.0) unchanged = true;
    }
    if (unchanged) {
      ++r.withheld_unchanged;
      rows.push_back({name, id, identity, data::split_name(e.split), "withheld: identical to the original", ""});
      continue;
    }
    std::string trees;
    for (int t : tasks) {
      const int label = e.attributes[static_cast<std::size_t>(t)];
      if (label < 0) {
        ++r.unlabelled;
        continue;
      }
      const auto& task = m.tasks[static_cast<std::size_t>(t)];
      const fs::path dst = cfg.out / task.name / data::split_name(e.split) / task.classes[static_cast<std::size_t>(label)] / (name + ".png");
      fs::create_directories(dst.parent_path());
      write_file_atomic(dst, read_file(src), Durability::kProcessCrash);
      ++r.files;
      trees += (trees.empty() ? "" : ";") + task.name;
    }
    ++r.exported;
    rows.push_back({name, id, identity, data::split_name(e.split), "exported", trees});
  }
  std::sort(rows.begin(), rows.end());
  for (const auto& x : rows) mapping += csv_line(x);
  r.mapping = cfg.run / "export-mapping.csv";
  write_file_atomic(r.mapping, mapping);
  fs::permissions(r.mapping, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  return r;
}

}  // namespace edi::report
