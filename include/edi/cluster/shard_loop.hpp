#pragma once
/// \file The shard-major schedule (`--schedule shard`, and `auto` under
/// `--stop image` and `fixed`): a rank claims a whole shard from the claim
/// board and runs it pass after pass until none of its images is active (or
/// the pass limit), committing it by the checkpoint policy, then claims the
/// next one. No per-pass barrier or reduction: the shards' passes are
/// independent under these rules. Each shard keeps its counts after each of
/// its passes (ShardPassCounts, committed with it), from which rank 0 builds
/// the run's per-pass history at the end (shard_history): the same counts as
/// the pass-major schedule's reductions.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "edi/cluster/checkpoint.hpp"
#include "edi/cluster/mpi.hpp"
#include "edi/cluster/shard_store.hpp"
#include "edi/engine/engine.hpp"
#include "edi/engine/run_io.hpp"

namespace edi::cluster {

/// One rank's part of a shard-major run.
class ShardLoop {
 public:
  /// `committed`: each shard's standing (read_standing; a shard committed
  /// through `limit` is final and skipped); `sizes`: images per shard in the
  /// plan (for the progress line). Rank 0 also writes each progress line's
  /// figures to `progress_path` (checkpoints/progress.json, for `status`).
  ShardLoop(const Mpi& mpi, engine::Engine& engine, ShardStore& store, ClaimBoard& board, int limit,
            std::vector<std::int64_t> committed, std::vector<std::int64_t> sizes, double progress_every,
            std::filesystem::path progress_path);

  /// Claim shards and run each to its end until the board is empty or a
  /// signal arrives (the shard in hand is then committed as it stands).
  /// Collective at its start (the board's reset) and its end (one
  /// reduction). Returns the highest signal any rank received (0: none).
  int run();
  /// The shards this rank ran to their end (committed as final).
  const std::vector<int>& finished() const { return finished_; }

 private:
  struct Progress {
    std::int64_t shards = 0, images = 0, active = 0;
  };
  void run_shard(int shard);
  /// Whether rank 0 prints now (`force`: at the end); reads the shared counters.
  void progress(bool force);
  const Mpi& mpi_;
  engine::Engine& engine_;
  ShardStore& store_;
  ClaimBoard& board_;
  ClaimBoard counters_;  ///< slots: shards final, images no longer active, active images of shards in hand
  int limit_;
  std::vector<std::int64_t> committed_, sizes_;
  std::vector<int> finished_;
  double every_;
  std::filesystem::path progress_path_;
  std::int64_t final_at_start_ = 0, images_total_ = 0;
  std::chrono::steady_clock::time_point started_, printed_;
};

/// The run's per-pass history from every shard's counts (rank 0, at the end):
/// pass p sums, over the shards, their counts of pass p, or of their last
/// pass for a shard that finished before p (as pass-major counts a final
/// shard's records); passes 0 .. the last pass of any shard (at least pass
/// 0). `recorded` passes (run.json's, from pass-major passes of this run
/// directory) are kept as recorded. Seconds of a pass: the shards' seconds in
/// it over `ranks`; rate: its model evaluations over those seconds.
std::vector<engine::PassReport> shard_history(const std::vector<std::vector<ShardPassCounts>>& counts,
                                              const std::vector<engine::PassReport>& recorded, int ranks);

}  // namespace edi::cluster
