// segforge dbscan-eps: the sorted k-distance curve of a sample (Ester et al. 1996, §4.2), its
// knee as `fit --eps auto` takes it, and the curve as JSON for the report's chart.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>

#include "cli_common.hpp"
#include "segforge/dbscan.hpp"
#include "segforge/error.hpp"
#include "segforge/number_format.hpp"
#include "segforge/outputs.hpp"

namespace segforge::cli {
namespace {

struct EpsOptions {
  Common common;
  std::string features, output;
  int min_samples = 5;
  std::int64_t sample = 2000;
  std::uint64_t seed = 0;
};

int run_dbscan_eps(const EpsOptions& o) {
  OutputSet outputs;
  outputs.input(o.features, "features");
  if (!o.output.empty()) outputs.output(o.output, "-o", {".json"});
  if (o.min_samples < 1)
    throw InputError("--min-samples " + std::to_string(o.min_samples) + ": must be at least 1 (the row itself counts)");
  if (o.sample < 10) throw InputError("--sample " + std::to_string(o.sample) + ": use at least 10 rows");
  auto backend = open_backend(o.common);
  Features f = load(o.features, o.common);
  if (f.disk_rows > 0 || f.x.rows() != f.n_rows_total)
    throw InputError(where(f) + ": the k-distance curve compares the sample with every row in memory; raise "
                     "--memory-budget, and run it without mpirun");
  auto data = open_data(*backend, f, o.common);
  const EpsSuggestion s = suggest_eps(*backend, *data, o.min_samples, o.sample, o.seed);
  const std::size_t m = s.curve.size();
  std::printf("k-distance curve of %zu rows (k = min_samples = %d, distance to the k-th nearest row, the row itself first)\n",
              m, o.min_samples);
  std::printf("  %10s %14s\n", "percentile", "k-distance");
  for (double q : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0}) {
    const auto at = static_cast<std::size_t>(std::llround(q * static_cast<double>(m - 1)));
    std::printf("  %9.0f%% %14s\n", 100.0 * q, analyst_number(s.curve[at]).c_str());
  }
  const double share = static_cast<double>(s.index) / static_cast<double>(m > 1 ? m - 1 : 1);
  std::printf("suggested eps: %s (%s, at %.0f%% of the curve: about %.0f%% of the rows would have fewer than %d rows "
              "within it)\n",
              analyst_number(s.eps).c_str(), s.knee_found ? "the knee" : "no knee: the 90th percentile", 100.0 * share,
              100.0 * (1.0 - share), o.min_samples);
  std::printf("next: segforge fit %s --algorithm dbscan --eps %s --min-samples %d -o model.h5\n", o.features.c_str(),
              analyst_number(s.eps).c_str(), o.min_samples);
  if (!o.output.empty()) {
    json j = eps_curve_json(s, o.min_samples, f.n_rows_total, o.seed);
    j["input_file"] = f.path;
    write_text_atomic(o.output, j.dump(2) + "\n");
    outputs.commit();
  }
  return 0;
}

}  // namespace

json eps_curve_json(const EpsSuggestion& s, int min_samples, std::int64_t n_samples, std::uint64_t seed) {
  json j = json_output("segforge-dbscan-eps");
  j["min_samples"] = min_samples;
  j["n_samples"] = n_samples;
  j["sample_size"] = s.curve.size();
  j["seed"] = seed;
  j["eps"] = s.eps;
  j["knee_found"] = s.knee_found;
  j["index"] = s.index;
  j["curve"] = s.curve;
  return j;
}

EpsSuggestion eps_curve_from_json(const json& j, const std::string& path, int* min_samples) {
  EpsSuggestion s;
  try {
    if (j.value("format", "") != "segforge-dbscan-eps")
      throw InputError(path + ": not a k-distance file (format is not 'segforge-dbscan-eps'); pass the -o of segforge dbscan-eps");
    *min_samples = j.at("min_samples").get<int>();
    s.eps = j.at("eps").get<double>();
    s.knee_found = j.at("knee_found").get<bool>();
    s.index = j.at("index").get<std::int64_t>();
    s.curve = j.at("curve").get<std::vector<double>>();
  } catch (const json::exception& e) {
    throw InputError(path + ": not a valid k-distance file (" + e.what() + "); pass the -o of segforge dbscan-eps");
  }
  bool sorted = !s.curve.empty();
  for (std::size_t i = 0; i < s.curve.size() && sorted; ++i)
    sorted = std::isfinite(s.curve[i]) && s.curve[i] >= 0.0 && (i == 0 || s.curve[i] >= s.curve[i - 1]);
  if (!sorted || s.index < 0 || s.index >= static_cast<std::int64_t>(s.curve.size()) || !(s.eps > 0.0) || *min_samples < 1)
    throw InputError(path + ": not a valid k-distance file (the curve must be finite, non-negative and ascending, "
                     "with eps and its index on it); pass the -o of segforge dbscan-eps");
  return s;
}

Command add_dbscan_eps_command(CLI::App& parent) {
  auto options = std::make_shared<EpsOptions>();
  EpsOptions& o = *options;
  auto* cmd = parent.add_subcommand("dbscan-eps", "The k-distance curve for choosing DBSCAN's eps, and its knee");
  cmd->add_option("features", o.features, "features.h5")->required();
  cmd->add_option("--min-samples", o.min_samples, "DBSCAN's min_samples (k of the k-distance)")->capture_default_str();
  cmd->add_option("--sample", o.sample, "rows sampled for the curve (each against every row)")->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of the sample")->capture_default_str();
  cmd->add_option("-o,--output", o.output, "the curve as JSON (segforge report --dbscan-eps draws it)");
  add_common(cmd, o.common);
  return {cmd, [options] { return run_dbscan_eps(*options); }};
}

}  // namespace segforge::cli
