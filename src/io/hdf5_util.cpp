// Shared HDF5 plumbing for src/io: quiet error stack, RAII ids, opening with clear errors,
// strings in any storage (h5py and pandas users write both variable- and fixed-length),
// attributes as text, and the /ids and /scaler datasets shared by several formats.

#include "hdf5_util.hpp"
#include "segforge/utf8.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <system_error>
#include <thread>

#include "segforge/error.hpp"

#ifndef SEGFORGE_VERSION
#define SEGFORGE_VERSION ""
#endif

namespace fs = std::filesystem;

namespace segforge::io {

void quiet_hdf5() {
  static const bool done = [] {
    // HDF5 1.10 leaves a file whose flush failed (a full disk) half-destroyed: H5Fclose fails,
    // and closing it again, as the library's atexit handler does (H5_term_library ->
    // H5F__close_cb), dereferences freed memory. Every file segforge writes is closed once by its
    // Hid, committed files already flushed; so the handler has nothing left to do but crash.
    // H5dont_atexit only works before the library initialises, hence the static below as well.
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

namespace {
// Before main and before any HDF5 call in this library (H5dont_atexit must precede the
// library's initialisation).
const bool kQuietAtStart = (quiet_hdf5(), true);
}  // namespace

namespace {

herr_t innermost_error(unsigned n, const H5E_error2_t* err, void* data) {
  if (n == 0 && err != nullptr && err->desc != nullptr)
    *static_cast<std::string*>(data) = err->desc;
  return 0;
}

/// The file driver's message for a failed system call reads "... errno = 28, error message =
/// 'No space left on device', ..."; this finds the first such errno on the stack.
herr_t find_errno(unsigned, const H5E_error2_t* err, void* data) {
  int& found = *static_cast<int*>(data);
  if (found != 0 || err == nullptr || err->desc == nullptr) return 0;
  const char* at = std::strstr(err->desc, "errno = ");
  if (at == nullptr) return 0;
  at += std::strlen("errno = ");
  int value = 0;
  const auto result = std::from_chars(at, at + std::strlen(at), value);
  if (result.ec == std::errc() && value > 0) found = value;
  return 0;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::string format_double(double value) {
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, result.ptr);
}

/// Reads string values (variable- or fixed-length) through `read`, which calls H5Dread or
/// H5Aread with the memory type it is given.
bool read_string_values(hid_t file_type, hid_t space, std::int64_t n,
                        const std::function<herr_t(hid_t, void*)>& read,
                        std::vector<std::string>& out) {
  out.assign(static_cast<std::size_t>(n), std::string());
  if (n == 0) return true;
  if (H5Tis_variable_str(file_type) > 0) {
    Hid mem = type_id(H5Tcopy(H5T_C_S1));
    if (!mem.valid() || H5Tset_size(mem, H5T_VARIABLE) < 0 ||
        H5Tset_cset(mem, H5Tget_cset(file_type)) < 0)
      return false;
    std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
    if (read(mem, ptrs.data()) < 0) return false;
    for (std::size_t i = 0; i < ptrs.size(); ++i)
      if (ptrs[i] != nullptr) out[i] = ptrs[i];
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mem, space, H5P_DEFAULT, ptrs.data());
#else
    H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());  // works for attributes too
#endif
    return true;
  }
  const std::size_t size = H5Tget_size(file_type);
  if (size == 0) return false;
  Hid mem = type_id(H5Tcopy(file_type));
  if (!mem.valid()) return false;
  const bool space_padded = H5Tget_strpad(file_type) == H5T_STR_SPACEPAD;
  std::vector<char> buf(static_cast<std::size_t>(n) * size);
  if (read(mem, buf.data()) < 0) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char* s = buf.data() + i * size;
    std::size_t len = strnlen(s, size);
    if (space_padded)
      while (len > 0 && s[len - 1] == ' ') --len;
    out[i].assign(s, len);
  }
  return true;
}

void collect_datasets(hid_t group, const std::string& prefix, int depth,
                      std::vector<std::string>& found, std::size_t limit, int& budget) {
  H5G_info_t info;
  if (depth > 8 || H5Gget_info(group, &info) < 0) return;
  for (hsize_t i = 0; i < info.nlinks && found.size() < limit && budget > 0; ++i, --budget) {
    ssize_t len =
        H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len <= 0) continue;
    std::string name(static_cast<std::size_t>(len), '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(),
                       static_cast<std::size_t>(len) + 1, H5P_DEFAULT);
    // Hard links only: an external link would open another file just to list it, and a soft
    // link names an object listed under its own name anyway.
    H5L_info_t link;
    if (H5Lget_info(group, name.c_str(), &link, H5P_DEFAULT) < 0 || link.type != H5L_TYPE_HARD)
      continue;
    Hid obj(H5Oopen(group, name.c_str(), H5P_DEFAULT), H5Oclose);
    if (!obj.valid()) continue;
    const std::string full = prefix + "/" + name;
    const H5I_type_t kind = H5Iget_type(obj);
    if (kind == H5I_DATASET)
      found.push_back(full);
    else if (kind == H5I_GROUP)
      collect_datasets(obj, full, depth + 1, found, limit, budget);
  }
}

herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

[[noreturn]] void read_failed(const std::string& path, const std::string& object,
                              const std::string& what) {
  const std::string reason = hdf5_reason();
  throw InputError(where(path, object) + ": cannot read " + what +
                   (reason.empty() ? "" : " (HDF5: " + reason + ")") +
                   "; the file may be truncated or corrupt");
}

/// Checks that `dataset` is 1-D and returns its length.
std::int64_t length_1d(hid_t dataset, const std::string& path, const std::string& object,
                       const std::string& shape_hint) {
  const auto dims = extent(dataset);
  if (dims.size() != 1)
    throw InputError(where(path, object) + ": expected 1-D " + shape_hint + ", got " +
                     describe_shape(dims));
  return static_cast<std::int64_t>(dims[0]);
}

template <class T>
std::vector<T> read_numeric_1d(hid_t dataset, hid_t mem_type, const std::string& path,
                               const std::string& object) {
  const std::int64_t n = length_1d(dataset, path, object, "[n]");
  std::vector<T> values(static_cast<std::size_t>(n));
  if (n > 0 && H5Dread(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0)
    read_failed(path, object, "its values");
  return values;
}

}  // namespace

int hdf5_errno() {
  int found = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, find_errno, &found);
  return found;
}

std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, &reason);
  // A failed system call: the OS's words, not the driver's dump of time, buffer and offsets.
  if (const int err = hdf5_errno(); err != 0 && reason.find("errno = ") != std::string::npos)
    return std::strerror(err);
  std::replace(reason.begin(), reason.end(), '\n', ' ');
  if (reason.size() > 240) reason = reason.substr(0, 240) + "...";
  return reason;
}

std::string where(const std::string& path, const std::string& object) {
  return object.empty() ? path : path + ":" + object;
}

std::string absolute_object(const std::string& name) {
  if (name.empty() || name.front() == '/') return name;
  return "/" + name;
}

// ---- reading ----------------------------------------------------------------------------

const char* const kIdsTooBig =
    "store the ids as strings (e.g. ids.astype(str) in numpy), which keep every digit";

Hid open_for_read(const std::string& path) {
  quiet_hdf5();
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) throw InputError(path + ": no such file; check the path");
  if (fs::is_directory(p, ec)) throw InputError(path + ": is a folder, not a file; check the path");
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe)
      throw InputError(path + ": cannot open for reading (" + std::strerror(errno) +
                       "); check its permissions");
  }
  if (fs::file_size(p, ec) == 0)
    throw InputError(path + ": empty file (0 bytes), not an HDF5 file; check the path");
#if H5_VERSION_GE(1, 12, 0)
  const htri_t is_hdf5 = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
#endif
  if (is_hdf5 <= 0) throw InputError(path + ": not an HDF5 file (or truncated); check the path");
  Hid fapl = plist_id(H5Pcreate(H5P_FILE_ACCESS));
#if H5_VERSION_GE(1, 10, 7)
  // Network file systems (NFS, Lustre) often lack locks; reading must work there anyway.
  if (fapl.valid()) H5Pset_file_locking(fapl, true, true);
#endif
  Hid file =
      file_id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.valid() ? fapl.get() : H5P_DEFAULT));
  if (!file.valid()) {
    const std::string reason = hdf5_reason();
    throw InputError(path + ": truncated or corrupt HDF5 file" +
                     (reason.empty() ? "" : " (HDF5: " + reason + ")") +
                     "; copy or write it again");
  }
  return file;
}

namespace {

std::string file_name(hid_t file) {
  const ssize_t n = H5Fget_name(file, nullptr, 0);
  if (n <= 0) return "?";
  std::string name(static_cast<std::size_t>(n), '\0');
  H5Fget_name(file, name.data(), static_cast<std::size_t>(n) + 1);
  return name;
}

const char* const kOnlyInside =
    "segforge reads only data stored in the file itself, since a link or mapping could read any "
    "file; copy the values into an ordinary dataset (h5py: g['x'] = f['x'][...]) and pass that "
    "file";

/// Whether `full` ("/a/b", absolute) names an object, checking each link on the way: soft links
/// are followed (to `depth` levels, against cycles) and checked in turn; external and
/// user-defined links are refused, as are soft links to nothing.
bool object_exists_checked(hid_t file, const std::string& full, int depth) {
  if (full == "/") return true;
  if (depth > 16)
    throw InputError(where(file_name(file), full) +
                     ": soft links nest more than 16 deep (a cycle?); link the data directly");
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = full.find('/', pos + 1);
    const std::string prefix = full.substr(0, pos);
    if (prefix.size() <= 1 || prefix.back() == '/') continue;
    // H5Lexists and H5Lget_info resolve every component but the last, and those were checked
    // on the previous turns.
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    H5L_info_t link;
    if (H5Lget_info(file, prefix.c_str(), &link, H5P_DEFAULT) < 0) return false;
    if (link.type == H5L_TYPE_HARD) continue;
    std::vector<char> value(link.u.val_size + 1, '\0');
    if (link.type == H5L_TYPE_SOFT || link.type == H5L_TYPE_EXTERNAL)
      if (H5Lget_val(file, prefix.c_str(), value.data(), value.size(), H5P_DEFAULT) < 0)
        value.assign(1, '\0');
    if (link.type == H5L_TYPE_EXTERNAL) {
      const char* target_file = "?";
      const char* target_object = "?";
      unsigned flags = 0;
      H5Lunpack_elink_val(value.data(), value.size(), &flags, &target_file, &target_object);
      throw InputError(where(file_name(file), prefix) + ": is an external link to '" +
                       target_file + ":" + target_object + "'; " + kOnlyInside);
    }
    if (link.type != H5L_TYPE_SOFT)
      throw InputError(where(file_name(file), prefix) + ": is a user-defined link (type " +
                       std::to_string(static_cast<int>(link.type)) +
                       "), which segforge does not follow; store the data itself under this name");
    std::string target(value.data());
    if (target.empty() || target.front() != '/') {  // relative to the link's group
      const std::string parent = prefix.substr(0, prefix.rfind('/'));
      target = parent + "/" + target;
    }
    if (!object_exists_checked(file, target, depth + 1))
      throw InputError(where(file_name(file), prefix) + ": is a soft link to '" +
                       std::string(value.data()) +
                       "', which does not exist (a dangling link); point the link at the "
                       "dataset or store the data itself under this name");
  }
  return H5Oexists_by_name(file, full.c_str(), H5P_DEFAULT) > 0;
}

std::string filter_label(H5Z_filter_t id, const char* stored_name) {
  std::string known;
  switch (id) {
    case 32000: known = "LZF"; break;
    case 32001: known = "Blosc"; break;
    case 32004: known = "LZ4"; break;
    case 32008: known = "bitshuffle"; break;
    case 32015: known = "Zstandard"; break;
    case 307: known = "bzip2"; break;
    default: break;
  }
  std::string name = known.empty() ? std::string(stored_name) : known;
  if (name.empty()) name = "unnamed";
  return name + " filter (HDF5 filter " + std::to_string(id) + ")";
}

/// Refuses what open_dataset must not hand on (see its comment).
void check_storage(hid_t dataset, const std::string& path, const std::string& object) {
  Hid dcpl = plist_id(H5Dget_create_plist(dataset));
  if (!dcpl.valid()) read_failed(path, object, "its storage properties");
  if (H5Pget_layout(dcpl) == H5D_VIRTUAL) {
    std::string source;
    size_t n_sources = 0;
    if (H5Pget_virtual_count(dcpl, &n_sources) >= 0 && n_sources > 0) {
      const ssize_t len = H5Pget_virtual_filename(dcpl, 0, nullptr, 0);
      if (len > 0) {
        std::string name(static_cast<std::size_t>(len), '\0');
        H5Pget_virtual_filename(dcpl, 0, name.data(), static_cast<std::size_t>(len) + 1);
        source = " such as '" + name + "'";
      }
    }
    throw InputError(where(path, object) + ": is a virtual dataset (its values are mapped from "
                     "other datasets" + source + "; a missing source reads as zeros); " +
                     kOnlyInside);
  }
  const int n_external = H5Pget_external_count(dcpl);
  if (n_external > 0) {
    char name[1024] = {0};
    off_t offset = 0;
    hsize_t size = 0;
    H5Pget_external(dcpl, 0, sizeof name, name, &offset, &size);
    throw InputError(where(path, object) + ": its values are stored outside the file, in '" +
                     name + "' (HDF5 external storage); " + kOnlyInside);
  }
  const int n_filters = H5Pget_nfilters(dcpl);
  for (int i = 0; i < n_filters; ++i) {
    unsigned flags = 0, config = 0;
    std::size_t n_values = 0;
    char name[256] = {0};
    const H5Z_filter_t id =
        H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &n_values, nullptr, sizeof name,
                       name, &config);
    if (id < 0) read_failed(path, object, "its compression filters");
    if (H5Zfilter_avail(id) <= 0)
      throw InputError(where(path, object) + ": is compressed with the " + filter_label(id, name) +
                       ", which this HDF5 library does not have; re-save it with gzip or "
                       "without compression (h5repack -f NONE in.h5 out.h5, or h5py "
                       "compression='gzip')");
  }
}

std::string decimal(unsigned __int128 v) {
  std::string out;
  do {
    out.insert(out.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v > 0);
  return out;
}

/// Refuses a dataset whose extent claims more values than the file stores. The extent is only
/// what the file says: a damaged, crafted or never completely written file can claim 2^40
/// strings or [2 x 2^62] values over a few stored bytes, and every reader sizes its buffers from
/// the extent (a bad_alloc, an OOM kill or an overflowing rows x cols). Without a filter every
/// claimed byte is stored (contiguous, compact, and chunked once its chunks are written); with
/// one at most ~1032:1 (deflate, the best ratio of any HDF5 filter segforge's writers or h5py
/// use). Variable-length strings count one pointer each: their text lives in the file's heap,
/// which HDF5 reads only as far as it is stored.
void check_extent_is_stored(hid_t dataset, const std::string& path, const std::string& object) {
  const std::vector<hsize_t> dims = extent(dataset);
  Hid type = type_id(H5Dget_type(dataset));
  if (!type.valid()) read_failed(path, object, "its dtype");
  const std::size_t type_size = std::max<std::size_t>(H5Tget_size(type), 1);
  constexpr hsize_t kMaxDim = hsize_t{1} << 62;
  constexpr unsigned __int128 kSaturated = static_cast<unsigned __int128>(1) << 100;
  unsigned __int128 bytes = type_size;
  bool huge = false;
  for (const hsize_t d : dims) {
    huge = huge || d > kMaxDim;
    bytes = std::min<unsigned __int128>(bytes * std::min(d, kMaxDim), kSaturated);
  }
  if (bytes == 0 && !huge) return;
  Hid dcpl = plist_id(H5Dget_create_plist(dataset));
  if (!dcpl.valid()) read_failed(path, object, "its storage properties");
  const bool filtered = H5Pget_nfilters(dcpl) > 0;
  const unsigned __int128 stored = H5Dget_storage_size(dataset);
  if (huge || bytes > stored * (filtered ? 1100 : 1))
    throw InputError(where(path, object) + ": shape " + describe_shape(dims) + " needs " +
                     (bytes == kSaturated ? "more than 2^100" : decimal(bytes)) +
                     " bytes but the file stores " + decimal(stored) +
                     (filtered ? " (compressed)" : "") +
                     "; the file is damaged or was not completely written; write it again");
}

}  // namespace

bool object_exists(hid_t file, const std::string& object) {
  return object_exists_checked(file, absolute_object(object), 0);
}

bool group_exists(hid_t file, const std::string& object) {
  if (!object_exists(file, object)) return false;
  Hid obj(H5Oopen(file, absolute_object(object).c_str(), H5P_DEFAULT), H5Oclose);
  return obj.valid() && H5Iget_type(obj) == H5I_GROUP;
}

std::vector<std::string> list_datasets(hid_t file, std::size_t limit) {
  std::vector<std::string> found;
  Hid root = group_id(H5Gopen2(file, "/", H5P_DEFAULT));
  int budget = 2000;
  if (root.valid()) collect_datasets(root, "", 0, found, limit, budget);
  return found;
}

std::string found_hint(hid_t file) {
  constexpr std::size_t kShown = 8;
  auto found = list_datasets(file, kShown + 1);
  if (found.empty()) return " (the file has no datasets)";
  const bool more = found.size() > kShown;
  found.resize(std::min(found.size(), kShown));
  return " (found: " + join(found, ", ") + (more ? ", ..." : "") + ")";
}

Hid open_dataset(hid_t file, const std::string& path, const std::string& object,
                 const std::string& what_to_do) {
  const std::string full = absolute_object(object);
  if (!object_exists(file, full))
    throw InputError(path + ": no dataset '" + full + "'; " + what_to_do + found_hint(file));
  Hid obj(H5Oopen(file, full.c_str(), H5P_DEFAULT), H5Oclose);
  if (!obj.valid()) read_failed(path, full, "the object");
  if (H5Iget_type(obj) != H5I_DATASET)
    throw InputError(path + ": '" + full + "' is a group, not a dataset; " + what_to_do +
                     found_hint(file));
  obj.reset();
  // A larger chunk cache than HDF5's 1 MB default keeps chunks that straddle two row blocks
  // from being read twice.
  Hid dapl = plist_id(H5Pcreate(H5P_DATASET_ACCESS));
  if (dapl.valid()) H5Pset_chunk_cache(dapl, 12421, 32u << 20, 1.0);
  Hid dataset = dataset_id(H5Dopen2(file, full.c_str(), dapl.valid() ? dapl.get() : H5P_DEFAULT));
  if (!dataset.valid()) read_failed(path, full, "the dataset");
  check_storage(dataset, path, full);
  check_extent_is_stored(dataset, path, full);
  return dataset;
}

std::string dtype_name(hid_t type) {
  const std::size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum (e.g. bool)";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "variable-length";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_REFERENCE:
      return "reference";
    case H5T_TIME:
      return "time";
    default:
      return "unknown";
  }
}

TypeClass type_class(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return TypeClass::integer;
    case H5T_FLOAT:
      return TypeClass::floating;
    case H5T_STRING:
      return TypeClass::string;
    default:
      return TypeClass::other;
  }
}

std::vector<hsize_t> extent(hid_t dataset) {
  Hid space = space_id(H5Dget_space(dataset));
  if (!space.valid()) return {};
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank <= 0) return {};
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

std::string describe_shape(const std::vector<hsize_t>& dims) {
  if (dims.empty()) return "a scalar";
  std::string out = std::to_string(dims.size()) + "-D [";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) out += " x ";
    out += std::to_string(dims[i]);
  }
  return out + "]";
}

/// The rows' places in the file (MatrixInfo::direct): the file's descriptor (HDF5's own, open as
/// long as the dataset is) and either the offset of row 0 (contiguous) or the rows per chunk and
/// each chunk's offset, looked up as reads need them.
struct DirectRows {
  int fd = -1;
  std::int64_t contiguous = -1;  ///< row 0's offset, when stored contiguously
  std::int64_t chunk_rows = 0;   ///< rows per chunk, when chunked
  std::vector<std::int64_t> chunk_at;  ///< [n_chunks] offsets; -1 not looked up, -2 not stored
};

namespace {

/// See MatrixInfo::direct; null where HDF5 must read (conversion, filters, partial-row chunks,
/// another driver, storage not allocated).
std::shared_ptr<DirectRows> direct_rows(hid_t dataset, hid_t type, std::int64_t cols) {
  if (cols <= 0 || H5Tequal(type, H5T_NATIVE_FLOAT) <= 0) return nullptr;
  Hid dcpl = plist_id(H5Dget_create_plist(dataset));
  if (!dcpl.valid() || H5Pget_nfilters(dcpl) != 0 || H5Pget_external_count(dcpl) != 0) return nullptr;
  Hid file(H5Iget_file_id(dataset), H5Fclose);
  Hid fapl = plist_id(H5Fget_access_plist(file));
  Hid fcpl = plist_id(H5Fget_create_plist(file));
  if (!file.valid() || !fapl.valid() || !fcpl.valid() || H5Pget_driver(fapl) != H5FD_SEC2) return nullptr;
  auto direct = std::make_shared<DirectRows>();
  hsize_t userblock = 0;
  void* handle = nullptr;
  if (H5Pget_userblock(fcpl, &userblock) < 0 || H5Fget_vfd_handle(file, fapl, &handle) < 0 || handle == nullptr)
    return nullptr;
  direct->fd = *static_cast<int*>(handle);
  const H5D_layout_t layout = H5Pget_layout(dcpl);
  // H5Dget_offset gives a place in the file (the user block included); chunk addresses are
  // relative to the base address, the user block not included in 1.10 (tests/python/
  // test_read_layouts.py) and possibly included elsewhere: chunks after a user block go through
  // HDF5.
  if (layout == H5D_CHUNKED && userblock != 0) return nullptr;
  if (layout == H5D_CONTIGUOUS) {
    const haddr_t at = H5Dget_offset(dataset);
    if (at == HADDR_UNDEF) return nullptr;
    direct->contiguous = static_cast<std::int64_t>(at);
    return direct;
  }
#if H5_VERSION_GE(1, 10, 5)
  hsize_t chunk[2] = {0, 0};
  if (layout != H5D_CHUNKED || H5Pget_chunk(dcpl, 2, chunk) != 2 || chunk[0] == 0 ||
      chunk[1] != static_cast<hsize_t>(cols))
    return nullptr;
  const std::vector<hsize_t> dims = extent(dataset);
  direct->chunk_rows = static_cast<std::int64_t>(chunk[0]);
  direct->chunk_at.assign(static_cast<std::size_t>((dims[0] + chunk[0] - 1) / chunk[0]), -1);
  return direct;
#else
  return nullptr;
#endif
}

/// One pread into place: `bytes` at file offset `at` to `out`.
struct Piece {
  std::int64_t at;
  std::int64_t bytes;
  char* out;
};

bool pread_all(int fd, const Piece& p) {
  std::int64_t done = 0;
  while (done < p.bytes) {
    const ssize_t got = ::pread(fd, p.out + done, static_cast<std::size_t>(p.bytes - done), p.at + done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      if (got == 0) errno = EIO;  // the file ends before the rows do
      return false;
    }
    done += got;
  }
  return true;
}

/// Rows [first, first + count) through `direct`; false (nothing read) where a chunk is not stored
/// (HDF5 supplies its fill value). `fail()` throws on a read error, errno set.
template <class Fail>
bool read_rows_direct(DirectRows& direct, const MatrixInfo& matrix, std::int64_t first,
                      std::int64_t count, float* out, int max_threads, Fail fail) {
  const std::int64_t row_bytes = matrix.cols * static_cast<std::int64_t>(sizeof(float));
  std::vector<Piece> pieces;
  char* dst = reinterpret_cast<char*>(out);
  if (direct.contiguous >= 0) {
    pieces.push_back({direct.contiguous + first * row_bytes, count * row_bytes, dst});
  } else {
#if H5_VERSION_GE(1, 10, 5)
    const std::int64_t cr = direct.chunk_rows;
    for (std::int64_t c = first / cr; c * cr < first + count; ++c) {
      std::int64_t& at = direct.chunk_at[static_cast<std::size_t>(c)];
      if (at == -1) {
        const hsize_t offset[2] = {static_cast<hsize_t>(c * cr), 0};
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        const bool stored = H5Dget_chunk_info_by_coord(matrix.dataset, offset, &mask, &addr, &size) >= 0 &&
                            addr != HADDR_UNDEF && mask == 0 &&
                            size == static_cast<hsize_t>(cr * row_bytes);
        at = stored ? static_cast<std::int64_t>(addr) : -2;
      }
      if (at == -2) return false;
      const std::int64_t r0 = std::max(first, c * cr), r1 = std::min(first + count, (c + 1) * cr);
      const Piece p{at + (r0 - c * cr) * row_bytes, (r1 - r0) * row_bytes,
                    dst + (r0 - first) * row_bytes};
      if (!pieces.empty() && pieces.back().at + pieces.back().bytes == p.at &&
          pieces.back().out + pieces.back().bytes == p.out)
        pieces.back().bytes += p.bytes;  // chunks stored one after another: one read
      else
        pieces.push_back(p);
    }
#else
    return false;
#endif
  }
  // Pieces of at least kSplit bytes cut for the threads; below kThreaded in all, one thread.
  constexpr std::int64_t kSplit = std::int64_t{1} << 20, kThreaded = std::int64_t{2} << 20;
  const std::int64_t total = count * row_bytes;
  const int cores = static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 8));
  const int threads = total < kThreaded ? 1 : max_threads > 0 ? std::min(max_threads, cores) : cores;
  if (threads > 1) {
    std::vector<Piece> cut;
    const std::int64_t size = std::max(kSplit, total / (4 * threads));
    for (const Piece& p : pieces)
      for (std::int64_t o = 0; o < p.bytes; o += size)
        cut.push_back({p.at + o, std::min(size, p.bytes - o), p.out + o});
    pieces.swap(cut);
  }
  std::atomic<std::size_t> next{0};
  std::atomic<int> error{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < pieces.size() && error.load() == 0;)
      if (!pread_all(direct.fd, pieces[i])) error.store(errno == 0 ? EIO : errno);
  };
  std::vector<std::thread> team;
  for (int t = 1; t < threads; ++t) team.emplace_back(work);
  work();
  for (std::thread& t : team) t.join();
  if (error.load() != 0) {
    errno = error.load();
    fail();
  }
  return true;
}

/// A read-only mapping of a file's bytes; `rows` points into it.
class FileMapping final : public MappedRows {
 public:
  FileMapping(void* base, std::size_t bytes, const float* rows) : base_(base), bytes_(bytes) {
    rows_ = rows;
  }
  ~FileMapping() override { ::munmap(base_, bytes_); }
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

 private:
  void* base_;
  std::size_t bytes_;
};

}  // namespace

std::unique_ptr<MappedRows> map_rows(const MatrixInfo& matrix, std::int64_t first, std::int64_t count) {
  if (!matrix.direct || matrix.direct->contiguous < 0 || count <= 0) return nullptr;
  const std::int64_t row_bytes = matrix.cols * static_cast<std::int64_t>(sizeof(float));
  const std::int64_t at = matrix.direct->contiguous + first * row_bytes, bytes = count * row_bytes;
  struct stat file {};
  if (at % static_cast<std::int64_t>(alignof(float)) != 0 || ::fstat(matrix.direct->fd, &file) != 0 ||
      file.st_size < at + bytes)
    return nullptr;  // read() then says what is wrong, as for any file
  const std::int64_t page = ::sysconf(_SC_PAGESIZE), start = at / page * page;
  const auto length = static_cast<std::size_t>(at + bytes - start);
  int flags = MAP_SHARED;
#ifdef MAP_POPULATE
  flags |= MAP_POPULATE;  // the page cache's pages entered now, not one fault at a time later
#endif
  void* base = ::mmap(nullptr, length, PROT_READ, flags, matrix.direct->fd, static_cast<off_t>(start));
  if (base == MAP_FAILED) return nullptr;
  return std::make_unique<FileMapping>(base, length,
                                       reinterpret_cast<const float*>(static_cast<const char*>(base) + (at - start)));
}

MatrixInfo open_matrix(hid_t file, const std::string& path, const std::string& object,
                       const std::string& what_to_do, const std::string& shape) {
  MatrixInfo info;
  info.dataset = open_dataset(file, path, object, what_to_do);
  Hid type = type_id(H5Dget_type(info.dataset));
  if (!type.valid()) read_failed(path, object, "its dtype");
  info.dtype = dtype_name(type);
  const TypeClass cls = type_class(type);
  if (cls != TypeClass::floating && cls != TypeClass::integer)
    throw InputError(where(path, object) + ": dtype " + info.dtype +
                     " is not numeric; store the matrix as float32, float64 or integers");
  const auto dims = extent(info.dataset);
  if (dims.size() != 2) {
    std::string hint;
    if (dims.size() == 1)
      hint = "; store one row per sample, e.g. reshape it to [" + std::to_string(dims[0]) +
             " x 1] for a single feature";
    throw InputError(where(path, object) + ": expected 2-D " + shape + ", got " +
                     describe_shape(dims) + hint);
  }
  info.rows = static_cast<std::int64_t>(dims[0]);
  info.cols = static_cast<std::int64_t>(dims[1]);
  info.direct = direct_rows(info.dataset, type, info.cols);
  return info;
}

bool all_finite(const float* x, std::int64_t n) {
  std::uint32_t bad = 0;
  for (std::int64_t i = 0; i < n; ++i)
    bad |= static_cast<std::uint32_t>((std::bit_cast<std::uint32_t>(x[i]) & 0x7f800000u) == 0x7f800000u);
  return bad == 0;
}

void read_rows(const MatrixInfo& matrix, const std::string& path, const std::string& object,
               std::int64_t first, std::int64_t count, float* out, int threads) {
  if (count <= 0 || matrix.cols <= 0) return;
  const std::string what =
      "rows " + std::to_string(first) + "-" + std::to_string(first + count - 1);
  if (matrix.direct && read_rows_direct(*matrix.direct, matrix, first, count, out, threads, [&] {
        throw InputError(where(path, object) + ": cannot read " + what + " (" +
                         std::strerror(errno) + "); the file may be truncated or corrupt");
      }))
    return;
  Hid file_space = space_id(H5Dget_space(matrix.dataset));
  const hsize_t start[2] = {static_cast<hsize_t>(first), 0};
  const hsize_t block[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(matrix.cols)};
  Hid mem_space = space_id(H5Screate_simple(2, block, nullptr));
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, block, nullptr) < 0)
    read_failed(path, object, what);
  // HDF5 converts float64 and integer storage to float32 on the way.
  if (H5Dread(matrix.dataset, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, out) < 0)
    read_failed(path, object, what);
}

std::vector<std::string> read_strings(hid_t dataset, const std::string& path,
                                      const std::string& object) {
  Hid type = type_id(H5Dget_type(dataset));
  if (!type.valid()) read_failed(path, object, "its dtype");
  if (type_class(type) != TypeClass::string)
    throw InputError(where(path, object) + ": dtype " + dtype_name(type) +
                     " is not text; store it as strings");
  const std::int64_t n = length_1d(dataset, path, object, "[n]");
  Hid space = space_id(H5Dget_space(dataset));
  std::vector<std::string> out;
  const bool ok = read_string_values(
      type, space, n,
      [&](hid_t mem, void* buf) {
        return H5Dread(dataset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
      },
      out);
  if (!ok) read_failed(path, object, "its strings");
  return out;
}

std::vector<double> read_doubles(hid_t dataset, const std::string& path,
                                 const std::string& object) {
  Hid type = type_id(H5Dget_type(dataset));
  const TypeClass cls = type.valid() ? type_class(type) : TypeClass::other;
  if (cls != TypeClass::floating && cls != TypeClass::integer)
    throw InputError(where(path, object) + ": dtype " + (type.valid() ? dtype_name(type) : "?") +
                     " is not numeric; store it as float64");
  return read_numeric_1d<double>(dataset, H5T_NATIVE_DOUBLE, path, object);
}

std::vector<std::int64_t> read_int64s(hid_t dataset, const std::string& path,
                                      const std::string& object, const std::string& too_big_hint) {
  const std::int64_t n = length_1d(dataset, path, object, "[n]");
  return read_int64_range(dataset, path, object, 0, n, too_big_hint);
}

std::vector<std::int64_t> read_int64_range(hid_t dataset, const std::string& path,
                                           const std::string& object, std::int64_t first,
                                           std::int64_t count, const std::string& too_big_hint) {
  Hid type = type_id(H5Dget_type(dataset));
  if (!type.valid() || type_class(type) != TypeClass::integer)
    throw InputError(where(path, object) + ": dtype " + (type.valid() ? dtype_name(type) : "?") +
                     " is not an integer type; store it as int64");
  std::vector<std::int64_t> values(static_cast<std::size_t>(count));
  if (count <= 0) return values;
  Hid file_space = space_id(H5Dget_space(dataset));
  const hsize_t start[1] = {static_cast<hsize_t>(first)};
  const hsize_t size[1] = {static_cast<hsize_t>(count)};
  Hid mem_space = space_id(H5Screate_simple(1, size, nullptr));
  const std::string what = "rows " + std::to_string(first) + "-" + std::to_string(first + count - 1);
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, size, nullptr) < 0)
    read_failed(path, object, what);
  // HDF5 converts every integer type to int64 exactly except uint64 above INT64_MAX, which it
  // clamps; those are read as uint64 and refused, so that no two ids silently become one.
  const bool wide_unsigned = H5Tget_sign(type) == H5T_SGN_NONE && H5Tget_size(type) >= 8;
  if (!wide_unsigned) {
    if (H5Dread(dataset, H5T_NATIVE_INT64, mem_space, file_space, H5P_DEFAULT, values.data()) < 0)
      read_failed(path, object, what);
    return values;
  }
  std::vector<std::uint64_t> raw(values.size());
  if (H5Dread(dataset, H5T_NATIVE_UINT64, mem_space, file_space, H5P_DEFAULT, raw.data()) < 0)
    read_failed(path, object, what);
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] > kMax)
      throw InputError(where(path, object) + " row " + std::to_string(first + static_cast<std::int64_t>(i)) +
                       " (0-based): uint64 value " + std::to_string(raw[i]) +
                       " is above int64's largest value, " + std::to_string(kMax) + "; " +
                       too_big_hint);
    values[i] = static_cast<std::int64_t>(raw[i]);
  }
  return values;
}


namespace {
std::string utf8_fault(const std::string& s, std::size_t at) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(s[at])));
  return std::string("not valid UTF-8 (byte ") + hex + " at offset " + std::to_string(at) + ")";
}

void check_utf8(const std::vector<std::string>& values, const std::string& path,
                const std::string& object, const std::string& what_to_do) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (const std::size_t at = invalid_utf8_at(values[i]); at != std::string::npos)
      throw InputError(where(path, object) + " row " + std::to_string(i) + " (0-based): " +
                       utf8_fault(values[i], at) + "; " + what_to_do);
}
}  // namespace

std::map<std::string, std::string> read_attributes(hid_t object) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attribute_name, &names);
  std::map<std::string, std::string> out;
  for (const auto& name : names) {
    Hid attr = attr_id(H5Aopen(object, name.c_str(), H5P_DEFAULT));
    if (!attr.valid()) continue;
    Hid type = type_id(H5Aget_type(attr));
    Hid space = space_id(H5Aget_space(attr));
    if (!type.valid() || !space.valid()) continue;
    // A sane bound before sizing buffers from the attribute's dataspace: segforge's attributes
    // are scalars, and a longer array is not shown (HDF5 itself checks that the values it holds
    // are as many as the dataspace claims).
    constexpr hssize_t kMaxAttributeValues = hssize_t{1} << 16;
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n < 0 || n > kMaxAttributeValues) continue;
    std::vector<std::string> parts;
    bool ok = true;
    switch (H5Tget_class(type)) {
      case H5T_STRING:
        ok = read_string_values(
            type, space, n, [&](hid_t mem, void* buf) { return H5Aread(attr, mem, buf); }, parts);
        break;
      case H5T_INTEGER:
        if (H5Tget_sign(type) == H5T_SGN_NONE) {
          std::vector<std::uint64_t> v(static_cast<std::size_t>(n));
          ok = n == 0 || H5Aread(attr, H5T_NATIVE_UINT64, v.data()) >= 0;
          for (auto x : v) parts.push_back(std::to_string(x));
        } else {
          std::vector<std::int64_t> v(static_cast<std::size_t>(n));
          ok = n == 0 || H5Aread(attr, H5T_NATIVE_INT64, v.data()) >= 0;
          for (auto x : v) parts.push_back(std::to_string(x));
        }
        break;
      case H5T_FLOAT: {
        std::vector<double> v(static_cast<std::size_t>(n));
        ok = n == 0 || H5Aread(attr, H5T_NATIVE_DOUBLE, v.data()) >= 0;
        for (auto x : v) parts.push_back(format_double(x));
        break;
      }
      case H5T_ENUM: {  // h5py stores numpy bool as an enum {FALSE, TRUE}
        Hid native = type_id(H5Tget_native_type(type, H5T_DIR_DEFAULT));
        if (!native.valid()) {
          ok = false;
          break;
        }
        const std::size_t size = H5Tget_size(native);
        std::vector<unsigned char> buf(static_cast<std::size_t>(n) * size);
        ok = n == 0 || H5Aread(attr, native, buf.data()) >= 0;
        for (hssize_t i = 0; ok && i < n; ++i) {
          char label[128] = {0};
          if (H5Tenum_nameof(native, buf.data() + i * size, label, sizeof label) < 0) {
            ok = false;
            break;
          }
          std::string text = label;
          if (text == "TRUE" || text == "FALSE")
            std::transform(text.begin(), text.end(), text.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
          parts.push_back(text);
        }
        break;
      }
      default:
        ok = false;  // compound, references, ...: not shown
    }
    if (ok) out[name] = join(parts, ",");
  }
  return out;
}

std::vector<std::string> read_feature_names(hid_t file, const std::string& path,
                                            std::int64_t n_features, const std::string& matrix) {
  const std::string object = "/feature_names";
  if (!object_exists(file, object)) return {};
  Hid dataset = open_dataset(file, path, object, "remove it or store one name per column");
  Hid type = type_id(H5Dget_type(dataset));
  if (!type.valid() || type_class(type) != TypeClass::string)
    throw InputError(where(path, object) + ": dtype " + (type.valid() ? dtype_name(type) : "?") +
                     " is not text; store the column names as strings (or remove " + object + ")");
  const std::int64_t n = length_1d(dataset, path, object, "[n_features]");
  if (n != n_features)
    throw InputError(where(path, object) + ": " + std::to_string(n) + " names for " +
                     std::to_string(n_features) + " columns in " + matrix +
                     "; store one name per column (or remove " + object + ")");
  std::vector<std::string> names = read_strings(dataset, path, object);
  check_utf8(names, path, object, "store the names as UTF-8 text (outputs tag them UTF-8)");
  return names;
}

Ids read_ids(hid_t file, const std::string& path, std::int64_t n_rows, const std::string& matrix) {
  const std::string object = "/ids";
  Ids ids;
  if (!object_exists(file, object)) return ids;
  Hid dataset = open_dataset(file, path, object, "remove it or store one id per row");
  Hid type = type_id(H5Dget_type(dataset));
  const TypeClass cls = type.valid() ? type_class(type) : TypeClass::other;
  if (cls != TypeClass::integer && cls != TypeClass::string)
    throw InputError(where(path, object) + ": dtype " + (type.valid() ? dtype_name(type) : "?") +
                     " is neither integer nor string; store ids as int64 or strings");
  const std::int64_t n = length_1d(dataset, path, object, "[n_samples]");
  if (n != n_rows)
    throw InputError(where(path, object) + ": " + std::to_string(n) + " ids for " +
                     std::to_string(n_rows) + " rows in " + matrix +
                     "; store one id per row (or remove " + object + ")");
  if (cls == TypeClass::integer) {
    ids.numeric = read_int64s(dataset, path, object, kIdsTooBig);
  } else {
    ids.text = read_strings(dataset, path, object);
    check_utf8(ids.text, path, object, "store the ids as UTF-8 text (outputs tag them UTF-8)");
  }
  return ids;
}

Scaler read_scaler(hid_t file, const std::string& path, std::int64_t n_features) {
  const std::string object = "/scaler";
  Scaler scaler;
  if (!object_exists(file, object)) return scaler;
  if (!group_exists(file, object))
    throw InputError(where(path, object) +
                     ": is a dataset, expected a group with mean, scale "
                     "and transform; rename it or remove it");
  auto check_length = [&](std::int64_t n, const std::string& name) {
    if (n != n_features)
      throw InputError(where(path, object + "/" + name) + ": " + std::to_string(n) +
                       " values for " + std::to_string(n_features) +
                       " features; store one per feature (or remove /scaler)");
  };
  for (const char* name : {"mean", "scale"})
    if (!object_exists(file, object + "/" + name))
      throw InputError(where(path, object) + ": no dataset '" + name +
                       "'; a scaler needs mean and scale [n_features] (or remove /scaler)");
  {
    Hid mean = open_dataset(file, path, object + "/mean", "store mean [n_features]");
    scaler.mean = read_doubles(mean, path, object + "/mean");
    check_length(static_cast<std::int64_t>(scaler.mean.size()), "mean");
  }
  {
    Hid scale = open_dataset(file, path, object + "/scale", "store scale [n_features]");
    scaler.scale = read_doubles(scale, path, object + "/scale");
    check_length(static_cast<std::int64_t>(scaler.scale.size()), "scale");
  }
  if (object_exists(file, object + "/transform")) {
    Hid transform = open_dataset(file, path, object + "/transform", "store transform [n_features]");
    scaler.transform = read_strings(transform, path, object + "/transform");
    check_length(static_cast<std::int64_t>(scaler.transform.size()), "transform");
  } else {
    scaler.transform.assign(static_cast<std::size_t>(n_features), "identity");
  }
  // Winsorizing bounds: optional, but only as a pair (one without the other cannot be applied).
  const bool has_low = object_exists(file, object + "/clip_low");
  const bool has_high = object_exists(file, object + "/clip_high");
  if (has_low != has_high)
    throw InputError(where(path, object) + ": has " + (has_low ? "clip_low" : "clip_high") +
                     " without " + (has_low ? "clip_high" : "clip_low") +
                     "; store both winsorizing bounds [n_features] or neither");
  auto read_bound = [&](const std::string& name) {
    Hid bound = open_dataset(file, path, object + "/" + name, "store it [n_features]");
    std::vector<double> values = read_doubles(bound, path, object + "/" + name);
    check_length(static_cast<std::int64_t>(values.size()), name);
    return values;
  };
  if (has_low) {
    scaler.clip_low = read_bound("clip_low");
    scaler.clip_high = read_bound("clip_high");
  }
  return scaler;
}

// ---- writing ----------------------------------------------------------------------------

std::string created_by() {
  const std::string version = SEGFORGE_VERSION;
  return version.empty() ? "segforge" : "segforge " + version;
}

namespace {
/// What to tell the user about a failed system call under a write: a full disk or quota says
/// so (freeing space is the fix, not permissions).
std::string os_advice(int err) {
  if (err == ENOSPC || err == EDQUOT)
    return std::string("the disk is full (") + std::strerror(err) +
           "); free space on it or write the output elsewhere";
  if (err == EACCES || err == EPERM || err == EROFS)
    return std::string(std::strerror(err)) + "; check that the folder is writable";
  return "";
}
}  // namespace

void write_failed(const std::string& path, const std::string& what) {
  const std::string advice = os_advice(hdf5_errno());
  if (!advice.empty()) throw RuntimeFailure(path + ": cannot write " + what + ": " + advice);
  const std::string reason = hdf5_reason();
  throw RuntimeFailure(path + ": cannot write " + what +
                       (reason.empty() ? "" : " (HDF5: " + reason + ")") +
                       "; check free space and permissions");
}

Hid create_file(const std::string& temp_path, const std::string& path) {
  quiet_hdf5();
  Hid fapl = plist_id(H5Pcreate(H5P_FILE_ACCESS));
#if H5_VERSION_GE(1, 10, 7)
  if (fapl.valid()) H5Pset_file_locking(fapl, true, true);
#endif
  // STRONG: closing the file closes what is still open in it, so the flush happens in that call
  // and its failure (a full disk) is seen. Under HDF5's default (WEAK) a group or dataset left
  // open defers the real close to its own H5*close, in a destructor that cannot report it: an
  // incomplete file was then committed as if whole.
  if (fapl.valid()) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  // EXCL: a file or symlink already at the temporary path is never followed or overwritten.
  Hid file = file_id(H5Fcreate(temp_path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT,
                               fapl.valid() ? fapl.get() : H5P_DEFAULT));
  if (!file.valid()) {
    const int err = hdf5_errno();
    const std::string advice = os_advice(err);
    if (!advice.empty())
      throw RuntimeFailure(path + ": cannot create a temporary file beside it: " + advice);
    if (err == EEXIST)
      throw RuntimeFailure(path + ": cannot create the temporary file " + temp_path +
                           ": something already exists there; remove it and run again");
    const std::string reason = hdf5_reason();
    throw RuntimeFailure(path + ": cannot create a temporary file beside it" +
                         (reason.empty() ? "" : " (HDF5: " + reason + ")") +
                         "; check that the folder is writable");
  }
  return file;
}

Hid create_group(hid_t loc, const std::string& name, const std::string& path) {
  Hid group = group_id(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!group.valid()) write_failed(path, "group '" + name + "'");
  return group;
}

void write_dataset(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                   const std::vector<hsize_t>& dims, const void* data, const std::string& path,
                   const std::vector<hsize_t>& chunk) {
  const std::string what = "dataset '" + name + "'";
  Hid space = space_id(dims.empty()
                           ? H5Screate(H5S_SCALAR)
                           : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  if (!space.valid()) write_failed(path, what);
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  Hid dcpl = plist_id(H5Pcreate(H5P_DATASET_CREATE));
  if (!dcpl.valid()) write_failed(path, what);
  // HDF5 refuses chunks on an empty extent; such a dataset stays contiguous.
  if (!chunk.empty() && n > 0 &&
      H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()) < 0)
    write_failed(path, what);
  Hid dataset =
      dataset_id(H5Dcreate2(loc, name.c_str(), file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
  if (!dataset.valid()) write_failed(path, what);
  if (n > 0 && data != nullptr &&
      H5Dwrite(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    write_failed(path, what);
}

namespace {
Hid utf8_vlen_type() {
  Hid type = type_id(H5Tcopy(H5T_C_S1));
  if (type.valid()) {
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
  }
  return type;
}
}  // namespace

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values,
                   const std::string& path) {
  // The strings are tagged UTF-8; bytes that are not would make h5py's asstr() and pandas fail.
  for (std::size_t i = 0; i < values.size(); ++i)
    if (const std::size_t at = invalid_utf8_at(values[i]); at != std::string::npos)
      throw InputError(path + ": cannot store " + name + " row " + std::to_string(i) +
                       " (0-based): " + utf8_fault(values[i], at) +
                       "; re-encode the input as UTF-8");
  Hid type = utf8_vlen_type();
  if (!type.valid()) write_failed(path, "dataset '" + name + "'");
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) ptrs.push_back(v.c_str());
  write_dataset(loc, name, type, type, {static_cast<hsize_t>(values.size())}, ptrs.data(), path);
}

void write_string_attribute(hid_t object, const std::string& name, const std::string& value,
                            const std::string& path) {
  const std::string what = "attribute '" + name + "'";
  Hid type = utf8_vlen_type();
  Hid space = space_id(H5Screate(H5S_SCALAR));
  if (!type.valid() || !space.valid()) write_failed(path, what);
  Hid attr = attr_id(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
  const char* ptr = value.c_str();
  if (!attr.valid() || H5Awrite(attr, type, &ptr) < 0) write_failed(path, what);
}

void write_int_attribute(hid_t object, const std::string& name, std::int64_t value,
                         const std::string& path) {
  const std::string what = "attribute '" + name + "'";
  Hid space = space_id(H5Screate(H5S_SCALAR));
  if (!space.valid()) write_failed(path, what);
  Hid attr =
      attr_id(H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr, H5T_NATIVE_INT64, &value) < 0) write_failed(path, what);
}

void write_root_attributes(hid_t file, const std::string& format,
                           const std::map<std::string, std::string>& extra,
                           const std::string& path) {
  Hid root = group_id(H5Gopen2(file, "/", H5P_DEFAULT));
  if (!root.valid()) write_failed(path, "the root group");
  write_string_attribute(root, "format", format, path);
  write_int_attribute(root, "format_version", 1, path);
  write_string_attribute(root, "created_by", created_by(), path);
  for (const auto& [name, value] : extra) {
    if (name.empty() || name == "format" || name == "format_version" || name == "created_by")
      continue;
    write_string_attribute(root, name, value, path);
  }
}

void write_ids(hid_t file, const Ids& ids, const std::string& path) {
  if (!ids.numeric.empty()) {
    write_dataset(file, "ids", H5T_STD_I64LE, H5T_NATIVE_INT64,
                  {static_cast<hsize_t>(ids.numeric.size())}, ids.numeric.data(), path);
  } else if (!ids.text.empty()) {
    write_strings(file, "ids", ids.text, path);
  }
}

void write_scaler(hid_t file, const Scaler& scaler, const std::string& path) {
  if (scaler.empty()) return;
  SEGFORGE_ASSERT(scaler.scale.size() == scaler.mean.size(),
                  "scaler mean and scale differ in length");
  SEGFORGE_ASSERT(scaler.transform.empty() || scaler.transform.size() == scaler.mean.size(),
                  "scaler transform and mean differ in length");
  Hid group = create_group(file, "scaler", path);
  const hsize_t n = scaler.mean.size();
  write_dataset(group, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {n}, scaler.mean.data(), path);
  write_dataset(group, "scale", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {n}, scaler.scale.data(), path);
  if (scaler.transform.empty())
    write_strings(group, "transform", std::vector<std::string>(n, "identity"), path);
  else
    write_strings(group, "transform", scaler.transform, path);
  SEGFORGE_ASSERT(scaler.clip_low.size() == scaler.clip_high.size() &&
                      (scaler.clip_low.empty() || scaler.clip_low.size() == scaler.mean.size()),
                  "scaler clip bounds must both be empty or have one entry per feature");
  if (!scaler.clip_low.empty()) {
    write_dataset(group, "clip_low", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {n}, scaler.clip_low.data(), path);
    write_dataset(group, "clip_high", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {n}, scaler.clip_high.data(), path);
  }
}

}  // namespace segforge::io
