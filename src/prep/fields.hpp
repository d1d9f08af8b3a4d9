#pragma once
// Pieces shared by the prep readers: numbers and ids from CSV text, column lookup by flag or
// by recognised name, the bad-row policy, and the exact-duplicate set.

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "csv_reader.hpp"
#include "segforge/prep/common.hpp"

namespace segforge::prep {

class Columns;

std::string_view trim(std::string_view s);

/// A 64-bit hash of `text` (wyhash's reads and 64x64->128-bit multiply-fold: one multiply for
/// up to 16 bytes, whose loads overlap rather than copy a tail byte by byte): for the hash
/// tables of the readers (exact-duplicate rows, interned ids); never stored in an output.
/// `seed` chains fields into a row's hash; the length is mixed in, so an empty text changes it.
inline std::uint64_t text_hash(std::string_view text, std::uint64_t seed = 0x9E3779B97F4A7C15ull) {
  const auto mum = [](std::uint64_t a, std::uint64_t b) {
    const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
  };
  const auto r8 = [](const char* p) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  const auto r4 = [](const char* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return static_cast<std::uint64_t>(v);
  };
  constexpr std::uint64_t k0 = 0xA0761D6478BD642Full, k1 = 0xE7037ED1A0B428DBull, k2 = 0x8EBC6AF09C88C6E3ull;
  const char* p = text.data();
  const std::size_t n = text.size();
  std::uint64_t h = seed ^ k0, a = 0, b = 0;
  if (n <= 16) {
    if (n >= 4) {
      a = (r4(p) << 32) | r4(p + ((n >> 3) << 2));
      b = (r4(p + n - 4) << 32) | r4(p + n - 4 - ((n >> 3) << 2));
    } else if (n > 0) {
      a = (static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
          (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n >> 1])) << 8) |
          static_cast<unsigned char>(p[n - 1]);
    }
  } else {
    std::size_t i = n;
    for (; i > 16; i -= 16, p += 16) h = mum(r8(p) ^ k1, r8(p + 8) ^ h);
    a = r8(p + i - 16);
    b = r8(p + i - 8);
  }
  return mum(k1 ^ n, mum(a ^ k1, b ^ h) ^ k2);
}

/// parse_number's `decimal` for files where either mark may be used (';'-separated files
/// without --decimal): "1,5" and "1.5" are both 1.5, but "1.234" (a thousands separator or a
/// decimal point?) is not a number.
constexpr char kEitherDecimal = 'a';

/// A finite decimal number ("12", "-3.5", "1e3", " +2 "); nullopt for anything else,
/// including "", "nan", "inf" and "$3". `decimal` is the decimal mark: '.' (then "1,5" is not
/// a number), ',' (then "1,5" is 1.5, "1.234,5" is 1234.5 with '.' between groups of three
/// digits only, and "1.5" is not a number) or kEitherDecimal.
std::optional<double> parse_number(std::string_view text, char decimal = '.');

/// Why `text` is not a number under `decimal`, when the decimal mark may be the cause
/// (" (with a decimal comma, pass --decimal ,)"); "" otherwise.
std::string decimal_hint(std::string_view text, char decimal);

/// The id as compared across files: the field exactly as spelled, trimmed only of surrounding
/// ASCII spaces and tabs ("5.0" and "5" are two ids). Empty when missing.
std::string_view normalise_id(std::string_view text);

/// The id in field `column` of `row` (normalise_id), checked: an id must be UTF-8 text with no
/// control character (NUL, line break, tab inside, ...), so that it round-trips through HDF5
/// strings, h5py, pandas and segments.csv exactly. InputError naming file, line and column
/// otherwise (whatever the bad-row policy: a changed id would put a segment on another donor).
std::string_view id_field(const CsvRow& row, int column, const Columns& columns);

/// The problem with an id's bytes ("contains a NUL byte", "is not UTF-8 (byte 0xE9 at 3)"),
/// or "" when it is a valid id.
std::string id_problem(std::string_view id);

/// `text` with control characters and bytes that are not UTF-8 written as \n, \t, \r, \0,
/// \xNN, so that a message never puts raw bytes from a file on the terminal. Valid UTF-8
/// (accents, other scripts) is kept.
std::string printable(std::string_view text);

/// InputError "FILE: all N rows were skipped as bad: FIRST REASON; ..." when every data row of
/// the file was skipped under --on-bad-row skip (so that an empty result is explained by its
/// cause, not by a later, unrelated check).
void require_rows_left(const FileCounts& counts);

/// A number for messages: "%.6g" ("1e+200", "12.5").
std::string number_text(double value);

/// A canonical decimal integer that fits int64 ("0", "-12", not "012" or "+1").
std::optional<std::int64_t> canonical_integer(std::string_view text);

/// Lower case, runs of anything but [a-z0-9] as one '_', trimmed of '_': "Direct Mail" ->
/// "direct_mail". Empty stays empty.
std::string snake_name(std::string_view text);

/// Finds columns in a header.
class Columns {
 public:
  Columns(std::string path, std::vector<std::string> header);
  const std::string& path() const { return path_; }
  std::size_t size() const { return header_.size(); }
  const std::string& name(std::size_t i) const { return header_[i]; }
  /// The column named by `flag_value` (exact, then ignoring case), or when that is empty the
  /// first header name matching one of `recognised` (ignoring case, spaces, '_' and '-').
  /// -1 when absent or flag_value is "none". A named column that is absent is an InputError
  /// that lists the header and names `flag`; so is a column whose name the header has twice
  /// (which of the two is meant cannot be told).
  int find(const std::string& flag_value, const std::vector<std::string>& recognised,
           const std::string& flag) const;
  /// As find, but absence is an InputError saying what the column is for (`what`).
  int require(const std::string& flag_value, const std::vector<std::string>& recognised,
              const std::string& flag, const std::string& what) const;
  std::string listing() const;  ///< "'a', 'b', 'c'"
  /// InputError when two header columns have the same name (for a table, where every column
  /// may become a feature named after it).
  void require_unique_names() const;

 private:
  std::string path_;
  std::vector<std::string> header_;
};

/// Applies the bad-row policy: an InputError ("FILE line N, column 'C': WHAT; fix the row or
/// pass --on-bad-row skip"), or a count and the first few examples in `counts`.
class BadRowPolicy {
 public:
  BadRowPolicy(BadRows policy, FileCounts* counts) : policy_(policy), counts_(counts) {}
  /// `column` may be empty for a row-level problem. Returns normally only under skip.
  void bad(const CsvRow& row, const std::string& column, const std::string& what);
  /// Checks the field count; false (after counting) when the row was skipped.
  bool field_count_ok(const CsvRow& row, std::size_t expected);

 private:
  BadRows policy_;
  FileCounts* counts_;
};

/// Adds an example line to counts.examples while there are fewer than kMaxExamples.
void add_example(FileCounts& counts, const std::string& text);
constexpr std::size_t kMaxExamples = 5;

/// A zeroed array of 64-bit words for the hash tables: large ones are mapped directly (the
/// kernel's pages are zero already, so they are not written twice) on transparent huge pages
/// (fewer page faults and TLB misses: the tables are read at random).
class WordTable {
 public:
  WordTable() = default;
  explicit WordTable(std::size_t n);
  ~WordTable();
  WordTable(WordTable&& other) noexcept { swap(other); }
  WordTable& operator=(WordTable&& other) noexcept {
    WordTable(std::move(other)).swap(*this);
    return *this;
  }
  WordTable(const WordTable&) = delete;
  WordTable& operator=(const WordTable&) = delete;
  std::uint64_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::uint64_t& operator[](std::size_t i) const { return data_[i]; }
  /// All zero again.
  void clear();

 private:
  void swap(WordTable& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(mapped_, other.mapped_);
  }
  std::uint64_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;  // bytes mapped, or 0 for calloc's
};

/// Open-addressing set of 64-bit row hashes (8 bytes a slot, load <= 0.7): the exact-duplicate
/// rule needs one entry per distinct row, the only per-row memory of a streamed pass.
class HashSet64 {
 public:
  /// Sizes the table for about `n` entries up front (no rehash on the way there).
  void reserve(std::size_t n);
  /// Starts loading `h`'s slot into cache: call it, do other work, then insert(h).
  void prefetch(std::uint64_t h) const {
    if (capacity_ > 0) __builtin_prefetch(slots_.data() + (slot_key(h) & (capacity_ - 1)));
  }
  /// True when `h` was not there yet.
  bool insert(std::uint64_t h);
  /// True when `h` is there.
  bool contains(std::uint64_t h) const;
  /// Empty again, keeping the capacity.
  void clear();
  std::size_t size() const { return size_; }

 private:
  static std::uint64_t slot_key(std::uint64_t h) { return h == 0 ? 1 : h; }  // 0 marks empty
  void rehash(std::size_t capacity);
  WordTable slots_;
  std::size_t capacity_ = 0;  // a power of two
  std::size_t size_ = 0;
};

}  // namespace segforge::prep
