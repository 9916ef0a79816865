#pragma once
/// \file The one number formatter of evaluation and reporting: every number
/// written to metrics-images.csv, aggregate.{csv,md,tex} or printed by
/// `evaluate` goes through format_number.
#include <string>

namespace edi::metrics {

/// How a number is written.
struct NumberStyle {
  int digits = 7;           ///< significant digits (general) or decimals (fixed)
  bool fixed = false;       ///< fixed-point with `digits` decimals, else shortest general form
  const char* nan = "";     ///< text for NaN (a missing value)
};

inline constexpr NumberStyle kCsvNumber{8, false, ""};     ///< machine-readable tables
inline constexpr NumberStyle kImageNumber{7, false, ""};   ///< metrics-images.csv
/// Display with `d` decimals; NaN shows as an en dash.
constexpr NumberStyle display(int d) { return NumberStyle{d, true, "\xE2\x80\x93"}; }

/// `x` in `style`; ±inf as "inf"/"-inf".
std::string format_number(double x, const NumberStyle& style);

}  // namespace edi::metrics
