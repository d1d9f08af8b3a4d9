#include "csv_reader.hpp"

#include <csv.h>
#include <zlib.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
  // Field by field, each field's bytes then its length, so that "ab","c" differs from
  // "a","bc"; the fields need not be contiguous (plain lines are split in place). Profiling:
  // a library hash call per field was 6% of `rfm`.
  std::uint64_t h = 0x9E3779B97F4A7C15ull;
  for (const auto& f : fields) h = text_hash(f, h);
  return h;
}

struct CsvReader::Parser {
  csv_parser p{};
  std::string bytes;                // the current row's fields, back to back (libcsv rows)
  std::vector<std::size_t> ends;    // end offset of each field in `bytes`
  CsvRow row;
  char delimiter = ',';
  char terminator = '\n';
  std::int64_t line = 1;
  std::int64_t start_line = 1;
  std::int64_t rows_ended = 0;      // rows libcsv or a plain line ended, delivered or not
  bool line_start = true;           // the next byte starts a physical line
  bool reached_stop = false;        // feed() stopped at `stop_at`
  const std::function<bool(const CsvRow&)>* on_row = nullptr;
  std::vector<std::string>* header = nullptr;  // set while the header is still to come
  bool header_only = false;
  bool stop = false;
  std::exception_ptr error;

  explicit Parser(char delimiter_char, char terminator_char)
      : delimiter(delimiter_char), terminator(terminator_char) {
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
    if (!self->stop) {
      self->row.fields.clear();
      std::size_t begin = 0;
      for (std::size_t end : self->ends) {
        self->row.fields.emplace_back(self->bytes.data() + begin, end - begin);
        begin = end;
      }
      self->deliver();
    }
    self->row_ended();
  }

  void row_ended() {
    bytes.clear();
    ends.clear();
    ++rows_ended;
    // The next row starts on this physical line at the earliest: after a bare CR it starts on
    // it, not on the line where a quoted field of the row just ended began (fuzz_csv).
    start_line = line;
  }

  /// A whole physical line [s, s + n) (its terminator last) that starts with no row open and
  /// holds no '"' and no other CR or LF: libcsv would split it at the delimiters and nothing
  /// else (spaces are kept; a blank line is no row), so it is split here, in place, without
  /// copying (profiling: libcsv's byte-at-a-time state machine and the copies of its fields
  /// were a quarter of `rfm`). False, untouched, for any other line: libcsv reads it.
  bool plain_line(const char* s, std::size_t n, bool plain_block) {
    std::size_t m = n - 1;  // without the terminator
    if (terminator == '\n' && m > 0 && s[m - 1] == '\r') --m;
    if (!plain_block && (std::memchr(s, '"', m) != nullptr || std::memchr(s, '\r', m) != nullptr ||
                         std::memchr(s, '\n', m) != nullptr))
      return false;
    if (m == 0) return true;  // a blank line: libcsv skips it
    if (!stop) {
      row.fields.clear();
      const char* at = s;
      const char* const last = s + m;
      for (;;) {
        const void* d = std::memchr(at, delimiter, static_cast<std::size_t>(last - at));
        const char* field_end = d != nullptr ? static_cast<const char*>(d) : last;
        row.fields.emplace_back(at, static_cast<std::size_t>(field_end - at));
        if (d == nullptr) break;
        at = field_end + 1;
      }
      deliver();
    }
    row_ended();
    return true;
  }

  void deliver() {
    row.line = start_line;
    row.end_line = line;
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

  /// Feeds libcsv the bytes [data, data + n), which lie at `offset` in the file, one physical
  /// line at a time so that every row knows its line: a row starts on the line where a
  /// segment begins while no row is open. Stops at the first line start at or after
  /// `stop_at` with no row open (reached_stop), or when `stop` is set. Returns the bytes used.
  std::size_t feed(const char* data, std::size_t n, std::int64_t offset, std::int64_t stop_at,
                   const std::string& path) {
    std::size_t pos = 0;
    // A block without '"' and CR (and LF in CR-only files) holds only plain lines.
    const bool plain_block = std::memchr(data, '"', n) == nullptr && std::memchr(data, '\r', n) == nullptr &&
                             (terminator == '\n' || std::memchr(data, '\n', n) == nullptr);
    while (pos < n && !stop) {
      if (line_start && p.pstate == kRowNotBegun && offset + static_cast<std::int64_t>(pos) >= stop_at) {
        reached_stop = true;
        return pos;
      }
      const void* hit = std::memchr(data + pos, terminator, n - pos);
      const std::size_t end = hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - data) + 1 : n;
      const bool fresh = p.pstate == kRowNotBegun;
      if (fresh) start_line = line;
      if (!(fresh && hit != nullptr && plain_line(data + pos, end - pos, plain_block)) &&
          csv_parse(&p, data + pos, end - pos, on_field, on_end, this) != end - pos)
        throw RuntimeFailure(path + " line " + std::to_string(line) + ": libcsv: " + csv_strerror(csv_error(&p)));
      if (error) std::rethrow_exception(error);
      if (hit != nullptr) ++line;
      line_start = hit != nullptr;
      pos = end;
    }
    return pos;
  }

  /// The end of the file: the last row when it has no line end, or the error for a quoted
  /// field never closed.
  void finish(const std::string& path) {
    if (stop) return;
    if (p.pstate == kFieldBegun && p.quoted)
      throw InputError(path + " line " + std::to_string(start_line) +
                       ": a quoted field opened on this line is never closed, so the rest of "
                       "the file would be one field; balance the \" quotes");
    csv_fini(&p, on_field, on_end, this);
    if (error) std::rethrow_exception(error);
  }
};

CsvReader::CsvReader(std::string path, char delimiter, char decimal) : path_(std::move(path)) {
  std::int64_t size = 0;
  bool regular = false;
  {
    File f = open_file(path_);
    std::array<unsigned char, 8> magic{};
    const std::size_t n = std::fread(magic.data(), 1, magic.size(), f.get());
    if (const std::string kind = binary_kind(magic.data(), n); !kind.empty())
      throw InputError(path_ + ": is " + kind);
    compressed_ = n >= 2 && magic[0] == 0x1F && magic[1] == 0x8B;
    struct stat st {};
    regular = ::fstat(::fileno(f.get()), &st) == 0 && S_ISREG(st.st_mode);
    std::fseek(f.get(), 0, SEEK_END);
    size = std::ftell(f.get());
    size_ = size;
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
  if (compressed_ || !regular) data_begin_ = {-1, 0};
}

CsvReader::~CsvReader() = default;

void CsvReader::for_each(const std::function<bool(const CsvRow&)>& on_row) { read(&on_row, false); }

void CsvReader::read(const std::function<bool(const CsvRow&)>* on_row, bool header_only) {
  GzFile file = open_gz(path_);
  std::vector<char> block(kBlock);
  // CR-only files (old Mac exports) have no '\n' at all: told by the first block.
  std::size_t n = read_gz(file.get(), block.data(), block.size(), path_, 1);
  char terminator = '\n';
  if (std::memchr(block.data(), '\n', n) == nullptr && std::memchr(block.data(), '\r', n) != nullptr)
    terminator = '\r';
  if (header_only) terminator_ = terminator;
  Parser parser(delimiter_, terminator);
  parser.on_row = on_row;
  parser.header_only = header_only;
  std::vector<std::string> header;
  parser.header = &header;
  std::int64_t offset = 0;
  std::size_t pos = starts_with_bom(block.data(), n) ? 3 : 0;
  constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
  while (n > 0 && !parser.stop) {
    pos += parser.feed(block.data() + pos, n - pos, offset + static_cast<std::int64_t>(pos), kNever, path_);
    if (parser.stop) break;
    offset += static_cast<std::int64_t>(n);
    n = read_gz(file.get(), block.data(), block.size(), path_, parser.line);
    pos = 0;
  }
  parser.finish(path_);
  if (!header_only) return;
  header_ = std::move(header);
  // Data rows start where the header's line ends, when nothing else began on that line.
  if (parser.rows_ended == 1 && parser.p.pstate == kRowNotBegun && (parser.line_start || n == 0))
    data_begin_ = {n == 0 ? size_ : offset + static_cast<std::int64_t>(pos), parser.line};
}

namespace {

/// An open file read with pread (thread-safe: no shared position).
class RawFile {
 public:
  explicit RawFile(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw RuntimeFailure(path + ": cannot open (" + std::strerror(errno) + "); check the path");
  }
  ~RawFile() { ::close(fd_); }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;
  /// Up to `n` bytes at `offset`; fewer only at the end of the file.
  std::size_t read(char* out, std::size_t n, std::int64_t offset) const {
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd_, out + got, n - got, static_cast<off_t>(offset) + static_cast<off_t>(got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0)
        throw RuntimeFailure(path_ + ": read error at byte " + std::to_string(offset) + " (" + std::strerror(errno) +
                             "); check the file and the disk");
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return got;
  }

 private:
  std::string path_;
  int fd_;
};

}  // namespace

std::vector<CsvBoundary> CsvReader::split(std::int64_t range_bytes, const CsvForEachIndex& run) const {
  SEGFORGE_ASSERT(seekable() && range_bytes > 0, "split needs a seekable file and a range size");
  const std::int64_t begin = data_begin_.offset;
  const std::int64_t chunks = std::max<std::int64_t>(1, (size_ - begin + range_bytes - 1) / range_bytes);
  const auto chunk_begin = [&](std::int64_t i) { return std::min(size_, begin + i * range_bytes); };
  // Pass 1: quotes and line ends per chunk.
  std::vector<std::int64_t> quotes(static_cast<std::size_t>(chunks) + 1, 0), lines(quotes.size(), 0);
  const char terminator = terminator_;
  run(chunks, [&](std::int64_t i) {
    RawFile file(path_);
    std::vector<char> block(kBlock);
    std::int64_t q = 0, l = 0;
    for (std::int64_t at = chunk_begin(i), end = chunk_begin(i + 1); at < end;) {
      const std::size_t n = file.read(block.data(), static_cast<std::size_t>(std::min<std::int64_t>(end - at, kBlock)), at);
      if (n == 0) break;
      // Byte counters over runs of 255 bytes vectorise (std::count's wide one did not).
      for (std::size_t j = 0; j < n; j += 255) {
        const std::size_t stop = std::min(n, j + 255);
        unsigned char qs = 0, ls = 0;
        for (std::size_t k = j; k < stop; ++k) {
          qs = static_cast<unsigned char>(qs + (block[k] == '"'));
          ls = static_cast<unsigned char>(ls + (block[k] == terminator));
        }
        q += qs;
        l += ls;
      }
      at += static_cast<std::int64_t>(n);
    }
    quotes[static_cast<std::size_t>(i) + 1] = q;
    lines[static_cast<std::size_t>(i) + 1] = l;
  });
  for (std::size_t i = 1; i < quotes.size(); ++i) {
    quotes[i] += quotes[i - 1];
    lines[i] += lines[i - 1];
  }
  // Pass 2: from each chunk's first byte, the first line end outside quotes (by parity);
  // none in the chunk: the next chunk's start (an empty range).
  std::vector<CsvBoundary> starts(static_cast<std::size_t>(chunks) + 1);
  starts.front() = data_begin_;
  starts.back() = {size_, data_begin_.line + lines.back()};
  run(chunks - 1, [&](std::int64_t k) {
    const std::int64_t i = k + 1;
    RawFile file(path_);
    std::vector<char> block(64 * 1024);
    bool quoted = (quotes[static_cast<std::size_t>(i)] & 1) != 0;
    std::int64_t line = data_begin_.line + lines[static_cast<std::size_t>(i)];
    CsvBoundary found{-1, 0};
    for (std::int64_t at = chunk_begin(i), end = chunk_begin(i + 1); at < end && found.offset < 0;) {
      const std::size_t n = file.read(block.data(), static_cast<std::size_t>(std::min<std::int64_t>(end - at, 64 * 1024)), at);
      if (n == 0) break;
      for (std::size_t j = 0; j < n; ++j) {
        const char c = block[j];
        if (c == '"') quoted = !quoted;
        if (c != terminator) continue;
        ++line;
        if (!quoted) {
          found = {at + static_cast<std::int64_t>(j) + 1, line};
          break;
        }
      }
      at += static_cast<std::int64_t>(n);
    }
    starts[static_cast<std::size_t>(i)] = found;
  });
  for (std::size_t i = starts.size() - 1; i-- > 1;)
    if (starts[i].offset < 0) starts[i] = starts[i + 1];
  starts.erase(std::unique(starts.begin(), starts.end(),
                           [](const CsvBoundary& a, const CsvBoundary& b) { return a.offset == b.offset; }),
               starts.end());
  if (starts.size() == 1) starts.push_back(starts.front());  // no data: one empty range
  return starts;
}

CsvBoundary CsvReader::scan_range(CsvBoundary begin, std::int64_t stop,
                                  const std::function<bool(const CsvRow&)>& on_row) const {
  SEGFORGE_ASSERT(seekable(), "scan_range needs a seekable file");
  RawFile file(path_);
  Parser parser(delimiter_, terminator_);
  parser.on_row = &on_row;
  parser.line = begin.line;
  parser.start_line = begin.line;
  std::vector<char> block(kBlock);
  std::int64_t offset = begin.offset;
  while (!parser.stop) {
    const std::size_t n = file.read(block.data(), block.size(), offset);
    if (n == 0) {
      parser.finish(path_);
      return {offset, parser.line};
    }
    offset += static_cast<std::int64_t>(parser.feed(block.data(), n, offset, stop, path_));
    if (parser.reached_stop) break;
  }
  return {offset, parser.line};
}

std::string quote_text(std::string_view text, std::size_t max_length) {
  if (text.size() > max_length) return "'" + printable(text.substr(0, max_length)) + "...'";
  return "'" + printable(text) + "'";
}

}  // namespace segforge::prep
