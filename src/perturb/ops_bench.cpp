// edi-ops-bench: milliseconds per image for selection and every operator, on
// both paths (OpenCV / histogram selection on the CPU, ATen on the chosen device),
// at the given sizes; and `--parity DEVICE`: the ATen path on DEVICE against the
// CPU reference (identical masks, max |Δ| <= 1e-6), exit 1 when it does not hold.
//
//   edi-ops-bench [--sizes 64,224] [--batch 8] [--threads 1] [--device cpu|cuda] [--runs 5]
//   edi-ops-bench --parity cuda [--sizes 64,224]
//
// Timing: the minimum over --runs runs of one batch, divided by the batch size, with
// edi-anon's allocator tuning and thread setting. On the CPU it is process CPU time (all
// threads: the cost per core, and robust on a shared machine); on CUDA, wall time. Inputs are uniform images and Gaussian attributions,
// keyed like the engine's (CounterRng per image).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "edi/core/rng.hpp"
#include "edi/data/threads.hpp"
#include "edi/explain/select.hpp"
#include "edi/perturb/operators.hpp"

namespace {

using edi::CounterRng;
using edi::RngKey;
namespace perturb = edi::perturb;
namespace explain = edi::explain;

struct Args {
  std::vector<int> sizes{64, 224};
  int batch = 8;
  int threads = 1;
  int runs = 5;
  std::string device = "cpu";
  std::string parity;  ///< device to check against the CPU, empty = timing mode
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "edi-ops-bench: %s\nusage: edi-ops-bench [--sizes 64,224] [--batch N] [--threads N] "
               "[--runs N] [--device cpu|cuda] [--parity cuda]\n", why.c_str());
  std::exit(2);
}

int positive(const std::string& opt, const std::string& v) {
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < 1 || n > 4096) usage(opt + " " + v + ": expected an integer in [1, 4096]");
  return static_cast<int>(n);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string opt = argv[i];
    if (i + 1 >= argc) usage(opt + ": missing value");
    const std::string v = argv[++i];
    if (opt == "--sizes") {
      a.sizes.clear();
      std::stringstream ss(v);
      for (std::string part; std::getline(ss, part, ',');) a.sizes.push_back(positive(opt, part));
    } else if (opt == "--batch") a.batch = positive(opt, v);
    else if (opt == "--threads") a.threads = positive(opt, v);
    else if (opt == "--runs") a.runs = positive(opt, v);
    else if (opt == "--device") a.device = v;
    else if (opt == "--parity") a.parity = v;
    else usage("unknown option " + opt);
  }
  return a;
}

at::Tensor uniform_images(int n, int s, std::uint64_t seed) {
  at::Tensor x = at::empty({n, 3, s, s}, at::kFloat);
  CounterRng rng({seed, 1, 0, edi::RngStream::kSynth});
  float* p = x.data_ptr<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) p[i] = static_cast<float>(rng.uniform());
  return x;
}

at::Tensor gradient_like(int n, int s, std::uint64_t seed) {
  at::Tensor g = at::empty({n, 3, s, s}, at::kFloat);
  CounterRng rng({seed, 2, 0, edi::RngStream::kSynth});
  float* p = g.data_ptr<float>();
  for (std::int64_t i = 0; i < g.numel(); ++i) p[i] = static_cast<float>(1e-3 * rng.normal());
  return g;
}

std::vector<RngKey> keys_for(int n) {
  std::vector<RngKey> keys;
  for (int i = 0; i < n; ++i) keys.push_back({0, edi::stable_hash64("bench" + std::to_string(i)), 1, edi::RngStream::kPerturb});
  return keys;
}

void sync(const at::Device& d) {
  // A tiny read-back waits for the device's queue (no CUDA headers needed).
  if (!d.is_cpu()) at::zeros({1}, at::TensorOptions().device(d)).sum().item<float>();
}

/// Process CPU time in ms: on a shared machine the wall clock counts other tenants' time slices,
/// the CPU time only this process's work, summed over its threads (= "per core" cost).
double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

double wall_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Minimum over `runs` of one call, in ms per image: CPU time on the CPU, wall time (after a
/// device sync) on another device.
double time_ms(int runs, int batch, const at::Device& d, const std::function<void()>& fn) {
  fn();  // warm-up (allocations, kernels)
  sync(d);
  const auto now = d.is_cpu() ? cpu_ms : wall_ms;
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < runs; ++r) {
    const double t0 = now();
    fn();
    sync(d);
    best = std::min(best, now() - t0);
  }
  return best / batch;
}

/// Full nth_element + min: the plain percentile the histogram path replaced (for the comparison row).
void nth_element_reference(const at::Tensor& g, double q) {
  const std::int64_t n = g.size(0), m = g[0].numel();
  const at::Tensor flat = g.reshape({n, m}).contiguous();
  at::parallel_for(0, n, 1, [&](std::int64_t b, std::int64_t e) {
    std::vector<float> buf(static_cast<std::size_t>(m));
    for (std::int64_t i = b; i < e; ++i) {
      const float* p = flat.data_ptr<float>() + i * m;
      std::copy(p, p + m, buf.begin());
      const auto lo = static_cast<std::size_t>(static_cast<double>(m - 1) * (q / 100.0));
      std::nth_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(lo), buf.end());
      volatile float sink = *std::min_element(buf.begin() + static_cast<std::ptrdiff_t>(lo) + 1, buf.end());
      (void)sink;
    }
  });
}

const char* const kOps[] = {"blur", "gaussian", "pixelate", "dp-pix", "dp-blur", "noise", "mask"};

perturb::OperatorSpec spec_for(const char* name, perturb::OpsPath path) {
  perturb::OperatorSpec s = perturb::OperatorSpec::defaults(name);
  s.ops = path;
  return s;
}

int bench(const Args& a) {
  const at::Device dev(a.device);
  const std::string clocks = dev.is_cpu() ? "process CPU time" : "CPU rows: process CPU time, aten rows: wall time";
  std::printf("edi-ops-bench: ms per image (%s), minimum of %d runs of a batch of %d, %d thread(s);\n"
              "the aten rows run on %s\n\n",
              clocks.c_str(), a.runs, a.batch, a.threads, dev.str().c_str());
  std::printf("| step | path |");
  for (int s : a.sizes) std::printf(" %d px |", s);
  std::printf("\n|---|---|");
  for (std::size_t i = 0; i < a.sizes.size(); ++i) std::printf("---:|");
  std::printf("\n");
  const auto keys = keys_for(a.batch);
  explain::SelectSpec sel;
  sel.q = 90;
  auto row = [&](const std::string& step, const std::string& path, const std::function<double(int)>& ms) {
    std::printf("| %s | %s |", step.c_str(), path.c_str());
    for (int s : a.sizes) std::printf(" %.3f |", ms(s));
    std::printf("\n");
    std::fflush(stdout);
  };
  auto at_size = [&](int s) { return std::pair{uniform_images(a.batch, s, 1), gradient_like(a.batch, s, 2)}; };
  const at::Device cpu(at::kCPU);
  row("selection q=90", "nth_element (before)", [&](int s) {
    const at::Tensor g = at_size(s).second;
    return time_ms(a.runs, a.batch, cpu, [&] { nth_element_reference(g, sel.q); });
  });
  row("selection q=90", "histogram (CPU)", [&](int s) {
    const at::Tensor g = at_size(s).second;
    return time_ms(a.runs, a.batch, cpu, [&] { explain::select_mask(g, sel); });
  });
  row("selection q=90", "aten", [&](int s) {
    const at::Tensor g = at_size(s).second.to(dev);
    return time_ms(a.runs, a.batch, dev, [&] { explain::select_aten(g, sel); });
  });
  for (const char* name : kOps) {
    for (auto path : {perturb::OpsPath::kOpenCV, perturb::OpsPath::kAten}) {
      const auto op = perturb::make_operator(spec_for(name, path));
      const bool aten = path == perturb::OpsPath::kAten;
      row(op->describe(), aten ? "aten" : "opencv", [&](int s) {
        const at::Tensor x = at_size(s).first.to(aten ? dev : cpu);
        return time_ms(a.runs, a.batch, aten ? dev : cpu, [&] { op->apply(x, keys); });
      });
    }
  }
  for (const char* name : {"blur", "pixelate", "dp-pix"}) {
    const auto op = perturb::make_operator(spec_for(name, perturb::OpsPath::kOpenCV));
    row("selection + " + std::string(name) + " + blend", "histogram + opencv", [&](int s) {
      const auto [x, g] = at_size(s);
      return time_ms(a.runs, a.batch, cpu, [&, &x = x, &g = g] {
        perturb::blend(x, op->selection(explain::select_mask(g, sel)), op->apply(x, keys));
      });
    });
  }
  return 0;
}

/// ATen path on `a.parity` against the CPU reference: masks identical, operators within 1e-6.
int parity(const Args& a) {
  const at::Device dev(a.parity);
  int failures = 0;
  const explain::SelectSpec sel;
  for (int s : a.sizes) {
    const at::Tensor x = uniform_images(a.batch, s, 3), g = gradient_like(a.batch, s, 4);
    const auto keys = keys_for(a.batch);
    for (auto gran : {explain::Granularity::kEntry, explain::Granularity::kPixel}) {
      explain::SelectSpec sp = sel;
      sp.granularity = gran;
      const bool same = at::equal(explain::select_mask(g, sp), explain::select_aten(g.to(dev), sp).mask.to(at::kCPU));
      std::printf("%d px selection %-5s: masks %s\n", s, explain::granularity_name(gran).data(),
                  same ? "identical" : "DIFFER");
      failures += same ? 0 : 1;
    }
    for (const char* name : kOps) {
      const auto ref = perturb::make_operator(spec_for(name, perturb::OpsPath::kOpenCV));
      const auto dut = perturb::make_operator(spec_for(name, perturb::OpsPath::kAten));
      const at::Tensor y = dut->apply(x.to(dev), keys);
      const double d = (ref->apply(x, keys).to(at::kDouble) - y.to(at::kCPU, at::kDouble)).abs().max().item<double>();
      const bool on_device = y.device() == dev;
      const bool ok = d <= 1e-6 && on_device;
      std::printf("%d px %-40s max|diff| %.3g%s %s\n", s, dut->describe().c_str(), d,
                  on_device ? "" : " (output left the device)", ok ? "ok" : "FAIL");
      failures += ok ? 0 : 1;
    }
  }
  std::printf("parity on %s: %s\n", dev.str().c_str(), failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    edi::tune_allocator();  // as edi-anon does: large buffers are reused, not mapped afresh per call
    edi::apply_thread_count(a.threads);
    return a.parity.empty() ? bench(a) : parity(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edi-ops-bench: %s\n", e.what());
    return 1;
  }
}
