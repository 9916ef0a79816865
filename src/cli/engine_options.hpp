#pragma once
/// \file The options of `run`, `bench` and `sweep` entries that describe the
/// engine: one row per option (engine_options.cpp, which says how to add one),
/// turned into a validated engine::RunConfig.
#include <vector>

#include "edi/engine/run_io.hpp"
#include "options.hpp"

namespace edi::cli {

/// Declare --data, --model, --method, --operator and every engine option.
void add_run_options(Options& opt, bool for_bench = false);
/// Build and validate the configuration (ConfigError names the option); its
/// `options` are the result options, canonical (Options::hashed).
/// `check_paths` = false skips the existence checks of --data and --labels
/// (a sweep's `--list` shows its plan before the data exists).
engine::RunConfig run_config_from(const Options& opt, bool for_bench = false, bool check_paths = true);
/// bench's --batch: comma-separated integers in [1, 4096].
std::vector<int> bench_batches(const Options& opt);

}  // namespace edi::cli
