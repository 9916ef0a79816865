#pragma once
/// \file Identity classifier built from any Embedder plus enrolment images: one
/// mean embedding (centroid) per identity; logits from the distance or cosine
/// to each centroid. Also dlib-style verification (same person if the
/// Euclidean distance between descriptors is below a threshold, 0.6).
#include "edi/models/classifier.hpp"

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace edi::models {

/// How GalleryClassifier turns an embedding into logits.
enum class GalleryScore {
  Cosine,           ///< logits = scale · cos(embedding, centroid)
  NegSquaredL2,     ///< logits = −‖embedding − centroid‖² (softmax-friendly, no scale)
};

struct GalleryOptions {
  GalleryScore score = GalleryScore::Cosine;
  float cosine_scale = 30.f;       ///< only for GalleryScore::Cosine
  std::string task = "identity";   ///< ModelInfo::task
  std::size_t batch_size = 32;     ///< enrolment embedding batch size
};

/// dlib's / face-api's same-person threshold on raw 128-d descriptors.
inline constexpr float kDlibVerificationThreshold = 0.6f;

/// Classifier over identities = sorted keys of the enrolment map.
class GalleryClassifier : public Classifier {
 public:
  /// `enrolment`: identity → K×3×S×S images (RGB [0,1]) of that identity. The
  /// centroid of each identity is the mean embedding of its images (computed
  /// without grad). Throws ModelError when empty or an identity has no images.
  GalleryClassifier(std::shared_ptr<Embedder> embedder, const std::map<std::string, at::Tensor>& enrolment,
                    GalleryOptions options = {});

  const ModelInfo& info() const override { return info_; }
  /// N×3×S×S → N×K logits (differentiable w.r.t. images).
  at::Tensor logits(const at::Tensor& images) override;
  c10::Device device() const override { return embedder_->device(); }
  std::int64_t parameter_count() const override { return embedder_->parameter_count(); }

  /// Euclidean distances from each image's embedding to each centroid, N×K.
  at::Tensor distances(const at::Tensor& images);
  /// Identity centroids K×D in class order.
  const at::Tensor& centroids() const { return centroids_; }
  Embedder& embedder() { return *embedder_; }

 private:
  std::shared_ptr<Embedder> embedder_;
  GalleryOptions options_;
  at::Tensor centroids_;
  ModelInfo info_;
};

/// Pairwise Euclidean distances between two sets of embeddings: N×D, M×D → N×M.
at::Tensor embedding_distances(const at::Tensor& a, const at::Tensor& b);

/// Verification with dlib's rule: element-wise `distance < threshold` between
/// row i of `a` and row i of `b` (both N×D embeddings) → N bool.
at::Tensor same_person(const at::Tensor& a, const at::Tensor& b, float threshold = kDlibVerificationThreshold);

/// Embeds `images` (N×3×S×S) in batches of `batch_size` without grad → N×D.
at::Tensor embed_batched(Embedder& embedder, const at::Tensor& images, std::size_t batch_size = 32);

}  // namespace edi::models
