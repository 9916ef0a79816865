#pragma once
/// \file The anonymization loop, with no MPI inside. The unit of work is a
/// shard: a fixed list of image ids, its original and current images and each
/// image's record. A pass has two phases so that a dataset-level decision can
/// sit between them (the distributed runner reduces counts across ranks there):
///
///   evaluate(shard, pass)  one forward+backward per batch gives the current
///                          prediction (recorded in the trajectory) and the
///                          attribution for images still to be perturbed;
///   perturb(shard, pass)   select → P(x) → blend for those images.
///
/// Randomness is keyed by (seed, image id, pass), and batches are formed inside
/// a shard in id order, so results depend neither on rank count nor on order.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edi/engine/spec.hpp"
#include "edi/engine/steering.hpp"
#include "edi/models/classifier.hpp"

namespace edi::engine {

/// One evaluation of one image.
struct TrajectoryPoint {
  int pass = 0;               ///< perturbation passes applied so far
  float true_prob = 0.f;      ///< softmax probability of the true identity
  int true_rank = 0;          ///< 0 = top-1
  int top1 = -1;              ///< predicted identity
  float changed_share = 0.f;  ///< share of entries that differ from the original by > 0.5/255
  float psnr = 0.f;           ///< dB against the original (+inf when identical)
  float linf = 0.f;           ///< max |x − original|
};

enum class Status : std::uint8_t {
  kActive = 0,   ///< still being perturbed
  kStopped = 1,  ///< no longer identified (stop_pass says when)
  kCapped = 2,   ///< still identified when the pass cap or the dataset rule ended the run
  kStalled = 3,  ///< perturbation reached a fixed point (escalation exhausted)
  kFixed = 4,    ///< fixed-pass mode finished
};
const char* status_name(Status s);

struct ImageRecord {
  Status status = Status::kActive;
  int stop_pass = -1;          ///< pass of the evaluation that stopped it
  int escalation = 0;          ///< current escalation level
  int stalls = 0;              ///< passes in which the state did not change
  bool identified = true;      ///< per the latest evaluation
  std::vector<TrajectoryPoint> trajectory;
};

/// A fixed set of images processed together (batches never cross shards).
struct Shard {
  int index = 0;
  std::vector<std::string> ids;
  at::Tensor labels;    ///< n int64
  at::Tensor original;  ///< n×3×S×S float
  at::Tensor state;     ///< n×3×S×S float, the current images
  std::vector<ImageRecord> records;
  /// Between evaluate() and perturb(): attributions of images to perturb.
  std::vector<int> pending;      ///< local indices
  at::Tensor pending_attribution;
  std::size_t size() const { return ids.size(); }
};

/// Counts of one phase over one shard (summed across shards and ranks).
struct PassCounts {
  std::int64_t evaluated = 0;      ///< images evaluated in this pass
  std::int64_t identified = 0;     ///< of all images in the shard, per their latest evaluation
  std::int64_t active = 0;         ///< images still active after this phase
  std::int64_t stopped_now = 0;
  std::int64_t stalled_now = 0;
  std::int64_t escalated_now = 0;
  std::int64_t total = 0;          ///< images in the shard
  PassCounts& operator+=(const PassCounts& o);
};

/// Seconds spent per phase (for `bench` and progress lines).
struct Timing {
  double model = 0;    ///< forward+backward (and forward-only evaluations)
  double explain = 0;  ///< selection (percentile, masks)
  double perturb = 0;  ///< operator and blend
  double book = 0;     ///< trajectories, copies, bookkeeping
  std::int64_t image_passes = 0;
  Timing& operator+=(const Timing& o);
};

class Engine {
 public:
  /// One steering model (not owned: it must outlive the engine).
  Engine(const EngineSpec& spec, models::Classifier& steering);
  /// Ensemble steering and an optional judge (see steering.hpp).
  Engine(const EngineSpec& spec, SteeringModels models);
  Engine(const Engine&) = delete;  // the steerer refers to this engine's models
  Engine& operator=(const Engine&) = delete;

  /// A shard over `ids` with their originals (n×3×S×S) and labels.
  Shard make_shard(int index, std::vector<std::string> ids, at::Tensor originals, at::Tensor labels) const;

  /// Phase 1 of pass `pass` (0 = the originals, or the conventional output).
  /// Images found no longer identified are stopped; at the pass limit no
  /// gradient is computed and still-identified images are capped.
  PassCounts evaluate(Shard& shard, int pass);
  /// Phase 2: perturb the pending images. `halt` (dataset rule met) caps the
  /// pending images instead.
  PassCounts perturb(Shard& shard, int pass, bool halt = false);
  /// Conventional baselines: replace every image with its one-shot
  /// anonymization (P over the whole image, or the face-region mask).
  void apply_conventional(Shard& shard);

  /// Called with every selection mask (bool, rows = `local` images of the
  /// shard) before it is applied; for parity tests and diagnostics.
  using MaskObserver = std::function<void(const Shard&, int pass, const std::vector<int>& local, const at::Tensor& mask)>;
  void set_mask_observer(MaskObserver observer) { mask_observer_ = std::move(observer); }

  const EngineSpec& spec() const { return spec_; }
  const Timing& timing() const { return timing_; }
  void reset_timing() { timing_ = {}; }

 private:
  bool identified(float prob, int rank) const;
  void record(Shard& shard, int i, int pass, float prob, int rank, int top1, float changed, float linf, float mse);
  /// Record a batch's evaluation and decide each image's status; returns the
  /// attributions of the images still to be perturbed (undefined when none).
  at::Tensor judge_chunk(Shard& shard, const std::vector<int>& chunk, int pass, bool last, const SteerResult& r,
                         const at::Tensor& x, const at::Tensor& x0, PassCounts& counts);
  void perturb_level(Shard& shard, int pass, int level, const std::vector<int>& positions, PassCounts& counts);
  void tally(const Shard& shard, PassCounts& counts) const;
  /// Gather buffers reused across batches (rows of non-consecutive images).
  struct Buffers {
    at::Tensor state, original, labels, attribution;
  };
  EngineSpec spec_;
  SteeringModels models_;
  Steerer steerer_;
  std::unique_ptr<perturb::Operator> op_;
  Timing timing_;
  MaskObserver mask_observer_;
  Buffers buffers_;
};

/// PSNR in dB between two images in [0,1] (+inf when identical).
float psnr(const at::Tensor& a, const at::Tensor& b);

}  // namespace edi::engine
