// human's faceres (HSE FaceRec) on the TF.js graph interpreter: the net with the
// package's preprocessing, its Embedder and Classifier views, and the loaders.
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/models/faceapi.hpp"
#include "edi/models/human.hpp"

#include <ATen/ATen.h>

#include <cstdlib>
#include <utility>

namespace edi::models {

namespace {

constexpr const char* kModelJson = "faceres.json";
constexpr const char* kModelBin = "faceres.bin";
constexpr const char* kEmbeddingNode = "global_pooling/Mean";
constexpr const char* kGenderNode = "gender_pred/BiasAdd";
constexpr const char* kAgeNode = "age_pred/Softmax";


}  // namespace

fs::path human_assets_dir() {
  if (const char* env = std::getenv("EDI_ASSETS"); env != nullptr && *env != '\0') return fs::path(env) / "human";
  return faceapi_assets_dir().parent_path() / "human";
}

// ------------------------------------------------------------- FaceResNet ---

FaceResNet::FaceResNet(const fs::path& dir, const c10::Device& device) : device_(device) {
  for (const char* name : {kModelJson, kModelBin}) {
    if (!fs::exists(dir / name))
      throw ModelError("human faceres asset missing: " + (dir / name).string() + " (run scripts/fetch_assets.sh)");
  }
  graph_ = std::make_unique<human::TfjsGraphModel>(human::TfjsGraphModel::read(dir / kModelJson));
  // Fail at load, not at first use, if this is not the faceres graph.
  const auto probe = graph_->run(at::zeros({1, 3, 32, 32}), {kEmbeddingNode, kGenderNode, kAgeNode});
  if (probe[0].dim() != 2 || probe[0].size(1) != kEmbeddingSize || probe[2].dim() != 2 || probe[2].size(1) != kAgeBins ||
      probe[1].numel() != 1)
    throw ModelError((dir / kModelJson).string() + ": outputs are not faceres's (1024-d embedding, 1 gender logit, 100 age bins)");
  graph_->to(device);
  sha256_ = sha256_file(dir / kModelBin);
}

FaceResNet::~FaceResNet() = default;

at::Tensor FaceResNet::preprocess(const at::Tensor& images) const {
  if (images.dim() != 4 || images.size(1) != 3)
    throw DataError("faceres expects N×3×H×W RGB images, got shape " + std::string(c10::str(images.sizes())));
  const auto x = faceapi::resize_bilinear_tf_legacy(images.to(device_, at::kFloat), kInputSize, kInputSize);
  return x * 255.0;
}

at::Tensor FaceResNet::embed(const at::Tensor& images) const {
  return graph_->run(preprocess(images), {kEmbeddingNode})[0];
}

FaceResOutputs FaceResNet::forward(const at::Tensor& images) const {
  auto out = graph_->run(preprocess(images), {kEmbeddingNode, kGenderNode, kAgeNode});
  return {out[0], out[1].reshape({-1}), out[2]};
}

std::int64_t FaceResNet::parameter_count() const { return graph_->parameter_count(); }

const human::TfjsGraphModel& FaceResNet::graph() const { return *graph_; }

// -------------------------------------------------------------- adapters ---

FaceResEmbedder::FaceResEmbedder(std::shared_ptr<FaceResNet> net, std::string reference) : net_(std::move(net)) {
  info_.reference = std::move(reference);
  info_.backend = "human";
  info_.architecture = "hse-faceres-mobilenet";
  info_.task = "embedding";
  info_.input_size = FaceResNet::kInputSize;
  info_.normalisation.mean = {0.f, 0.f, 0.f};  // the net takes 0..255 pixels, no mean subtraction
  info_.normalisation.std = {1.f / 255.f, 1.f / 255.f, 1.f / 255.f};
  info_.file_sha256 = net_->file_sha256();
}

FaceResAgeGenderClassifier::FaceResAgeGenderClassifier(std::shared_ptr<FaceResNet> net, const std::string& task,
                                                       std::string reference)
    : net_(std::move(net)) {
  if (task != "gender" && task != "age")
    throw ModelError(std::string(kHumanFaceResAgeGender) + " has no task '" + task + "' (expected gender or age)");
  info_.reference = std::move(reference);
  info_.backend = "human";
  info_.architecture = "hse-faceres-mobilenet";
  info_.task = task;
  info_.classes = task == "gender" ? std::vector<std::string>{"female", "male"} : std::vector<std::string>{"age_years"};
  info_.input_size = FaceResNet::kInputSize;
  info_.normalisation.mean = {0.f, 0.f, 0.f};
  info_.normalisation.std = {1.f / 255.f, 1.f / 255.f, 1.f / 255.f};
  info_.file_sha256 = net_->file_sha256();
}

at::Tensor FaceResAgeGenderClassifier::logits(const at::Tensor& images) {
  const auto out = net_->forward(images);
  if (info_.task == "gender") return at::stack({at::zeros_like(out.gender_logit), out.gender_logit}, 1);
  const auto ages = at::arange(FaceResNet::kAgeBins, out.age_probs.options());
  return (out.age_probs * ages).sum(1, /*keepdim=*/true);
}

// --------------------------------------------------------------- loaders ---

bool is_human_embedder_reference(const std::string& reference) { return reference == kHumanFaceRes; }

std::unique_ptr<Embedder> load_human_embedder(const ModelRef& reference, const LoadOptions& options) {
  if (!reference.is(kHumanFaceRes))
    throw ModelError("'" + reference.text + "' is not a human embedder (expected " + kHumanFaceRes + ")");
  auto net = std::make_shared<FaceResNet>(human_assets_dir(), parse_device(options.device));
  return std::make_unique<FaceResEmbedder>(std::move(net), reference.text);
}

std::unique_ptr<Embedder> load_human_embedder(const std::string& reference, const LoadOptions& options) {
  return load_human_embedder(ModelRef::parse(reference), options);
}

std::unique_ptr<Classifier> load_human_classifier(const ModelRef& reference, const LoadOptions& options) {
  if (reference.is(kHumanFaceResAgeGender)) {
    const std::string task = options.task.empty() ? "gender" : options.task;
    if (task != "gender" && task != "age")
      throw ModelError(reference.text + " has no task '" + task + "' (expected gender or age)");
    auto net = std::make_shared<FaceResNet>(human_assets_dir(), parse_device(options.device));
    return std::make_unique<FaceResAgeGenderClassifier>(std::move(net), task, reference.text);
  }
  if (reference.is(kHumanFaceRes))
    throw ModelError(reference.text + " is an embedder, not a classifier: use it as --model (a gallery of the training "
                     "split), as the attacker faceres, or with inspect; its heads are " + kHumanFaceResAgeGender);
  throw ModelError("'" + reference.text + "' is not a human model (expected " + kHumanFaceRes + " or " +
                   kHumanFaceResAgeGender + ")");
}

std::unique_ptr<Classifier> load_human_classifier(const std::string& reference, const LoadOptions& options) {
  return load_human_classifier(ModelRef::parse(reference), options);
}

bool is_embedder_reference(const std::string& reference) {
  try {
    return ModelRef::parse(reference).is_embedder();
  } catch (const Error&) {
    return false;  // not a reference at all: certainly not an embedder's
  }
}

std::unique_ptr<Embedder> load_embedder(const ModelRef& reference, const LoadOptions& options) {
  if (reference.is(kFaceApiRecognition)) return load_faceapi_embedder(reference, options);
  if (reference.is(kHumanFaceRes)) return load_human_embedder(reference, options);
  throw ModelError("'" + reference.text + "' is not an embedder (expected " + kFaceApiRecognition + " or " + kHumanFaceRes + ")");
}

std::unique_ptr<Embedder> load_embedder(const std::string& reference, const LoadOptions& options) {
  return load_embedder(ModelRef::parse(reference), options);
}

}  // namespace edi::models
