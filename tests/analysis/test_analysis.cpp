// The analysis scripts on a real small sweep: each writes a non-trivial PNG and PDF.
#include <gtest/gtest.h>

#include <fstream>

#include "edi/core/fs.hpp"
#include "metrics/sweep_fixture.hpp"

using namespace edi::testing;
namespace fs = std::filesystem;

namespace {
std::string script(const std::string& name) { return std::string(debian_python()) + " " + EDI_SOURCE_DIR + "/analysis/" + name; }

/// PNG and PDF exist, have their magic bytes and are larger than a blank figure.
void expect_figure(const fs::path& stem) {
  for (const char* ext : {".png", ".pdf"}) {
    const fs::path p = stem.string() + ext;
    ASSERT_TRUE(fs::is_regular_file(p)) << p;
    EXPECT_GT(fs::file_size(p), 8000u) << p;
    const std::string head = edi::read_file(p).substr(0, 4);
    EXPECT_EQ(head, std::string(ext) == ".png" ? std::string("\x89PNG") : std::string("%PDF")) << p;
  }
}
}  // namespace

TEST(Analysis, RunScriptsProduceFigures) {
  const Sweep& s = sweep();
  TempDir tmp;
  const std::string runs = s.edi.string() + " " + (s.conv5 / "results.h5").string();
  auto r = run_command(script("risk_curves.py") + " " + runs + " --out " + tmp.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_figure(tmp / "risk-vs-pass");
  r = run_command(script("passes_hist.py") + " " + runs + " --out " + tmp.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_figure(tmp / "passes-to-stop");
  r = run_command(script("image_grid.py") + " " + s.edi.string() + " --rows 4 --out " + tmp.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_figure(tmp / "image-grid");
}

TEST(Analysis, FrontierFromAggregate) {
  const Sweep& s = sweep();
  TempDir tmp;
  const fs::path edi_run = copy_run(s.edi, tmp / "edi"), conv5 = copy_run(s.conv5, tmp / "conv5"), conv1 = copy_run(s.conv1, tmp / "conv1");
  auto r = run_edi("aggregate " + edi_run.string() + " " + conv5.string() + " " + conv1.string() + " --out " +
                   (tmp / "agg").string() + " --evaluate --attacker lbph --utility gender=" + s.gender_model.string() +
                   " --bootstrap 50");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(script("frontier.py") + " " + (tmp / "agg" / "aggregate.json").string() + " --out " + tmp.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_figure(tmp / "frontier-gender-steering");
  r = run_command(script("frontier.py") + " " + edi_run.string() + " " + conv5.string() + " --risk lbph --out " + tmp.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_figure(tmp / "frontier-gender-lbph");
}

TEST(Analysis, BadInputIsAOneLineError) {
  TempDir tmp;
  const auto r = run_command(script("risk_curves.py") + " " + tmp.path().string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no results.h5"), std::string::npos) << r.output;
}
