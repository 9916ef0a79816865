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
  Timing split;            ///< engine time split
  double wall = 0;         ///< engine seconds
};

/// Images/s of forward + backward to the input (the explain step's model work)
/// at batch `batch`, median of `reps` timed repetitions after one warm-up.
double model_rate(models::Classifier& model, const at::Tensor& images, const at::Tensor& labels, int batch, int reps = 3);

/// The fastest of `candidates` by model_rate on `images` (cut to what is there).
int choose_batch(models::Classifier& model, const at::Tensor& images, const at::Tensor& labels,
                 const std::vector<int>& candidates = {8, 16, 32});

/// Engine throughput in fixed-pass mode over one shard of `images`; the pure
/// rate is the first steering model's.
BenchRow bench_engine(const EngineSpec& spec, const SteeringModels& models, const std::vector<std::string>& ids,
                      const at::Tensor& images, const at::Tensor& labels, int batch, int passes);
BenchRow bench_engine(const EngineSpec& spec, models::Classifier& model, const std::vector<std::string>& ids,
                      const at::Tensor& images, const at::Tensor& labels, int batch, int passes);

}  // namespace edi::engine
