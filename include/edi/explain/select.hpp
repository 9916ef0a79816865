#pragma once
/// \file Selection: attribution map -> binary mask of the entries to perturb.
///
/// The threshold is t = numpy.percentile(G, q) (default "linear" method) over
/// the entries of each image, and an entry is selected when G >= t. The
/// percentile needs two order statistics. On the CPU they are found in O(n)
/// without a full nth_element: one pass builds a 65,536-bin histogram of the
/// values' top 16 bits (an order-preserving float -> uint32 key), which names
/// the bin(s) holding both ranks; only those entries are copied and an exact
/// nth_element runs on them. Images run in parallel (at::parallel_for, one image
/// per task), so results do not depend on the thread count.
/// select_aten() computes the same selection with ATen ops on the attribution's
/// device (kthvalue, or a sort for regions); select() uses it for non-CPU input.
#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <cstddef>

#include "edi/explain/spec.hpp"

namespace edi::explain {

/// numpy.percentile(values, q) with numpy's default linear interpolation,
/// reproduced to the bit for float32 input (numpy >= 1.22 `_lerp`): virtual
/// index h = (n-1)*(q/100), a = x(floor h), b = x(floor h + 1),
/// g = h - floor h, result = a + (b-a)*g if g < 0.5 else b - (b-a)*(1-g),
/// with b-a rounded to float as numpy does. q outside [0, 100] throws
/// ConfigError; n = 0 throws edi::Error; any NaN gives NaN (numpy does too).
/// `scratch` (n floats) is overwritten; `values` is not modified.
double percentile(const float* values, std::size_t n, double q, float* scratch);
/// Convenience overload that allocates its own scratch.
double percentile(const float* values, std::size_t n, double q);

/// Per-image percentile of an N×... float tensor over all entries of each image: N float64.
at::Tensor percentile_per_image(const at::Tensor& values, double q);

/// Result of a selection.
struct Selection {
  at::Tensor mask;       ///< N×3×H×W, dtype as requested (bool or float 0/1)
  at::Tensor threshold;  ///< N float64: the percentile (over pixel scores for kPixel)
  at::Tensor selected;   ///< N int64: selected entries (pixels*3 for kPixel)
};

/// Select entries of an N×3×H×W attribution map. CPU input runs the histogram
/// path above; input on another device goes to select_aten() (the mask then
/// stays on that device).
/// \param region optional restriction (bool or nonzero = inside): N×H×W, N×1×H×W,
///               N×3×H×W, H×W or 1×H×W (broadcast over images). When given, the
///               percentile is taken over the entries (pixels for kPixel) inside
///               the region only and nothing outside is selected, so about
///               (100-q)% of the region is selected. An empty region selects nothing.
/// \param dtype  at::kBool or at::kFloat
Selection select(const at::Tensor& attribution, const SelectSpec& spec, const at::Tensor& region = {},
                 c10::ScalarType dtype = c10::ScalarType::Bool);

/// The same selection with ATen ops on attribution.device() (CPU or CUDA): the
/// two order statistics per image come from kthvalue (a sort when a region is
/// given), only per-image scalars (counts, NaN flags, x(lo), x(lo+1)) are read
/// back, the thresholds are computed on the host exactly as select() does and
/// uploaded, and the mask is built on the device. Masks, thresholds and counts
/// are identical to select()'s; the mask stays on attribution's device,
/// threshold and selected are CPU tensors.
Selection select_aten(const at::Tensor& attribution, const SelectSpec& spec, const at::Tensor& region = {},
                      c10::ScalarType dtype = c10::ScalarType::Bool);

/// Mask only: select(attribution, spec, region, dtype).mask.
at::Tensor select_mask(const at::Tensor& attribution, const SelectSpec& spec, const at::Tensor& region = {},
                       c10::ScalarType dtype = c10::ScalarType::Bool);

}  // namespace edi::explain
