#pragma once
// Shared pieces of the command-line programs: option parsing into enums, output checks, the
// progress line, timing. Strings such as "k-means++" stop here.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"

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

/// Output checks before any work: the folder exists; `extensions` (e.g. {".h5", ".csv"}) if given.
void check_output(const std::string& path, const std::string& option,
                  const std::vector<std::string>& extensions = {});

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

}  // namespace segforge::cli
