// Mini-batch K-Means (Sculley 2010, "Web-scale k-means clustering"), with the per-centre counts,
// the reassignment of starved centres and the early stopping of scikit-learn's MiniBatchKMeans.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

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

/// scikit-learn's _mini_batch_convergence: an exponentially weighted average of the batch
/// inertia (per row); stop when it has not improved for `max_no_improvement` steps, or when the
/// centres moved by at most tol_abs.
class EarlyStop {
 public:
  EarlyStop(const MiniBatchParams& p, std::int64_t n_samples, double tol_abs)
      : alpha_(std::min(1.0, 2.0 * p.batch_size / (static_cast<double>(n_samples) + 1))),
        tol_abs_(tol_abs), max_no_improvement_(p.max_no_improvement), batch_size_(p.batch_size) {}

  bool stop(std::int64_t step, double batch_inertia, double squared_shift) {
    batch_inertia /= batch_size_;
    if (step == 0) return false;  // the first step's inertia says little
    ewa_ = ewa_ ? *ewa_ * (1 - alpha_) + batch_inertia * alpha_ : batch_inertia;
    if (tol_abs_ > 0 && squared_shift <= tol_abs_) return true;
    if (!ewa_min_ || *ewa_ < *ewa_min_) {
      no_improvement_ = 0;
      ewa_min_ = ewa_;
    } else {
      ++no_improvement_;
    }
    return max_no_improvement_ > 0 && no_improvement_ >= max_no_improvement_;
  }

  void save(FitState& s) const {
    s.has_ewa = ewa_.has_value();
    s.ewa = ewa_.value_or(0.0);
    s.has_ewa_min = ewa_min_.has_value();
    s.ewa_min = ewa_min_.value_or(0.0);
    s.no_improvement = no_improvement_;
  }
  void restore(const FitState& s) {
    ewa_ = s.has_ewa ? std::optional<double>(s.ewa) : std::nullopt;
    ewa_min_ = s.has_ewa_min ? std::optional<double>(s.ewa_min) : std::nullopt;
    no_improvement_ = s.no_improvement;
  }

 private:
  double alpha_;
  double tol_abs_;
  int max_no_improvement_;
  int batch_size_;
  std::optional<double> ewa_, ewa_min_;
  int no_improvement_ = 0;
};

/// Centres whose count is below ratio·max are moved to random rows of the batch, and their
/// count set to the smallest kept count (scikit-learn's _mini_batch_step, random_reassign).
void reassign_starved(Backend& backend, const Dataset& data,
                      std::span<const std::int64_t> batch, const MiniBatchParams& p,
                      Matrix<float>& centres, std::vector<double>& counts, Rng& rng) {
  const double max_count = *std::max_element(counts.begin(), counts.end());
  const int k = p.n_clusters;
  std::vector<char> starved(static_cast<std::size_t>(k), 0);
  std::int64_t n_starved = 0;
  for (int c = 0; c < k; ++c) n_starved += starved[c] = counts[c] < p.reassignment_ratio * max_count;
  const auto half = static_cast<std::int64_t>(0.5 * static_cast<double>(batch.size()));
  if (n_starved > half) {  // reassign at most half a batch: keep the best-fed ones
    std::vector<int> order(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return counts[a] < counts[b]; });
    for (int i = static_cast<int>(half); i < k; ++i) starved[order[i]] = 0;
    n_starved = half;
  }
  if (n_starved == 0) return;
  double min_kept = std::numeric_limits<double>::infinity();
  for (int c = 0; c < k; ++c)
    if (!starved[c]) min_kept = std::min(min_kept, counts[c]);
  const std::vector<std::int64_t> picks = rng.choose(static_cast<std::int64_t>(batch.size()), n_starved);
  std::vector<std::int64_t> rows;
  for (std::int64_t i : picks) rows.push_back(batch[i]);
  const Matrix<float> fresh = backend.gather(data, rows);
  std::int64_t next = 0;
  for (int c = 0; c < k; ++c) {
    if (!starved[c]) continue;
    std::copy(fresh.row(next), fresh.row(next) + centres.cols(), centres.row(c));
    counts[c] = std::isfinite(min_kept) ? min_kept : 0.0;
    ++next;
  }
}

}  // namespace

KMeansResult fit_minibatch(Backend& backend, Dataset& data, const MiniBatchParams& params,
                           const ProgressFn& progress, const Checkpointing* checkpointing) {
  const std::int64_t n = data.n_samples();
  const int k = params.n_clusters;
  const ColumnStats stats = backend.column_stats(data);
  const double tol_abs = params.tol * std::accumulate(stats.variance.begin(), stats.variance.end(), 0.0) /
                         static_cast<double>(stats.variance.size());
  Rng rng(params.seed);
  KMeansResult result;

  // Init: each candidate is seeded on `init_size` random rows and scored on a validation
  // sample; the best one starts the batches (scikit-learn's MiniBatchKMeans._init_centroids).
  const auto t0 = Clock::now();
  std::int64_t init_size = params.init_size > 0 ? params.init_size : 3 * params.batch_size;
  if (init_size < k) init_size = 3 * static_cast<std::int64_t>(k);
  init_size = std::min(init_size, n);
  Matrix<float> centres;
  std::vector<double> counts(static_cast<std::size_t>(k), 0.0);
  const FitState* from = checkpointing ? checkpointing->resume : nullptr;
  const bool continuing = !params.counts.empty() || params.init.init == Init::given;
  if (from) {
    validate_resume(*from, "minibatch", k, data.n_features(), params.n_init, params.max_iter,
                    checkpointing->path.empty() ? "checkpoint" : checkpointing->path);
    rng.set_state(from->rng);
    centres = from->centres;
    counts = from->counts;
    result.run_inertia = from->run_inertia;
    result.best_run = from->best_run;
  } else if (continuing) {
    centres = params.init.centroids;
    if (!params.counts.empty()) counts = params.counts;
  } else {
    std::vector<std::int64_t> valid_rows(static_cast<std::size_t>(init_size));
    rng.fill_below(valid_rows, n);
    std::unique_ptr<Dataset> valid = backend.upload(backend.gather(data, valid_rows).view());
    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < params.n_init; ++r) {
      if (progress) progress({"init", r, 0, 0});
      const std::vector<std::int64_t> init_rows = rng.choose(n, init_size);
      std::unique_ptr<Dataset> sample = backend.upload(backend.gather(data, init_rows).view());
      Matrix<float> candidate = init_centroids(backend, *sample, k, params.init, rng.split());
      const double inertia = backend.assign_accumulate(*valid, candidate.view()).inertia;
      result.run_inertia.push_back(inertia);
      if (inertia < best) {
        best = inertia;
        centres = std::move(candidate);
        result.best_run = r;
      }
    }
  }
  result.init_seconds = seconds_since(t0);

  // Batches of `batch_size` rows drawn with replacement, max_iter passes over the data.
  const auto t1 = Clock::now();
  const std::int64_t n_steps = std::max<std::int64_t>(1, params.max_iter * n / params.batch_size);
  EarlyStop early(params, n, tol_abs);
  std::vector<std::int64_t> batch(static_cast<std::size_t>(params.batch_size));
  std::int64_t since_reassign = 0;
  std::int64_t step = 0;
  if (from) {
    step = from->step;
    since_reassign = from->since_reassign;
    early.restore(*from);
  }
  for (; step < n_steps; ++step) {
    detail::checkpoint_boundary(checkpointing, step, [&] {
      FitState s;
      s.algorithm = "minibatch";
      s.phase = "steps";
      s.rng = rng.state();
      s.step = step;
      s.centres = centres;
      s.counts = counts;
      s.run_inertia = result.run_inertia;
      s.best_run = result.best_run;
      s.since_reassign = since_reassign;
      early.save(s);
      return s;
    });
    rng.fill_below(batch, n);
    const Matrix<float> before = tol_abs > 0 ? centres : Matrix<float>{};
    const double batch_inertia = backend.minibatch_step(data, batch, centres.view(), counts);
    since_reassign += params.batch_size;
    const bool any_empty = std::any_of(counts.begin(), counts.end(), [](double c) { return c == 0; });
    if (params.reassignment_ratio > 0 && (any_empty || since_reassign >= 10LL * k)) {
      since_reassign = 0;
      reassign_starved(backend, data, batch, params, centres, counts, rng);
    }
    double shift = 0.0;
    if (tol_abs > 0)
      for (std::int64_t i = 0; i < centres.size(); ++i) {
        const double diff = static_cast<double>(centres.data()[i]) - before.data()[i];
        shift += diff * diff;
      }
    if (progress && step % 64 == 0) progress({"minibatch", 0, step + 1, n_steps, batch_inertia});
    if (early.stop(step, batch_inertia, shift)) {
      result.converged = true;
      ++step;
      break;
    }
  }
  result.n_iter = static_cast<int>(std::min<std::int64_t>(step, std::numeric_limits<int>::max()));
  result.iter_seconds = seconds_since(t1);

  const AccumulateResult final_pass = backend.assign_accumulate(data, centres.view());
  result.inertia = final_pass.inertia;
  result.centroids = std::move(centres);
  result.counts = std::move(counts);
  return result;
}

}  // namespace segforge
