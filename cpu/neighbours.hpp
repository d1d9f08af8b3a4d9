#pragma once
// The CPU backend's eps-neighbour ops (DBSCAN): distances between the rows of listed block
// pairs, never a neighbour list. Query rows are processed in tiles of one block; each query row
// is owned by one tile, so results are the same for any thread count. Where a result depends on
// the order of visits (weights other than 1, the first lower root) a row takes the candidate
// blocks and their rows in the op's order; where it does not (unit weights stopped at stop_at,
// the nearest row), nearest chunks first.
//
// Each call cuts every block's rows into chunks of consecutive rows with their bounding boxes and
// a tree of boxes over runs of chunks; a row skips a chunk or run whose box lies beyond eps. The
// bound never exceeds a computed distance (rounding is monotonic, neighbours.cpp), so skipping
// changes no result; it skips much where the driver orders each block's rows spatially.
//
// A distance is Σ_j (x_j − y_j)² over j ascending in double (the float32 values widened; the
// difference of two floats is exact in double), compared with eps², as scikit-learn's trees do.
// This file is compiled with -ffp-contract=off, so the sum is never fused.

#include <cstdint>
#include <span>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/matrix.hpp"

namespace segforge::cpu {

/// Rows in host memory: [n x d] row-major, optional weights [n] (nullptr: all 1).
struct HostRows {
  const float* rows = nullptr;
  std::int64_t n = 0;
  std::int64_t d = 0;
  const float* weights = nullptr;
};

Matrix<std::int64_t> grid_cells(int team, HostRows data, std::span<const std::int32_t> columns,
                                std::span<const double> origin, double side);

std::vector<double> eps_neighbour_weights(int team, HostRows data, const RowBlocks& blocks,
                                          const BlockPairs& pairs, double eps, double stop_at);

std::vector<std::int64_t> eps_lower_root(int team, HostRows data, const RowBlocks& blocks,
                                       const BlockPairs& pairs, double eps,
                                       std::span<const std::int64_t> roots);

void nearest_within_eps(int team, HostRows query, const RowBlocks& query_blocks,
                        std::span<const std::uint8_t> query_mask, HostRows reference,
                        const RowBlocks& reference_blocks, std::span<const std::uint8_t> reference_mask,
                        const BlockPairs& pairs, double eps, std::span<std::int64_t> nearest,
                        std::span<double> sq_distances);

}  // namespace segforge::cpu
