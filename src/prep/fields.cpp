#include "fields.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/mman.h>

#include "segforge/error.hpp"

namespace segforge::prep {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<double> parse_number(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  // from_chars also reads "nan", "inf" and hex-less forms only; reject the non-finite ones.
  double value = 0.0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
    return std::nullopt;
  return value;
}

std::string_view normalise_id(std::string_view text) {
  text = trim(text);
  const std::size_t dot = text.find('.');
  if (dot != std::string_view::npos && dot > 0 && dot + 1 < text.size()) {
    const std::string_view whole = text.substr(0, dot), frac = text.substr(dot + 1);
    const bool digits = std::all_of(whole.begin() + (whole[0] == '-' ? 1 : 0), whole.end(),
                                    [](char c) { return c >= '0' && c <= '9'; });
    if (digits && whole != "-" && std::all_of(frac.begin(), frac.end(), [](char c) { return c == '0'; }))
      return whole;
  }
  return text;
}

std::optional<std::int64_t> canonical_integer(std::string_view text) {
  if (text.empty()) return std::nullopt;
  const std::string_view digits = text[0] == '-' ? text.substr(1) : text;
  if (digits.empty() || (digits[0] == '0' && (digits.size() > 1 || text[0] == '-'))) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string snake_name(std::string_view text) {
  std::string out;
  bool gap = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      if (gap && !out.empty()) out += '_';
      out += static_cast<char>(std::tolower(u));
      gap = false;
    } else {
      gap = true;
    }
  }
  return out;
}

namespace {

std::string loose(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '_' && c != '-') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool same_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

Columns::Columns(std::string path, std::vector<std::string> header)
    : path_(std::move(path)), header_(std::move(header)) {}

std::string Columns::listing() const {
  std::string out;
  for (const auto& h : header_) out += (out.empty() ? "" : ", ") + quote_text(h);
  return out;
}

int Columns::find(const std::string& flag_value, const std::vector<std::string>& recognised,
                  const std::string& flag) const {
  if (flag_value == "none") return -1;
  if (!flag_value.empty()) {
    for (std::size_t i = 0; i < header_.size(); ++i)
      if (header_[i] == flag_value) return static_cast<int>(i);
    for (std::size_t i = 0; i < header_.size(); ++i)
      if (same_ignoring_case(header_[i], flag_value)) return static_cast<int>(i);
    throw InputError(path_ + ": " + flag + " " + flag_value + ": no such column; the header has " +
                     listing());
  }
  for (const auto& r : recognised) {
    const std::string want = loose(r);
    for (std::size_t i = 0; i < header_.size(); ++i)
      if (loose(header_[i]) == want) return static_cast<int>(i);
  }
  return -1;
}

int Columns::require(const std::string& flag_value, const std::vector<std::string>& recognised,
                     const std::string& flag, const std::string& what) const {
  const int i = find(flag_value, recognised, flag);
  if (i < 0)
    throw InputError(path_ + ": no " + what + " column recognised in the header (" + listing() +
                     "); name it with " + flag);
  return i;
}

void add_example(FileCounts& counts, const std::string& text) {
  if (counts.examples.size() < kMaxExamples) counts.examples.push_back(text);
}

void BadRowPolicy::bad(const CsvRow& row, const std::string& column, const std::string& what) {
  std::string where = counts_->path + " line " + std::to_string(row.line);
  if (!column.empty()) where += ", column " + quote_text(column);
  if (policy_ == BadRows::error) throw InputError(where + ": " + what + "; fix the row or pass --on-bad-row skip");
  ++counts_->bad_rows_skipped;
  add_example(*counts_, where + ": " + what);
}

bool BadRowPolicy::field_count_ok(const CsvRow& row, std::size_t expected) {
  if (row.fields.size() == expected) return true;
  std::string what = std::to_string(row.fields.size()) + " fields, but the header has " +
                     std::to_string(expected);
  if (row.end_line > row.line)
    what += " (a quoted field runs on to line " + std::to_string(row.end_line) +
            "; check for an unbalanced \")";
  bad(row, "", what);
  return false;
}

// The table is the one large random-access structure of a pass (8 bytes a row): on Linux it
// asks for transparent huge pages, which cuts page faults and TLB misses several-fold.
void HashSet64::Free::operator()(std::uint64_t* p) const { std::free(p); }

void HashSet64::reserve(std::size_t n) {
  std::size_t capacity = 1024;
  while (7 * capacity < 10 * n) capacity *= 2;
  if (capacity > capacity_) rehash(capacity);
}

bool HashSet64::insert(std::uint64_t h) {
  h = slot_key(h);
  if (10 * (size_ + 1) > 7 * capacity_) rehash(capacity_ == 0 ? 1024 : 2 * capacity_);
  const std::size_t mask = capacity_ - 1;
  std::uint64_t* slots = slots_.get();
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots[i] == h) return false;
    if (slots[i] == 0) {
      slots[i] = h;
      ++size_;
      return true;
    }
  }
}

void HashSet64::rehash(std::size_t capacity) {
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
  const std::size_t bytes = capacity * sizeof(std::uint64_t);
  const std::size_t align = bytes >= kHugePage ? kHugePage : alignof(std::max_align_t);
  void* memory = std::aligned_alloc(align, (bytes + align - 1) / align * align);
  if (memory == nullptr) throw std::bad_alloc();
  std::unique_ptr<std::uint64_t[], Free> fresh(static_cast<std::uint64_t*>(memory));
#ifdef MADV_HUGEPAGE
  if (align == kHugePage) madvise(memory, bytes, MADV_HUGEPAGE);  // advice only: failure is fine
#endif
  std::memset(memory, 0, bytes);
  const std::size_t mask = capacity - 1;
  for (std::size_t k = 0; k < capacity_; ++k) {
    const std::uint64_t h = slots_[k];
    if (h == 0) continue;
    std::size_t i = h & mask;
    while (fresh[i] != 0) i = (i + 1) & mask;
    fresh[i] = h;
  }
  slots_ = std::move(fresh);
  capacity_ = capacity;
}

}  // namespace segforge::prep
