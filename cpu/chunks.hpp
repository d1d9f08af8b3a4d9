#pragma once
// Deterministic parallel loops over rows. Rows are cut into chunks of kChunkRows, a size that
// never depends on the thread count; each chunk writes its own partial sums, and the partials are
// added to the total one chunk at a time in chunk order. Which thread ran a chunk changes nothing,
// so sums are bit-identical for any team size and across reruns, with no floating-point atomics
// (FAISS compute_centroids owns outputs per thread for the same reason).

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace segforge::cpu {

/// Rows per chunk. Fixed: the chunk partials and the order they are combined in define the
/// floating-point result. 2048 rows give ~500 chunks per million rows, enough to balance any
/// team, and amortise the per-chunk zeroing and folding of the partials.
constexpr std::int64_t kChunkRows = 2048;
/// Memory for chunk partials in flight before they are folded into the total.
constexpr std::int64_t kPartialBudgetBytes = 1LL << 20;

inline std::int64_t chunk_count(std::int64_t n) { return (n + kChunkRows - 1) / kChunkRows; }

/// Team size for a backend created with `threads` (<= 0: OpenMP's default).
inline int resolve_team(int threads) {
  return threads > 0 ? threads : std::max(1, omp_get_max_threads());
}

/// Runs body(scratch, begin, end, partial) over the chunks [begin, end) of [0, n) on `team`
/// threads; each chunk's partial [total.size()] starts at zero. Partials are added into `total`
/// one chunk at a time in chunk order. make_scratch() builds one scratch per thread.
///
/// Rows [lo, hi) with lo a multiple of kChunkRows: the chunks of one window of a streamed
/// dataset. Folding window after window into the same `total` gives the bits of one call over
/// all rows, since chunk c of the window is chunk c of the whole.
template <class MakeScratch, class Body>
void reduce_chunks(int team, std::int64_t lo, std::int64_t hi, std::span<double> total,
                   MakeScratch make_scratch, Body body) {
  const std::int64_t width = static_cast<std::int64_t>(total.size());
  const std::int64_t first_chunk = lo / kChunkRows;
  const std::int64_t n = hi;
  const std::int64_t n_chunks = chunk_count(hi);
  if (n_chunks <= first_chunk) return;
  // No more threads than chunks: a thread without a chunk only waits at the barriers.
  team = static_cast<int>(std::min<std::int64_t>(team, n_chunks - first_chunk));
  // Chunks per round: as many as fit the budget (each round ends in two barriers), at least a
  // few per thread, and never a buffer so large that its page faults cost more than the folding.
  // The round size does not change the result: partials are folded one chunk at a time.
  const std::int64_t budget = kPartialBudgetBytes / (std::max<std::int64_t>(width, 1) * 8);
  const std::int64_t group = std::min(n_chunks - first_chunk,
                                      std::max<std::int64_t>(budget, 4 * static_cast<std::int64_t>(team)));
  std::vector<double> slots(static_cast<std::size_t>(group * width));
#pragma omp parallel num_threads(team)
  {
    auto scratch = make_scratch();
    for (std::int64_t g0 = first_chunk; g0 < n_chunks; g0 += group) {
      const std::int64_t g1 = std::min(n_chunks, g0 + group);
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t c = g0; c < g1; ++c) {
        double* partial = slots.data() + (c - g0) * width;
        std::fill(partial, partial + width, 0.0);
        body(scratch, c * kChunkRows, std::min(n, (c + 1) * kChunkRows), partial);
      }
#pragma omp for schedule(static)
      for (std::int64_t e = 0; e < width; ++e) {
        double t = total[e];
        for (std::int64_t c = g0; c < g1; ++c) t += slots[(c - g0) * width + e];
        total[e] = t;
      }
    }
  }
}

template <class MakeScratch, class Body>
void reduce_chunks(int team, std::int64_t n, std::span<double> total, MakeScratch make_scratch,
                   Body body) {
  reduce_chunks(team, 0, n, total, make_scratch, body);
}

/// body(scratch, chunk, begin, end) over the chunks of rows [lo, hi) (lo a multiple of
/// kChunkRows) on `team` threads, no reduction.
template <class MakeScratch, class Body>
void for_chunks(int team, std::int64_t lo, std::int64_t hi, MakeScratch make_scratch, Body body) {
  const std::int64_t n = hi;
  const std::int64_t n_chunks = chunk_count(hi);
  if (n_chunks <= lo / kChunkRows) return;
  team = static_cast<int>(std::min<std::int64_t>(team, n_chunks - lo / kChunkRows));
#pragma omp parallel num_threads(team)
  {
    auto scratch = make_scratch();
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t c = lo / kChunkRows; c < n_chunks; ++c)
      body(scratch, c, c * kChunkRows, std::min(n, (c + 1) * kChunkRows));
  }
}

/// body(scratch, chunk, begin, end) over the chunks of [0, n) on `team` threads, no reduction.
template <class MakeScratch, class Body>
void for_chunks(int team, std::int64_t n, MakeScratch make_scratch, Body body) {
  for_chunks(team, 0, n, make_scratch, body);
}

struct NoScratch {};
inline NoScratch no_scratch() { return {}; }

}  // namespace segforge::cpu
