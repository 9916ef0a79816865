// TF.js weight-manifest reader and face-api's preprocessing ops.
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/models/faceapi.hpp"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

namespace edi::models::faceapi {

namespace {

std::string read_binary(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError("cannot open face-api weight file " + path.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw ModelError("cannot read face-api weight file " + path.string());
  return bytes;
}

std::size_t dtype_size(const std::string& dtype, const fs::path& manifest, const std::string& name) {
  if (dtype == "uint8") return 1;
  if (dtype == "uint16") return 2;
  if (dtype == "float32" || dtype == "int32") return 4;
  throw ModelError(manifest.string() + ": tensor '" + name + "' has unsupported dtype '" + dtype + "'");
}

}  // namespace

TfjsWeightMap TfjsWeightMap::read(const fs::path& manifest) {
  if (!fs::exists(manifest)) {
    throw ModelError("face-api weights manifest not found: " + manifest.string() + " (run scripts/fetch_assets.sh)");
  }
  nlohmann::json groups;
  try {
    groups = nlohmann::json::parse(read_binary(manifest));
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(manifest.string() + ": not a valid TF.js weights manifest (" + e.what() + ")");
  }
  if (!groups.is_array()) throw ModelError(manifest.string() + ": TF.js weights manifest must be a JSON array");

  TfjsWeightMap map;
  map.manifest_ = manifest;
  const fs::path dir = manifest.parent_path();
  try {
    for (const auto& group : groups) {
      std::string shard;
      for (const auto& p : group.at("paths")) {
        const fs::path bin = dir / p.get<std::string>();
        if (!fs::exists(bin)) {
          throw ModelError("face-api weight shard not found: " + bin.string() + " (run scripts/fetch_assets.sh)");
        }
        shard += read_binary(bin);
      }
      std::size_t offset = 0;
      for (const auto& w : group.at("weights")) {
        TfjsWeight t;
        t.name = w.at("name").get<std::string>();
        t.shape = w.at("shape").get<std::vector<std::int64_t>>();
        const std::string dtype = w.at("dtype").get<std::string>();
        if (dtype != "float32") {
          throw ModelError(manifest.string() + ": tensor '" + t.name + "' has dtype '" + dtype +
                           "', only float32 tensors are supported");
        }
        std::int64_t n = 1;
        for (auto d : t.shape) n *= d;
        const bool quantised = w.contains("quantization");
        if (quantised) {
          const auto& q = w.at("quantization");
          t.stored_dtype = q.at("dtype").get<std::string>();
          if (t.stored_dtype != "uint8" && t.stored_dtype != "uint16") {
            throw ModelError(manifest.string() + ": tensor '" + t.name + "' uses unsupported quantisation '" +
                             t.stored_dtype + "'");
          }
          t.scale = q.at("scale").get<double>();
          t.min = q.at("min").get<double>();
        } else {
          t.stored_dtype = "float32";
        }
        t.offset = offset;
        t.bytes = static_cast<std::size_t>(n) * dtype_size(t.stored_dtype, manifest, t.name);
        if (offset + t.bytes > shard.size()) {
          throw ModelError(manifest.string() + ": tensor '" + t.name + "' runs past the end of the shards (" +
                           std::to_string(shard.size()) + " bytes)");
        }
        t.value = at::empty(t.shape, at::kFloat);
        float* out = t.value.data_ptr<float>();
        const auto* src = reinterpret_cast<const unsigned char*>(shard.data() + offset);
        if (t.stored_dtype == "uint8") {
          for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<double>(src[i]) * t.scale + t.min);
        } else if (t.stored_dtype == "uint16") {
          for (std::int64_t i = 0; i < n; ++i) {
            std::uint16_t q;
            std::memcpy(&q, src + 2 * i, 2);  // little-endian host assumed (x86/ARM)
            out[i] = static_cast<float>(static_cast<double>(q) * t.scale + t.min);
          }
        } else {
          std::memcpy(out, src, t.bytes);  // may be unaligned in the shard: memcpy, never a cast
        }
        offset += t.bytes;
        map.weights_.push_back(std::move(t));
      }
      if (offset != shard.size()) {
        throw ModelError(manifest.string() + ": manifest describes " + std::to_string(offset) +
                         " bytes but the shards hold " + std::to_string(shard.size()));
      }
      map.total_bytes_ += shard.size();
    }
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(manifest.string() + ": malformed TF.js weights manifest (" + e.what() + ")");
  }
  return map;
}

const TfjsWeight& TfjsWeightMap::at(const std::string& name) const {
  for (const auto& w : weights_) {
    if (w.name == name) return w;
  }
  throw ModelError(manifest_.string() + ": no tensor named '" + name + "'");
}

bool TfjsWeightMap::contains(const std::string& name) const {
  for (const auto& w : weights_) {
    if (w.name == name) return true;
  }
  return false;
}

std::int64_t TfjsWeightMap::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& w : weights_) n += w.value.numel();
  return n;
}

at::Tensor hwio_to_oihw(const at::Tensor& hwio) {
  TORCH_CHECK(hwio.dim() == 4, "hwio_to_oihw: expected a 4-D [kh,kw,cin,cout] filter");
  return hwio.permute({3, 2, 0, 1}).contiguous();
}

at::Tensor depthwise_to_torch(const at::Tensor& hwc1) {
  TORCH_CHECK(hwc1.dim() == 4 && hwc1.size(3) == 1, "depthwise_to_torch: expected a [kh,kw,c,1] filter");
  return hwc1.permute({2, 3, 0, 1}).contiguous();
}

at::Tensor pad_to_square(const at::Tensor& nchw) {
  const std::int64_t h = nchw.size(2), w = nchw.size(3);
  if (h == w) return nchw;
  const std::int64_t d = std::abs(h - w);
  const std::int64_t after = static_cast<std::int64_t>(std::floor(d * 0.5 + 0.5));  // JS Math.round
  const std::int64_t before = d - after;
  if (h > w) return at::constant_pad_nd(nchw, {before, after, 0, 0}, 0.0);  // widen: left, right
  return at::constant_pad_nd(nchw, {0, 0, before, after}, 0.0);             // heighten: top, bottom
}

namespace {

// Per output index: lower/upper source index and fractional weight, TF legacy rule.
void legacy_axis(std::int64_t in, std::int64_t out, std::vector<std::int64_t>& lo, std::vector<std::int64_t>& hi,
                 std::vector<float>& frac) {
  const double ratio = static_cast<double>(in) / static_cast<double>(out);
  lo.resize(out);
  hi.resize(out);
  frac.resize(out);
  for (std::int64_t i = 0; i < out; ++i) {
    const double src = ratio * static_cast<double>(i);
    const auto f = static_cast<std::int64_t>(std::floor(src));
    lo[i] = std::min(f, in - 1);
    hi[i] = std::min(static_cast<std::int64_t>(std::ceil(src)), in - 1);
    frac[i] = static_cast<float>(src - static_cast<double>(f));
  }
}

}  // namespace

at::Tensor resize_bilinear_tf_legacy(const at::Tensor& nchw, std::int64_t out_h, std::int64_t out_w) {
  const std::int64_t in_h = nchw.size(2), in_w = nchw.size(3);
  if (in_h == out_h && in_w == out_w) return nchw;
  std::vector<std::int64_t> y0, y1, x0, x1;
  std::vector<float> fy, fx;
  legacy_axis(in_h, out_h, y0, y1, fy);
  legacy_axis(in_w, out_w, x0, x1, fx);
  const auto dev = nchw.device();
  auto idx = [&](const std::vector<std::int64_t>& v) { return at::tensor(v, at::kLong).to(dev); };
  const auto wx = at::tensor(fx, at::kFloat).to(dev).to(nchw.scalar_type()).view({1, 1, 1, out_w});
  const auto wy = at::tensor(fy, at::kFloat).to(dev).to(nchw.scalar_type()).view({1, 1, out_h, 1});
  const auto top_rows = nchw.index_select(2, idx(y0));
  const auto bottom_rows = nchw.index_select(2, idx(y1));
  const auto ix0 = idx(x0), ix1 = idx(x1);
  // Along the row first (left/right), then between the two rows, as tfjs does.
  const auto tl = top_rows.index_select(3, ix0), tr = top_rows.index_select(3, ix1);
  const auto bl = bottom_rows.index_select(3, ix0), br = bottom_rows.index_select(3, ix1);
  const auto top = tl + (tr - tl) * wx;
  const auto bottom = bl + (br - bl) * wx;
  return top + (bottom - top) * wy;
}

}  // namespace edi::models::faceapi
