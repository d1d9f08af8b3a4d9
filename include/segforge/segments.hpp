#pragma once
// From clusters to segments people act on: profiles (size, share, centre in original units,
// z-scores, distinguishing features), automatic names and a segment dictionary, and stability
// under resampling (adjusted Rand index, Hungarian-matched Jaccard). Written once against the
// Backend seam; nothing here prints.

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/agglomerative.hpp"
#include "segforge/birch.hpp"
#include "segforge/dbscan.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/matrix.hpp"
#include "segforge/roles.hpp"

namespace segforge {

// ---- profiles ---------------------------------------------------------------------------------

struct SegmentProfile {
  int segment = 0;                      ///< 0-based, as in labels and segments.csv
  std::int64_t size = 0;                ///< rows in the segment
  double share = 0.0;                   ///< size / n_samples
  std::vector<double> centre;           ///< [n_features] the centroid, in model (scaled) units
  std::vector<double> centre_original;  ///< [n_features] the centroid in original units (NaN: unknown transform)
  std::vector<double> z_scores;         ///< [n_features] (centre − column mean) / column sd of the data
  std::vector<int> top_features;        ///< up to n_top feature indices, largest |z| first
};

/// Maps one value from model units back to original units: inverse_transform(v·scale + mean),
/// with the inverse of `transform` = identity (x), log1p (expm1), log (exp), sqrt (x²).
/// An unknown transform gives NaN. `scaler` empty: v unchanged.
double to_original_units(const Scaler& scaler, std::size_t feature, double value);

/// Profiles from the centroids, the segment sizes and the data's column statistics.
/// [in] centroids [K x D]; sizes [K]; stats of the data the model was fitted on.
/// Features with zero variance have z = 0. Ties in |z| go to the lower feature index.
std::vector<SegmentProfile> segment_profiles(MatrixView<const float> centroids,
                                             std::span<const std::int64_t> sizes,
                                             const ColumnStats& stats, const Scaler& scaler,
                                             int n_top = 3);

// ---- names and the segment dictionary ----------------------------------------------------------

// FeatureRole, Audience and their words (feature_role_name, parse_feature_role, audience_name,
// parse_audience) are in roles.hpp.

/// One row of the table that infers a role from a column name: the lower-cased name contains
/// `pattern`. The rows are tried in order and the first match wins; no match is `other`.
/// The table (data, not code) is printed in docs/segments.md.
struct RoleRule {
  FeatureRole role;
  const char* pattern;
};
std::span<const RoleRule> role_rules();

/// The role of a column from role_rules().
FeatureRole feature_role(const std::string& feature_name);
/// Roles for every column: `given` where it has the column's entry (same length as the names,
/// an empty string meaning "infer"), else feature_role(). `given` empty: all inferred. A
/// features file's or model's /feature_roles is `given` (validated by its reader).
std::vector<FeatureRole> feature_roles(const std::vector<std::string>& feature_names,
                                       const std::vector<std::string>& given = {});
/// The stored words of `roles` (feature_role_name of each), as /feature_roles holds them.
std::vector<std::string> feature_role_names(const std::vector<FeatureRole>& roles);
/// One `COLUMN=ROLE` (--role), its form and role word checked: InputError naming the option
/// and the role (with the list of roles). The column is checked by apply_role_settings.
struct RoleSetting {
  std::string column;
  FeatureRole role;
};
RoleSetting parse_role_setting(const std::string& setting);
/// Applies `COLUMN=ROLE` settings (--role) to `roles` in place (columns match
/// case-insensitively) and returns which features they set. InputError naming the option,
/// the column (with the list of columns) or the role (with the list of roles).
std::vector<bool> apply_role_settings(const std::vector<std::string>& settings,
                                      const std::vector<std::string>& feature_names,
                                      std::vector<FeatureRole>& roles);

/// The audience a file's features suggest: donors when a feature name mentions gift or donat
/// (every segforge-prep rfm file, KDD-98's LASTGIFT), else customers.
Audience infer_audience(const std::vector<std::string>& feature_names);
/// `requested` unless automatic; then `stored` (a features file's or model's attribute
/// `audience`, validated by its reader) when not empty; then infer_audience().
Audience resolve_audience(Audience requested, const std::string& stored,
                          const std::vector<std::string>& feature_names);

/// One word an automatic name can use, the role it speaks of and the sign of that role's
/// z-score it asserts (+1: above the mean, −1: below). Tests check names against this table.
struct NameWord {
  const char* word;
  FeatureRole role;
  int sign;
};
std::span<const NameWord> name_words();

/// One entry of the segment dictionary written beside the model.
struct SegmentEntry {
  std::string name;
  std::string description;
  std::string outreach;  ///< suggested outreach
};

/// Automatic, deterministic names from the roles (rules in docs/segments.md):
/// a role's z-score is the mean z of its features, with |z| >= 0.5 as "notable"; a role whose
/// features are notable in opposite directions says nothing (opposite signals are never
/// averaged into "Typical"). Words (name_words()): recency high "Lapsed", low "Active"; tenure
/// high "Long-standing", low "New"; monetary high "Major" (donors) / "High-Value" (customers),
/// low "Small" / "Low-Value"; frequency high "Loyal", low "Occasional"; engagement high
/// "Engaged", low "Disengaged". At most three words (the strongest |z|), ordered status,
/// value, frequency, engagement, then the noun "Donors" or "Customers". No role word but some
/// feature notable: the two notable features of largest |z| ("High Annual_Income, Low Age").
/// No notable feature at all: "Typical Donors" / "Typical Customers". Duplicates get their
/// strongest feature not yet named appended ("… (high clicks_12m)"), then a number.
/// `roles` empty: inferred from the names.
std::vector<SegmentEntry> name_segments(const std::vector<SegmentProfile>& profiles,
                                        const std::vector<std::string>& feature_names,
                                        const std::vector<FeatureRole>& roles = {},
                                        Audience audience = Audience::automatic);

/// Makes names unique in place: the second and later copies of a name get " 2", " 3", ...
void make_names_unique(std::vector<std::string>& names);

// ---- stability -----------------------------------------------------------------------------------

/// Adjusted Rand index (Hubert & Arabie 1985) of two labelings with labels in [0, ka), [0, kb).
double adjusted_rand_index(std::span<const std::int32_t> a, int ka, std::span<const std::int32_t> b,
                           int kb);

/// The Hungarian method (Kuhn 1955, Munkres 1957; the O(n³) shortest-augmenting-path form with
/// potentials): the assignment of rows to columns of a square `n x n` matrix that maximises
/// the total weight. [in] weight [n x n] row-major; [out] column of each row.
std::vector<int> hungarian_maximise(std::span<const double> weight, int n);

struct StabilityParams {
  int n_clusters = 8;
  int runs = 10;                 ///< R re-fits, each on a subsample with its own seed
  double sample_fraction = 0.8;  ///< rows per subsample, drawn without replacement
  LloydParams lloyd;             ///< the fit (n_clusters set from above); the reference uses lloyd.seed
  std::uint64_t seed = 0;        ///< subsamples and the runs' seeds
  std::int64_t max_eval_rows = 1000000;  ///< labelings compared on at most this many rows (a fixed sample)
  double ari_threshold = 0.8;      ///< stable needs mean ARI between runs >= this
  double jaccard_threshold = 0.75;  ///< and every segment's mean Jaccard >= this (Hennig 2007)
};

struct StabilityResult {
  int n_clusters = 0;
  int runs = 0;
  double sample_fraction = 0.0;
  std::int64_t n_samples = 0;
  std::int64_t eval_rows = 0;
  double ari_mean = 0.0;  ///< over the R(R−1)/2 pairs of runs (each run labels the evaluation rows)
  double ari_min = 0.0;
  double ari_reference_mean = 0.0;  ///< each run against the full-data fit
  std::vector<std::int64_t> reference_sizes;  ///< [K] segments of the full-data fit
  std::int64_t reference_unassigned = 0;       ///< rows of the full-data fit in no segment (DBSCAN's outliers)
  std::vector<int> run_segments;               ///< [R] segments each re-fit found
  std::vector<double> jaccard_mean;  ///< [K] per reference segment, matched by the Hungarian method
  std::vector<double> jaccard_min;   ///< [K]
  std::vector<std::string> segment_verdicts;  ///< [K] segment_stability_verdict of mean and min
  double ari_threshold = 0.0;
  double jaccard_threshold = 0.0;
  bool stable = false;
  std::string verdict;  ///< one sentence with the thresholds stated
  double seconds = 0.0;
};

/// Re-fits on `runs` subsamples with other seeds and compares the labelings of the whole data
/// (or an evaluation sample): ARI between runs, and per segment of the full-data fit the
/// Jaccard index |A ∩ B| / |A ∪ B| with the run's segment matched to it by the Hungarian method.
/// Verdict: stable when mean ARI >= ari_threshold and every segment is "stable" or "highly
/// stable" by segment_stability_verdict (its mean and its worst run).
StabilityResult stability(Backend& backend, Dataset& data, const StabilityParams& params,
                          const ProgressFn& progress = {});

/// One fit of a stability check, as the labeling step needs it: centres (K-Means), or the rows
/// and their segments that label other rows (DBSCAN's core rows), and the number of segments.
struct Refitted {
  Matrix<float> centres;
  std::vector<std::int32_t> row_labels;
  int n_segments = 0;
};
/// Fits on `rows` (all rows for the reference, a subsample for a re-fit) with `seed`.
using RefitFn = std::function<Refitted(Dataset& rows, std::uint64_t seed)>;
/// Labels every row of `all` with `fit`'s segments: [0, n_segments), or -1 for none.
using LabelFn = std::function<void(const Dataset& all, const Refitted& fit, std::span<std::int32_t> labels)>;

/// The one stability driver, for any method: the reference fit on all rows, `params.runs`
/// re-fits on subsamples, each labeling the evaluation rows. Rows in no segment are one more
/// class for the ARI and belong to no segment's Jaccard set; a re-fit may find another number of
/// segments (the Hungarian matching is on the table padded with zeros, so a reference segment
/// left unmatched scores 0). `params.lloyd` and `params.n_clusters` are K-Means's; other methods
/// pass them unused, except lloyd.seed (the reference's seed).
StabilityResult stability_of(Backend& backend, Dataset& data, const StabilityParams& params, const RefitFn& refit,
                             const LabelFn& label, const ProgressFn& progress = {});

/// DBSCAN's stability: each re-fit runs with the same eps and min_samples × sample_fraction, so
/// that the density a core row needs stays the same on the subsample; rows are labelled by the
/// re-fit's core rows (predict_dbscan), outliers in no segment.
StabilityResult stability_dbscan(Backend& backend, Dataset& data, const StabilityParams& params,
                                 const DbscanParams& dbscan, const ProgressFn& progress = {});

/// Agglomerative clustering's stability: each re-fit builds its tree on the subsample (exact or
/// two-stage as `agglomerative` says, its K-Means seeded per run) and cuts it alike; rows are
/// labelled by the re-fit's leaves (the segment of the nearest leaf, as predict does).
StabilityResult stability_agglomerative(Backend& backend, Dataset& data, const StabilityParams& params,
                                        const AgglomerativeParams& agglomerative, const ProgressFn& progress = {});

/// BIRCH's stability: each re-fit grows its own CF-tree on the subsample (same threshold,
/// branching factor and budget) and makes its global step; rows are labelled by the re-fit's
/// nearest subcluster, as predict does.
StabilityResult stability_birch(Backend& backend, Dataset& data, const StabilityParams& params, const BirchParams& birch,
                                const ProgressFn& progress = {});

/// One segment's verdict from its Jaccard agreement over the re-fits, by Hennig's thresholds
/// (2007, "Cluster-wise assessment of cluster stability"; 2008): <= 0.5 "dissolved", < 0.6
/// "unstable", below `stable_threshold` (0.75) "doubtful" (a pattern, but which rows belong is
/// doubtful), below max(0.85, stable_threshold) "stable", else "highly stable". Applied to the
/// mean and to the worst run; the lower class is the verdict (a segment that dissolved in one
/// re-fit is not stable, whatever its mean).
std::string segment_stability_verdict(double jaccard_mean, double jaccard_worst, double stable_threshold = 0.75);

/// Checks stability parameters against a data shape; InputError starting with `where`.
void validate_stability(const StabilityParams& params, std::int64_t n_samples,
                        std::int64_t n_features, const std::string& where);

}  // namespace segforge
