// The only file that includes H5Cpp.h: every HDF5 C++ call goes through call().
#include "edi/rundir/h5.hpp"

#include <H5Cpp.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "edi/core/error.hpp"

namespace edi::rundir::h5 {

/// Named, not in the anonymous namespace: Group::Impl and File::Impl (declared
/// in the header) hold one, and a unity batch warns about a member type with
/// internal linkage there (-Wsubobject-linkage).
namespace detail {

/// An HDF5 C++ object closed exactly once, printing nothing: a failed close is
/// never retried (HDF5 can crash closing an id again after a failed close,
/// and the C++ API's own destructors would retry and print to std::cerr), so
/// the handle is abandoned then, on that error path only.
template <class T>
class Owned {
 public:
  Owned() = default;
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() { close_noexcept(); }
  template <class... A>
  void emplace(A&&... a) {
    close_noexcept();
    p_ = std::make_unique<T>(std::forward<A>(a)...);
  }
  T* operator->() const { return p_.get(); }
  explicit operator bool() const { return p_ != nullptr; }
  /// Throws H5::Exception when HDF5 cannot close.
  void close() {
    if (!p_) return;
    std::unique_ptr<T> p = std::move(p_);
    try {
      p->close();
    } catch (...) {
      (void)p.release();
      throw;
    }
  }
  /// close() for destructors: a failure is dropped (the handle is never closed twice).
  void close_noexcept() noexcept {
    try {
      close();
    } catch (...) {
    }
  }

 private:
  std::unique_ptr<T> p_;
};

}  // namespace detail

namespace {

/// The innermost error of the first failed HDF5 call on this thread since the
/// last call() began (where the library says why: "errno = 28, error message =
/// 'No space left on device'").
thread_local std::string g_bottom;
thread_local bool g_silenced = false;

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

/// HDF5 keeps the automatic handler per thread (thread-safe builds): install
/// ours on this thread unless done.
void silence_this_thread() noexcept {
  if (g_silenced) return;
  H5Eset_auto2(H5E_DEFAULT, remember_error, nullptr);
  g_silenced = true;
}

/// Once at start-up, on the main thread.
[[maybe_unused]] const bool g_startup_silenced = (silence_this_thread(), true);

/// The one helper: run `fn`; an HDF5 failure becomes IoError("WHERE: what (bottom)").
template <class Fn>
auto call(const std::string& where, const char* what, Fn&& fn) -> decltype(fn()) {
  silence_this_thread();
  g_bottom.clear();
  try {
    return fn();
  } catch (const H5::Exception& e) {
    std::string bottom;
    bottom.swap(g_bottom);
    if (bottom.empty()) bottom = e.getFuncName() + ": " + e.getDetailMsg();
    throw IoError(where + ": " + what + " (" + bottom + ")");
  }
}

using detail::Owned;

std::string join(const std::string& group, const std::string& name) {
  return group == "/" ? "/" + name : group + "/" + name;
}

}  // namespace

struct Group::Impl {
  std::string file;  ///< path of the file, for messages
  std::string path;  ///< "/" or "/name"
  Owned<H5::Group> group;  ///< closed by its no-throw twin when the last handle goes
};

struct File::Impl {
  std::string file;
  Owned<H5::H5File> h5;
};

/// Access to a Group's handle from the free functions.
struct Access {
  static Group::Impl& of(const Group& g) {
    if (!g.impl_) throw IoError("HDF5: use of an empty group handle");
    return *g.impl_;
  }
  static Group make(std::string file, std::string path, H5::Group group) {
    Group g;
    g.impl_ = std::make_shared<Group::Impl>();
    g.impl_->file = std::move(file);
    g.impl_->path = std::move(path);
    g.impl_->group.emplace(group);
    return g;
  }
};

std::string Group::where() const { return impl_ ? impl_->file + ":" + impl_->path : std::string("HDF5"); }

namespace {

std::string object_where(const Group& g, const std::string& name) {
  const Group::Impl& i = Access::of(g);
  return i.file + ":" + join(i.path, name);
}

}  // namespace

// ------------------------------------------------------------------ File

File File::create(const std::filesystem::path& path) {
  File f;
  f.impl_ = std::make_unique<Impl>();
  f.impl_->file = path.string();
  call(f.impl_->file, "cannot create the file", [&] { f.impl_->h5.emplace(path.string(), H5F_ACC_TRUNC); });
  return f;
}

File File::open_read(const std::filesystem::path& path) {
  File f;
  f.impl_ = std::make_unique<Impl>();
  f.impl_->file = path.string();
  call(f.impl_->file, "cannot open the file", [&] { f.impl_->h5.emplace(path.string(), H5F_ACC_RDONLY); });
  return f;
}

File::File(File&&) noexcept = default;
File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    close_noexcept();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
File::~File() { close_noexcept(); }

Group File::root() const { return open_group("/"); }

Group File::create_group(const std::string& name) const {
  const std::string path = join("/", name);
  return Access::make(impl_->file, path, call(impl_->file + ":" + path, "cannot create the group", [&] { return impl_->h5->createGroup(path); }));
}

Group File::open_group(const std::string& name) const {
  const std::string path = name == "/" ? name : join("/", name);
  return Access::make(impl_->file, path, call(impl_->file + ":" + path, "cannot open the group", [&] { return impl_->h5->openGroup(path); }));
}

void File::flush() const {
  call(impl_->file, "cannot flush the file", [&] { impl_->h5->flush(H5F_SCOPE_GLOBAL); });
}

void File::close() {
  if (!impl_ || !impl_->h5) return;
  call(impl_->file, "cannot close the file", [&] { impl_->h5.close(); });
}

void File::close_noexcept() noexcept {
  if (!impl_ || !impl_->h5) return;
  silence_this_thread();
  impl_->h5.close_noexcept();  // the error path: the file is abandoned (its temp file is removed by its owner)
  g_bottom.clear();
}

// ------------------------------------------------------------------ datasets

namespace {

template <class T>
void write_1d(Group& g, const std::string& name, const std::vector<T>& v, const H5::PredType& type) {
  call(object_where(g, name), "cannot write the dataset", [&] {
    const hsize_t n = v.size();
    H5::DataSpace space(1, &n);
    H5::DSetCreatPropList props;
    if (n >= 4096) {
      const hsize_t chunk = std::min<hsize_t>(n, 65536);
      props.setChunk(1, &chunk);
      props.setDeflate(4);
    }
    Owned<H5::DataSet> ds;
    ds.emplace(Access::of(g).group->createDataSet(name, type, space, props));
    if (n) ds->write(v.data(), type);
    ds.close();
  });
}

template <class T>
std::vector<T> read_1d(const Group& g, const std::string& name, const H5::PredType& type) {
  return call(object_where(g, name), "cannot read the dataset", [&] {
    Owned<H5::DataSet> ds;
    ds.emplace(Access::of(g).group->openDataSet(name));
    const hssize_t n = ds->getSpace().getSimpleExtentNpoints();
    std::vector<T> v(static_cast<std::size_t>(n));
    if (n) ds->read(v.data(), type);
    return v;
  });
}

/// `chunked`: one chunk per first-dimension index; `compress` or `fletcher` on it.
template <class T>
void write_nd(Group& g, const std::string& name, const T* data, const Dims& dims, bool compress, bool fletcher,
              const H5::PredType& type) {
  call(object_where(g, name), "cannot write the dataset", [&] {
    const std::vector<hsize_t> d(dims.begin(), dims.end());
    H5::DataSpace space(static_cast<int>(d.size()), d.data());
    H5::DSetCreatPropList props;
    hsize_t total = 1;
    for (auto x : d) total *= x;
    if ((compress || fletcher) && total > 0) {
      std::vector<hsize_t> chunk = d;
      chunk[0] = 1;  // one image per chunk
      props.setChunk(static_cast<int>(chunk.size()), chunk.data());
      if (fletcher) props.setFletcher32();
      if (compress) {
        props.setShuffle();
        props.setDeflate(1);
      }
    }
    Owned<H5::DataSet> ds;
    ds.emplace(Access::of(g).group->createDataSet(name, type, space, props));
    if (total) ds->write(data, type);
    ds.close();
  });
}

H5::StrType utf8_string_type() {
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  type.setCset(H5T_CSET_UTF8);
  return type;
}

}  // namespace

void write_vector(Group& g, const std::string& n, const std::vector<float>& v) { write_1d(g, n, v, H5::PredType::NATIVE_FLOAT); }
void write_vector(Group& g, const std::string& n, const std::vector<double>& v) { write_1d(g, n, v, H5::PredType::NATIVE_DOUBLE); }
void write_vector(Group& g, const std::string& n, const std::vector<std::int32_t>& v) { write_1d(g, n, v, H5::PredType::NATIVE_INT32); }
void write_vector(Group& g, const std::string& n, const std::vector<std::int64_t>& v) { write_1d(g, n, v, H5::PredType::NATIVE_INT64); }
void write_vector(Group& g, const std::string& n, const std::vector<std::uint8_t>& v) { write_1d(g, n, v, H5::PredType::NATIVE_UINT8); }

void write_strings(Group& g, const std::string& name, const std::vector<std::string>& v) {
  call(object_where(g, name), "cannot write the dataset", [&] {
    std::vector<const char*> ptrs;
    for (const auto& s : v) ptrs.push_back(s.c_str());
    const hsize_t n = v.size();
    H5::DataSpace space(1, &n);
    const H5::StrType type = utf8_string_type();
    Owned<H5::DataSet> ds;
    ds.emplace(Access::of(g).group->createDataSet(name, type, space));
    if (n) ds->write(ptrs.data(), type);
    ds.close();
  });
}

void write_array(Group& g, const std::string& name, const float* data, const Dims& dims, bool compress) {
  write_nd(g, name, data, dims, compress, false, H5::PredType::NATIVE_FLOAT);
}
void write_array(Group& g, const std::string& name, const std::uint8_t* data, const Dims& dims, bool compress) {
  write_nd(g, name, data, dims, compress, false, H5::PredType::NATIVE_UINT8);
}
void write_checked_array(Group& g, const std::string& name, const float* data, const Dims& dims) {
  write_nd(g, name, data, dims, false, true, H5::PredType::NATIVE_FLOAT);
}

std::vector<float> read_floats(const Group& g, const std::string& n) { return read_1d<float>(g, n, H5::PredType::NATIVE_FLOAT); }
std::vector<double> read_doubles(const Group& g, const std::string& n) { return read_1d<double>(g, n, H5::PredType::NATIVE_DOUBLE); }
std::vector<std::int32_t> read_ints(const Group& g, const std::string& n) { return read_1d<std::int32_t>(g, n, H5::PredType::NATIVE_INT32); }
std::vector<std::int64_t> read_longs(const Group& g, const std::string& n) { return read_1d<std::int64_t>(g, n, H5::PredType::NATIVE_INT64); }
std::vector<std::uint8_t> read_bytes(const Group& g, const std::string& n) { return read_1d<std::uint8_t>(g, n, H5::PredType::NATIVE_UINT8); }

std::vector<std::string> read_strings(const Group& g, const std::string& name) {
  return call(object_where(g, name), "cannot read the dataset", [&] {
    Owned<H5::DataSet> ds;
    ds.emplace(Access::of(g).group->openDataSet(name));
    H5::DataSpace space = ds->getSpace();
    const hssize_t n = space.getSimpleExtentNpoints();
    std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
    H5::StrType type = ds->getStrType();
    if (n) ds->read(ptrs.data(), type);
    std::vector<std::string> out;
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    if (n) H5Dvlen_reclaim(type.getId(), space.getId(), H5P_DEFAULT, ptrs.data());
    return out;
  });
}

Dims dims(const Group& g, const std::string& name) {
  return call(object_where(g, name), "cannot read the dataset's shape", [&] {
    H5::DataSpace space = Access::of(g).group->openDataSet(name).getSpace();
    std::vector<hsize_t> d(static_cast<std::size_t>(space.getSimpleExtentNdims()));
    space.getSimpleExtentDims(d.data());
    return Dims(d.begin(), d.end());
  });
}

void read_array(const Group& g, const std::string& name, float* out, std::size_t count) {
  const std::string where = object_where(g, name);
  const bool fits = call(where, "cannot read the dataset", [&] {
    Owned<H5::DataSet> ds;
    ds.emplace(Access::of(g).group->openDataSet(name));
    if (static_cast<std::size_t>(ds->getSpace().getSimpleExtentNpoints()) != count) return false;
    if (count) ds->read(out, H5::PredType::NATIVE_FLOAT);
    return true;
  });
  if (!fits) throw IoError(where + ": cannot read the dataset (expected " + std::to_string(count) + " elements)");
}

bool has_dataset(const Group& g, const std::string& name) {
  return call(object_where(g, name), "cannot look up the dataset", [&] { return Access::of(g).group->nameExists(name); });
}

// ------------------------------------------------------------------ attributes

void set_attr(Group& g, const std::string& name, const std::string& value) {
  call(g.where() + "@" + name, "cannot write the attribute", [&] {
    const H5::StrType type = utf8_string_type();
    Owned<H5::Attribute> a;
    a.emplace(Access::of(g).group->createAttribute(name, type, H5::DataSpace(H5S_SCALAR)));
    a->write(type, value);
    a.close();
  });
}

void set_attr(Group& g, const std::string& name, std::int64_t value) {
  call(g.where() + "@" + name, "cannot write the attribute", [&] {
    Owned<H5::Attribute> a;
    a.emplace(Access::of(g).group->createAttribute(name, H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR)));
    a->write(H5::PredType::NATIVE_INT64, &value);
    a.close();
  });
}

void set_attr(Group& g, const std::string& name, double value) {
  call(g.where() + "@" + name, "cannot write the attribute", [&] {
    Owned<H5::Attribute> a;
    a.emplace(Access::of(g).group->createAttribute(name, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR)));
    a->write(H5::PredType::NATIVE_DOUBLE, &value);
    a.close();
  });
}

bool has_attr(const Group& g, const std::string& name) {
  return call(g.where() + "@" + name, "cannot look up the attribute", [&] { return Access::of(g).group->attrExists(name); });
}

std::string get_attr_string(const Group& g, const std::string& name) {
  return call(g.where() + "@" + name, "cannot read the attribute", [&] {
    H5::Attribute a = Access::of(g).group->openAttribute(name);
    std::string v;
    a.read(a.getStrType(), v);  // the stored type: HDF5 does not convert between character sets
    return v;
  });
}

std::int64_t get_attr_int(const Group& g, const std::string& name) {
  return call(g.where() + "@" + name, "cannot read the attribute", [&] {
    H5::Attribute a = Access::of(g).group->openAttribute(name);
    std::int64_t v = 0;
    a.read(H5::PredType::NATIVE_INT64, &v);
    return v;
  });
}

double get_attr_double(const Group& g, const std::string& name) {
  return call(g.where() + "@" + name, "cannot read the attribute", [&] {
    H5::Attribute a = Access::of(g).group->openAttribute(name);
    double v = 0;
    a.read(H5::PredType::NATIVE_DOUBLE, &v);
    return v;
  });
}

}  // namespace edi::rundir::h5
