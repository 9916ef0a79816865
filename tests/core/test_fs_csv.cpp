#include <gtest/gtest.h>
#include <sys/stat.h>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "support/testing.hpp"

using edi::testing::TempDir;
namespace fs = std::filesystem;

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(edi::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(edi::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  TempDir dir;
  edi::write_file_atomic(dir / "f", "abc");
  EXPECT_EQ(edi::sha256_file(dir / "f"), edi::sha256_hex("abc"));
}

TEST(AtomicWrite, ReplacesWholeFileAndLeavesNoTemp) {
  TempDir dir;
  edi::write_file_atomic(dir / "x.txt", "first");
  edi::write_file_atomic(dir / "x.txt", "second", edi::Durability::kProcessCrash);
  EXPECT_EQ(edi::read_file(dir / "x.txt"), "second");
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) (void)e, ++files;
  EXPECT_EQ(files, 1);
}

TEST(AtomicWrite, UncommittedTempIsRemoved) {
  TempDir dir;
  fs::path temp;
  {
    edi::AtomicPath p(dir / "out.h5");
    temp = p.temp();
    edi::write_file_atomic(temp, "partial");  // a writer that never commits
    EXPECT_TRUE(fs::exists(temp));
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(dir / "out.h5"));
}

TEST(AtomicWrite, MissingDirectoryIsAnIoErrorNamingThePath) {
  try {
    edi::write_file_atomic("/nonexistent-dir/sub/file.txt", "x");
    FAIL() << "expected IoError";
  } catch (const edi::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/sub/"), std::string::npos) << e.what();
  }
}

TEST(PrivateDir, IsOwnerOnly) {
  TempDir dir;
  edi::create_private_dir(dir / "run" / "a");
  struct stat st {};
  ASSERT_EQ(stat((dir / "run" / "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(Csv, QuotedFieldsCommentsAndRoundTrip) {
  const std::string text = "# meta line\nid,name,note\n1,\"Pacino, Al\",\"said \"\"hi\"\"\"\n2,plain,\"multi\nline\"\n\n";
  const auto t = edi::parse_csv(text, "t.csv");
  ASSERT_EQ(t.comments.size(), 1u);
  EXPECT_EQ(t.comments[0], " meta line");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][1], "Pacino, Al");
  EXPECT_EQ(t.rows[0][2], "said \"hi\"");
  EXPECT_EQ(t.rows[1][2], "multi\nline");
  EXPECT_EQ(t.row_lines[0], 3);
  EXPECT_EQ(t.row_lines[1], 4);
  EXPECT_EQ(edi::csv_line(t.rows[0]), "1,\"Pacino, Al\",\"said \"\"hi\"\"\"\n");
  EXPECT_EQ(edi::csv_column(t, "note"), 2);
  EXPECT_EQ(edi::csv_column(t, "absent"), -1);
}

TEST(Csv, ErrorsNameFileAndLine) {
  try {
    edi::parse_csv("a,b\n1,2\n3\n", "labels.csv");
    FAIL();
  } catch (const edi::DataError& e) {
    EXPECT_STREQ(e.what(), "labels.csv:3: expected 2 fields, found 1");
  }
  try {
    edi::parse_csv("a,b\n1,\"open\n", "x.csv");
    FAIL();
  } catch (const edi::DataError& e) {
    EXPECT_STREQ(e.what(), "x.csv:2: unterminated quoted field");
  }
  EXPECT_THROW(edi::parse_csv("", "empty.csv"), edi::DataError);
}
