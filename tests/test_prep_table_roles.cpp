// `segforge-prep table` on the columns people's exports have: id columns it must recognise
// (named or not), outcome and constant columns it must leave out, missing values, categories
// and dates; and --scaler-from reusing every choice of the training preparation. References:
// hand computations, and pandas (scripts/make_table_fixtures.py) on Customer Personality.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>

#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/prep.hpp"
#include "test_prep_support.hpp"
#include "test_support.hpp"

using namespace segforge;
using namespace segforge::prep;
using segforge::test::PrepDir;
using segforge::test::run_prep;

namespace {

TableResult table(const PrepDir& dir, const std::string& text, const std::function<void(TableParams&)>& adjust = {}) {
  TableParams p;
  p.path = dir.write("table.csv", text);
  if (adjust) adjust(p);
  return read_table(p);
}

const ColumnChoice& choice_of(const TableSummary& s, const std::string& column) {
  for (const auto& c : s.columns)
    if (c.column == column) return c;
  throw std::runtime_error("no column " + column);
}

std::int64_t index_of(const std::vector<std::string>& names, const std::string& name) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) throw std::runtime_error("no feature " + name);
  return it - names.begin();
}

double original(const Features& f, std::int64_t i, std::int64_t j) {
  const auto jj = static_cast<std::size_t>(j);
  return inverse_transform(f.scaler.transform[jj], f.x(i, j) * f.scaler.scale[jj] + f.scaler.mean[jj]);
}

/// member_no (zero-padded, unique), a row counter, an outcome, a constant and two behaviours.
std::string members_csv(int n) {
  std::string text = "member_no,seq,visits,spend,TARGET_B,Response,region_code_const\n";
  for (int i = 0; i < n; ++i) {
    char no[8];
    std::snprintf(no, sizeof no, "%05d", i);
    text += std::string(no) + "," + std::to_string(i + 1) + "," + std::to_string(i % 7) + "," +
            std::to_string(10 * (i % 5) + 3) + "," + std::to_string(i % 2) + "," + std::to_string((i / 2) % 2) + ",3\n";
  }
  return text;
}

TEST(PrepTableRoles, IdLikeOutcomeAndConstantColumnsAreNotFeatures) {
  PrepDir dir;
  const TableResult r = table(dir, members_csv(40));
  EXPECT_EQ(r.features.names, (std::vector<std::string>{"visits", "spend"}));
  EXPECT_EQ(r.summary.id_column, "member_no");
  ASSERT_EQ(r.features.ids.text.size(), 40u) << "zero-padded ids stay text, as the file spells them";
  EXPECT_EQ(r.features.ids.text[7], "00007");
  EXPECT_EQ(choice_of(r.summary, "seq").role, ColumnRole::excluded);
  EXPECT_NE(choice_of(r.summary, "seq").why.find("looks like an id"), std::string::npos);
  EXPECT_NE(choice_of(r.summary, "TARGET_B").why.find("outcome"), std::string::npos);
  EXPECT_NE(choice_of(r.summary, "Response").why.find("outcome"), std::string::npos);
  EXPECT_NE(choice_of(r.summary, "region_code_const").why.find("constant"), std::string::npos);
  EXPECT_TRUE(r.summary.warnings.empty());
}

TEST(PrepTableRoles, UnrecognisedIdsGetAWarningAndFeaturesExcludeOverride) {
  PrepDir dir;
  // No id-like column: ids are row numbers, and the user is told.
  TableResult r = table(dir, "a,b\n1,2\n3,4\n1,5\n");
  EXPECT_TRUE(r.features.ids.empty());
  ASSERT_EQ(r.summary.warnings.size(), 1u);
  EXPECT_NE(r.summary.warnings[0].find("no id column recognised; ids are row numbers"), std::string::npos);
  // --features takes an excluded column back; --exclude leaves one out; --id-col chooses.
  r = table(dir, members_csv(10), [](TableParams& p) {
    p.columns = {"spend", "TARGET_B"};
    p.id_column = "seq";
  });
  EXPECT_EQ(r.features.names, (std::vector<std::string>{"spend", "TARGET_B"}));
  EXPECT_EQ(r.features.ids.numeric.front(), 1);
  r = table(dir, members_csv(10), [](TableParams& p) { p.exclude = {"spend"}; });
  EXPECT_EQ(r.features.names, (std::vector<std::string>{"visits"}));
  EXPECT_EQ(choice_of(r.summary, "spend").why, "--exclude");
}

TEST(PrepTableRoles, TheColumnListIsPrintedAndStored) {
  PrepDir dir;
  dir.write("m.csv", members_csv(30));
  const auto run = run_prep("table " + dir.file("m.csv") + " -o " + dir.file("m.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("TARGET_B"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("looks like an outcome or target"), std::string::npos) << run.output;
  const auto attributes = inspect_features(dir.file("m.h5")).attributes;
  const std::string& cols = attributes.at("table_columns");
  EXPECT_NE(cols.find("number\tvisits\t\t\tnumbers"), std::string::npos) << cols;
  EXPECT_NE(cols.find("id\tmember_no\t"), std::string::npos) << cols;
  EXPECT_NE(cols.find("excluded\tTARGET_B\t"), std::string::npos) << cols;
  // Segment names built from the features cannot speak of member_no.
  EXPECT_EQ(read_features(dir.file("m.h5")).feature_names, (std::vector<std::string>{"visits", "spend"}));
}

TEST(PrepTableRoles, MissingValuesErrorWithCountsOrFillOrDrop) {
  PrepDir dir;
  const std::string text = "id,income,age\n1,10,30\n2,,40\n3,30,\n4,70,20\n5,,25\n";
  try {
    table(dir, text);
    FAIL() << "empty values must stop the run by default";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("line 3, column 'income': empty value; 3 empty values in all ('income' 2, 'age' 1)"), std::string::npos) << m;
    EXPECT_NE(m.find("--missing median|mean|drop"), std::string::npos) << m;
  }
  // Median of income (10, 30, 70) = 30; of age (30, 40, 20, 25) = 27.5 (pandas' median).
  TableResult r = table(dir, text, [](TableParams& p) { p.missing = Missing::median; });
  EXPECT_EQ(r.features.values(1, 0), 30.0);
  EXPECT_EQ(r.features.values(2, 1), 27.5);
  EXPECT_EQ(*choice_of(r.summary, "income").fill, 30.0);
  EXPECT_EQ(choice_of(r.summary, "income").missing, 2);
  r = table(dir, text, [](TableParams& p) { p.missing = Missing::mean; });
  EXPECT_DOUBLE_EQ(r.features.values(4, 0), 110.0 / 3.0);
  r = table(dir, text, [](TableParams& p) { p.missing = Missing::drop; });
  EXPECT_EQ(r.features.ids.numeric, (std::vector<std::int64_t>{1, 4}));
  EXPECT_EQ(r.summary.missing_rows_dropped, 3);
}

TEST(PrepTableRoles, CategoriesOneHotPooledAndWeighted) {
  PrepDir dir;
  // 100 rows: country UK 80, DE 15, CH 3, FR 2; spend varies.
  std::string text = "id,country,spend\n";
  for (int i = 0; i < 100; ++i) {
    const char* c = i < 80 ? "UK" : i < 95 ? "DE" : i < 98 ? "CH" : "FR";
    text += std::to_string(i + 1) + "," + c + "," + std::to_string((i * 37) % 101) + "\n";
  }
  dir.write("c.csv", text);
  TableResult r = table(dir, text, [](TableParams& p) { p.levels.min_share = 0.05; });
  EXPECT_EQ(r.features.names, (std::vector<std::string>{"country_de", "country_uk", "country_other", "spend"}));
  EXPECT_EQ(r.summary.levels_merged, 2) << "CH (3%) and FR (2%) are below 5%";
  EXPECT_EQ(r.features.values(96, 2), 1.0);
  EXPECT_EQ(r.features.values(96, 0) + r.features.values(96, 1), 0.0);

  // Through the tool: the block of country levels has total variance 1, like spend's.
  auto run = run_prep("table " + dir.file("c.csv") + " --min-level-share 0.05 -o " + dir.file("c.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("c.h5"));
  auto variance = [&](std::int64_t j) {
    double s = 0, ss = 0;
    for (std::int64_t i = 0; i < f.x.rows(); ++i) s += f.x(i, j);
    const double m = s / static_cast<double>(f.x.rows());
    for (std::int64_t i = 0; i < f.x.rows(); ++i) ss += (f.x(i, j) - m) * (f.x(i, j) - m);
    return ss / static_cast<double>(f.x.rows());
  };
  EXPECT_NEAR(variance(0) + variance(1) + variance(2), 1.0, 1e-5);
  EXPECT_NEAR(variance(3), 1.0, 1e-5);
  // By hand: p = 0.15, 0.80, 0.05; scale = sqrt(sum p(1-p)) = sqrt(0.1275 + 0.16 + 0.0475).
  EXPECT_NEAR(f.scaler.scale[0], std::sqrt(0.335), 1e-12);
  EXPECT_NEAR(original(f, 96, 2), 1.0, 1e-6);
  // Every level its own standardized column instead: a 5% level reaches z = 0.95 / sqrt(0.0475) = 4.36.
  run = run_prep("table " + dir.file("c.csv") + " --min-level-share 0.05 --level-weight column -o " + dir.file("d.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NEAR(read_features(dir.file("d.h5")).x(96, 2), 0.95 / std::sqrt(0.0475), 1e-4);
}

TEST(PrepTableRoles, IntegerCodesNamedLikeCategoriesAreOneHot) {
  PrepDir dir;
  // Wholesale-style: Region 1..3 and Channel 1..2 are codes; kids 0..2 is a count; a 0/1 "group"
  // column is already an indicator; spend is a measurement.
  std::string text = "id,Region,Channel,kids,test_group,spend\n";
  for (int i = 0; i < 60; ++i)
    text += std::to_string(i + 1) + "," + std::to_string(1 + i % 3) + "," + std::to_string(1 + i % 2) + "," +
            std::to_string(i % 3) + "," + std::to_string(i % 2) + "," + std::to_string((i * 37) % 101) + "\n";
  TableResult r = table(dir, text);
  EXPECT_EQ(choice_of(r.summary, "Region").role, ColumnRole::categorical);
  EXPECT_EQ(choice_of(r.summary, "Channel").role, ColumnRole::categorical);
  EXPECT_NE(choice_of(r.summary, "Region").why.find("integer codes (3 values"), std::string::npos);
  EXPECT_EQ(choice_of(r.summary, "kids").role, ColumnRole::number);
  EXPECT_NE(choice_of(r.summary, "kids").why.find("if they are codes, name it in --categorical"), std::string::npos);
  EXPECT_EQ(choice_of(r.summary, "test_group").role, ColumnRole::number) << "0/1 is already an indicator";
  EXPECT_EQ(choice_of(r.summary, "spend").role, ColumnRole::number);
  EXPECT_EQ(r.features.names, (std::vector<std::string>{"region_1", "region_2", "region_3", "channel_1", "channel_2",
                                                        "kids", "test_group", "spend"}));
  // Row 5 (i = 4): Region 2, Channel 1.
  EXPECT_EQ(r.features.values(4, 1), 1.0);
  EXPECT_EQ(r.features.values(4, 0) + r.features.values(4, 2), 0.0);
  EXPECT_EQ(r.features.values(4, 3), 1.0);
  // Named in --features, a code column stays a number.
  r = table(dir, text, [](TableParams& p) { p.columns = {"Region", "spend"}; });
  EXPECT_EQ(r.features.names, (std::vector<std::string>{"Region", "spend"}));
}

TEST(PrepTableRoles, DatesBecomeDaysBeforeAsOf) {
  PrepDir dir;
  const std::string text = "id,since,spend\n1,2014-06-30,5\n2,2013-07-01,6\n3,2014-01-01,7\n";
  TableResult r = table(dir, text, [](TableParams& p) {
    p.as_of = std::chrono::sys_days{std::chrono::year{2014} / 7 / 1};
  });
  EXPECT_EQ(r.features.names, (std::vector<std::string>{"since_days", "spend"}));
  EXPECT_EQ(r.features.values(0, 0), 1);
  EXPECT_EQ(r.features.values(1, 0), 365);
  EXPECT_EQ(r.features.values(2, 0), 181);
  // Default as-of: the day after the latest date.
  r = table(dir, text);
  EXPECT_EQ(r.summary.as_of, "2014-07-01");
  EXPECT_EQ(r.features.values(0, 0), 1);
}

TEST(PrepTableRoles, ScalerFromReusesIdColumnsFillsAndLevels) {
  PrepDir dir;
  dir.write("train.csv",
            "member_no,TARGET_B,country,income\n00001,1,UK,10\n00002,0,UK,\n00003,1,DE,30\n00004,0,DE,50\n"
            "00005,1,UK,90\n00006,0,UK,20\n");
  auto run = run_prep("table " + dir.file("train.csv") + " --missing median --min-level-share 0 -o " + dir.file("train.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  // New file: other column order, an empty income (the training's median, 30), an unseen level.
  dir.write("new.csv", "income,country,TARGET_B,member_no\n,DE,,00107\n40,FR,,00108\n");
  run = run_prep("table " + dir.file("new.csv") + " --scaler-from " + dir.file("train.h5") + " -o " + dir.file("new.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features train = read_features(dir.file("train.h5")), f = read_features(dir.file("new.h5"));
  EXPECT_EQ(f.feature_names, train.feature_names);
  EXPECT_EQ(f.feature_names, (std::vector<std::string>{"country_de", "country_uk", "income"}));
  EXPECT_EQ(f.ids.text, (std::vector<std::string>{"00107", "00108"}));
  EXPECT_NEAR(original(f, 0, 2), 30.0, 1e-4) << "filled with the training's median";
  EXPECT_NEAR(original(f, 1, 0) + original(f, 1, 1), 0.0, 1e-6) << "FR: no training column";
  // Options the training fixes cannot be given again.
  run = run_prep("table " + dir.file("new.csv") + " --scaler-from " + dir.file("train.h5") + " --missing drop -o " +
                     dir.file("x.h5"), dir);
  EXPECT_EQ(run.status, 2) << run.output;
  // The training's id column must be there.
  dir.write("noid.csv", "income,country\n1,UK\n");
  run = run_prep("table " + dir.file("noid.csv") + " --scaler-from " + dir.file("train.h5") + " -o " + dir.file("y.h5"), dir);
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.output.find("no id column 'member_no', which the training file"), std::string::npos) << run.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("y.h5")));
}

TEST(PrepTableRoles, BadOptionValues) {
  PrepDir dir;
  dir.write("t.csv", "id,a,b\n1,2,x\n2,3,y\n3,4,x\n");
  const std::pair<std::string, std::string> cases[] = {
      {"--missing zero", "--missing zero: unknown; use error, median, mean or drop"},
      {"--min-level-share 1.5", "--min-level-share 1.500000: must be a fraction in [0, 1)"},
      {"--max-levels 0", "--max-levels 0: must be at least 1"},
      {"--level-weight none", "--level-weight none: unknown; use block or column"},
      {"--exclude zz", "--exclude zz: no such column"},
      {"--categorical zz", "--categorical zz: no such column"},
      {"--features a --exclude a", "--features a and --exclude a: choose one"},
  };
  for (const auto& [args, message] : cases) {
    const auto run = run_prep("table " + dir.file("t.csv") + " -o " + dir.file("o.h5") + " " + args, dir);
    EXPECT_EQ(run.status, 2) << args << ": " << run.output;
    EXPECT_NE(run.output.find(message), std::string::npos) << args << ": " << run.output;
    EXPECT_FALSE(std::filesystem::exists(dir.file("o.h5"))) << args;
  }
}

// ---- real data ------------------------------------------------------------------------------

TEST(PrepTableRoles, RightSkewedColumnsGetANoteAgainstScipy) {
  const auto data = segforge::test::datasets_dir() / "wholesale_customers" / "wholesale_customers_data.csv";
  if (!std::filesystem::exists(data)) GTEST_SKIP() << data << " absent; set SEGFORGE_DATASETS";
  TableParams p;
  p.path = data.string();
  p.id_column = "none";
  const TableResult r = read_table(p);
  // scipy.stats.skew (scripts/make_table_fixtures.py) of the columns with >= 3 values, none
  // negative; Region is a code column (one-hot), so not a `value` feature here.
  const auto expected = segforge::test::read_key_values(segforge::test::fixture_path("prep/wholesale_skew.csv"));
  const std::vector<SkewedColumn> skewed = skewed_columns(r.features, TransformParams{});
  std::map<std::string, double> got;
  for (const auto& c : skewed) got[c.name] = c.skewness;
  std::size_t above = 0;
  for (const auto& [column, text] : expected) {
    if (column == "column") continue;
    const double want = std::stod(text);
    if (column == "Region" || want <= 2.0) {
      EXPECT_EQ(got.count(column), 0u) << column;
      continue;
    }
    ++above;
    ASSERT_EQ(got.count(column), 1u) << column;
    EXPECT_NEAR(got[column], want, 1e-9 * std::abs(want)) << column;
  }
  EXPECT_EQ(skewed.size(), above);
  EXPECT_EQ(skewed.front().name, "Delicassen") << "largest skewness first";
  // A column the user logs already, a 0/1 flag and a column with negative values get no note.
  TransformParams logged;
  logged.log_columns = {"Delicassen"};
  for (const auto& c : skewed_columns(r.features, logged)) EXPECT_NE(c.name, "Delicassen");
  PrepDir dir;
  std::string text = "id,flag,net,spend\n";
  for (int i = 0; i < 100; ++i)
    text += std::to_string(i + 1) + "," + (i == 0 ? "1" : "0") + "," + (i == 0 ? "500" : i % 2 ? "-1" : "1") + "," +
            (i == 0 ? "1000" : std::to_string(i % 3)) + "\n";
  const TableResult t = table(dir, text);
  const auto small = skewed_columns(t.features, TransformParams{});
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0].name, "spend");
  // Through the tool: one warning line naming the columns and the flag to pass.
  const auto run = run_prep("table '" + data.string() + "' --id-col none -o " + dir.file("w.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("warning: right-skewed columns (skewness > 2): Delicassen 11, Frozen 5.9"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("consider --log-columns Delicassen,Frozen,Milk,"), std::string::npos) << run.output;
}

TEST(PrepTableRoles, CustomerPersonalityAgainstPandas) {
  const auto data = segforge::test::datasets_dir() / "customer_personality" / "marketing_campaign.csv";
  if (!std::filesystem::exists(data)) GTEST_SKIP() << data << " absent; set SEGFORGE_DATASETS";
  PrepDir dir;
  const auto run = run_prep("table '" + data.string() + "' --missing median --as-of 2014-07-01 -o " + dir.file("cp.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("cp.h5"));
  for (const char* gone : {"ID", "Z_CostContact", "Z_Revenue", "Response"})
    EXPECT_EQ(std::count(f.feature_names.begin(), f.feature_names.end(), gone), 0) << gone;
  const auto expected = segforge::test::read_simple_csv(segforge::test::fixture_path("prep/customer_personality_expected.csv"));
  const auto fill = segforge::test::read_key_values(segforge::test::fixture_path("prep/customer_personality_fill.csv"));
  EXPECT_NE(run.output.find("24 empty, filled with " + fill.at("Income_median")), std::string::npos) << run.output;
  ASSERT_EQ(static_cast<std::size_t>(f.x.rows()), expected.rows.size());
  std::map<std::int64_t, std::size_t> row_of;
  for (std::size_t i = 0; i < f.ids.numeric.size(); ++i) row_of[f.ids.numeric[i]] = i;
  std::size_t checked = 0;
  for (const auto& row : expected.rows) {
    const auto i = static_cast<std::int64_t>(row_of.at(std::stoll(row[0])));
    for (std::size_t c = 1; c < expected.header.size(); ++c) {
      const std::int64_t j = index_of(f.feature_names, expected.header[c]);
      const double want = std::stod(row[c]);
      // float32 z-scores: about 1e-7 of the scale, times the z of the value.
      const double tol = 1e-6 * (std::abs(want) + std::abs(f.scaler.mean[static_cast<std::size_t>(j)]) +
                                 10 * f.scaler.scale[static_cast<std::size_t>(j)]);
      ASSERT_NEAR(original(f, i, j), want, tol)
          << expected.header[c] << " of ID " << row[0];
      ++checked;
    }
  }
  EXPECT_EQ(checked, expected.rows.size() * (expected.header.size() - 1));
}

TEST(PrepTableRoles, Kdd98FutureFundraisingKeepsItsRowIdsThroughPredict) {
  const auto folder = segforge::test::datasets_dir() / "kdd98_fundraising";
  if (!std::filesystem::exists(folder / "Fundraising.csv.gz") || !std::filesystem::exists(folder / "FutureFundraising.csv.gz"))
    GTEST_SKIP() << folder << "/Fundraising.csv.gz or FutureFundraising.csv.gz absent; set SEGFORGE_DATASETS";
  PrepDir dir;
  // Decompressed here, so the test does not depend on gzip support in the reader.
  for (const char* name : {"Fundraising", "FutureFundraising"})
    ASSERT_EQ(std::system(("zcat '" + (folder / (std::string(name) + ".csv.gz")).string() + "' > " + dir.file(std::string(name) + ".csv")).c_str()), 0);
  auto run = run_prep("table " + dir.file("Fundraising.csv") + " -o " + dir.file("train.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features train = read_features(dir.file("train.h5"));
  for (const char* gone : {"Row Id", "Row Id.", "TARGET_B", "TARGET_D"})
    EXPECT_EQ(std::count(train.feature_names.begin(), train.feature_names.end(), gone), 0) << gone << "\n" << run.output;
  EXPECT_EQ(train.ids.numeric.front(), 1);
  run = run_prep("table " + dir.file("FutureFundraising.csv") + " --scaler-from " + dir.file("train.h5") + " -o " +
                     dir.file("future.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  auto fit = segforge::test::run_binary(SEGFORGE_BINARY, "fit " + dir.file("train.h5") + " -k 3 --device cpu -o " + dir.file("model.h5"), dir);
  ASSERT_EQ(fit.status, 0) << fit.output;
  auto predict = segforge::test::run_binary(SEGFORGE_BINARY, "predict " + dir.file("model.h5") + " " + dir.file("future.h5") +
                                                                 " --device cpu -o " + dir.file("segments.csv"), dir);
  ASSERT_EQ(predict.status, 0) << predict.output;
  // The file's Row Id column, read independently (CR-only lines).
  std::ifstream in(dir.file("FutureFundraising.csv"), std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> file_ids;
  std::stringstream lines(all);
  std::string line;
  bool header = true;
  while (std::getline(lines, line, '\r')) {
    if (!line.empty() && line.front() == '\n') line.erase(0, 1);
    if (line.empty()) continue;
    if (header) { header = false; continue; }
    file_ids.push_back(line.substr(0, line.find(',')));
  }
  const auto segments = segforge::test::read_simple_csv(dir.file("segments.csv"));
  ASSERT_EQ(segments.header.at(0), "id");
  ASSERT_EQ(segments.rows.size(), file_ids.size());
  ASSERT_EQ(file_ids.size(), 2000u);
  for (std::size_t i = 0; i < file_ids.size(); ++i) ASSERT_EQ(segments.rows[i][0], file_ids[i]) << "row " << i;
  EXPECT_EQ(file_ids.front(), "1");
}

}  // namespace

namespace {

// rfm attributes share the level rules: a 0.5% country is pooled, and the country block
// weighs as one feature instead of reaching z = 14 (M5 in the five-datasets review).
TEST(PrepTableRoles, RfmAttributeLevelsArePooledAndWeightedAlike) {
  PrepDir dir;
  std::string gifts = "donor_id,gift_date,amount\n", attrs = "donor_id,country\n";
  for (int i = 1; i <= 200; ++i) {
    for (int g = 0; g <= i % 4; ++g)
      gifts += std::to_string(i) + ",2022-0" + std::to_string(1 + (i + g) % 9) + "-1" + std::to_string(g) + "," +
               std::to_string(5 + (i * 13) % 40) + "\n";
    attrs += std::to_string(i) + "," + (i <= 180 ? "UK" : i <= 199 ? "DE" : "CH") + "\n";
  }
  dir.write("gifts.csv", gifts);
  dir.write("attrs.csv", attrs);
  const auto run = run_prep("rfm " + dir.file("gifts.csv") + " --attributes " + dir.file("attrs.csv") +
                                " --categorical country --as-of 2023-01-01 -o " + dir.file("r.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("r.h5"));
  EXPECT_EQ(std::count(f.feature_names.begin(), f.feature_names.end(), "country_ch"), 0) << "CH is 0.5% of donors";
  const std::int64_t de = index_of(f.feature_names, "country_de"), uk = index_of(f.feature_names, "country_uk"),
                     other = index_of(f.feature_names, "country_other");
  double total = 0.0, largest = 0.0;
  for (std::int64_t j : {de, uk, other}) {
    double s = 0, ss = 0;
    for (std::int64_t i = 0; i < f.x.rows(); ++i) s += f.x(i, j);
    const double m = s / static_cast<double>(f.x.rows());
    for (std::int64_t i = 0; i < f.x.rows(); ++i) {
      ss += (f.x(i, j) - m) * (f.x(i, j) - m);
      largest = std::max(largest, static_cast<double>(std::abs(f.x(i, j))));
    }
    total += ss / static_cast<double>(f.x.rows());
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
  // By hand: p = 0.095, 0.9, 0.005; scale sqrt(0.085975 + 0.09 + 0.004975) = 0.42538; the CH
  // donor's country_other is (1 - 0.005) / 0.42538 = 2.339.
  EXPECT_NEAR(largest, 0.995 / std::sqrt(0.085975 + 0.09 + 0.004975), 1e-4);
}

}  // namespace

namespace {

// A training file from before table_columns existed still gives its id column (the review's
// H3: ids 0..1999 instead of Row Id 1..2000).
TEST(PrepTableRoles, OlderTrainingFileStillGivesItsIdColumn) {
  PrepDir dir;
  dir.write("train.csv", "Row Id,a,b\n1,2,3\n2,5,4\n3,1,9\n");
  auto run = run_prep("table " + dir.file("train.csv") + " --id-col 'Row Id' -o " + dir.file("train.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const std::string strip = "/usr/bin/python3 -c \"import h5py; f = h5py.File('" + dir.file("train.h5") +
                            "', 'r+'); del f.attrs['table_columns']; del f.attrs['table_missing']\"";
  if (std::system(strip.c_str()) != 0) GTEST_SKIP() << "needs Debian's python3-h5py to make an older file";
  dir.write("new.csv", "b,Row Id,a\n7,11,8\n6,12,5\n");
  run = run_prep("table " + dir.file("new.csv") + " --scaler-from " + dir.file("train.h5") + " -o " + dir.file("new.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("new.h5"));
  EXPECT_EQ(f.ids.numeric, (std::vector<std::int64_t>{11, 12}));
  EXPECT_EQ(f.feature_names, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
