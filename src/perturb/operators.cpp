#include "edi/perturb/operators.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <ATen/Parallel.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/perturb/aten_ops.hpp"

namespace edi::perturb {

namespace {

const char* const kNames[] = {"blur", "gaussian", "pixelate", "dp-pix", "dp-blur", "noise", "mask"};

std::string fmt(double v) { return format_g(v); }

[[noreturn]] void bad(const std::string& option, const std::string& value, const std::string& expected) {
  throw ConfigError("--" + option + " " + value + ": expected " + expected);
}

void check_int_min(const char* option, int v, int lo) {
  if (v < lo) bad(option, std::to_string(v), "an integer >= " + std::to_string(lo));
}

void check_odd_kernel(int k) {
  // OpenCV's GaussianBlur asserts on even sizes; reject them here with a message instead.
  if (k < 1 || k % 2 == 0) bad("k", std::to_string(k), "an odd integer >= 1 (Gaussian kernel size)");
}

void check_finite_nonneg(const char* option, double v) {
  // `!(v >= 0)` also rejects NaN.
  if (!(v >= 0) || !std::isfinite(v)) bad(option, fmt(v), "a finite number >= 0");
}

void check_dp(const OperatorSpec& s) {
  check_int_min("b", s.b, 1);
  if (!(s.m > 0) || !std::isfinite(s.m)) bad("m", fmt(s.m), "a finite number > 0");
  // +inf is allowed on purpose: it means "no noise" (Pix(b) alone), used for checks.
  if (!(s.eps > 0)) bad("eps", fmt(s.eps), "a number > 0 (inf: no noise)");
}

bool is_known(std::string_view name) {
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

// ---------------------------------------------------------------------------
// Batch plumbing. Operators work plane by plane on contiguous CPU float32 CHW
// data: OpenCV's filters and resize are channel-separable, so a 1-channel Mat
// over each plane gives the same numbers as the 3-channel HWC image would,
// without the two interleave/deinterleave copies per image.

void check_batch(const at::Tensor& x, std::size_t nkeys) {
  if (x.dim() != 4 || x.size(1) != 3)
    throw std::invalid_argument("perturb: expected an N×3×H×W tensor, got " + std::to_string(x.dim()) +
                                " dims");
  if (x.scalar_type() != at::kFloat) throw std::invalid_argument("perturb: expected a float32 tensor");
  if (static_cast<std::size_t>(x.size(0)) != nkeys)
    throw std::invalid_argument("perturb: " + std::to_string(x.size(0)) + " images but " +
                                std::to_string(nkeys) + " RNG keys");
}

inline cv::Mat plane(const float* p, int h, int w) {
  // OpenCV never writes through a Mat used only as a source.
  return cv::Mat(h, w, CV_32F, const_cast<float*>(p));
}

/// Calls fn(src, dst, h, w, key) for every image with pointers to its CHW planes.
template <class Fn>
at::Tensor per_image(const at::Tensor& x, const std::vector<RngKey>& keys, Fn&& fn) {
  check_batch(x, keys.size());
  const at::Device device = x.device();
  // .to/.contiguous are no-ops for the usual contiguous CPU input.
  const at::Tensor in = x.to(at::kCPU).contiguous();
  at::Tensor out = at::empty_like(in, at::MemoryFormat::Contiguous);
  const int n = static_cast<int>(in.size(0)), h = static_cast<int>(in.size(2)),
            w = static_cast<int>(in.size(3));
  const std::size_t image = 3 * static_cast<std::size_t>(h) * w;
  const float* src = in.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  // One image per task: images are independent, so any thread count gives the same output.
  at::parallel_for(0, n, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) fn(src + i * image, dst + i * image, h, w, keys[static_cast<std::size_t>(i)]);
  });
  return device.is_cpu() ? out : out.to(device);
}

inline float clip01(double v) { return static_cast<float>(std::min(1.0, std::max(0.0, v))); }

void clip_plane(float* p, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) p[i] = std::min(1.f, std::max(0.f, p[i]));
}

/// DP-Pix of one image (3 planes) into dst; draws in the documented order.
void dp_pix_image(const float* src, float* dst, int h, int w, int b, double scale, CounterRng& rng) {
  const int nbx = (w + b - 1) / b;
  std::vector<double> sums(nbx);
  const std::size_t hw = static_cast<std::size_t>(h) * w;
  for (int c = 0; c < 3; ++c) {
    const float* s = src + c * hw;
    float* d = dst + c * hw;
    for (int y0 = 0; y0 < h; y0 += b) {
      const int y1 = std::min(h, y0 + b);
      std::fill(sums.begin(), sums.end(), 0.0);
      for (int y = y0; y < y1; ++y) {
        const float* row = s + static_cast<std::size_t>(y) * w;
        for (int bx = 0; bx < nbx; ++bx) {
          const int x1 = std::min(w, (bx + 1) * b);
          double acc = 0.0;
          for (int x = bx * b; x < x1; ++x) acc += row[x];
          sums[bx] += acc;
        }
      }
      for (int bx = 0; bx < nbx; ++bx) {
        const int x0 = bx * b, x1 = std::min(w, x0 + b);
        const double mean = sums[bx] / (static_cast<double>(y1 - y0) * (x1 - x0));
        // Clip, never wrap (the authors' uint8 assignment wrapped mod 256).
        const float v = clip01(mean + rng.laplace(scale));
        for (int y = y0; y < y1; ++y) std::fill(d + static_cast<std::size_t>(y) * w + x0,
                                                d + static_cast<std::size_t>(y) * w + x1, v);
      }
    }
  }
}

// ---------------------------------------------------------------------------

class BoxBlur final : public Operator {
 public:
  explicit BoxBlur(OperatorSpec spec) : Operator(std::move(spec)) {}
  at::Tensor apply_opencv(const at::Tensor& x, const std::vector<RngKey>& keys) const override {
    const int k = spec_.k;
    return per_image(x, keys, [k](const float* src, float* dst, int h, int w, const RngKey&) {
      const std::size_t hw = static_cast<std::size_t>(h) * w;
      for (int c = 0; c < 3; ++c) {
        cv::Mat d = plane(dst + c * hw, h, w);
        // Default anchor (-1,-1) = kernel centre k/2; for even k that is the
        // lower-right of the two middle taps, as in cv2.blur.
        cv::blur(plane(src + c * hw, h, w), d, cv::Size(k, k), cv::Point(-1, -1), cv::BORDER_REFLECT_101);
      }
    });
  }
  std::string describe() const override { return "blur(k=" + std::to_string(spec_.k) + ")"; }
  bool is_random() const noexcept override { return false; }
};

class Gaussian final : public Operator {
 public:
  explicit Gaussian(OperatorSpec spec) : Operator(std::move(spec)) {}
  at::Tensor apply_opencv(const at::Tensor& x, const std::vector<RngKey>& keys) const override {
    const int k = spec_.k;
    const double sigma = spec_.sigma;
    return per_image(x, keys, [k, sigma](const float* src, float* dst, int h, int w, const RngKey&) {
      const std::size_t hw = static_cast<std::size_t>(h) * w;
      for (int c = 0; c < 3; ++c) {
        cv::Mat d = plane(dst + c * hw, h, w);
        // σ passed through unchanged so that σ=0 takes OpenCV's own rule
        // (including its fixed small-kernel tables for k <= 7).
        cv::GaussianBlur(plane(src + c * hw, h, w), d, cv::Size(k, k), sigma, sigma, cv::BORDER_REFLECT_101);
      }
    });
  }
  std::string describe() const override {
    return "gaussian(k=" + std::to_string(spec_.k) + ", sigma=" +
           (spec_.sigma > 0 ? fmt(spec_.sigma) : "0 -> " + fmt(opencv_gaussian_sigma(spec_.k))) + ")";
  }
  bool is_random() const noexcept override { return false; }
};

class Pixelate final : public Operator {
 public:
  explicit Pixelate(OperatorSpec spec) : Operator(std::move(spec)) {}
  at::Tensor apply_opencv(const at::Tensor& x, const std::vector<RngKey>& keys) const override {
    const int n = spec_.n;
    return per_image(x, keys, [n](const float* src, float* dst, int h, int w, const RngKey&) {
      const std::size_t hw = static_cast<std::size_t>(h) * w;
      const cv::Size small(std::max(1, w / n), std::max(1, h / n));
      cv::Mat tmp;
      for (int c = 0; c < 3; ++c) {
        // Bilinear down (samples, does not average: faithful to the paper's code), nearest up.
        cv::resize(plane(src + c * hw, h, w), tmp, small, 0, 0, cv::INTER_LINEAR);
        cv::Mat d = plane(dst + c * hw, h, w);
        cv::resize(tmp, d, cv::Size(w, h), 0, 0, cv::INTER_NEAREST);
      }
    });
  }
  std::string describe() const override { return "pixelate(n=" + std::to_string(spec_.n) + ")"; }
  bool is_random() const noexcept override { return false; }
};

std::string dp_describe(const OperatorSpec& s) {
  return "b=" + std::to_string(s.b) + ", m=" + fmt(s.m) + ", eps=" + fmt(s.eps) +
         ", laplace_scale=" + fmt(dp_laplace_scale(s.b, s.m, s.eps, s.dp_scale)) +
         (s.dp_scale == DpScale::kFan ? " [fan]" : " [authors]");
}

class DpPix final : public Operator {
 public:
  explicit DpPix(OperatorSpec spec) : Operator(std::move(spec)) {}
  at::Tensor apply_opencv(const at::Tensor& x, const std::vector<RngKey>& keys) const override {
    const int b = spec_.b;
    const double scale = dp_laplace_scale(spec_.b, spec_.m, spec_.eps, spec_.dp_scale);
    return per_image(x, keys, [b, scale](const float* src, float* dst, int h, int w, const RngKey& key) {
      CounterRng rng(key);
      dp_pix_image(src, dst, h, w, b, scale, rng);
    });
  }
  std::string describe() const override { return "dp-pix(" + dp_describe(spec_) + ")"; }
  bool is_random() const noexcept override { return true; }
};

class DpBlur final : public Operator {
 public:
  explicit DpBlur(OperatorSpec spec) : Operator(std::move(spec)) {}
  at::Tensor apply_opencv(const at::Tensor& x, const std::vector<RngKey>& keys) const override {
    const int b = spec_.b, k = spec_.k;
    const double sigma = spec_.sigma;
    const double scale = dp_laplace_scale(spec_.b, spec_.m, spec_.eps, spec_.dp_scale);
    return per_image(x, keys, [&](const float* src, float* dst, int h, int w, const RngKey& key) {
      const std::size_t hw = static_cast<std::size_t>(h) * w;
      std::vector<float> scratch(3 * hw);  // per image: images run in parallel
      CounterRng rng(key);
      dp_pix_image(src, scratch.data(), h, w, b, scale, rng);
      for (int c = 0; c < 3; ++c) {
        cv::Mat d = plane(dst + c * hw, h, w);
        cv::GaussianBlur(plane(scratch.data() + c * hw, h, w), d, cv::Size(k, k), sigma, sigma,
                         cv::BORDER_REFLECT_101);
      }
      // A normalised non-negative kernel keeps [0,1] up to rounding; clip that away.
      clip_plane(dst, 3 * hw);
    });
  }
  std::string describe() const override {
    return "dp-blur(" + dp_describe(spec_) + ", k=" + std::to_string(spec_.k) + ", sigma=" +
           (spec_.sigma > 0 ? fmt(spec_.sigma) : "0 -> " + fmt(opencv_gaussian_sigma(spec_.k))) + ")";
  }
  bool is_random() const noexcept override { return true; }
};

class Noise final : public Operator {
 public:
  explicit Noise(OperatorSpec spec) : Operator(std::move(spec)) {}
  at::Tensor apply_opencv(const at::Tensor& x, const std::vector<RngKey>& keys) const override {
    const double sigma = spec_.sigma;
    return per_image(x, keys, [sigma](const float* src, float* dst, int h, int w, const RngKey& key) {
      CounterRng rng(key);
      const std::size_t count = 3 * static_cast<std::size_t>(h) * w;  // CHW order = documented draw order
      for (std::size_t i = 0; i < count; ++i) dst[i] = clip01(src[i] + sigma * rng.normal());
    });
  }
  std::string describe() const override { return "noise(sigma=" + fmt(spec_.sigma) + ")"; }
  bool is_random() const noexcept override { return true; }
};

class Mask final : public Operator {
 public:
  explicit Mask(OperatorSpec spec) : Operator(std::move(spec)) {}
  at::Tensor apply_opencv(const at::Tensor& x, const std::vector<RngKey>& keys) const override {
    check_batch(x, keys.size());
    // No OpenCV involved: fill on x's own device.
    at::Tensor out = at::empty_like(x, at::MemoryFormat::Contiguous);
    for (int c = 0; c < 3; ++c) out.select(1, c).fill_(static_cast<double>(spec_.color[c]));
    return out;
  }
  std::string describe() const override {
    // The default rule is left out so that existing descriptions stay as they were.
    return "mask(color=" + fmt(spec_.color[0]) + "," + fmt(spec_.color[1]) + "," + fmt(spec_.color[2]) +
           (spec_.mask_rule == MaskRule::kPixel ? ", rule=pixel" : "") + ")";
  }
  bool is_random() const noexcept override { return false; }
};

}  // namespace

OpsPath parse_ops_path(std::string_view name) {
  if (name == "auto") return OpsPath::kAuto;
  if (name == "opencv") return OpsPath::kOpenCV;
  if (name == "aten") return OpsPath::kAten;
  bad("ops", std::string(name), "one of auto|opencv|aten");
}

const char* ops_path_name(OpsPath path) noexcept {
  return path == OpsPath::kAten ? "aten" : path == OpsPath::kOpenCV ? "opencv" : "auto";
}

bool use_aten(OpsPath path, const at::Device& device) noexcept {
  // auto: on the CPU the OpenCV path is faster for every operator (docs/benchmarks.md, "Selection
  // and operators") and keeps the engine's outputs byte-identical; elsewhere ATen avoids the round trip.
  if (path == OpsPath::kAuto) return !device.is_cpu();
  return path == OpsPath::kAten;
}

at::Tensor Operator::apply(const at::Tensor& x, const std::vector<RngKey>& keys) const {
  check_batch(x, keys.size());
  if (use_aten(spec_.ops, x.device())) return apply_aten(spec_, x, keys);
  return apply_opencv(x, keys);
}

MaskRule parse_mask_rule(std::string_view name) {
  if (name == "entry") return MaskRule::kEntry;
  if (name == "pixel") return MaskRule::kPixel;
  bad("mask-rule", std::string(name), "one of entry|pixel");
}

const char* mask_rule_name(MaskRule rule) noexcept { return rule == MaskRule::kPixel ? "pixel" : "entry"; }

RegionFallback parse_region_fallback(std::string_view name) {
  if (name == "box") return RegionFallback::kBox;
  if (name == "none") return RegionFallback::kNone;
  bad("region-fallback", std::string(name), "one of box|none");
}

const char* region_fallback_name(RegionFallback fallback) noexcept {
  return fallback == RegionFallback::kNone ? "none" : "box";
}

at::Tensor apply_mask_rule(const at::Tensor& mask, MaskRule rule) {
  if (mask.dim() != 4) throw std::invalid_argument("mask rule: expected an N×C×H×W selection");
  if (rule == MaskRule::kEntry) return mask;
  // The authors' EDI_Masking reads channel 0 of the entry mask and paints the whole pixel.
  return mask.narrow(1, 0, 1).expand_as(mask);
}

at::Tensor Operator::selection(const at::Tensor& mask) const {
  return apply_mask_rule(mask, spec_.name == "mask" ? spec_.mask_rule : MaskRule::kEntry);
}

OperatorSpec OperatorSpec::defaults(std::string_view name) {
  if (!is_known(name)) bad("operator", std::string(name), "one of " + operator_names());
  OperatorSpec s;
  s.name = std::string(name);
  if (name == "gaussian") s.k = 9;
  if (name == "dp-blur") s.k = 99;
  if (name == "noise") s.sigma = 0.1;
  return s;
}

void validate(const OperatorSpec& s) {
  const std::string& op = s.name;
  if (!is_known(op)) bad("operator", op, "one of " + operator_names());
  if (op == "blur") {
    check_int_min("k", s.k, 1);
  } else if (op == "gaussian") {
    check_odd_kernel(s.k);
    check_finite_nonneg("sigma", s.sigma);
  } else if (op == "pixelate") {
    check_int_min("n", s.n, 1);
  } else if (op == "dp-pix") {
    check_dp(s);
  } else if (op == "dp-blur") {
    check_dp(s);
    check_odd_kernel(s.k);
    check_finite_nonneg("sigma", s.sigma);
  } else if (op == "noise") {
    check_finite_nonneg("sigma", s.sigma);
  }
  if (s.mask_rule == MaskRule::kPixel && op != "mask")
    bad("mask-rule", "pixel", "entry with --operator " + op + " (the whole-pixel rule is the mask operator's)");
  if (op == "mask") {
    for (float v : s.color) {
      if (!(v >= 0.f && v <= 1.f))
        bad("color", fmt(s.color[0]) + "," + fmt(s.color[1]) + "," + fmt(s.color[2]),
            "three numbers in [0, 1] (R,G,B)");
    }
  }
}

double opencv_gaussian_sigma(int k) noexcept { return 0.3 * ((k - 1) * 0.5 - 1) + 0.8; }

double dp_laplace_scale(int b, double m, double eps, DpScale scale) noexcept {
  // Fan (2018): Laplace(0, 255·m/(b²ε)) on 0–255, i.e. m/(b²ε) on [0,1].
  const double unit = m / (static_cast<double>(b) * b * eps);
  return scale == DpScale::kFan ? unit : 255.0 * unit;
}

std::unique_ptr<Operator> make_operator(const OperatorSpec& spec) {
  validate(spec);
  const std::string& op = spec.name;
  if (op == "blur") return std::unique_ptr<Operator>(new BoxBlur(spec));
  if (op == "gaussian") return std::unique_ptr<Operator>(new Gaussian(spec));
  if (op == "pixelate") return std::unique_ptr<Operator>(new Pixelate(spec));
  if (op == "dp-pix") return std::unique_ptr<Operator>(new DpPix(spec));
  if (op == "dp-blur") return std::unique_ptr<Operator>(new DpBlur(spec));
  if (op == "noise") return std::unique_ptr<Operator>(new Noise(spec));
  return std::unique_ptr<Operator>(new Mask(spec));
}

const std::vector<OperatorInfo>& operator_registry() {
  static const std::vector<OperatorInfo> registry = {
      {"blur", "box filter k×k per channel (cv::blur, reflect-101 border)",
       {{"--k", "40", "kernel size, integer >= 1 (even k: OpenCV's default anchor)"}}},
      {"gaussian", "Gaussian blur k×k per channel (cv::GaussianBlur, reflect-101 border)",
       {{"--k", "9", "kernel size, odd integer >= 1"},
        {"--sigma", "0", "σ in px, >= 0; 0 = OpenCV's 0.3·((k−1)/2−1)+0.8"}}},
      {"pixelate", "bilinear downscale to (⌊W/n⌋, ⌊H/n⌋), nearest upscale back",
       {{"--n", "20", "block size, integer >= 1 (n > image side: 1×1)"}}},
      {"dp-pix", "Fan 2018: b×b block means + one Laplace sample per block and channel, clipped",
       {{"--b", "32", "block size, integer >= 1"},
        {"--m", "16", "sensitivity (pixels that may differ), > 0"},
        {"--eps", "100", "privacy budget ε, > 0 (inf: no noise)"},
        {"--dp-scale", "fan", "fan: scale m/(b²ε) on [0,1]; authors: 255·m/(b²ε) on [0,1]"}}},
      {"dp-blur", "Fan 2019: DP-Pix(b,m,ε) then Gaussian blur k×k",
       {{"--b", "32", "block size, integer >= 1"},
        {"--m", "16", "sensitivity, > 0"},
        {"--eps", "100", "privacy budget ε, > 0 (inf: no noise)"},
        {"--dp-scale", "fan", "fan | authors (see dp-pix)"},
        {"--k", "99", "Gaussian kernel size, odd integer >= 1"},
        {"--sigma", "0", "Gaussian σ in px, >= 0; 0 = OpenCV's rule"}}},
      {"noise", "additive Gaussian noise per entry, clipped to [0,1]",
       {{"--sigma", "0.1", "standard deviation on the [0,1] scale, >= 0"}}},
      {"mask", "constant colour: selected entries are set to it (--mask-rule pixel: whole pixels, the authors' rule)",
       {{"--color", "0,0,0", "R,G,B, each in [0, 1]"},
        {"--mask-rule", "entry", "entry: each selected entry | pixel: a pixel whose R entry is selected, all channels"}}},
  };
  return registry;
}

std::string operator_names() {
  std::string s;
  for (const char* n : kNames) s += (s.empty() ? "" : "|") + std::string(n);
  return s;
}

at::Tensor blend(const at::Tensor& x, const at::Tensor& mask, const at::Tensor& px) {
  if (x.dim() != 4 || x.size(1) != 3) throw std::invalid_argument("blend: x must be N×3×H×W");
  if (!x.is_floating_point()) throw std::invalid_argument("blend: x must be floating point");
  if (px.sizes() != x.sizes()) throw std::invalid_argument("blend: P(x) must have x's shape");
  if (mask.dim() != 4 || mask.size(0) != x.size(0) || (mask.size(1) != 1 && mask.size(1) != 3) ||
      mask.size(2) != x.size(2) || mask.size(3) != x.size(3))
    throw std::invalid_argument("blend: mask must be N×3×H×W or N×1×H×W like x");
  const at::Tensor p = px.to(x.device(), x.scalar_type());
  at::Tensor out;
  if (mask.scalar_type() == at::kBool) {
    out = at::where(mask.to(x.device()), p, x);
  } else {
    // lerp is exact at both ends (M=0 → x, M=1 → P(x)), unlike x + M·(P(x) − x).
    out = at::lerp(x, p, mask.to(x.device(), x.scalar_type()));
  }
  return out.clamp_(0.0, 1.0);
}

}  // namespace edi::perturb
