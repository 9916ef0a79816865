// edi-faceapi-dump-rgb <images dir> <out dir>: decode every *.jpg / *.png under
// <images dir> (recursively) exactly as the C++ tests do (cv::imread, BGR→RGB)
// and write it as binary PPM (P6) at the same relative path + ".ppm". Used by
// scripts/faceapi/reference.mjs so that the TF.js golden sees the very pixels
// the LibTorch port sees (JPEG decoders differ; see faceapi-nets.md §4).
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: edi-faceapi-dump-rgb <images dir> <out dir>\n";
    return 2;
  }
  const fs::path in_dir = argv[1], out_dir = argv[2];
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(in_dir)) {
    const auto ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".jpg" || ext == ".png")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    const cv::Mat bgr = cv::imread(f.string(), cv::IMREAD_COLOR);
    if (bgr.empty()) {
      std::cerr << "edi-faceapi-dump-rgb: error: cannot decode " << f << "\n";
      return 1;
    }
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    const fs::path out = out_dir / (fs::relative(f, in_dir).string() + ".ppm");
    fs::create_directories(out.parent_path());
    std::ofstream os(out, std::ios::binary);
    os << "P6\n" << rgb.cols << " " << rgb.rows << "\n255\n";
    for (int y = 0; y < rgb.rows; ++y) os.write(reinterpret_cast<const char*>(rgb.ptr(y)), rgb.cols * 3);
    if (!os) {
      std::cerr << "edi-faceapi-dump-rgb: error: cannot write " << out << "\n";
      return 1;
    }
  }
  std::cout << files.size() << " images written to " << out_dir << "\n";
  return 0;
}
