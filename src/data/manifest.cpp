#include "edi/data/manifest.hpp"

#include <opencv2/core/utility.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
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
  const int split_col = csv_column(csv, "split");
  LabelsTable table;
  table.has_split = split_col >= 0;
  std::vector<int> task_cols;
  for (std::size_t c = 1; c < csv.header.size(); ++c) {
    if (static_cast<int>(c) == image_col || static_cast<int>(c) == split_col) continue;
    const std::string& name = csv.header[c];
    if (name.empty()) throw DataError(path.string() + ": column " + std::to_string(c + 1) + " has no name");
    if (std::count(table.tasks.begin(), table.tasks.end(), name))
      throw DataError(path.string() + ": duplicate column '" + name + "'");
    table.tasks.push_back(name);
    task_cols.push_back(static_cast<int>(c));
  }
  if (table.tasks.empty() && !table.has_split)
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
    if (split_col >= 0) {
      lr.split = row[static_cast<std::size_t>(split_col)];
      if (!lr.split.empty()) parse_split(lr.split, path.string() + ":" + std::to_string(lr.line));
    }
    for (int c : task_cols) lr.values.push_back(row[static_cast<std::size_t>(c)]);
    table.rows.push_back(std::move(lr));
  }
  return table;
}

std::vector<SplitRow> read_split_file(const fs::path& path) {
  std::string text = read_file(path);
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 byte-order mark (spreadsheet exports)
  const CsvTable csv = parse_csv(text, path.string());
  if (csv.header.size() != 2 || csv.header[0] != "image" || csv.header[1] != "split") {
    std::string found;
    for (const auto& h : csv.header) found += (found.empty() ? "" : ",") + h;
    throw DataError(path.string() + ": header '" + found + "': expected 'image,split'");
  }
  std::vector<SplitRow> rows;
  std::map<std::string, int> seen;
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const std::string where = path.string() + ":" + std::to_string(csv.row_lines[r]);
    SplitRow row;
    row.image = csv.rows[r][0];
    row.line = csv.row_lines[r];
    if (row.image.empty()) throw DataError(where + ": empty image path");
    row.split = parse_split(csv.rows[r][1], where);
    if (const auto [it, fresh] = seen.emplace(row.image, row.line); !fresh)
      throw DataError(where + ": duplicate row for image '" + row.image + "' (first on line " + std::to_string(it->second) + ")");
    rows.push_back(std::move(row));
  }
  if (rows.empty()) throw DataError(path.string() + ": no rows (expected image,split lines)");
  return rows;
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

// --- ids and scanning -------------------------------------------------------

fs::path checked_relative_id(const std::string& id, const std::string& where) {
  auto bad = [&](const std::string& why) { return DataError(where + ": image id '" + id + "': " + why); };
  if (id.empty()) throw bad("empty");
  if (id.find('\0') != std::string::npos) throw bad("contains a NUL byte");
  if (id.front() == '/') throw bad("absolute path, expected a path relative to the data root");
  std::size_t start = 0;
  while (start <= id.size()) {
    const std::size_t end = std::min(id.find('/', start), id.size());
    const std::string part = id.substr(start, end - start);
    if (part.empty()) throw bad("empty path component, expected a/b.jpg");
    if (part == "..") throw bad("'..' component would leave the output directory");
    if (part == ".") throw bad("'.' component, expected a normalised relative path");
    start = end + 1;
  }
  return fs::path(id);
}

std::string output_name(const std::string& id) {
  fs::path p(id);
  p.replace_extension(".png");
  return p.generic_string();
}

namespace {

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

/// `p` (canonical) is `root` (canonical) or below it.
bool within(const fs::path& p, const fs::path& root) {
  const fs::path rel = p.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

const char* special_kind(fs::file_type t) {
  switch (t) {
    case fs::file_type::fifo: return "a FIFO";
    case fs::file_type::socket: return "a socket";
    case fs::file_type::block: return "a block device";
    case fs::file_type::character: return "a character device";
    default: return "not a regular file or folder";
  }
}

struct Candidate {
  fs::path path;       ///< root / id, lexically
  std::string id;
  int identity = -1;
  std::string target;  ///< canonical path of the file
  bool direct = true;  ///< no link on the way (canonical == root / id)
};

/// Walks the identity folders lexically; links are resolved only to check
/// where they lead. Never throws for a bad entry: it is quarantined.
struct Walker {
  fs::path root;  ///< canonical
  std::vector<Candidate> files;
  std::vector<QuarantineItem>* quarantined;
  std::vector<fs::path> stack;  ///< canonical folders from the root to the current one

  void quarantine(const std::string& id, const std::string& why) { quarantined->push_back({id, why}); }

  /// Canonical target of a link, or nothing (quarantined with the reason).
  std::optional<fs::path> follow_link(const fs::path& p, const std::string& id) {
    std::error_code ec;
    const fs::path target = fs::read_symlink(p, ec);
    const std::string shown = ec ? std::string("?") : target.string();
    const fs::path canon = fs::canonical(p, ec);
    if (ec) {
      if (ec == std::errc::too_many_symbolic_link_levels) quarantine(id, "symlink loop (-> " + shown + ")");
      else if (ec == std::errc::no_such_file_or_directory) quarantine(id, "dangling symlink (-> " + shown + ")");
      else quarantine(id, "cannot resolve symlink (-> " + shown + "): " + ec.message());
      return std::nullopt;
    }
    if (!within(canon, root)) {
      quarantine(id, "symlink leaves the data root (-> " + canon.string() + ")");
      return std::nullopt;
    }
    return canon;
  }

  void entry(const fs::path& p, const std::string& id, int identity) {
    std::error_code ec;
    const fs::file_status lst = fs::symlink_status(p, ec);
    if (ec) return quarantine(id, "cannot stat: " + ec.message());
    std::optional<fs::path> canon;
    if (fs::is_symlink(lst)) {
      canon = follow_link(p, id);
      if (!canon) return;
    }
    const fs::file_status st = fs::is_symlink(lst) ? fs::status(p, ec) : lst;
    if (ec) return quarantine(id, "cannot stat: " + ec.message());
    if (fs::is_directory(st)) return walk(p, id, identity);
    if (!fs::is_regular_file(st)) return quarantine(id, std::string("not a regular file: ") + special_kind(st.type()));
    if (!canon) canon = fs::canonical(p, ec);
    if (ec) return quarantine(id, "cannot resolve path: " + ec.message());
    try {
      checked_relative_id(id, "");
    } catch (const DataError&) {
      return quarantine(id, "file name cannot be used as an output path");
    }
    files.push_back({p, id, identity, canon->string(), *canon == (root / id).lexically_normal()});
  }

  void walk(const fs::path& dir, const std::string& id, int identity) {
    std::error_code ec;
    const fs::path canon = fs::canonical(dir, ec);
    if (ec) return quarantine(id, "cannot resolve folder: " + ec.message());
    if (std::find(stack.begin(), stack.end(), canon) != stack.end())
      return quarantine(id, "symlink loop (-> " + canon.string() + ", a folder that contains it)");
    std::vector<fs::path> children;
    fs::directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec)) children.push_back(it->path());
    if (ec) return quarantine(id, "cannot list folder: " + ec.message());
    std::sort(children.begin(), children.end());
    stack.push_back(canon);
    for (const auto& c : children)
      if (!hidden(c)) entry(c, id + "/" + c.filename().string(), identity);
    stack.pop_back();
  }
};

/// Identity folders of the root: real folders, and links to folders inside
/// the root (a link that leaves it, dangles or loops is quarantined).
std::vector<std::string> identity_folders(Walker& w) {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(w.root, ec), end;
  std::vector<fs::path> top;
  for (; !ec && it != end; it.increment(ec)) top.push_back(it->path());
  if (ec) throw DataError(w.root.string() + ": cannot list the data directory: " + ec.message());
  for (const auto& p : top) {
    if (hidden(p)) continue;
    const std::string name = p.filename().string();
    const fs::file_status lst = fs::symlink_status(p, ec);
    if (ec) continue;
    const fs::file_status st = fs::status(p, ec);
    const bool resolvable = !ec;
    // Top-level files (labels.csv, also through a link) are not identities;
    // a link to a folder must stay inside the root, and a broken one is reported.
    if (resolvable && !fs::is_directory(st)) continue;
    if (fs::is_symlink(lst) && !w.follow_link(p, name)) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// Two paths to one file keep one id (the path without links, else the first
/// id); two files that would get one output name are an error naming both.
std::vector<Candidate> distinct_files(std::vector<Candidate> files, std::vector<QuarantineItem>& quarantined, const fs::path& root) {
  std::sort(files.begin(), files.end(), [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
  std::map<std::string, std::size_t> keeper;  // canonical target -> index in files
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto [it, fresh] = keeper.emplace(files[i].target, i);
    if (!fresh && files[i].direct && !files[it->second].direct) it->second = i;
  }
  std::vector<Candidate> kept;
  std::map<std::string, std::string> outputs;  // output name -> id
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::size_t k = keeper.at(files[i].target);
    if (k != i) {
      quarantined.push_back({files[i].id, "same file as " + files[k].id + " (a second link to it)"});
      continue;
    }
    const auto [it, fresh] = outputs.emplace(output_name(files[i].id), files[i].id);
    if (!fresh)
      throw DataError(root.string() + ": " + it->second + " and " + files[i].id + " would both be written as images/" + it->first +
                      ": rename one of them");
    kept.push_back(files[i]);
  }
  return kept;
}

/// Decode + hash in parallel (OpenCV's pool, sized by --threads).
void probe_files(const std::vector<Candidate>& files, int min_side, Manifest& m, std::vector<QuarantineItem>& quarantined) {
  std::vector<ManifestEntry> entries(files.size());
  std::vector<std::string> errors(files.size());
  cv::parallel_for_(cv::Range(0, static_cast<int>(files.size())), [&](const cv::Range& r) {
    for (int i = r.start; i < r.end; ++i) {
      const auto& f = files[static_cast<std::size_t>(i)];
      try {
        const cv::Size size = probe_image(f.path, min_side);
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
      } catch (const std::bad_alloc&) {
        errors[static_cast<std::size_t>(i)] = "out of memory while decoding";
      }
    }
  });
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (!errors[i].empty()) quarantined.push_back({files[i].id, errors[i]});
    else m.entries.push_back(std::move(entries[i]));
  }
  std::sort(quarantined.begin(), quarantined.end(), [](const QuarantineItem& a, const QuarantineItem& b) { return a.path < b.path; });
}

bool known_image(const std::string& image, const Manifest& m, const std::vector<QuarantineItem>& quarantined) {
  const auto it = std::lower_bound(m.entries.begin(), m.entries.end(), image, [](const ManifestEntry& e, const std::string& id) { return e.id < id; });
  if (it != m.entries.end() && it->id == image) return true;
  return std::any_of(quarantined.begin(), quarantined.end(), [&](const QuarantineItem& q) { return q.path == image; });
}

void apply_labels(const fs::path& labels_csv, const LabelsTable& labels, const fs::path& root, Manifest& m,
                  const std::vector<QuarantineItem>& quarantined) {
  const std::string src = labels_csv.string();
  std::vector<std::set<std::string>> values(labels.tasks.size());
  std::set<std::string> known(m.identities.begin(), m.identities.end());
  for (const auto& row : labels.rows) {
    if (!known.count(row.identity))
      throw DataError(src + ":" + std::to_string(row.line) + ": identity '" + row.identity + "' has no folder in " + root.string());
    if (!row.image.empty() && !known_image(row.image, m, quarantined))
      throw DataError(src + ":" + std::to_string(row.line) + ": image '" + row.image + "' is not in " + root.string());
    for (std::size_t t = 0; t < labels.tasks.size(); ++t)
      if (!row.values[t].empty()) values[t].insert(row.values[t]);
  }
  for (std::size_t t = 0; t < labels.tasks.size(); ++t)
    m.tasks.push_back({labels.tasks[t], std::vector<std::string>(values[t].begin(), values[t].end())});
  std::map<std::string, const LabelRow*> per_identity, per_image;
  for (const auto& row : labels.rows) (row.image.empty() ? per_identity[row.identity] : per_image[row.image]) = &row;
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
}

/// Every entry must have received a split from `source`.
void require_complete_split(const Manifest& m, const std::vector<bool>& assigned, const std::string& source) {
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < m.entries.size(); ++i)
    if (!assigned[i]) missing.push_back(m.entries[i].id);
  if (missing.empty()) return;
  throw DataError(source + ": " + std::to_string(missing.size()) + " image(s) of the data set have no split, e.g. '" + missing.front() +
                  "' (expected train, val or test for every image)");
}

/// Imported splits: from the split file, or from the labels' split column
/// (an identity row sets its images, an image row overrides).
void import_split(const ScanOptions& options, const LabelsTable* labels, Manifest& m, const std::vector<QuarantineItem>& quarantined) {
  std::vector<bool> assigned(m.entries.size(), false);
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < m.entries.size(); ++i) index[m.entries[i].id] = i;
  if (!options.split.file.empty()) {
    const std::string src = options.split.file.string();
    m.split.source = "file";
    m.split.file_sha256 = sha256_file(options.split.file);
    for (const SplitRow& row : read_split_file(options.split.file)) {
      const auto it = index.find(row.image);
      if (it == index.end()) {
        if (known_image(row.image, m, quarantined)) continue;  // quarantined: nothing to split
        throw DataError(src + ":" + std::to_string(row.line) + ": image '" + row.image + "' is not in " + m.data_root);
      }
      m.entries[it->second].split = row.split;
      assigned[it->second] = true;
    }
    return require_complete_split(m, assigned, src);
  }
  m.split.source = "labels";
  std::map<std::string, Split> per_identity;
  for (const auto& row : labels->rows)
    if (row.image.empty() && !row.split.empty()) per_identity[row.identity] = parse_split(row.split, "");
  for (auto& e : m.entries) {
    const auto it = per_identity.find(m.identities[static_cast<std::size_t>(e.identity)]);
    if (it != per_identity.end()) e.split = it->second, assigned[index[e.id]] = true;
  }
  for (const auto& row : labels->rows) {
    if (row.image.empty() || row.split.empty()) continue;
    const auto it = index.find(row.image);
    if (it == index.end()) continue;  // quarantined (unknown images were refused by apply_labels)
    m.entries[it->second].split = parse_split(row.split, "");
    assigned[it->second] = true;
  }
  require_complete_split(m, assigned, options.labels_csv.string() + " (split column)");
}

}  // namespace

ScanResult build_manifest(const ScanOptions& options) {
  std::error_code ec;
  const fs::path root = fs::canonical(options.data_dir, ec);
  if (ec || !fs::is_directory(root))
    throw DataError(options.data_dir.string() + ": data directory does not exist or is not a directory");
  ScanResult result;
  Manifest& m = result.manifest;
  m.data_root = root.string();
  m.split = options.split;
  m.split.file.clear();
  m.split.source = "seeded";
  m.split.file_sha256.clear();

  Walker walker;
  walker.root = root;
  walker.quarantined = &result.quarantined;
  walker.stack.push_back(root);
  m.identities = identity_folders(walker);
  if (m.identities.empty())
    throw DataError(root.string() + ": no identity folders (expected DATA/<identity>/<image files>)");
  for (std::size_t k = 0; k < m.identities.size(); ++k) walker.walk(root / m.identities[k], m.identities[k], static_cast<int>(k));
  const std::vector<Candidate> files = distinct_files(std::move(walker.files), result.quarantined, root);
  probe_files(files, options.min_side, m, result.quarantined);

  LabelsTable labels;
  if (!options.labels_csv.empty()) {
    m.layout = "mtf";
    m.labels_sha256 = sha256_file(options.labels_csv);
    labels = read_labels(options.labels_csv);
    apply_labels(options.labels_csv, labels, root, m, result.quarantined);
  } else {
    m.layout = "imagefolder";
  }
  if (!options.split.file.empty() && labels.has_split)
    throw DataError(options.split.file.string() + ": the labels file " + options.labels_csv.string() +
                    " has a split column too: use one of them (drop --split-file or the column)");
  if (!options.split.file.empty() || labels.has_split) import_split(options, &labels, m, result.quarantined);
  else assign_splits(m.entries, m.split);
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
  if (m.split.source != "seeded") {  // absent for the seeded rule: older manifests keep their hash
    meta["split"]["source"] = m.split.source;
    if (!m.split.file_sha256.empty()) meta["split"]["file_sha256"] = m.split.file_sha256;
  }
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
    m.split.source = meta.at("split").value("source", std::string("seeded"));
    m.split.file_sha256 = meta.at("split").value("file_sha256", std::string());
  } catch (const json::exception& e) {
    throw DataError(source + ":1: bad metadata: " + e.what());
  }
  const std::size_t expected = 6 + m.tasks.size();
  if (csv.header.size() != expected || csv.header[0] != "id" || csv.header[1] != "identity")
    throw DataError(source + ": header does not match the metadata (expected id,identity,<tasks>,width,height,sha256,split)");
  std::set<std::string> ids, outputs;
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const auto& row = csv.rows[r];
    const std::string where = source + ":" + std::to_string(csv.row_lines[r]);
    ManifestEntry e;
    e.id = row[0];
    checked_relative_id(e.id, where);
    if (!ids.insert(e.id).second) throw DataError(where + ": duplicate image id '" + e.id + "'");
    if (!outputs.insert(output_name(e.id)).second)
      throw DataError(where + ": image id '" + e.id + "' has the output name images/" + output_name(e.id) + " of an earlier row");
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
  if (stored.split.source != current.split.source || stored.split.file_sha256 != current.split.file_sha256)
    diffs.push_back("split source differs (" + stored.split.source + " stored, " + current.split.source + " now)");
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
