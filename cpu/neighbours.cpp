// The CPU backend's eps-neighbour ops (neighbours.hpp).

#include "neighbours.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "segforge/error.hpp"

namespace segforge::cpu {
namespace {

using i64 = std::int64_t;

/// Query rows per tile, and reference rows widened to double at a time.
constexpr i64 kQueryTile = 64;
constexpr i64 kRefTile = 256;

/// A tile of query rows: positions [p0, p1) of one query block's rows, after the query mask.
struct QueryTile {
  i64 block;
  i64 p0, p1;  ///< into `active` (the query positions that pass the mask)
};

/// Σ_j (x_j − y_j)² over j ascending in double (never fused: -ffp-contract=off).
double exact_sq_distance(const float* x, const float* y, i64 d) {
  double s = 0.0;
  for (i64 j = 0; j < d; ++j) {
    const double v = static_cast<double>(x[j]) - y[j];
    s += v * v;
  }
  return s;
}

/// Each block's bounding box over every column, in double: [n_blocks x d] lower and upper ends.
struct BlockBoxes {
  std::vector<double> lo, hi;
};

BlockBoxes block_boxes(int team, HostRows rows, const RowBlocks& blocks) {
  const i64 nb = blocks.n_blocks(), d = rows.d;
  BlockBoxes box;
  box.lo.assign(static_cast<std::size_t>(nb * d), std::numeric_limits<double>::infinity());
  box.hi.assign(static_cast<std::size_t>(nb * d), -std::numeric_limits<double>::infinity());
#pragma omp parallel for schedule(dynamic, 64) num_threads(team)
  for (i64 b = 0; b < nb; ++b) {
    double* lo = box.lo.data() + b * d;
    double* hi = box.hi.data() + b * d;
    for (i64 p = blocks.starts[b]; p < blocks.starts[b + 1]; ++p) {
      const float* y = rows.rows + blocks.order[static_cast<std::size_t>(p)] * d;
      for (i64 j = 0; j < d; ++j) {
        lo[j] = std::min(lo[j], static_cast<double>(y[j]));
        hi[j] = std::max(hi[j], static_cast<double>(y[j]));
      }
    }
  }
  return box;
}

/// A lower bound of the squared distance from x to any row in the box: Σ_j gap_j² over j
/// ascending in double, gap_j the distance from x_j to [lo_j, hi_j]. Each |x_j − y_j| rounds to
/// at least gap_j and rounding is monotonic, so with the same order of summation a bound above
/// eps² proves every row of the box farther than eps as exact_sq_distance (and the tiles below)
/// compute it: skipping such blocks changes no result.
double box_sq_gap(const float* x, const double* lo, const double* hi, i64 d) {
  double s = 0.0;
  for (i64 j = 0; j < d; ++j) {
    const double v = static_cast<double>(x[j]);
    const double g = v < lo[j] ? lo[j] - v : v > hi[j] ? v - hi[j] : 0.0;
    s += g * g;
  }
  return s;
}

void check_blocks(const RowBlocks& blocks, i64 n, const char* what) {
  SEGFORGE_ASSERT(static_cast<i64>(blocks.order.size()) == n, std::string(what) + " blocks must order every row");
  SEGFORGE_ASSERT(!blocks.starts.empty() && blocks.starts.front() == 0 && blocks.starts.back() == n,
                  std::string(what) + " blocks must start at 0 and end at n");
}

/// For every query tile, calls visit(tile_rows, n_tile, ref_row, d2s...) ... see for_pairs.
/// visit(q, r, d2): query row q (dataset index), reference row r, squared distance d2 <= eps².
/// Each query row's visits come from one thread, in ascending candidate block order, then in the
/// reference block's row order. `keep_ref(r)` filters reference rows before any distance.
/// `done(q)` true: query row q needs no more visits (checked before each tile of reference rows;
/// the visitor itself ignores visits after it, so where a row stops does not depend on tiling).
/// `own_first` (query and reference the same blocks): the query's own block is visited first,
/// then the other candidates in ascending order.
template <class KeepQuery, class KeepRef, class Visit, class Done>
void for_pairs(int team, HostRows q, const RowBlocks& qb, HostRows r, const RowBlocks& rb,
               const BlockPairs& pairs, double eps, KeepQuery keep_query, KeepRef keep_ref, Visit visit, Done done,
               bool own_first = false) {
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
  const BlockBoxes box = block_boxes(team, r, rb);
  team = static_cast<int>(std::min<i64>(team, n_tiles));
#pragma omp parallel num_threads(team)
  {
    std::vector<double> qbuf(static_cast<std::size_t>(kQueryTile * d));
    std::vector<double> tbuf(static_cast<std::size_t>(kRefTile * d));  // column-major [d x kRefTile]
    std::vector<i64> trow(static_cast<std::size_t>(kRefTile));
    std::vector<double> acc(static_cast<std::size_t>(kRefTile));
    std::vector<std::uint8_t> far(static_cast<std::size_t>(kQueryTile));  // the block's box is beyond eps
#pragma omp for schedule(dynamic, 1)
    for (i64 t = 0; t < n_tiles; ++t) {
      const QueryTile& tile = tiles[static_cast<std::size_t>(t)];
      const i64 nq = tile.p1 - tile.p0;
      for (i64 i = 0; i < nq; ++i) {
        const float* x = q.rows + active[static_cast<std::size_t>(tile.p0 + i)] * d;
        for (i64 j = 0; j < d; ++j) qbuf[static_cast<std::size_t>(i * d + j)] = x[j];
      }
      auto all_done = [&] {
        for (i64 i = 0; i < nq; ++i)
          if (!done(active[static_cast<std::size_t>(tile.p0 + i)])) return false;
        return true;
      };
      const i64 c0 = pairs.offsets[tile.block], c1 = pairs.offsets[tile.block + 1];
      const bool own = own_first && std::binary_search(pairs.targets.begin() + c0, pairs.targets.begin() + c1, tile.block);
      for (i64 c = own ? c0 - 1 : c0; c < c1 && !all_done(); ++c) {
        const i64 b = c < c0 ? tile.block : pairs.targets[static_cast<std::size_t>(c)];
        if (own && c >= c0 && b == tile.block) continue;  // visited first
        bool any = false;
        for (i64 i = 0; i < nq; ++i) {
          const i64 qrow = active[static_cast<std::size_t>(tile.p0 + i)];
          far[static_cast<std::size_t>(i)] =
              done(qrow) || box_sq_gap(q.rows + qrow * d, box.lo.data() + b * d, box.hi.data() + b * d, d) > eps2;
          any = any || !far[static_cast<std::size_t>(i)];
        }
        if (!any) continue;
        i64 p = rb.starts[b];
        const i64 end = rb.starts[b + 1];
        while (p < end && !all_done()) {
          // The next (up to) kRefTile reference rows that pass keep_ref, widened column-major.
          i64 nt = 0;
          for (; p < end && nt < kRefTile; ++p) {
            const i64 row = rb.order[p];
            if (!keep_ref(row)) continue;
            const float* y = r.rows + row * d;
            for (i64 j = 0; j < d; ++j) tbuf[static_cast<std::size_t>(j * kRefTile + nt)] = y[j];
            trow[static_cast<std::size_t>(nt)] = row;
            ++nt;
          }
          for (i64 i = 0; i < nq; ++i) {
            if (far[static_cast<std::size_t>(i)] || done(active[static_cast<std::size_t>(tile.p0 + i)])) continue;
            const double* x = qbuf.data() + i * d;
            std::fill_n(acc.data(), nt, 0.0);
            for (i64 j = 0; j < d; ++j) {
              const double xj = x[j];
              const double* col = tbuf.data() + j * kRefTile;
              for (i64 s = 0; s < nt; ++s) {
                const double v = xj - col[s];
                acc[static_cast<std::size_t>(s)] += v * v;
              }
            }
            const i64 qrow = active[static_cast<std::size_t>(tile.p0 + i)];
            for (i64 s = 0; s < nt; ++s)
              if (acc[static_cast<std::size_t>(s)] <= eps2) visit(qrow, trow[static_cast<std::size_t>(s)], acc[static_cast<std::size_t>(s)]);
          }
        }
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
  auto done = [&](i64 q) { return out[static_cast<std::size_t>(q)] >= stop_at; };
  for_pairs(
      team, data, blocks, data, blocks, pairs, eps, [](i64) { return true; }, [](i64) { return true; },
      [&](i64 q, i64 r, double) {
        if (!done(q)) out[static_cast<std::size_t>(q)] += w ? static_cast<double>(w[r]) : 1.0;
      },
      done, /*own_first=*/true);
  return out;
}

std::vector<std::int64_t> eps_lower_root(int team, HostRows data, const RowBlocks& blocks,
                                       const BlockPairs& pairs, double eps,
                                       std::span<const std::int64_t> roots) {
  SEGFORGE_ASSERT(static_cast<i64>(roots.size()) == data.n, "one root per row");
  check_blocks(blocks, data.n, "query");
  std::vector<std::int64_t> out(roots.begin(), roots.end());
  const double eps2 = eps * eps;
  const i64 d = data.d;
  const i64 nb = blocks.n_blocks();
  // Each block's core rows cut into chunks of consecutive rows (at most kChunk, and a new one
  // at a change of root once a chunk has kMinChunk rows), each with its bounding box: after the
  // first pass a chunk is mostly rows of one component, which lie together, so a query row skips
  // whole chunks beyond eps (box_sq_gap: exact) instead of scanning rows it cannot reach.
  constexpr i64 kChunk = 16, kMinChunk = 4;
  std::vector<i64> chunk_start;                      // position of each chunk's first row
  std::vector<i64> block_chunks(static_cast<std::size_t>(nb + 1), 0);
  std::vector<i64> core_end(static_cast<std::size_t>(nb));  // where each block's core rows end
  for (i64 b = 0; b < nb; ++b) {
    block_chunks[static_cast<std::size_t>(b)] = static_cast<i64>(chunk_start.size());
    i64 size = 0;
    i64 p = blocks.starts[b];
    for (; p < blocks.starts[b + 1]; ++p) {
      const std::int64_t root = roots[static_cast<std::size_t>(blocks.order[static_cast<std::size_t>(p)])];
      if (root < 0) break;  // the core rows come first
      const bool changed = size > 0 && root != roots[static_cast<std::size_t>(blocks.order[static_cast<std::size_t>(p - 1)])];
      if (size == 0 || size == kChunk || (changed && size >= kMinChunk)) {
        chunk_start.push_back(p);
        size = 0;
      }
      ++size;
    }
    core_end[static_cast<std::size_t>(b)] = p;
  }
  block_chunks[static_cast<std::size_t>(nb)] = static_cast<i64>(chunk_start.size());
  const i64 n_chunks = static_cast<i64>(chunk_start.size());
  auto chunk_end = [&](i64 c, i64 b) {
    return c + 1 < block_chunks[static_cast<std::size_t>(b + 1)] ? chunk_start[static_cast<std::size_t>(c + 1)]
                                                              : core_end[static_cast<std::size_t>(b)];
  };
  std::vector<i64> chunk_block(static_cast<std::size_t>(n_chunks));
  for (i64 b = 0; b < nb; ++b)
    for (i64 c = block_chunks[static_cast<std::size_t>(b)]; c < block_chunks[static_cast<std::size_t>(b + 1)]; ++c)
      chunk_block[static_cast<std::size_t>(c)] = b;
  std::vector<double> lo(static_cast<std::size_t>(n_chunks * d), std::numeric_limits<double>::infinity());
  std::vector<double> hi(static_cast<std::size_t>(n_chunks * d), -std::numeric_limits<double>::infinity());
#pragma omp parallel for schedule(static) num_threads(team)
  for (i64 c = 0; c < n_chunks; ++c) {
    const i64 b = chunk_block[static_cast<std::size_t>(c)];
    for (i64 p = chunk_start[static_cast<std::size_t>(c)]; p < chunk_end(c, b); ++p) {
      const float* y = data.rows + blocks.order[static_cast<std::size_t>(p)] * d;
      for (i64 j = 0; j < d; ++j) {
        lo[static_cast<std::size_t>(c * d + j)] = std::min(lo[static_cast<std::size_t>(c * d + j)], static_cast<double>(y[j]));
        hi[static_cast<std::size_t>(c * d + j)] = std::max(hi[static_cast<std::size_t>(c * d + j)], static_cast<double>(y[j]));
      }
    }
  }
  // One query row at a time; it stops at the first core row within eps whose root is lower. In
  // each block the core rows come in ascending root order, so a block is left at the first root
  // that is not lower. The own block first: neighbours are likeliest there.
#pragma omp parallel for schedule(dynamic, 16) num_threads(team)
  for (i64 a = 0; a < nb; ++a) {
    const i64 c0 = pairs.offsets[a], c1 = pairs.offsets[a + 1];
    const bool own = std::binary_search(pairs.targets.begin() + c0, pairs.targets.begin() + c1, a);
    for (i64 p = blocks.starts[a]; p < blocks.starts[a + 1]; ++p) {
      const i64 q = blocks.order[static_cast<std::size_t>(p)];
      const std::int64_t mine = roots[static_cast<std::size_t>(q)];
      if (mine < 0) continue;
      const float* x = data.rows + q * d;
      std::int64_t found = mine;
      for (i64 c = own ? c0 - 1 : c0; c < c1 && found == mine; ++c) {
        const i64 b = c < c0 ? a : pairs.targets[static_cast<std::size_t>(c)];
        if (c >= c0 && b == a) continue;  // the own block came first
        for (i64 h = block_chunks[static_cast<std::size_t>(b)]; h < block_chunks[static_cast<std::size_t>(b + 1)] && found == mine; ++h) {
          const i64 first = chunk_start[static_cast<std::size_t>(h)];
          if (roots[static_cast<std::size_t>(blocks.order[static_cast<std::size_t>(first)])] >= mine) break;
          if (box_sq_gap(x, lo.data() + h * d, hi.data() + h * d, d) > eps2) continue;
          for (i64 k = first, end = chunk_end(h, b); k < end; ++k) {
            const i64 r = blocks.order[static_cast<std::size_t>(k)];
            const std::int64_t root = roots[static_cast<std::size_t>(r)];
            if (root < 0 || root >= mine) break;  // no lower root further in this block
            if (exact_sq_distance(x, data.rows + r * d, d) <= eps2) {
              found = root;
              break;
            }
          }
        }
      }
      out[static_cast<std::size_t>(q)] = found;
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
      [](i64) { return false; });
}

}  // namespace segforge::cpu
