// The quarterly loop for real: scripts/cron/refresh_quarterly.sh end to end on synthetic donors
// (segforge-prep synth), twice. Unchanged data: drift says stable and the production model is
// kept byte for byte. A new half-year of gifts: drift says refresh, the refreshed model is
// promoted (the old one archived), survivors keep their names, and the KPIs of the previous
// quarter's segments over the half-year are written.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "segforge/io.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace segforge {
namespace {

std::string bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

class RefreshLoop : public test::TempDirTest {
 protected:
  /// The script with this test's folders; its exit status, its log in *log.
  int quarter(const std::string& inbox, const std::string& as_of, std::string* log) const {
    const fs::path script = test::fixtures_dir() / ".." / ".." / "scripts" / "cron" / "refresh_quarterly.sh";
    return shell("SEGFORGE=" + std::string(SEGFORGE_BINARY) + " SEGFORGE_PREP=" + SEGFORGE_PREP_BINARY +
                     " SEGFORGE_PROD=" + path("prod") + " SEGFORGE_INBOX=" + path(inbox) + " SEGFORGE_RUNS=" +
                     path("runs") + " AS_OF=" + as_of + " bash " + script.string(),
                 log);
  }
};

TEST_F(RefreshLoop, KeepsTheModelOnUnchangedDataAndPromotesARefreshOnChangedData) {
  const std::string prep = SEGFORGE_PREP_BINARY, segforge = SEGFORGE_BINARY;
  fs::create_directories(path("prod"));
  fs::create_directories(path("q1"));
  fs::create_directories(path("q3"));
  std::string out;
  // Production: 3000 donors as of 2024-01-01, K = 5.
  ASSERT_EQ(shell(prep + " synth donors -n 3000 --seed 1 -o " + path("q1/gifts.csv"), &out), 0) << out;
  ASSERT_EQ(shell(prep + " rfm " + path("q1/gifts.csv") + " --as-of 2024-01-01 -o " + path("prod/features.h5"), &out),
            0)
      << out;
  ASSERT_EQ(shell(segforge + " fit " + path("prod/features.h5") + " -k 5 --seed 1 --device cpu -o " +
                      path("prod/model.h5"),
                  &out),
            0)
      << out;
  const std::string model_before = bytes(path("prod/model.h5"));
  const Model old_model = read_model(path("prod/model.h5"));

  // 1. The same export as of the same date: stable, production untouched.
  ASSERT_EQ(quarter("q1", "2024-01-01", &out), 0) << out;
  EXPECT_NE(out.find("drift verdict stable"), std::string::npos) << out;
  EXPECT_NE(out.find("production model kept (stable)"), std::string::npos) << out;
  EXPECT_EQ(read_json(path("runs/2024-01-01/drift.json"))["verdict"], "stable");
  EXPECT_EQ(bytes(path("prod/model.h5")), model_before);
  EXPECT_FALSE(fs::exists(path("prod/archive")));
  EXPECT_FALSE(fs::exists(path("runs/2024-01-01/model.h5")));
  EXPECT_TRUE(fs::exists(path("runs/2024-01-01/segments.csv")));
  EXPECT_EQ(bytes(path("prod/as_of")), "2024-01-01\n");

  // 2. Six more months of gifts (another seed's 2024 rows added to the export), as of 2024-07-01.
  ASSERT_EQ(shell(prep + " synth donors -n 3000 --seed 2 --years 3 --end 2024-07-01 -o " + path("later.csv"), &out), 0)
      << out;
  ASSERT_EQ(shell("((cat " + path("q1/gifts.csv") + "; awk -F, 'NR > 1 && $2 >= \"2024-01-01\"' " + path("later.csv") +
                      ") > " + path("q3/gifts.csv") + ")",
                  &out),
            0)
      << out;
  ASSERT_EQ(quarter("q3", "2024-07-01", &out), 0) << out;
  EXPECT_NE(out.find("drift verdict refresh"), std::string::npos) << out;
  EXPECT_NE(out.find("production model replaced"), std::string::npos) << out;
  const fs::path run = path("runs/2024-07-01");
  EXPECT_EQ(read_json(run / "drift.json")["verdict"], "refresh");
  EXPECT_TRUE(fs::exists(run / "report.html"));
  EXPECT_NE(bytes(run / "report.html").find("What changed"), std::string::npos);
  // Promoted: production is the run's model and features; the old ones are archived.
  EXPECT_EQ(bytes(path("prod/model.h5")), bytes(run / "model.h5"));
  EXPECT_EQ(bytes(path("prod/features.h5")), bytes(run / "features.h5"));
  EXPECT_EQ(bytes(path("prod/model.segments.json")), bytes(run / "model.segments.json"));
  EXPECT_EQ(bytes(path("prod/archive/2024-07-01/model.h5")), model_before);
  EXPECT_NE(bytes(path("prod/model.h5")), model_before);
  // Survivors keep their index and name (refresh.json says which survived).
  const Model new_model = read_model(path("prod/model.h5"));
  const json refresh = read_json(run / "refresh.json");
  ASSERT_EQ(new_model.segment_names.size(), old_model.segment_names.size());
  int kept = 0;
  for (std::size_t c = 0; c < old_model.segment_names.size(); ++c)
    kept += new_model.segment_names[c] == old_model.segment_names[c] ? 1 : 0;
  EXPECT_GE(kept, 3) << refresh.dump();
  // KPIs of the segments as of 2024-01-01 over the 182 days to 2024-07-01.
  const json kpis = read_json(run / "kpis.json");
  EXPECT_EQ(kpis["as_of"], "2024-01-01");
  EXPECT_EQ(kpis["window_days"], 182);
  EXPECT_EQ(kpis["n_members"], 3000);
  EXPECT_GT(kpis["overall"]["retained"].get<int>(), 0);
  EXPECT_EQ(bytes(path("prod/as_of")), "2024-07-01\n");
  EXPECT_EQ(bytes(path("prod/segments.csv")), bytes(run / "segments.csv"));
}

}  // namespace
}  // namespace segforge
