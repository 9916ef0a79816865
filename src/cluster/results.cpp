#include "edi/cluster/results.hpp"

#include <ATen/ATen.h>

#include <map>
#include <nlohmann/json.hpp>

#include "edi/core/context.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/cluster/h5.hpp"
#include "edi/cluster/runner.hpp"
#include "edi/explain/explain.hpp"
#include "edi/explain/select.hpp"
#include "edi/version.hpp"

namespace edi::cluster {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string operator_name(const engine::EngineSpec& s) {
  if (s.method == engine::Method::kNone) return "none";  // the control perturbs nothing
  return s.region ? perturb::region_name(*s.region) : s.op.name;
}

/// The per-image table and the trajectories, flattened in shard order.
struct PerImage {
  std::vector<std::string> ids;
  std::vector<std::int32_t> identity, stop_pass, escalation, stalls, rank, top1;
  std::vector<std::uint8_t> split, status, identified;
  std::vector<float> prob, psnr, changed, linf;
  std::vector<std::int32_t> t_image, t_pass, t_rank, t_top1;
  std::vector<float> t_prob, t_changed, t_psnr, t_linf;
};

PerImage flatten_images(const data::Manifest& m, const std::vector<const engine::Shard*>& shards) {
  std::map<std::string, const data::ManifestEntry*> by_id;
  for (const auto& e : m.entries) by_id[e.id] = &e;
  PerImage f;
  for (const engine::Shard* s : shards) {
    for (std::size_t i = 0; i < s->size(); ++i) {
      const auto& r = s->records[i];
      const auto& e = *by_id.at(s->ids[i]);
      const auto row = static_cast<std::int32_t>(f.ids.size());
      f.ids.push_back(s->ids[i]);
      f.identity.push_back(e.identity);
      f.split.push_back(static_cast<std::uint8_t>(e.split));
      f.status.push_back(static_cast<std::uint8_t>(r.status));
      f.stop_pass.push_back(r.stop_pass);
      f.escalation.push_back(r.escalation);
      f.stalls.push_back(r.stalls);
      f.identified.push_back(r.identified ? 1 : 0);
      const engine::TrajectoryPoint last = r.trajectory.empty() ? engine::TrajectoryPoint{} : r.trajectory.back();
      f.prob.push_back(last.true_prob);
      f.rank.push_back(last.true_rank);
      f.top1.push_back(last.top1);
      f.psnr.push_back(last.psnr);
      f.changed.push_back(last.changed_share);
      f.linf.push_back(last.linf);
      for (const auto& p : r.trajectory) {
        f.t_image.push_back(row);
        f.t_pass.push_back(p.pass);
        f.t_prob.push_back(p.true_prob);
        f.t_rank.push_back(p.true_rank);
        f.t_top1.push_back(p.top1);
        f.t_changed.push_back(p.changed_share);
        f.t_psnr.push_back(p.psnr);
        f.t_linf.push_back(p.linf);
      }
    }
  }
  return f;
}

/// Examples: the first E images, their pass-0 explanation and mask, and the result.
struct Examples {
  std::vector<std::string> ids;
  at::Tensor original, attribution, mask, anonymized;
};

Examples make_examples(const ResultsInfo& info, const data::Manifest& m, const std::vector<const engine::Shard*>& shards,
                       models::Classifier& model) {
  Examples ex;
  std::vector<at::Tensor> fin, lab;
  for (const engine::Shard* s : shards)
    for (std::size_t i = 0; i < s->size() && static_cast<int>(ex.ids.size()) < info.examples; ++i) {
      ex.ids.push_back(s->ids[i]);
      fin.push_back(s->state[static_cast<long>(i)]);
      lab.push_back(s->labels[static_cast<long>(i)]);
    }
  if (ex.ids.empty()) return ex;
  std::vector<std::size_t> idx;
  for (const auto& id : ex.ids)
    for (std::size_t k = 0; k < m.entries.size(); ++k)
      if (m.entries[k].id == id) idx.push_back(k);
  engine::DecodedShard ds = engine::decode_shard(m, idx, model.info().input_size, info.config.resize);
  ex.original = ds.images;
  ex.anonymized = at::stack(fin).contiguous();
  if (info.spec.method == engine::Method::kEdi && ds.ids.size() == ex.ids.size()) {
    std::vector<RngKey> keys;
    for (const auto& id : ex.ids) keys.push_back(explain::explain_key(info.spec.seed, id, 0));
    engine::SteeringModels one;
    one.steer.emplace_back(std::shared_ptr<models::Classifier>(), &model);  // aliasing: not owned
    const engine::Steerer steerer(info.steering ? *info.steering : one, info.spec.explain, info.spec.steering, info.spec.seed,
                                  [](float, int rank) { return rank == 0; });
    const engine::SteerResult r = steerer.explain(ex.original, at::stack(lab), ex.original, keys, ex.ids, 0);
    ex.attribution = r.attribution.contiguous();
    ex.mask = explain::select_mask(r.attribution, info.spec.select).to(at::kByte).contiguous();
  }
  return ex;
}

void write_header(H5::Group& root, const ResultsInfo& info, const data::Manifest& m, const engine::RunSummary& summary) {
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

void write_per_image(H5::H5File& file, const PerImage& f) {
  H5::Group g = file.createGroup("images");
  h5::write_strings(g, "id", f.ids);
  h5::write_vector(g, "identity", f.identity);
  h5::write_vector(g, "split", f.split);
  h5::write_vector(g, "status", f.status);
  h5::write_vector(g, "stop_pass", f.stop_pass);
  h5::write_vector(g, "escalation", f.escalation);
  h5::write_vector(g, "stalls", f.stalls);
  h5::write_vector(g, "final_true_prob", f.prob);
  h5::write_vector(g, "final_true_rank", f.rank);
  h5::write_vector(g, "final_top1", f.top1);
  h5::write_vector(g, "identified", f.identified);
  h5::write_vector(g, "psnr", f.psnr);
  h5::write_vector(g, "changed_share", f.changed);
  h5::write_vector(g, "linf", f.linf);
  H5::Group t = file.createGroup("trajectory");
  h5::write_vector(t, "image", f.t_image);
  h5::write_vector(t, "pass", f.t_pass);
  h5::write_vector(t, "true_prob", f.t_prob);
  h5::write_vector(t, "true_rank", f.t_rank);
  h5::write_vector(t, "top1", f.t_top1);
  h5::write_vector(t, "changed_share", f.t_changed);
  h5::write_vector(t, "psnr", f.t_psnr);
  h5::write_vector(t, "linf", f.t_linf);
}

void write_passes(H5::H5File& file, const engine::RunSummary& summary) {
  H5::Group p = file.createGroup("passes");
  std::vector<std::int32_t> pp;
  std::vector<double> pr, ps;
  std::vector<std::int64_t> pa;
  for (const auto& r : summary.passes) {
    pp.push_back(r.pass);
    pr.push_back(r.risk_percent);
    pa.push_back(r.active);
    ps.push_back(r.seconds);
  }
  h5::write_vector(p, "pass", pp);
  h5::write_vector(p, "risk_percent", pr);
  h5::write_vector(p, "active", pa);
  h5::write_vector(p, "seconds", ps);
}

void write_examples(H5::H5File& file, const Examples& e) {
  H5::Group ex = file.createGroup("examples");
  h5::write_strings(ex, "id", e.ids);
  auto dims_of = [](const at::Tensor& x) {
    std::vector<hsize_t> d;
    for (auto v : x.sizes()) d.push_back(static_cast<hsize_t>(v));
    return d;
  };
  if (e.original.defined() && e.original.numel()) h5::write_array(ex, "original", e.original.data_ptr<float>(), dims_of(e.original), true);
  if (e.anonymized.defined() && e.anonymized.numel())
    h5::write_array(ex, "anonymized", e.anonymized.data_ptr<float>(), dims_of(e.anonymized), true);
  if (e.attribution.defined()) h5::write_array(ex, "attribution", e.attribution.data_ptr<float>(), dims_of(e.attribution), true);
  if (e.mask.defined()) h5::write_array(ex, "mask", e.mask.data_ptr<std::uint8_t>(), dims_of(e.mask), true);
}

}  // namespace

void write_results(const fs::path& path, const ResultsInfo& info, const data::Manifest& m,
                   const std::vector<const engine::Shard*>& shards, const engine::RunSummary& summary, models::Classifier& model) {
  const PerImage per_image = flatten_images(m, shards);
  const Examples examples = make_examples(info, m, shards, model);
  h5::quiet();
  AtomicPath out(path);
  try {
    H5::H5File file(out.temp().string(), H5F_ACC_TRUNC);
    H5::Group root = file.openGroup("/");
    write_header(root, info, m, summary);
    write_per_image(file, per_image);
    write_passes(file, summary);
    write_examples(file, examples);
    file.flush(H5F_SCOPE_GLOBAL);
    file.close();
  } catch (const H5::Exception& e) {
    throw IoError(out.temp().string() + ": HDF5 write failed: " + e.getDetailMsg() + h5::take_error_bottom());
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
  j["passes"] = json::array();
  for (const auto& p : s.passes)
    j["passes"].push_back({{"pass", p.pass}, {"risk_percent", p.risk_percent}, {"active", p.active}, {"seconds", p.seconds}});
  j["timing"] = {{"seconds", s.seconds}, {"model", s.timing.model}, {"explain", s.timing.explain}, {"perturb", s.timing.perturb},
                 {"bookkeeping", s.timing.book}, {"image_passes", s.timing.image_passes},
                 {"checkpoint_seconds_all_ranks", s.checkpoint_seconds}, {"loop_seconds_all_ranks", s.loop_seconds},
                 {"checkpoint_share", s.loop_seconds > 0 ? s.checkpoint_seconds / s.loop_seconds : 0.0}};
  write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace edi::cluster
