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

namespace {
std::string ini_error(const std::filesystem::path& path) {
  try {
    edi::read_ini(path, "--config", "sweep file");
  } catch (const edi::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(Ini, Utf8ByteOrderMarkIsSkipped) {
  TempDir dir;
  const auto path = dir.path() / "bom.ini";
  edi::write_file_atomic(path, "\xEF\xBB\xBF[run]\nk = 1\n");
  const auto items = edi::read_ini(path, "--config", "file");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].kind, IniItem::Kind::kSection);
  EXPECT_EQ(items[0].section, "run");  // not "\xEF\xBB\xBF[run]"
  EXPECT_EQ(items[1].key, "k");
  // Also before a top-level key (the first key would otherwise be "\xEF\xBB\xBFk").
  edi::write_file_atomic(path, "\xEF\xBB\xBFk = 2\n");
  EXPECT_EQ(edi::read_ini(path, "--config", "file").at(0).key, "k");
}

TEST(Ini, Utf16IsRefusedWithOneLine) {
  TempDir dir;
  const auto path = dir.path() / "u16.ini";
  edi::write_file_atomic(path, std::string("\xFF\xFE[\0r\0u\0n\0]\0\n\0", 14));
  EXPECT_EQ(ini_error(path), "--config " + path.string() + ": the sweep file is UTF-16 text (byte-order mark FF FE); save it as UTF-8");
}

TEST(Ini, RepeatedKeyNamesBothLines) {
  TempDir dir;
  const auto path = dir.path() / "dup.ini";
  edi::write_file_atomic(path, "[run]\nk = 5\nq = 90\nk = 9\n");
  EXPECT_EQ(ini_error(path), path.string() + ":4: key 'k' repeated in [run] (first set at line 2; give a list as 'a | b' in one line)");
  // A section opened twice is one section.
  edi::write_file_atomic(path, "[run]\nk = 5\n[grid.a]\nk = 1\n[run]\nk = 9\n");
  EXPECT_EQ(ini_error(path), path.string() + ":6: key 'k' repeated in [run] (first set at line 2; give a list as 'a | b' in one line)");
  // The same key in two sections, or at top level and in a section, is fine.
  edi::write_file_atomic(path, "k = 0\n[run]\nk = 5\n[grid.a]\nk = 1\n");
  EXPECT_EQ(edi::read_ini(path, "--config", "file").size(), 5u);
  edi::write_file_atomic(path, "[run]\n = 5\n");
  EXPECT_EQ(ini_error(path), path.string() + ":2: a key is missing before '=' in '= 5'");
}
