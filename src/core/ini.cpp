#include "edi/core/ini.hpp"

#include <fstream>

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
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
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
    if (item.value.size() >= 2 && item.value.front() == '"' && item.value.back() == '"')
      item.value = item.value.substr(1, item.value.size() - 2);
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace edi
