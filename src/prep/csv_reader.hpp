#pragma once
// Streaming CSV rows through libcsv (quoted fields, embedded delimiters and line breaks, CRLF
// and CR-only line ends), with the physical line number of every row so that errors can name
// it. A UTF-8 byte-order mark is stripped. Memory: one read block and one row.

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
  /// outside quotes in the header line. Throws InputError for a missing or empty file.
  explicit CsvReader(std::string path, char delimiter = 0);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  const std::string& path() const { return path_; }
  /// Header names, trimmed of surrounding spaces.
  const std::vector<std::string>& header() const { return header_; }
  char delimiter() const { return delimiter_; }
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
  std::vector<std::string> header_;
  std::int64_t estimated_rows_ = 0;
};

/// "'name'" with the header's own spelling, for messages.
std::string quote_text(std::string_view text, std::size_t max_length = 60);

}  // namespace segforge::prep
