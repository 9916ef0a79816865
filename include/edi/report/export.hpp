#pragma once
/// \file `edi-anon export`: the anonymized images of a run as ImageFolder
/// trees, one per attribute task (OUT/<task>/<split>/<class>/<name>.png, the
/// authors' copy step), with opaque file names that reveal no identity:
///  * names are derived per task tree (sha256 of a secret, the task and the
///    id), so two trees cannot be joined into per-image tuples;
///  * files are written in a shuffled order and all get one fixed mtime
///    (2000-01-01T00:00:00Z, folders too), so neither creation order nor
///    times group images by person;
///  * task and class names become folder names only when they are made of
///    letters, digits, space, '_', '-', '.', '+' (no leading '.' or space):
///    `/tmp/x` or `../x` are refused before anything is written.
/// The trees are written into a sibling folder that is renamed to `out` at
/// the end, so a failed export leaves no half-filled tree. The mapping
/// name → image id lives in the run directory only, created at 0600 (never
/// briefly readable by others). Only files under RUNDIR/images are
/// copied; an image whose pixels were never changed (identical to the
/// original) is withheld, never exported. Images the run left still
/// identified (status `capped`, or the dataset rule's remainder) are counted
/// and marked in the mapping, or withheld with `withhold_identified`.
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace edi::report {

struct ExportConfig {
  std::filesystem::path run;  ///< run directory
  std::filesystem::path out;  ///< export directory (must be empty or absent)
  /// Tasks to export (empty: every attribute task of the manifest).
  std::vector<std::string> tasks;
  /// Leave out images the run left still identified (default: export them,
  /// count them and mark them in the mapping).
  bool withhold_identified = false;
};

/// The fixed mtime of every exported file and folder (2000-01-01T00:00:00Z).
constexpr long long kExportMtime = 946684800;

/// Why `name` cannot be a folder name of the export (empty when it can).
std::string path_component_problem(const std::string& name);

struct ExportResult {
  std::size_t exported = 0;                 ///< distinct images written (each may appear in several trees)
  std::size_t files = 0;                    ///< files written over all trees
  std::size_t withheld_unchanged = 0;       ///< images identical to their original
  std::size_t still_identified = 0;         ///< exported images the run left still identified
  std::size_t withheld_identified = 0;      ///< ... withheld instead (withhold_identified)
  std::size_t unlabelled = 0;               ///< (image, task) pairs skipped for a missing label
  std::vector<std::string> tasks;
  std::filesystem::path mapping;            ///< RUNDIR/export-mapping.csv
};

/// Export; throws ConfigError (bad task, non-empty output, output inside the
/// run or data directory), DataError (not a finished run with images; a task
/// or class name that is not a safe folder name).
ExportResult export_run(const ExportConfig& config);

}  // namespace edi::report
