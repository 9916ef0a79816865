#include "edi/data/manifest.hpp"

#include <opencv2/core/utility.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/core/rng.hpp"
#include "edi/data/image.hpp"

namespace edi::data {

namespace fs = std::filesystem;
using nlohmann::json;

const char* split_name(Split s) {
  switch (s) {
    case Split::kTrain: return "train";
    case Split::kVal: return "val";
    case Split::kTest: return "test";
  }
  return "?";
}

Split parse_split(const std::string& text, const std::string& where) {
  if (text == "train") return Split::kTrain;
  if (text == "val") return Split::kVal;
  if (text == "test") return Split::kTest;
  throw DataError(where + ": split '" + text + "': expected train, val or test");
}

int Manifest::task_index(const std::string& name) const {
  for (std::size_t i = 0; i < tasks.size(); ++i)
    if (tasks[i].name == name) return static_cast<int>(i);
  return -1;
}

std::size_t Manifest::count(Split s) const {
  return static_cast<std::size_t>(
      std::count_if(entries.begin(), entries.end(), [s](const ManifestEntry& e) { return e.split == s; }));
}

std::string Manifest::hash() const {
  Manifest copy = *this;
  copy.data_root.clear();  // the same data moved elsewhere is the same data set
  return sha256_hex(manifest_to_csv(copy));
}

// --- labels ---------------------------------------------------------------

LabelsTable read_labels(const fs::path& path) {
  const CsvTable csv = parse_csv(read_file(path), path.string());
  if (csv.header.empty() || csv.header[0] != "identity")
    throw DataError(path.string() + ": first column must be 'identity', found '" +
                    (csv.header.empty() ? std::string() : csv.header[0]) + "'");
  const int image_col = csv_column(csv, "image");
  LabelsTable table;
  std::vector<int> task_cols;
  for (std::size_t c = 1; c < csv.header.size(); ++c) {
    if (static_cast<int>(c) == image_col) continue;
    const std::string& name = csv.header[c];
    if (name.empty()) throw DataError(path.string() + ": column " + std::to_string(c + 1) + " has no name");
    if (std::count(table.tasks.begin(), table.tasks.end(), name))
      throw DataError(path.string() + ": duplicate column '" + name + "'");
    table.tasks.push_back(name);
    task_cols.push_back(static_cast<int>(c));
  }
  if (table.tasks.empty())
    throw DataError(path.string() + ": no attribute columns (expected e.g. identity,age,gender,race)");
  std::set<std::pair<std::string, std::string>> seen;
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const auto& row = csv.rows[r];
    LabelRow lr;
    lr.line = csv.row_lines[r];
    lr.identity = row[0];
    if (lr.identity.empty())
      throw DataError(path.string() + ":" + std::to_string(lr.line) + ": empty identity");
    if (image_col >= 0) lr.image = row[static_cast<std::size_t>(image_col)];
    if (!seen.insert({lr.identity, lr.image}).second)
      throw DataError(path.string() + ":" + std::to_string(lr.line) + ": duplicate row for identity '" +
                      lr.identity + "'" + (lr.image.empty() ? "" : " image '" + lr.image + "'"));
    for (int c : task_cols) lr.values.push_back(row[static_cast<std::size_t>(c)]);
    table.rows.push_back(std::move(lr));
  }
  return table;
}

// --- splits ---------------------------------------------------------------

void assign_splits(std::vector<ManifestEntry>& entries, const SplitSpec& spec) {
  std::map<int, std::vector<std::size_t>> by_identity;
  for (std::size_t i = 0; i < entries.size(); ++i) by_identity[entries[i].identity].push_back(i);
  for (auto& [identity, idx] : by_identity) {
    std::vector<std::pair<std::uint64_t, std::size_t>> keyed;
    for (std::size_t i : idx) {
      CounterRng rng(RngKey{spec.seed, stable_hash64(entries[i].id), 0, RngStream::kSplit});
      keyed.emplace_back(rng.next_u64(), i);
    }
    std::sort(keyed.begin(), keyed.end());
    const std::size_t n = keyed.size();
    std::size_t n_test = static_cast<std::size_t>(std::llround(n * spec.test_fraction));
    std::size_t n_val = static_cast<std::size_t>(std::llround(n * spec.val_fraction));
    // Keep at least one training image per identity.
    while (n_test + n_val >= n && (n_test + n_val) > 0) {
      if (n_val > 0) --n_val;
      else --n_test;
    }
    for (std::size_t k = 0; k < n; ++k) {
      Split s = Split::kTrain;
      if (k < n_test) s = Split::kTest;
      else if (k < n_test + n_val) s = Split::kVal;
      entries[keyed[k].second].split = s;
    }
  }
}

// --- scanning -------------------------------------------------------------

namespace {

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::string relative_id(const fs::path& file, const fs::path& root) {
  return fs::relative(file, root).generic_string();
}

}  // namespace

ScanResult build_manifest(const ScanOptions& options) {
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(options.data_dir, ec);
  if (ec || !fs::is_directory(root))
    throw DataError(options.data_dir.string() + ": data directory does not exist or is not a directory");
  ScanResult result;
  Manifest& m = result.manifest;
  m.data_root = root.string();
  m.split = options.split;

  // Identity folders, sorted.
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory() && !hidden(entry.path())) m.identities.push_back(entry.path().filename().string());
  }
  std::sort(m.identities.begin(), m.identities.end());
  if (m.identities.empty())
    throw DataError(root.string() + ": no identity folders (expected DATA/<identity>/<image files>)");

  // Candidate files, sorted by relative path.
  struct Candidate {
    fs::path path;
    std::string id;
    int identity;
  };
  std::vector<Candidate> files;
  for (std::size_t k = 0; k < m.identities.size(); ++k) {
    for (auto it = fs::recursive_directory_iterator(root / m.identities[k]); it != fs::recursive_directory_iterator(); ++it) {
      if (hidden(it->path())) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) files.push_back({it->path(), relative_id(it->path(), root), static_cast<int>(k)});
    }
  }
  std::sort(files.begin(), files.end(), [](const Candidate& a, const Candidate& b) { return a.id < b.id; });

  // Decode + hash in parallel (OpenCV's pool, sized by --threads).
  std::vector<ManifestEntry> entries(files.size());
  std::vector<std::string> errors(files.size());
  cv::parallel_for_(cv::Range(0, static_cast<int>(files.size())), [&](const cv::Range& r) {
    for (int i = r.start; i < r.end; ++i) {
      const auto& f = files[static_cast<std::size_t>(i)];
      try {
        const cv::Size size = probe_image(f.path, options.min_side);
        ManifestEntry& e = entries[static_cast<std::size_t>(i)];
        e.id = f.id;
        e.identity = f.identity;
        e.width = size.width;
        e.height = size.height;
        e.sha256 = sha256_file(f.path);
      } catch (const Error& err) {
        std::string what = err.what();
        const std::string prefix = f.path.string() + ": ";
        if (what.rfind(prefix, 0) == 0) what = what.substr(prefix.size());
        errors[static_cast<std::size_t>(i)] = what;
      }
    }
  });
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (!errors[i].empty()) result.quarantined.push_back({files[i].id, errors[i]});
    else m.entries.push_back(std::move(entries[i]));
  }

  // Labels (MTF layout).
  if (!options.labels_csv.empty()) {
    m.layout = "mtf";
    m.labels_sha256 = sha256_file(options.labels_csv);
    const LabelsTable labels = read_labels(options.labels_csv);
    const std::string src = options.labels_csv.string();
    std::vector<std::set<std::string>> values(labels.tasks.size());
    std::set<std::string> known(m.identities.begin(), m.identities.end());
    for (const auto& row : labels.rows) {
      if (!known.count(row.identity))
        throw DataError(src + ":" + std::to_string(row.line) + ": identity '" + row.identity +
                        "' has no folder in " + root.string());
      for (std::size_t t = 0; t < labels.tasks.size(); ++t)
        if (!row.values[t].empty()) values[t].insert(row.values[t]);
    }
    for (std::size_t t = 0; t < labels.tasks.size(); ++t)
      m.tasks.push_back({labels.tasks[t], std::vector<std::string>(values[t].begin(), values[t].end())});
    std::map<std::string, const LabelRow*> per_identity, per_image;
    for (const auto& row : labels.rows) (row.image.empty() ? per_identity[row.identity] : per_image[row.image]) = &row;
    for (const auto& [image, row] : per_image) {
      const bool found = std::any_of(m.entries.begin(), m.entries.end(), [&](const ManifestEntry& e) { return e.id == image; }) ||
                         std::any_of(result.quarantined.begin(), result.quarantined.end(), [&](const QuarantineItem& q) { return q.path == image; });
      if (!found)
        throw DataError(src + ":" + std::to_string(row->line) + ": image '" + image + "' is not in " + root.string());
    }
    for (auto& e : m.entries) {
      e.attributes.assign(m.tasks.size(), -1);
      const LabelRow* rows[2] = {nullptr, nullptr};
      if (auto it = per_identity.find(m.identities[static_cast<std::size_t>(e.identity)]); it != per_identity.end()) rows[0] = it->second;
      if (auto it = per_image.find(e.id); it != per_image.end()) rows[1] = it->second;
      for (const LabelRow* row : rows) {
        if (!row) continue;
        for (std::size_t t = 0; t < m.tasks.size(); ++t) {
          if (row->values[t].empty()) continue;
          const auto& cls = m.tasks[t].classes;
          e.attributes[t] = static_cast<int>(std::lower_bound(cls.begin(), cls.end(), row->values[t]) - cls.begin());
        }
      }
    }
  } else {
    m.layout = "imagefolder";
  }
  assign_splits(m.entries, m.split);
  return result;
}

// --- (de)serialisation ----------------------------------------------------

std::string manifest_to_csv(const Manifest& m) {
  json meta;
  meta["format"] = "edi-anon-manifest";
  meta["version"] = 1;
  meta["data_root"] = m.data_root;
  meta["layout"] = m.layout;
  meta["labels_sha256"] = m.labels_sha256;
  meta["identities"] = m.identities;
  meta["tasks"] = json::array();
  for (const auto& t : m.tasks) meta["tasks"].push_back({{"name", t.name}, {"classes", t.classes}});
  meta["split"] = {{"test_fraction", m.split.test_fraction}, {"val_fraction", m.split.val_fraction}, {"seed", m.split.seed}};
  std::string out = "#" + meta.dump() + "\n";
  std::vector<std::string> header{"id", "identity"};
  for (const auto& t : m.tasks) header.push_back(t.name);
  for (const char* h : {"width", "height", "sha256", "split"}) header.emplace_back(h);
  out += csv_line(header);
  for (const auto& e : m.entries) {
    std::vector<std::string> row{e.id, m.identities.at(static_cast<std::size_t>(e.identity))};
    for (std::size_t t = 0; t < m.tasks.size(); ++t) {
      const int a = t < e.attributes.size() ? e.attributes[t] : -1;
      row.push_back(a < 0 ? std::string() : m.tasks[t].classes.at(static_cast<std::size_t>(a)));
    }
    row.push_back(std::to_string(e.width));
    row.push_back(std::to_string(e.height));
    row.push_back(e.sha256);
    row.push_back(split_name(e.split));
    out += csv_line(row);
  }
  return out;
}

Manifest manifest_from_csv(const std::string& text, const std::string& source) {
  const CsvTable csv = parse_csv(text, source);
  if (csv.comments.empty()) throw DataError(source + ": not an edi-anon manifest (no metadata line)");
  json meta;
  try {
    meta = json::parse(csv.comments.front());
  } catch (const json::exception& e) {
    throw DataError(source + ":1: bad metadata line: " + e.what());
  }
  if (meta.value("format", "") != "edi-anon-manifest")
    throw DataError(source + ": not an edi-anon manifest (format field missing)");
  if (meta.value("version", 0) != 1)
    throw DataError(source + ": manifest version " + meta.value("version", json(0)).dump() + " not supported (expected 1)");
  Manifest m;
  try {
    m.data_root = meta.at("data_root").get<std::string>();
    m.layout = meta.at("layout").get<std::string>();
    m.labels_sha256 = meta.at("labels_sha256").get<std::string>();
    m.identities = meta.at("identities").get<std::vector<std::string>>();
    for (const auto& t : meta.at("tasks"))
      m.tasks.push_back({t.at("name").get<std::string>(), t.at("classes").get<std::vector<std::string>>()});
    m.split.test_fraction = meta.at("split").at("test_fraction").get<double>();
    m.split.val_fraction = meta.at("split").at("val_fraction").get<double>();
    m.split.seed = meta.at("split").at("seed").get<std::uint64_t>();
  } catch (const json::exception& e) {
    throw DataError(source + ":1: bad metadata: " + e.what());
  }
  const std::size_t expected = 6 + m.tasks.size();
  if (csv.header.size() != expected || csv.header[0] != "id" || csv.header[1] != "identity")
    throw DataError(source + ": header does not match the metadata (expected id,identity,<tasks>,width,height,sha256,split)");
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const auto& row = csv.rows[r];
    const std::string where = source + ":" + std::to_string(csv.row_lines[r]);
    ManifestEntry e;
    e.id = row[0];
    const auto it = std::lower_bound(m.identities.begin(), m.identities.end(), row[1]);
    if (it == m.identities.end() || *it != row[1]) throw DataError(where + ": unknown identity '" + row[1] + "'");
    e.identity = static_cast<int>(it - m.identities.begin());
    for (std::size_t t = 0; t < m.tasks.size(); ++t) {
      const std::string& v = row[2 + t];
      if (v.empty()) {
        e.attributes.push_back(-1);
        continue;
      }
      const auto& cls = m.tasks[t].classes;
      const auto c = std::lower_bound(cls.begin(), cls.end(), v);
      if (c == cls.end() || *c != v) throw DataError(where + ": unknown " + m.tasks[t].name + " class '" + v + "'");
      e.attributes.push_back(static_cast<int>(c - cls.begin()));
    }
    try {
      e.width = std::stoi(row[2 + m.tasks.size()]);
      e.height = std::stoi(row[3 + m.tasks.size()]);
    } catch (const std::exception&) {
      throw DataError(where + ": width/height are not integers");
    }
    e.sha256 = row[4 + m.tasks.size()];
    e.split = parse_split(row[5 + m.tasks.size()], where);
    m.entries.push_back(std::move(e));
  }
  return m;
}

void write_manifest(const Manifest& manifest, const fs::path& path) {
  write_file_atomic(path, manifest_to_csv(manifest));
}

Manifest read_manifest(const fs::path& path) {
  return manifest_from_csv(read_file(path), path.string());
}

void write_quarantine(const std::vector<QuarantineItem>& items, const fs::path& path) {
  std::string out = csv_line({"path", "reason"});
  for (const auto& q : items) out += csv_line({q.path, q.reason});
  write_file_atomic(path, out);
}

std::vector<std::string> manifest_differences(const Manifest& stored, const Manifest& current) {
  std::vector<std::string> diffs;
  if (stored.identities != current.identities)
    diffs.push_back("identity folders differ (" + std::to_string(stored.identities.size()) + " stored, " +
                    std::to_string(current.identities.size()) + " now)");
  if (stored.labels_sha256 != current.labels_sha256) diffs.push_back("labels file content differs");
  std::vector<std::string> st, ct;
  for (const auto& t : stored.tasks) st.push_back(t.name);
  for (const auto& t : current.tasks) ct.push_back(t.name);
  if (st != ct) diffs.push_back("attribute tasks differ");
  if (stored.split.test_fraction != current.split.test_fraction || stored.split.val_fraction != current.split.val_fraction ||
      stored.split.seed != current.split.seed)
    diffs.push_back("split settings differ");
  std::map<std::string, const ManifestEntry*> a, b;
  for (const auto& e : stored.entries) a[e.id] = &e;
  for (const auto& e : current.entries) b[e.id] = &e;
  auto list = [&](const std::string& what, const std::vector<std::string>& ids) {
    if (ids.empty()) return;
    std::string s = std::to_string(ids.size()) + " file(s) " + what + ": ";
    for (std::size_t i = 0; i < ids.size() && i < 3; ++i) s += (i ? ", " : "") + ids[i];
    if (ids.size() > 3) s += ", ...";
    diffs.push_back(s);
  };
  std::vector<std::string> added, removed, changed;
  for (const auto& [id, e] : b)
    if (!a.count(id)) added.push_back(id);
  for (const auto& [id, e] : a) {
    auto it = b.find(id);
    if (it == b.end()) removed.push_back(id);
    else if (it->second->sha256 != e->sha256) changed.push_back(id);
  }
  list("added", added);
  list("removed", removed);
  list("changed", changed);
  return diffs;
}

}  // namespace edi::data
