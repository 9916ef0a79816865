#include "edi/engine/bench.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

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

/// One forward + input-gradient step of the pure loop on fixed rows.
class PureStep {
 public:
  PureStep(models::Classifier& model, const at::Tensor& images, const at::Tensor& labels, int batch)
      : model_(model), x0_(take(images, batch).to(model.device())), y_(take(labels, batch).to(model.device())) {}
  /// Seconds of one step.
  double operator()() {
    const auto t0 = Clock::now();
    at::Tensor x = x0_.detach().clone().requires_grad_(true);
    const at::Tensor loss = at::cross_entropy_loss(model_.logits(x), y_, {}, at::Reduction::Sum);
    const auto grads = torch::autograd::grad({loss}, {x});
    (void)grads[0].sum().item<float>();  // force completion
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }
  std::int64_t batch() const { return x0_.size(0); }

 private:
  models::Classifier& model_;
  at::Tensor x0_, y_;
};

double model_rate(models::Classifier& model, const at::Tensor& images, const at::Tensor& labels, int batch, int reps) {
  PureStep step(model, images, labels, batch);
  step();  // warm-up
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) times.push_back(step());
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
                      const at::Tensor& images, const at::Tensor& labels, int batch, int passes, int shard_size) {
  BenchRow row;
  row.batch = batch;
  EngineSpec spec = spec_in;
  spec.method = Method::kEdi;
  spec.stop = StopRule::kFixed;
  spec.passes = passes;
  spec.batch = batch;
  Engine engine(spec, models);
  const auto n = static_cast<std::int64_t>(ids.size());
  const std::int64_t per_shard = std::max<std::int64_t>(batch, shard_size);
  std::vector<Shard> shards;
  for (std::int64_t first = 0; first < n; first += per_shard) {
    const std::int64_t m = std::min(per_shard, n - first);
    shards.push_back(engine.make_shard(static_cast<int>(shards.size()), {ids.begin() + first, ids.begin() + first + m},
                                       images.narrow(0, first, m), labels.narrow(0, first, m)));
  }
  // The pure steps run between shards (half as many as the shard's batches),
  // so that both rates see the same load on a shared machine; the first call
  // warms up.
  const SteeringModels pure_models = with_precision(models, spec.steering.precision, spec.explain.target);
  PureStep pure(pure_models.primary(), images, labels, batch);
  pure();
  double pure_s = 0;
  std::int64_t pure_images = 0;
  for (int p = 0; p < passes; ++p) {  // the final forward-only evaluation is not part of the rate
    const Timing before = engine.timing();
    double pass_s = 0, pass_pure_s = 0;
    std::int64_t pass_pure_images = 0;
    for (Shard& shard : shards) {
      const auto t0 = Clock::now();
      engine.evaluate(shard, p);
      engine.perturb(shard, p);
      pass_s += std::chrono::duration<double>(Clock::now() - t0).count();
      // Half as many pure steps as the shard had batches (at least one).
      const std::int64_t steps = std::max<std::int64_t>(1, (static_cast<std::int64_t>(shard.size()) + 2 * batch - 1) / (2 * batch));
      for (std::int64_t k = 0; k < steps; ++k) {
        pass_pure_s += pure();
        pass_pure_images += pure.batch();
      }
    }
    const double pass_rate = static_cast<double>(engine.timing().image_passes - before.image_passes) / pass_s;
    const double ratio = pass_rate / (static_cast<double>(pass_pure_images) / pass_pure_s);
    row.ratio_lo = p == 0 ? ratio : std::min(row.ratio_lo, ratio);
    row.ratio_hi = p == 0 ? ratio : std::max(row.ratio_hi, ratio);
    row.wall += pass_s;
    pure_s += pass_pure_s;
    pure_images += pass_pure_images;
  }
  row.split = engine.timing();
  row.engine_rate = static_cast<double>(row.split.image_passes) / row.wall;
  row.model_rate = static_cast<double>(pure_images) / pure_s;
  return row;
}

PrecisionComparison compare_precision(const EngineSpec& spec_in, const SteeringModels& models, const std::vector<std::string>& ids,
                                      const at::Tensor& images, const at::Tensor& labels, int batch) {
  constexpr int kRuns = PrecisionComparison::kRuns;
  PrecisionComparison out;
  out.batch = batch;
  out.noise_batch = batch > 1 ? batch / 2 : 2;
  out.images = static_cast<std::int64_t>(ids.size());
  std::vector<std::unique_ptr<Engine>> engines;
  std::vector<Shard> shards;
  std::vector<std::map<int, at::Tensor>> masks(kRuns);  // this pass: image → mask
  for (int k = 0; k < kRuns; ++k) {
    EngineSpec spec = spec_in;
    spec.batch = k == 1 ? out.noise_batch : batch;
    spec.steering.precision = k == 2 ? Precision::kBf16 : Precision::kFp32;
    engines.push_back(std::make_unique<Engine>(spec, models));
    engines.back()->set_mask_observer([&masks, k](const Shard&, int, const std::vector<int>& local, const at::Tensor& m) {
      for (std::size_t j = 0; j < local.size(); ++j) masks[k][local[j]] = m[static_cast<std::int64_t>(j)].clone();
    });
    shards.push_back(engines.back()->make_shard(0, ids, images, labels));
  }
  const int limit = spec_in.pass_limit();
  for (int p = 0; p <= limit; ++p) {
    PrecisionComparison::Pass row;
    row.pass = p;
    std::int64_t active = 0;
    for (int k = 0; k < kRuns; ++k) {
      masks[k].clear();
      const auto t0 = Clock::now();
      const PassCounts ev = engines[k]->evaluate(shards[k], p);
      const bool halt = spec_in.stop == StopRule::kDataset && 100.0 * ev.identified <= spec_in.target_risk * ev.total;
      active += engines[k]->perturb(shards[k], p, halt).active;
      out.wall[k] += std::chrono::duration<double>(Clock::now() - t0).count();
      row.identified[k] = ev.identified;
    }
    for (int k = 1; k < kRuns; ++k) {
      double sum = 0;
      std::int64_t n = 0;
      for (const auto& [i, m] : masks[0]) {
        const auto it = masks[k].find(i);
        if (it == masks[k].end()) continue;
        sum += m.eq(it->second).to(at::kDouble).mean().item<double>();
        ++n;
      }
      row.agreement[k] = n > 0 ? sum / static_cast<double>(n) : 0;
      if (k == 2) row.masks = n;
    }
    out.passes.push_back(row);
    if (active == 0) break;
  }
  for (int k = 0; k < kRuns; ++k) {
    std::int64_t identified = 0, stop_sum = 0;
    for (std::size_t i = 0; i < shards[k].size(); ++i) {
      const ImageRecord& r = shards[k].records[i];
      const ImageRecord& ref = shards[0].records[i];
      identified += r.identified ? 1 : 0;
      if (r.status == Status::kStopped) ++out.stopped[k], stop_sum += r.stop_pass;
      out.same_stop_pass[k] += r.status == ref.status && r.stop_pass == ref.stop_pass ? 1 : 0;
    }
    out.final_risk[k] = 100.0 * static_cast<double>(identified) / static_cast<double>(std::max<std::int64_t>(1, out.images));
    out.mean_stop_pass[k] = out.stopped[k] > 0 ? static_cast<double>(stop_sum) / static_cast<double>(out.stopped[k]) : 0;
  }
  return out;
}

BenchRow bench_engine(const EngineSpec& spec, models::Classifier& model, const std::vector<std::string>& ids,
                      const at::Tensor& images, const at::Tensor& labels, int batch, int passes, int shard_size) {
  SteeringModels one;
  one.steer.emplace_back(std::shared_ptr<models::Classifier>(), &model);  // aliasing: not owned
  return bench_engine(spec, one, ids, images, labels, batch, passes, shard_size);
}

}  // namespace edi::engine
