#pragma once
/// \file The options of `run`, `bench` and `sweep` that describe the engine,
/// declared once and turned into a validated engine::RunConfig.
#include "edi/engine/run_io.hpp"
#include "options.hpp"

namespace edi::cli {

/// Declare --data, --model, --method, --operator and every engine option.
void add_run_options(Options& opt, bool for_bench = false);
/// Build and validate the configuration (ConfigError names the option).
/// `check_paths` = false skips the existence checks of --data and --labels
/// (a sweep's `--list` shows its plan before the data exists).
engine::RunConfig run_config_from(const Options& opt, bool for_bench = false, bool check_paths = true);

}  // namespace edi::cli
