#include "edi/explain/explain.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "edi/core/error.hpp"

namespace edi::explain {
namespace {

/// Rows evaluated per image. Row 0 is always the image itself, so the model
/// output at the image (the prediction) comes from the same call as the
/// gradient. Rows of a chunk are laid out sample-major: row s*nc + i.
struct Plan {
  std::int64_t samples = 1;    ///< rows per image
  std::vector<double> alpha;   ///< IG path position per row (row 0: 1, row 1: 0)
  std::vector<double> weight;  ///< weight of each row's gradient in the attribution
};

Plan make_plan(const ExplainSpec& spec) {
  Plan p;
  switch (spec.method) {
    case Attribution::kGradient:
    case Attribution::kAbsGradient:
      p.samples = 1;
      p.weight = {1.0};
      break;
    case Attribution::kSmoothGrad: {
      const int n = spec.smoothgrad_samples;
      p.samples = 1 + n;
      p.weight.assign(static_cast<std::size_t>(p.samples), 1.0 / n);
      p.weight[0] = 0.0;  // the clean row only gives the prediction
      break;
    }
    case Attribution::kIntegratedGradients: {
      const int m = spec.ig_steps;
      p.alpha = {1.0, 0.0};
      if (spec.ig_rule == IgRule::kTrapezoid) {
        p.weight = {0.5 / m, 0.5 / m};
        for (int k = 1; k < m; ++k) {
          p.alpha.push_back(static_cast<double>(k) / m);
          p.weight.push_back(1.0 / m);
        }
      } else {
        p.weight = {0.0, 0.0};
        for (int k = 0; k < m; ++k) {
          p.alpha.push_back((k + 0.5) / m);
          p.weight.push_back(1.0 / m);
        }
      }
      p.samples = static_cast<std::int64_t>(p.alpha.size());
      break;
    }
  }
  return p;
}

/// SmoothGrad noise of one chunk: (samples-1)×nc×E, drawn per image from its
/// own key in the order sample, entry — independent of the batch.
at::Tensor smoothgrad_noise(const std::vector<RngKey>& keys, std::int64_t first, std::int64_t nc,
                            std::int64_t entries, int samples, double sigma) {
  at::Tensor noise = at::empty({samples, nc, entries}, at::kFloat);
  float* p = noise.data_ptr<float>();
  for (std::int64_t i = 0; i < nc; ++i) {
    CounterRng rng(keys[static_cast<std::size_t>(first + i)]);
    for (int s = 0; s < samples; ++s) {
      float* row = p + (static_cast<std::int64_t>(s) * nc + i) * entries;
      for (std::int64_t e = 0; e < entries; ++e) row[e] = static_cast<float>(sigma * rng.normal());
    }
  }
  return noise;
}

/// Rows of one chunk (nc images): samples*nc × 3×H×W on the model's device.
at::Tensor build_rows(const at::Tensor& xc, const ExplainSpec& spec, const Plan& plan,
                      const std::vector<RngKey>& keys, std::int64_t first) {
  const std::int64_t nc = xc.size(0);
  switch (spec.method) {
    case Attribution::kGradient:
    case Attribution::kAbsGradient:
      return xc;  // detached into a fresh leaf by the caller; x itself is never modified
    case Attribution::kSmoothGrad: {
      const std::int64_t entries = xc[0].numel();
      at::Tensor noise = smoothgrad_noise(keys, first, nc, entries, spec.smoothgrad_samples,
                                          spec.smoothgrad_sigma)
                             .to(xc.device())
                             .view({spec.smoothgrad_samples, nc, xc.size(1), xc.size(2), xc.size(3)});
      at::Tensor noisy = xc.unsqueeze(0) + noise;
      return at::cat({xc.unsqueeze(0), noisy}, 0).flatten(0, 1);
    }
    case Attribution::kIntegratedGradients: {
      at::Tensor alpha = at::tensor(plan.alpha, at::kDouble).to(at::kFloat).to(xc.device());
      alpha = alpha.view({plan.samples, 1, 1, 1, 1});
      const auto x0 = static_cast<float>(spec.ig_baseline);
      return (x0 + alpha * (xc.unsqueeze(0) - x0)).flatten(0, 1);
    }
  }
  return {};
}

/// Per-row losses from the model outputs of all rows of a chunk.
using LossFn = std::function<at::Tensor(const at::Tensor& outputs, std::int64_t nc, std::int64_t samples,
                                        std::int64_t first)>;

struct CoreResult {
  at::Tensor outputs;       ///< N×K model outputs at the images (row 0), CPU
  at::Tensor loss;          ///< N, CPU
  at::Tensor attribution;   ///< N×3×H×W, CPU
  at::Tensor finite;        ///< N bool
  at::Tensor completeness;  ///< N (IG only)
  std::int64_t calls = 0;
};

void check_images(const at::Tensor& x, const char* who) {
  if (x.dim() != 4 || x.size(0) == 0 || x.numel() == 0) {
    throw Error(std::string(who) + ": expected N×C×H×W images, got shape " + c10::str(x.sizes()));
  }
}

CoreResult run_core(const std::function<at::Tensor(const at::Tensor&)>& forward, c10::Device device,
                    const at::Tensor& x_in, const ExplainSpec& spec, const std::vector<RngKey>& keys,
                    const LossFn& loss_fn, const char* who) {
  validate(spec);
  check_images(x_in, who);
  const std::int64_t n = x_in.size(0);
  if (spec.method == Attribution::kSmoothGrad && keys.size() != static_cast<std::size_t>(n)) {
    throw Error(std::string(who) + ": smoothgrad needs one RngKey per image (" + std::to_string(n) +
                "), got " + std::to_string(keys.size()));
  }
  if (c10::InferenceMode::is_enabled()) {
    throw Error(std::string(who) + ": cannot take input gradients inside InferenceMode");
  }
  c10::AutoGradMode grad_on(true);
  const at::Tensor x = x_in.detach().to(device, at::kFloat).contiguous();
  const Plan plan = make_plan(spec);
  const std::int64_t s = plan.samples;
  const std::int64_t chunk = spec.max_rows > 0 ? std::max<std::int64_t>(1, spec.max_rows / s) : n;

  std::vector<at::Tensor> outputs, losses, attrs, completeness;
  CoreResult r;
  for (std::int64_t first = 0; first < n; first += chunk) {
    const std::int64_t nc = std::min(chunk, n - first);
    const at::Tensor xc = x.narrow(0, first, nc);
    at::Tensor rows = build_rows(xc, spec, plan, keys, first).detach().requires_grad_(true);
    at::Tensor out = forward(rows);
    ++r.calls;
    if (!out.requires_grad()) {
      throw ModelError(std::string(who) +
                       ": model output does not depend differentiably on its input (run without "
                       "NoGradGuard, with a frozen model)");
    }
    if (out.dim() != 2 || out.size(0) != nc * s) {
      throw ModelError(std::string(who) + ": model returned shape " + c10::str(out.sizes()) + " for " +
                       std::to_string(nc * s) + " inputs; expected rows×K");
    }
    at::Tensor row_loss = loss_fn(out, nc, s, first);  // nc*s
    // Sum, not mean: each row's gradient is its own single-image gradient.
    auto grads = torch::autograd::grad({row_loss.sum()}, {rows}, {}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    if (!grads[0].defined()) {
      throw ModelError(std::string(who) + ": model output does not depend on its input");
    }
    const at::Tensor g = grads[0].view({s, nc, x.size(1), x.size(2), x.size(3)});
    at::Tensor attr;
    const at::Tensor row_loss_d = row_loss.detach().view({s, nc});
    switch (spec.method) {
      case Attribution::kGradient:
        attr = g[0];
        break;
      case Attribution::kAbsGradient:
        attr = g[0].abs();
        break;
      case Attribution::kSmoothGrad:
        attr = g.narrow(0, 1, s - 1).mean(0);
        break;
      case Attribution::kIntegratedGradients: {
        at::Tensor w = at::tensor(plan.weight, at::kDouble).to(at::kFloat).to(g.device()).view({s, 1, 1, 1, 1});
        const auto x0 = static_cast<float>(spec.ig_baseline);
        attr = (xc - x0) * (g * w).sum(0);
        const at::Tensor delta = row_loss_d[0].to(at::kDouble) - row_loss_d[1].to(at::kDouble);
        completeness.push_back(
            (attr.to(at::kDouble).flatten(1).sum(1) - delta).cpu());
        break;
      }
    }
    outputs.push_back(out.detach().narrow(0, 0, nc).to(at::kCPU, at::kFloat));
    losses.push_back(row_loss_d[0].to(at::kCPU, at::kFloat));
    attrs.push_back(attr.detach().to(at::kCPU, at::kFloat));
  }
  r.outputs = at::cat(outputs, 0).contiguous();
  r.loss = at::cat(losses, 0).contiguous();
  r.attribution = at::cat(attrs, 0).contiguous();
  r.finite = at::isfinite(r.attribution).flatten(1).all(1);
  if (!completeness.empty()) r.completeness = at::cat(completeness, 0).to(at::kFloat);
  return r;
}

}  // namespace

void top_two(const at::Tensor& logits, at::Tensor& top1, at::Tensor& runner_up) {
  if (logits.dim() != 2 || logits.size(1) == 0) {
    throw Error("explain::top_two: expected N×C logits, got shape " + std::string(c10::str(logits.sizes())));
  }
  const at::Tensor z = logits.detach().to(at::kCPU, at::kDouble).contiguous();
  const std::int64_t n = z.size(0), c = z.size(1);
  top1 = at::empty({n}, at::kLong);
  runner_up = at::empty({n}, at::kLong);
  const double* zp = z.data_ptr<double>();
  auto* t1 = top1.data_ptr<std::int64_t>();
  auto* t2 = runner_up.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const double* row = zp + i * c;
    std::int64_t best = 0;
    for (std::int64_t k = 1; k < c; ++k) {
      if (row[k] > row[best]) best = k;
    }
    std::int64_t second = best;  // C == 1: no other class
    for (std::int64_t k = 0; k < c; ++k) {
      if (k != best && (second == best || row[k] > row[second])) second = k;
    }
    t1[i] = best;
    t2[i] = second;
  }
}

RngKey explain_key(std::uint64_t seed, std::string_view image_id, std::uint32_t pass) noexcept {
  return RngKey{seed, stable_hash64(image_id), pass, RngStream::kExplain};
}

ExplainResult explain(models::Classifier& model, const at::Tensor& x, const at::Tensor& true_labels,
                      const ExplainSpec& spec, const std::vector<RngKey>& keys, const InputTransform& transform) {
  check_images(x, "explain");
  if (spec.target == Target::kFeature)
    throw ConfigError("--target feature: " + model.info().reference +
                      " is a classifier with no embedding; a feature target needs an embedding or gallery model");
  const std::int64_t n = x.size(0);
  if (true_labels.dim() != 1 || true_labels.size(0) != n) {
    throw Error("explain: expected " + std::to_string(n) + " true labels, got shape " +
                c10::str(true_labels.sizes()));
  }
  const at::Tensor labels = true_labels.detach().to(at::kCPU, at::kLong).contiguous();
  ExplainResult res;
  LossFn loss_fn = [&](const at::Tensor& out, std::int64_t nc, std::int64_t s, std::int64_t first) {
    const std::int64_t c = out.size(1);
    const at::Tensor lab = labels.narrow(0, first, nc);
    const auto lo = lab.min().item<std::int64_t>(), hi = lab.max().item<std::int64_t>();
    if (lo < 0 || hi >= c) {
      throw Error("explain: true label " + std::to_string(lo < 0 ? lo : hi) + " outside [0, " +
                  std::to_string(c) + ") classes of the model");
    }
    at::Tensor target;
    if (spec.target == Target::kRunnerUp) {
      at::Tensor t1, t2;
      top_two(out.detach().narrow(0, 0, nc), t1, t2);
      target = t2;
    } else {
      target = lab.clone();
    }
    const at::Tensor row_target = target.repeat({s}).to(out.device());
    // Cross-entropy per row: -log softmax(z)[target].
    return -at::log_softmax(out, 1).gather(1, row_target.unsqueeze(1)).squeeze(1);
  };
  auto forward = [&](const at::Tensor& rows) { return model.logits(transform ? transform(rows) : rows); };
  CoreResult core = run_core(forward, model.device(), x, spec, keys, loss_fn, "explain");

  res.logits = core.outputs;
  top_two(res.logits, res.top1, res.runner_up);
  res.target = spec.target == Target::kRunnerUp ? res.runner_up.clone() : labels.clone();
  const at::Tensor prob = at::softmax(res.logits, 1);
  res.true_prob = prob.gather(1, labels.unsqueeze(1)).squeeze(1).contiguous();
  const at::Tensor true_logit = res.logits.gather(1, labels.unsqueeze(1));
  res.true_rank = res.logits.gt(true_logit).sum(1).to(at::kLong);
  res.correct = res.top1.eq(labels);
  res.loss = core.loss;
  res.attribution = core.attribution;
  res.finite = core.finite;
  res.completeness_error = core.completeness;
  res.forward_calls = core.calls;
  return res;
}

EmbeddingExplainResult explain_embedding(models::Embedder& model, const at::Tensor& x, const at::Tensor& enrolled,
                                         const ExplainSpec& spec, const std::vector<RngKey>& keys,
                                         const InputTransform& transform) {
  check_images(x, "explain_embedding");
  const std::int64_t n = x.size(0);
  if (enrolled.dim() != 2 || enrolled.size(0) != n) {
    throw Error("explain_embedding: expected " + std::to_string(n) + "×D enrolled embeddings, got shape " +
                c10::str(enrolled.sizes()));
  }
  const at::Tensor ref = enrolled.detach().to(model.device(), at::kFloat).contiguous();
  LossFn loss_fn = [&](const at::Tensor& out, std::int64_t nc, std::int64_t s, std::int64_t first) {
    if (out.size(1) != ref.size(1)) {
      throw Error("explain_embedding: model embeds into " + std::to_string(out.size(1)) +
                  " dimensions, enrolled embeddings have " + std::to_string(ref.size(1)));
    }
    const at::Tensor r = ref.narrow(0, first, nc).repeat({s, 1});
    return (out - r).pow(2).sum(1);
  };
  auto forward = [&](const at::Tensor& rows) { return model.embed(transform ? transform(rows) : rows); };
  CoreResult core = run_core(forward, model.device(), x, spec, keys, loss_fn, "explain_embedding");
  EmbeddingExplainResult res;
  res.embedding = core.outputs;
  res.distance = core.loss;
  res.attribution = core.attribution;
  res.finite = core.finite;
  res.completeness_error = core.completeness;
  res.forward_calls = core.calls;
  return res;
}

}  // namespace edi::explain
