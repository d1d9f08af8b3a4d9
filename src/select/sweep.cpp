// The K sweep: one upload of the data, one fit per K, the scores each criterion needs, and a
// vote for the recommended K.

#include <algorithm>
#include <optional>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "internal.hpp"
#include "segforge/error.hpp"
#include "segforge/metrics.hpp"
#include "segforge/rng.hpp"
#include "segforge/agglomerative.hpp"
#include "segforge/select.hpp"
#include "segforge/validate.hpp"

namespace segforge {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool wants(const SweepParams& p, Criterion c) {
  return std::find(p.criteria.begin(), p.criteria.end(), c) != p.criteria.end();
}

std::string join(const std::vector<std::string>& parts, const std::string& last_sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += (i + 1 == parts.size()) ? last_sep : ", ";
    out += parts[i];
  }
  return out;
}

/// Score differences below this share of the best value do not tell two K apart: K-Means with
/// a few restarts lands in local optima whose inertia differs by about this much (measured:
/// within 0.9% of scikit-learn's 10 restarts over K = 2..12 on five real datasets), so the
/// criteria prefer the smaller K (parsimony, as the gap statistic's one-standard-error rule).
constexpr double kScoreTolerance = 0.01;

/// A ratio criterion's choice: the smallest K whose value is within kScoreTolerance of the
/// best. No answer when fewer than two K have a value (nothing to compare), or when the choice
/// is the top of the range (the score is still improving there: the optimum may lie beyond).
struct BestK {
  std::optional<int> k;
  std::string note;
};
template <class Get>
BestK best_k(const std::vector<SweepRecord>& records, Get get, bool larger_is_better, const char* what) {
  std::optional<double> best;
  int n_values = 0;
  for (const auto& r : records) {
    const std::optional<double> v = get(r);
    if (!v || !std::isfinite(*v)) continue;
    ++n_values;
    if (!best || (larger_is_better ? *v > *best : *v < *best)) best = *v;
  }
  if (n_values < 2) return {std::nullopt, "needs at least two values of K >= 2 to compare; sweep a range such as --k 2:10"};
  const double slack = kScoreTolerance * std::abs(*best);
  std::optional<int> k;
  for (const auto& r : records) {
    const std::optional<double> v = get(r);
    if (!v || !std::isfinite(*v)) continue;
    if (larger_is_better ? *v >= *best - slack : *v <= *best + slack) {
      k = r.k;
      break;
    }
  }
  if (k && *k == records.back().k)
    return {std::nullopt, "still improving at K=" + std::to_string(*k) + ", the top of the range; widen the range (--k)"};
  return {k, std::string(what) + " (smallest K within 1% of the best)"};
}

}  // namespace

std::string criterion_name(Criterion c) {
  switch (c) {
    case Criterion::elbow: return "elbow";
    case Criterion::silhouette: return "silhouette";
    case Criterion::gap: return "gap";
    case Criterion::davies_bouldin: return "davies_bouldin";
    case Criterion::calinski_harabasz: return "calinski_harabasz";
  }
  return "?";
}

std::int64_t default_min_segment_size(std::int64_t n_samples) {
  // 1% of the rows, at least 20 (a centre estimated from fewer rows is mostly noise) and at
  // most 1,000 (the rule of thumb for large bases: a segment worth its own campaign).
  const std::int64_t share = (n_samples + 99) / 100;
  return std::clamp<std::int64_t>(share, 20, 1000);
}

void validate_sweep(const SweepParams& p, std::int64_t n_samples, std::int64_t n_features,
                    const std::string& where) {
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) throw InputError(where + ": " + what);
  };
  expect(p.k_min >= 1, "--k " + std::to_string(p.k_min) + ":" + std::to_string(p.k_max) +
                           ": the smallest K should be >= 1");
  expect(p.k_max >= p.k_min, "--k " + std::to_string(p.k_min) + ":" + std::to_string(p.k_max) +
                                 ": the range is empty; write it as LOW:HIGH with LOW <= HIGH");
  expect(!p.criteria.empty(), "no criteria; pass --criteria elbow,silhouette,gap,db,ch");
  expect(!wants(p, Criterion::gap) || p.gap_references >= 1,
         "gap_references=" + std::to_string(p.gap_references) + " should be >= 1");
  expect(p.gap_reference_rows >= 0, "gap reference rows should be >= 0");
  expect(p.silhouette_sample == 0 || p.silhouette_sample >= 2,
         "silhouette sample size " + std::to_string(p.silhouette_sample) + " should be >= 2");
  expect(p.kneedle_sensitivity >= 0 && std::isfinite(p.kneedle_sensitivity),
         "Kneedle sensitivity should be a finite number >= 0");
  expect(p.min_segment_size >= 0, "minimum segment size should be >= 0");
  LloydParams lloyd = p.lloyd;
  lloyd.n_clusters = p.k_max;
  validate(lloyd, n_samples, n_features, where);  // K_max <= N, n_init, tol, ...
}

namespace {

/// An agglomerative tree and its rows' leaves: every K is one cut of it.
struct TreeOfRows {
  AgglomerativeResult fit;
  std::int64_t n = 0;
};

TreeOfRows tree_of(Backend& backend, Dataset& rows, const AgglomerativeParams& params) {
  AgglomerativeParams p = params;
  p.n_clusters = 1;
  p.distance_threshold.reset();
  validate(p, rows.n_samples(), "sweep");
  return {fit_agglomerative(backend, rows, p), rows.n_samples()};
}

/// The rows' segments at K: the tree cut into K clusters (each row by its leaf).
std::vector<std::int32_t> cut_rows(const TreeOfRows& t, int k) {
  const TreeCut cut = cut_by_count(t.fit.tree, k);
  if (!t.fit.two_stage) return cut.labels;
  std::vector<std::int32_t> rows(static_cast<std::size_t>(t.n));
  for (std::int64_t i = 0; i < t.n; ++i)
    rows[static_cast<std::size_t>(i)] = cut.labels[static_cast<std::size_t>(t.fit.micro_labels[static_cast<std::size_t>(i)])];
  return rows;
}

/// The within-cluster sum of squares of a labelling around its own means.
double within_ss(Backend& backend, const Dataset& rows, std::span<const std::int32_t> labels, int k) {
  const std::int64_t d = rows.n_features();
  const LabelStats sums = backend.label_stats(rows, labels, k, MatrixView<const float>{});
  Matrix<float> means(k, d, 0.0f);
  for (int c = 0; c < k; ++c)
    if (sums.counts[static_cast<std::size_t>(c)] > 0)
      for (std::int64_t j = 0; j < d; ++j)
        means(c, j) = static_cast<float>(sums.sums[static_cast<std::size_t>(c * d + j)] / sums.counts[static_cast<std::size_t>(c)]);
  const LabelStats spread = backend.label_stats(rows, labels, k, means.view());
  double w = 0.0;
  for (double v : spread.sq_dist_sums) w += v;
  return w;
}

}  // namespace

SweepResult sweep(Backend& backend, Dataset& data, const SweepParams& params,
                  const ProgressFn& progress) {
  const auto t_start = Clock::now();
  const std::int64_t n = data.n_samples();
  SweepResult result;
  result.n_samples = n;
  result.n_features = data.n_features();
  result.min_segment_size =
      params.min_segment_size > 0 ? params.min_segment_size : default_min_segment_size(n);
  const bool sampled_silhouette = params.silhouette_sample > 0 && params.silhouette_sample < n;
  result.silhouette_method =
      !wants(params, Criterion::silhouette) ? "none" : sampled_silhouette ? "sample" : "exact";

  std::vector<int> ks;
  for (int k = params.k_min; k <= params.k_max; ++k) ks.push_back(k);
  const auto nk = ks.size();

  // The gap statistic's reference sets: drawn once, uploaded once, reused for every K.
  Rng rng(params.seed);
  std::vector<std::unique_ptr<Dataset>> refs;
  const bool gap = wants(params, Criterion::gap);
  LloydParams reference_lloyd = params.gap_lloyd.value_or(params.lloyd);
  if (!params.gap_lloyd) reference_lloyd.refine = Refine::none;
  if (gap) {
    const std::int64_t rows = params.gap_reference_rows > 0
                                  ? std::min(params.gap_reference_rows, n)
                                  : std::min<std::int64_t>(n, 10000);
    const PcaBox box = pca_box(backend, data);
    const std::int64_t d = data.n_features();
    Matrix<double> uniform(rows, d);
    for (int b = 0; b < params.gap_references; ++b) {
      for (auto& u : uniform.values()) u = rng.uniform();
      refs.push_back(backend.upload(gap_reference_set(box, uniform.view()).view()));
    }
    result.gap_references = params.gap_references;
    result.gap_reference_rows = rows;
  }
  std::vector<double> log_w(nk, 0.0), log_w_ref(nk * refs.size(), 0.0);
  // Agglomerative: one tree of the data and one of each reference set; every K is a cut.
  std::optional<TreeOfRows> tree;
  std::vector<TreeOfRows> ref_trees;
  if (params.agglomerative) {
    tree = tree_of(backend, data, *params.agglomerative);
    for (const auto& ref : refs) ref_trees.push_back(tree_of(backend, *ref, *params.agglomerative));
  }

  // Exact silhouettes wait for every K's labels: one pass over the pairs of rows serves them all.
  struct PendingSilhouette {
    std::size_t record;
    std::vector<std::int32_t> labels;
  };
  std::vector<PendingSilhouette> exact_pending;

  for (std::size_t i = 0; i < nk; ++i) {
    const auto t0 = Clock::now();
    const int k = ks[i];
    KMeansResult fit;
    Assignment assignment;
    if (tree) {
      assignment.labels = cut_rows(*tree, k);
      fit.inertia = within_ss(backend, data, assignment.labels, k);
      fit.converged = true;
    } else {
      LloydParams p = params.lloyd;
      p.n_clusters = k;
      fit = fit_lloyd(backend, data, p);
      assignment = predict(backend, data, fit.centroids.view());
    }

    SweepRecord r;
    r.k = k;
    r.inertia = fit.inertia;
    r.n_iter = fit.n_iter;
    r.converged = fit.converged;
    r.sizes.assign(static_cast<std::size_t>(k), 0);
    for (auto l : assignment.labels) ++r.sizes[static_cast<std::size_t>(l)];
    r.smallest_segment = *std::min_element(r.sizes.begin(), r.sizes.end());
    r.over_segmented = k > 1 && r.smallest_segment < result.min_segment_size;

    const auto distinct = std::count_if(r.sizes.begin(), r.sizes.end(), [](auto s) { return s > 0; });
    if (distinct >= 2 && distinct <= n - 1) {
      if (wants(params, Criterion::davies_bouldin))
        r.davies_bouldin = davies_bouldin(backend, data, assignment.labels, k);
      if (wants(params, Criterion::calinski_harabasz))
        r.calinski_harabasz = calinski_harabasz(backend, data, assignment.labels, k);
      if (wants(params, Criterion::silhouette) && sampled_silhouette) {
        const std::uint64_t seed = mix64(params.seed ^ static_cast<std::uint64_t>(k));
        const SilhouetteResult s =
            silhouette_sampled(backend, data, assignment.labels, k, params.silhouette_sample, seed);
        r.silhouette = s.score;
        r.silhouette_standard_error = s.standard_error;
      } else if (wants(params, Criterion::silhouette)) {
        exact_pending.push_back({i, std::move(assignment.labels)});  // all K at once, below
      }
    }
    r.seconds = seconds_since(t0);
    if (gap) {
      log_w[i] = select_detail::log_w(fit.inertia);
      std::vector<double> ref;
      if (tree) {
        for (std::size_t b = 0; b < refs.size(); ++b) {
          const std::vector<std::int32_t> cut = cut_rows(ref_trees[b], k);
          ref.push_back(select_detail::log_w(within_ss(backend, *refs[b], cut, k)) +
                        std::log(static_cast<double>(n) / static_cast<double>(refs[b]->n_samples())));
        }
      } else {
        ref = select_detail::reference_log_w(backend, refs, k, reference_lloyd, n);
      }
      for (std::size_t b = 0; b < refs.size(); ++b) log_w_ref[b * nk + i] = ref[b];
    }
    result.records.push_back(std::move(r));
    if (progress) progress({"sweep", 0, static_cast<std::int64_t>(i + 1), static_cast<std::int64_t>(nk), fit.inertia});
  }

  if (!exact_pending.empty()) {
    const auto t0 = Clock::now();
    std::vector<std::span<const std::int32_t>> labellings;
    std::vector<int> n_clusters;
    for (const auto& p : exact_pending) {
      labellings.emplace_back(p.labels);
      n_clusters.push_back(ks[p.record]);
    }
    const std::vector<SilhouetteResult> s = silhouette_exact_many(backend, data, labellings, n_clusters);
    // The shared pass's time, in equal shares.
    const double share = seconds_since(t0) / static_cast<double>(exact_pending.size());
    for (std::size_t j = 0; j < exact_pending.size(); ++j) {
      SweepRecord& r = result.records[exact_pending[j].record];
      r.silhouette = s[j].score;
      r.seconds += share;
    }
  }

  if (gap) {
    const GapResult g = gap_from_log_w(ks, log_w, log_w_ref, static_cast<int>(refs.size()));
    for (std::size_t i = 0; i < nk; ++i) {
      result.records[i].gap = g.gap[i];
      result.records[i].gap_s = g.s[i];
      result.records[i].log_w = g.log_w[i];
      result.records[i].log_w_ref_mean = g.log_w_ref_mean[i];
    }
  }
  recommend(result, params);
  result.seconds = seconds_since(t_start);
  return result;
}

void recommend(SweepResult& result, const SweepParams& params) {
  auto& records = result.records;
  result.choices.clear();
  result.warnings.clear();
  for (Criterion c : kAllCriteria) {
    if (!wants(params, c)) continue;
    CriterionChoice choice{c, std::nullopt, ""};
    switch (c) {
      case Criterion::elbow: {
        std::vector<double> x, y;
        for (const auto& r : records) {
          x.push_back(r.k);
          y.push_back(r.inertia);
        }
        const KneedleResult kn = kneedle(x, y, params.kneedle_sensitivity);
        for (std::size_t i = 0; i < kn.difference.size(); ++i) records[i].kneedle_difference = kn.difference[i];
        if (kn.knee_index) {
          choice.k = records[*kn.knee_index].k;
          choice.note = "Kneedle knee of the inertia curve";
        } else {
          choice.note = records.size() < 3 ? "needs at least 3 values of K"
                                           : "no knee in the inertia curve over this range";
        }
        break;
      }
      case Criterion::silhouette: {
        BestK b = best_k(records, [](const SweepRecord& r) { return r.silhouette; }, true, "highest mean silhouette");
        choice.k = b.k;
        choice.note = std::move(b.note);
        break;
      }
      case Criterion::davies_bouldin: {
        BestK b = best_k(records, [](const SweepRecord& r) { return r.davies_bouldin; }, false, "lowest Davies-Bouldin index");
        choice.k = b.k;
        choice.note = std::move(b.note);
        break;
      }
      case Criterion::calinski_harabasz: {
        BestK b = best_k(records, [](const SweepRecord& r) { return r.calinski_harabasz; }, true, "highest Calinski-Harabasz index");
        choice.k = b.k;
        choice.note = std::move(b.note);
        break;
      }
      case Criterion::gap: {
        // Tibshirani et al. §4: the smallest K with Gap(K) >= Gap(K+1) - s_{K+1}.
        for (std::size_t i = 0; i + 1 < records.size(); ++i) {
          const auto &a = records[i], &b = records[i + 1];
          if (a.gap && b.gap && b.gap_s && *a.gap >= *b.gap - *b.gap_s) {
            choice.k = a.k;
            break;
          }
        }
        choice.note = choice.k ? "smallest K with Gap(K) >= Gap(K+1) - s(K+1)"
                               : "Gap(K) < Gap(K+1) - s(K+1) everywhere in range; try a larger K";
        break;
      }
    }
    result.choices.push_back(std::move(choice));
  }

  // The vote: the K most criteria chose; ties go to the K of the criterion listed first in
  // kAllCriteria (the choices are in that order). A K with a segment under the minimum size is
  // one nobody can act on: it never gets a vote, so the recommendation never breaks that rule.
  // When every chosen K is like that, or only one K was fitted, nothing is recommended.
  auto record_of = [&](int k) -> const SweepRecord* {
    for (const auto& r : records)
      if (r.k == k) return &r;
    return nullptr;
  };
  auto over_segmented = [&](int k) {
    const SweepRecord* r = record_of(k);
    return r != nullptr && r->over_segmented;
  };
  std::map<int, std::vector<std::string>> votes;
  std::map<int, std::size_t> first_vote;
  std::vector<int> skipped;
  for (std::size_t i = 0; i < result.choices.size(); ++i) {
    const auto& c = result.choices[i];
    if (!c.k) continue;
    if (over_segmented(*c.k)) {
      if (std::find(skipped.begin(), skipped.end(), *c.k) == skipped.end()) skipped.push_back(*c.k);
      continue;
    }
    votes[*c.k].push_back(criterion_name(c.criterion));
    first_vote.emplace(*c.k, i);
  }
  std::sort(skipped.begin(), skipped.end());
  std::ostringstream too_small;
  for (int k : skipped)
    too_small << "; K=" << k << " not considered: its smallest segment has " << record_of(k)->smallest_segment
              << " rows, below the minimum segment size " << result.min_segment_size;
  result.recommended_k = 0;
  if (records.size() >= 2) {
    for (const auto& [k, who] : votes) {
      if (result.recommended_k == 0 || who.size() > votes[result.recommended_k].size() ||
          (who.size() == votes[result.recommended_k].size() && first_vote[k] < first_vote[result.recommended_k]))
        result.recommended_k = k;
    }
  }
  const std::string range = std::to_string(params.k_min) + ".." + std::to_string(params.k_max);
  if (records.size() < 2) {
    result.reason = "a single K (" + std::to_string(records.empty() ? params.k_min : records.front().k) +
                    ") cannot be compared with anything; sweep a range such as --k 2:10";
  } else if (result.recommended_k == 0 && !skipped.empty()) {
    result.reason = "no K passes the minimum segment size " + std::to_string(result.min_segment_size) +
                    " (--min-segment-size): every K the criteria chose has a smaller segment" + too_small.str() +
                    "; pass a lower --min-segment-size if segments that small are worth acting on";
    result.warnings.push_back("no recommendation: every K the criteria chose in K = " + range +
                              " has a segment below the minimum segment size " +
                              std::to_string(result.min_segment_size));
  } else if (result.recommended_k == 0) {
    result.reason = "no criterion gave an answer in K = " + range + "; widen the range";
  } else {
    const auto& who = votes[result.recommended_k];
    std::ostringstream s;
    s << "K=" << result.recommended_k << ": chosen by " << join(who, " and ") << " (" << who.size()
      << " of " << result.choices.size() << " criteria)";
    std::vector<std::string> others;
    for (const auto& c : result.choices) {
      if (c.k && *c.k == result.recommended_k) continue;
      others.push_back(criterion_name(c.criterion) + (c.k ? " says " + std::to_string(*c.k) : " gave no answer (" + c.note + ")"));
    }
    if (!others.empty()) s << "; " << join(others, "; ");
    s << too_small.str();
    result.reason = s.str();
  }

  if (result.n_samples < 500)
    result.warnings.push_back("only " + std::to_string(result.n_samples) +
                              " rows (< 500): segment estimates are noisy; collect more data before acting on them");
}

}  // namespace segforge
