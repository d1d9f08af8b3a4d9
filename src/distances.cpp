#include "segforge/distances.hpp"

#include <algorithm>

#include "segforge/io.hpp"

namespace segforge {

void write_distance_matrix(Backend& backend, const Dataset& a, const Dataset& b, bool squared,
                           const std::string& path, std::int64_t tile_rows,
                           std::int64_t tile_cols, const ProgressFn& progress) {
  const std::int64_t rows = a.n_samples();
  const std::int64_t cols = b.n_samples();
  DistanceMatrixWriter writer(path, rows, cols,
                              {{"metric", "euclidean"}, {"squared", squared ? "true" : "false"}});
  for (std::int64_t i = 0; i < rows; i += tile_rows) {
    const std::int64_t n_i = std::min(tile_rows, rows - i);
    for (std::int64_t j = 0; j < cols; j += tile_cols) {
      const std::int64_t n_j = std::min(tile_cols, cols - j);
      const Matrix<float> tile = backend.distance_tile(a, i, n_i, b, j, n_j, squared);
      writer.write(i, j, tile.view());
    }
    if (progress) progress({"distances", 0, i + n_i, rows});
  }
  writer.commit();
}

}  // namespace segforge
