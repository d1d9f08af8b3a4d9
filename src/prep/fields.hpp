#pragma once
// Pieces shared by the prep readers: numbers and ids from CSV text, column lookup by flag or
// by recognised name, the bad-row policy, and the exact-duplicate set.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "csv_reader.hpp"
#include "segforge/prep/common.hpp"

namespace segforge::prep {

std::string_view trim(std::string_view s);

/// A finite decimal number ("12", "-3.5", "1e3", " +2 "); nullopt for anything else,
/// including "", "nan", "inf", "1,5" and "$3".
std::optional<double> parse_number(std::string_view text);

/// The id as compared across files: trimmed, and "123.0" (an integer id exported as a float)
/// read as "123". Empty when missing.
std::string_view normalise_id(std::string_view text);

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
  /// that lists the header and names `flag`.
  int find(const std::string& flag_value, const std::vector<std::string>& recognised,
           const std::string& flag) const;
  /// As find, but absence is an InputError saying what the column is for (`what`).
  int require(const std::string& flag_value, const std::vector<std::string>& recognised,
              const std::string& flag, const std::string& what) const;
  std::string listing() const;  ///< "'a', 'b', 'c'"

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

/// Open-addressing set of 64-bit row hashes (8 bytes a slot, load <= 0.7): the exact-duplicate
/// rule needs one entry per distinct row, the only per-row memory of a streamed pass.
class HashSet64 {
 public:
  /// Sizes the table for about `n` entries up front (no rehash on the way there).
  void reserve(std::size_t n);
  /// Starts loading `h`'s slot into cache: call it, do other work, then insert(h).
  void prefetch(std::uint64_t h) const {
    if (capacity_ > 0) __builtin_prefetch(slots_.get() + (slot_key(h) & (capacity_ - 1)));
  }
  /// True when `h` was not there yet.
  bool insert(std::uint64_t h);
  std::size_t size() const { return size_; }

 private:
  static std::uint64_t slot_key(std::uint64_t h) { return h == 0 ? 1 : h; }  // 0 marks empty
  void rehash(std::size_t capacity);
  struct Free {
    void operator()(std::uint64_t* p) const;
  };
  std::unique_ptr<std::uint64_t[], Free> slots_;
  std::size_t capacity_ = 0;  // a power of two
  std::size_t size_ = 0;
};

}  // namespace segforge::prep
