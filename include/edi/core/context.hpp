#pragma once
/// \file Facts every output file records about where and when it was made.
#include <string>

namespace edi {

/// Current UTC time as ISO-8601, e.g. "2026-11-26T07:30:37Z".
std::string utc_now();
/// This machine's host name.
std::string host_name();

}  // namespace edi
