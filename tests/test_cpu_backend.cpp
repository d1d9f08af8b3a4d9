// The CPU backend against independent naive double-precision references written here, plus the
// properties the design promises: bit-identical results for any thread count and across reruns,
// weights ≡ repetition, exact zeros where distances are exactly zero.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/matrix.hpp"
#include "segforge/rng.hpp"
#include "test_support.hpp"

namespace segforge {
namespace {

using i64 = std::int64_t;

// ---- data and naive references -------------------------------------------------------------

Matrix<float> random_matrix(i64 rows, i64 cols, std::uint32_t seed, float spread = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  Matrix<float> m(rows, cols);
  for (auto& v : m.values()) v = normal(gen);
  return m;
}

/// Blobs around `k` random centres: realistic clusters, few near-ties.
Matrix<float> blobs(i64 rows, i64 cols, int k, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, k - 1);
  Matrix<float> centres(k, cols);
  for (auto& v : centres.values()) v = 4.0f * normal(gen);
  Matrix<float> m(rows, cols);
  for (i64 i = 0; i < rows; ++i) {
    const int c = pick(gen);
    for (i64 j = 0; j < cols; ++j) m(i, j) = centres(c, j) + normal(gen);
  }
  return m;
}

/// Small integers: every float32 expansion ||x||² − 2x·c + ||c||² is exact, so labels, ties and
/// distances can be compared exactly with the naive reference.
Matrix<float> small_integers(i64 rows, i64 cols, std::uint32_t seed, int range = 6) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> pick(-range, range);
  Matrix<float> m(rows, cols);
  for (auto& v : m.values()) v = static_cast<float>(pick(gen));
  return m;
}

std::vector<float> random_weights(i64 n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(0.25f, 3.0f);
  std::vector<float> w(static_cast<std::size_t>(n));
  for (auto& v : w) v = u(gen);
  return w;
}

/// Rows of `x` picked by index (the centres start at data rows, as k-means++ would).
Matrix<float> rows_of(const Matrix<float>& x, std::span<const i64> idx) {
  Matrix<float> out(static_cast<i64>(idx.size()), x.cols());
  for (std::size_t r = 0; r < idx.size(); ++r)
    std::copy(x.row(idx[r]), x.row(idx[r]) + x.cols(), out.row(static_cast<i64>(r)));
  return out;
}

Matrix<float> first_rows_jittered(const Matrix<float>& x, i64 k, std::uint32_t seed) {
  std::vector<i64> idx;
  for (i64 i = 0; i < k; ++i) idx.push_back((i * 7919) % x.rows());
  Matrix<float> c = rows_of(x, idx);
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  for (auto& v : c.values()) v += normal(gen);
  return c;
}

double naive_sq(const float* a, const float* b, i64 d) {
  double s = 0.0;
  for (i64 j = 0; j < d; ++j) {
    const double v = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    s += v * v;
  }
  return s;
}

double naive_norm(const float* a, i64 d) {
  double s = 0.0;
  for (i64 j = 0; j < d; ++j) s += static_cast<double>(a[j]) * a[j];
  return s;
}

struct NaiveAssign {
  std::vector<std::int32_t> labels;
  std::vector<double> sq;  // distance to the nearest
};

/// Argmin in double with ties to the lower index.
NaiveAssign naive_assign(const Matrix<float>& x, const Matrix<float>& c) {
  NaiveAssign out;
  for (i64 i = 0; i < x.rows(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    std::int32_t arg = 0;
    for (i64 k = 0; k < c.rows(); ++k) {
      const double v = naive_sq(x.row(i), c.row(k), x.cols());
      if (v < best) {
        best = v;
        arg = static_cast<std::int32_t>(k);
      }
    }
    out.labels.push_back(arg);
    out.sq.push_back(best);
  }
  return out;
}

double weight_of(std::span<const float> w, i64 i) { return w.empty() ? 1.0 : w[i]; }

/// Tolerance for a float32 expansion: a few ulps of the norms involved.
double expansion_tolerance(const float* x, const float* c, i64 d) {
  return 1e-5 * (1.0 + naive_norm(x, d) + naive_norm(c, d));
}

void expect_rel_near(double actual, double expected, double rel, const std::string& what) {
  EXPECT_NEAR(actual, expected, rel * std::max(1.0, std::abs(expected))) << what;
}

void expect_same_bits(const std::vector<double>& a, const std::vector<double>& b,
                      const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(double)), 0)
        << what << " [" << i << "]: " << a[i] << " vs " << b[i];
}

// ---- shapes: both kernels (direct for small K·D, GEMM otherwise), padding edges ----------------

struct Shape {
  i64 n;
  i64 d;
  i64 k;
  bool weighted;
};

std::string shape_name(const testing::TestParamInfo<Shape>& info) {
  const Shape& s = info.param;
  return "n" + std::to_string(s.n) + "_d" + std::to_string(s.d) + "_k" + std::to_string(s.k) +
         (s.weighted ? "_weighted" : "");
}

class CpuBackendShapes : public testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    const Shape& s = GetParam();
    x_ = blobs(s.n, s.d, static_cast<int>(std::max<i64>(s.k / 2, 2)), 1234u + static_cast<std::uint32_t>(s.d));
    if (s.weighted) w_ = random_weights(s.n, 99u);
    c_ = first_rows_jittered(x_, s.k, 7u);
    backend_ = make_cpu_backend(2);
    data_ = backend_->upload(x_.view(), w_);
  }

  Matrix<float> x_;
  std::vector<float> w_;
  Matrix<float> c_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Dataset> data_;
};

TEST_P(CpuBackendShapes, DatasetShape) {
  EXPECT_EQ(data_->n_samples(), x_.rows());
  EXPECT_EQ(data_->n_features(), x_.cols());
  EXPECT_EQ(data_->weighted(), !w_.empty());
}

TEST_P(CpuBackendShapes, AssignMatchesNaiveArgmin) {
  const i64 n = x_.rows(), d = x_.cols();
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  std::vector<float> sq(static_cast<std::size_t>(n));
  backend_->assign(*data_, c_.view(), labels, sq);
  const NaiveAssign ref = naive_assign(x_, c_);
  i64 differ = 0;
  for (i64 i = 0; i < n; ++i) {
    ASSERT_GE(labels[i], 0);
    ASSERT_LT(labels[i], c_.rows());
    const double tol = expansion_tolerance(x_.row(i), c_.row(labels[i]), d);
    // The chosen centre is the nearest up to float32 rounding (near-ties may go either way).
    EXPECT_LE(naive_sq(x_.row(i), c_.row(labels[i]), d), ref.sq[i] + 2 * tol) << "row " << i;
    EXPECT_NEAR(sq[i], naive_sq(x_.row(i), c_.row(labels[i]), d), tol) << "row " << i;
    EXPECT_GE(sq[i], 0.0f);
    differ += labels[i] != ref.labels[i];
  }
  EXPECT_LE(differ, n / 1000 + 1);
}

TEST_P(CpuBackendShapes, AssignAccumulateMatchesNaiveSums) {
  const i64 n = x_.rows(), d = x_.cols(), k = c_.rows();
  const AccumulateResult r = backend_->assign_accumulate(*data_, c_.view());
  ASSERT_EQ(static_cast<i64>(r.sums.size()), k * d);
  ASSERT_EQ(static_cast<i64>(r.counts.size()), k);
  EXPECT_EQ(r.n_changed, n);  // labels start at -1: every row changes on the first pass

  // The same labels as assign(), then sums from them in double.
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  backend_->assign(*data_, c_.view(), labels, {});
  std::vector<double> sums(static_cast<std::size_t>(k * d), 0.0), counts(static_cast<std::size_t>(k), 0.0);
  double inertia = 0.0;
  for (i64 i = 0; i < n; ++i) {
    const double w = weight_of(w_, i);
    for (i64 j = 0; j < d; ++j) sums[labels[i] * d + j] += w * x_(i, j);
    counts[labels[i]] += w;
    inertia += w * naive_sq(x_.row(i), c_.row(labels[i]), d);
  }
  double scale = 0.0;
  for (const double v : sums) scale = std::max(scale, std::abs(v));
  for (i64 e = 0; e < k * d; ++e) EXPECT_NEAR(r.sums[e], sums[e], 1e-9 * scale) << "sum " << e;
  for (i64 l = 0; l < k; ++l) expect_rel_near(r.counts[l], counts[l], 1e-12, "count");
  expect_rel_near(r.inertia, inertia, 1e-5, "inertia");
}

TEST_P(CpuBackendShapes, ChangedCountsLabelDifferences) {
  const i64 n = x_.rows();
  EXPECT_EQ(backend_->assign_accumulate(*data_, c_.view()).n_changed, n);
  EXPECT_EQ(backend_->assign_accumulate(*data_, c_.view()).n_changed, 0);
  std::vector<std::int32_t> before(static_cast<std::size_t>(n)), after(static_cast<std::size_t>(n));
  backend_->assign(*data_, c_.view(), before, {});
  Matrix<float> moved = c_;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 0.7f);
  for (auto& v : moved.values()) v += normal(gen);
  backend_->assign(*data_, moved.view(), after, {});
  i64 differ = 0;
  for (i64 i = 0; i < n; ++i) differ += before[i] != after[i];
  ASSERT_GT(differ, 0);
  EXPECT_EQ(backend_->assign_accumulate(*data_, moved.view()).n_changed, differ);
}

TEST_P(CpuBackendShapes, MinDistancesAndPotentialsMatchNaive) {
  const i64 n = x_.rows(), d = x_.cols();
  const i64 half = std::max<i64>(1, c_.rows() / 2);
  Matrix<float> first(half, d, std::vector<float>(c_.values().begin(), c_.values().begin() + half * d));
  Matrix<float> rest(c_.rows() - half, d,
                     std::vector<float>(c_.values().begin() + half * d, c_.values().end()));
  auto phi_naive = [&](const Matrix<float>& c) {
    const NaiveAssign a = naive_assign(x_, c);
    double phi = 0.0;
    for (i64 i = 0; i < n; ++i) phi += weight_of(w_, i) * a.sq[i];
    return phi;
  };
  expect_rel_near(backend_->reset_min_distances(*data_, first.view()), phi_naive(first), 1e-5, "reset φ");
  if (rest.rows() > 0)
    expect_rel_near(backend_->update_min_distances(*data_, rest.view()), phi_naive(c_), 1e-5, "update φ");

  // Candidates: a few data rows and jittered points; potentials against the current d(x).
  Matrix<float> cand = first_rows_jittered(x_, 5, 11u);
  const std::vector<double> pot = backend_->candidate_potentials(*data_, cand.view());
  ASSERT_EQ(pot.size(), 5u);
  const NaiveAssign cur = naive_assign(x_, c_);
  for (i64 t = 0; t < cand.rows(); ++t) {
    double expected = 0.0;
    for (i64 i = 0; i < n; ++i)
      expected += weight_of(w_, i) * std::min(cur.sq[i], naive_sq(x_.row(i), cand.row(t), d));
    expect_rel_near(pot[t], expected, 1e-5, "potential " + std::to_string(t));
  }
  // candidate_potentials must not change d(x).
  expect_rel_near(backend_->update_min_distances(*data_, Matrix<float>(0, d).view()), phi_naive(c_),
                  1e-5, "φ unchanged");
}

TEST_P(CpuBackendShapes, MinibatchStepMatchesNaive) {
  const i64 n = x_.rows(), d = x_.cols(), k = c_.rows();
  std::mt19937 gen(3);
  std::uniform_int_distribution<i64> pick(0, n - 1);
  std::vector<i64> batch(static_cast<std::size_t>(std::min<i64>(3000, 2 * n)));
  for (auto& r : batch) r = pick(gen);  // with repeats, as scikit-learn samples
  Matrix<float> centres = c_;
  std::vector<double> counts(static_cast<std::size_t>(k));
  for (i64 l = 0; l < k; ++l) counts[l] = static_cast<double>(l % 3) * 10.0;

  // Naive: labels from the backend's own assign on the batch rows (ties are the backend's call),
  // then the documented update in double.
  const Matrix<float> bx = rows_of(x_, batch);
  std::vector<float> bw;
  for (const i64 r : batch) bw.push_back(static_cast<float>(weight_of(w_, r)));
  auto bdata = backend_->upload(bx.view(), w_.empty() ? std::span<const float>() : std::span<const float>(bw));
  std::vector<std::int32_t> labels(batch.size());
  backend_->assign(*bdata, centres.view(), labels, {});
  std::vector<double> sums(static_cast<std::size_t>(k * d), 0.0), b(static_cast<std::size_t>(k), 0.0);
  double inertia = 0.0;
  for (std::size_t q = 0; q < batch.size(); ++q) {
    const double w = bw[q];
    for (i64 j = 0; j < d; ++j) sums[labels[q] * d + j] += w * bx(static_cast<i64>(q), j);
    b[labels[q]] += w;
    inertia += w * naive_sq(bx.row(static_cast<i64>(q)), centres.row(labels[q]), d);
  }
  Matrix<double> expected(k, d);
  std::vector<double> expected_counts = counts;
  for (i64 l = 0; l < k; ++l) {
    for (i64 j = 0; j < d; ++j)
      expected(l, j) = b[l] > 0 ? (centres(l, j) * counts[l] + sums[l * d + j]) / (counts[l] + b[l])
                                : centres(l, j);
    expected_counts[l] += b[l];
  }

  const double got = backend_->minibatch_step(*data_, batch, centres.view(), counts);
  expect_rel_near(got, inertia, 1e-5, "batch inertia");
  for (i64 l = 0; l < k; ++l) {
    expect_rel_near(counts[l], expected_counts[l], 1e-12, "count");
    for (i64 j = 0; j < d; ++j)
      EXPECT_NEAR(centres(l, j), expected(l, j), 1e-6 * (1.0 + std::abs(expected(l, j))))
          << "centre " << l << " feature " << j;
  }
}

TEST_P(CpuBackendShapes, DistanceTileMatchesNaive) {
  const i64 n = x_.rows(), d = x_.cols();
  auto other = backend_->upload(c_.view());
  const i64 a_begin = n / 3, a_count = std::min<i64>(300, n - a_begin);
  for (const bool squared : {true, false}) {
    const Matrix<float> tile = backend_->distance_tile(*data_, a_begin, a_count, *other, 1, c_.rows() - 1, squared);
    ASSERT_EQ(tile.rows(), a_count);
    ASSERT_EQ(tile.cols(), c_.rows() - 1);
    for (i64 i = 0; i < a_count; ++i)
      for (i64 p = 0; p < tile.cols(); ++p) {
        const double sq = naive_sq(x_.row(a_begin + i), c_.row(1 + p), d);
        const double tol = expansion_tolerance(x_.row(a_begin + i), c_.row(1 + p), d);
        if (squared)
          EXPECT_NEAR(tile(i, p), sq, tol);
        else
          EXPECT_NEAR(tile(i, p), std::sqrt(sq), std::sqrt(tol) + 1e-6 * std::sqrt(sq));
      }
  }
}

TEST_P(CpuBackendShapes, LabelStatsMatchNaive) {
  const i64 n = x_.rows(), d = x_.cols(), k = c_.rows();
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  backend_->assign(*data_, c_.view(), labels, {});
  const LabelStats s = backend_->label_stats(*data_, labels, static_cast<int>(k), c_.view());
  std::vector<double> sums(static_cast<std::size_t>(k * d), 0.0), counts(static_cast<std::size_t>(k), 0.0),
      dist(static_cast<std::size_t>(k), 0.0), sq(static_cast<std::size_t>(k), 0.0);
  for (i64 i = 0; i < n; ++i) {
    const double w = weight_of(w_, i);
    const double v = naive_sq(x_.row(i), c_.row(labels[i]), d);
    for (i64 j = 0; j < d; ++j) sums[labels[i] * d + j] += w * x_(i, j);
    counts[labels[i]] += w;
    dist[labels[i]] += w * std::sqrt(v);
    sq[labels[i]] += w * v;
  }
  double scale = 0.0;
  for (const double v : sums) scale = std::max(scale, std::abs(v));
  for (i64 e = 0; e < k * d; ++e) EXPECT_NEAR(s.sums[e], sums[e], 1e-9 * scale);
  for (i64 l = 0; l < k; ++l) {
    expect_rel_near(s.counts[l], counts[l], 1e-12, "count");
    expect_rel_near(s.dist_sums[l], dist[l], 1e-10, "dist_sums");
    expect_rel_near(s.sq_dist_sums[l], sq[l], 1e-10, "sq_dist_sums");
  }
  // Without centroids only the sums and counts are filled.
  const LabelStats bare = backend_->label_stats(*data_, labels, static_cast<int>(k), MatrixView<const float>{});
  expect_same_bits(bare.sums, s.sums, "sums without centroids");
  for (const double v : bare.dist_sums) EXPECT_EQ(v, 0.0);
  for (const double v : bare.sq_dist_sums) EXPECT_EQ(v, 0.0);
}

TEST_P(CpuBackendShapes, ColumnStatsMatchNaive) {
  const i64 n = x_.rows(), d = x_.cols();
  const ColumnStats s = backend_->column_stats(*data_);
  ASSERT_EQ(static_cast<i64>(s.mean.size()), d);
  for (i64 j = 0; j < d; ++j) {
    double mean = 0.0;
    for (i64 i = 0; i < n; ++i) mean += x_(i, j);
    mean /= static_cast<double>(n);
    double var = 0.0;
    for (i64 i = 0; i < n; ++i) var += (x_(i, j) - mean) * (x_(i, j) - mean);
    var /= static_cast<double>(n);
    EXPECT_NEAR(s.mean[j], mean, 1e-12 * (1.0 + std::abs(mean)));  // unweighted, as numpy
    EXPECT_NEAR(s.variance[j], var, 1e-12 * (1.0 + var));
  }
}

TEST_P(CpuBackendShapes, BitIdenticalForAnyThreadCountAndAdopted) {
  const Shape& shape = GetParam();
  const i64 n = x_.rows(), d = x_.cols(), k = c_.rows();
  std::vector<i64> batch;
  for (i64 i = 0; i < std::min<i64>(5000, n); ++i) batch.push_back((i * 104729) % n);
  std::vector<std::int32_t> sil_labels(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i) sil_labels[i] = static_cast<std::int32_t>(i % 3);
  const i64 sil_rows = std::min<i64>(n, 150);
  const std::vector<double> targets = {0.0, 1.0, 1e3, 1e5};

  struct Outcome {
    AccumulateResult acc, acc2;
    std::vector<std::int32_t> labels;
    std::vector<float> sq;
    double phi1 = 0, phi2 = 0;
    std::vector<double> pot;
    std::vector<std::int64_t> sampled, picked;
    Matrix<float> centres;
    std::vector<double> counts;
    double batch_inertia = 0;
    LabelStats stats;
    ColumnStats cols;
    Matrix<double> sil;
  };
  // adopted: the dataset takes a copy of x_'s buffer over (Backend::adopt) instead of copying.
  auto run = [&](int threads, bool adopted = false) {
    auto be = make_cpu_backend(threads);
    std::unique_ptr<Dataset> data;
    if (adopted) {
      Matrix<float> rows = x_;
      data = be->adopt(std::move(rows));
      EXPECT_EQ(rows.rows(), 0);
      EXPECT_EQ(rows.cols(), d);
      EXPECT_TRUE(rows.values().empty()) << "adopt left the caller a copy";
    } else {
      data = be->upload(x_.view(), w_);
    }
    Outcome o;
    o.acc = be->assign_accumulate(*data, c_.view());
    o.acc2 = be->assign_accumulate(*data, first_rows_jittered(x_, k, 8u).view());
    o.labels.resize(static_cast<std::size_t>(n));
    o.sq.resize(static_cast<std::size_t>(n));
    be->assign(*data, c_.view(), o.labels, o.sq);
    o.phi1 = be->reset_min_distances(*data, Matrix<float>(1, d, std::vector<float>(c_.row(0), c_.row(0) + d)).view());
    o.phi2 = be->update_min_distances(*data, c_.view());
    o.pot = be->candidate_potentials(*data, first_rows_jittered(x_, 4, 9u).view());
    std::vector<double> scaled;
    for (const double t : targets) scaled.push_back(std::min(t, o.phi2 * 0.999));
    std::sort(scaled.begin(), scaled.end());
    o.sampled = be->sample_by_min_distance(*data, scaled);
    o.picked = be->oversample(*data, 2.0 * static_cast<double>(k) / o.phi2, 42u);
    o.centres = c_;
    o.counts.assign(static_cast<std::size_t>(k), 1.0);
    o.batch_inertia = be->minibatch_step(*data, batch, o.centres.view(), o.counts);
    o.stats = be->label_stats(*data, o.labels, static_cast<int>(k), c_.view());
    o.cols = be->column_stats(*data);
    o.sil = be->cluster_distance_sums(*data, sil_labels, 3, n - sil_rows, sil_rows);
    return o;
  };
  const Outcome one = run(1), two = run(2), again = run(2);
  // adopt() has no weights: compared where the shape is unweighted.
  const Outcome adopted = shape.weighted ? run(2) : run(2, true);
  for (const Outcome* other : {&two, &again, &adopted}) {
    expect_same_bits(one.acc.sums, other->acc.sums, "sums");
    expect_same_bits(one.acc.counts, other->acc.counts, "counts");
    expect_same_bits({one.acc.inertia}, {other->acc.inertia}, "inertia");
    EXPECT_EQ(one.acc2.n_changed, other->acc2.n_changed);
    expect_same_bits(one.acc2.sums, other->acc2.sums, "second pass sums");
    EXPECT_EQ(one.labels, other->labels);
    EXPECT_EQ(0, std::memcmp(one.sq.data(), other->sq.data(), one.sq.size() * sizeof(float)));
    expect_same_bits({one.phi1, one.phi2}, {other->phi1, other->phi2}, "φ");
    expect_same_bits(one.pot, other->pot, "potentials");
    EXPECT_EQ(one.sampled, other->sampled);
    EXPECT_EQ(one.picked, other->picked);
    EXPECT_EQ(one.centres.values(), other->centres.values());
    expect_same_bits(one.counts, other->counts, "mini-batch counts");
    expect_same_bits({one.batch_inertia}, {other->batch_inertia}, "batch inertia");
    expect_same_bits(one.stats.sums, other->stats.sums, "label sums");
    expect_same_bits(one.stats.dist_sums, other->stats.dist_sums, "label dist sums");
    expect_same_bits(one.cols.mean, other->cols.mean, "column means");
    expect_same_bits(one.cols.variance, other->cols.variance, "column variances");
    expect_same_bits(std::vector<double>(one.sil.values().begin(), one.sil.values().end()),
                     std::vector<double>(other->sil.values().begin(), other->sil.values().end()), "cluster distance sums");
  }
}

// The direct kernel with K below, at and off multiples of its 8-centre tile and D off its 8-wide
// transpose tiles; the GEMM kernel (D > 1024) with K beyond one 256-centre slice. n spans several
// 2048-row chunks and ends mid-block.
INSTANTIATE_TEST_SUITE_P(Kernels, CpuBackendShapes,
                         testing::Values(Shape{9001, 8, 8, false}, Shape{9001, 8, 8, true},
                                         Shape{5003, 3, 5, true}, Shape{4099, 13, 11, false},
                                         Shape{6007, 40, 24, true}, Shape{2500, 32, 64, false},
                                         Shape{1500, 20, 300, false}, Shape{37, 5, 4, true},
                                         Shape{700, 1030, 5, true}, Shape{450, 1100, 260, false}),
                         shape_name);

// ---- exact cases: small integers make the float32 expansion exact -----------------------------

TEST(CpuBackend, ExactLabelsTiesGoToTheLowerIndex) {
  for (const i64 d : {2, 8, 24}) {
    const Matrix<float> x = small_integers(3000, d, 17u);
    // Duplicate centres and centres one unit apart: many exact ties.
    Matrix<float> c = small_integers(12, d, 18u);
    std::copy(c.row(3), c.row(3) + d, c.row(7));
    std::copy(c.row(0), c.row(0) + d, c.row(11));
    auto be = make_cpu_backend(2);
    auto data = be->upload(x.view());
    std::vector<std::int32_t> labels(3000);
    std::vector<float> sq(3000);
    be->assign(*data, c.view(), labels, sq);
    const NaiveAssign ref = naive_assign(x, c);
    for (i64 i = 0; i < x.rows(); ++i) {
      ASSERT_EQ(labels[i], ref.labels[i]) << "d=" << d << " row " << i;
      ASSERT_EQ(static_cast<double>(sq[i]), ref.sq[i]) << "d=" << d << " row " << i;
    }
    for (const auto l : labels) {
      EXPECT_NE(l, 7);
      EXPECT_NE(l, 11);
    }
  }
}

// An unweighted dataset takes its own accumulation path (plain adds, counts of one in a vector
// lane); weights of exactly 1 take the weighted one (fma with w). Both must give the same bits,
// at every width (d/8 full vectors and each tail length) and across chunk and block edges.
TEST(CpuBackend, UnitWeightsGiveTheSameBitsAsNoWeights) {
  for (i64 d = 1; d <= 41; d += (d < 18 ? 1 : 7)) {
    SCOPED_TRACE("d=" + std::to_string(d));
    const i64 n = 2 * 2048 + 300, k = d % 3 == 0 ? 5 : 12;
    // Blobs with each value scaled by 2^e, e in [-40, 40]: sums of such floats round in double,
    // so a different order of the adds would show in the bits (plain blobs sum exactly).
    Matrix<float> x = blobs(n, d, 6, static_cast<std::uint32_t>(40 + d));
    std::mt19937 gen(static_cast<std::uint32_t>(d));
    std::uniform_int_distribution<int> exponent(-40, 40);
    for (auto& v : x.values()) v = std::ldexp(v, exponent(gen));
    const Matrix<float> c = first_rows_jittered(x, k, 41u);
    auto be = make_cpu_backend(2);
    auto ones = be->upload(x.view(), std::vector<float>(static_cast<std::size_t>(n), 1.0f));
    auto plain = be->upload(x.view());
    for (int pass = 0; pass < 2; ++pass) {  // the second pass counts no changed labels
      const AccumulateResult a = be->assign_accumulate(*ones, c.view());
      const AccumulateResult b = be->assign_accumulate(*plain, c.view());
      ASSERT_EQ(a.sums, b.sums);
      ASSERT_EQ(a.counts, b.counts);
      ASSERT_EQ(a.inertia, b.inertia);
      ASSERT_EQ(a.n_changed, b.n_changed);
      EXPECT_EQ(b.n_changed, pass == 0 ? n : 0);
    }
    std::vector<std::int64_t> batch;
    for (i64 i = 0; i < 1500; ++i) batch.push_back((i * 7919) % n);
    Matrix<float> ca = c, cb = c;
    std::vector<double> na(static_cast<std::size_t>(k), 3.0), nb = na;
    const double ia = be->minibatch_step(*ones, batch, ca.view(), na);
    const double ib = be->minibatch_step(*plain, batch, cb.view(), nb);
    ASSERT_EQ(ia, ib);
    ASSERT_EQ(na, nb);
    ASSERT_EQ(ca.values(), cb.values());
  }
}

TEST(CpuBackend, WeightsEqualRepetition) {
  for (const i64 d : {6, 40}) {
    SCOPED_TRACE("d=" + std::to_string(d));
    const i64 n = 3001, k = 9;
    const Matrix<float> x = blobs(n, d, 5, 21u);
    std::vector<float> w(static_cast<std::size_t>(n));
    std::vector<i64> repeated;
    for (i64 i = 0; i < n; ++i) {
      w[i] = static_cast<float>(1 + i % 3);
      for (int r = 0; r < 1 + i % 3; ++r) repeated.push_back(i);
    }
    const Matrix<float> xr = rows_of(x, repeated);
    const Matrix<float> c = first_rows_jittered(x, k, 22u);
    auto be = make_cpu_backend(2);
    auto weighted = be->upload(x.view(), w);
    auto plain = be->upload(xr.view());

    const AccumulateResult a = be->assign_accumulate(*weighted, c.view());
    const AccumulateResult b = be->assign_accumulate(*plain, c.view());
    for (std::size_t e = 0; e < a.sums.size(); ++e) expect_rel_near(a.sums[e], b.sums[e], 1e-9, "sums");
    for (std::size_t l = 0; l < a.counts.size(); ++l) EXPECT_EQ(a.counts[l], b.counts[l]);
    expect_rel_near(a.inertia, b.inertia, 1e-9, "inertia");

    expect_rel_near(be->reset_min_distances(*weighted, c.view()),
                    be->reset_min_distances(*plain, c.view()), 1e-9, "φ");
    const Matrix<float> cand = first_rows_jittered(x, 3, 23u);
    const auto pa = be->candidate_potentials(*weighted, cand.view());
    const auto pb = be->candidate_potentials(*plain, cand.view());
    for (std::size_t t = 0; t < pa.size(); ++t) expect_rel_near(pa[t], pb[t], 1e-9, "potential");

    std::vector<std::int32_t> la(static_cast<std::size_t>(n)), lb(repeated.size());
    be->assign(*weighted, c.view(), la, {});
    be->assign(*plain, c.view(), lb, {});
    const LabelStats sa = be->label_stats(*weighted, la, static_cast<int>(k), c.view());
    const LabelStats sb = be->label_stats(*plain, lb, static_cast<int>(k), c.view());
    for (std::size_t l = 0; l < sa.counts.size(); ++l) {
      EXPECT_EQ(sa.counts[l], sb.counts[l]);
      expect_rel_near(sa.dist_sums[l], sb.dist_sums[l], 1e-9, "dist_sums");
    }

    // Silhouette sums over the column rows: weight 2 counts the row twice.
    const Matrix<double> ca = be->cluster_distance_sums(*weighted, la, static_cast<int>(k), 0, 40);
    std::vector<i64> firsts;  // the repeated copy of rows 0..39
    for (std::size_t q = 0; q < repeated.size() && firsts.size() < 40; ++q)
      if (q == 0 || repeated[q] != repeated[q - 1]) firsts.push_back(static_cast<i64>(q));
    for (std::size_t r = 0; r < firsts.size(); ++r) {
      const Matrix<double> cb = be->cluster_distance_sums(*plain, lb, static_cast<int>(k), firsts[r], 1);
      for (i64 l = 0; l < k; ++l) expect_rel_near(ca(static_cast<i64>(r), l), cb(0, l), 1e-6, "silhouette sums");
    }

    // Mini-batch: a batch with weights equals the batch with the rows repeated.
    std::vector<i64> batch_w, batch_r;
    for (i64 i = 0; i < 500; ++i) batch_w.push_back(i * 5 % n);
    for (const i64 i : batch_w)
      for (std::size_t q = 0; q < repeated.size(); ++q)
        if (repeated[q] == i) batch_r.push_back(static_cast<i64>(q));
    Matrix<float> ma = c, mb = c;
    std::vector<double> na(static_cast<std::size_t>(k), 2.0), nb(static_cast<std::size_t>(k), 2.0);
    expect_rel_near(be->minibatch_step(*weighted, batch_w, ma.view(), na),
                    be->minibatch_step(*plain, batch_r, mb.view(), nb), 1e-9, "batch inertia");
    for (i64 l = 0; l < k; ++l) {
      EXPECT_EQ(na[l], nb[l]);
      for (i64 j = 0; j < d; ++j) EXPECT_NEAR(ma(l, j), mb(l, j), 1e-5 * (1 + std::abs(mb(l, j))));
    }
  }
}

TEST(CpuBackend, SampleByMinDistanceHandExample) {
  // 1-D rows 0, 1, 3, 0 and the centre 0: d = 0, 1, 9, 0 exactly; running mass 0, 1, 10, 10.
  const Matrix<float> x(4, 1, std::vector<float>{0.0f, 1.0f, 3.0f, 0.0f});
  const Matrix<float> c(1, 1, std::vector<float>{0.0f});
  auto be = make_cpu_backend(1);
  auto data = be->upload(x.view());
  EXPECT_EQ(be->reset_min_distances(*data, c.view()), 10.0);
  const std::vector<double> t = {0.0, 0.5, 0.999, 1.0, 5.0, 9.999, 10.0, 50.0};
  const std::vector<std::int64_t> want = {1, 1, 1, 2, 2, 2, 2, 2};  // ≥ φ clips to the last d > 0
  EXPECT_EQ(be->sample_by_min_distance(*data, t), want);

  // Weights scale the mass: w = 3, 0, 1, 5 gives masses 0, 0, 9, 0.
  const std::vector<float> w = {3.0f, 0.0f, 1.0f, 5.0f};
  auto weighted = be->upload(x.view(), w);
  EXPECT_EQ(be->reset_min_distances(*weighted, c.view()), 9.0);
  EXPECT_EQ(be->sample_by_min_distance(*weighted, std::vector<double>{0.0, 8.9, 9.0}),
            (std::vector<std::int64_t>{2, 2, 2}));
}

TEST(CpuBackend, SampleByMinDistanceAcrossChunks) {
  // Integer data, so d(x) is exact and the naive running sum is exact too.
  const i64 n = 10000;
  const Matrix<float> x = small_integers(n, 3, 31u, 5);
  const Matrix<float> c(1, 3, std::vector<float>{0.0f, 0.0f, 0.0f});
  const std::vector<float> w = [&] {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i) v[i] = static_cast<float>(i % 4);
    return v;
  }();
  auto be = make_cpu_backend(2);
  auto data = be->upload(x.view(), w);
  const double phi = be->reset_min_distances(*data, c.view());
  std::vector<double> cum(static_cast<std::size_t>(n));
  double run = 0.0;
  for (i64 i = 0; i < n; ++i) {
    run += w[i] * naive_norm(x.row(i), 3);
    cum[i] = run;
  }
  EXPECT_EQ(phi, run);
  std::vector<double> targets;
  std::vector<std::int64_t> want;
  for (i64 i = 1; i < n; i += 97) {
    if (cum[i] == cum[i - 1]) continue;  // zero mass: never sampled
    targets.push_back(0.5 * (cum[i - 1] + cum[i]));
    want.push_back(i);
  }
  EXPECT_EQ(be->sample_by_min_distance(*data, targets), want);
}

TEST(CpuBackend, SampleByMinDistanceNeverPicksARowOfNoMass) {
  // test::zero_mass_chunk_rows: a target the running sum misses by rounding; the pick is chunk
  // 1's last row with mass, not chunk 2's first row.
  const Matrix<float> x = test::zero_mass_chunk_rows();
  const Matrix<float> c(1, 1, std::vector<float>{0.0f});
  auto be = make_cpu_backend(2);
  auto data = be->upload(x.view());
  be->reset_min_distances(*data, c.view());
  const double t = 1.0 + std::ldexp(1.0, -50);
  EXPECT_EQ(be->sample_by_min_distance(*data, std::vector<double>{t}), (std::vector<std::int64_t>{4095}));
}

TEST(CpuBackend, OversampleMatchesNaiveAndIsDeterministic) {
  const i64 n = 7000;
  const Matrix<float> x = small_integers(n, 4, 41u, 4);
  const Matrix<float> c = small_integers(3, 4, 42u, 4);
  const std::vector<float> w = random_weights(n, 43u);
  auto be = make_cpu_backend(2);
  auto data = be->upload(x.view(), w);
  const double phi = be->reset_min_distances(*data, c.view());
  const NaiveAssign ref = naive_assign(x, c);
  const double factor = 300.0 / phi;
  std::vector<std::int64_t> want;
  for (i64 i = 0; i < n; ++i)
    if (counter_uniform(77u, static_cast<std::uint64_t>(i)) < factor * w[i] * ref.sq[i]) want.push_back(i);
  const auto got = be->oversample(*data, factor, 77u);
  EXPECT_EQ(got, want);
  EXPECT_GT(got.size(), 100u);
  EXPECT_EQ(be->oversample(*data, factor, 77u), got);
  EXPECT_EQ(make_cpu_backend(1)->oversample(*data, factor, 77u), got);
  EXPECT_NE(be->oversample(*data, factor, 78u), got);
}

TEST(CpuBackend, MinibatchLeavesUntouchedCentres) {
  const Matrix<float> x = small_integers(100, 3, 51u);
  Matrix<float> c(3, 3, std::vector<float>{0, 0, 0, 1000, 1000, 1000, -1000, -1000, -1000});
  const Matrix<float> before = c;
  auto be = make_cpu_backend(2);
  auto data = be->upload(x.view());
  std::vector<double> counts = {5.0, 7.0, 9.0};
  std::vector<std::int64_t> batch = {0, 1, 2, 3, 2};
  double inertia = 0.0;
  double sum[3] = {0, 0, 0};
  for (const auto r : batch) {
    inertia += naive_norm(x.row(r), 3);
    for (int j = 0; j < 3; ++j) sum[j] += x(r, j);
  }
  EXPECT_EQ(be->minibatch_step(*data, batch, c.view(), counts), inertia);
  EXPECT_EQ(counts, (std::vector<double>{10.0, 7.0, 9.0}));
  for (int j = 0; j < 3; ++j) EXPECT_FLOAT_EQ(c(0, j), static_cast<float>(sum[j] / 10.0));
  for (i64 e = 3; e < 9; ++e) EXPECT_EQ(c.values()[e], before.values()[e]);
}

// ---- silhouette support ------------------------------------------------------------------------

Matrix<double> naive_cluster_sums(const Matrix<float>& x, std::span<const float> w,
                                  std::span<const std::int32_t> labels, int k, i64 begin, i64 count) {
  Matrix<double> out(count, k, 0.0);
  for (i64 i = 0; i < count; ++i)
    for (i64 p = 0; p < x.rows(); ++p)
      out(i, labels[p]) += weight_of(w, p) * std::sqrt(naive_sq(x.row(begin + i), x.row(p), x.cols()));
  return out;
}

TEST(CpuBackend, ClusterDistanceSumsMatchNaive) {
  struct Case { i64 n, d; int k; bool weighted; float offset; };
  for (const Case cs : {Case{3000, 8, 5, false, 0.0f}, Case{2100, 33, 7, true, 0.0f},
                        Case{1500, 4, 3, false, 100.0f}}) {
    Matrix<float> x = blobs(cs.n, cs.d, cs.k, 61u);
    for (auto& v : x.values()) v += cs.offset;  // far from the origin: centring matters
    // A few exact duplicates: their distance must be exactly 0, like a row's to itself.
    std::copy(x.row(5), x.row(5) + cs.d, x.row(6));
    const std::vector<float> w = cs.weighted ? random_weights(cs.n, 62u) : std::vector<float>{};
    const Matrix<float> c = first_rows_jittered(x, cs.k, 63u);
    auto be = make_cpu_backend(2);
    auto data = be->upload(x.view(), w);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(cs.n));
    be->assign(*data, c.view(), labels, {});
    for (const auto& [begin, count] : {std::pair<i64, i64>{0, 70}, std::pair<i64, i64>{cs.n - 130, 130}}) {
      const Matrix<double> got = be->cluster_distance_sums(*data, labels, cs.k, begin, count);
      const Matrix<double> want = naive_cluster_sums(x, w, labels, cs.k, begin, count);
      ASSERT_EQ(got.rows(), count);
      ASSERT_EQ(got.cols(), cs.k);
      for (i64 i = 0; i < count; ++i)
        for (int l = 0; l < cs.k; ++l)
          EXPECT_NEAR(got(i, l), want(i, l), 1e-5 * std::max(1.0, want(i, l)))
              << "d=" << cs.d << " row " << begin + i << " cluster " << l;
    }
  }
}

TEST(CpuBackend, ClusterDistanceSumsSelfAndDuplicatesAreExactlyZero) {
  // Row 0 is alone in cluster 0; rows 1-3 are identical and form cluster 1.
  Matrix<float> x = random_matrix(50, 6, 71u);
  x.values()[0] = 12345.678f;  // a large norm: the expansion alone would leave residue
  for (int r = 2; r <= 3; ++r) std::copy(x.row(1), x.row(1) + 6, x.row(r));
  std::vector<std::int32_t> labels(50, 2);
  labels[0] = 0;
  labels[1] = labels[2] = labels[3] = 1;
  auto be = make_cpu_backend(2);
  auto data = be->upload(x.view());
  const Matrix<double> s = be->cluster_distance_sums(*data, labels, 3, 0, 4);
  EXPECT_EQ(s(0, 0), 0.0);
  for (int r = 1; r <= 3; ++r) EXPECT_EQ(s(r, 1), 0.0) << "row " << r;
}

TEST(CpuBackend, SilhouetteFromSumsMatchesNaiveOnStandardisedData) {
  const i64 n = 2000, d = 10;
  const int k = 6;
  Matrix<float> x = blobs(n, d, k, 81u);
  // Standardise columns, as segforge-prep does.
  for (i64 j = 0; j < d; ++j) {
    double m = 0, v = 0;
    for (i64 i = 0; i < n; ++i) m += x(i, j);
    m /= n;
    for (i64 i = 0; i < n; ++i) v += (x(i, j) - m) * (x(i, j) - m);
    const double sd = std::sqrt(v / n);
    for (i64 i = 0; i < n; ++i) x(i, j) = static_cast<float>((x(i, j) - m) / sd);
  }
  auto be = make_cpu_backend(2);
  auto data = be->upload(x.view());
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  be->assign(*data, first_rows_jittered(x, k, 82u).view(), labels, {});
  std::vector<double> sizes(k, 0.0);
  for (const auto l : labels) sizes[l] += 1;
  auto silhouette = [&](const Matrix<double>& sums) {
    double total = 0.0;
    for (i64 i = 0; i < n; ++i) {
      const int own = labels[i];
      if (sizes[own] <= 1) continue;
      const double a = sums(i, own) / (sizes[own] - 1);
      double b = std::numeric_limits<double>::infinity();
      for (int l = 0; l < k; ++l)
        if (l != own && sizes[l] > 0) b = std::min(b, sums(i, l) / sizes[l]);
      total += (b - a) / std::max(a, b);
    }
    return total / n;
  };
  const double got = silhouette(be->cluster_distance_sums(*data, labels, k, 0, n));
  const double want = silhouette(naive_cluster_sums(x, {}, labels, k, 0, n));
  EXPECT_NEAR(got, want, 1e-6);
  EXPECT_GE(got, -1.0);
  EXPECT_LE(got, 1.0);
}

// ---- info and edge shapes -----------------------------------------------------------------------

TEST(CpuBackend, Info) {
  const BackendInfo info = make_cpu_backend(2)->info();
  EXPECT_EQ(info.name, "cpu");
  EXPECT_NE(info.device.find("2 threads"), std::string::npos) << info.device;
  EXPECT_NE(make_cpu_backend(1)->info().device.find("1 thread"), std::string::npos);
  EXPECT_FALSE(make_cpu_backend(0)->info().device.empty());
}

TEST(CpuBackend, GatherReturnsRowsInOrder) {
  const Matrix<float> x = random_matrix(100, 7, 91u);
  auto be = make_cpu_backend(2);
  auto data = be->upload(x.view());
  const std::vector<std::int64_t> rows = {99, 0, 42, 42};
  const Matrix<float> g = be->gather(*data, rows);
  ASSERT_EQ(g.rows(), 4);
  ASSERT_EQ(g.cols(), 7);
  for (i64 r = 0; r < 4; ++r)
    for (i64 j = 0; j < 7; ++j) EXPECT_EQ(g(r, j), x(rows[r], j));
}

TEST(CpuBackend, TinyDatasetsAndSingleCentre) {
  for (const i64 n : {1, 2, 31, 33, 257}) {
    const Matrix<float> x = random_matrix(n, 3, 101u + static_cast<std::uint32_t>(n));
    const Matrix<float> c(1, 3, std::vector<float>{0.5f, -0.5f, 0.0f});
    auto be = make_cpu_backend(2);
    auto data = be->upload(x.view());
    const AccumulateResult r = be->assign_accumulate(*data, c.view());
    EXPECT_EQ(r.counts[0], static_cast<double>(n));
    EXPECT_EQ(r.n_changed, n);
    double inertia = 0.0;
    for (i64 i = 0; i < n; ++i) inertia += naive_sq(x.row(i), c.row(0), 3);
    expect_rel_near(r.inertia, inertia, 1e-5, "inertia");
  }
}

}  // namespace
}  // namespace segforge
