#pragma once
// Threads for segforge-prep's readers. The one place in src/prep that uses OpenMP (as cpu/ does
// for the engine): a team size, a parallel loop, and an ordered pipeline whose results are
// combined one at a time in index order, so that what is built never depends on the threads.

#include <cstdint>
#include <functional>

namespace segforge::prep {

/// Team size for `threads`: itself when > 0, else OpenMP's default (OMP_NUM_THREADS, else
/// the cores).
int resolve_threads(int threads);

/// body(i) for every i in [0, n) on `team` threads. The exception of the lowest i that threw
/// is rethrown after every body has returned.
void parallel_for(int team, std::int64_t n, const std::function<void(std::int64_t)>& body);

/// produce(i) for every i in [0, n) on `team` threads, and consume(i) one at a time in
/// increasing i, each after its produce(i) has returned; at most `window` items are produced
/// and not yet consumed (the caller keeps their results in `window` slots, i % window). The
/// first exception (of consume(i), or of produce(i) for the lowest i) stops the work: nothing
/// after it is consumed, and it is rethrown.
void ordered_pipeline(int team, std::int64_t n, std::int64_t window,
                      const std::function<void(std::int64_t)>& produce,
                      const std::function<void(std::int64_t)>& consume);

}  // namespace segforge::prep
