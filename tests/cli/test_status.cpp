// `edi-anon status` on real run and sweep directories (finished, running,
// interrupted by SIGTERM, failed, pending), `--version`, `inspect` on an
// embedder, and a scan of every user-facing error message in src/.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <opencv2/imgcodecs.hpp>

#include "edi/core/fs.hpp"
#include "edi/report/status.hpp"
#include "support/testing.hpp"

using edi::testing::run_edi;
using edi::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

void must(const std::string& args) {
  const auto r = run_edi(args);
  ASSERT_EQ(r.exit_code, 0) << "edi-anon " << args << "\n" << r.output;
}

/// `cmd` under /bin/sh in a child process (exec'd, so the pid is the command's).
pid_t start_shell(const std::string& cmd) {
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

json status_json(const std::string& args) {
  const auto r = run_edi("status " + args + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  json j = json::parse(r.output, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.output;
  return j;
}

/// A small data set and a steering model, made once per test binary run.
struct Fixture {
  TempDir dir;
  std::string data, model;
  Fixture() {
    data = (dir / "data").string();
    model = (dir / "id.pt").string();
  }
};

const Fixture& fixture() {
  static Fixture f;
  static bool ready = false;
  if (!ready) {
    must("synth --identities 4 --per-identity 8 --size 32 --seed 5 --out " + f.data);
    must("train --data " + f.data + " --size 32 --epochs 2 --seed 1 --threads 1 --out " + f.model);
    ready = true;
  }
  return f;
}

/// The completion marker of interfaces §1. Until the runner that writes it is
/// merged, a run that wrote summary.json is given the marker here, after the
/// test has checked that status does not count it as finished without it.
void expect_marker_semantics(const fs::path& run) {
  ASSERT_TRUE(fs::exists(run / "summary.json"));
  if (fs::exists(run / "complete.json")) return;
  // --stale 0: not "running" because of the fresh files of a run that just ended.
  const json before = status_json(run.string() + " --stale 0");
  EXPECT_EQ(before["runs"][0]["state"], "interrupted") << before.dump(2);
  EXPECT_NE(before["runs"][0]["why"].get<std::string>().find("without complete.json"), std::string::npos);
  const json summary = json::parse(edi::read_file(run / "summary.json"));
  edi::write_file_atomic(run / "complete.json",
                         json{{"format", "edi-anon-complete"}, {"version", 1}, {"finished", "2026-11-30T00:00:00Z"},
                              {"passes_run", summary.value("passes_run", 0)}, {"images", summary["counts"].value("images", 0)}}
                             .dump());
}

}  // namespace

TEST(Status, FinishedRun) {
  const Fixture& f = fixture();
  TempDir d;
  const fs::path run = d / "conv";
  must("run --data " + f.data + " --model " + f.model + " --method conventional --operator blur --k 3 --threads 1 --out " +
       run.string());
  expect_marker_semantics(run);
  const json j = status_json(run.string());
  EXPECT_EQ(j["format"], "edi-anon-status");
  EXPECT_EQ(j["kind"], "run");
  ASSERT_EQ(j["runs"].size(), 1u);
  const json& r = j["runs"][0];
  EXPECT_EQ(r["state"], "done");
  EXPECT_EQ(r["method"], "conventional");
  EXPECT_EQ(r["total"], 32);
  EXPECT_EQ(r["active"], 0);
  EXPECT_EQ(r["eta_s"], 0.0);
  EXPECT_TRUE(r["risk_percent"].is_number());
  EXPECT_EQ(j["summary"]["done"], 1);
  const auto text = run_edi("status " + run.string());
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.output.find("1 run(s): 1 done, 0 running, 0 interrupted, 0 failed, 0 pending"), std::string::npos)
      << text.output;
}

TEST(Status, RunningThenInterruptedBySigterm) {
  const Fixture& f = fixture();
  TempDir d;
  const fs::path run = d / "edi";
  // Many fixed passes: the run is still going when it is looked at and stopped
  // (pass-major: the run-wide pass history grows as it runs).
  const std::string cmd = std::string(EDI_EXE) + " run --data " + f.data + " --model " + f.model +
                          " --operator blur --k 3 --stop fixed --passes 20000 --schedule pass --threads 1 --batch 8 --out " +
                          run.string() + " > " + (d / "log.txt").string() + " 2>&1";
  const pid_t pid = start_shell(cmd);
  ASSERT_GE(pid, 0);
  // Wait (generously: the CPU is shared) until two passes are in the history.
  bool progressed = false;
  for (int i = 0; i < 1200 && !progressed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const json j = json::parse(edi::testing::run_command("cat " + (run / "checkpoints" / "run.json").string() + " 2>/dev/null").output,
                               nullptr, false);
    progressed = j.is_object() && j.contains("passes") && j["passes"].size() >= 2;
  }
  ASSERT_TRUE(progressed) << edi::read_file(d / "log.txt");
  const json running = status_json(run.string());
  const json& r = running["runs"][0];
  EXPECT_EQ(r["state"], "running") << running.dump(2);
  EXPECT_GE(r["pass"].get<int>(), 1);
  EXPECT_EQ(r["total"], 32);
  EXPECT_TRUE(r["eta_s"].is_number());
  EXPECT_GT(r["eta_s"].get<double>(), 0.0);
  EXPECT_TRUE(r["last_progress"].is_string());

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 75) << edi::read_file(d / "log.txt");
  // --stale 0: a checkpoint of any age no longer proves a run alive elsewhere.
  const json stopped = status_json(run.string() + " --stale 0");
  EXPECT_EQ(stopped["runs"][0]["state"], "interrupted") << stopped.dump(2);
  EXPECT_EQ(stopped["runs"][0]["why"], "resumable: rerun the same command");
  EXPECT_TRUE(stopped["runs"][0]["eta_s"].is_number());
  EXPECT_EQ(stopped["summary"]["interrupted"], 1);
}

// Shard-major (the default of the fixed and image rules) has no run-wide pass
// while it runs: status reads the shards final, the images done and active
// from checkpoints/progress.json, which rank 0 rewrites as it prints.
TEST(Status, RunningShardMajor) {
  const Fixture& f = fixture();
  TempDir d;
  const fs::path run = d / "edi";
  const std::string cmd = std::string(EDI_EXE) + " run --data " + f.data + " --model " + f.model +
                          " --operator blur --k 3 --stop fixed --passes 20000 --threads 1 --batch 8 --shard-size 8 "
                          "--progress-every 0 --out " + run.string() + " > " + (d / "log.txt").string() + " 2>&1";
  const pid_t pid = start_shell(cmd);
  ASSERT_GE(pid, 0);
  bool progressed = false;
  for (int i = 0; i < 1200 && !progressed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    progressed = fs::exists(run / "checkpoints" / "progress.json");
  }
  ASSERT_TRUE(progressed) << edi::read_file(d / "log.txt");
  const json running = status_json(run.string());
  const json& r = running["runs"][0];
  EXPECT_EQ(r["state"], "running") << running.dump(2);
  EXPECT_EQ(r["shards"], 4) << running.dump(2);
  EXPECT_EQ(r["shards_final"], 0) << running.dump(2);
  EXPECT_EQ(r["total"], 32) << running.dump(2);
  EXPECT_TRUE(r["active"].is_number()) << running.dump(2);
  const std::string text = edi::testing::run_command(std::string(EDI_EXE) + " status " + run.string()).output;
  EXPECT_NE(text.find(" s0/4 "), std::string::npos) << text;
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 75) << edi::read_file(d / "log.txt");
}

TEST(Status, SweepWithDoneFailedAndPendingEntries) {
  const Fixture& f = fixture();
  TempDir d;
  const fs::path sweep = d / "s.ini", out = d / "sweep";
  fs::create_directories(d / "empty");  // a data set without images: the run fails before any work
  edi::write_file_atomic(sweep, "[sweep]\ncontrol = false\nevaluate = false\naggregate = false\nout = " + out.string() +
                                    "\n[run]\ndata = " + f.data + "\nmodel = " + f.model +
                                    "\nmethod = conventional\n[grid.conv-blur]\nk = 3\n"
                                    "[grid.no-images]\ndata = " + (d / "empty").string() +
                                    "\n[grid.conv-pixelate]\noperator = pixelate\nn = 4\n");
  must("sweep --config " + sweep.string() + " --index 0 --threads 1");
  // Under mpirun a run refused before any work is recorded in error.txt and the sweep goes on.
  const auto failed = edi::testing::run_command(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 mpirun -np 2 " +
      std::string(EDI_EXE) + " sweep --config " + sweep.string() + " --index 1 --threads 1");
  ASSERT_NE(failed.exit_code, 0) << failed.output;
  ASSERT_TRUE(fs::exists(out / "no-images" / "error.txt")) << failed.output;
  expect_marker_semantics(out / "conv-blur");

  const json j = status_json("--config " + sweep.string());
  EXPECT_EQ(j["kind"], "sweep");
  ASSERT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["runs"][0]["state"], "done");
  EXPECT_EQ(j["runs"][1]["state"], "failed");
  EXPECT_NE(j["runs"][1]["error"].get<std::string>().find((d / "empty").string()), std::string::npos) << j.dump(2);
  EXPECT_EQ(j["runs"][2]["state"], "pending");
  EXPECT_EQ(j["left_indices"], json::array({1, 2}));
  EXPECT_EQ(j["summary"]["done"], 1);
  EXPECT_EQ(j["summary"]["failed"], 1);
  EXPECT_EQ(j["summary"]["pending"], 1);

  const auto text = run_edi("status " + out.string() + " --config " + sweep.string());
  EXPECT_NE(text.output.find("left: --index 1,2"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("error: "), std::string::npos) << text.output;
  // Without the plan: the run directories found, by name.
  const json found = status_json(out.string());
  ASSERT_EQ(found["runs"].size(), 2u);
  EXPECT_EQ(found["left"], json::array({"no-images"}));
}

TEST(Status, BadArgumentsAreOneLine) {
  TempDir d;
  auto r = run_edi("status " + (d / "nope").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "edi-anon status: error: --dir " + (d / "nope").string() +
                          ": expected an existing run or sweep directory\n");
  r = run_edi("status " + d.path().string());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("neither a run directory"), std::string::npos) << r.output;
  r = run_edi("status " + d.path().string() + " --stale -1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "edi-anon status: error: --stale -1: expected a number in [0, 1e+06]\n");
}

// --mask-rule and --region-fallback reach the engine (the unit tests in
// tests/perturb check the rules themselves against references).
TEST(MaskingOptions, PixelRuleAndRegionFallbackEndToEnd) {
  const Fixture& f = fixture();
  TempDir d;
  const std::string base = "run --data " + f.data + " --model " + f.model + " --threads 1 ";
  auto r = run_edi(base + "--operator blur --mask-rule pixel --out " + (d / "x").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "edi-anon run: error: --mask-rule pixel: applies to --method edi --operator mask only (a "
                      "conventional or region mask already covers whole pixels)\n");
  r = run_edi(base + "--operator mask --region-fallback none --out " + (d / "x").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "edi-anon run: error: --region-fallback none: applies to --operator eyes|mouth|eyes-mouth only\n");
  EXPECT_FALSE(fs::exists(d / "x"));

  // EDI mask, whole-pixel rule, black: every changed pixel is black in all three channels.
  const fs::path pixel = d / "pixel";
  must(base + "--operator mask --mask-rule pixel --color 0,0,0 --q 95 --stop fixed --passes 2 --out " + pixel.string());
  int changed = 0, partial = 0, images = 0;
  for (const auto& e : fs::recursive_directory_iterator(pixel / "images")) {
    if (e.path().extension() != ".png") continue;
    const cv::Mat out = cv::imread(e.path().string(), cv::IMREAD_COLOR);
    const cv::Mat in = cv::imread((fs::path(f.data) / fs::relative(e.path(), pixel / "images")).string(), cv::IMREAD_COLOR);
    ASSERT_FALSE(out.empty() || in.empty()) << e.path();
    ASSERT_EQ(out.size(), in.size()) << e.path();
    ++images;
    for (int y = 0; y < out.rows; ++y)
      for (int x = 0; x < out.cols; ++x) {
        const auto a = in.at<cv::Vec3b>(y, x), b = out.at<cv::Vec3b>(y, x);
        if (a == b) continue;
        ++changed;
        if (b != cv::Vec3b(0, 0, 0)) ++partial;
      }
  }
  EXPECT_EQ(images, 32);
  EXPECT_GT(changed, 0);
  EXPECT_EQ(partial, 0) << "pixels changed without becoming the mask colour in every channel";

  // Region baseline, draw nothing where detection fails: the synthetic faces are not
  // Haar faces, so every image comes back as it was decoded.
  const fs::path none = d / "none";
  must(base + "--method conventional --operator eyes-mouth --region-fallback none --out " + none.string());
  const fs::path box = d / "box";
  must(base + "--method conventional --operator eyes-mouth --out " + box.string());
  int same_none = 0, same_box = 0;
  for (const auto& e : fs::recursive_directory_iterator(none / "images")) {
    if (e.path().extension() != ".png") continue;
    const fs::path rel = fs::relative(e.path(), none / "images");
    const cv::Mat in = cv::imread((fs::path(f.data) / rel).string(), cv::IMREAD_COLOR);
    const cv::Mat a = cv::imread(e.path().string(), cv::IMREAD_COLOR), b = cv::imread((box / "images" / rel).string(), cv::IMREAD_COLOR);
    same_none += cv::norm(in, a, cv::NORM_INF) == 0;
    same_box += cv::norm(in, b, cv::NORM_INF) == 0;
  }
  EXPECT_EQ(same_none, 32);
  EXPECT_EQ(same_box, 0);
}

TEST(Version, NamesTheLibrariesOfTheBuild) {
  const auto r = run_edi("--version");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* lib : {"edi-anon ", "LibTorch ", "OpenCV ", "HDF5 ", "MPI "})
    EXPECT_NE(r.output.find(lib), std::string::npos) << lib << "\n" << r.output;
}

TEST(Inspect, DescribesAnEmbedder) {
  const fs::path assets = fs::path(EDI_SOURCE_DIR) / ".assets" / "faceapi";
  std::error_code ec;  // an unreadable path (e.g. a symlink loop) counts as absent
  if (!fs::is_directory(assets, ec) && !std::getenv("EDI_ASSETS")) GTEST_SKIP() << assets << " absent (face-api weights)";
  const auto r = run_edi("inspect --model faceapi:recognition --reps 1 --batch 2 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("kind:           embedder"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("embedding:      128"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("input:          3x150x150"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("parameters:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ms per image"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Classifier"), std::string::npos) << r.output;
}

// Every user-facing error (ConfigError, DataError, IoError, ModelError) speaks in
// options, files and values: none of its string literals may name C++ code.
TEST(ErrorMessages, NameOptionsAndFilesNeverCode) {
  const std::regex throw_re(R"re(throw\s+(?:edi::)?(ConfigError|DataError|IoError|ModelError)\s*\()re");
  const std::regex literal_re(R"re("((?:[^"\\]|\\.)*)")re");
  const std::regex code_re(R"re(::|\bload_\w+|\w*Classifier\b|\bEmbedder\b|\bGallery\w*|\b[a-z_]+\(\)|\bat::)re");
  std::vector<std::string> offenders;
  int scanned = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(EDI_SOURCE_DIR) / "src")) {
    const std::string ext = e.path().extension().string();
    if (ext != ".cpp" && ext != ".hpp") continue;
    const std::string text = edi::read_file(e.path());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), throw_re); it != std::sregex_iterator(); ++it) {
      // The throw statement: up to the parenthesis that closes the constructor call.
      std::size_t i = static_cast<std::size_t>(it->position() + it->length());
      int depth = 1;
      bool in_string = false;
      for (; i < text.size() && depth > 0; ++i) {
        const char c = text[i];
        if (in_string) {
          if (c == '\\') ++i;
          else if (c == '"') in_string = false;
        } else if (c == '"') in_string = true;
        else if (c == '(') ++depth;
        else if (c == ')') --depth;
      }
      const std::string stmt = text.substr(static_cast<std::size_t>(it->position()), i - static_cast<std::size_t>(it->position()));
      ++scanned;
      for (auto l = std::sregex_iterator(stmt.begin(), stmt.end(), literal_re); l != std::sregex_iterator(); ++l) {
        const std::string lit = (*l)[1].str();
        if (std::regex_search(lit, code_re)) {
          const auto line = std::count(text.begin(), text.begin() + it->position(), '\n') + 1;
          offenders.push_back(fs::relative(e.path(), EDI_SOURCE_DIR).string() + ":" + std::to_string(line) + ": \"" + lit + "\"");
        }
      }
    }
  }
  EXPECT_GT(scanned, 200) << "the scan found too few throw statements to be meaningful";
  std::string list;
  for (const auto& o : offenders) list += "  " + o + "\n";
  EXPECT_TRUE(offenders.empty()) << "user-facing errors that name C++ code:\n" << list;
}
