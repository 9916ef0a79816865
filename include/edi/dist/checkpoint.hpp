#pragma once
/// \file Per-shard checkpoints: after every pass each shard is committed to
/// `checkpoints/shard-NNNNN.h5` (temp file, flush, rename), holding the
/// current images, every image's record and trajectory, the pass and a
/// SHA-256 checksum of all of it. A shard file is always either the previous
/// pass's or this pass's, never a mix; a corrupt one is detected and the shard
/// recomputed.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "edi/engine/engine.hpp"

namespace edi::dist {

/// `RUNDIR/checkpoints/shard-NNNNN.h5`.
std::filesystem::path shard_checkpoint_path(const std::filesystem::path& rundir, int shard);

/// Write the shard's state after pass `pass` (atomically).
void write_shard_checkpoint(const std::filesystem::path& path, const engine::Shard& shard, int pass,
                            const std::string& config_sha256);

/// What a checkpoint holds (the originals are not stored: they are decoded
/// again from the data, whose files are checked against the manifest).
struct ShardCheckpoint {
  int pass = -1;  ///< last committed pass
  std::string config_sha256;
  std::vector<std::string> ids;
  at::Tensor labels, state;
  std::vector<engine::ImageRecord> records;
};

/// Read and verify a checkpoint. Returns nullopt (with `problem` set) when the
/// file is missing, unreadable, truncated or fails its checksum.
std::optional<ShardCheckpoint> read_shard_checkpoint(const std::filesystem::path& path, std::string* problem = nullptr);

/// Apply a checkpoint's state and records to a freshly made shard (same ids).
void restore_shard(engine::Shard& shard, const ShardCheckpoint& checkpoint);

}  // namespace edi::dist
