#include "edi/core/fs.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "edi/core/error.hpp"

namespace edi {

namespace {

std::string errno_text() { return std::strerror(errno); }

fs::path make_temp_name(const fs::path& final_path) {
  static std::atomic<unsigned> counter{0};
  std::ostringstream name;
  name << "." << final_path.filename().string() << ".tmp." << ::getpid() << "." << counter++;
  return final_path.parent_path() / name.str();
}

/// The directory holding `path` (".", when it has no parent part).
fs::path parent_dir(const fs::path& path) { return path.has_parent_path() ? path.parent_path() : fs::path("."); }

/// Write all of `content` to `fd`; on failure throws IoError naming `path`.
void write_all(int fd, const fs::path& path, std::string_view content) {
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(path.string() + ": write failed: " + errno_text());
    }
    done += static_cast<std::size_t>(n);
  }
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
      throw IoError("sha256: cannot initialise OpenSSL digest");
  }
  void update(const void* data, std::size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &len);
    static const char* kHex = "0123456789abcdef";
    std::string out(2 * len, '0');
    for (unsigned i = 0; i < len; ++i) {
      out[2 * i] = kHex[digest[i] >> 4];
      out[2 * i + 1] = kHex[digest[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

}  // namespace

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw IoError(path.string() + ": cannot open for fsync: " + errno_text());
  if (::fsync(fd) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw IoError(path.string() + ": fsync failed: " + why);
  }
  if (::close(fd) != 0) throw IoError(path.string() + ": close failed: " + errno_text());
}

void write_file_atomic(const fs::path& path, std::string_view content, Durability durability) {
  AtomicPath out(path);
  const int fd = ::open(out.temp().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw IoError(out.temp().string() + ": cannot create: " + errno_text());
  try {
    write_all(fd, out.temp(), content);
    if (durability == Durability::kPowerLoss && ::fsync(fd) != 0)
      throw IoError(out.temp().string() + ": fsync failed: " + errno_text());
  } catch (...) {
    ::close(fd);
    throw;
  }
  // A close error (NFS, Lustre: a deferred write that failed) means the file
  // may be truncated: it is never renamed into place.
  if (::close(fd) != 0) throw IoError(out.temp().string() + ": close failed: " + errno_text());
  out.commit(durability, /*synced=*/true);
}

AtomicPath::AtomicPath(fs::path final_path)
    : final_(std::move(final_path)), temp_(make_temp_name(final_)) {}

AtomicPath::~AtomicPath() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicPath::commit(Durability durability, bool synced) {
  if (durability == Durability::kPowerLoss && !synced) fsync_path(temp_, false);
  if (std::rename(temp_.c_str(), final_.c_str()) != 0)
    throw IoError(final_.string() + ": cannot rename temp file into place: " + errno_text());
  committed_ = true;
  if (durability == Durability::kPowerLoss) fsync_path(parent_dir(final_), true);  // the rename itself
}

std::string read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path.string() + ": cannot open for reading");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void create_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create directory: " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) throw IoError(dir.string() + ": cannot set owner-only permissions: " + ec.message());
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

std::string sha256_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path.string() + ": cannot open for hashing");
  Sha256 h;
  char buf[1 << 16];
  while (f) {
    f.read(buf, sizeof buf);
    h.update(buf, static_cast<std::size_t>(f.gcount()));
  }
  return h.hex();
}

}  // namespace edi
