#pragma once
// Buffers for a dataset's rows and every Matrix: gigabytes that are written once and then only
// read, so no zeroing pass before the code that fills them.

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace segforge {

/// Allocator that leaves elements uninitialised, aligns to 64 bytes, and puts buffers of 4 MiB
/// and more on 2 MiB boundaries with MADV_HUGEPAGE. The parallel copy that fills a dataset is
/// then its first touch, spread over the team instead of a serial value-initialisation before
/// it, and each fault maps a 2 MiB page instead of a 4 KiB one: on the development VM a first
/// touch costs 11 µs per 4 KiB page, 2.1–2.7 s to upload 10M x 16 rows (bench/RESULTS.md).
/// `resize(n)` leaves new elements uninitialised; `resize(n, value)` and `assign` fill them.
///
/// Huge = false: 64-byte alignment and no advice. Matrix storage (a file's rows read into place)
/// takes it: with MADV_HUGEPAGE and THP's `defrag = madvise`, a fault stalls in direct
/// compaction whenever no free 2 MiB block is at hand, so reading 10M x 16 rows straight into
/// such a buffer took 0.07 s or 0.6–0.85 s by turns, and 0.21–0.24 s every time without the
/// advice (bench/RESULTS.md, "Reading").
template <class T, bool Huge = true>
struct BulkAllocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = BulkAllocator<U, Huge>;
  };
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;
  static constexpr std::size_t kHugeFrom = std::size_t{4} << 20;

  BulkAllocator() = default;
  template <class U>
  BulkAllocator(const BulkAllocator<U, Huge>&) noexcept {}

  T* allocate(std::size_t count) {
    const std::size_t bytes = count * sizeof(T);
    const std::size_t align = Huge && bytes >= kHugeFrom ? kHugePage : 64;
    const std::size_t size = (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, size == 0 ? align : size);
    if (p == nullptr) throw std::bad_alloc();
    if (align == kHugePage) ::madvise(p, size, MADV_HUGEPAGE);  // advice: failure changes nothing
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }

  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;  // default-initialised: no zeroing pass
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }

  friend bool operator==(const BulkAllocator&, const BulkAllocator&) noexcept { return true; }
};

template <class T, bool Huge = true>
using BulkVector = std::vector<T, BulkAllocator<T, Huge>>;

/// The same elements as a std::vector's (tests compare a Matrix's values with literals).
template <class T, bool Huge>
bool operator==(const BulkVector<T, Huge>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace segforge
