// segforge_bench: the end-to-end benchmark runner. Reads an HDF5 feature file, runs one task with
// the given settings and prints one JSON line per repetition: phase times, iterations, inertia,
// peak RSS, backend and device. bench/peers.py drives it beside scikit-learn and FAISS on the same
// files and starting centres. Not a test: the numbers go in bench/RESULTS.md.
//
//   segforge_bench lloyd FEATURES.h5 --init INIT.h5 [--iters 20] [--tol 0] [--reps 1]
//   segforge_bench minibatch FEATURES.h5 --init INIT.h5 [--batch-size 1024] [--epochs 1]
//                  [--max-no-improvement 0] [--seed 0] [--reps 1]
//   segforge_bench silhouette FEATURES.h5 --labels LABELS.h5 [--labels-dataset /labels] [--reps 1]
//   segforge_bench read FEATURES.h5 [--reps 1]
//   common: [--threads 0] [--device cpu|auto|gpu] [--centroids-out OUT.h5] [--tag TEXT]
//
// read: per repetition, features_s reads the file as the tools do but without the checksum
// (/features, names, ids into memory; features_gbs = N·D·4 bytes / features_s), read_s as the
// tools do (with the checksum: one more pass over the file's bytes).
// Phase times in seconds: read (HDF5 to memory), upload (into the backend: copy, row norms),
// init (the driver's init, a copy for --init), iter (the driver's iterations, its final
// assignment pass included), fit (the whole driver call, column statistics included). Lloyd's
// ms_per_iter is fit / n_iter, as bench_lloyd and scikit-learn's whole-fit / n_iter_.
// The file's copy of the matrix is freed once the backend holds its own.
// peak_rss_mb is VmHWM over the task (reset before it where Linux allows: peak_reset); rss_before_mb
// is VmRSS just before the task (data loaded and uploaded).

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/metrics.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// A field of /proc/self/status in MiB (VmHWM: peak resident set; VmRSS: current), 0 if absent.
double proc_status_mib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  return 0.0;
}

struct Options {
  std::string task, features, init, labels, labels_dataset = "/labels", centroids_out, tag;
  std::string device = "cpu";
  int iters = 20, reps = 1, threads = 0, batch_size = 1024, epochs = 1, max_no_improvement = 0;
  double tol = 0.0;
  std::uint64_t seed = 0;
};

/// Resets VmHWM to the current RSS (Linux: 5 > /proc/self/clear_refs), so the peak measured
/// afterwards belongs to the task, not to reading the file. False where not allowed.
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

segforge::DeviceChoice parse_device(const std::string& s) {
  if (s == "cpu") return segforge::DeviceChoice::cpu;
  if (s == "gpu") return segforge::DeviceChoice::gpu;
  return segforge::DeviceChoice::auto_select;
}

int run(const Options& o) {
  using namespace segforge;
  using json = nlohmann::ordered_json;
  if (o.task == "read") {
    for (int rep = 0; rep < o.reps; ++rep) {
      ReadOptions quick;
      quick.checksum = false;
      auto t0 = Clock::now();
      Features f = read_features(o.features, quick);
      const double features_s = seconds_since(t0);
      const double bytes = static_cast<double>(f.x.size()) * sizeof(float);
      f = Features();
      t0 = Clock::now();
      f = read_features(o.features);
      const double read_s = seconds_since(t0);
      json out;
      out["impl"] = "segforge";
      out["task"] = "read";
      if (!o.tag.empty()) out["tag"] = o.tag;
      out["rep"] = rep;
      out["n"] = f.x.rows();
      out["d"] = f.x.cols();
      out["features_s"] = features_s;
      out["features_gbs"] = bytes / features_s / 1e9;
      out["read_s"] = read_s;
      std::printf("%s\n", out.dump().c_str());
    }
    return 0;
  }
  std::string note;
  auto backend = make_backend(parse_device(o.device), o.threads, &note);
  if (!note.empty()) std::fprintf(stderr, "segforge_bench: %s\n", note.c_str());

  auto t0 = Clock::now();
  Features f = read_features(o.features);
  const double read_s = seconds_since(t0);
  t0 = Clock::now();
  auto data = backend->upload(f.x.view());
  const double upload_s = seconds_since(t0);
  const std::int64_t n = f.x.rows(), d = f.x.cols();
  // The backend holds its own copy: free the file's, so that peak RSS is the engine's (segforge
  // fit keeps both, for the ids of its outputs).
  f.x = Matrix<float>();

  Matrix<float> init;
  if (!o.init.empty()) init = read_model(o.init).centroids;
  std::vector<std::int32_t> labels;
  int k = static_cast<int>(init.rows());
  if (o.task == "silhouette") {
    labels = read_extra_int32s(o.labels, o.labels_dataset);
    if (static_cast<std::int64_t>(labels.size()) != n)
      throw InputError(o.labels + ":" + o.labels_dataset + ": " + std::to_string(labels.size()) +
                       " labels for " + std::to_string(n) + " rows");
    k = 0;
    for (auto l : labels) k = std::max(k, l + 1);
  } else if (init.empty()) {
    throw InputError("--init is required for " + o.task);
  }

  for (int rep = 0; rep < o.reps; ++rep) {
    const double rss_before = proc_status_mib("VmRSS");
    const bool peak_reset = reset_peak_rss();
    json out;
    out["impl"] = "segforge";
    out["task"] = o.task;
    if (!o.tag.empty()) out["tag"] = o.tag;
    out["rep"] = rep;
    out["backend"] = backend->info().name;
    out["device"] = backend->info().device;
    out["n"] = n;
    out["d"] = d;
    out["k"] = k;
    json phases;
    phases["read_s"] = read_s;
    phases["upload_s"] = upload_s;
    KMeansResult r;
    if (o.task == "lloyd") {
      LloydParams p;
      p.n_clusters = k;
      p.max_iter = o.iters;
      p.tol = o.tol;
      p.n_init = 1;
      p.init.init = Init::given;
      p.init.centroids = init;
      t0 = Clock::now();
      r = fit_lloyd(*backend, *data, p);
      const double fit_s = seconds_since(t0);
      phases["init_s"] = r.init_seconds;
      phases["iter_s"] = r.iter_seconds;
      phases["fit_s"] = fit_s;
      out["n_iter"] = r.n_iter;
      out["converged"] = r.converged;
      out["n_empty_relocated"] = r.n_empty_relocated;
      out["inertia"] = r.inertia;
      out["ms_per_iter"] = 1e3 * fit_s / std::max(1, r.n_iter);
    } else if (o.task == "minibatch") {
      MiniBatchParams p;
      p.n_clusters = k;
      p.batch_size = o.batch_size;
      p.max_iter = o.epochs;
      p.tol = 0.0;
      p.max_no_improvement = o.max_no_improvement;
      p.n_init = 1;
      p.seed = o.seed;
      p.init.init = Init::given;
      p.init.centroids = init;
      t0 = Clock::now();
      r = fit_minibatch(*backend, *data, p);
      const double fit_s = seconds_since(t0);
      phases["init_s"] = r.init_seconds;
      phases["iter_s"] = r.iter_seconds;
      phases["fit_s"] = fit_s;
      out["batch_size"] = o.batch_size;
      out["seed"] = o.seed;
      out["n_steps"] = r.n_iter;
      out["inertia"] = r.inertia;
      // Steps alone (the driver's loop), and the whole fit per step (its column statistics
      // and final full assignment pass included).
      out["us_per_step"] = 1e6 * r.iter_seconds / std::max(1, r.n_iter);
      out["us_per_step_fit"] = 1e6 * fit_s / std::max(1, r.n_iter);
    } else if (o.task == "silhouette") {
      t0 = Clock::now();
      const SilhouetteResult s = silhouette_exact(*backend, *data, labels, k);
      phases["silhouette_s"] = seconds_since(t0);
      out["score"] = s.score;
    } else {
      throw InputError("unknown task '" + o.task + "'; use lloyd, minibatch or silhouette");
    }
    out["phases"] = phases;
    out["rss_before_mb"] = rss_before;
    out["peak_reset"] = peak_reset;
    out["peak_rss_mb"] = proc_status_mib("VmHWM");
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
    if (!o.centroids_out.empty() && o.task != "silhouette" && rep + 1 == o.reps) {
      Model m;
      m.centroids = r.centroids;
      m.counts = r.counts;
      write_model(o.centroids_out, m);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"segforge end-to-end benchmark runner: one JSON line per repetition"};
  app.add_option("task", o.task, "lloyd | minibatch | silhouette | read")->required();
  app.add_option("features", o.features, "FEATURES.h5 (/features float32 [N x D])")->required();
  app.add_option("--init", o.init, "starting centres: /centroids [K x D] (lloyd, minibatch)");
  app.add_option("--labels", o.labels, "labels file (silhouette)");
  app.add_option("--labels-dataset", o.labels_dataset, "dataset of int labels in --labels")->capture_default_str();
  app.add_option("--iters", o.iters, "Lloyd: max iterations")->capture_default_str();
  app.add_option("--tol", o.tol, "Lloyd: tolerance (0: run every iteration unless labels stop changing)")->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "mini-batch rows per step")->capture_default_str();
  app.add_option("--epochs", o.epochs, "mini-batch passes: steps = epochs * N / batch_size")->capture_default_str();
  app.add_option("--max-no-improvement", o.max_no_improvement, "mini-batch early stop (0: off)")->capture_default_str();
  app.add_option("--seed", o.seed, "mini-batch: seed of the batches")->capture_default_str();
  app.add_option("--reps", o.reps, "repetitions, one JSON line each")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: OpenMP's default)")->capture_default_str();
  app.add_option("--device", o.device, "cpu | auto | gpu")->capture_default_str();
  app.add_option("--centroids-out", o.centroids_out, "write the last repetition's centres (/centroids) here");
  app.add_option("--tag", o.tag, "copied into every JSON line");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const segforge::InputError& e) {
    std::fprintf(stderr, "segforge_bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "segforge_bench: %s\n", e.what());
    return 1;
  }
}
