// The gap statistic (Tibshirani, Walther & Hastie 2001, "Estimating the number of clusters in
// a data set via the gap statistic", JRSS B 63(2)).

#include <algorithm>
#include <cmath>

#include "internal.hpp"
#include "segforge/error.hpp"
#include "segforge/select.hpp"

namespace segforge {

namespace select_detail {

double log_w(double inertia) {
  // W_k = Σ_r D_r / (2 n_r) = the within-cluster sum of squares around the means (eq. 2).
  return std::log(std::max(inertia, std::numeric_limits<double>::min()));
}

std::vector<double> reference_log_w(Backend& backend, std::span<const std::unique_ptr<Dataset>> refs,
                                    int k, const LloydParams& reference_lloyd,
                                    std::int64_t n_data) {
  std::vector<double> out;
  out.reserve(refs.size());
  LloydParams p = reference_lloyd;
  p.n_clusters = k;
  for (const auto& ref : refs) {
    const KMeansResult fit = fit_lloyd(backend, *ref, p);
    // W grows in proportion to the row count: a smaller reference is put on the data's scale.
    out.push_back(log_w(fit.inertia) +
                  std::log(static_cast<double>(n_data) / static_cast<double>(ref->n_samples())));
  }
  return out;
}

}  // namespace select_detail

GapResult gap_from_log_w(std::span<const int> ks, std::span<const double> log_w,
                         std::span<const double> log_w_ref, int n_references) {
  const std::size_t nk = ks.size();
  SEGFORGE_ASSERT(log_w.size() == nk, "gap: one log W per k");
  SEGFORGE_ASSERT(log_w_ref.size() == nk * static_cast<std::size_t>(n_references),
                  "gap: B x n_k reference log W");
  SEGFORGE_ASSERT(n_references >= 1, "gap: at least one reference set");
  GapResult out;
  out.ks.assign(ks.begin(), ks.end());
  out.log_w.assign(log_w.begin(), log_w.end());
  const auto b_count = static_cast<double>(n_references);
  for (std::size_t i = 0; i < nk; ++i) {
    // Eq. (3): Gap(k) = (1/B) Σ_b log W*_kb − log W_k; §4: sd_k over b, s_k = sd_k √(1 + 1/B).
    double mean = 0.0;
    for (int b = 0; b < n_references; ++b) mean += log_w_ref[b * nk + i];
    mean /= b_count;
    double ss = 0.0;
    for (int b = 0; b < n_references; ++b) {
      const double diff = log_w_ref[b * nk + i] - mean;
      ss += diff * diff;
    }
    const double sd = std::sqrt(ss / b_count);
    out.log_w_ref_mean.push_back(mean);
    out.gap.push_back(mean - log_w[i]);
    out.s.push_back(sd * std::sqrt(1.0 + 1.0 / b_count));
  }
  // The rule of §4: the smallest k with Gap(k) ≥ Gap(k+1) − s_{k+1}.
  for (std::size_t i = 0; i + 1 < nk; ++i)
    if (ks[i + 1] == ks[i] + 1 && out.gap[i] >= out.gap[i + 1] - out.s[i + 1]) {
      out.chosen_k = ks[i];
      break;
    }
  return out;
}

GapResult gap_statistic(Backend& backend, Dataset& data, std::span<const Matrix<float>> references,
                        std::span<const int> ks, const LloydParams& lloyd,
                        const LloydParams& reference_lloyd, const ProgressFn& progress) {
  std::vector<std::unique_ptr<Dataset>> refs;
  for (const auto& r : references) refs.push_back(backend.upload(r.view()));
  const auto b_count = static_cast<int>(refs.size());
  std::vector<double> log_w, log_w_ref(ks.size() * refs.size());
  for (std::size_t i = 0; i < ks.size(); ++i) {
    LloydParams p = lloyd;
    p.n_clusters = ks[i];
    log_w.push_back(select_detail::log_w(fit_lloyd(backend, data, p).inertia));
    const std::vector<double> ref =
        select_detail::reference_log_w(backend, refs, ks[i], reference_lloyd, data.n_samples());
    for (int b = 0; b < b_count; ++b) log_w_ref[b * ks.size() + i] = ref[b];
    if (progress) progress({"gap", 0, static_cast<std::int64_t>(i + 1), static_cast<std::int64_t>(ks.size())});
  }
  return gap_from_log_w(ks, log_w, log_w_ref, b_count);
}

}  // namespace segforge
