#pragma once
/// \file Thread policy. Debian's LibTorch picks an odd default and OpenCV's TBB
/// takes every core, so the binary sets both explicitly: ranks × threads must
/// not exceed the cores of the allocation. The count is chosen here; applying
/// it to LibTorch and OpenCV is apply_thread_count() in edi/data/threads.hpp
/// (core links neither library).
#include <optional>
#include <string>

namespace edi {

/// Default thread count: SLURM_CPUS_PER_TASK, else OMP_NUM_THREADS, else 1.
int default_thread_count();

/// Keep freed memory in the process instead of returning it to the kernel.
/// With glibc's defaults every pass allocates its batch tensors as fresh
/// mmap'd pages and pays a page fault per 4 KiB (14 % of a run's time under
/// perf on the development VM; with these settings the pass loop ran about
/// 1.8x and training about 3x faster, outputs identical). Sets the mmap threshold to 32 MiB, the trim threshold to 1 GiB and the
/// top pad to 64 MiB; skipped when EDI_MALLOC=system or when GLIBC_TUNABLES
/// sets malloc tunables. Returns whether it applied them.
bool tune_allocator();

}  // namespace edi
