#pragma once
/// \file LibTorch ports of two pretrained face-api nets (npm
/// `@vladmandic/face-api@1.7.15`, MIT): the recognition net (dlib ResNet,
/// 150×150 → 128-d descriptor) and the age/gender net (TinyXception, 112×112 →
/// age in years + gender softmax), plus the TF.js weight-manifest reader they
/// load from. See docs in shared/docs/faceapi-nets.md for the layer facts.
///
/// Input convention of every net here: N×3×H×W float RGB in [0,1]. The nets do
/// their own preprocessing inside (×255, zero pad to square with face-api's
/// rule, TF-legacy bilinear resize to the native side when H or W differ from
/// it, mean subtraction, /255), so an H×W other than the native side is
/// accepted. Parameters are frozen; outputs are differentiable w.r.t. input.
#include "edi/models/classifier.hpp"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace edi::models {

namespace faceapi {

/// One tensor of a TF.js weights manifest, decoded to float32 in TF layout.
struct TfjsWeight {
  std::string name;                 ///< manifest name, e.g. "conv32_down/conv/filters"
  std::vector<std::int64_t> shape;  ///< TF layout: HWIO filters, [in,out] dense
  std::string stored_dtype;         ///< "uint8"/"uint16" when quantised, else "float32"
  double scale = 0.0;               ///< quantisation scale (quantised tensors only)
  double min = 0.0;                 ///< quantisation offset (quantised tensors only)
  std::size_t offset = 0;           ///< byte offset in the concatenated shards
  std::size_t bytes = 0;            ///< bytes it occupies there
  at::Tensor value;                 ///< float32 CPU tensor with `shape`
};

/// All tensors of one TF.js `*-weights_manifest.json` and its shard files.
/// Dequantisation is bit-exact with tfjs-core: (float)((double)q·scale + min).
class TfjsWeightMap {
 public:
  /// Read the manifest and its shards (resolved next to the manifest). Throws
  /// ModelError naming the file on a missing file, bad JSON, unknown dtype or
  /// a size mismatch between the manifest and the shards.
  static TfjsWeightMap read(const std::filesystem::path& manifest);

  /// The tensor called `name`; throws ModelError if absent.
  const TfjsWeight& at(const std::string& name) const;
  /// Whether a tensor called `name` exists.
  bool contains(const std::string& name) const;
  /// Tensors in manifest (= byte) order.
  const std::vector<TfjsWeight>& weights() const { return weights_; }
  /// Total shard bytes (= sum of all tensor sizes).
  std::size_t total_bytes() const { return total_bytes_; }
  /// Total number of scalar parameters.
  std::int64_t parameter_count() const;
  /// The manifest file this map was read from.
  const std::filesystem::path& manifest() const { return manifest_; }

 private:
  std::filesystem::path manifest_;
  std::vector<TfjsWeight> weights_;
  std::size_t total_bytes_ = 0;
};

/// TF conv filter [kh,kw,cin,cout] (HWIO) → torch conv weight [cout,cin,kh,kw].
at::Tensor hwio_to_oihw(const at::Tensor& hwio);
/// TF depthwise filter [kh,kw,c,1] → torch grouped-conv weight [c,1,kh,kw].
at::Tensor depthwise_to_torch(const at::Tensor& hwc1);

/// face-api's padToSquare(isCenterImage=true) on N×C×H×W: zeros on the short
/// axis, round(d/2) after (bottom/right) and the rest before.
at::Tensor pad_to_square(const at::Tensor& nchw);
/// TF `resizeBilinear(alignCorners=false, halfPixelCenters=false)` on
/// N×C×H×W: source = dst·in/out, no half-pixel offset. Differentiable.
at::Tensor resize_bilinear_tf_legacy(const at::Tensor& nchw, std::int64_t out_h, std::int64_t out_w);

/// face-api's mean RGB, subtracted from 0..255 pixels before the /255.
inline constexpr float kMeanRgb[3] = {122.782f, 117.001f, 104.298f};

}  // namespace faceapi

/// Where the face-api weights live: `$EDI_ASSETS/faceapi` if EDI_ASSETS is
/// set, else `<source dir>/.assets/faceapi` (filled by scripts/fetch_assets.sh).
std::filesystem::path faceapi_assets_dir();

/// The face-api recognition net (dlib ResNet-34-like), N×3×H×W RGB [0,1] →
/// N×128 raw (not L2-normalised) descriptors; same person if the Euclidean
/// distance is < 0.6.
class FaceRecognitionNet : public Embedder {
 public:
  /// Load from `<dir>/face_recognition_model-weights_manifest.json` (+ .bin).
  /// Throws ModelError naming the missing or bad file.
  explicit FaceRecognitionNet(const std::filesystem::path& dir, const c10::Device& device = c10::Device("cpu"),
                              std::string reference = kFaceApiRecognition);
  ~FaceRecognitionNet() override;
  FaceRecognitionNet(const FaceRecognitionNet&) = delete;
  FaceRecognitionNet& operator=(const FaceRecognitionNet&) = delete;

  const ModelInfo& info() const override { return info_; }
  /// N×3×H×W RGB in [0,1] → N×128.
  at::Tensor embed(const at::Tensor& images) override;
  c10::Device device() const override;
  std::int64_t parameter_count() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ModelInfo info_;
};

/// Output of the age/gender net.
struct AgeGender {
  at::Tensor age_years;      ///< N, raw regression in years
  at::Tensor gender_logits;  ///< N×2 in face-api order: index 0 = male, 1 = female
};

/// The face-api age/gender net (TinyXception, 2 main blocks, two heads).
class AgeGenderNet {
 public:
  /// Load from `<dir>/age_gender_model-weights_manifest.json` (+ .bin).
  /// Throws ModelError naming the missing or bad file.
  explicit AgeGenderNet(const std::filesystem::path& dir, const c10::Device& device = c10::Device("cpu"));
  ~AgeGenderNet();
  AgeGenderNet(const AgeGenderNet&) = delete;
  AgeGenderNet& operator=(const AgeGenderNet&) = delete;

  /// N×3×H×W RGB in [0,1] (resized to 112 inside) → age and gender logits.
  AgeGender predict(const at::Tensor& images);
  /// P(male) per image (softmax index 0), N.
  at::Tensor male_probability(const at::Tensor& images);
  c10::Device device() const;
  std::int64_t parameter_count() const;
  /// sha256 of the weights .bin file.
  const std::string& file_sha256() const { return sha256_; }

  /// Native input side (112).
  static constexpr int kInputSize = 112;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string sha256_;
};

/// `Classifier` view of AgeGenderNet. Task "gender": logits N×2 over the sorted
/// classes {"female","male"} (face-api's logits reordered). Task "age": N×1
/// regression output in years, class list {"age_years"}.
class AgeGenderClassifier : public Classifier {
 public:
  AgeGenderClassifier(std::shared_ptr<AgeGenderNet> net, const std::string& task,
                      std::string reference = kFaceApiAgeGender);
  const ModelInfo& info() const override { return info_; }
  at::Tensor logits(const at::Tensor& images) override;
  c10::Device device() const override { return net_->device(); }
  std::int64_t parameter_count() const override { return net_->parameter_count(); }
  /// The underlying net (age regression accessor: `net().predict(x).age_years`).
  AgeGenderNet& net() { return *net_; }

 private:
  std::shared_ptr<AgeGenderNet> net_;
  ModelInfo info_;
};

/// `faceapi:age-gender` → AgeGenderClassifier (options.task: "gender" default,
/// or "age"). `faceapi:recognition` is an embedder and is refused here with a
/// ModelError pointing to GalleryClassifier. Other references → ModelError.
std::unique_ptr<Classifier> load_faceapi_classifier(const ModelRef& reference, const LoadOptions& options = {});
/// The same, parsing `reference` first (ModelRef::parse).
std::unique_ptr<Classifier> load_faceapi_classifier(const std::string& reference, const LoadOptions& options = {});

/// `faceapi:recognition` → FaceRecognitionNet. Other references → ModelError.
std::unique_ptr<Embedder> load_faceapi_embedder(const ModelRef& reference, const LoadOptions& options = {});
/// The same, parsing `reference` first (ModelRef::parse).
std::unique_ptr<Embedder> load_faceapi_embedder(const std::string& reference, const LoadOptions& options = {});

}  // namespace edi::models
