#pragma once
// `segforge-prep table`: a CSV table (one row per record) to a feature matrix, with the
// cleaning and bad-row rules of `rfm`: exact duplicate rows dropped, rows with an empty id
// dropped, a value that is not a number in a number column is a bad row.
//
// Every column gets one role, printed and stored (attribute table_columns, docs/formats.md):
//   id           the record id: --id-col; else a recognised name (id, CustomerID, donor_id,
//                ...); else the first column that is unique per row and named like an id
//                (*id, *_no, *number, *key, ...); else the first row-number-like column
//                (the integers 0..N-1 or 1..N); else none (ids are row numbers, a warning)
//   number       a feature as it is (all values numbers)
//   date         a feature: whole days from the date to --as-of (default: the day after the
//                latest date in the file's date columns), named <column>_days
//   categorical  one-hot levels (--categorical, or text with at most max_categorical_levels
//                distinct values, or integer codes in a column named like a category —
//                Region 1/2/3 — noted), pooled and weighted as levels.hpp says
//   excluded     with the reason: another id-like column, an outcome or target (TARGET_*,
//                Response, label, ...), a constant, empty, free text, --exclude, or not in
//                --features
// Missing values in number and date features follow `missing`; an empty categorical value
// is the level "missing".

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "segforge/prep/common.hpp"
#include "segforge/prep/levels.hpp"

namespace segforge::prep {

/// What to do with an empty value in a number or date feature.
enum class Missing {
  error,   ///< InputError with the counts per column
  median,  ///< fill with the column's median (of the kept rows; the training's under --scaler-from)
  mean,    ///< fill with the column's mean
  drop,    ///< drop the row (counted)
};
Missing parse_missing(const std::string& text);  ///< InputError naming --missing
const char* missing_name(Missing m);

enum class ColumnRole { id, number, date, categorical, excluded };
const char* role_name(ColumnRole role);

/// One column of the file and what became of it.
struct ColumnChoice {
  std::string column;
  ColumnRole role = ColumnRole::excluded;
  std::string why;                  ///< the reason, in words
  std::optional<double> fill;       ///< number and date features: the value filling empties
  std::string date_format;          ///< date features: strptime-style, e.g. %d-%m-%Y
  std::int64_t missing = 0;         ///< empty values in this file
};

/// Every choice of a training preparation, read back from its features file (--scaler-from).
struct TablePlan {
  std::string from;         ///< the training file
  std::string id_column;    ///< "" when the training had none
  std::vector<ColumnChoice> columns;  ///< number, date and categorical ones, in feature order
  Missing missing = Missing::error;
  std::vector<std::string> feature_names;  ///< the training's, for its categorical levels
};

struct TableParams {
  std::string path;
  /// "" detects the id (above); "none" uses no id column.
  std::string id_column;
  /// --features: the columns to use, in this order; empty: detected (above).
  std::vector<std::string> columns;
  /// "" when `columns` come from --features; else the (older) training file whose feature
  /// names they are, named when one is missing.
  std::string columns_from;
  std::vector<std::string> exclude;       ///< --exclude
  std::vector<std::string> categorical;   ///< --categorical: one-hot encode these
  std::vector<std::string> date_columns;  ///< --date-columns: days to as-of
  std::string date_format;                ///< "" detects per column
  std::optional<std::chrono::sys_days> as_of;
  Missing missing = Missing::error;
  LevelRules levels;
  int max_categorical_levels = 20;  ///< text with at most this many values is detected as categorical
  /// Set from --scaler-from: every choice comes from the training (id unless id_column is given).
  std::optional<TablePlan> plan;
  BadRows on_bad_row = BadRows::error;
  bool drop_duplicates = true;
  char delimiter = 0;  ///< 0: detect from the header
  char decimal = 0;    ///< '.' or ','; 0: either for ';'-separated files, else '.' (csv_reader.hpp)
};

struct TableSummary {
  FileCounts file;
  std::string id_column;  ///< "" when none
  std::vector<std::string> skipped_columns;  ///< excluded columns (every reason), for the summary
  std::vector<ColumnChoice> columns;         ///< every column of the header, in header order
  Missing missing = Missing::error;
  std::int64_t missing_rows_dropped = 0;     ///< --missing drop
  std::int64_t missing_filled = 0;           ///< values filled (median / mean)
  std::string as_of;                         ///< "" without date features
  std::int64_t levels_merged = 0;            ///< categorical levels put in <column>_other
  std::int64_t duplicate_ids = 0;  ///< ids seen on more than one kept row (kept; a note)
  std::int64_t n_samples = 0;
  std::int64_t n_features = 0;
  std::vector<std::string> warnings;
};

struct TableResult {
  RawFeatures features;  ///< kinds: value (number), days (date), indicator (levels)
  TableSummary summary;
};

/// Reads the table in two streamed passes (roles, then values; the matrix is held in memory).
/// Throws InputError naming file, line and column for a missing column, a bad row under
/// BadRows::error, a missing value under Missing::error, or no rows left.
TableResult read_table(const TableParams& params);

/// The summary lines of the cleaning (summary.cpp): counts, id column, skipped columns.
std::vector<SummaryItem> summary_items(const TableSummary& summary);

/// The column roles and the choices --scaler-from reuses, as items: table_columns (one line
/// per header column, "role<TAB>column<TAB>fill<TAB>date format<TAB>why"), table_missing,
/// table_as_of, table_levels_merged, table_missing_filled, table_missing_rows_dropped.
std::vector<SummaryItem> table_items(const TableSummary& summary);

/// table_columns as the tool prints it: one aligned line per column.
std::string describe_columns(const TableSummary& summary);

/// The plan stored by a `table` training file (its root attributes and feature names);
/// nullopt when the file has no table_columns (rfm output, or an older segforge-prep).
/// Throws InputError naming the file when table_columns cannot be read.
std::optional<TablePlan> table_plan_from(const std::string& path, const std::map<std::string, std::string>& attributes,
                                         const std::vector<std::string>& feature_names);

}  // namespace segforge::prep
