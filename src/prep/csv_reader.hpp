#pragma once
// Streaming CSV rows through libcsv (quoted fields, embedded delimiters and line breaks, CRLF
// and CR-only line ends), with the physical line number of every row so that errors can name
// it. A UTF-8 byte-order mark is stripped. gzip files (".csv.gz", told by their 1f 8b magic
// bytes, not by the name) are read through zlib as they stream. Workbooks and other binary
// files that are not CSV (zip/.xlsx, .xls, HDF5, UTF-16 text) are refused by their first bytes
// with a message saying how to save them as CSV. Memory: one read block and one row.
//
// Byte ranges: an uncompressed regular file can also be read as ranges of records (split,
// then scan_range on each, on any threads), each range's rows exactly as for_each delivers
// them (same fields, same line numbers): see split().

#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
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

/// A place where a record starts: its byte offset in the file and its 1-based line.
struct CsvBoundary {
  std::int64_t offset = 0;
  std::int64_t line = 1;
  bool operator==(const CsvBoundary&) const = default;
};

/// Runs body(i) for every i in [0, n), in any order and on any threads (split() counts the
/// bytes of its chunks through it); exceptions pass through.
using CsvForEachIndex = std::function<void(std::int64_t n, const std::function<void(std::int64_t)>& body)>;

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

  /// True when the file can be read as byte ranges: a regular file, not gzip, whose header
  /// ends at a line end with no row begun after it on that line.
  bool seekable() const { return data_begin_.offset >= 0; }
  /// File size in bytes.
  std::int64_t size() const { return size_; }

  /// Cuts the data rows of a seekable() file into ranges of about `range_bytes`: the first
  /// boundary is the first data row, the last is {size(), last line}, and every other is a
  /// likely record start: the first line start at or after a multiple of `range_bytes` that
  /// is outside quotes by the parity of the '"' before it (counted per chunk through `run`).
  /// A quote that libcsv takes literally (inside an unquoted field) can fool the parity; then
  /// scan_range of the range before ends elsewhere, which the caller must check (the true
  /// start of range i + 1 is where range i ends).
  std::vector<CsvBoundary> split(std::int64_t range_bytes, const CsvForEachIndex& run) const;

  /// Reads the records that start at or after `begin` (a record start: the first data row or
  /// where an earlier scan_range ended) and before the first line start at or after `stop`
  /// with no record open, calling `on_row` as for_each does (with the same line numbers);
  /// returns where the next record starts ({size(), line} at the end of the file). Stops
  /// early when on_row returns false. Thread-safe: each call opens the file itself.
  CsvBoundary scan_range(CsvBoundary begin, std::int64_t stop,
                         const std::function<bool(const CsvRow&)>& on_row) const;

 private:
  struct Parser;
  void read(const std::function<bool(const CsvRow&)>* on_row, bool header_only);

  std::string path_;
  char delimiter_ = ',';
  char decimal_ = '.';
  bool compressed_ = false;
  char terminator_ = '\n';  // '\r' for CR-only files (told by the first block, as read() does)
  std::vector<std::string> header_;
  std::int64_t estimated_rows_ = 0;
  std::int64_t size_ = 0;
  CsvBoundary data_begin_{-1, 0};  // the first data row; offset -1 when not seekable()
};

/// "'name'" with the header's own spelling, for messages: cut at `max_length` bytes, control
/// characters and bytes that are not UTF-8 escaped (printable() in fields.hpp), so that a
/// message never echoes raw bytes from a file to the terminal.
std::string quote_text(std::string_view text, std::size_t max_length = 60);

}  // namespace segforge::prep
