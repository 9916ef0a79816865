// `aggregate --html`: report.html next to the tables, written by analysis/report.py.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "edi/core/error.hpp"
#include "edi/report/aggregate.hpp"

namespace edi::report {

namespace fs = std::filesystem;

namespace {

/// A word for /bin/sh: single-quoted.
std::string sh_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

struct Captured {
  int status = -1;  ///< exit code, or -1 if it could not run / was killed
  std::string output;
};

/// Run a shell command with stdout and stderr captured.
Captured capture(const std::string& command) {
  Captured c;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return c;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) c.output.append(buf.data(), n);
  const int st = pclose(p);
  c.status = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return c;
}

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  const auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

/// Where report.py may be, in order.
std::vector<fs::path> analysis_dirs() {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("EDI_ANALYSIS_DIR"); env && *env) dirs.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back(exe.parent_path().parent_path() / "share" / "edi-anon" / "analysis");
#ifdef EDI_SOURCE_DIR
  dirs.push_back(fs::path(EDI_SOURCE_DIR) / "analysis");
#endif
  return dirs;
}

}  // namespace

namespace {
/// The modules report.py needs that `python` lacks ("" = none); status 127 when `python` does not run.
Captured missing_modules(const std::string& python) {
  return capture(sh_quote(python) +
                 " -c 'import importlib.util as u, sys; m = [n for n in (\"pandas\", \"matplotlib\", \"numpy\") "
                 "if u.find_spec(n) is None]; print(\" \".join(m)); sys.exit(1 if m else 0)'");
}
}  // namespace

HtmlReporter find_html_reporter() {
  HtmlReporter r;
  std::string looked;
  for (const fs::path& d : analysis_dirs()) {
    if (fs::is_regular_file(d / "report.py")) {
      r.script = d / "report.py";
      break;
    }
    looked += (looked.empty() ? "" : ", ") + d.string();
  }
  if (r.script.empty())
    throw ConfigError("--html: analysis/report.py not found (looked in " + looked +
                      "); install with cmake --install, or set EDI_ANALYSIS_DIR to the analysis folder");
  // $EDI_PYTHON alone when set; else python3 on PATH, then Debian's (the analysis scripts' reference).
  const char* env = std::getenv("EDI_PYTHON");
  const std::vector<std::string> candidates =
      env && *env ? std::vector<std::string>{env} : std::vector<std::string>{"python3", "/usr/bin/python3"};
  std::string first_problem;
  for (const std::string& py : candidates) {
    const Captured c = missing_modules(py);
    if (c.status == 0) {
      r.python = py;
      return r;
    }
    if (!first_problem.empty()) continue;
    if (c.status == 127 || c.output.find("not found") != std::string::npos)
      first_problem = py + " not found (install python3, or set EDI_PYTHON to a Python 3 with pandas and matplotlib)";
    else
      first_problem = py + " lacks " + (last_line(c.output).empty() ? std::string("a working interpreter") : last_line(c.output)) +
                      " (Debian: apt-get install python3-pandas python3-matplotlib; or set EDI_PYTHON to a python3 that has them)";
  }
  throw ConfigError("--html: " + first_problem);
}

fs::path write_html_report(const HtmlReporter& reporter, const fs::path& out, const std::function<void(const std::string&)>& log) {
  const fs::path html = out / "report.html";
  if (log) log("report: " + reporter.script.string() + " -> " + html.string());
  const Captured c = capture(sh_quote(reporter.python) + " " + sh_quote(reporter.script.string()) + " --aggregate " +
                             sh_quote((out / "aggregate.json").string()) + " --out " + sh_quote(html.string()));
  if (c.status != 0 || !fs::is_regular_file(html))
    throw IoError(html.string() + ": report.py failed (exit " + std::to_string(c.status) + "): " + last_line(c.output));
  return html;
}

}  // namespace edi::report
