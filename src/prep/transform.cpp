// Transforms, winsorizing and scaling, column by column, in double; the result is float32.

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "fields.hpp"

#include "segforge/error.hpp"
#include "segforge/prep.hpp"

namespace segforge::prep {

namespace {

/// numpy.quantile's default (linear interpolation between order statistics) on sorted values.
double quantile_sorted(const std::vector<double>& sorted, double p) {
  const double pos = p * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double t = pos - static_cast<double>(lo);
  const double q = sorted[lo] + t * (sorted[hi] - sorted[lo]);
  // Near the double range the difference overflows; the weighted form does not.
  return std::isfinite(q) ? q : (1.0 - t) * sorted[lo] + t * sorted[hi];
}

/// Mean and population standard deviation of `col`. The plain sums first (so that ordinary
/// data gives the same bits as always); when they overflow (values near 1e154 and beyond
/// square past the double range), the same sums over col / max|col|, scaled back.
std::pair<double, double> mean_and_std(const std::vector<double>& col) {
  const auto n = static_cast<double>(col.size());
  double sum = 0.0;
  for (double y : col) sum += y;
  double centre = sum / n;
  double ss = 0.0;
  for (double y : col) ss += (y - centre) * (y - centre);
  double scale = std::sqrt(ss / n);
  if (std::isfinite(centre) && std::isfinite(scale)) return {centre, scale};
  double m = 0.0;
  for (double y : col) m = std::max(m, std::abs(y));
  sum = 0.0;
  for (double y : col) sum += y / m;
  const double unit_centre = sum / n;
  ss = 0.0;
  for (double y : col) ss += (y / m - unit_centre) * (y / m - unit_centre);
  return {unit_centre * m, std::sqrt(ss / n) * m};
}

bool clipped(FeatureKind k) {
  return k == FeatureKind::money || k == FeatureKind::count || k == FeatureKind::days ||
         k == FeatureKind::value;
}

std::string transform_of(const RawFeatures& f, std::size_t j, const TransformParams& p) {
  if (!p.log) return "identity";
  switch (f.kinds[j]) {
    case FeatureKind::money:
      return f.may_be_negative[j] ? "signed_log1p" : "log1p";
    case FeatureKind::count:
      return "log1p";
    case FeatureKind::value:
      return std::find(p.log_columns.begin(), p.log_columns.end(), f.names[j]) != p.log_columns.end()
                 ? "log1p"
                 : "identity";
    default:
      return "identity";
  }
}

std::string row_name(const Ids& ids, std::int64_t r) {
  return ids.empty() ? "row " + std::to_string(r + 1) : "id " + printable(ids.str(r));
}

/// Column j of `f` through transform `t` ("identity", "log1p" or "signed_log1p"); `hint` ends
/// the message for a value log1p cannot take.
void forward(const RawFeatures& f, std::int64_t j, const std::string& t, const std::string& hint,
             std::vector<double>& col) {
  const auto jj = static_cast<std::size_t>(j);
  for (std::int64_t r = 0; r < f.values.rows(); ++r) {
    const double v = f.values(r, j);
    double y = v;
    if (t == "log1p") {
      if (v <= -1.0)
        throw InputError("feature " + quote_text(f.names[jj]) + ", " + row_name(f.ids, r) + ": " + std::to_string(v) +
                         " has no log1p; " + hint);
      y = std::log1p(v);
    } else if (t == "signed_log1p") {
      y = std::copysign(std::log1p(std::abs(v)), v);
    }
    col[static_cast<std::size_t>(r)] = y;
  }
}

/// The gap between the two values of a column that holds exactly two distinct values, else 0.
double two_value_gap(const std::vector<double>& col) {
  const double a = col.front();
  double b = a;
  for (double y : col) {
    if (y == a || y == b) continue;
    if (b != a) return 0.0;  // a third value
    b = y;
  }
  return std::abs(b - a);
}

double largest_magnitude(const std::vector<double>& col) {
  double m = 0.0;
  for (double y : col) m = std::max(m, std::abs(y));
  return m;
}

/// Every output value and scaler entry finite, every feature name once: whatever the input,
/// a features file with Inf, NaN or a repeated name is never written.
void check_prepared(const RawFeatures& f, const Prepared& out) {
  const std::int64_t n = out.x.rows(), d = out.x.cols();
  std::unordered_map<std::string_view, std::size_t> names;
  for (std::size_t j = 0; j < out.names.size(); ++j)
    if (auto [it, fresh] = names.emplace(out.names[j], j); !fresh)
      throw InputError("feature " + quote_text(out.names[j]) + " appears twice (features " +
                       std::to_string(it->second + 1) + " and " + std::to_string(j + 1) +
                       "); feature names must be unique, so rename one column");
  for (std::int64_t j = 0; j < d; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    const double mean = out.scaler.mean[jj], scale = out.scaler.scale[jj];
    if (!std::isfinite(mean) || !std::isfinite(scale) || !(scale > 0.0))
      throw InputError("feature " + quote_text(out.names[jj]) + ": the scaler's mean " + number_text(mean) +
                       " and scale " + number_text(scale) +
                       " are not finite and positive; check the training file's /scaler");
    for (std::int64_t r = 0; r < n; ++r) {
      if (std::isfinite(out.x(r, j))) continue;
      throw InputError("feature " + quote_text(out.names[jj]) + ", " + row_name(f.ids, r) + ": the value " +
                       number_text(f.values(r, j)) + " becomes " + number_text(out.x(r, j)) +
                       " once transformed and scaled (beyond float32's range, about 3.4e38); clean the "
                       "value, log-transform the column, or use --scale standard");
    }
  }
}

}  // namespace

double inverse_transform(const std::string& transform, double y) {
  if (transform == "identity") return y;
  if (transform == "log1p") return std::expm1(y);
  if (transform == "signed_log1p") return std::copysign(std::expm1(std::abs(y)), y);
  throw InputError("/scaler/transform: unknown transform '" + transform +
                   "'; expected identity, log1p or signed_log1p");
}

Prepared transform(const RawFeatures& f, const TransformParams& p) {
  if (p.clip_quantile != 0.0 && !(p.clip_quantile > 0.5 && p.clip_quantile < 1.0))
    throw InputError("--clip-quantile " + std::to_string(p.clip_quantile) +
                     ": must be a fraction in (0.5, 1), e.g. 0.99 (or 0 for none)");
  for (const auto& c : p.log_columns)
    if (std::find(f.names.begin(), f.names.end(), c) == f.names.end())
      throw InputError("--log-columns " + c + ": no such feature; the features are the columns used");
  const std::int64_t n = f.values.rows(), d = f.values.cols();
  Prepared out;
  out.x = Matrix<float>(n, d);
  out.names = f.names;
  out.ids = f.ids;
  std::vector<double> col(static_cast<std::size_t>(n)), sorted;
  for (std::int64_t j = 0; j < d; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    const std::string t = transform_of(f, jj, p);
    forward(f, j, t, "leave the column out of --log-columns", col);
    const bool needs_order = (p.clip_quantile > 0.0 && clipped(f.kinds[jj])) || p.scaling == Scaling::robust;
    if (needs_order) {
      sorted = col;
      std::sort(sorted.begin(), sorted.end());
    }
    if (p.clip_quantile > 0.0) {
      double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
      if (clipped(f.kinds[jj])) {
        lo = quantile_sorted(sorted, 1.0 - p.clip_quantile);
        hi = quantile_sorted(sorted, p.clip_quantile);
        for (double& y : col) y = std::clamp(y, lo, hi);
        for (double& y : sorted) y = std::clamp(y, lo, hi);
      }
      out.scaler.clip_low.push_back(lo);
      out.scaler.clip_high.push_back(hi);
    }
    double centre = 0.0, scale = 1.0;
    if (p.scaling == Scaling::standard) {
      std::tie(centre, scale) = mean_and_std(col);
      // Two-valued rule (transform.hpp): a yes/no-like column is scaled by half its gap, so
      // having it or not is 2 units whatever its rarity, not 1/sqrt(p(1-p)) units.
      const bool in_block = jj < f.groups.size() && !f.groups[jj].empty();
      if (!in_block && n > 0)
        if (const double gap = two_value_gap(col); gap > 0.0 && std::isfinite(gap)) scale = gap / 2.0;
    } else if (p.scaling == Scaling::robust) {
      centre = quantile_sorted(sorted, 0.5);
      scale = quantile_sorted(sorted, 0.75) - quantile_sorted(sorted, 0.25);
    }
    // The spread of values near ±1.8e308 can exceed the double range itself: refuse rather
    // than fall back to scale 1 and write values that overflow float32.
    if (std::isinf(scale) || !std::isfinite(centre))
      throw InputError("feature '" + printable(f.names[jj]) + "': its values (up to " +
                       number_text(largest_magnitude(col)) +
                       ") spread beyond the range of a double, so they cannot be scaled; clean the "
                       "values, or log-transform the column");
    // A constant column keeps scale 1 (as scikit-learn's scalers do) instead of dividing by 0.
    if (!(scale > 0.0)) scale = 1.0;
    for (std::int64_t r = 0; r < n; ++r)
      out.x(r, j) = static_cast<float>((col[static_cast<std::size_t>(r)] - centre) / scale);
    out.scaler.mean.push_back(centre);
    out.scaler.scale.push_back(scale);
    out.scaler.transform.push_back(t);
  }
  check_prepared(f, out);
  return out;
}

Prepared apply_scaler(const RawFeatures& f, const Scaler& scaler, const std::string& scaler_path) {
  const std::int64_t n = f.values.rows(), d = f.values.cols();
  SEGFORGE_ASSERT(static_cast<std::int64_t>(scaler.mean.size()) == d &&
                      static_cast<std::int64_t>(scaler.scale.size()) == d &&
                      static_cast<std::int64_t>(scaler.transform.size()) == d,
                  "apply_scaler: the scaler must have one entry per feature");
  const bool clip = !scaler.clip_low.empty();
  Prepared out;
  out.x = Matrix<float>(n, d);
  out.names = f.names;
  out.ids = f.ids;
  out.scaler = scaler;
  std::vector<double> col(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; j < d; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    const std::string& t = scaler.transform[jj];
    if (t != "identity" && t != "log1p" && t != "signed_log1p")
      throw InputError(scaler_path + ":/scaler/transform: unknown transform '" + t + "' for feature '" +
                       f.names[jj] + "'; expected identity, log1p or signed_log1p");
    forward(f, j, t,
            "the training file " + scaler_path + " log-transforms this feature; clean the value", col);
    if (clip)
      for (double& y : col) y = std::clamp(y, scaler.clip_low[jj], scaler.clip_high[jj]);
    const double centre = scaler.mean[jj], scale = scaler.scale[jj];
    for (std::int64_t r = 0; r < n; ++r)
      out.x(r, j) = static_cast<float>((col[static_cast<std::size_t>(r)] - centre) / scale);
  }
  check_prepared(f, out);
  return out;
}

std::vector<SummaryItem> transform_items(const TransformParams& p, const Prepared& prepared) {
  std::map<std::string, std::vector<std::string>> by_transform;
  for (std::size_t j = 0; j < prepared.names.size(); ++j)
    if (prepared.scaler.transform[j] != "identity")
      by_transform[prepared.scaler.transform[j]].push_back(prepared.names[j]);
  std::string log;
  for (const auto& [t, names] : by_transform) {
    if (!log.empty()) log += "; ";
    log += t + ":";
    for (const auto& n : names) log += " " + n;
  }
  const char* scale = p.scaling == Scaling::standard ? "standard" : p.scaling == Scaling::robust ? "robust" : "none";
  return {{"log", "log transforms", log.empty() ? "none" : log},
          {"clip_quantile", "winsorized at quantile", p.clip_quantile > 0 ? std::to_string(p.clip_quantile) : "none"},
          {"scale", "scaling", scale}};
}

void write_prepared(const std::string& path, const Prepared& prepared,
                    const std::vector<SummaryItem>& items, const std::vector<std::string>& feature_roles) {
  write_features(path, prepared.x.view(), prepared.names, prepared.ids, prepared.scaler,
                 to_attributes(items), {}, feature_roles);
}

std::vector<SkewedColumn> skewed_columns(const RawFeatures& features, const TransformParams& params,
                                         double threshold) {
  std::vector<SkewedColumn> out;
  const std::int64_t n = features.values.rows();
  if (n < 20) return out;  // too few rows for a skewness to mean anything
  for (std::size_t j = 0; j < features.names.size(); ++j) {
    if (features.kinds[j] != FeatureKind::value) continue;
    if (std::find(params.log_columns.begin(), params.log_columns.end(), features.names[j]) != params.log_columns.end())
      continue;
    const auto jj = static_cast<std::int64_t>(j);
    double mean = 0.0, lowest = std::numeric_limits<double>::infinity();
    std::optional<double> first, second;  // two distinct values seen; a third makes it no flag
    bool many = false;
    for (std::int64_t i = 0; i < n; ++i) {
      const double v = features.values(i, jj);
      mean += v;
      lowest = std::min(lowest, v);
      if (!first) first = v;
      else if (v != *first && !second) second = v;
      else if (v != *first && v != *second) many = true;
    }
    // log1p is for non-negative amounts; a two-valued flag (Complain 0/1) is skewed, but a log
    // changes nothing about it.
    if (lowest < 0.0 || !many) continue;
    mean /= static_cast<double>(n);
    double m2 = 0.0, m3 = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double e = features.values(i, jj) - mean;
      m2 += e * e;
      m3 += e * e * e;
    }
    m2 /= static_cast<double>(n);
    m3 /= static_cast<double>(n);
    if (!(m2 > 0.0) || !std::isfinite(m3)) continue;
    const double g1 = m3 / std::pow(m2, 1.5);
    if (g1 > threshold) out.push_back({features.names[j], g1});
  }
  std::stable_sort(out.begin(), out.end(), [](const SkewedColumn& a, const SkewedColumn& b) { return a.skewness > b.skewness; });
  return out;
}

}  // namespace segforge::prep
