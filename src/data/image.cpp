#include "edi/data/image.hpp"

#include <ATen/ATen.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <system_error>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"

namespace edi::data {

namespace {

/// Resampling weights of one axis: for each output index, the first source
/// index and its normalised weights (PIL's ImagingResample, bilinear filter).
struct AxisWeights {
  std::vector<int> first;
  std::vector<std::vector<float>> weights;
};

AxisWeights triangle_weights(int in_size, int out_size, bool antialias) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = antialias ? std::max(scale, 1.0) : 1.0;
  const double support = 1.0 * filter_scale;  // triangle filter has support 1
  AxisWeights w;
  w.first.resize(out_size);
  w.weights.resize(out_size);
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    int lo = static_cast<int>(std::floor(center - support + 0.5));
    int hi = static_cast<int>(std::floor(center + support + 0.5));
    lo = std::max(lo, 0);
    hi = std::min(hi, in_size);
    std::vector<float> k;
    double total = 0.0;
    for (int i = lo; i < hi; ++i) {
      const double t = std::fabs((i - center + 0.5) / filter_scale);
      const double v = t < 1.0 ? 1.0 - t : 0.0;
      k.push_back(static_cast<float>(v));
      total += v;
    }
    if (total <= 0.0) {  // degenerate (cannot happen for in_size >= 1), keep nearest
      lo = std::min(static_cast<int>(center), in_size - 1);
      k.assign(1, 1.f);
      total = 1.0;
    }
    for (auto& v : k) v = static_cast<float>(v / total);
    w.first[o] = lo;
    w.weights[o] = std::move(k);
  }
  return w;
}

std::string reason_prefix(const std::filesystem::path& p) { return p.string() + ": "; }

/// Raw decode plus conversion to CV_32FC3 RGB in [0, 1].
cv::Mat decode_raw(const std::filesystem::path& path, int min_side) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (ec) throw DataError(reason_prefix(path) + "cannot read: " + ec.message());
  if (bytes == 0) throw DataError(reason_prefix(path) + "zero-byte file");
  const std::string data = edi::read_file(path);
  const cv::Mat buffer(1, static_cast<int>(data.size()), CV_8U, const_cast<char*>(data.data()));
  cv::Mat img;
  try {
    img = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw DataError(reason_prefix(path) + "not a decodable image (" + e.msg + ")");
  }
  if (img.empty()) throw DataError(reason_prefix(path) + "not a decodable image (unknown format or truncated)");
  if (img.cols < min_side || img.rows < min_side)
    throw DataError(reason_prefix(path) + "too small: " + std::to_string(img.cols) + "x" +
                    std::to_string(img.rows) + ", expected both sides >= " + std::to_string(min_side));
  double scale = 1.0;
  switch (img.depth()) {
    case CV_8U: scale = 1.0 / 255.0; break;
    case CV_16U: scale = 1.0 / 65535.0; break;
    case CV_32F: scale = 1.0; break;
    default:
      throw DataError(reason_prefix(path) + "unsupported pixel depth " + std::to_string(img.depth()));
  }
  cv::Mat rgb;
  switch (img.channels()) {
    case 1: cv::cvtColor(img, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(img, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(img, rgb, cv::COLOR_BGRA2RGB); break;  // alpha dropped, as PIL convert("RGB")
    default:
      throw DataError(reason_prefix(path) + "unsupported channel count " + std::to_string(img.channels()));
  }
  cv::Mat out;
  rgb.convertTo(out, CV_32FC3, scale);
  if (img.depth() == CV_32F) cv::min(cv::max(out, 0.0), 1.0, out);
  return out;
}

}  // namespace

ResizeMode parse_resize_mode(const std::string& text, const std::string& option) {
  if (text == "crop") return ResizeMode::kShorterSideCrop;
  if (text == "stretch") return ResizeMode::kStretch;
  if (text == "none") return ResizeMode::kNone;
  throw ConfigError("--" + option + " '" + text + "': expected one of crop, stretch, none");
}

cv::Mat resize_antialiased(const cv::Mat& src, cv::Size size) {
  CV_Assert(src.depth() == CV_32F && size.width > 0 && size.height > 0);
  if (src.size() == size) return src.clone();
  const int ch = src.channels();
  // Horizontal pass: src.rows × size.width.
  const AxisWeights wx = triangle_weights(src.cols, size.width, true);
  cv::Mat tmp(src.rows, size.width, src.type());
  for (int y = 0; y < src.rows; ++y) {
    const float* in = src.ptr<float>(y);
    float* out = tmp.ptr<float>(y);
    for (int x = 0; x < size.width; ++x) {
      const auto& k = wx.weights[x];
      const float* base = in + static_cast<std::ptrdiff_t>(wx.first[x]) * ch;
      for (int c = 0; c < ch; ++c) {
        float acc = 0.f;
        for (std::size_t i = 0; i < k.size(); ++i) acc += k[i] * base[i * ch + c];
        out[x * ch + c] = acc;
      }
    }
  }
  // Vertical pass.
  const AxisWeights wy = triangle_weights(src.rows, size.height, true);
  cv::Mat dst(size.height, size.width, src.type(), cv::Scalar::all(0));
  const int row_len = size.width * ch;
  for (int y = 0; y < size.height; ++y) {
    float* out = dst.ptr<float>(y);
    const auto& k = wy.weights[y];
    for (std::size_t i = 0; i < k.size(); ++i) {
      const float* in = tmp.ptr<float>(wy.first[y] + static_cast<int>(i));
      const float w = k[i];
      for (int j = 0; j < row_len; ++j) out[j] += w * in[j];
    }
  }
  return dst;
}

cv::Mat decode_image(const std::filesystem::path& path, const DecodeOptions& options) {
  cv::Mat img = decode_raw(path, options.min_side);
  if (options.size <= 0 || options.mode == ResizeMode::kNone) return img;
  const int s = options.size;
  auto resize = [&](const cv::Mat& m, cv::Size sz) {
    if (options.antialias) return resize_antialiased(m, sz);
    cv::Mat out;
    cv::resize(m, out, sz, 0, 0, cv::INTER_LINEAR);
    return out;
  };
  if (options.mode == ResizeMode::kStretch) return resize(img, {s, s});
  // Shorter side → s (torchvision rounds the longer side down: int(s * long / short)).
  cv::Size sz;
  if (img.cols <= img.rows)
    sz = {s, static_cast<int>(static_cast<long long>(s) * img.rows / img.cols)};
  else
    sz = {static_cast<int>(static_cast<long long>(s) * img.cols / img.rows), s};
  cv::Mat resized = resize(img, sz);
  // Centre crop as torchvision: top = round((H - s) / 2).
  const int left = static_cast<int>(std::lround((sz.width - s) / 2.0));
  const int top = static_cast<int>(std::lround((sz.height - s) / 2.0));
  return resized(cv::Rect(left, top, s, s)).clone();
}

cv::Size probe_image(const std::filesystem::path& path, int min_side) {
  return decode_raw(path, min_side).size();
}

at::Tensor images_to_tensor(const std::vector<cv::Mat>& images) {
  if (images.empty()) return at::empty({0, 3, 0, 0}, at::kFloat);
  const int h = images[0].rows, w = images[0].cols;
  at::Tensor out = at::empty({static_cast<long>(images.size()), 3, h, w}, at::kFloat);
  float* dst = out.data_ptr<float>();
  const std::size_t plane = static_cast<std::size_t>(h) * w;
  for (std::size_t n = 0; n < images.size(); ++n) {
    const cv::Mat& m = images[n];
    CV_Assert(m.type() == CV_32FC3 && m.rows == h && m.cols == w);
    float* base = dst + n * 3 * plane;
    for (int y = 0; y < h; ++y) {
      const float* row = m.ptr<float>(y);
      for (int x = 0; x < w; ++x) {
        const std::size_t i = static_cast<std::size_t>(y) * w + x;
        base[i] = row[3 * x];
        base[plane + i] = row[3 * x + 1];
        base[2 * plane + i] = row[3 * x + 2];
      }
    }
  }
  return out;
}

cv::Mat tensor_to_image(const at::Tensor& t) {
  at::Tensor chw = t.dim() == 4 ? t[0] : t;
  chw = chw.detach().to(at::kCPU, at::kFloat).contiguous();
  const int h = static_cast<int>(chw.size(1)), w = static_cast<int>(chw.size(2));
  cv::Mat out(h, w, CV_32FC3);
  const float* src = chw.data_ptr<float>();
  const std::size_t plane = static_cast<std::size_t>(h) * w;
  for (int y = 0; y < h; ++y) {
    float* row = out.ptr<float>(y);
    for (int x = 0; x < w; ++x) {
      const std::size_t i = static_cast<std::size_t>(y) * w + x;
      row[3 * x] = src[i];
      row[3 * x + 1] = src[plane + i];
      row[3 * x + 2] = src[2 * plane + i];
    }
  }
  return out;
}

void write_png(const std::filesystem::path& path, const cv::Mat& rgb, int bit_depth) {
  if (bit_depth != 8 && bit_depth != 16)
    throw ConfigError("png bit depth " + std::to_string(bit_depth) + ": expected 8 or 16");
  cv::Mat clipped, bgr, out;
  cv::min(cv::max(rgb, 0.0), 1.0, clipped);
  cv::cvtColor(clipped, bgr, cv::COLOR_RGB2BGR);
  // Explicit rounding: convertTo rounds half to even and saturates.
  bgr.convertTo(out, bit_depth == 8 ? CV_8UC3 : CV_16UC3, bit_depth == 8 ? 255.0 : 65535.0);
  std::vector<uchar> buf;
  if (!cv::imencode(".png", out, buf)) throw IoError(path.string() + ": PNG encoding failed");
  edi::write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
}

}  // namespace edi::data
