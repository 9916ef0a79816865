#include "edi/cluster/checkpoint.hpp"

#include <ATen/ATen.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/cluster/h5.hpp"
#include "edi/rundir/record.hpp"

namespace edi::cluster {

namespace fs = std::filesystem;

fs::path shard_checkpoint_path(const fs::path& rundir, int shard, int slot) {
  char name[40];
  std::snprintf(name, sizeof name, slot == 0 ? "shard-%05d.h5" : "shard-%05d.b.h5", shard);
  return rundir / "checkpoints" / name;
}

namespace {

/// The arrays stored and checksummed: the run directory's one flattening.
using Flat = rundir::RecordColumns;

template <class T>
void add(std::string& buf, const std::vector<T>& v) {
  buf.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

/// SHA-256 of everything but the image state, which HDF5 protects itself
/// (Fletcher-32 per image chunk, verified on every read): hashing the state
/// too cost most of the checkpoint time.
std::string checksum(int pass, const std::vector<std::string>& ids, const at::Tensor& labels, const Flat& f, int evaluated,
                     const std::vector<std::int32_t>& pending, const std::string& history, const std::vector<std::int64_t>& counts,
                     const std::vector<double>& seconds) {
  std::string buf = std::to_string(pass) + "\n";
  if (!history.empty()) buf += history;
  if (!counts.empty()) {  // absent from checkpoints without per-pass counts, whose checksums stay as they were
    buf += "counts " + std::to_string(seconds.size()) + "\n";
    add(buf, counts);
    add(buf, seconds);
  }
  if (evaluated >= 0) {  // a between-phases commit (absent from whole-pass ones, whose checksums stay as they were)
    buf += "evaluated " + std::to_string(evaluated) + "\n";
    add(buf, pending);
  }
  for (const auto& id : ids) buf += id + "\n";
  buf.append(static_cast<const char*>(labels.data_ptr()), static_cast<std::size_t>(labels.numel()) * 8);
  add(buf, f.status); add(buf, f.identified); add(buf, f.stop_pass); add(buf, f.escalation); add(buf, f.stalls);
  add(buf, f.t_image); add(buf, f.t_pass); add(buf, f.t_rank); add(buf, f.t_top1);
  add(buf, f.t_prob); add(buf, f.t_changed); add(buf, f.t_psnr); add(buf, f.t_linf);
  return sha256_hex(buf);
}

/// The between-phases part of a checkpoint: the pass evaluated, the pending
/// images and their attributions.
void write_pending(h5::Group& root, const engine::Shard& shard, int evaluated, const std::vector<std::int32_t>& pending) {
  h5::set_attr(root, "evaluated", std::int64_t{evaluated});
  h5::write_vector(root, "pending", pending);
  if (pending.empty()) return;
  const at::Tensor a = shard.pending_attribution.contiguous().to(at::kFloat);
  if (a.dim() != 4 || a.size(0) != static_cast<std::int64_t>(pending.size()))
    throw IoError("shard " + std::to_string(shard.index) + ": pending attributions do not match the pending images");
  h5::Dims dims;
  for (auto d : a.sizes()) dims.push_back(static_cast<std::uint64_t>(d));
  h5::write_checked_array(root, "pending_attribution", a.data_ptr<float>(), dims);
}

/// Largest image side a checkpoint may claim when the caller does not say.
constexpr std::uint64_t kMaxSide = 8192;

/// A 4-D image array of `n` images, 3 channels, square side `side` (0: any up to kMaxSide).
bool fits(const h5::Dims& d, std::size_t n, int side) {
  if (d.size() != 4 || d[0] != n || d[1] != 3 || d[2] != d[3] || d[2] == 0) return false;
  return side > 0 ? d[2] == static_cast<std::uint64_t>(side) : d[2] <= kMaxSide;
}

/// The per-pass counts as stored: N x 4 int64 (row-major) and N seconds.
void flatten_counts(const std::vector<ShardPassCounts>& counts, std::vector<std::int64_t>& flat, std::vector<double>& seconds) {
  for (const auto& c : counts) {
    flat.insert(flat.end(), {c.identified, c.active, c.total, c.image_passes});
    seconds.push_back(c.seconds);
  }
}

std::vector<ShardPassCounts> unflatten_counts(const std::vector<std::int64_t>& flat, const std::vector<double>& seconds) {
  std::vector<ShardPassCounts> out(seconds.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = {flat[4 * i], flat[4 * i + 1], flat[4 * i + 2], flat[4 * i + 3], seconds[i]};
  return out;
}

at::Tensor read_images(const h5::Group& g, const std::string& name, const h5::Dims& d) {
  at::Tensor t = at::empty({static_cast<long>(d[0]), static_cast<long>(d[1]), static_cast<long>(d[2]), static_cast<long>(d[3])}, at::kFloat);
  if (t.numel()) h5::read_array(g, name, t.data_ptr<float>(), static_cast<std::size_t>(t.numel()));
  return t;
}

}  // namespace

namespace {

std::string errno_text() { return std::strerror(errno); }

/// The written temp file into the slot `slot`: fsync it, unlink the slot (the
/// older state; the other slot keeps the newer one), rename the temp file into
/// the free name and fsync the directory. No rename ever replaces a file (a
/// replacing rename makes ext4 flush the data synchronously), and at every
/// moment the other slot still holds a committed state: a crash or power loss
/// leaves it, and the new slot either complete or absent.
void commit_into_slot(const fs::path& temp, const fs::path& slot) {
  fsync_path(temp, false);
  if (::unlink(slot.c_str()) != 0 && errno != ENOENT)
    throw IoError(slot.string() + ": cannot remove the older checkpoint slot: " + errno_text());
  if (::rename(temp.c_str(), slot.c_str()) != 0)
    throw IoError(slot.string() + ": cannot rename the new checkpoint into place: " + errno_text());
  fsync_path(slot.parent_path(), true);
}

}  // namespace

void write_shard_checkpoint(const fs::path& path, const engine::Shard& shard, int pass, const std::string& config_sha256,
                            int evaluated, const std::string& history, const std::vector<ShardPassCounts>& counts) {
  const at::Tensor state = shard.state.contiguous();
  const at::Tensor labels = shard.labels.contiguous();
  const Flat f = rundir::flatten(shard.records);
  const std::vector<std::int32_t> pending = evaluated >= 0 ? std::vector<std::int32_t>(shard.pending.begin(), shard.pending.end())
                                                          : std::vector<std::int32_t>{};
  std::vector<std::int64_t> flat_counts;
  std::vector<double> seconds;
  flatten_counts(counts, flat_counts, seconds);
  AtomicPath out(path);
  {
    h5::File file = h5::File::create(out.temp());
    h5::Group root = file.root();
    h5::set_attr(root, "format", std::string("edi-anon-shard-checkpoint"));
    h5::set_attr(root, "schema_version", std::int64_t{1});
    h5::set_attr(root, "pass", std::int64_t{pass});
    h5::set_attr(root, "shard", std::int64_t{shard.index});
    h5::set_attr(root, "config_sha256", config_sha256);
    h5::set_attr(root, "checksum", checksum(pass, shard.ids, labels, f, evaluated, pending, history, flat_counts, seconds));
    if (!history.empty()) h5::set_attr(root, "history", history);
    h5::write_strings(root, "ids", shard.ids);
    h5::write_vector(root, "labels", std::vector<std::int64_t>(labels.data_ptr<std::int64_t>(), labels.data_ptr<std::int64_t>() + labels.numel()));
    h5::Dims dims;
    for (auto d : state.sizes()) dims.push_back(static_cast<std::uint64_t>(d));
    h5::write_checked_array(root, "state", state.data_ptr<float>(), dims);
    rundir::H5Sink sink(file);
    sink.table(rundir::checkpoint_image_table(f));
    sink.table(rundir::trajectory_table(f));
    if (evaluated >= 0) write_pending(root, shard, evaluated, pending);
    if (!seconds.empty()) {
      h5::write_vector(root, "pass_counts", flat_counts);
      h5::write_vector(root, "pass_seconds", seconds);
    }
    file.flush();
    file.close();
  }
  commit_into_slot(out.temp(), path);
}

namespace {

/// The records and trajectories of an open checkpoint (sizes checked by rundir::column_problem).
Flat read_flat(const h5::File& file, const h5::Group& root) {
  Flat f;
  f.status = h5::read_bytes(root, "status");
  f.identified = h5::read_bytes(root, "identified");
  f.stop_pass = h5::read_ints(root, "stop_pass");
  f.escalation = h5::read_ints(root, "escalation");
  f.stalls = h5::read_ints(root, "stalls");
  const h5::Group t = file.open_group("trajectory");
  f.t_image = h5::read_ints(t, "image");
  f.t_pass = h5::read_ints(t, "pass");
  f.t_rank = h5::read_ints(t, "true_rank");
  f.t_top1 = h5::read_ints(t, "top1");
  f.t_prob = h5::read_floats(t, "true_prob");
  f.t_changed = h5::read_floats(t, "changed_share");
  f.t_psnr = h5::read_floats(t, "psnr");
  f.t_linf = h5::read_floats(t, "linf");
  return f;
}

/// An open error that says nothing about the file's contents (the disk, the
/// network file system, a lock): the checkpoint must be kept. Throws IoError.
void check_openable(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return;  // reported as missing by the caller
    throw IoError(path.string() + ": cannot open the checkpoint: " + std::strerror(err) + " (kept; rerun when the file is readable)");
  }
  char byte = 0;
  const ssize_t got = ::read(fd, &byte, 1);
  const int err = errno;
  ::close(fd);
  if (got < 0) throw IoError(path.string() + ": cannot read the checkpoint: " + std::strerror(err) + " (kept; rerun when the file is readable)");
}

}  // namespace

std::optional<ShardCheckpoint> read_shard_checkpoint(const fs::path& path, std::string* problem, int expected_side) {
  auto fail = [&](const std::string& why) -> std::optional<ShardCheckpoint> {
    if (problem) *problem = path.string() + ": " + why;
    return std::nullopt;
  };
  if (!fs::exists(path)) return fail("missing");
  check_openable(path);
  ShardCheckpoint c;
  Flat f;
  std::string stored;
  std::vector<std::int32_t> pending;
  std::vector<std::int64_t> flat_counts;
  std::vector<double> seconds;
  try {
    const h5::File file = h5::File::open_read(path);
    const h5::Group root = file.root();
    if (h5::get_attr_string(root, "format") != "edi-anon-shard-checkpoint") return fail("not a shard checkpoint");
    c.pass = static_cast<int>(h5::get_attr_int(root, "pass"));
    c.config_sha256 = h5::get_attr_string(root, "config_sha256");
    stored = h5::get_attr_string(root, "checksum");
    if (h5::has_attr(root, "history")) c.history = h5::get_attr_string(root, "history");
    c.ids = h5::read_strings(root, "ids");
    const auto labels = h5::read_longs(root, "labels");
    c.labels = at::tensor(labels.empty() ? std::vector<std::int64_t>{} : labels, at::kLong);
    const auto d = h5::dims(root, "state");
    if (labels.size() != c.ids.size() || !fits(d, c.ids.size(), expected_side)) return fail("inconsistent shapes");
    c.state = read_images(root, "state", d);
    f = read_flat(file, root);
    if (h5::has_attr(root, "evaluated")) {
      c.evaluated = static_cast<int>(h5::get_attr_int(root, "evaluated"));
      pending = h5::read_ints(root, "pending");
      if (c.evaluated != c.pass + 1) return fail("evaluated pass " + std::to_string(c.evaluated) + " does not follow pass " + std::to_string(c.pass));
      for (std::int32_t i : pending)
        if (i < 0 || static_cast<std::size_t>(i) >= c.ids.size()) return fail("pending image " + std::to_string(i) + " out of range");
      if (!pending.empty()) {
        const auto pd = h5::dims(root, "pending_attribution");
        if (pd.size() != 4 || pd[0] != pending.size() || h5::Dims(pd.begin() + 1, pd.end()) != h5::Dims(d.begin() + 1, d.end()))
          return fail("inconsistent pending shapes");
        c.pending_attribution = read_images(root, "pending_attribution", pd);
      }
    }
    if (h5::has_dataset(root, "pass_counts")) {
      flat_counts = h5::read_longs(root, "pass_counts");
      seconds = h5::read_doubles(root, "pass_seconds");
      if (seconds.empty() || flat_counts.size() != 4 * seconds.size() || seconds.size() > static_cast<std::size_t>(c.pass) + 1)
        return fail("inconsistent per-pass counts (" + std::to_string(flat_counts.size()) + " values for " +
                    std::to_string(seconds.size()) + " passes, committed through pass " + std::to_string(c.pass) + ")");
    }
  } catch (const IoError& e) {  // from h5: "FILE:/DATASET: what (bottom of the HDF5 error stack)"
    return fail(std::string("unreadable (") + e.what() + ")");
  }
  const std::size_t n = c.ids.size();
  if (const std::string why = rundir::column_problem(f, n); !why.empty()) return fail(why);
  if (checksum(c.pass, c.ids, c.labels, f, c.evaluated, pending, c.history, flat_counts, seconds) != stored)
    return fail("checksum mismatch");
  c.counts = unflatten_counts(flat_counts, seconds);
  c.records = rundir::unflatten(f);
  c.pending.assign(pending.begin(), pending.end());
  return c;
}

std::string read_checkpoint_config(const fs::path& path) {
  try {
    const h5::File file = h5::File::open_read(path);
    const h5::Group root = file.root();
    if (h5::get_attr_string(root, "format") != "edi-anon-shard-checkpoint") return {};
    return h5::get_attr_string(root, "config_sha256");
  } catch (const IoError&) {
    return {};
  }
}

namespace {

/// The pass in a checkpoint's header (-2 when the header cannot be read: such
/// a slot is tried last).
int header_pass(const fs::path& path) {
  try {
    const h5::File file = h5::File::open_read(path);
    const h5::Group root = file.root();
    if (h5::get_attr_string(root, "format") != "edi-anon-shard-checkpoint") return -2;
    return static_cast<int>(h5::get_attr_int(root, "pass"));
  } catch (const IoError&) {
    return -2;
  }
}

}  // namespace

NewestCheckpoint read_newest_checkpoint(const fs::path& rundir, int shard, int expected_side) {
  NewestCheckpoint out;
  std::vector<std::pair<int, int>> order;  // (header pass, slot) of the slots that exist
  for (int slot = 0; slot < kCheckpointSlots; ++slot) {
    const fs::path p = shard_checkpoint_path(rundir, shard, slot);
    if (!fs::exists(p)) continue;
    check_openable(p);  // a transient error keeps both slots and stops the run (IoError)
    order.emplace_back(header_pass(p), slot);
  }
  // Newest first (by the pass recorded inside); on a tie, slot 0.
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  // The first valid one wins; the ones before it failed, and one whose header
  // cannot be read is reported as well (it can never be used).
  for (const auto& [pass, slot] : order) {
    if (out.checkpoint && pass != -2) continue;  // an older valid-looking slot: not needed
    std::string problem;
    auto ck = read_shard_checkpoint(shard_checkpoint_path(rundir, shard, slot), &problem, expected_side);
    if (ck && !out.checkpoint) {
      out.checkpoint = std::move(ck);
      out.slot = slot;
    } else if (!ck) {
      out.bad_slots.push_back(slot);
      out.problems.push_back(problem);
    }
  }
  return out;
}

void restore_shard(engine::Shard& shard, const ShardCheckpoint& c) {
  if (c.ids != shard.ids) throw DataError("shard " + std::to_string(shard.index) + ": checkpoint holds other images than the manifest's shard");
  if (c.state.sizes() != shard.original.sizes())
    throw DataError("shard " + std::to_string(shard.index) + ": checkpoint images are not of the model's input size");
  shard.state = c.state.clone();
  shard.records = c.records;
  shard.pending = c.pending;
  shard.pending_attribution = c.pending_attribution.defined() ? c.pending_attribution.clone() : at::Tensor();
}

}  // namespace edi::cluster
