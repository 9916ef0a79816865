// Sidecar schema, reference dispatch (load_classifier), devices, class checks.
#include "edi/models/registry.hpp"

#include <ATen/Context.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/manifest.hpp"
#include "edi/data/private_file.hpp"
#include "edi/models/faceapi.hpp"
#include "edi/models/human.hpp"
#include "edi/models/native.hpp"
#include "edi/models/torchscript.hpp"

namespace edi::models {

namespace {

using nlohmann::json;

constexpr const char* kFormat = "edi-anon-model";
constexpr int kVersion = 1;

const char* kExpected =
    "expected {\"format\":\"edi-anon-model\",\"version\":1,\"backend\":\"torchscript\"|\"native\",\"architecture\","
    "\"task\",\"classes\":[...],\"input_size\",\"normalisation\":{\"mean\":[3],\"std\":[3]}}";

std::array<float, 3> triple(const json& j, const std::string& key, const std::string& source) {
  if (!j.is_array() || j.size() != 3)
    throw ModelError(source + ": normalisation." + key + " must be an array of 3 numbers (RGB)");
  std::array<float, 3> out{};
  for (std::size_t i = 0; i < 3; ++i) {
    if (!j[i].is_number()) throw ModelError(source + ": normalisation." + key + " must be an array of 3 numbers (RGB)");
    out[i] = j[i].get<float>();
    if (!std::isfinite(out[i])) throw ModelError(source + ": normalisation." + key + " has a non-finite value");
  }
  return out;
}

}  // namespace

std::filesystem::path sidecar_path(const std::filesystem::path& model) {
  std::filesystem::path p = model;
  p += ".json";
  return p;
}

Sidecar sidecar_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (auto pos = what.find('\n'); pos != std::string::npos) what.resize(pos);
    throw ModelError(source + ": not valid JSON (" + what + "); " + kExpected);
  }
  if (!j.is_object()) throw ModelError(source + ": not a JSON object; " + kExpected);
  if (!j.contains("format") || j["format"] != kFormat)
    throw ModelError(source + ": \"format\" is not \"" + kFormat + "\"; " + kExpected);
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int>() != kVersion)
    throw ModelError(source + ": unsupported \"version\" (this build reads version " + std::to_string(kVersion) + ")");
  auto need_string = [&](const char* key) -> std::string {
    if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty())
      throw ModelError(source + ": missing or empty string \"" + key + "\"; " + kExpected);
    return j[key].get<std::string>();
  };
  Sidecar s;
  s.backend = need_string("backend");
  if (s.backend != "torchscript" && s.backend != "native")
    throw ModelError(source + ": backend \"" + s.backend + "\" is not \"torchscript\" or \"native\"");
  s.architecture = need_string("architecture");
  s.task = need_string("task");
  if (!j.contains("classes") || !j["classes"].is_array() || j["classes"].empty())
    throw ModelError(source + ": \"classes\" must be a non-empty array of class names in logit order");
  for (const auto& c : j["classes"]) {
    if (!c.is_string()) throw ModelError(source + ": \"classes\" must hold strings (class names in logit order)");
    s.classes.push_back(c.get<std::string>());
  }
  if (!j.contains("input_size") || !j["input_size"].is_number_integer() || j["input_size"].get<int>() < 1 ||
      j["input_size"].get<int>() > 8192)
    throw ModelError(source + ": \"input_size\" must be an integer in [1, 8192] (square input side in pixels)");
  s.input_size = j["input_size"].get<int>();
  if (!j.contains("normalisation") || !j["normalisation"].is_object())
    throw ModelError(source + ": missing \"normalisation\" object {\"mean\":[r,g,b],\"std\":[r,g,b]}");
  const auto& n = j["normalisation"];
  s.normalisation.mean = triple(n.value("mean", json()), "mean", source);
  s.normalisation.std = triple(n.value("std", json()), "std", source);
  for (float v : s.normalisation.std)
    if (!(v > 0.f)) throw ModelError(source + ": normalisation.std must be positive");
  if (j.contains("training") && j["training"].is_object()) {
    const auto& t = j["training"];
    TrainingRecord r;
    try {
      r.manifest_hash = t.value("manifest_hash", "");
      r.data_root = t.value("data_root", "");
      r.test_fraction = t.value("test_fraction", 0.0);
      r.val_fraction = t.value("val_fraction", 0.0);
      r.split_seed = t.value("split_seed", std::uint64_t{0});
      r.train_images = t.value("train_images", std::size_t{0});
      r.val_images = t.value("val_images", std::size_t{0});
      r.test_images = t.value("test_images", std::size_t{0});
      r.epochs_max = t.value("epochs_max", 0);
      r.epochs_run = t.value("epochs_run", 0);
      r.best_epoch = t.value("best_epoch", 0);
      r.seed = t.value("seed", std::uint64_t{0});
      r.lr = t.value("lr", 0.0);
      r.batch = t.value("batch", 0);
      r.augment = t.value("augment", "");
      r.threads = t.value("threads", 0);
      r.train_accuracy = t.value("train_accuracy", 0.0);
      r.val_accuracy = t.value("val_accuracy", 0.0);
      r.test_accuracy = t.value("test_accuracy", 0.0);
      r.seconds = t.value("seconds", 0.0);
    } catch (const json::exception& e) {
      throw ModelError(source + ": malformed \"training\" record (" + std::string(e.what()) + ")");
    }
    s.training = r;
  }
  if (j.contains("source")) s.source_json = j["source"].dump();
  return s;
}

std::string sidecar_to_json(const Sidecar& s) {
  json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["backend"] = s.backend;
  j["architecture"] = s.architecture;
  j["task"] = s.task;
  j["classes"] = s.classes;
  j["input_size"] = s.input_size;
  j["normalisation"] = {{"mean", s.normalisation.mean}, {"std", s.normalisation.std}};
  if (s.training) {
    const auto& r = *s.training;
    j["training"] = {{"manifest_hash", r.manifest_hash}, {"data_root", r.data_root},
                     {"test_fraction", r.test_fraction}, {"val_fraction", r.val_fraction},
                     {"split_seed", r.split_seed},       {"train_images", r.train_images},
                     {"val_images", r.val_images},       {"test_images", r.test_images},
                     {"epochs_max", r.epochs_max},       {"epochs_run", r.epochs_run},
                     {"best_epoch", r.best_epoch},       {"seed", r.seed},
                     {"lr", r.lr},                       {"batch", r.batch},
                     {"augment", r.augment},             {"threads", r.threads},
                     {"train_accuracy", r.train_accuracy}, {"val_accuracy", r.val_accuracy},
                     {"test_accuracy", r.test_accuracy}, {"seconds", r.seconds}};
  }
  if (!s.source_json.empty()) j["source"] = json::parse(s.source_json);
  return j.dump(2) + "\n";
}

Sidecar read_sidecar(const std::filesystem::path& model) {
  const auto path = sidecar_path(model);
  if (!std::filesystem::is_regular_file(path))
    throw ModelError(model.string() + ": missing sidecar " + path.string() +
                     " (expected JSON with backend, architecture, task, classes, input_size, normalisation)");
  std::string text;
  try {
    text = read_file(path);
  } catch (const IoError& e) {
    throw ModelError(path.string() + ": cannot read sidecar (" + e.what() + ")");
  }
  Sidecar s = sidecar_from_json(text, path.string());
  s.file_sha256 = sha256_hex(text);  // the bytes just read: the file is not read twice
  return s;
}

void write_sidecar(const std::filesystem::path& model, const Sidecar& sidecar) {
  // An identity model's classes are people's names: owner-only from the first byte.
  if (sidecar.task == "identity") return data::write_private_file(sidecar_path(model), sidecar_to_json(sidecar));
  write_file_atomic(sidecar_path(model), sidecar_to_json(sidecar), Durability::kProcessCrash);
}

ModelInfo info_from_sidecar(const std::string& reference, const Sidecar& s, const std::string& file_sha256) {
  ModelInfo info;
  info.reference = reference;
  info.backend = s.backend;
  info.architecture = s.architecture;
  info.task = s.task;
  info.classes = s.classes;
  info.input_size = s.input_size;
  info.normalisation = s.normalisation;
  info.file_sha256 = file_sha256;
  info.sidecar_sha256 = s.file_sha256;
  return info;
}


std::unique_ptr<Classifier> load_classifier(const ModelRef& reference, const LoadOptions& options) {
  switch (reference.kind) {
    case ModelKind::kFaceApi: return load_faceapi_classifier(reference, options);
    case ModelKind::kHuman: return load_human_classifier(reference, options);
    case ModelKind::kEnsemble:
      throw ModelError(reference.text + ": an ensemble of models is not one classifier (a list is accepted only as the "
                                        "steering --model of run, sweep and bench)");
    case ModelKind::kFile: break;
  }
  const std::filesystem::path path(reference.text);
  if (!std::filesystem::exists(path))
    throw ModelError(reference.text + ": no such model file (expected a TorchScript or native model with a .json sidecar, "
                                      "or " + kFaceApiAgeGender + ")");
  if (!std::filesystem::is_regular_file(path)) throw ModelError(reference.text + ": not a regular file");
  parse_device(options.device);  // ConfigError before any loading work
  const Sidecar sidecar = read_sidecar(path);
  if (sidecar.backend == "native") return load_native_classifier(path, sidecar, options);
  return load_torchscript_classifier(path, sidecar, options);
}

std::unique_ptr<Classifier> load_classifier(const std::string& reference, const LoadOptions& options) {
  return load_classifier(ModelRef::parse(reference), options);
}

void check_classes(const Classifier& model, const data::Manifest& manifest, const std::string& task) {
  const std::vector<std::string>* expected = nullptr;
  std::string what;
  if (task == "identity") {
    expected = &manifest.identities;
    what = "identities";
  } else {
    const int t = manifest.task_index(task);
    if (t < 0) {
      std::string known = "identity";
      for (const auto& tk : manifest.tasks) known += ", " + tk.name;
      throw ModelError("data set " + manifest.data_root + " has no task '" + task + "' (known: " + known + ")");
    }
    expected = &manifest.tasks[static_cast<std::size_t>(t)].classes;
    what = "'" + task + "' classes";
  }
  const auto& have = model.info().classes;
  const std::string head = model.info().reference + ": model classes do not match the data set " + manifest.data_root;
  if (have.size() != expected->size())
    throw ModelError(head + ": model has " + std::to_string(have.size()) + " classes, data set has " +
                     std::to_string(expected->size()) + " " + what);
  for (std::size_t i = 0; i < have.size(); ++i)
    if (have[i] != (*expected)[i])
      throw ModelError(head + ": class " + std::to_string(i) + " is '" + have[i] + "' in the model but '" +
                       (*expected)[i] + "' in the data set's " + what);
}

}  // namespace edi::models
