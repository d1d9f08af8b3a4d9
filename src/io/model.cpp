// model.h5: /centroids float32 [n_clusters x n_features], copies of /feature_names,
// /feature_roles and /scaler, /segments/names and /segments/sizes, the segment profiles and dictionary
// (/segments/shares, centres_original, z_scores, top_features, descriptions, outreach),
// /counts for mini-batch, a refreshed model's lineage (/segments/parent, /segments/transition and
// parent_* attributes), and the run's provenance as root attributes. A bare file holding only
// /centroids is a valid model (--init).

#include "atomic_file.hpp"
#include "checksum.hpp"
#include "feature_roles.hpp"
#include "hdf5_util.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/validate.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>

namespace segforge {

namespace {

/// A 2-D numeric dataset of exactly [rows x cols], read as `mem_type`.
template <class T>
Matrix<T> read_matrix_exact(hid_t file, const std::string& path, const std::string& object,
                            std::int64_t rows, std::int64_t cols, hid_t mem_type, const std::string& what) {
  io::Hid dataset = io::open_dataset(file, path, object, "store " + what);
  const std::vector<hsize_t> dims = io::extent(dataset);
  if (dims.size() != 2 || static_cast<std::int64_t>(dims[0]) != rows ||
      static_cast<std::int64_t>(dims[1]) != cols)
    throw InputError(io::where(path, object) + ": shape " + io::describe_shape(dims) + ", expected [" +
                     std::to_string(rows) + " x " + std::to_string(cols) + "]; store " + what);
  io::Hid type = io::type_id(H5Dget_type(dataset));
  const io::TypeClass cls = type.valid() ? io::type_class(type) : io::TypeClass::other;
  if (cls != io::TypeClass::floating && cls != io::TypeClass::integer)
    throw InputError(io::where(path, object) + ": dtype " + (type.valid() ? io::dtype_name(type) : "?") +
                     " is not numeric; store " + what);
  Matrix<T> m(rows, cols);
  if (m.size() > 0 && H5Dread(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data()) < 0)
    throw InputError(io::where(path, object) + ": cannot read its values (" + io::hdf5_reason() + ")");
  return m;
}

}  // namespace

void write_model(const std::string& path, const Model& model) {
  const std::int64_t k = model.centroids.rows();
  const std::int64_t d = model.centroids.cols();
  auto fits = [](std::size_t n, std::int64_t want) {
    return n == 0 || static_cast<std::int64_t>(n) == want;
  };
  SEGFORGE_ASSERT(fits(model.feature_names.size(), d), "model feature_names must match n_features");
  SEGFORGE_ASSERT(fits(model.scaler.mean.size(), d), "model scaler must match n_features");
  SEGFORGE_ASSERT(fits(model.feature_roles.size(), d), "model feature_roles must match n_features");
  SEGFORGE_ASSERT(fits(model.segment_names.size(), k), "segment_names must match n_clusters");
  SEGFORGE_ASSERT(fits(model.segment_sizes.size(), k), "segment_sizes must match n_clusters");
  SEGFORGE_ASSERT(fits(model.counts.size(), k), "counts must match n_clusters");
  SEGFORGE_ASSERT(fits(model.segment_shares.size(), k), "segment_shares must match n_clusters");
  SEGFORGE_ASSERT(model.segment_centres_original.empty() ||
                      (model.segment_centres_original.rows() == k && model.segment_centres_original.cols() == d),
                  "segment_centres_original must be [n_clusters x n_features]");
  SEGFORGE_ASSERT(model.segment_z_scores.empty() ||
                      (model.segment_z_scores.rows() == k && model.segment_z_scores.cols() == d),
                  "segment_z_scores must be [n_clusters x n_features]");
  SEGFORGE_ASSERT(model.segment_top_features.empty() || model.segment_top_features.rows() == k,
                  "segment_top_features must have n_clusters rows");
  SEGFORGE_ASSERT(fits(model.segment_descriptions.size(), k), "segment_descriptions must match n_clusters");
  SEGFORGE_ASSERT(fits(model.segment_outreach.size(), k), "segment_outreach must match n_clusters");
  SEGFORGE_ASSERT(fits(model.segment_parent.size(), k), "segment_parent must match n_clusters");
  SEGFORGE_ASSERT(fits(model.segment_transition.size(), k), "segment_transition must match n_clusters");

  io::TempOutput out(path);
  {
    io::Hid file = io::create_file(out.temp_path(), path);
    io::write_dataset(file, "centroids", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                      {static_cast<hsize_t>(k), static_cast<hsize_t>(d)}, model.centroids.data(),
                      path);
    if (!model.feature_names.empty())
      io::write_strings(file, "feature_names", model.feature_names, path);
    io::write_scaler(file, model.scaler, path);
    io::write_feature_roles(file, model.feature_roles, path);
    const bool profiles = !model.segment_shares.empty() || !model.segment_centres_original.empty() ||
                          !model.segment_z_scores.empty() || !model.segment_top_features.empty() ||
                          !model.segment_descriptions.empty() || !model.segment_outreach.empty() ||
                          !model.segment_parent.empty() || !model.segment_transition.empty();
    if (!model.segment_names.empty() || !model.segment_sizes.empty() || profiles) {
      io::Hid segments = io::create_group(file, "segments", path);
      if (!model.segment_names.empty())
        io::write_strings(segments, "names", model.segment_names, path);
      if (!model.segment_sizes.empty())
        io::write_dataset(segments, "sizes", H5T_STD_I64LE, H5T_NATIVE_INT64,
                          {static_cast<hsize_t>(k)}, model.segment_sizes.data(), path);
      if (!model.segment_shares.empty())
        io::write_dataset(segments, "shares", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                          {static_cast<hsize_t>(k)}, model.segment_shares.data(), path);
      const std::vector<hsize_t> kd{static_cast<hsize_t>(k), static_cast<hsize_t>(d)};
      if (!model.segment_centres_original.empty())
        io::write_dataset(segments, "centres_original", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, kd,
                          model.segment_centres_original.data(), path);
      if (!model.segment_z_scores.empty())
        io::write_dataset(segments, "z_scores", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, kd,
                          model.segment_z_scores.data(), path);
      if (!model.segment_top_features.empty())
        io::write_dataset(segments, "top_features", H5T_STD_I32LE, H5T_NATIVE_INT32,
                          {static_cast<hsize_t>(k), static_cast<hsize_t>(model.segment_top_features.cols())},
                          model.segment_top_features.data(), path);
      if (!model.segment_descriptions.empty())
        io::write_strings(segments, "descriptions", model.segment_descriptions, path);
      if (!model.segment_outreach.empty())
        io::write_strings(segments, "outreach", model.segment_outreach, path);
      if (!model.segment_parent.empty())
        io::write_dataset(segments, "parent", H5T_STD_I32LE, H5T_NATIVE_INT32, {static_cast<hsize_t>(k)},
                          model.segment_parent.data(), path);
      if (!model.segment_transition.empty())
        io::write_strings(segments, "transition", model.segment_transition, path);
    }
    if (model.is_dbscan()) {
      io::Hid group = io::create_group(file, "dbscan", path);
      io::write_dataset(group, "core_rows", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                        {static_cast<hsize_t>(model.dbscan_core_rows.rows()), static_cast<hsize_t>(d)},
                        model.dbscan_core_rows.data(), path);
      io::write_dataset(group, "core_labels", H5T_STD_I32LE, H5T_NATIVE_INT32,
                        {static_cast<hsize_t>(model.dbscan_core_labels.size())}, model.dbscan_core_labels.data(), path);
    }
    if (model.is_hierarchy()) {
      io::Hid group = io::create_group(file, "hierarchy", path);
      const auto leaves = static_cast<hsize_t>(model.hierarchy_leaves.rows());
      io::write_dataset(group, "leaves", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {leaves, static_cast<hsize_t>(d)},
                        model.hierarchy_leaves.data(), path);
      io::write_dataset(group, "leaf_labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {leaves},
                        model.hierarchy_leaf_labels.data(), path);
      io::write_dataset(group, "leaf_sizes", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {leaves},
                        model.hierarchy_leaf_sizes.data(), path);
      if (!model.hierarchy_merges.empty())
        io::write_dataset(group, "merges", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                          {static_cast<hsize_t>(model.hierarchy_merges.rows()), 4}, model.hierarchy_merges.data(), path);
    }
    if (model.birch) {
      const BirchState& b = *model.birch;
      io::Hid group = io::create_group(file, "birch", path);
      const auto e = static_cast<hsize_t>(b.n_entries());
      io::write_dataset(group, "weight", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {e}, b.weight.data(), path);
      io::write_dataset(group, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {e, static_cast<hsize_t>(b.n_features)},
                        b.mean.data(), path);
      io::write_dataset(group, "sq_deviation", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {e}, b.sq_deviation.data(), path);
      io::write_dataset(group, "child", H5T_STD_I64LE, H5T_NATIVE_INT64, {e}, b.child.data(), path);
      io::write_dataset(group, "node_start", H5T_STD_I64LE, H5T_NATIVE_INT64, {static_cast<hsize_t>(b.node_start.size())},
                        b.node_start.data(), path);
      io::write_dataset(group, "origin", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {static_cast<hsize_t>(b.origin.size())},
                        b.origin.data(), path);
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
  model.feature_names = io::read_feature_names(file, path, m.cols, object);
  model.scaler = io::read_scaler(file, path, m.cols);
  model.feature_roles = io::read_feature_roles(file, path);
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
  if (io::object_exists(file, "/segments/shares")) {
    io::Hid shares = io::open_dataset(file, path, "/segments/shares", "store one share per centre");
    model.segment_shares = io::read_doubles(shares, path, "/segments/shares");
    check_length(model.segment_shares.size(), "/segments/shares");
  }
  if (io::object_exists(file, "/segments/centres_original"))
    model.segment_centres_original = read_matrix_exact<double>(
        file, path, "/segments/centres_original", m.rows, m.cols, H5T_NATIVE_DOUBLE,
        "one row of original-unit values per centre");
  if (io::object_exists(file, "/segments/z_scores"))
    model.segment_z_scores = read_matrix_exact<double>(file, path, "/segments/z_scores", m.rows, m.cols,
                                                       H5T_NATIVE_DOUBLE, "one row of z-scores per centre");
  if (io::object_exists(file, "/segments/top_features")) {
    io::Hid top = io::open_dataset(file, path, "/segments/top_features", "store feature indices per centre");
    const std::vector<hsize_t> dims = io::extent(top);
    const auto cols = dims.size() == 2 ? static_cast<std::int64_t>(dims[1]) : -1;
    model.segment_top_features = read_matrix_exact<std::int32_t>(
        file, path, "/segments/top_features", m.rows, cols, H5T_NATIVE_INT32,
        "[n_clusters x n_top] feature indices");
  }
  if (io::object_exists(file, "/segments/descriptions")) {
    io::Hid text = io::open_dataset(file, path, "/segments/descriptions", "store one description per centre");
    model.segment_descriptions = io::read_strings(text, path, "/segments/descriptions");
    check_length(model.segment_descriptions.size(), "/segments/descriptions");
  }
  if (io::object_exists(file, "/segments/outreach")) {
    io::Hid text = io::open_dataset(file, path, "/segments/outreach", "store one outreach text per centre");
    model.segment_outreach = io::read_strings(text, path, "/segments/outreach");
    check_length(model.segment_outreach.size(), "/segments/outreach");
  }
  if (io::object_exists(file, "/segments/parent")) {
    io::Hid parent = io::open_dataset(file, path, "/segments/parent", "store one parent index per centre");
    const std::vector<std::int64_t> values = io::read_int64s(parent, path, "/segments/parent");
    check_length(values.size(), "/segments/parent");
    for (std::size_t c = 0; c < values.size(); ++c) {
      if (values[c] < -1 || values[c] > INT32_MAX)
        throw InputError(io::where(path, "/segments/parent") + " row " + std::to_string(c) + ": " +
                         std::to_string(values[c]) + " is not a segment index or -1; store the parent's index or -1");
      model.segment_parent.push_back(static_cast<std::int32_t>(values[c]));
    }
  }
  if (io::object_exists(file, "/segments/transition")) {
    io::Hid text = io::open_dataset(file, path, "/segments/transition", "store one transition word per centre");
    model.segment_transition = io::read_strings(text, path, "/segments/transition");
    check_length(model.segment_transition.size(), "/segments/transition");
  }
  if (io::object_exists(file, "/counts")) {
    io::Hid counts = io::open_dataset(file, path, "/counts", "store one count per centre");
    model.counts = io::read_doubles(counts, path, "/counts");
    check_length(model.counts.size(), "/counts");
  }
  if (io::object_exists(file, "/dbscan/core_rows") || io::object_exists(file, "/dbscan/core_labels")) {
    const std::string what = "a DBSCAN model's core rows; refit with segforge fit --algorithm dbscan";
    io::MatrixInfo core = io::open_matrix(file, path, "/dbscan/core_rows", what, "[n_core x n_features]");
    if (core.cols != m.cols)
      throw InputError(io::where(path, "/dbscan/core_rows") + ": " + std::to_string(core.cols) + " columns but /centroids has " +
                       std::to_string(m.cols) + "; " + what);
    model.dbscan_core_rows = Matrix<float>(core.rows, core.cols);
    io::read_rows(core, path, "/dbscan/core_rows", 0, core.rows, model.dbscan_core_rows.data());
    io::Hid labels = io::open_dataset(file, path, "/dbscan/core_labels", what);
    const std::vector<std::int64_t> values = io::read_int64s(labels, path, "/dbscan/core_labels");
    if (static_cast<std::int64_t>(values.size()) != core.rows)
      throw InputError(io::where(path, "/dbscan/core_labels") + ": " + std::to_string(values.size()) + " labels for " +
                       std::to_string(core.rows) + " core rows; " + what);
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (values[i] < 0 || values[i] >= m.rows)
        throw InputError(io::where(path, "/dbscan/core_labels") + " row " + std::to_string(i) + ": " +
                         std::to_string(values[i]) + " is not a segment of the " + std::to_string(m.rows) + " in /centroids; " + what);
      model.dbscan_core_labels.push_back(static_cast<std::int32_t>(values[i]));
    }
  }
  if (io::object_exists(file, "/hierarchy/leaves") || io::object_exists(file, "/hierarchy/leaf_labels")) {
    const std::string what = "a hierarchical model's leaves; refit with segforge fit --algorithm agglomerative|birch";
    io::MatrixInfo leaves = io::open_matrix(file, path, "/hierarchy/leaves", what, "[n_leaves x n_features]");
    if (leaves.cols != m.cols)
      throw InputError(io::where(path, "/hierarchy/leaves") + ": " + std::to_string(leaves.cols) + " columns but /centroids has " +
                       std::to_string(m.cols) + "; " + what);
    model.hierarchy_leaves = Matrix<float>(leaves.rows, leaves.cols);
    io::read_rows(leaves, path, "/hierarchy/leaves", 0, leaves.rows, model.hierarchy_leaves.data());
    io::Hid labels = io::open_dataset(file, path, "/hierarchy/leaf_labels", what);
    const std::vector<std::int64_t> values = io::read_int64s(labels, path, "/hierarchy/leaf_labels");
    if (static_cast<std::int64_t>(values.size()) != leaves.rows)
      throw InputError(io::where(path, "/hierarchy/leaf_labels") + ": " + std::to_string(values.size()) + " labels for " +
                       std::to_string(leaves.rows) + " leaves; " + what);
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (values[i] < 0 || values[i] >= m.rows)
        throw InputError(io::where(path, "/hierarchy/leaf_labels") + " row " + std::to_string(i) + ": " +
                         std::to_string(values[i]) + " is not a segment of the " + std::to_string(m.rows) + " in /centroids; " + what);
      model.hierarchy_leaf_labels.push_back(static_cast<std::int32_t>(values[i]));
    }
    io::Hid sizes = io::open_dataset(file, path, "/hierarchy/leaf_sizes", what);
    model.hierarchy_leaf_sizes = io::read_doubles(sizes, path, "/hierarchy/leaf_sizes");
    if (static_cast<std::int64_t>(model.hierarchy_leaf_sizes.size()) != leaves.rows)
      throw InputError(io::where(path, "/hierarchy/leaf_sizes") + ": " + std::to_string(model.hierarchy_leaf_sizes.size()) +
                       " sizes for " + std::to_string(leaves.rows) + " leaves; " + what);
    if (io::object_exists(file, "/hierarchy/merges"))
      model.hierarchy_merges = read_matrix_exact<double>(file, path, "/hierarchy/merges", leaves.rows - 1, 4, H5T_NATIVE_DOUBLE,
                                                         "the merges of the tree over the leaves (SciPy's linkage matrix)");
  }
  model.attributes = io::read_attributes(file);
  if (io::object_exists(file, "/birch/weight")) {
    // The CF-tree as stored; its shape and values are checked where it is used
    // (validate(BirchState), `fit --continue-from`).
    const std::string what = "a BIRCH model's CF-tree; refit with segforge fit --algorithm birch";
    BirchState b;
    auto number = [&](const char* key) {
      const auto it = model.attributes.find(key);
      char* end = nullptr;
      const double v = it == model.attributes.end() ? std::nan("") : std::strtod(it->second.c_str(), &end);
      if (it == model.attributes.end() || end == it->second.c_str() || *end != '\0' || !std::isfinite(v))
        throw InputError(path + ": attribute " + key + " is missing or not a number; " + what);
      return v;
    };
    b.threshold = number("birch_threshold");
    b.initial_threshold = number("birch_initial_threshold");
    b.branching_factor = static_cast<int>(number("birch_branching_factor"));
    b.max_subclusters = static_cast<std::int64_t>(number("birch_max_subclusters"));
    b.n_rebuilds = static_cast<int>(number("birch_n_rebuilds"));
    b.n_rows_seen = static_cast<std::int64_t>(number("birch_n_rows_seen"));
    b.n_subclusters = static_cast<std::int64_t>(number("birch_n_subclusters"));
    b.root = static_cast<std::int64_t>(number("birch_root"));
    b.n_features = m.cols;
    auto doubles = [&](const char* object) {
      io::Hid d = io::open_dataset(file, path, object, what);
      return io::read_doubles(d, path, object);
    };
    auto ints = [&](const char* object) {
      io::Hid d = io::open_dataset(file, path, object, what);
      return io::read_int64s(d, path, object, what);
    };
    b.weight = doubles("/birch/weight");
    b.sq_deviation = doubles("/birch/sq_deviation");
    b.origin = doubles("/birch/origin");
    b.child = ints("/birch/child");
    b.node_start = ints("/birch/node_start");
    b.mean = read_matrix_exact<double>(file, path, "/birch/mean", b.n_entries(), m.cols, H5T_NATIVE_DOUBLE,
                                       "each entry's mean relative to /birch/origin [n_entries x n_features]");
    model.birch = std::move(b);
  }
  validate_model(model, path);  // values, ranges and consistency (src/validate.cpp)
  model.checksum = io::file_checksum(path);  // a refresh records its parent by it
  return model;
}

}  // namespace segforge
