#pragma once
// Agglomerative (hierarchical) clustering: Ward, complete, average and single linkage, with the
// merge tree SciPy's scipy.cluster.hierarchy.linkage returns on the same float64 data
// (src/cluster/agglomerative.cpp).
//
// The tree is SciPy's linkage matrix: n − 1 merges (a, b, height, size), a < b, leaves 0..n−1,
// merge i creating cluster n + i, heights ascending. It is produced as SciPy produces it: the
// merges of a nearest-neighbour chain (Murtagh 1983; Müllner 2011, "Modern hierarchical,
// agglomerative clustering algorithms", §3.2 NN-chain-linkage) or of Prim's minimum spanning
// tree (single linkage), then a stable sort by height, then relabelling through a union-find
// (SciPy's `label`). Clusters sit at "positions" as in SciPy's nn_chain: position p holds the
// cluster containing leaf p, and a merge of positions x < y keeps the result at y.
//
// - ward: the chain runs on cluster centroids and sizes in double, O(N·D) memory, no distance
//   matrix. d(A, B) = sqrt(2·|A|·|B| / (|A| + |B|)) · ||c_A − c_B||, which equals SciPy's
//   Lance–Williams Ward heights in exact arithmetic; merges of two leaves have SciPy's heights
//   bit for bit, later ones agree within ~1e-13 relative.
// - complete, average: SciPy's nn_chain over a condensed float64 distance matrix (pdist's
//   distances, bit for bit) with SciPy's Lance–Williams updates: O(N²) memory, refused
//   (InputError) when N(N−1)/2 · 8 bytes exceed LinkageOptions::memory_budget_bytes.
// - single: SciPy's mst_single_linkage (Prim), distances computed on the fly, O(N) memory.
// complete, average and single give SciPy's linkage matrix bit for bit, ties included.
//
// Ties (equal distances): the chain follows SciPy — the previous chain element wins a tie, else
// the lowest position; Prim takes the lowest row; the sort by height is stable. So where
// SciPy's and segforge's distances are equal doubles (every distance of complete, average and
// single; Ward's between two leaves, duplicate rows included), ties resolve as in SciPy. Ward's
// distances involving merged clusters round differently from SciPy's Lance–Williams updates
// (by ~1e-16 relative): where two of them tie in exact arithmetic (lattice or symmetric data,
// e.g. small integer features), either may win, so two tied merges may swap places in the
// tree, or a different pair may merge and the trees differ from there on (fastcluster's Ward
// differs from SciPy's on such data too, and sooner). On data without exact ties (continuous
// features, or integer features of many values, as Mall Customers) the trees are SciPy's.
// Rounding never makes a merge lower than a merge below it here: such a height (never so in
// exact arithmetic, these four linkages being reducible) is lifted to its child's, so that the
// sort keeps every merge after its children.
//
// Weights (a size w_i > 0 per row, as for micro-clusters) continue the clustering from a
// partition whose clusters have those sizes: ward uses them in the Ward distance and centroids
// (the size-weighted Ward of two-stage clustering), average in its Lance–Williams update
// (UPGMA: d(A, B) = Σ w_a·w_b·d(a, b) / (W_A·W_B)); complete and single do not depend on
// them. For every linkage the size column holds the summed weights, and integer weights give
// the tree that repeating each row w_i times gives above the merges of the copies (height 0).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/matrix.hpp"

namespace segforge {

enum class Linkage { ward, complete, average, single };

/// "ward", "complete", "average", "single" (any case); anything else is an InputError.
Linkage parse_linkage(const std::string& name);
/// The name parse_linkage reads.
std::string linkage_name(Linkage linkage);

/// One merge of the tree, a row of SciPy's linkage matrix.
struct Merge {
  std::int64_t a = 0;   ///< the child cluster with the lower id (< n_leaves: a leaf)
  std::int64_t b = 0;   ///< the other child, b > a
  double height = 0.0;  ///< the linkage distance at which a and b merge
  double size = 0.0;    ///< leaves (summed weights) in the new cluster
};

/// A merge tree over n_leaves leaves: merge i creates cluster n_leaves + i; heights ascending.
struct LinkageTree {
  Linkage linkage = Linkage::ward;
  std::int64_t n_leaves = 0;
  std::vector<Merge> merges;  ///< [n_leaves − 1]
};

struct LinkageOptions {
  /// complete and average keep the condensed distance matrix, N(N−1)/2 float64: the largest it
  /// may be. 2 GiB allows N = 23,170.
  std::int64_t memory_budget_bytes = std::int64_t{2} << 30;
};

/// The largest N whose condensed distance matrix fits `memory_budget_bytes`.
std::int64_t max_samples_for_matrix(std::int64_t memory_budget_bytes);

/// The merge tree of `x` (on the host). InputError for no rows, a non-finite value, weights
/// that are not finite and > 0, or (complete, average) a matrix over the memory budget.
/// [in] x [n_samples x n_features]; weights [n_samples] or empty (every weight 1)
LinkageTree linkage_tree(MatrixView<const double> x, std::span<const double> weights, Linkage linkage,
                         const LinkageOptions& options = {});

/// Flat clusters of the leaves, numbered 0, 1, ... in the order of their lowest leaf (the
/// cluster of leaf 0 is 0, the next cluster met scanning the leaves is 1, ...).
struct TreeCut {
  std::vector<std::int32_t> labels;  ///< [n_leaves]
  std::int32_t n_clusters = 0;
};

/// Exactly n_clusters clusters: the tree without its last n_clusters − 1 merges (as scipy's
/// fcluster(Z, K, 'maxclust') where the heights at the cut differ; where they tie, the merges
/// later in the tree's order are the ones undone). InputError unless 1 <= n_clusters <= n_leaves.
TreeCut cut_by_count(const LinkageTree& tree, std::int64_t n_clusters);

/// The clusters formed by the merges of height <= `height` (scipy's fcluster(Z, h, 'distance')).
/// InputError for a negative or non-finite height.
TreeCut cut_by_height(const LinkageTree& tree, double height);

// ---- the driver -----------------------------------------------------------------------------

enum class AgglomerativeStrategy {
  auto_select,  ///< exact up to exact_max_samples rows, two-stage above (Ward only)
  exact,        ///< the tree over the rows
  two_stage,    ///< K-Means micro-clusters, then size-weighted Ward over them (Ward only)
};

struct AgglomerativeParams {
  Linkage linkage = Linkage::ward;
  /// The cut: this many clusters, unless distance_threshold is given.
  int n_clusters = 8;
  /// The cut by height instead (merges of height <= threshold kept); heights are the linkage's
  /// distances, over micro-clusters on the two-stage path.
  std::optional<double> distance_threshold;
  AgglomerativeStrategy strategy = AgglomerativeStrategy::auto_select;
  /// auto_select: the exact tree up to this many rows. Above it Ward goes two-stage and the
  /// other linkages are an InputError (their exact trees take O(N²) time, and complete and
  /// average O(N²) memory). Exact Ward takes ~2.5 s at 20,000 x 16 on one core of the 2-core
  /// development machine (fastcluster's linkage_vector: ~5 s), and grows as N²·D.
  std::int64_t exact_max_samples = 20000;
  /// Two-stage: M = min(N, n_micro_clusters) K-Means micro-clusters (FactoMineR's HCPC and
  /// SPSS TwoStep use 1,000 to 5,000).
  std::int64_t n_micro_clusters = 2000;
  /// Two-stage: the micro-clusters' K-Means, one run. Random rows as starting centres, as R's
  /// kmeans in FactoMineR's HCPC: Ward re-merges the micro-clusters anyway, and k-means|| at
  /// M = 2000 costs ~35 s more per million rows on the 2-core development machine (a Lloyd
  /// iteration: ~0.9 s per million rows at D = 8; 1M x 8 two-stage in all: ~18 s).
  Init micro_init = Init::random;
  int micro_max_iter = 20;
  double micro_tol = 1e-4;
  std::uint64_t seed = 0;
  /// complete and average: the largest condensed distance matrix (LinkageOptions).
  std::int64_t memory_budget_bytes = std::int64_t{2} << 30;
};

struct AgglomerativeResult {
  /// Over the rows (exact), or over the micro-clusters (two_stage: leaf m is micro-cluster m).
  LinkageTree tree;
  bool two_stage = false;
  /// Two-stage only (else empty): the micro-cluster (leaf of `tree`) of every row [n_samples],
  /// the micro-clusters' centroids, the means of their rows in double [n_leaves x n_features],
  /// and their sizes (summed row weights) [n_leaves]. Micro-clusters that no row is nearest to
  /// are left out, so n_leaves may be below M.
  std::vector<std::int32_t> micro_labels;
  Matrix<double> micro_centroids;
  /// two-stage only: the K-Means centres the rows were assigned by, one per leaf [leaves x n_features]:
  /// a row belongs to the leaf of its nearest centre (ties: the lower leaf), in fit as in predict.
  Matrix<float> micro_centres;
  std::vector<double> micro_sizes;
  double micro_inertia = 0.0;  ///< the micro-clusters' K-Means inertia
  int micro_n_iter = 0;
  /// The cut: every row's cluster [n_samples], numbered in the order of the clusters' lowest row
  /// (two-stage: each row takes its micro-cluster's cluster).
  std::vector<std::int32_t> labels;
  int n_clusters = 0;
  /// Every leaf's cluster [leaves of `tree`]: the rows' labels (exact), or each micro-cluster's.
  std::vector<std::int32_t> leaf_labels;
  Matrix<float> centroids;    ///< [n_clusters x n_features] the mean of each cluster's rows
  std::vector<double> sizes;  ///< [n_clusters] summed row weights
  double micro_seconds = 0.0, linkage_seconds = 0.0;
};

/// Checks the parameters against n_samples rows: n_clusters in [1, n_samples] (without a
/// threshold), a finite threshold >= 0, positive limits, a strategy the linkage allows.
/// InputError naming `where`.
void validate(const AgglomerativeParams& params, std::int64_t n_samples, const std::string& where);

/// Agglomerative clustering of a dataset, exact or two-stage (see AgglomerativeStrategy), and
/// the cut. Rows are read through the backend (gather for the exact tree; the existing K-Means,
/// assign and label_stats for the micro-clusters). The K-Means of the two-stage path keeps its
/// per-row state in `data`. [in] data [n_samples x n_features]
AgglomerativeResult fit_agglomerative(Backend& backend, Dataset& data, const AgglomerativeParams& params);

/// A hierarchical model's labels for any rows (agglomerative and BIRCH models): each row takes
/// the cluster of its nearest leaf (ties: the lower leaf; Backend::assign), and its distance is
/// the Euclidean distance to that cluster's centroid. On the training rows this gives fit's
/// labels: a row is its own nearest leaf (exact tree), or its micro-cluster's centre is.
/// [in] leaves [n_leaves x n_features], leaf_labels [n_leaves], centroids [n_clusters x n_features]
struct LeafAssignment {
  std::vector<std::int32_t> labels;
  std::vector<float> distances;
};
LeafAssignment predict_by_leaves(Backend& backend, const Dataset& data, MatrixView<const float> leaves,
                                 std::span<const std::int32_t> leaf_labels, MatrixView<const float> centroids);

/// Each row's Euclidean distance to the centroid of its cluster (rows read in windows through
/// Backend::gather). [in] labels [n_samples] in [0, n_clusters)
std::vector<float> distances_to_own_centroid(Backend& backend, const Dataset& data, std::span<const std::int32_t> labels,
                                             MatrixView<const float> centroids);

}  // namespace segforge
