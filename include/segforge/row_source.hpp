#pragma once
// Rows that stay on disk. The out-of-core path (Backend::stream) reads a feature matrix larger
// than the memory budget window by window through a RowSource, instead of uploading it whole.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace segforge {

/// Rows mapped read-only from their file (RowSource::map), valid until this is destroyed.
class MappedRows {
 public:
  virtual ~MappedRows() = default;
  const float* rows() const { return rows_; }

 protected:
  const float* rows_ = nullptr;
};

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual std::int64_t n_rows() const = 0;
  virtual std::int64_t n_cols() const = 0;
  /// Rows [begin, begin + count) into out [count x n_cols], as float32. A NaN or Inf is an
  /// InputError naming the file, row and column. Calls may come from any one thread at a time.
  virtual void read(std::int64_t begin, std::int64_t count, float* out) = 0;
  /// Rows [begin, begin + count) in place, where the file stores them as float32 in one range of
  /// bytes: mapped from the file, no copy (the page cache's pages themselves), checked for
  /// NaN/Inf as read() checks them. Null where they are not stored so (then read()).
  virtual std::unique_ptr<MappedRows> map(std::int64_t /*begin*/, std::int64_t /*count*/) {
    return nullptr;
  }
  /// The rows listed (any order, repeats allowed) into out [rows.size() x n_cols].
  virtual void read_rows(std::span<const std::int64_t> rows, float* out) = 0;
  /// "features.h5:/features", for messages.
  virtual std::string where() const = 0;
};

/// Rows [row_begin, row_begin + row_count) of a 2-D HDF5 dataset (row_count < 0: to the end),
/// read with hyperslab selections. InputError when the file or dataset is unusable, as
/// read_features. Implemented in src/io.
std::unique_ptr<RowSource> open_hdf5_rows(const std::string& path, const std::string& dataset,
                                          std::int64_t row_begin = 0, std::int64_t row_count = -1);

}  // namespace segforge
