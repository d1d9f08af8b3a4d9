// checkpoint.h5: a K-Means driver's state at a step boundary (include/segforge/checkpoint.hpp).
// Matrices and vectors are datasets (/centres, /previous, /counts, /best/centroids,
// /best/counts, /run_inertia); scalars are root attributes, doubles in C99 hex-float text so
// that they come back bit for bit. Written to a temporary file, flushed and renamed: a kill at
// any moment leaves the previous checkpoint whole.

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>

#include "atomic_file.hpp"
#include "hdf5_util.hpp"
#include "segforge/checkpoint.hpp"
#include "segforge/error.hpp"
#include "segforge/validate.hpp"

namespace segforge {

namespace {

constexpr const char* kFormat = "segforge-checkpoint";

void write_matrix(hid_t loc, const std::string& name, const Matrix<float>& m, const std::string& path) {
  io::write_dataset(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                    {static_cast<hsize_t>(m.rows()), static_cast<hsize_t>(m.cols())},
                    m.empty() ? nullptr : m.data(), path);
}

void write_vector(hid_t loc, const std::string& name, const std::vector<double>& v, const std::string& path) {
  io::write_dataset(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {static_cast<hsize_t>(v.size())},
                    v.empty() ? nullptr : v.data(), path);
}

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), file_(io::open_for_read(path)) {
    attributes_ = io::read_attributes(file_);
    const auto format = attributes_.find("format");
    if (format == attributes_.end() || format->second != kFormat)
      throw InputError(path + ": not a segforge checkpoint (no format=\"" + kFormat +
                       "\" attribute); pass the file given to --checkpoint");
  }

  std::string text(const std::string& name) const {
    const auto it = attributes_.find(name);
    if (it == attributes_.end()) damaged("attribute '" + name + "' is missing");
    return it->second;
  }
  std::int64_t integer(const std::string& name) const {
    const std::string t = text(name);
    char* end = nullptr;
    const long long v = std::strtoll(t.c_str(), &end, 10);
    if (end == t.c_str() || *end != '\0') damaged("attribute '" + name + "' is not an integer");
    return v;
  }
  /// An integer attribute stored in an int field.
  int small_integer(const std::string& name) const {
    const std::int64_t v = integer(name);
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
      damaged("attribute '" + name + "' is out of range");
    return static_cast<int>(v);
  }
  std::uint64_t unsigned_integer(const std::string& name) const {
    const std::string t = text(name);
    char* end = nullptr;
    const unsigned long long v = std::strtoull(t.c_str(), &end, 16);
    if (end == t.c_str() || *end != '\0') damaged("attribute '" + name + "' is not hexadecimal");
    return v;
  }
  double real(const std::string& name) const {
    const std::string t = text(name);
    char* end = nullptr;
    const double v = std::strtod(t.c_str(), &end);
    if (end == t.c_str() || *end != '\0') damaged("attribute '" + name + "' is not a number");
    return v;
  }

  Matrix<float> matrix(const std::string& object) const {
    io::Hid dataset = io::open_dataset(file_, path_, object, "write it with segforge fit --checkpoint");
    const std::vector<hsize_t> dims = io::extent(dataset);
    if (dims.size() != 2) damaged(object + " is not 2-D");
    Matrix<float> m(static_cast<std::int64_t>(dims[0]), static_cast<std::int64_t>(dims[1]));
    if (m.size() > 0 && H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data()) < 0)
      damaged("cannot read " + object + " (" + io::hdf5_reason() + ")");
    return m;
  }
  std::vector<double> doubles(const std::string& object) const {
    io::Hid dataset = io::open_dataset(file_, path_, object, "write it with segforge fit --checkpoint");
    return io::read_doubles(dataset, path_, object);
  }

  [[noreturn]] void damaged(const std::string& what) const {
    throw InputError(path_ + ": damaged checkpoint (" + what + "); resume from an earlier one or start afresh");
  }

 private:
  std::string path_;
  io::Hid file_;
  std::map<std::string, std::string> attributes_;
};

}  // namespace

void write_checkpoint(const std::string& path, const FitState& s) {
  std::map<std::string, std::string> a;
  a["algorithm"] = s.algorithm;
  a["phase"] = s.phase;
  a["settings"] = s.settings;
  for (int i = 0; i < 4; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, s.rng[i]);
    a["rng_" + std::to_string(i)] = buf;
  }
  a["run"] = std::to_string(s.run);
  a["step"] = std::to_string(s.step);
  a["n_empty"] = std::to_string(s.n_empty);
  a["best_inertia"] = hex_float(s.best_inertia);
  a["best_n_iter"] = std::to_string(s.best_n_iter);
  a["best_converged"] = s.best_converged ? "1" : "0";
  a["best_n_empty"] = std::to_string(s.best_n_empty);
  a["best_run"] = std::to_string(s.best_run);
  a["swaps_accepted"] = std::to_string(s.swaps_accepted);
  a["since_reassign"] = std::to_string(s.since_reassign);
  a["has_ewa"] = s.has_ewa ? "1" : "0";
  a["ewa"] = hex_float(s.ewa);
  a["has_ewa_min"] = s.has_ewa_min ? "1" : "0";
  a["ewa_min"] = hex_float(s.ewa_min);
  a["no_improvement"] = std::to_string(s.no_improvement);

  io::TempOutput out(path);
  {
    io::Hid file = io::create_file(out.temp_path(), path);
    write_matrix(file, "centres", s.centres, path);
    write_matrix(file, "previous", s.previous, path);
    write_vector(file, "counts", s.counts, path);
    write_vector(file, "run_inertia", s.run_inertia, path);
    {
      io::Hid best = io::create_group(file, "best", path);
      write_matrix(best, "centroids", s.best_centroids, path);
      write_vector(best, "counts", s.best_counts, path);
    }  // closed before the file, whose close must be the one that flushes (create_file)
    io::write_root_attributes(file, kFormat, a, path);
    if (!file.close()) io::write_failed(path, "the file (closing it)");
  }
  out.commit(/*durable=*/true);
}

std::string hex_float(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

FitState read_checkpoint(const std::string& path) {
  const Reader r(path);
  FitState s;
  s.algorithm = r.text("algorithm");
  s.phase = r.text("phase");
  s.settings = r.text("settings");
  for (int i = 0; i < 4; ++i) s.rng[i] = r.unsigned_integer("rng_" + std::to_string(i));
  s.run = r.small_integer("run");
  s.step = r.integer("step");
  s.n_empty = r.small_integer("n_empty");
  s.best_inertia = r.real("best_inertia");
  s.best_n_iter = r.small_integer("best_n_iter");
  s.best_converged = r.integer("best_converged") != 0;
  s.best_n_empty = r.small_integer("best_n_empty");
  s.best_run = r.small_integer("best_run");
  s.swaps_accepted = r.small_integer("swaps_accepted");
  s.since_reassign = r.integer("since_reassign");
  s.has_ewa = r.integer("has_ewa") != 0;
  s.ewa = r.real("ewa");
  s.has_ewa_min = r.integer("has_ewa_min") != 0;
  s.ewa_min = r.real("ewa_min");
  s.no_improvement = r.small_integer("no_improvement");
  s.centres = r.matrix("/centres");
  s.previous = r.matrix("/previous");
  s.counts = r.doubles("/counts");
  s.run_inertia = r.doubles("/run_inertia");
  s.best_centroids = r.matrix("/best/centroids");
  s.best_counts = r.doubles("/best/counts");
  validate_checkpoint(s, path);  // shapes, values and the phase's needs (src/validate.cpp)
  return s;
}

}  // namespace segforge
