#pragma once
/// \file Options of the explain stage: which attribution method, which target,
/// how entries are selected, how the deletion curve is run; the registry of
/// explainer names for CLI help; validation with one-line ConfigError messages.
///
/// Messages name a field as `--` plus the name of the cli option row that
/// sets it (src/cli/engine_options.cpp; test_cli_rows checks that they agree).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edi::explain {

/// Attribution method (how the explainer scores entries; engine::Method is the anonymization method).
enum class Attribution {
  kGradient,             ///< signed input gradient dL/dx (the paper's rule, default)
  kAbsGradient,          ///< |dL/dx| (ablation)
  kSmoothGrad,           ///< mean of dL/dx over noisy copies x + N(0, sigma^2)
  kIntegratedGradients,  ///< (x - x0) * average of dL/dx along x0 -> x
};

/// What the loss L is for a classifier. Every method attributes L, and the
/// attribution is signed so that *increasing* entries with positive values
/// increases L.
enum class Target {
  /// L = CrossEntropy(logits, runner-up), runner-up = second-largest logit of
  /// the clean image (the paper's rule, default). Ties: first index wins.
  kRunnerUp,
  /// L = CrossEntropy(logits, true label): positive entries raise the loss of
  /// the true identity.
  kTrueClass,
  /// Feature level, for embedders and gallery classifiers: L = ||f(x) − f(x₀)||²
  /// with x₀ the image's own original, so positive entries push the embedding
  /// away from the original's (explain_embedding with the original enrolled).
  /// A plain classifier has no features: engine::Steerer refuses it.
  kFeature,
};

/// Quadrature rule of Integrated Gradients over alpha in [0, 1] with m steps.
enum class IgRule {
  /// alpha_k = k/m, k = 0..m, weights 1/m with the two end points halved
  /// (m + 1 gradient evaluations; the end points give f(x) and f(x0) for the
  /// completeness error with no extra evaluation). Default.
  kTrapezoid,
  /// alpha_k = (k + 1/2)/m, k = 0..m-1, weights 1/m (m evaluations, plus the
  /// two end points evaluated once for the prediction and completeness error).
  kMidpoint,
};

/// How entries are selected from an attribution map.
enum class Granularity {
  kEntry,  ///< per pixel per channel over all 3*H*W entries (the paper's rule)
  kPixel,  ///< score = max over channels; a selected pixel gets all 3 channels
};

/// Options of one explain call.
struct ExplainSpec {
  Attribution method = Attribution::kGradient;
  Target target = Target::kRunnerUp;
  int smoothgrad_samples = 16;     ///< n noisy copies, [1, 1024]
  double smoothgrad_sigma = 0.15;  ///< noise std in input units (images in [0,1]), (0, 1]
  int ig_steps = 32;               ///< m, [1, 4096]
  IgRule ig_rule = IgRule::kTrapezoid;
  double ig_baseline = 0.0;        ///< constant baseline image value, [0, 1] (0 = black)
  /// Upper bound on rows (images times samples) per forward call; 0 = no bound
  /// (one call for the whole batch). Images are never split across calls.
  std::int64_t max_rows = 0;
};

/// Options of entry selection (attribution -> mask).
struct SelectSpec {
  double q = 90.0;  ///< percentile; entries with G >= percentile(G, q) are selected, [0, 100)
  Granularity granularity = Granularity::kEntry;
};

/// What deleted entries are replaced with in a deletion curve.
enum class DeletionBaseline {
  kConstant,  ///< a constant value (default 0 = black)
  kBlur,      ///< the same entry of a Gaussian-blurred copy of the image
};

/// 0, 0.05, ..., 1 (21 points): the default deletion grid.
std::vector<double> default_deletion_fractions();

/// Options of a deletion curve.
struct DeletionSpec {
  /// Fractions of the 3*H*W entries removed, ascending, unique, in [0, 1].
  std::vector<double> fractions = default_deletion_fractions();
  DeletionBaseline baseline = DeletionBaseline::kConstant;
  double value = 0.0;       ///< constant baseline value, [0, 1]
  double blur_sigma = 5.0;  ///< Gaussian sigma in pixels for kBlur, (0, 64]
  std::int64_t max_rows = 0;  ///< rows (images times fractions) per forward call; 0 = no bound
};

/// One entry of the explainer registry.
struct ExplainerInfo {
  std::string_view name;  ///< CLI name, e.g. "smoothgrad"
  Attribution method;
  std::string_view help;  ///< one line for --help
};

/// All explainers, in the order shown by --help; the first is the default.
const std::vector<ExplainerInfo>& explainer_registry();

/// CLI name of a method.
std::string_view attribution_name(Attribution method);
/// Attribution method from a CLI name; throws ConfigError
/// "--explainer NAME: expected one of gradient, abs-gradient, ...".
Attribution parse_attribution(std::string_view name);

std::string_view target_name(Target target);    ///< "runner-up", "true-class" or "feature"
Target parse_target(std::string_view name);     ///< throws ConfigError naming --target
std::string_view ig_rule_name(IgRule rule);     ///< "trapezoid" or "midpoint"
IgRule parse_ig_rule(std::string_view name);    ///< throws ConfigError naming --ig-rule
std::string_view granularity_name(Granularity g);   ///< "entry" or "pixel"
Granularity parse_granularity(std::string_view name);  ///< throws ConfigError naming --select
std::string_view deletion_baseline_name(DeletionBaseline b);  ///< "constant" or "blur"
DeletionBaseline parse_deletion_baseline(std::string_view name);  ///< names --deletion-baseline

/// Throw ConfigError with one line naming the first bad option, its value and
/// the allowed range, e.g. "--q 100.5: expected a number in [0, 100)".
void validate(const ExplainSpec& spec);
void validate(const SelectSpec& spec);
void validate(const DeletionSpec& spec);

/// Help text: one line per registered explainer ("  name  help").
std::string explainer_help();

}  // namespace edi::explain
