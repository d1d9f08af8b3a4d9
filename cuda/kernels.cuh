#pragma once
// Kernels of the CUDA backend. Distances are ||x||² − 2x·c + ||c||² in float32 clamped at 0,
// with the dot product accumulated by __fmaf_rn over the features in ascending order and the
// expansion rounded as the CPU backend's direct kernel (cpu/kernels.hpp expand_distance), so both
// backends give the same float32 distances. The target is built with --fmad=false: nothing else
// is fused.
//
// Determinism: every sum is owned by one thread and runs in a fixed order (rows in order, or a
// cub::BlockReduce of a fixed-size block, whose pattern depends on the block size alone); per-block
// partials are reduced over blocks by reduce_blocks_kernel in an order fixed by the block count
// (lane strides, then a shuffle tree). Grids are a function of the shape alone. No floating-point atomics: results are bit-identical run to run and across GPUs.

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_reduce.cuh>

#include <cstdint>

#include "segforge/rng.hpp"

namespace segforge::gpu {

using i64 = std::int64_t;

constexpr int kThreads = 256;                 ///< threads per block, every row kernel
constexpr int kItems = 4;                     ///< rows per thread per sub-chunk
constexpr int kSubRows = kThreads * kItems;   ///< rows per sub-chunk: one sort, one pass of slots
constexpr int kOffsetBits = 10;               ///< bits of a row's offset inside a sub-chunk
static_assert((1 << kOffsetBits) == kSubRows, "offsets must fill the low key bits exactly");

/// A squared distance below this fraction of ||x̃||² + ||ỹ||² (centred norms) is recomputed as
/// Σ (x − y)² in double from the original rows (as the CPU backend's kRecompute).
constexpr float kRecompute = 1.0f / 16.0f;

__device__ __forceinline__ float expand_distance(float dot, float xn, float cn) {
  // (||x||² − 2x·c) + ||c||²: the fma's product is exact, so this rounds like the unfused form.
  return fmaxf(0.0f, __fadd_rn(__fmaf_rn(-2.0f, dot, xn), cn));
}

__device__ __forceinline__ float sq_distance(const float* x, float xn, const float* c, float cn,
                                             int d) {
  float dot = 0.0f;
  for (int j = 0; j < d; ++j) dot = __fmaf_rn(x[j], c[j], dot);
  return expand_distance(dot, xn, cn);
}

/// Nearest of k centres [k x d] (norms cn [k]); ties keep the lower index (strict <, ascending).
__device__ __forceinline__ void nearest(const float* x, float xn, const float* c, const float* cn,
                                        int k, int d, float& best_d, int& best_k) {
  best_d = __int_as_float(0x7f800000);  // +inf
  best_k = 0;
  for (int l = 0; l < k; ++l) {
    const float dist = sq_distance(x, xn, c + static_cast<i64>(l) * d, cn[l], d);
    if (dist < best_d) {
      best_d = dist;
      best_k = l;
    }
  }
}

// ---- rows in registers, centres staged in shared memory ----------------------------------------
//
// The register kernels hold a row in DP registers (d rounded up to one of kPaddedDims, zeros
// past d) and read the centres from shared memory in tiles of tile_k centres (all k in one tile
// when they fit centre_tile_bytes, staged once per block), each staged as [kp x DP] (kp = the tile's
// centres rounded up to a multiple of 4, zeros past d) followed by the kp norms (+inf past the
// tile's centres). Tiles run in ascending order and the running best carries over, so the argmin
// is the one of a single loop over all centres. Four centres
// are scored at once, each by its own __fmaf_rn chain over j ascending from +0: the padded terms add
// 0·0 = +0 after the d real ones, which leaves a nonzero dot as it is and can at most turn a −0 dot
// (a product's underflow) into +0, which the expansion rounds the same (fma(−2, ±0, xn) = xn for
// xn ≥ +0), so every distance has the bits of `sq_distance`; a padded centre's distance is +inf
// and never passes the strict <, so the argmin is `nearest`'s. Reads of the staged centres are
// float4 broadcasts (every lane of a warp reads the same address): one LDS.128 per four FMAs.

/// Centres per group scored together (and the multiple k is padded to).
constexpr int kCentreGroup = 4;

/// k rounded up to kCentreGroup.
__host__ __device__ constexpr int padded_centres(int k) {
  return (k + kCentreGroup - 1) / kCentreGroup * kCentreGroup;
}

/// Shared memory for one tile of staged centres of dp floats, where the device allows it: 32 KiB
/// leaves several blocks per SM up to 48 features; from 64 features the registers allow one or two
/// blocks per SM, and 96 KiB tiles read the rows fewer times.
__host__ __device__ constexpr i64 centre_tile_bytes(int dp) { return dp >= 64 ? 96 << 10 : 32 << 10; }

/// Bytes of the staged centres and norms for k centres of dp floats (in 64 bits: k may be near
/// 2^31 when the caller asks whether they fit).
__host__ __device__ constexpr i64 staged_centre_bytes(i64 k, int dp) {
  return (k + kCentreGroup - 1) / kCentreGroup * kCentreGroup * (dp + 1) *
         static_cast<i64>(sizeof(float));
}

/// Stages centres c [k x d] and norms cn [k] into sc (16-byte aligned, staged_centre_bytes(k, DP)).
/// Every thread of the block takes part; the caller synchronises before reading sc.
template <int DP>
__device__ __forceinline__ void stage_centres(const float* __restrict__ c,
                                              const float* __restrict__ cn, int k, int d,
                                              float* sc) {
  const int kp = padded_centres(k);
  const int total = kp * DP;  // < 2^31: it fits in shared memory
  for (int e = threadIdx.x; e < total; e += blockDim.x) {
    const int l = e / DP, j = e - l * DP;
    sc[e] = l < k && j < d ? c[static_cast<i64>(l) * d + j] : 0.0f;
  }
  for (int l = threadIdx.x; l < kp; l += blockDim.x)
    sc[total + l] = l < k ? cn[l] : __int_as_float(0x7f800000);
}

/// The row x [d] into xr [DP], zeros past d; float4 loads where d is a multiple of 4 (rows are then
/// 16-byte aligned: the buffer comes from cudaMalloc and a row starts at a multiple of 4·d bytes).
template <int DP>
__device__ __forceinline__ void load_row(const float* __restrict__ x, int d, float (&xr)[DP]) {
  if ((d & 3) == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
#pragma unroll
    for (int q = 0; q < DP / 4; ++q) {
      const float4 v = 4 * q < d ? __ldg(x4 + q) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      xr[4 * q + 0] = v.x;
      xr[4 * q + 1] = v.y;
      xr[4 * q + 2] = v.z;
      xr[4 * q + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int j = 0; j < DP; ++j) xr[j] = j < d ? __ldg(x + j) : 0.0f;
  }
}

/// Centres per tile for k centres of dp floats in at most `bytes` of shared memory: all k where
/// they fit, else as many as fit, a multiple of kCentreGroup (0 where not even one group fits).
__host__ __device__ constexpr int centre_tile(int k, int dp, i64 bytes) {
  return staged_centre_bytes(k, dp) <= bytes
             ? k
             : static_cast<int>(bytes / ((dp + 1) * static_cast<i64>(sizeof(float))) /
                                kCentreGroup * kCentreGroup);
}

/// `nearest` for a row in registers against a tile of k centres staged by stage_centres<DP>, the
/// first of them centre l0: updates the running best_d, best_k (start: +inf, 0) with the same
/// distances and the same argmin (ascending, strict <) as `nearest`, four centres per step.
template <int DP>
__device__ __forceinline__ void nearest_staged(const float (&xr)[DP], float xn, const float* sc,
                                               int k, int l0, float& best_d, int& best_k) {
  const int kp = padded_centres(k);
  const float* scn = sc + kp * DP;
  for (int l = 0; l < kp; l += kCentreGroup) {
    const float4* c0 = reinterpret_cast<const float4*>(sc + l * DP);
    float dot0 = 0.0f, dot1 = 0.0f, dot2 = 0.0f, dot3 = 0.0f;
#pragma unroll
    for (int q = 0; q < DP / 4; ++q) {
      const float4 a = c0[q], b = c0[DP / 4 + q], c = c0[2 * (DP / 4) + q], e = c0[3 * (DP / 4) + q];
      dot0 = __fmaf_rn(xr[4 * q + 0], a.x, dot0);
      dot1 = __fmaf_rn(xr[4 * q + 0], b.x, dot1);
      dot2 = __fmaf_rn(xr[4 * q + 0], c.x, dot2);
      dot3 = __fmaf_rn(xr[4 * q + 0], e.x, dot3);
      dot0 = __fmaf_rn(xr[4 * q + 1], a.y, dot0);
      dot1 = __fmaf_rn(xr[4 * q + 1], b.y, dot1);
      dot2 = __fmaf_rn(xr[4 * q + 1], c.y, dot2);
      dot3 = __fmaf_rn(xr[4 * q + 1], e.y, dot3);
      dot0 = __fmaf_rn(xr[4 * q + 2], a.z, dot0);
      dot1 = __fmaf_rn(xr[4 * q + 2], b.z, dot1);
      dot2 = __fmaf_rn(xr[4 * q + 2], c.z, dot2);
      dot3 = __fmaf_rn(xr[4 * q + 2], e.z, dot3);
      dot0 = __fmaf_rn(xr[4 * q + 3], a.w, dot0);
      dot1 = __fmaf_rn(xr[4 * q + 3], b.w, dot1);
      dot2 = __fmaf_rn(xr[4 * q + 3], c.w, dot2);
      dot3 = __fmaf_rn(xr[4 * q + 3], e.w, dot3);
    }
    const float4 cn = *reinterpret_cast<const float4*>(scn + l);
    const float dist0 = expand_distance(dot0, xn, cn.x);
    const float dist1 = expand_distance(dot1, xn, cn.y);
    const float dist2 = expand_distance(dot2, xn, cn.z);
    const float dist3 = expand_distance(dot3, xn, cn.w);
    if (dist0 < best_d) best_d = dist0, best_k = l0 + l;
    if (dist1 < best_d) best_d = dist1, best_k = l0 + l + 1;
    if (dist2 < best_d) best_d = dist2, best_k = l0 + l + 2;
    if (dist3 < best_d) best_d = dist3, best_k = l0 + l + 3;
  }
}

/// Padded widths of the register kernels; d above the last runs the generic kernels. (No 12:
/// ptxas spills the pass kernel at 12, not at 8 or 16.)
constexpr int kPaddedDims[] = {4, 8, 16, 24, 32, 48, 64, 96, 128};
constexpr int kMaxPaddedDim = 128;

/// The register width for d features, or 0 (generic kernels) past kMaxPaddedDim.
inline int padded_dim(i64 d) {
  for (const int dp : kPaddedDims)
    if (d <= dp) return dp;
  return 0;
}

// ---- small per-row kernels -------------------------------------------------------------------

/// ||x||² accumulated in double, rounded once to float (the CPU's sq_norm).
__global__ void row_norms_kernel(const float* x, i64 n, int d, float* norms) {
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float* xi = x + i * d;
  double s = 0.0;
  for (int j = 0; j < d; ++j) s += static_cast<double>(xi[j]) * xi[j];
  norms[i] = static_cast<float>(s);
}

/// ||x − μ||² of the rows centred in float (silhouette), accumulated in double.
__global__ void centred_norms_kernel(const float* x, i64 n, int d, const float* mu, float* norms) {
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float* xi = x + i * d;
  double s = 0.0;
  for (int j = 0; j < d; ++j) {
    const float v = __fsub_rn(xi[j], mu[j]);
    s += static_cast<double>(v) * v;
  }
  norms[i] = static_cast<float>(s);
}

__global__ void fill_kernel(float* out, i64 n, float value) {
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = value;
}

/// out [rows x d] ← x[index[r]] for each r.
__global__ void gather_kernel(const float* x, int d, const i64* index, i64 rows, float* out) {
  const i64 e = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= rows * d) return;
  const i64 r = e / d, j = e % d;
  out[e] = x[index[r] * d + j];
}

/// Nearest centre and its squared distance for every row (dists may be null).
__global__ void assign_kernel(const float* x, const float* norms, i64 n, int d, const float* c,
                              const float* cn, int k, std::int32_t* labels, float* dists) {
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float best_d;
  int best_k;
  nearest(x + i * d, norms[i], c, cn, k, d, best_d, best_k);
  labels[i] = best_k;
  if (dists != nullptr) dists[i] = best_d;
}

/// Nearest centre of this thread's kItems rows (row_of(m): the data row of item m, or −1 for none)
/// among c [k x d] (norms cn), in tiles of tile_k centres staged in sc (staged_centre_bytes(tile_k,
/// DP)), ascending, with the row in registers. restage = false: sc already holds all k centres (one
/// tile, staged by the caller) and no barrier is taken. Every thread of the block calls it, and
/// with restage the caller's earlier readers of sc must be past a barrier.
template <int DP, class RowOf>
__device__ __forceinline__ void nearest_tiled(RowOf row_of, const float* __restrict__ x,
                                              const float* __restrict__ norms, int d,
                                              const float* __restrict__ c,
                                              const float* __restrict__ cn, int k, int tile_k,
                                              bool restage, float* sc, float (&best_d)[kItems],
                                              int (&best_k)[kItems]) {
#pragma unroll
  for (int m = 0; m < kItems; ++m) {
    best_d[m] = __int_as_float(0x7f800000);  // +inf
    best_k[m] = 0;
  }
  for (int l0 = 0; l0 < k; l0 += tile_k) {
    const int kt = k - l0 < tile_k ? k - l0 : tile_k;
    if (restage) {
      if (l0 > 0) __syncthreads();  // the previous tile's readers are done
      stage_centres<DP>(c + static_cast<i64>(l0) * d, cn + l0, kt, d, sc);
      __syncthreads();
    }
#pragma unroll
    for (int m = 0; m < kItems; ++m) {
      const i64 i = row_of(m);
      if (i >= 0) {
        float xr[DP];
        load_row<DP>(x + i * d, d, xr);
        nearest_staged<DP>(xr, norms[i], sc, kt, l0, best_d[m], best_k[m]);
      }
    }
  }
}

/// Row item m of a block's sub-chunk at base: base + tid + m·kThreads if below n, else −1.
struct SubChunkRows {
  i64 base, n;
  __device__ i64 operator()(int m) const {
    const i64 i = base + threadIdx.x + m * kThreads;
    return i < n ? i : -1;
  }
};

/// assign_kernel with the row in registers: block b owns rows [b·kSubRows, (b + 1)·kSubRows), each
/// thread rows tid + m·kThreads (coalesced label writes); the centres go through shared memory in
/// tiles of tile_k (dynamic shared memory of staged_centre_bytes(tile_k, DP)).
template <int DP>
__global__ void __launch_bounds__(kThreads)
    assign_reg_kernel(const float* __restrict__ x, const float* __restrict__ norms, i64 n, int d,
                      const float* __restrict__ c, const float* __restrict__ cn, int k, int tile_k,
                      std::int32_t* labels, float* dists) {
  extern __shared__ float4 s_centres4[];
  float* sc = reinterpret_cast<float*>(s_centres4);
  const i64 base = static_cast<i64>(blockIdx.x) * kSubRows;
  float best_d[kItems];
  int best_k[kItems];
  nearest_tiled<DP>(SubChunkRows{base, n}, x, norms, d, c, cn, k, tile_k, true, sc, best_d, best_k);
#pragma unroll
  for (int m = 0; m < kItems; ++m) {
    const i64 i = base + threadIdx.x + m * kThreads;
    if (i < n) {
      labels[i] = best_k[m];
      if (dists != nullptr) dists[i] = best_d[m];
    }
  }
}

/// Lanes per output of reduce_blocks_kernel (one warp).
constexpr int kReduceLanes = 32;

/// out[e] = Σ_b partial[b·width + e], one warp per output: lane t adds blocks t, t + 32, … in
/// order, then a fixed shuffle tree (offsets 16, 8, 4, 2, 1). The order depends on n_blocks alone
/// (a function of the shape), never on timing or the device. Launch with blockDim a multiple of 32
/// and ceil(width · 32 / blockDim) blocks.
__global__ void reduce_blocks_kernel(const double* __restrict__ partial, i64 n_blocks, i64 width,
                                     double* __restrict__ out) {
  const i64 e = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) / kReduceLanes;
  const int lane = static_cast<int>(threadIdx.x % kReduceLanes);
  if (e >= width) return;  // the whole warp: e is the same on all its lanes
  double t = 0.0;
  for (i64 b = lane; b < n_blocks; b += kReduceLanes) t += partial[b * width + e];
#pragma unroll
  for (int o = kReduceLanes / 2; o > 0; o /= 2) t += __shfl_down_sync(0xffffffffu, t, o);
  if (lane == 0) out[e] = t;
}

// ---- per-sub-chunk row passes (block b owns rows [b·kSubRows, (b + 1)·kSubRows)) ------------------

/// k-means++ / k-means|| d(x): d ← (reset ? +inf : d) min over the centres; block_phi[b] = Σ w·d
/// over the block's rows (each thread its kItems rows in order, then a fixed block reduction).
/// DP > 0: the row in registers, the centres through dynamic shared memory in tiles of tile_k
/// (staged_centre_bytes(tile_k, DP)); the same d(x) bits as DP = 0, which reads them from global
/// memory (tile_k unused).
template <int DP>
__global__ void __launch_bounds__(kThreads)
    min_distance_kernel(const float* x, const float* norms, const float* w, i64 n, int d,
                        const float* c, const float* cn, int k, int tile_k, bool reset,
                        float* min_dist, double* block_phi) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  extern __shared__ float4 s_centres4[];
  const i64 base = static_cast<i64>(blockIdx.x) * kSubRows;
  float tiled_d[kItems];
  int tiled_k[kItems];
  if constexpr (DP > 0)
    nearest_tiled<DP>(SubChunkRows{base, n}, x, norms, d, c, cn, k, tile_k, true,
                      reinterpret_cast<float*>(s_centres4), tiled_d, tiled_k);
  double acc = 0.0;
#pragma unroll
  for (int m = 0; m < kItems; ++m) {
    const i64 i = base + threadIdx.x + m * kThreads;
    if (i >= n) break;
    float best_d = __int_as_float(0x7f800000);
    int best_k;
    if constexpr (DP > 0) {
      best_d = tiled_d[m];  // +inf when k = 0
    } else {
      if (k > 0) nearest(x + i * d, norms[i], c, cn, k, d, best_d, best_k);
    }
    const float dm = reset ? best_d : fminf(min_dist[i], best_d);
    min_dist[i] = dm;
    acc += static_cast<double>(w[i]) * static_cast<double>(dm);
  }
  const double total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) block_phi[blockIdx.x] = total;
}

/// k-means++ trials: partial[b·t_count + t] = Σ over the block's rows of w·min(d(x), ||x − c_t||²).
__global__ void __launch_bounds__(kThreads)
    potentials_kernel(const float* x, const float* norms, const float* w, const float* min_dist,
                      i64 n, int d, const float* cand, const float* cand_norms, int t_count,
                      double* partial) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const i64 base = static_cast<i64>(blockIdx.x) * kSubRows;
  for (int t = 0; t < t_count; ++t) {
    double acc = 0.0;
    for (int m = 0; m < kItems; ++m) {
      const i64 i = base + threadIdx.x + m * kThreads;
      if (i >= n) break;
      const float dist = sq_distance(x + i * d, norms[i], cand + static_cast<i64>(t) * d,
                                     cand_norms[t], d);
      acc += static_cast<double>(w[i]) * static_cast<double>(fminf(min_dist[i], dist));
    }
    const double total = Reduce(tmp).Sum(acc);
    if (threadIdx.x == 0) partial[static_cast<i64>(blockIdx.x) * t_count + t] = total;
    __syncthreads();  // tmp is reused by the next candidate
  }
}

/// Rows per chunk of D²-sampling's cumulative mass: the CPU backend's chunk (cpu/chunks.hpp,
/// kChunkRows), so that both backends add the same masses in the same order and, on the same
/// d(x), sample the same rows.
constexpr int kMassRows = 2048;
constexpr int kMassItems = kMassRows / kThreads;
static_assert(kMassItems * kThreads == kMassRows, "a mass chunk is whole rows per thread");

/// D²-sampling support: chunk_mass[c] = Σ w·d(x) over chunk c's rows [c·kMassRows, …), added in
/// row order from 0 as the CPU backend does (a tree would round differently); last_positive[c] =
/// the chunk's last row with w·d(x) > 0 (−1 if none). The block stages the masses in shared memory
/// with coalesced loads, then one thread adds them.
__global__ void __launch_bounds__(kThreads)
    mass_kernel(const float* w, const float* min_dist, i64 n, double* chunk_mass,
                long long* last_positive) {
  __shared__ double mass[kMassRows];
  const i64 base = static_cast<i64>(blockIdx.x) * kMassRows;
  const int count = n - base < kMassRows ? static_cast<int>(n - base) : kMassRows;
  for (int m = 0; m < kMassItems; ++m) {
    const int r = threadIdx.x + m * kThreads;
    if (r < count) mass[r] = static_cast<double>(w[base + r]) * static_cast<double>(min_dist[base + r]);
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  double sum = 0.0;
  long long last = -1;
  for (int r = 0; r < count; ++r) {
    sum += mass[r];
    if (mass[r] > 0.0) last = base + r;
  }
  chunk_mass[blockIdx.x] = sum;
  last_positive[blockIdx.x] = last;
}

/// Column sums over the block's rows: partial[b·d + j] = Σ x_j, or Σ (x_j − mean_j)² when mean is
/// given (numpy's two-pass variance). Thread j owns column j and adds the rows in order.
__global__ void __launch_bounds__(kThreads)
    column_sums_kernel(const float* x, i64 n, int d, const double* mean, double* partial) {
  const i64 base = static_cast<i64>(blockIdx.x) * kSubRows;
  const i64 end = base + kSubRows < n ? base + kSubRows : n;
  for (int j = threadIdx.x; j < d; j += kThreads) {
    double acc = 0.0;
    for (i64 i = base; i < end; ++i) {
      const double v = x[i * d + j];
      if (mean != nullptr) {
        const double c = v - mean[j];
        acc += c * c;
      } else {
        acc += v;
      }
    }
    partial[static_cast<i64>(blockIdx.x) * d + j] = acc;
  }
}

// ---- the fused assign-and-accumulate pass ------------------------------------------------------

/// Minimum blocks per SM pass_kernel<·, DP> is compiled for (0: ptxas's own choice, which fits
/// every width but 24 and 64 without spilling). At 24, two blocks (≤ 128 registers) spill
/// nothing; from 64 only one does (156 registers at 64; at 128 registers it spills 12-20 bytes).
__host__ __device__ constexpr int pass_min_blocks(int dp) { return dp == 24 ? 2 : dp >= 64 ? 1 : 0; }

/// Arguments of pass_kernel. A pass visits n_rows rows: pass row r is data row index[r], or r.
struct PassArgs {
  const float* x = nullptr;               ///< [n x d] the dataset
  const float* norms = nullptr;           ///< [n] ||x||²
  const float* weights = nullptr;         ///< [n]
  const i64* index = nullptr;             ///< [n_rows] data rows (mini-batch), or null
  i64 n_rows = 0;
  int d = 0;
  const float* centres = nullptr;         ///< [k x d]; label mode: null when no centroids given
  const float* centre_norms = nullptr;    ///< [k]
  int k = 0;
  const std::int32_t* given_labels = nullptr;  ///< label mode: [n] by data row
  std::int32_t* labels = nullptr;         ///< nearest mode: [n] previous labels, overwritten; or null
  i64 rows_per_block = 0;                 ///< a multiple of kSubRows
  int n_extra = 1;                        ///< per-row values summed after the d features (see below)
  int key_bits = 1;                       ///< bit width of k (labels and the padding key k)
  bool shared_centres = false;            ///< centres and norms copied to shared memory
  int tile_k = 0;                         ///< register path: centres per shared-memory tile (> 0)
  double* partial = nullptr;              ///< [gridDim.x x width], zeroed; width = k·(d + n_extra) + 2
};

/// One pass over the rows: label each row (nearest centre, or the given label), then per-cluster
/// sums. Per cluster l the partial holds, at l·(d + n_extra): Σ w·x_j for j < d, then the row
/// values summed: Σ w (n_extra = 1; nearest mode), or Σ w, Σ w·||x − c_l||, Σ w·||x − c_l||²
/// computed in double (n_extra = 3; label mode). After the k clusters: Σ w·d(x) (nearest mode)
/// and the number of labels that changed.
///
/// Block b owns rows [b·rows_per_block, (b + 1)·rows_per_block), in sub-chunks of kSubRows:
///  1. each thread labels rows tid + m·kThreads of the sub-chunk (strided: coalesced label writes);
///  2. the sub-chunk's (label, offset) keys are sorted (unique keys: rows of a cluster stay in
///     row order), so each cluster's rows are one run;
///  3. thread t owns slots t, t + kThreads, ... of the partial (a cluster and one of its sums) and
///     adds its cluster's run in row order — consecutive slots read consecutive features of a row.
/// Every sum has one owner and a fixed order: no atomics.
///
/// DP > 0 (nearest mode only): the centres go through shared memory after the row values in tiles
/// of a.tile_k (staged_centre_bytes(a.tile_k, DP); staged once per block when one tile holds them
/// all) and each row is scored from registers by nearest_tiled, with the labels and distances of
/// DP = 0.
template <bool kGivenLabels, int DP = 0>
__global__ void __launch_bounds__(kThreads, pass_min_blocks(DP)) pass_kernel(PassArgs a) {
  static_assert(DP == 0 || !kGivenLabels, "the register path scores nearest centres");
  using Sort = cub::BlockRadixSort<unsigned long long, kThreads, kItems>;
  using SumReduce = cub::BlockReduce<double, kThreads>;
  using CountReduce = cub::BlockReduce<long long, kThreads>;
  __shared__ union {
    typename Sort::TempStorage sort;
    typename SumReduce::TempStorage sum;
    typename CountReduce::TempStorage count;
  } tmp;
  __shared__ int s_key[kSubRows];      // label of each offset, then the sorted labels
  __shared__ short s_off[kSubRows];    // sorted position → offset in the sub-chunk
  // [n_extra x kSubRows] row values, then the centres (16-byte aligned: kSubRows doubles apart).
  extern __shared__ __align__(16) double s_dyn[];
  double* s_extra = s_dyn;

  const int tid = threadIdx.x;
  const int d = a.d, k = a.k;
  const float* c = a.centres;
  const float* cn = a.centre_norms;
  float* staged = reinterpret_cast<float*>(s_dyn + static_cast<i64>(a.n_extra) * kSubRows);
  const bool one_tile = k <= a.tile_k;
  if constexpr (DP > 0) {
    if (one_tile) {
      stage_centres<DP>(a.centres, a.centre_norms, k, d, staged);
      __syncthreads();
    }
  } else if (a.shared_centres) {
    float* sc = staged;
    for (i64 e = tid; e < static_cast<i64>(k) * d; e += kThreads) sc[e] = a.centres[e];
    for (int l = tid; l < k; l += kThreads) sc[static_cast<i64>(k) * d + l] = a.centre_norms[l];
    c = sc;
    cn = sc + static_cast<i64>(k) * d;
    __syncthreads();
  }

  const int per_cluster = d + a.n_extra;
  const i64 slots = static_cast<i64>(k) * per_cluster;
  double* partial = a.partial + static_cast<i64>(blockIdx.x) * (slots + 2);
  const i64 block_begin = static_cast<i64>(blockIdx.x) * a.rows_per_block;
  const i64 block_end =
      block_begin + a.rows_per_block < a.n_rows ? block_begin + a.rows_per_block : a.n_rows;
  double inertia = 0.0;   // thread 0: the block's running totals, in sub-chunk order
  long long changed = 0;

  for (i64 base = block_begin; base < block_end; base += kSubRows) {
    const int count = static_cast<int>(block_end - base < kSubRows ? block_end - base : kSubRows);

    // Step 1: labels and per-row values. (The previous sub-chunk ended at a barrier: the tiles
    // may be staged again.)
    float tiled_d[kItems];
    int tiled_k[kItems];
    if constexpr (DP > 0) {
      const auto row_of = [&](int m) -> i64 {
        const int off = tid + m * kThreads;
        if (off >= count) return -1;
        return a.index != nullptr ? a.index[base + off] : base + off;
      };
      nearest_tiled<DP>(row_of, a.x, a.norms, d, a.centres, a.centre_norms, k, a.tile_k, !one_tile,
                        staged, tiled_d, tiled_k);
    }
    double my_inertia = 0.0;
    long long my_changed = 0;
#pragma unroll
    for (int m = 0; m < kItems; ++m) {
      const int off = tid + m * kThreads;
      int label = k;  // padding rows sort after every cluster
      if (off < count) {
        const i64 row = a.index != nullptr ? a.index[base + off] : base + off;
        const float* x = a.x + row * d;
        const double w = a.weights[row];
        if constexpr (kGivenLabels) {
          label = a.given_labels[row];
          double s2 = 0.0;
          if (c != nullptr) {
            // Metrics want accuracy over speed: direct differences in double (as the CPU).
            const float* cl = c + static_cast<i64>(label) * d;
            for (int j = 0; j < d; ++j) {
              const double v = static_cast<double>(x[j]) - cl[j];
              s2 += v * v;
            }
          }
          s_extra[off] = w;
          if (a.n_extra == 3) {  // n_extra = 1: the counts alone (the split pass)
            s_extra[kSubRows + off] = w * sqrt(s2);
            s_extra[2 * kSubRows + off] = w * s2;
          }
        } else {
          float best_d;
          if constexpr (DP > 0) {
            best_d = tiled_d[m];
            label = tiled_k[m];
          } else {
            nearest(x, a.norms[row], c, cn, k, d, best_d, label);
          }
          if (a.labels != nullptr) {
            my_changed += a.labels[row] != label;
            a.labels[row] = label;
          }
          my_inertia += w * static_cast<double>(best_d);
          s_extra[off] = w;
        }
      }
      s_key[off] = label;
    }
    if constexpr (!kGivenLabels) {
      const double sub_inertia = SumReduce(tmp.sum).Sum(my_inertia);
      __syncthreads();
      const long long sub_changed = CountReduce(tmp.count).Sum(my_changed);
      if (tid == 0) {
        inertia += sub_inertia;
        changed += sub_changed;
      }
    }
    __syncthreads();

    // Step 2: group the sub-chunk's rows by label; keys are unique, so the sort's stability does
    // not matter and each run is in row order.
    unsigned long long keys[kItems];
    for (int i = 0; i < kItems; ++i) {
      const int off = tid * kItems + i;
      keys[i] = (static_cast<unsigned long long>(static_cast<unsigned>(s_key[off])) << kOffsetBits) |
                static_cast<unsigned long long>(off);
    }
    __syncthreads();
    Sort(tmp.sort).Sort(keys, 0, kOffsetBits + a.key_bits);
    for (int i = 0; i < kItems; ++i) {  // blocked arrangement: thread t holds ranks t·kItems + i
      const int p = tid * kItems + i;
      s_key[p] = static_cast<int>(keys[i] >> kOffsetBits);
      s_off[p] = static_cast<short>(keys[i] & (kSubRows - 1));
    }
    __syncthreads();

    // Step 3: each slot adds its cluster's run, rows in order.
    for (i64 s = tid; s < slots; s += kThreads) {
      const int l = static_cast<int>(s / per_cluster);
      const int j = static_cast<int>(s % per_cluster);
      int lo = 0, hi = kSubRows;  // lower_bound(l)
      while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (s_key[mid] < l) lo = mid + 1; else hi = mid;
      }
      const int first = lo;
      hi = kSubRows;  // lower_bound(l + 1), from first
      while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (s_key[mid] <= l) lo = mid + 1; else hi = mid;
      }
      const int last = lo;
      if (first == last) continue;
      double acc = 0.0;
      if (j < d) {
        for (int p = first; p < last; ++p) {
          const int off = s_off[p];
          const i64 row = a.index != nullptr ? a.index[base + off] : base + off;
          acc += s_extra[off] * static_cast<double>(a.x[row * d + j]);
        }
      } else {
        const double* values = s_extra + static_cast<i64>(j - d) * kSubRows;
        for (int p = first; p < last; ++p) acc += values[s_off[p]];
      }
      partial[s] += acc;
    }
    __syncthreads();  // the next sub-chunk overwrites s_key, s_off and s_extra
  }
  if (tid == 0) {
    partial[slots] = inertia;
    partial[slots + 1] = static_cast<double>(changed);
  }
}

/// The split pass's row totals, block b owning rows [b·kSubRows, (b + 1)·kSubRows):
/// block_totals[2b] = Σ w·d(x) (each thread its kItems rows in order, then a fixed block
/// reduction), block_totals[2b + 1] = the number of labels that differ from `fresh`; then
/// labels ← fresh.
__global__ void __launch_bounds__(kThreads)
    split_totals_kernel(const float* w, const float* dists, const std::int32_t* fresh,
                        std::int32_t* labels, i64 n, double* block_totals) {
  using SumReduce = cub::BlockReduce<double, kThreads>;
  using CountReduce = cub::BlockReduce<long long, kThreads>;
  __shared__ union {
    typename SumReduce::TempStorage sum;
    typename CountReduce::TempStorage count;
  } tmp;
  const i64 base = static_cast<i64>(blockIdx.x) * kSubRows;
  double acc = 0.0;
  long long changed = 0;
  for (int m = 0; m < kItems; ++m) {
    const i64 i = base + threadIdx.x + m * kThreads;
    if (i >= n) break;
    acc += static_cast<double>(w[i]) * static_cast<double>(dists[i]);
    changed += labels[i] != fresh[i];
    labels[i] = fresh[i];
  }
  const double inertia = SumReduce(tmp.sum).Sum(acc);
  __syncthreads();  // tmp is reused
  const long long total_changed = CountReduce(tmp.count).Sum(changed);
  if (threadIdx.x == 0) {
    block_totals[2 * static_cast<i64>(blockIdx.x)] = inertia;
    block_totals[2 * static_cast<i64>(blockIdx.x) + 1] = static_cast<double>(total_changed);
  }
}

// ---- metrics and distance matrices -----------------------------------------------------------

/// Silhouette support, one thread per query row i in [row_begin, row_begin + row_count): for each
/// cluster l, Σ w_p·||x_i − x_p|| over the rows p of l (order[run_begin[l] .. run_begin[l + 1]),
/// row order), as the CPU: the expansion on rows centred by the float means, recomputed in double
/// from the original rows where cancellation leaves too few digits (so self-distances are 0).
/// Threads of a warp read the same column row: broadcast loads.
__global__ void cluster_distance_sums_kernel(const float* x, const float* w, int d,
                                             const float* mu, const float* centred_norms,
                                             const i64* order, const i64* run_begin, int k,
                                             i64 row_begin, i64 row_count, double* out) {
  const i64 r = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= row_count) return;
  const i64 i = row_begin + r;
  const float* xi = x + i * d;
  const float xn = centred_norms[i];
  for (int l = 0; l < k; ++l) {
    double acc = 0.0;
    for (i64 q = run_begin[l]; q < run_begin[l + 1]; ++q) {
      const i64 p = order[q];
      const float* xp = x + p * d;
      const float yn = centred_norms[p];
      float dot = 0.0f;
      for (int j = 0; j < d; ++j)
        dot = __fmaf_rn(__fsub_rn(xi[j], mu[j]), __fsub_rn(xp[j], mu[j]), dot);
      const float scale = __fadd_rn(xn, yn);
      float dist = __fsub_rn(scale, __fmul_rn(2.0f, dot));
      if (dist < __fmul_rn(kRecompute, scale)) {
        double s2 = 0.0;
        for (int j = 0; j < d; ++j) {
          const double v = static_cast<double>(xi[j]) - xp[j];
          s2 += v * v;
        }
        dist = static_cast<float>(s2);
      }
      acc += static_cast<double>(w[p]) * static_cast<double>(sqrtf(fmaxf(0.0f, dist)));
    }
    out[r * k + l] = acc;
  }
}

/// out [a_count x b_count]: max(0, (||a||² − 2a·b) + ||b||²), square-rooted unless `squared`.
__global__ void distance_tile_kernel(const float* a, const float* an, i64 a_count, const float* b,
                                     const float* bn, i64 b_count, int d, bool squared,
                                     float* out) {
  const i64 e = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= a_count * b_count) return;
  const i64 r = e / b_count, p = e % b_count;
  const float* ar = a + r * d;
  const float* bp = b + p * d;
  float dot = 0.0f;
  for (int j = 0; j < d; ++j) dot = __fmaf_rn(ar[j], bp[j], dot);
  float v = fmaxf(0.0f, __fadd_rn(__fsub_rn(an[r], __fmul_rn(2.0f, dot)), bn[p]));
  if (!squared) v = sqrtf(v);
  out[e] = v;
}

/// k-means|| (Bahmani et al. 2012, Alg. 2 step 4): keep x with p = ℓ·w·d²(x,C)/φ_X(C), drawn from
/// the counter-based stream, so CPU and GPU keep the same rows.
struct OversamplePick {
  const float* w;
  const float* min_dist;
  double factor;
  std::uint64_t seed;
  i64 first_row;  ///< global index of row 0 (an MPI rank's part)
  __host__ __device__ bool operator()(i64 i) const {
    const double p = factor * static_cast<double>(w[i]) * static_cast<double>(min_dist[i]);
    return counter_uniform(seed, static_cast<std::uint64_t>(first_row + i)) < p;
  }
};

}  // namespace segforge::gpu
