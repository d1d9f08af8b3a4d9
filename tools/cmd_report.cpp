// segforge report: one self-contained report.html (charts by plotly.js, inlined) for a model.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "cli_common.hpp"
#include "segforge/agglomerative.hpp"
#include "segforge/outputs.hpp"
#include "segforge/refresh.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/report.hpp"
#include "segforge/segments.hpp"
#include "segforge/validate.hpp"

#ifndef SEGFORGE_VERSION
#define SEGFORGE_VERSION "0.1.0"
#endif

namespace segforge::cli {

/// drift.json back (tools/cmd_drift.cpp).
DriftResult drift_from_json(const json& j, const std::string& path);

namespace {

namespace fs = std::filesystem;

constexpr const char* kPlotlyRelative = "node_modules/plotly.js-dist-min/plotly.min.js";

struct ReportOptions {
  Common common;
  std::string model, features, labels, sweep, stability, drift, dbscan_eps, output, plotly, title = "Segmentation report";
  std::int64_t scatter_rows = 4000, silhouette_rows = 4000;
  std::uint64_t seed = 0;
  bool allow_other_features = false;
  bool strict = false;                 // data-sufficiency warnings are errors
  std::int64_t min_segment_size = 0;   // 0: default_min_segment_size(N)
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// plotly.min.js: --plotly, else $SEGFORGE_PLOTLY_JS, else node_modules/ in a folder above the
/// executable (the repository a build folder sits in) or above the working directory.
/// Returns an empty path with `why` set when none is found.
fs::path find_plotly(const std::string& option, std::string& why) {
  if (!option.empty()) {
    if (!fs::is_regular_file(option))
      throw InputError("--plotly " + option + ": no such file; point it at plotly.min.js (npm ci installs it in node_modules/)");
    return option;
  }
  if (const char* env = std::getenv("SEGFORGE_PLOTLY_JS"); env != nullptr && *env != '\0') {
    if (fs::is_regular_file(env)) return env;
    why = std::string("SEGFORGE_PLOTLY_JS=") + env + " is not a file";
    return {};
  }
  std::vector<fs::path> starts;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  starts.push_back(fs::current_path(ec));
  for (fs::path dir : starts) {
    for (int up = 0; up < 6 && !dir.empty(); ++up, dir = dir.parent_path()) {
      const fs::path candidate = dir / kPlotlyRelative;
      if (fs::is_regular_file(candidate, ec)) return candidate;
      if (dir == dir.parent_path()) break;
    }
  }
  why = std::string("plotly.js was not found (") + kPlotlyRelative +
        " above the segforge executable or the working directory); run `npm ci` in the repository, or pass --plotly PATH or set SEGFORGE_PLOTLY_JS";
  return {};
}

int run_report(const ReportOptions& o) {
  OutputSet outputs;
  outputs.input(o.model, "model");
  outputs.input(o.features, "--features");
  outputs.input(o.sweep, "--sweep");
  outputs.input(o.stability, "--stability");
  outputs.input(o.labels, "--labels");
  outputs.input(o.drift, "--drift");
  outputs.input(o.dbscan_eps, "--dbscan-eps");
  outputs.output(o.output, "-o", {".html", ".htm"});
  const Model model = read_model(o.model);
  const bool dbscan = model.is_dbscan();
  if (dbscan && !o.drift.empty())
    throw InputError("--drift " + o.drift + ": the model " + o.model + " is a DBSCAN model, which segforge drift does not take");
  if (!dbscan && !o.dbscan_eps.empty())
    throw InputError("--dbscan-eps " + o.dbscan_eps + ": the model " + o.model + " is not a DBSCAN model; leave it out");
  const Features f = load(o.features, o.common);
  const std::int64_t n = f.x.rows(), d = f.x.cols();
  const int k = static_cast<int>(model.centroids.rows());
  if (model.centroids.cols() != d)
    throw InputError(o.features + ": " + std::to_string(d) + " features, but the model " + o.model + " has " +
                     std::to_string(model.centroids.cols()) + "; pass the features the model was fitted on");
  if (!model.feature_names.empty() && model.feature_names != f.feature_names)
    throw InputError(o.features + ": its feature names differ from the model's (" + o.model +
                     "); pass the features the model was fitted on");
  // The report describes the model's segments on its training data: sizes, profiles and charts
  // of other records would be presented as the model's (issue 14.8). The model stores the
  // checksum of the file it was fitted on.
  const auto fitted = model.attributes.find("input_checksum");
  if (fitted != model.attributes.end() && !fitted->second.empty() && !f.checksum.empty() &&
      fitted->second != f.checksum) {
    const auto file = model.attributes.find("input_file");
    const std::string trained_on = file == model.attributes.end() ? "another file" : file->second;
    if (!o.allow_other_features)
      throw InputError("--features " + o.features + ": not the file the model " + o.model + " was fitted on (" +
                       trained_on + ", checksum " + fitted->second + "; this one's is " + f.checksum +
                       "); pass that file, or --allow-other-features to describe these records with the model");
    std::cerr << "segforge: warning: --features " << o.features << " is not the file the model was fitted on ("
              << trained_on << "); --allow-other-features\n";
  }
  std::optional<SweepResult> sweep;
  if (!o.sweep.empty()) sweep = sweep_from_json(read_json_file(o.sweep, "--sweep"), o.sweep);
  std::optional<StabilityResult> stability;
  if (!o.stability.empty()) stability = stability_from_json(read_json_file(o.stability, "--stability"), o.stability);

  std::optional<DriftResult> drift;
  if (!o.drift.empty()) {
    drift = drift_from_json(read_json_file(o.drift, "--drift"), o.drift);
    if (drift->n_clusters != k)
      throw InputError("--drift " + o.drift + ": made for K=" + std::to_string(drift->n_clusters) + ", the model " +
                       o.model + " has K=" + std::to_string(k) + "; run segforge drift with this model");
  }

  auto backend = open_backend(o.common);
  auto data = backend->upload(f.x.view());
  std::vector<std::int32_t> labels;
  if (!o.labels.empty()) {
    labels = read_labels(o.labels);
    if (dbscan) {  // DBSCAN's outliers are -1: shifted by one for the check
      for (auto& l : labels) l = l == std::numeric_limits<std::int32_t>::max() ? l : l + 1;
      const int max_k = validate_labels(labels, n, o.labels + " against " + where(f) + " (outliers -1)");
      for (auto& l : labels) --l;
      if (max_k > k + 1)
        throw InputError(o.labels + ": segment " + std::to_string(max_k - 2) + " but the model has K=" +
                         std::to_string(k) + "; pass the labels of this model");
    } else {
      const int max_k = validate_labels(labels, n, o.labels + " against " + where(f));
      if (max_k > k)
        throw InputError(o.labels + ": segment " + std::to_string(max_k - 1) + " but the model has K=" +
                         std::to_string(k) + "; pass the labels of this model");
    }
  } else if (dbscan) {
    auto core = backend->upload(model.dbscan_core_rows.view());
    labels = predict_dbscan(*backend, *data, *core, model.dbscan_core_labels, std::stod(model.attributes.at("eps"))).labels;
  } else if (model.is_hierarchy()) {
    labels = predict_by_leaves(*backend, *data, model.hierarchy_leaves.view(), model.hierarchy_leaf_labels,
                               model.centroids.view()).labels;
  } else {
    labels = predict(*backend, *data, model.centroids.view()).labels;
  }
  // DBSCAN's outliers become segment K of the report (its profile is their mean), shown as -1.
  std::int64_t n_noise = 0;
  Matrix<float> centres = model.centroids;
  if (dbscan) {
    for (auto& l : labels)
      if (l < 0) l = k, ++n_noise;
    if (n_noise > 0) {
      const LabelStats st = backend->label_stats(*data, labels, k + 1, MatrixView<const float>{});
      Matrix<float> with(k + 1, d);
      std::copy(model.centroids.data(), model.centroids.data() + k * d, with.data());
      for (std::int64_t j = 0; j < d; ++j)
        with(k, j) = static_cast<float>(st.sums[static_cast<std::size_t>(k * d + j)] / st.counts[static_cast<std::size_t>(k)]);
      centres = std::move(with);
    }
  }
  const int segments = static_cast<int>(centres.rows());
  if (stability && stability->n_clusters != k)
    throw InputError("--stability " + o.stability + ": made for K=" + std::to_string(stability->n_clusters) +
                     ", the model has K=" + std::to_string(k) + "; run segforge stability with -k " + std::to_string(k));

  ReportInput in;
  in.title = o.title;
  in.model_path = o.model;
  in.features_path = o.features;
  in.model_attributes = model.attributes;
  in.n_samples = n;
  in.feature_names = f.feature_names;
  in.profiles = segment_profiles(centres.view(), sizes_of(labels, segments), backend->column_stats(*data),
                                 model.scaler.empty() ? f.scaler : model.scaler);
  // The model's names and dictionary; the automatic ones where the model has none, from the
  // model's roles and audience (an older model's: the features file's, else inferred).
  const auto model_audience = model.attributes.find("audience");
  const Audience audience = resolve_audience(
      Audience::automatic, model_audience != model.attributes.end() ? model_audience->second : f.audience,
      f.feature_names);
  in.dictionary = name_segments(
      in.profiles, f.feature_names,
      feature_roles(f.feature_names, !model.feature_roles.empty() ? model.feature_roles : f.feature_roles), audience);
  if (segments > k) {  // the outliers: not named from their mean, which describes no group
    in.profiles[k].segment = -1;
    in.dictionary[k] = SegmentEntry{};
    in.dictionary[k].name = kOutliersName;
    in.dictionary[k].description = "Rows with no core row within eps (DBSCAN's noise): they belong to no dense group.";
    in.dictionary[k].outreach = "Review them one by one, or treat them with the general programme.";
  }
  for (int c = 0; c < k; ++c) {
    if (static_cast<int>(model.segment_names.size()) == k) in.dictionary[c].name = model.segment_names[c];
    if (static_cast<int>(model.segment_descriptions.size()) == k) in.dictionary[c].description = model.segment_descriptions[c];
    if (static_cast<int>(model.segment_outreach.size()) == k) in.dictionary[c].outreach = model.segment_outreach[c];
  }
  // Data sufficiency (src/refresh/match.cpp): shown at the top of the report; --strict refuses.
  std::vector<std::int64_t> guard_sizes;
  std::vector<std::string> guard_names;
  for (int c = 0; c < k; ++c) guard_sizes.push_back(in.profiles[c].size), guard_names.push_back(in.dictionary[c].name);
  for (const auto& w : sufficiency_warnings({n, history_days_attribute(inspect_features(f.path, f.dataset).attributes),
                                             guard_sizes, guard_names, o.min_segment_size})) {
    if (o.strict) throw InputError(where(f) + ": " + w + " (--strict)");
    in.notes.push_back("Data sufficiency: " + w + ".");
    std::cerr << "segforge: warning: " << w << "\n";
  }
  ReportViewParams vp;
  vp.scatter_rows = o.scatter_rows;
  vp.silhouette_rows = o.silhouette_rows;
  vp.seed = o.seed;
  if (dbscan) vp.silhouette_segments = k;
  in.views = report_views(*backend, *data, labels, centres.view(), vp);
  if (dbscan) {
    ReportDbscan db;
    db.eps = std::stod(model.attributes.at("eps"));
    db.min_samples = std::stod(model.attributes.at("min_samples"));
    db.n_noise = n_noise;
    if (!o.dbscan_eps.empty()) {
      db.curve = eps_curve_from_json(read_json_file(o.dbscan_eps, "--dbscan-eps"), o.dbscan_eps, &db.curve_min_samples);
    } else if (db.min_samples == std::floor(db.min_samples) && db.min_samples <= static_cast<double>(n)) {
      // The curve fit --eps auto reads, from the same sample (--seed).
      db.curve_min_samples = static_cast<int>(db.min_samples);
      db.curve = suggest_eps(*backend, *data, db.curve_min_samples, 2000, o.seed);
    }
    in.dbscan = std::move(db);
  }
  if (model.is_hierarchy() && !model.hierarchy_merges.empty())
    in.dendrogram = dendrogram_view(model.hierarchy_merges, model.hierarchy_leaf_labels, model.hierarchy_leaf_sizes, k);
  in.sweep = std::move(sweep);
  in.stability = std::move(stability);
  in.drift = std::move(drift);
  in.generated_by = std::string("segforge ") + SEGFORGE_VERSION;

  std::string why;
  const fs::path plotly = find_plotly(o.plotly, why);
  if (plotly.empty()) {
    in.notes.push_back("No charts: " + why + ". The tables below are complete.");
    std::cerr << "segforge: note: " << why << "; writing the report without charts\n";
  } else {
    in.plotly_js = read_text(plotly);
  }
  write_text_atomic(o.output, render_report_html(in));
  outputs.commit();
  std::fprintf(stderr, "wrote %s (%s)\n", o.output.c_str(),
               plotly.empty() ? "no charts" : ("charts by " + plotly.string()).c_str());
  return 0;
}

}  // namespace

Command add_report_command(CLI::App& parent) {
  auto options = std::make_shared<ReportOptions>();
  ReportOptions& o = *options;
  auto* cmd = parent.add_subcommand("report", "Write a self-contained report.html: choice of K, profiles, names, charts");
  cmd->add_option("model", o.model, "model.h5 (from segforge fit)")->required();
  cmd->add_option("--features", o.features, "the features.h5 the model was fitted on")->required();
  cmd->add_option("-o,--output", o.output, "report.html to write")->required();
  cmd->add_option("--labels", o.labels, "labels.h5 or segments.csv (default: assign with the model)");
  cmd->add_option("--sweep", o.sweep, "sweep.json from segforge sweep");
  cmd->add_option("--stability", o.stability, "stability.json from segforge stability");
  cmd->add_option("--dbscan-eps", o.dbscan_eps, "a DBSCAN model's k-distance curve (the -o of segforge dbscan-eps); without it the report computes one");
  cmd->add_option("--drift", o.drift, "drift.json from segforge drift: adds a \"What changed\" section");
  cmd->add_option("--plotly", o.plotly, "plotly.min.js to inline (default: node_modules/plotly.js-dist-min, or $SEGFORGE_PLOTLY_JS)");
  cmd->add_option("--title", o.title, "report title")->capture_default_str();
  cmd->add_option("--scatter-rows", o.scatter_rows, "points in the scatter plots")->capture_default_str();
  cmd->add_option("--silhouette-rows", o.silhouette_rows, "rows in the silhouette plot")->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of the samples")->capture_default_str();
  cmd->add_flag("--allow-other-features", o.allow_other_features,
                "describe a features file other than the one the model was fitted on (by default refused)");
  cmd->add_flag("--strict", o.strict, "data-sufficiency warnings (< 500 rows, < 2 years of history, small segments) are errors");
  cmd->add_option("--min-segment-size", o.min_segment_size, "warn below this many rows (0: 1% of N, at least 20, at most 1000)");
  add_common(cmd, o.common);
  return {cmd, [options] { return run_report(*options); }};
}

}  // namespace segforge::cli
