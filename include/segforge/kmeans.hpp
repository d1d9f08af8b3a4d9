#pragma once
// K-Means drivers, written once against the Backend seam.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/checkpoint.hpp"
#include "segforge/matrix.hpp"

namespace segforge {

enum class Init { kmeans_pp, scalable_kmeans_pp, random, given };
enum class Algorithm { lloyd, minibatch };
/// Refinement after Lloyd converges. `random_swap` is Fränti's random swap (Fränti 2018,
/// "Efficiency of random swap clustering"): move one centre to a random data point, run two
/// Lloyd steps, keep the swap when the inertia falls. `auto_select` uses it where it pays
/// (trials costing at most ~1e11 multiply-adds, where k-means++ restarts are known to leave
/// centres stuck between clusters).
enum class Refine { none, random_swap, auto_select };

/// Progress of a driver, for a progress line in tools/ (the library never prints).
struct Progress {
  std::string phase;  ///< "init", "lloyd", "minibatch", "swap", "silhouette", ...
  int run = 0;        ///< n_init run, 0-based
  std::int64_t step = 0;
  std::int64_t total = 0;  ///< 0 when unknown
  std::optional<double> inertia;  ///< only for phases that have one (lloyd, minibatch, swap, sweep)
};
using ProgressFn = std::function<void(const Progress&)>;

struct InitParams {
  Init init = Init::kmeans_pp;
  /// k-means++: local trials per centre; 0 means 2 + floor(ln K) (Arthur & Vassilvitskii 2007).
  int n_local_trials = 0;
  /// k-means||: oversampling factor ℓ as a multiple of K (Bahmani et al. 2012 use ℓ = 2K).
  double oversampling_factor = 2.0;
  /// k-means||: number of rounds; 0 means 5 (Bahmani et al. report 5 rounds suffice).
  int n_rounds = 0;
  /// Init::given: the starting centres [n_clusters x n_features].
  Matrix<float> centroids;
};

struct LloydParams {
  int n_clusters = 8;        ///< K
  int max_iter = 300;        ///< Lloyd iterations per run
  double tol = 1e-4;         ///< relative to the mean feature variance, as scikit-learn
  int n_init = 1;            ///< restarts; the lowest inertia wins (ignored for Init::given)
  std::uint64_t seed = 0;    ///< the driver's one engine; each run draws its seed from it
  InitParams init;
  Refine refine = Refine::none;
  int swap_trials = 0;       ///< random swap trials; 0 means the default for the data size
};

struct MiniBatchParams {
  int n_clusters = 8;
  int batch_size = 1024;
  int max_iter = 100;              ///< passes over the data (epochs), as scikit-learn
  double tol = 0.0;                ///< early stop on centre movement (0: off), as scikit-learn
  int max_no_improvement = 10;     ///< early stop on the smoothed batch inertia (0: off)
  double reassignment_ratio = 0.01;  ///< centres with counts below ratio·max are reassigned
  int n_init = 3;
  std::uint64_t seed = 0;
  InitParams init;
  int init_size = 0;               ///< rows used by init; 0: 3·batch_size (capped at N)
  /// Continue training: per-centre counts from a saved model (empty: fresh start).
  std::vector<double> counts;
};

struct KMeansResult {
  Matrix<float> centroids;      ///< [n_clusters x n_features]
  std::vector<double> counts;   ///< [n_clusters] weight per centre (mini-batch: running counts)
  double inertia = 0.0;         ///< Σ w·||x − c_label||² over all rows with the final centres
  int n_iter = 0;               ///< Lloyd iterations of the kept run, random-swap steps included (mini-batch: steps)
  bool converged = false;
  int n_empty_relocated = 0;    ///< empty clusters re-seeded during the kept run
  int n_swaps_accepted = 0;     ///< random swap: accepted swaps
  int best_run = 0;
  std::vector<double> run_inertia;  ///< inertia of every n_init run
  double init_seconds = 0.0;
  double iter_seconds = 0.0;
};

/// Starting centres for one run. [out] [n_clusters x n_features]
Matrix<float> init_centroids(Backend& backend, Dataset& data, int n_clusters,
                             const InitParams& params, std::uint64_t seed);

/// Full-batch K-Means (Lloyd) with n_init restarts. Prior validation of the data is assumed.
/// With `checkpointing`, the fit saves its state at step boundaries and can resume from one;
/// a resumed fit returns what the uninterrupted one would have (timings aside).
KMeansResult fit_lloyd(Backend& backend, Dataset& data, const LloydParams& params,
                       const ProgressFn& progress = {}, const Checkpointing* checkpointing = nullptr);

/// Mini-batch K-Means (Sculley 2010, per-centre counts as scikit-learn).
KMeansResult fit_minibatch(Backend& backend, Dataset& data, const MiniBatchParams& params,
                           const ProgressFn& progress = {},
                           const Checkpointing* checkpointing = nullptr);

/// Labels and squared distances of every row to its nearest centre.
struct Assignment {
  std::vector<std::int32_t> labels;
  std::vector<float> sq_distances;
  double inertia = 0.0;
};
Assignment predict(Backend& backend, const Dataset& data, MatrixView<const float> centroids);

}  // namespace segforge
