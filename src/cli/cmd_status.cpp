// `edi-anon status`: where a run or a sweep stands, from committed files only.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.hpp"
#include "edi/core/error.hpp"
#include "edi/cluster/sweep.hpp"
#include "edi/report/status.hpp"
#include "options.hpp"

namespace edi::cli {

namespace fs = std::filesystem;

int cmd_status(const Args& args) {
  Options opt("status", "DIR [--config SWEEP.ini] [--json]",
              "Where a run or a sweep stands: per run its state (done = complete.json, failed with the first line\n"
              "of error.txt, running = its lock is held or a checkpoint is fresh, interrupted = resumable,\n"
              "pending), pass, active images, risk, last progress and ETA; then a summary line and, for a sweep,\n"
              "the --index values left. Reads committed files only: safe while the runs go on.");
  opt.config_is_input()
      .add("dir", "", "run directory or sweep directory (default with --config: its [sweep] out)")
      .add("config", "", "sweep file: one row per plan entry in --index order, also those not started yet")
      .add(row("stale", "600",
               "seconds: a run whose lock is not visible on this host (another node) counts as running while its newest "
               "checkpoint is younger than this",
               number(0, 1e6)))
      .flag("json", "print JSON ({\"format\":\"edi-anon-status\",...}) instead of the table");
  // DIR is positional: the one argument that is neither an option nor an option's value.
  Args a = args;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string& s = a[i];
    if (s == "--config" || s == "--stale" || s == "--dir") ++i;
    else if (!s.empty() && s[0] != '-') a[i] = "--dir=" + s;
  }
  if (!opt.parse(a)) return 0;
  report::StatusOptions so;
  so.stale_seconds = opt.number("stale");
  std::vector<std::string> plan;
  fs::path dir;
  if (opt.has("config")) {
    const cluster::SweepPlan p = cluster::read_sweep(opt.existing_file("config"));
    for (const auto& e : p.entries) plan.push_back(e.name);
    if (p.settings.count("out")) dir = p.settings.at("out");
  }
  if (opt.has("dir")) dir = opt.text("dir");
  if (dir.empty()) throw ConfigError("a run or sweep directory is required: edi-anon status DIR (or --config SWEEP.ini with [sweep] out)");
  if (plan.empty() && !fs::is_directory(dir))
    throw ConfigError("--dir " + dir.string() + ": expected an existing run or sweep directory");
  const report::StatusReport rep = report::collect_status(dir, plan, so);
  const std::string text = opt.flag_set("json") ? report::status_json(rep) : report::status_text(rep);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace edi::cli
