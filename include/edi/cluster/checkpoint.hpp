#pragma once
/// \file Per-shard checkpoints: a shard is committed to
/// `checkpoints/shard-NNNNN.h5` (temp file, fsync, rename, fsync of the
/// directory) after its pass, or with `--checkpoint-every S` only once S
/// seconds have passed since its last commit (a final shard, a signal and the
/// end of the run always commit). A checkpoint holds the current images, every
/// image's record and trajectory (rundir's one flattening), the pass, the
/// run's pass history and a SHA-256 checksum over all of it but the images,
/// which HDF5 protects with a Fletcher-32 checksum per image chunk.
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

#include "edi/engine/engine.hpp"

namespace edi::cluster {

/// `RUNDIR/checkpoints/shard-NNNNN.h5`.
std::filesystem::path shard_checkpoint_path(const std::filesystem::path& rundir, int shard);

/// Write the shard's state after pass `pass` (atomically). `evaluated` >= 0:
/// the records also hold that pass's evaluation and the shard's pending
/// images and attributions are stored (see above).
/// `history`: the run's pass history as of the commit (RunHistory::to_json),
/// from which a lost or unparsable `run.json` is recovered.
void write_shard_checkpoint(const std::filesystem::path& path, const engine::Shard& shard, int pass,
                            const std::string& config_sha256, int evaluated = -1, const std::string& history = {});

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
};

/// Read and verify a checkpoint. Returns nullopt (with `problem` set) when the
/// file is missing, unreadable, truncated, fails its checksum or has a shape
/// that does not fit (`expected_side` > 0: the images' side in pixels).
std::optional<ShardCheckpoint> read_shard_checkpoint(const std::filesystem::path& path, std::string* problem = nullptr,
                                                     int expected_side = 0);

/// The config sha256 a checkpoint was made with, from its header ("" when
/// unreadable).
std::string read_checkpoint_config(const std::filesystem::path& path);

/// Apply a checkpoint's state and records to a freshly made shard (same ids).
void restore_shard(engine::Shard& shard, const ShardCheckpoint& checkpoint);

}  // namespace edi::cluster
