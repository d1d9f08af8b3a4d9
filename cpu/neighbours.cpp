// The CPU backend's eps-neighbour ops (neighbours.hpp).

#include "neighbours.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "segforge/error.hpp"

namespace segforge::cpu {
namespace {

using i64 = std::int64_t;

/// Query rows per tile, and reference rows per chunk (the unit with its own bounding box; the
/// driver's k-d order inside a block has leaves of as many rows, src/cluster/dbscan.cpp).
/// Measured on 1M and 3M x 8 blobs: chunks of 32 beat 16 (by about 15%) and 8; 64 is as fast.
constexpr i64 kQueryTile = 32;
constexpr i64 kChunk = 32;
static_assert(kQueryTile % kChunk == 0, "a tile of a block's rows is whole chunks of them");

/// A tile of query rows: positions [p0, p1) of one query block's rows, after the query mask.
struct QueryTile {
  i64 block;
  i64 p0, p1;  ///< into `active` (the query positions that pass the mask)
};

/// Σ_j gap(j)² over j ascending in double: the squared gaps of up to 16 columns at a time
/// (vector code), then summed in column order.
template <class Gap>
double sum_sq_gaps(i64 d, Gap gap) {
  double s = 0.0;
  double g2[16];
  for (i64 j0 = 0; j0 < d; j0 += 16) {
    const i64 n = std::min<i64>(16, d - j0);
    for (i64 j = 0; j < n; ++j) {
      const double g = gap(j0 + j);
      g2[j] = g * g;
    }
    for (i64 j = 0; j < n; ++j) s += g2[j];
  }
  return s;
}

/// A lower bound of the squared distance from x to any row in the box: Σ_j gap_j² over j
/// ascending in double, gap_j the distance from x_j to [lo_j, hi_j]. Each |x_j − y_j| rounds to
/// at least gap_j and rounding is monotonic, so with the same order of summation a bound above
/// eps² proves every row of the box farther than eps as chunk_sq_distances computes it: skipping
/// such rows changes no result. The same holds against any threshold t: a bound above t proves
/// every computed distance above t.
template <class X, class B>
double box_sq_gap(const X* x, const B* lo, const B* hi, i64 d) {
  return sum_sq_gaps(d, [&](i64 j) {
    // l − v > 0 when v < l, v − h > 0 when v > h, both <= 0 inside: the gap without a branch.
    const double v = static_cast<double>(x[j]);
    return std::max(std::max(static_cast<double>(lo[j]) - v, v - static_cast<double>(hi[j])), 0.0);
  });
}

/// The same bound between any row of box a and any row of box b: for x in a and y in b,
/// y_j − x_j >= lo_b − hi_a, so the rounded |x_j − y_j| is at least the rounded gap (monotonic
/// rounding, symmetric under negation), and so on as in box_sq_gap.
double boxes_sq_gap(const double* alo, const double* ahi, const float* blo, const float* bhi, i64 d) {
  return sum_sq_gaps(d, [&](i64 j) {
    return std::max(std::max(static_cast<double>(blo[j]) - ahi[j], alo[j] - static_cast<double>(bhi[j])), 0.0);
  });
}

/// Squared distances from x (the float32 row widened) to the m rows of a chunk stored
/// column-major (column j at y + j·m): for each row Σ_j (x_j − y_j)² over j ascending in double
/// (the difference of two floats widened; never fused: -ffp-contract=off), vectorised across the
/// rows, each row's sum in column order.
[[gnu::always_inline]] inline void chunk_sq_distances_n(const double* x, const float* y, i64 m, i64 d, double* acc) {
  for (i64 s = 0; s < m; ++s) acc[s] = 0.0;
  for (i64 j = 0; j < d; ++j) {
    const double xj = x[j];
    const float* col = y + j * m;
    for (i64 s = 0; s < m; ++s) {
      const double v = xj - static_cast<double>(col[s]);
      acc[s] += v * v;
    }
  }
}

/// A whole chunk with m a constant (the loops unrolled and vectorised for it), else any m.
void chunk_sq_distances(const double* x, const float* y, i64 m, i64 d, double* acc) {
  if (m == kChunk) return chunk_sq_distances_n(x, y, kChunk, d, acc);
  chunk_sq_distances_n(x, y, m, d, acc);
}

void check_blocks(const RowBlocks& blocks, i64 n, const char* what) {
  SEGFORGE_ASSERT(static_cast<i64>(blocks.order.size()) == n, std::string(what) + " blocks must order every row");
  SEGFORGE_ASSERT(!blocks.starts.empty() && blocks.starts.front() == 0 && blocks.starts.back() == n,
                  std::string(what) + " blocks must start at 0 and end at n");
}

/// Boxes over runs of consecutive chunks of each block, a tree of fan-out kFan: level 0 the
/// chunks themselves, level L the runs of kFan^L chunks from the block's first (the last one
/// shorter), each box the union of its children's; a block's levels are stored one after another,
/// level 0 first, so its last node is the whole block. A walk from the top takes the chunks in
/// their order and skips a run whose box lies beyond reach (box_sq_gap, boxes_sq_gap: exact), so
/// a query visits the chunks near it in a block of thousands without testing each one.
constexpr i64 kFan = 4;
constexpr int kMaxLevels = 40;

struct ChunkTree {
  std::vector<i64> block_chunk;  ///< [n_blocks + 1] each block's first chunk
  std::vector<i64> node0;        ///< [n_blocks + 1] each block's first node
  std::vector<float> lo, hi;     ///< [n_nodes x d]
  const float* block_lo(i64 b, i64 d) const { return lo.data() + (node0[static_cast<std::size_t>(b + 1)] - 1) * d; }
  const float* block_hi(i64 b, i64 d) const { return hi.data() + (node0[static_cast<std::size_t>(b + 1)] - 1) * d; }
};

/// The number of nodes on each level of a block of n_chunks >= 1 chunks; returns the levels.
int tree_levels(i64 n_chunks, i64* size) {
  int n = 0;
  for (i64 s = n_chunks;; s = (s + kFan - 1) / kFan) {
    size[n++] = s;
    if (s == 1) break;
  }
  return n;
}

/// [in] block_chunk [n_blocks + 1]; chunk boxes clo, chi [n_chunks x d]
ChunkTree chunk_tree(int team, std::vector<i64> block_chunk, const float* clo, const float* chi, i64 d) {
  ChunkTree t;
  const i64 nb = static_cast<i64>(block_chunk.size()) - 1;
  t.block_chunk = std::move(block_chunk);
  t.node0.resize(static_cast<std::size_t>(nb + 1));
  i64 n_nodes = 0;
  i64 size[kMaxLevels];
  for (i64 b = 0; b < nb; ++b) {
    t.node0[static_cast<std::size_t>(b)] = n_nodes;
    const i64 c = t.block_chunk[static_cast<std::size_t>(b + 1)] - t.block_chunk[static_cast<std::size_t>(b)];
    if (c == 0) continue;
    const int levels = tree_levels(c, size);
    for (int l = 0; l < levels; ++l) n_nodes += size[l];
  }
  t.node0[static_cast<std::size_t>(nb)] = n_nodes;
  t.lo.resize(static_cast<std::size_t>(n_nodes * d));
  t.hi.resize(static_cast<std::size_t>(n_nodes * d));
#pragma omp parallel for schedule(static) num_threads(team)
  for (i64 b = 0; b < nb; ++b) {
    const i64 h0 = t.block_chunk[static_cast<std::size_t>(b)], c = t.block_chunk[static_cast<std::size_t>(b + 1)] - h0;
    if (c == 0) continue;
    i64 sz[kMaxLevels];
    const int levels = tree_levels(c, sz);
    float* lo = t.lo.data() + t.node0[static_cast<std::size_t>(b)] * d;
    float* hi = t.hi.data() + t.node0[static_cast<std::size_t>(b)] * d;
    std::copy(clo + h0 * d, clo + (h0 + c) * d, lo);
    std::copy(chi + h0 * d, chi + (h0 + c) * d, hi);
    for (int l = 1; l < levels; ++l) {
      const float* clo_l = lo;  // the level below
      const float* chi_l = hi;
      lo += sz[l - 1] * d;
      hi += sz[l - 1] * d;
      for (i64 k = 0; k < sz[l]; ++k)
        for (i64 j = 0; j < d; ++j) {
          float a = std::numeric_limits<float>::infinity(), z = -std::numeric_limits<float>::infinity();
          for (i64 ch = k * kFan; ch < std::min(sz[l - 1], (k + 1) * kFan); ++ch) {
            a = std::min(a, clo_l[ch * d + j]);
            z = std::max(z, chi_l[ch * d + j]);
          }
          lo[k * d + j] = a;
          hi[k * d + j] = z;
        }
    }
  }
  return t;
}

/// Walks block b's chunks in order through the tree: enter(lo, hi, first_chunk) on a node says
/// 0 (skip its chunks), 1 (go in) or 2 (stop: no chunk from this one on is wanted); leaf(h) on
/// each chunk gone into returns true to stop.
template <class Enter, class Leaf>
void walk_block(const ChunkTree& t, i64 b, i64 d, Enter&& enter, Leaf&& leaf) {
  const i64 h0 = t.block_chunk[static_cast<std::size_t>(b)], c = t.block_chunk[static_cast<std::size_t>(b + 1)] - h0;
  if (c == 0) return;
  i64 size[kMaxLevels], base[kMaxLevels], span[kMaxLevels];
  const int levels = tree_levels(c, size);
  for (int l = 0; l < levels; ++l) {
    base[l] = l == 0 ? t.node0[static_cast<std::size_t>(b)] : base[l - 1] + size[l - 1];
    span[l] = l == 0 ? 1 : span[l - 1] * kFan;
  }
  auto rec = [&](auto&& self, int l, i64 k) -> bool {
    const i64 node = base[l] + k;
    const int e = enter(t.lo.data() + node * d, t.hi.data() + node * d, h0 + k * span[l]);
    if (e != 1) return e == 2;
    if (l == 0) return leaf(h0 + k);
    for (i64 ch = k * kFan, end = std::min(size[l - 1], (k + 1) * kFan); ch < end; ++ch)
      if (self(self, l - 1, ch)) return true;
    return false;
  };
  rec(rec, levels - 1, 0);
}

/// The reference rows of for_pairs that pass the mask, in block order, cut into chunks of at
/// most kChunk consecutive rows of one block. Each chunk's rows are copied column-major (column j
/// of chunk h at values[first_h·d + j·size_h]: one contiguous read per query row) with its
/// bounding box, and the chunks of each block get a ChunkTree. The boxes are float32, the rows'
/// own values. Where the driver orders the rows of a block spatially, chunks are small regions
/// and a query row skips most of them (box_sq_gap) before any distance.
struct RefChunks {
  std::vector<i64> rows;          ///< [n_kept] dataset rows in block order
  std::vector<i64> chunk_first;   ///< [n_chunks + 1] each chunk's first position in `rows`
  std::vector<float> values;      ///< [n_kept x d] the rows, column-major within each chunk
  ChunkTree tree;
  i64 n_chunks() const { return static_cast<i64>(chunk_first.size()) - 1; }
};

template <class KeepRef>
RefChunks ref_chunks(int team, HostRows r, const RowBlocks& rb, KeepRef keep_ref) {
  const i64 nb = rb.n_blocks(), d = r.d;
  RefChunks c;
  std::vector<i64> block_chunk;
  c.rows.reserve(rb.order.size());
  block_chunk.reserve(static_cast<std::size_t>(nb + 1));
  block_chunk.push_back(0);
  for (i64 b = 0; b < nb; ++b) {
    const i64 first = static_cast<i64>(c.rows.size());
    for (i64 p = rb.starts[b]; p < rb.starts[b + 1]; ++p)
      if (keep_ref(rb.order[static_cast<std::size_t>(p)])) c.rows.push_back(rb.order[static_cast<std::size_t>(p)]);
    for (i64 k = first; k < static_cast<i64>(c.rows.size()); k += kChunk) c.chunk_first.push_back(k);
    block_chunk.push_back(static_cast<i64>(c.chunk_first.size()));
  }
  c.chunk_first.push_back(static_cast<i64>(c.rows.size()));
  const i64 nc = c.n_chunks();
  c.values.resize(c.rows.size() * static_cast<std::size_t>(d));
  std::vector<float> clo(static_cast<std::size_t>(nc * d)), chi(static_cast<std::size_t>(nc * d));
#pragma omp parallel for schedule(static) num_threads(team)
  for (i64 h = 0; h < nc; ++h) {
    const i64 first = c.chunk_first[static_cast<std::size_t>(h)], m = c.chunk_first[static_cast<std::size_t>(h + 1)] - first;
    float* out = c.values.data() + first * d;
    float* lo = clo.data() + h * d;
    float* hi = chi.data() + h * d;
    for (i64 s = 0; s < m; ++s) {
      const float* y = r.rows + c.rows[static_cast<std::size_t>(first + s)] * d;
      for (i64 j = 0; j < d; ++j) {
        out[j * m + s] = y[j];
        lo[j] = s == 0 ? y[j] : std::min(lo[j], y[j]);
        hi[j] = s == 0 ? y[j] : std::max(hi[j], y[j]);
      }
    }
  }
  c.tree = chunk_tree(team, std::move(block_chunk), clo.data(), chi.data(), d);
  return c;
}

/// The box of the query rows listed in `which` (positions into x [. x d], double).
void rows_box(const double* x, const i64* which, i64 n, i64 d, double* lo, double* hi) {
  std::fill_n(lo, d, std::numeric_limits<double>::infinity());
  std::fill_n(hi, d, -std::numeric_limits<double>::infinity());
  for (i64 k = 0; k < n; ++k)
    for (i64 j = 0; j < d; ++j) {
      lo[j] = std::min(lo[j], x[which[k] * d + j]);
      hi[j] = std::max(hi[j], x[which[k] * d + j]);
    }
}

/// The walk over listed block pairs shared by eps_neighbour_weights and nearest_within_eps.
/// visit(q, r, d2): query row q (dataset index), reference row r, squared distance d2 <= eps².
/// `keep_ref(r)` filters reference rows before any distance.
/// `done(q)` true: query row q needs no more visits (checked before each chunk of reference rows;
/// the visitor itself ignores visits after it, so where a row stops does not depend on tiling).
/// Every query row is owned by one tile, so no result depends on the number of threads.
/// `bound(q)`: a chunk whose box lies farther than bound(q) <= eps² from q (box_sq_gap, exact) is
/// skipped for q; a visitor that only wants rows nearer than its best so far says so here (the
/// bound may only shrink).
/// `own_first` (query and reference the same blocks): the query's own block is visited first.
/// `any_order` false: each query row's visits come from one thread, in ascending candidate block
/// order (the own block first when own_first), then in the reference block's row order. True
/// (the caller's result does not depend on the order of visits): with `self_tiles` (query and
/// reference the same rows and blocks, no masks) the chunks at the tile's own positions first,
/// then the own block when own_first, then the other candidates nearest first, each block's
/// chunks nearest first, so that rows that stop early, or whose bound shrinks, do so sooner.
/// Query rows go in tiles of kQueryTile consecutive rows of one block. The tile's rows still
/// wanting visits walk each candidate block's chunk tree together, their box skipping runs of
/// chunks for all of them at once; then each row tests each chunk's box before its distances.
template <class KeepQuery, class KeepRef, class Visit, class Done, class Bound>
void for_pairs(int team, HostRows q, const RowBlocks& qb, HostRows r, const RowBlocks& rb,
               const BlockPairs& pairs, double eps, KeepQuery keep_query, KeepRef keep_ref, Visit visit, Done done,
               Bound bound, bool own_first, bool any_order, bool self_tiles = false) {
  check_blocks(qb, q.n, "query");
  check_blocks(rb, r.n, "reference");
  SEGFORGE_ASSERT(q.d == r.d, "query and reference differ in n_features");
  SEGFORGE_ASSERT(static_cast<i64>(pairs.offsets.size()) == qb.n_blocks() + 1, "pairs must list every query block");
  const i64 d = q.d;
  const double eps2 = eps * eps;
  // The query positions that pass the mask, cut into tiles within one block.
  std::vector<i64> active;
  std::vector<QueryTile> tiles;
  active.reserve(qb.order.size());
  for (i64 b = 0; b < qb.n_blocks(); ++b) {
    const i64 first = static_cast<i64>(active.size());
    for (i64 p = qb.starts[b]; p < qb.starts[b + 1]; ++p)
      if (keep_query(qb.order[p])) active.push_back(qb.order[p]);
    const i64 last = static_cast<i64>(active.size());
    if (pairs.offsets[b] == pairs.offsets[b + 1]) continue;
    for (i64 p = first; p < last; p += kQueryTile) tiles.push_back({b, p, std::min(last, p + kQueryTile)});
  }
  const i64 n_tiles = static_cast<i64>(tiles.size());
  if (n_tiles == 0) return;
  const RefChunks ref = ref_chunks(team, r, rb, keep_ref);
  const ChunkTree& tree = ref.tree;
  team = static_cast<int>(std::min<i64>(team, n_tiles));
#pragma omp parallel num_threads(team)
  {
    std::vector<double> qbuf(static_cast<std::size_t>(kQueryTile * d));
    std::vector<double> llo(static_cast<std::size_t>(d)), lhi(static_cast<std::size_t>(d));  // the live rows' box
    std::vector<double> centre(static_cast<std::size_t>(d));
    i64 live[kQueryTile];
    std::vector<std::tuple<double, i64, i64>> order;  // (distance key, chunk, its node)
    std::vector<std::pair<double, i64>> by_gap;       // (gap, candidate block)
    double acc[kChunk];
#pragma omp for schedule(dynamic, 1)
    for (i64 t = 0; t < n_tiles; ++t) {
      const QueryTile& tile = tiles[static_cast<std::size_t>(t)];
      const i64 nq = tile.p1 - tile.p0;
      const i64* qrows = active.data() + tile.p0;
      for (i64 i = 0; i < nq; ++i) {
        const float* x = q.rows + qrows[i] * d;
        for (i64 j = 0; j < d; ++j) qbuf[static_cast<std::size_t>(i * d + j)] = x[j];
      }
      // The rows still wanting visits (live) and, of those, the ones within reach of the block
      // at hand (near, with their box and their largest bound: beyond it no near row wants a
      // chunk). Bounds only shrink, so a box and reach taken at the block's start only skip less.
      i64 n_live = 0, n_near = 0;
      i64 near[kQueryTile];
      double reach = 0.0;
      const auto refresh = [&] {
        n_live = 0;
        for (i64 i = 0; i < nq; ++i)
          if (!done(qrows[i])) live[n_live++] = i;
        return n_live > 0;
      };
      const auto gather_near = [&](i64 b) {
        const float* blo = tree.block_lo(b, d);
        const float* bhi = tree.block_hi(b, d);
        n_near = 0;
        reach = 0.0;
        for (i64 k = 0; k < n_live; ++k) {
          const i64 i = live[k];
          const double bd = bound(qrows[i]);
          if (box_sq_gap(qbuf.data() + i * d, blo, bhi, d) <= bd) near[n_near++] = i, reach = std::max(reach, bd);
        }
        if (n_near == 0) return false;
        rows_box(qbuf.data(), near, n_near, d, llo.data(), lhi.data());
        for (i64 j = 0; j < d; ++j) centre[static_cast<std::size_t>(j)] = 0.5 * (llo[static_cast<std::size_t>(j)] + lhi[static_cast<std::size_t>(j)]);
        return true;
      };
      // Chunk h (level-0 node `node`) for the near rows; true when none wants more.
      const auto chunk = [&](i64 h, i64 node) {
        const float* lo = tree.lo.data() + node * d;
        const float* hi = tree.hi.data() + node * d;
        const i64 first = ref.chunk_first[static_cast<std::size_t>(h)];
        const i64 m = ref.chunk_first[static_cast<std::size_t>(h + 1)] - first;
        const i64* rrows = ref.rows.data() + first;
        bool left = false;
        for (i64 k = 0; k < n_near; ++k) {
          const i64 i = near[k];
          const i64 qrow = qrows[i];
          if (done(qrow)) continue;
          const double* x = qbuf.data() + i * d;
          if (box_sq_gap(x, lo, hi, d) <= bound(qrow)) {
            chunk_sq_distances(x, ref.values.data() + first * d, m, d, acc);
            for (i64 s = 0; s < m; ++s)
              if (acc[s] <= eps2) visit(qrow, rrows[s], acc[s]);
          }
          left = left || !done(qrow);
        }
        return !left;
      };
      const auto enter = [&](const float* lo, const float* hi, i64) {
        return boxes_sq_gap(llo.data(), lhi.data(), lo, hi, d) > reach ? 0 : 1;
      };
      const auto leaf_node = [&](i64 b, i64 h) {
        return tree.node0[static_cast<std::size_t>(b)] + h - tree.block_chunk[static_cast<std::size_t>(b)];
      };
      // Block b's chunks within reach of the near rows, nearest their centre first.
      i64 skip0 = 0, skip1 = 0;  // chunks already visited (the tile's own rows)
      const auto nearest_chunks = [&](i64 b) {
        order.clear();
        walk_block(tree, b, d, enter, [&](i64 h) {
          if (h >= skip0 && h < skip1) return false;
          const i64 node = leaf_node(b, h);
          order.push_back({box_sq_gap(centre.data(), tree.lo.data() + node * d, tree.hi.data() + node * d, d), h, node});
          return false;
        });
        std::sort(order.begin(), order.end());
        for (const auto& [key, h, node] : order)
          if (chunk(h, node)) return;
      };
      const auto empty = [&](i64 b) {
        return tree.block_chunk[static_cast<std::size_t>(b)] == tree.block_chunk[static_cast<std::size_t>(b + 1)];
      };
      const i64 a = tile.block;
      const i64 c0 = pairs.offsets[a], c1 = pairs.offsets[a + 1];
      const bool own = own_first && std::binary_search(pairs.targets.begin() + c0, pairs.targets.begin() + c1, a);
      if (any_order) {
        skip0 = skip1 = 0;
        if (self_tiles && own && refresh()) {
          // The tile's own rows are the chunk(s) at the same positions, where each row's nearest
          // rows are most likely (a chunk is one leaf of the driver's k-d order).
          skip0 = tree.block_chunk[static_cast<std::size_t>(a)] + (tile.p0 - qb.starts[a]) / kChunk;
          skip1 = skip0 + (nq + kChunk - 1) / kChunk;
          n_near = n_live;
          std::copy(live, live + n_live, near);
          for (i64 h = skip0; h < skip1; ++h)
            if (chunk(h, leaf_node(a, h))) break;
        }
        if (own && !empty(a) && refresh() && gather_near(a)) nearest_chunks(a);
        if (!refresh()) continue;
        rows_box(qbuf.data(), live, n_live, d, llo.data(), lhi.data());
        double live_reach = 0.0;
        for (i64 k = 0; k < n_live; ++k) live_reach = std::max(live_reach, bound(qrows[live[k]]));
        by_gap.clear();
        for (i64 c = c0; c < c1; ++c) {
          const i64 b = pairs.targets[static_cast<std::size_t>(c)];
          if ((own && b == a) || empty(b)) continue;
          const double g = boxes_sq_gap(llo.data(), lhi.data(), tree.block_lo(b, d), tree.block_hi(b, d), d);
          if (g <= live_reach) by_gap.push_back({g, b});
        }
        std::sort(by_gap.begin(), by_gap.end());
        for (const auto& [g, b] : by_gap) {
          if (!refresh()) break;
          if (gather_near(b)) nearest_chunks(b);
        }
        continue;
      }
      for (i64 c = own ? c0 - 1 : c0; c < c1; ++c) {
        const i64 b = c < c0 ? a : pairs.targets[static_cast<std::size_t>(c)];
        if ((own && c >= c0 && b == a) || empty(b)) continue;  // the own block was visited first
        if (!refresh()) break;
        if (!gather_near(b)) continue;
        walk_block(tree, b, d, enter, [&](i64 h) { return chunk(h, leaf_node(b, h)); });
      }
    }
  }
}

}  // namespace

Matrix<std::int64_t> grid_cells(int team, HostRows data, std::span<const std::int32_t> columns,
                                std::span<const double> origin, double side) {
  SEGFORGE_ASSERT(columns.size() == origin.size(), "one origin per grid column");
  SEGFORGE_ASSERT(side > 0.0, "grid side must be positive");
  const i64 p = static_cast<i64>(columns.size());
  Matrix<std::int64_t> out(data.n, p);
  const double limit = 1099511627776.0;  // 2^40: any coordinate beyond is clamped (still exact pruning)
#pragma omp parallel for schedule(static) num_threads(team)
  for (i64 i = 0; i < data.n; ++i)
    for (i64 c = 0; c < p; ++c) {
      const double v = std::floor((static_cast<double>(data.rows[i * data.d + columns[c]]) - origin[c]) / side);
      out(i, c) = static_cast<std::int64_t>(std::clamp(v, -limit, limit));
    }
  return out;
}

std::vector<double> eps_neighbour_weights(int team, HostRows data, const RowBlocks& blocks,
                                          const BlockPairs& pairs, double eps, double stop_at) {
  std::vector<double> out(static_cast<std::size_t>(data.n), 0.0);
  const float* w = data.weights;
  const double eps2 = eps * eps;
  auto done = [&](i64 q) { return out[static_cast<std::size_t>(q)] >= stop_at; };
  for_pairs(
      team, data, blocks, data, blocks, pairs, eps, [](i64) { return true; }, [](i64) { return true; },
      [&](i64 q, i64 r, double) {
        if (!done(q)) out[static_cast<std::size_t>(q)] += w ? static_cast<double>(w[r]) : 1.0;
      },
      done, [&](i64) { return eps2; }, /*own_first=*/true, /*any_order=*/w == nullptr,
      /*self_tiles=*/true);
  return out;
}

std::vector<std::int64_t> eps_lower_root(int team, HostRows data, const RowBlocks& blocks,
                                       const BlockPairs& pairs, double eps,
                                       std::span<const std::int64_t> roots) {
  SEGFORGE_ASSERT(static_cast<i64>(roots.size()) == data.n, "one root per row");
  check_blocks(blocks, data.n, "query");
  SEGFORGE_ASSERT(static_cast<i64>(pairs.offsets.size()) == blocks.n_blocks() + 1, "pairs must list every query block");
  std::vector<std::int64_t> out(roots.begin(), roots.end());
  const double eps2 = eps * eps;
  const i64 d = data.d;
  const i64 nb = blocks.n_blocks();
  // Each block's core rows (they come first) cut into chunks of consecutive rows (at most
  // kChunk, and a new one at a change of root once a chunk has kMinChunk rows and the new root
  // as many), each with its bounding box, its rows copied column-major and their roots, and a
  // ChunkTree over each block's chunks: a chunk is mostly rows of one root lying together (the
  // driver keeps a k-d order within each root's run), so a query row skips whole runs of chunks
  // beyond eps (boxes_sq_gap, box_sq_gap: exact) instead of scanning rows it cannot reach.
  constexpr i64 kMinChunk = 4;
  std::vector<i64> chunk_first;                              // position of each chunk's first row
  std::vector<i64> block_chunk(static_cast<std::size_t>(nb + 1), 0);
  std::vector<i64> core_end(static_cast<std::size_t>(nb));  // where each block's core rows end
  std::vector<i64> tile_first;                               // query tiles: kTile core rows of one block
  std::vector<i64> tile_block;
  constexpr i64 kTile = 32;
  for (i64 b = 0; b < nb; ++b) {
    block_chunk[static_cast<std::size_t>(b)] = static_cast<i64>(chunk_first.size());
    i64 size = 0;
    i64 p = blocks.starts[b];
    for (; p < blocks.starts[b + 1]; ++p) {
      const std::int64_t root = roots[static_cast<std::size_t>(blocks.order[static_cast<std::size_t>(p)])];
      if (root < 0) break;  // the core rows come first
      bool cut = size == 0 || size == kChunk;
      if (!cut && size >= kMinChunk && root != roots[static_cast<std::size_t>(blocks.order[static_cast<std::size_t>(p - 1)])]) {
        // A new root: a chunk of its own when its run is long enough to fill one (unique keys,
        // as in a first pass over positions, keep chunks of kChunk consecutive rows).
        i64 run = 1;
        while (run < kMinChunk && p + run < blocks.starts[b + 1] &&
               roots[static_cast<std::size_t>(blocks.order[static_cast<std::size_t>(p + run)])] == root)
          ++run;
        cut = run == kMinChunk;
      }
      if (cut) {
        chunk_first.push_back(p);
        size = 0;
      }
      ++size;
    }
    core_end[static_cast<std::size_t>(b)] = p;
    if (pairs.offsets[b] < pairs.offsets[b + 1])
      for (i64 t = blocks.starts[b]; t < p; t += kTile) tile_first.push_back(t), tile_block.push_back(b);
  }
  block_chunk[static_cast<std::size_t>(nb)] = static_cast<i64>(chunk_first.size());
  const i64 n_chunks = static_cast<i64>(chunk_first.size());
  const i64 n_tiles = static_cast<i64>(tile_first.size());
  if (n_tiles == 0) return out;
  auto chunk_end = [&](i64 c, i64 b) {
    return c + 1 < block_chunk[static_cast<std::size_t>(b + 1)] ? chunk_first[static_cast<std::size_t>(c + 1)]
                                                              : core_end[static_cast<std::size_t>(b)];
  };
  std::vector<i64> chunk_block(static_cast<std::size_t>(n_chunks));
  for (i64 b = 0; b < nb; ++b)
    for (i64 c = block_chunk[static_cast<std::size_t>(b)]; c < block_chunk[static_cast<std::size_t>(b + 1)]; ++c)
      chunk_block[static_cast<std::size_t>(c)] = b;
  // Chunk rows copied at their block positions (non-core positions unused), column-major within
  // each chunk; their roots likewise.
  std::vector<float> values(static_cast<std::size_t>(data.n * d));
  std::vector<std::int64_t> proot(static_cast<std::size_t>(data.n), -1);
  std::vector<float> lo(static_cast<std::size_t>(n_chunks * d)), hi(static_cast<std::size_t>(n_chunks * d));
#pragma omp parallel for schedule(static) num_threads(team)
  for (i64 c = 0; c < n_chunks; ++c) {
    const i64 b = chunk_block[static_cast<std::size_t>(c)];
    const i64 first = chunk_first[static_cast<std::size_t>(c)], m = chunk_end(c, b) - first;
    for (i64 s = 0; s < m; ++s) {
      const i64 row = blocks.order[static_cast<std::size_t>(first + s)];
      const float* y = data.rows + row * d;
      proot[static_cast<std::size_t>(first + s)] = roots[static_cast<std::size_t>(row)];
      for (i64 j = 0; j < d; ++j) {
        values[static_cast<std::size_t>(first * d + j * m + s)] = y[j];
        float& l = lo[static_cast<std::size_t>(c * d + j)];
        float& h = hi[static_cast<std::size_t>(c * d + j)];
        l = s == 0 ? y[j] : std::min(l, y[j]);
        h = s == 0 ? y[j] : std::max(h, y[j]);
      }
    }
  }
  const ChunkTree tree = chunk_tree(team, block_chunk, lo.data(), hi.data(), d);
  std::vector<float>().swap(lo);
  std::vector<float>().swap(hi);
  // Query rows in tiles of kTile consecutive core rows of one block, each row stopping at the
  // first core row within eps whose root is lower, in the op's order: the own block first, then
  // the other candidates ascending, each block's chunks in order. Within a block the roots
  // ascend, so a row leaves a block at the first chunk (or row) whose root is not lower than
  // its own. Walking the chunk tree in that order for the tile's rows still looking keeps each
  // row's order; their box and their largest root let them skip runs of chunks at once.
#pragma omp parallel num_threads(team)
  {
    std::vector<double> x(static_cast<std::size_t>(kTile * d));
    std::vector<double> tlo(static_cast<std::size_t>(d)), thi(static_cast<std::size_t>(d));
    std::int64_t mine[kTile], found[kTile];
    i64 live[kTile];
    double acc[kChunk];
#pragma omp for schedule(dynamic, 4)
    for (i64 t = 0; t < n_tiles; ++t) {
      const i64 a = tile_block[static_cast<std::size_t>(t)];
      const i64 p0 = tile_first[static_cast<std::size_t>(t)];
      const i64 nq = std::min(kTile, core_end[static_cast<std::size_t>(a)] - p0);
      for (i64 i = 0; i < nq; ++i) {
        const i64 q = blocks.order[static_cast<std::size_t>(p0 + i)];
        mine[i] = found[i] = roots[static_cast<std::size_t>(q)];
        const float* y = data.rows + q * d;
        for (i64 j = 0; j < d; ++j) x[static_cast<std::size_t>(i * d + j)] = y[j];
      }
      const i64 c0 = pairs.offsets[a], c1 = pairs.offsets[a + 1];
      const bool own = std::binary_search(pairs.targets.begin() + c0, pairs.targets.begin() + c1, a);
      i64 n_live = 0;  // the rows still looking, their box and largest root: recomputed when one is found
      bool stale = true;
      std::int64_t top = -1;
      for (i64 c = own ? c0 - 1 : c0; c < c1; ++c) {
        const i64 b = c < c0 ? a : pairs.targets[static_cast<std::size_t>(c)];
        if (c >= c0 && b == a) continue;  // the own block came first
        if (block_chunk[static_cast<std::size_t>(b)] == block_chunk[static_cast<std::size_t>(b + 1)]) continue;
        if (stale) {
          stale = false;
          n_live = 0;
          top = -1;
          for (i64 i = 0; i < nq; ++i)
            if (found[i] == mine[i]) live[n_live++] = i, top = std::max(top, mine[i]);
          if (n_live == 0) break;
          rows_box(x.data(), live, n_live, d, tlo.data(), thi.data());
        }
        walk_block(
            tree, b, d,
            [&](const float* nlo, const float* nhi, i64 h) {
              // Chunks from h on hold only roots >= h's first: none lower than any live row's.
              if (proot[static_cast<std::size_t>(chunk_first[static_cast<std::size_t>(h)])] >= top) return 2;
              return boxes_sq_gap(tlo.data(), thi.data(), nlo, nhi, d) > eps2 ? 0 : 1;
            },
            [&](i64 h) {
              const i64 first = chunk_first[static_cast<std::size_t>(h)];
              const std::int64_t first_root = proot[static_cast<std::size_t>(first)];
              const float* clo = tree.lo.data() + (tree.node0[static_cast<std::size_t>(b)] + h - block_chunk[static_cast<std::size_t>(b)]) * d;
              const float* chi = tree.hi.data() + (tree.node0[static_cast<std::size_t>(b)] + h - block_chunk[static_cast<std::size_t>(b)]) * d;
              const i64 m = chunk_end(h, b) - first;
              const std::int64_t* croot = proot.data() + first;
              for (i64 k = 0; k < n_live; ++k) {
                const i64 i = live[k];
                if (found[i] != mine[i] || first_root >= mine[i]) continue;
                const double* xi = x.data() + i * d;
                if (box_sq_gap(xi, clo, chi, d) > eps2) continue;
                chunk_sq_distances(xi, values.data() + first * d, m, d, acc);
                for (i64 s = 0; s < m; ++s) {
                  if (croot[s] >= mine[i]) break;  // no lower root further in this block
                  if (acc[s] <= eps2) {
                    found[i] = croot[s];
                    stale = true;
                    break;
                  }
                }
              }
              return false;
            });
      }
      for (i64 i = 0; i < nq; ++i) out[static_cast<std::size_t>(blocks.order[static_cast<std::size_t>(p0 + i)])] = found[i];
    }
  }
  return out;
}

void nearest_within_eps(int team, HostRows query, const RowBlocks& query_blocks,
                        std::span<const std::uint8_t> query_mask, HostRows reference,
                        const RowBlocks& reference_blocks, std::span<const std::uint8_t> reference_mask,
                        const BlockPairs& pairs, double eps, std::span<std::int64_t> nearest,
                        std::span<double> sq_distances) {
  SEGFORGE_ASSERT(static_cast<i64>(nearest.size()) == query.n && static_cast<i64>(sq_distances.size()) == query.n,
                  "one output per query row");
  SEGFORGE_ASSERT(query_mask.empty() || static_cast<i64>(query_mask.size()) == query.n, "one query mask per row");
  SEGFORGE_ASSERT(reference_mask.empty() || static_cast<i64>(reference_mask.size()) == reference.n,
                  "one reference mask per row");
  std::fill(nearest.begin(), nearest.end(), -1);
  std::fill(sq_distances.begin(), sq_distances.end(), std::numeric_limits<double>::infinity());
  const double eps2 = eps * eps;
  // The result is the least (distance, row) pair within eps, whatever the order of visits, so a
  // chunk whose box lies beyond the best distance so far (box_sq_gap > best: every computed
  // distance in it is larger) cannot change it, and the own block, where the nearest row
  // usually is, goes first when both sides share their blocks.
  const bool same = &query_blocks == &reference_blocks && query.rows == reference.rows;
  for_pairs(
      team, query, query_blocks, reference, reference_blocks, pairs, eps,
      [&](i64 i) { return query_mask.empty() || query_mask[static_cast<std::size_t>(i)] != 0; },
      [&](i64 i) { return reference_mask.empty() || reference_mask[static_cast<std::size_t>(i)] != 0; },
      [&](i64 q, i64 r, double d2) {
        auto& best = nearest[static_cast<std::size_t>(q)];
        auto& best_d2 = sq_distances[static_cast<std::size_t>(q)];
        if (d2 < best_d2 || (d2 == best_d2 && r < best)) {
          best = r;
          best_d2 = d2;
        }
      },
      [](i64) { return false; }, [&](i64 q) { return std::min(eps2, sq_distances[static_cast<std::size_t>(q)]); },
      /*own_first=*/same, /*any_order=*/true);
}

}  // namespace segforge::cpu
