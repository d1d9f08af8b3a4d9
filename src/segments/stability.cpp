// Stability of a segmentation under resampling and reseeding: adjusted Rand index between runs
// and per-segment Jaccard agreement matched by the Hungarian method.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "segforge/error.hpp"
#include "segforge/rng.hpp"
#include "segforge/segments.hpp"
#include "segforge/validate.hpp"

namespace segforge {

namespace {

/// Contingency table [ka x kb] of two labelings.
std::vector<double> contingency(std::span<const std::int32_t> a, int ka, std::span<const std::int32_t> b, int kb) {
  std::vector<double> t(static_cast<std::size_t>(ka) * kb, 0.0);
  for (std::size_t i = 0; i < a.size(); ++i) t[static_cast<std::size_t>(a[i]) * kb + b[i]] += 1.0;
  return t;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

/// Hennig's classes, lowest first (see segment_stability_verdict).
constexpr const char* kClasses[] = {"dissolved", "unstable", "doubtful", "stable", "highly stable"};
constexpr int kStableClass = 3;

int hennig_class(double jaccard, double stable_threshold) {
  if (jaccard <= 0.5) return 0;
  if (jaccard < stable_threshold) return jaccard < 0.6 ? 1 : 2;
  return jaccard >= std::max(0.85, stable_threshold) ? 4 : 3;
}

int segment_class(double mean, double worst, double stable_threshold) {
  return std::min(hennig_class(mean, stable_threshold), hennig_class(worst, stable_threshold));
}

}  // namespace

std::string segment_stability_verdict(double jaccard_mean, double jaccard_worst, double stable_threshold) {
  return kClasses[segment_class(jaccard_mean, jaccard_worst, stable_threshold)];
}

double adjusted_rand_index(std::span<const std::int32_t> a, int ka, std::span<const std::int32_t> b, int kb) {
  SEGFORGE_ASSERT(a.size() == b.size(), "adjusted_rand_index: labelings differ in length");
  const std::vector<double> t = contingency(a, ka, b, kb);
  std::vector<double> ra(static_cast<std::size_t>(ka), 0.0), rb(static_cast<std::size_t>(kb), 0.0);
  for (int i = 0; i < ka; ++i)
    for (int j = 0; j < kb; ++j) {
      ra[i] += t[static_cast<std::size_t>(i) * kb + j];
      rb[j] += t[static_cast<std::size_t>(i) * kb + j];
    }
  // Hubert & Arabie 1985: (Σ C(n_ij,2) − E) / (½(Σ C(a_i,2) + Σ C(b_j,2)) − E),
  // E = Σ C(a_i,2)·Σ C(b_j,2) / C(n,2).
  auto pairs = [](double m) { return m * (m - 1.0) / 2.0; };
  double sum_ij = 0.0, sum_a = 0.0, sum_b = 0.0;
  for (double v : t) sum_ij += pairs(v);
  for (double v : ra) sum_a += pairs(v);
  for (double v : rb) sum_b += pairs(v);
  const double n = static_cast<double>(a.size());
  const double expected = n > 1 ? sum_a * sum_b / pairs(n) : 0.0;
  const double max_index = 0.5 * (sum_a + sum_b);
  if (max_index == expected) return 1.0;  // both partitions trivial
  return (sum_ij - expected) / (max_index - expected);
}

std::vector<int> hungarian_maximise(std::span<const double> weight, int n) {
  SEGFORGE_ASSERT(static_cast<std::int64_t>(weight.size()) == static_cast<std::int64_t>(n) * n,
                  "hungarian: the matrix must be n x n");
  if (n == 0) return {};
  // Minimise cost = max − weight with the shortest-augmenting-path Hungarian method (potentials
  // u, v; p[j] the row matched to column j; 1-based with a virtual column 0).
  const double top = *std::max_element(weight.begin(), weight.end());
  auto cost = [&](int i, int j) { return top - weight[static_cast<std::size_t>(i - 1) * n + (j - 1)]; };
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0.0), v(n + 1, 0.0);
  std::vector<int> p(n + 1, 0), way(n + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<char> used(n + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = cost(i0, j) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {  // augment along the alternating path
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int> column_of(n, -1);
  for (int j = 1; j <= n; ++j) column_of[p[j] - 1] = j - 1;
  return column_of;
}

void validate_stability(const StabilityParams& params, std::int64_t n_samples, std::int64_t n_features,
                        const std::string& where) {
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) throw InputError(where + ": " + what);
  };
  expect(params.runs >= 2, "runs=" + std::to_string(params.runs) + " should be >= 2 (pairs of runs are compared)");
  expect(params.sample_fraction > 0 && params.sample_fraction <= 1,
         "sample fraction " + fixed(params.sample_fraction, 3) + " should be in (0, 1]");
  expect(params.max_eval_rows >= 2, "evaluation rows should be >= 2");
  LloydParams p = params.lloyd;
  p.n_clusters = params.n_clusters;
  validate(p, n_samples, n_features, where);
  const auto sub = static_cast<std::int64_t>(std::llround(params.sample_fraction * static_cast<double>(n_samples)));
  expect(sub >= params.n_clusters, "a sample fraction of " + fixed(params.sample_fraction, 3) + " keeps " +
                                       std::to_string(sub) + " rows, fewer than K=" +
                                       std::to_string(params.n_clusters) + "; raise --sample-fraction");
}

StabilityResult stability(Backend& backend, Dataset& data, const StabilityParams& params,
                          const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t n = data.n_samples();
  const int k = params.n_clusters;
  StabilityResult out;
  out.n_clusters = k;
  out.runs = params.runs;
  out.sample_fraction = params.sample_fraction;
  out.n_samples = n;
  out.ari_threshold = params.ari_threshold;
  out.jaccard_threshold = params.jaccard_threshold;

  Rng rng(params.seed);
  // The rows every labeling is compared on: all, or a fixed sample.
  std::vector<std::int64_t> eval;
  if (n <= params.max_eval_rows) {
    eval.resize(static_cast<std::size_t>(n));
    std::iota(eval.begin(), eval.end(), 0);
  } else {
    eval = rng.choose(n, params.max_eval_rows);
    std::sort(eval.begin(), eval.end());
  }
  out.eval_rows = static_cast<std::int64_t>(eval.size());
  std::vector<std::int32_t> all_labels(static_cast<std::size_t>(n));
  std::vector<float> all_dist(static_cast<std::size_t>(n));
  auto label_eval_rows = [&](const Matrix<float>& centroids) {
    backend.assign(data, centroids.view(), all_labels, all_dist);
    std::vector<std::int32_t> labels;
    labels.reserve(eval.size());
    for (std::int64_t i : eval) labels.push_back(all_labels[i]);
    return labels;
  };

  LloydParams p = params.lloyd;
  p.n_clusters = k;
  const std::vector<std::int32_t> reference = label_eval_rows(fit_lloyd(backend, data, p).centroids);
  out.reference_sizes.assign(static_cast<std::size_t>(k), 0);
  for (auto l : reference) ++out.reference_sizes[l];

  const auto m = std::max<std::int64_t>(k, std::llround(params.sample_fraction * static_cast<double>(n)));
  std::vector<std::vector<std::int32_t>> runs;
  for (int r = 0; r < params.runs; ++r) {
    LloydParams q = p;
    q.seed = rng.split();
    std::vector<std::int64_t> rows = rng.choose(n, m);
    std::sort(rows.begin(), rows.end());
    const auto sample = backend.upload(backend.gather(data, rows).view());
    runs.push_back(label_eval_rows(fit_lloyd(backend, *sample, q).centroids));
    if (progress) progress({"stability", 0, r + 1, params.runs});
  }

  // ARI between every pair of runs, and of each run against the full-data fit.
  double sum = 0.0;
  out.ari_min = std::numeric_limits<double>::infinity();
  int pairs = 0;
  for (int a = 0; a < params.runs; ++a)
    for (int b = a + 1; b < params.runs; ++b) {
      const double ari = adjusted_rand_index(runs[a], k, runs[b], k);
      sum += ari;
      out.ari_min = std::min(out.ari_min, ari);
      ++pairs;
    }
  out.ari_mean = sum / pairs;
  double ref_sum = 0.0;
  for (const auto& run : runs) ref_sum += adjusted_rand_index(run, k, reference, k);
  out.ari_reference_mean = ref_sum / params.runs;

  // Per reference segment: the Jaccard index of the run's segment matched to it.
  out.jaccard_mean.assign(static_cast<std::size_t>(k), 0.0);
  out.jaccard_min.assign(static_cast<std::size_t>(k), std::numeric_limits<double>::infinity());
  for (const auto& run : runs) {
    const std::vector<double> t = contingency(run, k, reference, k);
    std::vector<double> size_run(static_cast<std::size_t>(k), 0.0), size_ref(static_cast<std::size_t>(k), 0.0);
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j) {
        size_run[i] += t[i * k + j];
        size_ref[j] += t[i * k + j];
      }
    std::vector<double> jaccard(t.size(), 0.0);
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j) {
        const double uni = size_run[i] + size_ref[j] - t[i * k + j];
        jaccard[i * k + j] = uni > 0 ? t[i * k + j] / uni : 0.0;
      }
    const std::vector<int> match = hungarian_maximise(jaccard, k);
    for (int i = 0; i < k; ++i) {
      const int j = match[i];
      out.jaccard_mean[j] += jaccard[i * k + j] / params.runs;
      out.jaccard_min[j] = std::min(out.jaccard_min[j], jaccard[i * k + j]);
    }
  }

  // Each segment by Hennig's classes on its mean and its worst run; the weakest is the one of
  // the lowest class, then the lowest worst run.
  const double t = params.jaccard_threshold;
  int weakest = 0, not_stable = 0;
  for (int j = 0; j < k; ++j) {
    const int c = segment_class(out.jaccard_mean[j], out.jaccard_min[j], t);
    out.segment_verdicts.push_back(kClasses[c]);
    not_stable += c < kStableClass;
    const int w = segment_class(out.jaccard_mean[weakest], out.jaccard_min[weakest], t);
    if (c < w || (c == w && out.jaccard_min[j] < out.jaccard_min[weakest])) weakest = j;
  }
  const bool segments_ok = not_stable == 0;
  out.stable = out.ari_mean >= params.ari_threshold && segments_ok;
  std::ostringstream s;
  s << (out.stable ? "stable" : "unstable") << ": mean ARI between runs " << fixed(out.ari_mean, 3)
    << (out.ari_mean >= params.ari_threshold ? " >= " : " < ") << fixed(params.ari_threshold, 2) << "; "
    << (segments_ok ? "every segment stable" : std::to_string(not_stable) + " of " + std::to_string(k) + " segments not stable")
    << ", weakest segment " << weakest << " " << out.segment_verdicts[weakest] << " (Jaccard mean "
    << fixed(out.jaccard_mean[weakest], 3) << ", worst run " << fixed(out.jaccard_min[weakest], 3)
    << ") (stable needs both; Hennig's thresholds on each segment's mean and worst run, the lower counts: "
    << "<= 0.50 dissolved, < 0.60 unstable, < " << fixed(t, 2) << " doubtful, >= " << fixed(t, 2) << " stable, >= "
    << fixed(std::max(0.85, t), 2) << " highly stable)";
  out.verdict = s.str();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace segforge
