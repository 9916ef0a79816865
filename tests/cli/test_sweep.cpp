// `edi-anon sweep` as a user runs it: the plan (control first, baselines before
// matched EDI runs, shown before the data exists), hostile sweep files, the
// [sweep] keys sharing `evaluate`'s options, and a small real sweep with
// target-risk = match, a failed run that is fixed (its error.txt cleared) and
// a job-array index whose baselines have not run.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "edi/core/fs.hpp"
#include "support/testing.hpp"

using edi::testing::run_edi;
using edi::testing::TempDir;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string sweep_cmd(const fs::path& ini, const fs::path& out, const std::string& more = "") {
  return "sweep --config " + ini.string() + " --out " + out.string() + " " + more;
}

/// The plan's entry names in order, from `--list`.
std::vector<std::string> plan_names(const std::string& listing) {
  std::vector<std::string> names;
  const std::regex entry(R"(^ *[0-9]+  (\S+)$)");
  std::istringstream in(listing);
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_match(line, m, entry)) names.push_back(m[1]);
  return names;
}

const char* kMatchedSweep =
    "[sweep]\nevaluate = false\naggregate = false\n"
    "[run]\ndata = D\nmodel = M.pt\nbatch = 8\nshard-size = 8\nstop = dataset\ntarget-risk = match\nmax-passes = 3\n"
    "[grid.edi-blur]\noperator = blur\nk = 5\n"
    "[grid.edi-noise]\noperator = noise\n"
    "[grid.conv-blur]\nmethod = conventional\noperator = blur\nk = 3 | 9\n"
    "[grid.conv-noise]\nmethod = conventional\noperator = noise\nsigma = 0.3\n";

}  // namespace

TEST(Sweep, PlanShowsBeforeTheDataExists) {
  TempDir d;
  edi::write_file_atomic(d / "s.ini", kMatchedSweep);
  const auto r = run_edi(sweep_cmd(d / "s.ini", d / "out", "--list"));
  ASSERT_EQ(r.exit_code, 0) << r.output;  // data D and model M.pt do not exist
  EXPECT_FALSE(fs::exists(d / "out"));
  EXPECT_EQ(plan_names(r.output),
            (std::vector<std::string>{"control", "conv-blur_k=3", "conv-blur_k=9", "conv-noise", "edi-blur", "edi-noise"}));
  EXPECT_NE(r.output.find("out: " + (d / "out").string() + "\naggregate: false\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--method=none"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("     after: 1,2 (target-risk = match: the measured steering risks of conv-blur_k=3, conv-blur_k=9)"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("     after: 3 (target-risk = match"), std::string::npos) << r.output;
  // The data is checked when a run starts: before any work, with one line.
  const auto run = run_edi(sweep_cmd(d / "s.ini", d / "out"));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(run.output, "edi-anon sweep: error: " + (d / "s.ini").string() + ": run 'control': --data D: expected an existing directory\n");
  // control = false: no control; a matched entry needs a baseline and the dataset rule.
  edi::write_file_atomic(d / "s.ini", std::string("[sweep]\ncontrol = false\n") + "[run]\ndata = D\nmodel = M.pt\n[grid.a]\nk = 5\n");
  EXPECT_EQ(plan_names(run_edi(sweep_cmd(d / "s.ini", d / "out", "--list")).output), std::vector<std::string>{"a"});
  edi::write_file_atomic(d / "s.ini", "[run]\ndata = D\nmodel = M.pt\nstop = dataset\ntarget-risk = match\n[grid.edi-mask]\noperator = mask\n");
  auto bad = run_edi(sweep_cmd(d / "s.ini", d / "out", "--list"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.output, "edi-anon sweep: error: " + (d / "s.ini").string() +
                            ": run 'edi-mask': target-risk = match but no conventional entry has operator mask (or eyes, mouth, eyes-mouth)\n");
  edi::write_file_atomic(d / "s.ini", "[run]\ndata = D\nmodel = M.pt\ntarget-risk = match\n[grid.e]\nk = 5\n[grid.c]\nmethod = conventional\n");
  bad = run_edi(sweep_cmd(d / "s.ini", d / "out", "--list"));
  EXPECT_EQ(bad.output, "edi-anon sweep: error: " + (d / "s.ini").string() + ": run 'e': target-risk = match needs stop = dataset (got stop = image)\n");
}

TEST(Sweep, HostileFilesAreRefusedWithOneLine) {
  TempDir d;
  const fs::path ini = d / "s.ini";
  const std::string head = "[run]\ndata = D\nmodel = M.pt\n";
  for (const std::string name : {"../../x", "./../x", "/abs", "my run", ".hidden", "a/b", "control"}) {
    edi::write_file_atomic(ini, head + "[grid." + name + "]\nk = 5\n");
    const auto r = run_edi(sweep_cmd(ini, d / "out", "--list"));
    EXPECT_EQ(r.exit_code, 2) << name << "\n" << r.output;
    EXPECT_EQ(r.output, "edi-anon sweep: error: " + ini.string() + ":4: grid name '" + name +
                            "': expected 1-100 letters, digits, '.', '_', '=' or '-', not starting with '.' or '-', without '..' "
                            "and not control, aggregate or slurm (it names a directory under --out), e.g. [grid.edi-blur]\n")
        << name;
  }
  // A byte-order mark is skipped; a repeated key names both lines.
  edi::write_file_atomic(ini, "\xEF\xBB\xBF" + head + "[grid.a]\nk = 5\n");
  EXPECT_EQ(run_edi(sweep_cmd(ini, d / "out", "--list")).exit_code, 0);
  edi::write_file_atomic(ini, head + "[grid.a]\nk = 5\nk = 9\n");
  const auto r = run_edi(sweep_cmd(ini, d / "out", "--list"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "edi-anon sweep: error: " + ini.string() +
                          ":6: key 'k' repeated in [grid.a] (first set at line 5; give a list as 'a | b' in one line)\n");
  EXPECT_FALSE(fs::exists(d / "out"));
  EXPECT_FALSE(fs::exists(d / "x"));
}

TEST(Sweep, SweepSectionSharesTheEvaluateOptions) {
  TempDir d;
  const fs::path ini = d / "s.ini";
  const std::string rest = "[run]\ndata = D\nmodel = M.pt\n[grid.a]\nk = 5\n";
  // evaluate's bound (1000000), not a second copy of it.
  edi::write_file_atomic(ini, "[sweep]\nbootstrap = 500000\nseed = 7\nattackers = lbph | none\n" + rest);
  EXPECT_EQ(run_edi(sweep_cmd(ini, d / "out", "--list")).exit_code, 0);
  edi::write_file_atomic(ini, "[sweep]\nbootstrap = 2000000\n" + rest);
  auto r = run_edi(sweep_cmd(ini, d / "out", "--list"));
  EXPECT_EQ(r.output, "edi-anon sweep: error: " + ini.string() + ": [sweep]: --bootstrap 2000000: expected an integer in [0, 1000000]\n");
  edi::write_file_atomic(ini, "[sweep]\nadaptive-epochs = 0\n" + rest);
  r = run_edi(sweep_cmd(ini, d / "out", "--list"));
  EXPECT_EQ(r.output, "edi-anon sweep: error: " + ini.string() + ": [sweep]: --adaptive-epochs 0: expected an integer in [1, 1000]\n");
  edi::write_file_atomic(ini, "[sweep]\nbootstraps = 10\n" + rest);
  r = run_edi(sweep_cmd(ini, d / "out", "--list"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output.rfind("edi-anon sweep: error: " + ini.string() + ": [sweep] bootstraps = 10: unknown key (", 0), 0u) << r.output;
  edi::write_file_atomic(ini, "[sweep]\ncontrol = maybe\n" + rest);
  r = run_edi(sweep_cmd(ini, d / "out", "--list"));
  EXPECT_EQ(r.output, "edi-anon sweep: error: " + ini.string() + ": [sweep] control = maybe: expected true or false\n");
}

TEST(Sweep, RunOptionsNoneAndTargetLists) {
  TempDir d;
  const fs::path ini = d / "s.ini";
  auto expect_list_error = [&](const std::string& grid, const std::string& message) {
    edi::write_file_atomic(ini, "[run]\ndata = D\nmodel = M.pt\n[grid.a]\n" + grid);
    const auto r = run_edi(sweep_cmd(ini, d / "out", "--list"));
    EXPECT_EQ(r.exit_code, 2) << grid;
    EXPECT_EQ(r.output, "edi-anon sweep: error: " + ini.string() + ": run '" + std::string("a") + "': " + message + "\n") << grid;
  };
  expect_list_error("method = nothing\n", "--method nothing: expected one of edi|conventional|none");
  expect_list_error("stop = dataset\ntarget-risk = 60,abc\n",
                    "--target-risk 60,abc: expected a percentage in [0, 100] or a comma list of them (e.g. 60,27.3,10)");
  expect_list_error("stop = dataset\ntarget-risk = 60,,10\n",
                    "--target-risk 60,,10: expected a percentage in [0, 100] or a comma list of them (e.g. 60,27.3,10)");
  expect_list_error("target-risk = 101\n",
                    "--target-risk 101: expected a percentage in [0, 100] or a comma list of them (e.g. 60,27.3,10)");
  expect_list_error("method = none\noperator = eyes\n",
                    "--operator eyes: region masking is a conventional baseline (use --method conventional)");
  edi::write_file_atomic(ini, "[run]\ndata = D\nmodel = M.pt\nmatched-to = x:1\n[grid.a]\nk = 5\n");
  EXPECT_EQ(run_edi(sweep_cmd(ini, d / "out", "--list")).output,
            "edi-anon sweep: error: " + ini.string() + ":4: 'matched-to' is set by the sweep (use target-risk = match)\n");
  edi::write_file_atomic(ini, "[run]\ndata = D\nmodel = M.pt\n[grid.a]\nstop = dataset\ntarget-risk = 10, 60,27.3\n");
  EXPECT_EQ(run_edi(sweep_cmd(ini, d / "out", "--list")).exit_code, 0);
}

namespace {
double json_number(const fs::path& file, const std::string& pointer) {
  return json::parse(edi::read_file(file)).at(json::json_pointer(pointer)).get<double>();
}
std::string provenance_option(const fs::path& run, const std::string& key) {
  return json::parse(edi::read_file(run / "provenance.json")).at("config").value(key, std::string("(unset)"));
}
}  // namespace

TEST(Sweep, MatchedTargetsControlAndErrorRecovery) {
  TempDir d;
  ASSERT_EQ(run_edi("synth --identities 4 --per-identity 6 --size 32 --seed 2 --out " + (d / "D").string()).exit_code, 0);
  const auto t = run_edi("train --data " + (d / "D").string() + " --size 32 --epochs 4 --seed 1 --threads 1 --out " + (d / "M.pt").string());
  ASSERT_EQ(t.exit_code, 0) << t.output;
  edi::write_file_atomic(d / "s.ini", kMatchedSweep);
  const std::string cd = "cd " + d.path().string() + " && " + EDI_EXE + " ";

  // A job-array task of a matched entry before its baselines ran: refused, exit 2.
  auto r = edi::testing::run_command(cd + "sweep --config s.ini --out out --index 4 --threads 1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("run 'edi-blur': target-risk = match: baseline 'conv-blur_k=3' (entry 1) has not finished (no out/conv-blur_k=3/complete.json); the baselines run first"),
            std::string::npos) << r.output;

  // The whole sweep: control and baselines first, then the matched EDI runs.
  r = edi::testing::run_command(cd + "sweep --config s.ini --out out --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path out = d / "out";
  EXPECT_EQ(json::parse(edi::read_file(out / "control" / "summary.json")).value("method", ""), "none");
  EXPECT_EQ(json_number(out / "control" / "summary.json", "/passes_run"), 0);
  EXPECT_EQ(provenance_option(out / "control", "method"), "none");
  const double b3 = json_number(out / "conv-blur_k=3" / "summary.json", "/final_risk_percent");
  const double b9 = json_number(out / "conv-blur_k=9" / "summary.json", "/final_risk_percent");
  auto text = [](double risk) {  // rounded up to 4 decimals, printed %g
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", std::ceil(risk * 1e4 - 1e-7) / 1e4);
    return std::string(buf);
  };
  const std::string hi = text(std::max(b3, b9)), lo = text(std::min(b3, b9));
  EXPECT_EQ(provenance_option(out / "edi-blur", "target-risk"), hi == lo ? hi : hi + "," + lo);
  EXPECT_EQ(provenance_option(out / "edi-blur", "matched-to"), "conv-blur_k=3:" + text(b3) + ",conv-blur_k=9:" + text(b9));
  const double noise = json_number(out / "conv-noise" / "summary.json", "/final_risk_percent");
  EXPECT_EQ(provenance_option(out / "edi-noise", "matched-to"), "conv-noise:" + text(noise));
  // The stop rule ran to the lowest target (or the pass cap).
  const double final_risk = json_number(out / "edi-blur" / "summary.json", "/final_risk_percent");
  const double passes = json_number(out / "edi-blur" / "summary.json", "/passes_run");
  EXPECT_TRUE(final_risk <= std::min(b3, b9) + 1e-9 || passes >= 3) << final_risk << " after " << passes;
  EXPECT_NE(r.output.find("  target-risk " + provenance_option(out / "edi-blur", "target-risk") + " (matched to conv-blur_k=3:"),
            std::string::npos) << r.output;

  // The index form takes finished baselines (complete.json, written last by
  // the runner: written here where this checkout's runner predates it).
  for (const char* b : {"conv-blur_k=3", "conv-blur_k=9"})
    if (!fs::exists(out / b / "complete.json"))
      edi::write_file_atomic(out / b / "complete.json", R"({"format":"edi-anon-complete","version":1})" "\n");
  r = edi::testing::run_command(cd + "sweep --config s.ini --out out --index 4 --threads 1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(provenance_option(out / "edi-blur", "matched-to"), "conv-blur_k=3:" + text(b3) + ",conv-blur_k=9:" + text(b9));
}

TEST(Sweep, AFixedRunLosesItsStaleErrorFile) {
  TempDir d;
  ASSERT_EQ(run_edi("synth --identities 3 --per-identity 4 --size 32 --seed 2 --out " + (d / "D").string()).exit_code, 0);
  ASSERT_EQ(run_edi("train --data " + (d / "D").string() + " --size 32 --epochs 2 --threads 1 --out " + (d / "M.pt").string()).exit_code, 0);
  edi::write_file_atomic(d / "L.csv", "who,what\nx,y\n");  // a labels file without an identity column
  edi::write_file_atomic(d / "s.ini", "[sweep]\nevaluate = false\naggregate = false\ncontrol = false\n"
                                      "[run]\ndata = D\nlabels = L.csv\nmodel = M.pt\nbatch = 4\n[grid.c]\nmethod = conventional\nk = 3\n");
  const std::string cmd = "cd " + d.path().string() + " && " + EDI_EXE + " sweep --config s.ini --out out --threads 1";
  auto r = edi::testing::run_command(cmd);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  ASSERT_TRUE(fs::exists(d / "out" / "c" / "error.txt")) << r.output;
  fs::copy_file(d / "D" / "labels.csv", d / "L.csv", fs::copy_options::overwrite_existing);
  r = edi::testing::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(d / "out" / "c" / "error.txt"));
  EXPECT_TRUE(fs::exists(d / "out" / "c" / "summary.json"));
}

TEST(Sweep, ASignalDuringTheEvaluationExits75) {
  TempDir d;
  ASSERT_EQ(run_edi("synth --identities 3 --per-identity 6 --size 32 --seed 2 --out " + (d / "D").string()).exit_code, 0);
  ASSERT_EQ(run_edi("train --data " + (d / "D").string() + " --size 32 --epochs 2 --threads 1 --out " + (d / "M.pt").string()).exit_code, 0);
  // The adaptive attacker's 1000 epochs keep the evaluation busy long enough.
  edi::write_file_atomic(d / "s.ini", "[sweep]\nattackers = adaptive\nadaptive-epochs = 1000\nutility = none\nbootstrap = 0\ncontrol = false\n"
                                      "[run]\ndata = D\nmodel = M.pt\nbatch = 6\nsplit = all\n[grid.c]\nmethod = conventional\nk = 3\n");
  const std::string sweep = std::string(EDI_EXE) + " sweep --config s.ini --out out --threads 1 --index 0";
  ASSERT_EQ(edi::testing::run_command("cd " + d.path().string() + " && " + sweep + " --no-evaluate").exit_code, 0);
  const auto r = edi::testing::run_command("cd " + d.path().string() + " && { " + sweep +
                                           " --evaluate-only & pid=$!; sleep 4; kill -USR1 $pid; wait $pid; echo \"rc=$?\"; }");
  EXPECT_NE(r.output.find("rc=75"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("a rerun evaluates it (exit 75)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("signal 10 during the evaluation of 'c'"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d / "out" / "c" / "metrics.json"));
  EXPECT_TRUE(fs::exists(d / "out" / "c" / "summary.json"));
}

// Run options in a sweep file go through the same rows as `edi-anon run`:
// switches take true or false, keys the sweep sets are refused with their line,
// a bad --index is a config error (exit 2, one line), and [sweep] bools name the key.
TEST(Sweep, RunKeysFollowTheOptionRows) {
  TempDir d;
  const fs::path ini = d / "s.ini";
  const std::string head = "[run]\ndata = D\nmodel = M.pt\n";
  edi::write_file_atomic(ini, head + "jpeg-roundtrip = true\nno-images = false\n[grid.a]\nk = 5 | 9\n");
  auto r = run_edi(sweep_cmd(ini, d / "out", "--list"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--jpeg-roundtrip --k=5"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("no-images"), std::string::npos) << r.output;
  edi::write_file_atomic(ini, head + "jpeg-roundtrip = maybe\n[grid.a]\nk = 5\n");
  r = run_edi(sweep_cmd(ini, d / "out", "--list"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "edi-anon sweep: error: " + ini.string() + ": run 'control': jpeg-roundtrip = maybe: "
                      "expected true or false\n");
  edi::write_file_atomic(ini, head + "threads = 4\n[grid.a]\nk = 5\n");
  r = run_edi(sweep_cmd(ini, d / "out", "--list"));
  EXPECT_EQ(r.output, "edi-anon sweep: error: " + ini.string() + ":4: 'threads' is set by the sweep's --threads\n");
  edi::write_file_atomic(ini, head + "[grid.a]\nk = 5\n");
  for (const std::string index : {"abc", "7", "-1", "1x"}) {
    r = run_edi(sweep_cmd(ini, d / "out", "--list --index " + index));
    EXPECT_EQ(r.exit_code, 2) << index;
    EXPECT_EQ(r.output, "edi-anon sweep: error: --index " + index + ": expected an integer in [0, 1]\n");
  }
  edi::write_file_atomic(ini, "[sweep]\nevaluate = yes\n" + head + "[grid.a]\nk = 5\n");
  r = run_edi(sweep_cmd(ini, d / "out", "--list"));
  EXPECT_EQ(r.output, "edi-anon sweep: error: " + ini.string() + ": [sweep] evaluate = yes: expected true or false\n");
  EXPECT_FALSE(fs::exists(d / "out"));
}

// Under mpirun the runs are evaluated after the runs, each by one rank (a
// shared counter hands them out): every run gets the metrics that one process
// computes, and a signal during those evaluations ends the job with exit 75.
TEST(Sweep, RanksShareTheEvaluationsWithTheSameMetrics) {
  TempDir d;
  ASSERT_EQ(run_edi("synth --identities 3 --per-identity 6 --size 32 --seed 2 --out " + (d / "D").string()).exit_code, 0);
  ASSERT_EQ(run_edi("train --data " + (d / "D").string() + " --size 32 --epochs 2 --threads 1 --out " + (d / "M.pt").string()).exit_code, 0);
  edi::write_file_atomic(d / "s.ini", "[sweep]\nattackers = lbph\nutility = none\nbootstrap = 200\n"
                                      "[run]\ndata = D\nmodel = M.pt\nbatch = 6\nsplit = all\n"
                                      "[grid.c]\nmethod = conventional\nk = 3 | 9\n[grid.n]\nmethod = conventional\noperator = noise\n");
  const std::string cd = "cd " + d.path().string() + " && ";
  const std::string mpirun = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 mpirun -np 2 ";
  const auto one = edi::testing::run_command(cd + EDI_EXE + " sweep --config s.ini --out one --threads 1");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = edi::testing::run_command(cd + mpirun + EDI_EXE + " sweep --config s.ini --out two --threads 1");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("evaluating 4 run(s) on 2 rank(s)"), std::string::npos) << two.output;
  EXPECT_NE(two.output.find("(rank 0): metrics: "), std::string::npos) << two.output;
  EXPECT_NE(two.output.find("(rank 1): metrics: "), std::string::npos) << two.output;
  for (const char* run : {"control", "c_k=3", "c_k=9", "n"}) {
    const json a = json::parse(edi::read_file(d / "one" / run / "metrics.json"));
    const json b = json::parse(edi::read_file(d / "two" / run / "metrics.json"));
    for (const char* block : {"privacy", "utility", "quality", "images", "identities"}) EXPECT_EQ(a[block], b[block]) << run << " " << block;
    EXPECT_EQ(edi::read_file(d / "one" / run / "metrics-images.csv"), edi::read_file(d / "two" / run / "metrics-images.csv")) << run;
  }
  EXPECT_TRUE(fs::exists(d / "two" / "aggregate" / "aggregate.csv"));

  // A signal while the ranks evaluate (the adaptive attacker's 1000 epochs keep
  // them busy): exit 75, nothing half-written; the rerun evaluates what is missing.
  edi::write_file_atomic(d / "a.ini", "[sweep]\nattackers = adaptive\nadaptive-epochs = 1000\nutility = none\nbootstrap = 0\ncontrol = false\n"
                                      "[run]\ndata = D\nmodel = M.pt\nbatch = 6\nsplit = all\n[grid.c]\nmethod = conventional\nk = 3 | 9\n");
  const auto r = edi::testing::run_command(cd + "{ " + mpirun + EDI_EXE + " sweep --config a.ini --out a --threads 1 > a.log 2>&1 & pid=$!; "
                                           "for i in $(seq 300); do grep -q 'evaluating 2 run' a.log && break; sleep 0.1; done; sleep 2; "
                                           "kill -USR1 $pid; wait $pid; echo \"rc=$?\"; cat a.log; }");
  EXPECT_NE(r.output.find("rc=75"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("a rerun evaluates it (exit 75)"), std::string::npos) << r.output;
  for (const char* run : {"c_k=3", "c_k=9"}) {
    EXPECT_TRUE(fs::exists(d / "a" / run / "complete.json")) << run;
    EXPECT_FALSE(fs::exists(d / "a" / run / "metrics.json")) << run;
  }
}
