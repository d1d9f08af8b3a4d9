// Labels: labels.h5 (/labels int32 [N], /distances float32 [N], /ids) and segments.csv
// (id,segment,segment_name,distance; RFC 4180 quoting) for CRM import.

#include <cmath>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

#include "atomic_file.hpp"
#include "hdf5_util.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"

namespace segforge {

namespace {

constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

bool needs_quotes(const std::string& field) {
  return field.find_first_of(",\"\r\n") != std::string::npos;
}

void append_field(std::string& out, const std::string& field) {
  if (!needs_quotes(field)) {
    out += field;
    return;
  }
  out += '"';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

/// A text field bound for a spreadsheet or CRM import: one that a spreadsheet would run as a
/// formula (first character =, +, -, @, tab or carriage return; OWASP "CSV Injection") gets a
/// leading apostrophe, which spreadsheets show as text. Plain numbers such as "-5" or "+3.5" are
/// not formulas and stay as they are. labels.h5 keeps the raw value.
bool formula_like(const std::string& field) {
  if (field.empty()) return false;
  const char c = field.front();
  if (c == '\t' || c == '\r' || c == '=' || c == '@') return true;
  if (c != '+' && c != '-') return false;
  std::size_t i = 1, digits = 0;
  while (i < field.size() && std::isdigit(static_cast<unsigned char>(field[i]))) ++i, ++digits;
  if (i < field.size() && field[i] == '.') {
    ++i;
    while (i < field.size() && std::isdigit(static_cast<unsigned char>(field[i]))) ++i, ++digits;
  }
  return !(digits > 0 && i == field.size());
}

void append_spreadsheet_field(std::string& out, const std::string& field) {
  append_field(out, formula_like(field) ? "'" + field : field);
}

template <class T>
void append_number(std::string& out, T value) {
  char buf[32];
  auto result = std::to_chars(buf, buf + sizeof buf, value);  // floats: shortest round-trip form
  out.append(buf, result.ptr);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

/// One RFC 4180 record: fields separated by commas, optionally in double quotes ("" inside
/// quotes is one quote); a quoted field may span lines. Returns the number of fields (0 at end
/// of input); `fields` is reused between calls.
std::size_t read_record(std::istream& in, const std::string& path, std::int64_t& line_no,
                        std::string& line, std::vector<std::string>& fields) {
  if (!std::getline(in, line)) return 0;
  ++line_no;
  const std::int64_t first_line = line_no;
  std::size_t n = 0;
  auto next_field = [&]() -> std::string& {
    if (n == fields.size()) fields.emplace_back();
    fields[n].clear();
    return fields[n++];
  };
  std::string* field = &next_field();
  bool in_quotes = false;
  bool was_quoted = false;
  std::size_t i = 0;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  for (;;) {
    if (i == line.size()) {
      if (!in_quotes) break;
      if (!std::getline(in, line))
        throw InputError(path + " line " + std::to_string(first_line) +
                         ": a quoted field is never closed; check the quotes");
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      *field += '\n';
      i = 0;
      continue;
    }
    const char c = line[i++];
    if (in_quotes) {
      if (c != '"') {
        *field += c;
      } else if (i < line.size() && line[i] == '"') {
        *field += '"';
        ++i;
      } else {
        in_quotes = false;
      }
    } else if (c == ',') {
      field = &next_field();
      was_quoted = false;
    } else if (c == '"' && field->empty() && !was_quoted) {
      in_quotes = true;
      was_quoted = true;
    } else {
      *field += c;
    }
  }
  return n;
}

std::vector<std::int32_t> read_labels_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw InputError(path + ": cannot open for reading (" + std::strerror(errno) +
                     "); check the path and its permissions");
  std::string line;
  std::vector<std::string> fields;
  std::int64_t line_no = 0;
  const std::size_t n_header = read_record(in, path, line_no, line, fields);
  if (n_header == 0)
    throw InputError(path + ": empty file; expected a header line with a 'segment' column");
  std::vector<std::string> header(fields.begin(),
                                  fields.begin() + static_cast<std::ptrdiff_t>(n_header));
  if (header[0].rfind("\xEF\xBB\xBF", 0) == 0) header[0].erase(0, 3);  // UTF-8 byte-order mark
  std::size_t column = n_header;
  for (std::size_t j = 0; j < n_header; ++j) {
    header[j] = trim(header[j]);
    if (column == n_header && lower(header[j]) == "segment") column = j;
  }
  if (column == n_header) {
    std::string found;
    for (std::size_t j = 0; j < n_header; ++j) found += (j > 0 ? ", " : "") + header[j];
    throw InputError(path + ": no column 'segment' (found: " + found +
                     "); expected the header id,segment,segment_name,distance");
  }

  std::vector<std::int32_t> labels;
  for (;;) {
    const std::size_t n = read_record(in, path, line_no, line, fields);
    if (n == 0) break;
    if (n == 1 && fields[0].empty()) continue;  // blank line
    const std::string at = path + " line " + std::to_string(line_no);
    if (n != n_header)
      throw InputError(at + ": " + std::to_string(n) + " fields, the header has " +
                       std::to_string(n_header) + "; check the quoting of ids and names");
    const std::string value = trim(fields[column]);
    std::int64_t label = 0;
    const auto result = std::from_chars(value.data(), value.data() + value.size(), label);
    if (value.empty() || result.ec != std::errc() || result.ptr != value.data() + value.size())
      throw InputError(at + ": segment '" + value + "' is not an integer; store segment numbers");
    if (label < std::numeric_limits<std::int32_t>::min() ||
        label > std::numeric_limits<std::int32_t>::max())
      throw InputError(at + ": segment " + value + " does not fit int32; store segment numbers");
    labels.push_back(static_cast<std::int32_t>(label));
  }
  if (in.bad())
    throw InputError(path + ": read error after line " + std::to_string(line_no) +
                     "; check the file");
  return labels;
}

/// /labels and, when the file has them, its /ids, checked by the features reader's rules
/// (io::read_ids: integer or UTF-8 text, uint64 within int64, one per label) whether or not the
/// caller wants them: a labels file whose ids are wrong is refused by every command that reads it.
std::vector<std::int32_t> read_labels_h5(const std::string& path, Ids* ids_out = nullptr) {
  io::Hid file = io::open_for_read(path);
  const std::string object = "/labels";
  const std::string at = io::where(path, object);
  io::Hid dataset = io::open_dataset(file, path, object,
                                     "expected a labels file written by segforge fit or predict");
  io::Hid type = io::type_id(H5Dget_type(dataset));
  if (!type.valid() || io::type_class(type) != io::TypeClass::integer)
    throw InputError(at + ": dtype " + (type.valid() ? io::dtype_name(type) : "?") +
                     " is not an integer type; store the labels as integers (int32)");
  const auto dims = io::extent(dataset);
  if (dims.size() != 1)
    throw InputError(at + ": expected 1-D [n_samples], got " + io::describe_shape(dims));
  const std::vector<std::int64_t> wide = io::read_int64s(dataset, path, object);
  std::vector<std::int32_t> labels(wide.size());
  for (std::size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < std::numeric_limits<std::int32_t>::min() ||
        wide[i] > std::numeric_limits<std::int32_t>::max())
      throw InputError(at + " row " + std::to_string(i) + " (0-based): label " +
                       std::to_string(wide[i]) + " does not fit int32; store segment numbers");
    labels[i] = static_cast<std::int32_t>(wide[i]);
  }
  Ids ids = io::read_ids(file, path, static_cast<std::int64_t>(labels.size()), object);
  if (ids_out != nullptr) *ids_out = std::move(ids);
  return labels;
}

}  // namespace

void write_labels_h5(const std::string& path, std::span<const std::int32_t> labels,
                     std::span<const float> distances, const Ids& ids) {
  SEGFORGE_ASSERT(labels.size() == distances.size(), "labels and distances differ in length");
  SEGFORGE_ASSERT(ids.empty() || ids.size() == static_cast<std::int64_t>(labels.size()),
                  "ids must have one entry per label");
  io::TempOutput out(path);
  {
    io::Hid file = io::create_file(out.temp_path(), path);
    const hsize_t n = labels.size();
    io::write_dataset(file, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, labels.data(), path);
    io::write_dataset(file, "distances", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n}, distances.data(),
                      path);
    io::write_ids(file, ids, path);
    io::write_root_attributes(file, "segforge-labels", {}, path);
    if (!file.close()) io::write_failed(path, "the file (closing it)");
  }
  out.commit();
}

void write_silhouette_samples(const std::string& path, std::span<const double> values,
                              std::span<const std::int64_t> rows,
                              std::span<const std::int32_t> labels, const Ids& ids) {
  SEGFORGE_ASSERT(rows.empty() || rows.size() == values.size(), "rows and values differ in length");
  SEGFORGE_ASSERT(labels.size() == values.size(), "labels and values differ in length");
  io::TempOutput out(path);
  {
    io::Hid file = io::create_file(out.temp_path(), path);
    const hsize_t n = values.size();
    io::write_dataset(file, "silhouette", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {n}, values.data(), path);
    io::write_dataset(file, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, labels.data(), path);
    if (!rows.empty())
      io::write_dataset(file, "rows", H5T_STD_I64LE, H5T_NATIVE_INT64, {n}, rows.data(), path);
    Ids picked;
    for (std::size_t i = 0; i < values.size() && !ids.empty(); ++i) {
      const auto row = rows.empty() ? static_cast<std::int64_t>(i) : rows[i];
      if (!ids.numeric.empty()) picked.numeric.push_back(ids.numeric[row]);
      else picked.text.push_back(ids.text[row]);
    }
    io::write_ids(file, picked, path);
    io::write_root_attributes(file, "segforge-silhouette", {}, path);
    if (!file.close()) io::write_failed(path, "the file (closing it)");
  }
  out.commit();
}

void write_segments_csv(const std::string& path, std::span<const std::int32_t> labels,
                        std::span<const float> distances, const Ids& ids,
                        const std::vector<std::string>& segment_names) {
  SEGFORGE_ASSERT(labels.size() == distances.size(), "labels and distances differ in length");
  SEGFORGE_ASSERT(ids.empty() || ids.size() == static_cast<std::int64_t>(labels.size()),
                  "ids must have one entry per label");
  io::TempOutput out(path);
  {
    const int fd = out.create_exclusive();
    struct Closer {  // on an exception: the descriptor, not a second error
      int fd;
      ~Closer() { if (fd >= 0) ::close(fd); }
    } file{fd};
    std::vector<std::string> quoted_names;  // quoted once, not once per row
    quoted_names.reserve(segment_names.size());
    for (const auto& name : segment_names) {
      std::string q;
      append_spreadsheet_field(q, name);
      quoted_names.push_back(std::move(q));
    }
    std::string buf;
    buf.reserve(kFlushBytes + 4096);
    buf += "id,segment,segment_name,distance\n";
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (ids.empty())
        append_number(buf, static_cast<std::int64_t>(i));
      else if (!ids.numeric.empty())
        append_number(buf, ids.numeric[i]);
      else
        append_spreadsheet_field(buf, ids.text[i]);
      buf += ',';
      append_number(buf, labels[i]);
      buf += ',';
      if (labels[i] >= 0 && static_cast<std::size_t>(labels[i]) < quoted_names.size())
        buf += quoted_names[static_cast<std::size_t>(labels[i])];
      else if (labels[i] == -1)
        buf += kOutliersName;  // DBSCAN's noise: a segment the CRM can see
      buf += ',';
      if (!std::isnan(distances[i])) append_number(buf, distances[i]);  // noise: no core row within eps
      buf += '\n';
      if (buf.size() >= kFlushBytes) {
        io::write_all(fd, buf.data(), buf.size(), path);
        buf.clear();
      }
    }
    io::write_all(fd, buf.data(), buf.size(), path);
    file.fd = -1;
    io::close_checked(fd, path);
  }
  out.commit();
}

std::vector<std::int32_t> read_labels(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string ext = lower(p.extension().string());
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) throw InputError(path + ": no such file; check the path");
  if (ext == ".h5" || ext == ".hdf5" || ext == ".hdf" || ext == ".he5") return read_labels_h5(path);
  if (ext == ".csv") return read_labels_csv(path);
  const std::string shown = ext.empty() ? "(no extension)" : "'" + p.extension().string() + "'";
  throw InputError(path + ": unknown labels format " + shown +
                   "; pass a labels.h5 (/labels) or segments.csv (column 'segment') file");
}

Ids read_label_ids(const std::string& path) {
  // The /ids stored beside /labels by segforge fit --labels and predict (one per label).
  Ids ids;
  read_labels_h5(path, &ids);
  return ids;
}

}  // namespace segforge
