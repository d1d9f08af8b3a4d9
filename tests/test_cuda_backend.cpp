// The CUDA backend against the CPU backend (itself tested against naive references in
// test_cpu_backend.cpp): every Backend operation on random data of several shapes, and the
// drivers end to end, within the tolerances of ../shared/DESIGN.md (labels ARI >= 0.999, inertia
// relative difference <= 1e-5, silhouette within 1e-5); and bit-identical reruns on the GPU.
//
// Only the public API is used, so this suite builds without CUDA too; every test skips (with the
// reason) when make_cuda_backend() finds no device.

#include <gtest/gtest.h>

#include "segforge/dbscan.hpp"
#include "segforge/agglomerative.hpp"
#include "segforge/birch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/matrix.hpp"
#include "segforge/metrics.hpp"
#include "test_support.hpp"

namespace segforge {
namespace {

using i64 = std::int64_t;

Matrix<float> blobs(i64 rows, i64 cols, int k, std::uint32_t seed, float separation = 4.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, k - 1);
  Matrix<float> centres(k, cols);
  for (auto& v : centres.values()) v = separation * normal(gen);
  Matrix<float> m(rows, cols);
  for (i64 i = 0; i < rows; ++i) {
    const int c = pick(gen);
    for (i64 j = 0; j < cols; ++j) m(i, j) = centres(c, j) + normal(gen);
  }
  return m;
}

std::vector<float> random_weights(i64 n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(0.25f, 3.0f);
  std::vector<float> w(static_cast<std::size_t>(n));
  for (auto& v : w) v = u(gen);
  return w;
}

/// k rows of x spread over the data, jittered: centres start near data, as k-means++ would.
Matrix<float> start_centres(const Matrix<float>& x, i64 k, std::uint32_t seed) {
  Matrix<float> c(k, x.cols());
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  for (i64 l = 0; l < k; ++l) {
    const i64 r = (l * 7919) % x.rows();
    for (i64 j = 0; j < x.cols(); ++j) c(l, j) = x(r, j) + normal(gen);
  }
  return c;
}

double sq_dist(const float* a, const float* b, i64 d) {
  double s = 0.0;
  for (i64 j = 0; j < d; ++j) {
    const double v = static_cast<double>(a[j]) - b[j];
    s += v * v;
  }
  return s;
}

void expect_rel(double gpu, double cpu, double rel, const std::string& what) {
  EXPECT_NEAR(gpu, cpu, rel * std::max(1.0, std::abs(cpu))) << what;
}

void expect_rel_all(const std::vector<double>& gpu, const std::vector<double>& cpu, double rel,
                    const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  double scale = 1.0;
  for (const double v : cpu) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < cpu.size(); ++i)
    ASSERT_NEAR(gpu[i], cpu[i], rel * scale) << what << " [" << i << "]";
}

template <class T, class A, class B>
void expect_same_bits(const std::vector<T, A>& a, const std::vector<T, B>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(T)), 0) << what << " [" << i << "]";
}

/// Labels from both backends are equal except at near-ties: where they differ, the two centres
/// must be equally near within float32 rounding.
void expect_labels_match(const Matrix<float>& x, const Matrix<float>& c,
                         const std::vector<std::int32_t>& gpu, const std::vector<std::int32_t>& cpu) {
  ASSERT_EQ(gpu.size(), cpu.size());
  i64 differ = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    if (gpu[i] == cpu[i]) continue;
    ++differ;
    const i64 r = static_cast<i64>(i), d = x.cols();
    const double dg = sq_dist(x.row(r), c.row(gpu[i]), d);
    const double dc = sq_dist(x.row(r), c.row(cpu[i]), d);
    EXPECT_NEAR(dg, dc, 1e-5 * (1.0 + dc)) << "row " << i << ": labels " << gpu[i] << " vs " << cpu[i];
  }
  EXPECT_LE(differ, std::max<i64>(1, static_cast<i64>(cpu.size()) / 1000));
}

/// The CUDA backend, or a skip with the reason.
#define REQUIRE_CUDA(backend)                                             \
  std::string why_not_;                                                   \
  std::unique_ptr<Backend> backend = make_cuda_backend(&why_not_);        \
  if (!backend) GTEST_SKIP() << "no CUDA backend: " << why_not_

// ---- factory and info --------------------------------------------------------------------------

TEST(CudaBackend, FactoryAgreesWithAvailability) {
  std::string why_available, why_backend;
  const bool available = cuda_available(&why_available);
  std::unique_ptr<Backend> b = make_cuda_backend(&why_backend);
  if (!available) {
    EXPECT_EQ(b, nullptr);
    EXPECT_FALSE(why_available.empty());
    EXPECT_FALSE(why_backend.empty());
  }
  if (b) {
    EXPECT_EQ(b->info().name, "cuda");
    EXPECT_NE(b->info().device.find("sm_"), std::string::npos) << b->info().device;
  }
}

TEST(CudaBackend, AutoFallsBackToTheCpuWithANote) {
  std::string note;
  std::unique_ptr<Backend> b = make_backend(DeviceChoice::auto_select, 1, &note);
  ASSERT_NE(b, nullptr);
  if (b->info().name == "cpu") EXPECT_FALSE(note.empty());
}

// ---- every operation against the CPU backend -------------------------------------------------

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

class CudaVsCpu : public testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    std::string why_not;
    gpu_ = make_cuda_backend(&why_not);
    if (!gpu_) GTEST_SKIP() << "no CUDA backend: " << why_not;
    const Shape& s = GetParam();
    x_ = blobs(s.n, s.d, static_cast<int>(std::max<i64>(s.k / 2, 2)), 4321u + static_cast<std::uint32_t>(s.d));
    if (s.weighted) w_ = random_weights(s.n, 17u);
    c_ = start_centres(x_, s.k, 5u);
    cpu_ = make_cpu_backend(2);
    gdata_ = gpu_->upload(x_.view(), w_);
    cdata_ = cpu_->upload(x_.view(), w_);
  }

  Matrix<float> x_;
  std::vector<float> w_;
  Matrix<float> c_;
  std::unique_ptr<Backend> gpu_, cpu_;
  std::unique_ptr<Dataset> gdata_, cdata_;
};

TEST_P(CudaVsCpu, DatasetShapeAndGather) {
  EXPECT_EQ(gdata_->n_samples(), x_.rows());
  EXPECT_EQ(gdata_->n_features(), x_.cols());
  EXPECT_EQ(gdata_->weighted(), !w_.empty());
  const std::vector<i64> rows = {x_.rows() - 1, 0, x_.rows() / 2, 0};
  const Matrix<float> g = gpu_->gather(*gdata_, rows);
  ASSERT_EQ(g.rows(), 4);
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (i64 j = 0; j < x_.cols(); ++j) EXPECT_EQ(g(static_cast<i64>(r), j), x_(rows[r], j));
}

TEST_P(CudaVsCpu, ColumnStats) {
  const ColumnStats g = gpu_->column_stats(*gdata_);
  const ColumnStats c = cpu_->column_stats(*cdata_);
  expect_rel_all(g.mean, c.mean, 1e-12, "mean");
  expect_rel_all(g.variance, c.variance, 1e-12, "variance");
}

TEST_P(CudaVsCpu, Assign) {
  const i64 n = x_.rows();
  std::vector<std::int32_t> gl(n), cl(n);
  std::vector<float> gd(n), cd(n);
  gpu_->assign(*gdata_, c_.view(), gl, gd);
  cpu_->assign(*cdata_, c_.view(), cl, cd);
  expect_labels_match(x_, c_, gl, cl);
  for (i64 i = 0; i < n; ++i)
    ASSERT_NEAR(gd[i], cd[i], 1e-5 * (1.0 + cd[i])) << "row " << i;
  std::vector<std::int32_t> only(n);
  gpu_->assign(*gdata_, c_.view(), only, {});
  EXPECT_EQ(only, gl);
}

TEST_P(CudaVsCpu, AssignAccumulate) {
  const AccumulateResult g = gpu_->assign_accumulate(*gdata_, c_.view());
  const AccumulateResult c = cpu_->assign_accumulate(*cdata_, c_.view());
  EXPECT_EQ(g.n_changed, x_.rows()) << "every label changes on the first pass";
  expect_rel_all(g.sums, c.sums, 1e-5, "sums");
  expect_rel_all(g.counts, c.counts, 1e-5, "counts");
  expect_rel(g.inertia, c.inertia, 1e-5, "inertia");
  // A second pass from moved centres: the changed count follows the labels.
  Matrix<float> moved = c_;
  for (auto& v : moved.values()) v += 0.3f;
  const AccumulateResult g2 = gpu_->assign_accumulate(*gdata_, moved.view());
  const AccumulateResult c2 = cpu_->assign_accumulate(*cdata_, moved.view());
  EXPECT_NEAR(static_cast<double>(g2.n_changed), static_cast<double>(c2.n_changed),
              std::max(1.0, 1e-3 * static_cast<double>(x_.rows())));
  expect_rel(g2.inertia, c2.inertia, 1e-5, "second inertia");
  // Unchanged centres: nothing changes.
  EXPECT_EQ(gpu_->assign_accumulate(*gdata_, moved.view()).n_changed, 0);
}

TEST_P(CudaVsCpu, BitIdenticalReruns) {
  std::unique_ptr<Dataset> other = gpu_->upload(x_.view(), w_);
  const AccumulateResult a = gpu_->assign_accumulate(*gdata_, c_.view());
  const AccumulateResult b = gpu_->assign_accumulate(*other, c_.view());
  expect_same_bits(a.sums, b.sums, "sums");
  expect_same_bits(a.counts, b.counts, "counts");
  EXPECT_EQ(std::memcmp(&a.inertia, &b.inertia, sizeof(double)), 0);
  const double pa = gpu_->reset_min_distances(*gdata_, c_.view());
  const double pb = gpu_->reset_min_distances(*other, c_.view());
  EXPECT_EQ(std::memcmp(&pa, &pb, sizeof(double)), 0);
  const LabelStats la = gpu_->label_stats(*gdata_, std::vector<std::int32_t>(x_.rows(), 0), 1, {});
  const LabelStats lb = gpu_->label_stats(*other, std::vector<std::int32_t>(x_.rows(), 0), 1, {});
  expect_same_bits(la.sums, lb.sums, "label sums");
}

TEST_P(CudaVsCpu, MinDistancesPotentialsAndSampling) {
  const Matrix<float> first = start_centres(x_, 1, 8u);
  expect_rel(gpu_->reset_min_distances(*gdata_, first.view()),
             cpu_->reset_min_distances(*cdata_, first.view()), 1e-5, "reset φ");
  const Matrix<float> more = start_centres(x_, 3, 9u);
  const double g_phi = gpu_->update_min_distances(*gdata_, more.view());
  const double c_phi = cpu_->update_min_distances(*cdata_, more.view());
  expect_rel(g_phi, c_phi, 1e-5, "update φ");
  expect_rel(gpu_->update_min_distances(*gdata_, Matrix<float>(0, x_.cols()).view()), g_phi, 0.0,
             "no centres: the current φ");
  const Matrix<float> trials = start_centres(x_, 5, 10u);
  expect_rel_all(gpu_->candidate_potentials(*gdata_, trials.view()),
                 cpu_->candidate_potentials(*cdata_, trials.view()), 1e-5, "potentials");

  // D²-sampling: each index must be where the cumulative mass crosses its target.
  std::vector<float> dm(static_cast<std::size_t>(x_.rows()));
  {
    std::vector<std::int32_t> unused(x_.rows());
    Matrix<float> all(4, x_.cols());
    std::copy(first.row(0), first.row(0) + x_.cols(), all.row(0));
    for (i64 l = 0; l < 3; ++l) std::copy(more.row(l), more.row(l) + x_.cols(), all.row(l + 1));
    cpu_->assign(*cdata_, all.view(), unused, dm);
  }
  std::vector<double> cum(dm.size());
  double running = 0.0;
  for (std::size_t i = 0; i < dm.size(); ++i) {
    running += (w_.empty() ? 1.0 : w_[i]) * static_cast<double>(dm[i]);
    cum[i] = running;
  }
  std::vector<double> targets;
  for (int t = 0; t < 16; ++t) targets.push_back(g_phi * (t + 0.37) / 16.5);
  targets.push_back(g_phi * 2.0);  // past φ: clipped to the last row with mass
  const std::vector<i64> g_ids = gpu_->sample_by_min_distance(*gdata_, targets);
  const std::vector<i64> c_ids = cpu_->sample_by_min_distance(*cdata_, targets);
  ASSERT_EQ(g_ids.size(), targets.size());
  for (std::size_t t = 0; t + 1 < targets.size(); ++t) {
    const i64 i = g_ids[t];
    const double eps = 1e-9 * g_phi;
    EXPECT_GT(cum[i], targets[t] - eps) << "target " << t;
    if (i > 0) EXPECT_LE(cum[i - 1], targets[t] + eps) << "target " << t;
    EXPECT_LE(std::abs(i - c_ids[t]), 1) << "target " << t;
  }
  EXPECT_EQ(g_ids.back(), c_ids.back());

  // k-means|| oversampling: the same Bernoulli draws on the same d(x).
  const double factor = 2.0 * 8.0 / g_phi;
  const std::vector<i64> g_over = gpu_->oversample(*gdata_, factor, 77u);
  const std::vector<i64> c_over = cpu_->oversample(*cdata_, factor, 77u);
  EXPECT_TRUE(std::is_sorted(g_over.begin(), g_over.end()));
  std::vector<i64> sym;
  std::set_symmetric_difference(g_over.begin(), g_over.end(), c_over.begin(), c_over.end(),
                                std::back_inserter(sym));
  EXPECT_LE(sym.size(), std::max<std::size_t>(2, c_over.size() / 1000));
  EXPECT_EQ(gpu_->oversample(*gdata_, factor, 77u), g_over) << "rerun";
}

TEST_P(CudaVsCpu, MinibatchStep) {
  std::mt19937 gen(3u);
  std::uniform_int_distribution<i64> pick(0, x_.rows() - 1);
  std::vector<i64> batch(1500);
  for (auto& r : batch) r = pick(gen);
  Matrix<float> gc = c_, cc = c_;
  std::vector<double> gn(c_.rows(), 2.0), cn(c_.rows(), 2.0);
  gn[0] = cn[0] = 0.0;
  const double gi = gpu_->minibatch_step(*gdata_, batch, gc.view(), gn);
  const double ci = cpu_->minibatch_step(*cdata_, batch, cc.view(), cn);
  expect_rel(gi, ci, 1e-5, "batch inertia");
  expect_rel_all(gn, cn, 1e-9, "counts");
  for (i64 e = 0; e < gc.size(); ++e)
    ASSERT_NEAR(gc.values()[e], cc.values()[e], 1e-5 * (1.0 + std::abs(cc.values()[e]))) << e;
}

TEST_P(CudaVsCpu, LabelStats) {
  const i64 n = x_.rows();
  std::vector<std::int32_t> labels(n);
  std::vector<float> unused;
  cpu_->assign(*cdata_, c_.view(), labels, unused);
  const int k = static_cast<int>(c_.rows());
  for (const bool with_centres : {false, true}) {
    const MatrixView<const float> c = with_centres ? c_.view() : MatrixView<const float>{nullptr, 0, x_.cols()};
    const LabelStats g = gpu_->label_stats(*gdata_, labels, k, c);
    const LabelStats s = cpu_->label_stats(*cdata_, labels, k, c);
    expect_rel_all(g.sums, s.sums, 1e-10, "sums");
    expect_rel_all(g.counts, s.counts, 1e-12, "counts");
    expect_rel_all(g.dist_sums, s.dist_sums, 1e-10, "dist_sums");
    expect_rel_all(g.sq_dist_sums, s.sq_dist_sums, 1e-10, "sq_dist_sums");
  }
}

TEST_P(CudaVsCpu, ClusterDistanceSums) {
  const i64 n = x_.rows();
  std::vector<std::int32_t> labels(n);
  std::vector<float> unused;
  cpu_->assign(*cdata_, c_.view(), labels, unused);
  const int k = static_cast<int>(c_.rows());
  const i64 begin = n / 3, count = std::min<i64>(300, n - begin);
  const Matrix<double> g = gpu_->cluster_distance_sums(*gdata_, labels, k, begin, count);
  const Matrix<double> c = cpu_->cluster_distance_sums(*cdata_, labels, k, begin, count);
  ASSERT_EQ(g.rows(), count);
  ASSERT_EQ(g.cols(), k);
  for (i64 e = 0; e < g.size(); ++e)
    ASSERT_NEAR(g.values()[e], c.values()[e], 1e-5 * (1.0 + std::abs(c.values()[e]))) << e;
}

TEST_P(CudaVsCpu, DistanceTile) {
  const i64 n = x_.rows();
  const i64 a0 = n / 4, na = std::min<i64>(37, n - a0), b0 = 1, nb = std::min<i64>(301, n - 1);
  for (const bool squared : {true, false}) {
    const Matrix<float> g = gpu_->distance_tile(*gdata_, a0, na, *gdata_, b0, nb, squared);
    const Matrix<float> c = cpu_->distance_tile(*cdata_, a0, na, *cdata_, b0, nb, squared);
    ASSERT_EQ(g.rows(), na);
    ASSERT_EQ(g.cols(), nb);
    for (i64 r = 0; r < na; ++r)
      for (i64 p = 0; p < nb; ++p) {
        // The float32 expansion: its error is relative to the norms, not to the distance (and
        // the square root of an error e near 0 is √e).
        double scale = 1.0;
        for (i64 j = 0; j < x_.cols(); ++j)
          scale += x_(a0 + r, j) * x_(a0 + r, j) + x_(b0 + p, j) * x_(b0 + p, j);
        const double tol = squared ? 1e-5 * scale : std::sqrt(1e-5 * scale);
        ASSERT_NEAR(g(r, p), c(r, p), tol) << r << "," << p;
      }
  }
}

// N not a multiple of the 1024-row sub-chunk; K not a multiple of 8 or 32; K·D past the shared
// memory budget (centres read through the cache); weighted and unweighted.
// DBSCAN's eps ops (neighbours.cuh) against the CPU backend's: the same core rows, clusters,
// borders and distances, bit for bit, and predict on the training rows.
TEST_P(CudaVsCpu, Dbscan) {
  const Shape& s = GetParam();
  if (s.n < 10) GTEST_SKIP() << "too few rows for a k-distance curve";
  const int min_samples = 5;
  const double eps = suggest_eps(*cpu_, *cdata_, min_samples, 500, 3).eps;
  const DbscanResult g = fit_dbscan(*gpu_, *gdata_, DbscanParams{eps, static_cast<double>(min_samples)});
  const DbscanResult c = fit_dbscan(*cpu_, *cdata_, DbscanParams{eps, static_cast<double>(min_samples)});
  EXPECT_EQ(g.core, c.core);
  EXPECT_EQ(g.labels, c.labels);
  ASSERT_EQ(g.distances.size(), c.distances.size());
  EXPECT_EQ(0, std::memcmp(g.distances.data(), c.distances.data(), g.distances.size() * sizeof(float)));
  std::vector<i64> core_rows;
  std::vector<std::int32_t> core_labels;
  for (i64 i = 0; i < x_.rows(); ++i)
    if (c.core[i]) core_rows.push_back(i), core_labels.push_back(c.labels[i]);
  if (core_rows.empty()) return;
  const Matrix<float> cores = cpu_->gather(*cdata_, core_rows);
  auto gcore = gpu_->upload(cores.view());
  const DbscanAssignment p = predict_dbscan(*gpu_, *gdata_, *gcore, core_labels, eps);
  EXPECT_EQ(p.labels, c.labels);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaVsCpu,
                         testing::Values(Shape{1000, 2, 3, false}, Shape{4099, 8, 7, true},
                                         Shape{3001, 33, 45, false}, Shape{2500, 5, 300, true},
                                         Shape{2100, 40, 600, false}, Shape{1, 3, 1, false},
                                         Shape{5000, 1, 2, true}),
                         shape_name);

// ---- shapes the small suite does not reach ----------------------------------------------------

/// The ops of one Lloyd iteration, k-means++ and the metrics on both backends.
void expect_backends_agree(Backend& gpu, Backend& cpu, const Matrix<float>& x, const Matrix<float>& c,
                           const std::vector<float>& w) {
  auto gd = gpu.upload(x.view(), w);
  auto cd = cpu.upload(x.view(), w);
  const i64 n = x.rows();
  const AccumulateResult g = gpu.assign_accumulate(*gd, c.view());
  const AccumulateResult s = cpu.assign_accumulate(*cd, c.view());
  expect_rel_all(g.sums, s.sums, 1e-5, "sums");
  expect_rel_all(g.counts, s.counts, 1e-5, "counts");
  expect_rel(g.inertia, s.inertia, 1e-5, "inertia");
  auto gd2 = gpu.upload(x.view(), w);
  const AccumulateResult g2 = gpu.assign_accumulate(*gd2, c.view());
  expect_same_bits(g.sums, g2.sums, "rerun sums");
  EXPECT_EQ(std::memcmp(&g.inertia, &g2.inertia, sizeof(double)), 0) << "rerun inertia";

  std::vector<std::int32_t> gl(n), cl(n);
  std::vector<float> gdist(n), cdist(n);
  gpu.assign(*gd, c.view(), gl, gdist);
  cpu.assign(*cd, c.view(), cl, cdist);
  expect_labels_match(x, c, gl, cl);
  for (i64 i = 0; i < n; ++i) ASSERT_NEAR(gdist[i], cdist[i], 1e-5 * (1.0 + cdist[i])) << "row " << i;

  const int k = static_cast<int>(c.rows());
  const LabelStats gs = gpu.label_stats(*gd, cl, k, c.view());
  const LabelStats cs = cpu.label_stats(*cd, cl, k, c.view());
  expect_rel_all(gs.sums, cs.sums, 1e-10, "label sums");
  expect_rel_all(gs.sq_dist_sums, cs.sq_dist_sums, 1e-5, "label sq_dist_sums");

  const Matrix<float> first = start_centres(x, 1, 8u);
  expect_rel(gpu.reset_min_distances(*gd, first.view()), cpu.reset_min_distances(*cd, first.view()), 1e-5,
             "reset φ");
  const Matrix<float> trials = start_centres(x, 3, 10u);
  expect_rel_all(gpu.candidate_potentials(*gd, trials.view()), cpu.candidate_potentials(*cd, trials.view()),
                 1e-5, "potentials");
  const ColumnStats gc = gpu.column_stats(*gd);
  const ColumnStats cc = cpu.column_stats(*cd);
  expect_rel_all(gc.mean, cc.mean, 1e-12, "mean");
}

// A pass block holds several 1,024-row sub-chunks once the per-block partials [k x (d + 1)]
// would pass their 64 MiB budget: at K = 1024, D = 128 that is 63 blocks, so 150,001 rows (147
// sub-chunks) run 49 blocks of 3 sub-chunks, the last one partial — the path of every 10M-row
// benchmark shape, which the small shapes above never take.
TEST(CudaLargeShapes, BlocksOfSeveralSubChunks) {
  REQUIRE_CUDA(gpu);
  std::unique_ptr<Backend> cpu = make_cpu_backend(0);
  const Matrix<float> x = blobs(150001, 128, 40, 91u, 3.0f);
  const Matrix<float> c = start_centres(x, 1024, 92u);
  expect_backends_agree(*gpu, *cpu, x, c, random_weights(x.rows(), 93u));
}

// (Fewer than 256 blocks in the budget: the assign_accumulate above takes the split pass, whose
// label-given part runs those blocks of several sub-chunks.)
//
// The register pass's own blocks of several sub-chunks: at K = 500, D = 64, 258 blocks fit the
// budget (not split), so 300,001 rows (293 sub-chunks) run 147 blocks of 2, each sub-chunk
// staging the centres again in 2 shared-memory tiles (376 and 124 centres).
TEST(CudaLargeShapes, RegisterPathBlocksOfSeveralSubChunks) {
  REQUIRE_CUDA(gpu);
  std::unique_ptr<Backend> cpu = make_cpu_backend(0);
  const Matrix<float> x = blobs(300001, 64, 40, 96u, 3.0f);
  const Matrix<float> c = start_centres(x, 500, 97u);
  expect_backends_agree(*gpu, *cpu, x, c, random_weights(x.rows(), 98u));
}

// The split pass (K = 1024, D = 64: 126 blocks in the budget): the nearest centres on a full grid,
// then the label-given sums; counts exactly those of assign's labels, the changed labels counted
// and kept, and the totals bit-identical on a rerun.
TEST(CudaLargeShapes, SplitPassAtLargeKD) {
  REQUIRE_CUDA(gpu);
  std::unique_ptr<Backend> cpu = make_cpu_backend(0);
  const Matrix<float> x = blobs(150001, 64, 40, 99u, 3.0f);
  const Matrix<float> c = start_centres(x, 1024, 100u);
  expect_backends_agree(*gpu, *cpu, x, c, random_weights(x.rows(), 101u));
  auto gd = gpu->upload(x.view());
  const AccumulateResult a = gpu->assign_accumulate(*gd, c.view());
  EXPECT_EQ(a.n_changed, x.rows());
  std::vector<std::int32_t> labels(x.rows());
  std::vector<float> dist(x.rows());
  gpu->assign(*gd, c.view(), labels, dist);
  std::vector<double> counts(1024, 0.0);
  double inertia = 0.0;
  for (i64 i = 0; i < x.rows(); ++i) counts[labels[i]] += 1.0, inertia += dist[i];
  EXPECT_EQ(a.counts, counts);
  expect_rel(a.inertia, inertia, 1e-10, "inertia");
  const AccumulateResult b = gpu->assign_accumulate(*gd, c.view());
  EXPECT_EQ(b.n_changed, 0);
  expect_same_bits(a.sums, b.sums, "rerun sums");
  EXPECT_EQ(std::memcmp(&a.inertia, &b.inertia, sizeof(double)), 0) << "rerun inertia";
  Matrix<float> moved = c;
  for (i64 l = 0; l < moved.rows(); ++l)
    for (i64 j = 0; j < x.cols(); ++j) moved(l, j) += 0.3f * static_cast<float>(l % 3);
  const AccumulateResult m = gpu->assign_accumulate(*gd, moved.view());
  std::vector<std::int32_t> moved_labels(x.rows());
  gpu->assign(*gd, moved.view(), moved_labels, {});
  i64 changed = 0;
  for (i64 i = 0; i < x.rows(); ++i) changed += moved_labels[i] != labels[i];
  EXPECT_GE(changed, 1);
  EXPECT_EQ(m.n_changed, changed);
}

// D > 1024: more features than threads in a block (column sums, norms, gathers), with the centres
// in shared memory (K = 5) and read through the cache (K = 20: 88 KB of centres).
TEST(CudaLargeShapes, MoreFeaturesThanThreads) {
  REQUIRE_CUDA(gpu);
  std::unique_ptr<Backend> cpu = make_cpu_backend(0);
  const Matrix<float> x = blobs(3001, 1100, 6, 94u, 2.0f);
  for (const i64 k : {5, 20}) {
    SCOPED_TRACE("k = " + std::to_string(k));
    expect_backends_agree(*gpu, *cpu, x, start_centres(x, k, 95u), {});
  }
  auto gd = gpu->upload(x.view());
  const std::vector<i64> rows = {3000, 0, 1500};
  const Matrix<float> g = gpu->gather(*gd, rows);
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (i64 j = 0; j < x.cols(); ++j) ASSERT_EQ(g(static_cast<i64>(r), j), x(rows[r], j));
}

// D²-sampling adds masses in the CPU backend's 2,048-row chunks and order, and a target that the
// in-chunk running sum misses by rounding takes the chunk's last row with mass, never a row of none
// (test::zero_mass_chunk_rows).
TEST(CudaLargeShapes, SamplingNeverPicksARowOfNoMass) {
  REQUIRE_CUDA(gpu);
  const Matrix<float> x = test::zero_mass_chunk_rows();
  const i64 n = x.rows();
  const Matrix<float> c(1, 1, std::vector<float>{0.0f});
  auto gd = gpu->upload(x.view());
  EXPECT_EQ(gpu->reset_min_distances(*gd, c.view()), 1145.0);  // 1 + 2^-49 + 1144, rounded
  const std::vector<double> targets = {0.5, 1.0 + std::ldexp(1.0, -50), 1.5, 1e9};
  const std::vector<i64> want = {0, 4095, 5000, n - 1};
  EXPECT_EQ(gpu->sample_by_min_distance(*gd, targets), want);
  // The CPU backend gives the same rows (its chunks and order are the GPU's).
  std::unique_ptr<Backend> cpu = make_cpu_backend(2);
  auto cd = cpu->upload(x.view());
  cpu->reset_min_distances(*cd, c.view());
  EXPECT_EQ(cpu->sample_by_min_distance(*cd, targets), want);
}

// Data larger than the device: refused before any row is read, with sizes that make sense.
TEST(CudaLargeShapes, OversizedUploadSaysHowMuch) {
  REQUIRE_CUDA(gpu);
  const float one = 0.0f;
  const MatrixView<const float> huge{&one, std::int64_t{1} << 40, 64};
  try {
    (void)gpu->upload(huge, {});
    FAIL() << "an upload of 2^40 rows was accepted";
  } catch (const RuntimeFailure& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("TiB on the device"), std::string::npos) << what;
    EXPECT_EQ(what.find(" 0.00 "), std::string::npos) << what;
    EXPECT_NE(what.find("--device cpu"), std::string::npos) << what;
  }
}

// ---- the register kernels against the arithmetic they promise --------------------------------

/// The distance arithmetic of both backends, on the host: ||v||² summed in double and rounded once
/// (float products are exact in double, so fusing cannot change it); the dot by fmaf over j
/// ascending from +0; max(0, fma(−2, dot, ||x||²) + ||c||²).
float ref_sq_norm(const float* v, i64 d) {
  double s = 0.0;
  for (i64 j = 0; j < d; ++j) s += static_cast<double>(v[j]) * static_cast<double>(v[j]);
  return static_cast<float>(s);
}

float ref_distance(const float* x, float xn, const float* c, float cn, i64 d) {
  float dot = 0.0f;
  for (i64 j = 0; j < d; ++j) dot = std::fmaf(x[j], c[j], dot);
  const float t = std::fmaf(-2.0f, dot, xn);
  return std::fmax(0.0f, t + cn);
}

/// Nearest centre of row i (ascending, strict <) and its distance, as ref_distance computes them.
void ref_nearest(const Matrix<float>& x, i64 i, const Matrix<float>& c, const std::vector<float>& cn,
                 std::int32_t& label, float& dist) {
  const float xn = ref_sq_norm(x.row(i), x.cols());
  dist = std::numeric_limits<float>::infinity();
  label = 0;
  for (i64 l = 0; l < c.rows(); ++l) {
    const float v = ref_distance(x.row(i), xn, c.row(l), cn[l], x.cols());
    if (v < dist) {
      dist = v;
      label = static_cast<std::int32_t>(l);
    }
  }
}

std::string float_bits(float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return std::to_string(v) + " (0x" + [&] {
    char t[9];
    std::snprintf(t, sizeof t, "%08x", b);
    return std::string(t);
  }() + ")";
}

/// d = 1 … 128 run the register kernels (d padded to 4, 8, 16, 24, 32, 48, 64, 96 or 128; d not a
/// multiple of 4 takes scalar row loads, a multiple of 4 float4 loads); d = 129 and 200 the generic
/// ones. K not a multiple of the four-centre group; centres past one shared-memory tile (2 to 8
/// tiles, the last one partial and padded: K = 1500, 6001, 7000 at d = 8; 800, 900 at d = 64); N not
/// a multiple of the 256-row block nor of the 1,024-row sub-chunk; 40 pass blocks (not a multiple
/// of the reduction's 32 lanes) and 293 (more than two per SM on an H100).
struct RegShape {
  i64 n;
  i64 d;
  i64 k;
};

std::string reg_shape_name(const testing::TestParamInfo<RegShape>& info) {
  return "n" + std::to_string(info.param.n) + "_d" + std::to_string(info.param.d) + "_k" +
         std::to_string(info.param.k);
}

class CudaRegisterKernels : public testing::TestWithParam<RegShape> {};

// Labels and distances of assign bit for bit against the host arithmetic; the pass's counts
// exactly, its sums and inertia within double rounding; d(x) of k-means++ the same minima, so φ
// after reset(all) equals φ after reset(some) + update(the rest) bit for bit; reruns bit-identical.
TEST_P(CudaRegisterKernels, MatchTheHostArithmetic) {
  REQUIRE_CUDA(gpu);
  const RegShape s = GetParam();
  const Matrix<float> x = blobs(s.n, s.d, static_cast<int>(std::min<i64>(s.k, 12)), 600u + static_cast<std::uint32_t>(s.d), 3.0f);
  const Matrix<float> c = start_centres(x, s.k, 601u);
  std::vector<float> cn(static_cast<std::size_t>(s.k));
  for (i64 l = 0; l < s.k; ++l) cn[l] = ref_sq_norm(c.row(l), s.d);
  std::vector<std::int32_t> want_labels(s.n);
  std::vector<float> want_dist(s.n);
  for (i64 i = 0; i < s.n; ++i) ref_nearest(x, i, c, cn, want_labels[i], want_dist[i]);

  auto gd = gpu->upload(x.view());
  std::vector<std::int32_t> labels(s.n);
  std::vector<float> dist(s.n);
  gpu->assign(*gd, c.view(), labels, dist);
  for (i64 i = 0; i < s.n; ++i) {
    ASSERT_EQ(labels[i], want_labels[i]) << "row " << i;
    ASSERT_EQ(std::memcmp(&dist[i], &want_dist[i], sizeof(float)), 0)
        << "row " << i << ": " << float_bits(dist[i]) << " vs " << float_bits(want_dist[i]);
  }
  std::vector<std::int32_t> only(s.n);
  gpu->assign(*gd, c.view(), only, {});
  EXPECT_EQ(only, labels);

  // The pass: counts exactly (unweighted), sums and inertia as the host's double sums.
  std::vector<double> counts(static_cast<std::size_t>(s.k), 0.0), sums(static_cast<std::size_t>(s.k * s.d), 0.0);
  double inertia = 0.0;
  for (i64 i = 0; i < s.n; ++i) {
    counts[want_labels[i]] += 1.0;
    for (i64 j = 0; j < s.d; ++j) sums[want_labels[i] * s.d + j] += x(i, j);
    inertia += want_dist[i];
  }
  const AccumulateResult a = gpu->assign_accumulate(*gd, c.view());
  EXPECT_EQ(a.counts, counts);
  EXPECT_EQ(a.n_changed, s.n);
  expect_rel_all(a.sums, sums, 1e-10, "sums");
  expect_rel(a.inertia, inertia, 1e-10, "inertia");
  const AccumulateResult b = gpu->assign_accumulate(*gd, c.view());
  EXPECT_EQ(b.n_changed, 0);
  expect_same_bits(a.sums, b.sums, "rerun sums");
  expect_same_bits(a.counts, b.counts, "rerun counts");
  EXPECT_EQ(std::memcmp(&a.inertia, &b.inertia, sizeof(double)), 0) << "rerun inertia";

  // k-means++'s d(x): φ = Σ d(x) of the same minima however the centres come.
  const double phi = gpu->reset_min_distances(*gd, c.view());
  expect_rel(phi, inertia, 1e-10, "φ");
  if (s.k >= 2) {
    const i64 half = s.k / 2;
    Matrix<float> first(half, s.d), rest(s.k - half, s.d);
    std::copy(c.row(0), c.row(0) + half * s.d, first.row(0));
    std::copy(c.row(half), c.row(half) + (s.k - half) * s.d, rest.row(0));
    gpu->reset_min_distances(*gd, first.view());
    const double phi2 = gpu->update_min_distances(*gd, rest.view());
    EXPECT_EQ(std::memcmp(&phi, &phi2, sizeof(double)), 0) << phi << " vs " << phi2;
  }
  EXPECT_EQ(gpu->reset_min_distances(*gd, c.view()), phi) << "rerun φ";

  // Weighted: the same labels, so the weighted sums follow.
  const std::vector<float> w = random_weights(s.n, 602u);
  auto gw = gpu->upload(x.view(), w);
  std::vector<double> wsums(static_cast<std::size_t>(s.k * s.d), 0.0), wcounts(static_cast<std::size_t>(s.k), 0.0);
  for (i64 i = 0; i < s.n; ++i) {
    wcounts[want_labels[i]] += w[i];
    for (i64 j = 0; j < s.d; ++j) wsums[want_labels[i] * s.d + j] += static_cast<double>(w[i]) * x(i, j);
  }
  const AccumulateResult aw = gpu->assign_accumulate(*gw, c.view());
  expect_rel_all(aw.sums, wsums, 1e-10, "weighted sums");
  expect_rel_all(aw.counts, wcounts, 1e-10, "weighted counts");
}

INSTANTIATE_TEST_SUITE_P(
    Widths, CudaRegisterKernels,
    testing::Values(RegShape{2500, 1, 7}, RegShape{2500, 3, 13}, RegShape{2500, 4, 1},
                    RegShape{2500, 5, 7}, RegShape{2500, 8, 13}, RegShape{2500, 13, 7},
                    RegShape{2500, 16, 30}, RegShape{2500, 21, 7}, RegShape{2500, 24, 13},
                    RegShape{2500, 29, 30}, RegShape{2500, 32, 7}, RegShape{2500, 40, 13},
                    RegShape{2500, 48, 30}, RegShape{2500, 61, 7}, RegShape{2500, 64, 13},
                    RegShape{2500, 65, 7}, RegShape{2500, 96, 30}, RegShape{2500, 100, 13},
                    RegShape{2500, 128, 7}, RegShape{2500, 129, 13}, RegShape{2500, 200, 7},
                    RegShape{2000, 128, 400},
                    // centres in several shared-memory tiles
                    RegShape{3001, 8, 1500}, RegShape{2049, 8, 6001}, RegShape{2049, 8, 7000},
                    RegShape{1500, 64, 800}, RegShape{1500, 64, 900},
                    // many pass blocks
                    RegShape{40000, 16, 20}, RegShape{300001, 8, 9}),
    reg_shape_name);

// The workspace grows and is carved again call by call: results on a backend that has served
// larger and other calls are the bits of a fresh backend's.
TEST(CudaRegisterKernelsWorkspace, ReuseGivesTheSameBits) {
  REQUIRE_CUDA(gpu);
  const Matrix<float> x = blobs(5000, 24, 6, 700u, 3.0f);
  const std::vector<float> w = random_weights(x.rows(), 701u);
  const Matrix<float> big = start_centres(x, 3000, 702u), small = start_centres(x, 5, 703u);
  std::vector<i64> batch(700);
  for (std::size_t b = 0; b < batch.size(); ++b) batch[b] = static_cast<i64>(b * 7 % x.rows());
  struct Results {
    AccumulateResult acc;
    double phi;
    Matrix<float> centres;
    std::vector<double> counts;
    double batch_inertia;
  };
  const auto run = [&](Backend& b) {
    auto data = b.upload(x.view(), w);
    Results r;
    r.acc = b.assign_accumulate(*data, small.view());
    r.phi = b.reset_min_distances(*data, small.view());
    r.centres = small;
    r.counts.assign(static_cast<std::size_t>(small.rows()), 1.0);
    r.batch_inertia = b.minibatch_step(*data, batch, r.centres.view(), r.counts);
    return r;
  };
  const Results fresh = run(*gpu);
  std::string why_not;
  std::unique_ptr<Backend> used = make_cuda_backend(&why_not);
  ASSERT_NE(used, nullptr) << why_not;
  {
    auto data = used->upload(x.view(), w);
    (void)used->assign_accumulate(*data, big.view());
    (void)used->reset_min_distances(*data, big.view());
    std::vector<std::int32_t> labels(x.rows());
    used->assign(*data, big.view(), labels, {});
  }
  const Results again = run(*used);
  expect_same_bits(again.acc.sums, fresh.acc.sums, "sums");
  expect_same_bits(again.acc.counts, fresh.acc.counts, "counts");
  EXPECT_EQ(std::memcmp(&again.acc.inertia, &fresh.acc.inertia, sizeof(double)), 0);
  EXPECT_EQ(again.acc.n_changed, fresh.acc.n_changed);
  EXPECT_EQ(std::memcmp(&again.phi, &fresh.phi, sizeof(double)), 0);
  expect_same_bits(again.centres.values(), fresh.centres.values(), "mini-batch centres");
  EXPECT_EQ(std::memcmp(&again.batch_inertia, &fresh.batch_inertia, sizeof(double)), 0);
}

// N·D past 2^31 (33,555,432 rows of 64 features, 8 GiB; row 2^25 starts at element 2^31): row
// offsets in 64 bits in the register kernels (assign, the pass, min-distance). Skipped where the
// device or the host lacks the memory.
TEST(CudaLargeShapes, RowOffsetsPast32Bits) {
  REQUIRE_CUDA(gpu);
  const i64 n = (i64{1} << 25) + 1000, d = 64;
  Matrix<float> x;
  try {
    x = Matrix<float>(n, d);
  } catch (const std::bad_alloc&) {
    GTEST_SKIP() << "not enough host memory for 8 GiB of rows";
  }
  // Rows of small integers: every dot and norm is exact, and row i's nearest centre is i mod 4.
  const Matrix<float> c(4, d, [&] {
    std::vector<float> v(static_cast<std::size_t>(4 * d));
    for (i64 l = 0; l < 4; ++l)
      for (i64 j = 0; j < d; ++j) v[l * d + j] = static_cast<float>(10 * l + (j % 3));
    return v;
  }());
  // Row i is pattern i mod 4 (its centre) plus (i + j) mod 2: 8 patterns, copied (8 GiB to fill).
  Matrix<float> patterns(8, d);
  for (i64 p = 0; p < 8; ++p)
    for (i64 j = 0; j < d; ++j) patterns(p, j) = static_cast<float>(10 * (p % 4) + (j % 3) + ((p + j) % 2));
  for (i64 i = 0; i < n; ++i) std::copy_n(patterns.row(i % 8), d, x.row(i));
  std::unique_ptr<Dataset> gd;
  try {
    gd = gpu->upload(x.view());
  } catch (const RuntimeFailure& e) {  // the device is too small (the residency check)
    GTEST_SKIP() << e.what();
  }
  std::vector<std::int32_t> labels(n);
  std::vector<float> dist(n);
  gpu->assign(*gd, c.view(), labels, dist);
  std::vector<float> cn(4);
  for (i64 l = 0; l < 4; ++l) cn[l] = ref_sq_norm(c.row(l), d);
  for (const i64 i : {i64{0}, i64{1}, (i64{1} << 31) / d - 1, (i64{1} << 31) / d, (i64{1} << 31) / d + 1, n - 2, n - 1}) {
    std::int32_t want;
    float want_dist;
    ref_nearest(x, i, c, cn, want, want_dist);
    EXPECT_EQ(labels[i], want) << "row " << i;
    EXPECT_EQ(labels[i], i % 4) << "row " << i;
    EXPECT_EQ(dist[i], want_dist) << "row " << i;
  }
  for (i64 i = 0; i < n; ++i) ASSERT_EQ(labels[i], i % 4) << "row " << i;
  const AccumulateResult a = gpu->assign_accumulate(*gd, c.view());
  EXPECT_EQ(a.counts, (std::vector<double>{static_cast<double>((n + 3) / 4), static_cast<double>((n + 2) / 4),
                                           static_cast<double>((n + 1) / 4), static_cast<double>(n / 4)}));
  // Integer distances: both sums are exact, whatever their order.
  EXPECT_EQ(gpu->reset_min_distances(*gd, c.view()), a.inertia);
}

// ---- the drivers end to end -------------------------------------------------------------------

struct DriverData {
  Matrix<float> x = blobs(20000, 12, 9, 2024u, 6.0f);
  std::vector<float> w = random_weights(20000, 5u);
};

TEST(CudaDrivers, LloydMatchesCpu) {
  REQUIRE_CUDA(gpu);
  const DriverData data;
  std::unique_ptr<Backend> cpu = make_cpu_backend(2);
  for (const Init init : {Init::given, Init::kmeans_pp, Init::scalable_kmeans_pp}) {
    LloydParams p;
    p.n_clusters = 9;
    p.seed = 11;
    p.init.init = init;
    if (init == Init::given) p.init.centroids = start_centres(data.x, 9, 1u);
    auto gd = gpu->upload(data.x.view(), data.w);
    auto cd = cpu->upload(data.x.view(), data.w);
    const KMeansResult g = fit_lloyd(*gpu, *gd, p);
    const KMeansResult c = fit_lloyd(*cpu, *cd, p);
    EXPECT_LE(test::relative_diff(g.inertia, c.inertia), 1e-5) << static_cast<int>(init);
    const Assignment ga = predict(*gpu, *gd, g.centroids.view());
    const Assignment ca = predict(*cpu, *cd, c.centroids.view());
    EXPECT_GE(test::adjusted_rand_index(ga.labels, ca.labels), 0.999) << static_cast<int>(init);
    // Two GPU runs with one seed: bit-identical centroids and labels.
    auto gd2 = gpu->upload(data.x.view(), data.w);
    const KMeansResult g2 = fit_lloyd(*gpu, *gd2, p);
    expect_same_bits(g.centroids.values(), g2.centroids.values(), "rerun centroids");
    EXPECT_EQ(predict(*gpu, *gd2, g2.centroids.view()).labels, ga.labels);
  }
}

// The hierarchy drivers read the data through existing ops (gather, assign, label_stats and the
// K-Means of the two-stage path): on the GPU they give the CPU's segments.
TEST(CudaDrivers, AgglomerativeAndBirchMatchCpu) {
  REQUIRE_CUDA(gpu);
  const DriverData data;
  std::unique_ptr<Backend> cpu = make_cpu_backend(2);
  auto gd = gpu->upload(data.x.view());
  auto cd = cpu->upload(data.x.view());
  // Exact tree on a part of the rows (the rows are gathered: the same tree, bit for bit).
  std::vector<i64> part(3000);
  std::iota(part.begin(), part.end(), i64{0});
  const Matrix<float> few = cpu->gather(*cd, part);
  auto gfew = gpu->upload(few.view());
  auto cfew = cpu->upload(few.view());
  AgglomerativeParams exact;
  exact.n_clusters = 9;
  const AgglomerativeResult ge = fit_agglomerative(*gpu, *gfew, exact);
  const AgglomerativeResult ce = fit_agglomerative(*cpu, *cfew, exact);
  EXPECT_EQ(ge.labels, ce.labels);
  // Two-stage: the micro-clusters come from the GPU's K-Means, as close as Lloyd's results are.
  AgglomerativeParams two = exact;
  two.strategy = AgglomerativeStrategy::two_stage;
  two.n_micro_clusters = 300;
  const AgglomerativeResult gt = fit_agglomerative(*gpu, *gd, two);
  const AgglomerativeResult ct = fit_agglomerative(*cpu, *cd, two);
  EXPECT_GE(test::adjusted_rand_index(gt.labels, ct.labels), 0.99);
  const LeafAssignment gp = predict_by_leaves(*gpu, *gd, gt.micro_centres.view(), gt.leaf_labels, gt.centroids.view());
  EXPECT_EQ(gp.labels, gt.labels);
  // BIRCH: the tree is built on the host from gathered rows; labels through assign.
  BirchParams b;
  b.threshold = 1.5;
  b.n_clusters = 9;
  const BirchResult gb = fit_birch(*gpu, *gd, b);
  const BirchResult cb = fit_birch(*cpu, *cd, b);
  EXPECT_EQ(gb.state.weight, cb.state.weight);
  EXPECT_EQ(gb.segments.subcluster_labels, cb.segments.subcluster_labels);
  EXPECT_GE(test::adjusted_rand_index(gb.assignment.labels, cb.assignment.labels), 0.999);
}

TEST(CudaDrivers, MinibatchMatchesCpu) {
  REQUIRE_CUDA(gpu);
  const DriverData data;
  std::unique_ptr<Backend> cpu = make_cpu_backend(2);
  MiniBatchParams p;
  p.n_clusters = 9;
  p.seed = 3;
  p.batch_size = 512;
  p.max_iter = 5;
  p.n_init = 1;
  auto gd = gpu->upload(data.x.view(), data.w);
  auto cd = cpu->upload(data.x.view(), data.w);
  const KMeansResult g = fit_minibatch(*gpu, *gd, p);
  const KMeansResult c = fit_minibatch(*cpu, *cd, p);
  // Same batches (drawn on the host from one seed) and the same float32 distances: the runs
  // follow each other; the double sums differ only in their last bits.
  EXPECT_LE(test::relative_diff(g.inertia, c.inertia), 1e-5);
  const Assignment ga = predict(*gpu, *gd, g.centroids.view());
  const Assignment ca = predict(*cpu, *cd, c.centroids.view());
  EXPECT_GE(test::adjusted_rand_index(ga.labels, ca.labels), 0.999);
}

TEST(CudaDrivers, SilhouetteExactMatchesCpu) {
  REQUIRE_CUDA(gpu);
  const Matrix<float> x = blobs(3000, 6, 5, 77u, 5.0f);
  const std::vector<float> w;
  std::unique_ptr<Backend> cpu = make_cpu_backend(2);
  auto gd = gpu->upload(x.view(), w);
  auto cd = cpu->upload(x.view(), w);
  std::vector<std::int32_t> labels(x.rows());
  std::vector<float> unused;
  cpu->assign(*cd, start_centres(x, 5, 2u).view(), labels, unused);
  const SilhouetteResult g = silhouette_exact(*gpu, *gd, labels, 5);
  const SilhouetteResult c = silhouette_exact(*cpu, *cd, labels, 5);
  EXPECT_NEAR(g.score, c.score, 1e-5);
  ASSERT_EQ(g.values.size(), c.values.size());
  for (std::size_t i = 0; i < c.values.size(); ++i) ASSERT_NEAR(g.values[i], c.values[i], 1e-5) << i;
}

}  // namespace
}  // namespace segforge
