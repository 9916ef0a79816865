#pragma once
/// \file The evaluation options, one row each (eval_options.cpp), used by
/// `edi-anon evaluate`, `aggregate --evaluate` and a sweep's [sweep] section,
/// so that their names, defaults and bounds cannot drift apart.
#include <string>
#include <vector>

#include "edi/metrics/evaluate.hpp"
#include "options.hpp"

namespace edi::cli {

/// Declare --attacker, --utility, --steering, --bootstrap, --seed,
/// --adaptive-epochs, --batch and --device.
void add_eval_options(Options& opt);
/// The validated evaluation configuration (ConfigError names the option).
metrics::EvalConfig eval_config_from(const Options& opt);
/// A comma-separated list without empty items.
std::vector<std::string> split_list(const std::string& text);
/// Declare --quiet and --progress-every (progress lines of long steps; cmd_metrics.cpp).
void add_progress_options(Options& opt);
/// Apply them to the process-wide progress settings (edi/core/progress.hpp).
void apply_progress_options(const Options& opt);

}  // namespace edi::cli
