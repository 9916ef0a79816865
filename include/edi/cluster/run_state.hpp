#pragma once
/// \file The run's own state besides the shard checkpoints: one pass's counts
/// summed over ranks (`PassReduction`) and the per-pass history with the batch
/// size (`RunHistory`, stored as `checkpoints/run.json`).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "edi/cluster/mpi.hpp"
#include "edi/engine/run_io.hpp"

namespace edi::cluster {

/// What every rank contributes to a pass, summed over ranks in one reduction.
struct PassReduction {
  std::int64_t identified = 0;        ///< images identified per their latest evaluation
  std::int64_t active = 0;            ///< images still active
  std::int64_t total = 0;             ///< images counted
  std::int64_t image_passes = 0;      ///< model evaluations done in this pass (for the rate)
  std::int64_t stopped_claiming = 0;  ///< ranks that stopped claiming shards on a signal
  /// Shards through this pass's reduction point: perturbed (or final) under
  /// the per-image and fixed rules, evaluated under the dataset rule.
  std::int64_t shards_done = 0;

  void add(const engine::PassCounts& counts);
  /// Sum over the ranks of `mpi` (collective).
  void reduce(const Mpi& mpi);
  double risk_percent() const { return total ? 100.0 * static_cast<double>(identified) / static_cast<double>(total) : 0.0; }
};

/// The batch size chosen for the run and the passes recorded so far.
struct RunHistory {
  int batch = 0;  ///< 0: not chosen yet
  std::vector<engine::PassReport> passes;
  /// The checkpoint policy as it stood (ShardStore::policy_json, rank 0's), a
  /// JSON object written as "checkpoint_policy" for the user ("": none).
  std::string checkpoint_policy;
  /// The schedule of the process run that wrote it last: "pass" or "shard"
  /// ("": not recorded). Like the policy, for the user and the scale model.
  std::string schedule;

  /// `{"batch": B, "passes": [{"pass", "risk_percent", "active", "identified", "total", "seconds", "rate"}]}`
  std::string to_json() const;
  /// Parse `to_json`'s text; throws DataError naming `where` and what is wrong.
  static RunHistory from_json(const std::string& text, const std::string& where);

  /// The passes 0, 1, ... recorded without a gap (later entries are ignored).
  std::vector<engine::PassReport> contiguous() const;
  /// True when the last recorded pass left no image active (the loop ended).
  bool loop_ended() const { return !passes.empty() && passes.back().active == 0; }
};

}  // namespace edi::cluster
