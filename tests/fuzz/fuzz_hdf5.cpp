// libFuzzer target: every HDF5 reader of segforge (inspect_features, read_features, read_scaler,
// read_training_scaling, read_model, read_checkpoint, read_labels) on a file made from the input.
// Property: no crash, hang or sanitizer report in segforge code; either an InputError /
// RuntimeFailure or a result with consistent shapes and finite values where the format says so;
// and no HDF5 object left open afterwards (every id closed on every path).
// HDF5 itself is not instrumented: a crash inside it is HDF5's (tests/fuzz/README.md).

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "segforge/checkpoint.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/prep.hpp"

namespace {

using namespace segforge;
using segforge_fuzz::check;
using segforge_fuzz::check_finite;

template <class F>
void guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const InputError&) {
  } catch (const RuntimeFailure&) {
  }
  const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  check(open == 0, std::string(what) + " left " + std::to_string(open) + " HDF5 objects open");
}

void check_features(const Features& f) {
  const auto cols = static_cast<std::size_t>(f.x.cols());
  check(f.x.rows() > 0 && f.x.cols() > 0, "read_features: empty matrix without an InputError");
  check(f.feature_names.size() == cols, "read_features: names do not match the columns");
  check(f.ids.empty() || f.ids.size() == f.x.rows(), "read_features: ids do not match the rows");
  check_finite(f.x.data(), f.x.values().size(), "read_features matrix");
  check(f.scaler.empty() || (f.scaler.mean.size() == cols && f.scaler.scale.size() == cols &&
                             f.scaler.transform.size() == cols),
        "read_features: scaler lengths");
}

void check_model(const Model& m) {
  const auto k = static_cast<std::size_t>(m.centroids.rows());
  const auto d = static_cast<std::size_t>(m.centroids.cols());
  check(k > 0 && d > 0, "read_model: empty centroids without an InputError");
  check_finite(m.centroids.data(), m.centroids.values().size(), "read_model centroids");
  check(m.feature_names.empty() || m.feature_names.size() == d, "read_model: names do not match");
  check(m.segment_names.empty() || m.segment_names.size() == k, "read_model: segment names do not match");
  check(m.segment_sizes.empty() || m.segment_sizes.size() == k, "read_model: segment sizes do not match");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path =
      segforge_fuzz::write_file("input.h5", std::string_view(reinterpret_cast<const char*>(data), size));
  guarded("inspect_features", [&] { (void)inspect_features(path); });
  guarded("read_features", [&] { check_features(read_features(path)); });
  guarded("read_features out of core", [&] {
    ReadOptions o;
    o.rows_in_memory = false;
    o.checksum = false;
    o.nan_policy = NanPolicy::drop;
    (void)read_features(path, o);
  });
  guarded("read_scaler", [&] { (void)read_scaler(path); });
  guarded("read_training_scaling", [&] { (void)prep::read_training_scaling(path); });
  guarded("read_model", [&] { check_model(read_model(path)); });
  guarded("read_checkpoint", [&] { (void)read_checkpoint(path); });
  guarded("read_labels", [&] { (void)read_labels(path); });
  return 0;
}
