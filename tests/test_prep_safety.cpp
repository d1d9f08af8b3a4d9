// segforge-prep on inputs people have and inputs that break things: huge values stay finite or
// are refused, ids round-trip exactly, gzip and decimal-comma CSV read like plain CSV, typo
// dates do not move as-of, and the donors left out are listed (--excluded). The bad-input
// messages themselves are rows of test_prep_errors.cpp.

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../src/prep/dates.hpp"
#include "../src/prep/fields.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/prep.hpp"
#include "test_prep_support.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace segforge;
using namespace segforge::prep;
using namespace segforge::test;

namespace {

std::chrono::sys_days day(int y, unsigned m, unsigned d) {
  return std::chrono::sys_days{std::chrono::year{y} / m / d};
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Writes `text` gzip-compressed (zlib, as gzip(1) would).
std::string write_gz(const PrepDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("gzopen failed");
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  return path;
}

std::int64_t column_of(const Features& f, const std::string& name) {
  const auto it = std::find(f.feature_names.begin(), f.feature_names.end(), name);
  if (it == f.feature_names.end()) throw std::runtime_error("no feature " + name);
  return it - f.feature_names.begin();
}

// ---- huge values -----------------------------------------------------------------------------

// One value of 1e200 among three zeros: the variance overflowed before (±Inf written, scale 1).
// By hand: mean = 2.5e199, std = sqrt((0.75² + 3·0.25²)/4)·1e200 = sqrt(3)/4·1e200, so the
// z-scores are sqrt(3) and -1/sqrt(3) (to 1e-16: a third value of 1 keeps the column off the
// two-valued rule, docs/prep.md "Scaling rules").
TEST(PrepSafety, HugeTableValueIsScaledNotInfinite) {
  PrepDir dir;
  const std::string csv = dir.write("t.csv", "id,a,b\n1,1e200,1\n2,0,2\n3,0,3\n4,1,6\n");
  const PrepOutcome run = run_prep("table " + csv + " -o " + dir.file("f.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("f.h5"));
  const double s3 = std::sqrt(3.0);
  EXPECT_NEAR(f.x(0, 0), s3, 1e-6);
  for (int r = 1; r < 4; ++r) EXPECT_NEAR(f.x(r, 0), -1.0 / s3, 1e-6);
  EXPECT_NEAR(f.scaler.mean[0], 2.5e199, 2.5e199 * 1e-12);
  EXPECT_NEAR(f.scaler.scale[0], s3 / 4 * 1e200, 1e200 * 1e-12) << "not the silent scale of 1";
  EXPECT_EQ(f.scaler.mean[1], 3.0) << "ordinary columns keep the plain sums";
}

// A single gift near the double range with --no-log: the features stay finite (the same
// sqrt(3) z-score for one big donor among four).
TEST(PrepSafety, HugeGiftWithoutLogStaysFinite) {
  PrepDir dir;
  const std::string csv = dir.write("g.csv",
                                    "donor_id,gift_date,amount\n1,2020-12-01,1e300\n2,2020-12-01,1\n"
                                    "3,2020-12-01,1\n4,2020-12-01,2\n");
  const PrepOutcome run = run_prep("rfm " + csv + " --as-of 2021-01-01 --no-log -o " + dir.file("f.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("f.h5"));
  for (float v : f.x.values()) ASSERT_TRUE(std::isfinite(v));
  EXPECT_NEAR(f.x(0, column_of(f, "monetary_total")), std::sqrt(3.0), 1e-6);
}

// New records through a training scaler: a value the training never saw that overflows
// float32 once scaled is refused, not written as inf.
TEST(PrepSafety, ScalerFromRefusesAValueBeyondFloat32) {
  PrepDir dir;
  const std::string train = dir.write("train.csv", "id,a\n1,1\n2,2\n3,4\n");
  ASSERT_EQ(run_prep("table " + train + " -o " + dir.file("train.h5"), dir).status, 0);
  const std::string fresh = dir.write("new.csv", "id,a\n7,1e300\n");
  const PrepOutcome run =
      run_prep("table " + fresh + " --scaler-from " + dir.file("train.h5") + " -o " + dir.file("new.h5"), dir);
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_NE(run.output.find("feature 'a', id 7: the value 1e+300 becomes inf"), std::string::npos) << run.output;
  EXPECT_FALSE(fs::exists(dir.file("new.h5")));
}

// ---- ids -------------------------------------------------------------------------------------

TEST(PrepSafety, IdsRoundTripAsSpelled) {
  PrepDir dir;
  // "5" and "5.0" are two donors; " 42 " is 42 (surrounding spaces are trimmed, documented);
  // "007" keeps its zeros; UTF-8 ids are kept byte for byte.
  const std::string csv = dir.write("g.csv",
                                    "donor_id,gift_date,amount\n5,2020-12-01,1\n5.0,2020-12-02,2\n"
                                    " 42 ,2020-12-03,3\n007,2020-12-04,4\nM\xC3\xBCller,2020-12-05,5\n");
  const PrepOutcome run = run_prep("rfm " + csv + " --as-of 2021-01-01 -o " + dir.file("f.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("f.h5"));
  EXPECT_TRUE(f.ids.numeric.empty());
  EXPECT_EQ(f.ids.text, (std::vector<std::string>{"007", "42", "5", "5.0", "M\xC3\xBCller"}));
  // Each donor its own row: 5 has gift 1, 5.0 gift 2.
  const std::int64_t total = column_of(f, "monetary_total");
  const double t5 = inverse_transform(f.scaler.transform[total], f.x(2, total) * f.scaler.scale[total] + f.scaler.mean[total]);
  const double t50 = inverse_transform(f.scaler.transform[total], f.x(3, total) * f.scaler.scale[total] + f.scaler.mean[total]);
  EXPECT_NEAR(t5, 1.0, 1e-5);
  EXPECT_NEAR(t50, 2.0, 1e-5);
}

// What a user without segforge does: h5py's asstr() and pandas read the ids back as spelled.
TEST(PrepSafety, TextIdsDecodeInH5py) {
  if (std::system("/usr/bin/python3 -c 'import h5py' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "Debian's python3-h5py is absent";
  PrepDir dir;
  const std::string csv = dir.write("g.csv",
                                    "donor_id,gift_date,amount\nM\xC3\xBCller,2020-12-01,1\n5.0,2020-12-02,2\n"
                                    "\xE5\xB1\xB1\xE7\x94\xB0,2020-12-03,3\n");
  ASSERT_EQ(run_prep("rfm " + csv + " --as-of 2021-01-01 -o " + dir.file("f.h5"), dir).status, 0);
  const std::string script = dir.write("read.py",
                                       "import sys, h5py\n"
                                       "with h5py.File(sys.argv[1], 'r') as f:\n"
                                       "    ids = f['ids'].asstr()[:]\n"
                                       "sys.stdout.buffer.write('|'.join(ids).encode('utf-8'))\n");
  const PrepOutcome py = run_binary("/usr/bin/python3", script + " " + dir.file("f.h5"), dir);
  ASSERT_EQ(py.status, 0) << py.output;
  EXPECT_EQ(py.output, "5.0|M\xC3\xBCller|\xE5\xB1\xB1\xE7\x94\xB0");
}

TEST(PrepSafety, TableIdsKeepTheirSpelling) {
  PrepDir dir;
  const std::string csv = dir.write("t.csv", "id,a\n5,1\n5.0,2\n 7,4\n");
  const PrepOutcome run = run_prep("table " + csv + " -o " + dir.file("f.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("f.h5"));
  EXPECT_EQ(f.ids.text, (std::vector<std::string>{"5", "5.0", "7"}));
}

// ---- gzip ------------------------------------------------------------------------------------

const std::string kGifts =
    "donor_id,gift_date,amount,channel\n1,2020-01-05,10,mail\n1,2020-06-01,25.5,online\n"
    "2,2019-03-01,100,mail\n3,2020-12-30,5,phone\n2,2020-11-11,40,mail\n";

TEST(PrepSafety, GzipCsvGivesTheSameFeaturesAsPlainCsv) {
  PrepDir dir;
  const std::string plain = dir.write("gifts.csv", kGifts);
  const std::string gz = write_gz(dir, "gifts.csv.gz", kGifts);
  const std::string unnamed = write_gz(dir, "gifts_export.dat", kGifts);  // told by its magic bytes
  RfmParams p;
  p.as_of = day(2021, 1, 1);
  p.gifts_path = plain;
  const RfmResult a = compute_rfm(p);
  p.gifts_path = gz;
  const RfmResult b = compute_rfm(p);
  p.gifts_path = unnamed;
  const RfmResult c = compute_rfm(p);
  EXPECT_EQ(a.features.values.values(), b.features.values.values());
  EXPECT_EQ(a.features.values.values(), c.features.values.values());
  EXPECT_EQ(a.features.names, b.features.names);
  EXPECT_EQ(a.features.ids.numeric, b.features.ids.numeric);
  EXPECT_EQ(b.summary.gifts.rows_read, 5);

  // table and --events read gzip too.
  const std::string table = write_gz(dir, "t.csv.gz", "id,a,b\n1,1.5,2\n2,2.5,4\n3,3.5,8\n");
  const PrepOutcome run = run_prep("table " + table + " -o " + dir.file("t.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(read_features(dir.file("t.h5")).scaler.mean[0], 2.5);
  p.gifts_path = plain;
  p.events_path = write_gz(dir, "events.csv.gz", "donor_id,event_date,event_type\n1,2020-12-01,open\n2,2020-12-02,click\n");
  const RfmResult e = compute_rfm(p);
  EXPECT_EQ(e.summary.events->rows_used, 2);
}

TEST(PrepSafety, TruncatedGzipIsRefused) {
  PrepDir dir;
  std::string rows = "donor_id,gift_date,amount\n";
  for (int i = 0; i < 20000; ++i) rows += std::to_string(i) + ",2020-01-01," + std::to_string(i % 97) + "\n";
  const std::string gz = write_gz(dir, "big.csv.gz", rows);
  std::string bytes = read_text(gz);
  bytes.resize(bytes.size() / 2);
  const std::string cut = dir.write("cut.csv.gz", bytes);
  fs::remove(gz);
  const PrepOutcome run = run_prep("rfm " + cut + " -o " + dir.file("f.h5"), dir);
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_NE(run.output.find("the gzip data is damaged or truncated"), std::string::npos) << run.output;
  EXPECT_FALSE(fs::exists(dir.file("f.h5")));
}

// ---- decimal commas ---------------------------------------------------------------------------

TEST(PrepSafety, SemicolonFilesReadDecimalCommas) {
  PrepDir dir;
  // Excel in most of Europe: ';' between fields, ',' as the decimal mark, '.' between thousands.
  const std::string csv = dir.write("t.csv", "id;income;share\n1;\"1.234,5\";0,25\n2;2000;0,75\n3;10,5;1\n");
  const PrepOutcome run = run_prep("table " + csv + " --scale none -o " + dir.file("f.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("f.h5"));
  ASSERT_EQ(f.feature_names, (std::vector<std::string>{"income", "share"})) << "no column dropped";
  EXPECT_EQ(f.x.values(), (std::vector<float>{1234.5f, 0.25f, 2000.0f, 0.75f, 10.5f, 1.0f}));

  // A tab-separated export with --decimal , for rfm.
  const std::string gifts = dir.write("g.tsv", "donor_id\tgift_date\tamount\n1\t2020-12-01\t12,5\n1\t2020-12-02\t1.000,25\n");
  RfmParams p;
  p.gifts_path = gifts;
  p.as_of = day(2021, 1, 1);
  p.decimal = ',';
  const RfmResult r = compute_rfm(p);
  EXPECT_EQ(r.features.values(0, 2), 1012.75);  // monetary_total
}

TEST(PrepSafety, NumbersWithEitherMarkInSemicolonFiles) {
  EXPECT_EQ(parse_number("12,5", kEitherDecimal), 12.5);
  EXPECT_EQ(parse_number("12.5", kEitherDecimal), 12.5);
  EXPECT_EQ(parse_number("0.250", kEitherDecimal), 0.25);  // a leading 0 is no thousands group
  EXPECT_EQ(parse_number("1.234", kEitherDecimal), std::nullopt);  // 1234 or 1.234?
  EXPECT_EQ(parse_number("1.234.567,5", ','), 1234567.5);
  EXPECT_EQ(parse_number("-1,5e3", ','), -1500.0);
  EXPECT_EQ(parse_number("12.34,5", ','), std::nullopt);  // not groups of three
  EXPECT_EQ(parse_number("1,2,3", ','), std::nullopt);
  EXPECT_EQ(parse_number("1e400"), std::nullopt);  // beyond the double range
}

// ---- typo dates ------------------------------------------------------------------------------

TEST(PrepSafety, DateFarAfterTheOthersIsATypo) {
  PrepDir dir;
  const std::string csv = dir.write("g.csv",
                                    "donor_id,gift_date,amount\n1,2020-12-01,10\n2,2020-12-02,20\n"
                                    "3,9999-12-31,30\n4,2020-11-15,5\n");
  const PrepOutcome run = run_prep("rfm " + csv + " -o " + dir.file("f.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("warning: 1 gifts row(s) dated from 9999-12-31 on, more than a year after every other "
                            "date (latest 2020-12-02), were taken as typos"),
            std::string::npos)
      << run.output;
  const FeatureFileInfo info = inspect_features(dir.file("f.h5"));
  EXPECT_EQ(info.attributes.at("as_of"), "2020-12-03");
  EXPECT_EQ(info.attributes.at("gifts_typo_date_rows"), "1");
  EXPECT_EQ(info.attributes.at("gifts_after_as_of_rows"), "0");
  EXPECT_EQ(info.n_samples, 3) << "donor 3 has no other gift";

  // With --as-of the period is the user's: the row is simply after it.
  const PrepOutcome given = run_prep("rfm " + csv + " --as-of 2021-01-01 -o " + dir.file("g.h5"), dir);
  ASSERT_EQ(given.status, 0) << given.output;
  EXPECT_EQ(inspect_features(dir.file("g.h5")).attributes.at("gifts_after_as_of_rows"), "1");
}

TEST(PrepSafety, DayCountsRule) {
  // A real pause: two years without gifts, then 30% of the rows: ordinary.
  DayCounts pause;
  for (int i = 0; i < 70; ++i) pause.add(1000 + i);
  for (int i = 0; i < 30; ++i) pause.add(2000 + i);
  EXPECT_EQ(pause.split().latest_ordinary, 2029);
  EXPECT_EQ(pause.split().typo_rows, 0);
  // 1000 rows, then 10 rows (1%) after a 400-day gap, then one more after another gap: all
  // eleven are typos, cut at the earliest qualifying gap.
  DayCounts typos;
  for (int i = 0; i < 1000; ++i) typos.add(i % 300);
  for (int i = 0; i < 9; ++i) typos.add(700);
  typos.add(5000);
  const DayCounts::Split s = typos.split();
  EXPECT_EQ(s.latest_ordinary, 299);
  EXPECT_EQ(s.typo_rows, 10);
  EXPECT_EQ(s.first_typo, 700);
  // 11 rows after the first gap are more than 1% of 1011: ordinary; the one after the second
  // gap is still a typo.
  typos.add(701);
  typos.add(702);
  EXPECT_EQ(typos.split().latest_ordinary, 702);
  EXPECT_EQ(typos.split().typo_rows, 1);
  EXPECT_FALSE(DayCounts().split().latest_ordinary.has_value());
}

// ---- donors left out --------------------------------------------------------------------------

TEST(PrepSafety, ExcludedDonorsAreListedWithTheReason) {
  PrepDir dir;
  const std::string csv = dir.write("g.csv",
                                    "donor_id,gift_date,amount\n"
                                    "b,2020-12-01,10\n"
                                    "a,2020-12-02,-5\n"           // refunds only
                                    "=HYPERLINK(1),2020-12-03,0\n"  // a transaction of 0
                                    "c,2020-12-04,-3\nc,2020-12-05,0\n");
  const std::string excluded = dir.file("excluded.csv");
  const PrepOutcome run =
      run_prep("rfm " + csv + " --as-of 2021-01-01 -o " + dir.file("f.h5") + " --excluded " + excluded, dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(read_text(excluded),
            "id,reason,transactions,net_amount\n"
            "'=HYPERLINK(1),zero_net_only,1,0\n"
            "a,refunds_only,1,-5\n"
            "c,refunds_and_zero_net,2,-3\n");
  EXPECT_NE(run.output.find("donors left out listed in"), std::string::npos) << run.output;
  EXPECT_EQ(inspect_features(dir.file("f.h5")).attributes.at("donors_without_gifts"), "3");
}

// The refund-only customers of the real Online Retail sample: exactly those pandas finds
// (scripts/make_prep_fixtures.py), each with its reason and net amount.
TEST(PrepSafety, OnlineRetailCustomersLeftOutAreListed) {
  const std::string retail = (datasets_dir() / "online_retail" / "online_retail_sample_40000.csv").string();
  if (!fs::exists(retail)) GTEST_SKIP() << retail << " is absent; set SEGFORGE_DATASETS to the shared datasets";
  PrepDir dir;
  const std::string excluded = dir.file("excluded.csv");
  const PrepOutcome run = run_prep("rfm '" + retail + "' -o " + dir.file("f.h5") + " --excluded " + excluded, dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const SimpleCsv got = read_simple_csv(excluded);
  const SimpleCsv want = read_simple_csv(fixture_path("prep/online_retail_excluded.csv"));
  ASSERT_EQ(got.header, want.header);
  ASSERT_EQ(got.rows.size(), want.rows.size());
  const auto counts = read_key_values(fixture_path("prep/online_retail_counts.csv"));
  EXPECT_EQ(std::to_string(got.rows.size()), counts.at("donors_without_gifts"));
  for (std::size_t i = 0; i < want.rows.size(); ++i) {
    EXPECT_EQ(got.rows[i][0], want.rows[i][0]);
    EXPECT_EQ(got.rows[i][1], want.rows[i][1]) << "customer " << want.rows[i][0];
    EXPECT_EQ(got.rows[i][2], want.rows[i][2]) << "customer " << want.rows[i][0];
    EXPECT_NEAR(std::stod(got.rows[i][3]), std::stod(want.rows[i][3]), 1e-9 * (1 + std::abs(std::stod(want.rows[i][3]))))
        << "customer " << want.rows[i][0];
  }
}

}  // namespace
