#pragma once
/// \file Throughput measurements: the pure model forward+backward rate and the
/// engine's image-passes/s with its time split, at several batch sizes.
#include <ATen/core/Tensor.h>

#include <vector>

#include "edi/engine/engine.hpp"

namespace edi::engine {

struct BenchRow {
  int batch = 0;
  double model_rate = 0;   ///< images/s of forward + input gradient alone (the bound)
  double engine_rate = 0;  ///< image-passes/s of the engine (fixed passes)
  double ratio_lo = 0;     ///< lowest engine/pure rate ratio of one pass (the spread: noise)
  double ratio_hi = 0;     ///< highest
  Timing split;            ///< engine time split
  double wall = 0;         ///< engine seconds
};

/// Images/s of forward + backward to the input (the explain step's model work)
/// at batch `batch`, median of `reps` timed repetitions after one warm-up.
double model_rate(models::Classifier& model, const at::Tensor& images, const at::Tensor& labels, int batch, int reps = 3);

/// The fastest of `candidates` by model_rate on `images` (cut to what is there).
int choose_batch(models::Classifier& model, const at::Tensor& images, const at::Tensor& labels,
                 const std::vector<int>& candidates = {8, 16, 32});

/// Engine throughput in fixed-pass mode over `images` in shards of
/// max(batch, shard_size) images. After each shard of each pass, steps (half
/// as many as the shard's batches, at least one) of the pure forward +
/// input-gradient loop of the first steering model at the
/// same batch size is timed, so that the engine and its bound are measured
/// under the same load (the machine may be shared); model_rate is that loop's
/// images/s over all its steps, and ratio_lo/hi the spread of the per-pass
/// engine/pure ratios.
BenchRow bench_engine(const EngineSpec& spec, const SteeringModels& models, const std::vector<std::string>& ids,
                      const at::Tensor& images, const at::Tensor& labels, int batch, int passes, int shard_size = 64);
BenchRow bench_engine(const EngineSpec& spec, models::Classifier& model, const std::vector<std::string>& ids,
                      const at::Tensor& images, const at::Tensor& labels, int batch, int passes, int shard_size = 64);

/// The same run (the spec's stop rule, one shard) with three engines in lock
/// step: fp32 at `batch` (the reference), fp32 at another batch size (the
/// numerical noise floor: convolutions round differently) and bf16 at `batch`.
struct PrecisionComparison {
  static constexpr int kRuns = 3;  ///< 0 fp32, 1 fp32 at noise_batch, 2 bf16
  int batch = 0, noise_batch = 0;
  struct Pass {
    int pass = 0;
    std::int64_t masks = 0;            ///< images perturbed in this pass by both the reference and the other run
    double agreement[kRuns] = {1, 0, 0};  ///< share of equal mask entries against the reference (mean over those images)
    std::int64_t identified[kRuns] = {};  ///< after this pass's evaluation
  };
  std::vector<Pass> passes;
  std::int64_t images = 0;
  double final_risk[kRuns] = {};        ///< % identified at the end
  std::int64_t stopped[kRuns] = {};     ///< images stopped by the rule
  double mean_stop_pass[kRuns] = {};    ///< over stopped images
  std::int64_t same_stop_pass[kRuns] = {};  ///< images whose outcome (status and stop pass) equals the reference's
  double wall[kRuns] = {};              ///< engine seconds
};
PrecisionComparison compare_precision(const EngineSpec& spec, const SteeringModels& models, const std::vector<std::string>& ids,
                                      const at::Tensor& images, const at::Tensor& labels, int batch);

}  // namespace edi::engine
