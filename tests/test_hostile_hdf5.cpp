// Hostile and unusual HDF5 files (issue 15, items 4, 10 and 12), made with h5py by
// scripts/make_io_fixtures.py: data that lives in other files (external links, external
// storage, virtual datasets) is refused by every reader with a message saying why; a missing
// filter and a dangling link are named as such; ids round-trip exactly or are refused naming the
// row; strings written as UTF-8 are UTF-8 (checked by h5py's asstr()).

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "segforge/checkpoint.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/row_source.hpp"

namespace fs = std::filesystem;
using namespace segforge;

namespace {

std::string fixture(const std::string& name) {
  return std::string(SEGFORGE_FIXTURES) + "/io/" + name;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "segforge-test-hostile-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_))
      names.insert(entry.path().filename().string());
    return names;
  }

 private:
  fs::path path_;
};

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

const std::string kInside = "segforge reads only data stored in the file itself";

// ---- data from other files: one row per (file, reader) ------------------------------------

struct Hostile {
  std::string name;
  std::function<void()> read;
  std::vector<std::string> parts;
};

std::ostream& operator<<(std::ostream& os, const Hostile& h) { return os << h.name; }

class HostileFile : public ::testing::TestWithParam<Hostile> {};

TEST_P(HostileFile, IsRefusedSayingWhy) { expect_input_error(GetParam().read, GetParam().parts); }

const std::vector<Hostile> kHostile = {
    {"features_external_link", [] { read_features(fixture("hostile_elink.h5")); },
     {fixture("hostile_elink.h5") + ":/features", "external link to 'hostile_target.h5:/secret'",
      kInside}},
    {"inspect_external_link", [] { inspect_features(fixture("hostile_elink.h5")); },
     {":/features", "external link", kInside}},
    {"ids_external_link", [] { read_features(fixture("hostile_elink_ids.h5")); },
     {fixture("hostile_elink_ids.h5") + ":/ids", "external link", kInside}},
    {"features_external_storage", [] { read_features(fixture("hostile_external.h5")); },
     {fixture("hostile_external.h5") + ":/features", "stored outside the file",
      "'hostile_raw.bin'", kInside}},
    {"features_virtual", [] { read_features(fixture("hostile_virtual.h5")); },
     {":/features", "virtual dataset", "'hostile_target.h5'", kInside}},
    {"features_virtual_missing_source",
     [] { read_features(fixture("hostile_virtual_missing.h5")); },
     {":/features", "virtual dataset", "missing source reads as zeros", kInside}},
    {"out_of_core_rows_virtual", [] { open_hdf5_rows(fixture("hostile_virtual.h5"), "/features"); },
     {":/features", "virtual dataset"}},
    {"model_external_link", [] { read_model(fixture("hostile_model_elink.h5")); },
     {fixture("hostile_model_elink.h5") + ":/centroids", "external link", kInside}},
    {"labels_external_storage", [] { read_labels(fixture("hostile_labels_external.h5")); },
     {fixture("hostile_labels_external.h5") + ":/labels", "stored outside the file", kInside}},
    {"init_centres_external_link",  // fit --init FILE.h5 reads centres this way
     [] { read_extra_matrix(fixture("hostile_elink.h5"), "/features"); },
     {":/features", "external link", kInside}},
    {"scaler_from_external_link", [] { read_scaler(fixture("hostile_elink.h5")); },
     {":/features", "external link"}},
    // Not from other files, but named for what they are rather than "corrupt" / "no datasets".
    {"dangling_soft_link", [] { read_features(fixture("dangling_link.h5")); },
     {fixture("dangling_link.h5") + ":/features", "soft link to '/nowhere'", "dangling"}},
    {"missing_filter_lzf", [] { read_features(fixture("lzf.h5")); },
     {fixture("lzf.h5") + ":/features", "LZF", "32000", "this HDF5 library does not have",
      "h5repack -f NONE"}},
};

INSTANTIATE_TEST_SUITE_P(Table, HostileFile, ::testing::ValuesIn(kHostile),
                         [](const auto& info) { return info.param.name; });

TEST(HostileFile, TheirTargetsAreReadableSoTheRefusalIsTheCheck) {
  // The files the hostile ones point at are ordinary: reading them works, so what refuses the
  // hostile files is the link check, not a missing target.
  ReadOptions options;
  options.dataset = "/secret";
  const Features target = read_features(fixture("hostile_target.h5"), options);
  EXPECT_EQ(target.x.values(), std::vector<float>(8, 7.0f));
  EXPECT_TRUE(fs::exists(fixture("hostile_raw.bin")));
}

TEST(SoftLink, WithinTheFileIsFollowed) {
  const Features f = read_features(fixture("soft_link.h5"));
  EXPECT_EQ(f.x.values(), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
}

// ---- extents the file does not store: one row per reader ----------------------------------
// Each file claims 2^40 values (or [2^20 x 2^20]) over a few stored bytes; every reader sized
// its buffers from the claim (bad_alloc, "out of memory", exit 1, or an OOM kill). Now the one
// check in open_dataset refuses them before anything is allocated.

const std::string kNotStored = "the file is damaged or was not completely written";

const std::vector<Hostile> kHuge = {
    {"model_segment_names_2e40_strings", [] { read_model(fixture("huge_model_names.h5")); },
     {fixture("huge_model_names.h5") + ":/segments/names: shape 1-D [1099511627776] needs "
      "8796093022208 bytes but the file stores 0;", kNotStored}},
    {"feature_roles_2e40_fixed_strings", [] { read_features(fixture("huge_roles.h5")); },
     {fixture("huge_roles.h5") + ":/feature_roles: shape 1-D [1099511627776] needs "
      "17592186044416 bytes but the file stores 0;", kNotStored}},
    {"scaler_mean_compressed", [] { read_features(fixture("huge_scaler.h5")); },
     {fixture("huge_scaler.h5") + ":/scaler/mean: shape 1-D [1099511627776]",
      "the file stores 0 (compressed)", kNotStored}},
    {"scaler_from_file", [] { read_scaler(fixture("huge_scaler.h5")); },
     {":/scaler/mean: shape 1-D [1099511627776]", kNotStored}},
    {"labels_2e40", [] { read_labels(fixture("huge_labels.h5")); },
     {fixture("huge_labels.h5") + ":/labels: shape 1-D [1099511627776] needs 4398046511104 bytes",
      kNotStored}},
    {"label_ids_reader", [] { read_label_ids(fixture("huge_labels.h5")); },
     {":/labels: shape 1-D [1099511627776]", kNotStored}},
    {"labels_partly_written_chunks", [] { read_labels(fixture("partial_labels.h5")); },
     {fixture("partial_labels.h5") + ":/labels: shape 1-D [1000] needs 4000 bytes but the file "
      "stores 400;", kNotStored}},
    {"checkpoint_centres", [] { read_checkpoint(fixture("huge_checkpoint.h5")); },
     {fixture("huge_checkpoint.h5") + ":/centres: shape 2-D [1048576 x 1048576] needs "
      "4398046511104 bytes but the file stores 0;", kNotStored}},
    {"extra_matrix", [] { read_extra_matrix(fixture("huge_checkpoint.h5"), "/centres"); },
     {":/centres: shape 2-D [1048576 x 1048576]", kNotStored}},
    {"extra_doubles", [] { read_extra_doubles(fixture("huge_scaler.h5"), "/scaler/mean"); },
     {":/scaler/mean: shape 1-D [1099511627776]", kNotStored}},
};

INSTANTIATE_TEST_SUITE_P(Huge, HostileFile, ::testing::ValuesIn(kHuge),
                         [](const auto& info) { return info.param.name; });

TEST(HugeClaim, CompressionUpToDeflatesBestRatioIsRead) {
  // 100000 x 8 float32 zeros (3.2 MB) stored gzip level 9 in ~3 KB (1024:1): the bound leaves
  // room for deflate's best ratio, so a legitimately compressed file is read in full.
  const Matrix<float> x = read_extra_matrix(fixture("zeros_gzip.h5"), "/features");
  EXPECT_EQ(x.rows(), 100000);
  EXPECT_EQ(x.cols(), 8);
  EXPECT_EQ(x.values(), std::vector<float>(800000, 0.0f));
}

TEST(HugeClaim, AttributeArraysBeyondTheBoundAreNotShown) {
  // Root attributes are sized from their dataspace: up to 65536 values are read, longer arrays
  // skipped (segforge's own attributes are scalars). Made at test time: 65537 values need
  // HDF5's dense attribute storage (libver='latest').
  TempDir dir;
  const std::string path = dir.file("attrs.h5");
  const std::string make =
      "/usr/bin/python3 -c \"import h5py, numpy as np, sys; f = h5py.File(sys.argv[1], 'w', "
      "libver='latest'); f['features'] = np.zeros((2, 2), 'f4'); "
      "f.attrs['fits'] = np.arange(65536, dtype='u1'); "
      "f.attrs['too_long'] = np.arange(65537, dtype='u1'); f.attrs['as_of'] = '2024-01-01'\" " +
      path + " 2>/dev/null";
  if (std::system(make.c_str()) != 0) GTEST_SKIP() << "needs Debian's python3-h5py (scripts/setup.sh)";
  const FeatureFileInfo info = inspect_features(path);
  EXPECT_EQ(info.attributes.count("too_long"), 0u);
  ASSERT_EQ(info.attributes.count("fits"), 1u);
  EXPECT_EQ(info.attributes.at("fits").substr(0, 8), "0,1,2,3,");
  EXPECT_EQ(info.attributes.at("as_of"), "2024-01-01");
}

TEST(HugeClaim, TheCliSaysSoWithExitTwoAndWritesNothing) {
  TempDir dir;
  const std::string log = dir.file("log.txt");
  const std::string out = dir.file("out.csv");
  const std::string command = std::string(SEGFORGE_BINARY) + " predict " +
                              fixture("huge_model_names.h5") + " " + fixture("float64.h5") +
                              " -o " + out + " --device cpu > " + log + " 2>&1";
  const int raw = std::system(command.c_str());
  std::stringstream text;
  text << std::ifstream(log).rdbuf();
  ASSERT_TRUE(WIFEXITED(raw)) << text.str();
  EXPECT_EQ(WEXITSTATUS(raw), 2) << text.str();
  EXPECT_NE(text.str().find(":/segments/names: shape 1-D [1099511627776]"), std::string::npos)
      << text.str();
  EXPECT_FALSE(fs::exists(out));
}

// ---- ids ------------------------------------------------------------------------------------

TEST(Ids, Uint64BelowTwoToTheSixtyThreeIsExact) {
  const Features f = read_features(fixture("ids_uint64.h5"));
  EXPECT_EQ(f.ids.numeric, (std::vector<std::int64_t>{0, 1, std::int64_t{1} << 62,
                                                      std::numeric_limits<std::int64_t>::max()}));
  const Features u32 = read_features(fixture("ids_uint32.h5"));
  EXPECT_EQ(u32.ids.numeric, (std::vector<std::int64_t>{0, 7, std::int64_t{1} << 31,
                                                        (std::int64_t{1} << 32) - 1}));
}

TEST(Ids, Uint64AboveInt64IsRefusedNamingTheRow) {
  // Stored: 5, 2^63-1, 2^63, 2^64-1. HDF5 would clamp the last two to 2^63-1: three equal ids.
  expect_input_error([] { read_features(fixture("ids_uint64_big.h5")); },
                     {fixture("ids_uint64_big.h5") + ":/ids row 2 (0-based)",
                      "9223372036854775808", "store the ids as strings"});
  // A part read (one MPI rank's rows) checks its own rows: rows 0-1 are fine, rows 2-3 not.
  ReadOptions first;
  first.row_count = 2;
  EXPECT_EQ(read_features(fixture("ids_uint64_big.h5"), first).ids.numeric,
            (std::vector<std::int64_t>{5, std::numeric_limits<std::int64_t>::max()}));
  ReadOptions second;
  second.row_begin = 2;
  second.row_count = 2;
  expect_input_error([&] { read_features(fixture("ids_uint64_big.h5"), second); },
                     {":/ids row 2 (0-based)", "9223372036854775808"});
  // Out of core, the ids are read the same way.
  ReadOptions streamed;
  streamed.rows_in_memory = false;
  expect_input_error([&] { read_features(fixture("ids_uint64_big.h5"), streamed); },
                     {":/ids row 2 (0-based)"});
}

TEST(Ids, TextThatIsNotUtf8IsRefusedOnReadNamingTheRow) {
  // Row 1 is "Zoë" in Latin-1: 'Z' 'o' 0xEB.
  expect_input_error([] { read_features(fixture("ids_latin1.h5")); },
                     {fixture("ids_latin1.h5") + ":/ids row 1 (0-based)", "not valid UTF-8",
                      "0xEB at offset 2"});
}

TEST(Ids, TextThatIsNotUtf8IsRefusedOnWriteAndNothingIsWritten) {
  TempDir dir;
  Matrix<float> x(3, 1, {1, 2, 3});
  Ids ids;
  ids.text = {"a", std::string("b\xC3", 2), "c"};  // a truncated two-byte sequence
  expect_input_error([&] { write_features(dir.file("f.h5"), x.view(), {"v"}, ids); },
                     {dir.file("f.h5"), "ids row 1 (0-based)", "not valid UTF-8",
                      "0xC3 at offset 1"});
  const std::vector<std::int32_t> labels = {0, 1, 0};
  const std::vector<float> distances = {0, 0, 0};
  ids.text[1] = "\xED\xA0\x80";  // an encoded surrogate (U+D800) is not UTF-8 either
  expect_input_error([&] { write_labels_h5(dir.file("l.h5"), labels, distances, ids); },
                     {dir.file("l.h5"), "ids row 1 (0-based)", "0xED at offset 0"});
  ids.text[1] = "\xC0\xAF";  // an overlong '/'
  expect_input_error([&] { write_labels_h5(dir.file("l.h5"), labels, distances, ids); },
                     {"ids row 1 (0-based)", "0xC0"});
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Ids, Utf8TextIdsAreReadBackByH5pyAsstr) {
  // An independent reader: h5py decodes strings tagged UTF-8 with asstr(); pandas then holds
  // exactly the ids written.
  TempDir dir;
  const std::string path = dir.file("labels.h5");
  Ids ids;
  ids.text = {"Zo\xC3\xAB", "\xE5\x8C\x97\xE4\xBA\xAC", "\xF0\x9F\x98\x80", "plain"};
  write_labels_h5(path, std::vector<std::int32_t>{0, 1, 0, 1},
                  std::vector<float>{0, 0, 0, 0}, ids);
  const std::string script = dir.file("check.py");
  std::ofstream(script) << "import sys, h5py, pandas\n"
                           "with h5py.File(sys.argv[1], 'r') as f:\n"
                           "    s = pandas.Series(f['ids'].asstr()[...])\n"
                           "sys.stdout.buffer.write('\\n'.join(s).encode('utf-8'))\n";
  const std::string out = dir.file("out.txt");
  const int raw =
      std::system(("/usr/bin/python3 " + script + " " + path + " > " + out + " 2>&1").c_str());
  std::stringstream text;
  text << std::ifstream(out, std::ios::binary).rdbuf();
  if (WIFEXITED(raw) && WEXITSTATUS(raw) != 0 &&
      text.str().find("ModuleNotFoundError") != std::string::npos)
    GTEST_SKIP() << "h5py or pandas missing for /usr/bin/python3: " << text.str();
  ASSERT_TRUE(WIFEXITED(raw) && WEXITSTATUS(raw) == 0) << text.str();
  EXPECT_EQ(text.str(), ids.text[0] + "\n" + ids.text[1] + "\n" + ids.text[2] + "\n" + ids.text[3]);
}

// ---- labels -----------------------------------------------------------------------------------

// A labels file's /ids obey the features' rules (docs/formats.md "Ids"), through the same
// reader, for both read_labels (score, report, refresh) and read_label_ids (refresh).
TEST(LabelIds, EveryIdKindIsReadExactly) {
  EXPECT_EQ(read_label_ids(fixture("labels_ids_uint64.h5")).numeric,
            (std::vector<std::int64_t>{0, 1, std::int64_t{1} << 62,
                                       std::numeric_limits<std::int64_t>::max()}));
  EXPECT_EQ(read_label_ids(fixture("labels_ids_text.h5")).text,
            (std::vector<std::string>{"a", "Zo\xC3\xAB", "c", "d"}));
  EXPECT_EQ(read_labels(fixture("labels_ids_text.h5")), (std::vector<std::int32_t>{0, 1, 0, 1}));
  EXPECT_TRUE(read_label_ids(fixture("labels_int64.h5")).empty());  // no /ids: none
}

const std::vector<std::pair<std::string, std::vector<std::string>>> kBadLabelIds = {
    {"labels_ids_uint64_big.h5",
     {":/ids row 2 (0-based)", "uint64 value 9223372036854775808", "store the ids as strings"}},
    {"labels_ids_latin1.h5", {":/ids row 1 (0-based)", "not valid UTF-8", "0xEB at offset 2"}},
    {"labels_ids_len.h5", {":/ids: 3 ids for 4 rows in /labels", "store one id per row"}},
    {"labels_ids_float.h5", {":/ids: dtype float64 is neither integer nor string"}},
};

TEST(LabelIds, BadIdsAreRefusedByBothReadersNamingFileAndRow) {
  for (const auto& [name, parts] : kBadLabelIds) {
    SCOPED_TRACE(name);
    std::vector<std::string> with_file = parts;
    with_file.front() = fixture(name) + with_file.front();
    expect_input_error([&] { read_label_ids(fixture(name)); }, with_file);
    expect_input_error([&] { read_labels(fixture(name)); }, with_file);
  }
}

TEST(LabelIds, ScoreRefusesALabelsFileWithBadIdsWithExitTwo) {
  TempDir dir;
  const std::string log = dir.file("log.txt");
  const std::string command = std::string(SEGFORGE_BINARY) + " score " +
                              fixture("hostile_target.h5") + " --dataset /secret --labels " +
                              fixture("labels_ids_uint64_big.h5") + " --device cpu > " + log +
                              " 2>&1";
  const int raw = std::system(command.c_str());
  std::stringstream text;
  text << std::ifstream(log).rdbuf();
  ASSERT_TRUE(WIFEXITED(raw)) << text.str();
  EXPECT_EQ(WEXITSTATUS(raw), 2) << text.str();
  EXPECT_NE(text.str().find("labels_ids_uint64_big.h5:/ids row 2 (0-based)"), std::string::npos)
      << text.str();
}

TEST(Labels, Int32MaxIsReadAsItIs) {
  // The reader keeps 2147483647 exactly; refusing it as a segment number is validate_labels'
  // job (test_validate / test_cli), which must not overflow computing n_clusters from it.
  EXPECT_EQ(read_labels(fixture("labels_int32_max.h5")),
            (std::vector<std::int32_t>{0, 2147483647, 0, 2147483647}));
}

TEST(Labels, ScoreRefusesInt32MaxWithExitTwo) {
  // It used to overflow n_clusters = max label + 1 and end in exit 1 ("cannot create
  // std::vector larger than max_size()").
  TempDir dir;
  const std::string log = dir.file("log.txt");
  const std::string command = std::string(SEGFORGE_BINARY) + " score " +
                              fixture("hostile_target.h5") + " --dataset /secret --labels " +
                              fixture("labels_int32_max.h5") + " --device cpu > " + log + " 2>&1";
  const int raw = std::system(command.c_str());
  std::stringstream text;
  text << std::ifstream(log).rdbuf();
  ASSERT_TRUE(WIFEXITED(raw)) << text.str();
  EXPECT_EQ(WEXITSTATUS(raw), 2) << text.str();
  EXPECT_NE(text.str().find("row 1 (0-based): label 2147483647 is too large a segment number"),
            std::string::npos)
      << text.str();
}

}  // namespace
