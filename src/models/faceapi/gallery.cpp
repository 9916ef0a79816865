// GalleryClassifier: identity logits from an Embedder and per-identity centroids.
#include "edi/models/gallery.hpp"

#include "edi/core/error.hpp"

#include <ATen/ATen.h>

namespace edi::models {

at::Tensor embed_batched(Embedder& embedder, const at::Tensor& images, std::size_t batch_size) {
  at::NoGradGuard no_grad;
  const std::int64_t n = images.size(0);
  const auto step = static_cast<std::int64_t>(std::max<std::size_t>(batch_size, 1));
  std::vector<at::Tensor> parts;
  for (std::int64_t i = 0; i < n; i += step) {
    parts.push_back(embedder.embed(images.slice(0, i, std::min(n, i + step))));
  }
  return at::cat(parts, 0);
}

GalleryClassifier::GalleryClassifier(std::shared_ptr<Embedder> embedder,
                                     const std::map<std::string, at::Tensor>& enrolment, GalleryOptions options)
    : embedder_(std::move(embedder)), options_(std::move(options)) {
  if (!embedder_) throw ModelError("face-api gallery: no face-recognition net to enrol with");
  if (enrolment.empty()) throw ModelError("face-api gallery: no identity to enrol (the train split is empty)");
  std::vector<at::Tensor> centroids;
  for (const auto& [name, images] : enrolment) {  // std::map: sorted identity names
    if (!images.defined() || images.dim() != 4 || images.size(0) == 0) {
      throw ModelError("face-api gallery: identity '" + name + "' has no training image to enrol");
    }
    centroids.push_back(embed_batched(*embedder_, images, options_.batch_size).mean(0));
    info_.classes.push_back(name);
  }
  centroids_ = at::stack(centroids, 0).detach();
  const auto& e = embedder_->info();
  info_.reference = e.reference + "+gallery";
  info_.backend = e.backend;
  info_.architecture = e.architecture + "-gallery";
  info_.task = options_.task;
  info_.input_size = e.input_size;
  info_.normalisation = e.normalisation;
  info_.file_sha256 = e.file_sha256;
}

at::Tensor embedding_distances(const at::Tensor& a, const at::Tensor& b) {
  // Explicit difference (not the ‖a‖²+‖b‖²−2ab expansion): exact and with a
  // finite gradient away from zero distance.
  const auto diff = a.unsqueeze(1) - b.unsqueeze(0);
  return diff.pow(2).sum(-1).sqrt();
}

at::Tensor same_person(const at::Tensor& a, const at::Tensor& b, float threshold) {
  TORCH_CHECK(a.sizes() == b.sizes(), "same_person: embeddings must have equal shapes");
  return (a - b).pow(2).sum(-1).sqrt() < threshold;
}

at::Tensor GalleryClassifier::distances(const at::Tensor& images) {
  return embedding_distances(embedder_->embed(images), centroids_.to(embedder_->device()));
}

at::Tensor GalleryClassifier::logits(const at::Tensor& images) {
  const auto emb = embedder_->embed(images);
  const auto c = centroids_.to(emb.device());
  if (options_.score == GalleryScore::NegSquaredL2) {
    return -(emb.unsqueeze(1) - c.unsqueeze(0)).pow(2).sum(-1);
  }
  const auto en = emb / emb.norm(2, 1, true).clamp_min(1e-12);
  const auto cn = c / c.norm(2, 1, true).clamp_min(1e-12);
  return options_.cosine_scale * at::matmul(en, cn.t());
}

}  // namespace edi::models
