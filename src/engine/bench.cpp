#include "edi/engine/bench.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>

namespace edi::engine {

namespace {
using Clock = std::chrono::steady_clock;

at::Tensor take(const at::Tensor& t, std::int64_t n) {
  // Repeat the available rows to reach n (small data sets, large batches).
  const std::int64_t have = t.size(0);
  if (have >= n) return t.narrow(0, 0, n);
  const at::Tensor idx = at::arange(n, at::kLong).remainder(have);
  return t.index_select(0, idx);
}
}  // namespace

double model_rate(models::Classifier& model, const at::Tensor& images, const at::Tensor& labels, int batch, int reps) {
  const at::Tensor x0 = take(images, batch).to(model.device());
  const at::Tensor y = take(labels, batch).to(model.device());
  std::vector<double> times;
  for (int r = 0; r <= reps; ++r) {
    const auto t0 = Clock::now();
    at::Tensor x = x0.detach().clone().requires_grad_(true);
    const at::Tensor loss = at::cross_entropy_loss(model.logits(x), y, {}, at::Reduction::Sum);
    const auto grads = torch::autograd::grad({loss}, {x});
    (void)grads[0].sum().item<float>();  // force completion
    if (r > 0) times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return batch / times[times.size() / 2];
}

int choose_batch(models::Classifier& model, const at::Tensor& images, const at::Tensor& labels, const std::vector<int>& candidates) {
  int best = candidates.front();
  double best_rate = 0;
  for (int b : candidates) {
    if (b > std::max<std::int64_t>(images.size(0), candidates.front())) break;
    const double r = model_rate(model, images, labels, b, 2);
    if (r > best_rate) {
      best_rate = r;
      best = b;
    }
  }
  return best;
}

BenchRow bench_engine(const EngineSpec& spec_in, const SteeringModels& models, const std::vector<std::string>& ids,
                      const at::Tensor& images, const at::Tensor& labels, int batch, int passes) {
  BenchRow row;
  row.batch = batch;
  row.model_rate = model_rate(models.primary(), images, labels, batch);
  EngineSpec spec = spec_in;
  spec.method = Method::kEdi;
  spec.stop = StopRule::kFixed;
  spec.passes = passes;
  spec.batch = batch;
  Engine engine(spec, models);
  Shard shard = engine.make_shard(0, ids, images, labels);
  const auto t0 = Clock::now();
  for (int p = 0; p < passes; ++p) {  // the final forward-only evaluation is not part of the rate
    engine.evaluate(shard, p);
    engine.perturb(shard, p);
  }
  row.wall = std::chrono::duration<double>(Clock::now() - t0).count();
  row.split = engine.timing();
  row.engine_rate = static_cast<double>(row.split.image_passes) / row.wall;
  return row;
}

BenchRow bench_engine(const EngineSpec& spec, models::Classifier& model, const std::vector<std::string>& ids,
                      const at::Tensor& images, const at::Tensor& labels, int batch, int passes) {
  SteeringModels one;
  one.steer.emplace_back(std::shared_ptr<models::Classifier>(), &model);  // aliasing: not owned
  return bench_engine(spec, one, ids, images, labels, batch, passes);
}

}  // namespace edi::engine
