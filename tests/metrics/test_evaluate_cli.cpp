// `edi-anon evaluate` on real runs: known answers on constructed cases.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "edi/core/csv.hpp"
#include "edi/core/fs.hpp"
#include "metrics/sweep_fixture.hpp"

using nlohmann::json;
using namespace edi::testing;
namespace fs = std::filesystem;

namespace {
json read_json(const fs::path& p) { return json::parse(edi::read_file(p)); }
edi::CsvTable read_csv(const fs::path& p) { return edi::parse_csv(edi::read_file(p), p.string()); }
}  // namespace

TEST(EvaluateCli, UnchangedImagesGiveKnownAnswers) {
  const Sweep& s = sweep();
  const auto r = run_edi("evaluate " + s.conv1.string() + " --utility gender=" + s.gender_model.string() +
                         " --attacker lbph --bootstrap 200 --seed 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json m = read_json(s.conv1 / "metrics.json");
  EXPECT_EQ(m["format"], "edi-anon-metrics");
  const int n = m["images"];
  EXPECT_EQ(n, 72);
  EXPECT_NEAR(m["random_guess_percent"]["top1"].get<double>(), 100.0 / 6.0, 1e-9);
  // Blur with k = 1 changes nothing: PSNR inf for all, SSIM 1, changed share 0.
  EXPECT_EQ(m["quality"]["unchanged_images"].get<int>(), n);
  EXPECT_NEAR(m["quality"]["ssim"]["value"].get<double>(), 1.0, 1e-9);
  EXPECT_EQ(m["quality"]["changed_share_percent"]["value"].get<double>(), 0.0);
  // The steering model on unchanged test images = its own test accuracy (sidecar).
  const json side = read_json(fs::path(s.id_model.string() + ".json"));
  EXPECT_NEAR(m["privacy"]["steering"]["top1"]["test"]["value"].get<double>(), 100.0 * side["training"]["test_accuracy"].get<double>(), 1e-9);
  // Utility: predictions on unchanged images agree with those on the originals.
  const json& u = m["utility"][0];
  EXPECT_EQ(u["task"], "gender");
  EXPECT_TRUE(u["labels"].get<bool>());
  EXPECT_DOUBLE_EQ(u["agreement_with_original"]["value"].get<double>(), 100.0);
  EXPECT_NEAR(u["accuracy"]["value"].get<double>(), u["original"]["accuracy"].get<double>(), 1e-9);
  EXPECT_NEAR(u["macro_f1"]["value"].get<double>(), u["original"]["macro_f1"].get<double>(), 1e-9);
  // LBPH trained on the original train images: an unchanged train image is at distance 0 from itself.
  const auto t = read_csv(s.conv1 / "metrics-images.csv");
  const int c_split = edi::csv_column(t, "split"), c_lbph = edi::csv_column(t, "lbph_rank");
  ASSERT_GE(c_lbph, 0);
  int train = 0;
  for (const auto& row : t.rows)
    if (row[static_cast<std::size_t>(c_split)] == "train") {
      ++train;
      EXPECT_EQ(row[static_cast<std::size_t>(c_lbph)], "0") << row[0];
    }
  EXPECT_GT(train, 0);
  EXPECT_EQ(static_cast<int>(t.rows.size()), n);
}

TEST(EvaluateCli, RiskMatchesTheRunAndIntervalsAreSeeded) {
  const Sweep& s = sweep();
  const std::string base = "evaluate " + s.conv5.string() + " --attacker lbph,adaptive," + s.id_model.string() +
                           " --adaptive-epochs 3 --bootstrap 300";
  auto r = run_edi(base + " --seed 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json a = read_json(s.conv5 / "metrics.json");
  const json summary = read_json(s.conv5 / "summary.json");
  // Steering top-1 on the written images equals the engine's final risk (same 8-bit state).
  const json& st = a["privacy"]["steering"];
  EXPECT_NEAR(st["top1"]["all"]["value"].get<double>(), summary["final_risk_percent"].get<double>(), 1e-9);
  EXPECT_LE(st["top1"]["all"]["lo"].get<double>(), st["top1"]["all"]["value"].get<double>());
  EXPECT_GE(st["top1"]["all"]["hi"].get<double>(), st["top1"]["all"]["value"].get<double>());
  EXPECT_GE(st["top5"]["all"]["value"].get<double>(), st["top1"]["all"]["value"].get<double>());
  // The steering model passed as an attacker is flagged as steered, not independent.
  bool saw_steered = false, saw_adaptive = false;
  for (const auto& at : a["privacy"]["attackers"]) {
    if (at["name"] == "model:id.pt") saw_steered = at["steered"].get<bool>();
    if (at["name"] == "adaptive") {
      saw_adaptive = at["available"].get<bool>();
      EXPECT_FALSE(at["top1"].contains("all"));  // tested on held-out images only
      EXPECT_EQ(at["top1"]["test"]["n"].get<int>(), a["images_by_split"]["test"].get<int>());
    }
  }
  EXPECT_TRUE(saw_steered);
  EXPECT_TRUE(saw_adaptive);
  const double ps = a["quality"]["psnr_db"]["value"].get<double>();
  EXPECT_GT(ps, 10.0);
  EXPECT_LT(ps, 60.0);
  EXPECT_GT(a["quality"]["changed_share_percent"]["value"].get<double>(), 50.0);
  // Conventional: every image has exactly one evaluation → stop pass 0 or never.
  const json& h = a["quality"]["passes_to_stop"];
  EXPECT_EQ(h["histogram"].value("0", 0) + h["never_stopped"].get<int>(), a["images"].get<int>());
  // Same seed → the same intervals; another seed → different ones.
  r = run_edi(base + " --seed 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json b = read_json(s.conv5 / "metrics.json");
  EXPECT_EQ(a["privacy"], b["privacy"]);
  EXPECT_EQ(a["quality"]["ssim"], b["quality"]["ssim"]);
  r = run_edi(base + " --seed 2 --attacker lbph");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json c = read_json(s.conv5 / "metrics.json");
  EXPECT_EQ(a["privacy"]["steering"]["top1"]["all"]["value"], c["privacy"]["steering"]["top1"]["all"]["value"]);
  EXPECT_NE(a["privacy"]["steering"]["top1"]["all"]["lo"].get<double>() + a["privacy"]["steering"]["top1"]["all"]["hi"].get<double>(),
            c["privacy"]["steering"]["top1"]["all"]["lo"].get<double>() + c["privacy"]["steering"]["top1"]["all"]["hi"].get<double>());
}

TEST(EvaluateCli, AdaptiveAttackerNeedsBothSplits) {
  const Sweep& s = sweep();
  const auto r = run_edi("evaluate " + s.train_only.string() + " --attacker adaptive,lbph --bootstrap 50");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json m = read_json(s.train_only / "metrics.json");
  bool found = false;
  for (const auto& at : m["privacy"]["attackers"])
    if (at["name"] == "adaptive") {
      found = true;
      EXPECT_FALSE(at["available"].get<bool>());
      EXPECT_NE(at["reason"].get<std::string>().find("only train"), std::string::npos) << at["reason"];
    }
  EXPECT_TRUE(found);
  EXPECT_NE(r.output.find("attacker adaptive not available"), std::string::npos) << r.output;
}

TEST(EvaluateCli, EdiRunPassesToStopAndFaceApiGallery) {
  const Sweep& s = sweep();
  const auto r = run_edi("evaluate " + s.edi.string() + " --attacker faceapi --utility gender=" + s.gender_model.string() +
                         " --utility age=faceapi:age-gender --bootstrap 100");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json m = read_json(s.edi / "metrics.json");
  // Passes-to-stop histogram and never-stopped count partition the images, and match outcomes.csv.
  const auto o = read_csv(s.edi / "outcomes.csv");
  const int c_stop = edi::csv_column(o, "stop_pass");
  std::map<std::string, int> expect;
  int never = 0;
  for (const auto& row : o.rows) {
    const std::string& v = row[static_cast<std::size_t>(c_stop)];
    if (v == "-1") ++never;
    else ++expect[v];
  }
  const json& h = m["quality"]["passes_to_stop"];
  EXPECT_EQ(h["never_stopped"].get<int>(), never);
  for (const auto& [k, v] : expect) EXPECT_EQ(h["histogram"][k].get<int>(), v) << k;
  const json& fa = m["privacy"]["attackers"][0];
  EXPECT_EQ(fa["name"], "faceapi");
  ASSERT_TRUE(fa["available"].get<bool>()) << fa.dump();
  const double v = fa["verification"]["rate"]["value"].get<double>();
  EXPECT_GE(v, 0.0);
  EXPECT_LE(v, 100.0);
  EXPECT_TRUE(fa["verification"]["mean_distance"]["value"].get<double>() > 0.0);
  // Age regression head: MAE against the prediction on the original, >= 0.
  bool age = false;
  for (const auto& u : m["utility"])
    if (u["task"] == "age") {
      age = true;
      EXPECT_EQ(u["kind"], "regression");
      EXPECT_GE(u["mae_vs_original"]["value"].get<double>(), 0.0);
    }
  EXPECT_TRUE(age);
}

TEST(EvaluateCli, BadArgumentsAreConfigErrors) {
  const Sweep& s = sweep();
  auto r = run_edi("evaluate " + (s.root / "nope").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_edi("evaluate " + s.conv5.string() + " --utility gender");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("TASK=MODEL"), std::string::npos) << r.output;
  r = run_edi("evaluate " + s.conv5.string() + " --bootstrap -3");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_edi("evaluate " + s.data.string());
  EXPECT_EQ(r.exit_code, 3) << r.output;  // not a run directory
}
