#pragma once
/// \file Progress with an ETA for long steps (evaluation, aggregation, training),
/// written to stderr by the first rank only.
///
/// On a terminal it is one line rewritten in place (`\r`); otherwise (a log
/// file, a SLURM job) one line every `every_seconds` seconds, and a closing
/// line when a step that printed anything finishes. The format of a line:
///
///     progress: LABEL: DONE/TOTAL UNIT (PCT%), elapsed 1m05s, ETA 2m10s
///
/// `--quiet` (settings.enabled = false) prints nothing. Ranks other than 0
/// (OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK or SLURM_PROCID set and not 0)
/// print nothing either.
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <mutex>
#include <string>

namespace edi {

/// Process-wide progress settings (the CLI sets them from --quiet and --progress-every).
struct ProgressSettings {
  bool enabled = true;
  double every_seconds = 10.0;  ///< not a terminal: seconds between lines (0 = every update)
  int terminal = -1;            ///< 1 = rewrite one line, 0 = log lines, -1 = isatty(stderr)
  std::FILE* out = nullptr;     ///< nullptr = stderr
};
void set_progress_settings(const ProgressSettings& settings);
ProgressSettings progress_settings();

/// "12 s", "3m05s", "1h02m": the duration format of progress lines.
std::string format_duration(double seconds);

/// One long step. Thread-safe: add() may be called from worker threads.
class Progress {
 public:
  /// `total` = 0: unknown (no percentage, no ETA).
  Progress(std::string label, std::size_t total, std::string unit = "");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(std::size_t n = 1);       ///< n more units done
  void set(std::size_t done);        ///< units done so far
  void set_total(std::size_t total);
  void finish();                     ///< the step is over: a closing line if a line was printed (idempotent)

  /// The line as it would be printed now (for tests and callers that log it themselves).
  std::string line() const;

 private:
  using Clock = std::chrono::steady_clock;
  void maybe_print(bool force);
  void end(bool completed);  ///< completed = false: an exception is unwinding (no closing line)
  std::string line_locked(Clock::time_point now) const;

  const std::string label_, unit_;
  std::size_t total_, done_ = 0;
  const Clock::time_point start_;
  Clock::time_point last_print_;
  ProgressSettings settings_;
  bool active_, terminal_, printed_ = false, finished_ = false;
  mutable std::mutex mutex_;
};

}  // namespace edi
