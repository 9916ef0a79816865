// Tests of the face-api LibTorch port against the TF.js golden
// (tests/golden/faceapi_johns.json, made by scripts/faceapi/reference.mjs) on
// dlib's johns crops. Needs scripts/fetch_assets.sh to have been run: the
// tests fail (not skip) with a clear message when the assets are missing.
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/models/faceapi.hpp"
#include "edi/models/gallery.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

using edi::fs::path;
namespace em = edi::models;

path assets_root() {
  if (const char* env = std::getenv("EDI_ASSETS"); env != nullptr && *env != '\0') return path(env);
  return path(EDI_SOURCE_DIR) / ".assets";
}

struct Crop {
  std::string rel;  // "<Person>/<file>.jpg"
  std::string person;
  at::Tensor image;  // 3×H×W float RGB in [0,1]
  std::string rgb_sha256;
};

/// Decode as the golden's pixel source did: cv::imread + BGR→RGB.
Crop load_crop(const path& root, const std::string& rel) {
  const cv::Mat bgr = cv::imread((root / rel).string(), cv::IMREAD_COLOR);
  if (bgr.empty()) throw edi::IoError("cannot decode " + (root / rel).string());
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  std::string bytes(static_cast<std::size_t>(rgb.total() * 3), '\0');
  for (int y = 0; y < rgb.rows; ++y) std::memcpy(&bytes[std::size_t(y) * rgb.cols * 3], rgb.ptr(y), rgb.cols * 3);
  auto t = at::from_blob(bytes.data(), {rgb.rows, rgb.cols, 3}, at::kByte).permute({2, 0, 1}).to(at::kFloat) / 255.0;
  return {rel, rel.substr(0, rel.find('/')), t.contiguous(), edi::sha256_hex(bytes)};
}

/// Shared state: assets, golden and nets are loaded once for the whole file.
struct Shared {
  std::string error;  // non-empty: assets missing, every test fails with it
  nlohmann::json golden;
  std::vector<Crop> crops;  // golden order (sorted paths)
  std::shared_ptr<em::FaceRecognitionNet> recognition;
  std::shared_ptr<em::AgeGenderNet> age_gender;
  at::Tensor batch;  // 55×3×150×150
  at::Tensor emb, age, gender_logits;  // outputs on `batch`, computed once (no grad)

  /// Run both nets over all crops once (chunks of 11 keep the working set small).
  void compute_outputs() {
    if (emb.defined()) return;
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> e, a, g;
    for (std::int64_t i = 0; i < batch.size(0); i += 11) {
      const auto x = batch.slice(0, i, i + 11);
      e.push_back(recognition->embed(x));
      auto out = age_gender->predict(x);
      a.push_back(out.age_years);
      g.push_back(out.gender_logits);
    }
    emb = at::cat(e);
    age = at::cat(a);
    gender_logits = at::cat(g);
  }

  static Shared& get() {
    static Shared s = [] {
      Shared r;
      at::set_num_threads(1);
      const path johns = assets_root() / "johns";
      const path weights = assets_root() / "faceapi";
      for (const char* f : {"face_recognition_model.bin", "face_recognition_model-weights_manifest.json",
                            "age_gender_model.bin", "age_gender_model-weights_manifest.json"}) {
        if (!edi::fs::exists(weights / f)) {
          r.error = "missing asset " + (weights / f).string() + ": run scripts/fetch_assets.sh (or set EDI_ASSETS)";
          return r;
        }
      }
      if (!edi::fs::is_directory(johns / "John_Salley")) {
        r.error = "missing asset " + (johns / "John_Salley").string() + ": run scripts/fetch_assets.sh";
        return r;
      }
      const path golden = path(EDI_SOURCE_DIR) / "tests" / "golden" / "faceapi_johns.json";
      r.golden = nlohmann::json::parse(edi::read_file(golden));
      std::vector<at::Tensor> images;
      for (const auto& c : r.golden.at("crops")) {
        const auto rel = c.at("path").get<std::string>();
        if (!edi::fs::exists(johns / rel)) {
          r.error = "missing johns crop " + (johns / rel).string() + ": run scripts/fetch_assets.sh";
          return r;
        }
        r.crops.push_back(load_crop(johns, rel));
        images.push_back(r.crops.back().image);
      }
      r.batch = at::stack(images, 0);
      r.recognition = std::make_shared<em::FaceRecognitionNet>(weights);
      r.age_gender = std::make_shared<em::AgeGenderNet>(weights);
      return r;
    }();
    return s;
  }
};

#define REQUIRE_ASSETS()                        \
  Shared& S = Shared::get();                    \
  ASSERT_TRUE(S.error.empty()) << S.error;      \
  ASSERT_EQ(S.crops.size(), 55u) << "golden should list the 55 johns crops"

std::uint32_t bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// ----------------------------------------------------------- weight reader ---

TEST(FaceApiWeights, WorkedExampleRecognition) {
  REQUIRE_ASSETS();
  const auto map = em::faceapi::TfjsWeightMap::read(assets_root() / "faceapi" /
                                                    "face_recognition_model-weights_manifest.json");
  EXPECT_EQ(map.weights().size(), 117u);
  EXPECT_EQ(map.parameter_count(), 5614592);
  EXPECT_EQ(map.total_bytes(), 6444032u);

  const auto& w0 = map.weights().front();
  EXPECT_EQ(w0.name, "conv32_down/conv/filters");
  EXPECT_EQ(w0.shape, (std::vector<std::int64_t>{7, 7, 3, 32}));
  EXPECT_EQ(w0.stored_dtype, "uint8");
  EXPECT_EQ(w0.offset, 0u);
  EXPECT_EQ(w0.bytes, 4704u);
  EXPECT_EQ(w0.scale, 0.0005260649557207145);
  EXPECT_EQ(w0.min, -0.07101876902229645);
  const auto v = w0.value;
  EXPECT_EQ(bits(v[0][0][0][0].item<float>()), 0xBCF15556u);
  EXPECT_EQ(bits(v[0][0][0][1].item<float>()), 0xBC09E79Fu);
  EXPECT_EQ(bits(v[0][0][0][2].item<float>()), 0x3BE01863u);
  // HWIO [ky][kx][ci][co] → OIHW [co][ci][ky][kx].
  const auto oihw = em::faceapi::hwio_to_oihw(v);
  EXPECT_EQ(oihw.sizes(), (std::vector<std::int64_t>{32, 3, 7, 7}));
  EXPECT_EQ(bits(oihw[1][0][0][0].item<float>()), 0xBC09E79Fu);
  EXPECT_EQ(bits(oihw[2][0][0][0].item<float>()), 0x3BE01863u);
  EXPECT_TRUE(at::equal(oihw[5][2][3][6], v[3][6][2][5]));

  const auto& sw = map.at("conv32_down/scale/weights");
  EXPECT_EQ(sw.offset, 4736u);
  EXPECT_EQ(sw.value[0].item<float>(), 12.194226264953613f);
  EXPECT_EQ(sw.value[1].item<float>(), 10.55876636505127f);
  EXPECT_EQ(sw.value[2].item<float>(), 17.441326141357422f);

  const auto& f32 = map.at("conv64_down/conv1/conv/filters");  // stored raw float32
  EXPECT_EQ(f32.stored_dtype, "float32");
  EXPECT_EQ(f32.offset, 60672u);
  EXPECT_EQ(f32.value.flatten()[0].item<float>(), -0.004492271691560745f);
  EXPECT_EQ(f32.value.flatten()[1].item<float>(), -0.006515676621347666f);
  EXPECT_EQ(f32.value.flatten()[2].item<float>(), -0.0002000086533371359f);

  const auto& fc = map.at("fc");
  EXPECT_EQ(fc.offset, 6411264u);
  EXPECT_EQ(fc.value[0][0].item<float>(), -0.006796070374548435f);
  EXPECT_EQ(fc.value[0][1].item<float>(), -0.010015261359512806f);
  EXPECT_EQ(fc.value[0][2].item<float>(), 0.005365318618714809f);
  EXPECT_THROW(map.at("no/such/tensor"), edi::ModelError);
}

TEST(FaceApiWeights, WorkedExampleAgeGender) {
  REQUIRE_ASSETS();
  const auto map =
      em::faceapi::TfjsWeightMap::read(assets_root() / "faceapi" / "age_gender_model-weights_manifest.json");
  EXPECT_EQ(map.weights().size(), 51u);
  EXPECT_EQ(map.parameter_count(), 421731);
  EXPECT_EQ(map.total_bytes(), 429708u);
  const auto& f = map.at("entry_flow/conv_in/filters");
  EXPECT_EQ(bits(f.value.flatten()[0].item<float>()), 0xBDA6DD9Cu);
  EXPECT_EQ(bits(f.value.flatten()[1].item<float>()), 0xBDDE7CD0u);
  EXPECT_EQ(bits(f.value.flatten()[2].item<float>()), 0xBE909DEEu);
  const auto& b = map.at("entry_flow/conv_in/bias");
  EXPECT_EQ(b.offset, 864u);
  EXPECT_EQ(b.value[0].item<float>(), -0.29501277208328247f);
  EXPECT_EQ(b.value[1].item<float>(), -0.5300065279006958f);
  EXPECT_EQ(b.value[2].item<float>(), 0.10095573216676712f);
  EXPECT_EQ(map.at("fc/age/bias").offset, 428672u);
  EXPECT_EQ(map.at("fc/age/bias").value[0].item<float>(), 1.5334290266036987f);
  EXPECT_EQ(map.at("fc/gender/bias").value[1].item<float>(), 0.0708373561501503f);
  const auto dw = em::faceapi::depthwise_to_torch(
      map.at("entry_flow/reduction_block_0/separable_conv0/depthwise_filter").value);
  EXPECT_EQ(dw.sizes(), (std::vector<std::int64_t>{32, 1, 3, 3}));
}

// ------------------------------------------------------- preprocessing ops ---

TEST(FaceApiOps, PadToSquareAndLegacyResize) {
  // d = 3: 2 columns after (right), 1 before (left).
  const auto x = at::ones({1, 1, 4, 1});
  const auto p = em::faceapi::pad_to_square(x);
  ASSERT_EQ(p.sizes(), (std::vector<std::int64_t>{1, 1, 4, 4}));
  EXPECT_EQ(p[0][0][0][0].item<float>(), 0.f);
  EXPECT_EQ(p[0][0][0][1].item<float>(), 1.f);
  EXPECT_EQ(p[0][0][0][3].item<float>(), 0.f);
  // Legacy bilinear 4→2: src = dst·2, samples columns 0 and 2 exactly.
  const auto r = at::arange(4, at::kFloat).view({1, 1, 1, 4}).expand({1, 1, 2, 4}).contiguous();
  const auto s = em::faceapi::resize_bilinear_tf_legacy(r, 2, 2);
  EXPECT_EQ(s[0][0][0][0].item<float>(), 0.f);
  EXPECT_EQ(s[0][0][0][1].item<float>(), 2.f);
  // 4→3: src = dst·4/3 → 0, 1.333…, 2.666… (no half-pixel offset).
  const auto t = em::faceapi::resize_bilinear_tf_legacy(r, 2, 3);
  EXPECT_NEAR(t[0][0][0][1].item<float>(), 4.f / 3.f, 1e-6);
  EXPECT_NEAR(t[0][0][0][2].item<float>(), 8.f / 3.f, 1e-6);
}

// ----------------------------------------------------------------- parity ---

TEST(FaceApiParity, MatchesTfjsGoldenOnAllJohns) {
  REQUIRE_ASSETS();
  S.compute_outputs();
  const auto& emb = S.emb;
  const auto p_male = at::softmax(S.gender_logits, 1).select(1, 0);
  ASSERT_EQ(emb.sizes(), (std::vector<std::int64_t>{55, 128}));

  int same_pixels = 0;
  double max_emb = 0, max_age = 0, max_p = 0, min_cos = 1;
  for (std::size_t i = 0; i < S.crops.size(); ++i) {
    const auto& g = S.golden["crops"][i];
    const bool exact = g.at("rgb_sha256").get<std::string>() == S.crops[i].rgb_sha256;
    same_pixels += exact;
    const auto want = at::tensor(g.at("descriptor").get<std::vector<float>>());
    const auto got = emb[static_cast<std::int64_t>(i)];
    const double d_emb = (got - want).abs().max().item<double>();
    const double cos = at::cosine_similarity(got, want, 0).item<double>();
    const double d_age = std::abs(S.age[static_cast<std::int64_t>(i)].item<double>() - g.at("age").get<double>());
    const double d_p = std::abs(p_male[i].item<double>() - g.at("p_male").get<double>());
    max_emb = std::max(max_emb, d_emb);
    max_age = std::max(max_age, d_age);
    max_p = std::max(max_p, d_p);
    min_cos = std::min(min_cos, cos);
    // Required bounds (hold across JPEG decoders too).
    EXPECT_GE(cos, 0.999) << S.crops[i].rel;
    EXPECT_LE(d_age, 1.0) << S.crops[i].rel;
    EXPECT_LE(d_p, 0.01) << S.crops[i].rel;
    if (exact) {  // same pixels as the golden: float32-level agreement (faceapi-nets.md §5c)
      EXPECT_LT(d_emb, 1e-4) << S.crops[i].rel;
      EXPECT_LT(d_age, 1e-3) << S.crops[i].rel;
      EXPECT_LT(d_p, 1e-5) << S.crops[i].rel;
    }
  }
  std::printf("[parity] identical decoded pixels on %d/55 crops; max|d emb| %.3g, min cosine %.9f, "
              "max|d age| %.3g y, max|d P(male)| %.3g\n",
              same_pixels, max_emb, min_cos, max_age, max_p);
  EXPECT_EQ(same_pixels, 55) << "this OpenCV/libjpeg decodes the johns JPEGs differently from the golden's "
                                "pixels; only decoder-level bounds were checked";
}

// ------------------------------------------------------ identification ---

TEST(FaceApiGallery, HeldOutJohnsRank1) {
  REQUIRE_ASSETS();
  std::map<std::string, std::vector<at::Tensor>> per_person;
  for (const auto& c : S.crops) per_person[c.person].push_back(c.image);
  std::map<std::string, at::Tensor> enrol;
  std::vector<at::Tensor> held;
  std::vector<std::int64_t> held_label;
  std::int64_t label = 0;
  for (auto& [person, imgs] : per_person) {
    ASSERT_EQ(imgs.size(), 11u) << person;
    enrol[person] = at::stack(std::vector<at::Tensor>(imgs.begin(), imgs.begin() + 6), 0);
    for (std::size_t k = 6; k < imgs.size(); ++k) {
      held.push_back(imgs[k]);
      held_label.push_back(label);
    }
    ++label;
  }
  const auto held_batch = at::stack(held, 0);
  const auto truth = at::tensor(held_label);
  for (auto score : {em::GalleryScore::Cosine, em::GalleryScore::NegSquaredL2}) {
    em::GalleryOptions opt;
    opt.score = score;
    em::GalleryClassifier gallery(S.recognition, enrol, opt);
    ASSERT_EQ(gallery.info().classes,
              (std::vector<std::string>{"John_Salley", "John_Savage", "John_Schneider", "John_Shimkus", "John_Simm"}));
    at::NoGradGuard no_grad;
    const auto logits = gallery.logits(held_batch);
    ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{25, 5}));
    const double rank1 = (logits.argmax(1) == truth).to(at::kDouble).mean().item<double>();
    const auto dist = gallery.distances(held_batch);
    const double rank1_dist = (dist.argmin(1) == truth).to(at::kDouble).mean().item<double>();
    std::printf("[gallery] %s: held-out rank-1 %.1f%% (25 crops, 6 enrolled per person); nearest-centroid %.1f%%\n",
                score == em::GalleryScore::Cosine ? "scale*cosine" : "-distance^2", 100 * rank1, 100 * rank1_dist);
    EXPECT_GE(rank1, 0.95);
    EXPECT_GE(rank1_dist, 0.95);
  }
}

TEST(FaceApiGallery, VerificationDistances) {
  REQUIRE_ASSETS();
  S.compute_outputs();
  const auto& emb = S.emb;
  const auto d = em::embedding_distances(emb, emb);
  int same = 0, same_below = 0, diff = 0, diff_above = 0;
  double same_max = 0, diff_min = 1e9;
  for (std::size_t i = 0; i < S.crops.size(); ++i) {
    for (std::size_t j = i + 1; j < S.crops.size(); ++j) {
      const double v = d[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(j)].item<double>();
      if (S.crops[i].person == S.crops[j].person) {
        ++same;
        same_below += v < em::kDlibVerificationThreshold;
        same_max = std::max(same_max, v);
      } else {
        ++diff;
        diff_above += v >= em::kDlibVerificationThreshold;
        diff_min = std::min(diff_min, v);
      }
    }
  }
  std::printf("[verify] same-person < 0.6: %d/%d (max %.4f); different-person >= 0.6: %d/%d (min %.4f)\n",
              same_below, same, same_max, diff_above, diff, diff_min);
  EXPECT_EQ(same, 275);
  EXPECT_EQ(diff, 1210);
  EXPECT_GE(same_below, 0.95 * same);
  EXPECT_GE(diff_above, 0.95 * diff);
  EXPECT_NEAR(d.diagonal().abs().max().item<double>(), 0.0, 1e-5);
  // same_person() agrees with the distance rule pairwise.
  const auto a = emb.slice(0, 0, 54), b = emb.slice(0, 1, 55);
  const auto expected = (a - b).norm(2, 1) < em::kDlibVerificationThreshold;
  EXPECT_TRUE(at::equal(em::same_person(a, b), expected));
}

// ------------------------------------------------------------ age/gender ---

TEST(FaceApiAgeGender, AllJohnsMaleAndPlausibleAges) {
  REQUIRE_ASSETS();
  S.compute_outputs();
  const auto p_male = at::softmax(S.gender_logits, 1).select(1, 0);
  std::printf("[age-gender] P(male) min %.4f over 55 crops; ages %.1f..%.1f years\n", p_male.min().item<double>(),
              S.age.min().item<double>(), S.age.max().item<double>());
  EXPECT_EQ((p_male > 0.5).sum().item<std::int64_t>(), 55) << "every johns crop should be 'male'";
  EXPECT_GT(p_male.min().item<double>(), 0.9);
  EXPECT_GT(S.age.min().item<double>(), 25.0);
  EXPECT_LT(S.age.max().item<double>(), 75.0);

  // Classifier adapter: sorted classes, face-api's logits reordered.
  em::AgeGenderClassifier gender(S.age_gender, "gender");
  EXPECT_EQ(gender.info().classes, (std::vector<std::string>{"female", "male"}));
  EXPECT_EQ(gender.info().task, "gender");
  at::NoGradGuard no_grad;
  const auto x = S.batch.slice(0, 0, 11);
  const auto logits = gender.logits(x);
  ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{11, 2}));
  EXPECT_EQ((logits.argmax(1) == 1).sum().item<std::int64_t>(), 11) << "column 1 is 'male'";
  const auto raw = S.age_gender->predict(x);
  EXPECT_TRUE(at::equal(logits.select(1, 1), raw.gender_logits.select(1, 0)));
  EXPECT_TRUE(at::equal(logits.select(1, 0), raw.gender_logits.select(1, 1)));
  EXPECT_TRUE(at::allclose(S.age_gender->male_probability(x), p_male.slice(0, 0, 11)));
  em::AgeGenderClassifier age(S.age_gender, "age");
  EXPECT_EQ(age.info().classes, (std::vector<std::string>{"age_years"}));
  EXPECT_TRUE(at::equal(age.logits(x).squeeze(1), raw.age_years));
  EXPECT_THROW(em::AgeGenderClassifier(S.age_gender, "race"), edi::ModelError);
}

// ----------------------------------------- gradients, determinism, errors ---

TEST(FaceApiNets, InputGradientFiniteAndNonZero) {
  REQUIRE_ASSETS();
  const auto x = S.batch.slice(0, 0, 2).clone().requires_grad_(true);
  const auto e = S.recognition->embed(x);
  e.pow(2).sum().backward();
  const auto g1 = x.grad().clone();
  EXPECT_TRUE(at::isfinite(g1).all().item<bool>());
  EXPECT_GT(g1.abs().sum().item<double>(), 0.0);

  x.mutable_grad().zero_();
  em::AgeGenderClassifier gender(S.age_gender, "gender");
  gender.logits(x).select(1, 1).sum().backward();
  const auto g2 = x.grad();
  EXPECT_TRUE(at::isfinite(g2).all().item<bool>());
  EXPECT_GT(g2.abs().sum().item<double>(), 0.0);

  // Through a gallery built on the recognition net.
  std::map<std::string, at::Tensor> enrol{{"a", S.batch.slice(0, 2, 4)}, {"b", S.batch.slice(0, 12, 14)}};
  em::GalleryClassifier gallery(S.recognition, enrol);
  x.mutable_grad().zero_();
  gallery.logits(x).select(1, 0).sum().backward();
  EXPECT_TRUE(at::isfinite(x.grad()).all().item<bool>());
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
  // Parameters stay frozen.
  for (const auto& w : {S.recognition->parameter_count(), S.age_gender->parameter_count()}) EXPECT_GT(w, 0);
  EXPECT_EQ(S.recognition->parameter_count(), 5614592);
  EXPECT_EQ(S.age_gender->parameter_count(), 421731);
}

TEST(FaceApiNets, DeterministicAndBatchConsistent) {
  REQUIRE_ASSETS();
  at::NoGradGuard no_grad;
  const auto x = S.batch.slice(0, 0, 4);
  EXPECT_TRUE(at::equal(S.recognition->embed(x), S.recognition->embed(x)));
  const auto a = S.age_gender->predict(x), b = S.age_gender->predict(x);
  EXPECT_TRUE(at::equal(a.age_years, b.age_years));
  EXPECT_TRUE(at::equal(a.gender_logits, b.gender_logits));
  // One image alone vs inside a batch: same up to float reassociation.
  EXPECT_LT((S.recognition->embed(x.slice(0, 2, 3)) - S.recognition->embed(x).slice(0, 2, 3)).abs().max().item<double>(),
            1e-5);
}

TEST(FaceApiNets, MissingAssetIsOneClearModelError) {
  REQUIRE_ASSETS();
  const path empty = path(EDI_BINARY_DIR) / "faceapi-empty-assets";
  edi::fs::create_directories(empty);
  const char* old = std::getenv("EDI_ASSETS");
  const std::string saved = old ? old : "";
  ::setenv("EDI_ASSETS", empty.c_str(), 1);
  for (const std::string ref : {"faceapi:age-gender", "faceapi:recognition"}) {
    try {
      if (ref == "faceapi:recognition") {
        (void)em::load_faceapi_embedder(ref);
      } else {
        (void)em::load_faceapi_classifier(ref);
      }
      ADD_FAILURE() << ref << " loaded from an empty asset dir";
    } catch (const edi::ModelError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find((empty / "faceapi").string()), std::string::npos) << msg;
      EXPECT_NE(msg.find("scripts/fetch_assets.sh"), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  if (old) ::setenv("EDI_ASSETS", saved.c_str(), 1); else ::unsetenv("EDI_ASSETS");
  EXPECT_THROW(em::load_faceapi_classifier("faceapi:recognition"), edi::ModelError);
  EXPECT_THROW(em::load_faceapi_classifier("faceapi:nope"), edi::ModelError);
  EXPECT_THROW(em::load_faceapi_embedder("faceapi:age-gender"), edi::ModelError);
  EXPECT_THROW(em::load_faceapi_classifier("faceapi:age-gender", {"cpu", "height"}), edi::ModelError);
  EXPECT_THROW(em::load_faceapi_classifier("faceapi:age-gender", {"tpu", ""}), edi::ConfigError);
}

TEST(FaceApiNets, LoadersHonourOptions) {
  REQUIRE_ASSETS();
  const char* old = std::getenv("EDI_ASSETS");
  const std::string saved = old ? old : "";
  ::setenv("EDI_ASSETS", assets_root().c_str(), 1);
  auto gender = em::load_faceapi_classifier("faceapi:age-gender", {"cpu", ""});
  auto age = em::load_faceapi_classifier("faceapi:age-gender", {"cpu", "age"});
  auto emb = em::load_faceapi_embedder("faceapi:recognition", {"cpu", ""});
  if (old) ::setenv("EDI_ASSETS", saved.c_str(), 1); else ::unsetenv("EDI_ASSETS");
  EXPECT_EQ(gender->info().task, "gender");
  EXPECT_EQ(gender->info().backend, "faceapi");
  EXPECT_EQ(gender->info().file_sha256, "49f92bbc0afef2342c4385e4a2b0acb6d7a727c6f0aa539499719a81acf9abaa");
  EXPECT_EQ(age->info().task, "age");
  EXPECT_EQ(emb->info().input_size, 150);
  EXPECT_EQ(emb->info().file_sha256, "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589");
  EXPECT_EQ(gender->device().type(), c10::DeviceType::CPU);
  at::NoGradGuard no_grad;
  const auto x = S.batch.slice(0, 0, 1);
  EXPECT_TRUE(at::equal(emb->embed(x), S.recognition->embed(x)));
}

// ------------------------------------------------------------------ speed ---

TEST(FaceApiNets, ForwardTimingOneThread) {
  REQUIRE_ASSETS();
  at::NoGradGuard no_grad;
  at::set_num_threads(1);
  auto time_ms = [](auto&& fn, int reps) {
    fn();  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) fn();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  };
  const auto x1 = S.batch.slice(0, 0, 1), x32 = S.batch.slice(0, 0, 32);
  at::Tensor e32, a32;
  const double r1 = time_ms([&] { (void)S.recognition->embed(x1); }, 5);
  const double r32 = time_ms([&] { e32 = S.recognition->embed(x32); }, 1);
  const double g1 = time_ms([&] { (void)S.age_gender->predict(x1); }, 5);
  const double g32 = time_ms([&] { a32 = S.age_gender->predict(x32).age_years; }, 1);
  std::printf("[timing] 1 thread, ms/image: recognition batch1 %.1f batch32 %.1f; age-gender batch1 %.1f batch32 %.1f\n",
              r1, r32 / 32, g1, g32 / 32);
  EXPECT_EQ(e32.sizes(), (std::vector<std::int64_t>{32, 128}));
  EXPECT_EQ(a32.sizes(), (std::vector<std::int64_t>{32}));
}

}  // namespace
