#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/image.hpp"
#include "support/testing.hpp"

using edi::data::decode_image;
using edi::data::DecodeOptions;
using edi::testing::TempDir;
namespace fs = std::filesystem;

namespace {

cv::Mat gradient_bgr(int w, int h) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 255 / w, y * 255 / h, 77);
  return m;
}

std::string decode_error(const fs::path& p, const DecodeOptions& o = {}) {
  try {
    decode_image(p, o);
  } catch (const edi::DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Decode, ColourPngIsRgbFloat) {
  TempDir dir;
  cv::imwrite((dir / "a.png").string(), gradient_bgr(40, 30));
  const cv::Mat img = decode_image(dir / "a.png", {});
  ASSERT_EQ(img.type(), CV_32FC3);
  ASSERT_EQ(img.size(), cv::Size(40, 30));
  const auto px = img.at<cv::Vec3f>(10, 20);
  EXPECT_NEAR(px[0], 77 / 255.f, 1e-6);               // R came from BGR's third channel
  EXPECT_NEAR(px[2], (20 * 255 / 40) / 255.f, 1e-6);  // B
}

TEST(Decode, GrayscaleRgbaAnd16BitAreConverted) {
  TempDir dir;
  cv::Mat gray(20, 20, CV_8UC1, cv::Scalar(128));
  cv::imwrite((dir / "g.png").string(), gray);
  cv::Mat rgba(20, 20, CV_8UC4, cv::Scalar(10, 20, 30, 0));  // fully transparent: alpha dropped
  cv::imwrite((dir / "rgba.png").string(), rgba);
  cv::Mat deep(20, 20, CV_16UC3, cv::Scalar(65535, 0, 32768));
  cv::imwrite((dir / "deep.png").string(), deep);
  cv::imwrite((dir / "j.jpg").string(), gradient_bgr(20, 20));

  const cv::Mat g = decode_image(dir / "g.png", {});
  EXPECT_EQ(g.type(), CV_32FC3);
  EXPECT_NEAR(g.at<cv::Vec3f>(3, 3)[1], 128 / 255.f, 1e-6);
  const cv::Mat a = decode_image(dir / "rgba.png", {});
  EXPECT_NEAR(a.at<cv::Vec3f>(0, 0)[0], 30 / 255.f, 1e-6);
  const cv::Mat d = decode_image(dir / "deep.png", {});
  EXPECT_NEAR(d.at<cv::Vec3f>(0, 0)[2], 1.0f, 1e-6);
  EXPECT_NEAR(d.at<cv::Vec3f>(0, 0)[0], 32768 / 65535.f, 1e-6);
  EXPECT_EQ(decode_image(dir / "j.jpg", {}).type(), CV_32FC3);
}

TEST(Decode, BadFilesGiveReasons) {
  TempDir dir;
  std::ofstream(dir / "zero.png").close();
  std::ofstream(dir / "notes.txt") << "this is not an image\n";
  cv::imwrite((dir / "tiny.png").string(), gradient_bgr(8, 8));
  std::vector<uchar> buf;
  cv::imencode(".png", gradient_bgr(64, 64), buf);
  edi::write_file_atomic(dir / "trunc.png", std::string(reinterpret_cast<char*>(buf.data()), buf.size() / 3));

  EXPECT_EQ(decode_error(dir / "zero.png"), (dir / "zero.png").string() + ": zero-byte file");
  EXPECT_NE(decode_error(dir / "notes.txt").find("not a decodable image"), std::string::npos);
  EXPECT_NE(decode_error(dir / "trunc.png").find("not a decodable image"), std::string::npos) << decode_error(dir / "trunc.png");
  EXPECT_EQ(decode_error(dir / "tiny.png"), (dir / "tiny.png").string() + ": too small: 8x8, expected both sides >= 16");
  EXPECT_NE(decode_error(dir / "missing.png").find("cannot read"), std::string::npos);
}

TEST(Decode, ShorterSideResizeThenCentreCrop) {
  TempDir dir;
  cv::imwrite((dir / "wide.png").string(), gradient_bgr(200, 100));
  DecodeOptions o;
  o.size = 50;
  const cv::Mat img = decode_image(dir / "wide.png", o);
  EXPECT_EQ(img.size(), cv::Size(50, 50));
  o.mode = edi::data::ResizeMode::kStretch;
  EXPECT_EQ(decode_image(dir / "wide.png", o).size(), cv::Size(50, 50));
  o.mode = edi::data::ResizeMode::kNone;
  EXPECT_EQ(decode_image(dir / "wide.png", o).size(), cv::Size(200, 100));
  EXPECT_THROW(edi::data::parse_resize_mode("zoom", "resize"), edi::ConfigError);
}

TEST(Resize, AntialiasedMatchesPillowBilinear) {
  TempDir dir;
  cv::Mat noise(61, 97, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(noise, cv::RNG::UNIFORM, 0, 256);
  cv::imwrite((dir / "n.png").string(), noise);
  const cv::Mat src = decode_image(dir / "n.png", {});
  const cv::Mat ours = edi::data::resize_antialiased(src, cv::Size(32, 20));
  const cv::Mat up = edi::data::resize_antialiased(src, cv::Size(150, 90));
  // Pillow (Debian's python3-pil) as the reference; it rounds to uint8 after each pass.
  const std::string cmd = std::string(edi::testing::debian_python()) +
                          " -c \"from PIL import Image; im=Image.open('" + (dir / "n.png").string() +
                          "').convert('RGB'); im.resize((32,20), Image.BILINEAR).save('" + (dir / "pil.png").string() +
                          "'); im.resize((150,90), Image.BILINEAR).save('" + (dir / "pil_up.png").string() + "')\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (auto [mine, file] : {std::pair{ours, "pil.png"}, std::pair{up, "pil_up.png"}}) {
    const cv::Mat pil = decode_image(dir / file, {.size = 0, .mode = {}, .antialias = true, .min_side = 1});
    ASSERT_EQ(pil.size(), mine.size());
    double max_diff = 0;
    cv::Mat diff;
    cv::absdiff(pil, mine, diff);
    cv::minMaxLoc(diff.reshape(1), nullptr, &max_diff);
    EXPECT_LE(max_diff * 255.0, 1.01) << file;  // within one grey level (Pillow's uint8 rounding)
  }
}

TEST(Tensor, RoundTripAndLayout) {
  cv::Mat img(4, 5, CV_32FC3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x) img.at<cv::Vec3f>(y, x) = cv::Vec3f(x * 0.1f, y * 0.1f, 0.5f);
  const at::Tensor t = edi::data::images_to_tensor({img, img});
  ASSERT_EQ(t.sizes(), (at::IntArrayRef{2, 3, 4, 5}));
  EXPECT_FLOAT_EQ(t[1][0][2][3].item<float>(), 0.3f);
  EXPECT_FLOAT_EQ(t[0][1][2][3].item<float>(), 0.2f);
  const cv::Mat back = edi::data::tensor_to_image(t[1]);
  EXPECT_EQ(cv::norm(back, img, cv::NORM_INF), 0.0);
}

TEST(Png, WriteIsLosslessAtEightBits) {
  TempDir dir;
  cv::Mat img(16, 16, CV_32FC3);
  cv::RNG rng(3);
  rng.fill(img, cv::RNG::UNIFORM, 0, 1);
  cv::Mat q;
  img.convertTo(q, CV_8UC3, 255.0);
  q.convertTo(img, CV_32FC3, 1 / 255.0);  // exactly representable at 8 bits
  edi::data::write_png(dir / "o.png", img);
  const cv::Mat back = decode_image(dir / "o.png", {});
  EXPECT_LT(cv::norm(back, img, cv::NORM_INF), 1e-6);
}
