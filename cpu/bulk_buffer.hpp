#pragma once
// Buffers for a dataset's rows: gigabytes that are written once and then only read.

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace segforge::cpu {

/// Allocator that leaves elements uninitialised, aligns to 64 bytes, and puts buffers of 4 MiB
/// and more on 2 MiB boundaries with MADV_HUGEPAGE. The parallel copy that fills a dataset is
/// then its first touch, spread over the team instead of a serial value-initialisation before
/// it, and each fault maps a 2 MiB page instead of a 4 KiB one: on the development VM a first
/// touch costs 11 µs per 4 KiB page, 2.1–2.7 s to upload 10M x 16 rows (bench/RESULTS.md).
template <class T>
struct BulkAllocator {
  using value_type = T;
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;
  static constexpr std::size_t kHugeFrom = std::size_t{4} << 20;

  BulkAllocator() = default;
  template <class U>
  BulkAllocator(const BulkAllocator<U>&) noexcept {}

  T* allocate(std::size_t count) {
    const std::size_t bytes = count * sizeof(T);
    const std::size_t align = bytes >= kHugeFrom ? kHugePage : 64;
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

template <class T>
using BulkVector = std::vector<T, BulkAllocator<T>>;

}  // namespace segforge::cpu
