// segforge sweep: fit K = a..b on one upload of the data, score each K, recommend one.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <sstream>

#include "cli_common.hpp"
#include "segforge/outputs.hpp"
#include "segforge/agglomerative.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/select.hpp"

namespace segforge::cli {

namespace {

json optional_number(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? json(*v) : json(nullptr);
}

std::optional<double> number_or_none(const json& record, const char* key) {
  if (!record.contains(key) || record[key].is_null()) return std::nullopt;
  return record[key].get<double>();
}

struct SweepOptions {
  Common common;
  std::string features, output;
  std::string k = "2:20";
  int n_init = 3;
  std::string criteria = "elbow,silhouette,gap,db,ch";
  int gap_refs = 10;
  std::int64_t gap_rows = 0;
  std::string silhouette = "auto";
  std::string init = "k-means++";
  std::string refine = "auto";
  int max_iter = 300;
  double tol = 1e-4;
  std::uint64_t seed = 0;
  std::int64_t min_segment_size = 0;
  double sensitivity = 1.0;
  std::string algorithm = "k-means";  // or agglomerative: every K a cut of one tree
  std::string linkage = "ward";
};

std::pair<int, int> parse_k_range(const std::string& text) {
  auto number = [&](const std::string& part) {
    std::size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size())
      throw InputError("--k " + text + ": not a range; write LOW:HIGH, e.g. --k 2:20");
    return v;
  };
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    const int k = number(text);
    return {k, k};
  }
  return {number(text.substr(0, colon)), number(text.substr(colon + 1))};
}

std::string cell(const std::optional<double>& v, const char* format) {
  if (!v || !std::isfinite(*v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, *v);
  return buf;
}

int run_sweep(const SweepOptions& o) {
  Stopwatch total;
  OutputSet outputs;
  outputs.input(o.features, "features");
  if (!o.output.empty()) outputs.output(o.output, "-o", {".json"});
  SweepParams p;
  std::tie(p.k_min, p.k_max) = parse_k_range(o.k);
  p.criteria = parse_criteria(o.criteria);
  p.gap_references = o.gap_refs;
  p.gap_reference_rows = o.gap_rows;
  p.min_segment_size = o.min_segment_size;
  p.kneedle_sensitivity = o.sensitivity;
  p.seed = o.seed;
  std::string centres_file;
  p.lloyd.init.init = parse_init(o.init, &centres_file);
  if (p.lloyd.init.init == Init::given)
    throw InputError("--init " + o.init + ": a sweep seeds every K itself; use k-means++, scalable-k-means++ or random");
  p.lloyd.n_init = o.n_init;
  p.lloyd.max_iter = o.max_iter;
  p.lloyd.tol = o.tol;
  p.lloyd.seed = o.seed;
  p.lloyd.refine = parse_refine(o.refine);
  const SilhouetteSpec spec = parse_silhouette(o.silhouette);
  if (o.algorithm == "agglomerative") {
    AgglomerativeParams a;
    a.linkage = parse_linkage(o.linkage);
    a.seed = o.seed;
    p.agglomerative = a;
  } else if (o.algorithm != "k-means" && o.algorithm != "lloyd") {
    throw InputError("--algorithm " + o.algorithm + ": use k-means (the default) or agglomerative (every K a cut of one tree)");
  }
  auto backend = open_backend(o.common);

  Features f = load(o.features, o.common);
  if (p.agglomerative && (f.disk_rows > 0 || f.x.rows() != f.n_rows_total))
    throw InputError(where(f) + ": an agglomerative sweep runs in one process with every row in memory; raise "
                     "--memory-budget, and run it without mpirun");
  const std::int64_t n = f.n_rows_total;  // all ranks' rows under MPI
  validate_sweep(p, n, f.x.cols(), where(f));
  // Silhouette: exact up to 100 000 rows (the default), else a 20 000-row sample.
  if (spec.mode == SilhouetteSpec::Mode::sample) p.silhouette_sample = spec.sample_size;
  if (spec.mode == SilhouetteSpec::Mode::auto_select && n > 100000) p.silhouette_sample = 20000;
  if (spec.mode == SilhouetteSpec::Mode::none)
    std::erase(p.criteria, Criterion::silhouette);

  auto data = open_data(*backend, f, o.common);
  ProgressLine line;
  const SweepResult r = sweep(*backend, *data, p, line.callback());
  line.finish();
  if (!output_rank()) return 0;  // under MPI rank 0 prints and writes

  // The table (stdout), then the recommendation.
  std::printf("%4s %14s %10s %9s %9s %11s %9s %9s %s\n", "K", "inertia", "silhouette", "DB", "CH",
              "gap", "gap_s", "smallest", "");
  for (const auto& rec : r.records)
    std::printf("%4d %14.6g %10s %9s %9s %11s %9s %9lld %s\n", rec.k, rec.inertia,
                cell(rec.silhouette, "%.4f").c_str(), cell(rec.davies_bouldin, "%.4f").c_str(),
                cell(rec.calinski_harabasz, "%.4g").c_str(), cell(rec.gap, "%.4f").c_str(),
                cell(rec.gap_s, "%.4f").c_str(), static_cast<long long>(rec.smallest_segment),
                rec.over_segmented ? "over-segmented" : "");
  for (const auto& c : r.choices)
    std::printf("  %-18s %s  (%s)\n", criterion_name(c.criterion).c_str(),
                c.k ? ("K=" + std::to_string(*c.k)).c_str() : "-", c.note.c_str());
  if (r.recommended_k > 0)
    std::printf("recommended K = %d\n  reason: %s\n", r.recommended_k, r.reason.c_str());
  else
    std::printf("no recommendation: %s\n", r.reason.c_str());
  for (const auto& w : r.warnings) std::fprintf(stderr, "segforge: warning: %s\n", w.c_str());

  if (!o.output.empty()) {
    json j = sweep_json(r);
    const BackendInfo info = backend->info();
    j["k_min"] = p.k_min;
    j["k_max"] = p.k_max;
    j["algorithm"] = p.agglomerative ? "agglomerative" : "k-means";
    if (p.agglomerative) j["linkage"] = o.linkage;
    j["n_init"] = p.lloyd.n_init;
    j["init"] = init_name(p.lloyd.init.init);
    j["seed"] = o.seed;
    j["backend"] = info.name;
    j["device"] = info.device;
    j["input_file"] = f.path;
    j["input_checksum"] = f.checksum;
    j["timings"] = {{"sweep", r.seconds}, {"total", total.seconds()}};
    write_text_atomic(o.output, j.dump(2) + "\n");
    outputs.commit();
    std::fprintf(stderr, "wrote %s\n", o.output.c_str());
  }
  return 0;
}

}  // namespace

std::vector<Criterion> parse_criteria(const std::string& text) {
  std::vector<Criterion> out;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    Criterion c;
    if (item == "elbow" || item == "kneedle") c = Criterion::elbow;
    else if (item == "silhouette") c = Criterion::silhouette;
    else if (item == "gap") c = Criterion::gap;
    else if (item == "db" || item == "davies_bouldin") c = Criterion::davies_bouldin;
    else if (item == "ch" || item == "calinski_harabasz") c = Criterion::calinski_harabasz;
    else
      throw InputError("--criteria " + text + ": unknown criterion '" + item +
                       "'; use a comma-separated list of elbow, silhouette, gap, db, ch");
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  if (out.empty()) throw InputError("--criteria: empty; use e.g. elbow,silhouette,gap,db,ch");
  return out;
}

json sweep_json(const SweepResult& r) {
  json j = json_output("segforge-sweep");
  j["recommended_k"] = r.recommended_k;
  j["reason"] = r.reason;
  j["warnings"] = r.warnings;
  json criteria = json::object();
  for (const auto& c : r.choices)
    criteria[criterion_name(c.criterion)] = {{"k", c.k ? json(*c.k) : json(nullptr)}, {"note", c.note}};
  j["criteria"] = criteria;
  j["n_samples"] = r.n_samples;
  j["n_features"] = r.n_features;
  j["min_segment_size"] = r.min_segment_size;
  j["silhouette_method"] = r.silhouette_method;
  j["gap_references"] = r.gap_references;
  j["gap_reference_rows"] = r.gap_reference_rows;
  json records = json::array();
  for (const auto& rec : r.records) {
    json x;
    x["k"] = rec.k;
    x["inertia"] = rec.inertia;
    x["n_iter"] = rec.n_iter;
    x["converged"] = rec.converged;
    x["sizes"] = rec.sizes;
    x["smallest_segment"] = rec.smallest_segment;
    x["over_segmented"] = rec.over_segmented;
    x["silhouette"] = optional_number(rec.silhouette);
    x["silhouette_standard_error"] = optional_number(rec.silhouette_standard_error);
    x["davies_bouldin"] = optional_number(rec.davies_bouldin);
    x["calinski_harabasz"] = optional_number(rec.calinski_harabasz);
    x["gap"] = optional_number(rec.gap);
    x["gap_s"] = optional_number(rec.gap_s);
    x["log_w"] = optional_number(rec.log_w);
    x["log_w_ref_mean"] = optional_number(rec.log_w_ref_mean);
    x["kneedle_difference"] = optional_number(rec.kneedle_difference);
    x["seconds"] = rec.seconds;
    records.push_back(std::move(x));
  }
  j["records"] = records;
  return j;
}

SweepResult sweep_from_json(const json& j, const std::string& path) {
  SweepResult r;
  try {
    if (j.value("format", "") != "segforge-sweep")
      throw InputError(path + ": not a sweep file (format is not 'segforge-sweep'); pass the -o of segforge sweep");
    r.recommended_k = j.at("recommended_k").get<int>();
    r.reason = j.at("reason").get<std::string>();
    r.warnings = j.value("warnings", std::vector<std::string>{});
    r.n_samples = j.value("n_samples", std::int64_t{0});
    r.n_features = j.value("n_features", std::int64_t{0});
    r.min_segment_size = j.value("min_segment_size", std::int64_t{0});
    r.silhouette_method = j.value("silhouette_method", "");
    r.gap_references = j.value("gap_references", 0);
    for (const auto& [name, c] : j.at("criteria").items()) {
      CriterionChoice choice{parse_criteria(name).front(), std::nullopt, c.value("note", "")};
      if (!c.at("k").is_null()) choice.k = c.at("k").get<int>();
      r.choices.push_back(choice);
    }
    for (const auto& x : j.at("records")) {
      SweepRecord rec;
      rec.k = x.at("k").get<int>();
      rec.inertia = x.at("inertia").get<double>();
      rec.n_iter = x.value("n_iter", 0);
      rec.converged = x.value("converged", false);
      rec.sizes = x.value("sizes", std::vector<std::int64_t>{});
      rec.smallest_segment = x.value("smallest_segment", std::int64_t{0});
      rec.over_segmented = x.value("over_segmented", false);
      rec.silhouette = number_or_none(x, "silhouette");
      rec.silhouette_standard_error = number_or_none(x, "silhouette_standard_error");
      rec.davies_bouldin = number_or_none(x, "davies_bouldin");
      rec.calinski_harabasz = number_or_none(x, "calinski_harabasz");
      rec.gap = number_or_none(x, "gap");
      rec.gap_s = number_or_none(x, "gap_s");
      rec.log_w = number_or_none(x, "log_w");
      rec.log_w_ref_mean = number_or_none(x, "log_w_ref_mean");
      rec.kneedle_difference = number_or_none(x, "kneedle_difference");
      rec.seconds = x.value("seconds", 0.0);
      r.records.push_back(std::move(rec));
    }
  } catch (const json::exception& e) {
    throw InputError(path + ": not a valid sweep file (" + e.what() + "); pass the -o of segforge sweep");
  }
  return r;
}

Command add_sweep_command(CLI::App& parent) {
  auto options = std::make_shared<SweepOptions>();
  SweepOptions& o = *options;
  auto* cmd = parent.add_subcommand("sweep", "Fit a range of K and recommend one (elbow, silhouette, gap, DB, CH)");
  cmd->add_option("features", o.features, "features.h5")->required();
  cmd->add_option("--k", o.k, "range of K, LOW:HIGH (K = 1 allowed: the gap statistic can choose it)")->capture_default_str();
  cmd->add_option("-o,--output", o.output, "sweep.json to write");
  cmd->add_option("--n-init", o.n_init, "restarts per K; the lowest inertia wins")->capture_default_str();
  cmd->add_option("--algorithm", o.algorithm, "k-means, or agglomerative (one tree, every K a cut of it)")->capture_default_str();
  cmd->add_option("--linkage", o.linkage, "agglomerative: ward|complete|average|single")->capture_default_str();
  cmd->add_option("--criteria", o.criteria, "comma-separated: elbow,silhouette,gap,db,ch")->capture_default_str();
  cmd->add_option("--gap-refs", o.gap_refs, "gap statistic: reference sets B")->capture_default_str();
  cmd->add_option("--gap-rows", o.gap_rows, "gap statistic: rows per reference set (0: min(N, 10000))")->capture_default_str();
  cmd->add_option("--silhouette", o.silhouette, "auto|exact|sample=N|none (auto: exact up to 100 000 rows, else sample=20000)")->capture_default_str();
  cmd->add_option("--init", o.init, "k-means++|scalable-k-means++|random")->capture_default_str();
  cmd->add_option("--refine", o.refine, "auto|none|swap, as for fit")->capture_default_str();
  cmd->add_option("--max-iter", o.max_iter, "Lloyd iterations per run")->capture_default_str();
  cmd->add_option("--tol", o.tol, "relative tolerance, as for fit")->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed (each K's fit uses it, as segforge fit --seed)")->capture_default_str();
  cmd->add_option("--min-segment-size", o.min_segment_size, "K with a smaller segment is over-segmented and never recommended (0: 1% of N, at least 20, at most 1000)")->capture_default_str();
  cmd->add_option("--kneedle-sensitivity", o.sensitivity, "Kneedle's S")->capture_default_str();
  add_common(cmd, o.common);
  add_sample_weight(cmd, o.common);
  return {cmd, [options] { return run_sweep(*options); }};
}

}  // namespace segforge::cli
