// The segforge command line: bad input gives one clear line, exit status 2 and no output file;
// the happy path writes a model, labels and metrics that agree with each other.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "segforge/io.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace segforge;

namespace {

struct Outcome {
  int status = -1;
  std::string output;  // stdout and stderr together
};

class Cli : public test::TempDirTest {
 protected:
  Outcome run(const std::string& args) const {
    Outcome out;
    out.status = shell(std::string(SEGFORGE_BINARY) + " " + args, &out.output);
    return out;
  }

  /// Blobs around 3 centres, [n x d], with named columns.
  std::string blobs(const std::string& name, std::int64_t n = 300, int d = 3,
                    std::vector<std::string> names = {}) const {
    std::mt19937 rng(7);
    std::normal_distribution<float> noise(0.0f, 0.3f);
    Matrix<float> x(n, d);
    for (std::int64_t i = 0; i < n; ++i)
      for (int j = 0; j < d; ++j) x(i, j) = static_cast<float>((i % 3) * 4 + j) + noise(rng);
    if (names.empty())
      for (int j = 0; j < d; ++j) names.push_back("col" + std::to_string(j));
    write_features(path(name), x.view(), names);
    return path(name);
  }

  /// Only the files the test made itself (inputs) remain: nothing half-written.
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(Cli, FitPredictScoreEndToEnd) {
  const std::string features = blobs("f.h5");
  Outcome fit = run("fit " + features + " -k 3 --seed 1 -o " + path("model.h5") + " --labels " +
                    path("labels.h5") + " --metrics " + path("metrics.json"));
  ASSERT_EQ(fit.status, 0) << fit.output;
  std::ifstream in(path("metrics.json"));
  const auto m = nlohmann::json::parse(in);
  EXPECT_EQ(m["k"], 3);
  EXPECT_EQ(m["n_samples"], 300);
  EXPECT_EQ(m["n_features"], 3);
  EXPECT_EQ(m["sizes"], nlohmann::json::array({100, 100, 100}));
  EXPECT_EQ(m["format"], "segforge-metrics");
  EXPECT_EQ(m["format_version"], 1);
  EXPECT_EQ(m["backend"], "cpu");
  EXPECT_TRUE(m["converged"].get<bool>());
  // Three tight, well separated blobs: silhouette near 1.
  EXPECT_GT(m["silhouette"].get<double>(), 0.8);
  EXPECT_LE(m["silhouette"].get<double>(), 1.0);
  for (const char* key : {"inertia", "n_iter", "davies_bouldin", "calinski_harabasz", "timings"})
    EXPECT_TRUE(m.contains(key)) << key;

  const Model model = read_model(path("model.h5"));
  EXPECT_EQ(model.centroids.rows(), 3);
  EXPECT_EQ(model.attributes.at("algorithm"), "lloyd");
  EXPECT_EQ(model.feature_names, (std::vector<std::string>{"col0", "col1", "col2"}));

  // predict on the training data gives the fit's labels.
  Outcome predict = run("predict " + path("model.h5") + " " + features + " -o " + path("again.h5"));
  ASSERT_EQ(predict.status, 0) << predict.output;
  EXPECT_EQ(read_labels(path("again.h5")), read_labels(path("labels.h5")));

  Outcome csv = run("predict " + path("model.h5") + " " + features + " -o " + path("seg.csv"));
  ASSERT_EQ(csv.status, 0) << csv.output;
  EXPECT_EQ(read_labels(path("seg.csv")), read_labels(path("labels.h5")));

  // score recomputes the same silhouette from the labels file.
  Outcome score = run("score " + features + " --labels " + path("labels.h5") +
                      " --silhouette exact --metrics " + path("score.json") + " --samples " +
                      path("samples.h5"));
  ASSERT_EQ(score.status, 0) << score.output;
  // Per-sample values come with the labels of the rows they score (all rows when exact).
  EXPECT_EQ(read_labels(path("samples.h5")), read_labels(path("labels.h5")));
  std::ifstream in2(path("score.json"));
  const auto s = nlohmann::json::parse(in2);
  EXPECT_EQ(s["format"], "segforge-metrics");
  EXPECT_NEAR(s["silhouette"].get<double>(), m["silhouette"].get<double>(), 1e-12);
  // fit sums float32 ||x||² − 2x·c + ||c||² terms; score sums direct differences: 1e-4 covers the
  // float32 cancellation on data ~10 units from the origin.
  EXPECT_NEAR(s["inertia"].get<double>(), m["inertia"].get<double>(), 1e-4 * m["inertia"].get<double>());
}

TEST_F(Cli, RepeatedIdsAreNamedNotSilent) {
  // 30 rows, ids 1..30 except that row 17 repeats row 4's id (0-based 3 and 16), and row 26
  // repeats it again: two repeated rows; fit and predict say so, and segments.csv keeps both.
  Matrix<float> x(30, 2);
  Ids ids;
  for (int i = 0; i < 30; ++i) {
    x(i, 0) = static_cast<float>(i % 3);
    x(i, 1) = static_cast<float>(i % 5);
    ids.numeric.push_back(i == 16 || i == 25 ? 4 : i + 1);
  }
  write_features(path("dup.h5"), x.view(), {"a", "b"}, ids);
  const RepeatedIds r = repeated_ids(ids);
  EXPECT_EQ(r.rows, 2);
  EXPECT_EQ(r.id, "4");
  EXPECT_EQ(r.first_row, 3);
  EXPECT_EQ(r.repeat_row, 16);
  Ids text;
  text.text = {"a", "b", "a "};  // ids as spelled: "a " is not "a"
  EXPECT_EQ(repeated_ids(text).rows, 0);
  text.text.push_back("b");
  EXPECT_EQ(repeated_ids(text).id, "b");

  auto out = run("fit " + path("dup.h5") + " -k 2 --seed 1 -o " + path("m.h5") + " --labels " + path("s.csv"));
  ASSERT_EQ(out.status, 0) << out.output;
  const std::string said = "/ids: 2 rows repeat an id of an earlier row (first: '4' on rows 4 and 17)";
  EXPECT_NE(out.output.find(said), std::string::npos) << out.output;
  std::ifstream csv(path("s.csv"));
  std::string line;
  int fours = 0;
  while (std::getline(csv, line)) fours += line.rfind("4,", 0) == 0;
  EXPECT_EQ(fours, 3);
  out = run("predict " + path("m.h5") + " " + path("dup.h5") + " -o " + path("p.csv"));
  ASSERT_EQ(out.status, 0) << out.output;
  EXPECT_NE(out.output.find(said), std::string::npos) << out.output;
  // Unique ids: no warning.
  out = run("fit " + blobs("u.h5") + " -k 2 --seed 1 -o " + path("u_m.h5"));
  EXPECT_EQ(out.output.find("repeat an id"), std::string::npos) << out.output;
}

TEST_F(Cli, MiniBatchAndContinue) {
  const std::string features = blobs("f.h5", 3000);
  Outcome fit = run("fit " + features + " -k 3 --algorithm minibatch --batch-size 256 -o " + path("mb.h5"));
  ASSERT_EQ(fit.status, 0) << fit.output;
  const Model first = read_model(path("mb.h5"));
  ASSERT_EQ(first.counts.size(), 3u);
  Outcome more = run("fit " + features + " -k 3 --algorithm minibatch --continue-from " + path("mb.h5") +
                     " --max-iter 1 -o " + path("mb2.h5") + " --metrics " + path("mb2.json"));
  ASSERT_EQ(more.status, 0) << more.output;
  const Model second = read_model(path("mb2.h5"));
  // The model and the metrics say the same: these centres were continued, not seeded.
  EXPECT_EQ(second.attributes.at("init"), "continued");
  std::ifstream metrics(path("mb2.json"));
  EXPECT_EQ(nlohmann::json::parse(metrics)["init"], "continued");
  double before = 0, after = 0;
  for (double c : first.counts) before += c;
  for (double c : second.counts) after += c;
  EXPECT_GT(after, before);  // counts keep growing when training continues
}

TEST_F(Cli, DistancesMatchHandComputation) {
  Matrix<float> a(2, 2, std::vector<float>{0, 0, 3, 4});
  write_features(path("a.h5"), a.view(), {"x", "y"});
  Outcome out = run("distances " + path("a.h5") + " -o " + path("d.h5"));
  ASSERT_EQ(out.status, 0) << out.output;
  ReadOptions o;
  o.dataset = "/distances";
  const Features d = read_features(path("d.h5"), o);
  ASSERT_EQ(d.x.rows(), 2);
  EXPECT_FLOAT_EQ(d.x(0, 0), 0.0f);
  EXPECT_NEAR(d.x(0, 1), 5.0f, 1e-5);
  EXPECT_NEAR(d.x(1, 0), 5.0f, 1e-5);
  // The file says what its values are.
  EXPECT_EQ(inspect_features(path("d.h5"), "/distances").attributes.at("squared"), "false");
  ASSERT_EQ(run("distances " + path("a.h5") + " --squared -o " + path("d2.h5")).status, 0);
  EXPECT_EQ(inspect_features(path("d2.h5"), "/distances").attributes.at("squared"), "true");
  EXPECT_NEAR(read_features(path("d2.h5"), o).x(0, 1), 25.0f, 1e-4);
}

TEST_F(Cli, HelpAndVersionExitZero) {
  EXPECT_EQ(run("--version").status, 0);
  EXPECT_EQ(run("fit --help").status, 0);
  EXPECT_EQ(run("info").status, 0);
}

// ---- bad input: one row per case (arguments, expected substring) --------------------------------

struct BadCase {
  std::string name;
  std::string args;      // {f}: a good features file, {d}: the test folder
  std::string expected;  // substring of the one-line message
};

class BadInput : public Cli, public ::testing::WithParamInterface<BadCase> {};

std::string expand(std::string s, const std::string& f, const std::string& d) {
  for (std::size_t p; (p = s.find("{f}")) != std::string::npos;) s.replace(p, 3, f);
  for (std::size_t p; (p = s.find("{d}")) != std::string::npos;) s.replace(p, 3, d);
  return s;
}

TEST_P(BadInput, ExitsTwoWithMessageAndNoOutput) {
  const BadCase& c = GetParam();
  const std::string features = blobs("f.h5");
  // Inputs some cases need.
  {
    std::ofstream(path("text.h5")) << "id,amount\n1,2\n";
    Matrix<float> nan(4, 2, std::vector<float>{1, 2, 3, 4, 5, std::numeric_limits<float>::quiet_NaN(), 7, 8});
    write_features(path("nan.h5"), nan.view(), {"recency", "frequency"});
    Matrix<float> two(5, 2, 1.0f);
    write_features(path("two.h5"), two.view(), {"a", "b"});
    blobs("renamed.h5", 30, 3, {"col0", "colX", "col2"});
    std::vector<std::int32_t> three(300);
    for (int i = 0; i < 300; ++i) three[i] = i % 3;
    write_labels_h5(path("labels.h5"), three, std::vector<float>(300, 0.0f), {});
    Model centres;
    centres.centroids = Matrix<float>(2, 2, 1.0f);
    write_model(path("centres.h5"), centres);
    const auto size = fs::file_size(features);
    fs::copy_file(features, path("truncated.h5"));
    fs::resize_file(path("truncated.h5"), size / 2);
  }
  const std::vector<std::string> before = files();
  const Outcome out = run(expand(c.args, features, dir_.string()));
  EXPECT_EQ(out.status, 2) << out.output;
  EXPECT_NE(out.output.find(c.expected), std::string::npos) << "message was: " << out.output;
  // One line (CLI11 usage errors may add a hint line; ours are one line).
  EXPECT_LE(std::count(out.output.begin(), out.output.end(), '\n'), 2) << out.output;
  EXPECT_EQ(files(), before) << "an output file was left behind";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadInput,
    ::testing::Values(
        BadCase{"missing_file", "fit {d}/nope.h5 -k 3 -o {d}/m.h5", "nope.h5"},
        BadCase{"not_hdf5", "fit {d}/text.h5 -k 3 -o {d}/m.h5", "text.h5"},
        BadCase{"truncated", "fit {d}/truncated.h5 -k 3 -o {d}/m.h5", "truncated.h5"},
        BadCase{"missing_dataset", "fit {f} --dataset /nope -k 3 -o {d}/m.h5", "/nope"},
        BadCase{"k_greater_than_n", "fit {d}/two.h5 -k 9 -o {d}/m.h5", "n_samples=5 should be >= n_clusters=9"},
        BadCase{"k_zero", "fit {f} -k 0 -o {d}/m.h5", "n_clusters=0 should be >= 1"},
        BadCase{"nan", "fit {d}/nan.h5 -k 2 -o {d}/m.h5", "row 2 (0-based): NaN in column 'frequency'"},
        BadCase{"unknown_init", "fit {f} -k 3 --init kmeans -o {d}/m.h5", "--init kmeans"},
        BadCase{"init_file_shape", "fit {f} -k 2 --init {d}/centres.h5 -o {d}/m.h5",
                "centres are [2 x 2], expected [n_clusters=2 x n_features=3]"},
        BadCase{"init_file_without_centroids", "fit {f} -k 2 --init {d}/two.h5 -o {d}/m.h5", "no dataset '/centroids'"},
        BadCase{"unknown_algorithm", "fit {f} -k 3 --algorithm elkan -o {d}/m.h5", "--algorithm elkan"},
        BadCase{"unknown_device", "fit {f} -k 3 --device tpu -o {d}/m.h5", "--device tpu"},
        BadCase{"no_gpu", "fit {f} -k 3 --device gpu -o {d}/m.h5", "--device gpu"},
        BadCase{"missing_output_folder", "fit {f} -k 3 -o {d}/no/such/m.h5", "does not exist"},
        BadCase{"labels_extension", "fit {f} -k 3 -o {d}/m.h5 --labels {d}/l.txt", "--labels"},
        BadCase{"negative_tol", "fit {f} -k 3 --tol -1e-3 -o {d}/m.h5", "tol=-0.001"},
        BadCase{"max_iter_zero", "fit {f} -k 3 --max-iter 0 -o {d}/m.h5", "max_iter=0 should be >= 1"},
        BadCase{"bad_silhouette", "score {f} --labels {f} --silhouette sample=x", "--silhouette sample=x"},
        BadCase{"samples_without_silhouette", "score {f} --labels {d}/labels.h5 --silhouette none --samples {d}/s.h5",
                "--samples"},
        BadCase{"unknown_option", "fit {f} -k 3 -o {d}/m.h5 --frobnicate", "frobnicate"},
        BadCase{"predict_other_columns", "predict {d}/model_missing.h5 {f} -o {d}/l.h5", "model_missing.h5"},
        BadCase{"score_wrong_labels", "score {f} --labels {d}/two.h5", "/labels"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST_F(Cli, PredictWithOtherColumnsIsAnError) {
  const std::string features = blobs("f.h5");
  ASSERT_EQ(run("fit " + features + " -k 3 -o " + path("model.h5")).status, 0);
  blobs("renamed.h5", 30, 3, {"col0", "colX", "col2"});
  blobs("wide.h5", 30, 4);
  const auto before = files();
  Outcome renamed = run("predict " + path("model.h5") + " " + path("renamed.h5") + " -o " + path("l.h5"));
  EXPECT_EQ(renamed.status, 2);
  EXPECT_NE(renamed.output.find("colX"), std::string::npos) << renamed.output;
  Outcome wide = run("predict " + path("model.h5") + " " + path("wide.h5") + " -o " + path("l.h5"));
  EXPECT_EQ(wide.status, 2);
  EXPECT_NE(wide.output.find("4 features"), std::string::npos) << wide.output;
  EXPECT_EQ(files(), before);
}

TEST_F(Cli, ScoreWithLabelsOfAnotherFileIsAnError) {
  const std::string features = blobs("f.h5");
  ASSERT_EQ(run("fit " + features + " -k 3 -o " + path("model.h5") + " --labels " + path("l.h5")).status, 0);
  const std::string other = blobs("other.h5", 50);
  Outcome out = run("score " + other + " --labels " + path("l.h5"));
  EXPECT_EQ(out.status, 2);
  EXPECT_NE(out.output.find("300 labels for 50 rows"), std::string::npos) << out.output;
}

}  // namespace
