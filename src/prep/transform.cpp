// Transforms, winsorizing and scaling, column by column, in double; the result is float32.

#include <algorithm>
#include <cmath>
#include <map>

#include "segforge/error.hpp"
#include "segforge/prep.hpp"

namespace segforge::prep {

namespace {

/// numpy.quantile's default (linear interpolation between order statistics) on sorted values.
double quantile_sorted(const std::vector<double>& sorted, double p) {
  const double pos = p * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
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
  return ids.empty() ? "row " + std::to_string(r + 1) : "id " + ids.str(r);
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
    for (std::int64_t r = 0; r < n; ++r) {
      const double v = f.values(r, j);
      double y = v;
      if (t == "log1p") {
        if (v <= -1.0)
          throw InputError("feature '" + f.names[jj] + "', " + row_name(f.ids, r) + ": " + std::to_string(v) +
                           " has no log1p; leave the column out of --log-columns");
        y = std::log1p(v);
      } else if (t == "signed_log1p") {
        y = std::copysign(std::log1p(std::abs(v)), v);
      }
      col[static_cast<std::size_t>(r)] = y;
    }
    const bool needs_order = (p.clip_quantile > 0.0 && clipped(f.kinds[jj])) || p.scaling == Scaling::robust;
    if (needs_order) {
      sorted = col;
      std::sort(sorted.begin(), sorted.end());
    }
    if (p.clip_quantile > 0.0 && clipped(f.kinds[jj])) {
      const double lo = quantile_sorted(sorted, 1.0 - p.clip_quantile);
      const double hi = quantile_sorted(sorted, p.clip_quantile);
      for (double& y : col) y = std::clamp(y, lo, hi);
      for (double& y : sorted) y = std::clamp(y, lo, hi);
    }
    double centre = 0.0, scale = 1.0;
    if (p.scaling == Scaling::standard) {
      double sum = 0.0;
      for (double y : col) sum += y;
      centre = sum / static_cast<double>(n);
      double ss = 0.0;
      for (double y : col) ss += (y - centre) * (y - centre);
      scale = std::sqrt(ss / static_cast<double>(n));
    } else if (p.scaling == Scaling::robust) {
      centre = quantile_sorted(sorted, 0.5);
      scale = quantile_sorted(sorted, 0.75) - quantile_sorted(sorted, 0.25);
    }
    // A constant column keeps scale 1 (as scikit-learn's scalers do) instead of dividing by 0.
    if (!(scale > 0.0) || !std::isfinite(scale)) scale = 1.0;
    for (std::int64_t r = 0; r < n; ++r)
      out.x(r, j) = static_cast<float>((col[static_cast<std::size_t>(r)] - centre) / scale);
    out.scaler.mean.push_back(centre);
    out.scaler.scale.push_back(scale);
    out.scaler.transform.push_back(t);
  }
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
                    const std::vector<SummaryItem>& items) {
  write_features(path, prepared.x.view(), prepared.names, prepared.ids, prepared.scaler,
                 to_attributes(items));
}

}  // namespace segforge::prep
