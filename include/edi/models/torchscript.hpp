#pragma once
/// \file Classifier over a TorchScript file (torch::jit::load) described by its
/// JSON sidecar; typically a torchvision net exported by
/// scripts/export_torchscript.py.
#include <filesystem>
#include <memory>

#include "edi/models/classifier.hpp"
#include "edi/models/registry.hpp"

namespace edi::models {

/// Load the TorchScript file `path` described by `sidecar`: eval mode, frozen
/// parameters, normalisation applied before the module. A dry run on one
/// zero image checks the logit width against the class count. Throws
/// ModelError naming the file on an unreadable module or a width mismatch.
std::unique_ptr<Classifier> load_torchscript_classifier(const std::filesystem::path& path, const Sidecar& sidecar,
                                                        const LoadOptions& options = {});

}  // namespace edi::models
