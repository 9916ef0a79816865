// Known-answer, statistical, determinism and validation tests for the
// perturbation operators and the blend.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "edi/core/error.hpp"
#include "edi/core/rng.hpp"
#include "edi/perturb/operators.hpp"

namespace edi::perturb {
namespace {

std::vector<RngKey> keys_for(int n, std::uint64_t seed = 7, std::uint32_t pass = 0) {
  std::vector<RngKey> keys;
  for (int i = 0; i < n; ++i)
    keys.push_back({seed, stable_hash64("img" + std::to_string(i)), pass, RngStream::kPerturb});
  return keys;
}

at::Tensor random_images(int n, int h, int w, std::uint64_t seed) {
  at::Tensor x = at::empty({n, 3, h, w}, at::kFloat);
  CounterRng rng({seed, 99, 0, RngStream::kSynth});
  float* p = x.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] = static_cast<float>(rng.uniform());
  return x;
}

/// 1×3×h×w image whose every row and channel is `row` (so vertical filtering is the identity).
at::Tensor rows_image(const std::vector<float>& row, int h) {
  const int w = static_cast<int>(row.size());
  at::Tensor r = at::from_blob(const_cast<float*>(row.data()), {1, 1, 1, w}, at::kFloat).clone();
  return r.expand({1, 3, h, w}).contiguous();
}

OperatorSpec spec_of(const std::string& name) { return OperatorSpec::defaults(name); }

at::Tensor run(const OperatorSpec& s, const at::Tensor& x, std::uint32_t pass = 0) {
  return make_operator(s)->apply(x, keys_for(static_cast<int>(x.size(0)), 7, pass));
}

std::string error_of(const OperatorSpec& s) {
  try {
    validate(s);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

// --- box blur ---------------------------------------------------------------

TEST(PerturbBlur, ConstantImageStaysConstant) {
  OperatorSpec s = spec_of("blur");
  for (int k : {1, 2, 5, 40}) {
    s.k = k;
    const at::Tensor y = run(s, at::full({2, 3, 17, 23}, 0.375f));
    EXPECT_LT((y - 0.375f).abs().max().item<float>(), 1e-6f) << "k=" << k;
  }
}

TEST(PerturbBlur, OddKernelReflect101KnownAnswer) {
  // Row a = [0,1,4,9,16]/16, k=3: reflect-101 gives a[-1]=a[1], a[5]=a[3].
  const std::vector<float> a = {0.f, 1 / 16.f, 4 / 16.f, 9 / 16.f, 1.f};
  OperatorSpec s = spec_of("blur");
  s.k = 3;
  const at::Tensor y = run(s, rows_image(a, 4));
  const float expect[5] = {(1 + 0 + 1) / 48.f, (0 + 1 + 4) / 48.f, (1 + 4 + 9) / 48.f, (4 + 9 + 16) / 48.f,
                           (9 + 16 + 9) / 48.f};
  for (int c = 0; c < 3; ++c)
    for (int r = 0; r < 4; ++r)
      for (int x = 0; x < 5; ++x) EXPECT_NEAR(y[0][c][r][x].item<float>(), expect[x], 1e-6f);
}

TEST(PerturbBlur, EvenKernelUsesDefaultAnchor) {
  // k=2, anchor (1,1): out[x] = (a[x-1] + a[x]) / 2, a[-1] = a[1] (reflect-101).
  const std::vector<float> a = {0.f, 1 / 16.f, 4 / 16.f, 9 / 16.f, 1.f};
  OperatorSpec s = spec_of("blur");
  s.k = 2;
  const at::Tensor y = run(s, rows_image(a, 3));
  const float expect[5] = {1 / 32.f, 1 / 32.f, 5 / 32.f, 13 / 32.f, 25 / 32.f};
  for (int x = 0; x < 5; ++x) EXPECT_NEAR(y[0][1][2][x].item<float>(), expect[x], 1e-6f) << x;
}

// --- Gaussian ------------------------------------------------------------------

TEST(PerturbGaussian, SigmaZeroK3IsOpenCvsQuarterHalfQuarter) {
  // For k=3 and σ=0 OpenCV uses the fixed kernel [1/4, 1/2, 1/4].
  const std::vector<float> a = {0.f, 0.f, 1.f, 0.f, 0.f};
  OperatorSpec s = spec_of("gaussian");
  s.k = 3;
  const at::Tensor y = run(s, rows_image(a, 3));
  const float expect[5] = {0.f, 0.25f, 0.5f, 0.25f, 0.f};
  for (int x = 0; x < 5; ++x) EXPECT_NEAR(y[0][0][1][x].item<float>(), expect[x], 1e-6f);
  EXPECT_NEAR(opencv_gaussian_sigma(99), 15.2, 1e-12);
  EXPECT_NEAR(opencv_gaussian_sigma(9), 1.7, 1e-12);
}

TEST(PerturbGaussian, ExplicitSigmaMatchesSampledKernel) {
  // k=5, σ=1: weights ∝ exp(-d²/2), normalised; impulse response = the 1-D kernel.
  const std::vector<float> a = {0.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f};
  OperatorSpec s = spec_of("gaussian");
  s.k = 5;
  s.sigma = 1.0;
  const at::Tensor y = run(s, rows_image(a, 2));
  double w[5], sum = 0;
  for (int d = -2; d <= 2; ++d) sum += (w[d + 2] = std::exp(-0.5 * d * d));
  for (int d = -2; d <= 2; ++d) EXPECT_NEAR(y[0][2][0][4 + d].item<float>(), w[d + 2] / sum, 1e-6);
  EXPECT_EQ(make_operator(s)->describe(), "gaussian(k=5, sigma=1)");
}

// --- pixelate ------------------------------------------------------------------

TEST(PerturbPixelate, FactorTwoGivesBlockMeans) {
  // 4×4 → 2×2 bilinear samples at (0.5, 2.5): the mean of each 2×2 block.
  at::Tensor x = at::arange(16, at::kFloat).div(15).reshape({1, 1, 4, 4}).expand({1, 3, 4, 4}).contiguous();
  OperatorSpec s = spec_of("pixelate");
  s.n = 2;
  const at::Tensor y = run(s, x);
  const float mean00 = (0 + 1 + 4 + 5) / 60.f, mean01 = (2 + 3 + 6 + 7) / 60.f;
  const float mean10 = (8 + 9 + 12 + 13) / 60.f, mean11 = (10 + 11 + 14 + 15) / 60.f;
  const float expect[4][4] = {{mean00, mean00, mean01, mean01},
                              {mean00, mean00, mean01, mean01},
                              {mean10, mean10, mean11, mean11},
                              {mean10, mean10, mean11, mean11}};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(y[0][0][r][c].item<float>(), expect[r][c], 1e-6f);
}

TEST(PerturbPixelate, FactorThreeSamplesTheCentrePixel) {
  // 6×6 → 2×2: bilinear source coordinates (d+0.5)·3−0.5 = 1, 4 hit pixel
  // centres, so each 3×3 block becomes its centre pixel (sampling, not averaging).
  at::Tensor x = at::arange(36, at::kFloat).div(35).reshape({1, 1, 6, 6}).expand({1, 3, 6, 6}).contiguous();
  OperatorSpec s = spec_of("pixelate");
  s.n = 3;
  const at::Tensor y = run(s, x);
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 6; ++c) {
      const int sr = r < 3 ? 1 : 4, sc = c < 3 ? 1 : 4;
      EXPECT_NEAR(y[0][2][r][c].item<float>(), (sr * 6 + sc) / 35.f, 1e-6f);
    }
}

TEST(PerturbPixelate, BlockLargerThanImageGivesOneColour) {
  const at::Tensor x = random_images(1, 4, 4, 3);
  OperatorSpec s = spec_of("pixelate");
  s.n = 100;
  const at::Tensor y = run(s, x);
  for (int c = 0; c < 3; ++c) {
    // 4 → 1: source coordinate 1.5, the mean of the central 2×2.
    const float expect = x[0][c].slice(0, 1, 3).slice(1, 1, 3).mean().item<float>();
    EXPECT_LT((y[0][c] - expect).abs().max().item<float>(), 1e-6f);
  }
}

// --- DP-Pix ----------------------------------------------------------------------

TEST(PerturbDpPix, InfiniteEpsilonGivesExactBlockMeansWithTruncatedEdges) {
  // 5×5, b=2: blocks of 2×2, 2×1, 1×2 and 1×1 at the right/bottom edges.
  at::Tensor x = at::arange(25, at::kFloat).div(24).reshape({1, 1, 5, 5}).expand({1, 3, 5, 5}).contiguous();
  OperatorSpec s = spec_of("dp-pix");
  s.b = 2;
  s.eps = std::numeric_limits<double>::infinity();
  const at::Tensor y = run(s, x);
  EXPECT_NEAR(y[0][0][1][1].item<float>(), (0 + 1 + 5 + 6) / 96.f, 1e-7f);
  EXPECT_NEAR(y[0][1][0][4].item<float>(), (4 + 9) / 48.f, 1e-7f);     // 2×1 edge block
  EXPECT_NEAR(y[0][2][4][0].item<float>(), (20 + 21) / 48.f, 1e-7f);   // 1×2 edge block
  EXPECT_NEAR(y[0][2][4][4].item<float>(), 1.f, 1e-7f);                // 1×1 corner
  EXPECT_NEAR(y[0][0][3][2].item<float>(), (12 + 13 + 17 + 18) / 96.f, 1e-7f);
}

TEST(PerturbDpPix, OneLaplaceSamplePerBlockWithTheFanScale) {
  // b=4 on 400×400: 3·100·100 blocks, each constant. Mean |noise| estimates the scale.
  OperatorSpec s = spec_of("dp-pix");
  s.b = 4;
  s.m = 8.0;
  s.eps = 25.0;  // scale = 8/(16·25) = 0.02 on [0,1]: clipping at 0.5±0.5 has probability e^-25
  const double scale = dp_laplace_scale(s.b, s.m, s.eps, s.dp_scale);
  ASSERT_DOUBLE_EQ(scale, 0.02);
  const at::Tensor y = run(s, at::full({1, 3, 400, 400}, 0.5f));
  // Every 4×4 block holds one value per channel.
  const at::Tensor blocks = y.reshape({3, 100, 4, 100, 4});
  EXPECT_EQ((blocks - blocks.select(4, 0).select(2, 0).unsqueeze(2).unsqueeze(4)).abs().max().item<float>(), 0.f);
  const at::Tensor noise = blocks.select(4, 0).select(2, 0).to(at::kDouble) - 0.5;  // 3×100×100
  const double mean_abs = noise.abs().mean().item<double>();
  const double var = noise.pow(2).mean().item<double>();
  // SE of mean|L| is scale/√30000 ≈ 0.6 %; 3 % is 5 SE.
  EXPECT_NEAR(mean_abs / scale, 1.0, 0.03);
  EXPECT_NEAR(var / (2 * scale * scale), 1.0, 0.06);
  EXPECT_NEAR(noise.mean().item<double>(), 0.0, 5 * scale * std::sqrt(2.0 / 30000));
  // Channels draw independently.
  EXPECT_GT((noise[0] - noise[1]).abs().max().item<double>(), 0.0);
}

TEST(PerturbDpPix, AuthorsScaleIs255TimesLarger) {
  EXPECT_DOUBLE_EQ(dp_laplace_scale(32, 16, 100, DpScale::kFan), 16.0 / (1024 * 100));
  EXPECT_NEAR(dp_laplace_scale(32, 16, 100, DpScale::kAuthors), 0.0398, 1e-4);  // spec E.1
  OperatorSpec fan = spec_of("dp-pix"), authors = fan;
  fan.b = authors.b = 1;
  fan.m = authors.m = 1;
  fan.eps = authors.eps = 25500;  // fan 3.9e-5, authors 0.01
  authors.dp_scale = DpScale::kAuthors;
  const at::Tensor x = at::full({1, 3, 64, 64}, 0.5f);
  const at::Tensor nf = run(fan, x).to(at::kDouble) - 0.5, na = run(authors, x).to(at::kDouble) - 0.5;
  // Same draws, scaled by 255 (up to float rounding of the stored values).
  EXPECT_LT((na - 255 * nf).abs().max().item<double>(), 255 * 6e-8 + 1e-7);
  EXPECT_NEAR(na.abs().mean().item<double>() / 0.01, 1.0, 0.05);
}

TEST(PerturbDpPix, ClipsNeverWraps) {
  OperatorSpec s = spec_of("dp-pix");
  s.b = 1;
  s.m = 1;
  s.eps = 0.01;  // scale 100: almost every draw leaves [0,1]
  for (float v : {0.f, 1.f}) {
    const at::Tensor y = run(s, at::full({1, 3, 100, 100}, v));
    EXPECT_GE(y.min().item<float>(), 0.f);
    EXPECT_LE(y.max().item<float>(), 1.f);
    // Half the draws push outwards: they must stick at v exactly (a wrap would not).
    const double at_v = y.eq(v).to(at::kDouble).mean().item<double>();
    EXPECT_GT(at_v, 0.47);
    // The other half push inwards by more than 1 (P = e^-0.01 ≈ 0.99) and clip to 1−v.
    EXPECT_GT(y.eq(1.f - v).to(at::kDouble).mean().item<double>(), 0.47);
  }
  OperatorSpec b = spec_of("dp-blur");
  b.m = 1;
  b.eps = 0.01;
  b.b = 2;
  b.k = 5;
  const at::Tensor y = run(b, random_images(2, 30, 30, 4));
  EXPECT_GE(y.min().item<float>(), 0.f);
  EXPECT_LE(y.max().item<float>(), 1.f);
}

// --- determinism ---------------------------------------------------------------

TEST(PerturbDeterminism, SameKeysSameOutputRegardlessOfBatch) {
  const at::Tensor x = random_images(3, 21, 19, 11);
  const auto keys = keys_for(3);
  for (const char* name : {"dp-pix", "dp-blur", "noise"}) {
    OperatorSpec s = spec_of(name);
    s.b = 4;
    s.k = 5;
    s.eps = 0.5;
    const auto op = make_operator(s);
    ASSERT_TRUE(op->is_random());
    const at::Tensor all = op->apply(x, keys);
    // Reversed order, a subset, and single images give the bitwise same per-image results.
    const at::Tensor rev = op->apply(at::stack({x[2], x[1], x[0]}), {keys[2], keys[1], keys[0]});
    const at::Tensor sub = op->apply(at::stack({x[2], x[0]}), {keys[2], keys[0]});
    for (int i = 0; i < 3; ++i) {
      const at::Tensor one = op->apply(x[i].unsqueeze(0), {keys[i]});
      EXPECT_TRUE(at::equal(one[0], all[i])) << name << " image " << i;
      EXPECT_TRUE(at::equal(rev[2 - i], all[i])) << name << " image " << i;
    }
    EXPECT_TRUE(at::equal(sub[0], all[2])) << name;
    EXPECT_TRUE(at::equal(sub[1], all[0])) << name;
    EXPECT_TRUE(at::equal(op->apply(x, keys), all)) << name << ": not repeatable";
    // Another pass, seed or image id draws other noise.
    auto other = keys;
    other[0].pass = 1;
    other[1].seed = 8;
    other[2].item = stable_hash64("other");
    const at::Tensor diff = op->apply(x, other);
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(at::equal(diff[i], all[i])) << name << " image " << i;
  }
}

TEST(PerturbDeterminism, DeterministicOperatorsIgnoreKeysAndKeepInput) {
  const at::Tensor x = random_images(2, 16, 16, 5);
  const at::Tensor before = x.clone();
  for (const char* name : {"blur", "gaussian", "pixelate", "mask"}) {
    const auto op = make_operator(spec_of(name));
    EXPECT_FALSE(op->is_random());
    EXPECT_TRUE(at::equal(op->apply(x, keys_for(2, 1, 0)), op->apply(x, keys_for(2, 2, 5)))) << name;
  }
  EXPECT_TRUE(at::equal(x, before));
}

// --- noise and mask ---------------------------------------------------------------

TEST(PerturbNoise, GaussianStatisticsAndClipping) {
  OperatorSpec s = spec_of("noise");
  s.sigma = 0.05;
  const at::Tensor n = run(s, at::full({1, 3, 200, 200}, 0.5f)).to(at::kDouble) - 0.5;
  EXPECT_NEAR(n.mean().item<double>(), 0.0, 5 * 0.05 / std::sqrt(120000.0));
  EXPECT_NEAR(n.std().item<double>() / 0.05, 1.0, 0.02);
  s.sigma = 10;
  const at::Tensor y = run(s, at::full({1, 3, 50, 50}, 0.9f));
  EXPECT_GE(y.min().item<float>(), 0.f);
  EXPECT_LE(y.max().item<float>(), 1.f);
  EXPECT_GT(y.eq(1.f).to(at::kDouble).mean().item<double>(), 0.45);
}

TEST(PerturbMask, OutputIsTheColour) {
  OperatorSpec s = spec_of("mask");
  s.color = {0.25f, 0.5f, 1.f};
  const at::Tensor y = run(s, random_images(2, 5, 7, 1));
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 5, 7}));
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(y.select(1, c).eq(s.color[c]).all().item<bool>());
}

// --- blend ---------------------------------------------------------------------------

TEST(PerturbBlend, BoolAndFloatMasksAreExactAtTheEnds) {
  const at::Tensor x = random_images(2, 8, 9, 21), px = random_images(2, 8, 9, 22);
  const at::Tensor m = random_images(2, 8, 9, 23).gt(0.5);
  const at::Tensor want = at::where(m, px, x);
  EXPECT_TRUE(at::equal(blend(x, m, px), want));
  EXPECT_TRUE(at::equal(blend(x, m.to(at::kFloat), px), want));
  const at::Tensor half = blend(x, at::full({2, 3, 8, 9}, 0.5f), px);
  EXPECT_LT((half - (x + px) / 2).abs().max().item<float>(), 1e-6f);
}

TEST(PerturbBlend, SingleChannelMaskBroadcastsOverChannels) {
  const at::Tensor x = random_images(1, 4, 4, 1), px = at::zeros({1, 3, 4, 4});
  at::Tensor m = at::zeros({1, 1, 4, 4}, at::kBool);
  m[0][0][1][2] = true;
  const at::Tensor y = blend(x, m, px);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(y[0][c][1][2].item<float>(), 0.f);
  EXPECT_EQ(y.ne(x).sum().item<int64_t>(), 3);
}

TEST(PerturbBlend, ClipsAndChecksShapes) {
  const at::Tensor x = at::full({1, 3, 2, 2}, 0.5f);
  EXPECT_EQ(blend(x, at::ones({1, 3, 2, 2}), at::full({1, 3, 2, 2}, 2.f)).max().item<float>(), 1.f);
  EXPECT_EQ(blend(x, at::ones({1, 3, 2, 2}), at::full({1, 3, 2, 2}, -1.f)).min().item<float>(), 0.f);
  EXPECT_THROW(blend(x, at::ones({1, 2, 2, 2}), x), std::invalid_argument);
  EXPECT_THROW(blend(x, at::ones({1, 3, 2, 3}), x), std::invalid_argument);
  EXPECT_THROW(blend(x, at::ones({1, 3, 2, 2}), at::ones({1, 3, 2, 3})), std::invalid_argument);
}

// --- validation, registry, describe -----------------------------------------------------

TEST(PerturbValidation, MessagesNameOptionValueAndRange) {
  OperatorSpec s = spec_of("blur");
  s.k = 0;
  EXPECT_EQ(error_of(s), "--k 0: expected an integer >= 1");
  s = spec_of("gaussian");
  s.k = 4;
  EXPECT_EQ(error_of(s), "--k 4: expected an odd integer >= 1 (Gaussian kernel size)");
  s.k = 5;
  s.sigma = -1;
  EXPECT_EQ(error_of(s), "--sigma -1: expected a finite number >= 0");
  s = spec_of("pixelate");
  s.n = -3;
  EXPECT_EQ(error_of(s), "--n -3: expected an integer >= 1");
  s = spec_of("dp-pix");
  s.eps = 0;
  EXPECT_EQ(error_of(s), "--eps 0: expected a number > 0 (inf: no noise)");
  s.eps = 1;
  s.m = std::nan("");
  EXPECT_EQ(error_of(s), "--m nan: expected a finite number > 0");
  s.m = 1;
  s.b = 0;
  EXPECT_EQ(error_of(s), "--b 0: expected an integer >= 1");
  s = spec_of("dp-blur");
  s.k = 98;
  EXPECT_EQ(error_of(s), "--k 98: expected an odd integer >= 1 (Gaussian kernel size)");
  s = spec_of("noise");
  s.sigma = std::numeric_limits<double>::infinity();
  EXPECT_EQ(error_of(s), "--sigma inf: expected a finite number >= 0");
  s = spec_of("mask");
  s.color = {0.f, 1.5f, 0.f};
  EXPECT_EQ(error_of(s), "--color 0,1.5,0: expected three numbers in [0, 1] (R,G,B)");
  s.name = "smear";
  EXPECT_EQ(error_of(s), "--operator smear: expected one of blur|gaussian|pixelate|dp-pix|dp-blur|noise|mask");
  EXPECT_THROW(OperatorSpec::defaults("smear"), ConfigError);
  s = spec_of("blur");
  s.k = 0;
  EXPECT_THROW(make_operator(s), ConfigError);
  // Parameters of other operators are not checked: blur ignores b.
  s.k = 3;
  s.b = -1;
  EXPECT_EQ(error_of(s), "(no error)");
}

TEST(PerturbValidation, BatchMisuseThrows) {
  const auto op = make_operator(spec_of("blur"));
  EXPECT_THROW(op->apply(at::zeros({1, 3, 4, 4}), keys_for(2)), std::invalid_argument);
  EXPECT_THROW(op->apply(at::zeros({3, 4, 4}), keys_for(3)), std::invalid_argument);
  EXPECT_THROW(op->apply(at::zeros({1, 3, 4, 4}, at::kDouble), keys_for(1)), std::invalid_argument);
}

TEST(PerturbRegistry, ListsEveryOperatorWithValidDefaults) {
  const auto& reg = operator_registry();
  std::string names;
  for (const auto& info : reg) {
    names += (names.empty() ? "" : "|") + info.name;
    EXPECT_FALSE(info.summary.empty());
    EXPECT_FALSE(info.params.empty()) << info.name;
    EXPECT_NO_THROW(make_operator(OperatorSpec::defaults(info.name))) << info.name;
  }
  EXPECT_EQ(names, operator_names());
  EXPECT_EQ(names, "blur|gaussian|pixelate|dp-pix|dp-blur|noise|mask");
  EXPECT_EQ(make_operator(spec_of("blur"))->describe(), "blur(k=40)");
  EXPECT_EQ(make_operator(spec_of("gaussian"))->describe(), "gaussian(k=9, sigma=0 -> 1.7)");
  EXPECT_EQ(make_operator(spec_of("pixelate"))->describe(), "pixelate(n=20)");
  EXPECT_EQ(make_operator(spec_of("dp-pix"))->describe(),
            "dp-pix(b=32, m=16, eps=100, laplace_scale=0.00015625 [fan])");
  EXPECT_EQ(make_operator(spec_of("dp-blur"))->describe(),
            "dp-blur(b=32, m=16, eps=100, laplace_scale=0.00015625 [fan], k=99, sigma=0 -> 15.2)");
  EXPECT_EQ(make_operator(spec_of("noise"))->describe(), "noise(sigma=0.1)");
  EXPECT_EQ(make_operator(spec_of("mask"))->describe(), "mask(color=0,0,0)");
}

// --- the authors' whole-pixel masking rule (--mask-rule pixel) -----------------

/// The mask operator's blend as the engine does it: blend(x, op.selection(m), op.apply(x)).
at::Tensor masked(const OperatorSpec& spec, const at::Tensor& x, const at::Tensor& m) {
  const auto op = make_operator(spec);
  return blend(x, op->selection(m), op->apply(x, keys_for(static_cast<int>(x.size(0)))));
}

TEST(PerturbMaskRule, PixelRuleHandComputed) {
  // One image, 1×2 pixels. Selection: pixel 0 has R and B selected, pixel 1 only G.
  const at::Tensor x = at::tensor({0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}).reshape({1, 3, 1, 2});
  const at::Tensor m = at::tensor({1, 0, 0, 1, 1, 0}).ne(0).reshape({1, 3, 1, 2});
  OperatorSpec s = OperatorSpec::defaults("mask");
  s.color = {0.9f, 0.8f, 0.7f};
  // entry: the selected entries (R0, G1, B0) take the colour's channel, the rest stay.
  const at::Tensor entry = masked(s, x, m);
  EXPECT_TRUE(at::equal(entry, at::tensor({0.9f, 0.2f, 0.3f, 0.8f, 0.7f, 0.6f}).reshape({1, 3, 1, 2})));
  // pixel: pixel 0 (R selected) becomes the colour in every channel; pixel 1 (R not selected) stays,
  // although its G entry was selected.
  s.mask_rule = MaskRule::kPixel;
  const at::Tensor pixel = masked(s, x, m);
  EXPECT_TRUE(at::equal(pixel, at::tensor({0.9f, 0.2f, 0.8f, 0.4f, 0.7f, 0.6f}).reshape({1, 3, 1, 2})));
  EXPECT_EQ(make_operator(s)->describe(), "mask(color=0.9,0.8,0.7, rule=pixel)");
}

TEST(PerturbMaskRule, PixelRuleMatchesAnElementwiseReference) {
  // Random images and selections (about 10 % of the entries, as q = 90), bool and float masks.
  const int n = 3, h = 17, w = 23;
  const at::Tensor x = random_images(n, h, w, 5);
  const at::Tensor m = random_images(n, h, w, 6).ge(0.9f);
  OperatorSpec s = OperatorSpec::defaults("mask");
  s.color = {0.25f, 0.5f, 1.f};
  s.mask_rule = MaskRule::kPixel;
  at::Tensor ref = x.clone();
  auto r = ref.accessor<float, 4>();
  const auto sel = m.accessor<bool, 4>();
  std::int64_t painted = 0;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int xx = 0; xx < w; ++xx) {
        if (!sel[i][0][y][xx]) continue;  // the authors read channel 0 only
        ++painted;
        for (int c = 0; c < 3; ++c) r[i][c][y][xx] = s.color[static_cast<std::size_t>(c)];
      }
  ASSERT_GT(painted, 0);
  EXPECT_TRUE(at::equal(masked(s, x, m), ref));
  EXPECT_TRUE(at::equal(masked(s, x, m.to(at::kFloat)), ref));
  // The rule differs from the entry rule here (G/B-only selections exist), so the test can tell them apart.
  s.mask_rule = MaskRule::kEntry;
  EXPECT_FALSE(at::equal(masked(s, x, m), ref));
}

TEST(PerturbMaskRule, EntryRuleAndOtherOperatorsKeepTheSelection) {
  const at::Tensor m = random_images(2, 5, 7, 8).ge(0.5f);
  for (const char* name : {"mask", "blur", "noise"}) {
    const auto op = make_operator(OperatorSpec::defaults(name));
    EXPECT_TRUE(at::equal(op->selection(m), m)) << name;
  }
  EXPECT_TRUE(at::equal(apply_mask_rule(m, MaskRule::kPixel)[1][2], m[1][0]));
  EXPECT_THROW(apply_mask_rule(m[0], MaskRule::kPixel), std::invalid_argument);
}

TEST(PerturbMaskRule, ParsingAndValidationNameTheOption) {
  EXPECT_EQ(parse_mask_rule("entry"), MaskRule::kEntry);
  EXPECT_EQ(parse_mask_rule("pixel"), MaskRule::kPixel);
  EXPECT_STREQ(mask_rule_name(MaskRule::kPixel), "pixel");
  EXPECT_EQ(parse_region_fallback("box"), RegionFallback::kBox);
  EXPECT_EQ(parse_region_fallback("none"), RegionFallback::kNone);
  EXPECT_STREQ(region_fallback_name(RegionFallback::kNone), "none");
  try {
    parse_mask_rule("channel0");
    FAIL() << "no throw";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--mask-rule channel0: expected one of entry|pixel");
  }
  try {
    parse_region_fallback("default");
    FAIL() << "no throw";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--region-fallback default: expected one of box|none");
  }
  OperatorSpec blur = OperatorSpec::defaults("blur");
  blur.mask_rule = MaskRule::kPixel;
  try {
    validate(blur);
    FAIL() << "no throw";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--mask-rule pixel: expected entry with --operator blur", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace edi::perturb
