#pragma once
// BIRCH (Zhang, Ramakrishnan & Livny 1996, "BIRCH: an efficient data clustering method for very
// large databases") with scikit-learn's CF-tree rules and a numerically sound clustering
// feature (src/cluster/birch.cpp).
//
// Clustering feature. A subcluster is CF = (n, μ, S): n = Σ w (the summed row weights), μ the
// mean, S = Σ w‖x − μ‖² the centred second moment, all in double (BETULA: Lang & Schubert 2020,
// "BETULA: numerically stable CF-trees for BIRCH clustering"). Two CFs merge by Chan, Golub &
// LeVeque's pairwise update (1979/1983):
//   n = n_a + n_b,  μ = μ_a + (n_b/n)(μ_b − μ_a),  S = S_a + S_b + (n_a·n_b/n)‖μ_a − μ_b‖²,
// so the radius sqrt(S/n) never suffers the cancellation of scikit-learn's SS/n − ‖c‖²
// (scikit-learn #34436: translating the data changes its subclusters). Coordinates are kept
// relative to an origin, the first row of positive weight the tree was given
// (BirchState::origin): translating the data by any vector that keeps the float32 rows exact
// gives a bit-identical tree.
//
// The tree follows scikit-learn 1.2's _birch.py step for step, so that on data near the origin
// (where scikit-learn's radius is accurate) the subclusters and labels are scikit-learn's
// Birch(threshold, branching_factor, n_clusters=None):
// - a row descends from the root to the entry whose centroid is nearest (squared Euclidean
//   distance ‖μ − x‖², computed directly; ties: the first entry of the node);
// - in a leaf, it is absorbed by the nearest subcluster when the merged radius is <= threshold,
//   otherwise it starts a new subcluster appended to the leaf; a node with more than
//   branching_factor entries splits, and the split propagates up (a new root above a split root);
// - a split takes the farthest pair of entries (the first pair (i, j), i < j, in row-major order
//   of the distance matrix among equal maxima; all entries equal: i = j = 0); every entry goes
//   to the side of i when strictly nearer to i than to j, else to j's side (i itself always to
//   i's); the entries keep their order; i's side replaces the split node (in the parent and in
//   the leaf chain), j's side is appended to the parent and follows it in the leaf chain;
// - the subclusters are the entries of the leaves in leaf-chain order (scikit-learn's
//   subcluster_centers_ order). Like scikit-learn there is no merging refinement after a split
//   (an optional last step of the paper's insertion algorithm; scikit-learn #13696).
// No tie in these rules depends on the thread count: insertion is sequential.
// Where scikit-learn's float64 expansions (‖c‖² − 2c·x, SS/n − ‖c‖²) and segforge's direct
// differences round a comparison differently the trees may differ: a near tie between two
// entries, a radius within rounding of the threshold (on lattice data a radius can equal it
// exactly: segforge then merges, scikit-learn rounds either way), or a split's farthest pair
// whose two distances d(i, j) and d(j, i) scikit-learn computes an ulp apart, which swaps the
// numbering of the two halves (about 1 split in 50 on 8-D blobs). On continuous data near the
// origin the subclusters (count, sizes, centroids) are scikit-learn's, possibly numbered in
// another order.
//
// Weights (>= 0, repetition counts). A row of weight w is inserted as one CF (n = w, μ = x,
// S = 0): exactly as w copies arriving together as one block. What holds:
// - unit weights give the tree of no weights, bit for bit; a row of weight 0 changes nothing
//   (bit for bit the tree without it; it is still labelled by predict);
// - multiplying every weight by a power of two gives the same tree with n and S scaled by it,
//   bit for bit (the radius and the merge ratios do not depend on a common scale);
// - every subcluster's CF is the CF of the rows it absorbed with their weights, which is the CF
//   of those rows repeated w times: Σ n = Σ w, Σ n·μ = Σ w·x, and Σ (S + n‖μ − x̄‖²) = Σ w‖x − x̄‖²;
// - repeating a row w times is NOT the same as weight w in general: BIRCH is sequential and
//   tests the copies one at a time. E.g. the row 0, then the row 3 of weight 8, threshold 1:
//   the weight-8 row merges into one subcluster n = 9, μ = 8/3, S = (1·8/9)·3² = 8, radius² =
//   8/9 <= 1; its first copy alone would give radius 1.5 > 1 and start a subcluster {3} that
//   the seven other copies join (n = 1 at 0 and n = 8 at 3). Repetition and weights agree where
//   every copy meets the same subcluster (e.g. points farther apart than twice the threshold
//   in a one-leaf tree).
//
// partial_fit continues the same tree: inserting A and then B with partial_fit (with a
// save/load of the state between them or not) gives the state, bit for bit, of one fit over A
// followed by B — memory-budget rebuilds included, since the budget is checked after every row.
//
// Memory budget. When the leaf subclusters outnumber max_subclusters, the tree is rebuilt as in
// Zhang et al. 1996 §5.1 (Phase 1: rebuild with a larger threshold): the threshold grows to
//   T' = max(2^(1/4)·T, r_min),
// r_min being the smallest radius that merging two subclusters of one leaf node would give (the
// paper's "closest two entries in the most crowded leaf", over every leaf), and the leaf CFs
// are re-inserted in subcluster order into a new tree with T' (a CF may now merge with its
// neighbours); repeated until the subclusters fit the budget. Small steps keep the rebuilt tree
// near the budget (a step divides the subclusters by up to 2^(D/4) in D dimensions); a rebuild
// re-inserts at most max_subclusters CFs, so its cost is small beside the rows'. E.g. 1M rows
// of 8-D blobs at threshold 0.5 under a budget of 2,000: 9 rebuilds, 645 subclusters,
// threshold 2.38.
//
// Global step: the subclusters become n_clusters segments by size-weighted Ward
// (linkage_tree with the subcluster sizes n as weights, then cut_by_count: the exact Ward
// continuation from the partition into subclusters) or by weighted K-Means over the subcluster
// centroids; n_clusters = 0: every subcluster its own segment. predict gives each row the
// segment of its nearest subcluster centroid (ties: the lower subcluster), through the backend's
// assign: float32 distances (DESIGN.md), on rows and centroids taken relative to the
// subclusters' weighted mean (translation-exact, and where float32 loses least). Rows within
// float32 rounding of equidistant from two centroids may get the other one than scikit-learn's
// float64 (2 to 5 rows in 100,000 and 24 in 1,000,000 on 8-D blobs spread over ±10).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "segforge/agglomerative.hpp"
#include "segforge/backend.hpp"
#include "segforge/birch_state.hpp"
#include "segforge/matrix.hpp"

namespace segforge {

enum class BirchGlobal { ward, kmeans };

/// "ward" or "kmeans" (any case); anything else is an InputError.
BirchGlobal parse_birch_global(const std::string& name);
std::string birch_global_name(BirchGlobal global);

struct BirchParams {
  /// A subcluster absorbs a row when the merged subcluster's radius sqrt(S/n) is <= threshold
  /// (scikit-learn's Birch threshold), in the units of the features. > 0.
  double threshold = 0.5;
  /// The most entries a node may hold; a node with more splits (scikit-learn). 2 to 65,536.
  int branching_factor = 50;
  /// Segments after the global step; 0: none, every subcluster is its own segment.
  int n_clusters = 0;
  /// Ward's time grows as M² (M subclusters; ~2.5 s at M = 20,000, D = 16 on the 2-core
  /// development machine): keep M to a few thousand with the threshold or max_subclusters.
  BirchGlobal global = BirchGlobal::ward;
  /// Memory budget: the most leaf subclusters the tree may hold before it is rebuilt with a
  /// larger threshold; 0: no budget. A subcluster costs (n_features + 2)·8 + 4 bytes, ~1.5
  /// times that with the free slots of partly filled nodes and the internal entries.
  std::int64_t max_subclusters = 0;
  /// The K-Means global step: k-means++ seeding from this seed, n_init runs, max_iter each.
  std::uint64_t seed = 0;
  int kmeans_n_init = 3;
  int kmeans_max_iter = 300;
};


/// An empty tree with the parameters' threshold, branching factor and budget.
BirchState make_birch_state(const BirchParams& params);

/// The subclusters' centroids origin + μ [n_subclusters x n_features].
Matrix<double> birch_subcluster_centroids(const BirchState& state);

/// The global step's result.
struct BirchSegments {
  int n_clusters = 0;                            ///< segments (n_subclusters when params.n_clusters = 0)
  /// [n_subclusters] each subcluster's segment, numbered in the order of their first subcluster
  std::vector<std::int32_t> subcluster_labels;
  Matrix<float> centroids;   ///< [n_clusters x n_features] the weighted mean of the segment's subclusters
  std::vector<double> sizes; ///< [n_clusters] summed weights of the segment's subclusters
  /// Ward: the size-weighted Ward tree over the subclusters (leaf m = subcluster m), whose
  /// cut_by_count(tree, n_clusters) gives subcluster_labels; empty otherwise.
  LinkageTree tree;
  int kmeans_n_iter = 0;     ///< K-Means: Lloyd iterations of the kept run
};

/// Labels of rows from a fitted tree.
struct BirchAssignment {
  std::vector<std::int32_t> labels;       ///< [n_samples] segment
  std::vector<std::int32_t> subclusters;  ///< [n_samples] nearest subcluster (ties: the lower)
  std::vector<float> sq_distances;        ///< [n_samples] squared distance to it (float32)
};

struct BirchResult {
  BirchState state;
  BirchSegments segments;
  BirchAssignment assignment;  ///< predict_birch on the fitted rows
  double insert_seconds = 0.0, global_seconds = 0.0, predict_seconds = 0.0;
};

/// Checks the parameters: threshold finite and > 0, branching_factor in [2, 65536], n_clusters >= 0,
/// max_subclusters >= 0, kmeans_n_init and kmeans_max_iter >= 1. InputError naming `where`.
void validate(const BirchParams& params, const std::string& where);

/// Checks a state read from a file (every array, the tree's shape: one root, every other node
/// below exactly one entry, all leaves at one depth, leaves first in entry order, sizes within
/// the branching factor, values finite, n > 0, S >= 0). InputError naming `where`.
void validate(const BirchState& state, const std::string& where);

/// Inserts the rows of `data` into the tree, in row order, rebuilding under the budget, with
/// the state's threshold, branching factor and budget (make_birch_state takes them from
/// BirchParams). Rows are read through the backend in windows (gather). `state` is changed only
/// when every row was inserted (an InputError, e.g. a NaN in a later row, leaves it as it was).
/// [in] data [n_samples x n_features], weights [n_samples] (>= 0) or empty (all 1). The seam
/// cannot read a dataset's weights back: a dataset uploaded with weights must be given them
/// here too (InputError otherwise).
/// [in,out] state: an empty state (make_birch_state) or one from an earlier fit
void partial_fit_birch(Backend& backend, BirchState& state, const Dataset& data,
                       std::span<const float> weights = {});

/// The global step over the state's subclusters (params' n_clusters, global, seed and K-Means
/// settings). InputError when n_clusters exceeds the subclusters.
BirchSegments birch_global_step(Backend& backend, const BirchState& state, const BirchParams& params);

/// Each row's nearest subcluster (backend assign on windows of rows, float32, relative to the
/// subclusters' mean; ties: the lower subcluster) and its segment.
/// [in] data [n_samples x n_features]
BirchAssignment predict_birch(Backend& backend, const BirchState& state, const BirchSegments& segments,
                              const Dataset& data);

/// make_birch_state, partial_fit_birch, birch_global_step, predict_birch on the same rows.
BirchResult fit_birch(Backend& backend, const Dataset& data, const BirchParams& params,
                      std::span<const float> weights = {});

}  // namespace segforge
