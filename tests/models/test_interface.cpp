// One interface suite over every back-end behind load_classifier.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "edi/core/error.hpp"
#include "edi/data/threads.hpp"
#include "edi/models/classifier.hpp"
#include "edi/models/faceapi.hpp"
#include "fixtures.hpp"

namespace edi::models::testing {
namespace {

struct Backend {
  std::string name;
  std::function<std::string()> reference;  ///< makes the model file if needed
  LoadOptions options;
  std::string backend, architecture, task;
  std::vector<std::string> classes;
  int input_size;
};

/// gtest prints the back-end's name instead of its bytes.
void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

std::vector<Backend> backends() {
  std::vector<std::string> ts_classes;
  for (int i = 0; i < 5; ++i) ts_classes.push_back("class-0" + std::to_string(i));
  return {
      {"torchscript", [] { return torchscript_model().string(); }, {}, "torchscript", "tinynet", "identity",
       ts_classes, 32},
      {"native_small_cnn", [] { return native_model("small-cnn", 7, 32).string(); }, {}, "native", "small-cnn",
       "identity", class_names("id-", 7), 32},
      {"native_resnet18", [] { return native_model("resnet18", 4, 32).string(); }, {}, "native", "resnet18",
       "identity", class_names("id-", 4), 32},
      // Needs the face-api assets (scripts/fetch_assets.sh): fails, never skips, without them.
      {"faceapi_gender", [] { return std::string("faceapi:age-gender"); }, {"cpu", "gender"}, "faceapi",
       "faceapi-tiny-xception", "gender", {"female", "male"}, 112},
  };
}

class ClassifierInterface : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    apply_thread_count(1);
    model_ = load_classifier(GetParam().reference(), GetParam().options);
    ASSERT_TRUE(model_);
  }
  at::Tensor images(std::int64_t n, std::uint64_t seed = 1) const {
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const int s = GetParam().input_size;
    return at::rand({n, 3, s, s}, gen);
  }
  std::unique_ptr<Classifier> model_;
};

TEST_P(ClassifierInterface, InfoMatchesTheModel) {
  const auto& p = GetParam();
  const ModelInfo& info = model_->info();
  EXPECT_EQ(info.reference, p.reference());
  EXPECT_EQ(info.backend, p.backend);
  EXPECT_EQ(info.architecture, p.architecture);
  EXPECT_EQ(info.task, p.task);
  EXPECT_EQ(info.classes, p.classes);
  EXPECT_EQ(model_->num_classes(), p.classes.size());
  EXPECT_EQ(info.input_size, p.input_size);
  EXPECT_EQ(info.file_sha256.size(), 64u);
  EXPECT_GT(model_->parameter_count(), 0);
  EXPECT_TRUE(model_->device().is_cpu());
}

TEST_P(ClassifierInterface, LogitsHaveOneRowPerImageAndOneColumnPerClass) {
  const auto z = model_->logits(images(3));
  ASSERT_EQ(z.dim(), 2);
  EXPECT_EQ(z.size(0), 3);
  EXPECT_EQ(z.size(1), static_cast<std::int64_t>(GetParam().classes.size()));
  EXPECT_EQ(z.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::isfinite(z).all().item<bool>());
  // Different images give different logits (the net is not constant).
  EXPECT_GT((z[0] - z[1]).abs().max().item<float>(), 0.f);
}

TEST_P(ClassifierInterface, InputGradientIsFiniteAndNonZero) {
  at::Tensor x = images(2).requires_grad_(true);
  const at::Tensor z = model_->logits(x);
  ASSERT_TRUE(z.requires_grad());
  z.select(1, 0).sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().sizes(), x.sizes());
  EXPECT_TRUE(at::isfinite(x.grad()).all().item<bool>());
  // Every image gets its own non-zero gradient.
  EXPECT_GT(x.grad()[0].abs().sum().item<float>(), 0.f);
  EXPECT_GT(x.grad()[1].abs().sum().item<float>(), 0.f);
}

TEST_P(ClassifierInterface, ParametersAreFrozen) {
  // Without an input that requires grad, nothing in the graph does.
  const at::Tensor z = model_->logits(images(2));
  EXPECT_FALSE(z.requires_grad());
}

TEST_P(ClassifierInterface, IdenticalInputsGiveIdenticalOutputs) {
  const at::Tensor x = images(4, 9);
  const at::Tensor a = model_->logits(x);
  const at::Tensor b = model_->logits(x.clone());
  EXPECT_TRUE(at::equal(a, b));
  // A second load of the same reference at the same thread count agrees bitwise.
  auto again = load_classifier(GetParam().reference(), GetParam().options);
  EXPECT_TRUE(at::equal(a, again->logits(x)));
}

TEST_P(ClassifierInterface, ImagesInABatchDoNotInteract) {
  // Eval mode: a batch row equals the same image alone (up to summation order).
  const at::Tensor x = images(4, 5);
  const at::Tensor batch = model_->logits(x);
  for (std::int64_t i = 0; i < 4; ++i) {
    const at::Tensor alone = model_->logits(x.narrow(0, i, 1));
    EXPECT_TRUE(at::allclose(batch.narrow(0, i, 1), alone, 1e-4, 1e-4)) << "image " << i;
  }
}

TEST_P(ClassifierInterface, WrongInputSizeIsRejectedOrResized) {
  const int s = GetParam().input_size;
  if (GetParam().backend == "faceapi") {
    // face-api nets resize internally (documented in faceapi.hpp).
    EXPECT_EQ(model_->logits(at::rand({1, 3, s + 8, s + 8})).size(0), 1);
  } else {
    const std::string msg = error_of<ModelError>([&] { model_->logits(at::rand({1, 3, s + 8, s + 8})); });
    EXPECT_NE(msg.find("expected input N×3×" + std::to_string(s)), std::string::npos) << msg;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ClassifierInterface, ::testing::ValuesIn(backends()),
                         [](const ::testing::TestParamInfo<Backend>& p) { return p.param.name; });

TEST(NativeModel, NormalisationFromTheSidecarIsAppliedInside) {
  apply_thread_count(1);
  // Same weights, two sidecars: (x - m)/s with m=0.5,s=0.25 equals identity
  // normalisation on the pre-normalised input.
  const fs::path a = native_model("small-cnn", 3, 16);
  Sidecar s = read_sidecar(a);
  const fs::path b = temp_dir() / "renorm.pt";
  fs::copy_file(a, b, fs::copy_options::overwrite_existing);
  s.normalisation.mean = {0.f, 0.f, 0.f};
  s.normalisation.std = {1.f, 1.f, 1.f};
  write_sidecar(b, s);
  auto ma = load_classifier(a.string());
  auto mb = load_classifier(b.string());
  const auto& n = ma->info().normalisation;
  const at::Tensor x = at::rand({2, 3, 16, 16});
  const at::Tensor mean = at::tensor({n.mean[0], n.mean[1], n.mean[2]}).view({1, 3, 1, 1});
  const at::Tensor std = at::tensor({n.std[0], n.std[1], n.std[2]}).view({1, 3, 1, 1});
  EXPECT_TRUE(at::allclose(ma->logits(x), mb->logits((x - mean) / std), 1e-4, 1e-5));
}

TEST(NativeModel, StateRoundTripsThroughTheCheckpoint) {
  const fs::path p = native_model("resnet18", 4, 32);
  const auto state = read_native_state(p, read_sidecar(p));
  ASSERT_FALSE(state.empty());
  std::int64_t params = 0;
  bool has_running_var = false;
  for (const auto& [name, t] : state) {
    if (name.find("running_var") != std::string::npos) has_running_var = true;
    if (name.find("running") == std::string::npos && name.find("num_batches") == std::string::npos)
      params += t.numel();
  }
  EXPECT_TRUE(has_running_var);
  EXPECT_EQ(params, load_classifier(p.string())->parameter_count());
  // ResNet-18 with a 4-class head: 11.17 M parameters.
  EXPECT_NEAR(static_cast<double>(params), 11.17e6, 0.02e6);
}

TEST(NativeModel, SmallCnnHasTheDocumentedSize) {
  const fs::path p = native_model("small-cnn", 20, 64);
  const auto n = load_classifier(p.string())->parameter_count();
  EXPECT_GT(n, 200000);
  EXPECT_LT(n, 1000000);
}

}  // namespace
}  // namespace edi::models::testing
