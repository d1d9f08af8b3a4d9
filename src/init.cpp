// Seeding: k-means++ (greedy, with local trials), k-means|| and random rows.

#include <algorithm>
#include <cmath>
#include <limits>

#include "segforge/error.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/rng.hpp"

namespace segforge {

namespace {

Matrix<float> rows_of(Backend& backend, const Dataset& data, std::span<const std::int64_t> rows) {
  return backend.gather(data, rows);
}

/// Index of the smallest value; ties go to the lower index.
std::size_t argmin(const std::vector<double>& v) {
  return static_cast<std::size_t>(std::min_element(v.begin(), v.end()) - v.begin());
}

/// Greedy k-means++ (Arthur & Vassilvitskii 2007, with the local trials of scikit-learn's
/// _kmeans_plusplus): each new centre is the best of `n_local_trials` D²-sampled candidates.
Matrix<float> kmeans_plus_plus(Backend& backend, Dataset& data, int n_clusters, int n_local_trials,
                               Rng& rng) {
  const std::int64_t n = data.n_samples();
  const std::int64_t d = data.n_features();
  if (n_local_trials <= 0) n_local_trials = 2 + static_cast<int>(std::log(n_clusters));
  Matrix<float> centres(n_clusters, d);

  // Step 1: the first centre uniformly at random.
  const std::int64_t first = rng.below(n);
  Matrix<float> chosen = rows_of(backend, data, std::span(&first, 1));
  std::copy(chosen.data(), chosen.data() + d, centres.row(0));
  double potential = backend.reset_min_distances(data, chosen.view());

  std::vector<double> targets(static_cast<std::size_t>(n_local_trials));
  for (int c = 1; c < n_clusters; ++c) {
    std::vector<std::int64_t> candidate_ids;
    if (potential > 0) {
      // Step 2: candidates x with probability w·d(x)² / φ.
      for (auto& t : targets) t = rng.uniform() * potential;
      std::sort(targets.begin(), targets.end());
      candidate_ids = backend.sample_by_min_distance(data, targets);
    } else {
      // Every row sits on a chosen centre (fewer distinct rows than K): any row will do.
      for (int t = 0; t < n_local_trials; ++t) candidate_ids.push_back(rng.below(n));
    }
    // Step 3: keep the candidate that lowers the potential most.
    Matrix<float> candidates = rows_of(backend, data, candidate_ids);
    const std::vector<double> potentials = backend.candidate_potentials(data, candidates.view());
    const std::size_t best = argmin(potentials);
    std::copy(candidates.row(static_cast<std::int64_t>(best)),
              candidates.row(static_cast<std::int64_t>(best)) + d, centres.row(c));
    potential = backend.update_min_distances(
        data, MatrixView<const float>{candidates.row(static_cast<std::int64_t>(best)), 1, d});
  }
  return centres;
}

Matrix<float> random_rows(Backend& backend, const Dataset& data, int n_clusters, Rng& rng) {
  const std::vector<std::int64_t> ids = rng.choose(data.n_samples(), n_clusters);
  return rows_of(backend, data, ids);
}

/// k-means|| (Bahmani, Moseley, Vattani, Kumar, Vassilvitskii 2012, Algorithm 2).
Matrix<float> kmeans_parallel(Backend& backend, Dataset& data, int n_clusters,
                              const InitParams& params, Rng& rng) {
  const std::int64_t n = data.n_samples();
  const double ell = params.oversampling_factor * n_clusters;
  const int rounds = params.n_rounds > 0 ? params.n_rounds : 5;

  // Step 1: C ← one point uniformly at random.  Step 2: ψ ← φ_X(C).
  std::vector<std::int64_t> picked{rng.below(n)};
  Matrix<float> first = rows_of(backend, data, picked);
  double phi = backend.reset_min_distances(data, first.view());

  // Steps 3–6: for each round, keep x with p = ℓ·d²(x,C)/φ_X(C) and add them to C.
  for (int r = 0; r < rounds && phi > 0; ++r) {
    const std::vector<std::int64_t> new_ids = backend.oversample(data, ell / phi, rng.split());
    if (new_ids.empty()) continue;
    Matrix<float> new_centres = rows_of(backend, data, new_ids);
    phi = backend.update_min_distances(data, new_centres.view());
    picked.insert(picked.end(), new_ids.begin(), new_ids.end());
  }
  std::sort(picked.begin(), picked.end());
  picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
  // Too few candidates (tiny data, or all points duplicated): top up with random rows.
  if (static_cast<std::int64_t>(picked.size()) < n_clusters) {
    for (std::int64_t i : rng.choose(n, std::min<std::int64_t>(n, 2 * n_clusters))) picked.push_back(i);
    std::sort(picked.begin(), picked.end());
    picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
  }
  Matrix<float> candidates = rows_of(backend, data, picked);

  // Step 7: w_x = number of points closer to x than to any other candidate.
  const AccumulateResult owners = backend.assign_accumulate(data, candidates.view());
  std::vector<float> weights(owners.counts.begin(), owners.counts.end());

  // Step 8: recluster the weighted candidates into K centres (weighted k-means++ then Lloyd,
  // as Spark MLlib's LocalKMeans does).
  std::unique_ptr<Dataset> small = backend.upload(candidates.view(), weights);
  LloydParams local;
  local.n_clusters = n_clusters;
  local.max_iter = 30;
  local.tol = 0;
  local.seed = rng.split();
  local.init.init = Init::kmeans_pp;
  local.init.n_local_trials = params.n_local_trials;
  return fit_lloyd(backend, *small, local).centroids;
}

}  // namespace

Matrix<float> init_centroids(Backend& backend, Dataset& data, int n_clusters,
                             const InitParams& params, std::uint64_t seed) {
  Rng rng(seed);
  switch (params.init) {
    case Init::kmeans_pp:
      return kmeans_plus_plus(backend, data, n_clusters, params.n_local_trials, rng);
    case Init::scalable_kmeans_pp:
      return kmeans_parallel(backend, data, n_clusters, params, rng);
    case Init::random:
      return random_rows(backend, data, n_clusters, rng);
    case Init::given:
      return params.centroids;
  }
  SEGFORGE_ASSERT(false, "unknown init");
  return {};
}

}  // namespace segforge
