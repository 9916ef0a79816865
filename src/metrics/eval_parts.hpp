#pragma once
// Private to the metrics stage: the pieces of evaluate_run. One run's inputs
// (RunInputs, read once), then one function per block (steering, each
// attacker, each utility task, quality), each returning a typed result that
// evaluate_run assembles into metrics.json and metrics-images.csv.
#include <torch/torch.h>

#include "edi/core/progress.hpp"

#include <opencv2/core.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edi/data/image.hpp"
#include "edi/data/manifest.hpp"
#include "edi/metrics/attackers.hpp"
#include "edi/metrics/evaluate.hpp"
#include "edi/models/classifier.hpp"

namespace edi::metrics::detail {

using nlohmann::json;
using Log = std::function<void(const std::string&)>;

/// One image of the run: what outcomes.csv says, plus where it is in the manifest.
struct Item {
  std::string id;
  int label = -1;            ///< identity index
  data::Split split = data::Split::kTrain;
  std::string status;
  int stop_pass = -1;
  int outcome_rank = -1;     ///< steering rank recorded by the engine (in-loop state)
  std::size_t entry = 0;     ///< index into manifest.entries
};

/// What the run directory says about the run (summary.json, provenance.json, manifest.csv).
struct RunMeta {
  json summary, options;
  data::Manifest manifest;
  data::ResizeMode resize = data::ResizeMode::kShorterSideCrop;
  std::string method, op, model_ref, model_sha;
  int passes_run = 0;
  double run_seconds = 0.0;
};

/// Everything the blocks read: the run's images decoded once.
struct RunInputs {
  std::filesystem::path rundir;           ///< the run (or snapshot) directory evaluated
  std::filesystem::path images_dir;       ///< its images/
  json snapshot;                          ///< snapshot.json of a snapshot directory, else null
  RunMeta meta;
  std::vector<Item> items;                ///< images kept (original and anonymized readable)
  std::vector<cv::Mat> anon_mats, orig_mats;
  at::Tensor anon, origs;                 ///< N×3×S×S
  std::vector<int> labels;
  std::vector<std::size_t> all, train, test;  ///< indices into items
  std::size_t identities = 0;
  int size = 0;                           ///< side of the anonymized PNGs
  std::vector<std::string> notes;         ///< images left out, and why
  std::size_t n() const { return items.size(); }
};

/// A per-image column of metrics-images.csv.
using Column = std::pair<std::string, std::vector<std::string>>;

/// What the model's sidecar says about the probes it was trained on.
struct TrainingCheck {
  bool held_out = false;  ///< the run's test split is held out from its training
  std::string what;       ///< what was checked, in one sentence
};

struct SteeringResult {
  json j;
  std::string ref_raw, ref, sha;   ///< as given, as resolved, recorded sha256
  std::vector<int> ranks;          ///< on the anonymized images (or the in-loop ranks)
  Rate top1, top5;                 ///< in_loop
  TrainingCheck check;
  std::vector<Column> columns;
  std::vector<std::string> notes;
};

struct AttackerResult {
  std::string name;
  json j;
  bool available = false;
  std::optional<Rate> headline;  ///< heldout top-1, when independent
  std::vector<Column> columns;
  std::vector<std::string> notes;
};

struct UtilityResult {
  json j;
  std::optional<Rate> macro_f1;
  std::vector<Column> columns;
  std::vector<std::string> notes;
};

struct QualityResult {
  json j;
  Rate psnr, ssim, changed;
  std::vector<Column> columns;
  std::vector<std::string> notes;
};

// --- inputs (inputs.cpp) ---
/// A run directory (complete.json required) or a snapshot directory
/// RUN/snapshots/<T>/ (snapshot.json required; manifest and summary from RUN).
RunMeta read_run_meta(const std::filesystem::path& rundir);
RunInputs read_run_inputs(const std::filesystem::path& rundir, const Log& say);

// --- helpers shared by the blocks (blocks_common.cpp) ---
json interval_json(const Interval& v);
std::vector<std::string> int_column(const std::vector<int>& v);
std::vector<std::string> number_column(const std::vector<double>& v);
/// Logits in batches; with a `progress` label, a progress line per batch (edi/core/progress.hpp).
/// Images per forward pass for a model with this input side (EvalConfig::batch; 0 = auto).
int images_per_forward(int batch, int input_size);
at::Tensor predict_logits(models::Classifier& model, const at::Tensor& images, int batch, const std::string& progress = "");
/// "evaluate RUN: WHAT" (RUN@T for a snapshot): the label of an evaluation step's progress line.
std::string progress_label(const RunInputs& in, const std::string& what);
std::vector<int> true_ranks(const at::Tensor& scores, const std::vector<int>& labels);
std::vector<int> argmax_rows(const at::Tensor& scores);
std::filesystem::path resolve_model(const std::string& ref, const std::filesystem::path& rundir);
/// A Rate as metrics.json v2 writes it (null when undefined).
json rate_json(const Rate& r);

// --- privacy (privacy.cpp) ---
/// Top-k hit rate over `subset` (ranks < 0 skipped), clustered by identity.
Rate rank_rate(const RunInputs& in, const std::vector<int>& ranks, const std::vector<std::size_t>& subset, int k,
               const BootstrapSpec& b, const std::string& name);
/// Is the run's test split held out from the training of model `ref`? (sidecar manifest hash vs the run's)
TrainingCheck check_training(const std::string& ref, const data::Manifest& manifest);

// --- privacy (privacy.cpp) ---
SteeringResult evaluate_steering(const RunInputs& in, const EvalConfig& cfg, const Log& say);
AttackerResult evaluate_lbph(const RunInputs& in, const EvalConfig& cfg, const Log& say);
AttackerResult evaluate_faceapi(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer, const Log& say);
AttackerResult evaluate_faceres(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer, const Log& say);
AttackerResult evaluate_adaptive(const RunInputs& in, const EvalConfig& cfg, const Log& say);
AttackerResult evaluate_classifier_attacker(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer,
                                            const std::string& spec, const Log& say);

// --- utility and quality (utility_quality.cpp) ---
UtilityResult evaluate_utility(const RunInputs& in, const EvalConfig& cfg, const std::string& task, const std::string& ref_raw,
                               const Log& say);
QualityResult evaluate_quality(const RunInputs& in, const BootstrapSpec& b);

}  // namespace edi::metrics::detail
