#include "edi/cluster/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "edi/core/context.hpp"
#include "edi/core/error.hpp"

namespace edi::cluster {

namespace {

/// The holder's "host H, PID P" as written in the lock file.
std::string read_holder(int fd) {
  char buf[256] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s.empty() ? "an unknown process" : s;
}

}  // namespace

RunLock::RunLock(const std::filesystem::path& rundir) {
  const std::filesystem::path path = rundir / ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw IoError(path.string() + ": cannot open the run directory's lock: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = read_holder(fd_);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw ConfigError(rundir.string() + ": another run is writing this run directory (" + holder +
                        " holds " + path.string() + "); wait for it to end, or use another --out");
    throw IoError(path.string() + ": cannot lock: " + std::strerror(err));
  }
  const std::string me = "host " + host_name() + ", PID " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    throw IoError(path.string() + ": cannot write the lock holder: " + why);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace edi::cluster
