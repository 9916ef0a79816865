#include "edi/perturb/aten_ops.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace edi::perturb {

namespace {

at::Tensor upload_index(const std::vector<std::int64_t>& v, const at::Device& device) {
  return at::tensor(v, at::kLong).to(device);
}

/// x padded with reflect-101 borders along `dim` (2 = rows, 3 = columns).
at::Tensor pad_reflect101(const at::Tensor& x, int dim, std::int64_t before, std::int64_t after) {
  if (before == 0 && after == 0) return x;
  return x.index_select(dim, upload_index(reflect101_index(x.size(dim), before, after), x.device()));
}

/// Sums of `k` consecutive entries along `dim` of the (already padded) float64 `xp`: out length
/// xp.size(dim) - k + 1, by one cumulative sum and a difference.
at::Tensor window_sums(const at::Tensor& xp, int dim, std::int64_t k) {
  const std::int64_t len = xp.size(dim) - k + 1;
  std::vector<std::int64_t> pad(static_cast<std::size_t>(2 * (xp.dim() - dim)), 0);
  pad[pad.size() - 2] = 1;  // one leading zero along `dim`
  const at::Tensor cs = at::constant_pad_nd(xp.cumsum(dim), pad, 0.0);
  return cs.narrow(dim, k, len) - cs.narrow(dim, 0, len);
}

/// cv::blur(k×k, default anchor k/2, BORDER_REFLECT_101): float64 window sums × 1/(k·k), to float.
at::Tensor box_blur(const at::Tensor& x, int k) {
  const std::int64_t a = k / 2, b = k - 1 - a;
  at::Tensor s = window_sums(pad_reflect101(x.to(at::kDouble), 3, a, b), 3, k);
  s = window_sums(pad_reflect101(s, 2, a, b), 2, k);
  return (s * (1.0 / (static_cast<double>(k) * k))).to(at::kFloat);
}

/// Separable filter with the 1-D float kernel `taps` (odd length), rows then columns, reflect-101.
at::Tensor separable(const at::Tensor& x, const std::vector<float>& taps) {
  const auto k = static_cast<std::int64_t>(taps.size()), r = k / 2;
  at::Tensor out = x;
  for (int dim : {3, 2}) {
    const at::Tensor xp = pad_reflect101(out, dim, r, r);
    const std::int64_t len = out.size(dim);
    at::Tensor acc = xp.narrow(dim, 0, len) * static_cast<double>(taps[0]);
    for (std::int64_t j = 1; j < k; ++j) acc.add_(xp.narrow(dim, j, len), static_cast<double>(taps[static_cast<std::size_t>(j)]));
    out = acc;
  }
  return out;
}

/// The float32 kernel cv::GaussianBlur uses for size k and σ (σ <= 0: OpenCV's rule and tables).
std::vector<float> gaussian_taps(int k, double sigma) {
  const cv::Mat kernel = cv::getGaussianKernel(k, sigma, CV_32F);
  return std::vector<float>(kernel.ptr<float>(), kernel.ptr<float>() + k);
}

at::Tensor gaussian(const at::Tensor& x, int k, double sigma) {
  if (k == 1) return x.clone();
  return separable(x, gaussian_taps(k, sigma));
}

/// cv::resize INTER_LINEAR coordinates along one axis (src -> dst samples): the two
/// source indices and the float weights (1 - f, f) of each output sample, as OpenCV computes them.
struct LinearAxis {
  std::vector<std::int64_t> i0, i1;
  std::vector<float> w0, w1;
};

LinearAxis linear_axis(int src, int dst) {
  LinearAxis ax;
  const double inv_scale = static_cast<double>(dst) / src;
  const double scale = 1.0 / inv_scale;
  for (int d = 0; d < dst; ++d) {
    float f = static_cast<float>((d + 0.5) * scale - 0.5);
    int s = static_cast<int>(std::floor(f));
    f -= static_cast<float>(s);
    if (s < 0) f = 0.f, s = 0;
    if (s >= src - 1) f = 0.f, s = src - 1;
    ax.i0.push_back(s);
    ax.i1.push_back(std::min(s + 1, src - 1));
    ax.w0.push_back(1.f - f);
    ax.w1.push_back(f);
  }
  return ax;
}

/// cv::resize INTER_NEAREST source index of each output sample.
std::vector<std::int64_t> nearest_axis(int src, int dst) {
  const double inv_scale = static_cast<double>(dst) / src;
  const double ifx = 1.0 / inv_scale;
  std::vector<std::int64_t> idx;
  for (int d = 0; d < dst; ++d) idx.push_back(std::min(static_cast<int>(std::floor(d * ifx)), src - 1));
  return idx;
}

/// One linear-resize pass along `dim`: x[i0]·w0 + x[i1]·w1, in float.
at::Tensor linear_pass(const at::Tensor& x, int dim, const LinearAxis& ax) {
  std::vector<std::int64_t> shape(4, 1);
  shape[static_cast<std::size_t>(dim)] = static_cast<std::int64_t>(ax.w0.size());
  const at::Device dev = x.device();
  const at::Tensor w0 = at::tensor(ax.w0, at::kFloat).view(shape).to(dev);
  const at::Tensor w1 = at::tensor(ax.w1, at::kFloat).view(shape).to(dev);
  return x.index_select(dim, upload_index(ax.i0, dev)) * w0 + x.index_select(dim, upload_index(ax.i1, dev)) * w1;
}

/// Bilinear down to (⌊W/n⌋, ⌊H/n⌋) (at least 1), nearest back up: horizontal then vertical, as OpenCV.
at::Tensor pixelate(const at::Tensor& x, int n) {
  const int h = static_cast<int>(x.size(2)), w = static_cast<int>(x.size(3));
  const int sw = std::max(1, w / n), sh = std::max(1, h / n);
  at::Tensor small = linear_pass(x, 3, linear_axis(w, sw));
  small = linear_pass(small, 2, linear_axis(h, sh));
  const at::Device dev = x.device();
  return small.index_select(2, upload_index(nearest_axis(sh, h), dev))
      .index_select(3, upload_index(nearest_axis(sw, w), dev))
      .contiguous();
}

/// Laplace noise per image, channel, block row, block column (the documented draw order), float64.
at::Tensor block_noise(const std::vector<RngKey>& keys, std::int64_t nby, std::int64_t nbx, double scale) {
  const auto n = static_cast<std::int64_t>(keys.size());
  at::Tensor noise = at::empty({n, 3, nby, nbx}, at::kDouble);
  double* p = noise.data_ptr<double>();
  const std::int64_t per = 3 * nby * nbx;
  for (std::int64_t i = 0; i < n; ++i) {
    CounterRng rng(keys[static_cast<std::size_t>(i)]);
    for (std::int64_t j = 0; j < per; ++j) p[i * per + j] = rng.laplace(scale);
  }
  return noise;
}

/// DP-Pix: float64 b×b block means (edge blocks partial) + host-drawn Laplace noise, clipped, spread back.
at::Tensor dp_pix(const at::Tensor& x, int b, double scale, const std::vector<RngKey>& keys) {
  const std::int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  const std::int64_t nby = (h + b - 1) / b, nbx = (w + b - 1) / b;
  const at::Device dev = x.device();
  const at::Tensor xp = at::constant_pad_nd(x.to(at::kDouble), {0, nbx * b - w, 0, nby * b - h}, 0.0);
  const at::Tensor sums = xp.view({n, 3, nby, b, nbx, b}).sum({3, 5});
  at::Tensor area = at::empty({nby, nbx}, at::kDouble);
  for (std::int64_t by = 0; by < nby; ++by) {
    for (std::int64_t bx = 0; bx < nbx; ++bx) {
      area[by][bx] = static_cast<double>(std::min(h, (by + 1) * b) - by * b) *
                     static_cast<double>(std::min(w, (bx + 1) * b) - bx * b);
    }
  }
  const at::Tensor noise = block_noise(keys, nby, nbx, scale).to(dev);
  // Clip, never wrap (as the OpenCV path: clip01 of the float64 sum, then float).
  const at::Tensor v = (sums / area.to(dev) + noise).clamp(0.0, 1.0).to(at::kFloat);
  std::vector<std::int64_t> row(static_cast<std::size_t>(h)), col(static_cast<std::size_t>(w));
  for (std::int64_t y = 0; y < h; ++y) row[static_cast<std::size_t>(y)] = y / b;
  for (std::int64_t c = 0; c < w; ++c) col[static_cast<std::size_t>(c)] = c / b;
  return v.index_select(2, upload_index(row, dev)).index_select(3, upload_index(col, dev)).contiguous();
}

/// sigma·N(0,1) per entry in CHW order per image, float64 (the same products as the OpenCV path).
at::Tensor entry_noise(const std::vector<RngKey>& keys, std::int64_t per_image, double sigma) {
  const auto n = static_cast<std::int64_t>(keys.size());
  at::Tensor noise = at::empty({n, per_image}, at::kDouble);
  double* p = noise.data_ptr<double>();
  at::parallel_for(0, n, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      CounterRng rng(keys[static_cast<std::size_t>(i)]);
      for (std::int64_t j = 0; j < per_image; ++j) p[i * per_image + j] = sigma * rng.normal();
    }
  });
  return noise;
}

}  // namespace

std::vector<std::int64_t> reflect101_index(std::int64_t len, std::int64_t before, std::int64_t after) {
  std::vector<std::int64_t> idx;
  idx.reserve(static_cast<std::size_t>(before + len + after));
  for (std::int64_t i = -before; i < len + after; ++i) {
    std::int64_t p = i;
    if (len == 1) {
      p = 0;
    } else {
      // cv::borderInterpolate(p, len, BORDER_REFLECT_101), including pads wider than the row.
      while (p < 0 || p >= len) p = p < 0 ? -p : 2 * (len - 1) - p;
    }
    idx.push_back(p);
  }
  return idx;
}

at::Tensor apply_aten(const OperatorSpec& spec, const at::Tensor& x, const std::vector<RngKey>& keys) {
  if (x.dim() != 4 || x.size(1) != 3) throw std::invalid_argument("perturb: expected an N×3×H×W tensor");
  if (x.scalar_type() != at::kFloat) throw std::invalid_argument("perturb: expected a float32 tensor");
  if (static_cast<std::size_t>(x.size(0)) != keys.size())
    throw std::invalid_argument("perturb: " + std::to_string(x.size(0)) + " images but " +
                                std::to_string(keys.size()) + " RNG keys");
  const at::Tensor in = x.detach().contiguous();
  const std::string& op = spec.name;
  if (op == "blur") return box_blur(in, spec.k);
  if (op == "gaussian") return gaussian(in, spec.k, spec.sigma).contiguous();
  if (op == "pixelate") return pixelate(in, spec.n);
  const double scale = dp_laplace_scale(spec.b, spec.m, spec.eps, spec.dp_scale);
  if (op == "dp-pix") return dp_pix(in, spec.b, scale, keys);
  // A normalised non-negative kernel keeps [0,1] up to rounding; clip that away (as the OpenCV path).
  if (op == "dp-blur") return gaussian(dp_pix(in, spec.b, scale, keys), spec.k, spec.sigma).clamp_(0.0, 1.0).contiguous();
  if (op == "noise") {
    const at::Tensor noise = entry_noise(keys, in[0].numel(), spec.sigma).to(in.device()).view(in.sizes());
    return (in.to(at::kDouble) + noise).clamp_(0.0, 1.0).to(at::kFloat);
  }
  if (op == "mask") {
    const at::Tensor color = at::tensor(std::vector<float>(spec.color.begin(), spec.color.end()), at::kFloat);
    return color.view({1, 3, 1, 1}).to(in.device()).expand(in.sizes()).contiguous();
  }
  throw std::invalid_argument("perturb: no ATen implementation of operator " + op);
}

}  // namespace edi::perturb
