// DBSCAN against scikit-learn (scripts/make_dbscan_fixtures.py, run at test time): the same core
// rows, the same clusters of core rows (numbered the same way), the same noise, and every border
// row in a cluster with a core row within eps of it (checked by brute force here); weights as
// repetition, thread-count invariance, predict on the training rows, the k-distance curve, bad input.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "segforge/backend.hpp"
#include "segforge/dbscan.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include <nlohmann/json.hpp>
#include <fstream>
#include "test_support.hpp"

namespace segforge {
namespace {

namespace fs = std::filesystem;

struct Case {
  Matrix<float> x;
  std::vector<float> weights;
  std::vector<int> labels;
  std::vector<int> core;
  std::vector<double> kdist;
  double eps = 0.0;
  int min_samples = 0;
};

/// The fixtures, made once per process in a temporary folder.
const fs::path& fixtures() {
  static const fs::path dir = [] {
    const fs::path d = fs::temp_directory_path() / ("segforge_dbscan_" + std::to_string(::getpid()));
    fs::create_directories(d);
    const std::string cmd = "/usr/bin/python3 " + std::string(SEGFORGE_FIXTURES) + "/../../scripts/make_dbscan_fixtures.py '" +
                            d.string() + "' '" + test::datasets_dir().string() + "'";
    std::string out;
    if (test::run_shell(cmd, d / "log.txt", &out) != 0) throw std::runtime_error("make_dbscan_fixtures.py failed: " + out);
    return d;
  }();
  return dir;
}

std::vector<int> ints(const std::vector<double>& v) {
  std::vector<int> out;
  for (double x : v) out.push_back(static_cast<int>(std::lround(x)));
  return out;
}

Case load(const std::string& name) {
  const std::string path = (fixtures() / (name + ".h5")).string();
  Case c;
  c.x = test::read_matrix(path, "/features");
  c.labels = ints(test::read_column(path, "/expected/labels"));
  c.core = ints(test::read_column(path, "/expected/core"));
  c.kdist = test::read_column(path, "/expected/kdist");
  const Matrix<float> p = test::read_matrix(path, "/expected/params");
  c.eps = p(0, 0);
  c.min_samples = static_cast<int>(p(0, 1));
  if (name == "weighted") {
    const std::vector<double> w = test::read_column(path, "/weights");
    c.weights.assign(w.begin(), w.end());
  }
  return c;
}

double sq_dist(const Matrix<float>& x, std::int64_t a, std::int64_t b) {
  double s = 0.0;
  for (std::int64_t j = 0; j < x.cols(); ++j) {
    const double v = static_cast<double>(x(a, j)) - x(b, j);
    s += v * v;
  }
  return s;
}

DbscanResult run(const Case& c, int threads) {
  auto backend = make_cpu_backend(threads);
  auto data = backend->upload(c.x.view(), c.weights);
  return fit_dbscan(*backend, *data, DbscanParams{c.eps, static_cast<double>(c.min_samples)});
}

class AgainstSklearn : public ::testing::TestWithParam<const char*> {};

TEST_P(AgainstSklearn, CoreRowsClustersNoiseAndBorders) {
  const std::string name = GetParam();
  if (!fs::exists(fixtures() / (name + ".h5"))) GTEST_SKIP() << "dataset absent for " << name << " (set SEGFORGE_DATASETS)";
  const Case c = load(name);
  const DbscanResult r = run(c, 2);
  const std::int64_t n = c.x.rows();
  int sk_clusters = 0;
  for (int l : c.labels) sk_clusters = std::max(sk_clusters, l + 1);
  EXPECT_EQ(r.n_clusters, sk_clusters);
  std::int64_t border = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(r.core[i], c.core[i]) << name << " row " << i << ": core differs";
    if (c.core[i]) {
      // Core rows: the same cluster, with the same number (both number clusters by their lowest row).
      ASSERT_EQ(r.labels[i], c.labels[i]) << name << " core row " << i;
      EXPECT_EQ(r.distances[i], 0.0f);
    } else if (c.labels[i] < 0) {
      ASSERT_EQ(r.labels[i], -1) << name << " row " << i << " is noise for scikit-learn";
      EXPECT_TRUE(std::isnan(r.distances[i]));
    } else {
      ++border;
      ASSERT_GE(r.labels[i], 0) << name << " border row " << i << " is noise here";
      // The nearest core row within eps, found by brute force; its cluster is the row's.
      double best = std::numeric_limits<double>::infinity();
      std::int64_t at = -1;
      for (std::int64_t j = 0; j < n; ++j)
        if (c.core[j]) {
          const double d2 = sq_dist(c.x, i, j);
          if (d2 <= c.eps * c.eps && d2 < best) best = d2, at = j;
        }
      ASSERT_GE(at, 0);
      EXPECT_EQ(r.labels[i], c.labels[at]) << name << " border row " << i;
      EXPECT_FLOAT_EQ(r.distances[i], static_cast<float>(std::sqrt(best)));
    }
  }
  EXPECT_EQ(r.n_border, border);
  std::cout << "  [dbscan] " << name << ": " << n << " x " << c.x.cols() << ", eps " << c.eps << ", min_samples "
            << c.min_samples << ": " << r.n_clusters << " clusters, " << r.n_core << " core, " << r.n_border
            << " border, " << r.n_noise << " noise; " << r.n_blocks << " cells, " << r.n_block_pairs
            << " cell pairs, " << r.rounds << " passes\n";
}

INSTANTIATE_TEST_SUITE_P(Cases, AgainstSklearn,
                         ::testing::Values("moons", "blobs_noise_3d", "blobs_noise_8d", "weighted", "s1", "mall"));

TEST(Dbscan, SameBitsForOneAndTwoThreads) {
  for (const char* name : {"moons", "blobs_noise_8d", "weighted"}) {
    const Case c = load(name);
    const DbscanResult a = run(c, 1), b = run(c, 2);
    EXPECT_EQ(a.labels, b.labels) << name;
    EXPECT_EQ(a.core, b.core) << name;
    ASSERT_EQ(a.distances.size(), b.distances.size());
    EXPECT_EQ(0, std::memcmp(a.distances.data(), b.distances.data(), a.distances.size() * sizeof(float))) << name;
  }
}

TEST(Dbscan, IntegerWeightsAreRepetition) {
  // Weights 1..3 (a weight of 0 is not the same as leaving the row out: as in scikit-learn, a
  // weightless row with a heavy neighbourhood is core and joins clusters).
  Case c = load("weighted");
  for (std::size_t i = 0; i < c.weights.size(); ++i) c.weights[i] = static_cast<float>(1 + i % 3);
  // Each row repeated weight times (a weight of 0 drops it); the rows' positions map back.
  std::vector<float> values;
  std::vector<std::int64_t> copy_of;
  for (std::int64_t i = 0; i < c.x.rows(); ++i)
    for (int t = 0; t < static_cast<int>(c.weights[i]); ++t) {
      values.insert(values.end(), c.x.row(i), c.x.row(i) + c.x.cols());
      copy_of.push_back(i);
    }
  Case repeated;
  repeated.x = Matrix<float>(static_cast<std::int64_t>(copy_of.size()), c.x.cols(), values);
  repeated.eps = c.eps;
  repeated.min_samples = c.min_samples;
  const DbscanResult w = run(c, 2), rep = run(repeated, 2);
  EXPECT_EQ(w.n_clusters, rep.n_clusters);
  for (std::size_t k = 0; k < copy_of.size(); ++k) {
    const std::int64_t i = copy_of[k];
    ASSERT_EQ(w.core[i], rep.core[k]) << "row " << i;
    // Cluster numbers follow the lowest row, which repetition keeps in order.
    ASSERT_EQ(w.labels[i], rep.labels[k]) << "row " << i;
  }
}

TEST(Dbscan, PredictOnTheTrainingRowsGivesTheirLabels) {
  for (const char* name : {"moons", "blobs_noise_3d", "blobs_noise_8d"}) {
    const Case c = load(name);
    auto backend = make_cpu_backend(2);
    auto data = backend->upload(c.x.view());
    const DbscanResult r = fit_dbscan(*backend, *data, DbscanParams{c.eps, static_cast<double>(c.min_samples)});
    std::vector<std::int64_t> core_rows;
    std::vector<std::int32_t> core_labels;
    for (std::int64_t i = 0; i < c.x.rows(); ++i)
      if (r.core[i]) core_rows.push_back(i), core_labels.push_back(r.labels[i]);
    const Matrix<float> cores = backend->gather(*data, core_rows);
    auto core_data = backend->upload(cores.view());
    const DbscanAssignment p = predict_dbscan(*backend, *data, *core_data, core_labels, c.eps);
    EXPECT_EQ(p.labels, r.labels) << name;  // core rows, border rows (nearest core) and noise alike
    for (std::int64_t i = 0; i < c.x.rows(); ++i)
      if (r.labels[i] >= 0) EXPECT_FLOAT_EQ(p.distances[i], r.distances[i]) << name << " row " << i;
  }
}

TEST(Dbscan, KDistancesMatchScikitLearnsNearestNeighbors) {
  for (const char* name : {"moons", "blobs_noise_8d"}) {
    const Case c = load(name);
    auto backend = make_cpu_backend(2);
    auto data = backend->upload(c.x.view());
    const std::vector<double> curve = k_distances(*backend, *data, c.min_samples, c.x.rows(), 0);
    std::vector<double> expected = c.kdist;
    std::sort(expected.begin(), expected.end());
    ASSERT_EQ(curve.size(), expected.size());
    // The float32 expansion ||x||² − 2x·y + ||y||² against scikit-learn's float64 distances.
    for (std::size_t i = 0; i < curve.size(); ++i) EXPECT_NEAR(curve[i], expected[i], 1e-3 * (1.0 + expected[i])) << name;
  }
}

TEST(Dbscan, EpsFromTheKneeSeparatesTheBlobsFromTheNoise) {
  const Case c = load("blobs_noise_3d");
  auto backend = make_cpu_backend(2);
  auto data = backend->upload(c.x.view());
  const EpsSuggestion s = suggest_eps(*backend, *data, c.min_samples, 2000, 1);
  EXPECT_TRUE(s.knee_found);
  EXPECT_EQ(s.curve.size(), 2000u);
  // The knee lies where the k-distances of blob rows (small) give way to the noise's (large):
  // between the 50th and the 99th percentile of the curve.
  EXPECT_GE(s.eps, s.curve[1000]);
  EXPECT_LE(s.eps, s.curve[1980]);
  const DbscanResult r = fit_dbscan(*backend, *data, DbscanParams{s.eps, static_cast<double>(c.min_samples)});
  EXPECT_GE(r.n_clusters, 5);
  EXPECT_LE(r.n_clusters, 8);
  std::cout << "  [dbscan] knee eps " << s.eps << " -> " << r.n_clusters << " clusters, " << r.n_noise << " noise\n";
}

TEST(Dbscan, BadParametersAreInputErrors) {
  const Case c = load("moons");
  auto backend = make_cpu_backend(2);
  auto data = backend->upload(c.x.view());
  for (double eps : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()})
    EXPECT_THROW(fit_dbscan(*backend, *data, DbscanParams{eps, 5.0}), InputError) << eps;
  EXPECT_THROW(fit_dbscan(*backend, *data, DbscanParams{0.1, 0.5}), InputError);
  EXPECT_THROW(k_distances(*backend, *data, 0, 100, 0), InputError);
}

TEST(Dbscan, EverythingNoiseOrOneClusterIsNoCrash) {
  const Case c = load("moons");
  auto backend = make_cpu_backend(2);
  auto data = backend->upload(c.x.view());
  const DbscanResult none = fit_dbscan(*backend, *data, DbscanParams{1e-6, 5.0});
  EXPECT_EQ(none.n_clusters, 0);
  EXPECT_EQ(none.n_noise, c.x.rows());
  const DbscanResult one = fit_dbscan(*backend, *data, DbscanParams{100.0, 5.0});
  EXPECT_EQ(one.n_clusters, 1);
  EXPECT_EQ(one.n_core, c.x.rows());
  // Constant data: no grid column at all, one cell.
  Matrix<float> same(50, 3, 1.0f);
  auto flat = backend->upload(same.view());
  const DbscanResult f = fit_dbscan(*backend, *flat, DbscanParams{0.5, 5.0});
  EXPECT_EQ(f.n_clusters, 1);
  EXPECT_EQ(f.n_core, 50);
}


// ---- the command line: fit --algorithm dbscan, predict, refusals ---------------------------------

class DbscanCli : public test::TempDirTest {
 protected:
  int segforge(const std::string& args, std::string* out = nullptr) const {
    return shell(std::string(SEGFORGE_BINARY) + " " + args + " --device cpu", out);
  }
  static std::string quote(const std::string& s) { return "'" + s + "'"; }
  /// segments.csv as (id, segment, name) rows, header left out.
  std::vector<std::vector<std::string>> csv(const std::string& file) const {
    std::ifstream in(path(file));
    std::string line;
    std::getline(in, line);
    std::vector<std::vector<std::string>> rows;
    while (std::getline(in, line)) {
      std::vector<std::string> fields;
      std::string field;
      bool quoted = false;
      for (char ch : line) {
        if (ch == '"') quoted = !quoted;
        else if (ch == ',' && !quoted) fields.push_back(field), field.clear();
        else field += ch;
      }
      fields.push_back(field);
      rows.push_back(fields);
    }
    return rows;
  }
};

TEST_F(DbscanCli, FitWritesScikitLearnsLabelsWithOutliersAndPredictGivesThemBack) {
  const std::string features = (fixtures() / "blobs_noise_3d.h5").string();
  const Case c = load("blobs_noise_3d");
  std::string out;
  ASSERT_EQ(segforge("fit " + quote(features) + " --algorithm dbscan --eps " + std::to_string(c.eps) + " --min-samples " +
                         std::to_string(c.min_samples) + " -o " + quote(path("model.h5")) + " --labels " +
                         quote(path("segments.csv")) + " --metrics " + quote(path("metrics.json")),
                     &out),
            0)
      << out;
  const auto rows = csv("segments.csv");
  ASSERT_EQ(static_cast<std::int64_t>(rows.size()), c.x.rows());
  std::int64_t outliers = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 4u) << i;
    EXPECT_EQ(rows[i][0], std::to_string(i));  // no /ids: row numbers
    const int label = std::stoi(rows[i][1]);
    if (c.core[i]) EXPECT_EQ(label, c.labels[i]) << "core row " << i;
    EXPECT_EQ(label < 0, c.labels[i] < 0) << "row " << i;
    if (label < 0) {
      ++outliers;
      EXPECT_EQ(rows[i][2], "Outliers");
      EXPECT_EQ(rows[i][3], "");  // no core row within eps: no distance
    } else {
      EXPECT_FALSE(rows[i][2].empty());
    }
  }
  nlohmann::json m;
  std::ifstream(path("metrics.json")) >> m;
  EXPECT_EQ(m.at("algorithm"), "dbscan");
  EXPECT_EQ(m.at("n_noise").get<std::int64_t>(), outliers);
  EXPECT_EQ(m.at("k").get<int>(), 6);
  EXPECT_GE(m.at("silhouette").get<double>(), -1.0);
  EXPECT_LE(m.at("silhouette").get<double>(), 1.0);
  const Model model = read_model(path("model.h5"));
  EXPECT_TRUE(model.is_dbscan());
  EXPECT_EQ(model.attributes.at("algorithm"), "dbscan");
  std::int64_t n_core = 0;
  for (int v : c.core) n_core += v;
  EXPECT_EQ(model.dbscan_core_rows.rows(), n_core);
  EXPECT_EQ(model.centroids.rows(), 6);
  // predict on the training rows: the same segments.csv.
  ASSERT_EQ(segforge("predict " + quote(path("model.h5")) + " " + quote(features) + " -o " + quote(path("again.csv")), &out), 0)
      << out;
  const auto again = csv("again.csv");
  ASSERT_EQ(again.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(again[i][1], rows[i][1]) << i;
    EXPECT_EQ(again[i][2], rows[i][2]) << i;
  }
}

TEST_F(DbscanCli, EpsAutoPrintsItsChoice) {
  const std::string features = (fixtures() / "blobs_noise_3d.h5").string();
  std::string out;
  ASSERT_EQ(segforge("fit " + quote(features) + " --algorithm dbscan --min-samples 10 -o " + quote(path("model.h5")), &out), 0)
      << out;
  EXPECT_NE(out.find("eps auto: "), std::string::npos) << out;
  EXPECT_NE(out.find("the knee"), std::string::npos) << out;
}

// segforge dbscan-eps: the curve fit --eps auto reads (same sample, same seed), sorted, its
// knee where fit puts eps; the curve itself is k_distances' (checked against scikit-learn's
// NearestNeighbors above).
TEST_F(DbscanCli, DbscanEpsWritesTheCurveFitEpsAutoChoosesFrom) {
  const std::string features = (fixtures() / "blobs_noise_3d.h5").string();
  std::string out;
  ASSERT_EQ(segforge("dbscan-eps " + quote(features) + " --min-samples 10 --sample 500 --seed 7 -o " + quote(path("eps.json")), &out), 0)
      << out;
  EXPECT_NE(out.find("suggested eps: "), std::string::npos) << out;
  nlohmann::json j;
  std::ifstream(path("eps.json")) >> j;
  EXPECT_EQ(j.at("format"), "segforge-dbscan-eps");
  EXPECT_EQ(j.at("min_samples").get<int>(), 10);
  const auto curve = j.at("curve").get<std::vector<double>>();
  ASSERT_EQ(curve.size(), 500u);
  EXPECT_TRUE(std::is_sorted(curve.begin(), curve.end()));
  EXPECT_TRUE(j.at("knee_found").get<bool>());
  EXPECT_EQ(curve[j.at("index").get<std::size_t>()], j.at("eps").get<double>());
  // The same library call on the same rows, and fit --eps auto with the same sample and seed.
  const Case c = load("blobs_noise_3d");
  auto backend = make_cpu_backend(2);
  auto data = backend->upload(c.x.view());
  const EpsSuggestion s = suggest_eps(*backend, *data, 10, 500, 7);
  EXPECT_EQ(s.curve, curve);
  EXPECT_EQ(s.eps, j.at("eps").get<double>());
  ASSERT_EQ(segforge("fit " + quote(features) + " --algorithm dbscan --min-samples 10 --eps-sample 500 --seed 7 -o " +
                         quote(path("model.h5")) + " --metrics " + quote(path("metrics.json")),
                     &out),
            0)
      << out;
  nlohmann::json m;
  std::ifstream(path("metrics.json")) >> m;
  EXPECT_EQ(m.at("eps").get<double>(), j.at("eps").get<double>());
  // Bad input: one line, exit 2, nothing written.
  for (const std::string& args : std::vector<std::string>{"--min-samples 0", "--sample 3", "-o " + quote(features)}) {
    EXPECT_EQ(segforge("dbscan-eps " + quote(features) + " " + args + (args[1] == 'o' ? "" : " -o " + quote(path("bad.json"))), &out), 2)
        << args << "\n" << out;
    EXPECT_FALSE(fs::exists(path("bad.json"))) << args;
  }
}

// segforge stability --algorithm dbscan: the full-data fit is fit's (same segments and outliers),
// and the flags that belong to the other method are refused.
TEST_F(DbscanCli, StabilityOfADbscanFit) {
  const std::string features = (fixtures() / "blobs_noise_3d.h5").string();
  const Case c = load("blobs_noise_3d");
  std::string out;
  const std::string params = " --eps " + std::to_string(c.eps) + " --min-samples " + std::to_string(c.min_samples);
  ASSERT_EQ(segforge("stability " + quote(features) + " --algorithm dbscan" + params + " --runs 4 -o " + quote(path("st.json")), &out), 0)
      << out;
  nlohmann::json j;
  std::ifstream(path("st.json")) >> j;
  EXPECT_EQ(j.at("algorithm"), "dbscan");
  EXPECT_EQ(j.at("k").get<int>(), 6);  // scikit-learn's clusters on this fixture
  std::vector<std::int64_t> sizes(6, 0);
  std::int64_t noise = 0;
  for (int l : c.labels) l < 0 ? ++noise : ++sizes[static_cast<std::size_t>(l)];
  // scikit-learn gives a border row the cluster that reached it first, segforge the nearest
  // core row's: the sizes may differ by those rows only.
  const auto got = j.at("reference_sizes").get<std::vector<std::int64_t>>();
  ASSERT_EQ(got.size(), 6u);
  for (int l = 0; l < 6; ++l) EXPECT_NEAR(static_cast<double>(got[l]), static_cast<double>(sizes[l]), 0.02 * sizes[l]) << l;
  EXPECT_EQ(j.at("reference_unassigned").get<std::int64_t>(), noise);
  EXPECT_EQ(j.at("run_segments").size(), 4u);
  EXPECT_TRUE(j.at("stable").get<bool>()) << out;
  for (const std::string& args : std::vector<std::string>{" --algorithm dbscan -k 3" + params, " --algorithm dbscan --eps 0", " --algorithm optics -k 3", ""}) {
    EXPECT_EQ(segforge("stability " + quote(features) + args + " -o " + quote(path("bad.json")), &out), 2) << args << "\n" << out;
    EXPECT_FALSE(fs::exists(path("bad.json"))) << args;
  }
}

TEST_F(DbscanCli, BadInputIsOneLineExitTwoNothingWritten) {
  const std::string features = (fixtures() / "moons.h5").string();
  const std::string model = quote(path("model.h5"));
  const std::pair<std::string, std::string> cases[] = {
      {"--algorithm dbscan --eps 0", "must be a positive distance"},
      {"--algorithm dbscan --eps -0.5", "must be a positive distance"},
      {"--algorithm dbscan --eps abc", "not a number"},
      {"--algorithm dbscan --eps 0.1 --min-samples 0", "must be at least 1"},
      {"--algorithm dbscan --eps 0.000001", "every row is noise"},
      {"--algorithm dbscan --eps 0.1 -k 3", "DBSCAN finds the number of segments itself"},
      {"--algorithm dbscan --eps 0.1 --resume x.h5", "K-Means options"},
      {"", "the number of segments is required"},
  };
  for (const auto& [args, message] : cases) {
    std::string out;
    EXPECT_EQ(segforge("fit " + quote(features) + " " + args + " -o " + model, &out), 2) << args << "\n" << out;
    EXPECT_NE(out.find(message), std::string::npos) << args << "\n" << out;
    EXPECT_FALSE(fs::exists(path("model.h5"))) << args;
  }
  // A DBSCAN model where only K-Means models are understood yet: refused, naming the model.
  std::string out;
  ASSERT_EQ(segforge("fit " + quote(features) + " --algorithm dbscan --eps 0.08 --min-samples 8 -o " + model, &out), 0) << out;
  EXPECT_EQ(segforge("refresh " + model + " " + quote(features) + " -o " + quote(path("new.h5")), &out), 2) << out;
  EXPECT_NE(out.find("a DBSCAN model"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(path("new.h5")));
}

}  // namespace
}  // namespace segforge
