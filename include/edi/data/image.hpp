#pragma once
/// \file Image decoding to the one pixel format every stage uses: float32 RGB
/// in [0, 1]. Odd inputs (grayscale, RGBA, 16-bit) are converted; anything that
/// cannot be used raises DataError with the reason, which callers quarantine.
#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace edi::data {

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

/// Decode only the header-level facts needed for the manifest: width, height.
/// Performs a full decode (OpenCV has no header-only API) and applies the same
/// checks as decode_image.
cv::Size probe_image(const std::filesystem::path& path, int min_side);

/// Separable resampling with PIL's bilinear (triangle) filter: when shrinking,
/// the filter support grows with the scale factor, so every source pixel
/// contributes (antialiasing); when enlarging it is plain bilinear. Works on
/// CV_32F images with any channel count.
cv::Mat resize_antialiased(const cv::Mat& src, cv::Size size);

/// Stack HWC float RGB images (all the same size) into N×3×H×W float32.
at::Tensor images_to_tensor(const std::vector<cv::Mat>& images);

/// One N×3×H×W (or 3×H×W) float tensor image back to CV_32FC3 RGB.
cv::Mat tensor_to_image(const at::Tensor& chw);

/// Write float RGB in [0, 1] as a lossless 8-bit (or 16-bit) PNG, atomically.
void write_png(const std::filesystem::path& path, const cv::Mat& rgb, int bit_depth = 8);

}  // namespace edi::data
