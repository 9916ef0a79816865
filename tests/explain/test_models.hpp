#pragma once
/// \file Real small models for the explain tests: an analytic linear classifier
/// (closed-form gradients), a small random-init CNN (torch::nn, fixed seed),
/// a linear embedder, and a classifier that (wrongly) runs without grad.
#include <torch/torch.h>

#include <string>

#include "edi/models/classifier.hpp"

namespace edi::explain::testing {

inline models::ModelInfo make_info(const std::string& arch, std::int64_t classes, int size) {
  models::ModelInfo info;
  info.reference = "test:" + arch;
  info.backend = "test";
  info.architecture = arch;
  info.task = "identity";
  for (std::int64_t c = 0; c < classes; ++c) info.classes.push_back("id" + std::to_string(c));
  info.input_size = size;
  return info;
}

/// logits = W·vec(x) + b. dCE(z, y)/dx = Wᵀ(softmax(z) − onehot(y)).
class LinearClassifier : public models::Classifier {
 public:
  LinearClassifier(at::Tensor w, at::Tensor b, int size)
      : w_(std::move(w)), b_(std::move(b)), info_(make_info("linear", w_.size(0), size)) {}
  const models::ModelInfo& info() const override { return info_; }
  at::Tensor logits(const at::Tensor& images) override {
    ++calls_;
    return images.flatten(1).matmul(w_.t()) + b_;
  }
  c10::Device device() const override { return c10::Device(c10::kCPU); }
  std::int64_t parameter_count() const override { return w_.numel() + b_.numel(); }
  const at::Tensor& weight() const { return w_; }
  const at::Tensor& bias() const { return b_; }
  int calls_ = 0;

 private:
  at::Tensor w_, b_;
  models::ModelInfo info_;
};

struct SmallCnnImpl : torch::nn::Module {
  explicit SmallCnnImpl(std::int64_t classes)
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 6, 3).padding(1)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 8, 3).stride(2)))),
        fc(register_module("fc", torch::nn::Linear(8 * 2 * 2, classes))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = torch::tanh(conv1(x));
    x = torch::tanh(conv2(x));
    x = torch::adaptive_avg_pool2d(x, {2, 2});
    return fc(x.flatten(1));
  }
  torch::nn::Conv2d conv1;
  torch::nn::Conv2d conv2;
  torch::nn::Linear fc;
};
TORCH_MODULE(SmallCnn);

/// A random-init (fixed seed) two-conv CNN, frozen and in eval mode.
class CnnClassifier : public models::Classifier {
 public:
  CnnClassifier(std::int64_t classes, int size, std::uint64_t seed = 7)
      : net_((torch::manual_seed(seed), SmallCnn(classes))), info_(make_info("small-cnn", classes, size)) {
    net_->eval();
    for (auto& p : net_->parameters()) p.set_requires_grad(false);
  }
  const models::ModelInfo& info() const override { return info_; }
  at::Tensor logits(const at::Tensor& images) override {
    ++calls_;
    return net_->forward(images);
  }
  c10::Device device() const override { return c10::Device(c10::kCPU); }
  std::int64_t parameter_count() const override {
    std::int64_t n = 0;
    for (const auto& p : net_->parameters()) n += p.numel();
    return n;
  }
  int calls_ = 0;

 private:
  SmallCnn net_;
  models::ModelInfo info_;
};

/// embedding = A·vec(x); L = ||A x − r||², dL/dx = 2Aᵀ(A x − r).
class LinearEmbedder : public models::Embedder {
 public:
  LinearEmbedder(at::Tensor a, int size) : a_(std::move(a)), info_(make_info("linear-embedder", 0, size)) {}
  const models::ModelInfo& info() const override { return info_; }
  at::Tensor embed(const at::Tensor& images) override { return images.flatten(1).matmul(a_.t()); }
  c10::Device device() const override { return c10::Device(c10::kCPU); }
  std::int64_t parameter_count() const override { return a_.numel(); }
  const at::Tensor& matrix() const { return a_; }

 private:
  at::Tensor a_;
  models::ModelInfo info_;
};

/// A broken back-end that evaluates under NoGradGuard.
class NoGradClassifier : public LinearClassifier {
 public:
  using LinearClassifier::LinearClassifier;
  at::Tensor logits(const at::Tensor& images) override {
    torch::NoGradGuard guard;
    return LinearClassifier::logits(images);
  }
};

}  // namespace edi::explain::testing
