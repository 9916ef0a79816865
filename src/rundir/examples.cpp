#include "edi/rundir/examples.hpp"

#include <ATen/ATen.h>

#include <cstdio>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/engine/run_io.hpp"
#include "edi/rundir/layout.hpp"

namespace edi::rundir {

namespace fs = std::filesystem;

namespace {

constexpr const char* kCaptureFormat = "edi-anon-example-capture";

h5::Dims dims_of(const at::Tensor& x) {
  h5::Dims d;
  for (auto v : x.sizes()) d.push_back(static_cast<std::uint64_t>(v));
  return d;
}

at::Tensor read_tensor(const h5::Group& g, const std::string& name) {
  const h5::Dims d = h5::dims(g, name);
  std::vector<std::int64_t> sizes(d.begin(), d.end());
  at::Tensor t = at::empty(sizes, at::kFloat);
  if (t.numel()) h5::read_array(g, name, t.data_ptr<float>(), static_cast<std::size_t>(t.numel()));
  return t;
}

}  // namespace

std::vector<std::string> example_ids(const data::Manifest& m, const std::vector<std::size_t>& selected, int n) {
  std::vector<std::string> ids;
  for (std::size_t k = 0; k < selected.size() && static_cast<int>(ids.size()) < n; ++k) ids.push_back(m.entries.at(selected[k]).id);
  return ids;
}

// ------------------------------------------------------------------ capture

ExampleCapture::ExampleCapture(fs::path rundir, const std::vector<std::string>& ids, std::string config_sha256)
    : rundir_(std::move(rundir)), ids_(ids.begin(), ids.end()), config_sha256_(std::move(config_sha256)) {}

engine::Engine::MaskObserver ExampleCapture::observer() {
  return [this](const engine::Shard& shard, int pass, const std::vector<int>& local, const at::Tensor& mask) {
    observe(shard, pass, local, mask);
  };
}

void ExampleCapture::observe(const engine::Shard& shard, int pass, const std::vector<int>& local, const at::Tensor& mask) {
  if (pass != 0) return;
  bool any = false;
  for (std::size_t k = 0; k < local.size(); ++k) {
    const auto i = static_cast<std::size_t>(local[k]);
    if (!ids_.count(shard.ids[i])) continue;
    std::int64_t row = -1;  // the image's row in the pending attributions
    for (std::size_t p = 0; p < shard.pending.size(); ++p)
      if (shard.pending[p] == local[k]) row = static_cast<std::int64_t>(p);
    if (row < 0) throw Error("example capture: image " + shard.ids[i] + " is perturbed but not pending");
    Captured c;
    c.mask = mask[static_cast<std::int64_t>(k)].to(at::kByte).contiguous().clone();
    c.attribution = shard.pending_attribution[row].to(at::kFloat).contiguous().clone();
    by_shard_[shard.index][shard.ids[i]] = std::move(c);
    any = true;
  }
  if (!any) return;
  // Everything captured for this shard so far, in one committed file.
  const auto& got = by_shard_[shard.index];
  std::vector<std::string> ids;
  std::vector<at::Tensor> masks, attributions;
  for (const auto& [id, c] : got) {
    ids.push_back(id);
    masks.push_back(c.mask);
    attributions.push_back(c.attribution);
  }
  const at::Tensor m = at::stack(masks).contiguous(), a = at::stack(attributions).contiguous();
  const fs::path path = example_capture_path(rundir_, shard.index);
  create_private_dir(path.parent_path());
  AtomicPath out(path);
  {
    h5::File file = h5::File::create(out.temp());
    h5::Group root = file.root();
    h5::set_attr(root, "format", std::string(kCaptureFormat));
    h5::set_attr(root, "config_sha256", config_sha256_);
    h5::set_attr(root, "shard", std::int64_t{shard.index});
    h5::write_strings(root, "id", ids);
    h5::write_array(root, "mask", m.data_ptr<std::uint8_t>(), dims_of(m), true);
    h5::write_array(root, "attribution", a.data_ptr<float>(), dims_of(a), true);
    file.flush();
    file.close();
  }
  out.commit();
}

// ------------------------------------------------------------------ collect

namespace {

struct Capture {
  at::Tensor mask, attribution;  ///< uint8 / float, one image
};

/// The captures of one shard's file (none when missing, unreadable or made under another configuration).
std::map<std::string, Capture> read_capture(const fs::path& path, const std::string& config_sha256) {
  std::map<std::string, Capture> out;
  if (!fs::exists(path)) return out;
  try {
    const h5::File file = h5::File::open_read(path);
    const h5::Group root = file.root();
    if (h5::get_attr_string(root, "format") != kCaptureFormat || h5::get_attr_string(root, "config_sha256") != config_sha256) {
      std::fprintf(stderr, "edi-anon: warning: %s: made under another configuration; its examples are left without masks\n", path.c_str());
      return out;
    }
    const std::vector<std::string> ids = h5::read_strings(root, "id");
    const at::Tensor a = read_tensor(root, "attribution");
    // Masks are stored as uint8; HDF5 converts them on the one (float) array reader.
    at::Tensor m = read_tensor(root, "mask").to(at::kByte);
    if (a.dim() < 1 || m.dim() < 1 || a.size(0) != static_cast<std::int64_t>(ids.size()) || m.size(0) != a.size(0)) {
      std::fprintf(stderr, "edi-anon: warning: %s: inconsistent shapes; its examples are left without masks\n", path.c_str());
      return out;
    }
    for (std::size_t k = 0; k < ids.size(); ++k) out[ids[k]] = {m[static_cast<std::int64_t>(k)], a[static_cast<std::int64_t>(k)]};
  } catch (const IoError& e) {
    std::fprintf(stderr, "edi-anon: warning: %s; its examples are left without masks\n", e.what());
    out.clear();
  }
  return out;
}

}  // namespace

Examples collect_examples(const fs::path& rundir, const std::vector<std::string>& ids, const std::string& config_sha256,
                          const std::vector<const engine::Shard*>& shards, const data::Manifest& m, int size, data::ResizeMode resize) {
  Examples ex;
  if (ids.empty()) return ex;
  const std::set<std::string> wanted(ids.begin(), ids.end());
  std::vector<at::Tensor> fin;
  std::map<std::string, Capture> captures;
  for (const engine::Shard* s : shards) {
    bool has = false;
    for (std::size_t i = 0; i < s->size(); ++i)
      if (wanted.count(s->ids[i])) {
        ex.ids.push_back(s->ids[i]);
        fin.push_back(s->state[static_cast<std::int64_t>(i)]);
        has = true;
      }
    if (has) captures.merge(read_capture(example_capture_path(rundir, s->index), config_sha256));
  }
  if (ex.ids.empty()) return ex;
  std::vector<std::size_t> idx;
  for (const auto& id : ex.ids)
    for (std::size_t k = 0; k < m.entries.size(); ++k)
      if (m.entries[k].id == id) idx.push_back(k);
  const engine::DecodedShard ds = engine::decode_shard(m, idx, size, resize);
  if (ds.ids != ex.ids) throw DataError(m.data_root + ": an example's original can no longer be decoded (file changed since the run?)");
  ex.original = ds.images.contiguous();
  ex.anonymized = at::stack(fin).contiguous();
  const auto n = static_cast<std::int64_t>(ex.ids.size());
  const Capture* first = nullptr;
  for (const auto& id : ex.ids)
    if (captures.count(id)) first = &captures.at(id);
  if (!first) return ex;  // nothing captured (a conventional baseline, the control, or every example stopped at pass 0)
  std::vector<std::int64_t> ms{n}, as{n};
  for (auto v : first->mask.sizes()) ms.push_back(v);
  for (auto v : first->attribution.sizes()) as.push_back(v);
  ex.mask = at::zeros(ms, at::kByte);
  ex.attribution = at::zeros(as, at::kFloat);
  for (std::int64_t k = 0; k < n; ++k) {
    const auto it = captures.find(ex.ids[static_cast<std::size_t>(k)]);
    const bool got = it != captures.end() && it->second.mask.sizes() == first->mask.sizes() &&
                     it->second.attribution.sizes() == first->attribution.sizes();
    ex.captured.push_back(got ? 1 : 0);
    if (!got) continue;
    ex.mask[k].copy_(it->second.mask);
    ex.attribution[k].copy_(it->second.attribution);
  }
  return ex;
}

void write_examples(const h5::File& file, const Examples& e) {
  if (e.ids.empty()) return;
  h5::Group g = file.create_group("examples");
  h5::write_strings(g, "id", e.ids);
  h5::write_array(g, "original", e.original.data_ptr<float>(), dims_of(e.original), true);
  h5::write_array(g, "anonymized", e.anonymized.data_ptr<float>(), dims_of(e.anonymized), true);
  if (!e.mask.defined()) return;
  h5::write_vector(g, "captured", e.captured);
  h5::write_array(g, "attribution", e.attribution.data_ptr<float>(), dims_of(e.attribution), true);
  h5::write_array(g, "mask", e.mask.data_ptr<std::uint8_t>(), dims_of(e.mask), true);
}

}  // namespace edi::rundir
