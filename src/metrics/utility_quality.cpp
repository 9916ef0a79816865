// Utility (one block per task) and quality blocks of evaluate.
#include <algorithm>
#include <cmath>

#include "edi/core/error.hpp"
#include "edi/models/registry.hpp"
#include "eval_parts.hpp"

namespace edi::metrics::detail {

namespace {

UtilityResult regression_utility(const RunInputs& in, const BootstrapSpec& b, json u, const std::string& task,
                                 const at::Tensor& za, const at::Tensor& zo) {
  std::vector<double> err, va, vo;
  for (std::size_t i = 0; i < in.n(); ++i) {
    va.push_back(za[static_cast<std::int64_t>(i)][0].item<double>());
    vo.push_back(zo[static_cast<std::int64_t>(i)][0].item<double>());
    err.push_back(std::abs(va.back() - vo.back()));
  }
  u["kind"] = "regression";
  u["labels"] = false;
  u["mae_vs_original"] = rate_json(cluster_mean(err, in.labels, b, "utility/" + task + "/mae"));
  u["note"] = "no per-image numeric labels: MAE between the predictions on the anonymized and on the original image";
  UtilityResult r;
  r.j = u;
  r.columns.emplace_back(task + "_pred", number_column(va));
  r.columns.emplace_back(task + "_pred_original", number_column(vo));
  return r;
}

/// Accuracy, macro-F1 (intervals), per-class F1 and the same on the originals, over the labelled images.
void labelled_scores(const RunInputs& in, const BootstrapSpec& b, const std::string& task, int t, const std::vector<int>& pa,
                     const std::vector<int>& po, json& u, UtilityResult& r, std::vector<std::string>& truth_col) {
  const auto& classes = u["classes"].get<std::vector<std::string>>();
  const int C = static_cast<int>(classes.size());
  std::vector<std::size_t> idx;
  std::vector<int> truth(in.n(), -1);
  for (std::size_t i = 0; i < in.n(); ++i) {
    truth[i] = in.meta.manifest.entries[in.items[i].entry].attributes[static_cast<std::size_t>(t)];
    truth_col[i] = std::to_string(truth[i]);
    if (truth[i] >= 0) idx.push_back(i);
  }
  std::vector<double> hits;
  std::vector<int> ids;
  for (std::size_t i : idx) hits.push_back(pa[i] == truth[i] ? 100.0 : 0.0), ids.push_back(in.labels[i]);
  const Rate acc = cluster_rate(hits, ids, b, "utility/" + task + "/accuracy");
  Rate f1;
  f1.n_identities = count_clusters(ids);
  static_cast<Interval&>(f1) = cluster_bootstrap(
      ids,
      [&](const std::vector<std::size_t>& sel) {
        std::vector<std::size_t> s;
        for (std::size_t k : sel) s.push_back(idx[k]);
        return 100.0 * classification_scores(truth, pa, C, s).macro_f1;
      },
      b, "utility/" + task + "/macro_f1");
  f1.defined = !idx.empty();
  const ClassScores cs = classification_scores(truth, pa, C, idx);
  const ClassScores co = classification_scores(truth, po, C, idx);
  json pcf = json::object(), pco = json::object(), sup = json::object();
  for (int c = 0; c < C; ++c) {
    const auto cc = static_cast<std::size_t>(c);
    pcf[classes[cc]] = std::isnan(cs.per_class_f1[cc]) ? json(nullptr) : json(100.0 * cs.per_class_f1[cc]);
    pco[classes[cc]] = std::isnan(co.per_class_f1[cc]) ? json(nullptr) : json(100.0 * co.per_class_f1[cc]);
    sup[classes[cc]] = cs.support[cc];
  }
  u["labelled_images"] = idx.size();
  u["accuracy"] = rate_json(acc);
  u["macro_f1"] = rate_json(f1);
  u["per_class_f1"] = pcf;
  u["support"] = sup;
  u["original"] = {{"accuracy", 100.0 * co.accuracy}, {"macro_f1", 100.0 * co.macro_f1}, {"per_class_f1", pco}};
  r.macro_f1 = f1;
}

}  // namespace

UtilityResult evaluate_utility(const RunInputs& in, const EvalConfig& cfg, const std::string& task, const std::string& ref_raw,
                               const Log& say) {
  // "gender/faceapi" names a second gender model: the labels are the base task's.
  const std::string base = task.substr(0, task.find('/'));
  const std::string ref = resolve_model(ref_raw, in.rundir).string();
  models::LoadOptions lo;
  lo.device = cfg.device;
  lo.task = base;
  std::unique_ptr<models::Classifier> model;
  try {
    model = models::load_classifier(ref, lo);
  } catch (const Error& e) {
    UtilityResult r;
    r.j = {{"task", task}, {"model", ref_raw}, {"available", false}, {"reason", e.what()}};
    r.notes.push_back("utility " + task + " not available: " + e.what());
    return r;
  }
  if (say) say("utility " + task + ": " + ref_raw);
  const at::Tensor za = predict_logits(*model, in.anon, cfg.batch, progress_label(in, "utility " + task + " (anonymized)"));
  const at::Tensor zo = predict_logits(*model, in.origs, cfg.batch, progress_label(in, "utility " + task + " (originals)"));
  const auto& classes = model->info().classes;
  json u = {{"task", task}, {"label_task", base}, {"model", ref_raw}, {"available", true}, {"classes", classes}};
  if (za.size(1) == 1) return regression_utility(in, cfg.bootstrap, u, task, za, zo);  // face-api age in years
  const std::vector<int> pa = argmax_rows(za), po = argmax_rows(zo);
  const data::Manifest& manifest = in.meta.manifest;
  const int t = manifest.task_index(base);
  const bool labelled = t >= 0 && manifest.tasks[static_cast<std::size_t>(t)].classes == classes;
  u["kind"] = "classification";
  u["labels"] = labelled;
  std::vector<double> agree;
  for (std::size_t i = 0; i < in.n(); ++i) agree.push_back(pa[i] == po[i] ? 100.0 : 0.0);
  u["agreement_with_original"] = rate_json(cluster_rate(agree, in.labels, cfg.bootstrap, "utility/" + task + "/agreement"));
  UtilityResult r;
  std::vector<std::string> truth_col(in.n());
  if (labelled) {
    labelled_scores(in, cfg.bootstrap, task, t, pa, po, u, r, truth_col);
  } else {
    u["note"] = t < 0 ? "the data set has no labels for this task: agreement with the prediction on the original only"
                      : "the model's classes differ from the data set's labels for this task: agreement only";
  }
  r.j = u;
  r.columns.emplace_back(task + "_label", truth_col);
  r.columns.emplace_back(task + "_pred", int_column(pa));
  r.columns.emplace_back(task + "_pred_original", int_column(po));
  return r;
}

namespace {
json passes_to_stop(const std::vector<Item>& items) {
  json hist = json::object();
  std::vector<double> stops;
  std::size_t never = 0;
  for (const auto& it : items) {
    if (it.stop_pass < 0) {
      ++never;
      continue;
    }
    stops.push_back(it.stop_pass);
    const std::string key = std::to_string(it.stop_pass);
    hist[key] = hist.value(key, 0) + 1;
  }
  return {{"histogram", hist},
          {"never_stopped", never},
          {"mean", stops.empty() ? json(nullptr) : json(bootstrap_mean(stops, {0, 0, 0.95}, "").value)},
          {"median", stops.empty() ? json(nullptr) : json(percentile(stops, 50))},
          {"max", stops.empty() ? json(nullptr) : json(*std::max_element(stops.begin(), stops.end()))}};
}
}  // namespace

QualityResult evaluate_quality(const RunInputs& in, const BootstrapSpec& b) {
  const std::size_t n = in.n();
  std::vector<double> vp(n), vs(n), vc(n), finite_p;
  std::vector<int> finite_ids;
  std::size_t unchanged = 0;
  Progress progress(progress_label(in, "quality"), n, "images");
  for (std::size_t i = 0; i < n; ++i, progress.add()) {
    vp[i] = psnr(in.anon_mats[i], in.orig_mats[i]);
    vs[i] = ssim(in.anon_mats[i], in.orig_mats[i]);
    vc[i] = 100.0 * changed_share(in.anon_mats[i], in.orig_mats[i]);
    if (std::isfinite(vp[i])) finite_p.push_back(vp[i]), finite_ids.push_back(in.labels[i]);
    else ++unchanged;
  }
  progress.finish();
  QualityResult q;
  q.psnr = cluster_mean(finite_p, finite_ids, b, "quality/psnr");
  q.ssim = cluster_mean(vs, in.labels, b, "quality/ssim");
  q.changed = cluster_mean(vc, in.labels, b, "quality/changed");
  q.j = {{"psnr_db", rate_json(q.psnr)},
         {"psnr_median_db", finite_p.empty() ? json(nullptr) : json(percentile(finite_p, 50))},
         {"psnr_note", "mean over changed images; unchanged images (PSNR = inf) are counted in 'unchanged_images'"},
         {"unchanged_images", unchanged},
         {"ssim", rate_json(q.ssim)},
         {"changed_share_percent", rate_json(q.changed)},
         {"passes_to_stop", passes_to_stop(in.items)}};
  q.columns.emplace_back("psnr", number_column(vp));
  q.columns.emplace_back("ssim", number_column(vs));
  q.columns.emplace_back("changed_percent", number_column(vc));
  return q;
}

}  // namespace edi::metrics::detail
