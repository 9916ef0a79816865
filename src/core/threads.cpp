#include "edi/core/threads.hpp"

#include <malloc.h>

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

}  // namespace edi

namespace edi {

bool tune_allocator() {
  const char* mode = std::getenv("EDI_MALLOC");
  if (mode && std::string(mode) == "system") return false;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables && std::string(tunables).find("glibc.malloc.") != std::string::npos) return false;
  bool ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && ok;
  ok = mallopt(M_TOP_PAD, 64 << 20) == 1 && ok;
  return ok;
}

}  // namespace edi
