// The option rows in-process: the config hash of typed values against the
// hashes main computed at e180540 (so existing run directories resume), and
// the rows' own invariants.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "edi/cluster/runner.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/explain/spec.hpp"
#include "engine_options.hpp"

namespace {

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> v;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto j = s.find(' ', i);
    if (j != i) v.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return v;
}

/// sha256 of the canonical config JSON of `edi-anon run ARGS` (paths not checked).
std::string run_hash(const std::string& args) {
  edi::cli::Options o("run", "", "");
  edi::cli::add_run_options(o);
  EXPECT_TRUE(o.parse(words(args)));
  return edi::sha256_hex(edi::cluster::config_json(edi::cli::run_config_from(o, false, false)));
}

const std::string kBase = "--data /nonexistent/d --model m.pt --out /nonexistent/o";

}  // namespace

// Literals: printed by this test built on main at e180540 (the old options code).
TEST(ConfigHash, SameAsBeforeTheRows) {
  const std::string johns =
      "--data .assets/johns --labels none --model faceapi:recognition --out runs/j --method edi --operator blur --k 15 "
      "--q 80 --stop image --max-passes 12 --batch 11 --shard-size 11 --test-fraction 0.2 --val-fraction 0.1 --seed 0";
  const std::string rich =
      kBase + " --judge j.pt --method edi --operator mask --mask-rule pixel --color 1,0.5,0 --q 95.5 --select pixel "
              "--explainer smoothgrad --smoothgrad-samples 8 --smoothgrad-sigma 0.2 --stop dataset --target-risk 60,27.3,10 "
              "--matched-to blur:27.3 --criterion prob --tau 0.05 --jpeg-roundtrip --jpeg-quality 90 --eot 2 --eot-scale 0.1 "
              "--escalate 1.5 --seed 7 --png-bits 16 --split test --resize stretch --batch 16";
  const std::string dp = kBase + " --method conventional --operator dp-pix --b 16 --m 8 --eps 0.5 --dp-scale authors";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {johns, "f5a0a03d00acf5001f4b9f691f5a5167c8ecca12ba7ec108813e60a472d36ecc"},
      {kBase, "c109ecf9d2679d61234d511081cfe97b941907bad8bb83fe0ebabb4459cb7700"},
      {rich, "a2f8bc68911d031493b361dc99227fb117f221cff9ce2f814043c3f519435430"},
      {dp, "2716986d37f3e6eb8169f8a65ecdc78568ef82e085d2d6e7b78dc78efe5424df"}};
  for (const auto& [args, want] : cases) EXPECT_EQ(run_hash(args), want) << args;
}

TEST(ConfigHash, CanonicalValuesAndOperationalOptions) {
  const std::string h = run_hash(kBase);
  // The same settings written another way.
  EXPECT_EQ(run_hash(kBase + " --q 90.0"), h);
  EXPECT_EQ(run_hash(kBase + " --q 9e1 --tau 1e-2 --seed 00 --shard-size 064"), h);
  EXPECT_EQ(run_hash(kBase + " --batch auto"), h);
  // Operational options do not change results.
  EXPECT_EQ(run_hash("--data /elsewhere --labels none --model m.pt --out /other --threads 2 --verbose --no-images "
                     "--checkpoint-every 30 --device cuda:1 --max-megapixels 5 --split-file s.csv"),
            h);
  // Result options do.
  EXPECT_NE(run_hash(kBase + " --q 90.5"), h);
  EXPECT_NE(run_hash(kBase + " --jpeg-roundtrip"), h);
  EXPECT_NE(run_hash(kBase + " --batch 8"), h);
}

namespace {
edi::cli::Options run_options(bool for_bench = false) {
  edi::cli::Options o(for_bench ? "bench" : "run", "", "");
  edi::cli::add_run_options(o, for_bench);
  return o;
}
}  // namespace

TEST(OptionRows, OperationalAndSweepRefusedSetsComeFromTheRows) {
  const auto o = run_options();
  std::set<std::string> operational, refused;
  for (const auto& r : o.rows()) {
    if (r.is_operational) operational.insert(r.name);
    if (!r.sweep_refusal.empty()) refused.insert(r.name);
  }
  EXPECT_EQ(operational, (std::set<std::string>{"threads", "verbose", "out", "data", "labels", "device", "config", "no-images",
                                                "checkpoint-every", "checkpoint-max-loss", "schedule", "progress-every",
                                                "examples", "ops", "split-file", "max-megapixels"}));
  EXPECT_EQ(refused, (std::set<std::string>{"out", "matched-to", "threads", "config"}));
  EXPECT_EQ(edi::cli::sweep_refusal(o.rows(), "matched-to"), "is set by the sweep (use target-risk = match)");
  EXPECT_EQ(edi::cli::sweep_refusal(o.rows(), "q"), "");
}

TEST(OptionRows, DefaultsLieInTheirDomainsAndChoicesAreInTheHelp) {
  for (const bool bench : {false, true}) {
    auto o = run_options(bench);
    ASSERT_TRUE(o.parse(words(bench ? "--data d --model m.pt" : kBase)));
    for (const auto& r : o.rows()) {
      if (!r.default_value.empty()) EXPECT_NO_THROW(o.value(r.name)) << r.name << " = " << r.default_value;
      if (r.domain.kind == edi::cli::Domain::Kind::kChoice)
        for (const auto& c : r.domain.choices) EXPECT_NE(r.help.find(c), std::string::npos) << "--" << r.name << " help lacks " << c;
    }
  }
}

TEST(OptionRows, OneLineErrorsFromTheDomain) {
  auto expect_error = [](const std::string& args, const std::string& message) {
    auto o = run_options();
    try {
      o.parse(words(kBase + " " + args));
      edi::cli::run_config_from(o, false, false);
      ADD_FAILURE() << args << ": no error";
    } catch (const edi::ConfigError& e) {
      EXPECT_EQ(std::string(e.what()), message) << args;
    }
  };
  expect_error("--q 100", "--q 100: expected a number in [0, 100)");
  expect_error("--q abc", "--q abc: expected a number in [0, 100)");
  expect_error("--batch 0", "--batch 0: expected auto or an integer in [1, 4096]");
  expect_error("--png-bits 12", "--png-bits 12: expected one of 8|16");
  expect_error("--explainer lime", "--explainer lime: expected one of gradient|abs-gradient|smoothgrad|integrated-gradients");
  expect_error("--seed -1", "--seed -1: expected an integer in [0, 18446744073709551615]");
}

TEST(OptionRows, BatchAutoIsTheOnlyZero) {
  auto o = run_options();
  ASSERT_TRUE(o.parse(words(kBase)));
  EXPECT_FALSE(o.value("batch").maybe.has_value());
  auto p = run_options();
  ASSERT_TRUE(p.parse(words(kBase + " --batch 16")));
  EXPECT_EQ(p.value("batch").maybe, 16);
  EXPECT_EQ(edi::cli::run_config_from(p, false, false).engine.batch, 16);
}

TEST(OptionRows, SwitchesInKeyValuePairs) {
  const auto o = run_options();
  EXPECT_EQ(o.arguments({{"jpeg-roundtrip", "true"}, {"no-images", "false"}, {"q", "95"}}, nullptr),
            (std::vector<std::string>{"--jpeg-roundtrip", "--q=95"}));
  try {
    o.arguments({{"verbose", "yes"}}, [](std::size_t) { return std::string("f.ini:3"); });
    ADD_FAILURE() << "no error";
  } catch (const edi::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "f.ini:3: verbose = yes: expected true or false");
  }
}

TEST(OptionRows, LibraryMessagesNameTheRows) {
  const auto o = run_options();
  auto named = [&](auto&& fail) {
    try {
      fail();
      return std::string("(no error)");
    } catch (const edi::ConfigError& e) {
      const std::string m = e.what();
      return m.substr(2, m.find(' ') - 2);
    }
  };
  edi::explain::SelectSpec s;
  s.q = 100;
  edi::explain::ExplainSpec x;
  x.method = edi::explain::Attribution::kSmoothGrad;
  x.smoothgrad_samples = 0;
  edi::explain::ExplainSpec y;
  y.method = edi::explain::Attribution::kIntegratedGradients;
  y.ig_steps = 0;
  edi::explain::ExplainSpec z;
  z.method = edi::explain::Attribution::kIntegratedGradients;
  z.ig_baseline = 2;
  for (const std::string& name : {named([&] { edi::explain::validate(s); }), named([&] { edi::explain::validate(x); }),
                                  named([&] { edi::explain::validate(y); }), named([&] { edi::explain::validate(z); })})
    EXPECT_TRUE(o.declared(name)) << "--" << name << " is not a run option row";
}

TEST(OptionRows, IgBaselineReachesTheExplainerAndTheHash) {
  auto o = run_options();
  ASSERT_TRUE(o.parse(words(kBase + " --explainer integrated-gradients --ig-baseline 0.5")));
  EXPECT_EQ(edi::cli::run_config_from(o, false, false).engine.explain.ig_baseline, 0.5);
  const std::string ig = kBase + " --explainer integrated-gradients";
  EXPECT_NE(run_hash(ig + " --ig-baseline 0.5"), run_hash(ig));
  EXPECT_EQ(run_hash(ig + " --ig-baseline 0.50"), run_hash(ig + " --ig-baseline .5"));
}
