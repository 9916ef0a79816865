// Parity with an independent Python implementation of the same algorithm
// (tests/engine/reference.py, Debian's python3-torch + python3-opencv):
// after 5 passes of each operator, identical masks on >= 99.9% of entries and
// max |Δpixel| <= 1e-4.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "edi/core/fs.hpp"
#include "edi/engine/engine.hpp"
#include "edi/models/classifier.hpp"
#include "fixtures.hpp"

using namespace edi::engine;
using edi::testing::TempDir;


TEST(EngineParity, FivePassesOfEveryOperatorMatchThePythonReference) {
  TempDir d;
  const int n = 12, k = 4, s = 32, passes = 5, batch = 5;
  const std::string model_path = fixtures::make_reference_model(d.path(), k, s, 3);
  auto model = edi::models::load_classifier(model_path);
  std::vector<std::string> ids;
  const at::Tensor images = fixtures::synth_images(n, k, s, &ids);
  const at::Tensor labels = at::arange(n, at::kLong).remainder(k);
  fixtures::write_raw(d / "images.f32", images);
  fixtures::write_raw(d / "labels.i64", labels);

  struct Op {
    std::string label, name;
    int k = 5, n = 4, b = 8;
    double sigma = 0, m = 16, eps = 1;
  };
  const std::vector<Op> ops = {{"blur-k5", "blur", 5}, {"blur-k4", "blur", 4}, {"gaussian-k5", "gaussian", 5},
                               {"pixelate-n4", "pixelate", 5, 4}, {"mask", "mask"}, {"dp-pix", "dp-pix", 5, 4, 8, 0, 16, 20},
                               {"dp-blur", "dp-blur", 5, 4, 8, 0, 16, 20}, {"noise", "noise", 5, 4, 8, 0.05}};
  nlohmann::json cfg;
  cfg["n"] = n;
  cfg["size"] = s;
  cfg["model"] = model_path;
  cfg["q"] = 90.0;
  cfg["passes"] = passes;
  cfg["seed"] = 3;
  cfg["batch"] = batch;
  cfg["ids"] = ids;
  for (const Op& op : ops) {
    EngineSpec spec;
    spec.op = edi::perturb::OperatorSpec::defaults(op.name);
    spec.op.k = op.k;
    spec.op.n = op.n;
    spec.op.b = op.b;
    spec.op.m = op.m;
    spec.op.eps = op.eps;
    if (op.name == "noise") spec.op.sigma = op.sigma;
    spec.select.q = 90.0;
    spec.stop = StopRule::kFixed;
    spec.passes = passes;
    spec.seed = 3;
    spec.batch = batch;
    Engine engine(spec, *model);
    at::Tensor masks = at::zeros({passes, n, 3, s, s}, at::kByte);
    // Two shards, to show that shard boundaries do not matter either.
    std::vector<std::string> a(ids.begin(), ids.begin() + 7), b(ids.begin() + 7, ids.end());
    Shard s1 = engine.make_shard(0, a, images.narrow(0, 0, 7), labels.narrow(0, 0, 7));
    Shard s2 = engine.make_shard(1, b, images.narrow(0, 7, n - 7), labels.narrow(0, 7, n - 7));
    std::vector<Shard*> shards{&s1, &s2};
    int off = 0;
    for (Shard* sh : shards) {
      // Masks are indexed by local row: shift the second shard's rows.
      const int base = off;
      engine.set_mask_observer([&, base](const Shard&, int pass, const std::vector<int>& local, const at::Tensor& mask) {
        for (std::size_t j = 0; j < local.size(); ++j) masks[pass][base + local[j]].copy_(mask[static_cast<long>(j)].to(at::kByte));
      });
      for (int p = 0; p <= passes; ++p) {
        engine.evaluate(*sh, p);
        engine.perturb(*sh, p);
      }
      off += static_cast<int>(sh->size());
    }
    fixtures::write_raw(d / (op.label + ".masks.u8"), masks);
    fixtures::write_raw(d / (op.label + ".state.f32"), at::cat({s1.state, s2.state}, 0));
    cfg["operators"].push_back({{"label", op.label}, {"name", op.name}, {"k", op.k}, {"sigma", op.sigma}, {"n", op.n},
                                {"b", op.b}, {"m", op.m}, {"eps", op.eps}, {"scale", "fan"}, {"color", "0,0,0"}});
  }
  edi::write_file_atomic(d / "config.json", cfg.dump(2));
  const auto r = edi::testing::run_command(std::string(edi::testing::debian_python()) + " " + fixtures::reference_script() +
                                           " check " + d.path().string());
  std::cout << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::regex line(R"(PARITY (\S+) mask_agreement=([0-9.]+) max_abs_diff=(\S+) ok)");
  int matched = 0;
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), line), end; it != end; ++it) {
    ++matched;
    EXPECT_GE(std::stod((*it)[2]), 0.999) << (*it)[1];
    EXPECT_LE(std::stod((*it)[3]), 1e-4) << (*it)[1];
  }
  EXPECT_EQ(matched, static_cast<int>(ops.size()));
}
