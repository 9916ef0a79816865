#include "edi/cluster/h5.hpp"

namespace edi::cluster::h5 {

namespace {

template <class T>
void write_1d(H5::Group& g, const std::string& name, const std::vector<T>& v, const H5::PredType& type) {
  const hsize_t n = v.size();
  H5::DataSpace space(1, &n);
  H5::DSetCreatPropList props;
  if (n >= 4096) {
    const hsize_t chunk = std::min<hsize_t>(n, 65536);
    props.setChunk(1, &chunk);
    props.setDeflate(4);
  }
  H5::DataSet ds = g.createDataSet(name, type, space, props);
  if (n) ds.write(v.data(), type);
}

template <class T>
std::vector<T> read_1d(const H5::Group& g, const std::string& name, const H5::PredType& type) {
  H5::DataSet ds = g.openDataSet(name);
  H5::DataSpace space = ds.getSpace();
  const hssize_t n = space.getSimpleExtentNpoints();
  std::vector<T> v(static_cast<std::size_t>(n));
  if (n) ds.read(v.data(), type);
  return v;
}

template <class T>
void write_nd(H5::Group& g, const std::string& name, const T* data, const std::vector<hsize_t>& dims, bool compress,
              const H5::PredType& type) {
  H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  H5::DSetCreatPropList props;
  hsize_t total = 1;
  for (auto d : dims) total *= d;
  if (compress && total > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;  // one image per chunk
    props.setChunk(static_cast<int>(chunk.size()), chunk.data());
    props.setShuffle();
    props.setDeflate(1);
  }
  H5::DataSet ds = g.createDataSet(name, type, space, props);
  if (total) ds.write(data, type);
}

}  // namespace

void write_vector(H5::Group& g, const std::string& n, const std::vector<float>& v) { write_1d(g, n, v, H5::PredType::NATIVE_FLOAT); }
void write_vector(H5::Group& g, const std::string& n, const std::vector<double>& v) { write_1d(g, n, v, H5::PredType::NATIVE_DOUBLE); }
void write_vector(H5::Group& g, const std::string& n, const std::vector<std::int32_t>& v) { write_1d(g, n, v, H5::PredType::NATIVE_INT32); }
void write_vector(H5::Group& g, const std::string& n, const std::vector<std::int64_t>& v) { write_1d(g, n, v, H5::PredType::NATIVE_INT64); }
void write_vector(H5::Group& g, const std::string& n, const std::vector<std::uint8_t>& v) { write_1d(g, n, v, H5::PredType::NATIVE_UINT8); }

void write_strings(H5::Group& g, const std::string& name, const std::vector<std::string>& v) {
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  const hsize_t n = v.size();
  H5::DataSpace space(1, &n);
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  type.setCset(H5T_CSET_UTF8);
  H5::DataSet ds = g.createDataSet(name, type, space);
  if (n) ds.write(ptrs.data(), type);
}

void write_array(H5::Group& g, const std::string& name, const float* data, const std::vector<hsize_t>& dims, bool compress) {
  write_nd(g, name, data, dims, compress, H5::PredType::NATIVE_FLOAT);
}
void write_array(H5::Group& g, const std::string& name, const std::uint8_t* data, const std::vector<hsize_t>& dims, bool compress) {
  write_nd(g, name, data, dims, compress, H5::PredType::NATIVE_UINT8);
}

void write_checked_array(H5::Group& g, const std::string& name, const float* data, const std::vector<hsize_t>& dims) {
  H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  H5::DSetCreatPropList props;
  hsize_t total = 1;
  for (auto d : dims) total *= d;
  if (total > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;
    props.setChunk(static_cast<int>(chunk.size()), chunk.data());
    props.setFletcher32();
  }
  H5::DataSet ds = g.createDataSet(name, H5::PredType::NATIVE_FLOAT, space, props);
  if (total) ds.write(data, H5::PredType::NATIVE_FLOAT);
}

std::vector<float> read_floats(const H5::Group& g, const std::string& n) { return read_1d<float>(g, n, H5::PredType::NATIVE_FLOAT); }
std::vector<std::int32_t> read_ints(const H5::Group& g, const std::string& n) { return read_1d<std::int32_t>(g, n, H5::PredType::NATIVE_INT32); }
std::vector<std::int64_t> read_longs(const H5::Group& g, const std::string& n) { return read_1d<std::int64_t>(g, n, H5::PredType::NATIVE_INT64); }
std::vector<std::uint8_t> read_bytes(const H5::Group& g, const std::string& n) { return read_1d<std::uint8_t>(g, n, H5::PredType::NATIVE_UINT8); }

std::vector<std::string> read_strings(const H5::Group& g, const std::string& name) {
  H5::DataSet ds = g.openDataSet(name);
  const hssize_t n = ds.getSpace().getSimpleExtentNpoints();
  std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
  H5::StrType type = ds.getStrType();
  if (n) ds.read(ptrs.data(), type);
  std::vector<std::string> out;
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  if (n) {
    H5::DataSpace space = ds.getSpace();
    H5Dvlen_reclaim(type.getId(), space.getId(), H5P_DEFAULT, ptrs.data());
  }
  return out;
}

std::vector<hsize_t> dims(const H5::Group& g, const std::string& name) {
  H5::DataSpace space = g.openDataSet(name).getSpace();
  std::vector<hsize_t> d(static_cast<std::size_t>(space.getSimpleExtentNdims()));
  space.getSimpleExtentDims(d.data());
  return d;
}

void read_array(const H5::Group& g, const std::string& name, float* out, std::size_t count) {
  H5::DataSet ds = g.openDataSet(name);
  if (static_cast<std::size_t>(ds.getSpace().getSimpleExtentNpoints()) != count)
    throw H5::DataSetIException("read_array", name + ": unexpected size");
  if (count) ds.read(out, H5::PredType::NATIVE_FLOAT);
}

void set_attr(H5::H5Object& o, const std::string& name, const std::string& value) {
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  type.setCset(H5T_CSET_UTF8);
  H5::Attribute a = o.createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
  a.write(type, value);
}

void set_attr(H5::H5Object& o, const std::string& name, std::int64_t value) {
  H5::Attribute a = o.createAttribute(name, H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR));
  a.write(H5::PredType::NATIVE_INT64, &value);
}

void set_attr(H5::H5Object& o, const std::string& name, double value) {
  H5::Attribute a = o.createAttribute(name, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR));
  a.write(H5::PredType::NATIVE_DOUBLE, &value);
}

std::string get_attr_string(const H5::H5Object& o, const std::string& name) {
  H5::Attribute a = o.openAttribute(name);
  std::string v;
  a.read(a.getStrType(), v);  // the stored type: HDF5 does not convert between character sets
  return v;
}

std::int64_t get_attr_int(const H5::H5Object& o, const std::string& name) {
  H5::Attribute a = o.openAttribute(name);
  std::int64_t v = 0;
  a.read(H5::PredType::NATIVE_INT64, &v);
  return v;
}

namespace {

/// The innermost error of the last failed HDF5 call on this thread (where the
/// library says why: "errno = 28, error message = 'No space left on device'").
thread_local std::string g_bottom;

herr_t keep_innermost(unsigned n, const H5E_error2_t* err, void* data) {
  if (n != 0) return 0;
  std::string s = std::string(err->func_name ? err->func_name : "?") + ": " + (err->desc ? err->desc : "");
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';  // one line
  *static_cast<std::string*>(data) = s;
  return 0;
}

/// HDF5's automatic error handler: called with the whole stack when an API
/// call fails, before anything (an object's close while the C++ exception
/// unwinds) clears it. Prints nothing.
herr_t remember_error(hid_t stack, void*) {
  std::string bottom;
  H5Ewalk2(stack, H5E_WALK_UPWARD, keep_innermost, &bottom);
  if (g_bottom.empty()) g_bottom = bottom;  // the first failure says why; closes while unwinding fail after it
  return 0;
}

}  // namespace

void quiet() {
  g_bottom.clear();
  H5::Exception::dontPrint();
  H5Eset_auto2(H5E_DEFAULT, remember_error, nullptr);
}

std::string take_error_bottom() {
  std::string s;
  s.swap(g_bottom);
  return s.empty() ? s : " (" + s + ")";
}

}  // namespace edi::cluster::h5
