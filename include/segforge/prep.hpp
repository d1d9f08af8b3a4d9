#pragma once
// segforge-prep's library: CRM exports and numeric tables to the features.h5 matrix
// (DESIGN.md, "File formats"), and the synthetic data generators.
//
//   compute_rfm / read_table  ->  RawFeatures (original units) + a cleaning summary
//   transform                 ->  Prepared (float32 matrix, /scaler)
//   write_prepared            ->  features.h5 with the summary as root attributes
//
// New records for `segforge predict` are prepared like the training file instead of being
// fitted anew (--scaler-from, scaler_from.hpp): the training's columns, then apply_scaler.

#include <string>
#include <vector>

#include "segforge/prep/common.hpp"
#include "segforge/prep/levels.hpp"
#include "segforge/prep/rfm.hpp"
#include "segforge/prep/scaler_from.hpp"
#include "segforge/prep/synth.hpp"
#include "segforge/prep/table.hpp"
#include "segforge/prep/transform.hpp"

namespace segforge::prep {

/// Writes `prepared` to `path` atomically (write_features), with `items` as root attributes
/// and `feature_roles` (one role word per feature, or none) as /feature_roles.
void write_prepared(const std::string& path, const Prepared& prepared,
                    const std::vector<SummaryItem>& items,
                    const std::vector<std::string>& feature_roles = {});

}  // namespace segforge::prep
