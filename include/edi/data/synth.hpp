#pragma once
/// \file Deterministic synthetic faces for tests and scale benchmarks.
///
/// Each identity is a fixed set of fine facial details (face shape, eye
/// spacing/size/shape, iris colour, brows, nose, mouth, moles). Attributes are
/// carried by separate cues: age group (grey hair, forehead lines), gender
/// (hair length, beard shading) and a 4-class group (skin tone). Every image
/// adds pose, scale, lighting and noise jitter. Output is the MTF layout:
/// `OUT/<identity>/<identity>_<nnnn>.png` plus `OUT/labels.csv`
/// (`identity,age,gender,race`, one row per identity).
#include <cstdint>
#include <filesystem>
#include <string>

#include <opencv2/core.hpp>

namespace edi::data {

struct SynthSpec {
  int identities = 20;
  int per_identity = 30;
  int size = 64;
  std::uint64_t seed = 0;
  double jitter = 1.0;  ///< scales pose/lighting/noise jitter (0 = none)
  std::filesystem::path out;
};

struct SynthSummary {
  int images = 0;
  int identities = 0;
  double seconds = 0.0;
};

/// Attribute labels of synthetic identity `k` (deterministic in seed and k).
struct SynthIdentityLabels {
  std::string name, age, gender, race;
};
SynthIdentityLabels synth_identity_labels(std::uint64_t seed, int identity);

/// Render image `index` of identity `identity` as CV_8UC3 BGR.
cv::Mat synth_render(std::uint64_t seed, int identity, int index, int size, double jitter = 1.0);

/// Write the whole data set (atomic per file; labels.csv last).
SynthSummary synth_generate(const SynthSpec& spec);

}  // namespace edi::data
