#pragma once
/// \file Where a run or a sweep stands (`edi-anon status`), read from committed
/// files only, so it is safe while the run goes on:
///
///   RUNDIR/complete.json      finished (the completion marker, written last)
///   RUNDIR/error.txt          failed: its first line is the error
///   RUNDIR/.lock              held (flock) by the rank 0 of a live run
///   RUNDIR/checkpoints/       run.json (batch and per-pass history, rewritten
///                             atomically after every pass) and the shard checkpoints
///   RUNDIR/provenance.json    the run was started (options, host, start time)
///
/// Nothing is written, locked or opened for writing. The lock is tested through
/// /proc/locks, which lists the locks held on this machine; a run on another
/// node counts as running while its newest checkpoint is younger than
/// `stale_seconds`.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace edi::report {

enum class RunState {
  kDone,         ///< complete.json exists
  kFailed,       ///< error.txt exists (and is not older than complete.json)
  kRunning,      ///< the lock is held, or a checkpoint is fresh
  kInterrupted,  ///< started, not finished, not running: rerunning the same command resumes it
  kPending,      ///< nothing committed yet (no directory, or no provenance.json)
};

/// "done" | "failed" | "running" | "interrupted" | "pending".
const char* run_state_name(RunState state) noexcept;

/// One run directory.
struct RunProgress {
  std::string name;              ///< directory name (the sweep entry's name)
  int index = -1;                ///< the sweep's --index, -1 when no plan was given
  std::filesystem::path dir;
  RunState state = RunState::kPending;
  std::string why;               ///< how the state was decided, e.g. "lock held by pid 4242"
  std::string error;             ///< failed: the first line of error.txt
  std::string method;            ///< from provenance.json ("edi", "conventional", ...), may be empty
  int pass = -1;                 ///< last recorded pass (-1: none yet)
  long long active = -1, identified = -1, total = -1;  ///< of that pass; -1 unknown
  std::optional<double> risk_percent;                  ///< of that pass, or the final risk
  std::optional<double> last_progress_age_s;           ///< age of the newest committed progress file
  std::string last_progress_utc;                       ///< its time, ISO-8601 UTC
  std::optional<double> eta_s;   ///< remaining time (an upper bound: images keep stopping); 0 when done
  /// Shard-major runs (--schedule shard, the default of the image and fixed
  /// rules) have no run-wide pass while they run: checkpoints/progress.json
  /// gives the shards final so far and the images done (-1: not such a run).
  long long shards_final = -1, shards = -1, images_done = -1;
  bool eta_is_estimate = false;  ///< eta_s is a rate estimate (shard-major), not an upper bound
};

struct StatusOptions {
  /// A run without a visible lock counts as running while its newest checkpoint
  /// is younger than this (seconds).
  double stale_seconds = 600;
};

/// The status of many runs, with the summary counts.
struct StatusReport {
  std::filesystem::path dir;
  bool sweep = false;
  std::vector<RunProgress> runs;
  int count(RunState state) const;
  /// Runs not done, as "--index" values (when a plan was given) or names.
  std::vector<int> left_indices() const;
  std::vector<std::string> left_names() const;
};

/// The status of one run directory (a missing directory is pending).
RunProgress run_progress(const std::filesystem::path& dir, const StatusOptions& options = {});

/// True when `dir` looks like a run directory (provenance.json, checkpoints/,
/// complete.json or error.txt in it).
bool is_run_dir(const std::filesystem::path& dir);

/// A run directory, or a sweep directory: with `plan` (the sweep's entry names in
/// --index order) one row per entry, else one row per run directory inside `dir`
/// (sorted by name). Throws DataError when `dir` is neither.
StatusReport collect_status(const std::filesystem::path& dir, const std::vector<std::string>& plan,
                            const StatusOptions& options = {});

/// Human-readable table plus a summary line (and, for a sweep, the --index values left).
std::string status_text(const StatusReport& report);

/// The same as JSON: {"format":"edi-anon-status","version":1,...}.
std::string status_json(const StatusReport& report);

}  // namespace edi::report
