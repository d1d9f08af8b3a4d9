#pragma once
// Cluster quality metrics, written once against the Backend seam.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/kmeans.hpp"

namespace segforge {

struct SilhouetteResult {
  double score = 0.0;               ///< mean of s(i) over the rows scored
  std::vector<double> values;       ///< s(i) per row scored (all rows, or the sample)
  std::vector<double> cluster_means;  ///< [n_clusters] mean s(i) per cluster (NaN if none scored)
  std::vector<std::int64_t> rows;   ///< sampled: the row indices scored; exact: empty (all rows)
  bool sampled = false;
  std::optional<double> standard_error;  ///< sampled: bootstrap standard error of `score`
};

/// Exact silhouette (Rousseeuw 1987) over all rows, as scikit-learn's silhouette_samples:
/// s(i) = (b − a) / max(a, b), s(i) = 0 for rows in singleton clusters. Tiled through
/// Backend::cluster_distance_sums: memory O(tile + N·K).
SilhouetteResult silhouette_exact(Backend& backend, const Dataset& data,
                                  std::span<const std::int32_t> labels, int n_clusters,
                                  const ProgressFn& progress = {});

/// Exact silhouettes of several labellings of the same rows (a K sweep's), as silhouette_exact
/// of each, sharing the distances: the labellings are batched while the cells they make (rows
/// with the same label in every labelling of a batch) stay at most N/32, and each batch takes
/// one pass over all pairs of rows. A labelling alone in its batch gets silhouette_exact's
/// values bit for bit; one batched with others gets each label's distance sum added up cell by
/// cell, which may differ from them in the last bits (about 1e-15 relative).
std::vector<SilhouetteResult> silhouette_exact_many(Backend& backend, const Dataset& data,
                                                    std::span<const std::span<const std::int32_t>> labellings,
                                                    std::span<const int> n_clusters,
                                                    const ProgressFn& progress = {});

/// Silhouette of a stratified random sample of `sample_size` rows (every cluster gets at
/// least min(2, size) rows, the rest proportional to size), computed among the sample as
/// scikit-learn's silhouette_score(sample_size=...) does; with a bootstrap standard error
/// over `n_bootstrap` resamples.
SilhouetteResult silhouette_sampled(Backend& backend, const Dataset& data,
                                    std::span<const std::int32_t> labels, int n_clusters,
                                    std::int64_t sample_size, std::uint64_t seed,
                                    int n_bootstrap = 200, const ProgressFn& progress = {});

/// Davies–Bouldin index (1979), as scikit-learn's davies_bouldin_score.
double davies_bouldin(Backend& backend, const Dataset& data, std::span<const std::int32_t> labels,
                      int n_clusters);

/// Calinski–Harabasz index (1974), as scikit-learn's calinski_harabasz_score.
double calinski_harabasz(Backend& backend, const Dataset& data,
                         std::span<const std::int32_t> labels, int n_clusters);

}  // namespace segforge
