#pragma once
/// \file `edi-anon aggregate`: one table over many run directories (a sweep,
/// a job array) in CSV, Markdown, LaTeX and JSON, each file opening with its
/// context (date, host, code version, data manifest hashes), plus the
/// matched-privacy table (each conventional baseline against the EDI run of
/// the same operator with equal or lower risk and the highest utility).
/// Runs that are missing, failed or not evaluated are listed, never dropped.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "edi/metrics/evaluate.hpp"

namespace edi::report {

/// Settings of one aggregation.
struct AggregateConfig {
  std::vector<std::filesystem::path> runs;  ///< run directories (order kept)
  std::filesystem::path out;                ///< output directory (created)
  /// Evaluate finished runs that have no metrics.json yet (with `eval`).
  bool evaluate_missing = false;
  metrics::EvalConfig eval;
  /// Risk used to match EDI runs to baselines: "steering" (top-1 of the
  /// steering model, the authors' protocol) or an attacker name ("lbph", ...).
  std::string match_risk = "steering";
  /// Utility task to maximise and compare (empty: the first task with labels).
  std::string match_task;
  metrics::BootstrapSpec bootstrap;         ///< for the paired utility differences
};

/// One run's state in the aggregate.
struct RunStatus {
  std::filesystem::path dir;
  std::string state;   ///< "ok", "failed", "missing", "not-evaluated"
  std::string reason;  ///< why, for anything but "ok"
};

/// What was written.
struct AggregateResult {
  std::vector<RunStatus> runs;
  std::vector<std::filesystem::path> files;  ///< aggregate.{csv,md,tex,json}, matched.{csv,md}
  std::string markdown;                      ///< aggregate.md text
};

/// Aggregate; throws ConfigError for an empty run list or a bad match setting,
/// IoError when the output cannot be written. Per-run problems never throw.
AggregateResult aggregate_runs(const AggregateConfig& config, const std::function<void(const std::string&)>& log = {});

/// Classify a run directory: "ok" (metrics.json readable), "failed" (an
/// error marker: error.txt, error.json or FAILED), "missing" (no such
/// directory or no summary.json), "not-evaluated" (finished, no metrics.json).
RunStatus classify_run(const std::filesystem::path& dir);

}  // namespace edi::report
