#pragma once
// CUDA runtime plumbing for the CUDA backend: errors become segforge exceptions (never a crash),
// device memory is owned by RAII buffers, and out-of-memory says how much was needed and free.

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "segforge/error.hpp"

namespace segforge::gpu {

inline std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", bytes / (1024.0 * 1024.0 * 1024.0));
  return text;
}

/// Free and total device memory in bytes (0, 0 if the query itself fails).
inline std::pair<std::size_t, std::size_t> memory_info() {
  std::size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return {0, 0};
  }
  return {free_bytes, total_bytes};
}

[[noreturn]] inline void throw_out_of_memory(std::size_t need_bytes) {
  const auto [free_bytes, total_bytes] = memory_info();
  throw RuntimeFailure("out of device memory: need " + gib(static_cast<double>(need_bytes)) +
                       " GiB, " + gib(static_cast<double>(free_bytes)) + " GiB free of " +
                       gib(static_cast<double>(total_bytes)) + " GiB; use --device cpu");
}

/// Turns a failed runtime call into a RuntimeFailure naming the call (exit 1).
inline void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // clear the sticky-free error state for the next call
  if (status == cudaErrorMemoryAllocation) throw_out_of_memory(0);
  throw RuntimeFailure(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status) +
                       "; use --device cpu");
}

/// After a kernel launch: launch errors now, execution errors at the next synchronising call.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

/// Owning device array of `size` elements (no allocation for size 0).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::int64_t size) : size_(size) {
    if (size <= 0) return;
    const std::size_t bytes = static_cast<std::size_t>(size) * sizeof(T);
    const cudaError_t status = cudaMalloc(reinterpret_cast<void**>(&data_), bytes);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      data_ = nullptr;
      throw_out_of_memory(bytes);
    }
    check(status, "cudaMalloc");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::int64_t size() const { return size_; }
  std::size_t bytes() const { return static_cast<std::size_t>(size_) * sizeof(T); }

  void upload(const T* host, std::int64_t count, std::int64_t offset = 0) {
    if (count > 0)
      check(cudaMemcpy(data_ + offset, host, static_cast<std::size_t>(count) * sizeof(T),
                       cudaMemcpyHostToDevice),
            "cudaMemcpy to device");
  }
  void download(T* host, std::int64_t count, std::int64_t offset = 0) const {
    if (count > 0)
      check(cudaMemcpy(host, data_ + offset, static_cast<std::size_t>(count) * sizeof(T),
                       cudaMemcpyDeviceToHost),
            "cudaMemcpy to host");
  }
  std::vector<T> to_host() const {
    std::vector<T> out(static_cast<std::size_t>(size_));
    download(out.data(), size_);
    return out;
  }
  void zero() {
    if (size_ > 0) check(cudaMemset(data_, 0, bytes()), "cudaMemset");
  }

 private:
  void release() {
    if (data_ != nullptr) (void)cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  std::int64_t size_ = 0;
};

template <class T>
DeviceBuffer<T> to_device(const T* host, std::int64_t count) {
  DeviceBuffer<T> out(count);
  out.upload(host, count);
  return out;
}

}  // namespace segforge::gpu
