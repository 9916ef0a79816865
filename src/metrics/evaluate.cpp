#include "edi/metrics/evaluate.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/version.hpp"
#include "eval_parts.hpp"

namespace edi::metrics {

namespace fs = std::filesystem;
using detail::json;

namespace {

using Clock = std::chrono::steady_clock;

void check_config(const EvalConfig& cfg) {
  if (cfg.bootstrap.resamples < 0 || cfg.bootstrap.resamples > 1000000)
    throw ConfigError("--bootstrap " + std::to_string(cfg.bootstrap.resamples) + ": expected an integer in [0, 1000000]");
  if (cfg.batch < 0) throw ConfigError("--batch " + std::to_string(cfg.batch) + ": expected auto or an integer >= 1");
}

/// The header of metrics.json: format, provenance of the evaluation, the run, the settings, the counts.
json header_json(const detail::RunInputs& in, const EvalConfig& cfg) {
  const detail::RunMeta& m = in.meta;
  const std::size_t K = in.identities;
  json j;
  j["format"] = "edi-anon-metrics";
  j["version"] = 2;
  j["code_version"] = std::string(version()) + " (" + git_describe() + ")";
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  j["host"] = host;
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  j["created"] = date;
  j["run"] = {{"dir", fs::absolute(in.rundir).lexically_normal().string()},
              {"method", m.method},
              {"operator", m.op},
              {"description", m.summary.value("run", std::string())},
              {"manifest_hash", m.manifest.hash()},
              {"passes_run", m.passes_run},
              {"seconds", m.run_seconds},
              {"model", m.model_ref},
              {"options", m.options}};
  if (in.snapshot.is_object()) {
    j["run"]["snapshot"] = in.snapshot;
    j["run"]["of_run"] = fs::absolute(in.rundir.parent_path().parent_path()).lexically_normal().string();
  }
  const BootstrapSpec& b = cfg.bootstrap;
  j["config"] = {{"bootstrap", b.resamples}, {"seed", b.seed}, {"level", b.level}, {"attackers", cfg.attackers},
                 {"adaptive_epochs", cfg.adaptive_epochs}};
  const std::size_t n = in.n();
  j["images"] = n;
  j["images_by_split"] = {{"train", in.train.size()}, {"val", n - in.train.size() - in.test.size()}, {"test", in.test.size()}};
  j["identities"] = K;
  const double guess5 = 100.0 * std::min<double>(5.0, static_cast<double>(K)) / static_cast<double>(K);
  j["random_guess_percent"] = {{"top1", 100.0 / static_cast<double>(K)}, {"top5", guess5}};
  return j;
}

/// metrics-images.csv: the fixed columns, then every block's columns in order.
std::string per_image_csv(const detail::RunInputs& in, const std::vector<detail::Column>& columns) {
  std::vector<std::string> head = {"id", "split", "identity", "status", "stop_pass"};
  for (const auto& [name, v] : columns) head.push_back(name);
  std::string csv = csv_line(head);
  for (std::size_t i = 0; i < in.n(); ++i) {
    const detail::Item& it = in.items[i];
    std::vector<std::string> row = {it.id, data::split_name(it.split), std::to_string(it.label), it.status,
                                    std::to_string(it.stop_pass)};
    for (const auto& [name, v] : columns) row.push_back(v[i]);
    csv += csv_line(row);
  }
  return csv;
}

template <typename R>
void take(const R& r, std::vector<detail::Column>& columns, std::vector<std::string>& notes) {
  columns.insert(columns.end(), r.columns.begin(), r.columns.end());
  notes.insert(notes.end(), r.notes.begin(), r.notes.end());
}

/// The privacy section: the steering model, then each configured attacker.
json privacy_json(const detail::RunInputs& in, const EvalConfig& cfg, const detail::Log& say, MetricsReport& rep,
                  std::vector<detail::Column>& columns, std::vector<std::string>& notes) {
  const detail::SteeringResult steer = detail::evaluate_steering(in, cfg, say);
  take(steer, columns, notes);
  rep.steering_top1 = steer.top1;
  rep.steering_top5 = steer.top5;
  json privacy;
  privacy["unit"] = "identity";
  privacy["bootstrap"] = cfg.bootstrap.resamples;
  privacy["seed"] = cfg.bootstrap.seed;
  privacy["level"] = cfg.bootstrap.level;
  privacy["identities_probed"] = count_clusters(in.labels);
  privacy["steering"] = steer.j;
  json attackers = json::array();
  for (const std::string& spec : cfg.attackers) {
    detail::AttackerResult a;
    if (spec == "lbph") a = detail::evaluate_lbph(in, cfg, say);
    else if (spec == "faceapi") a = detail::evaluate_faceapi(in, cfg, steer, say);
    else if (spec == "faceres") a = detail::evaluate_faceres(in, cfg, steer, say);
    else if (spec == "adaptive") a = detail::evaluate_adaptive(in, cfg, say);
    else a = detail::evaluate_classifier_attacker(in, cfg, steer, spec, say);
    take(a, columns, notes);
    if (a.headline) rep.attacker_top1[a.name] = *a.headline;
    attackers.push_back(a.j);
  }
  privacy["attackers"] = attackers;
  return privacy;
}

MetricsReport evaluate_one(const fs::path& rundir, const EvalConfig& cfg, const std::function<void(const std::string&)>& log);

}  // namespace

std::pair<std::string, std::string> parse_utility_spec(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw ConfigError("--utility " + text + ": expected TASK=MODEL (e.g. gender=gender.pt or age=faceapi:age-gender)");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

namespace {
MetricsReport evaluate_one(const fs::path& rundir, const EvalConfig& cfg, const std::function<void(const std::string&)>& log) {
  const auto t0 = Clock::now();
  const detail::RunInputs in = detail::read_run_inputs(rundir, log);
  MetricsReport rep;
  rep.images = in.n();
  rep.identities = in.identities;
  rep.random_guess_percent = 100.0 / static_cast<double>(in.identities);
  json j = header_json(in, cfg);
  std::vector<detail::Column> columns;
  std::vector<std::string> notes = in.notes;
  j["privacy"] = privacy_json(in, cfg, log, rep, columns, notes);
  json utility = json::array();
  for (const auto& [task, ref_raw] : cfg.utility) {
    const detail::UtilityResult u = detail::evaluate_utility(in, cfg, task, ref_raw, log);
    take(u, columns, notes);
    if (u.macro_f1) rep.utility_macro_f1[task] = *u.macro_f1;
    utility.push_back(u.j);
  }
  j["utility"] = utility;
  if (log) log("quality: PSNR, SSIM, changed share");
  const detail::QualityResult q = detail::evaluate_quality(in, cfg.bootstrap);
  take(q, columns, notes);
  rep.psnr = q.psnr;
  rep.ssim = q.ssim;
  rep.changed_share = q.changed;
  j["quality"] = q.j;
  j["notes"] = notes;
  j["evaluate_seconds"] = std::chrono::duration<double>(Clock::now() - t0).count();
  rep.notes = notes;
  rep.json = j.dump(2) + "\n";
  if (cfg.write_files) {
    write_file_atomic(rundir / "metrics-images.csv", per_image_csv(in, columns));
    write_metrics_json(rundir / "metrics.json", rep);
  }
  return rep;
}
}  // namespace

MetricsReport evaluate_run(const fs::path& rundir, const EvalConfig& cfg, const std::function<void(const std::string&)>& log) {
  check_config(cfg);
  MetricsReport rep = evaluate_one(rundir, cfg, log);
  if (is_snapshot_dir(rundir)) return rep;
  for (const fs::path& snap : list_snapshots(rundir)) {
    if (log) log("snapshot " + snap.filename().string() + ": " + snap.string());
    evaluate_one(snap, cfg, log);
    rep.snapshots.push_back(snap);
  }
  return rep;
}

void write_metrics_json(const fs::path& path, const MetricsReport& report) { write_file_atomic(path, report.json); }

}  // namespace edi::metrics
