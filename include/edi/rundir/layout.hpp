#pragma once
/// \file The run directory's layout, owned here: every file name a run
/// directory holds, in one place (schema: docs/run-directory.md). Writers
/// and readers (cluster, metrics, report, status) take their paths from here.
#include <filesystem>
#include <string>
#include <vector>

namespace edi::rundir {

namespace file {
inline constexpr const char* kManifest = "manifest.csv";           ///< the data set (written once, then checked)
inline constexpr const char* kQuarantine = "quarantine.csv";       ///< images left out of this run, and why
inline constexpr const char* kQuarantineScan = "quarantine-scan.csv";  ///< files the data scan left out
inline constexpr const char* kProvenance = "provenance.json";      ///< config, model, data, code version (first start)
inline constexpr const char* kResults = "results.h5";              ///< per-image table, trajectories, passes, examples
inline constexpr const char* kOutcomes = "outcomes.csv";           ///< one row per image
inline constexpr const char* kTrajectories = "trajectories.csv";   ///< one row per image and evaluation
inline constexpr const char* kSummary = "summary.json";            ///< effective options, passes, counts, timing
inline constexpr const char* kComplete = "complete.json";          ///< written last: the run is finished
inline constexpr const char* kError = "error.txt";                 ///< a failed run's message
inline constexpr const char* kMetrics = "metrics.json";            ///< `evaluate`'s output
inline constexpr const char* kMetricsImages = "metrics-images.csv";  ///< `evaluate`'s per-image rows
inline constexpr const char* kExportMapping = "export-mapping.csv";  ///< `export`'s key (0600)
inline constexpr const char* kSnapshotMarker = "snapshot.json";    ///< a snapshot directory's marker
inline constexpr const char* kLock = ".lock";                      ///< rank 0's flock while a run is live
inline constexpr const char* kRunHistory = "run.json";             ///< in checkpoints/: the pass history
}  // namespace file

namespace dir {
inline constexpr const char* kImages = "images";            ///< images/<id>.png, the anonymized images
inline constexpr const char* kCheckpoints = "checkpoints";  ///< per-shard HDF5 checkpoints and run.json
inline constexpr const char* kSnapshots = "snapshots";      ///< snapshots/<target>/ (dataset rule)
inline constexpr const char* kExamples = "examples";        ///< in checkpoints/: captured example masks
}  // namespace dir

/// RUNDIR/<name>.
inline std::filesystem::path path(const std::filesystem::path& rundir, const char* name) { return rundir / name; }
/// RUNDIR/checkpoints/run.json.
inline std::filesystem::path run_history_path(const std::filesystem::path& rundir) {
  return rundir / dir::kCheckpoints / file::kRunHistory;
}
/// RUNDIR/checkpoints/examples/shard-NNNNN.h5: the example masks and
/// attributions one shard's pass-0 perturbation captured (--examples).
std::filesystem::path example_capture_path(const std::filesystem::path& rundir, int shard);
/// `images/<id>` with the extension replaced by .png.
std::filesystem::path image_path(const std::filesystem::path& images_dir, const std::string& id);

/// A run directory is finished when complete.json exists (the runner writes it last).
bool run_finished(const std::filesystem::path& rundir);
/// A snapshot directory (RUNDIR/snapshots/<T>/) holds snapshot.json.
bool is_snapshot_dir(const std::filesystem::path& dir);
/// The snapshot directories of a run, highest target first.
std::vector<std::filesystem::path> list_snapshots(const std::filesystem::path& rundir);

}  // namespace edi::rundir
