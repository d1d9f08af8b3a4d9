// segforge stability: re-fit on subsamples and other seeds; ARI between runs, per-segment
// Jaccard (Hungarian-matched) and a verdict with its thresholds.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli_common.hpp"
#include "segforge/outputs.hpp"
#include "segforge/agglomerative.hpp"
#include "segforge/birch.hpp"
#include "segforge/error.hpp"
#include "segforge/number_format.hpp"
#include "segforge/io.hpp"
#include "segforge/segments.hpp"

namespace segforge::cli {

namespace {

struct StabilityOptions {
  Common common;
  std::string features, output;
  int k = 0;
  std::string algorithm = "k-means";  // or dbscan
  double eps = 0.0, min_samples = 5.0;  // DBSCAN
  std::string linkage = "ward";          // agglomerative
  double threshold = 0.5;                // BIRCH
  int branching_factor = 50;
  std::string global = "ward";
  std::int64_t max_subclusters = 10000;
  int runs = 10;
  double sample_fraction = 0.8;
  int n_init = 3;
  std::string init = "k-means++";
  std::string refine = "auto";
  std::uint64_t seed = 0;
  double ari_threshold = 0.8, jaccard_threshold = 0.75;
};

int run_stability(const StabilityOptions& o) {
  OutputSet outputs;
  outputs.input(o.features, "features");
  if (!o.output.empty()) outputs.output(o.output, "-o", {".json"});
  StabilityParams p;
  p.n_clusters = o.k;
  p.runs = o.runs;
  p.sample_fraction = o.sample_fraction;
  p.seed = o.seed;
  p.ari_threshold = o.ari_threshold;
  p.jaccard_threshold = o.jaccard_threshold;
  std::string centres_file;
  p.lloyd.init.init = parse_init(o.init, &centres_file);
  if (p.lloyd.init.init == Init::given)
    throw InputError("--init " + o.init + ": stability re-seeds every run; use k-means++, scalable-k-means++ or random");
  p.lloyd.n_init = o.n_init;
  p.lloyd.seed = o.seed;
  p.lloyd.refine = parse_refine(o.refine);
  const bool dbscan = o.algorithm == "dbscan", agglomerative = o.algorithm == "agglomerative", birch = o.algorithm == "birch";
  if (!dbscan && !agglomerative && !birch && o.algorithm != "k-means" && o.algorithm != "lloyd")
    throw InputError("--algorithm " + o.algorithm + ": use k-means (Lloyd, the default), dbscan, agglomerative or birch");
  const DbscanParams db{o.eps, o.min_samples};
  if (dbscan) {
    if (o.k != 0) throw InputError("-k " + std::to_string(o.k) + ": DBSCAN finds the number of segments itself; leave out -k");
    validate(db, "--eps/--min-samples");
  } else if (o.k == 0) {
    throw InputError("-k: the number of segments is required for " + std::string(agglomerative ? "agglomerative" : birch ? "BIRCH" : "K-Means") +
                     " stability (or --algorithm dbscan --eps E)");
  }
  AgglomerativeParams ap;
  ap.linkage = parse_linkage(o.linkage);
  ap.n_clusters = o.k;
  ap.seed = o.seed;
  BirchParams bp;
  bp.threshold = o.threshold;
  bp.branching_factor = o.branching_factor;
  bp.n_clusters = o.k;
  bp.global = parse_birch_global(o.global);
  bp.max_subclusters = o.max_subclusters;
  if (birch) validate(bp, "--threshold/--branching-factor/--max-subclusters");
  auto backend = open_backend(o.common);
  const Features f = load(o.features, o.common);
  StabilityParams checked = p;
  if (dbscan) checked.n_clusters = 1;  // the run and sample checks; DBSCAN finds K itself
  validate_stability(checked, f.x.rows(), f.x.cols(), where(f));
  if (agglomerative)
    validate(ap, std::llround(o.sample_fraction * static_cast<double>(f.x.rows())), where(f) + " (a re-fit's sample)");
  auto data = backend->upload(f.x.view());
  ProgressLine line;
  const StabilityResult r = dbscan          ? stability_dbscan(*backend, *data, p, db, line.callback())
                            : agglomerative ? stability_agglomerative(*backend, *data, p, ap, line.callback())
                            : birch         ? stability_birch(*backend, *data, p, bp, line.callback())
                                            : stability(*backend, *data, p, line.callback());
  line.finish();

  if (dbscan) {
    const auto [lo, hi] = std::minmax_element(r.run_segments.begin(), r.run_segments.end());
    std::printf("stability of DBSCAN (eps %s, min_samples %s; %s in each re-fit) over %d runs on %.0f%% subsamples "
                "(%lld rows compared): %d segments and %lld outliers on all rows, %d to %d segments in the re-fits\n",
                analyst_number(o.eps).c_str(), analyst_number(o.min_samples).c_str(),
                analyst_number(o.min_samples * r.sample_fraction).c_str(), r.runs, 100.0 * r.sample_fraction,
                static_cast<long long>(r.eval_rows), r.n_clusters, static_cast<long long>(r.reference_unassigned), *lo, *hi);
  } else {
    std::printf("stability of K=%d over %d runs on %.0f%% subsamples (%lld rows compared)\n", r.n_clusters,
                r.runs, 100.0 * r.sample_fraction, static_cast<long long>(r.eval_rows));
  }
  std::printf("  ARI between runs: mean %.4f, min %.4f; against the full-data fit: mean %.4f\n", r.ari_mean,
              r.ari_min, r.ari_reference_mean);
  std::printf("  %7s %10s %13s %13s  %s\n", "segment", "rows", "Jaccard mean", "Jaccard min", "verdict");
  for (int j = 0; j < r.n_clusters; ++j)
    std::printf("  %7d %10lld %13.4f %13.4f  %s\n", j, static_cast<long long>(r.reference_sizes[j]),
                r.jaccard_mean[j], r.jaccard_min[j], r.segment_verdicts[j].c_str());
  std::printf("%s\n", r.verdict.c_str());
  if (!o.output.empty()) {
    json j = stability_json(r);
    j["backend"] = backend->info().name;
    j["device"] = backend->info().device;
    j["input_file"] = f.path;
    j["seed"] = o.seed;
    j["algorithm"] = dbscan ? "dbscan" : agglomerative ? "agglomerative" : birch ? "birch" : "k-means";
    if (birch) j["threshold"] = o.threshold;
    if (agglomerative) j["linkage"] = o.linkage;
    if (dbscan) {
      j["eps"] = o.eps;
      j["min_samples"] = o.min_samples;
    }
    write_text_atomic(o.output, j.dump(2) + "\n");
    outputs.commit();
  }
  return 0;
}

}  // namespace

json stability_json(const StabilityResult& r) {
  json j = json_output("segforge-stability");
  j["k"] = r.n_clusters;
  j["runs"] = r.runs;
  j["sample_fraction"] = r.sample_fraction;
  j["n_samples"] = r.n_samples;
  j["eval_rows"] = r.eval_rows;
  j["ari_mean"] = r.ari_mean;
  j["ari_min"] = r.ari_min;
  j["ari_reference_mean"] = r.ari_reference_mean;
  j["reference_sizes"] = r.reference_sizes;
  j["reference_unassigned"] = r.reference_unassigned;
  j["run_segments"] = r.run_segments;
  j["jaccard_mean"] = r.jaccard_mean;
  j["jaccard_min"] = r.jaccard_min;
  j["segment_verdicts"] = r.segment_verdicts;
  j["thresholds"] = {{"ari_mean", r.ari_threshold}, {"segment_jaccard", r.jaccard_threshold}};
  j["stable"] = r.stable;
  j["verdict"] = r.verdict;
  j["seconds"] = r.seconds;
  return j;
}

StabilityResult stability_from_json(const json& j, const std::string& path) {
  StabilityResult r;
  try {
    if (j.value("format", "") != "segforge-stability")
      throw InputError(path + ": not a stability file (format is not 'segforge-stability'); pass the -o of segforge stability");
    r.n_clusters = j.at("k").get<int>();
    r.runs = j.at("runs").get<int>();
    r.sample_fraction = j.at("sample_fraction").get<double>();
    r.n_samples = j.value("n_samples", std::int64_t{0});
    r.eval_rows = j.value("eval_rows", std::int64_t{0});
    r.ari_mean = j.at("ari_mean").get<double>();
    r.ari_min = j.at("ari_min").get<double>();
    r.ari_reference_mean = j.value("ari_reference_mean", 0.0);
    r.reference_sizes = j.at("reference_sizes").get<std::vector<std::int64_t>>();
    r.reference_unassigned = j.value("reference_unassigned", std::int64_t{0});
    r.run_segments = j.value("run_segments", std::vector<int>{});
    r.jaccard_mean = j.at("jaccard_mean").get<std::vector<double>>();
    r.jaccard_min = j.at("jaccard_min").get<std::vector<double>>();
    r.segment_verdicts = j.at("segment_verdicts").get<std::vector<std::string>>();
    r.ari_threshold = j.at("thresholds").at("ari_mean").get<double>();
    r.jaccard_threshold = j.at("thresholds").at("segment_jaccard").get<double>();
    r.stable = j.at("stable").get<bool>();
    r.verdict = j.at("verdict").get<std::string>();
  } catch (const json::exception& e) {
    throw InputError(path + ": not a valid stability file (" + e.what() + "); pass the -o of segforge stability");
  }
  return r;
}

json read_json_file(const std::string& path, const std::string& option) {
  std::ifstream in(path);
  if (!in) throw InputError(option + " " + path + ": cannot open it; check the path");
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw InputError(option + " " + path + ": not valid JSON (" + e.what() + ")");
  }
}

Command add_stability_command(CLI::App& parent) {
  auto options = std::make_shared<StabilityOptions>();
  StabilityOptions& o = *options;
  auto* cmd = parent.add_subcommand("stability", "Re-fit on subsamples and seeds: ARI, per-segment Jaccard, a verdict");
  cmd->add_option("features", o.features, "features.h5")->required();
  cmd->add_option("-k,--k", o.k, "number of segments (K-Means)");
  cmd->add_option("--algorithm", o.algorithm, "k-means (Lloyd), dbscan, agglomerative or birch")->capture_default_str();
  cmd->add_option("--linkage", o.linkage, "agglomerative: ward|complete|average|single")->capture_default_str();
  cmd->add_option("--threshold", o.threshold, "BIRCH: as for fit")->capture_default_str();
  cmd->add_option("--branching-factor", o.branching_factor, "BIRCH: as for fit")->capture_default_str();
  cmd->add_option("--global", o.global, "BIRCH: ward|kmeans, as for fit")->capture_default_str();
  cmd->add_option("--max-subclusters", o.max_subclusters, "BIRCH: as for fit")->capture_default_str();
  cmd->add_option("--eps", o.eps, "DBSCAN: neighbourhood radius, as for fit");
  cmd->add_option("--min-samples", o.min_samples, "DBSCAN: min_samples on all rows; each re-fit uses it times --sample-fraction")->capture_default_str();
  cmd->add_option("--runs", o.runs, "re-fits R")->capture_default_str();
  cmd->add_option("--sample-fraction", o.sample_fraction, "rows per re-fit, a fraction in (0, 1]")->capture_default_str();
  cmd->add_option("-o,--output", o.output, "stability.json to write");
  cmd->add_option("--n-init", o.n_init, "restarts per fit")->capture_default_str();
  cmd->add_option("--init", o.init, "k-means++|scalable-k-means++|random")->capture_default_str();
  cmd->add_option("--refine", o.refine, "auto|none|swap, as for fit")->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed")->capture_default_str();
  cmd->add_option("--ari-threshold", o.ari_threshold, "stable needs mean ARI >= this")->capture_default_str();
  cmd->add_option("--jaccard-threshold", o.jaccard_threshold, "and every segment's mean and worst-run Jaccard >= this (Hennig: 0.75; <= 0.5 is dissolved)")->capture_default_str();
  add_common(cmd, o.common);
  return {cmd, [options] { return run_stability(*options); }};
}

}  // namespace segforge::cli
