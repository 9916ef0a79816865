#pragma once
/// \file Option parsing shared by every subcommand (internal to the cli stage).
///
/// Every option is declared once with its default and help text; values are
/// kept as strings and converted by the typed getters below, which validate
/// them and throw ConfigError with one line naming the option, the value and
/// what is allowed. Sources, by precedence: command line > `--config FILE`
/// (INI: top-level keys or a `[<command>]` section) > defaults.
#include <boost/program_options.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace edi::cli {

namespace po = boost::program_options;

class Options {
 public:
  /// `usage` is the synopsis after the command name.
  Options(std::string command, std::string usage, std::string summary);

  /// Declare an option with a default ("" = no default, optional).
  Options& add(const std::string& name, const std::string& default_value, const std::string& help);
  /// Declare a required option (no default).
  Options& required(const std::string& name, const std::string& help);
  /// Declare a boolean switch (no value).
  Options& flag(const std::string& name, const std::string& help);
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

  bool declared(const std::string& name) const;  ///< an option of this command
  bool has(const std::string& name) const;  ///< given or defaulted
  bool given(const std::string& name) const;  ///< given explicitly (flag or config)
  bool flag_set(const std::string& name) const;
  std::string text(const std::string& name) const;
  long long integer(const std::string& name, long long lo, long long hi) const;
  double number(const std::string& name, double lo, double hi, bool lo_open = false, bool hi_open = false) const;
  std::uint64_t seed(const std::string& name) const;
  std::string choice(const std::string& name, const std::vector<std::string>& allowed) const;
  std::filesystem::path existing_dir(const std::string& name) const;
  std::filesystem::path existing_file(const std::string& name) const;
  /// A path to be created or reused; its parent must exist or be creatable.
  std::filesystem::path output_path(const std::string& name) const;
  /// --threads validated and applied to LibTorch and OpenCV.
  int apply_threads() const;

  /// Effective options (name → value) for provenance records.
  std::vector<std::pair<std::string, std::string>> effective() const;

  const std::string& command() const { return command_; }
  void print_help(std::ostream& os) const;

 private:
  std::string raw(const std::string& name) const;
  std::string command_, usage_, summary_;
  po::options_description desc_;
  std::vector<std::string> required_;
  std::vector<std::string> names_;
  po::variables_map vm_;
  bool config_is_input_ = false;
};

}  // namespace edi::cli
