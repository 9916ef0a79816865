// Face-region baselines: a drawn face, the no-face fallback, cascade errors,
// and (when the lead's assets are present) real face crops.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "edi/core/error.hpp"
#include "edi/perturb/regions.hpp"

namespace edi::perturb {
namespace {

namespace fs = std::filesystem;

/// RGB uint8 HWC → 3×H×W float in [0,1].
at::Tensor to_tensor(const cv::Mat& rgb) {
  return at::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, at::kByte).permute({2, 0, 1}).to(at::kFloat).div(255).contiguous();
}

/// A schematic frontal face on a dark background, 224×224 RGB: skin oval,
/// brows, eyes with pupils at (84,96) and (140,96), nose, mouth centred at (112,165).
cv::Mat drawn_face() {
  cv::Mat im(224, 224, CV_8UC3, cv::Scalar(40, 40, 40));
  cv::ellipse(im, {112, 118}, {70, 92}, 0, 0, 360, cv::Scalar(225, 190, 160), cv::FILLED);
  for (int ex : {84, 140}) {
    cv::ellipse(im, {ex, 72}, {18, 5}, 0, 0, 360, cv::Scalar(70, 50, 40), cv::FILLED);
    cv::ellipse(im, {ex, 96}, {15, 8}, 0, 0, 360, cv::Scalar(255, 255, 255), cv::FILLED);
    cv::circle(im, {ex, 96}, 6, cv::Scalar(30, 20, 20), cv::FILLED);
  }
  cv::line(im, {112, 100}, {106, 140}, cv::Scalar(170, 120, 100), 4);
  cv::ellipse(im, {112, 165}, {26, 9}, 0, 0, 360, cv::Scalar(150, 50, 60), cv::FILLED);
  cv::GaussianBlur(im, im, {7, 7}, 0);
  return im;
}

bool masked(const RegionResult& r, int x, int y) { return r.mask[0][y][x].item<bool>(); }

TEST(PerturbRegions, DrawnFaceIsDetectedAndItsPartsMasked) {
  const RegionMasker masker;
  const at::Tensor img = to_tensor(drawn_face());
  const RegionResult eyes = masker.detect(img, Region::kEyes);
  ASSERT_TRUE(eyes.face_detected) << eyes.reason;
  EXPECT_NE(eyes.status, RegionStatus::kFallback);
  EXPECT_EQ(eyes.reason.rfind("face detected", 0), 0u) << eyes.reason;
  // The face box surrounds the drawn oval's centre and is face-sized.
  EXPECT_TRUE(eyes.face.contains({112, 118}));
  EXPECT_GT(eyes.face.width, 224 / 2);
  // Both pupils are covered, the mouth and the forehead are not.
  EXPECT_TRUE(masked(eyes, 84, 96));
  EXPECT_TRUE(masked(eyes, 140, 96));
  EXPECT_FALSE(masked(eyes, 112, 165));
  EXPECT_FALSE(masked(eyes, 112, 35));
  ASSERT_EQ(eyes.eye_centres.size(), 2u);
  EXPECT_EQ(eyes.eye_radius, static_cast<int>(std::lround(0.16 * eyes.face.width)));

  const RegionResult mouth = masker.detect(img, Region::kMouth);
  EXPECT_TRUE(masked(mouth, 112, 165));
  EXPECT_FALSE(masked(mouth, 84, 96));
  EXPECT_TRUE(mouth.eye_centres.empty());

  const RegionResult both = masker.detect(img, Region::kEyesMouth);
  EXPECT_TRUE(masked(both, 84, 96) && masked(both, 140, 96) && masked(both, 112, 165));
  EXPECT_FALSE(masked(both, 10, 10));
  // eyes-mouth is the union of the two single-region masks.
  EXPECT_TRUE(at::equal(both.mask, eyes.mask.logical_or(mouth.mask)));
}

TEST(PerturbRegions, NoFaceFallsBackToTheDefaultBoxAndSaysSo) {
  const RegionMasker masker;
  const RegionResult r = masker.detect(at::full({3, 100, 100}, 0.5f), Region::kEyesMouth);
  EXPECT_FALSE(r.face_detected);
  EXPECT_EQ(r.status, RegionStatus::kFallback);
  EXPECT_EQ(status_name(r.status), "fallback");
  EXPECT_EQ(r.reason, "no face detected: default face box for aligned crops used");
  // Fallback face (0.125, 0.08, 0.75, 0.80)·100 → x=13 (12.5 rounds away from 0), y=8, w=75, h=80.
  EXPECT_EQ(r.face, cv::Rect(13, 8, 75, 80));
  // Mouth: centre (0.5, 0.8), size (0.55, 0.25) of the face: x=round(13+0.225·75)=30,
  // y=round(8+0.675·80)=62, w=round(41.25)=41, h=20.
  EXPECT_EQ(r.mouth, cv::Rect(30, 62, 41, 20));
  // Eyes: (0.30, 0.38) and (0.70, 0.38) → (36, 38), (66, 38); radius round(0.16·75) = 12.
  ASSERT_EQ(r.eye_centres.size(), 2u);
  EXPECT_EQ(r.eye_centres[0], cv::Point(36, 38));
  EXPECT_EQ(r.eye_centres[1], cv::Point(66, 38));
  EXPECT_EQ(r.eye_radius, 12);
  const RegionResult m = masker.detect(at::full({3, 100, 100}, 0.5f), Region::kMouth);
  EXPECT_EQ(m.mask.sum().item<int64_t>(), 41 * 20);
  EXPECT_TRUE(masked(m, 30, 62) && masked(m, 70, 81));
  EXPECT_FALSE(masked(m, 29, 62) || masked(m, 71, 81) || masked(m, 30, 82));
}

TEST(PerturbRegions, FallbackNoneDrawsNothingWithoutAFace) {
  // The authors' code draws only what the cascades found: no face, no mask.
  const RegionMasker masker;
  const at::Tensor grey = at::full({3, 100, 100}, 0.5f);
  for (Region region : {Region::kEyes, Region::kMouth, Region::kEyesMouth}) {
    const RegionResult r = masker.detect(grey, region, RegionFallback::kNone);
    EXPECT_FALSE(r.face_detected);
    EXPECT_EQ(r.status, RegionStatus::kFallback);
    EXPECT_EQ(r.reason, "no face detected: nothing drawn (--region-fallback none)");
    EXPECT_EQ(r.mask.sum().item<int64_t>(), 0) << region_name(region);
    EXPECT_TRUE(r.eye_centres.empty());
    EXPECT_EQ(r.mouth.area(), 0);
    // The default (box) still draws the default regions on the same image.
    EXPECT_GT(masker.detect(grey, region).mask.sum().item<int64_t>(), 0) << region_name(region);
  }
  // apply(): the image without a face comes back unchanged; the drawn face is still masked.
  const at::Tensor x = at::stack({to_tensor(drawn_face()), at::full({3, 224, 224}, 0.5f)});
  const RegionBatch out = masker.apply(x, Region::kEyesMouth, {0.f, 0.f, 0.f}, RegionFallback::kNone);
  EXPECT_TRUE(at::equal(out.images[1], x[1]));
  // The drawn face: only the parts the cascades found are drawn, a subset of what box draws.
  const RegionResult& f = out.results[0];
  ASSERT_TRUE(f.face_detected) << f.reason;
  EXPECT_EQ(f.eye_centres.size(), static_cast<std::size_t>(f.eyes_detected)) << f.reason;
  EXPECT_EQ(f.mouth.area() > 0, f.mouth_detected) << f.reason;
  const RegionResult box = masker.detect(x[0], Region::kEyesMouth);
  EXPECT_TRUE(at::equal(f.mask.logical_and(box.mask), f.mask));
  if (f.status == RegionStatus::kPartial) {
    EXPECT_LT(f.mask.sum().item<int64_t>(), box.mask.sum().item<int64_t>());
  }
  EXPECT_EQ(at::equal(out.images[0], x[0]), f.mask.sum().item<int64_t>() == 0);
}

TEST(PerturbRegions, FallbackNoneSkipsUndetectedPartsOfAFoundFace) {
  // A face oval without eyes or mouth: the face cascade may fire, the part cascades should not.
  cv::Mat im = drawn_face();
  const RegionMasker masker;
  const RegionResult with_parts = masker.detect(to_tensor(im), Region::kMouth, RegionFallback::kNone);
  ASSERT_TRUE(with_parts.face_detected) << with_parts.reason;
  cv::ellipse(im, {112, 165}, {30, 12}, 0, 0, 360, cv::Scalar(225, 190, 160), cv::FILLED);  // paint the mouth out
  const RegionResult r = masker.detect(to_tensor(im), Region::kMouth, RegionFallback::kNone);
  if (!r.face_detected || r.mouth_detected) GTEST_SKIP() << "cascades on the edited face: " << r.reason;
  EXPECT_EQ(r.status, RegionStatus::kPartial);
  EXPECT_NE(r.reason.find("mouth not detected (not drawn)"), std::string::npos) << r.reason;
  EXPECT_EQ(r.mask.sum().item<int64_t>(), 0);
  EXPECT_GT(masker.detect(to_tensor(im), Region::kMouth).mask.sum().item<int64_t>(), 0);  // box: default mouth
}

TEST(PerturbRegions, ApplyFillsMaskedPixelsWithTheColourOnly) {
  const RegionMasker masker;
  const at::Tensor face = to_tensor(drawn_face());
  const at::Tensor x = at::stack({face, at::full({3, 224, 224}, 0.5f)});
  const RegionBatch out = masker.apply(x, Region::kEyes, {1.f, 0.f, 0.f});
  ASSERT_EQ(out.results.size(), 2u);
  EXPECT_TRUE(out.results[0].face_detected);
  EXPECT_EQ(out.results[1].status, RegionStatus::kFallback);
  for (int i = 0; i < 2; ++i) {
    const at::Tensor m = out.results[i].mask.expand({3, 224, 224});
    const at::Tensor img = out.images[i];
    EXPECT_TRUE(at::equal(img.masked_select(m.logical_not()), x[i].masked_select(m.logical_not())));
    EXPECT_TRUE(img[0].masked_select(m[0]).eq(1.f).all().item<bool>());
    EXPECT_TRUE(img[1].masked_select(m[0]).eq(0.f).all().item<bool>());
    EXPECT_GT(m[0].sum().item<int64_t>(), 0);
  }
}

TEST(PerturbRegions, ParseRegionAndCascadeErrors) {
  EXPECT_EQ(parse_region("eyes"), Region::kEyes);
  EXPECT_EQ(parse_region("mouth"), Region::kMouth);
  EXPECT_EQ(parse_region("eyes-mouth"), Region::kEyesMouth);
  EXPECT_EQ(region_name(Region::kEyesMouth), "eyes-mouth");
  try {
    parse_region("nose");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--region nose: expected one of eyes|mouth|eyes-mouth");
  }

  CascadeFiles files;
  files.eye = "/nonexistent/eye.xml";
  try {
    RegionMasker m(files);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "--eye-cascade /nonexistent/eye.xml: file not found (Debian's opencv-data installs "
                 "/usr/share/opencv4/haarcascades)");
  }
  const fs::path bad = fs::temp_directory_path() / ("edi-perturb-bad-cascade-" + std::to_string(::getpid()) + ".xml");
  std::ofstream(bad) << "<?xml version=\"1.0\"?>\n<opencv_storage></opencv_storage>\n";
  files = CascadeFiles{};
  files.smile = bad.string();
  try {
    RegionMasker m(files);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "--smile-cascade " + bad.string() + ": not a loadable OpenCV cascade file");
  }
  fs::remove(bad);
  EXPECT_EQ(CascadeFiles::in_dir("/x").face, "/x/haarcascade_frontalface_default.xml");
}

TEST(PerturbRegions, RealFaceCropsWhenAssetsArePresent) {
  const fs::path dir = fs::path(EDI_SOURCE_DIR) / ".assets" / "johns";
  std::error_code ec;  // an unreadable path (e.g. a symlink loop) counts as absent
  if (!fs::is_directory(dir, ec)) GTEST_SKIP() << dir << " absent (optional real-face check)";
  const RegionMasker masker;
  int images = 0, faces = 0, complete = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().extension() != ".jpg") continue;
    cv::Mat bgr = cv::imread(entry.path().string(), cv::IMREAD_COLOR), rgb;
    ASSERT_FALSE(bgr.empty()) << entry.path();
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    const RegionResult r = masker.detect(to_tensor(rgb), Region::kEyesMouth);
    ++images;
    EXPECT_GT(r.mask.sum().item<int64_t>(), 0) << entry.path();
    if (!r.face_detected) continue;
    ++faces;
    complete += r.status == RegionStatus::kDetected;
    // Parts lie inside the face box: eyes in its upper, the mouth in its lower half.
    for (const cv::Point& c : r.eye_centres) {
      EXPECT_TRUE(r.face.contains(c)) << entry.path();
      EXPECT_LT(c.y, r.face.y + r.face.height * 0.6) << entry.path();
    }
    EXPECT_GT(r.mouth.y + r.mouth.height / 2, r.face.y + r.face.height / 2) << entry.path();
  }
  ASSERT_GT(images, 0);
  // Haar misses some LFW-style crops; most should still be found.
  EXPECT_GT(faces, images / 3) << faces << " of " << images;
  std::cout << "[ info ] real crops: face detected in " << faces << " of " << images
            << ", all parts detected in " << complete << "\n";
}

}  // namespace
}  // namespace edi::perturb
