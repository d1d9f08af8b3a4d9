// Segment identity across a refresh: Hungarian matching, MONIC transitions, index placement,
// and the data sufficiency guards.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "segforge/error.hpp"
#include "segforge/refresh.hpp"
#include "segforge/segments.hpp"
#include "segforge/select.hpp"

namespace segforge {

std::vector<int> hungarian_minimise(std::span<const double> cost, int n_rows, int n_cols) {
  SEGFORGE_ASSERT(static_cast<std::int64_t>(cost.size()) == static_cast<std::int64_t>(n_rows) * n_cols,
                  "hungarian_minimise: cost must be n_rows x n_cols");
  const int n = std::max(n_rows, n_cols);
  if (n == 0) return {};
  // Maximise −cost on the square matrix; the dummy rows/columns all weigh the same, so they
  // change no real pair's relative merit: the result restricted to real pairs is a minimum-cost
  // matching of min(n_rows, n_cols) pairs.
  std::vector<double> weight(static_cast<std::size_t>(n) * n, 0.0);
  for (int i = 0; i < n_rows; ++i)
    for (int j = 0; j < n_cols; ++j)
      weight[static_cast<std::size_t>(i) * n + j] = -cost[static_cast<std::size_t>(i) * n_cols + j];
  const std::vector<int> column = hungarian_maximise(weight, n);
  std::vector<int> out(static_cast<std::size_t>(n_rows), -1);
  for (int i = 0; i < n_rows; ++i)
    if (column[i] < n_cols) out[i] = column[i];
  return out;
}

Matrix<std::int64_t> overlap_counts(std::span<const std::int32_t> a, int k_a, std::span<const std::int32_t> b,
                                    int k_b) {
  SEGFORGE_ASSERT(a.size() == b.size(), "overlap_counts: labelings of different lengths");
  Matrix<std::int64_t> m(k_a, k_b, 0);
  for (std::size_t r = 0; r < a.size(); ++r)
    if (a[r] >= 0 && b[r] >= 0) ++m(a[r], b[r]);
  return m;
}

std::vector<double> squared_centroid_distances(MatrixView<const float> a, MatrixView<const float> b) {
  SEGFORGE_ASSERT(a.cols == b.cols, "squared_centroid_distances: centres of other widths");
  std::vector<double> out(static_cast<std::size_t>(a.rows * b.rows));
  for (std::int64_t i = 0; i < a.rows; ++i)
    for (std::int64_t j = 0; j < b.rows; ++j) {
      double s = 0.0;
      for (std::int64_t c = 0; c < a.cols; ++c) {
        const double diff = static_cast<double>(a.data[i * a.cols + c]) - b.data[j * b.cols + c];
        s += diff * diff;
      }
      out[static_cast<std::size_t>(i * b.rows + j)] = s;
    }
  return out;
}

std::string transition_name(Transition t) {
  switch (t) {
    case Transition::survived: return "survived";
    case Transition::split: return "split";
    case Transition::absorbed: return "absorbed";
    case Transition::dissolved: return "dissolved";
    case Transition::continued: return "continued";
    case Transition::split_from: return "split_from";
    case Transition::merged: return "merged";
    case Transition::emerged: return "emerged";
  }
  return "?";
}

SegmentMatch match_segments(std::span<const double> cost, const Matrix<std::int64_t>& overlap,
                            const TransitionParams& params) {
  const int ko = static_cast<int>(overlap.rows()), kn = static_cast<int>(overlap.cols());
  SEGFORGE_ASSERT(static_cast<std::int64_t>(cost.size()) == static_cast<std::int64_t>(ko) * kn,
                  "match_segments: cost must be k_old x k_new");
  const double tau = params.survive, tau_split = params.split_piece;
  std::vector<double> old_size(ko, 0.0), new_size(kn, 0.0);
  for (int i = 0; i < ko; ++i)
    for (int j = 0; j < kn; ++j) {
      old_size[i] += static_cast<double>(overlap(i, j));
      new_size[j] += static_cast<double>(overlap(i, j));
    }
  // o(X,Y) = |X ∩ Y| / |X| and its converse |X ∩ Y| / |Y| (0 for an empty segment).
  auto o = [&](int i, int j) { return old_size[i] > 0 ? overlap(i, j) / old_size[i] : 0.0; };
  auto inv = [&](int i, int j) { return new_size[j] > 0 ? overlap(i, j) / new_size[j] : 0.0; };

  // Step 1: the Hungarian pairs, kept where one side is mostly the other's members.
  const std::vector<int> pair = hungarian_minimise(cost, ko, kn);
  std::vector<int> match_new(ko, -1), match_old(kn, -1);
  for (int i = 0; i < ko; ++i) {
    const int j = pair[i];
    if (j >= 0 && (o(i, j) >= tau || inv(i, j) >= tau)) {
      match_new[i] = j;
      match_old[j] = i;
    }
  }
  // Step 2 (MONIC Def. 4, split): X's pieces each hold >= τ_split of X and are mostly X's
  // members, two or more of them, together >= τ of X.
  std::vector<std::vector<int>> pieces(ko);
  for (int i = 0; i < ko; ++i) {
    double covered = 0.0;
    for (int j = 0; j < kn; ++j)
      if (o(i, j) >= tau_split && inv(i, j) >= tau) {
        pieces[i].push_back(j);
        covered += o(i, j);
      }
    if (pieces[i].size() < 2 || covered < tau) pieces[i].clear();
  }
  // Step 3 (MONIC Def. 5, absorption): two or more old segments with >= τ of their members in
  // one new segment.
  std::vector<std::vector<int>> sources(kn);
  for (int j = 0; j < kn; ++j) {
    for (int i = 0; i < ko; ++i)
      if (o(i, j) >= tau) sources[j].push_back(i);
    if (sources[j].size() < 2) sources[j].clear();
  }

  SegmentMatch m;
  m.k_old = ko;
  m.k_new = kn;
  // Step 4: placement. A matched segment takes its old index where it exists; the rest fill
  // the free indices in the fit's order.
  std::vector<int> index_of(kn, -1);
  std::vector<char> taken(kn, 0);
  for (int j = 0; j < kn; ++j)
    if (match_old[j] >= 0 && match_old[j] < kn) {
      index_of[j] = match_old[j];
      taken[match_old[j]] = 1;
    }
  int next = 0;
  for (int j = 0; j < kn; ++j) {
    if (index_of[j] >= 0) continue;
    while (taken[next]) ++next;
    index_of[j] = next;
    taken[next] = 1;
  }
  m.order.assign(kn, -1);
  for (int j = 0; j < kn; ++j) m.order[index_of[j]] = j;

  m.parent.assign(kn, -1);
  m.child.assign(ko, -1);
  m.old_transition.assign(ko, Transition::dissolved);
  m.new_transition.assign(kn, Transition::emerged);
  m.old_to.assign(ko, {});
  m.new_from.assign(kn, {});
  m.overlap = Matrix<std::int64_t>(ko, kn, 0);
  for (int i = 0; i < ko; ++i)
    for (int j = 0; j < kn; ++j) m.overlap(i, index_of[j]) = overlap(i, j);
  for (int i = 0; i < ko; ++i)
    if (match_new[i] >= 0) {
      m.child[i] = index_of[match_new[i]];
      m.parent[index_of[match_new[i]]] = i;
      m.old_transition[i] = Transition::survived;
      m.new_transition[index_of[match_new[i]]] = Transition::continued;
      m.old_to[i] = {index_of[match_new[i]]};
      m.new_from[index_of[match_new[i]]] = {i};
    }
  for (int i = 0; i < ko; ++i) {
    if (pieces[i].empty()) continue;
    m.old_transition[i] = Transition::split;
    m.old_to[i].clear();
    for (int j : pieces[i]) {
      m.old_to[i].push_back(index_of[j]);
      m.new_transition[index_of[j]] = Transition::split_from;
      m.new_from[index_of[j]] = {i};
    }
    std::sort(m.old_to[i].begin(), m.old_to[i].end());
  }
  for (int j = 0; j < kn; ++j) {
    if (sources[j].empty()) continue;
    m.new_transition[index_of[j]] = Transition::merged;
    m.new_from[index_of[j]] = sources[j];
    for (int i : sources[j]) {
      m.old_transition[i] = Transition::absorbed;
      m.old_to[i] = {index_of[j]};
      // Most of X merged into Y, but X's match is another segment, mostly X's members: the
      // remnant that stayed. It keeps X's name (the members a CRM knows) and is a piece of X.
      if (match_new[i] >= 0 && match_new[i] != j) {
        const int remnant = index_of[match_new[i]];
        if (m.new_transition[remnant] == Transition::continued) m.new_transition[remnant] = Transition::split_from;
        m.old_to[i].push_back(remnant);
        std::sort(m.old_to[i].begin(), m.old_to[i].end());
      }
    }
  }
  return m;
}


std::vector<std::string> sufficiency_warnings(const SufficiencyInput& in) {
  std::vector<std::string> out;
  if (in.n_samples < kMinActiveRecords)
    out.push_back("only " + std::to_string(in.n_samples) + " active donors or customers (fewer than " +
                  std::to_string(kMinActiveRecords) + "): segments of so few records are not meaningful; add data");
  if (in.history_days >= 0 && in.history_days < kMinHistoryDays)
    out.push_back("only " + std::to_string(in.history_days) +
                  " days of history (less than 2 years): recency, tenure and the 12-month trend cannot "
                  "separate records well; prepare a longer export");
  const std::int64_t min_size = in.min_segment_size > 0 ? in.min_segment_size : default_min_segment_size(in.n_samples);
  for (std::size_t c = 0; c < in.sizes.size(); ++c)
    if (in.sizes[c] < min_size)
      out.push_back("segment " + std::to_string(c) + (c < in.names.size() ? " (" + in.names[c] + ")" : std::string()) +
                    " has " + std::to_string(in.sizes[c]) + " rows, below the minimum segment size " +
                    std::to_string(min_size) + " (--min-segment-size): too small to act on; consider a smaller K");
  return out;
}

std::int64_t history_days_attribute(const std::map<std::string, std::string>& attributes) {
  const auto it = attributes.find("history_days");
  if (it == attributes.end()) return -1;
  std::int64_t v = -1;
  const char* end = it->second.data() + it->second.size();
  const auto [ptr, ec] = std::from_chars(it->second.data(), end, v);
  return ec == std::errc{} && ptr == end && v >= 0 ? v : -1;
}

}  // namespace segforge
