// Drift between a reference and a current features file under one model (docs/drift.md):
// per-feature PSI / KS / mean shift, per-segment shares and distances through the Backend, a
// Lloyd refit from the model's centres, migration of the ids in both files, one verdict.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "segforge/drift.hpp"
#include "segforge/error.hpp"
#include "segforge/kmeans.hpp"

namespace segforge {

namespace {

std::string number(double v, const char* format = "%.3g") {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string percent(double share) { return number(100.0 * share, "%.1f") + "%"; }

/// "segment 2 'Lapsed Major Donors'", or "segment 2" for a model without names.
std::string segment_label(const std::vector<SegmentDrift>& s, std::size_t c) {
  const std::string index = "segment " + std::to_string(c);
  return s[c].name == index ? index : index + " '" + s[c].name + "'";
}

/// Mean of the sorted values and the population (ddof = 0) standard deviation, in double.
void mean_sd(const std::vector<double>& v, double& mean, double& sd) {
  double sum = 0.0;
  for (double x : v) sum += x;
  mean = sum / static_cast<double>(v.size());
  double ss = 0.0;
  for (double x : v) ss += (x - mean) * (x - mean);
  sd = std::sqrt(ss / static_cast<double>(v.size()));
}

/// Shares of `sorted` in the bins (-inf, e_1], (e_1, e_2], …, (e_m, +inf).
std::vector<double> bin_shares(const std::vector<double>& sorted, const std::vector<double>& edges) {
  std::vector<double> shares(edges.size() + 1, 0.0);
  std::size_t previous = 0;
  for (std::size_t b = 0; b < edges.size(); ++b) {
    // Right-closed bins: everything <= e_b (numpy.searchsorted(edges, x, side='left') == b).
    const auto end = static_cast<std::size_t>(std::upper_bound(sorted.begin(), sorted.end(), edges[b]) - sorted.begin());
    shares[b] = static_cast<double>(end - previous);
    previous = end;
  }
  shares.back() = static_cast<double>(sorted.size() - previous);
  for (double& s : shares) s /= static_cast<double>(sorted.size());
  return shares;
}

/// Euclidean distances of one segment's rows: mean and 90th percentile.
void distance_summary(std::vector<double>& d, double& mean, double& p90) {
  if (d.empty()) {
    mean = p90 = 0.0;
    return;
  }
  std::sort(d.begin(), d.end());
  double sd = 0.0;
  mean_sd(d, mean, sd);
  p90 = linear_quantile(d, 0.9);
}

/// Id keys as text, so that a numeric and a text id spelled alike match.
std::vector<std::string> id_keys(const Ids& ids) {
  std::vector<std::string> keys(static_cast<std::size_t>(ids.size()));
  for (std::int64_t i = 0; i < ids.size(); ++i) keys[static_cast<std::size_t>(i)] = ids.str(i);
  return keys;
}

}  // namespace

std::string drift_level_name(DriftLevel level) {
  switch (level) {
    case DriftLevel::stable: return "stable";
    case DriftLevel::watch: return "watch";
    case DriftLevel::refresh: return "refresh";
  }
  return "stable";
}


double population_stability_index(const std::vector<double>& reference_shares,
                                  const std::vector<double>& current_shares, double epsilon) {
  SEGFORGE_ASSERT(reference_shares.size() == current_shares.size(), "psi: one share per bin in both");
  double psi = 0.0;
  for (std::size_t i = 0; i < reference_shares.size(); ++i) {
    // An empty bin would make ln(c/r) infinite: its share is floored at epsilon (docs/drift.md).
    const double r = std::max(reference_shares[i], epsilon), c = std::max(current_shares[i], epsilon);
    psi += (c - r) * std::log(c / r);
  }
  return psi;
}

double ks_statistic(const std::vector<double>& a, const std::vector<double>& b) {
  // sup_x |F_a(x) − F_b(x)| over the pooled values, each empirical CDF counting ties (x <= v),
  // as scipy.stats.ks_2samp evaluates it at every observation.
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  std::size_t i = 0, j = 0;
  double d = 0.0;
  while (i < a.size() || j < b.size()) {
    const double v = j >= b.size() || (i < a.size() && a[i] <= b[j]) ? a[i] : b[j];
    while (i < a.size() && a[i] <= v) ++i;
    while (j < b.size() && b[j] <= v) ++j;
    d = std::max(d, std::abs(static_cast<double>(i) / na - static_cast<double>(j) / nb));
  }
  return d;
}

double linear_quantile(const std::vector<double>& sorted, double q) {
  SEGFORGE_ASSERT(!sorted.empty(), "quantile of no values");
  const double n = static_cast<double>(sorted.size());
  // numpy's "linear" method (Hyndman & Fan type 7): virtual index h = n·q − q, then its lerp,
  // which for t >= 0.5 interpolates from the upper value (so both ends are exact).
  const double h = std::clamp(n * q - q, 0.0, n - 1.0);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double t = h - std::floor(h);
  const double a = sorted[lo], b = sorted[hi], diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

FeatureDrift feature_drift(std::vector<double> reference, std::vector<double> current, int n_bins, double epsilon) {
  SEGFORGE_ASSERT(!reference.empty() && !current.empty() && n_bins >= 2, "feature_drift: rows and bins");
  std::sort(reference.begin(), reference.end());
  std::sort(current.begin(), current.end());
  FeatureDrift f;
  for (int b = 1; b < n_bins; ++b) {
    const double e = linear_quantile(reference, static_cast<double>(b) / n_bins);
    // A value that fills several quantiles (a count that is mostly 1) gives one edge, not empty bins.
    if (f.edges.empty() || e > f.edges.back()) f.edges.push_back(e);
  }
  f.reference_shares = bin_shares(reference, f.edges);
  f.current_shares = bin_shares(current, f.edges);
  f.psi = population_stability_index(f.reference_shares, f.current_shares, epsilon);
  f.ks = ks_statistic(reference, current);
  mean_sd(reference, f.reference_mean, f.reference_sd);
  mean_sd(current, f.current_mean, f.current_sd);
  const double diff = f.current_mean - f.reference_mean;
  f.mean_shift = f.reference_sd > 0 ? diff / f.reference_sd
                                    : (diff == 0 ? 0.0 : std::numeric_limits<double>::quiet_NaN());
  return f;
}

DriftResult compute_drift(Backend& backend, MatrixView<const float> reference, MatrixView<const float> current,
                          const Ids& reference_ids, const Ids& current_ids, MatrixView<const float> centroids,
                          const std::vector<std::string>& feature_names,
                          const std::vector<std::string>& segment_names, const DriftParams& p) {
  const std::int64_t d = reference.cols, n_ref = reference.rows, n_cur = current.rows;
  const int k = static_cast<int>(centroids.rows);
  SEGFORGE_ASSERT(current.cols == d && centroids.cols == d && n_ref > 0 && n_cur > 0, "drift: validated input");
  DriftResult r;
  r.n_reference = n_ref;
  r.n_current = n_cur;
  r.n_clusters = k;
  r.n_bins = p.n_bins;
  r.epsilon = p.epsilon;
  r.thresholds = p.thresholds;
  const DriftThresholds& th = p.thresholds;

  // ---- features ----------------------------------------------------------------------------
  for (std::int64_t j = 0; j < d; ++j) {
    std::vector<double> a(static_cast<std::size_t>(n_ref)), b(static_cast<std::size_t>(n_cur));
    for (std::int64_t i = 0; i < n_ref; ++i) a[i] = reference.data[i * d + j];
    for (std::int64_t i = 0; i < n_cur; ++i) b[i] = current.data[i * d + j];
    FeatureDrift f = feature_drift(std::move(a), std::move(b), p.n_bins, p.epsilon);
    f.name = j < static_cast<std::int64_t>(feature_names.size()) ? feature_names[j] : "f" + std::to_string(j);
    r.features.push_back(std::move(f));
  }

  // ---- segments under the model's centres ---------------------------------------------------
  auto ref_data = backend.upload(reference);
  auto cur_data = backend.upload(current);
  const Assignment ra = predict(backend, *ref_data, centroids);
  const Assignment ca = predict(backend, *cur_data, centroids);
  r.reference_inertia = ra.inertia;
  r.current_inertia = ca.inertia;
  r.segments.resize(static_cast<std::size_t>(k));
  std::vector<std::vector<double>> ref_dist(k), cur_dist(k);
  for (std::int64_t i = 0; i < n_ref; ++i) ref_dist[ra.labels[i]].push_back(std::sqrt(static_cast<double>(ra.sq_distances[i])));
  for (std::int64_t i = 0; i < n_cur; ++i) cur_dist[ca.labels[i]].push_back(std::sqrt(static_cast<double>(ca.sq_distances[i])));
  std::vector<double> ref_shares(k), cur_shares(k);
  for (int c = 0; c < k; ++c) {
    SegmentDrift& s = r.segments[c];
    s.name = c < static_cast<int>(segment_names.size()) && !segment_names[c].empty() ? segment_names[c]
                                                                                  : "segment " + std::to_string(c);
    s.reference_count = static_cast<std::int64_t>(ref_dist[c].size());
    s.current_count = static_cast<std::int64_t>(cur_dist[c].size());
    s.reference_share = ref_shares[c] = static_cast<double>(s.reference_count) / static_cast<double>(n_ref);
    s.current_share = cur_shares[c] = static_cast<double>(s.current_count) / static_cast<double>(n_cur);
    s.psi_term = population_stability_index({s.reference_share}, {s.current_share}, p.epsilon);
    distance_summary(ref_dist[c], s.reference_mean_distance, s.reference_p90_distance);
    distance_summary(cur_dist[c], s.current_mean_distance, s.current_p90_distance);
  }
  r.share_psi = population_stability_index(ref_shares, cur_shares, p.epsilon);

  // ---- how much better the segments could fit now: Lloyd from the model's centres ------------
  LloydParams lp;
  lp.n_clusters = k;
  lp.max_iter = p.refit_max_iter;
  lp.tol = p.refit_tol;
  lp.n_init = 1;
  lp.init.init = Init::given;
  lp.init.centroids = Matrix<float>(centroids.rows, centroids.cols,
                                    std::vector<float>(centroids.data, centroids.data + centroids.rows * centroids.cols));
  const KMeansResult refit = fit_lloyd(backend, *cur_data, lp);
  r.refit_inertia = refit.inertia;
  r.refit_n_iter = refit.n_iter;
  r.refit_converged = refit.converged;
  r.refit_gain = r.current_inertia > 0 ? std::max(0.0, 1.0 - r.refit_inertia / r.current_inertia) : 0.0;
  for (int c = 0; c < k; ++c) {
    double ss = 0.0;
    for (std::int64_t j = 0; j < d; ++j) {
      const double diff = static_cast<double>(refit.centroids(c, j)) - centroids.data[c * d + j];
      ss += diff * diff;
    }
    r.segments[c].refit_centre_shift = std::sqrt(ss);
  }

  // ---- migration of the ids in both files ---------------------------------------------------
  Migration& m = r.migration;
  m.counts = Matrix<std::int64_t>(k, k, 0);
  m.row_shares = Matrix<double>(k, k, 0.0);
  m.ids_available = p.match_ids && !reference_ids.empty() && !current_ids.empty();
  if (m.ids_available) {
    const std::vector<std::string> ref_keys = id_keys(reference_ids), cur_keys = id_keys(current_ids);
    std::unordered_map<std::string, std::int64_t> ref_row;
    ref_row.reserve(ref_keys.size());
    for (std::size_t i = 0; i < ref_keys.size(); ++i) ref_row.emplace(ref_keys[i], static_cast<std::int64_t>(i));
    for (std::size_t i = 0; i < cur_keys.size(); ++i) {
      const auto it = ref_row.find(cur_keys[i]);
      if (it == ref_row.end()) {
        ++m.n_joiners;
        continue;
      }
      ++m.n_common;
      const int from = ra.labels[it->second], to = ca.labels[i];
      ++m.counts(from, to);
      if (from != to) ++m.n_moved;
    }
    m.n_leavers = n_ref - m.n_common;
    m.moved_share = m.n_common > 0 ? static_cast<double>(m.n_moved) / static_cast<double>(m.n_common) : 0.0;
    for (int a = 0; a < k; ++a) {
      std::int64_t row = 0;
      for (int b = 0; b < k; ++b) row += m.counts(a, b);
      for (int b = 0; b < k; ++b)
        m.row_shares(a, b) = row > 0 ? static_cast<double>(m.counts(a, b)) / static_cast<double>(row) : 0.0;
    }
  }

  // ---- the verdict --------------------------------------------------------------------------
  auto judge = [&](double value, double watch, double refresh, const std::string& text) {
    if (!(value >= watch)) return;
    const DriftLevel level = value >= refresh ? DriftLevel::refresh : DriftLevel::watch;
    r.reasons.push_back({level, text + " (" + drift_level_name(level) + " at " + number(level == DriftLevel::refresh ? refresh : watch) + ")"});
  };
  // Features, worst first.
  std::vector<std::size_t> order(r.features.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto x, auto y) { return r.features[x].psi > r.features[y].psi; });
  for (std::size_t j : order) {
    const FeatureDrift& f = r.features[j];
    judge(f.psi, th.feature_psi_watch, th.feature_psi_refresh,
          "feature '" + f.name + "': PSI " + number(f.psi) + ", mean shifted " + number(f.mean_shift, "%+.2f") +
              " reference SDs");
  }
  if (k > 1) {
    std::size_t worst = 0;
    for (std::size_t c = 1; c < r.segments.size(); ++c)
      if (r.segments[c].psi_term > r.segments[worst].psi_term) worst = c;
    const SegmentDrift& s = r.segments[worst];
    judge(r.share_psi, th.share_psi_watch, th.share_psi_refresh,
          "segment shares: PSI " + number(r.share_psi) + ", most of it " + segment_label(r.segments, worst) + " (" +
              percent(s.reference_share) + " → " + percent(s.current_share) + ")");
  }
  for (std::size_t c = 0; c < r.segments.size(); ++c) {
    const SegmentDrift& s = r.segments[c];
    // Too few rows on either side: the mean distance is noise, not drift.
    if (s.reference_count < p.min_segment_rows || s.current_count < p.min_segment_rows || s.reference_mean_distance <= 0)
      continue;
    const double rise = s.current_mean_distance / s.reference_mean_distance - 1.0;
    judge(rise, th.distance_watch, th.distance_refresh,
          segment_label(r.segments, c) + ": mean distance to its centre rose " + number(100.0 * rise, "%.0f") + "% (" +
              number(s.reference_mean_distance) + " → " + number(s.current_mean_distance) + ")");
  }
  {
    std::size_t moved = 0;
    for (std::size_t c = 1; c < r.segments.size(); ++c)
      if (r.segments[c].refit_centre_shift > r.segments[moved].refit_centre_shift) moved = c;
    judge(r.refit_gain, th.refit_watch, th.refit_refresh,
          "a refit from the model's centres fits the current data " + number(100.0 * r.refit_gain, "%.1f") +
              "% better (inertia " + number(r.current_inertia, "%.6g") + " → " + number(r.refit_inertia, "%.6g") +
              "); the centre that moved most: " + segment_label(r.segments, moved));
  }
  if (m.n_common > 0) {
    // The segment most members left, by count: a tiny segment that lost its 3 members matters less.
    int from = 0;
    std::int64_t most = -1;
    for (int a = 0; a < k; ++a) {
      std::int64_t left = 0;
      for (int b = 0; b < k; ++b) left += b == a ? 0 : m.counts(a, b);
      if (left > most) most = left, from = a;
    }
    judge(m.moved_share, th.migration_watch, th.migration_refresh,
          percent(m.moved_share) + " of the " + std::to_string(m.n_common) +
              " ids in both files changed segment; most left " + segment_label(r.segments, from) + " (" +
              std::to_string(most) + ", " + percent(1.0 - m.row_shares(from, from)) + " of its members)");
  }
  std::stable_sort(r.reasons.begin(), r.reasons.end(),
                   [](const DriftReason& x, const DriftReason& y) { return x.level > y.level; });
  r.verdict = r.reasons.empty() ? DriftLevel::stable : r.reasons.front().level;
  if (r.reasons.empty())
    r.reasons.push_back({DriftLevel::stable, "no statistic reached its watch threshold (largest feature PSI " +
                                                 number(r.features[order.front()].psi) + ", share PSI " +
                                                 number(r.share_psi) + ", refit gain " +
                                                 number(100.0 * r.refit_gain, "%.1f") + "%)"});
  return r;
}

}  // namespace segforge
