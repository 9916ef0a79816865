#pragma once
/// \file RFC 4180 CSV: quoted fields, embedded commas, quotes and newlines.
/// Lines starting with '#' before the header are comments (metadata).
#include <string>
#include <string_view>
#include <vector>

namespace edi {

struct CsvTable {
  std::vector<std::string> comments;             ///< '#' lines before the header, without '#'
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> row_lines;                    ///< 1-based source line of each row
};

/// Parse CSV text. `source` names the file in error messages. Throws DataError
/// on an unterminated quote or a row whose field count differs from the header.
CsvTable parse_csv(std::string_view text, const std::string& source);

/// Quote a field when it holds a comma, quote, CR or LF.
std::string csv_field(std::string_view field);

/// A number as a default-formatted std::ostream writes it with `significant`
/// digits (%g-like: 90, 0.15, 1e-07, inf): the one formatter of option values,
/// descriptions and the engine's CSV outputs.
std::string format_g(double value, int significant = 6);

/// Join fields into one CSV line (with trailing '\n').
std::string csv_line(const std::vector<std::string>& fields);

/// Index of `name` in `header`, or -1.
int csv_column(const CsvTable& table, std::string_view name);

}  // namespace edi
