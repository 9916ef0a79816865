#pragma once
/// \file The ATen implementation of every operator: P(x) computed with ATen ops on
/// x's own device (CPU or CUDA), so that on a GPU node the perturbation never leaves it.
///
/// Per image only small host-side data is uploaded: gather indices and weights
/// (reflect-101 borders, resize coordinates, the Gaussian taps from
/// cv::getGaussianKernel) and the random numbers, drawn on the host from the same
/// `CounterRng` keys in the same order as the OpenCV path (operators.hpp), so both
/// paths see identical noise. Against the OpenCV path on the CPU the output agrees
/// to max |Δ| <= 1e-6 (tests/perturb/test_aten_ops.cpp); noise and mask are
/// bit-identical. Arithmetic: box sums in float64 (as OpenCV does for float
/// images), Gaussian taps in float32, DP block means in float64.
#include <ATen/ATen.h>

#include <vector>

#include "edi/core/rng.hpp"
#include "edi/perturb/operators.hpp"

namespace edi::perturb {

/// P(x) for operator `spec` (validated by the caller) with ATen ops on x.device().
/// x: N×3×H×W float32, one key per image. Returns a new tensor on x's device.
at::Tensor apply_aten(const OperatorSpec& spec, const at::Tensor& x, const std::vector<RngKey>& keys);

/// Source index of each of the `before + len + after` positions of a row padded
/// with OpenCV's BORDER_REFLECT_101 (cv::borderInterpolate, any pad width).
std::vector<std::int64_t> reflect101_index(std::int64_t len, std::int64_t before, std::int64_t after);

}  // namespace edi::perturb
