#include "cli_common.hpp"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include "segforge/error.hpp"

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
  throw InputError("--algorithm " + text + ": unknown; use lloyd or minibatch");
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

void check_output(const std::string& path, const std::string& option,
                  const std::vector<std::string>& extensions) {
  namespace fs = std::filesystem;
  if (!extensions.empty()) {
    bool ok = false;
    std::string list;
    for (const auto& e : extensions) {
      ok = ok || path.ends_with(e);
      list += (list.empty() ? "" : " or ") + e;
    }
    if (!ok) throw InputError(option + " " + path + ": unknown file type; use a name ending in " + list);
  }
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    throw InputError(option + " " + path + ": folder '" + parent.string() +
                     "' does not exist; create it first");
  if (fs::is_directory(path))
    throw InputError(option + " " + path + ": is a folder; give a file name");
}

ProgressLine::ProgressLine()
    : start_(std::chrono::steady_clock::now()), last_(start_), tty_(isatty(STDERR_FILENO) != 0) {}

ProgressLine::~ProgressLine() { finish(); }

ProgressFn ProgressLine::callback() {
  return [this](const Progress& p) { show(p); };
}

void ProgressLine::show(const Progress& p) {
  const auto now = std::chrono::steady_clock::now();
  const double since_start = std::chrono::duration<double>(now - start_).count();
  const double since_last = std::chrono::duration<double>(now - last_).count();
  if (since_start < 1.0 || (shown_ && since_last < (tty_ ? 0.25 : 5.0))) return;
  last_ = now;
  shown_ = true;
  char line[256];
  if (p.total > 0)
    std::snprintf(line, sizeof line, "%s: run %d, %lld/%lld, inertia %.6g, %.1f s", p.phase.c_str(),
                  p.run + 1, static_cast<long long>(p.step), static_cast<long long>(p.total),
                  p.inertia, since_start);
  else
    std::snprintf(line, sizeof line, "%s: run %d, %.1f s", p.phase.c_str(), p.run + 1, since_start);
  if (tty_)
    std::cerr << "\r\033[K" << line << std::flush;
  else
    std::cerr << line << '\n';
}

void ProgressLine::finish() {
  if (shown_ && tty_) std::cerr << '\n';
  shown_ = false;
}

}  // namespace segforge::cli
