#pragma once
/// \file The per-run results file (`results.h5`) and `summary.json`, written
/// by rank 0 through the run directory's sinks (edi/rundir; schema in
/// docs/run-directory.md).
#include <filesystem>
#include <string>
#include <vector>

#include "edi/data/manifest.hpp"
#include "edi/engine/run_io.hpp"

namespace edi::cluster {

struct ResultsInfo {
  engine::RunConfig config;
  engine::EngineSpec spec;      ///< with the batch size actually used
  std::string provenance_json;  ///< RUNDIR/provenance.json
  int ranks = 1;
  /// Images kept in /examples (`--examples N`: the first N selected; none by
  /// default). Their pass-0 masks and attributions are the ones the run's
  /// ExampleCapture took from the engine (edi/rundir/examples.hpp).
  std::vector<std::string> example_ids;
};

/// `model`: only its input size (the examples' originals are decoded at it); it is not run.
void write_results(const std::filesystem::path& path, const ResultsInfo& info, const data::Manifest& manifest,
                   const std::vector<const engine::Shard*>& shards, const engine::RunSummary& summary,
                   models::Classifier& model);

void write_summary_json(const std::filesystem::path& path, const ResultsInfo& info, const data::Manifest& manifest,
                        const engine::RunSummary& summary);

}  // namespace edi::cluster
