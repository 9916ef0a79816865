#pragma once
/// \file Option rows and their parser, shared by every subcommand (internal to
/// the cli stage).
///
/// Every option is one OptionRow: name, default, help, domain (range or
/// choices), and whether it is operational (left out of the config hash) or
/// may be set in a sweep file. Help text, the Boost program_options parser,
/// validation (with one line naming the option, the value and what is
/// allowed), the config hash's option set and a sweep's key handling all come
/// from the rows. Commands that build a typed config struct bind each row to a
/// setter (Bound, apply_rows); see engine_options.cpp for how to add a row.
/// Sources, by precedence: command line > `--config FILE` (INI: top-level keys
/// or a `[<command>]` section) > defaults.
#include <boost/program_options.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace edi::cli {

namespace po = boost::program_options;

/// The values an option takes.
struct Domain {
  enum class Kind { kText, kInteger, kNumber, kSeed, kChoice, kBool, kFlag, kIntegerOrAuto, kNumberOrAuto };
  Kind kind = Kind::kText;
  double lo = 0, hi = 0;
  bool lo_open = false, hi_open = false;
  std::vector<std::string> choices;
  /// "an integer in [1, 4096]", "one of a|b", ... ("" for free text).
  std::string what() const;
};

Domain text();                                                                  ///< any text (checked by its setter)
Domain integer(long long lo, long long hi);                                     ///< an integer in [lo, hi]
Domain number(double lo, double hi, bool lo_open = false, bool hi_open = false);  ///< a finite number
Domain seed();                                                                  ///< an unsigned 64-bit integer
Domain one_of(std::vector<std::string> choices);                                ///< one of the listed words
Domain boolean();                                                               ///< true or false (sweep settings)
Domain flag();                                                                  ///< a switch without a value
Domain integer_or_auto(long long lo, long long hi);                             ///< "auto" or an integer in [lo, hi]
Domain number_or_auto(double lo, double hi);                                    ///< "auto" or a number in [lo, hi] (text "auto")

/// An option's value, parsed and validated against its row's domain.
struct Value {
  std::string text;         ///< as given (a flag: "true" or "false")
  long long integer = 0;    ///< kInteger, kIntegerOrAuto (not auto)
  double number = 0;        ///< kNumber (also kInteger, as a double)
  std::uint64_t seed = 0;   ///< kSeed
  bool on = false;          ///< kFlag, kBool
  std::optional<long long> maybe;  ///< kIntegerOrAuto: empty = auto
  /// The value as the config hash sees it: one number is written one way
  /// ("90.0", "9e1" and "90" are "90"; integers exactly); text as written.
  std::string canonical;
};

/// One option, declared once.
struct OptionRow {
  std::string name;
  std::string default_value;  ///< "" = no default (optional unless required)
  std::string help;
  Domain domain;
  bool is_required = false;
  bool is_operational = false;  ///< does not change results: not in the config hash
  std::string sweep_refusal;    ///< non-empty: why a sweep file may not set it ("is set by the sweep (...)")

  OptionRow& required() { return is_required = true, *this; }
  OptionRow& operational() { return is_operational = true, *this; }
  OptionRow& not_in_sweeps(std::string why) { return sweep_refusal = std::move(why), *this; }
};

/// A row. The help shown is `help` plus the domain and the default.
OptionRow row(std::string name, std::string default_value, std::string help, Domain domain = text());

/// A row bound to the field it fills in a typed config struct `Config`; the
/// setter gets the validated value and runs only when the option has one.
template <class Config>
struct Bound {
  OptionRow row;
  std::function<void(Config&, const Value&)> set;
};

class Options {
 public:
  /// `usage` is the synopsis after the command name.
  Options(std::string command, std::string usage, std::string summary);

  Options& add(OptionRow row);
  template <class Config>
  Options& add(const std::vector<Bound<Config>>& rows) {
    for (const auto& b : rows) add(b.row);
    return *this;
  }
  /// Shorthands: a text option, a required text option, a switch.
  Options& add(const std::string& name, const std::string& default_value, const std::string& help) {
    return add(row(name, default_value, help));
  }
  Options& required(const std::string& name, const std::string& help) { return add(row(name, "", help).required()); }
  Options& flag(const std::string& name, const std::string& help) { return add(row(name, "", help, cli::flag())); }
  /// Add the options every command has: --threads, --config (and --help).
  Options& add_common();

  /// For commands whose --config is their input file (sweep), not an options INI.
  Options& config_is_input() {
    config_is_input_ = true;
    return *this;
  }

  /// Parse the arguments after the command name. Returns false when --help was
  /// given (the help text has been printed to stdout).
  bool parse(const std::vector<std::string>& args);
  /// `key = value` pairs (an INI section, a sweep entry) as arguments: a switch
  /// takes true or false; `where(i)` names pair i in the error.
  std::vector<std::string> arguments(const std::vector<std::pair<std::string, std::string>>& pairs,
                                     const std::function<std::string(std::size_t)>& where) const;

  const OptionRow* find(const std::string& name) const;  ///< the row, or nullptr
  bool declared(const std::string& name) const { return find(name) != nullptr; }
  bool has(const std::string& name) const;    ///< given or defaulted
  bool given(const std::string& name) const;  ///< given explicitly (flag or config)
  bool flag_set(const std::string& name) const;
  /// The validated value (ConfigError: "--NAME VALUE: expected ...").
  Value value(const std::string& name) const;
  std::string text(const std::string& name) const { return value(name).text; }
  long long integer(const std::string& name) const { return value(name).integer; }
  double number(const std::string& name) const { return value(name).number; }
  std::uint64_t seed(const std::string& name) const { return value(name).seed; }
  std::string choice(const std::string& name) const { return value(name).text; }
  /// An integer in [lo, hi] where the bounds are known only at run time (--index).
  long long integer_in(const std::string& name, long long lo, long long hi) const;
  std::filesystem::path existing_dir(const std::string& name) const;
  std::filesystem::path existing_file(const std::string& name) const;
  /// A path to be created or reused; its parent must exist or be creatable.
  std::filesystem::path output_path(const std::string& name) const;
  /// --threads validated and applied to LibTorch and OpenCV.
  int apply_threads() const;

  /// Call each row's setter with its validated value (rows without a value are skipped).
  template <class Config>
  void apply(const std::vector<Bound<Config>>& rows, Config& config) const {
    for (const auto& b : rows)
      if (b.set && has(b.row.name)) b.set(config, value(b.row.name));
  }

  /// The options that change results (every row with a value that is not
  /// operational), name → canonical value: what the config hash covers.
  std::vector<std::pair<std::string, std::string>> hashed() const;

  const std::string& command() const { return command_; }
  const std::vector<OptionRow>& rows() const { return rows_; }
  void print_help(std::ostream& os) const;

 private:
  std::string raw(const std::string& name) const;
  std::string command_, usage_, summary_;
  po::options_description desc_;
  std::vector<OptionRow> rows_;
  po::variables_map vm_;
  bool config_is_input_ = false;
};

/// Why a sweep file may not set `key` ("" = it may), from `rows`.
std::string sweep_refusal(const std::vector<OptionRow>& rows, const std::string& key);

}  // namespace edi::cli
