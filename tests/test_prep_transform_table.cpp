// Transforms and scaling checked by hand (log1p, signed_log1p, winsorizing, standard, robust,
// none, the two-valued and share rules; the scaler's inverse gives original units back), and `segforge-prep table` on small
// tables and the real Mall Customers and customer-personality files.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/prep.hpp"
#include "test_prep_support.hpp"
#include "test_support.hpp"

using namespace segforge;
using namespace segforge::prep;
using segforge::test::PrepDir;

namespace {

RawFeatures columns(const std::vector<std::pair<std::string, FeatureKind>>& cols,
                    const std::vector<std::vector<double>>& rows, bool may_be_negative = false) {
  RawFeatures f;
  for (const auto& [name, kind] : cols) {
    f.names.push_back(name);
    f.kinds.push_back(kind);
    f.may_be_negative.push_back(may_be_negative);
  }
  f.values = Matrix<double>(static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(cols.size()));
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < cols.size(); ++j)
      f.values(static_cast<std::int64_t>(i), static_cast<std::int64_t>(j)) = rows[i][j];
  return f;
}

double original(const Prepared& p, std::int64_t i, std::int64_t j) {
  const auto jj = static_cast<std::size_t>(j);
  return inverse_transform(p.scaler.transform[jj], p.x(i, j) * p.scaler.scale[jj] + p.scaler.mean[jj]);
}

TEST(PrepTransform, StandardScalingOfLog1pByHand) {
  const double e = std::exp(1.0);
  // log1p gives 0, 1, 2: mean 1, population standard deviation sqrt(2/3).
  const RawFeatures f = columns({{"largest_gift", FeatureKind::money}}, {{0.0}, {e - 1}, {e * e - 1}});
  const Prepared p = transform(f, {});
  EXPECT_EQ(p.scaler.transform, std::vector<std::string>{"log1p"});
  EXPECT_NEAR(p.scaler.mean[0], 1.0, 1e-12);
  EXPECT_NEAR(p.scaler.scale[0], std::sqrt(2.0 / 3.0), 1e-12);
  const double z = 1.0 / std::sqrt(2.0 / 3.0);
  EXPECT_NEAR(p.x(0, 0), -z, 1e-6);
  EXPECT_NEAR(p.x(1, 0), 0.0, 1e-6);
  EXPECT_NEAR(p.x(2, 0), z, 1e-6);
  for (std::int64_t i = 0; i < 3; ++i) EXPECT_NEAR(original(p, i, 0), f.values(i, 0), 1e-5);
}

// Two-valued rule (transform.hpp): a flag held by 1 row in 5 is scaled by half its gap, so
// having it is (2 - 0.4) / 1 = 1.6 units from the mean instead of (2 - 0.4) / 0.8 = 2; a
// column with a third value, and a column of a level block, keep their standard deviation.
TEST(PrepTransform, TwoValuedFeaturesAreScaledByHalfTheirGap) {
  RawFeatures f = columns({{"flag", FeatureKind::fraction}, {"three", FeatureKind::fraction}, {"level", FeatureKind::indicator}},
                          {{0, 0, 0}, {0, 0, 0}, {0, 1, 0}, {0, 0, 0}, {2, 2, 1}});
  f.groups = {"", "", "region_"};
  const Prepared p = transform(f, {});
  EXPECT_NEAR(p.scaler.mean[0], 0.4, 1e-15);
  EXPECT_EQ(p.scaler.scale[0], 1.0);  // gap 2 / 2
  EXPECT_NEAR(p.x(4, 0), 1.6, 1e-6);
  EXPECT_NEAR(p.x(0, 0), -0.4, 1e-6);
  // 0, 0, 1, 0, 2: mean 0.6, population sd sqrt((3 * 0.36 + 0.16 + 1.96) / 5) = sqrt(0.64).
  EXPECT_NEAR(p.scaler.scale[1], 0.8, 1e-12);
  EXPECT_NEAR(p.scaler.scale[2], std::sqrt(0.2 * 0.8), 1e-12);
  for (std::int64_t i = 0; i < 5; ++i) EXPECT_NEAR(original(p, i, 0), f.values(i, 0), 1e-6);
  // A balanced flag: both rules give 0.5 for 0/1.
  const Prepared b = transform(columns({{"b", FeatureKind::indicator}}, {{0}, {1}, {0}, {1}}), {});
  EXPECT_EQ(b.scaler.scale[0], 0.5);
  // Robust scaling is not touched: the IQR of 0, 0, 0, 0, 2 is 0, so scale 1.
  TransformParams robust;
  robust.scaling = Scaling::robust;
  EXPECT_EQ(transform(f, robust).scaler.scale[0], 1.0);
}

// Share rule (levels.hpp): a composition's m columns share the scale sqrt(sum var / m), by
// hand below; the trend column beside them is not in the block.
TEST(PrepTransform, ShareBlocksShareOneScale) {
  RawFeatures f = columns({{"channel_share_a", FeatureKind::fraction}, {"channel_share_b", FeatureKind::fraction},
                           {"channel_share_c", FeatureKind::fraction}, {"trend", FeatureKind::fraction}},
                          {{1, 0, 0, -1}, {1, 0, 0, 0.5}, {0, 0.9, 0.1, 1}, {0.5, 0.5, 0, 0}});
  f.groups = {"channel_share_", "channel_share_", "channel_share_", ""};
  Prepared p = transform(f, {});
  const double trend_scale = p.scaler.scale[3];
  EXPECT_EQ(weight_share_blocks(f, p), 1);
  // Variances: a: mean 0.625, (2 * 0.140625 + 0.390625 + 0.015625) / 4 = 0.171875; b: mean
  // 0.35, (2 * 0.1225 + 0.3025 + 0.0225) / 4 = 0.1425; c: mean 0.025, (3 * 0.000625 +
  // 0.005625) / 4 = 0.001875.
  const double scale = std::sqrt((0.171875 + 0.1425 + 0.001875) / 3);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(p.scaler.scale[static_cast<std::size_t>(j)], scale, 1e-12) << j;
  EXPECT_EQ(p.scaler.scale[3], trend_scale);
  EXPECT_NEAR(p.x(2, 2), (0.1 - 0.025) / scale, 1e-6);
  for (std::int64_t i = 0; i < 4; ++i)
    for (std::int64_t j = 0; j < 3; ++j) EXPECT_NEAR(original(p, i, j), f.values(i, j), 1e-6);
  // The block's total variance stays m = 3, as per-column scaling gives it.
  double total = 0.0;
  for (std::int64_t j = 0; j < 3; ++j) {
    double s = 0, ss = 0;
    for (std::int64_t i = 0; i < 4; ++i) s += p.x(i, j);
    for (std::int64_t i = 0; i < 4; ++i) ss += (p.x(i, j) - s / 4) * (p.x(i, j) - s / 4);
    total += ss / 4;
  }
  EXPECT_NEAR(total, 3.0, 1e-5);
}

TEST(PrepTransform, TransformsFollowTheFeatureKind) {
  const RawFeatures f = columns({{"m", FeatureKind::money},
                                 {"c", FeatureKind::count},
                                 {"d", FeatureKind::days},
                                 {"s", FeatureKind::fraction},
                                 {"i", FeatureKind::indicator},
                                 {"v", FeatureKind::value}},
                                {{-50, 1, 10, 0.5, 1, 3}, {20, 2, 20, 0.25, 0, 4}, {3000, 30, 30, 1, 1, 5}},
                                true);
  const Prepared p = transform(f, {});
  EXPECT_EQ(p.scaler.transform,
            (std::vector<std::string>{"signed_log1p", "log1p", "identity", "identity", "identity", "identity"}));
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 6; ++j)
      EXPECT_NEAR(original(p, i, j), f.values(i, j), 1e-5 * (1 + std::abs(f.values(i, j)))) << i << "," << j;
  TransformParams no_log;
  no_log.log = false;
  for (const auto& t : transform(f, no_log).scaler.transform) EXPECT_EQ(t, "identity");
  TransformParams some;
  some.log_columns = {"v"};
  EXPECT_EQ(transform(f, some).scaler.transform[5], "log1p");
  EXPECT_EQ(inverse_transform("signed_log1p", -std::log1p(50.0)), -50.0);
  EXPECT_THROW(inverse_transform("sqrt", 1.0), InputError);
}

TEST(PrepTransform, RobustAndNoScaling) {
  const RawFeatures f = columns({{"v", FeatureKind::value}}, {{1}, {2}, {3}, {4}, {100}});
  TransformParams robust;
  robust.scaling = Scaling::robust;
  const Prepared r = transform(f, robust);
  EXPECT_EQ(r.scaler.mean[0], 3.0);   // median
  EXPECT_EQ(r.scaler.scale[0], 2.0);  // 4 - 2
  EXPECT_FLOAT_EQ(r.x(4, 0), 48.5f);
  TransformParams none;
  none.scaling = Scaling::none;
  const Prepared n = transform(f, none);
  EXPECT_EQ(n.scaler.mean[0], 0.0);
  EXPECT_EQ(n.scaler.scale[0], 1.0);
  EXPECT_EQ(n.x(4, 0), 100.0f);
  // A constant column keeps scale 1 rather than dividing by 0.
  const Prepared c = transform(columns({{"v", FeatureKind::value}}, {{7}, {7}}), {});
  EXPECT_EQ(c.scaler.scale[0], 1.0);
  EXPECT_EQ(c.x(0, 0), 0.0f);
}

TEST(PrepTransform, WinsorizingAtAQuantile) {
  std::vector<std::vector<double>> rows;
  for (int v = 1; v <= 100; ++v) rows.push_back({double(v), (v % 2) * 1.0, v / 100.0});
  const RawFeatures f =
      columns({{"d", FeatureKind::days}, {"i", FeatureKind::indicator}, {"s", FeatureKind::fraction}}, rows);
  TransformParams p;
  p.clip_quantile = 0.9;
  p.scaling = Scaling::none;
  const Prepared w = transform(f, p);
  // numpy.quantile(1..100, 0.1) = 10.9 and (0.9) = 90.1.
  EXPECT_FLOAT_EQ(w.x(0, 0), 10.9f);
  EXPECT_FLOAT_EQ(w.x(50, 0), 51.0f);
  EXPECT_FLOAT_EQ(w.x(99, 0), 90.1f);
  EXPECT_EQ(w.x(0, 2), 0.01f) << "fractions are not clipped";
  EXPECT_EQ(w.x(0, 1), 1.0f) << "indicators are not clipped";
  p.clip_quantile = 0.4;
  EXPECT_THROW(transform(f, p), InputError);
}

// ---- table --------------------------------------------------------------------------------------

/// A value of a written file in original units, through its /scaler.
double original_from(const Features& f, std::int64_t i, std::int64_t j) {
  const auto jj = static_cast<std::size_t>(j);
  return inverse_transform(f.scaler.transform[jj], f.x(i, j) * f.scaler.scale[jj] + f.scaler.mean[jj]);
}

TableResult table(const std::string& text, const std::function<void(TableParams&)>& adjust = {}) {
  PrepDir dir;
  TableParams p;
  p.path = dir.write("table.csv", text);
  if (adjust) adjust(p);
  return read_table(p);
}

TEST(PrepTable, NumericColumnsIdAndCleaning) {
  const TableResult r = table(
      "ID,name,income,age\n"
      "3,ann,100,30\n"
      "1,bob,200.5,40\n"
      "1,bob,200.5,40\n"  // exact duplicate
      ",cy,300,50\n"      // no id
      "7,dee,x,60\n"      // text in income: a bad row
      "1,eve,50,20\n",    // the id again: kept, noted
      [](TableParams& p) {
        p.on_bad_row = BadRows::skip;
        p.columns = {"income", "age"};
      });
  const TableSummary& s = r.summary;
  EXPECT_EQ(s.id_column, "ID");
  EXPECT_EQ(s.columns.back().why, "not in --features");
  EXPECT_EQ(r.features.names, (std::vector<std::string>{"income", "age"}));
  EXPECT_EQ(s.file.duplicate_rows, 1);
  EXPECT_EQ(s.file.missing_id_rows, 1);
  EXPECT_EQ(s.file.bad_rows_skipped, 1);
  ASSERT_EQ(s.file.examples.size(), 1u);
  EXPECT_NE(s.file.examples[0].find("line 6, column 'income'"), std::string::npos) << s.file.examples[0];
  EXPECT_EQ(s.duplicate_ids, 1);
  EXPECT_EQ(r.features.ids.numeric, (std::vector<std::int64_t>{3, 1, 1})) << "file order";
  EXPECT_EQ(r.features.values(1, 0), 200.5);
  EXPECT_EQ(r.features.values(2, 1), 20);
}

TEST(PrepTable, ChosenColumnsInOrderAndNoId) {
  const TableResult r = table("a,b,c\n1,2,3\n4,5,6\n", [](TableParams& p) {
    p.columns = {"c", "a"};
    p.id_column = "none";
  });
  EXPECT_EQ(r.features.names, (std::vector<std::string>{"c", "a"}));
  EXPECT_TRUE(r.features.ids.empty());
  EXPECT_EQ(r.features.values(1, 0), 6);
  EXPECT_EQ(r.features.values(1, 1), 4);
}

TEST(PrepTable, RealTablesThroughTheCommandLine) {
  const auto mall = segforge::test::datasets_dir() / "mall_customers" / "Mall_Customers.csv";
  const auto wholesale = segforge::test::datasets_dir() / "wholesale_customers" / "wholesale_customers_data.csv";
  if (!std::filesystem::exists(mall) || !std::filesystem::exists(wholesale))
    GTEST_SKIP() << "Mall_Customers.csv or wholesale_customers_data.csv absent; set SEGFORGE_DATASETS";
  PrepDir dir;
  auto run = segforge::test::run_prep("table '" + mall.string() + "' -o " + dir.file("mall.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features m = read_features(dir.file("mall.h5"));
  EXPECT_EQ(m.x.rows(), 200);
  // Genre (Male / Female) is detected as a category and one-hot encoded.
  EXPECT_EQ(m.feature_names,
            (std::vector<std::string>{"genre_female", "genre_male", "Age", "Annual_Income", "Spending_Score"}));
  EXPECT_EQ(m.ids.numeric.front(), 1);
  EXPECT_EQ(std::lround(original_from(m, 0, 2)), 19);
  EXPECT_EQ(std::lround(original_from(m, 0, 1)), 1) << "the first customer is male";

  // Semicolon-separated, no id column, heavily skewed spending: log1p the money columns.
  run = segforge::test::run_prep("table '" + wholesale.string() + "' -o " + dir.file("w.h5") +
                                     " --log-columns Fresh,Milk,Grocery,Frozen,Detergents_Paper,Delicassen --scale robust",
                                 dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features w = read_features(dir.file("w.h5"));
  EXPECT_EQ(w.x.rows(), 440);
  // Channel (1 Horeca, 2 Retail) and Region (1 Lisbon, 2 Oporto, 3 other) are codes: one-hot.
  EXPECT_EQ(w.feature_names, (std::vector<std::string>{"channel_1", "channel_2", "region_1", "region_2", "region_3",
                                                       "Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper",
                                                       "Delicassen"}));
  EXPECT_TRUE(w.ids.empty());
  EXPECT_EQ(w.scaler.transform[5], "log1p");
  EXPECT_EQ(std::lround(original_from(w, 0, 5)), 12669);  // Fresh of the first row (Channel 2, Region 3)
  EXPECT_EQ(std::lround(original_from(w, 0, 1)), 1);
  EXPECT_EQ(std::lround(original_from(w, 0, 4)), 1);
  EXPECT_EQ(inspect_features(dir.file("w.h5")).attributes.at("scale"), "robust");
}

}  // namespace
