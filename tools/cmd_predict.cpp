// segforge predict: labels for new records from a saved model.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include "cli_common.hpp"
#include "segforge/outputs.hpp"
#include "segforge/agglomerative.hpp"
#include "segforge/dbscan.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/metrics.hpp"
#include "segforge/validate.hpp"

#ifndef SEGFORGE_VERSION
#define SEGFORGE_VERSION "0.1.0"
#endif

namespace segforge::cli {
namespace {

int run_predict(const Common& c, const std::string& model_path, const std::string& features,
                const std::string& out, bool allow_other_scaling) {
  OutputSet outputs;
  outputs.input(model_path, "model");
  outputs.input(features, "features");
  outputs.output(out, "-o", {".h5", ".csv"});
  const Model model = read_model(model_path);
  Features f = load(features, c);
  if (f.x.cols() != model.centroids.cols())
    throw InputError(where(f) + ": " + std::to_string(f.x.cols()) + " features, but the model " +
                     model_path + " has " + std::to_string(model.centroids.cols()) +
                     "; predict on data prepared like the training data");
  if (!model.feature_names.empty())
    for (std::size_t j = 0; j < model.feature_names.size(); ++j)
      if (f.feature_names[j] != model.feature_names[j])
        throw InputError(where(f) + ": column " + std::to_string(j) + " is '" + f.feature_names[j] +
                         "' but the model " + model_path + " expects '" + model.feature_names[j] +
                         "'; predict on data prepared like the training data");
  // Same columns but scaled on other data (fitted anew on the new records): the centres then
  // mean something else, and many records land in another segment (issue 14.8: 18% did).
  if (!model.scaler.empty() && !f.scaler.empty()) {
    const std::string difference = scaler_difference(f.scaler, model.scaler, f.feature_names, "the model");
    if (!difference.empty()) {
      if (!allow_other_scaling)
        throw InputError(features + ":/scaler: scaled otherwise than the data of the model " + model_path + " (" +
                         difference + "); prepare the file with `segforge-prep ... --scaler-from "
                         "TRAINING_FEATURES.h5`, or pass --allow-other-scaling if this is deliberate");
      if (output_rank())
        std::fprintf(stderr, "segforge: warning: %s: scaled otherwise than the model's data (%s); --allow-other-scaling\n",
                     features.c_str(), difference.c_str());
    }
  }
  if ((model.is_dbscan() || model.is_hierarchy()) && (f.disk_rows > 0 || f.x.rows() != f.n_rows_total))
    throw InputError(where(f) + ": a " + (model.is_dbscan() ? "DBSCAN" : "hierarchical") +
                     " model predicts in one process with every row in memory; raise --memory-budget, and run it without mpirun");
  auto backend = open_backend(c);
  auto data = open_data(*backend, f, c);
  // Under MPI every rank labels its rows and all of them get every label; rank 0 writes.
  Assignment a;
  if (model.is_dbscan()) {
    // The segment of the nearest core row within eps, else -1 (Outliers).
    auto core = backend->upload(model.dbscan_core_rows.view());
    const DbscanAssignment p =
        predict_dbscan(*backend, *data, *core, model.dbscan_core_labels, std::stod(model.attributes.at("eps")));
    a.labels = p.labels;
    for (float v : p.distances) a.sq_distances.push_back(v * v);
  } else if (model.is_hierarchy()) {
    // The segment of the nearest leaf of the tree; the distance to that segment's centroid.
    const LeafAssignment p = predict_by_leaves(*backend, *data, model.hierarchy_leaves.view(), model.hierarchy_leaf_labels,
                                               model.centroids.view());
    a.labels = p.labels;
    for (float v : p.distances) a.sq_distances.push_back(v * v);
  } else {
    a = predict(*backend, *data, model.centroids.view());
  }
  if (!output_rank()) return 0;
  std::vector<std::string> names = model.segment_names;
  for (auto i = static_cast<std::int64_t>(names.size()); i < model.centroids.rows(); ++i)
    names.push_back("segment " + std::to_string(i + 1));
  write_labels(out, a, f.ids, names);
  outputs.commit();
  if (model.is_dbscan()) {
    const auto outliers = std::count(a.labels.begin(), a.labels.end(), -1);
    std::fprintf(stderr, "predicted %lld rows into %lld segments; %lld outliers (no core row within eps)\n",
                 static_cast<long long>(f.n_rows_total), static_cast<long long>(model.centroids.rows()),
                 static_cast<long long>(outliers));
  } else if (model.is_hierarchy()) {
    std::fprintf(stderr, "predicted %lld rows into %lld segments (each the segment of its nearest leaf of the tree)\n",
                 static_cast<long long>(f.n_rows_total), static_cast<long long>(model.centroids.rows()));
  } else {
    std::fprintf(stderr, "predicted %lld rows into %lld segments (inertia %.6g)\n",
                 static_cast<long long>(f.n_rows_total), static_cast<long long>(model.centroids.rows()), a.inertia);
  }
  return 0;
}

struct PredictOptions {
  Common common;
  std::string model, features, out;
  bool allow_other_scaling = false;
};

}  // namespace

Command add_predict_command(CLI::App& parent) {
  auto options = std::make_shared<PredictOptions>();
  PredictOptions& o = *options;
  auto* cmd = parent.add_subcommand("predict", "Assign new records to the segments of a model");
  cmd->add_option("model", o.model, "model.h5")->required();
  cmd->add_option("features", o.features, "features.h5")->required();
  cmd->add_option("-o,--output", o.out, "labels.h5 or segments.csv")->required();
  cmd->add_flag("--allow-other-scaling", o.allow_other_scaling,
                "label records whose /scaler differs from the model's (by default refused: prepare them with "
                "segforge-prep --scaler-from TRAINING_FEATURES.h5)");
  add_common(cmd, o.common);
  return {cmd, [options] {
            return run_predict(options->common, options->model, options->features, options->out,
                               options->allow_other_scaling);
          }};
}

}  // namespace segforge::cli
