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
  EXPECT_EQ(m["version"], 2);
  EXPECT_EQ(m["privacy"]["unit"], "identity");
  EXPECT_EQ(m["privacy"]["seed"], 5);
  // The steering model on unchanged test images (its heldout threat model) = its own test accuracy (sidecar).
  const json side = read_json(fs::path(s.id_model.string() + ".json"));
  const json& held = m["privacy"]["steering"]["top1"]["heldout"];
  EXPECT_NEAR(held["value"].get<double>(), 100.0 * side["training"]["test_accuracy"].get<double>(), 1e-9);
  EXPECT_EQ(held["n_identities"].get<int>(), 6);
  EXPECT_NE(m["privacy"]["steering"]["heldout_check"].get<std::string>().find("equals the run's"), std::string::npos);
  // Utility: predictions on unchanged images agree with those on the originals.
  const json& u = m["utility"][0];
  EXPECT_EQ(u["task"], "gender");
  EXPECT_TRUE(u["labels"].get<bool>());
  EXPECT_DOUBLE_EQ(u["agreement_with_original"]["value"].get<double>(), 100.0);
  EXPECT_NEAR(u["accuracy"]["value"].get<double>(), u["original"]["accuracy"].get<double>(), 1e-9);
  EXPECT_NEAR(u["macro_f1"]["value"].get<double>(), u["original"]["macro_f1"].get<double>(), 1e-9);
  // LBPH linkage holds every original: an unchanged image is at distance 0 from its own original.
  const auto t = read_csv(s.conv1 / "metrics-images.csv");
  const int c_link = edi::csv_column(t, "lbph_rank_linkage"), c_held = edi::csv_column(t, "lbph_rank_heldout");
  ASSERT_GE(c_link, 0);
  ASSERT_GE(c_held, 0);
  for (const auto& row : t.rows) EXPECT_EQ(row[static_cast<std::size_t>(c_link)], "0") << row[0];
  EXPECT_EQ(static_cast<int>(t.rows.size()), n);
  const json& lbph = m["privacy"]["attackers"][0];
  EXPECT_EQ(lbph["top1"]["linkage"]["value"].get<double>(), 100.0);
  EXPECT_EQ(lbph["top1"]["linkage"]["method"], "clopper-pearson");  // 100 %: never a zero-width interval
  EXPECT_LT(lbph["top1"]["linkage"]["lo"].get<double>(), 100.0);
  EXPECT_LE(lbph["top1"]["heldout"]["value"].get<double>(), 100.0);
  EXPECT_TRUE(lbph["threat_models"].contains("heldout"));
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
  EXPECT_NEAR(st["top1"]["in_loop"]["value"].get<double>(), summary["final_risk_percent"].get<double>(), 1e-9);
  EXPECT_LE(st["top1"]["in_loop"]["lo"].get<double>(), st["top1"]["in_loop"]["value"].get<double>());
  EXPECT_GE(st["top1"]["in_loop"]["hi"].get<double>(), st["top1"]["in_loop"]["value"].get<double>());
  EXPECT_GE(st["top5"]["in_loop"]["value"].get<double>(), st["top1"]["in_loop"]["value"].get<double>());
  // The steering model passed as an attacker is flagged as steered, not independent.
  bool saw_steered = false, saw_adaptive = false;
  for (const auto& at : a["privacy"]["attackers"]) {
    if (at["name"] == "model:id.pt") saw_steered = at["steered"].get<bool>();
    if (at["name"] == "adaptive") {
      saw_adaptive = at["available"].get<bool>();
      // Trained by `train` on the anonymized train split: heldout = test split, linkage = train split.
      EXPECT_EQ(at["top1"]["heldout"]["n"].get<int>(), a["images_by_split"]["test"].get<int>());
      EXPECT_EQ(at["top1"]["linkage"]["n"].get<int>(), a["images_by_split"]["train"].get<int>());
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
  const json& ia = a["privacy"]["steering"]["top1"]["in_loop"];
  const json& ic = c["privacy"]["steering"]["top1"]["in_loop"];
  EXPECT_EQ(ia["value"], ic["value"]);
  EXPECT_EQ(ia["method"], "cluster-bootstrap");
  EXPECT_NE(ia["lo"].get<double>() + ia["hi"].get<double>(), ic["lo"].get<double>() + ic["hi"].get<double>());
  EXPECT_EQ(c["privacy"]["seed"], 2);
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

TEST(EvaluateCli, ControlRowSteeringRateIsTheModelsAccuracyOnTheOriginals) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path control = copy_run(s.control, tmp / "control");
  const auto r = run_edi("evaluate " + control.string() + " --attacker lbph --bootstrap 100");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json m = read_json(control / "metrics.json");
  EXPECT_EQ(m["run"]["method"], "none");
  // Accuracy of the steering model on all originals = the sidecar's per-split accuracies weighted by split size.
  const json tr = read_json(fs::path(s.id_model.string() + ".json"))["training"];
  const double correct = tr["train_accuracy"].get<double>() * tr["train_images"].get<double>() +
                         tr["val_accuracy"].get<double>() * tr["val_images"].get<double>() +
                         tr["test_accuracy"].get<double>() * tr["test_images"].get<double>();
  const double total = tr["train_images"].get<double>() + tr["val_images"].get<double>() + tr["test_images"].get<double>();
  EXPECT_EQ(m["images"].get<double>(), total);
  EXPECT_NEAR(m["privacy"]["steering"]["top1"]["in_loop"]["value"].get<double>(), 100.0 * correct / total, 1e-6);
  EXPECT_EQ(m["quality"]["changed_share_percent"]["value"].get<double>(), 0.0);
}

TEST(EvaluateCli, SnapshotsAreEvaluatedWithTheRun) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path run = copy_run(s.edi, tmp / "edi-blur-k3");
  const auto r = run_edi("evaluate " + run.string() + " --attacker lbph --bootstrap 50");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path snap = run / "snapshots" / s.snapshot_target;
  EXPECT_NE(r.output.find((snap / "metrics.json").string()), std::string::npos) << r.output;
  const json m = read_json(snap / "metrics.json");
  const json sj = read_json(snap / "snapshot.json");
  EXPECT_EQ(m["version"], 2);
  EXPECT_EQ(m["run"]["snapshot"]["target_percent"], sj["target_percent"]);
  EXPECT_EQ(m["run"]["passes_run"], sj["pass"]);
  // The snapshot's steering risk is what snapshot.json recorded, and at or below its target.
  const double risk = m["privacy"]["steering"]["top1"]["in_loop"]["value"].get<double>();
  EXPECT_NEAR(risk, sj["risk_percent"].get<double>(), 1e-9);
  EXPECT_LE(risk, sj["target_percent"].get<double>());
  EXPECT_TRUE(m["privacy"]["attackers"][0]["top1"].contains("linkage"));
}

TEST(EvaluateCli, AClassifierTrainedOnAnotherSplitIsRefused) {
  // A model whose sidecar records a different training manifest may have seen
  // test-split probes: heldout cannot be stated, so the attacker is refused.
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path model = tmp / "other-split.pt";
  const auto t = run_edi("train --data " + s.data.string() + " --size 32 --epochs 1 --seed 2 --test-fraction 0.3 --out " + model.string());
  ASSERT_EQ(t.exit_code, 0) << t.output;
  const fs::path run = copy_run(s.conv5, tmp / "conv-blur-k5");
  const auto r = run_edi("evaluate " + run.string() + " --attacker " + model.string() + " --bootstrap 20");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json m = read_json(run / "metrics.json");
  const json& a = m["privacy"]["attackers"][0];
  EXPECT_FALSE(a["available"].get<bool>());
  EXPECT_NE(a["reason"].get<std::string>().find("refused"), std::string::npos) << a["reason"];
  EXPECT_NE(a["reason"].get<std::string>().find("differs from the run's"), std::string::npos) << a["reason"];
  EXPECT_NE(r.output.find("not available: refused"), std::string::npos) << r.output;
  EXPECT_FALSE(a.contains("top1"));
}

TEST(EvaluateCli, AnUnfinishedRunIsRefused) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path run = copy_run(s.conv5, tmp / "conv-blur-k5");
  fs::remove(run / "complete.json");
  const auto r = run_edi("evaluate " + run.string());
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("complete.json"), std::string::npos) << r.output;
}

// A model that steered a run (one member of an ensemble) or judged it (--judge)
// is reported as "not independent", never with a rate of its own, both in
// metrics.json and in the aggregate's table; with another run it steered
// nothing, the same model is an independent attacker with its rates.
TEST(EvaluateCli, AModelThatSteeredOrJudgedTheRunIsNotIndependent) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path other = tmp / "other-id.pt";
  const auto t = run_edi("train --data " + s.data.string() + " --size 32 --epochs 2 --seed 7 --out " + other.string());
  ASSERT_EQ(t.exit_code, 0) << t.output;
  const std::string data = " --data " + s.data.string() + " --operator blur --k 3 --max-passes 2 --threads 1";
  const fs::path judged = tmp / "judged", ensemble = tmp / "ensemble";
  auto r = run_edi("run" + data + " --model " + s.id_model.string() + " --judge " + other.string() + " --out " + judged.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_edi("run" + data + " --model " + s.id_model.string() + "," + other.string() + " --out " + ensemble.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path independent = copy_run(s.conv5, tmp / "conv-blur-k5");
  const fs::path agg = tmp / "agg";
  r = run_edi("aggregate " + judged.string() + " " + ensemble.string() + " " + independent.string() + " --out " + agg.string() +
              " --evaluate --attacker lbph," + other.string() + " --bootstrap 20");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto attacker = [&](const fs::path& run) {
    const json m = read_json(run / "metrics.json");
    for (const auto& a : m["privacy"]["attackers"])
      if (a.value("name", "") == "model:other-id.pt") return a;
    ADD_FAILURE() << run << ": no attacker model:other-id.pt in " << m["privacy"]["attackers"].dump() << "\n" << r.output;
    return json::object();
  };
  const json j = attacker(judged), e = attacker(ensemble), i = attacker(independent);
  EXPECT_FALSE(j.value("independent", true)) << j.dump();
  EXPECT_FALSE(j.contains("top1")) << j.dump();
  EXPECT_NE(j.value("reason", "").find("judged this run"), std::string::npos) << j.dump();
  EXPECT_NE(j.value("reason", "").find("not independent"), std::string::npos) << j.dump();
  EXPECT_TRUE(e.value("steered", false)) << e.dump();
  EXPECT_FALSE(e.value("independent", true)) << e.dump();
  EXPECT_TRUE(i.value("independent", true)) << i.dump();
  EXPECT_FALSE(i.value("steered", true)) << i.dump();
  EXPECT_TRUE(i["top1"].contains("heldout")) << i.dump();
  // aggregate.md: the judged and the ensemble rows say so in the attacker's cells; the other run has numbers.
  const std::string md = edi::read_file(agg / "aggregate.md");
  for (const char* row : {"| judged |", "| ensemble |"}) {
    const auto at = md.find(row);
    ASSERT_NE(at, std::string::npos) << md;
    EXPECT_NE(md.substr(at, md.find('\n', at) - at).find("not independent"), std::string::npos) << md.substr(at, md.find('\n', at) - at);
  }
  const auto at = md.find("| conv-blur-k5 |");
  ASSERT_NE(at, std::string::npos) << md;
  EXPECT_EQ(md.substr(at, md.find('\n', at) - at).find("not independent"), std::string::npos);
}
