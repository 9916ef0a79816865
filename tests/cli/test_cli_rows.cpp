// The option rows in-process: the config hash of typed values against the
// hashes main computed at e180540 (so existing run directories resume), and
// the rows' own invariants.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "edi/cluster/runner.hpp"
#include "edi/core/fs.hpp"
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
