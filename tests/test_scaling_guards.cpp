// Issue 14.8: `predict` refuses records scaled otherwise than the model's training data (the
// forgotten --scaler-from put 18% of donors into another segment), and `report` refuses a
// features file the model was not fitted on (the model stores its input checksum); each has an
// explicit override flag.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "segforge/io.hpp"
#include "test_support.hpp"

using namespace segforge;
namespace fs = std::filesystem;

namespace {

class ScalingGuards : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    x_ = Matrix<float>(90, 2);
    for (std::int64_t i = 0; i < 90; ++i) {
      x_(i, 0) = static_cast<float>(i % 3) * 4.0f + static_cast<float>(i % 7) * 0.02f;
      x_(i, 1) = static_cast<float>(i % 3) * -3.0f + static_cast<float>(i % 11) * 0.02f;
    }
    scaler_.mean = {10.0, 20.0};
    scaler_.scale = {2.0, 5.0};
    scaler_.transform = {"identity", "log1p"};
    write_features(path("train.h5"), x_.view(), {"recency", "monetary"}, {}, scaler_);
    std::string out;
    ASSERT_EQ(segforge("fit " + path("train.h5") + " -k 3 --seed 2 --device cpu -o " + path("model.h5"), &out), 0) << out;
  }
  int segforge(const std::string& args, std::string* out) const {
    return shell(std::string(SEGFORGE_BINARY) + " " + args, out);
  }
  static long lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

  Matrix<float> x_;
  Scaler scaler_;
};

TEST_F(ScalingGuards, PredictRefusesOtherScalingUnlessAllowed) {
  // The same records, scaled on themselves: another mean for 'monetary'.
  Scaler other = scaler_;
  other.mean[1] = 23.5;
  write_features(path("new.h5"), x_.view(), {"recency", "monetary"}, {}, other);
  std::string out;
  EXPECT_EQ(segforge("predict " + path("model.h5") + " " + path("new.h5") + " --device cpu -o " + path("l.csv"), &out), 2)
      << out;
  EXPECT_NE(out.find(path("new.h5") + ":/scaler: scaled otherwise than the data of the model " + path("model.h5") +
                     " (feature 'monetary': mean 23.5 and scale 5, the model's 20 and 5)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("--scaler-from TRAINING_FEATURES.h5"), std::string::npos) << out;
  EXPECT_NE(out.find("--allow-other-scaling"), std::string::npos) << out;
  EXPECT_EQ(lines(out), 1) << out;
  EXPECT_FALSE(fs::exists(path("l.csv")));

  // Another transform is another scaling too.
  other = scaler_;
  other.transform[0] = "signed_log1p";
  write_features(path("new2.h5"), x_.view(), {"recency", "monetary"}, {}, other);
  EXPECT_EQ(segforge("predict " + path("model.h5") + " " + path("new2.h5") + " --device cpu -o " + path("l.csv"), &out), 2)
      << out;
  EXPECT_NE(out.find("feature 'recency': transform signed_log1p, the model's identity"), std::string::npos) << out;

  // Allowed explicitly: labelled, with a warning.
  EXPECT_EQ(segforge("predict " + path("model.h5") + " " + path("new.h5") + " --allow-other-scaling --device cpu -o " +
                         path("l.csv"),
                     &out),
            0)
      << out;
  EXPECT_NE(out.find("scaled otherwise than the model's data"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(path("l.csv")));

  // Prepared like the training data (the same /scaler): labelled, no warning.
  write_features(path("same.h5"), x_.view(), {"recency", "monetary"}, {}, scaler_);
  EXPECT_EQ(segforge("predict " + path("model.h5") + " " + path("same.h5") + " --device cpu -o " + path("s.csv"), &out), 0)
      << out;
  EXPECT_EQ(out.find("scaled otherwise"), std::string::npos) << out;
}

TEST_F(ScalingGuards, ReportRefusesFeaturesTheModelWasNotFittedOnUnlessAllowed) {
  // Same columns and scaler, other records (one value changed): not the fitted file.
  Matrix<float> y = x_;
  y(5, 1) += 0.5f;
  write_features(path("other.h5"), y.view(), {"recency", "monetary"}, {}, scaler_);
  const Model model = read_model(path("model.h5"));
  std::string out;
  EXPECT_EQ(segforge("report " + path("model.h5") + " --features " + path("other.h5") + " --device cpu -o " +
                         path("r.html"),
                     &out),
            2)
      << out;
  EXPECT_NE(out.find("--features " + path("other.h5") + ": not the file the model " + path("model.h5") +
                     " was fitted on (" + path("train.h5") + ", checksum " + model.attributes.at("input_checksum")),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("--allow-other-features"), std::string::npos) << out;
  EXPECT_EQ(lines(out), 1) << out;
  EXPECT_FALSE(fs::exists(path("r.html")));

  EXPECT_EQ(segforge("report " + path("model.h5") + " --features " + path("other.h5") +
                         " --allow-other-features --device cpu -o " + path("r.html"),
                     &out),
            0)
      << out;
  EXPECT_TRUE(fs::exists(path("r.html")));
  // The fitted file itself passes.
  EXPECT_EQ(segforge("report " + path("model.h5") + " --features " + path("train.h5") + " --device cpu -o " +
                         path("t.html"),
                     &out),
            0)
      << out;
  EXPECT_EQ(out.find("not the file the model"), std::string::npos) << out;
}

}  // namespace
