// HDF5 rows for the out-of-core path: contiguous windows by hyperslab, scattered rows (mini-batch
// batches, samples) by one point selection per call, both converted to float32 by HDF5.

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "hdf5_util.hpp"
#include "segforge/error.hpp"
#include "segforge/row_source.hpp"

namespace segforge {

namespace {

class Hdf5Rows final : public RowSource {
 public:
  Hdf5Rows(const std::string& path, const std::string& dataset, std::int64_t row_begin,
           std::int64_t row_count)
      : path_(path), object_(io::absolute_object(dataset.empty() ? "/features" : dataset)),
        file_(io::open_for_read(path)),
        matrix_(io::open_matrix(file_, path, object_, "pass the feature matrix's dataset with --dataset",
                                "[n_samples x n_features]")) {
    SEGFORGE_ASSERT(row_begin >= 0 && row_begin <= matrix_.rows, "row source: row_begin out of range");
    first_ = row_begin;
    n_ = row_count < 0 ? matrix_.rows - row_begin : std::min(row_count, matrix_.rows - row_begin);
    if (matrix_.rows == 0) throw InputError(where() + ": 0 rows; nothing to cluster");
    if (matrix_.cols == 0) throw InputError(where() + ": 0 columns; store at least one feature per row");
    names_ = io::read_feature_names(file_, path, matrix_.cols, object_);
  }

  std::int64_t n_rows() const override { return n_; }
  std::int64_t n_cols() const override { return matrix_.cols; }
  std::string where() const override { return io::where(path_, object_); }

  void read(std::int64_t begin, std::int64_t count, float* out) override {
    SEGFORGE_ASSERT(begin >= 0 && count >= 0 && begin + count <= n_, "row source: read out of range");
    const std::lock_guard<std::mutex> lock(mutex_);
    io::read_rows(matrix_, path_, object_, first_ + begin, count, out);
    check_finite(out, count, [&](std::int64_t i) { return begin + i; });
  }

  std::unique_ptr<MappedRows> map(std::int64_t begin, std::int64_t count) override {
    SEGFORGE_ASSERT(begin >= 0 && count >= 0 && begin + count <= n_, "row source: map out of range");
    auto mapped = io::map_rows(matrix_, first_ + begin, count);
    if (!mapped) return nullptr;
    // Each range is checked the first time it is mapped: the same windows come back every pass.
    const std::lock_guard<std::mutex> lock(mutex_);
    if (checked_.count({begin, count}) == 0) {
      check_finite(mapped->rows(), count, [&](std::int64_t i) { return begin + i; });
      checked_.insert({begin, count});
    }
    return mapped;
  }

  void read_rows(std::span<const std::int64_t> rows, float* out) override {
    if (rows.empty()) return;
    const std::int64_t d = matrix_.cols;
    // Distinct rows in file order, one point selection, then each requested row from there.
    std::vector<std::int64_t> distinct(rows.begin(), rows.end());
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    SEGFORGE_ASSERT(distinct.front() >= 0 && distinct.back() < n_, "row source: row out of range");
    std::vector<float> buffer(distinct.size() * static_cast<std::size_t>(d));
    {
      // In groups of kPointRows rows: HDF5's bookkeeping for a point selection grows with the
      // points times the chunks they touch, which would otherwise cost more than the rows.
      constexpr std::size_t kPointRows = 64;
      const std::lock_guard<std::mutex> lock(mutex_);
      std::vector<hsize_t> coords;
      for (std::size_t g = 0; g < distinct.size(); g += kPointRows) {
        const std::size_t rows_here = std::min(kPointRows, distinct.size() - g);
        coords.clear();
        for (std::size_t i = g; i < g + rows_here; ++i)
          for (std::int64_t j = 0; j < d; ++j) {
            coords.push_back(static_cast<hsize_t>(first_ + distinct[i]));
            coords.push_back(static_cast<hsize_t>(j));
          }
        io::Hid file_space = io::space_id(H5Dget_space(matrix_.dataset));
        const hsize_t count = rows_here * static_cast<hsize_t>(d);
        io::Hid mem_space = io::space_id(H5Screate_simple(1, &count, nullptr));
        if (!file_space.valid() || !mem_space.valid() ||
            H5Sselect_elements(file_space, H5S_SELECT_SET, count, coords.data()) < 0 ||
            H5Dread(matrix_.dataset, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT,
                    buffer.data() + g * static_cast<std::size_t>(d)) < 0)
          throw RuntimeFailure(where() + ": cannot read " + std::to_string(distinct.size()) + " rows (" +
                               io::hdf5_reason() + ")");
      }
    }
    check_finite(buffer.data(), static_cast<std::int64_t>(distinct.size()),
                 [&](std::int64_t i) { return distinct[i]; });
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto at = std::lower_bound(distinct.begin(), distinct.end(), rows[i]) - distinct.begin();
      std::copy_n(buffer.data() + at * d, d, out + static_cast<std::int64_t>(i) * d);
    }
  }

 private:
  /// `row_of(i)`: the part's row index of buffer row i (messages give the file's row).
  template <class RowOf>
  void check_finite(const float* x, std::int64_t count, RowOf row_of) const {
    const std::int64_t d = matrix_.cols;
    if (io::all_finite(x, count * d)) return;
    const float* end = x + count * d;
    const float* bad = std::find_if(x, end, [](float v) { return !std::isfinite(v); });
    if (bad == end) return;
    const std::int64_t i = (bad - x) / d, j = (bad - x) % d;
    const std::string column = static_cast<std::int64_t>(names_.size()) > j ? "'" + names_[j] + "'" : std::to_string(j);
    throw InputError(where() + " row " + std::to_string(first_ + row_of(i)) + " (0-based): " +
                     (std::isnan(*bad) ? "NaN" : "Inf") + " in column " + column +
                     "; clean it (data read out of core cannot drop rows)");
  }

  std::string path_, object_;
  io::Hid file_;
  io::MatrixInfo matrix_;
  std::vector<std::string> names_;
  std::int64_t first_ = 0, n_ = 0;
  std::set<std::pair<std::int64_t, std::int64_t>> checked_;  ///< ranges map() has checked
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<RowSource> open_hdf5_rows(const std::string& path, const std::string& dataset,
                                          std::int64_t row_begin, std::int64_t row_count) {
  return std::make_unique<Hdf5Rows>(path, dataset, row_begin, row_count);
}

}  // namespace segforge
