// Error paths of load_classifier / check_classes / the sidecar: one clear
// line naming the file and what was expected.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/manifest.hpp"
#include "edi/models/classifier.hpp"
#include "fixtures.hpp"

namespace edi::models::testing {
namespace {

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void expect_one_line(const std::string& msg) {
  EXPECT_FALSE(msg.empty());
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(ModelErrors, NoSuchFile) {
  const std::string ref = (temp_dir() / "absent.pt").string();
  const auto msg = error_of<ModelError>([&] { load_classifier(ref); });
  EXPECT_TRUE(contains(msg, ref + ": no such model file")) << msg;
  expect_one_line(msg);
}

TEST(ModelErrors, MissingSidecar) {
  const fs::path p = temp_dir() / "nosidecar.ts";
  fs::copy_file(torchscript_model(), p, fs::copy_options::overwrite_existing);
  const auto msg = error_of<ModelError>([&] { load_classifier(p.string()); });
  EXPECT_TRUE(contains(msg, p.string() + ": missing sidecar " + p.string() + ".json")) << msg;
  EXPECT_TRUE(contains(msg, "classes")) << msg;
  expect_one_line(msg);
}

TEST(ModelErrors, BadTorchScriptFile) {
  const fs::path p = temp_dir() / "garbage.ts";
  write(p, "this is not a zip archive");
  fs::copy_file(sidecar_path(torchscript_model()), sidecar_path(p), fs::copy_options::overwrite_existing);
  const auto msg = error_of<ModelError>([&] { load_classifier(p.string()); });
  EXPECT_TRUE(contains(msg, p.string() + ": not a loadable TorchScript file")) << msg;
  expect_one_line(msg);
}

TEST(ModelErrors, BadNativeCheckpoint) {
  const fs::path good = native_model("small-cnn", 7, 32);
  const fs::path p = temp_dir() / "garbage.pt";
  write(p, std::string(1000, '\x01'));
  fs::copy_file(sidecar_path(good), sidecar_path(p), fs::copy_options::overwrite_existing);
  const auto msg = error_of<ModelError>([&] { load_classifier(p.string()); });
  EXPECT_TRUE(contains(msg, p.string() + ": not a loadable native checkpoint")) << msg;
  expect_one_line(msg);
}

TEST(ModelErrors, MalformedSidecars) {
  const fs::path model = torchscript_model();
  const fs::path p = temp_dir() / "malformed.ts";
  fs::copy_file(model, p, fs::copy_options::overwrite_existing);
  const std::string good = read_file(sidecar_path(model));
  struct Case {
    std::string text, expect;
  };
  std::string no_classes = good;
  no_classes.replace(no_classes.find("\"classes\""), 9, "\"klasses\"");
  std::string bad_backend = good;
  bad_backend.replace(bad_backend.find("\"torchscript\""), 13, "\"onnx\"");
  const Case cases[] = {
      {"{ not json", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {"{\"format\":\"something\"}", "\"format\" is not \"edi-anon-model\""},
      {no_classes, "\"classes\" must be a non-empty array"},
      {bad_backend, "backend \"onnx\" is not"},
  };
  for (const auto& c : cases) {
    write(sidecar_path(p), c.text);
    const auto msg = error_of<ModelError>([&] { load_classifier(p.string()); });
    EXPECT_TRUE(contains(msg, sidecar_path(p).string() + ": " + c.expect)) << msg;
    expect_one_line(msg);
  }
}

TEST(ModelErrors, LogitWidthDiffersFromSidecarClasses) {
  const fs::path model = torchscript_model();  // 5 outputs
  const fs::path p = temp_dir() / "width.ts";
  fs::copy_file(model, p, fs::copy_options::overwrite_existing);
  Sidecar s = read_sidecar(model);
  s.classes.resize(3);
  write_sidecar(p, s);
  const auto msg = error_of<ModelError>([&] { load_classifier(p.string()); });
  EXPECT_TRUE(contains(msg, p.string() + ": does not match its sidecar")) << msg;
  EXPECT_TRUE(contains(msg, "logits have shape 1×5, expected 1×3")) << msg;
  expect_one_line(msg);
}

TEST(ModelErrors, NativeWeightsDoNotMatchSidecarClasses) {
  const fs::path model = native_model("small-cnn", 7, 32);
  const fs::path p = temp_dir() / "width.pt";
  fs::copy_file(model, p, fs::copy_options::overwrite_existing);
  Sidecar s = read_sidecar(model);
  s.classes.resize(3);
  write_sidecar(p, s);
  const auto msg = error_of<ModelError>([&] { load_classifier(p.string()); });
  EXPECT_TRUE(contains(msg, p.string() + ": tensor 'fc.weight' has shape [7, 256], expected [3, 256]")) << msg;
  expect_one_line(msg);
}

TEST(ModelErrors, UnknownReferencesAndDevices) {
  auto msg = error_of<ModelError>([&] { load_classifier("faceapi:nope"); });
  EXPECT_TRUE(contains(msg, "faceapi:nope")) << msg;
  msg = error_of<ConfigError>([&] { parse_device("tpu"); });
  EXPECT_TRUE(contains(msg, "--device tpu: expected cpu, cuda or cuda:<index>")) << msg;
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  if (!at::hasCUDA()) {
    msg = error_of<ConfigError>([&] { load_classifier(native_model("small-cnn", 7, 32).string(), {"cuda:0", ""}); });
    EXPECT_TRUE(contains(msg, "--device cuda:0: this LibTorch build has no CUDA support")) << msg;
    expect_one_line(msg);
  }
}

data::Manifest manifest_with(std::vector<std::string> identities) {
  data::Manifest m;
  m.data_root = "/data/faces";
  m.layout = "mtf";
  m.identities = std::move(identities);
  m.tasks.push_back({"gender", {"female", "male"}});
  return m;
}

TEST(CheckClasses, AcceptsTheDataSetsOwnClasses) {
  auto model = load_classifier(native_model("small-cnn", 7, 32).string());
  EXPECT_NO_THROW(check_classes(*model, manifest_with(class_names("id-", 7)), "identity"));
}

TEST(CheckClasses, ClassCountMismatch) {
  auto model = load_classifier(native_model("small-cnn", 7, 32).string());
  const auto msg = error_of<ModelError>([&] { check_classes(*model, manifest_with(class_names("id-", 20)), "identity"); });
  EXPECT_TRUE(contains(msg, "model has 7 classes, data set has 20 identities")) << msg;
  EXPECT_TRUE(contains(msg, model->info().reference)) << msg;
  EXPECT_TRUE(contains(msg, "/data/faces")) << msg;
  expect_one_line(msg);
}

TEST(CheckClasses, ClassNameMismatchAndUnknownTask) {
  auto model = load_classifier(native_model("small-cnn", 7, 32).string());
  auto ids = class_names("id-", 7);
  ids[4] = "someone-else";
  auto msg = error_of<ModelError>([&] { check_classes(*model, manifest_with(ids), "identity"); });
  EXPECT_TRUE(contains(msg, "class 4 is 'id-4' in the model but 'someone-else'")) << msg;
  msg = error_of<ModelError>([&] { check_classes(*model, manifest_with(class_names("id-", 7)), "gender"); });
  EXPECT_TRUE(contains(msg, "model has 7 classes, data set has 2 'gender' classes")) << msg;
  msg = error_of<ModelError>([&] { check_classes(*model, manifest_with(class_names("id-", 7)), "hair"); });
  EXPECT_TRUE(contains(msg, "has no task 'hair' (known: identity, gender)")) << msg;
}

TEST(Sidecar, RoundTripsIncludingTheTrainingRecord) {
  Sidecar s;
  s.backend = "native";
  s.architecture = "resnet18";
  s.task = "race";
  s.classes = {"a", "b", "c"};
  s.input_size = 112;
  s.normalisation.mean = {0.1f, 0.2f, 0.3f};
  s.normalisation.std = {0.4f, 0.5f, 0.6f};
  TrainingRecord r;
  r.manifest_hash = "abc";
  r.epochs_run = 12;
  r.best_epoch = 9;
  r.seed = 18446744073709551615ull;
  r.test_accuracy = 0.975;
  r.augment = "flip";
  s.training = r;
  const Sidecar t = sidecar_from_json(sidecar_to_json(s), "mem");
  EXPECT_EQ(t.backend, s.backend);
  EXPECT_EQ(t.architecture, s.architecture);
  EXPECT_EQ(t.task, s.task);
  EXPECT_EQ(t.classes, s.classes);
  EXPECT_EQ(t.input_size, 112);
  EXPECT_EQ(t.normalisation.mean, s.normalisation.mean);
  EXPECT_EQ(t.normalisation.std, s.normalisation.std);
  ASSERT_TRUE(t.training.has_value());
  EXPECT_EQ(t.training->manifest_hash, "abc");
  EXPECT_EQ(t.training->epochs_run, 12);
  EXPECT_EQ(t.training->best_epoch, 9);
  EXPECT_EQ(t.training->seed, r.seed);
  EXPECT_DOUBLE_EQ(t.training->test_accuracy, 0.975);
  EXPECT_EQ(t.training->augment, "flip");
  EXPECT_EQ(sidecar_to_json(t), sidecar_to_json(s));
}

TEST(Sidecar, ExportScriptWritesTheSchemaTheReaderExpects) {
  const Sidecar s = read_sidecar(torchscript_model());
  EXPECT_EQ(s.backend, "torchscript");
  EXPECT_EQ(s.architecture, "tinynet");
  EXPECT_EQ(s.input_size, 32);
  EXPECT_EQ(s.normalisation.mean, (std::array<float, 3>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(s.normalisation.std, (std::array<float, 3>{0.25f, 0.25f, 0.25f}));
  EXPECT_NE(s.source_json.find("tiny.pth"), std::string::npos);
}

TEST(ExportScript, RefusesAClassCountThatDiffersFromTheOutputWidth) {
  const fs::path dir = torchscript_model().parent_path();
  write(dir / "three.txt", "a\nb\nc\n");
  const fs::path log = dir / "refuse.log";
  const int rc = run_command(std::string(EDI_MODELS_PYTHON) + " '" + EDI_SOURCE_DIR +
                                 "/scripts/export_torchscript.py' --model '" + torchscript_model().string() +
                                 "' --classes '" + (dir / "three.txt").string() + "' --input-size 32 --out '" +
                                 (dir / "refused.ts").string() + "'",
                             log);
  EXPECT_EQ(rc, 2);
  EXPECT_TRUE(contains(read_text(log), "output width 5 != 3 classes")) << read_text(log);
  EXPECT_FALSE(fs::exists(dir / "refused.ts"));
}

}  // namespace
}  // namespace edi::models::testing
