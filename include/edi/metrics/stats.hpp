#pragma once
/// \file Statistics behind every reported number: seeded percentile-bootstrap
/// confidence intervals, classification scores (accuracy, macro-F1, per-class
/// F1) and image quality (PSNR, SSIM, share of changed entries).
#include <opencv2/core.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace edi::metrics {

/// A point estimate with its 95% percentile-bootstrap interval.
struct Interval {
  double value = 0.0;  ///< statistic on the full sample
  double lo = 0.0;     ///< 2.5th percentile of the bootstrap distribution
  double hi = 0.0;     ///< 97.5th percentile
  std::size_t n = 0;   ///< sample size (images)
};

/// Bootstrap settings. Resample r of statistic `name` draws its indices from
/// the counter RNG keyed (seed, stable_hash64(name), r, kBootstrap), so an
/// interval depends only on (seed, name, data), never on evaluation order.
struct BootstrapSpec {
  int resamples = 1000;      ///< 0 = no interval (lo = hi = value)
  std::uint64_t seed = 0;
  double level = 0.95;
};

/// A rate in % (or any per-image statistic) with its identity-level interval:
/// metrics.json version 2's Rate. `method` says how lo/hi were obtained.
struct Rate : Interval {
  std::size_t n_identities = 0;            ///< identities among the n images
  std::string method = "cluster-bootstrap";  ///< or "clopper-pearson"
  bool defined = true;                     ///< false: no probe (written as null)
};

/// Exact Clopper–Pearson interval of k successes in n trials at `level`, as
/// fractions in [0, 1] (lo = 0 when k = 0, hi = 1 when k = n). n must be > 0.
std::pair<double, double> clopper_pearson(std::size_t k, std::size_t n, double level = 0.95);

/// Identity-cluster percentile bootstrap: resample r draws `clusters.size()`
/// identities with replacement (Philox keyed like `bootstrap`) and passes the
/// items of every drawn identity (all of them, repeated as drawn) to the
/// statistic. `cluster_of[i]` is item i's identity (any int).
Interval cluster_bootstrap(const std::vector<int>& cluster_of,
                           const std::function<double(const std::vector<std::size_t>&)>& statistic, const BootstrapSpec& spec,
                           const std::string& name);

/// A rate in % from per-item hits (0 or 100): identity-cluster bootstrap, or
/// Clopper–Pearson where the bootstrap degenerates (0 %, 100 %, one identity,
/// or no resamples). No items → defined = false.
Rate cluster_rate(const std::vector<double>& hits, const std::vector<int>& cluster_of, const BootstrapSpec& spec,
                  const std::string& name);

/// Mean of per-item values with its identity-cluster interval (PSNR, agreement, ...).
Rate cluster_mean(const std::vector<double>& values, const std::vector<int>& cluster_of, const BootstrapSpec& spec,
                  const std::string& name);

/// Number of distinct identities in `cluster_of`.
std::size_t count_clusters(const std::vector<int>& cluster_of);

/// numpy.percentile with linear interpolation (`values` need not be sorted).
double percentile(std::vector<double> values, double q);

/// Percentile bootstrap of an arbitrary statistic over `n` items: the
/// statistic receives the resampled item indices (with repetition).
Interval bootstrap(std::size_t n, const std::function<double(const std::vector<std::size_t>&)>& statistic,
                   const BootstrapSpec& spec, const std::string& name);

/// Bootstrap of the mean of `values` (e.g. 0/1 hits × 100 for a rate in %).
Interval bootstrap_mean(const std::vector<double>& values, const BootstrapSpec& spec, const std::string& name);

/// Paired bootstrap of mean(a) − mean(b) over the same items (a.size() == b.size()).
Interval bootstrap_mean_difference(const std::vector<double>& a, const std::vector<double>& b, const BootstrapSpec& spec,
                                   const std::string& name);

/// Accuracy, macro-F1 and per-class F1 of predictions against labels.
struct ClassScores {
  double accuracy = 0.0;                 ///< fraction in [0, 1]
  double macro_f1 = 0.0;                 ///< unweighted mean of F1 over the classes present (below)
  std::vector<double> per_class_f1;      ///< one per class; NaN for a class absent from labels and predictions
  std::vector<std::int64_t> support;     ///< label count per class
  std::vector<std::int64_t> predicted;   ///< prediction count per class
};

/// Scores of `pred` against `truth` (class indices in [0, classes)). Macro-F1
/// follows scikit-learn's default: the mean over classes occurring in the
/// labels or the predictions; F1 = 2·TP / (2·TP + FP + FN), 0 when TP = 0.
/// Throws std::invalid_argument on a size mismatch or an index out of range.
ClassScores classification_scores(const std::vector<int>& truth, const std::vector<int>& pred, int classes);

/// Scores over a subset of items (indices into truth/pred, repetition allowed).
ClassScores classification_scores(const std::vector<int>& truth, const std::vector<int>& pred, int classes,
                                  const std::vector<std::size_t>& items);

/// PSNR in dB of two same-size float images in [0, 1] (peak 1); +inf when identical.
double psnr(const cv::Mat& a, const cv::Mat& b);

/// SSIM (Wang et al. 2004): Gaussian window 11×11, σ 1.5, K1 0.01, K2 0.03,
/// dynamic range 1 (float images in [0, 1]); mean of the SSIM map over the
/// 'valid' region (windows fully inside the image), then over channels.
/// Throws std::invalid_argument for sizes below 11 or mismatching images.
double ssim(const cv::Mat& a, const cv::Mat& b);

/// Share of entries (pixel × channel) with |a − b| > 0.5/255.
double changed_share(const cv::Mat& a, const cv::Mat& b);

}  // namespace edi::metrics
