// segforge score: silhouette, Davies–Bouldin and Calinski–Harabasz of a labelling.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include "cli_common.hpp"
#include "segforge/outputs.hpp"
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

int run_score(const Common& c, const std::string& features, const std::string& labels_path,
              const std::string& silhouette, const std::string& metrics, std::uint64_t seed,
              const std::string& samples) {
  OutputSet outputs;
  outputs.input(features, "features");
  outputs.input(labels_path, "--labels");
  if (!metrics.empty()) outputs.output(metrics, "--metrics", {".json"});
  if (!samples.empty()) outputs.output(samples, "--samples", {".h5", ".hdf5"});
  const SilhouetteSpec spec = parse_silhouette(silhouette);
  Features f = load(features, c);
  if (parse_nan_policy(c.nan_policy) == NanPolicy::drop && output_rank())
    std::cerr << "segforge: note: --nan-policy drop with --labels assumes the labels were made without the dropped rows\n";
  const std::vector<std::int32_t> labels = read_labels(labels_path);
  const std::int64_t n = f.n_rows_total;  // all ranks' rows under MPI
  const int k = validate_labels(labels, n, labels_path + " against " + where(f));
  validate_label_count(labels, k, labels_path);
  auto backend = open_backend(c);
  auto data = open_data(*backend, f, c);
  ProgressLine line;
  Stopwatch t;
  SilhouetteResult per_sample;
  json s = scores(*backend, *data, labels, k, spec, seed, line, &per_sample);
  if (!samples.empty()) {
    if (per_sample.values.empty())
      throw InputError("--samples " + samples + ": no silhouette was computed; drop --silhouette none");
    std::vector<std::int32_t> scored_labels;
    if (per_sample.rows.empty()) scored_labels = labels;
    for (std::int64_t r : per_sample.rows) scored_labels.push_back(labels[r]);
    if (output_rank())
      write_silhouette_samples(samples, per_sample.values, per_sample.rows, scored_labels, f.ids);
  }
  if (output_rank()) print_scores(s);
  if (!metrics.empty()) {
    // Inertia of the labelling against its own cluster means (every rank: label_stats is
    // collective under MPI).
    const LabelStats st = backend->label_stats(*data, labels, k, {});
    Matrix<float> means(k, f.x.cols());
    for (int cl = 0; cl < k; ++cl)
      for (std::int64_t j = 0; j < f.x.cols(); ++j)
        means(cl, j) = st.counts[cl] > 0 ? static_cast<float>(st.sums[cl * f.x.cols() + j] / st.counts[cl]) : 0.0f;
    const LabelStats dist = backend->label_stats(*data, labels, k, means.view());
    double inertia = 0;
    for (double v : dist.sq_dist_sums) inertia += v;
    if (!output_rank()) return 0;
    json m = json_output("segforge-metrics");
    m["k"] = k;
    m["n_samples"] = n;
    m["n_features"] = f.x.cols();
    m["inertia"] = inertia;
    m["backend"] = backend->info().name;
    m["device"] = backend->info().device;
    m["sizes"] = sizes_of(labels, k);
    for (auto& [key, value] : s.items()) m[key] = value;
    m["timings"] = {{"metrics", t.seconds()}};
    write_text_atomic(metrics, m.dump(2) + "\n");
  }
  if (output_rank()) outputs.commit();
  return 0;
}

struct ScoreOptions {
  Common common;
  std::string features, labels, silhouette = "auto", metrics, samples;
  std::uint64_t seed = 0;
};

}  // namespace

Command add_score_command(CLI::App& parent) {
  auto options = std::make_shared<ScoreOptions>();
  ScoreOptions& o = *options;
  auto* cmd = parent.add_subcommand("score", "Silhouette, Davies-Bouldin and Calinski-Harabasz of a labelling");
  cmd->add_option("features", o.features, "features.h5")->required();
  cmd->add_option("--labels", o.labels, "labels.h5 or segments.csv")->required();
  cmd->add_option("--silhouette", o.silhouette, "auto|exact|sample=N|none")->capture_default_str();
  cmd->add_option("--metrics", o.metrics, "metrics.json to write");
  cmd->add_option("--samples", o.samples, "per-sample silhouette values (HDF5) to write");
  cmd->add_option("--seed", o.seed, "seed for the silhouette sample")->capture_default_str();
  add_common(cmd, o.common);
  add_sample_weight(cmd, o.common);
  return {cmd, [options] {
    const ScoreOptions& o = *options;
    return run_score(o.common, o.features, o.labels, o.silhouette, o.metrics, o.seed, o.samples);
  }};
}

}  // namespace segforge::cli
