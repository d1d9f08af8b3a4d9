// DBSCAN (include/segforge/dbscan.hpp): the grid that decides which rows are compared, the
// core test, connected components by minimum-label propagation with a union-find, borders,
// predict and the k-distance curve. Every pass over the data is a Backend op.

#include "segforge/dbscan.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "segforge/error.hpp"
#include "segforge/rng.hpp"

namespace segforge {
namespace {

using i64 = std::int64_t;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Columns the grid is cut on, their origin and the side. Two rows within eps differ by at most
/// eps in every column, so with cells of side eps they lie in cells whose coordinates differ by
/// at most 1 on each grid column: the pruning is exact in any dimension, and tight where the grid
/// columns carry most of the spread.
struct GridSpec {
  std::vector<std::int32_t> columns;
  std::vector<double> origin;
  double side = 1.0;
};

/// At most this many grid columns: a cell has up to 3^P neighbours, found by a walk over the
/// sorted cells that stops at empty ranges (neighbour_pairs).
constexpr int kMaxGridColumns = 6;

/// The columns of largest variance (ties: the lower index), up to kMaxGridColumns of them, and
/// only those whose standard deviation is at least eps / 2 (a column narrower than a few cells
/// prunes nothing and only multiplies the neighbour cells), but always the widest non-constant one.
GridSpec choose_grid(const ColumnStats& stats, double eps) {
  GridSpec g;
  g.side = eps;
  std::vector<std::int32_t> idx(stats.variance.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::int32_t a, std::int32_t b) { return stats.variance[a] > stats.variance[b]; });
  for (std::int32_t j : idx) {
    if (static_cast<int>(g.columns.size()) == kMaxGridColumns || !(stats.variance[j] > 0.0)) break;
    if (!g.columns.empty() && std::sqrt(stats.variance[j]) < 0.5 * eps) break;
    g.columns.push_back(j);
  }
  std::sort(g.columns.begin(), g.columns.end());
  // Origin 0, not the mean: the cells then do not hang on how a backend rounds the mean.
  g.origin.assign(g.columns.size(), 0.0);
  return g;
}

/// Rows sorted by grid cell (lexicographic, then row index); one block per non-empty cell.
struct GridBlocks {
  RowBlocks blocks;
  std::vector<std::int64_t> cells;  ///< [n_blocks x P] each block's cell
  int p = 0;
};

GridBlocks grid_blocks(Backend& backend, const Dataset& data, const GridSpec& spec) {
  GridBlocks g;
  g.p = static_cast<int>(spec.columns.size());
  const i64 n = data.n_samples();
  g.blocks.order.resize(static_cast<std::size_t>(n));
  std::iota(g.blocks.order.begin(), g.blocks.order.end(), i64{0});
  if (g.p == 0) {  // every column constant (or one row): one cell
    g.blocks.starts = {0, n};
    return g;
  }
  const Matrix<std::int64_t> cells = backend.grid_cells(data, spec.columns, spec.origin, spec.side);
  const int p = g.p;
  auto less = [&](i64 a, i64 b) {
    for (int c = 0; c < p; ++c)
      if (cells(a, c) != cells(b, c)) return cells(a, c) < cells(b, c);
    return a < b;
  };
  std::sort(g.blocks.order.begin(), g.blocks.order.end(), less);
  g.blocks.starts.push_back(0);
  for (i64 q = 0; q < n; ++q) {
    const i64 row = g.blocks.order[static_cast<std::size_t>(q)];
    bool same = q > 0;
    if (same) {
      const i64 prev = g.blocks.order[static_cast<std::size_t>(q - 1)];
      for (int c = 0; c < p && same; ++c) same = cells(row, c) == cells(prev, c);
    }
    if (!same) {
      if (q > 0) g.blocks.starts.push_back(q);
      for (int c = 0; c < p; ++c) g.cells.push_back(cells(row, c));
    }
  }
  g.blocks.starts.push_back(n);
  return g;
}

/// Query cells against reference cells whose coordinates differ by at most 1 on every grid
/// column, targets ascending. The reference cells are sorted lexicographically, so the cells that
/// share a prefix of exact values form a range sorted by the next column: a walk fixes one column
/// at a time to each of its three values and stops where a range is empty (at most 3^P leaves,
/// far fewer where the neighbourhood is sparse).
BlockPairs neighbour_pairs(const GridBlocks& query, const GridBlocks& reference) {
  SEGFORGE_ASSERT(query.p == reference.p, "the two grids differ");
  BlockPairs pairs;
  const i64 nq = query.blocks.n_blocks(), nr = reference.blocks.n_blocks();
  pairs.offsets.push_back(0);
  const int p = query.p;
  if (p == 0) {
    for (i64 a = 0; a < nq; ++a) {
      for (i64 b = 0; b < nr; ++b) pairs.targets.push_back(b);
      pairs.offsets.push_back(static_cast<i64>(pairs.targets.size()));
    }
    return pairs;
  }
  auto cell = [&](i64 b, int c) { return reference.cells[static_cast<std::size_t>(b * p + c)]; };
  const std::int64_t* want = nullptr;
  // Reference blocks [lo, hi) share the query's neighbour values on columns < c.
  auto walk = [&](auto&& self, int c, i64 lo, i64 hi) -> void {
    if (c == p) {
      for (i64 b = lo; b < hi; ++b) pairs.targets.push_back(b);
      return;
    }
    for (std::int64_t v = want[c] - 1; v <= want[c] + 1; ++v) {
      i64 l = lo, h = hi;  // first block with cell(b, c) >= v
      while (l < h) {
        const i64 m = l + (h - l) / 2;
        if (cell(m, c) < v) l = m + 1; else h = m;
      }
      i64 e = l, h2 = hi;  // first block with cell(b, c) > v
      while (e < h2) {
        const i64 m = e + (h2 - e) / 2;
        if (cell(m, c) <= v) e = m + 1; else h2 = m;
      }
      if (l < e) self(self, c + 1, l, e);
      lo = e;  // the next value starts after this one's range
    }
  };
  for (i64 a = 0; a < nq; ++a) {
    want = query.cells.data() + a * p;
    walk(walk, 0, 0, nr);
    pairs.offsets.push_back(static_cast<i64>(pairs.targets.size()));
  }
  return pairs;
}

/// Union-find over row indices whose root is always the lowest index of its set.
struct MinUnionFind {
  std::vector<i64> parent;
  i64 find(i64 i) {
    i64 r = i;
    while (parent[static_cast<std::size_t>(r)] != r) r = parent[static_cast<std::size_t>(r)];
    while (parent[static_cast<std::size_t>(i)] != r) {  // path compression
      const i64 next = parent[static_cast<std::size_t>(i)];
      parent[static_cast<std::size_t>(i)] = r;
      i = next;
    }
    return r;
  }
  bool unite(i64 a, i64 b) {
    a = find(a);
    b = find(b);
    if (a == b) return false;
    if (a < b) std::swap(a, b);
    parent[static_cast<std::size_t>(a)] = b;
    return true;
  }
};

/// The pairs of `all` still worth a propagation pass: both blocks hold core rows and they do
/// not already share one root.
BlockPairs active_pairs(const RowBlocks& blocks, const BlockPairs& all, const std::vector<i64>& roots) {
  constexpr i64 kNone = -2, kMixed = -1;
  const i64 nb = blocks.n_blocks();
  std::vector<i64> state(static_cast<std::size_t>(nb), kNone);
  for (i64 b = 0; b < nb; ++b) {
    i64& s = state[static_cast<std::size_t>(b)];
    for (i64 q = blocks.starts[b]; q < blocks.starts[b + 1] && s != kMixed; ++q) {
      const i64 r = roots[static_cast<std::size_t>(blocks.order[static_cast<std::size_t>(q)])];
      if (r < 0) continue;
      s = s == kNone || s == r ? r : kMixed;
    }
  }
  BlockPairs out;
  out.offsets.push_back(0);
  for (i64 a = 0; a < nb; ++a) {
    const i64 sa = state[static_cast<std::size_t>(a)];
    if (sa != kNone)
      for (i64 c = all.offsets[a]; c < all.offsets[a + 1]; ++c) {
        const i64 b = all.targets[static_cast<std::size_t>(c)];
        const i64 sb = state[static_cast<std::size_t>(b)];
        if (sb == kNone || (sa >= 0 && sa == sb)) continue;
        out.targets.push_back(b);
      }
    out.offsets.push_back(static_cast<i64>(out.targets.size()));
  }
  return out;
}

}  // namespace

void validate(const DbscanParams& p, const std::string& where) {
  if (!std::isfinite(p.eps) || p.eps <= 0.0)
    throw InputError(where + ": eps=" + std::to_string(p.eps) +
                     " must be a positive distance; pass --eps E (or --eps auto to take it from the data)");
  if (!std::isfinite(p.min_samples) || p.min_samples < 1.0)
    throw InputError(where + ": min_samples=" + std::to_string(p.min_samples) +
                     " must be at least 1 (the row itself counts); pass --min-samples M");
}

DbscanResult fit_dbscan(Backend& backend, const Dataset& data, const DbscanParams& params) {
  validate(params, "DBSCAN");
  const i64 n = data.n_samples();
  DbscanResult r;
  r.labels.assign(static_cast<std::size_t>(n), -1);
  r.core.assign(static_cast<std::size_t>(n), 0);
  r.distances.assign(static_cast<std::size_t>(n), std::numeric_limits<float>::quiet_NaN());
  if (n == 0) return r;

  // Step 1: neighbourhood weights over neighbouring grid cells; core rows.
  auto t0 = std::chrono::steady_clock::now();
  const GridSpec spec = choose_grid(backend.column_stats(data), params.eps);
  const GridBlocks grid = grid_blocks(backend, data, spec);
  const BlockPairs pairs = neighbour_pairs(grid, grid);
  r.grid_columns = spec.columns;
  r.n_blocks = grid.blocks.n_blocks();
  r.n_block_pairs = static_cast<i64>(pairs.targets.size());
  const std::vector<double> weight = backend.eps_neighbour_weights(data, grid.blocks, pairs, params.eps, params.min_samples);
  std::vector<i64> roots(static_cast<std::size_t>(n), -1);
  MinUnionFind uf;
  uf.parent.resize(static_cast<std::size_t>(n));
  std::iota(uf.parent.begin(), uf.parent.end(), i64{0});
  for (i64 i = 0; i < n; ++i)
    if (weight[static_cast<std::size_t>(i)] >= params.min_samples) {
      r.core[static_cast<std::size_t>(i)] = 1;
      roots[static_cast<std::size_t>(i)] = i;
      ++r.n_core;
    }
  r.neighbour_seconds = seconds_since(t0);

  // Step 2: components of the core rows. Each pass gives every core row the root of a core
  // neighbour with a lower root, if it has one (the first found); uniting the two merges every
  // component that borders one with a lower root into such a one, so the components shrink in
  // number every pass. Stop when a pass unites nothing: then every core row's core neighbours
  // share its root, and the roots are the connected components.
  t0 = std::chrono::steady_clock::now();
  if (r.n_core > 0) {
    RowBlocks by_root;
    by_root.starts = grid.blocks.starts;
    // The op's precondition: in each block the core rows first, by ascending root.
    const auto root_key = [&](i64 i) {
      const i64 v = roots[static_cast<std::size_t>(i)];
      return v < 0 ? std::numeric_limits<i64>::max() : v;
    };
    BlockPairs pruned;
    for (;;) {
      if (r.rounds > 0) pruned = active_pairs(grid.blocks, pairs, roots);
      const BlockPairs& live = r.rounds == 0 ? pairs : pruned;
      if (live.targets.empty()) break;
      by_root.order = grid.blocks.order;
      for (i64 b = 0; b < grid.blocks.n_blocks(); ++b)
        std::stable_sort(by_root.order.begin() + grid.blocks.starts[b], by_root.order.begin() + grid.blocks.starts[b + 1],
                         [&](i64 x, i64 y) { return root_key(x) < root_key(y); });
      const std::vector<i64> lowest = backend.eps_lower_root(data, by_root, live, params.eps, roots);
      ++r.rounds;
      bool united = false;
      for (i64 i = 0; i < n; ++i) {
        const i64 m = lowest[static_cast<std::size_t>(i)];
        if (m >= 0 && m < roots[static_cast<std::size_t>(i)]) united = uf.unite(i, m) || united;
      }
      for (i64 i = 0; i < n; ++i)
        if (roots[static_cast<std::size_t>(i)] >= 0) roots[static_cast<std::size_t>(i)] = uf.find(i);
      if (!united) break;
    }
  }
  // Clusters numbered by their lowest row (the root), as scikit-learn's scan in row order does.
  std::vector<std::int32_t> cluster_of_root(static_cast<std::size_t>(n), -1);
  for (i64 i = 0; i < n; ++i) {
    const i64 root = roots[static_cast<std::size_t>(i)];
    if (root < 0) continue;
    auto& c = cluster_of_root[static_cast<std::size_t>(root)];
    if (c < 0) c = r.n_clusters++;
    r.labels[static_cast<std::size_t>(i)] = c;
    r.distances[static_cast<std::size_t>(i)] = 0.0f;
  }
  r.component_seconds = seconds_since(t0);

  // Step 3: border rows join the cluster of their nearest core row within eps.
  t0 = std::chrono::steady_clock::now();
  if (r.n_core > 0 && r.n_core < n) {
    std::vector<std::uint8_t> non_core(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i) non_core[static_cast<std::size_t>(i)] = r.core[static_cast<std::size_t>(i)] ? 0 : 1;
    std::vector<i64> nearest(static_cast<std::size_t>(n));
    std::vector<double> d2(static_cast<std::size_t>(n));
    backend.nearest_within_eps(data, grid.blocks, non_core, data, grid.blocks, r.core, pairs, params.eps, nearest, d2);
    for (i64 i = 0; i < n; ++i) {
      const i64 c = nearest[static_cast<std::size_t>(i)];
      if (r.core[static_cast<std::size_t>(i)] || c < 0) continue;
      r.labels[static_cast<std::size_t>(i)] = r.labels[static_cast<std::size_t>(c)];
      r.distances[static_cast<std::size_t>(i)] = static_cast<float>(std::sqrt(d2[static_cast<std::size_t>(i)]));
      ++r.n_border;
    }
  }
  r.n_noise = n - r.n_core - r.n_border;
  r.border_seconds = seconds_since(t0);
  return r;
}

DbscanAssignment predict_dbscan(Backend& backend, const Dataset& query, const Dataset& core_rows,
                                std::span<const std::int32_t> core_labels, double eps) {
  validate(DbscanParams{eps, 1.0}, "DBSCAN model");
  SEGFORGE_ASSERT(static_cast<i64>(core_labels.size()) == core_rows.n_samples(), "one label per core row");
  SEGFORGE_ASSERT(query.n_features() == core_rows.n_features(), "query and core rows differ in n_features");
  const i64 n = query.n_samples();
  DbscanAssignment out;
  out.labels.assign(static_cast<std::size_t>(n), -1);
  out.distances.assign(static_cast<std::size_t>(n), std::numeric_limits<float>::quiet_NaN());
  if (n == 0 || core_rows.n_samples() == 0) return out;
  // One grid for both sides, cut on the core rows' columns of largest variance.
  const GridSpec spec = choose_grid(backend.column_stats(core_rows), eps);
  const GridBlocks q = grid_blocks(backend, query, spec);
  const GridBlocks c = grid_blocks(backend, core_rows, spec);
  std::vector<i64> nearest(static_cast<std::size_t>(n));
  std::vector<double> d2(static_cast<std::size_t>(n));
  backend.nearest_within_eps(query, q.blocks, {}, core_rows, c.blocks, {}, neighbour_pairs(q, c), eps, nearest, d2);
  for (i64 i = 0; i < n; ++i) {
    const i64 k = nearest[static_cast<std::size_t>(i)];
    if (k < 0) continue;
    out.labels[static_cast<std::size_t>(i)] = core_labels[static_cast<std::size_t>(k)];
    out.distances[static_cast<std::size_t>(i)] = static_cast<float>(std::sqrt(d2[static_cast<std::size_t>(i)]));
  }
  return out;
}

std::vector<double> k_distances(Backend& backend, const Dataset& data, int min_samples, std::int64_t sample_size,
                                std::uint64_t seed) {
  const i64 n = data.n_samples();
  if (min_samples < 1) throw InputError("min_samples=" + std::to_string(min_samples) + " must be at least 1");
  if (n < min_samples)
    throw InputError(std::to_string(n) + " rows are fewer than min_samples=" + std::to_string(min_samples) +
                     "; every row would be noise at any eps");
  std::vector<i64> rows;
  if (sample_size >= n) {
    rows.resize(static_cast<std::size_t>(n));
    std::iota(rows.begin(), rows.end(), i64{0});
  } else {
    Rng rng(seed);
    rows = rng.choose(n, sample_size);
    std::sort(rows.begin(), rows.end());
  }
  const Matrix<float> sample_rows = backend.gather(data, rows);
  auto sample = backend.upload(sample_rows.view());
  const i64 s = static_cast<i64>(rows.size());
  // The min_samples smallest squared distances of each sample row, over tiles of the data: a
  // row's k best so far as a max-heap, and a tile's value enters only below the heap's top.
  // Tiles of at most 512 x 4096 (8 MiB): larger ones are fresh mappings from the allocator
  // every time (glibc's mmap threshold stops at 32 MiB), and their page faults cost more than
  // the distances.
  const i64 k = min_samples;
  std::vector<float> best(static_cast<std::size_t>(s * k), std::numeric_limits<float>::infinity());  // [s x k] heaps
  constexpr i64 kSampleTile = 512, kDataTile = 4096;
  for (i64 a0 = 0; a0 < s; a0 += kSampleTile) {
    const i64 na = std::min(kSampleTile, s - a0);
    for (i64 b0 = 0; b0 < n; b0 += kDataTile) {
      const i64 nb = std::min(kDataTile, n - b0);
      const Matrix<float> tile = backend.distance_tile(*sample, a0, na, data, b0, nb, /*squared=*/true);
      for (i64 i = 0; i < na; ++i) {
        float* heap = best.data() + (a0 + i) * k;
        const float* row = tile.row(i);
        for (i64 j = 0; j < nb; ++j)
          if (row[j] < heap[0]) {
            std::pop_heap(heap, heap + k);
            heap[k - 1] = row[j];
            std::push_heap(heap, heap + k);
          }
      }
    }
  }
  std::vector<double> curve(static_cast<std::size_t>(s));
  for (i64 i = 0; i < s; ++i)
    // The row itself is at distance 0 and counted first; the expansion may put it a rounding
    // error above 0, which the k-th distance does not notice at any useful eps. The heap's top
    // is the k-th smallest.
    curve[static_cast<std::size_t>(i)] = std::sqrt(static_cast<double>(std::max(0.0f, best[static_cast<std::size_t>(i * k)])));
  std::sort(curve.begin(), curve.end());
  return curve;
}

EpsSuggestion suggest_eps(Backend& backend, const Dataset& data, int min_samples, std::int64_t sample_size,
                          std::uint64_t seed) {
  EpsSuggestion out;
  out.curve = k_distances(backend, data, min_samples, sample_size, seed);
  const i64 s = static_cast<i64>(out.curve.size());
  // Kneedle's difference curve (Satopää et al. 2011): with both axes normalised to [0, 1], the
  // knee of an increasing convex curve is where x_n − y_n, its distance below the chord, is
  // largest. The whole curve's maximum, not Kneedle's online walk from the first local maximum:
  // a k-distance curve is noisy, and that walk stops in the first ripple of its steep tail.
  if (s >= 3 && out.curve.back() > out.curve.front()) {
    const double lo = out.curve.front(), span = out.curve.back() - out.curve.front();
    double best = 0.0;
    for (i64 i = 0; i < s; ++i) {
      const double d = static_cast<double>(i) / static_cast<double>(s - 1) - (out.curve[static_cast<std::size_t>(i)] - lo) / span;
      if (d > best) best = d, out.eps = out.curve[static_cast<std::size_t>(i)], out.index = i, out.knee_found = true;
    }
  }
  if (!out.knee_found) {
    out.index = std::min<i64>(s - 1, static_cast<i64>(0.9 * static_cast<double>(s)));
    out.eps = out.curve[static_cast<std::size_t>(out.index)];
  }
  if (!(out.eps > 0.0)) {
    // Many duplicates: the knee sits at distance 0. The smallest positive k-distance instead.
    for (i64 i = 0; i < s; ++i)
      if (out.curve[static_cast<std::size_t>(i)] > 0.0) {
        out.eps = out.curve[static_cast<std::size_t>(i)];
        out.index = i;
        break;
      }
  }
  return out;
}

}  // namespace segforge
