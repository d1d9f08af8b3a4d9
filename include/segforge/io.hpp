#pragma once
// HDF5 and text outputs. Every writer goes to a temporary file in the target's folder and
// renames it when complete, so a failure leaves nothing half-written.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "segforge/birch_state.hpp"
#include "segforge/matrix.hpp"

namespace segforge {

/// Per-feature scaling stored in /scaler so results can be shown in original units:
/// original = inverse_transform(scaled·scale + mean).
struct Scaler {
  std::vector<double> mean;
  std::vector<double> scale;
  std::vector<std::string> transform;  ///< "identity", "log1p", ...
  bool empty() const { return mean.empty(); }
  /// Winsorizing bounds in transformed units, applied before the centre and scale
  /// (/scaler/clip_low, /scaler/clip_high [n_features]; -inf / +inf for an unclipped feature).
  /// Empty when the data were not winsorized. Stored so that new records can be prepared
  /// exactly like the training data (segforge-prep --scaler-from).
  std::vector<double> clip_low;
  std::vector<double> clip_high;
};

/// Row identifiers: int64 or strings (one of the two is non-empty), or none.
struct Ids {
  std::vector<std::int64_t> numeric;
  std::vector<std::string> text;
  bool empty() const { return numeric.empty() && text.empty(); }
  std::int64_t size() const {
    return numeric.empty() ? static_cast<std::int64_t>(text.size())
                           : static_cast<std::int64_t>(numeric.size());
  }
  std::string str(std::int64_t i) const;  ///< the i-th id as text ("" when none)
};

/// How `file`'s scaling differs from `reference`'s (named `reference_name`, e.g. "the model"):
/// the first feature with another transform, a mean or scale more than 1e-6 relative apart, or
/// other clip bounds, or one of them having no scaler; "" when they transform alike. `names`
/// name the features in the text. Used by predict, drift and refresh before they compare data.
std::string scaler_difference(const Scaler& file, const Scaler& reference, const std::vector<std::string>& names,
                              const std::string& reference_name);

/// Ids that repeat: how many rows repeat an id of an earlier row, and the first such pair.
struct RepeatedIds {
  std::int64_t rows = 0;  ///< rows whose id an earlier row has (0: every id is unique)
  std::string id;         ///< the first repeated id, as text
  std::int64_t first_row = -1, repeat_row = -1;  ///< 0-based rows of its first two occurrences
};
RepeatedIds repeated_ids(const Ids& ids);

/// What `segforge info` shows about a feature file without reading the matrix.
struct FeatureFileInfo {
  std::string path;
  std::string dataset;
  std::int64_t n_samples = 0;
  std::int64_t n_features = 0;
  std::string dtype;  ///< "float32", "float64", "int64", ...
  std::vector<std::string> feature_names;
  std::map<std::string, std::string> attributes;  ///< root attributes (format, as_of, ...)
  bool has_ids = false;
  bool has_scaler = false;
  /// /feature_roles [n_features] (validated: each a role word of roles.hpp), empty when absent
  /// (a file from an older segforge-prep, or another matrix than /features it does not fit).
  std::vector<std::string> feature_roles;
};

/// A feature matrix read into memory.
struct Features {
  Matrix<float> x;                         ///< [n_samples x n_features]
  std::vector<std::string> feature_names;  ///< [n_features] ("f0", "f1", ... when absent)
  Ids ids;
  Scaler scaler;
  /// /feature_roles [n_features]: each feature's role word for the automatic names (roles.hpp;
  /// validated), empty when the file has none (older files: roles are then inferred).
  std::vector<std::string> feature_roles;
  /// Root attribute `audience`: "donors" or "customers" (validated), empty when absent.
  std::string audience;
  std::string path;
  std::string dataset;
  std::string checksum;  ///< XXH64 (seed 0) of the file's bytes, 16 hex digits (`xxhsum -H64`)
  std::int64_t n_dropped = 0;  ///< rows dropped under NanPolicy::drop
  /// x holds rows [first_row, first_row + x.rows()) of the n_rows_total kept rows: 0 and
  /// x.rows() for a whole read. A part read (ReadOptions::row_begin / row_count, one MPI rank's
  /// rows) sets them as if no other part dropped rows; the caller that combines the parts sets
  /// them from every part's row count (tools/ does under MPI).
  std::int64_t first_row = 0;
  std::int64_t n_rows_total = 0;
  /// Out of core (ReadOptions::rows_in_memory false): x is [0 x n_features] and the part's
  /// disk_rows rows, from first_row on, stay in the file, to be streamed (open_hdf5_rows).
  std::int64_t disk_rows = 0;
};

enum class NanPolicy { error, drop };

struct ReadOptions {
  std::string dataset = "/features";
  NanPolicy nan_policy = NanPolicy::error;
  std::int64_t rows_per_read = 262144;  ///< rows read per call (into place: no memory of its own)
  /// Read only the file's rows [row_begin, row_begin + row_count) and their ids (row_count < 0:
  /// to the end): one part of the matrix, e.g. one MPI rank's. A part may be empty, or have all
  /// its rows dropped; messages still name the file's row numbers.
  std::int64_t row_begin = 0;
  std::int64_t row_count = -1;
  /// False: read names, ids, scaler and checksum but leave the rows on disk (Features::disk_rows).
  bool rows_in_memory = true;
  /// Compute Features::checksum (one more read of the whole file; under MPI only rank 0 does).
  bool checksum = true;
};

/// Shape, dtype, names and attributes. Throws InputError naming file and dataset on a missing
/// file, a missing dataset, a dataset that is not 2-D numeric, or a file that is not HDF5.
FeatureFileInfo inspect_features(const std::string& path, const std::string& dataset = "/features");

/// Reads the matrix in row chunks, converting float64 and integer datasets to float32.
/// NaN or Inf: InputError naming the first such row and column ("...; clean it or pass
/// --nan-policy drop"), or with NanPolicy::drop those rows (and their ids) are dropped.
/// Empty (0 rows) or 0 columns: InputError.
Features read_features(const std::string& path, const ReadOptions& options = {});

/// Datasets stored beside /features (segforge-prep synth blobs: /centers [K x D] float32 and
/// /labels [N] int32, the ground truth). Keys are root-level dataset names without '/', other
/// than the names features.h5 itself uses (features, feature_names, feature_roles, ids, scaler). The views
/// must stay valid for the call.
struct FeatureExtras {
  std::map<std::string, MatrixView<const float>> matrices;  ///< written as 2-D float32
  std::map<std::string, std::span<const std::int32_t>> int32s;  ///< written as 1-D int32
  bool empty() const { return matrices.empty() && int32s.empty(); }
};

/// Writes a features file (as segforge-prep does; also used by tests and the demo), with
/// `extras` as further root datasets and `feature_roles` [n_features] (role words, roles.hpp)
/// as /feature_roles when not empty. The audience is the attribute `audience`.
void write_features(const std::string& path, MatrixView<const float> x,
                    const std::vector<std::string>& feature_names, const Ids& ids = {},
                    const Scaler& scaler = {},
                    const std::map<std::string, std::string>& attributes = {},
                    const FeatureExtras& extras = {},
                    const std::vector<std::string>& feature_roles = {});

/// The /scaler of a features file (clip bounds included), without reading the matrix; empty
/// when the file has none. Throws InputError as inspect_features does, or for a /scaler whose
/// lengths do not match the matrix's columns.
Scaler read_scaler(const std::string& path, const std::string& dataset = "/features");

/// A 2-D numeric dataset read whole as float32 (e.g. /centers written through FeatureExtras).
/// InputError naming file and dataset when it is absent or not 2-D numeric.
Matrix<float> read_extra_matrix(const std::string& path, const std::string& dataset);

/// A 1-D integer dataset as int32 (e.g. /labels written through FeatureExtras). InputError
/// naming file and dataset when it is absent, not 1-D integer, or a value does not fit.
std::vector<std::int32_t> read_extra_int32s(const std::string& path, const std::string& dataset);

/// A 1-D numeric dataset as double (e.g. per-row sample weights beside /features). InputError
/// naming file and dataset when it is absent or not 1-D numeric.
std::vector<double> read_extra_doubles(const std::string& path, const std::string& dataset);

struct Model {
  Matrix<float> centroids;  ///< [n_clusters x n_features]
  std::vector<std::string> feature_names;
  /// /feature_roles [n_features]: the roles the names were made with (copied from the features
  /// file, --role applied; validated), empty in older models. The audience is attribute `audience`.
  std::vector<std::string> feature_roles;
  Scaler scaler;
  std::vector<std::string> segment_names;  ///< [n_clusters]
  std::vector<std::int64_t> segment_sizes;  ///< [n_clusters]
  std::vector<double> counts;  ///< mini-batch per-centre counts (empty for Lloyd)
  // Segment profiles and the segment dictionary (segforge fit writes them; empty when absent):
  // /segments/shares, /segments/centres_original, /segments/z_scores, /segments/top_features,
  // /segments/descriptions, /segments/outreach.
  std::vector<double> segment_shares;            ///< [n_clusters] size / n_samples
  Matrix<double> segment_centres_original;       ///< [n_clusters x n_features] centres in original units
  Matrix<double> segment_z_scores;               ///< [n_clusters x n_features] (centre − mean) / sd of the data
  Matrix<std::int32_t> segment_top_features;     ///< [n_clusters x n_top] feature indices, largest |z| first
  std::vector<std::string> segment_descriptions;  ///< [n_clusters]
  std::vector<std::string> segment_outreach;      ///< [n_clusters] suggested outreach
  // Lineage of a refreshed model (segforge refresh; empty otherwise, and ignored by older
  // readers): /segments/parent [n_clusters] int32, the parent model's segment each continues
  // (-1: none), and /segments/transition [n_clusters] strings (continued, split_from, merged,
  // emerged). The parent's checksum, dates and what changed are root attributes
  // (parent_checksum, parent_file, refreshed_at, changes; docs/formats.md).
  std::vector<std::int32_t> segment_parent;
  std::vector<std::string> segment_transition;
  // A DBSCAN model (attribute algorithm = dbscan, with eps and min_samples): /dbscan/core_rows
  // float32 [n_core x n_features] and /dbscan/core_labels int32 [n_core] in [0, n_clusters);
  // predict gives a row the segment of its nearest core row within eps, else -1 (outlier).
  // /centroids then holds each cluster's mean, for profiles and names. Empty otherwise.
  Matrix<float> dbscan_core_rows;
  std::vector<std::int32_t> dbscan_core_labels;
  bool is_dbscan() const { return !dbscan_core_labels.empty(); }
  // A hierarchical model (attribute algorithm = agglomerative or birch): the leaves of its tree,
  // /hierarchy/leaves float32 [n_leaves x n_features] (the training rows, the two-stage path's
  // micro-cluster centres or BIRCH's subclusters), /hierarchy/leaf_labels int32 [n_leaves] in
  // [0, n_clusters) (the cut), /hierarchy/leaf_sizes float64 [n_leaves] (summed row weights),
  // and /hierarchy/merges float64 [n_leaves - 1 x 4] (SciPy's linkage matrix over the leaves:
  // child a, child b, height, size; absent when the segments did not come from one tree).
  // predict gives a row the segment of its nearest leaf (ties: the lower leaf). /centroids then
  // holds each segment's mean, for profiles and names. Empty otherwise.
  Matrix<float> hierarchy_leaves;
  std::vector<std::int32_t> hierarchy_leaf_labels;
  std::vector<double> hierarchy_leaf_sizes;
  Matrix<double> hierarchy_merges;
  bool is_hierarchy() const { return !hierarchy_leaf_labels.empty(); }
  /// A BIRCH model's CF-tree (/birch: weight, mean, sq_deviation, child, node_start, origin; the
  /// scalars as root attributes birch_threshold, birch_initial_threshold, birch_branching_factor,
  /// birch_max_subclusters, birch_n_rebuilds, birch_n_rows_seen, birch_n_subclusters,
  /// birch_root), for `fit --algorithm birch --continue-from`. Read as stored; its tree is checked
  /// (validate(BirchState)) where it is used. Empty otherwise.
  std::optional<BirchState> birch;
  /// XXH64 of the model file's bytes (16 hex digits), set by read_model; not written.
  std::string checksum;
  /// attributes: algorithm, k, init, seed, n_init, n_iter, converged, inertia, backend, device,
  /// segforge_version, input_file, input_checksum, audience (donors|customers; validated). Written as string attributes on the root;
  /// read_model returns every root attribute as text (numbers in decimal). A bare file with only
  /// /centroids reads back with empty names, sizes, scaler and counts.
  std::map<std::string, std::string> attributes;
};

void write_model(const std::string& path, const Model& model);
/// Reads /centroids and what else is there (a bare file with only /centroids is accepted, as
/// for --init FILE.h5).
Model read_model(const std::string& path);

/// labels.h5: /labels int32 [N], /distances float32 [N] (Euclidean distance to the centre),
/// /ids when known.
void write_labels_h5(const std::string& path, std::span<const std::int32_t> labels,
                     std::span<const float> distances, const Ids& ids);
/// The segment name of label -1 (DBSCAN's noise) in segments.csv and summaries.
inline constexpr const char* kOutliersName = "Outliers";
/// segments.csv: id,segment,segment_name,distance (id = row number when no ids). Label -1 is
/// named kOutliersName with an empty distance where it is NaN.
void write_segments_csv(const std::string& path, std::span<const std::int32_t> labels,
                        std::span<const float> distances, const Ids& ids,
                        const std::vector<std::string>& segment_names);
/// Per-sample silhouette values: /silhouette float64 [n], /labels int32 [n], /rows int64 [n]
/// (the scored rows, when sampled) and /ids of those rows when known.
void write_silhouette_samples(const std::string& path, std::span<const double> values,
                              std::span<const std::int64_t> rows,
                              std::span<const std::int32_t> labels, const Ids& ids);
/// Reads labels from labels.h5 (/labels) or segments.csv (column `segment`).
std::vector<std::int32_t> read_labels(const std::string& path);
/// The /ids of a labels.h5 (one per label; empty when the file has none).
Ids read_label_ids(const std::string& path);

/// Distance matrix writer: /distances float32 [rows x cols], chunked; rows written in blocks.
/// `attributes`: root attributes beside format, format_version and created_by (what the values
/// are: `metric`, `squared`).
class DistanceMatrixWriter {
 public:
  DistanceMatrixWriter(const std::string& path, std::int64_t rows, std::int64_t cols,
                       const std::map<std::string, std::string>& attributes = {});
  ~DistanceMatrixWriter();
  DistanceMatrixWriter(const DistanceMatrixWriter&) = delete;
  DistanceMatrixWriter& operator=(const DistanceMatrixWriter&) = delete;
  /// Writes `tile` at (row, col).
  void write(std::int64_t row, std::int64_t col, MatrixView<const float> tile);
  /// Closes and renames into place. Without commit() the temporary file is removed.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Writes `text` to `path` atomically (temp file in the same folder, then rename).
void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace segforge
