// `edi-anon aggregate` on a real small sweep (export: test_export.cpp).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "edi/core/csv.hpp"
#include "edi/core/fs.hpp"
#include "metrics/sweep_fixture.hpp"

using nlohmann::json;
using namespace edi::testing;
namespace fs = std::filesystem;

namespace {
std::string first_line(const fs::path& p) {
  const std::string t = edi::read_file(p);
  return t.substr(0, t.find('\n'));
}
}  // namespace

TEST(AggregateCli, SweepWithAFailedAndAMissingRunListsThem) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path edi_run = copy_run(s.edi, tmp / "edi-blur-k3"), conv5 = copy_run(s.conv5, tmp / "conv-blur-k5");
  // A run that crashed before writing results (a manifest only) and one that never started.
  const fs::path crashed = tmp / "crashed-run";
  fs::create_directories(crashed);
  fs::copy_file(s.conv5 / "manifest.csv", crashed / "manifest.csv");
  const fs::path missing = tmp / "never-started";
  const fs::path out = tmp / "agg";
  const auto r = run_edi("aggregate " + edi_run.string() + " " + conv5.string() + " " + crashed.string() + " " + missing.string() +
                         " --out " + out.string() + " --evaluate --attacker lbph --utility gender=" + s.gender_model.string() +
                         " --bootstrap 100");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("aggregated 2 of 4 runs"), std::string::npos) << r.output;
  // Every file opens with its context.
  EXPECT_EQ(first_line(out / "aggregate.csv"), "# edi-anon aggregate");
  EXPECT_EQ(first_line(out / "aggregate.tex"), "% edi-anon aggregate");
  EXPECT_EQ(first_line(out / "aggregate.md"), "# EDI-Anon aggregate");
  const std::string md = edi::read_file(out / "aggregate.md");
  for (const char* key : {"date: ", "host: ", "code version: ", "data manifest sha256: "})
    EXPECT_NE(md.find(key), std::string::npos) << key;
  // Failed and missing runs are listed, not dropped.
  EXPECT_NE(md.find(crashed.string() + "`: **failed**"), std::string::npos) << md;
  EXPECT_NE(md.find(missing.string() + "`: **missing**"), std::string::npos) << md;
  const std::string csv = edi::read_file(out / "aggregate.csv");
  EXPECT_NE(csv.find("# NOT INCLUDED (failed): " + crashed.string()), std::string::npos);
  const edi::CsvTable t = edi::parse_csv(csv, "aggregate.csv");
  ASSERT_EQ(t.rows.size(), 2u);
  const json j = json::parse(edi::read_file(out / "aggregate.json"));
  EXPECT_EQ(j["format"], "edi-anon-aggregate");
  EXPECT_EQ(j["context"]["runs"].get<int>(), 4);
  EXPECT_EQ(j["not_included"].size(), 2u);
  EXPECT_EQ(j["context"]["manifest_hashes"].size(), 1u);
  // CSV numbers are the runs' metrics.json values.
  const json me = json::parse(edi::read_file(edi_run / "metrics.json"));
  const int c_run = edi::csv_column(t, "run"), c_top1 = edi::csv_column(t, "steering_top1");
  for (const auto& row : t.rows) {
    if (row[static_cast<std::size_t>(c_run)] == "edi-blur-k3") {
      EXPECT_NEAR(std::stod(row[static_cast<std::size_t>(c_top1)]), me["privacy"]["steering"]["top1"]["all"]["value"].get<double>(), 1e-6);
    }
  }
  // Matched privacy: the baseline is listed; an EDI match never has higher risk.
  ASSERT_EQ(j["matched"]["rows"].size(), 1u);
  const json& mrow = j["matched"]["rows"][0];
  EXPECT_EQ(mrow["baseline"], "conv-blur-k5");
  EXPECT_EQ(mrow["task"], "gender");
  if (!mrow["edi"].is_null()) {
    EXPECT_LE(mrow["edi_risk"].get<double>(), mrow["baseline_risk"].get<double>());
    const json& d = mrow["difference"];
    EXPECT_EQ(d["paired_images"].get<int>(), 72);
    EXPECT_NEAR(d["value"].get<double>(), mrow["edi_macro_f1"].get<double>() - mrow["baseline_macro_f1"].get<double>(), 1e-6);
    EXPECT_LE(d["lo"].get<double>(), d["value"].get<double>());
    EXPECT_GE(d["hi"].get<double>(), d["value"].get<double>());
  } else {
    EXPECT_NE(mrow["reason"].get<std::string>().find("risk <="), std::string::npos);
  }
  EXPECT_NE(md.find("## Matched privacy"), std::string::npos);
  EXPECT_NE(edi::read_file(out / "aggregate.tex").find("\\begin{tabular}"), std::string::npos);
}

TEST(AggregateCli, MatchingPicksLowerRiskEdiRun) {
  // The conventional k = 1 baseline (nothing changed) has the highest possible risk, so
  // the EDI run of the same operator always qualifies and must be picked.
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path edi_run = copy_run(s.edi, tmp / "edi-blur-k3"), conv1 = copy_run(s.conv1, tmp / "conv-blur-k1");
  const auto r = run_edi("aggregate " + edi_run.string() + " " + conv1.string() + " --out " + (tmp / "agg").string() +
                         " --evaluate --attacker none --utility gender=" + s.gender_model.string() + " --bootstrap 50");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = json::parse(edi::read_file(tmp / "agg" / "aggregate.json"));
  for (const auto& m : j["matched"]["rows"]) {
    if (m["baseline"] != "conv-blur-k1") continue;
    ASSERT_FALSE(m["edi"].is_null()) << m.dump();
    EXPECT_EQ(m["edi"], "edi-blur-k3");
    EXPECT_LE(m["edi_risk"].get<double>(), m["baseline_risk"].get<double>());
  }
}

TEST(AggregateCli, NoRunsOrBadMatchRiskIsAConfigError) {
  TempDir tmp;
  auto r = run_edi("aggregate --out " + (tmp / "a").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const Sweep& s = sweep();
  r = run_edi("aggregate " + s.conv5.string() + " --out " + (tmp / "b").string() + " --evaluate --attacker lbph --bootstrap 20 --match-risk nosuch");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

// The export tests are in test_export.cpp.
