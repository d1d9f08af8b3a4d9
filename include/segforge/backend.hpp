#pragma once
// The Backend seam: the only code that knows where the data lives. The drivers in src/ (init,
// Lloyd, mini-batch, metrics, distances) are written once against it; cpu/ and cuda/ implement
// it. A backend owns the dataset (resident on the device, or on the host for the CPU) and the
// per-row state that the drivers must not move every iteration (current labels, the k-means++
// minimum distances). Only K x D centroids, per-cluster sums and a few scalars cross the seam
// per Lloyd iteration.
//
// Distances are squared Euclidean, computed as ||x||² − 2x·c + ||c||² in float32 and clamped at
// 0; every sum that leaves a backend is a double, reduced in a fixed order so that results are
// bit-identical for any thread count or GPU schedule. Argmin ties go to the lower index.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "segforge/error.hpp"
#include "segforge/matrix.hpp"
#include "segforge/row_source.hpp"

namespace segforge {

/// A dataset owned by a backend: `n_samples x n_features` float32 rows with optional weights,
/// plus per-row state (labels from the last assign_accumulate, k-means++ minimum distances).
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::int64_t n_samples() const = 0;
  virtual std::int64_t n_features() const = 0;
  /// True when sample weights were given; otherwise every weight is 1.
  virtual bool weighted() const = 0;
  /// Where the rows live when they are resident in host memory (nullptr otherwise): a debug
  /// hook so the Python package can show that a borrowed numpy buffer is used in place.
  virtual const float* host_rows() const { return nullptr; }
};

/// What one fused Lloyd pass returns: everything the driver needs to update the centres.
struct AccumulateResult {
  std::vector<double> sums;    ///< [n_clusters x n_features] Σ w·x over the rows assigned to each centre
  std::vector<double> counts;  ///< [n_clusters] Σ w over the rows assigned to each centre
  double inertia = 0.0;        ///< Σ w·min_c ||x − c||²
  std::int64_t n_changed = 0;  ///< rows whose label differs from the previous pass (all rows on the first)
};

/// Per-cluster statistics for given labels (Davies–Bouldin, Calinski–Harabasz, profiles).
struct LabelStats {
  std::vector<double> sums;          ///< [n_clusters x n_features] Σ w·x per label
  std::vector<double> counts;        ///< [n_clusters] Σ w per label
  std::vector<double> dist_sums;     ///< [n_clusters] Σ w·||x − c_label|| (0 when no centroids given)
  std::vector<double> sq_dist_sums;  ///< [n_clusters] Σ w·||x − c_label||² (0 when no centroids given)
};

/// Column means and (population, ddof = 0, unweighted) variances, as numpy's mean and var.
struct ColumnStats {
  std::vector<double> mean;      ///< [n_features]
  std::vector<double> variance;  ///< [n_features]
};

/// Rows grouped into blocks for the eps-neighbour ops (DBSCAN): block b holds the dataset rows
/// order[starts[b]], ..., order[starts[b + 1] − 1]. The blocks are cells of a grid (src/cluster/
/// neighbours.cpp), so that rows within eps of each other lie in the same or neighbouring blocks.
struct RowBlocks {
  std::vector<std::int64_t> order;   ///< [n_rows] a permutation of the dataset's row indices
  std::vector<std::int64_t> starts;  ///< [n_blocks + 1] ascending, starts[0] = 0, back() = n_rows
  std::int64_t n_blocks() const { return starts.empty() ? 0 : static_cast<std::int64_t>(starts.size()) - 1; }
};

/// Which block pairs may hold rows within eps: query block a against the reference blocks
/// targets[offsets[a]], ..., targets[offsets[a + 1] − 1] (ascending). Pairs not listed hold none.
struct BlockPairs {
  std::vector<std::int64_t> offsets;  ///< [n_query_blocks + 1]
  std::vector<std::int64_t> targets;  ///< reference block indices
};

struct BackendInfo {
  std::string name;    ///< "cpu" or "cuda"
  std::string device;  ///< e.g. "x86_64, 2 threads" or "NVIDIA H100 80GB HBM3 (sm_90)"
};

/// Calls on one dataset must not overlap: assign_accumulate and the min-distance calls change it.
class Backend {
 public:
  virtual ~Backend() = default;

  virtual BackendInfo info() const = 0;

  /// Copies `x` [n_samples x n_features] and optional `weights` [n_samples] (empty: all 1)
  /// into a dataset the backend owns.
  virtual std::unique_ptr<Dataset> upload(MatrixView<const float> x,
                                          std::span<const float> weights = {}) = 0;

  /// upload() of rows the caller gives up: x is left [0 x n_features]. A backend that keeps the
  /// rows in host memory takes x's buffer over instead of copying it (the CPU backend), so the
  /// rows are in memory once, not twice during the copy. Same dataset, same results as upload().
  virtual std::unique_ptr<Dataset> adopt(Matrix<float>&& x) {
    auto data = upload(x.view());
    x = Matrix<float>(0, x.cols());
    return data;
  }

  /// upload() without the copy where the backend keeps rows in host memory (the CPU backend):
  /// the dataset reads `x` in place, which must stay alive and unchanged while the dataset
  /// lives (the Python package lends a numpy array for one call). Weights are still copied.
  /// Other backends upload().
  virtual std::unique_ptr<Dataset> borrow(MatrixView<const float> x,
                                          std::span<const float> weights = {}) {
    return upload(x, weights);
  }

  /// Out of core: a dataset whose rows stay in `source` and are read `window_rows` at a time
  /// (a multiple of 2048), the next window on a background thread while this one is processed.
  /// Only per-row state stays resident (labels and k-means++ distances: 8 bytes a row) plus two
  /// windows. Every op gives what it gives on upload()'s dataset of the same rows, bit for bit,
  /// except cluster_distance_sums and distance_tile (all pairs: InputError; sample instead).
  virtual std::unique_ptr<Dataset> stream(std::shared_ptr<RowSource> source, std::int64_t window_rows) {
    (void)source;
    (void)window_rows;
    throw InputError("the " + info().name +
                     " backend cannot read data out of core yet; the data is larger than "
                     "--memory-budget: raise it, or use --device cpu");
  }

  /// Rows of the dataset by index, in the order given. [out] [rows.size() x n_features]
  virtual Matrix<float> gather(const Dataset& data, std::span<const std::int64_t> rows) = 0;

  /// Column means and variances (the scale of scikit-learn's `tol`).
  virtual ColumnStats column_stats(const Dataset& data) = 0;

  // ---- Lloyd ------------------------------------------------------------------------------

  /// One read of the data: label every row with its nearest centre and accumulate per-centre
  /// weighted sums, counts and the inertia. The dataset remembers the labels (to count changes).
  /// [in] centroids [n_clusters x n_features]
  virtual AccumulateResult assign_accumulate(Dataset& data, MatrixView<const float> centroids) = 0;

  /// Nearest centre and its squared distance for every row.
  /// [in] centroids [n_clusters x n_features]; [out] labels [n_samples], sq_distances
  /// [n_samples] or empty (labels only)
  virtual void assign(const Dataset& data, MatrixView<const float> centroids,
                      std::span<std::int32_t> labels, std::span<float> sq_distances) = 0;

  // ---- k-means++ and k-means|| (the dataset keeps d(x) = min over chosen centres ||x − c||²) --

  /// Sets d(x) to the distance to the nearest of `centres`; returns φ = Σ w·d(x). With no
  /// centres, d(x) = +inf.
  virtual double reset_min_distances(Dataset& data, MatrixView<const float> centres) = 0;
  /// d(x) ← min(d(x), min over `centres` ||x − c||²); returns the new φ = Σ w·d(x) (with no
  /// centres: the current φ).
  virtual double update_min_distances(Dataset& data, MatrixView<const float> centres) = 0;
  /// For each candidate t, the φ that would follow if it were added: Σ w·min(d(x), ||x − c_t||²).
  /// Does not change d(x). [in] candidates [n_candidates x n_features]; [out] [n_candidates]
  virtual std::vector<double> candidate_potentials(const Dataset& data,
                                                   MatrixView<const float> candidates) = 0;
  /// D²-sampling by inverse CDF: for each target t (ascending, in [0, φ)), the smallest row i
  /// with Σ_{j<=i} w_j·d(x_j) > t, clipped to the last row with w·d > 0 (the last row when φ = 0).
  virtual std::vector<std::int64_t> sample_by_min_distance(const Dataset& data,
                                                           std::span<const double> targets) = 0;
  /// k-means|| oversampling: the rows i with counter_uniform(seed, first_row + i) <
  /// factor·w_i·d(x_i), ascending. `factor` is ℓ/φ. `first_row` is the global index of row 0
  /// when the dataset is one part of a larger one (an MPI rank's rows), so that every part
  /// draws the numbers the whole would.
  virtual std::vector<std::int64_t> oversample(const Dataset& data, double factor,
                                               std::uint64_t seed, std::int64_t first_row = 0) = 0;

  // ---- mini-batch -------------------------------------------------------------------------

  /// One Sculley mini-batch step with per-centre counts (scikit-learn's _mini_batch_step):
  /// label the batch rows with the current centres, then move each centre c_k with batch weight
  /// b_k > 0 to (c_k·n_k + Σ w·x) / (n_k + b_k) and set n_k += b_k.
  /// [in] batch row indices; [in,out] centroids [n_clusters x n_features], counts [n_clusters].
  /// Returns the batch inertia Σ w·||x − c_label||² against the centres before the update.
  virtual double minibatch_step(const Dataset& data, std::span<const std::int64_t> batch,
                                MatrixView<float> centroids, std::span<double> counts) = 0;

  // ---- metrics and distance matrices --------------------------------------------------------

  /// Per-label sums and, when `centroids` is non-empty, distance sums to the label's centroid,
  /// computed directly in double (so they differ from assign_accumulate's float32-expansion
  /// inertia at about 1e-7 relative).
  /// [in] labels [n_samples] in [0, n_clusters); centroids empty or [n_clusters x n_features]
  virtual LabelStats label_stats(const Dataset& data, std::span<const std::int32_t> labels,
                                 int n_clusters, MatrixView<const float> centroids) = 0;

  /// Silhouette support: for rows [row_begin, row_begin + row_count), the sums of Euclidean
  /// (not squared) distances to every row of each cluster, Σ_{p: label_p = j} w_p·||x_i − x_p||,
  /// with the distance of a row to itself exactly 0. Tiled: memory O(tile + rows·K).
  /// [in] labels [n_samples]; [out] [row_count x n_clusters]
  virtual Matrix<double> cluster_distance_sums(const Dataset& data,
                                               std::span<const std::int32_t> labels, int n_clusters,
                                               std::int64_t row_begin, std::int64_t row_count) = 0;

  /// A tile of the pairwise distance matrix between rows of `a` and rows of `b`, by the plain
  /// float32 expansion (silhouette uses cluster_distance_sums, which is more careful).
  /// [out] [a_count x b_count] float32, squared Euclidean if `squared`, else Euclidean.
  virtual Matrix<float> distance_tile(const Dataset& a, std::int64_t a_begin, std::int64_t a_count,
                                      const Dataset& b, std::int64_t b_begin, std::int64_t b_count,
                                      bool squared) = 0;

  // ---- eps-neighbourhoods (DBSCAN) ------------------------------------------------------------
  // Every distance here is Σ_j (x_j − y_j)² over j ascending in double (the rows' float32 values
  // widened), compared with eps² — what scikit-learn's KD-tree and ball-tree queries compute — so
  // the set of rows within eps is the same as theirs. Each op visits only the listed block pairs
  // and stores no neighbour list: memory O(rows) beyond the data. The default implementations
  // say that the backend has no such op yet.

  /// Grid cells: floor((x_j − origin_c) / side) for each listed column j = columns[c], clamped
  /// to ±2^40. [out] [n_samples x columns.size()]
  virtual Matrix<std::int64_t> grid_cells(const Dataset& data, std::span<const std::int32_t> columns,
                                          std::span<const double> origin, double side) {
    (void)data, (void)columns, (void)origin, (void)side;
    throw no_neighbour_ops();
  }

  /// DBSCAN's neighbourhood weight: for every row i, Σ w_j over the rows j with ||x_i − x_j|| <= eps,
  /// i itself included, looked for in the candidate blocks of i's block (its own block first, then
  /// the others ascending, each in block order), stopping once the sum reaches `stop_at` (the core test needs no more; +inf: the whole
  /// weight). [out] [n_samples]
  virtual std::vector<double> eps_neighbour_weights(const Dataset& data, const RowBlocks& blocks,
                                                    const BlockPairs& pairs, double eps, double stop_at) {
    (void)data, (void)blocks, (void)pairs, (void)eps, (void)stop_at;
    throw no_neighbour_ops();
  }

  /// One step of label propagation over core rows: for every row i with roots[i] >= 0, the root
  /// of the first row j within eps with 0 <= roots[j] < roots[i], looking in i's own block first
  /// (when it is a candidate), then in the other candidate blocks in ascending order, each block
  /// in its row order; roots[i] when there is none, -1 for rows with roots[i] < 0. Precondition,
  /// which lets a block be left early: within each block the rows with roots >= 0 come first, in
  /// ascending root order. [in] roots [n_samples]; [out] [n_samples]
  virtual std::vector<std::int64_t> eps_lower_root(const Dataset& data, const RowBlocks& blocks,
                                                 const BlockPairs& pairs, double eps,
                                                 std::span<const std::int64_t> roots) {
    (void)data, (void)blocks, (void)pairs, (void)eps, (void)roots;
    throw no_neighbour_ops();
  }

  /// For every row q of `query` with query_mask[q] != 0 (empty mask: every row), the row r of
  /// `reference` with reference_mask[r] != 0 (empty: every row) nearest to it within eps, ties to
  /// the lower r, and its squared distance; -1 and +inf where there is none (and for masked-out
  /// query rows). Pairs are query blocks against reference blocks.
  /// [out] nearest [query n_samples], sq_distances [query n_samples]
  virtual void nearest_within_eps(const Dataset& query, const RowBlocks& query_blocks,
                                  std::span<const std::uint8_t> query_mask, const Dataset& reference,
                                  const RowBlocks& reference_blocks, std::span<const std::uint8_t> reference_mask,
                                  const BlockPairs& pairs, double eps, std::span<std::int64_t> nearest,
                                  std::span<double> sq_distances) {
    (void)query, (void)query_blocks, (void)query_mask, (void)reference, (void)reference_blocks;
    (void)reference_mask, (void)pairs, (void)eps, (void)nearest, (void)sq_distances;
    throw no_neighbour_ops();
  }

 private:
  InputError no_neighbour_ops() const {
    return InputError("DBSCAN does not run on the " + info().name + " backend yet; pass --device cpu");
  }
};


enum class DeviceChoice { auto_select, gpu, cpu };

/// The CPU backend (always built). `threads` <= 0: OpenMP's default.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

/// True when this build has the CUDA backend and a device answers.
bool cuda_available(std::string* why_not = nullptr);

/// The CUDA backend, or nullptr (with the reason in `why_not`) where the build has none or no
/// device answers.
std::unique_ptr<Backend> make_cuda_backend(std::string* why_not = nullptr);

/// `--device auto|gpu|cpu`. `gpu` without a device is an InputError; `auto` falls back to the CPU
/// and writes the reason to `note`.
std::unique_ptr<Backend> make_backend(DeviceChoice choice, int threads, std::string* note);

}  // namespace segforge
