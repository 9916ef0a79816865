// The run directory as evaluate reads it, through edi/rundir (layout, JSON
// fallbacks, outcomes.csv): summary/provenance/manifest, the images of
// outcomes.csv, their originals and the anonymized PNGs.
#include <algorithm>
#include <cstdlib>
#include <set>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/image.hpp"
#include "edi/engine/run_io.hpp"
#include "edi/rundir/layout.hpp"
#include "edi/rundir/read.hpp"
#include "eval_parts.hpp"

namespace rd = ::edi::rundir;  // ('rundir' names a run directory's path below)

namespace edi::metrics::detail {

namespace fs = std::filesystem;

namespace {

using rd::read_json_or;

std::vector<Item> read_items(const fs::path& rundir, const data::Manifest& manifest) {
  const fs::path path = rundir / rd::file::kOutcomes;
  std::map<std::string, std::size_t> entry_of;
  for (std::size_t i = 0; i < manifest.entries.size(); ++i) entry_of[manifest.entries[i].id] = i;
  std::vector<Item> items;
  for (const rd::OutcomeRow& row : rd::read_outcomes(path, {"status", "stop_pass", "final_true_rank"})) {
    Item it;
    it.id = row.id;
    const auto e = entry_of.find(it.id);
    if (e == entry_of.end()) throw DataError(path.string() + ": image " + it.id + " is not in the manifest");
    it.entry = e->second;
    it.label = manifest.entries[it.entry].identity;
    it.split = manifest.entries[it.entry].split;
    it.status = row.status;
    it.stop_pass = row.stop_pass;
    it.outcome_rank = row.final_true_rank;
    items.push_back(it);
  }
  if (items.empty()) throw DataError(rundir.string() + ": the run has no images");
  return items;
}

/// Side of the first anonymized PNG (the steering model's resolution).
int anonymized_size(const fs::path& rundir, const fs::path& images, const std::vector<Item>& items) {
  data::DecodeOptions probe;
  probe.min_side = 1;
  for (const auto& it : items) {
    const fs::path p = engine::image_output_path(images, it.id);
    if (fs::is_regular_file(p)) return data::decode_image(p, probe).cols;
  }
  throw DataError(rundir.string() + ": no anonymized image in images/ (was the run made with --no-images?)");
}

/// Decode originals and anonymized images; items whose pair is unusable are dropped with a note.
void decode_pairs(RunInputs& in, std::vector<Item> items) {
  std::vector<std::size_t> entries;
  for (const auto& it : items) entries.push_back(it.entry);
  engine::DecodedShard orig = engine::decode_shard(in.meta.manifest, entries, in.size, in.meta.resize);
  std::set<std::string> bad;
  for (const auto& q : orig.quarantined) {
    bad.insert(q.path);
    in.notes.push_back("image " + q.path + " left out: original unusable (" + q.reason + ")");
  }
  data::DecodeOptions keep;
  keep.size = 0;
  keep.mode = data::ResizeMode::kNone;
  keep.min_side = 1;
  std::size_t k_orig = 0;
  for (const auto& it : items) {
    if (bad.count(it.id)) continue;
    const cv::Mat o = data::tensor_to_image(orig.images[static_cast<std::int64_t>(k_orig++)]);
    const fs::path p = engine::image_output_path(in.images_dir, it.id);
    if (!fs::is_regular_file(p)) {
      in.notes.push_back("image " + it.id + " left out: no anonymized image " + p.string());
      continue;
    }
    cv::Mat a = data::decode_image(p, keep);
    if (a.size() != o.size()) a = data::resize_antialiased(a, o.size());
    in.items.push_back(it);
    in.anon_mats.push_back(a);
    in.orig_mats.push_back(o);
  }
  if (in.items.empty()) throw DataError(in.rundir.string() + ": no anonymized image could be read (images/ missing? run with images)");
}

}  // namespace

RunMeta read_run_meta(const fs::path& dir) {
  const bool snapshot = is_snapshot_dir(dir);
  const fs::path rundir = snapshot ? dir.parent_path().parent_path() : dir;
  if (!snapshot && !run_finished(dir))
    throw DataError(dir.string() + ": not a finished run directory (no complete.json; the runner writes it last)");
  for (const char* f : {rd::file::kManifest, rd::file::kOutcomes, rd::file::kSummary}) {
    if (snapshot && f == rd::file::kSummary) continue;  // the run may still be going on
    const fs::path p = f == rd::file::kOutcomes ? dir / f : rundir / f;
    if (!fs::is_regular_file(p)) throw DataError(dir.string() + ": not a finished run directory (no " + p.string() + ")");
  }
  RunMeta m;
  const fs::path summary = rundir / rd::file::kSummary;
  m.summary = read_json_or(summary, json::object());
  if (!snapshot && (m.summary.is_discarded() || !m.summary.is_object() || m.summary.empty()))
    throw DataError(summary.string() + ": not valid JSON");
  // provenance.json (the distributed runner) holds the config and model hash.
  const rd::RunDescription d = rd::describe_run(m.summary, read_json_or(rundir / rd::file::kProvenance, json::object()));
  m.options = d.options;
  m.manifest = data::read_manifest(rundir / rd::file::kManifest);
  m.resize = data::parse_resize_mode(m.options.value("resize", std::string("crop")), "resize");
  m.method = d.method;
  m.op = d.op;
  m.model_ref = d.model_ref;
  m.model_sha = d.model_sha;
  m.passes_run = d.passes_run;
  m.run_seconds = d.run_seconds;
  if (snapshot) {
    const json snap = read_json_or(dir / rd::file::kSnapshotMarker, json());
    if (!snap.is_object() || snap.value("format", "") != "edi-anon-snapshot")
      throw DataError((dir / rd::file::kSnapshotMarker).string() + ": not an edi-anon snapshot (expected format edi-anon-snapshot)");
    m.passes_run = snap.value("pass", 0);
    m.run_seconds = 0.0;
  }
  return m;
}

RunInputs read_run_inputs(const fs::path& rundir, const Log& say) {
  RunInputs in;
  in.rundir = rundir;
  in.images_dir = rundir / rd::dir::kImages;
  in.meta = read_run_meta(rundir);
  if (is_snapshot_dir(rundir)) in.snapshot = read_json_or(rundir / rd::file::kSnapshotMarker, json());
  std::vector<Item> items = read_items(rundir, in.meta.manifest);
  // Originals at the model resolution (sha256-checked), anonymized PNGs.
  // The anonymized images are stored at the steering model's resolution.
  in.size = anonymized_size(rundir, in.images_dir, items);
  if (say)
    say("decoding " + std::to_string(items.size()) + " originals and anonymized images at " + std::to_string(in.size) + " px");
  decode_pairs(in, std::move(items));
  const std::size_t n = in.items.size();
  in.anon = data::images_to_tensor(in.anon_mats);
  in.origs = data::images_to_tensor(in.orig_mats);
  in.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    in.labels[i] = in.items[i].label;
    in.all.push_back(i);
    if (in.items[i].split == data::Split::kTest) in.test.push_back(i);
    if (in.items[i].split == data::Split::kTrain) in.train.push_back(i);
  }
  in.identities = in.meta.manifest.identities.size();
  return in;
}

}  // namespace edi::metrics::detail

namespace edi::metrics {

bool run_finished(const std::filesystem::path& dir) { return rd::run_finished(dir); }

bool is_snapshot_dir(const std::filesystem::path& dir) { return rd::is_snapshot_dir(dir); }

std::vector<std::filesystem::path> list_snapshots(const std::filesystem::path& dir) { return rd::list_snapshots(dir); }

}  // namespace edi::metrics
