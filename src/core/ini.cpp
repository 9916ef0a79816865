#include "edi/core/ini.hpp"

#include <fstream>
#include <map>
#include <utility>

#include "edi/core/error.hpp"

namespace edi {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(" \t\r") - b + 1));
}

std::vector<IniItem> read_ini(const std::filesystem::path& path, const std::string& option, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw ConfigError(option + " " + path.string() + ": cannot open " + what);
  std::vector<IniItem> items;
  std::string line, section;
  std::map<std::pair<std::string, std::string>, int> first_line;  // (section, key) -> line
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1) {
      // Editors on Windows write a UTF-8 byte-order mark: skip it. UTF-16 is refused.
      if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
      else if (line.rfind("\xFF\xFE", 0) == 0 || line.rfind("\xFE\xFF", 0) == 0)
        throw ConfigError(option + " " + path.string() + ": the " + what + " is UTF-16 text (byte-order mark " +
                          (line[0] == '\xFF' ? "FF FE" : "FE FF") + "); save it as UTF-8");
    }
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    IniItem item;
    item.where = path.string() + ":" + std::to_string(lineno);
    if (line.front() == '[') {
      if (line.back() != ']') throw ConfigError(item.where + ": malformed section header '" + line + "'");
      section = trim(std::string_view(line).substr(1, line.size() - 2));
      item.kind = IniItem::Kind::kSection;
      item.section = section;
      items.push_back(std::move(item));
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw ConfigError(item.where + ": expected 'key = value', found '" + line + "'");
    item.section = section;
    item.key = trim(std::string_view(line).substr(0, eq));
    item.value = trim(std::string_view(line).substr(eq + 1));
    if (item.key.empty()) throw ConfigError(item.where + ": a key is missing before '=' in '" + line + "'");
    const auto [it, fresh] = first_line.emplace(std::make_pair(section, item.key), lineno);
    if (!fresh)
      throw ConfigError(item.where + ": key '" + item.key + "' repeated" + (section.empty() ? "" : " in [" + section + "]") +
                        " (first set at line " + std::to_string(it->second) + "; give a list as 'a | b' in one line)");
    if (item.value.size() >= 2 && item.value.front() == '"' && item.value.back() == '"')
      item.value = item.value.substr(1, item.value.size() - 2);
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace edi
