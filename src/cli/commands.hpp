#pragma once
/// \file Subcommand entry points (internal to the cli stage). Each parses and
/// validates its options, then calls library code; returns the exit code.
#include <string>
#include <vector>

namespace edi::cli {

using Args = std::vector<std::string>;

int cmd_synth(const Args& args);
int cmd_manifest(const Args& args);
int cmd_train(const Args& args);
int cmd_inspect(const Args& args);
int cmd_run(const Args& args);
int cmd_bench(const Args& args);
int cmd_sweep(const Args& args);
int cmd_evaluate(const Args& args);
int cmd_aggregate(const Args& args);
int cmd_export(const Args& args);
int cmd_status(const Args& args);

}  // namespace edi::cli
