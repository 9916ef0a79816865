#include "edi/dist/runner.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "edi/core/context.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/dist/checkpoint.hpp"
#include "edi/dist/results.hpp"
#include "edi/dist/signals.hpp"
#include "edi/engine/bench.hpp"
#include "edi/engine/steering.hpp"
#include "edi/version.hpp"

namespace edi::dist {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool option_is_operational(const std::string& name) {
  static const std::set<std::string> kOperational = {"threads", "verbose", "out", "data", "labels", "device", "config", "no-images",
                                                     "examples", "checkpoint-every"};
  return kOperational.count(name) > 0;
}

std::string config_json(const engine::RunConfig& c) {
  json j = json::object();
  for (const auto& [k, v] : c.options)
    if (!option_is_operational(k)) j[k] = v;
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

/// The run directory's provenance record; a resume must match it.
json make_provenance(const engine::RunConfig& c, const data::Manifest& m, const std::string& model_sha) {
  json p;
  p["format"] = "edi-anon-provenance";
  p["version"] = 1;
  p["config"] = json::parse(config_json(c));
  p["config_sha256"] = sha256_hex(config_json(c));
  p["model"] = {{"reference", c.model}, {"sha256", model_sha}};
  p["manifest_sha256"] = m.hash();
  p["data_root"] = m.data_root;
  p["code_version"] = std::string(version()) + " (" + git_describe() + ")";
  p["created"] = utc_now();
  p["host"] = host_name();
  return p;
}

void check_resume(const fs::path& path, const json& stored, const json& now) {
  std::vector<std::string> diffs;
  if (stored.value("config_sha256", "") != now["config_sha256"]) {
    const json& a = stored["config"];
    const json& b = now["config"];
    std::set<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
    for (const auto& k : keys) {
      const std::string va = a.contains(k) ? a[k].get<std::string>() : "(unset)";
      const std::string vb = b.contains(k) ? b[k].get<std::string>() : "(unset)";
      if (va != vb) diffs.push_back("--" + k + " was " + va + ", now " + vb);
    }
  }
  if (stored["model"].value("sha256", "") != now["model"]["sha256"])
    diffs.push_back("model " + now["model"]["reference"].get<std::string>() + " differs (sha256 " +
                    stored["model"].value("sha256", "").substr(0, 12) + " vs " + now["model"]["sha256"].get<std::string>().substr(0, 12) + ")");
  if (stored.value("manifest_sha256", "") != now["manifest_sha256"]) diffs.push_back("the data set differs from the stored manifest");
  if (!diffs.empty()) {
    std::string text;
    for (const auto& d : diffs) text += (text.empty() ? "" : "; ") + d;
    throw ConfigError(path.string() + ": refusing to resume a run with a different setup: " + text +
                      " (use a new --out, or the original options)");
  }
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

/// A shard as held by one rank.
struct Held {
  engine::Shard shard;
  int committed = -1;  ///< the state is through this pass (on disk unless dirty)
  bool dirty = false;  ///< in memory ahead of its checkpoint
  Clock::time_point saved = Clock::now();  ///< last commit (or load)
};

}  // namespace

std::string describe_interruption(const DistRunOutcome& o) {
  std::ostringstream m;
  m << "stopped by signal " << o.signal;
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
  {
    engine::EngineSpec check = c.engine;
    check.batch = std::max(check.batch, 1);
    engine::validate(check);
  }
  DistRunOutcome outcome;
  const fs::path ckdir = c.out / "checkpoints";

  // --- preparation on rank 0: manifest, provenance, resume check ---------
  on_root(mpi, [&] {
    const bool existing = fs::exists(c.out / "provenance.json");
    engine::RunData d = engine::prepare_data(c);
    create_private_dir(c.out);
    create_private_dir(ckdir);
    // One hash per steering model (and the judge), in order.
    std::string model_sha;
    auto refs = engine::split_model_list(c.model);
    if (!c.judge.empty()) refs.push_back(c.judge);
    for (const auto& ref : refs) {
      std::error_code ec;
      const std::string h = ref.rfind("faceapi:", 0) == 0 || ref.rfind("human:", 0) == 0 ? "builtin:" + ref : fs::is_regular_file(ref, ec) ? sha256_file(ref) : std::string();
      model_sha += (model_sha.empty() ? "" : ",") + h;
    }
    const json now = make_provenance(c, d.manifest, model_sha);
    if (existing) check_resume(c.out / "provenance.json", json::parse(read_file(c.out / "provenance.json")), now);
    else write_file_atomic(c.out / "provenance.json", now.dump(2) + "\n");
    remove_stale_temp_files(c.out);
  });
  mpi.barrier();
  const engine::RunData d = [&] {
    engine::RunConfig rc = c;  // the manifest exists now: every rank reads it
    return engine::prepare_data(rc);
  }();
  engine::SteeringModels models = engine::load_steering_models(c.model, c.judge, c.device, d.manifest, c.resize);
  models::Classifier* model = &models.primary();
  const int size = model->info().input_size;
  const auto plan = engine::make_shards(d.selected, c.shard_size);
  const int n_shards = static_cast<int>(plan.size());

  // --- run state: batch size and the per-pass history (rank 0) -----------
  const fs::path run_state_path = ckdir / "run.json";
  json run_state = json::object();
  std::string state_text;
  on_root(mpi, [&] {
    if (fs::exists(run_state_path)) run_state = json::parse(read_file(run_state_path));
    if (!run_state.contains("batch")) {
      int batch = c.engine.batch;
      if (batch <= 0) {
        engine::DecodedShard probe = engine::decode_shard(d.manifest, plan.front(), size, c.resize);
        batch = engine::choose_batch(*model, probe.images, probe.labels);
      }
      run_state["batch"] = batch;
      run_state["passes"] = json::array();
    }
    state_text = run_state.dump();
  });
  run_state = json::parse(mpi.broadcast(state_text));
  engine::EngineSpec spec = c.engine;
  spec.batch = run_state["batch"].get<int>();
  engine::Engine engine(spec, models);
  const bool conventional = spec.method == engine::Method::kConventional;
  const int limit = spec.pass_limit();  // 0 for a conventional baseline and the control (method none)

  // --- where each shard stands (rank 0 reads the checkpoint headers) ------
  std::vector<std::int64_t> committed(static_cast<std::size_t>(n_shards), -1);
  on_root(mpi, [&] {
    for (int s = 0; s < n_shards; ++s) {
      std::string problem;
      const fs::path p = shard_checkpoint_path(c.out, s);
      if (!fs::exists(p)) continue;
      auto ck = read_shard_checkpoint(p, &problem);
      if (!ck) {
        std::fprintf(stderr, "edi-anon run: warning: %s; shard %d is recomputed\n", problem.c_str(), s);
        fs::remove(p);
        continue;
      }
      committed[static_cast<std::size_t>(s)] = ck->pass;
    }
  });
  {
    std::vector<std::int64_t> tmp = committed;  // only rank 0 filled it: summing broadcasts it
    if (!mpi.root()) std::fill(tmp.begin(), tmp.end(), 0);
    mpi.sum(tmp);
    committed = tmp;
  }
  const std::int64_t min_committed = committed.empty() ? -1 : *std::min_element(committed.begin(), committed.end());
  // The pass history (run.json) is written by rank 0 after every shard of a
  // pass is committed, and before any rank starts the next pass (the claim
  // board's barrier). A crash between the two leaves every shard committed
  // through pass P (or final) and the history ending at P-1: pass P is then
  // recounted from the shards' records, which is exact because nothing is
  // committed beyond P but final shards, whose records no longer change.
  int history_next = 0;  // passes 0 .. history_next-1 are in the history
  for (const auto& p : run_state["passes"])
    if (p["pass"].get<int>() == history_next) ++history_next;
  const bool loop_ended = !run_state["passes"].empty() && run_state["passes"].back()["active"].get<std::int64_t>() == 0;
  int start_pass = static_cast<int>(min_committed + 1);
  if (!loop_ended && history_next < start_pass) {
    if (min_committed != limit && history_next < min_committed && mpi.root())
      std::fprintf(stderr,
                   "edi-anon run: warning: %s has the pass history up to pass %d but every shard is committed through "
                   "pass %lld; the passes in between are recounted from the final shard state and are not exact\n",
                   run_state_path.c_str(), history_next - 1, static_cast<long long>(min_committed));
    start_pass = history_next;
  }
  outcome.start_pass = start_pass;
  outcome.resumed = std::any_of(committed.begin(), committed.end(), [](std::int64_t v) { return v >= 0; });
  outcome.last_complete_pass = start_pass - 1;

  std::map<int, Held> held;  // shards this rank holds in memory
  std::vector<data::QuarantineItem> quarantined_here;
  const std::string config_sha = sha256_hex(config_json(c));

  // Load a shard this rank does not hold: decode originals, restore, catch up to `upto`.
  auto load = [&](int s, int upto) -> Held& {
    auto it = held.find(s);
    if (it != held.end()) return it->second;
    engine::DecodedShard ds = engine::decode_shard(d.manifest, plan[static_cast<std::size_t>(s)], size, c.resize);
    quarantined_here.insert(quarantined_here.end(), ds.quarantined.begin(), ds.quarantined.end());
    Held h{engine.make_shard(s, std::move(ds.ids), ds.images, ds.labels), -1};
    std::string problem;
    const fs::path p = shard_checkpoint_path(c.out, s);
    if (fs::exists(p)) {
      if (auto ck = read_shard_checkpoint(p, &problem)) {
        restore_shard(h.shard, *ck);
        h.committed = ck->pass;
      } else {
        std::fprintf(stderr, "edi-anon run: warning: %s; shard %d is recomputed\n", problem.c_str(), s);
      }
    }
    if (h.committed < 0 && conventional) engine.apply_conventional(h.shard);
    // A recomputed shard catches up alone (no halt happened before `upto`).
    for (int p2 = h.committed + 1; p2 <= upto; ++p2) {
      engine.evaluate(h.shard, p2);
      engine.perturb(h.shard, p2);
      h.committed = p2;
      h.dirty = true;
    }
    return held.emplace(s, std::move(h)).first->second;
  };

  // A shard with no active image is final: it is committed as of the last
  // pass, so that a resume never replays it.
  double checkpoint_seconds = 0;
  auto save = [&](int s, Held& h, int as_of) {
    const auto t0 = Clock::now();
    write_shard_checkpoint(shard_checkpoint_path(c.out, s), h.shard, as_of, config_sha);
    h.committed = as_of;
    h.dirty = false;
    h.saved = Clock::now();
    checkpoint_seconds += std::chrono::duration<double>(h.saved - t0).count();
  };
  // After a shard's pass: commit it, or with --checkpoint-every only when its
  // last commit is that old (a final shard and a signal always commit).
  const bool interval = c.checkpoint_every > 0;
  auto finish = [&](int s, Held& h, int pass, std::int64_t active) {
    if (!interval || active == 0 || stop_requested() ||
        std::chrono::duration<double>(Clock::now() - h.saved).count() >= c.checkpoint_every) {
      save(s, h, active == 0 ? limit : pass);
    } else {
      h.committed = pass;
      h.dirty = true;
    }
  };
  auto commit_dirty = [&] {
    for (auto& [s, h] : held)
      if (h.dirty) save(s, h, h.committed);
  };

  ClaimBoard board(mpi, std::max(n_shards, 1));
  // Recorded passes are authoritative: a pass rerun because a shard is
  // recomputed (its checkpoint was corrupt) keeps its recorded counts, since
  // shards committed further can only be counted as they stand now; the
  // dataset rule's halt decision uses the recorded risk for the same reason.
  std::vector<engine::PassReport> recorded;  // passes 0 .. history_next-1
  for (const auto& p : run_state["passes"]) {
    engine::PassReport r;
    r.pass = p["pass"];
    r.risk_percent = p["risk_percent"];
    r.active = p["active"];
    r.identified = p["identified"];
    r.total = p["total"];
    r.seconds = p["seconds"];
    r.image_passes_per_s = p["rate"];
    if (r.pass < history_next && r.pass == static_cast<int>(recorded.size())) recorded.push_back(r);
  }
  std::vector<engine::PassReport> history(recorded.begin(),
                                          recorded.begin() + std::min<std::ptrdiff_t>(start_pass, static_cast<std::ptrdiff_t>(recorded.size())));

  bool interrupted = false;
  const auto t_loop = Clock::now();
  double pass_time_sum = 0;
  int passes_timed = 0;
  for (int pass = start_pass; pass <= limit; ++pass) {
    const auto t0 = Clock::now();
    const std::int64_t ip0 = engine.timing().image_passes;
    board.reset();
    // This rank's order: shards it holds first, then the rest by index.
    std::vector<int> order;
    for (const auto& [s, h] : held) order.push_back(s);
    for (int s = 0; s < n_shards; ++s)
      if (!held.count(s)) order.push_back(s);
    std::set<int> touched;
    // A shard ahead of its checkpoint stays with its holder: it is claimed
    // before any rank claims others (another rank would recompute it from the
    // older checkpoint).
    std::set<int> mine;
    if (interval) {
      for (const auto& [s, h] : held)
        if (h.dirty && board.claim(s)) mine.insert(s);
      touched = mine;
      mpi.barrier();
    }
    engine::PassCounts counts;
    bool stopped_claiming = false;
    std::int64_t shards_done = 0;  // shards committed through `pass` (per-image and fixed rules)
    const bool dataset_rule = spec.stop == engine::StopRule::kDataset && spec.method == engine::Method::kEdi;
    for (int s : order) {
      if (stop_requested()) {
        stopped_claiming = true;
        break;
      }
      if (!mine.count(s) && !board.claim(s)) continue;
      Held& h = load(s, pass - 1);
      touched.insert(s);
      if (h.committed >= pass) {  // done before an interruption: only count it
        for (const auto& r : h.shard.records) {
          counts.identified += r.identified;
          counts.active += r.status == engine::Status::kActive;
        }
        counts.total += static_cast<std::int64_t>(h.shard.size());
        ++shards_done;
        continue;
      }
      engine::PassCounts ev = engine.evaluate(h.shard, pass);
      if (!dataset_rule) {
        ev = engine.perturb(h.shard, pass, false);
        finish(s, h, pass, ev.active);
        ++shards_done;
      }
      counts.identified += ev.identified;
      counts.active += ev.active;
      counts.total += ev.total;
    }
    // Drop shards this rank did not process: their newest state is another rank's.
    for (auto it = held.begin(); it != held.end();) it = touched.count(it->first) ? std::next(it) : held.erase(it);

    std::vector<std::int64_t> red{counts.identified, counts.active, counts.total, engine.timing().image_passes - ip0,
                                  stopped_claiming ? 1 : 0, shards_done};
    mpi.sum(red);
    // A rank may stop claiming after the others took every remaining shard: the
    // pass is then complete and is recorded and printed like any other before
    // the run stops, so that a resume neither replays nor loses it.
    const bool signalled = red[4] > 0;
    if (signalled) {
      outcome.signal = static_cast<int>(mpi.max(static_cast<std::int64_t>(stop_signal())));
      commit_dirty();
    }
    if (signalled && red[5] < n_shards) {  // everything processed so far is committed
      interrupted = true;
      break;
    }
    const bool is_recorded = pass < static_cast<int>(recorded.size());
    const double risk = is_recorded ? recorded[static_cast<std::size_t>(pass)].risk_percent : red[2] ? 100.0 * red[0] / red[2] : 0.0;
    std::int64_t active = red[1];
    if (dataset_rule) {
      const bool halt = risk <= spec.target_risk;
      active = 0;
      for (auto& [s, h] : held) {
        if (h.committed >= pass) {
          for (const auto& r : h.shard.records) active += r.status == engine::Status::kActive;
          continue;
        }
        const engine::PassCounts pc = engine.perturb(h.shard, pass, halt);
        finish(s, h, pass, pc.active);
        active += pc.active;
      }
      std::vector<std::int64_t> a{active};
      mpi.sum(a);
      active = a[0];
    }
    engine::PassReport rep;
    rep.pass = pass;
    rep.active = active;
    rep.identified = red[0];
    rep.total = red[2];
    rep.risk_percent = risk;
    rep.seconds = mpi.max(std::chrono::duration<double>(Clock::now() - t0).count());
    rep.image_passes_per_s = static_cast<double>(red[3]) / std::max(rep.seconds, 1e-9);
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
      line << "rank " << mpi.rank() << ": " << touched.size() << " shard(s), " << (engine.timing().image_passes - ip0)
           << " image-passes";
      per_rank = mpi.gather(line.str());
    }
    if (mpi.root()) {
      json passes = json::array();
      for (const auto& r : history)
        passes.push_back({{"pass", r.pass}, {"risk_percent", r.risk_percent}, {"active", r.active}, {"identified", r.identified},
                          {"total", r.total}, {"seconds", r.seconds}, {"rate", r.image_passes_per_s}});
      run_state["passes"] = passes;
      write_file_atomic(run_state_path, run_state.dump(2) + "\n", Durability::kProcessCrash);
      // ETA: remaining passes at the mean pass time (an upper bound: images keep stopping).
      const double eta = active == 0 ? 0.0 : (limit - pass) * pass_time_sum / std::max(passes_timed, 1);
      if (print) print(rep, eta, per_rank);
    }
    outcome.last_complete_pass = pass;
    if (signalled) {
      interrupted = true;
      break;
    }
    if (active == 0) break;
  }
  commit_dirty();  // none after a normal end (final shards commit), kept as a guard
  std::vector<double> io{checkpoint_seconds, std::chrono::duration<double>(Clock::now() - t_loop).count()};
  mpi.sum(io);
  outcome.summary.checkpoint_seconds = io[0];
  outcome.summary.loop_seconds = io[1];
  outcome.interrupted = interrupted;
  if (outcome.interrupted) {
    mpi.barrier();
    return outcome;
  }

  // --- final outputs: images by every rank, tables and results.h5 by rank 0 ---
  board.reset();
  for (int s = 0; s < n_shards; ++s) {
    if (!board.claim(s)) continue;
    Held& h = load(s, -1);
    if (c.write_images) engine::write_images(c.out / "images", h.shard, c.png_bits);
  }
  std::string q_text;
  for (const auto& q : quarantined_here) q_text += q.path + "\t" + q.reason + "\n";
  const std::vector<std::string> q_all = mpi.gather(q_text);
  mpi.barrier();
  if (mpi.root()) {
    std::vector<engine::Shard> shards;
    for (int s = 0; s < n_shards; ++s) {
      auto it = held.find(s);
      if (it != held.end()) {
        shards.push_back(it->second.shard);
        continue;
      }
      std::string problem;
      auto ck = read_shard_checkpoint(shard_checkpoint_path(c.out, s), &problem);
      if (!ck) throw IoError(problem);
      engine::Shard sh;
      sh.index = s;
      sh.ids = ck->ids;
      sh.labels = ck->labels;
      sh.state = ck->state;
      sh.records = ck->records;
      shards.push_back(std::move(sh));
    }
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
    data::write_quarantine(quarantined, c.out / "quarantine.csv");
    std::vector<const engine::Shard*> views;
    engine::RunSummary& sum = outcome.summary;
    for (const auto& s : shards) {
      views.push_back(&s);
      for (const auto& r : s.records) {
        ++sum.images;
        sum.stopped += r.status == engine::Status::kStopped;
        sum.capped += r.status == engine::Status::kCapped;
        sum.stalled += r.status == engine::Status::kStalled;
        sum.fixed += r.status == engine::Status::kFixed;
      }
    }
    sum.quarantined = static_cast<std::int64_t>(quarantined.size());
    sum.passes = history;
    sum.passes_run = history.empty() ? 0 : history.back().pass;
    sum.final_risk_percent = history.empty() ? 0.0 : history.back().risk_percent;
    sum.timing = engine.timing();
    sum.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
    engine::write_outcomes(c.out / "outcomes.csv", d.manifest, views);
    engine::write_trajectories(c.out / "trajectories.csv", views);
    ResultsInfo info;
    info.config = c;
    info.spec = spec;
    info.provenance_json = read_file(c.out / "provenance.json");
    info.ranks = mpi.size();
    info.steering = &models;
    write_results(c.out / "results.h5", info, d.manifest, views, sum, *model);
    write_summary_json(c.out / "summary.json", info, d.manifest, sum);
  }
  mpi.barrier();
  return outcome;
}

}  // namespace edi::dist
