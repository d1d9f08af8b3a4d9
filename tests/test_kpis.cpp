// segforge kpis: Newcombe's interval against Newcombe (1998) Table II; the KPIs and lift against
// the pandas computation of scripts/make_kpis_fixtures.py (tests/fixtures/kpis/), on the
// synthetic export and on Online Retail split at 2011-07-01; bad input exits 2 with one line
// and writes nothing.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "segforge/kpis.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace segforge {
namespace {

// Newcombe (1998), Stat. Med. 17:873-890, Table II, method 10 (score, no continuity correction),
// printed to 4 decimals: examples (a) 56/70 - 48/80, (b) 9/10 - 3/10, (d) 5/56 - 0/29,
// (e) 0/10 - 0/20, (f) 0/10 - 0/10.
TEST(Newcombe, MatchesTableTwoOfThePaper) {
  const struct {
    std::int64_t x1, n1, x2, n2;
    double low, high;
  } table[] = {{56, 70, 48, 80, 0.0524, 0.3339}, {9, 10, 3, 10, 0.1705, 0.8090}, {5, 56, 0, 29, -0.0381, 0.1926},
               {0, 10, 0, 20, -0.1611, 0.2775},  {0, 10, 0, 10, -0.2775, 0.2775}};
  for (const auto& row : table) {
    const Interval ci = newcombe_difference(row.x1, row.n1, row.x2, row.n2);
    EXPECT_NEAR(ci.low, row.low, 5e-5) << row.x1 << "/" << row.n1 << " - " << row.x2 << "/" << row.n2;
    EXPECT_NEAR(ci.high, row.high, 5e-5) << row.x1 << "/" << row.n1 << " - " << row.x2 << "/" << row.n2;
  }
}

// By hand: at x = 0 the Wilson interval is [0, z^2/(n + z^2)]; at x = n, [n/(n + z^2), 1];
// at p = 1/2 it is symmetric about 1/2.
TEST(Newcombe, WilsonBoundsByHand) {
  const double z2 = kZ95 * kZ95;
  EXPECT_DOUBLE_EQ(wilson_interval(0, 10).low, 0.0);
  EXPECT_NEAR(wilson_interval(0, 10).high, z2 / (10 + z2), 1e-15);
  EXPECT_NEAR(wilson_interval(10, 10).low, 10 / (10 + z2), 1e-15);
  EXPECT_DOUBLE_EQ(wilson_interval(10, 10).high, 1.0);
  const Interval half = wilson_interval(20, 40);
  EXPECT_NEAR(half.low + half.high, 1.0, 1e-15);
  // Swapping the groups negates and mirrors the interval.
  const Interval a = newcombe_difference(56, 70, 48, 80), b = newcombe_difference(48, 80, 56, 70);
  EXPECT_NEAR(a.low, -b.high, 1e-15);
  EXPECT_NEAR(a.high, -b.low, 1e-15);
}

std::string fixture(const std::string& name) { return test::fixture_path("kpis/" + name); }

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

/// Every number in `expected` (the pandas reference) is in `actual` within 1e-9 (relative, or
/// absolute near 0); nulls match nulls; strings and integers exactly. Keys of `actual` that the
/// reference does not have are not compared.
void expect_matches(const json& actual, const json& expected, const std::string& where, bool names = true) {
  if (expected.is_object()) {
    for (auto it = expected.begin(); it != expected.end(); ++it) {
      if (!names && it.key() == "name") continue;
      ASSERT_TRUE(actual.contains(it.key())) << where << "." << it.key();
      expect_matches(actual[it.key()], it.value(), where + "." + it.key(), names);
    }
  } else if (expected.is_array()) {
    ASSERT_TRUE(actual.is_array()) << where;
    ASSERT_EQ(actual.size(), expected.size()) << where;
    for (std::size_t i = 0; i < expected.size(); ++i)
      expect_matches(actual[i], expected[i], where + "[" + std::to_string(i) + "]", names);
  } else if (expected.is_null()) {
    EXPECT_TRUE(actual.is_null()) << where << " = " << actual;
  } else if (expected.is_number_float()) {
    ASSERT_TRUE(actual.is_number()) << where;
    const double e = expected.get<double>(), a = actual.get<double>();
    EXPECT_NEAR(a, e, 1e-9 * std::max(1.0, std::abs(e))) << where;
  } else {
    EXPECT_EQ(actual, expected) << where;
  }
}

class KpisCli : public test::TempDirTest {
 protected:
  int kpis(const std::string& args, std::string* output = nullptr) const {
    return shell(std::string(SEGFORGE_BINARY) + " kpis " + args, output);
  }
  /// Bad input: exit 2, the message on one line, no output file.
  void expect_refused(const std::string& args, const std::string& message) const {
    std::string out;
    EXPECT_EQ(kpis(args + " -o " + path("kpis.json"), &out), 2) << out;
    EXPECT_NE(out.find(message), std::string::npos) << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    EXPECT_FALSE(fs::exists(path("kpis.json")));
  }
};

TEST_F(KpisCli, SegmentsAndLiftMatchPandas) {
  std::string out;
  ASSERT_EQ(kpis(fixture("gifts.csv") + " " + fixture("segments.csv") + " --as-of 2022-07-01 --campaign " +
                     fixture("campaign.csv") + " -o " + path("kpis.json"),
                 &out),
            0)
      << out;
  const json actual = read_json(path("kpis.json"));
  EXPECT_EQ(actual["format"], "segforge-kpis");
  expect_matches(actual, read_json(fixture("expected.json")), "kpis");
  // The one labelled id that never gave is named in a warning.
  EXPECT_NE(out.find("1 of 193 labelled ids have no transaction before 2022-07-01"), std::string::npos) << out;
  EXPECT_NE(out.find("'D9999'"), std::string::npos) << out;
}

TEST_F(KpisCli, LabelsH5GivesTheSameKpis) {
  std::string out;
  ASSERT_EQ(kpis(fixture("gifts.csv") + " " + fixture("labels.h5") + " --as-of 2022-07-01 --campaign " +
                     fixture("campaign.csv") + " -o " + path("kpis.json"),
                 &out),
            0)
      << out;
  const json actual = read_json(path("kpis.json"));
  expect_matches(actual, read_json(fixture("expected.json")), "kpis", /*names=*/false);
  EXPECT_EQ(actual["segments"][1]["name"], "segment 1");  // labels.h5 has no names (no --model)
}

TEST_F(KpisCli, OnlineRetailSplitInTimeMatchesPandas) {
  const fs::path data = test::datasets_dir() / "online_retail" / "online_retail_sample_40000.csv";
  if (!fs::exists(data)) GTEST_SKIP() << "no " << data;
  std::string out;
  ASSERT_EQ(kpis(data.string() + " " + fixture("online_retail_segments.csv") + " --as-of 2011-07-01 -o " +
                     path("kpis.json"),
                 &out),
            0)
      << out;
  const json actual = read_json(path("kpis.json"));
  expect_matches(actual, read_json(fixture("online_retail_expected.json")), "kpis");
  // The export ends on 2011-12-09: the window is partial, and it says so.
  EXPECT_EQ(actual["last_transaction"], "2011-12-09");
  EXPECT_NE(out.find("the window covers 162 of its 365 days"), std::string::npos) << out;
}

TEST_F(KpisCli, LabelsForOtherIdsAreRefused) {
  std::ofstream(path("other.csv")) << "id,segment,segment_name,distance\nX1,0,A,0.5\nX2,1,B,0.25\n";
  expect_refused(fixture("gifts.csv") + " " + path("other.csv") + " --as-of 2022-07-01",
                 "none of its 2 ids has a transaction before 2022-07-01");
}

TEST_F(KpisCli, AnEmptyWindowIsRefused) {
  expect_refused(fixture("gifts.csv") + " " + fixture("segments.csv") + " --as-of 2025-01-01",
                 "no transaction dated in the window 2025-01-01 to 2025-12-31");
  expect_refused(fixture("gifts.csv") + " " + fixture("segments.csv") + " --as-of 2022-07-01 --window-days 0",
                 "--window-days 0: use at least 1 day");
}

TEST_F(KpisCli, ACampaignWithoutControlIsRefused) {
  expect_refused(fixture("gifts.csv") + " " + fixture("segments.csv") + " --as-of 2022-07-01 --campaign " +
                     fixture("campaign_no_control.csv"),
                 "campaign 'spring_appeal' has no control row");
}

TEST_F(KpisCli, BadLabelsAndCampaignRowsAreRefused) {
  std::ofstream(path("twice.csv")) << "id,segment,segment_name,distance\nD0001,0,A,0.5\nD0001,1,B,0.25\n";
  expect_refused(fixture("gifts.csv") + " " + path("twice.csv") + " --as-of 2022-07-01",
                 "id 'D0001' is on lines 2 and 3");
  std::ofstream(path("arm.csv")) << "donor_id,campaign,arm,responded,amount\nD0001,x,treated,1,5\nD0002,x,maybe,0,0\n";
  expect_refused(fixture("gifts.csv") + " " + fixture("segments.csv") + " --as-of 2022-07-01 --campaign " +
                     path("arm.csv"),
                 "line 3, column 'arm'");
  std::ofstream(path("dup.csv")) << "donor_id,campaign,arm,responded,amount\nD0001,x,treated,1,5\nD0001,x,control,0,0\n";
  expect_refused(fixture("gifts.csv") + " " + fixture("segments.csv") + " --as-of 2022-07-01 --campaign " +
                     path("dup.csv"),
                 "is already in campaign 'x' on line 2");
}

}  // namespace
}  // namespace segforge
