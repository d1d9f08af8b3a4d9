// segforge_roofline: the limits of the machine it runs on, for the floor column of
// bench/peers.py. Prints one JSON line:
//   copy_gbs   STREAM-style copy b[i] = a[i] on all OpenMP threads, bytes read + written (GB/s = 1e9)
//   read_gbs   a read-only sum over the same array (what a Lloyd pass does with the data)
//   fma_gflops register-resident FMA chains: the arithmetic peak of these cores (flop = 2 per FMA lane)
//   eigen_sgemm_gflops  Eigen's float32 GEMM (OpenMP), square M = N = K
// Each is the best of --reps timed runs (STREAM's convention) with the median beside it.
// The arrays (default 256 MiB each) are far larger than the last-level cache.
//
//   segforge_roofline [--mib 256] [--reps 10] [--gemm 2048]

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

template <class F>
std::vector<double> time_reps(int reps, F f) {
  std::vector<double> s;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    f();
    s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return s;
}

double best(std::vector<double> v) { return *std::min_element(v.begin(), v.end()); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Flops of `iters` rounds of kChains independent FMA chains per thread.
constexpr int kChains = 12;

double fma_kernel(std::int64_t iters) {
  double sink = 0.0;
#pragma omp parallel reduction(+ : sink)
  {
#if defined(__AVX512F__)
    __m512 acc[kChains];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(static_cast<float>(c));
    for (std::int64_t i = 0; i < iters; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    for (int c = 0; c < kChains; ++c) sink += _mm512_reduce_add_ps(acc[c]);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 acc[kChains];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(static_cast<float>(c));
    for (std::int64_t i = 0; i < iters; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    float lanes[8];
    for (int c = 0; c < kChains; ++c) {
      _mm256_storeu_ps(lanes, acc[c]);
      for (float v : lanes) sink += v;
    }
#else
    float acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = static_cast<float>(c);
    for (std::int64_t i = 0; i < iters; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * 0.999999f + 1e-7f;
    for (int c = 0; c < kChains; ++c) sink += acc[c];
#endif
  }
  return sink;
}

constexpr int kLanes =
#if defined(__AVX512F__)
    16;
#elif defined(__AVX2__) && defined(__FMA__)
    8;
#else
    1;
#endif

}  // namespace

int main(int argc, char** argv) {
  std::int64_t mib = 256;
  int reps = 10, gemm = 2048;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mib")) mib = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--gemm")) gemm = std::atoi(argv[i + 1]);
  }
  const int threads = omp_get_max_threads();
  const std::int64_t n = mib * (1 << 20) / 4;  // a multiple of 32
  float* a = static_cast<float*>(std::aligned_alloc(64, static_cast<std::size_t>(n) * 4));
  float* b = static_cast<float*>(std::aligned_alloc(64, static_cast<std::size_t>(n) * 4));
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    a[i] = static_cast<float>(i & 1023);
    b[i] = 0.0f;
  }

  const auto copy = time_reps(reps, [&] {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) b[i] = a[i];
  });
  double sink = b[n / 3];
  // 32 independent lanes per thread (vectorised without reassociation), so the sum is limited
  // by the loads, not by the add latency.
  const auto read = time_reps(reps, [&] {
    double total = 0.0;
#pragma omp parallel reduction(+ : total)
    {
      float acc[32] = {};
#pragma omp for schedule(static)
      for (std::int64_t i = 0; i < n; i += 32)
        for (int j = 0; j < 32; ++j) acc[j] += a[i + j];
      for (float v : acc) total += v;
    }
    sink += total;
  });

  const std::int64_t fma_iters = 20'000'000;
  fma_kernel(fma_iters / 10);  // warm up the clocks
  const auto fma = time_reps(reps, [&] { sink += fma_kernel(fma_iters); });
  const double fma_flop = 2.0 * kLanes * kChains * static_cast<double>(fma_iters) * threads;

  Eigen::MatrixXf ga = Eigen::MatrixXf::Random(gemm, gemm), gb = Eigen::MatrixXf::Random(gemm, gemm);
  Eigen::MatrixXf gc(gemm, gemm);
  gc.noalias() = ga * gb;  // warm up
  const auto sgemm = time_reps(std::max(3, reps / 2), [&] { gc.noalias() = ga * gb; });
  const double gemm_flop = 2.0 * gemm * static_cast<double>(gemm) * gemm;
  sink += gc(0, 0);

  const double bytes = 4.0 * static_cast<double>(n);
  std::printf(
      "{\"impl\": \"roofline\", \"threads\": %d, \"array_mib\": %lld, "
      "\"copy_gbs\": %.3f, \"copy_gbs_median\": %.3f, \"read_gbs\": %.3f, \"read_gbs_median\": %.3f, "
      "\"fma_gflops\": %.2f, \"fma_gflops_median\": %.2f, \"fma_lanes\": %d, "
      "\"eigen_sgemm_gflops\": %.2f, \"eigen_sgemm_gflops_median\": %.2f, \"gemm_size\": %d, "
      "\"sink\": %g}\n",
      threads, static_cast<long long>(mib), 2 * bytes / best(copy) / 1e9,
      2 * bytes / median(copy) / 1e9, bytes / best(read) / 1e9, bytes / median(read) / 1e9,
      fma_flop / best(fma) / 1e9, fma_flop / median(fma) / 1e9, kLanes,
      gemm_flop / best(sgemm) / 1e9, gemm_flop / median(sgemm) / 1e9, gemm, sink);
  std::free(a);
  std::free(b);
  return 0;
}
