// `table`: a numeric CSV table to a feature matrix. Which columns are numeric is known only at
// the end of the file, so values that are not numbers are kept as NaN with their line, and the
// bad-row rule is applied once the columns are settled.

#include <cmath>
#include <limits>

#include "csv_reader.hpp"
#include "fields.hpp"
#include "rfm_state.hpp"
#include "segforge/error.hpp"
#include "segforge/prep/table.hpp"

namespace segforge::prep {

namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

struct ColumnScan {
  int index = 0;
  std::int64_t numbers = 0;
  std::int64_t first_text_line = 0;  // first value that is neither a number nor empty
  std::string first_text;
};

}  // namespace

TableResult read_table(const TableParams& params) {
  CsvReader reader(params.path, params.delimiter, params.decimal);
  const Columns columns(reader.path(), reader.header());
  columns.require_unique_names();
  const int id = columns.find(params.id_column, id_column_names(), "--id-col");
  const bool chosen = !params.columns.empty();
  std::vector<ColumnScan> scan;
  if (chosen) {
    for (const auto& name : params.columns) {
      int c = -1;
      try {
        c = columns.find(name, {}, "--columns");
      } catch (const InputError&) {
        if (params.columns_from.empty()) throw;
        throw InputError(params.path + ": no column '" + name + "', which the training file " +
                         params.columns_from + " has (the header has " + columns.listing() +
                         "); new records need every training column");
      }
      if (c < 0 || c == id)
        throw InputError(params.path + ": --columns " + name + ": is the id column; name data columns, or pass --id-col none");
      scan.push_back({c, 0, 0, {}});
    }
  } else {
    for (std::size_t c = 0; c < columns.size(); ++c)
      if (static_cast<int>(c) != id) scan.push_back({static_cast<int>(c), 0, 0, {}});
  }
  if (scan.empty())
    throw InputError(params.path + ": no column besides the id; the header has " + columns.listing());

  TableResult result;
  TableSummary& s = result.summary;
  FileCounts& counts = s.file;
  counts.path = reader.path();
  if (id >= 0) s.id_column = columns.name(static_cast<std::size_t>(id));
  BadRowPolicy policy(params.on_bad_row, &counts);
  HashSet64 seen;
  const std::size_t width = scan.size();
  std::vector<double> values;
  std::vector<std::int64_t> lines;
  std::vector<std::string> ids;
  reader.for_each([&](const CsvRow& row) {
    ++counts.rows_read;
    if (!policy.field_count_ok(row, columns.size())) return true;
    if (params.drop_duplicates && !seen.insert(row.hash())) {
      ++counts.duplicate_rows;
      return true;
    }
    if (id >= 0) {
      const std::string_view v = id_field(row, id, columns);
      if (v.empty()) {
        ++counts.missing_id_rows;
        return true;
      }
      ids.emplace_back(v);
    }
    for (ColumnScan& c : scan) {
      const std::string_view text = row.fields[static_cast<std::size_t>(c.index)];
      const std::optional<double> v = parse_number(text, reader.decimal());
      values.push_back(v ? *v : kMissing);
      if (v) {
        ++c.numbers;
      } else if (!trim(text).empty() && c.first_text_line == 0) {
        c.first_text_line = row.line;
        c.first_text = trim(text);
      }
    }
    lines.push_back(row.line);
    return true;
  });
  require_rows_left(counts);

  // Settle the columns: without --columns, those with any text that is not a number go.
  std::vector<std::size_t> used;
  for (std::size_t k = 0; k < width; ++k) {
    const ColumnScan& c = scan[k];
    const bool numeric = c.first_text_line == 0 && c.numbers > 0;
    if (numeric || chosen)
      used.push_back(k);
    else
      s.skipped_columns.push_back(columns.name(static_cast<std::size_t>(c.index)));
  }
  if (used.empty())
    throw InputError(params.path + ": no column holds only numbers; choose columns with --columns");

  // Rows with a missing or non-numeric value in a used column are bad rows.
  const auto n_rows = static_cast<std::int64_t>(lines.size());
  std::vector<std::int64_t> keep;
  for (std::int64_t r = 0; r < n_rows; ++r) {
    const double* v = values.data() + r * static_cast<std::int64_t>(width);
    bool ok = true;
    for (std::size_t k : used) {
      if (!std::isnan(v[k])) continue;
      CsvRow where;
      where.line = where.end_line = lines[static_cast<std::size_t>(r)];
      policy.bad(where, columns.name(static_cast<std::size_t>(scan[k].index)),
                 "empty value or not a number, expected a number");
      ok = false;
      break;
    }
    if (ok) keep.push_back(r);
  }
  require_rows_left(counts);
  if (keep.empty()) throw InputError(params.path + ": no row is left after cleaning; nothing to cluster");
  counts.rows_used = static_cast<std::int64_t>(keep.size());

  RawFeatures& f = result.features;
  const auto n = static_cast<std::int64_t>(keep.size());
  const auto d = static_cast<std::int64_t>(used.size());
  f.values = Matrix<double>(n, d);
  for (std::size_t k : used) {
    f.names.push_back(columns.name(static_cast<std::size_t>(scan[k].index)));
    f.kinds.push_back(FeatureKind::value);
    f.may_be_negative.push_back(true);
  }
  bool numeric_ids = !ids.empty();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t r = keep[static_cast<std::size_t>(i)];
    for (std::int64_t j = 0; j < d; ++j)
      f.values(i, j) = values[static_cast<std::size_t>(r * static_cast<std::int64_t>(width)) + used[static_cast<std::size_t>(j)]];
    if (numeric_ids && !canonical_integer(ids[static_cast<std::size_t>(r)])) numeric_ids = false;
  }
  if (!ids.empty()) {
    Interner distinct;
    for (std::int64_t r : keep) {
      const std::string& v = ids[static_cast<std::size_t>(r)];
      if (distinct.find(v) >= 0)
        ++s.duplicate_ids;
      else
        distinct.add(v);
      if (numeric_ids)
        f.ids.numeric.push_back(*canonical_integer(v));
      else
        f.ids.text.push_back(v);
    }
    if (s.duplicate_ids > 0)
      s.warnings.push_back(std::to_string(s.duplicate_ids) + " rows repeat an id of an earlier row; "
                           "they are kept as separate records");
  }
  s.n_samples = n;
  s.n_features = d;
  return result;
}

}  // namespace segforge::prep
