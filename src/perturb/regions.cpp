#include "edi/perturb/regions.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
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
};

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

RegionResult RegionMasker::detect(const at::Tensor& image, Region region) const {
  if (image.dim() != 3 || image.size(0) != 3)
    throw std::invalid_argument("regions: expected a 3×H×W image tensor");
  const at::Tensor img = image.to(at::kCPU, at::kFloat).contiguous();
  const int h = static_cast<int>(img.size(1)), w = static_cast<int>(img.size(2));
  const RegionGeometry& geo = impl_->geo;
  const cv::Mat gray = to_gray(img.data_ptr<float>(), h, w);
  const cv::Rect bounds(0, 0, w, h);

  RegionResult r;
  std::vector<std::string> notes;

  // Largest face; a minimum of a fifth of the short side rejects tiny false
  // positives in background texture (inputs are face crops).
  std::vector<cv::Rect> faces;
  const int min_face = std::max(24, std::min(h, w) / 5);
  impl_->face.detectMultiScale(gray, faces, 1.1, 5, 0, cv::Size(min_face, min_face));
  if (!faces.empty()) {
    r.face = largest(faces) & bounds;
    r.face_detected = true;
  } else {
    const auto& f = geo.fallback_face;
    r.face = cv::Rect(static_cast<int>(std::lround(f[0] * w)), static_cast<int>(std::lround(f[1] * h)),
                      static_cast<int>(std::lround(f[2] * w)), static_cast<int>(std::lround(f[3] * h))) &
             bounds;
    notes.push_back("no face detected: default face box for aligned crops used");
  }
  const cv::Rect& face = r.face;
  const bool search_parts = r.face_detected && face.area() > 0;

  cv::Mat mask = cv::Mat::zeros(h, w, CV_8U);
  bool all_parts = true;

  if (region == Region::kEyes || region == Region::kEyesMouth) {
    cv::Point left = at_frac(face, geo.left_eye[0], geo.left_eye[1]);
    cv::Point right = at_frac(face, geo.right_eye[0], geo.right_eye[1]);
    if (search_parts) {
      // Eyes lie in the upper part of a frontal face box; searching only there
      // avoids nostrils and mouth corners, the eye cascade's usual false hits.
      const cv::Rect upper(face.x, face.y, face.width, static_cast<int>(face.height * 0.6));
      std::vector<cv::Rect> eyes;
      const int min_eye = std::max(8, face.width / 10);
      impl_->eye.detectMultiScale(gray(upper), eyes, 1.1, 3, 0, cv::Size(min_eye, min_eye),
                                  cv::Size(face.width / 2, face.width / 2));
      std::vector<cv::Rect> lefts, rights;
      for (const cv::Rect& e : eyes) {
        const double cx = e.x + 0.5 * e.width, cy = e.y + 0.5 * e.height;
        if (cy < 0.15 * face.height || cy > 0.55 * face.height) continue;
        (cx < 0.5 * face.width ? lefts : rights).push_back(e + upper.tl());
      }
      if (!lefts.empty()) {
        const cv::Rect e = largest(lefts);
        left = (e.tl() + e.br()) / 2;
        ++r.eyes_detected;
      } else {
        notes.push_back("left eye not detected (default used)");
      }
      if (!rights.empty()) {
        const cv::Rect e = largest(rights);
        right = (e.tl() + e.br()) / 2;
        ++r.eyes_detected;
      } else {
        notes.push_back("right eye not detected (default used)");
      }
      all_parts = all_parts && r.eyes_detected == 2;
    }
    r.eye_radius = std::max(1, static_cast<int>(std::lround(geo.eye_radius * face.width)));
    r.eye_centres = {left, right};
    for (const cv::Point& c : r.eye_centres) cv::circle(mask, c, r.eye_radius, cv::Scalar(255), cv::FILLED);
  }

  if (region == Region::kMouth || region == Region::kEyesMouth) {
    const auto& m = geo.mouth;
    cv::Rect mouth(static_cast<int>(std::lround(face.x + (m[0] - m[2] / 2) * face.width)),
                   static_cast<int>(std::lround(face.y + (m[1] - m[3] / 2) * face.height)),
                   static_cast<int>(std::lround(m[2] * face.width)),
                   static_cast<int>(std::lround(m[3] * face.height)));
    if (search_parts) {
      // The smile cascade stands in for the missing mcs_mouth cascade; it is
      // noisy, so only boxes in the lower face with a plausible width count.
      const int top = face.y + face.height / 2;
      const cv::Rect lower(face.x, top, face.width, face.y + face.height - top);
      std::vector<cv::Rect> smiles;
      impl_->smile.detectMultiScale(gray(lower), smiles, 1.2, 10, 0,
                                    cv::Size(std::max(10, face.width / 4), std::max(5, face.width / 8)));
      std::vector<cv::Rect> plausible;
      for (const cv::Rect& s : smiles)
        if (s.width >= face.width / 4 && s.width <= face.width * 7 / 10) plausible.push_back(s + lower.tl());
      if (!plausible.empty()) {
        const cv::Rect s = largest(plausible);
        const int px = static_cast<int>(std::lround(geo.mouth_pad * s.width));
        const int py = static_cast<int>(std::lround(geo.mouth_pad * s.height));
        mouth = cv::Rect(s.x - px, s.y - py, s.width + 2 * px, s.height + 2 * py);
        r.mouth_detected = true;
      } else {
        notes.push_back("mouth not detected (default used)");
        all_parts = false;
      }
    }
    r.mouth = mouth & bounds;
    if (r.mouth.area() > 0) cv::rectangle(mask, r.mouth, cv::Scalar(255), cv::FILLED);
  }

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

RegionBatch RegionMasker::apply(const at::Tensor& x, Region region, const std::array<float, 3>& color) const {
  if (x.dim() != 4 || x.size(1) != 3) throw std::invalid_argument("regions: expected an N×3×H×W tensor");
  OperatorSpec spec = OperatorSpec::defaults("mask");
  spec.color = color;
  const auto op = make_operator(spec);  // validates the colour
  RegionBatch out;
  std::vector<at::Tensor> masks;
  for (int64_t i = 0; i < x.size(0); ++i) {
    out.results.push_back(detect(x[i], region));
    masks.push_back(out.results.back().mask);
  }
  const at::Tensor m = at::stack(masks).to(x.device());  // N×1×H×W, broadcast over channels
  out.images = blend(x, m, op->apply(x, std::vector<RngKey>(x.size(0))));
  return out;
}

}  // namespace edi::perturb
