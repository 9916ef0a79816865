#include "edi/rundir/read.hpp"

#include <cstdlib>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"

namespace edi::rundir {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json_or(const fs::path& p, json fallback) {
  if (!fs::is_regular_file(p)) return fallback;
  json j = json::parse(read_file(p), nullptr, false);
  return j.is_discarded() ? fallback : j;
}

namespace {

/// Model reference and sha256 from summary.json, then provenance.json, then the options.
void read_model(RunDescription& d, const json& s, const json& provenance) {
  if (s.contains("model") && s["model"].is_object()) {
    d.model_ref = s["model"].value("reference", std::string());
    d.model_sha = s["model"].value("sha256", std::string());
  } else if (s.contains("model") && s["model"].is_string()) {
    d.model_ref = s["model"].get<std::string>();
  }
  if (provenance.contains("model") && provenance["model"].is_object()) {
    if (d.model_ref.empty()) d.model_ref = provenance["model"].value("reference", std::string());
    if (d.model_sha.empty()) d.model_sha = provenance["model"].value("sha256", std::string());
  }
  if (d.model_ref.empty()) d.model_ref = d.options.value("model", std::string());
}

}  // namespace

RunDescription describe_run(const json& summary, const json& provenance) {
  RunDescription d;
  d.options = summary.value("options", json::object());
  if (d.options.empty()) d.options = provenance.value("config", json::object());
  d.method = summary.value("method", provenance.value("method", d.options.value("method", std::string("edi"))));
  // The control perturbs nothing: its operator option (inherited from a sweep's [run]) means nothing.
  d.op = d.method == "none" ? std::string("none") : summary.value("operator", d.options.value("operator", std::string("?")));
  read_model(d, summary, provenance);
  d.passes_run = summary.value("passes_run", -1);
  if (d.passes_run < 0)
    d.passes_run = summary.value("passes", json::array()).empty() ? 0 : summary["passes"].back().value("pass", 0);
  d.run_seconds = summary.value("timing", json::object()).value("seconds", 0.0);
  return d;
}

namespace {

int to_int(const std::string& v, const fs::path& path, const std::string& id, const char* column) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != 0)
    throw DataError(path.string() + ": image " + id + ": column " + column + ": '" + v + "' is not a number");
  return static_cast<int>(x);
}

}  // namespace

std::vector<OutcomeRow> read_outcomes(const fs::path& path, std::initializer_list<const char*> required) {
  const CsvTable t = parse_csv(read_file(path), path.string());
  const auto col = [&](const char* name, bool needed) {
    const int c = csv_column(t, name);
    if (c < 0 && needed) throw DataError(path.string() + ": no column '" + name + "'");
    return c;
  };
  for (const char* r : required) col(r, true);
  const int c_id = col("id", true), c_status = col("status", false), c_stop = col("stop_pass", false);
  const int c_rank = col("final_true_rank", false), c_ident = col("identified", false), c_changed = col("changed_share", false);
  std::vector<OutcomeRow> rows;
  for (const auto& row : t.rows) {
    const auto cell = [&](int c) -> const std::string& { return row[static_cast<std::size_t>(c)]; };
    OutcomeRow r;
    r.id = cell(c_id);
    if (c_status >= 0) r.status = cell(c_status);
    if (c_stop >= 0) r.stop_pass = to_int(cell(c_stop), path, r.id, "stop_pass");
    if (c_rank >= 0) r.final_true_rank = to_int(cell(c_rank), path, r.id, "final_true_rank");
    r.identified = c_ident >= 0 && cell(c_ident) == "1";
    if (c_changed >= 0 && !cell(c_changed).empty()) {
      char* end = nullptr;
      const double v = std::strtod(cell(c_changed).c_str(), &end);
      if (*end != 0) throw DataError(path.string() + ": image " + r.id + ": column changed_share: '" + cell(c_changed) + "' is not a number");
      r.changed_share = v;
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace edi::rundir
