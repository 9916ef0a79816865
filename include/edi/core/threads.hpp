#pragma once
/// \file Thread policy. Debian's LibTorch picks an odd default and OpenCV's TBB
/// takes every core, so the binary sets both explicitly: ranks × threads must
/// not exceed the cores of the allocation.
#include <optional>
#include <string>

namespace edi {

/// Default thread count: SLURM_CPUS_PER_TASK, else OMP_NUM_THREADS, else 1.
int default_thread_count();

/// Apply `threads` to LibTorch (intra-op and inter-op) and to OpenCV.
void apply_thread_count(int threads);

}  // namespace edi
