#include "dates.hpp"

#include <date/date.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <sstream>
#include <vector>

#include "csv_reader.hpp"
#include "segforge/error.hpp"
#include "segforge/prep/common.hpp"

namespace segforge::prep {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// Up to `max` digits at `pos` as a number; the count read in `len`.
int digits(std::string_view s, std::size_t& pos, int max, int& len) {
  int value = 0;
  len = 0;
  while (pos < s.size() && len < max && is_digit(s[pos])) {
    value = value * 10 + (s[pos] - '0');
    ++pos;
    ++len;
  }
  return value;
}

/// A time of day after the date: [ T]H[H]:MM[:SS[.fff]] [AM|PM] [Z|+HH[:]MM], or nothing.
bool valid_time_suffix(std::string_view s) {
  if (s.empty()) return true;
  std::size_t pos = 0;
  if (s[0] == 'T') {
    ++pos;
  } else {
    while (pos < s.size() && s[pos] == ' ') ++pos;
    if (pos == 0) return false;
    if (pos == s.size()) return true;  // trailing spaces
  }
  int len = 0;
  const int hour = digits(s, pos, 2, len);
  if (len == 0 || hour > 24 || pos >= s.size() || s[pos] != ':') return false;
  ++pos;
  const int minute = digits(s, pos, 2, len);
  if (len != 2 || minute > 59) return false;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    const int second = digits(s, pos, 2, len);
    if (len != 2 || second > 60) return false;
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      ++pos;
      if (pos >= s.size() || !is_digit(s[pos])) return false;
      while (pos < s.size() && is_digit(s[pos])) ++pos;
    }
  }
  while (pos < s.size() && s[pos] == ' ') ++pos;
  if (s.size() - pos >= 2) {
    const char a = static_cast<char>(std::toupper(static_cast<unsigned char>(s[pos])));
    const char m = static_cast<char>(std::toupper(static_cast<unsigned char>(s[pos + 1])));
    if ((a == 'A' || a == 'P') && m == 'M') {
      if (hour > 12) return false;
      pos += 2;
    }
  }
  while (pos < s.size() && s[pos] == ' ') ++pos;
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    ++pos;
    digits(s, pos, 2, len);
    if (len != 2) return false;
    if (pos < s.size() && s[pos] == ':') ++pos;
    if (pos < s.size()) {
      digits(s, pos, 2, len);
      if (len != 2) return false;
    }
  }
  return pos == s.size();
}

/// A numeric date a<sep>b<sep>c with the same separator twice, and a valid time suffix.
struct Parts {
  int a = 0, b = 0, c = 0;
  int a_len = 0, c_len = 0;
  char separator = 0;
};

std::optional<Parts> split_date(std::string_view s) {
  Parts p;
  std::size_t pos = 0;
  int len = 0;
  p.a = digits(s, pos, 4, p.a_len);
  if (p.a_len == 0 || pos >= s.size()) return std::nullopt;
  p.separator = s[pos];
  if (p.separator != '-' && p.separator != '/' && p.separator != '.') return std::nullopt;
  ++pos;
  p.b = digits(s, pos, 2, len);
  if (len == 0 || pos >= s.size() || s[pos] != p.separator) return std::nullopt;
  ++pos;
  p.c = digits(s, pos, 4, p.c_len);
  if (p.c_len == 0 || (pos < s.size() && is_digit(s[pos]))) return std::nullopt;
  if (!valid_time_suffix(s.substr(pos))) return std::nullopt;
  return p;
}

bool year_first_shape(const Parts& p) { return p.a_len == 4 && p.c_len <= 2; }
bool year_last_shape(const Parts& p) { return p.a_len <= 2 && p.c_len == 4; }

std::optional<Day> make_day(int y, int m, int d) {
  const date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(m)},
                                 date::day{static_cast<unsigned>(d)}};
  if (m < 1 || d < 1 || !ymd.ok()) return std::nullopt;
  return static_cast<Day>(date::sys_days{ymd}.time_since_epoch().count());
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void keep_max(std::optional<Day>& m, std::optional<Day> d) {
  if (d && *d >= kDay1900 && (!m || *d > *m)) m = d;
}

std::string order_pattern(DateOrder order, char sep) {
  const std::string s(1, sep);
  return order == DateOrder::day_first ? "%d" + s + "%m" + s + "%Y" : "%m" + s + "%d" + s + "%Y";
}

}  // namespace

DateFormat DateFormat::year_first() { return DateFormat{}; }

DateFormat DateFormat::year_last(DateOrder order, char separator) {
  DateFormat f;
  f.kind_ = Kind::year_last;
  f.order_ = order;
  f.separator_ = separator;
  return f;
}

DateFormat DateFormat::from_pattern(const std::string& pattern) {
  if (pattern.empty()) throw InputError("--date-format: empty; give a pattern such as %d/%m/%Y");
  struct Fast {
    const char* prefix;
    bool year_first;
    DateOrder order;
    char separator;
  };
  static constexpr std::array<Fast, 10> kFast = {{
      {"%Y-%m-%d", true, DateOrder::month_first, '-'},
      {"%Y/%m/%d", true, DateOrder::month_first, '/'},
      {"%Y.%m.%d", true, DateOrder::month_first, '.'},
      {"%F", true, DateOrder::month_first, '-'},
      {"%m/%d/%Y", false, DateOrder::month_first, '/'},
      {"%d/%m/%Y", false, DateOrder::day_first, '/'},
      {"%m-%d-%Y", false, DateOrder::month_first, '-'},
      {"%d-%m-%Y", false, DateOrder::day_first, '-'},
      {"%d.%m.%Y", false, DateOrder::day_first, '.'},
      {"%m.%d.%Y", false, DateOrder::month_first, '.'},
  }};
  for (const Fast& f : kFast) {
    const std::string_view p(f.prefix);
    if (!pattern.starts_with(p)) continue;
    // The rest may only describe a time of day, which the fast path reads and ignores.
    const std::string_view rest = std::string_view(pattern).substr(p.size());
    const bool time_only =
        rest.empty() || ((rest[0] == ' ' || rest[0] == 'T') &&
                         std::all_of(rest.begin(), rest.end(), [](char c) {
                           return std::string_view(" T:.%HMSIpzZ").find(c) != std::string_view::npos;
                         }));
    if (!time_only) continue;
    DateFormat out = f.year_first ? year_first() : year_last(f.order, f.separator);
    out.separator_ = f.separator;
    out.pattern_ = pattern;
    return out;
  }
  DateFormat out;
  out.kind_ = Kind::pattern;
  out.pattern_ = pattern;
  return out;
}

std::optional<Day> DateFormat::parse(std::string_view text) const {
  text = trim_spaces(text);
  if (text.empty()) return std::nullopt;
  if (kind_ == Kind::pattern) {
    std::istringstream in{std::string(text)};
    date::local_seconds t{};
    in >> date::parse(pattern_, t);
    if (in.fail()) return std::nullopt;
    return static_cast<Day>(date::floor<date::days>(t).time_since_epoch().count());
  }
  const std::optional<Parts> p = split_date(text);
  if (!p) return std::nullopt;
  if (kind_ == Kind::year_first) {
    if (!year_first_shape(*p)) return std::nullopt;
    return make_day(p->a, p->b, p->c);
  }
  if (!year_last_shape(*p)) return std::nullopt;
  return order_ == DateOrder::day_first ? make_day(p->c, p->b, p->a) : make_day(p->c, p->a, p->b);
}

std::string DateFormat::describe() const {
  if (!pattern_.empty()) return pattern_;
  if (kind_ == Kind::year_first) return std::string("%Y") + separator_ + "%m" + separator_ + "%d";
  return order_pattern(order_, separator_);
}

void DateDetector::observe(std::string_view text, std::int64_t line) {
  text = trim_spaces(text);
  if (text.empty()) return;
  if (first_line_ == 0) {
    first_line_ = line;
    first_text_ = text;
  }
  const std::optional<Parts> p = split_date(text);
  const bool yf = p && year_first_shape(*p), yl = p && year_last_shape(*p);
  if (!yf && !yl) {
    if (unread_line_ == 0) {
      unread_line_ = line;
      unread_text_ = text;
    }
    return;
  }
  if (family_ == Family::none) {
    family_ = yf ? Family::year_first : Family::year_last;
    separator_ = p->separator;
  }
  if (yf) {
    const std::optional<Day> d = make_day(p->a, p->b, p->c);
    keep_max(max_year_first_, d);
    if (d && *d >= kDay1900) year_first_days_.add(*d);
    return;
  }
  if (p->a > 12 && p->b <= 12 && day_first_line_ == 0) {
    day_first_line_ = line;
    day_first_text_ = text;
  }
  if (p->b > 12 && p->a <= 12 && month_first_line_ == 0) {
    month_first_line_ = line;
    month_first_text_ = text;
  }
  const std::optional<Day> mf = make_day(p->c, p->a, p->b), df = make_day(p->c, p->b, p->a);
  keep_max(max_month_first_, mf);
  keep_max(max_day_first_, df);
  if (mf && *mf >= kDay1900) month_first_days_.add(*mf);
  if (df && *df >= kDay1900) day_first_days_.add(*df);
}

bool DateDetector::decided() const {
  return family_ == Family::year_first ||
         (family_ == Family::year_last && (day_first_line_ > 0 || month_first_line_ > 0));
}

DateFormat DateDetector::format(const std::string& where) const {
  const std::string hint = "; pass --date-format, e.g. %d/%m/%Y or %m/%d/%Y";
  switch (family_) {
    case Family::none:
      if (first_line_ == 0) return DateFormat::year_first();  // no values: nothing to read
      throw InputError(where + ": no value reads as a date (line " + std::to_string(first_line_) +
                       ": " + quote_text(first_text_) + "); give the format with --date-format, e.g. %d %b %Y");
    case Family::year_first:
      return DateFormat::year_first();
    case Family::year_last:
      break;
  }
  if (day_first_line_ > 0 && month_first_line_ > 0)
    throw InputError(where + ": mixes day-first (line " + std::to_string(day_first_line_) + ": " +
                     quote_text(day_first_text_) + ") and month-first (line " + std::to_string(month_first_line_) +
                     ": " + quote_text(month_first_text_) + ") dates; make them consistent or pass --date-format");
  if (day_first_line_ > 0) return DateFormat::year_last(DateOrder::day_first, separator_);
  if (month_first_line_ > 0) return DateFormat::year_last(DateOrder::month_first, separator_);
  if (separator_ == '.') return DateFormat::year_last(DateOrder::day_first, separator_);
  throw InputError(where + ": no date has a day above 12, so day-first and month-first cannot be "
                   "told apart (line " + std::to_string(first_line_) + ": " + quote_text(first_text_) + ")" + hint);
}

std::optional<Day> DateDetector::max_day(const std::string& where) const {
  if (family_ == Family::none) return std::nullopt;
  if (family_ == Family::year_first) return max_year_first_;
  return format(where).day_first() ? max_day_first_ : max_month_first_;
}

const DayCounts& DateDetector::days(const std::string& where) const {
  if (family_ == Family::year_last) return format(where).day_first() ? day_first_days_ : month_first_days_;
  return year_first_days_;
}

void DayCounts::add(Day day) { ++counts_[day]; }

void DayCounts::merge(const DayCounts& other) {
  for (const auto& [day, n] : other.counts_) counts_[day] += n;
}

void DateDetector::merge_later(const DateDetector& later) {
  if (family_ == Family::none) {
    family_ = later.family_;
    separator_ = later.separator_;
  }
  const auto first = [](std::int64_t& line, std::string& text, std::int64_t later_line, const std::string& later_text) {
    if (line == 0 && later_line > 0) {
      line = later_line;
      text = later_text;
    }
  };
  first(first_line_, first_text_, later.first_line_, later.first_text_);
  first(unread_line_, unread_text_, later.unread_line_, later.unread_text_);
  first(day_first_line_, day_first_text_, later.day_first_line_, later.day_first_text_);
  first(month_first_line_, month_first_text_, later.month_first_line_, later.month_first_text_);
  keep_max(max_year_first_, later.max_year_first_);
  keep_max(max_month_first_, later.max_month_first_);
  keep_max(max_day_first_, later.max_day_first_);
  year_first_days_.merge(later.year_first_days_);
  month_first_days_.merge(later.month_first_days_);
  day_first_days_.merge(later.day_first_days_);
}

DayCounts::Split DayCounts::split() const {
  Split out;
  if (counts_.empty()) return out;
  std::vector<std::pair<Day, std::int64_t>> days(counts_.begin(), counts_.end());
  std::sort(days.begin(), days.end());
  std::int64_t total = 0;
  for (const auto& d : days) total += d.second;
  const std::int64_t allowed = std::max<std::int64_t>(1, total / 100);
  std::size_t cut = days.size() - 1;  // index of the latest ordinary day
  std::int64_t after = 0;
  for (std::size_t i = days.size() - 1; i > 0; --i) {
    after += days[i].second;
    if (after > allowed) break;
    if (days[i].first - days[i - 1].first > 365) {
      cut = i - 1;
      out.typo_rows = after;
    }
  }
  out.latest_ordinary = days[cut].first;
  if (cut + 1 < days.size()) out.first_typo = days[cut + 1].first;
  return out;
}

std::string iso_date(Day day) {
  return date::format("%F", date::sys_days{date::days{day}});
}

std::optional<Day> parse_iso_date(std::string_view text) {
  text = trim_spaces(text);
  const std::optional<Parts> p = split_date(text);
  if (!p || !year_first_shape(*p) || p->separator != '-' || text.size() != 10) return std::nullopt;
  return make_day(p->a, p->b, p->c);
}

std::string format_date(std::chrono::sys_days day) {
  return iso_date(static_cast<Day>(day.time_since_epoch().count()));
}

std::chrono::sys_days parse_date_option(const std::string& text, const std::string& option) {
  const std::optional<Day> d = parse_iso_date(text);
  if (!d) throw InputError(option + " " + text + ": not a date; write it as YYYY-MM-DD, e.g. 2011-12-10");
  return std::chrono::sys_days{std::chrono::days{*d}};
}

}  // namespace segforge::prep
