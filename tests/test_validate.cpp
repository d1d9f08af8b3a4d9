// One row per validate() check: a mutation of good parameters and the message it must give.

#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include "segforge/error.hpp"
#include "segforge/validate.hpp"

using namespace segforge;

namespace {

constexpr std::int64_t kRows = 100;
constexpr std::int64_t kCols = 4;

struct LloydCase {
  std::string name;
  std::function<void(LloydParams&)> mutate;
  std::string expected;
};

class LloydValidation : public ::testing::TestWithParam<LloydCase> {};

TEST_P(LloydValidation, RejectsWithMessage) {
  LloydParams p;
  p.n_clusters = 5;
  ASSERT_NO_THROW(validate(p, kRows, kCols, "f.h5:/features"));
  GetParam().mutate(p);
  try {
    validate(p, kRows, kCols, "f.h5:/features");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.exit_code(), 2);
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("f.h5:/features", 0), 0u) << what;
    EXPECT_NE(what.find(GetParam().expected), std::string::npos) << what;
  }
}

Matrix<float> centres(std::int64_t k, std::int64_t d) { return Matrix<float>(k, d, 0.5f); }

INSTANTIATE_TEST_SUITE_P(
    Checks, LloydValidation,
    ::testing::Values(
        LloydCase{"k_zero", [](LloydParams& p) { p.n_clusters = 0; }, "n_clusters=0 should be >= 1"},
        LloydCase{"k_above_n", [](LloydParams& p) { p.n_clusters = 101; },
                  "n_samples=100 should be >= n_clusters=101"},
        LloydCase{"max_iter", [](LloydParams& p) { p.max_iter = 0; }, "max_iter=0 should be >= 1"},
        LloydCase{"tol_negative", [](LloydParams& p) { p.tol = -1; }, "tol=-1"},
        LloydCase{"tol_nan", [](LloydParams& p) { p.tol = std::numeric_limits<double>::quiet_NaN(); }, "tol="},
        LloydCase{"n_init", [](LloydParams& p) { p.n_init = 0; }, "n_init=0 should be >= 1"},
        LloydCase{"swap_trials", [](LloydParams& p) { p.swap_trials = -3; }, "swap trials"},
        LloydCase{"oversampling", [](LloydParams& p) { p.init.oversampling_factor = 0; }, "oversampling factor"},
        LloydCase{"rounds", [](LloydParams& p) { p.init.n_rounds = -1; }, "rounds"},
        LloydCase{"local_trials", [](LloydParams& p) { p.init.n_local_trials = -1; }, "local trials"},
        LloydCase{"given_shape", [](LloydParams& p) {
                    p.init.init = Init::given;
                    p.init.centroids = centres(5, 3);
                  }, "centres are [5 x 3], expected [n_clusters=5 x n_features=4]"},
        LloydCase{"given_not_finite", [](LloydParams& p) {
                    p.init.init = Init::given;
                    p.init.centroids = centres(5, 4);
                    p.init.centroids(2, 1) = std::numeric_limits<float>::infinity();
                  }, "centre 2 column 1 is not finite"}),
    [](const ::testing::TestParamInfo<LloydCase>& info) { return info.param.name; });

struct MiniBatchCase {
  std::string name;
  std::function<void(MiniBatchParams&)> mutate;
  std::string expected;
};

class MiniBatchValidation : public ::testing::TestWithParam<MiniBatchCase> {};

TEST_P(MiniBatchValidation, RejectsWithMessage) {
  MiniBatchParams p;
  p.n_clusters = 5;
  ASSERT_NO_THROW(validate(p, kRows, kCols, "f.h5:/features"));
  GetParam().mutate(p);
  try {
    validate(p, kRows, kCols, "f.h5:/features");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().expected), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Checks, MiniBatchValidation,
    ::testing::Values(
        MiniBatchCase{"batch_size", [](MiniBatchParams& p) { p.batch_size = 0; }, "batch_size=0 should be >= 1"},
        MiniBatchCase{"max_iter", [](MiniBatchParams& p) { p.max_iter = 0; }, "max_iter=0"},
        MiniBatchCase{"tol", [](MiniBatchParams& p) { p.tol = -0.5; }, "tol=-0.5"},
        MiniBatchCase{"no_improvement", [](MiniBatchParams& p) { p.max_no_improvement = -1; }, "max_no_improvement"},
        MiniBatchCase{"reassignment", [](MiniBatchParams& p) { p.reassignment_ratio = -0.1; }, "reassignment_ratio"},
        MiniBatchCase{"n_init", [](MiniBatchParams& p) { p.n_init = 0; }, "n_init=0"},
        MiniBatchCase{"init_size", [](MiniBatchParams& p) { p.init_size = -1; }, "init_size"},
        MiniBatchCase{"counts", [](MiniBatchParams& p) { p.counts = {1.0, 2.0}; },
                      "2 centre counts for n_clusters=5"},
        MiniBatchCase{"k_above_n", [](MiniBatchParams& p) { p.n_clusters = 500; }, "n_clusters=500"}),
    [](const ::testing::TestParamInfo<MiniBatchCase>& info) { return info.param.name; });

TEST(LabelValidation, CountMismatchNegativeAndTooFewLabels) {
  const std::vector<std::int32_t> labels{0, 1, 1, 2};
  EXPECT_EQ(validate_labels(labels, 4, "l.h5"), 3);
  try {
    validate_labels(labels, 5, "l.h5");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("4 labels for 5 rows"), std::string::npos) << e.what();
  }
  const std::vector<std::int32_t> negative{0, -1, 1};
  try {
    validate_labels(negative, 3, "l.h5");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("row 1 (0-based): label -1"), std::string::npos) << e.what();
  }
  const std::vector<std::int32_t> one_label{0, 0, 0};
  EXPECT_THROW(validate_label_count(one_label, 1, "l.h5"), InputError);
  const std::vector<std::int32_t> all_distinct{0, 1, 2};
  EXPECT_THROW(validate_label_count(all_distinct, 3, "l.h5"), InputError);  // needs <= n-1
  EXPECT_NO_THROW(validate_label_count(labels, 3, "l.h5"));
}

}  // namespace
