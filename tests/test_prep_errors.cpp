// segforge-prep's bad input, one row per case: the input files, the arguments, and what the
// one-line message must say. Every case exits 2 and leaves no output file behind.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "test_prep_support.hpp"

using segforge::test::PrepDir;
using segforge::test::PrepOutcome;

namespace {

struct BadCase {
  std::string name;
  std::string gifts;  ///< gifts.csv
  std::string args;   ///< after `rfm gifts.csv -o out.h5` (`table`/`synth` cases start with '!')
  std::string message;
  std::string events = "";
  std::string attributes = "";
};

const std::string kHeader = "donor_id,gift_date,amount\n";
const std::string kOk = kHeader + "1,2020-12-01,10\n2,2020-12-02,20\n";

std::ostream& operator<<(std::ostream& os, const BadCase& c) { return os << c.name; }

/// `text` with every '~' as a NUL byte (string literals stop at one).
std::string with_nul(std::string text) {
  for (char& c : text)
    if (c == '~') c = '\0';
  return text;
}

const std::string kZip = with_nul("PK\x03\x04\x14~\x06~\x08~~~!~[Content_Types].xml");

class PrepBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(PrepBadInput, OneLineExitTwoNothingWritten) {
  const BadCase& c = GetParam();
  PrepDir dir;
  dir.write("gifts.csv", c.gifts);
  if (!c.events.empty()) dir.write("events.csv", c.events);
  if (!c.attributes.empty()) dir.write("attributes.csv", c.attributes);
  const auto inputs = dir.entries();
  std::string args = c.args;
  for (const char* name : {"gifts.csv", "events.csv", "attributes.csv", "out.h5", "out.csv"}) {
    for (std::size_t pos = args.find(name); pos != std::string::npos; pos = args.find(name, pos + 1)) {
      if (pos > 0 && args[pos - 1] == '/') continue;
      args.replace(pos, std::string(name).size(), dir.file(name));
      pos += dir.file(name).size() - 1;
    }
  }
  if (args.starts_with("!"))
    args = args.substr(1);
  else
    args = "rfm " + dir.file("gifts.csv") + " -o " + dir.file("out.h5") + " " + args;
  const PrepOutcome run = segforge::test::run_prep(args, dir);
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_NE(run.output.find(c.message), std::string::npos) << "expected: " << c.message << "\ngot: " << run.output;
  EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 1) << "one line: " << run.output;
  // Bytes from the files reach the terminal escaped: no control character but the newline.
  EXPECT_EQ(std::count_if(run.output.begin(), run.output.end(),
                          [](char ch) { return ch != '\n' && (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F); }),
            0)
      << run.output;
  EXPECT_EQ(dir.entries(), inputs) << "no output, no temporary file";
}

const BadCase kCases[] = {
    // Bad rows: file, line, column, what to do.
    {"too_few_fields", kOk + "3,2020-12-03\n", "",
     "gifts.csv line 4: 2 fields, but the header has 3; fix the row or pass --on-bad-row skip"},
    {"too_many_fields", kOk + "3,2020-12-03,5,extra\n", "", "line 4: 4 fields, but the header has 3"},
    {"amount_not_a_number", kOk + "3,2020-12-03,12abc\n", "",
     "gifts.csv line 4, column 'amount': '12abc' is not a number; fix the row or pass --on-bad-row skip"},
    {"amount_empty", kOk + "3,2020-12-03,\n", "", "line 4, column 'amount': empty value, expected a number"},
    {"amount_infinite", kOk + "3,2020-12-03,inf\n", "", "line 4, column 'amount': 'inf' is not a number"},
    {"amount_with_currency", kOk + "3,2020-12-03,$5\n", "", "'$5' is not a number"},
    {"quantity_not_a_number",
     "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n1,2,2020-01-01,1.5,7\n2,two,2020-01-02,1.5,7\n", "",
     "line 3, column 'Quantity': 'two' is not a number"},
    {"unclosed_quote", kOk + "3,2020-12-03,\"5\n4,2020-12-04,6\n", "",
     "gifts.csv line 4: a quoted field opened on this line is never closed"},
    {"quote_runs_over_lines", kOk + "3,2020-12-03,\"5\n4\",2020-12-04,6\n", "",
     "line 4: 5 fields, but the header has 3 (a quoted field runs on to line 5; check for an unbalanced \")"},
    {"bad_row_in_events", kOk, "--events events.csv",
     "events.csv line 3: 2 fields, but the header has 3", "donor_id,event_date,event_type\n1,2020-11-01,open\n1,2020-11-02\n"},
    {"attributes_twice", kOk, "--attributes attributes.csv --categorical region",
     "attributes.csv line 3, column 'donor_id': donor 1 already has attributes on line 2; keep one row per donor", "",
     "donor_id,region\n1,North\n1,South\n"},
    // Columns.
    {"no_date_column", "donor_id,amount\n1,5\n", "",
     "gifts.csv: no gift date column recognised in the header ('donor_id', 'amount'); name it with --date-col"},
    {"no_amount_column", "donor_id,gift_date,note\n1,2020-01-01,x\n", "",
     "no amount column recognised in the header ('donor_id', 'gift_date', 'note'); name it with --amount-col"},
    {"named_column_absent", kOk, "--id-col member", "gifts.csv: --id-col member: no such column; the header has 'donor_id', 'gift_date', 'amount'"},
    {"categorical_column_absent", kOk, "--attributes attributes.csv --categorical colour",
     "attributes.csv: --categorical colour: no such column", "", "donor_id,region\n1,North\n"},
    {"categorical_without_attributes", kOk, "--categorical region", "--categorical needs --attributes"},
    {"attributes_without_categorical", kOk, "--attributes attributes.csv", "name the columns to encode with --categorical",
     "", "donor_id,region\n1,North\n"},
    {"events_without_type", kOk, "--events events.csv", "events.csv: no event type column recognised",
     "donor_id,event_date\n1,2020-11-01\n"},
    // Dates.
    {"dates_ambiguous", kHeader + "1,01/02/2020,5\n2,03/04/2020,5\n", "",
     "gifts.csv, column 'gift_date': no date has a day above 12, so day-first and month-first cannot be told apart (line 2: '01/02/2020'); pass --date-format"},
    {"dates_mixed", kHeader + "1,13/01/2020,5\n2,01/13/2020,5\n", "",
     "mixes day-first (line 2: '13/01/2020') and month-first (line 3: '01/13/2020') dates"},
    {"no_date_reads", kHeader + "1,soon,5\n2,later,5\n", "", "column 'gift_date': no value reads as a date (line 2: 'soon')"},
    {"every_date_unreadable_in_format", kHeader + "1,2020-01-01,5\n", "--date-format %d/%m/%Y",
     "no row with a donor id has a readable date on or after 1900"},
    {"as_of_not_a_date", kOk, "--as-of 2020-13-01", "--as-of 2020-13-01: not a date; write it as YYYY-MM-DD"},
    {"as_of_before_every_gift", kOk, "--as-of 2019-01-01", "no donor has a gift"},
    // Nothing left, or too little.
    {"empty_file", "", "", "gifts.csv: empty file; expected a header line and data rows"},
    {"header_only", kHeader, "", "no row with a donor id has a readable date"},
    {"only_refunds", kHeader + "1,2020-01-01,-5\n", "", "no donor has a gift (a transaction with a positive amount)"},
    {"strict_small", kOk, "--strict", "only 2 donors with gifts (fewer than 500)"},
    {"missing_file", "", "!rfm missing.csv -o out.h5", "missing.csv: cannot open"},
    // Options.
    {"unknown_scale", kOk, "--scale minmax", "--scale minmax: unknown; use standard, robust or none"},
    {"clip_quantile_percent", kOk, "--clip-quantile 99", "--clip-quantile 99.000000: must be a fraction in (0.5, 1)"},
    {"unknown_negatives", kOk, "--negatives keep", "--negatives keep: unknown; use net or drop"},
    {"unknown_bad_row_policy", kOk, "--on-bad-row ignore", "--on-bad-row ignore: unknown; use error or skip"},
    {"output_not_h5", kOk, "!rfm gifts.csv -o out.csv", "-o ", ": unknown file type; use a name ending in .h5 or .hdf5"},
    {"output_folder_missing", kOk, "!rfm gifts.csv -o nowhere/out.h5", "folder"},
    {"max_levels_zero", kOk, "--max-levels 0", "--max-levels 0: must be at least 1"},
    {"unknown_option", kOk, "--frobnicate", "segforge-prep: The following argument was not expected: --frobnicate; see --help"},
    // table.
    {"table_not_a_number", "id,a,b\n1,2,3\n2,x,4\n", "!table gifts.csv -o out.h5 --columns a,b",
     "gifts.csv line 3, column 'a': not a number, expected a number; fix the row or pass --on-bad-row skip"},
    {"table_empty_value", "id,a,b\n1,2,3\n2,,4\n", "!table gifts.csv -o out.h5", "gifts.csv line 3, column 'a': empty value"},
    {"table_no_numeric_column", "id,name\n1,x\n", "!table gifts.csv -o out.h5", "no column holds only numbers"},
    {"table_unknown_column", "id,a\n1,2\n", "!table gifts.csv -o out.h5 --columns z", "--features z: no such column"},
    {"table_log_of_negative", "id,a\n1,-2\n2,3\n", "!table gifts.csv -o out.h5 --log-columns a",
     "feature 'a', id 1: -2.000000 has no log1p"},
    // Non-finite results from finite input: every sum and product of user numbers is checked,
    // and every written value must fit float32.
    {"amounts_sum_past_double", kHeader + "1,2020-12-01,1e308\n1,2020-12-02,1e308\n", "",
     "gifts.csv line 3: the total of donor '1' is beyond the range of a double"},
    {"quantity_times_price_past_double",
     "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n1,1e200,2020-01-01,1e200,7\n", "",
     "gifts.csv line 2, columns 'Quantity' x 'UnitPrice': the amount 1e+200 x 1e+200 is beyond the range of a double"},
    {"invoice_sum_past_double",
     "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n1,1,2020-01-01,1e308,7\n1,1,2020-01-02,9e307,7\n", "",
     "gifts.csv line 3: the sum of the amounts of transaction '1' is beyond the range of a double"},
    {"scale_none_past_float", kHeader + "1,2020-12-01,1e300\n2,2020-12-02,1\n", "--no-log --scale none",
     "feature 'monetary_total', id 1: the value 1e+300 becomes inf once transformed and scaled (beyond float32's range"},
    {"table_scale_none_past_float", "id,a\n1,1e200\n2,1\n", "!table gifts.csv -o out.h5 --scale none",
     "feature 'a', id 1: the value 1e+200 becomes inf"},
    {"table_robust_spread_past_double", "id,a\n1,-1.7e308\n2,-1.7e308\n3,1.7e308\n4,1.7e308\n",
     "!table gifts.csv -o out.h5 --scale robust", "feature 'a': its values (up to 1.7e+308) spread beyond the range of a double"},
    // Ids are kept as spelled, so an id that cannot round-trip is refused, in every file.
    {"id_with_nul", kHeader + "1,2020-12-01,10\n" + with_nul("2~b,2020-12-02,10\n"), "",
     "gifts.csv line 3, column 'donor_id': the id '2\\0b' contains a NUL byte (at byte 2)"},
    {"id_not_utf8", kHeader + "1,2020-12-01,10\nM\xE9ller,2020-12-02,10\n", "",
     "gifts.csv line 3, column 'donor_id': the id 'M\\xE9ller' is not UTF-8 text (byte 0xE9 at 2"},
    {"id_with_line_break", kHeader + "1,2020-12-01,10\n\"a\nb\",2020-12-02,10\n", "",
     "the id 'a\\nb' contains a control character (\\n at byte 2)"},
    {"id_spelled_two_ways", kHeader + "42,2020-12-01,10\n 42,2020-12-02,10\n", "",
     "gifts.csv line 3, column 'donor_id': the id ' 42' is spelled differently on line 2"},
    {"events_id_with_nul", kOk, "--events events.csv", "events.csv line 2, column 'donor_id': the id '1\\0' contains a NUL byte",
     "donor_id,event_date,event_type\n" + with_nul("1~,2020-11-01,open\n")},
    {"attributes_id_not_utf8", kOk, "--attributes attributes.csv --categorical region",
     "attributes.csv line 2, column 'donor_id': the id '\\xFF' is not UTF-8", "", "donor_id,region\n\xFF,North\n"},
    {"table_id_not_utf8", "id,a\n\xFF,1\n2,3\n", "!table gifts.csv -o out.h5",
     "gifts.csv line 2, column 'id': the id '\\xFF' is not UTF-8"},
    // Raw bytes from a field are escaped in messages (the check after each run: no control byte).
    {"control_bytes_escaped", kOk + "3,2020-12-03,\x1b[31mred\n", "", "column 'amount': '\\x1B[31mred' is not a number"},
    // Duplicate column names: a feature or a column option would be ambiguous.
    {"table_duplicate_header", "id,x,x\n1,2,3\n2,3,4\n", "!table gifts.csv -o out.h5",
     "gifts.csv: the header has two columns named 'x' (columns 2 and 3); feature names must be unique"},
    {"gifts_duplicate_amount_column", "donor_id,gift_date,amount,amount\n1,2020-12-01,1,2\n", "",
     "gifts.csv: the header has two columns named 'amount' (columns 3 and 4)"},
    // Files that are not CSV text.
    {"xlsx_gifts", kZip, "", "gifts.csv: is a zip archive (an Excel .xlsx workbook or a zipped export), not CSV text; open it and save it as CSV"},
    {"xlsx_table", kZip, "!table gifts.csv -o out.h5", "gifts.csv: is a zip archive"},
    {"xlsx_events", kOk, "--events events.csv", "events.csv: is a zip archive", kZip},
    {"xls_gifts", with_nul("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1~~"), "", "an Excel 97-2003 workbook (.xls), not CSV text"},
    {"utf16_gifts", with_nul("\xFF\xFE" "d~o~n~"), "", "UTF-16 text"},
    // Decimal marks.
    {"decimal_comma_in_comma_file", kHeader + "1,2020-12-01,\"12,5\"\n", "",
     "'12,5' is not a number (with a decimal comma, pass --decimal ,)"},
    {"decimal_ambiguous_in_semicolon_file", "donor_id;gift_date;amount\n1;2020-12-01;1.234\n", "",
     "'1.234' is not a number (in a ';'-separated file '.' may be a decimal point or a thousands separator"},
    {"decimal_point_with_decimal_comma", kHeader + "1,2020-12-01,12.5\n", "--decimal ,",
     "'12.5' is not a number (the decimal mark is ','; pass --decimal . for a decimal point)"},
    {"decimal_unknown", kOk, "--decimal x", "--decimal x: use . or ,"},
    // Every row skipped: say so, with the first reason.
    {"all_rows_skipped", kHeader + "1,2020-12-01,x\n2,2020-12-02,y\n", "--on-bad-row skip",
     "gifts.csv: all 2 rows were skipped as bad: line 2, column 'amount': 'x' is not a number"},
    {"table_all_rows_skipped", "id,a\n1,2,3\n2,3,4\n", "!table gifts.csv -o out.h5 --on-bad-row skip",
     "gifts.csv: all 2 rows were skipped as bad: line 2: 3 fields, but the header has 2"},
    {"events_all_rows_skipped", kOk, "--events events.csv --on-bad-row skip",
     "events.csv: all 1 rows were skipped as bad: line 2: 2 fields", "donor_id,event_date,event_type\n1,2020-11-01\n"},
    {"excluded_not_csv", kOk, "--excluded excluded.txt", "unknown file type; use a name ending in .csv"},
    // synth.
    {"synth_no_donors", "", "!synth donors -n 0 -o out.csv", "-n 0: must be at least 1"},
    {"synth_blobs_k_above_n", "", "!synth blobs -n 3 -k 5 -o out.h5", "-k 5 is more than -n 3"},
};

INSTANTIATE_TEST_SUITE_P(Cases, PrepBadInput, ::testing::ValuesIn(kCases),
                         [](const auto& p) { return p.param.name; });

}  // namespace
