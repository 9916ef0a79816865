// Transfer-robust steering: ensemble, expectation over transformation, the
// feature-level target and the judge, each pinned against the plain rule or
// against finite differences.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

#include <map>

#include "../explain/test_models.hpp"
#include "edi/core/error.hpp"
#include "edi/data/image.hpp"
#include "edi/engine/engine.hpp"
#include "edi/engine/steering.hpp"
#include "edi/explain/explain.hpp"
#include "edi/models/gallery.hpp"
#include "fixtures.hpp"

using namespace edi::engine;
using edi::RngKey;
namespace et = edi::explain::testing;

namespace {

constexpr int kN = 8, kK = 4, kS = 32;

struct Data {
  std::vector<std::string> ids;
  at::Tensor images, labels;
};

Data make_data() {
  Data d;
  d.images = fixtures::synth_images(kN, kK, kS, &d.ids);
  d.labels = at::arange(kN, at::kLong).remainder(kK);
  return d;
}

std::shared_ptr<edi::models::Classifier> cnn(std::uint64_t seed = 7) { return std::make_shared<et::CnnClassifier>(kK, kS, seed); }

bool top1_rule(float, int rank) { return rank == 0; }

std::vector<RngKey> keys_of(const Data& d, int pass) {
  std::vector<RngKey> k;
  for (const auto& id : d.ids) k.push_back(edi::explain::explain_key(1, id, static_cast<std::uint32_t>(pass)));
  return k;
}

/// Always answers class 0 with certainty: with every label 0 it identifies every image.
class ConstantClassifier : public edi::models::Classifier {
 public:
  ConstantClassifier() : info_(et::make_info("constant", kK, kS)) {}
  const edi::models::ModelInfo& info() const override { return info_; }
  at::Tensor logits(const at::Tensor& images) override {
    at::Tensor z = at::zeros({images.size(0), kK});
    z.select(1, 0).fill_(10.f);
    return z + 0 * images.flatten(1).sum(1, true);  // depends on the input, like any model
  }
  c10::Device device() const override { return c10::Device(c10::kCPU); }
  std::int64_t parameter_count() const override { return 0; }

 private:
  edi::models::ModelInfo info_;
};

EngineSpec spec_for_runs() {
  EngineSpec s;
  s.op = edi::perturb::OperatorSpec::defaults("blur");
  s.op.k = 5;
  s.select.q = 90;
  s.batch = 4;
  s.seed = 1;
  s.max_passes = 4;
  return s;
}

/// One shard over all images, run to the end; returns the final shard.
Shard run(Engine& engine, const Data& d, at::Tensor labels, std::vector<at::Tensor>* masks = nullptr) {
  if (masks) engine.set_mask_observer([masks](const Shard&, int, const std::vector<int>&, const at::Tensor& m) { masks->push_back(m.clone()); });
  Shard s = engine.make_shard(0, d.ids, d.images, std::move(labels));
  for (int p = 0; p <= engine.spec().max_passes; ++p) {
    engine.evaluate(s, p);
    engine.perturb(s, p);
  }
  return s;
}

at::Tensor predictions(edi::models::Classifier& m, const at::Tensor& x) {
  at::NoGradGuard g;
  return m.logits(x).argmax(1);
}

}  // namespace

TEST(Steering, EnsembleOfTwoCopiesSelectsWhatOneModelSelects) {
  const Data d = make_data();
  auto a = cnn(), b = cnn();  // same seed: the same weights
  const at::Tensor labels = predictions(*a, d.images);
  std::vector<at::Tensor> single_masks, pair_masks;
  Engine single(spec_for_runs(), *a);
  const Shard s1 = run(single, d, labels, &single_masks);
  SteeringModels pair;
  pair.steer = {a, b};
  Engine ensemble(spec_for_runs(), pair);
  const Shard s2 = run(ensemble, d, labels, &pair_masks);
  ASSERT_FALSE(single_masks.empty());
  ASSERT_EQ(single_masks.size(), pair_masks.size());
  for (std::size_t i = 0; i < single_masks.size(); ++i) EXPECT_TRUE(single_masks[i].equal(pair_masks[i])) << "mask " << i;
  EXPECT_TRUE(s1.state.equal(s2.state));
}

TEST(Steering, EnsembleNormalisesEachModelsAttributionAndSteersOnlyByModelsThatStillIdentify) {
  const Data d = make_data();
  SteeringModels two;
  two.steer = {cnn(7), cnn(11)};
  edi::explain::ExplainSpec ex;
  Steerer steer(two, ex, {}, 1, top1_rule);
  const SteerResult r = steer.explain(d.images, d.labels, d.images, keys_of(d, 0), d.ids, 0);
  // Per image, each model that identifies it contributes its unit-norm
  // attribution; a model the image already fools contributes nothing (all
  // contribute where none identifies it).
  std::vector<at::Tensor> units, ids;
  for (const auto& m : two.steer) {
    const at::Tensor g = edi::explain::explain(*m, d.images, d.labels, ex, keys_of(d, 0)).attribution;
    units.push_back(g / g.flatten(1).norm(2, 1).view({-1, 1, 1, 1}));
    ids.push_back(predictions(*m, d.images).eq(d.labels).to(at::kFloat));
  }
  const at::Tensor none = (ids[0] + ids[1]).eq(0).to(at::kFloat);
  at::Tensor expected = at::zeros_like(units[0]);
  for (std::size_t m = 0; m < units.size(); ++m) expected += units[m] * (ids[m] + none).view({-1, 1, 1, 1});
  EXPECT_TRUE(at::allclose(r.attribution, expected, 1e-5, 1e-7));
  // The case of interest occurs in this data: one model identifies an image the other does not.
  EXPECT_TRUE((ids[0] - ids[1]).abs().sum().item<float>() > 0) << "no image where the models disagree";
}

TEST(Steering, AModelOfSmallerInputSeesTheAntialiasedResizeTheEvaluationUses) {
  // The state is 32 px, the model takes 8 px: it sees the state as
  // data::resize_antialiased makes it (how its images are decoded and how
  // `evaluate` re-identifies), not a bilinear shrink that skips pixels.
  const Data d = make_data();
  auto small = std::make_shared<et::CnnClassifier>(kK, kS / 4, 5);
  SteeringModels m;
  m.steer = {small};
  Steerer steer(m, {}, {}, 1, top1_rule);
  const SteerResult r = steer.predict(d.images, d.labels);
  std::vector<cv::Mat> mats;
  for (std::int64_t i = 0; i < d.images.size(0); ++i)
    mats.push_back(edi::data::resize_antialiased(edi::data::tensor_to_image(d.images[i]), cv::Size(kS / 4, kS / 4)));
  at::Tensor expected;
  {
    at::NoGradGuard g;
    expected = at::softmax(small->logits(edi::data::images_to_tensor(mats)), 1).gather(1, d.labels.unsqueeze(1)).squeeze(1);
  }
  EXPECT_TRUE(at::allclose(r.true_prob, expected, 1e-4, 1e-5)) << r.true_prob << expected;
  // and its gradient reaches most pixels of the state: a 4x bilinear shrink
  // reads 2 of 4 per axis (at most a quarter); the antialiased one all of them
  // but those the model itself ignores (its unpadded stride-2 conv never reads
  // the last row and column of its 8 px input).
  const SteerResult e = steer.explain(d.images, d.labels, d.images, keys_of(d, 0), d.ids, 0);
  EXPECT_GT(e.attribution.amax(1).gt(0).to(at::kFloat).mean().item<float>(), 0.75f);
}

TEST(Steering, EotWithOneIdentityDrawEqualsPlainSteering) {
  const Data d = make_data();
  auto m = cnn();
  const at::Tensor labels = predictions(*m, d.images);
  EngineSpec plain = spec_for_runs();
  EngineSpec eot = plain;
  eot.steering.eot = 1;
  eot.steering.eot_shift = eot.steering.eot_scale = eot.steering.eot_blur = eot.steering.eot_brightness = 0;
  std::vector<at::Tensor> m1, m2;
  Engine e1(plain, *m), e2(eot, *m);
  const Shard s1 = run(e1, d, labels, &m1), s2 = run(e2, d, labels, &m2);
  ASSERT_EQ(m1.size(), m2.size());
  for (std::size_t i = 0; i < m1.size(); ++i) EXPECT_TRUE(m1[i].equal(m2[i])) << "mask " << i;
  EXPECT_TRUE(s1.state.equal(s2.state));
}

TEST(Steering, EotDrawsAreKeyedSmallAndDifferentiable) {
  const Data d = make_data();
  SteeringModels one;
  one.steer = {cnn()};
  SteeringSpec spec;
  spec.eot = 4;
  Steerer steer(one, {}, spec, 3, top1_rule);
  const at::Tensor t0 = steer.transform(d.images, d.ids, 2, 0);
  EXPECT_TRUE(t0.equal(steer.transform(d.images, d.ids, 2, 0)));   // keyed: reproducible
  EXPECT_FALSE(t0.equal(steer.transform(d.images, d.ids, 2, 1)));  // another draw
  EXPECT_FALSE(t0.equal(steer.transform(d.images, d.ids, 3, 0)));  // another pass
  // Image i's draw does not depend on the batch around it.
  const at::Tensor alone = steer.transform(d.images.narrow(0, 3, 1), {d.ids[3]}, 2, 0);
  EXPECT_TRUE(at::allclose(alone[0], t0[3], 1e-6, 1e-6));
  // Small: at 32 px (±4 px is an eighth of the image) it still stays close.
  EXPECT_LT((t0 - d.images).abs().mean().item<float>(), 0.2f);
  // Every part off: exactly the identity.
  SteeringSpec off = spec;
  off.eot_shift = off.eot_scale = off.eot_blur = off.eot_brightness = 0;
  EXPECT_TRUE(Steerer(one, {}, off, 3, top1_rule).transform(d.images, d.ids, 2, 0).equal(d.images));
  // Brightness alone: one gain per image, within ±10 %.
  SteeringSpec gain_only = off;
  gain_only.eot_brightness = 0.1;
  const at::Tensor ratio = Steerer(one, {}, gain_only, 3, top1_rule).transform(d.images, d.ids, 2, 0) / d.images.clamp_min(1e-3);
  for (int i = 0; i < kN; ++i) {
    const float lo = ratio[i].min().item<float>(), hi = ratio[i].max().item<float>();
    EXPECT_NEAR(lo, hi, 1e-4) << "image " << i;
    EXPECT_GE(lo, 0.9f - 1e-5f);
    EXPECT_LE(hi, 1.1f + 1e-5f);
  }
  const SteerResult r = steer.explain(d.images, d.labels, d.images, keys_of(d, 2), d.ids, 2);
  EXPECT_TRUE(r.finite.all().item<bool>());
  EXPECT_GT(r.attribution.abs().sum().item<float>(), 0.f);
}

TEST(Steering, FeatureTargetGradientMatchesFiniteDifferences) {
  // A small nonlinear embedder: f(x) = tanh(A·vec(x)), as a gallery classifier.
  torch::manual_seed(5);
  const int s = 8;
  class TanhEmbedder : public et::LinearEmbedder {
   public:
    using LinearEmbedder::LinearEmbedder;
    at::Tensor embed(const at::Tensor& images) override { return at::tanh(LinearEmbedder::embed(images)); }
  };
  auto emb = std::make_shared<TanhEmbedder>(at::randn({6, 3 * s * s}, at::kDouble).to(at::kFloat) * 0.2f, s);
  const at::Tensor originals = at::rand({2, 3, s, s});
  std::map<std::string, at::Tensor> enrol{{"id0", originals.narrow(0, 0, 1)}, {"id1", originals.narrow(0, 1, 1)}};
  auto gallery = std::make_shared<edi::models::GalleryClassifier>(emb, enrol);
  SteeringModels one;
  one.steer = {gallery};
  edi::explain::ExplainSpec ex;
  ex.target = edi::explain::Target::kFeature;
  Steerer steer(one, ex, {}, 9, top1_rule);
  const std::vector<std::string> ids{"id0/a.png", "id1/b.png"};
  const at::Tensor x = originals + 0.1f * at::randn_like(originals);
  const at::Tensor labels = at::arange(2, at::kLong);
  const SteerResult r = steer.explain(x, labels, originals, {}, ids, 4);
  // L(x) = ||f(x + ξ) − f(x₀)||² per image, in double precision.
  const at::Tensor xi = steer.feature_start(ids, 4, x.sizes().slice(1)).to(at::kDouble);
  const at::Tensor a = emb->matrix().to(at::kDouble);
  auto loss = [&](const at::Tensor& xx, int i) {
    const at::Tensor f = at::tanh((xx[i] + xi[i]).flatten().matmul(a.t()));
    const at::Tensor f0 = at::tanh(originals.to(at::kDouble)[i].flatten().matmul(a.t()));
    return (f - f0).pow(2).sum().item<double>();
  };
  const at::Tensor xd = x.to(at::kDouble);
  const double h = 1e-5;
  for (int i = 0; i < 2; ++i)
    for (std::int64_t e : {0L, 17L, 100L, 191L}) {
      at::Tensor plus = xd.clone(), minus = xd.clone();
      plus[i].view({-1})[e] += h;
      minus[i].view({-1})[e] -= h;
      const double fd = (loss(plus, i) - loss(minus, i)) / (2 * h);
      const double g = r.attribution[i].view({-1})[e].item<double>();
      EXPECT_NEAR(g, fd, 2e-6 + 2e-3 * std::abs(fd)) << "image " << i << " entry " << e;
    }
  EXPECT_GT(r.attribution.abs().sum().item<double>(), 0.0);  // the random start: not zero at x = x₀
}

TEST(Steering, FeatureTargetRefusesAPlainClassifier) {
  const Data d = make_data();
  SteeringModels one;
  one.steer = {cnn()};
  edi::explain::ExplainSpec ex;
  ex.target = edi::explain::Target::kFeature;
  Steerer steer(one, ex, {}, 1, top1_rule);
  try {
    steer.explain(d.images, d.labels, d.images, {}, d.ids, 0);
    FAIL() << "expected a ConfigError";
  } catch (const edi::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--target feature"), std::string::npos) << e.what();
  }
}

TEST(Steering, AJudgeThatAlwaysIdentifiesStopsNoImage) {
  const Data d = make_data();
  auto m = cnn();
  const at::Tensor labels = at::zeros({kN}, at::kLong);  // the judge always says 0: it identifies every image
  Engine alone(spec_for_runs(), *m);
  const Shard free_run = run(alone, d, labels);
  int stopped = 0;
  for (const auto& r : free_run.records) stopped += r.status == Status::kStopped;
  ASSERT_GT(stopped, 0) << "without a judge some images must stop for this test to mean anything";

  SteeringModels judged;
  judged.steer = {m};
  judged.judge = std::make_shared<ConstantClassifier>();
  Engine engine(spec_for_runs(), judged);
  const Shard s = run(engine, d, labels);
  for (const auto& r : s.records) {
    EXPECT_EQ(r.status, Status::kCapped);
    EXPECT_EQ(r.trajectory.back().true_rank, 0);  // the judge's answer is recorded
    EXPECT_EQ(r.trajectory.back().top1, 0);
  }
}

TEST(Steering, OptionsAreValidated) {
  SteeringSpec s;
  s.eot = 65;
  try {
    validate(s);
    FAIL();
  } catch (const edi::ConfigError& e) {
    EXPECT_STREQ(e.what(), "--eot 65: expected an integer in [0, 64] (0 = off)");
  }
  s.eot = 2;
  s.eot_brightness = 0.9;
  EXPECT_THROW(validate(s), edi::ConfigError);
  EXPECT_EQ(split_model_list(" a.pt , faceapi:recognition"), (std::vector<std::string>{"a.pt", "faceapi:recognition"}));
  EXPECT_THROW(split_model_list("a.pt,,b.pt"), edi::ConfigError);
}

TEST(Steering, Bf16PrecisionAutocastsTheSteeringModelOnly) {
  const Data d = make_data();
  auto model = cnn();
  SteeringModels fp32;
  fp32.steer.push_back(model);
  const SteeringModels bf16 = with_precision(fp32, Precision::kBf16, edi::explain::Target::kRunnerUp);
  ASSERT_NE(bf16.steer.front().get(), model.get());
  EXPECT_EQ(with_precision(fp32, Precision::kFp32, edi::explain::Target::kRunnerUp).steer.front().get(), model.get());
  at::Tensor z32, z16;
  {
    at::NoGradGuard g;
    z32 = model->logits(d.images);
    z16 = bf16.primary().logits(d.images);
  }
  // float32 logits back, computed in bf16 (≈ 3 significant digits), and autocast is off again afterwards.
  EXPECT_EQ(z16.scalar_type(), at::kFloat);
  EXPECT_FALSE(at::equal(z32, z16));
  EXPECT_LE((z32 - z16).abs().max().item<float>(), 0.05f * z32.abs().max().item<float>() + 1e-3f);
  EXPECT_FALSE(at::autocast::is_cpu_enabled());

  // The input gradient flows back through the casts: a float32 attribution whose
  // top-decile selection mostly agrees with fp32's.
  const Steerer s32(fp32, {}, {}, 1, top1_rule), s16(bf16, {}, {}, 1, top1_rule);
  const SteerResult r32 = s32.explain(d.images, d.labels, d.images, keys_of(d, 0), d.ids, 0);
  const SteerResult r16 = s16.explain(d.images, d.labels, d.images, keys_of(d, 0), d.ids, 0);
  ASSERT_EQ(r16.attribution.scalar_type(), at::kFloat);
  EXPECT_FALSE(at::equal(r32.attribution, r16.attribution));
  auto top_decile = [](const at::Tensor& a) {
    const at::Tensor f = a.flatten(1);
    return f.ge(std::get<0>(f.kthvalue(static_cast<std::int64_t>(0.9 * f.size(1)), 1, true)));
  };
  const double agree = top_decile(r32.attribution).eq(top_decile(r16.attribution)).to(at::kDouble).mean().item<double>();
  EXPECT_GT(agree, 0.9);
  EXPECT_LT(agree, 1.0);
}

TEST(Steering, PrecisionIsValidated) {
  EXPECT_EQ(parse_precision("bf16"), Precision::kBf16);
  EXPECT_STREQ(precision_name(parse_precision("fp32")), "fp32");
  try {
    parse_precision("fp16");
    FAIL();
  } catch (const edi::ConfigError& e) {
    EXPECT_STREQ(e.what(), "--precision fp16: expected fp32 or bf16");
  }
  SteeringModels m;
  m.steer.push_back(cnn());
  EXPECT_THROW(with_precision(m, Precision::kBf16, edi::explain::Target::kFeature), edi::ConfigError);
  SteeringSpec s;
  s.precision = Precision::kBf16;
  EXPECT_EQ(describe(s), " bf16");
}
