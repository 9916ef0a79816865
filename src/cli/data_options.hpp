#pragma once
/// \file The data-set options several commands share (manifest, train, run,
/// sweep, bench), read the same way everywhere.
#include <filesystem>

#include "edi/data/manifest.hpp"
#include "options.hpp"

namespace edi::cli {

/// --labels: an existing CSV; 'none' = ImageFolder layout (empty path); not
/// given = DATA/labels.csv when that file exists.
std::filesystem::path labels_option(const Options& opt, const std::filesystem::path& data_dir);

/// --test-fraction and --val-fraction (each in [0, 1), their sum below 1) and
/// --split-seed.
data::SplitSpec split_option(const Options& opt);

}  // namespace edi::cli
