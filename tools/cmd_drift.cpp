// segforge drift: how far the current data have moved from the reference under a model — per
// feature (PSI, KS, mean shift), per segment (shares, distances, a refit from the centres), the
// migration of the ids in both files — and one verdict, stable / watch / refresh (docs/drift.md).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "cli_common.hpp"
#include "segforge/drift.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/outputs.hpp"

namespace segforge::cli {

namespace {

/// `--fail-on`: the exit status of a verdict at or above the level asked for. Not 1 or 2 (those
/// are failures and bad input): a scheduler can tell "the data moved" from "the run broke".
constexpr int kExitWatch = 4;
constexpr int kExitRefresh = 5;

struct DriftOptions {
  Common common;
  std::string model, reference, current, output, fail_on;
  DriftParams params;
};

DriftLevel parse_level(const std::string& text) {
  if (text == "watch") return DriftLevel::watch;
  if (text == "refresh") return DriftLevel::refresh;
  throw InputError("--fail-on " + text + ": use watch or refresh");
}

void check_params(const DriftParams& p) {
  if (p.n_bins < 2 || p.n_bins > 1000) throw InputError("--bins " + std::to_string(p.n_bins) + ": use 2 to 1000 bins");
  if (!(p.epsilon > 0.0 && p.epsilon <= 0.01))
    throw InputError("--epsilon " + std::to_string(p.epsilon) + ": use a share in (0, 0.01] (default 1e-4)");
  if (p.min_segment_rows < 1) throw InputError("--min-segment-rows must be at least 1");
  const DriftThresholds& t = p.thresholds;
  const struct {
    const char* name;
    double watch, refresh;
  } pairs[] = {{"--psi", t.feature_psi_watch, t.feature_psi_refresh},
               {"--share-psi", t.share_psi_watch, t.share_psi_refresh},
               {"--distance", t.distance_watch, t.distance_refresh},
               {"--refit", t.refit_watch, t.refit_refresh},
               {"--migration", t.migration_watch, t.migration_refresh}};
  for (const auto& pair : pairs)
    if (!(pair.watch > 0.0) || !(pair.refresh >= pair.watch))
      throw InputError(std::string(pair.name) + "-watch " + std::to_string(pair.watch) + " and " + pair.name +
                       "-refresh " + std::to_string(pair.refresh) + ": need 0 < watch <= refresh");
}

/// The two files and the model describe the same columns, scaled the same way.
void check_compatible(const Model& model, const std::string& model_path, const Features& ref, const Features& cur,
                      bool match_ids) {
  const std::string again = "; prepare it with `segforge-prep ... --scaler-from " + ref.path + "`";
  if (cur.x.cols() != ref.x.cols())
    throw InputError(where(cur) + ": " + std::to_string(cur.x.cols()) + " features, the reference " + ref.path +
                     " has " + std::to_string(ref.x.cols()) + again);
  for (std::size_t j = 0; j < ref.feature_names.size(); ++j)
    if (cur.feature_names[j] != ref.feature_names[j])
      throw InputError(cur.path + ":/feature_names: column " + std::to_string(j) + " is '" + cur.feature_names[j] +
                       "', the reference's is '" + ref.feature_names[j] + "'" + again);
  if (const std::string diff = scaler_difference(cur.scaler, ref.scaler, ref.feature_names, "the reference");
      !diff.empty())
    throw InputError(cur.path + ":/scaler: scaled otherwise than the reference " + ref.path + " (" + diff + ")" + again);
  const std::string refit = "; pass the model fitted on data prepared like " + ref.path;
  if (model.centroids.cols() != ref.x.cols())
    throw InputError(model_path + ":/centroids: " + std::to_string(model.centroids.cols()) + " features, the reference " +
                     ref.path + " has " + std::to_string(ref.x.cols()) + refit);
  if (!model.feature_names.empty())
    for (std::size_t j = 0; j < model.feature_names.size(); ++j)
      if (model.feature_names[j] != ref.feature_names[j])
        throw InputError(model_path + ":/feature_names: column " + std::to_string(j) + " is '" + model.feature_names[j] +
                         "', the reference's is '" + ref.feature_names[j] + "'" + refit);
  if (!model.scaler.empty())
    if (const std::string diff = scaler_difference(ref.scaler, model.scaler, ref.feature_names, "the model");
        !diff.empty())
      throw InputError(ref.path + ":/scaler: scaled otherwise than the data of the model " + model_path + " (" + diff +
                       "); pass the reference the model was fitted on, or prepare it with --scaler-from");
  for (const Features* f : {&ref, &cur}) {
    if (f->disk_rows > 0)
      throw InputError(where(*f) + ": does not fit in --memory-budget " + "; drift reads both files into memory: raise it");
    if (const RepeatedIds r = match_ids ? repeated_ids(f->ids) : RepeatedIds{}; r.rows > 0)
      throw InputError(f->path + ":/ids: id '" + r.id + "' is on rows " + std::to_string(r.first_row + 1) + " and " +
                       std::to_string(r.repeat_row + 1) + " (" + std::to_string(r.rows) +
                       " rows repeat an id); migration needs one row per id: deduplicate the file, or pass --no-migration");
  }
}

json shares_json(const std::vector<double>& v) { return json(v); }

json drift_json(const DriftResult& r) {
  json j = json_output("segforge-drift");
  j["n_reference"] = r.n_reference;
  j["n_current"] = r.n_current;
  j["k"] = r.n_clusters;
  j["verdict"] = drift_level_name(r.verdict);
  j["reasons"] = json::array();
  for (const DriftReason& reason : r.reasons)
    j["reasons"].push_back({{"level", drift_level_name(reason.level)}, {"text", reason.text}});
  const DriftThresholds& t = r.thresholds;
  j["thresholds"] = {{"feature_psi", {{"watch", t.feature_psi_watch}, {"refresh", t.feature_psi_refresh}}},
                     {"share_psi", {{"watch", t.share_psi_watch}, {"refresh", t.share_psi_refresh}}},
                     {"distance_rise", {{"watch", t.distance_watch}, {"refresh", t.distance_refresh}}},
                     {"refit_gain", {{"watch", t.refit_watch}, {"refresh", t.refit_refresh}}},
                     {"migration", {{"watch", t.migration_watch}, {"refresh", t.migration_refresh}}}};
  j["bins"] = r.n_bins;
  j["epsilon"] = r.epsilon;
  j["features"] = json::array();
  for (const FeatureDrift& f : r.features)
    j["features"].push_back({{"name", f.name},
                             {"psi", f.psi},
                             {"ks", f.ks},
                             {"mean_shift", f.mean_shift},
                             {"reference_mean", f.reference_mean},
                             {"reference_sd", f.reference_sd},
                             {"current_mean", f.current_mean},
                             {"current_sd", f.current_sd},
                             {"edges", f.edges},
                             {"reference_shares", shares_json(f.reference_shares)},
                             {"current_shares", shares_json(f.current_shares)}});
  j["share_psi"] = r.share_psi;
  j["segments"] = json::array();
  for (std::size_t c = 0; c < r.segments.size(); ++c) {
    const SegmentDrift& s = r.segments[c];
    j["segments"].push_back({{"segment", c},
                             {"name", s.name},
                             {"reference_count", s.reference_count},
                             {"current_count", s.current_count},
                             {"reference_share", s.reference_share},
                             {"current_share", s.current_share},
                             {"psi_term", s.psi_term},
                             {"reference_mean_distance", s.reference_mean_distance},
                             {"current_mean_distance", s.current_mean_distance},
                             {"reference_p90_distance", s.reference_p90_distance},
                             {"current_p90_distance", s.current_p90_distance},
                             {"refit_centre_shift", s.refit_centre_shift}});
  }
  j["inertia"] = {{"reference", r.reference_inertia}, {"current", r.current_inertia},
                  {"refit", r.refit_inertia},         {"refit_gain", r.refit_gain},
                  {"refit_n_iter", r.refit_n_iter},   {"refit_converged", r.refit_converged}};
  const Migration& m = r.migration;
  json counts = json::array(), shares = json::array();
  for (std::int64_t a = 0; a < m.counts.rows(); ++a) {
    counts.push_back(std::vector<std::int64_t>(m.counts.row(a), m.counts.row(a) + m.counts.cols()));
    shares.push_back(std::vector<double>(m.row_shares.row(a), m.row_shares.row(a) + m.row_shares.cols()));
  }
  j["migration"] = {{"ids_available", m.ids_available}, {"n_common", m.n_common}, {"n_joiners", m.n_joiners},
                    {"n_leavers", m.n_leavers},         {"n_moved", m.n_moved},   {"moved_share", m.moved_share},
                    {"counts", counts},                 {"row_shares", shares}};
  return j;
}

int run_drift(const DriftOptions& o) {
  OutputSet outputs;
  outputs.input(o.model, "model");
  outputs.input(o.reference, "reference");
  outputs.input(o.current, "current");
  if (!o.output.empty()) outputs.output(o.output, "-o", {".json"});
  check_params(o.params);
  const DriftLevel fail_on = o.fail_on.empty() ? DriftLevel::stable : parse_level(o.fail_on);
  const Model model = read_model(o.model);
  if (model.is_dbscan() || model.is_hierarchy())
    throw InputError(o.model + ": a " + (model.is_dbscan() ? std::string("DBSCAN") : model.attributes.count("algorithm") ? model.attributes.at("algorithm") : std::string("hierarchical")) +
                     " model; segforge drift works on K-Means models so far: refit it on the new data (segforge fit)");
  // Repeated ids are refused below when migration matches them: no warning first.
  const Features ref = load(o.reference, o.common, !o.params.match_ids);
  const Features cur = load(o.current, o.common, !o.params.match_ids);
  check_compatible(model, o.model, ref, cur, o.params.match_ids);

  auto backend = open_backend(o.common);
  std::vector<std::string> names = model.segment_names;
  const DriftResult r = compute_drift(*backend, ref.x.view(), cur.x.view(), ref.ids, cur.ids, model.centroids.view(),
                                      ref.feature_names, names, o.params);

  std::printf("drift of %s (%lld rows) from %s (%lld rows) under %s (K=%d)\n", cur.path.c_str(),
              static_cast<long long>(r.n_current), ref.path.c_str(), static_cast<long long>(r.n_reference),
              o.model.c_str(), r.n_clusters);
  std::vector<std::size_t> order(r.features.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return r.features[a].psi > r.features[b].psi; });
  std::printf("  %-28s %8s %8s %11s\n", "feature", "PSI", "KS", "mean shift");
  for (std::size_t n = 0; n < std::min<std::size_t>(order.size(), 10); ++n) {
    const FeatureDrift& f = r.features[order[n]];
    std::printf("  %-28s %8.4f %8.4f %+11.3f\n", f.name.c_str(), f.psi, f.ks, f.mean_shift);
  }
  std::printf("  %-28s %9s %9s %10s %10s\n", "segment", "share was", "share now", "dist was", "dist now");
  for (const SegmentDrift& s : r.segments)
    std::printf("  %-28s %8.1f%% %8.1f%% %10.4g %10.4g\n", s.name.c_str(), 100.0 * s.reference_share,
                100.0 * s.current_share, s.reference_mean_distance, s.current_mean_distance);
  std::printf("  share PSI %.4f; inertia under the model %.6g, after a refit from its centres %.6g (%.1f%% better)\n",
              r.share_psi, r.current_inertia, r.refit_inertia, 100.0 * r.refit_gain);
  if (r.migration.ids_available)
    std::printf("  migration: %lld ids in both files, %.1f%% changed segment; %lld joined, %lld left\n",
                static_cast<long long>(r.migration.n_common), 100.0 * r.migration.moved_share,
                static_cast<long long>(r.migration.n_joiners), static_cast<long long>(r.migration.n_leavers));
  else
    std::printf("  migration: not computed (%s)\n", o.params.match_ids ? "a file has no /ids" : "--no-migration");
  std::printf("verdict: %s\n", drift_level_name(r.verdict).c_str());
  for (const DriftReason& reason : r.reasons) std::printf("  - %s\n", reason.text.c_str());

  if (!o.output.empty()) {
    json j = drift_json(r);
    j["model"] = o.model;
    j["reference"] = {{"path", ref.path}, {"checksum", ref.checksum}};
    j["current"] = {{"path", cur.path}, {"checksum", cur.checksum}};
    j["backend"] = backend->info().name;
    j["device"] = backend->info().device;
    write_text_atomic(o.output, j.dump(2) + "\n");
    outputs.commit();
  }
  if (fail_on != DriftLevel::stable && r.verdict >= fail_on)
    return r.verdict == DriftLevel::refresh ? kExitRefresh : kExitWatch;
  return 0;
}

}  // namespace

DriftResult drift_from_json(const json& j, const std::string& path) {
  DriftResult r;
  auto level = [&](const std::string& text) {
    if (text == "stable") return DriftLevel::stable;
    if (text == "watch") return DriftLevel::watch;
    if (text == "refresh") return DriftLevel::refresh;
    throw InputError(path + ": verdict '" + text + "' is not stable, watch or refresh; pass the -o of segforge drift");
  };
  // NaN is written as null (JSON has no NaN).
  auto number = [](const json& v) { return v.is_null() ? std::nan("") : v.get<double>(); };
  try {
    if (j.value("format", "") != "segforge-drift")
      throw InputError(path + ": not a drift file (format is not 'segforge-drift'); pass the -o of segforge drift");
    r.n_reference = j.at("n_reference").get<std::int64_t>();
    r.n_current = j.at("n_current").get<std::int64_t>();
    r.n_clusters = j.at("k").get<int>();
    r.verdict = level(j.at("verdict").get<std::string>());
    for (const auto& reason : j.at("reasons"))
      r.reasons.push_back({level(reason.at("level").get<std::string>()), reason.at("text").get<std::string>()});
    r.share_psi = j.at("share_psi").get<double>();
    const auto& psi = j.at("thresholds").at("feature_psi");
    r.thresholds.feature_psi_watch = psi.at("watch").get<double>();
    r.thresholds.feature_psi_refresh = psi.at("refresh").get<double>();
    for (const auto& f : j.at("features")) {
      FeatureDrift d;
      d.name = f.at("name").get<std::string>();
      d.psi = number(f.at("psi"));
      d.ks = number(f.at("ks"));
      d.mean_shift = number(f.at("mean_shift"));
      r.features.push_back(std::move(d));
    }
    for (const auto& s : j.at("segments")) {
      SegmentDrift d;
      d.name = s.at("name").get<std::string>();
      d.reference_count = s.at("reference_count").get<std::int64_t>();
      d.current_count = s.at("current_count").get<std::int64_t>();
      d.reference_share = s.at("reference_share").get<double>();
      d.current_share = s.at("current_share").get<double>();
      d.reference_mean_distance = number(s.at("reference_mean_distance"));
      d.current_mean_distance = number(s.at("current_mean_distance"));
      r.segments.push_back(std::move(d));
    }
    if (static_cast<int>(r.segments.size()) != r.n_clusters)
      throw InputError(path + ": " + std::to_string(r.segments.size()) + " segments for k=" +
                       std::to_string(r.n_clusters) + "; pass the -o of segforge drift");
    const auto& inertia = j.at("inertia");
    r.current_inertia = inertia.at("current").get<double>();
    r.refit_inertia = inertia.at("refit").get<double>();
    r.refit_gain = inertia.at("refit_gain").get<double>();
    const auto& m = j.at("migration");
    r.migration.ids_available = m.at("ids_available").get<bool>();
    r.migration.n_common = m.at("n_common").get<std::int64_t>();
    r.migration.n_joiners = m.at("n_joiners").get<std::int64_t>();
    r.migration.n_leavers = m.at("n_leavers").get<std::int64_t>();
    r.migration.n_moved = m.at("n_moved").get<std::int64_t>();
    r.migration.moved_share = m.at("moved_share").get<double>();
    const int k = r.n_clusters;
    r.migration.counts = Matrix<std::int64_t>(k, k, 0);
    const auto& counts = m.at("counts");
    if (static_cast<int>(counts.size()) != k)
      throw InputError(path + ": migration counts are not " + std::to_string(k) + " x " + std::to_string(k) +
                       "; pass the -o of segforge drift");
    for (int a = 0; a < k; ++a) {
      if (static_cast<int>(counts[a].size()) != k)
        throw InputError(path + ": migration counts row " + std::to_string(a) + " has not " + std::to_string(k) +
                         " values; pass the -o of segforge drift");
      for (int b = 0; b < k; ++b) {
        r.migration.counts(a, b) = counts[a][b].get<std::int64_t>();
        if (r.migration.counts(a, b) < 0)
          throw InputError(path + ": a negative migration count; pass the -o of segforge drift");
      }
    }
  } catch (const json::exception& e) {
    throw InputError(path + ": not a valid drift file (" + e.what() + "); pass the -o of segforge drift");
  }
  return r;
}

Command add_drift_command(CLI::App& parent) {
  auto options = std::make_shared<DriftOptions>();
  DriftOptions& o = *options;
  DriftThresholds& t = o.params.thresholds;
  auto* cmd = parent.add_subcommand(
      "drift", "How far new data moved from the reference under a model: features, segments, migration, a verdict");
  cmd->add_option("model", o.model, "model.h5 (from segforge fit)")->required();
  cmd->add_option("reference", o.reference, "REFERENCE.h5: the data the model was fitted on, or the last period's")
      ->required();
  cmd->add_option("current", o.current, "CURRENT.h5, prepared with segforge-prep --scaler-from REFERENCE.h5")
      ->required();
  cmd->add_option("-o,--output", o.output, "drift.json to write");
  cmd->add_option("--fail-on", o.fail_on,
                  "watch|refresh: exit 4 (watch) or 5 (refresh) when the verdict is at least this (after writing -o)");
  cmd->add_flag("--no-migration", [&o](std::int64_t) { o.params.match_ids = false; },
                "the files' ids do not name the same records (row numbers restarting per file): no migration");
  cmd->add_option("--bins", o.params.n_bins, "PSI bins: the reference's quantiles")->capture_default_str();
  cmd->add_option("--epsilon", o.params.epsilon, "share of an empty bin in PSI")->capture_default_str();
  cmd->add_option("--min-segment-rows", o.params.min_segment_rows,
                  "rows a segment needs in both files for its distances to count")
      ->capture_default_str();
  cmd->add_option("--psi-watch", t.feature_psi_watch, "feature PSI for watch")->capture_default_str();
  cmd->add_option("--psi-refresh", t.feature_psi_refresh, "feature PSI for refresh")->capture_default_str();
  cmd->add_option("--share-psi-watch", t.share_psi_watch, "segment-share PSI for watch")->capture_default_str();
  cmd->add_option("--share-psi-refresh", t.share_psi_refresh, "segment-share PSI for refresh")->capture_default_str();
  cmd->add_option("--distance-watch", t.distance_watch, "relative rise of a segment's mean distance for watch")
      ->capture_default_str();
  cmd->add_option("--distance-refresh", t.distance_refresh, "... for refresh")->capture_default_str();
  cmd->add_option("--refit-watch", t.refit_watch, "1 - refit/model inertia for watch")->capture_default_str();
  cmd->add_option("--refit-refresh", t.refit_refresh, "... for refresh")->capture_default_str();
  cmd->add_option("--migration-watch", t.migration_watch, "share of common ids that changed segment for watch")
      ->capture_default_str();
  cmd->add_option("--migration-refresh", t.migration_refresh, "... for refresh")->capture_default_str();
  add_common(cmd, o.common);
  return {cmd, [options] { return run_drift(*options); }};
}

}  // namespace segforge::cli
