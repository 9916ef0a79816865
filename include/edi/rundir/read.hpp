#pragma once
/// \file Readers of a finished run directory for metrics and report: the
/// JSON files with their fallbacks (summary.json, then provenance.json, then
/// the options) and outcomes.csv. Schema: docs/run-directory.md.
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace edi::rundir {

/// A JSON file of the run directory, or `fallback` when it is missing or not valid JSON.
nlohmann::json read_json_or(const std::filesystem::path& path, nlohmann::json fallback);

/// What summary.json and provenance.json say about a run, each value from the
/// first file that has it (summary.json, provenance.json, the options).
struct RunDescription {
  nlohmann::json options;  ///< effective options (summary "options", else provenance "config")
  std::string method;      ///< "edi" when no file says
  std::string op;          ///< "none" for the control, "?" when no file says
  std::string model_ref, model_sha;
  int passes_run = 0;       ///< summary "passes_run", else the last pass of "passes"
  double run_seconds = 0;   ///< summary timing.seconds
};
RunDescription describe_run(const nlohmann::json& summary, const nlohmann::json& provenance);

/// One row of outcomes.csv as the readers use it (columns in docs/run-directory.md).
struct OutcomeRow {
  std::string id;
  std::string status = "?";
  int stop_pass = -1;
  int final_true_rank = -1;
  bool identified = false;
  std::optional<double> changed_share;  ///< absent when the column or the cell is empty
};

/// outcomes.csv of a run or a snapshot. Throws DataError "FILE: no column
/// 'X'" when `id` or a `required` column is missing, "FILE: image ID: column
/// X: 'v' is not a number" for a bad number.
std::vector<OutcomeRow> read_outcomes(const std::filesystem::path& path, std::initializer_list<const char*> required = {});

}  // namespace edi::rundir
