#pragma once
// Streaming CSV rows through libcsv (quoted fields, embedded delimiters and line breaks, CRLF
// and CR-only line ends), with the physical line number of every row so that errors can name
// it. A UTF-8 byte-order mark is stripped. gzip files (".csv.gz", told by their 1f 8b magic
// bytes, not by the name) are read through zlib as they stream. Workbooks and other binary
// files that are not CSV (zip/.xlsx, .xls, HDF5, UTF-16 text) are refused by their first bytes
// with a message saying how to save them as CSV. Memory: one read block and one row.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace segforge::prep {

struct CsvRow {
  std::int64_t line = 0;      ///< 1-based line where the row starts
  std::int64_t end_line = 0;  ///< line where it ends (> line when a quoted field spans lines)
  std::vector<std::string_view> fields;  ///< valid during the callback only

  /// 64-bit hash of every field's bytes and length (exact-duplicate detection).
  std::uint64_t hash() const;
};

class CsvReader {
 public:
  /// Opens `path` and reads its header. `delimiter` 0 picks the most frequent of , tab ; |
  /// outside quotes in the header line. `decimal` is the decimal mark of the numbers, '.' or
  /// ','; 0 picks '.' for files separated by anything but ';', and for ';'-separated files
  /// (the spreadsheet export where ',' is the decimal mark) kEitherDecimal: "1,5" and "1.5"
  /// both read, an ambiguous "1.234" does not. Throws InputError for a missing, empty or binary file.
  explicit CsvReader(std::string path, char delimiter = 0, char decimal = 0);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  const std::string& path() const { return path_; }
  /// Header names, trimmed of surrounding spaces.
  const std::vector<std::string>& header() const { return header_; }
  char delimiter() const { return delimiter_; }
  /// The decimal mark for parse_number: '.', ',' or kEitherDecimal.
  char decimal() const { return decimal_; }
  /// True when the file is gzip-compressed.
  bool compressed() const { return compressed_; }
  /// Rows in the file, estimated from its size and the line lengths of its first 64 KB
  /// (for sizing tables).
  std::int64_t estimated_rows() const { return estimated_rows_; }

  /// Calls `on_row` for every data row from the first; stops when it returns false. May be
  /// called again: each call reads the file from the start. Exceptions from `on_row` pass
  /// through. Throws InputError for a quoted field that is never closed.
  void for_each(const std::function<bool(const CsvRow&)>& on_row);

 private:
  struct Parser;
  void read(const std::function<bool(const CsvRow&)>* on_row, bool header_only);

  std::string path_;
  char delimiter_ = ',';
  char decimal_ = '.';
  bool compressed_ = false;
  std::vector<std::string> header_;
  std::int64_t estimated_rows_ = 0;
};

/// "'name'" with the header's own spelling, for messages: cut at `max_length` bytes, control
/// characters and bytes that are not UTF-8 escaped (printable() in fields.hpp), so that a
/// message never echoes raw bytes from a file to the terminal.
std::string quote_text(std::string_view text, std::size_t max_length = 60);

}  // namespace segforge::prep
