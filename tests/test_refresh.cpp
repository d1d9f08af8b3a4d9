// segforge refresh: the Hungarian assignment against brute force, MONIC transitions on
// hand-made overlaps, and the command on synthetic truth (segforge-prep synth blobs, then a
// second quarter drawn around the same true centres): no change keeps every index and name,
// a split blob is reported as split, a new blob as emerged. Also the names round trip, the
// data-sufficiency guards and bad input (exit 2, one line, nothing written).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include <unistd.h>

#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/refresh.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace segforge;
using nlohmann::json;

namespace {

// ---- Hungarian ---------------------------------------------------------------------------------

/// The minimum total cost of matching min(r, c) rows to distinct columns, by trying every
/// permutation (the independent reference).
double brute_force_minimum(const std::vector<double>& cost, int r, int c) {
  double best = std::numeric_limits<double>::infinity();
  if (r <= c) {
    std::vector<int> cols(c);
    std::iota(cols.begin(), cols.end(), 0);
    do {
      double s = 0;
      for (int i = 0; i < r; ++i) s += cost[i * c + cols[i]];
      best = std::min(best, s);
    } while (std::next_permutation(cols.begin(), cols.end()));
  } else {
    std::vector<int> rows(r);
    std::iota(rows.begin(), rows.end(), 0);
    do {
      double s = 0;
      for (int j = 0; j < c; ++j) s += cost[rows[j] * c + j];
      best = std::min(best, s);
    } while (std::next_permutation(rows.begin(), rows.end()));
  }
  return best;
}

TEST(Hungarian, MatchesBruteForceOnRandomMatrices) {
  std::mt19937 rng(2024);
  std::uniform_real_distribution<double> u(0.0, 100.0);
  std::uniform_int_distribution<int> small(0, 3);
  for (int r = 1; r <= 7; ++r)
    for (int c = 1; c <= 7; ++c)
      for (int trial = 0; trial < 6; ++trial) {
        std::vector<double> cost(static_cast<std::size_t>(r * c));
        // Half the trials with many ties (small integers), where a wrong pivot shows.
        for (auto& v : cost) v = trial % 2 == 0 ? u(rng) : static_cast<double>(small(rng));
        const std::vector<int> assign = hungarian_minimise(cost, r, c);
        ASSERT_EQ(static_cast<int>(assign.size()), r);
        std::vector<char> used(c, 0);
        double total = 0;
        int matched = 0;
        for (int i = 0; i < r; ++i) {
          if (assign[i] < 0) continue;
          ASSERT_LT(assign[i], c);
          ASSERT_FALSE(used[assign[i]]) << "column used twice";
          used[assign[i]] = 1;
          total += cost[i * c + assign[i]];
          ++matched;
        }
        EXPECT_EQ(matched, std::min(r, c));
        EXPECT_NEAR(total, brute_force_minimum(cost, r, c), 1e-9) << r << "x" << c << " trial " << trial;
      }
}

TEST(Hungarian, HandExample) {
  // rows 0,1,2 to columns: the diagonal costs 1+1+1 beats any other assignment.
  const std::vector<double> cost = {1, 5, 9, 4, 1, 8, 7, 6, 1};
  EXPECT_EQ(hungarian_minimise(cost, 3, 3), (std::vector<int>{0, 1, 2}));
  // 3 rows, 2 columns: row 2 (costs 7, 6) is the one left out.
  const std::vector<double> rect = {1, 5, 4, 1, 7, 6};
  EXPECT_EQ(hungarian_minimise(rect, 3, 2), (std::vector<int>{0, 1, -1}));
}

// ---- overlaps and transitions ------------------------------------------------------------------

TEST(Transitions, OverlapCountsByHand) {
  const std::vector<std::int32_t> a = {0, 0, 1, 1, 1, -1};
  const std::vector<std::int32_t> b = {1, 1, 0, 1, 0, 0};
  const Matrix<std::int64_t> m = overlap_counts(a, 2, b, 2);
  EXPECT_EQ(m(0, 0), 0);
  EXPECT_EQ(m(0, 1), 2);
  EXPECT_EQ(m(1, 0), 2);
  EXPECT_EQ(m(1, 1), 1);  // the row labelled -1 counts nowhere
}

/// A cost that prefers the diagonal (old i with new i).
std::vector<double> diagonal_cost(int ko, int kn) {
  std::vector<double> c(static_cast<std::size_t>(ko * kn));
  for (int i = 0; i < ko; ++i)
    for (int j = 0; j < kn; ++j) c[i * kn + j] = std::abs(i - j);
  return c;
}

TEST(Transitions, SurviveSplitEmerge) {
  // Old 0 continues as new 2 (the fit's order differs); old 1 splits into new 0 and new 1;
  // new 3 is made of rows outside the old segments (not counted): emerged.
  Matrix<std::int64_t> o(2, 4, 0);
  o(0, 2) = 100;
  o(1, 0) = 60;
  o(1, 1) = 40;
  std::vector<double> cost = {9, 9, 0, 9,   // old 0 is nearest new 2
                              1, 2, 9, 9};  // old 1 nearest new 0
  const SegmentMatch m = match_segments(cost, o);
  // Placement: new 2 takes index 0, new 0 takes index 1; the rest fill 2, 3 in fit order.
  EXPECT_EQ(m.order, (std::vector<int>{2, 0, 1, 3}));
  EXPECT_EQ(m.parent, (std::vector<int>{0, 1, -1, -1}));
  EXPECT_EQ(m.child, (std::vector<int>{0, 1}));
  EXPECT_EQ(m.old_transition[0], Transition::survived);
  EXPECT_EQ(m.old_transition[1], Transition::split);
  EXPECT_EQ(m.old_to[1], (std::vector<int>{1, 2}));
  EXPECT_EQ(m.new_transition[0], Transition::continued);
  EXPECT_EQ(m.new_transition[1], Transition::split_from);
  EXPECT_EQ(m.new_transition[2], Transition::split_from);
  EXPECT_EQ(m.new_transition[3], Transition::emerged);
  EXPECT_EQ(m.overlap(1, 2), 40);  // columns in refreshed order
}

TEST(Transitions, AbsorbAndDissolve) {
  // Old 0 and 1 both go into new 0 (absorbed); old 2 has no members now (dissolved).
  Matrix<std::int64_t> o(3, 2, 0);
  o(0, 0) = 80;
  o(0, 1) = 20;
  o(1, 0) = 90;
  o(1, 1) = 10;
  const SegmentMatch m = match_segments(diagonal_cost(3, 2), o);
  EXPECT_EQ(m.old_transition[0], Transition::absorbed);
  EXPECT_EQ(m.old_transition[1], Transition::absorbed);
  EXPECT_EQ(m.old_to[1], (std::vector<int>{0}));
  EXPECT_EQ(m.old_transition[2], Transition::dissolved);
  EXPECT_EQ(m.new_transition[0], Transition::merged);
  EXPECT_EQ(m.new_from[0], (std::vector<int>{0, 1}));
  // Old 0 keeps index 0 (matched); old 1's Hungarian partner new 1 holds 10 of its 100 rows
  // and is 1/3 its members: not a match, so new 1 emerged.
  EXPECT_EQ(m.parent, (std::vector<int>{0, -1}));
  EXPECT_EQ(m.new_transition[1], Transition::emerged);
}

TEST(Transitions, AbsorbedWithARemnantThatKeepsTheName) {
  // Old 0 (100 rows): 60 go into new 1 with all 50 of old 1; 40 stay as new 0 (only old 0's).
  Matrix<std::int64_t> o(2, 2, 0);
  o(0, 0) = 40;
  o(0, 1) = 60;
  o(1, 1) = 50;
  const SegmentMatch m = match_segments(diagonal_cost(2, 2), o);
  EXPECT_EQ(m.parent, (std::vector<int>{0, 1}));  // both pairs kept: names carry over
  EXPECT_EQ(m.old_transition[0], Transition::absorbed);
  EXPECT_EQ(m.old_to[0], (std::vector<int>{0, 1}));
  EXPECT_EQ(m.old_transition[1], Transition::absorbed);
  EXPECT_EQ(m.new_transition[0], Transition::split_from);  // the remnant of old 0
  EXPECT_EQ(m.new_transition[1], Transition::merged);
  EXPECT_EQ(m.new_from[1], (std::vector<int>{0, 1}));
}

TEST(Transitions, FewerSegmentsKeepOldIndicesWhereTheyExist) {
  // K 3 -> 2: old 2 continues as new 0 but index 2 no longer exists; old 0 as new 1 keeps 0.
  Matrix<std::int64_t> o(3, 2, 0);
  o(0, 1) = 100;
  o(2, 0) = 100;
  const std::vector<double> cost = {9, 0, 9, 9, 0, 9};
  const SegmentMatch m = match_segments(cost, o);
  EXPECT_EQ(m.order, (std::vector<int>{1, 0}));  // new 1 at index 0; new 0 takes the free index 1
  EXPECT_EQ(m.parent, (std::vector<int>{0, 2}));
  EXPECT_EQ(m.child, (std::vector<int>{0, -1, 1}));
  EXPECT_EQ(m.old_transition[1], Transition::dissolved);
}

TEST(Sufficiency, WarningsByHand) {
  SufficiencyInput in;
  in.n_samples = 499;
  in.history_days = 729;
  in.sizes = {400, 99};
  in.names = {"A", "B"};
  in.min_segment_size = 100;
  const auto w = sufficiency_warnings(in);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_NE(w[0].find("only 499 active"), std::string::npos);
  EXPECT_NE(w[1].find("729 days of history"), std::string::npos);
  EXPECT_NE(w[2].find("segment 1 (B) has 99 rows"), std::string::npos);
  in.n_samples = 500;
  in.history_days = 730;
  in.sizes = {400, 100};
  EXPECT_TRUE(sufficiency_warnings(in).empty());
  in.history_days = -1;  // unknown: not checked
  EXPECT_TRUE(sufficiency_warnings(in).empty());
  EXPECT_EQ(history_days_attribute({{"history_days", "812"}}), 812);
  EXPECT_EQ(history_days_attribute({{"history_days", "8x"}}), -1);
  EXPECT_EQ(history_days_attribute({}), -1);
}

TEST(Lineage, ModelFieldsRoundTripAndBadParentIsRefused) {
  const auto folder = fs::temp_directory_path() / ("segforge_lineage_" + std::to_string(::getpid()));
  fs::create_directories(folder);
  Model m;
  m.centroids = Matrix<float>(2, 1, std::vector<float>{0.0f, 1.0f});
  m.segment_parent = {1, -1};
  m.segment_transition = {"continued", "emerged"};
  m.attributes = {{"parent_checksum", "0123456789abcdef"}};
  const std::string good = (folder / "good.h5").string(), bad = (folder / "bad.h5").string();
  write_model(good, m);
  const Model back = read_model(good);
  EXPECT_EQ(back.segment_parent, m.segment_parent);
  EXPECT_EQ(back.segment_transition, m.segment_transition);
  EXPECT_EQ(back.attributes.at("parent_checksum"), "0123456789abcdef");
  EXPECT_EQ(back.checksum.size(), 16u);
  m.segment_parent = {1, -2};
  write_model(bad, m);
  try {
    read_model(bad);
    ADD_FAILURE() << "a parent index of -2 was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.h5:/segments/parent row 1: -2 is not a segment index"), std::string::npos)
        << e.what();
  }
  fs::remove_all(folder);
}

// ---- the command ---------------------------------------------------------------------------

struct Outcome {
  int status = -1;
  std::string output;
};

/// Lines of output that are messages, without the CPU-fallback note.
std::vector<std::string> message_lines(const std::string& output) {
  std::vector<std::string> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.find("no GPU found") == std::string::npos) out.push_back(line);
  return out;
}

class Refresh : public test::TempDirTest {
 protected:
  Outcome run(const std::string& args) const {
    Outcome o;
    o.status = shell(std::string(SEGFORGE_BINARY) + " " + args, &o.output);
    return o;
  }
  Outcome prep(const std::string& args) const {
    Outcome o;
    o.status = shell(std::string(SEGFORGE_PREP_BINARY) + " " + args, &o.output);
    return o;
  }
  json read_json(const std::string& name) const {
    std::ifstream in(path(name));
    return json::parse(in);
  }
  /// The files in the test folder, without the shell's log.
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().filename() != "log.txt") out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  /// Quarter 1: `segforge-prep synth blobs` (true centres in /centers).
  Matrix<float> quarter_one(std::uint64_t seed, std::int64_t n = 2000, int k = 4) {
    const Outcome o = prep("synth blobs -n " + std::to_string(n) + " -d 4 -k " + std::to_string(k) + " --seed " +
                           std::to_string(seed) + " --spread 10 --std 0.5 -o " + path("q1.h5"));
    EXPECT_EQ(o.status, 0) << o.output;
    return read_extra_matrix(path("q1.h5"), "/centers");
  }

  /// Quarter 2: `per_centre` rows around each of `centres` (std 0.5), other draws than q1's.
  void quarter_two(const Matrix<float>& centres, std::int64_t per_centre, std::uint64_t seed) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed));
    std::normal_distribution<float> noise(0.0f, 0.5f);
    const std::int64_t k = centres.rows(), d = centres.cols();
    Matrix<float> x(k * per_centre, d);
    for (std::int64_t i = 0; i < x.rows(); ++i)
      for (std::int64_t j = 0; j < d; ++j) x(i, j) = centres(i % k, j) + noise(rng);
    write_features(path("q2.h5"), x.view(), inspect_features(path("q1.h5")).feature_names);
  }

  /// The old model's segment nearest to `point`.
  static int nearest(const Model& m, const float* point) {
    int best = 0;
    double best_d = std::numeric_limits<double>::infinity();
    for (std::int64_t c = 0; c < m.centroids.rows(); ++c) {
      double s = 0;
      for (std::int64_t j = 0; j < m.centroids.cols(); ++j)
        s += std::pow(static_cast<double>(m.centroids(c, j)) - point[j], 2);
      if (s < best_d) {
        best_d = s;
        best = static_cast<int>(c);
      }
    }
    return best;
  }
};

class RefreshNoChange : public Refresh, public ::testing::WithParamInterface<int> {};

TEST_P(RefreshNoChange, EverySegmentKeepsItsIndexAndName) {
  const int seed = GetParam();
  const Matrix<float> centres = quarter_one(seed);
  quarter_two(centres, 500, 100 + seed);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --seed " + std::to_string(seed) + " -o " + path("m1.h5")).status, 0);
  const Outcome r = run("refresh " + path("m1.h5") + " " + path("q2.h5") + " -o " + path("m2.h5") + " --summary " +
                        path("refresh.json") + " --labels " + path("labels.h5"));
  ASSERT_EQ(r.status, 0) << r.output;
  const Model m1 = read_model(path("m1.h5")), m2 = read_model(path("m2.h5"));
  ASSERT_EQ(m2.centroids.rows(), 4);
  EXPECT_EQ(m2.segment_names, m1.segment_names);
  EXPECT_EQ(m2.segment_descriptions, m1.segment_descriptions);
  EXPECT_EQ(m2.segment_outreach, m1.segment_outreach);
  EXPECT_EQ(m2.segment_parent, (std::vector<std::int32_t>{0, 1, 2, 3}));
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(m2.segment_transition[c], "continued");
    // Same index, same place: each refreshed centre within 0.2 of its old one (the centres
    // are 0.5-sd blobs of ~500 rows: the mean moves by ~0.02 per coordinate).
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(m2.centroids(c, j), m1.centroids(c, j), 0.2);
  }
  const json s = read_json("refresh.json");
  EXPECT_EQ(s["format"], "segforge-refresh");
  EXPECT_EQ(s["changes"], "k 4 -> 4; survived 4");
  for (const auto& e : s["old_segments"]) EXPECT_EQ(e["transition"], "survived");
  // Lineage: the parent's checksum, a date, what changed; the labels agree with the model.
  EXPECT_EQ(m2.attributes.at("parent_checksum"), m1.checksum);
  EXPECT_EQ(m2.attributes.at("parent_checksum").size(), 16u);
  EXPECT_EQ(m2.attributes.at("lineage_depth"), "1");
  EXPECT_EQ(m2.attributes.at("changes"), "k 4 -> 4; survived 4");
  EXPECT_EQ(m2.attributes.at("refreshed_at").size(), 20u);  // 2026-01-02T03:04:05Z
  const std::vector<std::int32_t> labels = read_labels(path("labels.h5"));
  std::vector<std::int64_t> sizes(4, 0);
  for (auto l : labels) ++sizes[l];
  EXPECT_EQ(sizes, m2.segment_sizes);
}
INSTANTIATE_TEST_SUITE_P(Seeds, RefreshNoChange, ::testing::Values(1, 2, 3, 4, 5));

TEST_F(Refresh, LineageChainsOverTwoRefreshes) {
  const Matrix<float> centres = quarter_one(11);
  quarter_two(centres, 500, 12);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --seed 1 -o " + path("m1.h5")).status, 0);
  ASSERT_EQ(run("refresh " + path("m1.h5") + " " + path("q2.h5") + " -o " + path("m2.h5")).status, 0);
  ASSERT_EQ(run("refresh " + path("m2.h5") + " " + path("q2.h5") + " -o " + path("m3.h5")).status, 0);
  const Model m2 = read_model(path("m2.h5")), m3 = read_model(path("m3.h5"));
  EXPECT_EQ(m3.attributes.at("lineage_depth"), "2");
  EXPECT_EQ(m3.attributes.at("parent_checksum"), m2.checksum);
  EXPECT_EQ(m3.attributes.at("parent_refreshed_at"), m2.attributes.at("refreshed_at"));
  EXPECT_EQ(m3.segment_names, m2.segment_names);
}

TEST_F(Refresh, RecheckKReportsWithoutChangingK) {
  const Matrix<float> centres = quarter_one(21);
  quarter_two(centres, 500, 22);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --seed 1 -o " + path("m1.h5")).status, 0);
  const Outcome r = run("refresh " + path("m1.h5") + " " + path("q2.h5") + " -o " + path("m2.h5") +
                        " --recheck-k --summary " + path("r.json"));
  ASSERT_EQ(r.status, 0) << r.output;
  const json s = read_json("r.json");
  ASSERT_TRUE(s["recheck_k"].is_object());
  EXPECT_EQ(s["recheck_k"]["records"].size(), 4u);  // K = 3..6 (6 so that 5 can win)
  EXPECT_EQ(s["k_new"], 4);
  EXPECT_NE(r.output.find("re-check of K (sweep over 3..6): K = 4, the model's"), std::string::npos) << r.output;
}

TEST_F(Refresh, SplitSegmentIsReportedAsSplit) {
  const Matrix<float> centres = quarter_one(7);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --seed 7 -o " + path("m1.h5")).status, 0);
  const Model m1 = read_model(path("m1.h5"));
  // Quarter 2: true centre 0 becomes two, 1.5 either side along x0 (3 apart: 6 sd).
  Matrix<float> q2(5, 4);
  for (int c = 0; c < 4; ++c) std::copy(centres.row(c), centres.row(c) + 4, q2.row(c));
  std::copy(centres.row(0), centres.row(0) + 4, q2.row(4));
  q2(0, 0) -= 1.5f;
  q2(4, 0) += 1.5f;
  quarter_two(q2, 500, 70);
  const int parent = nearest(m1, centres.row(0));
  const Outcome r = run("refresh " + path("m1.h5") + " " + path("q2.h5") + " -k 5 -o " + path("m2.h5") +
                        " --summary " + path("r.json"));
  ASSERT_EQ(r.status, 0) << r.output;
  const json s = read_json("r.json");
  const json& old = s["old_segments"][parent];
  EXPECT_EQ(old["transition"], "split") << s.dump(1);
  EXPECT_EQ(old["to"].size(), 2u);
  const Model m2 = read_model(path("m2.h5"));
  int pieces = 0;
  for (int c = 0; c < 5; ++c) {
    if (m2.segment_transition[c] == "split_from") {
      ++pieces;
      continue;
    }
    // The other old segments continue at their index with their names.
    EXPECT_EQ(m2.segment_transition[c], "continued") << c;
    EXPECT_EQ(m2.segment_parent[c], c);
    EXPECT_EQ(m2.segment_names[c], m1.segment_names[c]);
  }
  EXPECT_EQ(pieces, 2);
  EXPECT_NE(s["changes"].get<std::string>().find("split " + std::to_string(parent) + " -> "), std::string::npos);
}

TEST_F(Refresh, NewSegmentIsReportedAsEmerged) {
  const Matrix<float> centres = quarter_one(9);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --seed 9 -o " + path("m1.h5")).status, 0);
  const Model m1 = read_model(path("m1.h5"));
  // Quarter 2: the same four blobs and a fifth, 15 beyond the others in every coordinate.
  Matrix<float> q2(5, 4);
  for (int c = 0; c < 4; ++c) std::copy(centres.row(c), centres.row(c) + 4, q2.row(c));
  for (int j = 0; j < 4; ++j) {
    float top = centres(0, j);
    for (int c = 1; c < 4; ++c) top = std::max(top, centres(c, j));
    q2(4, j) = top + 15.0f;
  }
  quarter_two(q2, 500, 90);
  const Outcome r = run("refresh " + path("m1.h5") + " " + path("q2.h5") + " -k 5 -o " + path("m2.h5") +
                        " --summary " + path("r.json"));
  ASSERT_EQ(r.status, 0) << r.output;
  const Model m2 = read_model(path("m2.h5"));
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(m2.segment_transition[c], "continued") << c;
    EXPECT_EQ(m2.segment_names[c], m1.segment_names[c]);
  }
  EXPECT_EQ(m2.segment_transition[4], "emerged");
  EXPECT_EQ(m2.segment_parent[4], -1);
  // Its name is new: none of the old ones.
  EXPECT_EQ(std::count(m1.segment_names.begin(), m1.segment_names.end(), m2.segment_names[4]), 0);
  const json s = read_json("r.json");
  EXPECT_EQ(s["segments"][4]["transition"], "emerged");
  EXPECT_NE(s["changes"].get<std::string>().find("emerged 4"), std::string::npos);
  for (const auto& e : s["old_segments"]) EXPECT_EQ(e["transition"], "survived");

  // The re-check finds K = 5 itself: reported, and applied only with --allow-k-change.
  const Outcome told = run("refresh " + path("m1.h5") + " " + path("q2.h5") + " --recheck-k -o " + path("m3.h5") +
                           " --summary " + path("r3.json"));
  ASSERT_EQ(told.status, 0) << told.output;
  EXPECT_NE(told.output.find("K = 5; pass --allow-k-change to refit with it"), std::string::npos) << told.output;
  EXPECT_EQ(read_json("r3.json")["k_new"], 4);
  const Outcome changed = run("refresh " + path("m1.h5") + " " + path("q2.h5") + " --recheck-k --allow-k-change -o " +
                              path("m4.h5") + " --summary " + path("r4.json"));
  ASSERT_EQ(changed.status, 0) << changed.output;
  const json s4 = read_json("r4.json");
  EXPECT_EQ(s4["k_new"], 5);
  EXPECT_EQ(s4["segments"][4]["transition"], "emerged");
}

TEST_F(Refresh, MiniBatchModelContinuesWithItsCounts) {
  const Matrix<float> centres = quarter_one(31);
  quarter_two(centres, 500, 32);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --algorithm minibatch --batch-size 256 --seed 1 -o " + path("m1.h5")).status, 0);
  const Outcome r = run("refresh " + path("m1.h5") + " " + path("q2.h5") + " --batch-size 256 -o " + path("m2.h5"));
  ASSERT_EQ(r.status, 0) << r.output;
  const Model m1 = read_model(path("m1.h5")), m2 = read_model(path("m2.h5"));
  EXPECT_EQ(m2.attributes.at("algorithm"), "minibatch");
  EXPECT_EQ(m2.attributes.at("init"), "continued");
  EXPECT_EQ(m2.segment_names, m1.segment_names);
  ASSERT_EQ(m2.counts.size(), 4u);
  // Continuing adds the new quarter's 2000 rows per pass to the old counts: they only grow.
  for (int c = 0; c < 4; ++c) EXPECT_GT(m2.counts[c], m1.counts[c]) << c;
}

TEST_F(Refresh, OldLabelsMatchByIdsEvenWhenRowsAreReordered) {
  quarter_one(41);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --seed 2 -o " + path("m1.h5") + " --labels " + path("l1.h5")).status, 0);
  // The same customers in reverse order, ids kept: overlap by id, not by row position.
  const Features q1 = read_features(path("q1.h5"));
  Matrix<float> x(q1.x.rows(), q1.x.cols());
  Ids ids;
  for (std::int64_t r = 0; r < x.rows(); ++r) {
    const std::int64_t from = x.rows() - 1 - r;
    std::copy(q1.x.row(from), q1.x.row(from) + x.cols(), x.row(r));
    ids.numeric.push_back(q1.ids.numeric[from]);
  }
  write_features(path("q2.h5"), x.view(), q1.feature_names, ids);
  const Outcome r = run("refresh " + path("m1.h5") + " " + path("q2.h5") + " -o " + path("m2.h5") + " --old-labels " +
                        path("l1.h5") + " --summary " + path("r.json"));
  ASSERT_EQ(r.status, 0) << r.output;
  const json s = read_json("r.json");
  EXPECT_EQ(s["shared_ids"], 2000);
  EXPECT_EQ(s["matching"], "hungarian on member overlap of the ids in --old-labels");
  const Model m1 = read_model(path("m1.h5")), m2 = read_model(path("m2.h5"));
  EXPECT_EQ(m2.segment_names, m1.segment_names);
  // Every old segment's members all in its continuation: the overlap matrix is diagonal.
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < 4; ++c)
      EXPECT_EQ(s["old_segments"][i]["overlap"][c].get<std::int64_t>(), i == c ? m1.segment_sizes[i] : 0);

  // Bad --old-labels: ids of other customers, segments the model lacks, no ids in the data.
  const std::vector<std::int32_t> labels = read_labels(path("l1.h5"));
  std::vector<float> distances(labels.size(), 0.0f);
  Ids others;
  for (std::size_t r = 0; r < labels.size(); ++r) others.numeric.push_back(1000000 + static_cast<std::int64_t>(r));
  write_labels_h5(path("others.h5"), labels, distances, others);
  std::vector<std::int32_t> seven = labels;
  seven[0] = 7;
  write_labels_h5(path("seven.h5"), seven, distances, q1.ids);
  write_features(path("noids.h5"), x.view(), q1.feature_names);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {path("q2.h5") + " --old-labels " + path("others.h5"), "none of its ids is in"},
      {path("q2.h5") + " --old-labels " + path("seven.h5"), "segment 7 but the model"},
      {path("noids.h5") + " --old-labels " + path("l1.h5"), "no /ids to match with --old-labels"},
  };
  const std::vector<std::string> before = files();
  for (const auto& [args, expect] : cases) {
    const Outcome o = run("refresh " + path("m1.h5") + " " + args + " -o " + path("new.h5"));
    EXPECT_EQ(o.status, 2) << args << "\n" << o.output;
    const auto lines = message_lines(o.output);
    ASSERT_EQ(lines.size(), 1u) << o.output;
    EXPECT_NE(lines[0].find(expect), std::string::npos) << lines[0];
  }
  EXPECT_EQ(files(), before);
}

// ---- names round trip ----------------------------------------------------------------------

TEST_F(Refresh, FitNamesAcceptsTheDictionaryFitWrote) {
  quarter_one(3);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --seed 3 -o " + path("m1.h5")).status, 0);
  json dict = read_json("m1.segments.json");
  // Unchanged: the same names, descriptions and outreach come back.
  const Outcome same = run("fit " + path("q1.h5") + " -k 4 --seed 3 -o " + path("m2.h5") + " --names " +
                           path("m1.segments.json"));
  ASSERT_EQ(same.status, 0) << same.output;
  const Model m1 = read_model(path("m1.h5")), m2 = read_model(path("m2.h5"));
  EXPECT_EQ(m2.segment_names, m1.segment_names);
  EXPECT_EQ(m2.segment_outreach, m1.segment_outreach);
  // Edited in a spreadsheet-like way: one name and one outreach changed.
  dict["segments"][2]["name"] = "Gala Regulars";
  dict["segments"][2]["outreach"] = "Invite to the spring gala";
  std::ofstream(path("edited.json")) << dict.dump(2);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --seed 3 -o " + path("m3.h5") + " --names " + path("edited.json")).status, 0);
  const Model m3 = read_model(path("m3.h5"));
  EXPECT_EQ(m3.segment_names[2], "Gala Regulars");
  EXPECT_EQ(m3.segment_outreach[2], "Invite to the spring gala");
  EXPECT_EQ(m3.segment_names[0], m1.segment_names[0]);
  // Another K: one line, exit 2, no model.
  const Outcome k3 = run("fit " + path("q1.h5") + " -k 3 -o " + path("m4.h5") + " --names " + path("m1.segments.json"));
  EXPECT_EQ(k3.status, 2);
  EXPECT_NE(k3.output.find("a dictionary of 4 segments for 3"), std::string::npos) << k3.output;
  EXPECT_FALSE(fs::exists(path("m4.h5")));
}

// ---- guards --------------------------------------------------------------------------------

TEST_F(Refresh, GuardsWarnAndStrictRefuses) {
  // 300 rows and 400 days of history (the attribute segforge-prep rfm writes).
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  Matrix<float> x(300, 2);
  for (int i = 0; i < 300; ++i)
    for (int j = 0; j < 2; ++j) x(i, j) = static_cast<float>((i % 3) * 5) + noise(rng);
  write_features(path("small.h5"), x.view(), {"a", "b"}, {}, {}, {{"history_days", "400"}});
  const Outcome fit = run("fit " + path("small.h5") + " -k 3 --seed 1 -o " + path("m.h5"));
  ASSERT_EQ(fit.status, 0) << fit.output;
  EXPECT_NE(fit.output.find("warning: only 300 active donors or customers"), std::string::npos) << fit.output;
  EXPECT_NE(fit.output.find("warning: only 400 days of history"), std::string::npos) << fit.output;
  const Outcome report = run("report " + path("m.h5") + " --features " + path("small.h5") + " -o " + path("r.html"));
  ASSERT_EQ(report.status, 0) << report.output;
  EXPECT_NE(report.output.find("warning: only 300 active"), std::string::npos);
  std::ifstream html(path("r.html"));
  const std::string page((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
  EXPECT_NE(page.find("Data sufficiency: only 400 days of history"), std::string::npos);
  const Outcome refresh = run("refresh " + path("m.h5") + " " + path("small.h5") + " -o " + path("m2.h5"));
  ASSERT_EQ(refresh.status, 0) << refresh.output;
  EXPECT_NE(refresh.output.find("warning: only 300 active"), std::string::npos);

  const std::vector<std::string> before = files();
  for (const std::string& cmd :
       {"fit " + path("small.h5") + " -k 3 -o " + path("s1.h5") + " --strict",
        "report " + path("m.h5") + " --features " + path("small.h5") + " -o " + path("s.html") + " --strict",
        "refresh " + path("m.h5") + " " + path("small.h5") + " -o " + path("s2.h5") + " --summary " + path("s.json") +
            " --strict"}) {
    const Outcome o = run(cmd);
    EXPECT_EQ(o.status, 2) << cmd << "\n" << o.output;
    const auto lines = message_lines(o.output);
    ASSERT_EQ(lines.size(), 1u) << o.output;
    EXPECT_NE(lines[0].find("small.h5:/features: only 300 active donors or customers"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("(--strict)"), std::string::npos);
  }
  EXPECT_EQ(files(), before);  // nothing written
}

// ---- bad input ----------------------------------------------------------------------------

TEST_F(Refresh, BadInputIsOneLineExitTwoNothingWritten) {
  quarter_one(4, 1000);
  ASSERT_EQ(run("fit " + path("q1.h5") + " -k 4 --seed 1 -o " + path("m1.h5")).status, 0);
  Matrix<float> x3(1000, 3, 1.0f), x4(1000, 4, 1.0f);
  for (int i = 0; i < 1000; ++i) x3(i, i % 3) = x4(i, i % 4) = 5.0f;
  write_features(path("three.h5"), x3.view(), {"x0", "x1", "x2"});
  write_features(path("renamed.h5"), x4.view(), {"x0", "x1", "x2", "recency"});
  // Scaled data under a scaled model, and the same columns scaled on other data.
  Scaler a{{0, 0, 0, 0}, {1, 1, 1, 1}, {"identity", "identity", "identity", "identity"}, {}, {}};
  Scaler b = a;
  b.scale[2] = 2.5;
  const auto names = inspect_features(path("q1.h5")).feature_names;
  write_features(path("scaled_a.h5"), x4.view(), names, {}, a);
  write_features(path("scaled_b.h5"), x4.view(), names, {}, b);
  ASSERT_EQ(run("fit " + path("scaled_a.h5") + " -k 4 --seed 1 -o " + path("ma.h5")).status, 0);
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {"refresh " + path("m1.h5") + " " + path("three.h5"), "three.h5:/features: 3 features, but the model"},
      {"refresh " + path("m1.h5") + " " + path("renamed.h5"), "column 3 is 'recency' but the model"},
      {"refresh " + path("ma.h5") + " " + path("scaled_b.h5"), "scaled otherwise than the data of the model"},
      {"refresh " + path("ma.h5") + " " + path("q1.h5"), "/scaler: absent, but the model"},
      {"refresh " + path("m1.h5") + " " + path("q1.h5") + " --n-init -1", "--n-init -1"},
      {"refresh " + path("m1.h5") + " " + path("q1.h5") + " --reach 0", "--reach"},
      {"refresh " + path("m1.h5") + " " + path("q1.h5") + " -k 5000", "5000"},
      {"refresh " + path("q1.h5") + " " + path("q1.h5"), "q1.h5"},
  };
  const std::vector<std::string> before = files();
  for (const Case& c : cases) {
    const Outcome o = run(c.args + " -o " + path("new.h5") + " --summary " + path("new.json"));
    EXPECT_EQ(o.status, 2) << c.args << "\n" << o.output;
    const auto lines = message_lines(o.output);
    ASSERT_EQ(lines.size(), 1u) << c.args << "\n" << o.output;
    EXPECT_NE(lines[0].find(c.expect), std::string::npos) << lines[0];
  }
  EXPECT_EQ(files(), before);
}

}  // namespace
