#include "edi/engine/steering.hpp"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <sstream>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/engine/run_io.hpp"
#include "edi/explain/explain.hpp"
#include "edi/models/gallery.hpp"

namespace edi::engine {

namespace {

void check_range(const char* option, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi))
    throw ConfigError(std::string(option) + " " + format_g(v) + ": expected a number in [" + format_g(lo) + ", " + format_g(hi) + "]");
}

/// Normalised 1-D Gaussian taps (radius 2) per row; sigma ≈ 0 gives a delta.
at::Tensor gaussian_taps(const at::Tensor& sigma) {
  const at::Tensor offsets = at::arange(-2, 3, at::kFloat).view({1, 5});
  const at::Tensor s = sigma.view({-1, 1}).clamp_min(1e-3f);
  at::Tensor w = at::exp(-(offsets * offsets) / (2 * s * s));
  return w / w.sum(1, true);
}

/// Per-row separable blur with one sigma per row (grouped convolutions).
at::Tensor blur_rows(const at::Tensor& rows, const at::Tensor& sigma) {
  const std::int64_t r = rows.size(0), c = rows.size(1);
  const at::Tensor taps = gaussian_taps(sigma).to(rows.device()).repeat_interleave(c, 0);  // (r·c)×5
  at::Tensor x = at::reflection_pad2d(rows, {2, 2, 2, 2}).reshape({1, r * c, rows.size(2) + 4, rows.size(3) + 4});
  const std::vector<std::int64_t> one{1, 1}, none{0, 0};
  x = at::conv2d(x, taps.view({r * c, 1, 1, 5}), c10::nullopt, one, none, one, r * c);
  x = at::conv2d(x, taps.view({r * c, 1, 5, 1}), c10::nullopt, one, none, one, r * c);
  return x.view_as(rows);
}

constexpr double kFeatureStartSigma = 2.0 / 255.0;

at::Tensor l2_per_image(const at::Tensor& a) { return a.flatten(1).norm(2, 1).clamp_min(1e-30).view({-1, 1, 1, 1}); }

/// Autocast to bfloat16 on `device` for its lifetime (restores the previous state).
class Bf16Autocast {
 public:
  explicit Bf16Autocast(c10::Device device) : cuda_(device.is_cuda()) {
    namespace ac = at::autocast;
    was_on_ = cuda_ ? ac::is_enabled() : ac::is_cpu_enabled();
    was_dtype_ = cuda_ ? ac::get_autocast_gpu_dtype() : ac::get_autocast_cpu_dtype();
    if (cuda_) {
      ac::set_enabled(true);
      ac::set_autocast_gpu_dtype(at::kBFloat16);
    } else {
      ac::set_cpu_enabled(true);
      ac::set_autocast_cpu_dtype(at::kBFloat16);
    }
    ac::increment_nesting();
  }
  ~Bf16Autocast() {
    namespace ac = at::autocast;
    if (ac::decrement_nesting() == 0) ac::clear_cache();
    if (cuda_) {
      ac::set_enabled(was_on_);
      ac::set_autocast_gpu_dtype(was_dtype_);
    } else {
      ac::set_cpu_enabled(was_on_);
      ac::set_autocast_cpu_dtype(was_dtype_);
    }
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool cuda_;
  bool was_on_;
  at::ScalarType was_dtype_;
};

/// A steering model whose forward runs under bf16 autocast; float32 logits.
class Bf16Classifier : public models::Classifier {
 public:
  explicit Bf16Classifier(std::shared_ptr<models::Classifier> inner) : inner_(std::move(inner)) {}
  const models::ModelInfo& info() const override { return inner_->info(); }
  c10::Device device() const override { return inner_->device(); }
  std::int64_t parameter_count() const override { return inner_->parameter_count(); }
  at::Tensor logits(const at::Tensor& images) override {
    at::Tensor z;
    {
      Bf16Autocast on(inner_->device());
      z = inner_->logits(images);
    }
    return z.to(at::kFloat);
  }

 private:
  std::shared_ptr<models::Classifier> inner_;
};

}  // namespace

Precision parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::kFp32;
  if (text == "bf16") return Precision::kBf16;
  throw ConfigError("--precision " + text + ": expected fp32 or bf16");
}

const char* precision_name(Precision p) { return p == Precision::kBf16 ? "bf16" : "fp32"; }

SteeringModels with_precision(SteeringModels models, Precision precision, explain::Target target) {
  if (precision == Precision::kFp32) return models;
  if (target == explain::Target::kFeature)
    throw ConfigError("--precision bf16: not available with --target feature (it differentiates the embedder itself); use fp32");
  for (auto& m : models.steer) m = std::make_shared<Bf16Classifier>(std::move(m));
  return models;
}

void validate(const SteeringSpec& s) {
  if (s.eot < 0 || s.eot > 64) throw ConfigError("--eot " + std::to_string(s.eot) + ": expected an integer in [0, 64] (0 = off)");
  check_range("--eot-shift", s.eot_shift, 0, 32);
  check_range("--eot-scale", s.eot_scale, 0, 0.5);
  check_range("--eot-blur", s.eot_blur, 0, 4);
  check_range("--eot-brightness", s.eot_brightness, 0, 0.5);
}

std::string describe(const SteeringSpec& s) {
  return (s.eot > 0 ? " eot=" + std::to_string(s.eot) : "") + (s.precision == Precision::kBf16 ? " bf16" : "");
}

std::vector<std::string> split_model_list(const std::string& models) {
  std::vector<std::string> out;
  for (const auto& ref : edi::models::ModelRef::parse(models).list()) out.push_back(ref.text);
  return out;
}

SteeringModels load_steering_models(const std::string& models, const std::string& judge, const std::string& device,
                                    const data::Manifest& manifest, data::ResizeMode resize) {
  SteeringModels set;
  for (const auto& ref : split_model_list(models)) set.steer.push_back(load_steering_model(ref, device, manifest, resize));
  if (!judge.empty()) {
    for (const auto& ref : split_model_list(models))
      if (ref == judge) throw ConfigError("--judge " + judge + ": is also a steering model (a judge never steers)");
    set.judge = load_steering_model(judge, device, manifest, resize);
  }
  return set;
}

Steerer::Steerer(const SteeringModels& models, const explain::ExplainSpec& explain, const SteeringSpec& spec, std::uint64_t seed,
                 IdentifiedFn identified)
    : models_(models), explain_(explain), spec_(spec), seed_(seed), identified_(std::move(identified)) {
  if (models_.steer.empty()) throw Error("steering: no steering model");
  validate(spec_);
}

at::Tensor Steerer::fit(models::Classifier& model, const at::Tensor& rows) const {
  const int s = model.info().input_size;
  if (s <= 0 || (rows.size(2) == s && rows.size(3) == s)) return rows;
  // Shrinking: antialiased (triangle filter), as the model's images are decoded
  // and evaluated (data::resize_antialiased); a plain bilinear shrink would skip
  // pixels, which the model would then never see nor steer.
  if (rows.size(2) > s || rows.size(3) > s) return at::_upsample_bilinear2d_aa(rows, {s, s}, /*align_corners=*/false);
  return at::upsample_bilinear2d(rows, {s, s}, /*align_corners=*/false);
}

at::Tensor Steerer::transform(const at::Tensor& rows, const std::vector<std::string>& ids, int pass, int draw) const {
  const auto n = static_cast<std::int64_t>(ids.size());
  if (n == 0 || rows.size(0) % n != 0) throw Error("steering: EOT rows do not match the batch");
  std::vector<float> shift_x(n), shift_y(n), scale(n), sigma(n), gain(n);
  for (std::int64_t i = 0; i < n; ++i) {
    CounterRng rng(RngKey{seed_, stable_hash64(ids[static_cast<std::size_t>(i)]), static_cast<std::uint32_t>(pass), RngStream::kEot});
    rng.skip_to(4 * static_cast<std::uint64_t>(draw));
    auto sym = [&] { return static_cast<float>(2 * rng.uniform() - 1); };
    shift_x[i] = static_cast<float>(spec_.eot_shift) * sym();
    shift_y[i] = static_cast<float>(spec_.eot_shift) * sym();
    scale[i] = 1.f + static_cast<float>(spec_.eot_scale) * sym();
    sigma[i] = static_cast<float>(spec_.eot_blur * rng.uniform());
    gain[i] = 1.f + static_cast<float>(spec_.eot_brightness) * sym();
  }
  const std::int64_t rep = rows.size(0) / n;  // sample-major: image i at rows s·n + i
  auto per_row = [&](const std::vector<float>& v) { return at::tensor(v, at::kFloat).repeat({rep}).to(rows.device()); };
  at::Tensor x = rows;
  if (spec_.eot_shift > 0 || spec_.eot_scale > 0) {
    // Output pixel u samples input (u − shift)/scale about the centre (normalised coordinates).
    const at::Tensor inv = 1.0f / per_row(scale);
    const at::Tensor tx = -2.0f * per_row(shift_x) / static_cast<float>(rows.size(3)) * inv;
    const at::Tensor ty = -2.0f * per_row(shift_y) / static_cast<float>(rows.size(2)) * inv;
    const at::Tensor zero = at::zeros_like(inv);
    const at::Tensor theta = at::stack({at::stack({inv, zero, tx}, 1), at::stack({zero, inv, ty}, 1)}, 1);
    const at::Tensor grid = at::affine_grid_generator(theta, rows.sizes(), /*align_corners=*/false);
    x = at::grid_sampler(x, grid, /*bilinear*/ 0, /*border*/ 1, /*align_corners=*/false);
  }
  if (spec_.eot_blur > 0) x = blur_rows(x, per_row(sigma));
  if (spec_.eot_brightness > 0) x = x * per_row(gain).view({-1, 1, 1, 1});
  return x;
}

at::Tensor Steerer::feature_start(const std::vector<std::string>& ids, int pass, at::IntArrayRef image_shape) const {
  std::vector<std::int64_t> shape{static_cast<std::int64_t>(ids.size())};
  shape.insert(shape.end(), image_shape.begin(), image_shape.end());
  at::Tensor xi = at::empty(shape, at::kFloat);
  const std::int64_t per = xi.numel() / std::max<std::int64_t>(1, shape[0]);
  float* p = xi.data_ptr<float>();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    CounterRng rng(RngKey{seed_, stable_hash64(ids[i]), static_cast<std::uint32_t>(pass), RngStream::kEot});
    rng.skip_to(std::uint64_t{1} << 32);  // apart from the EOT draws' blocks
    for (std::int64_t e = 0; e < per; ++e) p[static_cast<std::int64_t>(i) * per + e] = static_cast<float>(kFeatureStartSigma * rng.normal());
  }
  return xi;
}

at::Tensor Steerer::attribution(models::Classifier& model, const at::Tensor& x, const at::Tensor& labels, const at::Tensor& originals,
                                const std::vector<RngKey>& keys, const std::vector<std::string>& ids, int pass,
                                at::Tensor* logits, at::Tensor* finite) const {
  const bool feature = explain_.target == explain::Target::kFeature;
  if (!feature && spec_.eot == 0) {  // the paper's rule: one call gives prediction and attribution
    auto fit_fn = [&](const at::Tensor& rows) { return fit(model, rows); };
    explain::ExplainResult r = explain::explain(model, x, labels, explain_, keys, fit_fn);
    *logits = r.logits;
    *finite = r.finite;
    return r.attribution;
  }
  {
    at::NoGradGuard no_grad;
    *logits = model.logits(fit(model, x.to(model.device()))).to(at::kCPU, at::kFloat);
  }
  const int draws = std::max(spec_.eot, 1);
  auto draw_fn = [&](int d) -> explain::InputTransform {
    if (spec_.eot == 0) return [&](const at::Tensor& rows) { return fit(model, rows); };
    return [&, d](const at::Tensor& rows) { return fit(model, transform(rows, ids, pass, d)); };
  };
  at::Tensor sum;
  if (feature) {
    auto* gallery = dynamic_cast<models::GalleryClassifier*>(&model);
    if (gallery == nullptr)
      throw ConfigError("--target feature: " + model.info().reference +
                        " is a classifier with no embedding; a feature target needs an embedding or gallery model");
    at::Tensor enrolled;
    {
      at::NoGradGuard no_grad;
      enrolled = gallery->embedder().embed(fit(model, originals.to(model.device()))).detach();
    }
    const at::Tensor xi = feature_start(ids, pass, x.sizes().slice(1)).to(x.device());
    for (int d = 0; d < draws; ++d) {
      const explain::InputTransform inner = draw_fn(d);
      auto started = [&](const at::Tensor& rows) { return inner(rows + xi.repeat({rows.size(0) / xi.size(0), 1, 1, 1})); };
      at::Tensor a = explain::explain_embedding(gallery->embedder(), x, enrolled, explain_, keys, started).attribution;
      sum = sum.defined() ? sum + a : a;
    }
  } else {
    // Every draw attributes the loss towards the clean image's target.
    at::Tensor top1, runner_up;
    explain::top_two(*logits, top1, runner_up);
    explain::ExplainSpec fixed = explain_;
    fixed.target = explain::Target::kTrueClass;
    const at::Tensor targets = explain_.target == explain::Target::kRunnerUp ? runner_up : labels;
    for (int d = 0; d < draws; ++d) {
      at::Tensor a = explain::explain(model, x, targets, fixed, keys, draw_fn(d)).attribution;
      sum = sum.defined() ? sum + a : a;
    }
  }
  return draws == 1 ? sum : sum / static_cast<float>(draws);
}

Steerer::Answer Steerer::answer(models::Classifier& model, const at::Tensor& logits, const at::Tensor& labels) const {
  const at::Tensor z = logits.to(at::kCPU, at::kFloat);
  const at::Tensor y = labels.to(at::kCPU, at::kLong).unsqueeze(1);
  Answer a;
  a.prob = at::softmax(z, 1).gather(1, y).squeeze(1).contiguous();
  a.rank = z.gt(z.gather(1, y)).sum(1).to(at::kLong).contiguous();
  a.top1 = z.argmax(1).contiguous();
  return a;
}

SteerResult Steerer::combine(const std::vector<Answer>& answers) const {
  SteerResult r;
  if (answers.size() == 1) {  // one model: its answer as is
    r.true_prob = answers.front().prob;
    r.true_rank = answers.front().rank;
    r.top1 = answers.front().top1;
    return r;
  }
  r.true_prob = answers.front().prob.clone();
  r.true_rank = answers.front().rank.clone();
  r.top1 = answers.front().top1.clone();
  const std::int64_t n = r.true_prob.size(0);
  for (std::int64_t i = 0; i < n; ++i) {
    for (const auto& a : answers) {
      const float p = a.prob.data_ptr<float>()[i];
      const auto k = a.rank.data_ptr<std::int64_t>()[i];
      if (!identified_(p, static_cast<int>(k))) continue;
      r.true_prob.data_ptr<float>()[i] = p;
      r.true_rank.data_ptr<std::int64_t>()[i] = k;
      r.top1.data_ptr<std::int64_t>()[i] = a.top1.data_ptr<std::int64_t>()[i];
      break;
    }
  }
  return r;
}

SteerResult Steerer::predict(const at::Tensor& x, const at::Tensor& labels) const {
  at::NoGradGuard no_grad;
  std::vector<Answer> answers;
  auto ask = [&](models::Classifier& m) {
    answers.push_back(answer(m, m.logits(fit(m, x.to(m.device()))).to(at::kCPU, at::kFloat), labels));
  };
  for (const auto& m : models_.steer) ask(*m);
  if (models_.judge) ask(*models_.judge);
  return combine(answers);
}

at::Tensor Steerer::ensemble_sum(const std::vector<at::Tensor>& parts, const std::vector<Answer>& answers) const {
  // Per image, only the models that still identify it steer it: a model it
  // already fools would take a share of the selection it does not need (the
  // image stays identified while ANY model identifies it). Where none does
  // (the fixed rule keeps perturbing), every model steers.
  const std::int64_t n = parts.front().size(0);
  std::vector<std::vector<float>> w(parts.size(), std::vector<float>(static_cast<std::size_t>(n), 0.f));
  for (std::int64_t i = 0; i < n; ++i) {
    bool any = false;
    for (std::size_t m = 0; m < parts.size(); ++m) {
      const bool id = identified_(answers[m].prob.data_ptr<float>()[i], static_cast<int>(answers[m].rank.data_ptr<std::int64_t>()[i]));
      w[m][static_cast<std::size_t>(i)] = id ? 1.f : 0.f;
      any = any || id;
    }
    if (!any)
      for (auto& wm : w) wm[static_cast<std::size_t>(i)] = 1.f;
  }
  at::Tensor total;
  for (std::size_t m = 0; m < parts.size(); ++m) {
    const at::Tensor a = parts[m] * at::tensor(w[m], at::kFloat).to(parts[m].device()).view({-1, 1, 1, 1});
    total = total.defined() ? total + a : a;
  }
  return total;
}

SteerResult Steerer::explain(const at::Tensor& x, const at::Tensor& labels, const at::Tensor& originals,
                             const std::vector<RngKey>& keys, const std::vector<std::string>& ids, int pass) const {
  std::vector<Answer> answers;
  std::vector<at::Tensor> parts;
  const bool ensemble = models_.steer.size() > 1;
  at::Tensor finite;  // from the explain step itself when one model answers
  for (const auto& m : models_.steer) {
    at::Tensor logits;
    at::Tensor a = attribution(*m, x, labels, originals, keys, ids, pass, &logits, &finite);
    answers.push_back(answer(*m, logits, labels));
    if (ensemble) a = a / l2_per_image(a);  // each model's per-image direction counts once
    parts.push_back(a);
  }
  at::Tensor total = ensemble ? ensemble_sum(parts, answers) : parts.front();
  if (models_.judge) {
    at::NoGradGuard no_grad;
    models::Classifier& j = *models_.judge;
    answers.push_back(answer(j, j.logits(fit(j, x.to(j.device()))).to(at::kCPU, at::kFloat), labels));
  }
  SteerResult r = combine(answers);
  r.attribution = total.contiguous();
  r.finite = !ensemble && finite.defined() ? finite : at::isfinite(r.attribution).flatten(1).all(1);
  return r;
}

}  // namespace edi::engine
