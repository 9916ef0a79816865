#include "engine_options.hpp"

#include <sstream>

#include "data_options.hpp"
#include "edi/core/error.hpp"
#include "edi/engine/steering.hpp"
#include "edi/explain/spec.hpp"
#include "edi/perturb/operators.hpp"
#include "edi/perturb/regions.hpp"

namespace edi::cli {

namespace fs = std::filesystem;

void add_run_options(Options& opt, bool for_bench) {
  opt.required("data", "data directory: DATA/<identity>/<images>")
      .add("labels", "", "labels CSV (default: DATA/labels.csv if present; 'none' = ImageFolder)")
      .required("model", "steering model: TorchScript file, native checkpoint, or faceapi:recognition; A,B[,C] = ensemble steering "
                         "(each model's attribution normalised per image, identified while any model identifies)")
      .add("judge", "", "a model that never steers: an image stops only when the steering models and the judge all fail to "
                        "identify it (the judge is then not an independent attacker)")
      .add("device", "cpu", "cpu or cuda[:i]");
  add_data_set_options(opt);  // --split-file, --max-megapixels (data_options)
  if (!for_bench) opt.required("out", "run directory (created owner-only; an existing one is resumed or refused)");
  opt.add("method", "edi", "edi | conventional | none (the control: the originals, no perturbation, zero passes)")
      .add("operator", "blur", "blur|gaussian|pixelate|dp-pix|dp-blur|noise|mask (EDI and conventional) or eyes|mouth|eyes-mouth (conventional)")
      .add("k", "", "kernel size (blur default 40; gaussian 9; dp-blur 99; gaussian/dp-blur: odd)")
      .add("sigma", "", "Gaussian sigma in px (gaussian, dp-blur; 0 = OpenCV's rule from k) or noise sigma on [0,1] (noise, default 0.1)")
      .add("n", "", "pixelation block size (default 20)")
      .add("b", "", "DP-Pix block size (default 32)")
      .add("m", "", "DP-Pix sensitivity (default 16)")
      .add("eps", "", "DP-Pix privacy budget epsilon (default 100)")
      .add("dp-scale", "fan", "DP noise scale: fan (255·m/(b²ε) grey levels) | authors (the authors' code: 255× more on [0,1])")
      .add("color", "0,0,0", "mask colour R,G,B in [0,1]")
      // --- perturb: the authors' masking rules (issue 13 item 7); no default value, so runs that
      // do not give them keep their config hash ---
      .add("mask-rule", "", "mask operator (EDI): entry (default: each selected entry) | pixel (the authors' rule: a pixel "
                            "whose R entry is selected is set to the colour in all channels)")
      .add("region-fallback", "", "eyes|mouth|eyes-mouth: box (default: a default face box / face-relative parts where "
                                  "detection fails) | none (the authors' code: nothing drawn where detection fails)")
      .add("q", "90", "percentile: entries with attribution >= the q-th percentile are perturbed, in [0, 100)")
      .add("select", "entry", "entry (per pixel per channel, the paper) | pixel (max over channels)")
      .add("explainer", "gradient", "gradient | abs-gradient | smoothgrad | integrated-gradients")
      .add("target", "runner-up", "loss target: runner-up (the paper) | true-class | feature (embedding and gallery models: push the "
                                  "embedding away from the original's)")
      .add("smoothgrad-samples", "16", "SmoothGrad samples, in [1, 1024]")
      .add("smoothgrad-sigma", "0.15", "SmoothGrad noise sigma on [0,1], in (0, 1]")
      .add("ig-steps", "32", "Integrated Gradients steps, in [1, 4096]")
      .add("eot", "0", "expectation over transformation: average the attribution over N random small transformations, "
                       "in [0, 64] (0 = off)")
      .add("eot-shift", "4", "EOT: max shift in pixels, in [0, 32]")
      .add("eot-scale", "0.05", "EOT: max relative scale change, in [0, 0.5]")
      .add("eot-blur", "0.8", "EOT: max Gaussian blur sigma in pixels, in [0, 4]")
      .add("eot-brightness", "0.1", "EOT: max relative brightness change, in [0, 0.5]")
      .add("stop", "image", "image (per image) | dataset (the paper's residual-risk target) | fixed (benchmark: --passes)")
      .add("criterion", "top1", "still identified when: top1 | topk (true id in top --top-k) | prob (true prob > --tau)")
      .add("top-k", "5", "k of the topk criterion")
      .add("tau", "0.01", "probability threshold of the prob criterion, in (0, 1)")
      .add("target-risk", "1",
           "dataset rule: stop once the identified share is <= this percentage; a comma list (60,27.3,10) runs to the "
           "lowest and writes a snapshot at the first pass at or below each")
      .add("max-passes", "50", "pass cap of the image and dataset rules")
      .add("passes", "10", "passes of the fixed rule")
      .add("escalate", "1", "at a stall, grow the operator's strength by this factor (1 = off), in [1, 10]")
      .add("escalate-max", "4", "at most this many escalations per image")
      .flag("jpeg-roundtrip", "reproduce the authors' data path: JPEG encode/decode after every pass")
      .add("jpeg-quality", "95", "JPEG quality of --jpeg-roundtrip")
      .add("seed", "0", "seed of every random draw (keyed by seed, image id, pass)");
  if (!for_bench)
    opt.add("snapshot-psnr", "",
            "dataset rule: PSNR targets in dB, a comma list (18,16): a snapshot snapshots/psnr<T>/ at the first pass whose "
            "mean PSNR over the changed images is at or below each (matched-PSNR comparisons); each in [1, 100]");
  if (!for_bench)
    opt.add("matched-to", "",
            "record only (set by a sweep's target-risk = match): the baselines the targets came from, "
            "NAME:TARGET pairs separated by commas");
  opt.add("split", "all", "images to anonymize: all | train | val | test")
      .add("resize", "crop", "bring images to the model size: crop (shorter side, centre crop) | stretch")
      .add("shard-size", "64", "images per shard (unit of batching and checkpoints), in [1, 100000]")
      .add("test-fraction", "0.2", "split settings used when the run directory's manifest is created")
      .add("val-fraction", "0.1", "")
      .add("split-seed", "0", "")
      .add("png-bits", "8", "bit depth of the anonymized PNGs: 8 | 16")
      .flag("no-images", "do not write anonymized images")
      .flag("verbose", "more progress output");
  if (!for_bench)
    opt.add("checkpoint-every", "0",
            "seconds between two commits of a shard, in [0, 86400] (0 = after every pass); final shards, a signal and "
            "the end of a run always commit; a crash loses at most this much work per shard, never exactness");
  if (for_bench)
    opt.add("batch", "1,8,16,32,64", "batch sizes to measure (comma-separated)")
        .add("passes-per-batch", "3", "fixed passes measured per batch size")
        .add("images", "64", "images used, in [1, 100000]");
  else
    opt.add("batch", "auto", "images per forward+backward: a number in [1, 4096] or auto (fastest of 8, 16, 32, measured)");
  opt.add_common();
}

namespace {
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

/// --mask-rule and --region-fallback, each refused where it would change nothing.
void set_masking_rules(const Options& opt, engine::EngineSpec& e) {
  if (opt.has("mask-rule")) {
    e.op.mask_rule = perturb::parse_mask_rule(opt.text("mask-rule"));
    const bool edi_mask = e.method == engine::Method::kEdi && e.op.name == "mask" && !e.region;
    if (e.op.mask_rule == perturb::MaskRule::kPixel && !edi_mask)
      throw ConfigError("--mask-rule pixel: applies to --method edi --operator mask only (a conventional or region "
                        "mask already covers whole pixels)");
  }
  if (opt.has("region-fallback")) {
    e.op.region_fallback = perturb::parse_region_fallback(opt.text("region-fallback"));
    if (e.op.region_fallback == perturb::RegionFallback::kNone && !e.region)
      throw ConfigError("--region-fallback none: applies to --operator eyes|mouth|eyes-mouth only");
  }
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
}  // namespace

engine::RunConfig run_config_from(const Options& opt, bool for_bench, bool check_paths) {
  engine::RunConfig c;
  if (check_paths) {
    c.data_dir = opt.existing_dir("data");
    c.labels_csv = labels_option(opt, c.data_dir);
  } else {  // a plan shown before the data exists: the paths are checked when the run starts
    c.data_dir = opt.text("data");
    if (opt.has("labels") && opt.text("labels") != "none") c.labels_csv = opt.text("labels");
  }
  if (!for_bench) c.out = opt.output_path("out");
  c.model = opt.text("model");
  engine::split_model_list(c.model);  // names a malformed list before any work
  c.judge = opt.has("judge") ? opt.text("judge") : std::string();
  c.device = opt.text("device");
  auto& e = c.engine;
  e.method = engine::parse_method(opt.choice("method", {"edi", "conventional", "none"}));
  const std::string op = opt.choice("operator", {"blur", "gaussian", "pixelate", "dp-pix", "dp-blur", "noise", "mask", "eyes", "mouth", "eyes-mouth"});
  if (op == "eyes" || op == "mouth" || op == "eyes-mouth") {
    e.region = perturb::parse_region(op);
    e.op = perturb::OperatorSpec::defaults("mask");
  } else {
    e.op = perturb::OperatorSpec::defaults(op);
  }
  if (opt.has("k")) e.op.k = static_cast<int>(opt.integer("k", 1, 4096));
  if (opt.has("sigma")) e.op.sigma = opt.number("sigma", 0, 1000);
  if (opt.has("n")) e.op.n = static_cast<int>(opt.integer("n", 1, 4096));
  if (opt.has("b")) e.op.b = static_cast<int>(opt.integer("b", 1, 4096));
  if (opt.has("m")) e.op.m = opt.number("m", 0, 1e9, true);
  if (opt.has("eps")) e.op.eps = opt.number("eps", 0, 1e12, true);
  e.op.dp_scale = opt.choice("dp-scale", {"fan", "authors"}) == "fan" ? perturb::DpScale::kFan : perturb::DpScale::kAuthors;
  e.op.color = parse_color(opt.text("color"));
  set_masking_rules(opt, e);
  e.select.q = opt.number("q", 0, 100, false, true);
  e.select.granularity = explain::parse_granularity(opt.choice("select", {"entry", "pixel"}));
  e.explain.method = explain::parse_attribution(opt.text("explainer"));
  e.explain.target = explain::parse_target(opt.text("target"));
  e.explain.smoothgrad_samples = static_cast<int>(opt.integer("smoothgrad-samples", 1, 1024));
  e.explain.smoothgrad_sigma = opt.number("smoothgrad-sigma", 0, 1, true);
  e.explain.ig_steps = static_cast<int>(opt.integer("ig-steps", 1, 4096));
  e.steering.eot = static_cast<int>(opt.integer("eot", 0, 64));
  e.steering.eot_shift = opt.number("eot-shift", 0, 32);
  e.steering.eot_scale = opt.number("eot-scale", 0, 0.5);
  e.steering.eot_blur = opt.number("eot-blur", 0, 4);
  e.steering.eot_brightness = opt.number("eot-brightness", 0, 0.5);
  e.stop = engine::parse_stop_rule(opt.choice("stop", {"image", "dataset", "fixed"}));
  e.criterion = engine::parse_criterion(opt.choice("criterion", {"top1", "topk", "prob"}));
  e.top_k = static_cast<int>(opt.integer("top-k", 1, 100000));
  e.tau = opt.number("tau", 0, 1, true, true);
  engine::set_targets(e, engine::parse_targets(opt.text("target-risk")));
  if (!for_bench && opt.has("matched-to")) check_matched_to(opt.text("matched-to"));
  if (!for_bench && opt.has("snapshot-psnr")) e.psnr_targets = engine::parse_psnr_targets(opt.text("snapshot-psnr"));
  e.max_passes = static_cast<int>(opt.integer("max-passes", 1, 100000));
  e.passes = static_cast<int>(opt.integer("passes", 1, 100000));
  e.escalate_factor = opt.number("escalate", 1, 10);
  e.escalate_max = static_cast<int>(opt.integer("escalate-max", 0, 64));
  e.jpeg_roundtrip = opt.flag_set("jpeg-roundtrip");
  e.jpeg_quality = static_cast<int>(opt.integer("jpeg-quality", 1, 100));
  e.seed = opt.seed("seed");
  if (!for_bench) {
    const std::string b = opt.text("batch");
    e.batch = b == "auto" ? 0 : static_cast<int>(opt.integer("batch", 1, 4096));
  }
  c.split = engine::parse_split_selection(opt.choice("split", {"all", "train", "val", "test"}));
  c.resize = data::parse_resize_mode(opt.choice("resize", {"crop", "stretch"}), "resize");
  c.shard_size = static_cast<int>(opt.integer("shard-size", 1, 100000));
  if (!for_bench) c.checkpoint_every = opt.number("checkpoint-every", 0, 86400);
  c.split_spec = split_option(opt, check_paths);
  c.png_bits = static_cast<int>(opt.integer("png-bits", 8, 16));
  if (c.png_bits != 8 && c.png_bits != 16) throw ConfigError("--png-bits " + std::to_string(c.png_bits) + ": expected 8 or 16");
  c.write_images = !opt.flag_set("no-images");
  c.verbose = opt.flag_set("verbose");
  c.options = opt.effective();
  engine::EngineSpec check = e;
  if (check.batch == 0) check.batch = 1;  // auto is resolved later
  engine::validate(check);
  return c;
}

}  // namespace edi::cli
