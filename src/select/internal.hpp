#pragma once
// Internal to src/select: pieces the sweep and the gap statistic share.

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/kmeans.hpp"

namespace segforge::select_detail {

/// log W_k from a fit's inertia (guarded against 0).
double log_w(double inertia);

/// log W*_kb of each reference set clustered with `reference_lloyd` at K = k, each put on the
/// scale of `n_data` rows.
std::vector<double> reference_log_w(Backend& backend, std::span<const std::unique_ptr<Dataset>> refs,
                                    int k, const LloydParams& reference_lloyd, std::int64_t n_data);

}  // namespace segforge::select_detail
