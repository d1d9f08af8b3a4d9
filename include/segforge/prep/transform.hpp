#pragma once
// From features in original units to the matrix the engine clusters: log transforms for
// skewed money and count features, optional winsorizing, then scaling. The per-feature
// transform, centre and scale go to /scaler so that
//   original = inverse_transform(transform, scaled * scale + mean).
//
// Transforms by feature kind (common.hpp), when `log` is on:
//   money    log1p, or signed_log1p (sign(x)·log1p(|x|)) when it may be negative
//   count    log1p
//   value    log1p for the columns listed in TransformParams::log_columns, else identity
//   others   identity
// Winsorizing (clip_quantile q) clamps money, count, days and value features to their
// [1-q, q] quantiles (linear interpolation, as numpy.quantile) after the log transform;
// the inverse then gives the clamped value. The bounds go to /scaler/clip_low and clip_high
// (-inf / +inf for the features not clipped), so apply_scaler can clamp new records alike.
//
// Two-valued rule (standard scaling): a feature that holds exactly two distinct values (a
// yes/no flag, or a count that is 0 for most rows and 1 for the rest) is centred on its mean
// and divided by half the gap between its two values, not by its standard deviation. Two
// rows that differ on it are then 2 units apart, as on a balanced yes/no feature, however
// rare the second value: the standard deviation gap·sqrt(p(1-p)) would put them
// 1/sqrt(p(1-p)) units apart (4.9 when 4% of the rows have it), so that a rare flag alone
// makes a segment of its own. For p = 1/2 both rules agree. Columns of a level block
// (RawFeatures::groups not empty) follow levels.hpp's block rules instead.

#include <cstdint>
#include <string>
#include <vector>

#include "segforge/io.hpp"
#include "segforge/prep/common.hpp"

namespace segforge::prep {

enum class Scaling {
  standard,  ///< centre = mean, scale = population standard deviation (1 where it is 0)
  robust,    ///< centre = median, scale = interquartile range (1 where it is 0)
  none,      ///< centre 0, scale 1
};

struct TransformParams {
  bool log = true;
  std::vector<std::string> log_columns;  ///< `value` features to log1p (table)
  double clip_quantile = 0.0;            ///< 0: off; else in (0.5, 1), e.g. 0.99
  Scaling scaling = Scaling::standard;
  /// Under standard scaling, weight each one-hot block to the variance of one feature
  /// (levels.hpp's block rule; --level-weight block); false: every level column alone.
  bool weight_level_blocks = true;
};

struct Prepared {
  Matrix<float> x;  ///< [n_samples x n_features]
  std::vector<std::string> names;
  Ids ids;
  Scaler scaler;
};

/// Throws InputError for a clip quantile outside (0.5, 1), an unknown log column, or a
/// log1p feature with a value <= -1.
Prepared transform(const RawFeatures& features, const TransformParams& params);

struct SkewedColumn {
  std::string name;
  double skewness = 0.0;  ///< the sample skewness, Fisher-Pearson g1 (scipy.stats.skew, bias=True)
};

/// The `value` features (table columns) not already in params.log_columns, never negative,
/// whose skewness exceeds `threshold`: left as they are, their few largest values pull
/// segments of their own. For a note suggesting --log-columns; largest skewness first.
std::vector<SkewedColumn> skewed_columns(const RawFeatures& features, const TransformParams& params,
                                         double threshold = 2.0);

/// Prepares new records with a stored scaler instead of fitting one (--scaler-from): per
/// feature the scaler's transform, clip bounds (when it has them), then (y - mean) / scale,
/// with transform()'s arithmetic, so a training file's own rows give its matrix bit for bit.
/// `features` must already be in the scaler's columns (align_to_training). `scaler_path`
/// names the scaler's file in messages. Throws InputError for an unknown transform or a
/// log1p feature with a value <= -1.
Prepared apply_scaler(const RawFeatures& features, const Scaler& scaler, const std::string& scaler_path);

/// The inverse of one transform ("identity", "log1p", "signed_log1p"). Throws InputError
/// for any other name.
double inverse_transform(const std::string& transform, double y);

/// Root attributes describing the transforms: log (the features per non-identity
/// transform), clip_quantile, scale.
std::vector<SummaryItem> transform_items(const TransformParams& params, const Prepared& prepared);

}  // namespace segforge::prep
