#include "segforge/validate.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <set>
#include <vector>

#include "segforge/error.hpp"
#include "segforge/roles.hpp"

namespace segforge {

namespace {

void expect(bool ok, const std::string& where, const std::string& what) {
  if (!ok) throw InputError(where + ": " + what);
}

void validate_shape(int n_clusters, std::int64_t n_samples, std::int64_t n_features,
                    const std::string& where) {
  expect(n_samples > 0, where, "0 rows; nothing to cluster");
  expect(n_features > 0, where, "0 features (columns); nothing to cluster");
  expect(n_clusters >= 1, where,
         "n_clusters=" + std::to_string(n_clusters) + " should be >= 1; pass -k 1 or more");
  expect(n_samples >= n_clusters, where,
         "n_samples=" + std::to_string(n_samples) + " should be >= n_clusters=" +
             std::to_string(n_clusters) + "; choose a smaller -k");
}

void validate_init(const InitParams& init, int n_clusters, std::int64_t n_features,
                   const std::string& where) {
  expect(init.oversampling_factor > 0, where,
         "oversampling factor " + std::to_string(init.oversampling_factor) + " should be > 0");
  expect(init.n_rounds >= 0, where, "k-means|| rounds should be >= 0");
  expect(init.n_local_trials >= 0, where, "k-means++ local trials should be >= 0");
  if (init.init == Init::given)
    validate_centroids(init.centroids.view(), n_clusters, n_features, where + " (--init centres)");
}

}  // namespace

void validate(const LloydParams& p, std::int64_t n_samples, std::int64_t n_features,
              const std::string& where) {
  validate_shape(p.n_clusters, n_samples, n_features, where);
  expect(p.max_iter >= 1, where, "max_iter=" + std::to_string(p.max_iter) + " should be >= 1");
  expect(p.tol >= 0 && std::isfinite(p.tol), where,
         "tol=" + std::to_string(p.tol) + " should be a finite number >= 0");
  expect(p.n_init >= 1, where, "n_init=" + std::to_string(p.n_init) + " should be >= 1");
  expect(p.swap_trials >= 0, where, "swap trials should be >= 0");
  validate_init(p.init, p.n_clusters, n_features, where);
}

void validate(const MiniBatchParams& p, std::int64_t n_samples, std::int64_t n_features,
              const std::string& where) {
  validate_shape(p.n_clusters, n_samples, n_features, where);
  expect(p.batch_size >= 1, where,
         "batch_size=" + std::to_string(p.batch_size) + " should be >= 1");
  expect(p.max_iter >= 1, where, "max_iter=" + std::to_string(p.max_iter) + " should be >= 1");
  expect(p.tol >= 0 && std::isfinite(p.tol), where,
         "tol=" + std::to_string(p.tol) + " should be a finite number >= 0");
  expect(p.max_no_improvement >= 0, where, "max_no_improvement should be >= 0");
  expect(p.reassignment_ratio >= 0, where, "reassignment_ratio should be >= 0");
  expect(p.n_init >= 1, where, "n_init=" + std::to_string(p.n_init) + " should be >= 1");
  expect(p.init_size >= 0, where, "init_size should be >= 0");
  expect(p.counts.empty() || static_cast<int>(p.counts.size()) == p.n_clusters, where,
         "the saved model has " + std::to_string(p.counts.size()) + " centre counts for n_clusters=" +
             std::to_string(p.n_clusters));
  if (!p.counts.empty()) validate_counts(p.counts, p.n_clusters, where + " (saved centre counts)");
  validate_init(p.init, p.n_clusters, n_features, where);
}

void validate_centroids(MatrixView<const float> c, int n_clusters, std::int64_t n_features,
                        const std::string& where) {
  expect(c.rows == n_clusters && c.cols == n_features, where,
         "centres are [" + std::to_string(c.rows) + " x " + std::to_string(c.cols) +
             "], expected [n_clusters=" + std::to_string(n_clusters) +
             " x n_features=" + std::to_string(n_features) + "]");
  for (std::int64_t i = 0; i < c.rows; ++i)
    for (std::int64_t j = 0; j < c.cols; ++j)
      expect(std::isfinite(c(i, j)), where,
             "centre " + std::to_string(i) + " column " + std::to_string(j) +
                 " is not finite; give finite starting centres");
}

void validate_counts(std::span<const double> counts, int n_clusters, const std::string& where) {
  expect(static_cast<std::int64_t>(counts.size()) == n_clusters, where,
         std::to_string(counts.size()) + " centre counts for n_clusters=" + std::to_string(n_clusters));
  for (std::size_t c = 0; c < counts.size(); ++c)
    expect(std::isfinite(counts[c]) && counts[c] >= 0, where,
           "count of centre " + std::to_string(c) + " is " + std::to_string(counts[c]) +
               "; counts must be finite and >= 0");
}

// ---- arrays read from files ------------------------------------------------------------------

namespace {

std::string remedy(FileKind kind) {
  switch (kind) {
    case FileKind::features:
      return "prepare the file again with segforge-prep";
    case FileKind::model:
      return "refit the model with segforge fit (or restore the file)";
    case FileKind::checkpoint:
      return "resume from an earlier checkpoint or start afresh without --resume";
  }
  return {};
}

/// Checks of one file: each failure is "path:object: what; remedy" (a checkpoint's say
/// "damaged checkpoint").
class FileChecks {
 public:
  FileChecks(std::string path, FileKind kind) : path_(std::move(path)), kind_(kind) {}

  void expect(bool ok, const std::string& object, const std::string& what) const {
    if (ok) return;
    throw InputError((object.empty() ? path_ : path_ + ":" + object) + ": " +
                     (kind_ == FileKind::checkpoint ? "damaged checkpoint: " : "") + what + "; " + remedy(kind_));
  }

  void length(std::size_t n, std::int64_t want, const std::string& object, const std::string& per) const {
    expect(static_cast<std::int64_t>(n) == want, object,
           std::to_string(n) + " values for " + std::to_string(want) + " " + per + "; store one per " +
               (per.ends_with("s") ? per.substr(0, per.size() - 1) : per));
  }

  /// `ok(v)` for every value; `rule` says what a value must be.
  template <class T, class Ok>
  void values(std::span<const T> v, std::int64_t cols, const std::string& object, Ok ok,
              const std::string& rule) const {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (ok(v[i])) continue;
      const auto at = static_cast<std::int64_t>(i);
      const std::string where = cols > 0 ? "row " + std::to_string(at / cols) + " (0-based), column " +
                                               std::to_string(at % cols)
                                         : "value " + std::to_string(at) + " (0-based)";
      expect(false, object, where + " is " + text(v[i]) + "; " + rule);
    }
  }

  template <class T>
  void finite(std::span<const T> v, std::int64_t cols, const std::string& object) const {
    values(v, cols, object, [](T x) { return std::isfinite(static_cast<double>(x)); },
           "values must be finite numbers");
  }
  template <class T>
  void finite(const Matrix<T>& m, const std::string& object) const {
    finite(std::span<const T>(m.values()), m.cols(), object);
  }
  void finite_non_negative(std::span<const double> v, const std::string& object) const {
    values(v, 0, object, [](double x) { return std::isfinite(x) && x >= 0; },
           "values must be finite and >= 0");
  }

  /// [rows x cols], or empty when `optional`.
  template <class T>
  void shape(const Matrix<T>& m, std::int64_t rows, std::int64_t cols, const std::string& object,
             bool optional) const {
    if (optional && m.empty() && m.rows() * m.cols() == 0) return;
    expect(m.rows() == rows && m.cols() == cols, object,
           "shape [" + std::to_string(m.rows()) + " x " + std::to_string(m.cols()) + "], expected [" +
               std::to_string(rows) + " x " + std::to_string(cols) + "]");
  }

  void unique(const std::vector<std::string>& names, const std::string& object, const std::string& what) const {
    std::set<std::string> seen;
    for (std::size_t i = 0; i < names.size(); ++i)
      expect(seen.insert(names[i]).second, object,
             what + " '" + names[i] + "' appears twice (again at " + std::to_string(i) +
                 ", 0-based); " + what + "s must be unique");
  }

 private:
  template <class T>
  static std::string text(T x) {
    const double v = static_cast<double>(x);
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "Inf" : "-Inf";
    if constexpr (std::is_integral_v<T>) return std::to_string(x);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }

  std::string path_;
  FileKind kind_;
};

bool known_transform(const std::string& t) {
  return t == "identity" || t == "log1p" || t == "signed_log1p";
}

}  // namespace

void validate_scaler(const Scaler& s, std::int64_t n_features, const std::string& path, FileKind kind) {
  if (s.empty() && s.scale.empty() && s.transform.empty()) return;
  const FileChecks f(path, kind);
  f.length(s.mean.size(), n_features, "/scaler/mean", "features");
  f.length(s.scale.size(), n_features, "/scaler/scale", "features");
  f.length(s.transform.size(), n_features, "/scaler/transform", "features");
  f.finite(std::span<const double>(s.mean), 0, "/scaler/mean");
  f.values(std::span<const double>(s.scale), 0, "/scaler/scale",
           [](double x) { return std::isfinite(x) && x > 0; }, "a scale must be a finite number > 0");
  for (std::size_t j = 0; j < s.transform.size(); ++j)
    f.expect(known_transform(s.transform[j]), "/scaler/transform",
             "value " + std::to_string(j) + " (0-based) is the unknown transform '" + s.transform[j] +
                 "'; expected identity, log1p or signed_log1p");
  if (s.clip_low.empty() && s.clip_high.empty()) return;
  f.length(s.clip_low.size(), n_features, "/scaler/clip_low", "features");
  f.length(s.clip_high.size(), n_features, "/scaler/clip_high", "features");
  auto not_nan = [](double x) { return !std::isnan(x); };
  f.values(std::span<const double>(s.clip_low), 0, "/scaler/clip_low", not_nan, "a bound must be a number (-inf: none)");
  f.values(std::span<const double>(s.clip_high), 0, "/scaler/clip_high", not_nan, "a bound must be a number (inf: none)");
  for (std::size_t j = 0; j < s.clip_low.size(); ++j)
    f.expect(s.clip_low[j] <= s.clip_high[j], "/scaler/clip_low",
             "value " + std::to_string(j) + " (0-based) is above clip_high's (" + std::to_string(s.clip_low[j]) +
                 " > " + std::to_string(s.clip_high[j]) + "); the low bound must not exceed the high one");
}

void validate_feature_names(const std::vector<std::string>& names, std::int64_t n_features,
                            const std::string& path, FileKind kind) {
  if (names.empty()) return;
  const FileChecks f(path, kind);
  f.length(names.size(), n_features, "/feature_names", "columns");
  f.unique(names, "/feature_names", "feature name");
}

void validate_feature_roles(const std::vector<std::string>& roles, std::int64_t n_features,
                            const std::string& path, FileKind kind) {
  if (roles.empty()) return;
  const FileChecks f(path, kind);
  f.length(roles.size(), n_features, "/feature_roles", "columns");
  for (std::size_t j = 0; j < roles.size(); ++j)
    f.expect(parse_feature_role(roles[j]).has_value(), "/feature_roles",
             "row " + std::to_string(j) + " (0-based) is '" + roles[j] + "', not a role; use " + feature_role_list());
}

void validate_audience(const std::string& audience, const std::string& path, FileKind kind) {
  if (audience.empty()) return;
  const auto a = parse_audience(audience);
  FileChecks(path, kind)
      .expect(a && *a != Audience::automatic, "", "attribute audience is '" + audience + "'; use donors or customers");
}

void validate_model(const Model& m, const std::string& path) {
  const FileChecks f(path, FileKind::model);
  const std::int64_t k = m.centroids.rows(), d = m.centroids.cols();
  f.expect(k >= 1 && d >= 1, "/centroids",
           "shape [" + std::to_string(k) + " x " + std::to_string(d) + "]; a model needs at least one centre and one feature");
  f.finite(m.centroids, "/centroids");
  validate_feature_names(m.feature_names, d, path, FileKind::model);
  validate_scaler(m.scaler, d, path, FileKind::model);
  validate_feature_roles(m.feature_roles, d, path, FileKind::model);
  if (const auto a = m.attributes.find("audience"); a != m.attributes.end())
    validate_audience(a->second, path, FileKind::model);
  const auto per_centre = [&](std::size_t n, const std::string& object) {
    if (n != 0) f.length(n, k, object, "centres");
  };
  per_centre(m.segment_names.size(), "/segments/names");
  f.unique(m.segment_names, "/segments/names", "segment name");
  per_centre(m.segment_sizes.size(), "/segments/sizes");
  f.values(std::span<const std::int64_t>(m.segment_sizes), 0, "/segments/sizes",
           [](std::int64_t x) { return x >= 0; }, "a segment size must be >= 0");
  per_centre(m.segment_shares.size(), "/segments/shares");
  f.values(std::span<const double>(m.segment_shares), 0, "/segments/shares",
           [](double x) { return x >= 0 && x <= 1; }, "a share must be in [0, 1]");
  if (!m.segment_sizes.empty() && !m.segment_shares.empty()) {
    // Shares are size / n_samples, and every row is in one segment: Σ sizes = n_samples.
    std::int64_t total = 0;
    for (std::int64_t s : m.segment_sizes) total += s;
    f.expect(total > 0, "/segments/sizes", "the sizes sum to 0, but a model is fitted on at least one row");
    for (std::int64_t c = 0; c < k; ++c) {
      const double want = static_cast<double>(m.segment_sizes[c]) / static_cast<double>(total);
      f.expect(std::abs(m.segment_shares[c] - want) <= 1e-9, "/segments/shares",
               "value " + std::to_string(c) + " (0-based) is " + std::to_string(m.segment_shares[c]) +
                   " but /segments/sizes gives " + std::to_string(want) + " (size / sum of sizes)");
    }
  }
  f.shape(m.segment_centres_original, k, d, "/segments/centres_original", true);
  // Original units can overflow to ±inf (expm1 of a large log1p centre); NaN is never right.
  f.values(std::span<const double>(m.segment_centres_original.values()), d, "/segments/centres_original",
           [](double x) { return !std::isnan(x); }, "values must be numbers");
  f.shape(m.segment_z_scores, k, d, "/segments/z_scores", true);
  f.finite(m.segment_z_scores, "/segments/z_scores");
  if (!m.segment_top_features.empty()) {
    f.expect(m.segment_top_features.rows() == k, "/segments/top_features",
             std::to_string(m.segment_top_features.rows()) + " rows for " + std::to_string(k) +
                 " centres; store one row per centre");
    f.values(std::span<const std::int32_t>(m.segment_top_features.values()), m.segment_top_features.cols(),
             "/segments/top_features", [d](std::int32_t j) { return j >= -1 && j < d; },
             "a feature index must be in [0, " + std::to_string(d) + ") (or -1: none)");
  }
  per_centre(m.segment_descriptions.size(), "/segments/descriptions");
  per_centre(m.segment_outreach.size(), "/segments/outreach");
  per_centre(m.counts.size(), "/counts");
  f.finite_non_negative(m.counts, "/counts");
  if (m.is_dbscan()) {
    f.expect(!m.dbscan_core_rows.empty(), "/dbscan/core_rows", "no core rows; a DBSCAN model needs them to predict");
    f.finite(m.dbscan_core_rows, "/dbscan/core_rows");
    const auto eps = m.attributes.find("eps");
    char* end = nullptr;
    const double v = eps == m.attributes.end() ? 0.0 : std::strtod(eps->second.c_str(), &end);
    f.expect(eps != m.attributes.end() && end != eps->second.c_str() && *end == '\0' && std::isfinite(v) && v > 0, "",
             "attribute eps is missing or not a positive number; a DBSCAN model predicts within eps");
  }
  if (m.is_hierarchy()) {
    const std::int64_t leaves = m.hierarchy_leaves.rows();
    f.expect(leaves >= 1, "/hierarchy/leaves", "no leaves; a hierarchical model needs them to predict");
    f.finite(m.hierarchy_leaves, "/hierarchy/leaves");
    f.finite_non_negative(m.hierarchy_leaf_sizes, "/hierarchy/leaf_sizes");
    if (!m.hierarchy_merges.empty()) {
      // SciPy's linkage matrix: merge i joins two clusters made before it (ids below leaves + i),
      // each used once, at a finite height >= 0, into a cluster of positive size.
      std::vector<std::uint8_t> used(static_cast<std::size_t>(2 * leaves), 0);
      for (std::int64_t i = 0; i < m.hierarchy_merges.rows(); ++i) {
        const std::string row = "row " + std::to_string(i) + " (0-based)";
        for (int c = 0; c < 2; ++c) {
          const double id = m.hierarchy_merges(i, c);
          const bool ok = std::isfinite(id) && id == std::floor(id) && id >= 0 && id < static_cast<double>(leaves + i) &&
                          !used[static_cast<std::size_t>(id)];
          f.expect(ok, "/hierarchy/merges", row + ": child " + std::to_string(id) +
                                                " is not a cluster made before it, or is merged twice; refit the model");
          used[static_cast<std::size_t>(id)] = 1;
        }
        f.expect(std::isfinite(m.hierarchy_merges(i, 2)) && m.hierarchy_merges(i, 2) >= 0, "/hierarchy/merges",
                 row + ": the height is not a finite distance >= 0; refit the model");
        f.expect(std::isfinite(m.hierarchy_merges(i, 3)) && m.hierarchy_merges(i, 3) > 0, "/hierarchy/merges",
                 row + ": the size is not a positive number; refit the model");
      }
    }
  }
  const auto attr = m.attributes.find("k");
  if (attr != m.attributes.end()) {
    char* end = nullptr;
    const long long v = std::strtoll(attr->second.c_str(), &end, 10);
    f.expect(end != attr->second.c_str() && *end == '\0' && v == k, "",
             "attribute k is '" + attr->second + "' but /centroids has " + std::to_string(k) + " centres");
  }
}

void validate_checkpoint(const FitState& s, const std::string& path) {
  const FileChecks f(path, FileKind::checkpoint);
  const bool lloyd = s.algorithm == "lloyd";
  f.expect((lloyd && (s.phase == "runs" || s.phase == "swap" || s.phase == "final")) ||
               (s.algorithm == "minibatch" && s.phase == "steps"),
           "", "unknown algorithm/phase '" + s.algorithm + "/" + s.phase + "'");
  f.expect(s.rng != std::array<std::uint64_t, 4>{}, "", "the generator state (rng_0..rng_3) is all zero");
  const std::int64_t k = s.centres.rows(), d = s.centres.cols();
  f.expect(k >= 1 && d >= 1, "/centres", "shape [" + std::to_string(k) + " x " + std::to_string(d) +
                                             "]; a checkpoint holds at least one centre of one feature");
  f.finite(s.centres, "/centres");
  f.shape(s.previous, k, d, "/previous", true);
  f.finite(s.previous, "/previous");
  f.shape(s.best_centroids, k, d, "/best/centroids", true);
  f.finite(s.best_centroids, "/best/centroids");
  if (!s.counts.empty() || !lloyd) f.length(s.counts.size(), k, "/counts", "centres");
  f.finite_non_negative(s.counts, "/counts");
  if (!s.best_counts.empty()) f.length(s.best_counts.size(), k, "/best/counts", "centres");
  f.finite_non_negative(s.best_counts, "/best/counts");
  f.finite_non_negative(s.run_inertia, "/run_inertia");
  auto non_negative = [&](std::int64_t v, const std::string& name) {
    f.expect(v >= 0, "", "attribute " + name + " is " + std::to_string(v) + "; it must be >= 0");
  };
  non_negative(s.run, "run");
  non_negative(s.step, "step");
  non_negative(s.n_empty, "n_empty");
  non_negative(s.best_n_iter, "best_n_iter");
  non_negative(s.best_n_empty, "best_n_empty");
  non_negative(s.best_run, "best_run");
  non_negative(s.swaps_accepted, "swaps_accepted");
  non_negative(s.since_reassign, "since_reassign");
  non_negative(s.no_improvement, "no_improvement");
  f.expect(!s.has_ewa || (std::isfinite(s.ewa) && s.ewa >= 0), "", "attribute ewa is not a finite number >= 0");
  f.expect(!s.has_ewa_min || (std::isfinite(s.ewa_min) && s.ewa_min >= 0), "",
           "attribute ewa_min is not a finite number >= 0");
  if (!lloyd) return;
  // The best run so far: none (inertia +inf, no centres) only before the first run ends.
  const bool has_best = !s.best_centroids.empty();
  f.expect(has_best ? std::isfinite(s.best_inertia) && s.best_inertia >= 0
                    : s.best_inertia == std::numeric_limits<double>::infinity(),
           "", "attribute best_inertia is " + std::to_string(s.best_inertia) +
                   (has_best ? " for the kept centres; it must be a finite number >= 0"
                             : " with no kept centres; it must be inf"));
  const auto runs_done = static_cast<std::int64_t>(s.run_inertia.size());
  if (s.phase == "runs") {
    f.expect(runs_done == s.run, "/run_inertia",
             std::to_string(runs_done) + " scores while run " + std::to_string(s.run) +
                 " is in progress; one score per finished run");
    f.expect(has_best == (s.run > 0), "/best/centroids",
             has_best ? "present before any run finished" : "missing after a finished run");
    f.expect(s.step == 0 || !s.previous.empty(), "/previous",
             "missing at iteration " + std::to_string(s.step) + "; the rows' last labels come from it");
  } else {
    f.expect(has_best, "/best/centroids", "missing in phase " + s.phase + "; it holds the kept solution");
    f.expect(runs_done >= 1, "/run_inertia", "empty in phase " + s.phase + "; every run scores before it");
    if (s.phase == "final")
      f.expect(s.step == 0 || !s.previous.empty(), "/previous",
               "missing at iteration " + std::to_string(s.step) + "; the rows' last labels come from it");
    else
      f.expect(s.swaps_accepted <= s.step, "", "attribute swaps_accepted exceeds the trials made (step)");
  }
  f.expect(runs_done == 0 || s.best_run < runs_done, "",
           "attribute best_run " + std::to_string(s.best_run) + " is not one of the " +
               std::to_string(runs_done) + " finished runs");
}

void validate_resume(const FitState& s, const std::string& algorithm, int n_clusters, std::int64_t n_features,
                     int n_init, int max_iter, const std::string& path) {
  const FileChecks f(path, FileKind::checkpoint);
  f.expect(s.algorithm == algorithm, "",
           "written by a " + s.algorithm + " fit, resumed by a " + algorithm + " one");
  f.expect(s.centres.rows() == n_clusters && s.centres.cols() == n_features, "/centres",
           "shape [" + std::to_string(s.centres.rows()) + " x " + std::to_string(s.centres.cols()) +
               "], but this run has n_clusters=" + std::to_string(n_clusters) +
               " and n_features=" + std::to_string(n_features));
  if (algorithm != "lloyd") return;
  f.expect(s.run < n_init && static_cast<std::int64_t>(s.run_inertia.size()) <= n_init, "",
           "attribute run " + std::to_string(s.run) + " with " + std::to_string(s.run_inertia.size()) +
               " finished runs, but this run has n_init=" + std::to_string(n_init));
  if (s.phase != "swap")
    f.expect(s.step < max_iter, "", "attribute step " + std::to_string(s.step) +
                                         " is past this run's max_iter=" + std::to_string(max_iter));
}

int validate_labels(std::span<const std::int32_t> labels, std::int64_t n_samples,
                    const std::string& where) {
  expect(static_cast<std::int64_t>(labels.size()) == n_samples, where,
         std::to_string(labels.size()) + " labels for " + std::to_string(n_samples) +
             " rows; the labels must come from the same feature file");
  std::int32_t max_label = -1;
  // n_clusters = max label + 1 sizes per-segment arrays: a label such as 2147483647 would
  // overflow it (and ask for gigabytes), so labels stay below max(n_samples, 65536).
  const std::int64_t limit = std::max<std::int64_t>(n_samples, 65536);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    expect(labels[i] >= 0, where,
           "row " + std::to_string(i) + " (0-based): label " + std::to_string(labels[i]) +
               " is negative; labels must be 0 .. n_clusters-1");
    expect(labels[i] < limit, where,
           "row " + std::to_string(i) + " (0-based): label " + std::to_string(labels[i]) +
               " is too large a segment number (at most " + std::to_string(limit - 1) +
               " here); renumber the segments 0 .. n_clusters-1");
    max_label = std::max(max_label, labels[i]);
  }
  return max_label + 1;
}

void validate_label_count(std::span<const std::int32_t> labels, int n_clusters,
                          const std::string& where) {
  std::vector<char> present(static_cast<std::size_t>(n_clusters), 0);
  for (auto l : labels) present[static_cast<std::size_t>(l)] = 1;
  std::int64_t n_labels = 0;
  for (char p : present) n_labels += p;
  const auto n = static_cast<std::int64_t>(labels.size());
  expect(n_labels >= 2 && n_labels <= n - 1, where,
         "number of labels is " + std::to_string(n_labels) +
             "; valid values are 2 to n_samples - 1 (inclusive) for silhouette, "
             "Davies-Bouldin and Calinski-Harabasz");
}

}  // namespace segforge
