#pragma once
// `segforge kpis`: do the segments differ on what the organisation cares about? From the CRM
// export that `segforge-prep rfm` read and the segments of its donors as of a date, per segment
// over a window after that date: retention, average gift, revenue per member; with a campaign
// file, the response rate of each arm and the lift of treated over control with a 95% interval.
// Formulas: docs/kpis.md.
//
// The export is read by the same pass as `segforge-prep rfm` (prep::for_each_transaction): the
// same cleaning (duplicates, bad rows, refunds, transactions grouped by id), so a gift here is a
// gift there. The window is the days [as_of, as_of + window_days).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "segforge/prep/rfm.hpp"

namespace segforge {

/// A two-sided interval.
struct Interval {
  double low = 0.0, high = 0.0;
};

/// z of a two-sided 95% interval: the 0.975 quantile of the standard normal.
constexpr double kZ95 = 1.959963984540054;

/// Wilson's score interval for the proportion x/n without continuity correction (Newcombe 1998,
/// method 3): the roots in p of |x/n - p| = z sqrt(p(1-p)/n). Needs 0 <= x <= n, n > 0.
Interval wilson_interval(std::int64_t x, std::int64_t n, double z = kZ95);

/// Newcombe's hybrid score interval for the difference p1 - p2 of two independent proportions
/// (Newcombe 1998, "Interval estimation for the difference between independent proportions",
/// method 10): with (l_i, u_i) the Wilson intervals of p_i = x_i/n_i,
///   [p1 - p2 - sqrt((p1 - l1)^2 + (u2 - p2)^2),  p1 - p2 + sqrt((u1 - p1)^2 + (p2 - l2)^2)].
/// Needs n1, n2 > 0.
Interval newcombe_difference(std::int64_t x1, std::int64_t n1, std::int64_t x2, std::int64_t n2,
                             double z = kZ95);

/// Column names in the campaign file; empty: recognised from the header (case, spaces and '_'
/// ignored). id as in the gifts file; campaign campaign / campaign_id / appeal (optional: without
/// it the file is one campaign); arm arm / group / treatment / variant; responded responded /
/// response / converted; amount amount / response_amount / revenue (optional).
struct CampaignColumns {
  std::string id, campaign, arm, responded, amount;
};

struct KpiParams {
  /// The export and how to read it, as for `segforge-prep rfm` (gifts_path, gift_columns,
  /// date_format, negatives, on_bad_row, drop_duplicates, delimiter, decimal). Its as_of is
  /// ignored: the pass reads up to the end of the window. Events and attributes are not read.
  prep::RfmParams gifts;
  /// labels.h5 with /ids (segforge fit --labels, predict, refresh) or segments.csv
  /// (id,segment,segment_name,...).
  std::string labels_path;
  /// Segment names for labels.h5 (from the model); segments.csv carries its own. A segment
  /// without a name is "segment N".
  std::vector<std::string> segment_names;
  std::chrono::sys_days as_of;  ///< the first day of the window: the labels' as-of
  int window_days = 365;
  std::string campaign_path;  ///< "" for none
  CampaignColumns campaign_columns;
};

/// The window's KPIs of one segment (or of all members).
struct SegmentKpis {
  int segment = 0;  ///< -1 for the row of all members
  std::string name;
  std::int64_t members = 0;
  std::int64_t retained = 0;  ///< members with at least one gift in the window
  double retention = 0.0;     ///< retained / members
  std::int64_t gifts = 0;     ///< gifts in the window
  double gift_amount = 0.0;   ///< sum of those gifts
  double average_gift = 0.0;  ///< gift_amount / gifts; NaN when no gift
  double net_revenue = 0.0;   ///< every transaction in the window, refunds subtracted
  double revenue_per_member = 0.0;  ///< net_revenue / members
};

/// One arm (treated or control) of a campaign within a segment.
struct ArmKpis {
  std::int64_t members = 0;     ///< labelled members in this arm
  std::int64_t responders = 0;  ///< of them, responded
  double response_rate = 0.0;   ///< responders / members; NaN when no member
  double amount = 0.0;          ///< sum of the campaign file's amounts
  double amount_per_member = 0.0;  ///< amount / members; NaN when no member
};

struct CampaignSegmentKpis {
  int segment = 0;  ///< -1 for all members
  std::string name;
  ArmKpis treated, control;
  /// Both arms have members: lift = treated rate - control rate, with Newcombe's interval.
  bool has_lift = false;
  double lift = 0.0;
  Interval lift_interval;
  double amount_lift = 0.0;  ///< treated - control amount per member
};

struct CampaignKpis {
  std::string campaign;  ///< "" when the file has no campaign column
  std::vector<CampaignSegmentKpis> segments;
  CampaignSegmentKpis overall;
  std::int64_t rows = 0;
  std::int64_t rows_unlabelled = 0;  ///< rows whose id is not in the labels (ignored)
};

struct KpiResult {
  std::string as_of;       ///< ISO date, the first day of the window
  std::string window_end;  ///< ISO date, the last day of the window
  int window_days = 0;
  std::string last_transaction;  ///< ISO date of the latest transaction read (before the window's end)
  std::int64_t n_members = 0;    ///< labelled ids
  std::int64_t members_not_in_export = 0;  ///< labelled ids with no transaction before as-of
  std::string first_missing_id;            ///< the first of those, for the warning
  std::int64_t window_transactions = 0;    ///< every donor's transactions in the window
  std::int64_t window_donors_unlabelled = 0;  ///< donors with a gift in the window, not labelled
  std::vector<SegmentKpis> segments;  ///< by segment index
  SegmentKpis overall;
  std::vector<CampaignKpis> campaigns;  ///< in the order they first appear in the file
  prep::RfmSummary gifts_summary;
  std::vector<std::string> warnings;
};

/// Reads the labels, the export (one pass) and the campaign file. InputError (file, line or
/// dataset, what to do) for labels without ids or with an id twice, labels none of whose ids
/// has a transaction before as-of (labels of other donors), a window without any transaction,
/// window_days < 1, and a campaign file with a bad row, an id twice in one campaign, or a
/// campaign without a treated or a control row.
KpiResult compute_kpis(const KpiParams& params);

}  // namespace segforge
