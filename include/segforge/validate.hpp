#pragma once
// Up-front checks (scikit-learn's _check_params_vs_input). Each failure is an InputError whose
// message starts with `where` (e.g. "features.h5:/features") and shows the values. Code after
// validation assumes valid input.

#include <cstdint>
#include <span>
#include <string>

#include "segforge/checkpoint.hpp"
#include "segforge/io.hpp"
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
/// Mini-batch per-centre counts (a model's /counts): n_clusters values, each finite and >= 0.
void validate_counts(std::span<const double> counts, int n_clusters, const std::string& where);

// ---- arrays read from files ------------------------------------------------------------------
// Every reader of a features file, model or checkpoint calls these before it returns, so code
// after a read may rely on the values. `path` is the file; messages name it, the dataset, what
// is wrong and what to do.

/// What the user can do about a bad file, by kind (ends every message).
enum class FileKind { features, model, checkpoint };

/// /scaler of a features file or model: mean, scale, transform (and clip bounds when present)
/// of n_features each; mean finite, scale finite and > 0, transform identity, log1p or
/// signed_log1p, clip bounds not NaN with low <= high. An empty scaler passes.
void validate_scaler(const Scaler& scaler, std::int64_t n_features, const std::string& path, FileKind kind);
/// /feature_names: n_features names (or none), unique.
void validate_feature_names(const std::vector<std::string>& names, std::int64_t n_features,
                            const std::string& path, FileKind kind);
/// /feature_roles: n_features entries (or none), each a role word (roles.hpp, any case);
/// `audience` (the root attribute): empty, donors or customers.
void validate_feature_roles(const std::vector<std::string>& roles, std::int64_t n_features,
                            const std::string& path, FileKind kind);
void validate_audience(const std::string& audience, const std::string& path, FileKind kind);
/// A whole model (what read_model returns): centroids finite, names and scaler as above, every
/// /segments array one per centre, sizes >= 0, shares in [0, 1] and equal to size / Σ sizes,
/// profiles not NaN, top features in range, counts finite and >= 0, segment names unique, and
/// the `k` attribute (when present) equal to the number of centres.
void validate_model(const Model& model, const std::string& path);
/// A checkpoint on its own (what read_checkpoint returns): a known algorithm and phase, every
/// matrix [K x D] with K x D the centres', finite; counts K, finite, >= 0; scores finite, >= 0;
/// counters >= 0 and consistent with the phase (e.g. a swap needs the kept run's centres).
void validate_checkpoint(const FitState& state, const std::string& path);
/// A checkpoint against the run resuming it: algorithm, n_clusters, n_features, the run index
/// below n_init and the iteration below max_iter.
void validate_resume(const FitState& state, const std::string& algorithm, int n_clusters,
                     std::int64_t n_features, int n_init, int max_iter, const std::string& path);

/// Silhouette (and DB, CH) need 2 <= number of distinct labels <= n_samples − 1.
void validate_label_count(std::span<const std::int32_t> labels, int n_clusters,
                          const std::string& where);

}  // namespace segforge
