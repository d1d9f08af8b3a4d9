#pragma once
// MPI for segforge: `mpirun -np R segforge fit ...`. Every rank runs the same driver code (src/)
// against a DistributedBackend, a decorator of the Backend seam that wraps the rank's own local
// backend (CPU, or the CUDA device its node-local rank picks). The drivers do not know about MPI.
//
// Two kinds of dataset:
//   - partitioned (adopt_part): rank r holds the contiguous rows [starts[r], starts[r+1]) of the
//     global matrix and n_samples() is the global N. Each operation runs on the local rows, then
//     the per-rank partials (per-cluster sums, counts, inertia, φ) are gathered to every rank
//     and added in rank order, so every rank holds bit-identical results and a fixed R gives the
//     same model on every run. Rows asked for by global index (gather) come from their owners.
//   - replicated (upload): the small things the drivers upload (k-means|| candidates,
//     silhouette samples, mini-batch init samples, gap reference sets) are the same on every
//     rank, so operations on them run locally with no communication.
//
// Per-row outputs (assign's labels and distances) are [n_samples] on every rank: the seam sizes
// them so and the drivers index them globally (empty-cluster relocation, silhouette sampling),
// so each rank fills its rows and they are all-gathered. Rank 0 writes the outputs.
//
// No header here includes mpi.h: tools/ and tests see plain C++.

#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "segforge/backend.hpp"
#include "segforge/io.hpp"

namespace segforge::mpi {

/// Whether this process was started by an MPI launcher: Open MPI's mpirun/mpiexec
/// (OMPI_COMM_WORLD_SIZE), MPICH or Intel MPI (PMI_SIZE), or srun with PMIx (PMIX_RANK).
bool launched();

/// MPI for the program's lifetime. Initialises MPI (MPI_THREAD_FUNNELED: only the main thread
/// calls MPI; OpenMP threads stay inside the local backend) when launched(), and restricts
/// CUDA_VISIBLE_DEVICES to one device per node-local rank (see select_gpu). Without a launcher
/// it does nothing and every other function here sees one process: a plain `segforge` run and
/// the non-MPI test suite never touch MPI.
class Session {
 public:
  Session(int& argc, char**& argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

/// True between MPI_Init and MPI_Finalize of a Session.
bool active();
int rank();        ///< 0 without MPI
int size();        ///< 1 without MPI
int local_rank();  ///< rank among the processes of this node (MPI_COMM_TYPE_SHARED)

/// The end of a run, on every rank: `status` is this rank's exit status (0: success) and
/// `message` its one-line error (printed as "segforge: message"). Returns the status every rank
/// exits with, after the lowest-ranked failing rank has printed its message. When every rank
/// gets here (success, or an error every rank hit alike, such as bad input) they agree at once;
/// a rank that failed alone (the others are then waiting in a collective) prints its message and
/// calls MPI_Abort with its status after `abort_seconds` (the others cannot be reached any
/// other way). Without MPI: prints a non-empty message and returns `status`.
int finish(int status, const std::string& message, double abort_seconds = 20.0);

/// The rows rank `rank` of `size` reads: near-equal contiguous parts of [0, n_rows), cut at
/// multiples of 2048 rows (the CPU backend's fixed chunk, cpu/chunks.hpp), so every rank's
/// chunk partials are the single process's and only the additions across ranks round
/// differently. Earlier ranks get the extra chunk; a rank may get none when n_rows < 2048·size.
struct RowRange {
  std::int64_t begin = 0;
  std::int64_t count = 0;
};
RowRange row_range(std::int64_t n_rows, int rank, int size);

// ---- collectives for tools/ (every rank calls them at the same point) -----------------------

/// Every rank's value, in rank order.
std::vector<std::int64_t> allgather(std::int64_t value);
/// Where a rank-local step may fail (reading its rows): when any rank caught an error, every
/// rank throws the lowest-ranked one's (same exit status and message), so that all of them
/// leave together instead of the others waiting in the next collective. Without MPI: rethrows.
void agree(std::exception_ptr error);
/// Rank 0's text on every rank.
std::string broadcast(const std::string& text);
/// Every rank's ids, concatenated in rank order on rank 0 (empty elsewhere).
Ids gather_ids(const Ids& local);
/// A stop asked for on any rank (a signal that reached only some): true on every rank.
bool any(bool flag);

/// One GPU per rank: when the node has several devices (CUDA_VISIBLE_DEVICES lists several, or
/// when unset, /proc/driver/nvidia/gpus has several), keep the one at node-local rank mod count
/// in CUDA_VISIBLE_DEVICES. Must run before the first CUDA call (Session does it). A launcher
/// that already binds one device per task (srun --gpus-per-task=1) leaves one: nothing to do.
void select_gpu();

// ---- the decorator --------------------------------------------------------------------------

class DistributedBackend : public Backend {
 public:
  /// Collective: every rank passes its part of the rows (possibly empty), in rank order;
  /// `weights` are the part's sample weights (empty: all 1), kept for mini-batch steps.
  /// Returns the partitioned dataset whose n_samples() is the global row count.
  virtual std::unique_ptr<Dataset> adopt_part(std::unique_ptr<Dataset> local,
                                              std::span<const float> weights = {}) = 0;
  /// The wrapped backend of this rank.
  virtual Backend& local() = 0;
};

/// Wraps this rank's backend (collective). Every rank must run the same kind of backend on the
/// same kind of device (a homogeneous partition): the steps on replicated data run on every rank
/// and must come out the same; a mix of kinds (CPU on some ranks, CUDA on others) is an
/// InputError. Exact silhouette and pairwise distances on a partitioned dataset replicate its
/// rows on every rank when they are few (at most max_replicated_rows rows and 2^26 values),
/// which gives the single-process result; beyond that they are an InputError ("use
/// --silhouette sample=N").
std::unique_ptr<DistributedBackend> make_distributed_backend(std::unique_ptr<Backend> local,
                                                             std::int64_t max_replicated_rows = 200000);

}  // namespace segforge::mpi
