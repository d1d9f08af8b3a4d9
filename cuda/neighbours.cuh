#pragma once
// Kernels of the CUDA backend's eps-neighbour ops (DBSCAN; include/segforge/backend.hpp). One
// thread per query row: it walks the reference rows of its block's candidate blocks in ascending
// block order and block row order, as the CPU backend (cpu/neighbours.cpp) does, so each output
// is owned by one thread and summed in the same order: the results equal the CPU backend's, bit
// for bit. A distance is Σ_j (x_j − y_j)² over j ascending in double with explicit _rn
// operations (never fused), compared with eps².
//
// First cut: rows are read through the cache, one query row per thread. Tiling the candidate
// blocks' rows through shared memory is the next step (issue 20's kernel work).

#include <cstdint>

namespace segforge::gpu {

/// What every eps kernel reads: query rows in `active` (dataset indices) with their query block,
/// candidate blocks in CSR, the reference blocks' rows.
struct EpsPairs {
  const float* q_rows = nullptr;      ///< [query n x d]
  const float* r_rows = nullptr;      ///< [reference n x d]
  int d = 0;
  const std::int64_t* active = nullptr;        ///< [n_active] query rows to process
  const std::int64_t* active_block = nullptr;  ///< [n_active] their query block
  std::int64_t n_active = 0;
  const std::int64_t* offsets = nullptr;  ///< [n_query_blocks + 1]
  const std::int64_t* targets = nullptr;  ///< reference blocks per query block
  const std::int64_t* r_order = nullptr;  ///< reference rows, block after block
  const std::int64_t* r_starts = nullptr; ///< [n_reference_blocks + 1]
  double eps2 = 0.0;
};

__device__ __forceinline__ double exact_sq_distance(const float* x, const float* y, int d) {
  double s = 0.0;
  for (int j = 0; j < d; ++j) {
    const double v = __dsub_rn(static_cast<double>(x[j]), static_cast<double>(y[j]));
    s = __dadd_rn(s, __dmul_rn(v, v));
  }
  return s;
}

/// visit(q, r, d2) for every reference row r within eps of query row q that keep(r) admits.
template <class Keep, class Visit>
__device__ void for_eps_pairs(const EpsPairs& p, std::int64_t t, Keep keep, Visit& visit) {
  const std::int64_t q = p.active[t];
  const std::int64_t b = p.active_block[t];
  const float* x = p.q_rows + q * p.d;
  for (std::int64_t c = p.offsets[b]; c < p.offsets[b + 1]; ++c) {
    const std::int64_t rb = p.targets[c];
    for (std::int64_t k = p.r_starts[rb]; k < p.r_starts[rb + 1]; ++k) {
      const std::int64_t r = p.r_order[k];
      if (!keep(r)) continue;
      const double d2 = exact_sq_distance(x, p.r_rows + r * p.d, p.d);
      if (d2 <= p.eps2) visit(q, r, d2);
    }
  }
}

struct KeepMasked {
  const std::uint8_t* mask;  ///< nullptr: every row
  __device__ bool operator()(std::int64_t r) const { return mask == nullptr || mask[r] != 0; }
};

struct Nearest {
  std::int64_t best = -1;
  double best_d2 = 0.0;
  __device__ void operator()(std::int64_t, std::int64_t r, double d2) {
    if (best < 0 || d2 < best_d2 || (d2 == best_d2 && r < best)) best = r, best_d2 = d2;
  }
};

/// out[q] = Σ w over the rows within eps, own block first, stopping once it reaches
/// stop_at (the CPU backend stops at the same row, so the sums are the same).
__global__ void eps_weights_kernel(EpsPairs p, const float* weights, double stop_at, double* out) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= p.n_active) return;
  const std::int64_t q = p.active[t];
  const std::int64_t b = p.active_block[t];
  const float* x = p.q_rows + q * p.d;
  double sum = 0.0;
  // The own block first, then the other candidates ascending (the CPU backend's order).
  const std::int64_t c0 = p.offsets[b], c1 = p.offsets[b + 1];
  bool own = false;
  for (std::int64_t c = c0; c < c1; ++c) own = own || p.targets[c] == b;
  for (std::int64_t c = own ? c0 - 1 : c0; c < c1 && sum < stop_at; ++c) {
    const std::int64_t rb = c < c0 ? b : p.targets[c];
    if (c >= c0 && rb == b) continue;
    for (std::int64_t k = p.r_starts[rb]; k < p.r_starts[rb + 1] && sum < stop_at; ++k) {
      const std::int64_t r = p.r_order[k];
      if (exact_sq_distance(x, p.r_rows + r * p.d, p.d) <= p.eps2) sum = __dadd_rn(sum, static_cast<double>(weights[r]));
    }
  }
  out[q] = sum;
}

/// out[q] = the root of the first rooted row within eps whose root is below q's, own block first,
/// then the other candidate blocks ascending (the CPU backend's order); q's root when none.
/// Within a block the rooted rows come first in ascending root order (the op's precondition).
__global__ void eps_lower_root_kernel(EpsPairs p, const std::int64_t* roots, std::int64_t* out) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= p.n_active) return;
  const std::int64_t q = p.active[t];
  const std::int64_t a = p.active_block[t];
  const float* x = p.q_rows + q * p.d;
  const std::int64_t mine = roots[q];
  const std::int64_t c0 = p.offsets[a], c1 = p.offsets[a + 1];
  bool own = false;
  for (std::int64_t c = c0; c < c1; ++c) own = own || p.targets[c] == a;
  std::int64_t found = mine;
  for (std::int64_t c = own ? c0 - 1 : c0; c < c1 && found == mine; ++c) {
    const std::int64_t rb = c < c0 ? a : p.targets[c];
    if (c >= c0 && rb == a) continue;
    for (std::int64_t k = p.r_starts[rb]; k < p.r_starts[rb + 1]; ++k) {
      const std::int64_t r = p.r_order[k];
      if (roots[r] < 0 || roots[r] >= mine) break;
      if (exact_sq_distance(x, p.r_rows + r * p.d, p.d) <= p.eps2) {
        found = roots[r];
        break;
      }
    }
  }
  out[q] = found;
}

/// The nearest admitted reference row within eps, ties to the lower row; -1 where none.
__global__ void nearest_kernel(EpsPairs p, const std::uint8_t* reference_mask, std::int64_t* nearest, double* sq_distances) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= p.n_active) return;
  Nearest v;
  for_eps_pairs(p, t, KeepMasked{reference_mask}, v);
  if (v.best >= 0) {
    nearest[p.active[t]] = v.best;
    sq_distances[p.active[t]] = v.best_d2;
  }
}

/// out[i, c] = floor((x[i, columns[c]] − origin[c]) / side), clamped to ±2^40.
__global__ void grid_cells_kernel(const float* rows, std::int64_t n, int d, const std::int32_t* columns,
                                  const double* origin, int p, double side, std::int64_t* out) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const double limit = 1099511627776.0;
  for (int c = 0; c < p; ++c) {
    double v = floor(__ddiv_rn(__dsub_rn(static_cast<double>(rows[i * d + columns[c]]), origin[c]), side));
    v = v < -limit ? -limit : (v > limit ? limit : v);
    out[i * p + c] = static_cast<std::int64_t>(v);
  }
}

}  // namespace segforge::gpu
