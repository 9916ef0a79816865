// Helpers shared by the evaluation blocks: model forward passes, true-class
// ranks, hit rates, per-image columns.
#include <algorithm>
#include <cmath>
#include <optional>

#include "edi/core/progress.hpp"
#include "edi/data/image.hpp"
#include "edi/metrics/format.hpp"
#include "eval_parts.hpp"

namespace edi::metrics::detail {

namespace fs = std::filesystem;

json interval_json(const Interval& v) {
  auto num = [](double x) -> json { return std::isfinite(x) ? json(x) : json(nullptr); };
  return {{"value", num(v.value)}, {"lo", num(v.lo)}, {"hi", num(v.hi)}, {"n", v.n}};
}

std::vector<std::string> int_column(const std::vector<int>& v) {
  std::vector<std::string> s;
  for (int x : v) s.push_back(std::to_string(x));
  return s;
}

std::vector<std::string> number_column(const std::vector<double>& v) {
  std::vector<std::string> s;
  for (double x : v) s.push_back(format_number(x, kImageNumber));
  return s;
}

namespace {
/// N×3×S×S float images → at `size` (PIL-like antialiased resize), unchanged if equal.
at::Tensor at_size(const at::Tensor& images, int size) {
  if (images.size(2) == size && images.size(3) == size) return images;
  std::vector<cv::Mat> mats;
  for (std::int64_t i = 0; i < images.size(0); ++i)
    mats.push_back(data::resize_antialiased(data::tensor_to_image(images[i]), cv::Size(size, size)));
  return data::images_to_tensor(mats);
}
}  // namespace

std::string progress_label(const RunInputs& in, const std::string& what) {
  const fs::path dir = in.rundir.filename().empty() ? in.rundir.parent_path() : in.rundir;
  std::string name = dir.filename().string();
  if (in.snapshot.is_object()) name = dir.parent_path().parent_path().filename().string() + "@" + name;
  return "evaluate " + name + ": " + what;
}

int images_per_forward(int batch, int input_size) {
  if (batch > 0) return batch;
  const long long pixels = std::max(1LL, static_cast<long long>(input_size) * input_size);
  return static_cast<int>(std::clamp((1LL << 18) / pixels, 1LL, 64LL));
}

at::Tensor predict_logits(models::Classifier& model, const at::Tensor& images, int batch, const std::string& progress) {
  torch::NoGradGuard guard;
  std::optional<Progress> p;
  if (!progress.empty()) p.emplace(progress, static_cast<std::size_t>(images.size(0)), "images");
  const int size = model.info().input_size > 0 ? model.info().input_size : static_cast<int>(images.size(2));
  batch = images_per_forward(batch, size);
  std::vector<at::Tensor> out;
  for (std::int64_t b = 0; b < images.size(0); b += batch) {
    const std::int64_t len = std::min<std::int64_t>(batch, images.size(0) - b);
    at::Tensor x = at_size(images.narrow(0, b, len), size).to(model.device());
    out.push_back(model.logits(x).detach().to(torch::kCPU).to(torch::kFloat));
    if (p) p->add(static_cast<std::size_t>(len));
  }
  return out.empty() ? torch::zeros({0, static_cast<std::int64_t>(model.num_classes())}) : torch::cat(out);
}

std::vector<int> true_ranks(const at::Tensor& scores, const std::vector<int>& labels) {
  std::vector<int> ranks(labels.size());
  auto acc = scores.accessor<float, 2>();
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const float t = acc[static_cast<std::int64_t>(i)][labels[i]];
    int r = 0;
    for (std::int64_t c = 0; c < scores.size(1); ++c) r += acc[static_cast<std::int64_t>(i)][c] > t;
    ranks[i] = r;
  }
  return ranks;
}

std::vector<int> argmax_rows(const at::Tensor& scores) {
  const at::Tensor a = scores.argmax(1).to(torch::kLong).contiguous();
  std::vector<int> out(static_cast<std::size_t>(a.size(0)));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int>(a[static_cast<std::int64_t>(i)].item<std::int64_t>());
  return out;
}

fs::path resolve_model(const std::string& ref, const fs::path& rundir) {
  if (models::kind_of(ref) == models::ModelKind::kFaceApi) return ref;
  fs::path p(ref);
  if (p.is_absolute() || fs::exists(p)) return p;
  if (fs::exists(rundir.parent_path() / p)) return rundir.parent_path() / p;
  if (fs::exists(rundir / p)) return rundir / p;
  return p;
}

}  // namespace edi::metrics::detail
