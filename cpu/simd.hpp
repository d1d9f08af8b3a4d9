#pragma once
// Fixed-width vectors for the CPU kernels: GCC/Clang vector extensions, which the compiler maps to
// one AVX-512 register, two AVX2 registers or four SSE registers, whatever the target has. FMA is
// spelled out (never left to -ffp-contract) so every build rounds the same way wherever a kernel
// is inlined.

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <cstdint>
#include <cstring>

namespace segforge::cpu {

constexpr int kLanes = 16;  ///< float32 lanes per vf16

typedef float vf16 __attribute__((vector_size(64)));
typedef std::int32_t vi16 __attribute__((vector_size(64)));
typedef float vf8 __attribute__((vector_size(32)));
typedef double vd8 __attribute__((vector_size(64)));

inline vf16 load16(const float* p) {
  vf16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, vf16 v) { std::memcpy(p, &v, sizeof v); }
inline vi16 load16(const std::int32_t* p) {
  vi16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(std::int32_t* p, vi16 v) { std::memcpy(p, &v, sizeof v); }

/// Eight floats widened to double.
inline vd8 load8_widen(const float* p) {
#if defined(__AVX512F__)
  return _mm512_cvtps_pd(_mm256_loadu_ps(p));
#else
  vf8 v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, vd8);
#endif
}
inline vd8 load8(const double* p) {
  vd8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(double* p, vd8 v) { std::memcpy(p, &v, sizeof v); }

// Spelled out lane by lane: `vf16{} + s` would cost an add (and turn −0 into +0).
inline vf16 splat(float s) { return vf16{s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }
inline vi16 splat(std::int32_t s) { return vi16{s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }
inline vd8 splat(double s) { return vd8{s, s, s, s, s, s, s, s}; }

/// a·b + c with one rounding where the target has FMA.
inline vf16 fmadd(vf16 a, vf16 b, vf16 c) {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(a, b, c);
#elif defined(__FMA__)
  __m256 a2[2], b2[2], c2[2];
  std::memcpy(a2, &a, sizeof a);
  std::memcpy(b2, &b, sizeof b);
  std::memcpy(c2, &c, sizeof c);
  c2[0] = _mm256_fmadd_ps(a2[0], b2[0], c2[0]);
  c2[1] = _mm256_fmadd_ps(a2[1], b2[1], c2[1]);
  vf16 r;
  std::memcpy(&r, c2, sizeof r);
  return r;
#else
  return a * b + c;
#endif
}

inline vd8 fmadd(vd8 a, vd8 b, vd8 c) {
#if defined(__AVX512F__)
  return _mm512_fmadd_pd(a, b, c);
#elif defined(__FMA__)
  __m256d a2[2], b2[2], c2[2];
  std::memcpy(a2, &a, sizeof a);
  std::memcpy(b2, &b, sizeof b);
  std::memcpy(c2, &c, sizeof c);
  c2[0] = _mm256_fmadd_pd(a2[0], b2[0], c2[0]);
  c2[1] = _mm256_fmadd_pd(a2[1], b2[1], c2[1]);
  vd8 r;
  std::memcpy(&r, c2, sizeof r);
  return r;
#else
  return a * b + c;
#endif
}

/// x·c + acc for the float at c broadcast to every lane, one rounding, as fmadd(x, splat(*c), acc).
/// With AVX-512 the broadcast is the fma's own memory operand: GCC otherwise broadcasts a value
/// shared by two fmas into a register first, an extra vector op on the ports the fmas need
/// (a register tile of 32 rows x 8 centres at D = 8: 18% of its time).
inline vf16 fmadd_broadcast(vf16 x, const float* c, vf16 acc) {
#if defined(__AVX512F__)
  asm("vfmadd231ps %[c]%{1to16%}, %[x], %[acc]" : [acc] "+v"(acc) : [x] "v"(x), [c] "m"(*c));
  return acc;
#else
  return fmadd(x, splat(*c), acc);
#endif
}

/// Whether any lane of a comparison's mask is set.
inline bool any_lane(vi16 mask) {
  std::int32_t any = 0;
  for (int q = 0; q < kLanes; ++q) any |= mask[q];
  return any != 0;
}
inline vf16 max0(vf16 v) { return v > 0.0f ? v : vf16{}; }
inline vf16 vmin(vf16 a, vf16 b) { return a < b ? a : b; }

/// p[0, r) widened to double in lanes [0, r), 1 in lane r, 0 past it (0 <= r < 8); reads only
/// p[0, r).
inline vd8 widen_tail_and_one(const float* p, int r) {
#if defined(__AVX512F__)
  const __m512d v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(static_cast<__mmask8>((1u << r) - 1), p));
  return _mm512_mask_mov_pd(v, static_cast<__mmask8>(1u << r), _mm512_set1_pd(1.0));
#else
  vd8 v{};
  for (int q = 0; q < r; ++q) v[q] = p[q];
  v[r] = 1.0;
  return v;
#endif
}

/// The two halves of a vf16, widened to double.
inline void widen(vf16 v, vd8& lo, vd8& hi) {
#if defined(__AVX512F__)
  lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  return;
#endif
  vf8 h[2];
  std::memcpy(h, &v, sizeof v);
  lo = __builtin_convertvector(h[0], vd8);
  hi = __builtin_convertvector(h[1], vd8);
}

/// Σ of the eight lanes in a fixed pairwise order.
inline double hsum(vd8 v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

}  // namespace segforge::cpu
