// Kneedle (Satopää, Albrecht, Irwin & Raghavan 2011) for the elbow of the inertia curve.

#include <algorithm>
#include <cmath>

#include "segforge/error.hpp"
#include "segforge/select.hpp"

namespace segforge {

KneedleResult kneedle(std::span<const double> x, std::span<const double> y, double sensitivity) {
  SEGFORGE_ASSERT(x.size() == y.size(), "kneedle: x and y differ in length");
  KneedleResult out;
  const auto n = static_cast<int>(x.size());
  if (n < 2) return out;

  // Step 1: normalise to [0, 1]; flip y so a decreasing convex elbow becomes a knee.
  const double x0 = x.front(), x1 = x.back();
  const auto [ymin_it, ymax_it] = std::minmax_element(y.begin(), y.end());
  const double ymin = *ymin_it, ymax = *ymax_it;
  std::vector<double> xn(static_cast<std::size_t>(n)), yn(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    xn[i] = (x[i] - x0) / (x1 - x0);
    yn[i] = ymax > ymin ? 1.0 - (y[i] - ymin) / (ymax - ymin) : 0.0;
  }
  // Step 2: the difference curve.
  out.difference.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out.difference[i] = yn[i] - xn[i];
  const std::vector<double>& d = out.difference;
  if (n < 3 || !(ymax > ymin)) return out;

  // Step 3: local maxima and minima of d (ends compared with their one neighbour).
  std::vector<char> is_max(static_cast<std::size_t>(n), 0), is_min(static_cast<std::size_t>(n), 0);
  for (int i = 0; i < n; ++i) {
    const double left = d[std::max(i - 1, 0)], right = d[std::min(i + 1, n - 1)];
    is_max[i] = d[i] >= left && d[i] >= right;
    is_min[i] = d[i] <= left && d[i] <= right;
    if (is_max[i]) out.maxima.push_back(i);
  }
  if (out.maxima.empty()) return out;
  const double step = (xn[n - 1] - xn[0]) / static_cast<double>(n - 1);  // mean(diff(x_n))

  // Step 4: walk from the first maximum; a knee is declared when d falls below the threshold
  // of the last maximum passed (T = d_lmx − S·mean(diff(x_n))) before the curve ends.
  double threshold = 0.0;
  int threshold_index = out.maxima.front();
  for (int i = out.maxima.front(); i < n - 1; ++i) {
    if (is_max[i]) {
      threshold = d[i] - sensitivity * step;
      threshold_index = i;
    }
    if (is_min[i]) threshold = 0.0;
    if (d[i + 1] < threshold) {
      out.knee_index = threshold_index;
      break;
    }
  }
  return out;
}

}  // namespace segforge
