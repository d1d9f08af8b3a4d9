#pragma once
// `--memory-budget`: when a feature matrix does not fit, its rows stay on disk and are streamed
// window by window (Backend::stream). Peak resident memory stays within the budget plus
// kProcessBytes, the program's own footprint (code, HDF5, OpenMP stacks, small buffers).

#include <cstdint>
#include <string>

namespace segforge::cli {

/// The footprint that the budget does not cover: code and libraries (~18 MB), HDF5's caches,
/// OpenMP and read-ahead threads, allocator slack. Measured 41–72 MB above the budget for a
/// 2M x 8 fit with labels, metrics and a sampled silhouette; documented as 96 MiB.
constexpr std::int64_t kProcessBytes = 96LL << 20;
/// Resident bytes per row besides the features whatever the mode: the backend's labels,
/// k-means++ distances and row norms (kept out of core too), the final labels and distances,
/// row ids (int64), segment sizes.
constexpr std::int64_t kPerRowBytes = 36;

/// "auto" (3/4 of the memory available now: MemAvailable, and the cgroup limit if lower),
/// or bytes with an optional K, M, G or T suffix (powers of 1024). InputError otherwise.
std::int64_t parse_memory_budget(const std::string& text);

struct MemoryPlan {
  bool in_memory = true;
  std::int64_t window_rows = 0;  ///< out of core: rows per window (a multiple of 2048)
};
/// In memory when the rows fit twice over (the read copy and the backend's) with the per-row
/// state; else windows of as many rows as two of them fit in what the per-row state leaves.
/// InputError when not even two 2048-row windows fit.
MemoryPlan plan_memory(std::int64_t n_rows, std::int64_t n_cols, std::int64_t budget,
                       const std::string& where);

/// Peak resident memory of this process so far (VmHWM in /proc/self/status), 0 if unknown.
std::int64_t peak_rss_bytes();

/// "1.5 GiB", for messages.
std::string format_bytes(std::int64_t bytes);

}  // namespace segforge::cli
