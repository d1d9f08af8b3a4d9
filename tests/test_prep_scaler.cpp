// segforge-prep --scaler-from: new records prepared like the training file. The training's own
// rows give its matrix bit for bit; a channel absent from new data is a 0 column in its
// place, an unseen one goes to the training's _other column or is dropped and counted; inputs
// that cannot make a training column are errors; and predict on new donors works end to end,
// with a refusal when the features were scaled separately (--allow-other-scaling overrides).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/prep.hpp"
#include "test_prep_support.hpp"
#include "test_support.hpp"

using namespace segforge;
using namespace segforge::prep;
using segforge::test::PrepDir;
using segforge::test::PrepOutcome;

namespace {

PrepOutcome prep(const std::string& args, const PrepDir& dir) { return segforge::test::run_prep(args, dir); }

std::int64_t column(const Features& f, const std::string& name) {
  const auto it = std::find(f.feature_names.begin(), f.feature_names.end(), name);
  EXPECT_NE(it, f.feature_names.end()) << name;
  return it - f.feature_names.begin();
}

std::int64_t row_of(const Features& f, std::int64_t id) {
  const auto it = std::find(f.ids.numeric.begin(), f.ids.numeric.end(), id);
  EXPECT_NE(it, f.ids.numeric.end()) << id;
  return it - f.ids.numeric.begin();
}

/// What apply_scaler gives for an identity feature with original value v.
float scaled(const Scaler& s, std::int64_t j, double v) {
  const auto jj = static_cast<std::size_t>(j);
  return static_cast<float>((v - s.mean[jj]) / s.scale[jj]);
}

void expect_same_file_contents(const Features& a, const Features& b) {
  EXPECT_EQ(a.feature_names, b.feature_names);
  EXPECT_EQ(a.ids.numeric, b.ids.numeric);
  EXPECT_EQ(a.ids.text, b.ids.text);
  ASSERT_EQ(a.x.rows(), b.x.rows());
  ASSERT_EQ(a.x.cols(), b.x.cols());
  EXPECT_EQ(a.x.values(), b.x.values()) << "bit-identical matrix";
  EXPECT_EQ(a.scaler.mean, b.scaler.mean);
  EXPECT_EQ(a.scaler.scale, b.scaler.scale);
  EXPECT_EQ(a.scaler.transform, b.scaler.transform);
  EXPECT_EQ(a.scaler.clip_low, b.scaler.clip_low);
  EXPECT_EQ(a.scaler.clip_high, b.scaler.clip_high);
}

std::map<std::string, std::string> attributes_of(const std::string& path) { return inspect_features(path).attributes; }

// ---- the training's own rows ------------------------------------------------------------------

TEST(PrepScalerFrom, OwnRowsGiveTheTrainingMatrix) {
  PrepDir dir;
  SynthDonorsParams sp;
  sp.n_donors = 800;
  sp.seed = 21;
  write_synth_donors(dir.file("gifts.csv"), dir.file("events.csv"), "", sp);
  const std::string inputs = dir.file("gifts.csv") + " --events " + dir.file("events.csv") + " --as-of 2024-01-01";
  // Winsorized, and with channels merged into channel_share_other, so clip bounds and the
  // level mapping are both exercised.
  auto run = prep("rfm " + inputs + " --clip-quantile 0.95 --max-levels 3 -o " + dir.file("train.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  run = prep("rfm " + inputs + " --scaler-from " + dir.file("train.h5") + " -o " + dir.file("again.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features train = read_features(dir.file("train.h5")), again = read_features(dir.file("again.h5"));
  ASSERT_FALSE(train.scaler.clip_low.empty()) << "the clip bounds are stored";
  EXPECT_EQ(train.scaler.clip_low[static_cast<std::size_t>(column(train, "trend_12m_ratio"))],
            -std::numeric_limits<double>::infinity())
      << "a fraction is not clipped";
  EXPECT_NE(std::find(train.feature_names.begin(), train.feature_names.end(), "channel_share_other"),
            train.feature_names.end());
  expect_same_file_contents(train, again);
  const auto attributes = attributes_of(dir.file("again.h5"));
  EXPECT_EQ(attributes.at("scaler_from"), dir.file("train.h5"));
  EXPECT_EQ(attributes.at("clip_quantile"), attributes_of(dir.file("train.h5")).at("clip_quantile"));
  EXPECT_EQ(attributes.at("levels_to_other"), "3") << "the 3 channels merged in training, merged again";
  EXPECT_EQ(attributes.at("levels_dropped"), "0");
  EXPECT_EQ(attributes.count("warnings"), 0u) << attributes.at("warnings");
}

TEST(PrepScalerFrom, TableOwnRowsAndReorderedColumns) {
  PrepDir dir;
  dir.write("train.csv",
            "id,spend,visits,age\n1,10,1,30\n2,200,4,41\n3,35,2,25\n4,5000,9,60\n5,80,3,33\n6,0,1,52\n");
  auto run = prep("table " + dir.file("train.csv") + " --log-columns spend --clip-quantile 0.9 --scale robust -o " +
                      dir.file("train.h5"),
                  dir);
  ASSERT_EQ(run.status, 0) << run.output;
  run = prep("table " + dir.file("train.csv") + " --scaler-from " + dir.file("train.h5") + " -o " + dir.file("again.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features train = read_features(dir.file("train.h5"));
  expect_same_file_contents(train, read_features(dir.file("again.h5")));

  // New records: other column order, a column the training lacks, a value beyond the
  // training's clip bounds.
  dir.write("new.csv", "age,note,id,visits,spend\n45,x,7,2,120\n29,y,8,50,99999\n");
  run = prep("table " + dir.file("new.csv") + " --scaler-from " + dir.file("train.h5") + " -o " + dir.file("new.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features f = read_features(dir.file("new.h5"));
  EXPECT_EQ(f.feature_names, train.feature_names);
  EXPECT_EQ(f.ids.numeric, (std::vector<std::int64_t>{7, 8}));
  const Scaler& s = train.scaler;
  EXPECT_EQ(f.x(0, 2), scaled(s, 2, 45.0));  // age: identity, inside the bounds
  EXPECT_EQ(f.x(0, 0), scaled(s, 0, std::log1p(120.0)));  // spend: log1p
  EXPECT_EQ(f.x(1, 0), scaled(s, 0, s.clip_high[0])) << "clamped to the training's bound";
  EXPECT_EQ(f.x(1, 1), scaled(s, 1, s.clip_high[1]));
}

// ---- levels absent from new data, and levels the training has not seen ---------------------------

const std::string kTrainGifts =
    "donor_id,gift_date,amount,channel\n"
    "1,2023-01-10,50,mail\n1,2023-06-10,60,mail\n2,2023-03-01,20,online\n3,2023-05-05,100,event\n"
    "4,2022-07-01,30,online\n4,2023-07-01,30,mail\n5,2023-11-11,15,event\n6,2021-02-02,500,mail\n";
// No online gift; donor 10 gives once by mail and once by sms, a channel training never saw.
const std::string kNewGifts =
    "donor_id,gift_date,amount,channel\n"
    "10,2023-02-01,40,mail\n10,2023-08-01,40,sms\n11,2023-09-09,25,event\n12,2023-10-10,80,mail\n";

TEST(PrepScalerFrom, MissingChannelIsAZeroColumnInPlace) {
  PrepDir dir;
  dir.write("train.csv", kTrainGifts);
  dir.write("new.csv", kNewGifts);
  auto run = prep("rfm " + dir.file("train.csv") + " --as-of 2024-01-01 -o " + dir.file("train.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  run = prep("rfm " + dir.file("new.csv") + " --as-of 2024-01-01 --scaler-from " + dir.file("train.h5") + " -o " +
                 dir.file("new.h5"),
             dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features train = read_features(dir.file("train.h5")), f = read_features(dir.file("new.h5"));
  ASSERT_EQ(f.feature_names, train.feature_names) << "same columns, same order";
  const std::int64_t online = column(f, "channel_share_online"), mail = column(f, "channel_share_mail");
  EXPECT_EQ(online, column(train, "channel_share_online"));
  for (std::int64_t i = 0; i < f.x.rows(); ++i) EXPECT_EQ(f.x(i, online), scaled(train.scaler, online, 0.0));
  EXPECT_EQ(f.x(row_of(f, 10), mail), scaled(train.scaler, mail, 0.5));
  EXPECT_EQ(f.x(row_of(f, 12), mail), scaled(train.scaler, mail, 1.0));
  const auto attributes = attributes_of(dir.file("new.h5"));
  EXPECT_EQ(attributes.at("zero_columns"), "channel_share_online");
  EXPECT_EQ(attributes.at("levels_dropped"), "1") << "sms: the training has no _other column";
  EXPECT_EQ(attributes.at("rows_with_dropped_levels"), "1");
  EXPECT_EQ(attributes.count("warnings"), 0u) << "no small-data warning when not clustering";
  EXPECT_NE(run.output.find("unseen levels dropped"), std::string::npos) << run.output;
}

TEST(PrepScalerFrom, UnseenChannelCountsAsTheTrainingsOther) {
  PrepDir dir;
  dir.write("train.csv", kTrainGifts);
  dir.write("new.csv", kNewGifts);
  // Two channels kept by gift count (mail 4; event and online 2, tied, event first by name).
  auto run = prep("rfm " + dir.file("train.csv") + " --as-of 2024-01-01 --max-levels 2 -o " + dir.file("train.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  run = prep("rfm " + dir.file("new.csv") + " --as-of 2024-01-01 --scaler-from " + dir.file("train.h5") + " -o " +
                 dir.file("new.h5"),
             dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const Features train = read_features(dir.file("train.h5")), f = read_features(dir.file("new.h5"));
  ASSERT_EQ(f.feature_names, train.feature_names);
  const std::int64_t other = column(f, "channel_share_other");
  EXPECT_EQ(f.x(row_of(f, 10), other), scaled(train.scaler, other, 0.5)) << "sms counted as other";
  EXPECT_EQ(f.x(row_of(f, 11), other), scaled(train.scaler, other, 0.0));
  EXPECT_EQ(attributes_of(dir.file("new.h5")).at("levels_to_other"), "1");
}

TEST(PrepScalerFrom, AlignByHand) {
  TrainingScaling t;
  t.path = "train.h5";
  t.names = {"recency_days", "channel_share_a", "channel_share_b", "channel_share_other"};
  RawFeatures f;
  f.names = {"recency_days", "channel_share_b", "channel_share_c", "opens_12m"};
  f.kinds = {FeatureKind::days, FeatureKind::fraction, FeatureKind::fraction, FeatureKind::count};
  f.may_be_negative.assign(4, false);
  f.groups = {"", "channel_share_", "channel_share_", ""};
  f.values = Matrix<double>(2, 4, std::vector<double>{5, 0.25, 0.75, 3, 9, 1.0, 0.0, 0});
  f.ids.numeric = {1, 2};
  const AlignSummary a = align_to_training(f, t, "new.csv");
  EXPECT_EQ(f.names, t.names);
  EXPECT_EQ(f.values.values(), (std::vector<double>{5, 0, 0.25, 0.75, 9, 0, 1.0, 0.0}));
  EXPECT_EQ(a.zero_columns, std::vector<std::string>{"channel_share_a"});
  EXPECT_EQ(a.dropped_columns, std::vector<std::string>{"opens_12m"});
  EXPECT_EQ(a.levels_to_other, 1);
  EXPECT_EQ(a.levels_dropped, 0);
  EXPECT_EQ(f.ids.numeric, (std::vector<std::int64_t>{1, 2}));
}

// ---- what cannot be reconciled ---------------------------------------------------------------

TEST(PrepScalerFrom, InputsThatCannotMakeATrainingColumnAreErrors) {
  PrepDir dir;
  SynthDonorsParams sp;
  sp.n_donors = 200;
  write_synth_donors(dir.file("gifts.csv"), dir.file("events.csv"), "", sp);
  auto run = prep("rfm " + dir.file("gifts.csv") + " --events " + dir.file("events.csv") + " --as-of 2024-01-01 -o " +
                      dir.file("train.h5"),
                  dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const std::string train = dir.file("train.h5");
  struct Case {
    std::string args, message;
  };
  dir.write("nochannel.csv", "donor_id,gift_date,amount,campaign\n1,2023-01-01,5,x\n");
  dir.write("table.csv", "id,recency_days\n1,3\n");
  const Case cases[] = {
      {"rfm " + dir.file("gifts.csv") + " --scaler-from " + train,
       "has feature 'opens_12m', which cannot be made from the new data; pass --events EVENTS.csv"},
      {"rfm " + dir.file("nochannel.csv") + " --as-of 2024-01-01 --events " + dir.file("events.csv") + " --scaler-from " + train,
       "needs a channel column"},
      {"table " + dir.file("table.csv") + " --scaler-from " + train,
       "no column 'frequency_gifts', which the training file " + train + " has"},
      {"rfm " + dir.file("gifts.csv") + " --scaler-from " + train + " --scale none", "excludes"},
      {"rfm " + dir.file("gifts.csv") + " --scaler-from " + train + " --max-levels 3", "excludes"},
      {"rfm " + dir.file("gifts.csv") + " --scaler-from " + dir.file("absent.h5"), "absent.h5"},
  };
  for (const auto& c : cases) {
    run = prep(c.args + " -o " + dir.file("out.h5"), dir);
    EXPECT_EQ(run.status, 2) << c.args << "\n" << run.output;
    EXPECT_NE(run.output.find(c.message), std::string::npos) << "expected: " << c.message << "\ngot: " << run.output;
    EXPECT_FALSE(dir.entries().count("out.h5")) << c.args;
  }
}

TEST(PrepScalerFrom, TrainingFileWithoutUsableScaler) {
  PrepDir dir;
  const Matrix<float> x(3, 2, std::vector<float>{1, 2, 3, 4, 5, 6});
  write_features(dir.file("bare.h5"), x.view(), {"a", "b"});
  EXPECT_THROW(
      {
        try {
          read_training_scaling(dir.file("bare.h5"));
        } catch (const InputError& e) {
          EXPECT_NE(std::string(e.what()).find("has no /scaler"), std::string::npos) << e.what();
          throw;
        }
      },
      InputError);
  // Winsorized, by the attributes, but without the bounds (an older segforge-prep).
  write_features(dir.file("old.h5"), x.view(), {"a", "b"}, {}, Scaler{{0, 0}, {1, 1}, {"identity", "log1p"}},
                 {{"clip_quantile", "0.990000"}});
  EXPECT_THROW(
      {
        try {
          read_training_scaling(dir.file("old.h5"));
        } catch (const InputError& e) {
          EXPECT_NE(std::string(e.what()).find("older segforge-prep"), std::string::npos) << e.what();
          throw;
        }
      },
      InputError);
  write_features(dir.file("zero.h5"), x.view(), {"a", "b"}, {}, Scaler{{0, 0}, {1, 0}, {"identity", "identity"}});
  EXPECT_THROW(read_training_scaling(dir.file("zero.h5")), InputError);
  write_features(dir.file("ok.h5"), x.view(), {"a", "b"}, {}, Scaler{{0, 0}, {1, 2}, {"identity", "log1p"}},
                 {{"clip_quantile", "none"}});
  const TrainingScaling t = read_training_scaling(dir.file("ok.h5"));
  EXPECT_EQ(t.names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.scaler.scale, (std::vector<double>{1, 2}));
}

// ---- predict on new donors ---------------------------------------------------------------------

TEST(PrepScalerFrom, PredictOnNewDonorsEndToEnd) {
  PrepDir dir;
  SynthDonorsParams sp;
  sp.n_donors = 3000;
  sp.seed = 3;
  write_synth_donors(dir.file("gifts.csv"), dir.file("events.csv"), "", sp);
  sp.n_donors = 600;
  sp.seed = 8;
  write_synth_donors(dir.file("new_gifts.csv"), dir.file("new_events.csv"), dir.file("new_truth.csv"), sp);
  const std::string train = dir.file("train.h5"), model = dir.file("model.h5");
  auto run = prep("rfm " + dir.file("gifts.csv") + " --events " + dir.file("events.csv") + " --as-of 2024-01-01 -o " + train, dir);
  ASSERT_EQ(run.status, 0) << run.output;
  run = segforge::test::run_binary(SEGFORGE_BINARY, "fit " + train + " -k 5 --n-init 5 --seed 1 --device cpu -o " + model, dir);
  ASSERT_EQ(run.status, 0) << run.output;

  const std::string new_args =
      "rfm " + dir.file("new_gifts.csv") + " --events " + dir.file("new_events.csv") + " --as-of 2024-01-01";
  run = prep(new_args + " --scaler-from " + train + " -o " + dir.file("new.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  run = segforge::test::run_binary(
      SEGFORGE_BINARY, "predict " + model + " " + dir.file("new.h5") + " --device cpu -o " + dir.file("new_labels.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(run.output.find("scaling differs"), std::string::npos) << run.output;

  // The new donors land in the segments they were drawn from.
  const std::vector<std::int32_t> found = read_labels(dir.file("new_labels.h5"));
  const Features f = read_features(dir.file("new.h5"));
  std::map<std::string, std::int32_t> code;
  std::map<std::int64_t, std::int32_t> truth;
  for (const auto& row : segforge::test::read_simple_csv(dir.file("new_truth.csv")).rows)
    truth[std::stoll(row[0])] = code.emplace(row[1], static_cast<std::int32_t>(code.size())).first->second;
  std::vector<std::int32_t> expected;
  for (auto id : f.ids.numeric) expected.push_back(truth.at(id));
  ASSERT_EQ(found.size(), expected.size());
  EXPECT_GT(segforge::test::adjusted_rand_index(found, expected), 0.9);

  // Prepared on its own, the same data is scaled differently: refused (issue 14.8: 18% of the
  // donors got another segment), unless --allow-other-scaling says it is deliberate.
  run = prep(new_args + " -o " + dir.file("alone.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  run = segforge::test::run_binary(
      SEGFORGE_BINARY, "predict " + model + " " + dir.file("alone.h5") + " --device cpu -o " + dir.file("alone.csv"), dir);
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_NE(run.output.find(dir.file("alone.h5") + ":/scaler: scaled otherwise than the data of the model " + model),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("prepare the file with `segforge-prep ... --scaler-from TRAINING_FEATURES.h5`, or pass "
                            "--allow-other-scaling"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 1) << "one line: " << run.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("alone.csv")));
  run = segforge::test::run_binary(SEGFORGE_BINARY,
                                   "predict " + model + " " + dir.file("alone.h5") +
                                       " --allow-other-scaling --device cpu -o " + dir.file("alone.csv"),
                                   dir);
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("scaled otherwise than the model's data"), std::string::npos) << run.output;
  EXPECT_TRUE(std::filesystem::exists(dir.file("alone.csv")));
}

}  // namespace
