#pragma once
/// \file Supervised training of native nets (`edi-anon train`): the manifest's
/// train split is the training set, val drives early stopping, test is
/// reported at the end. Deterministic for a fixed seed and thread count:
/// initialisation from the torch generator seeded per run, shuffles and
/// augmentation from the counter RNG (RngStream::kTrain) keyed by epoch and
/// image id. A checkpoint `<out>.ckpt` (model, optimiser, epoch, best weights,
/// early-stopping state) is replaced atomically after every epoch, so a killed
/// run resumes exactly from its last finished epoch.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "edi/data/manifest.hpp"
#include "edi/models/registry.hpp"

namespace edi::models {

/// Settings of one training run.
struct TrainConfig {
  data::Manifest manifest;            ///< data set with splits
  std::filesystem::path image_root;   ///< where entry ids are resolved (default: manifest.data_root)
  std::string task = "identity";      ///< "identity" or a task of the manifest
  std::string architecture = "small-cnn";
  std::filesystem::path out;          ///< model file; sidecar `<out>.json`, checkpoint `<out>.ckpt`
  int epochs = 30;
  int batch = 32;
  double lr = 2e-3;                   ///< Adam peak learning rate (cosine decay over `epochs`)
  double weight_decay = 5e-4;
  int patience = 8;                   ///< stop after this many epochs without a val improvement
  std::uint64_t seed = 0;
  int input_size = 64;
  std::string augment = "flip+crop";  ///< "none", "flip", "crop" or "flip+crop"
  std::string device = "cpu";
  int threads = 1;                    ///< recorded in the sidecar
};

/// What one finished epoch reports.
struct EpochReport {
  int epoch = 0;               ///< 1-based
  int epochs = 0;
  double loss = 0.0;           ///< mean training loss
  double train_accuracy = 0.0; ///< on the (augmented) training batches
  double val_accuracy = 0.0;
  double val_loss = 0.0;
  double images_per_second = 0.0;
  double eta_seconds = 0.0;    ///< remaining epochs × mean epoch time
  bool improved = false;       ///< new best val accuracy (weights kept)
};

/// Outcome of a run.
struct TrainResult {
  TrainingRecord record;
  int resumed_from_epoch = 0;  ///< 0 = fresh start
  bool early_stopped = false;
};

/// Messages besides epoch reports (resume, data summary).
using TrainLog = std::function<void(const std::string&)>;

/// Train, write `<out>` + sidecar, remove the checkpoint. Throws ConfigError
/// for bad settings (unknown task, empty split, checkpoint from other
/// settings), DataError for unreadable images.
TrainResult train_classifier(const TrainConfig& config, const std::function<void(const EpochReport&)>& on_epoch = {},
                             const TrainLog& log = {});

/// Checkpoint path for a model path: `<out>.ckpt`.
std::filesystem::path checkpoint_path(const std::filesystem::path& out);

}  // namespace edi::models
