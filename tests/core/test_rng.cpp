#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "edi/core/rng.hpp"

using edi::CounterRng;
using edi::RngKey;
using edi::RngStream;

// Known-answer vectors of Philox-4x32-10 from the Random123 distribution (kat_vectors).
TEST(Philox, KnownAnswerVectors) {
  EXPECT_EQ(CounterRng::philox({0, 0, 0, 0}, {0, 0}),
            (std::array<std::uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(CounterRng::philox({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (std::array<std::uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(CounterRng::philox({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (std::array<std::uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(CounterRng, SameKeySameSequenceAndSkipTo) {
  const RngKey key{42, edi::stable_hash64("id0001/img_0003.png"), 7, RngStream::kPerturb};
  CounterRng a(key), b(key);
  std::vector<std::uint32_t> first;
  for (int i = 0; i < 40; ++i) first.push_back(a.next_u32());
  for (int i = 0; i < 40; ++i) EXPECT_EQ(first[i], b.next_u32());
  CounterRng c(key);
  c.skip_to(5);  // block 5 = words 20..23
  for (int i = 20; i < 24; ++i) EXPECT_EQ(first[i], c.next_u32());
}

TEST(CounterRng, KeysAreIndependent) {
  const std::uint64_t item = edi::stable_hash64("a.png");
  std::set<std::uint32_t> firsts;
  for (std::uint32_t pass = 0; pass < 50; ++pass) firsts.insert(CounterRng({1, item, pass, RngStream::kPerturb}).next_u32());
  firsts.insert(CounterRng({1, item, 0, RngStream::kExplain}).next_u32());
  firsts.insert(CounterRng({2, item, 0, RngStream::kPerturb}).next_u32());
  firsts.insert(CounterRng({1, edi::stable_hash64("b.png"), 0, RngStream::kPerturb}).next_u32());
  EXPECT_EQ(firsts.size(), 53u);
  EXPECT_NE(edi::stable_hash64("a.png"), edi::stable_hash64("a.pnh"));
}

TEST(CounterRng, DistributionsHaveTheirMoments) {
  CounterRng r({9, 9, 9, RngStream::kPerturb});
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0, sl = 0, sla = 0;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    const double z = r.normal();
    sn += z;
    sn2 += z * z;
    const double l = r.laplace(2.0);
    sl += l;
    sla += std::fabs(l);
  }
  EXPECT_NEAR(su / n, 0.5, 0.005);
  EXPECT_NEAR(sn / n, 0.0, 0.01);
  EXPECT_NEAR(sn2 / n, 1.0, 0.02);
  EXPECT_NEAR(sl / n, 0.0, 0.03);
  EXPECT_NEAR(sla / n, 2.0, 0.03);  // E|X| = scale for Laplace
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) ++counts[r.below(7)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
}
