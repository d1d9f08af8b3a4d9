#pragma once
// Shared pieces of the command-line programs: option parsing into enums, output checks, the
// progress line, timing. Strings such as "k-means++" stop here.

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "memory_budget.hpp"
#include "segforge/backend.hpp"
#include "segforge/checkpoint.hpp"
#include "segforge/dbscan.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/metrics.hpp"
#include "segforge/select.hpp"
#include "segforge/segments.hpp"

namespace segforge::cli {

Init parse_init(const std::string& text, std::string* centres_file);
std::string init_name(Init init);
Algorithm parse_algorithm(const std::string& text);
std::string algorithm_name(Algorithm a);
DeviceChoice parse_device(const std::string& text);
NanPolicy parse_nan_policy(const std::string& text);
Refine parse_refine(const std::string& text);

/// `--silhouette exact|sample=N|none|auto`.
struct SilhouetteSpec {
  enum class Mode { none, exact, sample, auto_select } mode = Mode::auto_select;
  std::int64_t sample_size = 0;
};
SilhouetteSpec parse_silhouette(const std::string& text);
/// auto: exact up to 20 000 rows, else a 20 000-row stratified sample.
SilhouetteSpec resolve_silhouette(SilhouetteSpec spec, std::int64_t n_samples);

/// The text of one progress line: "lloyd run 2: 14/300, inertia 21,613.3, 3.2 s",
/// "silhouette: 3591/3591, 1.4 s": the run only for the second and later restarts, the inertia
/// only where the phase has one.
std::string progress_text(const Progress& p, double seconds);

/// A progress line on stderr for anything that takes over a second (throttled, one line).
class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine();
  ProgressFn callback();
  void finish();

 private:
  void show(const Progress& p);
  std::chrono::steady_clock::time_point start_, last_;
  bool shown_ = false;
  bool tty_ = false;
  double first_ = 1.0, every_ = -1.0;  ///< seconds before the first line and between lines
};

class Stopwatch {
 public:
  Stopwatch() : t0_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  std::chrono::steady_clock::time_point t0_;
};

/// Options every engine command shares.
struct Common {
  std::string device = "auto";
  int threads = 0;
  std::string dataset = "/features";
  std::string nan_policy = "error";
  /// --memory-budget: "auto" or bytes (512M, 8G); rows that do not fit stay on disk and are
  /// streamed (tools/memory_budget.hpp).
  std::string memory_budget = "auto";
  /// --verbose: details such as why no GPU was used.
  bool verbose = false;
  /// --sample-weight DATASET (fit, score, sweep): per-row weights in the features file; empty: none.
  std::string sample_weight;
};
void add_common(CLI::App* app, Common& c);
/// --sample-weight DATASET, for the commands whose results weights change (fit, score, sweep).
void add_sample_weight(CLI::App* app, Common& c);
/// The --sample-weight dataset of `f`'s file for f's rows, checked: 1-D numeric, one value per
/// row, finite, >= 0, not all zero. Empty when none was asked for.
std::vector<float> load_sample_weights(const Features& f, const Common& c);
/// The backend `--device` asks for. When `auto` falls back to the CPU it says so on stderr once
/// per process, as the one line "segforge: no GPU found; running on the CPU" (a CPU-only machine
/// is normal, not an error); with --verbose, why (e.g. the CUDA runtime's message).
std::unique_ptr<Backend> open_backend(const Common& c);
/// Reads a feature file as `--dataset` and `--nan-policy` say.
/// Under MPI (`mpirun -np R segforge ...` of a build with SEGFORGE_MPI; collective): x holds
/// this rank's contiguous part of the rows (Features::first_row, n_rows_total place it), the ids
/// of all rows are on rank 0 only (which writes the outputs), and an error on any rank is thrown
/// on every rank.
/// `warn_ids`: warn_repeated_ids (below) after reading.
Features load(const std::string& path, const Common& c, bool warn_ids = true);
/// One warning line when rows of `f` repeat an id (on the output rank): segments.csv then has
/// that id on more than one line.
void warn_repeated_ids(const Features& f);
/// The dataset the drivers run on: `f`'s rows on `backend`. Under MPI, this rank's part of a
/// dataset partitioned over the ranks (n_samples() is the global row count; collective).
/// Out of core (f.disk_rows > 0: load() left the rows on disk for want of --memory-budget), a
/// dataset that streams them in windows the budget allows. In memory, the backend adopts f.x's
/// rows (Backend::adopt; f.x becomes [0 x n_features]): the data is in memory once. With
/// --sample-weight, the rows are uploaded with their weights (load_sample_weights).
std::unique_ptr<Dataset> open_data(Backend& backend, Features& f, const Common& c);
/// Whether this process writes the outputs and prints the results: rank 0 under MPI (every
/// rank computes them alike), always otherwise.
bool output_rank();
/// A fit's checkpointing as every rank must use it under MPI: a stop asked for on any rank (a
/// signal that reached only some) stops all of them at the same step boundary (one allreduce
/// per step), and rank 0 alone writes the file. `storage` holds the wrapper. Otherwise `local`.
const Checkpointing* on_all_ranks(const Checkpointing* local, Checkpointing& storage);
/// "file.h5:/features", for messages.
std::string where(const Features& f);
std::vector<std::int64_t> sizes_of(std::span<const std::int32_t> labels, int k);
/// labels.h5 or segments.csv, by extension; distances are Euclidean.
void write_labels(const std::string& path, const Assignment& a, const Ids& ids,
                  const std::vector<std::string>& names);

using json = nlohmann::ordered_json;
/// A JSON output's identity, the counterpart of the HDF5 files' root attributes:
/// {"format": format, "format_version": 1}; the caller adds the rest.
json json_output(const std::string& format);
/// Silhouette (as `spec` says), Davies–Bouldin and Calinski–Harabasz, for metrics.json.
/// `silhouette`, when given, receives the per-sample values.
json scores(Backend& backend, const Dataset& data, std::span<const std::int32_t> labels, int k,
            SilhouetteSpec spec, std::uint64_t seed, ProgressLine& line,
            SilhouetteResult* silhouette = nullptr);
void print_scores(const json& s);

/// A subcommand: its CLI11 app and what runs when it was chosen.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
Command add_fit_command(CLI::App& parent);
Command add_predict_command(CLI::App& parent);
Command add_score_command(CLI::App& parent);
Command add_distances_command(CLI::App& parent);
Command add_info_command(CLI::App& parent);
Command add_synth_command(CLI::App& parent);
Command add_sweep_command(CLI::App& parent);
Command add_stability_command(CLI::App& parent);
Command add_report_command(CLI::App& parent);
Command add_drift_command(CLI::App& parent);
Command add_refresh_command(CLI::App& parent);
Command add_kpis_command(CLI::App& parent);
Command add_dbscan_eps_command(CLI::App& parent);

/// `--criteria elbow,silhouette,gap,db,ch` (also davies_bouldin, calinski_harabasz).
std::vector<Criterion> parse_criteria(const std::string& text);
/// sweep.json (tools/cmd_sweep.cpp), and back for the report.
json sweep_json(const SweepResult& r);
SweepResult sweep_from_json(const json& j, const std::string& path);
/// stability.json (tools/cmd_stability.cpp), and back for the report.
json stability_json(const StabilityResult& r);
StabilityResult stability_from_json(const json& j, const std::string& path);
/// dbscan-eps.json (tools/cmd_dbscan_eps.cpp), and back for the report (`min_samples` receives
/// the curve's k).
json eps_curve_json(const EpsSuggestion& s, int min_samples, std::int64_t n_samples, std::uint64_t seed);
EpsSuggestion eps_curve_from_json(const json& j, const std::string& path, int* min_samples);
/// Profiles for metrics.json (tools/cmd_fit.cpp).
json profiles_json(const std::vector<SegmentProfile>& profiles, const std::vector<std::string>& feature_names,
                   const std::vector<SegmentEntry>& dictionary);
/// A fitted model's segment arrays from its profiles and named entries (tools/cmd_fit.cpp):
/// names, sizes, shares, centres in original units, z-scores, top features, descriptions and
/// outreach; fit and refresh both store them so.
void set_segments(Model& model, const std::vector<SegmentProfile>& profiles, const std::vector<SegmentEntry>& entries,
                  const std::vector<std::int64_t>& sizes);
/// What a fitted model records about its fit (docs/formats.md, model attributes).
struct FitRecord {
  std::string algorithm, init;
  int k = 0, n_init = 0, n_iter = 0;
  std::uint64_t seed = 0;
  bool converged = false;
  double inertia = 0.0;
};
std::map<std::string, std::string> fit_attributes(const FitRecord& fit, const BackendInfo& info, const Features& f,
                                                  Audience audience);
/// The segment dictionary `path` (<model>.segments.json; `fit --names` reads it back).
void write_segment_dictionary(const std::string& path, const std::string& model_path, std::int64_t n_samples,
                              const std::vector<SegmentProfile>& profiles, const std::vector<std::string>& feature_names,
                              const std::vector<SegmentEntry>& entries);
/// Reads a JSON file; InputError naming it when it is missing or not JSON.
json read_json_file(const std::string& path, const std::string& option);

}  // namespace segforge::cli
