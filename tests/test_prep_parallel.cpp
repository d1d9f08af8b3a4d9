// segforge-prep rfm read as byte ranges on several threads (issue 21): the result must be the
// serial reader's, bit for bit (features, ids, excluded donors, every count and example of the
// summary, as-of) and every error the serial reader's first error, word for word. Small files
// are cut into many ranges (RfmParams::range_bytes, SEGFORGE_PREP_RANGE_BYTES for the binary)
// so that range boundaries fall inside quoted fields, on CRLF pairs, next to duplicates, bad
// rows and second spellings. CsvReader's byte ranges are also checked against for_each alone.

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "../src/prep/csv_reader.hpp"  // internal: the byte ranges are tested on their own too
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/prep.hpp"
#include "test_prep_support.hpp"

using namespace segforge;
using namespace segforge::prep;
using segforge::test::PrepDir;

namespace {

std::chrono::sys_days day(int y, unsigned m, unsigned d) { return std::chrono::sys_days{std::chrono::year{y} / m / d}; }

/// What compute_rfm gave: its result, or the InputError's message.
struct Outcome {
  std::optional<RfmResult> result;
  std::string error;
};

Outcome run_rfm(RfmParams p, int threads, std::int64_t range_bytes) {
  p.threads = threads;
  p.range_bytes = range_bytes;
  Outcome out;
  try {
    out.result = compute_rfm(p);
  } catch (const InputError& e) {
    out.error = e.what();
  }
  return out;
}

/// Bit-for-bit equality of two outcomes, with the first difference in the failure message.
void expect_same(const Outcome& serial, const Outcome& parallel, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(serial.error, parallel.error);
  ASSERT_EQ(serial.result.has_value(), parallel.result.has_value());
  if (!serial.result) return;
  const RfmResult& a = *serial.result;
  const RfmResult& b = *parallel.result;
  EXPECT_EQ(a.as_of, b.as_of);
  EXPECT_EQ(a.features.names, b.features.names);
  EXPECT_EQ(a.features.ids.numeric, b.features.ids.numeric);
  EXPECT_EQ(a.features.ids.text, b.features.ids.text);
  EXPECT_EQ(a.features.groups, b.features.groups);
  EXPECT_EQ(a.features.levels_in_other, b.features.levels_in_other);
  ASSERT_EQ(a.features.values.rows(), b.features.values.rows());
  ASSERT_EQ(a.features.values.cols(), b.features.values.cols());
  for (std::int64_t i = 0; i < a.features.values.size(); ++i) {
    const double x = a.features.values.data()[i], y = b.features.values.data()[i];
    ASSERT_EQ(std::memcmp(&x, &y, sizeof x), 0) << "value " << i << ": " << x << " vs " << y;
  }
  ASSERT_EQ(a.excluded.size(), b.excluded.size());
  for (std::size_t i = 0; i < a.excluded.size(); ++i) {
    EXPECT_EQ(a.excluded[i].id, b.excluded[i].id);
    EXPECT_EQ(a.excluded[i].reason, b.excluded[i].reason);
    EXPECT_EQ(a.excluded[i].transactions, b.excluded[i].transactions);
    EXPECT_EQ(std::memcmp(&a.excluded[i].net_amount, &b.excluded[i].net_amount, sizeof(double)), 0);
  }
  const std::vector<SummaryItem> sa = summary_items(a.summary), sb = summary_items(b.summary);
  ASSERT_EQ(sa.size(), sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].key, sb[i].key);
    EXPECT_EQ(sa[i].value, sb[i].value) << sa[i].key;
  }
  EXPECT_EQ(a.summary.gifts.examples, b.summary.gifts.examples);
  EXPECT_EQ(a.summary.warnings, b.summary.warnings);
}

/// compute_rfm on 1 thread against 2, 3 and 7 threads, each with every range size given.
void expect_parallel_is_serial(const RfmParams& p, const std::vector<std::int64_t>& range_sizes,
                               const std::vector<int>& teams = {2, 3, 7}) {
  const Outcome serial = run_rfm(p, 1, 0);
  for (int threads : teams)
    for (std::int64_t bytes : range_sizes)
      expect_same(serial, run_rfm(p, threads, bytes),
                  std::to_string(threads) + " threads, ranges of " + std::to_string(bytes) + " bytes");
}

std::vector<std::int64_t> every_size(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> sizes;
  for (std::int64_t b = from; b <= to; ++b) sizes.push_back(b);
  return sizes;
}

RfmParams params_for(const std::string& path, bool as_of = true) {
  RfmParams p;
  p.gifts_path = path;
  if (as_of) p.as_of = day(2024, 1, 1);
  return p;
}

/// A small synthetic donors file (segforge-prep synth donors).
std::string synth_gifts(const PrepDir& dir, std::int64_t donors, double refund_rate = 0.005) {
  SynthDonorsParams sp;
  sp.n_donors = donors;
  sp.refund_rate = refund_rate;
  const std::string path = dir.file("synth.csv");
  write_synth_donors(path, "", "", sp);
  return path;
}

// ---- the synthetic donors file ------------------------------------------------------------------

TEST(PrepParallel, SyntheticDonorsBitForBit) {
  PrepDir dir;
  const std::string gifts = synth_gifts(dir, 3000, 0.05);  // ~42k rows, 2 MB
  for (bool as_of : {true, false}) {
    RfmParams p = params_for(gifts, as_of);
    expect_parallel_is_serial(p, {4096, 65536, 1 << 20}, {2, 3, 7});
  }
  RfmParams keep = params_for(gifts);
  keep.drop_duplicates = false;
  expect_parallel_is_serial(keep, {4096}, {2});
  RfmParams drop = params_for(gifts);
  drop.negatives = Negatives::drop;
  expect_parallel_is_serial(drop, {4096}, {3});
}

TEST(PrepParallel, SyntheticDonorsThroughTheBinaryGiveTheSameFile) {
  PrepDir dir;
  const std::string gifts = synth_gifts(dir, 2000);
  const auto serial = segforge::test::run_prep(
      "rfm '" + gifts + "' --threads 1 -o '" + dir.file("serial.h5") + "' --excluded '" + dir.file("serial.csv") + "'",
      dir);
  ASSERT_EQ(serial.status, 0) << serial.output;
  const auto parallel = segforge::test::run_prep(
      "rfm '" + gifts + "' --threads 3 -o '" + dir.file("parallel.h5") + "' --excluded '" + dir.file("parallel.csv") + "'",
      dir);
  ASSERT_EQ(parallel.status, 0) << parallel.output;
  // OMP_NUM_THREADS is the default team; SEGFORGE_PREP_RANGE_BYTES cuts the file small.
  const auto by_env = segforge::test::run_prep(
      "rfm '" + gifts + "' -o '" + dir.file("env.h5") + "'", dir);
  ASSERT_EQ(by_env.status, 0);
  const char* omp = std::getenv("OMP_NUM_THREADS");
  const std::string saved = omp != nullptr ? omp : "";
  setenv("SEGFORGE_PREP_RANGE_BYTES", "3000", 1);
  setenv("OMP_NUM_THREADS", "4", 1);
  const auto small = segforge::test::run_prep("rfm '" + gifts + "' -o '" + dir.file("small.h5") + "'", dir);
  unsetenv("SEGFORGE_PREP_RANGE_BYTES");
  if (omp != nullptr)
    setenv("OMP_NUM_THREADS", saved.c_str(), 1);
  else
    unsetenv("OMP_NUM_THREADS");
  ASSERT_EQ(small.status, 0) << small.output;
  const Features a = read_features(dir.file("serial.h5"));
  for (const char* name : {"parallel.h5", "env.h5", "small.h5"}) {
    SCOPED_TRACE(name);
    const Features b = read_features(dir.file(name));
    ASSERT_EQ(a.x.rows(), b.x.rows());
    ASSERT_EQ(a.x.cols(), b.x.cols());
    EXPECT_EQ(std::memcmp(a.x.data(), b.x.data(), static_cast<std::size_t>(a.x.size()) * sizeof(float)), 0);
    EXPECT_EQ(a.ids.numeric, b.ids.numeric);
    EXPECT_EQ(a.feature_names, b.feature_names);
    EXPECT_EQ(a.scaler.mean, b.scaler.mean);
    EXPECT_EQ(a.scaler.scale, b.scaler.scale);
  }
  EXPECT_EQ(segforge::test::read_simple_csv(dir.file("serial.csv")).rows,
            segforge::test::read_simple_csv(dir.file("parallel.csv")).rows);
  // The printed summary (counts, as-of; the file names and the time aside) is the same.
  const auto normalised = [](std::string s) {
    for (std::size_t at; (at = s.find("serial.")) != std::string::npos;) s.replace(at, 7, "parallel.");
    const std::size_t wrote = s.find(" as-of ");
    return s.substr(0, wrote) + s.substr(s.find(')', wrote) + 1);
  };
  EXPECT_EQ(normalised(serial.output), normalised(parallel.output));
}

// ---- CSV forms at range boundaries ------------------------------------------------------------

/// Gifts with a quoted note holding delimiters, doubled quotes and line breaks (LF, CRLF, CR),
/// rows of every length, so that a sweep of range sizes puts a boundary on every byte.
std::string quoted_gifts(const std::string& eol, bool trailing_newline) {
  std::string s = "donor_id,gift_date,amount,note,channel" + eol;
  const char* notes[] = {"plain", "\"a, b\"", "\"line one\nline two\"",
                         "\"say \"\"hi\"\", then\r\nbye\"", "\"\"", "\"x\ry\"", "\",\n,\n,\""};
  for (int i = 0; i < 60; ++i) {
    s += std::to_string(100 + i % 17) + ",2023-0" + std::to_string(1 + i % 9) + "-1" + std::to_string(i % 10) + "," +
         std::to_string(5 + i % 13) + "." + std::to_string(i % 10) + "1," + notes[i % 7] + "," +
         (i % 3 == 0 ? "\"mail\"" : "online");
    if (i + 1 < 60 || trailing_newline) s += eol;
  }
  return s;
}

TEST(PrepParallel, QuotedLineBreaksAndDelimitersOnEveryBoundary) {
  PrepDir dir;
  for (const std::string eol : {"\n", "\r\n"})
    for (bool trailing : {true, false}) {
      SCOPED_TRACE("eol " + std::to_string(eol.size()) + (trailing ? " trailing" : " no trailing newline"));
      const std::string path = dir.write("quoted.csv", quoted_gifts(eol, trailing));
      expect_parallel_is_serial(params_for(path), every_size(1, 160), {2, 3});
      expect_parallel_is_serial(params_for(path, false), {7, 50}, {7});
    }
}

TEST(PrepParallel, CrOnlyBomAndBlankLines) {
  PrepDir dir;
  std::string cr = "donor_id,gift_date,amount\r";
  std::string bom = "\xEF\xBB\xBF" "donor_id,gift_date,amount\n\n";
  for (int i = 0; i < 40; ++i) {
    cr += std::to_string(i % 7) + ",2023-02-1" + std::to_string(i % 10) + "," + std::to_string(i + 1) + "\r";
    bom += std::to_string(i % 7) + ",2023-02-1" + std::to_string(i % 10) + "," + std::to_string(i + 1) + "\n" +
           (i % 5 == 0 ? "\n   \n" : "");
  }
  expect_parallel_is_serial(params_for(dir.write("cr.csv", cr)), every_size(1, 60), {2, 3});
  expect_parallel_is_serial(params_for(dir.write("bom.csv", bom)), every_size(1, 60), {2, 3});
}

TEST(PrepParallel, QuotesThatFoolTheParityAreReadAgain) {
  // libcsv takes a quote inside an unquoted field literally, and reads on after a closed
  // quote followed by text: the split's parity is then wrong, and the range before ends
  // elsewhere than the next range starts.
  PrepDir dir;
  std::string s = "donor_id,gift_date,amount,note\n";
  for (int i = 0; i < 50; ++i) {
    const char* notes[] = {"a 5\" screen", "plain", "\"two\nlines, one field\"", "\"quoted\"x, still\nquoted\"",
                           "12\" x 3\"", "\"\n\n\""};
    s += std::to_string(i % 9) + ",2023-03-0" + std::to_string(1 + i % 9) + "," + std::to_string(i + 2) + "," +
         notes[i % 6] + "\n";
  }
  const std::string path = dir.write("stray.csv", s);
  expect_parallel_is_serial(params_for(path), every_size(1, 120), {2, 3});
  expect_parallel_is_serial(params_for(path, false), every_size(1, 40), {3});
}

TEST(PrepParallel, HeaderOnlyAndNoDataRows) {
  PrepDir dir;
  for (const std::string text : {"donor_id,gift_date,amount\n", "donor_id,gift_date,amount",
                                 "donor_id,gift_date,amount\n\n\n", "donor_id,gift_date,amount\r\n"}) {
    const std::string path = dir.write("empty.csv", text);
    const Outcome serial = run_rfm(params_for(path), 1, 0);
    EXPECT_FALSE(serial.error.empty());
    for (std::int64_t bytes : {1, 4, 100}) expect_same(serial, run_rfm(params_for(path), 3, bytes), "header only");
  }
}

// ---- errors: the first in file order --------------------------------------------------------------

std::string clean_rows(int n, int first_donor = 1) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += std::to_string(first_donor + i % 11) + ",2023-04-" + std::to_string(10 + i % 19) + "," +
         std::to_string(3 + i % 23) + ".5\n";
  return s;
}

TEST(PrepParallel, BadRowLateInTheFileIsReportedAsSerially) {
  PrepDir dir;
  const std::string head = "donor_id,gift_date,amount\n";
  const std::string path = dir.write("late.csv", head + clean_rows(300) + "5,2023-04-01,abc\n" + clean_rows(20));
  const Outcome serial = run_rfm(params_for(path), 1, 0);
  EXPECT_NE(serial.error.find("line 302"), std::string::npos) << serial.error;
  EXPECT_NE(serial.error.find("'abc' is not a number"), std::string::npos) << serial.error;
  expect_parallel_is_serial(params_for(path), {1, 64, 1000, 1 << 20});
}

TEST(PrepParallel, TwoBadRowsInDifferentRangesReportTheFirst) {
  PrepDir dir;
  const std::string head = "donor_id,gift_date,amount\n";
  // A wrong field count, then a bad amount and a bad id much later: every range size
  // puts them in different ranges, which the later ones may finish first.
  const std::string path = dir.write(
      "two.csv", head + clean_rows(200) + "7,2023-04-01\n" + clean_rows(200) + "8,2023-04-02,1e999\n" +
                     clean_rows(10) + "9\x01,2023-04-02,1\n" + clean_rows(10));
  const Outcome serial = run_rfm(params_for(path), 1, 0);
  EXPECT_NE(serial.error.find("line 202"), std::string::npos) << serial.error;
  expect_parallel_is_serial(params_for(path), {1, 17, 64, 333, 4096});
  // Under skip: the same counts and the same first examples.
  RfmParams skip = params_for(path);
  skip.on_bad_row = BadRows::skip;
  expect_parallel_is_serial(skip, {1, 17, 64, 333, 4096});
}

TEST(PrepParallel, SecondSpellingOfAnIdInALaterRange) {
  PrepDir dir;
  const std::string head = "donor_id,gift_date,amount\n";
  const std::string path = dir.write("spelling.csv", head + clean_rows(150) + " 4 ,2023-05-01,2\n" + clean_rows(150));
  const Outcome serial = run_rfm(params_for(path), 1, 0);
  EXPECT_NE(serial.error.find("spelled differently on line 5"), std::string::npos) << serial.error;
  expect_parallel_is_serial(params_for(path), {1, 50, 200, 1000});
  // The other way round: the spaced spelling first, in its own range.
  const std::string other = dir.write("spelling2.csv", head + " 4 ,2023-05-01,2\n" + clean_rows(300) + " 4 ,2023-05-01,2\n");
  expect_parallel_is_serial(params_for(other), {1, 50, 200, 1000});
}

TEST(PrepParallel, SumsBeyondTheDoubleRangeFailOnTheSameRow) {
  PrepDir dir;
  std::string s = "donor_id,gift_date,amount\n";
  for (int i = 0; i < 40; ++i)
    s += (i % 4 == 0 ? "77,2023-06-" : "5,2023-07-") + std::to_string(10 + i % 20) + (i % 4 == 0 ? ",1e308\n" : ",1.25\n");
  s += "6,2023-07-01,not a number\n";  // after the overflow: never the error
  const std::string path = dir.write("overflow.csv", s);
  const Outcome serial = run_rfm(params_for(path), 1, 0);
  EXPECT_NE(serial.error.find("beyond the range of a double"), std::string::npos) << serial.error;
  std::vector<std::int64_t> sizes = every_size(1, 40);
  for (std::int64_t b : {64, 200, 1000, 1 << 20}) sizes.push_back(b);  // with the bad row in its range
  expect_parallel_is_serial(params_for(path), sizes, {2, 3});
}

// ---- duplicates, transactions, as-of from the data -----------------------------------------------

TEST(PrepParallel, ExactDuplicatesAcrossRanges) {
  PrepDir dir;
  const std::string head = "donor_id,gift_date,amount,campaign\n";
  std::string rows;
  for (int i = 0; i < 120; ++i)
    rows += std::to_string(i % 13) + ",2023-07-" + std::to_string(10 + i % 17) + "," + std::to_string(1 + i % 29) +
            ".1," + (i % 2 ? "spring" : "\"autumn\"") + "\n";
  // Near copies, a copy of the whole file after it, a quoted copy of a plain row (the same
  // fields), and a duplicate of a bad row (dropped as a duplicate first, under skip).
  const std::string text = head + rows + "3,2023-07-13,4.1,spring\n" + "\"3\",2023-07-13,4.1,spring\n" + rows +
                           "4,2023-07-14,x,spring\n" + "4,2023-07-14,x,spring\n";
  const std::string path = dir.write("dups.csv", text);
  RfmParams p = params_for(path);
  p.on_bad_row = BadRows::skip;
  expect_parallel_is_serial(p, {1, 9, 64, 200, 1000, 1 << 20});
  p.drop_duplicates = false;
  expect_parallel_is_serial(p, {1, 64, 1000});
  // Under error, the first copy of the bad row is the error.
  expect_parallel_is_serial(params_for(path), {1, 64, 1000});
}

TEST(PrepParallel, InvoiceLinesSpanningRanges) {
  PrepDir dir;
  std::string s = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";
  for (int i = 0; i < 200; ++i) {
    const int invoice = 500000 + i / 5;  // five lines each
    s += std::to_string(invoice) + ",A" + std::to_string(i % 7) + "," + std::to_string(i % 11 == 0 ? -2 : 1 + i % 4) +
         ",12/0" + std::to_string(1 + i % 9) + "/2011 10:0" + std::to_string(i % 10) + "," + std::to_string(i % 5) +
         "." + std::to_string(15 + i % 80) + "," + std::to_string(12000 + (i / 5) % 17) + ",United Kingdom\n";
  }
  // An invoice whose lines cancel out, one of a donor seen only there, and a repeat of an
  // earlier invoice number for the same customer far below (one transaction across ranges).
  s += "581000,B1,1,12/05/2011 09:00,2.55,13000,France\n581000,B2,-1,12/05/2011 09:00,0.85,13000,France\n";
  s += "581000,B3,-1,12/05/2011 09:00,1.7,13000,France\n500003,A9,3,12/09/2011 09:00,1.1,12003,United Kingdom\n";
  const std::string path = dir.write("retail.csv", s);
  RfmParams p;
  p.gifts_path = path;
  expect_parallel_is_serial(p, {1, 40, 100, 333, 5000});
  p.as_of = day(2011, 12, 10);
  expect_parallel_is_serial(p, {1, 77});
}

TEST(PrepParallel, TyposDroppedWhenAsOfComesFromTheData) {
  PrepDir dir;
  std::string s = "donor_id,gift_date,amount\n";
  for (int i = 0; i < 300; ++i) s += std::to_string(i % 31) + ",2023-0" + std::to_string(1 + i % 9) + "-0" + std::to_string(1 + i % 9) + ",10\n";
  s += "3,2099-01-01,5\n";
  for (int i = 0; i < 20; ++i) s += "4,21/03/2023,1\n";  // not the detected format: dropped, counted
  expect_parallel_is_serial(params_for(dir.write("typo.csv", s), false), {1, 100, 1000});
}

// ---- CsvReader's byte ranges on their own ------------------------------------------------------------

/// A row as text ("line:end_line:field|field|...|hash"), for comparing readers.
void rows_of(const CsvRow& row, std::vector<std::string>& out) {
  std::string s = std::to_string(row.line) + ":" + std::to_string(row.end_line) + ":";
  for (const auto& f : row.fields) s += std::string(f) + "|";
  out.push_back(s + std::to_string(row.hash()));
}

TEST(PrepParallel, CsvRangesChainedGiveForEachRows) {
  PrepDir dir;
  std::mt19937 rng(7);
  const std::string alphabet = "ab,,\"\" \n\r\t;";
  for (int file = 0; file < 30; ++file) {
    std::string text = "h1,h2,h3\n";
    const int n = 200 + static_cast<int>(rng() % 200);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    const std::string path = dir.write("random.csv", text);
    std::vector<std::string> serial;
    std::string serial_error;
    try {
      CsvReader reader(path);
      reader.for_each([&](const CsvRow& row) {
        rows_of(row, serial);
        return true;
      });
    } catch (const Error& e) {
      serial_error = e.what();
    }
    CsvReader reader(path);
    if (!reader.seekable()) continue;
    for (std::int64_t bytes : {1, 3, 8, 29, 1000}) {
      SCOPED_TRACE("file " + std::to_string(file) + ", ranges of " + std::to_string(bytes));
      const auto serial_run = [](std::int64_t k, const std::function<void(std::int64_t)>& body) {
        for (std::int64_t i = 0; i < k; ++i) body(i);
      };
      const std::vector<CsvBoundary> starts = reader.split(bytes, serial_run);
      std::vector<std::string> ranged;
      std::string ranged_error;
      try {
        CsvBoundary at = starts.front();
        for (std::size_t r = 0; r + 1 < starts.size(); ++r)
          at = reader.scan_range(at, starts[r + 1].offset, [&](const CsvRow& row) {
            rows_of(row, ranged);
            return true;
          });
        EXPECT_EQ(at.offset, reader.size());
      } catch (const Error& e) {
        ranged_error = e.what();
      }
      EXPECT_EQ(serial_error, ranged_error);
      EXPECT_EQ(serial, ranged);
    }
  }
}

TEST(PrepParallel, PlainLinesSplitLikeLibcsv) {
  // Lines without quotes are split in place; the same fields quoted go through libcsv. Every
  // field of the one must equal the other's (and so must the row hash).
  PrepDir dir;
  std::mt19937 rng(11);
  const std::string alphabet = "ab ,\t;x";
  std::string plain = "h\n", quoted = "h\n";
  for (int i = 0; i < 500; ++i) {
    std::string line;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) line += alphabet[rng() % alphabet.size()];
    const std::string eol = rng() % 2 ? "\n" : "\r\n";
    plain += line + eol;
    // The first field quoted: libcsv reads the line, with the same fields.
    const std::size_t comma = line.find(',');
    const std::string first = line.substr(0, comma);
    quoted += "\"" + first + "\"" + (comma == std::string::npos ? "" : line.substr(comma)) + eol;
  }
  std::vector<std::string> a, b;
  CsvReader(dir.write("plain.csv", plain)).for_each([&](const CsvRow& row) {
    rows_of(row, a);
    return true;
  });
  CsvReader(dir.write("quoted.csv", quoted)).for_each([&](const CsvRow& row) {
    rows_of(row, b);
    return true;
  });
  EXPECT_EQ(a, b);
}

}  // namespace
