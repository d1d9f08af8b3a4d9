// Silhouette, Davies–Bouldin and Calinski–Harabasz, against the Backend seam.

#include "segforge/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "segforge/error.hpp"
#include "segforge/rng.hpp"

namespace segforge {

namespace {

/// Rows per call of Backend::cluster_distance_sums: bounds the host memory to tile·K doubles.
constexpr std::int64_t kSilhouetteTile = 4096;

std::vector<std::int64_t> cluster_sizes(std::span<const std::int32_t> labels, int n_clusters) {
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(n_clusters), 0);
  for (auto l : labels) ++sizes[static_cast<std::size_t>(l)];
  return sizes;
}

/// Per-cluster means of the labelled rows, in double.
std::vector<double> cluster_means(const LabelStats& s, std::int64_t d) {
  std::vector<double> means(s.sums.size(), 0.0);
  for (std::size_t c = 0; c < s.counts.size(); ++c)
    if (s.counts[c] > 0)
      for (std::int64_t j = 0; j < d; ++j) means[c * d + j] = s.sums[c * d + j] / s.counts[c];
  return means;
}

Matrix<float> to_float(const std::vector<double>& v, std::int64_t rows, std::int64_t cols) {
  Matrix<float> m(rows, cols);
  for (std::int64_t i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(v[i]);
  return m;
}

}  // namespace

namespace {

/// s(i) for every row from its cluster's and the other clusters' distance sums (`sums`, one
/// tile of rows from `begin`), then the means once every row has its value.
void silhouette_values(const Matrix<double>& sums, std::int64_t begin, std::span<const std::int32_t> labels,
                       const std::vector<std::int64_t>& sizes, std::vector<double>& values) {
  const auto n_clusters = static_cast<int>(sizes.size());
  for (std::int64_t r = 0; r < sums.rows(); ++r) {
    const std::int64_t i = begin + r;
    const std::int32_t own = labels[i];
    if (sizes[own] <= 1) {  // Rousseeuw: s(i) = 0 in a singleton cluster
      values[i] = 0.0;
      continue;
    }
    // a(i): mean distance to the rest of its cluster; b(i): to the nearest other cluster.
    const double a = sums(r, own) / static_cast<double>(sizes[own] - 1);
    double b = std::numeric_limits<double>::infinity();
    for (int c = 0; c < n_clusters; ++c)
      if (c != own && sizes[c] > 0) b = std::min(b, sums(r, c) / static_cast<double>(sizes[c]));
    const double denom = std::max(a, b);
    values[i] = denom > 0 ? (b - a) / denom : 0.0;
  }
}

void silhouette_means(SilhouetteResult& out, std::span<const std::int32_t> labels,
                      const std::vector<std::int64_t>& sizes) {
  // Fixed-order sums: the same labels give the same score.
  const auto n_clusters = sizes.size();
  std::vector<double> per_cluster(n_clusters, 0.0);
  double total = 0.0;
  for (std::size_t i = 0; i < out.values.size(); ++i) {
    total += out.values[i];
    per_cluster[labels[i]] += out.values[i];
  }
  out.score = total / static_cast<double>(out.values.size());
  out.cluster_means.resize(n_clusters);
  for (std::size_t c = 0; c < n_clusters; ++c)
    out.cluster_means[c] = sizes[c] > 0 ? per_cluster[c] / static_cast<double>(sizes[c])
                                        : std::numeric_limits<double>::quiet_NaN();
}

/// The cells of a batch of labellings: rows with the same label in every labelling of the
/// batch share a cell; cells are numbered in the lexicographic order of their label tuples, so
/// one labelling's cells are its labels (those present, in ascending order).
struct Cells {
  std::vector<std::int32_t> of_row;                ///< [n] the row's cell
  std::vector<std::vector<std::int32_t>> label;    ///< [labelling][cell] the cell's label
  std::int64_t count = 0;
};

/// Refines `cells` by one more labelling; false (and `cells` unchanged) when that would make
/// more than `cap` cells.
bool refine_cells(Cells& cells, std::span<const std::int32_t> labels, int n_clusters, std::int64_t cap) {
  const std::size_t n = labels.size();
  std::vector<std::int64_t> keys(n);
  for (std::size_t i = 0; i < n; ++i)
    keys[i] = static_cast<std::int64_t>(cells.of_row[i]) * n_clusters + labels[i];
  std::vector<std::int64_t> distinct = keys;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  const auto count = static_cast<std::int64_t>(distinct.size());
  if (count > cap && cells.count > 0) return false;
  for (std::size_t i = 0; i < n; ++i)
    cells.of_row[i] = static_cast<std::int32_t>(std::lower_bound(distinct.begin(), distinct.end(), keys[i]) - distinct.begin());
  for (auto& old : cells.label) {  // each earlier labelling's label of every new cell
    std::vector<std::int32_t> relabelled(static_cast<std::size_t>(count));
    for (std::int64_t c = 0; c < count; ++c) relabelled[c] = old[distinct[c] / n_clusters];
    old = std::move(relabelled);
  }
  std::vector<std::int32_t> own(static_cast<std::size_t>(count));
  for (std::int64_t c = 0; c < count; ++c) own[c] = static_cast<std::int32_t>(distinct[c] % n_clusters);
  cells.label.push_back(std::move(own));
  cells.count = count;
  return true;
}

/// Host memory for one call's cell sums, in doubles (32 MB): rows per call shrink as cells grow.
constexpr std::int64_t kCellSumBudget = std::int64_t{1} << 22;

}  // namespace

SilhouetteResult silhouette_exact(Backend& backend, const Dataset& data,
                                  std::span<const std::int32_t> labels, int n_clusters,
                                  const ProgressFn& progress) {
  const std::span<const std::int32_t> one[] = {labels};
  const int k[] = {n_clusters};
  return std::move(silhouette_exact_many(backend, data, one, k, progress).front());
}

std::vector<SilhouetteResult> silhouette_exact_many(Backend& backend, const Dataset& data,
                                                    std::span<const std::span<const std::int32_t>> labellings,
                                                    std::span<const int> n_clusters,
                                                    const ProgressFn& progress) {
  SEGFORGE_ASSERT(labellings.size() == n_clusters.size(), "one cluster count per labelling");
  const std::int64_t n = data.n_samples();
  const std::size_t m = labellings.size();
  std::vector<SilhouetteResult> out(m);
  std::vector<std::vector<std::int64_t>> sizes(m);
  for (std::size_t l = 0; l < m; ++l) {
    SEGFORGE_ASSERT(static_cast<std::int64_t>(labellings[l].size()) == n, "labels must have n_samples entries");
    SEGFORGE_ASSERT(n_clusters[l] >= 1, "n_clusters must be >= 1");
    for (const auto c : labellings[l]) SEGFORGE_ASSERT(c >= 0 && c < n_clusters[l], "label out of range");
    sizes[l] = cluster_sizes(labellings[l], n_clusters[l]);
    out[l].values.resize(static_cast<std::size_t>(n));
  }
  // Labellings are batched while their cells stay few (at most N/32): each batch costs one
  // pass over all pairs of rows plus, per row, one add per cell and labelling.
  const std::int64_t cap = std::max<std::int64_t>(n / 32, 1);
  std::int64_t done = 0;
  const std::int64_t total = n * static_cast<std::int64_t>(m);
  for (std::size_t first = 0; first < m;) {
    Cells cells;
    cells.of_row.assign(static_cast<std::size_t>(n), 0);
    std::size_t last = first;
    while (last < m && refine_cells(cells, labellings[last], n_clusters[last], cap)) ++last;
    const std::int64_t tile = std::clamp<std::int64_t>(kCellSumBudget / cells.count, 64, kSilhouetteTile);
    for (std::int64_t begin = 0; begin < n; begin += tile) {
      const std::int64_t count = std::min(tile, n - begin);
      const Matrix<double> cell_sums =
          backend.cluster_distance_sums(data, cells.of_row, static_cast<int>(cells.count), begin, count);
      for (std::size_t l = first; l < last; ++l) {
        // Each label's sum over its cells, cells ascending (one cell: the cell's sum itself).
        const std::vector<std::int32_t>& label_of = cells.label[l - first];
        Matrix<double> sums(count, n_clusters[l], 0.0);
        for (std::int64_t r = 0; r < count; ++r)
          for (std::int64_t c = 0; c < cells.count; ++c) sums(r, label_of[c]) += cell_sums(r, c);
        silhouette_values(sums, begin, labellings[l], sizes[l], out[l].values);
      }
      done += count * static_cast<std::int64_t>(last - first);
      if (progress) progress({"silhouette", 0, done, total});
    }
    first = last;
  }
  for (std::size_t l = 0; l < m; ++l) silhouette_means(out[l], labellings[l], sizes[l]);
  return out;
}

SilhouetteResult silhouette_sampled(Backend& backend, const Dataset& data,
                                    std::span<const std::int32_t> labels, int n_clusters,
                                    std::int64_t sample_size, std::uint64_t seed, int n_bootstrap,
                                    const ProgressFn& progress) {
  const std::int64_t n = data.n_samples();
  if (sample_size >= n) return silhouette_exact(backend, data, labels, n_clusters, progress);

  // Stratified allocation: min(2, size) rows per cluster, the rest in proportion to size
  // (largest remainder), never more than a cluster has.
  const std::vector<std::int64_t> sizes = cluster_sizes(labels, n_clusters);
  std::vector<std::int64_t> take(static_cast<std::size_t>(n_clusters), 0);
  std::int64_t left = sample_size;
  for (int c = 0; c < n_clusters && left > 0; ++c) {
    take[c] = std::min<std::int64_t>({sizes[c], 2, left});
    left -= take[c];
  }
  std::vector<double> remainder(static_cast<std::size_t>(n_clusters), 0.0);
  const std::int64_t pool = left;
  for (int c = 0; c < n_clusters; ++c) {
    const double share = static_cast<double>(pool) * static_cast<double>(sizes[c]) / static_cast<double>(n);
    const auto extra = std::min(static_cast<std::int64_t>(share), sizes[c] - take[c]);
    take[c] += extra;
    left -= extra;
    remainder[c] = share - std::floor(share);
  }
  std::vector<int> order(static_cast<std::size_t>(n_clusters));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return remainder[a] > remainder[b]; });
  while (left > 0) {
    bool placed = false;
    for (int c : order)
      if (left > 0 && take[c] < sizes[c]) {
        ++take[c];
        --left;
        placed = true;
      }
    if (!placed) break;
  }

  // Draw each cluster's rows uniformly without replacement: positions within the cluster, then
  // one scan of the labels finds those rows (memory O(sample + K), not O(N): out of core, N
  // row indices would not fit the budget).
  Rng rng(seed);
  std::vector<std::vector<std::int64_t>> picks(static_cast<std::size_t>(n_clusters));
  for (int c = 0; c < n_clusters; ++c) {
    picks[c] = rng.choose(sizes[c], take[c]);
    std::sort(picks[c].begin(), picks[c].end());
  }
  std::vector<std::int64_t> rows;
  rows.reserve(static_cast<std::size_t>(sample_size));
  std::vector<std::int64_t> seen(static_cast<std::size_t>(n_clusters), 0), next(static_cast<std::size_t>(n_clusters), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::size_t>(labels[i]);
    if (next[c] < static_cast<std::int64_t>(picks[c].size()) && picks[c][next[c]] == seen[c]) {
      rows.push_back(i);
      ++next[c];
    }
    ++seen[c];
  }

  std::vector<std::int32_t> sample_labels;
  sample_labels.reserve(rows.size());
  for (std::int64_t i : rows) sample_labels.push_back(labels[i]);
  std::unique_ptr<Dataset> sample = backend.upload(backend.gather(data, rows).view());
  SilhouetteResult out = silhouette_exact(backend, *sample, sample_labels, n_clusters, progress);
  out.rows = std::move(rows);
  out.sampled = true;

  // Bootstrap standard error of the mean over the scored rows (Efron & Tibshirani 1993).
  const auto m = static_cast<std::int64_t>(out.values.size());
  std::vector<double> means;
  for (int b = 0; b < n_bootstrap; ++b) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < m; ++i) sum += out.values[rng.below(m)];
    means.push_back(sum / static_cast<double>(m));
  }
  if (means.size() >= 2) {
    const double mean = std::accumulate(means.begin(), means.end(), 0.0) / static_cast<double>(means.size());
    double ss = 0.0;
    for (double v : means) ss += (v - mean) * (v - mean);
    out.standard_error = std::sqrt(ss / static_cast<double>(means.size() - 1));
  }
  return out;
}

double davies_bouldin(Backend& backend, const Dataset& data, std::span<const std::int32_t> labels,
                      int n_clusters) {
  const std::int64_t d = data.n_features();
  const LabelStats sums = backend.label_stats(data, labels, n_clusters, {});
  const std::vector<double> means = cluster_means(sums, d);
  const Matrix<float> centroids = to_float(means, n_clusters, d);
  const LabelStats dists = backend.label_stats(data, labels, n_clusters, centroids.view());

  // S_k: mean distance of cluster k's rows to its centroid; M_kl: centroid distance.
  std::vector<int> present;
  for (int c = 0; c < n_clusters; ++c)
    if (sums.counts[c] > 0) present.push_back(c);
  std::vector<double> intra(static_cast<std::size_t>(n_clusters), 0.0);
  bool all_intra_zero = true;
  for (int c : present) {
    intra[c] = dists.dist_sums[c] / sums.counts[c];
    all_intra_zero = all_intra_zero && std::abs(intra[c]) <= 1e-8;
  }
  bool all_centres_equal = true;
  auto centre_distance = [&](int a, int b) {
    double s = 0.0;
    for (std::int64_t j = 0; j < d; ++j) {
      const double diff = means[a * d + j] - means[b * d + j];
      s += diff * diff;
    }
    return std::sqrt(s);
  };
  for (int a : present)
    for (int b : present)
      if (a != b && centre_distance(a, b) > 1e-8) all_centres_equal = false;
  if (all_intra_zero || all_centres_equal) return 0.0;  // as scikit-learn

  double total = 0.0;
  for (int a : present) {
    double worst = 0.0;
    for (int b : present) {
      if (a == b) continue;
      const double m = centre_distance(a, b);
      if (m > 0) worst = std::max(worst, (intra[a] + intra[b]) / m);
    }
    total += worst;
  }
  return total / static_cast<double>(present.size());
}

double calinski_harabasz(Backend& backend, const Dataset& data,
                         std::span<const std::int32_t> labels, int n_clusters) {
  const std::int64_t d = data.n_features();
  const LabelStats sums = backend.label_stats(data, labels, n_clusters, {});
  const std::vector<double> means = cluster_means(sums, d);
  const Matrix<float> centroids = to_float(means, n_clusters, d);
  const LabelStats dists = backend.label_stats(data, labels, n_clusters, centroids.view());

  const double n = std::accumulate(sums.counts.begin(), sums.counts.end(), 0.0);
  std::vector<double> grand(static_cast<std::size_t>(d), 0.0);
  for (int c = 0; c < n_clusters; ++c)
    for (std::int64_t j = 0; j < d; ++j) grand[j] += sums.sums[c * d + j];
  for (auto& g : grand) g /= n;

  double between = 0.0, within = 0.0;
  int k = 0;
  for (int c = 0; c < n_clusters; ++c) {
    if (sums.counts[c] <= 0) continue;
    ++k;
    double s = 0.0;
    for (std::int64_t j = 0; j < d; ++j) {
      const double diff = means[c * d + j] - grand[j];
      s += diff * diff;
    }
    between += sums.counts[c] * s;
    within += dists.sq_dist_sums[c];
  }
  if (within == 0.0) return 1.0;  // as scikit-learn
  return between * (n - k) / (within * (k - 1));
}

}  // namespace segforge
