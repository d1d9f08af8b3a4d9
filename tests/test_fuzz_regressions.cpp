// Regression tests for what the fuzz targets (tests/fuzz/) found, one per finding, so that a
// fix stays fixed whether or not the fuzz run (scripts/fuzz.sh) reaches the input again.

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "../src/prep/csv_reader.hpp"
#include "segforge/error.hpp"
#include "segforge/prep.hpp"
#include "test_prep_support.hpp"

namespace {

using namespace segforge;
using namespace segforge::prep;

std::vector<std::pair<std::int64_t, std::int64_t>> row_lines(const std::string& path) {
  CsvReader reader(path);
  std::vector<std::pair<std::int64_t, std::int64_t>> lines;
  reader.for_each([&](const CsvRow& row) {
    lines.emplace_back(row.line, row.end_line);
    return true;
  });
  return lines;
}

// fuzz_csv: a bare CR right after a quoted field that spans lines ends that row; the next row
// starts on the same physical line (3), but was reported as starting on line 2, where the
// previous row began, so its errors named the wrong line.
TEST(FuzzRegressions, RowAfterBareCrFollowingMultiLineFieldStartsOnItsOwnLine) {
  test::PrepDir dir;
  const std::string path = dir.write("t.csv", "id,note,v\n1,\"a\nb\",2\r3,c,4\n5,d,6\n");
  const std::vector<std::pair<std::int64_t, std::int64_t>> expected = {{2, 3}, {3, 3}, {4, 4}};
  EXPECT_EQ(row_lines(path), expected);
}

TEST(FuzzRegressions, BadValueAfterBareCrNamesItsLine) {
  test::PrepDir dir;
  TableParams p;
  p.path = dir.write("t.csv", "id,note,v\n1,\"a\nb\",2\r3,c,x\n5,d,6\n7,e,8\n");
  p.id_column = "id";
  p.columns = {"v"};
  try {
    (void)read_table(p);
    FAIL() << "expected an InputError for 'x' in column v";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

}  // namespace
