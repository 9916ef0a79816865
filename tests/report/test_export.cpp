// `edi-anon export` on a real small sweep: opaque per-tree names, a private
// mapping, no originals, safe folder names, an order and times that say
// nothing about identity, and still-identified images reported or withheld.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "edi/core/csv.hpp"
#include "edi/core/fs.hpp"
#include "edi/data/manifest.hpp"
#include "edi/report/export.hpp"
#include "metrics/sweep_fixture.hpp"

using namespace edi::testing;
namespace fs = std::filesystem;

namespace {

struct Exported {
  fs::path path;
  std::string tree, name;
  struct stat st {};
};

std::vector<Exported> exported_files(const fs::path& out) {
  std::vector<Exported> files;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (!e.is_regular_file()) continue;
    Exported x;
    x.path = e.path();
    x.tree = *fs::relative(e.path(), out).begin();
    x.name = e.path().stem().string();
    ::stat(e.path().c_str(), &x.st);
    files.push_back(x);
  }
  return files;
}

/// name -> identity, from the mapping (per tree: names differ between trees).
std::map<std::string, std::string> identity_of_name(const fs::path& mapping) {
  const edi::CsvTable t = edi::parse_csv(edi::read_file(mapping), mapping.string());
  const int c_name = edi::csv_column(t, "name"), c_identity = edi::csv_column(t, "identity");
  std::map<std::string, std::string> out;
  for (const auto& row : t.rows)
    if (!row[static_cast<std::size_t>(c_name)].empty()) out[row[static_cast<std::size_t>(c_name)]] = row[static_cast<std::size_t>(c_identity)];
  return out;
}

int count_identified(const fs::path& run) {
  const edi::CsvTable t = edi::parse_csv(edi::read_file(run / "outcomes.csv"), "outcomes.csv");
  const int c = edi::csv_column(t, "identified");
  return static_cast<int>(std::count_if(t.rows.begin(), t.rows.end(), [&](const auto& r) { return r[static_cast<std::size_t>(c)] == "1"; }));
}

}  // namespace

TEST(ExportCli, OpaqueNamesPrivateMappingNoOriginals) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path run = copy_run(s.conv5, tmp / "conv5");
  const fs::path out = tmp / "export";
  const auto r = run_edi("export --run " + run.string() + " --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Hashes of every file of the data set (originals).
  std::set<std::string> originals;
  for (const auto& e : fs::recursive_directory_iterator(s.data))
    if (e.is_regular_file()) originals.insert(edi::sha256_file(e.path()));
  std::set<std::string> tasks;
  std::size_t files = 0;
  const std::regex name_re("[0-9a-f]{20}\\.png");
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (!e.is_regular_file()) continue;
    ++files;
    const fs::path rel = fs::relative(e.path(), out);
    std::vector<std::string> parts(rel.begin(), rel.end());
    ASSERT_EQ(parts.size(), 4u) << rel;  // <task>/<split>/<class>/<name>.png
    tasks.insert(parts[0]);
    EXPECT_TRUE(std::regex_match(parts[3], name_re)) << rel;
    for (const auto& p : parts) EXPECT_EQ(p.find("id00"), std::string::npos) << rel;  // no identity names anywhere
    EXPECT_FALSE(originals.count(edi::sha256_file(e.path()))) << rel << " is a copy of an original";
  }
  EXPECT_EQ(tasks, (std::set<std::string>{"age", "gender", "race"}));
  EXPECT_EQ(files, 3u * 72u);  // blur k 5 changes every image; 3 trees
  const fs::path mapping = run / "export-mapping.csv";
  struct stat st {};
  ASSERT_EQ(::stat(mapping.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  const edi::CsvTable m = edi::parse_csv(edi::read_file(mapping), mapping.string());
  EXPECT_EQ(m.header, (std::vector<std::string>{"name", "task", "id", "identity", "split", "state"}));
  EXPECT_EQ(m.rows.size(), 3u * 72u);  // one row per exported file
  // Exporting again gives new, unlinkable names.
  const fs::path out2 = tmp / "export2";
  ASSERT_EQ(run_edi("export --run " + run.string() + " --out " + out2.string()).exit_code, 0);
  std::set<std::string> n1, n2;
  for (const auto& e : exported_files(out)) if (e.tree == "gender") n1.insert(e.name);
  for (const auto& e : exported_files(out2)) if (e.tree == "gender") n2.insert(e.name);
  EXPECT_EQ(n1.size(), 72u);
  EXPECT_EQ(n2.size(), 72u);
  std::vector<std::string> common;
  std::set_intersection(n1.begin(), n1.end(), n2.begin(), n2.end(), std::back_inserter(common));
  EXPECT_TRUE(common.empty()) << common.size() << " names repeat across exports";
}

TEST(ExportCli, TreesCannotBeJoinedAndOrderAndTimesSayNothingAboutIdentity) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path run = copy_run(s.conv5, tmp / "conv5");
  const fs::path out = tmp / "export";
  ASSERT_EQ(run_edi("export --run " + run.string() + " --out " + out.string()).exit_code, 0);
  const auto files = exported_files(out);
  ASSERT_EQ(files.size(), 3u * 72u);
  // Names are per tree: no name appears in two trees.
  std::map<std::string, std::set<std::string>> trees_of;
  for (const auto& f : files) trees_of[f.name].insert(f.tree);
  for (const auto& [name, trees] : trees_of) EXPECT_EQ(trees.size(), 1u) << name << " is in several trees";
  // One fixed mtime for every file and folder.
  for (const auto& f : files) EXPECT_EQ(f.st.st_mtim.tv_sec, edi::report::kExportMtime) << f.path;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    struct stat st {};
    ::stat(e.path().c_str(), &st);
    EXPECT_EQ(st.st_mtim.tv_sec, edi::report::kExportMtime) << e.path();
  }
  // Creation order (inode numbers) does not group images by person: in id
  // order the 72 files of a tree would change identity 5 times.
  const auto who = identity_of_name(run / "export-mapping.csv");
  for (const char* tree : {"age", "gender", "race"}) {
    std::vector<std::pair<ino_t, std::string>> order;
    for (const auto& f : files)
      if (f.tree == tree) order.emplace_back(f.st.st_ino, who.at(f.name));
    std::sort(order.begin(), order.end());
    int changes = 0;
    for (std::size_t i = 1; i < order.size(); ++i) changes += order[i].second != order[i - 1].second;
    EXPECT_GT(changes, 30) << tree << ": files were created grouped by identity";
  }
}

TEST(ExportCli, TaskAndClassNamesThatEscapeAreRefused) {
  const Sweep& s = sweep();
  TempDir tmp;
  const std::string absolute = (tmp / "escaped").string();  // unique: /tmp itself is shared
  for (const auto& [what, bad] :
       std::vector<std::pair<std::string, std::string>>{{"task", "/tmp/x"}, {"class", "../x"}, {"task", ".."}, {"task", absolute}}) {
    const fs::path run = copy_run(s.conv5, tmp / ("run-" + std::to_string(std::hash<std::string>()(bad))));
    edi::data::Manifest m = edi::data::read_manifest(run / "manifest.csv");
    ASSERT_FALSE(m.tasks.empty());
    if (what == "task") m.tasks[0].name = bad;
    else m.tasks[0].classes[0] = bad;  // sorted order no longer holds: only the export reads it
    edi::data::write_manifest(m, run / "manifest.csv");
    const fs::path out = tmp / ("out-" + std::to_string(std::hash<std::string>()(bad)));
    const auto r = run_edi("export --run " + run.string() + " --out " + out.string());
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find("'" + bad + "' cannot be an export folder name"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out)) << "something was written";
    EXPECT_FALSE(fs::exists(absolute)) << "escaped to " << absolute;
  }
}

TEST(ExportCli, StillIdentifiedImagesAreMarkedOrWithheld) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path run = copy_run(s.conv5, tmp / "conv5");
  const int identified = count_identified(run);
  ASSERT_GT(identified, 0) << "the fixture's conventional blur k 5 run should leave some images identified";
  auto r = run_edi("export --run " + run.string() + " --out " + (tmp / "a").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("note: " + std::to_string(identified) + " exported images are still identified"), std::string::npos) << r.output;
  const std::string mapping = edi::read_file(run / "export-mapping.csv");
  std::size_t marked = 0;
  for (std::size_t p = mapping.find("still identified"); p != std::string::npos; p = mapping.find("still identified", p + 1)) ++marked;
  EXPECT_EQ(marked, 3u * static_cast<std::size_t>(identified));
  r = run_edi("export --run " + run.string() + " --out " + (tmp / "b").string() + " --withhold-identified");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("withheld " + std::to_string(identified) + " images the run left still identified"), std::string::npos) << r.output;
  EXPECT_EQ(exported_files(tmp / "b").size(), 3u * static_cast<std::size_t>(72 - identified));
}

TEST(ExportCli, UnchangedImagesAreWithheldAndBadOutputRefused) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path conv1 = copy_run(s.conv1, tmp / "conv1");
  const auto r = run_edi("export --run " + conv1.string() + " --out " + (tmp / "e").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("exported 0 images (0 files)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("withheld 72 images"), std::string::npos) << r.output;
  // Non-empty output, an output inside the run directory, an unknown task.
  fs::create_directories(tmp / "full");
  std::ofstream(tmp / "full" / "x") << "x";
  EXPECT_EQ(run_edi("export --run " + s.conv5.string() + " --out " + (tmp / "full").string()).exit_code, 2);
  EXPECT_EQ(run_edi("export --run " + s.conv5.string() + " --out " + (s.conv5 / "exp").string()).exit_code, 2);
  EXPECT_EQ(run_edi("export --run " + s.conv5.string() + " --out " + (tmp / "t").string() + " --task shoe").exit_code, 2);
}
