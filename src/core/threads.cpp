#include "edi/core/threads.hpp"

#include <ATen/Parallel.h>
#include <opencv2/core.hpp>

#include <cstdlib>
#include <string>

namespace edi {

namespace {
std::optional<int> positive_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 1 || n > 4096) return std::nullopt;
  return static_cast<int>(n);
}
}  // namespace

int default_thread_count() {
  if (auto n = positive_env("SLURM_CPUS_PER_TASK")) return *n;
  if (auto n = positive_env("OMP_NUM_THREADS")) return *n;
  return 1;
}

void apply_thread_count(int threads) {
  at::set_num_threads(threads);
  // Inter-op threads can be set only once per process, before any parallel work.
  static bool interop_set = false;
  if (!interop_set) {
    try {
      at::set_num_interop_threads(1);
    } catch (...) {
    }
    interop_set = true;
  }
  cv::setNumThreads(threads);
}

}  // namespace edi
