// `edi-anon run` and `edi-anon bench`: the engine's commands.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "commands.hpp"
#include "edi/core/error.hpp"
#include "edi/engine/bench.hpp"
#include "edi/engine/steering.hpp"
#include "edi/engine/run_io.hpp"
#include "edi/cluster/mpi.hpp"
#include "edi/cluster/runner.hpp"
#include "edi/cluster/signals.hpp"
#include "engine_options.hpp"

namespace edi::cli {

int cmd_run(const Args& args) {
  Options opt("run", "--data DIR --model MODEL --out RUNDIR [--method edi|conventional] [--operator OP] [options]",
              "Anonymize a data set: EDI (explain -> select -> perturb, pass after pass, until each image is\n"
              "no longer identified or the dataset-level risk target is met) or a conventional baseline.\n"
              "Runs as one process or under mpirun/srun (ranks share fixed shards). Every shard is\n"
              "checkpointed (by default at most 2 percent of rank time, see --checkpoint-every); rerunning the same\n"
              "command resumes exactly. SIGTERM/SIGUSR1 (also during the final writes): checkpoint, exit 75.\n"
              "Writes RUNDIR/images/*.png, outcomes.csv, trajectories.csv, results.h5, summary.json and,\n"
              "last, complete.json (layout: docs/run-directory.md).");
  add_run_options(opt);
  if (!opt.parse(args)) return 0;
  const engine::RunConfig c = run_config_from(opt);
  cluster::install_stop_handlers();  // before anything slow: a signal during start-up is honoured too
  const int threads = opt.apply_threads();
  cluster::Mpi mpi(nullptr, nullptr);
  try {
    if (mpi.root()) {
      engine::EngineSpec shown = c.engine;
      shown.batch = std::max(shown.batch, 1);
      std::printf("run: %s, model %s, %d rank(s) x %d thread(s) -> %s\n", engine::describe(shown).c_str(), c.model.c_str(),
                  mpi.size(), threads, c.out.c_str());
      std::fflush(stdout);
    }
    const cluster::DistRunOutcome out = cluster::run_distributed(
        mpi, c, [&](const engine::PassReport& r, double eta, const std::vector<std::string>& per_rank) {
          std::printf("pass %3d  active %6lld  risk %6.2f%% (%lld/%lld identified)  %7.1f image-passes/s  %6.2f s  ETA <= %.0f s\n",
                      r.pass, static_cast<long long>(r.active), r.risk_percent, static_cast<long long>(r.identified),
                      static_cast<long long>(r.total), r.image_passes_per_s, r.seconds, eta);
          for (const auto& line : per_rank) std::printf("          %s\n", line.c_str());
          std::fflush(stdout);
        });
    if (out.interrupted) {
      if (mpi.root())
        std::printf("%s (exit %d)\n", cluster::describe_interruption(out).c_str(), cluster::kExitCheckpointed);
      return cluster::kExitCheckpointed;
    }
    if (mpi.root()) {
      const engine::RunSummary& s = out.summary;
      if (out.resumed) std::printf("resumed at pass %d\n", out.start_pass);
      std::printf("checkpoints: %.2f s of %.2f s rank-seconds in the pass loop (%.1f%%), %lld commit(s), policy %s\n",
                  s.checkpoint_seconds, s.loop_seconds, s.loop_seconds > 0 ? 100.0 * s.checkpoint_seconds / s.loop_seconds : 0.0,
                  static_cast<long long>(out.checkpoint_commits), out.checkpoint_policy.c_str());
      std::printf("done: %lld images (%lld quarantined): %lld stopped, %lld capped (still identified), %lld stalled, %lld fixed; "
                  "final risk %.2f%% after %d pass(es) in %.1f s -> %s\n",
                  static_cast<long long>(s.images), static_cast<long long>(s.quarantined), static_cast<long long>(s.stopped),
                  static_cast<long long>(s.capped), static_cast<long long>(s.stalled), static_cast<long long>(s.fixed),
                  s.final_risk_percent, s.passes_run, s.seconds, (c.out / "results.h5").c_str());
    }
    return 0;
  } catch (const cluster::RemoteError& e) {
    if (mpi.root()) throw;
    return e.exit_code();  // rank 0 reports it
  } catch (const Error& e) {
    if (mpi.size() == 1) throw;
    std::fprintf(stderr, "edi-anon run: error on rank %d: %s\n", mpi.rank(), e.what());
    mpi.abort(e.exit_code());
  } catch (const std::exception& e) {
    // Any other failure on one rank would leave the others waiting in a
    // collective: take the whole job down.
    if (mpi.size() == 1) throw;
    std::fprintf(stderr, "edi-anon run: internal error on rank %d: %s\n", mpi.rank(), e.what());
    mpi.abort(1);
  }
}

int cmd_bench(const Args& args) {
  Options opt("bench", "--data DIR --model MODEL [--batch B,B,...] [--passes-per-batch N] [options]",
              "Measure the engine: image-passes/s at several batch sizes, its time split (model\n"
              "forward+backward, explain post-processing, perturbation, bookkeeping) and the pure model\n"
              "forward+backward rate at each batch size (the engine's upper bound).");
  add_run_options(opt, true);
  if (!opt.parse(args)) return 0;
  engine::RunConfig c = run_config_from(opt, true);
  const std::vector<int> batches = bench_batches(opt);
  const int passes = static_cast<int>(opt.integer("passes-per-batch"));
  const int n_images = static_cast<int>(opt.integer("images"));
  const int threads = opt.apply_threads();
  // A throwaway run directory for the manifest (bench writes nothing else).
  c.out = std::filesystem::temp_directory_path() / ("edi-bench-" + std::to_string(::getpid()));
  const engine::RunData d = engine::prepare_data(c);
  const engine::SteeringModels models = engine::load_steering_models(c.model, c.judge, c.device, d.manifest, c.resize);
  models::Classifier* model = &models.primary();
  std::vector<std::size_t> take(d.selected.begin(), d.selected.begin() + std::min<std::size_t>(d.selected.size(), n_images));
  engine::DecodedShard ds = engine::decode_shard(d.manifest, take, model->info().input_size, c.resize);
  std::filesystem::remove_all(c.out);
  std::printf("bench: %s\n  model %s (%d px, %zu classes), %zu images, %d fixed passes per batch size, %d thread(s)\n",
              engine::describe([&] { auto s = c.engine; s.batch = 1; return s; }()).c_str(), c.model.c_str(),
              model->info().input_size, model->info().classes.size(), ds.ids.size(), passes, threads);
  std::printf("  %5s  %14s  %16s  %7s  %7s  %7s  %7s  %7s\n", "batch", "model fwd+bwd/s", "engine img-pass/s", "engine%",
              "model", "explain", "perturb", "book");
  double best = 0;
  int best_batch = 0;
  for (int b : batches) {
    const engine::BenchRow r = engine::bench_engine(c.engine, models, ds.ids, ds.images, ds.labels, b, passes);
    const double tot = std::max(r.wall, 1e-12);
    std::printf("  %5d  %14.1f  %16.1f  %6.1f%%  %6.1f%%  %6.1f%%  %6.1f%%  %6.1f%%\n", b, r.model_rate, r.engine_rate,
                100.0 * r.engine_rate / r.model_rate, 100 * r.split.model / tot, 100 * r.split.explain / tot,
                100 * r.split.perturb / tot, 100 * r.split.book / tot);
    std::fflush(stdout);
    if (r.engine_rate > best) best = r.engine_rate, best_batch = b;
  }
  std::printf("  fastest engine batch: %d (%.1f image-passes/s)\n", best_batch, best);
  return 0;
}

}  // namespace edi::cli
