// The run directory as evaluate reads it: summary/provenance/manifest, the
// images of outcomes.csv, their originals and the anonymized PNGs.
#include <algorithm>
#include <cstdlib>
#include <set>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/image.hpp"
#include "edi/engine/run_io.hpp"
#include "eval_parts.hpp"

namespace edi::metrics::detail {

namespace fs = std::filesystem;

namespace {

json read_json_or(const fs::path& p, json fallback) {
  if (!fs::is_regular_file(p)) return fallback;
  json j = json::parse(read_file(p), nullptr, false);
  return j.is_discarded() ? fallback : j;
}

/// Model reference and sha256 from summary.json, then provenance.json, then the options.
void read_model(RunMeta& m, const json& provenance) {
  const json& s = m.summary;
  if (s.contains("model") && s["model"].is_object()) {
    m.model_ref = s["model"].value("reference", std::string());
    m.model_sha = s["model"].value("sha256", std::string());
  } else if (s.contains("model") && s["model"].is_string()) {
    m.model_ref = s["model"].get<std::string>();
  }
  if (provenance.contains("model") && provenance["model"].is_object()) {
    if (m.model_ref.empty()) m.model_ref = provenance["model"].value("reference", std::string());
    if (m.model_sha.empty()) m.model_sha = provenance["model"].value("sha256", std::string());
  }
  if (m.model_ref.empty()) m.model_ref = m.options.value("model", std::string());
}

std::vector<Item> read_items(const fs::path& rundir, const data::Manifest& manifest) {
  const fs::path path = rundir / "outcomes.csv";
  const CsvTable outcomes = parse_csv(read_file(path), path.string());
  std::map<std::string, std::size_t> entry_of;
  for (std::size_t i = 0; i < manifest.entries.size(); ++i) entry_of[manifest.entries[i].id] = i;
  const auto col = [&](const char* name) {
    const int c = csv_column(outcomes, name);
    if (c < 0) throw DataError(path.string() + ": no column '" + name + "'");
    return static_cast<std::size_t>(c);
  };
  const std::size_t c_id = col("id"), c_status = col("status"), c_stop = col("stop_pass"), c_rank = col("final_true_rank");
  std::vector<Item> items;
  for (const auto& row : outcomes.rows) {
    Item it;
    it.id = row[c_id];
    const auto e = entry_of.find(it.id);
    if (e == entry_of.end()) throw DataError(path.string() + ": image " + it.id + " is not in the manifest");
    it.entry = e->second;
    it.label = manifest.entries[it.entry].identity;
    it.split = manifest.entries[it.entry].split;
    it.status = row[c_status];
    it.stop_pass = std::stoi(row[c_stop]);
    it.outcome_rank = std::stoi(row[c_rank]);
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
  for (const char* f : {"manifest.csv", "outcomes.csv", "summary.json"}) {
    if (snapshot && std::string(f) == "summary.json") continue;  // the run may still be going on
    const fs::path p = std::string(f) == "outcomes.csv" ? dir / f : rundir / f;
    if (!fs::is_regular_file(p)) throw DataError(dir.string() + ": not a finished run directory (no " + p.string() + ")");
  }
  RunMeta m;
  m.summary = read_json_or(rundir / "summary.json", json::object());
  if (!snapshot && (m.summary.is_discarded() || !m.summary.is_object() || m.summary.empty()))
    throw DataError((rundir / "summary.json").string() + ": not valid JSON");
  // provenance.json (the distributed runner) holds the config and model hash.
  const json provenance = read_json_or(rundir / "provenance.json", json::object());
  m.options = m.summary.value("options", json::object());
  if (m.options.empty()) m.options = provenance.value("config", json::object());
  m.manifest = data::read_manifest(rundir / "manifest.csv");
  m.resize = data::parse_resize_mode(m.options.value("resize", std::string("crop")), "resize");
  m.method = m.summary.value("method", provenance.value("method", m.options.value("method", std::string("edi"))));
  // The control perturbs nothing: its operator option (inherited from a sweep's [run]) means nothing.
  m.op = m.method == "none" ? std::string("none") : m.summary.value("operator", m.options.value("operator", std::string("?")));
  read_model(m, provenance);
  m.passes_run = m.summary.value("passes_run", -1);
  if (m.passes_run < 0)
    m.passes_run = m.summary.value("passes", json::array()).empty() ? 0 : m.summary["passes"].back().value("pass", 0);
  m.run_seconds = m.summary.value("timing", json::object()).value("seconds", 0.0);
  if (snapshot) {
    const json snap = read_json_or(dir / "snapshot.json", json());
    if (!snap.is_object() || snap.value("format", "") != "edi-anon-snapshot")
      throw DataError((dir / "snapshot.json").string() + ": not an edi-anon snapshot (expected format edi-anon-snapshot)");
    m.passes_run = snap.value("pass", 0);
    m.run_seconds = 0.0;
  }
  return m;
}

RunInputs read_run_inputs(const fs::path& rundir, const Log& say) {
  RunInputs in;
  in.rundir = rundir;
  in.images_dir = rundir / "images";
  in.meta = read_run_meta(rundir);
  if (is_snapshot_dir(rundir)) in.snapshot = read_json_or(rundir / "snapshot.json", json());
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

bool run_finished(const std::filesystem::path& dir) { return std::filesystem::is_regular_file(dir / "complete.json"); }

bool is_snapshot_dir(const std::filesystem::path& dir) { return std::filesystem::is_regular_file(dir / "snapshot.json"); }

std::vector<std::filesystem::path> list_snapshots(const std::filesystem::path& rundir) {
  namespace fs = std::filesystem;
  std::vector<std::pair<double, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(rundir / "snapshots", ec)) return {};
  for (const auto& e : fs::directory_iterator(rundir / "snapshots", ec)) {
    if (!e.is_directory() || !is_snapshot_dir(e.path())) continue;
    char* end = nullptr;
    const std::string name = e.path().filename().string();
    const double t = std::strtod(name.c_str(), &end);
    found.emplace_back(end && *end == 0 ? t : -1.0, e.path());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });  // highest target first
  std::vector<fs::path> out;
  for (const auto& f : found) out.push_back(f.second);
  return out;
}

}  // namespace edi::metrics
