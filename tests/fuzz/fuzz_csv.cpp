// libFuzzer target: the CSV reader and segforge-prep's `table` and `rfm` pipelines (read, clean,
// transform, scale: what the tool does before writing features.h5), on CSV files made from the
// input. Property: no crash, hang or sanitizer report, and either an InputError / RuntimeFailure
// or a result whose every value is finite with consistent shapes.
//
// Input: byte 0 picks the options (below), the rest is the file. For rfm, lines "#--" split the
// rest into the gifts, events and attributes files.
//   bit 0  table (0) or rfm (1)        bit 1    --on-bad-row skip
//   bit 2  --keep-duplicates           bits 3-4 table: --missing error|median|mean|drop;
//   bit 5  --clip-quantile 0.99                 rfm: bit 3 --negatives drop, bit 4 --as-of 2012-01-01
//   bits 6-7  --scale standard|robust|none|standard with --no-log

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "segforge/error.hpp"
#include "segforge/prep.hpp"
#include "../../src/prep/csv_reader.hpp"

namespace {

using namespace segforge;
using namespace segforge::prep;
using segforge_fuzz::check;
using segforge_fuzz::check_finite;

void check_raw(const RawFeatures& f, const std::string& what) {
  const auto cols = static_cast<std::size_t>(f.values.cols());
  check(f.names.size() == cols, what + ": names do not match the columns");
  check(f.kinds.size() == cols, what + ": kinds do not match the columns");
  check(f.ids.empty() || f.ids.size() == f.values.rows(), what + ": ids do not match the rows");
  check_finite(f.values.data(), f.values.values().size(), what + " raw features");
}

void check_prepared(const Prepared& p, const std::string& what) {
  const auto cols = static_cast<std::size_t>(p.x.cols());
  check(p.x.rows() > 0 && p.x.cols() > 0, what + ": empty matrix without an InputError");
  check(p.names.size() == cols, what + ": names do not match the columns");
  check(p.ids.empty() || p.ids.size() == p.x.rows(), what + ": ids do not match the rows");
  check_finite(p.x.data(), p.x.values().size(), what + " matrix");
  check(p.scaler.mean.size() == cols && p.scaler.scale.size() == cols && p.scaler.transform.size() == cols,
        what + ": scaler lengths");
  check_finite(p.scaler.mean.data(), cols, what + " scaler mean");
  check_finite(p.scaler.scale.data(), cols, what + " scaler scale");
  for (std::size_t j = 0; j < cols; ++j) check(p.scaler.scale[j] > 0, what + ": scale <= 0");
  // Clip bounds are +-inf for unclipped features by design; never NaN, never inverted.
  for (std::size_t j = 0; j < p.scaler.clip_low.size(); ++j)
    check(p.scaler.clip_low[j] <= p.scaler.clip_high.at(j), what + ": clip bounds NaN or inverted");
}

TransformParams transform_params(std::uint8_t options) {
  TransformParams tp;
  tp.clip_quantile = (options & 0x20) ? 0.99 : 0.0;
  switch (options >> 6) {
    case 1: tp.scaling = Scaling::robust; break;
    case 2: tp.scaling = Scaling::none; break;
    case 3: tp.log = false; break;
    default: break;
  }
  return tp;
}

Prepared prepare(RawFeatures& raw, const TransformParams& tp) {
  Prepared prepared = transform(raw, tp);
  if (tp.weight_level_blocks && tp.scaling == Scaling::standard) weight_level_blocks(raw, prepared);
  return prepared;
}

void read_all_rows(const std::string& path) {
  CsvReader reader(path);
  std::int64_t last_line = 0;
  reader.for_each([&](const CsvRow& row) {
    // A bare CR inside a '\n' file ends a row too, so two rows can share a physical line.
    check(row.line >= 1 && row.end_line >= row.line && row.line >= last_line, "CsvReader line numbers");
    last_line = row.end_line;
    (void)row.hash();
    return true;
  });
}

void run_table(std::string_view text, std::uint8_t options) {
  const std::string path = segforge_fuzz::write_file("table.csv", text);
  TableParams p;
  p.path = path;
  p.on_bad_row = (options & 0x02) ? BadRows::skip : BadRows::error;
  p.drop_duplicates = !(options & 0x04);
  p.missing = static_cast<Missing>((options >> 3) & 3);
  read_all_rows(path);
  TableResult r = read_table(p);
  check_raw(r.features, "table");
  const Prepared prepared = prepare(r.features, transform_params(options));
  check_prepared(prepared, "table");
  (void)summary_items(r.summary);
  (void)table_items(r.summary);
  (void)describe_columns(r.summary);
}

void run_rfm(std::string_view text, std::uint8_t options) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t at = text.find("\n#--\n");
    if (at == std::string_view::npos || parts.size() == 2) break;
    parts.push_back(text.substr(0, at + 1));
    text.remove_prefix(at + 5);
  }
  parts.push_back(text);
  RfmParams p;
  p.gifts_path = segforge_fuzz::write_file("gifts.csv", parts[0]);
  if (parts.size() > 1) p.events_path = segforge_fuzz::write_file("events.csv", parts[1]);
  if (parts.size() > 2) p.attributes_path = segforge_fuzz::write_file("attributes.csv", parts[2]);
  p.on_bad_row = (options & 0x02) ? BadRows::skip : BadRows::error;
  p.drop_duplicates = !(options & 0x04);
  p.negatives = (options & 0x08) ? Negatives::drop : Negatives::net;
  if (options & 0x10) p.as_of = parse_date_option("2012-01-01", "--as-of");
  read_all_rows(p.gifts_path);
  RfmResult r = compute_rfm(p);
  check_raw(r.features, "rfm");
  const Prepared prepared = prepare(r.features, transform_params(options));
  check_prepared(prepared, "rfm");
  (void)summary_items(r.summary);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t options = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (options & 0x01)
      run_rfm(text, options);
    else
      run_table(text, options);
  } catch (const InputError&) {
  } catch (const RuntimeFailure&) {
  }
  // Anything else (InternalError, std::bad_alloc, std::out_of_range, ...) escapes and libFuzzer
  // reports it as a crash.
  return 0;
}
