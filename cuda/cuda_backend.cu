// The CUDA backend: the dataset lives on the device (rows, weights, norms, labels, d(x)); each
// Backend operation is one or two kernels of kernels.cuh plus a fixed-order reduction of
// per-block partials. Only centres, per-cluster sums and scalars cross PCIe per Lloyd iteration;
// the Lloyd pass, min-distance and assign keep their centres, partials and totals in a grow-only
// workspace (pinned on the host side) and synchronise once per call.
//
// Scope (issues 4 and 20): the matrix must fit on the device (no streaming yet: issue 5); the
// Lloyd pass, assign and min-distance hold each row in registers (up to 128 features) and read
// the centres from shared memory in tiles; wider rows, the k-means++ trials, the silhouette sums
// and distance matrices run one thread per row reading through the cache. A fused register-tiled
// kernel for large K·D (not cuBLAS: its summation order is unspecified) is the next step.

#include <cuda_runtime.h>
#include <thrust/copy.h>
#include <thrust/count.h>
#include <thrust/execution_policy.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/system_error.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "device.cuh"
#include "kernels.cuh"
#include "neighbours.cuh"
#include "segforge/backend.hpp"
#include "segforge/error.hpp"
#include "segforge/matrix.hpp"

namespace segforge {
namespace {

using gpu::DeviceBuffer;
using gpu::i64;
using gpu::kSubRows;
using gpu::kThreads;

/// Memory for the per-block partials of one pass. Rows per block grow with the partial's width so
/// that large K·D stays within it; the split is a function of the shape alone, never the device.
constexpr i64 kPartialBudgetBytes = 64LL << 20;
/// Below this many blocks in the budget (large K·D), a full-dataset Lloyd pass splits: the nearest
/// centres on a full grid first, then the sums with the labels given (CudaBackend::split_pass).
/// A constant, not the device's SM count, so that the summation order is the shape's alone.
constexpr i64 kMinPassBlocks = 256;
/// Device memory kept free beyond the dataset at upload: per-call buffers that do not grow with
/// the rows (partials, centres, Thrust scratch) and the CUDA context's own needs.
constexpr std::size_t kHeadroomBytes = 512ULL << 20;
/// Per-row bytes of the dataset: the row, then weight, norm, label and d(x).
constexpr std::size_t kResidentRowBytes = 4 * sizeof(float);
/// Per-row bytes the K-Means and metrics calls allocate beside the dataset, the largest of them:
/// cluster_distance_sums' centred norms and label order (12 B), assign's labels and distances
/// (8 B), label_stats' labels (4 B). DBSCAN's eps ops take up to 41 B/row per call on top; an
/// allocation that fails then says so (out of device memory, with the bytes needed).
constexpr std::size_t kCallRowBytes = sizeof(float) + sizeof(std::int64_t);
static_assert(kCallRowBytes >= 2 * sizeof(float), "assign's labels and distances must fit too");

/// The CUDA architectures this binary holds code for (CMAKE_CUDA_ARCHITECTURES, e.g. "90" or
/// "75-real,80-real,90"), as "sm_90 + PTX 9.0" or "sm_75, sm_80, sm_90 + PTX 9.0".
std::string built_architectures() {
  const std::string list = SEGFORGE_CUDA_ARCHS;
  std::string sass, ptx;
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    std::string arch = list.substr(at, comma - at);
    at = comma + 1;
    if (arch.empty()) continue;
    const auto dash = arch.find('-');
    const std::string number = arch.substr(0, dash), kind = dash == std::string::npos ? "" : arch.substr(dash + 1);
    const bool digits = !number.empty() && number.find_first_not_of("0123456789") == std::string::npos;
    if (!digits) {  // all, all-major, native: as CMake was given it
      sass += (sass.empty() ? "" : ", ") + arch;
      continue;
    }
    if (kind != "virtual") sass += (sass.empty() ? "sm_" : ", sm_") + number;
    if (kind != "real")
      ptx += (ptx.empty() ? "" : ", ") + number.substr(0, number.size() - 1) + "." + number.substr(number.size() - 1);
  }
  return sass + (ptx.empty() ? "" : " + PTX " + ptx);
}

/// A CUDA version number (12040) as "12.4".
std::string cuda_version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }
unsigned grid_for(i64 n, int threads) { return static_cast<unsigned>(ceil_div(n, threads)); }

/// ||v||² accumulated in double, rounded once to float (the CPU backend's sq_norm).
float sq_norm(const float* v, i64 d) {
  double s = 0.0;
  for (i64 j = 0; j < d; ++j) s += static_cast<double>(v[j]) * v[j];
  return static_cast<float>(s);
}

// ---- the dataset ---------------------------------------------------------------------------

class CudaDataset final : public Dataset {
 public:
  CudaDataset(MatrixView<const float> x, std::span<const float> w)
      : n(x.rows), d(x.cols), weighted_(!w.empty()), rows(x.rows * x.cols), weights(x.rows),
        norms(x.rows), labels(x.rows), min_dist(x.rows) {
    rows.upload(x.data, x.rows * x.cols);
    if (n == 0) return;
    if (weighted_)
      weights.upload(w.data(), n);
    else
      fill(weights, 1.0f);
    gpu::row_norms_kernel<<<grid_for(n, kThreads), kThreads>>>(rows.data(), n, static_cast<int>(d),
                                                               norms.data());
    gpu::check_launch("row_norms_kernel");
    gpu::check(cudaMemset(labels.data(), 0xFF, labels.bytes()), "cudaMemset");  // all −1
    fill(min_dist, std::numeric_limits<float>::infinity());
    gpu::check(cudaDeviceSynchronize(), "upload");
  }

  std::int64_t n_samples() const override { return n; }
  std::int64_t n_features() const override { return d; }
  bool weighted() const override { return weighted_; }

  static void fill(DeviceBuffer<float>& b, float value) {
    if (b.size() == 0) return;
    gpu::fill_kernel<<<grid_for(b.size(), kThreads), kThreads>>>(b.data(), b.size(), value);
    gpu::check_launch("fill_kernel");
  }

  const i64 n;
  const i64 d;
  const bool weighted_;
  DeviceBuffer<float> rows;           ///< [n x d] row-major
  DeviceBuffer<float> weights;        ///< [n], 1 when unweighted
  DeviceBuffer<float> norms;          ///< [n] ||x||²
  DeviceBuffer<std::int32_t> labels;  ///< [n] from the last assign_accumulate; −1 before the first
  DeviceBuffer<float> min_dist;       ///< [n] k-means++ d(x); +inf before the first reset
};

const CudaDataset& cuda_data(const Dataset& data) {
  const auto* p = dynamic_cast<const CudaDataset*>(&data);
  SEGFORGE_ASSERT(p != nullptr, "dataset was not uploaded by the CUDA backend");
  return *p;
}
CudaDataset& cuda_data(Dataset& data) {
  auto* p = dynamic_cast<CudaDataset*>(&data);
  SEGFORGE_ASSERT(p != nullptr, "dataset was not uploaded by the CUDA backend");
  return *p;
}

/// Centres on the device with their norms (computed on the host as the CPU does).
struct DeviceCentres {
  explicit DeviceCentres(MatrixView<const float> m)
      : k(m.rows), values(gpu::to_device(m.data, m.rows * m.cols)), norms(m.rows) {
    std::vector<float> host(static_cast<std::size_t>(k));
    for (i64 l = 0; l < k; ++l) host[l] = sq_norm(m.data + l * m.cols, m.cols);
    norms.upload(host.data(), k);
  }
  i64 k;
  DeviceBuffer<float> values;  ///< [k x d]
  DeviceBuffer<float> norms;   ///< [k]
};

/// total [width] ← Σ over blocks of a [n_blocks x width] partial (a warp per element, in a fixed
/// order that depends on n_blocks alone), on the device.
void launch_reduce_blocks(const double* partial, i64 n_blocks, i64 width, double* total) {
  gpu::reduce_blocks_kernel<<<grid_for(width * gpu::kReduceLanes, kThreads), kThreads>>>(
      partial, n_blocks, width, total);
  gpu::check_launch("reduce_blocks_kernel");
}

/// Σ over blocks of a [n_blocks x width] partial, on the host.
std::vector<double> reduce_blocks(const DeviceBuffer<double>& partial, i64 n_blocks, i64 width) {
  DeviceBuffer<double> total(width);
  launch_reduce_blocks(partial.data(), n_blocks, width, total.data());
  return total.to_host();
}

/// Grow-only device and page-locked host memory that the hot calls (the Lloyd pass, min-distance,
/// assign) lay out their centres, partials and totals in: the centres go up in one asynchronous
/// copy, the totals come back in one, and the call synchronises once, with no cudaMalloc or
/// cudaFree once the workspace has grown to the largest shape. A backend serves one call at a
/// time (as every Backend), so one workspace is enough; a call reserves before taking pointers.
class Workspace {
 public:
  /// Bytes rounded up so that every region starts 256-byte aligned.
  static i64 aligned(i64 bytes) { return (bytes + 255) / 256 * 256; }

  /// Room for device_bytes and host_bytes (earlier pointers into the workspace become invalid).
  void reserve(i64 device_bytes, i64 host_bytes) {
    // Grow by half at least, so that a shape creeping upwards does not reallocate every call;
    // free before allocating, so that the old and new buffers never coexist.
    if (device_bytes > device_.size()) {
      const i64 grown = std::max(device_bytes, device_.size() + device_.size() / 2);
      device_ = DeviceBuffer<std::byte>();
      device_ = DeviceBuffer<std::byte>(grown);
    }
    if (host_bytes > host_.bytes()) {
      const i64 grown = std::max(host_bytes, host_.bytes() + host_.bytes() / 2);
      host_ = gpu::PinnedBuffer();
      host_ = gpu::PinnedBuffer(grown);
    }
  }
  std::byte* device() { return device_.data(); }
  std::byte* host() { return host_.data(); }

 private:
  DeviceBuffer<std::byte> device_;
  gpu::PinnedBuffer host_;
};

/// Centres and their norms in a workspace: [k x d] values, then [k] norms.
struct SentCentres {
  const float* values = nullptr;  ///< null: no centres
  const float* norms = nullptr;
  i64 k = 0;
  /// Bytes of k centres of d features and their norms.
  static i64 bytes(i64 k, i64 d) { return k * (d + 1) * static_cast<i64>(sizeof(float)); }
};

/// Writes the centres m and their norms (computed on the host as the CPU does) to the pinned
/// `host` and queues their copy to `device` (both SentCentres::bytes long) on the stream.
SentCentres send_centres(MatrixView<const float> m, std::byte* host, std::byte* device) {
  const i64 k = m.rows, d = m.cols;
  if (k == 0 || m.data == nullptr) return {};
  auto* h = reinterpret_cast<float*>(host);
  std::copy_n(m.data, k * d, h);
  for (i64 l = 0; l < k; ++l) h[k * d + l] = sq_norm(m.data + l * d, d);
  gpu::check(cudaMemcpyAsync(device, host, static_cast<std::size_t>(SentCentres::bytes(k, d)),
                             cudaMemcpyHostToDevice, 0),
             "cudaMemcpyAsync to device");
  const auto* dv = reinterpret_cast<const float*>(device);
  return {dv, dv + k * d, k};
}

/// Calls f(std::integral_constant<int, dp>) for dp one of gpu::kPaddedDims, f(…<int, 0>) otherwise:
/// the register kernels' instantiations.
template <class F>
void with_padded_dim(int dp, F&& f) {
  switch (dp) {
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 16: f(std::integral_constant<int, 16>{}); break;
    case 24: f(std::integral_constant<int, 24>{}); break;
    case 32: f(std::integral_constant<int, 32>{}); break;
    case 48: f(std::integral_constant<int, 48>{}); break;
    case 64: f(std::integral_constant<int, 64>{}); break;
    case 96: f(std::integral_constant<int, 96>{}); break;
    case 128: f(std::integral_constant<int, 128>{}); break;
    default: f(std::integral_constant<int, 0>{}); break;
  }
}
static_assert(gpu::kMaxPaddedDim == 128 && std::size(gpu::kPaddedDims) == 9,
              "with_padded_dim lists every padded width");

/// Thrust reports failures by exception; they become RuntimeFailures like every CUDA error.
template <class F>
auto thrust_call(const char* what, F f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    gpu::throw_out_of_memory(0, what);
  } catch (const thrust::system_error& e) {
    throw RuntimeFailure(std::string("CUDA error in ") + what + ": " + e.what() +
                         "; use --device cpu");
  }
}

// ---- the backend -------------------------------------------------------------------------------

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    gpu::check(cudaSetDevice(device_), "cudaSetDevice");
    gpu::check(cudaGetDeviceProperties(&props_, device_), "cudaGetDeviceProperties");
    gpu::check(cudaDriverGetVersion(&driver_version_), "cudaDriverGetVersion");
    gpu::check(cudaRuntimeGetVersion(&runtime_version_), "cudaRuntimeGetVersion");
    // A probe launch: a device whose architecture this build has no code for fails here, so the
    // factory can say so (and --device auto fall back) instead of failing mid-run.
    DeviceBuffer<float> probe(1);
    gpu::fill_kernel<<<1, 1>>>(probe.data(), 1, 0.0f);
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess)
      throw RuntimeFailure(std::string("cannot run kernels on ") + props_.name + " (sm_" +
                           std::to_string(props_.major) + std::to_string(props_.minor) +
                           "; this build has code for " + built_architectures() + "): " +
                           cudaGetErrorString(status));
    gpu::check(cudaDeviceSynchronize(), "probe kernel");
    // Dynamic shared memory left to the pass kernels beside their static buffers.
    for (int given = 0; given < 2; ++given) {
      cudaFuncAttributes attr{};
      gpu::check(cudaFuncGetAttributes(&attr, given ? gpu::pass_kernel<true, 0> : gpu::pass_kernel<false, 0>),
                 "cudaFuncGetAttributes");
      pass_shared_budget_[given] = static_cast<i64>(props_.sharedMemPerBlock) -
                                   static_cast<i64>(attr.sharedSizeBytes);
    }
  }

  /// "NVIDIA H100 80GB HBM3, compute capability 9.0, 79.1 GiB, 132 SMs, driver 13.0, runtime
  /// 13.0, code for sm_90 + PTX 9.0": the device, its compute capability and memory, the CUDA
  /// driver and runtime versions, and the architectures this binary holds (segforge info,
  /// metrics.json, models).
  BackendInfo info() const override {
    char memory[32];
    std::snprintf(memory, sizeof memory, "%.1f",
                  static_cast<double>(props_.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
    return {"cuda", std::string(props_.name) + ", compute capability " + std::to_string(props_.major) +
                        "." + std::to_string(props_.minor) + ", " + memory + " GiB, " +
                        std::to_string(props_.multiProcessorCount) + " SMs, driver " +
                        cuda_version_text(driver_version_) + ", runtime " +
                        cuda_version_text(runtime_version_) + ", code for " + built_architectures()};
  }

  std::unique_ptr<Dataset> upload(MatrixView<const float> x,
                                  std::span<const float> weights) override {
    SEGFORGE_ASSERT(x.rows >= 0 && x.cols >= 0, "negative matrix shape");
    SEGFORGE_ASSERT(weights.empty() || static_cast<i64>(weights.size()) == x.rows,
                    "weights must be empty or have one value per row");
    SEGFORGE_ASSERT(x.cols <= std::numeric_limits<int>::max(), "too many features");
    // Residency: rows + weights, norms, labels, d(x), and the per-row buffers the later calls
    // allocate; it must fit with headroom. Streaming row chunks from host memory is issue 5.
    const std::size_t rows = static_cast<std::size_t>(x.rows);
    const std::size_t resident = rows * (static_cast<std::size_t>(x.cols) * sizeof(float) + kResidentRowBytes);
    const std::size_t need = resident + rows * kCallRowBytes;
    const auto [free_bytes, total_bytes] = gpu::memory_info();
    if (need + kHeadroomBytes > free_bytes)
      throw RuntimeFailure("the data needs " + gpu::format_bytes(static_cast<double>(need)) +
                           " on the device (" + gpu::format_bytes(static_cast<double>(resident)) +
                           " resident, " + gpu::format_bytes(static_cast<double>(rows * kCallRowBytes)) +
                           " for per-row results) and " + gpu::format_bytes(static_cast<double>(free_bytes)) +
                           " of " + gpu::format_bytes(static_cast<double>(total_bytes)) +
                           " are free (keeping " + gpu::format_bytes(static_cast<double>(kHeadroomBytes)) +
                           " headroom); streaming data larger than the device is not implemented "
                           "yet; use --device cpu");
    return std::make_unique<CudaDataset>(x, weights);
  }

  Matrix<float> gather(const Dataset& data, std::span<const std::int64_t> rows) override {
    const auto& ds = cuda_data(data);
    const i64 m = static_cast<i64>(rows.size());
    for (const auto r : rows) SEGFORGE_ASSERT(r >= 0 && r < ds.n, "gather row out of range");
    Matrix<float> out(m, ds.d);
    if (m == 0 || ds.d == 0) return out;
    DeviceBuffer<i64> index = gpu::to_device(rows.data(), m);
    DeviceBuffer<float> dev(m * ds.d);
    gpu::gather_kernel<<<grid_for(m * ds.d, kThreads), kThreads>>>(
        ds.rows.data(), static_cast<int>(ds.d), index.data(), m, dev.data());
    gpu::check_launch("gather_kernel");
    dev.download(out.data(), m * ds.d);
    return out;
  }

  ColumnStats column_stats(const Dataset& data) override {
    const auto& ds = cuda_data(data);
    ColumnStats out;
    out.mean = column_sums(ds, nullptr);
    if (ds.n > 0)
      for (auto& m : out.mean) m /= static_cast<double>(ds.n);
    // Two passes, as numpy's var: the mean of (x − mean)².
    DeviceBuffer<double> mean = gpu::to_device(out.mean.data(), ds.d);
    out.variance = column_sums(ds, mean.data());
    if (ds.n > 0)
      for (auto& v : out.variance) v /= static_cast<double>(ds.n);
    return out;
  }

  // ---- Lloyd ------------------------------------------------------------------------------

  AccumulateResult assign_accumulate(Dataset& data, MatrixView<const float> centroids) override {
    auto& ds = cuda_data(data);
    check_centres(ds, centroids, 1);
    const i64 k = centroids.rows, d = ds.d;
    const std::vector<double> t =
        pass<false>(ds, nullptr, ds.n, centroids, k, nullptr, ds.labels.data(), /*n_extra=*/1);
    AccumulateResult out;
    out.sums.resize(static_cast<std::size_t>(k * d));
    out.counts.resize(static_cast<std::size_t>(k));
    for (i64 l = 0; l < k; ++l) {
      std::copy_n(t.begin() + l * (d + 1), d, out.sums.begin() + l * d);
      out.counts[l] = t[l * (d + 1) + d];
    }
    out.inertia = t[k * (d + 1)];
    out.n_changed = static_cast<std::int64_t>(t[k * (d + 1) + 1]);
    return out;
  }

  void assign(const Dataset& data, MatrixView<const float> centroids,
              std::span<std::int32_t> labels, std::span<float> sq_distances) override {
    const auto& ds = cuda_data(data);
    check_centres(ds, centroids, 1);
    SEGFORGE_ASSERT(static_cast<i64>(labels.size()) == ds.n, "labels must have n_samples entries");
    SEGFORGE_ASSERT(sq_distances.empty() || static_cast<i64>(sq_distances.size()) == ds.n,
                    "sq_distances must be empty or have n_samples entries");
    if (ds.n == 0) return;
    ws_.reserve(SentCentres::bytes(centroids.rows, ds.d), SentCentres::bytes(centroids.rows, ds.d));
    const SentCentres c = send_centres(centroids, ws_.host(), ws_.device());
    DeviceBuffer<std::int32_t> dev_labels(ds.n);
    DeviceBuffer<float> dev_dist(sq_distances.empty() ? 0 : ds.n);
    launch_assign(ds, c, dev_labels.data(), sq_distances.empty() ? nullptr : dev_dist.data());
    dev_labels.download(labels.data(), ds.n);
    if (!sq_distances.empty()) dev_dist.download(sq_distances.data(), ds.n);
  }

  // ---- k-means++ and k-means|| --------------------------------------------------------------

  double reset_min_distances(Dataset& data, MatrixView<const float> centres) override {
    return min_distances(cuda_data(data), centres, /*reset=*/true);
  }

  double update_min_distances(Dataset& data, MatrixView<const float> centres) override {
    return min_distances(cuda_data(data), centres, /*reset=*/false);
  }

  std::vector<double> candidate_potentials(const Dataset& data,
                                           MatrixView<const float> candidates) override {
    const auto& ds = cuda_data(data);
    check_centres(ds, candidates);
    const i64 t = candidates.rows;
    if (t == 0) return {};
    if (ds.n == 0) return std::vector<double>(static_cast<std::size_t>(t), 0.0);
    const DeviceCentres c(candidates);
    const i64 n_blocks = ceil_div(ds.n, kSubRows);
    DeviceBuffer<double> partial(n_blocks * t);
    gpu::potentials_kernel<<<static_cast<unsigned>(n_blocks), kThreads>>>(
        ds.rows.data(), ds.norms.data(), ds.weights.data(), ds.min_dist.data(), ds.n,
        static_cast<int>(ds.d), c.values.data(), c.norms.data(), static_cast<int>(t),
        partial.data());
    gpu::check_launch("potentials_kernel");
    return reduce_blocks(partial, n_blocks, t);
  }

  std::vector<std::int64_t> sample_by_min_distance(const Dataset& data,
                                                   std::span<const double> targets) override {
    const auto& ds = cuda_data(data);
    const i64 n = ds.n;
    std::vector<std::int64_t> out;
    out.reserve(targets.size());
    if (n == 0) return out;
    // Chunk masses on the device (kMassRows-row chunks added in row order, as the CPU backend
    // does), then the CPU backend's search on the host: offsets[c] is the mass before chunk c, and
    // inside a chunk the rows are added in order from offsets[c].
    constexpr i64 kRows = gpu::kMassRows;
    const i64 n_chunks = ceil_div(n, kRows);
    DeviceBuffer<double> chunk_mass(n_chunks);
    DeviceBuffer<long long> last_positive(n_chunks);
    gpu::mass_kernel<<<static_cast<unsigned>(n_chunks), kThreads>>>(
        ds.weights.data(), ds.min_dist.data(), n, chunk_mass.data(), last_positive.data());
    gpu::check_launch("mass_kernel");
    const std::vector<double> mass = chunk_mass.to_host();
    const std::vector<long long> last = last_positive.to_host();
    std::vector<double> offsets(static_cast<std::size_t>(n_chunks) + 1, 0.0);
    for (i64 c = 0; c < n_chunks; ++c) offsets[c + 1] = offsets[c] + mass[c];
    // Targets at or past φ clip to the last row with w·d > 0 (the last row when φ = 0).
    i64 clip = n - 1;
    for (i64 c = n_chunks - 1; c >= 0; --c)
      if (last[c] >= 0) {
        clip = last[c];
        break;
      }
    std::vector<float> w(kRows), dm(kRows);
    i64 loaded = -1;  // the chunk whose weights and d(x) are in w, dm
    for (const double t : targets) {
      // The chunk whose offsets hold t; past φ, the clip.
      const i64 c = std::upper_bound(offsets.begin() + 1, offsets.end(), t) - (offsets.begin() + 1);
      if (c >= n_chunks) {
        out.push_back(clip);
        continue;
      }
      const i64 begin = c * kRows, count = std::min<i64>(kRows, n - begin);
      if (loaded != c) {
        ds.weights.download(w.data(), count, begin);
        ds.min_dist.download(dm.data(), count, begin);
        loaded = c;
      }
      // offsets[c + 1] > t, but the in-chunk sums (rounded in another order than the chunk's
      // total) can miss t: then the chunk's last row with w·d > 0, never a row of no mass.
      i64 found = last[c] >= 0 ? last[c] : clip;
      double running = offsets[c];
      for (i64 i = 0; i < count; ++i) {
        running += static_cast<double>(w[i]) * static_cast<double>(dm[i]);
        if (running > t) {
          found = begin + i;
          break;
        }
      }
      out.push_back(found);
    }
    return out;
  }

  std::vector<std::int64_t> oversample(const Dataset& data, double factor, std::uint64_t seed,
                                       std::int64_t first_row) override {
    const auto& ds = cuda_data(data);
    std::vector<std::int64_t> out;
    if (ds.n == 0) return out;
    // Stream compaction keeps the counting order: the picked rows come out ascending.
    const gpu::OversamplePick pick{ds.weights.data(), ds.min_dist.data(), factor, seed, first_row};
    const thrust::counting_iterator<i64> first(0), last(ds.n);
    const i64 count = thrust_call("oversample", [&] {
      return static_cast<i64>(thrust::count_if(thrust::device, first, last, pick));
    });
    if (count == 0) return out;
    DeviceBuffer<i64> picked(count);
    thrust_call("oversample", [&] {
      thrust::copy_if(thrust::device, first, last, picked.data(), pick);
      return 0;
    });
    out.resize(static_cast<std::size_t>(count));
    picked.download(out.data(), count);
    return out;
  }

  // ---- mini-batch -------------------------------------------------------------------------

  double minibatch_step(const Dataset& data, std::span<const std::int64_t> batch,
                        MatrixView<float> centroids, std::span<double> counts) override {
    const auto& ds = cuda_data(data);
    check_centres(ds, centroids, 1);
    SEGFORGE_ASSERT(static_cast<i64>(counts.size()) == centroids.rows,
                    "counts must have n_clusters entries");
    for (const auto r : batch) SEGFORGE_ASSERT(r >= 0 && r < ds.n, "batch row out of range");
    const i64 k = centroids.rows, d = ds.d, m = static_cast<i64>(batch.size());
    if (m == 0) return 0.0;
    DeviceBuffer<i64> index = gpu::to_device(batch.data(), m);
    const std::vector<double> t =
        pass<false>(ds, index.data(), m, MatrixView<const float>(centroids), k, nullptr, nullptr, 1);
    // Sculley (2010) with per-centre counts, as scikit-learn's _minibatch_update_dense:
    // c_k ← (c_k·n_k + Σ w·x) / (n_k + b_k), n_k ← n_k + b_k, for the centres the batch touched.
    for (i64 l = 0; l < k; ++l) {
      const double b = t[l * (d + 1) + d];
      if (!(b > 0.0)) continue;
      const double n_new = counts[l] + b;
      float* cl = centroids.row(l);
      const double* sum = t.data() + l * (d + 1);
      for (i64 j = 0; j < d; ++j)
        cl[j] = static_cast<float>((static_cast<double>(cl[j]) * counts[l] + sum[j]) / n_new);
      counts[l] = n_new;
    }
    return t[k * (d + 1)];
  }

  // ---- metrics and distance matrices --------------------------------------------------------

  LabelStats label_stats(const Dataset& data, std::span<const std::int32_t> labels,
                         int n_clusters, MatrixView<const float> centroids) override {
    const auto& ds = cuda_data(data);
    const i64 k = n_clusters, d = ds.d;
    SEGFORGE_ASSERT(static_cast<i64>(labels.size()) == ds.n, "labels must have n_samples entries");
    const bool with_centres = centroids.rows > 0;
    SEGFORGE_ASSERT(!with_centres || (centroids.rows == k && centroids.cols == d),
                    "centroids must be empty or [n_clusters x n_features]");
    check_labels(labels, n_clusters);
    DeviceBuffer<std::int32_t> dev_labels = gpu::to_device(labels.data(), ds.n);
    const std::vector<double> t = pass<true>(
        ds, nullptr, ds.n, with_centres ? centroids : MatrixView<const float>{nullptr, 0, d}, k,
        dev_labels.data(), nullptr, /*n_extra=*/3);
    LabelStats out;
    out.sums.resize(static_cast<std::size_t>(k * d));
    out.counts.resize(static_cast<std::size_t>(k));
    out.dist_sums.resize(static_cast<std::size_t>(k));
    out.sq_dist_sums.resize(static_cast<std::size_t>(k));
    for (i64 l = 0; l < k; ++l) {
      const double* v = t.data() + l * (d + 3);
      std::copy_n(v, d, out.sums.begin() + l * d);
      out.counts[l] = v[d];
      out.dist_sums[l] = v[d + 1];
      out.sq_dist_sums[l] = v[d + 2];
    }
    return out;
  }

  Matrix<double> cluster_distance_sums(const Dataset& data, std::span<const std::int32_t> labels,
                                       int n_clusters, std::int64_t row_begin,
                                       std::int64_t row_count) override {
    const auto& ds = cuda_data(data);
    const i64 n = ds.n, d = ds.d, k = n_clusters;
    SEGFORGE_ASSERT(static_cast<i64>(labels.size()) == n, "labels must have n_samples entries");
    SEGFORGE_ASSERT(row_begin >= 0 && row_count >= 0 && row_begin + row_count <= n,
                    "row range out of bounds");
    check_labels(labels, n_clusters);
    Matrix<double> out(row_count, k, 0.0);
    if (row_count == 0) return out;
    // Centre by the column means: distances do not change, and the cancellation in
    // ||x̃||² + ||ỹ||² − 2x̃·ỹ shrinks with the norms.
    std::vector<double> mean = column_sums(ds, nullptr);
    std::vector<float> mu(static_cast<std::size_t>(d));
    for (i64 j = 0; j < d; ++j) mu[j] = static_cast<float>(mean[j] / static_cast<double>(n));
    DeviceBuffer<float> dev_mu = gpu::to_device(mu.data(), d);
    DeviceBuffer<float> centred_norms(n);
    gpu::centred_norms_kernel<<<grid_for(n, kThreads), kThreads>>>(
        ds.rows.data(), n, static_cast<int>(d), dev_mu.data(), centred_norms.data());
    gpu::check_launch("centred_norms_kernel");
    // Column rows grouped by label (stable counting sort), so each label is one contiguous run.
    std::vector<i64> run_begin(static_cast<std::size_t>(k) + 1, 0), order(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i) ++run_begin[labels[i] + 1];
    for (i64 j = 0; j < k; ++j) run_begin[j + 1] += run_begin[j];
    {
      std::vector<i64> next(run_begin.begin(), run_begin.end() - 1);
      for (i64 i = 0; i < n; ++i) order[next[labels[i]]++] = i;
    }
    DeviceBuffer<i64> dev_order = gpu::to_device(order.data(), n);
    DeviceBuffer<i64> dev_runs = gpu::to_device(run_begin.data(), k + 1);
    DeviceBuffer<double> dev_out(row_count * k);
    constexpr int kSilThreads = 128;
    gpu::cluster_distance_sums_kernel<<<grid_for(row_count, kSilThreads), kSilThreads>>>(
        ds.rows.data(), ds.weights.data(), static_cast<int>(d), dev_mu.data(),
        centred_norms.data(), dev_order.data(), dev_runs.data(), static_cast<int>(k), row_begin,
        row_count, dev_out.data());
    gpu::check_launch("cluster_distance_sums_kernel");
    dev_out.download(out.data(), row_count * k);
    return out;
  }

  Matrix<float> distance_tile(const Dataset& a, std::int64_t a_begin, std::int64_t a_count,
                              const Dataset& b, std::int64_t b_begin, std::int64_t b_count,
                              bool squared) override {
    const auto& da = cuda_data(a);
    const auto& db = cuda_data(b);
    SEGFORGE_ASSERT(da.d == db.d, "datasets differ in n_features");
    SEGFORGE_ASSERT(a_begin >= 0 && a_count >= 0 && a_begin + a_count <= da.n,
                    "a row range out of bounds");
    SEGFORGE_ASSERT(b_begin >= 0 && b_count >= 0 && b_begin + b_count <= db.n,
                    "b row range out of bounds");
    const i64 d = da.d;
    Matrix<float> out(a_count, b_count);
    if (a_count == 0 || b_count == 0) return out;
    DeviceBuffer<float> dev(a_count * b_count);
    gpu::distance_tile_kernel<<<grid_for(a_count * b_count, kThreads), kThreads>>>(
        da.rows.data() + a_begin * d, da.norms.data() + a_begin, a_count,
        db.rows.data() + b_begin * d, db.norms.data() + b_begin, b_count, static_cast<int>(d),
        squared, dev.data());
    gpu::check_launch("distance_tile_kernel");
    dev.download(out.data(), a_count * b_count);
    return out;
  }

  // ---- eps-neighbourhoods (DBSCAN): neighbours.cuh, one thread per query row ----------------

  Matrix<std::int64_t> grid_cells(const Dataset& data, std::span<const std::int32_t> columns,
                                  std::span<const double> origin, double side) override {
    const auto& ds = cuda_data(data);
    SEGFORGE_ASSERT(columns.size() == origin.size() && side > 0.0, "grid columns, origins and side");
    const i64 p = static_cast<i64>(columns.size());
    Matrix<std::int64_t> out(ds.n, p);
    if (ds.n == 0 || p == 0) return out;
    DeviceBuffer<std::int32_t> cols = gpu::to_device(columns.data(), p);
    DeviceBuffer<double> org = gpu::to_device(origin.data(), p);
    DeviceBuffer<std::int64_t> cells(ds.n * p);
    gpu::grid_cells_kernel<<<grid_for(ds.n, kThreads), kThreads>>>(ds.rows.data(), ds.n, static_cast<int>(ds.d), cols.data(),
                                                                   org.data(), static_cast<int>(p), side, cells.data());
    gpu::check_launch("grid_cells_kernel");
    cells.download(out.data(), ds.n * p);
    return out;
  }

  std::vector<double> eps_neighbour_weights(const Dataset& data, const RowBlocks& blocks, const BlockPairs& pairs,
                                            double eps, double stop_at) override {
    const auto& ds = cuda_data(data);
    EpsLaunch l(ds, blocks, ds, blocks, pairs, eps, [](i64) { return true; });
    DeviceBuffer<double> out(ds.n);
    gpu::check(cudaMemset(out.data(), 0, out.bytes()), "cudaMemset");
    if (l.p.n_active > 0) {
      gpu::eps_weights_kernel<<<grid_for(l.p.n_active, kThreads), kThreads>>>(l.p, ds.weights.data(), stop_at, out.data());
      gpu::check_launch("eps_weights_kernel");
    }
    return out.to_host();
  }

  std::vector<std::int64_t> eps_lower_root(const Dataset& data, const RowBlocks& blocks, const BlockPairs& pairs, double eps,
                                         std::span<const std::int64_t> roots) override {
    const auto& ds = cuda_data(data);
    SEGFORGE_ASSERT(static_cast<i64>(roots.size()) == ds.n, "one root per row");
    EpsLaunch l(ds, blocks, ds, blocks, pairs, eps, [&](i64 i) { return roots[static_cast<std::size_t>(i)] >= 0; });
    DeviceBuffer<std::int64_t> dev_roots = gpu::to_device(roots.data(), ds.n);
    DeviceBuffer<std::int64_t> out = gpu::to_device(roots.data(), ds.n);
    if (l.p.n_active > 0) {
      gpu::eps_lower_root_kernel<<<grid_for(l.p.n_active, kThreads), kThreads>>>(l.p, dev_roots.data(), out.data());
      gpu::check_launch("eps_lower_root_kernel");
    }
    return out.to_host();
  }

  void nearest_within_eps(const Dataset& query, const RowBlocks& query_blocks, std::span<const std::uint8_t> query_mask,
                          const Dataset& reference, const RowBlocks& reference_blocks,
                          std::span<const std::uint8_t> reference_mask, const BlockPairs& pairs, double eps,
                          std::span<std::int64_t> nearest, std::span<double> sq_distances) override {
    const auto& q = cuda_data(query);
    const auto& r = cuda_data(reference);
    SEGFORGE_ASSERT(static_cast<i64>(nearest.size()) == q.n && static_cast<i64>(sq_distances.size()) == q.n,
                    "one output per query row");
    SEGFORGE_ASSERT(reference_mask.empty() || static_cast<i64>(reference_mask.size()) == r.n, "one reference mask per row");
    EpsLaunch l(q, query_blocks, r, reference_blocks, pairs, eps,
                [&](i64 i) { return query_mask.empty() || query_mask[static_cast<std::size_t>(i)] != 0; });
    std::vector<std::int64_t> none(static_cast<std::size_t>(q.n), -1);
    std::vector<double> inf(static_cast<std::size_t>(q.n), std::numeric_limits<double>::infinity());
    DeviceBuffer<std::int64_t> dev_nearest = gpu::to_device(none.data(), q.n);
    DeviceBuffer<double> dev_d2 = gpu::to_device(inf.data(), q.n);
    DeviceBuffer<std::uint8_t> mask(reference_mask.empty() ? 0 : r.n);
    if (!reference_mask.empty()) mask.upload(reference_mask.data(), r.n);
    if (l.p.n_active > 0) {
      gpu::nearest_kernel<<<grid_for(l.p.n_active, kThreads), kThreads>>>(
          l.p, reference_mask.empty() ? nullptr : mask.data(), dev_nearest.data(), dev_d2.data());
      gpu::check_launch("nearest_kernel");
    }
    if (q.n > 0) {
      dev_nearest.download(nearest.data(), q.n);
      dev_d2.download(sq_distances.data(), q.n);
    }
  }

 private:
  /// Centres for a pass; `at_least` is 1 where every row needs a nearest centre.
  static void check_centres(const CudaDataset& ds, MatrixView<const float> c, i64 at_least = 0) {
    SEGFORGE_ASSERT(c.cols == ds.d, "centroids must have n_features columns");
    SEGFORGE_ASSERT(c.rows >= at_least && c.rows < std::numeric_limits<std::int32_t>::max(),
                    "centroid count out of range");
  }

  static void check_labels(std::span<const std::int32_t> labels, int n_clusters) {
    SEGFORGE_ASSERT(n_clusters >= 1, "n_clusters must be >= 1");
    for (const auto l : labels) SEGFORGE_ASSERT(l >= 0 && l < n_clusters, "label out of range");
  }

  /// Column sums (mean == nullptr) or sums of squared deviations from `mean` [d] (device).
  std::vector<double> column_sums(const CudaDataset& ds, const double* mean) const {
    if (ds.n == 0 || ds.d == 0) return std::vector<double>(static_cast<std::size_t>(ds.d), 0.0);
    const i64 n_blocks = ceil_div(ds.n, kSubRows);
    DeviceBuffer<double> partial(n_blocks * ds.d);
    gpu::column_sums_kernel<<<static_cast<unsigned>(n_blocks), kThreads>>>(
        ds.rows.data(), ds.n, static_cast<int>(ds.d), mean, partial.data());
    gpu::check_launch("column_sums_kernel");
    return reduce_blocks(partial, n_blocks, ds.d);
  }

  /// d(x) ← (reset ? +inf : d(x)) min over `centres`; returns φ = Σ w·d(x).
  double min_distances(CudaDataset& ds, MatrixView<const float> centres, bool reset) {
    check_centres(ds, centres);
    if (ds.n == 0) return 0.0;
    const i64 n_blocks = ceil_div(ds.n, kSubRows);
    // Workspace: centres | block φ [n_blocks] | φ; pinned: centres | φ.
    const i64 centre_bytes = Workspace::aligned(SentCentres::bytes(centres.rows, ds.d));
    const i64 phi_at = centre_bytes + Workspace::aligned(n_blocks * static_cast<i64>(sizeof(double)));
    ws_.reserve(phi_at + static_cast<i64>(sizeof(double)), centre_bytes + static_cast<i64>(sizeof(double)));
    const SentCentres c = send_centres(centres, ws_.host(), ws_.device());
    double* block_phi = reinterpret_cast<double*>(ws_.device() + centre_bytes);
    double* phi = reinterpret_cast<double*>(ws_.device() + phi_at);
    double* host_phi = reinterpret_cast<double*>(ws_.host() + centre_bytes);
    const int d = static_cast<int>(ds.d), k = static_cast<int>(c.k);
    bool done = false;
    with_padded_dim(gpu::padded_dim(ds.d), [&](auto dp) {
      constexpr int DP = decltype(dp)::value;
      if constexpr (DP > 0) {
        const int tile_k = centre_tile_for(gpu::min_distance_kernel<DP>, k, DP, 0);
        if (tile_k == 0 && k > 0) return;
        const i64 bytes = gpu::staged_centre_bytes(tile_k, DP);
        gpu::min_distance_kernel<DP><<<static_cast<unsigned>(n_blocks), kThreads, static_cast<std::size_t>(bytes)>>>(
            ds.rows.data(), ds.norms.data(), ds.weights.data(), ds.n, d, c.values, c.norms, k,
            tile_k, reset, ds.min_dist.data(), block_phi);
        gpu::check_launch("min_distance_kernel (registers)");
        done = true;
      }
    });
    if (!done) {  // d past kMaxPaddedDim, or centres past the shared memory
      gpu::min_distance_kernel<0><<<static_cast<unsigned>(n_blocks), kThreads>>>(
          ds.rows.data(), ds.norms.data(), ds.weights.data(), ds.n, d, c.values, c.norms, k,
          /*tile_k=*/0, reset, ds.min_dist.data(), block_phi);
      gpu::check_launch("min_distance_kernel");
    }
    launch_reduce_blocks(block_phi, n_blocks, 1, phi);
    gpu::check(cudaMemcpyAsync(host_phi, phi, sizeof(double), cudaMemcpyDeviceToHost, 0),
               "cudaMemcpyAsync to host");
    gpu::check(cudaStreamSynchronize(0), "min-distance pass");
    return *host_phi;
  }

  /// Runs pass_kernel over n_rows rows (data rows `index`, or 0..n_rows) and returns the
  /// per-cluster totals [k x (d + n_extra)], then Σ w·d(x) and the number of changed labels.
  template <bool kGiven>
  std::vector<double> pass(const CudaDataset& ds, const i64* index, i64 n_rows,
                           MatrixView<const float> centres, i64 k, const std::int32_t* given_labels,
                           std::int32_t* labels, int n_extra) const {
    const i64 d = ds.d;
    const i64 width = k * (d + n_extra) + 2;
    if (n_rows == 0) return std::vector<double>(static_cast<std::size_t>(width), 0.0);
    // Rows per block: whole sub-chunks, as many blocks as the partial budget allows (at most one
    // per sub-chunk). A function of (n_rows, k, d) alone.
    const i64 sub_chunks = ceil_div(n_rows, kSubRows);
    const i64 max_blocks = std::max<i64>(1, kPartialBudgetBytes / (width * 8));
    const i64 rows_per_block = ceil_div(sub_chunks, std::min(sub_chunks, max_blocks)) * kSubRows;
    const i64 n_blocks = ceil_div(n_rows, rows_per_block);
    if constexpr (!kGiven) {
      if (index == nullptr && labels != nullptr && n_extra == 1 && max_blocks < kMinPassBlocks &&
          sub_chunks > max_blocks)
        return split_pass(ds, centres, labels);
    }
    // Workspace: centres | partial [n_blocks x width] | totals [width]; pinned: centres | totals.
    const i64 sent_bytes = Workspace::aligned(SentCentres::bytes(centres.rows, d));
    const i64 partial_bytes = n_blocks * width * static_cast<i64>(sizeof(double));
    const i64 total_at = sent_bytes + Workspace::aligned(partial_bytes);
    const i64 total_bytes = width * static_cast<i64>(sizeof(double));
    ws_.reserve(total_at + total_bytes, sent_bytes + total_bytes);
    const SentCentres sent = send_centres(centres, ws_.host(), ws_.device());
    const SentCentres* c = sent.values != nullptr ? &sent : nullptr;
    double* partial = reinterpret_cast<double*>(ws_.device() + sent_bytes);
    double* total = reinterpret_cast<double*>(ws_.device() + total_at);
    double* host_total = reinterpret_cast<double*>(ws_.host() + sent_bytes);
    gpu::check(cudaMemsetAsync(partial, 0, static_cast<std::size_t>(partial_bytes), 0), "cudaMemsetAsync");

    gpu::PassArgs a;
    a.x = ds.rows.data();
    a.norms = ds.norms.data();
    a.weights = ds.weights.data();
    a.index = index;
    a.n_rows = n_rows;
    a.d = static_cast<int>(d);
    a.centres = c != nullptr ? c->values : nullptr;
    a.centre_norms = c != nullptr ? c->norms : nullptr;
    a.k = static_cast<int>(k);
    a.given_labels = given_labels;
    a.labels = labels;
    a.rows_per_block = rows_per_block;
    a.n_extra = n_extra;
    a.key_bits = std::bit_width(static_cast<std::uint32_t>(k));
    a.partial = partial;
    const i64 extra_bytes = static_cast<i64>(n_extra) * kSubRows * static_cast<i64>(sizeof(double));
    const i64 centre_bytes = (k * d + k) * static_cast<i64>(sizeof(float));
    const i64 budget = pass_shared_budget_[kGiven ? 1 : 0];
    SEGFORGE_ASSERT(extra_bytes <= budget, "pass kernel: shared memory budget too small");
    bool done = false;
    if constexpr (!kGiven) {
      // Rows in registers, centres through shared memory in tiles, for d up to kMaxPaddedDim (128).
      with_padded_dim(c != nullptr ? gpu::padded_dim(d) : 0, [&](auto dp) {
        constexpr int DP = decltype(dp)::value;
        if constexpr (DP > 0) {
          const int tile_k = centre_tile_for(gpu::pass_kernel<false, DP>, a.k, DP, extra_bytes);
          if (tile_k == 0) return;
          const i64 bytes = extra_bytes + gpu::staged_centre_bytes(tile_k, DP);
          a.tile_k = tile_k;
          gpu::pass_kernel<false, DP><<<static_cast<unsigned>(n_blocks), kThreads, static_cast<std::size_t>(bytes)>>>(a);
          gpu::check_launch("pass_kernel (registers)");
          done = true;
        }
      });
    }
    if (!done) {
      a.shared_centres = c != nullptr && extra_bytes + centre_bytes <= budget;
      const std::size_t dynamic = static_cast<std::size_t>(extra_bytes + (a.shared_centres ? centre_bytes : 0));
      gpu::pass_kernel<kGiven><<<static_cast<unsigned>(n_blocks), kThreads, dynamic>>>(a);
      gpu::check_launch("pass_kernel");
    }
    launch_reduce_blocks(partial, n_blocks, width, total);
    gpu::check(cudaMemcpyAsync(host_total, total, static_cast<std::size_t>(total_bytes),
                               cudaMemcpyDeviceToHost, 0),
               "cudaMemcpyAsync to host");
    gpu::check(cudaStreamSynchronize(0), "pass");
    return std::vector<double>(host_total, host_total + width);
  }

  /// Queues the nearest of centres c for every row: labels [n], and dists [n] unless null.
  void launch_assign(const CudaDataset& ds, const SentCentres& c, std::int32_t* labels,
                     float* dists) const {
    const int d = static_cast<int>(ds.d), k = static_cast<int>(c.k);
    bool done = false;
    with_padded_dim(gpu::padded_dim(ds.d), [&](auto dp) {
      constexpr int DP = decltype(dp)::value;
      if constexpr (DP > 0) {
        const int tile_k = centre_tile_for(gpu::assign_reg_kernel<DP>, k, DP, 0);
        if (tile_k == 0) return;
        const i64 bytes = gpu::staged_centre_bytes(tile_k, DP);
        gpu::assign_reg_kernel<DP><<<grid_for(ds.n, kSubRows), kThreads, static_cast<std::size_t>(bytes)>>>(
            ds.rows.data(), ds.norms.data(), ds.n, d, c.values, c.norms, k, tile_k, labels, dists);
        gpu::check_launch("assign_reg_kernel");
        done = true;
      }
    });
    if (!done) {  // d past kMaxPaddedDim, or not four centres fit the shared memory
      gpu::assign_kernel<<<grid_for(ds.n, kThreads), kThreads>>>(
          ds.rows.data(), ds.norms.data(), ds.n, d, c.values, c.norms, k, labels, dists);
      gpu::check_launch("assign_kernel");
    }
  }

  /// Centres per shared-memory tile for a register kernel over k centres of dp floats, with
  /// `extra_bytes` of other dynamic shared memory: gpu::centre_tile within centre_tile_bytes(dp)
  /// and what this device lets a block have beside the kernel's static buffers (its opt-in limit,
  /// which the kernel's dynamic limit is raised to where needed). 0: not even four centres fit.
  template <class Kernel>
  int centre_tile_for(Kernel* kernel, int k, int dp, i64 extra_bytes) const {
    cudaFuncAttributes attr{};
    gpu::check(cudaFuncGetAttributes(&attr, kernel), "cudaFuncGetAttributes");
    const i64 room = static_cast<i64>(props_.sharedMemPerBlockOptin) -
                     static_cast<i64>(attr.sharedSizeBytes) - extra_bytes;
    const int tile_k = gpu::centre_tile(k, dp, std::min(gpu::centre_tile_bytes(dp), room));
    if (tile_k <= 0) return 0;
    const i64 bytes = extra_bytes + gpu::staged_centre_bytes(tile_k, dp);
    if (bytes > attr.maxDynamicSharedSizeBytes)
      gpu::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(bytes)),
                 "cudaFuncSetAttribute");
    return tile_k;
  }

  /// The Lloyd pass over every row (labels: the previous ones, updated) where its per-block
  /// partials would starve the grid: the distances, which are the work, on a full grid (one block
  /// per sub-chunk, assign's kernels), then the label-given pass for the sums and counts (sorting
  /// and adding, cheap on a small grid), and the inertia and changed labels by sub-chunk. The same
  /// totals as pass<false> up to the order of the double sums, which the shape alone fixes.
  std::vector<double> split_pass(const CudaDataset& ds, MatrixView<const float> centres,
                                 std::int32_t* labels) const {
    const i64 n = ds.n, k = centres.rows, d = ds.d;
    const i64 sub_chunks = ceil_div(n, kSubRows);
    // Own buffers, not the workspace: the label-given pass below reserves it again while these
    // kernels may still run.
    const DeviceCentres dc(centres);
    const SentCentres c{dc.values.data(), dc.norms.data(), k};
    DeviceBuffer<std::int32_t> fresh(n);
    DeviceBuffer<float> dists(n);
    DeviceBuffer<double> block_totals(2 * sub_chunks);
    DeviceBuffer<double> totals(2);
    launch_assign(ds, c, fresh.data(), dists.data());
    gpu::split_totals_kernel<<<static_cast<unsigned>(sub_chunks), kThreads>>>(
        ds.weights.data(), dists.data(), fresh.data(), labels, n, block_totals.data());
    gpu::check_launch("split_totals_kernel");
    launch_reduce_blocks(block_totals.data(), sub_chunks, 2, totals.data());
    std::vector<double> t = pass<true>(ds, nullptr, n, MatrixView<const float>{nullptr, 0, d}, k,
                                       fresh.data(), nullptr, /*n_extra=*/1);
    const std::vector<double> inertia_changed = totals.to_host();
    t[k * (d + 1)] = inertia_changed[0];
    t[k * (d + 1) + 1] = inertia_changed[1];
    return t;
  }

  /// The device copies of one eps op's blocks and pairs, and the query rows it processes (those
  /// `keep` admits, in block order), as gpu::EpsPairs.
  struct EpsLaunch {
    template <class Keep>
    EpsLaunch(const CudaDataset& q, const RowBlocks& qb, const CudaDataset& r, const RowBlocks& rb, const BlockPairs& pairs,
              double eps, Keep keep) {
      SEGFORGE_ASSERT(q.d == r.d, "query and reference differ in n_features");
      SEGFORGE_ASSERT(static_cast<i64>(qb.order.size()) == q.n && static_cast<i64>(rb.order.size()) == r.n,
                      "blocks must order every row");
      SEGFORGE_ASSERT(static_cast<i64>(pairs.offsets.size()) == qb.n_blocks() + 1, "pairs must list every query block");
      std::vector<std::int64_t> rows, row_block;
      for (i64 b = 0; b < qb.n_blocks(); ++b)
        for (i64 k = qb.starts[b]; k < qb.starts[b + 1]; ++k)
          if (keep(qb.order[k])) rows.push_back(qb.order[k]), row_block.push_back(b);
      active = upload(rows);
      active_block = upload(row_block);
      offsets = upload(pairs.offsets);
      targets = upload(pairs.targets);
      r_order = upload(rb.order);
      r_starts = upload(rb.starts);
      p.q_rows = q.rows.data();
      p.r_rows = r.rows.data();
      p.d = static_cast<int>(q.d);
      p.active = active.data();
      p.active_block = active_block.data();
      p.n_active = static_cast<i64>(rows.size());
      p.offsets = offsets.data();
      p.targets = targets.data();
      p.r_order = r_order.data();
      p.r_starts = r_starts.data();
      p.eps2 = eps * eps;
    }
    static DeviceBuffer<std::int64_t> upload(const std::vector<std::int64_t>& v) {
      DeviceBuffer<std::int64_t> out(static_cast<i64>(v.size()));
      if (!v.empty()) out.upload(v.data(), static_cast<i64>(v.size()));
      return out;
    }
    DeviceBuffer<std::int64_t> active, active_block, offsets, targets, r_order, r_starts;
    gpu::EpsPairs p;
  };

  int device_;
  cudaDeviceProp props_{};
  int driver_version_ = 0;
  int runtime_version_ = 0;
  i64 pass_shared_budget_[2] = {0, 0};
  mutable Workspace ws_;  ///< pass() is const; one call at a time uses it
};

}  // namespace

bool cuda_available(std::string* why_not) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  // The runtime and the architectures built, so that a machine without a device (or with too old
  // a driver) still tells what this binary would need.
  int runtime = 0;
  (void)cudaRuntimeGetVersion(&runtime);
  const std::string build = " (CUDA runtime " + cuda_version_text(runtime) + ", code for " + built_architectures() + ")";
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    if (why_not) *why_not = std::string("CUDA runtime: ") + cudaGetErrorString(status) + build;
    return false;
  }
  if (count == 0) {
    if (why_not) *why_not = "no CUDA device found" + build;
    return false;
  }
  return true;
}

std::unique_ptr<Backend> make_cuda_backend(std::string* why_not) {
  if (!cuda_available(why_not)) return nullptr;
  try {
    return std::make_unique<CudaBackend>(0);
  } catch (const Error& e) {
    if (why_not) *why_not = e.what();
    return nullptr;
  }
}

}  // namespace segforge
