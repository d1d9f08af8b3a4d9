// segforge-prep rfm on small hand-written CSVs: each cleaning rule, each feature computed by
// hand, the CSV forms (BOM, CRLF, CR-only, quotes, delimiters), date forms, events and
// attributes. The library is called directly; test_prep_errors.cpp covers the command line.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "../src/prep/dates.hpp"  // internal: the date reader is tested on its own too
#include "segforge/error.hpp"
#include "segforge/prep.hpp"
#include "test_prep_support.hpp"

using namespace segforge;
using namespace segforge::prep;
using segforge::test::PrepDir;

namespace {

std::chrono::sys_days day(int y, unsigned m, unsigned d) {
  return std::chrono::sys_days{std::chrono::year{y} / m / d};
}

/// Runs compute_rfm on `gifts` (and `events`, `attributes` when not empty).
RfmResult rfm(const std::string& gifts, const std::function<void(RfmParams&)>& adjust = {},
              const std::string& events = "", const std::string& attributes = "") {
  PrepDir dir;
  RfmParams p;
  p.gifts_path = dir.write("gifts.csv", gifts);
  if (!events.empty()) p.events_path = dir.write("events.csv", events);
  if (!attributes.empty()) p.attributes_path = dir.write("attributes.csv", attributes);
  if (adjust) adjust(p);
  return compute_rfm(p);
}

void as_of_2021(RfmParams& p) { p.as_of = day(2021, 1, 1); }

/// The value of feature `name` for the donor with numeric id `id`.
double feature(const RfmResult& r, std::int64_t id, const std::string& name) {
  const auto& f = r.features;
  const auto col = std::find(f.names.begin(), f.names.end(), name);
  if (col == f.names.end()) throw std::runtime_error("no feature " + name);
  const auto row = std::find(f.ids.numeric.begin(), f.ids.numeric.end(), id);
  if (row == f.ids.numeric.end()) throw std::runtime_error("no donor " + std::to_string(id));
  return f.values(row - f.ids.numeric.begin(), col - f.names.begin());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

// 2021-01-01 is as-of. Donor 1: ages 1, 365 (last day inside the 12 months) and 366 (first
// day of the 12 before). Donor 2: one gift at age 730 and an older refund. Donor 3: a refund
// only, so no gift: left out.
const std::string kGifts =
    "donor_id,gift_date,amount,campaign,channel\n"
    "1,2020-12-31,10,spring,online\n"
    "1,2020-01-02,20,spring,mail\n"
    "1,2020-01-01,30,autumn,mail\n"
    "2,2019-01-02,100,,\n"
    "2,2019-01-01,-40,,\n"
    "3,2020-06-01,-5,,\n";

TEST(PrepRfm, FeaturesByHand) {
  const RfmResult r = rfm(kGifts, as_of_2021);
  const std::vector<std::string> names = {
      "recency_days", "frequency_gifts", "monetary_total", "monetary_mean", "largest_gift",
      "tenure_days", "gifts_12m", "amount_12m", "trend_12m_ratio", "distinct_campaigns",
      "channel_share_mail", "channel_share_online", "channel_share_unknown"};
  EXPECT_EQ(r.features.names, names);
  EXPECT_EQ(r.features.ids.numeric, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(feature(r, 1, "recency_days"), 1);
  EXPECT_EQ(feature(r, 1, "frequency_gifts"), 3);
  EXPECT_EQ(feature(r, 1, "monetary_total"), 60);
  EXPECT_EQ(feature(r, 1, "monetary_mean"), 20);
  EXPECT_EQ(feature(r, 1, "largest_gift"), 30);
  EXPECT_EQ(feature(r, 1, "tenure_days"), 366);
  EXPECT_EQ(feature(r, 1, "gifts_12m"), 2);
  EXPECT_EQ(feature(r, 1, "amount_12m"), 30);
  EXPECT_EQ(feature(r, 1, "trend_12m_ratio"), 0);  // 30 against 30
  EXPECT_EQ(feature(r, 1, "distinct_campaigns"), 2);
  EXPECT_NEAR(feature(r, 1, "channel_share_mail"), 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(feature(r, 1, "channel_share_online"), 1.0 / 3.0, 1e-15);
  // Donor 2: the refund nets against the total but is no gift; an empty campaign is none.
  EXPECT_EQ(feature(r, 2, "recency_days"), 730);
  EXPECT_EQ(feature(r, 2, "frequency_gifts"), 1);
  EXPECT_EQ(feature(r, 2, "monetary_total"), 60);
  EXPECT_EQ(feature(r, 2, "largest_gift"), 100);
  EXPECT_EQ(feature(r, 2, "gifts_12m"), 0);
  EXPECT_EQ(feature(r, 2, "trend_12m_ratio"), -1);  // nothing now, 100 the year before
  EXPECT_EQ(feature(r, 2, "distinct_campaigns"), 0);
  EXPECT_EQ(feature(r, 2, "channel_share_unknown"), 1);

  const RfmSummary& s = r.summary;
  EXPECT_EQ(s.gifts.rows_read, 6);
  EXPECT_EQ(s.gifts.rows_used, 6);
  EXPECT_EQ(s.negative_rows, 2);
  EXPECT_EQ(s.transactions, 6);
  EXPECT_EQ(s.gift_transactions, 4);
  EXPECT_EQ(s.refund_transactions, 2);
  EXPECT_EQ(s.donors_seen, 3);
  EXPECT_EQ(s.donors_without_gifts, 1);
  EXPECT_EQ(s.n_samples, 2);
  EXPECT_EQ(s.as_of, "2021-01-01");
  EXPECT_EQ(s.as_of_source, "--as-of");
  EXPECT_EQ(s.history_days, 731);
  EXPECT_EQ(s.date_format, "%Y-%m-%d");
  // 2 donors: the small-data warning (the history is just over 2 years).
  ASSERT_EQ(s.warnings.size(), 1u);
  EXPECT_NE(s.warnings[0].find("fewer than 500"), std::string::npos);
}

TEST(PrepRfm, DefaultAsOfIsTheDayAfterTheLastTransaction) {
  const RfmResult r = rfm(kGifts);
  EXPECT_EQ(r.summary.as_of, "2021-01-01");
  EXPECT_EQ(r.as_of, day(2021, 1, 1));
  EXPECT_EQ(r.summary.as_of_source, "day after the last transaction");
}

TEST(PrepRfm, NegativesDropRemovesRefundRows) {
  const RfmResult r = rfm(kGifts, [](RfmParams& p) {
    as_of_2021(p);
    p.negatives = Negatives::drop;
  });
  EXPECT_EQ(r.summary.negative_rows, 2);
  EXPECT_EQ(r.summary.gifts.rows_used, 4);
  EXPECT_EQ(r.summary.donors_seen, 2);  // donor 3 had only the dropped refund
  EXPECT_EQ(feature(r, 2, "monetary_total"), 100);
  // Money cannot be negative now, yet the transform stays signed_log1p (same values for x >= 0).
  EXPECT_FALSE(r.features.may_be_negative[2]);
}

TEST(PrepRfm, ExactDuplicateRowsDroppedOnlyWhenEveryFieldMatches) {
  const std::string gifts =
      "donor_id,gift_date,amount,campaign,channel\n"
      "1,2020-12-31,10,ab,c\n"
      "1,2020-12-31,10,ab,c\n"    // exact copy: dropped
      "1,2020-12-31,10,a,bc\n"    // same bytes, other field boundary: kept
      "1,2020-12-31,10,ab,c \n";  // trailing space: a different row
  const RfmResult r = rfm(gifts, as_of_2021);
  EXPECT_EQ(r.summary.gifts.duplicate_rows, 1);
  EXPECT_EQ(feature(r, 1, "frequency_gifts"), 3);
  const RfmResult kept = rfm(gifts, [](RfmParams& p) {
    as_of_2021(p);
    p.drop_duplicates = false;
  });
  EXPECT_EQ(kept.summary.gifts.duplicate_rows, 0);
  EXPECT_EQ(feature(kept, 1, "frequency_gifts"), 4);
}

TEST(PrepRfm, RowsWithoutIdDropped) {
  const RfmResult r = rfm(
      "donor_id,gift_date,amount\n"
      ",2020-12-31,10\n"
      "   ,2020-12-30,10\n"
      "7,2020-12-29,10\n"
      "7.0,2020-12-28,10\n",  // ids as spelled: "7.0" is another donor than "7"
      as_of_2021);
  EXPECT_EQ(r.summary.gifts.missing_id_rows, 2);
  EXPECT_TRUE(r.features.ids.numeric.empty());
  EXPECT_EQ(r.features.ids.text, (std::vector<std::string>{"7", "7.0"}));
}

TEST(PrepRfm, ImpossibleDatesDroppedAndQuoted) {
  const RfmResult r = rfm(
      "donor_id,gift_date,amount\n"
      "1,2020-02-30,10\n"   // no such day
      "1,yesterday,10\n"    // not a date
      "1,1899-12-31,10\n"   // before 1900
      "1,2021-01-01,10\n"   // on as-of: not covered
      "1,2022-05-01,10\n"   // after as-of
      "1,2020-12-01,10\n",
      as_of_2021);
  const FileCounts& c = r.summary.gifts;
  EXPECT_EQ(c.unparseable_date_rows, 2);
  EXPECT_EQ(c.pre_1900_date_rows, 1);
  EXPECT_EQ(c.after_as_of_rows, 2);
  EXPECT_EQ(c.rows_used, 1);
  ASSERT_EQ(c.examples.size(), 2u);
  EXPECT_NE(c.examples[0].find("gifts.csv line 2, column 'gift_date': '2020-02-30' is not a date"),
            std::string::npos) << c.examples[0];
  EXPECT_NE(c.examples[1].find("line 3"), std::string::npos);
}

TEST(PrepRfm, BadRowsSkippedAreCountedAndQuoted) {
  const RfmResult r = rfm(
      "donor_id,gift_date,amount\n"
      "1,2020-12-01,10\n"
      "1,2020-12-02,ten\n"
      "1,2020-12-03\n"
      "1,2020-12-04,nan\n"
      "1,2020-12-05,20\n",
      [](RfmParams& p) {
        as_of_2021(p);
        p.on_bad_row = BadRows::skip;
      });
  const FileCounts& c = r.summary.gifts;
  EXPECT_EQ(c.bad_rows_skipped, 3);
  EXPECT_EQ(c.rows_used, 2);
  ASSERT_EQ(c.examples.size(), 3u);
  EXPECT_NE(c.examples[0].find("line 3, column 'amount': 'ten' is not a number"), std::string::npos) << c.examples[0];
  EXPECT_NE(c.examples[1].find("line 4: 2 fields, but the header has 3"), std::string::npos) << c.examples[1];
  EXPECT_NE(c.examples[2].find("line 5, column 'amount': 'nan'"), std::string::npos) << c.examples[2];
  EXPECT_EQ(feature(r, 1, "monetary_total"), 30);
}

TEST(PrepRfm, InvoiceLinesGroupIntoTransactions) {
  // Online Retail's layout: amount = Quantity x UnitPrice, InvoiceNo groups lines, a
  // cancellation is its own invoice (C...), and lines that cancel within an invoice net to 0.
  const std::string retail =
      "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
      "1001,A,2,2020-03-01 10:00,1.5,7\n"
      "1001,B,1,2020-03-01 10:00,2.0,7\n"
      "C1002,A,-2,2020-03-05 09:00,1.5,7\n"
      "1003,A,1,2020-04-01,0.1,7\n"
      "1003,B,1,2020-04-01,0.2,7\n"
      "1003,C,-1,2020-04-01,0.3,7\n"
      "1004,A,1,2020-05-01,5,8\n"
      "1001,C,1,2020-02-28 23:00,1,8\n";  // the same invoice number for another customer
  const RfmResult r = rfm(retail, [](RfmParams& p) { p.as_of = day(2020, 6, 1); });
  const RfmSummary& s = r.summary;
  EXPECT_EQ(s.transaction_column, "InvoiceNo");
  EXPECT_EQ(s.amount_source, "Quantity x UnitPrice");
  EXPECT_EQ(s.transactions, 5);
  EXPECT_EQ(s.gift_transactions, 3);
  EXPECT_EQ(s.refund_transactions, 1);
  EXPECT_EQ(s.zero_transactions, 1);
  EXPECT_EQ(feature(r, 7, "frequency_gifts"), 1);
  EXPECT_NEAR(feature(r, 7, "monetary_total"), 2.0, 1e-12);
  EXPECT_EQ(feature(r, 7, "largest_gift"), 5);
  EXPECT_EQ(feature(r, 7, "recency_days"), 92);  // 2020-03-01 to 2020-06-01
  EXPECT_EQ(feature(r, 8, "frequency_gifts"), 2);
  EXPECT_EQ(feature(r, 8, "tenure_days"), 94);   // from 2020-02-28

  // --negatives drop: the negative lines go, invoice 1003 becomes a gift of 0.3.
  const RfmResult d = rfm(retail, [](RfmParams& p) {
    p.as_of = day(2020, 6, 1);
    p.negatives = Negatives::drop;
  });
  EXPECT_EQ(d.summary.negative_rows, 2);
  EXPECT_EQ(feature(d, 7, "frequency_gifts"), 2);
  EXPECT_NEAR(feature(d, 7, "monetary_total"), 5.3, 1e-12);

  // Without grouping every line is a transaction.
  const RfmResult lines = rfm(retail, [](RfmParams& p) {
    p.as_of = day(2020, 6, 1);
    p.gift_columns.transaction = "none";
  });
  EXPECT_EQ(lines.summary.transactions, 8);
  EXPECT_EQ(feature(lines, 7, "frequency_gifts"), 4);
}

TEST(PrepRfm, ChannelsBeyondMaxLevelsShareOther) {
  const RfmResult r = rfm(
      "donor_id,gift_date,amount,channel\n"
      "1,2020-12-01,10,Direct Mail\n"
      "1,2020-12-02,10,direct-mail\n"  // another spelling: its own level, a distinct name
      "1,2020-12-03,10,web\n"
      "2,2020-12-04,10,web\n"
      "2,2020-12-05,10,phone\n",
      [](RfmParams& p) {
        as_of_2021(p);
        p.max_levels = 2;
      });
  // web (2 gifts) is kept, then the tie at one gift goes by name: "Direct Mail" < "direct-mail" < "phone".
  const std::vector<std::string> tail(r.features.names.end() - 3, r.features.names.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"channel_share_direct_mail", "channel_share_web", "channel_share_other"}));
  EXPECT_NEAR(feature(r, 1, "channel_share_other"), 1.0 / 3.0, 1e-15);
  EXPECT_NEAR(feature(r, 2, "channel_share_other"), 0.5, 1e-15);
  double sum = 0;
  for (const auto& n : tail) sum += feature(r, 1, n);
  EXPECT_NEAR(sum, 1.0, 1e-15);
}

TEST(PrepRfm, RowsAreOrderedByIdWhateverTheFileOrder) {
  const RfmResult a = rfm("donor_id,gift_date,amount\n10,2020-12-01,5\n9,2020-11-01,7\n100,2020-10-01,9\n", as_of_2021);
  EXPECT_EQ(a.features.ids.numeric, (std::vector<std::int64_t>{9, 10, 100}));
  const RfmResult b = rfm("donor_id,gift_date,amount\n100,2020-10-01,9\n10,2020-12-01,5\n9,2020-11-01,7\n", as_of_2021);
  EXPECT_EQ(a.features.values.values(), b.features.values.values());
  // Text ids (any id that is not a canonical integer) sort as text.
  const RfmResult t = rfm("donor_id,gift_date,amount\nD-2,2020-12-01,5\nD-10,2020-11-01,7\n007,2020-10-01,1\n", as_of_2021);
  EXPECT_TRUE(t.features.ids.numeric.empty());
  EXPECT_EQ(t.features.ids.text, (std::vector<std::string>{"007", "D-10", "D-2"}));
}

// ---- CSV forms --------------------------------------------------------------------------------

TEST(PrepRfm, ByteOrderMarkCrlfAndCrOnlyFiles) {
  for (const std::string eol : {"\r\n", "\r", "\n"}) {
    const RfmResult r = rfm("\xEF\xBB\xBF" "donor_id,gift_date,amount" + eol + "1,2020-12-01,5" + eol + eol +
                                "2,2020-12-02,6" + eol,
                            as_of_2021);
    EXPECT_EQ(r.features.ids.numeric, (std::vector<std::int64_t>{1, 2})) << "line end " << eol.size();
    EXPECT_EQ(r.summary.gifts.rows_read, 2);
  }
}

TEST(PrepRfm, QuotedFieldsWithDelimitersAndLineBreaks) {
  const std::string gifts =
      "donor_id,gift_date,amount,campaign\n"
      "1,2020-12-01,5,\"Spring, \"\"big\"\"\nappeal\"\n"  // lines 2-3
      "1,2020-12-02,\"6.5\",\"Spring, \"\"big\"\"\nappeal\"\n"  // lines 4-5
      "2,2020-12-03,7,plain\n";  // line 6
  const RfmResult r = rfm(gifts, as_of_2021);
  EXPECT_EQ(feature(r, 1, "distinct_campaigns"), 1);
  EXPECT_EQ(feature(r, 1, "monetary_total"), 11.5);
  // Line numbers count physical lines, so an error after a multi-line field names the right one.
  const std::string bad = gifts + "2,2020-12-04,x,plain\n";  // line 7
  const std::string message = error_of([&] { rfm(bad, as_of_2021); });
  EXPECT_NE(message.find("gifts.csv line 7, column 'amount': 'x' is not a number"), std::string::npos) << message;
}

TEST(PrepRfm, DelimiterDetectedFromTheHeader) {
  const RfmResult semi = rfm("donor_id;gift_date;amount\n1;2020-12-01;5.5\n", as_of_2021);
  EXPECT_EQ(feature(semi, 1, "monetary_total"), 5.5);
  const RfmResult tab = rfm("donor_id\tgift_date\tamount\n1\t2020-12-01\t4\n", as_of_2021);
  EXPECT_EQ(feature(tab, 1, "monetary_total"), 4);
}

TEST(PrepRfm, ColumnsRecognisedOrNamed) {
  // Header spellings vary: case, spaces and underscores are ignored.
  const RfmResult r = rfm("Donor ID,Gift Date,Gift Amount\n1,2020-12-01,5\n", as_of_2021);
  EXPECT_EQ(r.features.ids.numeric, (std::vector<std::int64_t>{1}));
  const RfmResult named = rfm("who,when,how_much\n1,2020-12-01,5\n", [](RfmParams& p) {
    as_of_2021(p);
    p.gift_columns.id = "who";
    p.gift_columns.date = "when";
    p.gift_columns.amount = "HOW_MUCH";  // case-insensitive when no exact match
  });
  EXPECT_EQ(feature(named, 1, "monetary_total"), 5);
}

// ---- dates ------------------------------------------------------------------------------------

TEST(PrepRfm, DayFirstAndMonthFirstToldApartByValuesAbove12) {
  const RfmResult dmy = rfm("donor_id,gift_date,amount\n1,13/01/2020,5\n1,01/02/2020 09:30,5\n", as_of_2021);
  EXPECT_EQ(dmy.summary.date_format, "%d/%m/%Y");
  EXPECT_EQ(feature(dmy, 1, "recency_days"), 335);  // 2020-02-01
  const RfmResult mdy = rfm("donor_id,gift_date,amount\n1,01/13/2020,5\n1,02/01/2020 9:30 PM,5\n", as_of_2021);
  EXPECT_EQ(mdy.summary.date_format, "%m/%d/%Y");
  EXPECT_EQ(feature(mdy, 1, "recency_days"), 335);
  // Dotted dates are day-first unless a value says otherwise.
  const RfmResult dots = rfm("donor_id,gift_date,amount\n1,01.02.2020,5\n", as_of_2021);
  EXPECT_EQ(dots.summary.date_format, "%d.%m.%Y");
  // Dashes with the year last (customer_personality's Dt_Customer).
  const RfmResult dashes = rfm("donor_id,gift_date,amount\n1,04-09-2012,5\n1,21-08-2013,5\n", as_of_2021);
  EXPECT_EQ(dashes.summary.date_format, "%d-%m-%Y");
}

TEST(PrepRfm, DateFormatForced) {
  const std::string gifts = "donor_id,gift_date,amount\n1,01/02/2020,5\n";
  const RfmResult fast = rfm(gifts, [](RfmParams& p) {
    as_of_2021(p);
    p.date_format = "%m/%d/%Y";
  });
  EXPECT_EQ(feature(fast, 1, "recency_days"), 365);  // 2020-01-02
  const RfmResult slow = rfm("donor_id,gift_date,amount\n1,01 Feb 2020,5\n1,garbage,5\n", [](RfmParams& p) {
    as_of_2021(p);
    p.date_format = "%d %b %Y";
  });
  EXPECT_EQ(feature(slow, 1, "recency_days"), 335);
  EXPECT_EQ(slow.summary.gifts.unparseable_date_rows, 1);
}

TEST(PrepDates, FastPathReadsTheCommonForms) {
  const DateFormat iso = DateFormat::year_first();
  const Day d = *iso.parse("2011-12-09");
  EXPECT_EQ(iso_date(d), "2011-12-09");
  for (const char* text : {"2011-12-09 12:31", "2011-12-09T12:31:00Z", "2011-12-09 12:31:00.250+01:00",
                           "2011/12/09", " 2011-12-09 ", "2011-12-09 08:05:59 AM"})
    EXPECT_EQ(iso.parse(text), d) << text;
  for (const char* text : {"2011-13-09", "2011-02-30", "2011-12-09x", "2011-12-09 25:00", "11-12-09", "",
                           "2011-12-09 13:00 PM", "12/09/2011"})
    EXPECT_FALSE(iso.parse(text).has_value()) << text;
  EXPECT_EQ(DateFormat::year_last(DateOrder::month_first).parse("12/9/2011 8:26"), d);
  EXPECT_EQ(DateFormat::year_last(DateOrder::day_first).parse("9/12/2011"), d);
  EXPECT_EQ(DateFormat::from_pattern("%d.%m.%Y %H:%M").parse("09.12.2011 12:31"), d);
  EXPECT_EQ(DateFormat::from_pattern("%Y%m%d").parse("20111209"), d);  // date::parse
  EXPECT_EQ(parse_iso_date("2000-02-29"), parse_iso_date("2000-02-28").value() + 1);
  EXPECT_FALSE(parse_iso_date("1900-02-29").has_value());
}

// ---- events and attributes ----------------------------------------------------------------------

const std::string kFourDonors =
    "donor_id,gift_date,amount\n"
    "1,2020-12-01,10\n"
    "2,2020-11-15,20\n"
    "3,2020-06-01,-5\n"
    "4,2019-03-01,30\n";

// A donor with no engagement has been without it for as long as the events file and the
// donor's giving both cover: a donor who first gave 47 days ago gets 47, not the file's 731.
TEST(PrepRfm, DaysSinceEngagementWithNoneIsBoundedByTheDonorsGiving) {
  const std::string gifts = "donor_id,gift_date,amount\n1,2020-12-01,10\n2,2020-11-15,20\n3,2018-05-01,40\n";
  const std::string events = "donor_id,event_date,event_type\n1,2019-01-01,open\n";
  const RfmResult r = rfm(gifts, as_of_2021, events);
  EXPECT_EQ(feature(r, 1, "days_since_engagement"), 731);  // 2019-01-01 to 2021-01-01
  EXPECT_EQ(feature(r, 2, "days_since_engagement"), 47);   // 2020-11-15: its first gift
  EXPECT_EQ(feature(r, 3, "days_since_engagement"), 731);  // gave before the file starts: the file's span
  EXPECT_EQ(r.summary.donors_without_engagement, 2);
}

TEST(PrepRfm, EngagementEventsInTheLast12Months) {
  const std::string events =
      "donor_id,event_date,event_type\n"
      "1,2020-12-01,open\n"
      "1,2020-12-01,open\n"         // duplicate
      "1,2020-06-01,Email Click\n"  // type names are matched loosely
      "1,2019-06-01,opened\n"       // older than 12 months: no count, earliest event in the file
      "2,2020-11-01,attended\n"
      "9,2020-11-01,open\n"         // not a donor with gifts
      "1,2020-11-01,unsubscribe\n"  // other type
      ",2020-11-01,open\n"          // no id
      "2,2021-02-01,open\n";        // after as-of
  const RfmResult r = rfm(kFourDonors, as_of_2021, events);
  EXPECT_EQ(feature(r, 1, "opens_12m"), 1);
  EXPECT_EQ(feature(r, 1, "clicks_12m"), 1);
  EXPECT_EQ(feature(r, 1, "events_attended_12m"), 0);
  EXPECT_EQ(feature(r, 1, "days_since_engagement"), 31);
  EXPECT_EQ(feature(r, 2, "events_attended_12m"), 1);
  EXPECT_EQ(feature(r, 2, "days_since_engagement"), 61);
  // No engagement: counts 0, and days since the first event in the file (at least that long).
  EXPECT_EQ(feature(r, 4, "opens_12m"), 0);
  EXPECT_EQ(feature(r, 4, "days_since_engagement"), 580);
  const RfmSummary& s = r.summary;
  ASSERT_TRUE(s.events.has_value());
  EXPECT_EQ(s.events->rows_read, 9);
  EXPECT_EQ(s.events->duplicate_rows, 1);
  EXPECT_EQ(s.events->missing_id_rows, 1);
  EXPECT_EQ(s.events->after_as_of_rows, 1);
  EXPECT_EQ(s.event_rows_other_type, 1);
  EXPECT_EQ(s.other_event_types, std::vector<std::string>{"unsubscribe"});
  EXPECT_EQ(s.event_rows_unknown_donor, 1);
  EXPECT_EQ(s.events->rows_used, 4);
  EXPECT_EQ(s.donors_without_engagement, 1);
}

TEST(PrepRfm, CategoricalAttributesOneHotWithALevelCap) {
  const std::string attributes =
      "donor_id,region,segment code\n"
      "1,North,A\n"
      "2,South,\n"   // empty: the level "missing"
      "9,East,A\n";  // not a donor with gifts
  const RfmResult r = rfm(kFourDonors, [](RfmParams& p) {
    as_of_2021(p);
    p.categorical = {"region", "segment code"};
    p.max_levels = 1;
  }, "", attributes);
  const std::vector<std::string> tail(r.features.names.end() - 4, r.features.names.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"region_north", "region_other", "segment_code_a", "segment_code_other"}));
  EXPECT_EQ(feature(r, 1, "region_north"), 1);
  EXPECT_EQ(feature(r, 1, "segment_code_a"), 1);
  EXPECT_EQ(feature(r, 2, "region_other"), 1);
  EXPECT_EQ(feature(r, 2, "segment_code_other"), 1);
  for (const auto& n : tail) EXPECT_EQ(feature(r, 4, n), 0) << "no attributes row: all 0";
  EXPECT_EQ(r.summary.attribute_rows_unknown_donor, 1);
  EXPECT_EQ(r.summary.donors_without_attributes, 1);
  EXPECT_EQ(r.summary.attribute_levels_merged, 2);
}

TEST(PrepRfm, SummaryItemsCarryEveryCount) {
  const RfmResult r = rfm(kGifts, as_of_2021);
  const auto attributes = to_attributes(summary_items(r.summary));
  EXPECT_EQ(attributes.at("as_of"), "2021-01-01");
  EXPECT_EQ(attributes.at("gifts_rows_read"), "6");
  EXPECT_EQ(attributes.at("donors_without_gifts"), "1");
  EXPECT_EQ(attributes.at("negatives"), "net");
  EXPECT_NE(attributes.at("warnings").find("fewer than 500"), std::string::npos);
}

TEST(PrepRfm, StrictTurnsWarningsIntoErrors) {
  const std::string message = error_of([] {
    rfm(kGifts, [](RfmParams& p) {
      as_of_2021(p);
      p.strict = true;
    });
  });
  EXPECT_NE(message.find("only 2 donors with gifts (fewer than 500)"), std::string::npos) << message;
}

}  // namespace
