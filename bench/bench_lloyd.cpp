// Lloyd iteration time of segforge on an HDF5 feature file, from given starting centres, for
// comparison with scikit-learn on the same file and centres (bench/sklearn_lloyd.py).
// Prints one JSON line per measurement. Not a test: numbers go in bench/RESULTS.md.
//
//   bench_lloyd FEATURES.h5 INIT.h5 [--iters 20] [--reps 5] [--threads 0]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"

int main(int argc, char** argv) {
  using namespace segforge;
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_lloyd FEATURES.h5 INIT.h5 [--iters N] [--reps R] [--threads T]\n");
    return 2;
  }
  int iters = 20, reps = 5, threads = 0;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }
  try {
    const Features f = read_features(argv[1]);
    const Model init = read_model(argv[2]);
    auto backend = make_cpu_backend(threads);
    auto data = backend->upload(f.x.view());

    LloydParams p;
    p.n_clusters = static_cast<int>(init.centroids.rows());
    p.max_iter = iters;
    p.tol = 0.0;
    p.n_init = 1;
    p.init.init = Init::given;
    p.init.centroids = init.centroids;

    std::vector<double> per_iter_ms;
    KMeansResult r;
    for (int rep = 0; rep < reps; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      r = fit_lloyd(*backend, *data, p);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      per_iter_ms.push_back(1e3 * s / r.n_iter);
    }
    std::vector<double> sorted = per_iter_ms;
    std::sort(sorted.begin(), sorted.end());
    nlohmann::ordered_json out;
    out["impl"] = "segforge";
    out["backend"] = backend->info().name;
    out["device"] = backend->info().device;
    out["n"] = f.x.rows();
    out["d"] = f.x.cols();
    out["k"] = p.n_clusters;
    out["n_iter"] = r.n_iter;
    out["inertia"] = r.inertia;
    out["ms_per_iter_median"] = sorted[sorted.size() / 2];
    out["ms_per_iter_all"] = per_iter_ms;
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_lloyd: %s\n", e.what());
    return 1;
  }
  return 0;
}
