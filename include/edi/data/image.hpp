#pragma once
/// \file Image decoding to the one pixel format every stage uses: float32 RGB
/// in [0, 1]. Odd inputs (grayscale, RGBA, 16-bit) are converted; anything that
/// cannot be used raises DataError with the reason, which callers quarantine.
#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace edi::data {

/// Caps that keep a hostile file ("image bomb") from exhausting memory. They
/// are checked on the file size and on the dimensions read from the header,
/// before anything is decoded; a file over a cap raises DataError (callers
/// quarantine it). OpenCV's own limit (OPENCV_IO_MAX_IMAGE_PIXELS) is read
/// once when the library is loaded, so setting it at start-up has no effect:
/// these checks are the limit.
struct DecodeLimits {
  std::uint64_t max_pixels = 100'000'000;          ///< width × height (100 MP)
  std::uint64_t max_file_bytes = 1ull << 30;       ///< 1 GiB; never above 2 GiB − 1 (OpenCV's buffer index is an int)
  double max_aspect = 16.0;                        ///< longer side / shorter side
};
/// Process-wide limits (set once at start-up by the CLI; the defaults above otherwise).
void set_decode_limits(const DecodeLimits& limits);
DecodeLimits decode_limits();

/// Width and height read from the file header (PNG, JPEG, BMP, WebP, TIFF,
/// PBM/PGM/PPM), or nothing when the format is not one of these.
std::optional<cv::Size> header_size(const std::string& bytes);

/// How a decoded image is brought to the model size.
enum class ResizeMode {
  kShorterSideCrop,  ///< shorter side → size, then centre crop (torchvision Resize+CenterCrop)
  kStretch,          ///< both sides → size, aspect ratio not kept
  kNone,             ///< keep the decoded size
};

struct DecodeOptions {
  int size = 0;                                  ///< target side; 0 = keep decoded size
  ResizeMode mode = ResizeMode::kShorterSideCrop;
  bool antialias = true;                         ///< PIL-like triangle filter when downscaling
  int min_side = 16;                             ///< smaller originals are rejected ("too small")
};

/// Parse "crop" / "stretch" / "none"; throws ConfigError naming `option`.
ResizeMode parse_resize_mode(const std::string& text, const std::string& option);

/// Decode `path` to CV_32FC3 RGB in [0, 1] at the requested size. Throws
/// DataError("<path>: <reason>") for zero-byte, unreadable, truncated,
/// non-image or too-small files.
cv::Mat decode_image(const std::filesystem::path& path, const DecodeOptions& options);

/// Decode only the facts needed for the manifest: width, height. Performs a
/// full decode (to prove the file is readable) but no float conversion, and
/// applies the same checks as decode_image.
cv::Size probe_image(const std::filesystem::path& path, int min_side);

/// Separable resampling with PIL's bilinear (triangle) filter: when shrinking,
/// the filter support grows with the scale factor, so every source pixel
/// contributes (antialiasing); when enlarging it is plain bilinear. Works on
/// CV_32F images with any channel count.
cv::Mat resize_antialiased(const cv::Mat& src, cv::Size size);

/// The window `roi` of resize_antialiased(full, size), computed from `src`,
/// which holds the pixels of `full` (of size `full_size`) starting at
/// `origin`. Bit-identical to resizing the whole image and cropping, but only
/// the window is ever allocated.
cv::Mat resize_antialiased_window(const cv::Mat& src, cv::Point origin, cv::Size full_size, cv::Size size, cv::Rect roi);
/// The source pixels that resize_antialiased_window reads for `roi`.
cv::Rect resize_source_window(cv::Size full_size, cv::Size size, cv::Rect roi);

/// Stack HWC float RGB images (all the same size) into N×3×H×W float32.
at::Tensor images_to_tensor(const std::vector<cv::Mat>& images);

/// One N×3×H×W (or 3×H×W) float tensor image back to CV_32FC3 RGB.
cv::Mat tensor_to_image(const at::Tensor& chw);

/// Write float RGB in [0, 1] as a lossless 8-bit (or 16-bit) PNG, atomically.
void write_png(const std::filesystem::path& path, const cv::Mat& rgb, int bit_depth = 8);

}  // namespace edi::data
