#pragma once
/// \file The JSON sidecar that travels with every model file (`<file>.json`)
/// and the reference dispatch behind load_classifier. The sidecar is the only
/// metadata the C++ side reads: no Python object is ever unpickled.
///
/// Schema (version 1), shared with scripts/export_torchscript.py:
/// ```
/// { "format": "edi-anon-model", "version": 1,
///   "backend": "torchscript" | "native",
///   "architecture": "small-cnn", "task": "identity",
///   "classes": ["a", "b", ...],            // logit order
///   "input_size": 64,                      // square side S
///   "normalisation": {"mean": [r,g,b], "std": [r,g,b]},
///   "training": {...}, "source": {...} }   // optional provenance
/// ```
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "edi/models/classifier.hpp"
#include "edi/models/human.hpp"

namespace edi::data {
struct Manifest;
}

namespace edi::models {

/// Load any classifier by reference: a model file with its sidecar,
/// faceapi:age-gender or human:faceres-age-gender. Throws ModelError with one
/// clear line (bad file, missing sidecar, unknown reference, an ensemble list
/// or an embedder given where one classifier is needed).
std::unique_ptr<Classifier> load_classifier(const ModelRef& reference, const LoadOptions& options = {});
/// The same, parsing `reference` first.
std::unique_ptr<Classifier> load_classifier(const std::string& reference, const LoadOptions& options = {});

/// Check that `model` classifies exactly the classes of `task` in `manifest`
/// ("identity": the manifest's identities; otherwise the attribute task's
/// classes), same count, same names, same order. Throws ModelError with one
/// line naming the model, the data set and the first difference.
void check_classes(const Classifier& model, const data::Manifest& manifest, const std::string& task);

/// Provenance of a model trained by `edi-anon train`.
struct TrainingRecord {
  std::string manifest_hash;      ///< data::Manifest::hash() of the data set
  std::string data_root;          ///< where the images were read from
  double test_fraction = 0.0;     ///< split settings of the manifest
  double val_fraction = 0.0;
  std::uint64_t split_seed = 0;
  std::size_t train_images = 0, val_images = 0, test_images = 0;
  int epochs_max = 0;             ///< --epochs
  int epochs_run = 0;             ///< epochs actually trained (early stopping)
  int best_epoch = 0;             ///< 1-based epoch whose weights were kept
  std::uint64_t seed = 0;
  double lr = 0.0;
  int batch = 0;
  std::string augment;
  int threads = 0;
  double train_accuracy = 0.0, val_accuracy = 0.0, test_accuracy = 0.0;
  double seconds = 0.0;           ///< wall time of the training epochs
};

/// Everything a sidecar says about its model file.
struct Sidecar {
  std::string backend;       ///< "torchscript" or "native"
  std::string architecture;
  std::string task;
  std::vector<std::string> classes;
  int input_size = 0;
  Normalisation normalisation;
  std::optional<TrainingRecord> training;
  std::string source_json;   ///< optional "source" object, kept verbatim (JSON text)
  std::string file_sha256;   ///< sha256 of the sidecar file's bytes (read_sidecar); empty when parsed from text
};

/// `<model>.json`.
std::filesystem::path sidecar_path(const std::filesystem::path& model);

/// Parse sidecar JSON text; `source` names the file in errors. Throws
/// ModelError("<source>: <what is wrong> (expected ...)").
Sidecar sidecar_from_json(const std::string& text, const std::string& source);
/// Canonical JSON text (pretty-printed, trailing newline).
std::string sidecar_to_json(const Sidecar& sidecar);

/// Read `<model>.json`; ModelError when missing or malformed.
Sidecar read_sidecar(const std::filesystem::path& model);
/// Write `<model>.json` atomically.
void write_sidecar(const std::filesystem::path& model, const Sidecar& sidecar);

// is_embedder_reference() and load_embedder() (faceapi:recognition,
// human:faceres) are declared in edi/models/human.hpp, included here.

/// Fill the common ModelInfo fields from a sidecar.
ModelInfo info_from_sidecar(const std::string& reference, const Sidecar& sidecar, const std::string& file_sha256);

}  // namespace edi::models
