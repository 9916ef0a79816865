#include "edi/cluster/shard_store.hpp"

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
  const fs::path p = shard_checkpoint_path(setup_.out, s);
  if (!fs::exists(p)) return;
  std::string problem;
  if (auto ck = read_shard_checkpoint(p, &problem, setup_.input_size)) {
    restore_shard(h.shard, *ck);
    h.committed = ck->pass;
    h.evaluated = ck->evaluated;
  } else {
    std::fprintf(stderr, "%s: warning: %s; shard %d is recomputed\n", edi::command_name().c_str(), problem.c_str(), s);
  }
}

ShardStore::Held& ShardStore::load(int s, int upto) {
  auto it = held_.find(s);
  if (it != held_.end()) return it->second;
  engine::DecodedShard ds =
      engine::decode_shard(*setup_.manifest, (*setup_.plan)[static_cast<std::size_t>(s)], setup_.input_size, setup_.resize);
  quarantined_.insert(quarantined_.end(), ds.quarantined.begin(), ds.quarantined.end());
  Held h{engine_.make_shard(s, std::move(ds.ids), ds.images, ds.labels)};
  restore(s, h);
  if (h.committed < 0 && setup_.conventional) engine_.apply_conventional(h.shard);
  // A recomputed shard catches up alone (no halt happened before `upto`); a
  // shard committed between the phases of a pass continues from its evaluation.
  for (int p = h.committed + 1; p <= upto; ++p) {
    if (h.evaluated != p) engine_.evaluate(h.shard, p);
    engine_.perturb(h.shard, p);
    h.committed = p;
    h.evaluated = -1;
    h.dirty = true;
  }
  return held_.emplace(s, std::move(h)).first->second;
}

void ShardStore::save(int s, Held& h, int as_of) {
  const auto t0 = Clock::now();
  const fs::path path = shard_checkpoint_path(setup_.out, s);
  if (fault_pass_ >= 0 && as_of >= fault_pass_) {
    fault_pass_ = -1;
    throw IoError(path.string() + ": write failed: " + std::strerror(ENOSPC) + " (injected by EDI_FAULT_IO)");
  }
  write_shard_checkpoint(path, h.shard, as_of, setup_.config_sha256, h.evaluated, history_);
  h.committed = as_of;
  h.dirty = false;
  h.saved = Clock::now();
  checkpoint_seconds_ += std::chrono::duration<double>(h.saved - t0).count();
}

void ShardStore::finish(int s, Held& h, int pass, std::int64_t active) {
  h.evaluated = -1;
  if (!interval() || active == 0 || stop_requested() ||
      std::chrono::duration<double>(Clock::now() - h.saved).count() >= setup_.checkpoint_every) {
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
