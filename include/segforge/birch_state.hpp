#pragma once
// BIRCH's CF-tree as plain arrays (src/cluster/birch.cpp grows it; a model file keeps it under
// /birch so that `fit --continue-from` can go on inserting rows). No behaviour here.

#include <cstdint>
#include <vector>

#include "segforge/matrix.hpp"

namespace segforge {

/// The CF-tree, as plain arrays that can be saved and loaded exactly (every value a double or
/// an index). Entries are stored node after node; the leaf nodes come first, in leaf-chain
/// order, so entries [0, n_subclusters) are the subclusters in subcluster order.
struct BirchState {
  double threshold = 0.5;            ///< the threshold in effect (the initial one, grown by rebuilds)
  double initial_threshold = 0.5;    ///< BirchParams::threshold
  int branching_factor = 50;
  std::int64_t max_subclusters = 0;  ///< 0: no budget
  int n_rebuilds = 0;                ///< rebuilds under the budget so far
  std::int64_t n_features = 0;       ///< 0 until the first rows are given
  std::int64_t n_rows_seen = 0;      ///< rows inserted so far (weight-0 rows included)
  /// [n_features] (empty before the first row of positive weight) that row's float32 values;
  /// every μ below is relative to it: the centroid is origin + mean.
  std::vector<double> origin;
  std::int64_t n_subclusters = 0;    ///< M: the leaf entries
  std::vector<double> weight;        ///< [n_entries] n = Σ w, > 0
  Matrix<double> mean;               ///< [n_entries x n_features] μ − origin
  std::vector<double> sq_deviation;  ///< [n_entries] S = Σ w‖x − μ‖² (the linear sum is n·μ)
  /// [n_entries] the node below an entry of an internal node; −1 for subclusters
  std::vector<std::int64_t> child;
  /// [n_nodes + 1] node j holds entries node_start[j] .. node_start[j + 1] − 1 (at least one,
  /// at most branching_factor); empty: no rows yet. Nodes whose entries are below n_subclusters
  /// are the leaves, in leaf-chain order.
  std::vector<std::int64_t> node_start;
  std::int64_t root = -1;            ///< the root node, −1 with no rows yet

  std::int64_t n_entries() const { return static_cast<std::int64_t>(weight.size()); }
  std::int64_t n_nodes() const { return node_start.empty() ? 0 : static_cast<std::int64_t>(node_start.size()) - 1; }
};

}  // namespace segforge
