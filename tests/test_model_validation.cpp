// Issue 15.5: every array read from a model or a features file is validated (src/validate.cpp)
// by the reader. One TEST_P row per check: a good file written by the C++ writer, one mutation,
// the message it must give (file, dataset, what to do, one line). Then the programs: exit 2 and
// that message for `fit --continue-from`, `fit` on a bad /scaler, `predict` on a bad model.

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/validate.hpp"
#include "test_support.hpp"

using namespace segforge;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// A complete model of 3 centres over 2 features, as segforge fit writes one.
Model good_model() {
  Model m;
  m.centroids = Matrix<float>(3, 2);
  for (std::int64_t i = 0; i < 6; ++i) m.centroids.data()[i] = static_cast<float>(i) - 2.5f;
  m.feature_names = {"recency", "monetary"};
  m.scaler.mean = {1.0, 2.0};
  m.scaler.scale = {0.5, 3.0};
  m.scaler.transform = {"identity", "log1p"};
  m.segment_names = {"A", "B", "C"};
  m.segment_sizes = {5, 3, 2};
  m.segment_shares = {0.5, 0.3, 0.2};
  m.segment_centres_original = Matrix<double>(3, 2, 1.0);
  m.segment_z_scores = Matrix<double>(3, 2, 0.5);
  m.segment_top_features = Matrix<std::int32_t>(3, 1, 0);
  m.segment_descriptions = {"a", "b", "c"};
  m.segment_outreach = {"x", "y", "z"};
  m.counts = {5, 3, 2};
  m.attributes = {{"k", "3"}, {"algorithm", "minibatch"}};
  return m;
}

struct ModelCase {
  std::string name;
  std::function<void(Model&)> mutate;
  std::string expected;  ///< after "m.h5"
};

class ModelValidation : public test::TempDirTest, public ::testing::WithParamInterface<ModelCase> {};

TEST_P(ModelValidation, ReadModelRejectsWithFileDatasetAndRemedy) {
  const std::string file = path("m.h5");
  Model m = good_model();
  write_model(file, m);
  ASSERT_NO_THROW(read_model(file));
  GetParam().mutate(m);
  write_model(file, m);
  try {
    read_model(file);
    FAIL() << "accepted";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_EQ(what.rfind(file + GetParam().expected, 0), 0u) << what;
    EXPECT_NE(what.find("refit the model with segforge fit"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Checks, ModelValidation,
    ::testing::Values(
        ModelCase{"centroid_nan", [](Model& m) { m.centroids(1, 0) = std::nanf(""); },
                  ":/centroids: row 1 (0-based), column 0 is NaN"},
        ModelCase{"centroid_inf", [](Model& m) { m.centroids(2, 1) = -std::numeric_limits<float>::infinity(); },
                  ":/centroids: row 2 (0-based), column 1 is -Inf"},
        ModelCase{"feature_names_duplicate", [](Model& m) { m.feature_names = {"x", "x"}; },
                  ":/feature_names: feature name 'x' appears twice"},
        ModelCase{"scaler_mean_nan", [](Model& m) { m.scaler.mean[1] = kNaN; },
                  ":/scaler/mean: value 1 (0-based) is NaN"},
        ModelCase{"scaler_scale_zero", [](Model& m) { m.scaler.scale[0] = 0.0; },
                  ":/scaler/scale: value 0 (0-based) is 0; a scale must be a finite number > 0"},
        ModelCase{"scaler_scale_negative", [](Model& m) { m.scaler.scale[1] = -2.0; },
                  ":/scaler/scale: value 1 (0-based) is -2"},
        ModelCase{"scaler_scale_inf", [](Model& m) { m.scaler.scale[1] = kInf; }, ":/scaler/scale: value 1 (0-based) is Inf"},
        ModelCase{"scaler_transform_unknown", [](Model& m) { m.scaler.transform[1] = "sqrt"; },
                  ":/scaler/transform: value 1 (0-based) is the unknown transform 'sqrt'"},
        ModelCase{"scaler_clip_nan", [](Model& m) {
                    m.scaler.clip_low = {-kInf, kNaN};
                    m.scaler.clip_high = {kInf, kInf};
                  }, ":/scaler/clip_low: value 1 (0-based) is NaN"},
        ModelCase{"scaler_clip_crossed", [](Model& m) {
                    m.scaler.clip_low = {-1.0, 5.0};
                    m.scaler.clip_high = {1.0, 4.0};
                  }, ":/scaler/clip_low: value 1 (0-based) is above clip_high's"},
        ModelCase{"segment_names_duplicate", [](Model& m) { m.segment_names = {"A", "B", "A"}; },
                  ":/segments/names: segment name 'A' appears twice (again at 2, 0-based)"},
        ModelCase{"sizes_negative", [](Model& m) { m.segment_sizes[2] = -2; },
                  ":/segments/sizes: value 2 (0-based) is -2; a segment size must be >= 0"},
        ModelCase{"sizes_all_zero", [](Model& m) {
                    m.segment_sizes = {0, 0, 0};
                    m.segment_shares = {0, 0, 0};
                  }, ":/segments/sizes: the sizes sum to 0"},
        ModelCase{"shares_nan", [](Model& m) { m.segment_shares[0] = kNaN; }, ":/segments/shares: value 0 (0-based) is NaN"},
        ModelCase{"shares_above_one", [](Model& m) { m.segment_shares[0] = 1.5; }, ":/segments/shares: value 0 (0-based) is 1.5"},
        ModelCase{"shares_disagree_with_sizes", [](Model& m) { m.segment_shares = {0.2, 0.3, 0.5}; },
                  ":/segments/shares: value 0 (0-based) is 0.2"},
        ModelCase{"centres_original_nan", [](Model& m) { m.segment_centres_original(0, 1) = kNaN; },
                  ":/segments/centres_original: row 0 (0-based), column 1 is NaN"},
        ModelCase{"z_scores_inf", [](Model& m) { m.segment_z_scores(2, 0) = kInf; },
                  ":/segments/z_scores: row 2 (0-based), column 0 is Inf"},
        ModelCase{"top_feature_out_of_range", [](Model& m) { m.segment_top_features(1, 0) = 2; },
                  ":/segments/top_features: row 1 (0-based), column 0 is 2"},
        ModelCase{"counts_nan", [](Model& m) { m.counts[1] = kNaN; }, ":/counts: value 1 (0-based) is NaN"},
        ModelCase{"counts_negative", [](Model& m) { m.counts[0] = -1; }, ":/counts: value 0 (0-based) is -1"},
        ModelCase{"counts_inf", [](Model& m) { m.counts[2] = kInf; }, ":/counts: value 2 (0-based) is Inf"},
        ModelCase{"k_attribute", [](Model& m) { m.attributes["k"] = "4"; },
                  ": attribute k is '4' but /centroids has 3 centres"}),
    [](const ::testing::TestParamInfo<ModelCase>& info) { return info.param.name; });

// ---- features files: /scaler and /feature_names --------------------------------------------

struct FeaturesCase {
  std::string name;
  std::function<void(Scaler&, std::vector<std::string>&)> mutate;
  std::string expected;
};

class FeaturesValidation : public test::TempDirTest, public ::testing::WithParamInterface<FeaturesCase> {};

// read_features and read_scaler (what fit, predict and prep --scaler-from read) refuse alike.
TEST_P(FeaturesValidation, ReadersRejectWithFileDatasetAndRemedy) {
  const std::string file = path("f.h5");
  const Matrix<float> x(4, 2, 1.0f);
  Scaler s;
  s.mean = {0.0, 1.0};
  s.scale = {1.0, 2.0};
  s.transform = {"identity", "signed_log1p"};
  std::vector<std::string> names{"a", "b"};
  write_features(file, x.view(), names, {}, s);
  ASSERT_NO_THROW(read_features(file));
  GetParam().mutate(s, names);
  write_features(file, x.view(), names, {}, s);
  for (const auto& read : std::vector<std::function<void()>>{[&] { read_features(file); }, [&] { read_scaler(file); }}) {
    try {
      read();
      if (GetParam().name != "feature_names_duplicate") FAIL() << "accepted";  // read_scaler reads no names
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind(file + GetParam().expected, 0), 0u) << what;
      EXPECT_NE(what.find("prepare the file again with segforge-prep"), std::string::npos) << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Checks, FeaturesValidation,
    ::testing::Values(
        FeaturesCase{"mean_nan", [](Scaler& s, auto&) { s.mean[0] = kNaN; }, ":/scaler/mean: value 0 (0-based) is NaN"},
        FeaturesCase{"mean_inf", [](Scaler& s, auto&) { s.mean[1] = kInf; }, ":/scaler/mean: value 1 (0-based) is Inf"},
        FeaturesCase{"scale_zero", [](Scaler& s, auto&) { s.scale[1] = 0.0; }, ":/scaler/scale: value 1 (0-based) is 0"},
        FeaturesCase{"scale_nan", [](Scaler& s, auto&) { s.scale[0] = kNaN; }, ":/scaler/scale: value 0 (0-based) is NaN"},
        FeaturesCase{"transform_unknown", [](Scaler& s, auto&) { s.transform[0] = "boxcox"; },
                     ":/scaler/transform: value 0 (0-based) is the unknown transform 'boxcox'"},
        FeaturesCase{"feature_names_duplicate", [](Scaler&, std::vector<std::string>& n) { n = {"b", "b"}; },
                     ":/feature_names: feature name 'b' appears twice"}),
    [](const ::testing::TestParamInfo<FeaturesCase>& info) { return info.param.name; });

TEST(CountsValidation, MiniBatchParamsRejectNonFiniteAndNegativeCounts) {
  MiniBatchParams p;
  p.n_clusters = 3;
  for (const std::vector<double>& counts : {std::vector<double>{1, kNaN, 2}, {1, -1, 2}, {kInf, 1, 2}}) {
    p.counts = counts;
    EXPECT_THROW(validate(p, 100, 2, "f.h5:/features"), InputError);
  }
  p.counts = {0, 1, 2};
  EXPECT_NO_THROW(validate(p, 100, 2, "f.h5:/features"));
}

// ---- the programs ---------------------------------------------------------------------------

class ValidationCli : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    Matrix<float> x(60, 2);
    for (std::int64_t i = 0; i < 60; ++i) {
      x(i, 0) = static_cast<float>(i % 3) * 5.0f + static_cast<float>(i % 7) * 0.01f;
      x(i, 1) = static_cast<float>(i % 3) * -2.0f + static_cast<float>(i % 5) * 0.01f;
    }
    data_ = path("d.h5");
    write_features(data_, x.view(), {"a", "b"});
    x_ = x;
  }
  /// `segforge ARGS`: exit status, output in *out.
  int segforge(const std::string& args, std::string* out) const {
    return shell(std::string(SEGFORGE_BINARY) + " " + args, out);
  }
  void expect_refused(const std::string& args, const std::string& message, const std::string& output) const {
    std::string out;
    EXPECT_EQ(segforge(args, &out), 2) << out;
    EXPECT_NE(out.find(message), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(output)) << "an output was written";
  }
  std::string data_;
  Matrix<float> x_;
};

TEST_F(ValidationCli, ContinueFromAModelWithBadCountsExits2) {
  std::string out;
  ASSERT_EQ(segforge("fit " + data_ + " -k 3 --algorithm minibatch --device cpu -o " + path("m.h5"), &out), 0) << out;
  for (double bad : {kNaN, -3.0, kInf}) {
    Model m = read_model(path("m.h5"));
    m.counts[1] = bad;
    write_model(path("bad.h5"), m);
    expect_refused("fit " + data_ + " -k 3 --algorithm minibatch --device cpu --continue-from " + path("bad.h5") +
                       " -o " + path("m2.h5"),
                   path("bad.h5") + ":/counts: value 1 (0-based) is ", path("m2.h5"));
  }
}

TEST_F(ValidationCli, FitOnAFeaturesFileWithABadScalerExits2) {
  Scaler s;
  s.mean = {0.0, kNaN};
  s.scale = {1.0, 1.0};
  s.transform = {"identity", "identity"};
  write_features(path("bad.h5"), x_.view(), {"a", "b"}, {}, s);
  expect_refused("fit " + path("bad.h5") + " -k 3 --device cpu -o " + path("m.h5"),
                 path("bad.h5") + ":/scaler/mean: value 1 (0-based) is NaN", path("m.h5"));
  s.mean = {0.0, 0.0};
  s.scale = {0.0, 1.0};
  write_features(path("bad.h5"), x_.view(), {"a", "b"}, {}, s);
  expect_refused("fit " + path("bad.h5") + " -k 3 --device cpu -o " + path("m.h5"),
                 path("bad.h5") + ":/scaler/scale: value 0 (0-based) is 0", path("m.h5"));
  s.scale = {1.0, 1.0};
  s.transform = {"identity", "cube"};
  write_features(path("bad.h5"), x_.view(), {"a", "b"}, {}, s);
  expect_refused("fit " + path("bad.h5") + " -k 3 --device cpu -o " + path("m.h5"),
                 "unknown transform 'cube'", path("m.h5"));
}

TEST_F(ValidationCli, PredictWithANaNCentreModelExits2) {
  std::string out;
  ASSERT_EQ(segforge("fit " + data_ + " -k 3 --device cpu -o " + path("m.h5"), &out), 0) << out;
  Model m = read_model(path("m.h5"));
  m.centroids = Matrix<float>(3, 2, std::nanf(""));
  write_model(path("bad.h5"), m);
  expect_refused("predict " + path("bad.h5") + " " + data_ + " -o " + path("l.csv"),
                 path("bad.h5") + ":/centroids: row 0 (0-based), column 0 is NaN; values must be finite numbers; refit the model",
                 path("l.csv"));
}

}  // namespace
