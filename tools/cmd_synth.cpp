// segforge synth: synthetic customer features for the demo and the benchmarks.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include <random>

#include "segforge/rng.hpp"
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

/// Synthetic customers for the demo: K Gaussian segments in an RFM-like space.
int run_synth(const std::string& out, std::int64_t n, int k, int d, std::uint64_t seed,
              std::uint64_t centres_seed) {
  OutputSet outputs;
  outputs.output(out, "-o", {".h5", ".hdf5"});
  if (n < 1 || k < 1 || d < 1) throw InputError("synth: --rows, --segments and --features must be >= 1");
  // The segment centres come from their own seed, so new customers can share old segments.
  Rng centre_rng(centres_seed);
  Matrix<float> centres(k, d);
  for (std::int64_t i = 0; i < centres.size(); ++i)
    centres.data()[i] = static_cast<float>(6.0 * centre_rng.uniform() - 3.0);
  Rng rng(seed);
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix<float> x(n, d);
  Ids ids;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = rng.below(k);
    for (int j = 0; j < d; ++j) x(i, j) = centres(c, j) + 0.5f * normal(engine);
    ids.numeric.push_back(100000 + i);
  }
  static const char* kBase[] = {"recency_days", "frequency_gifts", "monetary_total", "monetary_mean",
                                "largest_gift", "tenure_days", "opens_12m", "clicks_12m"};
  std::vector<std::string> names;
  for (int j = 0; j < d; ++j)
    names.push_back(j < 8 ? kBase[j] : "feature_" + std::to_string(j));
  write_features(out, x.view(), names, ids, {}, {{"source", "segforge synth"}, {"as_of", "synthetic"}});
  outputs.commit();
  std::fprintf(stderr, "wrote %lld synthetic customers x %d features (%d segments) to %s\n",
               static_cast<long long>(n), d, k, out.c_str());
  return 0;
}

struct SynthOptions {
  std::string out;
  std::int64_t rows = 100000;
  int k = 6, d = 8;
  std::uint64_t seed = 42, centres_seed = 1;
};

}  // namespace

Command add_synth_command(CLI::App& parent) {
  auto options = std::make_shared<SynthOptions>();
  SynthOptions& o = *options;
  auto* cmd = parent.add_subcommand("synth", "Write synthetic customer features (demo and benchmarks)");
  cmd->add_option("-o,--output", o.out, "features.h5 to write")->required();
  cmd->add_option("--rows", o.rows, "customers")->capture_default_str();
  cmd->add_option("--segments", o.k, "true segments")->capture_default_str();
  cmd->add_option("--features", o.d, "features")->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of the rows")->capture_default_str();
  cmd->add_option("--centres-seed", o.centres_seed, "seed of the segment centres")->capture_default_str();
  return {cmd, [options] {
    const SynthOptions& o = *options;
    return run_synth(o.out, o.rows, o.k, o.d, o.seed, o.centres_seed);
  }};
}

}  // namespace segforge::cli
