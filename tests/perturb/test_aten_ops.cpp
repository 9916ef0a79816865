// The ATen implementation of the operators against the OpenCV one on the CPU
// (max |Δ| <= 1e-6 for every operator, sizes and parameters; noise and mask
// bit-identical), the blend on both, the reflect-101 index against OpenCV,
// the --ops choice, and thread-count independence of the batch-parallel path.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "edi/core/error.hpp"
#include "edi/core/rng.hpp"
#include "edi/perturb/aten_ops.hpp"
#include "edi/perturb/operators.hpp"

namespace edi::perturb {
namespace {

std::vector<RngKey> keys_for(int n, std::uint32_t pass = 3) {
  std::vector<RngKey> keys;
  for (int i = 0; i < n; ++i) keys.push_back({11, stable_hash64("a" + std::to_string(i)), pass, RngStream::kPerturb});
  return keys;
}

at::Tensor random_images(int n, int h, int w, std::uint64_t seed) {
  at::Tensor x = at::empty({n, 3, h, w}, at::kFloat);
  CounterRng rng({seed, 5, 0, RngStream::kSynth});
  float* p = x.data_ptr<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) p[i] = static_cast<float>(rng.uniform());
  return x;
}

OperatorSpec with_path(OperatorSpec s, OpsPath path) {
  s.ops = path;
  return s;
}

/// max |opencv − aten| of one operator on x.
double max_diff(const OperatorSpec& s, const at::Tensor& x) {
  const auto keys = keys_for(static_cast<int>(x.size(0)));
  const at::Tensor a = make_operator(with_path(s, OpsPath::kOpenCV))->apply(x, keys);
  const at::Tensor b = make_operator(with_path(s, OpsPath::kAten))->apply(x, keys);
  EXPECT_EQ(a.sizes(), b.sizes());
  EXPECT_EQ(b.scalar_type(), at::kFloat);
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

/// Every operator with a few parameter settings each (incl. kernels wider than the image).
std::vector<OperatorSpec> parity_specs() {
  std::vector<OperatorSpec> specs;
  auto add = [&](const std::string& name, auto&& set) {
    OperatorSpec s = OperatorSpec::defaults(name);
    set(s);
    specs.push_back(s);
  };
  for (int k : {1, 2, 5, 40, 99}) add("blur", [k](OperatorSpec& s) { s.k = k; });
  for (auto [k, sigma] : {std::pair{3, 0.0}, {7, 0.0}, {9, 0.0}, {15, 2.5}, {31, 0.0}}) {
    add("gaussian", [k = k, sigma = sigma](OperatorSpec& s) { s.k = k, s.sigma = sigma; });
  }
  for (int n : {1, 2, 3, 8, 20, 300}) add("pixelate", [n](OperatorSpec& s) { s.n = n; });
  for (int b : {1, 7, 16, 32}) add("dp-pix", [b](OperatorSpec& s) { s.b = b; });
  add("dp-pix", [](OperatorSpec& s) { s.eps = 0.5, s.dp_scale = DpScale::kAuthors; });
  add("dp-pix", [](OperatorSpec& s) { s.eps = std::numeric_limits<double>::infinity(); });
  add("dp-blur", [](OperatorSpec& s) { s.k = 9, s.b = 8; });
  add("dp-blur", [](OperatorSpec& s) { s.eps = 1.0; });  // k = 99
  for (double sigma : {0.0, 0.1, 0.7}) add("noise", [sigma](OperatorSpec& s) { s.sigma = sigma; });
  add("mask", [](OperatorSpec& s) { s.color = {0.25f, 0.5f, 1.f}; });
  return specs;
}

std::string describe(const OperatorSpec& s) { return make_operator(s)->describe(); }

TEST(AtenOps, AgreeWithOpenCvWithin1e6) {
  const std::vector<std::pair<int, int>> sizes = {{5, 7}, {24, 24}, {37, 53}, {64, 64}};
  double worst = 0;
  for (auto [h, w] : sizes) {
    const at::Tensor x = random_images(2, h, w, static_cast<std::uint64_t>(h * 100 + w));
    for (const OperatorSpec& s : parity_specs()) {
      const double d = max_diff(s, x);
      EXPECT_LE(d, 1e-6) << describe(s) << " at " << h << "x" << w;
      worst = std::max(worst, d);
    }
  }
  std::printf("aten vs opencv: %zu operator settings x %zu sizes, worst max|diff| %.3g\n", parity_specs().size(),
              sizes.size(), worst);
}

TEST(AtenOps, AgreeAt224) {
  const at::Tensor x = random_images(1, 224, 224, 224);
  for (const char* name : {"blur", "gaussian", "pixelate", "dp-pix", "dp-blur", "noise", "mask"}) {
    const OperatorSpec s = OperatorSpec::defaults(name);
    EXPECT_LE(max_diff(s, x), 1e-6) << describe(s);
  }
}

TEST(AtenOps, NoiseAndMaskAreBitIdentical) {
  const at::Tensor x = random_images(3, 19, 21, 4);
  for (const char* name : {"noise", "mask"}) EXPECT_EQ(max_diff(OperatorSpec::defaults(name), x), 0.0) << name;
}

TEST(AtenOps, BlendOfEitherPathAgreesAndMasksAreTheSame) {
  const at::Tensor x = random_images(2, 32, 32, 8);
  const at::Tensor mask = random_images(2, 32, 32, 9).gt(0.8f);
  const auto keys = keys_for(2);
  for (const char* name : {"blur", "pixelate", "dp-pix"}) {
    const auto cv = make_operator(with_path(OperatorSpec::defaults(name), OpsPath::kOpenCV));
    const auto at = make_operator(with_path(OperatorSpec::defaults(name), OpsPath::kAten));
    EXPECT_TRUE(at::equal(cv->selection(mask), at->selection(mask)));
    const at::Tensor a = blend(x, cv->selection(mask), cv->apply(x, keys));
    const at::Tensor b = blend(x, at->selection(mask), at->apply(x, keys));
    EXPECT_LE((a - b).abs().max().item<float>(), 1e-6f) << name;
    EXPECT_TRUE(at::equal(a.masked_select(~mask), x.masked_select(~mask))) << name;
  }
}

TEST(AtenOps, Reflect101IndexMatchesOpenCv) {
  for (int len : {1, 2, 3, 5, 16}) {
    for (int pad : {0, 1, 4, 17, 40}) {
      const auto idx = reflect101_index(len, pad, pad + 1);
      ASSERT_EQ(idx.size(), static_cast<std::size_t>(2 * pad + 1 + len));
      for (int i = 0; i < static_cast<int>(idx.size()); ++i) {
        EXPECT_EQ(idx[static_cast<std::size_t>(i)], cv::borderInterpolate(i - pad, len, cv::BORDER_REFLECT_101))
            << "len=" << len << " pad=" << pad << " i=" << i;
      }
    }
  }
}

TEST(AtenOps, OpsOptionAndChoice) {
  EXPECT_EQ(parse_ops_path("auto"), OpsPath::kAuto);
  EXPECT_EQ(parse_ops_path("opencv"), OpsPath::kOpenCV);
  EXPECT_EQ(parse_ops_path("aten"), OpsPath::kAten);
  for (OpsPath p : {OpsPath::kAuto, OpsPath::kOpenCV, OpsPath::kAten}) EXPECT_EQ(parse_ops_path(ops_path_name(p)), p);
  try {
    parse_ops_path("cuda");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--ops cuda: expected one of auto|opencv|aten");
  }
  const at::Device cpu(at::kCPU), cuda(at::kCUDA, 0);
  EXPECT_FALSE(use_aten(OpsPath::kAuto, cpu));
  EXPECT_TRUE(use_aten(OpsPath::kAuto, cuda));
  EXPECT_TRUE(use_aten(OpsPath::kAten, cpu));
  EXPECT_FALSE(use_aten(OpsPath::kOpenCV, cuda));
  // The path is operational: the description (part of the run's identity) does not name it.
  EXPECT_EQ(describe(with_path(OperatorSpec::defaults("blur"), OpsPath::kAten)),
            describe(OperatorSpec::defaults("blur")));
}

TEST(AtenOps, BatchParallelOutputDoesNotDependOnThreads) {
  const at::Tensor x = random_images(5, 40, 36, 12);
  const auto keys = keys_for(5);
  const int before = at::get_num_threads();
  for (const OperatorSpec& s : parity_specs()) {
    for (OpsPath path : {OpsPath::kOpenCV, OpsPath::kAten}) {
      const auto op = make_operator(with_path(s, path));
      at::set_num_threads(1);
      const at::Tensor one = op->apply(x, keys);
      at::set_num_threads(2);
      const at::Tensor two = op->apply(x, keys);
      EXPECT_TRUE(at::equal(one, two)) << describe(s) << " " << ops_path_name(path);
      // Batch composition does not matter either: image 3 alone gives the same.
      const at::Tensor alone = op->apply(x.narrow(0, 3, 1), {keys[3]});
      EXPECT_TRUE(at::equal(alone[0], two[3])) << describe(s) << " " << ops_path_name(path);
    }
  }
  at::set_num_threads(before);
}

TEST(AtenOps, RejectsBadBatches) {
  const auto op = make_operator(with_path(OperatorSpec::defaults("blur"), OpsPath::kAten));
  EXPECT_THROW(op->apply(at::zeros({2, 3, 8, 8}), keys_for(1)), std::invalid_argument);
  EXPECT_THROW(op->apply(at::zeros({1, 1, 8, 8}), keys_for(1)), std::invalid_argument);
  EXPECT_THROW(op->apply(at::zeros({1, 3, 8, 8}, at::kDouble), keys_for(1)), std::invalid_argument);
}

}  // namespace
}  // namespace edi::perturb
