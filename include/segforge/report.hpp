#pragma once
// report.html: one self-contained file that opens offline. The views it needs from the data
// (a PCA projection of a sample, a silhouette sample) are computed through the Backend seam;
// the page is rendered from plain structs (nothing here reads files or prints). Charts are drawn
// by plotly.js, whose source the caller passes in to be inlined; without it the report still
// has every table and a note saying why the charts are missing.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/dbscan.hpp"
#include "segforge/drift.hpp"
#include "segforge/matrix.hpp"
#include "segforge/segments.hpp"
#include "segforge/select.hpp"

namespace segforge {

struct ReportViewParams {
  std::int64_t scatter_rows = 4000;     ///< points in the 2-D and 3-D scatter (a uniform sample)
  std::int64_t silhouette_rows = 4000;  ///< rows in the silhouette plot (exact when N is at most this)
  std::uint64_t seed = 0;
  /// Segments [0, silhouette_segments) get the silhouette; rows of the others (DBSCAN's
  /// outliers) are left out of it. -1: every segment.
  int silhouette_segments = -1;
};

/// What the charts show of the data.
struct ReportViews {
  Matrix<float> points;                    ///< [m x 3] sample rows on the first three principal axes
  std::vector<std::int32_t> point_labels;  ///< [m]
  Matrix<float> centres;                   ///< [K x 3] the centroids on the same axes
  std::vector<double> explained;           ///< [3] share of the variance along each axis
  std::vector<double> silhouette_values;   ///< s(i) of the silhouette rows
  std::vector<std::int32_t> silhouette_labels;
  double silhouette_score = 0.0;
  bool silhouette_sampled = false;
  bool has_silhouette = false;  ///< false when fewer than 2 segments are occupied
};

/// [in] labels [n_samples] in [0, K); centroids [K x n_features]
ReportViews report_views(Backend& backend, const Dataset& data, std::span<const std::int32_t> labels,
                         MatrixView<const float> centroids, const ReportViewParams& params);

/// What the report shows of a DBSCAN model: its parameters and, when given or computed, the
/// k-distance curve eps was (or can be) chosen from.
struct ReportDbscan {
  double eps = 0.0;
  double min_samples = 0.0;
  std::int64_t n_noise = 0;
  std::optional<EpsSuggestion> curve;  ///< the sorted k-distances with the knee's position
  int curve_min_samples = 0;           ///< the curve's k
};

/// The top of a hierarchical model's tree, as the report draws it: the last merges (those above
/// the cut and some below), each a "U" from its two children up to its height; the children
/// that are not drawn merges are the drawn leaves, each inside one segment.
struct ReportDendrogram {
  struct Link {
    double x_a = 0, x_b = 0, y_a = 0, y_b = 0, height = 0;
    int segment = -1;  ///< the segment both children lie in; -1 above the cut
  };
  std::vector<Link> links;
  std::vector<double> leaf_x;            ///< [drawn leaves] positions 0, 1, ... in tree order
  std::vector<int> leaf_segment;         ///< [drawn leaves]
  std::vector<double> leaf_size;         ///< [drawn leaves] summed row weights under each
  double cut_height = 0;                 ///< a height between the last merge below the cut and the first above
  std::int64_t n_leaves = 0;             ///< leaves of the whole tree
};
/// [in] merges [n_leaves - 1 x 4] (SciPy's linkage matrix), leaf_labels [n_leaves] (the cut),
/// leaf_sizes [n_leaves]; at most max(K, max_drawn) leaves are drawn.
ReportDendrogram dendrogram_view(const Matrix<double>& merges, std::span<const std::int32_t> leaf_labels,
                                 std::span<const double> leaf_sizes, int n_segments, int max_drawn = 30);

struct ReportInput {
  std::string title = "Segmentation report";
  std::string model_path;
  std::string features_path;
  std::map<std::string, std::string> model_attributes;
  std::int64_t n_samples = 0;
  std::vector<std::string> feature_names;
  /// [K], and for a DBSCAN model with outliers one more, last: the outliers (its segment -1)
  std::vector<SegmentProfile> profiles;
  std::vector<SegmentEntry> dictionary;  ///< one per profile: name, description, outreach
  ReportViews views;
  std::optional<SweepResult> sweep;
  std::optional<StabilityResult> stability;
  /// `segforge drift` of this model (--drift): the "What changed" section. Its segments are the
  /// model's (K of them, in the model's order).
  std::optional<DriftResult> drift;
  std::optional<ReportDbscan> dbscan;  ///< a DBSCAN model's section "Choosing eps"
  std::optional<ReportDendrogram> dendrogram;  ///< a hierarchical model's section "The tree"
  std::vector<std::string> notes;  ///< shown at the top (e.g. where plotly.js was not found)
  std::string plotly_js;           ///< plotly.js source to inline; empty: no charts
  std::string generated_by;        ///< "segforge 0.1.0"
};

/// The page. Chart containers carry class "chart" and data-kind ("svg" or "webgl"); when every
/// chart has drawn, the body gets data-report-ready="1" and data-charts-drawn=<count> (or
/// data-report-ready="error"), so a headless browser can tell that the charts drew.
std::string render_report_html(const ReportInput& input);

}  // namespace segforge
