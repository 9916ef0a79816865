// `edi-anon train` and `edi-anon inspect`: the models stage's commands.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>

#include "commands.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/core/progress.hpp"
#include "edi/data/manifest.hpp"
#include "edi/models/classifier.hpp"
#include "edi/models/registry.hpp"
#include "edi/models/training.hpp"
#include "data_options.hpp"
#include "eval_options.hpp"
#include "options.hpp"

namespace edi::cli {

namespace fs = std::filesystem;

int cmd_train(const Args& args) {
  Options opt("train", "--data DIR | --manifest RUNDIR/manifest.csv --out MODEL [options]",
              "Train a native classifier (small-cnn or resnet18) on the train split of a data set,\n"
              "early-stopping on val, reporting test accuracy. Writes MODEL + MODEL.json; a checkpoint\n"
              "MODEL.ckpt after every epoch lets a killed run resume when rerun with the same --out.");
  opt.add("data", "", "data directory DATA/<identity>/<images> (scanned in memory unless --manifest is given)")
      .add("labels", "", "labels CSV identity,<task>... (default: DATA/labels.csv if present; 'none' = ImageFolder)")
      .add("manifest", "", "manifest.csv from `edi-anon manifest` (images under its data root, or under --data)")
      .add("task", "identity", "identity or a task of the labels (age, gender, race, ...)")
      .add(row("arch", "small-cnn", "small-cnn or resnet18", one_of({"small-cnn", "resnet18"})))
      .required("out", "model file to write (sidecar MODEL.json, checkpoint MODEL.ckpt)")
      .add(row("epochs", "30", "maximum epochs", integer(1, 10000)))
      .add(row("batch", "32", "batch size", integer(1, 4096)))
      .add(row("lr", "0.002", "AdamW peak learning rate (cosine decay over --epochs)", number(0, 10, true)))
      .add(row("weight-decay", "0.0005", "AdamW weight decay", number(0, 1)))
      .add(row("patience", "8", "stop after this many epochs without a val-accuracy improvement", integer(1, 10000)))
      .add(row("seed", "0", "seed of initialisation, shuffles and augmentation", seed()))
      .add(row("size", "64", "input side S (images resized shorter side -> S, centre crop)", integer(8, 1024)))
      .add(row("augment", "flip+crop", "none, flip, crop or flip+crop (seeded per image and epoch)", one_of({"none", "flip", "crop", "flip+crop"})))
      .add("device", "cpu", "cpu or cuda[:i]");
  add_progress_options(opt);  // --quiet, --progress-every (eval_options.cpp)
  opt.add_common();
  add_split_options(opt, "without --manifest: ");
  add_data_set_options(opt);  // --split-file, --max-megapixels (data_options)
  if (!opt.parse(args)) return 0;
  apply_progress_options(opt);

  models::TrainConfig c;
  c.task = opt.text("task");
  c.architecture = opt.choice("arch");
  c.out = opt.text("out");
  if (c.out.empty()) throw ConfigError("--out: expected a model file path, got an empty value");
  if (fs::is_directory(c.out)) throw ConfigError("--out " + c.out.string() + ": is a directory, expected a model file path");
  c.epochs = static_cast<int>(opt.integer("epochs"));
  c.batch = static_cast<int>(opt.integer("batch"));
  c.lr = opt.number("lr");
  c.weight_decay = opt.number("weight-decay");
  c.patience = static_cast<int>(opt.integer("patience"));
  c.seed = opt.seed("seed");
  c.input_size = static_cast<int>(opt.integer("size"));
  c.augment = opt.choice("augment");
  c.device = opt.text("device");
  models::parse_device(c.device);
  if (!opt.has("data") && !opt.has("manifest")) throw ConfigError("--data or --manifest is required");

  if (opt.has("manifest")) {
    c.manifest = data::read_manifest(opt.existing_file("manifest"));
    if (opt.has("data")) c.image_root = opt.existing_dir("data");
  } else {
    data::ScanOptions scan;
    scan.data_dir = opt.existing_dir("data");
    scan.labels_csv = labels_option(opt, scan.data_dir);
    scan.split = split_option(opt);
    c.threads = opt.apply_threads();
    auto scanned = data::build_manifest(scan);
    if (!scanned.quarantined.empty())
      std::printf("train: %zu unusable file(s) skipped, e.g. %s: %s\n", scanned.quarantined.size(),
                  scanned.quarantined[0].path.c_str(), scanned.quarantined[0].reason.c_str());
    c.manifest = std::move(scanned.manifest);
  }
  c.threads = opt.apply_threads();
  if (c.out.has_parent_path()) fs::create_directories(c.out.parent_path());

  std::printf("train: %s on task '%s', %d threads, seed %llu -> %s\n", c.architecture.c_str(), c.task.c_str(),
              c.threads, static_cast<unsigned long long>(c.seed), c.out.c_str());
  std::fflush(stdout);
  Progress progress("train " + c.out.filename().string(), static_cast<std::size_t>(c.epochs), "epochs");
  const auto result = models::train_classifier(
      c,
      [&progress](const models::EpochReport& r) {
        progress.set(static_cast<std::size_t>(r.epoch));
        std::printf("epoch %3d/%d  loss %.4f  train-acc %.4f  val-acc %.4f%s  %6.1f img/s  ETA %s\n", r.epoch,
                    r.epochs, r.loss, r.train_accuracy, r.val_accuracy, r.improved ? "*" : " ", r.images_per_second,
                    format_duration(r.eta_seconds).c_str());
        std::fflush(stdout);
      },
      [](const std::string& line) {
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
      });
  progress.finish();
  const auto& rec = result.record;
  std::printf("train: %d epoch(s)%s, best epoch %d, %s of training\n", rec.epochs_run,
              result.early_stopped ? " (early stop)" : "", rec.best_epoch, format_duration(rec.seconds).c_str());
  std::printf("train: accuracy train %.4f  val %.4f  test %.4f (%zu test images)\n", rec.train_accuracy,
              rec.val_accuracy, rec.test_accuracy, rec.test_images);
  std::printf("train: wrote %s and %s\n", c.out.c_str(), models::sidecar_path(c.out).c_str());
  return 0;
}

namespace {

using Clock = std::chrono::steady_clock;

/// Median ms per image of `step` on a random batch (one warm-up repetition first).
double median_ms_per_image(int batch, int side, int reps, const std::function<void(const at::Tensor&)>& step) {
  const at::Tensor x0 = at::rand({batch, 3, side, side});
  std::vector<double> ms;
  for (int r = 0; r <= reps; ++r) {  // r == 0 is a warm-up
    const auto t0 = Clock::now();
    step(x0);
    if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2] / batch;
}

/// The timing table: forward and forward+backward (input gradient) at batch 1 and `big`.
void print_timing(int side, int reps, int big, const std::function<at::Tensor(const at::Tensor&)>& forward) {
  const auto fwd = [&](const at::Tensor& x) {
    at::NoGradGuard no_grad;
    (void)forward(x).sum().item<float>();
  };
  const auto fwd_bwd = [&](const at::Tensor& x0) {
    at::Tensor x = x0.clone().requires_grad_(true);
    const at::Tensor z = forward(x);
    (z.dim() == 2 ? std::get<0>(z.max(1)) : z).sum().backward();
    (void)x.grad().abs().sum().item<float>();
  };
  std::printf("timing (median of %d, ms per image):\n", reps);
  for (int batch : {1, big}) {
    const double f = median_ms_per_image(batch, side, reps, fwd);
    const double fb = median_ms_per_image(batch, side, reps, fwd_bwd);
    std::printf("  batch %3d: forward %.3f ms, forward+backward (input gradient) %.3f ms\n", batch, f, fb);
  }
}

void print_common(const models::ModelInfo& info, const char* kind, long long parameters) {
  std::printf("model:          %s\n", info.reference.c_str());
  std::printf("kind:           %s\n", kind);
  std::printf("backend:        %s\n", info.backend.c_str());
  std::printf("architecture:   %s\n", info.architecture.c_str());
  std::printf("parameters:     %lld\n", parameters);
  std::printf("sha256:         %s\n", info.file_sha256.empty() ? "(built in)" : info.file_sha256.c_str());
}

void describe_classifier(models::Classifier& model, const std::string& ref, int threads) {
  const auto& info = model.info();
  print_common(info, "classifier", static_cast<long long>(model.parameter_count()));
  std::printf("task:           %s\n", info.task.c_str());
  std::printf("classes:        %zu:", info.classes.size());
  for (std::size_t i = 0; i < info.classes.size() && i < 5; ++i) std::printf(" %s", info.classes[i].c_str());
  std::printf("%s\n", info.classes.size() > 5 ? " ..." : "");
  std::printf("input:          3x%dx%d RGB in [0,1]\n", info.input_size, info.input_size);
  const auto& n = info.normalisation;
  std::printf("normalisation:  mean %.4f %.4f %.4f  std %.4f %.4f %.4f\n", n.mean[0], n.mean[1], n.mean[2], n.std[0],
              n.std[1], n.std[2]);
  std::printf("device:         %s, %d thread(s)\n", model.device().str().c_str(), threads);
  if (info.backend != "faceapi" && fs::is_regular_file(ref)) {
    const auto side = models::read_sidecar(ref);
    if (side.training) {
      const auto& t = *side.training;
      std::printf("training:       %d/%d epochs (best %d), acc train %.4f val %.4f test %.4f, data %s (manifest %s)\n",
                  t.epochs_run, t.epochs_max, t.best_epoch, t.train_accuracy, t.val_accuracy, t.test_accuracy,
                  t.data_root.c_str(), t.manifest_hash.substr(0, 16).c_str());
    }
  }
}

void describe_embedder(models::Embedder& model, int threads) {
  const auto& info = model.info();
  print_common(info, "embedder", static_cast<long long>(model.parameter_count()));
  at::Tensor probe;
  {
    at::NoGradGuard no_grad;
    probe = model.embed(at::zeros({1, 3, info.input_size, info.input_size}));
  }
  std::printf("embedding:      %lld-d descriptor per image (identities: a gallery enrolled on the train split in "
              "run/sweep/bench, or the faceapi attacker of evaluate)\n",
              static_cast<long long>(probe.size(1)));
  std::printf("input:          3x%dx%d RGB in [0,1] (other sizes are resized inside)\n", info.input_size,
              info.input_size);
  std::printf("device:         %s, %d thread(s)\n", model.device().str().c_str(), threads);
}

}  // namespace

int cmd_inspect(const Args& args) {
  Options opt("inspect", "--model MODEL [options]",
              "Describe a model (TorchScript or native file with its sidecar, faceapi:age-gender, or the\n"
              "embedder faceapi:recognition) and time its forward and forward+backward (input gradient) passes at\n"
              "batch 1 and --batch, in ms per image.");
  opt.required("model", "model file, faceapi:age-gender or faceapi:recognition")
      .add("task", "", "sub-task of multi-head models (faceapi:age-gender: gender or age)")
      .add("device", "cpu", "cpu or cuda[:i]")
      .add(row("reps", "5", "timed repetitions per measurement (median reported)", integer(1, 1000)))
      .add(row("batch", "32", "the larger timed batch size", integer(1, 1024)))
      .add_common();
  if (!opt.parse(args)) return 0;
  const std::string ref = opt.text("model");
  const int reps = static_cast<int>(opt.integer("reps"));
  const int big = static_cast<int>(opt.integer("batch"));
  const int threads = opt.apply_threads();
  models::LoadOptions lo;
  lo.device = opt.text("device");
  lo.task = opt.has("task") ? opt.text("task") : "";
  if (models::is_embedder_reference(ref)) {
    if (!lo.task.empty()) throw ConfigError("--task " + lo.task + ": " + ref + " has no sub-tasks (leave --task out)");
    std::shared_ptr<models::Embedder> model = models::load_embedder(ref, lo);
    describe_embedder(*model, threads);
    print_timing(model->info().input_size, reps, big, [&](const at::Tensor& x) { return model->embed(x); });
    return 0;
  }
  auto model = models::load_classifier(ref, lo);
  describe_classifier(*model, ref, threads);
  print_timing(model->info().input_size, reps, big, [&](const at::Tensor& x) { return model->logits(x); });
  return 0;
}

}  // namespace edi::cli
