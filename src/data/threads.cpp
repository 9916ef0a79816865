// The LibTorch and OpenCV thread set-up (the count policy is in core/threads.cpp).
#include "edi/data/threads.hpp"

#include <ATen/Parallel.h>
#include <opencv2/core.hpp>

namespace edi {

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
