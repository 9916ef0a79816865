// Explainer registry, name parsing and one-line validation messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "edi/core/error.hpp"
#include "edi/explain/spec.hpp"

namespace edi::explain {
namespace {

template <typename Fn>
std::string config_error(Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.exit_code(), 2);
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(Spec, RegistryNamesAndRoundTrip) {
  const auto& reg = explainer_registry();
  ASSERT_EQ(reg.size(), 4u);
  EXPECT_EQ(reg[0].name, "gradient");
  EXPECT_EQ(reg[1].name, "abs-gradient");
  EXPECT_EQ(reg[2].name, "smoothgrad");
  EXPECT_EQ(reg[3].name, "integrated-gradients");
  EXPECT_EQ(reg[0].method, ExplainSpec{}.method);  // the first entry is the default
  for (const auto& e : reg) {
    EXPECT_EQ(parse_attribution(e.name), e.method);
    EXPECT_EQ(attribution_name(e.method), e.name);
    EXPECT_FALSE(e.help.empty());
  }
  const std::string help = explainer_help();
  EXPECT_EQ(std::count(help.begin(), help.end(), '\n'), 4);
  EXPECT_NE(help.find("  integrated-gradients  "), std::string::npos);
  EXPECT_EQ(config_error([] { parse_attribution("lime"); }),
            "--explainer lime: expected one of gradient, abs-gradient, smoothgrad, integrated-gradients");
}

TEST(Spec, OtherNamesRoundTrip) {
  for (Target t : {Target::kRunnerUp, Target::kTrueClass}) EXPECT_EQ(parse_target(target_name(t)), t);
  for (IgRule r : {IgRule::kTrapezoid, IgRule::kMidpoint}) EXPECT_EQ(parse_ig_rule(ig_rule_name(r)), r);
  for (Granularity g : {Granularity::kEntry, Granularity::kPixel}) {
    EXPECT_EQ(parse_granularity(granularity_name(g)), g);
  }
  for (DeletionBaseline b : {DeletionBaseline::kConstant, DeletionBaseline::kBlur}) {
    EXPECT_EQ(parse_deletion_baseline(deletion_baseline_name(b)), b);
  }
  EXPECT_EQ(config_error([] { parse_target("top1"); }), "--target top1: expected one of runner-up, true-class, feature");
  EXPECT_EQ(config_error([] { parse_ig_rule("left"); }), "--ig-rule left: expected one of trapezoid, midpoint");
  EXPECT_EQ(config_error([] { parse_granularity(""); }), "--select '': expected one of entry, pixel");
  EXPECT_EQ(config_error([] { parse_deletion_baseline("noise"); }),
            "--deletion-baseline noise: expected one of constant, blur");
}

TEST(Spec, SelectValidationMessages) {
  auto q_error = [](double q) {
    SelectSpec s;
    s.q = q;
    return config_error([&] { validate(s); });
  };
  EXPECT_EQ(q_error(100.5), "--q 100.5: expected a number in [0, 100)");
  EXPECT_EQ(q_error(100), "--q 100: expected a number in [0, 100)");
  EXPECT_EQ(q_error(-1), "--q -1: expected a number in [0, 100)");
  EXPECT_EQ(q_error(NAN), "--q nan: expected a number in [0, 100)");
  for (double ok : {0.0, 90.0, 99.9, 99.999}) {
    SelectSpec s;
    s.q = ok;
    EXPECT_NO_THROW(validate(s)) << ok;
  }
}

TEST(Spec, ExplainValidationMessages) {
  EXPECT_NO_THROW(validate(ExplainSpec{}));
  ExplainSpec s;
  s.smoothgrad_samples = 0;  // not used by the gradient method: not checked
  EXPECT_NO_THROW(validate(s));
  s.method = Attribution::kSmoothGrad;
  EXPECT_EQ(config_error([&] { validate(s); }), "--smoothgrad-samples 0: expected an integer in [1, 1024]");
  s.smoothgrad_samples = 8;
  s.smoothgrad_sigma = 0;
  EXPECT_EQ(config_error([&] { validate(s); }), "--smoothgrad-sigma 0: expected a number in (0, 1]");
  s.smoothgrad_sigma = 0.15;
  EXPECT_NO_THROW(validate(s));

  ExplainSpec ig;
  ig.method = Attribution::kIntegratedGradients;
  ig.ig_steps = 5000;
  EXPECT_EQ(config_error([&] { validate(ig); }), "--ig-steps 5000: expected an integer in [1, 4096]");
  ig.ig_steps = 8;
  ig.ig_baseline = 1.5;
  EXPECT_EQ(config_error([&] { validate(ig); }), "--ig-baseline 1.5: expected a number in [0, 1]");
  ig.ig_baseline = 0;
  ig.max_rows = -1;
  EXPECT_EQ(config_error([&] { validate(ig); }), "--max-rows -1: expected an integer >= 0 (0 = no bound)");
}

TEST(Spec, DeletionValidationMessages) {
  EXPECT_NO_THROW(validate(DeletionSpec{}));
  EXPECT_EQ(DeletionSpec{}.fractions.size(), 21u);
  DeletionSpec d;
  d.fractions = {0.0, 0.5, 0.5};
  EXPECT_EQ(config_error([&] { validate(d); }),
            "--deletion-fractions 0.5: expected strictly ascending fractions (follows 0.5)");
  d.fractions = {0.0, 1.25};
  EXPECT_EQ(config_error([&] { validate(d); }), "--deletion-fractions 1.25: expected a number in [0, 1]");
  d.fractions = {};
  EXPECT_EQ(config_error([&] { validate(d); }), "--deletion-fractions '': expected at least one fraction in [0, 1]");
  d.fractions = {0.1};
  d.baseline = DeletionBaseline::kBlur;
  d.blur_sigma = 0;
  EXPECT_EQ(config_error([&] { validate(d); }), "--deletion-blur-sigma 0: expected a number in (0, 64]");
}

}  // namespace
}  // namespace edi::explain
