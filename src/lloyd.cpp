// Full-batch K-Means (Lloyd 1982) with restarts and Fränti's random swap, against the Backend seam.

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <limits>
#include <numeric>

#include "checkpoint_step.hpp"
#include "segforge/error.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/rng.hpp"
#include "segforge/validate.hpp"

namespace segforge {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Run {
  Matrix<float> centroids;
  std::vector<double> counts;
  double inertia = 0.0;
  int n_iter = 0;
  bool converged = false;
  int n_empty = 0;
};

/// New centres from the per-cluster sums. Empty clusters are re-seeded from the rows farthest
/// from their centres (as scikit-learn's _relocate_empty_clusters, without moving those rows'
/// weight out of their old clusters): the rows and their distances are fetched only then.
Matrix<float> update_centres(Backend& backend, const Dataset& data, const AccumulateResult& acc,
                             MatrixView<const float> old, int& n_empty) {
  const std::int64_t k = old.rows;
  const std::int64_t d = old.cols;
  Matrix<float> centres(k, d);
  std::vector<std::int64_t> empty;
  for (std::int64_t c = 0; c < k; ++c) {
    if (acc.counts[c] > 0) {
      for (std::int64_t j = 0; j < d; ++j)
        centres(c, j) = static_cast<float>(acc.sums[c * d + j] / acc.counts[c]);
    } else {
      empty.push_back(c);
    }
  }
  if (empty.empty()) return centres;

  const std::int64_t n = data.n_samples();
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  std::vector<float> dist(static_cast<std::size_t>(n));
  backend.assign(data, old, labels, dist);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const auto n_far = std::min<std::int64_t>(static_cast<std::int64_t>(empty.size()), n);
  std::partial_sort(order.begin(), order.begin() + n_far, order.end(),
                    [&](std::int64_t a, std::int64_t b) {
                      return dist[a] != dist[b] ? dist[a] > dist[b] : a < b;
                    });
  const Matrix<float> far = backend.gather(data, std::span(order.data(), static_cast<std::size_t>(n_far)));
  for (std::int64_t e = 0; e < n_far; ++e)
    std::copy(far.row(e), far.row(e) + d, centres.row(empty[e]));
  n_empty += static_cast<int>(n_far);
  return centres;
}

double squared_shift(MatrixView<const float> a, MatrixView<const float> b) {
  double shift = 0.0;
  for (std::int64_t i = 0; i < a.size(); ++i) {
    const double diff = static_cast<double>(a.data[i]) - b.data[i];
    shift += diff * diff;
  }
  return shift;
}

/// Where a Lloyd loop starts: the centres of iteration `it`, and (for it > 0) the centres the
/// rows were last labelled with, which a resumed loop labels the rows with again.
struct Cursor {
  Matrix<float> centres;
  Matrix<float> previous;
  int it = 0;
  int n_empty = 0;
};

/// Called before each iteration: (iteration, centres, previous, n_empty so far).
using Boundary = std::function<void(int, const Matrix<float>&, const Matrix<float>&, int)>;

/// Lloyd iterations from `start` with scikit-learn's stopping rules: strict convergence when no
/// label changes, else when Σ||c_new − c_old||² <= tol_abs. The final inertia and counts belong
/// to the returned centres (one more assignment pass unless the labels stopped changing).
Run lloyd_from(Backend& backend, Dataset& data, Cursor start, int max_iter, double tol_abs,
               const ProgressFn& progress, int run_index, const Boundary& boundary = {}) {
  Run run;
  run.n_empty = start.n_empty;
  Matrix<float> centres = std::move(start.centres);
  Matrix<float> previous = std::move(start.previous);
  // Resuming mid-run: the dataset's labels are those of the last pass, so that the next pass
  // counts changed labels exactly as the uninterrupted run did.
  if (start.it > 0) backend.assign_accumulate(data, previous.view());
  bool strict = false;
  AccumulateResult acc;
  for (int it = start.it; it < max_iter; ++it) {
    if (boundary) boundary(it, centres, previous, run.n_empty);
    acc = backend.assign_accumulate(data, centres.view());
    run.n_iter = it + 1;
    if (progress) progress({"lloyd", run_index, it + 1, max_iter, acc.inertia});
    if (it > 0 && acc.n_changed == 0) {
      // The labels repeat, so the means of the same rows are the current centres.
      strict = true;
      run.converged = true;
      break;
    }
    Matrix<float> next = update_centres(backend, data, acc, centres.view(), run.n_empty);
    const double shift = squared_shift(next.view(), centres.view());
    previous = std::move(centres);
    centres = std::move(next);
    if (shift <= tol_abs) {
      run.converged = true;
      break;
    }
  }
  if (!strict) acc = backend.assign_accumulate(data, centres.view());
  run.centroids = std::move(centres);
  run.counts = std::move(acc.counts);
  run.inertia = acc.inertia;
  return run;
}

/// Trials of Fränti's random swap when the caller asks for the default: enough for the
/// benchmark sets with K up to 100 (A3: K = 50), capped so it stays a refinement.
int default_swap_trials(int n_clusters) { return std::min(5000, 60 * n_clusters); }

/// `auto_select` refines where it pays: where the trials cost at most about 1e11 multiply-adds
/// (a few seconds on two cores) — small N·K, where k-means++ restarts are known to leave a
/// centre between two clusters (the A-sets). Large data relies on n_init.
bool swap_pays(std::int64_t n_samples, std::int64_t n_features, int n_clusters, int trials) {
  constexpr double kBudget = 1e11;
  const double per_trial = 3.0 * static_cast<double>(n_samples) * n_clusters *
                           static_cast<double>(std::max<std::int64_t>(n_features, 4));
  return n_clusters >= 2 && per_trial * trials <= kBudget;
}

/// Random swap trials (Fränti 2018, "Efficiency of random swap clustering", J. Big Data 5:13),
/// from trial `first` on. Step 1: move a random centre to a row drawn by D² sampling (rather
/// than uniformly: it finds the under-served regions faster). Step 2: two Lloyd iterations.
/// Step 3: keep the swap if the inertia fell. The caller runs Lloyd to convergence after.
/// `boundary(t, best)` is called before each trial.
Run random_swap(Backend& backend, Dataset& data, Run best, int first, int trials, Rng& rng,
                const ProgressFn& progress, int& accepted,
                const std::function<void(int, const Run&)>& boundary) {
  const int k = static_cast<int>(best.centroids.rows());
  const std::int64_t d = best.centroids.cols();
  double potential = backend.reset_min_distances(data, best.centroids.view());
  for (int t = first; t < trials && potential > 0; ++t) {
    boundary(t, best);
    const std::int64_t victim = rng.below(k);
    const double target = rng.uniform() * potential;
    const std::int64_t row = backend.sample_by_min_distance(data, std::span(&target, 1)).front();
    const Matrix<float> point = backend.gather(data, std::span(&row, 1));
    Matrix<float> trial = best.centroids;
    std::copy(point.data(), point.data() + d, trial.row(victim));
    Run candidate = lloyd_from(backend, data, Cursor{std::move(trial)}, 2, 0.0, {}, 0);
    if (progress) progress({"swap", 0, t + 1, trials, best.inertia});
    if (candidate.inertia < best.inertia) {
      candidate.n_empty += best.n_empty;
      candidate.n_iter += best.n_iter;
      best = std::move(candidate);
      ++accepted;
      potential = backend.reset_min_distances(data, best.centroids.view());
    }
  }
  return best;
}

}  // namespace

KMeansResult fit_lloyd(Backend& backend, Dataset& data, const LloydParams& params,
                       const ProgressFn& progress, const Checkpointing* checkpointing) {
  // scikit-learn's _tolerance: tol times the mean column variance, and 0 without a pass over
  // the rows when tol is 0.
  double tol_abs = 0.0;
  if (params.tol != 0.0) {
    const ColumnStats stats = backend.column_stats(data);
    const double mean_variance = std::accumulate(stats.variance.begin(), stats.variance.end(), 0.0) /
                                 static_cast<double>(stats.variance.size());
    tol_abs = params.tol * mean_variance;
  }

  Rng rng(params.seed);
  const int n_init = params.init.init == Init::given ? 1 : params.n_init;
  KMeansResult result;
  Run best;
  best.inertia = std::numeric_limits<double>::infinity();

  const FitState* from = checkpointing ? checkpointing->resume : nullptr;
  std::string phase = "runs";
  if (from) {
    // A checkpoint is a file: its shapes must be this run's before the backend sees them.
    validate_resume(*from, "lloyd", params.n_clusters, data.n_features(), n_init, params.max_iter,
                    checkpointing->path.empty() ? "checkpoint" : checkpointing->path);
    phase = from->phase;
    rng.set_state(from->rng);
    best.centroids = from->best_centroids;
    best.counts = from->best_counts;
    best.inertia = from->best_inertia;
    best.n_iter = from->best_n_iter;
    best.converged = from->best_converged;
    best.n_empty = from->best_n_empty;
    result.best_run = from->best_run;
    result.run_inertia = from->run_inertia;
    result.n_swaps_accepted = from->swaps_accepted;
  }
  // The state at a step boundary: the outer loops' (best run, scores, generator) plus the
  // step's own.
  auto state_at = [&](const std::string& at_phase, int run, std::int64_t step) {
    FitState s;
    s.algorithm = "lloyd";
    s.phase = at_phase;
    s.rng = rng.state();
    s.run = run;
    s.step = step;
    s.best_centroids = best.centroids;
    s.best_counts = best.counts;
    s.best_inertia = best.inertia;
    s.best_n_iter = best.n_iter;
    s.best_converged = best.converged;
    s.best_n_empty = best.n_empty;
    s.best_run = result.best_run;
    s.run_inertia = result.run_inertia;
    s.swaps_accepted = result.n_swaps_accepted;
    return s;
  };
  auto lloyd_boundary = [&](const std::string& at_phase, int run) -> Boundary {
    if (!checkpointing) return {};
    return [&, at_phase, run](int it, const Matrix<float>& centres, const Matrix<float>& previous,
                              int n_empty) {
      detail::checkpoint_boundary(checkpointing, it, [&] {
        FitState s = state_at(at_phase, run, it);
        s.centres = centres;
        s.previous = previous;
        s.n_empty = n_empty;
        return s;
      });
    };
  };
  auto resume_cursor = [&]() {
    return Cursor{from->centres, from->previous, static_cast<int>(from->step), from->n_empty};
  };

  if (phase == "runs") {
    for (int r = from ? from->run : 0; r < n_init; ++r) {
      Cursor start;
      if (from && r == from->run) {
        start = resume_cursor();  // the generator is already past this run's seed
      } else {
        const std::uint64_t run_seed = rng.split();
        const auto t0 = Clock::now();
        if (progress) progress({"init", r, 0, 0});
        start.centres = init_centroids(backend, data, params.n_clusters, params.init, run_seed);
        result.init_seconds += seconds_since(t0);
      }
      const auto t1 = Clock::now();
      Run run = lloyd_from(backend, data, std::move(start), params.max_iter, tol_abs, progress, r,
                           lloyd_boundary("runs", r));
      result.iter_seconds += seconds_since(t1);
      result.run_inertia.push_back(run.inertia);
      if (run.inertia < best.inertia) {
        best = std::move(run);
        result.best_run = r;
      }
    }
  }

  const int trials =
      params.swap_trials > 0 ? params.swap_trials : default_swap_trials(params.n_clusters);
  const bool refine = params.refine == Refine::random_swap ||
                      (params.refine == Refine::auto_select &&
                       swap_pays(data.n_samples(), data.n_features(), params.n_clusters, trials));
  if (refine) {
    const auto t0 = Clock::now();
    if (phase == "runs" || phase == "swap") {
      const int first = phase == "swap" ? static_cast<int>(from->step) : 0;
      best = random_swap(backend, data, std::move(best), first, trials, rng, progress,
                         result.n_swaps_accepted, [&](int t, const Run& kept) {
                           detail::checkpoint_boundary(checkpointing, t, [&] {
                             best = kept;  // state_at reads `best`
                             FitState s = state_at("swap", 0, t);
                             // The trials start from the kept centres (a resume reads them from
                             // /best/centroids); /centres says the same, as in every phase.
                             s.centres = kept.centroids;
                             return s;
                           });
                         });
    }
    // Lloyd to convergence from the kept solution.
    Cursor start = phase == "final" ? resume_cursor() : Cursor{best.centroids};
    Run final = lloyd_from(backend, data, std::move(start), params.max_iter, tol_abs, progress, 0,
                           lloyd_boundary("final", 0));
    final.n_empty += best.n_empty;
    final.n_iter += best.n_iter;  // the kept solution's Lloyd steps: before, in swaps, and after
    best = std::move(final);
    result.iter_seconds += seconds_since(t0);
  }

  result.centroids = std::move(best.centroids);
  result.counts = std::move(best.counts);
  result.inertia = best.inertia;
  result.n_iter = best.n_iter;
  result.converged = best.converged;
  result.n_empty_relocated = best.n_empty;
  return result;
}

Assignment predict(Backend& backend, const Dataset& data, MatrixView<const float> centroids) {
  Assignment out;
  const auto n = static_cast<std::size_t>(data.n_samples());
  out.labels.resize(n);
  out.sq_distances.resize(n);
  backend.assign(data, centroids, out.labels, out.sq_distances);
  // A fixed-order double sum, so the same labels give the same inertia.
  for (float v : out.sq_distances) out.inertia += v;
  return out;
}

}  // namespace segforge
