#pragma once
// DBSCAN (Ester, Kriegel, Sander & Xu 1996) with scikit-learn's semantics, exact, written once
// against the Backend seam (src/cluster/dbscan.cpp):
// - a row is *core* when the weight of the rows within eps (itself included, distance <= eps)
//   is >= min_samples; weights count as repetition;
// - clusters are the connected components of the core rows (two core rows within eps are
//   connected), numbered by their lowest row index, as scikit-learn numbers them;
// - a non-core row with a core row within eps is a *border* row of the cluster of its nearest
//   core row (ties: the lower row index) — scikit-learn gives it the cluster that reached it
//   first, which depends on the row order;
// - every other row is noise, label -1.
// Nothing of size O(neighbours) is stored: rows are grouped into grid cells of side eps over
// up to six columns (rows within eps lie in neighbouring cells), and each pass computes
// distances between the rows of neighbouring cells only. Components come from label
// propagation over those pairs with a union-find in the driver (a few passes).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/matrix.hpp"

namespace segforge {

struct DbscanParams {
  double eps = 0.5;          ///< neighbourhood radius (Euclidean, on the features as stored)
  double min_samples = 5.0;  ///< weight within eps (itself included) that makes a row core
};

struct DbscanResult {
  std::vector<std::int32_t> labels;  ///< [n_samples] cluster 0..n_clusters-1, or -1 (noise)
  std::vector<std::uint8_t> core;    ///< [n_samples] 1 for core rows
  /// [n_samples] distance to the nearest core row of the row's cluster within eps (0 for core
  /// rows, NaN for noise)
  std::vector<float> distances;
  int n_clusters = 0;
  std::int64_t n_core = 0;
  std::int64_t n_border = 0;
  std::int64_t n_noise = 0;
  int rounds = 0;                 ///< label-propagation passes
  std::int64_t n_blocks = 0;      ///< grid cells holding rows
  std::int64_t n_block_pairs = 0; ///< neighbouring cell pairs visited per pass
  std::vector<std::int32_t> grid_columns;  ///< the columns the grid is cut on
  double neighbour_seconds = 0.0, component_seconds = 0.0, border_seconds = 0.0;
};

/// Checks eps (finite, > 0) and min_samples (finite, >= 1); InputError naming `where`.
void validate(const DbscanParams& params, const std::string& where);

/// Fits DBSCAN on a resident dataset. [in] data [n_samples x n_features]
DbscanResult fit_dbscan(Backend& backend, const Dataset& data, const DbscanParams& params);

/// What a DBSCAN model needs to label new rows: its core rows and their clusters.
struct DbscanAssignment {
  std::vector<std::int32_t> labels;  ///< [n_query] cluster of the nearest core row within eps, else -1
  std::vector<float> distances;      ///< [n_query] distance to that core row, NaN for noise
};

/// New rows get the cluster of their nearest core row within eps (ties: the lower core row),
/// else noise (-1): on the training rows this gives every core row its own cluster and every
/// border row the cluster fit_dbscan gave it.
/// [in] core_rows dataset [n_core x n_features], core_labels [n_core]
DbscanAssignment predict_dbscan(Backend& backend, const Dataset& query, const Dataset& core_rows,
                                std::span<const std::int32_t> core_labels, double eps);

/// The k-distance curve for choosing eps (Ester et al. 1996, §4.2; Schubert et al. 2017): for a
/// seeded sample of up to `sample_size` rows, the distance to the min_samples-th nearest row,
/// the row itself counted first (the smallest eps that makes the row core without weights),
/// sorted ascending.
std::vector<double> k_distances(Backend& backend, const Dataset& data, int min_samples,
                                std::int64_t sample_size, std::uint64_t seed);

/// eps chosen from the data: the knee of the sorted k-distance curve, the point farthest below
/// the chord from its first to its last value with both axes normalised (the maximum of
/// Kneedle's difference curve). A straight curve has none: its 90th percentile then.
struct EpsSuggestion {
  double eps = 0.0;
  bool knee_found = false;
  std::int64_t index = 0;     ///< the position of eps on the curve
  std::vector<double> curve;  ///< the sorted k-distances
};
EpsSuggestion suggest_eps(Backend& backend, const Dataset& data, int min_samples, std::int64_t sample_size,
                          std::uint64_t seed);

}  // namespace segforge
