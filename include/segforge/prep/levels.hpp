#pragma once
// One-hot level columns shared by `table` (--categorical) and `rfm` (--attributes
// --categorical, channel shares): which levels get a column of their own, and how a one-hot
// block is weighted against the ordinary features.
//
// Pooling: a level keeps its own column when it is among the `max_levels` most common AND
// its share of the rows is at least `min_share`; every other level goes to one more column,
// <prefix>other. Rare levels otherwise become columns that only a handful of rows have,
// which standard scaling turns into z-scores of 20 and more (a 0.4% level: (1-p)/sqrt(p(1-p))
// = 15.8), so a few customers of one country become a segment of their own.
//
// Weighting (block rule): under standard scaling each indicator column of a block (the
// levels of one categorical column) is centred on its mean p_j and divided by the block's
// scale sqrt(sum_j p_j (1 - p_j)) instead of its own sqrt(p_j (1 - p_j)), so the whole
// block has total variance 1, the variance of one ordinary standardized feature, however
// many levels it has and however rare they are. The scale goes to /scaler/scale, so original
// units and --scaler-from follow.
//
// Share blocks (share rule): the channel_share_* columns of rfm are one composition (each
// donor's shares sum to 1). Under standard scaling they share one scale,
// sqrt(sum_j var_j / m) over the block's m columns, instead of each its own standard
// deviation: the block keeps the total variance m that per-column scaling gives it (channel
// is behaviour, and stays as influential), but moving a share of the gifts from one channel
// to another is the same distance whichever the channels. Per column, a rare channel (a 4%
// one: sd 0.19) would stretch to 5 units and split donors who differ only in which of two
// rare channels they used (cheque or bank transfer) into segments of their own.

#include <cstdint>
#include <string>
#include <vector>

#include "segforge/prep/common.hpp"
#include "segforge/prep/transform.hpp"

namespace segforge::prep {

struct LevelRules {
  int max_levels = 10;       ///< at most this many levels keep a column (rest: other)
  double min_share = 0.01;   ///< levels below this share of the rows go to other
};

/// The kept levels map to their own columns (in name order), the rest to one more column,
/// "other", when there are any.
struct LevelMap {
  std::vector<std::int32_t> column;  ///< level -> output column (-1: no row has it)
  std::vector<std::string> names;    ///< output columns' level names ("other" last)
  std::int64_t merged = 0;           ///< levels put in "other"
};

/// The column name a level gets: prefix + snake_name(level) ("blank" for an empty one).
std::string level_column(const std::string& prefix, const std::string& level);

/// Chooses the columns for the levels `levels` with row counts `counts` [levels.size()]
/// under `rules`; or, preparing like a training file (`known` not empty: its feature names),
/// keeps exactly the levels whose column the training has, whatever their frequency, and
/// sends every other level with rows to "other". Ties in frequency go by name.
LevelMap pool_levels(const std::vector<std::string>& levels, const std::vector<std::int64_t>& counts,
                     const LevelRules& rules, const std::string& prefix, const std::vector<std::string>& known);

/// Checks --max-levels and --min-level-share; InputError naming the option.
void validate(const LevelRules& rules);

/// Applies the block rule (above) to `prepared`, made by transform(features, ...) with
/// standard scaling: every block of FeatureKind::indicator columns sharing a group prefix
/// gets the block scale, and its matrix columns are recomputed as apply_scaler would.
/// Returns the number of blocks weighted.
int weight_level_blocks(const RawFeatures& features, Prepared& prepared);

/// Applies the share rule (above) to `prepared`, made by transform(features, ...) with
/// standard scaling: every block of FeatureKind::fraction columns sharing a group prefix
/// gets the block's common scale, and its matrix columns are recomputed as apply_scaler
/// would. Returns the number of blocks scaled.
int weight_share_blocks(const RawFeatures& features, Prepared& prepared);

}  // namespace segforge::prep
