// Opt-in examples on real runs (the metrics sweep fixture, made by the real binary): a run without
// --examples stores no example (no original faces) in results.h5; the EDI run made with --examples 4
// stores 4, with the pass-0 masks the engine applied, captured through its mask observer.
#include <gtest/gtest.h>

#include <algorithm>

#include "edi/rundir/h5.hpp"
#include "edi/rundir/layout.hpp"
#include "metrics/sweep_fixture.hpp"

using namespace edi;
namespace fs = std::filesystem;

namespace {

std::vector<float> read_all(const rundir::h5::Group& g, const std::string& name, rundir::h5::Dims* dims) {
  *dims = rundir::h5::dims(g, name);
  std::size_t n = 1;
  for (auto d : *dims) n *= static_cast<std::size_t>(d);
  std::vector<float> v(n);
  rundir::h5::read_array(g, name, v.data(), n);
  return v;
}

}  // namespace

TEST(Examples, NoneStoredByDefault) {
  const edi::testing::Sweep& s = edi::testing::sweep();
  for (const fs::path& run : {s.conv5, s.control}) {
    const auto f = rundir::h5::File::open_read(run / rundir::file::kResults);
    const auto root = f.root();
    EXPECT_EQ(rundir::h5::get_attr_int(root, "examples"), 0) << run;
    EXPECT_FALSE(rundir::h5::has_dataset(root, "examples")) << run << ": /examples stored without --examples";
    EXPECT_FALSE(fs::exists(run / rundir::dir::kCheckpoints / rundir::dir::kExamples)) << run;
  }
}

TEST(Examples, OptInStoresTheAppliedPassZeroMasks) {
  const edi::testing::Sweep& s = edi::testing::sweep();
  EXPECT_TRUE(fs::is_regular_file(rundir::example_capture_path(s.edi, 0)));
  const auto f = rundir::h5::File::open_read(s.edi / rundir::file::kResults);
  const auto root = f.root();
  ASSERT_EQ(rundir::h5::get_attr_int(root, "examples"), 4);
  const auto ex = f.open_group("examples");
  const std::vector<std::string> ids = rundir::h5::read_strings(ex, "id");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "the first selected images, id order";
  const std::vector<std::uint8_t> captured = rundir::h5::read_bytes(ex, "captured");
  ASSERT_EQ(captured.size(), 4u);
  rundir::h5::Dims md, od, ad;
  const std::vector<float> mask = read_all(ex, "mask", &md), original = read_all(ex, "original", &od);
  (void)read_all(ex, "attribution", &ad);
  ASSERT_EQ(md.size(), 4u);
  EXPECT_EQ(md[0], 4u);
  EXPECT_EQ(od, (rundir::h5::Dims{4, 3, 32, 32}));
  EXPECT_EQ(ad, od);
  // Pass 0's perturbation changes masked entries only: the share changed at the pass-1 evaluation
  // is at most the mask's share (both over 3×S×S entries when the mask has 3 channels).
  const auto images = f.open_group("images"), traj = f.open_group("trajectory");
  const std::vector<std::string> all_ids = rundir::h5::read_strings(images, "id");
  const std::vector<std::int32_t> t_image = rundir::h5::read_ints(traj, "image"), t_pass = rundir::h5::read_ints(traj, "pass");
  const std::vector<float> t_changed = rundir::h5::read_floats(traj, "changed_share");
  const std::size_t per = mask.size() / 4;
  int checked = 0;
  for (std::size_t e = 0; e < 4; ++e) {
    const double share = std::count_if(mask.begin() + static_cast<long>(e * per), mask.begin() + static_cast<long>((e + 1) * per),
                                       [](float v) { return v > 0; }) / static_cast<double>(per);
    if (!captured[e]) {
      EXPECT_EQ(share, 0.0) << ids[e];
      continue;
    }
    EXPECT_GT(share, 0.0) << ids[e];
    EXPECT_LT(share, 0.5) << ids[e] << ": q=90 selects about a tenth of the entries";
    const auto row = static_cast<std::int32_t>(std::find(all_ids.begin(), all_ids.end(), ids[e]) - all_ids.begin());
    for (std::size_t k = 0; k < t_image.size(); ++k)
      if (t_image[k] == row && t_pass[k] == 1 && md[1] == 3) {
        EXPECT_LE(t_changed[k], share + 1e-6) << ids[e] << ": entries outside the stored mask changed at pass 0";
        ++checked;
      }
  }
  EXPECT_GT(checked + std::count(captured.begin(), captured.end(), 0), 0);
  EXPECT_GT(*std::max_element(original.begin(), original.end()), 0.f);
}
