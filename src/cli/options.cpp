#include "options.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "edi/core/error.hpp"
#include "edi/core/ini.hpp"
#include "edi/data/threads.hpp"

namespace edi::cli {

namespace fs = std::filesystem;

Options::Options(std::string command, std::string usage, std::string summary)
    : command_(std::move(command)), usage_(std::move(usage)), summary_(std::move(summary)), desc_("Options") {
  desc_.add_options()("help,h", "show this help and exit");
}

Options& Options::add(const std::string& name, const std::string& default_value, const std::string& help) {
  if (default_value.empty())
    desc_.add_options()(name.c_str(), po::value<std::string>(), help.c_str());
  else
    desc_.add_options()(name.c_str(), po::value<std::string>()->default_value(default_value), help.c_str());
  names_.push_back(name);
  return *this;
}

Options& Options::required(const std::string& name, const std::string& help) {
  desc_.add_options()(name.c_str(), po::value<std::string>(), (help + " (required)").c_str());
  required_.push_back(name);
  names_.push_back(name);
  return *this;
}

Options& Options::flag(const std::string& name, const std::string& help) {
  desc_.add_options()(name.c_str(), po::bool_switch(), help.c_str());
  names_.push_back(name);
  return *this;
}

Options& Options::add_common() {
  add("threads", std::to_string(default_thread_count()),
      "LibTorch and OpenCV threads (default: SLURM_CPUS_PER_TASK, else OMP_NUM_THREADS, else 1)");
  add("config", "", "INI file with options (top-level keys or a [" + command_ + "] section); flags override it");
  return *this;
}

namespace {

/// Read an INI file into --key=value arguments for `command`: top-level keys
/// and keys of section [command]; other sections belong to other commands.
std::vector<std::string> ini_arguments(const fs::path& path, const std::string& command,
                                       const std::vector<std::string>& known) {
  std::vector<std::string> args;
  for (const IniItem& item : read_ini(path, "--config", "file")) {
    if (item.kind != IniItem::Kind::kKey || (!item.section.empty() && item.section != command)) continue;
    if (item.key == "config" || item.key == "help")
      throw ConfigError(item.where + ": key '" + item.key + "' is not allowed in a config file");
    if (std::find(known.begin(), known.end(), item.key) == known.end())
      throw ConfigError(item.where + ": unknown key '" + item.key + "' for 'edi-anon " + command + "'");
    args.push_back("--" + item.key + "=" + item.value);
  }
  return args;
}

}  // namespace

bool Options::parse(const std::vector<std::string>& args) {
  try {
    po::store(po::command_line_parser(args).options(desc_).run(), vm_);
    if (vm_.count("help")) {
      print_help(std::cout);
      return false;
    }
    if (!config_is_input_ && vm_.count("config") && !vm_["config"].defaulted()) {
      const fs::path cfg = vm_["config"].as<std::string>();
      // Stored after the command line: po::store keeps the first value, so flags win.
      po::store(po::command_line_parser(ini_arguments(cfg, command_, names_)).options(desc_).run(), vm_);
    }
    po::notify(vm_);
  } catch (const po::unknown_option& e) {
    throw ConfigError("unknown option '" + e.get_option_name() + "' for 'edi-anon " + command_ +
                      "' (see edi-anon " + command_ + " --help)");
  } catch (const po::multiple_occurrences& e) {
    throw ConfigError("option '" + e.get_option_name() + "' given more than once");
  } catch (const po::error& e) {
    throw ConfigError(std::string(e.what()) + " (see edi-anon " + command_ + " --help)");
  }
  for (const auto& name : required_)
    if (!vm_.count(name)) throw ConfigError("--" + name + " is required (see edi-anon " + command_ + " --help)");
  return true;
}

bool Options::declared(const std::string& name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

bool Options::has(const std::string& name) const { return vm_.count(name) > 0; }
bool Options::given(const std::string& name) const { return vm_.count(name) && !vm_[name].defaulted(); }
bool Options::flag_set(const std::string& name) const { return vm_.count(name) && vm_[name].as<bool>(); }

std::string Options::raw(const std::string& name) const {
  if (!vm_.count(name)) throw ConfigError("--" + name + " is required (see edi-anon " + command_ + " --help)");
  return vm_[name].as<std::string>();
}

std::string Options::text(const std::string& name) const { return raw(name); }

long long Options::integer(const std::string& name, long long lo, long long hi) const {
  const std::string v = raw(name);
  const std::string expected = ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  errno = 0;
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE || n < lo || n > hi) throw ConfigError("--" + name + " " + v + expected);
  return n;
}

double Options::number(const std::string& name, double lo, double hi, bool lo_open, bool hi_open) const {
  const std::string v = raw(name);
  auto fmt = [](double d) {
    std::ostringstream s;
    s << d;
    return s.str();
  };
  const std::string expected = ": expected a number in " + std::string(lo_open ? "(" : "[") + fmt(lo) + ", " + fmt(hi) +
                               (hi_open ? ")" : "]");
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(d) || d < lo || d > hi || (lo_open && d == lo) || (hi_open && d == hi))
    throw ConfigError("--" + name + " " + v + expected);
  return d;
}

std::uint64_t Options::seed(const std::string& name) const {
  const std::string v = raw(name);
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end != '\0' || errno == ERANGE)
    throw ConfigError("--" + name + " " + v + ": expected an integer in [0, 18446744073709551615]");
  return n;
}

std::string Options::choice(const std::string& name, const std::vector<std::string>& allowed) const {
  const std::string v = raw(name);
  if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return v;
  std::string list;
  for (std::size_t i = 0; i < allowed.size(); ++i) list += (i ? "|" : "") + allowed[i];
  throw ConfigError("--" + name + " " + v + ": expected one of " + list);
}

fs::path Options::existing_dir(const std::string& name) const {
  const fs::path p = raw(name);
  if (!fs::is_directory(p)) throw ConfigError("--" + name + " " + p.string() + ": expected an existing directory");
  return p;
}

fs::path Options::existing_file(const std::string& name) const {
  const fs::path p = raw(name);
  if (!fs::is_regular_file(p)) throw ConfigError("--" + name + " " + p.string() + ": expected an existing file");
  return p;
}

fs::path Options::output_path(const std::string& name) const {
  const fs::path p = raw(name);
  if (p.empty()) throw ConfigError("--" + name + ": expected a path, got an empty value");
  if (fs::exists(p) && !fs::is_directory(p))
    throw ConfigError("--" + name + " " + p.string() + ": exists and is not a directory");
  return p;
}

int Options::apply_threads() const {
  const int t = static_cast<int>(integer("threads", 1, 256));
  apply_thread_count(t);
  return t;
}

std::vector<std::pair<std::string, std::string>> Options::effective() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& name : names_) {
    if (!vm_.count(name) || name == "config") continue;
    const auto& v = vm_[name];
    if (const auto* s = boost::any_cast<std::string>(&v.value())) out.emplace_back(name, *s);
    else if (const auto* b = boost::any_cast<bool>(&v.value())) out.emplace_back(name, *b ? "true" : "false");
  }
  return out;
}

void Options::print_help(std::ostream& os) const {
  os << "Usage: edi-anon " << command_ << " " << usage_ << "\n\n" << summary_ << "\n\n" << desc_ << "\n";
}

}  // namespace edi::cli
