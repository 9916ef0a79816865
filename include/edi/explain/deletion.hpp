#pragma once
/// \file Deletion curve: how fast the true-class probability falls when the
/// highest-ranked entries of an attribution map are removed. A better
/// explainer gives a lower area under the curve.
#include <ATen/core/Tensor.h>

#include "edi/explain/spec.hpp"
#include "edi/models/classifier.hpp"

namespace edi::explain {

/// Deletion curves of a batch; F = number of fractions.
struct DeletionCurve {
  at::Tensor fractions;  ///< F float64, as given
  at::Tensor removed;    ///< F int64, entries removed per image = round(f*3*H*W)
  at::Tensor true_prob;  ///< N×F float, softmax probability of the true label
  at::Tensor correct;    ///< N×F bool, top-1 == true label
  /// N float64: trapezoidal area under true_prob over the fractions divided by
  /// the span of the grid (the plain area when the grid is [0, 1]); with one
  /// fraction it is that point's probability.
  at::Tensor auc;
  at::Tensor mean_true_prob;  ///< F float64, mean over images
  at::Tensor accuracy;        ///< F float64, fraction of images still top-1 correct
  double mean_auc = 0.0;      ///< mean of auc over images
  std::int64_t forward_calls = 0;
};

/// Rank the 3*H*W entries of each image by attribution (descending; ties by
/// entry index), replace the top round(f*3*H*W) entries with the baseline for
/// each f, and evaluate all N×F images in batches of at most spec.max_rows rows.
/// \param x           N×3×H×W float images in [0,1]
/// \param true_labels N int64
/// \param attribution N×3×H×W float
DeletionCurve deletion_curve(models::Classifier& model, const at::Tensor& x, const at::Tensor& true_labels,
                             const at::Tensor& attribution, const DeletionSpec& spec);

/// The replacement image of a deletion curve: constant `spec.value`, or a
/// Gaussian blur (sigma spec.blur_sigma, replicate padding) of x. N×3×H×W.
at::Tensor deletion_baseline(const at::Tensor& x, const DeletionSpec& spec);

}  // namespace edi::explain
