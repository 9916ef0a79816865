#pragma once
/// \file The code version recorded in every output file. Defined in a
/// generated .cpp (from `git describe`, refreshed by every build: see
/// cmake/version.cmake), so a new commit recompiles one file, not every file
/// that records the version.
namespace edi {
const char* version();       ///< project version, e.g. "0.1.0"
const char* git_describe();  ///< `git describe --always --dirty --tags`, or "unknown"
/// The libraries this build was configured with, e.g.
/// "LibTorch 1.13.0, OpenCV 4.6.0, HDF5 1.10.8, MPI 3.1 (Open MPI 4.1.4)".
const char* build_libraries();
}  // namespace edi
