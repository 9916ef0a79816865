#pragma once
/// \file Per-shard checkpoints: a shard is committed to one of its two slots
/// `checkpoints/shard-NNNNN.h5` / `shard-NNNNN.b.h5` (temp file, fsync, unlink
/// the older slot, rename into it, fsync of the directory) when the checkpoint
/// policy says so (`--checkpoint-every auto` by default; a final shard, a
/// signal and the end of the run always commit). A checkpoint holds the
/// current images, every image's record and trajectory (rundir's one
/// flattening), the pass, the run's pass history and a SHA-256 checksum over
/// all of it but the images, which HDF5 protects with a Fletcher-32 checksum
/// per image chunk. Since the shard-major schedule it also holds the shard's
/// own counts after each of its passes (ShardPassCounts: what the run's
/// per-pass history adds for it), so that any schedule can rebuild the run's
/// history from the shards.
/// A shard file is always one committed state, never a mix; a corrupt one is
/// detected and the shard recomputed.
///
/// A shard interrupted between the two phases of a dataset-rule pass (its
/// evaluation of pass P done, the perturbation waiting for the reduction) is
/// committed as of pass P-1 plus that evaluation: `evaluated` = P, and the
/// pending images with their attributions, so that a resume continues it
/// without evaluating it again.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "edi/engine/engine.hpp"

namespace edi::cluster {

/// One shard's counts after one of its passes: what pass-major's reduction adds
/// for it (identified / active / total as engine::tally gives them after the
/// pass), and the model evaluations and seconds the pass took.
struct ShardPassCounts {
  std::int64_t identified = 0, active = 0, total = 0, image_passes = 0;
  double seconds = 0;
};

/// Two slots per shard: a commit goes into the slot that does not hold the
/// newest committed state (see write_shard_checkpoint), so that a corrupt
/// newest slot falls back to the previous commit.
inline constexpr int kCheckpointSlots = 2;

/// Slot 0: `RUNDIR/checkpoints/shard-NNNNN.h5`; slot 1: `shard-NNNNN.b.h5`.
std::filesystem::path shard_checkpoint_path(const std::filesystem::path& rundir, int shard, int slot = 0);

/// Write the shard's state after pass `pass` into the slot file `path` (the
/// older slot): a temp file is written, fsync'd, the slot unlinked, the temp
/// file renamed into its name (never a replacing rename) and the directory
/// fsync'd. The other slot is never touched. `evaluated` >= 0:
/// the records also hold that pass's evaluation and the shard's pending
/// images and attributions are stored (see above).
/// `history`: the run's pass history as of the commit (RunHistory::to_json),
/// from which a lost or unparsable `run.json` is recovered. `counts`: the
/// shard's counts after each of its passes 0, 1, ... (datasets `pass_counts`,
/// N x 4 int64 identified/active/total/image_passes, and `pass_seconds`).
void write_shard_checkpoint(const std::filesystem::path& path, const engine::Shard& shard, int pass,
                            const std::string& config_sha256, int evaluated = -1, const std::string& history = {},
                            const std::vector<ShardPassCounts>& counts = {});

/// What a checkpoint holds (the originals are not stored: they are decoded
/// again from the data, whose files are checked against the manifest).
struct ShardCheckpoint {
  int pass = -1;       ///< last committed pass
  int evaluated = -1;  ///< pass whose evaluation the records hold on top (-1: none)
  std::string config_sha256;
  std::string history;  ///< the run's pass history when it was committed ("" in older checkpoints)
  std::vector<std::string> ids;
  at::Tensor labels, state;
  std::vector<engine::ImageRecord> records;
  std::vector<int> pending;        ///< with `evaluated`: images to perturb
  at::Tensor pending_attribution;  ///< their attributions
  /// The shard's counts after its passes 0, 1, ... (empty in checkpoints made
  /// before the shard-major schedule).
  std::vector<ShardPassCounts> counts;
};

/// Read and verify a checkpoint. Returns nullopt (with `problem` set) when the
/// file is missing, unreadable, truncated, fails its checksum or has a shape
/// that does not fit (`expected_side` > 0: the images' side in pixels).
std::optional<ShardCheckpoint> read_shard_checkpoint(const std::filesystem::path& path, std::string* problem = nullptr,
                                                     int expected_side = 0);

/// The newest valid slot of a shard (by the pass recorded inside); when the
/// newest fails its checks (checksum, shape, unreadable), the other one.
struct NewestCheckpoint {
  std::optional<ShardCheckpoint> checkpoint;  ///< nullopt: no usable slot (or none exists)
  int slot = -1;                              ///< the slot it came from
  std::vector<int> bad_slots;                 ///< slots that exist but failed their checks
  std::vector<std::string> problems;          ///< "PATH: why", one per bad slot
};

/// Throws IoError (both slots kept) when a slot cannot be opened for a
/// transient reason (EIO, a lock).
NewestCheckpoint read_newest_checkpoint(const std::filesystem::path& rundir, int shard, int expected_side);

/// The config sha256 a checkpoint was made with, from its header ("" when
/// unreadable).
std::string read_checkpoint_config(const std::filesystem::path& path);

/// Apply a checkpoint's state and records to a freshly made shard (same ids).
void restore_shard(engine::Shard& shard, const ShardCheckpoint& checkpoint);

}  // namespace edi::cluster
