// Agglomerative clustering against SciPy (scripts/make_agglomerative_fixtures.py, run at test
// time): the linkage matrix of ward, complete, average and single linkage — same merge order, same
// child ids, same sizes, heights within 1e-9 relative (complete, average and single: equal) — and
// its cuts against fcluster, up to the cluster numbers; a hand-computed toy; weights ≡ repetition
// (against SciPy on the repeated rows and against segforge's own unweighted tree); the two-stage
// path against an independent O(M³) size-weighted Ward on the same micro-clusters; bad input.

#include <gtest/gtest.h>

#include <cmath>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "segforge/agglomerative.hpp"
#include "segforge/backend.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "test_support.hpp"

namespace segforge {
namespace {

namespace fs = std::filesystem;
using i64 = std::int64_t;
using nlohmann::json;

fs::path make_fixtures() {
  const fs::path d = fs::temp_directory_path() / ("segforge_agglomerative_" + std::to_string(::getpid()));
  fs::create_directories(d);
  const std::string cmd = "/usr/bin/python3 " + std::string(SEGFORGE_FIXTURES) +
                          "/../../scripts/make_agglomerative_fixtures.py '" + d.string() + "' '" +
                          test::datasets_dir().string() + "'";
  std::string out;
  if (test::run_shell(cmd, d / "log.txt", &out) != 0) throw std::runtime_error("make_agglomerative_fixtures.py failed: " + out);
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
  Matrix<double> x;
  std::vector<double> weights;
  json doc;
};

Case load(const std::string& name) {
  std::ifstream in(fixtures() / (name + ".json"));
  Case c;
  c.doc = json::parse(in);
  c.n = c.doc["n"].get<i64>();
  c.d = c.doc["d"].get<i64>();
  c.x = Matrix<double>(c.n, c.d, c.doc["x"].get<std::vector<double>>());
  if (!c.doc["weights"].is_null()) c.weights = c.doc["weights"].get<std::vector<double>>();
  return c;
}

Matrix<float> as_float(const Matrix<double>& x) {
  Matrix<float> f(x.rows(), x.cols());
  for (i64 i = 0; i < x.size(); ++i) f.data()[i] = static_cast<float>(x.data()[i]);
  return f;
}

Matrix<double> as_double(const Matrix<float>& x) {
  Matrix<double> f(x.rows(), x.cols());
  for (i64 i = 0; i < x.size(); ++i) f.data()[i] = x.data()[i];
  return f;
}

double rel(double a, double b) { return std::abs(a - b) / std::max({std::abs(a), std::abs(b), 1e-300}); }

/// The tree against a linkage matrix [(n−1) x 4] row-major: same children, sizes, and heights
/// equal (exact) or within 1e-9 relative — equal anyway where both children are leaves and
/// `leaf_pairs_exact` (unweighted Ward: SciPy's pdist values). Returns the largest relative
/// height difference.
double expect_same_tree(const LinkageTree& tree, const std::vector<double>& z, const std::string& what, bool exact,
                        bool leaf_pairs_exact = false) {
  const i64 n = tree.n_leaves;
  EXPECT_EQ(static_cast<i64>(tree.merges.size()), std::max<i64>(n - 1, 0)) << what;
  EXPECT_EQ(static_cast<i64>(z.size()), 4 * std::max<i64>(n - 1, 0)) << what;
  double worst = 0.0;
  for (i64 i = 0; i < n - 1; ++i) {
    const Merge& m = tree.merges[static_cast<std::size_t>(i)];
    const double* r = z.data() + 4 * i;
    const bool same = m.a == static_cast<i64>(r[0]) && m.b == static_cast<i64>(r[1]) && m.size == r[3];
    const double e = rel(m.height, r[2]);
    worst = std::max(worst, e);
    const bool must_equal = exact || (leaf_pairs_exact && m.b < n);
    if (!same || (must_equal ? m.height != r[2] : e > 1e-9)) {
      ADD_FAILURE() << what << ": merge " << i << " of " << n - 1 << " is (" << m.a << ", " << m.b << ", " << m.height << ", "
                    << m.size << "), SciPy's (" << r[0] << ", " << r[1] << ", " << r[2] << ", " << r[3] << ")";
      return worst;
    }
  }
  return worst;
}

/// Same partition up to the cluster numbers (a bijection between the labels).
bool same_partition(const std::vector<std::int32_t>& ours, const std::vector<int>& theirs) {
  if (ours.size() != theirs.size()) return false;
  std::map<int, int> to, from;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    auto [a, new_a] = to.emplace(ours[i], theirs[i]);
    auto [b, new_b] = from.emplace(theirs[i], ours[i]);
    if (a->second != theirs[i] || b->second != ours[i]) return false;
  }
  return true;
}

/// Clusters numbered by their lowest index: each label is at most one above the largest before it.
bool numbered_by_first(const std::vector<std::int32_t>& labels) {
  std::int32_t top = -1;
  for (std::int32_t l : labels) {
    if (l > top + 1) return false;
    top = std::max(top, l);
  }
  return true;
}

std::vector<double> flat(const LinkageTree& t) {
  std::vector<double> z;
  for (const Merge& m : t.merges) z.insert(z.end(), {double(m.a), double(m.b), m.height, m.size});
  return z;
}

// ---- against SciPy --------------------------------------------------------------------------------

struct ScipyCase {
  const char* name;
  Linkage linkage;
};

void PrintTo(const ScipyCase& c, std::ostream* os) { *os << c.name << "/" << linkage_name(c.linkage); }

class AgainstScipy : public ::testing::TestWithParam<ScipyCase> {};

TEST_P(AgainstScipy, LinkageMatrixAndCuts) {
  const ScipyCase p = GetParam();
  if (!fs::exists(fixtures() / (std::string(p.name) + ".json"))) GTEST_SKIP() << "dataset absent for " << p.name << " (set SEGFORGE_DATASETS)";
  const Case c = load(p.name);
  const std::string method = linkage_name(p.linkage);
  const json& m = c.doc["methods"][method];
  const auto t0 = std::chrono::steady_clock::now();
  const LinkageTree tree = linkage_tree(c.x.view(), {}, p.linkage);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string what = std::string(p.name) + "/" + method;
  EXPECT_EQ(tree.n_leaves, c.n);
  const double worst = expect_same_tree(tree, m["Z"].get<std::vector<double>>(), what, p.linkage != Linkage::ward, true);
  int n_cuts = 0;
  for (const json& k : m["cuts_k"]) {
    const TreeCut cut = cut_by_count(tree, k[0].get<i64>());
    EXPECT_EQ(cut.n_clusters, k[0].get<int>()) << what;
    EXPECT_TRUE(same_partition(cut.labels, k[1].get<std::vector<int>>())) << what << ": cut into " << k[0] << " differs from fcluster";
    EXPECT_TRUE(numbered_by_first(cut.labels)) << what;
    ++n_cuts;
  }
  for (const json& h : m["cuts_h"]) {
    const TreeCut cut = cut_by_height(tree, h[0].get<double>());
    EXPECT_TRUE(same_partition(cut.labels, h[1].get<std::vector<int>>())) << what << ": cut at " << h[0] << " differs from fcluster";
    EXPECT_TRUE(numbered_by_first(cut.labels)) << what;
    ++n_cuts;
  }
  std::cout << "  [agglomerative] " << what << ": " << c.n << " x " << c.d << ", " << tree.merges.size()
            << " merges, largest height difference " << worst << " relative, " << n_cuts << " cuts, " << seconds << " s\n";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AgainstScipy,
    ::testing::Values(ScipyCase{"n2", Linkage::ward}, ScipyCase{"n2", Linkage::complete}, ScipyCase{"n2", Linkage::average},
                      ScipyCase{"n2", Linkage::single}, ScipyCase{"n3", Linkage::ward}, ScipyCase{"n3", Linkage::complete},
                      ScipyCase{"n3", Linkage::average}, ScipyCase{"n3", Linkage::single}, ScipyCase{"tiny", Linkage::ward},
                      ScipyCase{"tiny", Linkage::complete}, ScipyCase{"tiny", Linkage::average}, ScipyCase{"tiny", Linkage::single},
                      ScipyCase{"gauss_200x5", Linkage::ward}, ScipyCase{"gauss_200x5", Linkage::complete},
                      ScipyCase{"gauss_200x5", Linkage::average}, ScipyCase{"gauss_200x5", Linkage::single},
                      ScipyCase{"blobs_1000x8", Linkage::ward}, ScipyCase{"blobs_1000x8", Linkage::complete},
                      ScipyCase{"blobs_1000x8", Linkage::average}, ScipyCase{"blobs_1000x8", Linkage::single},
                      ScipyCase{"duplicates", Linkage::ward}, ScipyCase{"duplicates", Linkage::complete},
                      ScipyCase{"duplicates", Linkage::average}, ScipyCase{"duplicates", Linkage::single},
                      ScipyCase{"lattice", Linkage::complete}, ScipyCase{"lattice", Linkage::average},
                      ScipyCase{"lattice", Linkage::single}, ScipyCase{"gauss_4000x16", Linkage::ward},
                      ScipyCase{"s1", Linkage::ward}, ScipyCase{"s1", Linkage::complete}, ScipyCase{"s1", Linkage::average},
                      ScipyCase{"s1", Linkage::single}, ScipyCase{"mall", Linkage::ward}, ScipyCase{"mall", Linkage::complete},
                      ScipyCase{"mall", Linkage::average}, ScipyCase{"mall", Linkage::single}),
    [](const ::testing::TestParamInfo<ScipyCase>& info) { return std::string(info.param.name) + "_" + linkage_name(info.param.linkage); });

// ---- a toy computed by hand -------------------------------------------------------------------------

TEST(Agglomerative, HandComputedToy) {
  // Points 0, 1, 3, 7 on a line. Ward: d({0,1}, 3) = sqrt(2·2·1/3)·2.5, d({0,1,3}, 7) = sqrt(2·3·1/4)·(7 − 4/3).
  const Matrix<double> x(4, 1, std::vector<double>{0, 1, 3, 7});
  struct Expected {
    Linkage linkage;
    std::vector<double> z;
  };
  const std::vector<Expected> cases = {
      {Linkage::ward, {0, 1, 1, 2, 2, 4, std::sqrt(4.0 / 3.0) * 2.5, 3, 3, 5, std::sqrt(1.5) * (7 - 4.0 / 3.0), 4}},
      {Linkage::complete, {0, 1, 1, 2, 2, 4, 3, 3, 3, 5, 7, 4}},
      {Linkage::average, {0, 1, 1, 2, 2, 4, 2.5, 3, 3, 5, 17.0 / 3.0, 4}},
      {Linkage::single, {0, 1, 1, 2, 2, 4, 2, 3, 3, 5, 4, 4}},
  };
  for (const Expected& e : cases) expect_same_tree(linkage_tree(x.view(), {}, e.linkage), e.z, linkage_name(e.linkage), false);
  // Cuts: K = 2 undoes the last merge; a height equal to a merge's keeps it.
  const LinkageTree single = linkage_tree(x.view(), {}, Linkage::single);
  EXPECT_EQ(cut_by_count(single, 2).labels, (std::vector<std::int32_t>{0, 0, 0, 1}));
  EXPECT_EQ(cut_by_height(single, 2.0).labels, (std::vector<std::int32_t>{0, 0, 0, 1}));
  EXPECT_EQ(cut_by_height(single, 1.999).labels, (std::vector<std::int32_t>{0, 0, 1, 2}));
  EXPECT_EQ(cut_by_count(single, 4).labels, (std::vector<std::int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(cut_by_count(single, 1).labels, (std::vector<std::int32_t>{0, 0, 0, 0}));
  // Numbered by the lowest row: the far point first.
  const Matrix<double> y(4, 1, std::vector<double>{7, 0, 1, 3});
  EXPECT_EQ(cut_by_count(linkage_tree(y.view(), {}, Linkage::single), 2).labels, (std::vector<std::int32_t>{0, 1, 1, 1}));
  // One row: no merge, one cluster.
  const Matrix<double> one(1, 3, 1.0);
  const LinkageTree t1 = linkage_tree(one.view(), {}, Linkage::ward);
  EXPECT_TRUE(t1.merges.empty());
  EXPECT_EQ(cut_by_count(t1, 1).labels, (std::vector<std::int32_t>{0}));
}

TEST(Agglomerative, LinkageNames) {
  for (Linkage l : {Linkage::ward, Linkage::complete, Linkage::average, Linkage::single}) EXPECT_EQ(parse_linkage(linkage_name(l)), l);
  EXPECT_EQ(parse_linkage("Ward"), Linkage::ward);
}

// ---- weights ≡ repetition ---------------------------------------------------------------------------

/// A weighted tree against the tree of the rows repeated weights[i] times (np.repeat order):
/// the repeated tree first merges the copies of each row at height 0 (Σ (w_i − 1) merges), and
/// its later merges are the weighted tree's, with the copies of row i standing for leaf i.
void expect_repetition(const LinkageTree& weighted, const std::vector<double>& z_rep, const std::vector<double>& weights,
                       const std::string& what) {
  const i64 n = weighted.n_leaves;
  std::vector<i64> owner;
  for (i64 i = 0; i < n; ++i)
    for (int t = 0; t < static_cast<int>(weights[static_cast<std::size_t>(i)]); ++t) owner.push_back(i);
  const i64 nr = static_cast<i64>(owner.size());
  ASSERT_EQ(static_cast<i64>(z_rep.size()), 4 * (nr - 1)) << what;
  const i64 copies = nr - n;
  std::vector<i64> group(static_cast<std::size_t>(2 * nr - 1), -1);  // repeated id -> original leaf (copies)
  for (i64 j = 0; j < nr; ++j) group[static_cast<std::size_t>(j)] = owner[static_cast<std::size_t>(j)];
  std::map<i64, i64> to_weighted;  // repeated id -> weighted id
  for (i64 k = 0; k < copies; ++k) {
    const double* r = z_rep.data() + 4 * k;
    ASSERT_EQ(r[2], 0.0) << what << ": repeated merge " << k << " should join copies";
    const i64 ga = group[static_cast<std::size_t>(r[0])], gb = group[static_cast<std::size_t>(r[1])];
    ASSERT_TRUE(ga >= 0 && ga == gb) << what << ": repeated merge " << k << " joins copies of different rows";
    group[static_cast<std::size_t>(nr + k)] = ga;
  }
  // Each row's copies end in one cluster: the last id holding them.
  for (i64 id = 0; id < nr + copies; ++id)
    if (group[static_cast<std::size_t>(id)] >= 0) to_weighted[id] = group[static_cast<std::size_t>(id)];
  for (i64 k = copies; k < nr - 1; ++k) {
    const double* r = z_rep.data() + 4 * k;
    const Merge& m = weighted.merges[static_cast<std::size_t>(k - copies)];
    const i64 a = to_weighted.at(static_cast<i64>(r[0])), b = to_weighted.at(static_cast<i64>(r[1]));
    EXPECT_EQ(std::min(a, b), m.a) << what << " merge " << k - copies;
    EXPECT_EQ(std::max(a, b), m.b) << what << " merge " << k - copies;
    EXPECT_LE(rel(m.height, r[2]), 1e-9) << what << " merge " << k - copies << ": " << m.height << " vs " << r[2];
    EXPECT_EQ(m.size, r[3]) << what << " merge " << k - copies;
    to_weighted[nr + k] = n + (k - copies);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(Agglomerative, IntegerWeightsAreRepetitionAsInScipy) {
  const Case c = load("weighted");
  for (Linkage l : {Linkage::ward, Linkage::complete, Linkage::average, Linkage::single}) {
    const LinkageTree t = linkage_tree(c.x.view(), c.weights, l);
    expect_repetition(t, c.doc["repeated"]["Z"][linkage_name(l)].get<std::vector<double>>(), c.weights,
                      "weighted/" + linkage_name(l));
  }
}

TEST(Agglomerative, IntegerWeightsAreRepetitionForWardOnBlobs) {
  // segforge against itself on more rows: the weighted tree vs the unweighted tree of the copies.
  const Case c = load("blobs_1000x8");
  std::mt19937 gen(5);
  std::vector<double> w(static_cast<std::size_t>(c.n));
  for (double& v : w) v = static_cast<double>(1 + gen() % 5);
  std::vector<double> values;
  for (i64 i = 0; i < c.n; ++i)
    for (int t = 0; t < static_cast<int>(w[static_cast<std::size_t>(i)]); ++t) values.insert(values.end(), c.x.row(i), c.x.row(i) + c.d);
  const Matrix<double> rep(static_cast<i64>(values.size()) / c.d, c.d, values);
  expect_repetition(linkage_tree(c.x.view(), w, Linkage::ward), flat(linkage_tree(rep.view(), {}, Linkage::ward)), w, "blobs/ward");
}

TEST(Agglomerative, UnitWeightsAreNoWeights) {
  const Case c = load("gauss_200x5");
  const std::vector<double> ones(static_cast<std::size_t>(c.n), 1.0);
  for (Linkage l : {Linkage::ward, Linkage::complete, Linkage::average, Linkage::single})
    EXPECT_EQ(flat(linkage_tree(c.x.view(), ones, l)), flat(linkage_tree(c.x.view(), {}, l))) << linkage_name(l);
}

// ---- the two-stage path -------------------------------------------------------------------------------

/// Size-weighted Ward by the O(M³) textbook algorithm (the "primitive" algorithm of Müllner 2011,
/// Fig. 1; SciPy's _hierarchy.linkage): a full matrix of Ward distances updated by Lance–Williams
/// with the sizes, the globally closest pair merged each step. Independent of the chain and of
/// the centroid formula. Returns [(M−1) x 4] in merge order with SciPy's ids.
std::vector<double> brute_force_weighted_ward(const Matrix<double>& c, const std::vector<double>& w) {
  const i64 m = c.rows();
  std::vector<double> dist(static_cast<std::size_t>(m * m), 0.0);
  for (i64 i = 0; i < m; ++i)
    for (i64 j = 0; j < m; ++j) {
      double s = 0.0;
      for (i64 k = 0; k < c.cols(); ++k) s += (c(i, k) - c(j, k)) * (c(i, k) - c(j, k));
      dist[static_cast<std::size_t>(i * m + j)] = std::sqrt(2.0 * w[i] * w[j] / (w[i] + w[j]) * s);
    }
  std::vector<double> size = w;
  std::vector<i64> id(static_cast<std::size_t>(m));
  std::iota(id.begin(), id.end(), i64{0});
  std::vector<bool> alive(static_cast<std::size_t>(m), true);
  std::vector<double> z;
  for (i64 step = 0; step < m - 1; ++step) {
    double best = std::numeric_limits<double>::infinity();
    i64 bx = -1, by = -1;
    for (i64 i = 0; i < m; ++i)
      for (i64 j = i + 1; j < m; ++j)
        if (alive[i] && alive[j] && dist[i * m + j] < best) best = dist[i * m + j], bx = i, by = j;
    const double nx = size[bx], ny = size[by];
    z.insert(z.end(), {double(std::min(id[bx], id[by])), double(std::max(id[bx], id[by])), best, nx + ny});
    alive[bx] = false;
    id[by] = m + step;
    size[by] = nx + ny;
    for (i64 i = 0; i < m; ++i) {
      if (!alive[i] || i == by) continue;
      const double ni = size[i], dxi = dist[i * m + bx], dyi = dist[i * m + by], t = nx + ny + ni;
      const double v = std::sqrt(((ni + nx) * dxi * dxi + (ni + ny) * dyi * dyi - ni * best * best) / t);
      dist[i * m + by] = dist[by * m + i] = v;
    }
  }
  return z;
}

void check_two_stage(const Matrix<float>& x, const std::vector<float>& weights, const AgglomerativeResult& r, int k) {
  const i64 n = x.rows(), d = x.cols(), leaves = r.tree.n_leaves;
  ASSERT_TRUE(r.two_stage);
  ASSERT_EQ(static_cast<i64>(r.micro_labels.size()), n);
  ASSERT_EQ(r.micro_centroids.rows(), leaves);
  // Micro-clusters: the exact means and weights of their rows, none empty.
  Matrix<double> sums(leaves, d, 0.0);
  std::vector<double> w(static_cast<std::size_t>(leaves), 0.0);
  for (i64 i = 0; i < n; ++i) {
    const std::int32_t l = r.micro_labels[static_cast<std::size_t>(i)];
    ASSERT_TRUE(l >= 0 && l < leaves);
    const double wi = weights.empty() ? 1.0 : weights[static_cast<std::size_t>(i)];
    w[static_cast<std::size_t>(l)] += wi;
    for (i64 j = 0; j < d; ++j) sums(l, j) += wi * x(i, j);
  }
  for (i64 l = 0; l < leaves; ++l) {
    ASSERT_GT(w[l], 0.0);
    EXPECT_NEAR(r.micro_sizes[l], w[l], 1e-9 * w[l]);
    for (i64 j = 0; j < d; ++j) EXPECT_NEAR(r.micro_centroids(l, j), sums(l, j) / w[l], 1e-9 * (1.0 + std::abs(sums(l, j) / w[l])));
  }
  // The tree: the brute-force size-weighted Ward on the same micro-clusters.
  const double worst = expect_same_tree(r.tree, brute_force_weighted_ward(r.micro_centroids, r.micro_sizes), "two-stage tree", false);
  // The cut: every row has its micro-cluster's cluster of the tree's K-cut, numbered by lowest row.
  const TreeCut cut = cut_by_count(r.tree, k);
  EXPECT_EQ(r.n_clusters, k);
  std::vector<std::int32_t> inherited(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i) inherited[i] = cut.labels[r.micro_labels[i]];
  EXPECT_TRUE(same_partition(r.labels, std::vector<int>(inherited.begin(), inherited.end())));
  EXPECT_TRUE(numbered_by_first(r.labels));
  std::cout << "  [agglomerative] two-stage: " << n << " rows -> " << leaves << " micro-clusters -> " << k
            << " clusters; tree vs brute force: largest height difference " << worst << " relative\n";
}

TEST(Agglomerative, TwoStageIsSizeWeightedWardOnTheMicroClusters) {
  const Case c = load("blobs_1000x8");
  const Matrix<float> x = as_float(c.x);
  auto backend = make_cpu_backend(2);
  auto data = backend->upload(x.view());
  AgglomerativeParams p;
  p.strategy = AgglomerativeStrategy::two_stage;
  p.n_micro_clusters = 150;
  p.n_clusters = 6;
  const AgglomerativeResult r = fit_agglomerative(*backend, *data, p);
  check_two_stage(x, {}, r, 6);
  // Cluster centroids and sizes: of the rows.
  std::vector<double> count(6, 0.0);
  for (std::int32_t l : r.labels) count[l] += 1.0;
  EXPECT_EQ(r.sizes, count);
  // The blobs are six: the two-stage cut recovers them as the exact tree's cut does.
  const TreeCut exact = cut_by_count(linkage_tree(c.x.view(), {}, Linkage::ward), 6);
  EXPECT_GT(test::adjusted_rand_index(r.labels, exact.labels), 0.99);
}

TEST(Agglomerative, TwoStageWithWeights) {
  const Case c = load("blobs_1000x8");
  const Matrix<float> x = as_float(c.x);
  std::vector<float> w(static_cast<std::size_t>(c.n));
  for (i64 i = 0; i < c.n; ++i) w[i] = 0.5f + static_cast<float>(i % 4);
  auto backend = make_cpu_backend(2);
  auto data = backend->upload(x.view(), w);
  AgglomerativeParams p;
  p.strategy = AgglomerativeStrategy::two_stage;
  p.n_micro_clusters = 120;
  p.n_clusters = 5;
  check_two_stage(x, w, fit_agglomerative(*backend, *data, p), 5);
}

TEST(Agglomerative, TwoStageSameBitsForOneAndTwoThreads) {
  const Case c = load("blobs_1000x8");
  const Matrix<float> x = as_float(c.x);
  AgglomerativeParams p;
  p.strategy = AgglomerativeStrategy::two_stage;
  p.n_micro_clusters = 100;
  p.n_clusters = 4;
  p.seed = 3;
  std::vector<AgglomerativeResult> r;
  for (int threads : {1, 2}) {
    auto backend = make_cpu_backend(threads);
    auto data = backend->upload(x.view());
    r.push_back(fit_agglomerative(*backend, *data, p));
  }
  EXPECT_EQ(flat(r[0].tree), flat(r[1].tree));
  EXPECT_EQ(r[0].micro_labels, r[1].micro_labels);
  EXPECT_EQ(r[0].labels, r[1].labels);
}

TEST(Agglomerative, DriverPicksExactOrTwoStageByRowCount) {
  const Case c = load("gauss_200x5");
  const Matrix<float> x = as_float(c.x);
  auto backend = make_cpu_backend(2);
  AgglomerativeParams p;
  p.n_clusters = 4;
  p.exact_max_samples = 200;
  {
    // Exact: the tree over the rows, as linkage_tree gives it, and its cut.
    auto data = backend->upload(x.view());
    const AgglomerativeResult r = fit_agglomerative(*backend, *data, p);
    EXPECT_FALSE(r.two_stage);
    EXPECT_TRUE(r.micro_labels.empty());
    EXPECT_EQ(flat(r.tree), flat(linkage_tree(c.x.view(), {}, Linkage::ward)));
    EXPECT_EQ(r.labels, cut_by_count(r.tree, 4).labels);
    EXPECT_EQ(r.n_clusters, 4);
    // By height instead: the same as cut_by_height.
    AgglomerativeParams h = p;
    h.distance_threshold = r.tree.merges[190].height;
    EXPECT_EQ(fit_agglomerative(*backend, *data, h).labels, cut_by_height(r.tree, *h.distance_threshold).labels);
    // Weighted rows: the weighted tree.
    std::vector<float> wf(static_cast<std::size_t>(c.n));
    std::vector<double> wd(wf.size());
    for (i64 i = 0; i < c.n; ++i) wf[i] = static_cast<float>(1 + i % 3), wd[i] = wf[i];
    auto weighted = backend->upload(x.view(), wf);
    for (Linkage l : {Linkage::ward, Linkage::average}) {
      AgglomerativeParams q = p;
      q.linkage = l;
      EXPECT_EQ(flat(fit_agglomerative(*backend, *weighted, q).tree), flat(linkage_tree(c.x.view(), wd, l))) << linkage_name(l);
    }
  }
  {
    // One row more than exact_max_samples: two-stage.
    p.exact_max_samples = 199;
    p.n_micro_clusters = 50;
    auto data = backend->upload(x.view());
    const AgglomerativeResult r = fit_agglomerative(*backend, *data, p);
    EXPECT_TRUE(r.two_stage);
    EXPECT_LE(r.tree.n_leaves, 50);
    check_two_stage(x, {}, r, 4);
  }
}

// ---- bad input ------------------------------------------------------------------------------------------

struct BadParams {
  const char* what;
  std::function<void(AgglomerativeParams&)> mutate;
  const char* message;
};

class BadAgglomerativeParams : public ::testing::TestWithParam<BadParams> {};

TEST_P(BadAgglomerativeParams, IsAnInputError) {
  const BadParams& b = GetParam();
  const Case c = load("gauss_200x5");
  const Matrix<float> x = as_float(c.x);
  auto backend = make_cpu_backend(2);
  auto data = backend->upload(x.view());
  AgglomerativeParams p;
  b.mutate(p);
  try {
    fit_agglomerative(*backend, *data, p);
    ADD_FAILURE() << b.what << ": no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(b.message), std::string::npos) << b.what << ": " << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadAgglomerativeParams,
    ::testing::Values(
        BadParams{"K0", [](AgglomerativeParams& p) { p.n_clusters = 0; }, "n_clusters=0 should be between 1 and n_samples=200"},
        BadParams{"KAboveN", [](AgglomerativeParams& p) { p.n_clusters = 201; }, "n_clusters=201 should be between 1 and n_samples=200"},
        BadParams{"NegativeThreshold", [](AgglomerativeParams& p) { p.distance_threshold = -1.0; }, "distance_threshold=-1"},
        BadParams{"NanThreshold", [](AgglomerativeParams& p) { p.distance_threshold = std::nan(""); }, "distance_threshold=nan"},
        BadParams{"TwoStageComplete",
                  [](AgglomerativeParams& p) {
                    p.linkage = Linkage::complete;
                    p.strategy = AgglomerativeStrategy::two_stage;
                  },
                  "only ward linkage has a two-stage path"},
        BadParams{"SingleAboveExactLimit",
                  [](AgglomerativeParams& p) {
                    p.linkage = Linkage::single;
                    p.exact_max_samples = 100;
                  },
                  "single linkage on 200 rows is above exact_max_samples=100"},
        BadParams{"AverageOverMemoryBudget",
                  [](AgglomerativeParams& p) {
                    p.linkage = Linkage::average;
                    p.memory_budget_bytes = 100000;
                  },
                  "average linkage on 200 rows needs a"},
        BadParams{"KAboveMicroClusters",
                  [](AgglomerativeParams& p) {
                    p.strategy = AgglomerativeStrategy::two_stage;
                    p.n_micro_clusters = 10;
                    p.n_clusters = 11;
                  },
                  "n_clusters=11 exceeds the 10 micro-clusters"},
        BadParams{"NoMicroClusters", [](AgglomerativeParams& p) { p.n_micro_clusters = 0; }, "n_micro_clusters=0"},
        BadParams{"NoMicroIterations", [](AgglomerativeParams& p) { p.micro_max_iter = 0; }, "micro_max_iter=0"},
        BadParams{"GivenMicroInit", [](AgglomerativeParams& p) { p.micro_init = Init::given; }, "not from given centres"},
        BadParams{"NoExactRows", [](AgglomerativeParams& p) { p.exact_max_samples = 0; }, "exact_max_samples=0"},
        BadParams{"NoBudget", [](AgglomerativeParams& p) { p.memory_budget_bytes = 0; }, "memory budget"}),
    [](const ::testing::TestParamInfo<BadParams>& info) { return std::string(info.param.what); });

TEST(Agglomerative, BadDataAndCutsAreInputErrors) {
  const Matrix<double> x(5, 2, std::vector<double>{0, 0, 1, 0, 0, 2, 3, 3, 5, 1});
  auto expect_error = [](const std::function<void()>& f, const std::string& message) {
    try {
      f();
      ADD_FAILURE() << "no error, expected '" << message << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  };
  for (double bad : {-1.0, 0.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    std::vector<double> w(5, 1.0);
    w[3] = bad;
    for (Linkage l : {Linkage::ward, Linkage::complete, Linkage::average, Linkage::single})
      expect_error([&] { linkage_tree(x.view(), w, l); }, "row 3 has weight");
  }
  expect_error([&] { linkage_tree(x.view(), std::vector<double>(4, 1.0), Linkage::ward); }, "4 weights for 5 rows");
  Matrix<double> nan = x;
  nan(2, 1) = std::nan("");
  expect_error([&] { linkage_tree(nan.view(), {}, Linkage::ward); }, "row 2 column 1 is not finite");
  expect_error([&] { linkage_tree(MatrixView<const double>{nullptr, 0, 2}, {}, Linkage::ward); }, "no rows");
  // complete and average refuse a matrix over the budget (5 rows: 80 bytes); ward and single need none.
  LinkageOptions small;
  small.memory_budget_bytes = 79;
  EXPECT_EQ(max_samples_for_matrix(79), 4);
  EXPECT_EQ(max_samples_for_matrix(80), 5);
  EXPECT_EQ(max_samples_for_matrix(std::int64_t{2} << 30), 23170);
  for (Linkage l : {Linkage::complete, Linkage::average})
    expect_error([&] { linkage_tree(x.view(), {}, l, small); }, "over the memory budget");
  EXPECT_NO_THROW(linkage_tree(x.view(), {}, Linkage::ward, small));
  EXPECT_NO_THROW(linkage_tree(x.view(), {}, Linkage::single, small));
  const LinkageTree t = linkage_tree(x.view(), {}, Linkage::ward);
  expect_error([&] { cut_by_count(t, 0); }, "n_clusters=0");
  expect_error([&] { cut_by_count(t, 6); }, "n_clusters=6");
  expect_error([&] { cut_by_height(t, -0.5); }, "distance_threshold=-0.5");
  expect_error([&] { parse_linkage("median"); }, "unknown linkage 'median'");
}


// ---- the command line: fit --algorithm agglomerative, predict, the model's tree, refusals ---------

class AgglomerativeCli : public test::TempDirTest {
 protected:
  int segforge(const std::string& args, std::string* out = nullptr) const {
    return shell(std::string(SEGFORGE_BINARY) + " " + args + " --device cpu", out);
  }
  /// segments.csv's (segment, name) per row, header left out.
  std::vector<std::pair<int, std::string>> segments(const std::string& file) const {
    std::ifstream in(path(file));
    std::string line;
    std::getline(in, line);
    std::vector<std::pair<int, std::string>> rows;
    while (std::getline(in, line)) {
      const auto a = line.find(','), b = line.find(',', a + 1), c = line.rfind(',');
      rows.emplace_back(std::stoi(line.substr(a + 1, b - a - 1)), line.substr(b + 1, c - b - 1));
    }
    return rows;
  }
};

// The model keeps the exact tree fit made (the library's, tested against SciPy above), its cut
// is segments.csv, and predict on the training rows gives the same segments, exact and two-stage.
TEST_F(AgglomerativeCli, FitStoresTheTreeAndPredictGivesTheLabelsBack) {
  std::mt19937 gen(11);
  const Matrix<float> x = test::random_blobs(gen, 600, 3, 4, 6.0);
  write_features(path("f.h5"), x.view(), {"recency_days", "frequency_gifts", "monetary_total"});
  std::string out;
  for (const std::string linkage : {"ward", "complete", "average", "single"}) {
    ASSERT_EQ(segforge("fit " + path("f.h5") + " --algorithm agglomerative --linkage " + linkage + " -k 4 -o " + path("m.h5") +
                           " --labels " + path("s.csv") + " --metrics " + path("m.json"),
                       &out),
              0)
        << out;
    const Model model = read_model(path("m.h5"));
    ASSERT_TRUE(model.is_hierarchy());
    EXPECT_EQ(model.attributes.at("algorithm"), "agglomerative");
    EXPECT_EQ(model.attributes.at("linkage"), linkage);
    const LinkageTree tree = linkage_tree(as_double(x).view(), {}, parse_linkage(linkage));
    ASSERT_EQ(model.hierarchy_merges.rows(), 599);
    for (i64 i = 0; i < 599; ++i) {
      const Merge& m = tree.merges[static_cast<std::size_t>(i)];
      ASSERT_EQ(model.hierarchy_merges(i, 0), static_cast<double>(m.a)) << linkage << " merge " << i;
      ASSERT_EQ(model.hierarchy_merges(i, 1), static_cast<double>(m.b)) << linkage << " merge " << i;
      ASSERT_EQ(model.hierarchy_merges(i, 2), m.height) << linkage << " merge " << i;
      ASSERT_EQ(model.hierarchy_merges(i, 3), m.size) << linkage << " merge " << i;
    }
    const TreeCut cut = cut_by_count(tree, 4);
    const auto rows = segments("s.csv");
    ASSERT_EQ(rows.size(), 600u);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      ASSERT_EQ(rows[i].first, cut.labels[i]) << linkage << " row " << i;
      ASSERT_EQ(rows[i].second, model.segment_names[static_cast<std::size_t>(cut.labels[i])]) << linkage << " row " << i;
    }
    ASSERT_EQ(segforge("predict " + path("m.h5") + " " + path("f.h5") + " -o " + path("p.csv"), &out), 0) << out;
    EXPECT_EQ(segments("p.csv"), rows) << linkage;
    nlohmann::json m;
    std::ifstream(path("m.json")) >> m;
    EXPECT_EQ(m.at("algorithm"), "agglomerative");
    EXPECT_EQ(m.at("strategy"), "exact");
    // Each segment's centroid in the model is the mean of its rows.
    std::vector<double> sum(4 * 3, 0.0), count(4, 0.0);
    for (i64 i = 0; i < 600; ++i) {
      count[static_cast<std::size_t>(cut.labels[static_cast<std::size_t>(i)])] += 1;
      for (int j = 0; j < 3; ++j) sum[static_cast<std::size_t>(cut.labels[static_cast<std::size_t>(i)] * 3 + j)] += x(i, j);
    }
    for (int c = 0; c < 4; ++c)
      for (int j = 0; j < 3; ++j) EXPECT_NEAR(model.centroids(c, j), sum[static_cast<std::size_t>(c * 3 + j)] / count[static_cast<std::size_t>(c)], 1e-5);
  }
  // Cut by height: the clusters of cut_by_height.
  ASSERT_EQ(segforge("fit " + path("f.h5") + " --algorithm agglomerative --distance-threshold 5 -o " + path("h.h5") +
                         " --labels " + path("h.csv"),
                     &out),
            0)
      << out;
  const TreeCut by_height = cut_by_height(linkage_tree(as_double(x).view(), {}, Linkage::ward), 5.0);
  const auto h = segments("h.csv");
  for (std::size_t i = 0; i < h.size(); ++i) ASSERT_EQ(h[i].first, by_height.labels[i]) << i;
  // Two-stage (forced on these few rows): predict gives fit's segments back.
  ASSERT_EQ(segforge("fit " + path("f.h5") + " --algorithm agglomerative -k 4 --strategy two-stage --micro-clusters 50 -o " +
                         path("t.h5") + " --labels " + path("t.csv"),
                     &out),
            0)
      << out;
  const Model two = read_model(path("t.h5"));
  EXPECT_EQ(two.attributes.at("strategy"), "two-stage");
  EXPECT_LE(two.hierarchy_leaves.rows(), 50);
  ASSERT_EQ(segforge("predict " + path("t.h5") + " " + path("f.h5") + " -o " + path("tp.csv"), &out), 0) << out;
  EXPECT_EQ(segments("tp.csv"), segments("t.csv"));
}

// sweep --algorithm agglomerative: every K is a cut of one tree, so each record is what
// fit --algorithm agglomerative -k K gives (inertia, silhouette, DB, CH of the same labels).
TEST_F(AgglomerativeCli, SweepCutsOneTreeAsFitWould) {
  std::mt19937 gen(13);
  const Matrix<float> x = test::random_blobs(gen, 500, 3, 4, 6.0);
  write_features(path("f.h5"), x.view(), {"a", "b", "c"});
  std::string out;
  ASSERT_EQ(segforge("sweep " + path("f.h5") + " --algorithm agglomerative --k 2:6 --gap-refs 3 -o " + path("sweep.json"), &out), 0)
      << out;
  nlohmann::json sweep;
  std::ifstream(path("sweep.json")) >> sweep;
  EXPECT_EQ(sweep.at("algorithm"), "agglomerative");
  const auto& records = sweep.at("records");
  ASSERT_EQ(records.size(), 5u);
  for (int k = 2; k <= 6; ++k) {
    ASSERT_EQ(segforge("fit " + path("f.h5") + " --algorithm agglomerative -k " + std::to_string(k) + " --silhouette exact -o " +
                           path("m.h5") + " --metrics " + path("m.json"),
                       &out),
              0)
        << out;
    nlohmann::json m;
    std::ifstream(path("m.json")) >> m;
    const auto& r = records.at(static_cast<std::size_t>(k - 2));
    ASSERT_EQ(r.at("k").get<int>(), k);
    EXPECT_NEAR(r.at("inertia").get<double>(), m.at("inertia").get<double>(), 1e-9 * m.at("inertia").get<double>()) << k;
    EXPECT_NEAR(r.at("silhouette").get<double>(), m.at("silhouette").get<double>(), 1e-9) << k;
    EXPECT_NEAR(r.at("davies_bouldin").get<double>(), m.at("davies_bouldin").get<double>(), 1e-9) << k;
    EXPECT_NEAR(r.at("calinski_harabasz").get<double>(), m.at("calinski_harabasz").get<double>(),
                1e-9 * m.at("calinski_harabasz").get<double>()) << k;
  }
  EXPECT_EQ(sweep.at("recommended_k").get<int>(), 4) << out;
}

TEST_F(AgglomerativeCli, BadInputIsOneLineExitTwoNothingWritten) {
  std::mt19937 gen(12);
  const Matrix<float> x = test::random_blobs(gen, 100, 2, 3, 6.0);
  write_features(path("f.h5"), x.view(), {"a", "b"});
  const std::pair<std::string, std::string> cases[] = {
      {"", "pass -k K"},
      {"-k 3 --distance-threshold 1", "not both"},
      {"-k 3 --linkage median", "unknown linkage"},
      {"-k 0", "n_clusters=0"},
      {"-k 101", "n_clusters=101"},
      {"--distance-threshold -1", "distance_threshold"},
      {"-k 3 --linkage single --strategy two-stage", "only ward linkage"},
      {"-k 3 --strategy sometimes", "--strategy sometimes"},
      {"-k 3 --checkpoint c.h5", "K-Means options"},
  };
  for (const auto& [args, message] : cases) {
    std::string out;
    EXPECT_EQ(segforge("fit " + path("f.h5") + " --algorithm agglomerative " + args + " -o " + path("m.h5"), &out), 2)
        << args << "\n" << out;
    EXPECT_NE(out.find(message), std::string::npos) << args << "\n" << out;
    EXPECT_FALSE(fs::exists(path("m.h5"))) << args;
  }
  // A model whose tree is damaged is refused when read, naming the dataset.
  std::string out;
  ASSERT_EQ(segforge("fit " + path("f.h5") + " --algorithm agglomerative -k 3 -o " + path("m.h5"), &out), 0) << out;
  ASSERT_EQ(test::run_shell("/usr/bin/python3 -c \"import h5py; f = h5py.File('" + path("m.h5") +
                                "', 'r+'); m = f['hierarchy/merges']; z = m[...]; z[5, 0] = z[7, 1]; m[...] = z\"",
                            fs::path(path("log.txt"))),
            0);
  EXPECT_EQ(segforge("predict " + path("m.h5") + " " + path("f.h5") + " -o " + path("p.csv"), &out), 2) << out;
  EXPECT_NE(out.find("/hierarchy/merges"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(path("p.csv")));
}

}  // namespace
}  // namespace segforge
