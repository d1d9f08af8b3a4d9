// File I/O: round trips through segforge's own writers, files written by h5py the way users
// write them (scripts/make_io_fixtures.py → tests/fixtures/io/), a (file, message) table of bad
// inputs, and the atomic-write guarantees (nothing half-written, no temporary files left).

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../src/io/checksum.hpp"  // internal: checked against XXH64's published vectors
#include "segforge/error.hpp"
#include "segforge/io.hpp"

namespace fs = std::filesystem;
using namespace segforge;

namespace {

std::string fixture(const std::string& name) {
  return std::string(SEGFORGE_FIXTURES) + "/io/" + name;
}

/// A fresh folder under the system temp folder, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "segforge-test-io-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// Names of the files in the folder (hidden temporary files included), sorted.
  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_))
      names.insert(entry.path().filename().string());
    return names;
  }

 private:
  fs::path path_;
};

Matrix<float> ramp(std::int64_t rows, std::int64_t cols) {
  Matrix<float> x(rows, cols);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      x(i, j) = static_cast<float>(i) * 0.5f - static_cast<float>(j) * 3.25f;
  return x;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

/// Runs `fn`, expecting an InputError (exit 2) whose one-line message holds every `parts`.
template <class Fn>
void expect_input_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no InputError; expected one containing '" << parts.front() << "'";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

}  // namespace

// ---- Ids, checksum ----------------------------------------------------------------------

TEST(Ids, StrGivesTheIdAsText) {
  Ids numeric;
  numeric.numeric = {42, -7};
  EXPECT_EQ(numeric.str(0), "42");
  EXPECT_EQ(numeric.str(1), "-7");
  Ids text;
  text.text = {"C-001", "a,b"};
  EXPECT_EQ(text.str(1), "a,b");
  EXPECT_EQ(Ids{}.str(0), "");
}

TEST(Checksum, MatchesXxh64ReferenceVectors) {
  EXPECT_EQ(io::xxh64("", 0), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(io::xxh64("abc", 3), 0x44BC2CF5AD770999ULL);
  const std::string s = "Nobody inspects the spammish repetition";  // python-xxhash's README
  EXPECT_EQ(io::xxh64(s.data(), s.size()), 0xFBCEA83C8A378BF1ULL);
}

TEST(Checksum, FileDigestStreamsAcrossBlocks) {
  TempDir dir;
  // 4 MB blocks: a size just past one block, not a multiple of the 32-byte stripe.
  std::string bytes((std::size_t{4} << 20) + 45, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  write_text(dir.file("blob.bin"), bytes);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(io::xxh64(bytes.data(), bytes.size())));
  EXPECT_EQ(io::file_checksum(dir.file("blob.bin")), hex);
}

// ---- features round trips -----------------------------------------------------------------

TEST(Features, RoundTripWithInt64Ids) {
  TempDir dir;
  const std::string path = dir.file("features.h5");
  const Matrix<float> x = ramp(50, 3);
  Ids ids;
  for (int i = 0; i < 50; ++i) ids.numeric.push_back(1'000'000'000'000LL + i);
  write_features(path, x, {"recency", "frequency", "monetary"}, ids, {}, {{"as_of", "2024-06-30"}});
  EXPECT_EQ(dir.entries(), std::set<std::string>{"features.h5"});  // no temporary file left

  const Features f = read_features(path);
  EXPECT_EQ(f.x.rows(), 50);
  EXPECT_EQ(f.x.cols(), 3);
  EXPECT_EQ(f.x.values(), x.values());
  EXPECT_EQ(f.feature_names, (std::vector<std::string>{"recency", "frequency", "monetary"}));
  EXPECT_EQ(f.ids.numeric, ids.numeric);
  EXPECT_TRUE(f.ids.text.empty());
  EXPECT_TRUE(f.scaler.empty());
  EXPECT_EQ(f.path, path);
  EXPECT_EQ(f.dataset, "/features");
  EXPECT_EQ(f.checksum.size(), 16u);
  EXPECT_EQ(f.checksum, io::file_checksum(path));

  const FeatureFileInfo info = inspect_features(path);
  EXPECT_EQ(info.n_samples, 50);
  EXPECT_EQ(info.n_features, 3);
  EXPECT_EQ(info.dtype, "float32");
  EXPECT_EQ(info.feature_names, f.feature_names);
  EXPECT_TRUE(info.has_ids);
  EXPECT_FALSE(info.has_scaler);
  EXPECT_EQ(info.attributes.at("format"), "segforge-features");
  EXPECT_EQ(info.attributes.at("format_version"), "1");
  EXPECT_EQ(info.attributes.at("created_by").rfind("segforge", 0), 0u);
  EXPECT_EQ(info.attributes.at("as_of"), "2024-06-30");
}

TEST(Features, RoundTripWithStringIdsAndScaler) {
  TempDir dir;
  const std::string path = dir.file("features.h5");
  const Matrix<float> x = ramp(4, 2);
  Ids ids;
  ids.text = {"C-001", "Zoë, \"the donor\"", "", "line\nbreak"};
  Scaler scaler{{1.5, -2.0}, {0.25, 10.0}, {"identity", "log1p"}};
  write_features(path, x, {"recency", "monetary"}, ids, scaler);

  const Features f = read_features(path);
  EXPECT_EQ(f.x.values(), x.values());
  EXPECT_EQ(f.ids.text, ids.text);
  EXPECT_TRUE(f.ids.numeric.empty());
  EXPECT_EQ(f.scaler.mean, scaler.mean);
  EXPECT_EQ(f.scaler.scale, scaler.scale);
  EXPECT_EQ(f.scaler.transform, scaler.transform);
  EXPECT_TRUE(inspect_features(path).has_scaler);
}

TEST(Features, ClipBoundsAndExtraDatasetsRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("blobs.h5");
  const Matrix<float> x = ramp(5, 3);
  const double inf = std::numeric_limits<double>::infinity();
  Scaler scaler{{1.5, -2.0, 0.0}, {0.25, 10.0, 1.0}, {"identity", "log1p", "signed_log1p"}};
  scaler.clip_low = {-1.0, -inf, 0.125};
  scaler.clip_high = {2.0, inf, 7.5};
  const Matrix<float> centers = ramp(2, 3);
  const std::vector<std::int32_t> labels = {0, 1, 1, 0, -7};
  FeatureExtras extras;
  extras.matrices.emplace("centers", centers.view());
  extras.int32s.emplace("labels", labels);
  write_features(path, x, {"a", "b", "c"}, {}, scaler, {{"source", "test"}}, extras);
  EXPECT_EQ(dir.entries(), std::set<std::string>{"blobs.h5"});

  const Features f = read_features(path);
  EXPECT_EQ(f.x.values(), x.values());
  EXPECT_EQ(f.scaler.clip_low, scaler.clip_low);
  EXPECT_EQ(f.scaler.clip_high, scaler.clip_high);
  const Scaler alone = read_scaler(path);  // without reading the matrix
  EXPECT_EQ(alone.mean, scaler.mean);
  EXPECT_EQ(alone.scale, scaler.scale);
  EXPECT_EQ(alone.transform, scaler.transform);
  EXPECT_EQ(alone.clip_low, scaler.clip_low);
  EXPECT_EQ(alone.clip_high, scaler.clip_high);
  const Matrix<float> c = read_extra_matrix(path, "/centers");
  EXPECT_EQ(c.rows(), 2);
  EXPECT_EQ(c.cols(), 3);
  EXPECT_EQ(c.values(), centers.values());
  EXPECT_EQ(read_extra_int32s(path, "labels"), labels);
  EXPECT_EQ(read_labels(path), labels) << "the labels reader takes it as a labels file";
  EXPECT_EQ(inspect_features(path).attributes.at("source"), "test");

  // Without clip bounds or extras nothing more is written.
  write_features(dir.file("plain.h5"), x, {"a", "b", "c"}, {}, Scaler{{0, 0, 0}, {1, 1, 1}, {}});
  EXPECT_TRUE(read_scaler(dir.file("plain.h5")).clip_low.empty());
  EXPECT_TRUE(read_scaler(dir.file("plain.h5")).transform == std::vector<std::string>(3, "identity"));
  EXPECT_TRUE(read_scaler(fixture("int32.h5")).empty());
  expect_input_error([&] { read_extra_matrix(dir.file("plain.h5"), "centers"); },
                     {"plain.h5", "/centers", "no dataset"});
  expect_input_error([&] { read_extra_int32s(path, "centers"); }, {"blobs.h5:/centers", "float32", "int32"});
  expect_input_error([&] { read_extra_int32s(path, "/features"); }, {"blobs.h5:/features"});
  expect_input_error([&] { read_scaler(dir.file("absent.h5")); }, {"absent.h5"});
}

TEST(Features, MissingNamesReadAsF0F1) {
  TempDir dir;
  const std::string path = dir.file("features.h5");
  write_features(path, ramp(3, 2), {});
  EXPECT_EQ(read_features(path).feature_names, (std::vector<std::string>{"f0", "f1"}));
  EXPECT_EQ(read_features(fixture("int32.h5")).feature_names,
            (std::vector<std::string>{"f0", "f1"}));
}

TEST(Features, SmallRowBlocksGiveTheSameMatrix) {
  TempDir dir;
  const std::string path = dir.file("features.h5");
  const Matrix<float> x = ramp(50, 3);
  write_features(path, x, {"a", "b", "c"});
  for (std::int64_t block : {1, 7, 49, 50, 1000}) {
    ReadOptions options;
    options.rows_per_read = block;
    EXPECT_EQ(read_features(path, options).x.values(), x.values()) << "rows_per_read=" << block;
  }
  // h5py's gzip file in 4 x 2 chunks, read 3 rows at a time.
  ReadOptions options;
  options.rows_per_read = 3;
  EXPECT_EQ(read_features(fixture("float64.h5"), options).x.values(),
            read_features(fixture("float64.h5")).x.values());
}

// ---- files written by h5py ------------------------------------------------------------------

TEST(Features, ReadsFloat64FromH5py) {
  const Features f = read_features(fixture("float64.h5"));
  ASSERT_EQ(f.x.rows(), 10);
  ASSERT_EQ(f.x.cols(), 3);
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(f.x(i, j), (3.0f * i + j) / 4.0f - 2.0f) << i << "," << j;
  EXPECT_EQ(f.feature_names, (std::vector<std::string>{"recency", "frequency", "monetary"}));
  ASSERT_EQ(f.ids.numeric.size(), 10u);
  EXPECT_EQ(f.ids.numeric[9], 1009);

  const FeatureFileInfo info = inspect_features(fixture("float64.h5"));
  EXPECT_EQ(info.dtype, "float64");
  EXPECT_EQ(info.attributes.at("as_of"), "2024-06-30");
  EXPECT_EQ(info.attributes.at("n_source_rows"), "12");
  EXPECT_EQ(info.attributes.at("ratio"), "0.5");
  EXPECT_EQ(info.attributes.at("cleaned"), "true");
}

TEST(Features, ReadsInt32WithUtf8StringIds) {
  const Features f = read_features(fixture("int32.h5"));
  ASSERT_EQ(f.x.rows(), 6);
  ASSERT_EQ(f.x.cols(), 2);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 2; ++j) EXPECT_EQ(f.x(i, j), static_cast<float>(2 * i + j - 5));
  EXPECT_EQ(f.ids.text, (std::vector<std::string>{"a0", "a1", "a2", "Zoë", "a4", "a5"}));
  EXPECT_EQ(inspect_features(fixture("int32.h5")).dtype, "int32");
}

TEST(Features, ReadsInt64) {
  const Features f = read_features(fixture("int64.h5"));
  ASSERT_EQ(f.x.rows(), 6);
  EXPECT_EQ(f.x(2, 1), 5.0f);
  EXPECT_EQ(f.x(5, 1), 1099511627776.0f);  // 2^40
  EXPECT_TRUE(f.ids.empty());
  EXPECT_EQ(inspect_features(fixture("int64.h5")).dtype, "int64");
}

TEST(Features, ReadsFixedLengthStringsAndFloat32Scaler) {
  const Features f = read_features(fixture("fixed_strings.h5"));
  EXPECT_EQ(f.feature_names, (std::vector<std::string>{"recency", "frequency", "monetary_total"}));
  EXPECT_EQ(f.ids.text, (std::vector<std::string>{"C-001", "C-002", "C-010", "C-100"}));
  EXPECT_EQ(f.x(3, 2), 3.2f);
  EXPECT_EQ(f.scaler.mean, (std::vector<double>{1.5, 2.0, 250.0}));
  EXPECT_EQ(f.scaler.scale, (std::vector<double>{0.5, 4.0, 100.0}));
  EXPECT_EQ(f.scaler.transform, (std::vector<std::string>{"identity", "log1p", "log1p"}));
}

TEST(Features, OtherDatasetByName) {
  for (const std::string name : {"/data", "data"}) {
    ReadOptions options;
    options.dataset = name;
    const Features f = read_features(fixture("other_dataset.h5"), options);
    EXPECT_EQ(f.dataset, "/data");
    EXPECT_EQ(f.x.rows(), 5);
    EXPECT_EQ(f.x(4, 1), 9.0f);
    EXPECT_EQ(f.ids.numeric.size(), 5u);
  }
}

// ---- NaN and Inf --------------------------------------------------------------------------

class NanFeatures : public ::testing::Test {
 protected:
  void SetUp() override {
    x_ = ramp(20, 3);
    x_(5, 1) = std::numeric_limits<float>::quiet_NaN();
    x_(12, 0) = std::numeric_limits<float>::infinity();
    x_(19, 2) = -std::numeric_limits<float>::infinity();
    for (int i = 0; i < 20; ++i) ids_.numeric.push_back(100 + i);
    write_features(path_, x_, {"recency", "frequency", "monetary"}, ids_);
  }
  TempDir dir_;
  std::string path_ = dir_.file("nan.h5");
  Matrix<float> x_;
  Ids ids_;
};

TEST_F(NanFeatures, ErrorNamesFirstRowAndColumn) {
  expect_input_error(
      [&] { read_features(path_); },
      {path_ + ":/features row 5 (0-based): NaN in column 'frequency'", "pass --nan-policy drop"});
}

TEST_F(NanFeatures, DropRemovesExactlyThoseRowsAndIds) {
  for (std::int64_t block : {4, 65536}) {
    ReadOptions options;
    options.nan_policy = NanPolicy::drop;
    options.rows_per_read = block;
    const Features f = read_features(path_, options);
    std::vector<float> expected;
    std::vector<std::int64_t> expected_ids;
    for (int i = 0; i < 20; ++i) {
      if (i == 5 || i == 12 || i == 19) continue;
      expected.insert(expected.end(), x_.row(i), x_.row(i) + 3);
      expected_ids.push_back(100 + i);
    }
    EXPECT_EQ(f.x.rows(), 17);
    EXPECT_EQ(f.x.values(), expected) << "rows_per_read=" << block;
    EXPECT_EQ(f.ids.numeric, expected_ids);
  }
}

TEST(Features, DropOnlyTrailingRowsKeepsStringIds) {
  TempDir dir;
  Matrix<float> x = ramp(5, 2);
  x(3, 0) = std::numeric_limits<float>::quiet_NaN();
  x(4, 1) = std::numeric_limits<float>::infinity();
  Ids ids;
  ids.text = {"a", "b", "c", "d", "e"};
  write_features(dir.file("f.h5"), x, {"u", "v"}, ids);
  expect_input_error([&] { read_features(dir.file("f.h5")); },
                     {"row 3 (0-based): NaN in column 'u'"});
  ReadOptions options;
  options.nan_policy = NanPolicy::drop;
  const Features f = read_features(dir.file("f.h5"), options);
  EXPECT_EQ(f.x.rows(), 3);
  EXPECT_EQ(f.ids.text, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(Features, DropWithoutIdsNumbersRowsAsInTheFile) {
  // No /ids: outputs would number the kept rows 0, 1, 2, ... and row 3 of the output would be
  // row 4 of the file. Under drop the ids are the file's 0-based row numbers, in a part read too.
  TempDir dir;
  Matrix<float> x = ramp(8, 2);
  x(1, 0) = std::numeric_limits<float>::quiet_NaN();
  x(6, 1) = std::numeric_limits<float>::infinity();
  write_features(dir.file("f.h5"), x, {"u", "v"});
  ReadOptions options;
  options.nan_policy = NanPolicy::drop;
  const Features f = read_features(dir.file("f.h5"), options);
  EXPECT_EQ(f.ids.numeric, (std::vector<std::int64_t>{0, 2, 3, 4, 5, 7}));
  options.row_begin = 4;
  options.row_count = 4;
  EXPECT_EQ(read_features(dir.file("f.h5"), options).ids.numeric, (std::vector<std::int64_t>{4, 5, 7}));
  // A part with nothing to drop numbers its rows too, so that MPI's gathered ids line up.
  options.row_begin = 2;
  options.row_count = 4;
  EXPECT_EQ(read_features(dir.file("f.h5"), options).ids.numeric, (std::vector<std::int64_t>{2, 3, 4, 5}));
  // Without drop nothing changes: no ids.
  options.nan_policy = NanPolicy::error;
  x(1, 0) = 1.0f;
  x(6, 1) = 1.0f;
  write_features(dir.file("g.h5"), x, {"u", "v"});
  EXPECT_TRUE(read_features(dir.file("g.h5"), options).ids.empty());
}

TEST(Features, AnotherMatrixUsesTheRootMetadataOnlyWhereItFits) {
  // A features file with a /pca [N x 2] and a /sample [3 x 3] beside /features [N x 3]: the root's
  // names and scaler are /features' and do not fit /pca; the ids fit /pca's rows, not /sample's.
  TempDir dir;
  const Matrix<float> x = ramp(6, 3);
  Ids ids;
  ids.numeric = {10, 11, 12, 13, 14, 15};
  Scaler scaler;
  scaler.mean = {1, 2, 3};
  scaler.scale = {1, 1, 1};
  scaler.transform = {"identity", "identity", "identity"};
  const std::string file = dir.file("f.h5");
  const Matrix<float> pca2 = ramp(6, 2), sample3 = ramp(3, 3);
  FeatureExtras extras;
  extras.matrices.emplace("pca", pca2.view());
  extras.matrices.emplace("sample", sample3.view());
  write_features(file, x, {"recency", "frequency", "monetary"}, ids, scaler, {}, extras);
  ReadOptions options;
  options.dataset = "/pca";
  const Features pca = read_features(file, options);
  EXPECT_EQ(pca.feature_names, (std::vector<std::string>{"f0", "f1"}));
  EXPECT_TRUE(pca.scaler.mean.empty());
  EXPECT_EQ(pca.ids.numeric, ids.numeric);
  EXPECT_TRUE(read_scaler(file, "/pca").mean.empty());
  options.dataset = "/sample";
  const Features sample = read_features(file, options);
  EXPECT_EQ(sample.feature_names, (std::vector<std::string>{"recency", "frequency", "monetary"}));
  EXPECT_EQ(sample.scaler.mean, scaler.mean);
  EXPECT_TRUE(sample.ids.empty());
  const FeatureFileInfo info = inspect_features(file, "/sample");
  EXPECT_FALSE(info.has_ids);
  EXPECT_TRUE(info.has_scaler);
}

TEST(Features, DropEveryRowIsAnError) {
  TempDir dir;
  Matrix<float> x(2, 2, std::numeric_limits<float>::quiet_NaN());
  write_features(dir.file("f.h5"), x, {"u", "v"});
  ReadOptions options;
  options.nan_policy = NanPolicy::drop;
  expect_input_error([&] { read_features(dir.file("f.h5"), options); },
                     {"all 2 rows have NaN or Inf"});
}

TEST(Features, InfErrorSaysWhichSign) {
  TempDir dir;
  Matrix<float> x = ramp(3, 2);
  x(2, 1) = -std::numeric_limits<float>::infinity();
  write_features(dir.file("f.h5"), x, {"u", "v"});
  expect_input_error([&] { read_features(dir.file("f.h5")); },
                     {"row 2 (0-based): -Inf in column 'v'"});
}

// ---- bad inputs: one row per fault ----------------------------------------------------------

struct BadInput {
  std::string name;
  /// Makes (or names) the file inside the temp folder; returns its path.
  std::function<std::string(const TempDir&)> make;
  std::string expected;
};

void PrintTo(const BadInput& row, std::ostream* os) { *os << row.name; }

class BadFeatureFile : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadFeatureFile, ThrowsInputErrorNamingFileAndFault) {
  TempDir dir;
  const std::string path = GetParam().make(dir);
  expect_input_error([&] { read_features(path); }, {path, GetParam().expected});
}

namespace {

std::string copy_fixture(const TempDir& dir, const std::string& name) {
  fs::copy_file(fixture(name), dir.file(name));
  return dir.file(name);
}

const BadInput kBadInputs[] = {
    {"missing_file", [](const TempDir& d) { return d.file("nope.h5"); },
     "no such file; check the path"},
    {"folder", [](const TempDir& d) { return d.file(""); }, "is a folder"},
    {"empty_file",
     [](const TempDir& d) {
       write_text(d.file("empty.h5"), "");
       return d.file("empty.h5");
     },
     "empty file (0 bytes)"},
    {"not_hdf5",
     [](const TempDir& d) {
       write_text(d.file("gifts.h5"), "id,amount\n1,25.00\n");
       return d.file("gifts.h5");
     },
     "not an HDF5 file"},
    {"truncated",
     [](const TempDir& d) {
       const std::string path = d.file("cut.h5");
       write_features(path, ramp(2000, 8), {});
       fs::resize_file(path, fs::file_size(path) / 2);
       return path;
     },
     "truncated or corrupt HDF5 file"},
    {"missing_dataset", [](const TempDir& d) { return copy_fixture(d, "other_dataset.h5"); },
     "no dataset '/features'; pass --dataset PATH to name the matrix (found: /data, /ids)"},
    {"group_not_dataset", [](const TempDir& d) { return copy_fixture(d, "bad_group.h5"); },
     "'/features' is a group, not a dataset"},
    {"one_d", [](const TempDir& d) { return copy_fixture(d, "bad_1d.h5"); },
     ":/features: expected 2-D [n_samples x n_features], got 1-D [5]"},
    {"three_d", [](const TempDir& d) { return copy_fixture(d, "bad_3d.h5"); },
     "got 3-D [2 x 3 x 4]"},
    {"string_dtype", [](const TempDir& d) { return copy_fixture(d, "bad_string.h5"); },
     ":/features: dtype string is not numeric; store the matrix as float32, float64 or integers"},
    {"zero_rows", [](const TempDir& d) { return copy_fixture(d, "bad_0rows.h5"); },
     ":/features: 0 rows; nothing to cluster"},
    {"zero_columns", [](const TempDir& d) { return copy_fixture(d, "bad_0cols.h5"); },
     ":/features: 0 columns"},
    {"ids_length", [](const TempDir& d) { return copy_fixture(d, "bad_ids_len.h5"); },
     ":/ids: 4 ids for 5 rows in /features"},
    {"names_length", [](const TempDir& d) { return copy_fixture(d, "bad_names_len.h5"); },
     ":/feature_names: 3 names for 2 columns in /features"},
};

}  // namespace

INSTANTIATE_TEST_SUITE_P(Table, BadFeatureFile, ::testing::ValuesIn(kBadInputs),
                         [](const auto& info) { return info.param.name; });

TEST(Features, InspectRejectsWhatItCannotShow) {
  expect_input_error([] { inspect_features(fixture("bad_string.h5")); },
                     {"dtype string is not numeric"});
  expect_input_error([] { inspect_features(fixture("other_dataset.h5")); },
                     {"no dataset '/features'"});
  EXPECT_EQ(inspect_features(fixture("bad_0rows.h5")).n_samples, 0);  // shown, not clustered
}

// ---- model -------------------------------------------------------------------------------

TEST(Model, RoundTrip) {
  TempDir dir;
  const std::string path = dir.file("model.h5");
  Model model;
  model.centroids = ramp(3, 2);
  model.feature_names = {"recency", "monetary"};
  model.scaler = Scaler{{1.0, 2.0}, {3.0, 4.0}, {"identity", "log1p"}};
  model.segment_names = {"Loyal, high value", "Lapsed", "New"};
  model.segment_sizes = {120, 45, 35};
  model.counts = {120.5, 45.0, 35.25};
  model.attributes = {{"algorithm", "minibatch"},
                      {"k", "3"},
                      {"inertia", "12.5"},
                      {"input_checksum", "0123456789abcdef"}};
  write_model(path, model);
  EXPECT_EQ(dir.entries(), std::set<std::string>{"model.h5"});

  const Model back = read_model(path);
  EXPECT_EQ(back.centroids.rows(), 3);
  EXPECT_EQ(back.centroids.values(), model.centroids.values());
  EXPECT_EQ(back.feature_names, model.feature_names);
  EXPECT_EQ(back.scaler.mean, model.scaler.mean);
  EXPECT_EQ(back.scaler.transform, model.scaler.transform);
  EXPECT_EQ(back.segment_names, model.segment_names);
  EXPECT_EQ(back.segment_sizes, model.segment_sizes);
  EXPECT_EQ(back.counts, model.counts);
  for (const auto& [key, value] : model.attributes)
    EXPECT_EQ(back.attributes.at(key), value) << key;
  EXPECT_EQ(back.attributes.at("format"), "segforge-model");
}

TEST(Model, LloydModelHasNoCounts) {
  TempDir dir;
  Model model;
  model.centroids = ramp(2, 2);
  write_model(dir.file("m.h5"), model);
  const Model back = read_model(dir.file("m.h5"));
  EXPECT_TRUE(back.counts.empty());
  EXPECT_TRUE(back.segment_names.empty());
  EXPECT_TRUE(back.feature_names.empty());
}

TEST(Model, BareCentroidsFileFromH5py) {
  const Model model = read_model(fixture("model_bare.h5"));
  ASSERT_EQ(model.centroids.rows(), 3);
  ASSERT_EQ(model.centroids.cols(), 2);
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 2; ++j) EXPECT_EQ(model.centroids(k, j), 10.0f * k + j);
  EXPECT_TRUE(model.feature_names.empty());
  EXPECT_TRUE(model.scaler.empty());
  EXPECT_TRUE(model.segment_names.empty());
  EXPECT_TRUE(model.attributes.empty());
}

TEST(Model, FeatureFileIsNotAModel) {
  expect_input_error([] { read_model(fixture("float64.h5")); },
                     {fixture("float64.h5"), "no dataset '/centroids'", "/features"});
}

// ---- labels ------------------------------------------------------------------------------

TEST(Labels, H5RoundTrip) {
  TempDir dir;
  const std::string path = dir.file("labels.h5");
  const std::vector<std::int32_t> labels = {2, 0, 1, 1, 0};
  const std::vector<float> distances = {0.5f, 1.25f, 0.1f, 3.0f, 0.0f};
  Ids ids;
  ids.text = {"a", "b", "c", "d", "e"};
  write_labels_h5(path, labels, distances, ids);
  EXPECT_EQ(dir.entries(), std::set<std::string>{"labels.h5"});
  EXPECT_EQ(read_labels(path), labels);
  // A 1-D dataset is not a feature matrix, whoever wrote it.
  ReadOptions options;
  options.dataset = "/distances";
  expect_input_error([&] { read_features(path, options); }, {"got 1-D [5]"});
}

TEST(Labels, H5AnyIntegerDtype) {
  EXPECT_EQ(read_labels(fixture("labels_int64.h5")), (std::vector<std::int32_t>{0, 2, 1, 2, 0}));
  EXPECT_EQ(read_labels(fixture("labels_uint8.h5")), (std::vector<std::int32_t>{3, 0, 1}));
  expect_input_error(
      [] { read_labels(fixture("labels_float.h5")); },
      {fixture("labels_float.h5") + ":/labels: dtype float32 is not an integer type"});
  expect_input_error([] { read_labels(fixture("float64.h5")); }, {"no dataset '/labels'"});
}

TEST(Labels, SegmentsCsvContent) {
  TempDir dir;
  const std::string path = dir.file("segments.csv");
  const std::vector<std::int32_t> labels = {1, 0, 1};
  const std::vector<float> distances = {0.1f, 2.0f, 1234.5677f};
  Ids ids;
  ids.text = {"C-1", "Smith, \"Jo\"", "x"};
  write_segments_csv(path, labels, distances, ids, {"Lapsed, low", "Loyal"});
  EXPECT_EQ(read_text(path),
            "id,segment,segment_name,distance\n"
            "C-1,1,Loyal,0.1\n"
            "\"Smith, \"\"Jo\"\"\",0,\"Lapsed, low\",2\n"
            "x,1,Loyal,1234.5677\n");
  EXPECT_EQ(dir.entries(), std::set<std::string>{"segments.csv"});

  write_segments_csv(path, labels, distances, {}, {});  // no ids: row numbers; overwrite in place
  EXPECT_EQ(read_text(path),
            "id,segment,segment_name,distance\n0,1,,0.1\n1,0,,2\n2,1,,1234.5677\n");
}

TEST(Labels, SegmentsCsvRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("segments.csv");
  std::vector<std::int32_t> labels;
  std::vector<float> distances;
  Ids ids;
  for (int i = 0; i < 1000; ++i) {
    labels.push_back(i % 7);
    distances.push_back(static_cast<float>(i) / 3.0f);
    ids.text.push_back(i % 10 == 0 ? "multi\nline, \"quoted\" " + std::to_string(i)
                                   : "id" + std::to_string(i));
  }
  write_segments_csv(path, labels, distances, ids, {"a", "b,c", "d\"e", "f", "g", "h", "i"});
  EXPECT_EQ(read_labels(path), labels);
}

TEST(Labels, CsvFromOtherTools) {
  TempDir dir;
  // BOM, CRLF, different column order, spaces, a blank last line.
  write_text(dir.file("crm.csv"),
             "\xEF\xBB\xBF"
             "customer, Segment ,score\r\n7,2,0.5\r\n\"8,9\",0,1\r\n\r\n");
  EXPECT_EQ(read_labels(dir.file("crm.csv")), (std::vector<std::int32_t>{2, 0}));
}

TEST(Labels, BadCsv) {
  TempDir dir;
  write_text(dir.file("a.csv"), "id,cluster\n1,2\n");
  expect_input_error([&] { read_labels(dir.file("a.csv")); },
                     {dir.file("a.csv"), "no column 'segment' (found: id, cluster)"});
  write_text(dir.file("b.csv"), "id,segment\n1,2\n2,high\n");
  expect_input_error([&] { read_labels(dir.file("b.csv")); },
                     {dir.file("b.csv") + " line 3: segment 'high' is not an integer"});
  write_text(dir.file("c.csv"), "id,segment,segment_name\n1,2,x\n2,3,a,b\n");
  expect_input_error([&] { read_labels(dir.file("c.csv")); },
                     {"line 3: 4 fields, the header has 3"});
  write_text(dir.file("d.csv"), "id,segment\n\"1,2\n");
  expect_input_error([&] { read_labels(dir.file("d.csv")); },
                     {"line 2: a quoted field is never closed"});
  write_text(dir.file("e.csv"), "");
  expect_input_error([&] { read_labels(dir.file("e.csv")); }, {"empty file"});
  write_text(dir.file("f.csv"), "segment\n99999999999\n");
  expect_input_error([&] { read_labels(dir.file("f.csv")); }, {"does not fit int32"});
}

TEST(Labels, UnknownFormatOrMissingFile) {
  TempDir dir;
  write_text(dir.file("labels.txt"), "1\n2\n");
  expect_input_error([&] { read_labels(dir.file("labels.txt")); },
                     {dir.file("labels.txt"), "unknown labels format '.txt'"});
  expect_input_error([&] { read_labels(dir.file("gone.csv")); },
                     {dir.file("gone.csv"), "no such file"});
}

// ---- atomic writes -------------------------------------------------------------------------

TEST(Atomic, MissingFolderIsAnInputErrorAndLeavesNothing) {
  TempDir dir;
  const std::string folder = dir.file("out");
  const std::string expected = "folder '" + folder + "' does not exist; create it first";
  const Matrix<float> x = ramp(3, 2);
  const std::vector<std::int32_t> labels = {0, 1, 0};
  const std::vector<float> distances = {0, 0, 0};
  Model model;
  model.centroids = ramp(2, 2);
  expect_input_error([&] { write_features(folder + "/f.h5", x, {}); },
                     {folder + "/f.h5: " + expected});
  expect_input_error([&] { write_model(folder + "/model.h5", model); }, {expected});
  expect_input_error([&] { write_labels_h5(folder + "/l.h5", labels, distances, {}); }, {expected});
  expect_input_error([&] { write_segments_csv(folder + "/s.csv", labels, distances, {}, {}); },
                     {expected});
  expect_input_error([&] { write_text_atomic(folder + "/metrics.json", "{}"); }, {expected});
  expect_input_error([&] { DistanceMatrixWriter w(folder + "/d.h5", 4, 4); }, {expected});
  EXPECT_FALSE(fs::exists(folder));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Atomic, OutputPathThatIsAFolder) {
  TempDir dir;
  fs::create_directory(dir.file("taken"));
  expect_input_error([&] { write_text_atomic(dir.file("taken"), "x"); }, {"is a folder"});
}

TEST(Atomic, TextReplacesWholeFile) {
  TempDir dir;
  const std::string path = dir.file("metrics.json");
  write_text_atomic(path, "{\"k\": 3}\n");
  write_text_atomic(path, "{\"k\": 4}\n");
  EXPECT_EQ(read_text(path), "{\"k\": 4}\n");
  EXPECT_EQ(dir.entries(), std::set<std::string>{"metrics.json"});
}

TEST(Atomic, DistanceWriterWithoutCommitLeavesNothing) {
  TempDir dir;
  {
    DistanceMatrixWriter writer(dir.file("d.h5"), 10, 10);
    const Matrix<float> tile(10, 10, 1.0f);
    writer.write(0, 0, tile);
    EXPECT_EQ(dir.entries().size(), 1u);  // the temporary file, hidden
    EXPECT_FALSE(fs::exists(dir.file("d.h5")));
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Atomic, DistanceWriterCommitWritesEveryTile) {
  TempDir dir;
  const std::string path = dir.file("distances.h5");
  const std::int64_t rows = 300, cols = 1500, tr = 128, tc = 700;  // tiles straddle chunks
  {
    DistanceMatrixWriter writer(path, rows, cols);
    for (std::int64_t r = 0; r < rows; r += tr)
      for (std::int64_t c = 0; c < cols; c += tc) {
        Matrix<float> tile(std::min(tr, rows - r), std::min(tc, cols - c));
        for (std::int64_t i = 0; i < tile.rows(); ++i)
          for (std::int64_t j = 0; j < tile.cols(); ++j)
            tile(i, j) = static_cast<float>((r + i) * cols + (c + j));
        writer.write(r, c, tile);
      }
    writer.commit();
  }
  EXPECT_EQ(dir.entries(), std::set<std::string>{"distances.h5"});
  ReadOptions options;
  options.dataset = "/distances";
  const Features d = read_features(path, options);
  ASSERT_EQ(d.x.rows(), rows);
  ASSERT_EQ(d.x.cols(), cols);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      ASSERT_EQ(d.x(i, j), static_cast<float>(i * cols + j)) << i << "," << j;
}
