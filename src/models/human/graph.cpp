// TF.js graph-model reader and a LibTorch interpreter for its ops (the op set
// of human's faceres and similar Keras/MobileNet conversions). Activations are
// NCHW; constants keep their TF layout and are aligned at use.
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/models/human.hpp"

#include <ATen/ATen.h>
#include <c10/util/Half.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

namespace edi::models::human {

/// One node of the graph. Named (not in the anonymous namespace) because
/// TfjsGraphModel::Impl, declared in a header, holds them: in a unity batch
/// a type with internal linkage there is a -Wsubobject-linkage warning.
namespace tfjs {
struct Node {
  std::string name;
  std::string op;
  std::vector<std::string> inputs;  // data inputs, ":0" stripped, control inputs dropped
  std::int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  bool same_padding = false;
  std::vector<std::string> fused_ops;
  bool keep_dims = false, transpose_a = false, transpose_b = false;
};
}  // namespace tfjs

namespace {

using nlohmann::json;

using tfjs::Node;

const std::set<std::string>& supported_ops() {
  static const std::set<std::string> ops = {
      "Placeholder", "Const", "Identity", "Conv2D", "DepthwiseConv2dNative", "_FusedConv2D",
      "FusedDepthwiseConv2dNative", "MatMul", "_FusedMatMul", "BiasAdd", "Add", "AddV2", "Sub", "Mul",
      "Maximum", "Minimum", "Relu", "Relu6", "Sigmoid", "Tanh", "Softmax", "Mean"};
  return ops;
}

/// Data inputs each op needs (fused ops: at least their two operands).
std::size_t arity(const std::string& op) {
  if (op == "Placeholder" || op == "Const") return 0;
  if (op == "Identity" || op == "Relu" || op == "Relu6" || op == "Sigmoid" || op == "Tanh" || op == "Softmax") return 1;
  return 2;
}

bool is_conv(const std::string& op) { return op == "Conv2D" || op == "_FusedConv2D"; }
bool is_depthwise(const std::string& op) {
  return op == "DepthwiseConv2dNative" || op == "FusedDepthwiseConv2dNative";
}

std::string base64_decode(const std::string& in) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    const auto pos = chars.find(c);
    if (pos == std::string::npos) break;  // '=' padding ends the data
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

/// TF "name:0" / "^ctrl" → data input name ("" for a control input).
std::string clean_input(const std::string& in, const fs::path& file, const std::string& node) {
  if (!in.empty() && in[0] == '^') return "";
  const auto colon = in.rfind(':');
  if (colon == std::string::npos) return in;
  if (in.substr(colon + 1) != "0")
    throw ModelError(file.string() + ": node '" + node + "' reads output " + in + "; only output 0 is supported");
  return in.substr(0, colon);
}

std::vector<std::int64_t> int_list(const json& attr) {
  std::vector<std::int64_t> out;
  if (attr.contains("list") && attr["list"].contains("i"))
    for (const auto& v : attr["list"]["i"]) out.push_back(std::stoll(v.get<std::string>()));
  return out;
}

Node parse_node(const json& j, const fs::path& file) {
  Node n;
  n.name = j.at("name").get<std::string>();
  n.op = j.at("op").get<std::string>();
  if (!supported_ops().count(n.op))
    throw ModelError(file.string() + ": node '" + n.name + "' has op '" + n.op + "', which this interpreter does not support");
  if (j.contains("input"))
    for (const auto& in : j["input"]) {
      auto c = clean_input(in.get<std::string>(), file, n.name);
      if (!c.empty()) n.inputs.push_back(std::move(c));
    }
  const json attr = j.value("attr", json::object());
  const auto s_attr = [&](const char* key) {
    return attr.contains(key) && attr[key].contains("s") ? base64_decode(attr[key]["s"].get<std::string>()) : std::string();
  };
  const auto b_attr = [&](const char* key) { return attr.contains(key) && attr[key].value("b", false); };
  if (attr.contains("strides")) {
    const auto s = int_list(attr["strides"]);
    if (s.size() == 4) n.stride_h = s[1], n.stride_w = s[2];
  }
  if (attr.contains("dilations")) {
    const auto d = int_list(attr["dilations"]);
    if (d.size() == 4) n.dil_h = d[1], n.dil_w = d[2];
  }
  const std::string padding = s_attr("padding");
  const std::string format = s_attr("data_format");
  if (is_conv(n.op) || is_depthwise(n.op)) {
    if (padding != "SAME" && padding != "VALID")
      throw ModelError(file.string() + ": node '" + n.name + "' has padding '" + padding + "' (expected SAME or VALID)");
    if (!format.empty() && format != "NHWC")
      throw ModelError(file.string() + ": node '" + n.name + "' has data_format '" + format + "' (expected NHWC)");
  }
  n.same_padding = padding == "SAME";
  if (attr.contains("fused_ops") && attr["fused_ops"].contains("list") && attr["fused_ops"]["list"].contains("s"))
    for (const auto& f : attr["fused_ops"]["list"]["s"]) n.fused_ops.push_back(base64_decode(f.get<std::string>()));
  for (const auto& f : n.fused_ops)
    if (f != "BiasAdd" && f != "Relu" && f != "Relu6" && f != "Prelu" && f != "Sigmoid")
      throw ModelError(file.string() + ": node '" + n.name + "' fuses '" + f + "', which is not supported");
  n.keep_dims = b_attr("keep_dims");
  n.transpose_a = b_attr("transpose_a");
  n.transpose_b = b_attr("transpose_b");
  return n;
}

std::string read_binary(const fs::path& path) {
  if (!fs::exists(path)) throw ModelError("TF.js weight file not found: " + path.string() + " (run scripts/fetch_assets.sh)");
  return read_file(path);
}

/// One manifest entry → tensor (float32, or int64 for int32 data).
at::Tensor decode_weight(const json& w, const std::string& shard, std::size_t& offset, const fs::path& file) {
  const auto name = w.at("name").get<std::string>();
  const auto shape = w.at("shape").get<std::vector<std::int64_t>>();
  const auto dtype = w.at("dtype").get<std::string>();
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  std::string stored = dtype;
  double scale = 0, min = 0;
  if (w.contains("quantization")) {
    stored = w["quantization"].at("dtype").get<std::string>();
    if (stored != "float16") scale = w["quantization"].at("scale").get<double>(), min = w["quantization"].at("min").get<double>();
  }
  std::size_t width = 0;
  if (stored == "float32" || stored == "int32") width = 4;
  else if (stored == "float16" || stored == "uint16") width = 2;
  else if (stored == "uint8") width = 1;
  else throw ModelError(file.string() + ": tensor '" + name + "' is stored as '" + stored + "' (expected float32, int32, float16, uint16 or uint8)");
  if ((dtype == "int32") != (stored == "int32"))
    throw ModelError(file.string() + ": tensor '" + name + "' has dtype " + dtype + " stored as " + stored + " (unsupported)");
  const std::size_t bytes = static_cast<std::size_t>(n) * width;
  if (offset + bytes > shard.size())
    throw ModelError(file.string() + ": tensor '" + name + "' runs past the end of the weight shards (" + std::to_string(shard.size()) + " bytes)");
  const auto* src = reinterpret_cast<const unsigned char*>(shard.data() + offset);
  offset += bytes;
  if (stored == "int32") {
    std::vector<std::int32_t> v(static_cast<std::size_t>(n));
    std::memcpy(v.data(), src, bytes);
    return at::tensor(std::vector<std::int64_t>(v.begin(), v.end()), at::kLong).view(shape);
  }
  auto t = at::empty(shape, at::kFloat);
  float* out = t.data_ptr<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    if (stored == "float32") {
      std::memcpy(out + i, src + 4 * i, 4);
    } else if (stored == "float16") {
      std::uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      out[i] = half_to_float(h);
    } else if (stored == "uint16") {
      std::uint16_t q;
      std::memcpy(&q, src + 2 * i, 2);
      out[i] = static_cast<float>(static_cast<double>(q) * scale + min);
    } else {
      out[i] = static_cast<float>(static_cast<double>(src[i]) * scale + min);
    }
  }
  return t;
}

/// TF 'SAME' padding (before, after) along one axis; the odd pixel goes after.
std::pair<std::int64_t, std::int64_t> same_pad(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t dil) {
  const std::int64_t eff = (k - 1) * dil + 1;
  const std::int64_t out = (in + stride - 1) / stride;
  const std::int64_t total = std::max<std::int64_t>((out - 1) * stride + eff - in, 0);
  return {total / 2, total - total / 2};
}

/// A TF-layout operand (constant, or a runtime tensor of rank < 4) aligned for
/// broadcasting against an NCHW activation: right-align to 4-D, then NHWC→NCHW.
at::Tensor align_to_nchw(const at::Tensor& tf) {
  if (tf.dim() == 0) return tf;
  auto t = tf;
  while (t.dim() < 4) t = t.unsqueeze(0);
  return t.permute({0, 3, 1, 2});
}

}  // namespace

float half_to_float(std::uint16_t bits) { return static_cast<float>(c10::Half(bits, c10::Half::from_bits())); }

double package_age_years(const std::vector<float>& p) {
  if (p.size() < 3) throw ModelError("age softmax must have at least 3 bins, got " + std::to_string(p.size()));
  std::size_t i = 0;
  for (std::size_t k = 1; k < p.size(); ++k)
    if (p[k] > p[i]) i = k;
  // JS reads p[-1] / p[n] as undefined: comparisons with it are false.
  const bool has_lo = i > 0, has_hi = i + 1 < p.size();
  const double lo = has_lo ? p[i - 1] : 0.0, hi = has_hi ? p[i + 1] : 0.0;
  const bool towards_lo = has_lo && has_hi && lo > hi;
  const double tenths = towards_lo ? 10.0 * static_cast<double>(i) - 100.0 * lo
                                   : 10.0 * static_cast<double>(i) + 100.0 * (has_hi ? hi : std::nan(""));
  return std::floor(tenths + 0.5) / 10.0;  // JS Math.round
}

// ------------------------------------------------------------------ model ---

struct TfjsGraphModel::Impl {
  fs::path file;
  std::vector<Node> nodes;  // topological order
  std::unordered_map<std::string, std::size_t> index;
  std::unordered_map<std::string, at::Tensor> consts;   // TF layout
  std::unordered_map<std::string, at::Tensor> filters;  // conv node name → torch-layout filter
  std::string placeholder;

  void load_weights(const json& model);
  void sort_and_check();
  void check_inputs() const;
  void prepare_filters();
  at::Tensor operand(const std::unordered_map<std::string, at::Tensor>& act, const std::string& name) const;
  at::Tensor eval(const Node& n, const std::unordered_map<std::string, at::Tensor>& act) const;
  at::Tensor conv(const Node& n, const at::Tensor& x) const;
  at::Tensor binary(const Node& n, const std::string& op, const at::Tensor& a, bool a_act, const at::Tensor& b, bool b_act) const;
  at::Tensor mean(const Node& n, const at::Tensor& x) const;
  at::Tensor fused(const Node& n, at::Tensor y, const std::unordered_map<std::string, at::Tensor>& act, std::size_t first_arg) const;
};

void TfjsGraphModel::Impl::load_weights(const json& model) {
  for (const auto& group : model.at("weightsManifest")) {
    std::string shard;
    for (const auto& p : group.at("paths")) shard += read_binary(file.parent_path() / p.get<std::string>());
    std::size_t offset = 0;
    for (const auto& w : group.at("weights")) consts[w.at("name").get<std::string>()] = decode_weight(w, shard, offset, file);
    if (offset != shard.size())
      throw ModelError(file.string() + ": the weights manifest describes " + std::to_string(offset) +
                       " bytes but the shards hold " + std::to_string(shard.size()));
  }
}

void TfjsGraphModel::Impl::sort_and_check() {
  std::unordered_map<std::string, const Node*> by_name;
  for (const auto& n : nodes) {
    if (!by_name.emplace(n.name, &n).second) throw ModelError(file.string() + ": duplicate node '" + n.name + "'");
    if (n.op == "Const" && !consts.count(n.name))
      throw ModelError(file.string() + ": constant '" + n.name + "' has no tensor in the weights manifest");
    if (n.op == "Placeholder") {
      if (!placeholder.empty()) throw ModelError(file.string() + ": more than one Placeholder ('" + placeholder + "', '" + n.name + "')");
      placeholder = n.name;
    }
  }
  if (placeholder.empty()) throw ModelError(file.string() + ": the graph has no Placeholder input");
  // Depth-first post-order = a topological order; cycles are refused.
  std::vector<Node> sorted;
  std::unordered_map<std::string, int> state;  // 1 = on stack, 2 = done
  std::vector<std::pair<const Node*, std::size_t>> stack;
  for (const auto& root : nodes) {
    if (state[root.name] == 2) continue;
    stack.push_back({&root, 0});
    state[root.name] = 1;
    while (!stack.empty()) {
      auto& [n, k] = stack.back();
      if (k < n->inputs.size()) {
        const auto& in = n->inputs[k++];
        const auto it = by_name.find(in);
        if (it == by_name.end()) throw ModelError(file.string() + ": node '" + n->name + "' reads unknown node '" + in + "'");
        if (state[in] == 1) throw ModelError(file.string() + ": the graph has a cycle through '" + in + "'");
        if (state[in] == 0) state[in] = 1, stack.push_back({it->second, 0});
      } else {
        state[n->name] = 2;
        sorted.push_back(*n);
        stack.pop_back();
      }
    }
  }
  nodes = std::move(sorted);
  for (std::size_t i = 0; i < nodes.size(); ++i) index[nodes[i].name] = i;
}

void TfjsGraphModel::Impl::check_inputs() const {
  for (const auto& n : nodes) {
    const std::size_t need = arity(n.op);
    const bool fused_op = !n.fused_ops.empty() || n.op == "_FusedConv2D" || n.op == "FusedDepthwiseConv2dNative" ||
                          n.op == "_FusedMatMul";
    if (fused_op ? n.inputs.size() < need : n.inputs.size() != need)
      throw ModelError(file.string() + ": node '" + n.name + "' (" + n.op + ") has " + std::to_string(n.inputs.size()) +
                       " data inputs, expected " + (fused_op ? "at least " : "") + std::to_string(need));
    if (n.op == "Mean") {
      const auto c = consts.find(n.inputs[1]);
      if (c == consts.end() || c->second.scalar_type() != at::kLong || c->second.dim() > 1)
        throw ModelError(file.string() + ": node '" + n.name + "' needs constant int32 reduction axes as its second input");
    }
  }
}

void TfjsGraphModel::Impl::prepare_filters() {
  for (const auto& n : nodes) {
    if (!is_conv(n.op) && !is_depthwise(n.op)) continue;
    if (n.inputs.size() < 2 || !consts.count(n.inputs[1]) || consts.at(n.inputs[1]).dim() != 4)
      throw ModelError(file.string() + ": node '" + n.name + "' needs a constant 4-D filter as its second input");
    const auto& f = consts.at(n.inputs[1]);
    if (is_conv(n.op)) {
      filters[n.name] = f.permute({3, 2, 0, 1}).contiguous();  // HWIO → OIHW
    } else {  // [kh,kw,C,M] → [C·M,1,kh,kw], output channel c·M + m
      filters[n.name] = f.permute({2, 3, 0, 1}).reshape({f.size(2) * f.size(3), 1, f.size(0), f.size(1)}).contiguous();
    }
    const std::size_t args = n.inputs.size() - 2;
    std::size_t need = 0;
    for (const auto& op : n.fused_ops) need += (op == "BiasAdd" || op == "Prelu") ? 1 : 0;
    if (args != need)
      throw ModelError(file.string() + ": node '" + n.name + "' has " + std::to_string(args) + " fused arguments, expected " + std::to_string(need));
  }
}

at::Tensor TfjsGraphModel::Impl::operand(const std::unordered_map<std::string, at::Tensor>& act, const std::string& name) const {
  const auto c = consts.find(name);
  if (c != consts.end()) return c->second;
  return act.at(name);
}

at::Tensor TfjsGraphModel::Impl::conv(const Node& n, const at::Tensor& x) const {
  if (x.dim() != 4) throw ModelError(file.string() + ": node '" + n.name + "' expects a 4-D input, got " + std::to_string(x.dim()) + "-D");
  const auto& w = filters.at(n.name);
  at::Tensor in = x;
  if (n.same_padding) {
    const auto [top, bottom] = same_pad(x.size(2), w.size(2), n.stride_h, n.dil_h);
    const auto [left, right] = same_pad(x.size(3), w.size(3), n.stride_w, n.dil_w);
    if (top || bottom || left || right) in = at::constant_pad_nd(x, {left, right, top, bottom}, 0.0);
  }
  const std::int64_t groups = is_depthwise(n.op) ? x.size(1) : 1;
  const std::vector<std::int64_t> stride{n.stride_h, n.stride_w}, pad{0, 0}, dil{n.dil_h, n.dil_w};
  return at::conv2d(in, w, at::Tensor(), stride, pad, dil, groups);
}

at::Tensor TfjsGraphModel::Impl::binary(const Node& n, const std::string& op, const at::Tensor& a, bool a_act,
                                        const at::Tensor& b, bool b_act) const {
  // An NCHW activation meets a TF-layout operand: align the latter.
  const bool a_nchw = a_act && a.dim() == 4, b_nchw = b_act && b.dim() == 4;
  const at::Tensor x = (b_nchw && !a_nchw) ? align_to_nchw(a) : a;
  const at::Tensor y = (a_nchw && !b_nchw) ? align_to_nchw(b) : b;
  if (op == "Add" || op == "AddV2" || op == "BiasAdd") return x + y;
  if (op == "Sub") return x - y;
  if (op == "Mul") return x * y;
  if (op == "Maximum") return at::maximum(x, y);
  if (op == "Minimum") return at::minimum(x, y);
  throw ModelError(file.string() + ": node '" + n.name + "': no binary op '" + op + "'");
}

at::Tensor TfjsGraphModel::Impl::mean(const Node& n, const at::Tensor& x) const {
  const auto axes_t = consts.at(n.inputs.at(1));
  std::vector<std::int64_t> tf_axes(axes_t.data_ptr<std::int64_t>(), axes_t.data_ptr<std::int64_t>() + axes_t.numel());
  for (auto& a : tf_axes) a = a < 0 ? a + x.dim() : a;
  if (x.dim() != 4) return at::mean(x, tf_axes, n.keep_dims);
  static constexpr std::int64_t kTfToTorch[4] = {0, 2, 3, 1};
  std::vector<std::int64_t> axes;
  for (auto a : tf_axes) axes.push_back(kTfToTorch[a]);
  auto y = at::mean(x, axes, /*keepdim=*/true);
  if (n.keep_dims) return y;
  y = y.permute({0, 2, 3, 1});  // back to NHWC, then drop the reduced TF axes
  std::sort(tf_axes.rbegin(), tf_axes.rend());
  for (auto a : tf_axes) y = y.squeeze(a);
  return y;
}

at::Tensor TfjsGraphModel::Impl::fused(const Node& n, at::Tensor y, const std::unordered_map<std::string, at::Tensor>& act,
                                       std::size_t first_arg) const {
  std::size_t arg = first_arg;
  const bool nchw = y.dim() == 4;
  for (const auto& f : n.fused_ops) {
    if (f == "BiasAdd") {
      const auto b = operand(act, n.inputs.at(arg++));
      y = y + (nchw ? align_to_nchw(b) : b);
    } else if (f == "Relu") {
      y = at::relu(y);
    } else if (f == "Relu6") {
      y = at::clamp(y, 0.0, 6.0);
    } else if (f == "Sigmoid") {
      y = at::sigmoid(y);
    } else {  // Prelu
      const auto alpha = operand(act, n.inputs.at(arg++));
      y = at::relu(y) - (nchw ? align_to_nchw(alpha) : alpha) * at::relu(-y);
    }
  }
  return y;
}

at::Tensor TfjsGraphModel::Impl::eval(const Node& n, const std::unordered_map<std::string, at::Tensor>& act) const {
  const auto in = [&](std::size_t k) { return operand(act, n.inputs.at(k)); };
  const auto is_act = [&](std::size_t k) { return !consts.count(n.inputs.at(k)); };
  const std::string& op = n.op;
  if (op == "Identity") return in(0);
  if (is_conv(op) || is_depthwise(op)) return fused(n, conv(n, in(0)), act, 2);
  if (op == "MatMul" || op == "_FusedMatMul") {
    const auto a = n.transpose_a ? in(0).t() : in(0);
    const auto b = n.transpose_b ? in(1).t() : in(1);
    return fused(n, at::matmul(a, b), act, 2);
  }
  if (op == "Relu") return at::relu(in(0));
  if (op == "Relu6") return at::clamp(in(0), 0.0, 6.0);
  if (op == "Sigmoid") return at::sigmoid(in(0));
  if (op == "Tanh") return at::tanh(in(0));
  if (op == "Softmax") {
    const auto x = in(0);
    return at::softmax(x, (is_act(0) && x.dim() == 4) ? 1 : -1);
  }
  if (op == "Mean") return mean(n, in(0));
  return binary(n, op, in(0), is_act(0), in(1), is_act(1));
}

TfjsGraphModel::TfjsGraphModel() : impl_(std::make_unique<Impl>()) {}
TfjsGraphModel::~TfjsGraphModel() = default;
TfjsGraphModel::TfjsGraphModel(TfjsGraphModel&&) noexcept = default;
TfjsGraphModel& TfjsGraphModel::operator=(TfjsGraphModel&&) noexcept = default;

TfjsGraphModel TfjsGraphModel::read(const fs::path& model_json) {
  if (!fs::exists(model_json))
    throw ModelError("TF.js graph model not found: " + model_json.string() + " (run scripts/fetch_assets.sh)");
  TfjsGraphModel g;
  Impl& m = *g.impl_;
  m.file = model_json;
  json model;
  try {
    model = json::parse(read_file(model_json));
  } catch (const json::exception& e) {
    throw ModelError(model_json.string() + ": not valid JSON (" + e.what() + ")");
  }
  try {
    if (model.value("format", "") != "graph-model")
      throw ModelError(model_json.string() + ": format is '" + model.value("format", "") + "', expected 'graph-model'");
    m.load_weights(model);
    for (const auto& j : model.at("modelTopology").at("node")) m.nodes.push_back(parse_node(j, model_json));
  } catch (const json::exception& e) {
    throw ModelError(model_json.string() + ": malformed TF.js graph model (" + e.what() + ")");
  }
  m.sort_and_check();
  m.check_inputs();
  m.prepare_filters();
  return g;
}

std::vector<at::Tensor> TfjsGraphModel::run(const at::Tensor& input, const std::vector<std::string>& outputs) const {
  const Impl& m = *impl_;
  // Mark the nodes the outputs depend on.
  std::vector<char> needed(m.nodes.size(), 0);
  std::vector<std::size_t> todo;
  std::vector<std::string> names;
  for (const auto& o : outputs) {
    const auto name = clean_input(o, m.file, "<output>");
    const auto it = m.index.find(name);
    if (it == m.index.end()) throw ModelError(m.file.string() + ": no node named '" + name + "' to output");
    names.push_back(name);
    todo.push_back(it->second);
  }
  while (!todo.empty()) {
    const std::size_t i = todo.back();
    todo.pop_back();
    if (needed[i]) continue;
    needed[i] = 1;
    for (const auto& in : m.nodes[i].inputs) todo.push_back(m.index.at(in));
  }
  std::unordered_map<std::string, at::Tensor> act;
  for (std::size_t i = 0; i < m.nodes.size(); ++i) {
    if (!needed[i]) continue;
    const Node& n = m.nodes[i];
    if (n.op == "Const") continue;
    act[n.name] = n.op == "Placeholder" ? input : m.eval(n, act);
  }
  std::vector<at::Tensor> out;
  for (const auto& name : names) out.push_back(m.consts.count(name) ? m.consts.at(name) : act.at(name));
  return out;
}

void TfjsGraphModel::to(const c10::Device& device) {
  for (auto& [name, t] : impl_->consts)
    if (t.scalar_type() == at::kFloat) t = t.to(device);
  for (auto& [name, t] : impl_->filters) t = t.to(device);
}

std::int64_t TfjsGraphModel::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& [name, t] : impl_->consts)
    if (t.scalar_type() == at::kFloat) n += t.numel();
  return n;
}

std::vector<std::pair<std::string, int>> TfjsGraphModel::op_counts() const {
  std::map<std::string, int> counts;
  for (const auto& n : impl_->nodes) ++counts[n.op];
  return {counts.begin(), counts.end()};
}

const fs::path& TfjsGraphModel::file() const { return impl_->file; }

}  // namespace edi::models::human
