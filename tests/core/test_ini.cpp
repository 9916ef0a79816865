#include <gtest/gtest.h>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/core/ini.hpp"
#include "support/testing.hpp"

using edi::IniItem;
using edi::testing::TempDir;

TEST(Ini, SectionsKeysCommentsAndQuotes) {
  TempDir dir;
  const auto path = dir.path() / "x.ini";
  edi::write_file_atomic(path, "# comment\n top = 1 \n\n[run]\n; another\nk = \"a b\"\nlist = 5 | 9\r\n[grid.edi]\n");
  const auto items = edi::read_ini(path, "--config", "file");
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].kind, IniItem::Kind::kKey);
  EXPECT_EQ(items[0].section, "");
  EXPECT_EQ(items[0].key, "top");
  EXPECT_EQ(items[0].value, "1");
  EXPECT_EQ(items[0].where, path.string() + ":2");
  EXPECT_EQ(items[1].kind, IniItem::Kind::kSection);
  EXPECT_EQ(items[1].section, "run");
  EXPECT_EQ(items[2].section, "run");
  EXPECT_EQ(items[2].value, "a b");  // quotes removed, inner blank kept
  EXPECT_EQ(items[3].value, "5 | 9");  // CR trimmed
  EXPECT_EQ(items[4].kind, IniItem::Kind::kSection);
  EXPECT_EQ(items[4].section, "grid.edi");
  EXPECT_EQ(items[4].where, path.string() + ":8");
}

TEST(Ini, ErrorsNameFileAndLine) {
  TempDir dir;
  const auto path = dir.path() / "bad.ini";
  edi::write_file_atomic(path, "[run]\nk = 1\njust words\n");
  try {
    edi::read_ini(path, "--config", "file");
    FAIL();
  } catch (const edi::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path.string() + ":3: expected 'key = value', found 'just words'");
  }
  edi::write_file_atomic(path, "[run\n");
  try {
    edi::read_ini(path, "--config", "file");
    FAIL();
  } catch (const edi::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path.string() + ":1: malformed section header '[run'");
  }
  try {
    edi::read_ini(dir.path() / "missing.ini", "--config", "sweep file");
    FAIL();
  } catch (const edi::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "--config " + (dir.path() / "missing.ini").string() + ": cannot open sweep file");
  }
}
