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
/// (e.g. `edi-blur_k=9_q=95`), used as run directory names.
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace edi::dist {

struct SweepEntry {
  std::string name;                                         ///< run directory name
  std::vector<std::pair<std::string, std::string>> options;  ///< run options, [run] then the grid's
};

struct SweepPlan {
  std::map<std::string, std::string> settings;  ///< the [sweep] section
  std::vector<SweepEntry> entries;
};

/// Read and expand a sweep file; ConfigError names the file, line and key.
SweepPlan read_sweep(const std::filesystem::path& path);

/// Options as command-line arguments ("--key=value").
std::vector<std::string> entry_arguments(const SweepEntry& entry);

}  // namespace edi::dist
