// segforge refresh: refit a model on the current quarter's data from its own centres, match the
// new segments to the old so that survivors keep their index, name, description and outreach,
// and report what changed (MONIC transitions); the new model records its lineage.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <set>
#include <unordered_map>

#include "cli_common.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
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

struct RefreshOptions {
  Common common;
  std::string model, features, output, summary, labels, dictionary, old_labels;
  int k = 0;  // 0: the model's K (or the re-check's with --allow-k-change)
  int n_init = 0;
  int max_iter = 0;  // 0: 300 for Lloyd, 100 passes for mini-batch
  int batch_size = 1024;
  std::uint64_t seed = 0;
  bool recheck_k = false, allow_k_change = false, strict = false;
  double reach = 4.0;
  std::int64_t min_segment_size = 0;
};

std::string attribute(const Model& m, const std::string& key) {
  const auto it = m.attributes.find(key);
  return it == m.attributes.end() ? std::string() : it->second;
}

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string dictionary_beside(const std::string& model) {
  std::string base = model;
  for (const char* ext : {".h5", ".hdf5"})
    if (base.ends_with(ext)) base.resize(base.size() - std::string(ext).size());
  return base + ".segments.json";
}

/// The current data must be the model's columns, scaled as the model's data were.
void check_same_preparation(const Model& model, const std::string& model_path, const Features& f) {
  if (f.x.cols() != model.centroids.cols())
    throw InputError(where(f) + ": " + std::to_string(f.x.cols()) + " features, but the model " + model_path +
                     " has " + std::to_string(model.centroids.cols()) +
                     "; refresh on data prepared like the model's (segforge-prep ... --scaler-from TRAINING_FEATURES.h5)");
  for (std::size_t j = 0; j < model.feature_names.size(); ++j)
    if (f.feature_names[j] != model.feature_names[j])
      throw InputError(where(f) + ": column " + std::to_string(j) + " is '" + f.feature_names[j] + "' but the model " +
                       model_path + " expects '" + model.feature_names[j] +
                       "'; refresh on data prepared like the model's");
  if (!model.scaler.empty() && !f.scaler.empty()) {
    const std::string difference = scaler_difference(f.scaler, model.scaler, f.feature_names, "the model");
    if (!difference.empty())
      throw InputError(f.path + ":/scaler: scaled otherwise than the data of the model " + model_path + " (" +
                       difference + "); prepare the file with `segforge-prep ... --scaler-from TRAINING_FEATURES.h5`");
  } else if (model.scaler.empty() != f.scaler.empty()) {
    throw InputError(f.path + ":/scaler: " + (f.scaler.empty() ? "absent, but the model " + model_path + " has one"
                                                               : "present, but the model " + model_path + " has none") +
                     "; prepare the file like the model's data (segforge-prep ... --scaler-from TRAINING_FEATURES.h5)");
  }
}

json transitions_json(const std::vector<int>& segments) {
  json a = json::array();
  for (int s : segments) a.push_back(s);
  return a;
}

int run_refresh(const RefreshOptions& o) {
  Stopwatch total;
  OutputSet outputs;
  outputs.input(o.model, "model");
  outputs.input(o.features, "features");
  outputs.input(o.old_labels, "--old-labels");
  outputs.output(o.output, "-o", {".h5", ".hdf5"});
  if (!o.summary.empty()) outputs.output(o.summary, "--summary", {".json"});
  if (!o.labels.empty()) outputs.output(o.labels, "--labels", {".h5", ".csv"});
  const std::string dictionary = o.dictionary.empty() ? dictionary_beside(o.output) : o.dictionary;
  outputs.output(dictionary, "--dictionary", {".json"});
  if (!(o.reach > 0.0)) throw InputError("--reach " + std::to_string(o.reach) + ": must be > 0");

  const Model old = read_model(o.model);
  if (old.is_dbscan() || old.is_hierarchy())
    throw InputError(o.model + ": a " + (old.is_dbscan() ? std::string("DBSCAN") : old.attributes.count("algorithm") ? old.attributes.at("algorithm") : std::string("hierarchical")) +
                     " model; segforge refresh works on K-Means models so far: refit it on the new data (segforge fit)");
  const int k_old = static_cast<int>(old.centroids.rows());
  Features f = load(o.features, o.common);
  check_same_preparation(old, o.model, f);
  const std::int64_t n = f.n_rows_total, d = f.x.cols();
  const FeatureFileInfo info_file = inspect_features(f.path, f.dataset);
  const std::string algorithm_text = attribute(old, "algorithm").empty() ? "lloyd" : attribute(old, "algorithm");
  const Algorithm algorithm = parse_algorithm(algorithm_text);
  if (o.k < 0) throw InputError("-k " + std::to_string(o.k) + ": K must be at least 1");
  if (o.n_init < 0) throw InputError("--n-init " + std::to_string(o.n_init) + ": must be >= 0 (extra restarts)");

  auto backend = open_backend(o.common);
  auto data = open_data(*backend, f, o.common);
  ProgressLine line;
  // How the old centres fit the current data: the baseline a refit is measured against.
  const Assignment under_old = predict(*backend, *data, old.centroids.view());

  // Step 1: optionally re-check K around the old one with the sweep. The candidates are
  // K-1..K+1; K+2 is fitted too because the sweep's criteria never choose the top of their
  // range (a score still improving there has no answer), so K+1 could not win otherwise.
  int k_new = o.k > 0 ? o.k : k_old;
  json recheck = nullptr;
  if (o.recheck_k) {
    SweepParams sp;
    sp.k_min = std::max(1, k_old - 1);
    sp.k_max = static_cast<int>(std::min<std::int64_t>(k_old + 2, n));
    sp.lloyd.n_init = 3;
    sp.lloyd.seed = o.seed;
    sp.seed = o.seed;
    sp.min_segment_size = o.min_segment_size;
    if (n > 100000) sp.silhouette_sample = 20000;
    validate_sweep(sp, n, d, where(f));
    const SweepResult r = sweep(*backend, *data, sp, line.callback());
    line.finish();
    recheck = sweep_json(r);
    const int rk = r.recommended_k;
    const bool candidate = rk > 0 && rk != k_old && rk <= k_old + 1;
    if (candidate && o.allow_k_change && o.k == 0) k_new = rk;
    const std::string verdict =
        rk == 0 ? r.reason + "; keeping K = " + std::to_string(k_new)
        : rk == k_old ? "K = " + std::to_string(rk) + ", the model's"
        : !candidate ? "K = " + std::to_string(rk) + ", outside K-1..K+1; not applied (pass -k to refit with it)"
        : o.k > 0 ? "K = " + std::to_string(rk) + "; -k given, not applied"
        : o.allow_k_change ? "K = " + std::to_string(rk) + "; --allow-k-change: refitting with it"
                           : "K = " + std::to_string(rk) + "; pass --allow-k-change to refit with it";
    std::fprintf(stderr, "re-check of K (sweep over %d..%d): %s\n", sp.k_min, sp.k_max, verdict.c_str());
  }

  // Step 2: refit. With the old K: from the old centres (mini-batch: continuing with its
  // counts), plus --n-init k-means++ restarts; the lowest inertia wins, ties to the old centres.
  const int max_iter = o.max_iter > 0 ? o.max_iter : (algorithm == Algorithm::lloyd ? 300 : 100);
  auto fit = [&](InitParams ip, int n_init, std::vector<double> counts) {
    if (algorithm == Algorithm::lloyd) {
      LloydParams p;
      p.n_clusters = k_new;
      p.max_iter = max_iter;
      p.n_init = std::max(1, n_init);
      p.seed = o.seed;
      p.init = std::move(ip);
      validate(p, n, d, where(f));
      return fit_lloyd(*backend, *data, p, line.callback());
    }
    MiniBatchParams p;
    p.n_clusters = k_new;
    p.batch_size = o.batch_size;
    p.max_iter = max_iter;
    p.n_init = std::max(1, n_init);
    p.seed = o.seed;
    p.init = std::move(ip);
    p.counts = std::move(counts);
    validate(p, n, d, where(f));
    return fit_minibatch(*backend, *data, p, line.callback());
  };
  KMeansResult result;
  std::string init_text;
  if (k_new == k_old) {
    InitParams given;
    given.init = Init::given;
    given.centroids = old.centroids;
    std::vector<double> counts = old.counts;
    if (algorithm == Algorithm::minibatch && counts.empty()) counts.assign(static_cast<std::size_t>(k_old), 0.0);
    result = fit(std::move(given), 1, algorithm == Algorithm::minibatch ? counts : std::vector<double>{});
    init_text = algorithm == Algorithm::minibatch ? "continued" : "refresh";
    if (o.n_init > 0) {
      KMeansResult fresh = fit(InitParams{}, o.n_init, {});
      if (fresh.inertia < result.inertia) {
        result = std::move(fresh);
        init_text = "k-means++";
      }
    }
  } else {
    result = fit(InitParams{}, std::max(3, o.n_init), {});
    init_text = "k-means++";
  }
  line.finish();
  const Assignment fitted = predict(*backend, *data, result.centroids.view());

  // Step 3: who is whom. Overlap of the current rows under the old centres (a row farther from
  // every old centre than --reach times the old model's mean squared distance belongs to no old
  // segment) with the refit's; Hungarian pairs on centroid distance.
  std::vector<std::int32_t> old_labels = under_old.labels;
  double reach_sq = std::numeric_limits<double>::infinity();
  std::int64_t n_old = 0;
  for (auto s : old.segment_sizes) n_old += s;
  const std::string old_inertia = attribute(old, "inertia");
  if (n_old > 0 && !old_inertia.empty()) {
    const double mean_sq = std::strtod(old_inertia.c_str(), nullptr) / static_cast<double>(n_old);
    if (std::isfinite(mean_sq) && mean_sq > 0) reach_sq = o.reach * mean_sq;
  }
  std::int64_t outside = 0;
  for (std::size_t r = 0; r < old_labels.size(); ++r)
    if (under_old.sq_distances[r] > reach_sq) {
      old_labels[r] = -1;
      ++outside;
    }
  const std::vector<double> cost = squared_centroid_distances(old.centroids.view(), result.centroids.view());
  std::int64_t shared_ids = -1;
  if (!o.old_labels.empty()) {
    // Member overlap where ids match: the old run's label of each current row whose id it had.
    const std::vector<std::int32_t> before = read_labels(o.old_labels);
    const Ids before_ids = read_label_ids(o.old_labels);
    if (before_ids.empty())
      throw InputError("--old-labels " + o.old_labels + ": no /ids; pass the labels.h5 that fit --labels wrote for ids");
    if (f.ids.empty())
      throw InputError(where(f) + ": no /ids to match with --old-labels " + o.old_labels + "; prepare the file with ids");
    const int labelled_k = validate_labels(before, static_cast<std::int64_t>(before.size()), o.old_labels);
    if (labelled_k > k_old)
      throw InputError("--old-labels " + o.old_labels + ": segment " + std::to_string(labelled_k - 1) +
                       " but the model " + o.model + " has K=" + std::to_string(k_old) + "; pass the labels of this model");
    std::unordered_map<std::string, std::int32_t> label_of;
    for (std::int64_t r = 0; r < before_ids.size(); ++r) label_of.emplace(before_ids.str(r), before[r]);
    shared_ids = 0;
    for (std::size_t r = 0; r < old_labels.size(); ++r) {
      const auto it = label_of.find(f.ids.str(static_cast<std::int64_t>(r)));
      old_labels[r] = it == label_of.end() ? -1 : it->second;
      shared_ids += it != label_of.end();
    }
    if (shared_ids == 0)
      throw InputError("--old-labels " + o.old_labels + ": none of its ids is in " + where(f) +
                       "; pass the labels of the model's own run, or leave --old-labels out");
  }
  const Matrix<std::int64_t> overlap = overlap_counts(old_labels, k_old, fitted.labels, k_new);
  std::vector<double> pairing = cost;  // with ids: the Hungarian pairs maximise shared members
  if (shared_ids >= 0)
    for (int i = 0; i < k_old; ++i)
      for (int j = 0; j < k_new; ++j) pairing[static_cast<std::size_t>(i) * k_new + j] = -static_cast<double>(overlap(i, j));
  const SegmentMatch match = match_segments(pairing, overlap);

  // Step 4: the refreshed model, matched segments at their old index.
  Matrix<float> centroids(k_new, d);
  std::vector<double> counts;
  for (int s = 0; s < k_new; ++s) {
    const int j = match.order[s];
    std::copy(result.centroids.row(j), result.centroids.row(j) + d, centroids.row(s));
    if (!result.counts.empty()) counts.push_back(result.counts[j]);
  }
  const Assignment assignment = predict(*backend, *data, centroids.view());
  const std::vector<std::int64_t> sizes = sizes_of(assignment.labels, k_new);
  const std::vector<SegmentProfile> profiles =
      segment_profiles(centroids.view(), sizes, backend->column_stats(*data), old.scaler.empty() ? f.scaler : old.scaler);
  const std::string old_audience = attribute(old, "audience");
  const Audience audience = resolve_audience(Audience::automatic, old_audience.empty() ? f.audience : old_audience,
                                             f.feature_names);
  const std::vector<FeatureRole> roles =
      feature_roles(f.feature_names, !old.feature_roles.empty() ? old.feature_roles : f.feature_roles);
  std::vector<SegmentEntry> entries = name_segments(profiles, f.feature_names, roles, audience);
  std::set<std::string> used;
  for (int s = 0; s < k_new; ++s) {
    const int p = match.parent[s];
    if (p < 0) continue;
    if (p < static_cast<int>(old.segment_names.size())) entries[s].name = old.segment_names[p];
    if (p < static_cast<int>(old.segment_descriptions.size())) entries[s].description = old.segment_descriptions[p];
    if (p < static_cast<int>(old.segment_outreach.size())) entries[s].outreach = old.segment_outreach[p];
    used.insert(entries[s].name);
  }
  for (int s = 0; s < k_new; ++s) {  // new names may not take a surviving segment's
    if (match.parent[s] >= 0) continue;
    const std::string base = entries[s].name;
    for (int copy = 2; used.count(entries[s].name) > 0; ++copy) entries[s].name = base + " " + std::to_string(copy);
    used.insert(entries[s].name);
  }
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);

  // Step 5: data sufficiency (an error with --strict, before anything is written).
  SufficiencyInput guard;
  guard.n_samples = n;
  guard.history_days = history_days_attribute(info_file.attributes);
  guard.sizes = sizes;
  guard.names = names;
  guard.min_segment_size = o.min_segment_size;
  const std::vector<std::string> warnings = sufficiency_warnings(guard);
  if (o.strict && !warnings.empty()) throw InputError(where(f) + ": " + warnings.front() + " (--strict)");

  std::vector<std::string> old_names = old.segment_names;
  for (int i = static_cast<int>(old_names.size()); i < k_old; ++i) old_names.push_back("segment " + std::to_string(i));
  std::vector<std::string> survived, split, absorbed, dissolved, emerged;
  for (int i = 0; i < k_old; ++i) {
    auto list = [&](const std::vector<int>& v) {
      std::string t;
      for (int s : v) t += (t.empty() ? "" : ", ") + std::to_string(s);
      return t;
    };
    switch (match.old_transition[i]) {
      case Transition::survived: survived.push_back(std::to_string(i)); break;
      case Transition::split: split.push_back(std::to_string(i) + " -> " + list(match.old_to[i])); break;
      case Transition::absorbed: absorbed.push_back(std::to_string(i) + " -> " + list(match.old_to[i])); break;
      default: dissolved.push_back(std::to_string(i)); break;
    }
  }
  for (int s = 0; s < k_new; ++s)
    if (match.new_transition[s] == Transition::emerged) emerged.push_back(std::to_string(s));
  auto joined = [](const std::vector<std::string>& v) {
    std::string t;
    for (const auto& x : v) t += (t.empty() ? "" : "; ") + x;
    return t;
  };
  std::string changes = "k " + std::to_string(k_old) + " -> " + std::to_string(k_new) + "; survived " +
                        std::to_string(survived.size());
  if (!split.empty()) changes += "; split " + joined(split);
  if (!absorbed.empty()) changes += "; absorbed " + joined(absorbed);
  if (!dissolved.empty()) changes += "; dissolved " + joined(dissolved);
  if (!emerged.empty()) changes += "; emerged " + joined(emerged);

  const BackendInfo info = backend->info();
  Model model;
  model.centroids = centroids;
  model.feature_names = f.feature_names;
  model.feature_roles = feature_role_names(roles);
  model.scaler = old.scaler.empty() ? f.scaler : old.scaler;
  model.counts = algorithm == Algorithm::minibatch ? counts : std::vector<double>{};
  set_segments(model, profiles, entries, sizes);
  for (int c = 0; c < k_new; ++c) {
    model.segment_parent.push_back(match.parent[c]);
    model.segment_transition.push_back(transition_name(match.new_transition[c]));
  }
  const std::string refreshed_at = utc_now();
  const std::string depth = attribute(old, "lineage_depth");
  model.attributes = fit_attributes({algorithm_name(algorithm), init_text, k_new, o.n_init, result.n_iter, o.seed,
                                     result.converged, result.inertia},
                                    info, f, audience);
  // Lineage (docs/formats.md): the parent model and what changed.
  const std::map<std::string, std::string> lineage = {
      {"parent_checksum", old.checksum},
      {"parent_file", o.model},
      {"parent_input_checksum", attribute(old, "input_checksum")},
      {"parent_refreshed_at", attribute(old, "refreshed_at")},
      {"refreshed_at", refreshed_at},
      {"lineage_depth", std::to_string(depth.empty() ? 1 : std::atoi(depth.c_str()) + 1)},
      {"changes", changes}};
  model.attributes.insert(lineage.begin(), lineage.end());
  if (const auto as_of = info_file.attributes.find("as_of"); as_of != info_file.attributes.end())
    model.attributes["input_as_of"] = as_of->second;

  json s = json_output("segforge-refresh");
  s["parent_model"] = o.model;
  s["parent_checksum"] = old.checksum;
  s["model"] = o.output;
  s["features"] = f.path;
  s["refreshed_at"] = refreshed_at;
  s["n_samples"] = n;
  s["k_old"] = k_old;
  s["k_new"] = k_new;
  s["recheck_k"] = recheck;
  s["algorithm"] = algorithm_name(algorithm);
  s["init"] = init_text;
  s["inertia_old_centres"] = under_old.inertia;
  s["inertia"] = result.inertia;
  s["n_iter"] = result.n_iter;
  s["converged"] = result.converged;
  if (shared_ids >= 0) {
    s["matching"] = "hungarian on member overlap of the ids in --old-labels";
    s["old_labels"] = o.old_labels;
    s["shared_ids"] = shared_ids;
  } else {
    s["matching"] = "hungarian on squared centroid distance; overlap of the current rows under the old and new centres";
    s["reach"] = o.reach;
    s["rows_outside_old_segments"] = outside;
  }
  json segs = json::array();
  for (int c = 0; c < k_new; ++c) {
    const int p = match.parent[c];
    json e = {{"segment", c},
              {"name", names[c]},
              {"transition", transition_name(match.new_transition[c])},
              {"parent", p >= 0 ? json(p) : json(nullptr)},
              {"from", transitions_json(match.new_from[c])},
              {"size", sizes[c]},
              {"share", profiles[c].share}};
    if (p >= 0) {
      e["parent_share"] = p < static_cast<int>(old.segment_shares.size()) ? json(old.segment_shares[p]) : json(nullptr);
      e["centre_shift"] = std::sqrt(cost[static_cast<std::size_t>(p) * k_new + match.order[c]]);
    }
    segs.push_back(e);
  }
  s["segments"] = segs;
  json olds = json::array();
  for (int i = 0; i < k_old; ++i) {
    json e = {{"segment", i},
              {"name", old_names[i]},
              {"transition", transition_name(match.old_transition[i])},
              {"to", transitions_json(match.old_to[i])},
              {"rows_now", under_old.labels.empty() ? 0 : std::count(under_old.labels.begin(), under_old.labels.end(), i)}};
    json row = json::array();
    for (int c = 0; c < k_new; ++c) row.push_back(match.overlap(i, c));
    e["overlap"] = row;
    olds.push_back(e);
  }
  s["old_segments"] = olds;
  s["changes"] = changes;
  s["warnings"] = warnings;
  s["timings"] = {{"total", total.seconds()}};

  if (!output_rank()) return 0;
  write_model(o.output, model);
  if (!o.labels.empty()) write_labels(o.labels, assignment, f.ids, names);
  write_segment_dictionary(dictionary, o.output, n, profiles, f.feature_names, entries);
  if (!o.summary.empty()) write_text_atomic(o.summary, s.dump(2) + "\n");
  outputs.commit();

  std::fprintf(stderr, "refreshed %s on %lld rows: K %d -> %d, inertia %.6g (old centres %.6g), %d iterations\n",
               o.model.c_str(), static_cast<long long>(n), k_old, k_new, result.inertia, under_old.inertia,
               result.n_iter);
  for (int c = 0; c < k_new; ++c) {
    const int p = match.parent[c];
    std::string was;
    if (p >= 0) {  // how far it moved: the share then and now, the centre's shift (model units)
      char detail[96];
      const double before = p < static_cast<int>(old.segment_shares.size()) ? old.segment_shares[p] : std::nan("");
      std::snprintf(detail, sizeof detail, "; share %.1f%% -> %.1f%%, centre moved %.3g", 100.0 * before,
                    100.0 * profiles[c].share, std::sqrt(cost[static_cast<std::size_t>(p) * k_new + match.order[c]]));
      was = "(was " + std::to_string(p) + " " + old_names[p] + detail + ")";
    }
    std::fprintf(stderr, "  %d  %-40s %-11s %s\n", c, names[c].c_str(), transition_name(match.new_transition[c]).c_str(),
                 was.c_str());
  }
  for (int i = 0; i < k_old; ++i)
    if (match.old_transition[i] != Transition::survived)
      std::fprintf(stderr, "  old %d %s: %s\n", i, old_names[i].c_str(), transition_name(match.old_transition[i]).c_str());
  for (const auto& w : warnings) std::fprintf(stderr, "segforge: warning: %s\n", w.c_str());
  std::fprintf(stderr, "changes: %s\n", changes.c_str());
  return 0;
}

}  // namespace

Command add_refresh_command(CLI::App& parent) {
  auto options = std::make_shared<RefreshOptions>();
  RefreshOptions& o = *options;
  auto* cmd = parent.add_subcommand("refresh", "Refit a model on current data, keeping the names of surviving segments");
  cmd->add_option("model", o.model, "model.h5 to refresh")->required();
  cmd->add_option("features", o.features, "current features.h5, prepared with --scaler-from the model's data")->required();
  cmd->add_option("-o,--output", o.output, "new model.h5 to write")->required();
  cmd->add_option("--summary", o.summary, "refresh.json to write: transitions, shares, lineage");
  cmd->add_option("--labels", o.labels, "labels.h5 or segments.csv of the current rows to write");
  cmd->add_option("--dictionary", o.dictionary, "segment dictionary to write (default: <new model>.segments.json)");
  cmd->add_option("--old-labels", o.old_labels, "labels.h5 of the model's run (with /ids): match segments by shared members");
  cmd->add_option("-k,--k", o.k, "refit with this K (default: the model's)");
  cmd->add_option("--n-init", o.n_init, "extra k-means++ restarts beside the old centres; the lowest inertia wins")->capture_default_str();
  cmd->add_option("--max-iter", o.max_iter, "iterations (Lloyd: 300; mini-batch: passes, 100)");
  cmd->add_option("--batch-size", o.batch_size, "mini-batch rows")->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed")->capture_default_str();
  cmd->add_flag("--recheck-k", o.recheck_k, "sweep K over the model's K-1..K+1 and report the recommendation");
  cmd->add_flag("--allow-k-change", o.allow_k_change, "with --recheck-k: refit with the recommended K");
  cmd->add_option("--reach", o.reach, "a row farther from every old centre than this times the old mean squared distance belongs to no old segment")->capture_default_str();
  cmd->add_option("--min-segment-size", o.min_segment_size, "warn below this many rows (0: 1% of N, at least 20, at most 1000)")->capture_default_str();
  cmd->add_flag("--strict", o.strict, "data-sufficiency warnings (< 500 rows, < 2 years, small segments) are errors");
  add_common(cmd, o.common);
  return {cmd, [options] { return run_refresh(*options); }};
}

}  // namespace segforge::cli
