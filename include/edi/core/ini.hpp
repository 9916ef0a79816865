#pragma once
/// \file INI files as `--config` and sweep files use them: `[section]`
/// headers, `key = value` lines, '#' or ';' comment lines, blanks around
/// names and values trimmed, a value in double quotes unquoted.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace edi {

struct IniItem {
  enum class Kind { kSection, kKey };
  Kind kind = Kind::kKey;
  std::string section;  ///< the section (for kSection: the one it opens; "" before any)
  std::string key, value;
  std::string where;    ///< "FILE:LINE", for error messages
};

/// Read `path` in file order. A leading UTF-8 byte-order mark is skipped.
/// Throws ConfigError naming FILE:LINE on a malformed section header, a line
/// without '=' or without a key, a key repeated in one section (also when the
/// section is opened twice), "FILE: ... UTF-16" for a UTF-16 file, and
/// "<option> FILE: cannot open <what>" when it cannot be read.
std::vector<IniItem> read_ini(const std::filesystem::path& path, const std::string& option, const std::string& what);

/// `s` without leading and trailing blanks (space, tab, CR).
std::string trim(std::string_view s);

}  // namespace edi
