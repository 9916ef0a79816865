#include "edi/report/aggregate.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/metrics/format.hpp"
#include "edi/metrics/stats.hpp"
#include "edi/version.hpp"

namespace edi::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// One evaluated run.
struct Row {
  fs::path dir;
  std::string name;
  json m;  ///< metrics.json
  std::string method, op, description;
};

double num(const json& j) { return j.is_number() ? j.get<double>() : kNaN; }

/// An interval object {value, lo, hi, n} or null.
struct Iv {
  double v = kNaN, lo = kNaN, hi = kNaN;
};
Iv iv(const json& j) {
  if (!j.is_object()) return {};
  return {num(j.value("value", json())), num(j.value("lo", json())), num(j.value("hi", json()))};
}

std::string f1(double x, int prec = 1) { return metrics::format_number(x, metrics::display(prec)); }
std::string raw(double x) { return metrics::format_number(x, metrics::kCsvNumber); }
std::string show(const Iv& x, int prec = 1) {
  if (std::isnan(x.v)) return "–";
  return f1(x.v, prec) + " [" + f1(x.lo, prec) + ", " + f1(x.hi, prec) + "]";
}

/// An attacker's headline risk: top-1 (or rank-1) on all images, else on the test split.
Iv attacker_risk(const json& a) {
  if (!a.value("available", false)) return {};
  const json t = a.value("top1", json::object());
  if (t.contains("all")) return iv(t["all"]);
  return iv(t.value("test", json()));
}

const json* find_attacker(const json& m, const std::string& name) {
  if (!m.contains("privacy") || !m["privacy"].contains("attackers")) return nullptr;
  for (const auto& a : m["privacy"]["attackers"])
    if (a.value("name", "") == name) return &a;
  return nullptr;
}
const json* find_task(const json& m, const std::string& task) {
  if (!m.contains("utility")) return nullptr;
  for (const auto& u : m["utility"])
    if (u.value("task", "") == task) return &u;
  return nullptr;
}

/// The risk used for matching (steering top-1, or an attacker's).
Iv match_risk(const Row& r, const std::string& which) {
  if (which == "steering") return iv(r.m["privacy"]["steering"]["top1"]["all"]);
  const json* a = find_attacker(r.m, which);
  return a ? attacker_risk(*a) : Iv{};
}

std::string now_utc() {
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return date;
}

std::string tex_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '_' || c == '%' || c == '&' || c == '#' || c == '$' || c == '{' || c == '}') o += '\\';
    if (c == '~') {
      o += "\\textasciitilde{}";
      continue;
    }
    o += c;
  }
  return o;
}

/// Per-image utility labels and predictions of one task, by image id.
struct TaskPreds {
  std::map<std::string, std::pair<int, int>> by_id;  ///< id → (label, prediction)
};
TaskPreds read_task_preds(const fs::path& dir, const std::string& task) {
  TaskPreds t;
  const fs::path p = dir / "metrics-images.csv";
  if (!fs::is_regular_file(p)) return t;
  const CsvTable csv = parse_csv(read_file(p), p.string());
  const int ci = csv_column(csv, "id"), cl = csv_column(csv, task + "_label"), cp = csv_column(csv, task + "_pred");
  if (ci < 0 || cl < 0 || cp < 0) return t;
  for (const auto& row : csv.rows) {
    const std::string& l = row[static_cast<std::size_t>(cl)];
    if (l.empty() || l == "-1") continue;
    t.by_id[row[static_cast<std::size_t>(ci)]] = {std::stoi(l), std::stoi(row[static_cast<std::size_t>(cp)])};
  }
  return t;
}

}  // namespace

RunStatus classify_run(const fs::path& dir) {
  RunStatus s;
  s.dir = dir;
  if (!fs::is_directory(dir)) {
    s.state = "missing";
    s.reason = "no such directory";
    return s;
  }
  for (const char* marker : {"error.txt", "error.json", "FAILED"}) {
    if (fs::exists(dir / marker)) {
      s.state = "failed";
      std::string text;
      try {
        text = read_file(dir / marker);
      } catch (const Error&) {
      }
      const auto nl = text.find('\n');
      text = text.substr(0, nl);
      s.reason = std::string(marker) + (text.empty() ? "" : ": " + text.substr(0, 200));
      return s;
    }
  }
  if (fs::is_regular_file(dir / "metrics.json")) {
    const json m = json::parse(read_file(dir / "metrics.json"), nullptr, false);
    if (m.is_discarded() || m.value("format", "") != "edi-anon-metrics") {
      s.state = "failed";
      s.reason = "metrics.json is not a valid edi-anon metrics file";
      return s;
    }
    s.state = "ok";
    return s;
  }
  if (!fs::is_regular_file(dir / "summary.json") && !fs::is_regular_file(dir / "results.h5")) {
    s.state = "failed";
    s.reason = "no results (summary.json / results.h5): the run did not finish";
    return s;
  }
  s.state = "not-evaluated";
  s.reason = "finished but no metrics.json (run edi-anon evaluate, or aggregate --evaluate)";
  return s;
}

namespace {

/// Run directories → evaluated rows (evaluating missing metrics when asked); every state is kept in `res.runs`.
std::vector<Row> load_rows(const AggregateConfig& cfg, const std::function<void(const std::string&)>& log, AggregateResult& res) {
  std::vector<Row> rows;
  for (const fs::path& dir : cfg.runs) {
    RunStatus st = classify_run(dir);
    if (st.state == "not-evaluated" && cfg.evaluate_missing) {
      if (log) log("evaluating " + dir.string());
      try {
        metrics::evaluate_run(dir, cfg.eval, log);
        st = classify_run(dir);
      } catch (const std::exception& e) {
        st.state = "failed";
        st.reason = std::string("evaluate: ") + e.what();
      }
    }
    if (st.state == "ok") {
      Row r;
      r.dir = dir;
      r.name = fs::absolute(dir).lexically_normal().filename().string();
      if (r.name.empty()) r.name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
      r.m = json::parse(read_file(dir / "metrics.json"));
      r.method = r.m["run"].value("method", "?");
      r.op = r.m["run"].value("operator", "?");
      r.description = r.m["run"].value("description", "");
      rows.push_back(std::move(r));
    }
    res.runs.push_back(st);
  }
  return rows;
}

/// Attackers and tasks seen in any run (first-seen order), manifests and code versions.
struct Columns {
  std::vector<std::string> attackers, tasks;
  std::set<std::string> manifests, versions;
};
Columns collect_columns(const std::vector<Row>& rows) {
  Columns c;
  for (const auto& r : rows) {
    for (const auto& a : r.m["privacy"].value("attackers", json::array())) {
      const std::string n = a.value("name", "");
      if (a.value("steered", false)) continue;
      if (std::find(c.attackers.begin(), c.attackers.end(), n) == c.attackers.end()) c.attackers.push_back(n);
    }
    for (const auto& u : r.m.value("utility", json::array())) {
      const std::string t = u.value("task", "");
      if (std::find(c.tasks.begin(), c.tasks.end(), t) == c.tasks.end()) c.tasks.push_back(t);
    }
    c.manifests.insert(r.m["run"].value("manifest_hash", ""));
    c.versions.insert(r.m.value("code_version", ""));
  }
  return c;
}

/// Context shared by every file: as JSON and as lines.
struct Context {
  json j;
  std::vector<std::string> lines;
};
std::string joined(const std::set<std::string>& xs) {
  std::string o;
  for (const auto& x : xs) o += (o.empty() ? "" : ", ") + x;
  return o;
}
Context make_context(const AggregateConfig& cfg, const std::vector<Row>& rows, const Columns& cols) {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  const std::size_t n_ok = rows.size();
  Context c;
  c.j = {{"date", now_utc()},
         {"host", host},
         {"code_version", std::string(version()) + " (" + git_describe() + ")"},
         {"run_code_versions", cols.versions},
         {"manifest_hashes", cols.manifests},
         {"runs", cfg.runs.size()},
         {"runs_ok", n_ok},
         {"runs_not_ok", cfg.runs.size() - n_ok},
         {"risk_unit", "% of images re-identified (top-1 unless noted), 95% percentile-bootstrap interval over images"},
         {"random_guess_percent", rows.empty() ? json(nullptr) : rows.front().m["random_guess_percent"]["top1"]}};
  c.lines = {"edi-anon aggregate", "date: " + c.j["date"].get<std::string>(), std::string("host: ") + host,
             "code version: " + c.j["code_version"].get<std::string>()};
  c.lines.push_back("run code versions: " + joined(cols.versions));
  c.lines.push_back("data manifest sha256: " + joined(cols.manifests));
  c.lines.push_back("runs: " + std::to_string(cfg.runs.size()) + " given, " + std::to_string(n_ok) + " evaluated, " +
                    std::to_string(cfg.runs.size() - n_ok) + " missing/failed/not evaluated (listed below)");
  if (!rows.empty())
    c.lines.push_back("random-guess risk: " + f1(rows.front().m["random_guess_percent"]["top1"].get<double>(), 2) + " % (1/" +
                      std::to_string(rows.front().m["identities"].get<int>()) + " identities)");
  c.lines.push_back("risks and utility in %, value [95% bootstrap interval]");
  return c;
}

/// A table as display strings, as CSV numbers, and as JSON rows.
struct Table {
  std::vector<std::string> head, csv_head;
  std::vector<std::vector<std::string>> rows, csv_rows;
  json j = json::array();
};

void runs_table_head(Table& t, const Columns& cols) {
  t.head = {"run", "method", "operator", "parameters", "passes", "images", "steering top-1", "steering top-5"};
  t.csv_head = {"run", "dir", "method", "operator", "parameters", "passes", "images",
                "steering_top1", "steering_top1_lo", "steering_top1_hi", "steering_top5", "steering_top5_lo", "steering_top5_hi"};
  for (const auto& a : cols.attackers) {
    t.head.push_back(a + " top-1");
    for (const char* s : {"", "_lo", "_hi"}) t.csv_head.push_back(a + "_top1" + s);
  }
  for (const auto& tk : cols.tasks) {
    t.head.push_back(tk + " acc");
    t.head.push_back(tk + " macro-F1");
    for (const char* s : {"", "_lo", "_hi"}) t.csv_head.push_back(tk + "_accuracy" + s);
    for (const char* s : {"", "_lo", "_hi"}) t.csv_head.push_back(tk + "_macro_f1" + s);
  }
  for (const char* h : {"PSNR dB", "SSIM", "changed %", "seconds"}) t.head.push_back(h);
  for (const char* h : {"psnr_db", "psnr_lo", "psnr_hi", "ssim", "ssim_lo", "ssim_hi", "changed_percent", "seconds"}) t.csv_head.push_back(h);
}

/// One run's cells for the attackers and utility tasks.
void runs_table_cells(const Row& r, const Columns& cols, std::vector<std::string>& t, std::vector<std::string>& c, json& jr) {
  const json& m = r.m;
  for (const auto& a : cols.attackers) {
    const json* aj = find_attacker(m, a);
    Iv x = aj ? attacker_risk(*aj) : Iv{};
    if (aj && aj->value("steered", false)) x = Iv{};
    std::string cell = show(x);
    if (a == "adaptive" && !std::isnan(x.v)) cell += " (test)";
    t.push_back(aj && !aj->value("available", false) ? "n/a" : cell);
    c.push_back(raw(x.v)), c.push_back(raw(x.lo)), c.push_back(raw(x.hi));
    jr["attackers"][a] = aj ? *aj : json(nullptr);
  }
  for (const auto& tk : cols.tasks) {
    const json* u = find_task(m, tk);
    Iv acc, mf;
    if (u && u->value("labels", false)) acc = iv((*u)["accuracy"]), mf = iv((*u)["macro_f1"]);
    // Without labels the display shows what was measured instead: agreement
    // with the prediction on the original, or the MAE of a regression head.
    std::string acc_cell = show(acc);
    if (u && !u->value("labels", false) && u->contains("agreement_with_original"))
      acc_cell = show(iv((*u)["agreement_with_original"])) + " agree";
    else if (u && !u->value("labels", false) && u->contains("mae_vs_original"))
      acc_cell = show(iv((*u)["mae_vs_original"])) + " MAE";
    t.push_back(acc_cell);
    t.push_back(show(mf));
    for (const Iv& x : {acc, mf}) c.push_back(raw(x.v)), c.push_back(raw(x.lo)), c.push_back(raw(x.hi));
    jr["utility"][tk] = u ? *u : json(nullptr);
  }
}

Table runs_table(const std::vector<Row>& rows, const Columns& cols) {
  Table tb;
  runs_table_head(tb, cols);
  for (const auto& r : rows) {
    const json& m = r.m;
    const std::string dir = fs::absolute(r.dir).lexically_normal().string();
    const Iv s1 = iv(m["privacy"]["steering"]["top1"]["all"]), s5 = iv(m["privacy"]["steering"]["top5"]["all"]);
    const std::string passes = std::to_string(m["run"].value("passes_run", 0)), images = std::to_string(m.value("images", 0));
    std::vector<std::string> t = {r.name, r.method, r.op, r.description, passes, images, show(s1), show(s5)};
    std::vector<std::string> c = {r.name, dir, r.method, r.op, r.description, passes, images,
                                  raw(s1.v), raw(s1.lo), raw(s1.hi), raw(s5.v), raw(s5.lo), raw(s5.hi)};
    json jr = {{"run", r.name}, {"dir", dir}, {"method", r.method}, {"operator", r.op},
               {"parameters", r.description}, {"passes", m["run"].value("passes_run", 0)}, {"images", m.value("images", 0)},
               {"steering_top1", m["privacy"]["steering"]["top1"]["all"]}, {"steering_top5", m["privacy"]["steering"]["top5"]["all"]},
               {"attackers", json::object()}, {"utility", json::object()}};
    runs_table_cells(r, cols, t, c, jr);
    const Iv ps = iv(m["quality"]["psnr_db"]), ss = iv(m["quality"]["ssim"]), ch = iv(m["quality"]["changed_share_percent"]);
    const double secs = m["run"].value("seconds", 0.0);
    t.insert(t.end(), {show(ps), show(ss, 3), f1(ch.v), f1(secs)});
    for (double x : {ps.v, ps.lo, ps.hi, ss.v, ss.lo, ss.hi, ch.v, secs}) c.push_back(raw(x));
    jr["quality"] = m["quality"];
    jr["seconds"] = secs;
    tb.rows.push_back(t);
    tb.csv_rows.push_back(c);
    tb.j.push_back(jr);
  }
  return tb;
}

/// Paired bootstrap of the macro-F1 difference (EDI − baseline) over the images both runs labelled.
metrics::Interval paired_f1_difference(const Row& b, const Row& e, const json& ub, const json& ue, const std::string& task,
                                       const metrics::BootstrapSpec& spec, std::size_t& paired) {
  metrics::Interval diff;
  diff.value = diff.lo = diff.hi = kNaN;
  const TaskPreds pb = read_task_preds(b.dir, task), pe = read_task_preds(e.dir, task);
  std::vector<int> truth, predb, prede;
  for (const auto& [id, lp] : pb.by_id) {
    const auto it = pe.by_id.find(id);
    if (it == pe.by_id.end() || it->second.first != lp.first) continue;
    truth.push_back(lp.first);
    predb.push_back(lp.second);
    prede.push_back(it->second.second);
  }
  paired = truth.size();
  const int C = static_cast<int>(std::max(ub["classes"].size(), ue["classes"].size()));
  if (paired > 0 && C > 0)
    diff = metrics::bootstrap(
        paired,
        [&](const std::vector<std::size_t>& idx) {
          return 100.0 * (metrics::classification_scores(truth, prede, C, idx).macro_f1 -
                          metrics::classification_scores(truth, predb, C, idx).macro_f1);
        },
        spec, "matched/" + b.name + "/" + e.name + "/" + task);
  return diff;
}

Iv labelled_f1(const Row& r, const std::string& task) {
  const json* u = task.empty() ? nullptr : find_task(r.m, task);
  return u && u->value("labels", false) ? iv((*u)["macro_f1"]) : Iv{};
}

/// The EDI run of the baseline's operator with risk ≤ the baseline's and the highest labelled macro-F1.
const Row* best_edi_for(const Row& b, const std::vector<Row>& rows, const AggregateConfig& cfg, const std::string& task) {
  const Iv rb = match_risk(b, cfg.match_risk);
  const Row* best = nullptr;
  double best_u = -1;
  for (const auto& e : rows) {
    if (e.method != "edi" || e.op != b.op) continue;
    const Iv re = match_risk(e, cfg.match_risk);
    if (std::isnan(re.v) || std::isnan(rb.v) || re.v > rb.v) continue;
    const double u = labelled_f1(e, task).v;
    const double key = std::isnan(u) ? -0.5 : u;
    if (!best || key > best_u) best = &e, best_u = key;
  }
  return best;
}

/// One matched-table row: (display line, JSON).
std::pair<std::vector<std::string>, json> matched_row(const Row& b, const std::vector<Row>& rows, const AggregateConfig& cfg,
                                                      const std::string& task) {
  const Iv rb = match_risk(b, cfg.match_risk);
  const Iv fb = labelled_f1(b, task);
  const Row* best = best_edi_for(b, rows, cfg, task);
  json mj = {{"baseline", b.name}, {"operator", b.op}, {"baseline_parameters", b.description}, {"baseline_risk", rb.v},
             {"risk", cfg.match_risk}, {"task", task}};
  std::vector<std::string> line = {b.name, b.op, b.description, f1(rb.v)};
  if (!best) {
    mj["edi"] = nullptr;
    mj["reason"] = "no evaluated EDI run of operator " + b.op + " with " + cfg.match_risk + " risk <= " + f1(rb.v) + " %";
    const std::string dash = "–";
    line.insert(line.end(), {dash, dash, dash, dash, f1(fb.v), dash, mj["reason"].get<std::string>(), "0"});
  } else {
    const Iv re = match_risk(*best, cfg.match_risk);
    const json* ub = task.empty() ? nullptr : find_task(b.m, task);
    const json* ue = task.empty() ? nullptr : find_task(best->m, task);
    const Iv fe = labelled_f1(*best, task);
    metrics::Interval diff;
    diff.value = diff.lo = diff.hi = kNaN;
    std::size_t paired = 0;
    if (ub && ue) diff = paired_f1_difference(b, *best, *ub, *ue, task, cfg.bootstrap, paired);
    const int passes = best->m["run"].value("passes_run", 0);
    mj["edi"] = best->name;
    mj["edi_parameters"] = best->description;
    mj["edi_risk"] = re.v;
    mj["edi_passes"] = passes;
    mj["baseline_macro_f1"] = fb.v;
    mj["edi_macro_f1"] = fe.v;
    mj["difference"] = {{"value", diff.value}, {"lo", diff.lo}, {"hi", diff.hi}, {"paired_images", paired}};
    line.insert(line.end(), {best->name, best->description, f1(re.v), std::to_string(passes), f1(fb.v), f1(fe.v),
                             paired ? show({diff.value, diff.lo, diff.hi}) : "– (no paired labelled images)", std::to_string(paired)});
  }
  for (auto& v : mj.items())
    if (v.value().is_number_float() && std::isnan(v.value().get<double>())) v.value() = nullptr;
  return {line, mj};
}

Table matched_table(const std::vector<Row>& rows, const AggregateConfig& cfg, const std::string& task) {
  Table t;
  t.head = {"baseline run", "operator", "baseline parameters", "baseline risk", "EDI run", "EDI parameters",
            "EDI risk", "EDI passes", "baseline " + task + " macro-F1", "EDI " + task + " macro-F1",
            "difference (EDI − baseline)", "paired images"};
  for (const auto& b : rows) {
    if (b.method != "conventional") continue;
    auto [line, mj] = matched_row(b, rows, cfg, task);
    t.rows.push_back(line);
    t.j.push_back(mj);
  }
  return t;
}

std::string default_task(const std::vector<Row>& rows, const std::string& given) {
  std::string task = given;
  if (task.empty())
    for (const auto& r : rows)
      for (const auto& u : r.m.value("utility", json::array()))
        if (task.empty() && u.value("labels", false)) task = u.value("task", "");
  return task;
}

/// Everything the writers need.
struct Tables {
  Context ctx;
  Table runs, matched;
  std::string task;
  std::vector<RunStatus> bad;
};

void write_csvs(const AggregateConfig& cfg, const Tables& t) {
  std::string out;
  for (const auto& l : t.ctx.lines) out += "# " + l + "\n";
  for (const auto& s : t.bad) out += "# NOT INCLUDED (" + s.state + "): " + s.dir.string() + ": " + s.reason + "\n";
  out += csv_line(t.runs.csv_head);
  for (const auto& r : t.runs.csv_rows) out += csv_line(r);
  write_file_atomic(cfg.out / "aggregate.csv", out);
  std::string m;
  for (const auto& l : t.ctx.lines) m += "# " + l + "\n";
  m += "# matched by " + cfg.match_risk + " risk; utility task " + t.task + "\n";
  m += csv_line(t.matched.head);
  for (const auto& r : t.matched.rows) m += csv_line(r);
  write_file_atomic(cfg.out / "matched.csv", m);
}

std::string md_table(const std::vector<std::string>& h, const std::vector<std::vector<std::string>>& rs) {
  auto cell = [](const std::string& s) {
    std::string o;
    for (char ch : s) o += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return o;
  };
  std::string o = "|";
  for (const auto& x : h) o += " " + cell(x) + " |";
  o += "\n|";
  for (std::size_t i = 0; i < h.size(); ++i) o += "---|";
  o += "\n";
  for (const auto& r : rs) {
    o += "|";
    for (const auto& x : r) o += " " + cell(x) + " |";
    o += "\n";
  }
  return o;
}

std::string markdown(const AggregateConfig& cfg, const Tables& t) {
  std::string md = "# EDI-Anon aggregate\n\n";
  for (std::size_t i = 1; i < t.ctx.lines.size(); ++i) md += "- " + t.ctx.lines[i] + "\n";
  md += "\n## Runs\n\n" + md_table(t.runs.head, t.runs.rows);
  md += "\nIndependent attackers never steered the run; `adaptive` is trained on the anonymized train split and tested on the "
        "anonymized test split. Steering risk is the authors' protocol (the model that steered the perturbation).\n";
  md += "\n## Matched privacy (" + cfg.match_risk + " risk, " + (t.task.empty() ? std::string("no utility task") : t.task + " macro-F1") +
        ")\n\n";
  md += t.matched.rows.empty() ? std::string("No conventional baseline among the evaluated runs.\n") : md_table(t.matched.head, t.matched.rows);
  md += "\n## Missing or failed runs\n\n";
  if (t.bad.empty()) md += "None.\n";
  for (const auto& s : t.bad) md += "- `" + s.dir.string() + "`: **" + s.state + "**: " + s.reason + "\n";
  return md;
}

std::string tex_table(const std::vector<std::string>& h, const std::vector<std::vector<std::string>>& rs, const std::string& caption) {
  std::string o = "\\begin{table}[t]\n\\centering\\scriptsize\n\\caption{" + tex_escape(caption) + "}\n\\begin{tabular}{";
  for (std::size_t i = 0; i < h.size(); ++i) o += i < 4 ? "l" : "r";
  o += "}\n\\hline\n";
  for (std::size_t i = 0; i < h.size(); ++i) o += (i ? " & " : "") + tex_escape(h[i]);
  o += " \\\\\n\\hline\n";
  for (const auto& r : rs) {
    for (std::size_t i = 0; i < r.size(); ++i) o += (i ? " & " : "") + tex_escape(r[i]);
    o += " \\\\\n";
  }
  o += "\\hline\n\\end{tabular}\n\\end{table}\n";
  return o;
}

std::string latex(const AggregateConfig& cfg, const Tables& t) {
  std::string tex;
  for (const auto& l : t.ctx.lines) tex += "% " + l + "\n";
  for (const auto& s : t.bad) tex += "% NOT INCLUDED (" + s.state + "): " + s.dir.string() + ": " + s.reason + "\n";
  tex += tex_table(t.runs.head, t.runs.rows, "Privacy (re-identification risk, %), utility (%) and quality per run; 95% bootstrap intervals.");
  if (!t.matched.rows.empty())
    tex += "\n" + tex_table(t.matched.head, t.matched.rows,
                            "Matched privacy: EDI vs conventional baselines at equal or lower " + cfg.match_risk + " risk.");
  return tex;
}

std::string aggregate_json(const AggregateConfig& cfg, const Tables& t) {
  json jb = json::array();
  for (const auto& s : t.bad) jb.push_back({{"dir", s.dir.string()}, {"state", s.state}, {"reason", s.reason}});
  json all = {{"format", "edi-anon-aggregate"}, {"version", 1}, {"context", t.ctx.j}, {"runs", t.runs.j},
              {"not_included", jb}, {"matched", {{"risk", cfg.match_risk}, {"task", t.task}, {"rows", t.matched.j}}}};
  return all.dump(2) + "\n";
}

}  // namespace

AggregateResult aggregate_runs(const AggregateConfig& cfg, const std::function<void(const std::string&)>& log) {
  if (cfg.runs.empty()) throw ConfigError("aggregate: no run directories given");
  AggregateResult res;
  const std::vector<Row> rows = load_rows(cfg, log, res);
  if (cfg.match_risk != "steering") {
    bool known = rows.empty();
    for (const auto& r : rows) known = known || find_attacker(r.m, cfg.match_risk) != nullptr;
    if (!known) throw ConfigError("--match-risk " + cfg.match_risk + ": no run reports such an attacker (use steering, lbph, faceapi, adaptive or model:<file>)");
  }
  const Columns cols = collect_columns(rows);
  Tables t;
  t.ctx = make_context(cfg, rows, cols);
  t.runs = runs_table(rows, cols);
  t.task = default_task(rows, cfg.match_task);
  t.matched = matched_table(rows, cfg, t.task);
  for (const auto& s : res.runs)
    if (s.state != "ok") t.bad.push_back(s);
  create_private_dir(cfg.out);
  write_csvs(cfg, t);
  res.markdown = markdown(cfg, t);
  write_file_atomic(cfg.out / "aggregate.md", res.markdown);
  write_file_atomic(cfg.out / "aggregate.tex", latex(cfg, t));
  write_file_atomic(cfg.out / "aggregate.json", aggregate_json(cfg, t));
  for (const char* f : {"aggregate.csv", "aggregate.md", "aggregate.tex", "aggregate.json", "matched.csv"})
    res.files.push_back(cfg.out / f);
  return res;
}

}  // namespace edi::report
