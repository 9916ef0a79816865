// Native LibTorch nets (small-cnn, resnet18), their checkpoints and the
// Classifier over them.
#include "edi/models/native.hpp"

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "native_nets.hpp"

namespace edi::models {

namespace detail {

namespace {

namespace nn = torch::nn;

nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}

/// 4 × [conv3×3 + BN + ReLU], 2×2 max-pool after the first three, global
/// average pool, FC.
struct SmallCnn : NativeNet {
  static constexpr std::int64_t kWidths[4] = {32, 64, 128, 256};
  SmallCnn(std::int64_t classes) {
    std::int64_t in = 3;
    for (int i = 0; i < 4; ++i) {
      convs[i] = register_module("conv" + std::to_string(i + 1), conv(in, kWidths[i], 3, 1));
      bns[i] = register_module("bn" + std::to_string(i + 1), nn::BatchNorm2d(kWidths[i]));
      in = kWidths[i];
    }
    fc = register_module("fc", nn::Linear(in, classes));
  }
  torch::Tensor forward(torch::Tensor x) override {
    for (int i = 0; i < 4; ++i) {
      x = torch::relu(bns[i](convs[i](x)));
      if (i < 3) x = torch::max_pool2d(x, 2);
    }
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return fc(x);
  }
  nn::Conv2d convs[4]{nullptr, nullptr, nullptr, nullptr};
  nn::BatchNorm2d bns[4]{nullptr, nullptr, nullptr, nullptr};
  nn::Linear fc{nullptr};
};

struct BasicBlockImpl : nn::Module {
  BasicBlockImpl(std::int64_t in, std::int64_t out, std::int64_t stride)
      : conv1(register_module("conv1", conv(in, out, 3, stride))),
        bn1(register_module("bn1", nn::BatchNorm2d(out))),
        conv2(register_module("conv2", conv(out, out, 3, 1))),
        bn2(register_module("bn2", nn::BatchNorm2d(out))) {
    if (stride != 1 || in != out) {
      down_conv = register_module("down_conv", conv(in, out, 1, stride));
      down_bn = register_module("down_bn", nn::BatchNorm2d(out));
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor y = torch::relu(bn1(conv1(x)));
    y = bn2(conv2(y));
    torch::Tensor skip = down_conv ? down_bn(down_conv(x)) : x;
    return torch::relu(y + skip);
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Conv2d down_conv{nullptr};
  nn::BatchNorm2d down_bn{nullptr};
};
TORCH_MODULE(BasicBlock);

/// ResNet-18; small inputs (< 128 px) get a conv3×3/1 stem and no max-pool.
struct ResNet18 : NativeNet {
  ResNet18(std::int64_t classes, int input_size) : small_stem(input_size < 128) {
    stem = register_module("conv1", small_stem ? conv(3, 64, 3, 1) : conv(3, 64, 7, 2));
    stem_bn = register_module("bn1", nn::BatchNorm2d(64));
    const std::int64_t widths[4] = {64, 128, 256, 512};
    std::int64_t in = 64;
    for (int l = 0; l < 4; ++l) {
      for (int b = 0; b < 2; ++b) {
        const std::int64_t stride = (l > 0 && b == 0) ? 2 : 1;
        blocks.push_back(register_module("layer" + std::to_string(l + 1) + "_" + std::to_string(b),
                                         BasicBlock(in, widths[l], stride)));
        in = widths[l];
      }
    }
    fc = register_module("fc", nn::Linear(in, classes));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(stem_bn(stem(x)));
    if (!small_stem) x = torch::max_pool2d(x, 3, 2, 1);
    for (auto& b : blocks) x = b->forward(x);
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return fc(x);
  }
  bool small_stem;
  nn::Conv2d stem{nullptr};
  nn::BatchNorm2d stem_bn{nullptr};
  std::vector<BasicBlock> blocks;
  nn::Linear fc{nullptr};
};

}  // namespace

std::shared_ptr<NativeNet> make_native_net(const std::string& architecture, std::int64_t classes, int input_size,
                                           const std::string& source) {
  if (classes < 1) throw ModelError(source + ": a native net needs at least one class");
  if (architecture == "small-cnn") return std::make_shared<SmallCnn>(classes);
  if (architecture == "resnet18") return std::make_shared<ResNet18>(classes, input_size);
  throw ModelError(source + ": unknown native architecture '" + architecture + "' (expected small-cnn or resnet18)");
}

void save_net(const NativeNet& net, torch::serialize::OutputArchive& archive) {
  torch::NoGradGuard no_grad;
  for (const auto& p : net.named_parameters()) archive.write("model/" + p.key(), p.value().detach().cpu());
  for (const auto& b : net.named_buffers()) archive.write("model/" + b.key(), b.value().cpu(), /*is_buffer=*/true);
}

void load_net(NativeNet& net, torch::serialize::InputArchive& archive, const std::string& source) {
  torch::NoGradGuard no_grad;
  auto read_into = [&](const std::string& name, torch::Tensor& target, bool is_buffer) {
    torch::Tensor value;
    if (!archive.try_read("model/" + name, value, is_buffer))
      throw ModelError(source + ": checkpoint has no tensor '" + name + "' (not a checkpoint of this architecture)");
    if (value.sizes() != target.sizes())
      throw ModelError(source + ": tensor '" + name + "' has shape " + c10::str(value.sizes()) + ", expected " +
                       c10::str(target.sizes()) + " (sidecar classes/architecture do not match the weights)");
    target.copy_(value);
  };
  for (auto& p : net.named_parameters()) read_into(p.key(), p.value(), false);
  for (auto& b : net.named_buffers()) read_into(b.key(), b.value(), true);
}

void save_archive_atomic(torch::serialize::OutputArchive& archive, const std::filesystem::path& path) {
  AtomicPath out(path);
  try {
    archive.save_to(out.temp().string());
  } catch (const c10::Error& e) {
    throw IoError(path.string() + ": cannot write (" + e.what_without_backtrace() + ")");
  }
  out.commit(Durability::kProcessCrash);
}

}  // namespace detail

namespace {

class NativeClassifier : public Classifier {
 public:
  NativeClassifier(std::shared_ptr<detail::NativeNet> net, ModelInfo info, c10::Device device)
      : net_(std::move(net)), info_(std::move(info)), device_(device) {
    net_->eval();
    net_->to(device_);
    for (auto& p : net_->parameters()) {
      p.requires_grad_(false);
      count_ += p.numel();
    }
    const auto& n = info_.normalisation;
    mean_ = torch::tensor({n.mean[0], n.mean[1], n.mean[2]}).view({1, 3, 1, 1}).to(device_);
    inv_std_ = (1.0 / torch::tensor({n.std[0], n.std[1], n.std[2]})).view({1, 3, 1, 1}).to(device_);
  }
  const ModelInfo& info() const override { return info_; }
  c10::Device device() const override { return device_; }
  std::int64_t parameter_count() const override { return count_; }
  at::Tensor logits(const at::Tensor& images) override {
    const auto s = info_.input_size;
    if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != s || images.size(3) != s)
      throw ModelError(info_.reference + ": expected input N×3×" + std::to_string(s) + "×" + std::to_string(s) +
                       ", got " + c10::str(images.sizes()));
    return net_->forward((images.to(device_, at::kFloat) - mean_) * inv_std_);
  }

 private:
  std::shared_ptr<detail::NativeNet> net_;
  ModelInfo info_;
  c10::Device device_;
  at::Tensor mean_, inv_std_;
  std::int64_t count_ = 0;
};

torch::serialize::InputArchive open_archive(const std::filesystem::path& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string());
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    if (auto pos = what.find('\n'); pos != std::string::npos) what.resize(pos);
    throw ModelError(path.string() + ": not a loadable native checkpoint (expected a checkpoint written by edi-anon train; " + what +
                     ")");
  }
  return archive;
}

}  // namespace

const std::vector<std::string>& native_architectures() {
  static const std::vector<std::string> names = {"small-cnn", "resnet18"};
  return names;
}

std::unique_ptr<Classifier> load_native_classifier(const std::filesystem::path& path, const Sidecar& sidecar,
                                                   const LoadOptions& options) {
  const c10::Device device = parse_device(options.device);
  auto net = detail::make_native_net(sidecar.architecture, static_cast<std::int64_t>(sidecar.classes.size()),
                                     sidecar.input_size, path.string());
  auto archive = open_archive(path);
  detail::load_net(*net, archive, path.string());
  return std::make_unique<NativeClassifier>(std::move(net), info_from_sidecar(path.string(), sidecar, sha256_file(path)),
                                            device);
}

void write_initial_native_model(const std::filesystem::path& path, const Sidecar& sidecar, std::uint64_t seed) {
  torch::manual_seed(seed);
  auto net = detail::make_native_net(sidecar.architecture, static_cast<std::int64_t>(sidecar.classes.size()),
                                     sidecar.input_size, path.string());
  torch::serialize::OutputArchive archive;
  detail::save_net(*net, archive);
  detail::save_archive_atomic(archive, path);
  Sidecar s = sidecar;
  s.backend = "native";
  write_sidecar(path, s);
}

std::vector<std::pair<std::string, at::Tensor>> read_native_state(const std::filesystem::path& path,
                                                                  const Sidecar& sidecar) {
  auto net = detail::make_native_net(sidecar.architecture, static_cast<std::int64_t>(sidecar.classes.size()),
                                     sidecar.input_size, path.string());
  auto archive = open_archive(path);
  detail::load_net(*net, archive, path.string());
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : net->named_parameters()) out.emplace_back(p.key(), p.value().detach().clone());
  for (const auto& b : net->named_buffers()) out.emplace_back(b.key(), b.value().clone());
  return out;
}

}  // namespace edi::models
