#include "memory_budget.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "segforge/error.hpp"

namespace segforge::cli {

namespace {

constexpr std::int64_t kWindowGrain = 2048;  // the CPU backend's chunk (cpu/chunks.hpp)

/// A "Key:   123 kB" line of a /proc file, in bytes; -1 when absent.
std::int64_t proc_kb(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    long long kb = -1;
    fields >> kb;
    return kb < 0 ? -1 : kb * 1024;
  }
  return -1;
}

std::int64_t cgroup_limit() {
  for (const char* file : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(file);
    long long v = -1;
    if (in >> v && v > 0 && v < (1LL << 60)) return v;
  }
  return -1;
}

}  // namespace

std::int64_t parse_memory_budget(const std::string& text) {
  if (text == "auto") {
    std::int64_t available = proc_kb("/proc/meminfo", "MemAvailable");
    const std::int64_t limit = cgroup_limit();
    if (limit > 0) available = available > 0 ? std::min(available, limit) : limit;
    if (available <= 0) available = 4LL << 30;  // unknown: a modest guess
    return available / 4 * 3;
  }
  std::size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string suffix = text.substr(used);
  for (auto& ch : suffix) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (suffix.ends_with("IB")) suffix.resize(suffix.size() - 2);
  else if (suffix.ends_with("B") && suffix.size() > 1) suffix.resize(suffix.size() - 1);
  double scale = -1;
  if (suffix.empty()) scale = 1;
  else if (suffix == "K") scale = 1024.0;
  else if (suffix == "M") scale = 1024.0 * 1024;
  else if (suffix == "G") scale = 1024.0 * 1024 * 1024;
  else if (suffix == "T") scale = 1024.0 * 1024 * 1024 * 1024;
  if (used == 0 || scale < 0 || !(value > 0))
    throw InputError("--memory-budget " + text + ": expected auto or a size such as 512M, 8G or 2000000000");
  return static_cast<std::int64_t>(value * scale);
}

MemoryPlan plan_memory(std::int64_t n_rows, std::int64_t n_cols, std::int64_t budget,
                       const std::string& where) {
  const std::int64_t row_bytes = n_cols * 4;
  const std::int64_t state = n_rows * kPerRowBytes;
  if (2 * n_rows * row_bytes + state <= budget) return {};
  // Two windows (the one processed, the one being read); the norms are per-row state.
  const std::int64_t per_window_row = 2 * row_bytes;
  const std::int64_t window_rows = (budget - state) / per_window_row / kWindowGrain * kWindowGrain;
  if (budget <= state || window_rows < kWindowGrain)
    throw InputError(where + ": " + std::to_string(n_rows) + " rows x " + std::to_string(n_cols) +
                     " features do not fit --memory-budget " + format_bytes(budget) +
                     " even out of core (per-row state " + format_bytes(state) + " plus two " +
                     std::to_string(kWindowGrain) + "-row windows); raise it to at least " +
                     format_bytes(state + kWindowGrain * per_window_row));
  return {false, window_rows};
}

std::int64_t peak_rss_bytes() { return std::max<std::int64_t>(0, proc_kb("/proc/self/status", "VmHWM")); }

std::string format_bytes(std::int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace segforge::cli
