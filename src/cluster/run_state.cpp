#include "edi/cluster/run_state.hpp"

#include <nlohmann/json.hpp>

#include "edi/core/error.hpp"

namespace edi::cluster {

using nlohmann::json;

void PassReduction::add(const engine::PassCounts& c) {
  identified += c.identified;
  active += c.active;
  total += c.total;
}

void PassReduction::reduce(const Mpi& mpi) {
  std::vector<std::int64_t> v{identified, active, total, image_passes, stopped_claiming, shards_done};
  mpi.sum(v);
  identified = v[0];
  active = v[1];
  total = v[2];
  image_passes = v[3];
  stopped_claiming = v[4];
  shards_done = v[5];
}

std::string RunHistory::to_json() const {
  json j = json::object();
  j["batch"] = batch;
  json passes_json = json::array();
  for (const auto& r : passes)
    passes_json.push_back({{"pass", r.pass}, {"risk_percent", r.risk_percent}, {"active", r.active}, {"identified", r.identified},
                           {"total", r.total}, {"seconds", r.seconds}, {"rate", r.image_passes_per_s}});
  j["passes"] = passes_json;
  if (!checkpoint_policy.empty()) j["checkpoint_policy"] = json::parse(checkpoint_policy);
  if (!schedule.empty()) j["schedule"] = schedule;
  return j.dump(2) + "\n";
}

RunHistory RunHistory::from_json(const std::string& text, const std::string& where) {
  RunHistory h;
  try {
    const json j = json::parse(text);
    if (!j.is_object()) throw DataError(where + ": expected a JSON object");
    h.batch = j.at("batch").get<int>();
    if (h.batch < 1) throw DataError(where + ": \"batch\" " + std::to_string(h.batch) + ": expected >= 1");
    for (const auto& p : j.at("passes")) {
      engine::PassReport r;
      r.pass = p.at("pass").get<int>();
      r.risk_percent = p.at("risk_percent").get<double>();
      r.active = p.at("active").get<std::int64_t>();
      r.identified = p.at("identified").get<std::int64_t>();
      r.total = p.at("total").get<std::int64_t>();
      r.seconds = p.at("seconds").get<double>();
      r.image_passes_per_s = p.at("rate").get<double>();
      h.passes.push_back(r);
    }
    if (j.contains("checkpoint_policy")) h.checkpoint_policy = j["checkpoint_policy"].dump();
    if (j.contains("schedule")) h.schedule = j.at("schedule").get<std::string>();
  } catch (const json::exception& e) {
    throw DataError(where + ": not a run history (" + e.what() + ")");
  }
  return h;
}

std::vector<engine::PassReport> RunHistory::contiguous() const {
  std::vector<engine::PassReport> out;
  for (const auto& r : passes)
    if (r.pass == static_cast<int>(out.size())) out.push_back(r);
  return out;
}

}  // namespace edi::cluster
