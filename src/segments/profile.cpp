// Segment profiles: size, share, centre in original units, z-scores, distinguishing features.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "segforge/error.hpp"
#include "segforge/segments.hpp"

namespace segforge {

double to_original_units(const Scaler& scaler, std::size_t j, double value) {
  if (scaler.empty()) return value;
  // original = inverse_transform(scaled·scale + mean), as /scaler documents.
  const double t = value * scaler.scale[j] + scaler.mean[j];
  const std::string& transform = j < scaler.transform.size() ? scaler.transform[j] : "identity";
  if (transform == "identity" || transform.empty()) return t;
  if (transform == "log1p") return std::expm1(t);
  // segforge-prep's transform for money that refunds can make negative: sign(x)·log1p(|x|).
  if (transform == "signed_log1p") return std::copysign(std::expm1(std::abs(t)), t);
  if (transform == "log") return std::exp(t);
  if (transform == "sqrt") return t * t;
  return std::numeric_limits<double>::quiet_NaN();
}

std::vector<SegmentProfile> segment_profiles(MatrixView<const float> centroids,
                                             std::span<const std::int64_t> sizes,
                                             const ColumnStats& stats, const Scaler& scaler,
                                             int n_top) {
  const std::int64_t k = centroids.rows, d = centroids.cols;
  SEGFORGE_ASSERT(static_cast<std::int64_t>(sizes.size()) == k, "profiles: one size per centre");
  SEGFORGE_ASSERT(static_cast<std::int64_t>(stats.mean.size()) == d, "profiles: column stats must match");
  SEGFORGE_ASSERT(scaler.empty() || static_cast<std::int64_t>(scaler.mean.size()) == d,
                  "profiles: scaler must match n_features");
  const double total = static_cast<double>(std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0}));
  std::vector<SegmentProfile> out;
  for (std::int64_t c = 0; c < k; ++c) {
    SegmentProfile p;
    p.segment = static_cast<int>(c);
    p.size = sizes[c];
    p.share = total > 0 ? static_cast<double>(sizes[c]) / total : 0.0;
    for (std::int64_t j = 0; j < d; ++j) {
      const double v = centroids(c, j);
      const double sd = std::sqrt(stats.variance[j]);
      p.centre.push_back(v);
      p.centre_original.push_back(to_original_units(scaler, static_cast<std::size_t>(j), v));
      p.z_scores.push_back(sd > 0 ? (v - stats.mean[j]) / sd : 0.0);
    }
    std::vector<int> order(static_cast<std::size_t>(d));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return std::abs(p.z_scores[a]) > std::abs(p.z_scores[b]); });
    order.resize(static_cast<std::size_t>(std::min<std::int64_t>(n_top, d)));
    p.top_features = std::move(order);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace segforge
