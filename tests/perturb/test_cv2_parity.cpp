// Parity with Python cv2/numpy: every operator's C++ output is written as raw
// float32 next to its input and RNG keys, and tests/perturb/cv2_parity.py
// recomputes it independently (cv2 on HWC images; a numpy Philox for the noise).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "edi/core/rng.hpp"
#include "edi/perturb/operators.hpp"

namespace edi::perturb {
namespace {

namespace fs = std::filesystem;

void write_raw(const fs::path& path, const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<std::streamsize>(c.numel() * sizeof(float)));
  ASSERT_TRUE(f.good()) << path;
}

struct Case {
  std::string label;
  OperatorSpec spec;
};

std::vector<Case> parity_cases() {
  std::vector<Case> cases;
  auto add = [&](const std::string& label, const std::string& name, auto&& tweak) {
    OperatorSpec s = OperatorSpec::defaults(name);
    tweak(s);
    cases.push_back({label, s});
  };
  for (int k : {1, 2, 3, 4, 7, 40}) add("blur_k" + std::to_string(k), "blur", [k](OperatorSpec& s) { s.k = k; });
  for (auto [k, sigma] : std::vector<std::pair<int, double>>{{3, 0}, {9, 0}, {7, 2.5}, {99, 0}})
    add("gaussian_k" + std::to_string(k) + "_s" + std::to_string(sigma).substr(0, 3), "gaussian",
        [k = k, sigma = sigma](OperatorSpec& s) { s.k = k; s.sigma = sigma; });
  for (int n : {1, 3, 7, 20, 100})
    add("pixelate_n" + std::to_string(n), "pixelate", [n](OperatorSpec& s) { s.n = n; });
  add("dp-pix_b8_eps1", "dp-pix", [](OperatorSpec& s) { s.b = 8; s.m = 16; s.eps = 1; });
  add("dp-pix_b5_eps0.5_authors", "dp-pix",
      [](OperatorSpec& s) { s.b = 5; s.m = 4; s.eps = 0.5; s.dp_scale = DpScale::kAuthors; });
  add("dp-pix_b32_eps100_authors", "dp-pix", [](OperatorSpec& s) { s.dp_scale = DpScale::kAuthors; });
  add("dp-pix_b7_noiseless", "dp-pix",
      [](OperatorSpec& s) { s.b = 7; s.eps = std::numeric_limits<double>::infinity(); });
  add("dp-blur_b8_eps1_k9", "dp-blur", [](OperatorSpec& s) { s.b = 8; s.eps = 1; s.k = 9; });
  add("dp-blur_b32_authors_k99", "dp-blur", [](OperatorSpec& s) { s.dp_scale = DpScale::kAuthors; });
  add("dp-blur_b4_eps2_k5_s1.5", "dp-blur", [](OperatorSpec& s) { s.b = 4; s.eps = 2; s.k = 5; s.sigma = 1.5; });
  add("noise_s0.1", "noise", [](OperatorSpec& s) { s.sigma = 0.1; });
  add("noise_s0.5", "noise", [](OperatorSpec& s) { s.sigma = 0.5; });
  add("mask", "mask", [](OperatorSpec& s) { s.color = {0.2f, 0.5f, 1.f}; });
  return cases;
}

std::string python_with_cv2() {
  const std::string py = EDI_PERTURB_PYTHON;
  if (py.empty()) return {};
  const std::string probe = py + " -c 'import cv2, numpy' > /dev/null 2>&1";
  return std::system(probe.c_str()) == 0 ? py : std::string();
}

TEST(PerturbCv2Parity, EveryOperatorMatchesPythonCv2) {
  const std::string py = python_with_cv2();
  if (py.empty()) GTEST_SKIP() << "no python3 with cv2 and numpy (Debian: python3-opencv)";
  const fs::path dir = fs::temp_directory_path() / ("edi-perturb-parity-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);

  const std::vector<Case> cases = parity_cases();
  struct Input {
    int n, h, w;
  };
  // Odd sizes exercise truncated DP blocks and reflect-101 borders; 224 is EDI's size.
  const std::vector<Input> inputs = {{2, 37, 53}, {1, 64, 64}, {1, 224, 224}};
  std::ofstream manifest(dir / "manifest.txt");
  manifest << std::setprecision(17);
  std::map<std::string, int> expected;  // label → number of outputs checked
  for (std::size_t in = 0; in < inputs.size(); ++in) {
    const auto [n, h, w] = inputs[in];
    at::Tensor x = at::empty({n, 3, h, w}, at::kFloat);
    CounterRng data({2024, in, 0, RngStream::kSynth});
    float* p = x.data_ptr<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = static_cast<float>(data.uniform());
    const std::string in_name = "in" + std::to_string(in) + ".f32";
    write_raw(dir / in_name, x);
    manifest << "input " << in_name << " " << n << " " << h << " " << w << "\n";
    std::vector<RngKey> keys;
    for (int i = 0; i < n; ++i) {
      keys.push_back({1234, stable_hash64("parity/" + std::to_string(in) + "/" + std::to_string(i)),
                      static_cast<std::uint32_t>(3 + i), RngStream::kPerturb});
      manifest << "key " << keys.back().seed << " " << keys.back().item << " " << keys.back().pass << " "
               << static_cast<std::uint32_t>(keys.back().stream) << "\n";
    }
    for (const Case& c : cases) {
      const std::string out_name = c.label + "_" + std::to_string(in) + ".f32";
      write_raw(dir / out_name, make_operator(c.spec)->apply(x, keys));
      const OperatorSpec& s = c.spec;
      manifest << "op " << c.label << " " << s.name << " " << out_name << " k=" << s.k << " sigma=" << s.sigma
               << " n=" << s.n << " b=" << s.b << " m=" << s.m << " eps=" << s.eps
               << " scale=" << (s.dp_scale == DpScale::kFan ? "fan" : "authors") << " color=" << s.color[0]
               << "," << s.color[1] << "," << s.color[2] << "\n";
      ++expected[c.label];
    }
  }
  manifest.close();

  const fs::path log = dir / "log.txt";
  const std::string cmd = py + " " + EDI_PERTURB_PARITY_SCRIPT + " " + dir.string() + " > " + log.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream lf(log);
  std::stringstream text;
  text << lf.rdbuf();
  std::cout << text.str();
  EXPECT_EQ(rc, 0) << text.str();

  // Every case must have been compared on every input, within 1e-5.
  std::map<std::string, int> seen;
  std::istringstream lines(text.str());
  std::string tag, label;
  double diff = 0;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ls(line);
    if (!(ls >> tag >> label >> diff) || tag != "PARITY") continue;
    ++seen[label];
    EXPECT_LE(diff, 1e-5) << label;
  }
  EXPECT_EQ(seen, expected);
  if (rc == 0 && !HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace edi::perturb
