// Out of core: a dataset streamed from its HDF5 file window by window gives every backend op and
// every driver the bits of the same rows uploaded whole; what cannot stream says so.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <tuple>
#include <cstring>

#include "segforge/backend.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/metrics.hpp"
#include "segforge/row_source.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace segforge;

namespace {

// GCC defines __SANITIZE_ADDRESS__ under -fsanitize=address; Clang says so through __has_feature.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

/// Gaussian blobs around 7 centres, [n x d].
Matrix<float> blobs(std::int64_t n, std::int64_t d, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::uniform_real_distribution<float> centre(-8.0f, 8.0f);
  Matrix<float> c(7, d);
  for (auto& v : c.values()) v = centre(rng);
  Matrix<float> x(n, d);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) x(i, j) = c(i % 7, j) + noise(rng);
  return x;
}

/// A source that reads every window (as for chunked, converted or filtered files): never maps.
class ReadOnlySource final : public RowSource {
 public:
  explicit ReadOnlySource(std::unique_ptr<RowSource> inner) : inner_(std::move(inner)) {}
  std::int64_t n_rows() const override { return inner_->n_rows(); }
  std::int64_t n_cols() const override { return inner_->n_cols(); }
  void read(std::int64_t begin, std::int64_t count, float* out) override { inner_->read(begin, count, out); }
  void read_rows(std::span<const std::int64_t> rows, float* out) override { inner_->read_rows(rows, out); }
  std::string where() const override { return inner_->where(); }

 private:
  std::unique_ptr<RowSource> inner_;
};

/// Streamed with windows of GetParam() rows, mapped from the file (segforge writes /features
/// contiguous) or read.
class OutOfCore : public test::TempDirTest,
                  public ::testing::WithParamInterface<std::tuple<std::int64_t, bool>> {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    path_ = (dir_ / "x.h5").string();
    x_ = blobs(kRows, 5, 3);
    std::vector<std::string> names;
    for (int j = 0; j < 5; ++j) names.push_back("f" + std::to_string(j));
    write_features(path_, x_.view(), names);
    backend_ = make_cpu_backend(2);
    resident_ = backend_->upload(x_.view());
    const auto [window, mapped] = GetParam();
    std::unique_ptr<RowSource> source = open_hdf5_rows(path_, "/features");
    ASSERT_NE(source->map(0, 10), nullptr) << "a contiguous float32 /features maps";
    if (!mapped) source = std::make_unique<ReadOnlySource>(std::move(source));
    streamed_ = backend_->stream(std::move(source), window);
  }
  static constexpr std::int64_t kRows = 23456;  // not a multiple of 2048: a short last window
  std::string path_;
  Matrix<float> x_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Dataset> resident_, streamed_;
};

TEST_P(OutOfCore, EveryOpGivesTheResidentBits) {
  Backend& be = *backend_;
  Dataset& r = *resident_;
  Dataset& s = *streamed_;
  ASSERT_EQ(s.n_samples(), kRows);
  ASSERT_EQ(s.n_features(), 5);

  const ColumnStats cr = be.column_stats(r), cs = be.column_stats(s);
  EXPECT_EQ(cr.mean, cs.mean);
  EXPECT_EQ(cr.variance, cs.variance);

  const std::vector<std::int64_t> pick{5, 17, 23000, 4095, 4096, 5, 9999};
  const Matrix<float> centres = be.gather(r, pick);
  EXPECT_EQ(be.gather(s, pick).values(), centres.values());

  for (int pass = 0; pass < 2; ++pass) {  // the second pass counts changed labels
    const Matrix<float> c = pass == 0 ? centres : be.gather(r, std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7});
    const AccumulateResult ar = be.assign_accumulate(r, c.view()), as = be.assign_accumulate(s, c.view());
    EXPECT_EQ(ar.sums, as.sums);
    EXPECT_EQ(ar.counts, as.counts);
    EXPECT_EQ(ar.inertia, as.inertia);
    EXPECT_EQ(ar.n_changed, as.n_changed);
  }

  std::vector<std::int32_t> lr(kRows), ls(kRows);
  std::vector<float> dr(kRows), dsq(kRows);
  be.assign(r, centres.view(), lr, dr);
  be.assign(s, centres.view(), ls, dsq);
  EXPECT_EQ(lr, ls);
  EXPECT_EQ(dr, dsq);

  const Matrix<float> first = be.gather(r, std::vector<std::int64_t>{100});
  EXPECT_EQ(be.reset_min_distances(r, first.view()), be.reset_min_distances(s, first.view()));
  EXPECT_EQ(be.update_min_distances(r, centres.view()), be.update_min_distances(s, centres.view()));
  EXPECT_EQ(be.candidate_potentials(r, centres.view()), be.candidate_potentials(s, centres.view()));
  const Matrix<float> none(0, 5);
  const double phi = be.update_min_distances(r, none.view());
  EXPECT_EQ(be.update_min_distances(s, none.view()), phi);
  const std::vector<double> targets{0.0, 0.1 * phi, 0.5 * phi, 0.99 * phi, phi};
  EXPECT_EQ(be.sample_by_min_distance(r, targets), be.sample_by_min_distance(s, targets));
  EXPECT_EQ(be.oversample(r, 14.0 / phi, 9u), be.oversample(s, 14.0 / phi, 9u));

  Matrix<float> mr = centres, ms = centres;
  std::vector<double> nr(7, 0.0), ns(7, 0.0);
  const std::vector<std::int64_t> batch{3, 3, 22000, 7, 4100, 12, 8191, 8192};
  EXPECT_EQ(be.minibatch_step(r, batch, mr.view(), nr), be.minibatch_step(s, batch, ms.view(), ns));
  EXPECT_EQ(mr.values(), ms.values());
  EXPECT_EQ(nr, ns);

  const LabelStats sr = be.label_stats(r, lr, 7, centres.view()), ss = be.label_stats(s, lr, 7, centres.view());
  EXPECT_EQ(sr.sums, ss.sums);
  EXPECT_EQ(sr.counts, ss.counts);
  EXPECT_EQ(sr.dist_sums, ss.dist_sums);
  EXPECT_EQ(sr.sq_dist_sums, ss.sq_dist_sums);
}

TEST_P(OutOfCore, DriversGiveTheResidentModel) {
  Backend& be = *backend_;
  for (Init init : {Init::kmeans_pp, Init::scalable_kmeans_pp}) {
    LloydParams p;
    p.n_clusters = 7;
    p.n_init = 2;
    p.seed = 3;
    p.init.init = init;
    p.refine = Refine::random_swap;
    p.swap_trials = 10;
    const KMeansResult a = fit_lloyd(be, *resident_, p), b = fit_lloyd(be, *streamed_, p);
    EXPECT_EQ(a.centroids.values(), b.centroids.values());
    EXPECT_EQ(a.inertia, b.inertia);
    EXPECT_EQ(a.n_iter, b.n_iter);
    EXPECT_EQ(a.run_inertia, b.run_inertia);
    const Assignment pa = predict(be, *resident_, a.centroids.view()), pb = predict(be, *streamed_, a.centroids.view());
    EXPECT_EQ(pa.labels, pb.labels);
    EXPECT_EQ(pa.inertia, pb.inertia);

    const SilhouetteResult sa = silhouette_sampled(be, *resident_, pa.labels, 7, 3000, 5);
    const SilhouetteResult sb = silhouette_sampled(be, *streamed_, pa.labels, 7, 3000, 5);
    EXPECT_EQ(sa.score, sb.score);
  }
  MiniBatchParams m;
  m.n_clusters = 7;
  m.batch_size = 512;
  m.max_iter = 3;
  m.seed = 8;
  const KMeansResult a = fit_minibatch(be, *resident_, m), b = fit_minibatch(be, *streamed_, m);
  EXPECT_EQ(a.centroids.values(), b.centroids.values());
  EXPECT_EQ(a.counts, b.counts);
  EXPECT_EQ(a.inertia, b.inertia);
  EXPECT_EQ(a.n_iter, b.n_iter);
}

TEST_P(OutOfCore, AllPairsOpsRefuseWithAnInputError) {
  std::vector<std::int32_t> labels(kRows, 0);
  EXPECT_THROW(backend_->cluster_distance_sums(*streamed_, labels, 1, 0, 10), InputError);
  EXPECT_THROW(backend_->distance_tile(*streamed_, 0, 10, *streamed_, 0, 10, true), InputError);
}

// 2048 rows (the smallest window), 3000 (rounded down to 2048), 8192, and more than the rows
// (one window, read once and kept).
INSTANTIATE_TEST_SUITE_P(Windows, OutOfCore,
                         ::testing::Combine(::testing::Values(2048, 3000, 8192, 100000),
                                            ::testing::Bool()));

using OutOfCoreSource = test::TempDirTest;

TEST_F(OutOfCoreSource, NonFiniteValueNamesFileRowAndColumn) {
  const std::string file = path("nan.h5");
  Matrix<float> x = blobs(5000, 3, 1);
  x(4321, 2) = std::numeric_limits<float>::quiet_NaN();
  write_features(file, x.view(), {"recency", "frequency", "monetary"});
  auto backend = make_cpu_backend(2);
  for (const bool mapped : {true, false}) {
    SCOPED_TRACE(mapped ? "mapped" : "read");
    std::unique_ptr<RowSource> source = open_hdf5_rows(file, "/features");
    if (!mapped) source = std::make_unique<ReadOnlySource>(std::move(source));
    auto data = backend->stream(std::move(source), 2048);
    for (int pass = 0; pass < 2; ++pass) {  // the mapped window is checked again after an error
      try {
        backend->column_stats(*data);
        FAIL() << "NaN not reported";
      } catch (const InputError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find(file + ":/features row 4321 (0-based): NaN in column 'monetary'"), std::string::npos) << m;
      }
    }
  }
}

TEST_F(OutOfCoreSource, MappedRowsAreTheFileRowsInPlace) {
  const std::string file = path("m.h5");
  const Matrix<float> x = blobs(7000, 3, 2);
  write_features(file, x.view(), {"a", "b", "c"});
  auto source = open_hdf5_rows(file, "/features");
  for (const auto& [begin, count] : std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 7000}, {1, 1}, {4097, 2903}}) {
    const auto mapped = source->map(begin, count);
    ASSERT_NE(mapped, nullptr);
    EXPECT_EQ(std::memcmp(mapped->rows(), x.row(begin), static_cast<std::size_t>(count * 3) * sizeof(float)), 0);
  }
  auto part = open_hdf5_rows(file, "/features", 100, 50);  // a part of the rows maps from its own row 0
  const auto mapped = part->map(0, 50);
  ASSERT_NE(mapped, nullptr);
  EXPECT_EQ(std::memcmp(mapped->rows(), x.row(100), 50 * 3 * sizeof(float)), 0);
}

}  // namespace

// ---- the program: --memory-budget ---------------------------------------------------------------

namespace {

nlohmann::json read_json(const std::string& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

class OutOfCoreCli : public test::TempDirTest {
 protected:
  int run(const std::string& args, std::string* output = nullptr) const {
    return shell(std::string(SEGFORGE_BINARY) + " " + args, output);
  }
};

}  // namespace

TEST_F(OutOfCoreCli, BudgetFarBelowTheDataGivesTheInMemoryResultWithinBudget) {
  auto p = [&](const std::string& name) { return path(name); };
  std::string out;
  // 1M rows x 8 features: 31 MiB of float32, read twice over in memory.
  ASSERT_EQ(run("synth -o " + p("d.h5") + " --rows 1000000 --features 8 --segments 6", &out), 0) << out;
  const std::string common = " -k 6 --n-init 1 --refine none --device cpu --silhouette sample=2000";
  ASSERT_EQ(run("fit " + p("d.h5") + common + " -o " + p("m1.h5") + " --labels " + p("l1.h5") +
                " --metrics " + p("x1.json") + " --memory-budget 8G", &out), 0) << out;
  const std::int64_t budget = 48LL << 20;
  ASSERT_EQ(run("fit " + p("d.h5") + common + " -o " + p("m2.h5") + " --labels " + p("l2.h5") +
                " --metrics " + p("x2.json") + " --memory-budget 48M", &out), 0) << out;
  EXPECT_NE(out.find("streaming them from the file"), std::string::npos) << out;

  EXPECT_EQ(read_model(p("m1.h5")).centroids.values(), read_model(p("m2.h5")).centroids.values());
  EXPECT_EQ(read_labels(p("l1.h5")), read_labels(p("l2.h5")));
  const auto in_memory = read_json(p("x1.json")), streamed = read_json(p("x2.json"));
  EXPECT_FALSE(in_memory["out_of_core"].get<bool>());
  EXPECT_TRUE(streamed["out_of_core"].get<bool>());
  EXPECT_EQ(in_memory["inertia"].get<double>(), streamed["inertia"].get<double>());
  EXPECT_EQ(in_memory["silhouette"].get<double>(), streamed["silhouette"].get<double>());
  EXPECT_EQ(in_memory["davies_bouldin"].get<double>(), streamed["davies_bouldin"].get<double>());
  // predict and a sampled score stream too; the exact silhouette says what to do instead.
  ASSERT_EQ(run("predict " + p("m1.h5") + " " + p("d.h5") + " -o " + p("l3.h5") + " --device cpu --memory-budget 64M", &out), 0) << out;
  EXPECT_EQ(read_labels(p("l3.h5")), read_labels(p("l1.h5")));
  EXPECT_EQ(run("score " + p("d.h5") + " --labels " + p("l1.h5") + " --silhouette exact --device cpu --memory-budget 64M", &out), 2);
  EXPECT_NE(out.find("--silhouette sample=N"), std::string::npos) << out;
  // A budget too small for even the per-row state: one message, exit 2, nothing written.
  EXPECT_EQ(run("fit " + p("d.h5") + common + " -o " + p("m4.h5") + " --memory-budget 8M", &out), 2);
  EXPECT_NE(out.find("raise it to at least"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(p("m4.h5")));
  EXPECT_EQ(run("fit " + p("d.h5") + common + " -o " + p("m4.h5") + " --memory-budget lots", &out), 2);
  EXPECT_NE(out.find("expected auto or a size"), std::string::npos) << out;

  // Peak resident memory (VmHWM from /proc): within the budget plus the documented constant
  // (tools/memory_budget.hpp, 96 MiB), and below the in-memory run's. Last, so that under
  // AddressSanitizer everything above still runs: its shadow memory and quarantine of freed
  // blocks add to the RSS of every allocation, which no memory budget accounts for.
  const auto peak_streamed = streamed["peak_rss_bytes"].get<std::int64_t>();
  const auto peak_in_memory = in_memory["peak_rss_bytes"].get<std::int64_t>();
  EXPECT_GT(peak_streamed, 0);
  if (kAddressSanitizer)
    GTEST_SKIP() << "peak RSS bound not checked under AddressSanitizer (shadow memory and the "
                    "freed-block quarantine are outside the budget); streamed "
                 << peak_streamed << " bytes, in memory " << peak_in_memory;
  EXPECT_LE(peak_streamed, budget + (96LL << 20)) << "in memory: " << peak_in_memory;
  EXPECT_LT(peak_streamed, peak_in_memory);
}
