#include "edi/metrics/format.hpp"

#include <cmath>
#include <sstream>

namespace edi::metrics {

std::string format_number(double x, const NumberStyle& style) {
  if (std::isnan(x)) return style.nan;
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::ostringstream s;
  if (style.fixed) s.setf(std::ios::fixed);
  s.precision(style.digits);
  s << x;
  return s.str();
}

}  // namespace edi::metrics
