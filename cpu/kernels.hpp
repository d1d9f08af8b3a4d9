#pragma once
// Distance kernels of the CPU backend: squared distances from a block of rows to a set of
// centres, ||x||² − 2x·c + ||c||² in float32 clamped at 0, delivered kLanes rows at a time to an
// epilogue (argmin, k-means++ potentials) that keeps its state in registers. An epilogue has
// begin(g, i0), step(g, k, dist) and end(g, i0) for the two lane groups g = 0, 1 of a register tile.
//
// Two ways to get the dot products x·c, picked from the shape alone (choose_kernel):
// - direct: the block transposed so rows lie across vector lanes, a register tile of 32 rows x 8
//   centres accumulated over the features, the epilogue fused so no tile is stored and reloaded.
//   Every distance is computed the same way whatever the row's position in the block.
// - gemm: Eigen's GEMM writes a [centres x rows] tile, then one pass over the tile runs the
//   epilogue. Kept for very wide rows (D > 1024), where its depth blocking wins.

// The GEMMs run inside our own OpenMP regions, one tile per thread: Eigen must not start nested
// teams of its own.
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "segforge/matrix.hpp"
#include "simd.hpp"

namespace segforge::cpu {

using i64 = std::int64_t;
using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMapF = Eigen::Map<const RowMajorF>;
using TileMapF = Eigen::Map<RowMajorF, Eigen::Unaligned, Eigen::OuterStride<>>;

/// Buffers aligned for full-width vector loads (64 bytes with AVX-512): a vector load that
/// straddles two cache lines costs twice, and a straddling store defeats store forwarding.
template <class T>
using AlignedVector = std::vector<T, Eigen::aligned_allocator<T>>;

/// Rows per distance block; a multiple of kRowStep. The block's transposed rows (D x 256 floats)
/// stay in L1/L2 while every centre is swept over them; a GEMM tile of 256 rows x 256 centres is
/// 256 KiB, L2-resident between the GEMM and the epilogue pass.
constexpr i64 kBlockRows = 256;
/// Centres per GEMM tile; larger K is swept in slices, the epilogues resume between slices.
constexpr i64 kTileCentres = 256;

inline i64 round_up(i64 v, i64 m) { return (v + m - 1) / m * m; }

/// ||v||² accumulated in double, rounded once to float (the same for rows and centres).
inline float sq_norm(const float* v, i64 d) {
  double s = 0.0;
  for (i64 j = 0; j < d; ++j) s += static_cast<double>(v[j]) * v[j];
  return static_cast<float>(s);
}

/// dst [d] ← src [d], sixteen floats a move, inline: a short row copied by a call to memmove
/// costs more than the copy.
inline void copy_row(const float* src, i64 d, float* dst) {
  i64 j = 0;
  for (; j + kLanes <= d; j += kLanes) store16(dst + j, load16(src + j));
  for (; j < d; ++j) dst[j] = src[j];
}

/// sq_norm of each of n rows [n x d], the same bits: eight rows' sums advance together (eight
/// independent chains instead of one), each in its own row's order.
inline void sq_norms(const float* rows, i64 n, i64 d, float* out) {
  i64 i = 0;
  for (; i + 8 <= n; i += 8) {
    double s[8] = {};
    const float* x = rows + i * d;
    for (i64 j = 0; j < d; ++j)
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) s[q] += static_cast<double>(x[q * d + j]) * x[q * d + j];
    for (int q = 0; q < 8; ++q) out[i + q] = static_cast<float>(s[q]);
  }
  for (; i < n; ++i) out[i] = sq_norm(rows + i * d, d);
}

enum class Kernel { gemm, direct };

/// The kernel for K centres of D features: a function of the shape alone, so the rounding never
/// depends on the data or the thread count. Measured on the 2-core AVX-512 (Zen 5) development
/// machine, one thread, ms per assign pass (direct / Eigen GEMM tile + epilogue):
///
///   rows    D     K=8          K=64         K=256        K=1024
///   200k    4     0.52/0.66    1.6/3.6      5.5/12.6     21/49
///   200k    32    2.7/3.3      7.0/10.1     22/33        75/126
///   200k    128   17/19        30/41        82/105       299/487
///   50k     512   -            34/41        -            -
///   50k     2048  107/92 (K=16)
///
/// The direct kernel skips the tile's store and reload and the GEMM's packing; OpenBLAS through
/// EIGEN_USE_BLAS was slower than Eigen's own GEMM here (D=32, K=64: ~67 vs ~54 ms per 1M rows).
/// Only for very wide rows, where a block's transposed columns fall out of cache, does the GEMM's
/// depth blocking win.
inline Kernel choose_kernel(i64 /*k*/, i64 d) { return d > 1024 ? Kernel::gemm : Kernel::direct; }

/// Rows per register tile of the kernels: two groups of kLanes rows, two independent chains.
constexpr i64 kRowStep = 2 * kLanes;
/// Centres per register tile of the direct kernel.
constexpr i64 kCentreStep = 8;

/// Centres prepared for the kernels: norms, the kernel choice, and for the direct kernel the
/// centres packed as [k/8][d][8] (zero-padded to a multiple of 8) so one tile's broadcasts share
/// a cache line.
struct Centres {
  Centres(MatrixView<const float> m, Kernel kind)
      : c(m.data), k(m.rows), d(m.cols), norms(static_cast<std::size_t>(m.rows)), kernel(kind) {
    for (i64 i = 0; i < k; ++i) norms[i] = sq_norm(c + i * d, d);
    if (kernel == Kernel::direct) {
      const i64 kp = round_up(k, kCentreStep);
      packed.assign(static_cast<std::size_t>(kp * d), 0.0f);
      for (i64 i = 0; i < k; ++i)
        for (i64 j = 0; j < d; ++j)
          packed[(i / kCentreStep) * d * kCentreStep + j * kCentreStep + i % kCentreStep] = c[i * d + j];
    }
  }
  explicit Centres(MatrixView<const float> m) : Centres(m, choose_kernel(m.rows, m.cols)) {}

  const float* c;
  i64 k;
  i64 d;
  std::vector<float> norms;   ///< [k] ||c||²
  Kernel kernel;
  AlignedVector<float> packed;  ///< direct kernel: [ceil(k/8) x d x 8]
};

/// Per-thread scratch for one block of at most kBlockRows rows of D features.
struct BlockScratch {
  explicit BlockScratch(i64 d)
      : xt(static_cast<std::size_t>(d * kBlockRows)), xn(kBlockRows), best_d(kBlockRows),
        best_k(kBlockRows) {}
  AlignedVector<float> tile;           ///< [kTileCentres x kBlockRows] GEMM output, on first use
  AlignedVector<float> xt;             ///< [d x kBlockRows] the block transposed (direct kernel)
  AlignedVector<float> xn;             ///< [kBlockRows] row norms, zero past the block
  AlignedVector<float> best_d;         ///< [kBlockRows] nearest squared distance
  AlignedVector<std::int32_t> best_k;  ///< [kBlockRows] nearest centre
};

/// xt [d x nbp] ← x [nb x d] transposed, zero in rows [nb, nbp). 8x8 tiles in registers where
/// they fit; strided scalar copies for the edges.
inline void transpose_block(const float* x, i64 nb, i64 d, float* xt, i64 nbp) {
  const i64 nb8 = nb / 8 * 8, d8 = d / 8 * 8;
  for (i64 i = 0; i < nb8; i += 8) {
    for (i64 j = 0; j < d8; j += 8) {
      vf8 r[8];
      for (int q = 0; q < 8; ++q) std::memcpy(&r[q], x + (i + q) * d + j, sizeof(vf8));
      // Classic AVX 8x8 transpose: unpack pairs, pick 64-bit pairs, swap 128-bit halves.
      const vf8 t0 = __builtin_shufflevector(r[0], r[1], 0, 8, 1, 9, 4, 12, 5, 13);
      const vf8 t1 = __builtin_shufflevector(r[0], r[1], 2, 10, 3, 11, 6, 14, 7, 15);
      const vf8 t2 = __builtin_shufflevector(r[2], r[3], 0, 8, 1, 9, 4, 12, 5, 13);
      const vf8 t3 = __builtin_shufflevector(r[2], r[3], 2, 10, 3, 11, 6, 14, 7, 15);
      const vf8 t4 = __builtin_shufflevector(r[4], r[5], 0, 8, 1, 9, 4, 12, 5, 13);
      const vf8 t5 = __builtin_shufflevector(r[4], r[5], 2, 10, 3, 11, 6, 14, 7, 15);
      const vf8 t6 = __builtin_shufflevector(r[6], r[7], 0, 8, 1, 9, 4, 12, 5, 13);
      const vf8 t7 = __builtin_shufflevector(r[6], r[7], 2, 10, 3, 11, 6, 14, 7, 15);
      const vf8 u0 = __builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13);
      const vf8 u1 = __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
      const vf8 u2 = __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13);
      const vf8 u3 = __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
      const vf8 u4 = __builtin_shufflevector(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13);
      const vf8 u5 = __builtin_shufflevector(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
      const vf8 u6 = __builtin_shufflevector(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13);
      const vf8 u7 = __builtin_shufflevector(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
      const vf8 cols[8] = {
          __builtin_shufflevector(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11),
          __builtin_shufflevector(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11),
          __builtin_shufflevector(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11),
          __builtin_shufflevector(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11),
          __builtin_shufflevector(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15),
          __builtin_shufflevector(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15),
          __builtin_shufflevector(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15),
          __builtin_shufflevector(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15)};
      for (int q = 0; q < 8; ++q) std::memcpy(xt + (j + q) * nbp + i, &cols[q], sizeof(vf8));
    }
    for (i64 j = d8; j < d; ++j)
      for (i64 q = 0; q < 8; ++q) xt[j * nbp + i + q] = x[(i + q) * d + j];
  }
  for (i64 j = 0; j < d; ++j) {
    float* dst = xt + j * nbp;
    for (i64 i = nb8; i < nb; ++i) dst[i] = x[i * d + j];
    std::fill(dst + nb, dst + nbp, 0.0f);
  }
}

/// (||x||² − 2x·c) + ||c||² clamped at 0. The fma's product 2x·c is exact, so this rounds like
/// the unfused expression.
inline vf16 expand_distance(vf16 dot, vf16 xn, float cn) {
  return max0(fmadd(splat(-2.0f), dot, xn) + cn);
}

/// The direct kernel over a transposed block xt [d x nbp] (nbp a multiple of kRowStep): a
/// register tile of 2 x kLanes rows by 8 centres, then the epilogue for each centre in ascending
/// order. Epilogue calls per 32 rows at i0: begin(0, i0), begin(1, i0 + 16), step(g, k, dist) for
/// every centre k and g = 0, 1, end(0, i0), end(1, i0 + 16). D > 0: the width known to the
/// compiler (the feature loop unrolled; the same operations in the same order as D = 0, which
/// reads the width from the centres).
template <int D, class Epi>
void direct_distances(const float* xt, const float* xn, i64 nbp, const Centres& c, Epi& out) {
  const i64 d = D > 0 ? D : c.d;
  const float* cn = c.norms.data();
  // A local copy of the epilogue, its running state in registers: through the reference, the
  // compiler stored and reloaded it at every centre (it cannot rule out that the rows alias it).
  Epi epi = out;
  for (i64 i0 = 0; i0 < nbp; i0 += kRowStep) {
    const vf16 xn0 = load16(xn + i0), xn1 = load16(xn + i0 + kLanes);
    epi.begin(0, i0);
    epi.begin(1, i0 + kLanes);
    for (i64 k = 0; k < c.k; k += kCentreStep) {
      const float* cb = c.packed.data() + k * d;
      vf16 a0[kCentreStep] = {}, a1[kCentreStep] = {};
      const auto feature = [&](i64 j) {
        const vf16 x0 = load16(xt + j * nbp + i0);
        const vf16 x1 = load16(xt + j * nbp + i0 + kLanes);
        const float* cj = cb + j * kCentreStep;
#pragma GCC unroll 8
        for (int r = 0; r < kCentreStep; ++r) {
          a0[r] = fmadd_broadcast(x0, cj + r, a0[r]);
          a1[r] = fmadd_broadcast(x1, cj + r, a1[r]);
        }
      };
      if constexpr (D > 0) {
#pragma GCC unroll 16
        for (i64 j = 0; j < D; ++j) feature(j);
      } else {
        for (i64 j = 0; j < d; ++j) feature(j);
      }
      const i64 kr = std::min(kCentreStep, c.k - k);
#pragma GCC unroll 8
      for (int r = 0; r < kCentreStep; ++r) {
        if (r < kr) {
          epi.step(0, k + r, expand_distance(a0[r], xn0, cn[k + r]));
          epi.step(1, k + r, expand_distance(a1[r], xn1, cn[k + r]));
        }
      }
    }
    epi.end(0, i0);
    epi.end(1, i0 + kLanes);
  }
  out = epi;
}

/// direct_distances with the width as a compile-time constant up to 16 (the segmentation widths:
/// RFM and engagement features), read at run time past it.
template <class Epi>
void direct_distances_any(const float* xt, const float* xn, i64 nbp, const Centres& c, Epi& epi) {
  switch (c.d) {
#define SEGFORGE_DIRECT_WIDTH(w) \
  case w:                        \
    return direct_distances<w>(xt, xn, nbp, c, epi);
    SEGFORGE_DIRECT_WIDTH(1) SEGFORGE_DIRECT_WIDTH(2) SEGFORGE_DIRECT_WIDTH(3)
    SEGFORGE_DIRECT_WIDTH(4) SEGFORGE_DIRECT_WIDTH(5) SEGFORGE_DIRECT_WIDTH(6)
    SEGFORGE_DIRECT_WIDTH(7) SEGFORGE_DIRECT_WIDTH(8) SEGFORGE_DIRECT_WIDTH(9)
    SEGFORGE_DIRECT_WIDTH(10) SEGFORGE_DIRECT_WIDTH(11) SEGFORGE_DIRECT_WIDTH(12)
    SEGFORGE_DIRECT_WIDTH(13) SEGFORGE_DIRECT_WIDTH(14) SEGFORGE_DIRECT_WIDTH(15)
    SEGFORGE_DIRECT_WIDTH(16)
#undef SEGFORGE_DIRECT_WIDTH
    default:
      return direct_distances<0>(xt, xn, nbp, c, epi);
  }
}

/// Squared distances from the block's rows x [nb x d] (norms xn_in [nb]) to every centre, through
/// the epilogue, 2 x kLanes rows at a time: begin(g, i0) for both lane groups, step(g, k, dist)
/// with centres in ascending order, end(g, i0) (repeated per slice of kTileCentres centres on the
/// GEMM path). Lanes at and past nb are padding with finite values; the epilogue ignores them or
/// weights them by 0.
template <class Epi>
void block_distances(const float* x, const float* xn_in, i64 nb, const Centres& c,
                     BlockScratch& s, Epi& epi) {
  const i64 d = c.d;
  const i64 nbp = round_up(nb, kRowStep);
  float* xn = s.xn.data();
  std::copy(xn_in, xn_in + nb, xn);
  std::fill(xn + nb, xn + nbp, 0.0f);

  if (c.kernel == Kernel::gemm) {
    // Sized here, not in the constructor: 256 KiB that the direct kernel never touches would be
    // zeroed and page-faulted on every call that builds a scratch.
    if (s.tile.empty()) s.tile.resize(static_cast<std::size_t>(kTileCentres * kBlockRows));
    const ConstMapF xm(x, nb, d);
    for (i64 kb = 0; kb < c.k; kb += kTileCentres) {
      const i64 kc = std::min(kTileCentres, c.k - kb);
      TileMapF tile(s.tile.data(), kc, nb, Eigen::OuterStride<>(nbp));
      tile.noalias() = ConstMapF(c.c + kb * d, kc, d) * xm.transpose();
      if (nb < nbp)  // padding lanes: keep them finite
        for (i64 k = 0; k < kc; ++k) std::fill_n(s.tile.data() + k * nbp + nb, nbp - nb, 0.0f);
      for (i64 i0 = 0; i0 < nbp; i0 += kRowStep) {
        const vf16 xn0 = load16(xn + i0), xn1 = load16(xn + i0 + kLanes);
        const float* t = s.tile.data() + i0;
        epi.begin(0, i0);
        epi.begin(1, i0 + kLanes);
        for (i64 k = 0; k < kc; ++k) {
          const float cn = c.norms[kb + k];
          epi.step(0, kb + k, expand_distance(load16(t + k * nbp), xn0, cn));
          epi.step(1, kb + k, expand_distance(load16(t + k * nbp + kLanes), xn1, cn));
        }
        epi.end(0, i0);
        epi.end(1, i0 + kLanes);
      }
    }
  } else {
    transpose_block(x, nb, d, s.xt.data(), nbp);
    direct_distances_any(s.xt.data(), xn, nbp, c, epi);
  }
}

/// Running argmin over centres in registers; ties keep the lower index (strict <, k ascending).
/// Resumes from best_d / best_k between slices, so those start at +inf / 0.
struct ArgminEpilogue {
  float* best_d;
  std::int32_t* best_k;
  vf16 bd[2];
  vi16 bk[2];
  void begin(int g, i64 i0) {
    bd[g] = load16(best_d + i0);
    bk[g] = load16(best_k + i0);
  }
  void step(int g, i64 k, vf16 dist) {
    const vi16 closer = dist < bd[g];
    bd[g] = closer ? dist : bd[g];
    bk[g] = closer ? splat(static_cast<std::int32_t>(k)) : bk[g];
  }
  void end(int g, i64 i0) {
    store16(best_d + i0, bd[g]);
    store16(best_k + i0, bk[g]);
  }
};

/// Nearest centre of each row of the block: s.best_k[i], s.best_d[i] for i < nb.
inline void nearest_block(const float* x, const float* xn, i64 nb, const Centres& c,
                          BlockScratch& s) {
  const i64 nbp = round_up(nb, kRowStep);
  std::fill_n(s.best_d.data(), nbp, std::numeric_limits<float>::infinity());
  std::fill_n(s.best_k.data(), nbp, 0);
  ArgminEpilogue epi{s.best_d.data(), s.best_k.data(), {}, {}};
  block_distances(x, xn, nb, c, s, epi);
}

}  // namespace segforge::cpu
