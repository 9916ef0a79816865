#pragma once
/// \file The per-run results file (`results.h5`, schema in
/// docs/results-schema.md) and `summary.json`, written by rank 0.
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
  int examples = 8;             ///< images whose explanation is kept
  /// The run's steering models (ensemble, judge): the examples' pass-0
  /// attribution is the steering's, not the first model's alone. Null: `model`.
  const engine::SteeringModels* steering = nullptr;
};

void write_results(const std::filesystem::path& path, const ResultsInfo& info, const data::Manifest& manifest,
                   const std::vector<const engine::Shard*>& shards, const engine::RunSummary& summary,
                   models::Classifier& model);

void write_summary_json(const std::filesystem::path& path, const ResultsInfo& info, const data::Manifest& manifest,
                        const engine::RunSummary& summary);

}  // namespace edi::cluster
