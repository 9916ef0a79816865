#pragma once
// Internal to the models stage: the native LibTorch nets and their
// checkpoint I/O. Includes <torch/torch.h>: only native.cpp and training.cpp
// include this.
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>

#include "edi/models/registry.hpp"

namespace edi::models::detail {

/// Base of the native nets: a module with a concrete forward.
struct NativeNet : torch::nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};

/// Build the net named `architecture` (small-cnn, resnet18) for `classes`
/// outputs and `input_size` inputs. ModelError for unknown names.
std::shared_ptr<NativeNet> make_native_net(const std::string& architecture, std::int64_t classes, int input_size,
                                           const std::string& source);

/// Parameters and buffers under "model/<name>".
void save_net(const NativeNet& net, torch::serialize::OutputArchive& archive);
void load_net(NativeNet& net, torch::serialize::InputArchive& archive, const std::string& source);

/// Write an archive to `path` atomically (temp + rename).
void save_archive_atomic(torch::serialize::OutputArchive& archive, const std::filesystem::path& path);

}  // namespace edi::models::detail
