// segforge fit: K-Means on a feature matrix; writes the model, labels and metrics.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <numeric>

#include "checkpoint_options.hpp"
#include "cli_common.hpp"
#include "segforge/number_format.hpp"
#include "segforge/agglomerative.hpp"
#include "segforge/birch.hpp"
#include "segforge/dbscan.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/metrics.hpp"
#include "segforge/outputs.hpp"
#include "segforge/refresh.hpp"
#include "segforge/segments.hpp"
#include "segforge/select.hpp"
#include "segforge/validate.hpp"

#ifndef SEGFORGE_VERSION
#define SEGFORGE_VERSION "0.1.0"
#endif

namespace segforge::cli {
namespace {

constexpr int kUnset = std::numeric_limits<int>::min();

struct FitOptions {
  Common common;
  std::string features, model, labels, metrics;
  int k = kUnset;  // required for K-Means; DBSCAN finds K
  std::string algorithm = "lloyd";
  std::string init = "k-means++";
  int n_init = 3;
  int max_iter = kUnset;  // unset: 300 for Lloyd, 100 (passes) for mini-batch
  double tol = std::numeric_limits<double>::quiet_NaN();  // NaN: 1e-4 for Lloyd, 0 for mini-batch
  int batch_size = 1024;
  std::uint64_t seed = 0;
  double oversampling_factor = 2.0;
  std::string refine = "auto";
  int swap_trials = 0;
  int max_no_improvement = 10;
  double reassignment_ratio = 0.01;
  std::string continue_from;
  std::string silhouette = "auto";
  std::string names;       // names.json overrides
  std::string dictionary;  // segment dictionary (default: beside the model, <model>.segments.json)
  std::int64_t min_segment_size = 0;
  bool strict = false;  // data-sufficiency warnings are errors
  std::vector<std::string> roles;  // --role COLUMN=ROLE
  std::string audience = "auto";
  CheckpointOptions checkpoint;
  std::string eps = "auto";      // DBSCAN: a distance, or auto (the knee of the k-distance curve)
  double min_samples = 5.0;      // DBSCAN
  std::int64_t eps_sample = 2000;  // DBSCAN --eps auto: rows of the k-distance curve
  std::string linkage = "ward";    // agglomerative
  double distance_threshold = std::numeric_limits<double>::quiet_NaN();  // agglomerative: cut by height
  std::string strategy = "auto";   // agglomerative: auto|exact|two-stage
  std::int64_t micro_clusters = 2000;  // agglomerative two-stage: K-Means micro-clusters M
  std::int64_t exact_max_rows = 20000;  // agglomerative auto: exact tree up to this many rows
  double threshold = 0.5;          // BIRCH
  int branching_factor = 50;       // BIRCH
  std::string global = "ward";     // BIRCH: the global step, ward|kmeans
  std::int64_t max_subclusters = 10000;  // BIRCH: rebuild with a larger threshold beyond this
};

/// What a fit's result depends on, as "key=value" words: a checkpoint records it and a resume
/// must match it. Doubles in hex-float text, so they compare exactly.
std::string fit_settings(const FitOptions& o, const Features& f, int max_iter, double tol) {
  std::string s = "algorithm=" + o.algorithm + " k=" + std::to_string(o.k) + " init=" + o.init +
                  " n_init=" + std::to_string(o.n_init) + " max_iter=" + std::to_string(max_iter) +
                  " tol=" + hex_float(tol) + " seed=" + std::to_string(o.seed) +
                  " oversampling_factor=" + hex_float(o.oversampling_factor);
  if (o.algorithm == "lloyd")
    s += " refine=" + o.refine + " swap_trials=" + std::to_string(o.swap_trials);
  else
    s += " batch_size=" + std::to_string(o.batch_size) + " max_no_improvement=" +
         std::to_string(o.max_no_improvement) + " reassignment_ratio=" + hex_float(o.reassignment_ratio) +
         " continue_from=" + (o.continue_from.empty() ? "-" : o.continue_from);
  s += " data=" + f.checksum + " n_samples=" + std::to_string(f.n_rows_total);
  return s;
}

/// model.h5 → model.segments.json
std::string dictionary_path(const std::string& model) {
  std::string base = model;
  for (const char* ext : {".h5", ".hdf5"})
    if (base.ends_with(ext)) base.resize(base.size() - std::string(ext).size());
  return base + ".segments.json";
}

/// Applies `--names names.json`: an array (one entry per segment, in order) or an object keyed
/// by segment number ("0", "1", ...) or by the automatic name; each value a name or an object
/// with any of name, description, outreach.
void apply_name_overrides(const std::string& path, std::vector<SegmentEntry>& entries) {
  json j = read_json_file(path, "--names");
  const int k = static_cast<int>(entries.size());
  // The segment dictionary fit writes ({"format": "segforge-segments", "segments": [...]}):
  // its entries' name, description and outreach, keyed by their "segment" number.
  if (j.is_object() && j.contains("format") && j["format"] == "segforge-segments") {
    if (!j.contains("segments") || !j["segments"].is_array())
      throw InputError("--names " + path + ": a segment dictionary without a 'segments' array; pass the file segforge fit wrote");
    json by_segment = json::object();
    for (const auto& e : j["segments"]) {
      if (!e.is_object() || !e.contains("segment") || !e["segment"].is_number_integer())
        throw InputError("--names " + path + ": a 'segments' entry without an integer 'segment'; pass the file segforge fit wrote");
      json fields = json::object();
      for (const char* field : {"name", "description", "outreach"})
        if (e.contains(field)) fields[field] = e[field];
      by_segment[std::to_string(e["segment"].get<std::int64_t>())] = fields;
    }
    if (static_cast<int>(by_segment.size()) != k)
      throw InputError("--names " + path + ": a dictionary of " + std::to_string(by_segment.size()) + " segments for " +
                       std::to_string(k) + "; fit with the dictionary's K, or edit it to one entry per segment");
    j = std::move(by_segment);
  }
  const std::vector<SegmentEntry> automatic = entries;
  auto apply = [&](int segment, const json& value, const std::string& key) {
    SegmentEntry& e = entries[static_cast<std::size_t>(segment)];
    if (value.is_string()) {
      e.name = value.get<std::string>();
    } else if (value.is_object()) {
      for (const auto& [field, v] : value.items()) {
        if (!v.is_string())
          throw InputError("--names " + path + ": segment " + key + ", '" + field + "' is not a string");
        if (field == "name") e.name = v.get<std::string>();
        else if (field == "description") e.description = v.get<std::string>();
        else if (field == "outreach") e.outreach = v.get<std::string>();
        else
          throw InputError("--names " + path + ": segment " + key + ": unknown field '" + field +
                           "'; use name, description or outreach");
      }
    } else {
      throw InputError("--names " + path + ": segment " + key +
                       ": expected a name or an object with name, description, outreach");
    }
    if (e.name.empty()) throw InputError("--names " + path + ": segment " + key + ": empty name");
  };
  if (j.is_array()) {
    if (static_cast<int>(j.size()) != k)
      throw InputError("--names " + path + ": " + std::to_string(j.size()) + " entries for " + std::to_string(k) +
                       " segments; give one per segment, or an object keyed by segment number");
    for (int c = 0; c < k; ++c) apply(c, j[static_cast<std::size_t>(c)], std::to_string(c));
  } else if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      int segment = -1;
      std::size_t used = 0;
      try {
        segment = std::stoi(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != key.size() || key.empty()) {
        segment = -1;
        for (int c = 0; c < k; ++c)
          if (automatic[static_cast<std::size_t>(c)].name == key) segment = c;
      }
      if (segment < 0 || segment >= k)
        throw InputError("--names " + path + ": no segment '" + key + "'; use a segment number 0.." +
                         std::to_string(k - 1) + " or an automatic name");
      apply(segment, value, key);
    }
  } else {
    throw InputError("--names " + path + ": expected a JSON array or object of segment names");
  }
  for (int a = 0; a < k; ++a)
    for (int b = a + 1; b < k; ++b)
      if (entries[a].name == entries[b].name)
        throw InputError("--names " + path + ": segments " + std::to_string(a) + " and " + std::to_string(b) +
                         " are both named '" + entries[a].name + "'; names must be unique within a model");
}

/// The outputs every fit writes (model, labels, metrics, dictionary), declared on `outputs`;
/// returns the dictionary's path.
std::string declare_fit_outputs(OutputSet& outputs, const FitOptions& o) {
  outputs.output(o.model, "-o", {".h5", ".hdf5"});
  if (!o.labels.empty()) outputs.output(o.labels, "--labels", {".h5", ".csv"});
  if (!o.metrics.empty()) outputs.output(o.metrics, "--metrics", {".json"});
  const std::string dictionary = o.dictionary.empty() ? dictionary_path(o.model) : o.dictionary;
  outputs.output(dictionary, "--dictionary", {".json"});
  return dictionary;
}

/// The roles and audience the names speak of: the features file's (inferred from the names for
/// a file without /feature_roles), then --role and --audience; checked before the fit.
struct Naming {
  std::vector<FeatureRole> roles;
  Audience audience;
};
Naming naming_of(const FitOptions& o, const Features& f) {
  std::vector<FeatureRole> roles = feature_roles(f.feature_names, f.feature_roles);
  apply_role_settings(o.roles, f.feature_names, roles);  // --role COLUMN=ROLE
  return {std::move(roles), resolve_audience(*parse_audience(o.audience), f.audience, f.feature_names)};
}

/// What a fit says about its segments: profiles against the data's column statistics, the
/// automatic names with --names applied, and the data-sufficiency guards (src/refresh/match.cpp:
/// few rows, under two years of history, small segments; --strict makes them errors).
struct Description {
  std::vector<SegmentProfile> profiles;
  std::vector<SegmentEntry> entries;
  std::vector<std::string> names;
  std::vector<std::string> warnings;
};
Description describe_segments(const FitOptions& o, Backend& backend, const Dataset& data, const Features& f,
                              const Naming& naming, MatrixView<const float> centroids,
                              const std::vector<std::int64_t>& sizes) {
  Description out;
  out.profiles = segment_profiles(centroids, sizes, backend.column_stats(data), f.scaler);
  out.entries = name_segments(out.profiles, f.feature_names, naming.roles, naming.audience);
  if (!o.names.empty()) apply_name_overrides(o.names, out.entries);
  for (const auto& e : out.entries) out.names.push_back(e.name);
  out.warnings = sufficiency_warnings({f.n_rows_total, history_days_attribute(inspect_features(f.path, f.dataset).attributes),
                                       sizes, out.names, o.min_segment_size});
  if (o.strict && !out.warnings.empty()) throw InputError(where(f) + ": " + out.warnings.front() + " (--strict)");
  return out;
}

/// One line per segment on stderr: number, name, rows, share of all rows, and the features that
/// most set it apart, in original units.
void print_segments(const std::vector<SegmentProfile>& profiles, const std::vector<std::string>& names,
                    const std::vector<std::int64_t>& sizes, std::int64_t n, const std::vector<std::string>& feature_names) {
  for (std::size_t c = 0; c < profiles.size(); ++c) {
    const SegmentProfile& p = profiles[c];
    std::fprintf(stderr, "  %zu  %-40s %10lld rows (%5.1f%%) ", c, names[c].c_str(), static_cast<long long>(sizes[c]),
                 100.0 * static_cast<double>(sizes[c]) / static_cast<double>(n));
    for (int j : p.top_features)
      std::fprintf(stderr, " %s %s (z %+.2f)", feature_names[j].c_str(), analyst_number(p.centre_original[j]).c_str(), p.z_scores[j]);
    std::fprintf(stderr, "\n");
  }
}

/// The metrics.json fields of every method: shape, backend, segments, profiles and scores.
json segment_metrics(int k, std::int64_t n, std::int64_t d, const std::string& algorithm, const BackendInfo& info,
                     const std::vector<std::int64_t>& sizes, const std::vector<std::string>& names, json profiles,
                     const json& scores) {
  json m = json_output("segforge-metrics");
  m["k"] = k;
  m["n_samples"] = n;
  m["n_features"] = d;
  m["algorithm"] = algorithm;
  m["backend"] = info.name;
  m["device"] = info.device;
  m["sizes"] = sizes;
  m["segment_names"] = names;
  m["profiles"] = std::move(profiles);
  for (const auto& [key, value] : scores.items()) m[key] = value;
  return m;
}

/// segforge fit --algorithm dbscan: the same outputs as K-Means (model, labels or segments.csv,
/// dictionary, metrics), clusters numbered as scikit-learn numbers them, noise as the segment -1
/// "Outliers"; the model keeps the core rows for predict and each cluster's mean as its centre.
int run_fit_dbscan(const FitOptions& o) {
  Stopwatch total;
  if (o.k != kUnset)
    throw InputError("-k " + std::to_string(o.k) + ": DBSCAN finds the number of segments itself; leave out -k and set "
                     "--eps and --min-samples");
  if (!o.checkpoint.path.empty() || !o.checkpoint.resume.empty() || !o.continue_from.empty() || o.init != "k-means++")
    throw InputError("--checkpoint, --resume, --continue-from and --init are K-Means options; DBSCAN takes --eps and --min-samples");
  OutputSet outputs;
  outputs.input(o.features, "features");
  outputs.input(o.names, "--names");
  const std::string dictionary = declare_fit_outputs(outputs, o);
  const SilhouetteSpec silhouette = parse_silhouette(o.silhouette);
  DbscanParams p;
  p.min_samples = o.min_samples;
  const bool auto_eps = o.eps == "auto";
  if (!auto_eps) {
    std::size_t used = 0;
    try {
      p.eps = std::stod(o.eps, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != o.eps.size())
      throw InputError("--eps " + o.eps + ": not a number; pass a distance in the features' units, or auto");
  }
  validate(DbscanParams{auto_eps ? 1.0 : p.eps, p.min_samples}, "--eps/--min-samples");
  if (o.eps_sample < 10) throw InputError("--eps-sample " + std::to_string(o.eps_sample) + ": use at least 10 rows");
  auto backend = open_backend(o.common);

  Stopwatch read_time;
  Features f = load(o.features, o.common);
  const double read_seconds = read_time.seconds();
  const std::int64_t n = f.n_rows_total, d = f.x.cols();
  if (f.disk_rows > 0 || f.x.rows() != n)
    throw InputError(where(f) + ": DBSCAN compares rows in any order and runs in one process with every row in memory; "
                     "raise --memory-budget, and run it without mpirun");
  const Naming naming = naming_of(o, f);
  auto data = open_data(*backend, f, o.common);

  Stopwatch fit_time;
  if (auto_eps) {
    if (p.min_samples != std::floor(p.min_samples))
      throw InputError("--min-samples " + std::to_string(p.min_samples) + ": --eps auto needs a whole number of rows");
    const EpsSuggestion s = suggest_eps(*backend, *data, static_cast<int>(p.min_samples), o.eps_sample, o.seed);
    p.eps = s.eps;
    std::fprintf(stderr, "eps auto: %s (%s of the %zu-row k-distance curve, k = min_samples = %s; segforge fit --eps E to set it)\n",
                 analyst_number(p.eps).c_str(), s.knee_found ? "the knee" : "no knee: the 90th percentile", s.curve.size(),
                 analyst_number(p.min_samples).c_str());
  }
  const DbscanResult r = fit_dbscan(*backend, *data, p);
  const double fit_seconds = fit_time.seconds();
  if (r.n_clusters == 0)
    throw InputError(where(f) + ": every row is noise at eps " + analyst_number(p.eps) + " with min_samples " +
                     analyst_number(p.min_samples) + "; raise --eps or lower --min-samples (--eps auto takes eps from the data)");
  const int k = r.n_clusters;

  // Each cluster's mean (noise rows go to an extra label that is left out) and its sum of squares.
  std::vector<std::int32_t> with_noise = r.labels;
  for (auto& l : with_noise)
    if (l < 0) l = k;
  const LabelStats means = backend->label_stats(*data, with_noise, k + 1, MatrixView<const float>{});
  Matrix<float> centroids(k + 1, d);
  for (int c = 0; c < k; ++c)
    for (std::int64_t j = 0; j < d; ++j)
      centroids(c, j) = static_cast<float>(means.sums[static_cast<std::size_t>(c * d + j)] / means.counts[static_cast<std::size_t>(c)]);
  const LabelStats spread = backend->label_stats(*data, with_noise, k + 1, centroids.view());
  double inertia = 0.0;
  for (int c = 0; c < k; ++c) inertia += spread.sq_dist_sums[static_cast<std::size_t>(c)];
  centroids = Matrix<float>(k, d, std::vector<float>(centroids.data(), centroids.data() + k * d));
  const std::vector<std::int64_t> sizes = sizes_of(r.labels, k);  // noise is in none

  Description described = describe_segments(o, *backend, *data, f, naming, centroids.view(), sizes);
  const std::vector<SegmentProfile>& profiles = described.profiles;
  const std::vector<SegmentEntry>& entries = described.entries;
  const std::vector<std::string>& names = described.names;
  std::vector<std::string>& warnings = described.warnings;
  // Schubert et al. 2017's red flags: most rows noise (eps too small), or one cluster holding
  // nearly everything (eps too large).
  const double noise_share = static_cast<double>(r.n_noise) / static_cast<double>(n);
  if (noise_share > 0.5)
    warnings.push_back(analyst_number(100.0 * noise_share) + "% of the rows are outliers (noise): eps " + analyst_number(p.eps) +
                       " is probably too small for min_samples " + analyst_number(p.min_samples));
  if (k == 1 && r.n_noise < n / 100)
    warnings.push_back("one segment holds " + analyst_number(100.0 - 100.0 * noise_share) +
                       "% of the rows: eps " + analyst_number(p.eps) + " is probably too large");

  const BackendInfo info = backend->info();
  Model model;
  model.centroids = centroids;
  model.feature_names = f.feature_names;
  model.feature_roles = feature_role_names(naming.roles);
  model.scaler = f.scaler;
  set_segments(model, profiles, entries, sizes);
  std::vector<std::int64_t> core_rows;
  for (std::int64_t i = 0; i < n; ++i)
    if (r.core[static_cast<std::size_t>(i)]) {
      core_rows.push_back(i);
      model.dbscan_core_labels.push_back(r.labels[static_cast<std::size_t>(i)]);
    }
  model.dbscan_core_rows = backend->gather(*data, core_rows);
  model.attributes = fit_attributes({"dbscan", "-", k, 1, r.rounds, o.seed, true, inertia}, info, f, naming.audience);
  char eps_text[64];
  std::snprintf(eps_text, sizeof eps_text, "%.17g", p.eps);
  model.attributes["eps"] = eps_text;
  model.attributes["min_samples"] = analyst_number(p.min_samples);
  model.attributes["n_noise"] = std::to_string(r.n_noise);

  Assignment assignment;
  assignment.labels = r.labels;
  assignment.sq_distances.resize(r.distances.size());
  for (std::size_t i = 0; i < r.distances.size(); ++i) assignment.sq_distances[i] = r.distances[i] * r.distances[i];
  ProgressLine line;
  Stopwatch metric_time;
  json s;
  if (!o.metrics.empty()) {  // scores of the clustered rows (noise left out)
    std::vector<std::int64_t> kept;
    std::vector<std::int32_t> kept_labels;
    for (std::int64_t i = 0; i < n; ++i)
      if (r.labels[static_cast<std::size_t>(i)] >= 0) kept.push_back(i), kept_labels.push_back(r.labels[static_cast<std::size_t>(i)]);
    const Matrix<float> rows = backend->gather(*data, kept);
    auto clustered = backend->upload(rows.view());
    s = scores(*backend, *clustered, kept_labels, k, silhouette, o.seed, line);
  }
  const double metric_seconds = metric_time.seconds();

  write_model(o.model, model);
  if (!o.labels.empty()) write_labels(o.labels, assignment, f.ids, names);
  write_segment_dictionary(dictionary, o.model, n, profiles, f.feature_names, entries);
  std::fprintf(stderr, "dbscan eps %s, min_samples %s on %lld x %lld (%s): %d segments, %lld core, %lld border, %lld outliers (%s%%)\n",
               analyst_number(p.eps).c_str(), analyst_number(p.min_samples).c_str(), static_cast<long long>(n),
               static_cast<long long>(d), info.name.c_str(), k, static_cast<long long>(r.n_core),
               static_cast<long long>(r.n_border), static_cast<long long>(r.n_noise), analyst_number(100.0 * noise_share).c_str());
  print_segments(profiles, names, sizes, n, f.feature_names);
  std::fprintf(stderr, " -1  %-40s %10lld rows (%5.1f%%)  no core row within eps\n", kOutliersName,
               static_cast<long long>(r.n_noise), 100.0 * noise_share);
  for (const auto& w : warnings) std::fprintf(stderr, "segforge: warning: %s\n", w.c_str());
  std::fprintf(stderr, "segment dictionary: %s\n", dictionary.c_str());
  if (!o.metrics.empty()) {
    json m = segment_metrics(k, n, d, "dbscan", info, sizes, names, profiles_json(profiles, f.feature_names, entries), s);
    m["eps"] = p.eps;
    m["eps_auto"] = auto_eps;
    m["min_samples"] = p.min_samples;
    m["n_core"] = r.n_core;
    m["n_border"] = r.n_border;
    m["n_noise"] = r.n_noise;
    m["noise_share"] = noise_share;
    m["inertia"] = inertia;
    m["n_iter"] = r.rounds;
    m["scores_over"] = "clustered rows (outliers left out)";
    m["grid"] = {{"columns", r.grid_columns}, {"cells", r.n_blocks}, {"cell_pairs", r.n_block_pairs}};
    m["peak_rss_bytes"] = peak_rss_bytes();
    m["timings"] = {{"read", read_seconds},
                    {"neighbours", r.neighbour_seconds},
                    {"components", r.component_seconds},
                    {"borders", r.border_seconds},
                    {"fit", fit_seconds},
                    {"metrics", metric_seconds},
                    {"total", total.seconds()}};
    write_text_atomic(o.metrics, m.dump(2) + "\n");
  }
  outputs.commit();
  if (!o.metrics.empty()) print_scores(s);
  return 0;
}

/// A model's /hierarchy from a tree over leaves (agglomerative; BIRCH's subclusters too).
void set_hierarchy(Model& model, Matrix<float> leaves, std::vector<std::int32_t> leaf_labels, std::vector<double> leaf_sizes,
                   const LinkageTree& tree) {
  model.hierarchy_leaves = std::move(leaves);
  model.hierarchy_leaf_labels = std::move(leaf_labels);
  model.hierarchy_leaf_sizes = std::move(leaf_sizes);
  model.hierarchy_merges = Matrix<double>(static_cast<std::int64_t>(tree.merges.size()), 4);
  for (std::size_t i = 0; i < tree.merges.size(); ++i) {
    const Merge& m = tree.merges[i];
    const auto r = static_cast<std::int64_t>(i);
    model.hierarchy_merges(r, 0) = static_cast<double>(m.a);
    model.hierarchy_merges(r, 1) = static_cast<double>(m.b);
    model.hierarchy_merges(r, 2) = m.height;
    model.hierarchy_merges(r, 3) = m.size;
  }
}

/// segforge fit --algorithm agglomerative: the tree (exact, or two-stage above --exact-max-rows
/// for Ward), cut by -k or --distance-threshold; the same outputs as K-Means; the model keeps the
/// tree's leaves and merges (predict: the segment of the nearest leaf; the report's dendrogram).
int run_fit_agglomerative(const FitOptions& o) {
  Stopwatch total;
  const bool by_height = !std::isnan(o.distance_threshold);
  if (o.k == kUnset && !by_height)
    throw InputError("agglomerative: pass -k K (cut the tree into K segments) or --distance-threshold H (cut it at height H)");
  if (o.k != kUnset && by_height) throw InputError("-k and --distance-threshold: cut the tree by one of them, not both");
  if (!o.checkpoint.path.empty() || !o.checkpoint.resume.empty() || !o.continue_from.empty() || o.init != "k-means++")
    throw InputError("--checkpoint, --resume, --continue-from and --init are K-Means options; agglomerative clustering takes "
                     "--linkage, -k or --distance-threshold, --strategy and --micro-clusters");
  OutputSet outputs;
  outputs.input(o.features, "features");
  outputs.input(o.names, "--names");
  const std::string dictionary = declare_fit_outputs(outputs, o);
  const SilhouetteSpec silhouette = parse_silhouette(o.silhouette);
  AgglomerativeParams p;
  p.linkage = parse_linkage(o.linkage);
  if (by_height) p.distance_threshold = o.distance_threshold;
  else p.n_clusters = o.k;
  if (o.strategy == "auto") p.strategy = AgglomerativeStrategy::auto_select;
  else if (o.strategy == "exact") p.strategy = AgglomerativeStrategy::exact;
  else if (o.strategy == "two-stage") p.strategy = AgglomerativeStrategy::two_stage;
  else throw InputError("--strategy " + o.strategy + ": use auto, exact or two-stage");
  p.n_micro_clusters = o.micro_clusters;
  p.exact_max_samples = o.exact_max_rows;
  p.seed = o.seed;
  auto backend = open_backend(o.common);

  Stopwatch read_time;
  Features f = load(o.features, o.common);
  const double read_seconds = read_time.seconds();
  const std::int64_t n = f.n_rows_total, d = f.x.cols();
  if (f.disk_rows > 0 || f.x.rows() != n)
    throw InputError(where(f) + ": agglomerative clustering runs in one process with every row in memory; raise "
                     "--memory-budget, and run it without mpirun");
  validate(p, n, where(f));
  const Naming naming = naming_of(o, f);
  auto data = open_data(*backend, f, o.common);

  Stopwatch fit_time;
  const AgglomerativeResult r = fit_agglomerative(*backend, *data, p);
  const double fit_seconds = fit_time.seconds();
  const int k = r.n_clusters;
  const std::vector<std::int64_t> sizes = sizes_of(r.labels, k);
  const LabelStats spread = backend->label_stats(*data, r.labels, k, r.centroids.view());
  double inertia = 0.0;
  for (double v : spread.sq_dist_sums) inertia += v;

  Description described = describe_segments(o, *backend, *data, f, naming, r.centroids.view(), sizes);
  const std::vector<SegmentProfile>& profiles = described.profiles;
  const std::vector<SegmentEntry>& entries = described.entries;
  const std::vector<std::string>& names = described.names;

  const BackendInfo info = backend->info();
  Model model;
  model.centroids = r.centroids;
  model.feature_names = f.feature_names;
  model.feature_roles = feature_role_names(naming.roles);
  model.scaler = f.scaler;
  set_segments(model, profiles, entries, sizes);
  if (r.two_stage) {
    set_hierarchy(model, r.micro_centres, r.leaf_labels, r.micro_sizes, r.tree);
  } else {
    std::vector<std::int64_t> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), std::int64_t{0});
    std::vector<double> leaf_sizes(static_cast<std::size_t>(n), 1.0);  // the rows' weights
    const std::vector<float> weights = load_sample_weights(f, o.common);
    if (!weights.empty()) leaf_sizes.assign(weights.begin(), weights.end());
    set_hierarchy(model, backend->gather(*data, all), r.leaf_labels, std::move(leaf_sizes), r.tree);
  }
  model.attributes = fit_attributes({"agglomerative", "-", k, 1, 0, o.seed, true, inertia}, info, f, naming.audience);
  model.attributes["linkage"] = linkage_name(p.linkage);
  model.attributes["strategy"] = r.two_stage ? "two-stage" : "exact";
  model.attributes["n_leaves"] = std::to_string(model.hierarchy_leaves.rows());
  if (by_height) {
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", o.distance_threshold);
    model.attributes["distance_threshold"] = text;
  }

  Assignment assignment;
  assignment.labels = r.labels;
  for (float v : distances_to_own_centroid(*backend, *data, r.labels, r.centroids.view()))
    assignment.sq_distances.push_back(v * v);
  ProgressLine line;
  Stopwatch metric_time;
  json s;
  if (!o.metrics.empty()) s = scores(*backend, *data, r.labels, k, silhouette, o.seed, line);
  const double metric_seconds = metric_time.seconds();

  write_model(o.model, model);
  if (!o.labels.empty()) write_labels(o.labels, assignment, f.ids, names);
  write_segment_dictionary(dictionary, o.model, n, profiles, f.feature_names, entries);
  std::fprintf(stderr, "agglomerative (%s linkage, %s) on %lld x %lld (%s): %d segments%s\n", linkage_name(p.linkage).c_str(),
               r.two_stage ? ("two-stage: " + std::to_string(model.hierarchy_leaves.rows()) + " K-Means micro-clusters, then Ward").c_str()
                           : "exact tree",
               static_cast<long long>(n), static_cast<long long>(d), info.name.c_str(), k,
               by_height ? (" at height " + analyst_number(o.distance_threshold)).c_str() : "");
  print_segments(profiles, names, sizes, n, f.feature_names);
  for (const auto& w : described.warnings) std::fprintf(stderr, "segforge: warning: %s\n", w.c_str());
  std::fprintf(stderr, "segment dictionary: %s\n", dictionary.c_str());
  if (!o.metrics.empty()) {
    json m = segment_metrics(k, n, d, "agglomerative", info, sizes, names, profiles_json(profiles, f.feature_names, entries), s);
    m["linkage"] = linkage_name(p.linkage);
    m["strategy"] = r.two_stage ? "two-stage" : "exact";
    m["n_leaves"] = model.hierarchy_leaves.rows();
    if (by_height) m["distance_threshold"] = o.distance_threshold;
    m["inertia"] = inertia;
    if (r.two_stage) m["micro_clusters"] = {{"inertia", r.micro_inertia}, {"n_iter", r.micro_n_iter}};
    m["peak_rss_bytes"] = peak_rss_bytes();
    m["timings"] = {{"read", read_seconds},         {"micro_clusters", r.micro_seconds}, {"linkage", r.linkage_seconds},
                    {"fit", fit_seconds},           {"metrics", metric_seconds},        {"total", total.seconds()}};
    write_text_atomic(o.metrics, m.dump(2) + "\n");
  }
  outputs.commit();
  if (!o.metrics.empty()) print_scores(s);
  return 0;
}

/// segforge fit --algorithm birch: the CF-tree (continued from --continue-from's when given),
/// the global step into -k segments, every row labelled by its nearest subcluster; the model
/// keeps the subclusters as the leaves of /hierarchy (with Ward's merges) and the tree (/birch).
int run_fit_birch(const FitOptions& o) {
  Stopwatch total;
  if (o.k == kUnset)
    throw InputError("birch: pass -k K, the segments the global step makes of the subclusters");
  if (!o.checkpoint.path.empty() || !o.checkpoint.resume.empty() || o.init != "k-means++")
    throw InputError("--checkpoint, --resume and --init are K-Means options; BIRCH takes --threshold, --branching-factor, "
                     "-k, --global, --max-subclusters and --continue-from");
  OutputSet outputs;
  outputs.input(o.features, "features");
  outputs.input(o.names, "--names");
  outputs.input(o.continue_from, "--continue-from");
  const std::string dictionary = declare_fit_outputs(outputs, o);
  const SilhouetteSpec silhouette = parse_silhouette(o.silhouette);
  BirchParams p;
  p.threshold = o.threshold;
  p.branching_factor = o.branching_factor;
  p.n_clusters = o.k;
  p.global = parse_birch_global(o.global);
  p.max_subclusters = o.max_subclusters;
  p.seed = o.seed;
  validate(p, "--threshold/--branching-factor/-k/--max-subclusters");
  if (o.k < 1) throw InputError("-k " + std::to_string(o.k) + ": BIRCH's global step needs at least one segment");
  BirchState state = make_birch_state(p);
  std::optional<Model> previous;
  if (!o.continue_from.empty()) {
    previous = read_model(o.continue_from);
    if (!previous->birch)
      throw InputError("--continue-from " + o.continue_from + ": not a BIRCH model (no /birch tree); continue from the -o of "
                       "segforge fit --algorithm birch");
    validate(*previous->birch, o.continue_from);
    state = *previous->birch;
  }
  auto backend = open_backend(o.common);

  Stopwatch read_time;
  Features f = load(o.features, o.common);
  const double read_seconds = read_time.seconds();
  const std::int64_t n = f.n_rows_total, d = f.x.cols();
  if (f.disk_rows > 0 || f.x.rows() != n)
    throw InputError(where(f) + ": BIRCH runs in one process with every row in memory; raise --memory-budget, and run it "
                     "without mpirun");
  if (previous) {
    if (previous->centroids.cols() != d || (!previous->feature_names.empty() && previous->feature_names != f.feature_names))
      throw InputError(where(f) + ": its features differ from those of --continue-from " + o.continue_from +
                       "; continue on data prepared like that model's (segforge-prep --scaler-from)");
    const std::string difference =
        previous->scaler.empty() || f.scaler.empty() ? std::string() : scaler_difference(f.scaler, previous->scaler, f.feature_names, "the model");
    if (!difference.empty())
      throw InputError(where(f) + ": scaled otherwise than the data of --continue-from " + o.continue_from + " (" + difference +
                       "); prepare it with segforge-prep --scaler-from that model's training features");
    if (o.threshold != state.initial_threshold || o.branching_factor != state.branching_factor)
      std::fprintf(stderr, "segforge: note: continuing %s's tree with its threshold %s and branching factor %d\n",
                   o.continue_from.c_str(), analyst_number(state.threshold).c_str(), state.branching_factor);
  }
  const Naming naming = naming_of(o, f);
  const std::vector<float> weights = load_sample_weights(f, o.common);
  auto data = open_data(*backend, f, o.common);

  Stopwatch fit_time;
  const std::int64_t rows_before = state.n_rows_seen;
  Stopwatch insert_time;
  partial_fit_birch(*backend, state, *data, weights);
  const double insert_seconds = insert_time.seconds();
  Stopwatch global_time;
  if (state.n_subclusters < o.k)
    throw InputError(where(f) + ": the tree has " + std::to_string(state.n_subclusters) + " subclusters, fewer than -k " +
                     std::to_string(o.k) + "; lower --threshold or -k");
  const BirchSegments segments = birch_global_step(*backend, state, p);
  const double global_seconds = global_time.seconds();
  const Matrix<double> centres = birch_subcluster_centroids(state);
  Matrix<float> leaves(centres.rows(), d);
  for (std::int64_t i = 0; i < centres.size(); ++i) leaves.data()[i] = static_cast<float>(centres.data()[i]);
  // Every row (of this file) by its nearest subcluster, as predict labels rows.
  const LeafAssignment labelled = predict_by_leaves(*backend, *data, leaves.view(), segments.subcluster_labels,
                                                    segments.centroids.view());
  const double fit_seconds = fit_time.seconds();
  const int k = segments.n_clusters;
  const std::vector<std::int64_t> sizes = sizes_of(labelled.labels, k);
  const LabelStats spread = backend->label_stats(*data, labelled.labels, k, segments.centroids.view());
  double inertia = 0.0;
  for (double v : spread.sq_dist_sums) inertia += v;

  Description described = describe_segments(o, *backend, *data, f, naming, segments.centroids.view(), sizes);
  const std::vector<SegmentProfile>& profiles = described.profiles;
  const std::vector<SegmentEntry>& entries = described.entries;
  const std::vector<std::string>& names = described.names;

  const BackendInfo info = backend->info();
  Model model;
  model.centroids = segments.centroids;
  model.feature_names = f.feature_names;
  model.feature_roles = feature_role_names(naming.roles);
  model.scaler = f.scaler;
  set_segments(model, profiles, entries, sizes);
  set_hierarchy(model, std::move(leaves), segments.subcluster_labels,
                std::vector<double>(state.weight.begin(), state.weight.begin() + state.n_subclusters), segments.tree);
  if (segments.tree.merges.empty()) model.hierarchy_merges = Matrix<double>();
  model.attributes = fit_attributes({"birch", "-", k, 1, 0, o.seed, true, inertia}, info, f, naming.audience);
  auto exact = [](double v) {
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", v);
    return std::string(text);
  };
  model.attributes["global"] = birch_global_name(p.global);
  model.attributes["n_leaves"] = std::to_string(state.n_subclusters);
  model.attributes["birch_threshold"] = exact(state.threshold);
  model.attributes["birch_initial_threshold"] = exact(state.initial_threshold);
  model.attributes["birch_branching_factor"] = std::to_string(state.branching_factor);
  model.attributes["birch_max_subclusters"] = std::to_string(state.max_subclusters);
  model.attributes["birch_n_rebuilds"] = std::to_string(state.n_rebuilds);
  model.attributes["birch_n_rows_seen"] = std::to_string(state.n_rows_seen);
  model.attributes["birch_n_subclusters"] = std::to_string(state.n_subclusters);
  model.attributes["birch_root"] = std::to_string(state.root);
  if (previous) model.attributes["continued_from"] = o.continue_from;
  model.birch = state;

  Assignment assignment;
  assignment.labels = labelled.labels;
  for (float v : labelled.distances) assignment.sq_distances.push_back(v * v);
  ProgressLine line;
  Stopwatch metric_time;
  json s;
  if (!o.metrics.empty()) s = scores(*backend, *data, labelled.labels, k, silhouette, o.seed, line);
  const double metric_seconds = metric_time.seconds();

  write_model(o.model, model);
  if (!o.labels.empty()) write_labels(o.labels, assignment, f.ids, names);
  write_segment_dictionary(dictionary, o.model, n, profiles, f.feature_names, entries);
  std::fprintf(stderr, "birch (threshold %s%s, branching factor %d) on %lld x %lld (%s): %lld subclusters from %lld rows%s, %s into %d segments\n",
               analyst_number(state.threshold).c_str(), state.n_rebuilds > 0 ? (", grown from " + analyst_number(state.initial_threshold) + " by " + std::to_string(state.n_rebuilds) + " rebuilds").c_str() : "",
               state.branching_factor, static_cast<long long>(n), static_cast<long long>(d), info.name.c_str(),
               static_cast<long long>(state.n_subclusters), static_cast<long long>(state.n_rows_seen),
               previous ? (" (" + std::to_string(rows_before) + " before this file)").c_str() : "",
               birch_global_name(p.global).c_str(), k);
  print_segments(profiles, names, sizes, n, f.feature_names);
  for (const auto& w : described.warnings) std::fprintf(stderr, "segforge: warning: %s\n", w.c_str());
  std::fprintf(stderr, "segment dictionary: %s\n", dictionary.c_str());
  if (!o.metrics.empty()) {
    json m = segment_metrics(k, n, d, "birch", info, sizes, names, profiles_json(profiles, f.feature_names, entries), s);
    m["threshold"] = state.threshold;
    m["initial_threshold"] = state.initial_threshold;
    m["branching_factor"] = state.branching_factor;
    m["n_subclusters"] = state.n_subclusters;
    m["n_rebuilds"] = state.n_rebuilds;
    m["n_rows_seen"] = state.n_rows_seen;
    m["global"] = birch_global_name(p.global);
    m["inertia"] = inertia;
    m["peak_rss_bytes"] = peak_rss_bytes();
    m["timings"] = {{"read", read_seconds}, {"insert", insert_seconds}, {"global", global_seconds},
                    {"fit", fit_seconds},   {"metrics", metric_seconds}, {"total", total.seconds()}};
    write_text_atomic(o.metrics, m.dump(2) + "\n");
  }
  outputs.commit();
  if (!o.metrics.empty()) print_scores(s);
  return 0;
}

int run_fit(const FitOptions& o) {
  if (o.algorithm == "dbscan") return run_fit_dbscan(o);
  if (o.algorithm == "birch") return run_fit_birch(o);
  if (o.algorithm == "agglomerative") return run_fit_agglomerative(o);
  if (o.k == kUnset) throw InputError("-k: the number of segments is required for K-Means (--algorithm lloyd|minibatch)");
  Stopwatch total;
  const Algorithm algorithm = parse_algorithm(o.algorithm);
  std::string centres_file;
  const Init init = parse_init(o.init, &centres_file);
  // Every file this run reads and writes, checked against each other before any work.
  OutputSet outputs;
  outputs.input(o.features, "features");
  outputs.input(centres_file, "--init");
  outputs.input(o.continue_from, "--continue-from");
  outputs.input(o.names, "--names");
  outputs.input(o.checkpoint.resume, "--resume");
  const std::string dictionary = declare_fit_outputs(outputs, o);
  const std::string checkpoint_file = o.checkpoint.path.empty() ? o.checkpoint.resume : o.checkpoint.path;
  if (!checkpoint_file.empty())
    outputs.standalone(checkpoint_file, o.checkpoint.path.empty() ? "--resume" : "--checkpoint",
                       {".h5", ".hdf5"}, "--resume");
  const SilhouetteSpec silhouette = parse_silhouette(o.silhouette);
  const Refine refine = parse_refine(o.refine);
  auto backend = open_backend(o.common);

  Stopwatch read_time;
  Features f = load(o.features, o.common);
  const double read_seconds = read_time.seconds();
  const std::int64_t n = f.n_rows_total, d = f.x.cols();  // all ranks' rows under MPI
  const Naming naming = naming_of(o, f);

  InitParams ip;
  ip.init = init;
  ip.oversampling_factor = o.oversampling_factor;
  std::vector<double> counts;
  if (init == Init::given) ip.centroids = read_model(centres_file).centroids;
  if (!o.continue_from.empty()) {
    if (algorithm != Algorithm::minibatch)
      throw InputError("--continue-from " + o.continue_from + ": continuing needs --algorithm minibatch");
    Model previous = read_model(o.continue_from);
    if (!previous.feature_names.empty() && previous.feature_names != f.feature_names)
      throw InputError("--continue-from " + o.continue_from + ": its features differ from " + where(f) +
                       "; continue only on data with the same columns");
    ip.init = Init::given;
    ip.centroids = std::move(previous.centroids);
    counts = std::move(previous.counts);
    if (counts.empty()) counts.assign(static_cast<std::size_t>(ip.centroids.rows()), 0.0);
  }

  const int max_iter = o.max_iter != kUnset ? o.max_iter : (algorithm == Algorithm::lloyd ? 300 : 100);
  const double tol = !std::isnan(o.tol) ? o.tol : (algorithm == Algorithm::lloyd ? 1e-4 : 0.0);
  CheckpointSession checkpoint(o.checkpoint, fit_settings(o, f, max_iter, tol));
  Checkpointing all_ranks;  // under MPI: checkpoint's, made collective (on_all_ranks)

  ProgressLine line;
  KMeansResult result;
  std::unique_ptr<Dataset> data;
  if (algorithm == Algorithm::lloyd) {
    LloydParams p;
    p.n_clusters = o.k;
    p.max_iter = max_iter;
    p.tol = tol;
    p.n_init = o.n_init;
    p.seed = o.seed;
    p.init = std::move(ip);
    p.refine = refine;
    p.swap_trials = o.swap_trials;
    validate(p, n, d, where(f));
    data = open_data(*backend, f, o.common);
    result = fit_lloyd(*backend, *data, p, line.callback(), on_all_ranks(checkpoint.get(), all_ranks));
  } else {
    MiniBatchParams p;
    p.n_clusters = o.k;
    p.batch_size = o.batch_size;
    p.max_iter = max_iter;
    p.tol = tol;
    p.n_init = o.n_init;
    p.seed = o.seed;
    p.init = std::move(ip);
    p.max_no_improvement = o.max_no_improvement;
    p.reassignment_ratio = o.reassignment_ratio;
    p.counts = std::move(counts);
    validate(p, n, d, where(f));
    data = open_data(*backend, f, o.common);
    result = fit_minibatch(*backend, *data, p, line.callback(), on_all_ranks(checkpoint.get(), all_ranks));
  }
  line.finish();

  const int k = o.k;
  const Assignment assignment = predict(*backend, *data, result.centroids.view());
  const std::vector<std::int64_t> sizes = sizes_of(assignment.labels, k);
  const Description described = describe_segments(o, *backend, *data, f, naming, result.centroids.view(), sizes);
  const std::vector<SegmentProfile>& profiles = described.profiles;
  const std::vector<SegmentEntry>& entries = described.entries;
  const std::vector<std::string>& names = described.names;
  const std::vector<std::string>& guard_warnings = described.warnings;

  const BackendInfo info = backend->info();
  Model model;
  model.centroids = result.centroids;
  model.feature_names = f.feature_names;
  model.feature_roles = feature_role_names(naming.roles);  // what report and refresh name segments from
  model.scaler = f.scaler;
  set_segments(model, profiles, entries, sizes);
  if (algorithm == Algorithm::minibatch) model.counts = result.counts;
  const std::string init_text = o.continue_from.empty() ? init_name(init) : "continued";
  model.attributes = fit_attributes({algorithm_name(algorithm), init_text, k, o.n_init, result.n_iter, o.seed,
                                     result.converged, result.inertia},
                                    info, f, naming.audience);

  Stopwatch metric_time;
  json s;
  if (!o.metrics.empty())
    s = scores(*backend, *data, assignment.labels, k, silhouette, o.seed, line);
  const double metric_seconds = metric_time.seconds();
  if (!output_rank()) return 0;  // under MPI rank 0 writes and prints; the rest is output only

  write_model(o.model, model);
  if (!o.labels.empty()) write_labels(o.labels, assignment, f.ids, names);
  write_segment_dictionary(dictionary, o.model, n, profiles, f.feature_names, entries);

  std::fprintf(stderr, "%s k=%d on %lld x %lld (%s): inertia %.6g, %d iterations%s\n",
               algorithm_name(algorithm).c_str(), k, static_cast<long long>(n),
               static_cast<long long>(d), info.name.c_str(), result.inertia, result.n_iter,
               result.converged ? ", converged" : ", not converged (raise --max-iter)");
  if (result.n_empty_relocated > 0)
    std::fprintf(stderr, "%d empty clusters re-seeded from the farthest points\n",
                 result.n_empty_relocated);
  // Profiles: size, share and the features that most set each segment apart (original units).
  print_segments(profiles, names, sizes, n, f.feature_names);
  for (const auto& w : guard_warnings) std::fprintf(stderr, "segforge: warning: %s\n", w.c_str());
  std::fprintf(stderr, "segment dictionary: %s\n", dictionary.c_str());

  if (!o.metrics.empty()) {
    json m = segment_metrics(k, n, d, algorithm_name(algorithm), info, sizes, names,
                             profiles_json(profiles, f.feature_names, entries), s);
    m["init"] = init_text;
    m["seed"] = o.seed;
    m["inertia"] = result.inertia;
    m["n_iter"] = result.n_iter;
    m["converged"] = result.converged;
    m["n_empty_relocated"] = result.n_empty_relocated;
    m["n_swaps_accepted"] = result.n_swaps_accepted;
    m["run_inertia"] = result.run_inertia;
    m["out_of_core"] = f.disk_rows > 0;
    m["peak_rss_bytes"] = peak_rss_bytes();  // VmHWM so far: the fit, scores and outputs
    m["timings"] = {{"read", read_seconds},
                    {"init", result.init_seconds},
                    {"iterations", result.iter_seconds},
                    {"metrics", metric_seconds},
                    {"total", total.seconds()}};
    write_text_atomic(o.metrics, m.dump(2) + "\n");
  }
  outputs.commit();  // the model, labels, dictionary and metrics appear together
  if (!o.metrics.empty()) print_scores(s);
  checkpoint.finished();
  return 0;
}

}  // namespace

void set_segments(Model& model, const std::vector<SegmentProfile>& profiles, const std::vector<SegmentEntry>& entries,
                  const std::vector<std::int64_t>& sizes) {
  const auto k = static_cast<std::int64_t>(profiles.size());
  const std::int64_t d = profiles.empty() ? 0 : static_cast<std::int64_t>(profiles.front().centre_original.size());
  const auto d_top = profiles.empty() ? 0 : static_cast<std::int64_t>(profiles.front().top_features.size());
  model.segment_names.clear();
  for (const auto& e : entries) model.segment_names.push_back(e.name);
  model.segment_sizes = sizes;
  model.segment_shares.clear();
  model.segment_descriptions.clear();
  model.segment_outreach.clear();
  model.segment_centres_original = Matrix<double>(k, d);
  model.segment_z_scores = Matrix<double>(k, d);
  model.segment_top_features = Matrix<std::int32_t>(k, d_top, -1);
  for (std::int64_t c = 0; c < k; ++c) {
    const SegmentProfile& p = profiles[static_cast<std::size_t>(c)];
    const SegmentEntry& e = entries[static_cast<std::size_t>(c)];
    model.segment_shares.push_back(p.share);
    std::copy(p.centre_original.begin(), p.centre_original.end(), model.segment_centres_original.row(c));
    std::copy(p.z_scores.begin(), p.z_scores.end(), model.segment_z_scores.row(c));
    std::copy(p.top_features.begin(), p.top_features.end(), model.segment_top_features.row(c));
    model.segment_descriptions.push_back(e.description);
    model.segment_outreach.push_back(e.outreach);
  }
}

std::map<std::string, std::string> fit_attributes(const FitRecord& fit, const BackendInfo& info, const Features& f,
                                                  Audience audience) {
  char inertia_text[64];
  std::snprintf(inertia_text, sizeof inertia_text, "%.17g", fit.inertia);  // round-trips the double
  return {{"algorithm", fit.algorithm},
          {"k", std::to_string(fit.k)},
          {"init", fit.init},
          {"seed", std::to_string(fit.seed)},
          {"n_init", std::to_string(fit.n_init)},
          {"n_iter", std::to_string(fit.n_iter)},
          {"converged", fit.converged ? "true" : "false"},
          {"inertia", inertia_text},
          {"backend", info.name},
          {"device", info.device},
          {"segforge_version", SEGFORGE_VERSION},
          {"input_file", f.path},
          {"input_dataset", f.dataset},
          {"input_checksum", f.checksum},
          {"audience", audience_name(audience)}};
}

void write_segment_dictionary(const std::string& path, const std::string& model_path, std::int64_t n_samples,
                              const std::vector<SegmentProfile>& profiles, const std::vector<std::string>& feature_names,
                              const std::vector<SegmentEntry>& entries) {
  json dict = json_output("segforge-segments");
  dict["model"] = model_path;
  dict["k"] = profiles.size();
  dict["n_samples"] = n_samples;
  dict["segments"] = profiles_json(profiles, feature_names, entries);
  write_text_atomic(path, dict.dump(2) + "\n");
}

json profiles_json(const std::vector<SegmentProfile>& profiles, const std::vector<std::string>& feature_names,
                   const std::vector<SegmentEntry>& dictionary) {
  auto number = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  json out = json::array();
  for (std::size_t c = 0; c < profiles.size(); ++c) {
    const SegmentProfile& p = profiles[c];
    json s;
    s["segment"] = p.segment;
    if (c < dictionary.size()) {
      s["name"] = dictionary[c].name;
      s["description"] = dictionary[c].description;
      s["outreach"] = dictionary[c].outreach;
    }
    s["size"] = p.size;
    s["share"] = p.share;
    json top = json::array();
    for (int j : p.top_features)
      top.push_back({{"feature", feature_names[j]}, {"value", number(p.centre_original[j])}, {"z", p.z_scores[j]}});
    s["top_features"] = top;
    // ordered_json's operator[] searches its keys linearly: appending directly keeps this
    // O(D) per segment (D = 10^6 features took minutes). Feature names are unique (validated).
    json centre = json::object(), z = json::object();
    auto& centre_items = centre.get_ref<json::object_t&>();
    auto& z_items = z.get_ref<json::object_t&>();
    centre_items.reserve(feature_names.size());
    z_items.reserve(feature_names.size());
    for (std::size_t j = 0; j < feature_names.size(); ++j) {
      centre_items.Container::emplace_back(feature_names[j], number(p.centre_original[j]));
      z_items.Container::emplace_back(feature_names[j], json(p.z_scores[j]));
    }
    s["centre"] = centre;
    s["z_scores"] = z;
    out.push_back(std::move(s));
  }
  return out;
}

Command add_fit_command(CLI::App& parent) {
  auto options = std::make_shared<FitOptions>();
  FitOptions& o = *options;
  auto* cmd = parent.add_subcommand("fit", "Cluster a feature matrix with K-Means and write the model");
  cmd->add_option("features", o.features, "features.h5")->required();
  cmd->add_option("-k,--k", o.k, "number of segments (K-Means; DBSCAN finds it)");
  cmd->add_option("-o,--output", o.model, "model.h5 to write")->required();
  cmd->add_option("--role", o.roles, "COLUMN=ROLE for the automatic names (recency|tenure|frequency|monetary|engagement|other; see docs/segments.md)");
  cmd->add_option("--audience", o.audience, "auto|donors|customers: the words and outreach of the automatic names (auto: the features file's, else inferred)")
      ->check(CLI::IsMember({"auto", "donors", "customers"}))->capture_default_str();
  cmd->add_option("--algorithm", o.algorithm, "lloyd|minibatch|dbscan|agglomerative|birch")->capture_default_str();
  cmd->add_option("--threshold", o.threshold, "BIRCH: a subcluster absorbs a row when its radius stays within this")->capture_default_str();
  cmd->add_option("--branching-factor", o.branching_factor, "BIRCH: the most entries of a node")->capture_default_str();
  cmd->add_option("--global", o.global, "BIRCH: the global step, ward|kmeans")->capture_default_str();
  cmd->add_option("--max-subclusters", o.max_subclusters, "BIRCH: beyond this many subclusters the tree is rebuilt with a larger threshold (0: no limit)")->capture_default_str();
  cmd->add_option("--linkage", o.linkage, "agglomerative: ward|complete|average|single")->capture_default_str();
  cmd->add_option("--distance-threshold", o.distance_threshold, "agglomerative: cut the tree at this merge height instead of -k");
  cmd->add_option("--strategy", o.strategy, "agglomerative: auto|exact|two-stage (auto: exact up to --exact-max-rows, then Ward on K-Means micro-clusters)")->capture_default_str();
  cmd->add_option("--micro-clusters", o.micro_clusters, "agglomerative two-stage: K-Means micro-clusters M")->capture_default_str();
  cmd->add_option("--exact-max-rows", o.exact_max_rows, "agglomerative auto: the exact tree up to this many rows")->capture_default_str();
  cmd->add_option("--eps", o.eps, "DBSCAN: neighbourhood radius in the features' units, or auto (the knee of the k-distance curve)")->capture_default_str();
  cmd->add_option("--min-samples", o.min_samples, "DBSCAN: weight within eps, the row itself included, that makes a row core")->capture_default_str();
  cmd->add_option("--eps-sample", o.eps_sample, "DBSCAN --eps auto: rows sampled for the k-distance curve")->capture_default_str();
  cmd->add_option("--init", o.init, "k-means++|scalable-k-means++|random|FILE.h5")->capture_default_str();
  cmd->add_option("--n-init", o.n_init, "restarts; the lowest inertia wins")->capture_default_str();
  cmd->add_option("--max-iter", o.max_iter, "iterations (Lloyd: 300; mini-batch: passes, 100)");
  cmd->add_option("--tol", o.tol, "relative tolerance (Lloyd: 1e-4; mini-batch: 0)");
  cmd->add_option("--batch-size", o.batch_size, "mini-batch rows")->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed")->capture_default_str();
  cmd->add_option("--oversampling-factor", o.oversampling_factor, "k-means||: l = factor x K")->capture_default_str();
  cmd->add_option("--refine", o.refine, "auto|none|swap: random-swap refinement (auto: small N*K)")->capture_default_str();
  cmd->add_option("--swap-trials", o.swap_trials, "random-swap trials (0: 60 x K, at most 5000)");
  cmd->add_option("--max-no-improvement", o.max_no_improvement, "mini-batch early stop")->capture_default_str();
  cmd->add_option("--reassignment-ratio", o.reassignment_ratio, "mini-batch starved centres")->capture_default_str();
  cmd->add_option("--continue-from", o.continue_from, "mini-batch: continue training a saved model; BIRCH: insert these rows into its tree");
  cmd->add_option("--labels", o.labels, "labels.h5 or segments.csv to write");
  cmd->add_option("--metrics", o.metrics, "metrics.json to write");
  cmd->add_option("--silhouette", o.silhouette, "auto|exact|sample=N|none (with --metrics)")->capture_default_str();
  cmd->add_option("--names", o.names, "names.json: segment names (and description, outreach) overriding the automatic ones");
  cmd->add_option("--dictionary", o.dictionary, "segment dictionary to write (default: <model>.segments.json)");
  cmd->add_option("--min-segment-size", o.min_segment_size, "warn below this many rows (0: 1% of N, at least 20, at most 1000)")->capture_default_str();
  cmd->add_flag("--strict", o.strict, "data-sufficiency warnings (< 500 rows, < 2 years of history, small segments) are errors");
  add_checkpoint_options(cmd, o.checkpoint);
  add_common(cmd, o.common);
  add_sample_weight(cmd, o.common);
  return {cmd, [options] { return run_fit(*options); }};
}

}  // namespace segforge::cli
