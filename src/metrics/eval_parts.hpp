#pragma once
// Private to the metrics stage: the pieces of evaluate_run. One run's inputs
// (RunInputs, read once), then one function per block (steering, each
// attacker, each utility task, quality), each returning a typed result that
// evaluate_run assembles into metrics.json and metrics-images.csv.
#include <torch/torch.h>

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
  std::filesystem::path rundir;
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

struct SteeringResult {
  json j;
  std::string ref_raw, ref, sha;   ///< as given, as resolved, recorded sha256
  std::vector<int> ranks;          ///< on the anonymized images (or the in-loop ranks)
  Interval top1, top5;
  std::vector<Column> columns;
  std::vector<std::string> notes;
};

struct AttackerResult {
  std::string name;
  json j;
  bool available = false;
  std::optional<Interval> headline;  ///< the attacker's risk in the summary, when independent
  std::vector<Column> columns;
  std::vector<std::string> notes;
};

struct UtilityResult {
  json j;
  std::optional<Interval> macro_f1;
  std::vector<Column> columns;
  std::vector<std::string> notes;
};

struct QualityResult {
  json j;
  Interval psnr, ssim, changed;
  std::vector<Column> columns;
  std::vector<std::string> notes;
};

// --- inputs (inputs.cpp) ---
RunMeta read_run_meta(const std::filesystem::path& rundir);
RunInputs read_run_inputs(const std::filesystem::path& rundir, const Log& say);

// --- helpers shared by the blocks (blocks_common.cpp) ---
json interval_json(const Interval& v);
std::vector<std::string> int_column(const std::vector<int>& v);
std::vector<std::string> number_column(const std::vector<double>& v);
at::Tensor predict_logits(models::Classifier& model, const at::Tensor& images, int batch);
std::vector<int> true_ranks(const at::Tensor& scores, const std::vector<int>& labels);
std::vector<int> argmax_rows(const at::Tensor& scores);
Interval hit_rate(const std::vector<int>& ranks, const std::vector<std::size_t>& subset, int k, const BootstrapSpec& b,
                  const std::string& name);
std::filesystem::path resolve_model(const std::string& ref, const std::filesystem::path& rundir);

// --- privacy (privacy.cpp) ---
SteeringResult evaluate_steering(const RunInputs& in, const EvalConfig& cfg, const Log& say);
AttackerResult evaluate_lbph(const RunInputs& in, const EvalConfig& cfg, const Log& say);
AttackerResult evaluate_faceapi(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer, const Log& say);
AttackerResult evaluate_adaptive(const RunInputs& in, const EvalConfig& cfg, const Log& say);
AttackerResult evaluate_classifier_attacker(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer,
                                            const std::string& spec, const Log& say);

// --- utility and quality (utility_quality.cpp) ---
UtilityResult evaluate_utility(const RunInputs& in, const EvalConfig& cfg, const std::string& task, const std::string& ref_raw,
                               const Log& say);
QualityResult evaluate_quality(const RunInputs& in, const BootstrapSpec& b);

}  // namespace edi::metrics::detail
