#pragma once
// Dates in CRM exports: ISO (2011-12-09, 2011/12/09) and day/month/year or month/day/year
// with '/', '-' or '.', each optionally followed by a time of day ("10/30/2011 16:17",
// "2011-12-09T12:31:00Z"), which is ignored: features count whole calendar days. The common
// forms are read by a fast path (tens of millions of rows); any other strptime-style
// --date-format goes through date::parse.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace segforge::prep {

using Day = std::int32_t;  ///< days since 1970-01-01
constexpr Day kDay1900 = -25567;  ///< 1900-01-01: earlier dates are impossible

enum class DateOrder { month_first, day_first };

class DateFormat {
 public:
  /// Year first (ISO).
  static DateFormat year_first();
  /// Year last, in the given order; `separator` is only for describe().
  static DateFormat year_last(DateOrder order, char separator = '/');
  /// From --date-format: the common patterns ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y %H:%M", ...)
  /// use the fast path; others date::parse. Throws InputError for an empty pattern.
  static DateFormat from_pattern(const std::string& pattern);

  std::optional<Day> parse(std::string_view text) const;
  /// Year-last with the day first (the reading DateDetector::max_day needs).
  bool day_first() const { return kind_ == Kind::year_last && order_ == DateOrder::day_first; }
  /// strptime-style description, e.g. "%m/%d/%Y".
  std::string describe() const;

 private:
  enum class Kind { year_first, year_last, pattern };
  Kind kind_ = Kind::year_first;
  DateOrder order_ = DateOrder::month_first;
  char separator_ = '-';
  std::string pattern_;
};

/// How many rows carry each day (on or after 1900), to tell typos from ordinary dates when
/// as-of is taken from the data: a date like 9999-12-31 must not move as-of eight thousand
/// years on.
///
/// Rule: the days, in order, are cut at the earliest gap of more than 365 days without any
/// row after which at most 1% of the rows (and at least one row) lie; the days after that gap
/// are typos. The latest ordinary day is the last day before it (the latest day when there is
/// no such gap).
class DayCounts {
 public:
  void add(Day day);
  /// Adds the counts of `other` (a later part of the same column).
  void merge(const DayCounts& other);
  struct Split {
    std::optional<Day> latest_ordinary;  ///< none when no day was added
    std::int64_t typo_rows = 0;          ///< rows dated after latest_ordinary
    std::optional<Day> first_typo;       ///< the earliest typo day
  };
  Split split() const;

 private:
  std::unordered_map<Day, std::int64_t> counts_;
};

/// Tells a column's date format from its values: the first value of a known shape decides
/// year-first or year-last; for year-last, a first number above 12 means day-first, a second
/// number above 12 month-first. Tracks the latest date under each reading, so one pass finds
/// both the format and the default as-of.
class DateDetector {
 public:
  void observe(std::string_view text, std::int64_t line);
  /// The format is known (more values cannot change it).
  bool decided() const;
  /// The detected format. `where` ("gifts.csv, column 'date'") starts the InputError thrown
  /// when no value reads as a date, when both orders occur, or when no value tells them apart
  /// (dotted dates then default to day-first).
  DateFormat format(const std::string& where) const;
  /// The latest date on or after 1900 under the detected reading (throws as format() does).
  std::optional<Day> max_day(const std::string& where) const;
  /// The days on or after 1900 under the detected reading (throws as format() does).
  const DayCounts& days(const std::string& where) const;
  /// Folds in a detector that observed the rows after this one's: the same state as one
  /// detector observing all of them in order (first lines and texts are the earliest, maxima
  /// and day counts combined).
  void merge_later(const DateDetector& later);

 private:
  enum class Family { none, year_first, year_last };
  Family family_ = Family::none;
  char separator_ = '/';
  std::int64_t day_first_line_ = 0, month_first_line_ = 0, first_line_ = 0, unread_line_ = 0;
  std::string day_first_text_, month_first_text_, first_text_, unread_text_;
  std::optional<Day> max_year_first_, max_month_first_, max_day_first_;
  DayCounts year_first_days_, month_first_days_, day_first_days_;
};

/// "2011-12-10".
std::string iso_date(Day day);
/// Parses an ISO date (--as-of); nullopt when it is not one.
std::optional<Day> parse_iso_date(std::string_view text);

}  // namespace segforge::prep
