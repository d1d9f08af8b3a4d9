#pragma once
// `segforge-prep table`: any numeric CSV table (one row per record) to a feature matrix, with
// the cleaning and bad-row rules of `rfm`: exact duplicate rows dropped, rows with an empty id
// dropped, a value that is not a number (or is empty) in a chosen column is a bad row.

#include <cstdint>
#include <string>
#include <vector>

#include "segforge/prep/common.hpp"

namespace segforge::prep {

struct TableParams {
  std::string path;
  /// "" recognises id / ID / donor_id / CustomerID / ... when present (else no ids);
  /// "none" uses no id column.
  std::string id_column;
  /// Columns to use, in this order; empty: every column whose values are all numbers
  /// (the others are listed in the summary).
  std::vector<std::string> columns;
  /// "" when `columns` come from --columns; else the training file whose feature names they
  /// are (--scaler-from), named when one is missing.
  std::string columns_from;
  BadRows on_bad_row = BadRows::error;
  bool drop_duplicates = true;
  char delimiter = 0;  ///< 0: detect from the header
  char decimal = 0;    ///< '.' or ','; 0: either for ';'-separated files, else '.' (csv_reader.hpp)
};

struct TableSummary {
  FileCounts file;
  std::string id_column;  ///< "" when none
  std::vector<std::string> skipped_columns;  ///< not numeric, left out (without --columns)
  std::int64_t duplicate_ids = 0;  ///< ids seen on more than one kept row (kept; a note)
  std::int64_t n_samples = 0;
  std::int64_t n_features = 0;
  std::vector<std::string> warnings;
};

struct TableResult {
  RawFeatures features;  ///< kinds: FeatureKind::value
  TableSummary summary;
};

/// Reads the table (streamed; the matrix is held in memory). Throws InputError naming file,
/// line and column for a missing column, a bad row under BadRows::error, or no rows left.
TableResult read_table(const TableParams& params);

std::vector<SummaryItem> summary_items(const TableSummary& summary);

}  // namespace segforge::prep
