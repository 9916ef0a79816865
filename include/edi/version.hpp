#pragma once
/// \file The code version recorded in every output file. Defined in a
/// generated .cpp (from `git describe` at configure time), so a new commit
/// recompiles one file, not every file that records the version.
namespace edi {
const char* version();       ///< project version, e.g. "0.1.0"
const char* git_describe();  ///< `git describe --always --dirty --tags`, or "unknown"
}  // namespace edi
