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
#include <string>

#include "support/testing.hpp"

namespace edi::testing {

struct Sweep {
  std::filesystem::path root, data, id_model, gender_model, edi, conv5, conv1, train_only;
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
  return s;
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
    must("run" + m + " --out " + s.edi.string() + " --operator blur --k 3 --max-passes 4");
    must("run" + m + " --out " + s.conv5.string() + " --method conventional --operator blur --k 5");
    must("run" + m + " --out " + s.conv1.string() + " --method conventional --operator blur --k 1");
    must("run" + m + " --out " + s.train_only.string() + " --method conventional --operator blur --k 5 --split train");
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
  return dst;
}

}  // namespace edi::testing
