#include "edi/explain/select.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "edi/core/error.hpp"

namespace edi::explain {
namespace {

/// numpy `_lerp` between the order statistics a = x(lo) and b = x(lo+1):
/// b - a is a float32 subtraction, the rest is float64.
double lerp_numpy(float a, float b, double gamma) {
  const float diff = b - a;
  if (gamma >= 0.5) return static_cast<double>(b) - static_cast<double>(diff) * (1.0 - gamma);
  return static_cast<double>(a) + static_cast<double>(diff) * gamma;
}

/// The two order statistics x(lo), x(lo+1) of `buf[0..n)` (lo + 1 < n), reordering `buf`.
std::pair<float, float> order_pair_inplace(float* buf, std::size_t n, std::size_t lo) {
  std::nth_element(buf, buf + lo, buf + n);
  // After nth_element every element past `lo` is >= a: the next order
  // statistic is their minimum (a linear scan, not a second selection).
  return {buf[lo], *std::min_element(buf + lo + 1, buf + n)};
}

/// Inputs this short go straight to nth_element: the histogram would not pay.
constexpr std::size_t kHistogramMin = 4096;
constexpr int kBinBits = 16;

/// Order-preserving map float -> uint32 (IEEE total order; -0 sorts just below +0,
/// which compare equal as floats, so the order statistics' values are unchanged).
inline std::uint32_t sort_key(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/// x(lo), x(lo+1) of `values[0..n)` (no NaN, lo + 1 < n) without reordering `values`:
/// a 65,536-bin histogram of the keys' top 16 bits finds the bins holding both ranks,
/// only the entries of those (at most two) bins are copied to `scratch`, and an exact
/// nth_element runs on that narrowed set. Same values as a full nth_element. `scratch`
/// may alias `values`: the copy is a compaction (write index <= read index).
std::pair<float, float> order_pair_radix(const float* values, std::size_t n, std::size_t lo, float* scratch,
                                         std::vector<std::uint32_t>& hist) {
  hist.assign(std::size_t{1} << kBinBits, 0u);
  for (std::size_t i = 0; i < n; ++i) ++hist[sort_key(values[i]) >> (32 - kBinBits)];
  std::size_t before = 0, bin = 0;
  while (before + hist[bin] <= lo) before += hist[bin++];
  std::size_t last = bin;  // the bin of rank lo + 1: this one or the next non-empty one
  if (before + hist[bin] <= lo + 1) {
    do ++last;
    while (hist[last] == 0);
  }
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t b = sort_key(values[i]) >> (32 - kBinBits);
    if (b >= bin && b <= last) scratch[k++] = values[i];
  }
  return order_pair_inplace(scratch, k, lo - before);
}

/// numpy.percentile of `values[0..n)`, n >= 1, using `scratch` (n floats). `scratch` may be
/// `values` itself (the region case): that buffer is then reordered, else `values` is left as it is.
double percentile_of(const float* values, std::size_t n, double q, float* scratch,
                     std::vector<std::uint32_t>& hist) {
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(values[i])) return std::numeric_limits<double>::quiet_NaN();
  }
  // numpy: quantile = q / 100, virtual index = (n - 1) * quantile (float64).
  const double h = static_cast<double>(n - 1) * (q / 100.0);
  if (h >= static_cast<double>(n - 1)) {
    return static_cast<double>(*std::max_element(values, values + n));
  }
  const double lo_d = std::floor(h);
  const auto lo = static_cast<std::size_t>(lo_d);
  std::pair<float, float> ab;
  if (n >= kHistogramMin) {
    ab = order_pair_radix(values, n, lo, scratch, hist);
  } else {
    if (scratch != values) std::copy(values, values + n, scratch);
    ab = order_pair_inplace(scratch, n, lo);
  }
  return lerp_numpy(ab.first, ab.second, h - lo_d);
}

void check_q(double q) {
  if (!(q >= 0.0 && q <= 100.0)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", q);
    throw ConfigError(std::string("--q ") + buf + ": expected a number in [0, 100]");
  }
}

at::Tensor cpu_float(const at::Tensor& t) {
  return t.detach().to(at::kCPU, at::kFloat).contiguous();
}

/// Region as bool N×K×H×W (K = 1 or C), from the accepted shapes.
at::Tensor normalise_region(const at::Tensor& region, std::int64_t n, std::int64_t c, std::int64_t h,
                            std::int64_t w, at::Device device) {
  at::Tensor r = region.detach().to(device);
  r = r.scalar_type() == at::kBool ? r : r.ne(0);
  if (r.dim() == 2) r = r.unsqueeze(0).unsqueeze(0);
  else if (r.dim() == 3) r = r.unsqueeze(1);
  const bool ok = r.dim() == 4 && (r.size(0) == 1 || r.size(0) == n) &&
                  (r.size(1) == 1 || r.size(1) == c) && r.size(2) == h && r.size(3) == w;
  if (!ok) {
    throw Error("explain::select: region of shape " + std::string(c10::str(region.sizes())) +
                " does not fit attribution N=" + std::to_string(n) + " C=" + std::to_string(c) +
                " H=" + std::to_string(h) + " W=" + std::to_string(w));
  }
  return r.expand({n, r.size(1), h, w}).contiguous();
}

/// Per-thread buffers of the selection.
struct Scratch {
  std::vector<float> values;
  std::vector<std::uint32_t> hist;
};

/// Select within one image: scores[0..m), optional region[0..m).
/// Returns the threshold; writes out[0..m) and the count.
double select_one(const float* scores, const bool* region, std::int64_t m, double q, bool* out,
                  std::int64_t& count, Scratch& scratch) {
  scratch.values.resize(static_cast<std::size_t>(m));
  float* buf = scratch.values.data();
  count = 0;
  double t;
  if (region == nullptr) {
    // The histogram pre-pass reads the scores where they are; only candidates are copied.
    t = percentile_of(scores, static_cast<std::size_t>(m), q, buf, scratch.hist);
  } else {
    std::size_t k = 0;
    for (std::int64_t i = 0; i < m; ++i) {
      if (region[i]) buf[k++] = scores[i];
    }
    if (k == 0) {
      std::fill(out, out + m, false);
      return std::numeric_limits<double>::quiet_NaN();
    }
    t = percentile_of(buf, k, q, buf, scratch.hist);
  }
  for (std::int64_t i = 0; i < m; ++i) {
    const bool sel = (region == nullptr || region[i]) && static_cast<double>(scores[i]) >= t;
    out[i] = sel;
    count += sel;
  }
  return t;
}

}  // namespace

double percentile(const float* values, std::size_t n, double q, float* scratch) {
  check_q(q);
  if (n == 0) throw Error("explain::percentile: empty input");
  std::vector<std::uint32_t> hist;
  return percentile_of(values, n, q, scratch, hist);
}

double percentile(const float* values, std::size_t n, double q) {
  std::vector<float> scratch(n);
  return percentile(values, n, q, scratch.data());
}

at::Tensor percentile_per_image(const at::Tensor& values, double q) {
  check_q(q);
  if (values.dim() < 1 || values.size(0) == 0 || values.numel() == 0) {
    throw Error("explain::percentile_per_image: expected a non-empty N×... tensor");
  }
  const at::Tensor v = cpu_float(values).reshape({values.size(0), -1});
  const std::int64_t n = v.size(0), m = v.size(1);
  at::Tensor result = at::empty({n}, at::kDouble);
  const float* src = v.data_ptr<float>();
  double* dst = result.data_ptr<double>();
  at::parallel_for(0, n, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scratch(static_cast<std::size_t>(m));
    for (std::int64_t i = begin; i < end; ++i) {
      dst[i] = percentile(src + i * m, static_cast<std::size_t>(m), q, scratch.data());
    }
  });
  return result;
}

namespace {

/// What both selection paths share: the checked arguments and the per-image scores.
struct Prepared {
  std::int64_t n, c, h, w, m;
  bool pixel;
  at::Tensor scores;  ///< N×m float on `device`, contiguous
  at::Tensor region;  ///< N×m bool on `device`, or undefined
};

Prepared prepare(const at::Tensor& attribution, const SelectSpec& spec, const at::Tensor& region,
                 c10::ScalarType dtype, at::Device device) {
  validate(spec);
  if (attribution.dim() != 4 || attribution.numel() == 0) {
    throw Error("explain::select: expected a non-empty N×C×H×W attribution, got shape " +
                std::string(c10::str(attribution.sizes())));
  }
  if (dtype != at::kBool && dtype != at::kFloat) {
    throw Error("explain::select: mask dtype must be bool or float");
  }
  Prepared p;
  p.n = attribution.size(0), p.c = attribution.size(1), p.h = attribution.size(2), p.w = attribution.size(3);
  p.pixel = spec.granularity == Granularity::kPixel;
  const at::Tensor g = attribution.detach().to(device, at::kFloat).contiguous();
  // Scores per image: all C*H*W entries, or the H*W channel maxima.
  p.m = p.pixel ? p.h * p.w : p.c * p.h * p.w;
  p.scores = (p.pixel ? g.amax(1) : g).reshape({p.n, p.m}).contiguous();
  if (region.defined()) {
    at::Tensor reg = normalise_region(region, p.n, p.c, p.h, p.w, device);
    if (p.pixel) reg = reg.amax(1);  // inside if any channel is inside
    else reg = reg.expand({p.n, p.c, p.h, p.w});
    p.region = reg.reshape({p.n, p.m}).contiguous();
  }
  return p;
}

/// The N×m mask as the caller's N×C×H×W mask of `dtype`.
at::Tensor shape_mask(const Prepared& p, const at::Tensor& mask, c10::ScalarType dtype) {
  at::Tensor out = p.pixel ? mask.view({p.n, 1, p.h, p.w}).expand({p.n, p.c, p.h, p.w}).contiguous()
                           : mask.view({p.n, p.c, p.h, p.w});
  return dtype == at::kBool ? out : out.to(at::kFloat);
}

/// numpy.percentile of each image's (in-region) scores from x(lo), x(lo+1) found on the device.
/// Only per-image scalars (counts, NaN flags, the two order statistics) come to the host.
std::vector<double> device_thresholds(const Prepared& p, double q) {
  const at::Tensor has_nan =
      (p.region.defined() ? p.scores.isnan().logical_and(p.region) : p.scores.isnan()).any(1).to(at::kCPU).contiguous();
  const bool* nan_p = has_nan.data_ptr<bool>();
  std::vector<std::int64_t> count(static_cast<std::size_t>(p.n), p.m);
  at::Tensor ordered = p.scores;  // rows whose order statistics are read
  if (p.region.defined()) {
    const at::Tensor cnt = p.region.sum(1).to(at::kCPU, at::kLong).contiguous();
    std::copy(cnt.data_ptr<std::int64_t>(), cnt.data_ptr<std::int64_t>() + p.n, count.begin());
    // Outside entries sort last; +inf inside the region sorts with them but keeps its rank's value.
    ordered = std::get<0>(at::where(p.region, p.scores, std::numeric_limits<float>::infinity()).sort(1));
  }
  // Ranks lo and lo+1 per image (or the maximum where h >= k-1).
  std::vector<std::int64_t> ranks(static_cast<std::size_t>(2 * p.n), 0);
  std::vector<double> gamma(static_cast<std::size_t>(p.n), 0.0);
  std::vector<bool> at_max(static_cast<std::size_t>(p.n), false);
  for (std::int64_t i = 0; i < p.n; ++i) {
    const auto k = count[static_cast<std::size_t>(i)];
    const double hv = static_cast<double>(k - 1) * (q / 100.0);
    const bool top = k > 0 && hv >= static_cast<double>(k - 1);
    const auto lo = k > 0 ? (top ? k - 1 : static_cast<std::int64_t>(std::floor(hv))) : 0;
    at_max[static_cast<std::size_t>(i)] = top;
    gamma[static_cast<std::size_t>(i)] = hv - std::floor(hv);
    ranks[static_cast<std::size_t>(2 * i)] = lo;
    ranks[static_cast<std::size_t>(2 * i + 1)] = std::min(lo + 1, std::max<std::int64_t>(k - 1, 0));
  }
  at::Tensor ab;
  if (p.region.defined()) {
    const at::Tensor idx = at::tensor(ranks, at::kLong).view({p.n, 2}).to(ordered.device());
    ab = ordered.gather(1, idx).to(at::kCPU);
  } else {
    // One uniform k: two O(m) selections per row instead of a sort.
    const std::int64_t lo = ranks[0], hi = ranks[1];
    ab = at::stack({std::get<0>(ordered.kthvalue(lo + 1, 1)), std::get<0>(ordered.kthvalue(hi + 1, 1))}, 1)
             .to(at::kCPU);
  }
  const auto abv = ab.contiguous();
  const float* v = abv.data_ptr<float>();
  std::vector<double> t(static_cast<std::size_t>(p.n));
  for (std::int64_t i = 0; i < p.n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    if (count[u] == 0 || nan_p[i]) t[u] = std::numeric_limits<double>::quiet_NaN();
    else if (at_max[u]) t[u] = static_cast<double>(v[2 * i]);
    else t[u] = lerp_numpy(v[2 * i], v[2 * i + 1], gamma[u]);
  }
  return t;
}

}  // namespace

Selection select(const at::Tensor& attribution, const SelectSpec& spec, const at::Tensor& region,
                 c10::ScalarType dtype) {
  if (!attribution.device().is_cpu()) return select_aten(attribution, spec, region, dtype);
  const Prepared p = prepare(attribution, spec, region, dtype, at::kCPU);
  const std::int64_t n = p.n, m = p.m;
  at::Tensor mask = at::empty({n, m}, at::kBool);
  Selection sel;
  sel.threshold = at::empty({n}, at::kDouble);
  sel.selected = at::empty({n}, at::kLong);
  const float* sp = p.scores.data_ptr<float>();
  const bool* rp = p.region.defined() ? p.region.data_ptr<bool>() : nullptr;
  bool* mp = mask.data_ptr<bool>();
  double* tp = sel.threshold.data_ptr<double>();
  std::int64_t* cp = sel.selected.data_ptr<std::int64_t>();
  const std::int64_t per_selected = p.pixel ? p.c : 1;
  // One image per task: each image's result is the same whatever the thread count.
  at::parallel_for(0, n, 1, [&](std::int64_t begin, std::int64_t end) {
    Scratch scratch;
    for (std::int64_t i = begin; i < end; ++i) {
      std::int64_t count = 0;
      tp[i] = select_one(sp + i * m, rp ? rp + i * m : nullptr, m, spec.q, mp + i * m, count, scratch);
      cp[i] = count * per_selected;
    }
  });
  sel.mask = shape_mask(p, mask, dtype);
  return sel;
}

Selection select_aten(const at::Tensor& attribution, const SelectSpec& spec, const at::Tensor& region,
                      c10::ScalarType dtype) {
  const at::Device device = attribution.device();
  const Prepared p = prepare(attribution, spec, region, dtype, device);
  const std::vector<double> t = device_thresholds(p, spec.q);
  const at::Tensor td = at::tensor(t, at::kDouble).to(device);
  at::Tensor mask = p.scores.to(at::kDouble).ge(td.unsqueeze(1));
  if (p.region.defined()) mask.logical_and_(p.region);
  Selection sel;
  sel.threshold = at::tensor(t, at::kDouble);
  sel.selected = mask.sum(1).to(at::kCPU, at::kLong) * (p.pixel ? p.c : 1);
  sel.mask = shape_mask(p, mask, dtype);
  return sel;
}

at::Tensor select_mask(const at::Tensor& attribution, const SelectSpec& spec, const at::Tensor& region,
                       c10::ScalarType dtype) {
  return select(attribution, spec, region, dtype).mask;
}

}  // namespace edi::explain
