#pragma once
/// \file The LibTorch and OpenCV thread set-up, in the lowest stage that links
/// both ('data'). The count itself comes from edi/core/threads.hpp (included).
#include "edi/core/threads.hpp"

namespace edi {

/// Apply `threads` to LibTorch (intra-op; inter-op fixed at 1, once per
/// process) and to OpenCV.
void apply_thread_count(int threads);

}  // namespace edi
