#pragma once
/// \file The distributed run: MPI ranks share fixed shards of image ids
/// (handed out dynamically each pass, the holder of a shard first in line),
/// each shard is committed to an HDF5 checkpoint after its pass (or every
/// `--checkpoint-every` seconds; see checkpoint.hpp), rank 0 reduces the
/// counts for the dataset-level rule and prints one line per pass, and the
/// final outputs are the same for any rank count and any interruption.
///
/// Resume is the default: a run directory with a provenance record continues
/// from the last committed pass of each shard, also with another rank count.
/// A resume whose configuration, model or data differ is refused, naming what
/// differs. The operational options (option_is_operational: threads per
/// rank, --verbose, --checkpoint-every, --examples, --no-images, ...) may
/// change between resumes.
#include <functional>
#include <string>

#include "edi/core/error.hpp"
#include "edi/cluster/mpi.hpp"
#include "edi/engine/run_io.hpp"

namespace edi::cluster {

/// Canonical JSON of config.options: the result-relevant options with their
/// canonical values, as the cli's option rows give them (operational options
/// such as threads or paths are not among them); its sha256 is the config hash.
std::string config_json(const engine::RunConfig& config);

struct DistRunOutcome {
  engine::RunSummary summary;
  bool interrupted = false;  ///< stopped by a signal after committing
  int signal = 0;            ///< the signal (the highest number any rank received)
  bool resumed = false;
  int start_pass = 0;
  /// Every shard is committed through this pass (-1: none); a resume starts
  /// at the next one. Some shards may be committed further.
  int last_complete_pass = -1;
  /// The signal came during the final writes (every shard final and
  /// committed; the rerun writes the final outputs).
  bool in_final_writes = false;
  std::string checkpoint_policy;       ///< rank 0's checkpoint policy at the end (ShardStore::policy_json)
  std::int64_t checkpoint_commits = 0;  ///< shard commits in this process run, all ranks
  /// The shard-major schedule ran (shard_loop.hpp): on an interruption,
  /// `last_complete_pass` is the lowest pass any shard is through.
  bool shard_major = false;
  std::int64_t shards_final = 0, shards_total = 0;  ///< shard-major: shards run to their end, of all
  std::int64_t shard_passes = 0;  ///< shard-major: passes committed, summed over the shards (a final one: limit + 1)
};

/// "stopped by signal 10 after pass 4 (...)": where an interrupted run
/// stands and where a rerun resumes, for the message before exit 75.
std::string describe_interruption(const DistRunOutcome& outcome);

/// One progress line per pass (rank 0 only; the shard-major schedule prints
/// its own lines instead).
using PassPrinter = std::function<void(const engine::PassReport&, double eta_seconds, const std::vector<std::string>& per_rank)>;

/// Run (or resume) `config` on every rank of `mpi`. Errors on rank 0 during
/// preparation are re-thrown on every rank (quietly on the others).
DistRunOutcome run_distributed(const Mpi& mpi, const engine::RunConfig& config, const PassPrinter& print = {});

/// Thrown on ranks other than 0 for an error rank 0 reports.
class RemoteError : public Error {
 public:
  RemoteError(const std::string& what, int code) : Error(what), code_(code) {}
  int exit_code() const noexcept override { return code_; }

 private:
  int code_;
};

}  // namespace edi::cluster
