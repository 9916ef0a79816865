// explain(): closed-form gradients, runner-up target, prediction fields from
// the same call, batch exactness, SmoothGrad keys, IG completeness, embedders.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <vector>

#include "edi/core/error.hpp"
#include "edi/explain/explain.hpp"
#include "test_models.hpp"

namespace edi::explain {
namespace {

using testing::CnnClassifier;
using testing::LinearClassifier;
using testing::LinearEmbedder;
using testing::NoGradClassifier;

LinearClassifier make_linear(std::int64_t classes, int size, std::uint64_t seed) {
  torch::manual_seed(seed);
  const std::int64_t e = 3 * size * size;
  return LinearClassifier(torch::randn({classes, e}) * 0.2, torch::randn({classes}) * 0.5, size);
}

at::Tensor make_images(std::int64_t n, int size, std::uint64_t seed) {
  torch::manual_seed(seed);
  return torch::rand({n, 3, size, size});
}

/// Indices of the two largest values (first index on ties), written independently of top_two.
std::pair<std::int64_t, std::int64_t> two_largest(const at::Tensor& z) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(z.size(0)));
  std::iota(idx.begin(), idx.end(), 0);
  const auto acc = z.accessor<float, 1>();
  std::stable_sort(idx.begin(), idx.end(), [&](std::int64_t a, std::int64_t b) { return acc[a] > acc[b]; });
  return {idx[0], idx[1]};
}

/// dCE(W x + b, y)/dx = Wᵀ(softmax(z) − onehot(y)), in float64.
at::Tensor closed_form_grad(const LinearClassifier& m, const at::Tensor& x1, std::int64_t y) {
  const at::Tensor w = m.weight().to(at::kDouble);
  const at::Tensor z = w.matmul(x1.flatten().to(at::kDouble)) + m.bias().to(at::kDouble);
  at::Tensor d = torch::softmax(z, 0);
  d[y] -= 1.0;
  return w.t().matmul(d).view(x1.sizes());
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST(Explain, GradientMatchesClosedFormForRunnerUp) {
  auto model = make_linear(5, 6, 11);
  const at::Tensor x = make_images(4, 6, 12);
  const at::Tensor labels = torch::tensor({0, 1, 2, 3}, torch::kLong);
  const ExplainResult r = explain(model, x, labels, ExplainSpec{});
  ASSERT_EQ(r.attribution.sizes(), x.sizes());
  for (std::int64_t i = 0; i < 4; ++i) {
    const at::Tensor z = model.weight().matmul(x[i].flatten()) + model.bias();
    const auto [first, second] = two_largest(z);
    EXPECT_EQ(r.top1[i].item<std::int64_t>(), first);
    EXPECT_EQ(r.runner_up[i].item<std::int64_t>(), second);
    EXPECT_EQ(r.target[i].item<std::int64_t>(), second);
    const at::Tensor expected = closed_form_grad(model, x[i], second);
    EXPECT_LE(max_abs_diff(r.attribution[i], expected), 1e-6) << "image " << i;
    const double loss = -torch::log_softmax(z.to(at::kDouble), 0)[second].item<double>();
    EXPECT_NEAR(r.loss[i].item<double>(), loss, 1e-5);
  }
  EXPECT_TRUE(r.finite.all().item<bool>());
  EXPECT_FALSE(r.completeness_error.defined());
}

TEST(Explain, GradientMatchesClosedFormForTrueClass) {
  auto model = make_linear(4, 5, 21);
  const at::Tensor x = make_images(3, 5, 22);
  const at::Tensor labels = torch::tensor({3, 0, 2}, torch::kLong);
  ExplainSpec spec;
  spec.target = Target::kTrueClass;
  const ExplainResult r = explain(model, x, labels, spec);
  for (std::int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.target[i].item<std::int64_t>(), labels[i].item<std::int64_t>());
    EXPECT_LE(max_abs_diff(r.attribution[i], closed_form_grad(model, x[i], labels[i].item<std::int64_t>())),
              1e-6);
  }
}

TEST(Explain, PredictionComesFromTheSameSingleCall) {
  CnnClassifier model(6, 10);
  const at::Tensor x = make_images(5, 10, 31);
  at::Tensor z;
  {
    torch::NoGradGuard g;
    z = model.logits(x);
  }
  model.calls_ = 0;
  // Image 0 and 3 labelled with their top-1, the others with another class.
  at::Tensor labels = (z.argmax(1) + 1).remainder(6);
  labels[0] = z[0].argmax();
  labels[3] = z[3].argmax();
  const ExplainResult r = explain(model, x, labels, ExplainSpec{});
  EXPECT_EQ(model.calls_, 1);
  EXPECT_EQ(r.forward_calls, 1);
  EXPECT_LE(max_abs_diff(r.logits, z), 1e-6);
  const at::Tensor p = torch::softmax(z.to(at::kDouble), 1);
  for (std::int64_t i = 0; i < 5; ++i) {
    const std::int64_t y = labels[i].item<std::int64_t>();
    EXPECT_NEAR(r.true_prob[i].item<double>(), p[i][y].item<double>(), 1e-6);
    std::int64_t rank = 0;
    for (std::int64_t c = 0; c < 6; ++c) rank += z[i][c].item<float>() > z[i][y].item<float>();
    EXPECT_EQ(r.true_rank[i].item<std::int64_t>(), rank);
    EXPECT_EQ(r.correct[i].item<bool>(), rank == 0);
  }
  EXPECT_TRUE(r.correct[0].item<bool>());
  EXPECT_FALSE(r.correct[1].item<bool>());
}

TEST(Explain, BatchedGradientsEqualPerImageGradients) {
  CnnClassifier model(7, 12);
  const at::Tensor x = make_images(6, 12, 41);
  const at::Tensor labels = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kLong);
  for (Attribution method : {Attribution::kGradient, Attribution::kAbsGradient}) {
    ExplainSpec spec;
    spec.method = method;
    const ExplainResult batch = explain(model, x, labels, spec);
    const double scale = batch.attribution.abs().max().item<double>();
    ASSERT_GT(scale, 0.0);
    for (std::int64_t i = 0; i < 6; ++i) {
      const ExplainResult one = explain(model, x.narrow(0, i, 1), labels.narrow(0, i, 1), spec);
      EXPECT_LE(max_abs_diff(batch.attribution[i], one.attribution[0]), 1e-6 * std::max(1.0, scale))
          << attribution_name(method) << " image " << i;
      EXPECT_EQ(batch.runner_up[i].item<std::int64_t>(), one.runner_up[0].item<std::int64_t>());
      EXPECT_LE(max_abs_diff(batch.logits[i], one.logits[0]), 1e-6);
    }
  }
}

TEST(Explain, AbsGradientIsAbsoluteOfSignedGradient) {
  CnnClassifier model(5, 8);
  const at::Tensor x = make_images(3, 8, 51);
  const at::Tensor labels = torch::tensor({1, 2, 3}, torch::kLong);
  ExplainSpec abs_spec;
  abs_spec.method = Attribution::kAbsGradient;
  const ExplainResult s = explain(model, x, labels, ExplainSpec{});
  const ExplainResult a = explain(model, x, labels, abs_spec);
  EXPECT_TRUE(torch::equal(a.attribution, s.attribution.abs()));
  EXPECT_TRUE((s.attribution < 0).any().item<bool>());  // the signed map really has both signs
}

TEST(Explain, TopTwoBreaksTiesByFirstIndex) {
  const at::Tensor z = torch::tensor({{1.f, 3.f, 3.f, 0.f}, {2.f, 2.f, 2.f, 2.f}, {0.f, -1.f, 4.f, 4.f}});
  at::Tensor t1, t2;
  top_two(z, t1, t2);
  EXPECT_EQ(t1[0].item<std::int64_t>(), 1);
  EXPECT_EQ(t2[0].item<std::int64_t>(), 2);
  EXPECT_EQ(t1[1].item<std::int64_t>(), 0);
  EXPECT_EQ(t2[1].item<std::int64_t>(), 1);
  EXPECT_EQ(t1[2].item<std::int64_t>(), 2);
  EXPECT_EQ(t2[2].item<std::int64_t>(), 3);
  top_two(torch::tensor({{0.5f}}), t1, t2);
  EXPECT_EQ(t1[0].item<std::int64_t>(), 0);
  EXPECT_EQ(t2[0].item<std::int64_t>(), 0);
}

std::vector<RngKey> keys_for(const std::vector<std::string>& ids, std::uint32_t pass) {
  std::vector<RngKey> keys;
  for (const auto& id : ids) keys.push_back(explain_key(2024, id, pass));
  return keys;
}

TEST(Explain, ExplainKeyUsesTheExplainStream) {
  const RngKey k = explain_key(9, "class_a/img1.jpg", 4);
  EXPECT_EQ(k.seed, 9u);
  EXPECT_EQ(k.item, stable_hash64("class_a/img1.jpg"));
  EXPECT_EQ(k.pass, 4u);
  EXPECT_EQ(k.stream, RngStream::kExplain);
}

TEST(Explain, SmoothGradMatchesManualAverageOnLinearModel) {
  auto model = make_linear(4, 4, 61);
  const at::Tensor x = make_images(2, 4, 62);
  const at::Tensor labels = torch::tensor({0, 1}, torch::kLong);
  ExplainSpec spec;
  spec.method = Attribution::kSmoothGrad;
  spec.smoothgrad_samples = 5;
  spec.smoothgrad_sigma = 0.2;
  const auto keys = keys_for({"a", "b"}, 3);
  const ExplainResult r = explain(model, x, labels, spec, keys);
  EXPECT_EQ(r.forward_calls, 1);
  const std::int64_t e = x[0].numel();
  for (std::int64_t i = 0; i < 2; ++i) {
    // Documented draw order: per image, sample-major, then entries in C,H,W order.
    CounterRng rng(keys[static_cast<std::size_t>(i)]);
    const std::int64_t y2 = r.runner_up[i].item<std::int64_t>();
    at::Tensor sum = torch::zeros({e}, torch::kDouble);
    for (int s = 0; s < 5; ++s) {
      at::Tensor noise = torch::empty({e});
      for (std::int64_t k = 0; k < e; ++k) noise[k] = static_cast<float>(0.2 * rng.normal());
      const at::Tensor xs = x[i].flatten() + noise;
      sum += closed_form_grad(model, xs.view(x[i].sizes()), y2).flatten();
    }
    EXPECT_LE(max_abs_diff(r.attribution[i].flatten(), sum / 5.0), 1e-6) << "image " << i;
    // The prediction is the clean image's, not a noisy copy's.
    const at::Tensor z = model.weight().matmul(x[i].flatten()) + model.bias();
    EXPECT_LE(max_abs_diff(r.logits[i], z), 1e-5);
  }
}

TEST(Explain, SmoothGradIsDeterministicByKeyAndIndependentOfBatch) {
  CnnClassifier model(5, 8);
  const at::Tensor x = make_images(4, 8, 71);
  const at::Tensor labels = torch::tensor({0, 1, 2, 3}, torch::kLong);
  ExplainSpec spec;
  spec.method = Attribution::kSmoothGrad;
  spec.smoothgrad_samples = 6;
  const std::vector<std::string> ids = {"p/0.jpg", "p/1.jpg", "q/2.jpg", "q/3.jpg"};
  const auto keys = keys_for(ids, 1);
  const ExplainResult a = explain(model, x, labels, spec, keys);
  const ExplainResult b = explain(model, x, labels, spec, keys);
  EXPECT_TRUE(torch::equal(a.attribution, b.attribution));

  // Reversed batch with reversed keys: same per-image maps.
  const at::Tensor rev = torch::tensor({3, 2, 1, 0}, torch::kLong);
  const auto rkeys = std::vector<RngKey>(keys.rbegin(), keys.rend());
  const ExplainResult c = explain(model, x.index_select(0, rev), labels.index_select(0, rev), spec, rkeys);
  EXPECT_LE(max_abs_diff(c.attribution.index_select(0, rev), a.attribution), 1e-6);

  // One image alone.
  const ExplainResult d = explain(model, x.narrow(0, 2, 1), labels.narrow(0, 2, 1), spec, {keys[2]});
  EXPECT_LE(max_abs_diff(d.attribution[0], a.attribution[2]), 1e-6);

  // Another pass draws other noise.
  const ExplainResult e = explain(model, x, labels, spec, keys_for(ids, 2));
  EXPECT_GT(max_abs_diff(e.attribution, a.attribution), 1e-4);
  // Noise changes the map relative to the plain gradient.
  const ExplainResult g = explain(model, x, labels, ExplainSpec{});
  EXPECT_GT(max_abs_diff(g.attribution, a.attribution), 1e-4);
  EXPECT_LE(max_abs_diff(g.logits, a.logits), 1e-6);
}

TEST(Explain, IntegratedGradientsOneTrapezoidStepIsEndPointAverage) {
  auto model = make_linear(3, 4, 81);
  const at::Tensor x = make_images(2, 4, 82);
  const at::Tensor labels = torch::tensor({0, 2}, torch::kLong);
  ExplainSpec spec;
  spec.method = Attribution::kIntegratedGradients;
  spec.ig_steps = 1;
  spec.ig_baseline = 0.25;
  const ExplainResult r = explain(model, x, labels, spec);
  for (std::int64_t i = 0; i < 2; ++i) {
    const std::int64_t y2 = r.runner_up[i].item<std::int64_t>();
    const at::Tensor x0 = torch::full_like(x[i], 0.25);
    const at::Tensor expected = (x[i].to(at::kDouble) - 0.25) *
                                0.5 * (closed_form_grad(model, x[i], y2) + closed_form_grad(model, x0, y2));
    EXPECT_LE(max_abs_diff(r.attribution[i], expected), 1e-6);
    // Completeness error against L(x) - L(x0) computed here.
    const at::Tensor w = model.weight().to(at::kDouble), b = model.bias().to(at::kDouble);
    const double lx = -torch::log_softmax(w.matmul(x[i].flatten().to(at::kDouble)) + b, 0)[y2].item<double>();
    const double l0 = -torch::log_softmax(w.matmul(x0.flatten().to(at::kDouble)) + b, 0)[y2].item<double>();
    EXPECT_NEAR(r.completeness_error[i].item<double>(), expected.sum().item<double>() - (lx - l0), 1e-4);
  }
}

TEST(Explain, IntegratedGradientsCompletenessErrorShrinksWithSteps) {
  CnnClassifier model(5, 8);
  const at::Tensor x = make_images(3, 8, 91);
  const at::Tensor labels = torch::tensor({0, 1, 2}, torch::kLong);
  for (IgRule rule : {IgRule::kTrapezoid, IgRule::kMidpoint}) {
    std::vector<double> errors;
    double delta_scale = 0.0;
    for (int steps : {1, 4, 16, 64}) {
      ExplainSpec spec;
      spec.method = Attribution::kIntegratedGradients;
      spec.ig_rule = rule;
      spec.ig_steps = steps;
      const ExplainResult r = explain(model, x, labels, spec);
      ASSERT_TRUE(r.completeness_error.defined());
      EXPECT_EQ(r.forward_calls, 1);
      errors.push_back(r.completeness_error.abs().max().item<double>());
      delta_scale = std::max(delta_scale, r.attribution.flatten(1).sum(1).abs().max().item<double>());
    }
    ::testing::Test::RecordProperty(std::string("ig_error_") + std::string(ig_rule_name(rule)),
                                    std::to_string(errors[0]) + "," + std::to_string(errors[1]) + "," +
                                        std::to_string(errors[2]) + "," + std::to_string(errors[3]));
    std::printf("IG %s completeness |error| at steps 1,4,16,64: %.3g %.3g %.3g %.3g (|sum attr| ~ %.3g)\n",
                std::string(ig_rule_name(rule)).c_str(), errors[0], errors[1], errors[2], errors[3], delta_scale);
    EXPECT_GT(errors[0], errors[1]);
    EXPECT_GT(errors[1], errors[2]);
    EXPECT_GE(errors[2], errors[3] * 0.999);
    EXPECT_LT(errors[3], 1e-4 * delta_scale);  // observed ~1e-5 relative at 64 steps
  }
}

TEST(Explain, MaxRowsSplitsWithoutChangingResults) {
  CnnClassifier model(5, 8);
  const at::Tensor x = make_images(5, 8, 101);
  const at::Tensor labels = torch::tensor({0, 1, 2, 3, 4}, torch::kLong);
  ExplainSpec spec;
  spec.method = Attribution::kSmoothGrad;
  spec.smoothgrad_samples = 4;  // 5 rows per image
  const auto keys = keys_for({"a", "b", "c", "d", "e"}, 0);
  const ExplainResult whole = explain(model, x, labels, spec, keys);
  spec.max_rows = 10;  // 2 images per call -> 3 calls
  const ExplainResult split = explain(model, x, labels, spec, keys);
  EXPECT_EQ(whole.forward_calls, 1);
  EXPECT_EQ(split.forward_calls, 3);
  EXPECT_LE(max_abs_diff(whole.attribution, split.attribution), 1e-6);
  EXPECT_LE(max_abs_diff(whole.logits, split.logits), 1e-6);
  spec.max_rows = 1;  // smaller than one image's rows: one image per call
  EXPECT_EQ(explain(model, x, labels, spec, keys).forward_calls, 5);
}

TEST(Explain, EmbeddingDistanceGradientMatchesClosedForm) {
  torch::manual_seed(111);
  const int size = 4;
  const std::int64_t e = 3 * size * size, d = 6;
  LinearEmbedder model(torch::randn({d, e}) * 0.3, size);
  const at::Tensor x = make_images(3, size, 112);
  const at::Tensor enrolled = torch::randn({3, d});
  const EmbeddingExplainResult r = explain_embedding(model, x, enrolled, ExplainSpec{});
  const at::Tensor a = model.matrix().to(at::kDouble);
  for (std::int64_t i = 0; i < 3; ++i) {
    const at::Tensor diff = a.matmul(x[i].flatten().to(at::kDouble)) - enrolled[i].to(at::kDouble);
    EXPECT_NEAR(r.distance[i].item<double>(), diff.pow(2).sum().item<double>(), 1e-4);
    EXPECT_LE(max_abs_diff(r.attribution[i].flatten(), 2.0 * a.t().matmul(diff)), 1e-5);
  }
  EXPECT_LE(max_abs_diff(r.embedding, x.flatten(1).matmul(model.matrix().t())), 1e-6);
  // Stepping along the attribution increases the distance.
  const at::Tensor moved = x + 1e-3 * r.attribution.sign();
  const at::Tensor dist2 = (moved.flatten(1).matmul(model.matrix().t()) - enrolled).pow(2).sum(1);
  EXPECT_TRUE((dist2 > r.distance).all().item<bool>());
}

TEST(Explain, RejectsNonDifferentiableModelsAndBadInputs) {
  torch::manual_seed(121);
  NoGradClassifier broken(torch::randn({3, 48}), torch::randn({3}), 4);
  const at::Tensor x = make_images(2, 4, 122);
  const at::Tensor labels = torch::tensor({0, 1}, torch::kLong);
  EXPECT_THROW(explain(broken, x, labels, ExplainSpec{}), ModelError);

  auto model = make_linear(3, 4, 123);
  EXPECT_THROW(explain(model, x, torch::tensor({0}, torch::kLong), ExplainSpec{}), Error);
  EXPECT_THROW(explain(model, x, torch::tensor({0, 3}, torch::kLong), ExplainSpec{}), Error);
  EXPECT_THROW(explain(model, x.flatten(1), labels, ExplainSpec{}), Error);
  ExplainSpec sg;
  sg.method = Attribution::kSmoothGrad;
  EXPECT_THROW(explain(model, x, labels, sg), Error);  // no keys
  sg.smoothgrad_samples = 0;
  EXPECT_THROW(explain(model, x, labels, sg, keys_for({"a", "b"}, 0)), ConfigError);
}

TEST(Explain, TimingAt224) {
  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  };
  const std::int64_t n = 8;
  const at::Tensor x = make_images(n, 224, 131);
  const at::Tensor labels = torch::arange(n, torch::kLong).remainder(10);
  const int reps = 5;

  // (1) A linear 10-class model at 224×224: the model costs one mat-vec per
  // image, so explain()'s time is mostly its own work (target, copies,
  // softmax/rank, finiteness check).
  auto linear = make_linear(10, 224, 130);
  explain(linear, x, labels, ExplainSpec{});
  double linear_ms = 1e300;
  for (int k = 0; k < reps; ++k) {
    const auto t0 = clock::now();
    explain(linear, x, labels, ExplainSpec{});
    linear_ms = std::min(linear_ms, ms_since(t0));
  }

  // (2) A small real CNN at 224×224 against its bare forward + backward
  // (interleaved, best of reps, to resist load from other processes).
  CnnClassifier model(10, 224);
  ExplainResult r = explain(model, x, labels, ExplainSpec{});
  double total_ms = 1e300, model_ms = 1e300;
  at::Tensor g;
  for (int k = 0; k < reps; ++k) {
    auto t0 = clock::now();
    r = explain(model, x, labels, ExplainSpec{});
    total_ms = std::min(total_ms, ms_since(t0));
    t0 = clock::now();
    at::Tensor rows = x.clone().requires_grad_(true);
    at::Tensor z = model.logits(rows);
    at::Tensor loss = -torch::log_softmax(z, 1).gather(1, r.runner_up.unsqueeze(1)).sum();
    g = torch::autograd::grad({loss}, {rows})[0];
    model_ms = std::min(model_ms, ms_since(t0));
  }
  EXPECT_LE(max_abs_diff(g, r.attribution), 1e-6);
  std::printf("explain(gradient) 224x224, batch %lld: linear model %.2f ms/image; small CNN %.2f ms/image "
              "vs bare forward+backward %.2f ms/image\n",
              static_cast<long long>(n), linear_ms / n, total_ms / n, model_ms / n);
  RecordProperty("explain_linear_ms_per_image", std::to_string(linear_ms / n));
  RecordProperty("explain_cnn_ms_per_image", std::to_string(total_ms / n));
  RecordProperty("bare_cnn_ms_per_image", std::to_string(model_ms / n));
}

}  // namespace
}  // namespace edi::explain
