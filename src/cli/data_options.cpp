#include "data_options.hpp"

#include <cmath>

#include "edi/core/error.hpp"
#include "edi/data/image.hpp"

namespace edi::cli {

namespace fs = std::filesystem;

Options& add_data_set_options(Options& opt) {
  return opt
      .add(row("split-file", "",
               "import a split: CSV image,split (relative path -> train|val|test) for every image, e.g. the authors' "
               "released FR train/test lists; replaces the seeded split (a labels CSV may instead have a split column)")
               .operational())
      .add(row("max-megapixels", "100",
               "images with more pixels (from the header, before decoding) are quarantined", number(0.001, 2000))
               .operational());
}

Options& add_split_options(Options& opt, const std::string& context) {
  return opt.add(row("test-fraction", "0.2", context + "share of each identity's images in the test split", number(0, 1, false, true)))
      .add(row("val-fraction", "0.1", context + "share of each identity's images in the validation split", number(0, 1, false, true)))
      .add(row("split-seed", "0", context + "seed of the per-identity split (unsigned 64-bit)", seed()));
}

fs::path labels_option(const Options& opt, const fs::path& data_dir) {
  if (opt.has("max-megapixels")) {
    data::DecodeLimits limits = data::decode_limits();
    limits.max_pixels = static_cast<std::uint64_t>(std::llround(opt.number("max-megapixels") * 1e6));
    data::set_decode_limits(limits);
  }
  if (opt.has("labels")) return opt.text("labels") == "none" ? fs::path() : opt.existing_file("labels");
  const fs::path fallback = data_dir / "labels.csv";
  return fs::is_regular_file(fallback) ? fallback : fs::path();
}

data::SplitSpec split_option(const Options& opt, bool check_paths) {
  data::SplitSpec split;
  split.test_fraction = opt.number("test-fraction");
  split.val_fraction = opt.number("val-fraction");
  if (split.test_fraction + split.val_fraction >= 1.0)
    throw ConfigError("--test-fraction + --val-fraction = " + std::to_string(split.test_fraction + split.val_fraction) +
                      ": expected a sum below 1 (the rest is the training split)");
  split.seed = opt.seed("split-seed");
  if (opt.has("split-file")) split.file = check_paths ? opt.existing_file("split-file") : std::filesystem::path(opt.text("split-file"));
  return split;
}

}  // namespace edi::cli
