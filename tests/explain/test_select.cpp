// Selection: numpy-exact percentile (hand values and numpy itself), mask
// fractions, per-pixel selection, region restriction, speed at 3×224×224.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "edi/core/error.hpp"
#include "edi/explain/select.hpp"

namespace edi::explain {
namespace {

double pct(std::vector<float> v, double q) { return percentile(v.data(), v.size(), q); }

TEST(Percentile, HandComputedValues) {
  // n = 4: h = 3q/100.
  EXPECT_EQ(pct({4, 1, 3, 2}, 0), 1.0);
  EXPECT_EQ(pct({4, 1, 3, 2}, 100), 4.0);
  EXPECT_EQ(pct({4, 1, 3, 2}, 50), 2.5);    // h = 1.5 -> 3 - 1*0.5
  EXPECT_EQ(pct({4, 1, 3, 2}, 25), 1.75);   // h = 0.75 -> 2 - 1*0.25
  EXPECT_EQ(pct({4, 1, 3, 2}, 75), 3.25);   // h = 2.25 -> 3 + 1*0.25
  // Ties: sorted 1,5,5,5; h = 1.5 between two 5s.
  EXPECT_EQ(pct({5, 5, 1, 5}, 50), 5.0);
  EXPECT_EQ(pct({5, 5, 1, 5}, 10), 1.0 + 4.0 * (3 * 0.1));  // h = 0.3
  // One element: every q gives it.
  EXPECT_EQ(pct({7}, 0), 7.0);
  EXPECT_EQ(pct({7}, 63.2), 7.0);
  EXPECT_EQ(pct({7}, 100), 7.0);
  // 0..9, q = 90: h = 8.1 -> 8 + 1*(8.1 - 8) computed as numpy does.
  std::vector<float> ten(10);
  for (int i = 0; i < 10; ++i) ten[static_cast<std::size_t>(9 - i)] = static_cast<float>(i);
  const double h = 9 * (90 / 100.0);
  EXPECT_EQ(pct(ten, 90), 8.0 + 1.0 * (h - 8.0));
  EXPECT_NEAR(pct(ten, 90), 8.1, 1e-12);
  // Negative values and all-equal input.
  EXPECT_EQ(pct({-3, -1, -2}, 50), -2.0);
  EXPECT_EQ(pct({0.5f, 0.5f, 0.5f, 0.5f}, 37), 0.5);
  // NaN propagates like numpy.
  EXPECT_TRUE(std::isnan(pct({1, NAN, 3}, 50)));
  // Bad arguments.
  EXPECT_THROW(pct({1, 2}, 100.5), ConfigError);
  EXPECT_THROW(pct({1, 2}, -0.1), ConfigError);
  EXPECT_THROW(pct({}, 50), Error);
}

TEST(Percentile, DoesNotModifyInput) {
  std::vector<float> v = {3, 1, 2, 9, 0};
  const auto copy = v;
  std::vector<float> scratch(v.size());
  percentile(v.data(), v.size(), 40, scratch.data());
  EXPECT_EQ(v, copy);
}

struct Case {
  std::size_t offset, count;
  double q;
};

TEST(Percentile, MatchesNumpy) {
  const std::string python = EDI_EXPLAIN_PYTHON;
  if (python.empty() ||
      std::system((python + " -c \"import numpy\" > /dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << "no python3 with numpy (" << python << "); install python3-numpy";
  }
  std::mt19937_64 gen(2024);
  std::vector<float> values;
  std::vector<Case> cases;
  const std::vector<double> qs = {0, 100, 50, 90, 95, 99, 99.9, 12.5, 33.3, 66.7, 1e-9, 99.999, 0.1, 83.14159};
  auto add = [&](std::vector<float> v) {
    const std::size_t off = values.size();
    values.insert(values.end(), v.begin(), v.end());
    for (double q : qs) cases.push_back({off, v.size(), q});
  };
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  std::normal_distribution<float> nor(0.f, 1e-3f);
  std::uniform_int_distribution<int> small(-3, 3);
  for (std::size_t n : {1u, 2u, 3u, 10u, 101u, 1000u, 768u, 3u * 224u * 224u}) {
    std::vector<float> v(n);
    for (auto& x : v) x = uni(gen);
    add(v);
    for (auto& x : v) x = nor(gen);  // gradient-like magnitudes
    add(v);
    for (auto& x : v) x = 0.25f * static_cast<float>(small(gen));  // heavy ties, ±0
    add(v);
  }
  add(std::vector<float>(50, 0.f));        // all equal
  add({-0.f, 0.f, -0.f, 1e-30f, -1e-30f});  // signed zeros, denormal-ish

  const auto dir = std::filesystem::temp_directory_path() /
                   ("edi_explain_pct_" + std::to_string(static_cast<unsigned long>(std::random_device{}())));
  std::filesystem::create_directories(dir);
  const auto vpath = dir / "values.f32", cpath = dir / "cases.txt", opath = dir / "out.txt";
  {
    std::ofstream v(vpath, std::ios::binary);
    v.write(reinterpret_cast<const char*>(values.data()),
            static_cast<std::streamsize>(values.size() * sizeof(float)));
    std::ofstream c(cpath);
    char buf[64];
    for (const auto& k : cases) {
      std::snprintf(buf, sizeof buf, "%.17g", k.q);
      c << k.offset << ' ' << k.count << ' ' << buf << '\n';
    }
  }
  const std::string cmd = python + " " + EDI_PERCENTILE_SCRIPT + " " + vpath.string() + " " + cpath.string() +
                          " " + opath.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream out(opath);
  std::size_t checked = 0, mismatches = 0;
  std::vector<float> scratch(values.size());
  for (const auto& k : cases) {
    std::string line;
    ASSERT_TRUE(std::getline(out, line)) << "numpy gave fewer results than cases";
    const double expected = std::strtod(line.c_str(), nullptr);
    const double got = percentile(values.data() + k.offset, k.count, k.q, scratch.data());
    if (got != expected) {
      ++mismatches;
      ADD_FAILURE() << "n=" << k.count << " q=" << k.q << ": got " << got << ", numpy " << line;
    }
    ++checked;
  }
  std::filesystem::remove_all(dir);
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(checked, cases.size());
  std::printf("percentile: %zu cases bit-identical to numpy\n", checked);
}

at::Tensor random_attr(std::int64_t n, std::int64_t h, std::int64_t w, std::uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn({n, 3, h, w});
}

TEST(Select, MaskIsEntriesAtOrAboveThePercentile) {
  const at::Tensor g = random_attr(3, 32, 32, 5);
  const double e = 3 * 32 * 32;
  for (double q : {90.0, 95.0, 99.0, 0.0, 50.0}) {
    SelectSpec spec;
    spec.q = q;
    const Selection s = select(g, spec);
    ASSERT_EQ(s.mask.sizes(), g.sizes());
    ASSERT_EQ(s.mask.scalar_type(), at::kBool);
    for (std::int64_t i = 0; i < 3; ++i) {
      const at::Tensor gi = g[i].contiguous();
      const double t = percentile(gi.data_ptr<float>(), static_cast<std::size_t>(gi.numel()), q);
      EXPECT_EQ(s.threshold[i].item<double>(), t);
      EXPECT_TRUE(torch::equal(s.mask[i], gi.to(at::kDouble) >= t));
      const auto count = s.mask[i].sum().item<std::int64_t>();
      EXPECT_EQ(s.selected[i].item<std::int64_t>(), count);
      // Distinct values: (100-q)% of the entries, within one entry.
      const double expected = (100.0 - q) / 100.0 * e;
      EXPECT_LE(std::abs(static_cast<double>(count) - expected), 1.0 + 1e-9) << "q=" << q;
    }
  }
}

TEST(Select, PaperCountsAt224) {
  const at::Tensor g = random_attr(1, 224, 224, 6);
  for (auto [q, expected] : {std::pair{90.0, 15053}, {95.0, 7527}, {99.0, 1506}}) {
    SelectSpec spec;
    spec.q = q;
    const auto count = select(g, spec).selected[0].item<std::int64_t>();
    EXPECT_NEAR(static_cast<double>(count), expected, 1.0) << "q=" << q;
  }
}

TEST(Select, FloatMaskEqualsBoolMask) {
  const at::Tensor g = random_attr(2, 9, 7, 7);
  SelectSpec spec;
  spec.q = 80;
  const at::Tensor b = select_mask(g, spec);
  const at::Tensor f = select_mask(g, spec, {}, at::kFloat);
  EXPECT_EQ(f.scalar_type(), at::kFloat);
  EXPECT_TRUE(torch::equal(f, b.to(at::kFloat)));
  EXPECT_TRUE(((f == 0) | (f == 1)).all().item<bool>());
}

TEST(Select, PixelGranularitySelectsAllChannelsOfTopPixels) {
  const at::Tensor g = random_attr(2, 20, 20, 8);
  SelectSpec spec;
  spec.q = 90;
  spec.granularity = Granularity::kPixel;
  const Selection s = select(g, spec);
  const at::Tensor score = std::get<0>(g.max(1));  // N×H×W
  for (std::int64_t i = 0; i < 2; ++i) {
    const at::Tensor si = score[i].contiguous();
    const double t = percentile(si.data_ptr<float>(), 400, 90);
    EXPECT_EQ(s.threshold[i].item<double>(), t);
    const at::Tensor pix = si.to(at::kDouble) >= t;
    for (std::int64_t c = 0; c < 3; ++c) EXPECT_TRUE(torch::equal(s.mask[i][c], pix));
    const auto pixels = pix.sum().item<std::int64_t>();
    EXPECT_LE(std::abs(static_cast<double>(pixels) - 40.0), 1.0);
    EXPECT_EQ(s.selected[i].item<std::int64_t>(), 3 * pixels);
  }
}

TEST(Select, RegionRestrictsAndRescalesTheFraction) {
  const at::Tensor g = random_attr(2, 16, 16, 9);
  at::Tensor region = torch::zeros({16, 16}, torch::kBool);
  region.narrow(1, 0, 8).fill_(true);  // left half
  SelectSpec spec;
  spec.q = 75;
  const Selection s = select(g, spec, region);
  const at::Tensor inside = region.unsqueeze(0).expand({3, 16, 16});
  for (std::int64_t i = 0; i < 2; ++i) {
    EXPECT_FALSE(s.mask[i].masked_select(~inside).any().item<bool>());
    const at::Tensor vals = g[i].masked_select(inside).contiguous();
    const double t = percentile(vals.data_ptr<float>(), static_cast<std::size_t>(vals.numel()), 75);
    EXPECT_EQ(s.threshold[i].item<double>(), t);
    const auto count = s.selected[i].item<std::int64_t>();
    EXPECT_LE(std::abs(static_cast<double>(count) - 0.25 * static_cast<double>(vals.numel())), 1.0);
    EXPECT_TRUE(torch::equal(s.mask[i], inside & (g[i].to(at::kDouble) >= t)));
  }
  // Same region in other accepted shapes, and as float.
  EXPECT_TRUE(torch::equal(select_mask(g, spec, region.view({1, 16, 16}).expand({2, 16, 16})), s.mask));
  EXPECT_TRUE(torch::equal(select_mask(g, spec, region.view({1, 1, 16, 16}).to(at::kFloat)), s.mask));
  // Pixel granularity inside a region.
  spec.granularity = Granularity::kPixel;
  const at::Tensor pm = select_mask(g, spec, region);
  EXPECT_FALSE(pm.masked_select(~region.expand({2, 3, 16, 16})).any().item<bool>());
  EXPECT_TRUE(pm.any().item<bool>());
  // Empty region: nothing selected, NaN threshold.
  const Selection none = select(g, spec, torch::zeros({16, 16}, torch::kBool));
  EXPECT_FALSE(none.mask.any().item<bool>());
  EXPECT_TRUE(std::isnan(none.threshold[0].item<double>()));
  // Wrong shape.
  EXPECT_THROW(select(g, spec, torch::ones({15, 16}, torch::kBool)), Error);
}

TEST(Select, TiesAtTheThresholdAreAllSelected) {
  // 100 entries: 80 zeros then 20 ones. q = 50 -> t = 0 -> everything >= 0 selected.
  at::Tensor g = torch::zeros({1, 3, 5, 8});  // 120 entries
  g.flatten().narrow(0, 100, 20).fill_(1.f);
  SelectSpec spec;
  spec.q = 50;
  EXPECT_EQ(select(g, spec).selected[0].item<std::int64_t>(), 120);
  spec.q = 90;  // h = 107.1 -> t = 1 -> the 20 ones
  EXPECT_EQ(select(g, spec).selected[0].item<std::int64_t>(), 20);
}

TEST(Select, PercentilePerImageAndValidation) {
  const at::Tensor g = random_attr(4, 6, 6, 10);
  const at::Tensor t = percentile_per_image(g, 33.0);
  ASSERT_EQ(t.size(0), 4);
  for (std::int64_t i = 0; i < 4; ++i) {
    const at::Tensor gi = g[i].contiguous();
    EXPECT_EQ(t[i].item<double>(), percentile(gi.data_ptr<float>(), 108, 33.0));
  }
  SelectSpec bad;
  bad.q = 100;
  EXPECT_THROW(select(g, bad), ConfigError);
  EXPECT_THROW(select(g.flatten(1), SelectSpec{}), Error);
}

/// Reference by full sort, for the speed comparison and a last cross-check.
double percentile_by_sort(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double h = static_cast<double>(v.size() - 1) * (q / 100.0);
  if (h >= static_cast<double>(v.size() - 1)) return v.back();
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const double gamma = h - std::floor(h);
  const float diff = v[lo + 1] - v[lo];
  return gamma >= 0.5 ? v[lo + 1] - static_cast<double>(diff) * (1 - gamma)
                      : v[lo] + static_cast<double>(diff) * gamma;
}

TEST(Select, SpeedAt3x224x224) {
  const at::Tensor g = random_attr(8, 224, 224, 11) * 1e-3;
  const std::size_t e = 3 * 224 * 224;
  const at::Tensor g0 = g[0].contiguous();
  std::vector<float> v(g0.data_ptr<float>(), g0.data_ptr<float>() + e);
  std::vector<float> scratch(e);
  using clock = std::chrono::steady_clock;
  const int reps = 20;
  double fast = 0, sorted = 0;
  auto t0 = clock::now();
  for (int k = 0; k < reps; ++k) fast += percentile(v.data(), e, 90.0 + k * 0.01, scratch.data());
  const double fast_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count() / reps;
  t0 = clock::now();
  for (int k = 0; k < reps; ++k) sorted += percentile_by_sort(v, 90.0 + k * 0.01);
  const double sort_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count() / reps;
  EXPECT_EQ(fast, sorted);
  SelectSpec spec;
  spec.q = 90;
  select(g, spec);  // warm-up
  t0 = clock::now();
  for (int k = 0; k < 5; ++k) select(g, spec);
  const double select_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count() / 5 / 8;
  spec.granularity = Granularity::kPixel;
  t0 = clock::now();
  for (int k = 0; k < 5; ++k) select(g, spec);
  const double pixel_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count() / 5 / 8;
  std::printf("3x224x224: percentile %.3f ms (full sort %.3f ms); select entry %.3f ms/image, pixel %.3f "
              "ms/image\n",
              fast_ms, sort_ms, select_ms, pixel_ms);
  RecordProperty("percentile_ms", std::to_string(fast_ms));
  RecordProperty("select_ms_per_image", std::to_string(select_ms));
  EXPECT_LT(fast_ms, sort_ms);
}

/// Plain reference: the percentile from a full sort, the mask by comparing every entry.
struct RefSelection {
  std::vector<double> threshold;
  at::Tensor mask;
};

RefSelection reference_select(const at::Tensor& g, double q) {
  RefSelection r;
  const std::int64_t n = g.size(0);
  const at::Tensor flat = g.reshape({n, -1}).contiguous();
  for (std::int64_t i = 0; i < n; ++i) {
    const float* p = flat[i].data_ptr<float>();
    const std::vector<float> v(p, p + flat.size(1));
    bool nan = false;
    for (float x : v) nan = nan || std::isnan(x);
    r.threshold.push_back(nan ? NAN : percentile_by_sort(v, q));
  }
  r.mask = g.to(at::kDouble).reshape({n, -1}).ge(at::tensor(r.threshold, at::kDouble).unsqueeze(1)).view(g.sizes());
  return r;
}

/// Attribution-like values of one of several shapes: Gaussian, tiny, heavy ties, mixed signs
/// with ±0 and ±inf, a narrow band (all in one histogram bin), or wildly spread magnitudes.
at::Tensor random_values(std::mt19937_64& gen, std::int64_t n, std::int64_t h, std::int64_t w, int kind) {
  at::Tensor g = at::empty({n, 3, h, w}, at::kFloat);
  float* p = g.data_ptr<float>();
  std::normal_distribution<float> nor(0.f, 1.f);
  std::uniform_int_distribution<int> small(-4, 4);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  for (std::int64_t i = 0; i < g.numel(); ++i) {
    switch (kind) {
      case 0: p[i] = nor(gen); break;
      case 1: p[i] = 1e-4f * nor(gen); break;
      case 2: p[i] = 0.5f * static_cast<float>(small(gen)); break;
      case 3: {
        const int s = small(gen);
        p[i] = s == 4 ? INFINITY : s == -4 ? -INFINITY : s == 0 ? (uni(gen) < 0.5f ? -0.f : 0.f) : nor(gen);
        break;
      }
      case 4: p[i] = 1.f + 1e-6f * static_cast<float>(small(gen)) + 1e-7f * uni(gen); break;
      default: p[i] = std::ldexp(nor(gen), small(gen) * 9); break;
    }
  }
  return g;
}

TEST(Select, RandomizedAgainstFullSortReference) {
  std::mt19937_64 gen(77);
  std::uniform_real_distribution<double> uq(0.0, 100.0);
  int cases = 0;
  for (auto [h, w] : {std::pair<std::int64_t, std::int64_t>{5, 7}, {24, 24}, {37, 41}, {64, 64}, {96, 80}}) {
    for (int kind = 0; kind < 6; ++kind) {
      const at::Tensor g = random_values(gen, 3, h, w, kind);
      for (double q : {uq(gen), 90.0, 99.9, 0.0, 100.0 - 1e-9}) {
        SelectSpec spec;
        spec.q = q;
        const Selection s = select(g, spec);
        const RefSelection r = reference_select(g, q);
        for (std::int64_t i = 0; i < 3; ++i) {
          const double a = s.threshold[i].item<double>(), b = r.threshold[static_cast<std::size_t>(i)];
          EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b)))
              << "h=" << h << " w=" << w << " kind=" << kind << " q=" << q << ": " << a << " vs " << b;
        }
        EXPECT_TRUE(torch::equal(s.mask, r.mask)) << "h=" << h << " kind=" << kind << " q=" << q;
        EXPECT_TRUE(torch::equal(s.selected, r.mask.reshape({3, -1}).sum(1)));
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 5 * 6 * 5);
}

TEST(Select, RandomizedRegionsAgainstFullSortReference) {
  // Regions large enough for the histogram path (which then compacts the region's values in place).
  std::mt19937_64 gen(80);
  std::uniform_real_distribution<double> uq(0.0, 100.0);
  for (int kind = 0; kind < 6; ++kind) {
    const at::Tensor g = random_values(gen, 2, 96, 80, kind);
    at::Tensor region = random_values(gen, 1, 96, 80, 0)[0][0].gt(-0.5);  // ~70 % of the pixels
    SelectSpec spec;
    spec.q = uq(gen);
    const Selection s = select(g, spec, region);
    const at::Tensor inside = region.unsqueeze(0).expand({3, 96, 80});
    for (std::int64_t i = 0; i < 2; ++i) {
      const at::Tensor vals = g[i].masked_select(inside).contiguous();
      ASSERT_GE(vals.numel(), 4096);
      const std::vector<float> v(vals.data_ptr<float>(), vals.data_ptr<float>() + vals.numel());
      bool nan = false;
      for (float x : v) nan = nan || std::isnan(x);
      const double t = nan ? NAN : percentile_by_sort(v, spec.q), got = s.threshold[i].item<double>();
      EXPECT_TRUE(got == t || (std::isnan(got) && std::isnan(t))) << "kind=" << kind << ": " << got << " vs " << t;
      EXPECT_TRUE(torch::equal(s.mask[i], inside & (g[i].to(at::kDouble) >= t))) << "kind=" << kind;
    }
  }
}

TEST(Select, SameResultWhateverTheThreadCount) {
  std::mt19937_64 gen(78);
  const at::Tensor g = random_values(gen, 7, 48, 48, 0);
  SelectSpec spec;
  spec.q = 93.5;
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const Selection one = select(g, spec);
  at::set_num_threads(2);
  const Selection two = select(g, spec);
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(one.mask, two.mask));
  EXPECT_TRUE(torch::equal(one.threshold, two.threshold));
}

/// select_aten (CPU here; CUDA in scripts/gpu-check.sh) against select: identical in everything.
void expect_same_selection(const at::Tensor& g, const SelectSpec& spec, const at::Tensor& region,
                           const std::string& what) {
  const Selection a = select(g, spec, region);
  const Selection b = select_aten(g, spec, region);
  EXPECT_TRUE(torch::equal(a.mask, b.mask.to(at::kCPU))) << what;
  EXPECT_TRUE(torch::equal(a.selected, b.selected)) << what;
  for (std::int64_t i = 0; i < g.size(0); ++i) {
    const double x = a.threshold[i].item<double>(), y = b.threshold[i].item<double>();
    EXPECT_TRUE(x == y || (std::isnan(x) && std::isnan(y))) << what << " image " << i << ": " << x << " vs " << y;
  }
}

TEST(Select, AtenPathIsIdenticalToTheCpuPath) {
  std::mt19937_64 gen(79);
  at::Tensor region = at::zeros({20, 24}, at::kBool);
  region.narrow(0, 3, 9).narrow(1, 5, 12).fill_(true);
  for (int kind = 0; kind < 6; ++kind) {
    const at::Tensor g = random_values(gen, 3, 20, 24, kind);
    for (double q : {0.0, 50.0, 90.0, 99.5}) {
      for (Granularity gran : {Granularity::kEntry, Granularity::kPixel}) {
        SelectSpec spec;
        spec.q = q;
        spec.granularity = gran;
        const std::string what = "kind=" + std::to_string(kind) + " q=" + std::to_string(q) +
                                 (gran == Granularity::kPixel ? " pixel" : " entry");
        expect_same_selection(g, spec, {}, what);
        expect_same_selection(g, spec, region, what + " region");
      }
    }
  }
  // NaN in one image and an empty region.
  at::Tensor g = random_values(gen, 2, 8, 8, 0);
  g[1][0][0][0] = NAN;
  expect_same_selection(g, SelectSpec{}, {}, "nan");
  expect_same_selection(g, SelectSpec{}, at::zeros({8, 8}, at::kBool), "empty region");
}

}  // namespace
}  // namespace edi::explain
