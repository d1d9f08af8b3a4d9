// Google Benchmark for the backend kernels, through the Backend seam: the CPU backend, or the
// CUDA one with SEGFORGE_BENCH_DEVICE=gpu in a build that has it.
// Not a test: the numbers go in bench/RESULTS.md.
//
//   bench_kernels [--benchmark_filter=REGEX] [--benchmark_repetitions=5]
//                 [--benchmark_report_aggregates_only=true]
//
// Counters: bytes/s is the data the kernel must read (N·D·4 for a Lloyd pass), flop/s counts
// 2·D multiply-adds per row-centre (or row-row) distance, pairs/s the distances computed.
// Data: K Gaussian blobs (deterministic), in memory; no HDF5.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/matrix.hpp"

namespace {

using segforge::Backend;
using segforge::Dataset;
using segforge::Matrix;

/// `n` rows around `k` centres uniform in [-3, 3]^d, noise 0.5 (as `segforge synth`).
Matrix<float> blobs(std::int64_t n, std::int64_t d, std::int64_t k, std::uint64_t seed,
                    std::vector<std::int32_t>* labels = nullptr) {
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  Matrix<float> centres(k, d);
  for (auto& v : centres.values()) v = uniform(engine);
  Matrix<float> x(n, d);
  if (labels) labels->resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::int64_t>(engine() % static_cast<std::uint64_t>(k));
    if (labels) (*labels)[i] = static_cast<std::int32_t>(c);
    for (std::int64_t j = 0; j < d; ++j) x(i, j) = centres(c, j) + normal(engine);
  }
  return x;
}

/// K rows of x, evenly spaced: the starting centres.
Matrix<float> spaced_rows(const Matrix<float>& x, std::int64_t k) {
  Matrix<float> c(k, x.cols());
  for (std::int64_t i = 0; i < k; ++i) {
    const float* r = x.row(i * (x.rows() / k));
    std::copy(r, r + x.cols(), c.row(i));
  }
  return c;
}

Backend& backend() {
  static std::unique_ptr<Backend> b = [] {
    const char* dev = std::getenv("SEGFORGE_BENCH_DEVICE");
    std::string note;
    const auto choice = dev && std::string(dev) == "gpu" ? segforge::DeviceChoice::gpu
                                                          : segforge::DeviceChoice::cpu;
    return segforge::make_backend(choice, 0, &note);
  }();
  return *b;
}

/// One dataset per shape, kept across the benchmarks' repetitions.
struct Fixture {
  Matrix<float> x, centres;
  std::vector<std::int32_t> labels;
  std::unique_ptr<Dataset> data;
};
Fixture& fixture(std::int64_t n, std::int64_t d, std::int64_t k) {
  static std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, std::unique_ptr<Fixture>> cache;
  auto& f = cache[{n, d, k}];
  if (!f) {
    f = std::make_unique<Fixture>();
    f->x = blobs(n, d, k, 7, &f->labels);
    f->centres = spaced_rows(f->x, k);
    f->data = backend().upload(f->x.view());
  }
  return *f;
}

void set_rates(benchmark::State& state, double bytes, double flops, double pairs = 0.0) {
  using benchmark::Counter;
  const auto iters = static_cast<double>(state.iterations());
  state.counters["bytes/s"] = Counter(bytes * iters, Counter::kIsRate, Counter::kIs1024);
  state.counters["flop/s"] = Counter(flops * iters, Counter::kIsRate);
  if (pairs > 0) state.counters["pairs/s"] = Counter(pairs * iters, Counter::kIsRate);
}

// The fused Lloyd pass: assign every row to its nearest centre and accumulate the sums.
void BM_AssignAccumulate(benchmark::State& state) {
  const std::int64_t n = state.range(0), d = state.range(1), k = state.range(2);
  Fixture& f = fixture(n, d, k);
  for (auto _ : state) {
    auto r = backend().assign_accumulate(*f.data, f.centres.view());
    benchmark::DoNotOptimize(r.inertia);
  }
  set_rates(state, 4.0 * n * d, 2.0 * n * k * d);
}
BENCHMARK(BM_AssignAccumulate)
    ->ArgNames({"N", "D", "K"})
    ->Args({1000000, 8, 8})
    ->Args({20000, 8, 8})  // the same pass in cache: what memory adds at 1M
    ->Args({1000000, 32, 64})
    ->Args({200000, 128, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Labels and distances only (predict, and the empty-cluster path).
void BM_Assign(benchmark::State& state) {
  const std::int64_t n = state.range(0), d = state.range(1), k = state.range(2);
  Fixture& f = fixture(n, d, k);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  std::vector<float> dist(static_cast<std::size_t>(n));
  for (auto _ : state) {
    backend().assign(*f.data, f.centres.view(), labels, dist);
    benchmark::DoNotOptimize(dist.data());
  }
  set_rates(state, 4.0 * n * d, 2.0 * n * k * d);
}
BENCHMARK(BM_Assign)
    ->ArgNames({"N", "D", "K"})
    ->Args({1000000, 8, 8})
    ->Args({1000000, 32, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One mini-batch step (gather, assign, Sculley update) on a batch of random rows.
void BM_MinibatchStep(benchmark::State& state) {
  const std::int64_t n = state.range(0), d = state.range(1), k = state.range(2), b = state.range(3);
  Fixture& f = fixture(n, d, k);
  Matrix<float> centres = f.centres;
  std::vector<double> counts(static_cast<std::size_t>(k), 0.0);
  std::mt19937_64 engine(11);
  std::vector<std::int64_t> batch(static_cast<std::size_t>(b));
  for (auto _ : state) {
    state.PauseTiming();
    for (auto& i : batch) i = static_cast<std::int64_t>(engine() % static_cast<std::uint64_t>(n));
    state.ResumeTiming();
    benchmark::DoNotOptimize(backend().minibatch_step(*f.data, batch, centres.view(), counts));
  }
  set_rates(state, 4.0 * b * d, 2.0 * b * k * d);
}
BENCHMARK(BM_MinibatchStep)
    ->ArgNames({"N", "D", "K", "batch"})
    ->Args({1000000, 16, 16, 1024})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// A tile of the pairwise distance matrix (segforge distances): rows x rows, Euclidean.
void BM_DistanceTile(benchmark::State& state) {
  const std::int64_t rows = state.range(0), d = state.range(1);
  Fixture& f = fixture(rows, d, 8);
  for (auto _ : state) {
    auto t = backend().distance_tile(*f.data, 0, rows, *f.data, 0, rows, false);
    benchmark::DoNotOptimize(t.data());
  }
  const double pairs = static_cast<double>(rows) * rows;
  set_rates(state, 4.0 * pairs, 2.0 * pairs * d, pairs);
}
BENCHMARK(BM_DistanceTile)
    ->ArgNames({"rows", "D"})
    ->Args({1024, 16})
    ->Args({4096, 16})
    ->Args({4096, 128})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Silhouette sums: Σ ||x_i − x_p|| per cluster for `rows` rows against all N rows.
void BM_ClusterDistanceSums(benchmark::State& state) {
  const std::int64_t n = state.range(0), d = state.range(1), k = state.range(2), rows = state.range(3);
  Fixture& f = fixture(n, d, k);
  for (auto _ : state) {
    auto s = backend().cluster_distance_sums(*f.data, f.labels, static_cast<int>(k), 0, rows);
    benchmark::DoNotOptimize(s.data());
  }
  const double pairs = static_cast<double>(rows) * n;
  set_rates(state, 4.0 * n * d, 2.0 * pairs * d, pairs);
}
BENCHMARK(BM_ClusterDistanceSums)
    ->ArgNames({"N", "D", "K", "rows"})
    ->Args({20000, 16, 8, 2048})
    ->Args({100000, 16, 8, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
