#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <fstream>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/manifest.hpp"
#include "edi/data/synth.hpp"
#include "support/testing.hpp"

using namespace edi::data;
using edi::testing::TempDir;
namespace fs = std::filesystem;

namespace {

/// A small MTF-layout data set: 4 identities × 6 images of 32×32.
fs::path make_dataset(const TempDir& dir) {
  SynthSpec spec;
  spec.identities = 4;
  spec.per_identity = 6;
  spec.size = 32;
  spec.seed = 5;
  spec.out = dir / "data";
  synth_generate(spec);
  return spec.out;
}

ScanOptions scan_of(const fs::path& data, bool labels = true) {
  ScanOptions o;
  o.data_dir = data;
  if (labels) o.labels_csv = data / "labels.csv";
  return o;
}

std::string data_error(const ScanOptions& o) {
  try {
    build_manifest(o);
  } catch (const edi::DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Manifest, ScansSortsLabelsAndSplits) {
  TempDir dir;
  const fs::path data = make_dataset(dir);
  const ScanResult r = build_manifest(scan_of(data));
  const Manifest& m = r.manifest;
  EXPECT_EQ(m.layout, "mtf");
  EXPECT_EQ(m.identities, (std::vector<std::string>{"id0000", "id0001", "id0002", "id0003"}));
  ASSERT_EQ(m.entries.size(), 24u);
  EXPECT_TRUE(r.quarantined.empty());
  for (std::size_t i = 1; i < m.entries.size(); ++i) EXPECT_LT(m.entries[i - 1].id, m.entries[i].id);
  EXPECT_EQ(m.entries[0].id, "id0000/id0000_0000.png");
  ASSERT_EQ(m.tasks.size(), 3u);
  EXPECT_EQ(m.tasks[0].name, "age");
  EXPECT_TRUE(std::is_sorted(m.tasks[1].classes.begin(), m.tasks[1].classes.end()));
  // Labels are per identity: every image inherits its identity's row.
  for (const auto& e : m.entries) {
    const SynthIdentityLabels lab = synth_identity_labels(5, e.identity);
    EXPECT_EQ(m.tasks[1].classes[e.attributes[1]], lab.gender);
    EXPECT_EQ(e.width, 32);
    EXPECT_EQ(e.sha256.size(), 64u);
  }
  // Per identity: 6 images → round(1.2)=1 test, round(0.6)=1 val, 4 train.
  EXPECT_EQ(m.count(Split::kTest), 4u);
  EXPECT_EQ(m.count(Split::kVal), 4u);
  EXPECT_EQ(m.count(Split::kTrain), 16u);
}

TEST(Manifest, SplitIsDeterministicAndSeeded) {
  TempDir dir;
  const fs::path data = make_dataset(dir);
  ScanOptions o = scan_of(data);
  const Manifest a = build_manifest(o).manifest, b = build_manifest(o).manifest;
  o.split.seed = 99;
  const Manifest c = build_manifest(o).manifest;
  int same = 0, differ = 0;
  for (std::size_t i = 0; i < a.entries.size(); ++i) {
    EXPECT_EQ(a.entries[i].split, b.entries[i].split);
    (a.entries[i].split == c.entries[i].split ? same : differ)++;
  }
  EXPECT_GT(differ, 0);
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_NE(a.hash(), c.hash());
}

TEST(Manifest, BadFilesAreQuarantinedAndTheScanGoesOn) {
  TempDir dir;
  const fs::path data = make_dataset(dir);
  std::ofstream(data / "id0001" / "empty.jpg").close();
  std::ofstream(data / "id0002" / "readme.txt") << "hello";
  cv::imwrite((data / "id0003" / "small.png").string(), cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  std::ofstream(data / "id0003" / ".hidden.png") << "ignored";
  const ScanResult r = build_manifest(scan_of(data));
  EXPECT_EQ(r.manifest.entries.size(), 24u);
  ASSERT_EQ(r.quarantined.size(), 3u);
  EXPECT_EQ(r.quarantined[0].path, "id0001/empty.jpg");
  EXPECT_EQ(r.quarantined[0].reason, "zero-byte file");
  EXPECT_EQ(r.quarantined[1].path, "id0002/readme.txt");
  EXPECT_NE(r.quarantined[1].reason.find("not a decodable image"), std::string::npos);
  EXPECT_EQ(r.quarantined[2].reason, "too small: 8x8, expected both sides >= 16");
  write_quarantine(r.quarantined, dir / "q.csv");
  EXPECT_NE(edi::read_file(dir / "q.csv").find("id0001/empty.jpg,zero-byte file"), std::string::npos);
}

TEST(Manifest, CsvRoundTripAndDifferences) {
  TempDir dir;
  const fs::path data = make_dataset(dir);
  const Manifest m = build_manifest(scan_of(data)).manifest;
  write_manifest(m, dir / "manifest.csv");
  const Manifest back = read_manifest(dir / "manifest.csv");
  EXPECT_EQ(manifest_to_csv(back), manifest_to_csv(m));
  EXPECT_TRUE(manifest_differences(m, back).empty());

  // Change one image, remove another, add a third.
  cv::imwrite((data / "id0000" / "id0000_0001.png").string(), cv::Mat(32, 32, CV_8UC3, cv::Scalar(0, 0, 0)));
  fs::remove(data / "id0001" / "id0001_0002.png");
  cv::imwrite((data / "id0002" / "new.png").string(), cv::Mat(32, 32, CV_8UC3, cv::Scalar(9, 9, 9)));
  const auto diffs = manifest_differences(back, build_manifest(scan_of(data)).manifest);
  ASSERT_EQ(diffs.size(), 3u);
  EXPECT_EQ(diffs[0], "1 file(s) added: id0002/new.png");
  EXPECT_EQ(diffs[1], "1 file(s) removed: id0001/id0001_0002.png");
  EXPECT_EQ(diffs[2], "1 file(s) changed: id0000/id0000_0001.png");
}

TEST(Manifest, ImageFolderLayoutHasNoTasks) {
  TempDir dir;
  const fs::path data = make_dataset(dir);
  const Manifest m = build_manifest(scan_of(data, false)).manifest;
  EXPECT_EQ(m.layout, "imagefolder");
  EXPECT_TRUE(m.tasks.empty());
  EXPECT_EQ(m.entries.size(), 24u);  // labels.csv at the root is not an identity image
}

TEST(Manifest, PerImageOverrideColumn) {
  TempDir dir;
  const fs::path data = make_dataset(dir);
  edi::write_file_atomic(data / "labels.csv",
                         "identity,image,age\nid0000,,young\nid0001,,old\nid0002,,young\nid0003,,young\n"
                         "id0000,id0000/id0000_0003.png,old\n");
  const Manifest m = build_manifest(scan_of(data)).manifest;
  const auto& cls = m.tasks[0].classes;
  for (const auto& e : m.entries) {
    if (e.identity != 0) continue;
    EXPECT_EQ(cls[e.attributes[0]], e.id == "id0000/id0000_0003.png" ? "old" : "young") << e.id;
  }
}

TEST(Manifest, LabelErrorsNameFileLineAndValue) {
  TempDir dir;
  const fs::path data = make_dataset(dir);
  edi::write_file_atomic(data / "labels.csv", "name,age\nid0000,old\n");
  EXPECT_EQ(data_error(scan_of(data)), (data / "labels.csv").string() + ": first column must be 'identity', found 'name'");
  edi::write_file_atomic(data / "labels.csv", "identity,age\nid0000,old\nAl Pacino,young\n");
  EXPECT_EQ(data_error(scan_of(data)),
            (data / "labels.csv").string() + ":3: identity 'Al Pacino' has no folder in " + fs::canonical(data).string());
  edi::write_file_atomic(data / "labels.csv", "identity,age\nid0000,old\nid0000,young\n");
  EXPECT_EQ(data_error(scan_of(data)), (data / "labels.csv").string() + ":3: duplicate row for identity 'id0000'");
  ScanOptions missing;
  missing.data_dir = dir / "nope";
  EXPECT_EQ(data_error(missing), (dir / "nope").string() + ": data directory does not exist or is not a directory");
}

TEST(Synth, IsDeterministic) {
  const cv::Mat a = synth_render(3, 7, 11, 64), b = synth_render(3, 7, 11, 64);
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0.0);
  const cv::Mat c = synth_render(3, 7, 12, 64);
  EXPECT_GT(cv::norm(a, c, cv::NORM_L1), 0.0);
  EXPECT_EQ(a.size(), cv::Size(64, 64));
}
