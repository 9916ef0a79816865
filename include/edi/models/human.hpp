#pragma once
/// \file LibTorch port of the `faceres` face model of npm `@vladmandic/human@3.3.6`
/// (MIT package; upstream HSE FaceRec, github.com/HSE-asavchenko/HSE_FaceRec_tf:
/// a MobileNet-v1 trunk trained for face identification, with gender and age
/// heads). 224×224 input → 1024-d embedding (global average pool of the trunk),
/// a gender sigmoid and a 100-bin age softmax.
///
/// The net is not rebuilt layer by layer: `human::TfjsGraphModel` reads the
/// TF.js graph model (`faceres.json` + `faceres.bin`) and interprets its ops in
/// LibTorch (Conv2D, DepthwiseConv2dNative, Add/Sub/Mul, Relu/Relu6,
/// Minimum/Maximum, Mean, MatMul and the grappler-fused `_FusedConv2D`,
/// `FusedDepthwiseConv2dNative`, `_FusedMatMul` split back into plain ops,
/// Sigmoid, Softmax). Activations are kept NCHW inside; TF NHWC semantics
/// (channel broadcasting, reduction axes, 'SAME' padding with the odd pixel
/// bottom/right) are mapped onto it. Everything is differentiable w.r.t. the
/// input; parameters never require grad.
///
/// Input convention: N×3×H×W float RGB in [0,1]. Preprocessing is the
/// package's (src/face/faceres.ts `enhance`): TF-legacy bilinear resize to
/// 224×224 (no pad to square, so a non-square crop is stretched), then ×255; no
/// mean subtraction. Parity with the package's JavaScript is tested against
/// tests/golden/faceres_johns.json (scripts/human/reference.mjs).
#include "edi/models/classifier.hpp"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace edi::models {

namespace human {

/// A TF.js graph model (`model.json` with `modelTopology` + `weightsManifest`)
/// run by a small LibTorch interpreter. Weights may be float32, float16
/// (`quantization.dtype` float16) or uint8/uint16-quantised; int32 constants are
/// kept as integers (reduction axes).
class TfjsGraphModel {
 public:
  /// Read the model JSON and its weight shards (next to it), check that every
  /// node's op is supported and its inputs exist. Throws ModelError naming the
  /// file and the node, op, tensor or size that is wrong.
  static TfjsGraphModel read(const std::filesystem::path& model_json);

  TfjsGraphModel();
  ~TfjsGraphModel();
  TfjsGraphModel(TfjsGraphModel&&) noexcept;
  TfjsGraphModel& operator=(TfjsGraphModel&&) noexcept;

  /// Evaluate the nodes named in `outputs` ("name" or "name:0") with the single
  /// placeholder bound to `input` (N×C×H×W for a TF NHWC image placeholder).
  /// Only the nodes they depend on are run. 4-D results are returned NCHW.
  std::vector<at::Tensor> run(const at::Tensor& input, const std::vector<std::string>& outputs) const;

  /// Move every constant to `device` (float constants stay float32).
  void to(const c10::Device& device);
  /// Number of scalar values in float weight tensors.
  std::int64_t parameter_count() const;
  /// Op name → number of nodes, for reports and tests.
  std::vector<std::pair<std::string, int>> op_counts() const;
  /// The model JSON this graph was read from.
  const std::filesystem::path& file() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Half-precision bits → float32, exactly (subnormals, inf and NaN included).
float half_to_float(std::uint16_t bits);

/// faceres.ts `predict()` age decoding from one 100-bin softmax row: the argmax
/// bin i, moved towards the larger neighbour p by 10·p, rounded to 0.1 year.
double package_age_years(const std::vector<float>& age_softmax);

}  // namespace human

/// Where the human weights live: `$EDI_ASSETS/human` if EDI_ASSETS is set, else
/// `human/` next to faceapi_assets_dir() (filled by scripts/fetch_assets.sh).
std::filesystem::path human_assets_dir();

/// All three heads of faceres on a batch.
struct FaceResOutputs {
  at::Tensor embedding;     ///< N×1024, `global_pooling/Mean` (non-negative, not L2-normalised)
  at::Tensor gender_logit;  ///< N, pre-sigmoid `gender_pred/BiasAdd`; σ(logit) = P(male)
  at::Tensor age_probs;     ///< N×100, `age_pred/Softmax` over ages 0..99
};

/// The faceres graph model with the package's preprocessing.
class FaceResNet {
 public:
  /// Load `<dir>/faceres.json` (+ faceres.bin). Throws ModelError naming the
  /// missing or bad file.
  explicit FaceResNet(const std::filesystem::path& dir, const c10::Device& device = c10::Device("cpu"));
  ~FaceResNet();
  FaceResNet(const FaceResNet&) = delete;
  FaceResNet& operator=(const FaceResNet&) = delete;

  /// N×3×H×W RGB [0,1] → the net's N×3×224×224 input (resize, ×255).
  at::Tensor preprocess(const at::Tensor& images) const;
  /// N×3×H×W RGB [0,1] → N×1024 embeddings (trunk only).
  at::Tensor embed(const at::Tensor& images) const;
  /// N×3×H×W RGB [0,1] → embedding, gender logit and age softmax.
  FaceResOutputs forward(const at::Tensor& images) const;

  c10::Device device() const { return device_; }
  std::int64_t parameter_count() const;
  /// sha256 of faceres.bin.
  const std::string& file_sha256() const { return sha256_; }
  const human::TfjsGraphModel& graph() const;

  static constexpr int kInputSize = 224;
  static constexpr int kEmbeddingSize = 1024;
  static constexpr int kAgeBins = 100;

 private:
  std::unique_ptr<human::TfjsGraphModel> graph_;
  c10::Device device_;
  std::string sha256_;
};

/// `human:faceres` as an Embedder: N×3×S×S RGB [0,1] → N×1024. Build a
/// GalleryClassifier from it for identities (as for faceapi:recognition).
class FaceResEmbedder : public Embedder {
 public:
  explicit FaceResEmbedder(std::shared_ptr<FaceResNet> net, std::string reference = kHumanFaceRes);
  const ModelInfo& info() const override { return info_; }
  at::Tensor embed(const at::Tensor& images) override { return net_->embed(images); }
  c10::Device device() const override { return net_->device(); }
  std::int64_t parameter_count() const override { return net_->parameter_count(); }
  FaceResNet& net() { return *net_; }

 private:
  std::shared_ptr<FaceResNet> net_;
  ModelInfo info_;
};

/// `human:faceres-age-gender` as a Classifier. Task "gender": logits N×2 over
/// the sorted classes {"female","male"} = [0, gender logit], so softmax equals
/// the package's sigmoid. Task "age": N×1, the expected age Σ i·p_i of the
/// 100-bin softmax in years (differentiable; the package's own argmax-based
/// decoding is human::package_age_years).
class FaceResAgeGenderClassifier : public Classifier {
 public:
  FaceResAgeGenderClassifier(std::shared_ptr<FaceResNet> net, const std::string& task,
                             std::string reference = kHumanFaceResAgeGender);
  const ModelInfo& info() const override { return info_; }
  at::Tensor logits(const at::Tensor& images) override;
  c10::Device device() const override { return net_->device(); }
  std::int64_t parameter_count() const override { return net_->parameter_count(); }
  FaceResNet& net() { return *net_; }

 private:
  std::shared_ptr<FaceResNet> net_;
  ModelInfo info_;
};

/// Whether `reference` is exactly `human:faceres`.
bool is_human_embedder_reference(const std::string& reference);

/// `human:faceres` → FaceResEmbedder (options.device: cpu, cuda[:i]). Other
/// references → ModelError; a bad device → ConfigError.
std::unique_ptr<Embedder> load_human_embedder(const ModelRef& reference, const LoadOptions& options = {});
std::unique_ptr<Embedder> load_human_embedder(const std::string& reference, const LoadOptions& options = {});

/// `human:faceres-age-gender` → FaceResAgeGenderClassifier (options.task:
/// "gender" default, or "age"). `human:faceres` is refused with a ModelError
/// pointing to GalleryClassifier; other references → ModelError.
std::unique_ptr<Classifier> load_human_classifier(const ModelRef& reference, const LoadOptions& options = {});
std::unique_ptr<Classifier> load_human_classifier(const std::string& reference, const LoadOptions& options = {});

/// Whether `reference` parses to a ported embedder (ModelRef::is_embedder:
/// faceapi:recognition or human:faceres); false for anything else, including
/// text that is no reference at all.
bool is_embedder_reference(const std::string& reference);

/// Any ported embedder by reference (faceapi:recognition → FaceRecognitionNet,
/// human:faceres → FaceResEmbedder); other references → ModelError, a bad
/// device → ConfigError. For the steering-model and attacker code (a gallery
/// over the embedder classifies identities).
std::unique_ptr<Embedder> load_embedder(const ModelRef& reference, const LoadOptions& options = {});
/// The string overloads parse `reference` first (ModelRef::parse).
std::unique_ptr<Embedder> load_embedder(const std::string& reference, const LoadOptions& options = {});

}  // namespace edi::models
