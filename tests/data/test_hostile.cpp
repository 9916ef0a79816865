// Hostile input: links, output-path checks, image bombs, imported splits.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>
#include <random>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/image.hpp"
#include "edi/data/manifest.hpp"
#include "edi/data/private_file.hpp"
#include "edi/data/synth.hpp"
#include "support/testing.hpp"

using namespace edi::data;
using edi::testing::TempDir;
namespace fs = std::filesystem;

namespace {

fs::path make_dataset(const fs::path& out, int identities = 3, int per_identity = 4) {
  SynthSpec spec;
  spec.identities = identities;
  spec.per_identity = per_identity;
  spec.size = 32;
  spec.seed = 9;
  spec.out = out;
  synth_generate(spec);
  return spec.out;
}

ScanOptions scan_of(const fs::path& data, const fs::path& labels = {}) {
  ScanOptions o;
  o.data_dir = data;
  o.labels_csv = labels;
  return o;
}

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const edi::Error& e) {
    return e.what();
  }
  return "";
}

std::string reason(const ScanResult& r, const std::string& path) {
  for (const auto& q : r.quarantined)
    if (q.path == path) return q.reason;
  return "(not quarantined)";
}

bool has_entry(const Manifest& m, const std::string& id) {
  return std::any_of(m.entries.begin(), m.entries.end(), [&](const ManifestEntry& e) { return e.id == id; });
}

/// Restores the process-wide decode limits after a test changes them.
struct LimitsGuard {
  DecodeLimits saved = decode_limits();
  ~LimitsGuard() { set_decode_limits(saved); }
};

cv::Mat random_bgr(int w, int h, unsigned seed) {
  cv::Mat m(h, w, CV_8UC3);
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  return m;
}

}  // namespace

TEST(CheckedId, AcceptsRelativeIdsAndRefusesEscapes) {
  EXPECT_EQ(checked_relative_id("a/1.jpg", "x").generic_string(), "a/1.jpg");
  EXPECT_EQ(checked_relative_id("Al Pacino/b..c.jpg", "x").generic_string(), "Al Pacino/b..c.jpg");
  EXPECT_EQ(error_of([] { checked_relative_id("../x.png", "m.csv:3"); }),
            "m.csv:3: image id '../x.png': '..' component would leave the output directory");
  EXPECT_EQ(error_of([] { checked_relative_id("/tmp/x.png", "w"); }),
            "w: image id '/tmp/x.png': absolute path, expected a path relative to the data root");
  for (const char* bad : {"", "a/../../b.png", "a//b.png", "./a.png", "a/", "a/.."})
    EXPECT_FALSE(error_of([&] { checked_relative_id(bad, "w"); }).empty()) << bad;
  EXPECT_EQ(output_name("a/1.jpg"), "a/1.png");
  EXPECT_EQ(output_name("a/1"), "a/1.png");
}

TEST(CheckedId, ManifestWithAnEscapingIdIsRefusedWithFileAndLine) {
  TempDir dir;
  const fs::path data = make_dataset(dir / "data");
  const std::string csv = manifest_to_csv(build_manifest(scan_of(data)).manifest);
  std::string bad = csv;
  bad.replace(bad.find("id0000/id0000_0000.png"), std::string("id0000/id0000_0000.png").size(), "../../etc/x.png");
  EXPECT_EQ(error_of([&] { manifest_from_csv(bad, "m.csv"); }),
            "m.csv:3: image id '../../etc/x.png': '..' component would leave the output directory");
  std::string abs = csv;
  abs.replace(abs.find("id0000/id0000_0000.png"), std::string("id0000/id0000_0000.png").size(), "/tmp/x.png");
  EXPECT_NE(error_of([&] { manifest_from_csv(abs, "m.csv"); }).find("absolute path"), std::string::npos);
  std::string twin = csv;  // two ids with one output name
  twin.replace(twin.find("id0000/id0000_0001.png"), std::string("id0000/id0000_0001.png").size(), "id0000/id0000_0000.jpg");
  EXPECT_NE(error_of([&] { manifest_from_csv(twin, "m.csv"); }).find("has the output name images/id0000/id0000_0000.png"),
            std::string::npos);
}

TEST(Links, IdsAreLexicalAndLinksLeavingTheRootAreQuarantined) {
  TempDir dir;
  // The data root lies deeper than where a run directory would be.
  const fs::path data = make_dataset(dir / "deep" / "a" / "data");
  fs::remove(data / "labels.csv");
  fs::create_directories(dir / "elsewhere" / "photos");
  fs::copy_file(data / "id0000" / "id0000_0000.png", dir / "elsewhere" / "photos" / "b.png");
  fs::create_directory_symlink(dir / "elsewhere" / "photos", data / "outside");            // identity folder out
  fs::create_symlink(dir / "elsewhere" / "photos" / "b.png", data / "id0000" / "b.png");   // file out
  fs::create_directory_symlink("id0001", data / "alias");                                  // identity folder inside
  fs::create_symlink("../id0002/id0002_0000.png", data / "id0000" / "twin.png");          // second link, inside
  fs::create_symlink("missing.png", data / "id0001" / "dangling.png");
  fs::create_symlink("l2", data / "id0001" / "l1");
  fs::create_symlink("l1", data / "id0001" / "l2");
  fs::create_directory_symlink("..", data / "id0002" / "up");
  fs::create_symlink(dir / "elsewhere" / "photos" / "b.png", data / "labels-link.csv");  // a top-level file: not an identity
  fs::create_directory_symlink(dir / "gone", data / "id0009");                          // a broken identity folder

  const ScanResult r = build_manifest(scan_of(data));
  const Manifest& m = r.manifest;
  EXPECT_EQ(m.identities, (std::vector<std::string>{"alias", "id0000", "id0001", "id0002"}));
  EXPECT_EQ(m.entries.size(), 12u);
  for (const auto& e : m.entries) {
    EXPECT_EQ(e.id.find(".."), std::string::npos) << e.id;
    EXPECT_NO_THROW(checked_relative_id(e.id, "test"));
  }
  EXPECT_NE(reason(r, "outside").find("symlink leaves the data root"), std::string::npos) << reason(r, "outside");
  EXPECT_NE(reason(r, "id0000/b.png").find("symlink leaves the data root"), std::string::npos);
  // Two paths to one file keep one id: the one without links.
  EXPECT_EQ(reason(r, "alias/id0001_0000.png"), "same file as id0001/id0001_0000.png (a second link to it)");
  EXPECT_EQ(reason(r, "id0000/twin.png"), "same file as id0002/id0002_0000.png (a second link to it)");
  EXPECT_FALSE(has_entry(m, "alias/id0001_0000.png"));
  EXPECT_TRUE(has_entry(m, "id0001/id0001_0000.png"));
  EXPECT_EQ(reason(r, "id0001/dangling.png"), "dangling symlink (-> missing.png)");
  EXPECT_EQ(reason(r, "id0001/l1").rfind("symlink loop", 0), 0u) << reason(r, "id0001/l1");
  EXPECT_EQ(reason(r, "id0002/up").rfind("symlink loop", 0), 0u) << reason(r, "id0002/up");
  EXPECT_EQ(reason(r, "labels-link.csv"), "(not quarantined)");
  EXPECT_EQ(reason(r, "id0009"), "dangling symlink (-> " + (dir / "gone").string() + ")");
}

TEST(Links, TwoFilesWithOneOutputNameAreAnErrorNamingBoth) {
  TempDir dir;
  const fs::path data = make_dataset(dir / "data");
  cv::imwrite((data / "id0001" / "x.jpg").string(), random_bgr(32, 32, 1));
  cv::imwrite((data / "id0001" / "x.png").string(), random_bgr(32, 32, 2));
  EXPECT_EQ(error_of([&] { build_manifest(scan_of(data)); }),
            fs::canonical(data).string() + ": id0001/x.jpg and id0001/x.png would both be written as images/id0001/x.png: rename one of them");
}

TEST(Bombs, SpecialFilesAreQuarantinedWithoutBeingOpened) {
  TempDir dir;
  const fs::path data = make_dataset(dir / "data");
  ASSERT_EQ(mkfifo((data / "id0000" / "pipe.png").c_str(), 0600), 0);  // opening it would block the scan
  const ScanResult r = build_manifest(scan_of(data));
  EXPECT_EQ(reason(r, "id0000/pipe.png"), "not a regular file: a FIFO");
  EXPECT_EQ(r.manifest.entries.size(), 12u);
}

TEST(Bombs, CapsOnPixelsFileSizeAndAspectAreCheckedBeforeDecoding) {
  LimitsGuard guard;
  TempDir dir;
  cv::imwrite((dir / "wide.png").string(), random_bgr(200, 10, 3));
  cv::imwrite((dir / "big.jpg").string(), random_bgr(120, 100, 4));
  DecodeLimits lim;
  lim.max_pixels = 10000;
  lim.max_aspect = 16;
  set_decode_limits(lim);
  EXPECT_EQ(error_of([&] { decode_image(dir / "big.jpg", {}); }),
            (dir / "big.jpg").string() + ": too many pixels: 120x100 = 12000 pixels, limit 10000 (raise with --max-megapixels)");
  EXPECT_EQ(error_of([&] { probe_image(dir / "wide.png", 1); }),
            (dir / "wide.png").string() + ": aspect ratio too extreme: 200x10 = 20:1, limit 16:1");
  lim.max_file_bytes = 1000;
  set_decode_limits(lim);
  EXPECT_NE(error_of([&] { probe_image(dir / "wide.png", 1); }).find("file too large: "), std::string::npos);
  // A sparse 2.5 GiB file is refused from its size alone, with the default limits.
  set_decode_limits(DecodeLimits{});
  std::ofstream(dir / "sparse.jpg").close();
  fs::resize_file(dir / "sparse.jpg", 2560ull << 20);
  EXPECT_EQ(error_of([&] { probe_image(dir / "sparse.jpg", 1); }),
            (dir / "sparse.jpg").string() + ": file too large: 2684354560 bytes, limit 1073741824");
}

TEST(Bombs, HeaderSizesMatchTheDecoder) {
  const cv::Mat img = random_bgr(37, 23, 5);
  for (const char* ext : {".png", ".jpg", ".bmp", ".webp", ".tiff", ".ppm"}) {
    std::vector<uchar> buf;
    ASSERT_TRUE(cv::imencode(ext, img, buf)) << ext;
    const auto size = header_size(std::string(buf.begin(), buf.end()));
    ASSERT_TRUE(size.has_value()) << ext;
    EXPECT_EQ(*size, cv::Size(37, 23)) << ext;
  }
  EXPECT_FALSE(header_size("GIF89a......").has_value());
}

TEST(Bombs, WindowedResizeIsBitIdenticalToResizeThenCrop) {
  for (const auto& [w, h, s] : std::vector<std::array<int, 3>>{{150, 150, 64}, {120, 90, 64}, {40, 97, 64}, {33, 250, 32}, {64, 80, 64}}) {
    const cv::Mat bgr = random_bgr(w, h, static_cast<unsigned>(w * h));
    cv::Mat rgb, f;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    rgb.convertTo(f, CV_32FC3, 1.0 / 255.0);
    const cv::Size sz = w <= h ? cv::Size(s, s * h / w) : cv::Size(s * w / h, s);
    const cv::Rect roi(static_cast<int>(std::lround((sz.width - s) / 2.0)), static_cast<int>(std::lround((sz.height - s) / 2.0)), s, s);
    const cv::Mat full = resize_antialiased(f, sz)(roi);
    const cv::Rect win = resize_source_window(f.size(), sz, roi);
    const cv::Mat part = resize_antialiased_window(f(win).clone(), win.tl(), f.size(), sz, roi);
    EXPECT_EQ(cv::norm(full, part, cv::NORM_INF), 0.0) << w << "x" << h;
    TempDir dir;
    cv::imwrite((dir / "a.png").string(), bgr);
    EXPECT_EQ(cv::norm(decode_image(dir / "a.png", {.size = s, .mode = ResizeMode::kShorterSideCrop, .antialias = true, .min_side = 1}),
                       full, cv::NORM_INF),
              0.0);
  }
}

TEST(Bombs, AStripIsCroppedInSourceCoordinatesUnderA4GiBAddressSpace) {
  // 16 × 983,040 (libpng refuses heights over 10^6, so not 1,048,576):
  // resizing the whole strip to 224 px would take 224 × 13.8M × 3 floats
  // (37 GB). With the aspect cap raised it must decode in a child whose
  // address space is capped at 4 GiB.
  TempDir dir;
  const int rows = 983040;
  cv::Mat strip(rows, 16, CV_8UC3, cv::Scalar(10, 20, 30));
  strip.rowRange(rows / 2 - 8, rows / 2 + 8).setTo(cv::Scalar(200, 100, 50));
  std::vector<uchar> buf;
  ASSERT_TRUE(cv::imencode(".png", strip, buf));
  strip.release();
  edi::write_file_atomic(dir / "strip.png", std::string(buf.begin(), buf.end()));
  RecordProperty("strip_png_bytes", static_cast<int>(buf.size()));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const rlimit cap{4ull << 30, 4ull << 30};
    if (setrlimit(RLIMIT_AS, &cap) != 0) _exit(10);
    LimitsGuard guard;
    DecodeLimits lim;
    lim.max_aspect = 1e7;
    set_decode_limits(lim);
    try {
      const cv::Mat m = decode_image(dir / "strip.png", {.size = 224, .mode = ResizeMode::kShorterSideCrop, .antialias = true, .min_side = 1});
      if (m.size() != cv::Size(224, 224)) _exit(11);
      const cv::Vec3f centre = m.at<cv::Vec3f>(112, 112);  // the band at the middle, RGB
      if (std::abs(centre[0] - 50 / 255.f) > 1e-4f || std::abs(centre[2] - 200 / 255.f) > 1e-4f) _exit(12);
    } catch (...) {
      _exit(13);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 setrlimit, 11 size, 12 pixels, 13 exception (e.g. out of memory)";
}

TEST(ImportedSplit, SplitFileIsUsedAsIs) {
  TempDir dir;
  const fs::path data = make_dataset(dir / "data", 2, 4);
  std::string text = "image,split\n";
  const char* splits[] = {"train", "train", "test", "val"};
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) text += "id000" + std::to_string(i) + "/id000" + std::to_string(i) + "_000" + std::to_string(k) + ".png," + splits[k] + "\n";
  edi::write_file_atomic(dir / "split.csv", text);
  ScanOptions o = scan_of(data, data / "labels.csv");
  o.split.file = dir / "split.csv";
  const Manifest m = build_manifest(o).manifest;
  EXPECT_EQ(m.split.source, "file");
  EXPECT_EQ(m.split.file_sha256, edi::sha256_file(dir / "split.csv"));
  for (const auto& e : m.entries) EXPECT_STREQ(split_name(e.split), splits[e.id[e.id.size() - 5] - '0']) << e.id;
  EXPECT_EQ(m.count(Split::kTest), 2u);
  // The source survives the CSV round trip and is part of the data set's identity.
  const Manifest back = manifest_from_csv(manifest_to_csv(m), "m.csv");
  EXPECT_EQ(back.split.source, "file");
  const Manifest seeded = build_manifest(scan_of(data, data / "labels.csv")).manifest;
  EXPECT_NE(seeded.hash(), m.hash());
  EXPECT_EQ(manifest_differences(seeded, m).front(), "split source differs (seeded stored, file now)");
}

TEST(ImportedSplit, ErrorsNameTheFileLineAndValue) {
  TempDir dir;
  const fs::path data = make_dataset(dir / "data", 2, 2);
  const fs::path f = dir / "split.csv";
  ScanOptions o = scan_of(data);
  o.split.file = f;
  auto run = [&](const std::string& text) {
    edi::write_file_atomic(f, text);
    return error_of([&] { build_manifest(o); });
  };
  const std::string all = "id0000/id0000_0000.png,train\nid0000/id0000_0001.png,test\nid0001/id0001_0000.png,train\n";
  EXPECT_EQ(run("path,split\n"), f.string() + ": header 'path,split': expected 'image,split'");
  EXPECT_EQ(run("\xEF\xBB\xBFimage,split\n" + all), f.string() + ": 1 image(s) of the data set have no split, e.g. 'id0001/id0001_0001.png' (expected train, val or test for every image)");
  EXPECT_EQ(run("image,split\n" + all + "id0001/id0001_0001.png,holdout\n"),
            f.string() + ":5: split 'holdout': expected train, val or test");
  EXPECT_EQ(run("image,split\n" + all + "id0009/x.png,train\n"),
            f.string() + ":5: image 'id0009/x.png' is not in " + fs::canonical(data).string());
  EXPECT_EQ(run("image,split\n" + all),
            f.string() + ": 1 image(s) of the data set have no split, e.g. 'id0001/id0001_0001.png' (expected train, val or test for every image)");
  EXPECT_EQ(run("image,split\n" + all + "id0000/id0000_0000.png,test\n"),
            f.string() + ":5: duplicate row for image 'id0000/id0000_0000.png' (first on line 2)");
}

TEST(ImportedSplit, LabelsSplitColumnPerIdentityAndPerImage) {
  TempDir dir;
  const fs::path data = make_dataset(dir / "data", 2, 3);
  edi::write_file_atomic(data / "labels.csv",
                         "identity,image,age,split\nid0000,,young,train\nid0001,,old,test\nid0000,id0000/id0000_0002.png,,val\n");
  const Manifest m = build_manifest(scan_of(data, data / "labels.csv")).manifest;
  EXPECT_EQ(m.split.source, "labels");
  ASSERT_EQ(m.tasks.size(), 1u);  // split is not an attribute task
  for (const auto& e : m.entries) {
    const Split want = e.id == "id0000/id0000_0002.png" ? Split::kVal : e.identity == 0 ? Split::kTrain : Split::kTest;
    EXPECT_EQ(e.split, want) << e.id;
  }
  edi::write_file_atomic(data / "labels.csv", "identity,age,split\nid0000,young,train\nid0001,old,later\n");
  EXPECT_EQ(error_of([&] { build_manifest(scan_of(data, data / "labels.csv")); }),
            (data / "labels.csv").string() + ":3: split 'later': expected train, val or test");
  edi::write_file_atomic(data / "labels.csv", "identity,age,split\nid0000,young,train\nid0001,old,\n");
  EXPECT_NE(error_of([&] { build_manifest(scan_of(data, data / "labels.csv")); }).find("have no split, e.g. 'id0001/id0001_0000.png'"),
            std::string::npos);
  // A split file and a split column: one must go.
  edi::write_file_atomic(data / "labels.csv", "identity,age,split\nid0000,young,train\nid0001,old,test\n");
  edi::write_file_atomic(dir / "s.csv", "image,split\nid0000/id0000_0000.png,train\n");
  ScanOptions both = scan_of(data, data / "labels.csv");
  both.split.file = dir / "s.csv";
  EXPECT_NE(error_of([&] { build_manifest(both); }).find("has a split column too"), std::string::npos);
}

TEST(PrivateFile, IsOwnerOnlyFromTheStartWhateverTheUmask) {
  TempDir dir;
  const mode_t old = ::umask(0);  // a plain write would create 0666
  write_private_file(dir / "mapping.csv", "name,id\n");
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "mapping.csv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(edi::read_file(dir / "mapping.csv"), "name,id\n");
  std::size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) entries += e.path().filename() != "mapping.csv";
  EXPECT_EQ(entries, 0u) << "a temp file was left behind";
  EXPECT_NE(error_of([&] { write_private_file(dir / "missing" / "x.csv", "x"); }).find("cannot create: No such file or directory"),
            std::string::npos);
}
