// Regression tests for what the fuzz targets (tests/fuzz/) found, one per finding, so that a
// fix stays fixed whether or not the fuzz run (scripts/fuzz.sh) reaches the input again.

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../src/prep/csv_reader.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
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

// fuzz_hdf5: the readers sized their buffers from the shape a file claims. A damaged /centroids
// of [2 x 2^62] overflowed rows x cols (UBSan: signed integer overflow in Matrix, model.cpp), and
// a /features of [2^40 x 2^40] over a few stored bytes asked for a 2^45-byte allocation. Both are
// an InputError naming the dataset now. The files are made with h5py (chunked, so HDF5 stores
// only the chunks written: none here).
class FuzzShapes : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string make =
        "/usr/bin/python3 -c \"import h5py, sys; f = h5py.File(sys.argv[1], 'w'); "
        "f.create_dataset('centroids', shape=(2, 2**62), dtype='f4', chunks=(1, 1)); "
        "f.create_dataset('features', shape=(2**40, 2**40), dtype='f4', chunks=(1, 1))\" " +
        path_ + " 2>/dev/null";
    if (std::system(make.c_str()) != 0) GTEST_SKIP() << "needs Debian's python3-h5py (scripts/setup.sh)";
  }
  test::PrepDir dir_;
  std::string path_ = dir_.file("huge.h5");
};

void expect_shape_error(const std::function<void()>& read, const std::string& dataset) {
  try {
    read();
    FAIL() << "expected an InputError for " << dataset;
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(":" + dataset + ": shape"), std::string::npos) << message;
    EXPECT_NE(message.find("damaged or was not completely written"), std::string::npos) << message;
  }
}

TEST_F(FuzzShapes, ModelWhoseShapeOverflowsIsRefused) {
  expect_shape_error([&] { (void)read_model(path_); }, "/centroids");
}

TEST_F(FuzzShapes, FeaturesLargerThanTheirStorageAreRefused) {
  expect_shape_error([&] { (void)read_features(path_); }, "/features");
  expect_shape_error([&] { (void)inspect_features(path_); }, "/features");
}

}  // namespace
