// The evaluation options: one row per option (see engine_options.cpp for how
// to add a row).
#include "eval_options.hpp"

#include "edi/core/error.hpp"
#include "edi/core/progress.hpp"

#include <sstream>

namespace edi::cli {

namespace {

using EvalRow = Bound<metrics::EvalConfig>;

const std::vector<EvalRow>& eval_rows() {
  static const std::vector<EvalRow> rows = {
      {row("attacker", "lbph,faceapi,adaptive",
           "independent attackers (repeatable or comma-separated): lbph, faceapi (face-api's dlib ResNet-34 gallery), "
           "faceres (HSE FaceRec gallery: another architecture and training set), adaptive, none, or a second identity "
           "model file"),
       [](metrics::EvalConfig& c, const Value& v) {
         c.attackers.clear();
         for (const auto& a : split_list(v.text))
           if (a != "none") c.attackers.push_back(a);
       }},
      {row("utility", "", "utility model TASK[/NAME]=MODEL (repeatable), e.g. gender=gender.pt, "
                          "gender/faceapi=faceapi:age-gender, age=faceapi:age-gender"),
       [](metrics::EvalConfig& c, const Value& v) {
         for (const auto& u : split_list(v.text)) c.utility.push_back(metrics::parse_utility_spec(u));
       }},
      {row("steering", "", "steering model (default: the one summary.json names, checked by sha256)"),
       [](metrics::EvalConfig& c, const Value& v) { c.steering_model = v.text; }},
      {row("bootstrap", "1000", "identity-cluster bootstrap resamples for the 95% intervals (0 = Clopper-Pearson for "
                                "rates, none otherwise)", integer(0, 1000000)),
       [](metrics::EvalConfig& c, const Value& v) { c.bootstrap.resamples = static_cast<int>(v.integer); }},
      {row("seed", "0", "seed of the bootstrap and of the adaptive attacker", seed()),
       [](metrics::EvalConfig& c, const Value& v) { c.bootstrap.seed = c.adaptive_seed = v.seed; }},
      {row("adaptive-epochs", "12", "training epochs of the adaptive attacker", integer(1, 1000)),
       [](metrics::EvalConfig& c, const Value& v) { c.adaptive_epochs = static_cast<int>(v.integer); }},
      {row("adaptive-size", "0", "input side in px of the adaptive attacker (the anonymized images are resized to it, "
                                 "antialiased; 0 = their own side; 64 trains several times faster at 150 px)",
           integer(0, 1024)),
       [](metrics::EvalConfig& c, const Value& v) {
         if (v.integer > 0 && v.integer < 16)
           throw ConfigError("--adaptive-size " + v.text + ": expected 0 (the images' side) or a side in [16, 1024]");
         c.adaptive_size = static_cast<int>(v.integer);
       }},
      {row("batch", "auto", "images per forward pass (auto: as many as fit 2^18 input pixels at the model's input side, 1 to 64)",
           integer_or_auto(1, 4096)),
       [](metrics::EvalConfig& c, const Value& v) { c.batch = v.maybe ? static_cast<int>(*v.maybe) : 0; }},
      {row("device", "cpu", "cpu or cuda[:i]"), [](metrics::EvalConfig& c, const Value& v) { c.device = v.text; }},
  };
  return rows;
}

}  // namespace

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> v;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ','))
    if (!part.empty()) v.push_back(part);
  return v;
}

void add_eval_options(Options& opt) { opt.add(eval_rows()); }

metrics::EvalConfig eval_config_from(const Options& opt) {
  metrics::EvalConfig c;
  opt.apply(eval_rows(), c);
  return c;
}

void add_progress_options(Options& opt) {
  opt.add(row("quiet", "", "no progress lines (on a terminal one updating line, in a log one line every --progress-every seconds)",
              flag())
              .operational())
      .add(row("progress-every", "10", "seconds between progress lines when stderr is not a terminal (a log, a SLURM job)",
               number(0, 86400))
               .operational());
}

void apply_progress_options(const Options& opt) {
  ProgressSettings p = progress_settings();
  p.enabled = !opt.flag_set("quiet");
  p.every_seconds = opt.number("progress-every");
  set_progress_settings(p);
}

}  // namespace edi::cli
