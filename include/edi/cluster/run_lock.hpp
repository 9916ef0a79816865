#pragma once
/// \file One writer per run directory: rank 0 holds an exclusive `flock` on
/// `RUNDIR/.lock` (which names its host and PID) for the whole run. The kernel
/// releases it when the process ends, however it ends.
#include <filesystem>

namespace edi::cluster {

class RunLock {
 public:
  /// Take the lock; throws ConfigError naming the holder's host and PID when
  /// another process holds it, IoError when the file cannot be opened.
  explicit RunLock(const std::filesystem::path& rundir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace edi::cluster
