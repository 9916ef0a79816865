#include "edi/engine/spec.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"

namespace edi::engine {

namespace {
std::string num(double v) { return format_g(v); }
}  // namespace

const char* method_name(Method m) {
  switch (m) {
    case Method::kEdi: return "edi";
    case Method::kConventional: return "conventional";
    case Method::kNone: return "none";
  }
  return "?";
}

const char* stop_rule_name(StopRule s) {
  switch (s) {
    case StopRule::kImage: return "image";
    case StopRule::kDataset: return "dataset";
    case StopRule::kFixed: return "fixed";
  }
  return "?";
}

const char* criterion_name(Criterion c) {
  switch (c) {
    case Criterion::kTop1: return "top1";
    case Criterion::kTopK: return "topk";
    case Criterion::kProb: return "prob";
  }
  return "?";
}

Method parse_method(const std::string& t) {
  if (t == "edi") return Method::kEdi;
  if (t == "conventional") return Method::kConventional;
  if (t == "none") return Method::kNone;
  throw ConfigError("--method " + t + ": expected one of edi|conventional|none");
}

StopRule parse_stop_rule(const std::string& t) {
  if (t == "image") return StopRule::kImage;
  if (t == "dataset") return StopRule::kDataset;
  if (t == "fixed") return StopRule::kFixed;
  throw ConfigError("--stop " + t + ": expected one of image|dataset|fixed");
}

Criterion parse_criterion(const std::string& t) {
  if (t == "top1") return Criterion::kTop1;
  if (t == "topk") return Criterion::kTopK;
  if (t == "prob") return Criterion::kProb;
  throw ConfigError("--criterion " + t + ": expected one of top1|topk|prob");
}

namespace {
/// A comma list of numbers in [lo, hi], sorted descending without duplicates; ConfigError(expected) otherwise.
std::vector<double> parse_number_list(const std::string& text, double lo, double hi, const std::string& expected) {
  std::vector<double> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto b = part.find_first_not_of(" \t"), e = part.find_last_not_of(" \t");
    part = b == std::string::npos ? "" : part.substr(b, e - b + 1);
    char* end = nullptr;
    const double v = part.empty() ? -1 : std::strtod(part.c_str(), &end);
    if (part.empty() || *end != '\0' || !(v >= lo && v <= hi)) throw ConfigError(expected);
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::sort(out.begin(), out.end(), std::greater<double>());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}
}  // namespace

std::vector<double> parse_targets(const std::string& text) {
  return parse_number_list(text, 0, 100, "--target-risk " + text + ": expected a percentage in [0, 100] or a comma list of them (e.g. 60,27.3,10)");
}

std::vector<double> parse_psnr_targets(const std::string& text) {
  return parse_number_list(text, 1, 100, "--snapshot-psnr " + text + ": expected a PSNR in dB in [1, 100] or a comma list of them (e.g. 18,16)");
}

void set_targets(EngineSpec& spec, std::vector<double> targets) {
  std::sort(targets.begin(), targets.end(), std::greater<double>());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  spec.targets = std::move(targets);
  if (!spec.targets.empty()) spec.target_risk = spec.targets.back();
}

std::string target_text(double target) { return format_g(target); }

void validate(const EngineSpec& s) {
  if (!s.region) perturb::validate(s.op);
  explain::validate(s.explain);
  explain::validate(s.select);
  validate(s.steering);
  if (s.region && s.method != Method::kConventional)
    throw ConfigError("--operator " + perturb::region_name(*s.region) + ": region masking is a conventional baseline (use --method conventional)");
  for (const double t : s.targets)
    if (!(t >= 0 && t <= 100)) throw ConfigError("--target-risk " + num(t) + ": expected a percentage in [0, 100]");
  if (!s.targets.empty() && (!std::is_sorted(s.targets.rbegin(), s.targets.rend()) || s.target_risk != s.targets.back()))
    throw ConfigError("--target-risk: the targets must be sorted descending and the stop target must be the lowest (use set_targets)");
  for (const double t : s.psnr_targets)
    if (!(t >= 1 && t <= 100)) throw ConfigError("--snapshot-psnr " + num(t) + ": expected a PSNR in dB in [1, 100]");
  if (!s.psnr_targets.empty() && s.method == Method::kEdi && s.stop != StopRule::kDataset)
    throw ConfigError("--snapshot-psnr: needs --stop dataset (a snapshot is taken between the dataset rule's evaluation and "
                      "perturbation of a pass), got --stop " + std::string(stop_rule_name(s.stop)));
  if (s.top_k < 1 || s.top_k > 100000) throw ConfigError("--top-k " + std::to_string(s.top_k) + ": expected an integer in [1, 100000]");
  if (!(s.tau > 0 && s.tau < 1)) throw ConfigError("--tau " + num(s.tau) + ": expected a number in (0, 1)");
  if (!(s.target_risk >= 0 && s.target_risk <= 100))
    throw ConfigError("--target-risk " + num(s.target_risk) + ": expected a percentage in [0, 100]");
  if (s.max_passes < 1 || s.max_passes > 100000)
    throw ConfigError("--max-passes " + std::to_string(s.max_passes) + ": expected an integer in [1, 100000]");
  if (s.passes < 1 || s.passes > 100000) throw ConfigError("--passes " + std::to_string(s.passes) + ": expected an integer in [1, 100000]");
  if (!(s.escalate_factor >= 1 && s.escalate_factor <= 10))
    throw ConfigError("--escalate " + num(s.escalate_factor) + ": expected a factor in [1, 10] (1 = off)");
  if (s.escalate_max < 0 || s.escalate_max > 64)
    throw ConfigError("--escalate-max " + std::to_string(s.escalate_max) + ": expected an integer in [0, 64]");
  if (s.jpeg_quality < 1 || s.jpeg_quality > 100)
    throw ConfigError("--jpeg-quality " + std::to_string(s.jpeg_quality) + ": expected an integer in [1, 100]");
  if (s.batch < 1 || s.batch > 4096) throw ConfigError("--batch " + std::to_string(s.batch) + ": expected an integer in [1, 4096]");
}

perturb::OperatorSpec escalated(const perturb::OperatorSpec& spec, double factor, int level, int max_side) {
  if (level <= 0 || factor <= 1.0) return spec;
  const double g = std::pow(factor, level);
  perturb::OperatorSpec s = spec;
  auto grow = [&](int v) { return std::clamp(static_cast<int>(std::lround(v * g)), v, std::max(v, max_side)); };
  auto odd = [](int v) { return v % 2 ? v : v + 1; };
  if (s.name == "blur") s.k = grow(s.k);
  else if (s.name == "pixelate") s.n = grow(s.n);
  else if (s.name == "gaussian") {
    const double sigma = s.sigma > 0 ? s.sigma : perturb::opencv_gaussian_sigma(s.k);
    s.sigma = sigma * g;
    s.k = std::min(odd(std::max(s.k, static_cast<int>(std::ceil(6 * s.sigma)) | 1)), odd(std::max(max_side, s.k)));
  } else if (s.name == "noise") s.sigma = spec.sigma * g;
  else if (s.name == "dp-pix" || s.name == "dp-blur") s.eps = spec.eps / g;
  return s;
}

explain::SelectSpec escalated(const explain::SelectSpec& spec, double factor, int level) {
  if (level <= 0 || factor <= 1.0) return spec;
  explain::SelectSpec s = spec;
  s.q = std::max(0.0, 100.0 - (100.0 - spec.q) * std::pow(factor, level));
  return s;
}

std::string describe(const EngineSpec& s) {
  std::ostringstream out;
  out << method_name(s.method);
  if (s.method == Method::kNone) return out.str() + " (the originals, no perturbation)";
  out << " ";
  if (s.region) out << perturb::region_name(*s.region) << "-mask";
  else out << perturb::make_operator(s.op)->describe();
  if (s.method == Method::kEdi) {
    out << " q=" << s.select.q << " " << explain::attribution_name(s.explain.method) << "/" << explain::target_name(s.explain.target)
        << " stop=" << stop_rule_name(s.stop);
    if (s.stop == StopRule::kFixed) out << " passes=" << s.passes;
    else out << "(" << criterion_name(s.criterion) << ") cap=" << s.max_passes;
    if (s.stop == StopRule::kDataset) {
      out << " target=";
      if (s.targets.size() > 1)
        for (std::size_t i = 0; i < s.targets.size(); ++i) out << (i ? "," : "") << target_text(s.targets[i]);
      else out << s.target_risk;
      out << "%";
    }
    if (s.escalate_factor > 1) out << " escalate=x" << s.escalate_factor << "^" << s.escalate_max;
    if (s.jpeg_roundtrip) out << " jpeg-q" << s.jpeg_quality;
    out << describe(s.steering);
  }
  return out.str();
}

}  // namespace edi::engine
