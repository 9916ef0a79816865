// `edi-anon sweep`: many runs from one sweep file, each in its own run
// directory, then (rank 0) metrics per run and one aggregated table.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/dist/mpi.hpp"
#include "edi/dist/runner.hpp"
#include "edi/dist/signals.hpp"
#include "edi/dist/sweep.hpp"
#include "edi/metrics/evaluate.hpp"
#include "edi/report/aggregate.hpp"
#include "edi/core/threads.hpp"
#include "engine_options.hpp"

namespace edi::cli {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> bar_list(const std::string& v) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= v.size()) {
    const auto bar = v.find('|', start);
    std::string item = v.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return out;
}

/// Settings of the [sweep] section, validated.
struct SweepSettings {
  bool evaluate = true, aggregate = true;
  metrics::EvalConfig eval;
  std::string match_task;
};

SweepSettings sweep_settings(const dist::SweepPlan& plan, const fs::path& file) {
  SweepSettings s;
  for (const auto& [k, v] : plan.settings) {
    const std::string where = file.string() + ": [sweep] " + k + " = " + v;
    if (k == "out") continue;
    if (k == "evaluate" || k == "aggregate") {
      if (v != "true" && v != "false") throw ConfigError(where + ": expected true or false");
      (k == "evaluate" ? s.evaluate : s.aggregate) = v == "true";
    } else if (k == "attackers") {
      s.eval.attackers = v == "none" ? std::vector<std::string>{} : bar_list(v);
    } else if (k == "utility") {
      if (v != "none")
        for (const auto& item : bar_list(v)) s.eval.utility.push_back(metrics::parse_utility_spec(item));
    } else if (k == "bootstrap") {
      s.eval.bootstrap.resamples = std::stoi(v);
      if (s.eval.bootstrap.resamples < 0 || s.eval.bootstrap.resamples > 100000) throw ConfigError(where + ": expected an integer in [0, 100000]");
    } else if (k == "adaptive-epochs") {
      s.eval.adaptive_epochs = std::stoi(v);
      if (s.eval.adaptive_epochs < 1 || s.eval.adaptive_epochs > 1000) throw ConfigError(where + ": expected an integer in [1, 1000]");
    } else if (k == "match-task") {
      s.match_task = v;
    } else {
      throw ConfigError(where + ": unknown key (expected out, evaluate, aggregate, attackers, utility, bootstrap, adaptive-epochs, match-task)");
    }
  }
  return s;
}

}  // namespace

int cmd_sweep(const Args& args) {
  Options opt("sweep", "--config SWEEP.ini --out DIR [--list] [--index I] [options]",
              "Run every entry of a sweep file ([run] shared options, [grid.NAME] families whose '|'-separated\n"
              "lists are expanded as a cartesian product), each into DIR/<entry name>, under one process or\n"
              "mpirun/srun. Finished runs are skipped, interrupted ones resumed. Then (unless --index) each\n"
              "run is evaluated and DIR/aggregate/aggregate.{csv,md,tex,json} is written.");
  opt.config_is_input()
      .required("config", "sweep file (INI: [sweep], [run], [grid.NAME] sections)")
      .add("out", "", "base directory of the run directories (default: [sweep] out)")
      .flag("list", "print the plan (index, name, options) and exit")
      .add("index", "", "run only entry I of the plan (for job arrays; no aggregation)")
      .flag("no-evaluate", "do not compute metrics after each run")
      .flag("no-aggregate", "do not aggregate at the end")
      .flag("verbose", "per-rank progress lines")
      .add("threads", std::to_string(default_thread_count()), "LibTorch and OpenCV threads per rank");
  if (!opt.parse(args)) return 0;
  const fs::path file = opt.existing_file("config");
  dist::install_stop_handlers();  // before anything slow: a signal during start-up is honoured too
  const dist::SweepPlan plan = dist::read_sweep(file);
  SweepSettings settings = sweep_settings(plan, file);
  fs::path out;
  if (opt.has("out")) out = opt.output_path("out");
  else if (plan.settings.count("out")) out = plan.settings.at("out");
  else throw ConfigError("--out is required (or set out in the [sweep] section of " + file.string() + ")");
  if (opt.flag_set("no-evaluate")) settings.evaluate = false;
  if (opt.flag_set("no-aggregate")) settings.aggregate = false;
  long long only = -1;
  if (opt.has("index")) only = opt.integer("index", 0, static_cast<long long>(plan.entries.size()) - 1);

  // Validate every entry before any work: a bad value names the entry.
  std::vector<engine::RunConfig> configs;
  for (const auto& e : plan.entries) {
    Options ro("run", "", "");
    add_run_options(ro);
    std::vector<std::string> a = dist::entry_arguments(e);
    a.push_back("--out=" + (out / e.name).string());
    a.push_back("--threads=" + opt.text("threads"));
    if (opt.flag_set("verbose")) a.push_back("--verbose");
    try {
      ro.parse(a);
      configs.push_back(run_config_from(ro));
    } catch (const ConfigError& err) {
      throw ConfigError(file.string() + ": run '" + e.name + "': " + err.what());
    }
  }
  if (opt.flag_set("list")) {
    for (std::size_t i = 0; i < plan.entries.size(); ++i) {
      std::printf("%3zu  %s\n    ", i, plan.entries[i].name.c_str());
      for (const auto& a : dist::entry_arguments(plan.entries[i])) std::printf(" %s", a.c_str());
      std::printf("\n");
    }
    return 0;
  }
  const int threads = opt.apply_threads();
  dist::Mpi mpi(nullptr, nullptr);
  if (mpi.root()) {
    create_private_dir(out);
    std::printf("sweep: %zu run(s) from %s -> %s, %d rank(s) x %d thread(s)\n", plan.entries.size(), file.c_str(), out.c_str(),
                mpi.size(), threads);
  }
  int failures = 0;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    if (only >= 0 && static_cast<long long>(i) != only) continue;
    const engine::RunConfig& c = configs[i];
    const std::string& name = plan.entries[i].name;
    if (mpi.root()) {
      std::printf("\n[%zu/%zu] %s\n", i + 1, configs.size(), name.c_str());
      std::fflush(stdout);
    }
    dist::DistRunOutcome result;
    try {
      result = dist::run_distributed(mpi, c, [&](const engine::PassReport& r, double eta, const std::vector<std::string>& per_rank) {
        std::printf("  pass %3d  active %6lld  risk %6.2f%%  %7.1f image-passes/s  ETA <= %.0f s\n", r.pass,
                    static_cast<long long>(r.active), r.risk_percent, r.image_passes_per_s, eta);
        for (const auto& line : per_rank) std::printf("            %s\n", line.c_str());
        std::fflush(stdout);
      });
    } catch (const dist::RemoteError& e) {
      // Rank 0 refused this run before any work (bad data, model, resume mismatch).
      ++failures;
      if (mpi.root()) {
        std::fprintf(stderr, "edi-anon sweep: run '%s' failed: %s\n", name.c_str(), e.what());
        create_private_dir(c.out);
        write_file_atomic(c.out / "error.txt", std::string(e.what()) + "\n");
      }
      continue;
    } catch (const std::exception& e) {
      // A failure on one rank mid-run: the others wait in a collective.
      if (mpi.size() == 1) throw;
      std::fprintf(stderr, "edi-anon sweep: run '%s': error on rank %d: %s\n", name.c_str(), mpi.rank(), e.what());
      mpi.abort(1);
    }
    if (result.interrupted) {
      if (mpi.root())
        std::printf("'%s': %s (exit %d)\n", name.c_str(), dist::describe_interruption(result).c_str(),
                    dist::kExitCheckpointed);
      return dist::kExitCheckpointed;
    }
    if (mpi.root()) {
      std::printf("  done: final risk %.2f%% after %d pass(es), %lld images in %.1f s\n", result.summary.final_risk_percent,
                  result.summary.passes_run, static_cast<long long>(result.summary.images), result.summary.seconds);
      if (settings.evaluate) {
        try {
          const metrics::MetricsReport m = metrics::evaluate_run(c.out, settings.eval);
          metrics::write_metrics_json(c.out / "metrics.json", m);
          std::printf("  metrics: steering top-1 %.1f%%", m.steering_top1.value);
          for (const auto& [a, iv] : m.attacker_top1) std::printf(", %s %.1f%%", a.c_str(), iv.value);
          std::printf(" (random guess %.1f%%)\n", m.random_guess_percent);
        } catch (const Error& e) {
          ++failures;
          std::fprintf(stderr, "edi-anon sweep: evaluating '%s' failed: %s\n", name.c_str(), e.what());
          write_file_atomic(c.out / "error.txt", std::string("evaluation: ") + e.what() + "\n");
        }
      }
      std::fflush(stdout);
    }
  }
  if (mpi.root() && only < 0 && settings.aggregate) {
    report::AggregateConfig ac;
    for (const auto& e : plan.entries) ac.runs.push_back(out / e.name);
    ac.out = out / "aggregate";
    ac.eval = settings.eval;
    ac.match_task = settings.match_task;
    const report::AggregateResult r = report::aggregate_runs(ac);
    std::printf("\n%s\n", r.markdown.c_str());
    std::printf("aggregate: ");
    for (const auto& f : r.files) std::printf("%s ", f.c_str());
    std::printf("\n");
  }
  return failures ? 1 : 0;
}

}  // namespace edi::cli
