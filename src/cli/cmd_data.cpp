// `edi-anon synth` and `edi-anon manifest`: the data stage's commands.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>

#include "commands.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/manifest.hpp"
#include "edi/data/synth.hpp"
#include "data_options.hpp"
#include "options.hpp"

namespace edi::cli {

namespace fs = std::filesystem;

int cmd_synth(const Args& args) {
  Options opt("synth", "--identities K --per-identity M --size S --out DIR [options]",
              "Generate a deterministic synthetic face data set in the MTF layout\n"
              "(DIR/<identity>/*.png + DIR/labels.csv with identity,age,gender,race).");
  opt.add(row("identities", "20", "number of identities K", integer(1, 100000)))
      .add(row("per-identity", "30", "images per identity M", integer(1, 100000)))
      .add(row("size", "64", "image side S in pixels", integer(16, 1024)))
      .add(row("seed", "0", "generator seed (unsigned 64-bit)", seed()))
      .add(row("jitter", "1", "pose/lighting/noise jitter scale", number(0, 3)))
      .required("out", "output directory (created; must be empty or an earlier synth output)")
      .add_common();
  if (!opt.parse(args)) return 0;
  data::SynthSpec spec;
  spec.identities = static_cast<int>(opt.integer("identities"));
  spec.per_identity = static_cast<int>(opt.integer("per-identity"));
  spec.size = static_cast<int>(opt.integer("size"));
  spec.seed = opt.seed("seed");
  spec.jitter = opt.number("jitter");
  spec.out = opt.output_path("out");
  opt.apply_threads();
  const fs::path marker = spec.out / ".edi-synth";
  if (fs::exists(spec.out) && !fs::is_empty(spec.out) && !fs::exists(marker))
    throw ConfigError("--out " + spec.out.string() + ": directory is not empty and was not written by edi-anon synth");
  create_private_dir(spec.out);
  write_file_atomic(marker, "edi-anon synth output\n");
  const data::SynthSummary s = data::synth_generate(spec);
  std::printf("synth: %d images of %d identities (%dx%d) in %.2f s (%.0f images/s) -> %s\n", s.images, s.identities,
              spec.size, spec.size, s.seconds, s.images / std::max(s.seconds, 1e-9), spec.out.c_str());
  return 0;
}

int cmd_manifest(const Args& args) {
  Options opt("manifest", "--data DIR [--labels CSV] --out RUNDIR [options]",
              "Scan a data set once (decode, check, hash, split) and store RUNDIR/manifest.csv;\n"
              "unusable files go to RUNDIR/quarantine.csv. If a manifest already exists it is\n"
              "checked against the data and kept when identical.");
  opt.required("data", "data directory: DATA/<identity>/<images>")
      .add("labels", "", "labels CSV identity,<task>... (default: DATA/labels.csv if present; 'none' = ImageFolder)")
      .required("out", "run directory to hold the manifest (created owner-only)")
      .add(row("min-side", "16", "images with a side shorter than this are quarantined", integer(1, 100000)))
      .flag("force", "replace an existing manifest that differs from the data")
      .add_common();
  add_split_options(opt);
  add_data_set_options(opt);
  if (!opt.parse(args)) return 0;
  data::ScanOptions scan;
  scan.data_dir = opt.existing_dir("data");
  scan.labels_csv = labels_option(opt, scan.data_dir);
  scan.split = split_option(opt);
  scan.min_side = static_cast<int>(opt.integer("min-side"));
  const fs::path rundir = opt.output_path("out");
  opt.apply_threads();

  const data::ScanResult result = data::build_manifest(scan);
  const data::Manifest& m = result.manifest;
  create_private_dir(rundir);
  const fs::path manifest_path = rundir / "manifest.csv";
  std::string status = "written";
  if (fs::exists(manifest_path)) {
    const data::Manifest stored = data::read_manifest(manifest_path);
    const auto diffs = data::manifest_differences(stored, m);
    if (diffs.empty()) {
      status = "unchanged (matches the data)";
    } else if (!opt.flag_set("force")) {
      std::string text;
      for (const auto& d : diffs) text += (text.empty() ? "" : "; ") + d;
      throw DataError(manifest_path.string() + ": data set differs from the stored manifest: " + text +
                      " (use --force to replace it)");
    } else {
      status = "replaced";
    }
  }
  data::write_manifest(m, manifest_path);
  data::write_quarantine(result.quarantined, rundir / "quarantine.csv");

  std::printf("manifest: %s -> %s (%s)\n", m.data_root.c_str(), manifest_path.c_str(), status.c_str());
  std::printf("  layout %s, %zu images, %zu identities, hash %s\n", m.layout.c_str(), m.entries.size(),
              m.identities.size(), m.hash().substr(0, 16).c_str());
  const std::string split_from = m.split.source == "seeded" ? "seed " + std::to_string(m.split.seed)
                                 : m.split.source == "file"  ? "imported from " + scan.split.file.string()
                                                             : "imported from the labels' split column";
  std::printf("  split (%s): train %zu, val %zu, test %zu\n", split_from.c_str(), m.count(data::Split::kTrain),
              m.count(data::Split::kVal), m.count(data::Split::kTest));
  for (std::size_t t = 0; t < m.tasks.size(); ++t) {
    std::map<int, int> counts;
    for (const auto& e : m.entries) ++counts[e.attributes[t]];
    std::printf("  %s:", m.tasks[t].name.c_str());
    for (std::size_t c = 0; c < m.tasks[t].classes.size(); ++c)
      std::printf(" %s %d", m.tasks[t].classes[c].c_str(), counts[static_cast<int>(c)]);
    if (counts.count(-1)) std::printf(" (unlabelled %d)", counts[-1]);
    std::printf("\n");
  }
  std::printf("  quarantined %zu file(s)%s\n", result.quarantined.size(),
              result.quarantined.empty() ? "" : (" -> " + (rundir / "quarantine.csv").string()).c_str());
  for (std::size_t i = 0; i < result.quarantined.size() && i < 5; ++i)
    std::printf("    %s: %s\n", result.quarantined[i].path.c_str(), result.quarantined[i].reason.c_str());
  return 0;
}

}  // namespace edi::cli
