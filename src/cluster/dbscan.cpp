// DBSCAN (include/segforge/dbscan.hpp): the grid that decides which rows are compared, the
// core test, connected components by minimum-label propagation with a union-find, borders,
// predict and the k-distance curve. Every pass over the data is a Backend op.

#include "segforge/dbscan.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

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
  // Where the cells' ranges fit in 63 bits together, each cell is one integer (column 0 in the
  // highest bits: the same lexicographic order) and (cell, row) pairs are sorted, contiguous in
  // memory; otherwise row indices are sorted by comparing cells.
  std::vector<std::int64_t> lo(static_cast<std::size_t>(p), std::numeric_limits<std::int64_t>::max());
  std::vector<std::int64_t> hi(static_cast<std::size_t>(p), std::numeric_limits<std::int64_t>::min());
  for (i64 i = 0; i < n; ++i)
    for (int c = 0; c < p; ++c) {
      lo[static_cast<std::size_t>(c)] = std::min(lo[static_cast<std::size_t>(c)], cells(i, c));
      hi[static_cast<std::size_t>(c)] = std::max(hi[static_cast<std::size_t>(c)], cells(i, c));
    }
  std::vector<int> shift(static_cast<std::size_t>(p));
  int bits = 0;
  for (int c = p - 1; c >= 0; --c) {
    shift[static_cast<std::size_t>(c)] = bits;
    bits += std::bit_width(static_cast<std::uint64_t>(hi[static_cast<std::size_t>(c)] - lo[static_cast<std::size_t>(c)]));
  }
  std::vector<std::uint64_t> key;  // [n] each row's packed cell in sorted order, when they fit
  if (bits <= 63) {
    std::vector<std::pair<std::uint64_t, i64>> keyed(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i) {
      std::uint64_t k = 0;
      for (int c = 0; c < p; ++c)
        k |= static_cast<std::uint64_t>(cells(i, c) - lo[static_cast<std::size_t>(c)]) << shift[static_cast<std::size_t>(c)];
      keyed[static_cast<std::size_t>(i)] = {k, i};
    }
    std::sort(keyed.begin(), keyed.end());
    key.resize(static_cast<std::size_t>(n));
    for (i64 q = 0; q < n; ++q) {
      key[static_cast<std::size_t>(q)] = keyed[static_cast<std::size_t>(q)].first;
      g.blocks.order[static_cast<std::size_t>(q)] = keyed[static_cast<std::size_t>(q)].second;
    }
  } else {
    auto less = [&](i64 a, i64 b) {
      for (int c = 0; c < p; ++c)
        if (cells(a, c) != cells(b, c)) return cells(a, c) < cells(b, c);
      return a < b;
    };
    std::sort(g.blocks.order.begin(), g.blocks.order.end(), less);
  }
  g.blocks.starts.push_back(0);
  for (i64 q = 0; q < n; ++q) {
    const i64 row = g.blocks.order[static_cast<std::size_t>(q)];
    bool same = q > 0;
    if (same && !key.empty()) {
      same = key[static_cast<std::size_t>(q)] == key[static_cast<std::size_t>(q - 1)];
    } else if (same) {
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

/// Rows per leaf of the spatial order inside a block: the CPU backend cuts a block's rows into
/// chunks of 32 consecutive rows, each with its bounding box (cpu/neighbours.cpp), so leaves of
/// 32 make each chunk one small region.
constexpr i64 kLeafRows = 32;
/// Rows gathered from the backend at a time to order them (whole blocks; a larger block alone).
constexpr i64 kOrderBatch = i64{1} << 16;

/// A k-d order of one block's rows: split on the widest column at the median rounded up to whole
/// leaves (ties: the lower local index), recursively, until kLeafRows rows, so every run of
/// kLeafRows rows from the block's start is one leaf. [in] x [n x d] the rows' values; [in,out]
/// idx local indices into x.
void kd_order(std::span<i64> idx, const float* x, i64 d) {
  const i64 n = static_cast<i64>(idx.size());
  if (n <= kLeafRows) return;
  i64 col = -1;
  float widest = 0.0f;
  for (i64 j = 0; j < d; ++j) {
    float lo = x[idx[0] * d + j], hi = lo;
    for (const i64 i : idx) lo = std::min(lo, x[i * d + j]), hi = std::max(hi, x[i * d + j]);
    if (hi - lo > widest) widest = hi - lo, col = j;
  }
  if (col < 0) return;  // every row the same
  const i64 leaves = (n + kLeafRows - 1) / kLeafRows;
  const i64 left = (leaves + 1) / 2 * kLeafRows;
  std::nth_element(idx.begin(), idx.begin() + left, idx.end(), [&](i64 a, i64 b) {
    const float va = x[a * d + col], vb = x[b * d + col];
    return va < vb || (va == vb && a < b);
  });
  kd_order(idx.subspan(0, static_cast<std::size_t>(left)), x, d);
  kd_order(idx.subspan(static_cast<std::size_t>(left)), x, d);
}

/// The v's lowest `bits` bits in reverse order.
std::uint64_t reverse_bits(std::uint64_t v, int bits) {
  std::uint64_t r = 0;
  for (int t = 0; t < bits; ++t) r |= ((v >> t) & 1u) << (bits - 1 - t);
  return r;
}

/// The rows of each block as the leaves of a k-d order (kd_order) instead of row order: the
/// blocks are cells of side eps, which hold thousands of rows where the data are dense, and the
/// CPU backend bounds each chunk of kLeafRows consecutive rows by its box and skips the chunks
/// beyond eps; rows in row order (shuffled data) make every chunk's box nearly the whole cell, a
/// leaf's rows make it a leaf's. The leaves go in bit-reversed order (0, n/2, n/4, 3n/4, ...), not
/// in k-d order: a backend that scans a block's rows from its start and stops early (the CUDA
/// kernels: a row's first neighbours within eps, stop_at) then meets rows from all over the cell
/// at once, as in row order (on 3M x 8 blobs, a row of the densest cells scans about 200 of its
/// cell's rows before 10 within eps; 150 in row order, 750 to 1,800 in k-d order); the CPU
/// backend takes the chunks nearest first either way, as fast in both orders. No result of fit_dbscan or predict_dbscan depends on the order of rows within a
/// block (see fit_dbscan), only how many rows the ops skip.
std::vector<i64> spatial_order(Backend& backend, const Dataset& data, const RowBlocks& blocks) {
  std::vector<i64> order = blocks.order;
  const i64 nb = blocks.n_blocks(), d = data.n_features();
  std::vector<i64> idx, rows;
  for (i64 b0 = 0; b0 < nb;) {
    i64 b1 = b0 + 1;  // blocks [b0, b1) gathered at once
    while (b1 < nb && blocks.starts[b1 + 1] - blocks.starts[b0] <= kOrderBatch) ++b1;
    const i64 p0 = blocks.starts[b0], p1 = blocks.starts[b1];
    bool any = false;  // a block of more than one leaf
    for (i64 b = b0; b < b1 && !any; ++b) any = blocks.starts[b + 1] - blocks.starts[b] > kLeafRows;
    if (any) {
      const Matrix<float> x = backend.gather(data, std::span<const i64>(order.data() + p0, static_cast<std::size_t>(p1 - p0)));
      rows.assign(order.begin() + p0, order.begin() + p1);
      for (i64 b = b0; b < b1; ++b) {
        const i64 s0 = blocks.starts[b] - p0, m = blocks.starts[b + 1] - blocks.starts[b];
        if (m <= kLeafRows) continue;
        idx.resize(static_cast<std::size_t>(m));
        std::iota(idx.begin(), idx.end(), s0);
        kd_order(idx, x.data(), d);
        // The whole leaves in bit-reversed order of their index, the partial one last: each run
        // of kLeafRows rows from the block's start is still one leaf, and every first part of
        // the block is leaves spread over all of it.
        const i64 whole = m / kLeafRows;
        const int bits = std::bit_width(static_cast<std::uint64_t>(std::max<i64>(whole - 1, 0)));
        i64 at = p0 + s0;
        for (std::uint64_t v = 0; v < (std::uint64_t{1} << bits); ++v) {
          const i64 leaf = static_cast<i64>(reverse_bits(v, bits));
          if (leaf >= whole) continue;
          for (i64 k = leaf * kLeafRows; k < (leaf + 1) * kLeafRows; ++k)
            order[static_cast<std::size_t>(at++)] = rows[static_cast<std::size_t>(idx[static_cast<std::size_t>(k)])];
        }
        for (i64 k = whole * kLeafRows; k < m; ++k) order[static_cast<std::size_t>(at++)] = rows[static_cast<std::size_t>(idx[static_cast<std::size_t>(k)])];
      }
    }
    b0 = b1;
  }
  return order;
}

/// Query cells against reference cells whose coordinates differ by at most 1 on every grid
/// column, targets ascending. The reference cells are sorted lexicographically, so the cells that
/// share a prefix of exact values form a range sorted by the next column: a walk fixes one column
/// at a time to each of its three values and drops the ranges that are empty (at most 3^P at the
/// end, far fewer where the neighbourhood is sparse).
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
  // ranges[c]: the reference blocks [lo, hi) that share one of the query's neighbour values on
  // every column < c, ascending. They depend only on the query's first c cell values, so each
  // query recomputes them from the first column where it differs from the previous query (the
  // query cells come in lexicographic order: most share all but the last).
  std::vector<std::vector<std::pair<i64, i64>>> ranges(static_cast<std::size_t>(p + 1));
  ranges[0] = {{0, nr}};
  const std::int64_t* prev = nullptr;
  for (i64 a = 0; a < nq; ++a) {
    const std::int64_t* want = query.cells.data() + a * p;
    int k = 0;  // the first column where the query differs from the previous one
    if (prev)
      while (k < p && want[k] == prev[k]) ++k;
    for (int c = k; c < p; ++c) {
      auto& next = ranges[static_cast<std::size_t>(c + 1)];
      next.clear();
      for (auto [lo, hi] : ranges[static_cast<std::size_t>(c)])
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
          if (l < e) next.push_back({l, e});
          lo = e;  // the next value starts after this one's range
        }
    }
    prev = want;
    for (auto [lo, hi] : ranges[static_cast<std::size_t>(p)])
      for (i64 b = lo; b < hi; ++b) pairs.targets.push_back(b);
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
  GridBlocks grid = grid_blocks(backend, data, spec);
  const BlockPairs pairs = neighbour_pairs(grid, grid);
  r.grid_columns = spec.columns;
  r.n_blocks = grid.blocks.n_blocks();
  r.n_block_pairs = static_cast<i64>(pairs.targets.size());
  // Every pass below sees the rows of a block as leaves of a k-d order (spatial_order), and
  // nothing it gives the labels, core flags or distances depends on that order:
  // - weights: the rows within eps of a row are the same set in any order, and with unit weights
  //   the sum stopped at stop_at is min(count, the first integer >= stop_at) in any order. Other
  //   weights round in the order they are summed, so weighted data keep row order for this pass;
  // - components: a pass finds *a* core neighbour with a lower key (which one hangs on the
  //   order), but the passes stop only when no core row has a core neighbour with a lower root,
  //   and then the roots are the lowest rows of the connected components, whatever was united on
  //   the way;
  // - borders: the nearest core row within eps, ties to the lower row, is the least (distance,
  //   row) pair, the same in any order.
  const RowBlocks blocks{spatial_order(backend, data, grid.blocks), grid.blocks.starts};
  if (!data.weighted()) std::vector<i64>().swap(grid.blocks.order);
  const std::vector<double> weight =
      backend.eps_neighbour_weights(data, data.weighted() ? grid.blocks : blocks, pairs, params.eps, params.min_samples);
  std::vector<i64>().swap(grid.blocks.order);
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
    by_root.starts = blocks.starts;
    {
      // Two passes first over keys that are positions instead of roots: each core row is united
      // with the first core row within eps earlier in the blocks' order, then (each block's core
      // rows reversed, keys n − 1 − position) with the first one later in it. Positions ascend
      // in every block as the rows stand, so no sort, and the CPU backend's chunk boxes stay
      // leaves of the k-d order. The two passes together leave about one set per cluster (10,
      // 10 and 11 on 10 blobs of 1M, 3M and 10M x 8; 1,778, 4,452 and 16,074 after the first
      // alone), so the passes over roots below have little left to merge (on those data one
      // more pass, or none). Any union of two core rows within eps is one the components have;
      // only the passes over roots decide when to stop.
      by_root.order = blocks.order;
      for (i64 b = 0; b < blocks.n_blocks(); ++b)
        std::stable_partition(by_root.order.begin() + blocks.starts[b], by_root.order.begin() + blocks.starts[b + 1],
                              [&](i64 x) { return r.core[static_cast<std::size_t>(x)] != 0; });
      std::vector<i64> key(static_cast<std::size_t>(n), -1);
      for (i64 p = 0; p < n; ++p) {
        const i64 i = by_root.order[static_cast<std::size_t>(p)];
        if (r.core[static_cast<std::size_t>(i)]) key[static_cast<std::size_t>(i)] = p;
      }
      std::vector<i64> found = backend.eps_lower_root(data, by_root, pairs, params.eps, key);
      ++r.rounds;
      for (i64 i = 0; i < n; ++i) {
        const i64 m = found[static_cast<std::size_t>(i)];
        if (m >= 0 && m < key[static_cast<std::size_t>(i)]) uf.unite(i, by_root.order[static_cast<std::size_t>(m)]);
      }
      RowBlocks backward;
      backward.starts = blocks.starts;
      backward.order = by_root.order;
      for (i64 b = 0; b < blocks.n_blocks(); ++b) {
        i64 e = blocks.starts[b];  // the end of the block's core rows
        while (e < blocks.starts[b + 1] && r.core[static_cast<std::size_t>(backward.order[static_cast<std::size_t>(e)])]) ++e;
        std::reverse(backward.order.begin() + blocks.starts[b], backward.order.begin() + e);
      }
      for (i64& k : key)
        if (k >= 0) k = n - 1 - k;
      found = backend.eps_lower_root(data, backward, pairs, params.eps, key);
      ++r.rounds;
      for (i64 i = 0; i < n; ++i) {
        const i64 m = found[static_cast<std::size_t>(i)];
        if (m >= 0 && m < key[static_cast<std::size_t>(i)]) uf.unite(i, by_root.order[static_cast<std::size_t>(n - 1 - m)]);
      }
      for (i64 i = 0; i < n; ++i)
        if (roots[static_cast<std::size_t>(i)] >= 0) roots[static_cast<std::size_t>(i)] = uf.find(i);
    }
    // The op's precondition: in each block the core rows first, by ascending root.
    const auto root_key = [&](i64 i) {
      const i64 v = roots[static_cast<std::size_t>(i)];
      return v < 0 ? std::numeric_limits<i64>::max() : v;
    };
    for (;;) {
      const BlockPairs live = active_pairs(blocks, pairs, roots);
      if (live.targets.empty()) break;
      by_root.order = blocks.order;
      for (i64 b = 0; b < blocks.n_blocks(); ++b)
        std::stable_sort(by_root.order.begin() + blocks.starts[b], by_root.order.begin() + blocks.starts[b + 1],
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
    backend.nearest_within_eps(data, blocks, non_core, data, blocks, r.core, pairs, params.eps, nearest, d2);
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
  // The nearest core row within eps does not depend on the order of rows within a block.
  const RowBlocks qb{spatial_order(backend, query, q.blocks), q.blocks.starts};
  const RowBlocks cb{spatial_order(backend, core_rows, c.blocks), c.blocks.starts};
  backend.nearest_within_eps(query, qb, {}, core_rows, cb, {}, neighbour_pairs(q, c), eps, nearest, d2);
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
