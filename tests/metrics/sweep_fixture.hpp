#pragma once
// A small real sweep shared by the metrics, report and analysis integration
// tests: a synthetic MTF-layout data set (6 identities × 12 images, 32 px), an
// identity and a gender classifier trained on it, and four runs made with the
// real binary: EDI blur (k 3, cap 4), conventional blur k 5, conventional blur
// k 1 (the identity: every image unchanged, so metrics have known answers) and
// conventional blur k 5 on the train split only. Built once per binary of
// edi-anon (ctest runs each test in its own process): cached under the temp
// directory, keyed by the binary's modification time; DONE marks it complete.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <iterator>
#include <string>

#include "support/testing.hpp"

namespace edi::testing {

struct Sweep {
  std::filesystem::path root, data, id_model, gender_model, edi, conv5, conv1, train_only, control;
  std::string snapshot_target;  ///< the edi run's snapshot: edi / "snapshots" / snapshot_target
};

inline void must(const std::string& args) {
  const CommandResult r = run_edi(args);
  if (r.exit_code != 0) throw std::runtime_error("edi-anon " + args + " failed (" + std::to_string(r.exit_code) + "):\n" + r.output);
}

inline Sweep sweep_at(const std::filesystem::path& root) {
  Sweep s;
  s.root = root;
  s.data = s.root / "data";
  s.id_model = s.root / "id.pt";
  s.gender_model = s.root / "gender.pt";
  s.edi = s.root / "runs" / "edi-blur-k3";
  s.conv5 = s.root / "runs" / "conv-blur-k5";
  s.conv1 = s.root / "runs" / "conv-blur-k1";
  s.train_only = s.root / "runs" / "conv-train-only";
  s.control = s.root / "runs" / "control";
  s.snapshot_target = "70";
  return s;
}

/// The completion marker of interfaces §1. The runner writes it last; a run
/// made by a binary from before that interface gets it here, so the fixture
/// works on both sides of the merge (never overwrites the runner's own).
inline void ensure_complete(const std::filesystem::path& run) {
  if (std::filesystem::exists(run / "complete.json")) return;
  std::ofstream(run / "complete.json") << R"({"format":"edi-anon-complete","version":1,"finished":"2026-01-01T00:00:00Z",)"
                                       << R"("passes_run":0,"images":0})" << "\n";
}

/// A snapshot (interfaces §3) of a run's final pass: images/, outcomes.csv and
/// snapshot.json copied from the run itself, so its risk is the run's final risk.
inline void add_snapshot(const std::filesystem::path& run, const std::string& target) {
  namespace fs = std::filesystem;
  const fs::path snap = run / "snapshots" / target;
  fs::create_directories(snap);
  fs::copy(run / "images", snap / "images", fs::copy_options::recursive);
  fs::copy_file(run / "outcomes.csv", snap / "outcomes.csv");
  const std::string summary = [&] {
    std::ifstream in(run / "summary.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  auto number_after = [&](const std::string& key) {
    const auto at = summary.find("\"" + key + "\"");
    if (at == std::string::npos) throw std::runtime_error("summary.json has no " + key);
    return std::stod(summary.substr(summary.find(':', at) + 1));
  };
  const double risk = number_after("final_risk_percent");
  if (risk > std::stod(target)) throw std::runtime_error("snapshot target " + target + " below the run's final risk");
  std::ofstream out(snap / "snapshot.json");
  out.precision(17);
  out << R"({"format":"edi-anon-snapshot","version":1,"target_percent":)" << target
                                        << R"(,"pass":)" << static_cast<int>(number_after("passes_run")) << R"(,"risk_percent":)"
                                        << risk << R"(,"identified":0,"total":72})" << "\n";
}

/// The control run of interfaces §2 (`--method none`: the originals as decoded
/// and resized). A binary from before that interface refuses the method; then
/// the control is made with blur k = 1, which writes exactly those images, and
/// summary.json is marked method none. Drop the fallback once the engine has it.
inline void make_control(const Sweep& s, const std::string& model_args) {
  namespace fs = std::filesystem;
  const CommandResult r = run_edi("run" + model_args + " --out " + s.control.string() + " --method none");
  if (r.exit_code == 0) return;
  fs::remove_all(s.control);
  must("run" + model_args + " --out " + s.control.string() + " --method conventional --operator blur --k 1");
  std::ifstream in(s.control / "summary.json");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const std::string key = "\"method\": \"conventional\"";
  const auto at = text.find(key);
  if (at == std::string::npos) throw std::runtime_error("control fallback: summary.json has no " + key);
  text.replace(at, key.size(), "\"method\": \"none\"");
  std::ofstream(s.control / "summary.json") << text;
}

inline const Sweep& sweep() {
  namespace fs = std::filesystem;
  static Sweep s;
  static bool ready = false;
  if (ready) return s;
  const auto stamp = fs::last_write_time(EDI_EXE).time_since_epoch().count();
  const fs::path root = fs::temp_directory_path() / ("edi-test-sweep-" + std::to_string(stamp));
  fs::create_directories(root);
  // One builder at a time (parallel ctest); the others wait, then reuse.
  // The lock is released on every path (a failed build must not leave this
  // process waiting on its own lock in the next test).
  struct Lock {
    int fd;
    ~Lock() {
      if (fd >= 0) {
        ::flock(fd, LOCK_UN);
        ::close(fd);
      }
    }
  } lock{::open((root.string() + ".lock").c_str(), O_CREAT | O_RDWR, 0600)};
  if (lock.fd < 0 || ::flock(lock.fd, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + root.string() + ".lock");
  s = sweep_at(root);
  if (!fs::exists(root / "DONE")) {
    for (const auto& e : fs::directory_iterator(root)) fs::remove_all(e.path());
    const std::string d = s.data.string();
    must("synth --identities 6 --per-identity 12 --size 32 --seed 3 --out " + d);
    must("train --data " + d + " --size 32 --epochs 6 --seed 1 --out " + s.id_model.string());
    must("train --data " + d + " --task gender --size 32 --epochs 4 --seed 1 --out " + s.gender_model.string());
    const std::string m = " --data " + d + " --model " + s.id_model.string();
    // --examples: the explanation grid (analysis/image_grid.py) needs stored examples, opt-in since they embed originals.
    must("run" + m + " --out " + s.edi.string() + " --operator blur --k 3 --max-passes 4 --examples 4");
    must("run" + m + " --out " + s.conv5.string() + " --method conventional --operator blur --k 5");
    must("run" + m + " --out " + s.conv1.string() + " --method conventional --operator blur --k 1");
    must("run" + m + " --out " + s.train_only.string() + " --method conventional --operator blur --k 5 --split train");
    make_control(s, m);
    for (const auto& run : {s.edi, s.conv5, s.conv1, s.train_only, s.control}) ensure_complete(run);
    add_snapshot(s.edi, s.snapshot_target);
    std::ofstream(root / "DONE") << "ok\n";
  }
  ready = true;
  return s;
}

/// A fresh copy of a run directory without any evaluation output, so a test
/// controls exactly how (and whether) it is evaluated.
inline std::filesystem::path copy_run(const std::filesystem::path& run, const std::filesystem::path& dst) {
  namespace fs = std::filesystem;
  fs::copy(run, dst, fs::copy_options::recursive);
  for (const char* f : {"metrics.json", "metrics-images.csv", "export-mapping.csv"}) fs::remove(dst / f);
  fs::remove_all(dst / "attackers");
  if (fs::is_directory(dst / "snapshots"))
    for (const auto& e : fs::directory_iterator(dst / "snapshots")) {
      fs::remove(e.path() / "metrics.json");
      fs::remove(e.path() / "metrics-images.csv");
      fs::remove_all(e.path() / "attackers");
    }
  return dst;
}

}  // namespace edi::testing
