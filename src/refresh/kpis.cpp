// `segforge kpis`: segment KPIs over a window after the labels' as-of date, and campaign lift.
// Definitions: include/segforge/kpis.hpp and docs/kpis.md.

#include "segforge/kpis.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include "../prep/csv_reader.hpp"
#include "../prep/dates.hpp"
#include "../prep/fields.hpp"
#include "../prep/rfm_state.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"

namespace segforge {

Interval wilson_interval(std::int64_t x, std::int64_t n, double z) {
  SEGFORGE_ASSERT(n > 0 && x >= 0 && x <= n, "wilson_interval needs 0 <= x <= n, n > 0");
  // Newcombe (1998) eq. for method 3: (2np + z^2 +- z sqrt(z^2 + 4np(1-p))) / (2(n + z^2)).
  const double nn = static_cast<double>(n), p = static_cast<double>(x) / nn, z2 = z * z;
  const double centre = 2.0 * nn * p + z2;
  const double half = z * std::sqrt(z2 + 4.0 * nn * p * (1.0 - p));
  const double denom = 2.0 * (nn + z2);
  // At p = 0 or 1 the bound is exactly 0 or 1 (the formula gives it up to rounding).
  return {x == 0 ? 0.0 : (centre - half) / denom, x == n ? 1.0 : (centre + half) / denom};
}

Interval newcombe_difference(std::int64_t x1, std::int64_t n1, std::int64_t x2, std::int64_t n2, double z) {
  const Interval a = wilson_interval(x1, n1, z), b = wilson_interval(x2, n2, z);
  const double p1 = static_cast<double>(x1) / static_cast<double>(n1);
  const double p2 = static_cast<double>(x2) / static_cast<double>(n2);
  // Method 10: delta = sqrt((p1-l1)^2 + (u2-p2)^2), epsilon = sqrt((u1-p1)^2 + (p2-l2)^2).
  const double delta = std::hypot(p1 - a.low, b.high - p2);
  const double epsilon = std::hypot(a.high - p1, p2 - b.low);
  return {p1 - p2 - delta, p1 - p2 + epsilon};
}

namespace {

using prep::Columns;
using prep::CsvReader;
using prep::CsvRow;
using prep::Interner;
using prep::quote_text;

/// The members and their segments, in the labels file's order.
struct Members {
  Interner ids;  // member index = row of the labels file
  std::vector<std::int32_t> labels;
  std::map<int, std::string> names;  // from segments.csv's segment_name
};

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

/// A repeated id would put one member in two segments.
[[noreturn]] void repeated_member(const std::string& path, const std::string& id, std::int64_t first,
                                  std::int64_t again, const char* unit) {
  throw InputError(path + ": id " + quote_text(id) + " is on " + unit + " " + std::to_string(first) + " and " +
                   std::to_string(again) + "; a member belongs to one segment: pass the labels of one "
                   "segforge fit or predict");
}

void add_member(Members& m, const std::string& path, const std::string& id, std::int32_t label, std::int64_t where,
                std::vector<std::int64_t>& where_of, const char* unit) {
  const std::int32_t before = m.ids.size();
  const std::int32_t i = m.ids.add(id);
  if (i < before) repeated_member(path, id, where_of[static_cast<std::size_t>(i)], where, unit);
  where_of.push_back(where);
  m.labels.push_back(label);
}

Members read_segments_csv(const std::string& path) {
  CsvReader reader(path, ',', '.');
  const Columns c(path, reader.header());
  const int id = c.require("", {"id"}, "--labels", "member id");
  const int segment = c.require("", {"segment"}, "--labels", "segment number");
  const int name = c.find("", {"segment_name"}, "--labels");
  Members m;
  std::vector<std::int64_t> lines;
  reader.for_each([&](const CsvRow& row) {
    const std::string at = path + " line " + std::to_string(row.line);
    if (row.fields.size() != c.size())
      throw InputError(at + ": " + std::to_string(row.fields.size()) + " fields, the header has " +
                       std::to_string(c.size()) + "; check the quoting of ids and names");
    std::string text(prep::id_field(row, id, c));
    // write_segments_csv puts ' before an id a spreadsheet would run as a formula (OWASP).
    if (text.size() > 1 && text[0] == '\'' && std::string_view("=+-@\t\r").find(text[1]) != std::string_view::npos)
      text.erase(0, 1);
    if (text.empty()) throw InputError(at + ", column 'id': empty id; every member needs its id");
    const auto value = prep::canonical_integer(prep::trim(row.fields[static_cast<std::size_t>(segment)]));
    if (!value || *value < INT32_MIN || *value > INT32_MAX)
      throw InputError(at + ", column 'segment': " + quote_text(row.fields[static_cast<std::size_t>(segment)]) +
                       " is not a segment number; pass the segments.csv of segforge fit or predict");
    const auto label = static_cast<std::int32_t>(*value);
    if (name >= 0 && !m.names.count(label))
      m.names[label] = std::string(prep::trim(row.fields[static_cast<std::size_t>(name)]));
    add_member(m, path, text, label, row.line, lines, "lines");
    return true;
  });
  if (m.ids.size() == 0) throw InputError(path + ": no rows; pass the segments.csv of segforge fit or predict");
  return m;
}

Members read_members(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".csv") return read_segments_csv(path);
  const std::vector<std::int32_t> labels = read_labels(path);  // also refuses other extensions
  const Ids ids = read_label_ids(path);
  if (ids.empty())
    throw InputError(path + ":/ids: absent; kpis finds each member in the export by id: pass labels written "
                     "from a features file with /ids (segforge-prep writes them), or segments.csv");
  Members m;
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < labels.size(); ++i)
    add_member(m, path, ids.str(static_cast<std::int64_t>(i)), labels[i], static_cast<std::int64_t>(i) + 1, rows,
               "rows");
  return m;
}

/// Per-segment running sums (slot = position of the segment in KpiResult::segments).
struct Sums {
  std::int64_t members = 0, retained = 0, gifts = 0;
  double gift_amount = 0.0, net = 0.0;
};

SegmentKpis finish(int segment, std::string name, const Sums& s) {
  SegmentKpis k;
  k.segment = segment;
  k.name = std::move(name);
  k.members = s.members;
  k.retained = s.retained;
  k.retention = s.members > 0 ? static_cast<double>(s.retained) / static_cast<double>(s.members) : std::nan("");
  k.gifts = s.gifts;
  k.gift_amount = s.gift_amount;
  k.average_gift = s.gifts > 0 ? s.gift_amount / static_cast<double>(s.gifts) : std::nan("");
  k.net_revenue = s.net;
  k.revenue_per_member = s.members > 0 ? s.net / static_cast<double>(s.members) : std::nan("");
  return k;
}

enum class Arm { treated, control };

std::optional<Arm> parse_arm(std::string_view text) {
  const std::string v = prep::snake_name(text);
  for (const char* t : {"treated", "treatment", "test", "1", "true", "yes"})
    if (v == t) return Arm::treated;
  for (const char* c : {"control", "holdout", "hold_out", "0", "false", "no"})
    if (v == c) return Arm::control;
  return std::nullopt;
}

std::optional<bool> parse_flag(std::string_view text) {
  const std::string v = prep::snake_name(text);
  for (const char* t : {"1", "true", "yes", "y"})
    if (v == t) return true;
  for (const char* f : {"0", "false", "no", "n"})
    if (v == f) return false;
  return std::nullopt;
}

struct ArmSums {
  std::int64_t members = 0, responders = 0;
  double amount = 0.0;
};

ArmKpis finish(const ArmSums& s) {
  ArmKpis a;
  a.members = s.members;
  a.responders = s.responders;
  a.amount = s.amount;
  const double n = static_cast<double>(s.members);
  a.response_rate = s.members > 0 ? static_cast<double>(s.responders) / n : std::nan("");
  a.amount_per_member = s.members > 0 ? s.amount / n : std::nan("");
  return a;
}

CampaignSegmentKpis finish(int segment, std::string name, const ArmSums& treated, const ArmSums& control) {
  CampaignSegmentKpis k;
  k.segment = segment;
  k.name = std::move(name);
  k.treated = finish(treated);
  k.control = finish(control);
  k.has_lift = treated.members > 0 && control.members > 0;
  if (k.has_lift) {
    k.lift = k.treated.response_rate - k.control.response_rate;
    k.lift_interval = newcombe_difference(treated.responders, treated.members, control.responders, control.members);
    k.amount_lift = k.treated.amount_per_member - k.control.amount_per_member;
  } else {
    k.lift = k.amount_lift = std::nan("");
    k.lift_interval = {std::nan(""), std::nan("")};
  }
  return k;
}

/// Reads the campaign file into per-campaign, per-slot arm sums; `slot_of` gives each member's slot.
std::vector<CampaignKpis> read_campaigns(const KpiParams& params, const Members& members,
                                         const std::vector<int>& slot_of, const std::vector<SegmentKpis>& segments) {
  const std::string& path = params.campaign_path;
  CsvReader reader(path, params.gifts.delimiter, params.gifts.decimal);
  const Columns c(path, reader.header());
  const CampaignColumns& cc = params.campaign_columns;
  const int id = c.require(cc.id, prep::id_column_names(), "--campaign-id-col", "member id");
  const int campaign = c.find(cc.campaign, {"campaign", "campaign_id", "campaign_name", "appeal", "appeal_code"},
                              "--campaign-col");
  const int arm = c.require(cc.arm, {"arm", "group", "treatment", "variant", "treated"}, "--arm-col",
                            "treated or control arm");
  const int responded = c.require(cc.responded, {"responded", "response", "converted"}, "--responded-col",
                                  "whether the member responded");
  const int amount = c.find(cc.amount, {"amount", "response_amount", "revenue"}, "--response-amount-col");
  prep::FileCounts counts;
  counts.path = path;
  prep::BadRowPolicy policy(params.gifts.on_bad_row, &counts);
  const std::size_t n_slots = segments.size();

  Interner names;
  struct Acc {
    std::vector<ArmSums> treated, control;
    ArmSums all_treated, all_control;
    std::int64_t rows = 0, unlabelled = 0;
    bool any_treated = false, any_control = false;
  };
  std::vector<Acc> acc;
  prep::StringIndex seen;  // campaign index bytes + id -> line, for repeats
  std::vector<std::int64_t> seen_line;
  std::string key;
  reader.for_each([&](const CsvRow& row) {
    ++counts.rows_read;
    if (!policy.field_count_ok(row, c.size())) return true;
    const std::string_view member = prep::id_field(row, id, c);
    const auto field = [&](int col) { return row.fields[static_cast<std::size_t>(col)]; };
    if (member.empty()) {
      policy.bad(row, c.name(static_cast<std::size_t>(id)), "empty id");
      return true;
    }
    const std::optional<Arm> a = parse_arm(field(arm));
    if (!a) {
      policy.bad(row, c.name(static_cast<std::size_t>(arm)),
                 quote_text(field(arm)) + " is neither treated (treated, treatment, test, 1) nor control (control, "
                 "holdout, 0)");
      return true;
    }
    const std::optional<bool> r = parse_flag(field(responded));
    if (!r) {
      policy.bad(row, c.name(static_cast<std::size_t>(responded)),
                 quote_text(field(responded)) + " is not a yes/no value (1, 0, true, false, yes, no)");
      return true;
    }
    double value = 0.0;
    if (amount >= 0 && !prep::trim(field(amount)).empty()) {
      const auto v = prep::parse_number(field(amount), reader.decimal());
      if (!v || *v < 0.0) {
        policy.bad(row, c.name(static_cast<std::size_t>(amount)),
                   quote_text(field(amount)) + " is not an amount >= 0" + prep::decimal_hint(field(amount), reader.decimal()));
        return true;
      }
      value = *v;
    }
    const std::int32_t ci = names.add(campaign >= 0 ? prep::trim(field(campaign)) : std::string_view());
    if (static_cast<std::size_t>(ci) == acc.size()) {
      acc.emplace_back();
      acc.back().treated.resize(n_slots);
      acc.back().control.resize(n_slots);
    }
    key.assign(reinterpret_cast<const char*>(&ci), sizeof ci);
    key.append(member);
    if (auto [it, fresh] = seen.try_emplace(key, static_cast<std::int32_t>(seen_line.size())); !fresh)
      throw InputError(path + " line " + std::to_string(row.line) + ", column " +
                       quote_text(c.name(static_cast<std::size_t>(id))) + ": id " + quote_text(member) +
                       " is already in campaign " + quote_text(names.name(ci)) + " on line " +
                       std::to_string(seen_line[static_cast<std::size_t>(it->second)]) +
                       "; a member is in one arm of a campaign once: deduplicate the file");
    seen_line.push_back(row.line);
    ++counts.rows_used;
    Acc& k = acc[static_cast<std::size_t>(ci)];
    ++k.rows;
    (*a == Arm::treated ? k.any_treated : k.any_control) = true;
    const std::int32_t m = members.ids.find(member);
    if (m < 0) {
      ++k.unlabelled;
      return true;
    }
    const auto slot = static_cast<std::size_t>(slot_of[static_cast<std::size_t>(m)]);
    for (ArmSums* s : {&(*a == Arm::treated ? k.treated : k.control)[slot],
                       &(*a == Arm::treated ? k.all_treated : k.all_control)}) {
      ++s->members;
      s->responders += *r ? 1 : 0;
      s->amount += value;
    }
    return true;
  });
  prep::require_rows_left(counts);
  if (acc.empty()) throw InputError(path + ": no rows; give one row per member of the campaign");
  const std::string arm_name = quote_text(c.name(static_cast<std::size_t>(arm)));
  std::vector<CampaignKpis> out;
  for (std::size_t ci = 0; ci < acc.size(); ++ci) {
    const Acc& k = acc[ci];
    const std::string shown = names.name(static_cast<std::int32_t>(ci)).empty()
                                  ? std::string("the campaign")
                                  : "campaign " + quote_text(names.name(static_cast<std::int32_t>(ci)));
    if (!k.any_control)
      throw InputError(path + ", column " + arm_name + ": " + shown +
                       " has no control row; lift compares treated members with a held-out control group: "
                       "add the control members (arm 'control')");
    if (!k.any_treated)
      throw InputError(path + ", column " + arm_name + ": " + shown +
                       " has no treated row; add the members who received it (arm 'treated')");
    CampaignKpis r;
    r.campaign = names.name(static_cast<std::int32_t>(ci));
    r.rows = k.rows;
    r.rows_unlabelled = k.unlabelled;
    for (std::size_t s = 0; s < n_slots; ++s)
      r.segments.push_back(finish(segments[s].segment, segments[s].name, k.treated[s], k.control[s]));
    r.overall = finish(-1, "all members", k.all_treated, k.all_control);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

KpiResult compute_kpis(const KpiParams& params) {
  if (params.window_days < 1)
    throw InputError("--window-days " + std::to_string(params.window_days) + ": use at least 1 day (default 365)");
  const Members members = read_members(params.labels_path);

  // Segments: every label present, and every named one (a segment may have no member here).
  std::map<int, std::string> named = members.names;
  for (std::size_t s = 0; s < params.segment_names.size(); ++s)
    if (!named.count(static_cast<int>(s))) named[static_cast<int>(s)] = params.segment_names[s];
  std::map<int, int> slot_of_label;
  for (std::int32_t label : members.labels) slot_of_label[label] = 0;
  for (const auto& [label, name] : named) slot_of_label[label] = 0;
  KpiResult result;
  std::vector<std::string> segment_names;
  for (auto& [label, slot] : slot_of_label) {
    slot = static_cast<int>(segment_names.size());
    auto it = named.find(label);
    segment_names.push_back(it != named.end() && !it->second.empty() ? it->second
                            : label < 0                               ? std::string("noise")
                                                                      : "segment " + std::to_string(label));
  }
  std::vector<int> slot_of(members.labels.size());
  for (std::size_t m = 0; m < members.labels.size(); ++m) slot_of[m] = slot_of_label[members.labels[m]];

  const prep::Day as_of = static_cast<prep::Day>(params.as_of.time_since_epoch().count());
  const prep::Day end = as_of + params.window_days;  // first day after the window
  prep::RfmParams gifts = params.gifts;
  gifts.as_of = std::chrono::sys_days{std::chrono::days{end}};
  gifts.events_path.clear();
  gifts.attributes_path.clear();
  gifts.categorical.clear();

  std::vector<Sums> sums(segment_names.size());
  Sums all;
  const auto n = static_cast<std::size_t>(members.ids.size());
  std::vector<char> before(n, 0), retained(n, 0);
  prep::Day last = INT32_MIN;
  Interner unlabelled;  // donors with a gift in the window who are not labelled
  result.gifts_summary = prep::for_each_transaction(gifts, [&](const prep::CleanTransaction& t) {
    last = std::max(last, t.day);
    const std::int32_t m = members.ids.find(t.donor_id);
    if (t.day < as_of) {
      if (m >= 0) before[static_cast<std::size_t>(m)] = 1;
      return;
    }
    ++result.window_transactions;
    const bool gift = t.kind == prep::CleanTransaction::Kind::gift;
    if (m < 0) {
      if (gift) unlabelled.add(t.donor_id);
      return;
    }
    Sums& s = sums[static_cast<std::size_t>(slot_of[static_cast<std::size_t>(m)])];
    for (Sums* x : {&s, &all}) {
      x->net += t.amount;
      if (gift) {
        ++x->gifts;
        x->gift_amount += t.amount;
      }
    }
    if (gift && !retained[static_cast<std::size_t>(m)]) {
      retained[static_cast<std::size_t>(m)] = 1;
      ++s.retained;
      ++all.retained;
    }
  });

  result.as_of = prep::iso_date(as_of);
  result.window_end = prep::iso_date(end - 1);
  result.window_days = params.window_days;
  result.last_transaction = last == INT32_MIN ? "" : prep::iso_date(last);
  result.n_members = static_cast<std::int64_t>(n);
  for (std::size_t m = 0; m < n; ++m) {
    ++sums[static_cast<std::size_t>(slot_of[m])].members;
    if (!before[m]) {
      if (result.members_not_in_export == 0) result.first_missing_id = members.ids.name(static_cast<std::int32_t>(m));
      ++result.members_not_in_export;
    }
  }
  all.members = static_cast<std::int64_t>(n);
  const std::string& export_path = params.gifts.gifts_path;
  if (result.members_not_in_export == result.n_members)
    throw InputError(params.labels_path + ": none of its " + std::to_string(n) + " ids has a transaction before " +
                     result.as_of + " in " + export_path + " (first id " + quote_text(members.ids.name(0)) +
                     "); these are labels of other donors or another date: pass the labels made from this export "
                     "as of --as-of");
  if (result.window_transactions == 0)
    throw InputError(export_path + ": no transaction dated in the window " + result.as_of + " to " +
                     result.window_end + " (--as-of, --window-days " + std::to_string(params.window_days) + ")" +
                     (last == INT32_MIN ? std::string() : "; the latest transaction read is " + result.last_transaction) +
                     ": choose an earlier --as-of, or pass the export that covers the window");
  if (result.members_not_in_export > 0)
    result.warnings.push_back(std::to_string(result.members_not_in_export) + " of " + std::to_string(n) +
                              " labelled ids have no transaction before " + result.as_of + " in " + export_path +
                              " (first " + quote_text(result.first_missing_id) +
                              "); they count as members who did not come back: check that the labels are of this "
                              "export as of that date");
  // The export ends inside the window only when no row was dated after it.
  if (last < end - 1 && result.gifts_summary.gifts.after_as_of_rows == 0)
    result.warnings.push_back("the export's latest transaction is " + result.last_transaction +
                              ", before the window's last day " + result.window_end + ": the window covers " +
                              std::to_string(last - as_of + 1) + " of its " + std::to_string(params.window_days) +
                              " days; pass --window-days " + std::to_string(last - as_of + 1) +
                              " to compare periods of the same length");
  result.window_donors_unlabelled = unlabelled.size();
  for (const auto& [label, slot] : slot_of_label)
    result.segments.push_back(finish(label, segment_names[static_cast<std::size_t>(slot)],
                                     sums[static_cast<std::size_t>(slot)]));
  result.overall = finish(-1, "all members", all);
  if (!params.campaign_path.empty()) {
    result.campaigns = read_campaigns(params, members, slot_of, result.segments);
    for (const CampaignKpis& c : result.campaigns)
      if (c.rows_unlabelled == c.rows)
        result.warnings.push_back(params.campaign_path + ": no id of " +
                                  (c.campaign.empty() ? std::string("the campaign") : "campaign " + quote_text(c.campaign)) +
                                  " is in the labels; check that the campaign was sent to these members");
  }
  return result;
}

}  // namespace segforge
