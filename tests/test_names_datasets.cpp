// The automatic names on the five real datasets in ../shared/datasets (skipped with a message
// where they are absent): every word of every automatic name agrees in sign with the segment's
// z-score on the role it speaks of, recomputed here from the rows of each segment (not from the
// profiles the names were made from), with the roles of docs/segments.md's table.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "segforge/backend.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/segments.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace segforge {
namespace {

struct RealDataset {
  const char* label;
  const char* file;     ///< under datasets_dir()
  const char* prep;     ///< segforge-prep arguments after the input file
  bool gzip = false;    ///< decompress first (segforge-prep reads plain CSV)
  const char* audience = "auto";
};

const RealDataset kDatasets[] = {
    {"online_retail", "online_retail/online_retail_sample_40000.csv", "rfm", false, "customers"},
    {"kdd98", "kdd98_fundraising/Fundraising.csv.gz",
     "table --id-col 'Row Id' --columns NUMPROM RAMNTALL MAXRAMNT LASTGIFT totalmonths TIMELAG AVGGIFT INCOME WEALTH",
     true, "donors"},
    {"customer_personality", "customer_personality/marketing_campaign.csv",
     "table --id-col ID --missing median --columns Income Kidhome Teenhome Recency MntWines MntFruits "
     "MntMeatProducts MntFishProducts MntSweetProducts MntGoldProds NumDealsPurchases NumWebPurchases "
     "NumCatalogPurchases NumStorePurchases NumWebVisitsMonth AcceptedCmp1 AcceptedCmp2 AcceptedCmp3 Response"},
    {"mall", "mall_customers/Mall_Customers.csv", "table --id-col CustomerID --columns Age Annual_Income Spending_Score"},
    {"wholesale", "wholesale_customers/wholesale_customers_data.csv",
     "table --id-col none --columns Fresh Milk Grocery Frozen Detergents_Paper Delicassen "
     "--log-columns Fresh Milk Grocery Frozen Detergents_Paper Delicassen"},
};

std::vector<std::string> words_of(const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(name);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

class NamesOnRealData : public test::TempDirTest, public ::testing::WithParamInterface<RealDataset> {};

TEST_P(NamesOnRealData, EveryWordAgreesInSignWithItsRole) {
  const RealDataset& ds = GetParam();
  const fs::path input = test::datasets_dir() / ds.file;
  if (!fs::exists(input)) GTEST_SKIP() << "dataset absent: " << input << " (set SEGFORGE_DATASETS)";
  std::string csv = input.string();
  std::string out;
  if (ds.gzip) {
    csv = path("input.csv");
    ASSERT_EQ(shell("(gzip -dc '" + input.string() + "' > '" + csv + "')", &out), 0) << out;
  }
  const std::string features = path("f.h5");
  const std::string prep = ds.prep;
  const auto space = std::min(prep.find(' '), prep.size());  // "table --id-col ...": the command, then its flags
  ASSERT_EQ(shell(std::string(SEGFORGE_PREP_BINARY) + " " + prep.substr(0, space) + " '" + csv + "'" +
                      prep.substr(space) + " -o '" + features + "'",
                  &out),
            0)
      << out;
  const Features f = read_features(features);
  const std::int64_t n = f.x.rows(), d = f.x.cols();
  const std::vector<FeatureRole> roles = feature_roles(f.feature_names);
  // Column mean and population sd, computed here.
  std::vector<double> mean(d, 0.0), sd(d, 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) mean[j] += f.x(i, j) / static_cast<double>(n);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) sd[j] += std::pow(f.x(i, j) - mean[j], 2) / static_cast<double>(n);
  for (auto& v : sd) v = std::sqrt(v);

  auto backend = make_cpu_backend();
  auto data = backend->upload(f.x.view());
  const Audience audience = parse_audience(ds.audience).value();
  int checked = 0;
  for (int k = 2; k <= 6; ++k) {
    LloydParams p;
    p.n_clusters = k;
    p.n_init = 3;
    const KMeansResult fit = fit_lloyd(*backend, *data, p);
    const Assignment a = predict(*backend, *data, fit.centroids.view());
    std::vector<std::int64_t> sizes(k, 0);
    for (auto l : a.labels) ++sizes[l];
    const auto profiles = segment_profiles(fit.centroids.view(), sizes, backend->column_stats(*data), f.scaler);
    const auto entries = name_segments(profiles, f.feature_names, roles, audience);
    for (int c = 0; c < k; ++c) {
      if (sizes[c] == 0) continue;
      // The segment's z-score per feature from its rows, and per role the mean over its features.
      std::vector<double> z(d, 0.0);
      for (std::int64_t i = 0; i < n; ++i)
        if (a.labels[i] == c)
          for (std::int64_t j = 0; j < d; ++j) z[j] += f.x(i, j) / static_cast<double>(sizes[c]);
      for (std::int64_t j = 0; j < d; ++j) z[j] = sd[j] > 0 ? (z[j] - mean[j]) / sd[j] : 0.0;
      const std::string& name = entries[c].name;
      std::cout << "  [names] " << ds.label << " K=" << k << " segment " << c << " (" << sizes[c] << "): " << name << "\n";
      for (const std::string& w : words_of(name)) {
        for (const NameWord& nw : name_words()) {
          if (w != nw.word) continue;
          double role_z = 0.0;
          int count = 0;
          for (std::int64_t j = 0; j < d; ++j)
            if (roles[j] == nw.role) {
              role_z += z[j];
              ++count;
              // No feature of that role points the other way by half a standard deviation.
              EXPECT_LT(-nw.sign * z[j], 0.5) << name << ": '" << w << "' but " << f.feature_names[j] << " z " << z[j];
            }
          ASSERT_GT(count, 0) << name << ": '" << w << "' speaks of a role no feature has";
          EXPECT_GT(nw.sign * role_z / count, 0.0) << ds.label << " K=" << k << " " << name << ": '" << w << "' against "
                                                  << feature_role_name(nw.role) << " z " << role_z / count;
          ++checked;
        }
      }
      // "High X" / "Low X" and "(high X)" / "(low X)": the sign of X's z-score.
      for (std::int64_t j = 0; j < d; ++j) {
        const std::string& fname = f.feature_names[j];
        for (const char* hi : {"High ", "(high "})
          if (name.find(std::string(hi) + fname) != std::string::npos) {
            EXPECT_GT(z[j], 0.0) << name;
            ++checked;
          }
        for (const char* lo : {"Low ", "(low "})
          if (name.find(std::string(lo) + fname) != std::string::npos) {
            EXPECT_LT(z[j], 0.0) << name;
            ++checked;
          }
      }
    }
  }
  EXPECT_GT(checked, 0) << "no word was checked: the names say nothing";
}

INSTANTIATE_TEST_SUITE_P(Five, NamesOnRealData, ::testing::ValuesIn(kDatasets),
                         [](const auto& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace segforge
