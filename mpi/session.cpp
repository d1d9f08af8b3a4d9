// MPI start-up and shut-down, the exit agreement, the row partition and the few collectives
// tools/ needs.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <new>
#include <sstream>
#include <thread>

#include "comm.hpp"
#include "distributed.hpp"

namespace segforge::mpi {

namespace {

struct State {
  bool active = false;
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  MPI_Comm data = MPI_COMM_NULL;  ///< the data collectives
  MPI_Comm exit = MPI_COMM_NULL;  ///< finish() only
};
State g;

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

}  // namespace

namespace detail {
MPI_Comm data_comm() { return g.data; }
}  // namespace detail

using detail::check;

bool launched() {
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMI_SIZE") || env_set("PMIX_RANK") ||
         env_set("PMI_RANK") || env_set("MV2_COMM_WORLD_SIZE");
}

Session::Session(int& argc, char**& argv) {
  if (!launched()) return;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g.size);
  MPI_Comm_dup(MPI_COMM_WORLD, &g.data);
  MPI_Comm_dup(MPI_COMM_WORLD, &g.exit);
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &g.local_rank);
  MPI_Comm_free(&node);
  g.active = true;
  select_gpu();
}

Session::~Session() {
  if (!g.active) return;
  MPI_Comm_free(&g.data);
  MPI_Comm_free(&g.exit);
  g.active = false;
  MPI_Finalize();
}

bool active() { return g.active; }
int rank() { return g.rank; }
int size() { return g.size; }
int local_rank() { return g.local_rank; }

int finish(int status, const std::string& message, double abort_seconds) {
  auto print = [&](bool with_rank) {
    if (status == 0 || message.empty()) return;
    std::fflush(stdout);
    std::cerr << "segforge: " << (with_rank ? "rank " + std::to_string(g.rank) + ": " : "")
              << message << std::endl;
  };
  if (!g.active) {
    print(false);
    return status;
  }
  // Every rank posts its status on a communicator of its own, so that a rank still waiting in
  // a data collective cannot be matched with it. Polled with short sleeps: the ranks that are
  // done must not take the cores from rank 0 while it writes the outputs.
  std::vector<int> all(static_cast<std::size_t>(g.size), 0);
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_Iallgather(&status, 1, MPI_INT, all.data(), 1, MPI_INT, g.exit, &request);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(abort_seconds);
  int done = 0;
  while (true) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) break;
    if (status != 0 && std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!done) {
    // This rank failed alone: the others wait in a collective it will never join.
    print(g.rank != 0);
    MPI_Abort(MPI_COMM_WORLD, status);
  }
  for (int r = 0; r < g.size; ++r)
    if (all[static_cast<std::size_t>(r)] != 0) {
      if (r == g.rank) print(g.rank != 0);
      return all[static_cast<std::size_t>(r)];
    }
  return 0;
}

RowRange row_range(std::int64_t n_rows, int rank, int size) {
  constexpr std::int64_t kAlign = 2048;  // cpu::kChunkRows
  const std::int64_t chunks = (n_rows + kAlign - 1) / kAlign;
  const std::int64_t base = chunks / size, extra = chunks % size;
  const std::int64_t c0 = rank * base + std::min<std::int64_t>(rank, extra);
  const std::int64_t c1 = c0 + base + (rank < extra ? 1 : 0);
  const std::int64_t begin = std::min(n_rows, c0 * kAlign);
  const std::int64_t end = std::min(n_rows, c1 * kAlign);
  return {begin, end - begin};
}

std::vector<std::int64_t> allgather(std::int64_t value) {
  if (!g.active) return {value};
  return detail::allgather<std::int64_t>(std::span(&value, 1), g.size);
}

void agree(std::exception_ptr error) {
  if (!g.active) {
    if (error) std::rethrow_exception(error);
    return;
  }
  int code = 0;
  std::string message;
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const Error& e) {
      code = e.exit_code();
      message = e.what();
    } catch (const std::bad_alloc&) {
      code = 1;
      message = "out of memory; use a machine with more memory, more ranks or a smaller input";
    } catch (const std::exception& e) {
      code = 1;
      message = e.what();
    }
  }
  const std::vector<int> codes = detail::allgather<int>(std::span<const int>(&code, 1), g.size);
  int first = -1;
  for (int r = 0; r < g.size && first < 0; ++r)
    if (codes[static_cast<std::size_t>(r)] != 0) first = r;
  if (first < 0) return;
  // The first failing rank's message, to everyone.
  std::int64_t length = static_cast<std::int64_t>(message.size());
  check(MPI_Bcast(&length, 1, MPI_INT64_T, first, g.data), "MPI_Bcast");
  message.resize(static_cast<std::size_t>(length));
  check(MPI_Bcast(message.data(), detail::count_of(length, "message"), MPI_CHAR, first, g.data),
        "MPI_Bcast");
  if (g.rank == first) std::rethrow_exception(error);
  switch (codes[static_cast<std::size_t>(first)]) {
    case 2: throw InputError(message);
    case 1: throw RuntimeFailure(message);
    case Interrupted::kExitCode: throw Interrupted(message);
    case 3: throw InternalError(message);
    default: throw Error(message, codes[static_cast<std::size_t>(first)]);
  }
}

std::string broadcast(const std::string& text) {
  if (!g.active) return text;
  std::int64_t length = static_cast<std::int64_t>(text.size());
  check(MPI_Bcast(&length, 1, MPI_INT64_T, 0, g.data), "MPI_Bcast");
  std::string out = g.rank == 0 ? text : std::string(static_cast<std::size_t>(length), '\0');
  check(MPI_Bcast(out.data(), detail::count_of(length, "broadcast"), MPI_CHAR, 0, g.data),
        "MPI_Bcast");
  return out;
}

bool any(bool flag) {
  if (!g.active) return flag;
  int mine = flag ? 1 : 0, out = 0;
  check(MPI_Allreduce(&mine, &out, 1, MPI_INT, MPI_MAX, g.data), "MPI_Allreduce");
  return out != 0;
}

namespace {
/// Every rank's `local` concatenated in rank order into `out` on rank 0 (resized there).
template <class T, class Out>
void gather_to_root(const T* local, std::int64_t n, Out& out) {
  const std::vector<std::int64_t> counts = allgather(n);
  std::vector<int> c(counts.size()), displs(counts.size());
  std::int64_t at = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    c[r] = detail::count_of(counts[r], "ids");
    displs[r] = detail::count_of(at, "ids");
    at += counts[r];
  }
  if (g.rank == 0) out.resize(static_cast<std::size_t>(at));
  check(MPI_Gatherv(local, detail::count_of(n, "ids"), detail::type_of<T>(),
                    g.rank == 0 ? out.data() : nullptr, c.data(), displs.data(), detail::type_of<T>(),
                    0, g.data),
        "MPI_Gatherv");
}
}  // namespace

Ids gather_ids(const Ids& local) {
  if (!g.active) return local;
  // 0: no ids, 1: numeric, 2: text (a rank with no rows has none, whatever the file holds).
  const std::int64_t kind = local.numeric.empty() ? (local.text.empty() ? 0 : 2) : 1;
  std::int64_t any_kind = 0;
  check(MPI_Allreduce(&kind, &any_kind, 1, MPI_INT64_T, MPI_MAX, g.data), "MPI_Allreduce");
  Ids out;
  if (any_kind == 1) {
    gather_to_root(local.numeric.data(), static_cast<std::int64_t>(local.numeric.size()), out.numeric);
  } else if (any_kind == 2) {
    // Text: the lengths, then the bytes.
    std::vector<std::int64_t> lengths, all_lengths;
    std::string bytes, all_bytes;
    for (const auto& s : local.text) {
      lengths.push_back(static_cast<std::int64_t>(s.size()));
      bytes += s;
    }
    gather_to_root(lengths.data(), static_cast<std::int64_t>(lengths.size()), all_lengths);
    gather_to_root(bytes.data(), static_cast<std::int64_t>(bytes.size()), all_bytes);
    std::size_t at = 0;
    for (std::int64_t n : all_lengths) {
      out.text.push_back(all_bytes.substr(at, static_cast<std::size_t>(n)));
      at += static_cast<std::size_t>(n);
    }
  }
  return out;
}

void select_gpu() {
  if (!g.active) return;
  std::vector<std::string> devices;
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"); visible != nullptr) {
    std::stringstream list(visible);
    for (std::string item; std::getline(list, item, ',');)
      if (!item.empty()) devices.push_back(item);
  } else {
    std::error_code ec;
    int n = 0;
    for (std::filesystem::directory_iterator it("/proc/driver/nvidia/gpus", ec), end; !ec && it != end;
         it.increment(ec))
      ++n;
    for (int i = 0; i < n; ++i) devices.push_back(std::to_string(i));
  }
  if (devices.size() <= 1) return;
  const std::string& mine = devices[static_cast<std::size_t>(g.local_rank) % devices.size()];
  setenv("CUDA_VISIBLE_DEVICES", mine.c_str(), 1);
}

}  // namespace segforge::mpi
