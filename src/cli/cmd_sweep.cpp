// `edi-anon sweep`: many runs from one sweep file, each in its own run
// directory, then (rank 0) metrics per run and one aggregated table.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/core/threads.hpp"
#include "edi/cluster/mpi.hpp"
#include "edi/cluster/runner.hpp"
#include "edi/cluster/signals.hpp"
#include "edi/cluster/sweep.hpp"
#include "edi/metrics/evaluate.hpp"
#include "edi/metrics/format.hpp"
#include "edi/report/aggregate.hpp"
#include "engine_options.hpp"
#include "eval_options.hpp"

namespace edi::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

/// A '|'-separated [sweep] list as a comma list (the form of `evaluate`'s options).
std::string bars_as_commas(const std::string& v) {
  std::string out;
  for (const auto& item : cluster::split_bars(v)) out += (out.empty() ? "" : ",") + item;
  return out;
}

/// Settings of the [sweep] section, validated.
struct SweepSettings {
  bool evaluate = true, aggregate = true;
  metrics::EvalConfig eval;
  std::string match_task;
};

/// The sweep's own [sweep] keys, one row each (`out` and `control` are read by
/// the command and by read_sweep; the rows validate them and list them).
const std::vector<Bound<SweepSettings>>& sweep_rows() {
  static const std::vector<Bound<SweepSettings>> rows = {
      {row("out", "", "base directory of the run directories (--out overrides it)"), nullptr},
      {row("control", "true", "run the control 'control' (method none) first in the plan", boolean()), nullptr},
      {row("evaluate", "true", "compute metrics after each run", boolean()),
       [](SweepSettings& s, const Value& v) { s.evaluate = v.on; }},
      {row("aggregate", "true", "aggregate at the end", boolean()), [](SweepSettings& s, const Value& v) { s.aggregate = v.on; }},
      {row("match-task", "", "utility task compared in the matched tables"),
       [](SweepSettings& s, const Value& v) { s.match_task = v.text; }},
  };
  return rows;
}

/// The [sweep] keys for --help, from the rows.
std::string sweep_keys_help() {
  std::string s = "\n\n[sweep] keys: the sweep's own, then any `edi-anon evaluate` option under its own name, with the\n"
                  "same default and bounds ('attackers' is accepted for 'attacker'; lists as 'a | b'):";
  for (const auto& b : sweep_rows()) {
    const OptionRow& r = b.row;
    s += "\n  " + r.name + (r.default_value.empty() ? "" : " (=" + r.default_value + ")") + ": " + r.help +
         (r.domain.what().empty() ? "" : "; " + r.domain.what());
  }
  return s;
}

/// The [sweep] section: the sweep's own keys, then every `edi-anon evaluate`
/// option under its own name (the same rows: same defaults and bounds);
/// `attackers` is accepted for `attacker`, and lists may use '|' or ','.
SweepSettings sweep_settings(const cluster::SweepPlan& plan, const fs::path& file) {
  Options own("sweep", "", "");
  own.add(sweep_rows());
  Options ev("evaluate", "", "");
  add_eval_options(ev);
  std::vector<std::string> own_args, eval_args;
  for (const auto& [k, v] : plan.settings) {
    const std::string where = file.string() + ": [sweep] " + k + " = " + v;
    const std::string name = k == "attackers" ? "attacker" : k;
    if (const OptionRow* r = own.find(name)) {
      if (r->domain.kind == Domain::Kind::kBool && v != "true" && v != "false")
        throw ConfigError(where + ": expected " + r->domain.what());
      own_args.push_back("--" + name + "=" + v);
      continue;
    }
    if (!ev.declared(name)) {
      std::string keys;
      for (const auto& r : own.rows())
        if (r.name != "threads" && r.name != "config") keys += (keys.empty() ? "" : ", ") + r.name;
      std::string eval_keys;
      for (const auto& r : ev.rows()) eval_keys += (eval_keys.empty() ? "" : ", ") + (r.name == "attacker" ? "attacker(s)" : r.name);
      throw ConfigError(where + ": unknown key (the sweep's own: " + keys + "; or an option of 'edi-anon evaluate': " + eval_keys + ")");
    }
    if (name == "utility" && v == "none") continue;
    eval_args.push_back("--" + name + "=" + (name == "attacker" || name == "utility" ? bars_as_commas(v) : v));
  }
  SweepSettings s;
  try {
    own.parse(own_args);
    own.apply(sweep_rows(), s);
    ev.parse(eval_args);
    s.eval = eval_config_from(ev);
  } catch (const ConfigError& e) {
    throw ConfigError(file.string() + ": [sweep]: " + e.what());
  }
  return s;
}

/// A sweep entry's options as `edi-anon run` arguments (a switch: true or false).
std::vector<std::string> entry_arguments(const cluster::SweepEntry& e) {
  Options ro("run", "", "");
  add_run_options(ro);
  return ro.arguments(e.options, nullptr);
}

struct SweepContext {
  fs::path file, out;
  const Options* opt = nullptr;
  cluster::SweepPlan plan;
  SweepSettings settings;
};

/// The run configuration of one entry; `check_paths` = false for a plan shown
/// before the data exists. A matched entry not yet resolved is validated with
/// placeholder targets.
engine::RunConfig entry_config(const SweepContext& x, const cluster::SweepEntry& entry, bool check_paths) {
  cluster::SweepEntry e = entry;
  if (e.matched()) {
    std::map<std::string, double> zero;
    for (const auto& b : e.baselines) zero[b] = 0;
    e = cluster::resolve_match(e, zero);
  }
  Options ro("run", "", "");
  add_run_options(ro);
  try {
    std::vector<std::string> a = ro.arguments(e.options, nullptr);
    a.push_back("--out=" + (x.out / e.name).string());
    a.push_back("--threads=" + x.opt->text("threads"));
    if (x.opt->flag_set("verbose")) a.push_back("--verbose");
    ro.parse(a);
    return run_config_from(ro, false, check_paths);
  } catch (const ConfigError& err) {
    throw ConfigError(x.file.string() + ": run '" + e.name + "': " + err.what());
  }
}

void print_plan(const SweepContext& x) {
  std::printf("out: %s\naggregate: %s\n", x.out.c_str(), x.settings.aggregate ? "true" : "false");
  const auto& entries = x.plan.entries;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::printf("%3zu  %s\n    ", i, entries[i].name.c_str());
    for (const auto& a : entry_arguments(entries[i])) std::printf(" %s", a.c_str());
    std::printf("\n");
    if (!entries[i].matched()) continue;
    std::string after, names;
    for (const auto& b : entries[i].baselines) {
      after += (after.empty() ? "" : ",") + std::to_string(cluster::entry_index(x.plan, b));
      names += (names.empty() ? "" : ", ") + b;
    }
    std::printf("     after: %s (target-risk = match: the measured steering risks of %s)\n", after.c_str(), names.c_str());
  }
}

/// Rank 0 reads the baselines' measured risks; every rank gets the resolved
/// entry. ConfigError when a baseline has not finished.
cluster::SweepEntry resolve_entry(const cluster::Mpi& mpi, const SweepContext& x, const cluster::SweepEntry& e,
                               const std::set<std::string>& finished_here) {
  std::string text;
  if (mpi.root()) {
    try {
      std::map<std::string, double> risks;
      for (const auto& b : e.baselines) {
        const fs::path dir = x.out / b;
        if (!finished_here.count(b) && !cluster::run_finished(dir))
          throw ConfigError("run '" + e.name + "': target-risk = match: baseline '" + b + "' (entry " +
                            std::to_string(cluster::entry_index(x.plan, b)) + ") has not finished (no " + (dir / "complete.json").string() +
                            "); the baselines run first");
        risks[b] = cluster::measured_risk(dir);
      }
      const cluster::SweepEntry r = cluster::resolve_match(e, risks);
      text = "ok\n" + r.option("target-risk") + "\n" + r.option("matched-to");
    } catch (const ConfigError& err) {
      text = std::string("error\n") + err.what();
    }
  }
  text = mpi.broadcast(text);
  const auto nl = text.find('\n');
  if (text.substr(0, nl) == "error") throw ConfigError(text.substr(nl + 1));
  const auto nl2 = text.find('\n', nl + 1);
  cluster::SweepEntry r = e;
  r.baselines.clear();
  for (auto& [k, v] : r.options)
    if (k == "target-risk") v = text.substr(nl + 1, nl2 - nl - 1);
  r.options.emplace_back("matched-to", text.substr(nl2 + 1));
  return r;
}

/// Finished (complete.json) with the same configuration: nothing to rerun.
bool already_finished(const cluster::Mpi& mpi, const engine::RunConfig& c) {
  std::string verdict = "no";
  if (mpi.root() && cluster::run_finished(c.out) && fs::is_regular_file(c.out / "provenance.json")) {
    const json p = json::parse(read_file(c.out / "provenance.json"), nullptr, false);
    if (!p.is_discarded() && p.value("config_sha256", "") == sha256_hex(cluster::config_json(c))) verdict = "yes";
  }
  return mpi.broadcast(verdict) == "yes";
}

/// While a single process evaluates, a SIGTERM/SIGUSR1 ends it with exit 75
/// (the run is committed; metrics.json is written atomically or not at all).
class EvalSignalWatch {
 public:
  EvalSignalWatch(bool active, std::string name) : name_(std::move(name)) {
    if (active) thread_ = std::thread([this] { watch(); });
  }
  ~EvalSignalWatch() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void watch() {
    while (!done_) {
      if (cluster::stop_requested()) {
        std::fprintf(stderr,
                     "edi-anon sweep: signal %d during the evaluation of '%s': the run is finished and committed, "
                     "metrics.json is not written; a rerun evaluates it (exit %d)\n",
                     cluster::stop_signal(), name_.c_str(), cluster::kExitCheckpointed);
        std::fflush(stdout);
        std::fflush(stderr);
        std::_Exit(cluster::kExitCheckpointed);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  std::string name_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

std::string pct(double v) { return metrics::format_number(v, metrics::display(1)); }

/// metrics.json for a finished run (error.txt on failure), by the one process
/// that evaluates it (`watch`: a signal ends that process at once, exit 75).
/// True when written.
bool evaluate_entry(const SweepContext& x, const engine::RunConfig& c, const std::string& name, bool watch_signals,
                    const std::string& label = "  ") {
  if (cluster::stop_requested()) return false;  // the caller reports the interruption
  EvalSignalWatch watch(watch_signals, name);
  try {
    const metrics::MetricsReport m = metrics::evaluate_run(c.out, x.settings.eval);
    metrics::write_metrics_json(c.out / "metrics.json", m);
    std::string line = label + "metrics: steering top-1 " + pct(m.steering_top1.value) + "%";
    for (const auto& [a, iv] : m.attacker_top1) line += ", " + a + " " + pct(iv.value) + "%";
    line += " (random guess " + pct(m.random_guess_percent) + "%)\n";
    std::fputs(line.c_str(), stdout);  // one write: lines of several ranks do not interleave
    std::fflush(stdout);
    return true;
  } catch (const std::exception& e) {  // also a filesystem or library error: the run stays, its evaluation failed
    std::fprintf(stderr, "edi-anon sweep: evaluating '%s' failed: %s\n", name.c_str(), e.what());
    write_file_atomic(c.out / "error.txt", std::string("evaluation: ") + e.what() + "\n");
    return false;
  }
}

enum class EntryResult { kDone, kFailed, kInterrupted };

/// Rank 0: a run that failed is named on stderr and in RUNDIR/error.txt.
void record_failure(const engine::RunConfig& c, const std::string& name, const std::string& what) {
  std::fprintf(stderr, "edi-anon sweep: run '%s' failed: %s\n", name.c_str(), what.c_str());
  create_private_dir(c.out);
  write_file_atomic(c.out / "error.txt", what + "\n");
}

/// Run (or skip, when finished) one entry, then evaluate it on rank 0, or
/// (`deferred` not null: several ranks) tell rank 0's caller that it wants
/// its evaluation, which evaluate_spread() hands to one of the ranks later.
EntryResult run_entry(const cluster::Mpi& mpi, const SweepContext& x, const engine::RunConfig& c, const std::string& name,
                      bool evaluate_only, bool* deferred = nullptr) {
  const bool skip = evaluate_only || already_finished(mpi, c);
  cluster::DistRunOutcome result;
  if (skip) {
    if (mpi.root()) std::printf("  %s\n", evaluate_only ? "evaluation only" : "finished (complete.json, same options): not rerun");
  } else {
    try {
      result = cluster::run_distributed(mpi, c, [&](const engine::PassReport& r, double eta, const std::vector<std::string>& per_rank) {
        std::printf("  pass %3d  active %6lld  risk %6.2f%%  %7.1f image-passes/s  ETA <= %.0f s\n", r.pass,
                    static_cast<long long>(r.active), r.risk_percent, r.image_passes_per_s, eta);
        for (const auto& line : per_rank) std::printf("            %s\n", line.c_str());
        std::fflush(stdout);
      });
    } catch (const cluster::RemoteError& e) {
      // Rank 0 refused this run before any work (bad data, model, resume mismatch).
      if (mpi.root()) record_failure(c, name, e.what());
      return EntryResult::kFailed;
    } catch (const Error& e) {
      // One process: nothing waits in a collective; record it like a refusal and go on.
      if (mpi.size() == 1) {
        record_failure(c, name, e.what());
        return EntryResult::kFailed;
      }
      std::fprintf(stderr, "edi-anon sweep: run '%s': error on rank %d: %s\n", name.c_str(), mpi.rank(), e.what());
      mpi.abort(e.exit_code());
    } catch (const std::exception& e) {
      // A failure on one rank mid-run: the others wait in a collective.
      if (mpi.size() == 1) throw;
      std::fprintf(stderr, "edi-anon sweep: run '%s': error on rank %d: %s\n", name.c_str(), mpi.rank(), e.what());
      mpi.abort(1);
    }
    if (result.interrupted) {
      if (mpi.root())
        std::printf("'%s': %s (exit %d)\n", name.c_str(), cluster::describe_interruption(result).c_str(), cluster::kExitCheckpointed);
      return EntryResult::kInterrupted;
    }
  }
  if (!mpi.root()) return EntryResult::kDone;
  if (!skip)
    std::printf("  done: final risk %.2f%% after %d pass(es), %lld images in %.1f s\n", result.summary.final_risk_percent,
                result.summary.passes_run, static_cast<long long>(result.summary.images), result.summary.seconds);
  std::error_code ec;
  fs::remove(c.out / "error.txt", ec);  // a run that failed before and now succeeded
  const bool want_metrics = x.settings.evaluate && (evaluate_only || !skip || !fs::exists(c.out / "metrics.json"));
  if (want_metrics && deferred) {
    *deferred = true;
    std::printf("  evaluation: after the runs, by the first free rank\n");
    std::fflush(stdout);
    return EntryResult::kDone;
  }
  if (want_metrics && !evaluate_entry(x, c, name, mpi.size() == 1)) {
    if (!cluster::stop_requested()) return EntryResult::kFailed;
    std::printf("'%s': stopped by signal %d before its evaluation; a rerun evaluates it (exit %d)\n", name.c_str(),
                cluster::stop_signal(), cluster::kExitCheckpointed);
    return EntryResult::kInterrupted;
  }
  std::fflush(stdout);
  return EntryResult::kDone;
}

/// Several ranks: the runs that want metrics are evaluated after every run,
/// each by the rank that takes it from a shared counter (one rank per run:
/// 1 LibTorch thread each, as in the runs), instead of one after another on
/// rank 0 while the others wait. A signal ends the evaluating ranks at once
/// (exit 75; metrics.json is written whole or not at all: a rerun evaluates
/// what is missing); a rank between two evaluations takes no more. Returns
/// the failed evaluations over every rank, or -1 when interrupted.
int evaluate_spread(const cluster::Mpi& mpi, const SweepContext& x, const std::vector<std::pair<std::string, engine::RunConfig>>& todo) {
  if (mpi.root()) {
    std::printf("\nevaluating %zu run(s) on %d rank(s)\n", todo.size(), mpi.size());
    std::fflush(stdout);
  }
  cluster::ClaimBoard board(mpi, static_cast<int>(todo.size()));
  std::vector<std::int64_t> counts{0, 0};  // failed, interrupted
  for (int k = board.next(); k < static_cast<int>(todo.size()); k = board.next()) {
    const auto& [name, c] = todo[static_cast<std::size_t>(k)];
    if (cluster::stop_requested()) {
      counts[1] = 1;
      break;
    }
    const std::string label = "  [" + std::to_string(k + 1) + "/" + std::to_string(todo.size()) + "] " + name + " (rank " +
                              std::to_string(mpi.rank()) + "): ";
    if (!evaluate_entry(x, c, name, true, label)) ++counts[0];
  }
  mpi.sum(counts);
  if (counts[1] > 0) {
    if (mpi.root())
      std::printf("stopped by signal %d between evaluations; a rerun evaluates the runs without metrics.json (exit %d)\n",
                  cluster::stop_signal(), cluster::kExitCheckpointed);
    return -1;
  }
  return static_cast<int>(counts[0]);
}

void aggregate(const SweepContext& x) {
  report::AggregateConfig ac;
  for (const auto& e : x.plan.entries) ac.runs.push_back(x.out / e.name);
  ac.out = x.out / "aggregate";
  ac.eval = x.settings.eval;
  ac.match_task = x.settings.match_task;
  const report::AggregateResult r = report::aggregate_runs(ac);
  std::printf("\n%s\n", r.markdown.c_str());
  std::printf("aggregate: ");
  for (const auto& f : r.files) std::printf("%s ", f.c_str());
  std::printf("\n");
}

/// Every selected entry of the plan in order (then, on several ranks, their
/// evaluations spread over the ranks). Returns the failed entries, or -1 when
/// a signal interrupted the sweep (exit 75).
int run_plan(const cluster::Mpi& mpi, const SweepContext& x, long long only, bool evaluate_only) {
  int failures = 0;
  std::set<std::string> finished_here;
  // Several ranks and the whole plan: evaluations after the runs, spread over the ranks.
  const bool spread = mpi.size() > 1 && only < 0 && x.settings.evaluate;
  std::vector<std::pair<std::string, engine::RunConfig>> to_evaluate;
  for (std::size_t i = 0; i < x.plan.entries.size(); ++i) {
    if (only >= 0 && static_cast<long long>(i) != only) continue;
    const cluster::SweepEntry& entry = x.plan.entries[i];
    if (mpi.root()) {
      std::printf("\n[%zu/%zu] %s\n", i + 1, x.plan.entries.size(), entry.name.c_str());
      std::fflush(stdout);
    }
    engine::RunConfig c;
    try {
      const bool resolve = entry.matched() && !evaluate_only;
      const cluster::SweepEntry e = resolve ? resolve_entry(mpi, x, entry, finished_here) : entry;
      c = entry_config(x, e, true);
      if (resolve && mpi.root())
        std::printf("  target-risk %s (matched to %s)\n", e.option("target-risk").c_str(), e.option("matched-to").c_str());
    } catch (const ConfigError& e) {
      if (only >= 0) throw;  // a job-array task: its baselines were to finish first
      ++failures;
      if (mpi.root()) {
        std::fprintf(stderr, "edi-anon sweep: %s\n", e.what());
        create_private_dir(x.out / entry.name);
        write_file_atomic(x.out / entry.name / "error.txt", std::string(e.what()) + "\n");
      }
      continue;
    }
    bool deferred = false;
    const EntryResult r = run_entry(mpi, x, c, entry.name, evaluate_only, spread ? &deferred : nullptr);
    if (r == EntryResult::kInterrupted) return -1;
    if (r == EntryResult::kFailed) ++failures;
    else finished_here.insert(entry.name);
    if (spread && mpi.broadcast(deferred ? "1" : "0") == "1") to_evaluate.emplace_back(entry.name, c);
  }
  if (spread && !to_evaluate.empty()) {
    const int failed = evaluate_spread(mpi, x, to_evaluate);
    if (failed < 0) return -1;
    failures += failed;
  }
  return failures;
}

}  // namespace

int cmd_sweep(const Args& args) {
  Options opt("sweep", "--config SWEEP.ini --out DIR [--list] [--index I] [options]",
              "Run every entry of a sweep file ([run] shared options, [grid.NAME] families whose '|'-separated\n"
              "lists are expanded as a cartesian product; the control run 'control' first unless [sweep]\n"
              "control = false), each into DIR/<entry name>, under one process or mpirun/srun. Finished runs\n"
              "(complete.json, same options) are skipped, interrupted ones resumed. Then (unless --index) each\n"
              "run is evaluated and DIR/aggregate/aggregate.{csv,md,tex,json} is written." + sweep_keys_help());
  opt.config_is_input()
      .required("config", "sweep file (INI: [sweep], [run], [grid.NAME] sections)")
      .add("out", "", "base directory of the run directories (default: [sweep] out)")
      .flag("list", "print the plan (out, then index, name, options; 'after:' = the baselines a matched entry waits for) and exit; "
                    "data and models need not exist yet")
      .add("index", "", "run only entry I of the plan (for job arrays; no aggregation)")
      .flag("no-evaluate", "do not compute metrics after each run")
      .flag("evaluate-only", "do not run: evaluate the selected entries' runs (with --index: one process, for job arrays)")
      .flag("no-aggregate", "do not aggregate at the end")
      .flag("verbose", "per-rank progress lines")
      .add(row("threads", std::to_string(default_thread_count()), "LibTorch and OpenCV threads per rank", integer(1, 256)));
  if (!opt.parse(args)) return 0;
  SweepContext x;
  x.opt = &opt;
  x.file = opt.existing_file("config");
  cluster::install_stop_handlers();  // before anything slow: a signal during start-up is honoured too
  x.plan = cluster::read_sweep(x.file, [](const std::string& key) {
    Options ro("run", "", "");
    add_run_options(ro);
    return sweep_refusal(ro.rows(), key);
  });
  x.settings = sweep_settings(x.plan, x.file);
  if (opt.has("out")) x.out = opt.output_path("out");
  else if (x.plan.settings.count("out")) x.out = x.plan.settings.at("out");
  else throw ConfigError("--out is required (or set out in the [sweep] section of " + x.file.string() + ")");
  if (opt.flag_set("no-evaluate")) x.settings.evaluate = false;
  if (opt.flag_set("no-aggregate")) x.settings.aggregate = false;
  const bool evaluate_only = opt.flag_set("evaluate-only");
  if (evaluate_only && opt.flag_set("no-evaluate")) throw ConfigError("--evaluate-only and --no-evaluate exclude each other");
  if (evaluate_only) x.settings.evaluate = true;
  long long only = -1;
  if (opt.has("index")) only = opt.integer_in("index", 0, static_cast<long long>(x.plan.entries.size()) - 1);

  // Validate every entry before any work (a bad value names the entry); the
  // paths of data and models are checked for the entries that will run.
  const bool list = opt.flag_set("list");
  for (std::size_t i = 0; i < x.plan.entries.size(); ++i)
    entry_config(x, x.plan.entries[i], !list && (only < 0 || static_cast<long long>(i) == only));
  if (list) {
    print_plan(x);
    return 0;
  }
  const int threads = opt.apply_threads();
  cluster::Mpi mpi(nullptr, nullptr);
  if (mpi.root()) {
    create_private_dir(x.out);
    std::printf("sweep: %zu run(s) from %s -> %s, %d rank(s) x %d thread(s)\n", x.plan.entries.size(), x.file.c_str(), x.out.c_str(),
                mpi.size(), threads);
  }
  const int failures = run_plan(mpi, x, only, evaluate_only);
  if (failures < 0) return cluster::kExitCheckpointed;
  if (mpi.root() && only < 0 && x.settings.aggregate) aggregate(x);
  return failures ? 1 : 0;
}

}  // namespace edi::cli
