#pragma once
/// \file `edi-anon export`: the anonymized images of a run as ImageFolder
/// trees, one per attribute task (OUT/<task>/<split>/<class>/<name>.png, the
/// authors' copy step), with opaque file names that reveal no identity. The
/// mapping name → image id lives in the run directory only (owner-only,
/// 0600). Only files under RUNDIR/images are copied; an image whose pixels
/// were never changed (identical to the original) is withheld, never exported.
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
};

struct ExportResult {
  std::size_t exported = 0;                 ///< distinct images written (each may appear in several trees)
  std::size_t files = 0;                    ///< files written over all trees
  std::size_t withheld_unchanged = 0;       ///< images identical to their original
  std::size_t unlabelled = 0;               ///< (image, task) pairs skipped for a missing label
  std::vector<std::string> tasks;
  std::filesystem::path mapping;            ///< RUNDIR/export-mapping.csv
};

/// Export; throws ConfigError (bad task, non-empty output, output inside the
/// run or data directory), DataError (not a finished run with images).
ExportResult export_run(const ExportConfig& config);

}  // namespace edi::report
