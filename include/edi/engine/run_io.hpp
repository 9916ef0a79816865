#pragma once
/// \file Everything around the loop for one run: the data (manifest, split,
/// decoding at the model size, sha256 checks), the steering model, fixed
/// shards, and the anonymized PNGs. The loop over passes and ranks is
/// edi/cluster/runner.hpp; the run directory (created owner-only) is owned by
/// edi/rundir (layout.hpp; every file and column in docs/run-directory.md).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edi/data/image.hpp"
#include "edi/data/manifest.hpp"
#include "edi/engine/engine.hpp"
#include "edi/models/classifier.hpp"

namespace edi::engine {

/// Which images of the data set are anonymized.
enum class SplitSelection { kAll, kTrain, kVal, kTest };
SplitSelection parse_split_selection(const std::string& text);  ///< names --split
const char* split_selection_name(SplitSelection s);

struct RunConfig {
  std::filesystem::path data_dir;
  std::filesystem::path labels_csv;       ///< empty: none / DATA/labels.csv if present
  std::filesystem::path out;              ///< run directory
  std::string model = "";                 ///< steering model reference (A,B,C: ensemble)
  std::string judge;                      ///< model that judges but never steers ("" = none)
  std::string device = "cpu";
  SplitSelection split = SplitSelection::kAll;
  data::SplitSpec split_spec;             ///< used when a manifest is created
  data::ResizeMode resize = data::ResizeMode::kShorterSideCrop;
  int shard_size = 64;
  int png_bits = 8;
  /// Seconds between two commits of a shard (0: after every pass). A final
  /// shard, a signal and the end of a run always commit; a crash loses at
  /// most this much work per shard, never exactness.
  double checkpoint_every = 0;
  /// --checkpoint-every auto (the default): the interval follows the measured
  /// commit cost (commits <= 2 % of rank time), at most checkpoint_max_loss
  /// seconds of a shard's work between two commits; checkpoint_every unused.
  bool checkpoint_auto = true;
  double checkpoint_max_loss = 60;
  bool write_images = true;
  /// Images kept with their originals in results.h5 /examples (0: none).
  int examples = 0;
  bool verbose = false;
  /// --schedule: "auto" (shard under --stop image and fixed, pass under
  /// dataset), "pass" (every pass of every shard, then a reduction) or
  /// "shard" (a rank runs a claimed shard to the end); never changes outputs.
  std::string schedule = "auto";
  /// Shard-major schedule: seconds between two progress lines (0: every pass of rank 0's shards).
  double progress_every = 10;
  EngineSpec engine;
  /// Effective options, name → value, recorded in summary.json.
  std::vector<std::pair<std::string, std::string>> options;
};

/// Data of a run: the manifest and the images selected for it.
struct RunData {
  data::Manifest manifest;
  std::vector<std::size_t> selected;  ///< indices into manifest.entries, id order
};

/// Load RUNDIR/manifest.csv, or build it from the data directory and store it.
/// An existing manifest must match the labels file and split settings given.
RunData prepare_data(const RunConfig& config);

/// The steering classifier. `faceapi:recognition` becomes a gallery classifier
/// enrolled on the manifest's training images (identities in manifest order);
/// any other reference goes to models::load_classifier. Classes must match the
/// manifest's identities (ModelError otherwise).
std::unique_ptr<models::Classifier> load_steering_model(const std::string& reference, const std::string& device,
                                                        const data::Manifest& manifest, data::ResizeMode resize);

/// Decode the images of a shard at `size`, checking each file's sha256 against
/// the manifest. Images that fail are returned in `quarantined` and left out.
struct DecodedShard {
  std::vector<std::string> ids;
  at::Tensor images;  ///< n×3×size×size
  at::Tensor labels;  ///< n int64 identity indices
  std::vector<data::QuarantineItem> quarantined;
};
DecodedShard decode_shard(const data::Manifest& manifest, const std::vector<std::size_t>& entries, int size,
                          data::ResizeMode resize);

/// Fixed shards: consecutive runs of `shard_size` selected entries in id order.
std::vector<std::vector<std::size_t>> make_shards(const std::vector<std::size_t>& selected, int shard_size);

/// One line per pass, printed by the caller.
struct PassReport {
  int pass = 0;
  std::int64_t active = 0, identified = 0, total = 0;
  double risk_percent = 0;   ///< identified / total
  double seconds = 0;        ///< wall time of this pass
  double image_passes_per_s = 0;
};

/// Per-run summary (also in summary.json).
struct RunSummary {
  std::int64_t images = 0, quarantined = 0;
  std::int64_t stopped = 0, capped = 0, stalled = 0, fixed = 0;
  int passes_run = 0;
  double final_risk_percent = 0;
  double seconds = 0;
  std::vector<PassReport> passes;
  Timing timing;
  double checkpoint_seconds = 0;  ///< summed over ranks: writing shard checkpoints
  std::int64_t checkpoint_commits = 0;  ///< summed over ranks: shard checkpoints written
  double loop_seconds = 0;        ///< summed over ranks: the pass loop (wall per rank)
};

/// The anonymized PNGs of a shard (the run directory's other files are
/// written through edi/rundir).
void write_images(const std::filesystem::path& dir, const Shard& shard, int bits);
/// `images/<id>` with the extension replaced by .png.
std::filesystem::path image_output_path(const std::filesystem::path& dir, const std::string& id);

}  // namespace edi::engine
