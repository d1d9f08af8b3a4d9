// segforge distances: pairwise distance matrices, tiled, to HDF5.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include "segforge/distances.hpp"
#include "cli_common.hpp"
#include "segforge/outputs.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/metrics.hpp"
#include "segforge/validate.hpp"

#ifndef SEGFORGE_VERSION
#define SEGFORGE_VERSION "0.1.0"
#endif

namespace segforge::cli {
namespace {

int run_distances(const Common& c, const std::string& a_path, const std::string& b_path,
                  const std::string& out, bool squared) {
  OutputSet outputs;
  outputs.input(a_path, "A");
  outputs.input(b_path, "B");
  outputs.output(out, "-o", {".h5", ".hdf5"});
  const Features a = load(a_path, c);
  auto backend = open_backend(c);
  auto da = backend->upload(a.x.view());
  std::unique_ptr<Dataset> db;
  if (!b_path.empty()) {
    const Features b = load(b_path, c);
    if (b.x.cols() != a.x.cols())
      throw InputError(where(b) + ": " + std::to_string(b.x.cols()) + " features, but " + where(a) +
                       " has " + std::to_string(a.x.cols()) + "; both need the same columns");
    db = backend->upload(b.x.view());
  }
  ProgressLine line;
  write_distance_matrix(*backend, *da, db ? *db : *da, squared, out, 2048, 8192, line.callback());
  outputs.commit();
  line.finish();
  return 0;
}


struct DistanceOptions {
  Common common;
  std::string a, b, out;
  bool squared = false;
};

}  // namespace

Command add_distances_command(CLI::App& parent) {
  auto options = std::make_shared<DistanceOptions>();
  DistanceOptions& o = *options;
  auto* cmd = parent.add_subcommand("distances", "Pairwise distance matrix between rows (HDF5 out)");
  cmd->add_option("a", o.a, "A.h5")->required();
  cmd->add_option("b", o.b, "B.h5 (default: A against itself)");
  cmd->add_option("-o,--output", o.out, "D.h5 to write")->required();
  cmd->add_flag("--squared", o.squared, "squared Euclidean distances");
  add_common(cmd, o.common);
  return {cmd, [options] {
    const DistanceOptions& o = *options;
    return run_distances(o.common, o.a, o.b, o.out, o.squared);
  }};
}

}  // namespace segforge::cli
