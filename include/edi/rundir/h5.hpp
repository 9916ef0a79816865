#pragma once
/// \file HDF5, wrapped once (serial HDF5, one file per writer). Every call of
/// the HDF5 C++ API goes through one helper in h5.cpp that turns a failure
/// into `IoError("FILE:/DATASET: what (bottom of the HDF5 error stack)")`.
/// HDF5's automatic error printing is silenced once at start-up (and once per
/// further thread on its first call), never per write. `H5Cpp.h` is included
/// by h5.cpp only: these handles are opaque.
///
/// Destructors never throw: `File` has `close()` (throws) and its no-throw
/// twin `close_noexcept()`, which the destructor calls.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace edi::rundir::h5 {

using Dims = std::vector<std::uint64_t>;

class File;

/// A group of an open file ("/" or "/trajectory"); keeps the file open.
class Group {
 public:
  Group() = default;
  /// "FILE:/GROUP", the prefix of this group's error messages.
  std::string where() const;
  struct Impl;

 private:
  friend class File;
  friend struct Access;
  std::shared_ptr<Impl> impl_;
};

class File {
 public:
  /// Create (truncate) `path` for writing.
  static File create(const std::filesystem::path& path);
  /// Open `path` read-only.
  static File open_read(const std::filesystem::path& path);
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();  ///< close_noexcept()

  Group root() const;
  Group create_group(const std::string& name) const;
  Group open_group(const std::string& name) const;
  /// Write everything buffered to the file (global scope).
  void flush() const;
  /// Close; throws IoError when HDF5 cannot.
  void close();
  /// Close, swallowing any error (for destructors and error paths).
  void close_noexcept() noexcept;

 private:
  File() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// 1-D datasets (chunked + deflate from 4096 elements on).
void write_vector(Group& g, const std::string& name, const std::vector<float>& v);
void write_vector(Group& g, const std::string& name, const std::vector<double>& v);
void write_vector(Group& g, const std::string& name, const std::vector<std::int32_t>& v);
void write_vector(Group& g, const std::string& name, const std::vector<std::int64_t>& v);
void write_vector(Group& g, const std::string& name, const std::vector<std::uint8_t>& v);
/// Variable-length UTF-8 strings.
void write_strings(Group& g, const std::string& name, const std::vector<std::string>& v);
/// An N-D float32/uint8 array from a contiguous buffer (`compress`: one chunk
/// per first-dimension index, shuffle + deflate 1).
void write_array(Group& g, const std::string& name, const float* data, const Dims& dims, bool compress);
void write_array(Group& g, const std::string& name, const std::uint8_t* data, const Dims& dims, bool compress);
/// A float32 array chunked by its first dimension with a Fletcher-32 checksum
/// per chunk (HDF5 verifies it on read; a corrupted chunk fails the read).
void write_checked_array(Group& g, const std::string& name, const float* data, const Dims& dims);

std::vector<float> read_floats(const Group& g, const std::string& name);
std::vector<double> read_doubles(const Group& g, const std::string& name);
std::vector<std::int32_t> read_ints(const Group& g, const std::string& name);
std::vector<std::int64_t> read_longs(const Group& g, const std::string& name);
std::vector<std::uint8_t> read_bytes(const Group& g, const std::string& name);
std::vector<std::string> read_strings(const Group& g, const std::string& name);
/// Dimensions of a dataset.
Dims dims(const Group& g, const std::string& name);
/// Read a float array into `out`; its element count must be `count`.
void read_array(const Group& g, const std::string& name, float* out, std::size_t count);
bool has_dataset(const Group& g, const std::string& name);

/// Scalar attributes of a group.
void set_attr(Group& g, const std::string& name, const std::string& value);
void set_attr(Group& g, const std::string& name, std::int64_t value);
void set_attr(Group& g, const std::string& name, double value);
bool has_attr(const Group& g, const std::string& name);
std::string get_attr_string(const Group& g, const std::string& name);
std::int64_t get_attr_int(const Group& g, const std::string& name);
double get_attr_double(const Group& g, const std::string& name);

}  // namespace edi::rundir::h5
