#include "edi/explain/deletion.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "edi/core/error.hpp"

namespace edi::explain {
namespace {

/// Position of every entry in the descending order of its image's
/// attribution (ties by entry index; NaN ranks last). N×E int64.
at::Tensor rank_positions(const at::Tensor& attribution) {
  const at::Tensor a = attribution.detach().to(at::kCPU, at::kFloat).contiguous().flatten(1);
  const std::int64_t n = a.size(0), e = a.size(1);
  at::Tensor pos = at::empty({n, e}, at::kLong);
  const float* ap = a.data_ptr<float>();
  std::int64_t* pp = pos.data_ptr<std::int64_t>();
  at::parallel_for(0, n, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(e));
    std::vector<float> key(static_cast<std::size_t>(e));
    for (std::int64_t i = begin; i < end; ++i) {
      const float* row = ap + i * e;
      for (std::int64_t k = 0; k < e; ++k) {
        key[k] = std::isnan(row[k]) ? -std::numeric_limits<float>::infinity() : row[k];
      }
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](std::int64_t l, std::int64_t r) { return key[l] > key[r]; });
      std::int64_t* prow = pp + i * e;
      for (std::int64_t r = 0; r < e; ++r) prow[order[r]] = r;
    }
  });
  return pos;
}

at::Tensor gaussian_blur(const at::Tensor& x, double sigma) {
  const auto radius = static_cast<std::int64_t>(std::ceil(3.0 * sigma));
  std::vector<float> k(static_cast<std::size_t>(2 * radius + 1));
  double total = 0.0;
  for (std::int64_t i = -radius; i <= radius; ++i) {
    const double v = std::exp(-0.5 * static_cast<double>(i * i) / (sigma * sigma));
    k[static_cast<std::size_t>(i + radius)] = static_cast<float>(v);
    total += v;
  }
  for (auto& v : k) v = static_cast<float>(v / total);
  const std::int64_t c = x.size(1);
  const at::Tensor k1 = at::tensor(k, at::kFloat).to(x.device());
  const at::Tensor kh = k1.view({1, 1, 1, -1}).repeat({c, 1, 1, 1});  // along W
  const at::Tensor kv = k1.view({1, 1, -1, 1}).repeat({c, 1, 1, 1});  // along H
  at::Tensor y = at::replication_pad2d(x, {radius, radius, 0, 0});
  y = at::conv2d(y, kh, c10::nullopt, at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{1}, c);
  y = at::replication_pad2d(y, {0, 0, radius, radius});
  return at::conv2d(y, kv, c10::nullopt, at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{1}, c);
}

}  // namespace

at::Tensor deletion_baseline(const at::Tensor& x, const DeletionSpec& spec) {
  validate(spec);
  if (x.dim() != 4) throw Error("deletion_baseline: expected N×C×H×W images");
  const at::Tensor xf = x.detach().to(at::kFloat);
  if (spec.baseline == DeletionBaseline::kConstant) {
    return at::full(xf.sizes(), static_cast<float>(spec.value), xf.options());
  }
  c10::NoGradGuard no_grad;
  return gaussian_blur(xf, spec.blur_sigma).contiguous();
}

DeletionCurve deletion_curve(models::Classifier& model, const at::Tensor& x, const at::Tensor& true_labels,
                             const at::Tensor& attribution, const DeletionSpec& spec) {
  validate(spec);
  if (x.dim() != 4 || x.size(0) == 0 || x.numel() == 0) {
    throw Error("deletion_curve: expected N×C×H×W images, got shape " + std::string(c10::str(x.sizes())));
  }
  if (!attribution.sizes().equals(x.sizes())) {
    throw Error("deletion_curve: attribution shape " + std::string(c10::str(attribution.sizes())) +
                " differs from image shape " + std::string(c10::str(x.sizes())));
  }
  const std::int64_t n = x.size(0);
  if (true_labels.dim() != 1 || true_labels.size(0) != n) {
    throw Error("deletion_curve: expected " + std::to_string(n) + " true labels");
  }
  c10::NoGradGuard no_grad;
  const at::Tensor xf = x.detach().to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor labels = true_labels.detach().to(at::kCPU, at::kLong).contiguous();
  const at::Tensor base = deletion_baseline(xf, spec).contiguous();
  const at::Tensor pos = rank_positions(attribution);
  const std::int64_t e = pos.size(1);
  const auto f = static_cast<std::int64_t>(spec.fractions.size());

  DeletionCurve curve;
  curve.fractions = at::tensor(spec.fractions, at::kDouble);
  curve.removed = at::empty({f}, at::kLong);
  for (std::int64_t j = 0; j < f; ++j) {
    curve.removed.data_ptr<std::int64_t>()[j] =
        static_cast<std::int64_t>(std::llround(spec.fractions[static_cast<std::size_t>(j)] * static_cast<double>(e)));
  }
  // Row r = i*F + j: image i with its top removed[j] entries replaced.
  const std::int64_t rows = n * f;
  const std::int64_t chunk = spec.max_rows > 0 ? spec.max_rows : rows;
  const at::Tensor xflat = xf.flatten(1), bflat = base.flatten(1);
  const at::Tensor removed = curve.removed.unsqueeze(1);  // F×1
  std::vector<at::Tensor> logits;
  const c10::Device device = model.device();
  for (std::int64_t start = 0; start < rows; start += chunk) {
    const std::int64_t stop = std::min(rows, start + chunk);
    std::vector<at::Tensor> parts;
    for (std::int64_t i = start / f; i * f < stop; ++i) {
      const std::int64_t j0 = std::max<std::int64_t>(0, start - i * f);
      const std::int64_t j1 = std::min<std::int64_t>(f, stop - i * f);
      const at::Tensor del = pos[i].unsqueeze(0).lt(removed.narrow(0, j0, j1 - j0));  // (j1-j0)×E
      parts.push_back(at::where(del, bflat[i].unsqueeze(0), xflat[i].unsqueeze(0)));
    }
    const at::Tensor batch = at::cat(parts, 0).view({stop - start, x.size(1), x.size(2), x.size(3)});
    logits.push_back(model.logits(batch.to(device)).detach().to(at::kCPU, at::kFloat));
    ++curve.forward_calls;
  }
  const at::Tensor z = at::cat(logits, 0);  // rows×C
  const at::Tensor row_labels = labels.repeat_interleave(f);
  const std::int64_t c = z.size(1);
  if (labels.min().item<std::int64_t>() < 0 || labels.max().item<std::int64_t>() >= c) {
    throw Error("deletion_curve: true label outside [0, " + std::to_string(c) + ")");
  }
  curve.true_prob = at::softmax(z, 1).gather(1, row_labels.unsqueeze(1)).view({n, f}).contiguous();
  curve.correct = z.argmax(1).eq(row_labels).view({n, f}).contiguous();
  const at::Tensor p = curve.true_prob.to(at::kDouble);
  if (f == 1) {
    curve.auc = p.select(1, 0).contiguous();
  } else {
    const at::Tensor dx = curve.fractions.narrow(0, 1, f - 1) - curve.fractions.narrow(0, 0, f - 1);
    const at::Tensor mid = 0.5 * (p.narrow(1, 1, f - 1) + p.narrow(1, 0, f - 1));
    const double span = spec.fractions.back() - spec.fractions.front();
    curve.auc = ((mid * dx.unsqueeze(0)).sum(1) / span).contiguous();
  }
  curve.mean_true_prob = p.mean(0);
  curve.accuracy = curve.correct.to(at::kDouble).mean(0);
  curve.mean_auc = curve.auc.mean().item<double>();
  return curve;
}

}  // namespace edi::explain
