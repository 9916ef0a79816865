#include "edi/data/private_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>

#include "edi/core/error.hpp"

namespace edi::data {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const fs::path& path, const std::string& what, int err) {
  throw IoError(path.string() + ": " + what + ": " + std::strerror(err));
}

void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(dir, "cannot open the directory to sync it", errno);
  const int rc = ::fsync(fd), err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) fail(dir, "cannot sync the directory", err);
}

}  // namespace

void write_private_file(const fs::path& path, std::string_view content) {
  std::random_device rd;
  const fs::path temp = path.parent_path() / ("." + path.filename().string() + ".tmp." + std::to_string(rd()));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail(temp, "cannot create", errno);
  auto abandon = [&](const std::string& what, int err) {
    ::unlink(temp.c_str());
    fail(temp, what, err);
  };
  if (::fchmod(fd, 0600) != 0) {  // whatever the umask: exactly owner read/write
    const int err = errno;
    ::close(fd);
    abandon("cannot set mode 0600", err);
  }
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      abandon("cannot write", err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    abandon("cannot sync", err);
  }
  if (::close(fd) != 0) abandon("cannot close", errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) abandon("cannot rename to " + path.string(), errno);
  sync_directory(path.parent_path());
}

}  // namespace edi::data
