// Transforms, winsorizing and scaling, column by column, in double; the result is float32.

#include <algorithm>
#include <cmath>
#include <limits>
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
        throw InputError("feature '" + f.names[jj] + "', " + row_name(f.ids, r) + ": " + std::to_string(v) +
                         " has no log1p; " + hint);
      y = std::log1p(v);
    } else if (t == "signed_log1p") {
      y = std::copysign(std::log1p(std::abs(v)), v);
    }
    col[static_cast<std::size_t>(r)] = y;
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
