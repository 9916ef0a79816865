// The real binary, run as a user would: option validation messages, config
// files, and the data commands end to end.
#include <gtest/gtest.h>

#include <fstream>

#include "edi/core/fs.hpp"
#include "support/testing.hpp"

using edi::testing::run_edi;
using edi::testing::TempDir;
namespace fs = std::filesystem;

namespace {
void expect_error(const std::string& args, int code, const std::string& message) {
  const auto r = run_edi(args);
  EXPECT_EQ(r.exit_code, code) << args << "\n" << r.output;
  EXPECT_EQ(r.output, message + "\n") << args;
}
}  // namespace

TEST(Options, BadValuesNameOptionValueAndRange) {
  TempDir d;
  const std::string out = " --out " + (d / "s").string();
  expect_error("synth --size 8" + out, 2, "edi-anon synth: error: --size 8: expected an integer in [16, 1024]");
  expect_error("synth --identities abc" + out, 2,
               "edi-anon synth: error: --identities abc: expected an integer in [1, 100000]");
  expect_error("synth --jitter 9" + out, 2, "edi-anon synth: error: --jitter 9: expected a number in [0, 3]");
  expect_error("synth --seed -1" + out, 2,
               "edi-anon synth: error: --seed -1: expected an integer in [0, 18446744073709551615]");
  expect_error("synth --threads 0" + out, 2, "edi-anon synth: error: --threads 0: expected an integer in [1, 256]");
  expect_error("synth", 2, "edi-anon synth: error: --out is required (see edi-anon synth --help)");
  expect_error("synth --bogus 1" + out, 2,
               "edi-anon synth: error: unknown option '--bogus' for 'edi-anon synth' (see edi-anon synth --help)");
  expect_error("manifest --data /nonexistent --out " + (d / "r").string(), 2,
               "edi-anon manifest: error: --data /nonexistent: expected an existing directory");
  expect_error("manifest --data " + d.path().string() + " --test-fraction 1.5 --out " + (d / "r").string(), 2,
               "edi-anon manifest: error: --test-fraction 1.5: expected a number in [0, 1)");
  expect_error("frobnicate", 2, "edi-anon: error: unknown command 'frobnicate' (see edi-anon --help)");
  // Validation happens before any work: nothing was created.
  EXPECT_FALSE(fs::exists(d / "s"));
  EXPECT_FALSE(fs::exists(d / "r"));
}

TEST(Options, HelpShowsEveryDefault) {
  const auto r = run_edi("synth --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--size arg (=64)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--per-identity arg (=30)"), std::string::npos);
  EXPECT_NE(r.output.find("--threads arg (="), std::string::npos);
  const auto top = run_edi("--help");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.output.find("manifest"), std::string::npos);
}

TEST(Options, ConfigFileAndFlagPrecedence) {
  TempDir d;
  edi::write_file_atomic(d / "s.ini",
                         "# synthetic set\nidentities = 2\n[synth]\nper-identity = 3\nsize = 32\n[manifest]\ncolour = ignored\n");
  const auto r = run_edi("synth --config " + (d / "s.ini").string() + " --size 48 --out " + (d / "s").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("6 images of 2 identities (48x48)"), std::string::npos) << r.output;

  edi::write_file_atomic(d / "bad.ini", "identities = 2\ncolour = red\n");
  expect_error("synth --config " + (d / "bad.ini").string() + " --out " + (d / "t").string(), 2,
               "edi-anon synth: error: " + (d / "bad.ini").string() + ":2: unknown key 'colour' for 'edi-anon synth'");
  edi::write_file_atomic(d / "bad2.ini", "size = 4\n");
  expect_error("synth --config " + (d / "bad2.ini").string() + " --out " + (d / "t").string(), 2,
               "edi-anon synth: error: --size 4: expected an integer in [16, 1024]");
}

TEST(Commands, SynthThenManifestThenCheck) {
  TempDir d;
  const std::string data = (d / "data").string(), run = (d / "run").string();
  ASSERT_EQ(run_edi("synth --identities 3 --per-identity 5 --size 32 --out " + data).exit_code, 0);
  std::ofstream(d / "data" / "id0001" / "broken.png") << "not a png";
  auto r = run_edi("manifest --data " + data + " --out " + run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("layout mtf, 15 images, 3 identities"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("quarantined 1 file(s)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("id0001/broken.png: not a decodable image"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(d / "run" / "manifest.csv"));
  EXPECT_EQ(fs::status(d / "run").permissions() & fs::perms::all, fs::perms::owner_all);

  r = run_edi("manifest --data " + data + " --out " + run);
  EXPECT_NE(r.output.find("(unchanged (matches the data))"), std::string::npos) << r.output;

  fs::remove(d / "data" / "id0002" / "id0002_0004.png");
  r = run_edi("manifest --data " + data + " --out " + run);
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("1 file(s) removed: id0002/id0002_0004.png (use --force to replace it)"), std::string::npos)
      << r.output;
  r = run_edi("manifest --data " + data + " --out " + run + " --force");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(replaced)"), std::string::npos);
}

TEST(Commands, SynthRefusesAForeignDirectory) {
  TempDir d;
  std::ofstream(d / "precious.txt") << "keep me";
  expect_error("synth --identities 1 --per-identity 1 --out " + d.path().string(), 2,
               "edi-anon synth: error: --out " + d.path().string() +
                   ": directory is not empty and was not written by edi-anon synth");
}
