#pragma once
/// \file The `edi-anon` command line: subcommands, each parsing and validating
/// its options (flags, then `--config FILE.ini`; flags win) before any work.
#include <string>
#include <vector>

namespace edi::cli {

/// Run the program; returns the process exit code. Errors are printed as one
/// line `edi-anon: error: ...` on stderr.
int run_cli(int argc, char** argv);

}  // namespace edi::cli
