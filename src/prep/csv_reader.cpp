#include "csv_reader.hpp"

#include <csv.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>

#include "fields.hpp"
#include "segforge/error.hpp"
#include "segforge/rng.hpp"

namespace segforge::prep {

namespace {

// libcsv's parser states (csv_parser::pstate); only "no row begun" is needed here.
constexpr int kRowNotBegun = 0;
constexpr int kFieldBegun = 2;
constexpr std::size_t kBlock = std::size_t{1} << 20;

// Keep spaces: libcsv trims unquoted fields by default, which would make "a " and "a" equal.
int no_spaces(unsigned char) { return 0; }

bool starts_with_bom(const char* data, std::size_t n) {
  return n >= 3 && static_cast<unsigned char>(data[0]) == 0xEF &&
         static_cast<unsigned char>(data[1]) == 0xBB && static_cast<unsigned char>(data[2]) == 0xBF;
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

using File = std::unique_ptr<FILE, int (*)(FILE*)>;

File open_file(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw InputError(path + ": cannot open (" + std::strerror(errno) + "); check the path");
  return f;
}

/// zlib's reader: gzip data is inflated, any other file passes through unchanged.
struct GzClose {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzClose>;

GzFile open_gz(const std::string& path) {
  errno = 0;
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f)
    throw InputError(path + ": cannot open (" + std::strerror(errno != 0 ? errno : ENOMEM) +
                     "); check the path");
  gzbuffer(f.get(), 256 * 1024);
  return f;
}

/// Reads up to `n` bytes; InputError for damaged or truncated gzip data.
std::size_t read_gz(gzFile_s* f, char* out, std::size_t n, const std::string& path, std::int64_t line) {
  const int got = gzread(f, out, static_cast<unsigned>(n));
  int code = Z_OK;
  const char* what = gzerror(f, &code);
  if (code == Z_ERRNO)
    throw RuntimeFailure(path + ": read error after line " + std::to_string(line) + " (" +
                         std::strerror(errno) + "); check the file and the disk");
  if (got < 0 || (code != Z_OK && code != Z_STREAM_END))
    throw InputError(path + ": the gzip data is damaged or truncated after line " + std::to_string(line) +
                     " (zlib: " + (what != nullptr ? what : "error") +
                     "); compress the CSV again, or check that the download is complete");
  return static_cast<std::size_t>(got);
}

/// What the first bytes say the file is when it is not CSV text ("" when it may be).
std::string binary_kind(const unsigned char* b, std::size_t n) {
  if (n >= 4 && b[0] == 'P' && b[1] == 'K' && (b[2] == 3 || b[2] == 5 || b[2] == 7))
    return "a zip archive (an Excel .xlsx workbook or a zipped export), not CSV text; open it "
           "and save it as CSV (File > Save As > CSV UTF-8), or unzip it";
  if (n >= 8 && b[0] == 0xD0 && b[1] == 0xCF && b[2] == 0x11 && b[3] == 0xE0)
    return "an Excel 97-2003 workbook (.xls), not CSV text; open it and save it as CSV "
           "(File > Save As > CSV UTF-8)";
  if (n >= 4 && b[0] == 0x89 && b[1] == 'H' && b[2] == 'D' && b[3] == 'F')
    return "an HDF5 file, not CSV text; segforge-prep reads CSV exports (segforge reads .h5 files)";
  if (n >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) || (b[0] == 0xFE && b[1] == 0xFF)))
    return "UTF-16 text (Excel's \"Unicode text\"), not UTF-8; save it as CSV UTF-8, or convert "
           "it with iconv -f UTF-16 -t UTF-8";
  return "";
}

/// The candidate delimiter seen most often outside quotes on the first line.
char sniff_delimiter(const std::string& head) {
  std::size_t pos = starts_with_bom(head.data(), head.size()) ? 3 : 0;
  constexpr std::array<char, 4> kCandidates = {',', '\t', ';', '|'};
  std::array<int, 4> counts{};
  bool in_quotes = false;
  for (; pos < head.size(); ++pos) {
    const char c = head[pos];
    if (c == '"') in_quotes = !in_quotes;
    if (in_quotes) continue;
    if (c == '\n' || c == '\r') break;
    for (std::size_t k = 0; k < kCandidates.size(); ++k) counts[k] += c == kCandidates[k];
  }
  std::size_t best = 0;
  for (std::size_t k = 1; k < kCandidates.size(); ++k)
    if (counts[k] > counts[best]) best = k;
  return kCandidates[best];
}

}  // namespace

std::uint64_t CsvRow::hash() const {
  // Fields are views into one buffer, contiguous and in order: hash the bytes once, then mix
  // in the lengths so that "ab","c" differs from "a","bc".
  if (fields.empty()) return 0;
  const char* first = fields.front().data();
  const char* last = fields.back().data() + fields.back().size();
  std::uint64_t h = std::hash<std::string_view>{}(
      std::string_view(first, static_cast<std::size_t>(last - first)));
  for (const auto& f : fields) h = mix64(h ^ f.size());
  return h;
}

struct CsvReader::Parser {
  csv_parser p{};
  std::string bytes;                // the current row's fields, back to back
  std::vector<std::size_t> ends;    // end offset of each field in `bytes`
  CsvRow row;
  std::int64_t line = 1;
  std::int64_t start_line = 1;
  const std::function<bool(const CsvRow&)>* on_row = nullptr;
  std::vector<std::string>* header = nullptr;  // set while the header is still to come
  bool header_only = false;
  bool stop = false;
  std::exception_ptr error;

  explicit Parser(char delimiter) {
    if (csv_init(&p, 0) != 0) throw RuntimeFailure("libcsv: cannot initialise the parser");
    csv_set_delim(&p, static_cast<unsigned char>(delimiter));
    csv_set_space_func(&p, no_spaces);
  }
  ~Parser() { csv_free(&p); }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  static void on_field(void* s, std::size_t len, void* data) {
    auto* self = static_cast<Parser*>(data);
    if (self->stop) return;
    if (len > 0) self->bytes.append(static_cast<const char*>(s), len);
    self->ends.push_back(self->bytes.size());
  }

  static void on_end(int, void* data) {
    auto* self = static_cast<Parser*>(data);
    if (!self->stop) self->deliver();
    self->bytes.clear();
    self->ends.clear();
    // The next row starts on this physical line at the earliest: after a bare CR it starts on
    // it, not on the line where a quoted field of the row just ended began (fuzz_csv).
    self->start_line = self->line;
  }

  void deliver() {
    row.line = start_line;
    row.end_line = line;
    row.fields.clear();
    std::size_t begin = 0;
    for (std::size_t end : ends) {
      row.fields.emplace_back(bytes.data() + begin, end - begin);
      begin = end;
    }
    if (header != nullptr) {
      for (const auto& f : row.fields) header->emplace_back(trim_blanks(f));
      header = nullptr;
      stop = header_only;
      return;
    }
    // A line of spaces is blank, not a one-field row (libcsv skips truly empty lines).
    if (row.fields.size() == 1 && trim_blanks(row.fields[0]).empty()) return;
    try {
      if (!(*on_row)(row)) stop = true;
    } catch (...) {
      error = std::current_exception();
      stop = true;
    }
  }
};

CsvReader::CsvReader(std::string path, char delimiter, char decimal) : path_(std::move(path)) {
  std::int64_t size = 0;
  {
    File f = open_file(path_);
    std::array<unsigned char, 8> magic{};
    const std::size_t n = std::fread(magic.data(), 1, magic.size(), f.get());
    if (const std::string kind = binary_kind(magic.data(), n); !kind.empty())
      throw InputError(path_ + ": is " + kind);
    compressed_ = n >= 2 && magic[0] == 0x1F && magic[1] == 0x8B;
    std::fseek(f.get(), 0, SEEK_END);
    size = std::ftell(f.get());
    // gzip's last four bytes are the inflated size modulo 2^32 (RFC 1952): good enough for
    // sizing tables, where the compressed size would be several times too small.
    if (compressed_ && size >= 18 && std::fseek(f.get(), -4, SEEK_END) == 0) {
      std::array<unsigned char, 4> t{};
      if (std::fread(t.data(), 1, 4, f.get()) == 4)
        size = std::max<std::int64_t>(size, static_cast<std::int64_t>(t[0]) | (static_cast<std::int64_t>(t[1]) << 8) |
                                                (static_cast<std::int64_t>(t[2]) << 16) |
                                                (static_cast<std::int64_t>(t[3]) << 24));
    }
  }
  std::string head(64 * 1024, '\0');
  {
    GzFile f = open_gz(path_);
    head.resize(read_gz(f.get(), head.data(), head.size(), path_, 1));
    if (compressed_) {
      const std::string kind =
          binary_kind(reinterpret_cast<const unsigned char*>(head.data()), head.size());
      if (!kind.empty()) throw InputError(path_ + ": is gzip-compressed, and inside is " + kind);
    }
  }
  if (head.empty()) throw InputError(path_ + ": empty file; expected a header line and data rows");
  delimiter_ = delimiter != 0 ? delimiter : sniff_delimiter(head);
  decimal_ = decimal != 0 ? decimal : delimiter_ == ';' ? kEitherDecimal : '.';

  auto lines = std::count(head.begin(), head.end(), '\n');
  if (lines == 0) lines = std::count(head.begin(), head.end(), '\r');  // CR-only line ends
  estimated_rows_ = lines > 0 ? static_cast<std::int64_t>(static_cast<double>(size) / static_cast<double>(head.size()) *
                                                          static_cast<double>(lines))
                              : 1;
  read(nullptr, true);
  if (header_.empty())
    throw InputError(path_ + ": empty file; expected a header line and data rows");
}

CsvReader::~CsvReader() = default;

void CsvReader::for_each(const std::function<bool(const CsvRow&)>& on_row) { read(&on_row, false); }

void CsvReader::read(const std::function<bool(const CsvRow&)>* on_row, bool header_only) {
  GzFile file = open_gz(path_);
  Parser parser(delimiter_);
  parser.on_row = on_row;
  parser.header_only = header_only;
  std::vector<std::string> header;
  parser.header = &header;
  std::vector<char> block(kBlock);
  char terminator = '\n';
  bool first = true;
  // Feed libcsv one physical line at a time so that every row knows its line: a row starts
  // on the line where a segment begins while no row is open.
  while (!parser.stop) {
    const std::size_t n = read_gz(file.get(), block.data(), block.size(), path_, parser.line);
    if (n == 0) break;
    const char* data = block.data();
    std::size_t pos = 0;
    if (first) {
      first = false;
      if (starts_with_bom(data, n)) pos = 3;
      // CR-only files (old Mac exports) have no '\n' at all.
      if (std::memchr(data, '\n', n) == nullptr && std::memchr(data, '\r', n) != nullptr)
        terminator = '\r';
    }
    while (pos < n && !parser.stop) {
      const void* hit = std::memchr(data + pos, terminator, n - pos);
      const std::size_t end = hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - data) + 1 : n;
      if (parser.p.pstate == kRowNotBegun) parser.start_line = parser.line;
      if (csv_parse(&parser.p, data + pos, end - pos, Parser::on_field, Parser::on_end, &parser) !=
          end - pos)
        throw RuntimeFailure(path_ + " line " + std::to_string(parser.line) +
                             ": libcsv: " + csv_strerror(csv_error(&parser.p)));
      if (parser.error) std::rethrow_exception(parser.error);
      if (hit != nullptr) ++parser.line;
      pos = end;
    }
  }
  if (!parser.stop) {
    if (parser.p.pstate == kFieldBegun && parser.p.quoted)
      throw InputError(path_ + " line " + std::to_string(parser.start_line) +
                       ": a quoted field opened on this line is never closed, so the rest of "
                       "the file would be one field; balance the \" quotes");
    csv_fini(&parser.p, Parser::on_field, Parser::on_end, &parser);
    if (parser.error) std::rethrow_exception(parser.error);
  }
  if (header_only) header_ = std::move(header);
}

std::string quote_text(std::string_view text, std::size_t max_length) {
  if (text.size() > max_length) return "'" + printable(text.substr(0, max_length)) + "...'";
  return "'" + printable(text) + "'";
}

}  // namespace segforge::prep
