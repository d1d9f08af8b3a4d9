// Small dense linear algebra for choosing K: the Jacobi eigensolver, the data's covariance and
// principal axes through the Backend seam, and the gap statistic's reference box.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "segforge/error.hpp"
#include "segforge/select.hpp"

namespace segforge {

namespace {

/// Rows gathered per Backend::gather call when streaming the data to the host.
constexpr std::int64_t kChunkRows = 65536;

/// Calls `visit(chunk, first_row)` for consecutive chunks of the dataset's rows, in order.
template <class Visit>
void for_each_chunk(Backend& backend, const Dataset& data, Visit visit) {
  const std::int64_t n = data.n_samples();
  std::vector<std::int64_t> rows;
  for (std::int64_t begin = 0; begin < n; begin += kChunkRows) {
    const std::int64_t count = std::min(kChunkRows, n - begin);
    rows.resize(static_cast<std::size_t>(count));
    std::iota(rows.begin(), rows.end(), begin);
    const Matrix<float> chunk = backend.gather(data, rows);
    visit(chunk, begin);
  }
}

}  // namespace

SymmetricEigen symmetric_eigen(std::span<const double> a_in, int n) {
  SEGFORGE_ASSERT(static_cast<std::int64_t>(a_in.size()) == static_cast<std::int64_t>(n) * n,
                  "symmetric_eigen: matrix must be n x n");
  std::vector<double> a(a_in.begin(), a_in.end());
  std::vector<double> v(static_cast<std::size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) v[i * n + i] = 1.0;
  auto at = [n](std::vector<double>& m, int i, int j) -> double& { return m[static_cast<std::size_t>(i) * n + j]; };

  double norm = 0.0;
  for (double x : a) norm += x * x;
  // Cyclic Jacobi (Golub & Van Loan Alg. 8.5.3): sweep every off-diagonal (p, q), zeroing it
  // with the rotation of sym.schur2, until the off-diagonal mass is negligible.
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) off += at(a, p, q) * at(a, p, q);
    if (off <= 1e-30 * norm || off == 0.0) break;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) {
        const double apq = at(a, p, q);
        if (apq == 0.0) continue;
        // sym.schur2: τ = (a_qq − a_pp) / (2 a_pq), t = sign(τ) / (|τ| + √(1 + τ²)).
        const double tau = (at(a, q, q) - at(a, p, p)) / (2.0 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::abs(tau) + std::sqrt(1.0 + tau * tau));
        const double c = 1.0 / std::sqrt(1.0 + t * t);
        const double s = t * c;
        for (int k = 0; k < n; ++k) {  // A ← A·J (columns p, q)
          const double akp = at(a, k, p), akq = at(a, k, q);
          at(a, k, p) = c * akp - s * akq;
          at(a, k, q) = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // A ← Jᵀ·A (rows p, q)
          const double apk = at(a, p, k), aqk = at(a, q, k);
          at(a, p, k) = c * apk - s * aqk;
          at(a, q, k) = s * apk + c * aqk;
        }
        at(a, p, q) = at(a, q, p) = 0.0;
        for (int k = 0; k < n; ++k) {  // V ← V·J
          const double vkp = at(v, k, p), vkq = at(v, k, q);
          at(v, k, p) = c * vkp - s * vkq;
          at(v, k, q) = s * vkp + c * vkq;
        }
      }
    }
  }

  std::vector<int> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return at(a, i, i) > at(a, j, j); });
  SymmetricEigen out;
  out.values.resize(static_cast<std::size_t>(n));
  out.vectors.assign(static_cast<std::size_t>(n) * n, 0.0);
  for (int j = 0; j < n; ++j) {
    const int src = order[j];
    out.values[j] = at(a, src, src);
    // Sign convention: the entry of largest magnitude is positive.
    int big = 0;
    for (int i = 1; i < n; ++i)
      if (std::abs(at(v, i, src)) > std::abs(at(v, big, src))) big = i;
    const double sign = at(v, big, src) < 0 ? -1.0 : 1.0;
    for (int i = 0; i < n; ++i) out.vectors[static_cast<std::size_t>(i) * n + j] = sign * at(v, i, src);
  }
  return out;
}

std::vector<double> covariance(Backend& backend, const Dataset& data) {
  const std::int64_t d = data.n_features();
  const ColumnStats stats = backend.column_stats(data);
  std::vector<double> cov(static_cast<std::size_t>(d * d), 0.0);
  std::vector<double> centred(static_cast<std::size_t>(d));
  // Σ (x − μ)(x − μ)ᵀ in double, rows in order: the same data give the same matrix.
  for_each_chunk(backend, data, [&](const Matrix<float>& chunk, std::int64_t) {
    for (std::int64_t r = 0; r < chunk.rows(); ++r) {
      const float* x = chunk.row(r);
      for (std::int64_t j = 0; j < d; ++j) centred[j] = static_cast<double>(x[j]) - stats.mean[j];
      for (std::int64_t i = 0; i < d; ++i)
        for (std::int64_t j = i; j < d; ++j) cov[i * d + j] += centred[i] * centred[j];
    }
  });
  const auto n = static_cast<double>(data.n_samples());
  for (std::int64_t i = 0; i < d; ++i)
    for (std::int64_t j = i; j < d; ++j) cov[j * d + i] = cov[i * d + j] = cov[i * d + j] / n;
  return cov;
}

PcaBox pca_box(Backend& backend, const Dataset& data) {
  const std::int64_t d = data.n_features();
  PcaBox box;
  box.mean = backend.column_stats(data).mean;
  const SymmetricEigen eig = symmetric_eigen(covariance(backend, data), static_cast<int>(d));
  box.rotation = eig.vectors;
  box.variance = eig.values;
  box.lower.assign(static_cast<std::size_t>(d), std::numeric_limits<double>::infinity());
  box.upper.assign(static_cast<std::size_t>(d), -std::numeric_limits<double>::infinity());
  std::vector<double> centred(static_cast<std::size_t>(d));
  for_each_chunk(backend, data, [&](const Matrix<float>& chunk, std::int64_t) {
    for (std::int64_t r = 0; r < chunk.rows(); ++r) {
      const float* x = chunk.row(r);
      for (std::int64_t i = 0; i < d; ++i) centred[i] = static_cast<double>(x[i]) - box.mean[i];
      for (std::int64_t j = 0; j < d; ++j) {
        double p = 0.0;
        for (std::int64_t i = 0; i < d; ++i) p += centred[i] * box.rotation[i * d + j];
        box.lower[j] = std::min(box.lower[j], p);
        box.upper[j] = std::max(box.upper[j], p);
      }
    }
  });
  return box;
}

Matrix<float> pca_project(const PcaBox& box, MatrixView<const float> x, int n_components) {
  const std::int64_t d = x.cols;
  const int m = static_cast<int>(std::min<std::int64_t>(n_components, d));
  Matrix<float> out(x.rows, m);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (int j = 0; j < m; ++j) {
      double p = 0.0;
      for (std::int64_t i = 0; i < d; ++i)
        p += (static_cast<double>(x(r, i)) - box.mean[i]) * box.rotation[i * d + j];
      out(r, j) = static_cast<float>(p);
    }
  return out;
}

Matrix<float> gap_reference_set(const PcaBox& box, MatrixView<const double> uniform) {
  const std::int64_t d = uniform.cols;
  SEGFORGE_ASSERT(static_cast<std::int64_t>(box.mean.size()) == d, "reference draws must have n_features columns");
  Matrix<float> out(uniform.rows, d);
  std::vector<double> z(static_cast<std::size_t>(d));
  for (std::int64_t r = 0; r < uniform.rows; ++r) {
    // Z' uniform in the box along the principal axes, then Z = Z'·Vᵀ + mean.
    for (std::int64_t j = 0; j < d; ++j)
      z[j] = box.lower[j] + uniform(r, j) * (box.upper[j] - box.lower[j]);
    for (std::int64_t i = 0; i < d; ++i) {
      double x = box.mean[i];
      for (std::int64_t j = 0; j < d; ++j) x += z[j] * box.rotation[i * d + j];
      out(r, i) = static_cast<float>(x);
    }
  }
  return out;
}

}  // namespace segforge
