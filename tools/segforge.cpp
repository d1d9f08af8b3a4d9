// segforge: the engine's command line. Parses options into the library's types, runs, prints.
// Errors: InputError and CLI11 parse errors print one line and exit 2; runtime failures exit 1.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_common.hpp"
#include "segforge/distances.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/metrics.hpp"
#include "segforge/rng.hpp"
#include "segforge/validate.hpp"

#ifndef SEGFORGE_VERSION
#define SEGFORGE_VERSION "0.1.0"
#endif

namespace segforge::cli {
namespace {

using json = nlohmann::ordered_json;

struct Common {
  std::string device = "auto";
  int threads = 0;
  std::string dataset = "/features";
  std::string nan_policy = "error";
};

void add_common(CLI::App* app, Common& c) {
  app->add_option("--device", c.device, "auto|gpu|cpu: where to run")->capture_default_str();
  app->add_option("--threads", c.threads, "CPU threads (0: all cores)")->capture_default_str();
  app->add_option("--dataset", c.dataset, "HDF5 dataset holding the matrix")->capture_default_str();
  app->add_option("--nan-policy", c.nan_policy, "error|drop: rows with NaN or Inf")->capture_default_str();
}

std::unique_ptr<Backend> open_backend(const Common& c) {
  std::string note;
  auto backend = make_backend(parse_device(c.device), c.threads, &note);
  if (!note.empty()) std::cerr << "segforge: " << note << '\n';
  return backend;
}

Features load(const std::string& path, const Common& c) {
  ReadOptions options;
  options.dataset = c.dataset;
  options.nan_policy = parse_nan_policy(c.nan_policy);
  Features f = read_features(path, options);
  if (f.n_dropped > 0)
    std::cerr << "segforge: " << f.path << ":" << f.dataset << ": dropped " << f.n_dropped
              << " rows with NaN or Inf (--nan-policy drop)\n";
  return f;
}

std::string where(const Features& f) { return f.path + ":" + f.dataset; }

std::vector<std::int64_t> sizes_of(std::span<const std::int32_t> labels, int k) {
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(k), 0);
  for (auto l : labels) ++sizes[static_cast<std::size_t>(l)];
  return sizes;
}

std::vector<float> euclidean(const std::vector<float>& sq) {
  std::vector<float> out(sq.size());
  for (std::size_t i = 0; i < sq.size(); ++i) out[i] = std::sqrt(sq[i]);
  return out;
}

void write_labels(const std::string& path, const Assignment& a, const Ids& ids,
                  const std::vector<std::string>& names) {
  const std::vector<float> dist = euclidean(a.sq_distances);
  if (path.ends_with(".csv"))
    write_segments_csv(path, a.labels, dist, ids, names);
  else
    write_labels_h5(path, a.labels, dist, ids);
}

/// Scores for metrics.json (and printing): silhouette as asked, Davies–Bouldin, Calinski–Harabasz.
json scores(Backend& backend, const Dataset& data, std::span<const std::int32_t> labels, int k,
            SilhouetteSpec spec, std::uint64_t seed, const std::string& where_, ProgressLine& line) {
  json out;
  std::int64_t distinct = 0;
  for (auto s : sizes_of(labels, k)) distinct += s > 0;
  if (distinct < 2 || distinct > data.n_samples() - 1) {
    out["note"] = "scores need 2 to n_samples-1 distinct labels; got " + std::to_string(distinct);
    return out;
  }
  spec = resolve_silhouette(spec, data.n_samples());
  if (spec.mode != SilhouetteSpec::Mode::none) {
    const SilhouetteResult s =
        spec.mode == SilhouetteSpec::Mode::exact
            ? silhouette_exact(backend, data, labels, k, line.callback())
            : silhouette_sampled(backend, data, labels, k, spec.sample_size, seed, 200, line.callback());
    line.finish();
    out["silhouette"] = s.score;
    out["silhouette_method"] = s.sampled ? "sample" : "exact";
    if (s.sampled) {
      out["silhouette_sample_size"] = s.rows.size();
      if (s.standard_error) out["silhouette_standard_error"] = *s.standard_error;
    }
    json per = json::array();
    for (double v : s.cluster_means) per.push_back(std::isnan(v) ? json(nullptr) : json(v));
    out["silhouette_per_segment"] = per;
  }
  out["davies_bouldin"] = davies_bouldin(backend, data, labels, k);
  out["calinski_harabasz"] = calinski_harabasz(backend, data, labels, k);
  (void)where_;
  return out;
}

void print_scores(const json& s) {
  if (s.contains("silhouette")) {
    std::fprintf(stderr, "silhouette %.6f", s["silhouette"].get<double>());
    if (s.contains("silhouette_standard_error"))
      std::fprintf(stderr, " ± %.6f (sample of %lld)", s["silhouette_standard_error"].get<double>(),
                   static_cast<long long>(s["silhouette_sample_size"].get<std::int64_t>()));
    std::fprintf(stderr, "\n");
  }
  if (s.contains("davies_bouldin"))
    std::fprintf(stderr, "davies_bouldin %.6f\ncalinski_harabasz %.6f\n",
                 s["davies_bouldin"].get<double>(), s["calinski_harabasz"].get<double>());
}

// ---- fit --------------------------------------------------------------------------------------

constexpr int kUnset = std::numeric_limits<int>::min();

struct FitOptions {
  Common common;
  std::string features, model, labels, metrics;
  int k = 0;
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
};

int run_fit(const FitOptions& o) {
  Stopwatch total;
  check_output(o.model, "-o", {".h5", ".hdf5"});
  if (!o.labels.empty()) check_output(o.labels, "--labels", {".h5", ".csv"});
  if (!o.metrics.empty()) check_output(o.metrics, "--metrics", {".json"});
  const Algorithm algorithm = parse_algorithm(o.algorithm);
  std::string centres_file;
  const Init init = parse_init(o.init, &centres_file);
  const SilhouetteSpec silhouette = parse_silhouette(o.silhouette);
  const Refine refine = parse_refine(o.refine);
  auto backend = open_backend(o.common);

  Stopwatch read_time;
  const Features f = load(o.features, o.common);
  const double read_seconds = read_time.seconds();
  const std::int64_t n = f.x.rows(), d = f.x.cols();

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

  ProgressLine line;
  KMeansResult result;
  std::unique_ptr<Dataset> data;
  if (algorithm == Algorithm::lloyd) {
    LloydParams p;
    p.n_clusters = o.k;
    p.max_iter = o.max_iter != kUnset ? o.max_iter : 300;
    p.tol = std::isnan(o.tol) ? 1e-4 : o.tol;
    p.n_init = o.n_init;
    p.seed = o.seed;
    p.init = std::move(ip);
    p.refine = refine;
    p.swap_trials = o.swap_trials;
    validate(p, n, d, where(f));
    data = backend->upload(f.x.view());
    result = fit_lloyd(*backend, *data, p, line.callback());
  } else {
    MiniBatchParams p;
    p.n_clusters = o.k;
    p.batch_size = o.batch_size;
    p.max_iter = o.max_iter != kUnset ? o.max_iter : 100;
    p.tol = std::isnan(o.tol) ? 0.0 : o.tol;
    p.n_init = o.n_init;
    p.seed = o.seed;
    p.init = std::move(ip);
    p.max_no_improvement = o.max_no_improvement;
    p.reassignment_ratio = o.reassignment_ratio;
    p.counts = std::move(counts);
    validate(p, n, d, where(f));
    data = backend->upload(f.x.view());
    result = fit_minibatch(*backend, *data, p, line.callback());
  }
  line.finish();

  const int k = o.k;
  const Assignment assignment = predict(*backend, *data, result.centroids.view());
  const std::vector<std::int64_t> sizes = sizes_of(assignment.labels, k);
  std::vector<std::string> names;
  for (int c = 0; c < k; ++c) names.push_back("segment " + std::to_string(c + 1));

  const BackendInfo info = backend->info();
  Model model;
  model.centroids = result.centroids;
  model.feature_names = f.feature_names;
  model.scaler = f.scaler;
  model.segment_names = names;
  model.segment_sizes = sizes;
  if (algorithm == Algorithm::minibatch) model.counts = result.counts;
  char inertia_text[64];
  std::snprintf(inertia_text, sizeof inertia_text, "%.17g", result.inertia);
  model.attributes = {{"algorithm", algorithm_name(algorithm)},
                      {"k", std::to_string(k)},
                      {"init", o.continue_from.empty() ? init_name(init) : "continued"},
                      {"seed", std::to_string(o.seed)},
                      {"n_init", std::to_string(o.n_init)},
                      {"n_iter", std::to_string(result.n_iter)},
                      {"converged", result.converged ? "true" : "false"},
                      {"inertia", inertia_text},
                      {"backend", info.name},
                      {"device", info.device},
                      {"segforge_version", SEGFORGE_VERSION},
                      {"input_file", f.path},
                      {"input_dataset", f.dataset},
                      {"input_checksum", f.checksum}};

  Stopwatch metric_time;
  json s;
  if (!o.metrics.empty())
    s = scores(*backend, *data, assignment.labels, k, silhouette, o.seed, where(f), line);
  const double metric_seconds = metric_time.seconds();

  write_model(o.model, model);
  if (!o.labels.empty()) write_labels(o.labels, assignment, f.ids, names);

  std::fprintf(stderr, "%s k=%d on %lld x %lld (%s): inertia %.6g, %d iterations%s\n",
               algorithm_name(algorithm).c_str(), k, static_cast<long long>(n),
               static_cast<long long>(d), info.name.c_str(), result.inertia, result.n_iter,
               result.converged ? ", converged" : ", not converged (raise --max-iter)");
  if (result.n_empty_relocated > 0)
    std::fprintf(stderr, "%d empty clusters re-seeded from the farthest points\n",
                 result.n_empty_relocated);
  for (int c = 0; c < k; ++c)
    std::fprintf(stderr, "  %-12s %10lld rows (%5.1f%%)\n", names[c].c_str(),
                 static_cast<long long>(sizes[c]), 100.0 * static_cast<double>(sizes[c]) / static_cast<double>(n));

  if (!o.metrics.empty()) {
    json m;
    m["k"] = k;
    m["n_samples"] = n;
    m["n_features"] = d;
    m["algorithm"] = algorithm_name(algorithm);
    m["init"] = init_name(init);
    m["seed"] = o.seed;
    m["inertia"] = result.inertia;
    m["n_iter"] = result.n_iter;
    m["converged"] = result.converged;
    m["n_empty_relocated"] = result.n_empty_relocated;
    m["n_swaps_accepted"] = result.n_swaps_accepted;
    m["run_inertia"] = result.run_inertia;
    m["backend"] = info.name;
    m["device"] = info.device;
    m["sizes"] = sizes;
    m["segment_names"] = names;
    for (auto& [key, value] : s.items()) m[key] = value;
    m["timings"] = {{"read", read_seconds},
                    {"init", result.init_seconds},
                    {"iterations", result.iter_seconds},
                    {"metrics", metric_seconds},
                    {"total", total.seconds()}};
    write_text_atomic(o.metrics, m.dump(2) + "\n");
    print_scores(s);
  }
  return 0;
}

// ---- predict ------------------------------------------------------------------------------------

int run_predict(const Common& c, const std::string& model_path, const std::string& features,
                const std::string& out) {
  check_output(out, "-o", {".h5", ".csv"});
  const Model model = read_model(model_path);
  const Features f = load(features, c);
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
  auto backend = open_backend(c);
  auto data = backend->upload(f.x.view());
  const Assignment a = predict(*backend, *data, model.centroids.view());
  std::vector<std::string> names = model.segment_names;
  for (auto i = static_cast<std::int64_t>(names.size()); i < model.centroids.rows(); ++i)
    names.push_back("segment " + std::to_string(i + 1));
  write_labels(out, a, f.ids, names);
  std::fprintf(stderr, "predicted %lld rows into %lld segments (inertia %.6g)\n",
               static_cast<long long>(f.x.rows()), static_cast<long long>(model.centroids.rows()),
               a.inertia);
  return 0;
}

// ---- score --------------------------------------------------------------------------------------

int run_score(const Common& c, const std::string& features, const std::string& labels_path,
              const std::string& silhouette, const std::string& metrics, std::uint64_t seed) {
  if (!metrics.empty()) check_output(metrics, "--metrics", {".json"});
  const SilhouetteSpec spec = parse_silhouette(silhouette);
  const Features f = load(features, c);
  if (parse_nan_policy(c.nan_policy) == NanPolicy::drop)
    std::cerr << "segforge: note: --nan-policy drop with --labels assumes the labels were made without the dropped rows\n";
  const std::vector<std::int32_t> labels = read_labels(labels_path);
  const int k = validate_labels(labels, f.x.rows(), labels_path + " against " + where(f));
  validate_label_count(labels, k, labels_path);
  auto backend = open_backend(c);
  auto data = backend->upload(f.x.view());
  ProgressLine line;
  Stopwatch t;
  json s = scores(*backend, *data, labels, k, spec, seed, where(f), line);
  print_scores(s);
  if (!metrics.empty()) {
    json m;
    m["k"] = k;
    m["n_samples"] = f.x.rows();
    m["n_features"] = f.x.cols();
    // Inertia of the labelling against its own cluster means.
    const LabelStats st = backend->label_stats(*data, labels, k, {});
    Matrix<float> means(k, f.x.cols());
    for (int cl = 0; cl < k; ++cl)
      for (std::int64_t j = 0; j < f.x.cols(); ++j)
        means(cl, j) = st.counts[cl] > 0 ? static_cast<float>(st.sums[cl * f.x.cols() + j] / st.counts[cl]) : 0.0f;
    const LabelStats dist = backend->label_stats(*data, labels, k, means.view());
    double inertia = 0;
    for (double v : dist.sq_dist_sums) inertia += v;
    m["inertia"] = inertia;
    m["backend"] = backend->info().name;
    m["device"] = backend->info().device;
    m["sizes"] = sizes_of(labels, k);
    for (auto& [key, value] : s.items()) m[key] = value;
    m["timings"] = {{"metrics", t.seconds()}};
    write_text_atomic(metrics, m.dump(2) + "\n");
  }
  return 0;
}

// ---- distances, info, synth -----------------------------------------------------------------------

int run_distances(const Common& c, const std::string& a_path, const std::string& b_path,
                  const std::string& out, bool squared) {
  check_output(out, "-o", {".h5", ".hdf5"});
  const Features a = load(a_path, c);
  auto backend = open_backend(c);
  auto da = backend->upload(a.x.view());
  std::unique_ptr<Dataset> db;
  if (!b_path.empty()) {
    const Features b = load(b_path, c);
    if (b.x.cols() != a.x.cols())
      throw InputError(where(b) + ": " + std::to_string(b.x.cols()) + " features, but " + where(a) +
                       " has " + std::to_string(a.x.cols()) + "; both need the same columns");
    db = backend->upload(b.x.view());
  }
  ProgressLine line;
  write_distance_matrix(*backend, *da, db ? *db : *da, squared, out, 2048, 8192, line.callback());
  line.finish();
  return 0;
}

int run_info(const Common& c, const std::string& file) {
  std::printf("segforge %s\n", SEGFORGE_VERSION);
  std::string why_not;
  const bool gpu = cuda_available(&why_not);
  std::printf("gpu: %s\n", gpu ? "available" : ("none: " + why_not).c_str());
  auto cpu = make_cpu_backend(c.threads);
  std::printf("cpu backend: %s\n", cpu->info().device.c_str());
  if (!file.empty()) {
    const FeatureFileInfo i = inspect_features(file, c.dataset);
    std::printf("file: %s\ndataset: %s\nshape: %lld x %lld\ndtype: %s\n", i.path.c_str(),
                i.dataset.c_str(), static_cast<long long>(i.n_samples),
                static_cast<long long>(i.n_features), i.dtype.c_str());
    std::string names;
    for (const auto& n : i.feature_names) names += (names.empty() ? "" : ", ") + n;
    std::printf("features: %s\nids: %s\nscaler: %s\n", names.c_str(), i.has_ids ? "yes" : "no",
                i.has_scaler ? "yes" : "no");
    for (const auto& [key, value] : i.attributes) std::printf("attribute %s: %s\n", key.c_str(), value.c_str());
  }
  return 0;
}

/// Synthetic customers for the demo: K Gaussian segments in an RFM-like space.
int run_synth(const std::string& out, std::int64_t n, int k, int d, std::uint64_t seed,
              std::uint64_t centres_seed) {
  check_output(out, "-o", {".h5", ".hdf5"});
  if (n < 1 || k < 1 || d < 1) throw InputError("synth: --rows, --segments and --features must be >= 1");
  // The segment centres come from their own seed, so new customers can share old segments.
  Rng centre_rng(centres_seed);
  Matrix<float> centres(k, d);
  for (std::int64_t i = 0; i < centres.size(); ++i)
    centres.data()[i] = static_cast<float>(6.0 * centre_rng.uniform() - 3.0);
  Rng rng(seed);
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix<float> x(n, d);
  Ids ids;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = rng.below(k);
    for (int j = 0; j < d; ++j) x(i, j) = centres(c, j) + 0.5f * normal(engine);
    ids.numeric.push_back(100000 + i);
  }
  static const char* kBase[] = {"recency_days", "frequency_gifts", "monetary_total", "monetary_mean",
                                "largest_gift", "tenure_days", "opens_12m", "clicks_12m"};
  std::vector<std::string> names;
  for (int j = 0; j < d; ++j)
    names.push_back(j < 8 ? kBase[j] : "feature_" + std::to_string(j));
  write_features(out, x.view(), names, ids, {}, {{"created_by", "segforge synth"}, {"as_of", "synthetic"}});
  std::fprintf(stderr, "wrote %lld synthetic customers x %d features (%d segments) to %s\n",
               static_cast<long long>(n), d, k, out.c_str());
  return 0;
}

}  // namespace
}  // namespace segforge::cli

int main(int argc, char** argv) {
  using namespace segforge::cli;
  CLI::App app{"segforge: GPU-accelerated customer segmentation (K-Means, silhouette, distances)"};
  app.set_version_flag("--version", std::string("segforge ") + SEGFORGE_VERSION);
  app.require_subcommand(1);

  FitOptions fit;
  auto* fit_cmd = app.add_subcommand("fit", "Cluster a feature matrix with K-Means and write the model");
  fit_cmd->add_option("features", fit.features, "features.h5")->required();
  fit_cmd->add_option("-k,--k", fit.k, "number of segments")->required();
  fit_cmd->add_option("-o,--output", fit.model, "model.h5 to write")->required();
  fit_cmd->add_option("--algorithm", fit.algorithm, "lloyd|minibatch")->capture_default_str();
  fit_cmd->add_option("--init", fit.init, "k-means++|scalable-k-means++|random|FILE.h5")->capture_default_str();
  fit_cmd->add_option("--n-init", fit.n_init, "restarts; the lowest inertia wins")->capture_default_str();
  fit_cmd->add_option("--max-iter", fit.max_iter, "iterations (Lloyd: 300; mini-batch: passes, 100)");
  fit_cmd->add_option("--tol", fit.tol, "relative tolerance (Lloyd: 1e-4; mini-batch: 0)");
  fit_cmd->add_option("--batch-size", fit.batch_size, "mini-batch rows")->capture_default_str();
  fit_cmd->add_option("--seed", fit.seed, "random seed")->capture_default_str();
  fit_cmd->add_option("--oversampling-factor", fit.oversampling_factor, "k-means||: l = factor x K")->capture_default_str();
  fit_cmd->add_option("--refine", fit.refine, "auto|none|swap: random-swap refinement (auto: small N*K)")->capture_default_str();
  fit_cmd->add_option("--swap-trials", fit.swap_trials, "random-swap trials (0: 60 x K, at most 5000)");
  fit_cmd->add_option("--max-no-improvement", fit.max_no_improvement, "mini-batch early stop")->capture_default_str();
  fit_cmd->add_option("--reassignment-ratio", fit.reassignment_ratio, "mini-batch starved centres")->capture_default_str();
  fit_cmd->add_option("--continue-from", fit.continue_from, "mini-batch: continue training a saved model");
  fit_cmd->add_option("--labels", fit.labels, "labels.h5 or segments.csv to write");
  fit_cmd->add_option("--metrics", fit.metrics, "metrics.json to write");
  fit_cmd->add_option("--silhouette", fit.silhouette, "auto|exact|sample=N|none (with --metrics)")->capture_default_str();
  add_common(fit_cmd, fit.common);

  Common predict_common;
  std::string predict_model, predict_features, predict_out;
  auto* predict_cmd = app.add_subcommand("predict", "Assign new records to the segments of a model");
  predict_cmd->add_option("model", predict_model, "model.h5")->required();
  predict_cmd->add_option("features", predict_features, "features.h5")->required();
  predict_cmd->add_option("-o,--output", predict_out, "labels.h5 or segments.csv")->required();
  add_common(predict_cmd, predict_common);

  Common score_common;
  std::string score_features, score_labels, score_silhouette = "auto", score_metrics;
  std::uint64_t score_seed = 0;
  auto* score_cmd = app.add_subcommand("score", "Silhouette, Davies-Bouldin and Calinski-Harabasz of a labelling");
  score_cmd->add_option("features", score_features, "features.h5")->required();
  score_cmd->add_option("--labels", score_labels, "labels.h5 or segments.csv")->required();
  score_cmd->add_option("--silhouette", score_silhouette, "auto|exact|sample=N|none")->capture_default_str();
  score_cmd->add_option("--metrics", score_metrics, "metrics.json to write");
  score_cmd->add_option("--seed", score_seed, "seed for the silhouette sample")->capture_default_str();
  add_common(score_cmd, score_common);

  Common dist_common;
  std::string dist_a, dist_b, dist_out;
  bool squared = false;
  auto* dist_cmd = app.add_subcommand("distances", "Pairwise distance matrix between rows (HDF5 out)");
  dist_cmd->add_option("a", dist_a, "A.h5")->required();
  dist_cmd->add_option("b", dist_b, "B.h5 (default: A against itself)");
  dist_cmd->add_option("-o,--output", dist_out, "D.h5 to write")->required();
  dist_cmd->add_flag("--squared", squared, "squared Euclidean distances");
  add_common(dist_cmd, dist_common);

  Common info_common;
  std::string info_file;
  auto* info_cmd = app.add_subcommand("info", "Build and device information, and a feature file's shape");
  info_cmd->add_option("file", info_file, "features.h5");
  add_common(info_cmd, info_common);

  std::string synth_out;
  std::int64_t synth_rows = 100000;
  int synth_k = 6, synth_d = 8;
  std::uint64_t synth_seed = 42, synth_centres_seed = 1;
  auto* synth_cmd = app.add_subcommand("synth", "Write synthetic customer features (demo and benchmarks)");
  synth_cmd->add_option("-o,--output", synth_out, "features.h5 to write")->required();
  synth_cmd->add_option("--rows", synth_rows, "customers")->capture_default_str();
  synth_cmd->add_option("--segments", synth_k, "true segments")->capture_default_str();
  synth_cmd->add_option("--features", synth_d, "features")->capture_default_str();
  synth_cmd->add_option("--seed", synth_seed, "seed of the rows")->capture_default_str();
  synth_cmd->add_option("--centres-seed", synth_centres_seed, "seed of the segment centres")->capture_default_str();

  try {
    app.parse(argc, argv);
    if (*fit_cmd) return run_fit(fit);
    if (*predict_cmd) return run_predict(predict_common, predict_model, predict_features, predict_out);
    if (*score_cmd)
      return run_score(score_common, score_features, score_labels, score_silhouette, score_metrics, score_seed);
    if (*dist_cmd) return run_distances(dist_common, dist_a, dist_b, dist_out, squared);
    if (*info_cmd) return run_info(info_common, info_file);
    if (*synth_cmd) return run_synth(synth_out, synth_rows, synth_k, synth_d, synth_seed, synth_centres_seed);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const segforge::Error& e) {
    std::cerr << "segforge: " << e.what() << '\n';
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::cerr << "segforge: out of memory; use a machine with more memory or a smaller input\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "segforge: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
