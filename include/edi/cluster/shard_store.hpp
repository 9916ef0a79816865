#pragma once
/// \file The shards one rank holds in memory during a run, and their commits:
/// load (decode the originals, restore the checkpoint, catch up), save (a
/// checkpoint as of a pass), finish (after a shard's pass: commit now, or
/// later with `--checkpoint-every`), and commit-dirty (on a signal: every
/// shard ahead of its checkpoint, and every shard between the two phases of a
/// dataset-rule pass, is committed exactly as it stands).
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "edi/cluster/checkpoint.hpp"
#include "edi/data/manifest.hpp"
#include "edi/engine/engine.hpp"
#include "edi/engine/run_io.hpp"

namespace edi::cluster {

/// What the store needs to know about the run.
struct StoreSetup {
  std::filesystem::path out;                              ///< run directory
  const data::Manifest* manifest = nullptr;
  const std::vector<std::vector<std::size_t>>* plan = nullptr;  ///< manifest entries of each shard
  int input_size = 0;                                     ///< the model's side in pixels
  data::ResizeMode resize = data::ResizeMode::kShorterSideCrop;
  std::string config_sha256;
  double checkpoint_every = 0;                            ///< seconds; 0: commit after every pass
  /// --checkpoint-every auto: commit a shard once its work since the last
  /// commit reaches auto_interval() (checkpoint_every is then ignored).
  bool checkpoint_auto = false;
  double checkpoint_max_loss = 60;                        ///< auto: the most work (seconds) a shard may lose
  int limit = 0;                                          ///< the pass limit (final shards are committed as of it)
  bool conventional = false;
  int rank = 0;                                           ///< for messages and the fault hook
};

class ShardStore {
 public:
  using Clock = std::chrono::steady_clock;
  /// A shard as held by this rank.
  struct Held {
    engine::Shard shard;
    int committed = -1;  ///< the state is through this pass (on disk unless dirty)
    int evaluated = -1;  ///< the records hold this pass's evaluation, not yet perturbed (-1: none)
    bool dirty = false;  ///< in memory ahead of its checkpoint
    Clock::time_point saved = Clock::now();  ///< last commit (or load)
    double work = 0;     ///< seconds of compute on this shard since its last commit (what a kill -9 loses)
    int slot = -1;       ///< the checkpoint slot holding its newest committed state (-1: none)
    /// Its counts after each of its passes 0, 1, ... (committed with it).
    /// Shorter than the passes it is through only when restored from a
    /// checkpoint made before they were kept (then never extended).
    std::vector<ShardPassCounts> counts;
  };

  ShardStore(const StoreSetup& setup, engine::Engine& engine);

  /// The shard, loaded if this rank does not hold it: decode the originals,
  /// restore its checkpoint, catch up to pass `upto` (-1: as committed).
  Held& load(int shard, int upto);
  /// The shard from scratch (its checkpoint ignored, overwritten by its next
  /// commit): for a shard whose checkpoint lacks its per-pass counts.
  Held& load_fresh(int shard);
  /// After pass `pass` of `h` (evaluated and perturbed, `counts` as perturb
  /// returned them): its counts for that pass.
  static void note_pass(Held& h, int pass, const engine::PassCounts& counts, std::int64_t image_passes, double seconds);
  /// True when `counts` cover every pass a shard committed through
  /// `committed` is through (a final shard's through its last pass: later
  /// ones count the same).
  static bool counts_complete(const std::vector<ShardPassCounts>& counts, int committed);
  /// What pass-major's reduction adds for `h` at `pass`, which the shard is
  /// through: its counts of that pass; for a final shard past its last pass,
  /// those of its last pass (its records no longer change); without per-pass
  /// counts, its records as they stand.
  static engine::PassCounts counts_at(const Held& h, int pass);
  /// Commit `h` as of pass `as_of` (a between-phases commit when `h.evaluated` >= 0).
  void save(int shard, Held& h, int as_of);
  /// After a shard's pass: commit it (--checkpoint-every 0), or only when its
  /// last commit is that old (--checkpoint-every S), or when its work since
  /// the last commit reaches auto_interval() (auto); a final shard (no active
  /// image) and a pending signal always commit, as of the pass limit for a
  /// final shard.
  void finish(int shard, Held& h, int pass, std::int64_t active);
  /// Commit every held shard that is ahead of its checkpoint.
  void commit_dirty();
  /// Forget the shards not in `keep` (their newest state is another rank's).
  void keep_only(const std::set<int>& keep);
  /// The run's pass history as it stands (RunHistory::to_json), stored in
  /// every commit from now on.
  void set_history(std::string history_json) { history_ = std::move(history_json); }

  std::map<int, Held>& held() { return held_; }
  bool holds(int shard) const { return held_.count(shard) > 0; }
  bool interval() const { return setup_.checkpoint_auto || setup_.checkpoint_every > 0; }
  /// The auto policy's interval in seconds of a shard's own work (Young/Daly):
  /// sqrt(2 C L) with C the commit cost (EWMA of this rank's commits) and L
  /// the maximum loss, at least C / kMaxCommitShare (commits <= 2 % of rank
  /// time) and at most L. 0 until a commit was measured (the first commit
  /// measures it).
  double auto_interval() const;
  static constexpr double kMaxCommitShare = 0.02;
  /// The policy as it stands, for run.json and the final line:
  /// {"mode": "auto"|"seconds"|"every-pass", ...}.
  std::string policy_json() const;
  std::int64_t commits() const { return commits_; }
  double checkpoint_seconds() const { return checkpoint_seconds_; }
  const std::vector<data::QuarantineItem>& quarantined() const { return quarantined_; }

 private:
  void restore(int shard, Held& h);
  Held make(int shard);
  StoreSetup setup_;
  engine::Engine& engine_;
  std::map<int, Held> held_;
  std::vector<data::QuarantineItem> quarantined_;
  double checkpoint_seconds_ = 0;
  double commit_ewma_ = -1;  ///< seconds per commit, exponentially weighted (-1: none yet)
  std::int64_t commits_ = 0;
  std::string history_;
  int fault_pass_ = -1;  ///< EDI_FAULT_IO test hook (see shard_store.cpp)
};

}  // namespace edi::cluster
