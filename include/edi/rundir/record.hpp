#pragma once
/// \file The per-image record of a run (outcome + trajectory) and its one
/// flattening into columns, which checkpoints, results.h5, outcomes.csv and
/// trajectories.csv all write (schema: docs/run-directory.md).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edi/data/manifest.hpp"
#include "edi/engine/engine.hpp"
#include "edi/rundir/sink.hpp"

namespace edi::rundir {

/// One image of a run: who it is and what happened to it.
struct RunRecord {
  std::string id;        ///< the data set's relative path
  std::string identity;  ///< identity (class) name
  int label = -1;        ///< identity index (manifest order)
  data::Split split = data::Split::kTrain;
  engine::ImageRecord record;
};

/// JSON of one record: {id, identity, label, split, status, stop_pass,
/// escalation, stalls, identified, trajectory: [{pass, true_prob, ...}]}.
void to_json(nlohmann::json& j, const RunRecord& r);
/// The inverse; throws DataError naming the key for a missing or bad value.
void from_json(const nlohmann::json& j, RunRecord& r);

/// The run's records in shard order (identity and split from the manifest).
std::vector<RunRecord> run_records(const data::Manifest& manifest, const std::vector<const engine::Shard*>& shards);

/// The records flattened into arrays: per image (outcome and the last
/// evaluation) and per trajectory point. Written once, here.
struct RecordColumns {
  std::vector<std::uint8_t> status, identified;
  std::vector<std::int32_t> stop_pass, escalation, stalls, evaluations;
  std::vector<float> final_prob, final_changed, final_psnr, final_linf;  ///< last evaluation (zeros without one)
  std::vector<std::int32_t> final_rank, final_top1;
  std::vector<std::int32_t> t_image, t_pass, t_rank, t_top1;  ///< t_image: row of the image
  std::vector<float> t_prob, t_changed, t_psnr, t_linf;
  std::size_t size() const { return status.size(); }
};
RecordColumns flatten(const std::vector<engine::ImageRecord>& records);
RecordColumns flatten(const std::vector<RunRecord>& records);

/// Empty when the columns hold `n` consistent images, else what is wrong.
std::string column_problem(const RecordColumns& c, std::size_t n);
/// Records with their trajectories from consistent columns (column_problem empty).
std::vector<engine::ImageRecord> unflatten(const RecordColumns& c);

/// Tables of the run directory, from the columns:
/// the per-image outcome columns of a checkpoint (status … stalls);
Table checkpoint_image_table(const RecordColumns& c);
/// /trajectory of results.h5 and of a checkpoint (image = row index);
Table trajectory_table(const RecordColumns& c);
/// /images of results.h5 (id, identity index, split code, status code, …);
Table results_image_table(const std::vector<RunRecord>& records, const RecordColumns& c);
/// outcomes.csv (names for identity, split and status);
Table outcomes_table(const std::vector<RunRecord>& records, const RecordColumns& c);
/// trajectories.csv (image ids in place of rows).
Table trajectories_table(const std::vector<RunRecord>& records, const RecordColumns& c);

/// outcomes.csv of `records` (also a snapshot's and its per-shard parts).
void write_outcomes(const std::filesystem::path& path, const data::Manifest& manifest, const std::vector<const engine::Shard*>& shards);
/// trajectories.csv of `records`.
void write_trajectories(const std::filesystem::path& path, const data::Manifest& manifest, const std::vector<const engine::Shard*>& shards);

}  // namespace edi::rundir
