// The options of `run`, `bench` and `sweep` entries: one row per option.
//
// HOW TO ADD A RUN OPTION: add one Bound row to run_rows() below, in the group
// it belongs to (a row is read after the rows above it, so an operator
// parameter comes after --operator):
//
//   {row("my-option", "DEFAULT", "what it does", integer(1, 64)),
//    [](RunBuild& b, const Value& v) { b.c.engine.my_field = static_cast<int>(v.integer); }},
//
// - the domain (integer, number, one_of, seed, flag, integer_or_auto, text)
//   gives the parser, the range shown in --help, the one-line error and the
//   value the config hash covers; no range check elsewhere;
// - "" as the default = optional: the setter runs only when it is given, and
//   the option is then absent from the config hash (old run directories keep
//   their hash); a new result option should have no default or keep the old
//   behaviour at its default;
// - `.operational()` when it cannot change results (threads, paths, output
//   verbosity): it is left out of the config hash, so a resume may change it;
// - `.not_in_sweeps("is set by ...")` when a sweep file may not set it;
// - checks that involve two options go to finish().
// Help text, docs/config-reference.md (scripts/config-reference.sh), the
// config hash and a sweep's key handling follow from the row.
#include "engine_options.hpp"

#include <sstream>

#include "data_options.hpp"
#include "edi/core/error.hpp"
#include "edi/core/csv.hpp"
#include "edi/engine/steering.hpp"
#include "edi/explain/spec.hpp"
#include "edi/perturb/operators.hpp"
#include "edi/perturb/regions.hpp"

namespace edi::cli {

namespace {

/// What the rows fill: the run configuration and what its checks need.
struct RunBuild {
  engine::RunConfig c;
  bool check_paths = true;
  std::string op;  ///< --operator as given (eyes, mouth, eyes-mouth are region masks)
};

using Row = Bound<RunBuild>;

std::array<float, 3> parse_color(const std::string& text) {
  std::array<float, 3> c{};
  std::stringstream ss(text);
  std::string part;
  int i = 0;
  while (std::getline(ss, part, ',')) {
    char* end = nullptr;
    const double v = std::strtod(part.c_str(), &end);
    if (i >= 3 || part.empty() || *end != '\0' || !(v >= 0 && v <= 1))
      throw ConfigError("--color " + text + ": expected three numbers in [0, 1] separated by commas");
    c[static_cast<std::size_t>(i++)] = static_cast<float>(v);
  }
  if (i != 3) throw ConfigError("--color " + text + ": expected three numbers in [0, 1] separated by commas");
  return c;
}

void check_matched_to(const std::string& text) {
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    const std::string pair = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto colon = pair.rfind(':');
    char* end = nullptr;
    const std::string target = colon == std::string::npos ? "" : pair.substr(colon + 1);
    const double t = target.empty() ? -1 : std::strtod(target.c_str(), &end);
    if (colon == 0 || target.empty() || *end != '\0' || !(t >= 0 && t <= 100))
      throw ConfigError("--matched-to " + text + ": expected NAME:TARGET pairs separated by commas (TARGET a percentage)");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
}

const std::vector<std::string> kOperators = {"blur", "gaussian", "pixelate", "dp-pix", "dp-blur", "noise", "mask",
                                             "eyes", "mouth",    "eyes-mouth"};

/// "blur 40, gaussian 9, dp-blur 99": the operators' own defaults of one parameter (help text).
template <class Get>
std::string op_defaults(const std::vector<std::string>& ops, Get get) {
  std::string s;
  for (const auto& op : ops) s += (s.empty() ? "" : ", ") + op + " " + format_g(get(perturb::OperatorSpec::defaults(op)));
  return "default: " + s;
}

std::vector<std::string> explainer_names() {
  std::vector<std::string> v;
  for (const auto& e : explain::explainer_registry()) v.emplace_back(e.name);
  return v;
}

std::vector<Row> input_rows(bool for_bench) {
  std::vector<Row> r = {
      {row("data", "", "data directory: DATA/<identity>/<images>").required().operational(),
       [](RunBuild& b, const Value& v) { b.c.data_dir = v.text; }},
      {row("labels", "", "labels CSV (default: DATA/labels.csv if present; 'none' = ImageFolder)").operational(), nullptr},
      {row("model", "", "steering model: TorchScript file, native checkpoint, or faceapi:recognition; A,B[,C] = ensemble "
                        "steering (each model's attribution normalised per image, identified while any model identifies)")
           .required(),
       [](RunBuild& b, const Value& v) {
         b.c.model = v.text;
         engine::split_model_list(b.c.model);  // names a malformed list before any work
       }},
      {row("judge", "", "a model that never steers: an image stops only when the steering models and the judge all fail "
                        "to identify it (the judge is then not an independent attacker)"),
       [](RunBuild& b, const Value& v) { b.c.judge = v.text; }},
      {row("device", "cpu", "cpu or cuda[:i]").operational(), [](RunBuild& b, const Value& v) { b.c.device = v.text; }},
      {row("ops", "auto", "selection/operator implementation: auto (ATen on a CUDA device, OpenCV on the CPU) | opencv | "
                          "aten (ATen on the data's device; agrees with opencv to 1e-6)",
           one_of({"auto", "opencv", "aten"}))
           .operational(),
       [](RunBuild& b, const Value& v) { b.c.engine.op.ops = perturb::parse_ops_path(v.text); }},
  };
  if (!for_bench)
    r.push_back({row("out", "", "run directory (created owner-only; an existing one is resumed or refused)")
                     .required()
                     .operational()
                     .not_in_sweeps("is set per run by the sweep (use --out or [sweep] out)"),
                 nullptr});
  return r;
}

std::vector<Row> operator_rows() {
  using perturb::OperatorSpec;
  const std::vector<std::string> dp = {"dp-pix", "dp-blur"};
  return {
      {row("method", "edi", "edi | conventional | none (the control: the originals, no perturbation, zero passes)",
           one_of({"edi", "conventional", "none"})),
       [](RunBuild& b, const Value& v) { b.c.engine.method = engine::parse_method(v.text); }},
      {row("operator", "blur", "blur|gaussian|pixelate|dp-pix|dp-blur|noise|mask (EDI and conventional) or "
                               "eyes|mouth|eyes-mouth (conventional)", one_of(kOperators)),
       [](RunBuild& b, const Value& v) {
         b.op = v.text;
         const bool region = v.text == "eyes" || v.text == "mouth" || v.text == "eyes-mouth";
         if (region) b.c.engine.region = perturb::parse_region(v.text);
         b.c.engine.op = OperatorSpec::defaults(region ? "mask" : v.text);
       }},
      {row("k", "", "kernel size (" + op_defaults({"blur", "gaussian", "dp-blur"}, [](const OperatorSpec& s) { return s.k; }) +
                        "; gaussian/dp-blur: odd)", integer(1, 4096)),
       [](RunBuild& b, const Value& v) { b.c.engine.op.k = static_cast<int>(v.integer); }},
      {row("sigma", "", "Gaussian sigma in px (gaussian, dp-blur; 0 = OpenCV's rule from k) or noise sigma on [0,1] (" +
                            op_defaults({"noise"}, [](const OperatorSpec& s) { return s.sigma; }) + ")",
           number(0, 1000)),
       [](RunBuild& b, const Value& v) { b.c.engine.op.sigma = v.number; }},
      {row("n", "", "pixelation block size (" + op_defaults({"pixelate"}, [](const OperatorSpec& s) { return s.n; }) + ")",
           integer(1, 4096)),
       [](RunBuild& b, const Value& v) { b.c.engine.op.n = static_cast<int>(v.integer); }},
      {row("b", "", "DP-Pix block size (" + op_defaults(dp, [](const OperatorSpec& s) { return s.b; }) + ")", integer(1, 4096)),
       [](RunBuild& b, const Value& v) { b.c.engine.op.b = static_cast<int>(v.integer); }},
      {row("m", "", "DP-Pix sensitivity (" + op_defaults(dp, [](const OperatorSpec& s) { return s.m; }) + ")",
           number(0, 1e9, true)),
       [](RunBuild& b, const Value& v) { b.c.engine.op.m = v.number; }},
      {row("eps", "", "DP-Pix privacy budget epsilon (" + op_defaults(dp, [](const OperatorSpec& s) { return s.eps; }) + ")",
           number(0, 1e12, true)),
       [](RunBuild& b, const Value& v) { b.c.engine.op.eps = v.number; }},
      {row("dp-scale", "fan", "DP noise scale: fan (255·m/(b²ε) grey levels) | authors (the authors' code: 255× more on [0,1])",
           one_of({"fan", "authors"})),
       [](RunBuild& b, const Value& v) {
         b.c.engine.op.dp_scale = v.text == "fan" ? perturb::DpScale::kFan : perturb::DpScale::kAuthors;
       }},
      {row("color", "0,0,0", "mask colour R,G,B in [0,1]"),
       [](RunBuild& b, const Value& v) { b.c.engine.op.color = parse_color(v.text); }},
      // The authors' masking rules (issue 13 item 7): no default value, so runs that do not give them keep their hash.
      {row("mask-rule", "", "mask operator (EDI): entry (default: each selected entry) | pixel (the authors' rule: a pixel "
                            "whose R entry is selected is set to the colour in all channels)", one_of({"entry", "pixel"})),
       [](RunBuild& b, const Value& v) { b.c.engine.op.mask_rule = perturb::parse_mask_rule(v.text); }},
      {row("region-fallback", "", "eyes|mouth|eyes-mouth: box (default: a default face box / face-relative parts where "
                                  "detection fails) | none (the authors' code: nothing drawn where detection fails)",
           one_of({"box", "none"})),
       [](RunBuild& b, const Value& v) { b.c.engine.op.region_fallback = perturb::parse_region_fallback(v.text); }},
  };
}

std::vector<Row> explain_rows() {
  return {
      {row("q", "90", "percentile: entries with attribution >= the q-th percentile are perturbed", number(0, 100, false, true)),
       [](RunBuild& b, const Value& v) { b.c.engine.select.q = v.number; }},
      {row("select", "entry", "entry (per pixel per channel, the paper) | pixel (max over channels)", one_of({"entry", "pixel"})),
       [](RunBuild& b, const Value& v) { b.c.engine.select.granularity = explain::parse_granularity(v.text); }},
      {row("explainer", "gradient", "gradient | abs-gradient | smoothgrad | integrated-gradients", one_of(explainer_names())),
       [](RunBuild& b, const Value& v) { b.c.engine.explain.method = explain::parse_attribution(v.text); }},
      {row("target", "runner-up", "loss target: runner-up (the paper) | true-class | feature (embedding and gallery models: "
                                  "push the embedding away from the original's)", one_of({"runner-up", "true-class", "feature"})),
       [](RunBuild& b, const Value& v) { b.c.engine.explain.target = explain::parse_target(v.text); }},
      {row("smoothgrad-samples", "16", "SmoothGrad samples", integer(1, 1024)),
       [](RunBuild& b, const Value& v) { b.c.engine.explain.smoothgrad_samples = static_cast<int>(v.integer); }},
      {row("smoothgrad-sigma", "0.15", "SmoothGrad noise sigma on [0,1]", number(0, 1, true)),
       [](RunBuild& b, const Value& v) { b.c.engine.explain.smoothgrad_sigma = v.number; }},
      {row("ig-steps", "32", "Integrated Gradients steps", integer(1, 4096)),
       [](RunBuild& b, const Value& v) { b.c.engine.explain.ig_steps = static_cast<int>(v.integer); }},
      {row("ig-baseline", "", "Integrated Gradients: the constant baseline image value on [0,1] (default " +
                                  format_g(explain::ExplainSpec{}.ig_baseline) + "; 0 = black)", number(0, 1)),
       [](RunBuild& b, const Value& v) { b.c.engine.explain.ig_baseline = v.number; }},
      {row("eot", "0", "expectation over transformation: average the attribution over N random small transformations "
                       "(0 = off)", integer(0, 64)),
       [](RunBuild& b, const Value& v) { b.c.engine.steering.eot = static_cast<int>(v.integer); }},
      {row("eot-shift", "4", "EOT: max shift in pixels", number(0, 32)),
       [](RunBuild& b, const Value& v) { b.c.engine.steering.eot_shift = v.number; }},
      {row("eot-scale", "0.05", "EOT: max relative scale change", number(0, 0.5)),
       [](RunBuild& b, const Value& v) { b.c.engine.steering.eot_scale = v.number; }},
      {row("eot-blur", "0.8", "EOT: max Gaussian blur sigma in pixels", number(0, 4)),
       [](RunBuild& b, const Value& v) { b.c.engine.steering.eot_blur = v.number; }},
      {row("eot-brightness", "0.1", "EOT: max relative brightness change", number(0, 0.5)),
       [](RunBuild& b, const Value& v) { b.c.engine.steering.eot_brightness = v.number; }},
      // No default, so runs that do not give it keep their config hash.
      {row("precision", "", "steering model arithmetic: fp32 (default) | bf16 (autocast for the forward and the input "
                            "gradient; loss, state, selection and operators stay fp32)",
           one_of({"fp32", "bf16"})),
       [](RunBuild& b, const Value& v) { b.c.engine.steering.precision = engine::parse_precision(v.text); }},
  };
}

std::vector<Row> stop_rows(bool for_bench) {
  std::vector<Row> r = {
      {row("stop", "image", "image (per image) | dataset (the paper's residual-risk target) | fixed (benchmark: --passes)",
           one_of({"image", "dataset", "fixed"})),
       [](RunBuild& b, const Value& v) { b.c.engine.stop = engine::parse_stop_rule(v.text); }},
      {row("criterion", "top1", "still identified when: top1 | topk (true id in top --top-k) | prob (true prob > --tau)",
           one_of({"top1", "topk", "prob"})),
       [](RunBuild& b, const Value& v) { b.c.engine.criterion = engine::parse_criterion(v.text); }},
      {row("top-k", "5", "k of the topk criterion", integer(1, 100000)),
       [](RunBuild& b, const Value& v) { b.c.engine.top_k = static_cast<int>(v.integer); }},
      {row("tau", "0.01", "probability threshold of the prob criterion", number(0, 1, true, true)),
       [](RunBuild& b, const Value& v) { b.c.engine.tau = v.number; }},
      {row("target-risk", "1", "dataset rule: stop once the identified share is <= this percentage; a comma list "
                               "(60,27.3,10) runs to the lowest and writes a snapshot at the first pass at or below each"),
       [](RunBuild& b, const Value& v) { engine::set_targets(b.c.engine, engine::parse_targets(v.text)); }},
  };
  if (!for_bench)
    r.push_back({row("matched-to", "", "record only (set by a sweep's target-risk = match): the baselines the targets came "
                                       "from, NAME:TARGET pairs separated by commas")
                     .not_in_sweeps("is set by the sweep (use target-risk = match)"),
                 [](RunBuild&, const Value& v) { check_matched_to(v.text); }});
  if (!for_bench)
    r.push_back({row("snapshot-psnr", "",
                     "dataset rule: PSNR targets in dB, a comma list (18,16): a snapshot snapshots/psnr<T>/ at the first "
                     "pass whose mean PSNR over the changed images is at or below each (matched-PSNR comparisons); each in "
                     "[1, 100]"),
                 [](RunBuild& b, const Value& v) { b.c.engine.psnr_targets = engine::parse_psnr_targets(v.text); }});
  std::vector<Row> more = {
      {row("max-passes", "50", "pass cap of the image and dataset rules", integer(1, 100000)),
       [](RunBuild& b, const Value& v) { b.c.engine.max_passes = static_cast<int>(v.integer); }},
      {row("passes", "10", "passes of the fixed rule", integer(1, 100000)),
       [](RunBuild& b, const Value& v) { b.c.engine.passes = static_cast<int>(v.integer); }},
      {row("escalate", "1", "at a stall, grow the operator's strength by this factor (1 = off)", number(1, 10)),
       [](RunBuild& b, const Value& v) { b.c.engine.escalate_factor = v.number; }},
      {row("escalate-max", "4", "at most this many escalations per image", integer(0, 64)),
       [](RunBuild& b, const Value& v) { b.c.engine.escalate_max = static_cast<int>(v.integer); }},
      {row("jpeg-roundtrip", "", "reproduce the authors' data path: JPEG encode/decode after every pass", flag()),
       [](RunBuild& b, const Value& v) { b.c.engine.jpeg_roundtrip = v.on; }},
      {row("jpeg-quality", "95", "JPEG quality of --jpeg-roundtrip", integer(1, 100)),
       [](RunBuild& b, const Value& v) { b.c.engine.jpeg_quality = static_cast<int>(v.integer); }},
      {row("seed", "0", "seed of every random draw (keyed by seed, image id, pass)", seed()),
       [](RunBuild& b, const Value& v) { b.c.engine.seed = v.seed; }},
  };
  r.insert(r.end(), more.begin(), more.end());
  return r;
}

std::vector<Row> output_rows(bool for_bench) {
  std::vector<Row> r = {
      {row("split", "all", "images to anonymize: all | train | val | test", one_of({"all", "train", "val", "test"})),
       [](RunBuild& b, const Value& v) { b.c.split = engine::parse_split_selection(v.text); }},
      {row("resize", "crop", "bring images to the model size: crop (shorter side, centre crop) | stretch",
           one_of({"crop", "stretch"})),
       [](RunBuild& b, const Value& v) { b.c.resize = data::parse_resize_mode(v.text, "resize"); }},
      {row("shard-size", "64", "images per shard (unit of batching and checkpoints)", integer(1, 100000)),
       [](RunBuild& b, const Value& v) { b.c.shard_size = static_cast<int>(v.integer); }},
      {row("png-bits", "8", "bit depth of the anonymized PNGs: 8 | 16", one_of({"8", "16"})),
       [](RunBuild& b, const Value& v) { b.c.png_bits = v.text == "16" ? 16 : 8; }},
      {row("no-images", "", "do not write anonymized images", flag()).operational(),
       [](RunBuild& b, const Value& v) { b.c.write_images = !v.on; }},
      {row("verbose", "", "more progress output", flag()).operational(),
       [](RunBuild& b, const Value& v) { b.c.verbose = v.on; }},
  };
  if (for_bench) {
    r.push_back({row("batch", "1,8,16,32,64", "batch sizes to measure (comma-separated integers in [1, 4096])"), nullptr});
    r.push_back({row("passes-per-batch", "3", "fixed passes measured per batch size", integer(1, 1000)), nullptr});
    r.push_back({row("images", "64", "images used", integer(1, 100000)), nullptr});
    r.push_back({row("compare-precision", "",
                     "instead of the batch sweep: the run's stop rule with fp32, fp32 at half the batch (the numerical "
                     "noise floor) and bf16 in lock step at the first --batch; prints mask agreement per pass, final "
                     "risk, passes to stop and the wall times",
                     flag()),
                 nullptr});
    return r;
  }
  r.push_back({row("checkpoint-every", "auto",
                   "when a shard is committed: auto (commits at most 2 percent of rank time from their measured cost, at "
                   "most --checkpoint-max-loss seconds of a shard's work apart), or seconds between two commits of a shard "
                   "(0 = after every pass); final shards, a signal and the end of a run always commit; a crash loses at "
                   "most that much work per shard, never exactness",
                   number_or_auto(0, 86400))
                   .operational(),
               [](RunBuild& b, const Value& v) {
                 b.c.checkpoint_auto = v.text == "auto";
                 if (!b.c.checkpoint_auto) b.c.checkpoint_every = v.number;
               }});
  r.push_back({row("checkpoint-max-loss", "60",
                   "with --checkpoint-every auto: the most seconds of a shard's work a crash may lose", number(0.01, 86400))
                   .operational(),
               [](RunBuild& b, const Value& v) { b.c.checkpoint_max_loss = v.number; }});
  r.push_back({row("schedule", "auto",
                   "how ranks share the work: pass (every shard's pass, then a reduction and a barrier; the dataset rule "
                   "needs it) | shard (a rank runs a claimed shard pass after pass to its end; --stop image and fixed "
                   "only) | auto (shard for image and fixed, pass for dataset); never changes the outputs",
                   one_of({"auto", "pass", "shard"}))
                   .operational(),
               [](RunBuild& b, const Value& v) { b.c.schedule = v.text; }});
  r.push_back({row("progress-every", "10",
                   "shard-major schedule: seconds between two progress lines (shards and images done, active images, "
                   "ETA; 0 = after every pass of rank 0's shards)",
                   number(0, 86400))
                   .operational(),
               [](RunBuild& b, const Value& v) { b.c.progress_every = v.number; }});
  r.push_back({row("examples", "0",
                   "images kept in results.h5 /examples: the first N selected, with their pass-0 attribution and applied "
                   "mask and their ORIGINAL faces (identifiable; 0 = none stored)",
                   integer(0, 1000))
                   .operational(),
               [](RunBuild& b, const Value& v) { b.c.examples = static_cast<int>(v.integer); }});
  r.push_back({row("batch", "auto", "images per forward+backward (auto: the fastest of 8, 16, 32, measured)",
                   integer_or_auto(1, 4096)),
               [](RunBuild& b, const Value& v) { b.c.engine.batch = v.maybe ? static_cast<int>(*v.maybe) : 0; }});
  return r;
}

/// Every row of `run` (or `bench`), in the order of --help and of the setters.
std::vector<Row> run_rows(bool for_bench) {
  std::vector<Row> all;
  for (auto part : {input_rows(for_bench), operator_rows(), explain_rows(), stop_rows(for_bench), output_rows(for_bench)})
    all.insert(all.end(), part.begin(), part.end());
  return all;
}

/// Checks between options, after every row is set.
void finish(const Options& opt, RunBuild& b) {
  engine::RunConfig& c = b.c;
  engine::EngineSpec& e = c.engine;
  if (b.check_paths) {
    c.data_dir = opt.existing_dir("data");
    c.labels_csv = labels_option(opt, c.data_dir);
  } else if (opt.has("labels") && opt.text("labels") != "none") {
    c.labels_csv = opt.text("labels");  // a plan shown before the data exists: checked when the run starts
  }
  const bool edi_mask = e.method == engine::Method::kEdi && e.op.name == "mask" && !e.region;
  if (opt.has("mask-rule") && e.op.mask_rule == perturb::MaskRule::kPixel && !edi_mask)
    throw ConfigError("--mask-rule pixel: applies to --method edi --operator mask only (a conventional or region "
                      "mask already covers whole pixels)");
  if (opt.has("region-fallback") && e.op.region_fallback == perturb::RegionFallback::kNone && !e.region)
    throw ConfigError("--region-fallback none: applies to --operator eyes|mouth|eyes-mouth only");
  if (e.steering.precision == engine::Precision::kBf16 && e.explain.target == explain::Target::kFeature)
    throw ConfigError("--precision bf16: not available with --target feature (it differentiates the embedder itself); use fp32");
  if (c.schedule == "shard" && e.stop == engine::StopRule::kDataset)
    throw ConfigError("--schedule shard: not available with --stop dataset (its halt needs every shard's pass reduced "
                      "together); use --schedule pass or auto");
  c.split_spec = split_option(opt, b.check_paths);
  engine::EngineSpec check = e;
  if (check.batch == 0) check.batch = 1;  // auto is resolved later
  engine::validate(check);
}

}  // namespace

void add_run_options(Options& opt, bool for_bench) {
  const std::vector<Row> rows = run_rows(for_bench);
  // --split-file, --max-megapixels and the split trio (data_options) after --verbose, as before.
  for (const auto& r : rows) {
    opt.add(r.row);
    if (r.row.name == "device") add_data_set_options(opt);
    if (r.row.name == "shard-size") add_split_options(opt, "split settings used when the run directory's manifest is created: ");
  }
  opt.add_common();
}

engine::RunConfig run_config_from(const Options& opt, bool for_bench, bool check_paths) {
  RunBuild b;
  b.check_paths = check_paths;
  opt.apply(run_rows(for_bench), b);
  if (!for_bench) b.c.out = opt.output_path("out");
  finish(opt, b);
  b.c.options = opt.hashed();
  return b.c;
}

std::vector<int> bench_batches(const Options& opt) {
  std::vector<int> batches;
  std::stringstream ss(opt.text("batch"));
  std::string part;
  while (std::getline(ss, part, ',')) {
    char* end = nullptr;
    const long n = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || n < 1 || n > 4096)
      throw ConfigError("--batch " + opt.text("batch") + ": expected comma-separated integers in [1, 4096]");
    batches.push_back(static_cast<int>(n));
  }
  return batches;
}

}  // namespace edi::cli
