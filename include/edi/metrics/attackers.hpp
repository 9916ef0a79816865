#pragma once
/// \file Gallery attackers under the two threat models of metrics.json v2.
/// `linkage`: the attacker holds every probe's original; `heldout`:
/// leave-one-out, the probe's own original is not in the gallery (the other
/// originals, including other images of the same identity, are).
#include <opencv2/core.hpp>

#include <vector>

namespace edi::metrics {

/// Rank of the true identity (0 = top-1) per probe, under each threat model.
struct ThreatRanks {
  std::vector<int> heldout, linkage;
};

/// OpenCV LBPH (radius 1, 8 neighbours, 8×8 grid, grey) enrolled on all
/// `originals` (float RGB in [0, 1]); probe i is `probes[i]`, whose own
/// original is `originals[i]`. The rank of a label is its place among the
/// per-label nearest distances; for `heldout` the probe's own original is
/// skipped. A label with no enrolled image left ranks last.
ThreatRanks lbph_threat_ranks(const std::vector<cv::Mat>& originals, const std::vector<cv::Mat>& probes,
                              const std::vector<int>& labels);

}  // namespace edi::metrics
