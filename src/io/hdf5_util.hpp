#pragma once
// Internal to src/io: RAII handles for HDF5 ids and the helpers every file format shares
// (opening with clear errors, 1-D string and numeric datasets in any storage, attributes,
// /ids and /scaler). Every helper that reads takes the file's path for its messages.

#include <hdf5.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "segforge/io.hpp"
#include "segforge/row_source.hpp"

namespace segforge::io {

/// Turns off HDF5's automatic error-stack printing (once per process). Every public entry
/// point of src/io calls it first.
void quiet_hdf5();

/// Owns one HDF5 id and closes it with the matching H5*close.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Hid() { reset(); }
  Hid(Hid&& other) noexcept
      : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  Hid& operator=(Hid&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: passes straight to the C API
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
    id_ = H5I_INVALID_HID;
  }
  /// Closes now and says whether it worked (closing a file flushes it, and can fail).
  bool close() {
    herr_t rc = (id_ >= 0 && closer_ != nullptr) ? closer_(id_) : 0;
    id_ = H5I_INVALID_HID;
    return rc >= 0;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

inline Hid file_id(hid_t id) { return {id, H5Fclose}; }
inline Hid dataset_id(hid_t id) { return {id, H5Dclose}; }
inline Hid group_id(hid_t id) { return {id, H5Gclose}; }
inline Hid space_id(hid_t id) { return {id, H5Sclose}; }
inline Hid type_id(hid_t id) { return {id, H5Tclose}; }
inline Hid attr_id(hid_t id) { return {id, H5Aclose}; }
inline Hid plist_id(hid_t id) { return {id, H5Pclose}; }

/// The innermost message on HDF5's error stack (one line, may be empty); for a failed system
/// call, the OS's message (strerror).
std::string hdf5_reason();
/// The errno of a failed system call on HDF5's error stack (file driver messages), or 0.
int hdf5_errno();
/// "path:/dataset" as used at the start of messages.
std::string where(const std::string& path, const std::string& object);
/// "/name" for "name"; "/a/b" stays.
std::string absolute_object(const std::string& name);

// ---- reading ----------------------------------------------------------------------------

/// Opens an existing file read-only; InputError for a missing file, a folder, an empty or
/// non-HDF5 file, or a truncated or corrupt one.
Hid open_for_read(const std::string& path);
/// Whether every component of `object` ("/a/b/c") exists in the file. InputError naming the
/// file when a component is an external link (it would read another file), a user-defined
/// link, or a soft link to nothing (dangling).
bool object_exists(hid_t file, const std::string& object);
/// Whether `object` exists and is a group.
bool group_exists(hid_t file, const std::string& object);
/// Up to `limit` dataset paths in the file, for "(found: ...)" hints.
std::vector<std::string> list_datasets(hid_t file, std::size_t limit = 8);
/// " (found: /a, /b)" or " (the file has no datasets)".
std::string found_hint(hid_t file);
/// Opens a dataset; InputError "path: no dataset '/x'; <what_to_do> (found: ...)" when absent.
/// The one place datasets are opened for reading: it also refuses data stored outside the file
/// (external storage, virtual datasets; external links via object_exists) and data compressed
/// with a filter this HDF5 library lacks (e.g. LZF), each with what to do; and an extent the
/// file does not store (more bytes than its storage holds, or ~1100 times it when compressed),
/// so that no reader sizes a buffer from a damaged or crafted claim.
Hid open_dataset(hid_t file, const std::string& path, const std::string& object,
                 const std::string& what_to_do);

/// "float32", "int64", "string", "compound", ...
std::string dtype_name(hid_t type);
/// The dataset's extent ({} for a scalar).
std::vector<hsize_t> extent(hid_t dataset);
/// "1-D [100]", "3-D [2 x 3 x 4]", "a scalar".
std::string describe_shape(const std::vector<hsize_t>& dims);

enum class TypeClass { integer, floating, string, other };
TypeClass type_class(hid_t type);

struct DirectRows;

/// A 2-D numeric dataset, checked: numeric dtype (float or integer) and rank 2.
struct MatrixInfo {
  Hid dataset;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::string dtype;
  /// Where the rows' bytes are float32 as the host stores them, contiguous or in unfiltered
  /// chunks of whole rows, in a file opened with HDF5's default driver: their places in the
  /// file, so read_rows reads them with pread, on several threads, straight into the output
  /// (HDF5 serialises its calls and copies each chunk through its cache). Null otherwise.
  std::shared_ptr<DirectRows> direct;
};
/// `what_to_do` goes into the "no dataset" message; `shape` names the dimensions, e.g.
/// "[n_samples x n_features]".
MatrixInfo open_matrix(hid_t file, const std::string& path, const std::string& object,
                       const std::string& what_to_do, const std::string& shape);
/// Reads rows [first, first + count) of a [rows x cols] matrix into `out`, converting to float32;
/// straight from the file where `matrix.direct` allows (the same values, bit for bit).
/// `threads`: how many may read at once on the direct path (0: one per core; the out-of-core
/// windows, read while the team computes, measured slower with 1: bench/RESULTS.md "Reading").
void read_rows(const MatrixInfo& matrix, const std::string& path, const std::string& object,
               std::int64_t first, std::int64_t count, float* out, int threads = 0);
/// True when none of the n values is NaN or ±Inf (all exponent bits set), in one pass that
/// vectorises; callers look for the bad value only when it says false.
bool all_finite(const float* x, std::int64_t n);
/// Rows [first, first + count) of a matrix whose rows lie contiguously in the file as float32
/// (MatrixInfo::direct, contiguous), mapped read-only in place; null where they do not (or the
/// file is shorter than the rows, or the map fails): the caller reads them instead.
std::unique_ptr<MappedRows> map_rows(const MatrixInfo& matrix, std::int64_t first, std::int64_t count);

/// A 1-D dataset of strings (variable- or fixed-length, ASCII or UTF-8).
std::vector<std::string> read_strings(hid_t dataset, const std::string& path,
                                      const std::string& object);
/// A 1-D numeric dataset converted to double / int64 by HDF5.
std::vector<double> read_doubles(hid_t dataset, const std::string& path, const std::string& object);
/// Unsigned 64-bit values above INT64_MAX are refused naming the row (HDF5 would clamp them);
/// `too_big_hint` says what to do.
std::vector<std::int64_t> read_int64s(hid_t dataset, const std::string& path,
                                      const std::string& object,
                                      const std::string& too_big_hint = "store values within int64's range");
/// Elements [first, first + count) of a 1-D integer dataset, as read_int64s.
std::vector<std::int64_t> read_int64_range(hid_t dataset, const std::string& path,
                                           const std::string& object, std::int64_t first,
                                           std::int64_t count, const std::string& too_big_hint);
/// What to do about uint64 ids above INT64_MAX (for read_int64s' `too_big_hint`).
extern const char* const kIdsTooBig;
/// Root (or any object's) attributes as text: strings as they are, numbers in decimal,
/// arrays joined with ','; h5py booleans as "true"/"false". Other types, and arrays of more than
/// 65536 values, are skipped.
std::map<std::string, std::string> read_attributes(hid_t object);

/// /feature_names when present (length must be n_features), else empty.
std::vector<std::string> read_feature_names(hid_t file, const std::string& path,
                                            std::int64_t n_features, const std::string& matrix);
/// /ids when present (int or string; length must be n_rows), else empty. Integer ids of any
/// width are exact; uint64 ids above INT64_MAX and text ids that are not UTF-8 are refused
/// naming the row.
Ids read_ids(hid_t file, const std::string& path, std::int64_t n_rows, const std::string& matrix);
/// /scaler when present (mean, scale; transform optional; clip_low and clip_high optional,
/// as a pair), else empty.
Scaler read_scaler(hid_t file, const std::string& path, std::int64_t n_features);

// ---- writing (errors are RuntimeFailure naming `path`, the final file) ------------------

/// Creates (truncates) the temporary file `temp_path`; messages name `path`.
Hid create_file(const std::string& temp_path, const std::string& path);
[[noreturn]] void write_failed(const std::string& path, const std::string& what);
Hid create_group(hid_t loc, const std::string& name, const std::string& path);
/// A dataset of `dims` written from `data` (may be null for an empty one). chunk: chunk
/// dimensions or empty for contiguous.
void write_dataset(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                   const std::vector<hsize_t>& dims, const void* data, const std::string& path,
                   const std::vector<hsize_t>& chunk = {});
/// 1-D variable-length UTF-8 strings; InputError naming the row of a value that is not valid
/// UTF-8 (h5py's asstr() and pandas would fail on it).
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values,
                   const std::string& path);
void write_string_attribute(hid_t object, const std::string& name, const std::string& value,
                            const std::string& path);
void write_int_attribute(hid_t object, const std::string& name, std::int64_t value,
                         const std::string& path);
/// format, format_version = 1, created_by; then `extra` as string attributes (extra never
/// overrides the three).
void write_root_attributes(hid_t file, const std::string& format,
                           const std::map<std::string, std::string>& extra,
                           const std::string& path);
void write_ids(hid_t file, const Ids& ids, const std::string& path);
void write_scaler(hid_t file, const Scaler& scaler, const std::string& path);
/// "segforge <version>".
std::string created_by();

}  // namespace segforge::io
