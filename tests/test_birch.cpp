// BIRCH against scikit-learn 1.2's Birch(n_clusters=None) (scripts/make_birch_fixtures.py, run
// at test time): the same subclusters (count, sizes, centroids within 1e-5) and labels on
// blobs, Gaussian data with small branching factors, scikit-learn's docstring example, Mall
// Customers and Fränti S1; the translation by 1e6 that scikit-learn fails (segforge: the same
// tree bit for bit); partial_fit over parts with a save and load between them equals one fit,
// bit for bit; what weights do and do not equal (header); rebuilds under the memory budget;
// the global step (size-weighted Ward = linkage_tree on the subclusters, K-Means); bad input.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "segforge/agglomerative.hpp"
#include "segforge/backend.hpp"
#include "segforge/birch.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "test_support.hpp"

namespace segforge {
namespace {

namespace fs = std::filesystem;
using i64 = std::int64_t;
using nlohmann::json;

fs::path make_fixtures() {
  const fs::path d = fs::temp_directory_path() / ("segforge_birch_" + std::to_string(::getpid()));
  fs::create_directories(d);
  const std::string cmd = "/usr/bin/python3 " + std::string(SEGFORGE_FIXTURES) + "/../../scripts/make_birch_fixtures.py '" +
                          d.string() + "' '" + test::datasets_dir().string() + "'";
  std::string out;
  if (test::run_shell(cmd, d / "log.txt", &out) != 0) throw std::runtime_error("make_birch_fixtures.py failed: " + out);
  return d;
}

/// The fixtures, made once per process in a temporary folder that is removed at exit.
const fs::path& fixtures() {
  struct Folder {
    fs::path dir;
    ~Folder() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  };
  static const Folder folder{make_fixtures()};
  return folder.dir;
}

struct Case {
  i64 n = 0, d = 0;
  Matrix<float> x;
  json doc;
};

Matrix<float> as_float(i64 rows, i64 cols, const std::vector<double>& v) {
  Matrix<float> f(rows, cols);
  for (i64 i = 0; i < f.size(); ++i) f.data()[i] = static_cast<float>(v[static_cast<std::size_t>(i)]);
  return f;
}

Case load(const std::string& name) {
  std::ifstream in(fixtures() / (name + ".json"));
  Case c;
  c.doc = json::parse(in);
  c.n = c.doc["n"].get<i64>();
  c.d = c.doc["d"].get<i64>();
  c.x = as_float(c.n, c.d, c.doc["x"].get<std::vector<double>>());
  return c;
}

BirchParams params_of(const Case& c) {
  BirchParams p;
  p.threshold = c.doc["threshold"].get<double>();
  p.branching_factor = c.doc["branching_factor"].get<int>();
  p.n_clusters = 0;
  return p;
}

BirchResult fit(const Matrix<float>& x, const BirchParams& p, const std::vector<float>& weights = {}, int threads = 2) {
  auto backend = make_cpu_backend(threads);
  // (A weight count that does not match the rows is fit_birch's to refuse.)
  auto data = backend->upload(x.view(), static_cast<i64>(weights.size()) == x.rows() ? weights : std::vector<float>{});
  return fit_birch(*backend, *data, p, weights);
}

/// Rows [lo, hi) of x.
Matrix<float> slice(const Matrix<float>& x, i64 lo, i64 hi) {
  Matrix<float> s(hi - lo, x.cols());
  std::copy(x.row(lo), x.row(lo) + (hi - lo) * x.cols(), s.data());
  return s;
}

void expect_same_state(const BirchState& a, const BirchState& b, const std::string& what, bool same_origin = true) {
  EXPECT_EQ(a.threshold, b.threshold) << what;
  EXPECT_EQ(a.n_rebuilds, b.n_rebuilds) << what;
  EXPECT_EQ(a.n_features, b.n_features) << what;
  EXPECT_EQ(a.n_subclusters, b.n_subclusters) << what;
  if (same_origin) EXPECT_EQ(a.origin, b.origin) << what;
  EXPECT_EQ(a.weight, b.weight) << what;
  EXPECT_EQ(a.mean.values(), b.mean.values()) << what;
  EXPECT_EQ(a.sq_deviation, b.sq_deviation) << what;
  EXPECT_EQ(a.child, b.child) << what;
  EXPECT_EQ(a.node_start, b.node_start) << what;
  EXPECT_EQ(a.root, b.root) << what;
}

/// The state through text with 17 significant digits and back, as a file would keep it.
BirchState save_and_load(const BirchState& s) {
  std::stringstream io;
  io.precision(17);
  auto put = [&](const auto& v) {
    io << v.size();
    for (const auto& e : v) io << ' ' << e;
    io << '\n';
  };
  io << s.threshold << ' ' << s.initial_threshold << ' ' << s.branching_factor << ' ' << s.max_subclusters << ' '
     << s.n_rebuilds << ' ' << s.n_features << ' ' << s.n_rows_seen << ' ' << s.n_subclusters << ' ' << s.root << '\n';
  put(s.origin);
  put(s.weight);
  put(s.mean.values());
  put(s.sq_deviation);
  put(s.child);
  put(s.node_start);
  BirchState t;
  io >> t.threshold >> t.initial_threshold >> t.branching_factor >> t.max_subclusters >> t.n_rebuilds >> t.n_features >>
      t.n_rows_seen >> t.n_subclusters >> t.root;
  auto get = [&](auto& v) {
    std::size_t n = 0;
    io >> n;
    v.resize(n);
    for (auto& e : v) io >> e;
  };
  get(t.origin);
  get(t.weight);
  std::vector<double> mean;
  get(mean);
  t.mean = Matrix<double>(static_cast<i64>(t.weight.size()), t.n_features, mean);
  get(t.sq_deviation);
  get(t.child);
  get(t.node_start);
  return t;
}

// ---- against scikit-learn ---------------------------------------------------------------------

class AgainstSklearn : public ::testing::TestWithParam<const char*> {};

TEST_P(AgainstSklearn, SubclustersAndLabels) {
  const std::string name = GetParam();
  if (!fs::exists(fixtures() / (name + ".json"))) GTEST_SKIP() << "dataset absent for " << name << " (set SEGFORGE_DATASETS)";
  const Case c = load(name);
  const BirchParams p = params_of(c);
  const auto t0 = std::chrono::steady_clock::now();
  const BirchResult r = fit(c.x, p);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NO_THROW(validate(r.state, name));
  const std::vector<double> centers = c.doc["centers"].get<std::vector<double>>();
  const std::vector<double> sizes = c.doc["sizes"].get<std::vector<double>>();
  const std::vector<int> labels = c.doc["labels"].get<std::vector<int>>();
  const i64 m = static_cast<i64>(sizes.size()), d = c.d;
  ASSERT_EQ(r.state.n_subclusters, m) << name << ": subcluster count";
  const Matrix<double> ours = birch_subcluster_centroids(r.state);
  // scikit-learn's subcluster i is ours to_ours[i]: the same index unless the two halves of a
  // split were numbered the other way round (its split distances are float64 expansions, which
  // an ulp can make asymmetric); then the nearest centroid, which must be a bijection.
  auto close = [&](i64 i, i64 j) {
    for (i64 k = 0; k < d; ++k)
      if (std::abs(ours(j, k) - centers[static_cast<std::size_t>(i * d + k)]) > 1e-5 * (1.0 + std::abs(centers[static_cast<std::size_t>(i * d + k)])))
        return false;
    return true;
  };
  std::vector<i64> to_ours(static_cast<std::size_t>(m));
  std::vector<int> taken(static_cast<std::size_t>(m), 0);
  i64 reordered = 0;
  for (i64 i = 0; i < m; ++i) {
    i64 j = i;
    if (!close(i, i)) {
      ++reordered;
      double best = std::numeric_limits<double>::infinity();
      for (i64 t = 0; t < m; ++t) {
        double s = 0.0;
        for (i64 k = 0; k < d; ++k) s += std::pow(ours(t, k) - centers[static_cast<std::size_t>(i * d + k)], 2);
        if (s < best) best = s, j = t;
      }
      ASSERT_TRUE(close(i, j)) << name << ": scikit-learn's subcluster " << i << " has no match within 1e-5";
    }
    ASSERT_EQ(taken[static_cast<std::size_t>(j)]++, 0) << name << ": two of scikit-learn's subclusters match our " << j;
    to_ours[static_cast<std::size_t>(i)] = j;
    EXPECT_EQ(r.state.weight[static_cast<std::size_t>(j)], sizes[static_cast<std::size_t>(i)]) << name << ": size of subcluster " << i;
  }
  // Labels: the same nearest subcluster, except where two subclusters are within float32
  // rounding of equidistant (segforge assigns in float32, scikit-learn in float64).
  i64 near_ties = 0;
  for (i64 row = 0; row < c.n; ++row) {
    const i64 theirs = to_ours[static_cast<std::size_t>(labels[static_cast<std::size_t>(row)])];
    const i64 mine = r.assignment.subclusters[static_cast<std::size_t>(row)];
    EXPECT_EQ(r.assignment.labels[static_cast<std::size_t>(row)], mine) << "n_clusters=0: the subcluster is the segment";
    if (mine == theirs) continue;
    double da = 0.0, db = 0.0;
    for (i64 k = 0; k < d; ++k) {
      da += std::pow(double(c.x(row, k)) - ours(mine, k), 2);
      db += std::pow(double(c.x(row, k)) - ours(theirs, k), 2);
    }
    if (std::abs(da - db) <= 1e-5 * (1.0 + std::max(da, db))) {
      ++near_ties;
      continue;
    }
    ADD_FAILURE() << name << ": row " << row << " is in subcluster " << mine << " (squared distance " << da
                  << "), scikit-learn's nearest is our " << theirs << " (" << db << ")";
    break;
  }
  EXPECT_TRUE(c.doc["partial_equal"].get<bool>()) << "scikit-learn's partial_fit over two halves differs from its fit";
  std::cout << "  [birch] " << name << ": " << c.n << " x " << d << ", threshold " << p.threshold << ", branching factor "
            << p.branching_factor << ": " << m << " subclusters as scikit-learn " << c.doc["sklearn_version"].get<std::string>()
            << " (" << reordered << " numbered otherwise), labels equal (" << near_ties << " float32 near-ties), " << seconds
            << " s\n";
}

INSTANTIATE_TEST_SUITE_P(Cases, AgainstSklearn,
                         ::testing::Values("doc", "blobs_2000x4", "blobs_3000x8_b8", "gauss_1500x2_b3", "gauss_1000x3_b2",
                                           "translation", "mall", "s1"));

TEST(Birch, DocstringExample) {
  // scikit-learn's docstring: Birch(n_clusters=None).fit(X).predict(X) == [0, 0, 0, 1, 1, 1].
  const Matrix<float> x(6, 2, std::vector<float>{0, 1, 0.3f, 1, -0.3f, 1, 0, -1, 0.3f, -1, -0.3f, -1});
  const BirchResult r = fit(x, BirchParams{});
  EXPECT_EQ(r.state.n_subclusters, 2);
  EXPECT_EQ(r.assignment.labels, (std::vector<std::int32_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(r.segments.n_clusters, 2);
  EXPECT_NEAR(r.segments.centroids(1, 1), -1.0f, 1e-7);
  EXPECT_EQ(r.segments.sizes, (std::vector<double>{3.0, 3.0}));
}

TEST(Birch, HandComputedSplit) {
  // 1-D, threshold 0.1 (every row its own subcluster), branching factor 2. Rows 0, 10, 4: the
  // third entry overflows the root leaf; the farthest pair is (0, 10), 4 is nearer 0, so the
  // leaves are {0, 4} and {10}, under a new root. Then 11 goes to the leaf of 10 ({10, 11}).
  const Matrix<float> x(4, 1, std::vector<float>{0, 10, 4, 11});
  BirchParams p;
  p.threshold = 0.1;
  p.branching_factor = 2;
  const BirchResult r = fit(x, p);
  const BirchState& s = r.state;
  ASSERT_EQ(s.n_subclusters, 4);
  const Matrix<double> c = birch_subcluster_centroids(s);
  EXPECT_EQ(c.values(), (std::vector<double>{0, 4, 10, 11}));
  EXPECT_EQ(s.node_start, (std::vector<i64>{0, 2, 4, 6}));  // two leaves, then the root
  EXPECT_EQ(s.root, 2);
  EXPECT_EQ(s.child, (std::vector<i64>{-1, -1, -1, -1, 0, 1}));
  EXPECT_EQ(s.weight, (std::vector<double>{1, 1, 1, 1, 2, 2}));
  // The root entries: (n 2, μ 2, S 8) and (n 2, μ 10.5, S 0.5), relative to the origin 0.
  EXPECT_EQ(s.mean(4, 0), 2.0);
  EXPECT_EQ(s.sq_deviation[4], 8.0);
  EXPECT_EQ(s.mean(5, 0), 10.5);
  EXPECT_EQ(s.sq_deviation[5], 0.5);
  // A row at 0.1 is absorbed by {0} (radius 0.05 <= 0.1); then 0.3 is not (radius ≈ 0.125).
  BirchState more = s;
  auto backend = make_cpu_backend(1);
  const Matrix<float> y(2, 1, std::vector<float>{0.1f, 0.3f});
  partial_fit_birch(*backend, more, *backend->upload(y.view()));
  EXPECT_EQ(more.n_subclusters, 5);
  EXPECT_EQ(more.weight[0], 2.0);
}

// ---- translation ---------------------------------------------------------------------------------

TEST(Birch, TranslationByAMillionGivesTheSameTree) {
  const Case c = load("translation");
  const Matrix<float> shifted = as_float(c.n, c.d, c.doc["x_shifted"].get<std::vector<double>>());
  const BirchParams p = params_of(c);
  const BirchResult a = fit(c.x, p), b = fit(shifted, p);
  expect_same_state(a.state, b.state, "x vs x + 1e6", false);
  for (i64 k = 0; k < c.d; ++k) EXPECT_EQ(b.state.origin[k] - a.state.origin[k], 1e6);
  EXPECT_EQ(a.assignment.subclusters, b.assignment.subclusters);
  EXPECT_EQ(a.assignment.sq_distances, b.assignment.sq_distances);
  // The absolute centroids: 1e6 apart, within the rounding of origin + μ.
  const Matrix<double> ca = birch_subcluster_centroids(a.state), cb = birch_subcluster_centroids(b.state);
  for (i64 i = 0; i < ca.size(); ++i) EXPECT_NEAR(cb.data()[i] - ca.data()[i], 1e6, 1e-9);
  std::cout << "  [birch] translation by 1e6: segforge " << a.state.n_subclusters << " and " << b.state.n_subclusters
            << " subclusters (the same tree); scikit-learn " << c.doc["sklearn_m"] << " and " << c.doc["sklearn_m_shifted"] << "\n";
  EXPECT_NE(c.doc["sklearn_m"].get<i64>(), c.doc["sklearn_m_shifted"].get<i64>()) << "the script's claim about scikit-learn";
}

// ---- partial_fit ------------------------------------------------------------------------------------

void expect_parts_equal_one_fit(const Matrix<float>& x, const BirchParams& p, const std::vector<i64>& cuts, const std::string& what) {
  auto backend = make_cpu_backend(2);
  BirchState one = make_birch_state(p);
  partial_fit_birch(*backend, one, *backend->upload(x.view()));
  BirchState parts = make_birch_state(p);
  i64 lo = 0;
  for (i64 hi : cuts) {
    partial_fit_birch(*backend, parts, *backend->upload(slice(x, lo, hi).view()));
    parts = save_and_load(parts);
    EXPECT_NO_THROW(validate(parts, what));
    lo = hi;
  }
  expect_same_state(parts, one, what);
  EXPECT_EQ(parts.n_rows_seen, x.rows());
  // The same global step and labels.
  BirchParams g = p;
  g.n_clusters = 3;
  const BirchSegments s1 = birch_global_step(*backend, one, g), s2 = birch_global_step(*backend, parts, g);
  EXPECT_EQ(s1.subcluster_labels, s2.subcluster_labels) << what;
  auto data = backend->upload(x.view());
  EXPECT_EQ(predict_birch(*backend, one, s1, *data).labels, predict_birch(*backend, parts, s2, *data).labels) << what;
}

TEST(Birch, PartialFitOverPartsWithSaveAndLoadEqualsOneFit) {
  const Case blobs = load("blobs_2000x4");
  expect_parts_equal_one_fit(blobs.x, params_of(blobs), {1000, 2000}, "blobs halves");
  expect_parts_equal_one_fit(blobs.x, params_of(blobs), {1, 2, 999, 1500, 2000}, "blobs uneven parts");
  const Case deep = load("gauss_1500x2_b3");
  expect_parts_equal_one_fit(deep.x, params_of(deep), {700, 1500}, "branching factor 3");
  // More rows than one window of reads (65,536), the parts cut elsewhere than the windows.
  std::mt19937 gen(8);
  const Matrix<float> many = test::random_blobs(gen, 70000, 3, 5);
  BirchParams wide;
  wide.threshold = 0.8;
  expect_parts_equal_one_fit(many, wide, {40000, 70000}, "70,000 rows");
  // With rebuilds under a budget, in both parts.
  BirchParams budget = params_of(blobs);
  budget.threshold = 0.1;
  budget.max_subclusters = 120;
  expect_parts_equal_one_fit(blobs.x, budget, {1000, 2000}, "rebuilds");
}

TEST(Birch, PartialFitKeepsTheStateOnError) {
  const Case c = load("blobs_2000x4");
  auto backend = make_cpu_backend(2);
  BirchState s = make_birch_state(params_of(c));
  partial_fit_birch(*backend, s, *backend->upload(slice(c.x, 0, 1000).view()));
  const BirchState before = s;
  Matrix<float> bad = slice(c.x, 1000, 2000);
  bad(700, 2) = std::nanf("");
  EXPECT_THROW(partial_fit_birch(*backend, s, *backend->upload(bad.view())), InputError);
  expect_same_state(s, before, "after an error");
  EXPECT_EQ(s.n_rows_seen, 1000);
}

// ---- weights ------------------------------------------------------------------------------------------

TEST(Birch, UnitWeightsAreNoWeights) {
  const Case c = load("blobs_2000x4");
  const BirchParams p = params_of(c);
  const BirchResult a = fit(c.x, p), b = fit(c.x, p, std::vector<float>(static_cast<std::size_t>(c.n), 1.0f));
  expect_same_state(a.state, b.state, "unit weights");
  EXPECT_EQ(a.assignment.labels, b.assignment.labels);
}

TEST(Birch, ZeroWeightIsTheRowLeftOut) {
  const Case c = load("blobs_2000x4");
  const BirchParams p = params_of(c);
  std::mt19937 gen(3);
  std::vector<float> w(static_cast<std::size_t>(c.n));
  std::vector<float> kept_values;
  for (i64 i = 0; i < c.n; ++i) {
    w[i] = (gen() % 5 == 0 || i == 0) ? 0.0f : 1.0f;  // the first row too: the origin is the first kept row
    if (w[i] > 0) kept_values.insert(kept_values.end(), c.x.row(i), c.x.row(i) + c.d);
  }
  const Matrix<float> kept(static_cast<i64>(kept_values.size()) / c.d, c.d, kept_values);
  const BirchResult a = fit(c.x, p, w), b = fit(kept, p);
  expect_same_state(a.state, b.state, "weight 0 vs left out");
  EXPECT_EQ(a.state.n_rows_seen, c.n);
  // Every row is labelled, the weightless ones too.
  for (std::int32_t l : a.assignment.labels) ASSERT_TRUE(l >= 0 && l < a.segments.n_clusters);
}

TEST(Birch, ScalingEveryWeightByAPowerOfTwoScalesNAndS) {
  const Case c = load("gauss_1500x2_b3");
  const BirchParams p = params_of(c);
  std::mt19937 gen(4);
  std::vector<float> w(static_cast<std::size_t>(c.n)), w4(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.25f + static_cast<float>(gen() % 8) * 0.5f, w4[i] = 4.0f * w[i];
  const BirchResult a = fit(c.x, p, w), b = fit(c.x, p, w4);
  ASSERT_EQ(a.state.n_entries(), b.state.n_entries());
  EXPECT_EQ(a.state.mean.values(), b.state.mean.values());
  EXPECT_EQ(a.state.node_start, b.state.node_start);
  for (i64 e = 0; e < a.state.n_entries(); ++e) {
    EXPECT_EQ(4.0 * a.state.weight[e], b.state.weight[e]);
    EXPECT_EQ(4.0 * a.state.sq_deviation[e], b.state.sq_deviation[e]);
  }
  EXPECT_EQ(a.assignment.labels, b.assignment.labels);
}

TEST(Birch, SubclusterFeaturesAreThoseOfTheWeightedRows) {
  // CF additivity: Σ n = Σ w, Σ n·μ = Σ w·x, and Σ (S + n‖μ − x̄‖²) = Σ w‖x − x̄‖² (the rows
  // repeated w times have the same sums), whatever absorbed what.
  const Case c = load("blobs_3000x8_b8");
  std::mt19937 gen(5);
  std::vector<float> w(static_cast<std::size_t>(c.n));
  for (float& v : w) v = static_cast<float>(gen() % 1000) / 250.0f;  // 0 to ~4, some 0
  const BirchResult r = fit(c.x, params_of(c), w);
  const BirchState& s = r.state;
  const Matrix<double> cent = birch_subcluster_centroids(s);
  double total_w = 0.0, total_n = 0.0;
  std::vector<double> mean(static_cast<std::size_t>(c.d), 0.0), from_cf(mean.size(), 0.0);
  for (i64 i = 0; i < c.n; ++i) {
    total_w += w[i];
    for (i64 k = 0; k < c.d; ++k) mean[k] += w[i] * double(c.x(i, k));
  }
  for (i64 m = 0; m < s.n_subclusters; ++m) {
    total_n += s.weight[m];
    for (i64 k = 0; k < c.d; ++k) from_cf[k] += s.weight[m] * cent(m, k);
  }
  EXPECT_NEAR(total_n, total_w, 1e-12 * total_w);
  for (i64 k = 0; k < c.d; ++k) {
    mean[k] /= total_w;
    EXPECT_NEAR(from_cf[k] / total_n, mean[k], 1e-9 * (1.0 + std::abs(mean[k])));
  }
  double scatter = 0.0, scatter_cf = 0.0;
  for (i64 i = 0; i < c.n; ++i)
    for (i64 k = 0; k < c.d; ++k) scatter += w[i] * std::pow(double(c.x(i, k)) - mean[k], 2);
  for (i64 m = 0; m < s.n_subclusters; ++m) {
    scatter_cf += s.sq_deviation[m];
    for (i64 k = 0; k < c.d; ++k) scatter_cf += s.weight[m] * std::pow(cent(m, k) - mean[k], 2);
  }
  EXPECT_NEAR(scatter_cf, scatter, 1e-9 * scatter);
  // Every subcluster's radius is within the threshold.
  for (i64 m = 0; m < s.n_subclusters; ++m) EXPECT_LE(std::sqrt(s.sq_deviation[m] / s.weight[m]), s.threshold * (1 + 1e-12));
}

TEST(Birch, WeightIsABlockOfCopiesNotCopiesOneByOne) {
  // The header's example: rows 0 and 3, threshold 1. Weight 8 on 3: one subcluster, n = 9,
  // μ = 8/3, S = (1·8/9)·9 = 8. The 8 copies one by one: the first starts {3} (radius 1.5 > 1),
  // the other seven join it.
  BirchParams p;
  p.threshold = 1.0;
  const Matrix<float> x(2, 1, std::vector<float>{0, 3});
  const BirchResult w = fit(x, p, {1.0f, 8.0f});
  ASSERT_EQ(w.state.n_subclusters, 1);
  EXPECT_EQ(w.state.weight[0], 9.0);
  EXPECT_DOUBLE_EQ(w.state.mean(0, 0), 8.0 / 3.0);
  EXPECT_DOUBLE_EQ(w.state.sq_deviation[0], 8.0);
  const Matrix<float> rep(9, 1, std::vector<float>{0, 3, 3, 3, 3, 3, 3, 3, 3});
  const BirchResult r = fit(rep, p);
  ASSERT_EQ(r.state.n_subclusters, 2);
  EXPECT_EQ(r.state.weight, (std::vector<double>{1.0, 8.0}));
  EXPECT_EQ(birch_subcluster_centroids(r.state).values(), (std::vector<double>{0.0, 3.0}));
}

TEST(Birch, IsolatedRepeatedPointsEqualWeights) {
  // Points far apart (no two within reach of the threshold), each repeated: weights equal to
  // the repetition counts give the same subclusters.
  std::mt19937 gen(6);
  const int k = 12;
  std::vector<float> points, weights, repeated;
  for (int i = 0; i < k; ++i) {
    const float a = 100.0f * static_cast<float>(i % 4), b = 100.0f * static_cast<float>(i / 4);
    const int r = 1 + static_cast<int>(gen() % 6);
    points.insert(points.end(), {a, b});
    weights.push_back(static_cast<float>(r));
    for (int t = 0; t < r; ++t) repeated.insert(repeated.end(), {a, b});
  }
  BirchParams p;
  p.threshold = 1.0;  // one leaf: with internal nodes a copy may descend into another branch
  const BirchResult w = fit(Matrix<float>(k, 2, points), p, weights);
  const BirchResult r = fit(Matrix<float>(static_cast<i64>(repeated.size()) / 2, 2, repeated), p);
  expect_same_state(w.state, r.state, "isolated repeated points");
}

// ---- the memory budget ----------------------------------------------------------------------------------

TEST(Birch, RebuildsWithALargerThresholdUnderTheBudget) {
  const Case c = load("blobs_2000x4");
  BirchParams p = params_of(c);
  p.threshold = 0.1;
  const BirchResult free = fit(c.x, p);
  p.max_subclusters = 100;
  const BirchResult r = fit(c.x, p);
  const BirchState& s = r.state;
  EXPECT_GT(free.state.n_subclusters, 1000);
  EXPECT_LE(s.n_subclusters, 100);
  EXPECT_GE(s.n_rebuilds, 1);
  EXPECT_EQ(s.initial_threshold, 0.1);
  // Each rebuild multiplies the threshold by at least 2^(1/4).
  EXPECT_GE(s.threshold, 0.1 * std::pow(2.0, 0.25 * s.n_rebuilds) * (1 - 1e-12));
  EXPECT_NO_THROW(validate(s, "rebuilt"));
  double total = 0.0;
  for (i64 m = 0; m < s.n_subclusters; ++m) {
    total += s.weight[m];
    EXPECT_LE(std::sqrt(s.sq_deviation[m] / s.weight[m]), s.threshold * (1 + 1e-12));
  }
  EXPECT_EQ(total, 2000.0);
  ASSERT_EQ(static_cast<i64>(r.assignment.labels.size()), c.n);
  for (i64 i = 0; i < c.n; ++i) {
    ASSERT_GE(r.assignment.subclusters[i], 0);
    ASSERT_LT(r.assignment.subclusters[i], s.n_subclusters);
  }
  std::cout << "  [birch] budget 100: " << free.state.n_subclusters << " subclusters at threshold 0.1 -> " << s.n_subclusters
            << " after " << s.n_rebuilds << " rebuild(s), threshold " << s.threshold << "\n";
}

TEST(Birch, RebuildRuleByHand) {
  // 1-D rows 0, 10, 20, threshold 0.1, budget 2. The third row makes 3 subclusters: rebuild with
  // T' = max(2^(1/4)·0.1, r_min) = 5, r_min = sqrt(S/n) of {0, 10} = sqrt((½·100)/2) = 5. Re-inserted,
  // 10 joins 0 (radius 5 <= 5) and 20 stays apart (radius sqrt(200/3) > 5): 2 subclusters.
  BirchParams p;
  p.threshold = 0.1;
  p.max_subclusters = 2;
  const BirchResult r = fit(Matrix<float>(3, 1, std::vector<float>{0, 10, 20}), p);
  EXPECT_EQ(r.state.n_rebuilds, 1);
  EXPECT_EQ(r.state.threshold, 5.0);
  EXPECT_EQ(r.state.weight, (std::vector<double>{2.0, 1.0}));
  EXPECT_EQ(birch_subcluster_centroids(r.state).values(), (std::vector<double>{5.0, 20.0}));
  EXPECT_EQ(r.state.sq_deviation, (std::vector<double>{50.0, 0.0}));
  EXPECT_EQ(r.assignment.subclusters, (std::vector<std::int32_t>{0, 0, 1}));
}

// ---- the global step -------------------------------------------------------------------------------------

TEST(Birch, WardGlobalStepIsLinkageTreeOnTheSubclusters) {
  const Case c = load("blobs_2000x4");
  BirchParams p = params_of(c);
  p.n_clusters = 6;
  const BirchResult r = fit(c.x, p);
  const BirchState& s = r.state;
  const i64 m = s.n_subclusters;
  // The tree: size-weighted Ward on the centroids (relative to the origin) with sizes n.
  const Matrix<double> rel(m, c.d, std::vector<double>(s.mean.data(), s.mean.data() + m * c.d));
  const LinkageTree t = linkage_tree(rel.view(), std::vector<double>(s.weight.begin(), s.weight.begin() + m), Linkage::ward);
  ASSERT_EQ(r.segments.tree.merges.size(), t.merges.size());
  for (std::size_t i = 0; i < t.merges.size(); ++i) {
    EXPECT_EQ(r.segments.tree.merges[i].a, t.merges[i].a);
    EXPECT_EQ(r.segments.tree.merges[i].b, t.merges[i].b);
    EXPECT_EQ(r.segments.tree.merges[i].height, t.merges[i].height);
    EXPECT_EQ(r.segments.tree.merges[i].size, t.merges[i].size);
  }
  EXPECT_EQ(r.segments.subcluster_labels, cut_by_count(t, 6).labels);
  EXPECT_EQ(r.segments.n_clusters, 6);
  // Rows: the segment of their nearest subcluster.
  for (i64 i = 0; i < c.n; ++i)
    ASSERT_EQ(r.assignment.labels[i], r.segments.subcluster_labels[r.assignment.subclusters[i]]);
  // Segment centroids and sizes: the weighted means of their subclusters.
  const Matrix<double> cent = birch_subcluster_centroids(s);
  std::vector<double> size(6, 0.0);
  Matrix<double> sum(6, c.d, 0.0);
  for (i64 j = 0; j < m; ++j) {
    const int l = r.segments.subcluster_labels[j];
    size[l] += s.weight[j];
    for (i64 k = 0; k < c.d; ++k) sum(l, k) += s.weight[j] * cent(j, k);
  }
  for (int l = 0; l < 6; ++l) {
    EXPECT_NEAR(r.segments.sizes[l], size[l], 1e-9 * size[l]);
    for (i64 k = 0; k < c.d; ++k) EXPECT_NEAR(r.segments.centroids(l, k), sum(l, k) / size[l], 1e-5);
  }
  // Both global steps find the six blobs.
  p.global = BirchGlobal::kmeans;
  const BirchResult km = fit(c.x, p);
  const std::vector<int> truth_int = c.doc["truth"].get<std::vector<int>>();
  const std::vector<std::int32_t> truth(truth_int.begin(), truth_int.end());
  const double ari_ward = test::adjusted_rand_index(r.assignment.labels, truth);
  const double ari_km = test::adjusted_rand_index(km.assignment.labels, truth);
  EXPECT_GT(ari_ward, 0.99);
  EXPECT_GT(ari_km, 0.99);
  std::cout << "  [birch] global step: " << m << " subclusters -> 6 segments; ARI against the blobs: Ward " << ari_ward
            << ", K-Means " << ari_km << "\n";
}

TEST(Birch, KMeansGlobalStep) {
  const Case c = load("blobs_3000x8_b8");
  BirchParams p = params_of(c);
  p.n_clusters = 10;
  p.global = BirchGlobal::kmeans;
  p.seed = 11;
  const BirchResult one = fit(c.x, p, {}, 1), two = fit(c.x, p, {}, 2);
  EXPECT_EQ(one.segments.subcluster_labels, two.segments.subcluster_labels) << "same bits on 1 and 2 threads";
  EXPECT_EQ(one.assignment.labels, two.assignment.labels);
  EXPECT_EQ(one.segments.centroids.values(), two.segments.centroids.values());
  EXPECT_TRUE(one.segments.tree.merges.empty());
  EXPECT_LE(one.segments.n_clusters, 10);
  // Most subclusters sit nearest their segment's centroid (Lloyd stopped at its tolerance).
  const Matrix<double> cent = birch_subcluster_centroids(one.state);
  i64 agree = 0;
  for (i64 j = 0; j < one.state.n_subclusters; ++j) {
    int best = 0;
    double bd = std::numeric_limits<double>::infinity();
    for (int l = 0; l < one.segments.n_clusters; ++l) {
      double s = 0.0;
      for (i64 k = 0; k < c.d; ++k) s += std::pow(cent(j, k) - one.segments.centroids(l, k), 2);
      if (s < bd) bd = s, best = l;
    }
    agree += best == one.segments.subcluster_labels[j];
  }
  EXPECT_GE(agree, 0.99 * one.state.n_subclusters);
  for (i64 i = 0; i < c.n; ++i)
    ASSERT_EQ(one.assignment.labels[i], one.segments.subcluster_labels[one.assignment.subclusters[i]]);
}

TEST(Birch, PredictOnNewRows) {
  const Case c = load("blobs_2000x4");
  BirchParams p = params_of(c);
  p.n_clusters = 4;
  auto backend = make_cpu_backend(2);
  BirchState s = make_birch_state(p);
  partial_fit_birch(*backend, s, *backend->upload(slice(c.x, 0, 1500).view()));
  const BirchSegments seg = birch_global_step(*backend, s, p);
  const Matrix<float> rest = slice(c.x, 1500, 2000);
  const BirchAssignment a = predict_birch(*backend, s, seg, *backend->upload(rest.view()));
  // The nearest subcluster by a naive double-precision search (ties: lower index).
  const Matrix<double> cent = birch_subcluster_centroids(s);
  i64 differ = 0;
  for (i64 i = 0; i < rest.rows(); ++i) {
    i64 best = 0;
    double bd = std::numeric_limits<double>::infinity(), mine = 0.0;
    for (i64 j = 0; j < s.n_subclusters; ++j) {
      double v = 0.0;
      for (i64 k = 0; k < c.d; ++k) v += std::pow(double(rest(i, k)) - cent(j, k), 2);
      if (v < bd) bd = v, best = j;
      if (j == a.subclusters[i]) mine = v;
    }
    if (best != a.subclusters[i]) {
      ++differ;
      EXPECT_LE(mine - bd, 1e-5 * (1 + bd)) << "row " << i;
    }
    EXPECT_NEAR(a.sq_distances[i], bd, 1e-4 * (1 + bd));
    EXPECT_EQ(a.labels[i], seg.subcluster_labels[a.subclusters[i]]);
  }
  EXPECT_LE(differ, 2);
}

// ---- bad input --------------------------------------------------------------------------------------------

struct BadParams {
  const char* what;
  std::function<void(BirchParams&)> mutate;
  const char* message;
};

class BadBirchParams : public ::testing::TestWithParam<BadParams> {};

TEST_P(BadBirchParams, IsAnInputError) {
  const BadParams& b = GetParam();
  const Matrix<float> x(5, 2, std::vector<float>{0, 0, 2, 0, 0, 3, 4, 4, 7, 1});  // no two within reach
  BirchParams p;
  b.mutate(p);
  try {
    fit(x, p);
    ADD_FAILURE() << b.what << ": no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(b.message), std::string::npos) << b.what << ": " << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadBirchParams,
    ::testing::Values(
        BadParams{"ZeroThreshold", [](BirchParams& p) { p.threshold = 0.0; }, "threshold=0 should be a finite radius > 0"},
        BadParams{"NegativeThreshold", [](BirchParams& p) { p.threshold = -1.0; }, "threshold=-1 should be"},
        BadParams{"NanThreshold", [](BirchParams& p) { p.threshold = std::nan(""); }, "threshold=nan should be"},
        BadParams{"InfThreshold", [](BirchParams& p) { p.threshold = std::numeric_limits<double>::infinity(); }, "threshold=inf"},
        BadParams{"BranchingFactor1", [](BirchParams& p) { p.branching_factor = 1; }, "branching_factor=1 should be between 2 and 65536"},
        BadParams{"HugeBranchingFactor", [](BirchParams& p) { p.branching_factor = 1 << 20; }, "branching_factor=1048576 should be"},
        BadParams{"NegativeK", [](BirchParams& p) { p.n_clusters = -1; }, "n_clusters=-1 should be >= 1, or 0"},
        BadParams{"KAboveSubclusters", [](BirchParams& p) { p.n_clusters = 6; }, "n_clusters=6 exceeds the 5 subclusters"},
        BadParams{"NegativeBudget", [](BirchParams& p) { p.max_subclusters = -1; }, "max_subclusters=-1 should be >= 1, or 0"},
        BadParams{"NoKMeansRuns", [](BirchParams& p) { p.kmeans_n_init = 0; }, "kmeans_n_init=0"},
        BadParams{"NoKMeansIterations", [](BirchParams& p) { p.kmeans_max_iter = 0; }, "kmeans_max_iter=0"}),
    [](const ::testing::TestParamInfo<BadParams>& info) { return std::string(info.param.what); });

void expect_error(const std::function<void()>& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "no error, expected '" << message << "'";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
  }
}

TEST(Birch, BadDataIsAnInputError) {
  Matrix<float> x(5, 2, std::vector<float>{0, 0, 2, 0, 0, 3, 4, 4, 7, 1});
  const BirchParams p;
  Matrix<float> nan = x;
  nan(3, 1) = std::nanf("");
  expect_error([&] { fit(nan, p); }, "row 3 column 1 is nan; clean the data or drop the row");
  Matrix<float> inf = x;
  inf(4, 0) = -std::numeric_limits<float>::infinity();
  expect_error([&] { fit(inf, p); }, "row 4 column 0 is -inf");
  expect_error([&] { fit(x, p, {1, 1, -1, 1, 1}); }, "row 2 has weight -1; weights must be finite and >= 0");
  expect_error([&] { fit(x, p, {1, 1, std::nanf(""), 1, 1}); }, "row 2 has weight nan");
  expect_error([&] { fit(x, p, {1, 1, 1}); }, "3 weights for 5 rows");
  expect_error([&] { fit(x, p, {0, 0, 0, 0, 0}); }, "every row has weight 0");
  auto backend = make_cpu_backend(1);
  const std::vector<float> w(5, 2.0f);
  auto weighted = backend->upload(x.view(), w);
  BirchState s = make_birch_state(p);
  expect_error([&] { partial_fit_birch(*backend, s, *weighted); }, "the dataset has sample weights but none were passed");
  partial_fit_birch(*backend, s, *backend->upload(x.view()));
  const Matrix<float> three(2, 3, 1.0f);
  expect_error([&] { partial_fit_birch(*backend, s, *backend->upload(three.view())); },
               "the data has 3 features but the BIRCH tree was built on 2");
  const BirchSegments seg = birch_global_step(*backend, s, p);
  expect_error([&] { predict_birch(*backend, s, seg, *backend->upload(three.view())); }, "the data has 3 features");
  BirchSegments short_seg = seg;
  short_seg.subcluster_labels.pop_back();
  expect_error([&] { predict_birch(*backend, s, short_seg, *backend->upload(x.view())); }, "segment labels for 5 subclusters");
  expect_error([&] { birch_global_step(*backend, make_birch_state(p), p); }, "the tree holds no subclusters");
  expect_error([&] { fit(Matrix<float>(0, 2), p); }, "0 rows; nothing to cluster");
  expect_error([&] { parse_birch_global("median"); }, "unknown BIRCH global step 'median'; use ward or kmeans");
  EXPECT_EQ(parse_birch_global("KMeans"), BirchGlobal::kmeans);
  EXPECT_EQ(birch_global_name(parse_birch_global("ward")), "ward");
}

TEST(Birch, DamagedStatesAreInputErrors) {
  const Case c = load("gauss_1500x2_b3");
  const BirchState good = fit(c.x, params_of(c)).state;
  ASSERT_GT(good.n_nodes(), 3);
  EXPECT_NO_THROW(validate(good, "model.h5:/birch"));
  EXPECT_NO_THROW(validate(make_birch_state(BirchParams{}), "empty"));
  struct Damage {
    std::function<void(BirchState&)> mutate;
    const char* message;
  };
  const std::vector<Damage> damages = {
      {[](BirchState& s) { s.threshold = 0.0; }, "threshold=0"},
      {[](BirchState& s) { s.branching_factor = 2; }, "entries, not 1 to branching_factor=2"},
      {[](BirchState& s) { s.weight[3] = -1.0; }, "entry 3 has weight -1"},
      {[](BirchState& s) { s.sq_deviation[2] = std::nan(""); }, "entry 2 has sq_deviation nan"},
      {[](BirchState& s) { s.mean(1, 1) = std::numeric_limits<double>::infinity(); }, "entry 1 has a non-finite mean"},
      {[](BirchState& s) { s.child.back() = 100000; }, "has child 100000"},
      {[](BirchState& s) { s.child.back() = s.child[s.child.size() - 2]; }, "entries, not 1"},
      {[](BirchState& s) { s.root = 0; }, "the root (node 0) is below an entry"},
      {[](BirchState& s) { s.node_start.back() -= 1; }, "node_start does not span the entries"},
      {[](BirchState& s) { s.origin.pop_back(); }, "1 origin values for 2 features"},
      {[](BirchState& s) { s.sq_deviation.pop_back(); }, "differ in length"},
      {[](BirchState& s) { s.n_subclusters += 1; }, "mixes subclusters and internal entries"},
      {[](BirchState& s) { s.weight[s.n_subclusters] *= 2; }, "but its child node holds"},
  };
  for (const Damage& dmg : damages) {
    BirchState s = good;
    dmg.mutate(s);
    expect_error([&] { validate(s, "model.h5:/birch"); }, dmg.message);
  }
  // partial_fit checks the state it is given.
  BirchState s = good;
  s.weight[0] = 0.0;
  auto backend = make_cpu_backend(1);
  expect_error([&] { partial_fit_birch(*backend, s, *backend->upload(c.x.view())); }, "the saved tree is damaged");
}


// ---- the command line: fit --algorithm birch, --continue-from, predict, stability, refusals -------

class BirchCli : public test::TempDirTest {
 protected:
  int segforge(const std::string& args, std::string* out = nullptr) const {
    return shell(std::string(SEGFORGE_BINARY) + " " + args + " --device cpu", out);
  }
  std::vector<int> segments(const std::string& file) const {
    std::ifstream in(path(file));
    std::string line;
    std::getline(in, line);
    std::vector<int> rows;
    while (std::getline(in, line)) {
      const auto a = line.find(','), b = line.find(',', a + 1);
      rows.push_back(std::stoi(line.substr(a + 1, b - a - 1)));
    }
    return rows;
  }
};

// The model's tree is the library's (tested against scikit-learn above) and its subclusters are
// the leaves of /hierarchy; segments.csv is every row's nearest subcluster's segment, and predict
// gives it back. Continuing a model with the second half of the rows gives the tree of one fit
// over all of them, bit for bit.
TEST_F(BirchCli, FitContinueFromAndPredict) {
  std::mt19937 gen(21);
  const Matrix<float> x = test::random_blobs(gen, 2000, 4, 5, 8.0);
  write_features(path("all.h5"), x.view(), {"a", "b", "c", "d"});
  write_features(path("first.h5"), slice(x, 0, 1200).view(), {"a", "b", "c", "d"});
  write_features(path("second.h5"), slice(x, 1200, 2000).view(), {"a", "b", "c", "d"});
  std::string out;
  const std::string opts = " --algorithm birch -k 5 --threshold 0.8 --branching-factor 20";
  ASSERT_EQ(segforge("fit " + path("all.h5") + opts + " -o " + path("all_model.h5") + " --labels " + path("all.csv"), &out), 0) << out;
  const Model all = read_model(path("all_model.h5"));
  ASSERT_TRUE(all.birch && all.is_hierarchy());
  BirchParams p;
  p.threshold = 0.8;
  p.branching_factor = 20;
  p.n_clusters = 5;
  p.max_subclusters = 10000;
  const BirchResult lib = fit(x, p);
  expect_same_state(*all.birch, lib.state, "the model's tree");
  const Matrix<double> centres = birch_subcluster_centroids(lib.state);
  ASSERT_EQ(all.hierarchy_leaves.rows(), centres.rows());
  for (i64 i = 0; i < centres.size(); ++i) ASSERT_EQ(all.hierarchy_leaves.data()[i], static_cast<float>(centres.data()[i])) << i;
  EXPECT_EQ(all.hierarchy_leaf_labels, lib.segments.subcluster_labels);
  EXPECT_EQ(all.hierarchy_merges.rows(), centres.rows() - 1);  // Ward's tree over the subclusters
  ASSERT_EQ(segforge("predict " + path("all_model.h5") + " " + path("all.h5") + " -o " + path("again.csv"), &out), 0) << out;
  EXPECT_EQ(segments("again.csv"), segments("all.csv"));
  // Two files, the second continuing the first's tree.
  ASSERT_EQ(segforge("fit " + path("first.h5") + opts + " -o " + path("first_model.h5"), &out), 0) << out;
  ASSERT_EQ(segforge("fit " + path("second.h5") + opts + " --continue-from " + path("first_model.h5") + " -o " +
                         path("both_model.h5") + " --labels " + path("second.csv"),
                     &out),
            0)
      << out;
  const Model both = read_model(path("both_model.h5"));
  ASSERT_TRUE(both.birch);
  expect_same_state(*both.birch, *all.birch, "continued");
  EXPECT_EQ(both.birch->n_rows_seen, 2000);
  EXPECT_EQ(both.hierarchy_leaf_labels, all.hierarchy_leaf_labels);
  const std::vector<int> second = segments("second.csv"), whole = segments("all.csv");
  ASSERT_EQ(second.size(), 800u);
  for (std::size_t i = 0; i < second.size(); ++i) ASSERT_EQ(second[i], whole[1200 + i]) << i;
  // Stability of BIRCH on these separated blobs.
  ASSERT_EQ(segforge("stability " + path("all.h5") + " --algorithm birch -k 5 --threshold 0.8 --runs 3 -o " + path("st.json"), &out), 0)
      << out;
  nlohmann::json st;
  std::ifstream(path("st.json")) >> st;
  EXPECT_EQ(st.at("algorithm"), "birch");
  EXPECT_TRUE(st.at("stable").get<bool>()) << out;
}

TEST_F(BirchCli, BadInputIsOneLineExitTwoNothingWritten) {
  std::mt19937 gen(22);
  const Matrix<float> x = test::random_blobs(gen, 300, 2, 3, 8.0);
  write_features(path("f.h5"), x.view(), {"a", "b"});
  write_features(path("other.h5"), x.view(), {"a", "z"});
  std::string out;
  ASSERT_EQ(segforge("fit " + path("f.h5") + " -k 3 -o " + path("kmeans.h5"), &out), 0) << out;
  ASSERT_EQ(segforge("fit " + path("f.h5") + " --algorithm birch -k 3 -o " + path("birch.h5"), &out), 0) << out;
  const std::pair<std::string, std::string> cases[] = {
      {"", "pass -k K"},
      {"-k 3 --threshold 0", "threshold"},
      {"-k 3 --branching-factor 1", "branching_factor"},
      {"-k 3 --global median", "median"},
      {"-k 100000", "fewer than -k"},
      {"-k 3 --continue-from " + path("kmeans.h5"), "not a BIRCH model"},
      {"-k 3 --init random", "K-Means options"},
  };
  for (const auto& [args, message] : cases) {
    EXPECT_EQ(segforge("fit " + path("f.h5") + " --algorithm birch " + args + " -o " + path("m.h5"), &out), 2) << args << "\n" << out;
    EXPECT_NE(out.find(message), std::string::npos) << args << "\n" << out;
    EXPECT_FALSE(fs::exists(path("m.h5"))) << args;
  }
  EXPECT_EQ(segforge("fit " + path("other.h5") + " --algorithm birch -k 3 --continue-from " + path("birch.h5") + " -o " + path("m.h5"), &out), 2)
      << out;
  EXPECT_NE(out.find("features differ"), std::string::npos) << out;
  // A damaged tree is refused when continued, naming the file.
  ASSERT_EQ(test::run_shell("/usr/bin/python3 -c \"import h5py; f = h5py.File('" + path("birch.h5") +
                                "', 'r+'); w = f['birch/weight']; v = w[...]; v[0] = -1; w[...] = v\"",
                            fs::path(path("log.txt"))),
            0);
  EXPECT_EQ(segforge("fit " + path("f.h5") + " --algorithm birch -k 3 --continue-from " + path("birch.h5") + " -o " + path("m.h5"), &out), 2)
      << out;
  EXPECT_NE(out.find("damaged"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(path("m.h5")));
}

}  // namespace
}  // namespace segforge
