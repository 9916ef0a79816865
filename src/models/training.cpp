// Supervised training of the native nets with exact resume (see training.hpp).
#include "edi/models/training.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/core/rng.hpp"
#include "edi/data/image.hpp"
#include "edi/models/native.hpp"
#include "native_nets.hpp"

namespace edi::models {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// One split's images (N×3×S×S, CPU float) with labels and ids.
struct SplitData {
  torch::Tensor images;
  torch::Tensor labels;  // int64 N
  std::vector<std::string> ids;
  std::size_t size() const { return ids.size(); }
};

struct Dataset {
  std::vector<std::string> classes;
  SplitData train, val, test;
};

Dataset load_dataset(const TrainConfig& c) {
  const data::Manifest& m = c.manifest;
  Dataset d;
  int task = -1;
  if (c.task == "identity") {
    d.classes = m.identities;
  } else {
    task = m.task_index(c.task);
    if (task < 0) {
      std::string known = "identity";
      for (const auto& t : m.tasks) known += ", " + t.name;
      throw ConfigError("--task " + c.task + ": the data set has no such task (known: " + known + ")");
    }
    d.classes = m.tasks[static_cast<std::size_t>(task)].classes;
  }
  if (d.classes.size() < 2)
    throw ConfigError("--task " + c.task + ": needs at least 2 classes, the data set has " +
                      std::to_string(d.classes.size()));
  const std::filesystem::path root = c.image_root.empty() ? std::filesystem::path(m.data_root) : c.image_root;
  data::DecodeOptions decode;
  decode.size = c.input_size;
  decode.mode = data::ResizeMode::kShorterSideCrop;
  decode.min_side = 1;
  std::vector<cv::Mat> mats[3];
  std::vector<std::int64_t> labels[3];
  SplitData* splits[3] = {&d.train, &d.val, &d.test};
  for (const auto& e : m.entries) {
    const int label = task < 0 ? e.identity : e.attributes.at(static_cast<std::size_t>(task));
    if (label < 0) continue;  // unlabelled for this task
    const auto s = static_cast<std::size_t>(e.split);
    mats[s].push_back(data::decode_image(root / e.id, decode));
    labels[s].push_back(label);
    splits[s]->ids.push_back(e.id);
  }
  for (int s = 0; s < 3; ++s) {
    if (mats[s].empty()) {
      splits[s]->images = torch::zeros({0, 3, c.input_size, c.input_size});
      splits[s]->labels = torch::zeros({0}, torch::kLong);
    } else {
      splits[s]->images = data::images_to_tensor(mats[s]).contiguous();
      splits[s]->labels = torch::tensor(labels[s], torch::kLong);
    }
  }
  if (d.train.size() == 0)
    throw ConfigError("the train split of " + m.data_root + " has no labelled images for task " + c.task);
  return d;
}

/// Per-channel mean/std of the training images.
Normalisation channel_stats(const torch::Tensor& images) {
  Normalisation n;
  const auto mean = images.mean({0, 2, 3});
  const auto std = images.std({0, 2, 3}, /*unbiased=*/false).clamp_min(1e-3);
  for (int i = 0; i < 3; ++i) {
    n.mean[i] = mean[i].item<float>();
    n.std[i] = std[i].item<float>();
  }
  return n;
}

/// Flip/crop augmentation of one batch, keyed by (seed, image id, epoch).
torch::Tensor augment_batch(const torch::Tensor& x, const std::vector<std::string>& ids, const std::string& mode,
                            std::uint64_t seed, int epoch) {
  if (mode == "none") return x;
  const bool flip = mode == "flip" || mode == "flip+crop";
  const bool crop = mode == "crop" || mode == "flip+crop";
  const std::int64_t s = x.size(2);
  const std::int64_t pad = crop ? std::max<std::int64_t>(1, s / 16) : 0;
  const torch::Tensor padded =
      pad > 0 ? torch::nn::functional::pad(x, torch::nn::functional::PadFuncOptions({pad, pad, pad, pad})
                                                  .mode(torch::kReplicate))
              : x;
  std::vector<torch::Tensor> out;
  out.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    CounterRng rng(RngKey{seed, stable_hash64(ids[i]), static_cast<std::uint32_t>(epoch), RngStream::kTrain});
    const bool f = flip && rng.below(2) == 1;
    const std::int64_t dy = crop ? static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(2 * pad + 1))) : 0;
    const std::int64_t dx = crop ? static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(2 * pad + 1))) : 0;
    torch::Tensor img = padded[static_cast<std::int64_t>(i)].narrow(1, dy, s).narrow(2, dx, s);
    out.push_back(f ? img.flip({2}) : img);
  }
  return torch::stack(out);
}

struct EvalResult {
  double accuracy = 0.0, loss = 0.0;
};

EvalResult evaluate(detail::NativeNet& net, const SplitData& split, const torch::Tensor& mean,
                    const torch::Tensor& inv_std, const c10::Device& device) {
  EvalResult r;
  if (split.size() == 0) return r;
  torch::NoGradGuard no_grad;
  net.eval();
  const std::int64_t n = static_cast<std::int64_t>(split.size());
  std::int64_t correct = 0;
  double loss = 0.0;
  for (std::int64_t b = 0; b < n; b += 128) {
    const std::int64_t len = std::min<std::int64_t>(128, n - b);
    const auto x = (split.images.narrow(0, b, len).to(device) - mean) * inv_std;
    const auto y = split.labels.narrow(0, b, len).to(device);
    const auto z = net.forward(x);
    loss += torch::nn::functional::cross_entropy(z, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(
                                                           torch::kSum))
                .item<double>();
    correct += z.argmax(1).eq(y).sum().item<std::int64_t>();
  }
  r.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  r.loss = loss / static_cast<double>(n);
  return r;
}

std::vector<torch::Tensor> state_tensors(detail::NativeNet& net) {
  std::vector<torch::Tensor> out;
  for (auto& p : net.parameters()) out.push_back(p);
  for (auto& b : net.buffers()) out.push_back(b);
  return out;
}

std::vector<torch::Tensor> clone_state(detail::NativeNet& net) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (auto& t : state_tensors(net)) out.push_back(t.detach().clone());
  return out;
}

void restore_state(detail::NativeNet& net, const std::vector<torch::Tensor>& state) {
  torch::NoGradGuard no_grad;
  auto dst = state_tensors(net);
  for (std::size_t i = 0; i < dst.size(); ++i) dst[i].copy_(state.at(i));
}

/// Everything a checkpoint restores.
struct LoopState {
  int epochs_done = 0;
  double best_val = -1.0;
  double best_val_loss = std::numeric_limits<double>::infinity();
  int best_epoch = 0;
  int bad_epochs = 0;
  double seconds = 0.0;
  std::vector<torch::Tensor> best;
};

std::string fingerprint(const TrainConfig& c, std::size_t classes) {
  char lr[64], wd[64];
  std::snprintf(lr, sizeof lr, "%.17g", c.lr);
  std::snprintf(wd, sizeof wd, "%.17g", c.weight_decay);
  return "arch=" + c.architecture + ";task=" + c.task + ";classes=" + std::to_string(classes) +
         ";size=" + std::to_string(c.input_size) + ";seed=" + std::to_string(c.seed) +
         ";batch=" + std::to_string(c.batch) + ";lr=" + lr + ";wd=" + wd + ";epochs=" + std::to_string(c.epochs) +
         ";patience=" + std::to_string(c.patience) + ";augment=" + c.augment + ";manifest=" + c.manifest.hash();
}

void save_checkpoint(const std::filesystem::path& path, const std::string& fp, detail::NativeNet& net,
                     torch::optim::Optimizer& opt, const LoopState& st) {
  torch::serialize::OutputArchive a;
  a.write("fingerprint", c10::IValue(fp));
  a.write("epochs_done", c10::IValue(static_cast<std::int64_t>(st.epochs_done)));
  a.write("best_val", c10::IValue(st.best_val));
  a.write("best_val_loss", c10::IValue(st.best_val_loss));
  a.write("best_epoch", c10::IValue(static_cast<std::int64_t>(st.best_epoch)));
  a.write("bad_epochs", c10::IValue(static_cast<std::int64_t>(st.bad_epochs)));
  a.write("seconds", c10::IValue(st.seconds));
  detail::save_net(net, a);
  for (std::size_t i = 0; i < st.best.size(); ++i) a.write("best/" + std::to_string(i), st.best[i], true);
  torch::serialize::OutputArchive o;
  opt.save(o);
  a.write("optimizer", o);
  detail::save_archive_atomic(a, path);
}

bool load_checkpoint(const std::filesystem::path& path, const std::string& fp, detail::NativeNet& net,
                     torch::optim::Optimizer& opt, LoopState& st) {
  if (!std::filesystem::exists(path)) return false;
  torch::serialize::InputArchive a;
  try {
    a.load_from(path.string());
  } catch (const c10::Error& e) {
    throw ConfigError(path.string() + ": unreadable training checkpoint (delete it to start over)");
  }
  c10::IValue v;
  a.read("fingerprint", v);
  if (v.toStringRef() != fp)
    throw ConfigError(path.string() + ": checkpoint was made with other settings or data (" + v.toStringRef() +
                      "; now " + fp + "): delete it or choose another --out");
  a.read("epochs_done", v);
  st.epochs_done = static_cast<int>(v.toInt());
  a.read("best_val", v);
  st.best_val = v.toDouble();
  a.read("best_val_loss", v);
  st.best_val_loss = v.toDouble();
  a.read("best_epoch", v);
  st.best_epoch = static_cast<int>(v.toInt());
  a.read("bad_epochs", v);
  st.bad_epochs = static_cast<int>(v.toInt());
  a.read("seconds", v);
  st.seconds = v.toDouble();
  detail::load_net(net, a, path.string());
  st.best = clone_state(net);
  for (std::size_t i = 0; i < st.best.size(); ++i) a.read("best/" + std::to_string(i), st.best[i], true);
  torch::serialize::InputArchive o;
  a.read("optimizer", o);
  opt.load(o);
  return true;
}

}  // namespace

std::filesystem::path checkpoint_path(const std::filesystem::path& out) {
  std::filesystem::path p = out;
  p += ".ckpt";
  return p;
}

namespace {

void check_train_config(const TrainConfig& c) {
  const auto& archs = native_architectures();
  if (std::find(archs.begin(), archs.end(), c.architecture) == archs.end())
    throw ConfigError("--arch " + c.architecture + ": expected small-cnn or resnet18");
  if (c.augment != "none" && c.augment != "flip" && c.augment != "crop" && c.augment != "flip+crop")
    throw ConfigError("--augment " + c.augment + ": expected none, flip, crop or flip+crop");
  if (c.epochs < 1 || c.batch < 1 || c.input_size < 8 || !(c.lr > 0) || c.patience < 1)
    throw ConfigError("training settings out of range (epochs, batch, size, lr, patience must be positive)");
}

/// The input normalisation of the training images, on the device.
struct Normaliser {
  torch::Tensor mean, inv_std;
  Normaliser(const Normalisation& nm, const c10::Device& device)
      : mean(torch::tensor({nm.mean[0], nm.mean[1], nm.mean[2]}).view({1, 3, 1, 1}).to(device)),
        inv_std((1.0 / torch::tensor({nm.std[0], nm.std[1], nm.std[2]})).view({1, 3, 1, 1}).to(device)) {}
};

/// One epoch over the training split in the counter RNG's order: summed loss and correct count.
std::pair<double, std::int64_t> train_epoch(detail::NativeNet& net, torch::optim::AdamW& opt, const TrainConfig& c,
                                            const Dataset& d, const Normaliser& nz, const c10::Device& device, int epoch) {
  const std::int64_t n_train = static_cast<std::int64_t>(d.train.size());
  // Shuffle with the counter RNG (Fisher–Yates), keyed by epoch.
  std::vector<std::int64_t> order(static_cast<std::size_t>(n_train));
  std::iota(order.begin(), order.end(), 0);
  CounterRng shuffle(RngKey{c.seed, stable_hash64("train-order"), static_cast<std::uint32_t>(epoch), RngStream::kTrain});
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle.below(i)]);

  net.train();
  double loss_sum = 0.0;
  std::int64_t correct = 0;
  for (std::int64_t b = 0; b < n_train; b += c.batch) {
    const std::int64_t len = std::min<std::int64_t>(c.batch, n_train - b);
    const auto idx = torch::tensor(std::vector<std::int64_t>(order.begin() + b, order.begin() + b + len), torch::kLong);
    std::vector<std::string> ids;
    for (std::int64_t i = b; i < b + len; ++i) ids.push_back(d.train.ids[static_cast<std::size_t>(order[i])]);
    torch::Tensor x = augment_batch(d.train.images.index_select(0, idx), ids, c.augment, c.seed, epoch);
    x = (x.to(device) - nz.mean) * nz.inv_std;
    const torch::Tensor y = d.train.labels.index_select(0, idx).to(device);
    opt.zero_grad();
    const torch::Tensor z = net.forward(x);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(z, y);
    loss.backward();
    opt.step();
    loss_sum += loss.item<double>() * static_cast<double>(len);
    correct += z.detach().argmax(1).eq(y).sum().item<std::int64_t>();
  }
  return {loss_sum, correct};
}

TrainingRecord training_record(const TrainConfig& c, const Dataset& d, const LoopState& st, double train_accuracy,
                               double val_accuracy, double test_accuracy) {
  TrainingRecord rec;
  rec.manifest_hash = c.manifest.hash();
  rec.data_root = c.image_root.empty() ? c.manifest.data_root : c.image_root.string();
  rec.test_fraction = c.manifest.split.test_fraction;
  rec.val_fraction = c.manifest.split.val_fraction;
  rec.split_seed = c.manifest.split.seed;
  rec.train_images = d.train.size();
  rec.val_images = d.val.size();
  rec.test_images = d.test.size();
  rec.epochs_max = c.epochs;
  rec.epochs_run = st.epochs_done;
  rec.best_epoch = st.best_epoch;
  rec.seed = c.seed;
  rec.lr = c.lr;
  rec.batch = c.batch;
  rec.augment = c.augment;
  rec.threads = c.threads;
  rec.train_accuracy = train_accuracy;
  rec.val_accuracy = val_accuracy;
  rec.test_accuracy = test_accuracy;
  rec.seconds = st.seconds;
  return rec;
}

}  // namespace

TrainResult train_classifier(const TrainConfig& c, const std::function<void(const EpochReport&)>& on_epoch,
                             const TrainLog& log) {
  const auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  check_train_config(c);
  const c10::Device device = parse_device(c.device);

  const auto t_load = Clock::now();
  const Dataset d = load_dataset(c);
  say("data: " + std::to_string(d.train.size()) + " train, " + std::to_string(d.val.size()) + " val, " +
      std::to_string(d.test.size()) + " test images, " + std::to_string(d.classes.size()) + " classes, decoded at " +
      std::to_string(c.input_size) + "x" + std::to_string(c.input_size) + " in " +
      std::to_string(seconds_since(t_load)).substr(0, 5) + " s");

  Sidecar sidecar;
  sidecar.backend = "native";
  sidecar.architecture = c.architecture;
  sidecar.task = c.task;
  sidecar.classes = d.classes;
  sidecar.input_size = c.input_size;
  sidecar.normalisation = channel_stats(d.train.images);
  const Normaliser nz(sidecar.normalisation, device);

  // Initialisation: torch's generator seeded from the counter RNG.
  torch::manual_seed(CounterRng(RngKey{c.seed, stable_hash64("train-init"), 0, RngStream::kTrain}).next_u64());
  auto net = detail::make_native_net(c.architecture, static_cast<std::int64_t>(d.classes.size()), c.input_size,
                                     c.out.string());
  net->to(device);
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(c.lr).weight_decay(c.weight_decay));

  const std::string fp = fingerprint(c, d.classes.size());
  const auto ckpt = checkpoint_path(c.out);
  LoopState st;
  TrainResult result;
  if (load_checkpoint(ckpt, fp, *net, opt, st)) {
    result.resumed_from_epoch = st.epochs_done;
    say("resuming from " + ckpt.string() + " after epoch " + std::to_string(st.epochs_done));
  } else {
    st.best = clone_state(*net);
  }

  const std::int64_t n_train = static_cast<std::int64_t>(d.train.size());
  const double pi = std::acos(-1.0);
  for (int epoch = st.epochs_done + 1; epoch <= c.epochs; ++epoch) {
    if (st.bad_epochs >= c.patience) break;
    const auto t0 = Clock::now();
    const double lr = c.lr * 0.5 * (1.0 + std::cos(pi * (epoch - 1) / c.epochs));
    for (auto& group : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    const auto [loss_sum, correct] = train_epoch(*net, opt, c, d, nz, device, epoch);
    const double train_seconds = seconds_since(t0);
    const EvalResult val = evaluate(*net, d.val, nz.mean, nz.inv_std, device);

    EpochReport r;
    r.epoch = epoch;
    r.epochs = c.epochs;
    r.loss = loss_sum / static_cast<double>(n_train);
    r.train_accuracy = static_cast<double>(correct) / static_cast<double>(n_train);
    r.val_accuracy = val.accuracy;
    r.val_loss = val.loss;
    r.images_per_second = static_cast<double>(n_train) / std::max(train_seconds, 1e-9);
    // Without a val split, every epoch counts as an improvement (the last one is kept).
    r.improved = d.val.size() == 0 || val.accuracy > st.best_val ||
                 (val.accuracy == st.best_val && val.loss < st.best_val_loss);
    if (r.improved) {
      st.best_val = val.accuracy;
      st.best_val_loss = val.loss;
      st.best_epoch = epoch;
      st.bad_epochs = 0;
      st.best = clone_state(*net);
    } else {
      ++st.bad_epochs;
    }
    st.epochs_done = epoch;
    st.seconds += seconds_since(t0);
    save_checkpoint(ckpt, fp, *net, opt, st);
    const int left = st.bad_epochs >= c.patience ? 0 : c.epochs - epoch;
    r.eta_seconds = left * (st.seconds / epoch);
    if (on_epoch) on_epoch(r);
  }
  result.early_stopped = st.epochs_done < c.epochs;

  restore_state(*net, st.best);
  const double train_acc = evaluate(*net, d.train, nz.mean, nz.inv_std, device).accuracy;
  const double val_acc = evaluate(*net, d.val, nz.mean, nz.inv_std, device).accuracy;
  const double test_acc = evaluate(*net, d.test, nz.mean, nz.inv_std, device).accuracy;
  result.record = training_record(c, d, st, train_acc, val_acc, test_acc);
  sidecar.training = result.record;

  net->to(torch::kCPU);
  torch::serialize::OutputArchive model;
  detail::save_net(*net, model);
  detail::save_archive_atomic(model, c.out);
  write_sidecar(c.out, sidecar);
  std::filesystem::remove(ckpt);
  return result;
}

}  // namespace edi::models
