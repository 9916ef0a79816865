#include "edi/engine/run_io.hpp"

#include <ATen/ATen.h>
#include <opencv2/core/utility.hpp>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/models/faceapi.hpp"
#include "edi/models/gallery.hpp"
#include "edi/models/human.hpp"
#include "edi/models/registry.hpp"

namespace edi::engine {

namespace fs = std::filesystem;
using nlohmann::json;

SplitSelection parse_split_selection(const std::string& t) {
  if (t == "all") return SplitSelection::kAll;
  if (t == "train") return SplitSelection::kTrain;
  if (t == "val") return SplitSelection::kVal;
  if (t == "test") return SplitSelection::kTest;
  throw ConfigError("--split " + t + ": expected one of all|train|val|test");
}

const char* split_selection_name(SplitSelection s) {
  switch (s) {
    case SplitSelection::kAll: return "all";
    case SplitSelection::kTrain: return "train";
    case SplitSelection::kVal: return "val";
    case SplitSelection::kTest: return "test";
  }
  return "?";
}

RunData prepare_data(const RunConfig& c) {
  RunData d;
  const fs::path manifest_path = c.out / "manifest.csv";
  if (fs::exists(manifest_path)) {
    d.manifest = data::read_manifest(manifest_path);
    if (!c.labels_csv.empty() && sha256_file(c.labels_csv) != d.manifest.labels_sha256)
      throw DataError(manifest_path.string() + ": labels file " + c.labels_csv.string() +
                      " differs from the one this run directory was created with");
  } else {
    data::ScanOptions scan;
    scan.data_dir = c.data_dir;
    scan.labels_csv = c.labels_csv;
    scan.split = c.split_spec;
    data::ScanResult r = data::build_manifest(scan);
    create_private_dir(c.out);
    data::write_manifest(r.manifest, manifest_path);
    data::write_quarantine(r.quarantined, c.out / "quarantine-scan.csv");
    d.manifest = std::move(r.manifest);
  }
  for (std::size_t i = 0; i < d.manifest.entries.size(); ++i) {
    const data::Split s = d.manifest.entries[i].split;
    const bool take = c.split == SplitSelection::kAll || (c.split == SplitSelection::kTrain && s == data::Split::kTrain) ||
                      (c.split == SplitSelection::kVal && s == data::Split::kVal) ||
                      (c.split == SplitSelection::kTest && s == data::Split::kTest);
    if (take) d.selected.push_back(i);
  }
  if (d.selected.empty())
    throw DataError(c.data_dir.string() + ": no images in split '" + split_selection_name(c.split) + "'");
  return d;
}

DecodedShard decode_shard(const data::Manifest& m, const std::vector<std::size_t>& entries, int size, data::ResizeMode resize) {
  DecodedShard out;
  std::vector<cv::Mat> images(entries.size());
  std::vector<std::string> errors(entries.size());
  data::DecodeOptions opt;
  opt.size = size;
  opt.mode = resize;
  opt.min_side = 1;  // the manifest already applied the size rule
  cv::parallel_for_(cv::Range(0, static_cast<int>(entries.size())), [&](const cv::Range& r) {
    for (int k = r.start; k < r.end; ++k) {
      const data::ManifestEntry& e = m.entries[entries[static_cast<std::size_t>(k)]];
      const fs::path path = fs::path(m.data_root) / e.id;
      try {
        if (sha256_file(path) != e.sha256) throw DataError(path.string() + ": file changed since the manifest was made");
        images[static_cast<std::size_t>(k)] = data::decode_image(path, opt);
      } catch (const Error& err) {
        std::string what = err.what();
        const std::string prefix = path.string() + ": ";
        if (what.rfind(prefix, 0) == 0) what = what.substr(prefix.size());
        errors[static_cast<std::size_t>(k)] = what;
      }
    }
  });
  std::vector<cv::Mat> good;
  std::vector<std::int64_t> labels;
  for (std::size_t k = 0; k < entries.size(); ++k) {
    const data::ManifestEntry& e = m.entries[entries[k]];
    if (!errors[k].empty()) {
      out.quarantined.push_back({e.id, errors[k]});
      continue;
    }
    good.push_back(images[k]);
    out.ids.push_back(e.id);
    labels.push_back(e.identity);
  }
  out.images = good.empty() ? at::empty({0, 3, size, size}) : data::images_to_tensor(good);
  out.labels = at::tensor(labels.empty() ? std::vector<std::int64_t>{} : labels, at::kLong);
  return out;
}

std::unique_ptr<models::Classifier> load_steering_model(const std::string& reference, const std::string& device,
                                                        const data::Manifest& m, data::ResizeMode resize) {
  models::LoadOptions lo;
  lo.device = device;
  std::unique_ptr<models::Classifier> model;
  if (models::is_embedder_reference(reference)) {  // faceapi:recognition, human:faceres: a gallery
    std::shared_ptr<models::Embedder> embedder = models::load_embedder(reference, lo);
    const int size = embedder->info().input_size;
    std::map<std::string, std::vector<std::size_t>> by_identity;
    for (std::size_t i = 0; i < m.entries.size(); ++i)
      if (m.entries[i].split == data::Split::kTrain) by_identity[m.identities[static_cast<std::size_t>(m.entries[i].identity)]].push_back(i);
    std::map<std::string, at::Tensor> enrolment;
    for (const auto& [name, idx] : by_identity) {
      DecodedShard d = decode_shard(m, idx, size, resize);
      if (d.ids.empty()) throw DataError(name + ": no usable training image to enrol this identity");
      enrolment[name] = d.images;
    }
    if (enrolment.size() != m.identities.size())
      throw DataError(m.data_root + ": every identity needs at least one training image to enrol the gallery (" +
                      std::to_string(enrolment.size()) + " of " + std::to_string(m.identities.size()) + " have one)");
    model = std::make_unique<models::GalleryClassifier>(embedder, enrolment);
  } else {
    model = models::load_classifier(reference, lo);
  }
  const auto& classes = model->info().classes;
  if (classes != m.identities) {
    std::string detail = std::to_string(classes.size()) + " classes vs " + std::to_string(m.identities.size()) + " identity folders";
    if (classes.size() == m.identities.size())
      for (std::size_t i = 0; i < classes.size(); ++i)
        if (classes[i] != m.identities[i]) {
          detail = "class " + std::to_string(i) + " is '" + classes[i] + "' but identity folder " + std::to_string(i) + " is '" + m.identities[i] + "'";
          break;
        }
    throw ModelError(reference + ": steering model classes do not match the data set's identities (" + detail + ")");
  }
  return model;
}

std::vector<std::vector<std::size_t>> make_shards(const std::vector<std::size_t>& selected, int shard_size) {
  std::vector<std::vector<std::size_t>> shards;
  for (std::size_t i = 0; i < selected.size(); i += static_cast<std::size_t>(shard_size))
    shards.emplace_back(selected.begin() + static_cast<std::ptrdiff_t>(i),
                        selected.begin() + static_cast<std::ptrdiff_t>(std::min(selected.size(), i + static_cast<std::size_t>(shard_size))));
  return shards;
}

fs::path image_output_path(const fs::path& dir, const std::string& id) {
  fs::path p = dir / id;
  p.replace_extension(".png");
  return p;
}

void write_images(const fs::path& dir, const Shard& shard, int bits) {
  for (std::size_t i = 0; i < shard.size(); ++i) {
    const fs::path p = image_output_path(dir, data::checked_relative_id(shard.ids[i], dir.string()).generic_string());
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) throw IoError(p.parent_path().string() + ": cannot create directory: " + ec.message());
    data::write_png(p, data::tensor_to_image(shard.state[static_cast<std::int64_t>(i)]), bits);
  }
}

}  // namespace edi::engine
