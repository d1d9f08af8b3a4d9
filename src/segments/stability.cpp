// Stability of a segmentation under resampling and reseeding: adjusted Rand index between runs
// and per-segment Jaccard agreement matched by the Hungarian method.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "segforge/agglomerative.hpp"
#include "segforge/birch.hpp"
#include "segforge/dbscan.hpp"
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
  LloydParams p = params.lloyd;
  p.n_clusters = params.n_clusters;
  const auto refit = [&](Dataset& rows, std::uint64_t seed) {
    LloydParams q = p;
    q.seed = seed;
    return Refitted{fit_lloyd(backend, rows, q).centroids, {}, params.n_clusters};
  };
  const auto label = [&](const Dataset& all, const Refitted& fit, std::span<std::int32_t> labels) {
    std::vector<float> dist(labels.size());
    backend.assign(all, fit.centres.view(), labels, dist);
  };
  return stability_of(backend, data, params, refit, label, progress);
}

StabilityResult stability_dbscan(Backend& backend, Dataset& data, const StabilityParams& params,
                                 const DbscanParams& dbscan, const ProgressFn& progress) {
  validate(dbscan, "DBSCAN stability");
  const double all_rows = static_cast<double>(data.n_samples());
  const auto refit = [&](Dataset& rows, std::uint64_t) {
    DbscanParams q = dbscan;
    q.min_samples = std::max(1.0, dbscan.min_samples * static_cast<double>(rows.n_samples()) / all_rows);
    const DbscanResult r = fit_dbscan(backend, rows, q);
    Refitted fit;
    std::vector<std::int64_t> core;
    for (std::int64_t i = 0; i < rows.n_samples(); ++i)
      if (r.core[static_cast<std::size_t>(i)]) core.push_back(i), fit.row_labels.push_back(r.labels[static_cast<std::size_t>(i)]);
    fit.centres = backend.gather(rows, core);  // the core rows
    fit.n_segments = r.n_clusters;
    return fit;
  };
  const auto label = [&](const Dataset& all, const Refitted& fit, std::span<std::int32_t> labels) {
    std::fill(labels.begin(), labels.end(), -1);
    if (fit.n_segments == 0) return;
    const auto core = backend.upload(fit.centres.view());
    const DbscanAssignment a = predict_dbscan(backend, all, *core, fit.row_labels, dbscan.eps);
    std::copy(a.labels.begin(), a.labels.end(), labels.begin());
  };
  return stability_of(backend, data, params, refit, label, progress);
}

StabilityResult stability_agglomerative(Backend& backend, Dataset& data, const StabilityParams& params,
                                        const AgglomerativeParams& agglomerative, const ProgressFn& progress) {
  const auto refit = [&](Dataset& rows, std::uint64_t seed) {
    AgglomerativeParams q = agglomerative;
    q.seed = seed;
    validate(q, rows.n_samples(), "agglomerative stability");
    AgglomerativeResult r = fit_agglomerative(backend, rows, q);
    Refitted fit;
    if (r.two_stage) {
      fit.centres = std::move(r.micro_centres);
    } else {
      std::vector<std::int64_t> all(static_cast<std::size_t>(rows.n_samples()));
      std::iota(all.begin(), all.end(), std::int64_t{0});
      fit.centres = backend.gather(rows, all);  // the leaves: the rows themselves
    }
    fit.row_labels = std::move(r.leaf_labels);
    fit.n_segments = r.n_clusters;
    return fit;
  };
  const auto label = [&](const Dataset& all, const Refitted& fit, std::span<std::int32_t> labels) {
    std::vector<float> distance(labels.size());
    std::vector<std::int32_t> leaf(labels.size());
    backend.assign(all, fit.centres.view(), leaf, distance);  // the nearest leaf's segment, as predict
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = fit.row_labels[static_cast<std::size_t>(leaf[i])];
  };
  return stability_of(backend, data, params, refit, label, progress);
}

StabilityResult stability_birch(Backend& backend, Dataset& data, const StabilityParams& params, const BirchParams& birch,
                                const ProgressFn& progress) {
  const auto refit = [&](Dataset& rows, std::uint64_t seed) {
    BirchParams q = birch;
    q.seed = seed;
    const BirchResult r = fit_birch(backend, rows, q);
    Refitted fit;
    const Matrix<double> centres = birch_subcluster_centroids(r.state);
    fit.centres = Matrix<float>(centres.rows(), centres.cols());
    for (std::int64_t i = 0; i < centres.size(); ++i) fit.centres.data()[i] = static_cast<float>(centres.data()[i]);
    fit.row_labels = r.segments.subcluster_labels;
    fit.n_segments = r.segments.n_clusters;
    return fit;
  };
  const auto label = [&](const Dataset& all, const Refitted& fit, std::span<std::int32_t> labels) {
    std::vector<float> distance(labels.size());
    std::vector<std::int32_t> leaf(labels.size());
    backend.assign(all, fit.centres.view(), leaf, distance);  // the nearest subcluster's segment, as predict
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = fit.row_labels[static_cast<std::size_t>(leaf[i])];
  };
  return stability_of(backend, data, params, refit, label, progress);
}

StabilityResult stability_of(Backend& backend, Dataset& data, const StabilityParams& params, const RefitFn& refit,
                             const LabelFn& label, const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t n = data.n_samples();
  StabilityResult out;
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
  // A labeling of the evaluation rows: segments [0, k), and k for rows in none (-1).
  struct Labeling {
    std::vector<std::int32_t> labels;
    int k = 0;
  };
  std::vector<std::int32_t> all_labels(static_cast<std::size_t>(n));
  auto label_eval_rows = [&](const Refitted& fit) {
    label(data, fit, all_labels);
    Labeling l;
    l.k = fit.n_segments;
    l.labels.reserve(eval.size());
    for (std::int64_t i : eval) {
      const std::int32_t v = all_labels[static_cast<std::size_t>(i)];
      SEGFORGE_ASSERT(v >= -1 && v < l.k, "stability: a label outside the refit's segments");
      l.labels.push_back(v < 0 ? l.k : v);
    }
    return l;
  };

  const Labeling reference = label_eval_rows(refit(data, params.lloyd.seed));
  const int k = reference.k;
  if (k == 0)
    throw InputError("stability: the fit on all rows found no segment (every row is an outlier); change the "
                     "method's parameters (DBSCAN: raise --eps or lower --min-samples)");
  out.n_clusters = k;
  out.reference_sizes.assign(static_cast<std::size_t>(k), 0);
  for (auto l : reference.labels)
    if (l < k) ++out.reference_sizes[l];
    else ++out.reference_unassigned;

  const auto m = std::max<std::int64_t>(std::max(params.n_clusters, 1),
                                        std::llround(params.sample_fraction * static_cast<double>(n)));
  std::vector<Labeling> runs;
  for (int r = 0; r < params.runs; ++r) {
    const std::uint64_t seed = rng.split();
    std::vector<std::int64_t> rows = rng.choose(n, m);
    std::sort(rows.begin(), rows.end());
    const auto sample = backend.upload(backend.gather(data, rows).view());
    runs.push_back(label_eval_rows(refit(*sample, seed)));
    out.run_segments.push_back(runs.back().k);
    if (progress) progress({"stability", 0, r + 1, params.runs});
  }

  // ARI between every pair of runs, and of each run against the full-data fit; rows in no
  // segment are one more class of each labeling (empty for K-Means, where it changes nothing).
  double sum = 0.0;
  out.ari_min = std::numeric_limits<double>::infinity();
  int pairs = 0;
  for (int a = 0; a < params.runs; ++a)
    for (int b = a + 1; b < params.runs; ++b) {
      const double ari = adjusted_rand_index(runs[a].labels, runs[a].k + 1, runs[b].labels, runs[b].k + 1);
      sum += ari;
      out.ari_min = std::min(out.ari_min, ari);
      ++pairs;
    }
  out.ari_mean = sum / pairs;
  double ref_sum = 0.0;
  for (const auto& run : runs) ref_sum += adjusted_rand_index(run.labels, run.k + 1, reference.labels, k + 1);
  out.ari_reference_mean = ref_sum / params.runs;

  // Per reference segment: the Jaccard index of the run's segment matched to it by the
  // Hungarian method on the square table padded with zeros (a run with fewer segments leaves
  // some reference segments unmatched: Jaccard 0, dissolved; rows in no segment belong to none).
  out.jaccard_mean.assign(static_cast<std::size_t>(k), 0.0);
  out.jaccard_min.assign(static_cast<std::size_t>(k), std::numeric_limits<double>::infinity());
  for (const auto& run : runs) {
    const int kr = run.k, side = std::max(kr, k);
    const std::vector<double> t = contingency(run.labels, kr + 1, reference.labels, k + 1);
    auto cell = [&](int i, int j) { return t[static_cast<std::size_t>(i) * (k + 1) + j]; };
    std::vector<double> size_run(static_cast<std::size_t>(kr), 0.0), size_ref(static_cast<std::size_t>(k), 0.0);
    for (int i = 0; i <= kr; ++i)
      for (int j = 0; j <= k; ++j) {
        if (i < kr) size_run[i] += cell(i, j);
        if (j < k) size_ref[j] += cell(i, j);
      }
    std::vector<double> jaccard(static_cast<std::size_t>(side) * side, 0.0);
    for (int i = 0; i < kr; ++i)
      for (int j = 0; j < k; ++j) {
        const double uni = size_run[i] + size_ref[j] - cell(i, j);
        jaccard[static_cast<std::size_t>(i) * side + j] = uni > 0 ? cell(i, j) / uni : 0.0;
      }
    const std::vector<int> match = hungarian_maximise(jaccard, side);
    for (int i = 0; i < side; ++i) {
      const int j = match[i];
      if (j >= k) continue;
      const double v = jaccard[static_cast<std::size_t>(i) * side + j];
      out.jaccard_mean[j] += v / params.runs;
      out.jaccard_min[j] = std::min(out.jaccard_min[j], v);
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
