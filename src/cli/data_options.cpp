#include "data_options.hpp"

#include "edi/core/error.hpp"

namespace edi::cli {

namespace fs = std::filesystem;

fs::path labels_option(const Options& opt, const fs::path& data_dir) {
  if (opt.has("labels")) return opt.text("labels") == "none" ? fs::path() : opt.existing_file("labels");
  const fs::path fallback = data_dir / "labels.csv";
  return fs::is_regular_file(fallback) ? fallback : fs::path();
}

data::SplitSpec split_option(const Options& opt) {
  data::SplitSpec split;
  split.test_fraction = opt.number("test-fraction", 0, 1, false, true);
  split.val_fraction = opt.number("val-fraction", 0, 1, false, true);
  if (split.test_fraction + split.val_fraction >= 1.0)
    throw ConfigError("--test-fraction + --val-fraction = " + std::to_string(split.test_fraction + split.val_fraction) +
                      ": expected a sum below 1 (the rest is the training split)");
  split.seed = opt.seed("split-seed");
  return split;
}

}  // namespace edi::cli
