// segforge drift (issue 17 item 1). References from outside segforge: hand-computed toys; PSI,
// KS, bin edges and shares from NumPy/SciPy, segment shares and distances from a NumPy argmin,
// the transition matrix from pandas.crosstab (scripts/make_drift_fixtures.py, fixtures in
// tests/fixtures/drift); synthetic truth from `segforge-prep synth blobs` (a segment moved by a
// known amount); real data split in time (Online Retail) or by cohort (KDD98); bad input.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "segforge/drift.hpp"
#include "segforge/io.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace segforge {
namespace {

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

std::string fixture(const std::string& name) { return test::fixture_path("drift/" + name); }

// ---- the statistics against hand computations ---------------------------------------------

TEST(DriftStatistics, PsiByHand) {
  // (0.5−0.25)·ln 2 + (0.5−0.75)·ln(2/3)
  EXPECT_NEAR(population_stability_index({0.25, 0.75}, {0.5, 0.5}, 1e-4),
              0.25 * std::log(2.0) - 0.25 * std::log(2.0 / 3.0), 1e-15);
  // An empty bin is floored at epsilon: (1e-4 − 0.5)·ln(1e-4/0.5) + (1 − 0.5)·ln 2.
  EXPECT_NEAR(population_stability_index({0.5, 0.5}, {0.0, 1.0}, 1e-4),
              (1e-4 - 0.5) * std::log(1e-4 / 0.5) + 0.5 * std::log(2.0), 1e-12);
  EXPECT_EQ(population_stability_index({0.2, 0.8}, {0.2, 0.8}, 1e-4), 0.0);
}

TEST(DriftStatistics, KsAndQuantileByHand) {
  // F_a − F_b at 1, 2, 3, 4: 1/3−0, 2/3−1/2, 1−1/2 (ties count on both sides), 1−1 → sup 1/2.
  EXPECT_DOUBLE_EQ(ks_statistic({1, 2, 3}, {2, 4}), 0.5);
  EXPECT_DOUBLE_EQ(ks_statistic({1, 2, 3}, {1, 2, 3}), 0.0);
  EXPECT_DOUBLE_EQ(ks_statistic({1, 2}, {3, 4}), 1.0);
  // numpy.quantile([1, 2, 4, 8], q): h = 3q → q=0.5: 2 + 0.5·2 = 3; q=0.9: 4 + 0.7·4 = 6.8.
  EXPECT_DOUBLE_EQ(linear_quantile({1, 2, 4, 8}, 0.5), 3.0);
  EXPECT_NEAR(linear_quantile({1, 2, 4, 8}, 0.9), 6.8, 1e-12);
  EXPECT_DOUBLE_EQ(linear_quantile({1, 2, 4, 8}, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(linear_quantile({1, 2, 4, 8}, 1.0), 8.0);
}

TEST(DriftStatistics, TiesCollapseEdges) {
  // Ten of eleven reference values are 1: every inner quantile (h = 11q − q <= 9) is 1, so one
  // edge and two bins, (-inf, 1] and (1, inf).
  const FeatureDrift f = feature_drift({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5}, {1, 5, 5, 5}, 10, 1e-4);
  ASSERT_EQ(f.edges, std::vector<double>({1.0}));
  EXPECT_EQ(f.reference_shares, std::vector<double>({10.0 / 11, 1.0 / 11}));
  EXPECT_EQ(f.current_shares, std::vector<double>({0.25, 0.75}));
  EXPECT_NEAR(f.psi, (0.25 - 10.0 / 11) * std::log(0.25 * 11 / 10) + (0.75 - 1.0 / 11) * std::log(0.75 * 11), 1e-12);
  // The 10th value 1 and the 11th 5 make the 0.9 quantile of 10 values an interpolated edge.
  const FeatureDrift g = feature_drift({1, 1, 1, 1, 1, 1, 1, 1, 1, 5}, {1, 5}, 10, 1e-4);
  EXPECT_EQ(g.edges.size(), 2u);
  EXPECT_NEAR(g.edges[1], 1.4, 1e-12);  // h = 8.1: 1 + 0.1·(5 − 1)
}

// ---- against NumPy / SciPy / pandas ---------------------------------------------------------

class DriftCli : public test::TempDirTest {
 protected:
  int segforge(const std::string& args, std::string* out = nullptr) const {
    return shell(std::string(SEGFORGE_BINARY) + " " + args + " --device cpu", out);
  }
  int prep(const std::string& args, std::string* out = nullptr) const {
    return shell(std::string(SEGFORGE_PREP_BINARY) + " " + args, out);
  }
};

TEST_F(DriftCli, FeaturesSegmentsAndMigrationMatchNumpyScipyPandas) {
  const json e = read_json(fixture("expected.json"));
  // Every row's two nearest centres are far apart: the float32 argmin cannot flip.
  ASSERT_GT(e.at("min_assignment_margin").get<double>(), 1e-5);
  std::string out;
  const std::string drift = path("drift.json");
  ASSERT_EQ(segforge("drift " + quote(fixture("model.h5")) + " " + quote(fixture("reference.h5")) + " " +
                         quote(fixture("current.h5")) + " -o " + quote(drift),
                     &out),
            0)
      << out;
  const json d = read_json(drift);
  EXPECT_EQ(d.at("format"), "segforge-drift");
  EXPECT_EQ(d.at("bins"), 10);
  EXPECT_DOUBLE_EQ(d.at("epsilon").get<double>(), 1e-4);
  ASSERT_EQ(d.at("features").size(), e.at("features").size());
  for (std::size_t j = 0; j < e.at("features").size(); ++j) {
    const json& want = e["features"][j];
    const json& got = d["features"][j];
    SCOPED_TRACE(want.at("name").get<std::string>());
    EXPECT_EQ(got.at("name"), want.at("name"));
    const auto we = want.at("edges").get<std::vector<double>>(), ge = got.at("edges").get<std::vector<double>>();
    ASSERT_EQ(ge.size(), we.size());
    for (std::size_t b = 0; b < we.size(); ++b) EXPECT_NEAR(ge[b], we[b], 1e-12 * (1 + std::abs(we[b])));
    // Shares are counts / n: exactly numpy's.
    EXPECT_EQ(got.at("reference_shares").get<std::vector<double>>(), want.at("reference_shares").get<std::vector<double>>());
    EXPECT_EQ(got.at("current_shares").get<std::vector<double>>(), want.at("current_shares").get<std::vector<double>>());
    EXPECT_NEAR(got.at("psi").get<double>(), want.at("psi").get<double>(), 1e-12);
    EXPECT_NEAR(got.at("ks").get<double>(), want.at("ks").get<double>(), 1e-15);
    EXPECT_NEAR(got.at("mean_shift").get<double>(), want.at("mean_shift").get<double>(), 1e-9);
  }
  // Segments: shares exact; distances from float32 squared distances (relative ~1e-6).
  EXPECT_NEAR(d.at("share_psi").get<double>(), e.at("share_psi").get<double>(), 1e-12);
  ASSERT_EQ(d.at("segments").size(), e.at("segments").size());
  for (std::size_t c = 0; c < e.at("segments").size(); ++c) {
    const json& want = e["segments"][c];
    const json& got = d["segments"][c];
    SCOPED_TRACE("segment " + std::to_string(c));
    EXPECT_DOUBLE_EQ(got.at("reference_share").get<double>(), want.at("reference_share").get<double>());
    EXPECT_DOUBLE_EQ(got.at("current_share").get<double>(), want.at("current_share").get<double>());
    for (const char* key : {"reference_mean_distance", "current_mean_distance", "reference_p90_distance",
                            "current_p90_distance"})
      EXPECT_NEAR(got.at(key).get<double>(), want.at(key).get<double>(), 1e-5 * want.at(key).get<double>()) << key;
  }
  // Migration against pandas.crosstab.
  const json& wm = e.at("migration");
  const json& gm = d.at("migration");
  EXPECT_TRUE(gm.at("ids_available").get<bool>());
  EXPECT_EQ(gm.at("n_common"), wm.at("n_common"));
  EXPECT_EQ(gm.at("n_joiners"), wm.at("n_joiners"));
  EXPECT_EQ(gm.at("n_leavers"), wm.at("n_leavers"));
  EXPECT_EQ(gm.at("counts"), wm.at("counts"));
  EXPECT_NEAR(gm.at("moved_share").get<double>(), wm.at("moved_share").get<double>(), 1e-15);
  const auto counts = wm.at("counts").get<std::vector<std::vector<std::int64_t>>>();
  for (std::size_t a = 0; a < counts.size(); ++a) {
    double row = 0;
    for (auto v : counts[a]) row += static_cast<double>(v);
    for (std::size_t b = 0; b < counts.size(); ++b)
      EXPECT_NEAR(gm["row_shares"][a][b].get<double>(), counts[a][b] / row, 1e-15);
  }
  // The fixture's shifts are large (PSI 2.7 on 'visits'): refresh, with that feature named first.
  EXPECT_EQ(d.at("verdict"), "refresh");
  EXPECT_NE(d.at("reasons").at(0).at("text").get<std::string>().find("feature 'visits'"), std::string::npos);
  EXPECT_NE(out.find("verdict: refresh"), std::string::npos) << out;
}

TEST_F(DriftCli, FailOnExitsFourOrFiveAfterWriting) {
  const std::string args = quote(fixture("model.h5")) + " " + quote(fixture("reference.h5")) + " " +
                           quote(fixture("current.h5"));
  std::string out;
  EXPECT_EQ(segforge("drift " + args + " --fail-on watch -o " + quote(path("a.json")), &out), 5) << out;
  EXPECT_TRUE(fs::exists(path("a.json")));
  EXPECT_EQ(segforge("drift " + args + " --fail-on refresh", &out), 5) << out;
  // Refresh thresholds out of reach: the verdict is watch, exit 4 with --fail-on watch only.
  const std::string watch_only = " --psi-refresh 100 --share-psi-refresh 100 --distance-refresh 100 "
                                 "--refit-refresh 100 --migration-refresh 100";
  EXPECT_EQ(segforge("drift " + args + watch_only + " --fail-on watch -o " + quote(path("b.json")), &out), 4) << out;
  EXPECT_EQ(read_json(path("b.json")).at("verdict"), "watch");
  EXPECT_EQ(segforge("drift " + args + watch_only + " --fail-on refresh", &out), 0) << out;
  EXPECT_EQ(segforge("drift " + args, &out), 0) << out;  // without --fail-on a verdict is not a failure
}

// ---- synthetic truth: segforge-prep synth blobs ----------------------------------------------

/// Rows of `f` where `keep(i)`, written as a features file (ids kept), shifted by `shift` for
/// the rows where `moved(i)`.
void write_rows(const std::string& out, const Features& f, const std::function<bool(std::int64_t)>& keep,
                const std::function<bool(std::int64_t)>& moved, float shift) {
  std::vector<float> values;
  Ids ids;
  for (std::int64_t i = 0; i < f.x.rows(); ++i) {
    if (!keep(i)) continue;
    for (std::int64_t j = 0; j < f.x.cols(); ++j) values.push_back(f.x(i, j) + (moved(i) ? shift : 0.0f));
    ids.numeric.push_back(f.ids.numeric.at(static_cast<std::size_t>(i)));
  }
  const auto n = static_cast<std::int64_t>(ids.numeric.size());
  Matrix<float> x(n, f.x.cols(), std::move(values));
  write_features(out, x.view(), f.feature_names, ids, f.scaler);
}

TEST_F(DriftCli, SyntheticNoChangeIsStableAndAMovedSegmentIsNamed) {
  for (int seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::string out;
    const std::string blobs = path("blobs.h5"), ref = path("ref.h5"), same = path("same.h5"), moved = path("moved.h5"),
                      model = path("model.h5");
    fs::remove(blobs), fs::remove(ref), fs::remove(same), fs::remove(moved), fs::remove(model);
    ASSERT_EQ(prep("synth blobs -n 8000 -d 4 -k 4 --seed " + std::to_string(seed) + " -o " + quote(blobs), &out), 0) << out;
    const Features f = read_features(blobs);
    const std::vector<std::int32_t> truth = read_extra_int32s(blobs, "/labels");
    const Matrix<float> centres = read_extra_matrix(blobs, "/centers");
    // Reference: the even rows; current: the odd rows, the same distribution drawn again.
    auto even = [](std::int64_t i) { return i % 2 == 0; };
    auto odd = [](std::int64_t i) { return i % 2 == 1; };
    auto none = [](std::int64_t) { return false; };
    auto blob2 = [&](std::int64_t i) { return truth[static_cast<std::size_t>(i)] == 2; };
    write_rows(ref, f, even, none, 0.0f);
    write_rows(same, f, odd, none, 0.0f);
    // Blob 2 moved by 1.5 noise SDs along every axis (3 SDs in all): its members stay nearest to
    // their centre, but sit farther from it.
    write_rows(moved, f, odd, blob2, 1.5f);
    ASSERT_EQ(segforge("fit " + quote(ref) + " -k 4 --n-init 4 --seed 7 -o " + quote(model), &out), 0) << out;

    ASSERT_EQ(segforge("drift " + quote(model) + " " + quote(ref) + " " + quote(same) + " -o " + quote(path("s.json")), &out), 0)
        << out;
    const json s = read_json(path("s.json"));
    EXPECT_EQ(s.at("verdict"), "stable") << s.at("reasons").dump();

    ASSERT_EQ(segforge("drift " + quote(model) + " " + quote(ref) + " " + quote(moved) + " -o " + quote(path("m.json")), &out), 0)
        << out;
    const json m = read_json(path("m.json"));
    EXPECT_NE(m.at("verdict"), "stable") << m.at("reasons").dump();
    // The model's segment of blob 2: the centroid nearest to the true centre.
    const Model fitted = read_model(model);
    int target = 0;
    double best = 1e300;
    for (int c = 0; c < fitted.centroids.rows(); ++c) {
      double ss = 0;
      for (int j = 0; j < 4; ++j) ss += std::pow(fitted.centroids(c, j) - centres(2, j), 2);
      if (ss < best) best = ss, target = c;
    }
    const std::string label = "segment " + std::to_string(target) + " '" +
                              m.at("segments").at(target).at("name").get<std::string>() + "'";
    bool distance_named = false, refit_named = false;
    for (const auto& reason : m.at("reasons")) {
      const std::string text = reason.at("text").get<std::string>();
      if (text.starts_with(label + ": mean distance")) distance_named = true;
      if (text.find("moved most: " + label) != std::string::npos) refit_named = true;
      // No other segment's distance rose.
      if (text.find(": mean distance") != std::string::npos) EXPECT_TRUE(text.starts_with(label)) << text;
    }
    EXPECT_TRUE(distance_named) << label << " " << m.at("reasons").dump();
    EXPECT_TRUE(refit_named) << label << " " << m.at("reasons").dump();
  }
}

// ---- real data --------------------------------------------------------------------------------

constexpr const char* kSplit = R"PY(
import csv, datetime, sys
src, first, second = sys.argv[1:4]
with open(src, newline='', encoding='utf-8-sig') as f:
    rows = list(csv.reader(f))
header, rows = rows[0], rows[1:]
at = header.index('InvoiceDate')
when = lambda r: datetime.datetime.strptime(r[at], '%m/%d/%Y %H:%M')
cut = [datetime.datetime(2011, 1, 1), datetime.datetime(2011, 7, 1), datetime.datetime(2012, 1, 1)]
for name, lo, hi in ((first, cut[0], cut[1]), (second, cut[1], cut[2])):
    with open(name, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(r for r in rows if lo <= when(r) < hi)
)PY";

void print_summary(const std::string& label, const json& d) {
  std::cout << "  [drift] " << label << ": verdict " << d.at("verdict").get<std::string>() << "\n";
  std::vector<std::pair<double, std::string>> psi;
  for (const auto& f : d.at("features")) psi.emplace_back(f.at("psi").is_null() ? 0.0 : f.at("psi").get<double>(), f.at("name"));
  std::sort(psi.rbegin(), psi.rend());
  for (std::size_t i = 0; i < std::min<std::size_t>(3, psi.size()); ++i)
    std::cout << "  [drift]   PSI " << psi[i].second << " " << psi[i].first << "\n";
  for (const auto& s : d.at("segments"))
    std::cout << "  [drift]   share " << s.at("name").get<std::string>() << ": " << s.at("reference_share") << " -> "
              << s.at("current_share") << "\n";
  for (const auto& r : d.at("reasons")) std::cout << "  [drift]   - " << r.at("text").get<std::string>() << "\n";
}

TEST_F(DriftCli, OnlineRetailFirstHalfOf2011AgainstTheSecondIsNotStable) {
  const fs::path csv = test::datasets_dir() / "online_retail" / "online_retail_sample_40000.csv";
  if (!fs::exists(csv)) GTEST_SKIP() << "dataset absent: " << csv << " (set SEGFORGE_DATASETS)";
  std::string out;
  std::ofstream(path("split.py")) << kSplit;
  ASSERT_EQ(shell("/usr/bin/python3 " + quote(path("split.py")) + " " + quote(csv.string()) + " " + quote(path("h1.csv")) +
                      " " + quote(path("h2.csv")),
                  &out),
            0)
      << out;
  ASSERT_EQ(prep("rfm " + quote(path("h1.csv")) + " --as-of 2011-07-01 --audience customers -o " + quote(path("ref.h5")), &out), 0)
      << out;
  ASSERT_EQ(prep("rfm " + quote(path("h2.csv")) + " --as-of 2012-01-01 --scaler-from " + quote(path("ref.h5")) + " -o " +
                     quote(path("cur.h5")),
                 &out),
            0)
      << out;
  ASSERT_EQ(segforge("fit " + quote(path("ref.h5")) + " -k 4 --audience customers -o " + quote(path("model.h5")), &out), 0) << out;
  ASSERT_EQ(segforge("drift " + quote(path("model.h5")) + " " + quote(path("ref.h5")) + " " + quote(path("cur.h5")) +
                         " -o " + quote(path("drift.json")),
                     &out),
            0)
      << out;
  const json d = read_json(path("drift.json"));
  print_summary("online retail H1 2011 -> H2 2011", d);
  EXPECT_NE(d.at("verdict"), "stable");
  EXPECT_GT(d.at("migration").at("n_common").get<std::int64_t>(), 0);  // customers who bought in both halves
}

TEST_F(DriftCli, Kdd98FutureFundraisingHasNoSharedIdsButSharesAreCompared) {
  const fs::path folder = test::datasets_dir() / "kdd98_fundraising";
  if (!fs::exists(folder)) GTEST_SKIP() << "dataset absent: " << folder << " (set SEGFORGE_DATASETS)";
  std::string out;
  for (const char* name : {"Fundraising", "FutureFundraising"})
    ASSERT_EQ(shell("(gzip -dc " + quote((folder / (std::string(name) + ".csv.gz")).string()) + " > " +
                        quote(path(std::string(name) + ".csv")) + ")"),
              0);
  ASSERT_EQ(prep("table " + quote(path("Fundraising.csv")) + " -o " + quote(path("ref.h5")), &out), 0) << out;
  ASSERT_EQ(prep("table " + quote(path("FutureFundraising.csv")) + " --scaler-from " + quote(path("ref.h5")) + " -o " +
                     quote(path("cur.h5")),
                 &out),
            0)
      << out;
  ASSERT_EQ(segforge("fit " + quote(path("ref.h5")) + " -k 4 -o " + quote(path("model.h5")), &out), 0) << out;
  // Both files number their rows 1, 2, ... in `Row Id`: the ids coincide but name other donors.
  // Matched, 2000 "common" ids would be a false migration; --no-migration says so.
  ASSERT_EQ(segforge("drift " + quote(path("model.h5")) + " " + quote(path("ref.h5")) + " " + quote(path("cur.h5")) +
                         " -o " + quote(path("matched.json")),
                     &out),
            0)
      << out;
  EXPECT_EQ(read_json(path("matched.json")).at("migration").at("n_common"), 2000);
  ASSERT_EQ(segforge("drift " + quote(path("model.h5")) + " " + quote(path("ref.h5")) + " " + quote(path("cur.h5")) +
                         " --no-migration -o " + quote(path("drift.json")),
                     &out),
            0)
      << out;
  EXPECT_NE(out.find("migration: not computed (--no-migration)"), std::string::npos) << out;
  const json d = read_json(path("drift.json"));
  print_summary("kdd98 Fundraising -> FutureFundraising", d);
  const json& m = d.at("migration");
  EXPECT_FALSE(m.at("ids_available").get<bool>());
  EXPECT_EQ(m.at("n_common"), 0);
  EXPECT_EQ(m.at("n_moved"), 0);
  for (const auto& row : m.at("counts"))
    for (const auto& v : row) EXPECT_EQ(v, 0);
  double ref = 0, cur = 0;
  for (const auto& s : d.at("segments")) {
    ref += s.at("reference_share").get<double>();
    cur += s.at("current_share").get<double>();
  }
  EXPECT_NEAR(ref, 1.0, 1e-12);
  EXPECT_NEAR(cur, 1.0, 1e-12);
  EXPECT_EQ(d.at("n_current"), 2000);
}

// ---- the report's "What changed" -----------------------------------------------------------

TEST_F(DriftCli, ReportShowsWhatChangedAndRefusesAnotherModelsDrift) {
  std::string out;
  const std::string model = fixture("model.h5"), ref = fixture("reference.h5"), drift = path("drift.json"),
                    report = path("report.html");
  ASSERT_EQ(segforge("drift " + quote(model) + " " + quote(ref) + " " + quote(fixture("current.h5")) + " -o " + quote(drift), &out), 0)
      << out;
  ASSERT_EQ(segforge("report " + quote(model) + " --features " + quote(ref) + " --drift " + quote(drift) + " -o " + quote(report), &out), 0)
      << out;
  std::ifstream in(report);
  const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* id : {"id=\"what-changed\"", "id=\"chart-drift-shares\"", "id=\"chart-drift-psi\"", "id=\"chart-drift-sankey\"",
                         "Drift verdict: <b>refresh</b>", "feature &#39;visits&#39;: PSI 2.7"})
    EXPECT_NE(page.find(id), std::string::npos) << id;
  // The Sankey's links are the crosstab's non-zero cells.
  const json e = read_json(fixture("expected.json"));
  std::int64_t cells = 0;
  for (const auto& row : e.at("migration").at("counts"))
    for (const auto& v : row) cells += v.get<std::int64_t>() > 0;
  const auto at = page.find("\"sankey\":{");
  ASSERT_NE(at, std::string::npos);
  const auto values = page.find("\"value\":[", at);
  const std::string list = page.substr(values, page.find(']', values) - values);
  EXPECT_EQ(std::count(list.begin(), list.end(), ',') + 1, cells) << list;

  // Another model's drift (K=4 against K=3), or a file that is not a drift: exit 2, nothing written.
  Model k2 = read_model(model);
  Matrix<float> two(2, k2.centroids.cols());
  std::copy(k2.centroids.data(), k2.centroids.data() + two.size(), two.data());
  k2.centroids = two;
  write_model(path("k2.h5"), k2);
  fs::remove(report);
  EXPECT_EQ(segforge("report " + quote(path("k2.h5")) + " --features " + quote(ref) + " --drift " + quote(drift) + " -o " + quote(report), &out), 2)
      << out;
  EXPECT_NE(out.find("made for K=3, the model"), std::string::npos) << out;
  std::ofstream(path("notdrift.json")) << R"({"format": "segforge-stability"})";
  EXPECT_EQ(segforge("report " + quote(model) + " --features " + quote(ref) + " --drift " + quote(path("notdrift.json")) + " -o " + quote(report), &out), 2)
      << out;
  EXPECT_NE(out.find("not a drift file"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(report));

  // In headless Chromium at a laptop's width: every chart draws, no axis is clipped.
  const std::string chromium = test::chromium_binary(), node = test::which("node");
  const fs::path root = fs::path(SEGFORGE_FIXTURES).parent_path().parent_path();
  const fs::path playwright = root / "node_modules/playwright-core";
  if (chromium.empty() || node.empty() || !fs::exists(playwright) || !fs::exists(root / "node_modules/plotly.js-dist-min"))
    GTEST_SKIP() << "chromium, node, playwright-core or plotly.js is not installed (scripts/setup.sh; `npm ci`)";
  // The layout checker reads the sweep's charts too.
  ASSERT_EQ(segforge("sweep " + quote(ref) + " --k 2:4 --gap-refs 2 -o " + quote(path("sweep.json")), &out), 0) << out;
  ASSERT_EQ(segforge("report " + quote(model) + " --features " + quote(ref) + " --drift " + quote(drift) + " --sweep " +
                         quote(path("sweep.json")) + " -o " + quote(report),
                     &out),
            0)
      << out;
  const fs::path artifacts = fs::path(SEGFORGE_BINARY).parent_path().parent_path() / "test-artifacts";
  fs::create_directories(artifacts);
  const std::string screenshot = (artifacts / "report-drift.png").string();
  std::ofstream(path("layout.js")) << test::kLayoutCheck;
  ASSERT_EQ(shell("timeout 240 " + node + " " + quote(path("layout.js")) + " " + quote(playwright.string()) + " " + chromium +
                      " " + quote(report) + " " + quote(screenshot),
                  &out),
            0)
      << out;
  const auto result_at = out.find("RESULT ");
  ASSERT_NE(result_at, std::string::npos) << out;
  const auto result = json::parse(out.substr(result_at + 7, out.find('\n', result_at) - result_at - 7));
  std::cout << "  [report] " << result.dump().substr(0, 400) << "\n  [artifact] " << screenshot << "\n";
  for (const auto& problem : result.at("problems")) {
    const std::string p = problem.get<std::string>();
    if (p.find("expected to need scrolling") != std::string::npos) continue;  // a 4-feature table need not
    ADD_FAILURE() << p;
  }
}

// ---- bad input: exit 2, one line, nothing written ---------------------------------------------

struct BadCase {
  const char* label;
  const char* expected;  ///< a substring of the message
};

class DriftBadInput : public DriftCli, public ::testing::WithParamInterface<BadCase> {};

TEST_P(DriftBadInput, ExitsTwoWithOneLineAndWritesNothing) {
  const BadCase& c = GetParam();
  const Features ref = read_features(fixture("reference.h5"));
  const std::string model = fixture("model.h5"), cur = path("cur.h5");
  std::string args;
  Features bad = read_features(fixture("current.h5"));
  const std::string label = c.label;
  std::string model_arg = model, ref_arg = fixture("reference.h5"), extra;
  if (label == "names") {
    bad.feature_names[2] = "visits_12m";
  } else if (label == "scaling") {
    bad.scaler.mean[1] += 0.5;
  } else if (label == "no_scaler") {
    bad.scaler = Scaler{};
  } else if (label == "duplicate_id") {
    bad.ids.numeric[7] = bad.ids.numeric[3];
  } else if (label == "model_columns" || label == "model_names") {
    Model m = read_model(model);
    if (label == "model_columns") {
      Matrix<float> c3(m.centroids.rows(), 3);
      for (std::int64_t i = 0; i < c3.rows(); ++i)
        for (int j = 0; j < 3; ++j) c3(i, j) = m.centroids(i, j);
      m.centroids = c3;
      m.feature_names.resize(3);
    } else {
      m.feature_names[0] = "recency";
    }
    model_arg = path("bad_model.h5");
    write_model(model_arg, m);
  } else if (label == "fail_on") {
    extra = " --fail-on always";
  } else if (label == "bins") {
    extra = " --bins 1";
  } else if (label == "thresholds") {
    extra = " --psi-watch 0.3 --psi-refresh 0.2";
  }
  write_features(cur, bad.x.view(), bad.feature_names, bad.ids, bad.scaler);
  std::string out;
  const std::string output = path("drift.json");
  EXPECT_EQ(segforge("drift " + quote(model_arg) + " " + quote(ref_arg) + " " + quote(cur) + extra + " -o " + quote(output), &out), 2)
      << out;
  EXPECT_NE(out.find(c.expected), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_FALSE(fs::exists(output));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DriftBadInput,
    ::testing::Values(BadCase{"names", "column 2 is 'visits_12m', the reference's is 'visits'; prepare it with"},
                      BadCase{"scaling", ":/scaler: scaled otherwise than the reference"},
                      BadCase{"no_scaler", "it has no /scaler, the reference has one"},
                      BadCase{"duplicate_id", ":/ids: id '603' is on rows 4 and 8 (1 rows repeat an id); migration needs one row per id"},
                      BadCase{"model_columns", ":/centroids: 3 features, the reference"},
                      BadCase{"model_names", ":/feature_names: column 0 is 'recency', the reference's is 'spend'"},
                      BadCase{"fail_on", "--fail-on always: use watch or refresh"},
                      BadCase{"bins", "--bins 1: use 2 to 1000 bins"},
                      BadCase{"thresholds", "--psi-watch"}),
    [](const auto& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace segforge
