#pragma once
// Shared helpers for the suites: fixture and dataset locations, fixture loading (through
// segforge's own readers, so the tests need no HDF5 headers), a per-test directory and a way to
// run the programs in it, and external validity measures written here independently of the
// library (adjusted Rand index, centroid index, a naive double-precision argmin).

#include <gtest/gtest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "segforge/io.hpp"
#include "segforge/matrix.hpp"

namespace segforge::test {

// ---- locations ------------------------------------------------------------------------------

/// tests/fixtures (compile definition SEGFORGE_FIXTURES, set by tests/CMakeLists.txt).
/// D²-sampling's rounding trap, 1-D rows around centre 0 with exact masses: chunk 0 (rows
/// 0-2047) holds 1 in row 0; chunk 1 (rows 2048-4095) 2048 masses of 2^-60, which vanish one by
/// one beside 1 (half an ulp is 2^-53) but sum to 2^-49 in the chunk's total; chunk 2 starts
/// with rows of no mass (4096-4999), then masses of 1. A target of 1 + 2^-50 lies in chunk 1 by
/// the chunk offsets (1 and 1 + 2^-49), but the running sum 1 + 2^-60 + ... stays 1 and misses it.
inline Matrix<float> zero_mass_chunk_rows() {
  const std::int64_t n = 3 * 2048;
  std::vector<float> v(static_cast<std::size_t>(n), 0.0f);
  v[0] = 1.0f;
  for (std::int64_t i = 2048; i < 4096; ++i) v[static_cast<std::size_t>(i)] = std::ldexp(1.0f, -30);
  for (std::int64_t i = 5000; i < n; ++i) v[static_cast<std::size_t>(i)] = 1.0f;
  return Matrix<float>(n, 1, v);
}

inline std::filesystem::path fixtures_dir() {
#ifdef SEGFORGE_FIXTURES
  return SEGFORGE_FIXTURES;
#else
  return std::filesystem::path(__FILE__).parent_path() / "fixtures";
#endif
}

inline std::string fixture_path(const std::string& file) { return (fixtures_dir() / file).string(); }

/// The shared datasets folder: $SEGFORGE_DATASETS when set, else the compile definition
/// SEGFORGE_DATASETS (tests/CMakeLists.txt: <source>/../shared/datasets) when it exists, else
/// /work/shared/datasets. Tests that need a dataset GTEST_SKIP() when it is absent.
inline std::filesystem::path datasets_dir() {
  if (const char* env = std::getenv("SEGFORGE_DATASETS"); env != nullptr && *env != '\0')
    return env;
#ifdef SEGFORGE_DATASETS
  if (std::filesystem::is_directory(SEGFORGE_DATASETS)) return SEGFORGE_DATASETS;
#endif
  return "/work/shared/datasets";
}

// ---- running the programs ---------------------------------------------------------------

/// Runs `command` through the shell with stdout and stderr together in `log` (removed after);
/// the exit status (-1: ended by a signal), the output into *output when asked.
inline int run_shell(const std::string& command, const std::filesystem::path& log,
                     std::string* output = nullptr) {
  const int raw = std::system((command + " > " + log.string() + " 2>&1").c_str());
  if (output) {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    *output = ss.str();
  }
  std::filesystem::remove(log);
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

/// Starts `/bin/sh -c command` with stdout and stderr appended to `log`; its pid (the command's,
/// when the command starts with `exec`), for signals and waitpid.
inline pid_t spawn_shell(const std::string& command, const std::filesystem::path& log) {
  std::string shell = "/bin/sh", flag = "-c", text = command;
  char* argv[] = {shell.data(), flag.data(), text.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int failed = posix_spawn(&pid, argv[0], &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (failed != 0) throw std::runtime_error("posix_spawn /bin/sh failed");
  return pid;
}

/// Waits (at most 120 s) until `file` exists; false when process `pid` ended first (it is then
/// reaped).
inline bool wait_for_file(const std::filesystem::path& file, pid_t pid) {
  for (int i = 0; i < 12000; ++i) {
    if (std::filesystem::exists(file)) return true;
    int raw = 0;
    if (waitpid(pid, &raw, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

/// A test with its own empty directory, <temp>/segforge_<pid>_<suite>.<test>, removed when the
/// test ends: tests running side by side (ctest -j) never share files.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "." + info->name();
    std::replace(name.begin(), name.end(), '/', '_');  // parameterised: Suite/Test/3
    dir_ = std::filesystem::temp_directory_path() / ("segforge_" + std::to_string(::getpid()) + "_" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  /// `command` through the shell, its output in *output: see run_shell.
  int shell(const std::string& command, std::string* output = nullptr) const {
    return run_shell(command, dir_ / "log.txt", output);
  }

  std::filesystem::path dir_;
};

// ---- fixture files (written by scripts/make_fixtures.py) ------------------------------------

/// A 2-D dataset of an HDF5 file, as float32 (read_features converts float64).
inline Matrix<float> read_matrix(const std::string& path, const std::string& dataset) {
  ReadOptions options;
  options.dataset = dataset;
  return read_features(path, options).x;
}

/// A [rows x 1] dataset as a vector of doubles.
inline std::vector<double> read_column(const std::string& path, const std::string& dataset) {
  const Matrix<float> m = read_matrix(path, dataset);
  return {m.values().begin(), m.values().end()};
}

/// An expected scalar stored by make_fixtures.py as /expected/<name>_split = [hi, lo] float32,
/// so that read_features (float32) still gives the float64 value to ~1e-14 relative.
inline double read_expected_scalar(const std::string& path, const std::string& name) {
  const Matrix<float> m = read_matrix(path, "/expected/" + name + "_split");
  if (m.rows() != 1 || m.cols() != 2)
    throw std::runtime_error(path + ": /expected/" + name + "_split is not [1 x 2]");
  return static_cast<double>(m(0, 0)) + static_cast<double>(m(0, 1));
}

/// One reference case: data, starting centres and scikit-learn's results.
struct Fixture {
  std::string name;
  std::string path;
  int n_clusters = 0;
  Matrix<float> x;                         ///< /features [N x D]
  Matrix<float> init;                      ///< /init [K x D]
  Matrix<float> centroids;                 ///< /expected/centroids [K x D]
  std::vector<std::int32_t> labels;        ///< /labels [N]
  std::vector<double> silhouette_samples;  ///< /expected/silhouette_samples [N]
  double inertia = 0.0;
  int n_iter = 0;
  double silhouette = 0.0;
  double davies_bouldin = 0.0;
  double calinski_harabasz = 0.0;
  std::optional<double> minibatch_inertia;  ///< blobs only
};

inline Fixture load_fixture(const std::string& name) {
  Fixture f;
  f.name = name;
  f.path = fixture_path(name + ".h5");
  f.x = read_matrix(f.path, "/features");
  f.init = read_matrix(f.path, "/init");
  f.centroids = read_matrix(f.path, "/expected/centroids");
  f.n_clusters = static_cast<int>(f.init.rows());
  f.labels = read_labels(f.path);
  f.silhouette_samples = read_column(f.path, "/expected/silhouette_samples");
  f.inertia = read_expected_scalar(f.path, "inertia");
  f.n_iter = static_cast<int>(std::lround(read_expected_scalar(f.path, "n_iter")));
  f.silhouette = read_expected_scalar(f.path, "silhouette");
  f.davies_bouldin = read_expected_scalar(f.path, "davies_bouldin");
  f.calinski_harabasz = read_expected_scalar(f.path, "calinski_harabasz");
  if (name == "blobs") f.minibatch_inertia = read_expected_scalar(f.path, "minibatch_inertia");
  return f;
}

// ---- text data (the Fränti–Sieranoja benchmark files) ----------------------------------------

/// Whitespace-separated numbers, one row per non-empty line (all rows the same length).
inline Matrix<float> read_text_matrix(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::vector<float> values;
  std::int64_t rows = 0, cols = -1;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::int64_t n = 0;
    double v = 0.0;
    while (fields >> v) {
      values.push_back(static_cast<float>(v));
      ++n;
    }
    if (n == 0) continue;
    if (cols >= 0 && n != cols)
      throw std::runtime_error(path.string() + " line " + std::to_string(rows + 1) + ": " +
                               std::to_string(n) + " numbers, expected " + std::to_string(cols));
    cols = n;
    ++rows;
  }
  return Matrix<float>(rows, std::max<std::int64_t>(cols, 0), std::move(values));
}

// ---- comparisons ----------------------------------------------------------------------------

inline double max_abs_diff(MatrixView<const float> a, MatrixView<const float> b) {
  if (a.rows != b.rows || a.cols != b.cols) return std::numeric_limits<double>::infinity();
  double m = 0.0;
  for (std::int64_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(static_cast<double>(a.data[i]) - static_cast<double>(b.data[i])));
  return m;
}

inline double relative_diff(double value, double reference) {
  return std::abs(value - reference) / std::max(std::abs(reference), 1e-300);
}

/// Squared Euclidean distance in double.
inline double sq_dist(const float* x, const float* c, std::int64_t d) {
  double s = 0.0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double t = static_cast<double>(x[j]) - static_cast<double>(c[j]);
    s += t * t;
  }
  return s;
}

/// Nearest centre of every row, in double precision, lower index on ties.
inline std::vector<std::int32_t> naive_argmin(MatrixView<const float> x,
                                              MatrixView<const float> centroids,
                                              std::vector<double>* best = nullptr) {
  std::vector<std::int32_t> labels(static_cast<std::size_t>(x.rows));
  if (best) best->assign(static_cast<std::size_t>(x.rows), 0.0);
  for (std::int64_t i = 0; i < x.rows; ++i) {
    double m = std::numeric_limits<double>::infinity();
    std::int32_t arg = 0;
    for (std::int64_t k = 0; k < centroids.rows; ++k) {
      const double d = sq_dist(x.row(i), centroids.row(k), x.cols);
      if (d < m) {
        m = d;
        arg = static_cast<std::int32_t>(k);
      }
    }
    labels[static_cast<std::size_t>(i)] = arg;
    if (best) (*best)[static_cast<std::size_t>(i)] = m;
  }
  return labels;
}

/// Σ_i min_k ||x_i − c_k||² in double.
inline double naive_inertia(MatrixView<const float> x, MatrixView<const float> centroids) {
  std::vector<double> best;
  naive_argmin(x, centroids, &best);
  double s = 0.0;
  for (double v : best) s += v;
  return s;
}

/// Adjusted Rand index (Hubert & Arabie 1985) of two labelings of the same rows; labels may
/// be any integers. 1 for identical partitions (up to renaming), ~0 for independent ones.
inline double adjusted_rand_index(std::span<const std::int32_t> a, std::span<const std::int32_t> b) {
  if (a.size() != b.size()) throw std::invalid_argument("adjusted_rand_index: sizes differ");
  const auto n = static_cast<double>(a.size());
  std::map<std::int32_t, std::size_t> ia, ib;
  for (auto v : a) ia.emplace(v, ia.size());
  for (auto v : b) ib.emplace(v, ib.size());
  std::vector<double> table(ia.size() * ib.size(), 0.0), ra(ia.size(), 0.0), rb(ib.size(), 0.0);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::size_t p = ia[a[i]], q = ib[b[i]];
    table[p * ib.size() + q] += 1.0;
    ra[p] += 1.0;
    rb[q] += 1.0;
  }
  auto pairs = [](double m) { return m * (m - 1.0) / 2.0; };
  double sum_ij = 0.0, sum_a = 0.0, sum_b = 0.0;
  for (double v : table) sum_ij += pairs(v);
  for (double v : ra) sum_a += pairs(v);
  for (double v : rb) sum_b += pairs(v);
  const double expected = sum_a * sum_b / pairs(n);
  const double max_index = 0.5 * (sum_a + sum_b);
  if (max_index == expected) return 1.0;  // both partitions trivial (one cluster or singletons)
  return (sum_ij - expected) / (max_index - expected);
}

/// One direction of the centroid index: map every centroid of `from` to its nearest centroid
/// of `to`; the result is the number of `to` centroids that nothing maps to (orphans).
inline int centroid_index_one_way(MatrixView<const float> from, MatrixView<const float> to) {
  std::vector<int> hits(static_cast<std::size_t>(to.rows), 0);
  const auto nearest = naive_argmin(from, to);
  for (auto j : nearest) ++hits[static_cast<std::size_t>(j)];
  return static_cast<int>(std::count(hits.begin(), hits.end(), 0));
}

/// Centroid index CI (Fränti, Rezaei & Zhao 2014, "Centroid index: cluster level similarity
/// measure", Pattern Recognition 47(9)): the larger of the orphan counts in both directions.
/// CI = 0 means every ground-truth cluster was found by one centre.
inline int centroid_index(MatrixView<const float> found, MatrixView<const float> truth) {
  return std::max(centroid_index_one_way(found, truth), centroid_index_one_way(truth, found));
}

/// Number of pairs of identical rows.
inline int count_duplicate_rows(MatrixView<const float> m) {
  int dup = 0;
  for (std::int64_t i = 0; i < m.rows; ++i)
    for (std::int64_t j = i + 1; j < m.rows; ++j)
      if (std::equal(m.row(i), m.row(i) + m.cols, m.row(j))) ++dup;
  return dup;
}

inline bool all_finite(MatrixView<const float> m) {
  return std::all_of(m.data, m.data + m.size(), [](float v) { return std::isfinite(v); });
}

// ---- synthetic data -------------------------------------------------------------------------

/// Gaussian blobs: `k` centres uniform in [-spread, spread]^d, unit-variance noise, rows
/// assigned to centres round-robin and then shuffled. Deterministic for a given engine state
/// (std::normal_distribution is implementation-defined, but every test here compares segforge
/// with itself or with a naive reference on the same draw, never with stored numbers).
inline Matrix<float> random_blobs(std::mt19937& gen, std::int64_t n, std::int64_t d, int k,
                                  double spread = 4.0) {
  std::uniform_real_distribution<double> uniform(-spread, spread);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> centres(static_cast<std::size_t>(k * d));
  for (auto& c : centres) c = uniform(gen);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i % k;
  std::shuffle(order.begin(), order.end(), gen);
  Matrix<float> x(n, d);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j)
      x(i, j) = static_cast<float>(centres[static_cast<std::size_t>(order[static_cast<std::size_t>(i)] * d + j)] +
                                   normal(gen));
  return x;
}

/// `k` distinct rows of `x` chosen with `gen`, as starting centres.
inline Matrix<float> random_rows(std::mt19937& gen, MatrixView<const float> x, int k) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(x.rows));
  for (std::int64_t i = 0; i < x.rows; ++i) idx[static_cast<std::size_t>(i)] = i;
  std::shuffle(idx.begin(), idx.end(), gen);
  Matrix<float> c(k, x.cols);
  for (int r = 0; r < k; ++r)
    std::copy(x.row(idx[static_cast<std::size_t>(r)]), x.row(idx[static_cast<std::size_t>(r)]) + x.cols, c.row(r));
  return c;
}

// ---- the report in headless Chromium -------------------------------------------------------

/// An executable on PATH (or an absolute path), else "".
inline std::string which(const std::string& name) {
  if (name.front() == '/') return std::filesystem::exists(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && ::access((std::filesystem::path(dir) / name).c_str(), X_OK) == 0) return (std::filesystem::path(dir) / name).string();
  return "";
}

inline std::string chromium_binary() {
  for (const char* c : {"/usr/bin/chromium", "chromium", "chromium-browser"})
    if (auto p = which(c); !p.empty()) return p;
  return "";
}

// report.html opened by playwright-core in headless Chromium (node layout.js PLAYWRIGHT CHROMIUM
// PAGE SCREENSHOT; it prints RESULT {"problems": [...]}), used by test_report.cpp and
// test_real_datasets_e2e.cpp. At a laptop width (1366 px): no axis clipped (every tick label inside its chart, the tick
// values within the data's range, no axis title on its tick labels), no two centre labels of the
// 2-D scatter overlapping or leaving the plot, and the profile table of many features scrolling
// inside its card instead of widening the page.
inline constexpr const char* kLayoutCheck = R"JS(
const { chromium } = require(process.argv[2]);
(async () => {
  const browser = await chromium.launch({ executablePath: process.argv[3], args: ['--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      '--enable-unsafe-swiftshader'] });
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  await page.goto('file://' + process.argv[4]);
  await page.waitForSelector('body[data-report-ready]', { timeout: 90000 });
  const problems = await page.evaluate(() => {
    const out = [];
    const data = JSON.parse(document.getElementById('segforge-data').textContent);
    const box = e => e.getBoundingClientRect();
    const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1 && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
    const meet = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
    const number = t => Number(t.replace(/,/g, '').replace(/\u2212/g, '-'));
    if (document.documentElement.scrollWidth > window.innerWidth)
      out.push('the page is ' + document.documentElement.scrollWidth + ' px wide in a ' + window.innerWidth + ' px window');
    document.querySelectorAll('section').forEach(s => {
      if (box(s).right > window.innerWidth + 1) out.push('section ' + s.id + ' ends at ' + box(s).right + ' px');
    });
    const profiles = document.querySelector('#profiles .scroll');
    if (!profiles) out.push('no scrolling container around the profile table');
    else if (profiles.scrollWidth <= profiles.clientWidth) out.push('the profile table was expected to need scrolling in this test');
    document.querySelectorAll('.chart[data-kind="svg"]').forEach(c => {
      const svg = c.querySelector('svg.main-svg');
      if (!svg) return;
      const frame = box(svg);
      ['xtick', 'ytick', 'y2tick'].forEach(kind => {
        const ticks = Array.from(c.querySelectorAll('g.' + kind + ' text'));
        ticks.forEach(t => { if (!inside(box(t), frame)) out.push(c.id + ' ' + kind + ' "' + t.textContent + '" is clipped'); });
        const title = c.querySelector('g.g-' + kind.replace('tick', 'title') + ' text');
        if (title) ticks.forEach(t => { if (meet(box(title), box(t))) out.push(c.id + ' ' + kind + ' title sits on "' + t.textContent + '"'); });
      });
    });
    // The tick values of the two index axes against the values they show.
    const indices = document.getElementById('chart-indices');
    [['ytick', 'davies_bouldin'], ['y2tick', 'calinski_harabasz']].forEach(([kind, key]) => {
      const values = data.sweep.records.map(r => r[key]).filter(v => v !== null);
      const lo = Math.min.apply(null, values), hi = Math.max.apply(null, values), span = Math.max(hi - lo, 0.1 * Math.abs(hi));
      const ticks = Array.from(indices.querySelectorAll('g.' + kind + ' text')).map(t => t.textContent);
      if (ticks.length < 2) out.push(key + ': ' + ticks.length + ' tick labels');
      ticks.forEach(t => {
        const v = number(t);
        if (!(v >= lo - span && v <= hi + span)) out.push(key + ' tick "' + t + '" is outside the data range ' + lo + '..' + hi);
      });
    });
    // Centre labels of the 2-D scatter.
    const pca = document.getElementById('chart-pca-2d');
    const area = box(pca.querySelector('.nsewdrag'));
    const labels = Array.from(pca.querySelectorAll('g.annotation')).map(a => ({ text: a.textContent, box: box(a.querySelector('rect.bg') || a) }));
    if (labels.length !== data.segments.length) out.push(labels.length + ' centre labels for ' + data.segments.length + ' segments');
    labels.forEach((a, i) => {
      if (!inside(a.box, area)) out.push('centre label "' + a.text + '" leaves the plot');
      labels.slice(i + 1).forEach(b => { if (meet(a.box, b.box)) out.push('centre labels "' + a.text + '" and "' + b.text + '" overlap'); });
    });
    return { problems: out, labels: labels.map(l => l.text),
             ch: Array.from(indices.querySelectorAll('g.y2tick text')).map(t => t.textContent) };
  });
  await page.screenshot({ path: process.argv[5], fullPage: true });
  await browser.close();
  console.log('RESULT ' + JSON.stringify(problems));
})().catch(e => { console.log('FAILED ' + e); process.exit(1); });
)JS";

}  // namespace segforge::test
