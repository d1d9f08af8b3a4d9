// The CPU backend's small row kernels against the plain loops they stand in for, bit for bit:
// a mini-batch step computes its rows' norms with sq_norms where the dataset used sq_norm, and
// draws its batch with Rng::fill_below where it used below, so any difference would change the
// fitted centres.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels.hpp"
#include "segforge/rng.hpp"

namespace segforge {
namespace {

std::vector<float> random_rows(std::int64_t n, std::int64_t d, unsigned seed) {
  std::mt19937 gen(seed);
  // Magnitudes over many binades, so the double sums round (values of one binade often do not).
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-20, 20);
  std::vector<float> x(static_cast<std::size_t>(n * d));
  for (auto& v : x) v = std::ldexp(mantissa(gen), exponent(gen));
  return x;
}

TEST(CpuKernels, SqNormsIsSqNormOfEachRow) {
  for (std::int64_t n : {1, 7, 8, 9, 31, 256}) {
    for (std::int64_t d : {1, 3, 8, 16, 17, 100}) {
      const std::vector<float> x = random_rows(n, d, static_cast<unsigned>(n * 1000 + d));
      std::vector<float> got(static_cast<std::size_t>(n), -1.0f);
      cpu::sq_norms(x.data(), n, d, got.data());
      for (std::int64_t i = 0; i < n; ++i) {
        const float want = cpu::sq_norm(x.data() + i * d, d);
        EXPECT_EQ(std::memcmp(&got[i], &want, sizeof want), 0) << "n " << n << " d " << d << " row " << i;
      }
    }
  }
}

TEST(CpuKernels, CopyRowCopiesExactly) {
  for (std::int64_t d : {1, 15, 16, 17, 33, 200}) {
    const std::vector<float> x = random_rows(1, d, static_cast<unsigned>(d));
    std::vector<float> y(static_cast<std::size_t>(d) + 1, 7.0f);
    cpu::copy_row(x.data(), d, y.data());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), sizeof(float) * static_cast<std::size_t>(d)), 0) << "d " << d;
    EXPECT_EQ(y[static_cast<std::size_t>(d)], 7.0f) << "wrote past the row, d " << d;
  }
}

// Rng::below's rule before fill_below (below now calls it): reject the draws at or past the
// largest multiple of n, then the remainder.
std::int64_t reference_below(Rng& rng, std::int64_t n) {
  const auto bound = static_cast<std::uint64_t>(n);
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t r = rng.next();
  while (r >= limit) r = rng.next();
  return static_cast<std::int64_t>(r % bound);
}

TEST(Rng, FillBelowDrawsWhatBelowDraws) {
  // Bounds near powers of two and near 2^63, where the rejection step is taken most often.
  for (std::int64_t n : {std::int64_t{1}, std::int64_t{3}, std::int64_t{1000}, (std::int64_t{1} << 40) + 1,
                         (std::int64_t{1} << 62) + 12345, INT64_MAX}) {
    Rng a(99), b(99);
    std::vector<std::int64_t> got(5000);
    a.fill_below(got, n);
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], reference_below(b, n)) << "n " << n << " draw " << i;
    EXPECT_EQ(a.below(n), reference_below(b, n)) << "below, n " << n;
    EXPECT_EQ(a.next(), b.next()) << "the streams part ways after the draws, n " << n;
  }
}

}  // namespace
}  // namespace segforge
