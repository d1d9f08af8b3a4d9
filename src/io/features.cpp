// features.h5: /features float32 [n_samples x n_features] chunked by rows, /feature_names,
// /ids, /scaler and root attributes (DESIGN.md, "File formats"). Reading accepts any 2-D
// numeric dataset and converts it to float32 in row blocks.

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "atomic_file.hpp"
#include "checksum.hpp"
#include "feature_roles.hpp"
#include "hdf5_util.hpp"
#include <unordered_map>

#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/validate.hpp"

namespace segforge {

std::string Ids::str(std::int64_t i) const {
  if (!numeric.empty()) {
    SEGFORGE_ASSERT(i >= 0 && i < static_cast<std::int64_t>(numeric.size()),
                    "id index out of range");
    return std::to_string(numeric[static_cast<std::size_t>(i)]);
  }
  if (!text.empty()) {
    SEGFORGE_ASSERT(i >= 0 && i < static_cast<std::int64_t>(text.size()), "id index out of range");
    return text[static_cast<std::size_t>(i)];
  }
  return "";
}

std::string scaler_difference(const Scaler& a, const Scaler& b, const std::vector<std::string>& names,
                              const std::string& other) {
  auto close = [](double x, double y) {
    return x == y || std::abs(x - y) <= 1e-6 * std::max(std::abs(x), std::abs(y));
  };
  auto g6 = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return std::string(buf);
  };
  auto feature = [&](std::size_t j) { return "feature '" + (j < names.size() ? names[j] : std::to_string(j)) + "': "; };
  if (a.empty() != b.empty()) return a.empty() ? "it has no /scaler, " + other + " has one" : "it has a /scaler, " + other + " has none";
  if (a.mean.size() != b.mean.size()) return "another number of features";
  for (std::size_t j = 0; j < a.mean.size(); ++j) {
    if (a.transform[j] != b.transform[j])
      return feature(j) + "transform " + a.transform[j] + ", " + other + "'s " + b.transform[j];
    if (!close(a.mean[j], b.mean[j]) || !close(a.scale[j], b.scale[j]))
      return feature(j) + "mean " + g6(a.mean[j]) + " and scale " + g6(a.scale[j]) + ", " +
             other + "'s " + g6(b.mean[j]) + " and " + g6(b.scale[j]);
  }
  if (a.clip_low.empty() != b.clip_low.empty())
    return a.clip_low.empty() ? other + " is winsorized, it is not" : "it is winsorized, " + other + " is not";
  for (std::size_t j = 0; j < a.clip_low.size(); ++j)
    if (!close(a.clip_low[j], b.clip_low[j]) || !close(a.clip_high[j], b.clip_high[j]))
      return feature(j) + "other winsorizing bounds than " + other + "'s";
  return {};
}

RepeatedIds repeated_ids(const Ids& ids) {
  RepeatedIds out;
  auto scan = [&](const auto& values) {
    using T = typename std::decay_t<decltype(values)>::value_type;
    std::unordered_map<T, std::int64_t> first;  // id -> its first row
    first.reserve(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      const auto [it, fresh] = first.emplace(values[i], static_cast<std::int64_t>(i));
      if (fresh) continue;
      if (out.rows++ == 0) {
        out.first_row = it->second;
        out.repeat_row = static_cast<std::int64_t>(i);
        out.id = ids.str(static_cast<std::int64_t>(i));
      }
    }
  };
  if (!ids.numeric.empty()) scan(ids.numeric);
  else scan(ids.text);
  return out;
}

namespace io {

// ---- XXH64 (Collet, xxHash specification v0.8): four 64-bit lanes over 32-byte stripes ----

namespace {

constexpr std::uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;
constexpr std::uint64_t kP5 = 0x27D4EB2F165667C5ULL;

std::uint64_t load64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}
std::uint64_t load32(const unsigned char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}
std::uint64_t xxh_round(std::uint64_t acc, std::uint64_t input) {
  acc += input * kP2;
  acc = std::rotl(acc, 31);
  return acc * kP1;
}
std::uint64_t xxh_merge(std::uint64_t acc, std::uint64_t lane) {
  acc ^= xxh_round(0, lane);
  return acc * kP1 + kP4;
}

class Xxh64 {
 public:
  void update(const unsigned char* p, std::size_t n) {
    total_ += n;
    if (buffered_ > 0) {
      const std::size_t take = std::min(32 - buffered_, n);
      std::memcpy(buffer_.data() + buffered_, p, take);
      buffered_ += take;
      p += take;
      n -= take;
      if (buffered_ < 32) return;
      stripe(buffer_.data());
      buffered_ = 0;
    }
    for (; n >= 32; p += 32, n -= 32) stripe(p);
    if (n > 0) {
      std::memcpy(buffer_.data(), p, n);
      buffered_ = n;
    }
  }

  std::uint64_t digest() const {
    std::uint64_t h;
    if (total_ >= 32) {
      h = std::rotl(v_[0], 1) + std::rotl(v_[1], 7) + std::rotl(v_[2], 12) + std::rotl(v_[3], 18);
      for (std::uint64_t lane : v_) h = xxh_merge(h, lane);
    } else {
      h = kP5;  // seed 0
    }
    h += total_;
    const unsigned char* p = buffer_.data();
    std::size_t n = buffered_;
    for (; n >= 8; p += 8, n -= 8) {
      h ^= xxh_round(0, load64(p));
      h = std::rotl(h, 27) * kP1 + kP4;
    }
    if (n >= 4) {
      h ^= load32(p) * kP1;
      h = std::rotl(h, 23) * kP2 + kP3;
      p += 4;
      n -= 4;
    }
    for (; n > 0; ++p, --n) {
      h ^= static_cast<std::uint64_t>(*p) * kP5;
      h = std::rotl(h, 11) * kP1;
    }
    h ^= h >> 33;
    h *= kP2;
    h ^= h >> 29;
    h *= kP3;
    h ^= h >> 32;
    return h;
  }

 private:
  void stripe(const unsigned char* p) {
    for (int lane = 0; lane < 4; ++lane) v_[lane] = xxh_round(v_[lane], load64(p + 8 * lane));
  }

  std::array<std::uint64_t, 4> v_ = {kP1 + kP2, kP2, 0, 0 - kP1};
  std::array<unsigned char, 32> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace

std::uint64_t xxh64(const void* data, std::size_t size) {
  Xxh64 hash;
  hash.update(static_cast<const unsigned char*>(data), size);
  return hash.digest();
}

std::string file_checksum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open for reading; check its permissions");
  std::vector<char> block(std::size_t{4} << 20);
  Xxh64 hash;
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const std::streamsize got = in.gcount();
    if (got > 0)
      hash.update(reinterpret_cast<const unsigned char*>(block.data()),
                  static_cast<std::size_t>(got));
  }
  if (in.bad())
    throw InputError(path + ": read error while computing its checksum; check the file");
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash.digest()));
  return hex;
}

namespace {

/// The root's /feature_names, /ids and /scaler describe /features. Another matrix (--dataset,
/// e.g. a /pca [N x 3] stored beside /features [N x 9]) uses them where their lengths fit it and
/// goes without where they do not; for /features itself a misfit stays an error.
struct RootFit {
  bool names = true, ids = true, scaler = true, roles = true;
};

RootFit root_metadata_fit(hid_t file, const std::string& matrix, std::int64_t rows, std::int64_t cols) {
  RootFit fit;
  if (matrix == "/features") return fit;
  auto length_is = [&](const std::string& object, std::int64_t want) {
    if (!io::object_exists(file, object) || io::group_exists(file, object)) return true;
    io::Hid dataset = io::dataset_id(H5Dopen2(file, object.c_str(), H5P_DEFAULT));
    if (!dataset.valid()) return true;  // the reader names the fault
    const std::vector<hsize_t> dims = io::extent(dataset);
    return dims.size() != 1 || static_cast<std::int64_t>(dims[0]) == want;
  };
  fit.names = length_is("/feature_names", cols);
  fit.ids = length_is("/ids", rows);
  fit.scaler = length_is("/scaler/mean", cols);
  fit.roles = length_is("/feature_roles", cols);
  return fit;
}

const char* const kDatasetHint = "pass --dataset PATH to name the matrix";
const char* const kShape = "[n_samples x n_features]";

std::vector<std::string> default_names(std::int64_t n) {
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; j < n; ++j) names.push_back("f" + std::to_string(j));
  return names;
}

std::string describe_bad_value(float v, const std::string& dtype) {
  if (std::isnan(v)) return "NaN";
  std::string text = v > 0 ? "+Inf" : "-Inf";
  // HDF5 turns float64 values beyond float32's range into Inf on conversion.
  if (dtype == "float64") text += " (or a float64 value beyond float32's range)";
  return text;
}

/// /ids of the file's rows [first, first + count) (a part read): integer ids by a hyperslab;
/// string ids, and the messages for ids of the wrong dtype or length, as for a whole read,
/// then sliced.
Ids read_id_range(hid_t file, const std::string& path, std::int64_t n_rows,
                  const std::string& matrix, std::int64_t first, std::int64_t count) {
  const std::string object = "/ids";
  if (!object_exists(file, object)) return {};
  {
    Hid dataset = open_dataset(file, path, object, "remove it or store one id per row");
    Hid type = type_id(H5Dget_type(dataset));
    const std::vector<hsize_t> dims = extent(dataset);
    if (type.valid() && type_class(type) == TypeClass::integer && dims.size() == 1 &&
        static_cast<std::int64_t>(dims[0]) == n_rows) {
      Ids ids;
      ids.numeric = read_int64_range(dataset, path, object, first, count, kIdsTooBig);
      return ids;
    }
  }
  Ids all = read_ids(file, path, n_rows, matrix);
  Ids ids;
  if (!all.numeric.empty())
    ids.numeric.assign(all.numeric.begin() + first, all.numeric.begin() + first + count);
  else
    ids.text.assign(std::make_move_iterator(all.text.begin() + first),
                    std::make_move_iterator(all.text.begin() + first + count));
  return ids;
}

}  // namespace

std::vector<std::string> read_feature_roles(hid_t file, const std::string& path) {
  const std::string object = "/feature_roles";
  if (!object_exists(file, object)) return {};
  Hid dataset = open_dataset(file, path, object, "remove it or store one role per column");
  Hid type = type_id(H5Dget_type(dataset));
  if (!type.valid() || type_class(type) != TypeClass::string)
    throw InputError(where(path, object) + ": dtype " + (type.valid() ? dtype_name(type) : "?") +
                     " is not text; store one role word per column (recency, tenure, frequency, monetary, "
                     "engagement, other) or remove " + object);
  return read_strings(dataset, path, object);
}

void write_feature_roles(hid_t file, const std::vector<std::string>& roles, const std::string& path) {
  if (!roles.empty()) write_strings(file, "feature_roles", roles, path);
}

}  // namespace io

FeatureFileInfo inspect_features(const std::string& path, const std::string& dataset) {
  io::Hid file = io::open_for_read(path);
  const std::string object = io::absolute_object(dataset.empty() ? "/features" : dataset);
  io::MatrixInfo m = io::open_matrix(file, path, object, io::kDatasetHint, io::kShape);
  FeatureFileInfo info;
  info.path = path;
  info.dataset = object;
  info.n_samples = m.rows;
  info.n_features = m.cols;
  info.dtype = m.dtype;
  const io::RootFit fit = io::root_metadata_fit(file, object, m.rows, m.cols);
  if (fit.names) info.feature_names = io::read_feature_names(file, path, m.cols, object);
  if (info.feature_names.empty()) info.feature_names = io::default_names(m.cols);
  info.attributes = io::read_attributes(file);
  if (fit.roles && fit.names) info.feature_roles = io::read_feature_roles(file, path);
  validate_feature_roles(info.feature_roles, m.cols, path, FileKind::features);
  if (const auto a = info.attributes.find("audience"); a != info.attributes.end())
    validate_audience(a->second, path, FileKind::features);
  info.has_ids = fit.ids && io::object_exists(file, "/ids");
  info.has_scaler = fit.scaler && io::object_exists(file, "/scaler");
  return info;
}

Features read_features(const std::string& path, const ReadOptions& options) {
  io::Hid file = io::open_for_read(path);
  const std::string object =
      io::absolute_object(options.dataset.empty() ? "/features" : options.dataset);
  const std::string at = io::where(path, object);
  io::MatrixInfo m = io::open_matrix(file, path, object, io::kDatasetHint, io::kShape);
  if (m.rows == 0) throw InputError(at + ": 0 rows; nothing to cluster");
  if (m.cols == 0) throw InputError(at + ": 0 columns; store at least one feature per row");

  Features features;
  features.path = path;
  features.dataset = object;
  const io::RootFit fit = io::root_metadata_fit(file, object, m.rows, m.cols);
  if (fit.names) features.feature_names = io::read_feature_names(file, path, m.cols, object);
  validate_feature_names(features.feature_names, m.cols, path, FileKind::features);
  if (features.feature_names.empty()) features.feature_names = io::default_names(m.cols);
  // The rows to read: all, or one part [row_begin, row_end) (an MPI rank's).
  SEGFORGE_ASSERT(options.row_begin >= 0 && options.row_begin <= m.rows,
                  "read_features: row_begin out of range");
  const std::int64_t row_end =
      options.row_count < 0 ? m.rows : std::min(m.rows, options.row_begin + options.row_count);
  const std::int64_t row_begin = options.row_begin;
  const bool part = row_begin != 0 || row_end != m.rows;
  const std::int64_t n_part = row_end - row_begin;
  Ids ids = !fit.ids ? Ids{}
            : part  ? io::read_id_range(file, path, m.rows, object, row_begin, n_part)
                    : io::read_ids(file, path, m.rows, object);
  if (fit.scaler) features.scaler = io::read_scaler(file, path, m.cols);
  validate_scaler(features.scaler, m.cols, path, FileKind::features);
  if (fit.roles && fit.names) features.feature_roles = io::read_feature_roles(file, path);
  validate_feature_roles(features.feature_roles, m.cols, path, FileKind::features);
  {
    const auto attributes = io::read_attributes(file);
    if (const auto a = attributes.find("audience"); a != attributes.end()) features.audience = a->second;
    validate_audience(features.audience, path, FileKind::features);
  }

  if (!options.rows_in_memory) {
    // Out of core: everything but the rows, which the caller streams (open_hdf5_rows).
    if (options.nan_policy == NanPolicy::drop)
      throw InputError(at + ": --nan-policy drop needs the rows in memory, and they do not fit "
                       "--memory-budget; clean the NaN/Inf rows first or raise the budget");
    features.x = Matrix<float>(0, m.cols);
    features.disk_rows = n_part;
    features.first_row = row_begin;
    features.n_rows_total = m.rows;
    features.ids = std::move(ids);
    file.reset();
    if (options.checksum) features.checksum = io::file_checksum(path);
    return features;
  }

  // Rows are read block by block straight into place; under NanPolicy::drop the kept rows are
  // compacted as they arrive (a kept row only ever moves towards the front). kept_rows holds
  // positions within the part.
  const std::int64_t d = m.cols;
  const std::int64_t block = std::max<std::int64_t>(1, options.rows_per_read);
  // Uninitialised: the reads below are the rows' first touch (Matrix::Storage).
  Matrix<float>::Storage values;
  values.resize(static_cast<std::size_t>(n_part * d));
  std::vector<std::int64_t> kept_rows;  // filled only once a row has been dropped
  std::int64_t kept = 0;
  for (std::int64_t first = row_begin; first < row_end; first += block) {
    const std::int64_t count = std::min(block, row_end - first);
    float* dst = values.data() + kept * d;
    io::read_rows(m, path, object, first, count, dst);
    if (kept_rows.empty() && kept == first - row_begin && io::all_finite(dst, count * d)) {
      kept += count;  // every row kept where it was read: the whole block at once
      continue;
    }
    for (std::int64_t i = 0; i < count; ++i) {
      const float* row = dst + i * d;
      const float* bad = std::find_if(row, row + d, [](float v) { return !std::isfinite(v); });
      const std::int64_t r = first + i;  // the file's row, for messages
      const std::int64_t p = r - row_begin;
      if (bad == row + d) {
        if (!kept_rows.empty() || kept != p) {
          if (kept_rows.empty())
            for (std::int64_t k = 0; k < kept; ++k) kept_rows.push_back(k);
          kept_rows.push_back(p);
        }
        float* target = values.data() + kept * d;
        if (target != row) std::memmove(target, row, static_cast<std::size_t>(d) * sizeof(float));
        ++kept;
        continue;
      }
      if (options.nan_policy == NanPolicy::error) {
        const auto column = static_cast<std::size_t>(bad - row);
        throw InputError(at + " row " + std::to_string(r) +
                         " (0-based): " + io::describe_bad_value(*bad, m.dtype) + " in column '" +
                         features.feature_names[column] + "'; clean it or pass --nan-policy drop");
      }
    }
  }
  if (kept == 0 && !part)
    throw InputError(at + ": all " + std::to_string(m.rows) +
                     " rows have NaN or Inf; nothing to cluster");
  values.resize(static_cast<std::size_t>(kept * d));
  features.x = Matrix<float>(kept, d, std::move(values));
  features.n_dropped = n_part - kept;
  features.first_row = row_begin;
  features.n_rows_total = m.rows - features.n_dropped;

  // Without /ids, outputs number rows by position; once rows are dropped, positions no longer
  // match the file's rows, so under NanPolicy::drop the kept rows' 0-based file row numbers
  // become their ids (every part alike, whether or not it dropped a row: MPI gathers them).
  if (kept != n_part || (ids.empty() && options.nan_policy == NanPolicy::drop)) {
    if (kept_rows.empty())  // every dropped row came after the last kept one, or none was dropped
      for (std::int64_t k = 0; k < kept; ++k) kept_rows.push_back(k);
    Ids filtered;
    for (std::int64_t r : kept_rows) {
      if (ids.empty())
        filtered.numeric.push_back(row_begin + r);
      else if (!ids.numeric.empty())
        filtered.numeric.push_back(ids.numeric[static_cast<std::size_t>(r)]);
      else
        filtered.text.push_back(std::move(ids.text[static_cast<std::size_t>(r)]));
    }
    ids = std::move(filtered);
  }
  features.ids = std::move(ids);
  file.reset();
  if (options.checksum) features.checksum = io::file_checksum(path);
  return features;
}

Scaler read_scaler(const std::string& path, const std::string& dataset) {
  io::Hid file = io::open_for_read(path);
  const std::string object = io::absolute_object(dataset.empty() ? "/features" : dataset);
  const io::MatrixInfo m = io::open_matrix(file, path, object, io::kDatasetHint, io::kShape);
  if (!io::root_metadata_fit(file, object, m.rows, m.cols).scaler) return {};
  Scaler scaler = io::read_scaler(file, path, m.cols);
  validate_scaler(scaler, m.cols, path, FileKind::features);
  return scaler;
}

Matrix<float> read_extra_matrix(const std::string& path, const std::string& dataset) {
  io::Hid file = io::open_for_read(path);
  const std::string object = io::absolute_object(dataset);
  const io::MatrixInfo m =
      io::open_matrix(file, path, object, "check the dataset's name", "[rows x cols]");
  Matrix<float> out(m.rows, m.cols);
  if (out.size() > 0) io::read_rows(m, path, object, 0, m.rows, out.data());
  return out;
}

std::vector<std::int32_t> read_extra_int32s(const std::string& path, const std::string& dataset) {
  io::Hid file = io::open_for_read(path);
  const std::string object = io::absolute_object(dataset);
  const std::string at = io::where(path, object);
  io::Hid data = io::open_dataset(file, path, object, "check the dataset's name");
  io::Hid type = io::type_id(H5Dget_type(data));
  if (!type.valid() || io::type_class(type) != io::TypeClass::integer)
    throw InputError(at + ": dtype " + (type.valid() ? io::dtype_name(type) : "?") +
                     " is not an integer type; store it as int32");
  const auto dims = io::extent(data);
  if (dims.size() != 1)
    throw InputError(at + ": expected 1-D [n], got " + io::describe_shape(dims));
  const std::vector<std::int64_t> wide = io::read_int64s(data, path, object);
  std::vector<std::int32_t> out(wide.size());
  for (std::size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < INT32_MIN || wide[i] > INT32_MAX)
      throw InputError(at + " row " + std::to_string(i) + " (0-based): " +
                       std::to_string(wide[i]) + " does not fit int32");
    out[i] = static_cast<std::int32_t>(wide[i]);
  }
  return out;
}

std::vector<double> read_extra_doubles(const std::string& path, const std::string& dataset) {
  io::Hid file = io::open_for_read(path);
  const std::string object = io::absolute_object(dataset);
  const std::string at = io::where(path, object);
  io::Hid data = io::open_dataset(file, path, object, "check the dataset's name");
  io::Hid type = io::type_id(H5Dget_type(data));
  if (!type.valid() || (io::type_class(type) != io::TypeClass::integer &&
                        io::type_class(type) != io::TypeClass::floating))
    throw InputError(at + ": dtype " + (type.valid() ? io::dtype_name(type) : "?") +
                     " is not numeric; store it as float32 or float64");
  const auto dims = io::extent(data);
  if (dims.size() != 1)
    throw InputError(at + ": expected 1-D [n], got " + io::describe_shape(dims));
  return io::read_doubles(data, path, object);
}

void write_features(const std::string& path, MatrixView<const float> x,
                    const std::vector<std::string>& feature_names, const Ids& ids,
                    const Scaler& scaler, const std::map<std::string, std::string>& attributes,
                    const FeatureExtras& extras, const std::vector<std::string>& feature_roles) {
  SEGFORGE_ASSERT(x.rows >= 0 && x.cols >= 0, "negative matrix shape");
  SEGFORGE_ASSERT(
      feature_names.empty() || static_cast<std::int64_t>(feature_names.size()) == x.cols,
      "feature_names must have one name per column");
  SEGFORGE_ASSERT(ids.empty() || ids.size() == x.rows, "ids must have one entry per row");
  SEGFORGE_ASSERT(scaler.empty() || static_cast<std::int64_t>(scaler.mean.size()) == x.cols,
                  "scaler must have one entry per column");
  SEGFORGE_ASSERT(feature_roles.empty() || static_cast<std::int64_t>(feature_roles.size()) == x.cols,
                  "feature_roles must have one role per column");
  auto extra_name_ok = [](const std::string& name) {
    return !name.empty() && name.find('/') == std::string::npos && name != "features" &&
           name != "feature_names" && name != "ids" && name != "scaler" && name != "feature_roles";
  };
  for (const auto& [name, m] : extras.matrices) {
    SEGFORGE_ASSERT(extra_name_ok(name), "extra dataset name is empty, has '/' or is reserved");
    SEGFORGE_ASSERT(m.rows >= 0 && m.cols >= 0, "negative extra matrix shape");
  }
  for (const auto& [name, v] : extras.int32s) {
    SEGFORGE_ASSERT(extra_name_ok(name), "extra dataset name is empty, has '/' or is reserved");
    SEGFORGE_ASSERT(extras.matrices.count(name) == 0, "extra dataset name used twice");
  }
  io::TempOutput out(path);
  {
    io::Hid file = io::create_file(out.temp_path(), path);
    const auto rows = static_cast<hsize_t>(x.rows);
    const auto cols = static_cast<hsize_t>(x.cols);
    // Contiguous: any block of rows is one range of bytes, which readers take with one pread
    // (io::read_rows) and h5py with one read.
    io::write_dataset(file, "features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {rows, cols}, x.data, path);
    io::write_strings(file, "feature_names",
                      feature_names.empty() ? io::default_names(x.cols) : feature_names, path);
    io::write_ids(file, ids, path);
    io::write_scaler(file, scaler, path);
    io::write_feature_roles(file, feature_roles, path);
    for (const auto& [name, m] : extras.matrices)
      io::write_dataset(file, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                        {static_cast<hsize_t>(m.rows), static_cast<hsize_t>(m.cols)}, m.data, path);
    for (const auto& [name, v] : extras.int32s)
      io::write_dataset(file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, {static_cast<hsize_t>(v.size())},
                        v.data(), path);
    io::write_root_attributes(file, "segforge-features", attributes, path);
    if (!file.close()) io::write_failed(path, "the file (closing it)");
  }
  out.commit();
}

}  // namespace segforge
