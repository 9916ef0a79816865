#pragma once
// Real model files for the models tests, made once per process in a temp dir:
// a TorchScript file exported by scripts/export_torchscript.py from a small
// nn.Module (tests/models/tiny_net.py), native small-cnn and resnet18 nets.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <unistd.h>

#include "edi/core/error.hpp"
#include "edi/models/native.hpp"
#include "edi/models/registry.hpp"

namespace edi::models::testing {

namespace fs = std::filesystem;

/// A per-process temp directory, removed at exit.
inline const fs::path& temp_dir() {
  static const fs::path dir = [] {
    std::string templ = (fs::temp_directory_path() / "edi-models-test-XXXXXX").string();
    if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    static struct Cleanup {
      fs::path p;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(p, ec);
      }
    } cleanup{templ};
    return fs::path(templ);
  }();
  return dir;
}

inline std::vector<std::string> class_names(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

inline std::string read_text(const fs::path& p) {
  std::FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return "";
  std::string s;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

/// Run a shell command; returns its exit status (output in `log`).
inline int run_command(const std::string& cmd, const fs::path& log) {
  const int rc = std::system((cmd + " > '" + log.string() + "' 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/// TorchScript model: TinyNet with 5 classes "class-00".."class-04", 32 px,
/// normalisation mean 0.5 std 0.25, via the export script.
inline fs::path torchscript_model() {
  static const fs::path path = [] {
    const fs::path dir = temp_dir() / "ts";
    fs::create_directories(dir);
    const std::string py = EDI_MODELS_PYTHON;
    const std::string tests = EDI_MODELS_TEST_DIR;
    const std::string script = std::string(EDI_SOURCE_DIR) + "/scripts/export_torchscript.py";
    const fs::path log = dir / "export.log";
    int rc = run_command(py + " '" + tests + "/make_tiny_model.py' '" + dir.string() + "' 5 32", log);
    if (rc != 0) throw std::runtime_error("make_tiny_model.py failed, see " + log.string());
    rc = run_command("PYTHONPATH='" + tests + "' " + py + " '" + script + "' --model '" + (dir / "tiny.pth").string() +
                         "' --classes '" + (dir / "classes.txt").string() + "' --input-size 32 --out '" +
                         (dir / "tiny.ts").string() + "' --trust-pickle --task identity --mean 0.5 0.5 0.5 --std 0.25 0.25 0.25",
                     log);
    if (rc != 0) throw std::runtime_error("export_torchscript.py failed (rc " + std::to_string(rc) + "): " +
                                          read_text(log));
    return dir / "tiny.ts";
  }();
  return path;
}

/// Native untrained model: `arch` with `classes` classes "id-0".., `size` px.
inline fs::path native_model(const std::string& arch, int classes, int size) {
  const fs::path path = temp_dir() / (arch + "-" + std::to_string(classes) + "-" + std::to_string(size) + ".pt");
  if (!fs::exists(path)) {
    Sidecar s;
    s.backend = "native";
    s.architecture = arch;
    s.task = "identity";
    s.classes = class_names("id-", classes);
    s.input_size = size;
    s.normalisation.mean = {0.4f, 0.45f, 0.5f};
    s.normalisation.std = {0.2f, 0.25f, 0.3f};
    write_initial_native_model(path, s, 7);
  }
  return path;
}

/// Message of the exception `E` thrown by `f`; records a failure otherwise.
template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception type: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

}  // namespace edi::models::testing
