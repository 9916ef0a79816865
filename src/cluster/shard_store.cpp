#include "edi/cluster/shard_store.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "edi/core/context.hpp"
#include "edi/core/error.hpp"
#include "edi/cluster/checkpoint.hpp"
#include "edi/cluster/signals.hpp"

namespace edi::cluster {

namespace fs = std::filesystem;

namespace {

/// Test hook for the fault tests: EDI_FAULT_IO=RANK:PASS makes rank RANK's
/// first checkpoint commit as of pass >= PASS fail like a full disk. Returns
/// the pass, or -1 when the hook is not set for `rank`.
int fault_pass_for(int rank) {
  const char* v = std::getenv("EDI_FAULT_IO");
  if (!v || !*v) return -1;
  int r = -1, p = -1;
  if (std::sscanf(v, "%d:%d", &r, &p) != 2 || r < 0 || p < 0)
    throw ConfigError(std::string("EDI_FAULT_IO=") + v + ": expected RANK:PASS (non-negative integers)");
  return r == rank ? p : -1;
}

}  // namespace

ShardStore::ShardStore(const StoreSetup& setup, engine::Engine& engine)
    : setup_(setup), engine_(engine), fault_pass_(fault_pass_for(setup.rank)) {}

void ShardStore::restore(int s, Held& h) {
  NewestCheckpoint n = read_newest_checkpoint(setup_.out, s, setup_.input_size);
  for (const std::string& problem : n.problems) {
    if (n.checkpoint)
      std::fprintf(stderr, "%s: warning: %s; shard %d falls back to its previous checkpoint (pass %d)\n", edi::command_name().c_str(), problem.c_str(),
                   s, n.checkpoint->pass);
    else
      std::fprintf(stderr, "%s: warning: %s; shard %d is recomputed\n", edi::command_name().c_str(), problem.c_str(), s);
  }
  if (!n.checkpoint) return;
  restore_shard(h.shard, *n.checkpoint);
  h.committed = n.checkpoint->pass;
  h.evaluated = n.checkpoint->evaluated;
  h.slot = n.slot;
  h.counts = n.checkpoint->counts;
}

ShardStore::Held ShardStore::make(int s) {
  engine::DecodedShard ds =
      engine::decode_shard(*setup_.manifest, (*setup_.plan)[static_cast<std::size_t>(s)], setup_.input_size, setup_.resize);
  quarantined_.insert(quarantined_.end(), ds.quarantined.begin(), ds.quarantined.end());
  Held h;
  h.shard = engine_.make_shard(s, std::move(ds.ids), ds.images, ds.labels);
  return h;
}

ShardStore::Held& ShardStore::load_fresh(int s) {
  const auto old = held_.find(s);
  const int slot = old == held_.end() ? -1 : old->second.slot;
  if (old != held_.end()) held_.erase(old);
  Held h = make(s);
  h.slot = slot;  // the next commit goes into the other slot; a crash before it finds the old one again
  if (setup_.conventional) engine_.apply_conventional(h.shard);
  return held_.emplace(s, std::move(h)).first->second;
}

void ShardStore::note_pass(Held& h, int pass, const engine::PassCounts& c, std::int64_t image_passes, double seconds) {
  const ShardPassCounts row{c.identified, c.active, c.total, image_passes, seconds};
  const auto n = static_cast<std::size_t>(pass);
  if (h.counts.size() > n) h.counts.resize(n);  // a pass done again (a recomputed shard)
  if (h.counts.size() == n) h.counts.push_back(row);
}

bool ShardStore::counts_complete(const std::vector<ShardPassCounts>& counts, int committed) {
  const auto n = static_cast<std::int64_t>(counts.size());
  return n == committed + 1 || (n > 0 && n <= committed + 1 && counts.back().active == 0);
}

engine::PassCounts ShardStore::counts_at(const Held& h, int pass) {
  engine::PassCounts c;
  const ShardPassCounts* row = nullptr;
  if (pass < static_cast<int>(h.counts.size())) row = &h.counts[static_cast<std::size_t>(pass)];
  else if (!h.counts.empty() && h.counts.back().active == 0) row = &h.counts.back();
  if (row) {
    c.identified = row->identified;
    c.active = row->active;
    c.total = row->total;
    return c;
  }
  for (const auto& r : h.shard.records) {
    c.identified += r.identified;
    c.active += r.status == engine::Status::kActive;
  }
  c.total = static_cast<std::int64_t>(h.shard.size());
  return c;
}

ShardStore::Held& ShardStore::load(int s, int upto) {
  auto it = held_.find(s);
  if (it != held_.end()) return it->second;
  Held h = make(s);
  restore(s, h);
  if (h.committed < 0 && setup_.conventional) engine_.apply_conventional(h.shard);
  // A recomputed shard catches up alone (no halt happened before `upto`); a
  // shard committed between the phases of a pass continues from its evaluation.
  for (int p = h.committed + 1; p <= upto; ++p) {
    const auto t0 = Clock::now();
    const std::int64_t ip0 = engine_.timing().image_passes;
    if (h.evaluated != p) engine_.evaluate(h.shard, p);
    const engine::PassCounts pc = engine_.perturb(h.shard, p);
    h.committed = p;
    h.evaluated = -1;
    h.dirty = true;
    const double took = std::chrono::duration<double>(Clock::now() - t0).count();
    h.work += took;
    note_pass(h, p, pc, engine_.timing().image_passes - ip0, took);
  }
  return held_.emplace(s, std::move(h)).first->second;
}

void ShardStore::save(int s, Held& h, int as_of) {
  const auto t0 = Clock::now();
  // The older slot: the one not holding the newest committed state.
  const int slot = h.slot == 0 ? 1 : 0;
  const fs::path path = shard_checkpoint_path(setup_.out, s, slot);
  if (fault_pass_ >= 0 && as_of >= fault_pass_) {
    fault_pass_ = -1;
    throw IoError(path.string() + ": write failed: " + std::strerror(ENOSPC) + " (injected by EDI_FAULT_IO)");
  }
  write_shard_checkpoint(path, h.shard, as_of, setup_.config_sha256, h.evaluated, history_, h.counts);
  h.committed = as_of;
  h.dirty = false;
  h.slot = slot;
  h.work = 0;
  h.saved = Clock::now();
  const double took = std::chrono::duration<double>(h.saved - t0).count();
  checkpoint_seconds_ += took;
  commit_ewma_ = commit_ewma_ < 0 ? took : 0.7 * commit_ewma_ + 0.3 * took;
  ++commits_;
}

double ShardStore::auto_interval() const {
  if (commit_ewma_ < 0) return 0;
  const double loss = setup_.checkpoint_max_loss;
  const double young = std::sqrt(2 * commit_ewma_ * loss);
  return std::min(std::max(young, commit_ewma_ / kMaxCommitShare), loss);
}

std::string ShardStore::policy_json() const {
  char buf[256];
  if (setup_.checkpoint_auto)
    std::snprintf(buf, sizeof buf,
                  "{\"mode\": \"auto\", \"commit_seconds_ewma\": %.6f, \"interval_work_seconds\": %.4f, "
                  "\"max_loss_seconds\": %g, \"max_commit_share\": %g}",
                  std::max(commit_ewma_, 0.0), auto_interval(), setup_.checkpoint_max_loss, kMaxCommitShare);
  else if (setup_.checkpoint_every > 0)
    std::snprintf(buf, sizeof buf, "{\"mode\": \"seconds\", \"every_seconds\": %g}", setup_.checkpoint_every);
  else
    std::snprintf(buf, sizeof buf, "{\"mode\": \"every-pass\"}");
  return buf;
}

void ShardStore::finish(int s, Held& h, int pass, std::int64_t active) {
  h.evaluated = -1;
  const bool due = setup_.checkpoint_auto ? h.work >= auto_interval()
                                          : std::chrono::duration<double>(Clock::now() - h.saved).count() >= setup_.checkpoint_every;
  if (!interval() || active == 0 || stop_requested() || due) {
    save(s, h, active == 0 ? setup_.limit : pass);
  } else {
    h.committed = pass;
    h.dirty = true;
  }
}

void ShardStore::commit_dirty() {
  for (auto& [s, h] : held_)
    if (h.dirty || h.evaluated >= 0) save(s, h, h.committed);
}

void ShardStore::keep_only(const std::set<int>& keep) {
  for (auto it = held_.begin(); it != held_.end();) it = keep.count(it->first) ? std::next(it) : held_.erase(it);
}

}  // namespace edi::cluster
