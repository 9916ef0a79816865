#include "edi/metrics/stats.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "edi/core/rng.hpp"

namespace edi::metrics {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto i = static_cast<std::size_t>(std::floor(pos));
  if (i + 1 >= v.size()) return v.back();
  const double frac = pos - static_cast<double>(i);
  return v[i] + (v[i + 1] - v[i]) * frac;
}

Interval bootstrap(std::size_t n, const std::function<double(const std::vector<std::size_t>&)>& statistic,
                   const BootstrapSpec& spec, const std::string& name) {
  Interval out;
  out.n = n;
  std::vector<std::size_t> all(n);
  for (std::size_t i = 0; i < n; ++i) all[i] = i;
  out.value = n ? statistic(all) : std::numeric_limits<double>::quiet_NaN();
  out.lo = out.hi = out.value;
  if (n == 0 || spec.resamples <= 0) return out;
  std::vector<double> stats;
  stats.reserve(static_cast<std::size_t>(spec.resamples));
  std::vector<std::size_t> idx(n);
  const std::uint64_t item = stable_hash64(name);
  for (int r = 0; r < spec.resamples; ++r) {
    CounterRng rng(RngKey{spec.seed, item, static_cast<std::uint32_t>(r), RngStream::kBootstrap});
    for (std::size_t i = 0; i < n; ++i) idx[i] = static_cast<std::size_t>(rng.below(n));
    const double s = statistic(idx);
    if (std::isfinite(s)) stats.push_back(s);
  }
  const double tail = (1.0 - spec.level) / 2.0 * 100.0;
  out.lo = percentile(stats, tail);
  out.hi = percentile(stats, 100.0 - tail);
  return out;
}

Interval bootstrap_mean(const std::vector<double>& values, const BootstrapSpec& spec, const std::string& name) {
  return bootstrap(
      values.size(),
      [&](const std::vector<std::size_t>& idx) {
        double s = 0.0;
        for (std::size_t i : idx) s += values[i];
        return s / static_cast<double>(idx.size());
      },
      spec, name);
}

Interval bootstrap_mean_difference(const std::vector<double>& a, const std::vector<double>& b, const BootstrapSpec& spec,
                                   const std::string& name) {
  if (a.size() != b.size()) throw std::invalid_argument("bootstrap_mean_difference: samples differ in size");
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return bootstrap_mean(d, spec, name);
}

namespace {
/// log of the binomial pmf.
double log_pmf(std::size_t k, std::size_t n, double p) {
  const double kd = static_cast<double>(k), nd = static_cast<double>(n);
  return std::lgamma(nd + 1) - std::lgamma(kd + 1) - std::lgamma(nd - kd + 1) + kd * std::log(p) + (nd - kd) * std::log1p(-p);
}
/// P(X <= k) for X ~ Binomial(n, p), 0 < p < 1.
double binom_cdf(std::size_t k, std::size_t n, double p) {
  double s = 0.0;
  for (std::size_t i = 0; i <= k; ++i) s += std::exp(log_pmf(i, n, p));
  return std::min(1.0, s);
}
/// The p in (0, 1) where f (monotone decreasing in p) crosses `target`, by bisection.
template <typename F>
double solve_decreasing(F f, double target) {
  double lo = 0.0, hi = 1.0;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (f(mid) > target) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}
}  // namespace

std::pair<double, double> clopper_pearson(std::size_t k, std::size_t n, double level) {
  if (n == 0 || k > n) throw std::invalid_argument("clopper_pearson: need 0 <= k <= n and n > 0");
  const double a = (1.0 - level) / 2.0;
  // lo: P(X >= k | p) = a  <=>  P(X <= k-1 | p) = 1 - a;  hi: P(X <= k | p) = a.
  const double lo = k == 0 ? 0.0 : solve_decreasing([&](double p) { return binom_cdf(k - 1, n, p); }, 1.0 - a);
  const double hi = k == n ? 1.0 : solve_decreasing([&](double p) { return binom_cdf(k, n, p); }, a);
  return {lo, hi};
}

std::size_t count_clusters(const std::vector<int>& cluster_of) {
  std::vector<int> c = cluster_of;
  std::sort(c.begin(), c.end());
  return static_cast<std::size_t>(std::unique(c.begin(), c.end()) - c.begin());
}

Interval cluster_bootstrap(const std::vector<int>& cluster_of,
                           const std::function<double(const std::vector<std::size_t>&)>& statistic, const BootstrapSpec& spec,
                           const std::string& name) {
  const std::size_t n = cluster_of.size();
  Interval out;
  out.n = n;
  std::vector<std::size_t> all(n);
  for (std::size_t i = 0; i < n; ++i) all[i] = i;
  out.value = n ? statistic(all) : std::numeric_limits<double>::quiet_NaN();
  out.lo = out.hi = out.value;
  if (n == 0 || spec.resamples <= 0) return out;
  // Items of each identity, identities in sorted order (deterministic).
  std::map<int, std::vector<std::size_t>> by;
  for (std::size_t i = 0; i < n; ++i) by[cluster_of[i]].push_back(i);
  std::vector<const std::vector<std::size_t>*> groups;
  for (const auto& [c, items] : by) groups.push_back(&items);
  const std::size_t k = groups.size();
  std::vector<double> stats;
  stats.reserve(static_cast<std::size_t>(spec.resamples));
  std::vector<std::size_t> idx;
  const std::uint64_t item = stable_hash64(name);
  for (int r = 0; r < spec.resamples; ++r) {
    CounterRng rng(RngKey{spec.seed, item, static_cast<std::uint32_t>(r), RngStream::kBootstrap});
    idx.clear();
    for (std::size_t d = 0; d < k; ++d) {
      const auto& g = *groups[static_cast<std::size_t>(rng.below(k))];
      idx.insert(idx.end(), g.begin(), g.end());
    }
    const double s = statistic(idx);
    if (std::isfinite(s)) stats.push_back(s);
  }
  const double tail = (1.0 - spec.level) / 2.0 * 100.0;
  out.lo = percentile(stats, tail);
  out.hi = percentile(stats, 100.0 - tail);
  return out;
}

namespace {
double mean_of(const std::vector<double>& v, const std::vector<std::size_t>& idx) {
  double s = 0.0;
  for (std::size_t i : idx) s += v[i];
  return idx.empty() ? std::numeric_limits<double>::quiet_NaN() : s / static_cast<double>(idx.size());
}
}  // namespace

Rate cluster_mean(const std::vector<double>& values, const std::vector<int>& cluster_of, const BootstrapSpec& spec,
                  const std::string& name) {
  if (values.size() != cluster_of.size()) throw std::invalid_argument("cluster_mean: values and identities differ in size");
  Rate r;
  r.n_identities = count_clusters(cluster_of);
  if (values.empty()) {
    r.defined = false;
    r.value = r.lo = r.hi = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  static_cast<Interval&>(r) = cluster_bootstrap(cluster_of, [&](const std::vector<std::size_t>& idx) { return mean_of(values, idx); },
                                                spec, name);
  return r;
}

Rate cluster_rate(const std::vector<double>& hits, const std::vector<int>& cluster_of, const BootstrapSpec& spec,
                  const std::string& name) {
  Rate r = cluster_mean(hits, cluster_of, spec, name);
  if (!r.defined) return r;
  std::size_t k = 0;
  for (double h : hits) k += h > 0.0;
  const std::size_t n = hits.size();
  if (k == 0 || k == n || r.n_identities < 2 || spec.resamples <= 0) {
    const auto [lo, hi] = clopper_pearson(k, n, spec.level);
    r.lo = 100.0 * lo;
    r.hi = 100.0 * hi;
    r.method = "clopper-pearson";
  }
  return r;
}

ClassScores classification_scores(const std::vector<int>& truth, const std::vector<int>& pred, int classes,
                                  const std::vector<std::size_t>& items) {
  if (truth.size() != pred.size()) throw std::invalid_argument("classification_scores: labels and predictions differ in size");
  if (classes < 1) throw std::invalid_argument("classification_scores: need at least one class");
  const auto k = static_cast<std::size_t>(classes);
  std::vector<std::int64_t> tp(k, 0), fp(k, 0), fn(k, 0);
  ClassScores s;
  s.support.assign(k, 0);
  s.predicted.assign(k, 0);
  std::int64_t correct = 0;
  for (std::size_t i : items) {
    const int t = truth.at(i), p = pred.at(i);
    if (t < 0 || t >= classes || p < 0 || p >= classes)
      throw std::invalid_argument("classification_scores: class index out of range at item " + std::to_string(i));
    ++s.support[static_cast<std::size_t>(t)];
    ++s.predicted[static_cast<std::size_t>(p)];
    if (t == p) {
      ++correct;
      ++tp[static_cast<std::size_t>(t)];
    } else {
      ++fp[static_cast<std::size_t>(p)];
      ++fn[static_cast<std::size_t>(t)];
    }
  }
  s.accuracy = items.empty() ? std::numeric_limits<double>::quiet_NaN()
                             : static_cast<double>(correct) / static_cast<double>(items.size());
  s.per_class_f1.assign(k, std::numeric_limits<double>::quiet_NaN());
  double sum = 0.0;
  int present = 0;
  for (std::size_t c = 0; c < k; ++c) {
    if (s.support[c] == 0 && s.predicted[c] == 0) continue;
    const double denom = static_cast<double>(2 * tp[c] + fp[c] + fn[c]);
    s.per_class_f1[c] = tp[c] == 0 ? 0.0 : 2.0 * static_cast<double>(tp[c]) / denom;
    sum += s.per_class_f1[c];
    ++present;
  }
  s.macro_f1 = present ? sum / present : std::numeric_limits<double>::quiet_NaN();
  return s;
}

ClassScores classification_scores(const std::vector<int>& truth, const std::vector<int>& pred, int classes) {
  std::vector<std::size_t> all(truth.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return classification_scores(truth, pred, classes, all);
}

namespace {
void check_pair(const cv::Mat& a, const cv::Mat& b, const char* what) {
  if (a.size() != b.size() || a.channels() != b.channels() || a.empty())
    throw std::invalid_argument(std::string(what) + ": images differ in size or channels (or are empty)");
}
cv::Mat as_double(const cv::Mat& m) {
  cv::Mat out;
  m.convertTo(out, CV_MAKETYPE(CV_64F, m.channels()));
  return out;
}
}  // namespace

double psnr(const cv::Mat& a, const cv::Mat& b) {
  check_pair(a, b, "psnr");
  cv::Mat d = as_double(a) - as_double(b);
  d = d.mul(d);
  const cv::Scalar s = cv::sum(d);
  double sse = 0.0;
  for (int c = 0; c < a.channels(); ++c) sse += s[c];
  const double mse = sse / static_cast<double>(a.total() * static_cast<std::size_t>(a.channels()));
  if (mse == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(1.0 / mse);
}

double ssim(const cv::Mat& a_in, const cv::Mat& b_in) {
  check_pair(a_in, b_in, "ssim");
  constexpr int kWin = 11;
  constexpr double kSigma = 1.5, kC1 = 0.01 * 0.01, kC2 = 0.03 * 0.03;
  if (a_in.rows < kWin || a_in.cols < kWin) throw std::invalid_argument("ssim: images must be at least 11x11");
  std::vector<cv::Mat> ca, cb;
  cv::split(as_double(a_in), ca);
  cv::split(as_double(b_in), cb);
  // Normalised 11-tap Gaussian, applied separably; only the interior (valid)
  // region is kept, so the border mode never matters.
  cv::Mat g(kWin, 1, CV_64F);
  double gs = 0.0;
  for (int i = 0; i < kWin; ++i) {
    const double x = i - kWin / 2;
    g.at<double>(i) = std::exp(-x * x / (2 * kSigma * kSigma));
    gs += g.at<double>(i);
  }
  g /= gs;
  const cv::Rect valid(kWin / 2, kWin / 2, a_in.cols - kWin + 1, a_in.rows - kWin + 1);
  auto filt = [&](const cv::Mat& m) {
    cv::Mat o;
    cv::sepFilter2D(m, o, CV_64F, g, g, cv::Point(-1, -1), 0.0, cv::BORDER_REFLECT);
    return o(valid);
  };
  double total = 0.0;
  for (std::size_t c = 0; c < ca.size(); ++c) {
    const cv::Mat& x = ca[c];
    const cv::Mat& y = cb[c];
    cv::Mat mx = filt(x), my = filt(y);
    cv::Mat sxx = filt(x.mul(x)) - mx.mul(mx);
    cv::Mat syy = filt(y.mul(y)) - my.mul(my);
    cv::Mat sxy = filt(x.mul(y)) - mx.mul(my);
    cv::Mat num = (2 * mx.mul(my) + kC1).mul(2 * sxy + kC2);
    cv::Mat den = (mx.mul(mx) + my.mul(my) + kC1).mul(sxx + syy + kC2);
    cv::Mat map;
    cv::divide(num, den, map);
    total += cv::mean(map)[0];
  }
  return total / static_cast<double>(ca.size());
}

double changed_share(const cv::Mat& a, const cv::Mat& b) {
  check_pair(a, b, "changed_share");
  cv::Mat d;
  cv::absdiff(as_double(a), as_double(b), d);
  cv::Mat flat = d.reshape(1);
  const int changed = cv::countNonZero(flat > 0.5 / 255.0);
  return static_cast<double>(changed) / static_cast<double>(flat.total());
}

}  // namespace edi::metrics
