#pragma once
// Drift between a reference features file (the data a model was fitted on, or last quarter's)
// and a current one prepared the same way (`segforge-prep ... --scaler-from`): per feature, per
// segment under the model's centres, the migration of the ids present in both, and one verdict.
// Distances and assignments go through the Backend seam; the refit is the Lloyd driver started
// from the model's centres. Formulas, bins, epsilon and thresholds: docs/drift.md.

#include <cstdint>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/io.hpp"
#include "segforge/matrix.hpp"

namespace segforge {

enum class DriftLevel { stable = 0, watch = 1, refresh = 2 };
std::string drift_level_name(DriftLevel level);  ///< "stable", "watch", "refresh"

/// Watch / refresh thresholds of every statistic that can decide the verdict.
struct DriftThresholds {
  double feature_psi_watch = 0.10, feature_psi_refresh = 0.25;  ///< PSI of one feature (conventional bands)
  double share_psi_watch = 0.10, share_psi_refresh = 0.25;      ///< PSI of the segment shares
  /// Relative rise of a segment's mean distance to its centre, current over reference − 1.
  double distance_watch = 0.10, distance_refresh = 0.25;
  /// How much better a refit from the model's centres fits the current data: 1 − refit/model inertia.
  double refit_watch = 0.05, refit_refresh = 0.10;
  /// Share of the ids present in both files whose segment changed.
  double migration_watch = 0.10, migration_refresh = 0.25;
};

struct DriftParams {
  int n_bins = 10;           ///< PSI bins: the reference's quantiles at 1/B, …, (B−1)/B
  double epsilon = 1e-4;     ///< an empty bin's (or segment's) share is taken as this in PSI
  /// A segment's distances decide the verdict only with at least this many rows in both files.
  std::int64_t min_segment_rows = 30;
  /// False: the files' ids do not name the same records (row numbers that restart in every
  /// file, as KDD98's `Row Id`), so no migration is computed.
  bool match_ids = true;
  int refit_max_iter = 300;
  double refit_tol = 1e-4;
  DriftThresholds thresholds;
};

struct FeatureDrift {
  std::string name;
  double psi = 0.0;
  double ks = 0.0;            ///< sup |F_ref − F_cur| (scipy.stats.ks_2samp's statistic)
  double mean_shift = 0.0;    ///< (mean_cur − mean_ref) / sd_ref (NaN when sd_ref = 0 and the means differ)
  double reference_mean = 0.0, reference_sd = 0.0, current_mean = 0.0, current_sd = 0.0;
  std::vector<double> edges;              ///< the distinct inner bin edges (≤ B−1)
  std::vector<double> reference_shares;   ///< [edges.size() + 1] (before the epsilon)
  std::vector<double> current_shares;
};

struct SegmentDrift {
  std::string name;
  std::int64_t reference_count = 0, current_count = 0;
  double reference_share = 0.0, current_share = 0.0;
  double psi_term = 0.0;  ///< this segment's term of the share PSI
  /// Euclidean distance to the segment's centre: mean and 90th percentile (linear, numpy's default).
  double reference_mean_distance = 0.0, current_mean_distance = 0.0;
  double reference_p90_distance = 0.0, current_p90_distance = 0.0;
  double refit_centre_shift = 0.0;  ///< ||c_refit − c_model|| (scaled units)
};

struct Migration {
  bool ids_available = false;  ///< both files have /ids and DriftParams::match_ids
  std::int64_t n_common = 0, n_joiners = 0, n_leavers = 0;
  std::int64_t n_moved = 0;          ///< common ids whose segment changed
  double moved_share = 0.0;          ///< n_moved / n_common (0 when none are common)
  Matrix<std::int64_t> counts;       ///< [K x K] reference segment (row) → current segment (column)
  Matrix<double> row_shares;         ///< counts / row sum (0 for an empty row)
};

struct DriftReason {
  DriftLevel level = DriftLevel::watch;
  std::string text;
};

struct DriftResult {
  std::int64_t n_reference = 0, n_current = 0;
  int n_clusters = 0;
  int n_bins = 10;
  double epsilon = 1e-4;
  std::vector<FeatureDrift> features;
  std::vector<SegmentDrift> segments;
  double share_psi = 0.0;
  double reference_inertia = 0.0;  ///< reference data under the model's centres
  double current_inertia = 0.0;    ///< current data under the model's centres
  double refit_inertia = 0.0;      ///< current data after Lloyd from the model's centres
  double refit_gain = 0.0;         ///< 1 − refit_inertia / current_inertia
  int refit_n_iter = 0;
  bool refit_converged = false;
  Migration migration;
  DriftLevel verdict = DriftLevel::stable;
  std::vector<DriftReason> reasons;  ///< every threshold reached, refresh first; one line when stable
  DriftThresholds thresholds;
};

/// PSI of two binned distributions: Σ (c_i − r_i)·ln(c_i / r_i), each share floored at `epsilon`.
double population_stability_index(const std::vector<double>& reference_shares,
                                  const std::vector<double>& current_shares, double epsilon);

/// Two-sample Kolmogorov–Smirnov statistic of two sorted samples.
double ks_statistic(const std::vector<double>& sorted_a, const std::vector<double>& sorted_b);

/// numpy.quantile(sorted, q) with the default (linear) method, for sorted non-empty values.
double linear_quantile(const std::vector<double>& sorted, double q);

/// Per-feature drift of column j: reference quantile bins, PSI, KS, mean shift.
FeatureDrift feature_drift(std::vector<double> reference, std::vector<double> current, int n_bins, double epsilon);




/// Everything `segforge drift` reports. Prior validation is assumed: same columns in both
/// matrices and the centroids, at least one row in each.
/// [in] reference [n_ref x D], current [n_cur x D], centroids [K x D]; ids empty or one per row
/// (no id twice in one file); feature_names [D]; segment_names [K].
DriftResult compute_drift(Backend& backend, MatrixView<const float> reference, MatrixView<const float> current,
                          const Ids& reference_ids, const Ids& current_ids, MatrixView<const float> centroids,
                          const std::vector<std::string>& feature_names,
                          const std::vector<std::string>& segment_names, const DriftParams& params);

}  // namespace segforge
