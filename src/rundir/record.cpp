#include "edi/rundir/record.hpp"

#include <map>
#include <nlohmann/json.hpp>

#include "edi/core/error.hpp"

namespace edi::rundir {

using nlohmann::json;

// ------------------------------------------------------------------ JSON

namespace {

engine::Status status_from_name(const std::string& name) {
  for (int s = 0; s <= static_cast<int>(engine::Status::kFixed); ++s)
    if (name == engine::status_name(static_cast<engine::Status>(s))) return static_cast<engine::Status>(s);
  throw DataError("run record: status '" + name + "': expected one of active|stopped|capped|stalled|fixed");
}

template <class T>
T field(const json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw DataError(where + ": no key '" + key + "'");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw DataError(where + ": key '" + key + "' has the wrong type (" + j.at(key).dump() + ")");
  }
}

}  // namespace

void to_json(json& j, const RunRecord& r) {
  json t = json::array();
  for (const auto& p : r.record.trajectory)
    t.push_back({{"pass", p.pass}, {"true_prob", p.true_prob}, {"true_rank", p.true_rank}, {"top1", p.top1},
                 {"changed_share", p.changed_share}, {"psnr", p.psnr}, {"linf", p.linf}});
  j = json{{"id", r.id},
           {"identity", r.identity},
           {"label", r.label},
           {"split", data::split_name(r.split)},
           {"status", engine::status_name(r.record.status)},
           {"stop_pass", r.record.stop_pass},
           {"escalation", r.record.escalation},
           {"stalls", r.record.stalls},
           {"identified", r.record.identified},
           {"trajectory", std::move(t)}};
}

void from_json(const json& j, RunRecord& r) {
  const std::string where = "run record " + (j.is_object() && j.contains("id") ? j["id"].dump() : std::string("?"));
  r.id = field<std::string>(j, "id", where);
  r.identity = field<std::string>(j, "identity", where);
  r.label = field<int>(j, "label", where);
  r.split = data::parse_split(field<std::string>(j, "split", where), where + ": split");
  r.record.status = status_from_name(field<std::string>(j, "status", where));
  r.record.stop_pass = field<int>(j, "stop_pass", where);
  r.record.escalation = field<int>(j, "escalation", where);
  r.record.stalls = field<int>(j, "stalls", where);
  r.record.identified = field<bool>(j, "identified", where);
  r.record.trajectory.clear();
  const json t = field<json>(j, "trajectory", where);
  if (!t.is_array()) throw DataError(where + ": key 'trajectory' is not an array");
  for (const json& p : t) {
    const std::string pw = where + " trajectory point";
    r.record.trajectory.push_back({field<int>(p, "pass", pw), field<float>(p, "true_prob", pw), field<int>(p, "true_rank", pw),
                                   field<int>(p, "top1", pw), field<float>(p, "changed_share", pw), field<float>(p, "psnr", pw),
                                   field<float>(p, "linf", pw)});
  }
}

std::vector<RunRecord> run_records(const data::Manifest& m, const std::vector<const engine::Shard*>& shards) {
  std::map<std::string, const data::ManifestEntry*> by_id;
  for (const auto& e : m.entries) by_id[e.id] = &e;
  std::vector<RunRecord> out;
  for (const engine::Shard* s : shards)
    for (std::size_t i = 0; i < s->size(); ++i) {
      const auto e = by_id.find(s->ids[i]);
      if (e == by_id.end()) throw DataError(m.data_root + ": image " + s->ids[i] + " of shard " + std::to_string(s->index) + " is not in the manifest");
      RunRecord r;
      r.id = s->ids[i];
      r.label = e->second->identity;
      r.identity = m.identities.at(static_cast<std::size_t>(r.label));
      r.split = e->second->split;
      r.record = s->records[i];
      out.push_back(std::move(r));
    }
  return out;
}

// ------------------------------------------------------------------ columns

namespace {

void append(RecordColumns& f, const engine::ImageRecord& r) {
  const auto row = static_cast<std::int32_t>(f.status.size());
  f.status.push_back(static_cast<std::uint8_t>(r.status));
  f.identified.push_back(r.identified ? 1 : 0);
  f.stop_pass.push_back(r.stop_pass);
  f.escalation.push_back(r.escalation);
  f.stalls.push_back(r.stalls);
  f.evaluations.push_back(static_cast<std::int32_t>(r.trajectory.size()));
  const engine::TrajectoryPoint last = r.trajectory.empty() ? engine::TrajectoryPoint{} : r.trajectory.back();
  f.final_prob.push_back(last.true_prob);
  f.final_rank.push_back(last.true_rank);
  f.final_top1.push_back(last.top1);
  f.final_psnr.push_back(last.psnr);
  f.final_changed.push_back(last.changed_share);
  f.final_linf.push_back(last.linf);
  for (const auto& p : r.trajectory) {
    f.t_image.push_back(row);
    f.t_pass.push_back(p.pass);
    f.t_rank.push_back(p.true_rank);
    f.t_top1.push_back(p.top1);
    f.t_prob.push_back(p.true_prob);
    f.t_changed.push_back(p.changed_share);
    f.t_psnr.push_back(p.psnr);
    f.t_linf.push_back(p.linf);
  }
}

}  // namespace

RecordColumns flatten(const std::vector<engine::ImageRecord>& records) {
  RecordColumns f;
  for (const auto& r : records) append(f, r);
  return f;
}

RecordColumns flatten(const std::vector<RunRecord>& records) {
  RecordColumns f;
  for (const auto& r : records) append(f, r.record);
  return f;
}

std::string column_problem(const RecordColumns& f, std::size_t n) {
  const std::size_t m = f.t_image.size();
  if (f.status.size() != n || f.identified.size() != n || f.stop_pass.size() != n || f.escalation.size() != n ||
      f.stalls.size() != n || f.t_pass.size() != m || f.t_rank.size() != m || f.t_top1.size() != m || f.t_prob.size() != m ||
      f.t_changed.size() != m || f.t_psnr.size() != m || f.t_linf.size() != m)
    return "inconsistent record sizes";
  for (std::uint8_t st : f.status)
    if (st > static_cast<std::uint8_t>(engine::Status::kFixed)) return "unknown image status " + std::to_string(st);
  for (std::int32_t i : f.t_image)
    if (i < 0 || static_cast<std::size_t>(i) >= n) return "trajectory refers to image " + std::to_string(i);
  return {};
}

std::vector<engine::ImageRecord> unflatten(const RecordColumns& f) {
  std::vector<engine::ImageRecord> records(f.status.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto& r = records[i];
    r.status = static_cast<engine::Status>(f.status[i]);
    r.identified = f.identified[i] != 0;
    r.stop_pass = f.stop_pass[i];
    r.escalation = f.escalation[i];
    r.stalls = f.stalls[i];
  }
  for (std::size_t k = 0; k < f.t_image.size(); ++k)
    records[static_cast<std::size_t>(f.t_image[k])].trajectory.push_back(
        {f.t_pass[k], f.t_prob[k], f.t_rank[k], f.t_top1[k], f.t_changed[k], f.t_psnr[k], f.t_linf[k]});
  return records;
}

// ------------------------------------------------------------------ tables

Table checkpoint_image_table(const RecordColumns& c) {
  return {"", {{"status", c.status}, {"identified", c.identified}, {"stop_pass", c.stop_pass}, {"escalation", c.escalation}, {"stalls", c.stalls}}};
}

Table trajectory_table(const RecordColumns& c) {
  return {"trajectory",
          {{"image", c.t_image}, {"pass", c.t_pass}, {"true_prob", c.t_prob}, {"true_rank", c.t_rank}, {"top1", c.t_top1},
           {"changed_share", c.t_changed}, {"psnr", c.t_psnr}, {"linf", c.t_linf}}};
}

Table results_image_table(const std::vector<RunRecord>& records, const RecordColumns& c) {
  std::vector<std::string> ids;
  std::vector<std::int32_t> identity;
  std::vector<std::uint8_t> split;
  for (const auto& r : records) {
    ids.push_back(r.id);
    identity.push_back(r.label);
    split.push_back(static_cast<std::uint8_t>(r.split));
  }
  return {"images",
          {{"id", ids}, {"identity", identity}, {"split", split}, {"status", c.status}, {"stop_pass", c.stop_pass},
           {"escalation", c.escalation}, {"stalls", c.stalls}, {"final_true_prob", c.final_prob}, {"final_true_rank", c.final_rank},
           {"final_top1", c.final_top1}, {"identified", c.identified}, {"psnr", c.final_psnr}, {"changed_share", c.final_changed},
           {"linf", c.final_linf}}};
}

Table outcomes_table(const std::vector<RunRecord>& records, const RecordColumns& c) {
  std::vector<std::string> ids, identity, split, status;
  std::vector<std::int32_t> label;
  for (const auto& r : records) {
    ids.push_back(r.id);
    identity.push_back(r.identity);
    label.push_back(r.label);
    split.push_back(data::split_name(r.split));
    status.push_back(engine::status_name(r.record.status));
  }
  return {"outcomes",
          {{"id", ids}, {"identity", identity}, {"label", label}, {"split", split}, {"status", status}, {"stop_pass", c.stop_pass},
           {"evaluations", c.evaluations}, {"escalation", c.escalation}, {"stalls", c.stalls}, {"final_true_prob", c.final_prob},
           {"final_true_rank", c.final_rank}, {"final_top1", c.final_top1}, {"identified", c.identified}, {"psnr", c.final_psnr},
           {"changed_share", c.final_changed}, {"linf", c.final_linf}}};
}

Table trajectories_table(const std::vector<RunRecord>& records, const RecordColumns& c) {
  std::vector<std::string> ids;
  for (std::int32_t row : c.t_image) ids.push_back(records.at(static_cast<std::size_t>(row)).id);
  return {"trajectories",
          {{"id", ids}, {"pass", c.t_pass}, {"true_prob", c.t_prob}, {"true_rank", c.t_rank}, {"top1", c.t_top1},
           {"changed_share", c.t_changed}, {"psnr", c.t_psnr}, {"linf", c.t_linf}}};
}

void write_outcomes(const std::filesystem::path& path, const data::Manifest& m, const std::vector<const engine::Shard*>& shards) {
  const std::vector<RunRecord> records = run_records(m, shards);
  CsvSink::to_file(path).table(outcomes_table(records, flatten(records)));
}

void write_trajectories(const std::filesystem::path& path, const data::Manifest& m, const std::vector<const engine::Shard*>& shards) {
  const std::vector<RunRecord> records = run_records(m, shards);
  CsvSink::to_file(path).table(trajectories_table(records, flatten(records)));
}

}  // namespace edi::rundir
