#include "edi/core/rng.hpp"

#include <cmath>

namespace edi {

std::uint64_t stable_hash64(std::string_view text) noexcept {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  // Final avalanche (splitmix64) so that similar ids give unrelated keys.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

namespace {
constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}
}  // namespace

std::array<std::uint32_t, 4> CounterRng::philox(std::array<std::uint32_t, 4> c,
                                                std::array<std::uint32_t, 2> k) noexcept {
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kM0, c[0], hi0, lo0);
    mulhilo(kM1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

CounterRng::CounterRng(const RngKey& key) noexcept {
  // Key = seed (64 bits) folded with the stream; the counter's upper half
  // carries the item and the pass, its lower half counts blocks.
  const std::uint64_t mixed = key.seed ^ (static_cast<std::uint64_t>(key.stream) * 0x9E3779B97F4A7C15ULL);
  key_ = {static_cast<std::uint32_t>(mixed), static_cast<std::uint32_t>(mixed >> 32)};
  counter_ = {0u, key.pass, static_cast<std::uint32_t>(key.item),
              static_cast<std::uint32_t>(key.item >> 32)};
}

void CounterRng::skip_to(std::uint64_t block) noexcept {
  counter_[0] = static_cast<std::uint32_t>(block);
  // The pass occupies counter_[1]; blocks beyond 2^32 are not needed (an
  // image never draws more than 16 Gi words), so only the low word moves.
  used_ = 4;
  has_spare_normal_ = false;
}

void CounterRng::refill() noexcept {
  buffer_ = philox(counter_, key_);
  ++counter_[0];
  used_ = 0;
}

std::uint32_t CounterRng::next_u32() noexcept {
  if (used_ == 4) refill();
  return buffer_[used_++];
}

std::uint64_t CounterRng::next_u64() noexcept {
  const std::uint64_t hi = next_u32();
  return (hi << 32) | next_u32();
}

double CounterRng::uniform() noexcept {
  // (k + 0.5) / 2^53 lies strictly inside (0, 1).
  return (static_cast<double>(next_u64() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double CounterRng::normal() noexcept {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  const double u1 = uniform(), u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double t = 2.0 * M_PI * u2;
  spare_normal_ = r * std::sin(t);
  has_spare_normal_ = true;
  return r * std::cos(t);
}

double CounterRng::laplace(double scale) noexcept {
  const double u = uniform() - 0.5;  // (-0.5, 0.5), never exactly ±0.5
  return -scale * (u < 0 ? -1.0 : 1.0) * std::log1p(-2.0 * std::fabs(u));
}

std::uint64_t CounterRng::below(std::uint64_t n) noexcept {
  if (n <= 1) return 0;
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t v;
  do {
    v = next_u64();
  } while (v >= limit);
  return v % n;
}

}  // namespace edi
