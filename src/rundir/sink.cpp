#include "edi/rundir/sink.hpp"

#include <stdexcept>

#include "edi/core/csv.hpp"
#include "edi/core/fs.hpp"

namespace edi::rundir {

namespace fs = std::filesystem;
using nlohmann::json;

std::size_t Table::rows() const {
  return columns.empty() ? 0 : std::visit([](const auto& v) { return v.size(); }, columns.front().values);
}

void Table::check() const {
  const std::size_t n = rows();
  for (const Column& c : columns)
    if (std::visit([](const auto& v) { return v.size(); }, c.values) != n)
      throw std::logic_error("table " + name + ": column " + c.name + " differs in length from " + columns.front().name);
}

// ------------------------------------------------------------------ HDF5

void H5Sink::attribute(const std::string& name, const Scalar& value) {
  std::visit([&](const auto& v) { h5::set_attr(root_, name, v); }, value);
}

void H5Sink::table(const Table& t) {
  t.check();
  h5::Group g = t.name.empty() ? root_ : file_.create_group(t.name);
  for (const Column& c : t.columns)
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::vector<std::string>>)
            h5::write_strings(g, c.name, v);
          else
            h5::write_vector(g, c.name, v);
        },
        c.values);
}

// ------------------------------------------------------------------ CSV

namespace {

std::string cell(const Values& values, std::size_t row) {
  return std::visit(
      [row](const auto& v) -> std::string {
        using T = typename std::decay_t<decltype(v)>::value_type;
        if constexpr (std::is_same_v<T, std::string>)
          return v[row];
        else if constexpr (std::is_floating_point_v<T>)
          return format_g(static_cast<double>(v[row]), 7);
        else
          return std::to_string(static_cast<long long>(v[row]));
      },
      values);
}

json json_value(const Values& values, std::size_t row) {
  return std::visit([row](const auto& v) { return json(v[row]); }, values);
}

}  // namespace

void CsvSink::attribute(const std::string& name, const Scalar&) {
  throw std::logic_error("CSV sink: no place for attribute " + name);
}

std::string CsvSink::text(const Table& t) {
  t.check();
  std::vector<std::string> fields;
  for (const Column& c : t.columns) fields.push_back(c.name);
  std::string out = csv_line(fields);
  const std::size_t n = t.rows();
  for (std::size_t r = 0; r < n; ++r) {
    fields.clear();
    for (const Column& c : t.columns) fields.push_back(cell(c.values, r));
    out += csv_line(fields);
  }
  return out;
}

void CsvSink::table(const Table& t) {
  write_file_atomic(file_.empty() ? dir_ / (t.name + ".csv") : file_, text(t));
}

// ------------------------------------------------------------------ JSON

void JsonSink::attribute(const std::string& name, const Scalar& value) {
  std::visit([&](const auto& v) { doc_[name] = v; }, value);
}

void JsonSink::table(const Table& t) {
  t.check();
  json rows = json::array();
  const std::size_t n = t.rows();
  for (std::size_t r = 0; r < n; ++r) {
    json row = json::object();
    for (const Column& c : t.columns) row[c.name] = json_value(c.values, r);
    rows.push_back(std::move(row));
  }
  doc_[t.name] = std::move(rows);
}

void JsonSink::commit(const fs::path& path) const { write_file_atomic(path, doc_.dump(2) + "\n"); }

}  // namespace edi::rundir
