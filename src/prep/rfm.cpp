// `rfm`: the gifts pass, then events and attributes (rfm_extras.cpp), then one row of features
// per donor with a gift. Definitions: include/segforge/prep/rfm.hpp.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>

#include "../io/atomic_file.hpp"
#include "csv_reader.hpp"
#include "dates.hpp"
#include "fields.hpp"
#include "rfm_state.hpp"
#include "segforge/error.hpp"
#include "segforge/prep/levels.hpp"
#include "segforge/prep/rfm.hpp"

namespace segforge::prep {

namespace {

constexpr std::int64_t kMinDonors = 500;
constexpr std::int64_t kMinHistoryDays = 730;

const std::vector<std::string> kDateNames = {"gift_date", "donation_date", "InvoiceDate",
                                             "transaction_date", "payment_date", "order_date",
                                             "received_date", "date"};
const std::vector<std::string> kAmountNames = {"amount", "gift_amount", "donation_amount",
                                               "payment_amount", "total_amount", "amount_paid"};
const std::vector<std::string> kQuantityNames = {"Quantity", "qty"};
const std::vector<std::string> kUnitPriceNames = {"UnitPrice", "unit_price", "Price"};
const std::vector<std::string> kTransactionNames = {"InvoiceNo", "Invoice", "invoice_number",
                                                    "transaction_id", "order_id", "order_number"};
const std::vector<std::string> kCampaignNames = {"campaign", "campaign_id", "campaign_name",
                                                 "appeal", "appeal_code"};
const std::vector<std::string> kChannelNames = {"channel", "payment_method", "payment_type",
                                                "source"};

/// Where the fields of a gifts row are.
struct GiftLayout {
  std::size_t n_fields = 0;
  int id = -1, date = -1, amount = -1, quantity = -1, unit_price = -1;
  int transaction = -1, campaign = -1, channel = -1;
};

GiftLayout gift_layout(const Columns& c, const GiftColumns& g) {
  GiftLayout l;
  l.n_fields = c.size();
  l.id = c.require(g.id, id_column_names(), "--id-col", "donor id");
  l.date = c.require(g.date, kDateNames, "--date-col", "gift date");
  l.amount = c.find(g.amount, g.quantity.empty() && g.unit_price.empty() ? kAmountNames
                                                                          : std::vector<std::string>{},
                    "--amount-col");
  if (l.amount < 0) {
    l.quantity = c.find(g.quantity, kQuantityNames, "--quantity-col");
    l.unit_price = c.find(g.unit_price, kUnitPriceNames, "--unit-price-col");
    if (l.quantity < 0 || l.unit_price < 0)
      throw InputError(c.path() + ": no amount column recognised in the header (" + c.listing() +
                       "); name it with --amount-col, or give --quantity-col and --unit-price-col");
  }
  l.transaction = c.find(g.transaction, kTransactionNames, "--transaction-col");
  l.campaign = c.find(g.campaign, kCampaignNames, "--campaign-col");
  l.channel = c.find(g.channel, kChannelNames, "--channel-col");
  return l;
}

/// The mapped fields of one row.
struct GiftRow {
  std::string_view id, date;
  double amount = 0.0;
};

/// Reads a number field; reports a bad row (and returns false under skip) when it is not one.
bool number_field(const CsvRow& row, int column, const Columns& c, BadRowPolicy& policy, char decimal,
                  double& out) {
  const std::string_view text = row.fields[static_cast<std::size_t>(column)];
  if (const auto v = parse_number(text, decimal)) {
    out = *v;
    return true;
  }
  const std::string what = trim(text).empty() ? "empty value, expected a number"
                                              : quote_text(text) + " is not a number" + decimal_hint(text, decimal);
  policy.bad(row, c.name(static_cast<std::size_t>(column)), what);
  return false;
}

/// `sum` must stay finite: amounts near the double range add up past it.
void require_finite_sum(double sum, const std::string& where, const std::string& what) {
  if (!std::isfinite(sum))
    throw InputError(where + ": " + what +
                     " is beyond the range of a double (about 1.8e308); the amounts cannot all be "
                     "real, so clean them");
}

bool amount_of(const CsvRow& row, const GiftLayout& l, const Columns& c, BadRowPolicy& policy, char decimal,
               double& amount) {
  if (l.amount >= 0) return number_field(row, l.amount, c, policy, decimal, amount);
  double q = 0.0, p = 0.0;
  if (!number_field(row, l.quantity, c, policy, decimal, q) || !number_field(row, l.unit_price, c, policy, decimal, p))
    return false;
  amount = q * p;
  require_finite_sum(amount,
                     c.path() + " line " + std::to_string(row.line) + ", columns " +
                         quote_text(c.name(static_cast<std::size_t>(l.quantity))) + " x " +
                         quote_text(c.name(static_cast<std::size_t>(l.unit_price))),
                     "the amount " + number_text(q) + " x " + number_text(p));
  return true;
}

/// A net this close to 0 is 0: the rows of a cancelled order need not cancel exactly in
/// floating point (2.55 - 0.85 - 1.7 != 0).
bool is_zero(const Transaction& t) { return std::abs(t.net) <= 1e-9 * std::max(1.0, t.gross); }

class GiftsPass {
 public:
  GiftsPass(const RfmParams& params, CsvReader& reader, RfmState& state)
      : params_(params),
        reader_(reader),
        columns_(reader.path(), reader.header()),
        layout_(gift_layout(columns_, params.gift_columns)),
        state_(state),
        counts_(state.summary.gifts),
        policy_(params.on_bad_row, &state.summary.gifts) {
    counts_.path = reader.path();
    state_.has_campaign = layout_.campaign >= 0;
    state_.has_channel = layout_.channel >= 0;
    RfmSummary& s = state_.summary;
    s.negatives = params.negatives;
    decimal_ = reader.decimal();
    if (layout_.transaction >= 0) s.transaction_column = columns_.name(static_cast<std::size_t>(layout_.transaction));
    s.amount_source = layout_.amount >= 0
                          ? columns_.name(static_cast<std::size_t>(layout_.amount))
                          : columns_.name(static_cast<std::size_t>(layout_.quantity)) + " x " +
                                columns_.name(static_cast<std::size_t>(layout_.unit_price));
  }

  /// The date format and as-of: given, or found by a first pass over the file (stopping
  /// early when only the format was missing and it is settled).
  void settle_dates() {
    const std::string where = reader_.path() + ", column " + quote_text(date_name());
    const bool need_as_of = !params_.as_of.has_value();
    const bool need_format = params_.date_format.empty();
    if (!need_format) format_ = DateFormat::from_pattern(params_.date_format);
    if (need_as_of || need_format) {
      DateDetector detector;
      DayCounts days;
      FileCounts scratch;
      scratch.path = reader_.path();
      BadRowPolicy scan_policy(params_.on_bad_row, &scratch);
      reader_.for_each([&](const CsvRow& row) {
        ++scratch.rows_read;
        GiftRow g;
        if (!read_row(row, scan_policy, g)) return true;
        if (g.id.empty()) return true;
        if (params_.negatives == Negatives::drop && g.amount < 0) return true;
        if (need_format) {
          detector.observe(g.date, row.line);
          return need_as_of || !detector.decided();
        }
        if (const auto d = format_.parse(g.date); d && *d >= kDay1900) days.add(*d);
        return true;
      });
      require_rows_left(scratch);
      if (need_format) format_ = detector.format(where);
      if (need_as_of) {
        const DayCounts::Split split = (need_format ? detector.days(where) : days).split();
        if (!split.latest_ordinary)
          throw InputError(where + ": no row with a donor id has a readable date on or after 1900; "
                           "check the column (--date-col) and its format (--date-format)");
        state_.as_of = *split.latest_ordinary + 1;
        typos_dropped_ = true;
        if (split.typo_rows > 0)
          state_.summary.warnings.push_back(
              std::to_string(split.typo_rows) + " gifts row(s) dated from " + iso_date(*split.first_typo) +
              " on, more than a year after every other date (latest " + iso_date(*split.latest_ordinary) +
              "), were taken as typos and dropped; fix them, or pass --as-of to set the period yourself");
      }
    }
    if (!need_as_of)
      state_.as_of = static_cast<Day>(params_.as_of->time_since_epoch().count());
    state_.summary.date_format = format_.describe();
    state_.summary.as_of = iso_date(state_.as_of);
    state_.summary.as_of_source = need_as_of ? "day after the last transaction" : "--as-of";
  }

  void run() {
    if (params_.drop_duplicates) seen_.reserve(static_cast<std::size_t>(reader_.estimated_rows()));
    reader_.for_each([&](const CsvRow& row) {
      add(row);
      return true;
    });
    // Grouped transactions are complete only at the end of the file; fold them in the order
    // they first appeared, so sums do not depend on hashing.
    for (const Transaction& t : transactions_) apply(t);
    transactions_.clear();
    transactions_.shrink_to_fit();
    state_.summary.history_days = first_day_ == INT32_MAX ? 0 : state_.as_of - first_day_;
  }

 private:
  const std::string& date_name() const { return columns_.name(static_cast<std::size_t>(layout_.date)); }

  /// Field count, id, amount (bad rows reported through `policy`). False when skipped.
  bool read_row(const CsvRow& row, BadRowPolicy& policy, GiftRow& g) const {
    if (!policy.field_count_ok(row, layout_.n_fields)) return false;
    g.id = id_field(row, layout_.id, columns_);
    g.date = row.fields[static_cast<std::size_t>(layout_.date)];
    if (g.id.empty()) return true;
    return amount_of(row, layout_, columns_, policy, decimal_, g.amount);
  }

  std::string_view field(const CsvRow& row, int column) const {
    return column < 0 ? std::string_view() : trim(row.fields[static_cast<std::size_t>(column)]);
  }

  void add(const CsvRow& row) {
    ++counts_.rows_read;
    if (!policy_.field_count_ok(row, layout_.n_fields)) return;
    // The duplicate set is a cache miss per row: start loading the slot, read the id and the
    // date (no side effects) meanwhile, then apply the rules in their documented order.
    std::uint64_t hash = 0;
    if (params_.drop_duplicates) {
      hash = row.hash();
      seen_.prefetch(hash);
    }
    GiftRow g;
    g.id = id_field(row, layout_.id, columns_);
    g.date = row.fields[static_cast<std::size_t>(layout_.date)];
    const std::optional<Day> day = format_.parse(g.date);
    if (params_.drop_duplicates && !seen_.insert(hash)) {
      ++counts_.duplicate_rows;
      return;
    }
    if (g.id.empty()) {
      ++counts_.missing_id_rows;
      return;
    }
    if (!amount_of(row, layout_, columns_, policy_, decimal_, g.amount)) return;
    if (!day) {
      ++counts_.unparseable_date_rows;
      add_example(counts_, counts_.path + " line " + std::to_string(row.line) + ", column " +
                               quote_text(date_name()) + ": " + quote_text(trim(g.date)) +
                               " is not a date in the format " + format_.describe() + " (dropped)");
      return;
    }
    if (*day < kDay1900) {
      ++counts_.pre_1900_date_rows;
      return;
    }
    if (*day >= state_.as_of) {
      // With as-of from the data, every later date lies beyond the typo gap (settle_dates).
      if (typos_dropped_) {
        ++state_.summary.typo_date_rows;
        add_example(counts_, counts_.path + " line " + std::to_string(row.line) + ", column " +
                                 quote_text(date_name()) + ": " + quote_text(trim(g.date)) +
                                 " is more than a year after every other date (taken as a typo, dropped)");
      } else {
        ++counts_.after_as_of_rows;
      }
      return;
    }
    if (g.amount < 0) {
      ++state_.summary.negative_rows;
      if (params_.negatives == Negatives::drop) return;
    }
    ++counts_.rows_used;
    first_day_ = std::min(first_day_, *day);

    Transaction t;
    t.donor = donor_index(g.id, row);
    t.line = row.line;
    t.day = *day;
    t.net = g.amount;
    t.gross = std::abs(g.amount);
    if (state_.has_campaign)
      if (const std::string_view c = field(row, layout_.campaign); !c.empty()) t.campaign = state_.campaigns.add(c);
    if (state_.has_channel) {
      const std::string_view c = field(row, layout_.channel);
      t.channel = state_.channels.add(c.empty() ? std::string_view("unknown") : c);
    }
    if (layout_.transaction < 0) {
      apply(t);
      return;
    }
    // Key: the donor's index (4 bytes) then the transaction id.
    key_.assign(reinterpret_cast<const char*>(&t.donor), sizeof t.donor);
    key_.append(field(row, layout_.transaction));
    auto [it, fresh] = transaction_index_.try_emplace(key_, static_cast<std::int32_t>(transactions_.size()));
    if (fresh) {
      transactions_.push_back(t);
      return;
    }
    Transaction& open = transactions_[static_cast<std::size_t>(it->second)];
    open.day = std::min(open.day, t.day);
    open.net += t.net;
    open.gross += t.gross;
    open.line = row.line;
    require_finite_sum(open.gross, counts_.path + " line " + std::to_string(row.line),
                       "the sum of the amounts of transaction " + quote_text(field(row, layout_.transaction)));
  }

  /// The donor's index; a new donor remembers how its id was spelled. Trimming makes " 42"
  /// and "42" one id, so a second spelling is refused rather than merged silently.
  std::int32_t donor_index(std::string_view id, const CsvRow& row) {
    const std::string_view raw = row.fields[static_cast<std::size_t>(layout_.id)];
    const std::uint64_t spelling = raw.size() == id.size() ? 0 : std::hash<std::string_view>{}(raw) | 1;
    const std::int32_t i = state_.donor_ids.add(id);
    if (static_cast<std::size_t>(i) == state_.donors.size()) {
      state_.donors.emplace_back();
      spellings_.push_back({spelling, row.line});
      return i;
    }
    const Spelling& first = spellings_[static_cast<std::size_t>(i)];
    if (first.hash != spelling)
      throw InputError(counts_.path + " line " + std::to_string(row.line) + ", column " +
                       quote_text(columns_.name(static_cast<std::size_t>(layout_.id))) + ": the id " +
                       quote_text(raw) + " is spelled differently on line " + std::to_string(first.line) +
                       " (the same once surrounding spaces are trimmed); ids are kept as spelled, so "
                       "make the two spellings the same");
    return i;
  }

  void apply(const Transaction& t) {
    RfmSummary& s = state_.summary;
    Donor& d = state_.donors[static_cast<std::size_t>(t.donor)];
    const Day age = state_.as_of - t.day;  // >= 1
    ++s.transactions;
    d.total += t.net;
    if (age <= 365)
      d.amount_12m += t.net;
    else if (age <= 730)
      d.amount_prev_12m += t.net;
    if (!std::isfinite(d.total) || !std::isfinite(d.amount_12m) || !std::isfinite(d.amount_prev_12m))
      require_finite_sum(HUGE_VAL, counts_.path + " line " + std::to_string(t.line),
                         "the total of donor " + quote_text(state_.donor_ids.name(t.donor)));
    if (state_.on_transaction) {
      using Kind = CleanTransaction::Kind;
      state_.on_transaction({state_.donor_ids.name(t.donor), t.day, t.net,
                             is_zero(t) ? Kind::zero : t.net < 0 ? Kind::refund : Kind::gift});
    }
    if (is_zero(t)) {
      ++s.zero_transactions;
      ++d.zero_transactions;
      return;
    }
    if (t.net < 0) {
      ++s.refund_transactions;
      ++d.refunds;
      return;
    }
    ++s.gift_transactions;
    ++d.gifts;
    d.first_gift = std::min(d.first_gift, t.day);
    d.last_gift = std::max(d.last_gift, t.day);
    d.largest = std::max(d.largest, t.net);
    if (age <= 365) ++d.gifts_12m;
    if (t.campaign >= 0) {
      auto pos = std::lower_bound(d.campaigns.begin(), d.campaigns.end(), t.campaign);
      if (pos == d.campaigns.end() || *pos != t.campaign) d.campaigns.insert(pos, t.campaign);
    }
    if (t.channel >= 0) {
      auto pos = std::find_if(d.channels.begin(), d.channels.end(),
                              [&](const auto& c) { return c.first == t.channel; });
      if (pos == d.channels.end())
        d.channels.emplace_back(t.channel, 1);
      else
        ++pos->second;
    }
  }

  const RfmParams& params_;
  CsvReader& reader_;
  Columns columns_;
  GiftLayout layout_;
  RfmState& state_;
  FileCounts& counts_;
  BadRowPolicy policy_;
  DateFormat format_;
  char decimal_ = '.';
  bool typos_dropped_ = false;  // as-of from the data: rows on or after it are typos
  struct Spelling {
    std::uint64_t hash;  // 0: the id had no surrounding spaces
    std::int64_t line;
  };
  std::vector<Spelling> spellings_;  // per donor: how its id was first spelled
  HashSet64 seen_;
  StringIndex transaction_index_;
  std::vector<Transaction> transactions_;
  std::string key_;
  Day first_day_ = INT32_MAX;
};

/// The levels of `interner` as pool_levels (levels.hpp) takes them.
std::vector<std::string> level_names(const Interner& interner) {
  std::vector<std::string> names;
  for (std::int32_t l = 0; l < interner.size(); ++l) names.push_back(interner.name(l));
  return names;
}

/// Feature names from free text: snake_case, unique (a clash gets _2, _3, ...).
class NameSet {
 public:
  std::string add(const std::string& prefix, std::string_view level) {
    std::string base = snake_name(level);
    if (base.empty()) base = "blank";
    std::string name = prefix + base;
    for (int k = 2; used_.count(name) > 0; ++k) name = prefix + base + "_" + std::to_string(k);
    used_.emplace(name, 0);
    return name;
  }
  void reserve(const std::string& name) { used_.emplace(name, 0); }

 private:
  StringIndex used_;
};

struct Column {
  std::string name;
  FeatureKind kind;
  bool may_be_negative = false;
  std::string group;  // level columns: their group's name prefix
};

/// (a - b) / (|a| + |b|), 0 when both are 0. Amounts near the double range overflow the
/// plain form (inf / inf); then it is divided through by max(|a|, |b|) first.
double trend_ratio(double a, double b) {
  const double d = std::abs(a) + std::abs(b);
  if (!(d > 0.0)) return 0.0;
  if (std::isfinite(d)) return (a - b) / d;
  const double m = std::max(std::abs(a), std::abs(b));
  return (a / m - b / m) / (std::abs(a) / m + std::abs(b) / m);
}

const char* exclusion_reason(const Donor& d) {
  if (d.zero_transactions == 0) return "refunds_only";
  if (d.refunds == 0) return "zero_net_only";
  return "refunds_and_zero_net";
}

RawFeatures build_features(const RfmParams& params, RfmState& state, std::vector<ExcludedDonor>& excluded) {
  RfmSummary& s = state.summary;
  // Donors with a gift, ordered by id (numerically when every id is an integer).
  std::vector<std::int32_t> kept;
  bool numeric = true;
  std::vector<std::int32_t> left_out;
  bool numeric_left_out = true;
  for (std::int32_t i = 0; i < state.donor_ids.size(); ++i) {
    const bool integer = canonical_integer(state.donor_ids.name(i)).has_value();
    if (state.donors[static_cast<std::size_t>(i)].gifts == 0) {
      left_out.push_back(i);
      numeric_left_out = numeric_left_out && integer;
    } else {
      kept.push_back(i);
      numeric = numeric && integer;
    }
  }
  s.donors_seen = state.donor_ids.size();
  s.donors_without_gifts = s.donors_seen - static_cast<std::int64_t>(kept.size());
  if (kept.empty())
    throw InputError(s.gifts.path + ": no donor has a gift (a transaction with a positive amount) "
                     "after cleaning; check the amount and date columns and --as-of");
  // The matrix's rows and the excluded list in id order: numeric when every id is an integer.
  std::vector<std::int64_t> numeric_ids(static_cast<std::size_t>(state.donor_ids.size()), 0);
  for (std::int32_t i = 0; i < state.donor_ids.size(); ++i)
    if (const auto v = canonical_integer(state.donor_ids.name(i))) numeric_ids[static_cast<std::size_t>(i)] = *v;
  const auto order = [&](bool by_number) {
    return [&, by_number](std::int32_t a, std::int32_t b) {
      if (by_number) return numeric_ids[static_cast<std::size_t>(a)] < numeric_ids[static_cast<std::size_t>(b)];
      return state.donor_ids.name(a) < state.donor_ids.name(b);
    };
  };
  std::sort(kept.begin(), kept.end(), order(numeric));
  std::sort(left_out.begin(), left_out.end(), order(numeric_left_out));
  for (std::int32_t i : left_out) {
    const Donor& dn = state.donors[static_cast<std::size_t>(i)];
    excluded.push_back({state.donor_ids.name(i), exclusion_reason(dn), dn.refunds + dn.zero_transactions, dn.total});
  }

  const bool netting = params.negatives == Negatives::net;
  std::vector<Column> cols = {
      {"recency_days", FeatureKind::days},
      {"frequency_gifts", FeatureKind::count},
      {"monetary_total", FeatureKind::money, netting},
      {"monetary_mean", FeatureKind::money, netting},
      {"largest_gift", FeatureKind::money},
      {"tenure_days", FeatureKind::days},
      {"gifts_12m", FeatureKind::count},
      {"amount_12m", FeatureKind::money, netting},
      {"trend_12m_ratio", FeatureKind::fraction},
  };
  NameSet names;
  for (const auto& c : cols) names.reserve(c.name);
  const std::size_t n_base = cols.size();
  if (state.has_campaign) cols.push_back({"distinct_campaigns", FeatureKind::count});

  std::map<std::string, std::int64_t> levels_in_other;
  LevelMap channels;
  if (state.has_channel) {
    std::vector<std::int64_t> counts(static_cast<std::size_t>(state.channels.size()), 0);
    for (std::int32_t i : kept)
      for (const auto& [c, n] : state.donors[static_cast<std::size_t>(i)].channels) counts[static_cast<std::size_t>(c)] += n;
    const std::string prefix = "channel_share_";
    // Channel shares are fractions, not one-hot columns: only max_levels limits them.
    channels = pool_levels(level_names(state.channels), counts, LevelRules{params.max_levels, 0.0}, prefix,
                           params.known_columns);
    for (const auto& level : channels.names)
      cols.push_back({names.add(prefix, level), FeatureKind::fraction, false, prefix});
    if (channels.merged > 0) levels_in_other[prefix] = channels.merged;
  }
  const std::size_t events_at = cols.size();
  if (state.has_events) {
    for (const char* n : {"opens_12m", "clicks_12m", "events_attended_12m"}) {
      cols.push_back({n, FeatureKind::count});
      names.reserve(n);
    }
    cols.push_back({"days_since_engagement", FeatureKind::days});
    names.reserve("days_since_engagement");
    s.donors_without_engagement = 0;
  }
  std::vector<LevelMap> level_maps;
  std::vector<std::size_t> level_at;
  for (std::size_t a = 0; a < state.categorical.size(); ++a) {
    std::vector<std::int64_t> counts(static_cast<std::size_t>(state.levels[a].size()), 0);
    for (std::int32_t i : kept)
      if (const std::int32_t l = state.donor_levels[a][static_cast<std::size_t>(i)]; l >= 0)
        ++counts[static_cast<std::size_t>(l)];
    const std::string prefix = snake_name(state.categorical[a]) + "_";
    level_maps.push_back(pool_levels(level_names(state.levels[a]), counts,
                                     LevelRules{params.max_levels, params.min_level_share}, prefix, params.known_columns));
    s.attribute_levels_merged += level_maps.back().merged;
    if (level_maps.back().merged > 0) levels_in_other[prefix] += level_maps.back().merged;
    level_at.push_back(cols.size());
    for (const auto& level : level_maps.back().names)
      cols.push_back({names.add(prefix, level), FeatureKind::indicator, false, prefix});
  }

  RawFeatures f;
  const auto n = static_cast<std::int64_t>(kept.size());
  const auto d = static_cast<std::int64_t>(cols.size());
  f.values = Matrix<double>(n, d, 0.0);
  for (const auto& c : cols) {
    f.names.push_back(c.name);
    f.kinds.push_back(c.kind);
    f.may_be_negative.push_back(c.may_be_negative);
    f.groups.push_back(c.group);
  }
  f.levels_in_other = std::move(levels_in_other);
  const double as_of = state.as_of;
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int32_t i = kept[static_cast<std::size_t>(r)];
    const Donor& dn = state.donors[static_cast<std::size_t>(i)];
    double* row = f.values.row(r);
    const double a = dn.amount_12m, b = dn.amount_prev_12m;
    const double base[] = {as_of - dn.last_gift,
                           static_cast<double>(dn.gifts),
                           dn.total,
                           dn.total / dn.gifts,
                           dn.largest,
                           as_of - dn.first_gift,
                           static_cast<double>(dn.gifts_12m),
                           a,
                           trend_ratio(a, b)};
    std::copy(std::begin(base), std::end(base), row);
    std::size_t j = n_base;
    if (state.has_campaign) row[j++] = static_cast<double>(dn.campaigns.size());
    if (state.has_channel) {
      for (const auto& [c, k] : dn.channels)
        row[j + static_cast<std::size_t>(channels.column[static_cast<std::size_t>(c)])] +=
            static_cast<double>(k) / dn.gifts;
    }
    if (state.has_events) {
      double* e = row + events_at;
      e[0] = dn.opens_12m;
      e[1] = dn.clicks_12m;
      e[2] = dn.attended_12m;
      if (dn.last_engagement == INT32_MIN) {
        // Without engagement for as long as the events file and the donor's giving both
        // cover: a donor of 40 days has not been silent for the file's six years.
        e[3] = as_of - std::max(state.first_event, dn.first_gift);
        ++s.donors_without_engagement;
      } else {
        e[3] = as_of - dn.last_engagement;
      }
    }
    for (std::size_t a2 = 0; a2 < level_maps.size(); ++a2) {
      const std::int32_t l = state.donor_levels[a2][static_cast<std::size_t>(i)];
      if (l >= 0) row[level_at[a2] + static_cast<std::size_t>(level_maps[a2].column[static_cast<std::size_t>(l)])] = 1.0;
    }
  }
  if (!state.categorical.empty()) {
    s.donors_without_attributes = 0;
    for (std::int32_t i : kept)
      if (state.donor_levels[0][static_cast<std::size_t>(i)] < 0) ++s.donors_without_attributes;
  }
  for (std::int32_t i : kept) {
    if (numeric)
      f.ids.numeric.push_back(numeric_ids[static_cast<std::size_t>(i)]);
    else
      f.ids.text.push_back(state.donor_ids.name(i));
  }
  s.n_samples = n;
  s.n_features = d;
  return f;
}

/// A spreadsheet runs a cell starting with one of these as a formula (OWASP CSV injection).
bool formula_like(std::string_view s) {
  return !s.empty() && std::string_view("=+-@\t\r").find(s.front()) != std::string_view::npos;
}

std::string csv_field(const std::string& s) {
  std::string v = formula_like(s) ? "'" + s : s;
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void small_data_warnings(const RfmParams& params, RfmState& state) {
  RfmSummary& s = state.summary;
  // New records prepared like a training file are assigned to its segments, not clustered.
  const bool clustering = params.known_columns.empty();
  if (clustering && s.n_samples < kMinDonors)
    s.warnings.push_back("only " + std::to_string(s.n_samples) + " donors with gifts (fewer than " +
                         std::to_string(kMinDonors) + "): segments of so few donors are not meaningful");
  if (clustering && s.history_days < kMinHistoryDays)
    s.warnings.push_back("only " + std::to_string(s.history_days) +
                         " days of history (less than 2 years): recency, tenure and the 12-month "
                         "trend cannot separate donors well");
  if (!params.as_of) {
    const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
    if (state.as_of > today.time_since_epoch().count() + 1)
      s.warnings.push_back("the last transaction is dated after today, so as-of is " + s.as_of +
                           "; check for mistyped dates or pass --as-of");
  }
  if (params.strict && !s.warnings.empty())
    throw InputError(s.gifts.path + ": " + s.warnings.front() + "; add data or run without --strict");
}

}  // namespace

const std::vector<std::string>& id_column_names() {
  static const std::vector<std::string> names = {
      "donor_id", "CustomerID", "customer_id", "constituent_id", "supporter_id",
      "contact_id", "account_id", "member_id", "id"};
  return names;
}

void write_excluded_csv(const std::string& path, const std::vector<ExcludedDonor>& excluded) {
  io::TempOutput out(path);
  {
    std::ofstream f(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!f) throw RuntimeFailure(path + ": cannot write the temporary file " + out.temp_path());
    f << "id,reason,transactions,net_amount\n";
    char amount[64];
    for (const ExcludedDonor& e : excluded) {
      std::snprintf(amount, sizeof amount, "%.17g", e.net_amount);
      f << csv_field(e.id) << ',' << e.reason << ',' << e.transactions << ',' << amount << '\n';
    }
    f.flush();
    if (!f) throw RuntimeFailure(path + ": write failed (disk full?); free space and run again");
  }
  out.commit();
}

RfmSummary for_each_transaction(const RfmParams& params,
                                const std::function<void(const CleanTransaction&)>& visit) {
  SEGFORGE_ASSERT(params.as_of.has_value(), "for_each_transaction needs as-of");
  RfmState state;
  state.on_transaction = visit;
  {
    CsvReader reader(params.gifts_path, params.delimiter, params.decimal);
    GiftsPass gifts(params, reader, state);
    gifts.settle_dates();
    gifts.run();
  }
  require_rows_left(state.summary.gifts);
  return std::move(state.summary);
}

RfmResult compute_rfm(const RfmParams& params) {
  validate(LevelRules{params.max_levels, params.min_level_share});
  if (!params.categorical.empty() && params.attributes_path.empty())
    throw InputError("--categorical needs --attributes DONORS.csv to read the columns from");
  if (!params.attributes_path.empty() && params.categorical.empty())
    throw InputError("--attributes " + params.attributes_path +
                     ": name the columns to encode with --categorical COL[,COL...]");
  RfmState state;
  {
    CsvReader reader(params.gifts_path, params.delimiter, params.decimal);
    GiftsPass gifts(params, reader, state);
    gifts.settle_dates();
    gifts.run();
  }
  require_rows_left(state.summary.gifts);
  if (!params.events_path.empty()) {
    read_events(params, state);
    require_rows_left(*state.summary.events);
  }
  if (!params.attributes_path.empty()) {
    read_attributes(params, state);
    require_rows_left(*state.summary.attributes);
  }
  RfmResult result;
  result.features = build_features(params, state, result.excluded);
  small_data_warnings(params, state);
  result.summary = std::move(state.summary);
  result.as_of = std::chrono::sys_days{std::chrono::days{state.as_of}};
  return result;
}

}  // namespace segforge::prep
