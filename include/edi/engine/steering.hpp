#pragma once
/// \file Steering: which models the explain step asks, and how their answers
/// are combined, so that the privacy an image gains transfers to models that
/// did not steer it.
///
///   ensemble  `--model A,B[,C]`: the attribution is the sum of each model's
///             attribution divided by its own per-image L2 norm, so no model
///             dominates by scale; an image counts as identified while ANY
///             steering model identifies it, and only the models that still
///             identify it steer it (a model it already fools would take a
///             share of the selection it does not need; all steer where none
///             identifies it, as under --stop fixed). One model: its
///             attribution as is (no normalisation), so single-model runs are
///             unchanged.
///   EOT       `--eot N`: each model's attribution is the mean over N random
///             small transformations T_d (shift ±4 px, scale ±5 %, a slight
///             Gaussian blur, brightness ±10 %), differentiated through T_d,
///             all towards the clean image's runner-up (or true class). Draw d
///             of image i in pass p is keyed (seed, id, p, kEot) at block 4d.
///   feature   `--target feature`: for embedders and gallery classifiers, the
///             loss is ||f(x + ξ) − f(x₀)||², x₀ the image's own original: the
///             embedding is pushed away from the original's (label-free). ξ is
///             a small random start (Gaussian, σ = 2/255, keyed by (seed, id,
///             pass, kEot) at block 2^32): at x = x₀ the gradient of the
///             distance is exactly zero, so without it the first pass would
///             select every entry.
///   judge     `--judge MODEL`: asked whether an image is identified, never for
///             gradients. An image stops only when the steering models and the
///             judge all fail to identify it (the judge is then not an
///             independent attacker).
///
/// A model whose input size differs from the state's (the first steering
/// model's) sees a resize of it, inside the differentiated graph: antialiased
/// (triangle filter, as data::resize_antialiased, which decodes its images and
/// which `evaluate` uses) when smaller, bilinear when larger.
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edi/core/rng.hpp"
#include "edi/data/image.hpp"
#include "edi/explain/spec.hpp"
#include "edi/models/classifier.hpp"

namespace edi::data {
struct Manifest;
}  // namespace edi::data

namespace edi::engine {

/// Arithmetic of the steering models' forward and input gradient.
///   fp32  everything in float32 (the default);
///   bf16  `--precision bf16`: each steering model's forward runs under
///         autocast to bfloat16 (CPU or CUDA autocast by the model's device:
///         convolutions and matrix products in bf16, the rest as autocast
///         rules), its logits come back as float32, and the input gradient
///         flows back through the same casts; the loss, the state, selection,
///         operators and the judge stay in float32.
enum class Precision : std::uint8_t { kFp32 = 0, kBf16 = 1 };
/// "fp32" | "bf16"; ConfigError naming --precision otherwise.
Precision parse_precision(const std::string& text);
const char* precision_name(Precision p);

/// Options of the steering (all off by default: the paper's single-model rule).
struct SteeringSpec {
  Precision precision = Precision::kFp32;
  int eot = 0;                   ///< transformations per attribution; 0 = off, [0, 64]
  double eot_shift = 4.0;        ///< max |shift| in pixels of the state, [0, 32]
  double eot_scale = 0.05;       ///< max relative scale change, [0, 0.5]
  double eot_blur = 0.8;         ///< max Gaussian sigma in pixels (0 = no blur), [0, 4]
  double eot_brightness = 0.10;  ///< max relative brightness change, [0, 0.5]
};

/// Throws ConfigError naming the option (--eot, --eot-shift, ...).
void validate(const SteeringSpec& spec);
/// "" when off, else e.g. " eot=8".
std::string describe(const SteeringSpec& spec);

/// The models of a run: steering models (≥ 1; the first sets the state's
/// size) and an optional judge.
struct SteeringModels {
  std::vector<std::shared_ptr<models::Classifier>> steer;
  std::shared_ptr<models::Classifier> judge;
  models::Classifier& primary() const { return *steer.front(); }
};

/// Load "A" or "A,B,C" (and the judge, "" for none) as identity classifiers of
/// `manifest` (embedders become gallery classifiers enrolled on the training
/// split). Every model must classify the manifest's identities in order.
SteeringModels load_steering_models(const std::string& models, const std::string& judge, const std::string& device,
                                    const data::Manifest& manifest, data::ResizeMode resize);

/// `models` with every steering model wrapped to run in `precision` (fp32:
/// unchanged). ConfigError for bf16 with the feature target (it needs the
/// gallery model's embedder itself).
SteeringModels with_precision(SteeringModels models, Precision precision, explain::Target target);

/// The references in a "A,B,C" model list (trimmed; ConfigError on an empty item).
std::vector<std::string> split_model_list(const std::string& models);

/// What the steering models (and judge) say about a batch.
struct SteerResult {
  /// Per image, the answer of the first model (steering models in order, then
  /// the judge) that identifies it, or the first steering model's when none
  /// does: true-class probability, rank (0 = top-1) and top-1 class.
  at::Tensor true_prob;  ///< N float
  at::Tensor true_rank;  ///< N int64
  at::Tensor top1;       ///< N int64
  at::Tensor attribution;  ///< N×3×H×W float; undefined from predict()
  at::Tensor finite;       ///< N bool; undefined from predict()
};

/// Decides, per model and image, whether the image is identified (the engine's
/// criterion on probability and rank).
using IdentifiedFn = std::function<bool(float prob, int rank)>;

class Steerer {
 public:
  /// `models` must outlive the steerer.
  Steerer(const SteeringModels& models, const explain::ExplainSpec& explain, const SteeringSpec& spec, std::uint64_t seed,
          IdentifiedFn identified);

  /// Prediction only (no gradient): the last pass.
  SteerResult predict(const at::Tensor& x, const at::Tensor& labels) const;
  /// Prediction and the combined attribution at `x` (N×3×S×S, S = the primary
  /// model's input size). `originals` (same shape) are needed by the feature
  /// target; `keys` are the per-image explain keys (SmoothGrad) and `ids` key
  /// the EOT draws.
  SteerResult explain(const at::Tensor& x, const at::Tensor& labels, const at::Tensor& originals,
                      const std::vector<RngKey>& keys, const std::vector<std::string>& ids, int pass) const;

  /// The feature target's random start ξ of images `ids` in `pass` (n×shape).
  at::Tensor feature_start(const std::vector<std::string>& ids, int pass, at::IntArrayRef image_shape) const;

  /// The EOT transformation of draw `draw` for images `ids` in `pass`, applied
  /// to sample-major rows (rows.size(0) a multiple of ids.size()); for tests.
  at::Tensor transform(const at::Tensor& rows, const std::vector<std::string>& ids, int pass, int draw) const;

 private:
  struct Answer {
    at::Tensor prob, rank, top1;
  };
  Answer answer(models::Classifier& model, const at::Tensor& logits, const at::Tensor& labels) const;
  SteerResult combine(const std::vector<Answer>& answers) const;
  /// Ensemble: the sum of the normalised attributions of the models that still identify each image.
  at::Tensor ensemble_sum(const std::vector<at::Tensor>& parts, const std::vector<Answer>& answers) const;
  at::Tensor attribution(models::Classifier& model, const at::Tensor& x, const at::Tensor& targets,
                         const at::Tensor& originals, const std::vector<RngKey>& keys, const std::vector<std::string>& ids,
                         int pass, at::Tensor* logits, at::Tensor* finite) const;
  at::Tensor fit(models::Classifier& model, const at::Tensor& rows) const;

  const SteeringModels& models_;
  explain::ExplainSpec explain_;
  SteeringSpec spec_;
  std::uint64_t seed_;
  IdentifiedFn identified_;
};

}  // namespace edi::engine
