#pragma once
/// \file Data sets and their manifest.
///
/// Two layouts are read:
///  * ImageFolder: `DATA/<identity>/<file>`; class index = position in the
///    sorted list of identity folder names.
///  * MTF: the same folders plus a labels CSV `identity,<task>...` with one row
///    per identity (MTF's labels are per identity). An optional `image` column
///    holds per-image overrides (relative path). Attribute class lists are the
///    sorted distinct values of each column.
/// Image id = relative path (with '/'), built lexically from the names met
/// while walking the folders (never by resolving links); entries are sorted by
/// it, so the order and the ids never depend on the file system's listing
/// order. Links: a symlink whose target leaves the data root, a dangling link
/// and a link loop are quarantined with the reason; two paths to one file keep
/// one id (the path without links, else the first) and quarantine the others.
/// FIFOs, sockets and devices are quarantined without being opened.
///
/// Splits: the seeded per-identity rule by default; or imported, from a
/// `split` column of the labels CSV or from a split file (`image,split`).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace edi::data {

enum class Split : std::uint8_t { kTrain = 0, kVal = 1, kTest = 2 };
const char* split_name(Split s);
Split parse_split(const std::string& text, const std::string& where);

/// Deterministic per-identity split: within each identity, images are ordered
/// by a counter-RNG key of (seed, image id) and the first round(n·test) go to
/// test, the next round(n·val) to val, the rest to train (at least one).
struct SplitSpec {
  double test_fraction = 0.2;
  double val_fraction = 0.1;
  std::uint64_t seed = 0;
  /// Split file (CSV `image,split`: relative path -> train|val|test); empty:
  /// the labels' `split` column if it has one, else the seeded rule.
  std::filesystem::path file;
  /// Recorded in the manifest: "seeded", "labels" (the labels' split column)
  /// or "file"; with file_sha256 = SHA-256 of the split file's bytes.
  std::string source = "seeded";
  std::string file_sha256;
};

/// `id` checked for use as a path below an output directory: non-empty,
/// relative, '/'-separated, with no empty, '.' or '..' component and no NUL.
/// Returns it as a relative path; throws DataError("<where>: image id '<id>':
/// <what is wrong>") otherwise. Every writer of `<dir>/<id>` calls it.
std::filesystem::path checked_relative_id(const std::string& id, const std::string& where);

/// The name an image id gets under `images/` (extension replaced by .png).
std::string output_name(const std::string& id);

/// One attribute task (e.g. "age" with classes {"old", "young"}).
struct AttributeTask {
  std::string name;
  std::vector<std::string> classes;  ///< sorted
};

struct ManifestEntry {
  std::string id;               ///< relative path, '/'-separated
  int identity = -1;            ///< index into Manifest::identities
  std::vector<int> attributes;  ///< one per task; -1 = unlabelled
  int width = 0, height = 0;    ///< decoded size of the original
  std::string sha256;           ///< of the file's bytes
  Split split = Split::kTrain;
};

struct Manifest {
  std::string data_root;                 ///< absolute path of the data directory
  std::string layout;                    ///< "imagefolder" or "mtf"
  std::string labels_sha256;             ///< empty without labels
  std::vector<std::string> identities;   ///< sorted folder names
  std::vector<AttributeTask> tasks;
  SplitSpec split;
  std::vector<ManifestEntry> entries;    ///< sorted by id

  /// SHA-256 of the canonical CSV text: identifies this exact data set.
  std::string hash() const;
  /// Index of task `name`, or -1.
  int task_index(const std::string& name) const;
  /// Number of entries in `split`.
  std::size_t count(Split split) const;
};

/// An input item that could not be used, and why.
struct QuarantineItem {
  std::string path;
  std::string reason;
};

struct ScanOptions {
  std::filesystem::path data_dir;
  std::filesystem::path labels_csv;  ///< empty: ImageFolder layout
  int min_side = 16;
  SplitSpec split;
};

struct ScanResult {
  Manifest manifest;
  std::vector<QuarantineItem> quarantined;
};

/// Scan a data directory, decode every image once (size, checks), hash it and
/// assign splits. Bad images are quarantined, not fatal. Throws DataError when
/// the directory or labels file itself is unusable.
ScanResult build_manifest(const ScanOptions& options);

/// Canonical CSV text of a manifest (metadata in a leading '#' JSON line).
std::string manifest_to_csv(const Manifest& manifest);
Manifest manifest_from_csv(const std::string& text, const std::string& source);

void write_manifest(const Manifest& manifest, const std::filesystem::path& path);
Manifest read_manifest(const std::filesystem::path& path);
void write_quarantine(const std::vector<QuarantineItem>& items, const std::filesystem::path& path);

/// Describe how `current` differs from `stored` (empty when identical):
/// added/removed/changed files, identities, tasks, split settings.
std::vector<std::string> manifest_differences(const Manifest& stored, const Manifest& current);

/// Per-identity labels table read from a labels CSV.
struct LabelRow {
  std::string identity;
  std::string image;                 ///< empty: applies to the identity
  std::string split;                 ///< `split` column: train|val|test, "" = none
  std::vector<std::string> values;   ///< one per task, "" = unknown
  int line = 0;
};
struct LabelsTable {
  std::vector<std::string> tasks;
  std::vector<LabelRow> rows;
  bool has_split = false;            ///< the CSV has a `split` column (not a task)
};
LabelsTable read_labels(const std::filesystem::path& path);

/// A split file: CSV with the header `image,split`, one row per image
/// (relative path as in the manifest -> train|val|test). Throws DataError
/// naming the file and line for a bad header, value or duplicate row.
struct SplitRow {
  std::string image;
  Split split = Split::kTrain;
  int line = 0;
};
std::vector<SplitRow> read_split_file(const std::filesystem::path& path);

/// Apply the split rule to entries grouped by identity (used by build_manifest).
void assign_splits(std::vector<ManifestEntry>& entries, const SplitSpec& spec);

}  // namespace edi::data
