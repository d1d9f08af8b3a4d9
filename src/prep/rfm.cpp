// `rfm`: the gifts pass, then events and attributes (rfm_extras.cpp), then one row of features
// per donor with a gift. Definitions: include/segforge/prep/rfm.hpp.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>

#include "../io/atomic_file.hpp"
#include "csv_reader.hpp"
#include "dates.hpp"
#include "fields.hpp"
#include "parallel.hpp"
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
[[noreturn]] void beyond_double_range(const std::string& where, const std::string& what) {
  throw InputError(where + ": " + what +
                   " is beyond the range of a double (about 1.8e308); the amounts cannot all be "
                   "real, so clean them");
}

void require_finite_sum(double sum, const std::string& where, const std::string& what) {
  if (!std::isfinite(sum)) beyond_double_range(where, what);
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

/// Counts of a stretch of the gifts file (the whole file, or one byte range); stretches add
/// up in file order.
struct Tally {
  FileCounts counts;
  std::int64_t negative_rows = 0;
  std::int64_t typo_date_rows = 0;
  Day first_day = INT32_MAX;

  void add(const Tally& later) {
    add_counts(counts, later.counts);
    negative_rows += later.negative_rows;
    typo_date_rows += later.typo_date_rows;
    first_day = std::min(first_day, later.first_day);
  }
  /// `later`'s counts after these: sums, and the first examples in file order.
  static void add_counts(FileCounts& into, const FileCounts& later) {
    into.rows_read += later.rows_read;
    into.bad_rows_skipped += later.bad_rows_skipped;
    into.duplicate_rows += later.duplicate_rows;
    into.missing_id_rows += later.missing_id_rows;
    into.unparseable_date_rows += later.unparseable_date_rows;
    into.pre_1900_date_rows += later.pre_1900_date_rows;
    into.after_as_of_rows += later.after_as_of_rows;
    into.rows_used += later.rows_used;
    for (const auto& e : later.examples) add_example(into, e);
  }
};

/// Transactions counted by kind (apply's summary counts).
struct TransactionCounts {
  std::int64_t transactions = 0, gifts = 0, refunds = 0, zeros = 0;
  void add(const TransactionCounts& o) {
    transactions += o.transactions;
    gifts += o.gifts;
    refunds += o.refunds;
    zeros += o.zeros;
  }
};

/// A transaction's part of a donor that does not depend on the order of the donor's
/// transactions (counts, first and last gift, largest, the campaign set, channel counts in
/// order of first use): what a byte range can build alone. `age` = as_of - t.day.
void count_transaction(const Transaction& t, Day age, Donor& d, TransactionCounts& c) {
  ++c.transactions;
  if (is_zero(t)) {
    ++c.zeros;
    ++d.zero_transactions;
    return;
  }
  if (t.net < 0) {
    ++c.refunds;
    ++d.refunds;
    return;
  }
  ++c.gifts;
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
    auto pos = std::find_if(d.channels.begin(), d.channels.end(), [&](const auto& c) { return c.first == t.channel; });
    if (pos == d.channels.end())
      d.channels.emplace_back(t.channel, 1);
    else
      ++pos->second;
  }
}

/// The donor's sums: floating-point, so the order of the transactions is part of the result
/// (byte ranges replay them in file order). False when one is no longer finite.
bool add_sums(Donor& d, double net, Day age) {
  d.total += net;
  if (age <= 365)
    d.amount_12m += net;
  else if (age <= 730)
    d.amount_prev_12m += net;
  return std::isfinite(d.total) && std::isfinite(d.amount_12m) && std::isfinite(d.amount_prev_12m);
}

/// `from`'s order-free part (count_transaction) after `into`'s, its campaign and channel
/// indices mapped through `campaigns` and `channels`.
void merge_donor(Donor& into, const Donor& from, const std::vector<std::int32_t>& campaigns,
                 const std::vector<std::int32_t>& channels) {
  into.gifts += from.gifts;
  into.refunds += from.refunds;
  into.zero_transactions += from.zero_transactions;
  into.gifts_12m += from.gifts_12m;
  into.first_gift = std::min(into.first_gift, from.first_gift);
  into.last_gift = std::max(into.last_gift, from.last_gift);
  into.largest = std::max(into.largest, from.largest);
  if (!from.campaigns.empty()) {
    std::vector<std::int32_t> mapped;
    mapped.reserve(from.campaigns.size());
    for (std::int32_t c : from.campaigns) mapped.push_back(campaigns[static_cast<std::size_t>(c)]);
    std::sort(mapped.begin(), mapped.end());
    std::vector<std::int32_t> both;
    both.reserve(into.campaigns.size() + mapped.size());
    std::set_union(into.campaigns.begin(), into.campaigns.end(), mapped.begin(), mapped.end(), std::back_inserter(both));
    into.campaigns = std::move(both);
  }
  for (const auto& [local, n] : from.channels) {
    const std::int32_t c = channels[static_cast<std::size_t>(local)];
    auto pos = std::find_if(into.channels.begin(), into.channels.end(), [&](const auto& e) { return e.first == c; });
    if (pos == into.channels.end())
      into.channels.emplace_back(c, n);
    else
      pos->second += n;
  }
}

/// A used row of a byte range: its donor (ungrouped) or transaction (grouped), in the
/// range's own indices.
struct GiftRecord {
  std::int32_t key = 0;
  Day day = 0;
  double net = 0.0;
  std::int64_t line = 0;
};

/// How a donor's id was first spelled (0: without surrounding spaces) and where.
struct Spelling {
  std::uint64_t hash;
  std::int64_t line;
};

/// What a byte range builds alone, in its own indices (first use within the range), merged
/// into the pass in file order (GiftsPass::merge). Grows with the range's donors and rows,
/// never with the file.
struct GiftsPartial {
  CsvBoundary begin, end;
  std::int64_t stop = 0;
  Tally tally;
  TransactionCounts transaction_counts;  // ungrouped
  Interner donors;
  std::vector<Spelling> spellings;     // per donor: the range's first spelling
  std::vector<std::string> raw_ids;    // per donor: that spelling, when not the trimmed id
  std::vector<Donor> partial;          // ungrouped: per donor, count_transaction's part
  Interner campaigns, channels;
  struct LocalTransaction {
    std::int32_t donor, campaign, channel;  // of its first row in the range
    std::string id;
  };
  StringIndex transaction_index;  // grouped: donor index bytes + transaction id
  std::vector<LocalTransaction> transactions;
  std::vector<GiftRecord> records;     // every used row, in file order
  HashSet64 seen;                      // the range's exact-duplicate set
  std::vector<std::uint64_t> firsts;   // row hashes first seen in the range, in order
  bool deduplicated = false;           // checked against the whole pass already (a re-read)
  std::exception_ptr error;            // the range stopped at this row error
  struct Conflict {                    // or at a second spelling of an id (worded at merge)
    std::int32_t donor;
    std::string raw;
    std::int64_t line;
  };
  std::optional<Conflict> conflict;

  /// Empty, for the range [begin, stop), keeping the buffers of the range before (a slot of
  /// the pipeline is reused: no page faults for each range).
  void reset(CsvBoundary range_begin, std::int64_t range_stop) {
    begin = range_begin;
    end = CsvBoundary{};
    stop = range_stop;
    tally = Tally{};
    transaction_counts = TransactionCounts{};
    donors.clear();
    spellings.clear();
    raw_ids.clear();
    partial.clear();
    campaigns.clear();
    channels.clear();
    transaction_index.clear();
    transactions.clear();
    records.clear();
    seen.clear();
    firsts.clear();
    deduplicated = false;
    error = nullptr;
    conflict.reset();
  }
};

/// The exact-duplicate rule inside one byte range: the range's own set; the hashes it saw
/// first go to `firsts`, checked against the earlier ranges at merge.
struct RangeDedup {
  HashSet64& set;
  std::vector<std::uint64_t>& firsts;
  void prefetch(std::uint64_t h) const { set.prefetch(h); }
  bool insert(std::uint64_t h) {
    if (!set.insert(h)) return false;
    firsts.push_back(h);
    return true;
  }
};

/// The exact rule for a range read again at merge: the pass's set, except for `mine` (the
/// hashes an earlier read of this range put there), which count only within the range.
struct ExactDedup {
  HashSet64& seen;
  const HashSet64* mine = nullptr;
  HashSet64 local;
  void prefetch(std::uint64_t h) const { seen.prefetch(h); }
  bool insert(std::uint64_t h) { return mine != nullptr && mine->contains(h) ? local.insert(h) : seen.insert(h); }
};

/// Partial of the as-of pass (settle_dates) over one byte range.
struct DatesPartial {
  CsvBoundary begin, end;
  std::int64_t stop = 0;
  FileCounts counts;
  DateDetector detector;
  DayCounts days;
  std::exception_ptr error;
};

/// 2 MiB: a range's own duplicate set (8 bytes a row, at most 70% full) then stays in the
/// core's L2 cache; with 8 MiB ranges its cache misses were a fifth of the CPU time.
constexpr std::int64_t kDefaultRangeBytes = std::int64_t{2} << 20;

/// Bytes per range: RfmParams::range_bytes, else SEGFORGE_PREP_RANGE_BYTES (for tests that
/// cut small files into many ranges), else 2 MiB. Results never depend on it.
std::int64_t range_bytes(const RfmParams& params) {
  if (params.range_bytes > 0) return params.range_bytes;
  if (const char* env = std::getenv("SEGFORGE_PREP_RANGE_BYTES"); env != nullptr && *env != '\0') {
    std::int64_t v = 0;
    const std::string_view text(env);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && end == text.data() + text.size() && v > 0) return v;
  }
  return kDefaultRangeBytes;
}

class GiftsPass {
 public:
  GiftsPass(const RfmParams& params, CsvReader& reader, RfmState& state)
      : params_(params),
        reader_(reader),
        columns_(reader.path(), reader.header()),
        layout_(gift_layout(columns_, params.gift_columns)),
        state_(state),
        policy_(params.on_bad_row, &tally_.counts),
        team_(resolve_threads(params.threads)) {
    tally_.counts.path = reader.path();
    state_.summary.gifts.path = reader.path();
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
    // Byte ranges on several threads when the file allows it: every result is the serial
    // reader's, bit for bit (merge). A visitor of each transaction in order
    // (for_each_transaction) keeps the serial reader.
    ranges_ = team_ > 1 && reader_.seekable() && !state_.on_transaction;
  }

  /// The date format and as-of: given, or found by a first pass over the file (stopping
  /// early when only the format was missing and it is settled).
  void settle_dates() {
    const std::string where = reader_.path() + ", column " + quote_text(date_name());
    const bool need_as_of = !params_.as_of.has_value();
    const bool need_format = params_.date_format.empty();
    if (!need_format) format_ = DateFormat::from_pattern(params_.date_format);
    if (need_as_of || need_format) {
      DatesPartial all;
      all.counts.path = reader_.path();
      if (ranges_ && need_as_of) {
        // The whole file is read: byte ranges, merged in file order. (For the format alone
        // the serial read stops at the first row that settles it.)
        scan_dates_in_ranges(all, need_format);
      } else {
        BadRowPolicy scan_policy(params_.on_bad_row, &all.counts);
        reader_.for_each([&](const CsvRow& row) {
          return observe_date(row, scan_policy, all, need_as_of, need_format);
        });
      }
      require_rows_left(all.counts);
      if (need_format) format_ = all.detector.format(where);
      if (need_as_of) {
        const DayCounts::Split split = (need_format ? all.detector.days(where) : all.days).split();
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
    if (ranges_) {
      run_ranges();
    } else {
      if (params_.drop_duplicates) seen_.reserve(static_cast<std::size_t>(reader_.estimated_rows()));
      reader_.for_each([&](const CsvRow& row) {
        add(row);
        return true;
      });
    }
    // Grouped transactions are complete only at the end of the file; fold them in the order
    // they first appeared, so sums do not depend on hashing.
    for (const Transaction& t : transactions_) apply(t);
    transactions_.clear();
    transactions_.shrink_to_fit();
    RfmSummary& s = state_.summary;
    const std::string path = s.gifts.path;
    s.gifts = std::move(tally_.counts);
    s.gifts.path = path;
    s.negative_rows += tally_.negative_rows;
    s.typo_date_rows += tally_.typo_date_rows;
    s.transactions += transaction_counts_.transactions;
    s.gift_transactions += transaction_counts_.gifts;
    s.refund_transactions += transaction_counts_.refunds;
    s.zero_transactions += transaction_counts_.zeros;
    s.history_days = tally_.first_day == INT32_MAX ? 0 : state_.as_of - tally_.first_day;
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

  /// settle_dates' look at one row; false once the format alone was wanted and is settled.
  bool observe_date(const CsvRow& row, BadRowPolicy& policy, DatesPartial& out, bool need_as_of,
                    bool need_format) const {
    ++out.counts.rows_read;
    GiftRow g;
    if (!read_row(row, policy, g)) return true;
    if (g.id.empty()) return true;
    if (params_.negatives == Negatives::drop && g.amount < 0) return true;
    if (need_format) {
      out.detector.observe(g.date, row.line);
      return need_as_of || !out.detector.decided();
    }
    if (const auto d = format_.parse(g.date); d && *d >= kDay1900) out.days.add(*d);
    return true;
  }

  void scan_dates_in_ranges(DatesPartial& all, bool need_format) {
    CsvBoundary expected{};
    bool first = true;
    const auto parse = [&](DatesPartial& part, CsvBoundary begin) {
      part.begin = begin;
      part.counts = FileCounts{};
      part.counts.path = reader_.path();
      part.detector = DateDetector{};
      part.days = DayCounts{};
      part.error = nullptr;
      BadRowPolicy policy(params_.on_bad_row, &part.counts);
      try {
        part.end = reader_.scan_range(begin, part.stop, [&](const CsvRow& row) {
          return observe_date(row, policy, part, true, need_format);
        });
      } catch (...) {
        part.error = std::current_exception();
      }
    };
    over_ranges<DatesPartial>(parse, [&](DatesPartial& part) {
      // A range starts where the one before ended, else it is read again from there.
      if (!first && !(part.begin == expected)) parse(part, expected);
      first = false;
      if (part.error) std::rethrow_exception(part.error);
      Tally::add_counts(all.counts, part.counts);
      if (need_format)
        all.detector.merge_later(part.detector);
      else
        all.days.merge(part.days);
      expected = part.end;
    });
  }

  /// Runs parse(partial, begin) over the byte ranges of the file on the team and merge(partial)
  /// on each in file order (parallel.hpp's ordered pipeline: a few ranges in flight).
  template <class Partial, class Parse, class Merge>
  void over_ranges(Parse parse, Merge merge) {
    // The as-of pass and the features pass cut the file alike: split once.
    if (starts_.empty())
      starts_ = reader_.split(range_bytes(params_), [&](std::int64_t n, const std::function<void(std::int64_t)>& body) {
        parallel_for(team_, n, body);
      });
    const std::vector<CsvBoundary>& starts = starts_;
    const auto n = static_cast<std::int64_t>(starts.size()) - 1;
    const std::int64_t window = 2 * static_cast<std::int64_t>(team_) + 1;
    std::vector<Partial> slots(static_cast<std::size_t>(window));
    ordered_pipeline(
        team_, n, window,
        [&](std::int64_t i) {
          Partial& part = slots[static_cast<std::size_t>(i % window)];
          part.stop = starts[static_cast<std::size_t>(i) + 1].offset;
          parse(part, starts[static_cast<std::size_t>(i)]);
        },
        [&](std::int64_t i) { merge(slots[static_cast<std::size_t>(i % window)]); });
  }

  /// The rules, in their documented order, for one row: counted in `tally`, bad rows through
  /// `policy`, exact duplicates through `dedup`. True, with `u` filled, for a row to use.
  template <class Dedup>
  bool clean(const CsvRow& row, Tally& tally, BadRowPolicy& policy, Dedup& dedup, GiftRow& g, Day& day_out) const {
    FileCounts& counts = tally.counts;
    ++counts.rows_read;
    if (!policy.field_count_ok(row, layout_.n_fields)) return false;
    // The duplicate set is a cache miss per row: start loading the slot, read the id and the
    // date (no side effects) meanwhile, then apply the rules in their documented order.
    std::uint64_t hash = 0;
    if (params_.drop_duplicates) {
      hash = row.hash();
      dedup.prefetch(hash);
    }
    g.id = id_field(row, layout_.id, columns_);
    g.date = row.fields[static_cast<std::size_t>(layout_.date)];
    const std::optional<Day> day = format_.parse(g.date);
    if (params_.drop_duplicates && !dedup.insert(hash)) {
      ++counts.duplicate_rows;
      return false;
    }
    if (g.id.empty()) {
      ++counts.missing_id_rows;
      return false;
    }
    if (!amount_of(row, layout_, columns_, policy, decimal_, g.amount)) return false;
    if (!day) {
      ++counts.unparseable_date_rows;
      add_example(counts, counts.path + " line " + std::to_string(row.line) + ", column " +
                              quote_text(date_name()) + ": " + quote_text(trim(g.date)) +
                              " is not a date in the format " + format_.describe() + " (dropped)");
      return false;
    }
    if (*day < kDay1900) {
      ++counts.pre_1900_date_rows;
      return false;
    }
    if (*day >= state_.as_of) {
      // With as-of from the data, every later date lies beyond the typo gap (settle_dates).
      if (typos_dropped_) {
        ++tally.typo_date_rows;
        add_example(counts, counts.path + " line " + std::to_string(row.line) + ", column " +
                                quote_text(date_name()) + ": " + quote_text(trim(g.date)) +
                                " is more than a year after every other date (taken as a typo, dropped)");
      } else {
        ++counts.after_as_of_rows;
      }
      return false;
    }
    if (g.amount < 0) {
      ++tally.negative_rows;
      if (params_.negatives == Negatives::drop) return false;
    }
    ++counts.rows_used;
    tally.first_day = std::min(tally.first_day, *day);
    day_out = *day;
    return true;
  }

  std::string_view field(const CsvRow& row, int column) const {
    return column < 0 ? std::string_view() : trim(row.fields[static_cast<std::size_t>(column)]);
  }

  /// How `raw` (the id field) is spelled: 0 when it has no surrounding spaces (== `id`).
  static std::uint64_t spelling_of(std::string_view raw, std::string_view id) {
    return raw.size() == id.size() ? 0 : std::hash<std::string_view>{}(raw) | 1;
  }

  [[noreturn]] void spelling_error(std::int64_t line, std::string_view raw, std::int64_t first_line) const {
    throw InputError(reader_.path() + " line " + std::to_string(line) + ", column " +
                     quote_text(columns_.name(static_cast<std::size_t>(layout_.id))) + ": the id " +
                     quote_text(raw) + " is spelled differently on line " + std::to_string(first_line) +
                     " (the same once surrounding spaces are trimmed); ids are kept as spelled, so "
                     "make the two spellings the same");
  }

  /// The gift row as a transaction of `donor`, its campaign and channel interned in the given
  /// tables (the pass's own, or a range's in the parallel reader).
  Transaction transaction_of(const CsvRow& row, const GiftRow& g, Day day, std::int32_t donor,
                             Interner& campaigns, Interner& channels) const {
    Transaction t;
    t.donor = donor;
    t.line = row.line;
    t.day = day;
    t.net = g.amount;
    t.gross = std::abs(g.amount);
    if (state_.has_campaign)
      if (const std::string_view c = field(row, layout_.campaign); !c.empty()) t.campaign = campaigns.add(c);
    if (state_.has_channel) {
      const std::string_view c = field(row, layout_.channel);
      t.channel = channels.add(c.empty() ? std::string_view("unknown") : c);
    }
    return t;
  }

  /// The serial reader's row.
  void add(const CsvRow& row) {
    GiftRow g;
    Day day = 0;
    if (!clean(row, tally_, policy_, seen_, g, day)) return;
    Transaction t = transaction_of(row, g, day, donor_index(g.id, row), state_.campaigns, state_.channels);
    if (layout_.transaction < 0) {
      apply(t);
      return;
    }
    add_to_transaction(t, field(row, layout_.transaction));
  }

  /// Groups a row (as transaction `t`) into its transaction: a new one, or one seen before.
  void add_to_transaction(const Transaction& t, std::string_view id) {
    // Key: the donor's index (4 bytes) then the transaction id.
    key_.assign(reinterpret_cast<const char*>(&t.donor), sizeof t.donor);
    key_.append(id);
    auto [it, fresh] = transaction_index_.try_emplace(key_, static_cast<std::int32_t>(transactions_.size()));
    if (fresh) {
      transactions_.push_back(t);
      return;
    }
    fold_into(static_cast<std::size_t>(it->second), t, id);
  }

  void fold_into(std::size_t index, const Transaction& t, std::string_view id) {
    Transaction& open = transactions_[index];
    open.day = std::min(open.day, t.day);
    open.net += t.net;
    open.gross += t.gross;
    open.line = t.line;
    require_finite_sum(open.gross, reader_.path() + " line " + std::to_string(t.line),
                       "the sum of the amounts of transaction " + quote_text(id));
  }

  /// The donor's index; a new donor remembers how its id was spelled. Trimming makes " 42"
  /// and "42" one id, so a second spelling is refused rather than merged silently.
  std::int32_t donor_index(std::string_view id, const CsvRow& row) {
    const std::string_view raw = row.fields[static_cast<std::size_t>(layout_.id)];
    const std::uint64_t spelling = spelling_of(raw, id);
    const std::int32_t i = state_.donor_ids.add(id);
    if (static_cast<std::size_t>(i) == state_.donors.size()) {
      state_.donors.emplace_back();
      spellings_.push_back({spelling, row.line});
      return i;
    }
    const Spelling& first = spellings_[static_cast<std::size_t>(i)];
    if (first.hash != spelling) spelling_error(row.line, raw, first.line);
    return i;
  }

  void apply(const Transaction& t) {
    Donor& d = state_.donors[static_cast<std::size_t>(t.donor)];
    const Day age = state_.as_of - t.day;  // >= 1
    if (!add_sums(d, t.net, age)) total_overflow(t.donor, t.line);
    if (state_.on_transaction) {
      using Kind = CleanTransaction::Kind;
      state_.on_transaction({state_.donor_ids.name(t.donor), t.day, t.net,
                             is_zero(t) ? Kind::zero : t.net < 0 ? Kind::refund : Kind::gift});
    }
    count_transaction(t, age, d, transaction_counts_);
  }

  [[noreturn]] void total_overflow(std::int32_t donor, std::int64_t line) const {
    beyond_double_range(reader_.path() + " line " + std::to_string(line),
                        "the total of donor " + quote_text(state_.donor_ids.name(donor)));
  }

  // ---- byte ranges ---------------------------------------------------------------------------

  /// Reads `part`'s range from `begin` with the duplicate rule `dedup`.
  template <class Dedup>
  void parse_range(GiftsPartial& part, CsvBoundary begin, Dedup& dedup) const {
    part.reset(begin, part.stop);
    part.tally.counts.path = reader_.path();
    BadRowPolicy policy(params_.on_bad_row, &part.tally.counts);
    const bool grouped = layout_.transaction >= 0;
    std::string key;
    try {
      part.end = reader_.scan_range(begin, part.stop, [&](const CsvRow& row) {
        GiftRow g;
        Day day = 0;
        if (!clean(row, part.tally, policy, dedup, g, day)) return true;
        const std::string_view raw = row.fields[static_cast<std::size_t>(layout_.id)];
        const std::uint64_t spelling = spelling_of(raw, g.id);
        const std::int32_t donor = part.donors.add(g.id);
        if (static_cast<std::size_t>(donor) == part.spellings.size()) {
          part.spellings.push_back({spelling, row.line});
          part.raw_ids.emplace_back(spelling == 0 ? std::string_view() : raw);
          if (!grouped) part.partial.emplace_back();
        } else if (part.spellings[static_cast<std::size_t>(donor)].hash != spelling) {
          part.conflict = GiftsPartial::Conflict{donor, std::string(raw), row.line};
          return false;
        }
        Transaction t = transaction_of(row, g, day, donor, part.campaigns, part.channels);
        if (!grouped) {
          part.records.push_back({donor, t.day, t.net, t.line});
          count_transaction(t, state_.as_of - t.day, part.partial[static_cast<std::size_t>(donor)],
                            part.transaction_counts);
          return true;
        }
        const std::string_view id = field(row, layout_.transaction);
        key.assign(reinterpret_cast<const char*>(&donor), sizeof donor);
        key.append(id);
        auto [it, fresh] = part.transaction_index.try_emplace(key, static_cast<std::int32_t>(part.transactions.size()));
        if (fresh) part.transactions.push_back({donor, t.campaign, t.channel, std::string(id)});
        part.records.push_back({it->second, t.day, t.net, t.line});
        return true;
      });
    } catch (...) {
      part.error = std::current_exception();
    }
  }

  void run_ranges() {
    if (params_.drop_duplicates) seen_.reserve(static_cast<std::size_t>(reader_.estimated_rows()));
    const double rows_per_byte =
        static_cast<double>(reader_.estimated_rows()) / static_cast<double>(std::max<std::int64_t>(reader_.size(), 1));
    const auto range_rows = static_cast<std::size_t>(rows_per_byte * static_cast<double>(range_bytes(params_))) + 16;
    expected_ = CsvBoundary{-1, 0};
    over_ranges<GiftsPartial>(
        [&](GiftsPartial& part, CsvBoundary begin) {
          if (params_.drop_duplicates) {
            part.seen.reserve(range_rows);
            part.firsts.reserve(range_rows);
          }
          part.records.reserve(range_rows);
          RangeDedup dedup{part.seen, part.firsts};
          parse_range(part, begin, dedup);
        },
        [&](GiftsPartial& part) { merge(part); });
  }

  /// Reads `part`'s range again at merge, with the exact duplicate rule of the pass: from
  /// `begin` (where the range before ended), `mine` as for ExactDedup.
  void reread(GiftsPartial& part, CsvBoundary begin, const HashSet64* mine) {
    ExactDedup dedup{seen_, mine, {}};
    parse_range(part, begin, dedup);
    part.deduplicated = true;
  }

  /// Folds range `part` into the pass, as if the serial reader had read its rows after the
  /// ranges before: the same donors, transactions, sums (replayed in file order), counts,
  /// examples and the same first error.
  void merge(GiftsPartial& part) {
    // 1. A range starts where the one before ended (the split's quote parity can be fooled);
    //    else it is read again from there.
    if (expected_.offset >= 0 && !(part.begin == expected_)) reread(part, expected_, nullptr);
    // 2. Exact duplicates of rows in earlier ranges: the range saw its rows as new. Rare; then
    //    the range is read again with the pass's set (its rows' outcomes may all change).
    if (params_.drop_duplicates && !part.deduplicated) {
      std::vector<std::uint64_t> repeated;
      const std::vector<std::uint64_t>& firsts = part.firsts;
      constexpr std::size_t kAhead = 16;
      for (std::size_t i = 0; i < firsts.size(); ++i) {
        if (i + kAhead < firsts.size()) seen_.prefetch(firsts[i + kAhead]);
        if (!seen_.insert(firsts[i])) repeated.push_back(firsts[i]);
      }
      if (!repeated.empty()) {
        HashSet64 again, mine;
        for (std::uint64_t h : repeated) again.insert(h);
        for (std::uint64_t h : firsts)
          if (!again.contains(h)) mine.insert(h);
        reread(part, part.begin, &mine);
      }
    }
    // 3. The range's campaigns and channels, in order of first use, after the pass's.
    std::vector<std::int32_t> campaigns, channels;
    for (std::int32_t c = 0; c < part.campaigns.size(); ++c)
      campaigns.push_back(state_.campaigns.add(part.campaigns.name(c), part.campaigns.hash(c)));
    for (std::int32_t c = 0; c < part.channels.size(); ++c)
      channels.push_back(state_.channels.add(part.channels.name(c), part.channels.hash(c)));
    // 4. Its rows in file order: each donor joins the pass at its first row (new donors in
    //    the serial order, spellings checked there), sums and transactions fold in order.
    std::vector<std::int32_t> donor(static_cast<std::size_t>(part.donors.size()), -1);
    // Donors are numbered by their first row in the range, the order they join in: the pass's
    // slot of the one a few ahead is loaded meanwhile (a cache miss per new donor otherwise).
    constexpr std::int32_t kAhead = 8;
    for (std::int32_t l = 0; l < std::min(kAhead, part.donors.size()); ++l) state_.donor_ids.prefetch(part.donors.hash(l));
    const auto map_donor = [&](std::int32_t local, std::int64_t line) {
      std::int32_t& g = donor[static_cast<std::size_t>(local)];
      if (g >= 0) return g;
      if (local + kAhead < part.donors.size()) state_.donor_ids.prefetch(part.donors.hash(local + kAhead));
      const Spelling& spelled = part.spellings[static_cast<std::size_t>(local)];
      g = state_.donor_ids.add(part.donors.name(local), part.donors.hash(local));
      if (static_cast<std::size_t>(g) == state_.donors.size()) {
        state_.donors.emplace_back();
        spellings_.push_back(spelled);
      } else if (spellings_[static_cast<std::size_t>(g)].hash != spelled.hash) {
        const std::string& raw = part.raw_ids[static_cast<std::size_t>(local)];
        spelling_error(line, raw.empty() ? part.donors.name(local) : raw, spellings_[static_cast<std::size_t>(g)].line);
      }
      return g;
    };
    if (layout_.transaction < 0) {
      for (const GiftRecord& r : part.records) {
        const std::int32_t g = map_donor(r.key, r.line);
        if (!add_sums(state_.donors[static_cast<std::size_t>(g)], r.net, state_.as_of - r.day)) total_overflow(g, r.line);
      }
    } else {
      std::vector<std::int32_t> transaction(part.transactions.size(), -1);
      for (const GiftRecord& r : part.records) {
        const GiftsPartial::LocalTransaction& lt = part.transactions[static_cast<std::size_t>(r.key)];
        Transaction t;
        t.donor = map_donor(lt.donor, r.line);
        t.line = r.line;
        t.day = r.day;
        t.net = r.net;
        t.gross = std::abs(r.net);
        std::int32_t& at = transaction[static_cast<std::size_t>(r.key)];
        if (at >= 0) {
          fold_into(static_cast<std::size_t>(at), t, lt.id);
          continue;
        }
        t.campaign = lt.campaign < 0 ? -1 : campaigns[static_cast<std::size_t>(lt.campaign)];
        t.channel = lt.channel < 0 ? -1 : channels[static_cast<std::size_t>(lt.channel)];
        add_to_transaction(t, lt.id);
        at = transaction_index_.find(key_)->second;
      }
    }
    // 5. The range's own error, after its rows (it stopped there).
    if (part.conflict) {
      const std::int32_t g = donor[static_cast<std::size_t>(part.conflict->donor)];
      SEGFORGE_ASSERT(g >= 0, "a donor with a second spelling has a first row in its range");
      spelling_error(part.conflict->line, part.conflict->raw, spellings_[static_cast<std::size_t>(g)].line);
    }
    if (part.error) std::rethrow_exception(part.error);
    // 6. Counts, and the donors' order-free parts.
    tally_.add(part.tally);
    transaction_counts_.add(part.transaction_counts);
    for (std::size_t l = 0; l < part.partial.size(); ++l)
      merge_donor(state_.donors[static_cast<std::size_t>(donor[l])], part.partial[l], campaigns, channels);
    expected_ = part.end;
  }

  const RfmParams& params_;
  CsvReader& reader_;
  Columns columns_;
  GiftLayout layout_;
  RfmState& state_;
  Tally tally_;
  BadRowPolicy policy_;
  int team_ = 1;
  bool ranges_ = false;
  TransactionCounts transaction_counts_;
  DateFormat format_;
  char decimal_ = '.';
  bool typos_dropped_ = false;  // as-of from the data: rows on or after it are typos
  std::vector<Spelling> spellings_;  // per donor: how its id was first spelled
  HashSet64 seen_;
  StringIndex transaction_index_;
  std::vector<Transaction> transactions_;
  std::string key_;
  CsvBoundary expected_{-1, 0};  // where the next range must start (byte ranges)
  std::vector<CsvBoundary> starts_;  // the ranges' likely starts (CsvReader::split)
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
