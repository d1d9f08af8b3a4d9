// `table`: a CSV table to a feature matrix. Pass 1 reads every column's statistics (numbers,
// text, dates, uniqueness, levels) and settles the roles (table.hpp); pass 2 reads the values
// of the chosen columns. Under --scaler-from the roles come from the training file instead.

#include "segforge/prep/table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <unordered_map>

#include "csv_reader.hpp"
#include "dates.hpp"
#include "fields.hpp"
#include "rfm_state.hpp"
#include "segforge/error.hpp"

namespace segforge::prep {

namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
constexpr std::size_t kLevelCap = 256;  // distinct texts tracked per column in pass 1

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string exact_number_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Shortest text that reads back to the same double, for people and for --scaler-from.
  for (int precision = 1; precision <= 17; ++precision) {
    char shorter[40];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (true) {
    const std::size_t end = s.find(sep, begin);
    out.push_back(s.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) return out;
    begin = end + 1;
  }
}

/// Names of id columns: *id (id, row_id, CustomerID), *_no, *_nr, *number, *num, *key,
/// uuid, guid. Camel case counts ("RowId"), but not words that merely end in "id" ("paid").
bool id_like_name(const std::string& raw) {
  const std::string s = snake_name(raw);
  if (s.empty()) return false;
  const std::vector<std::string> tokens = split(s, '_');
  const std::string& last = tokens.back();
  for (const char* t : {"id", "no", "nr", "num", "number", "key", "uuid", "guid", "ref"})
    if (last == t) return true;
  // CustomerID / RowId: "Id" or "ID" ending a longer camel-case name.
  std::string trimmed = raw;
  while (!trimmed.empty() && !std::isalnum(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
  const std::size_t n = trimmed.size();
  if (n > 2 && (trimmed.ends_with("ID") || trimmed.ends_with("Id")) &&
      std::islower(static_cast<unsigned char>(trimmed[n - 3])) != 0)
    return true;
  return false;
}

/// Outcome or target columns: what a model would predict, not a trait to segment on.
bool outcome_like_name(const std::string& raw) {
  const std::string s = snake_name(raw);
  const std::vector<std::string> tokens = split(s, '_');
  if (tokens.front() == "target" || tokens.back() == "target") return true;
  for (const char* t : {"response", "responded", "label", "outcome", "churn", "churned", "y", "class"})
    if (s == t) return true;
  return false;
}

/// Names of columns whose integer values are codes for categories (Region 1 = Lisbon, 2 = Oporto):
/// a token such as region, channel, type, code, group, status. Their numbers have no order or
/// distance, so they are one-hot encoded like text categories.
bool code_like_name(const std::string& raw) {
  const std::string s = snake_name(raw);
  if (s.empty()) return false;
  for (const std::string& token : split(s, '_'))
    for (const char* t : {"region", "channel", "code", "type", "category", "group", "segment", "status", "state",
                          "country", "zip", "postal", "postcode", "gender", "sex", "marital", "department", "dept",
                          "store", "branch", "brand", "cluster", "tier", "kind"})
      if (token == t) return true;
  return false;
}

bool date_shaped(std::string_view text) {
  static const DateFormat yf = DateFormat::year_first(), mf = DateFormat::year_last(DateOrder::month_first),
                          df = DateFormat::year_last(DateOrder::day_first);
  return yf.parse(text) || mf.parse(text) || df.parse(text);
}

/// Pass 1: what one column holds.
struct Stats {
  std::int64_t values = 0;   // non-empty
  std::int64_t numbers = 0;
  std::int64_t dates = 0;    // non-numbers shaped like a date
  std::int64_t empty = 0;
  std::int64_t first_text_line = 0, first_empty_line = 0;
  std::string first_text;
  bool integers = true;
  bool zero_padded = false;  // "007": an id written as text
  double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  bool unique = true;
  std::unique_ptr<HashSet64> seen = std::make_unique<HashSet64>();
  std::unordered_map<std::string, std::int64_t> levels;  // up to kLevelCap distinct texts
  bool many_levels = false;
  DateDetector dates_seen;

  void observe(std::string_view raw, std::int64_t line, char decimal) {
    const std::string_view text = trim(raw);
    if (text.empty()) {
      ++empty;
      if (first_empty_line == 0) first_empty_line = line;
      return;
    }
    ++values;
    if (unique && !seen->insert(std::hash<std::string_view>{}(text))) {
      unique = false;
      seen.reset();
    }
    if (!many_levels) {
      if (auto it = levels.find(std::string(text)); it != levels.end())
        ++it->second;
      else if (levels.size() < kLevelCap)
        levels.emplace(std::string(text), 1);
      else
        many_levels = true;
    }
    if (const std::optional<double> v = parse_number(text, decimal)) {
      ++numbers;
      min = std::min(min, *v);
      max = std::max(max, *v);
      if (*v != std::floor(*v)) integers = false;
      if (text.size() > 1 && text[0] == '0' && std::isdigit(static_cast<unsigned char>(text[1]))) zero_padded = true;
      return;
    }
    if (first_text_line == 0) {
      first_text_line = line;
      first_text = std::string(text);
    }
    if (date_shaped(text)) {
      ++dates;
      dates_seen.observe(text, line);
    }
  }
  bool all_numbers() const { return values > 0 && numbers == values; }
  bool all_dates() const { return values > 0 && numbers == 0 && dates == values; }
  bool row_number_like() const {
    return all_numbers() && unique && integers && empty == 0 && (min == 0.0 || min == 1.0) &&
           max - min + 1.0 == static_cast<double>(values);
  }
  std::int64_t distinct() const { return many_levels ? -1 : static_cast<std::int64_t>(levels.size()); }
};

bool listed(const std::vector<std::string>& names, const std::string& column) {
  for (const auto& n : names)
    if (n == column || snake_name(n) == snake_name(column)) return true;
  return false;
}

/// The role of a column that is neither the id nor excluded by a flag, from its statistics.
ColumnChoice detect(const std::string& column, const Stats& st, const TableParams& p, bool named) {
  ColumnChoice c;
  c.column = column;
  auto excluded = [&](std::string why) {
    c.role = ColumnRole::excluded;
    c.why = std::move(why);
    return c;
  };
  if (listed(p.categorical, column)) {
    c.role = ColumnRole::categorical;
    c.why = "--categorical";
    return c;
  }
  if (listed(p.date_columns, column)) {
    c.role = ColumnRole::date;
    c.why = "--date-columns: days before as-of";
    return c;
  }
  const std::string hint = named ? "" : "; name it in --features to use it";
  if (st.values == 0) return excluded("empty in every row");
  if (!named) {
    const bool id_name = id_like_name(column);
    if (st.row_number_like())
      return excluded("looks like an id (row numbers " + exact_number_text(st.min) + ".." + exact_number_text(st.max) + ")" + hint);
    if (id_name && (!st.all_numbers() || st.integers))
      return excluded(std::string("looks like an id (name") + (st.unique ? ", unique per row" : "") + ")" + hint);
    if (st.unique && st.all_numbers() && st.integers && st.zero_padded)
      return excluded("looks like an id (zero-padded numbers, unique per row)" + hint);
    if (outcome_like_name(column)) return excluded("looks like an outcome or target" + hint);
    if (st.distinct() == 1 && st.empty == 0)
      return excluded("constant (every row " + quote_text(st.levels.begin()->first) + ")" + hint);
  }
  if (st.all_numbers()) {
    const std::int64_t levels = st.distinct();
    // 0/1 is already an indicator; other small sets of integers may be codes.
    const bool indicator = levels == 2 && st.min == 0.0 && st.max == 1.0;
    const bool few_integers = st.integers && levels >= 2 && levels <= p.max_categorical_levels && !indicator;
    if (!named && few_integers && code_like_name(column)) {
      c.role = ColumnRole::categorical;
      c.why = "integer codes (" + std::to_string(levels) + " values, named like a category): one-hot; list it in "
              "--features (with the others) to keep it a number";
      return c;
    }
    c.role = ColumnRole::number;
    c.why = named ? "--features" : "numbers";
    if (!named && few_integers && levels <= 10)
      c.why += " (only " + std::to_string(levels) + " distinct integers; if they are codes, name it in --categorical)";
    return c;
  }
  if (st.all_dates()) {
    c.role = ColumnRole::date;
    c.why = "dates: days before as-of";
    return c;
  }
  const std::int64_t distinct = st.distinct();
  // Categories repeat: a text column whose values are mostly distinct is a name or a note.
  if (st.numbers == 0 && distinct >= 0 && distinct <= p.max_categorical_levels && distinct * 2 <= st.values) {
    c.role = ColumnRole::categorical;
    c.why = "text with " + std::to_string(distinct) + " distinct values: one-hot";
    return c;
  }
  if (named && st.numbers * 2 >= st.values) {
    c.role = ColumnRole::number;  // its text cells are bad rows
    c.why = "--features";
    return c;
  }
  if (named)
    throw InputError(p.path + ": --features " + column + ": text with more than " +
                     std::to_string(p.max_categorical_levels) + " distinct values (first " + quote_text(st.first_text) +
                     " on line " + std::to_string(st.first_text_line) +
                     "); name it with --categorical to one-hot encode it, or leave it out");
  if (st.numbers > 0)
    return excluded("text among numbers (first " + quote_text(st.first_text) + " on line " +
                    std::to_string(st.first_text_line) + ")" + hint + "; its text cells are then bad rows");
  return excluded("free text (more than " + std::to_string(p.max_categorical_levels) +
                  " distinct values); name it with --categorical to one-hot encode it");
}

/// The id column when none is named: a recognised name, else the first unique id-named
/// column, else the first row-number-like one. -1 when none; `why` says how it was found.
int choose_id(const Columns& columns, const std::vector<Stats>& stats, std::string& why) {
  if (const int c = columns.find("", id_column_names(), "--id-col"); c >= 0) {
    why = "id (recognised name)";
    return c;
  }
  for (std::size_t c = 0; c < columns.size(); ++c)
    if (stats[c].unique && stats[c].empty == 0 && stats[c].values > 0 && id_like_name(columns.name(c)) &&
        (!stats[c].all_numbers() || stats[c].integers)) {
      why = "id (unique per row, named like an id)";
      return static_cast<int>(c);
    }
  for (std::size_t c = 0; c < columns.size(); ++c)
    if (stats[c].row_number_like()) {
      why = "id (unique row numbers)";
      return static_cast<int>(c);
    }
  return -1;
}

/// Reads "role<TAB>column<TAB>fill<TAB>format<TAB>why" lines (table_items).
std::vector<ColumnChoice> parse_columns(const std::string& text, const std::string& where) {
  std::vector<ColumnChoice> out;
  for (const std::string& line : split(text, '\n')) {
    if (line.empty()) continue;
    const std::vector<std::string> f = split(line, '\t');
    if (f.size() != 5)
      throw InputError(where + ": table_columns line " + quote_text(line) +
                       " does not have 5 tab-separated fields; prepare the training file again");
    ColumnChoice c;
    const std::string& role = f[0];
    if (role == "id") c.role = ColumnRole::id;
    else if (role == "number") c.role = ColumnRole::number;
    else if (role == "date") c.role = ColumnRole::date;
    else if (role == "categorical") c.role = ColumnRole::categorical;
    else if (role == "excluded") c.role = ColumnRole::excluded;
    else throw InputError(where + ": table_columns: unknown role " + quote_text(role) + "; prepare the training file again");
    c.column = f[1];
    if (!f[2].empty()) {
      const std::optional<double> v = parse_number(f[2]);
      if (!v) throw InputError(where + ": table_columns: fill value " + quote_text(f[2]) + " of " + quote_text(c.column) + " is not a number");
      c.fill = *v;
    }
    c.date_format = f[3];
    c.why = f[4];
    out.push_back(std::move(c));
  }
  return out;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);  // as pandas' median
}

}  // namespace

Missing parse_missing(const std::string& text) {
  if (text == "error") return Missing::error;
  if (text == "median") return Missing::median;
  if (text == "mean") return Missing::mean;
  if (text == "drop") return Missing::drop;
  throw InputError("--missing " + text + ": unknown; use error, median, mean or drop");
}

const char* missing_name(Missing m) {
  switch (m) {
    case Missing::median: return "median";
    case Missing::mean: return "mean";
    case Missing::drop: return "drop";
    default: return "error";
  }
}

const char* role_name(ColumnRole role) {
  switch (role) {
    case ColumnRole::id: return "id";
    case ColumnRole::number: return "number";
    case ColumnRole::date: return "date";
    case ColumnRole::categorical: return "categorical";
    default: return "excluded";
  }
}

std::optional<TablePlan> table_plan_from(const std::string& path, const std::map<std::string, std::string>& attributes,
                                         const std::vector<std::string>& feature_names) {
  const auto cols = attributes.find("table_columns");
  if (cols == attributes.end()) return std::nullopt;
  TablePlan plan;
  plan.from = path;
  plan.feature_names = feature_names;
  for (ColumnChoice& c : parse_columns(cols->second, path)) {
    if (c.role == ColumnRole::id) plan.id_column = c.column;
    else if (c.role != ColumnRole::excluded) plan.columns.push_back(std::move(c));
  }
  if (const auto m = attributes.find("table_missing"); m != attributes.end()) plan.missing = parse_missing(m->second);
  return plan;
}

TableResult read_table(const TableParams& params) {
  validate(params.levels);
  CsvReader reader(params.path, params.delimiter, params.decimal);
  const Columns columns(reader.path(), reader.header());
  columns.require_unique_names();
  const std::size_t width = columns.size();
  const TablePlan* plan = params.plan ? &*params.plan : nullptr;
  // Flags name columns that must exist.
  for (const auto* list : {&params.exclude, &params.categorical, &params.date_columns})
    for (const auto& name : *list) {
      const char* flag = list == &params.exclude ? "--exclude" : list == &params.categorical ? "--categorical" : "--date-columns";
      if (columns.find(name, {}, flag) < 0) throw InputError(std::string(flag) + " none: name the columns");
    }

  // ---- pass 1: statistics of every column ----
  std::vector<Stats> stats(width);
  std::int64_t whole_rows = 0;
  {
    HashSet64 seen;
    reader.for_each([&](const CsvRow& row) {
      if (row.fields.size() != width) return true;  // a bad row: pass 2 reports it
      ++whole_rows;
      if (params.drop_duplicates && !seen.insert(row.hash())) return true;
      for (std::size_t c = 0; c < width; ++c) stats[c].observe(row.fields[c], row.line, reader.decimal());
      return true;
    });
  }

  if (whole_rows == 0) {
    // No row has the header's field count: that is the file's problem to report (as pass 2
    // would), not that no column is usable.
    FileCounts counts;
    counts.path = reader.path();
    BadRowPolicy policy(params.on_bad_row, &counts);
    reader.for_each([&](const CsvRow& row) {
      ++counts.rows_read;
      policy.field_count_ok(row, width);
      return true;
    });
    require_rows_left(counts);
  }

  // ---- roles ----
  TableResult result;
  TableSummary& s = result.summary;
  s.missing = plan ? plan->missing : params.missing;
  std::vector<ColumnChoice> choice(width);
  for (std::size_t c = 0; c < width; ++c) choice[c].column = columns.name(c);
  int id = -1;
  std::string id_why = "id (--id-col)";
  const std::string id_flag = !params.id_column.empty() ? params.id_column : plan ? (plan->id_column.empty() ? "none" : plan->id_column) : "";
  if (!id_flag.empty()) {
    try {
      id = columns.find(id_flag, {}, "--id-col");
    } catch (const InputError&) {
      if (!plan || !params.id_column.empty()) throw;
      throw InputError(params.path + ": no id column '" + plan->id_column + "', which the training file " + plan->from +
                       " used (the header has " + columns.listing() + "); pass --id-col with this file's id column");
    }
    if (plan && params.id_column.empty()) id_why = "id (as in the training file " + plan->from + ")";
  } else {
    id = choose_id(columns, stats, id_why);
  }
  if (id >= 0) {
    choice[static_cast<std::size_t>(id)].role = ColumnRole::id;
    choice[static_cast<std::size_t>(id)].why = id_why;
    s.id_column = columns.name(static_cast<std::size_t>(id));
  } else if (id_flag.empty()) {
    s.warnings.push_back("no id column recognised; ids are row numbers (0, 1, 2, ...), which a CRM cannot match; "
                         "pass --id-col COLUMN (or --id-col none to confirm)");
  }

  std::vector<std::size_t> order;  // feature columns in feature order
  if (plan) {
    for (const ColumnChoice& planned : plan->columns) {
      int c = -1;
      try {
        c = columns.find(planned.column, {}, "--features");
      } catch (const InputError&) {
        throw InputError(params.path + ": no column '" + planned.column + "', which the training file " + plan->from +
                         " has (the header has " + columns.listing() + "); new records need every training column");
      }
      if (c == id) throw InputError(params.path + ": column '" + planned.column + "' is a feature of the training file " + plan->from + " and the id here; pass another --id-col");
      ColumnChoice& ch = choice[static_cast<std::size_t>(c)];
      const std::string name = ch.column;
      ch = planned;
      ch.column = name;
      ch.why = "as in the training file";
      order.push_back(static_cast<std::size_t>(c));
    }
    for (std::size_t c = 0; c < width; ++c)
      if (static_cast<int>(c) != id && std::find(order.begin(), order.end(), c) == order.end())
        choice[c].why = "not a feature of the training file";
  } else if (!params.columns.empty()) {
    for (const auto& name : params.columns) {
      int c = -1;
      try {
        c = columns.find(name, {}, "--features");
      } catch (const InputError&) {
        if (params.columns_from.empty()) throw;
        throw InputError(params.path + ": no column '" + name + "', which the training file " + params.columns_from +
                         " has (the header has " + columns.listing() + "); new records need every training column");
      }
      if (c < 0 || c == id)
        throw InputError(params.path + ": --features " + name + ": is the id column; name data columns, or pass --id-col none");
      if (listed(params.exclude, columns.name(static_cast<std::size_t>(c))))
        throw InputError("--features " + name + " and --exclude " + name + ": choose one");
      choice[static_cast<std::size_t>(c)] = detect(columns.name(static_cast<std::size_t>(c)), stats[static_cast<std::size_t>(c)], params, true);
      order.push_back(static_cast<std::size_t>(c));
    }
    for (std::size_t c = 0; c < width; ++c)
      if (static_cast<int>(c) != id && std::find(order.begin(), order.end(), c) == order.end())
        choice[c].why = listed(params.exclude, choice[c].column) ? "--exclude" : "not in --features";
  } else {
    for (std::size_t c = 0; c < width; ++c) {
      if (static_cast<int>(c) == id) continue;
      if (listed(params.exclude, choice[c].column)) {
        choice[c].why = "--exclude";
        continue;
      }
      choice[c] = detect(choice[c].column, stats[c], params, false);
      if (choice[c].role != ColumnRole::excluded) order.push_back(c);
    }
  }
  for (std::size_t c = 0; c < width; ++c)
    if (choice[c].role == ColumnRole::excluded && (choice[c].why.starts_with("free text") || choice[c].why.starts_with("text among")))
      s.skipped_columns.push_back(choice[c].column);  // "non-numeric columns left out"; the rest are in the column list
  if (order.empty())
    throw InputError(params.path + ": no column holds only numbers, dates or a few categories besides the id; choose columns "
                     "with --features (the header has " + columns.listing() + ")");

  // Date formats: given, the training's, or detected from the column.
  for (std::size_t c : order) {
    ColumnChoice& ch = choice[c];
    if (ch.role != ColumnRole::date) continue;
    if (!params.date_format.empty()) ch.date_format = params.date_format;
    if (ch.date_format.empty())
      ch.date_format = stats[c].dates_seen.format(params.path + ", column " + quote_text(ch.column)).describe();
  }
  const bool has_dates = std::any_of(order.begin(), order.end(), [&](std::size_t c) { return choice[c].role == ColumnRole::date; });
  Day latest = INT32_MIN;  // the latest date read, for the default as-of

  // ---- pass 2: the values ----
  std::vector<DateFormat> formats(width, DateFormat::year_first());
  for (std::size_t c : order)
    if (choice[c].role == ColumnRole::date) formats[c] = DateFormat::from_pattern(choice[c].date_format);
  std::vector<std::size_t> scalar, cat;  // positions in `order`
  for (std::size_t k = 0; k < order.size(); ++k)
    (choice[order[k]].role == ColumnRole::categorical ? cat : scalar).push_back(k);
  FileCounts& counts = s.file;
  counts.path = reader.path();
  BadRowPolicy policy(params.on_bad_row, &counts);
  HashSet64 seen;
  std::vector<double> values;             // [rows x scalar.size()]
  std::vector<std::int32_t> level_codes;  // [rows x cat.size()]
  std::vector<Interner> levels(cat.size());
  std::vector<std::int64_t> lines;
  std::vector<std::string> ids;
  std::vector<double> row_values(scalar.size());
  reader.for_each([&](const CsvRow& row) {
    ++counts.rows_read;
    if (!policy.field_count_ok(row, width)) return true;
    if (params.drop_duplicates && !seen.insert(row.hash())) {
      ++counts.duplicate_rows;
      return true;
    }
    std::string_view id_text;
    if (id >= 0) {
      id_text = id_field(row, id, columns);
      if (id_text.empty()) {
        ++counts.missing_id_rows;
        return true;
      }
    }
    for (std::size_t k = 0; k < scalar.size(); ++k) {
      const std::size_t c = order[scalar[k]];
      const std::string_view text = trim(row.fields[c]);
      double v = kMissing;
      if (!text.empty()) {
        if (choice[c].role == ColumnRole::number) {
          const std::optional<double> x = parse_number(text, reader.decimal());
          if (!x) {
            policy.bad(row, choice[c].column, "not a number, expected a number");
            return true;
          }
          v = *x;
        } else {
          const std::optional<Day> d = formats[c].parse(text);
          if (!d) {
            policy.bad(row, choice[c].column, quote_text(text) + " is not a date in the format " + choice[c].date_format);
            return true;
          }
          latest = std::max(latest, *d);
          v = static_cast<double>(*d);  // days before as-of once as-of is known
        }
      }
      row_values[k] = v;
    }
    values.insert(values.end(), row_values.begin(), row_values.end());
    for (std::size_t k = 0; k < cat.size(); ++k) {
      const std::string_view text = trim(row.fields[order[cat[k]]]);
      level_codes.push_back(levels[k].add(text.empty() ? std::string_view("missing") : text));
    }
    if (id >= 0) ids.emplace_back(id_text);
    lines.push_back(row.line);
    return true;
  });
  // As-of, and the dates as days before it.
  const auto n_rows = static_cast<std::int64_t>(lines.size());
  const std::size_t ns = scalar.size();
  if (has_dates) {
    Day as_of = 0;
    if (params.as_of) as_of = static_cast<Day>(params.as_of->time_since_epoch().count());
    else if (latest != INT32_MIN) as_of = latest + 1;
    else throw InputError(params.path + ": the date columns hold no date to take as-of from; pass --as-of YYYY-MM-DD");
    s.as_of = iso_date(as_of);
    std::int64_t after_as_of = 0;
    for (std::size_t k = 0; k < ns; ++k) {
      if (choice[order[scalar[k]]].role != ColumnRole::date) continue;
      for (std::int64_t r = 0; r < n_rows; ++r)
        if (double& v = values[static_cast<std::size_t>(r) * ns + k]; !std::isnan(v)) {
          if (v >= as_of) ++after_as_of;
          v = static_cast<double>(as_of) - v;
        }
    }
    if (after_as_of > 0)
      s.warnings.push_back(std::to_string(after_as_of) + " dates are on or after as-of " + s.as_of +
                         " (negative days); pass a later --as-of");
  }

  // ---- missing values ----
  std::vector<bool> keep(static_cast<std::size_t>(n_rows), true);
  std::vector<std::int64_t> missing_first(ns, 0);
  for (std::int64_t r = 0; r < n_rows; ++r)
    for (std::size_t k = 0; k < ns; ++k)
      if (std::isnan(values[static_cast<std::size_t>(r) * ns + k])) {
        ColumnChoice& ch = choice[order[scalar[k]]];
        if (ch.missing++ == 0) missing_first[k] = lines[static_cast<std::size_t>(r)];
        if (s.missing == Missing::drop) keep[static_cast<std::size_t>(r)] = false;
      }
  std::int64_t total_missing = 0;
  for (std::size_t k = 0; k < ns; ++k) total_missing += choice[order[scalar[k]]].missing;
  if (total_missing > 0 && s.missing == Missing::error) {
    std::vector<std::string> per_column;
    std::size_t first_k = ns;
    for (std::size_t k = 0; k < ns; ++k)
      if (const auto m = choice[order[scalar[k]]].missing; m > 0) {
        per_column.push_back(quote_text(choice[order[scalar[k]]].column) + " " + std::to_string(m));
        if (first_k == ns) first_k = k;
      }
    const std::string where = plan ? " (the training file " + plan->from + " had none: it was prepared with --missing error)" : "";
    throw InputError(counts.path + " line " + std::to_string(missing_first[first_k]) + ", column " +
                     quote_text(choice[order[scalar[first_k]]].column) + ": empty value; " + std::to_string(total_missing) +
                     " empty values in all (" + join(per_column) + ")" + where +
                     "; pass --missing median|mean|drop, fill them, or --exclude the column");
  }
  for (std::size_t k = 0; k < ns; ++k) {
    ColumnChoice& ch = choice[order[scalar[k]]];
    if (plan) {
      if (ch.missing > 0 && s.missing != Missing::drop && !ch.fill)
        throw InputError(counts.path + ", column " + quote_text(ch.column) + ": " + std::to_string(ch.missing) +
                         " empty values, and the training file " + plan->from + " stores no fill value for it; fill them");
      continue;  // the training's fill value
    }
    if (s.missing != Missing::median && s.missing != Missing::mean) continue;
    std::vector<double> present;
    for (std::int64_t r = 0; r < n_rows; ++r)
      if (const double v = values[static_cast<std::size_t>(r) * ns + k]; !std::isnan(v)) present.push_back(v);
    if (present.empty())
      throw InputError(counts.path + ", column " + quote_text(ch.column) + ": every value is empty; --exclude it");
    if (s.missing == Missing::median) {
      ch.fill = median_of(present);
    } else {
      double sum = 0.0;
      for (double v : present) sum += v;
      ch.fill = sum / static_cast<double>(present.size());
    }
  }
  for (std::int64_t r = 0; r < n_rows; ++r)
    for (std::size_t k = 0; k < ns; ++k)
      if (double& v = values[static_cast<std::size_t>(r) * ns + k]; std::isnan(v) && keep[static_cast<std::size_t>(r)]) {
        v = *choice[order[scalar[k]]].fill;
        ++s.missing_filled;
      }
  std::vector<std::int64_t> kept;
  for (std::int64_t r = 0; r < n_rows; ++r)
    if (keep[static_cast<std::size_t>(r)]) kept.push_back(r);
    else ++s.missing_rows_dropped;
  require_rows_left(counts);
  if (kept.empty()) throw InputError(params.path + ": no row is left after cleaning; nothing to cluster");
  counts.rows_used = static_cast<std::int64_t>(kept.size());

  // ---- features ----
  RawFeatures& f = result.features;
  struct Out {
    std::string name;
    FeatureKind kind;
    std::string group;
  };
  std::vector<Out> outs;
  std::vector<LevelMap> maps(cat.size());
  std::vector<std::size_t> out_at(order.size());
  const std::vector<std::string> no_known;
  for (std::size_t k = 0, si = 0, ci = 0; k < order.size(); ++k) {
    const ColumnChoice& ch = choice[order[k]];
    out_at[k] = outs.size();
    if (ch.role == ColumnRole::number) {
      outs.push_back({ch.column, FeatureKind::value, ""});
      ++si;
    } else if (ch.role == ColumnRole::date) {
      outs.push_back({ch.column + "_days", FeatureKind::days, ""});
      ++si;
    } else {
      std::vector<std::string> names;
      for (std::int32_t l = 0; l < levels[ci].size(); ++l) names.push_back(levels[ci].name(l));
      std::vector<std::int64_t> level_counts(names.size(), 0);
      for (std::int64_t r : kept) ++level_counts[static_cast<std::size_t>(level_codes[static_cast<std::size_t>(r) * cat.size() + ci])];
      const std::string prefix = snake_name(ch.column) + "_";
      maps[ci] = pool_levels(names, level_counts, params.levels, prefix, plan ? plan->feature_names : no_known);
      s.levels_merged += maps[ci].merged;
      if (maps[ci].merged > 0) f.levels_in_other[prefix] = maps[ci].merged;
      for (const auto& level : maps[ci].names) outs.push_back({level_column(prefix, level), FeatureKind::indicator, prefix});
      if (!plan && maps[ci].names.size() < 2)
        s.warnings.push_back("categorical column " + quote_text(ch.column) + " has one level; it adds nothing");
      ++ci;
    }
  }
  // Names must be unique: a level column may clash with a number column's name.
  for (std::size_t a = 0; a < outs.size(); ++a)
    for (std::size_t b = a + 1; b < outs.size(); ++b)
      if (outs[a].name == outs[b].name)
        throw InputError(params.path + ": two features would be named " + quote_text(outs[a].name) +
                         "; --exclude or rename one of the columns");
  const auto n = static_cast<std::int64_t>(kept.size());
  const auto d = static_cast<std::int64_t>(outs.size());
  f.values = Matrix<double>(n, d, 0.0);
  bool any_group = false;
  for (const Out& o : outs) {
    f.names.push_back(o.name);
    f.kinds.push_back(o.kind);
    f.may_be_negative.push_back(o.kind == FeatureKind::value);
    f.groups.push_back(o.group);
    any_group = any_group || !o.group.empty();
  }
  if (!any_group) f.groups.clear();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto r = static_cast<std::size_t>(kept[static_cast<std::size_t>(i)]);
    for (std::size_t k = 0, si = 0, ci = 0; k < order.size(); ++k) {
      if (choice[order[k]].role == ColumnRole::categorical) {
        const std::int32_t col = maps[ci].column[static_cast<std::size_t>(level_codes[r * cat.size() + ci])];
        if (col >= 0) f.values(i, static_cast<std::int64_t>(out_at[k]) + col) = 1.0;
        ++ci;
      } else {
        f.values(i, static_cast<std::int64_t>(out_at[k])) = values[r * ns + si];
        ++si;
      }
    }
  }
  bool numeric_ids = !ids.empty();
  for (std::int64_t r : kept)
    if (numeric_ids && !canonical_integer(ids[static_cast<std::size_t>(r)])) numeric_ids = false;
  if (!ids.empty()) {
    Interner distinct;
    for (std::int64_t r : kept) {
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
  // The stored list: the feature columns in feature order first (--scaler-from rebuilds that
  // order), then the id and the excluded ones in header order.
  for (std::size_t c : order) s.columns.push_back(choice[c]);
  for (std::size_t c = 0; c < width; ++c)
    if (std::find(order.begin(), order.end(), c) == order.end()) s.columns.push_back(choice[c]);
  s.n_samples = n;
  s.n_features = d;
  return result;
}

std::vector<SummaryItem> table_items(const TableSummary& s) {
  std::string lines;
  for (const ColumnChoice& c : s.columns) {
    if (!lines.empty()) lines += '\n';
    lines += std::string(role_name(c.role)) + '\t' + c.column + '\t' + (c.fill ? exact_number_text(*c.fill) : "") + '\t' +
             c.date_format + '\t' + c.why;
  }
  std::vector<SummaryItem> items = {{"table_columns", "columns", lines},
                                    {"table_missing", "missing values", missing_name(s.missing)}};
  if (s.missing_filled > 0) items.push_back({"table_missing_filled", "empty values filled", std::to_string(s.missing_filled)});
  if (s.missing_rows_dropped > 0)
    items.push_back({"table_missing_rows_dropped", "rows with an empty value, dropped", std::to_string(s.missing_rows_dropped)});
  if (!s.as_of.empty()) items.push_back({"table_as_of", "dates counted in days before", s.as_of});
  if (s.levels_merged > 0)
    items.push_back({"table_levels_merged", "rare levels pooled into <column>_other", std::to_string(s.levels_merged)});
  return items;
}

std::string describe_columns(const TableSummary& s) {
  std::size_t w = 0;
  for (const ColumnChoice& c : s.columns) w = std::max(w, c.column.size());
  std::string out;
  for (const ColumnChoice& c : s.columns) {
    if (!out.empty()) out += '\n';
    std::string line = c.column + std::string(w + 2 - c.column.size(), ' ') + role_name(c.role);
    line += std::string(13 - std::string(role_name(c.role)).size(), ' ') + c.why;
    if (c.missing > 0)
      line += "; " + std::to_string(c.missing) + " empty" + (c.fill ? ", filled with " + exact_number_text(*c.fill) : "");
    out += line;
  }
  return out;
}

}  // namespace segforge::prep
