#pragma once
/// \file The models interface layer (stage model_api): one classifier and one
/// embedder interface for every back-end (TorchScript files, native LibTorch
/// nets trained by `edi-anon train`, the ported face-api and human nets), the
/// load options and the one device parser. Back-ends depend on this layer, not
/// on each other; load_classifier() and check_classes() are in
/// edi/models/registry.hpp (stage models).
///
/// A model is referred to everywhere by one string, parsed once into a
/// ModelRef (edi/models/model_ref.hpp, included): a path to a TorchScript file
/// (with a `.json` sidecar), a path to a native checkpoint, `faceapi:NET`,
/// `human:NET`, or a comma list of those (ensemble steering).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edi/models/model_ref.hpp"

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
  std::string file_sha256;           ///< sha256 of the weights file, hashed once at load
  std::string sidecar_sha256;        ///< sha256 of the JSON sidecar as read at load; empty without one
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

/// Parse a device string ("cpu", "cuda", "cuda:<index>"); throws ConfigError
/// naming it when malformed, or when this LibTorch build or machine lacks it.
/// The one device parser of every model stage (src/models/api/device.cpp).
c10::Device parse_device(const std::string& device);

}  // namespace edi::models
