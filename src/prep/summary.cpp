// Summaries as ordered (key, label, value) items: the tool prints the labels, features.h5
// stores the keys as root attributes. One list, so the two never disagree.

#include "summary.hpp"

#include "fields.hpp"
#include "segforge/prep/rfm.hpp"
#include "segforge/prep/table.hpp"

namespace segforge::prep {

namespace {

std::string join(const std::vector<std::string>& lines, const std::string& separator) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : separator) + l;
  return out;
}

void add(std::vector<SummaryItem>& items, std::string key, std::string label, std::int64_t value) {
  items.push_back({std::move(key), std::move(label), std::to_string(value)});
}

}  // namespace

/// Attributes are UTF-8 strings: text from the files (event types, paths) is escaped as in
/// messages (printable), line by line and field by field, so h5py and pandas can always decode
/// them; the line and tab separators of structured attributes (table_columns) stay as they are.
std::map<std::string, std::string> to_attributes(const std::vector<SummaryItem>& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    std::string value;
    std::size_t begin = 0;
    while (true) {
      const std::size_t end = item.value.find_first_of("\n\t", begin);
      value += printable(std::string_view(item.value).substr(begin, end == std::string::npos ? std::string::npos : end - begin));
      if (end == std::string::npos) break;
      value += item.value[end];
      begin = end + 1;
    }
    out[item.key] = value;
  }
  return out;
}

void add_file_items(std::vector<SummaryItem>& items, const FileCounts& c, const std::string& prefix,
                    bool dated) {
  items.push_back({prefix + "file", prefix.substr(0, prefix.size() - 1) + " file", c.path});
  add(items, prefix + "rows_read", "rows read", c.rows_read);
  add(items, prefix + "bad_rows_skipped", "bad rows skipped", c.bad_rows_skipped);
  add(items, prefix + "duplicate_rows", "exact duplicate rows dropped", c.duplicate_rows);
  add(items, prefix + "missing_id_rows", "rows with no id dropped", c.missing_id_rows);
  if (dated) {
    add(items, prefix + "unparseable_date_rows", "rows with an unreadable date dropped", c.unparseable_date_rows);
    add(items, prefix + "pre_1900_date_rows", "rows dated before 1900 dropped", c.pre_1900_date_rows);
    add(items, prefix + "after_as_of_rows", "rows dated on or after as-of dropped", c.after_as_of_rows);
  }
  add(items, prefix + "rows_used", "rows used", c.rows_used);
  if (!c.examples.empty())
    items.push_back({prefix + "examples", "first problems", join(c.examples, "\n")});
}

std::vector<SummaryItem> summary_items(const RfmSummary& s) {
  std::vector<SummaryItem> items;
  items.push_back({"as_of", "as-of", s.as_of});
  items.push_back({"as_of_source", "as-of from", s.as_of_source});
  add_file_items(items, s.gifts, "gifts_", true);
  add(items, "gifts_typo_date_rows", "rows dated over a year after all others (typos) dropped", s.typo_date_rows);
  items.push_back({"gifts_date_format", "date format", s.date_format});
  items.push_back({"gifts_amount", "amount", s.amount_source});
  items.push_back({"gifts_transaction_column", "transactions grouped by",
                   s.transaction_column.empty() ? "none (one row, one transaction)" : s.transaction_column});
  items.push_back({"negatives", "negative amounts", s.negatives == Negatives::net ? "net" : "drop"});
  add(items, "negative_rows",
      s.negatives == Negatives::net ? "rows with a negative amount, netted" : "rows with a negative amount, dropped",
      s.negative_rows);
  add(items, "transactions", "transactions", s.transactions);
  add(items, "gift_transactions", "gifts (net amount > 0)", s.gift_transactions);
  add(items, "refund_transactions", "refunds (net amount < 0)", s.refund_transactions);
  add(items, "zero_transactions", "transactions netting to 0", s.zero_transactions);
  add(items, "donors_seen", "donors seen", s.donors_seen);
  add(items, "donors_without_gifts", "donors with no gift, left out", s.donors_without_gifts);
  add(items, "history_days", "days of history", s.history_days);
  if (s.events) {
    add_file_items(items, *s.events, "events_", true);
    add(items, "event_rows_other_type", "event rows of other types, ignored", s.event_rows_other_type);
    if (!s.other_event_types.empty())
      items.push_back({"other_event_types", "other event types", join(s.other_event_types, ", ")});
    add(items, "event_rows_unknown_donor", "event rows for donors without gifts", s.event_rows_unknown_donor);
    add(items, "donors_without_engagement", "donors with no engagement (counted as 0)", s.donors_without_engagement);
  }
  if (s.attributes) {
    add_file_items(items, *s.attributes, "attributes_", false);
    add(items, "attribute_rows_unknown_donor", "attribute rows for donors without gifts", s.attribute_rows_unknown_donor);
    add(items, "donors_without_attributes", "donors with no attributes row (all 0)", s.donors_without_attributes);
    add(items, "attribute_levels_merged", "levels merged into <column>_other", s.attribute_levels_merged);
  }
  add(items, "n_samples", "donors (rows)", s.n_samples);
  add(items, "n_features", "features", s.n_features);
  if (!s.warnings.empty()) items.push_back({"warnings", "warnings", join(s.warnings, "\n")});
  return items;
}

std::vector<SummaryItem> summary_items(const TableSummary& s) {
  std::vector<SummaryItem> items;
  add_file_items(items, s.file, "table_", false);
  items.push_back({"table_id_column", "id column", s.id_column.empty() ? "none" : s.id_column});
  if (!s.skipped_columns.empty())
    items.push_back({"table_skipped_columns", "non-numeric columns left out", join(s.skipped_columns, ", ")});
  add(items, "table_duplicate_ids", "ids on more than one row (kept)", s.duplicate_ids);
  add(items, "n_samples", "rows", s.n_samples);
  add(items, "n_features", "features", s.n_features);
  if (!s.warnings.empty()) items.push_back({"warnings", "warnings", join(s.warnings, "\n")});
  return items;
}

}  // namespace segforge::prep
