#pragma once
// `segforge-prep rfm`: a gifts or transactions export (plus, optionally, an engagement export
// and a donor attributes table) to one row of features per donor.
//
// Definitions (as-of is the first day not covered; every "days" value is a whole number of
// calendar days, times of day are ignored):
//   transaction   the rows sharing a transaction id (InvoiceNo, ...) and a donor, or each row
//                 when there is no transaction column; its amount is the sum of its rows, its
//                 date the earliest of theirs
//   gift          a transaction whose amount is > 0; one < 0 is a refund, one = 0 neither
//   recency_days  as_of - date of the last gift
//   frequency_gifts       gifts
//   monetary_total        sum of all the donor's transactions (refunds reduce it); may be < 0
//   monetary_mean         monetary_total / frequency_gifts
//   largest_gift          largest gift amount
//   tenure_days           as_of - date of the first gift
//   gifts_12m, amount_12m gifts, and net amount of all transactions, dated in [as_of-365, as_of)
//   trend_12m_ratio       (a - b) / (|a| + |b|) with a = amount_12m and b = the net amount in
//                         [as_of-730, as_of-365); in [-1, 1], 0 when both are 0
//   distinct_campaigns    distinct non-empty campaign values among the gifts (with a campaign
//                         column)
//   channel_share_<name>  share of the donor's gifts given through each channel (the
//                         `max_levels` most common channels; the rest in channel_share_other)
//   opens_12m, clicks_12m, events_attended_12m   engagement events in [as_of-365, as_of)
//   days_since_engagement as_of - last engagement event; for a donor with none, as_of -
//                         max(first event in the events file, the donor's first gift): the
//                         span known to be without engagement, which a donor's giving bounds
//   <column>_<level>      one-hot attributes (the `max_levels` most common levels, then
//                         <column>_other; an empty value is the level "missing")
// Feature names name the quantity in original units; the transform applied is not in the
// name but in /scaler/transform (see transform.hpp).
//
// Donors with no gift (only refunds or zero transactions) have no recency or frequency and
// are left out of the matrix (counted, and listed in RfmResult::excluded with the reason, for
// `--excluded FILE.csv`). Rows are ordered by id (numeric ids numerically).
//
// Ids are kept exactly as the file spells them, trimmed only of surrounding ASCII spaces and
// tabs: "5.0" and "5" are two donors. Two spellings that trimming makes equal (" 42" and "42")
// are refused, as are ids with a NUL byte, a control character or bytes that are not UTF-8.
//
// Numbers: no feature is ever non-finite. A product or sum of amounts beyond the double range
// is an InputError naming the row (and the donor).
//
// Dates: when as-of is not given, gifts dated more than a year after every ordinary date (the
// DayCounts rule in src/prep/dates.hpp: after a gap of over 365 days holding at most 1% of the
// rows) are typos, dropped and counted (gifts_typo_date_rows); pass --as-of to keep them.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "segforge/prep/common.hpp"

namespace segforge::prep {

/// Column names in the gifts file; an empty name is recognised from the header (case, spaces
/// and underscores ignored): id donor_id / CustomerID / ..., date gift_date / InvoiceDate /
/// ..., amount amount / gift_amount / ... or else Quantity x UnitPrice (or Price),
/// transaction InvoiceNo / Invoice / transaction_id / order_id, campaign campaign / appeal,
/// channel channel / payment_method / source. "none" turns an optional column off.
struct GiftColumns {
  std::string id, date, amount, quantity, unit_price, transaction, campaign, channel;
};

/// Column names in the events file (empty: recognised): id as for gifts, date event_date /
/// date / timestamp / ..., type event_type / type / event / activity. Types open(ed),
/// email_open, click(ed), email_click, attend(ed), event_attended, attendance, ... are
/// counted; other types are ignored and counted.
struct EventColumns {
  std::string id, date, type;
};

struct RfmParams {
  std::string gifts_path;
  std::string events_path;      ///< "" for none
  std::string attributes_path;  ///< "" for none
  GiftColumns gift_columns;
  EventColumns event_columns;
  std::string attribute_id_column;       ///< "" to recognise
  std::vector<std::string> categorical;  ///< attribute columns to one-hot encode
  int max_levels = 10;                   ///< channels and categorical levels kept (rest: other)
  double min_level_share = 0.01;         ///< attribute levels rarer than this go to other (levels.hpp)
  /// Preparing new records like a training file (--scaler-from): the training's feature names.
  /// When not empty, a channel or attribute level is kept when its column name is among them,
  /// whatever its frequency, and every other level goes to <prefix>other (max_levels is not
  /// used); the small-data warnings, which are about clustering, are not given.
  std::vector<std::string> known_columns;
  /// strptime-style ("%d/%m/%Y"), for every input file; "" detects per file: ISO
  /// (2011-12-09), or day/month/year versus month/day/year from values above 12.
  std::string date_format;
  std::optional<std::chrono::sys_days> as_of;  ///< none: the day after the last transaction
  Negatives negatives = Negatives::net;
  BadRows on_bad_row = BadRows::error;
  bool drop_duplicates = true;
  /// The small-data warnings (fewer than 500 donors with gifts, less than 2 years of
  /// history) become InputErrors.
  bool strict = false;
  char delimiter = 0;  ///< 0: detect from the header (comma, tab, semicolon, pipe)
  char decimal = 0;    ///< '.' or ','; 0: ',' for ';'-separated files, else '.'
  /// Threads for the gifts file (0: OpenMP's default, OMP_NUM_THREADS or all cores). With more
  /// than one, an uncompressed regular file is read as byte ranges in parallel; the result is
  /// the one-thread result bit for bit (gzip files and for_each_transaction read serially).
  int threads = 0;
  /// Bytes per range of that parallel read (0: SEGFORGE_PREP_RANGE_BYTES, else 2 MiB). Internal:
  /// tests cut small files into many ranges with it; the result never depends on it.
  std::int64_t range_bytes = 0;
};

struct RfmSummary {
  FileCounts gifts;
  std::optional<FileCounts> events;
  std::optional<FileCounts> attributes;
  std::string date_format;  ///< the gifts file's date format, as detected or given
  std::string as_of;        ///< ISO date
  std::string as_of_source;  ///< "--as-of" or "day after the last transaction"
  std::string transaction_column;  ///< "" when each row is one transaction
  std::string amount_source;       ///< "amount" or "Quantity x UnitPrice"
  Negatives negatives = Negatives::net;
  std::int64_t negative_rows = 0;  ///< rows with amount < 0 (netted, or dropped)
  /// Gifts rows dated more than a year after the latest ordinary date (as-of from the data
  /// only), dropped as typos.
  std::int64_t typo_date_rows = 0;
  std::int64_t transactions = 0;
  std::int64_t gift_transactions = 0;
  std::int64_t refund_transactions = 0;
  std::int64_t zero_transactions = 0;
  std::int64_t donors_seen = 0;
  std::int64_t donors_without_gifts = 0;  ///< left out of the matrix
  std::int64_t n_samples = 0;
  std::int64_t n_features = 0;
  std::int64_t history_days = 0;  ///< as_of - the first transaction kept
  // Events.
  std::int64_t event_rows_unknown_donor = 0;
  std::int64_t event_rows_other_type = 0;
  std::vector<std::string> other_event_types;  ///< the first few ignored type names
  std::int64_t donors_without_engagement = 0;
  // Attributes.
  std::int64_t attribute_rows_unknown_donor = 0;
  std::int64_t donors_without_attributes = 0;
  std::int64_t attribute_levels_merged = 0;  ///< levels beyond max_levels, put in <col>_other
  std::vector<std::string> warnings;
};

/// A donor seen in the gifts file but left out of the matrix.
struct ExcludedDonor {
  std::string id;
  std::string reason;  ///< refunds_only | zero_net_only | refunds_and_zero_net
  std::int64_t transactions = 0;
  double net_amount = 0.0;  ///< sum of the donor's transactions
};

struct RfmResult {
  RawFeatures features;
  std::vector<ExcludedDonor> excluded;  ///< in id order, as the matrix rows
  RfmSummary summary;
  std::chrono::sys_days as_of;
};

/// Reads the gifts file (streamed; twice when as-of is not given, to find it), then the
/// events and attributes files, and returns the features in original units.
/// Memory: per donor, plus 8 to 16 bytes per gifts row for duplicate detection
/// (drop_duplicates) and one entry per transaction when rows are grouped into transactions.
/// Throws InputError (file, line, column, what to do) for a missing column, a bad row under
/// BadRows::error, dates whose order cannot be told, no donor left, or a small-data warning
/// under `strict`.
RfmResult compute_rfm(const RfmParams& params);

/// One transaction of the gifts file as compute_rfm counts it (after its cleaning: duplicates,
/// bad rows, unreadable or pre-1900 dates, --negatives, rows grouped by transaction id).
struct CleanTransaction {
  std::string_view donor_id;  ///< as spelled in the file (trimmed); valid during the call only
  std::int32_t day = 0;       ///< days since 1970-01-01 (the earliest of its rows)
  double amount = 0.0;        ///< net amount: > 0 a gift, < 0 a refund, 0 (to rounding) neither
  enum class Kind { gift, refund, zero } kind = Kind::gift;
};

/// Streams the transactions dated before `params.as_of` (which must be set) through the same
/// pass as compute_rfm, so that other commands (segforge kpis) count gifts exactly as the
/// features did. Events and attributes are not read. Returns the summary of the gifts file
/// (counts of rows read, used and dropped, and why). Throws as compute_rfm does.
RfmSummary for_each_transaction(const RfmParams& params,
                                const std::function<void(const CleanTransaction&)>& visit);

/// Writes `excluded` as CSV (id,reason,transactions,net_amount), through a temporary file
/// renamed into place. Ids that a spreadsheet would run as a formula (=, +, -, @, tab, CR
/// first) get a leading ' (OWASP); the raw ids are those of the features file.
void write_excluded_csv(const std::string& path, const std::vector<ExcludedDonor>& excluded);

/// The summary as ordered items for printing and for root attributes.
std::vector<SummaryItem> summary_items(const RfmSummary& summary);

}  // namespace segforge::prep
