// Distance matrix file: /distances float32 [rows x cols], chunked so that tiles written in any
// order land in whole chunks; written to a temporary file that commit() renames into place.

#include <algorithm>

#include "atomic_file.hpp"
#include "hdf5_util.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"

namespace segforge {

struct DistanceMatrixWriter::Impl {
  // Declaration order matters: the HDF5 handles close before `out` removes the temporary file.
  io::TempOutput out;
  io::Hid file;
  io::Hid dataset;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  bool committed = false;

  explicit Impl(const std::string& path) : out(path) {}
};

DistanceMatrixWriter::DistanceMatrixWriter(const std::string& path, std::int64_t rows,
                                           std::int64_t cols,
                                           const std::map<std::string, std::string>& attributes)
    : impl_(std::make_unique<Impl>(path)) {
  SEGFORGE_ASSERT(rows >= 0 && cols >= 0, "negative distance matrix shape");
  impl_->rows = rows;
  impl_->cols = cols;
  impl_->file = io::create_file(impl_->out.temp_path(), path);
  const std::vector<hsize_t> dims = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  // 256 x 1024 float32 chunks (1 MB): a row band of tiles fills whole chunks.
  const std::vector<hsize_t> chunk = {std::clamp<hsize_t>(dims[0], 1, 256),
                                      std::clamp<hsize_t>(dims[1], 1, 1024)};
  io::write_dataset(impl_->file, "distances", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, nullptr, path,
                    chunk);
  // Cache one full band of chunks so tiles narrower than a chunk do not rewrite it repeatedly.
  const hsize_t band_chunks = (dims[1] + chunk[1] - 1) / chunk[1] + 1;
  const std::size_t cache_bytes = std::min<std::size_t>(
      band_chunks * chunk[0] * chunk[1] * sizeof(float), std::size_t{256} << 20);
  io::Hid dapl = io::plist_id(H5Pcreate(H5P_DATASET_ACCESS));
  if (dapl.valid())
    H5Pset_chunk_cache(dapl, 12421, std::max<std::size_t>(cache_bytes, 1u << 20), 1.0);
  impl_->dataset =
      io::dataset_id(H5Dopen2(impl_->file, "distances", dapl.valid() ? dapl.get() : H5P_DEFAULT));
  if (!impl_->dataset.valid()) io::write_failed(path, "dataset 'distances'");
  io::write_root_attributes(impl_->file, "segforge-distances", attributes, path);
}

DistanceMatrixWriter::~DistanceMatrixWriter() = default;

void DistanceMatrixWriter::write(std::int64_t row, std::int64_t col, MatrixView<const float> tile) {
  SEGFORGE_ASSERT(!impl_->committed, "DistanceMatrixWriter::write after commit");
  SEGFORGE_ASSERT(row >= 0 && col >= 0 && tile.rows >= 0 && tile.cols >= 0 &&
                      row + tile.rows <= impl_->rows && col + tile.cols <= impl_->cols,
                  "distance tile outside the matrix");
  if (tile.rows == 0 || tile.cols == 0) return;
  const std::string& path = impl_->out.path();
  const hsize_t start[2] = {static_cast<hsize_t>(row), static_cast<hsize_t>(col)};
  const hsize_t count[2] = {static_cast<hsize_t>(tile.rows), static_cast<hsize_t>(tile.cols)};
  io::Hid file_space = io::space_id(H5Dget_space(impl_->dataset));
  io::Hid mem_space = io::space_id(H5Screate_simple(2, count, nullptr));
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
      H5Dwrite(impl_->dataset, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, tile.data) < 0)
    io::write_failed(path,
                     "distances at row " + std::to_string(row) + ", column " + std::to_string(col));
}

void DistanceMatrixWriter::commit() {
  SEGFORGE_ASSERT(!impl_->committed, "DistanceMatrixWriter::commit called twice");
  const std::string& path = impl_->out.path();
  if (!impl_->dataset.close()) io::write_failed(path, "dataset 'distances' (closing it)");
  if (!impl_->file.close()) io::write_failed(path, "the file (closing it)");
  impl_->out.commit();
  impl_->committed = true;
}

}  // namespace segforge
