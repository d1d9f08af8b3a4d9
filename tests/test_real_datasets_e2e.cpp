// End to end on the five real datasets in ../shared/datasets (each skipped with a message where
// its folder is absent), as a user runs them: the raw file through segforge-prep with as few
// flags as it needs, then `segforge sweep --k 2:8`, `fit -k <recommended> --labels segments.csv`
// and `report`. Asserted: no id-like column among /feature_names; the ids in segments.csv are
// the file's own ids as the CSV spells them (read here by pandas with dtype=str, independently of
// segforge-prep; KDD98's FutureFundraising also through --scaler-from and `predict`; Online
// Retail's customers recomputed by pandas from the cleaning rules of docs/prep.md); the
// recommended K is not flagged by the sweep's own minimum-segment rule; and the report renders in
// headless Chromium with no clipped axis (test::kLayoutCheck, as test_report.cpp uses it).
// That the automatic names agree with the profiles is test_names_datasets.cpp's.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "segforge/io.hpp"
#include "test_prep_support.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace segforge {
namespace {

struct RealDataset {
  const char* label;
  const char* folder;        ///< under datasets_dir()
  const char* file;          ///< in folder; ".gz" is decompressed first (segforge-prep reads plain CSV)
  const char* command;       ///< segforge-prep's command
  const char* prep_flags;    ///< what a user passes beyond the file and -o
  const char* fit_flags;     ///< beyond -k
  const char* id_column;     ///< the file's id column ("" where it has none: ids are row numbers)
  std::vector<std::string> id_like;  ///< the file's columns that identify a row, not describe it
};

const RealDataset kDatasets[] = {
    {"online_retail", "online_retail", "online_retail_sample_40000.csv", "rfm", "", "--audience customers", "CustomerID",
     {"CustomerID", "InvoiceNo", "StockCode"}},
    {"kdd98", "kdd98_fundraising", "Fundraising.csv.gz", "table", "", "", "Row Id", {"Row Id", "Row Id."}},
    {"customer_personality", "customer_personality", "marketing_campaign.csv", "table", "--missing median", "", "ID", {"ID"}},
    {"mall", "mall_customers", "Mall_Customers.csv", "table", "", "", "CustomerID", {"CustomerID"}},
    // No id column: the warning tells the user to confirm with --id-col none, and ids are row numbers.
    {"wholesale", "wholesale_customers", "wholesale_customers_data.csv", "table", "--id-col none", "", "", {}},
};

// The raw CSV read by pandas, every field as the file spells it (a byte-order mark is not part of
// the first name): `columns FILE OUT` writes the
// header, one name a line; `column FILE NAME OUT` that column's values; `retail FILE OUT` the ids
// of the customers with at least one gift (an invoice whose net amount is > 0) after the cleaning
// of docs/prep.md: exact duplicate rows dropped, rows without an id dropped (every date of the
// sample is readable and before the automatic as-of).
constexpr const char* kReader = R"PY(
import sys
import pandas as pd
mode, path, out = sys.argv[1], sys.argv[2], sys.argv[-1]
df = pd.read_csv(path, sep=None, engine='python', dtype=str, keep_default_na=False, encoding='utf-8-sig')
if mode == 'columns':
    values = list(df.columns)
elif mode == 'column':
    values = list(df[sys.argv[3]])
else:
    df = df.drop_duplicates()
    df = df[df['CustomerID'].str.strip() != '']
    dates = pd.to_datetime(df['InvoiceDate'], format='%m/%d/%Y %H:%M')
    assert dates.notna().all() and dates.min().year >= 1900
    net = (df['Quantity'].astype(float) * df['UnitPrice'].astype(float)).groupby([df['CustomerID'], df['InvoiceNo']]).sum()
    values = sorted(set(c for (c, _), v in net.items() if round(v, 6) > 0))
with open(out, 'w') as f:
    for v in values:
        f.write(v + '\n')
)PY";

std::string quote(const std::string& s) { return "'" + s + "'"; }

class RealDatasetEndToEnd : public test::TempDirTest, public ::testing::WithParamInterface<RealDataset> {
 protected:
  std::vector<std::string> read_lines(const std::string& file) const {
    std::ifstream in(file);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  /// pandas' reading of `csv` (kReader); fails the test where the reader fails.
  std::vector<std::string> pandas(const std::string& args) const {
    if (!fs::exists(path("reader.py"))) std::ofstream(path("reader.py")) << kReader;
    std::string out;
    const std::string result = path("pandas.txt");
    EXPECT_EQ(shell("/usr/bin/python3 " + quote(path("reader.py")) + " " + args + " " + quote(result), &out), 0) << out;
    return read_lines(result);
  }
  int segforge(const std::string& args, std::string* out) const {
    return shell(std::string(SEGFORGE_BINARY) + " " + args + " --device cpu", out);
  }
};

std::vector<std::string> ids_of(const std::string& segments_csv) {
  const auto csv = test::read_simple_csv(segments_csv);
  EXPECT_EQ(csv.header.at(0), "id");
  std::vector<std::string> ids;
  for (const auto& row : csv.rows) ids.push_back(row.at(0));
  return ids;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

TEST_P(RealDatasetEndToEnd, FromTheRawFileToTheReport) {
  const RealDataset& ds = GetParam();
  const fs::path folder = test::datasets_dir() / ds.folder;
  if (!fs::exists(folder)) GTEST_SKIP() << "dataset folder absent: " << folder << " (set SEGFORGE_DATASETS)";
  std::string out;
  std::string csv = (folder / ds.file).string();
  if (csv.ends_with(".gz")) {
    const std::string plain = path(fs::path(ds.file).stem().string());
    ASSERT_EQ(shell("(gzip -dc " + quote(csv) + " > " + quote(plain) + ")", &out), 0) << out;
    csv = plain;
  }
  const std::string features = path("features.h5"), sweep = path("sweep.json"), model = path("model.h5"),
                    segments = path("segments.csv"), report = path("report.html");
  ASSERT_EQ(shell(std::string(SEGFORGE_PREP_BINARY) + " " + ds.command + " " + quote(csv) + " " + ds.prep_flags +
                      " -o " + quote(features),
                  &out),
            0)
      << out;

  // (1) No id-like column among the features: the dataset's id columns, checked against the
  // header pandas reads, and no feature named like an id or a member number.
  const std::vector<std::string> header = pandas("columns " + quote(csv));
  for (const std::string& id : ds.id_like)
    ASSERT_NE(std::find(header.begin(), header.end(), id), header.end()) << id << " is not a column of " << csv;
  const Features f = read_features(features);
  const std::regex id_name(R"((^|[^a-z])(id|row ?id\.?|member\w*|customer_?id)([^a-z]|$))", std::regex::icase);
  for (const std::string& name : f.feature_names) {
    EXPECT_FALSE(std::regex_search(name, id_name)) << "an id-like feature: " << name;
    for (const std::string& id : ds.id_like) {
      EXPECT_NE(lower(name), lower(id)) << "the id column " << id << " is a feature";
      EXPECT_FALSE(lower(name).starts_with(lower(id) + "_")) << "the id column " << id << " one-hot encoded: " << name;
    }
  }
  if (ds.id_like.empty())
    for (const std::string& column : header) EXPECT_FALSE(std::regex_search(column, id_name)) << column;

  // (3) The sweep's recommended K is not one its own rule flags.
  ASSERT_EQ(segforge("sweep " + quote(features) + " --k 2:8 -o " + quote(sweep), &out), 0) << out;
  nlohmann::json s;
  std::ifstream(sweep) >> s;
  const int k = s.at("recommended_k").get<int>();
  const auto min_size = s.at("min_segment_size").get<std::int64_t>();
  std::cout << "  [sweep] " << ds.label << ": recommended K " << k << ", min_segment_size " << min_size << ", "
            << s.at("reason").get<std::string>() << "\n";
  if (k == 0) {
    EXPECT_FALSE(s.at("reason").get<std::string>().empty()) << "recommended_k 0 without a reason";
    GTEST_SKIP() << ds.label << ": no K recommended: " << s.at("reason").get<std::string>();
  }
  bool found = false;
  for (const auto& r : s.at("records")) {
    if (r.at("k").get<int>() != k) continue;
    found = true;
    EXPECT_GE(r.at("smallest_segment").get<std::int64_t>(), min_size) << r.dump();
    EXPECT_FALSE(r.at("over_segmented").get<bool>()) << r.dump();
    std::cout << "  [sweep] " << ds.label << ": smallest segment at K " << k << ": " << r.at("smallest_segment") << " of "
              << s.at("n_samples") << " (sizes " << r.at("sizes").dump() << ")\n";
  }
  ASSERT_TRUE(found) << "no record for the recommended K " << k;

  ASSERT_EQ(segforge("fit " + quote(features) + " -k " + std::to_string(k) + " " + ds.fit_flags + " -o " + quote(model) +
                         " --labels " + quote(segments),
                     &out),
            0)
      << out;
  {  // the segments the user gets are the ones the sweep judged: none below the minimum either
    std::map<std::string, std::int64_t> sizes;
    for (const auto& row : test::read_simple_csv(segments).rows) ++sizes[row.at(1)];
    EXPECT_EQ(sizes.size(), static_cast<std::size_t>(k));
    for (const auto& [segment, size] : sizes) EXPECT_GE(size, min_size) << "segment " << segment;
  }

  // (2) The ids in segments.csv are the file's, as the CSV spells them, in the file's order.
  const std::vector<std::string> ids = ids_of(segments);
  const std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size()) << "an id twice in segments.csv";
  if (std::string(ds.command) == "rfm") {
    const std::vector<std::string> raw = pandas("column " + quote(csv) + " " + quote(ds.id_column));
    const std::set<std::string> in_file(raw.begin(), raw.end());
    for (const std::string& id : ids) EXPECT_TRUE(in_file.count(id)) << id << " is not in the file's " << ds.id_column;
    const std::vector<std::string> customers = pandas("retail " + quote(csv));
    EXPECT_EQ(std::vector<std::string>(unique.begin(), unique.end()), customers)
        << "segments.csv's customers differ from pandas' customers with a gift (" << unique.size() << " vs "
        << customers.size() << ")";
  } else if (*ds.id_column) {
    EXPECT_EQ(ids, pandas("column " + quote(csv) + " " + quote(ds.id_column)));
  } else {
    const std::vector<std::string> first = pandas("column " + quote(csv) + " " + quote(header.at(0)));
    ASSERT_EQ(ids.size(), first.size()) << "one segment per row of the file";
    for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], std::to_string(i)) << "row numbers from 0";
  }
  if (std::string(ds.label) == "kdd98") {
    // FutureFundraising: prepared with the training's choices, labelled by the model.
    const fs::path future_gz = folder / "FutureFundraising.csv.gz";
    ASSERT_TRUE(fs::exists(future_gz)) << future_gz;
    const std::string future = path("FutureFundraising.csv");
    ASSERT_EQ(shell("(gzip -dc " + quote(future_gz.string()) + " > " + quote(future) + ")", &out), 0) << out;
    ASSERT_EQ(shell(std::string(SEGFORGE_PREP_BINARY) + " table " + quote(future) + " --scaler-from " + quote(features) +
                        " -o " + quote(path("future.h5")),
                    &out),
              0)
        << out;
    ASSERT_EQ(segforge("predict " + quote(model) + " " + quote(path("future.h5")) + " -o " + quote(path("future.csv")), &out), 0)
        << out;
    const std::vector<std::string> expected = pandas("column " + quote(future) + " " + quote(ds.id_column));
    EXPECT_EQ(expected.size(), 2000u);
    EXPECT_EQ(ids_of(path("future.csv")), expected);
  }

  // (4) The report in headless Chromium at a laptop's width: no axis clipped.
  ASSERT_EQ(segforge("report " + quote(model) + " --features " + quote(features) + " --sweep " + quote(sweep) +
                         " --labels " + quote(segments) + " -o " + quote(report),
                     &out),
            0)
      << out;
  const std::string chromium = test::chromium_binary();
  const fs::path root = fs::path(SEGFORGE_FIXTURES).parent_path().parent_path();
  const fs::path playwright = root / "node_modules/playwright-core";
  const std::string node = test::which("node");
  if (chromium.empty() || node.empty() || !fs::exists(playwright) || !fs::exists(root / "node_modules/plotly.js-dist-min"))
    GTEST_SKIP() << "chromium, node, playwright-core or plotly.js is not installed (scripts/setup.sh; `npm ci` in " << root
                 << ")";
  const fs::path artifacts = fs::path(SEGFORGE_BINARY).parent_path().parent_path() / "test-artifacts";
  fs::create_directories(artifacts);
  const std::string screenshot = (artifacts / ("report-" + std::string(ds.label) + ".png")).string();
  std::ofstream(path("layout.js")) << test::kLayoutCheck;
  ASSERT_EQ(shell("timeout 240 " + node + " " + quote(path("layout.js")) + " " + quote(playwright.string()) + " " +
                      chromium + " " + quote(report) + " " + quote(screenshot),
                  &out),
            0)
      << out;
  const auto at = out.find("RESULT ");
  ASSERT_NE(at, std::string::npos) << out;
  const auto result = nlohmann::json::parse(out.substr(at + 7, out.find('\n', at) - at - 7));
  std::cout << "  [report] " << ds.label << ": " << result.dump().substr(0, 400) << "\n  [artifact] " << screenshot << "\n";
  for (const auto& problem : result.at("problems")) {
    const std::string p = problem.get<std::string>();
    // The checker also expects test_report.cpp's wide table to scroll; a few features need not.
    if (p.find("expected to need scrolling") != std::string::npos) continue;
    ADD_FAILURE() << ds.label << ": " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Five, RealDatasetEndToEnd, ::testing::ValuesIn(kDatasets),
                         [](const auto& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace segforge
