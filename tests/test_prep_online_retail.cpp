// segforge-prep rfm on the real UCI Online Retail sample (40 000 invoice lines): every
// customer's features equal an independent pandas computation (scripts/make_prep_fixtures.py
// → tests/fixtures/prep/), the cleaning counts agree, and the written features.h5 reads back
// through the engine's reader with the scaler giving original units back.

#include <cmath>
#include <filesystem>

#include "segforge/io.hpp"
#include "segforge/prep.hpp"
#include "test_prep_support.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace segforge;
using namespace segforge::test;

namespace {

std::string retail_csv() {
  return (datasets_dir() / "online_retail" / "online_retail_sample_40000.csv").string();
}

#define SKIP_WITHOUT_RETAIL()                                                                   \
  do {                                                                                          \
    if (!fs::exists(retail_csv()))                                                              \
      GTEST_SKIP() << retail_csv() << " is absent; set SEGFORGE_DATASETS to the shared datasets"; \
  } while (0)

const std::vector<std::string> kIntegerColumns = {"recency_days", "frequency_gifts", "tenure_days",
                                                  "gifts_12m"};

bool is_integer_column(const std::string& name) {
  return std::find(kIntegerColumns.begin(), kIntegerColumns.end(), name) != kIntegerColumns.end();
}

struct Expected {
  std::vector<std::int64_t> ids;
  std::vector<std::string> names;
  std::vector<std::vector<double>> rows;  // [customer][feature]
};

Expected expected_features() {
  const SimpleCsv csv = read_simple_csv(fixture_path("prep/online_retail_expected.csv"));
  Expected e;
  e.names.assign(csv.header.begin() + 1, csv.header.end());
  for (const auto& row : csv.rows) {
    e.ids.push_back(std::stoll(row.at(0)));
    std::vector<double> values;
    for (std::size_t j = 1; j < row.size(); ++j) values.push_back(std::stod(row[j]));
    e.rows.push_back(values);
  }
  return e;
}

TEST(PrepOnlineRetail, EveryCustomersFeaturesEqualPandas) {
  SKIP_WITHOUT_RETAIL();
  prep::RfmParams params;
  params.gifts_path = retail_csv();
  const prep::RfmResult r = prep::compute_rfm(params);
  const Expected e = expected_features();
  const prep::RawFeatures& f = r.features;
  ASSERT_EQ(f.ids.numeric, e.ids) << "the same customers, ordered by CustomerID";
  ASSERT_GE(f.names.size(), e.names.size());
  for (std::size_t j = 0; j < e.names.size(); ++j) {
    ASSERT_EQ(f.names[j], e.names[j]);
    for (std::size_t i = 0; i < e.rows.size(); ++i) {
      const double got = f.values(static_cast<std::int64_t>(i), static_cast<std::int64_t>(j));
      const double want = e.rows[i][j];
      if (is_integer_column(e.names[j]))
        ASSERT_EQ(got, want) << e.names[j] << " of customer " << e.ids[i];
      else
        ASSERT_NEAR(got, want, 1e-9 * std::max(1.0, std::abs(want))) << e.names[j] << " of customer " << e.ids[i];
    }
  }
}

TEST(PrepOnlineRetail, CleaningCountsEqualPandas) {
  SKIP_WITHOUT_RETAIL();
  prep::RfmParams params;
  params.gifts_path = retail_csv();
  const prep::RfmSummary s = prep::compute_rfm(params).summary;
  const auto want = read_key_values(fixture_path("prep/online_retail_counts.csv"));
  const std::map<std::string, std::int64_t> got = {
      {"gifts_rows_read", s.gifts.rows_read},
      {"gifts_duplicate_rows", s.gifts.duplicate_rows},
      {"gifts_missing_id_rows", s.gifts.missing_id_rows},
      {"gifts_unparseable_date_rows", s.gifts.unparseable_date_rows},
      {"gifts_rows_used", s.gifts.rows_used},
      {"negative_rows", s.negative_rows},
      {"history_days", s.history_days},
      {"transactions", s.transactions},
      {"gift_transactions", s.gift_transactions},
      {"refund_transactions", s.refund_transactions},
      {"zero_transactions", s.zero_transactions},
      {"donors_seen", s.donors_seen},
      {"donors_without_gifts", s.donors_without_gifts},
      {"n_samples", s.n_samples}};
  for (const auto& [key, value] : got) EXPECT_EQ(std::to_string(value), want.at(key)) << key;
  EXPECT_EQ(s.as_of, want.at("as_of"));
  EXPECT_EQ(s.date_format, "%m/%d/%Y");
  EXPECT_EQ(s.transaction_column, "InvoiceNo");
  EXPECT_EQ(s.amount_source, "Quantity x UnitPrice");
  EXPECT_EQ(s.gifts.bad_rows_skipped, 0);
  // Barely one year of data: the small-data warning is printed (and --strict refuses, below).
  ASSERT_EQ(s.warnings.size(), 1u);
  EXPECT_NE(s.warnings[0].find("less than 2 years"), std::string::npos);
}

TEST(PrepOnlineRetail, WrittenFileReadsBackInOriginalUnits) {
  SKIP_WITHOUT_RETAIL();
  PrepDir dir;
  const std::string out = dir.file("features.h5");
  const PrepOutcome run = run_prep("rfm '" + retail_csv() + "' -o '" + out + "'", dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("exact duplicate rows dropped"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("warning: only 374 days of history"), std::string::npos) << run.output;

  const Features f = read_features(out);
  const Expected e = expected_features();
  ASSERT_EQ(f.ids.numeric, e.ids);
  ASSERT_EQ(f.scaler.transform.size(), f.feature_names.size());
  for (std::size_t j = 0; j < e.names.size(); ++j) {
    ASSERT_EQ(f.feature_names[j], e.names[j]);
    const std::string& t = f.scaler.transform[j];
    for (std::size_t i = 0; i < e.rows.size(); ++i) {
      const double scaled = f.x(static_cast<std::int64_t>(i), static_cast<std::int64_t>(j));
      const double original = prep::inverse_transform(t, scaled * f.scaler.scale[j] + f.scaler.mean[j]);
      const double want = e.rows[i][j];
      if (is_integer_column(e.names[j]))
        ASSERT_EQ(std::llround(original), want) << e.names[j] << " of customer " << e.ids[i];
      else
        ASSERT_NEAR(original, want, 1e-5 * (1.0 + std::abs(want))) << e.names[j] << " of customer " << e.ids[i];
    }
  }
  // Transforms as documented: log1p on counts, signed_log1p on netted money, none on days.
  EXPECT_EQ(f.scaler.transform[0], "identity");      // recency_days
  EXPECT_EQ(f.scaler.transform[1], "log1p");         // frequency_gifts
  EXPECT_EQ(f.scaler.transform[2], "signed_log1p");  // monetary_total
  EXPECT_EQ(f.scaler.transform[4], "log1p");         // largest_gift

  // Standard scaling: every column has mean 0 and standard deviation 1 (float32 sums).
  for (std::int64_t j = 0; j < f.x.cols(); ++j) {
    double sum = 0, ss = 0;
    for (std::int64_t i = 0; i < f.x.rows(); ++i) sum += f.x(i, j);
    const double mean = sum / static_cast<double>(f.x.rows());
    for (std::int64_t i = 0; i < f.x.rows(); ++i) ss += (f.x(i, j) - mean) * (f.x(i, j) - mean);
    EXPECT_NEAR(mean, 0.0, 1e-5) << f.feature_names[static_cast<std::size_t>(j)];
    EXPECT_NEAR(std::sqrt(ss / static_cast<double>(f.x.rows())), 1.0, 1e-4) << f.feature_names[static_cast<std::size_t>(j)];
  }

  // The cleaning summary is stored as root attributes.
  const FeatureFileInfo info = inspect_features(out);
  const auto want = read_key_values(fixture_path("prep/online_retail_counts.csv"));
  EXPECT_EQ(info.attributes.at("format"), "segforge-features");
  EXPECT_EQ(info.attributes.at("as_of"), want.at("as_of"));
  for (const char* key : {"gifts_rows_read", "gifts_duplicate_rows", "gifts_missing_id_rows", "transactions",
                          "refund_transactions", "donors_without_gifts", "n_samples"})
    EXPECT_EQ(info.attributes.at(key), want.at(key)) << key;
  EXPECT_EQ(info.attributes.at("scale"), "standard");
  EXPECT_NE(info.attributes.at("warnings").find("less than 2 years"), std::string::npos);
}

TEST(PrepOnlineRetail, StrictRefusesLessThanTwoYearsOfHistory) {
  SKIP_WITHOUT_RETAIL();
  PrepDir dir;
  const PrepOutcome run = run_prep("rfm '" + retail_csv() + "' --strict -o '" + dir.file("f.h5") + "'", dir);
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_NE(run.output.find("less than 2 years"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--strict"), std::string::npos) << run.output;
  EXPECT_TRUE(dir.entries().empty()) << "nothing written";
}

TEST(PrepOnlineRetail, EngineFitsThePreparedFile) {
  SKIP_WITHOUT_RETAIL();
  PrepDir dir;
  const std::string features = dir.file("features.h5"), model = dir.file("model.h5");
  ASSERT_EQ(run_prep("rfm '" + retail_csv() + "' -o '" + features + "'", dir).status, 0);
  const PrepOutcome fit = run_binary(SEGFORGE_BINARY, "fit '" + features + "' -k 4 --device cpu -o '" + model + "'", dir);
  ASSERT_EQ(fit.status, 0) << fit.output;
  const Model m = read_model(model);
  EXPECT_EQ(m.centroids.rows(), 4);
  EXPECT_EQ(m.feature_names, read_features(features).feature_names);
  EXPECT_EQ(m.scaler.transform, read_features(features).scaler.transform);
}

}  // namespace
