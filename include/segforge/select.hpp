#pragma once
// Choosing K: a sweep over a range of K (one upload of the data, one fit per K) scored by the
// elbow of the inertia (Kneedle), the silhouette, Davies–Bouldin, Calinski–Harabasz and the gap
// statistic; written once against the Backend seam. The pieces (Kneedle, the PCA-aligned box,
// the gap formula) are public so that tests can check each against an independent reference.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "segforge/agglomerative.hpp"
#include "segforge/backend.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/matrix.hpp"

namespace segforge {

// ---- small dense linear algebra (host, double) -------------------------------------------------

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations (Golub & Van Loan,
/// "Matrix Computations", 4th ed., Alg. 8.5.3), for the tiny D x D covariances here.
struct SymmetricEigen {
  std::vector<double> values;   ///< [n] eigenvalues, descending
  std::vector<double> vectors;  ///< [n x n] row-major; column j is the unit eigenvector of values[j]
};
/// [in] a [n x n] row-major, symmetric. Eigenvector signs are fixed so that each column's
/// entry of largest magnitude (first such on ties) is positive, so results are reproducible.
SymmetricEigen symmetric_eigen(std::span<const double> a, int n);

// ---- Kneedle ----------------------------------------------------------------------------------

/// Kneedle (Satopää, Albrecht, Irwin & Raghavan 2011, "Finding a 'Kneedle' in a Haystack") for a
/// decreasing convex curve such as the inertia against K, offline, sensitivity S:
/// Step 1: normalise x and y to [0, 1]; flip y (y_n ← 1 − y_n) so the elbow becomes a knee.
/// Step 2: the difference curve d_i = y_n,i − x_n,i.
/// Step 3: its local maxima (d_i ≥ both neighbours, an end compared with its one neighbour) and
///   minima (≤ both); the threshold of a maximum is T = d_lmx − S·mean(diff(x_n)).
/// Step 4: walk from the first maximum; at a maximum take its threshold, at a minimum the
///   threshold becomes 0; the knee is the last maximum passed when d drops below the threshold.
/// No drop before the end: no knee.
struct KneedleResult {
  std::optional<int> knee_index;    ///< index into x of the knee, if found
  std::vector<double> difference;   ///< d_i
  std::vector<int> maxima;          ///< indices of the local maxima of d
};
/// [in] x strictly increasing, y the same length (>= 3 points for a knee).
KneedleResult kneedle(std::span<const double> x, std::span<const double> y, double sensitivity = 1.0);

// ---- gap statistic ------------------------------------------------------------------------------

/// The box of the gap statistic's reference distribution (Tibshirani, Walther & Hastie 2001,
/// §3, method (b)): the data centred on `mean` and rotated onto its principal axes
/// X' = (X − mean)·V; the box is the range of each column of X'.
struct PcaBox {
  std::vector<double> mean;      ///< [n_features]
  std::vector<double> rotation;  ///< V [n_features x n_features] row-major, columns = principal axes
  std::vector<double> variance;  ///< [n_features] eigenvalues of the covariance, descending
  std::vector<double> lower;     ///< [n_features] min of each column of X'
  std::vector<double> upper;     ///< [n_features] max of each column of X'
};

/// The covariance (population, ddof = 0) of the dataset's rows, via column_stats for the mean
/// and rows gathered in chunks for the cross-products (the seam has no Gram operation).
/// [out] [n_features x n_features] row-major
std::vector<double> covariance(Backend& backend, const Dataset& data);

/// Principal axes (symmetric_eigen of the covariance) and the ranges along them.
PcaBox pca_box(Backend& backend, const Dataset& data);

/// Projects rows onto the principal axes: (x − mean)·V[:, :n_components].
/// [in] x [n x n_features]; [out] [n x n_components]
Matrix<float> pca_project(const PcaBox& box, MatrixView<const float> x, int n_components);

/// One reference set: Z' = lower + U ∘ (upper − lower), back-transformed Z = Z'·Vᵀ + mean.
/// [in] uniform [n_rows x n_features] draws in [0, 1); [out] [n_rows x n_features]
Matrix<float> gap_reference_set(const PcaBox& box, MatrixView<const double> uniform);

/// The gap statistic from log W_k (Tibshirani et al. 2001, eqs. 3–5 and the rule of §4):
/// Gap(k) = (1/B) Σ_b log W*_kb − log W_k; sd_k = population sd over b; s_k = sd_k·√(1 + 1/B);
/// the choice is the smallest k with Gap(k) ≥ Gap(k+1) − s_{k+1} (k and k+1 both in `ks`).
struct GapResult {
  std::vector<int> ks;
  std::vector<double> log_w;           ///< [n_k] log W_k of the data
  std::vector<double> log_w_ref_mean;  ///< [n_k] (1/B) Σ_b log W*_kb
  std::vector<double> gap;             ///< [n_k]
  std::vector<double> s;               ///< [n_k] s_k
  std::optional<int> chosen_k;         ///< none when no k in range satisfies the rule
};
/// [in] ks consecutive integers ascending; log_w [n_k]; log_w_ref [B x n_k] row-major.
GapResult gap_from_log_w(std::span<const int> ks, std::span<const double> log_w,
                         std::span<const double> log_w_ref, int n_references);

/// The gap statistic with given reference sets (the sweep draws them; tests pass fixed ones).
/// W_k is the within-cluster sum of squares of fit_lloyd(`lloyd` with n_clusters = k) on the
/// data, `reference_lloyd` on each reference. A reference with fewer rows than the data has
/// log(n_data / n_ref) added to its log W (the within sum of squares grows with the row count;
/// a constant in k, so the choice and s_k do not change).
GapResult gap_statistic(Backend& backend, Dataset& data, std::span<const Matrix<float>> references,
                        std::span<const int> ks, const LloydParams& lloyd,
                        const LloydParams& reference_lloyd, const ProgressFn& progress = {});

// ---- the sweep ---------------------------------------------------------------------------------

enum class Criterion { elbow, silhouette, gap, davies_bouldin, calinski_harabasz };
/// All five, in the order they break ties in the vote (see SweepResult::recommended_k).
inline constexpr Criterion kAllCriteria[] = {Criterion::silhouette, Criterion::gap,
                                             Criterion::elbow, Criterion::davies_bouldin,
                                             Criterion::calinski_harabasz};
/// "elbow", "silhouette", "gap", "davies_bouldin", "calinski_harabasz".
std::string criterion_name(Criterion c);

struct SweepParams {
  int k_min = 2;
  int k_max = 20;
  std::vector<Criterion> criteria{std::begin(kAllCriteria), std::end(kAllCriteria)};
  /// The fit at each K: exactly these parameters with n_clusters = K, so a sweep's record for K
  /// equals an independent fit_lloyd (and `segforge fit -k K`) with the same seed.
  LloydParams lloyd;
  /// Gap statistic: B reference sets, rows per reference (0: min(n_samples, 10 000)), and how
  /// they are clustered (n_clusters ignored; default: as `lloyd` without random-swap refinement).
  int gap_references = 10;
  std::int64_t gap_reference_rows = 0;
  std::optional<LloydParams> gap_lloyd;
  /// Silhouette on all rows (0) or on a stratified sample of this many rows.
  std::int64_t silhouette_sample = 0;
  /// Kneedle sensitivity S.
  double kneedle_sensitivity = 1.0;
  /// A K with a segment smaller than this is marked over-segmented and never recommended
  /// (0: default_min_segment_size(N)).
  std::int64_t min_segment_size = 0;
  std::uint64_t seed = 0;  ///< gap reference draws and silhouette samples
  /// Agglomerative instead of K-Means: one tree of the data (and one of each gap reference
  /// set), every K a cut of it; n_clusters and distance_threshold are ignored. `lloyd` unused.
  std::optional<AgglomerativeParams> agglomerative;
};

struct SweepRecord {
  int k = 0;
  double inertia = 0.0;
  int n_iter = 0;
  bool converged = false;
  std::vector<std::int64_t> sizes;  ///< [k] rows per segment
  std::int64_t smallest_segment = 0;
  bool over_segmented = false;      ///< a segment smaller than min_segment_size
  std::optional<double> silhouette;
  std::optional<double> silhouette_standard_error;  ///< sampled silhouette only
  std::optional<double> davies_bouldin;
  std::optional<double> calinski_harabasz;
  std::optional<double> gap;
  std::optional<double> gap_s;       ///< s_k of the 1-standard-error rule
  std::optional<double> log_w;
  std::optional<double> log_w_ref_mean;
  std::optional<double> kneedle_difference;  ///< Kneedle's difference curve at this K
  /// Fit and scores of the data at this K; an exact silhouette adds an equal share of the one
  /// pass that scores every K.
  double seconds = 0.0;
};

struct CriterionChoice {
  Criterion criterion;
  std::optional<int> k;  ///< none: the criterion gave no answer in the range (reason in `note`)
  std::string note;
};

struct SweepResult {
  std::int64_t n_samples = 0;
  std::int64_t n_features = 0;
  std::int64_t min_segment_size = 0;
  std::vector<SweepRecord> records;      ///< one per K, ascending
  std::vector<CriterionChoice> choices;  ///< one per criterion asked for
  /// The K chosen by most criteria among those not over-segmented; ties go to the K of the
  /// criterion first in kAllCriteria. 0 (with the why in `reason`) when no criterion gave an
  /// answer, when every K chosen is over-segmented, or when only one K was fitted.
  /// Silhouette, Davies–Bouldin and Calinski–Harabasz each choose the smallest K within 1% of
  /// their best value, and give no answer when that is the top of the range (still improving)
  /// or when fewer than two K have a value.
  int recommended_k = 0;
  std::string reason;
  std::vector<std::string> warnings;  ///< N < 500, recommended K over-segmented, ...
  std::string silhouette_method;      ///< "exact", "sample", or "none" when not asked for
  int gap_references = 0;
  std::int64_t gap_reference_rows = 0;
  double seconds = 0.0;
};

/// The default minimum segment size: 1% of n_samples (rounded up), at least 20 and at most
/// 1,000: 20 rows on a 200-row file, 36 on 3,591, 1,000 from 100,000 rows up.
std::int64_t default_min_segment_size(std::int64_t n_samples);

/// Fits K = k_min..k_max on one uploaded dataset and scores each K as `params.criteria` ask.
/// K = 1 is allowed (the gap statistic can choose it; the other scores skip it). The gap
/// reference draws come from Rng(params.seed). Prior validation (k range against n_samples) is
/// assumed: see validate_sweep.
SweepResult sweep(Backend& backend, Dataset& data, const SweepParams& params,
                  const ProgressFn& progress = {});

/// The choices, recommended K, reason and warnings from filled-in records (sweep's last step;
/// public so that the vote can be tested on its own).
void recommend(SweepResult& result, const SweepParams& params);

/// Checks a sweep's parameters against a data shape; InputError starting with `where`.
void validate_sweep(const SweepParams& params, std::int64_t n_samples, std::int64_t n_features,
                    const std::string& where);

}  // namespace segforge
