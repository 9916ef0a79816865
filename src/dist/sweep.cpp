#include "edi/dist/sweep.hpp"

#include <fstream>
#include <set>

#include "edi/core/error.hpp"
#include "edi/core/ini.hpp"

namespace edi::dist {

namespace {

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto bar = v.find('|', start);
    out.push_back(trim(v.substr(start, bar == std::string::npos ? std::string::npos : bar - start)));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return out;
}

/// Characters safe in a directory name.
std::string safe(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '=' ? c : '_');
  return out;
}

struct Family {
  std::string name;
  std::vector<std::pair<std::string, std::vector<std::string>>> keys;
};

}  // namespace

SweepPlan read_sweep(const std::filesystem::path& path) {
  SweepPlan plan;
  std::vector<std::pair<std::string, std::string>> common;
  std::vector<Family> families;
  for (const IniItem& item : read_ini(path, "--config", "sweep file")) {
    const std::string& section = item.section;
    const std::string& where = item.where;
    if (item.kind == IniItem::Kind::kSection) {
      if (section.rfind("grid.", 0) == 0) {
        const std::string name = section.substr(5);
        if (name.empty()) throw ConfigError(where + ": a grid section needs a name, e.g. [grid.edi-blur]");
        for (const auto& f : families)
          if (f.name == name) throw ConfigError(where + ": grid '" + name + "' defined twice");
        families.push_back({name, {}});
      } else if (section != "sweep" && section != "run") {
        throw ConfigError(where + ": unknown section [" + section + "] (expected [sweep], [run] or [grid.NAME])");
      }
      continue;
    }
    const std::string& key = item.key;
    const std::string& value = item.value;
    if (section.empty()) throw ConfigError(where + ": key '" + key + "' outside a section");
    if (key == "out" && section != "sweep")
      throw ConfigError(where + ": 'out' is set per run by the sweep (use --out or [sweep] out)");
    if (section == "sweep") plan.settings[key] = value;
    else if (section == "run") common.emplace_back(key, value);
    else {
      auto values = split_list(value);
      for (const auto& v : values)
        if (v.empty()) throw ConfigError(where + ": key '" + key + "' has an empty list value");
      families.back().keys.emplace_back(key, std::move(values));
    }
  }
  if (families.empty()) throw ConfigError(path.string() + ": no [grid.NAME] section: the sweep has no runs");
  std::set<std::string> names;
  for (const auto& f : families) {
    std::vector<std::size_t> idx(f.keys.size(), 0);
    while (true) {
      SweepEntry e;
      e.name = f.name;
      e.options = common;
      for (std::size_t k = 0; k < f.keys.size(); ++k) {
        const auto& [key, values] = f.keys[k];
        // A grid key overrides the same [run] key.
        for (auto it = e.options.begin(); it != e.options.end();)
          it = it->first == key ? e.options.erase(it) : std::next(it);
        e.options.emplace_back(key, values[idx[k]]);
        if (values.size() > 1) e.name += "_" + safe(key + "=" + values[idx[k]]);
      }
      if (!names.insert(e.name).second) throw ConfigError(path.string() + ": two runs would both be named '" + e.name + "'");
      plan.entries.push_back(std::move(e));
      // Odometer: the last key varies fastest.
      int k = static_cast<int>(f.keys.size()) - 1;
      for (; k >= 0; --k) {
        if (++idx[static_cast<std::size_t>(k)] < f.keys[static_cast<std::size_t>(k)].second.size()) break;
        idx[static_cast<std::size_t>(k)] = 0;
      }
      if (k < 0) break;
    }
  }
  return plan;
}

std::vector<std::string> entry_arguments(const SweepEntry& e) {
  std::vector<std::string> args;
  for (const auto& [k, v] : e.options) {
    if (v == "true" && (k == "jpeg-roundtrip" || k == "no-images" || k == "verbose")) args.push_back("--" + k);
    else if (v == "false" && (k == "jpeg-roundtrip" || k == "no-images" || k == "verbose")) continue;
    else args.push_back("--" + k + "=" + v);
  }
  return args;
}

}  // namespace edi::dist
