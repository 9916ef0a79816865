#pragma once
/// \file The data-set options several commands share (manifest, train, run,
/// sweep, bench), declared once as rows and read the same way everywhere.
#include <filesystem>
#include <string>

#include "edi/data/manifest.hpp"
#include "options.hpp"

namespace edi::cli {

/// Declare --split-file and --max-megapixels (operational: they act through the
/// data set, which the manifest hash covers).
Options& add_data_set_options(Options& opt);
/// Declare --test-fraction, --val-fraction and --split-seed; `context` starts
/// their help (e.g. "without --manifest: ").
Options& add_split_options(Options& opt, const std::string& context = "");

/// --labels: an existing CSV; 'none' = ImageFolder layout (empty path); not
/// given = DATA/labels.csv when that file exists. Also applies
/// --max-megapixels (when declared) to the process-wide decode limits, since
/// every command calls this before it decodes an image.
std::filesystem::path labels_option(const Options& opt, const std::filesystem::path& data_dir);

/// --test-fraction and --val-fraction (each in [0, 1), their sum below 1),
/// --split-seed, and --split-file (an existing CSV `image,split`; when
/// declared and given, it replaces the seeded rule).
/// `check_paths` = false for a plan shown before the data exists (the split
/// file is then checked when the run starts).
data::SplitSpec split_option(const Options& opt, bool check_paths = true);

}  // namespace edi::cli
