#pragma once
/// \file `edi-anon evaluate`: privacy, utility and quality of one run
/// directory, with 95% identity-cluster intervals, written to RUNDIR/metrics.json
/// (schema: docs/metrics-schema.md) and RUNDIR/metrics-images.csv (one row per
/// image, used for paired comparisons between runs).
///
/// Reads the run directory only (manifest.csv, images/, outcomes.csv,
/// summary.json); originals are decoded from the manifest's data root at the
/// steering model's resolution with the run's resize mode.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "edi/metrics/stats.hpp"

namespace edi::metrics {

/// What to evaluate.
struct EvalConfig {
  /// Independent attackers besides the steering model: "lbph" (OpenCV LBPH
  /// on original train-split images), "faceapi" (face-api recognition gallery
  /// enrolled on original train-split images), "faceres" (HSE FaceRec gallery:
  /// another architecture and training set), "adaptive" (small-cnn trained
  /// on the anonymized train split), or a classifier reference (a second
  /// identity model). An attacker equal to the steering model is reported as
  /// such (steered = true), never as independent.
  std::vector<std::string> attackers = {"lbph", "faceapi", "adaptive"};
  /// Utility models: task (a manifest attribute, or "age" for a regression
  /// head) → model reference (native/TorchScript file or faceapi:age-gender).
  std::vector<std::pair<std::string, std::string>> utility;
  /// Steering model reference; empty = the one named in summary.json
  /// (a relative path is tried against the working directory, then the run
  /// directory's parent) and checked against its recorded sha256.
  std::string steering_model;
  BootstrapSpec bootstrap;
  std::string device = "cpu";
  /// Images per forward pass; 0 = auto: as many as fit 2^18 input pixels at
  /// the model's input side (1..64: 64 at 64 px, 11 at 150 px, 5 at 224 px).
  /// Larger batches of large inputs fault in fresh pages for every activation
  /// (measured on the HSE FaceRec attacker at 224 px: 10.2 s at 64, 5.0 s at 4).
  int batch = 0;
  int adaptive_epochs = 12;      ///< adaptive attacker training length
  int adaptive_size = 0;         ///< adaptive attacker input side in px (0 = the anonymized images' side)
  std::uint64_t adaptive_seed = 0;
  bool write_files = true;       ///< write metrics.json + metrics-images.csv
};

/// Headline numbers of one run (the full content is in `json`).
struct MetricsReport {
  std::string json;                 ///< metrics.json text
  std::size_t images = 0;
  std::size_t identities = 0;
  double random_guess_percent = 0;  ///< 100 / identities
  Rate steering_top1;               ///< in_loop: % of images whose true identity is the steering model's top-1
  Rate steering_top5;
  /// Independent attackers' heldout top-1 risk in %, by attacker name (available ones).
  std::map<std::string, Rate> attacker_top1;
  std::map<std::string, Rate> utility_macro_f1;  ///< by task, in %
  Rate psnr, ssim, changed_share;
  std::vector<std::string> notes;   ///< attackers or tasks not available, and why
  /// Snapshot directories (RUNDIR/snapshots/<T>/) evaluated along with the run.
  std::vector<std::filesystem::path> snapshots;
};

/// Evaluate a finished run directory (complete.json present) and each of its
/// snapshots (RUNDIR/snapshots/<T>/ with snapshot.json) into
/// RUNDIR/snapshots/<T>/metrics.json; or, given a snapshot directory, that
/// snapshot alone. Throws DataError when the directory is not a finished run
/// (no complete.json / outcomes.csv / summary.json / images), ConfigError for
/// bad settings, ModelError for a model that cannot be loaded.
MetricsReport evaluate_run(const std::filesystem::path& rundir, const EvalConfig& config,
                           const std::function<void(const std::string&)>& log = {});

/// A run is finished iff RUNDIR/complete.json exists (the runner writes it last).
bool run_finished(const std::filesystem::path& dir);
/// A snapshot directory has snapshot.json (written last).
bool is_snapshot_dir(const std::filesystem::path& dir);
/// RUNDIR/snapshots/<T>/ directories with snapshot.json, highest target first.
std::vector<std::filesystem::path> list_snapshots(const std::filesystem::path& rundir);

/// Write `report.json` to `path` atomically.
void write_metrics_json(const std::filesystem::path& path, const MetricsReport& report);

/// Parse one `--utility TASK=MODEL` value; throws ConfigError naming the option.
std::pair<std::string, std::string> parse_utility_spec(const std::string& text);

}  // namespace edi::metrics
