// What an analyst reads: the number formatter, Hennig's stability classes on a segment's mean and
// worst run, progress lines that show an inertia only where there is one, and the one-line
// "no GPU found" note on a machine without a GPU (details with --verbose).

#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "segforge/backend.hpp"
#include "segforge/io.hpp"
#include "segforge/number_format.hpp"
#include "segforge/segments.hpp"
#include "test_support.hpp"

namespace segforge {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

// ---- numbers -------------------------------------------------------------------------------------

TEST(AnalystNumber, SeparatorsSignificantDigitsAndTinyValues) {
  // The review's examples, by hand: 4 significant digits, at most 4 decimals, never an exponent.
  EXPECT_EQ(analyst_number(66234.6), "66,235");
  EXPECT_EQ(analyst_number(6.62e+04), "66,200");
  EXPECT_EQ(analyst_number(12050.0), "12,050");
  EXPECT_EQ(analyst_number(3.514e-08), "0");
  EXPECT_EQ(analyst_number(-3.514e-08), "0");  // no "-0"
  EXPECT_EQ(analyst_number(21613.279900670052), "21,613");
  EXPECT_EQ(analyst_number(1.23456), "1.235");
  EXPECT_EQ(analyst_number(0.012345), "0.0123");
  EXPECT_EQ(analyst_number(0.00012345), "0.0001");
  EXPECT_EQ(analyst_number(-0.5), "-0.5");
  EXPECT_EQ(analyst_number(2.0), "2");
  EXPECT_EQ(analyst_number(0.0), "0");
  EXPECT_EQ(analyst_number(999.96), "1,000");  // rounding carries into a new digit
  EXPECT_EQ(analyst_number(-1234567.8), "-1,234,568");
  EXPECT_EQ(analyst_number(1.5e12), "1,500,000,000,000");
  EXPECT_EQ(analyst_number(21613.2799, 6), "21,613.3");
  EXPECT_EQ(analyst_number(std::nan("")), "–");
  EXPECT_EQ(analyst_number(1.0 / 0.0), "–");
}

// ---- stability classes ---------------------------------------------------------------------------

TEST(StabilityVerdict, HennigsThresholdsOnTheMeanAndTheWorstRun) {
  // The review's case: a good mean, but one re-fit in which the segment dissolved (0.34 <= 0.5).
  EXPECT_EQ(segment_stability_verdict(0.80, 0.34), "dissolved");
  EXPECT_EQ(segment_stability_verdict(0.95, 0.50), "dissolved");  // <= 0.5 is dissolved
  EXPECT_EQ(segment_stability_verdict(0.50, 0.50), "dissolved");
  EXPECT_EQ(segment_stability_verdict(0.58, 0.55), "unstable");
  EXPECT_EQ(segment_stability_verdict(0.90, 0.55), "unstable");   // the worst run decides
  EXPECT_EQ(segment_stability_verdict(0.70, 0.70), "doubtful");   // 0.6-0.75: a pattern
  EXPECT_EQ(segment_stability_verdict(0.90, 0.60), "doubtful");
  EXPECT_EQ(segment_stability_verdict(0.74, 0.90), "doubtful");   // the mean decides
  EXPECT_EQ(segment_stability_verdict(0.75, 0.75), "stable");     // >= 0.75 stable
  EXPECT_EQ(segment_stability_verdict(0.95, 0.80), "stable");
  EXPECT_EQ(segment_stability_verdict(0.85, 0.85), "highly stable");  // >= 0.85
  EXPECT_EQ(segment_stability_verdict(1.00, 0.97), "highly stable");
  // A stricter --jaccard-threshold moves "stable" (and "highly stable" never sits below it).
  EXPECT_EQ(segment_stability_verdict(0.88, 0.88, 0.9), "doubtful");
  EXPECT_EQ(segment_stability_verdict(0.92, 0.91, 0.9), "highly stable");
}

TEST(StabilityVerdict, AStabilityRunUsesTheClassesOfEachSegment) {
  // Uniform in a disc, K=4 with one restart: K-Means cuts it at other angles in other re-fits,
  // so segments dissolve in some runs whatever their mean.
  auto backend = make_cpu_backend();
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Matrix<float> disc(1500, 2);
  for (std::int64_t i = 0; i < disc.rows();) {
    const float x = u(gen), y = u(gen);
    if (x * x + y * y > 1.0f) continue;
    disc(i, 0) = x;
    disc(i, 1) = y;
    ++i;
  }
  auto data = backend->upload(disc.view());
  StabilityParams p;
  p.n_clusters = 4;
  p.runs = 6;
  p.lloyd.n_init = 1;
  p.lloyd.refine = Refine::none;
  const StabilityResult r = stability(*backend, *data, p);
  ASSERT_EQ(r.segment_verdicts.size(), 4u);
  bool all_stable = true;
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(r.segment_verdicts[j], segment_stability_verdict(r.jaccard_mean[j], r.jaccard_min[j])) << j;
    all_stable = all_stable && (r.segment_verdicts[j] == "stable" || r.segment_verdicts[j] == "highly stable");
    if (r.jaccard_min[j] <= 0.5) EXPECT_EQ(r.segment_verdicts[j], "dissolved") << j;
  }
  EXPECT_EQ(r.stable, all_stable && r.ari_mean >= p.ari_threshold) << r.verdict;
  EXPECT_NE(r.verdict.find("worst run"), std::string::npos) << r.verdict;
  EXPECT_NE(r.verdict.find("<= 0.50 dissolved"), std::string::npos) << r.verdict;
}

// ---- the command line ----------------------------------------------------------------------------

class WordingCli : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::mt19937 gen(5);
    const Matrix<float> x = test::random_blobs(gen, 3000, 3, 3, 6.0);
    write_features(path("blobs.h5"), x.view(), {"a", "b", "c"});
  }
  /// segforge with stderr and stdout together, a progress line for every step.
  int segforge(const std::string& args, std::string* output) const {
    return shell(std::string("SEGFORGE_PROGRESS_SECONDS=0 ") + SEGFORGE_BINARY + " " + args, output);
  }
};

TEST_F(WordingCli, ProgressLinesShowAnInertiaOnlyWhereThereIsOne) {
  std::string out;
  ASSERT_EQ(segforge("stability " + path("blobs.h5") + " -k 3 --runs 3 --device cpu", &out), 0) << out;
  int stability_lines = 0;
  for (const auto& line : lines_of(out))
    if (line.starts_with("stability:")) {
      ++stability_lines;
      EXPECT_EQ(line.find("inertia"), std::string::npos) << line;
      EXPECT_EQ(line.find("run "), std::string::npos) << line;  // one run, so no "run 1"
    }
  EXPECT_EQ(stability_lines, 3) << out;

  ASSERT_EQ(segforge("fit " + path("blobs.h5") + " -k 3 --n-init 2 --device cpu --silhouette exact -o " +
                         path("model.h5") + " --metrics " + path("metrics.json"),
                     &out),
            0)
      << out;
  int silhouette_lines = 0, lloyd_lines = 0, second_run = 0;
  for (const auto& line : lines_of(out)) {
    if (line.starts_with("silhouette:")) {
      ++silhouette_lines;
      EXPECT_EQ(line.find("inertia"), std::string::npos) << line;
    }
    if (line.starts_with("lloyd")) {
      ++lloyd_lines;
      second_run += line.starts_with("lloyd run 2: ");
      const auto at = line.find("inertia ");
      ASSERT_NE(at, std::string::npos) << line;
      EXPECT_NE(line[at + 8], '0') << "a Lloyd step on spread blobs has a positive inertia: " << line;
    }
  }
  EXPECT_GE(silhouette_lines, 1) << out;
  EXPECT_GE(lloyd_lines, 2) << out;
  EXPECT_GE(second_run, 1) << out;
}

TEST_F(WordingCli, NoGpuIsOneLineAndDetailsOnlyWithVerbose) {
  std::string why;
  const bool gpu = cuda_available(&why);
  std::string out;
  ASSERT_EQ(segforge("fit " + path("blobs.h5") + " -k 3 -o " + path("model.h5"), &out), 0) << out;
  std::vector<std::string> gpu_lines;
  for (const auto& line : lines_of(out))
    if (line.find("GPU") != std::string::npos || line.find("CUDA") != std::string::npos) gpu_lines.push_back(line);
  if (gpu) {
    EXPECT_TRUE(gpu_lines.empty()) << out;  // a GPU answered: nothing to say
    return;
  }
  ASSERT_EQ(gpu_lines.size(), 1u) << out;
  EXPECT_EQ(gpu_lines[0], "segforge: no GPU found; running on the CPU");
  // --verbose: the reason, still once.
  ASSERT_EQ(segforge("fit " + path("blobs.h5") + " -k 3 --verbose -o " + path("model2.h5"), &out), 0) << out;
  int verbose_lines = 0;
  for (const auto& line : lines_of(out))
    if (line.find("running on the CPU") != std::string::npos) {
      ++verbose_lines;
      EXPECT_NE(line.find(why), std::string::npos) << line << " should say why: " << why;
    }
  EXPECT_EQ(verbose_lines, 1) << out;
  // --device cpu asks for the CPU: nothing to note.
  ASSERT_EQ(segforge("fit " + path("blobs.h5") + " -k 3 --device cpu -o " + path("model3.h5"), &out), 0) << out;
  EXPECT_EQ(out.find("GPU"), std::string::npos) << out;
}

}  // namespace
}  // namespace segforge
