#pragma once
/// \file One writer interface for the run directory's tables and attributes,
/// with HDF5 (a group per table), CSV (one file per table) and JSON (an array
/// of row objects per table) sinks. The tables themselves are built once
/// (record.hpp); a sink only decides the format.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "edi/rundir/h5.hpp"

namespace edi::rundir {

/// One column: a name and its typed values.
using Values = std::variant<std::vector<std::int32_t>, std::vector<std::int64_t>, std::vector<std::uint8_t>, std::vector<float>,
                            std::vector<double>, std::vector<std::string>>;
struct Column {
  std::string name;
  Values values;
};

/// Named columns of equal length.
struct Table {
  std::string name;  ///< HDF5 group ("" = the root), CSV file stem, JSON key
  std::vector<Column> columns;
  std::size_t rows() const;
  /// Throws std::logic_error when the columns differ in length (a programming error).
  void check() const;
};

/// A scalar attribute.
using Scalar = std::variant<std::string, std::int64_t, double>;

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void attribute(const std::string& name, const Scalar& value) = 0;
  virtual void table(const Table& table) = 0;
};

/// Into an open HDF5 file: attributes on the root group, each table a group
/// (its name; "" = the root) of 1-D datasets.
class H5Sink : public Sink {
 public:
  explicit H5Sink(const h5::File& file) : file_(file), root_(file.root()) {}
  void attribute(const std::string& name, const Scalar& value) override;
  void table(const Table& table) override;

 private:
  const h5::File& file_;
  h5::Group root_;
};

/// CSV text: the header, then one line per row (integers in full, floats
/// with 7 significant digits, `%g` style; core/csv quoting). Attributes have
/// no place in a CSV file: attribute() throws std::logic_error.
class CsvSink : public Sink {
 public:
  /// Each table() is written atomically to `dir/<table name>.csv`, or to
  /// `file` when one is given.
  static CsvSink to_file(std::filesystem::path file) { return CsvSink(std::move(file), {}); }
  static CsvSink to_dir(std::filesystem::path dir) { return CsvSink({}, std::move(dir)); }
  void attribute(const std::string& name, const Scalar& value) override;
  void table(const Table& table) override;
  /// The CSV text of a table.
  static std::string text(const Table& table);

 private:
  CsvSink(std::filesystem::path file, std::filesystem::path dir) : file_(std::move(file)), dir_(std::move(dir)) {}
  std::filesystem::path file_, dir_;
};

/// A JSON document: attributes as keys, each table as an array of row objects
/// under its name. commit() writes it (2-space indent, a final newline).
class JsonSink : public Sink {
 public:
  void attribute(const std::string& name, const Scalar& value) override;
  void table(const Table& table) override;
  /// A nested value no table or scalar fits (an object of options, counts).
  void object(const std::string& name, nlohmann::json value) { doc_[name] = std::move(value); }
  const nlohmann::json& document() const { return doc_; }
  void commit(const std::filesystem::path& path) const;

 private:
  nlohmann::json doc_ = nlohmann::json::object();
};

}  // namespace edi::rundir
