#pragma once
/// \file Facts every output file records about where and when it was made.
#include <string>

namespace edi {

/// Current UTC time as ISO-8601, e.g. "2026-11-26T07:30:37Z".
std::string utc_now();
/// This machine's host name.
std::string host_name();

/// "edi-anon <command>", the prefix of the messages library code prints
/// (set by the cli before it runs a command; "edi-anon" until then).
const std::string& command_name();
void set_command_name(const std::string& name);

}  // namespace edi
