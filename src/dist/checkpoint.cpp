#include "edi/dist/checkpoint.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/dist/h5.hpp"

namespace edi::dist {

namespace fs = std::filesystem;

fs::path shard_checkpoint_path(const fs::path& rundir, int shard) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%05d.h5", shard);
  return rundir / "checkpoints" / name;
}

namespace {

/// Flattened records and trajectories: the arrays stored and checksummed.
struct Flat {
  std::vector<std::uint8_t> status, identified;
  std::vector<std::int32_t> stop_pass, escalation, stalls;
  std::vector<std::int32_t> t_image, t_pass, t_rank, t_top1;
  std::vector<float> t_prob, t_changed, t_psnr, t_linf;
};

Flat flatten(const std::vector<engine::ImageRecord>& records) {
  Flat f;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    f.status.push_back(static_cast<std::uint8_t>(r.status));
    f.identified.push_back(r.identified ? 1 : 0);
    f.stop_pass.push_back(r.stop_pass);
    f.escalation.push_back(r.escalation);
    f.stalls.push_back(r.stalls);
    for (const auto& p : r.trajectory) {
      f.t_image.push_back(static_cast<std::int32_t>(i));
      f.t_pass.push_back(p.pass);
      f.t_rank.push_back(p.true_rank);
      f.t_top1.push_back(p.top1);
      f.t_prob.push_back(p.true_prob);
      f.t_changed.push_back(p.changed_share);
      f.t_psnr.push_back(p.psnr);
      f.t_linf.push_back(p.linf);
    }
  }
  return f;
}

template <class T>
void add(std::string& buf, const std::vector<T>& v) {
  buf.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

/// SHA-256 of everything but the image state, which HDF5 protects itself
/// (Fletcher-32 per image chunk, verified on every read): hashing the state
/// too cost most of the checkpoint time.
std::string checksum(int pass, const std::vector<std::string>& ids, const at::Tensor& labels, const Flat& f) {
  std::string buf = std::to_string(pass) + "\n";
  for (const auto& id : ids) buf += id + "\n";
  buf.append(static_cast<const char*>(labels.data_ptr()), static_cast<std::size_t>(labels.numel()) * 8);
  add(buf, f.status); add(buf, f.identified); add(buf, f.stop_pass); add(buf, f.escalation); add(buf, f.stalls);
  add(buf, f.t_image); add(buf, f.t_pass); add(buf, f.t_rank); add(buf, f.t_top1);
  add(buf, f.t_prob); add(buf, f.t_changed); add(buf, f.t_psnr); add(buf, f.t_linf);
  return sha256_hex(buf);
}

}  // namespace

void write_shard_checkpoint(const fs::path& path, const engine::Shard& shard, int pass, const std::string& config_sha256) {
  h5::quiet();
  const at::Tensor state = shard.state.contiguous();
  const at::Tensor labels = shard.labels.contiguous();
  const Flat f = flatten(shard.records);
  AtomicPath out(path);
  try {
    H5::H5File file(out.temp().string(), H5F_ACC_TRUNC);
    H5::Group root = file.openGroup("/");
    h5::set_attr(root, "format", std::string("edi-anon-shard-checkpoint"));
    h5::set_attr(root, "schema_version", std::int64_t{1});
    h5::set_attr(root, "pass", std::int64_t{pass});
    h5::set_attr(root, "shard", std::int64_t{shard.index});
    h5::set_attr(root, "config_sha256", config_sha256);
    h5::set_attr(root, "checksum", checksum(pass, shard.ids, labels, f));
    h5::write_strings(root, "ids", shard.ids);
    h5::write_vector(root, "labels", std::vector<std::int64_t>(labels.data_ptr<std::int64_t>(), labels.data_ptr<std::int64_t>() + labels.numel()));
    std::vector<hsize_t> dims;
    for (auto d : state.sizes()) dims.push_back(static_cast<hsize_t>(d));
    h5::write_checked_array(root, "state", state.data_ptr<float>(), dims);
    h5::write_vector(root, "status", f.status);
    h5::write_vector(root, "identified", f.identified);
    h5::write_vector(root, "stop_pass", f.stop_pass);
    h5::write_vector(root, "escalation", f.escalation);
    h5::write_vector(root, "stalls", f.stalls);
    H5::Group t = file.createGroup("trajectory");
    h5::write_vector(t, "image", f.t_image);
    h5::write_vector(t, "pass", f.t_pass);
    h5::write_vector(t, "true_rank", f.t_rank);
    h5::write_vector(t, "top1", f.t_top1);
    h5::write_vector(t, "true_prob", f.t_prob);
    h5::write_vector(t, "changed_share", f.t_changed);
    h5::write_vector(t, "psnr", f.t_psnr);
    h5::write_vector(t, "linf", f.t_linf);
    file.flush(H5F_SCOPE_GLOBAL);
    file.close();
  } catch (const H5::Exception& e) {
    throw IoError(out.temp().string() + ": HDF5 write failed: " + e.getDetailMsg());
  }
  // A process crash cannot leave a partial file under the final name; power
  // loss is not in the failure model of a pass checkpoint.
  out.commit(Durability::kProcessCrash);
}

std::optional<ShardCheckpoint> read_shard_checkpoint(const fs::path& path, std::string* problem) {
  h5::quiet();
  auto fail = [&](const std::string& why) -> std::optional<ShardCheckpoint> {
    if (problem) *problem = path.string() + ": " + why;
    return std::nullopt;
  };
  if (!fs::exists(path)) return fail("missing");
  ShardCheckpoint c;
  Flat f;
  std::string stored;
  try {
    H5::H5File file(path.string(), H5F_ACC_RDONLY);
    H5::Group root = file.openGroup("/");
    if (h5::get_attr_string(root, "format") != "edi-anon-shard-checkpoint") return fail("not a shard checkpoint");
    c.pass = static_cast<int>(h5::get_attr_int(root, "pass"));
    c.config_sha256 = h5::get_attr_string(root, "config_sha256");
    stored = h5::get_attr_string(root, "checksum");
    c.ids = h5::read_strings(root, "ids");
    const auto labels = h5::read_longs(root, "labels");
    c.labels = at::tensor(labels.empty() ? std::vector<std::int64_t>{} : labels, at::kLong);
    const auto d = h5::dims(root, "state");
    if (d.size() != 4 || d[0] != c.ids.size() || labels.size() != c.ids.size()) return fail("inconsistent shapes");
    c.state = at::empty({static_cast<long>(d[0]), static_cast<long>(d[1]), static_cast<long>(d[2]), static_cast<long>(d[3])}, at::kFloat);
    h5::read_array(root, "state", c.state.data_ptr<float>(), static_cast<std::size_t>(c.state.numel()));
    f.status = h5::read_bytes(root, "status");
    f.identified = h5::read_bytes(root, "identified");
    f.stop_pass = h5::read_ints(root, "stop_pass");
    f.escalation = h5::read_ints(root, "escalation");
    f.stalls = h5::read_ints(root, "stalls");
    H5::Group t = file.openGroup("trajectory");
    f.t_image = h5::read_ints(t, "image");
    f.t_pass = h5::read_ints(t, "pass");
    f.t_rank = h5::read_ints(t, "true_rank");
    f.t_top1 = h5::read_ints(t, "top1");
    f.t_prob = h5::read_floats(t, "true_prob");
    f.t_changed = h5::read_floats(t, "changed_share");
    f.t_psnr = h5::read_floats(t, "psnr");
    f.t_linf = h5::read_floats(t, "linf");
  } catch (const H5::Exception& e) {
    return fail("unreadable (" + e.getDetailMsg() + ")");
  }
  const std::size_t n = c.ids.size(), m = f.t_image.size();
  if (f.status.size() != n || f.identified.size() != n || f.stop_pass.size() != n || f.escalation.size() != n ||
      f.stalls.size() != n || f.t_pass.size() != m || f.t_rank.size() != m || f.t_top1.size() != m || f.t_prob.size() != m ||
      f.t_changed.size() != m || f.t_psnr.size() != m || f.t_linf.size() != m)
    return fail("inconsistent record sizes");
  if (checksum(c.pass, c.ids, c.labels, f) != stored) return fail("checksum mismatch");
  c.records.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto& r = c.records[i];
    r.status = static_cast<engine::Status>(f.status[i]);
    r.identified = f.identified[i] != 0;
    r.stop_pass = f.stop_pass[i];
    r.escalation = f.escalation[i];
    r.stalls = f.stalls[i];
  }
  for (std::size_t k = 0; k < m; ++k) {
    const auto i = static_cast<std::size_t>(f.t_image[k]);
    if (i >= n) return fail("trajectory refers to image " + std::to_string(i));
    c.records[i].trajectory.push_back({f.t_pass[k], f.t_prob[k], f.t_rank[k], f.t_top1[k], f.t_changed[k], f.t_psnr[k], f.t_linf[k]});
  }
  return c;
}

void restore_shard(engine::Shard& shard, const ShardCheckpoint& c) {
  if (c.ids != shard.ids) throw DataError("shard " + std::to_string(shard.index) + ": checkpoint holds other images than the manifest's shard");
  shard.state = c.state.clone();
  shard.records = c.records;
}

}  // namespace edi::dist
