#include "parallel.hpp"

#include <omp.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <vector>

namespace segforge::prep {

int resolve_threads(int threads) { return threads > 0 ? threads : std::max(1, omp_get_max_threads()); }

void parallel_for(int team, std::int64_t n, const std::function<void(std::int64_t)>& body) {
  if (n <= 0) return;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n));
  team = static_cast<int>(std::clamp<std::int64_t>(team, 1, n));
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
  for (std::int64_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
      errors[static_cast<std::size_t>(i)] = std::current_exception();
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

void ordered_pipeline(int team, std::int64_t n, std::int64_t window,
                      const std::function<void(std::int64_t)>& produce,
                      const std::function<void(std::int64_t)>& consume) {
  if (n <= 0) return;
  window = std::max<std::int64_t>(window, 1);
  team = static_cast<int>(std::clamp<std::int64_t>(team, 1, std::min(n, window)));
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<char> produced(static_cast<std::size_t>(n), 0);
  std::vector<std::exception_ptr> produce_errors(static_cast<std::size_t>(n));
  std::int64_t next_produce = 0, next_consume = 0;
  bool consuming = false, failed = false;
  std::exception_ptr error;
  // Each thread consumes what is ready (one consumer at a time, in order), else produces the
  // next item while the window has room, else waits. Whoever finishes an item consumes it
  // when its turn has come, so no thread waits for a consumer.
#pragma omp parallel num_threads(team)
  {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      if (failed || next_consume == n) break;
      if (!consuming && produced[static_cast<std::size_t>(next_consume)] != 0) {
        consuming = true;
        const std::int64_t i = next_consume;
        lock.unlock();
        // An item whose produce threw is consumed as that error, in its turn.
        std::exception_ptr e = produce_errors[static_cast<std::size_t>(i)];
        if (!e) try {
            consume(i);
          } catch (...) {
            e = std::current_exception();
          }
        lock.lock();
        consuming = false;
        ++next_consume;
        if (e && !failed) {
          failed = true;
          error = e;
        }
        changed.notify_all();
        continue;
      }
      if (next_produce < n && next_produce - next_consume < window) {
        const std::int64_t i = next_produce++;
        lock.unlock();
        std::exception_ptr e;
        try {
          produce(i);
        } catch (...) {
          e = std::current_exception();
        }
        lock.lock();
        produce_errors[static_cast<std::size_t>(i)] = e;
        produced[static_cast<std::size_t>(i)] = 1;
        changed.notify_all();
        continue;
      }
      changed.wait(lock);
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace segforge::prep
