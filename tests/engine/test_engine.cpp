// The loop's rules on a real TorchScript model: invariance to batching and
// sharding, the three stop rules, stalls and escalation, conventional
// baselines, trajectories and the JPEG data path.
#include <gtest/gtest.h>

#include <cmath>

#include "edi/core/error.hpp"
#include "edi/engine/engine.hpp"
#include "edi/models/classifier.hpp"
#include "fixtures.hpp"

using namespace edi::engine;
using edi::testing::TempDir;

namespace {

constexpr int kN = 12, kK = 4, kS = 32;

/// One model and image set for all tests (the model is made once).
struct World {
  TempDir dir;
  std::unique_ptr<edi::models::Classifier> model;
  std::vector<std::string> ids;
  at::Tensor images, labels;
  World() {
    images = fixtures::synth_images(kN, kK, kS, &ids);
    // A model fitted to these images; labels = its own predictions, so every image starts identified.
    model = edi::models::load_classifier(
        fixtures::make_reference_model(dir.path(), kK, kS, 5, images, at::arange(kN, at::kLong).remainder(kK)));
    at::NoGradGuard g;
    labels = model->logits(images).argmax(1);
  }
};
World& world() {
  static World w;
  return w;
}

EngineSpec base_spec() {
  EngineSpec s;
  s.op = edi::perturb::OperatorSpec::defaults("blur");
  s.op.k = 5;
  s.select.q = 90;
  s.batch = 4;
  s.seed = 1;
  return s;
}

/// Run to completion over shards of `shard_size`; returns the shards.
std::vector<Shard> run(const EngineSpec& spec, int shard_size, double* final_risk = nullptr) {
  World& w = world();
  Engine engine(spec, *w.model);
  std::vector<Shard> shards;
  for (int start = 0, k = 0; start < kN; start += shard_size, ++k) {
    const int n = std::min(shard_size, kN - start);
    shards.push_back(engine.make_shard(k, std::vector<std::string>(w.ids.begin() + start, w.ids.begin() + start + n),
                                       w.images.narrow(0, start, n), w.labels.narrow(0, start, n)));
  }
  if (spec.method == Method::kConventional)
    for (auto& s : shards) engine.apply_conventional(s);
  const int limit = spec.method == Method::kConventional ? 0 : spec.pass_limit();
  for (int p = 0; p <= limit; ++p) {
    PassCounts ev;
    for (auto& s : shards) ev += engine.evaluate(s, p);
    const double risk = 100.0 * ev.identified / ev.total;
    if (final_risk) *final_risk = risk;
    const bool halt = spec.stop == StopRule::kDataset && risk <= spec.target_risk;
    PassCounts after;
    for (auto& s : shards) after += engine.perturb(s, p, halt);
    if (after.active == 0) break;
  }
  return shards;
}

at::Tensor states(const std::vector<Shard>& shards) {
  std::vector<at::Tensor> t;
  for (const auto& s : shards) t.push_back(s.state);
  return at::cat(t, 0);
}

}  // namespace

TEST(Engine, ResultsDoNotDependOnShardingAndBarelyOnBatching) {
  EngineSpec spec = base_spec();
  spec.stop = StopRule::kFixed;
  spec.passes = 3;
  spec.op = edi::perturb::OperatorSpec::defaults("dp-pix");  // random: keyed by image and pass
  spec.op.b = 4;
  spec.op.eps = 5;
  const at::Tensor one_shard = states(run(spec, kN));
  const at::Tensor five = states(run(spec, 5));
  // Same batches inside different shards: bitwise equal.
  spec.batch = 1;
  const at::Tensor b1_shard12 = states(run(spec, kN));
  const at::Tensor b1_shard5 = states(run(spec, 5));
  EXPECT_TRUE(at::equal(b1_shard12, b1_shard5));
  // Other batch sizes: the convolutions may round differently, nothing more.
  EXPECT_LE((one_shard - b1_shard12).abs().max().item<float>(), 1e-4);
  EXPECT_LE((one_shard - five).abs().max().item<float>(), 1e-4);
}

TEST(Engine, ImageRuleStopsEachImageOnceItIsNoLongerIdentified) {
  EngineSpec spec = base_spec();
  spec.op = edi::perturb::OperatorSpec::defaults("noise");
  spec.op.sigma = 0.5;
  spec.select.q = 50;
  spec.max_passes = 25;
  double risk = 100;
  const auto shards = run(spec, 5, &risk);
  int stopped = 0;
  for (const auto& s : shards)
    for (const auto& r : s.records) {
      ASSERT_FALSE(r.trajectory.empty());
      EXPECT_EQ(r.trajectory.front().pass, 0);
      EXPECT_EQ(r.trajectory.front().true_rank, 0);  // identified at the start
      EXPECT_TRUE(std::isinf(r.trajectory.front().psnr));
      EXPECT_EQ(r.trajectory.front().changed_share, 0.f);
      if (r.status == Status::kStopped) {
        ++stopped;
        // The last evaluation is the one that stopped it; earlier ones were identified.
        EXPECT_EQ(r.trajectory.back().pass, r.stop_pass);
        EXPECT_GT(r.trajectory.back().true_rank, 0);
        for (std::size_t i = 0; i + 1 < r.trajectory.size(); ++i) EXPECT_EQ(r.trajectory[i].true_rank, 0);
        EXPECT_FALSE(r.identified);
      } else {
        EXPECT_TRUE(r.status == Status::kCapped || r.status == Status::kStalled) << status_name(r.status);
      }
    }
  EXPECT_GT(stopped, kN / 2);
}

TEST(Engine, DatasetRuleHaltsEveryImageOnceTheTargetIsMet) {
  EngineSpec spec = base_spec();
  spec.op = edi::perturb::OperatorSpec::defaults("noise");
  spec.op.sigma = 0.5;
  spec.select.q = 50;
  spec.stop = StopRule::kDataset;
  spec.target_risk = 50;
  spec.max_passes = 40;
  double risk = 100;
  const auto shards = run(spec, 5, &risk);
  EXPECT_LE(risk, 50.0);
  int capped = 0;
  int last_pass = 0;
  for (const auto& s : shards)
    for (const auto& r : s.records) {
      EXPECT_NE(r.status, Status::kActive);
      capped += r.status == Status::kCapped;
      last_pass = std::max(last_pass, r.trajectory.back().pass);
    }
  EXPECT_GT(capped, 0);  // identified images left when the share reached the target
  EXPECT_LT(last_pass, 40);
}

TEST(Engine, FixedRuleRunsExactlyThePasses) {
  EngineSpec spec = base_spec();
  spec.stop = StopRule::kFixed;
  spec.passes = 4;
  for (const auto& s : run(spec, 7))
    for (const auto& r : s.records) {
      EXPECT_EQ(r.status, Status::kFixed);
      ASSERT_EQ(r.trajectory.size(), 5u);  // passes 0..4
      EXPECT_EQ(r.trajectory.back().pass, 4);
      EXPECT_GT(r.trajectory.back().changed_share, 0.f);
    }
}

TEST(Engine, AFixedPointIsAStallAndEscalationGrowsTheOperator) {
  World& w = world();
  // A constant image: a box blur leaves it unchanged, so the first pass stalls.
  const at::Tensor flat = at::full({2, 3, kS, kS}, 0.4f);
  at::Tensor labels;
  {
    at::NoGradGuard g;
    labels = w.model->logits(flat).argmax(1);
  }
  EngineSpec spec = base_spec();
  Engine plain(spec, *w.model);
  Shard s = plain.make_shard(0, {"a", "b"}, flat, labels);
  plain.evaluate(s, 0);
  const PassCounts c = plain.perturb(s, 0);
  EXPECT_EQ(c.stalled_now, 2);
  EXPECT_EQ(s.records[0].status, Status::kStalled);

  spec.escalate_factor = 2;
  spec.escalate_max = 2;
  Engine esc(spec, *w.model);
  Shard e = esc.make_shard(0, {"a", "b"}, flat, labels);
  for (int p = 0; p < 3; ++p) {
    esc.evaluate(e, p);
    esc.perturb(e, p);
  }
  EXPECT_EQ(e.records[0].escalation, 2);
  EXPECT_EQ(e.records[0].stalls, 3);
  EXPECT_EQ(e.records[0].status, Status::kStalled);

  // The escalation rule itself.
  const auto grown = escalated(spec.op, 2.0, 2, kS);
  EXPECT_EQ(grown.k, 20);
  EXPECT_EQ(escalated(spec.op, 2.0, 5, kS).k, kS);  // capped by the image side
  edi::explain::SelectSpec sel;
  sel.q = 90;
  EXPECT_DOUBLE_EQ(escalated(sel, 2.0, 1).q, 80.0);
}

TEST(Engine, ConventionalBaselineIsTheOperatorOverTheWholeImageOnce) {
  EngineSpec spec = base_spec();
  spec.method = Method::kConventional;
  spec.op.k = 9;
  const auto shards = run(spec, kN);
  const auto op = edi::perturb::make_operator(spec.op);
  const at::Tensor expected = op->apply(world().images, std::vector<edi::RngKey>(kN)).clamp(0, 1);
  EXPECT_LE((shards[0].state - expected).abs().max().item<float>(), 0.f);
  for (const auto& r : shards[0].records) {
    EXPECT_EQ(r.trajectory.size(), 1u);
    EXPECT_NE(r.status, Status::kActive);
  }
}

TEST(Engine, JpegRoundTripQuantisesEveryPass) {
  EngineSpec spec = base_spec();
  spec.stop = StopRule::kFixed;
  spec.passes = 1;
  spec.jpeg_roundtrip = true;
  const at::Tensor x = states(run(spec, kN)) * 255.f;
  EXPECT_LE((x - x.round()).abs().max().item<float>(), 1e-3);
}

TEST(Engine, SpecValidationNamesTheOption) {
  EngineSpec spec = base_spec();
  spec.max_passes = 0;
  try {
    validate(spec);
    FAIL();
  } catch (const edi::ConfigError& e) {
    EXPECT_STREQ(e.what(), "--max-passes 0: expected an integer in [1, 100000]");
  }
  spec = base_spec();
  spec.target_risk = 120;
  EXPECT_THROW(validate(spec), edi::ConfigError);
  spec = base_spec();
  spec.region = edi::perturb::Region::kEyes;
  try {
    validate(spec);
    FAIL();
  } catch (const edi::ConfigError& e) {
    EXPECT_STREQ(e.what(), "--operator eyes: region masking is a conventional baseline (use --method conventional)");
  }
}

TEST(Engine, BatchedTrajectoryStatisticsEqualThePerImageFormulas) {
  // The image rule stops images at different passes, so later batches gather
  // non-consecutive rows: every image's last evaluation saw its final state.
  EngineSpec spec = base_spec();
  spec.op = edi::perturb::OperatorSpec::defaults("noise");
  spec.op.sigma = 0.5;
  spec.select.q = 50;
  spec.max_passes = 25;
  const auto shards = run(spec, 7);
  int stopped_early = 0;
  for (const auto& s : shards)
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto& r = s.records[i];
      const at::Tensor diff = (s.state[static_cast<std::int64_t>(i)] - s.original[static_cast<std::int64_t>(i)]).abs();
      const TrajectoryPoint& last = r.trajectory.back();
      EXPECT_EQ(last.changed_share, diff.gt(0.5f / 255.f).to(at::kFloat).mean().item<float>());
      EXPECT_EQ(last.linf, diff.max().item<float>());
      EXPECT_EQ(last.psnr, psnr(s.state[static_cast<std::int64_t>(i)], s.original[static_cast<std::int64_t>(i)]));
      stopped_early += r.status == Status::kStopped && r.stop_pass < 25;
    }
  EXPECT_GT(stopped_early, 1);
}
