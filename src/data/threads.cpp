// The LibTorch, BLAS and OpenCV thread set-up (the count policy is in core/threads.cpp).
#include "edi/data/threads.hpp"

#include <dlfcn.h>

#include <ATen/Parallel.h>
#include <opencv2/core.hpp>

namespace edi {

namespace {

/// The BLAS that LibTorch calls for some layers (Debian's build: OpenBLAS,
/// through libblas.so.3) keeps its own pool, sized to every core and spinning
/// in sched_yield between calls: with several ranks per node that pool alone
/// oversubscribes the cores (measured: two 1-thread evaluations of the HSE
/// FaceRec attacker took 15.6 s together with it, 5.4 s with one BLAS thread
/// and batch 4). Sized here like LibTorch's own pool when the process has
/// OpenBLAS; otherwise (MKL, BLIS through OpenMP) LibTorch's count applies.
void set_blas_threads(int threads) {
  using SetThreads = void (*)(int);  // OpenBLAS: void openblas_set_num_threads(int)
  if (void* fn = dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) reinterpret_cast<SetThreads>(fn)(threads);
}

}  // namespace

void apply_thread_count(int threads) {
  at::set_num_threads(threads);
  set_blas_threads(threads);
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
