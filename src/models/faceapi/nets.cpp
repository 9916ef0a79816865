// The face-api recognition net (dlib ResNet) and age/gender net (TinyXception)
// as torch::nn modules, their Embedder/Classifier adapters and the loaders.
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/models/faceapi.hpp"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdlib>
#include <limits>
#include <utility>

namespace edi::models {

using faceapi::TfjsWeightMap;

// The nets' modules and helpers: a named namespace, not an anonymous one,
// because FaceRecognitionNet::Impl and AgeGenderNet::Impl (declared in the
// header) hold the modules, and a unity batch warns about a member type with
// internal linkage there (-Wsubobject-linkage).
namespace nets {

constexpr const char* kRecognitionManifest = "face_recognition_model-weights_manifest.json";
constexpr const char* kAgeGenderManifest = "age_gender_model-weights_manifest.json";
constexpr const char* kRecognitionBin = "face_recognition_model.bin";
constexpr const char* kAgeGenderBin = "age_gender_model.bin";

/// Both weight files must exist; one clear line otherwise.
void require_assets(const fs::path& dir, const char* manifest, const char* bin) {
  for (const char* name : {manifest, bin}) {
    const fs::path p = dir / name;
    if (!fs::exists(p)) {
      throw ModelError("face-api asset missing: " + p.string() + " (run scripts/fetch_assets.sh)");
    }
  }
}


/// Images N×3×H×W in [0,1] → face-api's normalised N×3×side×side input.
at::Tensor preprocess(const at::Tensor& images, std::int64_t side, const c10::Device& device) {
  if (images.dim() != 4 || images.size(1) != 3) {
    throw DataError("face-api nets expect N×3×H×W RGB images, got shape " + std::string(c10::str(images.sizes())));
  }
  auto x = images.to(device, at::kFloat) * 255.0;
  x = faceapi::pad_to_square(x);
  x = faceapi::resize_bilinear_tf_legacy(x, side, side);
  const auto mean = at::tensor(std::vector<float>(faceapi::kMeanRgb, faceapi::kMeanRgb + 3), at::kFloat)
                        .to(device)
                        .view({1, 3, 1, 1});
  return (x - mean) / 255.0;
}

/// TF 'same' padding (before, after) for one axis.
std::pair<std::int64_t, std::int64_t> tf_same_pad(std::int64_t in, std::int64_t k, std::int64_t stride) {
  const std::int64_t out = (in + stride - 1) / stride;
  const std::int64_t total = std::max<std::int64_t>((out - 1) * stride + k - in, 0);
  return {total / 2, total - total / 2};
}

at::Tensor pad_same(const at::Tensor& x, std::int64_t k, std::int64_t stride, double value) {
  const auto [top, bottom] = tf_same_pad(x.size(2), k, stride);
  const auto [left, right] = tf_same_pad(x.size(3), k, stride);
  if (top == 0 && bottom == 0 && left == 0 && right == 0) return x;
  return at::constant_pad_nd(x, {left, right, top, bottom}, value);
}

// ------------------------------------------------------------- recognition ---

/// conv + bias → per-channel scale/shift (dlib's folded affine) → optional relu.
struct ConvUnit : torch::nn::Module {
  ConvUnit(const TfjsWeightMap& w, const std::string& p) {
    weight = register_parameter("weight", faceapi::hwio_to_oihw(w.at(p + "/conv/filters").value), false);
    bias = register_parameter("bias", w.at(p + "/conv/bias").value.clone(), false);
    scale_w = register_parameter("scale_weight", w.at(p + "/scale/weights").value.view({1, -1, 1, 1}).clone(), false);
    scale_b = register_parameter("scale_bias", w.at(p + "/scale/biases").value.view({1, -1, 1, 1}).clone(), false);
  }
  at::Tensor forward(const at::Tensor& x, std::int64_t stride, std::int64_t pad, bool relu) {
    auto y = at::conv2d(x, weight, bias, {stride, stride}, {pad, pad});
    y = y * scale_w + scale_b;
    return relu ? at::relu(y) : y;
  }
  at::Tensor weight, bias, scale_w, scale_b;
};

/// relu(conv2(conv1(x)) + x), or the down-sampling variant with avg-pool shortcut.
struct ResidualBlock : torch::nn::Module {
  ResidualBlock(const TfjsWeightMap& w, const std::string& p, bool down) : down_(down) {
    conv1 = register_module("conv1", std::make_shared<ConvUnit>(w, p + "/conv1"));
    conv2 = register_module("conv2", std::make_shared<ConvUnit>(w, p + "/conv2"));
  }
  at::Tensor forward(const at::Tensor& x) {
    if (!down_) {
      auto v = conv2->forward(conv1->forward(x, 1, 1, true), 1, 1, false);
      return at::relu(v + x);
    }
    auto v = conv2->forward(conv1->forward(x, 2, 0, true), 1, 1, false);  // stride-2 conv1 is 'valid'
    auto s = at::avg_pool2d(x, {2, 2}, {2, 2});
    if (s.size(1) != v.size(1)) s = at::cat({s, at::zeros_like(s)}, 1);  // zero channels appended after
    if (v.size(2) != s.size(2) || v.size(3) != s.size(3)) {
      v = at::constant_pad_nd(v, {0, 1, 0, 1}, 0.0);  // one zero row at the bottom, one column at the right
    }
    return at::relu(v + s);
  }
  bool down_;
  std::shared_ptr<ConvUnit> conv1, conv2;
};

struct RecognitionModule : torch::nn::Module {
  explicit RecognitionModule(const TfjsWeightMap& w) {
    stem = register_module("conv32_down", std::make_shared<ConvUnit>(w, "conv32_down"));
    const std::pair<const char*, bool> blocks[] = {
        {"conv32_1", false},     {"conv32_2", false},  {"conv32_3", false},     {"conv64_down", true},
        {"conv64_1", false},     {"conv64_2", false},  {"conv64_3", false},     {"conv128_down", true},
        {"conv128_1", false},    {"conv128_2", false}, {"conv256_down", true},  {"conv256_1", false},
        {"conv256_2", false},    {"conv256_down_out", true}};
    for (const auto& [name, down] : blocks) {
      body.push_back(register_module(name, std::make_shared<ResidualBlock>(w, name, down)));
    }
    fc = register_parameter("fc", w.at("fc").value.t().contiguous(), false);  // [in,out] → Linear [out,in]
  }
  at::Tensor forward(const at::Tensor& x) {
    auto out = stem->forward(x, 2, 0, true);
    out = at::max_pool2d(out, {3, 3}, {2, 2});
    for (auto& b : body) out = b->forward(out);
    out = out.mean({2, 3});
    return at::linear(out, fc);
  }
  std::shared_ptr<ConvUnit> stem;
  std::vector<std::shared_ptr<ResidualBlock>> body;
  at::Tensor fc;
};

// -------------------------------------------------------------- age/gender ---

/// depthwise 3×3 /1 pad 1 (no bias) → pointwise 1×1 → + bias.
struct SepConv : torch::nn::Module {
  SepConv(const TfjsWeightMap& w, const std::string& p) {
    depthwise = register_parameter("depthwise", faceapi::depthwise_to_torch(w.at(p + "/depthwise_filter").value), false);
    pointwise = register_parameter("pointwise", faceapi::hwio_to_oihw(w.at(p + "/pointwise_filter").value), false);
    bias = register_parameter("bias", w.at(p + "/bias").value.clone(), false);
  }
  at::Tensor forward(const at::Tensor& x) {
    auto y = at::conv2d(x, depthwise, {}, {1, 1}, {1, 1}, {1, 1}, depthwise.size(0));
    return at::conv2d(y, pointwise, bias);
  }
  at::Tensor depthwise, pointwise, bias;
};

/// [relu] → sep → relu → sep → maxpool 3×3/2 'same' (−∞ pad), + expansion 1×1/2.
struct ReductionBlock : torch::nn::Module {
  ReductionBlock(const TfjsWeightMap& w, const std::string& p, bool relu_in) : relu_in_(relu_in) {
    sep0 = register_module("separable_conv0", std::make_shared<SepConv>(w, p + "/separable_conv0"));
    sep1 = register_module("separable_conv1", std::make_shared<SepConv>(w, p + "/separable_conv1"));
    exp_w = register_parameter("expansion_weight", faceapi::hwio_to_oihw(w.at(p + "/expansion_conv/filters").value), false);
    exp_b = register_parameter("expansion_bias", w.at(p + "/expansion_conv/bias").value.clone(), false);
  }
  at::Tensor forward(const at::Tensor& x) {
    auto out = relu_in_ ? at::relu(x) : x;
    out = sep1->forward(at::relu(sep0->forward(out)));
    out = at::max_pool2d(pad_same(out, 3, 2, -std::numeric_limits<double>::infinity()), {3, 3}, {2, 2});
    auto shortcut = at::conv2d(pad_same(x, 1, 2, 0.0), exp_w, exp_b, {2, 2});
    return out + shortcut;
  }
  bool relu_in_;
  std::shared_ptr<SepConv> sep0, sep1;
  at::Tensor exp_w, exp_b;
};

/// 3 × (relu → sep) + identity; no relu after the add.
struct MainBlock : torch::nn::Module {
  MainBlock(const TfjsWeightMap& w, const std::string& p) {
    for (int i = 0; i < 3; ++i) {
      const std::string n = "separable_conv" + std::to_string(i);
      seps.push_back(register_module(n, std::make_shared<SepConv>(w, p + "/" + n)));
    }
  }
  at::Tensor forward(const at::Tensor& x) {
    auto out = x;
    for (auto& s : seps) out = s->forward(at::relu(out));
    return out + x;
  }
  std::vector<std::shared_ptr<SepConv>> seps;
};

struct AgeGenderModule : torch::nn::Module {
  explicit AgeGenderModule(const TfjsWeightMap& w) {
    conv_in_w = register_parameter("conv_in_weight", faceapi::hwio_to_oihw(w.at("entry_flow/conv_in/filters").value), false);
    conv_in_b = register_parameter("conv_in_bias", w.at("entry_flow/conv_in/bias").value.clone(), false);
    red0 = register_module("reduction_block_0",
                           std::make_shared<ReductionBlock>(w, "entry_flow/reduction_block_0", false));
    red1 = register_module("reduction_block_1",
                           std::make_shared<ReductionBlock>(w, "entry_flow/reduction_block_1", true));
    main0 = register_module("main_block_0", std::make_shared<MainBlock>(w, "middle_flow/main_block_0"));
    main1 = register_module("main_block_1", std::make_shared<MainBlock>(w, "middle_flow/main_block_1"));
    exit_red = register_module("exit_reduction_block",
                               std::make_shared<ReductionBlock>(w, "exit_flow/reduction_block", true));
    exit_sep = register_module("exit_separable_conv", std::make_shared<SepConv>(w, "exit_flow/separable_conv"));
    age_w = register_parameter("age_weight", w.at("fc/age/weights").value.t().contiguous(), false);
    age_b = register_parameter("age_bias", w.at("fc/age/bias").value.clone(), false);
    gender_w = register_parameter("gender_weight", w.at("fc/gender/weights").value.t().contiguous(), false);
    gender_b = register_parameter("gender_bias", w.at("fc/gender/bias").value.clone(), false);
  }
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x) {
    auto out = at::relu(at::conv2d(pad_same(x, 3, 2, 0.0), conv_in_w, conv_in_b, {2, 2}));
    out = red1->forward(red0->forward(out));
    out = main1->forward(main0->forward(out));
    out = exit_red->forward(out);
    out = at::relu(exit_sep->forward(out));
    const auto pooled = at::avg_pool2d(out, {7, 7}, {2, 2}).flatten(1);  // 'valid' 7×7 on 7×7 = global mean
    return {at::linear(pooled, age_w, age_b).squeeze(1), at::linear(pooled, gender_w, gender_b)};
  }
  at::Tensor conv_in_w, conv_in_b;
  std::shared_ptr<ReductionBlock> red0, red1, exit_red;
  std::shared_ptr<MainBlock> main0, main1;
  std::shared_ptr<SepConv> exit_sep;
  at::Tensor age_w, age_b, gender_w, gender_b;
};

std::int64_t count_parameters(const torch::nn::Module& m) {
  std::int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace nets

using nets::AgeGenderModule;
using nets::count_parameters;
using nets::kAgeGenderBin;
using nets::kAgeGenderManifest;
using nets::kRecognitionBin;
using nets::kRecognitionManifest;
using nets::preprocess;
using nets::RecognitionModule;
using nets::require_assets;

fs::path faceapi_assets_dir() {
  if (const char* env = std::getenv("EDI_ASSETS"); env != nullptr && *env != '\0') {
    return fs::path(env) / "faceapi";
  }
#ifdef EDI_SOURCE_DIR
  return fs::path(EDI_SOURCE_DIR) / ".assets" / "faceapi";
#else
  return fs::path(".assets") / "faceapi";
#endif
}

// ------------------------------------------------------ FaceRecognitionNet ---

struct FaceRecognitionNet::Impl {
  std::shared_ptr<RecognitionModule> module;
  c10::Device device{c10::DeviceType::CPU};
};

FaceRecognitionNet::FaceRecognitionNet(const fs::path& dir, const c10::Device& device, std::string reference)
    : impl_(std::make_unique<Impl>()) {
  require_assets(dir, kRecognitionManifest, kRecognitionBin);
  const auto weights = TfjsWeightMap::read(dir / kRecognitionManifest);
  impl_->module = std::make_shared<RecognitionModule>(weights);
  impl_->module->eval();
  impl_->module->to(device);
  impl_->device = device;
  info_.reference = std::move(reference);
  info_.backend = "faceapi";
  info_.architecture = "faceapi-resnet34";
  info_.task = "embedding";
  info_.input_size = 150;
  info_.normalisation.mean = {faceapi::kMeanRgb[0] / 255.f, faceapi::kMeanRgb[1] / 255.f,
                              faceapi::kMeanRgb[2] / 255.f};
  info_.normalisation.std = {1.f, 1.f, 1.f};
  info_.file_sha256 = sha256_file(dir / kRecognitionBin);
}

FaceRecognitionNet::~FaceRecognitionNet() = default;

at::Tensor FaceRecognitionNet::embed(const at::Tensor& images) {
  return impl_->module->forward(preprocess(images, 150, impl_->device));
}

c10::Device FaceRecognitionNet::device() const { return impl_->device; }

std::int64_t FaceRecognitionNet::parameter_count() const { return count_parameters(*impl_->module); }

// ------------------------------------------------------------ AgeGenderNet ---

struct AgeGenderNet::Impl {
  std::shared_ptr<AgeGenderModule> module;
  c10::Device device{c10::DeviceType::CPU};
};

AgeGenderNet::AgeGenderNet(const fs::path& dir, const c10::Device& device) : impl_(std::make_unique<Impl>()) {
  require_assets(dir, kAgeGenderManifest, kAgeGenderBin);
  const auto weights = TfjsWeightMap::read(dir / kAgeGenderManifest);
  impl_->module = std::make_shared<AgeGenderModule>(weights);
  impl_->module->eval();
  impl_->module->to(device);
  impl_->device = device;
  sha256_ = sha256_file(dir / kAgeGenderBin);
}

AgeGenderNet::~AgeGenderNet() = default;

AgeGender AgeGenderNet::predict(const at::Tensor& images) {
  const auto x = preprocess(images, kInputSize, impl_->device);
  if (x.size(0) <= 1 || impl_->device.is_cuda()) {
    auto [age, gender] = impl_->module->forward(x);
    return {age, gender};
  }
  // On CPU, LibTorch 1.13 (oneDNN) runs this net's 56×56 grouped/1×1 convs far
  // slower per image on batches (measured ~50 ms/image at batch 32 vs ~14 ms
  // one image at a time, 1 thread), so feed the images one by one.
  std::vector<at::Tensor> ages, genders;
  for (std::int64_t i = 0; i < x.size(0); ++i) {
    auto [age, gender] = impl_->module->forward(x.slice(0, i, i + 1));
    ages.push_back(age);
    genders.push_back(gender);
  }
  return {at::cat(ages), at::cat(genders)};
}

at::Tensor AgeGenderNet::male_probability(const at::Tensor& images) {
  return at::softmax(predict(images).gender_logits, 1).select(1, 0);
}

c10::Device AgeGenderNet::device() const { return impl_->device; }

std::int64_t AgeGenderNet::parameter_count() const { return count_parameters(*impl_->module); }

// ----------------------------------------------------- AgeGenderClassifier ---

AgeGenderClassifier::AgeGenderClassifier(std::shared_ptr<AgeGenderNet> net, const std::string& task,
                                         std::string reference)
    : net_(std::move(net)) {
  if (task != "gender" && task != "age") {
    throw ModelError(std::string(kFaceApiAgeGender) + " has no task '" + task + "' (expected gender or age)");
  }
  info_.reference = std::move(reference);
  info_.backend = "faceapi";
  info_.architecture = "faceapi-tiny-xception";
  info_.task = task;
  info_.classes = task == "gender" ? std::vector<std::string>{"female", "male"} : std::vector<std::string>{"age_years"};
  info_.input_size = AgeGenderNet::kInputSize;
  info_.normalisation.mean = {faceapi::kMeanRgb[0] / 255.f, faceapi::kMeanRgb[1] / 255.f,
                              faceapi::kMeanRgb[2] / 255.f};
  info_.normalisation.std = {1.f, 1.f, 1.f};
  info_.file_sha256 = net_->file_sha256();
}

at::Tensor AgeGenderClassifier::logits(const at::Tensor& images) {
  auto out = net_->predict(images);
  if (info_.task == "age") return out.age_years.unsqueeze(1);
  // face-api order is {male, female}; the sorted class list is {female, male}.
  return out.gender_logits.flip({1});
}

// ----------------------------------------------------------------- loaders ---

std::unique_ptr<Classifier> load_faceapi_classifier(const ModelRef& reference, const LoadOptions& options) {
  if (reference.is(kFaceApiAgeGender)) {
    const std::string task = options.task.empty() ? "gender" : options.task;
    if (task != "gender" && task != "age") {
      throw ModelError(reference.text + " has no task '" + task + "' (expected gender or age)");
    }
    auto net = std::make_shared<AgeGenderNet>(faceapi_assets_dir(), parse_device(options.device));
    return std::make_unique<AgeGenderClassifier>(std::move(net), task, reference.text);
  }
  if (reference.is(kFaceApiRecognition)) {
    throw ModelError(reference.text + " is a face embedder (128-d descriptors), not a classifier: use it as --model of "
                     "run, sweep or bench (a gallery enrolled on the train split classifies), as the faceapi attacker of "
                     "evaluate, or with inspect");
  }
  throw ModelError("'" + reference.text + "' is not a face-api model (expected " + kFaceApiAgeGender + " or " +
                   kFaceApiRecognition + ")");
}

std::unique_ptr<Classifier> load_faceapi_classifier(const std::string& reference, const LoadOptions& options) {
  return load_faceapi_classifier(ModelRef::parse(reference), options);
}

std::unique_ptr<Embedder> load_faceapi_embedder(const ModelRef& reference, const LoadOptions& options) {
  if (!reference.is(kFaceApiRecognition)) {
    throw ModelError("'" + reference.text + "' is not a face-api embedder (expected " + kFaceApiRecognition + ")");
  }
  return std::make_unique<FaceRecognitionNet>(faceapi_assets_dir(), parse_device(options.device), reference.text);
}

std::unique_ptr<Embedder> load_faceapi_embedder(const std::string& reference, const LoadOptions& options) {
  return load_faceapi_embedder(ModelRef::parse(reference), options);
}

}  // namespace edi::models
