#include "cli_common.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "segforge/error.hpp"
#include "segforge/metrics.hpp"
#include "segforge/number_format.hpp"
#include "segforge/row_source.hpp"

#if defined(SEGFORGE_HAS_MPI)
#include "distributed.hpp"
#endif

namespace segforge::cli {

Init parse_init(const std::string& text, std::string* centres_file) {
  if (text == "k-means++") return Init::kmeans_pp;
  if (text == "scalable-k-means++" || text == "k-means||") return Init::scalable_kmeans_pp;
  if (text == "random") return Init::random;
  if (text.ends_with(".h5") || text.ends_with(".hdf5")) {
    *centres_file = text;
    return Init::given;
  }
  throw InputError("--init " + text +
                   ": unknown; use k-means++, scalable-k-means++, random or a FILE.h5 with /centroids");
}

std::string init_name(Init init) {
  switch (init) {
    case Init::kmeans_pp: return "k-means++";
    case Init::scalable_kmeans_pp: return "scalable-k-means++";
    case Init::random: return "random";
    case Init::given: return "given";
  }
  return "?";
}

Algorithm parse_algorithm(const std::string& text) {
  if (text == "lloyd") return Algorithm::lloyd;
  if (text == "minibatch") return Algorithm::minibatch;
  throw InputError("--algorithm " + text + ": unknown; use lloyd, minibatch or dbscan (fit)");
}

std::string algorithm_name(Algorithm a) { return a == Algorithm::lloyd ? "lloyd" : "minibatch"; }

DeviceChoice parse_device(const std::string& text) {
  if (text == "auto") return DeviceChoice::auto_select;
  if (text == "gpu") return DeviceChoice::gpu;
  if (text == "cpu") return DeviceChoice::cpu;
  throw InputError("--device " + text + ": unknown; use auto, gpu or cpu");
}

NanPolicy parse_nan_policy(const std::string& text) {
  if (text == "error") return NanPolicy::error;
  if (text == "drop") return NanPolicy::drop;
  throw InputError("--nan-policy " + text + ": unknown; use error or drop");
}

Refine parse_refine(const std::string& text) {
  if (text == "auto") return Refine::auto_select;
  if (text == "none") return Refine::none;
  if (text == "swap" || text == "random-swap") return Refine::random_swap;
  throw InputError("--refine " + text + ": unknown; use auto, none or swap");
}

SilhouetteSpec parse_silhouette(const std::string& text) {
  using Mode = SilhouetteSpec::Mode;
  if (text == "none") return {Mode::none, 0};
  if (text == "exact") return {Mode::exact, 0};
  if (text == "auto") return {Mode::auto_select, 0};
  if (text.starts_with("sample=")) {
    const std::string number = text.substr(7);
    std::size_t used = 0;
    long long n = 0;
    try {
      n = std::stoll(number, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == number.size() && n >= 2) return {Mode::sample, n};
  }
  throw InputError("--silhouette " + text + ": unknown; use exact, sample=N (N >= 2), auto or none");
}

SilhouetteSpec resolve_silhouette(SilhouetteSpec spec, std::int64_t n_samples) {
  using Mode = SilhouetteSpec::Mode;
  constexpr std::int64_t kAutoLimit = 20000;
  if (spec.mode != Mode::auto_select) return spec;
  if (n_samples <= kAutoLimit) return {Mode::exact, 0};
  return {Mode::sample, kAutoLimit};
}

std::string progress_text(const Progress& p, double seconds) {
  char buf[256];
  // The run only where there are several (n_init restarts); the inertia only where the phase
  // has one (silhouette, stability, gap... do not: "inertia 0" would be read as a value).
  std::string line = p.phase + (p.run > 0 ? " run " + std::to_string(p.run + 1) : std::string()) + ": ";
  if (p.total > 0) {
    std::snprintf(buf, sizeof buf, "%lld/%lld, ", static_cast<long long>(p.step), static_cast<long long>(p.total));
    line += buf;
  }
  if (p.inertia) line += "inertia " + analyst_number(*p.inertia, 6) + ", ";
  std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  return line + buf;
}

ProgressLine::ProgressLine()
    : start_(std::chrono::steady_clock::now()), last_(start_), tty_(isatty(STDERR_FILENO) != 0) {
  // SEGFORGE_PROGRESS_SECONDS=S: the first line after S seconds and one every S seconds (logs of
  // batch jobs, tests); default: after 1 s, then every 0.25 s on a terminal and 5 s off one.
  if (const char* env = std::getenv("SEGFORGE_PROGRESS_SECONDS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const double s = std::strtod(env, &end);
    if (*end == '\0' && s >= 0) first_ = every_ = s;
  }
  if (every_ < 0) every_ = tty_ ? 0.25 : 5.0;
}

ProgressLine::~ProgressLine() { finish(); }

ProgressFn ProgressLine::callback() {
  return [this](const Progress& p) { show(p); };
}

void ProgressLine::show(const Progress& p) {
  if (!output_rank()) return;
  const auto now = std::chrono::steady_clock::now();
  const double since_start = std::chrono::duration<double>(now - start_).count();
  const double since_last = std::chrono::duration<double>(now - last_).count();
  if (since_start < first_ || (shown_ && since_last < every_)) return;
  last_ = now;
  shown_ = true;
  std::string line = progress_text(p, since_start);
  if (tty_)
    std::cerr << "\r\033[K" << line << std::flush;
  else
    std::cerr << line << '\n';
}

void ProgressLine::finish() {
  if (shown_ && tty_) std::cerr << '\n';
  shown_ = false;
}

void add_common(CLI::App* app, Common& c) {
  app->add_option("--device", c.device, "auto|gpu|cpu: where to run")->capture_default_str();
  app->add_option("--threads", c.threads, "CPU threads (0: all cores)")->capture_default_str();
  app->add_option("--dataset", c.dataset, "HDF5 dataset holding the matrix")->capture_default_str();
  app->add_option("--nan-policy", c.nan_policy, "error|drop: rows with NaN or Inf")->capture_default_str();
  app->add_option("--memory-budget", c.memory_budget,
                  "auto (3/4 of available memory) or bytes (512M, 8G): larger data is streamed from the file")
      ->capture_default_str();
  app->add_flag("--verbose", c.verbose, "more detail on stderr (e.g. why no GPU was used)");
}

void add_sample_weight(CLI::App* app, Common& c) {
  app->add_option("--sample-weight", c.sample_weight,
                  "dataset of the features file holding one weight per row (finite, >= 0, not all zero)");
}

std::vector<float> load_sample_weights(const Features& f, const Common& c) {
  if (c.sample_weight.empty()) return {};
  const std::string at = f.path + ":" + (c.sample_weight.front() == '/' ? "" : "/") + c.sample_weight;
  if (f.n_dropped > 0)
    throw InputError(at + ": --sample-weight with rows dropped by --nan-policy drop; clean the "
                     "features first or drop those rows' weights too");
  if (f.disk_rows > 0)
    throw InputError(at + ": --sample-weight needs the rows in memory; raise --memory-budget");
  const std::vector<double> all = read_extra_doubles(f.path, c.sample_weight);
  if (static_cast<std::int64_t>(all.size()) != f.n_rows_total)
    throw InputError(at + ": " + std::to_string(all.size()) + " weights for " +
                     std::to_string(f.n_rows_total) + " rows of " + where(f) +
                     "; store one weight per row");
  bool any_positive = false;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!std::isfinite(all[i]) || all[i] < 0)
      throw InputError(at + " row " + std::to_string(i) + ": weight " + (std::ostringstream() << all[i]).str() +
                       "; weights must be finite and >= 0");
    any_positive = any_positive || all[i] > 0;
  }
  if (!any_positive)
    throw InputError(at + ": every weight is 0; at least one row needs a positive weight");
  // This process's rows (under MPI a part starting at first_row; no rows were dropped).
  const auto begin = all.begin() + f.first_row;
  return std::vector<float>(begin, begin + f.x.rows());
}

std::unique_ptr<Backend> open_backend(const Common& c) {
  std::string note;
  auto backend = make_backend(parse_device(c.device), c.threads, &note);
  static bool said = false;
  if (!note.empty() && output_rank() && !said) {
    said = true;
    std::cerr << "segforge: " << (c.verbose ? note : "no GPU found; running on the CPU") << '\n';
  }
#if defined(SEGFORGE_HAS_MPI)
  // Each rank's own backend (its GPU picked by node-local rank: mpi::select_gpu), decorated.
  if (mpi::active()) return mpi::make_distributed_backend(std::move(backend));
#endif
  return backend;
}

bool output_rank() {
#if defined(SEGFORGE_HAS_MPI)
  return mpi::rank() == 0;
#else
  return true;
#endif
}

namespace {
/// Whether `n_rows` rows of the file fit the budget in memory; if not, says so (once per
/// process) and how they will be streamed.
bool rows_fit(std::int64_t n_rows, const FeatureFileInfo& info, const std::string& dataset,
              std::int64_t budget) {
  const std::string at = info.path + ":" + dataset;
  const MemoryPlan plan = plan_memory(n_rows, info.n_features, budget, at);
  if (!plan.in_memory && output_rank())
    std::cerr << "segforge: " << at << ": " << n_rows << " x " << info.n_features << " rows ("
              << format_bytes(n_rows * info.n_features * 4) << ") exceed --memory-budget "
              << format_bytes(budget) << " in memory; streaming them from the file, "
              << plan.window_rows << " rows at a time\n";
  return plan.in_memory;
}
}  // namespace

#if defined(SEGFORGE_HAS_MPI)
namespace {
/// This rank's rows (mpi::row_range of the file's rows) and the whole's shape, on every rank.
Features load_part(const std::string& path, ReadOptions options, std::int64_t budget) {
  Features f;
  std::exception_ptr error;
  try {
    const FeatureFileInfo info = inspect_features(path, options.dataset);
    const mpi::RowRange range = mpi::row_range(info.n_samples, mpi::rank(), mpi::size());
    options.row_begin = range.begin;
    options.row_count = range.count;
    options.checksum = mpi::rank() == 0;
    options.rows_in_memory = rows_fit(range.count, info, options.dataset, budget);
    f = read_features(path, options);
  } catch (...) {
    error = std::current_exception();
  }
  mpi::agree(error);  // a bad row on one rank is everyone's error
  const std::vector<std::int64_t> kept = mpi::allgather(f.x.rows() + f.disk_rows);
  const std::vector<std::int64_t> dropped = mpi::allgather(f.n_dropped);
  f.first_row = 0;
  f.n_rows_total = 0;
  f.n_dropped = 0;
  for (int r = 0; r < mpi::size(); ++r) {
    if (r < mpi::rank()) f.first_row += kept[r];
    f.n_rows_total += kept[r];
    f.n_dropped += dropped[r];
  }
  if (f.n_rows_total == 0)
    throw InputError(f.path + ":" + f.dataset + ": all " + std::to_string(f.n_dropped) +
                     " rows have NaN or Inf; nothing to cluster");
  f.ids = mpi::gather_ids(f.ids);
  f.checksum = mpi::broadcast(f.checksum);
  return f;
}
}  // namespace
#endif

std::unique_ptr<Dataset> open_data(Backend& backend, Features& f, const Common& c) {
  // This process's rows: in memory, or streamed from the file in windows the budget allows.
  const std::vector<float> weights = load_sample_weights(f, c);
  auto place = [&](Backend& local) {
    if (!weights.empty()) {
      auto data = local.upload(f.x.view(), weights);
      f.x = Matrix<float>(0, f.x.cols());
      return data;
    }
    if (f.disk_rows == 0) return local.adopt(std::move(f.x));  // the rows in memory once
    const MemoryPlan plan =
        plan_memory(f.disk_rows, f.x.cols(), parse_memory_budget(c.memory_budget), where(f));
    return local.stream(open_hdf5_rows(f.path, f.dataset, f.first_row, f.disk_rows), plan.window_rows);
  };
#if defined(SEGFORGE_HAS_MPI)
  if (mpi::active()) {
    auto& distributed = dynamic_cast<mpi::DistributedBackend&>(backend);
    return distributed.adopt_part(place(distributed.local()));
  }
#endif
  return place(backend);
}

const Checkpointing* on_all_ranks(const Checkpointing* local, Checkpointing& storage) {
#if defined(SEGFORGE_HAS_MPI)
  if (local != nullptr && mpi::active()) {
    storage = *local;
    storage.stop_requested = [ask = local->stop_requested] { return mpi::any(ask && ask()); };
    storage.save = [save = local->save](const FitState& s) {
      if (mpi::rank() == 0 && save) save(s);
    };
    return &storage;
  }
#endif
  (void)storage;
  return local;
}

Features load(const std::string& path, const Common& c, bool warn_ids) {
  ReadOptions options;
  options.dataset = c.dataset;
  options.nan_policy = parse_nan_policy(c.nan_policy);
#if defined(SEGFORGE_HAS_MPI)
  if (mpi::active()) {
    Features f = load_part(path, options, parse_memory_budget(c.memory_budget));
    if (f.n_dropped > 0 && output_rank())
      std::cerr << "segforge: " << f.path << ":" << f.dataset << ": dropped " << f.n_dropped
                << " rows with NaN or Inf (--nan-policy drop)\n";
    if (warn_ids) warn_repeated_ids(f);  // rank 0 holds every id (gather_ids)
    return f;
  }
#endif
  const FeatureFileInfo info = inspect_features(path, options.dataset);
  options.rows_in_memory = rows_fit(info.n_samples, info, options.dataset,
                                    parse_memory_budget(c.memory_budget));
  Features f = read_features(path, options);
  if (f.n_dropped > 0)
    std::cerr << "segforge: " << f.path << ":" << f.dataset << ": dropped " << f.n_dropped
              << " rows with NaN or Inf (--nan-policy drop)\n";
  if (warn_ids) warn_repeated_ids(f);
  return f;
}

void warn_repeated_ids(const Features& f) {
  if (f.ids.empty() || !output_rank()) return;
  const RepeatedIds r = repeated_ids(f.ids);
  if (r.rows == 0) return;
  std::string shown = r.id;  // control characters would act on the terminal
  for (char& ch : shown)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  std::cerr << "segforge: warning: " << f.path << ":/ids: " << r.rows << " rows repeat an id of an earlier row "
            << "(first: '" << shown << "' on rows " << r.first_row + 1 << " and " << r.repeat_row + 1
            << "); each row keeps its own line in segments.csv and the labels, so a CRM import keyed on the id "
            << "sees that id more than once\n";
}

std::string where(const Features& f) { return f.path + ":" + f.dataset; }

json json_output(const std::string& format) {
  return {{"format", format}, {"format_version", 1}};
}

std::vector<std::int64_t> sizes_of(std::span<const std::int32_t> labels, int k) {
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(k), 0);
  for (auto l : labels)
    if (l >= 0) ++sizes[static_cast<std::size_t>(l)];  // -1: DBSCAN's outliers, in no segment
  return sizes;
}

namespace {
std::vector<float> euclidean(const std::vector<float>& sq) {
  std::vector<float> out(sq.size());
  for (std::size_t i = 0; i < sq.size(); ++i) out[i] = std::sqrt(sq[i]);
  return out;
}

}  // namespace

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
            SilhouetteSpec spec, std::uint64_t seed, ProgressLine& line,
            SilhouetteResult* silhouette) {
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
    if (silhouette) *silhouette = s;
  }
  out["davies_bouldin"] = davies_bouldin(backend, data, labels, k);
  out["calinski_harabasz"] = calinski_harabasz(backend, data, labels, k);
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

}  // namespace segforge::cli
