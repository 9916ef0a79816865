// `edi-anon aggregate` on a real small sweep (export: test_export.cpp).
#include <gtest/gtest.h>

#include <regex>

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
  // A run that crashed before writing results (a manifest only), one that never started,
  // and one with results but no complete.json (interrupted, or being resumed).
  const fs::path crashed = tmp / "crashed-run";
  fs::create_directories(crashed);
  fs::copy_file(s.conv5 / "manifest.csv", crashed / "manifest.csv");
  const fs::path missing = tmp / "never-started";
  const fs::path unfinished = copy_run(s.conv1, tmp / "conv-unfinished");
  fs::remove(unfinished / "complete.json");
  const fs::path out = tmp / "agg";
  const auto r = run_edi("aggregate " + edi_run.string() + " " + conv5.string() + " " + crashed.string() + " " + missing.string() +
                         " " + unfinished.string() + " --out " + out.string() + " --evaluate --attacker lbph --utility gender=" +
                         s.gender_model.string() + " --bootstrap 100 --seed 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("aggregated 2 of 5 runs"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(unfinished / "metrics.json"));  // never evaluated: not finished
  // The CSV is a plain table (pandas.read_csv / read.csv); its context is in aggregate.meta.json.
  EXPECT_EQ(first_line(out / "aggregate.csv").rfind("run,dir,method,", 0), 0u) << first_line(out / "aggregate.csv");
  EXPECT_EQ(edi::read_file(out / "aggregate.csv").find('#'), std::string::npos);
  const json meta = json::parse(edi::read_file(out / "aggregate.meta.json"));
  EXPECT_EQ(meta["context"]["seed"], json::array({4}));
  EXPECT_EQ(meta["not_included"].size(), 3u);
  EXPECT_EQ(first_line(out / "aggregate.md"), "# EDI-Anon aggregate");
  const std::string md = edi::read_file(out / "aggregate.md");
  for (const char* key : {"date: ", "host: ", "code version: ", "data manifest sha256: ", "unit: identity", "6 identities probed", "seed 4"})
    EXPECT_NE(md.find(key), std::string::npos) << key;
  // Failed, missing and unfinished runs are listed, not dropped.
  EXPECT_NE(md.find(crashed.string() + "`: **not-finished**"), std::string::npos) << md;
  EXPECT_NE(md.find(missing.string() + "`: **missing**"), std::string::npos) << md;
  EXPECT_NE(md.find(unfinished.string() + "`: **not-finished**: no complete.json"), std::string::npos) << md;
  const edi::CsvTable t = edi::parse_csv(edi::read_file(out / "aggregate.csv"), "aggregate.csv");
  ASSERT_EQ(t.rows.size(), 3u);  // two runs and the EDI run's snapshot
  const json j = json::parse(edi::read_file(out / "aggregate.json"));
  EXPECT_EQ(j["format"], "edi-anon-aggregate");
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["context"]["runs"].get<int>(), 5);
  EXPECT_EQ(j["not_included"].size(), 3u);
  EXPECT_EQ(j["context"]["manifest_hashes"].size(), 1u);
  // CSV numbers are the runs' metrics.json values; heldout and linkage columns for the attacker.
  const json me = json::parse(edi::read_file(edi_run / "metrics.json"));
  const int c_run = edi::csv_column(t, "run"), c_top1 = edi::csv_column(t, "steering_in_loop_top1");
  ASSERT_GE(edi::csv_column(t, "lbph_heldout_top1_lo"), 0);
  ASSERT_GE(edi::csv_column(t, "lbph_linkage_top1"), 0);
  std::set<std::string> names;
  for (const auto& row : t.rows) {
    names.insert(row[static_cast<std::size_t>(c_run)]);
    if (row[static_cast<std::size_t>(c_run)] == "edi-blur-k3")
      EXPECT_NEAR(std::stod(row[static_cast<std::size_t>(c_top1)]), me["privacy"]["steering"]["top1"]["in_loop"]["value"].get<double>(), 1e-6);
  }
  EXPECT_TRUE(names.count("edi-blur-k3@" + s.snapshot_target)) << "snapshot row";
  // Matched privacy: the baseline is listed in both tables; an EDI match never has higher risk.
  ASSERT_EQ(j["matched"]["rows"].size(), 1u);
  const json& mrow = j["matched"]["rows"][0];
  EXPECT_EQ(mrow["baseline"], "conv-blur-k5");
  EXPECT_EQ(mrow["task"], "gender");
  if (!mrow["edi"].is_null()) {
    EXPECT_LE(mrow["edi_risk"].get<double>(), mrow["baseline_risk"].get<double>());
  } else {
    EXPECT_NE(mrow["reason"].get<std::string>().find("risk <="), std::string::npos);
  }
  ASSERT_EQ(j["matched"]["attacker_rows"].size(), 1u);
  EXPECT_EQ(j["matched"]["attacker_rows"][0]["attacker"], "lbph");
  EXPECT_NE(md.find("## Matched privacy on the steering risk"), std::string::npos);
  // LaTeX for pdflatex: booktabs rules, ASCII only.
  const std::string tex = edi::read_file(out / "aggregate.tex");
  EXPECT_NE(tex.find("\\toprule"), std::string::npos);
  for (unsigned char ch : tex) ASSERT_LT(ch, 128u) << "non-ASCII byte in aggregate.tex";
}

TEST(AggregateCli, ControlFirstAndFixedPairsWithClusterIntervals) {
  // The conventional k = 1 baseline (nothing changed) has the highest possible risk. The EDI
  // run records (as a sweep's target-risk = match does) that its snapshot's target came from
  // that baseline, so the pair is fixed to the snapshot, whatever its utility.
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path edi_run = copy_run(s.edi, tmp / "edi-blur-k3"), conv1 = copy_run(s.conv1, tmp / "conv-blur-k1"),
                 control = copy_run(s.control, tmp / "control");
  json summary = json::parse(edi::read_file(edi_run / "summary.json"));
  summary["options"]["matched-to"] = "conv-blur-k1:" + s.snapshot_target;
  std::ofstream(edi_run / "summary.json") << summary.dump(2);
  const auto r = run_edi("aggregate " + edi_run.string() + " " + conv1.string() + " " + control.string() + " --out " +
                         (tmp / "agg").string() + " --evaluate --attacker lbph --utility gender=" + s.gender_model.string() +
                         " --bootstrap 50");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = json::parse(edi::read_file(tmp / "agg" / "aggregate.json"));
  ASSERT_GE(j["runs"].size(), 4u);
  EXPECT_EQ(j["runs"][0]["run"], "control");  // given last, listed first
  EXPECT_TRUE(j["runs"][0]["control"].get<bool>());
  const edi::CsvTable t = edi::parse_csv(edi::read_file(tmp / "agg" / "aggregate.csv"), "aggregate.csv");
  EXPECT_EQ(t.rows[0][0], "control");
  ASSERT_EQ(j["matched"]["rows"].size(), 1u);
  const json& m = j["matched"]["rows"][0];
  EXPECT_EQ(m["baseline"], "conv-blur-k1");
  EXPECT_EQ(m["edi"], "edi-blur-k3@" + s.snapshot_target);
  EXPECT_EQ(m["pairing"], "matched-to");
  EXPECT_EQ(m["measure"], "macro-F1");
  const json& d = m["difference"];
  EXPECT_EQ(d["paired_images"].get<int>(), 72);
  EXPECT_EQ(d["n_identities"].get<int>(), 6);
  EXPECT_EQ(d["method"], "cluster-bootstrap");
  EXPECT_NEAR(d["value"].get<double>(), m["edi_utility"].get<double>() - m["baseline_utility"].get<double>(), 1e-6);
  EXPECT_LE(d["lo"].get<double>(), d["value"].get<double>());
  EXPECT_GE(d["hi"].get<double>(), d["value"].get<double>());
  // The attacker table pairs on the strongest independent attacker's heldout risk, closest at or below.
  ASSERT_EQ(j["matched"]["attacker_rows"].size(), 1u);
  const json& a = j["matched"]["attacker_rows"][0];
  if (!a["edi"].is_null()) {
    EXPECT_EQ(a["pairing"], "closest at or below");
    EXPECT_LE(a["edi_risk"].get<double>(), a["baseline_risk"].get<double>());
  }
}

/// Overfull boxes wider than 1 pt in a pdflatex log ("Overfull \hbox (12.3pt too wide)").
std::vector<std::string> overfull_over_1pt(const std::string& log) {
  std::vector<std::string> bad;
  const std::regex re("Overfull \\\\[hv]box \\(([0-9.]+)pt too (wide|high)\\)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it)
    if (std::stod((*it)[1]) > 1.0) bad.push_back(it->str());
  return bad;
}

TEST(AggregateCli, LatexCompilesWithPdflatexWithoutOverfullBoxes) {
  // Needs Debian's texlive-latex-base and texlive-latex-recommended (booktabs).
  ASSERT_EQ(run_command("command -v pdflatex").exit_code, 0)
      << "pdflatex not found: apt-get install texlive-latex-base texlive-latex-recommended";
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path edi_run = copy_run(s.edi, tmp / "edi-blur-k3"), conv5 = copy_run(s.conv5, tmp / "conv-blur-k5"),
                 control = copy_run(s.control, tmp / "control");
  const fs::path out = tmp / "agg";
  const auto r = run_edi("aggregate " + edi_run.string() + " " + conv5.string() + " " + control.string() + " --out " + out.string() +
                         " --evaluate --attacker lbph,faceapi --utility gender=" + s.gender_model.string() + " --bootstrap 20");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int compiled = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    if (e.path().extension() != ".tex") continue;
    const fs::path doc = tmp / ("doc-" + e.path().stem().string() + ".tex");
    std::ofstream(doc) << "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n\\input{"
                       << e.path().string() << "}\n\\end{document}\n";
    const auto c = run_command("cd " + tmp.path().string() + " && pdflatex -interaction=nonstopmode -halt-on-error " + doc.filename().string());
    EXPECT_EQ(c.exit_code, 0) << c.output;
    const std::string log = edi::read_file(tmp / ("doc-" + e.path().stem().string() + ".log"));
    EXPECT_EQ(log.find("\n! "), std::string::npos) << log;
    const auto bad = overfull_over_1pt(log);
    EXPECT_TRUE(bad.empty()) << bad.front();
    ++compiled;
  }
  EXPECT_GE(compiled, 1);
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
