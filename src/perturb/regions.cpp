#include "edi/perturb/regions.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <tuple>
#include <stdexcept>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "edi/core/error.hpp"
#include "edi/perturb/operators.hpp"

namespace edi::perturb {

Region parse_region(std::string_view name) {
  if (name == "eyes") return Region::kEyes;
  if (name == "mouth") return Region::kMouth;
  if (name == "eyes-mouth") return Region::kEyesMouth;
  throw ConfigError("--region " + std::string(name) + ": expected one of eyes|mouth|eyes-mouth");
}

std::string region_name(Region region) {
  switch (region) {
    case Region::kEyes: return "eyes";
    case Region::kMouth: return "mouth";
    case Region::kEyesMouth: return "eyes-mouth";
  }
  return "?";
}

std::string status_name(RegionStatus status) {
  switch (status) {
    case RegionStatus::kDetected: return "detected";
    case RegionStatus::kPartial: return "partial";
    case RegionStatus::kFallback: return "fallback";
  }
  return "?";
}

CascadeFiles CascadeFiles::in_dir(const std::string& dir) {
  CascadeFiles f;
  f.face = dir + "/haarcascade_frontalface_default.xml";
  f.eye = dir + "/haarcascade_eye.xml";
  f.smile = dir + "/haarcascade_smile.xml";
  return f;
}

namespace {

void load_cascade(cv::CascadeClassifier& c, const std::string& path, const char* option) {
  if (!std::filesystem::is_regular_file(path))
    throw ConfigError(std::string("--") + option + " " + path +
                      ": file not found (Debian's opencv-data installs " + kDefaultCascadeDir + ")");
  // CascadeClassifier::load reports failure by return value (and may log); turn it into one error.
  bool ok = false;
  try {
    ok = c.load(path);
  } catch (const cv::Exception&) {
    ok = false;
  }
  if (!ok || c.empty())
    throw ConfigError(std::string("--") + option + " " + path + ": not a loadable OpenCV cascade file");
}

/// 8-bit luma (BT.601, as cv::COLOR_RGB2GRAY) of a contiguous 3×H×W float image, histogram-equalised
/// so that dark or low-contrast crops still trigger the cascades.
cv::Mat to_gray(const float* chw, int h, int w) {
  const std::size_t hw = static_cast<std::size_t>(h) * w;
  cv::Mat g(h, w, CV_8U);
  auto* out = g.ptr<unsigned char>();
  for (std::size_t i = 0; i < hw; ++i) {
    const double v = 255.0 * (0.299 * chw[i] + 0.587 * chw[hw + i] + 0.114 * chw[2 * hw + i]);
    out[i] = cv::saturate_cast<unsigned char>(v);
  }
  cv::equalizeHist(g, g);
  return g;
}

cv::Rect largest(const std::vector<cv::Rect>& boxes) {
  return *std::max_element(boxes.begin(), boxes.end(),
                           [](const cv::Rect& a, const cv::Rect& b) { return a.area() < b.area(); });
}

cv::Point at_frac(const cv::Rect& box, double fx, double fy) {
  return {box.x + static_cast<int>(std::lround(fx * box.width)),
          box.y + static_cast<int>(std::lround(fy * box.height))};
}

}  // namespace

struct RegionMasker::Impl {
  // detectMultiScale is a non-const member of CascadeClassifier; detection does
  // not change what a masker computes, hence `mutable`.
  mutable cv::CascadeClassifier face, eye, smile;
  RegionGeometry geo;

  /// The largest face, or (kBox) the default face box for aligned crops. Sets r.face and r.face_detected.
  void find_face(const cv::Mat& gray, RegionResult& r, RegionFallback fallback, std::vector<std::string>& notes) const;
  /// Eye circles into `mask`; false when a searched eye was not found.
  bool place_eyes(const cv::Mat& gray, RegionResult& r, RegionFallback fallback, cv::Mat& mask,
                  std::vector<std::string>& notes) const;
  /// Mouth rectangle into `mask`; false when a searched mouth was not found.
  bool place_mouth(const cv::Mat& gray, RegionResult& r, RegionFallback fallback, cv::Mat& mask,
                   std::vector<std::string>& notes) const;
};

void RegionMasker::Impl::find_face(const cv::Mat& gray, RegionResult& r, RegionFallback fallback,
                                   std::vector<std::string>& notes) const {
  const int h = gray.rows, w = gray.cols;
  // Largest face; a minimum of a fifth of the short side rejects tiny false
  // positives in background texture (inputs are face crops).
  std::vector<cv::Rect> faces;
  const int min_face = std::max(24, std::min(h, w) / 5);
  face.detectMultiScale(gray, faces, 1.1, 5, 0, cv::Size(min_face, min_face));
  if (!faces.empty()) {
    r.face = largest(faces) & cv::Rect(0, 0, w, h);
    r.face_detected = true;
  } else if (fallback == RegionFallback::kNone) {
    notes.push_back("no face detected: nothing drawn (--region-fallback none)");
  } else {
    const auto& f = geo.fallback_face;
    r.face = cv::Rect(static_cast<int>(std::lround(f[0] * w)), static_cast<int>(std::lround(f[1] * h)),
                      static_cast<int>(std::lround(f[2] * w)), static_cast<int>(std::lround(f[3] * h))) &
             cv::Rect(0, 0, w, h);
    notes.push_back("no face detected: default face box for aligned crops used");
  }
}

bool RegionMasker::Impl::place_eyes(const cv::Mat& gray, RegionResult& r, RegionFallback fallback, cv::Mat& mask,
                                    std::vector<std::string>& notes) const {
  const cv::Rect& f = r.face;
  if (!r.face_detected && fallback == RegionFallback::kNone) return true;  // nothing to place
  std::optional<cv::Point> left = at_frac(f, geo.left_eye[0], geo.left_eye[1]);
  std::optional<cv::Point> right = at_frac(f, geo.right_eye[0], geo.right_eye[1]);
  bool all = true;
  if (r.face_detected && f.area() > 0) {
    // Eyes lie in the upper part of a frontal face box; searching only there
    // avoids nostrils and mouth corners, the eye cascade's usual false hits.
    const cv::Rect upper(f.x, f.y, f.width, static_cast<int>(f.height * 0.6));
    std::vector<cv::Rect> eyes;
    const int min_eye = std::max(8, f.width / 10);
    eye.detectMultiScale(gray(upper), eyes, 1.1, 3, 0, cv::Size(min_eye, min_eye), cv::Size(f.width / 2, f.width / 2));
    std::vector<cv::Rect> lefts, rights;
    for (const cv::Rect& e : eyes) {
      const double cx = e.x + 0.5 * e.width, cy = e.y + 0.5 * e.height;
      if (cy < 0.15 * f.height || cy > 0.55 * f.height) continue;
      (cx < 0.5 * f.width ? lefts : rights).push_back(e + upper.tl());
    }
    const char* missing = fallback == RegionFallback::kNone ? " not detected (not drawn)" : " not detected (default used)";
    for (auto [found, centre, name] : {std::tuple{&lefts, &left, "left eye"}, std::tuple{&rights, &right, "right eye"}}) {
      if (!found->empty()) {
        const cv::Rect e = largest(*found);
        *centre = (e.tl() + e.br()) / 2;
        ++r.eyes_detected;
      } else {
        notes.push_back(std::string(name) + missing);
        if (fallback == RegionFallback::kNone) centre->reset();
        all = false;
      }
    }
  }
  r.eye_radius = std::max(1, static_cast<int>(std::lround(geo.eye_radius * f.width)));
  for (const auto& c : {left, right})
    if (c) r.eye_centres.push_back(*c);
  for (const cv::Point& c : r.eye_centres) cv::circle(mask, c, r.eye_radius, cv::Scalar(255), cv::FILLED);
  return all;
}

bool RegionMasker::Impl::place_mouth(const cv::Mat& gray, RegionResult& r, RegionFallback fallback, cv::Mat& mask,
                                     std::vector<std::string>& notes) const {
  const cv::Rect& f = r.face;
  if (!r.face_detected && fallback == RegionFallback::kNone) return true;  // nothing to place
  const auto& m = geo.mouth;
  cv::Rect mouth(static_cast<int>(std::lround(f.x + (m[0] - m[2] / 2) * f.width)),
                 static_cast<int>(std::lround(f.y + (m[1] - m[3] / 2) * f.height)),
                 static_cast<int>(std::lround(m[2] * f.width)), static_cast<int>(std::lround(m[3] * f.height)));
  bool found = true;
  if (r.face_detected && f.area() > 0) {
    // The smile cascade stands in for the missing mcs_mouth cascade; it is
    // noisy, so only boxes in the lower face with a plausible width count.
    const int top = f.y + f.height / 2;
    const cv::Rect lower(f.x, top, f.width, f.y + f.height - top);
    std::vector<cv::Rect> smiles;
    smile.detectMultiScale(gray(lower), smiles, 1.2, 10, 0,
                           cv::Size(std::max(10, f.width / 4), std::max(5, f.width / 8)));
    std::vector<cv::Rect> plausible;
    for (const cv::Rect& sm : smiles)
      if (sm.width >= f.width / 4 && sm.width <= f.width * 7 / 10) plausible.push_back(sm + lower.tl());
    if (!plausible.empty()) {
      const cv::Rect sm = largest(plausible);
      const int px = static_cast<int>(std::lround(geo.mouth_pad * sm.width));
      const int py = static_cast<int>(std::lround(geo.mouth_pad * sm.height));
      mouth = cv::Rect(sm.x - px, sm.y - py, sm.width + 2 * px, sm.height + 2 * py);
      r.mouth_detected = true;
    } else {
      found = false;
      if (fallback == RegionFallback::kNone) mouth = cv::Rect();
      notes.push_back(fallback == RegionFallback::kNone ? "mouth not detected (not drawn)"
                                                        : "mouth not detected (default used)");
    }
  }
  r.mouth = mouth & cv::Rect(0, 0, mask.cols, mask.rows);
  if (r.mouth.area() > 0) cv::rectangle(mask, r.mouth, cv::Scalar(255), cv::FILLED);
  return found;
}

RegionMasker::RegionMasker(const CascadeFiles& files, const RegionGeometry& geometry)
    : impl_(std::make_unique<Impl>()) {
  load_cascade(impl_->face, files.face, "face-cascade");
  load_cascade(impl_->eye, files.eye, "eye-cascade");
  load_cascade(impl_->smile, files.smile, "smile-cascade");
  impl_->geo = geometry;
}

RegionMasker::~RegionMasker() = default;
RegionMasker::RegionMasker(RegionMasker&&) noexcept = default;
RegionMasker& RegionMasker::operator=(RegionMasker&&) noexcept = default;

RegionResult RegionMasker::detect(const at::Tensor& image, Region region, RegionFallback fallback) const {
  if (image.dim() != 3 || image.size(0) != 3)
    throw std::invalid_argument("regions: expected a 3×H×W image tensor");
  const at::Tensor img = image.to(at::kCPU, at::kFloat).contiguous();
  const int h = static_cast<int>(img.size(1)), w = static_cast<int>(img.size(2));
  const cv::Mat gray = to_gray(img.data_ptr<float>(), h, w);

  RegionResult r;
  std::vector<std::string> notes;
  impl_->find_face(gray, r, fallback, notes);
  cv::Mat mask = cv::Mat::zeros(h, w, CV_8U);
  bool all_parts = true;
  if (region == Region::kEyes || region == Region::kEyesMouth)
    all_parts = impl_->place_eyes(gray, r, fallback, mask, notes) && all_parts;
  if (region == Region::kMouth || region == Region::kEyesMouth)
    all_parts = impl_->place_mouth(gray, r, fallback, mask, notes) && all_parts;

  if (!r.face_detected) {
    r.status = RegionStatus::kFallback;
  } else {
    r.status = all_parts ? RegionStatus::kDetected : RegionStatus::kPartial;
    notes.insert(notes.begin(), "face detected");
  }
  for (std::size_t i = 0; i < notes.size(); ++i) r.reason += (i ? "; " : "") + notes[i];

  r.mask = at::from_blob(mask.data, {1, h, w}, at::kByte).ne(0);  // ne() copies out of the Mat
  return r;
}

RegionBatch RegionMasker::apply(const at::Tensor& x, Region region, const std::array<float, 3>& color,
                                RegionFallback fallback) const {
  if (x.dim() != 4 || x.size(1) != 3) throw std::invalid_argument("regions: expected an N×3×H×W tensor");
  OperatorSpec spec = OperatorSpec::defaults("mask");
  spec.color = color;
  const auto op = make_operator(spec);  // validates the colour
  RegionBatch out;
  std::vector<at::Tensor> masks;
  for (int64_t i = 0; i < x.size(0); ++i) {
    out.results.push_back(detect(x[i], region, fallback));
    masks.push_back(out.results.back().mask);
  }
  const at::Tensor m = at::stack(masks).to(x.device());  // N×1×H×W, broadcast over channels
  out.images = blend(x, m, op->apply(x, std::vector<RngKey>(x.size(0))));
  return out;
}

}  // namespace edi::perturb
