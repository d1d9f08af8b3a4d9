#include "segforge/validate.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "segforge/error.hpp"

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
