#pragma once
/// \file Sweep files: many runs (method × operator × parameters) in one INI.
///
///   [sweep]            settings of the sweep itself (evaluate, attackers, utility, ...)
///   [run]              options shared by every run (any `edi-anon run` option)
///   [grid.NAME]        one family of runs: each key holds one value or a list
///                      separated by '|'; the family is their cartesian product
///
/// The plan is the families in file order, each expanded with the last key
/// varying fastest. Entry names are NAME plus the varying key=value pairs
/// (e.g. `edi-blur_k=9_q=95`), used as run directory names; NAME is letters,
/// digits and `. _ = -`, not starting with '.' or '-' (no path can escape).
///
/// The control (`control`: the [run] options with method = none) comes first
/// unless `[sweep] control = false`. An EDI entry with `target-risk = match`
/// takes its targets from the measured steering risks of the conventional
/// entries with the same operator (for `mask`: also eyes, mouth, eyes-mouth),
/// its *baselines*; when any entry matches, the control and every
/// conventional entry move before the other entries (stable order), so that
/// the baselines run first, also as job-array indices.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace edi::cluster {

struct SweepEntry {
  std::string name;                                         ///< run directory name
  std::vector<std::pair<std::string, std::string>> options;  ///< run options, [run] then the grid's
  /// target-risk = match: the names of the baseline entries (plan order).
  std::vector<std::string> baselines;
  bool matched() const { return !baselines.empty(); }
  /// The value of option `key`, or `fallback` when it is not set.
  std::string option(const std::string& key, const std::string& fallback = "") const;
};

struct SweepPlan {
  std::map<std::string, std::string> settings;  ///< the [sweep] section
  std::vector<SweepEntry> entries;
};

/// Why a [run] or [grid.NAME] key may not be set in a sweep file ("" = it
/// may); the cli derives it from its option rows (e.g. out, matched-to).
using KeyCheck = std::function<std::string(const std::string& key)>;

/// Read and expand a sweep file; ConfigError names the file, line and key.
SweepPlan read_sweep(const std::filesystem::path& path, const KeyCheck& check = {});

/// A '|'-separated list, each item trimmed (empty items kept): the one splitter of sweep lists.
std::vector<std::string> split_bars(const std::string& list);

/// Index of the entry named `name` in the plan, or -1.
long long entry_index(const SweepPlan& plan, const std::string& name);

/// A run directory is finished iff it holds complete.json (written last by the runner).
bool run_finished(const std::filesystem::path& rundir);

/// The measured steering risk (percent) of a finished run: metrics.json's
/// privacy.steering.top1.in_loop.value (version 2), else summary.json's
/// final_risk_percent. ConfigError names the file when neither can be read.
double measured_risk(const std::filesystem::path& rundir);

/// A baseline's risk as a target: rounded *up* to 4 decimals, so that an EDI
/// run with the baseline's identified count meets it (27.27272727 -> 27.2728).
double match_target(double risk_percent);

/// `entry` with `target-risk = match` replaced by the targets of its baselines
/// (`risks`: baseline name -> measured risk, one per baseline) and
/// `matched-to = NAME:TARGET,...` recorded in its options.
SweepEntry resolve_match(const SweepEntry& entry, const std::map<std::string, double>& risks);

}  // namespace edi::cluster
