#pragma once
// CUDA runtime plumbing for the CUDA backend: errors become segforge exceptions (never a crash),
// device memory is owned by RAII buffers, and out-of-memory says how much was needed and free.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "segforge/error.hpp"

namespace segforge::gpu {

/// A byte count for messages: "512 B", "3.4 MiB", "1.25 GiB" (never "0.00 GiB" for a small one).
inline std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : u < 3 ? "%.1f %s" : "%.2f %s", bytes, units[u]);
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

/// `need_bytes` is 0 where the failing call did not say (a library's scratch, a runtime call):
/// then the message gives what is free and nothing made up.
[[noreturn]] inline void throw_out_of_memory(std::size_t need_bytes, const char* what = nullptr) {
  const auto [free_bytes, total_bytes] = memory_info();
  std::string text = "out of device memory";
  if (what != nullptr) text += std::string(" in ") + what;
  text += ": ";
  if (need_bytes > 0) text += "need " + format_bytes(static_cast<double>(need_bytes)) + ", ";
  throw RuntimeFailure(text + format_bytes(static_cast<double>(free_bytes)) + " free of " +
                       format_bytes(static_cast<double>(total_bytes)) + "; use --device cpu");
}

/// The last kernel launched on this thread, for errors that surface at a later call (kernels run
/// asynchronously: a fault is reported by the next synchronising call, not by the launch).
inline const char*& last_kernel() {
  thread_local const char* name = nullptr;
  return name;
}

/// Errors that a kernel's execution leaves behind (the context is then unusable), as opposed to
/// a bad argument of the call that reports them.
inline bool is_execution_error(cudaError_t status) {
  switch (status) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorLaunchTimeout:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
      return true;
    default:
      return false;
  }
}

/// Turns a failed runtime call into a RuntimeFailure naming the call (exit 1); a kernel's fault
/// reported here also names the last kernel launched.
inline void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // clear the sticky-free error state for the next call
  if (status == cudaErrorMemoryAllocation) throw_out_of_memory(0, what);
  std::string text = std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status);
  if (is_execution_error(status) && last_kernel() != nullptr && what != last_kernel())
    text += std::string(" (the last kernel launched was ") + last_kernel() +
            "; SEGFORGE_CUDA_SYNC=1 checks each kernel as it ends)";
  throw RuntimeFailure(text + "; use --device cpu");
}

/// SEGFORGE_CUDA_SYNC=1 (or CUDA_LAUNCH_BLOCKING=1): wait for every kernel as it is launched, so
/// that a fault names its kernel. Read once; for debugging and the device check, it costs a
/// synchronisation per launch.
inline bool sync_each_kernel() {
  static const bool on = [] {
    for (const char* name : {"SEGFORGE_CUDA_SYNC", "CUDA_LAUNCH_BLOCKING"}) {
      const char* v = std::getenv(name);
      if (v != nullptr && v[0] != '\0' && std::string(v) != "0") return true;
    }
    return false;
  }();
  return on;
}

/// After a kernel launch: launch errors now (bad configuration, no code for this device); with
/// sync_each_kernel(), execution errors too. Otherwise those surface at the next synchronising
/// call, whose message names this kernel as the last one launched.
inline void check_launch(const char* kernel) {
  last_kernel() = kernel;
  check(cudaGetLastError(), kernel);
  if (sync_each_kernel()) check(cudaDeviceSynchronize(), kernel);
}

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
      throw_out_of_memory(bytes, "cudaMalloc");
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

/// Owning page-locked host memory of `bytes` (cudaMallocHost): copies to and from it run
/// asynchronously on the stream, so a call can queue them with its kernels and wait once.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::int64_t bytes) : bytes_(bytes) {
    if (bytes <= 0) return;
    const cudaError_t status = cudaMallocHost(reinterpret_cast<void**>(&data_), static_cast<std::size_t>(bytes));
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      data_ = nullptr;
      bytes_ = 0;
      if (status == cudaErrorMemoryAllocation)
        throw RuntimeFailure("out of page-locked host memory: need " +
                             format_bytes(static_cast<double>(bytes)) + "; use --device cpu");
      check(status, "cudaMallocHost");
    }
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  PinnedBuffer(PinnedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  ~PinnedBuffer() { release(); }

  std::byte* data() { return data_; }
  std::int64_t bytes() const { return bytes_; }

 private:
  void release() {
    if (data_ != nullptr) (void)cudaFreeHost(data_);
    data_ = nullptr;
    bytes_ = 0;
  }
  std::byte* data_ = nullptr;
  std::int64_t bytes_ = 0;
};

template <class T>
DeviceBuffer<T> to_device(const T* host, std::int64_t count) {
  DeviceBuffer<T> out(count);
  out.upload(host, count);
  return out;
}

}  // namespace segforge::gpu
