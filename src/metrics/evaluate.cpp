#include "edi/metrics/evaluate.hpp"

#include <torch/torch.h>
#include <unistd.h>

#include <opencv2/face.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/image.hpp"
#include "edi/data/manifest.hpp"
#include "edi/engine/runner.hpp"
#include "edi/models/classifier.hpp"
#include "edi/models/faceapi.hpp"
#include "edi/models/gallery.hpp"
#include "edi/models/training.hpp"
#include "edi/version.hpp"

namespace edi::metrics {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// One image of the run: what outcomes.csv says plus its decoded pixels.
struct Item {
  std::string id;
  int label = -1;            ///< identity index
  data::Split split = data::Split::kTrain;
  std::string status;
  int stop_pass = -1;
  int outcome_rank = -1;     ///< steering rank recorded by the engine (in-loop state)
  std::size_t entry = 0;     ///< index into manifest.entries
};

json interval_json(const Interval& v) {
  auto num = [](double x) -> json { return std::isfinite(x) ? json(x) : json(nullptr); };
  return {{"value", num(v.value)}, {"lo", num(v.lo)}, {"hi", num(v.hi)}, {"n", v.n}};
}

std::string fmt(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream s;
  s.precision(7);
  s << v;
  return s.str();
}

/// N×3×S×S float images → at `size` (PIL-like antialiased resize), unchanged if equal.
at::Tensor at_size(const at::Tensor& images, int size) {
  if (images.size(2) == size && images.size(3) == size) return images;
  std::vector<cv::Mat> mats;
  for (std::int64_t i = 0; i < images.size(0); ++i)
    mats.push_back(data::resize_antialiased(data::tensor_to_image(images[i]), cv::Size(size, size)));
  return data::images_to_tensor(mats);
}

/// Logits of `model` on `images` in batches, without grad, on CPU.
at::Tensor predict_logits(models::Classifier& model, const at::Tensor& images, int batch) {
  torch::NoGradGuard guard;
  const int size = model.info().input_size > 0 ? model.info().input_size : static_cast<int>(images.size(2));
  std::vector<at::Tensor> out;
  for (std::int64_t b = 0; b < images.size(0); b += batch) {
    const std::int64_t len = std::min<std::int64_t>(batch, images.size(0) - b);
    at::Tensor x = at_size(images.narrow(0, b, len), size).to(model.device());
    out.push_back(model.logits(x).detach().to(torch::kCPU).to(torch::kFloat));
  }
  return out.empty() ? torch::zeros({0, static_cast<std::int64_t>(model.num_classes())}) : torch::cat(out);
}

/// Rank of the true class in each row of `scores` (0 = top-1); higher score = better.
std::vector<int> true_ranks(const at::Tensor& scores, const std::vector<int>& labels) {
  std::vector<int> ranks(labels.size());
  auto acc = scores.accessor<float, 2>();
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const float t = acc[static_cast<std::int64_t>(i)][labels[i]];
    int r = 0;
    for (std::int64_t c = 0; c < scores.size(1); ++c) r += acc[static_cast<std::int64_t>(i)][c] > t;
    ranks[i] = r;
  }
  return ranks;
}

std::vector<int> argmax_rows(const at::Tensor& scores) {
  const at::Tensor a = scores.argmax(1).to(torch::kLong).contiguous();
  std::vector<int> out(static_cast<std::size_t>(a.size(0)));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int>(a[static_cast<std::int64_t>(i)].item<std::int64_t>());
  return out;
}

/// Risk (%) of an attacker's ranks over a subset: top-k hit rate with its interval.
Interval hit_rate(const std::vector<int>& ranks, const std::vector<std::size_t>& subset, int k, const BootstrapSpec& b,
                  const std::string& name) {
  std::vector<double> hits;
  for (std::size_t i : subset)
    if (ranks[i] >= 0) hits.push_back(ranks[i] < k ? 100.0 : 0.0);
  return bootstrap_mean(hits, b, name);
}

fs::path resolve_model(const std::string& ref, const fs::path& rundir) {
  if (ref.rfind("faceapi:", 0) == 0) return ref;
  fs::path p(ref);
  if (p.is_absolute() || fs::exists(p)) return p;
  if (fs::exists(rundir.parent_path() / p)) return rundir.parent_path() / p;
  if (fs::exists(rundir / p)) return rundir / p;
  return p;
}

}  // namespace

std::pair<std::string, std::string> parse_utility_spec(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw ConfigError("--utility " + text + ": expected TASK=MODEL (e.g. gender=gender.pt or age=faceapi:age-gender)");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

MetricsReport evaluate_run(const fs::path& rundir, const EvalConfig& cfg, const std::function<void(const std::string&)>& log) {
  const auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  const auto t0 = Clock::now();
  if (cfg.bootstrap.resamples < 0 || cfg.bootstrap.resamples > 1000000)
    throw ConfigError("--bootstrap " + std::to_string(cfg.bootstrap.resamples) + ": expected an integer in [0, 1000000]");
  if (cfg.batch < 1) throw ConfigError("--batch " + std::to_string(cfg.batch) + ": expected an integer >= 1");
  for (const char* f : {"manifest.csv", "outcomes.csv", "summary.json"})
    if (!fs::is_regular_file(rundir / f))
      throw DataError(rundir.string() + ": not a finished run directory (no " + f + ")");
  const json summary = json::parse(read_file(rundir / "summary.json"), nullptr, false);
  if (summary.is_discarded()) throw DataError((rundir / "summary.json").string() + ": not valid JSON");
  // provenance.json (the distributed runner) holds the config and model hash.
  json provenance = json::object();
  if (fs::is_regular_file(rundir / "provenance.json")) {
    provenance = json::parse(read_file(rundir / "provenance.json"), nullptr, false);
    if (provenance.is_discarded()) provenance = json::object();
  }
  json options = summary.value("options", json::object());
  if (options.empty()) options = provenance.value("config", json::object());
  const data::Manifest manifest = data::read_manifest(rundir / "manifest.csv");
  const data::ResizeMode resize = data::parse_resize_mode(options.value("resize", std::string("crop")), "resize");
  const std::string method = summary.value("method", options.value("method", std::string("edi")));
  const std::string op = summary.value("operator", options.value("operator", std::string("?")));
  std::string model_ref, model_sha;
  if (summary.contains("model") && summary["model"].is_object()) {
    model_ref = summary["model"].value("reference", std::string());
    model_sha = summary["model"].value("sha256", std::string());
  } else if (summary.contains("model") && summary["model"].is_string()) {
    model_ref = summary["model"].get<std::string>();
  }
  if (provenance.contains("model") && provenance["model"].is_object()) {
    if (model_ref.empty()) model_ref = provenance["model"].value("reference", std::string());
    if (model_sha.empty()) model_sha = provenance["model"].value("sha256", std::string());
  }
  if (model_ref.empty()) model_ref = options.value("model", std::string());
  int passes_run = summary.value("passes_run", -1);
  if (passes_run < 0) passes_run = summary.value("passes", json::array()).empty() ? 0 : summary["passes"].back().value("pass", 0);
  const double run_seconds = summary.value("timing", json::object()).value("seconds", 0.0);

  // --- the images of the run ---
  const CsvTable outcomes = parse_csv(read_file(rundir / "outcomes.csv"), (rundir / "outcomes.csv").string());
  std::map<std::string, std::size_t> entry_of;
  for (std::size_t i = 0; i < manifest.entries.size(); ++i) entry_of[manifest.entries[i].id] = i;
  const auto col = [&](const char* name) {
    const int c = csv_column(outcomes, name);
    if (c < 0) throw DataError((rundir / "outcomes.csv").string() + ": no column '" + name + "'");
    return static_cast<std::size_t>(c);
  };
  const std::size_t c_id = col("id"), c_status = col("status"), c_stop = col("stop_pass"), c_rank = col("final_true_rank");
  std::vector<Item> items;
  std::vector<std::string> notes;
  for (const auto& row : outcomes.rows) {
    Item it;
    it.id = row[c_id];
    const auto e = entry_of.find(it.id);
    if (e == entry_of.end()) throw DataError((rundir / "outcomes.csv").string() + ": image " + it.id + " is not in the manifest");
    it.entry = e->second;
    it.label = manifest.entries[it.entry].identity;
    it.split = manifest.entries[it.entry].split;
    it.status = row[c_status];
    it.stop_pass = std::stoi(row[c_stop]);
    it.outcome_rank = std::stoi(row[c_rank]);
    items.push_back(it);
  }
  if (items.empty()) throw DataError(rundir.string() + ": the run has no images");

  // Originals at the model resolution (sha256-checked), anonymized PNGs.
  // The anonymized images are stored at the steering model's resolution.
  int size = 0;
  {
    data::DecodeOptions probe;
    probe.min_side = 1;
    for (const auto& it : items) {
      const fs::path p = engine::image_output_path(rundir / "images", it.id);
      if (!fs::is_regular_file(p)) continue;
      size = data::decode_image(p, probe).cols;
      break;
    }
    if (size == 0) throw DataError(rundir.string() + ": no anonymized image in images/ (was the run made with --no-images?)");
  }
  say("decoding " + std::to_string(items.size()) + " originals and anonymized images at " + std::to_string(size) + " px");
  std::vector<std::size_t> entries;
  for (const auto& it : items) entries.push_back(it.entry);
  engine::DecodedShard orig = engine::decode_shard(manifest, entries, size, resize);
  std::set<std::string> bad;
  for (const auto& q : orig.quarantined) {
    bad.insert(q.path);
    notes.push_back("image " + q.path + " left out: original unusable (" + q.reason + ")");
  }
  std::vector<Item> kept;
  std::vector<cv::Mat> anon_mats, orig_mats;
  data::DecodeOptions keep;
  keep.size = 0;
  keep.mode = data::ResizeMode::kNone;
  keep.min_side = 1;
  std::size_t k_orig = 0;
  for (const auto& it : items) {
    if (bad.count(it.id)) continue;
    const cv::Mat o = data::tensor_to_image(orig.images[static_cast<std::int64_t>(k_orig++)]);
    const fs::path p = engine::image_output_path(rundir / "images", it.id);
    if (!fs::is_regular_file(p)) {
      notes.push_back("image " + it.id + " left out: no anonymized image " + p.string());
      continue;
    }
    cv::Mat a = data::decode_image(p, keep);
    if (a.size() != o.size()) a = data::resize_antialiased(a, o.size());
    kept.push_back(it);
    anon_mats.push_back(a);
    orig_mats.push_back(o);
  }
  items = std::move(kept);
  if (items.empty()) throw DataError(rundir.string() + ": no anonymized image could be read (images/ missing? run with images)");
  const std::size_t n = items.size();
  const at::Tensor anon = data::images_to_tensor(anon_mats);
  const at::Tensor origs = data::images_to_tensor(orig_mats);
  std::vector<int> labels(n);
  std::vector<std::size_t> all(n), test, train;
  std::set<data::Split> splits;
  for (std::size_t i = 0; i < n; ++i) {
    labels[i] = items[i].label;
    all[i] = i;
    splits.insert(items[i].split);
    if (items[i].split == data::Split::kTest) test.push_back(i);
    if (items[i].split == data::Split::kTrain) train.push_back(i);
  }
  const std::size_t K = manifest.identities.size();
  const BootstrapSpec& B = cfg.bootstrap;

  MetricsReport rep;
  rep.images = n;
  rep.identities = K;
  rep.random_guess_percent = 100.0 / static_cast<double>(K);
  const double guess5 = 100.0 * std::min<double>(5.0, static_cast<double>(K)) / static_cast<double>(K);

  json j;
  j["format"] = "edi-anon-metrics";
  j["version"] = 1;
  j["code_version"] = std::string(version()) + " (" + git_describe() + ")";
  {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    j["host"] = host;
    const std::time_t now = std::time(nullptr);
    char date[64];
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    j["created"] = date;
  }
  j["run"] = {{"dir", fs::absolute(rundir).lexically_normal().string()},
              {"method", method},
              {"operator", op},
              {"description", summary.value("run", std::string())},
              {"manifest_hash", manifest.hash()},
              {"passes_run", passes_run},
              {"seconds", run_seconds},
              {"model", model_ref},
              {"options", options}};
  j["config"] = {{"bootstrap", B.resamples}, {"seed", B.seed}, {"level", B.level}, {"attackers", cfg.attackers},
                 {"adaptive_epochs", cfg.adaptive_epochs}};
  j["images"] = n;
  j["images_by_split"] = {{"train", train.size()}, {"val", n - train.size() - test.size()}, {"test", test.size()}};
  j["identities"] = K;
  j["random_guess_percent"] = {{"top1", rep.random_guess_percent}, {"top5", guess5}};

  // Per-image table (metrics-images.csv): columns filled below.
  std::vector<std::pair<std::string, std::vector<std::string>>> per_image;
  auto add_column = [&](const std::string& name, std::vector<std::string> values) { per_image.emplace_back(name, std::move(values)); };
  auto int_column = [&](const std::vector<int>& v) {
    std::vector<std::string> s;
    for (int x : v) s.push_back(std::to_string(x));
    return s;
  };

  // --- privacy: the steering model ---
  const std::string steer_ref_raw = cfg.steering_model.empty() ? model_ref : cfg.steering_model;
  const std::string steer_sha = model_sha;
  std::string steer_ref = resolve_model(steer_ref_raw, rundir).string();
  json privacy;
  std::vector<int> steer_ranks(n, -1);
  {
    json s = {{"model", steer_ref_raw}};
    bool from_images = false;
    try {
      if (steer_ref.rfind("faceapi:", 0) != 0 && !steer_sha.empty() && fs::is_regular_file(steer_ref) &&
          sha256_file(steer_ref) != steer_sha)
        throw ModelError(steer_ref + ": file differs from the steering model the run used (sha256 mismatch)");
      auto model = engine::load_steering_model(steer_ref, cfg.device, manifest, resize);
      say("steering model " + steer_ref + ": re-identifying the anonymized images");
      steer_ranks = true_ranks(predict_logits(*model, anon, cfg.batch), labels);
      from_images = true;
    } catch (const Error& e) {
      notes.push_back(std::string("steering model not reloaded (") + e.what() + "); its risk comes from outcomes.csv (in-loop state)");
      for (std::size_t i = 0; i < n; ++i) steer_ranks[i] = items[i].outcome_rank;
    }
    s["source"] = from_images ? "anonymized images (images/*.png)" : "outcomes.csv (engine's in-loop state)";
    rep.steering_top1 = hit_rate(steer_ranks, all, 1, B, "steering/top1/all");
    rep.steering_top5 = hit_rate(steer_ranks, all, 5, B, "steering/top5/all");
    s["top1"] = {{"all", interval_json(rep.steering_top1)}, {"test", interval_json(hit_rate(steer_ranks, test, 1, B, "steering/top1/test"))}};
    s["top5"] = {{"all", interval_json(rep.steering_top5)}, {"test", interval_json(hit_rate(steer_ranks, test, 5, B, "steering/top5/test"))}};
    std::vector<int> in_loop(n);
    for (std::size_t i = 0; i < n; ++i) in_loop[i] = items[i].outcome_rank;
    s["top1_in_loop"] = interval_json(hit_rate(in_loop, all, 1, B, "steering/top1/in-loop"));
    s["steered"] = true;
    privacy["steering"] = s;
    add_column("steering_rank", int_column(steer_ranks));
  }

  // --- privacy: independent and adaptive attackers ---
  json attackers = json::array();
  auto unavailable = [&](const std::string& name, const std::string& kind, const std::string& why) {
    attackers.push_back({{"name", name}, {"kind", kind}, {"available", false}, {"reason", why}});
    notes.push_back("attacker " + name + " not available: " + why);
  };
  auto report_ranks = [&](json& a, const std::string& name, const std::vector<int>& ranks, bool with_all) {
    json t1, t5;
    if (with_all) {
      const Interval r1 = hit_rate(ranks, all, 1, B, name + "/top1/all");
      t1["all"] = interval_json(r1);
      t5["all"] = interval_json(hit_rate(ranks, all, 5, B, name + "/top5/all"));
    }
    const Interval r1t = hit_rate(ranks, test, 1, B, name + "/top1/test");
    t1["test"] = interval_json(r1t);
    t5["test"] = interval_json(hit_rate(ranks, test, 5, B, name + "/top5/test"));
    a["top1"] = t1;
    a["top5"] = t5;
    rep.attacker_top1[name] = with_all ? hit_rate(ranks, all, 1, B, name + "/top1/all") : r1t;
    add_column(name + "_rank", int_column(ranks));
  };
  for (const std::string& spec : cfg.attackers) {
    if (spec == "lbph") {
      if (train.empty()) {
        unavailable("lbph", "lbph", "the run has no train-split images to train the recogniser on");
        continue;
      }
      say("attacker lbph: training on " + std::to_string(train.size()) + " original train-split images (grey)");
      auto grey = [](const cv::Mat& rgb) {
        cv::Mat g, u;
        cv::cvtColor(rgb, g, cv::COLOR_RGB2GRAY);
        g.convertTo(u, CV_8U, 255.0);
        return u;
      };
      std::vector<cv::Mat> tr;
      std::vector<int> tl;
      for (std::size_t i : train) {
        tr.push_back(grey(orig_mats[i]));
        tl.push_back(labels[i]);
      }
      auto lbph = cv::face::LBPHFaceRecognizer::create();
      lbph->train(tr, tl);
      std::vector<int> ranks(n, -1);
      for (std::size_t i = 0; i < n; ++i) {
        auto coll = cv::face::StandardCollector::create();
        lbph->predict(grey(anon_mats[i]), coll);
        const auto res = coll->getResults(true);  // one (label, min distance) per label, nearest first
        int r = static_cast<int>(res.size());
        for (std::size_t p = 0; p < res.size(); ++p)
          if (res[p].first == labels[i]) {
            r = static_cast<int>(p);
            break;
          }
        ranks[i] = r;
      }
      json a = {{"name", "lbph"}, {"kind", "lbph"}, {"available", true}, {"steered", false},
                {"model", "OpenCV LBPHFaceRecognizer (radius 1, 8 neighbours, 8x8 grid), grey"},
                {"trained_on", "original train-split images (" + std::to_string(train.size()) + ")"},
                {"tested_on", "anonymized images: all, and held-out test split"}};
      report_ranks(a, "lbph", ranks, true);
      attackers.push_back(a);
    } else if (spec == "faceapi") {
      if (steer_ref_raw == "faceapi:recognition") {
        unavailable("faceapi", "gallery", "face-api recognition steered this run (reported as the steering model)");
        continue;
      }
      if (train.empty()) {
        unavailable("faceapi", "gallery", "the run has no train-split images to enrol");
        continue;
      }
      std::shared_ptr<models::Embedder> emb;
      try {
        models::LoadOptions lo;
        lo.device = cfg.device;
        emb = models::load_faceapi_embedder("faceapi:recognition", lo);
      } catch (const Error& e) {
        unavailable("faceapi", "gallery", e.what());
        continue;
      }
      say("attacker faceapi: embedding originals and anonymized images");
      torch::NoGradGuard guard;
      const at::Tensor eo = models::embed_batched(*emb, origs, static_cast<std::size_t>(cfg.batch));
      const at::Tensor ea = models::embed_batched(*emb, anon, static_cast<std::size_t>(cfg.batch));
      // Gallery: per-identity centroid of the original train-split descriptors.
      at::Tensor cent = torch::zeros({static_cast<std::int64_t>(K), eo.size(1)});
      std::vector<int> count(K, 0);
      for (std::size_t i : train) {
        cent[labels[i]] += eo[static_cast<std::int64_t>(i)];
        ++count[static_cast<std::size_t>(labels[i])];
      }
      std::vector<bool> enrolled(K);
      for (std::size_t c = 0; c < K; ++c) {
        enrolled[c] = count[c] > 0;
        if (count[c] > 0) cent[static_cast<std::int64_t>(c)] /= count[c];
        else cent[static_cast<std::int64_t>(c)].fill_(1e6f);  // never the nearest
      }
      const at::Tensor dist = models::embedding_distances(ea, cent);
      std::vector<int> ranks = true_ranks(-dist, labels);
      const at::Tensor own = (ea - eo).pow(2).sum(1).sqrt();
      std::vector<double> verified, impostor, own_dist;
      for (std::size_t i = 0; i < n; ++i) {
        const double d = own[static_cast<std::int64_t>(i)].item<double>();
        own_dist.push_back(d);
        verified.push_back(d < models::kDlibVerificationThreshold ? 100.0 : 0.0);
        // Impostor pair: this original against the next image of another identity (originals).
        for (std::size_t s = 1; s < n; ++s) {
          const std::size_t o = (i + s) % n;
          if (labels[o] == labels[i]) continue;
          const double di = (eo[static_cast<std::int64_t>(i)] - eo[static_cast<std::int64_t>(o)]).pow(2).sum().sqrt().item<double>();
          impostor.push_back(di < models::kDlibVerificationThreshold ? 100.0 : 0.0);
          break;
        }
      }
      json a = {{"name", "faceapi"}, {"kind", "gallery"}, {"available", true}, {"steered", false},
                {"model", "face-api recognition net (dlib ResNet, 128-d), nearest identity centroid"},
                {"trained_on", "gallery of original train-split images (" + std::to_string(train.size()) + ")"},
                {"tested_on", "anonymized images: all, and held-out test split"}};
      report_ranks(a, "faceapi", ranks, true);
      a["verification"] = {{"rule", "distance(anonymized, its original) < 0.6"},
                           {"rate", interval_json(bootstrap_mean(verified, B, "faceapi/verify"))},
                           {"mean_distance", interval_json(bootstrap_mean(own_dist, B, "faceapi/distance"))},
                           {"impostor_rate", interval_json(bootstrap_mean(impostor, B, "faceapi/impostor"))},
                           {"impostor_rule", "distance(original, original of the next image of another identity) < 0.6: the "
                                             "verifier's false-accept level"}};
      std::vector<std::string> dcol;
      for (double d : own_dist) dcol.push_back(fmt(d));
      add_column("faceapi_distance", dcol);
      attackers.push_back(a);
    } else if (spec == "adaptive") {
      if (train.empty() || test.empty()) {
        unavailable("adaptive", "adaptive",
                    std::string("the run anonymized only ") + (train.empty() ? "non-train" : "train") +
                        " images; it needs anonymized train and test splits (run with --split all)");
        continue;
      }
      data::Manifest am = manifest;
      am.entries.clear();
      for (const auto& it : items) {
        data::ManifestEntry e = manifest.entries[it.entry];
        e.id = engine::image_output_path(fs::path(), it.id).generic_string();
        am.entries.push_back(e);
      }
      models::TrainConfig tc;
      tc.manifest = am;
      tc.image_root = rundir / "images";
      tc.task = "identity";
      tc.architecture = "small-cnn";
      create_private_dir(rundir / "attackers");
      tc.out = rundir / "attackers" / "adaptive-small-cnn.pt";
      tc.epochs = cfg.adaptive_epochs;
      tc.patience = cfg.adaptive_epochs;
      tc.seed = cfg.adaptive_seed;
      tc.input_size = size;
      tc.device = cfg.device;
      say("attacker adaptive: training small-cnn on " + std::to_string(train.size()) + " anonymized train-split images (" +
          std::to_string(cfg.adaptive_epochs) + " epochs)");
      std::error_code ec;
      fs::remove(models::checkpoint_path(tc.out), ec);
      models::train_classifier(tc);
      models::LoadOptions lo;
      lo.device = cfg.device;
      auto model = models::load_classifier(tc.out.string(), lo);
      std::vector<int> ranks(n, -1);
      const std::vector<int> r = true_ranks(predict_logits(*model, anon, cfg.batch), labels);
      for (std::size_t i : test) ranks[i] = r[i];
      json a = {{"name", "adaptive"}, {"kind", "adaptive"}, {"available", true}, {"steered", false},
                {"model", tc.out.string() + " (small-cnn, seed " + std::to_string(cfg.adaptive_seed) + ")"},
                {"trained_on", "anonymized train-split images (" + std::to_string(train.size()) + ")"},
                {"tested_on", "anonymized held-out test split (" + std::to_string(test.size()) + ")"}};
      report_ranks(a, "adaptive", ranks, false);
      attackers.push_back(a);
    } else {
      // A second identity classifier (another architecture or seed).
      const std::string ref = resolve_model(spec, rundir).string();
      const std::string name = "model:" + fs::path(spec).filename().string();
      std::unique_ptr<models::Classifier> model;
      try {
        model = engine::load_steering_model(ref, cfg.device, manifest, resize);
      } catch (const Error& e) {
        unavailable(name, "classifier", e.what());
        continue;
      }
      const bool steered = ref == steer_ref || (!steer_sha.empty() && model->info().file_sha256 == steer_sha);
      say("attacker " + name + ": re-identifying the anonymized images");
      const std::vector<int> ranks = true_ranks(predict_logits(*model, anon, cfg.batch), labels);
      json a = {{"name", name}, {"kind", "classifier"}, {"available", true}, {"steered", steered}, {"model", spec},
                {"architecture", model->info().architecture}, {"sha256", model->info().file_sha256},
                {"trained_on", "its own training data (see the model's sidecar)"},
                {"tested_on", "anonymized images: all, and held-out test split"}};
      report_ranks(a, name, ranks, true);
      if (steered) {
        rep.attacker_top1.erase(name);
        notes.push_back("attacker " + name + " is the steering model: not counted as independent");
      }
      attackers.push_back(a);
    }
  }
  privacy["attackers"] = attackers;
  j["privacy"] = privacy;

  // --- utility ---
  json utility = json::array();
  for (const auto& [task, ref_raw] : cfg.utility) {
    // "gender/faceapi" names a second gender model: the labels are the base task's.
    const std::string base = task.substr(0, task.find('/'));
    const std::string ref = resolve_model(ref_raw, rundir).string();
    models::LoadOptions lo;
    lo.device = cfg.device;
    lo.task = base;
    std::unique_ptr<models::Classifier> model;
    try {
      model = models::load_classifier(ref, lo);
    } catch (const Error& e) {
      utility.push_back({{"task", task}, {"model", ref_raw}, {"available", false}, {"reason", e.what()}});
      notes.push_back("utility " + task + " not available: " + e.what());
      continue;
    }
    say("utility " + task + ": " + ref_raw);
    const at::Tensor za = predict_logits(*model, anon, cfg.batch);
    const at::Tensor zo = predict_logits(*model, origs, cfg.batch);
    const auto& classes = model->info().classes;
    json u = {{"task", task}, {"label_task", base}, {"model", ref_raw}, {"available", true}, {"classes", classes}};
    if (za.size(1) == 1) {  // regression head (face-api age in years)
      std::vector<double> err, va, vo;
      for (std::size_t i = 0; i < n; ++i) {
        va.push_back(za[static_cast<std::int64_t>(i)][0].item<double>());
        vo.push_back(zo[static_cast<std::int64_t>(i)][0].item<double>());
        err.push_back(std::abs(va.back() - vo.back()));
      }
      u["kind"] = "regression";
      u["labels"] = false;
      u["mae_vs_original"] = interval_json(bootstrap_mean(err, B, "utility/" + task + "/mae"));
      u["note"] = "no per-image numeric labels: MAE between the predictions on the anonymized and on the original image";
      std::vector<std::string> ca, co;
      for (std::size_t i = 0; i < n; ++i) ca.push_back(fmt(va[i])), co.push_back(fmt(vo[i]));
      add_column(task + "_pred", ca);
      add_column(task + "_pred_original", co);
      utility.push_back(u);
      continue;
    }
    const std::vector<int> pa = argmax_rows(za), po = argmax_rows(zo);
    const int C = static_cast<int>(classes.size());
    const int t = manifest.task_index(base);
    const bool labelled = t >= 0 && manifest.tasks[static_cast<std::size_t>(t)].classes == classes;
    u["kind"] = "classification";
    u["labels"] = labelled;
    std::vector<double> agree;
    for (std::size_t i = 0; i < n; ++i) agree.push_back(pa[i] == po[i] ? 100.0 : 0.0);
    u["agreement_with_original"] = interval_json(bootstrap_mean(agree, B, "utility/" + task + "/agreement"));
    std::vector<std::string> truth_col(n);
    if (labelled) {
      std::vector<std::size_t> idx;
      std::vector<int> truth(n, -1);
      for (std::size_t i = 0; i < n; ++i) {
        truth[i] = manifest.entries[items[i].entry].attributes[static_cast<std::size_t>(t)];
        truth_col[i] = std::to_string(truth[i]);
        if (truth[i] >= 0) idx.push_back(i);
      }
      auto stat = [&](const std::vector<int>& pred, bool f1) {
        return [&truth, &idx, &p = pred, C, f1](const std::vector<std::size_t>& sel) {
          std::vector<std::size_t> s;
          for (std::size_t k : sel) s.push_back(idx[k]);
          const ClassScores cs = classification_scores(truth, p, C, s);
          return 100.0 * (f1 ? cs.macro_f1 : cs.accuracy);
        };
      };
      const Interval acc = bootstrap(idx.size(), stat(pa, false), B, "utility/" + task + "/accuracy");
      const Interval f1 = bootstrap(idx.size(), stat(pa, true), B, "utility/" + task + "/macro_f1");
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
      u["accuracy"] = interval_json(acc);
      u["macro_f1"] = interval_json(f1);
      u["per_class_f1"] = pcf;
      u["support"] = sup;
      u["original"] = {{"accuracy", 100.0 * co.accuracy}, {"macro_f1", 100.0 * co.macro_f1}, {"per_class_f1", pco}};
      rep.utility_macro_f1[task] = f1;
    } else {
      u["note"] = t < 0 ? "the data set has no labels for this task: agreement with the prediction on the original only"
                        : "the model's classes differ from the data set's labels for this task: agreement only";
    }
    add_column(task + "_label", truth_col);
    add_column(task + "_pred", int_column(pa));
    add_column(task + "_pred_original", int_column(po));
    utility.push_back(u);
  }
  j["utility"] = utility;

  // --- quality ---
  say("quality: PSNR, SSIM, changed share");
  std::vector<double> vp(n), vs(n), vc(n), finite_p;
  std::size_t unchanged = 0;
  for (std::size_t i = 0; i < n; ++i) {
    vp[i] = psnr(anon_mats[i], orig_mats[i]);
    vs[i] = ssim(anon_mats[i], orig_mats[i]);
    vc[i] = 100.0 * changed_share(anon_mats[i], orig_mats[i]);
    if (std::isfinite(vp[i])) finite_p.push_back(vp[i]);
    else ++unchanged;
  }
  rep.psnr = bootstrap_mean(finite_p, B, "quality/psnr");
  rep.ssim = bootstrap_mean(vs, B, "quality/ssim");
  rep.changed_share = bootstrap_mean(vc, B, "quality/changed");
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
  j["quality"] = {
      {"psnr_db", interval_json(rep.psnr)},
      {"psnr_median_db", finite_p.empty() ? json(nullptr) : json(percentile(finite_p, 50))},
      {"psnr_note", "mean over changed images; unchanged images (PSNR = inf) are counted in 'unchanged_images'"},
      {"unchanged_images", unchanged},
      {"ssim", interval_json(rep.ssim)},
      {"changed_share_percent", interval_json(rep.changed_share)},
      {"passes_to_stop",
       {{"histogram", hist},
        {"never_stopped", never},
        {"mean", stops.empty() ? json(nullptr) : json(bootstrap_mean(stops, {0, 0, 0.95}, "").value)},
        {"median", stops.empty() ? json(nullptr) : json(percentile(stops, 50))},
        {"max", stops.empty() ? json(nullptr) : json(*std::max_element(stops.begin(), stops.end()))}}}};
  {
    std::vector<std::string> a, b, c;
    for (std::size_t i = 0; i < n; ++i) a.push_back(fmt(vp[i])), b.push_back(fmt(vs[i])), c.push_back(fmt(vc[i]));
    add_column("psnr", a);
    add_column("ssim", b);
    add_column("changed_percent", c);
  }
  j["notes"] = notes;
  j["evaluate_seconds"] = std::chrono::duration<double>(Clock::now() - t0).count();
  rep.notes = notes;
  rep.json = j.dump(2) + "\n";

  if (cfg.write_files) {
    std::string csv = "";
    std::vector<std::string> head = {"id", "split", "identity", "status", "stop_pass"};
    for (const auto& [name, v] : per_image) head.push_back(name);
    csv += csv_line(head);
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<std::string> row = {items[i].id, data::split_name(items[i].split), std::to_string(items[i].label), items[i].status,
                                      std::to_string(items[i].stop_pass)};
      for (const auto& [name, v] : per_image) row.push_back(v[i]);
      csv += csv_line(row);
    }
    write_file_atomic(rundir / "metrics-images.csv", csv);
    write_metrics_json(rundir / "metrics.json", rep);
  }
  return rep;
}

void write_metrics_json(const fs::path& path, const MetricsReport& report) { write_file_atomic(path, report.json); }

}  // namespace edi::metrics
