// segforge info: build and device information, and a feature file's shape.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>

#include "cli_common.hpp"
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

int run_info(const Common& c, const std::string& file) {
  std::printf("segforge %s\n", SEGFORGE_VERSION);
  // The GPU as the backend sees it (device, compute capability, memory, driver and runtime, the
  // architectures this binary holds), or why there is none (with the build's architectures).
  std::string why_not;
  const std::unique_ptr<Backend> gpu = make_cuda_backend(&why_not);
  if (gpu)
    std::printf("gpu: %s\n", gpu->info().device.c_str());
  else
    std::printf("gpu: none: %s\n", why_not.c_str());
  auto cpu = make_cpu_backend(c.threads);
  std::printf("cpu backend: %s\n", cpu->info().device.c_str());
  if (!file.empty()) {
    const FeatureFileInfo i = inspect_features(file, c.dataset);
    std::printf("file: %s\ndataset: %s\nshape: %lld x %lld\ndtype: %s\n", i.path.c_str(),
                i.dataset.c_str(), static_cast<long long>(i.n_samples),
                static_cast<long long>(i.n_features), i.dtype.c_str());
    std::string names;
    for (const auto& n : i.feature_names) names += (names.empty() ? "" : ", ") + n;
    std::printf("features: %s\nids: %s\nscaler: %s\n", names.c_str(), i.has_ids ? "yes" : "no",
                i.has_scaler ? "yes" : "no");
    for (const auto& [key, value] : i.attributes) std::printf("attribute %s: %s\n", key.c_str(), value.c_str());
  }
  return 0;
}


struct InfoOptions {
  Common common;
  std::string file;
};

}  // namespace

Command add_info_command(CLI::App& parent) {
  auto options = std::make_shared<InfoOptions>();
  InfoOptions& o = *options;
  auto* cmd = parent.add_subcommand("info", "Build and device information, and a feature file's shape");
  cmd->add_option("file", o.file, "features.h5");
  add_common(cmd, o.common);
  return {cmd, [options] { return run_info(options->common, options->file); }};
}

}  // namespace segforge::cli
