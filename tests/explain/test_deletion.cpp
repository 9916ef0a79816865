// Deletion curves: closed form on a linear model, monotonicity, ordering of
// explainers by AUC, batching, blur baseline.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "edi/core/error.hpp"
#include "edi/explain/deletion.hpp"
#include "edi/explain/explain.hpp"
#include "test_models.hpp"

namespace edi::explain {
namespace {

using testing::CnnClassifier;
using testing::LinearClassifier;

/// One image, one fraction, computed directly: sort, replace, evaluate.
double reference_prob(const LinearClassifier& m, const at::Tensor& x1, const at::Tensor& attr1, double fraction,
                      float value, std::int64_t label) {
  const at::Tensor a = attr1.flatten().contiguous();
  const std::int64_t e = a.numel();
  std::vector<std::int64_t> order(static_cast<std::size_t>(e));
  std::iota(order.begin(), order.end(), 0);
  const float* ap = a.data_ptr<float>();
  std::sort(order.begin(), order.end(), [&](std::int64_t l, std::int64_t r) {
    return ap[l] > ap[r] || (ap[l] == ap[r] && l < r);
  });
  const auto k = static_cast<std::int64_t>(std::llround(fraction * static_cast<double>(e)));
  at::Tensor xd = x1.flatten().to(at::kDouble).clone();
  for (std::int64_t r = 0; r < k; ++r) xd[order[static_cast<std::size_t>(r)]] = value;
  const at::Tensor z = m.weight().to(at::kDouble).matmul(xd) + m.bias().to(at::kDouble);
  return torch::softmax(z, 0)[label].item<double>();
}

TEST(Deletion, MatchesDirectComputationOnLinearModel) {
  torch::manual_seed(1);
  const int size = 5;
  LinearClassifier model(torch::randn({4, 75}) * 0.3, torch::randn({4}), size);
  const at::Tensor x = torch::rand({3, 3, size, size});
  const at::Tensor attr = torch::randn({3, 3, size, size});
  const at::Tensor labels = torch::tensor({0, 2, 3}, torch::kLong);
  DeletionSpec spec;
  spec.value = 0.5;
  const DeletionCurve c = deletion_curve(model, x, labels, attr, spec);
  const auto f = static_cast<std::int64_t>(spec.fractions.size());
  ASSERT_EQ(c.true_prob.sizes(), (std::vector<std::int64_t>{3, f}));
  EXPECT_EQ(c.forward_calls, 1);
  for (std::int64_t j = 0; j < f; ++j) {
    EXPECT_EQ(c.removed[j].item<std::int64_t>(), std::llround(spec.fractions[static_cast<std::size_t>(j)] * 75));
  }
  for (std::int64_t i = 0; i < 3; ++i) {
    for (std::int64_t j = 0; j < f; ++j) {
      const double p = reference_prob(model, x[i], attr[i], spec.fractions[static_cast<std::size_t>(j)], 0.5f,
                                      labels[i].item<std::int64_t>());
      EXPECT_NEAR(c.true_prob[i][j].item<double>(), p, 1e-5) << "image " << i << " fraction " << j;
    }
    // AUC: trapezoid over [0, 1].
    double area = 0;
    for (std::int64_t j = 1; j < f; ++j) {
      area += 0.5 * (c.true_prob[i][j].item<double>() + c.true_prob[i][j - 1].item<double>()) * 0.05;
    }
    EXPECT_NEAR(c.auc[i].item<double>(), area, 1e-9);
  }
  EXPECT_NEAR(c.mean_auc, c.auc.mean().item<double>(), 1e-12);
  // f = 0 leaves the image unchanged; f = 1 is the baseline image.
  const at::Tensor z0 = x.flatten(1).matmul(model.weight().t()) + model.bias();
  EXPECT_TRUE(torch::equal(c.correct.select(1, 0), z0.argmax(1).eq(labels)));
}

TEST(Deletion, MonotoneAndOrderedWhenEveryEntryHelpsTheTrueClass) {
  // Two classes; class 0's weights are positive, class 1's are zero; images
  // positive: every entry raises the true-class margin, so removing entries in
  // any order can only lower the true-class probability.
  torch::manual_seed(2);
  const int size = 6;
  const std::int64_t e = 3 * size * size;
  at::Tensor w = torch::zeros({2, e});
  w[0] = torch::rand({e}) * 0.2 + 0.01;
  LinearClassifier model(w, torch::tensor({-2.f, 0.f}), size);
  const at::Tensor x = torch::rand({2, 3, size, size}) * 0.9 + 0.1;
  const at::Tensor labels = torch::zeros({2}, torch::kLong);

  const ExplainResult grad = explain(model, x, labels, ExplainSpec{});
  ASSERT_TRUE(grad.correct.all().item<bool>());
  ExplainSpec ig_spec;
  ig_spec.method = Attribution::kIntegratedGradients;
  ig_spec.ig_steps = 16;
  const ExplainResult ig = explain(model, x, labels, ig_spec);

  DeletionSpec spec;
  const DeletionCurve cg = deletion_curve(model, x, labels, grad.attribution, spec);
  const DeletionCurve ci = deletion_curve(model, x, labels, ig.attribution, spec);
  const DeletionCurve cr = deletion_curve(model, x, labels, -grad.attribution, spec);
  for (const DeletionCurve* c : {&cg, &ci, &cr}) {
    for (std::int64_t i = 0; i < 2; ++i) {
      for (std::int64_t j = 1; j < c->true_prob.size(1); ++j) {
        EXPECT_LE(c->true_prob[i][j].item<float>(), c->true_prob[i][j - 1].item<float>() + 1e-7f);
      }
    }
  }
  // IG ranks by the exact margin contribution w·x, the optimal deletion order:
  // its curve is pointwise lowest. The gradient ranks by w only; the reversed
  // gradient removes the least useful entries first.
  EXPECT_LE(ci.mean_auc, cg.mean_auc + 1e-9);
  EXPECT_LT(cg.mean_auc, cr.mean_auc);
  EXPECT_TRUE((ci.true_prob <= cg.true_prob + 1e-6).all().item<bool>());
  EXPECT_DOUBLE_EQ(cg.accuracy[0].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(cg.accuracy[cg.accuracy.size(0) - 1].item<double>(), 0.0);  // all-black image: bias wins
}

TEST(Deletion, BatchingOverFractionsDoesNotChangeResults) {
  CnnClassifier model(5, 8);
  torch::manual_seed(3);
  const at::Tensor x = torch::rand({3, 3, 8, 8});
  const at::Tensor labels = torch::tensor({0, 1, 2}, torch::kLong);
  const ExplainResult r = explain(model, x, labels, ExplainSpec{});
  DeletionSpec spec;
  const DeletionCurve whole = deletion_curve(model, x, labels, r.attribution, spec);
  spec.max_rows = 7;  // 63 rows -> 9 calls, chunks spanning two images
  model.calls_ = 0;
  const DeletionCurve split = deletion_curve(model, x, labels, r.attribution, spec);
  EXPECT_EQ(split.forward_calls, 9);
  EXPECT_EQ(model.calls_, 9);
  EXPECT_LE((whole.true_prob - split.true_prob).abs().max().item<float>(), 1e-6f);
  EXPECT_TRUE(torch::equal(whole.correct, split.correct));
  // The first point is the unmodified image: it matches explain()'s prediction.
  EXPECT_LE((whole.true_prob.select(1, 0) - r.true_prob).abs().max().item<float>(), 1e-6f);
  EXPECT_TRUE(torch::equal(whole.correct.select(1, 0), r.correct));
}

TEST(Deletion, BlurBaseline) {
  DeletionSpec spec;
  spec.baseline = DeletionBaseline::kBlur;
  spec.blur_sigma = 2.0;
  const at::Tensor flat = torch::full({2, 3, 9, 11}, 0.3f);
  const at::Tensor bf = deletion_baseline(flat, spec);
  ASSERT_EQ(bf.sizes(), flat.sizes());
  EXPECT_LE((bf - 0.3f).abs().max().item<float>(), 1e-6f);  // blur of a constant is the constant
  torch::manual_seed(4);
  const at::Tensor x = torch::rand({2, 3, 9, 11});
  const at::Tensor bx = deletion_baseline(x, spec);
  EXPECT_LT(bx.std().item<float>(), x.std().item<float>() * 0.6f);  // smoothing lowers variance
  EXPECT_GE(bx.min().item<float>(), x.min().item<float>() - 1e-6f);
  EXPECT_LE(bx.max().item<float>(), x.max().item<float>() + 1e-6f);
  // Each channel is blurred on its own: a red-only image stays red-only.
  at::Tensor red = torch::zeros({1, 3, 9, 11});
  red[0][0] = torch::rand({9, 11});
  const at::Tensor br = deletion_baseline(red, spec);
  EXPECT_EQ(br[0][1].abs().max().item<float>(), 0.f);
  EXPECT_GT(br[0][0].abs().max().item<float>(), 0.f);

  // f = 1 with the blur baseline evaluates the blurred image.
  CnnClassifier model(4, 11);
  const at::Tensor xs = torch::rand({2, 3, 11, 11});
  const at::Tensor labels = torch::tensor({0, 3}, torch::kLong);
  spec.fractions = {0.0, 1.0};
  const DeletionCurve c = deletion_curve(model, xs, labels, torch::randn({2, 3, 11, 11}), spec);
  at::Tensor p;
  {
    torch::NoGradGuard g;
    p = torch::softmax(model.logits(deletion_baseline(xs, spec)), 1);
  }
  for (std::int64_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(c.true_prob[i][1].item<float>(), p[i][labels[i].item<std::int64_t>()].item<float>(), 1e-6);
  }
}

TEST(Deletion, RejectsBadSpecsAndShapes) {
  CnnClassifier model(3, 6);
  const at::Tensor x = torch::rand({1, 3, 6, 6});
  const at::Tensor labels = torch::tensor({1}, torch::kLong);
  DeletionSpec spec;
  spec.fractions = {0.0, 0.5, 0.4};
  EXPECT_THROW(deletion_curve(model, x, labels, x, spec), ConfigError);
  spec.fractions = {0.5};
  const DeletionCurve one = deletion_curve(model, x, labels, x, spec);
  EXPECT_DOUBLE_EQ(one.auc[0].item<double>(), one.true_prob[0][0].item<double>());
  EXPECT_THROW(deletion_curve(model, x, labels, torch::rand({1, 3, 6, 5}), spec), Error);
  EXPECT_THROW(deletion_curve(model, x, torch::tensor({0, 1}, torch::kLong), x, spec), Error);
}

}  // namespace
}  // namespace edi::explain
