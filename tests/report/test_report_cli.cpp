// `edi-anon aggregate` on a real small sweep (export: test_export.cpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "edi/core/csv.hpp"
#include "edi/core/fs.hpp"
#include "edi/core/progress.hpp"
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

/// Wrap a .tex file in a minimal article, compile it with pdflatex; expect no error and no overfull box > 1 pt.
void expect_compiles(const TempDir& tmp, const fs::path& tex, const std::string& name) {
  const fs::path doc = tmp / ("doc-" + name + ".tex");
  std::ofstream(doc) << "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n\\input{"
                     << tex.string() << "}\n\\end{document}\n";
  const auto c = run_command("cd " + tmp.path().string() + " && pdflatex -interaction=nonstopmode -halt-on-error " + doc.filename().string());
  EXPECT_EQ(c.exit_code, 0) << name << "\n" << c.output;
  const std::string log = edi::read_file(tmp / ("doc-" + name + ".log"));
  EXPECT_EQ(log.find("\n! "), std::string::npos) << name << "\n" << log;
  const auto bad = overfull_over_1pt(log);
  EXPECT_TRUE(bad.empty()) << name << ": " << (bad.empty() ? "" : bad.front());
}

// Issue 14 item 7: every column set compiles with pdflatex (booktabs, graphicx) without errors or overfull boxes.
TEST(AggregateCli, LatexCompilesWithPdflatexWithoutOverfullBoxes) {
  // Needs Debian's texlive-latex-base and texlive-latex-recommended (booktabs).
  ASSERT_EQ(run_command("command -v pdflatex").exit_code, 0)
      << "pdflatex not found: apt-get install texlive-latex-base texlive-latex-recommended";
  const Sweep& s = sweep();
  TempDir tmp;
  // A long run name: the tables then use short labels R1, R2, ... and the label table gives the names.
  const fs::path edi_run = copy_run(s.edi, tmp / "edi-blur-k3-a-long-sweep-entry-name"), conv5 = copy_run(s.conv5, tmp / "conv-blur-k5"),
                 control = copy_run(s.control, tmp / "control");
  const std::string runs = edi_run.string() + " " + conv5.string() + " " + control.string();
  auto r = run_edi("aggregate " + runs + " --out " + (tmp / "agg-compact").string() + " --evaluate --attacker lbph,faceapi --utility gender=" +
                   s.gender_model.string() + " --bootstrap 20");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_compiles(tmp, tmp / "agg-compact" / "aggregate.tex", "compact");
  const std::string md = edi::read_file(tmp / "agg-compact" / "aggregate.md");
  EXPECT_NE(md.find("## Runs: compact"), std::string::npos) << md;
  EXPECT_NE(md.find("| label | run | method |"), std::string::npos) << md;
  EXPECT_NE(md.find("| R1 | control | none |"), std::string::npos) << md;  // the control run first
  EXPECT_EQ(md.find("linkage top-1"), std::string::npos) << "compact: no linkage columns";
  EXPECT_EQ(edi::read_file(tmp / "agg-compact" / "aggregate.tex").find("table*}[tp]\n\\centering\\scriptsize\n\\caption{Re-id"),
            std::string::npos) << "the compact table is a one-column float";
  // The other presets and a comma list, from the metrics.json files written above.
  for (const std::string set : {"privacy", "utility", "quality", "all", "privacy,utility"}) {
    const fs::path out = tmp / ("agg-" + set);
    r = run_edi("aggregate " + runs + " --out " + out.string() + " --columns " + set + " --bootstrap 20");
    ASSERT_EQ(r.exit_code, 0) << set << "\n" << r.output;
    expect_compiles(tmp, out / "aggregate.tex", set == "privacy,utility" ? "privacy-utility" : set);
    const std::string md_all = edi::read_file(out / "aggregate.md");
    const auto from = md_all.find("## Runs: " + set), to = md_all.find("## Run labels");
    ASSERT_NE(from, std::string::npos) << set << "\n" << md_all;
    ASSERT_NE(to, std::string::npos) << set;
    const std::string m = md_all.substr(from, to - from);  // the runs table
    const bool privacy = set == "privacy" || set == "all" || set == "privacy,utility";
    const bool utility = set == "utility" || set == "all" || set == "privacy,utility";
    EXPECT_EQ(m.find("lbph linkage top-1") != std::string::npos, privacy) << set;
    EXPECT_EQ(m.find("gender macro-F1") != std::string::npos, utility) << set;
    EXPECT_EQ(m.find("| SSIM |") != std::string::npos, set == "quality" || set == "all") << set;
    // The CSV always holds every column.
    EXPECT_EQ(edi::read_file(out / "aggregate.csv"), edi::read_file(tmp / "agg-compact" / "aggregate.csv")) << set;
  }
  r = run_edi("aggregate " + runs + " --out " + (tmp / "agg-bad").string() + " --columns privacy,speed");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--columns privacy,speed: 'speed' is not a column set"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "agg-bad"));
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

// --- progress lines (issue 14 item 4) ---------------------------------------------------------

namespace {
/// The lines of `text` that start with "progress: ".
std::vector<std::string> progress_lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    if (line.rfind("progress: ", 0) == 0) out.push_back(line);
  return out;
}
/// Every line has the documented format; returns the labels seen.
std::set<std::string> check_format(const std::vector<std::string>& lines) {
  const std::regex re(R"(progress: (.+): \d+/\d+ [a-z ]+ \(\d+%\), elapsed (\d+ s|\d+m\d\ds|\d+h\d\dm), (ETA (\d+ s|\d+m\d\ds|\d+h\d\dm|\?)|done))");
  std::set<std::string> labels;
  std::smatch m;
  for (const auto& l : lines) {
    EXPECT_TRUE(std::regex_match(l, m, re)) << l;
    if (!m.empty()) labels.insert(m[1]);
  }
  return labels;
}
}  // namespace

TEST(Progress, ClassWritesLogLinesTerminalLinesOrNothing) {
  TempDir tmp;
  for (int mode : {0, 1, 2}) {  // log lines, terminal, disabled
    const fs::path f = tmp / ("p" + std::to_string(mode));
    FILE* out = std::fopen(f.c_str(), "w");
    ASSERT_NE(out, nullptr);
    edi::ProgressSettings ps;
    ps.enabled = mode != 2;
    ps.every_seconds = 0;
    ps.terminal = mode == 1 ? 1 : 0;
    ps.out = out;
    edi::set_progress_settings(ps);
    {
      edi::Progress p("step", 4, "images");
      for (int i = 0; i < 4; ++i) p.add();
      p.finish();
    }
    std::fclose(out);
    edi::set_progress_settings({});
    const std::string text = edi::read_file(f);
    if (mode == 0) {
      const auto lines = progress_lines(text);
      ASSERT_EQ(lines.size(), 5u) << text;  // one per update, then the closing line
      EXPECT_EQ(check_format(lines), std::set<std::string>{"step"});
      EXPECT_EQ(lines[1].substr(0, 42), "progress: step: 2/4 images (50%), elapsed ");
      EXPECT_NE(lines.back().find(", done"), std::string::npos) << lines.back();
    } else if (mode == 1) {
      EXPECT_EQ(text.find('\n'), std::string::npos) << "a terminal gets one rewritten line";
      EXPECT_EQ(text.rfind("\r\033[K"), text.size() - 4) << "and it is cleared at the end";
      EXPECT_NE(text.find("\rprogress: step: 0/4 images (0%)"), std::string::npos) << text;
    } else {
      EXPECT_EQ(text, "");
    }
  }
}

TEST(Progress, EvaluateTrainAndAggregateInALog) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path run = copy_run(s.edi, tmp / "edi-blur-k3");
  const std::string eval = "evaluate " + run.string() + " --attacker lbph,adaptive --adaptive-epochs 2 --bootstrap 20 --progress-every 0";
  // (braces: run_command appends 2>&1, which must not undo these redirections)
  auto r = run_command("{ " + std::string(EDI_EXE) + " " + eval + " > " + (tmp / "out.txt").string() + " 2> " + (tmp / "err.txt").string() + "; }");
  ASSERT_EQ(r.exit_code, 0) << edi::read_file(tmp / "err.txt");
  EXPECT_TRUE(progress_lines(edi::read_file(tmp / "out.txt")).empty()) << "progress goes to stderr";
  auto labels = check_format(progress_lines(edi::read_file(tmp / "err.txt")));
  for (const char* l : {"evaluate edi-blur-k3: attacker lbph", "evaluate edi-blur-k3: quality", "evaluate edi-blur-k3@70: quality"})
    EXPECT_TRUE(labels.count(l)) << l << " in\n" << edi::read_file(tmp / "err.txt");
  const json m = json::parse(edi::read_file(run / "metrics.json"));
  for (const auto& a : m["privacy"]["attackers"])
    if (a["name"] == "adaptive" && a["available"].get<bool>())
      EXPECT_TRUE(labels.count("evaluate edi-blur-k3: attacker adaptive (training)")) << edi::read_file(tmp / "err.txt");
  r = run_edi(eval + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(progress_lines(r.output).empty()) << r.output;

  const std::string train = "train --data " + s.data.string() + " --labels none --epochs 2 --patience 5 --threads 1 --progress-every 0 --out ";
  r = run_command("{ " + std::string(EDI_EXE) + " " + train + (tmp / "m.pt").string() + " 2> " + (tmp / "train-err.txt").string() + "; }");
  ASSERT_EQ(r.exit_code, 0) << r.output << edi::read_file(tmp / "train-err.txt");
  const auto tl = progress_lines(edi::read_file(tmp / "train-err.txt"));
  EXPECT_EQ(check_format(tl), std::set<std::string>{"train m.pt"});
  ASSERT_EQ(tl.size(), 3u) << edi::read_file(tmp / "train-err.txt");  // epoch 1, epoch 2, closing line
  EXPECT_EQ(tl[0].rfind("progress: train m.pt: 1/2 epochs (50%), elapsed ", 0), 0u) << tl[0];
  EXPECT_NE(tl[0].find(", ETA "), std::string::npos) << tl[0];
  r = run_edi(train + (tmp / "m2.pt").string() + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(progress_lines(r.output).empty()) << r.output;

  r = run_command("{ " + std::string(EDI_EXE) + " aggregate " + run.string() + " --out " + (tmp / "agg").string() +
                  " --progress-every 0 2> " + (tmp / "agg-err.txt").string() + "; }");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  labels = check_format(progress_lines(edi::read_file(tmp / "agg-err.txt")));
  EXPECT_TRUE(labels.count("aggregate: runs read")) << edi::read_file(tmp / "agg-err.txt");
}
