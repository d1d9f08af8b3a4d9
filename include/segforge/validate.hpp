#pragma once
// Up-front checks (scikit-learn's _check_params_vs_input). Each failure is an InputError whose
// message starts with `where` (e.g. "features.h5:/features") and shows the values. Code after
// validation assumes valid input.

#include <cstdint>
#include <span>
#include <string>

#include "segforge/kmeans.hpp"

namespace segforge {

/// Lloyd parameters against a data shape [n_samples x n_features].
void validate(const LloydParams& params, std::int64_t n_samples, std::int64_t n_features,
              const std::string& where);
/// Mini-batch parameters against a data shape.
void validate(const MiniBatchParams& params, std::int64_t n_samples, std::int64_t n_features,
              const std::string& where);
/// Starting centres: [n_clusters x n_features], finite.
void validate_centroids(MatrixView<const float> centroids, int n_clusters,
                        std::int64_t n_features, const std::string& where);
/// Labels for scoring: one per row, each in [0, n_clusters). Returns n_clusters (max + 1).
int validate_labels(std::span<const std::int32_t> labels, std::int64_t n_samples,
                    const std::string& where);
/// Silhouette (and DB, CH) need 2 <= number of distinct labels <= n_samples − 1.
void validate_label_count(std::span<const std::int32_t> labels, int n_clusters,
                          const std::string& where);

}  // namespace segforge
