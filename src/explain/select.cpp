#include "edi/explain/select.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "edi/core/error.hpp"

namespace edi::explain {
namespace {

/// numpy.percentile on `buf[0..n)`, reordering `buf` (nth_element).
double percentile_inplace(float* buf, std::size_t n, double q) {
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(buf[i])) return std::numeric_limits<double>::quiet_NaN();
  }
  // numpy: quantile = q / 100, virtual index = (n - 1) * quantile (float64).
  const double h = static_cast<double>(n - 1) * (q / 100.0);
  if (h >= static_cast<double>(n - 1)) {
    return static_cast<double>(*std::max_element(buf, buf + n));
  }
  const double lo_d = std::floor(h);
  const auto lo = static_cast<std::size_t>(lo_d);
  const double gamma = h - lo_d;
  std::nth_element(buf, buf + lo, buf + n);
  const float a = buf[lo];
  // After nth_element every element past `lo` is >= a: the next order
  // statistic is their minimum (a linear scan, not a second selection).
  const float b = *std::min_element(buf + lo + 1, buf + n);
  // numpy `_lerp`: b - a is a float32 subtraction, the rest is float64.
  const float diff = b - a;
  if (gamma >= 0.5) return static_cast<double>(b) - static_cast<double>(diff) * (1.0 - gamma);
  return static_cast<double>(a) + static_cast<double>(diff) * gamma;
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
                            std::int64_t w) {
  at::Tensor r = region.detach().to(at::kCPU);
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

/// Select within one image: scores[0..m), optional region[0..m).
/// Returns the threshold; writes out[0..m) and the count.
double select_one(const float* scores, const bool* region, std::int64_t m, double q, bool* out,
                  std::int64_t& count, std::vector<float>& scratch) {
  scratch.resize(static_cast<std::size_t>(m));
  std::size_t k = 0;
  if (region == nullptr) {
    std::copy(scores, scores + m, scratch.begin());
    k = static_cast<std::size_t>(m);
  } else {
    for (std::int64_t i = 0; i < m; ++i) {
      if (region[i]) scratch[k++] = scores[i];
    }
  }
  count = 0;
  if (k == 0) {
    std::fill(out, out + m, false);
    return std::numeric_limits<double>::quiet_NaN();
  }
  const double t = percentile_inplace(scratch.data(), k, q);
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
  std::copy(values, values + n, scratch);
  return percentile_inplace(scratch, n, q);
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

Selection select(const at::Tensor& attribution, const SelectSpec& spec, const at::Tensor& region,
                 c10::ScalarType dtype) {
  validate(spec);
  if (attribution.dim() != 4 || attribution.numel() == 0) {
    throw Error("explain::select: expected a non-empty N×C×H×W attribution, got shape " +
                std::string(c10::str(attribution.sizes())));
  }
  if (dtype != at::kBool && dtype != at::kFloat) {
    throw Error("explain::select: mask dtype must be bool or float");
  }
  const std::int64_t n = attribution.size(0), c = attribution.size(1), h = attribution.size(2),
                     w = attribution.size(3);
  const bool pixel = spec.granularity == Granularity::kPixel;
  const at::Tensor g = cpu_float(attribution);
  // Scores per image: all C*H*W entries, or the H*W channel maxima.
  const at::Tensor scores = pixel ? std::get<0>(g.max(1)).contiguous() : g;
  const std::int64_t m = pixel ? h * w : c * h * w;
  at::Tensor reg;
  if (region.defined()) {
    reg = normalise_region(region, n, c, h, w);
    if (pixel) reg = reg.amax(1).contiguous();           // inside if any channel is inside
    else reg = reg.expand({n, c, h, w}).contiguous();
  }
  const std::vector<std::int64_t> mask_shape =
      pixel ? std::vector<std::int64_t>{n, h, w} : std::vector<std::int64_t>{n, c, h, w};
  at::Tensor mask = at::empty(mask_shape, at::kBool);
  Selection sel;
  sel.threshold = at::empty({n}, at::kDouble);
  sel.selected = at::empty({n}, at::kLong);
  const float* sp = scores.data_ptr<float>();
  const bool* rp = reg.defined() ? reg.data_ptr<bool>() : nullptr;
  bool* mp = mask.data_ptr<bool>();
  double* tp = sel.threshold.data_ptr<double>();
  std::int64_t* cp = sel.selected.data_ptr<std::int64_t>();
  at::parallel_for(0, n, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scratch;
    for (std::int64_t i = begin; i < end; ++i) {
      std::int64_t count = 0;
      tp[i] = select_one(sp + i * m, rp ? rp + i * m : nullptr, m, spec.q, mp + i * m, count, scratch);
      cp[i] = pixel ? count * c : count;
    }
  });
  if (pixel) mask = mask.unsqueeze(1).expand({n, c, h, w}).contiguous();
  sel.mask = dtype == at::kBool ? mask : mask.to(at::kFloat);
  return sel;
}

at::Tensor select_mask(const at::Tensor& attribution, const SelectSpec& spec, const at::Tensor& region,
                       c10::ScalarType dtype) {
  return select(attribution, spec, region, dtype).mask;
}

}  // namespace edi::explain
