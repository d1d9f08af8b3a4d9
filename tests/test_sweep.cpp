// Choosing K: Kneedle and the gap statistic against NumPy/scikit-learn references
// (scripts/make_select_fixtures.py), the Jacobi eigensolver, the vote, the sweep on the
// Fränti–Sieranoja S- and A-sets (the true K by at least two criteria) and on uniform noise
// (the gap statistic says K = 1), and the sweep command.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "segforge/backend.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/select.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace segforge {
namespace {

// ---- fixture reading (plain text, %.17g: the exact doubles NumPy wrote) -----------------------

std::vector<double> parse_line(const std::string& line) {
  std::istringstream in(line);
  std::vector<double> v;
  double x = 0;
  while (in >> x) v.push_back(x);
  return v;
}

std::string select_fixture(const std::string& name) { return test::fixture_path("select/" + name); }

struct KneedleCase {
  std::string name;
  int knee = -1;
  std::vector<double> x, y, difference;
};

std::vector<KneedleCase> read_kneedle_cases() {
  std::ifstream in(select_fixture("kneedle.txt"));
  std::vector<KneedleCase> cases;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    KneedleCase c;
    std::istringstream head(line);
    int n = 0;
    head >> c.name >> n >> c.knee;
    std::getline(in, line);
    c.x = parse_line(line);
    std::getline(in, line);
    c.y = parse_line(line);
    std::getline(in, line);
    c.difference = parse_line(line);
    cases.push_back(std::move(c));
  }
  return cases;
}

struct GapFixture {
  std::int64_t n = 0, d = 0;
  int b = 0, chosen = 0;
  std::vector<int> ks;
  Matrix<float> x;
  std::vector<Matrix<double>> draws;
  std::vector<double> mean, rotation, variance, lower, upper;
  std::vector<Matrix<double>> refs;
  std::vector<double> log_w, log_w_ref, gap, s;
};

GapFixture read_gap_fixture(const std::string& name) {
  std::ifstream in(select_fixture("gap_" + name + ".txt"));
  GapFixture g;
  std::string line;
  std::getline(in, line);
  int nk = 0;
  std::istringstream head(line);
  head >> g.n >> g.d >> g.b >> nk >> g.chosen;
  auto next = [&] {
    std::getline(in, line);
    return parse_line(line);
  };
  for (double k : next()) g.ks.push_back(static_cast<int>(k));
  const std::vector<double> x = next();
  g.x = Matrix<float>(g.n, g.d);
  for (std::size_t i = 0; i < x.size(); ++i) g.x.data()[i] = static_cast<float>(x[i]);
  const std::vector<double> draws = next();
  for (int b = 0; b < g.b; ++b)
    g.draws.emplace_back(g.n, g.d, std::vector<double>(draws.begin() + b * g.n * g.d, draws.begin() + (b + 1) * g.n * g.d));
  g.mean = next();
  g.rotation = next();
  g.variance = next();
  g.lower = next();
  g.upper = next();
  const std::vector<double> refs = next();
  for (int b = 0; b < g.b; ++b)
    g.refs.emplace_back(g.n, g.d, std::vector<double>(refs.begin() + b * g.n * g.d, refs.begin() + (b + 1) * g.n * g.d));
  g.log_w = next();
  g.log_w_ref = next();
  g.gap = next();
  g.s = next();
  EXPECT_EQ(static_cast<int>(g.ks.size()), nk);
  EXPECT_EQ(static_cast<int>(g.log_w_ref.size()), nk * g.b);
  return g;
}

// ---- Kneedle -----------------------------------------------------------------------------------

TEST(Kneedle, MatchesTheNumpyReference) {
  const auto cases = read_kneedle_cases();
  ASSERT_GE(cases.size(), 5u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const KneedleResult r = kneedle(c.x, c.y);
    EXPECT_EQ(r.knee_index.value_or(-1), c.knee);
    ASSERT_EQ(r.difference.size(), c.difference.size());
    for (std::size_t i = 0; i < c.difference.size(); ++i) EXPECT_NEAR(r.difference[i], c.difference[i], 1e-12);
  }
}

TEST(Kneedle, HandComputedElbowAndDegenerateCurves) {
  // A curve falling 30 a step to K = 4, then 1 a step: the knee is at K = 4 (index 3).
  const std::vector<double> x{1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<double> y{100, 70, 40, 10, 9, 8, 7, 6};
  EXPECT_EQ(kneedle(x, y).knee_index.value_or(-1), 3);
  // A straight line has no knee; neither has a flat curve or two points.
  EXPECT_FALSE(kneedle(x, std::vector<double>{8, 7, 6, 5, 4, 3, 2, 1}).knee_index);
  EXPECT_FALSE(kneedle(x, std::vector<double>(8, 5.0)).knee_index);
  EXPECT_FALSE(kneedle(std::vector<double>{1, 2}, std::vector<double>{2, 1}).knee_index);
}

// ---- the Jacobi eigensolver and the PCA box ------------------------------------------------------

TEST(SymmetricEigen, ReconstructsAndOrders) {
  std::mt19937 gen(3);
  std::normal_distribution<double> normal;
  for (int n : {1, 2, 3, 5, 12}) {
    SCOPED_TRACE(n);
    std::vector<double> b(n * n), a(n * n, 0.0);
    for (auto& v : b) v = normal(gen);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        for (int k = 0; k < n; ++k) a[i * n + j] += b[i * n + k] * b[j * n + k];
    const SymmetricEigen e = symmetric_eigen(a, n);
    for (int j = 1; j < n; ++j) EXPECT_GE(e.values[j - 1], e.values[j]);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double recon = 0.0, dot = 0.0;
        for (int k = 0; k < n; ++k) {
          recon += e.vectors[i * n + k] * e.values[k] * e.vectors[j * n + k];
          dot += e.vectors[k * n + i] * e.vectors[k * n + j];
        }
        EXPECT_NEAR(recon, a[i * n + j], 1e-10 * (1 + std::abs(a[i * n + j])));
        EXPECT_NEAR(dot, i == j ? 1.0 : 0.0, 1e-12);
      }
  }
  // Hand-computed: [[2, 1], [1, 2]] has eigenvalues 3 and 1, vectors (1, 1)/√2 and (−1, 1)/√2
  // (signs: the largest entry positive, the first on ties).
  const SymmetricEigen e = symmetric_eigen(std::vector<double>{2, 1, 1, 2}, 2);
  EXPECT_NEAR(e.values[0], 3.0, 1e-14);
  EXPECT_NEAR(e.values[1], 1.0, 1e-14);
  EXPECT_NEAR(e.vectors[0], std::sqrt(0.5), 1e-14);
  EXPECT_NEAR(e.vectors[2], std::sqrt(0.5), 1e-14);
}

TEST(GapStatistic, PcaBoxAndReferenceSetsMatchNumpy) {
  for (const std::string name : {"blobs4", "noise"}) {
    SCOPED_TRACE(name);
    const GapFixture g = read_gap_fixture(name);
    auto backend = make_cpu_backend();
    auto data = backend->upload(g.x.view());
    const PcaBox box = pca_box(*backend, *data);
    const auto d = static_cast<std::size_t>(g.d);
    for (std::size_t j = 0; j < d; ++j) {
      const double scale = 1.0 + std::abs(g.mean[j]);
      EXPECT_NEAR(box.mean[j], g.mean[j], 1e-12 * scale);
      EXPECT_NEAR(box.variance[j], g.variance[j], 1e-9 * (1 + g.variance[0]));
      EXPECT_NEAR(box.lower[j], g.lower[j], 1e-9 * scale);
      EXPECT_NEAR(box.upper[j], g.upper[j], 1e-9 * scale);
    }
    for (std::size_t i = 0; i < d * d; ++i) EXPECT_NEAR(box.rotation[i], g.rotation[i], 1e-9);
    for (int b = 0; b < g.b; ++b) {
      const Matrix<float> ref = gap_reference_set(box, g.draws[b].view());
      ASSERT_EQ(ref.rows(), g.n);
      for (std::int64_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(ref.data()[i], g.refs[b].data()[i], 1e-5 * (1 + std::abs(g.refs[b].data()[i])));
    }
  }
}

TEST(GapStatistic, FormulaAndRuleMatchNumpyExactly) {
  for (const std::string name : {"blobs4", "noise"}) {
    SCOPED_TRACE(name);
    const GapFixture g = read_gap_fixture(name);
    const GapResult r = gap_from_log_w(g.ks, g.log_w, g.log_w_ref, g.b);
    for (std::size_t i = 0; i < g.ks.size(); ++i) {
      EXPECT_NEAR(r.gap[i], g.gap[i], 1e-12);
      EXPECT_NEAR(r.s[i], g.s[i], 1e-12);
    }
    EXPECT_EQ(r.chosen_k.value_or(-1), g.chosen);
  }
  // Hand-computed: B = 1 gives s = 0; Gap = 0.5, 1.0, 0.9: K=2 (1.0 >= 0.9).
  const std::vector<int> ks{1, 2, 3};
  const GapResult r = gap_from_log_w(ks, std::vector<double>{1.0, 0.5, 0.3}, std::vector<double>{1.5, 1.5, 1.2}, 1);
  EXPECT_NEAR(r.gap[0], 0.5, 1e-15);
  EXPECT_NEAR(r.gap[2], 0.9, 1e-15);
  EXPECT_EQ(r.chosen_k.value_or(-1), 2);
}

TEST(GapStatistic, SegforgeClusteringOfTheFixedReferencesAgreesWithScikitLearn) {
  // The whole statistic with segforge's own K-Means on the fixture's reference sets: log W of
  // the data and of every reference against scikit-learn's (n_init = 20 there), and the same K.
  for (const std::string name : {"blobs4", "noise"}) {
    SCOPED_TRACE(name);
    const GapFixture g = read_gap_fixture(name);
    auto backend = make_cpu_backend();
    auto data = backend->upload(g.x.view());
    std::vector<Matrix<float>> refs;
    for (const auto& r : g.refs) {
      Matrix<float> f(r.rows(), r.cols());
      for (std::int64_t i = 0; i < r.size(); ++i) f.data()[i] = static_cast<float>(r.data()[i]);
      refs.push_back(std::move(f));
    }
    LloydParams p;
    p.n_init = 10;
    p.refine = Refine::random_swap;
    LloydParams reference = p;
    reference.refine = Refine::none;  // as the sweep clusters its references
    const GapResult r = gap_statistic(*backend, *data, refs, g.ks, p, reference);
    double worst = 0.0;
    for (std::size_t i = 0; i < g.ks.size(); ++i) {
      EXPECT_NEAR(r.log_w[i], g.log_w[i], 1e-4) << "K=" << g.ks[i];
      EXPECT_NEAR(r.gap[i], g.gap[i], 5e-3) << "K=" << g.ks[i];
      worst = std::max(worst, std::abs(r.gap[i] - g.gap[i]));
    }
    std::cout << "  [measured] gap " << name << ": max |Gap - numpy| " << worst << "\n";
    EXPECT_EQ(r.chosen_k.value_or(-1), g.chosen);
  }
}

// ---- the vote ------------------------------------------------------------------------------------

TEST(Recommend, MostVotesThenCriterionOrder) {
  SweepResult r;
  r.n_samples = 10000;
  for (int k = 2; k <= 6; ++k) {
    SweepRecord rec;
    rec.k = k;
    rec.inertia = 100.0 / (k * k);
    r.records.push_back(rec);
  }
  // silhouette → 3, DB → 3, CH → 5, gap → 5: a 2–2 tie goes to silhouette's K (listed first).
  r.records[1].silhouette = 0.9;
  r.records[0].silhouette = 0.5;
  r.records[1].davies_bouldin = 0.2;
  r.records[3].davies_bouldin = 0.4;
  r.records[3].calinski_harabasz = 50;
  r.records[1].calinski_harabasz = 40;
  for (auto& rec : r.records) {
    rec.gap = rec.k == 5 ? 2.0 : rec.k < 5 ? 0.1 * rec.k : 1.0;
    rec.gap_s = 0.01;
  }
  SweepParams p;
  p.criteria = {Criterion::silhouette, Criterion::davies_bouldin, Criterion::calinski_harabasz, Criterion::gap};
  recommend(r, p);
  EXPECT_EQ(r.recommended_k, 3);
  EXPECT_NE(r.reason.find("K=3"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("calinski_harabasz says 5"), std::string::npos) << r.reason;
  // One more vote for 5 wins.
  p.criteria.push_back(Criterion::elbow);
  r.records[3].inertia = 1e-9;  // a cliff at K=5 puts the knee there
  r.records[4].inertia = 0.0;
  recommend(r, p);
  const auto elbow = std::find_if(r.choices.begin(), r.choices.end(), [](const auto& c) { return c.criterion == Criterion::elbow; });
  ASSERT_NE(elbow, r.choices.end());
  if (elbow->k == 5) EXPECT_EQ(r.recommended_k, 5) << r.reason;
}

TEST(Recommend, OverSegmentedKNeverRecommended) {
  // The demo's case: silhouette and CH pick K=8, whose smallest segment is under the minimum
  // size; DB picks 5. The vote goes to 5, and the reason says why 8 was passed over.
  SweepResult r;
  r.n_samples = 20000;
  r.min_segment_size = 1000;
  for (int k = 4; k <= 9; ++k) {
    SweepRecord rec;
    rec.k = k;
    rec.smallest_segment = k >= 8 ? 120 : 2000;
    rec.over_segmented = k >= 8;
    rec.silhouette = k == 8 ? 0.6 : 0.05 * k;
    rec.calinski_harabasz = k == 8 ? 900.0 : 100.0 * k;
    rec.davies_bouldin = k == 5 ? 0.3 : 0.9;
    r.records.push_back(rec);
  }
  SweepParams p;
  p.criteria = {Criterion::silhouette, Criterion::davies_bouldin, Criterion::calinski_harabasz};
  recommend(r, p);
  EXPECT_EQ(r.recommended_k, 5) << r.reason;
  EXPECT_NE(r.reason.find("K=8 not considered: its smallest segment has 120 rows, below the minimum "
                          "segment size 1000"),
            std::string::npos)
      << r.reason;
  EXPECT_TRUE(r.warnings.empty());
  // When every choice is over-segmented nothing is recommended (it used to recommend 8 under a
  // warning that 8 is over-segmented), and the reason and a warning say why.
  r.records[1].over_segmented = true;
  r.records[1].smallest_segment = 300;
  recommend(r, p);
  EXPECT_EQ(r.recommended_k, 0) << r.reason;
  EXPECT_NE(r.reason.find("no K passes the minimum segment size 1000"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("K=5 not considered: its smallest segment has 300 rows"), std::string::npos) << r.reason;
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("no recommendation"), std::string::npos) << r.warnings[0];
  for (const auto& rec : r.records)
    if (rec.k == r.recommended_k) EXPECT_FALSE(rec.over_segmented);
}

TEST(Recommend, SingleKRecommendsNothing) {
  // `sweep --k 5` used to "recommend" 5 by 3 of 5 criteria: a best of one is no choice.
  SweepResult r;
  r.n_samples = 5000;
  SweepRecord rec;
  rec.k = 5;
  rec.inertia = 10.0;
  rec.silhouette = 0.4;
  rec.davies_bouldin = 0.8;
  rec.calinski_harabasz = 300.0;
  r.records.push_back(rec);
  SweepParams p;
  p.k_min = p.k_max = 5;
  p.criteria = {Criterion::silhouette, Criterion::davies_bouldin, Criterion::calinski_harabasz, Criterion::elbow};
  recommend(r, p);
  EXPECT_EQ(r.recommended_k, 0) << r.reason;
  EXPECT_NE(r.reason.find("a single K (5) cannot be compared"), std::string::npos) << r.reason;
  for (const auto& c : r.choices) EXPECT_FALSE(c.k) << criterion_name(c.criterion);
}

TEST(Recommend, SmallestKWithinOnePercentAndNothingAtTheTopOfTheRange) {
  // Hand-made scores: silhouette 0.600, 0.650, 0.655 (K=3 within 1% of K=4's best: 3);
  // DB 0.50, 0.504, 0.60 (K=2 best, K=3 within 1%: 2); CH rises to the top of the range: no
  // answer (the optimum may lie beyond K=4).
  SweepResult r;
  r.n_samples = 5000;
  const double sil[] = {0.600, 0.650, 0.655, 0.640}, db[] = {0.50, 0.504, 0.60, 0.7}, ch[] = {100, 200, 300, 400};
  for (int k = 2; k <= 5; ++k) {
    SweepRecord rec;
    rec.k = k;
    rec.inertia = 100.0 / k;
    rec.silhouette = sil[k - 2];
    rec.davies_bouldin = db[k - 2];
    rec.calinski_harabasz = ch[k - 2];
    r.records.push_back(rec);
  }
  SweepParams p;
  p.criteria = {Criterion::silhouette, Criterion::davies_bouldin, Criterion::calinski_harabasz};
  recommend(r, p);
  ASSERT_EQ(r.choices.size(), 3u);
  EXPECT_EQ(r.choices[0].k.value_or(-1), 3);
  EXPECT_EQ(r.choices[1].k.value_or(-1), 2);
  EXPECT_FALSE(r.choices[2].k);
  EXPECT_NE(r.choices[2].note.find("still improving at K=5"), std::string::npos) << r.choices[2].note;
  EXPECT_EQ(r.recommended_k, 3) << r.reason;  // 1-1 tie: silhouette is listed first
}

TEST(Recommend, DefaultMinimumSegmentSizeScalesWithTheData) {
  // 1% of N rounded up, clamped to [20, 1000]: Mall 200 -> 20, Wholesale 440 -> 20, Customer
  // Personality 2,216 -> 23, Online Retail 3,591 -> 36, 100,000 -> 1,000, 10 million -> 1,000.
  EXPECT_EQ(default_min_segment_size(200), 20);
  EXPECT_EQ(default_min_segment_size(440), 20);
  EXPECT_EQ(default_min_segment_size(2216), 23);
  EXPECT_EQ(default_min_segment_size(3591), 36);
  EXPECT_EQ(default_min_segment_size(100000), 1000);
  EXPECT_EQ(default_min_segment_size(10000000), 1000);
}

// ---- the sweep -----------------------------------------------------------------------------------

TEST(Sweep, RecordsEqualIndependentFits) {
  std::mt19937 gen(11);
  const Matrix<float> x = test::random_blobs(gen, 1200, 3, 4, 6.0);
  auto backend = make_cpu_backend();
  auto data = backend->upload(x.view());
  SweepParams p;
  p.k_min = 2;
  p.k_max = 6;
  p.lloyd.n_init = 2;
  p.lloyd.seed = 5;
  p.gap_references = 3;
  const SweepResult r = sweep(*backend, *data, p);
  ASSERT_EQ(r.records.size(), 5u);
  for (const auto& rec : r.records) {
    auto fresh_backend = make_cpu_backend();
    auto fresh = fresh_backend->upload(x.view());
    LloydParams q = p.lloyd;
    q.n_clusters = rec.k;
    const KMeansResult fit = fit_lloyd(*fresh_backend, *fresh, q);
    EXPECT_EQ(rec.inertia, fit.inertia) << "K=" << rec.k;  // bit-equal: nothing reused changes a fit
    EXPECT_EQ(rec.n_iter, fit.n_iter) << "K=" << rec.k;
    ASSERT_TRUE(rec.silhouette && rec.davies_bouldin && rec.calinski_harabasz && rec.gap && rec.gap_s);
    EXPECT_GE(*rec.silhouette, -1.0);
    EXPECT_LE(*rec.silhouette, 1.0);
  }
  EXPECT_EQ(r.recommended_k, 4) << r.reason;
  EXPECT_EQ(r.choices.size(), 5u);
  EXPECT_EQ(r.min_segment_size, 20);  // 1% of 1,200 is 12, under the floor of 20
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();  // 300-row segments pass
  EXPECT_FALSE(r.records[2].over_segmented);
  // Same seed, same sweep.
  const SweepResult again = sweep(*backend, *data, p);
  for (std::size_t i = 0; i < r.records.size(); ++i) EXPECT_EQ(*again.records[i].gap, *r.records[i].gap);
}

struct BenchmarkCase {
  const char* name;
  int k_min, k_max, truth;
};

class SweepBenchmark : public ::testing::TestWithParam<BenchmarkCase> {};

TEST_P(SweepBenchmark, TrueKByAtLeastTwoCriteria) {
  const BenchmarkCase& c = GetParam();
  const auto file = test::datasets_dir() / "franti_sieranoja_benchmark" / (std::string(c.name) + ".txt");
  if (!fs::exists(file)) GTEST_SKIP() << "dataset absent: " << file << " (set SEGFORGE_DATASETS)";
  const Matrix<float> x = test::read_text_matrix(file);
  auto backend = make_cpu_backend();
  auto data = backend->upload(x.view());
  SweepParams p;
  p.k_min = c.k_min;
  p.k_max = c.k_max;
  p.lloyd.n_init = 3;  // the CLI's defaults
  p.lloyd.refine = Refine::auto_select;
  p.gap_references = 5;
  const auto t0 = std::chrono::steady_clock::now();
  const SweepResult r = sweep(*backend, *data, p);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int agree = 0;
  std::string chosen;
  for (const auto& choice : r.choices) {
    agree += choice.k == c.truth;
    chosen += " " + criterion_name(choice.criterion) + "=" + (choice.k ? std::to_string(*choice.k) : "-");
  }
  std::cout << "  [measured] sweep " << c.name << " K " << c.k_min << ":" << c.k_max << ":" << chosen
            << "; recommended " << r.recommended_k << ", " << seconds << " s\n";
  EXPECT_GE(agree, 2) << r.reason;
  EXPECT_EQ(r.recommended_k, c.truth) << r.reason;
}

INSTANTIATE_TEST_SUITE_P(Sets, SweepBenchmark,
                         ::testing::Values(BenchmarkCase{"s1", 10, 20, 15}, BenchmarkCase{"s2", 10, 20, 15},
                                           BenchmarkCase{"s3", 10, 20, 15}, BenchmarkCase{"s4", 10, 20, 15},
                                           BenchmarkCase{"a1", 15, 25, 20}, BenchmarkCase{"a2", 31, 39, 35},
                                           BenchmarkCase{"a3", 46, 54, 50}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Sweep, GapSaysOneClusterOnUniformNoise) {
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    Matrix<float> x(1500, 2);
    for (auto& v : x.values()) v = u(gen);
    auto backend = make_cpu_backend();
    auto data = backend->upload(x.view());
    SweepParams p;
    p.k_min = 1;
    p.k_max = 5;
    p.criteria = {Criterion::gap};
    p.seed = seed;
    const SweepResult r = sweep(*backend, *data, p);
    ASSERT_EQ(r.choices.size(), 1u);
    EXPECT_EQ(r.choices[0].k.value_or(-1), 1);
    EXPECT_EQ(r.recommended_k, 1) << r.reason;
    EXPECT_FALSE(r.records[0].silhouette);  // undefined at K = 1
  }
}

struct BadSweep {
  const char* label;
  void (*mutate)(SweepParams&);
  const char* message;
};

class SweepValidation : public ::testing::TestWithParam<BadSweep> {};

TEST_P(SweepValidation, RejectsWithAMessage) {
  SweepParams p;
  p.k_min = 2;
  p.k_max = 5;
  GetParam().mutate(p);
  try {
    validate_sweep(p, 100, 3, "x.h5:/features");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().message), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("x.h5:/features", 0), 0u) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, SweepValidation,
    ::testing::Values(BadSweep{"k_min0", [](SweepParams& p) { p.k_min = 0; }, "smallest K should be >= 1"},
                      BadSweep{"reversed", [](SweepParams& p) { p.k_max = 1; }, "the range is empty"},
                      BadSweep{"k_over_n", [](SweepParams& p) { p.k_max = 101; }, "n_samples=100 should be >= n_clusters=101"},
                      BadSweep{"no_criteria", [](SweepParams& p) { p.criteria.clear(); }, "no criteria"},
                      BadSweep{"refs0", [](SweepParams& p) { p.gap_references = 0; }, "gap_references=0"},
                      BadSweep{"sample1", [](SweepParams& p) { p.silhouette_sample = 1; }, "silhouette sample size 1"},
                      BadSweep{"n_init0", [](SweepParams& p) { p.lloyd.n_init = 0; }, "n_init=0"}),
    [](const auto& info) { return std::string(info.param.label); });

// ---- the command ---------------------------------------------------------------------------------

class SweepCli : public test::TempDirTest {
 protected:
  int run(const std::string& args, std::string* output = nullptr) const {
    return shell(std::string(SEGFORGE_BINARY) + " " + args, output);
  }
};

TEST_F(SweepCli, WritesTheTableAndJson) {
  std::mt19937 gen(5);
  const Matrix<float> x = test::random_blobs(gen, 900, 2, 3, 8.0);
  write_features(path("f.h5"), x.view(), {"a", "b"});
  std::string out;
  ASSERT_EQ(run("sweep " + path("f.h5") + " --k 1:5 --gap-refs 4 --device cpu -o " + path("sweep.json"), &out), 0) << out;
  EXPECT_NE(out.find("recommended K = 3"), std::string::npos) << out;
  std::ifstream in(path("sweep.json"));
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["recommended_k"], 3);
  EXPECT_TRUE(j["reason"].is_string());
  ASSERT_EQ(j["records"].size(), 5u);
  EXPECT_TRUE(j["records"][0]["silhouette"].is_null());  // K = 1
  EXPECT_TRUE(j["records"][2]["gap"].is_number());
  EXPECT_EQ(j["criteria"]["gap"]["k"], 3);
  EXPECT_EQ(j["silhouette_method"], "exact");  // 900 rows
  // Without the silhouette the file says so, rather than naming a method that never ran.
  ASSERT_EQ(run("sweep " + path("f.h5") + " --k 2:4 --gap-refs 2 --silhouette none --device cpu -o " +
                    path("none.json"), &out), 0) << out;
  std::ifstream none_in(path("none.json"));
  const auto none = nlohmann::json::parse(none_in);
  EXPECT_EQ(none["silhouette_method"], "none");
  EXPECT_FALSE(none["criteria"].contains("silhouette"));
  EXPECT_EQ(j["records"][2]["sizes"].size(), 3u);
}

TEST_F(SweepCli, BadInputExitsTwoAndWritesNothing) {
  std::mt19937 gen(5);
  const Matrix<float> x = test::random_blobs(gen, 60, 2, 3, 8.0);
  write_features(path("f.h5"), x.view(), {"a", "b"});
  std::string out;
  EXPECT_EQ(run("sweep " + path("f.h5") + " --k 5:2 -o " + path("s.json"), &out), 2);
  EXPECT_NE(out.find("the range is empty"), std::string::npos) << out;
  EXPECT_EQ(run("sweep " + path("f.h5") + " --k two -o " + path("s.json"), &out), 2);
  EXPECT_EQ(run("sweep " + path("f.h5") + " --criteria elbow,magic -o " + path("s.json"), &out), 2);
  EXPECT_NE(out.find("unknown criterion 'magic'"), std::string::npos) << out;
  EXPECT_EQ(run("sweep " + path("f.h5") + " --k 2:61 -o " + path("s.json"), &out), 2);
  EXPECT_FALSE(fs::exists(path("s.json")));
}

TEST_F(SweepCli, OneKOrNoPassingKRecommendsNothing) {
  std::mt19937 gen(5);
  const Matrix<float> x = test::random_blobs(gen, 900, 2, 3, 8.0);
  write_features(path("f.h5"), x.view(), {"a", "b"});
  std::string out;
  ASSERT_EQ(run("sweep " + path("f.h5") + " --k 3 --gap-refs 2 --device cpu -o " + path("one.json"), &out), 0) << out;
  EXPECT_NE(out.find("no recommendation: a single K (3) cannot be compared"), std::string::npos) << out;
  std::ifstream one(path("one.json"));
  EXPECT_EQ(nlohmann::json::parse(one)["recommended_k"], 0);
  // Three blobs of 300: with a minimum of 400 no K passes, and the sweep says so.
  ASSERT_EQ(run("sweep " + path("f.h5") + " --k 2:5 --gap-refs 2 --min-segment-size 400 --device cpu", &out), 0) << out;
  EXPECT_NE(out.find("no recommendation: no K passes the minimum segment size 400"), std::string::npos) << out;
  EXPECT_EQ(out.find("recommended K ="), std::string::npos) << out;
}

}  // namespace
}  // namespace segforge
