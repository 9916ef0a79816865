#include "edi/rundir/layout.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "edi/engine/run_io.hpp"

namespace edi::rundir {

namespace fs = std::filesystem;

fs::path example_capture_path(const fs::path& rundir, int shard) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%05d.h5", shard);
  return rundir / dir::kCheckpoints / dir::kExamples / name;
}

fs::path image_path(const fs::path& images_dir, const std::string& id) { return engine::image_output_path(images_dir, id); }

bool run_finished(const fs::path& rundir) { return fs::is_regular_file(rundir / file::kComplete); }

bool is_snapshot_dir(const fs::path& dir) { return fs::is_regular_file(dir / file::kSnapshotMarker); }

std::vector<fs::path> list_snapshots(const fs::path& rundir) {
  std::vector<std::pair<double, fs::path>> found;
  std::error_code ec;
  const fs::path root = rundir / dir::kSnapshots;
  if (!fs::is_directory(root, ec)) return {};
  for (const auto& e : fs::directory_iterator(root, ec)) {
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

}  // namespace edi::rundir
