#pragma once
/// \file Perturbation operators P(x) and the EDI blend x ← clip((1−M)⊙x + M⊙P(x)).
///
/// Images are float RGB in [0,1], batched N×3×H×W. Every operator treats the
/// three channels independently (as OpenCV's filters do), so the CPU code runs
/// OpenCV on single-channel mats that wrap the CHW planes of the tensors: no
/// CHW↔HWC copies, same results as cv2 on an HWC image (tests/perturb/cv2_parity.py).
/// An ATen implementation of every operator (aten_ops.hpp) runs on the input's
/// device instead; `OperatorSpec::ops` chooses (auto: ATen on CUDA, OpenCV on the CPU).
///
/// Randomness (DP-Pix, DP-Blur, noise) comes from `edi::CounterRng`, one key per
/// image, so an image's output never depends on the batch it was processed in.
/// Draw order per image (a Python reimplementation must follow it):
///  * dp-pix / dp-blur: channel c = 0,1,2 (R,G,B); block row by = 0..⌈H/b⌉−1;
///    block column bx = 0..⌈W/b⌉−1; one `laplace(scale)` per block
///    (= one `uniform()` = one `next_u64()` = two 32-bit words, high word first).
///  * noise: channel-major, then row, then column; one `normal()` per entry
///    (Box–Muller pairs: draw 2k is r·cos t, draw 2k+1 is r·sin t of the same pair).
#include <ATen/ATen.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edi/core/rng.hpp"

namespace edi::perturb {

/// How DP-Pix converts the Laplace scale 255·m/(b²ε) (grey levels) to the [0,1] image.
enum class DpScale {
  kFan,      ///< m/(b²ε) on [0,1]: Fan (2018)'s scale on 0–255, divided by 255 (default)
  kAuthors,  ///< 255·m/(b²ε) on [0,1]: the EDI authors' code (the 255 kept), 255× more noise
};

/// Which entries of a selection the `mask` operator changes (`--mask-rule`).
enum class MaskRule {
  kEntry,  ///< each selected (channel, pixel) entry, like every other operator (default)
  kPixel,  ///< the authors' EDI_Masking: a pixel whose channel-0 (R) entry is selected is set
           ///< to the colour in all three channels; the G and B entries of the selection are ignored
};

/// "entry" | "pixel"; throws ConfigError naming `--mask-rule` otherwise.
MaskRule parse_mask_rule(std::string_view name);
/// Inverse of parse_mask_rule.
const char* mask_rule_name(MaskRule rule) noexcept;

/// Which implementation computes P(x) (`--ops`).
enum class OpsPath {
  kAuto,    ///< ATen on a non-CPU device (CUDA); on the CPU the faster one, measured: OpenCV (default)
  kOpenCV,  ///< OpenCV on the CPU, plane by plane (non-CPU input is copied to the CPU and back)
  kAten,    ///< ATen ops on x's own device (aten_ops.hpp); agrees with OpenCV to 1e-6
};

/// "auto" | "opencv" | "aten"; throws ConfigError naming `--ops` otherwise.
OpsPath parse_ops_path(std::string_view name);
/// Inverse of parse_ops_path.
const char* ops_path_name(OpsPath path) noexcept;
/// Whether `path` runs the ATen implementation for input on `device`.
bool use_aten(OpsPath path, const at::Device& device) noexcept;

/// What the Haar region baselines (eyes|mouth|eyes-mouth) draw where detection fails
/// (`--region-fallback`).
enum class RegionFallback {
  kBox,   ///< a default face box for aligned crops, face-relative default parts (default)
  kNone,  ///< the authors' code: a face or part that is not detected is not drawn
};

/// "box" | "none"; throws ConfigError naming `--region-fallback` otherwise.
RegionFallback parse_region_fallback(std::string_view name);
/// Inverse of parse_region_fallback.
const char* region_fallback_name(RegionFallback fallback) noexcept;

/// All parameters of every operator; each operator reads only its own.
struct OperatorSpec {
  std::string name = "blur";  ///< blur|gaussian|pixelate|dp-pix|dp-blur|noise|mask
  int k = 40;                 ///< kernel size (blur; gaussian and dp-blur: odd)
  double sigma = 0.0;         ///< gaussian/dp-blur: Gaussian σ in px (0 → OpenCV's rule); noise: σ on [0,1]
  int n = 20;                 ///< pixelate: block size
  int b = 32;                 ///< dp-pix/dp-blur: block size
  double m = 16.0;            ///< dp-pix/dp-blur: sensitivity (pixels that may differ)
  double eps = 100.0;         ///< dp-pix/dp-blur: privacy budget ε (> 0; +inf → no noise)
  DpScale dp_scale = DpScale::kFan;       ///< dp-pix/dp-blur: noise scale convention
  std::array<float, 3> color{0.f, 0.f, 0.f};  ///< mask: RGB in [0,1]
  MaskRule mask_rule = MaskRule::kEntry;      ///< mask: which selected entries change
  RegionFallback region_fallback = RegionFallback::kBox;  ///< region baselines: undetected parts
  /// Implementation (operational: both agree to 1e-6; not part of describe()).
  OpsPath ops = OpsPath::kAuto;

  /// The spec of operator `name` with that operator's documented defaults
  /// (blur k=40; gaussian k=9 σ=0; pixelate n=20; dp-pix b=32 m=16 ε=100;
  /// dp-blur b=32 m=16 ε=100 k=99 σ=0; noise σ=0.1; mask black).
  /// Throws ConfigError for an unknown name.
  static OperatorSpec defaults(std::string_view name);
};

/// Check the parameters `spec.name` uses; throws edi::ConfigError with one line
/// naming the option, the value and the allowed range (e.g. `--k 0: expected an integer >= 1`).
void validate(const OperatorSpec& spec);

/// Gaussian σ OpenCV uses for kernel size k when σ ≤ 0: 0.3·((k−1)/2−1)+0.8.
double opencv_gaussian_sigma(int k) noexcept;

/// Laplace scale on the [0,1] image for DP-Pix(b, m, ε) under `scale`.
double dp_laplace_scale(int b, double m, double eps, DpScale scale) noexcept;

/// A perturbation operator P. Implementations are immutable and thread-safe.
class Operator {
 public:
  virtual ~Operator() = default;
  /// P(x) for a batch: x is N×3×H×W float32 (CPU or CUDA), `keys` holds one RngKey
  /// per image (its size must be N; deterministic operators ignore the values).
  /// Returns a new tensor of x's shape on x's device; x is not modified. Runs the
  /// ATen implementation on x's device when use_aten(spec().ops, x.device()), else
  /// OpenCV on the CPU, images in parallel (at::parallel_for, one image per task:
  /// the result does not depend on the thread count).
  at::Tensor apply(const at::Tensor& x, const std::vector<RngKey>& keys) const;
  /// One line with the name and the effective parameters, e.g. `blur(k=40)`.
  virtual std::string describe() const = 0;
  /// True when apply() draws random numbers (so the keys matter).
  virtual bool is_random() const noexcept = 0;
  /// The selection this operator's blend applies, from an explainer's N×3×H×W mask:
  /// the mask itself, or for `mask` under MaskRule::kPixel its channel-0 plane in
  /// every channel (same shape and dtype). Use as blend(x, op.selection(m), op.apply(x, keys)).
  at::Tensor selection(const at::Tensor& mask) const;
  /// The validated spec this operator was built from.
  const OperatorSpec& spec() const noexcept { return spec_; }

 protected:
  explicit Operator(OperatorSpec spec) : spec_(std::move(spec)) {}
  /// The OpenCV implementation (x checked, CPU or not).
  virtual at::Tensor apply_opencv(const at::Tensor& x, const std::vector<RngKey>& keys) const = 0;
  OperatorSpec spec_;
};

/// Validate `spec` and build its operator.
std::unique_ptr<Operator> make_operator(const OperatorSpec& spec);

/// One parameter of an operator, for `--list` / `--help`.
struct ParamInfo {
  std::string option;         ///< CLI option, e.g. "--k"
  std::string default_value;  ///< as text
  std::string help;           ///< one line incl. the allowed range
};

/// One registered operator.
struct OperatorInfo {
  std::string name;              ///< e.g. "dp-pix"
  std::string summary;           ///< one line
  std::vector<ParamInfo> params;
};

/// Every operator in a fixed order: blur, gaussian, pixelate, dp-pix, dp-blur, noise, mask.
const std::vector<OperatorInfo>& operator_registry();

/// "blur|gaussian|pixelate|dp-pix|dp-blur|noise|mask".
std::string operator_names();

/// `mask` (N×C×H×W, any dtype) under `rule`: unchanged for kEntry; for kPixel every
/// channel holds channel 0 (a view, no copy). Throws std::invalid_argument on a non-4-D mask.
at::Tensor apply_mask_rule(const at::Tensor& mask, MaskRule rule);

/// clip((1−M)⊙x + M⊙px, 0, 1). x, px: N×3×H×W float; mask: bool or floating,
/// N×3×H×W or N×1×H×W (broadcast over channels). M=0 keeps x and M=1 gives px
/// exactly. Throws std::invalid_argument on mismatched shapes.
at::Tensor blend(const at::Tensor& x, const at::Tensor& mask, const at::Tensor& px);

}  // namespace edi::perturb
