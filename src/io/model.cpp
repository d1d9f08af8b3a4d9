// model.h5: /centroids float32 [n_clusters x n_features], copies of /feature_names and
// /scaler, /segments/names and /segments/sizes, /counts for mini-batch, and the run's
// provenance as root attributes. A bare file holding only /centroids is a valid model (--init).

#include <algorithm>
#include <cmath>

#include "atomic_file.hpp"
#include "hdf5_util.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"

namespace segforge {

void write_model(const std::string& path, const Model& model) {
  const std::int64_t k = model.centroids.rows();
  const std::int64_t d = model.centroids.cols();
  auto fits = [](std::size_t n, std::int64_t want) {
    return n == 0 || static_cast<std::int64_t>(n) == want;
  };
  SEGFORGE_ASSERT(fits(model.feature_names.size(), d), "model feature_names must match n_features");
  SEGFORGE_ASSERT(fits(model.scaler.mean.size(), d), "model scaler must match n_features");
  SEGFORGE_ASSERT(fits(model.segment_names.size(), k), "segment_names must match n_clusters");
  SEGFORGE_ASSERT(fits(model.segment_sizes.size(), k), "segment_sizes must match n_clusters");
  SEGFORGE_ASSERT(fits(model.counts.size(), k), "counts must match n_clusters");

  io::TempOutput out(path);
  {
    io::Hid file = io::create_file(out.temp_path(), path);
    io::write_dataset(file, "centroids", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                      {static_cast<hsize_t>(k), static_cast<hsize_t>(d)}, model.centroids.data(),
                      path);
    if (!model.feature_names.empty())
      io::write_strings(file, "feature_names", model.feature_names, path);
    io::write_scaler(file, model.scaler, path);
    if (!model.segment_names.empty() || !model.segment_sizes.empty()) {
      io::Hid segments = io::create_group(file, "segments", path);
      if (!model.segment_names.empty())
        io::write_strings(segments, "names", model.segment_names, path);
      if (!model.segment_sizes.empty())
        io::write_dataset(segments, "sizes", H5T_STD_I64LE, H5T_NATIVE_INT64,
                          {static_cast<hsize_t>(k)}, model.segment_sizes.data(), path);
    }
    if (!model.counts.empty())
      io::write_dataset(file, "counts", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                        {static_cast<hsize_t>(k)}, model.counts.data(), path);
    io::write_root_attributes(file, "segforge-model", model.attributes, path);
    if (!file.close()) io::write_failed(path, "the file (closing it)");
  }
  out.commit();
}

Model read_model(const std::string& path) {
  io::Hid file = io::open_for_read(path);
  const std::string object = "/centroids";
  const std::string at = io::where(path, object);
  io::MatrixInfo m = io::open_matrix(
      file, path, object,
      "pass a model written by segforge fit (or a file with /centroids [n_clusters x n_features])",
      "[n_clusters x n_features]");
  if (m.rows == 0) throw InputError(at + ": 0 centres; a model needs at least one");
  if (m.cols == 0) throw InputError(at + ": 0 columns; a model needs at least one feature");

  Model model;
  model.centroids = Matrix<float>(m.rows, m.cols);
  io::read_rows(m, path, object, 0, m.rows, model.centroids.data());
  const auto& v = model.centroids.values();
  const auto bad = std::find_if(v.begin(), v.end(), [](float x) { return !std::isfinite(x); });
  if (bad != v.end()) {
    const auto index = bad - v.begin();
    throw InputError(at + " row " + std::to_string(index / m.cols) + " (0-based), column " +
                     std::to_string(index % m.cols) + ": " + (std::isnan(*bad) ? "NaN" : "Inf") +
                     " in a centre; refit the model or fix the file");
  }

  model.feature_names = io::read_feature_names(file, path, m.cols, object);
  model.scaler = io::read_scaler(file, path, m.cols);
  auto check_length = [&](std::size_t n, const std::string& name) {
    if (static_cast<std::int64_t>(n) != m.rows)
      throw InputError(io::where(path, name) + ": " + std::to_string(n) + " values for " +
                       std::to_string(m.rows) + " centres in /centroids; store one per centre");
  };
  if (io::object_exists(file, "/segments/names")) {
    io::Hid names = io::open_dataset(file, path, "/segments/names", "store one name per centre");
    model.segment_names = io::read_strings(names, path, "/segments/names");
    check_length(model.segment_names.size(), "/segments/names");
  }
  if (io::object_exists(file, "/segments/sizes")) {
    io::Hid sizes = io::open_dataset(file, path, "/segments/sizes", "store one size per centre");
    model.segment_sizes = io::read_int64s(sizes, path, "/segments/sizes");
    check_length(model.segment_sizes.size(), "/segments/sizes");
  }
  if (io::object_exists(file, "/counts")) {
    io::Hid counts = io::open_dataset(file, path, "/counts", "store one count per centre");
    model.counts = io::read_doubles(counts, path, "/counts");
    check_length(model.counts.size(), "/counts");
  }
  model.attributes = io::read_attributes(file);
  return model;
}

}  // namespace segforge
