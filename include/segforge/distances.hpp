#pragma once
// Pairwise distance matrices, tiled through the Backend and written to HDF5 as they are made.

#include <string>

#include "segforge/backend.hpp"
#include "segforge/kmeans.hpp"

namespace segforge {

/// Writes /distances [a.n_samples x b.n_samples] float32 to `path` (atomically), Euclidean or
/// squared Euclidean, in tiles of at most `tile_rows` x `tile_cols`.
void write_distance_matrix(Backend& backend, const Dataset& a, const Dataset& b, bool squared,
                           const std::string& path, std::int64_t tile_rows = 2048,
                           std::int64_t tile_cols = 8192, const ProgressFn& progress = {});

}  // namespace segforge
