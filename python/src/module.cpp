// _segforge: the native core of the Python package. Every call runs the engine's own drivers
// (fit_lloyd, fit_minibatch, predict, the metrics, the sweep) and the model I/O of src/io on a
// Backend from make_backend, as the CLI does; nothing here re-implements an algorithm. The pure-
// Python layer (python/segforge/) validates with scikit-learn's helpers and hands over
// C-contiguous float32 arrays, which are lent to the backend in place (Backend::borrow).

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "segforge/agglomerative.hpp"
#include "segforge/backend.hpp"
#include "segforge/dbscan.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/metrics.hpp"
#include "segforge/segments.hpp"
#include "segforge/select.hpp"
#include "segforge/validate.hpp"

namespace py = pybind11;
namespace sf = segforge;

namespace {

/// Thrown through a driver when Python asked it to stop (KeyboardInterrupt, or an exception from
/// the progress callback). The Python error stays set on the thread; the binding re-raises it
/// once the GIL is back.
struct PythonStop {};

/// Debug hook: the host address the last dataset read its rows from (0 when not host-resident),
/// so tests can check that a float32 C-contiguous array was used without a copy.
std::uintptr_t g_last_rows_address = 0;

/// A C-contiguous float32 2-D numpy array as a view. The Python layer converts (or refuses to,
/// under copy=False) before it calls here, so anything else is a bug of that layer.
sf::MatrixView<const float> matrix_view(const py::array& a, const char* name) {
  if (!py::isinstance<py::array_t<float, py::array::c_style>>(a) || a.ndim() != 2)
    throw std::invalid_argument(std::string(name) + " must be a C-contiguous float32 2-D array");
  return {static_cast<const float*>(a.data()), static_cast<std::int64_t>(a.shape(0)),
          static_cast<std::int64_t>(a.shape(1))};
}

std::span<const float> weight_span(const std::optional<py::array>& w, std::int64_t n) {
  if (!w) return {};
  if (!py::isinstance<py::array_t<float, py::array::c_style>>(*w) || w->ndim() != 1 ||
      w->shape(0) != n)
    throw std::invalid_argument("sample_weight must be a contiguous float32 array of n_samples values");
  return {static_cast<const float*>(w->data()), static_cast<std::size_t>(n)};
}

std::span<const std::int32_t> label_span(const py::array& a, std::int64_t n) {
  if (!py::isinstance<py::array_t<std::int32_t, py::array::c_style>>(a) || a.ndim() != 1 ||
      a.shape(0) != n)
    throw std::invalid_argument("labels must be a contiguous int32 array of n_samples values");
  return {static_cast<const std::int32_t*>(a.data()), static_cast<std::size_t>(n)};
}

template <class T>
py::array_t<T> to_numpy(std::vector<T> v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {sizeof(T)}, heap->data(), owner);
}

template <class T>
py::array_t<T> to_numpy(sf::Matrix<T> m) {
  const auto rows = static_cast<py::ssize_t>(m.rows()), cols = static_cast<py::ssize_t>(m.cols());
  using Storage = typename sf::Matrix<T>::Storage;
  auto* heap = new Storage(std::move(m.values()));
  py::capsule owner(heap, [](void* p) { delete static_cast<Storage*>(p); });
  return py::array_t<T>({rows, cols}, {static_cast<py::ssize_t>(cols * sizeof(T)), static_cast<py::ssize_t>(sizeof(T))},
                        heap->data(), owner);
}

sf::Matrix<float> copy_matrix(sf::MatrixView<const float> v) {
  return sf::Matrix<float>(v.rows, v.cols, sf::Matrix<float>::Storage(v.data, v.data + v.size()));
}

sf::Init parse_init(const std::string& s) {
  if (s == "k-means++") return sf::Init::kmeans_pp;
  if (s == "scalable-k-means++") return sf::Init::scalable_kmeans_pp;
  if (s == "random") return sf::Init::random;
  if (s == "array") return sf::Init::given;
  throw sf::InputError("init='" + s + "': use 'k-means++', 'scalable-k-means++', 'random' or an array");
}

sf::Refine parse_refine(const std::string& s) {
  if (s == "none") return sf::Refine::none;
  if (s == "random_swap") return sf::Refine::random_swap;
  if (s == "auto") return sf::Refine::auto_select;
  throw sf::InputError("refine='" + s + "': use 'none', 'random_swap' or 'auto'");
}

/// The Backend of one (device, n_threads) pair, kept by the Python layer across calls (a CUDA
/// context costs a fraction of a second to make).
class Engine {
 public:
  Engine(const std::string& device, int n_threads) {
    sf::DeviceChoice choice;
    if (device == "auto") choice = sf::DeviceChoice::auto_select;
    else if (device == "gpu") choice = sf::DeviceChoice::gpu;
    else if (device == "cpu") choice = sf::DeviceChoice::cpu;
    else throw sf::InputError("device='" + device + "': use 'auto', 'gpu' or 'cpu'");
    backend_ = sf::make_backend(choice, n_threads, &note_);
    info_ = backend_->info();
  }
  sf::Backend& backend() { return *backend_; }
  const std::string& note() const { return note_; }
  const sf::BackendInfo& info() const { return info_; }

  /// The rows lent to the backend for one call (the caller keeps the array alive).
  std::unique_ptr<sf::Dataset> lend(sf::MatrixView<const float> x, std::span<const float> w) {
    auto data = backend_->borrow(x, w);
    g_last_rows_address = reinterpret_cast<std::uintptr_t>(data->host_rows());
    return data;
  }

 private:
  std::unique_ptr<sf::Backend> backend_;
  std::string note_;
  sf::BackendInfo info_;
};

/// Runs `fn` with the GIL released; the progress function it gets calls `callback` (when not
/// None) with the GIL held and checks for Ctrl-C, stopping the driver by an exception.
template <class Fn>
auto run_released(const py::object& callback, Fn&& fn) {
  const bool has_callback = !callback.is_none();
  sf::ProgressFn progress = [&callback, has_callback](const sf::Progress& p) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw PythonStop{};
    if (!has_callback) return;
    try {
      py::dict d;
      d["phase"] = p.phase;
      d["run"] = p.run;
      d["step"] = p.step;
      d["total"] = p.total;
      d["inertia"] = p.inertia ? py::object(py::float_(*p.inertia)) : py::object(py::none());
      callback(d);
    } catch (py::error_already_set& e) {
      e.restore();
      throw PythonStop{};
    }
  };
  try {
    py::gil_scoped_release release;
    return fn(progress);
  } catch (const PythonStop&) {
    throw py::error_already_set();
  }
}

py::dict result_dict(Engine& engine, sf::KMeansResult r, const sf::Assignment& a) {
  py::dict out;
  out["cluster_centers"] = to_numpy(std::move(r.centroids));
  out["counts"] = to_numpy(std::move(r.counts));
  out["inertia"] = r.inertia;
  out["n_iter"] = r.n_iter;
  out["converged"] = r.converged;
  out["n_empty_relocated"] = r.n_empty_relocated;
  out["best_run"] = r.best_run;
  out["run_inertia"] = to_numpy(std::move(r.run_inertia));
  out["labels"] = to_numpy(a.labels);
  out["init_seconds"] = r.init_seconds;
  out["iter_seconds"] = r.iter_seconds;
  out["backend"] = engine.info().name;
  out["device"] = engine.info().device;
  return out;
}

py::dict fit_kmeans(Engine& engine, const py::array& x, const std::optional<py::array>& weights,
                    int n_clusters, const std::string& init, const std::optional<py::array>& init_centers,
                    int n_init, int max_iter, double tol, std::uint64_t seed, const std::string& refine,
                    const py::object& progress) {
  const auto call_start = std::chrono::steady_clock::now();
  const auto xv = matrix_view(x, "X");
  const auto wv = weight_span(weights, xv.rows);
  sf::LloydParams p;
  p.n_clusters = n_clusters;
  p.max_iter = max_iter;
  p.tol = tol;
  p.n_init = n_init;
  p.seed = seed;
  p.init.init = parse_init(init);
  p.refine = parse_refine(refine);
  if (p.init.init == sf::Init::given) {
    if (!init_centers) throw sf::InputError("init: the array of initial centres is missing");
    p.init.centroids = copy_matrix(matrix_view(*init_centers, "init"));
    sf::validate_centroids(p.init.centroids.view(), n_clusters, xv.cols, "init");
  }
  sf::validate(p, xv.rows, xv.cols, "X");
  return run_released(progress, [&](const sf::ProgressFn& fn) {
    auto data = engine.lend(xv, wv);
    sf::KMeansResult r = sf::fit_lloyd(engine.backend(), *data, p, fn);
    const auto t0 = std::chrono::steady_clock::now();
    sf::Assignment a = sf::predict(engine.backend(), *data, r.centroids.view());
    const std::chrono::duration<double> labels_seconds = std::chrono::steady_clock::now() - t0;
    py::gil_scoped_acquire gil;
    py::dict out = result_dict(engine, std::move(r), a);
    // bench/py_bench.py: the final labelling pass, and the whole native call (what Python's
    // wall time minus this leaves is the Python layer's own cost).
    out["labels_seconds"] = labels_seconds.count();
    out["call_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - call_start).count();
    return out;
  });
}

py::dict fit_minibatch(Engine& engine, const py::array& x, const std::optional<py::array>& weights,
                       int n_clusters, const std::string& init,
                       const std::optional<py::array>& init_centers, int n_init, int max_iter,
                       double tol, int batch_size, int max_no_improvement,
                       double reassignment_ratio, int init_size, std::uint64_t seed,
                       const py::object& progress) {
  const auto xv = matrix_view(x, "X");
  const auto wv = weight_span(weights, xv.rows);
  sf::MiniBatchParams p;
  p.n_clusters = n_clusters;
  p.batch_size = batch_size;
  p.max_iter = max_iter;
  p.tol = tol;
  p.max_no_improvement = max_no_improvement;
  p.reassignment_ratio = reassignment_ratio;
  p.n_init = n_init;
  p.seed = seed;
  p.init_size = init_size;
  p.init.init = parse_init(init);
  if (p.init.init == sf::Init::given) {
    if (!init_centers) throw sf::InputError("init: the array of initial centres is missing");
    p.init.centroids = copy_matrix(matrix_view(*init_centers, "init"));
    sf::validate_centroids(p.init.centroids.view(), n_clusters, xv.cols, "init");
  }
  sf::validate(p, xv.rows, xv.cols, "X");
  return run_released(progress, [&](const sf::ProgressFn& fn) {
    auto data = engine.lend(xv, wv);
    sf::KMeansResult r = sf::fit_minibatch(engine.backend(), *data, p, fn);
    sf::Assignment a = sf::predict(engine.backend(), *data, r.centroids.view());
    py::gil_scoped_acquire gil;
    return result_dict(engine, std::move(r), a);
  });
}

/// Starting centres by the engine's init (partial_fit's first call). [out] [n_clusters x n_features]
py::array_t<float> init_centers(Engine& engine, const py::array& x, int n_clusters,
                                const std::string& init, std::uint64_t seed) {
  const auto xv = matrix_view(x, "X");
  sf::InitParams p;
  p.init = parse_init(init);
  sf::Matrix<float> c;
  {
    py::gil_scoped_release release;
    auto data = engine.lend(xv, {});
    c = sf::init_centroids(engine.backend(), *data, n_clusters, p, seed);
  }
  return to_numpy(std::move(c));
}

/// partial_fit: one mini-batch step over all rows of x (scikit-learn's partial_fit uses the whole
/// array as the batch), through Backend::minibatch_step. Returns (centres, counts, batch inertia).
py::tuple minibatch_partial_step(Engine& engine, const py::array& x,
                                 const std::optional<py::array>& weights, const py::array& centers,
                                 const py::array& counts) {
  const auto xv = matrix_view(x, "X");
  const auto wv = weight_span(weights, xv.rows);
  sf::Matrix<float> c = copy_matrix(matrix_view(centers, "centers"));
  if (c.cols() != xv.cols)
    throw sf::InputError("X has " + std::to_string(xv.cols) + " features, but the model has " +
                         std::to_string(c.cols()));
  if (!py::isinstance<py::array_t<double, py::array::c_style>>(counts) || counts.ndim() != 1 ||
      counts.shape(0) != c.rows())
    throw std::invalid_argument("counts must be float64 [n_clusters]");
  std::vector<double> n(static_cast<const double*>(counts.data()),
                        static_cast<const double*>(counts.data()) + c.rows());
  double inertia = 0.0;
  {
    py::gil_scoped_release release;
    auto data = engine.lend(xv, wv);
    std::vector<std::int64_t> batch(static_cast<std::size_t>(xv.rows));
    std::iota(batch.begin(), batch.end(), std::int64_t{0});
    inertia = engine.backend().minibatch_step(*data, batch, c.view(), n);
  }
  return py::make_tuple(to_numpy(std::move(c)), to_numpy(std::move(n)), inertia);
}

/// Labels, squared distances and inertia of x against `centers`.
py::tuple predict(Engine& engine, const py::array& x, const std::optional<py::array>& weights,
                  const py::array& centers) {
  const auto xv = matrix_view(x, "X");
  const auto wv = weight_span(weights, xv.rows);
  const auto cv = matrix_view(centers, "centers");
  sf::Assignment a;
  {
    py::gil_scoped_release release;
    auto data = engine.lend(xv, wv);
    a = sf::predict(engine.backend(), *data, cv);
    // predict's inertia is unweighted; the weighted one is the fused pass's Σ w·min ||x − c||²
    // (what fit reports), so score(X, sample_weight=w) counts the weights.
    if (!wv.empty()) a.inertia = engine.backend().assign_accumulate(*data, cv).inertia;
  }
  return py::make_tuple(to_numpy(std::move(a.labels)), to_numpy(std::move(a.sq_distances)), a.inertia);
}

/// Euclidean distances [n_samples x n_clusters] of x to `centers` (Backend::distance_tile).
py::array_t<float> transform(Engine& engine, const py::array& x, const py::array& centers) {
  const auto xv = matrix_view(x, "X");
  const auto cv = matrix_view(centers, "centers");
  sf::Matrix<float> d;
  {
    py::gil_scoped_release release;
    auto data = engine.lend(xv, {});
    auto c = engine.backend().upload(cv);
    d = engine.backend().distance_tile(*data, 0, xv.rows, *c, 0, cv.rows, false);
  }
  return to_numpy(std::move(d));
}

py::dict silhouette(Engine& engine, const py::array& x, const py::array& labels, int n_clusters,
                    std::int64_t sample_size, std::uint64_t seed, int n_bootstrap,
                    const py::object& progress) {
  const auto xv = matrix_view(x, "X");
  const auto lv = label_span(labels, xv.rows);
  sf::validate_label_count(lv, n_clusters, "labels");
  return run_released(progress, [&](const sf::ProgressFn& fn) {
    auto data = engine.lend(xv, {});
    sf::SilhouetteResult r =
        sample_size > 0 && sample_size < xv.rows
            ? sf::silhouette_sampled(engine.backend(), *data, lv, n_clusters, sample_size, seed,
                                     n_bootstrap, fn)
            : sf::silhouette_exact(engine.backend(), *data, lv, n_clusters, fn);
    py::gil_scoped_acquire gil;
    py::dict out;
    out["score"] = r.score;
    out["values"] = to_numpy(std::move(r.values));
    out["rows"] = to_numpy(std::move(r.rows));
    out["sampled"] = r.sampled;
    out["standard_error"] =
        r.standard_error ? py::object(py::float_(*r.standard_error)) : py::object(py::none());
    return out;
  });
}

double davies_bouldin(Engine& engine, const py::array& x, const py::array& labels, int n_clusters) {
  const auto xv = matrix_view(x, "X");
  const auto lv = label_span(labels, xv.rows);
  sf::validate_label_count(lv, n_clusters, "labels");
  py::gil_scoped_release release;
  auto data = engine.lend(xv, {});
  return sf::davies_bouldin(engine.backend(), *data, lv, n_clusters);
}

double calinski_harabasz(Engine& engine, const py::array& x, const py::array& labels, int n_clusters) {
  const auto xv = matrix_view(x, "X");
  const auto lv = label_span(labels, xv.rows);
  sf::validate_label_count(lv, n_clusters, "labels");
  py::gil_scoped_release release;
  auto data = engine.lend(xv, {});
  return sf::calinski_harabasz(engine.backend(), *data, lv, n_clusters);
}

py::object opt(const std::optional<double>& v) {
  return v ? py::object(py::float_(*v)) : py::object(py::none());
}

py::dict sweep(Engine& engine, const py::array& x, int k_min, int k_max,
               const std::vector<std::string>& criteria, const std::string& init, int n_init,
               int max_iter, double tol, std::uint64_t seed, std::int64_t silhouette_sample,
               int gap_references, std::int64_t min_segment_size, const py::object& progress) {
  const auto xv = matrix_view(x, "X");
  sf::SweepParams p;
  p.k_min = k_min;
  p.k_max = k_max;
  p.criteria.clear();
  for (const auto& c : criteria) {
    bool found = false;
    for (const sf::Criterion k : sf::kAllCriteria)
      if (sf::criterion_name(k) == c) {
        p.criteria.push_back(k);
        found = true;
      }
    if (!found)
      throw sf::InputError("criteria: unknown '" + c +
                           "'; use elbow, silhouette, gap, davies_bouldin, calinski_harabasz");
  }
  p.lloyd.init.init = parse_init(init);
  if (p.lloyd.init.init == sf::Init::given) throw sf::InputError("sweep: init cannot be an array");
  p.lloyd.n_init = n_init;
  p.lloyd.max_iter = max_iter;
  p.lloyd.tol = tol;
  p.lloyd.seed = seed;
  p.seed = seed;
  p.silhouette_sample = silhouette_sample;
  p.gap_references = gap_references;
  p.min_segment_size = min_segment_size;
  sf::validate_sweep(p, xv.rows, xv.cols, "X");
  return run_released(progress, [&](const sf::ProgressFn& fn) {
    auto data = engine.lend(xv, {});
    sf::SweepResult r = sf::sweep(engine.backend(), *data, p, fn);
    py::gil_scoped_acquire gil;
    py::list records;
    for (const auto& rec : r.records) {
      py::dict d;
      d["k"] = rec.k;
      d["inertia"] = rec.inertia;
      d["n_iter"] = rec.n_iter;
      d["converged"] = rec.converged;
      d["smallest_segment"] = rec.smallest_segment;
      d["over_segmented"] = rec.over_segmented;
      d["silhouette"] = opt(rec.silhouette);
      d["silhouette_standard_error"] = opt(rec.silhouette_standard_error);
      d["davies_bouldin"] = opt(rec.davies_bouldin);
      d["calinski_harabasz"] = opt(rec.calinski_harabasz);
      d["gap"] = opt(rec.gap);
      d["gap_s"] = opt(rec.gap_s);
      d["kneedle_difference"] = opt(rec.kneedle_difference);
      d["sizes"] = rec.sizes;
      d["seconds"] = rec.seconds;
      records.append(d);
    }
    py::dict choices;
    py::dict notes;
    for (const auto& c : r.choices) {
      choices[py::str(sf::criterion_name(c.criterion))] =
          c.k ? py::object(py::int_(*c.k)) : py::object(py::none());
      notes[py::str(sf::criterion_name(c.criterion))] = c.note;
    }
    py::dict out;
    out["records"] = records;
    out["choices"] = choices;
    out["notes"] = notes;
    out["recommended_k"] = r.recommended_k;
    out["reason"] = r.reason;
    out["warnings"] = r.warnings;
    out["min_segment_size"] = r.min_segment_size;
    out["silhouette_method"] = r.silhouette_method;
    out["seconds"] = r.seconds;
    return out;
  });
}

// ---- model.h5 (src/io/model.cpp, the CLI's reader and writer) --------------------------------

py::dict load_model(const std::string& path) {
  sf::Model m = sf::read_model(path);  // validated by the reader
  py::dict out;
  out["centroids"] = to_numpy(std::move(m.centroids));
  out["feature_names"] = m.feature_names;
  out["segment_names"] = m.segment_names;
  out["segment_sizes"] = m.segment_sizes;
  out["counts"] = to_numpy(std::move(m.counts));
  out["dbscan_core_rows"] = to_numpy(std::move(m.dbscan_core_rows));
  out["dbscan_core_labels"] = to_numpy(std::move(m.dbscan_core_labels));
  out["attributes"] = m.attributes;
  out["scaler_mean"] = m.scaler.mean;
  out["scaler_scale"] = m.scaler.scale;
  out["scaler_transform"] = m.scaler.transform;
  // A hierarchical model's tree (agglomerative; empty otherwise): its leaves, each leaf's segment
  // and size, and SciPy's linkage matrix over the leaves.
  out["hierarchy_leaves"] = to_numpy(std::move(m.hierarchy_leaves));
  out["hierarchy_leaf_labels"] = to_numpy(std::move(m.hierarchy_leaf_labels));
  out["hierarchy_leaf_sizes"] = to_numpy(std::move(m.hierarchy_leaf_sizes));
  out["hierarchy_merges"] = to_numpy(std::move(m.hierarchy_merges));
  return out;
}

void save_model(const std::string& path, const py::array& centroids,
                const std::vector<std::string>& feature_names,
                const std::vector<std::string>& segment_names,
                const std::vector<std::int64_t>& segment_sizes, const std::vector<double>& counts,
                const std::map<std::string, std::string>& attributes) {
  sf::Model m;
  m.centroids = copy_matrix(matrix_view(centroids, "cluster_centers_"));
  m.feature_names = feature_names;
  m.segment_names = segment_names;
  m.segment_sizes = segment_sizes;
  m.counts = counts;
  m.attributes = attributes;
  sf::validate_model(m, path);
  sf::write_model(path, m);
}


// ---- segments: profiles, names, stability (src/segments, as fit, report and stability use them) --

/// Runs one of the file readers' validators (src/validate.cpp) on arguments from Python: same
/// checks and wording, but the remedy names the argument to fix instead of segforge-prep.
template <class Fn>
void check_argument(const std::string& argument, Fn&& fn) {
  try {
    fn();
  } catch (const sf::InputError& e) {
    std::string what = e.what();
    const std::string prep = "; prepare the file again with segforge-prep";
    if (what.ends_with(prep)) what.resize(what.size() - prep.size());
    throw sf::InputError(what + "; fix the " + argument + " argument");
  }
}

/// A scaler from the Python layer's dict (mean, scale, transform, optional clip_low/clip_high);
/// None: no scaler. Checked by the readers' own validate_scaler.
sf::Scaler scaler_from(const py::object& o, std::int64_t n_features, const std::string& where) {
  sf::Scaler s;
  if (o.is_none()) return s;
  const py::dict d = o.cast<py::dict>();
  s.mean = d["mean"].cast<std::vector<double>>();
  s.scale = d["scale"].cast<std::vector<double>>();
  s.transform = d["transform"].cast<std::vector<std::string>>();
  if (d.contains("clip_low") && !d["clip_low"].is_none()) s.clip_low = d["clip_low"].cast<std::vector<double>>();
  if (d.contains("clip_high") && !d["clip_high"].is_none()) s.clip_high = d["clip_high"].cast<std::vector<double>>();
  check_argument("scaler", [&] { sf::validate_scaler(s, n_features, where, sf::FileKind::features); });
  return s;
}

py::object scaler_dict(const sf::Scaler& s) {
  if (s.empty()) return py::none();
  py::dict d;
  d["mean"] = s.mean;
  d["scale"] = s.scale;
  d["transform"] = s.transform;
  d["clip_low"] = s.clip_low.empty() ? py::object(py::none()) : py::cast(s.clip_low);
  d["clip_high"] = s.clip_high.empty() ? py::object(py::none()) : py::cast(s.clip_high);
  return d;
}

/// Profiles and automatic names of the segments `labels` makes of x, as `segforge fit` makes
/// them (segment_profiles over the data's column statistics, then name_segments). The centres
/// are `centers` when given (a fitted model's), else each segment's mean row (label_stats), so
/// a label with no rows needs `centers`. roles: one word per feature, "" = infer from the name.
/// Returns {"profiles": [dict per segment], "names": [dict per segment]}.
py::dict describe_segments(Engine& engine, const py::array& x, const py::array& labels, int n_clusters,
                           const std::optional<py::array>& centers, const py::object& scaler,
                           const std::vector<std::string>& feature_names,
                           const std::vector<std::string>& roles, const std::string& audience, int n_top) {
  const auto xv = matrix_view(x, "X");
  const auto lv = label_span(labels, xv.rows);
  if (static_cast<std::int64_t>(feature_names.size()) != xv.cols)
    throw sf::InputError("feature_names: " + std::to_string(feature_names.size()) + " names for " +
                         std::to_string(xv.cols) + " columns of X; give one per column");
  check_argument("feature_names", [&] {
    sf::validate_feature_names(feature_names, xv.cols, "feature_names", sf::FileKind::features);
  });
  std::vector<sf::FeatureRole> role_values;
  if (!roles.empty()) {
    if (static_cast<std::int64_t>(roles.size()) != xv.cols)
      throw sf::InputError("roles: " + std::to_string(roles.size()) + " roles for " + std::to_string(xv.cols) +
                           " features; give one per feature (None or '' to infer it from the name)");
    for (std::size_t j = 0; j < roles.size(); ++j)
      if (!roles[j].empty() && !sf::parse_feature_role(roles[j]))
        throw sf::InputError("roles: '" + roles[j] + "' for feature '" + feature_names[j] +
                             "' is not a role; use " + sf::feature_role_list());
    role_values = sf::feature_roles(feature_names, roles);
  }
  const auto aud = sf::parse_audience(audience);
  if (!aud) throw sf::InputError("audience='" + audience + "': use 'auto', 'donors' or 'customers'");
  if (n_top < 0) throw sf::InputError("n_top=" + std::to_string(n_top) + ": use an int >= 0");
  const sf::Scaler sc = scaler_from(scaler, xv.cols, "scaler");
  std::optional<sf::Matrix<float>> given;
  if (centers) {
    given = copy_matrix(matrix_view(*centers, "centers"));
    sf::validate_centroids(given->view(), n_clusters, xv.cols, "centers");
  }
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(n_clusters), 0);
  for (const std::int32_t l : lv) {
    if (l < 0 || l >= n_clusters) throw std::invalid_argument("labels out of range (the Python layer checks)");
    ++sizes[static_cast<std::size_t>(l)];
  }
  std::vector<sf::SegmentProfile> profiles;
  {
    py::gil_scoped_release release;
    auto data = engine.lend(xv, {});
    sf::Matrix<float> c;
    if (given) {
      c = std::move(*given);
    } else {
      const sf::LabelStats st = engine.backend().label_stats(*data, lv, n_clusters, {});
      c = sf::Matrix<float>(n_clusters, xv.cols);
      for (int k = 0; k < n_clusters; ++k)
        for (std::int64_t j = 0; j < xv.cols; ++j)
          c(k, j) = static_cast<float>(st.sums[static_cast<std::size_t>(k * xv.cols + j)] /
                                       st.counts[static_cast<std::size_t>(k)]);
    }
    profiles = sf::segment_profiles(c.view(), sizes, engine.backend().column_stats(*data), sc, n_top);
  }
  const std::vector<sf::SegmentEntry> entries = sf::name_segments(profiles, feature_names, role_values, *aud);
  py::list prof, names;
  for (std::size_t k = 0; k < profiles.size(); ++k) {
    const sf::SegmentProfile& p = profiles[k];
    py::dict d;
    d["segment"] = p.segment;
    d["size"] = p.size;
    d["share"] = p.share;
    d["centre"] = p.centre;
    d["centre_original"] = p.centre_original;
    d["z_scores"] = p.z_scores;
    d["top_features"] = p.top_features;
    prof.append(d);
    py::dict e;
    e["segment"] = p.segment;
    e["name"] = entries[k].name;
    e["description"] = entries[k].description;
    e["outreach"] = entries[k].outreach;
    names.append(e);
  }
  py::dict out;
  out["profiles"] = prof;
  out["names"] = names;
  return out;
}

/// segforge stability's computation (src/segments/stability.cpp) on x; the keys of its JSON.
py::dict stability(Engine& engine, const py::array& x, int n_clusters, int runs, double sample_fraction,
                   const std::string& init, int n_init, const std::string& refine, std::uint64_t seed,
                   std::int64_t max_eval_rows, double ari_threshold, double jaccard_threshold,
                   const py::object& progress) {
  const auto xv = matrix_view(x, "X");
  sf::StabilityParams p;
  p.n_clusters = n_clusters;
  p.runs = runs;
  p.sample_fraction = sample_fraction;
  p.seed = seed;
  p.max_eval_rows = max_eval_rows;
  p.ari_threshold = ari_threshold;
  p.jaccard_threshold = jaccard_threshold;
  p.lloyd.init.init = parse_init(init);
  if (p.lloyd.init.init == sf::Init::given)
    throw sf::InputError("stability: init cannot be an array (every run re-seeds); use 'k-means++', "
                         "'scalable-k-means++' or 'random'");
  p.lloyd.n_init = n_init;
  p.lloyd.seed = seed;
  p.lloyd.refine = parse_refine(refine);
  sf::validate_stability(p, xv.rows, xv.cols, "X");
  return run_released(progress, [&](const sf::ProgressFn& fn) {
    auto data = engine.lend(xv, {});
    const sf::StabilityResult r = sf::stability(engine.backend(), *data, p, fn);
    py::gil_scoped_acquire gil;
    py::dict out;
    out["k"] = r.n_clusters;
    out["runs"] = r.runs;
    out["sample_fraction"] = r.sample_fraction;
    out["n_samples"] = r.n_samples;
    out["eval_rows"] = r.eval_rows;
    out["ari_mean"] = r.ari_mean;
    out["ari_min"] = r.ari_min;
    out["ari_reference_mean"] = r.ari_reference_mean;
    out["reference_sizes"] = r.reference_sizes;
    out["jaccard_mean"] = r.jaccard_mean;
    out["jaccard_min"] = r.jaccard_min;
    out["segment_verdicts"] = r.segment_verdicts;
    py::dict thr;
    thr["ari_mean"] = r.ari_threshold;
    thr["segment_jaccard"] = r.jaccard_threshold;
    out["thresholds"] = thr;
    out["stable"] = r.stable;
    out["verdict"] = r.verdict;
    out["seconds"] = r.seconds;
    out["backend"] = engine.info().name;
    out["device"] = engine.info().device;
    return out;
  });
}

// ---- features.h5 (src/io/features.cpp, the CLI's reader and writer) --------------------------

py::dict read_features_file(const std::string& path, const std::string& dataset) {
  sf::ReadOptions o;
  o.dataset = dataset;
  sf::Features f;
  sf::FeatureFileInfo info;
  {
    py::gil_scoped_release release;
    f = sf::read_features(path, o);  // validated by the reader, as for the CLI
    info = sf::inspect_features(path, dataset);
  }
  py::dict out;
  out["X"] = to_numpy(std::move(f.x));
  out["feature_names"] = f.feature_names;
  if (!f.ids.numeric.empty()) out["ids"] = to_numpy(std::move(f.ids.numeric));
  else if (!f.ids.text.empty()) out["ids"] = f.ids.text;
  else out["ids"] = py::none();
  out["scaler"] = scaler_dict(f.scaler);
  out["feature_roles"] = f.feature_roles;
  out["audience"] = f.audience;
  out["attributes"] = info.attributes;
  out["checksum"] = f.checksum;
  return out;
}

/// Writes x as a features file the CLI reads, refusing first (nothing written) what its reader
/// would refuse: no rows or columns, a non-finite value, names, roles, audience or scaler that
/// do not fit, ids not one per row.
void write_features_file(const std::string& path, const py::array& x,
                         const std::vector<std::string>& feature_names,
                         const std::optional<py::array>& ids_numeric,
                         const std::optional<std::vector<std::string>>& ids_text, const py::object& scaler,
                         const std::vector<std::string>& feature_roles, const std::string& audience,
                         const std::map<std::string, std::string>& attributes) {
  const auto xv = matrix_view(x, "X");
  if (xv.rows == 0) throw sf::InputError(path + ": X has 0 rows; a features file needs at least one");
  if (xv.cols == 0) throw sf::InputError(path + ": X has 0 columns; store at least one feature per row");
  check_argument("feature_names",
                 [&] { sf::validate_feature_names(feature_names, xv.cols, path, sf::FileKind::features); });
  for (std::int64_t i = 0; i < xv.size(); ++i)
    if (!std::isfinite(xv.data[i])) {
      const auto column = static_cast<std::size_t>(i % xv.cols);
      throw sf::InputError(path + ": X row " + std::to_string(i / xv.cols) + " (0-based), column " +
                           std::to_string(column) +
                           (feature_names.empty() ? "" : " '" + feature_names[column] + "'") + " is " +
                           (std::isnan(xv.data[i]) ? "NaN" : "infinite") +
                           "; the CLI refuses it: clean or drop the row first");
    }
  // A role left "" is inferred from the name now (the stored /feature_roles has every entry).
  std::vector<std::string> roles = feature_roles;
  for (std::size_t j = 0; j < roles.size() && static_cast<std::int64_t>(roles.size()) == xv.cols; ++j)
    if (roles[j].empty())
      roles[j] = sf::feature_role_name(
          sf::feature_role(feature_names.empty() ? "f" + std::to_string(j) : feature_names[j]));
  check_argument("feature_roles", [&] { sf::validate_feature_roles(roles, xv.cols, path, sf::FileKind::features); });
  check_argument("audience", [&] { sf::validate_audience(audience, path, sf::FileKind::features); });
  const sf::Scaler sc = scaler_from(scaler, xv.cols, path);
  sf::Ids ids;
  if (ids_numeric) {
    if (!py::isinstance<py::array_t<std::int64_t, py::array::c_style>>(*ids_numeric) || ids_numeric->ndim() != 1)
      throw std::invalid_argument("ids must be a contiguous int64 array (the Python layer converts)");
    const auto* p = static_cast<const std::int64_t*>(ids_numeric->data());
    ids.numeric.assign(p, p + ids_numeric->shape(0));
  } else if (ids_text) {
    ids.text = *ids_text;
  }
  if (!ids.empty() && ids.size() != xv.rows)
    throw sf::InputError(path + ": " + std::to_string(ids.size()) + " ids for " + std::to_string(xv.rows) +
                         " rows of X; give one id per row");
  std::map<std::string, std::string> attrs = attributes;
  if (!audience.empty()) attrs["audience"] = audience;
  py::gil_scoped_release release;
  sf::write_features(path, xv, feature_names, ids, sc, attrs, {}, roles);
}
}  // namespace

/// DBSCAN (src/cluster/dbscan.cpp): labels (-1 noise), core flags, distances to the nearest core
/// row of the row's cluster (NaN for noise), and what the fit saw.
py::dict fit_dbscan(Engine& engine, const py::array& x, const std::optional<py::array>& weights, double eps,
                    double min_samples) {
  const auto xv = matrix_view(x, "X");
  const auto wv = weight_span(weights, xv.rows);
  sf::validate(sf::DbscanParams{eps, min_samples}, "DBSCAN");
  sf::DbscanResult r;
  {
    py::gil_scoped_release release;
    auto data = engine.lend(xv, wv);
    r = sf::fit_dbscan(engine.backend(), *data, sf::DbscanParams{eps, min_samples});
  }
  py::dict out;
  out["labels"] = to_numpy(std::move(r.labels));
  out["core"] = to_numpy(std::move(r.core));
  out["distances"] = to_numpy(std::move(r.distances));
  out["n_clusters"] = r.n_clusters;
  out["n_noise"] = r.n_noise;
  out["rounds"] = r.rounds;
  out["backend"] = engine.info().name;
  return out;
}

/// New rows: the cluster of the nearest core row within eps, else -1; and that distance.
py::tuple predict_dbscan(Engine& engine, const py::array& x, const py::array& core_rows, const py::array& core_labels,
                         double eps) {
  const auto xv = matrix_view(x, "X");
  const auto cv = matrix_view(core_rows, "components");
  if (cv.cols != xv.cols)
    throw sf::InputError("X has " + std::to_string(xv.cols) + " features, but the model has " + std::to_string(cv.cols));
  const auto lv = label_span(core_labels, cv.rows);
  sf::DbscanAssignment a;
  {
    py::gil_scoped_release release;
    auto data = engine.lend(xv, {});
    auto core = engine.backend().upload(cv);
    a = sf::predict_dbscan(engine.backend(), *data, *core, lv, eps);
  }
  return py::make_tuple(to_numpy(std::move(a.labels)), to_numpy(std::move(a.distances)));
}

sf::AgglomerativeStrategy parse_strategy(const std::string& s) {
  if (s == "auto") return sf::AgglomerativeStrategy::auto_select;
  if (s == "exact") return sf::AgglomerativeStrategy::exact;
  if (s == "two-stage") return sf::AgglomerativeStrategy::two_stage;
  throw sf::InputError("strategy='" + s + "': use 'auto', 'exact' or 'two-stage'");
}

/// Agglomerative clustering (src/cluster/agglomerative.cpp): the exact tree, or two-stage Ward
/// (K-Means micro-clusters, then size-weighted Ward) above 20,000 rows, and its cut by
/// n_clusters or, when given, distance_threshold. Returns the tree as SciPy's linkage matrix
/// [n_leaves - 1 x 4] (merges), each leaf's and row's cluster (numbered by lowest row), and on
/// the two-stage path the leaves (micro-cluster centres), their sizes and each row's leaf.
py::dict fit_agglomerative(Engine& engine, const py::array& x, const std::optional<py::array>& weights,
                           const std::string& linkage, int n_clusters, std::optional<double> distance_threshold,
                           const std::string& strategy, std::int64_t n_micro_clusters, std::uint64_t seed) {
  const auto xv = matrix_view(x, "X");
  const auto wv = weight_span(weights, xv.rows);
  sf::AgglomerativeParams p;
  p.linkage = sf::parse_linkage(linkage);
  p.n_clusters = n_clusters;
  p.distance_threshold = distance_threshold;
  p.strategy = parse_strategy(strategy);
  p.n_micro_clusters = n_micro_clusters;
  p.seed = seed;
  sf::validate(p, xv.rows, "X");
  sf::AgglomerativeResult r;
  {
    py::gil_scoped_release release;
    auto data = engine.lend(xv, wv);
    r = sf::fit_agglomerative(engine.backend(), *data, p);
  }
  sf::Matrix<double> merges(static_cast<std::int64_t>(r.tree.merges.size()), 4);
  for (std::size_t i = 0; i < r.tree.merges.size(); ++i) {
    const sf::Merge& mg = r.tree.merges[i];
    const auto row = static_cast<std::int64_t>(i);
    merges(row, 0) = static_cast<double>(mg.a);
    merges(row, 1) = static_cast<double>(mg.b);
    merges(row, 2) = mg.height;
    merges(row, 3) = mg.size;
  }
  py::dict out;
  out["merges"] = to_numpy(std::move(merges));
  out["n_leaves"] = r.tree.n_leaves;
  out["two_stage"] = r.two_stage;
  out["labels"] = to_numpy(std::move(r.labels));
  out["leaf_labels"] = to_numpy(std::move(r.leaf_labels));
  out["n_clusters"] = r.n_clusters;
  out["micro_labels"] = to_numpy(std::move(r.micro_labels));
  out["micro_centres"] = to_numpy(std::move(r.micro_centres));
  out["micro_sizes"] = to_numpy(std::move(r.micro_sizes));
  out["micro_inertia"] = r.micro_inertia;
  out["micro_n_iter"] = r.micro_n_iter;
  out["micro_seconds"] = r.micro_seconds;
  out["linkage_seconds"] = r.linkage_seconds;
  out["backend"] = engine.info().name;
  out["device"] = engine.info().device;
  return out;
}

/// A hierarchical model's labels for new rows (predict_by_leaves): the cluster of the nearest
/// leaf (ties: the lower leaf), and the distance to that cluster's centroid.
/// [in] leaves [n_leaves x n_features], leaf_labels [n_leaves], centroids [n_clusters x n_features]
py::tuple predict_by_leaves(Engine& engine, const py::array& x, const py::array& leaves, const py::array& leaf_labels,
                            const py::array& centroids) {
  const auto xv = matrix_view(x, "X");
  const auto lv = matrix_view(leaves, "leaves");
  const auto cv = matrix_view(centroids, "centroids");
  if (lv.cols != xv.cols || cv.cols != xv.cols)
    throw sf::InputError("X has " + std::to_string(xv.cols) + " features, but the model has " + std::to_string(lv.cols));
  const auto labels = label_span(leaf_labels, lv.rows);
  for (const std::int32_t l : labels)
    if (l < 0 || l >= cv.rows) throw std::invalid_argument("leaf_labels out of range of the centroids (the Python layer checks)");
  sf::LeafAssignment a;
  {
    py::gil_scoped_release release;
    auto data = engine.lend(xv, {});
    a = sf::predict_by_leaves(engine.backend(), *data, lv, labels, cv);
  }
  return py::make_tuple(to_numpy(std::move(a.labels)), to_numpy(std::move(a.distances)));
}

PYBIND11_MODULE(_segforge, m) {
  m.doc() = "segforge's native core: the engine's drivers and Backend, for the segforge package";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const sf::InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const sf::RuntimeFailure& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
  py::class_<Engine>(m, "Engine")
      .def(py::init<const std::string&, int>(), py::arg("device") = "auto", py::arg("n_threads") = 0)
      .def_property_readonly("note", &Engine::note)
      .def_property_readonly("backend", [](const Engine& e) { return e.info().name; })
      .def_property_readonly("device", [](const Engine& e) { return e.info().device; });
  m.def("fit_kmeans", &fit_kmeans, py::arg("engine"), py::arg("X"), py::arg("sample_weight"),
        py::arg("n_clusters"), py::arg("init"), py::arg("init_centers"), py::arg("n_init"),
        py::arg("max_iter"), py::arg("tol"), py::arg("seed"), py::arg("refine"), py::arg("progress"));
  m.def("fit_minibatch", &fit_minibatch, py::arg("engine"), py::arg("X"), py::arg("sample_weight"),
        py::arg("n_clusters"), py::arg("init"), py::arg("init_centers"), py::arg("n_init"),
        py::arg("max_iter"), py::arg("tol"), py::arg("batch_size"), py::arg("max_no_improvement"),
        py::arg("reassignment_ratio"), py::arg("init_size"), py::arg("seed"), py::arg("progress"));
  m.def("fit_dbscan", &fit_dbscan, py::arg("engine"), py::arg("X"), py::arg("sample_weight"), py::arg("eps"),
        py::arg("min_samples"));
  m.def("predict_dbscan", &predict_dbscan);
  m.def("fit_agglomerative", &fit_agglomerative, py::arg("engine"), py::arg("X"), py::arg("sample_weight"),
        py::arg("linkage"), py::arg("n_clusters"), py::arg("distance_threshold"), py::arg("strategy"),
        py::arg("n_micro_clusters"), py::arg("seed"));
  m.def("predict_by_leaves", &predict_by_leaves, py::arg("engine"), py::arg("X"), py::arg("leaves"),
        py::arg("leaf_labels"), py::arg("centroids"));
  m.def("init_centers", &init_centers);
  m.def("minibatch_partial_step", &minibatch_partial_step);
  m.def("predict", &predict);
  m.def("transform", &transform);
  m.def("silhouette", &silhouette);
  m.def("davies_bouldin", &davies_bouldin);
  m.def("calinski_harabasz", &calinski_harabasz);
  m.def("sweep", &sweep);
  m.def("load_model", &load_model);
  m.def("save_model", &save_model);
  m.def("describe_segments", &describe_segments);
  m.def("stability", &stability);
  m.def("read_features", &read_features_file);
  m.def("write_features", &write_features_file);
  m.def("_last_rows_address", [] { return g_last_rows_address; },
        "debug hook: host address the last dataset read its rows from (0: not host-resident)");
  m.attr("__version__") = SEGFORGE_VERSION;
}
