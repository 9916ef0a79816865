// `edi-anon evaluate`, `aggregate` and `export`: metrics and reports.
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "commands.hpp"
#include "edi/core/error.hpp"
#include "edi/metrics/evaluate.hpp"
#include "edi/metrics/format.hpp"
#include "edi/report/aggregate.hpp"
#include "edi/report/export.hpp"
#include "eval_options.hpp"
#include "options.hpp"

namespace edi::cli {

namespace fs = std::filesystem;

namespace {

/// Positional arguments and repeatable options, which Options does not know:
/// positionals are returned; every occurrence of a repeatable option is merged
/// into one comma-separated value. `flags` take no value.
Args normalise(const Args& in, const std::set<std::string>& repeatable, const std::set<std::string>& flags,
               std::vector<std::string>& positional) {
  Args out;
  std::map<std::string, std::string> merged;
  std::vector<std::string> order;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const std::string& a = in[i];
    if (a.rfind("--", 0) != 0) {
      positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (flags.count(name) || name == "help") {
      out.push_back(a);
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= in.size()) throw ConfigError("--" + name + " needs a value");
      value = in[++i];
    }
    if (repeatable.count(name)) {
      if (!merged.count(name)) order.push_back(name);
      merged[name] += (merged[name].empty() ? "" : ",") + value;
      continue;
    }
    out.push_back("--" + name);
    out.push_back(value);
  }
  for (const auto& n : order) {
    out.push_back("--" + n);
    out.push_back(merged[n]);
  }
  return out;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> v;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ','))
    if (!part.empty()) v.push_back(part);
  return v;
}

}  // namespace

// Shared with the [sweep] section of `edi-anon sweep` (eval_options.hpp).
void add_eval_options(Options& opt) {
  opt.add("attacker", "lbph,faceapi,adaptive",
          "independent attackers (repeatable or comma-separated): lbph, faceapi (face-api's dlib ResNet-34 gallery), faceres "
          "(HSE FaceRec gallery: another architecture and training set), adaptive, none, or a second identity model file")
      .add("utility", "", "utility model TASK[/NAME]=MODEL (repeatable), e.g. gender=gender.pt, gender/faceapi=faceapi:age-gender, age=faceapi:age-gender")
      .add("steering", "", "steering model (default: the one summary.json names, checked by sha256)")
      .add("bootstrap", "1000", "identity-cluster bootstrap resamples for the 95% intervals, in [0, 1000000] (0 = Clopper-Pearson for rates, none otherwise)")
      .add("seed", "0", "seed of the bootstrap and of the adaptive attacker")
      .add("adaptive-epochs", "12", "training epochs of the adaptive attacker, in [1, 1000]")
      .add("adaptive-size", "0", "input side in px of the adaptive attacker (the anonymized images are resized to it, "
                                 "antialiased), in [0, 1024] (0 = their own side; 64 trains several times faster at 150 px)")
      .add("batch", "64", "images per forward pass, in [1, 4096]")
      .add("device", "cpu", "cpu or cuda[:i]");
}

metrics::EvalConfig eval_config_from(const Options& opt) {
  metrics::EvalConfig c;
  c.attackers.clear();
  for (const auto& a : split_list(opt.text("attacker")))
    if (a != "none") c.attackers.push_back(a);
  if (opt.has("utility"))
    for (const auto& u : split_list(opt.text("utility"))) c.utility.push_back(metrics::parse_utility_spec(u));
  if (opt.has("steering")) c.steering_model = opt.text("steering");
  c.bootstrap.resamples = static_cast<int>(opt.integer("bootstrap", 0, 1000000));
  c.bootstrap.seed = opt.seed("seed");
  c.adaptive_seed = c.bootstrap.seed;
  c.adaptive_epochs = static_cast<int>(opt.integer("adaptive-epochs", 1, 1000));
  c.adaptive_size = static_cast<int>(opt.integer("adaptive-size", 0, 1024));
  if (c.adaptive_size > 0 && c.adaptive_size < 16)
    throw ConfigError("--adaptive-size " + std::to_string(c.adaptive_size) + ": expected 0 (the images' side) or a side in [16, 1024]");
  c.batch = static_cast<int>(opt.integer("batch", 1, 4096));
  c.device = opt.text("device");
  return c;
}

namespace {

void print_line(const std::string& s) {
  std::printf("  %s\n", s.c_str());
  std::fflush(stdout);
}

std::string show(const metrics::Interval& v) {
  const auto f = [](double x) { return metrics::format_number(x, metrics::display(2)); };
  return f(v.value) + " [" + f(v.lo) + ", " + f(v.hi) + "]";
}

}  // namespace

int cmd_evaluate(const Args& args) {
  Options opt("evaluate", "RUNDIR [--attacker A ...] [--utility TASK=MODEL ...] [--bootstrap N] [--seed S]",
              "Privacy (steering model in_loop/heldout top-1/top-5; independent LBPH, face-api gallery and second-model\n"
              "attackers, each heldout and linkage; an adaptive attacker retrained on the anonymized train split), utility\n"
              "(accuracy, macro-F1, per-class F1 or agreement/MAE) and quality (PSNR, SSIM, changed share, passes to stop) of a\n"
              "finished run (complete.json) and of each snapshot RUNDIR/snapshots/<T>/, with 95% identity-cluster intervals\n"
              "(Clopper-Pearson at 0/100%). Writes metrics.json (schema version 2) and metrics-images.csv in each.");
  add_eval_options(opt);
  opt.add_common();
  std::vector<std::string> pos;
  const Args norm = normalise(args, {"attacker", "utility"}, {}, pos);
  if (!opt.parse(norm)) return 0;
  if (pos.size() != 1) throw ConfigError("evaluate: expected exactly one RUNDIR (got " + std::to_string(pos.size()) + ")");
  const fs::path run = pos[0];
  if (!fs::is_directory(run)) throw ConfigError("RUNDIR " + run.string() + ": no such directory");
  const metrics::EvalConfig c = eval_config_from(opt);
  opt.apply_threads();
  std::printf("evaluate %s\n", run.c_str());
  const metrics::MetricsReport r = metrics::evaluate_run(run, c, print_line);
  std::printf("images %zu, identities %zu, random guess %.2f%%\n", r.images, r.identities, r.random_guess_percent);
  std::printf("steering (in_loop) top-1 %s%%, top-5 %s%% (%s over %zu identities)\n", show(r.steering_top1).c_str(),
              show(r.steering_top5).c_str(), r.steering_top1.method.c_str(), r.steering_top1.n_identities);
  for (const auto& [name, v] : r.attacker_top1)
    std::printf("attacker %-12s heldout top-1 %s%%\n", name.c_str(), show(v).c_str());
  for (const auto& [task, v] : r.utility_macro_f1) std::printf("utility %-8s macro-F1 %s%%\n", task.c_str(), show(v).c_str());
  std::printf("PSNR %s dB, SSIM %s, changed %s%%\n", show(r.psnr).c_str(), show(r.ssim).c_str(), show(r.changed_share).c_str());
  for (const auto& n : r.notes) std::printf("note: %s\n", n.c_str());
  std::printf("wrote %s\n", (run / "metrics.json").c_str());
  for (const auto& snap : r.snapshots) std::printf("wrote %s\n", (snap / "metrics.json").c_str());
  return 0;
}

int cmd_aggregate(const Args& args) {
  Options opt("aggregate", "RUNDIR... --out DIR [--evaluate] [--match-risk steering|ATTACKER] [--match-task TASK]",
              "One table over many run directories (a sweep, a job array) and their snapshots (rows <run>@<T>), control\n"
              "runs first, in CSV (context in aggregate.meta.json), Markdown, LaTeX and JSON, plus two matched-privacy tables\n"
              "(pairs fixed by operator family and target: matched-to, else the EDI run or snapshot closest at or below the\n"
              "baseline's steering risk / strongest attacker's heldout risk). Only runs with complete.json count as finished;\n"
              "missing, failed or unfinished runs are listed, never dropped.");
  opt.required("out", "output directory for aggregate.{csv,md,tex,json} and matched.csv")
      .flag("evaluate", "evaluate finished runs that have no metrics.json yet (with the evaluate options below)")
      .add("match-risk", "steering",
           "attacker of the second matched table: steering = the strongest independent attacker per baseline, or a name (lbph, faceapi, faceres, adaptive, model:FILE)")
      .add("match-task", "", "utility task compared in the matched tables (default: the first labelled classification task, else the first one)");
  add_eval_options(opt);
  opt.add_common();
  std::vector<std::string> pos;
  const Args norm = normalise(args, {"attacker", "utility"}, {"evaluate"}, pos);
  if (!opt.parse(norm)) return 0;
  if (pos.empty()) throw ConfigError("aggregate: expected at least one RUNDIR");
  report::AggregateConfig c;
  for (const auto& p : pos) c.runs.emplace_back(p);
  c.out = opt.output_path("out");
  c.evaluate_missing = opt.flag_set("evaluate");
  c.eval = eval_config_from(opt);
  c.bootstrap = c.eval.bootstrap;
  c.match_risk = opt.text("match-risk");
  if (opt.has("match-task")) c.match_task = opt.text("match-task");
  opt.apply_threads();
  const report::AggregateResult r = report::aggregate_runs(c, print_line);
  std::size_t ok = 0;
  for (const auto& s : r.runs) {
    if (s.state == "ok") ++ok;
    else std::printf("not included: %s: %s: %s\n", s.dir.c_str(), s.state.c_str(), s.reason.c_str());
  }
  std::size_t snaps = 0;
  for (const auto& s : r.snapshots) {
    if (s.state == "ok") ++snaps;
    else std::printf("snapshot not included: %s: %s: %s\n", s.dir.c_str(), s.state.c_str(), s.reason.c_str());
  }
  std::printf("aggregated %zu of %zu runs (+%zu snapshot rows)\n", ok, r.runs.size(), snaps);
  for (const auto& f : r.files) std::printf("wrote %s\n", f.c_str());
  return 0;
}

int cmd_export(const Args& args) {
  Options opt("export", "--run RUNDIR --out DIR [--task TASK,...]",
              "Export the anonymized images of a run as ImageFolder trees, one per attribute task\n"
              "(DIR/<task>/<split>/<class>/<opaque>.png), with opaque names; the name -> image mapping is written to\n"
              "RUNDIR/export-mapping.csv (owner-only). Images never changed by the run are withheld; originals are never copied.");
  opt.required("run", "run directory").required("out", "export directory (absent or empty)").add("task", "", "attribute tasks (default: all)");
  opt.flag("withhold-identified", "leave out images the run left still identified (default: export, count and mark them)");
  opt.add_common();
  if (!opt.parse(args)) return 0;
  report::ExportConfig c;
  c.run = opt.existing_dir("run");
  c.out = opt.output_path("out");
  if (opt.has("task")) c.tasks = split_list(opt.text("task"));
  c.withhold_identified = opt.flag_set("withhold-identified");
  const report::ExportResult r = report::export_run(c);
  std::printf("exported %zu images (%zu files) into %zu trees (", r.exported, r.files, r.tasks.size());
  for (std::size_t i = 0; i < r.tasks.size(); ++i) std::printf("%s%s", i ? ", " : "", r.tasks[i].c_str());
  std::printf(") under %s\nwithheld %zu images identical to their original; %zu unlabelled (image, task) pairs skipped\nmapping: %s (mode 0600)\n",
              c.out.c_str(), r.withheld_unchanged, r.unlabelled, r.mapping.c_str());
  if (c.withhold_identified) std::printf("withheld %zu images the run left still identified (--withhold-identified)\n", r.withheld_identified);
  else if (r.still_identified)
    std::printf("note: %zu exported images are still identified by the steering model (marked in the mapping; "
                "--withhold-identified leaves them out)\n", r.still_identified);
  return 0;
}

}  // namespace edi::cli
