#include "edi/explain/spec.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "edi/core/error.hpp"

namespace edi::explain {
namespace {

/// Shortest decimal text that reads back as the same double ("100.5", "0.15").
std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Plain notation for ordinary magnitudes ("100", not "1e+02").
  const bool plain = v == 0.0 || (std::fabs(v) >= 1e-5 && std::fabs(v) < 1e15);
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    const bool has_exponent = std::string_view(buf).find('e') != std::string_view::npos;
    if (std::strtod(buf, nullptr) == v && !(plain && has_exponent)) break;
  }
  return buf;
}

[[noreturn]] void fail(std::string_view option, const std::string& value, std::string_view expected) {
  std::string msg;
  msg.append(option).append(" ").append(value).append(": expected ").append(expected);
  throw ConfigError(msg);
}

void check_int(std::string_view option, std::int64_t v, std::int64_t lo, std::int64_t hi) {
  if (v < lo || v > hi) {
    fail(option, std::to_string(v),
         "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
}

/// Closed range [lo, hi] (or [lo, hi) / (lo, hi] when open_lo / open_hi).
void check_number(std::string_view option, double v, double lo, double hi, bool open_lo, bool open_hi) {
  const bool ok = std::isfinite(v) && (open_lo ? v > lo : v >= lo) && (open_hi ? v < hi : v <= hi);
  if (!ok) {
    fail(option, number_text(v),
         std::string("a number in ") + (open_lo ? "(" : "[") + number_text(lo) + ", " + number_text(hi) +
             (open_hi ? ")" : "]"));
  }
}

template <typename E, std::size_t K>
E parse_name(std::string_view option, std::string_view name, const std::pair<std::string_view, E> (&table)[K]) {
  std::string allowed;
  for (const auto& [text, value] : table) {
    if (text == name) return value;
    if (!allowed.empty()) allowed += ", ";
    allowed.append(text);
  }
  fail(option, std::string(name.empty() ? "''" : name), "one of " + allowed);
}

template <typename E, std::size_t K>
std::string_view name_of(E value, const std::pair<std::string_view, E> (&table)[K]) {
  for (const auto& [text, v] : table) {
    if (v == value) return text;
  }
  return "unknown";
}

const std::pair<std::string_view, Target> kTargets[] = {
    {"runner-up", Target::kRunnerUp}, {"true-class", Target::kTrueClass}, {"feature", Target::kFeature}};
const std::pair<std::string_view, IgRule> kIgRules[] = {
    {"trapezoid", IgRule::kTrapezoid}, {"midpoint", IgRule::kMidpoint}};
const std::pair<std::string_view, Granularity> kGranularities[] = {
    {"entry", Granularity::kEntry}, {"pixel", Granularity::kPixel}};
const std::pair<std::string_view, DeletionBaseline> kBaselines[] = {
    {"constant", DeletionBaseline::kConstant}, {"blur", DeletionBaseline::kBlur}};

}  // namespace

std::vector<double> default_deletion_fractions() {
  std::vector<double> f;
  for (int i = 0; i <= 20; ++i) f.push_back(i / 20.0);
  return f;
}

const std::vector<ExplainerInfo>& explainer_registry() {
  static const std::vector<ExplainerInfo> registry = {
      {"gradient", Attribution::kGradient,
       "signed input gradient of the loss (paper's rule; default)"},
      {"abs-gradient", Attribution::kAbsGradient, "absolute input gradient |dL/dx| (ablation)"},
      {"smoothgrad", Attribution::kSmoothGrad,
       "mean gradient over --smoothgrad-samples noisy copies with std --smoothgrad-sigma"},
      {"integrated-gradients", Attribution::kIntegratedGradients,
       "(x - baseline) * mean gradient over --ig-steps points from a constant --ig-baseline image"},
  };
  return registry;
}

std::string_view attribution_name(Attribution method) {
  for (const auto& e : explainer_registry()) {
    if (e.method == method) return e.name;
  }
  return "unknown";
}

Attribution parse_attribution(std::string_view name) {
  std::string allowed;
  for (const auto& e : explainer_registry()) {
    if (e.name == name) return e.method;
    if (!allowed.empty()) allowed += ", ";
    allowed.append(e.name);
  }
  fail("--explainer", std::string(name.empty() ? "''" : name), "one of " + allowed);
}

std::string explainer_help() {
  std::size_t width = 0;
  for (const auto& e : explainer_registry()) width = std::max(width, e.name.size());
  std::string out;
  for (const auto& e : explainer_registry()) {
    out.append("  ").append(e.name).append(width - e.name.size() + 2, ' ').append(e.help).append("\n");
  }
  return out;
}

std::string_view target_name(Target target) { return name_of(target, kTargets); }
Target parse_target(std::string_view name) { return parse_name("--target", name, kTargets); }
std::string_view ig_rule_name(IgRule rule) { return name_of(rule, kIgRules); }
IgRule parse_ig_rule(std::string_view name) { return parse_name("--ig-rule", name, kIgRules); }
std::string_view granularity_name(Granularity g) { return name_of(g, kGranularities); }
Granularity parse_granularity(std::string_view name) { return parse_name("--select", name, kGranularities); }
std::string_view deletion_baseline_name(DeletionBaseline b) { return name_of(b, kBaselines); }
DeletionBaseline parse_deletion_baseline(std::string_view name) {
  return parse_name("--deletion-baseline", name, kBaselines);
}

void validate(const ExplainSpec& spec) {
  if (attribution_name(spec.method) == "unknown") {
    fail("--explainer", std::to_string(static_cast<int>(spec.method)), "a registered explainer");
  }
  if (target_name(spec.target) == "unknown") {
    fail("--target", std::to_string(static_cast<int>(spec.target)), "one of runner-up, true-class, feature");
  }
  if (spec.method == Attribution::kSmoothGrad) {
    check_int("--smoothgrad-samples", spec.smoothgrad_samples, 1, 1024);
    check_number("--smoothgrad-sigma", spec.smoothgrad_sigma, 0.0, 1.0, /*open_lo=*/true, false);
  }
  if (spec.method == Attribution::kIntegratedGradients) {
    check_int("--ig-steps", spec.ig_steps, 1, 4096);
    if (ig_rule_name(spec.ig_rule) == "unknown") {
      fail("--ig-rule", std::to_string(static_cast<int>(spec.ig_rule)), "one of trapezoid, midpoint");
    }
    check_number("--ig-baseline", spec.ig_baseline, 0.0, 1.0, false, false);
  }
  if (spec.max_rows < 0) {
    fail("--max-rows", std::to_string(spec.max_rows), "an integer >= 0 (0 = no bound)");
  }
}

void validate(const SelectSpec& spec) {
  check_number("--q", spec.q, 0.0, 100.0, false, /*open_hi=*/true);
  if (granularity_name(spec.granularity) == "unknown") {
    fail("--select", std::to_string(static_cast<int>(spec.granularity)), "one of entry, pixel");
  }
}

void validate(const DeletionSpec& spec) {
  if (spec.fractions.empty()) fail("--deletion-fractions", "''", "at least one fraction in [0, 1]");
  for (std::size_t i = 0; i < spec.fractions.size(); ++i) {
    const double f = spec.fractions[i];
    check_number("--deletion-fractions", f, 0.0, 1.0, false, false);
    if (i > 0 && !(f > spec.fractions[i - 1])) {
      fail("--deletion-fractions", number_text(f),
           "strictly ascending fractions (follows " + number_text(spec.fractions[i - 1]) + ")");
    }
  }
  if (deletion_baseline_name(spec.baseline) == "unknown") {
    fail("--deletion-baseline", std::to_string(static_cast<int>(spec.baseline)), "one of constant, blur");
  }
  check_number("--deletion-value", spec.value, 0.0, 1.0, false, false);
  if (spec.baseline == DeletionBaseline::kBlur) {
    check_number("--deletion-blur-sigma", spec.blur_sigma, 0.0, 64.0, true, false);
  }
  if (spec.max_rows < 0) {
    fail("--max-rows", std::to_string(spec.max_rows), "an integer >= 0 (0 = no bound)");
  }
}

}  // namespace edi::explain
