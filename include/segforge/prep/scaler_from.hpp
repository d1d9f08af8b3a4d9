#pragma once
// `--scaler-from TRAIN.h5`: new records prepared exactly like a training file, so that
// `segforge predict model.h5 new.h5` compares like with like. The training file gives the
// columns, in order, and per feature the transform, winsorizing bounds, centre and scale;
// nothing is fitted on the new records.
//
//   read_training_scaling   TRAIN.h5's /feature_names, /scaler and attributes (not the matrix)
//   compute_rfm / read_table with the training's columns (RfmParams::known_columns,
//                           TableParams::columns)
//   align_to_training       the new columns put in the training's order
//   apply_scaler            (transform.hpp) the stored scaling applied

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "segforge/io.hpp"
#include "segforge/prep/common.hpp"

namespace segforge::prep {

/// What a training features file fixes for new records.
struct TrainingScaling {
  std::string path;
  std::vector<std::string> names;                 ///< /feature_names [n_features]
  Scaler scaler;                                  ///< /scaler, clip bounds when winsorized
  std::map<std::string, std::string> attributes;  ///< root attributes (log, clip_quantile, scale, ...)
};

/// Reads TRAIN.h5 without its matrix. Throws InputError naming the file and what to do when
/// it has no /scaler, a transform other than identity, log1p and signed_log1p, a scale that
/// is not a positive number, or was winsorized (attribute clip_quantile) without storing
/// its bounds (a file from an older segforge-prep).
TrainingScaling read_training_scaling(const std::string& path);

/// How the new records' columns were matched to the training's.
struct AlignSummary {
  std::vector<std::string> zero_columns;     ///< training levels absent from the new data: all 0
  std::vector<std::string> dropped_columns;  ///< made from the new data, not in the training: dropped
  std::int64_t levels_to_other = 0;  ///< levels the training has not seen, counted in <prefix>other
  std::int64_t levels_dropped = 0;   ///< levels the training has not seen and no <prefix>other for
  std::int64_t rows_with_dropped_levels = 0;  ///< rows that had one of those levels
};

/// Puts `features` into the training's columns, in its order. A training column missing here
/// is all 0 when it is a level of a group the new data has (features.groups: a channel or
/// category level that no new record has); any other missing column is an InputError naming
/// `input` (the new data), the training file and what to do. A level column made here that
/// the training lacks is added into the training's <prefix>other when it has one, else
/// dropped (counted); any other extra column is dropped (listed).
AlignSummary align_to_training(RawFeatures& features, const TrainingScaling& training,
                               const std::string& input);

/// Summary items (and root attributes) for a file prepared with --scaler-from: the training
/// file, its log, clip_quantile and scale attributes, and the alignment counts.
std::vector<SummaryItem> scaler_from_items(const TrainingScaling& training, const AlignSummary& align);

}  // namespace segforge::prep
