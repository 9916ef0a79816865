#pragma once
/// \file Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011).
///
/// Every random draw in edi is a pure function of a key (seed, image, pass,
/// stream) and a counter, so results do not depend on processing order, batch
/// composition, rank count or whether a run was interrupted and resumed.
#include <array>
#include <cstdint>
#include <string_view>

namespace edi {

/// Stable 64-bit hash of a string (FNV-1a); used to key images by their id.
std::uint64_t stable_hash64(std::string_view text) noexcept;

/// Named streams keep independent uses of one (seed, image, pass) apart.
enum class RngStream : std::uint32_t {
  kPerturb = 1,   ///< operator noise (DP-Pix Laplace, Gaussian noise)
  kExplain = 2,   ///< SmoothGrad noise
  kSplit = 3,     ///< train/val/test assignment
  kSynth = 4,     ///< synthetic data generation
  kBootstrap = 5, ///< confidence intervals
  kTrain = 6,     ///< training shuffles and initialisation
  kEot = 7,       ///< expectation-over-transformation draws of the steering
};

/// The key of one random sequence.
struct RngKey {
  std::uint64_t seed = 0;
  std::uint64_t item = 0;  ///< e.g. stable_hash64(image id)
  std::uint32_t pass = 0;
  RngStream stream = RngStream::kPerturb;
};

/// A Philox-4x32-10 generator positioned at counter 0 of its key. Draws are
/// consumed in blocks of four 32-bit words; `skip_to` jumps anywhere in O(1).
class CounterRng {
 public:
  explicit CounterRng(const RngKey& key) noexcept;

  std::uint32_t next_u32() noexcept;
  std::uint64_t next_u64() noexcept;
  /// Uniform in the open interval (0, 1), 53-bit resolution.
  double uniform() noexcept;
  /// Standard normal (Box–Muller, both values used).
  double normal() noexcept;
  /// Laplace(0, scale).
  double laplace(double scale) noexcept;
  /// Uniform integer in [0, n), unbiased (rejection).
  std::uint64_t below(std::uint64_t n) noexcept;
  /// Position the stream at block `block` (each block = four 32-bit words).
  void skip_to(std::uint64_t block) noexcept;

  /// The raw Philox-4x32-10 bijection, exposed for known-answer tests.
  static std::array<std::uint32_t, 4> philox(std::array<std::uint32_t, 4> counter,
                                             std::array<std::uint32_t, 2> key) noexcept;

 private:
  void refill() noexcept;
  std::array<std::uint32_t, 2> key_{};
  std::array<std::uint32_t, 4> counter_{};
  std::array<std::uint32_t, 4> buffer_{};
  int used_ = 4;
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

}  // namespace edi
