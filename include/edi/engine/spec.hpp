#pragma once
/// \file What one anonymization run does: method, operator, explainer,
/// selection, stop rule, escalation. Validated once; `const&` after that.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edi/engine/steering.hpp"
#include "edi/explain/spec.hpp"
#include "edi/perturb/operators.hpp"
#include "edi/perturb/regions.hpp"

namespace edi::engine {

/// EDI (explain → select → perturb, pass after pass), a conventional
/// baseline (the operator over the whole image, or a face-region mask, once),
/// or the control (no perturbation: the originals as decoded and resized).
enum class Method { kEdi, kConventional, kNone };

/// When perturbation stops.
enum class StopRule {
  kImage,    ///< per image: once it is no longer identified (criterion below)
  kDataset,  ///< the paper's rule: stop all once the identified share ≤ target risk
  kFixed,    ///< benchmark mode: every image gets exactly `passes` passes
};

/// When an image counts as still identified by the steering model.
enum class Criterion {
  kTop1,  ///< the true identity is the top-1 prediction (the paper's rule)
  kTopK,  ///< the true identity is among the top k
  kProb,  ///< the true identity's probability is above tau
};

struct EngineSpec {
  Method method = Method::kEdi;
  perturb::OperatorSpec op = perturb::OperatorSpec::defaults("blur");
  /// Conventional only: mask this face region (Haar cascades) instead of P over the image.
  std::optional<perturb::Region> region;
  explain::ExplainSpec explain;
  explain::SelectSpec select;
  SteeringSpec steering;  ///< EOT (ensemble and judge come with the models)

  StopRule stop = StopRule::kImage;
  Criterion criterion = Criterion::kTop1;
  int top_k = 5;
  double tau = 0.01;
  double target_risk = 1.0;  ///< percent; dataset rule: stop once the identified share is <= this
  /// Dataset rule: every target (percent), sorted descending, no duplicates;
  /// the run writes a snapshot at the first pass at or below each one. When
  /// non-empty, `target_risk` is its last (lowest) element (set_targets).
  std::vector<double> targets;
  /// Dataset rule (--snapshot-psnr): PSNR targets in dB, sorted descending; the
  /// run writes a snapshot snapshots/psnr<T>/ at the first pass whose mean PSNR
  /// (state against original, over the images that changed) is at or below
  /// each one. It never changes the run itself.
  std::vector<double> psnr_targets;
  int max_passes = 50;       ///< cap for image/dataset rules
  int passes = 10;           ///< fixed rule

  /// Escalation at a stall (the state did not change in a pass): the
  /// operator's strength grows by `escalate_factor` (1 = off) up to
  /// `escalate_max` times; an image that stalls beyond that is marked stalled.
  double escalate_factor = 1.0;
  int escalate_max = 4;

  bool jpeg_roundtrip = false;  ///< the authors' data path: JPEG encode/decode after every pass
  int jpeg_quality = 95;
  std::uint64_t seed = 0;
  int batch = 32;               ///< images per forward+backward

  /// Passes the loop may run at most (the fixed count or the cap); 0 for a
  /// conventional baseline or the control (evaluated once, at pass 0).
  int pass_limit() const {
    if (method != Method::kEdi) return 0;
    return stop == StopRule::kFixed ? passes : max_passes;
  }
};

/// Throws ConfigError naming the first bad option, its value and the range.
void validate(const EngineSpec& spec);

const char* method_name(Method m);
const char* stop_rule_name(StopRule s);
const char* criterion_name(Criterion c);
Method parse_method(const std::string& text);        ///< names --method (edi|conventional|none)
StopRule parse_stop_rule(const std::string& text);   ///< names --stop
Criterion parse_criterion(const std::string& text);  ///< names --criterion

/// --target-risk: one percentage or a comma list ("60,27.3,10"), each in
/// [0, 100]; returned sorted descending without duplicates. ConfigError
/// names --target-risk, the value and what is allowed.
std::vector<double> parse_targets(const std::string& text);
/// --snapshot-psnr: one PSNR in dB or a comma list ("18,16"), each in [1, 100];
/// returned sorted descending without duplicates (ConfigError names the option).
std::vector<double> parse_psnr_targets(const std::string& text);
/// Set `targets` (sorted descending, duplicates dropped) and `target_risk`
/// (the lowest, so the stop rule is the same as with one target).
void set_targets(EngineSpec& spec, std::vector<double> targets);
/// A target as it names a snapshot directory and a table row: the shortest
/// "%g"-style form (27.3 -> "27.3", 10 -> "10", 0.5 -> "0.5").
std::string target_text(double target);

/// The operator spec at escalation `level` (level 0 = `spec`): blur k, pixelate
/// n, Gaussian σ (and k), noise σ grow by factor^level; DP ε shrinks by it
/// (more noise); every size is capped by `max_side`.
perturb::OperatorSpec escalated(const perturb::OperatorSpec& spec, double factor, int level, int max_side);
/// The selection at escalation `level`: the selected share (100 − q) grows by factor^level.
explain::SelectSpec escalated(const explain::SelectSpec& spec, double factor, int level);

/// One line describing the run, e.g. "edi blur(k=40) q=90 gradient/runner-up stop=image(top1) cap=50".
std::string describe(const EngineSpec& spec);

}  // namespace edi::engine
