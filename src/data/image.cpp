#include "edi/data/image.hpp"

#include <ATen/ATen.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <system_error>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"

namespace edi::data {

namespace {

/// Resampling weights of one axis: for each output index in [begin, end),
/// the first source index and its normalised weights (PIL's ImagingResample,
/// bilinear filter). Index o - begin holds output o.
struct AxisWeights {
  std::vector<int> first;
  std::vector<std::vector<float>> weights;
};

AxisWeights triangle_weights(int in_size, int out_size, bool antialias, int begin, int end) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = antialias ? std::max(scale, 1.0) : 1.0;
  const double support = 1.0 * filter_scale;  // triangle filter has support 1
  AxisWeights w;
  w.first.resize(static_cast<std::size_t>(end - begin));
  w.weights.resize(static_cast<std::size_t>(end - begin));
  for (int o = begin; o < end; ++o) {
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
    w.first[static_cast<std::size_t>(o - begin)] = lo;
    w.weights[static_cast<std::size_t>(o - begin)] = std::move(k);
  }
  return w;
}

/// Source index range [lo, hi) that the weights read.
std::pair<int, int> weights_span(const AxisWeights& w) {
  int lo = std::numeric_limits<int>::max(), hi = 0;
  for (std::size_t i = 0; i < w.first.size(); ++i) {
    lo = std::min(lo, w.first[i]);
    hi = std::max(hi, w.first[i] + static_cast<int>(w.weights[i].size()));
  }
  return {lo == std::numeric_limits<int>::max() ? 0 : lo, hi};
}

std::string reason_prefix(const std::filesystem::path& p) { return p.string() + ": "; }

std::mutex limits_mutex;
DecodeLimits current_limits;

std::uint32_t be32(const std::string& b, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8) | static_cast<unsigned char>(b[at + 3]);
}
std::uint32_t be16(const std::string& b, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 8) | static_cast<unsigned char>(b[at + 1]);
}
std::uint32_t le16(const std::string& b, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8) | static_cast<unsigned char>(b[at]);
}
std::uint32_t le32(const std::string& b, std::size_t at) { return le16(b, at) | (le16(b, at + 2) << 16); }
std::uint32_t le24(const std::string& b, std::size_t at) {
  return le16(b, at) | (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16);
}

cv::Size clamp_size(std::uint64_t w, std::uint64_t h) {
  const std::uint64_t cap = static_cast<std::uint64_t>(std::numeric_limits<int>::max());
  return {static_cast<int>(std::min(w, cap)), static_cast<int>(std::min(h, cap))};
}

std::optional<cv::Size> jpeg_size(const std::string& b) {
  std::size_t i = 2;
  while (i + 4 <= b.size()) {
    if (static_cast<unsigned char>(b[i]) != 0xFF) return std::nullopt;
    const unsigned char marker = static_cast<unsigned char>(b[i + 1]);
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // no length
      i += 2;
      continue;
    }
    const std::uint32_t len = be16(b, i + 2);
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (i + 9 > b.size()) return std::nullopt;
      return clamp_size(be16(b, i + 7), be16(b, i + 5));
    }
    if (len < 2) return std::nullopt;
    i += 2 + len;
  }
  return std::nullopt;
}

std::optional<cv::Size> tiff_size(const std::string& b) {
  const bool le = b[0] == 'I';
  auto u16 = [&](std::size_t at) { return le ? le16(b, at) : be16(b, at); };
  auto u32 = [&](std::size_t at) { return le ? le32(b, at) : be32(b, at); };
  const std::size_t ifd = u32(4);
  if (ifd + 2 > b.size()) return std::nullopt;
  const std::size_t n = u16(ifd);
  std::uint64_t w = 0, h = 0;
  for (std::size_t k = 0; k < n && ifd + 2 + 12 * (k + 1) <= b.size(); ++k) {
    const std::size_t e = ifd + 2 + 12 * k;
    const std::uint32_t tag = u16(e), type = u16(e + 2);
    const std::uint64_t v = type == 3 ? u16(e + 8) : u32(e + 8);
    if (tag == 256) w = v;
    if (tag == 257) h = v;
  }
  if (w == 0 || h == 0) return std::nullopt;
  return clamp_size(w, h);
}

std::optional<cv::Size> pnm_size(const std::string& b) {
  std::size_t i = 2;
  std::uint64_t v[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    while (i < b.size() && (std::isspace(static_cast<unsigned char>(b[i])) || b[i] == '#')) {
      if (b[i] == '#')
        while (i < b.size() && b[i] != '\n') ++i;
      else
        ++i;
    }
    if (i >= b.size() || !std::isdigit(static_cast<unsigned char>(b[i]))) return std::nullopt;
    while (i < b.size() && std::isdigit(static_cast<unsigned char>(b[i])) && v[k] < (1ull << 40)) v[k] = v[k] * 10 + static_cast<unsigned>(b[i++] - '0');
  }
  return clamp_size(v[0], v[1]);
}

std::optional<cv::Size> webp_size(const std::string& b) {
  if (b.size() < 30) return std::nullopt;
  const std::string chunk = b.substr(12, 4);
  if (chunk == "VP8 ") return clamp_size(le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF);
  if (chunk == "VP8L") {
    const std::uint32_t bits = le32(b, 21);
    return clamp_size(1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF));
  }
  if (chunk == "VP8X") return clamp_size(1 + le24(b, 24), 1 + le24(b, 27));
  return std::nullopt;
}

/// Size limits applied to the header's dimensions before any decoding.
void check_dimensions(const std::filesystem::path& path, cv::Size size, const DecodeLimits& lim) {
  const std::uint64_t w = static_cast<std::uint64_t>(std::max(size.width, 0)), h = static_cast<std::uint64_t>(std::max(size.height, 0));
  const std::string dims = std::to_string(w) + "x" + std::to_string(h);
  if (w == 0 || h == 0) throw DataError(reason_prefix(path) + "image header gives an empty size " + dims);
  if (w * h > lim.max_pixels)
    throw DataError(reason_prefix(path) + "too many pixels: " + dims + " = " + std::to_string(w * h) + " pixels, limit " +
                    std::to_string(lim.max_pixels) + " (raise with --max-megapixels)");
  const double aspect = static_cast<double>(std::max(w, h)) / static_cast<double>(std::min(w, h));
  if (aspect > lim.max_aspect) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g:1, limit %.4g:1", aspect, lim.max_aspect);
    throw DataError(reason_prefix(path) + "aspect ratio too extreme: " + dims + " = " + buf);
  }
}

/// Read the file after checking its type and size, check the header's
/// dimensions, then decode (8/16-bit or float, 1, 3 or 4 channels, as stored).
cv::Mat decode_checked(const std::filesystem::path& path, int min_side) {
  const DecodeLimits lim = decode_limits();
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec) throw DataError(reason_prefix(path) + "cannot read: " + ec.message());
  if (!std::filesystem::is_regular_file(st)) throw DataError(reason_prefix(path) + "not a regular file");
  const auto bytes = std::filesystem::file_size(path, ec);
  if (ec) throw DataError(reason_prefix(path) + "cannot read: " + ec.message());
  if (bytes == 0) throw DataError(reason_prefix(path) + "zero-byte file");
  const std::uint64_t file_cap = std::min<std::uint64_t>(lim.max_file_bytes, (1ull << 31) - 1);
  if (bytes > file_cap)
    throw DataError(reason_prefix(path) + "file too large: " + std::to_string(bytes) + " bytes, limit " + std::to_string(file_cap));
  const std::string data = edi::read_file(path);
  const std::optional<cv::Size> header = header_size(data);
  if (!header)
    throw DataError(reason_prefix(path) + "not a decodable image (unknown format: expected PNG, JPEG, BMP, WebP, TIFF or PBM/PGM/PPM)");
  check_dimensions(path, *header, lim);
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
  // The header may lie: the decoded size must obey the same limits.
  check_dimensions(path, img.size(), lim);
  if (img.depth() != CV_8U && img.depth() != CV_16U && img.depth() != CV_32F)
    throw DataError(reason_prefix(path) + "unsupported pixel depth " + std::to_string(img.depth()));
  if (img.channels() != 1 && img.channels() != 3 && img.channels() != 4)
    throw DataError(reason_prefix(path) + "unsupported channel count " + std::to_string(img.channels()));
  return img;
}

/// A decoded image (or a part of it) to CV_32FC3 RGB in [0, 1]; per pixel, so
/// converting a part equals the same part of the converted whole.
cv::Mat to_rgb_float(const cv::Mat& img) {
  const double scale = img.depth() == CV_8U ? 1.0 / 255.0 : img.depth() == CV_16U ? 1.0 / 65535.0 : 1.0;
  cv::Mat rgb;
  switch (img.channels()) {
    case 1: cv::cvtColor(img, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(img, rgb, cv::COLOR_BGR2RGB); break;
    default: cv::cvtColor(img, rgb, cv::COLOR_BGRA2RGB); break;  // alpha dropped, as PIL convert("RGB")
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

void set_decode_limits(const DecodeLimits& limits) {
  std::lock_guard<std::mutex> lock(limits_mutex);
  current_limits = limits;
}

DecodeLimits decode_limits() {
  std::lock_guard<std::mutex> lock(limits_mutex);
  return current_limits;
}

std::optional<cv::Size> header_size(const std::string& b) {
  if (b.size() >= 24 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0 && b.compare(12, 4, "IHDR") == 0)
    return clamp_size(be32(b, 16), be32(b, 20));
  if (b.size() >= 4 && static_cast<unsigned char>(b[0]) == 0xFF && static_cast<unsigned char>(b[1]) == 0xD8) return jpeg_size(b);
  if (b.size() >= 26 && b[0] == 'B' && b[1] == 'M') {
    if (le32(b, 14) == 12) return clamp_size(le16(b, 18), le16(b, 20));
    const auto h = static_cast<std::int32_t>(le32(b, 22));
    return clamp_size(le32(b, 18), static_cast<std::uint64_t>(h < 0 ? -static_cast<std::int64_t>(h) : h));
  }
  if (b.size() >= 16 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0) return webp_size(b);
  if (b.size() >= 8 && (b.compare(0, 4, std::string("II*\0", 4)) == 0 || b.compare(0, 4, std::string("MM\0*", 4)) == 0))
    return tiff_size(b);
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') return pnm_size(b);
  return std::nullopt;
}

cv::Rect resize_source_window(cv::Size full_size, cv::Size size, cv::Rect roi) {
  const auto [x0, x1] = weights_span(triangle_weights(full_size.width, size.width, true, roi.x, roi.x + roi.width));
  const auto [y0, y1] = weights_span(triangle_weights(full_size.height, size.height, true, roi.y, roi.y + roi.height));
  return {x0, y0, x1 - x0, y1 - y0};
}

cv::Mat resize_antialiased_window(const cv::Mat& src, cv::Point origin, cv::Size full_size, cv::Size size, cv::Rect roi) {
  CV_Assert(src.depth() == CV_32F && size.width > 0 && size.height > 0);
  CV_Assert(roi.x >= 0 && roi.y >= 0 && roi.x + roi.width <= size.width && roi.y + roi.height <= size.height);
  if (full_size == size && origin == cv::Point(0, 0) && src.size() == full_size) return src(roi).clone();
  const int ch = src.channels();
  const AxisWeights wx = triangle_weights(full_size.width, size.width, true, roi.x, roi.x + roi.width);
  const AxisWeights wy = triangle_weights(full_size.height, size.height, true, roi.y, roi.y + roi.height);
  const auto [y_lo, y_hi] = weights_span(wy);
  const auto [x_lo, x_hi] = weights_span(wx);
  CV_Assert(x_lo >= origin.x && x_hi <= origin.x + src.cols && y_lo >= origin.y && y_hi <= origin.y + src.rows);
  // Horizontal pass over the source rows the window needs: (y_hi - y_lo) × roi.width.
  cv::Mat tmp(y_hi - y_lo, roi.width, src.type());
  for (int y = y_lo; y < y_hi; ++y) {
    const float* in = src.ptr<float>(y - origin.y);
    float* out = tmp.ptr<float>(y - y_lo);
    for (int x = 0; x < roi.width; ++x) {
      const auto& k = wx.weights[static_cast<std::size_t>(x)];
      const float* base = in + static_cast<std::ptrdiff_t>(wx.first[static_cast<std::size_t>(x)] - origin.x) * ch;
      for (int c = 0; c < ch; ++c) {
        float acc = 0.f;
        for (std::size_t i = 0; i < k.size(); ++i) acc += k[i] * base[i * ch + c];
        out[x * ch + c] = acc;
      }
    }
  }
  // Vertical pass.
  cv::Mat dst(roi.height, roi.width, src.type(), cv::Scalar::all(0));
  const int row_len = roi.width * ch;
  for (int y = 0; y < roi.height; ++y) {
    float* out = dst.ptr<float>(y);
    const auto& k = wy.weights[static_cast<std::size_t>(y)];
    for (std::size_t i = 0; i < k.size(); ++i) {
      const float* in = tmp.ptr<float>(wy.first[static_cast<std::size_t>(y)] - y_lo + static_cast<int>(i));
      const float w = k[i];
      for (int j = 0; j < row_len; ++j) out[j] += w * in[j];
    }
  }
  return dst;
}

cv::Mat resize_antialiased(const cv::Mat& src, cv::Size size) {
  CV_Assert(src.depth() == CV_32F && size.width > 0 && size.height > 0);
  if (src.size() == size) return src.clone();
  return resize_antialiased_window(src, {0, 0}, src.size(), size, cv::Rect(0, 0, size.width, size.height));
}

cv::Mat decode_image(const std::filesystem::path& path, const DecodeOptions& options) {
  const cv::Mat raw = decode_checked(path, options.min_side);
  if (options.size <= 0 || options.mode == ResizeMode::kNone) return to_rgb_float(raw);
  const int s = options.size;
  auto resize = [&](const cv::Mat& m, cv::Size sz) {
    if (options.antialias) return resize_antialiased(m, sz);
    cv::Mat out;
    cv::resize(m, out, sz, 0, 0, cv::INTER_LINEAR);
    return out;
  };
  if (options.mode == ResizeMode::kStretch) return resize(to_rgb_float(raw), {s, s});
  // Shorter side → s (torchvision rounds the longer side down: int(s * long / short)).
  cv::Size sz;
  if (raw.cols <= raw.rows)
    sz = {s, static_cast<int>(static_cast<long long>(s) * raw.rows / raw.cols)};
  else
    sz = {static_cast<int>(static_cast<long long>(s) * raw.cols / raw.rows), s};
  // Centre crop as torchvision: top = round((H - s) / 2).
  const int left = static_cast<int>(std::lround((sz.width - s) / 2.0));
  const int top = static_cast<int>(std::lround((sz.height - s) / 2.0));
  const cv::Rect roi(left, top, s, s);
  if (!options.antialias) {
    cv::Mat resized = resize(to_rgb_float(raw), sz);
    return resized(roi).clone();
  }
  if (sz == raw.size()) return to_rgb_float(raw)(roi).clone();
  // Crop in source coordinates first: only the pixels the window reads are
  // converted and resampled (a 16×1,048,576 strip never becomes 224×14.7M floats).
  const cv::Rect window = resize_source_window(raw.size(), sz, roi);
  return resize_antialiased_window(to_rgb_float(raw(window)), window.tl(), raw.size(), sz, roi);
}

cv::Size probe_image(const std::filesystem::path& path, int min_side) {
  return decode_checked(path, min_side).size();
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
