// The CPU backend keeps each thread's scratch from one call to the next (issue 15.8: a fresh
// kBlockRows x D buffer a pass made random-swap trials at large D spend seconds zeroing memory).
// Reused scratch must never change a result: calls with changing K, D, row counts and kinds,
// on one backend, give the bits of the same call on a fresh backend.

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "segforge/backend.hpp"

using namespace segforge;

namespace {

Matrix<float> random_matrix(std::int64_t n, std::int64_t d, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  Matrix<float> m(n, d);
  for (auto& v : m.values()) v = g(rng);
  return m;
}

struct Outcome {
  std::vector<double> sums, counts;
  double inertia = 0.0, phi = 0.0, batch_inertia = 0.0;
  std::vector<std::int32_t> labels;
  std::vector<float> dist;
  std::vector<float> stepped;
  std::vector<double> step_counts;
  bool operator==(const Outcome&) const = default;
};

/// One of each pooled kind of call: assign_accumulate, assign, reset_min_distances, minibatch_step.
Outcome calls(Backend& backend, const Matrix<float>& x, const Matrix<float>& c) {
  auto data = backend.upload(x.view());
  Outcome o;
  const AccumulateResult acc = backend.assign_accumulate(*data, c.view());
  o.sums = acc.sums;
  o.counts = acc.counts;
  o.inertia = acc.inertia;
  o.labels.resize(static_cast<std::size_t>(x.rows()));
  o.dist.resize(static_cast<std::size_t>(x.rows()));
  backend.assign(*data, c.view(), o.labels, o.dist);
  o.phi = backend.reset_min_distances(*data, c.view());
  Matrix<float> centres = c;
  std::vector<std::int64_t> batch;
  for (std::int64_t i = 0; i < std::min<std::int64_t>(x.rows(), 700); ++i) batch.push_back((i * 7) % x.rows());
  o.step_counts.assign(static_cast<std::size_t>(c.rows()), 1.0);
  o.batch_inertia = backend.minibatch_step(*data, batch, centres.view(), o.step_counts);
  o.stepped.assign(centres.values().begin(), centres.values().end());
  return o;
}

TEST(ScratchReuse, ResultsOnAReusedBackendEqualAFreshBackendsBitForBit) {
  struct Shape {
    std::int64_t n, d, k;
  };
  // Shrinking and growing K and D, a partial last block and chunk, more rows than one chunk.
  const std::vector<Shape> shapes = {{5000, 9, 4}, {300, 9, 11}, {4500, 130, 3}, {257, 2, 2}, {5000, 9, 4}, {90, 130, 40}};
  auto reused = make_cpu_backend(2);
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    const Matrix<float> x = random_matrix(s.n, s.d, 10 + static_cast<unsigned>(i));
    const Matrix<float> c = random_matrix(s.k, s.d, 100 + static_cast<unsigned>(i));
    auto fresh = make_cpu_backend(2);
    EXPECT_TRUE(calls(*reused, x, c) == calls(*fresh, x, c)) << "shape " << i << ": n=" << s.n << " d=" << s.d << " k=" << s.k;
  }
}

}  // namespace
