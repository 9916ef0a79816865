#pragma once
/// \file Small helpers over the HDF5 C++ API (serial HDF5, one file per
/// writer). H5::Exception is translated into IoError naming the file and the
/// dataset at this boundary.
#include <H5Cpp.h>

#include <cstdint>
#include <string>
#include <vector>

namespace edi::cluster::h5 {

/// Write a 1-D dataset (chunked + deflate for large ones).
void write_vector(H5::Group& g, const std::string& name, const std::vector<float>& v);
void write_vector(H5::Group& g, const std::string& name, const std::vector<double>& v);
void write_vector(H5::Group& g, const std::string& name, const std::vector<std::int32_t>& v);
void write_vector(H5::Group& g, const std::string& name, const std::vector<std::int64_t>& v);
void write_vector(H5::Group& g, const std::string& name, const std::vector<std::uint8_t>& v);
void write_strings(H5::Group& g, const std::string& name, const std::vector<std::string>& v);
/// An N-D float32/uint8 array from a contiguous buffer.
void write_array(H5::Group& g, const std::string& name, const float* data, const std::vector<hsize_t>& dims, bool compress);
void write_array(H5::Group& g, const std::string& name, const std::uint8_t* data, const std::vector<hsize_t>& dims, bool compress);

/// A float32 array chunked by its first dimension with a Fletcher-32 checksum
/// per chunk (HDF5 verifies it on read; a corrupted chunk fails the read).
void write_checked_array(H5::Group& g, const std::string& name, const float* data, const std::vector<hsize_t>& dims);

std::vector<float> read_floats(const H5::Group& g, const std::string& name);
std::vector<std::int32_t> read_ints(const H5::Group& g, const std::string& name);
std::vector<std::int64_t> read_longs(const H5::Group& g, const std::string& name);
std::vector<std::uint8_t> read_bytes(const H5::Group& g, const std::string& name);
std::vector<std::string> read_strings(const H5::Group& g, const std::string& name);
/// Dimensions of a dataset.
std::vector<hsize_t> dims(const H5::Group& g, const std::string& name);
/// Read a float array into `out` (size must match).
void read_array(const H5::Group& g, const std::string& name, float* out, std::size_t count);

void set_attr(H5::H5Object& o, const std::string& name, const std::string& value);
void set_attr(H5::H5Object& o, const std::string& name, std::int64_t value);
void set_attr(H5::H5Object& o, const std::string& name, double value);
std::string get_attr_string(const H5::H5Object& o, const std::string& name);
std::int64_t get_attr_int(const H5::H5Object& o, const std::string& name);

/// Silence HDF5's own error printing (errors become exceptions with context)
/// and from now on remember the innermost error of the first failed call.
void quiet();
/// " (innermost HDF5 error)" of the first failure since quiet() on this thread, or "" (and forget it).
std::string take_error_bottom();

}  // namespace edi::cluster::h5
