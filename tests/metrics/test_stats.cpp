// Known-answer tests of the statistics behind every reported number.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "edi/core/rng.hpp"
#include "edi/metrics/stats.hpp"
#include "support/testing.hpp"

using namespace edi::metrics;

TEST(Percentile, MatchesNumpyLinear) {
  // numpy.percentile([1, 2, 3, 4], q) = 1.75, 2.5, 3.25; ends are min/max.
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 25), 1.75);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 75), 3.25);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 100), 4.0);
  EXPECT_DOUBLE_EQ(percentile({7}, 2.5), 7.0);
  EXPECT_TRUE(std::isnan(percentile({}, 50)));
}

namespace {
/// n Bernoulli(p) hits in % from the counter RNG (deterministic).
std::vector<double> hits(std::size_t n, double p, std::uint64_t seed) {
  edi::CounterRng rng(edi::RngKey{seed, 99, 0, edi::RngStream::kSynth});
  std::vector<double> v(n);
  for (auto& x : v) x = rng.uniform() < p ? 100.0 : 0.0;
  return v;
}
}  // namespace

TEST(Bootstrap, ContainsEstimateAndShrinksWithN) {
  BootstrapSpec b{1000, 7, 0.95};
  const auto small = hits(50, 0.3, 1), large = hits(2000, 0.3, 2);
  const Interval s = bootstrap_mean(small, b, "rate"), l = bootstrap_mean(large, b, "rate");
  double mean_small = 0;
  for (double x : small) mean_small += x;
  mean_small /= small.size();
  EXPECT_DOUBLE_EQ(s.value, mean_small);
  EXPECT_EQ(s.n, 50u);
  EXPECT_LE(s.lo, s.value);
  EXPECT_GE(s.hi, s.value);
  EXPECT_LE(l.lo, l.value);
  EXPECT_GE(l.hi, l.value);
  EXPECT_LT(l.hi - l.lo, (s.hi - s.lo) / 3.0);  // width ~ 1/sqrt(n): 40x more data, ~6x narrower
  EXPECT_GT(s.hi - s.lo, 10.0);                  // binomial: 2·1.96·sqrt(.3·.7/50) ≈ 25 points
  EXPECT_LT(s.hi - s.lo, 40.0);
}

TEST(Bootstrap, ReproducesExactlyForSameSeedAndDiffersOtherwise) {
  const auto v = hits(300, 0.4, 3);
  const Interval a = bootstrap_mean(v, {500, 11, 0.95}, "x");
  const Interval b = bootstrap_mean(v, {500, 11, 0.95}, "x");
  const Interval c = bootstrap_mean(v, {500, 12, 0.95}, "x");
  const Interval d = bootstrap_mean(v, {500, 11, 0.95}, "y");
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
  EXPECT_TRUE(a.lo != c.lo || a.hi != c.hi);
  EXPECT_TRUE(a.lo != d.lo || a.hi != d.hi);
}

TEST(Bootstrap, ConstantSampleAndNoResamples) {
  const Interval c = bootstrap_mean(std::vector<double>(40, 12.5), {200, 0, 0.95}, "c");
  EXPECT_DOUBLE_EQ(c.value, 12.5);
  EXPECT_DOUBLE_EQ(c.lo, 12.5);
  EXPECT_DOUBLE_EQ(c.hi, 12.5);
  const Interval z = bootstrap_mean({0, 100, 100, 0}, {0, 0, 0.95}, "z");
  EXPECT_DOUBLE_EQ(z.value, 50.0);
  EXPECT_DOUBLE_EQ(z.lo, 50.0);
  EXPECT_DOUBLE_EQ(z.hi, 50.0);
}

TEST(Bootstrap, PairedDifference) {
  // a − b is exactly 10 for every item: the paired interval collapses to 10.
  std::vector<double> a = hits(100, 0.5, 4), b = a;
  for (auto& x : a) x += 10;
  const Interval d = bootstrap_mean_difference(a, b, {300, 1, 0.95}, "d");
  EXPECT_DOUBLE_EQ(d.value, 10.0);
  EXPECT_DOUBLE_EQ(d.lo, 10.0);
  EXPECT_DOUBLE_EQ(d.hi, 10.0);
}

TEST(ClassScores, HandMadeConfusion) {
  // truth 0 0 0 1 1 2 / pred 0 0 1 1 2 2:
  // class 0: TP 2, FP 0, FN 1 → F1 4/5; class 1: TP 1, FP 1, FN 1 → 1/2; class 2: TP 1, FP 1, FN 0 → 2/3.
  const ClassScores s = classification_scores({0, 0, 0, 1, 1, 2}, {0, 0, 1, 1, 2, 2}, 3);
  EXPECT_DOUBLE_EQ(s.accuracy, 4.0 / 6.0);
  ASSERT_EQ(s.per_class_f1.size(), 3u);
  EXPECT_DOUBLE_EQ(s.per_class_f1[0], 0.8);
  EXPECT_DOUBLE_EQ(s.per_class_f1[1], 0.5);
  EXPECT_DOUBLE_EQ(s.per_class_f1[2], 2.0 / 3.0);
  EXPECT_NEAR(s.macro_f1, (0.8 + 0.5 + 2.0 / 3.0) / 3.0, 1e-15);
  EXPECT_EQ(s.support, (std::vector<std::int64_t>{3, 2, 1}));
  EXPECT_EQ(s.predicted, (std::vector<std::int64_t>{2, 2, 2}));
}

TEST(ClassScores, AbsentClassIsExcludedAndAllWrongIsZero) {
  // Class 3 never occurs: excluded from the macro mean (scikit-learn's default labels).
  const ClassScores s = classification_scores({0, 1, 1, 0}, {0, 1, 0, 0}, 4);
  EXPECT_TRUE(std::isnan(s.per_class_f1[2]));
  EXPECT_TRUE(std::isnan(s.per_class_f1[3]));
  // class 0: TP 2 FP 1 FN 0 → 0.8; class 1: TP 1 FP 0 FN 1 → 2/3
  EXPECT_NEAR(s.macro_f1, (0.8 + 2.0 / 3.0) / 2.0, 1e-15);
  // Everything wrong: every present class has F1 0; a class only predicted counts too.
  const ClassScores w = classification_scores({0, 0, 1}, {1, 1, 2}, 3);
  EXPECT_DOUBLE_EQ(w.accuracy, 0.0);
  EXPECT_DOUBLE_EQ(w.macro_f1, 0.0);
  EXPECT_DOUBLE_EQ(w.per_class_f1[2], 0.0);
  // Perfect binary.
  const ClassScores p = classification_scores({0, 1, 1}, {0, 1, 1}, 2);
  EXPECT_DOUBLE_EQ(p.macro_f1, 1.0);
  EXPECT_THROW(classification_scores({0, 5}, {0, 1}, 2), std::invalid_argument);
  EXPECT_THROW(classification_scores({0}, {0, 1}, 2), std::invalid_argument);
}

TEST(ClassScores, SubsetWithRepetitionCountsRepeats) {
  // Items {0, 0, 2}: truth 0 0 1, pred 0 0 0 → accuracy 2/3.
  const ClassScores s = classification_scores({0, 1, 1}, {0, 0, 0}, 2, {0, 0, 2});
  EXPECT_DOUBLE_EQ(s.accuracy, 2.0 / 3.0);
  EXPECT_EQ(s.support, (std::vector<std::int64_t>{2, 1}));
}

TEST(Quality, PsnrKnownAnswers) {
  cv::Mat a(16, 16, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5)), b(16, 16, CV_32FC3, cv::Scalar(0.6, 0.6, 0.6));
  EXPECT_NEAR(psnr(a, b), 20.0, 1e-5);  // MSE 0.01 → 10·log10(1/0.01)
  EXPECT_TRUE(std::isinf(psnr(a, a.clone())));
  EXPECT_THROW(psnr(a, cv::Mat(8, 8, CV_32FC3)), std::invalid_argument);
}

TEST(Quality, SsimIdenticalAndConstantImages) {
  cv::Mat a(32, 24, CV_32FC3);
  cv::randu(a, 0.0, 1.0);
  EXPECT_NEAR(ssim(a, a.clone()), 1.0, 1e-12);
  // Constant images c1, c2: variances 0, so SSIM = (2·c1·c2 + C1) / (c1² + c2² + C1).
  cv::Mat x(20, 20, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5)), y(20, 20, CV_32FC3, cv::Scalar(0.6, 0.6, 0.6));
  EXPECT_NEAR(ssim(x, y), (2 * 0.5 * 0.6 + 1e-4) / (0.25 + 0.36 + 1e-4), 1e-6);
  EXPECT_THROW(ssim(cv::Mat(10, 10, CV_32FC3), cv::Mat(10, 10, CV_32FC3)), std::invalid_argument);
}

TEST(Quality, SsimAndPsnrMatchIndependentNumpyReference) {
  edi::testing::TempDir tmp;
  // A smooth image and a noisy, shifted version of it (not symmetric, not constant).
  cv::Mat a(40, 33, CV_32FC3), noise(40, 33, CV_32FC3);
  for (int r = 0; r < a.rows; ++r)
    for (int c = 0; c < a.cols; ++c)
      a.at<cv::Vec3f>(r, c) = cv::Vec3f(0.5f + 0.4f * std::sin(r * 0.3f), 0.5f + 0.3f * std::cos(c * 0.2f), (r + c) / 80.0f);
  cv::theRNG().state = 1234;
  cv::randn(noise, 0.0, 0.05);
  cv::Mat b = a * 0.9 + noise + cv::Scalar(0.03, 0.0, -0.02);
  auto dump = [&](const cv::Mat& m, const std::string& name) {
    std::ofstream f(tmp / name, std::ios::binary);
    cv::Mat c = m.isContinuous() ? m : m.clone();
    f.write(reinterpret_cast<const char*>(c.ptr<float>()), static_cast<std::streamsize>(c.total() * 3 * sizeof(float)));
  };
  dump(a, "a.f32");
  dump(b, "b.f32");
  const auto r = edi::testing::run_command(std::string(edi::testing::debian_python()) + " " + EDI_SOURCE_DIR +
                                           "/tests/metrics/ssim_ref.py " + (tmp / "a.f32").string() + " " +
                                           (tmp / "b.f32").string() + " 40 33 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  double ref_ssim = 0, ref_psnr = 0;
  ASSERT_EQ(std::sscanf(r.output.c_str(), "%lf %lf", &ref_ssim, &ref_psnr), 2) << r.output;
  EXPECT_NEAR(ssim(a, b), ref_ssim, 1e-9);
  EXPECT_NEAR(psnr(a, b), ref_psnr, 1e-9);
  EXPECT_GT(ref_ssim, 0.2);
  EXPECT_LT(ref_ssim, 0.99);
}

TEST(Quality, ChangedShareThreshold) {
  cv::Mat a(10, 10, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  cv::Mat b = a.clone();
  for (int i = 0; i < 10; ++i) b.at<cv::Vec3f>(i, i)[1] += 1.0f / 255.0f;  // 10 of 300 entries
  b.at<cv::Vec3f>(0, 5)[0] += 0.4f / 255.0f;                               // below the threshold
  EXPECT_DOUBLE_EQ(changed_share(a, b), 10.0 / 300.0);
  EXPECT_DOUBLE_EQ(changed_share(a, a), 0.0);
}

// --- metrics.json v2: exact and identity-cluster intervals ---

TEST(ClopperPearson, KnownValuesAtTheEdgesAndInside) {
  // 0/n: [0, 1 − (α/2)^(1/n)]; n/n: [(α/2)^(1/n), 1]; 0/10 → [0, 30.85 %].
  auto [lo0, hi0] = clopper_pearson(0, 10);
  EXPECT_EQ(lo0, 0.0);
  EXPECT_NEAR(hi0, 0.308497, 1e-6);
  auto [lo1, hi1] = clopper_pearson(10, 10);
  EXPECT_NEAR(lo1, 0.691503, 1e-6);
  EXPECT_EQ(hi1, 1.0);
  EXPECT_NEAR(clopper_pearson(0, 72).second, 1.0 - std::pow(0.025, 1.0 / 72.0), 1e-9);
  // Textbook values: 3/10 → [0.0667, 0.6525], 5/10 → [0.1871, 0.8129].
  auto [lo3, hi3] = clopper_pearson(3, 10);
  EXPECT_NEAR(lo3, 0.066739, 1e-5);
  EXPECT_NEAR(hi3, 0.652453, 1e-5);
  auto [lo5, hi5] = clopper_pearson(5, 10);
  EXPECT_NEAR(lo5, 0.187086, 1e-5);
  EXPECT_NEAR(hi5, 0.812914, 1e-5);
  EXPECT_THROW(clopper_pearson(0, 0), std::invalid_argument);
}

TEST(ClusterBootstrap, WiderThanImageBootstrapWhenAnIdentitysImagesAreIdentical) {
  // 10 identities × 10 images; identities 0–4 always re-identified, 5–9 never:
  // the 100 images carry 10 independent observations, not 100.
  std::vector<double> hits;
  std::vector<int> ids;
  for (int id = 0; id < 10; ++id)
    for (int k = 0; k < 10; ++k) hits.push_back(id < 5 ? 100.0 : 0.0), ids.push_back(id);
  const BootstrapSpec b{2000, 3, 0.95};
  const Interval image = bootstrap_mean(hits, b, "r");
  const Rate cluster = cluster_rate(hits, ids, b, "r");
  EXPECT_DOUBLE_EQ(cluster.value, 50.0);
  EXPECT_EQ(cluster.method, "cluster-bootstrap");
  EXPECT_EQ(cluster.n, 100u);
  EXPECT_EQ(cluster.n_identities, 10u);
  // Image bootstrap ≈ ±1.96·5 points; identity bootstrap ≈ ±1.96·15.8 points.
  EXPECT_LT(image.hi - image.lo, 25.0);
  EXPECT_GT(cluster.hi - cluster.lo, 2.0 * (image.hi - image.lo));
  EXPECT_GT(cluster.hi - cluster.lo, 45.0);
  // Seeded: the same interval again.
  const Rate again = cluster_rate(hits, ids, b, "r");
  EXPECT_EQ(cluster.lo, again.lo);
  EXPECT_EQ(cluster.hi, again.hi);
}

TEST(ClusterBootstrap, DegenerateRatesFallBackToClopperPearson) {
  const std::vector<int> ids = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4};
  const Rate zero = cluster_rate(std::vector<double>(10, 0.0), ids, {500, 1, 0.95}, "z");
  EXPECT_EQ(zero.method, "clopper-pearson");
  EXPECT_EQ(zero.lo, 0.0);
  EXPECT_NEAR(zero.hi, 30.8497, 1e-3);  // never [0, 0]
  const Rate all = cluster_rate(std::vector<double>(10, 100.0), ids, {500, 1, 0.95}, "a");
  EXPECT_EQ(all.method, "clopper-pearson");
  EXPECT_NEAR(all.lo, 69.1503, 1e-3);
  EXPECT_EQ(all.hi, 100.0);
  const Rate none = cluster_rate({}, {}, {500, 1, 0.95}, "n");
  EXPECT_FALSE(none.defined);
}
