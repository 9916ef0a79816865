#include "options.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#include "edi/core/error.hpp"
#include "edi/core/ini.hpp"
#include "edi/data/threads.hpp"

namespace edi::cli {

namespace fs = std::filesystem;
using Kind = Domain::Kind;

namespace {

std::string bound(double d) {
  std::ostringstream s;
  s << d;
  return s.str();
}

std::string interval(const Domain& d) {
  const bool whole = d.kind == Domain::Kind::kInteger || d.kind == Domain::Kind::kIntegerOrAuto;
  const auto show = [&](double x) { return whole ? std::to_string(static_cast<long long>(x)) : bound(x); };
  return (d.lo_open ? "(" : "[") + show(d.lo) + ", " + show(d.hi) + (d.hi_open ? ")" : "]");
}

/// The shortest text that reads back as the same double, in plain notation
/// unless the number needs an exponent (90.0 -> "90", not "9e+01").
std::string shortest(double d) {
  if (d == 0) d = 0;  // -0 -> 0
  char buf[40];
  const bool plain = d == 0 || (std::fabs(d) >= 1e-5 && std::fabs(d) < 1e17);
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, d);
    if (std::strtod(buf, nullptr) == d && (!plain || std::strchr(buf, 'e') == nullptr)) break;
  }
  return buf;
}

/// Free text as the config hash sees it: a text that is one number is written
/// one way (integers exactly, any size); anything else as written.
std::string canonical_text(const std::string& v) {
  if (v.empty()) return v;
  const std::size_t i = (v[0] == '+' || v[0] == '-') ? 1 : 0;
  if (i < v.size() && v.find_first_not_of("0123456789", i) == std::string::npos) {
    const std::size_t first = std::min(v.find_first_not_of('0', i), v.size() - 1);
    const std::string digits = v.substr(first);
    return (v[0] == '-' && digits != "0" ? "-" : "") + digits;
  }
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end != v.c_str() + v.size() || !std::isfinite(d)) return v;
  return shortest(d);
}

bool parse_integer(const std::string& v, long long& n) {
  errno = 0;
  char* end = nullptr;
  n = std::strtoll(v.c_str(), &end, 10);
  return !v.empty() && *end == '\0' && errno != ERANGE;
}

/// Parse `text` against `d` into `out`; false when it does not fit.
bool parse_value(const Domain& d, const std::string& text, Value& out) {
  out.text = text;
  switch (d.kind) {
    case Kind::kText:
      out.canonical = canonical_text(text);
      return true;
    case Kind::kFlag:
    case Kind::kBool:
      out.on = text == "true";
      out.canonical = text;
      return text == "true" || text == "false";
    case Kind::kChoice:
      out.canonical = text;
      return std::find(d.choices.begin(), d.choices.end(), text) != d.choices.end();
    case Kind::kIntegerOrAuto:
      out.canonical = text;
      if (text == "auto") return true;
      [[fallthrough]];
    case Kind::kInteger: {
      if (!parse_integer(text, out.integer) || out.integer < d.lo || out.integer > d.hi) return false;
      out.number = static_cast<double>(out.integer);
      out.maybe = out.integer;
      out.canonical = std::to_string(out.integer);
      return true;
    }
    case Kind::kNumberOrAuto:
      out.canonical = text;
      if (text == "auto") return true;
      [[fallthrough]];
    case Kind::kNumber: {
      char* end = nullptr;
      const double x = std::strtod(text.c_str(), &end);
      out.number = x;
      out.canonical = shortest(x);
      return !text.empty() && *end == '\0' && std::isfinite(x) && x >= d.lo && x <= d.hi && !(d.lo_open && x == d.lo) &&
             !(d.hi_open && x == d.hi);
    }
    case Kind::kSeed: {
      errno = 0;
      char* end = nullptr;
      out.seed = std::strtoull(text.c_str(), &end, 10);
      out.canonical = std::to_string(out.seed);
      return !text.empty() && text[0] != '-' && *end == '\0' && errno != ERANGE;
    }
  }
  return false;
}

/// The help line of a row: its text, then the range of a numeric domain.
std::string help_line(const OptionRow& r) {
  std::string h = r.help;
  const Kind k = r.domain.kind;
  const bool or_auto = k == Kind::kIntegerOrAuto || k == Kind::kNumberOrAuto;
  if (k == Kind::kInteger || k == Kind::kNumber || or_auto)
    h += (h.empty() ? "" : ", ") + std::string(or_auto ? "auto or " : "") + "in " + interval(r.domain);
  if (r.is_required) h += " (required)";
  return h;
}

}  // namespace

std::string Domain::what() const {
  switch (kind) {
    case Kind::kInteger: return "an integer in " + interval(*this);
    case Kind::kNumber: return "a number in " + interval(*this);
    case Kind::kSeed: return "an integer in [0, 18446744073709551615]";
    case Kind::kIntegerOrAuto: return "auto or an integer in " + interval(*this);
    case Kind::kNumberOrAuto: return "auto or a number in " + interval(*this);
    case Kind::kBool:
    case Kind::kFlag: return "true or false";
    case Kind::kChoice: {
      std::string list;
      for (std::size_t i = 0; i < choices.size(); ++i) list += (i ? "|" : "") + choices[i];
      return "one of " + list;
    }
    case Kind::kText: return "";
  }
  return "";
}

Domain text() { return {}; }
Domain integer(long long lo, long long hi) {
  Domain d;
  d.kind = Kind::kInteger;
  d.lo = static_cast<double>(lo);
  d.hi = static_cast<double>(hi);
  return d;
}
Domain number(double lo, double hi, bool lo_open, bool hi_open) {
  Domain d;
  d.kind = Kind::kNumber;
  d.lo = lo;
  d.hi = hi;
  d.lo_open = lo_open;
  d.hi_open = hi_open;
  return d;
}
Domain seed() {
  Domain d;
  d.kind = Kind::kSeed;
  return d;
}
Domain one_of(std::vector<std::string> choices) {
  Domain d;
  d.kind = Kind::kChoice;
  d.choices = std::move(choices);
  return d;
}
Domain boolean() {
  Domain d;
  d.kind = Kind::kBool;
  return d;
}
Domain flag() {
  Domain d;
  d.kind = Kind::kFlag;
  return d;
}
Domain integer_or_auto(long long lo, long long hi) {
  Domain d = integer(lo, hi);
  d.kind = Kind::kIntegerOrAuto;
  return d;
}

Domain number_or_auto(double lo, double hi) {
  Domain d = number(lo, hi);
  d.kind = Kind::kNumberOrAuto;
  return d;
}

OptionRow row(std::string name, std::string default_value, std::string help, Domain domain) {
  OptionRow r;
  r.name = std::move(name);
  r.default_value = std::move(default_value);
  r.help = std::move(help);
  r.domain = std::move(domain);
  return r;
}

std::string sweep_refusal(const std::vector<OptionRow>& rows, const std::string& key) {
  for (const auto& r : rows)
    if (r.name == key) return r.sweep_refusal;
  return "";
}

Options::Options(std::string command, std::string usage, std::string summary)
    : command_(std::move(command)), usage_(std::move(usage)), summary_(std::move(summary)), desc_("Options") {
  desc_.add_options()("help,h", "show this help and exit");
}

Options& Options::add(OptionRow r) {
  const std::string help = help_line(r);
  if (r.domain.kind == Kind::kFlag)
    desc_.add_options()(r.name.c_str(), po::bool_switch(), help.c_str());
  else if (r.default_value.empty())
    desc_.add_options()(r.name.c_str(), po::value<std::string>(), help.c_str());
  else
    desc_.add_options()(r.name.c_str(), po::value<std::string>()->default_value(r.default_value), help.c_str());
  rows_.push_back(std::move(r));
  return *this;
}

Options& Options::add_common() {
  add(row("threads", std::to_string(default_thread_count()),
          "LibTorch and OpenCV threads (default: SLURM_CPUS_PER_TASK, else OMP_NUM_THREADS, else 1)", cli::integer(1, 256))
          .operational()
          .not_in_sweeps("is set by the sweep's --threads"));
  add(row("config", "", "INI file with options (top-level keys or a [" + command_ + "] section); flags override it")
          .operational()
          .not_in_sweeps("is not allowed in a sweep file"));
  return *this;
}

std::vector<std::string> Options::arguments(const std::vector<std::pair<std::string, std::string>>& pairs,
                                            const std::function<std::string(std::size_t)>& where) const {
  std::vector<std::string> args;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto& [key, value] = pairs[i];
    const OptionRow* r = find(key);
    if (!r || r->domain.kind != Kind::kFlag) {
      args.push_back("--" + key + "=" + value);
      continue;
    }
    if (value != "true" && value != "false")
      throw ConfigError((where ? where(i) + ": " : std::string()) + key + " = " + value + ": expected true or false");
    if (value == "true") args.push_back("--" + key);
  }
  return args;
}

namespace {

/// Read an INI file into arguments for `command`: top-level keys and keys of
/// section [command]; other sections belong to other commands.
std::vector<std::string> ini_arguments(const fs::path& path, const Options& opt) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<std::string> where;
  for (const IniItem& item : read_ini(path, "--config", "file")) {
    if (item.kind != IniItem::Kind::kKey || (!item.section.empty() && item.section != opt.command())) continue;
    if (item.key == "config" || item.key == "help")
      throw ConfigError(item.where + ": key '" + item.key + "' is not allowed in a config file");
    if (!opt.declared(item.key))
      throw ConfigError(item.where + ": unknown key '" + item.key + "' for 'edi-anon " + opt.command() + "'");
    pairs.emplace_back(item.key, item.value);
    where.push_back(item.where);
  }
  return opt.arguments(pairs, [&](std::size_t i) { return where[i]; });
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
      po::store(po::command_line_parser(ini_arguments(cfg, *this)).options(desc_).run(), vm_);
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
  for (const auto& r : rows_)
    if (r.is_required && !vm_.count(r.name))
      throw ConfigError("--" + r.name + " is required (see edi-anon " + command_ + " --help)");
  return true;
}

const OptionRow* Options::find(const std::string& name) const {
  for (const auto& r : rows_)
    if (r.name == name) return &r;
  return nullptr;
}

bool Options::has(const std::string& name) const {
  const OptionRow* r = find(name);
  if (r && r->domain.kind == Kind::kFlag) return true;  // a switch always has a value
  return vm_.count(name) > 0;
}
bool Options::given(const std::string& name) const { return vm_.count(name) && !vm_[name].defaulted(); }
bool Options::flag_set(const std::string& name) const { return vm_.count(name) && vm_[name].as<bool>(); }

std::string Options::raw(const std::string& name) const {
  if (!vm_.count(name)) throw ConfigError("--" + name + " is required (see edi-anon " + command_ + " --help)");
  return vm_[name].as<std::string>();
}

Value Options::value(const std::string& name) const {
  const OptionRow* r = find(name);
  if (!r) throw Error("internal: option --" + name + " is not declared for 'edi-anon " + command_ + "'");
  Value v;
  if (r->domain.kind == Kind::kFlag) {
    parse_value(r->domain, flag_set(name) ? "true" : "false", v);
    return v;
  }
  const std::string text = raw(name);
  if (!parse_value(r->domain, text, v)) throw ConfigError("--" + name + " " + text + ": expected " + r->domain.what());
  return v;
}

long long Options::integer_in(const std::string& name, long long lo, long long hi) const {
  const std::string v = raw(name);
  long long n = 0;
  if (!parse_integer(v, n) || n < lo || n > hi)
    throw ConfigError("--" + name + " " + v + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return n;
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
  const int t = static_cast<int>(integer("threads"));
  apply_thread_count(t);
  return t;
}

std::vector<std::pair<std::string, std::string>> Options::hashed() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : rows_)
    if (!r.is_operational && has(r.name)) out.emplace_back(r.name, value(r.name).canonical);
  return out;
}

void Options::print_help(std::ostream& os) const {
  os << "Usage: edi-anon " << command_ << " " << usage_ << "\n\n" << summary_ << "\n\n" << desc_ << "\n";
}

}  // namespace edi::cli
