#pragma once
// Engine test fixtures: a real TorchScript model made by tests/engine/reference.py
// and synthetic face images.
#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "edi/data/image.hpp"
#include "edi/data/synth.hpp"
#include "edi/models/classifier.hpp"
#include "edi/models/registry.hpp"
#include "support/testing.hpp"

namespace edi::engine::fixtures {

inline std::string reference_script() { return std::string(EDI_SOURCE_DIR) + "/tests/engine/reference.py"; }

/// Write a tensor's raw bytes.
inline void write_raw(const std::filesystem::path& p, const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  std::ofstream f(p, std::ios::binary);
  f.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
}

/// A small CNN (K classes, S px) as TorchScript + sidecar in `dir`: random-init,
/// or fitted to `images`/`labels` when given (so that it identifies them).
inline std::string make_reference_model(const std::filesystem::path& dir, int classes, int size, int seed = 0,
                                        const at::Tensor& images = {}, const at::Tensor& labels = {}) {
  const std::string path = (dir / "model.pt").string();
  std::string cmd = std::string(edi::testing::debian_python()) + " " + reference_script() + " model --out " + path +
                    " --classes " + std::to_string(classes) + " --size " + std::to_string(size) + " --seed " + std::to_string(seed);
  if (images.defined()) {
    write_raw(dir / "train.f32", images);
    write_raw(dir / "train.i64", labels);
    cmd += " --train " + (dir / "train.f32").string() + " " + (dir / "train.i64").string();
  }
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
  return path;
}

/// n synthetic faces (identity i % k) as n×3×S×S float RGB.
inline at::Tensor synth_images(int n, int k, int size, std::vector<std::string>* ids = nullptr) {
  std::vector<cv::Mat> imgs;
  for (int i = 0; i < n; ++i) {
    cv::Mat bgr = data::synth_render(11, i % k, i / k, size), rgb, f;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    rgb.convertTo(f, CV_32FC3, 1.0 / 255.0);
    imgs.push_back(f);
    if (ids) ids->push_back("id" + std::to_string(i % k) + "/img" + std::to_string(i) + ".png");
  }
  return data::images_to_tensor(imgs);
}

}  // namespace edi::engine::fixtures
