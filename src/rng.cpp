#include "segforge/rng.hpp"

#include <algorithm>
#include <unordered_set>

namespace segforge {

namespace {
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(std::uint64_t seed) {
  // Seed the xoshiro state from SplitMix64, as its authors recommend.
  std::uint64_t z = seed;
  for (auto& s : s_) {
    z += 0x9E3779B97F4A7C15ull;
    s = mix64(z);
  }
}

std::uint64_t Rng::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

std::int64_t Rng::below(std::int64_t n) {
  std::int64_t v = 0;
  fill_below(std::span<std::int64_t>(&v, 1), n);
  return v;
}

void Rng::fill_below(std::span<std::int64_t> out, std::int64_t n) {
  // Lemire's nearly-divisionless method would do; rejection keeps it obviously unbiased.
  const auto bound = static_cast<std::uint64_t>(n);
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  for (auto& v : out) {
    std::uint64_t r = next();
    while (r >= limit) r = next();
    v = static_cast<std::int64_t>(r % bound);
  }
}

std::vector<std::int64_t> Rng::choose(std::int64_t n, std::int64_t k) {
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(k));
  if (k * 4 >= n) {  // dense: partial Fisher–Yates
    std::vector<std::int64_t> all(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) all[i] = i;
    for (std::int64_t i = 0; i < k; ++i) {
      std::swap(all[i], all[i + below(n - i)]);
      out.push_back(all[i]);
    }
    return out;
  }
  // sparse: rejection of repeats (k << n, few collisions)
  std::unordered_set<std::int64_t> seen;
  while (static_cast<std::int64_t>(out.size()) < k) {
    const std::int64_t i = below(n);
    if (seen.insert(i).second) out.push_back(i);
  }
  return out;
}

}  // namespace segforge
