#pragma once
/// \file The explain step: one batched forward/backward per pass gives both the
/// prediction at the current images (logits, true-class probability and rank,
/// top-1, runner-up) and the attribution map N×3×H×W used to select entries.
///
/// Per-image results are exact in a batch: the objective is the *sum* of the
/// per-image losses, so each image's gradient is its own single-image gradient
/// (models are in eval mode: no cross-sample coupling). Random draws
/// (SmoothGrad) come from one CounterRng key per image, so results do not
/// depend on batch composition or order.
///
/// Every returned tensor is detached, contiguous and on the CPU.
#include <ATen/core/Tensor.h>

#include <functional>
#include <string_view>
#include <vector>

#include "edi/core/rng.hpp"
#include "edi/explain/spec.hpp"
#include "edi/models/classifier.hpp"

namespace edi::explain {

/// Prediction and attribution of one classifier batch.
struct ExplainResult {
  at::Tensor logits;        ///< N×C float, at the input images
  at::Tensor top1;          ///< N int64, argmax of the logits (first index on ties)
  at::Tensor runner_up;     ///< N int64, second-largest logit (first index on ties)
  at::Tensor target;        ///< N int64, class whose cross-entropy is attributed
  at::Tensor true_prob;     ///< N float, softmax probability of the true label
  at::Tensor true_rank;     ///< N int64, classes with a strictly larger logit (0 = top-1)
  at::Tensor correct;       ///< N bool, top1 == true label
  at::Tensor loss;          ///< N float, the attributed loss at the input images
  at::Tensor attribution;   ///< N×3×H×W float
  at::Tensor finite;        ///< N bool, attribution has no NaN/Inf
  /// N float, Integrated Gradients only (undefined otherwise):
  /// sum(attribution) - (L(x) - L(x0)) with L evaluated for the same target.
  at::Tensor completeness_error;
  std::int64_t forward_calls = 0;  ///< model calls made (1 unless max_rows split the batch)
};

/// Applied to the rows of a call before the model sees them (differentiably:
/// the attribution is with respect to the untransformed rows). Rows are laid
/// out sample-major (row s·n + i is image i's s-th sample), so a per-image
/// transformation repeats its parameters every n rows. Empty = identity.
using InputTransform = std::function<at::Tensor(const at::Tensor& rows)>;

/// Explain a batch of images for a classifier.
/// \param x           N×3×H×W float images in [0,1] (any device; moved to the model's)
/// \param true_labels N int64 class indices in [0, C)
/// \param keys        one RngKey per image (used by SmoothGrad; may be empty otherwise);
///                    build them with explain_key() so they do not depend on the batch
/// Throws ConfigError for a bad spec, edi::Error for mismatched shapes and
/// ModelError when the model output is not differentiable w.r.t. its input.
/// spec.target = kFeature is refused (ConfigError): use explain_embedding.
ExplainResult explain(models::Classifier& model, const at::Tensor& x, const at::Tensor& true_labels,
                      const ExplainSpec& spec, const std::vector<RngKey>& keys = {},
                      const InputTransform& transform = {});

/// Prediction and attribution of one embedding batch.
struct EmbeddingExplainResult {
  at::Tensor embedding;     ///< N×D float, at the input images
  at::Tensor distance;      ///< N float, squared distance to the enrolled embedding (= the loss)
  at::Tensor attribution;   ///< N×3×H×W float, signed to increase the distance
  at::Tensor finite;        ///< N bool
  at::Tensor completeness_error;  ///< N float, Integrated Gradients only
  std::int64_t forward_calls = 0;
};

/// Explain a batch for an embedding net: L = ||embed(x) - enrolled||^2 per
/// image; attribution = dL/dx (or its |.|, SmoothGrad, IG variants), so
/// raising positive entries moves the image away from its enrolled identity.
/// \param enrolled N×D enrolled identity embeddings (one row per image)
/// spec.target is ignored.
EmbeddingExplainResult explain_embedding(models::Embedder& model, const at::Tensor& x,
                                         const at::Tensor& enrolled, const ExplainSpec& spec,
                                         const std::vector<RngKey>& keys = {},
                                         const InputTransform& transform = {});

/// The key of an image's explain noise in a pass:
/// {seed, stable_hash64(image_id), pass, RngStream::kExplain}.
RngKey explain_key(std::uint64_t seed, std::string_view image_id, std::uint32_t pass) noexcept;

/// Top-1 and runner-up indices of N×C logits (first index on ties; with C = 1
/// the runner-up equals the top-1).
void top_two(const at::Tensor& logits, at::Tensor& top1, at::Tensor& runner_up);

}  // namespace edi::explain
