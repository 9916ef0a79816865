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

namespace {
void print_precision_comparison(const engine::PrecisionComparison& c) {
  std::printf("precision comparison: A = fp32 batch %d (reference), B = fp32 batch %d (numerical noise floor), C = bf16 batch %d\n",
              c.batch, c.noise_batch, c.batch);
  std::printf("  %4s  %6s  %14s  %14s  %22s\n", "pass", "masks", "mask agree B", "mask agree C", "identified A / B / C");
  for (const auto& p : c.passes)
    std::printf("  %4d  %6lld  %13.4f%%  %13.4f%%  %10lld / %lld / %lld\n", p.pass, static_cast<long long>(p.masks),
                100 * p.agreement[1], 100 * p.agreement[2], static_cast<long long>(p.identified[0]),
                static_cast<long long>(p.identified[1]), static_cast<long long>(p.identified[2]));
  std::printf("  final identified share (risk): A %.2f %%, B %.2f %%, C %.2f %% of %lld images\n", c.final_risk[0], c.final_risk[1],
              c.final_risk[2], static_cast<long long>(c.images));
  std::printf("  stopped: A %lld, B %lld, C %lld; mean stop pass: A %.3f, B %.3f, C %.3f\n", static_cast<long long>(c.stopped[0]),
              static_cast<long long>(c.stopped[1]), static_cast<long long>(c.stopped[2]), c.mean_stop_pass[0], c.mean_stop_pass[1],
              c.mean_stop_pass[2]);
  std::printf("  same outcome as A (status and stop pass): B %lld, C %lld of %lld\n", static_cast<long long>(c.same_stop_pass[1]),
              static_cast<long long>(c.same_stop_pass[2]), static_cast<long long>(c.images));
  std::printf("  engine wall s: A %.2f, B %.2f, C %.2f; bf16 speed-up over fp32 (A/C): %.2f\n", c.wall[0], c.wall[1], c.wall[2],
              c.wall[0] / std::max(c.wall[2], 1e-12));
}
}  // namespace

int cmd_bench(const Args& args) {
  Options opt("bench", "--data DIR --model MODEL [--batch B,B,...] [--passes-per-batch N] [options]",
              "Measure the engine: image-passes/s at several batch sizes, its time split (model\n"
              "forward+backward, selection, operator, bookkeeping; shares and ms per image-pass) and the\n"
              "pure model forward+backward rate at each batch size (the engine's upper bound), timed\n"
              "between the engine's shards so that both see the same load (the pass range is the spread\n"
              "of the per-pass engine/pure ratios: the noise).");
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
  if (opt.flag_set("compare-precision")) {
    print_precision_comparison(engine::compare_precision(c.engine, models, ds.ids, ds.images, ds.labels, batches.front()));
    return 0;
  }
  std::printf("  %5s  %14s  %16s  %7s  %13s  %7s  %7s  %7s  %7s  | ms per image-pass: %6s %7s %8s %6s\n", "batch",
              "model fwd+bwd/s", "engine img-pass/s", "engine%", "(pass range)", "model", "explain", "perturb", "book",
              "model", "select", "operator", "book");
  double best = 0, best_share = 0;
  int best_batch = 0;
  for (int b : batches) {
    const engine::BenchRow r = engine::bench_engine(c.engine, models, ds.ids, ds.images, ds.labels, b, passes, c.shard_size);
    const double tot = std::max(r.wall, 1e-12);
    const double ms = 1000.0 / static_cast<double>(std::max<std::int64_t>(1, r.split.image_passes));
    char range[32];
    std::snprintf(range, sizeof range, "%.1f-%.1f%%", 100 * r.ratio_lo, 100 * r.ratio_hi);
    std::printf("  %5d  %14.1f  %16.1f  %6.1f%%  %13s  %6.1f%%  %6.1f%%  %6.1f%%  %6.1f%%  |                    %6.2f %7.3f %8.3f %6.3f\n",
                b, r.model_rate, r.engine_rate, 100.0 * r.engine_rate / r.model_rate, range,
                100 * r.split.model / tot, 100 * r.split.explain / tot, 100 * r.split.perturb / tot, 100 * r.split.book / tot,
                ms * r.split.model, ms * r.split.explain, ms * r.split.perturb, ms * r.split.book);
    std::fflush(stdout);
    if (r.engine_rate > best) best = r.engine_rate, best_batch = b, best_share = r.engine_rate / r.model_rate;
  }
  std::printf("  fastest engine batch: %d (%.1f image-passes/s)\n", best_batch, best);
  std::printf("  engine at its fastest batch: %.1f %% of the pure forward+backward rate at that batch\n", 100 * best_share);
  return 0;
}

}  // namespace edi::cli
