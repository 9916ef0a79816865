#include "edi/cli/cli.hpp"

#include <c10/util/Exception.h>
#include <opencv2/core.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>

#include "commands.hpp"
#include "edi/core/context.hpp"
#include "edi/core/error.hpp"
#include "edi/core/threads.hpp"
#include "edi/version.hpp"

namespace edi::cli {

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const Args&);
};

// The subcommands, in pipeline order.
const Command kCommands[] = {
    {"synth", "generate a synthetic face data set (MTF layout)", cmd_synth},
    {"manifest", "scan, check, hash and split a data set into RUNDIR/manifest.csv", cmd_manifest},
    {"train", "train a native classifier (small-cnn, resnet18) with early stopping and resume", cmd_train},
    {"inspect", "describe a model and time its forward and input-gradient passes", cmd_inspect},
    {"run", "anonymize a data set (EDI or a conventional baseline) into a run directory", cmd_run},
    {"sweep", "run many configurations from one sweep file (cartesian lists), evaluate and aggregate them", cmd_sweep},
    {"bench", "measure image-passes/s, its time split and the pure model rate per batch size", cmd_bench},
    {"evaluate", "privacy, utility and quality of a run with bootstrap intervals -> RUNDIR/metrics.json", cmd_evaluate},
    {"aggregate", "one table over many runs (CSV, Markdown, LaTeX, JSON) plus the matched-privacy table", cmd_aggregate},
    {"export", "anonymized data set as ImageFolder trees per attribute, opaque names", cmd_export},
    {"status", "where a run or a sweep stands (done, failed, running, interrupted, pending), safe while it runs", cmd_status},
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "edi-anon %s (%s): explainability-driven iterative face anonymization\n\n", version(), git_describe());
  std::fprintf(out, "Usage: edi-anon <command> [options]   (edi-anon <command> --help for its options)\n\nCommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\nExit codes: 0 ok, 1 internal error, 2 bad option or config, 3 bad data, 4 I/O error, 5 bad model.\n");
}

}  // namespace

int run_cli(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  if (name == "--version" || name == "version") {
    std::printf("edi-anon %s (%s)\nbuilt with %s\n", version(), git_describe(), build_libraries());
    return 0;
  }
  tune_allocator();
  const Args args(argv + 2, argv + argc);
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    set_command_name(std::string("edi-anon ") + c.name);  // the prefix of library messages
    try {
      return c.run(args);
    } catch (const Error& e) {
      std::fprintf(stderr, "edi-anon %s: error: %s\n", c.name, e.what());
      return e.exit_code();
    } catch (const c10::Error& e) {
      std::fprintf(stderr, "edi-anon %s: error: LibTorch: %s\n", c.name, e.what_without_backtrace());
      return 1;
    } catch (const cv::Exception& e) {
      std::fprintf(stderr, "edi-anon %s: error: OpenCV: %s\n", c.name, e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "edi-anon %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "edi-anon: error: unknown command '%s' (see edi-anon --help)\n", name.c_str());
  return 2;
}

}  // namespace edi::cli
