#pragma once
// Shared by the fuzz targets: the input goes to a file (the readers take paths), and a broken
// property aborts with a message, which libFuzzer records as a crash with the input.

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace segforge_fuzz {

/// A folder of this process's own under $TMPDIR, removed at exit.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path d = std::filesystem::temp_directory_path() /
                              ("segforge-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch(), ec);
    });
    return d;
  }();
  return dir;
}

/// Writes `bytes` to scratch()/name and returns its path.
inline std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = (scratch() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz property broken: %s\n", what.c_str());
  std::abort();
}

inline void check(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

template <class T>
void check_finite(const T* values, std::size_t n, const std::string& what) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(static_cast<double>(values[i])))
      fail(what + ": non-finite value " + std::to_string(static_cast<double>(values[i])) + " at index " +
           std::to_string(i));
}

}  // namespace segforge_fuzz
