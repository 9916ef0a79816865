#pragma once
/// \file A model reference, parsed once from the string the user wrote (stage
/// model_api). Every model string of the tool (--model, --judge, attackers,
/// utility models) is one of:
///   - a path to a model file with its JSON sidecar (TorchScript or native);
///   - `faceapi:NET`: a ported face-api net (recognition, age-gender);
///   - `human:NET`: a ported human net (faceres, faceres-age-gender);
///   - `A,B[,C]`: an ensemble of those (ensemble steering).
/// The prefixes and the built-in net names are spelled only in model_ref.cpp.
#include <string>
#include <vector>

namespace edi::models {

enum class ModelKind {
  kFile,      ///< a model file with its `.json` sidecar
  kFaceApi,   ///< faceapi:NET
  kHuman,     ///< human:NET
  kEnsemble,  ///< A,B[,C]: two or more references, none of them a list
};

/// The built-in references (the canonical text of each).
extern const char* const kFaceApiRecognition;    ///< "faceapi:recognition": an embedder (128-d)
extern const char* const kFaceApiAgeGender;      ///< "faceapi:age-gender": gender or age classifier
extern const char* const kHumanFaceRes;          ///< "human:faceres": an embedder (1024-d)
extern const char* const kHumanFaceResAgeGender; ///< "human:faceres-age-gender": gender or age classifier

/// The kind `text` names, by its form alone (a comma, a prefix), without
/// validating it: for code that only branches on the kind. Never throws.
ModelKind kind_of(const std::string& text);

struct ModelRef {
  ModelKind kind = ModelKind::kFile;
  /// Canonical text: blanks (spaces, tabs) around each reference removed,
  /// ensemble members joined by ",". A file's path as written otherwise.
  std::string text;
  /// kFaceApi / kHuman: the net after the prefix ("recognition", "faceres", ...).
  std::string net;
  /// kEnsemble: the members in order.
  std::vector<ModelRef> members;

  /// Parse `text`. Throws ConfigError when it (or a list member) is empty and
  /// ModelError naming it for an unknown faceapi:/human: net, each with the
  /// references that are expected.
  static ModelRef parse(const std::string& text);

  /// faceapi:NET or human:NET (weights are the fetched assets, no sidecar).
  bool builtin() const { return kind == ModelKind::kFaceApi || kind == ModelKind::kHuman; }
  /// faceapi:recognition or human:faceres: an embedder, a classifier only as a gallery.
  bool is_embedder() const;
  /// Whether this is exactly the built-in reference `reference` (one of the constants above).
  bool is(const char* reference) const { return text == reference; }
  /// The members of an ensemble, or this reference alone.
  std::vector<ModelRef> list() const;
};

}  // namespace edi::models
