#pragma once
// Non-owning row-major matrix views (shaped like std::mdspan, which C++20 lacks) and an owning
// matrix. stride == cols everywhere.

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "segforge/bulk.hpp"

namespace segforge {

template <class T>
struct MatrixView {  // non-owning, row-major, stride == cols
  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;

  std::int64_t extent(int d) const { return d == 0 ? rows : cols; }
  std::int64_t size() const { return rows * cols; }
  T* row(std::int64_t i) const { return data + i * cols; }
  T& operator()(std::int64_t i, std::int64_t j) const { return data[i * cols + j]; }
  operator MatrixView<const T>() const { return {data, rows, cols}; }
};

/// Owning row-major matrix [rows x cols], its values in a BulkVector without huge-page advice
/// (bulk.hpp says why): `values().resize(n)` leaves them for the code that fills them (a file's rows
/// read straight into place).
template <class T>
class Matrix {
 public:
  using Storage = BulkVector<T, /*Huge=*/false>;

  Matrix() = default;
  Matrix(std::int64_t rows, std::int64_t cols, T fill = T{})
      : values_(static_cast<std::size_t>(rows * cols), fill), rows_(rows), cols_(cols) {}
  Matrix(std::int64_t rows, std::int64_t cols, Storage values)
      : values_(std::move(values)), rows_(rows), cols_(cols) {}
  /// A copy of `values` (a std::vector cannot hand its buffer to another allocator).
  Matrix(std::int64_t rows, std::int64_t cols, const std::vector<T>& values)
      : values_(values.begin(), values.end()), rows_(rows), cols_(cols) {}
  Matrix(std::int64_t rows, std::int64_t cols, std::initializer_list<T> values)
      : values_(values), rows_(rows), cols_(cols) {}

  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t size() const { return rows_ * cols_; }
  bool empty() const { return values_.empty(); }
  T* data() { return values_.data(); }
  const T* data() const { return values_.data(); }
  T* row(std::int64_t i) { return values_.data() + i * cols_; }
  const T* row(std::int64_t i) const { return values_.data() + i * cols_; }
  T& operator()(std::int64_t i, std::int64_t j) { return values_[i * cols_ + j]; }
  const T& operator()(std::int64_t i, std::int64_t j) const { return values_[i * cols_ + j]; }
  Storage& values() { return values_; }
  const Storage& values() const { return values_; }

  MatrixView<T> view() { return {values_.data(), rows_, cols_}; }
  MatrixView<const T> view() const { return {values_.data(), rows_, cols_}; }
  operator MatrixView<const T>() const { return view(); }

 private:
  Storage values_;
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
};

}  // namespace segforge
