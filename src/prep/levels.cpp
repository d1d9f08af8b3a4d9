// Level pooling, one-hot block weighting and share-block scaling; definitions and the rules in
// include/segforge/prep/levels.hpp.

#include "segforge/prep/levels.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "fields.hpp"
#include "segforge/error.hpp"

namespace segforge::prep {

std::string level_column(const std::string& prefix, const std::string& level) {
  const std::string base = snake_name(level);
  return prefix + (base.empty() ? "blank" : base);
}

void validate(const LevelRules& rules) {
  if (rules.max_levels < 1)
    throw InputError("--max-levels " + std::to_string(rules.max_levels) + ": must be at least 1");
  if (!(rules.min_share >= 0.0 && rules.min_share < 1.0))
    throw InputError("--min-level-share " + std::to_string(rules.min_share) +
                     ": must be a fraction in [0, 1), e.g. 0.01 (0: keep every level up to --max-levels)");
}

LevelMap pool_levels(const std::vector<std::string>& levels, const std::vector<std::int64_t>& counts,
                     const LevelRules& rules, const std::string& prefix, const std::vector<std::string>& known) {
  std::vector<std::int32_t> order(levels.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
    const auto ca = counts[static_cast<std::size_t>(a)], cb = counts[static_cast<std::size_t>(b)];
    if (ca != cb) return ca > cb;
    return levels[static_cast<std::size_t>(a)] < levels[static_cast<std::size_t>(b)];
  });
  const std::int64_t total = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
  std::vector<std::int32_t> top, rest;
  if (known.empty()) {
    for (std::int32_t l : order) {
      const auto c = counts[static_cast<std::size_t>(l)];
      const bool common = static_cast<double>(c) >= rules.min_share * static_cast<double>(total);
      if (static_cast<int>(top.size()) < rules.max_levels && common && c > 0)
        top.push_back(l);
      else if (c > 0)
        rest.push_back(l);
    }
  } else {
    for (std::int32_t l : order) {
      if (std::find(known.begin(), known.end(), level_column(prefix, levels[static_cast<std::size_t>(l)])) != known.end())
        top.push_back(l);
      else if (counts[static_cast<std::size_t>(l)] > 0)
        rest.push_back(l);
    }
  }
  LevelMap m;
  m.column.assign(order.size(), -1);
  // Name order within the kept levels makes the columns stable across runs on similar data.
  std::sort(top.begin(), top.end(), [&](std::int32_t a, std::int32_t b) {
    return levels[static_cast<std::size_t>(a)] < levels[static_cast<std::size_t>(b)];
  });
  for (std::size_t k = 0; k < top.size(); ++k) {
    m.column[static_cast<std::size_t>(top[k])] = static_cast<std::int32_t>(k);
    m.names.push_back(levels[static_cast<std::size_t>(top[k])]);
  }
  if (!rest.empty()) {
    for (std::int32_t l : rest) m.column[static_cast<std::size_t>(l)] = static_cast<std::int32_t>(top.size());
    m.names.push_back("other");
    m.merged = static_cast<std::int64_t>(rest.size());
  }
  return m;
}

int weight_level_blocks(const RawFeatures& f, Prepared& p) {
  if (f.groups.empty()) return 0;
  std::map<std::string, std::vector<std::int64_t>> blocks;
  for (std::size_t j = 0; j < f.names.size(); ++j)
    if (f.kinds[j] == FeatureKind::indicator && !f.groups[j].empty())
      blocks[f.groups[j]].push_back(static_cast<std::int64_t>(j));
  int weighted = 0;
  for (const auto& [group, cols] : blocks) {
    // The scaler's scale of a 0/1 column under standard scaling is sqrt(p(1-p)) (1 for a
    // constant column, which carries no variance); the block's variance is the sum of p(1-p).
    double variance = 0.0;
    for (std::int64_t j : cols) {
      const double m = p.scaler.mean[static_cast<std::size_t>(j)];
      variance += m * (1.0 - m);
    }
    const double scale = std::sqrt(variance);
    if (!(scale > 0.0) || !std::isfinite(scale)) continue;
    for (std::int64_t j : cols) {
      const auto jj = static_cast<std::size_t>(j);
      p.scaler.scale[jj] = scale;
      const double centre = p.scaler.mean[jj];
      for (std::int64_t r = 0; r < f.values.rows(); ++r)
        p.x(r, j) = static_cast<float>((f.values(r, j) - centre) / scale);
    }
    ++weighted;
  }
  return weighted;
}

int weight_share_blocks(const RawFeatures& f, Prepared& p) {
  if (f.groups.empty()) return 0;
  std::map<std::string, std::vector<std::int64_t>> blocks;
  for (std::size_t j = 0; j < f.names.size(); ++j)
    if (f.kinds[j] == FeatureKind::fraction && !f.groups[j].empty())
      blocks[f.groups[j]].push_back(static_cast<std::int64_t>(j));
  int weighted = 0;
  const std::int64_t n = f.values.rows();
  for (const auto& [group, cols] : blocks) {
    if (n == 0) break;
    // The block's variance, summed over its columns (identity transform: the values as they are).
    double variance = 0.0;
    for (std::int64_t j : cols) {
      const double m = p.scaler.mean[static_cast<std::size_t>(j)];
      double ss = 0.0;
      for (std::int64_t r = 0; r < n; ++r) ss += (f.values(r, j) - m) * (f.values(r, j) - m);
      variance += ss / static_cast<double>(n);
    }
    const double scale = std::sqrt(variance / static_cast<double>(cols.size()));
    if (!(scale > 0.0) || !std::isfinite(scale)) continue;
    for (std::int64_t j : cols) {
      const auto jj = static_cast<std::size_t>(j);
      p.scaler.scale[jj] = scale;
      const double centre = p.scaler.mean[jj];
      for (std::int64_t r = 0; r < n; ++r) p.x(r, j) = static_cast<float>((f.values(r, j) - centre) / scale);
    }
    ++weighted;
  }
  return weighted;
}

}  // namespace segforge::prep
