#include "edi/cluster/runner.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <functional>
#include <cstdlib>

#include "edi/core/context.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/cluster/checkpoint.hpp"
#include "edi/cluster/results.hpp"
#include "edi/cluster/run_lock.hpp"
#include "edi/cluster/run_state.hpp"
#include "edi/cluster/shard_loop.hpp"
#include "edi/cluster/shard_store.hpp"
#include "edi/cluster/signals.hpp"
#include "edi/engine/bench.hpp"
#include "edi/engine/steering.hpp"
#include "edi/models/faceapi.hpp"
#include "edi/models/human.hpp"
#include "edi/models/registry.hpp"
#include "edi/rundir/examples.hpp"
#include "edi/rundir/layout.hpp"
#include "edi/rundir/record.hpp"
#include "edi/version.hpp"

namespace edi::cluster {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string config_json(const engine::RunConfig& c) {
  json j = json::object();
  for (const auto& [k, v] : c.options) j[k] = v;  // the result options, canonical (cli option rows)
  return j.dump();
}

namespace {

/// Rank 0 runs `fn`; an error there is re-thrown on every rank.
template <class Fn>
void on_root(const Mpi& mpi, Fn&& fn) {
  std::string status;
  if (mpi.root()) {
    try {
      fn();
    } catch (const Error& e) {
      status = std::to_string(e.exit_code()) + "\n" + e.what();
      if (mpi.size() == 1) throw;
    }
  }
  status = mpi.broadcast(status);
  if (!status.empty()) {
    const auto nl = status.find('\n');
    const int code = std::stoi(status.substr(0, nl));
    if (mpi.root()) throw RemoteError(status.substr(nl + 1), code);
    throw RemoteError("", code);
  }
}

/// A loaded model's sha256 and its sidecar's, as recorded in provenance.json,
/// from what loading hashed (ModelInfo): no model file is read again here. A
/// ported net (faceapi:NET, human:NET) is "builtin:<reference>:<sha256 of its
/// weights asset>" with no sidecar.
std::pair<std::string, std::string> model_hashes(const std::string& reference, const models::ModelInfo& info) {
  const models::ModelRef ref = models::ModelRef::parse(reference);
  if (ref.builtin())
    return {"builtin:" + ref.text + (info.file_sha256.empty() ? std::string() : ":" + info.file_sha256), std::string()};
  return {info.file_sha256, info.sidecar_sha256};
}

/// The hashes of every steering model and the judge, in order, comma-separated
/// (one model: exactly model_hashes()).
std::pair<std::string, std::string> run_model_hashes(const engine::RunConfig& c, const engine::SteeringModels& loaded) {
  std::vector<std::string> refs = engine::split_model_list(c.model);
  std::vector<const models::Classifier*> infos;
  for (const auto& m : loaded.steer) infos.push_back(m.get());
  if (!c.judge.empty()) refs.push_back(c.judge), infos.push_back(loaded.judge.get());
  if (refs.size() != infos.size()) throw Error("provenance: " + std::to_string(infos.size()) + " models loaded for " +
                                               std::to_string(refs.size()) + " references");
  std::string sha, sidecar;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    const auto [a, b] = model_hashes(refs[i], infos[i]->info());
    sha += (i ? "," : "") + a;
    sidecar += (i ? "," : "") + b;
  }
  return {sha, sidecar};
}

/// The run directory's provenance record; a resume must match it.
json make_provenance(const engine::RunConfig& c, const data::Manifest& m, const engine::SteeringModels& loaded) {
  const auto [model_sha, sidecar_sha] = run_model_hashes(c, loaded);
  json p;
  p["format"] = "edi-anon-provenance";
  p["version"] = 1;
  p["config"] = json::parse(config_json(c));
  p["config_sha256"] = sha256_hex(config_json(c));
  p["model"] = {{"reference", c.model}, {"sha256", model_sha}, {"sidecar_sha256", sidecar_sha}};
  p["manifest_sha256"] = m.hash();
  p["data_root"] = m.data_root;
  p["code_version"] = std::string(version()) + " (" + git_describe() + ")";
  // Floating-point results depend on these (not part of the config hash).
  p["device"] = c.device;
  p["threads"] = at::get_num_threads();
  p["created"] = utc_now();
  p["host"] = host_name();
  return p;
}

/// "--k was 9, now 11" for every option that differs.
void config_diffs(const json& a, const json& b, std::vector<std::string>& diffs) {
  std::set<std::string> keys;
  for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
  for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
  for (const auto& k : keys) {
    const std::string va = a.contains(k) ? a[k].get<std::string>() : "(unset)";
    const std::string vb = b.contains(k) ? b[k].get<std::string>() : "(unset)";
    if (va != vb) diffs.push_back("--" + k + " was " + va + ", now " + vb);
  }
}

/// Warnings for what a resume may change without changing the setup.
void warn_resume(const json& stored, const json& now) {
  const std::string code = stored.value("code_version", "");
  if (!code.empty() && code != now["code_version"].get<std::string>())
    std::fprintf(stderr, "%s: warning: resuming a run made by edi-anon %s with %s\n", edi::command_name().c_str(), code.c_str(),
                 now["code_version"].get<std::string>().c_str());
  std::vector<std::string> changed;
  if (stored.contains("device") && stored["device"] != now["device"])
    changed.push_back("--device was " + stored["device"].get<std::string>() + ", now " + now["device"].get<std::string>());
  if (stored.contains("threads") && stored["threads"] != now["threads"])
    changed.push_back("threads per rank were " + std::to_string(stored["threads"].get<int>()) + ", now " +
                      std::to_string(now["threads"].get<int>()));
  for (const auto& w : changed)
    std::fprintf(stderr, "%s: warning: %s: the outputs will not be byte-identical to an uninterrupted run\n", edi::command_name().c_str(), w.c_str());
}

void check_resume(const fs::path& path, const json& stored, const json& now, const fs::path& data_dir) {
  std::vector<std::string> diffs;
  if (stored.value("config_sha256", "") != now["config_sha256"]) config_diffs(stored["config"], now["config"], diffs);
  if (stored["model"].value("sha256", "") != now["model"]["sha256"])
    diffs.push_back("model " + now["model"]["reference"].get<std::string>() + " differs (sha256 " +
                    stored["model"].value("sha256", "").substr(0, 12) + " vs " + now["model"]["sha256"].get<std::string>().substr(0, 12) + ")");
  else if (stored["model"].contains("sidecar_sha256") && stored["model"]["sidecar_sha256"] != now["model"]["sidecar_sha256"])
    diffs.push_back("the sidecar " + models::sidecar_path(now["model"]["reference"].get<std::string>()).string() +
                    " of the model differs (classes, normalisation or input size edited)");
  if (stored.value("manifest_sha256", "") != now["manifest_sha256"]) diffs.push_back("the data set differs from the stored manifest");
  std::error_code ec;
  const std::string root_now = fs::weakly_canonical(data_dir, ec).string();
  const std::string root_was = stored.value("data_root", "");
  if (!data_dir.empty() && !root_was.empty() && root_now != root_was)
    diffs.push_back("data root moved: was " + root_was + ", now " + root_now);
  if (!diffs.empty()) {
    std::string text;
    for (const auto& d : diffs) text += (text.empty() ? "" : "; ") + d;
    throw ConfigError(path.string() + ": refusing to resume a run with a different setup: " + text +
                      " (use a new --out, or the original options)");
  }
  warn_resume(stored, now);
}

json read_provenance(const fs::path& path) {
  try {
    json j = json::parse(read_file(path));
    if (j.is_object() && j.contains("config") && j.contains("model")) return j;
  } catch (const json::exception&) {
  }
  throw DataError(path.string() + ": unreadable provenance record (not the JSON object this tool writes); "
                  "restore it, or use a new --out");
}

/// Without provenance.json (deleted, or lost with a crash before it was
/// written) the checkpoints still say which configuration made them.
void check_checkpoint_configs(const fs::path& out, const std::string& config_sha) {
  std::error_code ec;
  for (auto it = fs::directory_iterator(out / "checkpoints", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("shard-", 0) != 0 || it->path().extension() != ".h5") continue;
    const std::string stored = read_checkpoint_config(it->path());
    if (!stored.empty() && stored != config_sha)
      throw ConfigError(it->path().string() + ": refusing to resume: this checkpoint was made with another configuration "
                        "(config sha256 " + stored.substr(0, 12) + ", now " + config_sha.substr(0, 12) +
                        ") and provenance.json, which would name the options, is missing (use a new --out, or the original options)");
  }
}

/// A run directory is new, empty, or has a run's files; it is never inside
/// the data it reads.
void check_out_dir(const engine::RunConfig& c) {
  std::error_code ec;
  const fs::path out = fs::weakly_canonical(c.out, ec);
  const fs::path data = fs::weakly_canonical(c.data_dir, ec);
  if (!c.data_dir.empty()) {
    auto d = data.begin(), o = out.begin();
    for (; d != data.end() && o != out.end() && *d == *o; ++d, ++o) {}
    if (d == data.end() || (std::next(d) == data.end() && d->empty()))
      throw ConfigError("--out " + c.out.string() + ": is inside --data " + c.data_dir.string() +
                        " (the outputs would become input); choose a directory outside it");
  }
  if (!fs::is_directory(c.out, ec)) return;
  static const std::set<std::string> kRunFiles = {"provenance.json", "manifest.csv", "checkpoints", "complete.json"};
  static const std::set<std::string> kHarmless = {"error.txt", ".lock"};  // a sweep's failed try; a killed run's lock
  bool run_files = false, other = false;
  std::string first_other;
  for (auto it = fs::directory_iterator(c.out, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (kRunFiles.count(name)) run_files = true;
    else if (!kHarmless.count(name) && !other) other = true, first_other = name;
  }
  if (other && !run_files)
    throw ConfigError("--out " + c.out.string() + ": a non-empty directory that is not a run directory (it holds " + first_other +
                      " but no provenance.json or manifest.csv); choose a new or empty directory");
}

/// Temp files of writers killed before their rename (".<name>.tmp.<pid>.<n>",
/// see AtomicPath): never part of the outputs, removed when a run (re)starts.
void remove_stale_temp_files(const fs::path& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file() && name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos)
      fs::remove(it->path(), ec);
  }
}

/// Rank 0: the run directory checked and locked (one writer), the manifest.
/// Then every rank reads the manifest and loads the steering models (and the
/// judge) into `models`. Then rank 0 writes the provenance record, with the
/// model hashes that loading took (or compares it with the stored one on a
/// resume), removes the completion marker and stale temp files.
engine::RunData prepare_run(const Mpi& mpi, const engine::RunConfig& c, std::unique_ptr<RunLock>& lock,
                            engine::SteeringModels& models) {
  bool existing = false;
  engine::RunData first;  // rank 0: the manifest as built or read first, which the provenance records
  on_root(mpi, [&] {
    check_out_dir(c);
    create_private_dir(c.out);
    lock = std::make_unique<RunLock>(c.out);
    existing = fs::exists(c.out / "provenance.json");
    if (!existing) check_checkpoint_configs(c.out, sha256_hex(config_json(c)));
    first = engine::prepare_data(c);
    create_private_dir(c.out / "checkpoints");
  });
  mpi.barrier();
  engine::RunData d = engine::prepare_data(c);  // the manifest exists now: every rank reads it
  models = engine::load_steering_models(c.model, c.judge, c.device, d.manifest, c.resize);
  on_root(mpi, [&] {
    const json now = make_provenance(c, first.manifest, models);
    if (existing) check_resume(c.out / "provenance.json", read_provenance(c.out / "provenance.json"), now, c.data_dir);
    else write_file_atomic(c.out / "provenance.json", now.dump(2) + "\n");
    // From here on the directory is being worked on: not finished.
    std::error_code ec;
    fs::remove(c.out / "complete.json", ec);
    if (ec) throw IoError((c.out / "complete.json").string() + ": cannot remove the completion marker: " + ec.message());
    remove_stale_temp_files(c.out);
  });
  mpi.barrier();
  return d;
}

/// The longest pass history stored in the shard checkpoints (each commit
/// carries the history as it stood), for a run.json that is lost or
/// unparsable; empty when none has one.
RunHistory history_from_checkpoints(const fs::path& out, int n_shards, int side) {
  RunHistory best;
  for (int s = 0; s < n_shards; ++s) {
    const NewestCheckpoint n = read_newest_checkpoint(out, s, side);
    const auto& ck = n.checkpoint;
    if (!ck || ck->history.empty()) continue;
    try {
      RunHistory h = RunHistory::from_json(ck->history, "");
      if (best.batch < 1 || h.contiguous().size() > best.contiguous().size()) best = h;
    } catch (const Error&) {
    }
  }
  best.passes = best.contiguous();
  return best;
}

/// The run's history (rank 0 reads it, or chooses the batch size for a new
/// run), broadcast to every rank. An unparsable run.json (a power loss) is
/// treated as missing: the history is taken from the checkpoints, and the
/// passes after it are recounted from the shards.
RunHistory load_history(const Mpi& mpi, const engine::RunConfig& c, const fs::path& path, const engine::RunData& d,
                        const std::vector<std::vector<std::size_t>>& plan, models::Classifier& model) {
  std::string text;
  on_root(mpi, [&] {
    RunHistory h;
    if (fs::exists(path)) {
      try {
        h = RunHistory::from_json(read_file(path), path.string());
      } catch (const DataError& e) {
        h = history_from_checkpoints(c.out, static_cast<int>(plan.size()), model.info().input_size);
        std::fprintf(stderr, "%s: warning: %s; treated as missing: %zu pass(es) recovered from the checkpoints, "
                     "the rest is recounted from the shards\n", edi::command_name().c_str(), e.what(), h.passes.size());
      }
    }
    if (h.batch < 1) {
      h = RunHistory{};
      h.batch = c.engine.batch;
      if (h.batch <= 0) {
        engine::DecodedShard probe = engine::decode_shard(d.manifest, plan.front(), model.info().input_size, c.resize);
        h.batch = engine::choose_batch(model, probe.images, probe.labels);
      }
    }
    text = h.to_json();
  });
  return RunHistory::from_json(mpi.broadcast(text), path.string());
}

/// Where each shard stands: the pass its newest valid checkpoint slot is
/// committed through (-1: none). Rank 0 reads the slots (an unusable slot is
/// removed: the shard falls back to its other slot, or is recomputed when
/// neither is usable), every rank gets the result. `counted`: whether every
/// checkpoint has its shard's per-pass counts (rank 0 only).
std::vector<std::int64_t> read_standing(const Mpi& mpi, const fs::path& out, int n_shards, int side, bool& counted) {
  std::vector<std::int64_t> committed(static_cast<std::size_t>(n_shards), -1);
  counted = true;
  on_root(mpi, [&] {
    for (int s = 0; s < n_shards; ++s) {
      const NewestCheckpoint n = read_newest_checkpoint(out, s, side);
      for (std::size_t i = 0; i < n.bad_slots.size(); ++i) {
        if (n.checkpoint)
          std::fprintf(stderr, "%s: warning: %s; shard %d falls back to its previous checkpoint (pass %d)\n", edi::command_name().c_str(),
                       n.problems[i].c_str(), s, n.checkpoint->pass);
        else
          std::fprintf(stderr, "%s: warning: %s; shard %d is recomputed\n", edi::command_name().c_str(), n.problems[i].c_str(), s);
        fs::remove(shard_checkpoint_path(out, s, n.bad_slots[i]));
      }
      if (n.checkpoint) committed[static_cast<std::size_t>(s)] = n.checkpoint->pass;
      if (n.checkpoint && !ShardStore::counts_complete(n.checkpoint->counts, n.checkpoint->pass)) counted = false;
    }
  });
  counted = mpi.max(static_cast<std::int64_t>(counted ? 0 : 1)) == 0;  // rank 0's
  if (!mpi.root()) std::fill(committed.begin(), committed.end(), 0);
  mpi.sum(committed);  // only rank 0 filled it: summing broadcasts it
  return committed;
}

/// The pass a (resumed) run starts at.
///
/// The pass history (run.json) is written by rank 0 after every shard of a
/// pass is committed, and before any rank starts the next pass (the claim
/// board's barrier). A crash between the two leaves every shard committed
/// through pass P (or final) and the history ending at P-1: pass P is then
/// recounted from the shards' per-pass counts (exact, also for shards a
/// shard-major run left further ahead), or without them (checkpoints of an
/// older edi-anon) from their records, which is exact because nothing is
/// committed beyond P but final shards, whose records no longer change.
int resume_point(const Mpi& mpi, const RunHistory& history, const std::vector<std::int64_t>& committed, int limit,
                 const fs::path& history_path, bool counted) {
  const std::int64_t min_committed = committed.empty() ? -1 : *std::min_element(committed.begin(), committed.end());
  const int history_next = static_cast<int>(history.contiguous().size());
  int start_pass = static_cast<int>(min_committed + 1);
  if (!history.loop_ended() && history_next < start_pass) {
    if (!counted && min_committed != limit && history_next < min_committed && mpi.root())
      std::fprintf(stderr,
                   "%s: warning: %s has the pass history up to pass %d but every shard is committed through "
                   "pass %lld; the passes in between are recounted from the final shard state and are not exact\n",
                   edi::command_name().c_str(), history_path.c_str(), history_next - 1, static_cast<long long>(min_committed));
    start_pass = history_next;
  }
  return start_pass;
}

/// A snapshot target as it names a directory: "%g" (27.3 -> 27.3, 10 -> 10).
std::string snapshot_name(double target) { return engine::target_text(target); }


/// A shard's outcome rows while a snapshot is assembled.
fs::path part_path(const fs::path& dir, int shard) {
  char name[40];
  std::snprintf(name, sizeof name, "outcomes-%05d.csv", shard);
  return dir / ".parts" / name;
}

/// The pass loop of one rank.
struct PassLoop {
  const Mpi& mpi;
  const engine::RunConfig& c;
  engine::Engine& engine;
  ShardStore& store;
  ClaimBoard& board;
  const PassPrinter& print;
  DistRunOutcome& outcome;
  int n_shards = 0;
  int limit = 0;
  bool dataset_rule = false;
  const data::Manifest* manifest = nullptr;
  fs::path history_path;
  RunHistory saved;  ///< as stored (the batch size)
  /// Recorded passes are authoritative: a pass rerun because a shard is
  /// recomputed (its checkpoint was corrupt) keeps its recorded counts, since
  /// shards committed further can only be counted as they stand now; the
  /// dataset rule's halt decision uses the recorded risk for the same reason.
  std::vector<engine::PassReport> recorded;
  std::vector<engine::PassReport> history;  ///< this run's, from pass 0
  double pass_time_sum = 0;
  int passes_timed = 0;
  /// Dataset rule: the snapshot targets, descending (spec.targets, or the one
  /// --target-risk).
  std::vector<double> targets;
  /// Dataset rule: the --snapshot-psnr targets in dB, descending (may be empty).
  std::vector<double> psnr_targets;

  PassLoop(const Mpi& m, const engine::RunConfig& config, engine::Engine& e, ShardStore& st, ClaimBoard& b, const PassPrinter& p,
           DistRunOutcome& o)
      : mpi(m), c(config), engine(e), store(st), board(b), print(p), outcome(o) {}

  enum class End { kNext, kDone, kInterrupted };

  /// One claimed shard's pass: counted only when it was done (or evaluated)
  /// before an interruption.
  void process_shard(int s, int pass, PassReduction& red) {
    ShardStore::Held& h = store.load(s, pass - 1);
    ++red.shards_done;
    if (h.committed >= pass || h.evaluated == pass) {
      // A shard committed further (a signal mid-pass, or a shard-major run
      // before) counts as it stood after this pass.
      red.add(ShardStore::counts_at(h, pass));
      return;
    }
    const auto w0 = Clock::now();
    const std::int64_t ip0 = engine.timing().image_passes;
    engine::PassCounts ev = engine.evaluate(h.shard, pass);
    if (dataset_rule) {
      h.evaluated = pass;
      h.work += std::chrono::duration<double>(Clock::now() - w0).count();
    } else {
      ev = engine.perturb(h.shard, pass, false);
      const double took = std::chrono::duration<double>(Clock::now() - w0).count();
      h.work += took;
      ShardStore::note_pass(h, pass, ev, engine.timing().image_passes - ip0, took);
      store.finish(s, h, pass, ev.active);
    }
    red.add(ev);
  }

  /// Phase 1 on the shards this rank claims (and, but under the dataset rule,
  /// phase 2 and the commit). Stops claiming on a signal. A rank claims the
  /// shards it holds first, then the board's shared counter hands out the rest
  /// one index at a time (a claim costs one round trip, however many ranks).
  PassReduction process_shards(int pass, std::set<int>& touched) {
    PassReduction red;
    const std::int64_t ip0 = engine.timing().image_passes;
    board.reset();
    std::vector<int> held;
    for (const auto& [s, h] : store.held()) held.push_back(s);
    // A shard ahead of its checkpoint stays with its holder: it is claimed
    // before any rank claims others (another rank would recompute it from the
    // older checkpoint).
    std::set<int> mine;
    if (store.interval()) {
      for (const auto& [s, h] : store.held())
        if (h.dirty && board.claim(s)) mine.insert(s);
      touched = mine;
      mpi.barrier();
    }
    std::set<int> tried;
    auto take = [&](int s) {
      if (stop_requested()) {
        red.stopped_claiming = 1;
        return false;
      }
      if (!tried.insert(s).second || (!mine.count(s) && !board.claim(s))) return true;
      process_shard(s, pass, red);
      touched.insert(s);
      return true;
    };
    bool go = true;
    for (std::size_t i = 0; go && i < held.size(); ++i) go = take(held[i]);
    while (go) {
      const int s = board.next();
      if (s >= n_shards) break;
      go = take(s);
    }
    red.image_passes = engine.timing().image_passes - ip0;
    return red;
  }

  /// Phase 2 of a dataset-rule pass on the shards this rank evaluated; the
  /// active images summed over ranks.
  std::int64_t perturb_held(int pass, bool halt) {
    std::vector<std::int64_t> active{0};
    for (auto& [s, h] : store.held()) {
      if (h.committed >= pass) {
        active[0] += ShardStore::counts_at(h, pass).active;
        continue;
      }
      const auto w0 = Clock::now();
      const engine::PassCounts pc = engine.perturb(h.shard, pass, halt);
      const double took = std::chrono::duration<double>(Clock::now() - w0).count();
      h.work += took;
      ShardStore::note_pass(h, pass, pc, 0, took);
      store.finish(s, h, pass, pc.active);
      active[0] += pc.active;
    }
    mpi.sum(active);
    return active[0];
  }

  /// The history into every later commit; rank 0: into run.json, and the progress line.
  void record(const engine::PassReport& rep, int pass, std::int64_t active, const std::vector<std::string>& per_rank) {
    RunHistory h = saved;
    h.passes = history;
    h.checkpoint_policy = store.policy_json();
    h.schedule = "pass";
    const std::string text = h.to_json();
    store.set_history(text);
    if (!mpi.root()) return;
    write_file_atomic(history_path, text);
    // ETA: remaining passes at the mean pass time (an upper bound: images keep stopping).
    const double eta = active == 0 ? 0.0 : (limit - pass) * pass_time_sum / std::max(passes_timed, 1);
    if (print) print(rep, eta, per_rank);
  }

  /// Mean PSNR (dB) of the state against the originals over the images that
  /// changed, over every rank (collective); +inf while none changed.
  double mean_psnr() {
    std::vector<double> sum{0.0, 0.0};
    for (auto& [s, h] : store.held())
      for (std::int64_t i = 0; i < h.shard.state.size(0); ++i) {
        const float p = engine::psnr(h.shard.state[i], h.shard.original[i]);
        if (std::isfinite(p)) sum[0] += p, sum[1] += 1;
      }
    mpi.sum(sum);
    return sum[1] > 0 ? sum[0] / sum[1] : std::numeric_limits<double>::infinity();
  }

  /// A snapshot that may be due: its directory name, whether its condition
  /// holds, what snapshot.json records besides the common keys, and why.
  struct Candidate {
    std::string name;
    bool reached = false;
    json extra;
    std::string why;
  };

  /// Dataset rule, between the reduction and the perturbation of `pass`: the
  /// first pass at or below a risk target (or, --snapshot-psnr, at or below a
  /// mean PSNR) writes its state as that target's snapshot (interfaces §3):
  /// every rank its shards' PNGs and outcome rows, rank 0 outcomes.csv and,
  /// last, snapshot.json. A snapshot is written once; a resume never rewrites it.
  void write_snapshots(int pass, double risk, const PassReduction& red) {
    std::vector<Candidate> cand;
    char why[96];
    for (double t : targets) {
      std::snprintf(why, sizeof why, "risk %.2f%% <= %s%%", risk, snapshot_name(t).c_str());
      cand.push_back({snapshot_name(t), risk <= t, json{{"target_percent", t}}, why});
    }
    if (!psnr_targets.empty()) {
      const double psnr = mean_psnr();
      for (double t : psnr_targets) {
        std::snprintf(why, sizeof why, "mean PSNR %.2f dB <= %s dB", psnr, snapshot_name(t).c_str());
        cand.push_back({"psnr" + snapshot_name(t), psnr <= t, json{{"target_psnr_db", t}, {"psnr_db", psnr}}, why});
      }
    }
    // Rank 0 decides (a snapshot already written is never rewritten) and tells every rank.
    std::string text;
    if (mpi.root())
      for (std::size_t i = 0; i < cand.size(); ++i)
        if (cand[i].reached && !fs::exists(c.out / "snapshots" / cand[i].name / "snapshot.json")) text += std::to_string(i) + "\n";
    std::istringstream in(mpi.broadcast(text));
    for (std::string line; std::getline(in, line);) write_snapshot(cand.at(std::stoul(line)), pass, risk, red);
  }

  void write_snapshot(const Candidate& cand, int pass, double risk, const PassReduction& red) {
    const fs::path dir = c.out / "snapshots" / cand.name;
    if (mpi.root()) create_private_dir(dir / ".parts");
    mpi.barrier();
    for (auto& [s, h] : store.held()) {
      if (c.write_images) engine::write_images(dir / "images", h.shard, c.png_bits);
      rundir::write_outcomes(part_path(dir, s), *manifest, {&h.shard});
    }
    mpi.barrier();
    if (!mpi.root()) return;
    std::string csv;
    for (int s = 0; s < n_shards; ++s) {
      const std::string part = read_file(part_path(dir, s));
      csv += s == 0 ? part : part.substr(std::min(part.size(), part.find('\n') + 1));  // one header
    }
    write_file_atomic(dir / "outcomes.csv", csv);
    json j = cand.extra;
    j["format"] = "edi-anon-snapshot";
    j["version"] = 1;
    j["pass"] = pass;
    j["risk_percent"] = risk;
    j["identified"] = red.identified;
    j["total"] = red.total;
    write_file_atomic(dir / "snapshot.json", j.dump(2) + "\n");
    std::error_code ec;
    fs::remove_all(dir / ".parts", ec);
    std::printf("snapshot at pass %d (%s) -> %s\n", pass, cand.why.c_str(), dir.c_str());
    std::fflush(stdout);
  }

  End run_pass(int pass) {
    const auto t0 = std::chrono::steady_clock::now();
    std::set<int> touched;
    PassReduction red = process_shards(pass, touched);
    const std::int64_t my_image_passes = red.image_passes;
    store.keep_only(touched);  // the newest state of the others is another rank's
    red.reduce(mpi);
    // A rank may stop claiming after the others took every remaining shard: the
    // pass is then complete and is recorded and printed like any other before
    // the run stops, so that a resume neither replays nor loses it. Otherwise
    // everything processed so far is committed exactly as it stands (under the
    // dataset rule: the evaluated shards between the two phases).
    const bool signalled = red.stopped_claiming > 0;
    if (signalled) outcome.signal = static_cast<int>(mpi.max(static_cast<std::int64_t>(stop_signal())));
    if (signalled && red.shards_done < n_shards) {
      store.commit_dirty();
      return End::kInterrupted;
    }
    const bool is_recorded = pass < static_cast<int>(recorded.size());
    const double risk = is_recorded ? recorded[static_cast<std::size_t>(pass)].risk_percent : red.risk_percent();
    if (dataset_rule) write_snapshots(pass, risk, red);
    std::int64_t active = dataset_rule ? perturb_held(pass, risk <= engine.spec().target_risk) : red.active;
    if (signalled) store.commit_dirty();
    engine::PassReport rep;
    rep.pass = pass;
    rep.active = active;
    rep.identified = red.identified;
    rep.total = red.total;
    rep.risk_percent = risk;
    rep.seconds = mpi.max(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    rep.image_passes_per_s = static_cast<double>(red.image_passes) / std::max(rep.seconds, 1e-9);
    pass_time_sum += rep.seconds;
    ++passes_timed;
    if (is_recorded) {
      rep = recorded[static_cast<std::size_t>(pass)];
      active = rep.active;
    }
    history.push_back(rep);
    std::vector<std::string> per_rank;
    if (c.verbose) {
      std::ostringstream line;
      line << "rank " << mpi.rank() << ": " << touched.size() << " shard(s), " << my_image_passes << " image-passes";
      per_rank = mpi.gather(line.str());
    }
    record(rep, pass, active, per_rank);
    outcome.last_complete_pass = pass;
    if (signalled) return End::kInterrupted;
    return active == 0 ? End::kDone : End::kNext;
  }
};

/// Quarantine lists of every rank (rank 0 gets them merged, by path).
std::vector<data::QuarantineItem> gather_quarantine(const Mpi& mpi, const std::vector<data::QuarantineItem>& mine) {
  std::string q_text;
  for (const auto& q : mine) q_text += q.path + "\t" + q.reason + "\n";
  const std::vector<std::string> q_all = mpi.gather(q_text);
  std::vector<data::QuarantineItem> quarantined;
  std::set<std::string> seen;
  for (const auto& text : q_all) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      const auto tab = line.find('\t');
      if (tab != std::string::npos && seen.insert(line.substr(0, tab)).second)
        quarantined.push_back({line.substr(0, tab), line.substr(tab + 1)});
    }
  }
  std::sort(quarantined.begin(), quarantined.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return quarantined;
}

/// Every shard's final state on rank 0: held ones as they are, the others
/// from their checkpoints; with their per-pass counts into `counts`.
std::vector<engine::Shard> collect_shards(ShardStore& store, const fs::path& out, int n_shards, int side,
                                          std::vector<std::vector<ShardPassCounts>>& counts) {
  std::vector<engine::Shard> shards;
  for (int s = 0; s < n_shards; ++s) {
    if (store.holds(s)) {
      shards.push_back(store.held().at(s).shard);
      counts.push_back(store.held().at(s).counts);
      continue;
    }
    NewestCheckpoint n = read_newest_checkpoint(out, s, side);
    if (!n.checkpoint)
      throw IoError(n.problems.empty() ? shard_checkpoint_path(out, s).string() + ": missing" : n.problems.front());
    const ShardCheckpoint* ck = &*n.checkpoint;
    engine::Shard sh;
    sh.index = s;
    sh.ids = ck->ids;
    sh.labels = ck->labels;
    sh.state = ck->state;
    sh.records = ck->records;
    shards.push_back(std::move(sh));
    counts.push_back(ck->counts);
  }
  return shards;
}

/// Counts of the final records into the summary.
void count_outcomes(const std::vector<engine::Shard>& shards, engine::RunSummary& sum) {
  for (const auto& s : shards)
    for (const auto& r : s.records) {
      ++sum.images;
      sum.stopped += r.status == engine::Status::kStopped;
      sum.capped += r.status == engine::Status::kCapped;
      sum.stalled += r.status == engine::Status::kStalled;
      sum.fixed += r.status == engine::Status::kFixed;
    }
}

/// RUNDIR/complete.json, last of all: the run directory is finished.
void write_completion_marker(const fs::path& out, const engine::RunSummary& sum) {
  json j = json::object();
  j["format"] = "edi-anon-complete";
  j["version"] = 1;
  j["finished"] = utc_now();
  j["passes_run"] = sum.passes_run;
  j["images"] = sum.images;
  write_file_atomic(out / "complete.json", j.dump() + "\n");
}

/// What the final-output step needs besides the store.
struct FinalInputs {
  const engine::RunConfig* config = nullptr;
  const engine::RunData* data = nullptr;
  const engine::EngineSpec* spec = nullptr;
  models::Classifier* model = nullptr;
  const engine::Engine* engine = nullptr;
  int n_shards = 0;
  Clock::time_point started;
  /// Shard-major: the history is built from the shards' counts (shard_history)
  /// and written to run.json here, `saved` keeping the batch and the passes
  /// recorded before.
  bool shard_major = false;
  const RunHistory* saved = nullptr;
  fs::path history_path;
};

/// Shard-major: the run's pass history from the shards' counts into `sum` and run.json.
void write_shard_history(const Mpi& mpi, const FinalInputs& in, const ShardStore& store,
                         const std::vector<std::vector<ShardPassCounts>>& counts, engine::RunSummary& sum) {
  for (std::size_t s = 0; s < counts.size(); ++s)
    if (counts[s].empty())
      throw IoError(shard_checkpoint_path(in.config->out, static_cast<int>(s)).string() +
                    ": the final checkpoint has no per-pass counts (rerun with --schedule pass)");
  RunHistory h = *in.saved;
  h.passes = shard_history(counts, in.saved->contiguous(), mpi.size());
  h.checkpoint_policy = store.policy_json();
  h.schedule = "shard";
  write_file_atomic(in.history_path, h.to_json());
  sum.passes = h.passes;
}

/// Test hook: EDI_TEST_PAUSE_FINAL=SECONDS makes every rank wait that long
/// before the final writes, EDI_TEST_PAUSE_FINAL=SECONDS@FILE rank 0 before
/// it writes FILE (outcomes.csv, results.h5, ...); the wait ends early on a
/// signal. Lets a test signal a run in its final phase. Checked when the run
/// starts (a bad value stops it before any work).
struct PauseFinal {
  bool set = false;
  double seconds = 0;
  std::string at;  ///< "": before the final writes, else the file about to be written
};

PauseFinal pause_final_setting() {
  PauseFinal p;
  const char* v = std::getenv("EDI_TEST_PAUSE_FINAL");
  if (!v || !*v) return p;
  const std::string text = v;
  const auto sep = text.find('@');
  const std::string number = text.substr(0, sep);
  char* end = nullptr;
  p.seconds = std::strtod(number.c_str(), &end);
  if (number.empty() || *end != '\0' || !(p.seconds >= 0 && p.seconds <= 3600))
    throw ConfigError("EDI_TEST_PAUSE_FINAL=" + text + ": expected SECONDS or SECONDS@FILE, seconds in [0, 3600]");
  p.at = sep == std::string::npos ? std::string() : text.substr(sep + 1);
  p.set = true;
  return p;
}

void test_pause_final(const std::string& at) {
  const PauseFinal p = pause_final_setting();
  if (!p.set || p.at != at) return;
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(p.seconds));
  while (Clock::now() < until && !stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

/// Rank 0's part of the final outputs: quarantine.csv, outcomes.csv,
/// trajectories.csv, results.h5, summary.json and last the completion marker,
/// one file after the other. False when a signal stopped it at a file
/// boundary before the marker (every file written is whole).
bool write_root_outputs(const Mpi& mpi, ShardStore& store, const FinalInputs& in, const std::vector<data::QuarantineItem>& quarantined,
                        DistRunOutcome& outcome) {
  const engine::RunConfig& c = *in.config;
  std::vector<std::vector<ShardPassCounts>> counts;
  const std::vector<engine::Shard> shards = collect_shards(store, c.out, in.n_shards, in.model->info().input_size, counts);
  std::vector<const engine::Shard*> views;
  for (const auto& s : shards) views.push_back(&s);
  engine::RunSummary& sum = outcome.summary;
  if (in.shard_major) write_shard_history(mpi, in, store, counts, sum);
  count_outcomes(shards, sum);
  sum.quarantined = static_cast<std::int64_t>(quarantined.size());
  sum.passes_run = sum.passes.empty() ? 0 : sum.passes.back().pass;
  sum.final_risk_percent = sum.passes.empty() ? 0.0 : sum.passes.back().risk_percent;
  sum.timing = in.engine->timing();
  sum.seconds = std::chrono::duration<double>(Clock::now() - in.started).count();
  ResultsInfo info;
  info.config = c;
  info.spec = *in.spec;
  info.provenance_json = read_file(c.out / "provenance.json");
  info.ranks = mpi.size();
  info.example_ids = rundir::example_ids(in.data->manifest, in.data->selected, c.examples);
  const std::vector<std::pair<std::string, std::function<void()>>> steps = {
      {"quarantine.csv", [&] { data::write_quarantine(quarantined, c.out / "quarantine.csv"); }},
      {"outcomes.csv", [&] { rundir::write_outcomes(c.out / rundir::file::kOutcomes, in.data->manifest, views); }},
      {"trajectories.csv", [&] { rundir::write_trajectories(c.out / rundir::file::kTrajectories, in.data->manifest, views); }},
      {"results.h5", [&] { write_results(c.out / "results.h5", info, in.data->manifest, views, sum, *in.model); }},
      {"summary.json", [&] { write_summary_json(c.out / "summary.json", info, in.data->manifest, sum); }},
  };
  for (const auto& [file, write] : steps) {
    test_pause_final(file);
    if (stop_requested()) return false;
    write();
  }
  if (stop_requested()) return false;
  write_completion_marker(c.out, sum);
  return true;
}

/// The final outputs: images by every rank (shards handed out once more),
/// then rank 0's files (write_root_outputs). A signal on the way stops at the
/// next shard or file boundary: every shard is final and committed, every
/// file written is whole, the completion marker is missing; the outcome is
/// "interrupted" (exit 75) and a rerun writes the final outputs again,
/// identically.
void write_final_outputs(const Mpi& mpi, ShardStore& store, ClaimBoard& board, const FinalInputs& in, DistRunOutcome& outcome) {
  const engine::RunConfig& c = *in.config;
  test_pause_final("");
  board.reset();
  for (int s = board.next(); s < in.n_shards && !stop_requested(); s = board.next()) {
    ShardStore::Held& h = store.load(s, -1);
    if (c.write_images) engine::write_images(c.out / "images", h.shard, c.png_bits);
  }
  const std::vector<data::QuarantineItem> quarantined = gather_quarantine(mpi, store.quarantined());
  // Every rank's signal counts up to here; during rank 0's files, rank 0's.
  const std::int64_t early = mpi.max(static_cast<std::int64_t>(stop_signal()));
  std::string stopped = early ? std::to_string(early) : std::string();
  if (mpi.root() && stopped.empty() && !write_root_outputs(mpi, store, in, quarantined, outcome))
    stopped = std::to_string(stop_signal());
  stopped = mpi.broadcast(stopped);
  if (!stopped.empty()) {
    outcome.interrupted = true;
    outcome.in_final_writes = true;
    outcome.signal = std::stoi(stopped);
  }
}

/// Whether this run uses the shard-major schedule (--schedule, and auto by
/// the stop rule). Checkpoints without per-pass counts (an older edi-anon)
/// keep a run on the pass-major schedule, which counts such shards from
/// their records.
bool use_shard_major(const Mpi& mpi, const engine::RunConfig& c, bool counted) {
  const bool dataset = c.engine.stop == engine::StopRule::kDataset;
  if (c.schedule == "shard" && dataset)
    throw ConfigError("--schedule shard: not available with --stop dataset (its halt needs every shard's pass reduced "
                      "together); use --schedule pass or auto");
  const bool want = c.schedule == "shard" || (c.schedule == "auto" && !dataset);
  if (want && !counted && mpi.root())
    std::fprintf(stderr, "%s: warning: checkpoints made by an older edi-anon have no per-pass counts; this run uses "
                 "--schedule pass\n", edi::command_name().c_str());
  return want && counted;
}

StoreSetup store_setup(const engine::RunConfig& c, const engine::RunData& d, const std::vector<std::vector<std::size_t>>& plan,
                       int side, int limit, bool conventional, int rank) {
  StoreSetup setup;
  setup.out = c.out;
  setup.manifest = &d.manifest;
  setup.plan = &plan;
  setup.input_size = side;
  setup.resize = c.resize;
  setup.config_sha256 = sha256_hex(config_json(c));
  setup.checkpoint_every = c.checkpoint_every;
  setup.checkpoint_auto = c.checkpoint_auto;
  setup.checkpoint_max_loss = c.checkpoint_max_loss;
  setup.limit = limit;
  setup.conventional = conventional;
  setup.rank = rank;
  return setup;
}

/// What both schedules' loops share.
struct LoopInputs {
  const Mpi* mpi = nullptr;
  const engine::RunConfig* config = nullptr;
  const engine::RunData* data = nullptr;
  engine::Engine* engine = nullptr;
  ShardStore* store = nullptr;
  ClaimBoard* board = nullptr;
  int n_shards = 0, limit = 0, start_pass = 0;
  const RunHistory* saved = nullptr;
  fs::path history_path;
};

/// The pass-major loop from `start_pass`; true when a signal stopped it.
bool run_pass_major(const LoopInputs& in, const PassPrinter& print, DistRunOutcome& outcome) {
  const engine::EngineSpec& spec = in.engine->spec();
  PassLoop loop(*in.mpi, *in.config, *in.engine, *in.store, *in.board, print, outcome);
  loop.n_shards = in.n_shards;
  loop.limit = in.limit;
  loop.dataset_rule = spec.stop == engine::StopRule::kDataset && spec.method == engine::Method::kEdi;
  loop.history_path = in.history_path;
  loop.manifest = &in.data->manifest;
  loop.targets = spec.targets.empty() ? std::vector<double>{spec.target_risk} : spec.targets;
  loop.psnr_targets = spec.psnr_targets;
  loop.saved = *in.saved;
  loop.recorded = in.saved->contiguous();
  loop.history.assign(loop.recorded.begin(), loop.recorded.begin() + std::min<std::ptrdiff_t>(
                                                                         in.start_pass, static_cast<std::ptrdiff_t>(loop.recorded.size())));
  {
    RunHistory h = *in.saved;
    h.passes = loop.history;
    in.store->set_history(h.to_json());
  }
  bool interrupted = false;
  for (int pass = in.start_pass; pass <= in.limit; ++pass) {
    const PassLoop::End end = loop.run_pass(pass);
    if (end == PassLoop::End::kNext) continue;
    interrupted = end == PassLoop::End::kInterrupted;
    break;
  }
  outcome.summary.passes = loop.history;
  return interrupted;
}

/// The shard-major loop (shard_loop.hpp); true when a signal stopped it. The
/// history is built at the end (write_shard_history); run.json keeps the
/// batch size and the passes recorded before from the start.
bool run_shard_major(const LoopInputs& in, const std::vector<std::vector<std::size_t>>& plan,
                     const std::vector<std::int64_t>& committed, DistRunOutcome& outcome) {
  in.store->set_history(in.saved->to_json());
  if (in.mpi->root()) write_file_atomic(in.history_path, in.saved->to_json());
  std::vector<std::int64_t> sizes;
  for (const auto& p : plan) sizes.push_back(static_cast<std::int64_t>(p.size()));
  ShardLoop loop(*in.mpi, *in.engine, *in.store, *in.board, in.limit, committed, sizes, in.config->progress_every,
                 in.config->out / "checkpoints" / "progress.json");
  outcome.signal = loop.run();
  outcome.shard_major = true;
  // Where every shard stands now, 1 + its pass (a resume starts each where it is).
  std::vector<std::int64_t> standing(committed.size(), 0);
  for (const auto& [s, h] : in.store->held()) standing[static_cast<std::size_t>(s)] = h.committed + 1;
  for (int s : loop.finished()) standing[static_cast<std::size_t>(s)] = in.limit + 1;
  in.mpi->sum(standing);  // each shard was in one rank's hands at most; 0: untouched by this run
  std::int64_t final_shards = 0, lowest = in.limit, shard_passes = 0;
  for (std::size_t s = 0; s < committed.size(); ++s) {
    const std::int64_t at = standing[s] > 0 ? standing[s] - 1 : committed[s];
    final_shards += at >= in.limit;
    lowest = std::min(lowest, at);
    shard_passes += at + 1;
  }
  outcome.shard_passes = shard_passes;
  outcome.shards_final = final_shards;
  outcome.shards_total = static_cast<std::int64_t>(committed.size());
  outcome.last_complete_pass = static_cast<int>(lowest);
  return outcome.signal != 0;
}

/// Checkpoint cost, commits and loop time of all ranks into the outcome.
void loop_stats(const Mpi& mpi, const ShardStore& store, Clock::time_point t_loop, DistRunOutcome& outcome) {
  std::vector<double> io{store.checkpoint_seconds(), std::chrono::duration<double>(Clock::now() - t_loop).count()};
  mpi.sum(io);
  outcome.summary.checkpoint_seconds = io[0];
  outcome.summary.loop_seconds = io[1];
  outcome.checkpoint_policy = store.policy_json();
  std::vector<std::int64_t> commits{store.commits()};
  mpi.sum(commits);
  outcome.checkpoint_commits = commits[0];
  outcome.summary.checkpoint_commits = commits[0];
}

}  // namespace

std::string describe_interruption(const DistRunOutcome& o) {
  std::ostringstream m;
  m << "stopped by signal " << o.signal;
  if (o.in_final_writes) {
    m << " while writing the final outputs (";
    if (!o.shard_major) m << "after pass " << o.last_complete_pass << "; ";
    m << "every shard is final and committed, the files written are whole, complete.json is missing); a rerun of the "
         "same command writes the final outputs";
    return m.str();
  }
  if (o.shard_major) {
    m << " (shard-major: " << o.shards_final << " of " << o.shards_total << " shard(s) final, every shard in hand committed as it stood, ";
    if (o.last_complete_pass < 0) m << "some not started";
    else m << "every shard through pass " << o.last_complete_pass << " or further";
    // "(N shard-passes committed)" grows with every pass any shard gained: the job scripts' progress check.
    m << "); a rerun of the same command resumes every shard where it stands (" << o.shard_passes << " shard-passes committed)";
    return m.str();
  }
  if (o.last_complete_pass < 0)
    m << " before pass 0 was complete";
  else
    m << " after pass " << o.last_complete_pass;
  m << " (every shard committed through it, some perhaps further); a rerun of the same command resumes at pass "
    << o.last_complete_pass + 1;
  return m.str();
}

DistRunOutcome run_distributed(const Mpi& mpi, const engine::RunConfig& c, const PassPrinter& print) {
  const auto t_start = Clock::now();
  install_stop_handlers();
  pause_final_setting();  // a bad test hook value stops the run before any work
  {
    engine::EngineSpec check = c.engine;
    check.batch = std::max(check.batch, 1);
    engine::validate(check);
    use_shard_major(mpi, c, true);  // --schedule shard with --stop dataset: refused before any work
  }
  std::unique_ptr<RunLock> lock;  // rank 0, for the whole run
  engine::SteeringModels models;
  const engine::RunData d = prepare_run(mpi, c, lock, models);
  models::Classifier* model = &models.primary();
  const int side = model->info().input_size;
  const auto plan = engine::make_shards(d.selected, c.shard_size);
  const int n_shards = static_cast<int>(plan.size());
  const fs::path history_path = c.out / "checkpoints" / "run.json";
  const RunHistory saved = load_history(mpi, c, history_path, d, plan, *model);
  engine::EngineSpec spec = c.engine;
  spec.batch = saved.batch;
  engine::Engine engine(spec, models);
  // --examples N: the pass-0 masks the engine applies to the first N images, captured as they happen.
  rundir::ExampleCapture examples(c.out, rundir::example_ids(d.manifest, d.selected, c.examples), sha256_hex(config_json(c)));
  if (!examples.empty() && spec.method == engine::Method::kEdi) engine.set_mask_observer(examples.observer());
  const int limit = spec.pass_limit();  // 0 for a conventional baseline and the control (method none)

  bool counted = true;
  const std::vector<std::int64_t> committed = read_standing(mpi, c.out, n_shards, side, counted);
  const bool shard_major = use_shard_major(mpi, c, counted);
  DistRunOutcome outcome;
  const int start_pass = resume_point(mpi, saved, committed, limit, history_path, counted);
  // After a loop that ended (a signal during its last pass) no pass is left:
  // the resume is "at" the pass after the last recorded one.
  outcome.start_pass = saved.loop_ended() ? std::min(start_pass, static_cast<int>(saved.contiguous().size())) : start_pass;
  if (shard_major && !committed.empty()) outcome.start_pass = static_cast<int>(*std::min_element(committed.begin(), committed.end()) + 1);
  outcome.resumed = std::any_of(committed.begin(), committed.end(), [](std::int64_t v) { return v >= 0; });
  outcome.last_complete_pass = start_pass - 1;

  ShardStore store(store_setup(c, d, plan, side, limit, spec.method == engine::Method::kConventional, mpi.rank()), engine);
  ClaimBoard board(mpi, std::max(n_shards, 1));
  LoopInputs li{&mpi, &c, &d, &engine, &store, &board, n_shards, limit, start_pass, &saved, history_path};
  const auto t_loop = Clock::now();
  const bool interrupted = shard_major ? run_shard_major(li, plan, committed, outcome) : run_pass_major(li, print, outcome);
  store.commit_dirty();  // none after a normal end (final shards commit), kept as a guard
  loop_stats(mpi, store, t_loop, outcome);
  outcome.interrupted = interrupted;
  if (interrupted) {
    mpi.barrier();
    return outcome;
  }
  FinalInputs in;
  in.config = &c;
  in.data = &d;
  in.spec = &spec;
  in.model = model;
  in.engine = &engine;
  in.n_shards = n_shards;
  in.started = t_start;
  in.shard_major = shard_major;
  in.saved = &saved;
  in.history_path = history_path;
  write_final_outputs(mpi, store, board, in, outcome);
  return outcome;
}

}  // namespace edi::cluster
