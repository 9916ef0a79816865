// Known answers for the two threat models of metrics.json v2 (heldout, linkage).
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "edi/core/rng.hpp"
#include "edi/metrics/attackers.hpp"

using namespace edi::metrics;

TEST(ThreatModels, LbphLinkageIsPerfectAndHeldoutIsAtChanceOnIdentitylessImages) {
  // 4 "identities" × 8 images of pure noise: nothing links two images of one
  // identity, so a leave-one-out gallery can only guess (25 %), while an
  // attacker holding each probe's own original finds it at distance 0.
  constexpr int kIds = 4, kPer = 8;
  std::vector<cv::Mat> originals;
  std::vector<int> labels;
  edi::CounterRng rng(edi::RngKey{11, 5, 0, edi::RngStream::kSynth});
  for (int id = 0; id < kIds; ++id)
    for (int k = 0; k < kPer; ++k) {
      cv::Mat m(32, 32, CV_32FC3);
      for (auto it = m.begin<cv::Vec3f>(); it != m.end<cv::Vec3f>(); ++it)
        *it = cv::Vec3f(static_cast<float>(rng.uniform()), static_cast<float>(rng.uniform()), static_cast<float>(rng.uniform()));
      originals.push_back(m);
      labels.push_back(id);
    }
  const ThreatRanks t = lbph_threat_ranks(originals, originals, labels);  // probes unchanged
  ASSERT_EQ(t.linkage.size(), originals.size());
  ASSERT_EQ(t.heldout.size(), originals.size());
  int link_hits = 0, held_hits = 0;
  for (std::size_t i = 0; i < originals.size(); ++i) {
    link_hits += t.linkage[i] == 0;
    held_hits += t.heldout[i] == 0;
    EXPECT_GE(t.heldout[i], 0);
    EXPECT_LT(t.heldout[i], kIds);
  }
  EXPECT_EQ(link_hits, kIds * kPer);  // linkage 100 %
  // Heldout at chance: 8 of 32 expected; P(Binomial(32, 1/4) >= 16) < 0.3 %.
  EXPECT_LT(held_hits, 16) << held_hits;
  // The leave-one-out gallery really left the probe out: a 1-image identity cannot be found.
  std::vector<cv::Mat> two = {originals[0], originals[1]};
  const ThreatRanks lone = lbph_threat_ranks(two, two, {0, 1});
  EXPECT_EQ(lone.linkage, (std::vector<int>{0, 0}));
  EXPECT_EQ(lone.heldout, (std::vector<int>{1, 1}));
}
