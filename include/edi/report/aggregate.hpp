#pragma once
/// \file `edi-anon aggregate`: one table over many run directories (a sweep,
/// a job array) in CSV, Markdown, LaTeX and JSON, each file opening with its
/// context (date, host, code version, data manifest hashes; for the CSV in
/// aggregate.meta.json), plus two matched-privacy tables (pairs fixed in
/// advance by operator family and target, see docs/metrics-schema.md).
/// Control runs come first; snapshots are rows <run>@<T>. Runs that are
/// missing, failed, unfinished or not evaluated are listed, never dropped.
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
  /// Attacker of the second matched table: "steering" = for each baseline the
  /// independent attacker with the highest heldout top-1 on it; or an attacker
  /// name ("lbph", ...) for every baseline. The first table always matches on
  /// the steering model's in_loop top-1.
  std::string match_risk = "steering";
  /// Utility task compared (empty: the first labelled classification task, else the first classification task).
  std::string match_task;
  metrics::BootstrapSpec bootstrap;         ///< for the paired utility differences
  /// Columns of the runs table in aggregate.md and aggregate.tex: "compact" (fits a one-column page), "all", or a
  /// comma list of privacy, utility, quality (wide sets: a table*, turned to landscape when wider than the line).
  /// aggregate.csv and aggregate.json always hold every column.
  std::string columns = "compact";
  /// Also write report.html (analysis/report.py run by python3; see find_html_reporter).
  bool html = false;
};

/// One run's state in the aggregate.
struct RunStatus {
  std::filesystem::path dir;
  std::string state;   ///< "ok", "failed", "missing", "not-finished" (no complete.json), "not-evaluated"
  std::string reason;  ///< why, for anything but "ok"
};

/// What was written.
struct AggregateResult {
  std::vector<RunStatus> runs;
  std::vector<RunStatus> snapshots;          ///< RUNDIR/snapshots/<T>/ of the given runs
  std::vector<std::filesystem::path> files;  ///< aggregate.{csv,meta.json,md,tex,json}, matched.csv
  std::string markdown;                      ///< aggregate.md text
};

/// Aggregate; throws ConfigError for an empty run list or a bad match setting,
/// IoError when the output cannot be written. Per-run problems never throw.
AggregateResult aggregate_runs(const AggregateConfig& config, const std::function<void(const std::string&)>& log = {});

/// How `aggregate --html` writes report.html: the python3 to run and analysis/report.py.
struct HtmlReporter {
  std::string python;               ///< $EDI_PYTHON, else python3 on PATH, else /usr/bin/python3 (the first with the modules)
  std::filesystem::path script;     ///< report.py
};
/// Find report.py ($EDI_ANALYSIS_DIR; PREFIX/share/edi-anon/analysis next to an installed binary; the
/// source tree this binary was built from) and check that python3 imports pandas and matplotlib.
/// Throws ConfigError with one line naming what is missing.
HtmlReporter find_html_reporter();
/// Run report.py on OUT/aggregate.json, writing OUT/report.html; returns its path. IoError with report.py's
/// last line when it fails.
std::filesystem::path write_html_report(const HtmlReporter& reporter, const std::filesystem::path& out,
                                        const std::function<void(const std::string&)>& log = {});

/// Classify a run (or snapshot) directory: "failed" (an error marker:
/// error.txt, error.json or FAILED; or an invalid metrics.json), "missing" (no
/// such directory), "not-finished" (a run without complete.json), "ok"
/// (metrics.json of schema version 2, newer than complete.json /
/// snapshot.json), else "not-evaluated".
RunStatus classify_run(const std::filesystem::path& dir);

}  // namespace edi::report
