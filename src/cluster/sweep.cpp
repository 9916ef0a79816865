#include "edi/cluster/sweep.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/core/ini.hpp"
#include "edi/engine/spec.hpp"

namespace edi::cluster {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

/// Characters safe in a directory name.
std::string safe(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '=' ? c : '_');
  return out;
}

/// A grid name becomes a directory name under --out: refuse anything that is
/// not a plain name (no '/', no "..", no blanks, no leading '.' or '-').
void check_grid_name(const std::string& name, const std::string& where) {
  const auto bad = std::find_if(name.begin(), name.end(), [](char c) {
    return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '=' || c == '-');
  });
  if (name.empty() || bad != name.end() || name[0] == '.' || name[0] == '-' || name.find("..") != std::string::npos ||
      name.size() > 100 || name == "control" || name == "aggregate" || name == "slurm")
    throw ConfigError(where + ": grid name '" + name +
                      "': expected 1-100 letters, digits, '.', '_', '=' or '-', not starting with '.' or '-', without '..' "
                      "and not control, aggregate or slurm (it names a directory under --out), e.g. [grid.edi-blur]");
}

struct Family {
  std::string name;
  std::vector<std::pair<std::string, std::vector<std::string>>> keys;
};

struct ParsedFile {
  std::map<std::string, std::string> settings;
  std::vector<std::pair<std::string, std::string>> common;
  std::vector<Family> families;
};

ParsedFile parse_file(const fs::path& path, const KeyCheck& check) {
  ParsedFile f;
  for (const IniItem& item : read_ini(path, "--config", "sweep file")) {
    const std::string& section = item.section;
    const std::string& where = item.where;
    if (item.kind == IniItem::Kind::kSection) {
      if (section.rfind("grid.", 0) == 0) {
        const std::string name = section.substr(5);
        if (name.empty()) throw ConfigError(where + ": a grid section needs a name, e.g. [grid.edi-blur]");
        check_grid_name(name, where);
        for (const auto& fam : f.families)
          if (fam.name == name) throw ConfigError(where + ": grid '" + name + "' defined twice");
        f.families.push_back({name, {}});
      } else if (section != "sweep" && section != "run") {
        throw ConfigError(where + ": unknown section [" + section + "] (expected [sweep], [run] or [grid.NAME])");
      }
      continue;
    }
    const std::string& key = item.key;
    const std::string& value = item.value;
    if (section.empty()) throw ConfigError(where + ": key '" + key + "' outside a section");
    if (section != "sweep" && check)
      if (const std::string why = check(key); !why.empty()) throw ConfigError(where + ": '" + key + "' " + why);
    if (section == "sweep") {
      f.settings[key] = value;
    } else if (section == "run") {
      f.common.emplace_back(key, value);
    } else {
      auto values = split_bars(value);
      for (const auto& v : values)
        if (v.empty()) throw ConfigError(where + ": key '" + key + "' has an empty list value");
      if (key == "target-risk" && values.size() > 1 && std::count(values.begin(), values.end(), "match"))
        throw ConfigError(where + ": target-risk = match cannot be one value of a list");
      f.families.back().keys.emplace_back(key, std::move(values));
    }
  }
  if (f.families.empty()) throw ConfigError(path.string() + ": no [grid.NAME] section: the sweep has no runs");
  return f;
}

void set_option(SweepEntry& e, const std::string& key, const std::string& value) {
  for (auto it = e.options.begin(); it != e.options.end();) it = it->first == key ? e.options.erase(it) : std::next(it);
  if (!value.empty()) e.options.emplace_back(key, value);
}

std::vector<SweepEntry> expand(const ParsedFile& f) {
  std::vector<SweepEntry> entries;
  for (const auto& fam : f.families) {
    std::vector<std::size_t> idx(fam.keys.size(), 0);
    while (true) {
      SweepEntry e;
      e.name = fam.name;
      e.options = f.common;
      for (std::size_t k = 0; k < fam.keys.size(); ++k) {
        const auto& [key, values] = fam.keys[k];
        set_option(e, key, values[idx[k]]);  // a grid key overrides the same [run] key
        if (values.size() > 1) e.name += "_" + safe(key + "=" + values[idx[k]]);
      }
      entries.push_back(std::move(e));
      // Odometer: the last key varies fastest.
      int k = static_cast<int>(fam.keys.size()) - 1;
      for (; k >= 0; --k) {
        if (++idx[static_cast<std::size_t>(k)] < fam.keys[static_cast<std::size_t>(k)].second.size()) break;
        idx[static_cast<std::size_t>(k)] = 0;
      }
      if (k < 0) break;
    }
  }
  return entries;
}

bool is_mask_family(const std::string& op) { return op == "mask" || op == "eyes" || op == "mouth" || op == "eyes-mouth"; }

/// target-risk = match: find each EDI entry's baselines; drop the key where it
/// means nothing (conventional entries and the control, from [run]).
void link_baselines(std::vector<SweepEntry>& entries, const fs::path& path) {
  for (auto& e : entries) {
    if (e.option("target-risk") != "match") continue;
    if (e.option("method", "edi") != "edi") {
      set_option(e, "target-risk", "");
      continue;
    }
    if (e.option("stop", "image") != "dataset")
      throw ConfigError(path.string() + ": run '" + e.name + "': target-risk = match needs stop = dataset (got stop = " +
                        e.option("stop", "image") + ")");
    const std::string op = e.option("operator", "blur");
    for (const auto& b : entries) {
      if (b.option("method", "edi") != "conventional") continue;
      const std::string bop = b.option("operator", "blur");
      if (bop == op || (op == "mask" && is_mask_family(bop))) e.baselines.push_back(b.name);
    }
    if (e.baselines.empty())
      throw ConfigError(path.string() + ": run '" + e.name + "': target-risk = match but no conventional entry has operator " + op +
                        (op == "mask" ? " (or eyes, mouth, eyes-mouth)" : ""));
  }
}

}  // namespace

std::string SweepEntry::option(const std::string& key, const std::string& fallback) const {
  for (auto it = options.rbegin(); it != options.rend(); ++it)
    if (it->first == key) return it->second;
  return fallback;
}

std::vector<std::string> split_bars(const std::string& v) {
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

SweepPlan read_sweep(const fs::path& path, const KeyCheck& check) {
  ParsedFile f = parse_file(path, check);
  SweepPlan plan;
  plan.settings = f.settings;
  bool control = true;
  if (f.settings.count("control")) {
    const std::string& v = f.settings.at("control");
    if (v != "true" && v != "false")
      throw ConfigError(path.string() + ": [sweep] control = " + v + ": expected true or false");
    control = v == "true";
  }
  std::vector<SweepEntry> entries = expand(f);
  if (control) {
    SweepEntry c;
    c.name = "control";
    c.options = f.common;
    set_option(c, "method", "none");
    entries.insert(entries.begin(), std::move(c));
  }
  link_baselines(entries, path);
  if (std::any_of(entries.begin(), entries.end(), [](const SweepEntry& e) { return e.matched(); }))
    std::stable_partition(entries.begin(), entries.end(), [](const SweepEntry& e) {
      const std::string m = e.option("method", "edi");
      return m == "none" || m == "conventional";
    });
  std::set<std::string> names;
  for (const auto& e : entries)
    if (!names.insert(e.name).second) throw ConfigError(path.string() + ": two runs would both be named '" + e.name + "'");
  plan.entries = std::move(entries);
  return plan;
}

long long entry_index(const SweepPlan& plan, const std::string& name) {
  for (std::size_t i = 0; i < plan.entries.size(); ++i)
    if (plan.entries[i].name == name) return static_cast<long long>(i);
  return -1;
}

bool run_finished(const fs::path& rundir) { return fs::is_regular_file(rundir / "complete.json"); }

double measured_risk(const fs::path& rundir) {
  const fs::path metrics = rundir / "metrics.json";
  if (fs::is_regular_file(metrics)) {
    const json m = json::parse(read_file(metrics), nullptr, false);
    const json::json_pointer ptr("/privacy/steering/top1/in_loop/value");
    if (!m.is_discarded() && m.contains(ptr) && m.at(ptr).is_number()) return m.at(ptr).get<double>();
  }
  const fs::path summary = rundir / "summary.json";
  if (!fs::is_regular_file(summary))
    throw ConfigError(rundir.string() + ": no metrics.json with privacy.steering.top1.in_loop and no summary.json: the risk is unknown");
  const json s = json::parse(read_file(summary), nullptr, false);
  if (s.is_discarded() || !s.contains("final_risk_percent") || !s["final_risk_percent"].is_number())
    throw ConfigError(summary.string() + ": expected a JSON object with final_risk_percent");
  return s["final_risk_percent"].get<double>();
}

double match_target(double risk) {
  const double t = std::ceil(risk * 1e4 - 1e-7) / 1e4;  // 27.2727... -> 27.2728; 10 stays 10
  return std::clamp(t, 0.0, 100.0);
}

SweepEntry resolve_match(const SweepEntry& entry, const std::map<std::string, double>& risks) {
  SweepEntry e = entry;
  std::vector<double> targets;
  std::string matched, list;
  for (const auto& b : entry.baselines) {
    const double t = match_target(risks.at(b));
    targets.push_back(t);
    matched += (matched.empty() ? "" : ",") + b + ":" + engine::target_text(t);
  }
  std::sort(targets.begin(), targets.end(), std::greater<double>());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  for (const double t : targets) list += (list.empty() ? "" : ",") + engine::target_text(t);
  set_option(e, "target-risk", list);
  set_option(e, "matched-to", matched);
  e.baselines.clear();
  return e;
}

}  // namespace edi::cluster
