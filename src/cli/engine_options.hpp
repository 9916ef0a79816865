#pragma once
/// \file The options of `run`, `bench` and `sweep` that describe the engine,
/// declared once and turned into a validated engine::RunConfig.
#include "edi/engine/runner.hpp"
#include "options.hpp"

namespace edi::cli {

/// Declare --data, --model, --method, --operator and every engine option.
void add_run_options(Options& opt, bool for_bench = false);
/// Build and validate the configuration (ConfigError names the option).
engine::RunConfig run_config_from(const Options& opt, bool for_bench = false);

}  // namespace edi::cli
