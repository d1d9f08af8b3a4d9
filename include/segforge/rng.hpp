#pragma once
// Seeded random numbers that give the same stream on every platform and backend.
// std::uniform_real_distribution is implementation-defined, so conversions are written here.

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#if defined(__CUDACC__)
#define SEGFORGE_HD __host__ __device__
#else
#define SEGFORGE_HD
#endif

namespace segforge {

/// SplitMix64 finaliser (Steele et al. 2014): a bijective 64-bit mix.
SEGFORGE_HD inline std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Counter-based uniform in [0, 1): the i-th draw of stream `seed`. Backends use it for
/// per-row Bernoulli draws (k-means|| oversampling) so CPU and GPU draw the same numbers.
SEGFORGE_HD inline double counter_uniform(std::uint64_t seed, std::uint64_t i) {
  return static_cast<double>(mix64(mix64(seed) ^ (i * 0xD1B54A32D192ED03ull)) >> 11) * 0x1.0p-53;
}

/// Sequential seeded generator (xoshiro256**, Blackman & Vigna 2018) for the drivers.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  /// Uniform double in [0, 1).
  double uniform();
  /// Uniform integer in [0, n), n > 0, without modulo bias.
  std::int64_t below(std::int64_t n);
  /// below(n) for each element of `out` in turn (the same numbers), the bound's setup once.
  void fill_below(std::span<std::int64_t> out, std::int64_t n);
  /// A fresh seed for a child stream (one per n_init run, per k-means|| round, ...).
  std::uint64_t split() { return next(); }
  /// k distinct indices from [0, n), in draw order (rejection for k << n, else partial shuffle).
  std::vector<std::int64_t> choose(std::int64_t n, std::int64_t k);

  /// The whole generator state, for checkpoints: a generator given back its state() draws
  /// exactly what the original would have drawn next.
  std::array<std::uint64_t, 4> state() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  void set_state(const std::array<std::uint64_t, 4>& s) {
    for (int i = 0; i < 4; ++i) s_[i] = s[i];
  }

 private:
  std::uint64_t s_[4];
};

}  // namespace segforge
