#pragma once
// Internal to mpi/: the communicators and the typed collectives the decorator and the session
// share. The only header that includes mpi.h.

#include <mpi.h>

#include <climits>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "segforge/error.hpp"

namespace segforge::mpi::detail {

/// The communicator of the data collectives: a duplicate of MPI_COMM_WORLD, so that nothing
/// else (the exit agreement uses another) can be matched with them.
MPI_Comm data_comm();

template <class T> MPI_Datatype type_of();
template <> inline MPI_Datatype type_of<double>() { return MPI_DOUBLE; }
template <> inline MPI_Datatype type_of<float>() { return MPI_FLOAT; }
template <> inline MPI_Datatype type_of<std::int32_t>() { return MPI_INT32_T; }
template <> inline MPI_Datatype type_of<std::int64_t>() { return MPI_INT64_T; }
template <> inline MPI_Datatype type_of<char>() { return MPI_CHAR; }

/// MPI counts are int (MPI-3): a larger count is a runtime failure with a clear message.
inline int count_of(std::int64_t n, const char* what) {
  if (n < 0 || n > INT_MAX)
    throw RuntimeFailure(std::string("MPI: ") + what + " of " + std::to_string(n) +
                         " elements exceeds one message (2^31 - 1); use more ranks");
  return static_cast<int>(n);
}

inline void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw RuntimeFailure(std::string("MPI: ") + what + " failed");
}

/// Every rank's `local` [m], rank after rank: [size x m].
template <class T>
std::vector<T> allgather(std::span<const T> local, int size) {
  std::vector<T> all(local.size() * static_cast<std::size_t>(size));
  check(MPI_Allgather(local.data(), count_of(static_cast<std::int64_t>(local.size()), "allgather"),
                      type_of<T>(), all.data(), static_cast<int>(local.size()), type_of<T>(),
                      data_comm()),
        "MPI_Allgather");
  return all;
}

/// Every rank's `local` (`counts[r]` units of `unit` each, rank r), concatenated in rank order
/// into `out` (sized by the caller).
/// MPI_Allgatherv's recvcounts and displacements for rank r's `counts[r]` units in rank order.
struct Layout {
  std::vector<int> counts, displs;
};
inline Layout layout_of(std::span<const std::int64_t> counts) {
  Layout l{std::vector<int>(counts.size()), std::vector<int>(counts.size())};
  std::int64_t at = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    l.counts[r] = count_of(counts[r], "allgatherv");
    l.displs[r] = count_of(at, "allgatherv displacement");
    at += counts[r];
  }
  return l;
}

template <class T>
void allgatherv(std::span<const T> local, std::span<const std::int64_t> counts, T* out,
                MPI_Datatype unit, std::int64_t unit_size) {
  const Layout l = layout_of(counts);
  const int mine = count_of(static_cast<std::int64_t>(local.size()) / unit_size, "allgatherv");
  check(MPI_Allgatherv(local.data(), mine, unit, out, l.counts.data(), l.displs.data(), unit,
                       data_comm()),
        "MPI_Allgatherv");
}

}  // namespace segforge::mpi::detail
