#pragma once
/// \file Native LibTorch classifiers trained by `edi-anon train`:
///  * `small-cnn`: 4 × [conv3×3 + BN + ReLU] (32/64/128/256 channels), 2×2
///    max-pool after the first three, global average pool, FC (≈0.4 M params);
///  * `resnet18`: BasicBlocks [2,2,2,2] × (64..512); for inputs below 128 px
///    the stem is conv3×3 stride 1 without max-pool, else conv7×7/2 + max-pool.
/// A native model is a checkpoint of the module's parameters and buffers
/// (torch::serialize archive, e.g. `MODEL.pt`) plus the sidecar with
/// `"backend": "native"`. Normalisation is applied inside the classifier.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "edi/models/classifier.hpp"
#include "edi/models/registry.hpp"

namespace edi::models {

/// Native architectures, in the order `--arch` lists them.
const std::vector<std::string>& native_architectures();

/// Load a native checkpoint described by `sidecar` (backend "native"). Throws
/// ModelError naming the file on an unknown architecture or an unreadable or
/// mismatching checkpoint.
std::unique_ptr<Classifier> load_native_classifier(const std::filesystem::path& path, const Sidecar& sidecar,
                                                   const LoadOptions& options = {});

/// Build a freshly initialised net (torch generator seeded with `seed`) for
/// `sidecar` (architecture, classes, input_size) and write it with its
/// sidecar to `path`, atomically. Used for tests and as training's start.
void write_initial_native_model(const std::filesystem::path& path, const Sidecar& sidecar, std::uint64_t seed);

/// Named parameters and buffers of a native checkpoint, in module order (CPU).
std::vector<std::pair<std::string, at::Tensor>> read_native_state(const std::filesystem::path& path,
                                                                  const Sidecar& sidecar);

}  // namespace edi::models
