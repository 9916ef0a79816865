// TorchScript back-end: torch::jit::load + the JSON sidecar.
#include "edi/models/torchscript.hpp"

#include <torch/script.h>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"

namespace edi::models {

namespace {

class TorchScriptClassifier : public Classifier {
 public:
  TorchScriptClassifier(torch::jit::Module module, ModelInfo info, c10::Device device)
      : module_(std::move(module)), info_(std::move(info)), device_(device) {
    const auto& n = info_.normalisation;
    mean_ = torch::tensor({n.mean[0], n.mean[1], n.mean[2]}).view({1, 3, 1, 1}).to(device_);
    inv_std_ = (1.0 / torch::tensor({n.std[0], n.std[1], n.std[2]})).view({1, 3, 1, 1}).to(device_);
    for (const auto& p : module_.parameters()) {
      p.requires_grad_(false);
      count_ += p.numel();
    }
  }

  const ModelInfo& info() const override { return info_; }
  c10::Device device() const override { return device_; }
  std::int64_t parameter_count() const override { return count_; }

  at::Tensor logits(const at::Tensor& images) override {
    const auto s = info_.input_size;
    if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != s || images.size(3) != s)
      throw ModelError(info_.reference + ": expected input N×3×" + std::to_string(s) + "×" + std::to_string(s) +
                       ", got " + shape_text(images));
    at::Tensor x = (images.to(device_, at::kFloat) - mean_) * inv_std_;
    c10::IValue out = module_.forward({x});
    at::Tensor z;
    if (out.isTensor()) {
      z = out.toTensor();
    } else if (out.isTuple() && !out.toTupleRef().elements().empty() && out.toTupleRef().elements()[0].isTensor()) {
      z = out.toTupleRef().elements()[0].toTensor();
    } else {
      throw ModelError(info_.reference + ": TorchScript forward returned " + out.tagKind() + ", expected a tensor");
    }
    if (z.dim() != 2 || z.size(0) != images.size(0) || z.size(1) != static_cast<std::int64_t>(info_.classes.size()))
      throw ModelError(info_.reference + ": logits have shape " + shape_text(z) + ", expected " +
                       std::to_string(images.size(0)) + "×" + std::to_string(info_.classes.size()) +
                       " (one column per sidecar class)");
    return z;
  }

  static std::string shape_text(const at::Tensor& t) {
    std::string s;
    for (std::int64_t i = 0; i < t.dim(); ++i) s += (i ? "×" : "") + std::to_string(t.size(i));
    return s.empty() ? "a scalar" : s;
  }

 private:
  torch::jit::Module module_;
  ModelInfo info_;
  c10::Device device_;
  at::Tensor mean_, inv_std_;
  std::int64_t count_ = 0;
};

}  // namespace

std::unique_ptr<Classifier> load_torchscript_classifier(const std::filesystem::path& path, const Sidecar& sidecar,
                                                        const LoadOptions& options) {
  const c10::Device device = parse_device(options.device);
  torch::jit::Module module;
  try {
    module = torch::jit::load(path.string(), device);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    if (auto pos = what.find('\n'); pos != std::string::npos) what.resize(pos);
    throw ModelError(path.string() + ": not a loadable TorchScript file (expected a torch.jit.save archive; " + what +
                     ")");
  }
  module.eval();
  auto classifier = std::make_unique<TorchScriptClassifier>(
      std::move(module), info_from_sidecar(path.string(), sidecar, sha256_file(path)), device);
  // Dry run: the logit width must equal the sidecar's class count.
  {
    torch::NoGradGuard no_grad;
    const auto s = sidecar.input_size;
    at::Tensor z;
    try {
      z = classifier->logits(torch::zeros({1, 3, s, s}));
    } catch (const ModelError& e) {
      throw ModelError(path.string() + ": does not match its sidecar " + sidecar_path(path).string() + ": " +
                       std::string(e.what()).substr(path.string().size() + 2));
    } catch (const c10::Error& e) {
      std::string what = e.what_without_backtrace();
      if (auto pos = what.find('\n'); pos != std::string::npos) what.resize(pos);
      throw ModelError(path.string() + ": forward on a 1×3×" + std::to_string(s) + "×" + std::to_string(s) +
                       " input failed (" + what + ")");
    }
  }
  return classifier;
}

}  // namespace edi::models
