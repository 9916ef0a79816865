#include "edi/cluster/results.hpp"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "edi/core/context.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/cluster/h5.hpp"
#include "edi/cluster/runner.hpp"
#include "edi/rundir/examples.hpp"
#include "edi/rundir/record.hpp"
#include "edi/rundir/sink.hpp"
#include "edi/version.hpp"

namespace edi::cluster {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string operator_name(const engine::EngineSpec& s) {
  if (s.method == engine::Method::kNone) return "none";  // the control perturbs nothing
  return s.region ? perturb::region_name(*s.region) : s.op.name;
}

void write_header(h5::Group& root, const ResultsInfo& info, const data::Manifest& m, const engine::RunSummary& summary) {
  const std::string cfg = config_json(info.config);
  const json prov = json::parse(info.provenance_json);
  h5::set_attr(root, "format", std::string("edi-anon-results"));
  h5::set_attr(root, "schema_version", std::int64_t{1});
  h5::set_attr(root, "code_version", std::string("edi-anon ") + version() + " (" + git_describe() + ")");
  h5::set_attr(root, "created", utc_now());
  h5::set_attr(root, "host", host_name());
  h5::set_attr(root, "run", engine::describe(info.spec));
  h5::set_attr(root, "method", std::string(engine::method_name(info.spec.method)));
  h5::set_attr(root, "operator", operator_name(info.spec));
  h5::set_attr(root, "config_json", cfg);
  h5::set_attr(root, "config_sha256", sha256_hex(cfg));
  h5::set_attr(root, "manifest_sha256", m.hash());
  h5::set_attr(root, "model", info.config.model);
  h5::set_attr(root, "model_sha256", prov["model"].value("sha256", ""));
  h5::set_attr(root, "ranks", std::int64_t{info.ranks});
  h5::set_attr(root, "batch", std::int64_t{info.spec.batch});
  h5::set_attr(root, "final_risk_percent", summary.final_risk_percent);
  h5::set_attr(root, "passes_run", std::int64_t{summary.passes_run});
  h5::write_strings(root, "classes", m.identities);
}

/// The passes table (results.h5 /passes and summary.json "passes").
rundir::Table passes_table(const engine::RunSummary& summary) {
  std::vector<std::int32_t> pass;
  std::vector<double> risk, seconds;
  std::vector<std::int64_t> active;
  for (const auto& r : summary.passes) {
    pass.push_back(r.pass);
    risk.push_back(r.risk_percent);
    active.push_back(r.active);
    seconds.push_back(r.seconds);
  }
  return {"passes", {{"pass", pass}, {"risk_percent", risk}, {"active", active}, {"seconds", seconds}}};
}

}  // namespace

void write_results(const fs::path& path, const ResultsInfo& info, const data::Manifest& m,
                   const std::vector<const engine::Shard*>& shards, const engine::RunSummary& summary, models::Classifier& model) {
  const std::vector<rundir::RunRecord> records = rundir::run_records(m, shards);
  const rundir::RecordColumns columns = rundir::flatten(records);
  const rundir::Examples examples = rundir::collect_examples(info.config.out, info.example_ids, sha256_hex(config_json(info.config)),
                                                             shards, m, model.info().input_size, info.config.resize);
  AtomicPath out(path);
  {
    h5::File file = h5::File::create(out.temp());
    h5::Group root = file.root();
    write_header(root, info, m, summary);
    h5::set_attr(root, "examples", static_cast<std::int64_t>(examples.ids.size()));
    rundir::H5Sink sink(file);
    sink.table(rundir::results_image_table(records, columns));
    sink.table(rundir::trajectory_table(columns));
    sink.table(passes_table(summary));
    rundir::write_examples(file, examples);
    file.flush();
    file.close();
  }
  out.commit();
}

void write_summary_json(const fs::path& path, const ResultsInfo& info, const data::Manifest& m, const engine::RunSummary& s) {
  json j;
  j["format"] = "edi-anon-run-summary";
  j["version"] = 1;
  j["code_version"] = std::string(version()) + " (" + git_describe() + ")";
  j["host"] = host_name();
  j["date"] = utc_now();
  j["run"] = engine::describe(info.spec);
  j["method"] = engine::method_name(info.spec.method);
  j["operator"] = operator_name(info.spec);
  j["batch"] = info.spec.batch;
  j["ranks"] = info.ranks;
  j["model"] = info.config.model;
  j["data"] = {{"root", m.data_root}, {"manifest_hash", m.hash()}, {"split", engine::split_selection_name(info.config.split)}};
  j["options"] = json::parse(config_json(info.config));
  j["counts"] = {{"images", s.images}, {"quarantined", s.quarantined}, {"stopped", s.stopped},
                 {"capped", s.capped}, {"stalled", s.stalled}, {"fixed", s.fixed}};
  j["final_risk_percent"] = s.final_risk_percent;
  j["passes_run"] = s.passes_run;
  rundir::JsonSink passes;
  passes.table(passes_table(s));
  j["passes"] = passes.document()["passes"];
  j["timing"] = {{"seconds", s.seconds}, {"model", s.timing.model}, {"explain", s.timing.explain}, {"perturb", s.timing.perturb},
                 {"bookkeeping", s.timing.book}, {"image_passes", s.timing.image_passes},
                 {"checkpoint_seconds_all_ranks", s.checkpoint_seconds}, {"checkpoint_commits_all_ranks", s.checkpoint_commits}, {"loop_seconds_all_ranks", s.loop_seconds},
                 {"checkpoint_share", s.loop_seconds > 0 ? s.checkpoint_seconds / s.loop_seconds : 0.0}};
  write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace edi::cluster
