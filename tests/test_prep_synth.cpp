// segforge-prep synth: reproducible files, donors whose features show the segment they were
// drawn from, the demo chain synth donors -> rfm -> segforge fit finding those segments, and
// blobs whose /centers and /labels, stored with the features, are the truth.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "segforge/io.hpp"
#include "segforge/prep.hpp"
#include "test_prep_support.hpp"
#include "test_support.hpp"

using namespace segforge;
using namespace segforge::prep;
using segforge::test::PrepDir;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Synth {
  std::string gifts, events, truth;
  SynthDonorsSummary summary;
};

Synth make_donors(const PrepDir& dir, std::int64_t n, std::uint64_t seed, const std::string& tag = "") {
  SynthDonorsParams p;
  p.n_donors = n;
  p.seed = seed;
  Synth s{dir.file("gifts" + tag + ".csv"), dir.file("events" + tag + ".csv"), dir.file("truth" + tag + ".csv"), {}};
  s.summary = write_synth_donors(s.gifts, s.events, s.truth, p);
  return s;
}

TEST(PrepSynth, DonorsAreReproducible) {
  PrepDir dir;
  const Synth a = make_donors(dir, 300, 5, "a"), b = make_donors(dir, 300, 5, "b"), c = make_donors(dir, 300, 6, "c");
  EXPECT_EQ(slurp(a.gifts), slurp(b.gifts));
  EXPECT_EQ(slurp(a.events), slurp(b.events));
  EXPECT_EQ(slurp(a.truth), slurp(b.truth));
  EXPECT_NE(slurp(a.gifts), slurp(c.gifts));
  // The events file does not change the gifts.
  SynthDonorsParams p;
  p.n_donors = 300;
  p.seed = 5;
  write_synth_donors(dir.file("alone.csv"), "", "", p);
  EXPECT_EQ(slurp(dir.file("alone.csv")), slurp(a.gifts));
  EXPECT_EQ(a.summary.donors, 300);
  std::int64_t total = 0;
  for (auto s : a.summary.segment_sizes) total += s;
  EXPECT_EQ(total, 300);
  EXPECT_FALSE(dir.entries().count(".gifts.csv.tmp")) << "no temporary file left";
}

TEST(PrepSynth, FeaturesShowTheSegments) {
  PrepDir dir;
  const Synth s = make_donors(dir, 2000, 11);
  RfmParams p;
  p.gifts_path = s.gifts;
  p.events_path = s.events;
  p.as_of = SynthDonorsParams{}.end;
  const RfmResult r = compute_rfm(p);
  EXPECT_EQ(r.summary.gifts.bad_rows_skipped, 0);
  EXPECT_EQ(r.summary.gifts.unparseable_date_rows, 0);
  EXPECT_EQ(r.summary.gifts.after_as_of_rows, 0);
  EXPECT_EQ(r.summary.n_samples, 2000) << "every synthetic donor has a gift";
  EXPECT_GT(r.summary.refund_transactions, 0);
  EXPECT_TRUE(r.summary.warnings.empty()) << r.summary.warnings.front();

  std::map<std::int64_t, std::string> truth;
  for (const auto& row : segforge::test::read_simple_csv(s.truth).rows) truth[std::stoll(row[0])] = row[1];
  const auto& f = r.features;
  auto col = [&](const std::string& name) {
    return static_cast<std::int64_t>(std::find(f.names.begin(), f.names.end(), name) - f.names.begin());
  };
  for (std::int64_t i = 0; i < f.values.rows(); ++i) {
    const std::string& segment = truth.at(f.ids.numeric[static_cast<std::size_t>(i)]);
    const double recency = f.values(i, col("recency_days")), frequency = f.values(i, col("frequency_gifts"));
    const double largest = f.values(i, col("largest_gift")), tenure = f.values(i, col("tenure_days"));
    if (segment == "loyal_monthly") {
      EXPECT_LE(recency, 62);  // a monthly gift within the last two months
      EXPECT_GE(frequency, 20);
      EXPECT_EQ(f.values(i, col("channel_share_direct_debit")), 1.0);
    } else if (segment == "lapsed_major") {
      EXPECT_GE(recency, 730);
      EXPECT_GE(largest, 500);
    } else if (segment == "event_one_off") {
      EXPECT_EQ(frequency, 1);
      EXPECT_EQ(f.values(i, col("channel_share_event")), 1.0);
    } else if (segment == "new_small") {
      EXPECT_LE(tenure, 180);
      EXPECT_LE(largest, 30);
    } else {
      EXPECT_EQ(segment, "mid_annual");
      EXPECT_EQ(f.values(i, col("channel_share_mail")), 1.0);
    }
  }
}

TEST(PrepSynth, DemoChainFindsTheSegments) {
  PrepDir dir;
  const Synth s = make_donors(dir, 3000, 3);
  const std::string features = dir.file("features.h5"), model = dir.file("model.h5"), labels = dir.file("labels.h5");
  auto run = segforge::test::run_prep("rfm " + s.gifts + " --events " + s.events + " --as-of 2024-01-01 -o " + features, dir);
  ASSERT_EQ(run.status, 0) << run.output;
  run = segforge::test::run_binary(SEGFORGE_BINARY,
                                   "fit " + features + " -k 5 --n-init 5 --seed 1 --device cpu -o " + model + " --labels " + labels, dir);
  ASSERT_EQ(run.status, 0) << run.output;
  const std::vector<std::int32_t> found = read_labels(labels);
  const Features f = read_features(features);
  std::map<std::string, std::int32_t> code;
  std::map<std::int64_t, std::int32_t> truth;
  for (const auto& row : segforge::test::read_simple_csv(s.truth).rows)
    truth[std::stoll(row[0])] = code.emplace(row[1], static_cast<std::int32_t>(code.size())).first->second;
  std::vector<std::int32_t> expected;
  for (auto id : f.ids.numeric) expected.push_back(truth.at(id));
  EXPECT_GT(segforge::test::adjusted_rand_index(found, expected), 0.9);
}

TEST(PrepSynth, BlobsStoreTheirTruth) {
  PrepDir dir;
  SynthBlobsParams p;
  p.n_samples = 500;
  p.n_features = 3;
  p.n_clusters = 4;
  p.seed = 9;
  write_synth_blobs(dir.file("b.h5"), p);
  EXPECT_EQ(dir.entries(), std::set<std::string>{"b.h5"}) << "the truth is inside the features file";
  const Features f = read_features(dir.file("b.h5"));
  const Matrix<float> centers = read_extra_matrix(dir.file("b.h5"), "/centers");
  const std::vector<std::int32_t> labels = read_extra_int32s(dir.file("b.h5"), "/labels");
  ASSERT_EQ(f.x.rows(), 500);
  ASSERT_EQ(f.x.cols(), 3);
  ASSERT_EQ(centers.rows(), 4);
  ASSERT_EQ(centers.cols(), 3);
  ASSERT_EQ(labels.size(), 500u);
  EXPECT_EQ(read_labels(dir.file("b.h5")), labels) << "usable as segforge score --labels";
  std::vector<std::int64_t> sizes(4, 0);
  std::vector<double> sum(12, 0.0);
  for (std::int64_t i = 0; i < 500; ++i) {
    const auto c = labels[static_cast<std::size_t>(i)];
    ASSERT_GE(c, 0);
    ASSERT_LT(c, 4);
    ++sizes[static_cast<std::size_t>(c)];
    for (int j = 0; j < 3; ++j) sum[static_cast<std::size_t>(c * 3 + j)] += f.x(i, j);
  }
  for (auto n : sizes) EXPECT_GT(n, 0) << "every blob has rows";
  // Each blob's mean is within a few standard errors of its stored centre.
  for (int c = 0; c < 4; ++c)
    for (int j = 0; j < 3; ++j)
      EXPECT_NEAR(sum[static_cast<std::size_t>(c * 3 + j)] / static_cast<double>(sizes[static_cast<std::size_t>(c)]),
                  centers(c, j), 5.0 / std::sqrt(static_cast<double>(sizes[static_cast<std::size_t>(c)])));
  // Same seed, same file contents.
  write_synth_blobs(dir.file("c.h5"), p);
  EXPECT_EQ(read_features(dir.file("c.h5")).x.values(), f.x.values());
  EXPECT_EQ(read_extra_int32s(dir.file("c.h5"), "labels"), labels);
  // On request, the true centres also as a model file (segforge fit --init).
  write_synth_blobs(dir.file("d.h5"), p, dir.file("d.centers.h5"));
  const Model truth = read_model(dir.file("d.centers.h5"));
  EXPECT_EQ(truth.centroids.values(), centers.values());
  EXPECT_EQ(truth.segment_sizes, sizes);
  // The command line writes one file unless --centers is given.
  auto run = segforge::test::run_prep("synth blobs -n 100 -d 2 -k 3 -o " + dir.file("cli.h5"), dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(read_extra_matrix(dir.file("cli.h5"), "centers").rows(), 3);
  EXPECT_FALSE(dir.entries().count("cli.centers.h5"));
  EXPECT_FALSE(dir.entries().count("cli.labels.h5"));
  run = segforge::test::run_prep("synth blobs -n 100 -d 2 -k 3 -o " + dir.file("cli2.h5") + " --centers " +
                                     dir.file("cli2.truth.h5"),
                                 dir);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(read_model(dir.file("cli2.truth.h5")).centroids.values(),
            read_extra_matrix(dir.file("cli2.h5"), "centers").values());
}

}  // namespace
