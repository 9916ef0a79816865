#include "edi/core/csv.hpp"

#include <sstream>

#include "edi/core/error.hpp"

namespace edi {

namespace {

std::string trim_cr(std::string s) {
  while (!s.empty() && (s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

CsvTable parse_csv(std::string_view text, const std::string& source) {
  CsvTable table;
  std::size_t i = 0;
  int line = 1;
  // Comment lines before the header.
  while (i < text.size() && text[i] == '#') {
    const std::size_t end = text.find('\n', i);
    const std::size_t stop = end == std::string_view::npos ? text.size() : end;
    table.comments.push_back(trim_cr(std::string(text.substr(i + 1, stop - i - 1))));
    i = end == std::string_view::npos ? text.size() : end + 1;
    ++line;
  }
  std::vector<std::string> fields;
  std::string field;
  bool in_quotes = false, field_quoted = false, header_done = false;
  int record_line = line;
  auto end_record = [&] {
    fields.push_back(std::move(field));
    field.clear();
    field_quoted = false;
    const bool blank = fields.size() == 1 && fields[0].empty();
    if (!blank) {
      if (!header_done) {
        table.header = std::move(fields);
        header_done = true;
      } else {
        if (fields.size() != table.header.size())
          throw DataError(source + ":" + std::to_string(record_line) + ": expected " +
                          std::to_string(table.header.size()) + " fields, found " +
                          std::to_string(fields.size()));
        table.rows.push_back(std::move(fields));
        table.row_lines.push_back(record_line);
      }
    }
    fields.clear();
  };
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    switch (c) {
      case '"':
        if (!field.empty())
          throw DataError(source + ":" + std::to_string(line) + ": quote inside an unquoted field");
        in_quotes = field_quoted = true;
        break;
      case ',':
        fields.push_back(std::move(field));
        field.clear();
        field_quoted = false;
        break;
      case '\r':
        break;
      case '\n':
        end_record();
        ++line;
        record_line = line;
        break;
      default:
        field.push_back(c);
    }
  }
  if (in_quotes) throw DataError(source + ":" + std::to_string(record_line) + ": unterminated quoted field");
  if (!field.empty() || !fields.empty() || field_quoted) end_record();
  if (!header_done) throw DataError(source + ": empty CSV file (no header line)");
  return table;
}

std::string csv_field(std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out.push_back(',');
    out += csv_field(fields[i]);
  }
  out.push_back('\n');
  return out;
}

int csv_column(const CsvTable& table, std::string_view name) {
  for (std::size_t i = 0; i < table.header.size(); ++i)
    if (table.header[i] == name) return static_cast<int>(i);
  return -1;
}

std::string format_g(double value, int significant) {
  std::ostringstream s;
  s.precision(significant);
  s << value;
  return s.str();
}

}  // namespace edi
