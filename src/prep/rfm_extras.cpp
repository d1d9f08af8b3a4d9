// `rfm`'s second and third inputs: engagement events (opens, clicks, attendance) and donor
// attributes (categorical columns, one-hot encoded later). Both need as-of and the donors of
// the gifts pass; rows for donors without gifts are counted and ignored.

#include <algorithm>

#include "csv_reader.hpp"
#include "dates.hpp"
#include "fields.hpp"
#include "rfm_state.hpp"
#include "segforge/error.hpp"

namespace segforge::prep {

namespace {

const std::vector<std::string> kEventDateNames = {"event_date", "date", "timestamp", "event_time",
                                                  "occurred_at", "activity_date"};
const std::vector<std::string> kEventTypeNames = {"event_type", "type", "event", "activity",
                                                  "activity_type", "action"};

enum class EventKind { open, click, attend, other };

EventKind event_kind(std::string_view type) {
  const std::string t = snake_name(type);
  static const std::vector<std::string> opens = {"open", "opened", "opens", "email_open",
                                                 "email_opened"};
  static const std::vector<std::string> clicks = {"click", "clicked", "clicks", "email_click",
                                                  "email_clicked", "link_click"};
  static const std::vector<std::string> attends = {"attend", "attended", "attendance", "event",
                                                   "event_attended", "event_attendance"};
  auto in = [&](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), t) != v.end(); };
  if (in(opens)) return EventKind::open;
  if (in(clicks)) return EventKind::click;
  if (in(attends)) return EventKind::attend;
  return EventKind::other;
}

/// The date format of `column` in `reader`'s file: given, or detected by reading until the
/// values settle it (to the end when they never do).
DateFormat column_date_format(const RfmParams& params, CsvReader& reader, const Columns& columns,
                              int column) {
  if (!params.date_format.empty()) return DateFormat::from_pattern(params.date_format);
  DateDetector detector;
  reader.for_each([&](const CsvRow& row) {
    if (row.fields.size() != columns.size()) return true;  // a bad row: the main pass reports it
    detector.observe(row.fields[static_cast<std::size_t>(column)], row.line);
    return !detector.decided();
  });
  return detector.format(reader.path() + ", column " + quote_text(columns.name(static_cast<std::size_t>(column))));
}

}  // namespace

void read_events(const RfmParams& params, RfmState& state) {
  CsvReader reader(params.events_path, params.delimiter);
  const Columns columns(reader.path(), reader.header());
  const EventColumns& ec = params.event_columns;
  const int id = columns.require(ec.id, id_column_names(), "--event-id-col", "donor id");
  const int date = columns.require(ec.date, kEventDateNames, "--event-date-col", "event date");
  const int type = columns.require(ec.type, kEventTypeNames, "--event-type-col", "event type");
  const DateFormat format = column_date_format(params, reader, columns, date);

  RfmSummary& s = state.summary;
  s.events.emplace();
  FileCounts& counts = *s.events;
  counts.path = reader.path();
  BadRowPolicy policy(params.on_bad_row, &counts);
  HashSet64 seen;
  state.has_events = true;
  const std::string date_name = columns.name(static_cast<std::size_t>(date));
  reader.for_each([&](const CsvRow& row) {
    ++counts.rows_read;
    if (!policy.field_count_ok(row, columns.size())) return true;
    if (params.drop_duplicates && !seen.insert(row.hash())) {
      ++counts.duplicate_rows;
      return true;
    }
    const std::string_view donor = id_field(row, id, columns);
    if (donor.empty()) {
      ++counts.missing_id_rows;
      return true;
    }
    const std::string_view date_text = row.fields[static_cast<std::size_t>(date)];
    const std::optional<Day> day = format.parse(date_text);
    if (!day) {
      ++counts.unparseable_date_rows;
      add_example(counts, counts.path + " line " + std::to_string(row.line) + ", column " +
                              quote_text(date_name) + ": " + quote_text(trim(date_text)) +
                              " is not a date in the format " + format.describe() + " (dropped)");
      return true;
    }
    if (*day < kDay1900) {
      ++counts.pre_1900_date_rows;
      return true;
    }
    if (*day >= state.as_of) {
      ++counts.after_as_of_rows;
      return true;
    }
    const std::string_view type_text = trim(row.fields[static_cast<std::size_t>(type)]);
    const EventKind kind = event_kind(type_text);
    if (kind == EventKind::other) {
      ++s.event_rows_other_type;
      const std::string name(type_text);
      if (s.other_event_types.size() < kMaxExamples &&
          std::find(s.other_event_types.begin(), s.other_event_types.end(), name) == s.other_event_types.end())
        s.other_event_types.push_back(name);
      return true;
    }
    state.first_event = std::min(state.first_event, *day);
    const std::int32_t i = state.donor_ids.find(donor);
    if (i < 0) {
      ++s.event_rows_unknown_donor;
      return true;
    }
    ++counts.rows_used;
    Donor& d = state.donors[static_cast<std::size_t>(i)];
    d.last_engagement = std::max(d.last_engagement, *day);
    if (state.as_of - *day <= 365) {
      if (kind == EventKind::open) ++d.opens_12m;
      if (kind == EventKind::click) ++d.clicks_12m;
      if (kind == EventKind::attend) ++d.attended_12m;
    }
    return true;
  });
  require_rows_left(counts);
  if (state.first_event == INT32_MAX)
    throw InputError(counts.path + ": no open, click or attendance event dated before as-of (" +
                     s.as_of + ") is left after cleaning; check --event-type-col and the dates");
}

void read_attributes(const RfmParams& params, RfmState& state) {
  CsvReader reader(params.attributes_path, params.delimiter);
  const Columns columns(reader.path(), reader.header());
  const int id = columns.require(params.attribute_id_column, id_column_names(), "--attribute-id-col",
                                 "donor id");
  std::vector<int> cat;
  for (const auto& name : params.categorical) {
    const int c = columns.find(name, {}, "--categorical");
    if (c < 0) throw InputError("--categorical none: name the attribute columns to encode");
    cat.push_back(c);
    state.categorical.push_back(columns.name(static_cast<std::size_t>(c)));
  }
  state.levels.resize(cat.size());
  state.donor_levels.assign(cat.size(), std::vector<std::int32_t>(state.donors.size(), -1));

  RfmSummary& s = state.summary;
  s.attributes.emplace();
  FileCounts& counts = *s.attributes;
  counts.path = reader.path();
  BadRowPolicy policy(params.on_bad_row, &counts);
  HashSet64 seen;
  std::vector<std::int64_t> first_line(state.donors.size(), 0);
  reader.for_each([&](const CsvRow& row) {
    ++counts.rows_read;
    if (!policy.field_count_ok(row, columns.size())) return true;
    if (params.drop_duplicates && !seen.insert(row.hash())) {
      ++counts.duplicate_rows;
      return true;
    }
    const std::string_view donor = id_field(row, id, columns);
    if (donor.empty()) {
      ++counts.missing_id_rows;
      return true;
    }
    const std::int32_t i = state.donor_ids.find(donor);
    if (i < 0) {
      ++s.attribute_rows_unknown_donor;
      return true;
    }
    std::int64_t& first = first_line[static_cast<std::size_t>(i)];
    if (first > 0) {
      policy.bad(row, columns.name(static_cast<std::size_t>(id)),
                 "donor " + std::string(donor) + " already has attributes on line " + std::to_string(first) +
                     "; keep one row per donor");
      return true;
    }
    first = row.line;
    ++counts.rows_used;
    for (std::size_t a = 0; a < cat.size(); ++a) {
      const std::string_view level = trim(row.fields[static_cast<std::size_t>(cat[a])]);
      state.donor_levels[a][static_cast<std::size_t>(i)] =
          state.levels[a].add(level.empty() ? std::string_view("missing") : level);
    }
    return true;
  });
}

}  // namespace segforge::prep
