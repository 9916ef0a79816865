#pragma once
/// \file One classifier interface for every back-end: TorchScript files, native
/// LibTorch nets trained by `edi-anon train`, and the ported face-api nets.
///
/// A model is referred to everywhere by one string: a path to a TorchScript
/// file (with a `.json` sidecar), a path to a native checkpoint, or
/// `faceapi:recognition` / `faceapi:age-gender`.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace edi::data {
struct Manifest;
}

namespace edi::models {

/// Per-channel normalisation applied inside the model: (x - mean) / std, on
/// RGB input in [0, 1].
struct Normalisation {
  std::array<float, 3> mean{0.f, 0.f, 0.f};
  std::array<float, 3> std{1.f, 1.f, 1.f};
};

/// What a classifier knows about itself.
struct ModelInfo {
  std::string reference;             ///< the string it was loaded from
  std::string backend;               ///< "torchscript", "native", "faceapi"
  std::string architecture;          ///< e.g. "small-cnn", "resnet18", "faceapi-resnet34"
  std::string task;                  ///< "identity", "age", "gender", "race", ...
  std::vector<std::string> classes;  ///< class names in logit order
  int input_size = 0;                ///< square input side in pixels
  Normalisation normalisation;
  std::string file_sha256;           ///< hash of the weights file(s); empty if built in
};

/// Images N×3×S×S float RGB in [0,1] (S = info().input_size) → logits N×C.
/// `logits` is differentiable with respect to its input; the model's own
/// parameters never require grad (frozen, eval mode).
class Classifier {
 public:
  virtual ~Classifier() = default;
  virtual const ModelInfo& info() const = 0;
  virtual at::Tensor logits(const at::Tensor& images) = 0;
  virtual c10::Device device() const = 0;
  virtual std::int64_t parameter_count() const = 0;
  std::size_t num_classes() const { return info().classes.size(); }
};

/// An embedding net (e.g. face-api recognition): N×3×S×S → N×D.
class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual const ModelInfo& info() const = 0;
  virtual at::Tensor embed(const at::Tensor& images) = 0;
  virtual c10::Device device() const = 0;
  virtual std::int64_t parameter_count() const = 0;
};

struct LoadOptions {
  std::string device = "cpu";  ///< "cpu" or "cuda[:i]"
  /// Sub-task for multi-head models (faceapi:age-gender → "gender" or "age").
  std::string task;
};

/// Load any classifier by reference. Throws ModelError with one clear line
/// (bad file, missing sidecar, unknown reference).
std::unique_ptr<Classifier> load_classifier(const std::string& reference, const LoadOptions& options = {});

/// Parse a device string; throws ConfigError if unknown or unavailable.
c10::Device parse_device(const std::string& device);

/// Check that `model` classifies exactly the classes of `task` in `manifest`
/// ("identity": the manifest's identities; otherwise the attribute task's
/// classes), same count, same names, same order. Throws ModelError with one
/// line naming the model, the data set and the first difference.
void check_classes(const Classifier& model, const data::Manifest& manifest, const std::string& task);

}  // namespace edi::models
