#include "fields.hpp"
#include "segforge/utf8.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>

#include <sys/mman.h>

#include "segforge/error.hpp"

namespace segforge::prep {

namespace {

/// std::isspace in the "C" locale (the tools never set another), without a call per byte.
bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

}  // namespace

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

namespace {


char hex_digit(unsigned v) { return "0123456789ABCDEF"[v & 15]; }

/// "1.234,5" -> "1234.5" for from_chars; nullopt when the dots are not thousands separators
/// (between groups of exactly three digits) or there is more than one comma.
std::optional<std::string> comma_to_point(std::string_view text) {
  std::size_t mantissa_end = text.find_first_of("eE");
  if (mantissa_end == std::string_view::npos) mantissa_end = text.size();
  const std::string_view mantissa = text.substr(0, mantissa_end);
  const std::size_t comma = mantissa.find(',');
  if (comma != std::string_view::npos && mantissa.find(',', comma + 1) != std::string_view::npos)
    return std::nullopt;
  std::string_view whole = mantissa.substr(0, comma);
  std::string out;
  if (!whole.empty() && whole[0] == '-') {
    out += '-';
    whole.remove_prefix(1);
  }
  if (whole.find('.') != std::string_view::npos) {
    std::size_t begin = 0;
    for (std::size_t group = 0;; ++group) {
      const std::size_t dot = whole.find('.', begin);
      const std::string_view g = whole.substr(begin, dot == std::string_view::npos ? whole.npos : dot - begin);
      const bool ok = group == 0 ? !g.empty() && g.size() <= 3 : g.size() == 3;
      if (!ok) return std::nullopt;
      out.append(g);
      if (dot == std::string_view::npos) break;
      begin = dot + 1;
    }
  } else {
    out.append(whole);
  }
  if (comma != std::string_view::npos) {
    out += '.';
    out.append(mantissa.substr(comma + 1));
  }
  out.append(text.substr(mantissa_end));
  return out;
}

/// "1.234", "12.345.678": what a thousands separator '.' looks like (no comma, first group
/// 1-3 digits not starting with 0, then groups of exactly three).
bool thousands_grouped(std::string_view text) {
  if (!text.empty() && text[0] == '-') text.remove_prefix(1);
  const std::size_t first = text.find('.');
  if (first == std::string_view::npos || first == 0 || first > 3 || text[0] == '0') return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dot_place = i >= first && (i - first) % 4 == 0;
    if (dot_place ? text[i] != '.' : !(text[i] >= '0' && text[i] <= '9')) return false;
  }
  return (text.size() - first) % 4 == 0;
}

}  // namespace

std::string decimal_hint(std::string_view text, char decimal) {
  text = trim(text);
  if (decimal == '.' && text.find(',') != std::string_view::npos)
    return " (with a decimal comma, pass --decimal ,)";
  if (decimal == ',' && text.find('.') != std::string_view::npos)
    return " (the decimal mark is ','; pass --decimal . for a decimal point)";
  if (decimal == kEitherDecimal && thousands_grouped(text))
    return " (in a ';'-separated file '.' may be a decimal point or a thousands separator; pass "
           "--decimal . or --decimal ,)";
  return "";
}

std::optional<double> parse_number(std::string_view text, char decimal) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  std::optional<std::string> converted;
  if (decimal == kEitherDecimal) {
    if (text.find(',') != std::string_view::npos)
      decimal = ',';
    else if (thousands_grouped(text))
      return std::nullopt;
  }
  if (decimal == ',') {
    converted = comma_to_point(text);
    if (!converted) return std::nullopt;
    text = *converted;
  }
  // from_chars also reads "nan", "inf" and hex-less forms only; reject the non-finite ones
  // (and values beyond the double range, which from_chars reports as out of range).
  double value = 0.0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
    return std::nullopt;
  return value;
}

std::string_view normalise_id(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string id_problem(std::string_view id) {
  for (std::size_t i = 0; i < id.size();) {
    const auto c = static_cast<unsigned char>(id[i]);
    if (c == 0) return "contains a NUL byte (at byte " + std::to_string(i + 1) + ")";
    if (c < 0x20 || c == 0x7F)
      return std::string("contains a control character (") + printable(id.substr(i, 1)) + " at byte " +
             std::to_string(i + 1) + ")";
    const std::size_t n = utf8_length(id, i);
    if (n == 0) {
      std::string hex = "0x";
      hex += hex_digit(c >> 4);
      hex += hex_digit(c);
      return "is not UTF-8 text (byte " + hex + " at " + std::to_string(i + 1) +
             "; re-export the file as UTF-8)";
    }
    i += n;
  }
  return "";
}

std::string_view id_field(const CsvRow& row, int column, const Columns& columns) {
  const std::string_view id = normalise_id(row.fields[static_cast<std::size_t>(column)]);
  if (const std::string problem = id_problem(id); !problem.empty())
    throw InputError(columns.path() + " line " + std::to_string(row.line) + ", column " +
                     quote_text(columns.name(static_cast<std::size_t>(column))) + ": the id " +
                     quote_text(id) + " " + problem +
                     "; ids are kept exactly as spelled, so fix the id in the file");
  return id;
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t n = c < 0x20 || c == 0x7F ? 0 : utf8_length(text, i);
    if (n > 0) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case 0: out += "\\0"; break;
      default:
        out += "\\x";
        out += hex_digit(c >> 4);
        out += hex_digit(c);
    }
    ++i;
  }
  return out;
}

void require_rows_left(const FileCounts& counts) {
  if (counts.rows_read == 0 || counts.bad_rows_skipped < counts.rows_read) return;
  std::string reason = counts.examples.empty() ? std::string("no example kept") : counts.examples.front();
  // The example starts with the file's name, which the message already gives.
  if (reason.starts_with(counts.path + " ")) reason = reason.substr(counts.path.size() + 1);
  throw InputError(counts.path + ": all " + std::to_string(counts.rows_read) +
                   " rows were skipped as bad: " + reason +
                   "; check --delimiter, --decimal and the column options, or fix the rows");
}

std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
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
  int found = -1;
  if (!flag_value.empty()) {
    for (std::size_t i = 0; i < header_.size() && found < 0; ++i)
      if (header_[i] == flag_value) found = static_cast<int>(i);
    for (std::size_t i = 0; i < header_.size() && found < 0; ++i)
      if (same_ignoring_case(header_[i], flag_value)) found = static_cast<int>(i);
    if (found < 0)
      throw InputError(path_ + ": " + flag + " " + printable(flag_value) +
                       ": no such column; the header has " + listing());
  }
  for (std::size_t r = 0; r < recognised.size() && found < 0; ++r) {
    const std::string want = loose(recognised[r]);
    for (std::size_t i = 0; i < header_.size() && found < 0; ++i)
      if (loose(header_[i]) == want) found = static_cast<int>(i);
  }
  if (found >= 0)
    for (std::size_t i = static_cast<std::size_t>(found) + 1; i < header_.size(); ++i)
      if (header_[i] == header_[static_cast<std::size_t>(found)])
        throw InputError(path_ + ": the header has two columns named " + quote_text(header_[i]) +
                         " (columns " + std::to_string(found + 1) + " and " + std::to_string(i + 1) +
                         "), so which one is meant cannot be told; rename one");
  return found;
}

void Columns::require_unique_names() const {
  std::unordered_map<std::string_view, std::size_t> seen;
  for (std::size_t i = 0; i < header_.size(); ++i) {
    auto [it, fresh] = seen.emplace(header_[i], i);
    if (!fresh)
      throw InputError(path_ + ": the header has two columns named " + quote_text(header_[i]) +
                       " (columns " + std::to_string(it->second + 1) + " and " + std::to_string(i + 1) +
                       "); feature names must be unique, so rename one");
  }
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

// The hash tables are the large random-access structures of a pass (8 bytes a row for the
// duplicate rule): huge pages cut page faults and TLB misses several-fold, and mapped pages
// come zeroed (profiling: zeroing a 256 MB table twice was half a second).
namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;
}  // namespace

WordTable::WordTable(std::size_t n) : size_(n) {
  if (n == 0) return;
  const std::size_t bytes = n * sizeof(std::uint64_t);
  if (bytes >= kHugePage) {
    mapped_ = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* memory = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(memory, mapped_, MADV_HUGEPAGE);  // advice only: failure is fine
#endif
    data_ = static_cast<std::uint64_t*>(memory);
  } else {
    data_ = static_cast<std::uint64_t*>(std::calloc(n, sizeof(std::uint64_t)));
    if (data_ == nullptr) throw std::bad_alloc();
  }
}

WordTable::~WordTable() {
  if (data_ == nullptr) return;
  if (mapped_ > 0)
    ::munmap(data_, mapped_);
  else
    std::free(data_);
}

void WordTable::clear() {
  if (size_ > 0) std::memset(data_, 0, size_ * sizeof(std::uint64_t));
}

void HashSet64::reserve(std::size_t n) {
  std::size_t capacity = 1024;
  while (7 * capacity < 10 * n) capacity *= 2;
  if (capacity > capacity_) rehash(capacity);
}

bool HashSet64::insert(std::uint64_t h) {
  h = slot_key(h);
  if (10 * (size_ + 1) > 7 * capacity_) rehash(capacity_ == 0 ? 1024 : 2 * capacity_);
  const std::size_t mask = capacity_ - 1;
  std::uint64_t* slots = slots_.data();
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots[i] == h) return false;
    if (slots[i] == 0) {
      slots[i] = h;
      ++size_;
      return true;
    }
  }
}

void HashSet64::clear() {
  slots_.clear();
  size_ = 0;
}

bool HashSet64::contains(std::uint64_t h) const {
  if (capacity_ == 0) return false;
  h = slot_key(h);
  const std::size_t mask = capacity_ - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots_[i] == h) return true;
    if (slots_[i] == 0) return false;
  }
}

void HashSet64::rehash(std::size_t capacity) {
  WordTable fresh(capacity);
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
