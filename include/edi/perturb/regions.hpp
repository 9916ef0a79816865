#pragma once
/// \file Conventional face-region baselines: mask the eyes, the mouth or both
/// with a colour, found with OpenCV Haar cascades (Debian's opencv-data).
///
/// Unlike the authors' code (absolute pixel windows and a 140 px eye radius at
/// ~1000 px), every region here is sized relative to the detected face box, so
/// the same settings work at 64, 224 or 1000 px. Debian ships no mouth cascade
/// (no haarcascade_mcs_mouth.xml): the mouth is the smile cascade's box in the
/// lower face when it fires, else a face-relative default box. When no face is
/// found, a default face box for aligned crops is used and the result says so.
/// With RegionFallback::kNone (`--region-fallback none`) nothing is drawn for a
/// face or part that is not detected, as in the authors' code.
#include <ATen/ATen.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core/types.hpp>

#include "edi/perturb/operators.hpp"

namespace edi::perturb {

/// Which parts to mask.
enum class Region { kEyes, kMouth, kEyesMouth };

/// "eyes" | "mouth" | "eyes-mouth"; throws ConfigError naming `--region` otherwise.
Region parse_region(std::string_view name);
/// Inverse of parse_region.
std::string region_name(Region region);

/// Default Haar cascade directory of Debian's opencv-data.
inline constexpr const char* kDefaultCascadeDir = "/usr/share/opencv4/haarcascades";

/// Cascade files (each overridable).
struct CascadeFiles {
  std::string face = std::string(kDefaultCascadeDir) + "/haarcascade_frontalface_default.xml";
  std::string eye = std::string(kDefaultCascadeDir) + "/haarcascade_eye.xml";
  std::string smile = std::string(kDefaultCascadeDir) + "/haarcascade_smile.xml";
  /// The three standard file names inside `dir`.
  static CascadeFiles in_dir(const std::string& dir);
};

/// Region geometry as fractions of the face box (x, y, width w, height h of
/// the box); the fallback face box is in fractions of the image.
struct RegionGeometry {
  double eye_radius = 0.16;                  ///< eye circle radius / face width
  std::array<double, 2> left_eye{0.30, 0.38};   ///< default centre (image-left eye)
  std::array<double, 2> right_eye{0.70, 0.38};  ///< default centre (image-right eye)
  std::array<double, 4> mouth{0.50, 0.80, 0.55, 0.25};  ///< default box: centre x, centre y, w, h
  double mouth_pad = 0.15;  ///< a detected smile box grows by this fraction of its size on each side
  /// Face box assumed when no face is detected (aligned crops): x, y, w, h / image.
  std::array<double, 4> fallback_face{0.125, 0.08, 0.75, 0.80};
};

/// How a region mask was obtained.
enum class RegionStatus {
  kDetected,  ///< face and every requested part detected
  kPartial,   ///< face detected; some parts placed at their face-relative default
  kFallback,  ///< no face detected; parts placed in the default face box (kBox) or none drawn (kNone)
};

/// "detected" | "partial" | "fallback".
std::string status_name(RegionStatus status);

/// The mask of one image and how it was found.
struct RegionResult {
  at::Tensor mask;                   ///< 1×H×W bool, true = masked
  RegionStatus status = RegionStatus::kFallback;
  std::string reason;                ///< one line, e.g. "face found; right eye not detected (default used)"
  cv::Rect face;                     ///< detected (or fallback) face box, image px; empty under kNone without a face
  bool face_detected = false;
  int eyes_detected = 0;             ///< 0..2 (eyes regions only)
  bool mouth_detected = false;       ///< smile cascade fired (mouth regions only)
  std::vector<cv::Point> eye_centres;  ///< drawn eye circles (empty for kMouth)
  int eye_radius = 0;                ///< their radius in px
  cv::Rect mouth;                    ///< drawn mouth rectangle (empty for kEyes)
};

/// Region masks for a batch plus the masked images.
struct RegionBatch {
  at::Tensor images;                 ///< N×3×H×W float, masked entries set to the colour
  std::vector<RegionResult> results; ///< one per image
};

/// Haar-cascade based region masker. Loading happens in the constructor.
/// Not thread-safe (OpenCV's detectMultiScale is not): one instance per thread.
class RegionMasker {
 public:
  /// Loads the three cascades; a missing or unreadable file throws
  /// edi::ConfigError naming the option (--face-cascade, --eye-cascade, --smile-cascade) and the path.
  explicit RegionMasker(const CascadeFiles& files = {}, const RegionGeometry& geometry = {});
  ~RegionMasker();
  RegionMasker(RegionMasker&&) noexcept;
  RegionMasker& operator=(RegionMasker&&) noexcept;

  /// Mask for one image: 3×H×W float RGB in [0,1] (any device; detection runs on the CPU).
  /// `fallback` decides what is drawn for a face or part that is not detected.
  RegionResult detect(const at::Tensor& image, Region region, RegionFallback fallback = RegionFallback::kBox) const;

  /// Detect per image of x (N×3×H×W) and set the masked pixels to `color` (RGB in [0,1]).
  RegionBatch apply(const at::Tensor& x, Region region, const std::array<float, 3>& color = {0.f, 0.f, 0.f},
                    RegionFallback fallback = RegionFallback::kBox) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edi::perturb
