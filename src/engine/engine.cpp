#include "edi/engine/engine.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "edi/core/error.hpp"
#include "edi/core/rng.hpp"
#include "edi/data/image.hpp"
#include "edi/explain/explain.hpp"
#include "edi/explain/select.hpp"

namespace edi::engine {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

at::Tensor index_tensor(const std::vector<int>& idx) {
  std::vector<std::int64_t> v(idx.begin(), idx.end());
  return at::tensor(v, at::kLong);
}

/// True when `idx` is a run of consecutive integers (all images of a shard
/// active, or one escalation level): its rows are then a view, not a copy.
template <typename T>
bool consecutive(const std::vector<T>& idx) {
  for (std::size_t k = 1; k < idx.size(); ++k)
    if (idx[k] != idx[k - 1] + 1) return false;
  return !idx.empty();
}

/// Rows `idx` of `t`: a view when consecutive, else gathered into `buffer`
/// (reused across batches, so no allocation once it has its size).
template <typename T>
at::Tensor rows_of(const at::Tensor& t, const std::vector<T>& idx, at::Tensor& buffer) {
  if (consecutive(idx)) return t.narrow(0, static_cast<std::int64_t>(idx.front()), static_cast<std::int64_t>(idx.size()));
  std::vector<std::int64_t> v(idx.begin(), idx.end());
  if (!buffer.defined()) buffer = at::empty({0}, t.options());
  buffer.resize_({0});  // keeps its storage; index_select_out grows it only when needed
  at::index_select_out(buffer, t, 0, at::from_blob(v.data(), {static_cast<std::int64_t>(v.size())}, at::kLong));
  return buffer;
}

/// Per-image trajectory statistics of a batch: share of entries changed by
/// more than half a grey level and max |x − x0| in one fused pass per image
/// (a count and a max do not depend on the order), and the MSE by ATen's
/// per-row mean (float, reduced exactly as a per-image mean() would be).
struct RowStats {
  std::vector<float> changed, linf;
  at::Tensor mse;  ///< N float, contiguous
};
RowStats row_stats(const at::Tensor& state, const at::Tensor& original) {
  const at::Tensor a = state.contiguous(), b = original.contiguous();
  const std::int64_t n = a.size(0), per = n > 0 ? a.numel() / n : 0;
  RowStats r;
  r.changed.resize(static_cast<std::size_t>(n));
  r.linf.resize(static_cast<std::size_t>(n));
  const float* ap = a.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  at::parallel_for(0, n, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const float* x = ap + i * per;
      const float* y = bp + i * per;
      std::int64_t count = 0;
      float top = 0.f;
      bool nan = false;
      for (std::int64_t e = 0; e < per; ++e) {
        const float d = std::fabs(x[e] - y[e]);
        count += d > 0.5f / 255.f ? 1 : 0;
        top = d > top ? d : top;
        nan |= std::isnan(d);
      }
      // As mean() of the 0/1 floats: an exact count divided by the entries.
      r.changed[static_cast<std::size_t>(i)] = static_cast<float>(count) / static_cast<float>(per);
      r.linf[static_cast<std::size_t>(i)] = nan ? std::numeric_limits<float>::quiet_NaN() : top;
    }
  });
  r.mse = (a - b).pow(2).flatten(1).mean(1).contiguous();
  return r;
}

/// Per image of a batch: did `next` change anywhere? As max|next − x| > 0
/// (an entry that is NaN makes the image unchanged, like the max would).
std::vector<bool> changed_rows(const at::Tensor& next_in, const at::Tensor& x_in) {
  const at::Tensor a = next_in.contiguous(), b = x_in.contiguous();
  const std::int64_t n = a.size(0), per = n > 0 ? a.numel() / n : 0;
  std::vector<char> out(static_cast<std::size_t>(n), 0);
  const float* ap = a.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  at::parallel_for(0, n, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      bool any = false, nan = false;
      for (std::int64_t e = i * per; e < (i + 1) * per; ++e) {
        const float d = ap[e] - bp[e];
        any |= d != 0.f;
        nan |= std::isnan(d);
      }
      out[static_cast<std::size_t>(i)] = any && !nan ? 1 : 0;
    }
  });
  return {out.begin(), out.end()};
}

float psnr_from_mse(float mse) {
  if (static_cast<double>(mse) <= 0) return std::numeric_limits<float>::infinity();
  return static_cast<float>(10.0 * std::log10(1.0 / static_cast<double>(mse)));
}

/// JPEG encode/decode of each image (the authors' per-pass data path).
at::Tensor jpeg_roundtrip(const at::Tensor& x, int quality) {
  at::Tensor out = at::empty_like(x);
  const std::vector<int> params{cv::IMWRITE_JPEG_QUALITY, quality};
  for (std::int64_t n = 0; n < x.size(0); ++n) {
    cv::Mat rgb = data::tensor_to_image(x[n]), bgr, u8;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    bgr.convertTo(u8, CV_8UC3, 255.0);
    std::vector<uchar> buf;
    cv::imencode(".jpg", u8, buf, params);
    cv::Mat dec = cv::imdecode(buf, cv::IMREAD_COLOR), back;
    cv::cvtColor(dec, bgr, cv::COLOR_BGR2RGB);
    bgr.convertTo(back, CV_32FC3, 1.0 / 255.0);
    out[n].copy_(data::images_to_tensor({back})[0]);
  }
  return out;
}

/// A NaN or Inf attribution would select nothing meaningful (and the image
/// would end as a silent "stalled"): it is an error naming the image.
void check_finite(const at::Tensor& finite, const std::vector<int>& chunk, const Shard& shard, int pass) {
  const auto* f = finite.data_ptr<bool>();
  for (std::size_t k = 0; k < chunk.size(); ++k)
    if (!f[k])
      throw ModelError("image " + shard.ids[static_cast<std::size_t>(chunk[k])] + ", pass " + std::to_string(pass) +
                       ": the steering attribution has NaN or Inf entries (is the model's output finite on this image?)");
}

}  // namespace

const char* status_name(Status s) {
  switch (s) {
    case Status::kActive: return "active";
    case Status::kStopped: return "stopped";
    case Status::kCapped: return "capped";
    case Status::kStalled: return "stalled";
    case Status::kFixed: return "fixed";
  }
  return "?";
}

PassCounts& PassCounts::operator+=(const PassCounts& o) {
  evaluated += o.evaluated;
  identified += o.identified;
  active += o.active;
  stopped_now += o.stopped_now;
  stalled_now += o.stalled_now;
  escalated_now += o.escalated_now;
  total += o.total;
  return *this;
}

Timing& Timing::operator+=(const Timing& o) {
  model += o.model;
  explain += o.explain;
  perturb += o.perturb;
  book += o.book;
  image_passes += o.image_passes;
  return *this;
}

float psnr(const at::Tensor& a, const at::Tensor& b) {
  const double mse = (a - b).pow(2).mean().item<double>();
  if (mse <= 0) return std::numeric_limits<float>::infinity();
  return static_cast<float>(10.0 * std::log10(1.0 / mse));
}

namespace {
SteeringModels borrow(models::Classifier& model) {
  SteeringModels m;
  m.steer.emplace_back(std::shared_ptr<models::Classifier>(), &model);  // aliasing: not owned
  return m;
}
}  // namespace

Engine::Engine(const EngineSpec& spec, models::Classifier& steering) : Engine(spec, borrow(steering)) {}

Engine::Engine(const EngineSpec& spec, SteeringModels models)
    : spec_(spec),
      models_(with_precision(std::move(models), spec.steering.precision, spec.explain.target)),
      steerer_(models_, spec_.explain, spec_.steering, spec_.seed, [this](float p, int r) { return identified(p, r); }) {
  validate(spec_);
  if (!spec_.region) op_ = perturb::make_operator(spec_.op);
}

Shard Engine::make_shard(int index, std::vector<std::string> ids, at::Tensor originals, at::Tensor labels) const {
  const auto n = static_cast<std::int64_t>(ids.size());
  if (originals.dim() != 4 || originals.size(0) != n || originals.size(1) != 3 || labels.numel() != n)
    throw Error("shard " + std::to_string(index) + ": originals must be n×3×S×S and labels n (n = " + std::to_string(n) + ")");
  const int s = models_.primary().info().input_size;
  if (s > 0 && (originals.size(2) != s || originals.size(3) != s))
    throw ModelError("shard " + std::to_string(index) + ": images are " + std::to_string(originals.size(2)) + "x" +
                     std::to_string(originals.size(3)) + " but the steering model expects " + std::to_string(s) + "x" + std::to_string(s));
  Shard shard;
  shard.index = index;
  shard.ids = std::move(ids);
  shard.original = originals.to(at::kFloat).contiguous();
  shard.state = shard.original.clone();
  shard.labels = labels.to(at::kLong).contiguous();
  shard.records.resize(shard.ids.size());
  return shard;
}

bool Engine::identified(float prob, int rank) const {
  switch (spec_.criterion) {
    case Criterion::kTop1: return rank == 0;
    case Criterion::kTopK: return rank < spec_.top_k;
    case Criterion::kProb: return prob > spec_.tau;
  }
  return true;
}

void Engine::record(Shard& shard, int i, int pass, float prob, int rank, int top1, float changed, float linf, float mse) {
  TrajectoryPoint p;
  p.pass = pass;
  p.true_prob = prob;
  p.true_rank = rank;
  p.top1 = top1;
  p.changed_share = changed;
  p.linf = linf;
  p.psnr = psnr_from_mse(mse);
  shard.records[static_cast<std::size_t>(i)].trajectory.push_back(p);
}

PassCounts Engine::evaluate(Shard& shard, int pass) {
  const int limit = spec_.pass_limit();  // 0 for a conventional baseline and the control
  std::vector<int> active;
  for (std::size_t i = 0; i < shard.size(); ++i)
    if (shard.records[i].status == Status::kActive) active.push_back(static_cast<int>(i));
  shard.pending.clear();
  shard.pending_attribution = at::Tensor();
  PassCounts counts;
  std::vector<at::Tensor> attributions;
  const bool last = pass >= limit;
  for (std::size_t start = 0; start < active.size(); start += static_cast<std::size_t>(spec_.batch)) {
    const std::vector<int> chunk(active.begin() + static_cast<std::ptrdiff_t>(start),
                                 active.begin() + static_cast<std::ptrdiff_t>(std::min(active.size(), start + spec_.batch)));
    const at::Tensor x = rows_of(shard.state, chunk, buffers_.state);
    const at::Tensor x0 = rows_of(shard.original, chunk, buffers_.original);
    const at::Tensor y = rows_of(shard.labels, chunk, buffers_.labels);
    auto t0 = Clock::now();
    SteerResult r;
    if (last) {
      r = steerer_.predict(x, y);  // only the prediction is needed: no gradient
    } else {
      std::vector<RngKey> keys;
      std::vector<std::string> ids;
      for (int i : chunk) {
        const std::string& id = shard.ids[static_cast<std::size_t>(i)];
        keys.push_back(explain::explain_key(spec_.seed, id, static_cast<std::uint32_t>(pass)));
        ids.push_back(id);
      }
      r = steerer_.explain(x, y, x0, keys, ids, pass);
      check_finite(r.finite, chunk, shard, pass);
    }
    timing_.model += since(t0);
    timing_.image_passes += static_cast<std::int64_t>(chunk.size());
    t0 = Clock::now();
    const at::Tensor attribution = judge_chunk(shard, chunk, pass, last, r, x, x0, counts);
    if (attribution.defined()) attributions.push_back(attribution);
    timing_.book += since(t0);
  }
  const auto t0 = Clock::now();
  if (attributions.size() == 1) shard.pending_attribution = attributions.front();
  else if (!attributions.empty()) shard.pending_attribution = at::cat(attributions, 0);
  tally(shard, counts);
  timing_.book += since(t0);
  return counts;
}

at::Tensor Engine::judge_chunk(Shard& shard, const std::vector<int>& chunk, int pass, bool last, const SteerResult& r,
                               const at::Tensor& x, const at::Tensor& x0, PassCounts& counts) {
  const RowStats st = row_stats(x, x0);
  const auto* pp = r.true_prob.data_ptr<float>();
  const auto* rp = r.true_rank.data_ptr<std::int64_t>();
  const auto* tp = r.top1.data_ptr<std::int64_t>();
  const float* cp = st.changed.data();
  const float* lp = st.linf.data();
  const auto* mp = st.mse.data_ptr<float>();
  std::vector<std::int64_t> keep;
  for (std::size_t k = 0; k < chunk.size(); ++k) {
    const int i = chunk[k];
    ImageRecord& rec = shard.records[static_cast<std::size_t>(i)];
    record(shard, i, pass, pp[k], static_cast<int>(rp[k]), static_cast<int>(tp[k]), cp[k], lp[k], mp[k]);
    rec.identified = identified(pp[k], static_cast<int>(rp[k]));
    ++counts.evaluated;
    if (last) {
      if (spec_.stop == StopRule::kFixed && spec_.method == Method::kEdi) rec.status = Status::kFixed;
      else if (rec.identified) rec.status = Status::kCapped;
      else {
        rec.status = Status::kStopped;
        rec.stop_pass = pass;
        ++counts.stopped_now;
      }
      continue;
    }
    if (!rec.identified && spec_.stop != StopRule::kFixed) {
      rec.status = Status::kStopped;
      rec.stop_pass = pass;
      ++counts.stopped_now;
      continue;
    }
    shard.pending.push_back(i);
    keep.push_back(static_cast<std::int64_t>(k));
  }
  if (keep.empty()) return {};
  if (keep.size() == chunk.size()) return r.attribution;  // every image goes on: no copy
  return r.attribution.index_select(0, at::tensor(keep, at::kLong));
}

void Engine::tally(const Shard& shard, PassCounts& counts) const {
  for (const auto& rec : shard.records) {
    counts.identified += rec.identified ? 1 : 0;
    counts.active += rec.status == Status::kActive ? 1 : 0;
  }
  counts.total = static_cast<std::int64_t>(shard.size());
}

PassCounts Engine::perturb(Shard& shard, int pass, bool halt) {
  PassCounts counts;
  if (halt) {
    for (int i : shard.pending) shard.records[static_cast<std::size_t>(i)].status = Status::kCapped;
  } else if (!shard.pending.empty()) {
    // Images at different escalation levels use different operator strengths.
    std::map<int, std::vector<int>> by_level;  // level → positions in pending
    for (std::size_t k = 0; k < shard.pending.size(); ++k)
      by_level[shard.records[static_cast<std::size_t>(shard.pending[k])].escalation].push_back(static_cast<int>(k));
    for (const auto& [level, positions] : by_level) perturb_level(shard, pass, level, positions, counts);
  }
  shard.pending.clear();
  shard.pending_attribution = at::Tensor();
  tally(shard, counts);
  return counts;
}

void Engine::perturb_level(Shard& shard, int pass, int level, const std::vector<int>& positions, PassCounts& counts) {
  const int side = static_cast<int>(std::min(shard.state.size(2), shard.state.size(3)));
  const perturb::OperatorSpec op_spec = escalated(spec_.op, spec_.escalate_factor, level, side);
  const explain::SelectSpec sel_spec = escalated(spec_.select, spec_.escalate_factor, level);
  std::unique_ptr<perturb::Operator> level_op;
  const perturb::Operator* op = op_.get();
  if (level > 0) {
    level_op = perturb::make_operator(op_spec);
    op = level_op.get();
  }
  for (std::size_t start = 0; start < positions.size(); start += static_cast<std::size_t>(spec_.batch)) {
    const std::size_t end = std::min(positions.size(), start + static_cast<std::size_t>(spec_.batch));
    const std::vector<int> pos(positions.begin() + static_cast<std::ptrdiff_t>(start), positions.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<int> local;
    std::vector<RngKey> keys;
    for (int k : pos) {
      const int i = shard.pending[static_cast<std::size_t>(k)];
      local.push_back(i);
      keys.push_back(RngKey{spec_.seed, stable_hash64(shard.ids[static_cast<std::size_t>(i)]), static_cast<std::uint32_t>(pass),
                            RngStream::kPerturb});
    }
    const at::Tensor x = rows_of(shard.state, local, buffers_.state);
    auto t0 = Clock::now();
    // --ops: selection, P(x) and the blend on the model's device when the ATen path runs there (no-ops on the CPU).
    const at::Device dev = perturb::use_aten(spec_.op.ops, models_.primary().device()) ? models_.primary().device() : at::Device(at::kCPU);
    const at::Tensor mask =
        op->selection(explain::select_mask(rows_of(shard.pending_attribution, pos, buffers_.attribution).to(dev), sel_spec));
    timing_.explain += since(t0);
    if (mask_observer_) mask_observer_(shard, pass, local, mask.to(at::kCPU));
    t0 = Clock::now();
    const at::Tensor xd = x.to(dev);
    at::Tensor next = perturb::blend(xd, mask, op->apply(xd, keys)).to(at::kCPU);
    if (spec_.jpeg_roundtrip) next = jpeg_roundtrip(next, spec_.jpeg_quality);
    timing_.perturb += since(t0);
    t0 = Clock::now();
    const std::vector<bool> changed = changed_rows(next, x);
    for (std::size_t k = 0; k < local.size(); ++k) {
      ImageRecord& rec = shard.records[static_cast<std::size_t>(local[k])];
      if (changed[k]) continue;
      // A fixed point: the same state gives the same mask and the same P(x).
      ++rec.stalls;
      if (spec_.escalate_factor > 1.0 && rec.escalation < spec_.escalate_max) {
        ++rec.escalation;
        ++counts.escalated_now;
      } else if (spec_.stop != StopRule::kFixed) {
        rec.status = Status::kStalled;
        rec.stop_pass = pass;
        ++counts.stalled_now;
      }
    }
    if (consecutive(local)) shard.state.narrow(0, local.front(), static_cast<std::int64_t>(local.size())).copy_(next);
    else shard.state.index_copy_(0, index_tensor(local), next);
    timing_.book += since(t0);
  }
}

void Engine::apply_conventional(Shard& shard) {
  const auto t0 = Clock::now();
  if (spec_.region) {
    // Detection is not thread-safe: one masker per call.
    perturb::RegionMasker masker;
    const perturb::RegionBatch batch = masker.apply(shard.original, *spec_.region, spec_.op.color, spec_.op.region_fallback);
    shard.state = batch.images.contiguous();
  } else {
    std::vector<RngKey> keys;
    for (const auto& id : shard.ids) keys.push_back(RngKey{spec_.seed, stable_hash64(id), 0, RngStream::kPerturb});
    shard.state = op_->apply(shard.original, keys).clamp(0.0, 1.0).contiguous();
  }
  timing_.perturb += since(t0);
}

}  // namespace edi::engine
