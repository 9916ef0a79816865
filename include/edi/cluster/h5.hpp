#pragma once
/// \file HDF5 for the cluster stage: the run directory's one wrapper
/// (edi/rundir/h5.hpp), under its old name. H5Cpp.h stays private to
/// src/rundir/h5.cpp; every failure is an IoError naming file and dataset.
#include "edi/rundir/h5.hpp"

namespace edi::cluster {
namespace h5 = rundir::h5;
}  // namespace edi::cluster
