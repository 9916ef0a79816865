// Privacy blocks of evaluate: the steering model and each attacker.
#include <opencv2/face.hpp>
#include <opencv2/imgproc.hpp>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/engine/runner.hpp"
#include "edi/models/faceapi.hpp"
#include "edi/models/gallery.hpp"
#include "edi/models/training.hpp"
#include "eval_parts.hpp"

namespace edi::metrics::detail {

namespace fs = std::filesystem;

namespace {

AttackerResult unavailable(const std::string& name, const std::string& kind, const std::string& why) {
  AttackerResult r;
  r.name = name;
  r.j = {{"name", name}, {"kind", kind}, {"available", false}, {"reason", why}};
  r.notes.push_back("attacker " + name + " not available: " + why);
  return r;
}

/// Top-1/top-5 rates of an attacker's ranks (all images when `with_all`, always the test split).
void report_ranks(AttackerResult& r, const RunInputs& in, const BootstrapSpec& b, const std::vector<int>& ranks, bool with_all) {
  json t1, t5;
  if (with_all) {
    t1["all"] = interval_json(hit_rate(ranks, in.all, 1, b, r.name + "/top1/all"));
    t5["all"] = interval_json(hit_rate(ranks, in.all, 5, b, r.name + "/top5/all"));
  }
  const Interval r1t = hit_rate(ranks, in.test, 1, b, r.name + "/top1/test");
  t1["test"] = interval_json(r1t);
  t5["test"] = interval_json(hit_rate(ranks, in.test, 5, b, r.name + "/top5/test"));
  r.j["top1"] = t1;
  r.j["top5"] = t5;
  r.headline = with_all ? hit_rate(ranks, in.all, 1, b, r.name + "/top1/all") : r1t;
  r.columns.emplace_back(r.name + "_rank", int_column(ranks));
  r.available = true;
}

cv::Mat grey8(const cv::Mat& rgb) {
  cv::Mat g, u;
  cv::cvtColor(rgb, g, cv::COLOR_RGB2GRAY);
  g.convertTo(u, CV_8U, 255.0);
  return u;
}

/// Rank of `label` among a StandardCollector's per-label nearest distances.
int collector_rank(const cv::Ptr<cv::face::StandardCollector>& coll, int label) {
  const auto res = coll->getResults(true);  // one (label, min distance) per label, nearest first
  for (std::size_t p = 0; p < res.size(); ++p)
    if (res[p].first == label) return static_cast<int>(p);
  return static_cast<int>(res.size());
}

}  // namespace

SteeringResult evaluate_steering(const RunInputs& in, const EvalConfig& cfg, const Log& say) {
  SteeringResult s;
  const std::size_t n = in.n();
  s.ref_raw = cfg.steering_model.empty() ? in.meta.model_ref : cfg.steering_model;
  s.sha = in.meta.model_sha;
  s.ref = resolve_model(s.ref_raw, in.rundir).string();
  s.ranks.assign(n, -1);
  s.j = {{"model", s.ref_raw}};
  bool from_images = false;
  try {
    if (s.ref.rfind("faceapi:", 0) != 0 && !s.sha.empty() && fs::is_regular_file(s.ref) && sha256_file(s.ref) != s.sha)
      throw ModelError(s.ref + ": file differs from the steering model the run used (sha256 mismatch)");
    auto model = engine::load_steering_model(s.ref, cfg.device, in.meta.manifest, in.meta.resize);
    if (say) say("steering model " + s.ref + ": re-identifying the anonymized images");
    s.ranks = true_ranks(predict_logits(*model, in.anon, cfg.batch), in.labels);
    from_images = true;
  } catch (const Error& e) {
    s.notes.push_back(std::string("steering model not reloaded (") + e.what() + "); its risk comes from outcomes.csv (in-loop state)");
    for (std::size_t i = 0; i < n; ++i) s.ranks[i] = in.items[i].outcome_rank;
  }
  const BootstrapSpec& b = cfg.bootstrap;
  s.j["source"] = from_images ? "anonymized images (images/*.png)" : "outcomes.csv (engine's in-loop state)";
  s.top1 = hit_rate(s.ranks, in.all, 1, b, "steering/top1/all");
  s.top5 = hit_rate(s.ranks, in.all, 5, b, "steering/top5/all");
  s.j["top1"] = {{"all", interval_json(s.top1)}, {"test", interval_json(hit_rate(s.ranks, in.test, 1, b, "steering/top1/test"))}};
  s.j["top5"] = {{"all", interval_json(s.top5)}, {"test", interval_json(hit_rate(s.ranks, in.test, 5, b, "steering/top5/test"))}};
  std::vector<int> in_loop(n);
  for (std::size_t i = 0; i < n; ++i) in_loop[i] = in.items[i].outcome_rank;
  s.j["top1_in_loop"] = interval_json(hit_rate(in_loop, in.all, 1, b, "steering/top1/in-loop"));
  s.j["steered"] = true;
  s.columns.emplace_back("steering_rank", int_column(s.ranks));
  return s;
}

AttackerResult evaluate_lbph(const RunInputs& in, const EvalConfig& cfg, const Log& say) {
  if (in.train.empty()) return unavailable("lbph", "lbph", "the run has no train-split images to train the recogniser on");
  if (say) say("attacker lbph: training on " + std::to_string(in.train.size()) + " original train-split images (grey)");
  std::vector<cv::Mat> tr;
  std::vector<int> tl;
  for (std::size_t i : in.train) {
    tr.push_back(grey8(in.orig_mats[i]));
    tl.push_back(in.labels[i]);
  }
  auto lbph = cv::face::LBPHFaceRecognizer::create();
  lbph->train(tr, tl);
  std::vector<int> ranks(in.n(), -1);
  for (std::size_t i = 0; i < in.n(); ++i) {
    auto coll = cv::face::StandardCollector::create();
    lbph->predict(grey8(in.anon_mats[i]), coll);
    ranks[i] = collector_rank(coll, in.labels[i]);
  }
  AttackerResult r;
  r.name = "lbph";
  r.j = {{"name", "lbph"}, {"kind", "lbph"}, {"available", true}, {"steered", false},
         {"model", "OpenCV LBPHFaceRecognizer (radius 1, 8 neighbours, 8x8 grid), grey"},
         {"trained_on", "original train-split images (" + std::to_string(in.train.size()) + ")"},
         {"tested_on", "anonymized images: all, and held-out test split"}};
  report_ranks(r, in, cfg.bootstrap, ranks, true);
  return r;
}

namespace {
/// Verification against each image's own original, and the impostor level on original pairs.
json faceapi_verification(const RunInputs& in, const at::Tensor& eo, const at::Tensor& ea, const BootstrapSpec& b,
                          std::vector<double>& own_dist) {
  const std::size_t n = in.n();
  const at::Tensor own = (ea - eo).pow(2).sum(1).sqrt();
  std::vector<double> verified, impostor;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = own[static_cast<std::int64_t>(i)].item<double>();
    own_dist.push_back(d);
    verified.push_back(d < models::kDlibVerificationThreshold ? 100.0 : 0.0);
    // Impostor pair: this original against the next image of another identity (originals).
    for (std::size_t s = 1; s < n; ++s) {
      const std::size_t o = (i + s) % n;
      if (in.labels[o] == in.labels[i]) continue;
      const double di = (eo[static_cast<std::int64_t>(i)] - eo[static_cast<std::int64_t>(o)]).pow(2).sum().sqrt().item<double>();
      impostor.push_back(di < models::kDlibVerificationThreshold ? 100.0 : 0.0);
      break;
    }
  }
  return {{"rule", "distance(anonymized, its original) < 0.6"},
          {"rate", interval_json(bootstrap_mean(verified, b, "faceapi/verify"))},
          {"mean_distance", interval_json(bootstrap_mean(own_dist, b, "faceapi/distance"))},
          {"impostor_rate", interval_json(bootstrap_mean(impostor, b, "faceapi/impostor"))},
          {"impostor_rule", "distance(original, original of the next image of another identity) < 0.6: the "
                            "verifier's false-accept level"}};
}
}  // namespace

AttackerResult evaluate_faceapi(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer, const Log& say) {
  if (steer.ref_raw == "faceapi:recognition")
    return unavailable("faceapi", "gallery", "face-api recognition steered this run (reported as the steering model)");
  if (in.train.empty()) return unavailable("faceapi", "gallery", "the run has no train-split images to enrol");
  std::shared_ptr<models::Embedder> emb;
  try {
    models::LoadOptions lo;
    lo.device = cfg.device;
    emb = models::load_faceapi_embedder("faceapi:recognition", lo);
  } catch (const Error& e) {
    return unavailable("faceapi", "gallery", e.what());
  }
  if (say) say("attacker faceapi: embedding originals and anonymized images");
  torch::NoGradGuard guard;
  const at::Tensor eo = models::embed_batched(*emb, in.origs, static_cast<std::size_t>(cfg.batch));
  const at::Tensor ea = models::embed_batched(*emb, in.anon, static_cast<std::size_t>(cfg.batch));
  // Gallery: per-identity centroid of the original train-split descriptors.
  const std::size_t K = in.identities;
  at::Tensor cent = torch::zeros({static_cast<std::int64_t>(K), eo.size(1)});
  std::vector<int> count(K, 0);
  for (std::size_t i : in.train) {
    cent[in.labels[i]] += eo[static_cast<std::int64_t>(i)];
    ++count[static_cast<std::size_t>(in.labels[i])];
  }
  for (std::size_t c = 0; c < K; ++c) {
    if (count[c] > 0) cent[static_cast<std::int64_t>(c)] /= count[c];
    else cent[static_cast<std::int64_t>(c)].fill_(1e6f);  // never the nearest
  }
  const std::vector<int> ranks = true_ranks(-models::embedding_distances(ea, cent), in.labels);
  AttackerResult r;
  r.name = "faceapi";
  r.j = {{"name", "faceapi"}, {"kind", "gallery"}, {"available", true}, {"steered", false},
         {"model", "face-api recognition net (dlib ResNet, 128-d), nearest identity centroid"},
         {"trained_on", "gallery of original train-split images (" + std::to_string(in.train.size()) + ")"},
         {"tested_on", "anonymized images: all, and held-out test split"}};
  report_ranks(r, in, cfg.bootstrap, ranks, true);
  std::vector<double> own_dist;
  r.j["verification"] = faceapi_verification(in, eo, ea, cfg.bootstrap, own_dist);
  r.columns.emplace_back("faceapi_distance", number_column(own_dist));
  return r;
}

AttackerResult evaluate_adaptive(const RunInputs& in, const EvalConfig& cfg, const Log& say) {
  if (in.train.empty() || in.test.empty())
    return unavailable("adaptive", "adaptive",
                       std::string("the run anonymized only ") + (in.train.empty() ? "non-train" : "train") +
                           " images; it needs anonymized train and test splits (run with --split all)");
  const data::Manifest& manifest = in.meta.manifest;
  data::Manifest am = manifest;
  am.entries.clear();
  for (const auto& it : in.items) {
    data::ManifestEntry e = manifest.entries[it.entry];
    e.id = engine::image_output_path(fs::path(), it.id).generic_string();
    am.entries.push_back(e);
  }
  models::TrainConfig tc;
  tc.manifest = am;
  tc.image_root = in.rundir / "images";
  tc.task = "identity";
  tc.architecture = "small-cnn";
  create_private_dir(in.rundir / "attackers");
  tc.out = in.rundir / "attackers" / "adaptive-small-cnn.pt";
  tc.epochs = cfg.adaptive_epochs;
  tc.patience = cfg.adaptive_epochs;
  tc.seed = cfg.adaptive_seed;
  tc.input_size = in.size;
  tc.device = cfg.device;
  if (say)
    say("attacker adaptive: training small-cnn on " + std::to_string(in.train.size()) + " anonymized train-split images (" +
        std::to_string(cfg.adaptive_epochs) + " epochs)");
  std::error_code ec;
  fs::remove(models::checkpoint_path(tc.out), ec);
  models::train_classifier(tc);
  models::LoadOptions lo;
  lo.device = cfg.device;
  auto model = models::load_classifier(tc.out.string(), lo);
  std::vector<int> ranks(in.n(), -1);
  const std::vector<int> all_ranks = true_ranks(predict_logits(*model, in.anon, cfg.batch), in.labels);
  for (std::size_t i : in.test) ranks[i] = all_ranks[i];
  AttackerResult r;
  r.name = "adaptive";
  r.j = {{"name", "adaptive"}, {"kind", "adaptive"}, {"available", true}, {"steered", false},
         {"model", tc.out.string() + " (small-cnn, seed " + std::to_string(cfg.adaptive_seed) + ")"},
         {"trained_on", "anonymized train-split images (" + std::to_string(in.train.size()) + ")"},
         {"tested_on", "anonymized held-out test split (" + std::to_string(in.test.size()) + ")"}};
  report_ranks(r, in, cfg.bootstrap, ranks, false);
  return r;
}

AttackerResult evaluate_classifier_attacker(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer,
                                            const std::string& spec, const Log& say) {
  // A second identity classifier (another architecture or seed).
  const std::string ref = resolve_model(spec, in.rundir).string();
  const std::string name = "model:" + fs::path(spec).filename().string();
  std::unique_ptr<models::Classifier> model;
  try {
    model = engine::load_steering_model(ref, cfg.device, in.meta.manifest, in.meta.resize);
  } catch (const Error& e) {
    return unavailable(name, "classifier", e.what());
  }
  const bool steered = ref == steer.ref || (!steer.sha.empty() && model->info().file_sha256 == steer.sha);
  if (say) say("attacker " + name + ": re-identifying the anonymized images");
  const std::vector<int> ranks = true_ranks(predict_logits(*model, in.anon, cfg.batch), in.labels);
  AttackerResult r;
  r.name = name;
  r.j = {{"name", name}, {"kind", "classifier"}, {"available", true}, {"steered", steered}, {"model", spec},
         {"architecture", model->info().architecture}, {"sha256", model->info().file_sha256},
         {"trained_on", "its own training data (see the model's sidecar)"},
         {"tested_on", "anonymized images: all, and held-out test split"}};
  report_ranks(r, in, cfg.bootstrap, ranks, true);
  if (steered) {
    r.headline.reset();
    r.notes.push_back("attacker " + name + " is the steering model: not counted as independent");
  }
  return r;
}

}  // namespace edi::metrics::detail
