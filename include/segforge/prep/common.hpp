#pragma once
// Types shared by segforge-prep's commands: policies for bad rows and negative amounts, the
// feature table in original units, and the per-file cleaning counts that the tool prints and
// features.h5 stores as root attributes.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "segforge/io.hpp"
#include "segforge/matrix.hpp"

namespace segforge::prep {

/// What to do with a row that cannot be read (wrong number of fields, a value that is not a
/// number): stop with an InputError naming file, line and column, or skip it and count it.
enum class BadRows { error, skip };

/// Rows with a negative amount (refunds, cancellations): net them against the donor's total,
/// or drop them.
enum class Negatives { net, drop };

/// What a feature measures; it decides the default transform and whether winsorizing applies.
enum class FeatureKind {
  money,      ///< currency amounts; log1p (signed_log1p where netting can make them negative)
  count,      ///< non-negative counts; log1p
  days,       ///< whole days; no log
  fraction,   ///< shares and bounded ratios in [-1, 1]; no log, no clipping
  indicator,  ///< one-hot 0/1; no log, no clipping
  value,      ///< a column of a numeric table; log only when asked for
};

/// A feature matrix in original units, before transforms and scaling.
struct RawFeatures {
  std::vector<std::string> names;  ///< [n_features]
  std::vector<FeatureKind> kinds;  ///< [n_features]
  std::vector<bool> may_be_negative;  ///< [n_features]: money that netting can make negative
  Matrix<double> values;           ///< [n_samples x n_features]
  Ids ids;                         ///< [n_samples]
  /// [n_features], or empty when there are no level columns: for a level column (a channel
  /// share, a one-hot attribute level) the name prefix of its group ("channel_share_",
  /// "region_"); "" for every other column. --scaler-from uses it to tell a level that is
  /// absent from new data (a 0 column) from a missing input (an error).
  std::vector<std::string> groups;
  /// Per group prefix: how many distinct levels went into <prefix>other (beyond max_levels, or
  /// not among RfmParams::known_columns).
  std::map<std::string, std::int64_t> levels_in_other;
};

/// Cleaning counts for one input file (gifts, events, attributes or a table). Rows are data
/// rows (the header and blank lines are not); each row is counted under the first rule that
/// drops it, in this order: wrong number of fields (bad), exact duplicate, missing id, a value
/// that is not a number (bad), date (unreadable, before 1900, on or after as-of).
struct FileCounts {
  std::string path;
  std::int64_t rows_read = 0;
  std::int64_t bad_rows_skipped = 0;       ///< --on-bad-row skip
  std::int64_t duplicate_rows = 0;         ///< exact copies of an earlier row, dropped
  std::int64_t missing_id_rows = 0;        ///< empty id, dropped
  std::int64_t unparseable_date_rows = 0;  ///< dropped
  std::int64_t pre_1900_date_rows = 0;     ///< dropped
  std::int64_t after_as_of_rows = 0;       ///< dated on or after as-of, dropped
  std::int64_t rows_used = 0;
  /// The first few skipped bad rows and unreadable dates, quoted with file and line.
  std::vector<std::string> examples;
};

/// One line of a summary: `key` is the HDF5 attribute name (snake_case), `label` the words the
/// tool prints, `value` as text.
struct SummaryItem {
  std::string key;
  std::string label;
  std::string value;
};

/// An ISO date given on the command line (--as-of 2011-12-10, --end ...); InputError naming
/// `option` otherwise.
std::chrono::sys_days parse_date_option(const std::string& text, const std::string& option);

/// "2011-12-10".
std::string format_date(std::chrono::sys_days day);

/// Attributes for write_features: every item's key and value.
std::map<std::string, std::string> to_attributes(const std::vector<SummaryItem>& items);

}  // namespace segforge::prep
