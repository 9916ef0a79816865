// Privacy blocks of evaluate: the steering model (in_loop, heldout) and each
// attacker under the two threat models (heldout, linkage).
#include <opencv2/face.hpp>
#include <opencv2/imgproc.hpp>

#include <limits>
#include <map>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/engine/run_io.hpp"
#include "edi/metrics/attackers.hpp"
#include "edi/engine/steering.hpp"
#include "edi/models/faceapi.hpp"
#include "edi/models/human.hpp"
#include "edi/models/gallery.hpp"
#include "edi/models/registry.hpp"
#include "edi/models/training.hpp"
#include "eval_parts.hpp"

namespace edi::metrics {

namespace {
cv::Mat grey8(const cv::Mat& rgb) {
  cv::Mat g, u;
  cv::cvtColor(rgb, g, cv::COLOR_RGB2GRAY);
  g.convertTo(u, CV_8U, 255.0);
  return u;
}

/// Records every (label, distance) in enrolment order.
class AllDistances : public cv::face::PredictCollector {
 public:
  std::vector<std::pair<int, double>> seen;
  bool collect(int label, double dist) override {
    seen.emplace_back(label, dist);
    return true;
  }
};

/// Rank of `label` among the per-label nearest distances, skipping enrolled item `skip`.
int rank_of(const std::vector<std::pair<int, double>>& seen, int label, std::size_t skip) {
  std::map<int, double> best;
  for (std::size_t e = 0; e < seen.size(); ++e) {
    if (e == skip) continue;
    const auto [l, d] = seen[e];
    const auto it = best.find(l);
    if (it == best.end() || d < it->second) best[l] = d;
  }
  const auto own = best.find(label);
  if (own == best.end()) return static_cast<int>(best.size());
  int r = 0;
  for (const auto& [l, d] : best) r += l != label && d < own->second;
  return r;
}
}  // namespace

namespace {
ThreatRanks lbph_ranks(const std::vector<cv::Mat>& originals, const std::vector<cv::Mat>& probes, const std::vector<int>& labels,
                       Progress* progress) {
  std::vector<cv::Mat> tr;
  for (const auto& o : originals) tr.push_back(grey8(o));
  auto lbph = cv::face::LBPHFaceRecognizer::create();
  lbph->train(tr, labels);
  ThreatRanks t;
  const std::size_t none = std::numeric_limits<std::size_t>::max();
  for (std::size_t i = 0; i < probes.size(); ++i) {
    cv::Ptr<AllDistances> coll = cv::makePtr<AllDistances>();
    lbph->predict(grey8(probes[i]), coll);
    t.linkage.push_back(rank_of(coll->seen, labels[i], none));
    t.heldout.push_back(rank_of(coll->seen, labels[i], i));
    if (progress) progress->add();
  }
  return t;
}
}  // namespace

ThreatRanks lbph_threat_ranks(const std::vector<cv::Mat>& originals, const std::vector<cv::Mat>& probes,
                              const std::vector<int>& labels) {
  return lbph_ranks(originals, probes, labels, nullptr);
}

}  // namespace edi::metrics

namespace edi::metrics::detail {

namespace fs = std::filesystem;

json rate_json(const Rate& r) {
  if (!r.defined) return nullptr;
  json j = interval_json(r);
  j["n_identities"] = r.n_identities;
  j["method"] = r.method;
  return j;
}

Rate rank_rate(const RunInputs& in, const std::vector<int>& ranks, const std::vector<std::size_t>& subset, int k,
               const BootstrapSpec& b, const std::string& name) {
  std::vector<double> hits;
  std::vector<int> ids;
  for (std::size_t i : subset)
    if (ranks[i] >= 0) hits.push_back(ranks[i] < k ? 100.0 : 0.0), ids.push_back(in.labels[i]);
  return cluster_rate(hits, ids, b, name);
}

TrainingCheck check_training(const std::string& ref, const data::Manifest& manifest) {
  TrainingCheck c;
  if (ref == models::kFaceApiRecognition) {
    c.held_out = true;
    c.what = "a gallery enrolled on the run's train-split originals: test-split probes' originals are not in it";
    return c;
  }
  if (models::kind_of(ref) == models::ModelKind::kFaceApi) {
    c.what = ref + " has no training record";
    return c;
  }
  models::Sidecar side;
  try {
    side = models::read_sidecar(ref);
  } catch (const Error& e) {
    c.what = e.what();
    return c;
  }
  if (!side.training) {
    c.what = models::sidecar_path(ref).string() + " records no training manifest, so the probes it was trained on are unknown";
    return c;
  }
  const std::string run_hash = manifest.hash();
  if (side.training->manifest_hash != run_hash) {
    c.what = models::sidecar_path(ref).string() + ": training manifest sha256 " + side.training->manifest_hash +
             " differs from the run's " + run_hash + " (another data set or split), so the probes it was trained on are unknown";
    return c;
  }
  c.held_out = true;
  c.what = "sidecar training manifest sha256 equals the run's (" + run_hash.substr(0, 12) +
           "...): trained on the train split, the test split held out";
  return c;
}

namespace {

AttackerResult unavailable(const std::string& name, const std::string& kind, const std::string& why) {
  AttackerResult r;
  r.name = name;
  r.j = {{"name", name}, {"kind", kind}, {"available", false}, {"steered", false}, {"reason", why}};
  r.notes.push_back("attacker " + name + " not available: " + why);
  return r;
}

/// An attacker that steered or judged the run: no rate of it counts as independent.
AttackerResult not_independent(const std::string& name, const std::string& kind, const std::string& why) {
  AttackerResult r = unavailable(name, kind, why + ": not independent");
  r.j["independent"] = false;
  return r;
}

/// The run's judge (--judge), resolved like the steering models ("" = none).
std::string judge_of(const RunInputs& in) {
  const std::string judge = in.meta.options.value("judge", std::string());
  return judge.empty() ? judge : resolve_model(judge, in.rundir).string();
}

/// top1/top5 under both threat models; the heldout top-1 is the attacker's headline.
void report_threats(AttackerResult& r, const RunInputs& in, const BootstrapSpec& b, const std::vector<int>& heldout,
                    const std::vector<std::size_t>& heldout_set, const std::vector<int>& linkage,
                    const std::vector<std::size_t>& linkage_set) {
  json t1, t5;
  const Rate h1 = rank_rate(in, heldout, heldout_set, 1, b, r.name + "/top1/heldout");
  t1["heldout"] = rate_json(h1);
  t1["linkage"] = rate_json(rank_rate(in, linkage, linkage_set, 1, b, r.name + "/top1/linkage"));
  t5["heldout"] = rate_json(rank_rate(in, heldout, heldout_set, 5, b, r.name + "/top5/heldout"));
  t5["linkage"] = rate_json(rank_rate(in, linkage, linkage_set, 5, b, r.name + "/top5/linkage"));
  r.j["top1"] = t1;
  r.j["top5"] = t5;
  if (h1.defined) r.headline = h1;
  r.available = true;
}

}  // namespace

SteeringResult evaluate_steering(const RunInputs& in, const EvalConfig& cfg, const Log& say) {
  SteeringResult s;
  const std::size_t n = in.n();
  s.ref_raw = cfg.steering_model.empty() ? in.meta.model_ref : cfg.steering_model;
  s.sha = in.meta.model_sha;
  s.ref = resolve_model(s.ref_raw, in.rundir).string();
  s.ranks.assign(n, -1);
  s.j = {{"model", s.ref_raw}, {"steered", true}};
  bool from_images = false;
  const std::vector<std::string> members = engine::split_model_list(s.ref_raw);
  try {
    if (members.size() == 1 && models::kind_of(s.ref) != models::ModelKind::kFaceApi && !s.sha.empty() && fs::is_regular_file(s.ref) &&
        sha256_file(s.ref) != s.sha)
      throw ModelError(s.ref + ": file differs from the steering model the run used (sha256 mismatch)");
    // An ensemble identifies an image while any member does: the best rank over the members.
    for (const auto& member : members) {
      const std::string ref = resolve_model(member, in.rundir).string();
      auto model = engine::load_steering_model(ref, cfg.device, in.meta.manifest, in.meta.resize);
      if (say) say("steering model " + ref + ": re-identifying the anonymized images");
      const std::vector<int> r =
          true_ranks(predict_logits(*model, in.anon, cfg.batch, progress_label(in, "steering model " + member)), in.labels);
      for (std::size_t i = 0; i < n; ++i) s.ranks[i] = from_images ? std::min(s.ranks[i], r[i]) : r[i];
      from_images = true;
    }
  } catch (const Error& e) {
    s.notes.push_back(std::string("steering model not reloaded (") + e.what() + "); its risk comes from outcomes.csv (in-loop state)");
    for (std::size_t i = 0; i < n; ++i) s.ranks[i] = in.items[i].outcome_rank;
    from_images = false;
  }
  const BootstrapSpec& b = cfg.bootstrap;
  // Held out only if every steering model was trained or enrolled without the test split.
  for (const auto& member : members) {
    s.check = check_training(resolve_model(member, in.rundir).string(), in.meta.manifest);
    if (!s.check.held_out) break;
  }
  s.j["source"] = from_images ? "anonymized images (images/*.png)" : "outcomes.csv (engine's in-loop state)";
  s.j["threat_models"] = {{"in_loop", "the model that steered the perturbation, on every image it steered (the authors' protocol)"},
                          {"heldout", "the steering model on the test-split images, which it was not trained or enrolled on"}};
  s.j["heldout_check"] = s.check.what;
  s.top1 = rank_rate(in, s.ranks, in.all, 1, b, "steering/top1/in_loop");
  s.top5 = rank_rate(in, s.ranks, in.all, 5, b, "steering/top5/in_loop");
  Rate h1, h5;
  h1.defined = h5.defined = false;
  if (s.check.held_out) {
    h1 = rank_rate(in, s.ranks, in.test, 1, b, "steering/top1/heldout");
    h5 = rank_rate(in, s.ranks, in.test, 5, b, "steering/top5/heldout");
  }
  s.j["top1"] = {{"in_loop", rate_json(s.top1)}, {"heldout", rate_json(h1)}};
  s.j["top5"] = {{"in_loop", rate_json(s.top5)}, {"heldout", rate_json(h5)}};
  std::vector<int> state(n);
  for (std::size_t i = 0; i < n; ++i) state[i] = in.items[i].outcome_rank;
  s.j["top1_engine_state"] = rate_json(rank_rate(in, state, in.all, 1, b, "steering/top1/engine-state"));
  s.columns.emplace_back("steering_rank", int_column(s.ranks));
  return s;
}

AttackerResult evaluate_lbph(const RunInputs& in, const EvalConfig& cfg, const Log& say) {
  if (in.n() < 2) return unavailable("lbph", "lbph", "the run has fewer than two images: no leave-one-out gallery");
  if (say) say("attacker lbph: enrolling " + std::to_string(in.n()) + " originals (grey), leave-one-out and linkage");
  Progress progress(progress_label(in, "attacker lbph"), in.n(), "probes");
  const ThreatRanks t = lbph_ranks(in.orig_mats, in.anon_mats, in.labels, &progress);
  progress.finish();
  AttackerResult r;
  r.name = "lbph";
  r.j = {{"name", "lbph"}, {"kind", "lbph"}, {"available", true}, {"steered", false},
         {"model", "OpenCV LBPHFaceRecognizer (radius 1, 8 neighbours, 8x8 grid), grey, nearest neighbour"},
         {"trained_on", "the originals of the run's images (" + std::to_string(in.n()) + ")"},
         {"threat_models", {{"heldout", "every original except the probe's own (leave-one-out)"},
                            {"linkage", "every original, including the probe's own"}}}};
  report_threats(r, in, cfg.bootstrap, t.heldout, in.all, t.linkage, in.all);
  r.columns.emplace_back("lbph_rank_heldout", int_column(t.heldout));
  r.columns.emplace_back("lbph_rank_linkage", int_column(t.linkage));
  return r;
}

namespace {
/// Verification against each image's own original, and the impostor level on original pairs.
json faceapi_verification(const RunInputs& in, const at::Tensor& eo, const at::Tensor& ea, const BootstrapSpec& b,
                          std::vector<double>& own_dist) {
  const std::size_t n = in.n();
  const at::Tensor own = (ea - eo).pow(2).sum(1).sqrt();
  std::vector<double> verified, impostor;
  std::vector<int> imp_ids;
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
      imp_ids.push_back(in.labels[i]);
      break;
    }
  }
  return {{"rule", "distance(anonymized, its original) < 0.6"},
          {"rate", rate_json(cluster_rate(verified, in.labels, b, "faceapi/verify"))},
          {"mean_distance", rate_json(cluster_mean(own_dist, in.labels, b, "faceapi/distance"))},
          {"impostor_rate", rate_json(cluster_rate(impostor, imp_ids, b, "faceapi/impostor"))},
          {"impostor_rule", "distance(original, original of the next image of another identity) < 0.6: the "
                            "verifier's false-accept level"}};
}

/// Ranks against identity centroids of all originals (linkage) and with the probe's own original left out (heldout).
ThreatRanks centroid_ranks(const RunInputs& in, const at::Tensor& eo, const at::Tensor& ea) {
  const std::size_t K = in.identities;
  at::Tensor sum = torch::zeros({static_cast<std::int64_t>(K), eo.size(1)});
  std::vector<int> count(K, 0);
  for (std::size_t i = 0; i < in.n(); ++i) {
    sum[in.labels[i]] += eo[static_cast<std::int64_t>(i)];
    ++count[static_cast<std::size_t>(in.labels[i])];
  }
  at::Tensor cent = sum.clone();
  for (std::size_t c = 0; c < K; ++c) {
    if (count[c] > 0) cent[static_cast<std::int64_t>(c)] /= count[c];
    else cent[static_cast<std::int64_t>(c)].fill_(1e6f);  // never the nearest
  }
  ThreatRanks t;
  t.linkage = true_ranks(-models::embedding_distances(ea, cent), in.labels);
  for (std::size_t i = 0; i < in.n(); ++i) {
    const auto l = static_cast<std::int64_t>(in.labels[i]);
    at::Tensor c = cent.clone();
    const int left = count[static_cast<std::size_t>(l)] - 1;
    if (left > 0) c[l] = (sum[l] - eo[static_cast<std::int64_t>(i)]) / left;
    else c[l].fill_(1e6f);
    const at::Tensor d = models::embedding_distances(ea.narrow(0, static_cast<std::int64_t>(i), 1), c);
    t.heldout.push_back(true_ranks(-d, {in.labels[i]})[0]);
  }
  return t;
}
}  // namespace

namespace {
/// A pretrained embedder used as a nearest-centroid gallery attacker.
struct GalleryAttacker {
  std::string name;         ///< "faceapi", "faceres"
  std::string reference;    ///< model string
  std::string description;  ///< what it is, for the tables
  bool dlib_verification;   ///< face-api's 0.6 verification rule applies
};

/// models::embed_batched in chunks of a few batches, advancing `progress` per chunk.
at::Tensor embed_with_progress(models::Embedder& emb, const at::Tensor& images, int batch, Progress& progress) {
  batch = images_per_forward(batch, emb.info().input_size > 0 ? emb.info().input_size : static_cast<int>(images.size(2)));
  const std::int64_t n = images.size(0), chunk = 4 * static_cast<std::int64_t>(batch);
  if (n == 0) return models::embed_batched(emb, images, static_cast<std::size_t>(batch));
  std::vector<at::Tensor> parts;
  for (std::int64_t b = 0; b < n; b += chunk) {
    const std::int64_t len = std::min(chunk, n - b);
    parts.push_back(models::embed_batched(emb, images.narrow(0, b, len), static_cast<std::size_t>(batch)));
    progress.add(static_cast<std::size_t>(len));
  }
  return torch::cat(parts);
}

AttackerResult evaluate_gallery(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer, const Log& say,
                                const GalleryAttacker& g) {
  for (const auto& member : engine::split_model_list(steer.ref_raw))
    if (member == g.reference)
      return not_independent(g.name, "gallery", g.reference + " steered this run (reported as the steering model)");
  if (judge_of(in) == g.reference)
    return not_independent(g.name, "gallery", g.reference + " judged this run (an image stopped only once it failed too)");
  if (in.n() < 2) return unavailable(g.name, "gallery", "the run has fewer than two images: no leave-one-out gallery");
  std::shared_ptr<models::Embedder> emb;
  try {
    models::LoadOptions lo;
    lo.device = cfg.device;
    emb = models::load_embedder(g.reference, lo);
  } catch (const std::exception& e) {  // edi errors and filesystem errors (an unreadable assets folder)
    return unavailable(g.name, "gallery", e.what());
  }
  if (say) say("attacker " + g.name + ": embedding originals and anonymized images");
  torch::NoGradGuard guard;
  Progress progress(progress_label(in, "attacker " + g.name), 2 * in.n(), "images embedded");
  const at::Tensor eo = embed_with_progress(*emb, in.origs, cfg.batch, progress);
  const at::Tensor ea = embed_with_progress(*emb, in.anon, cfg.batch, progress);
  progress.finish();
  const ThreatRanks t = centroid_ranks(in, eo, ea);
  AttackerResult r;
  r.name = g.name;
  r.j = {{"name", g.name}, {"kind", "gallery"}, {"available", true}, {"steered", false}, {"model", g.description},
         {"trained_on", "a gallery of the originals of the run's images (" + std::to_string(in.n()) + ")"},
         {"threat_models", {{"heldout", "identity centroids of every original except the probe's own (leave-one-out)"},
                            {"linkage", "identity centroids of every original, including the probe's own"}}}};
  report_threats(r, in, cfg.bootstrap, t.heldout, in.all, t.linkage, in.all);
  r.columns.emplace_back(g.name + "_rank_heldout", int_column(t.heldout));
  r.columns.emplace_back(g.name + "_rank_linkage", int_column(t.linkage));
  if (g.dlib_verification) {
    std::vector<double> own_dist;
    r.j["verification"] = faceapi_verification(in, eo, ea, cfg.bootstrap, own_dist);
    r.columns.emplace_back(g.name + "_distance", number_column(own_dist));
  }
  return r;
}
}  // namespace

AttackerResult evaluate_faceapi(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer, const Log& say) {
  return evaluate_gallery(in, cfg, steer, say,
                          {"faceapi", models::kFaceApiRecognition, "face-api recognition net (dlib ResNet-34, 128-d), nearest identity centroid", true});
}

AttackerResult evaluate_faceres(const RunInputs& in, const EvalConfig& cfg, const SteeringResult& steer, const Log& say) {
  return evaluate_gallery(in, cfg, steer, say,
                          {"faceres", models::kHumanFaceRes,
                           "HSE FaceRec (MobileNet, VGGFace2; 1024-d), nearest identity centroid (L2)", false});
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
  tc.image_root = in.images_dir;
  tc.task = "identity";
  tc.architecture = "small-cnn";
  create_private_dir(in.rundir / "attackers");
  tc.out = in.rundir / "attackers" / "adaptive-small-cnn.pt";
  tc.epochs = cfg.adaptive_epochs;
  tc.patience = cfg.adaptive_epochs;
  tc.seed = cfg.adaptive_seed;
  tc.input_size = cfg.adaptive_size > 0 ? cfg.adaptive_size : in.size;
  tc.device = cfg.device;
  if (say)
    say("attacker adaptive: training small-cnn on " + std::to_string(in.train.size()) + " anonymized train-split images (" +
        std::to_string(cfg.adaptive_epochs) + " epochs)");
  std::error_code ec;
  fs::remove(models::checkpoint_path(tc.out), ec);
  {
    Progress progress(progress_label(in, "attacker adaptive (training)"), static_cast<std::size_t>(cfg.adaptive_epochs), "epochs");
    models::train_classifier(tc, [&](const models::EpochReport& r) { progress.set(static_cast<std::size_t>(r.epoch)); });
    progress.finish();
  }
  models::LoadOptions lo;
  lo.device = cfg.device;
  auto model = models::load_classifier(tc.out.string(), lo);
  const std::vector<int> ranks =
      true_ranks(predict_logits(*model, in.anon, cfg.batch, progress_label(in, "attacker adaptive (probing)")), in.labels);
  AttackerResult r;
  r.name = "adaptive";
  r.j = {{"name", "adaptive"}, {"kind", "adaptive"}, {"available", true}, {"steered", false},
         {"model", tc.out.string() + " (small-cnn, " + std::to_string(tc.input_size) + " px, " + std::to_string(cfg.adaptive_epochs) +
                       " epochs, seed " + std::to_string(cfg.adaptive_seed) + ")"},
         {"trained_on", "anonymized train-split images (" + std::to_string(in.train.size()) + ")"},
         {"threat_models", {{"heldout", "anonymized train-split images; probes are the anonymized test split, never seen"},
                            {"linkage", "anonymized train-split images; probes are those same training images"}}}};
  report_threats(r, in, cfg.bootstrap, ranks, in.test, ranks, in.train);
  r.columns.emplace_back("adaptive_rank", int_column(ranks));
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
  // A steering model, or one member of an ensemble, or the judge: not independent.
  bool steered = ref == steer.ref || (!steer.sha.empty() && model->info().file_sha256 == steer.sha);
  for (const auto& member : engine::split_model_list(steer.ref_raw))
    steered = steered || resolve_model(member, in.rundir).string() == ref;
  if (!steered && judge_of(in) == ref)
    return not_independent(name, "classifier", spec + " judged this run (an image stopped only once it failed too)");
  const TrainingCheck check = check_training(ref, in.meta.manifest);
  if (!steered && !check.held_out)
    return unavailable(name, "classifier", "refused: its training data may overlap the probes in a way heldout/linkage cannot say: " + check.what);
  if (say) say("attacker " + name + ": re-identifying the anonymized images");
  const std::vector<int> ranks = true_ranks(predict_logits(*model, in.anon, cfg.batch, progress_label(in, "attacker " + name)), in.labels);
  AttackerResult r;
  r.name = name;
  r.j = {{"name", name}, {"kind", "classifier"}, {"available", true}, {"steered", steered}, {"model", spec},
         {"architecture", model->info().architecture}, {"sha256", model->info().file_sha256},
         {"trained_on", "the run's train split (originals), checked: " + check.what},
         {"threat_models", {{"heldout", "trained on the train split's originals; probes are the anonymized test split"},
                            {"linkage", "trained on the train split's originals; probes are those images, anonymized"}}}};
  report_threats(r, in, cfg.bootstrap, ranks, in.test, ranks, in.train);
  r.columns.emplace_back(name + "_rank", int_column(ranks));
  if (steered) {
    r.headline.reset();
    r.j["independent"] = false;
    r.notes.push_back("attacker " + name + " steered this run: not independent");
  }
  return r;
}

}  // namespace edi::metrics::detail
