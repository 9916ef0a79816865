#include "edi/cluster/shard_loop.hpp"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "edi/core/context.hpp"
#include "edi/core/fs.hpp"
#include "edi/cluster/signals.hpp"

namespace edi::cluster {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::int64_t count_active(const engine::Shard& shard) {
  std::int64_t n = 0;
  for (const auto& r : shard.records) n += r.status == engine::Status::kActive;
  return n;
}

enum Slot { kShardsFinal = 0, kImagesDone = 1, kActive = 2 };

}  // namespace

ShardLoop::ShardLoop(const Mpi& mpi, engine::Engine& engine, ShardStore& store, ClaimBoard& board, int limit,
                     std::vector<std::int64_t> committed, std::vector<std::int64_t> sizes, double progress_every,
                     std::filesystem::path progress_path)
    : mpi_(mpi),
      engine_(engine),
      store_(store),
      board_(board),
      counters_(mpi, 3),
      limit_(limit),
      committed_(std::move(committed)),
      sizes_(std::move(sizes)),
      every_(progress_every),
      progress_path_(std::move(progress_path)) {
  images_total_ = std::accumulate(sizes_.begin(), sizes_.end(), std::int64_t{0});
}

int ShardLoop::run() {
  board_.reset();
  started_ = printed_ = Clock::now();
  const int n_shards = static_cast<int>(committed_.size());
  std::int64_t final_images = 0;
  for (int s = 0; s < n_shards; ++s)
    if (committed_[static_cast<std::size_t>(s)] >= limit_) ++final_at_start_, final_images += sizes_[static_cast<std::size_t>(s)];
  if (mpi_.root()) {
    counters_.add(kShardsFinal, final_at_start_);
    counters_.add(kImagesDone, final_images);
  }
  while (!stop_requested()) {
    const int s = board_.next();
    if (s >= n_shards) break;
    if (committed_[static_cast<std::size_t>(s)] >= limit_) continue;  // final in an earlier run
    run_shard(s);
  }
  // The one reduction: every rank is past its last shard.
  const int signal = static_cast<int>(mpi_.max(static_cast<std::int64_t>(stop_signal())));
  progress(true);
  return signal;
}

void ShardLoop::run_shard(int s) {
  ShardStore::Held* h = &store_.load(s, -1);
  if (!ShardStore::counts_complete(h->counts, h->committed)) {
    std::fprintf(stderr, "%s: warning: shard %d: its checkpoint (pass %d) has no per-pass counts (made by an older edi-anon); "
                 "the shard is recomputed from pass 0\n", edi::command_name().c_str(), s, h->committed);
    h = &store_.load_fresh(s);
  }
  std::int64_t active = count_active(h->shard);
  counters_.add(kImagesDone, sizes_[static_cast<std::size_t>(s)] - active);  // quarantined ones included
  counters_.add(kActive, active);
  // At least one pass: a shard of quarantined images only is final (and committed) after its pass.
  for (int p = h->committed + 1; p <= limit_ && !stop_requested(); ++p) {
    const auto t0 = Clock::now();
    const std::int64_t ip0 = engine_.timing().image_passes;
    engine_.evaluate(h->shard, p);
    const engine::PassCounts pc = engine_.perturb(h->shard, p, false);
    const double took = since(t0);
    h->work += took;
    ShardStore::note_pass(*h, p, pc, engine_.timing().image_passes - ip0, took);
    store_.finish(s, *h, p, pc.active);
    counters_.add(kImagesDone, active - pc.active);
    counters_.add(kActive, pc.active - active);
    active = pc.active;
    if (active == 0) break;
    progress(false);
  }
  if (active == 0 && h->committed >= limit_) {
    counters_.add(kShardsFinal, 1);
    finished_.push_back(s);
    store_.keep_only({});  // committed as final: the final outputs read it back
    return;
  }
  store_.commit_dirty();  // a signal: the shard as it stands
  counters_.add(kActive, -active);
}

void ShardLoop::progress(bool force) {
  if (!mpi_.root() || (!force && since(printed_) < every_)) return;
  printed_ = Clock::now();
  const std::int64_t shards = counters_.add(kShardsFinal, 0), images = counters_.add(kImagesDone, 0),
                     active = counters_.add(kActive, 0);
  const auto n = static_cast<std::int64_t>(committed_.size());
  // ETA: the shards left at the rate shards finished in this process run (-1: none finished yet).
  const std::int64_t done_now = shards - final_at_start_;
  double eta = -1;
  if (shards >= n) eta = 0;
  else if (done_now > 0) eta = since(started_) / static_cast<double>(done_now) * static_cast<double>(n - shards);
  char eta_text[48] = "ETA ?";
  if (eta >= 0) std::snprintf(eta_text, sizeof eta_text, eta == 0 ? "ETA 0 s" : "ETA ~ %.0f s", eta);
  std::printf("  shards %lld/%lld done  images %lld/%lld done  active %lld  %s\n", static_cast<long long>(shards),
              static_cast<long long>(n), static_cast<long long>(images), static_cast<long long>(images_total_),
              static_cast<long long>(active), eta_text);
  std::fflush(stdout);
  const nlohmann::json j = {{"schedule", "shard"}, {"updated", utc_now()}, {"shards_final", shards}, {"shards", n},
                            {"images_done", images}, {"images", images_total_}, {"active", active}, {"eta_seconds", eta}};
  const std::string json = j.dump() + "\n";
  write_file_atomic(progress_path_, json, Durability::kProcessCrash);  // informational: no fsync
}

std::vector<engine::PassReport> shard_history(const std::vector<std::vector<ShardPassCounts>>& counts,
                                              const std::vector<engine::PassReport>& recorded, int ranks) {
  std::size_t n_passes = 1;
  for (const auto& c : counts) n_passes = std::max(n_passes, c.size());
  std::vector<engine::PassReport> out;
  for (std::size_t p = 0; p < n_passes; ++p) {
    std::int64_t identified = 0, active = 0, total = 0, image_passes = 0;
    double seconds = 0;
    for (const auto& c : counts) {
      if (c.empty()) continue;
      const ShardPassCounts& row = p < c.size() ? c[p] : c.back();  // a final shard counts as it ended
      identified += row.identified, active += row.active, total += row.total;
      if (p < c.size()) image_passes += row.image_passes, seconds += row.seconds;
    }
    engine::PassReport rep;
    rep.pass = static_cast<int>(p);
    rep.identified = identified;
    rep.active = active;
    rep.total = total;
    // As PassReduction::risk_percent computes it.
    rep.risk_percent = total ? 100.0 * static_cast<double>(identified) / static_cast<double>(total) : 0.0;
    rep.seconds = seconds / std::max(ranks, 1);
    rep.image_passes_per_s = static_cast<double>(image_passes) / std::max(rep.seconds, 1e-9);
    out.push_back(p < recorded.size() ? recorded[p] : rep);
  }
  return out;
}

}  // namespace edi::cluster
