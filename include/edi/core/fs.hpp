#pragma once
/// \file File-system helpers: nothing is ever half-written (temp file + rename),
/// run directories are owner-only, contents are identified by SHA-256.
#include <filesystem>
#include <string>
#include <string_view>

namespace edi {

namespace fs = std::filesystem;

/// How far a write must survive: a process crash (rename is enough) or a
/// power loss too (fsync before the rename).
enum class Durability { kProcessCrash, kPowerLoss };

/// Write `content` to `path` atomically with POSIX calls: a sibling temp file
/// is written (write(2) until done), fsync'd (kPowerLoss), closed with its
/// result checked, renamed over `path`, and the directory fsync'd (kPowerLoss).
/// Readers see the old file or the new one, never a part; a write, fsync or
/// close error (a full disk) throws IoError naming the file and the errno
/// text, removes the temp file and leaves `path` as it was.
void write_file_atomic(const fs::path& path, std::string_view content,
                       Durability durability = Durability::kPowerLoss);

/// A temp path next to `final_path` for writers that need a file name (HDF5,
/// cv::imwrite): write to `temp()`, then `commit()` renames it into place. The
/// destructor removes the temp file if `commit()` was never called.
class AtomicPath {
 public:
  explicit AtomicPath(fs::path final_path);
  ~AtomicPath();
  AtomicPath(const AtomicPath&) = delete;
  AtomicPath& operator=(const AtomicPath&) = delete;

  const fs::path& temp() const noexcept { return temp_; }
  const fs::path& final_path() const noexcept { return final_; }
  /// Rename the temp file to the final path: for kPowerLoss the temp file is
  /// fsync'd first (unless `synced`: the writer did) and the directory after.
  void commit(Durability durability = Durability::kPowerLoss, bool synced = false);

 private:
  fs::path final_;
  fs::path temp_;
  bool committed_ = false;
};

/// fsync a file (or, `directory`, a directory) by path, with a checked close;
/// throws IoError naming the path and the system's reason.
void fsync_path(const fs::path& path, bool directory);

/// Read a whole file; throws IoError naming the path.
std::string read_file(const fs::path& path);

/// Create `dir` (and parents) with owner-only permissions (0700) on the leaf.
void create_private_dir(const fs::path& dir);

/// Lower-case hex SHA-256 of a file's bytes / of a string.
std::string sha256_file(const fs::path& path);
std::string sha256_hex(std::string_view bytes);

}  // namespace edi
