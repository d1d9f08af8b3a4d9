#pragma once
// Keeping segments alive across a refresh: match the segments of a refit to the old model's
// (Hungarian assignment on centroid distance, or on member overlap), classify what happened to
// each by MONIC's transitions (Spiliopoulou et al. 2006, "MONIC: modeling and monitoring
// cluster transitions": survive, split, absorb, disappear, emerge), and place the matched
// segments at their old index so names, descriptions and outreach carry over. Also the data
// sufficiency guards (the seeds' "when not to do this"). Nothing here prints.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "segforge/io.hpp"
#include "segforge/matrix.hpp"

namespace segforge {

/// Minimum-cost assignment of rows to columns of a rectangular cost matrix (the Hungarian
/// method, exact, O(n³) for n = max(n_rows, n_cols): the square problem padded with equal-cost
/// dummies, solved by hungarian_maximise of segments.hpp).
/// [in] cost [n_rows x n_cols] row-major, finite; [out] [n_rows] the column of each row, -1 for
/// the n_rows − n_cols rows left unmatched when n_rows > n_cols.
std::vector<int> hungarian_minimise(std::span<const double> cost, int n_rows, int n_cols);

/// Contingency counts of two labelings of the same rows: [k_a x k_b], entry (i, j) the rows
/// labelled i in `a` and j in `b`. Labels < 0 (a row outside every segment of `a`) are not
/// counted. Labels must be < k_a, < k_b (prior validation assumed).
Matrix<std::int64_t> overlap_counts(std::span<const std::int32_t> a, int k_a,
                                    std::span<const std::int32_t> b, int k_b);

/// Thresholds of the MONIC transitions on the overlap o(X, Y) = |X ∩ Y| / |X| of an old
/// segment X with a new one Y (Spiliopoulou et al. 2006, Def. 3–5, with τ and τ_split).
struct TransitionParams {
  double survive = 0.5;      ///< τ: a match needs o(X,Y) >= τ or |X ∩ Y| / |Y| >= τ
  double split_piece = 0.2;  ///< τ_split: a piece of a split holds >= this share of X
};

/// What happened to one segment.
enum class Transition {
  survived,   ///< old: continues as one new segment (matched, neither split nor absorbed)
  split,      ///< old: its members went to two or more new segments, each mostly its members
  absorbed,   ///< old: it and at least one other old segment now form one new segment
  dissolved,  ///< old: no new segment continues it (MONIC's "disappear")
  continued,  ///< new: the continuation of one old segment (matched)
  split_from, ///< new: a piece of a split old segment
  merged,     ///< new: two or more old segments absorbed into it
  emerged,    ///< new: none of the above
};
std::string transition_name(Transition t);

struct SegmentMatch {
  int k_old = 0;
  int k_new = 0;
  /// [k_new] order[s] = the fit's segment placed at index s of the refreshed model: a matched
  /// segment takes its old segment's index where that index exists (< k_new), the others the
  /// free indices in the fit's order.
  std::vector<int> order;
  /// [k_new], by refreshed index: the old segment it continues (matched), -1 when none.
  std::vector<int> parent;
  /// [k_old]: the refreshed index continuing each old segment, -1 when none.
  std::vector<int> child;
  std::vector<Transition> old_transition;  ///< [k_old]
  std::vector<Transition> new_transition;  ///< [k_new], by refreshed index
  /// [k_old]: the refreshed segments that hold its members (split pieces, or the one it was
  /// absorbed into); [k_new]: the old segments it came from (split parent, merged ones).
  std::vector<std::vector<int>> old_to, new_from;
  /// [k_old x k_new] the overlap counts, columns in refreshed order.
  Matrix<std::int64_t> overlap;
};

/// Matches the segments of a refit to the old ones and classifies the transitions.
/// [in] cost [k_old x k_new] row-major: what the Hungarian assignment minimises (squared
///      centroid distances, or −overlap when members are matched by id);
/// [in] overlap [k_old x k_new] counts of rows in old segment i and new segment j (columns in
///      the fit's order), from overlap_counts.
SegmentMatch match_segments(std::span<const double> cost, const Matrix<std::int64_t>& overlap,
                            const TransitionParams& params = {});

/// Squared Euclidean distances between two sets of centres: [a.rows x b.rows] row-major.
std::vector<double> squared_centroid_distances(MatrixView<const float> a, MatrixView<const float> b);



// ---- data sufficiency -------------------------------------------------------------------------

/// What the guards look at. history_days < 0: unknown (not a segforge-prep rfm file).
struct SufficiencyInput {
  std::int64_t n_samples = 0;          ///< active donors or customers (rows clustered)
  std::int64_t history_days = -1;      ///< the features file's attribute history_days
  std::vector<std::int64_t> sizes;     ///< [K] rows per segment (empty: not checked)
  std::vector<std::string> names;      ///< [K] segment names for the messages (may be empty)
  std::int64_t min_segment_size = 0;   ///< 0: default_min_segment_size(n_samples)
};
constexpr std::int64_t kMinActiveRecords = 500;  ///< as segforge-prep rfm's guard
constexpr std::int64_t kMinHistoryDays = 730;    ///< two years

/// One warning sentence per guard that fails (fewer than 500 rows, under two years of
/// history, each segment below the minimum size), each saying what to do. Empty: sufficient.
std::vector<std::string> sufficiency_warnings(const SufficiencyInput& in);

/// history_days from a features file's root attributes (segforge-prep rfm writes it); -1 when
/// absent or not a whole number.
std::int64_t history_days_attribute(const std::map<std::string, std::string>& attributes);

}  // namespace segforge
