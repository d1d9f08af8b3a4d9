// The CPU backend. Distance passes go through the register-blocked kernels of kernels.hpp (the
// argmin or the k-means++ potential fused into the kernel), the per-row passes run OpenMP over the
// fixed-size chunks of chunks.hpp, whose partials are combined in chunk order: results are
// bit-identical for any thread count and across reruns.
//
// Distances are ||x||² − 2x·c + ||c||² in float32 clamped at 0 (FAISS Distance.cu); argmin ties
// go to the lower centre index. Every sum that leaves the backend is a double.

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chunks.hpp"
#include "kernels.hpp"
#include "neighbours.hpp"
#include "segforge/backend.hpp"
#include "segforge/bulk.hpp"
#include "segforge/error.hpp"
#include "segforge/matrix.hpp"
#include "segforge/rng.hpp"
#include "segforge/row_source.hpp"
#include "simd.hpp"

namespace segforge {
namespace {

using cpu::i64;

/// Rows a mini-batch gather prefetches ahead of the one it copies.
constexpr i64 kPrefetchAhead = 16;

// ---- the dataset ---------------------------------------------------------------------------

/// Resident (upload: every row in memory) or streamed (stream: rows read window by window from
/// a RowSource). Either way the per-row state is resident, and the ops see rows through
/// for_windows(): row(i) and norm(i) are valid for the rows of the window being processed.
class CpuDataset final : public Dataset {
 public:
  CpuDataset(MatrixView<const float> x, std::span<const float> w, int team)
      : n(x.rows), d(x.cols), weights(w.begin(), w.end()),
        labels(static_cast<std::size_t>(x.rows), -1),
        min_dist(static_cast<std::size_t>(x.rows), std::numeric_limits<float>::infinity()),
        window_rows_(n) {
    windows_[0].rows.resize(static_cast<std::size_t>(n * d));
    windows_[0].norms.resize(static_cast<std::size_t>(n));
    Window& all = windows_[0];
    cpu::for_chunks(team, n, cpu::no_scratch, [&](cpu::NoScratch&, i64, i64 begin, i64 end) {
      std::memcpy(all.rows.data() + begin * d, x.data + begin * d,
                  static_cast<std::size_t>((end - begin) * d) * sizeof(float));
      for (i64 i = begin; i < end; ++i) all.norms[i] = cpu::sq_norm(all.rows.data() + i * d, d);
    });
    all.index = 0;
    show(0);
  }

  /// Resident, on x's own buffer (adopt): only the norms are computed.
  CpuDataset(Matrix<float>&& x, int team)
      : n(x.rows()), d(x.cols()), labels(static_cast<std::size_t>(x.rows()), -1),
        min_dist(static_cast<std::size_t>(x.rows()), std::numeric_limits<float>::infinity()),
        window_rows_(n), adopted_(std::move(x.values())) {
    x = Matrix<float>(0, d);
    Window& all = windows_[0];
    all.norms.resize(static_cast<std::size_t>(n));
    cpu::for_chunks(team, n, cpu::no_scratch, [&](cpu::NoScratch&, i64, i64 begin, i64 end) {
      for (i64 i = begin; i < end; ++i) all.norms[i] = cpu::sq_norm(adopted_.data() + i * d, d);
    });
    all.index = 0;
    show(0);
  }

  /// Resident, on the caller's buffer (borrow): only the norms are computed; x must outlive it.
  struct Borrowed {};
  CpuDataset(Borrowed, MatrixView<const float> x, std::span<const float> w, int team)
      : n(x.rows), d(x.cols), weights(w.begin(), w.end()),
        labels(static_cast<std::size_t>(x.rows), -1),
        min_dist(static_cast<std::size_t>(x.rows), std::numeric_limits<float>::infinity()),
        window_rows_(n), borrowed_(x.data) {
    Window& all = windows_[0];
    all.norms.resize(static_cast<std::size_t>(n));
    cpu::for_chunks(team, n, cpu::no_scratch, [&](cpu::NoScratch&, i64, i64 begin, i64 end) {
      for (i64 i = begin; i < end; ++i) all.norms[i] = cpu::sq_norm(borrowed_ + i * d, d);
    });
    all.index = 0;
    show(0);
  }

  CpuDataset(std::shared_ptr<RowSource> source, i64 window_rows)
      : n(source->n_rows()), d(source->n_cols()), labels(static_cast<std::size_t>(n), -1),
        min_dist(static_cast<std::size_t>(n), std::numeric_limits<float>::infinity()),
        source_(std::move(source)),
        window_rows_(std::min(std::max(window_rows, cpu::kChunkRows) / cpu::kChunkRows * cpu::kChunkRows,
                              std::max<i64>(cpu::round_up(n, cpu::kChunkRows), cpu::kChunkRows))) {
    for (Window& w : windows_) w.rows.resize(static_cast<std::size_t>(window_rows_ * d));
    streamed_norms_.resize(static_cast<std::size_t>(n));
    norms_known_.assign(static_cast<std::size_t>((n + window_rows_ - 1) / window_rows_), 0);
  }

  std::int64_t n_samples() const override { return n; }
  std::int64_t n_features() const override { return d; }
  bool weighted() const override { return !weights.empty(); }
  const float* host_rows() const override { return streamed() ? nullptr : rows_; }
  bool streamed() const { return source_ != nullptr; }
  RowSource& source() const { return *source_; }

  /// Row i and its ||x||², for i in the window being processed (every row when resident).
  const float* row(i64 i) const { return rows_ + (i - lo_) * d; }
  const float* norm(i64 i) const { return norms_ + (i - lo_); }
  float weight(i64 i) const { return weights.empty() ? 1.0f : weights[i]; }

  /// fn(lo, hi) for consecutive windows [lo, hi) covering [0, n), in order; lo is a multiple of
  /// kChunkRows. Streamed: window k + 1 is read (and its norms computed) on another thread
  /// while fn runs on window k.
  template <class Fn>
  void for_windows(Fn&& fn) const {
    if (!streamed()) {
      fn(i64{0}, n);
      return;
    }
    const i64 n_windows = (n + window_rows_ - 1) / window_rows_;
    std::future<void> next;
    for (i64 k = 0; k < n_windows; ++k) {
      Window& w = windows_[k % 2];
      if (k == 0 && w.index != 0) load(w, 0);
      if (next.valid()) next.get();  // window k, read while window k − 1 was processed
      if (k + 1 < n_windows && windows_[(k + 1) % 2].index != k + 1)
        next = std::async(std::launch::async, [this, k] { load(windows_[(k + 1) % 2], k + 1); });
      show(k % 2);
      try {
        fn(k * window_rows_, std::min(n, (k + 1) * window_rows_));
      } catch (...) {
        if (next.valid()) next.wait();
        throw;
      }
    }
  }

  const i64 n;
  const i64 d;
  std::vector<float> weights;        ///< [n], or empty: all 1
  std::vector<std::int32_t> labels;  ///< [n] from the last assign_accumulate; -1 before the first
  std::vector<float> min_dist;       ///< [n] k-means++ d(x); +inf before the first reset

 private:
  struct Window {
    BulkVector<float> rows;   ///< [window_rows x d], unless mapped
    BulkVector<float> norms;  ///< resident: [n]
    std::unique_ptr<MappedRows> mapped;  ///< the rows in the file's own pages, where it allows
    i64 index = -1;                ///< which window it holds; -1: none
    const float* data() const { return mapped ? mapped->rows() : rows.data(); }
  };

  /// Window k into w: mapped from the file where its rows lie there as float32 in one range (no
  /// copy: out of core, the copy out of the page cache cost more than the pass's arithmetic),
  /// read into w.rows otherwise (w.rows is never touched when mapped, so it holds no memory:
  /// BulkVector leaves it uninitialised). The window's norms the first time it is loaded: they
  /// are kept for every row (4 bytes a row, tools/memory_budget.hpp), not computed every pass.
  void load(Window& w, i64 k) const {
    w.index = -1;
    w.mapped.reset();
    const i64 lo = k * window_rows_, count = std::min(n, lo + window_rows_) - lo;
    w.mapped = source_->map(lo, count);
    if (!w.mapped) source_->read(lo, count, w.rows.data());
    if (!norms_known_[static_cast<std::size_t>(k)]) {
      const float* rows = w.data();
      float* norms = streamed_norms_.data() + lo;
      for (i64 i = 0; i < count; ++i) norms[i] = cpu::sq_norm(rows + i * d, d);
      norms_known_[static_cast<std::size_t>(k)] = 1;
    }
    w.index = k;
  }

  void show(int slot) const {
    rows_ = borrowed_ ? borrowed_ : adopted_.empty() ? windows_[slot].data() : adopted_.data();
    norms_ = streamed() ? streamed_norms_.data() + windows_[slot].index * window_rows_
                        : windows_[slot].norms.data();
    lo_ = windows_[slot].index * window_rows_;
  }

  std::shared_ptr<RowSource> source_;
  i64 window_rows_;
  mutable Window windows_[2];
  mutable BulkVector<float> streamed_norms_;   ///< streamed: [n], each window's once loaded
  mutable std::vector<char> norms_known_;      ///< streamed: per window, its norms computed
  Matrix<float>::Storage adopted_;  ///< the rows, when the dataset took the caller's buffer (adopt)
  const float* borrowed_ = nullptr;  ///< the caller's rows, read in place (borrow)
  mutable const float* rows_ = nullptr;
  mutable const float* norms_ = nullptr;
  mutable i64 lo_ = 0;
};

const CpuDataset& cpu_data(const Dataset& data) {
  const auto* p = dynamic_cast<const CpuDataset*>(&data);
  SEGFORGE_ASSERT(p != nullptr, "dataset was not uploaded by the CPU backend");
  return *p;
}
CpuDataset& cpu_data(Dataset& data) {
  auto* p = dynamic_cast<CpuDataset*>(&data);
  SEGFORGE_ASSERT(p != nullptr, "dataset was not uploaded by the CPU backend");
  return *p;
}

// ---- scratch for the per-row passes ------------------------------------------------------------

/// A block of rows copied into contiguous, zero-padded buffers: rows picked by index (mini-batch),
/// or the weights and d(x) of a contiguous block (k-means++ potentials).
struct RowBlock {
  /// `with_rows` false: no `rows` buffer (kBlockRows x d floats) for a pass that only needs the
  /// weights; at large d it would cost more to allocate and zero than the pass itself.
  explicit RowBlock(i64 d, bool with_rows = true)
      : rows(with_rows ? static_cast<std::size_t>(d * cpu::kBlockRows) : 0), norms(cpu::kBlockRows),
        weights(cpu::kBlockRows), min_dist(cpu::kBlockRows) {}
  cpu::AlignedVector<float> rows;      ///< [kBlockRows x d]
  cpu::AlignedVector<float> norms;     ///< [kBlockRows]
  cpu::AlignedVector<float> weights;   ///< [kBlockRows], 0 past the block
  cpu::AlignedVector<float> min_dist;  ///< [kBlockRows], 0 past the block
};

/// Per-cluster Σ w·x and Σ w of one chunk. With few clusters, consecutive rows often share a
/// label and each add would wait on the last one's store, so rows are dealt round-robin over
/// `copies` accumulators that are folded in a fixed order at the end of the chunk.
struct ClusterSums {
  ClusterSums(i64 n_clusters, i64 n_features)
      : k(n_clusters), d(n_features), stride(cpu::round_up(d + 1, 8)),
        copies(k * stride <= 2048 ? 4 : 1),
        acc(static_cast<std::size_t>(copies * k * stride)) {}

  void clear() { std::fill(acc.begin(), acc.end(), 0.0); }

  /// Adds rows x [nb x d] with labels and weights w; `first` is the index of row 0 in the chunk
  /// (it picks each row's copy).
  void add_block(i64 first, const std::int32_t* labels, const float* x, const float* w, i64 nb) {
    double* const base = acc.data();
    const i64 kk = k, dd = d, st = stride, mask = copies - 1, d8 = d / 8 * 8;
    for (i64 i = 0; i < nb; ++i) {
      double* dst = base + (((first + i) & mask) * kk + labels[i]) * st;
      const float* xi = x + i * dd;
      const double wd = w[i];
      const cpu::vd8 wv = cpu::splat(wd);
      // w·x is exact in double, so the fma rounds like the scalar tail.
      for (i64 j = 0; j < d8; j += 8)
        cpu::store8(dst + j, cpu::fmadd(wv, cpu::load8_widen(xi + j), cpu::load8(dst + j)));
      for (i64 j = d8; j < dd; ++j) dst[j] += wd * static_cast<double>(xi[j]);
      dst[dd] += wd;
    }
  }

  /// Σ x and counts of rows x [nb x d] with labels when every weight is 1 (an unweighted
  /// dataset): the same bits as add_block with w = 1, since fma(1, x, s) rounds as x + s. A row
  /// is d/8 widened vector adds and one more for its last d mod 8 values with its count of one in
  /// the next lane (the slot's padding lanes add zero). While this block is added, the next one's
  /// rows `ahead` [ahead_rows x d] are asked for, a row at a time (null: none).
  void add_block_unweighted(i64 first, const std::int32_t* labels, const float* x, i64 nb,
                            const float* ahead, i64 ahead_rows) {
    std::int32_t at[cpu::kBlockRows];  // each row's slot, first: its address then waits on nothing
    const i64 mask = copies - 1;
    for (i64 i = 0; i < nb; ++i)
      at[i] = static_cast<std::int32_t>((((first + i) & mask) * k + labels[i]) * stride);
    if (ahead == nullptr) ahead_rows = 0;
    switch (d / 8) {  // the common widths, their vector count known to the compiler
      case 0: return add_unweighted<0>(at, x, nb, ahead, ahead_rows);
      case 1: return add_unweighted<1>(at, x, nb, ahead, ahead_rows);
      case 2: return add_unweighted<2>(at, x, nb, ahead, ahead_rows);
      case 3: return add_unweighted<3>(at, x, nb, ahead, ahead_rows);
      default: return add_unweighted<-1>(at, x, nb, ahead, ahead_rows);
    }
  }

  /// sums [k x d] and counts [k] of the chunk.
  void fold(double* sums, double* counts) const {
    for (i64 l = 0; l < k; ++l) {
      for (i64 j = 0; j <= d; ++j) {
        double t = 0.0;
        for (i64 c = 0; c < copies; ++c) t += acc[(c * k + l) * stride + j];
        if (j < d)
          sums[l * d + j] = t;
        else
          counts[l] = t;
      }
    }
  }

  i64 k, d, stride, copies;
  cpu::AlignedVector<double> acc;  ///< [copies x k x stride]: Σ w·x in [0, d), Σ w at d

 private:
  /// add_block_unweighted with V = d / 8 full vectors a row (V = -1: d / 8 read at run time).
  template <int V>
  void add_unweighted(const std::int32_t* at, const float* x, i64 nb, const float* ahead,
                      i64 ahead_rows) {
    const i64 dd = d, full = V >= 0 ? V : d / 8;
    const int tail = static_cast<int>(dd % 8);
    double* const base = acc.data();
    // The next block's cache lines, spread evenly over this block's rows.
    const char* line = reinterpret_cast<const char*>(ahead);
    const i64 lines = (ahead_rows * dd * 4 + 63) / 64, per_row = nb > 0 ? (lines + nb - 1) / nb : 0;
    for (i64 i = 0; i < nb; ++i) {
      for (i64 q = i * per_row, q_end = std::min(lines, q + per_row); q < q_end; ++q)
        __builtin_prefetch(line + q * 64);
      double* dst = base + at[i];
      const float* xi = x + i * dd;
      for (i64 v = 0; v < full; ++v)
        cpu::store8(dst + 8 * v, cpu::load8_widen(xi + 8 * v) + cpu::load8(dst + 8 * v));
      double* last = dst + 8 * full;
      if (tail == 0)  // the count alone: a scalar add stores 8 bytes, not 64
        last[0] += 1.0;
      else
        cpu::store8(last, cpu::widen_tail_and_one(xi + 8 * full, tail) + cpu::load8(last));
    }
  }
};

/// A block's sums into `sums` and its Σ w·d(x) into `inertia` in eight lanes (row i in lane
/// i mod 8). w [round_up(nb, 8)], zero past nb, or null for an unweighted dataset: plain adds, and
/// best_d's padding lanes set to zero (as a padding row's zero weight), the same bits as w = 1.
/// `ahead`, `ahead_rows`: the next block's rows, as for ClusterSums::add_block_unweighted.
void add_block_and_inertia(ClusterSums& sums, i64 first, const std::int32_t* labels, const float* x,
                           const float* w, float* best_d, i64 nb, const float* ahead, i64 ahead_rows,
                           cpu::vd8& inertia) {
  if (w == nullptr) {
    sums.add_block_unweighted(first, labels, x, nb, ahead, ahead_rows);
    std::fill(best_d + nb, best_d + cpu::round_up(nb, 8), 0.0f);
    for (i64 i = 0; i < nb; i += 8) inertia += cpu::load8_widen(best_d + i);
    return;
  }
  sums.add_block(first, labels, x, w, nb);
  for (i64 i = 0; i < nb; i += 8)
    inertia = cpu::fmadd(cpu::load8_widen(best_d + i), cpu::load8_widen(w + i), inertia);
}

/// Σ w·v over rows in eight fixed lanes (row i goes to lane i mod 8), folded in a fixed order.
struct LaneSum {
  double lanes[8] = {};
  void add(i64 i, double v) { lanes[i & 7] += v; }
  double total() const {
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
           ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  }
};

/// Asks the memory system for the bytes [lo, hi) of `p` ahead of their use, a cache line at a
/// time; a caller spreads the requests for the next block over the work on this one.
inline void prefetch_span(const void* p, i64 lo, i64 hi) {
  const auto* bytes = static_cast<const char*>(p);
  for (i64 at = lo / 64 * 64; at < hi; at += 64) __builtin_prefetch(bytes + at);
}

/// Stores labels [nb] over old [nb] and returns how many differ, sixteen at a time.
inline i64 replace_labels(const std::int32_t* labels, std::int32_t* old, i64 nb) {
  cpu::vi16 differ{};
  i64 i = 0;
  for (; i + cpu::kLanes <= nb; i += cpu::kLanes) {
    const cpu::vi16 now = cpu::load16(labels + i);
    differ += cpu::load16(old + i) != now;  // −1 in each lane that changed
    cpu::store16(old + i, now);
  }
  i64 changed = 0;
  for (int q = 0; q < cpu::kLanes; ++q) changed -= differ[q];
  for (; i < nb; ++i) {
    changed += old[i] != labels[i];
    old[i] = labels[i];
  }
  return changed;
}

/// w [round_up(nb, 8)]: the weights of rows [b, b + nb) (1 when unweighted), then zeros.
void block_weights(const CpuDataset& ds, i64 b, i64 nb, float* w) {
  if (ds.weights.empty())
    std::fill_n(w, nb, 1.0f);
  else
    std::copy_n(ds.weights.data() + b, nb, w);
  std::fill(w + nb, w + cpu::round_up(nb, 8), 0.0f);
}

struct LloydScratch {
  LloydScratch(i64 k, i64 d) : block(d), sums(k, d), gathered(d, /*with_rows=*/false) {}
  cpu::BlockScratch block;
  ClusterSums sums;
  RowBlock gathered;  ///< rows allocated on first use (mini-batch steps gather rows)
};

/// Per-thread scratch kept from one call to the next. Each call used to build its own: a block
/// of kBlockRows x d floats a thread (and as much again for gathered rows), page-faulted and
/// zeroed on every pass — at d = 200k, 400 MB a pass, which made each random-swap trial (three
/// passes) spend seconds in memset and page faults. Rebuilt when (k, d) changes. The values
/// never carry over: every buffer is written before it is read within a block.
template <class T>
class ScratchPool {
 public:
  /// Slots for a team of `team` threads; call before the parallel region.
  void prepare(int team) {
    if (static_cast<int>(slots_.size()) < team) slots_.resize(static_cast<std::size_t>(team));
  }
  /// The calling thread's scratch for shape (k, d); inside the parallel region.
  template <class Make>
  T& get(i64 k, i64 d, Make make) {
    auto& slot = slots_[static_cast<std::size_t>(omp_get_thread_num())];
    if (!slot || slot->k != k || slot->d != d) {
      slot.reset();  // free the old one before the new one is allocated
      slot = std::make_unique<Entry>(Entry{k, d, make()});
    }
    return slot->value;
  }

 private:
  struct Entry {
    i64 k, d;
    T value;
  };
  std::vector<std::unique_ptr<Entry>> slots_;
};

/// k-means++ potential for each candidate t: Σ w·min(d(x), ||x − c_t||²), lanes widened to double.
struct PotentialEpilogue {
  const float* min_dist;  ///< [nbp], 0 past the block
  const float* weights;   ///< [nbp], 0 past the block
  double* potentials;     ///< [n_candidates], the chunk's partial
  cpu::vf16 dm[2] = {};
  cpu::vd8 w_lo[2] = {}, w_hi[2] = {};
  void begin(int g, i64 i0) {
    dm[g] = cpu::load16(min_dist + i0);
    cpu::widen(cpu::load16(weights + i0), w_lo[g], w_hi[g]);
  }
  void step(int g, i64 t, cpu::vf16 dist) {
    cpu::vd8 lo, hi;
    cpu::widen(cpu::vmin(dm[g], dist), lo, hi);
    potentials[t] += cpu::hsum(cpu::fmadd(lo, w_lo[g], hi * w_hi[g]));
  }
  void end(int, i64) {}
};

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) break;
    const auto first = line.find_first_not_of(" \t", colon + 1);
    return first == std::string::npos ? std::string() : line.substr(first);
  }
  return {};
}

const char* arch_name() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__powerpc64__)
  return "ppc64le";
#else
  return "cpu";
#endif
}

// ---- the backend -------------------------------------------------------------------------------

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads) {}

  BackendInfo info() const override {
    std::string device = arch_name();
    const std::string model = cpu_model();
    if (!model.empty()) device += " " + model;
    const int team = this->team();
    device += ", " + std::to_string(team) + (team == 1 ? " thread" : " threads");
    return {"cpu", device};
  }

  std::unique_ptr<Dataset> upload(MatrixView<const float> x,
                                  std::span<const float> weights) override {
    SEGFORGE_ASSERT(x.rows >= 0 && x.cols >= 0, "negative matrix shape");
    SEGFORGE_ASSERT(weights.empty() || static_cast<i64>(weights.size()) == x.rows,
                    "weights must be empty or have one value per row");
    return std::make_unique<CpuDataset>(x, weights, team());
  }

  std::unique_ptr<Dataset> borrow(MatrixView<const float> x,
                                  std::span<const float> weights) override {
    SEGFORGE_ASSERT(x.rows >= 0 && x.cols >= 0, "negative matrix shape");
    SEGFORGE_ASSERT(weights.empty() || static_cast<i64>(weights.size()) == x.rows,
                    "weights must be empty or have one value per row");
    return std::make_unique<CpuDataset>(CpuDataset::Borrowed{}, x, weights, team());
  }

  std::unique_ptr<Dataset> adopt(Matrix<float>&& x) override {
    return std::make_unique<CpuDataset>(std::move(x), team());
  }

  std::unique_ptr<Dataset> stream(std::shared_ptr<RowSource> source, std::int64_t window_rows) override {
    SEGFORGE_ASSERT(source != nullptr, "stream needs a row source");
    return std::make_unique<CpuDataset>(std::move(source), window_rows);
  }

  Matrix<float> gather(const Dataset& data, std::span<const std::int64_t> rows) override {
    const auto& ds = cpu_data(data);
    Matrix<float> out(static_cast<i64>(rows.size()), ds.d);
    for (const auto r : rows) SEGFORGE_ASSERT(r >= 0 && r < ds.n, "gather row out of range");
    if (ds.streamed()) {
      ds.source().read_rows(rows, out.data());
      return out;
    }
    for (std::size_t r = 0; r < rows.size(); ++r) {
      SEGFORGE_ASSERT(rows[r] >= 0 && rows[r] < ds.n, "gather row out of range");
      std::copy(ds.row(rows[r]), ds.row(rows[r]) + ds.d, out.row(static_cast<i64>(r)));
    }
    return out;
  }

  ColumnStats column_stats(const Dataset& data) override {
    const auto& ds = cpu_data(data);
    const i64 d = ds.d;
    ColumnStats out;
    out.mean = column_means(ds);
    out.variance.assign(static_cast<std::size_t>(d), 0.0);
    // Two passes, as numpy's var: the mean of (x − mean)².
    const std::vector<double>& mean = out.mean;
    ds.for_windows([&](i64 lo, i64 hi) {
      cpu::reduce_chunks(team(), lo, hi, std::span<double>(out.variance), cpu::no_scratch,
                         [&](cpu::NoScratch&, i64 begin, i64 end, double* partial) {
                           for (i64 i = begin; i < end; ++i) {
                             const float* x = ds.row(i);
                             for (i64 j = 0; j < d; ++j) {
                               const double v = x[j] - mean[j];
                               partial[j] += v * v;
                             }
                           }
                         });
    });
    if (ds.n > 0)
      for (auto& v : out.variance) v /= static_cast<double>(ds.n);
    return out;
  }

  // ---- Lloyd ------------------------------------------------------------------------------

  AccumulateResult assign_accumulate(Dataset& data, MatrixView<const float> centroids) override {
    auto& ds = cpu_data(data);
    check_centres(ds, centroids, 1);
    const cpu::Centres c = centres(centroids);
    const i64 k = c.k, d = ds.d;
    // The chunk partial: [k x d] Σ w·x, [k] Σ w, inertia, n_changed.
    std::vector<double> total(static_cast<std::size_t>(k * d + k + 2), 0.0);
    ds.for_windows([&](i64 lo, i64 hi) {
    lloyd_scratch_.prepare(team());
    cpu::reduce_chunks(
        team(), lo, hi, std::span<double>(total), [&] { return lloyd_scratch(k, d); },
        [&](LloydScratch& s, i64 begin, i64 end, double* partial) {
          s.sums.clear();
          cpu::vd8 inertia{};
          i64 changed = 0;
          float* w = s.gathered.weights.data();
          for (i64 b = begin; b < end; b += cpu::kBlockRows) {
            const i64 nb = std::min(cpu::kBlockRows, end - b);
            const float* x = ds.row(b);
            // The next block's norms and labels, asked for now, and its rows while this block's
            // sums are added: the hardware prefetcher alone left the pass waiting on memory
            // (1M x 8, K = 8: ~30% of one thread's time). Asking for all of the next block's rows
            // at once here was slower than not asking.
            const i64 next = std::min(cpu::kBlockRows, end - b - nb);
            if (next > 0) {
              prefetch_span(ds.norm(b + nb), 0, next * 4);
              prefetch_span(ds.labels.data() + b + nb, 0, next * 4);
            }
            cpu::nearest_block(x, ds.norm(b), nb, c, s.block);
            const std::int32_t* label = s.block.best_k.data();
            changed += replace_labels(label, ds.labels.data() + b, nb);
            float* best_d = s.block.best_d.data();
            if (!ds.weights.empty()) block_weights(ds, b, nb, w);
            add_block_and_inertia(s.sums, b - begin, label, x, ds.weights.empty() ? nullptr : w, best_d, nb,
                                  next > 0 ? ds.row(b + nb) : nullptr, next, inertia);
          }
          s.sums.fold(partial, partial + k * d);
          partial[k * d + k] = cpu::hsum(inertia);
          partial[k * d + k + 1] = static_cast<double>(changed);
        });
    });
    AccumulateResult out;
    out.sums.assign(total.begin(), total.begin() + k * d);
    out.counts.assign(total.begin() + k * d, total.begin() + k * d + k);
    out.inertia = total[k * d + k];
    out.n_changed = static_cast<std::int64_t>(total[k * d + k + 1]);
    return out;
  }

  void assign(const Dataset& data, MatrixView<const float> centroids,
              std::span<std::int32_t> labels, std::span<float> sq_distances) override {
    const auto& ds = cpu_data(data);
    check_centres(ds, centroids, 1);
    SEGFORGE_ASSERT(static_cast<i64>(labels.size()) == ds.n, "labels must have n_samples entries");
    SEGFORGE_ASSERT(sq_distances.empty() || static_cast<i64>(sq_distances.size()) == ds.n,
                    "sq_distances must be empty or have n_samples entries");
    const cpu::Centres c = centres(centroids);
    const i64 d = ds.d;
    ds.for_windows([&](i64 lo, i64 hi) {
      block_scratch_.prepare(team());
      cpu::for_chunks(team(), lo, hi, [&] { return block_scratch(d); },
                      [&](cpu::BlockScratch& s, i64, i64 begin, i64 end) {
                        for (i64 b = begin; b < end; b += cpu::kBlockRows) {
                          const i64 nb = std::min(cpu::kBlockRows, end - b);
                          cpu::nearest_block(ds.row(b), ds.norm(b), nb, c, s);
                          std::copy_n(s.best_k.begin(), nb, labels.begin() + b);
                          if (!sq_distances.empty())
                            std::copy_n(s.best_d.begin(), nb, sq_distances.begin() + b);
                        }
                      });
    });
  }

  // ---- k-means++ and k-means|| --------------------------------------------------------------

  double reset_min_distances(Dataset& data, MatrixView<const float> centres) override {
    return min_distances(cpu_data(data), centres, /*reset=*/true);
  }

  double update_min_distances(Dataset& data, MatrixView<const float> centres) override {
    return min_distances(cpu_data(data), centres, /*reset=*/false);
  }

  std::vector<double> candidate_potentials(const Dataset& data,
                                           MatrixView<const float> candidates) override {
    const auto& ds = cpu_data(data);
    check_centres(ds, candidates);
    const cpu::Centres c = centres(candidates);
    const i64 d = ds.d;
    std::vector<double> total(static_cast<std::size_t>(c.k), 0.0);
    if (c.k == 0) return total;
    struct Scratch {
      explicit Scratch(i64 d) : block(d), rows(d) {}
      cpu::BlockScratch block;
      RowBlock rows;
    };
    ds.for_windows([&](i64 lo, i64 hi) {
    cpu::reduce_chunks(team(), lo, hi, std::span<double>(total), [d] { return Scratch(d); },
                       [&](Scratch& s, i64 begin, i64 end, double* partial) {
                         for (i64 b = begin; b < end; b += cpu::kBlockRows) {
                           const i64 nb = std::min(cpu::kBlockRows, end - b);
                           float* w = s.rows.weights.data();
                           float* dm = s.rows.min_dist.data();
                           for (i64 i = 0; i < nb; ++i) w[i] = ds.weight(b + i);
                           std::copy_n(ds.min_dist.data() + b, nb, dm);
                           std::fill(w + nb, w + cpu::kBlockRows, 0.0f);
                           std::fill(dm + nb, dm + cpu::kBlockRows, 0.0f);
                           PotentialEpilogue epi{dm, w, partial};
                           cpu::block_distances(ds.row(b), ds.norm(b), nb, c, s.block,
                                                epi);
                         }
                       });
    });
    return total;
  }

  std::vector<std::int64_t> sample_by_min_distance(const Dataset& data,
                                                   std::span<const double> targets) override {
    const auto& ds = cpu_data(data);
    const i64 n = ds.n;
    const i64 n_chunks = cpu::chunk_count(n);
    std::vector<std::int64_t> out;
    out.reserve(targets.size());
    if (n == 0) return out;
    auto mass = [&](i64 i) { return static_cast<double>(ds.weight(i)) * ds.min_dist[i]; };
    // Chunk totals (each summed in row order), then a serial scan: offsets[c] is the mass before
    // chunk c. The search inside a chunk starts from offsets[c] and adds rows in order, so the
    // cumulative sums depend on the chunking alone.
    std::vector<double> chunk_mass(static_cast<std::size_t>(n_chunks), 0.0);
    std::vector<i64> last_positive(static_cast<std::size_t>(n_chunks), -1);
    cpu::for_chunks(team(), n, cpu::no_scratch, [&](cpu::NoScratch&, i64 c, i64 begin, i64 end) {
      double sum = 0.0;
      for (i64 i = begin; i < end; ++i) {
        const double m = mass(i);
        sum += m;
        if (m > 0.0) last_positive[c] = i;
      }
      chunk_mass[c] = sum;
    });
    std::vector<double> offsets(static_cast<std::size_t>(n_chunks) + 1, 0.0);
    for (i64 c = 0; c < n_chunks; ++c) offsets[c + 1] = offsets[c] + chunk_mass[c];
    // Targets at or past φ clip to the last row with w·d > 0 (the last row when φ = 0).
    i64 clip = n - 1;
    for (i64 c = n_chunks - 1; c >= 0; --c)
      if (last_positive[c] >= 0) {
        clip = last_positive[c];
        break;
      }
    for (const double t : targets) {
      // The first chunk whose end offset exceeds t (past φ, the clip), then its rows in order.
      const i64 c = std::upper_bound(offsets.begin() + 1, offsets.end(), t) - (offsets.begin() + 1);
      if (c >= n_chunks) {
        out.push_back(clip);
        continue;
      }
      // offsets[c + 1] > t, but the in-chunk sums (rounded in another order than the chunk's
      // total) can miss t: then the chunk's last row with w·d > 0, never a row of no mass.
      i64 found = last_positive[c] >= 0 ? last_positive[c] : clip;
      double running = offsets[c];
      for (i64 i = c * cpu::kChunkRows, end = std::min(n, (c + 1) * cpu::kChunkRows); i < end; ++i) {
        running += mass(i);
        if (running > t) {
          found = i;
          break;
        }
      }
      out.push_back(found);
    }
    return out;
  }

  std::vector<std::int64_t> oversample(const Dataset& data, double factor, std::uint64_t seed,
                                       std::int64_t first_row) override {
    const auto& ds = cpu_data(data);
    std::vector<std::vector<std::int64_t>> picked(static_cast<std::size_t>(cpu::chunk_count(ds.n)));
    cpu::for_chunks(team(), ds.n, cpu::no_scratch, [&](cpu::NoScratch&, i64 c, i64 begin, i64 end) {
      for (i64 i = begin; i < end; ++i) {
        // k-means|| (Bahmani et al. 2012, Alg. 2 step 4): keep x with p = ℓ·w·d²(x,C)/φ_X(C).
        const double p = factor * static_cast<double>(ds.weight(i)) * ds.min_dist[i];
        if (counter_uniform(seed, static_cast<std::uint64_t>(first_row + i)) < p)
          picked[c].push_back(i);
      }
    });
    std::vector<std::int64_t> out;
    for (const auto& v : picked) out.insert(out.end(), v.begin(), v.end());
    return out;
  }

  // ---- mini-batch -------------------------------------------------------------------------

  double minibatch_step(const Dataset& data, std::span<const std::int64_t> batch,
                        MatrixView<float> centroids, std::span<double> counts) override {
    const auto& ds = cpu_data(data);
    check_centres(ds, centroids, 1);
    SEGFORGE_ASSERT(static_cast<i64>(counts.size()) == centroids.rows,
                    "counts must have n_clusters entries");
    for (const auto r : batch) SEGFORGE_ASSERT(r >= 0 && r < ds.n, "batch row out of range");
    if (ds.streamed()) {
      // The batch's rows, read from the source, as a small resident dataset: each batch
      // position then sees the same row, norm and weight as in memory, so the same arithmetic.
      const Matrix<float> rows = gather(data, batch);
      CpuDataset resident(rows.view(), {}, team());
      std::vector<std::int64_t> positions(batch.size());
      std::iota(positions.begin(), positions.end(), std::int64_t{0});
      return minibatch_step(resident, positions, centroids, counts);
    }
    const cpu::Centres c = centres(centroids);
    const i64 k = c.k, d = ds.d;
    // The chunk partial: [k x d] Σ w·x, [k] b_k = Σ w, inertia.
    std::vector<double> total(static_cast<std::size_t>(k * d + k + 1), 0.0);
    lloyd_scratch_.prepare(team());
    cpu::reduce_chunks(
        team(), static_cast<i64>(batch.size()), std::span<double>(total),
        [&] { return lloyd_scratch(k, d); },
        [&](LloydScratch& s, i64 begin, i64 end, double* partial) {
          s.sums.clear();
          cpu::vd8 inertia{};
          if (s.gathered.rows.empty()) s.gathered.rows.resize(static_cast<std::size_t>(d * cpu::kBlockRows));
          float* rows = s.gathered.rows.data();
          float* w = s.gathered.weights.data();
          for (i64 b = begin; b < end; b += cpu::kBlockRows) {
            const i64 nb = std::min(cpu::kBlockRows, end - b);
            for (i64 i = 0; i < nb; ++i) {
              // The batch's rows are random: each is a cache (and TLB) miss unless fetched
              // ahead. The norms are computed again from the rows, as the dataset computed them
              // (the same bits), rather than read from their own array: that was a second miss
              // a row (10M x 16, K = 16: 59 -> 36 us a step).
              if (b + i + kPrefetchAhead < end) {
                const i64 ahead = batch[b + i + kPrefetchAhead];
                __builtin_prefetch(ds.row(ahead));
                if (!ds.weights.empty()) __builtin_prefetch(ds.weights.data() + ahead);
              }
              const i64 r = batch[b + i];
              cpu::copy_row(ds.row(r), d, rows + i * d);
              w[i] = ds.weight(r);
            }
            cpu::sq_norms(rows, nb, d, s.gathered.norms.data());
            std::fill(w + nb, w + cpu::round_up(nb, 8), 0.0f);
            cpu::nearest_block(rows, s.gathered.norms.data(), nb, c, s.block);
            float* best_d = s.block.best_d.data();
            add_block_and_inertia(s.sums, b - begin, s.block.best_k.data(), rows,
                                  ds.weights.empty() ? nullptr : w, best_d, nb, nullptr, 0, inertia);
          }
          s.sums.fold(partial, partial + k * d);
          partial[k * d + k] = cpu::hsum(inertia);
        });
    // Sculley (2010) with per-centre counts, as scikit-learn's _minibatch_update_dense:
    // c_k ← (c_k·n_k + Σ w·x) / (n_k + b_k), n_k ← n_k + b_k, for the centres the batch touched.
    for (i64 l = 0; l < k; ++l) {
      const double b = total[k * d + l];
      if (!(b > 0.0)) continue;
      const double n_new = counts[l] + b;
      float* cl = centroids.row(l);
      const double* sum = total.data() + l * d;
      for (i64 j = 0; j < d; ++j)
        cl[j] = static_cast<float>((static_cast<double>(cl[j]) * counts[l] + sum[j]) / n_new);
      counts[l] = n_new;
    }
    return total[k * d + k];
  }

  // ---- metrics and distance matrices --------------------------------------------------------

  LabelStats label_stats(const Dataset& data, std::span<const std::int32_t> labels,
                         int n_clusters, MatrixView<const float> centroids) override {
    const auto& ds = cpu_data(data);
    const i64 k = n_clusters, d = ds.d;
    SEGFORGE_ASSERT(static_cast<i64>(labels.size()) == ds.n, "labels must have n_samples entries");
    const bool with_centres = centroids.rows > 0;
    SEGFORGE_ASSERT(!with_centres || (centroids.rows == k && centroids.cols == d),
                    "centroids must be empty or [n_clusters x n_features]");
    check_labels(labels, n_clusters);
    // The chunk partial: [k x d] Σ w·x, [k] Σ w, [k] Σ w·||x − c||, [k] Σ w·||x − c||².
    std::vector<double> total(static_cast<std::size_t>(k * d + 3 * k), 0.0);
    ds.for_windows([&](i64 lo, i64 hi) {
    cpu::reduce_chunks(
        team(), lo, hi, std::span<double>(total), cpu::no_scratch,
        [&](cpu::NoScratch&, i64 begin, i64 end, double* partial) {
          double* count = partial + k * d;
          double* dist = count + k;
          double* sq = dist + k;
          for (i64 i = begin; i < end; ++i) {
            const i64 l = labels[i];
            const double w = ds.weight(i);
            const float* x = ds.row(i);
            double* sum = partial + l * d;
            for (i64 j = 0; j < d; ++j) sum[j] += w * static_cast<double>(x[j]);
            count[l] += w;
            if (with_centres) {
              // Metrics want accuracy over speed: direct differences in double.
              const float* cl = centroids.row(l);
              double s2 = 0.0;
              for (i64 j = 0; j < d; ++j) {
                const double v = static_cast<double>(x[j]) - cl[j];
                s2 += v * v;
              }
              dist[l] += w * std::sqrt(s2);
              sq[l] += w * s2;
            }
          }
        });
    });
    LabelStats out;
    out.sums.assign(total.begin(), total.begin() + k * d);
    out.counts.assign(total.begin() + k * d, total.begin() + k * d + k);
    out.dist_sums.assign(total.begin() + k * d + k, total.begin() + k * d + 2 * k);
    out.sq_dist_sums.assign(total.begin() + k * d + 2 * k, total.end());
    return out;
  }

  Matrix<double> cluster_distance_sums(const Dataset& data, std::span<const std::int32_t> labels,
                                       int n_clusters, std::int64_t row_begin,
                                       std::int64_t row_count) override;

  Matrix<float> distance_tile(const Dataset& a, std::int64_t a_begin, std::int64_t a_count,
                              const Dataset& b, std::int64_t b_begin, std::int64_t b_count,
                              bool squared) override {
    const auto& da = cpu_data(a);
    const auto& db = cpu_data(b);
    if (da.streamed() || db.streamed())
      throw InputError("a distance matrix needs its rows in memory; raise --memory-budget or pass fewer rows");
    SEGFORGE_ASSERT(da.d == db.d, "datasets differ in n_features");
    SEGFORGE_ASSERT(a_begin >= 0 && a_count >= 0 && a_begin + a_count <= da.n,
                    "a row range out of bounds");
    SEGFORGE_ASSERT(b_begin >= 0 && b_count >= 0 && b_begin + b_count <= db.n,
                    "b row range out of bounds");
    const i64 d = da.d;
    Matrix<float> out(a_count, b_count);
    if (a_count == 0 || b_count == 0) return out;
    const i64 n_tiles = (a_count + cpu::kBlockRows - 1) / cpu::kBlockRows;
    const cpu::ConstMapF bm(db.row(b_begin), b_count, d);
    const float* bn = db.norm(b_begin);
#pragma omp parallel for schedule(dynamic, 1) num_threads(team())
    for (i64 t = 0; t < n_tiles; ++t) {
      const i64 r0 = t * cpu::kBlockRows;
      const i64 nr = std::min(cpu::kBlockRows, a_count - r0);
      cpu::TileMapF om(out.row(r0), nr, b_count, Eigen::OuterStride<>(b_count));
      om.noalias() = cpu::ConstMapF(da.row(a_begin + r0), nr, d) * bm.transpose();
      for (i64 r = 0; r < nr; ++r) {
        float* o = out.row(r0 + r);
        const float an = *da.norm(a_begin + r0 + r);
        for (i64 p = 0; p < b_count; ++p) o[p] = std::max(0.0f, (an - 2.0f * o[p]) + bn[p]);
        if (!squared)
          for (i64 p = 0; p < b_count; ++p) o[p] = std::sqrt(o[p]);
      }
    }
    return out;
  }

  Matrix<std::int64_t> grid_cells(const Dataset& data, std::span<const std::int32_t> columns,
                                  std::span<const double> origin, double side) override {
    return cpu::grid_cells(team(), host_rows_of(data), columns, origin, side);
  }

  std::vector<double> eps_neighbour_weights(const Dataset& data, const RowBlocks& blocks,
                                            const BlockPairs& pairs, double eps, double stop_at) override {
    return cpu::eps_neighbour_weights(team(), host_rows_of(data), blocks, pairs, eps, stop_at);
  }

  std::vector<std::int64_t> eps_lower_root(const Dataset& data, const RowBlocks& blocks, const BlockPairs& pairs,
                                         double eps, std::span<const std::int64_t> roots) override {
    return cpu::eps_lower_root(team(), host_rows_of(data), blocks, pairs, eps, roots);
  }

  void nearest_within_eps(const Dataset& query, const RowBlocks& query_blocks,
                          std::span<const std::uint8_t> query_mask, const Dataset& reference,
                          const RowBlocks& reference_blocks, std::span<const std::uint8_t> reference_mask,
                          const BlockPairs& pairs, double eps, std::span<std::int64_t> nearest,
                          std::span<double> sq_distances) override {
    cpu::nearest_within_eps(team(), host_rows_of(query), query_blocks, query_mask, host_rows_of(reference),
                            reference_blocks, reference_mask, pairs, eps, nearest, sq_distances);
  }

 private:
  int team() const { return cpu::resolve_team(threads_); }

  /// The calling thread's pooled scratch (a reference: reduce_chunks and for_chunks hand it to
  /// the body as T&). A backend is driven by one thread at a time, as every Backend.
  std::reference_wrapper<LloydScratch> lloyd_scratch(i64 k, i64 d) {
    return std::ref(lloyd_scratch_.get(k, d, [k, d] { return LloydScratch(k, d); }));
  }
  std::reference_wrapper<cpu::BlockScratch> block_scratch(i64 d) {
    return std::ref(block_scratch_.get(0, d, [d] { return cpu::BlockScratch(d); }));
  }

  /// A resident dataset's rows for the neighbour ops, which visit rows in any order.
  static cpu::HostRows host_rows_of(const Dataset& data) {
    const auto& ds = cpu_data(data);
    if (ds.streamed())
      throw InputError("DBSCAN needs its rows in memory (it compares rows in any order); raise --memory-budget");
    return {ds.row(0), ds.n, ds.d, ds.weights.empty() ? nullptr : ds.weights.data()};
  }

  static cpu::Centres centres(MatrixView<const float> c) { return cpu::Centres(c); }

  /// Centres for a pass; `at_least` is 1 where every row needs a nearest centre.
  static void check_centres(const CpuDataset& ds, MatrixView<const float> c, i64 at_least = 0) {
    SEGFORGE_ASSERT(c.cols == ds.d, "centroids must have n_features columns");
    SEGFORGE_ASSERT(c.rows >= at_least && c.rows <= std::numeric_limits<std::int32_t>::max(),
                    "centroid count out of range");
  }

  static void check_labels(std::span<const std::int32_t> labels, int n_clusters) {
    SEGFORGE_ASSERT(n_clusters >= 1, "n_clusters must be >= 1");
    for (const auto l : labels) SEGFORGE_ASSERT(l >= 0 && l < n_clusters, "label out of range");
  }

  std::vector<double> column_means(const CpuDataset& ds) const {
    const i64 d = ds.d;
    std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
    ds.for_windows([&](i64 lo, i64 hi) {
      cpu::reduce_chunks(team(), lo, hi, std::span<double>(mean), cpu::no_scratch,
                         [&](cpu::NoScratch&, i64 begin, i64 end, double* partial) {
                           for (i64 i = begin; i < end; ++i) {
                             const float* x = ds.row(i);
                             for (i64 j = 0; j < d; ++j) partial[j] += x[j];
                           }
                         });
    });
    if (ds.n > 0)
      for (auto& m : mean) m /= static_cast<double>(ds.n);
    return mean;
  }

  /// d(x) ← (reset ? +inf : d(x)) min over `centres`; returns φ = Σ w·d(x).
  double min_distances(CpuDataset& ds, MatrixView<const float> centres_view, bool reset) {
    check_centres(ds, centres_view);
    const cpu::Centres c = centres(centres_view);
    const i64 d = ds.d;
    double phi = 0.0;
    ds.for_windows([&](i64 lo, i64 hi) {
    block_scratch_.prepare(team());
    cpu::reduce_chunks(team(), lo, hi, std::span<double>(&phi, 1),
                       [&] { return block_scratch(d); },
                       [&](cpu::BlockScratch& s, i64 begin, i64 end, double* partial) {
                         LaneSum sum;
                         for (i64 b = begin; b < end; b += cpu::kBlockRows) {
                           const i64 nb = std::min(cpu::kBlockRows, end - b);
                           float* dm = ds.min_dist.data() + b;
                           if (c.k > 0) {
                             cpu::nearest_block(ds.row(b), ds.norm(b), nb, c, s);
                             for (i64 i = 0; i < nb; ++i)
                               dm[i] = reset ? s.best_d[i] : std::min(dm[i], s.best_d[i]);
                           } else if (reset) {
                             std::fill_n(dm, nb, std::numeric_limits<float>::infinity());
                           }
                           for (i64 i = 0; i < nb; ++i)
                             sum.add(i, static_cast<double>(ds.weight(b + i)) * dm[i]);
                         }
                         partial[0] = sum.total();
                       });
    });
    return phi;
  }

  int threads_;
  ScratchPool<LloydScratch> lloyd_scratch_;
  ScratchPool<cpu::BlockScratch> block_scratch_;
};

// Silhouette support. Each thread owns kSilRows output rows and sweeps every column row in
// blocks of kSilCols, so each output sum runs in a fixed order whatever the team size. Memory:
// the tiles, plus the column rows' order and labels (O(n)); never n².
constexpr i64 kSilRows = 64;
constexpr i64 kSilCols = 1024;
/// A squared distance below this fraction of ||x̃||² + ||ỹ||² (centred norms) has lost too many
/// digits to cancellation in the expansion; it is recomputed as Σ (x − y)² in double from the
/// original rows (which also makes a row's distance to itself, and to its duplicates, exactly 0).
/// Above it the expansion's relative error is at most about 3·2⁻²⁴/kRecompute ≈ 3e-6.
constexpr float kRecompute = 1.0f / 16.0f;

Matrix<double> CpuBackend::cluster_distance_sums(const Dataset& data,
                                                 std::span<const std::int32_t> labels,
                                                 int n_clusters, std::int64_t row_begin,
                                                 std::int64_t row_count) {
  const auto& ds = cpu_data(data);
  if (ds.streamed())
    throw InputError("the exact silhouette compares every pair of rows and needs them in memory; use "
                     "--silhouette sample=N (the default above 20 000 rows) or raise --memory-budget");
  const i64 n = ds.n, d = ds.d, k = n_clusters;
  SEGFORGE_ASSERT(static_cast<i64>(labels.size()) == n, "labels must have n_samples entries");
  SEGFORGE_ASSERT(row_begin >= 0 && row_count >= 0 && row_begin + row_count <= n,
                  "row range out of bounds");
  check_labels(labels, n_clusters);
  Matrix<double> out(row_count, k, 0.0);
  if (row_count == 0) return out;

  // Centre by the column means: distances do not change, and the cancellation in
  // ||x̃||² + ||ỹ||² − 2x̃·ỹ shrinks with the norms.
  const std::vector<double> mu = column_means(ds);
  auto centre_row = [&](i64 i, float* dst) -> float {
    const float* x = ds.row(i);
    for (i64 j = 0; j < d; ++j) dst[j] = static_cast<float>(x[j] - mu[j]);
    return cpu::sq_norm(dst, d);
  };
  // Column rows grouped by label (stable counting sort), so each label is one contiguous run,
  // centred once per call with their norms and weights: N·D floats more, read N/kSilRows times.
  std::vector<i64> order(static_cast<std::size_t>(n));
  std::vector<i64> run(static_cast<std::size_t>(k) + 1, 0);
  {
    for (i64 i = 0; i < n; ++i) ++run[labels[i] + 1];
    for (i64 j = 0; j < k; ++j) run[j + 1] += run[j];
    std::vector<i64> next(run.begin(), run.end() - 1);
    for (i64 i = 0; i < n; ++i) order[next[labels[i]]++] = i;
  }
  std::vector<float> ys(static_cast<std::size_t>(n * d)), ys_norm(static_cast<std::size_t>(n));
  std::vector<double> ys_w(static_cast<std::size_t>(n));
  cpu::for_chunks(team(), n, cpu::no_scratch, [&](cpu::NoScratch&, i64, i64 begin, i64 end) {
    for (i64 p = begin; p < end; ++p) {
      ys_norm[p] = centre_row(order[p], ys.data() + p * d);
      ys_w[p] = ds.weight(order[p]);
    }
  });
  const i64 n_tiles = (row_count + kSilRows - 1) / kSilRows;

#pragma omp parallel num_threads(team())
  {
    std::vector<float> xs(static_cast<std::size_t>(kSilRows * d)), xs_norm(kSilRows);
    std::vector<float> g(static_cast<std::size_t>(kSilRows * kSilCols));
    std::vector<float> dist(kSilCols);

#pragma omp for schedule(dynamic, 1)
    for (i64 t = 0; t < n_tiles; ++t) {
      const i64 r0 = row_begin + t * kSilRows;
      const i64 nr = std::min(kSilRows, row_begin + row_count - r0);
      for (i64 r = 0; r < nr; ++r) xs_norm[r] = centre_row(r0 + r, xs.data() + r * d);
      const cpu::ConstMapF xm(xs.data(), nr, d);
      for (i64 p0 = 0; p0 < n; p0 += kSilCols) {
        const i64 np = std::min(kSilCols, n - p0);
        const float* yn = ys_norm.data() + p0;
        const double* yw = ys_w.data() + p0;
        cpu::TileMapF gm(g.data(), nr, np, Eigen::OuterStride<>(kSilCols));
        gm.noalias() = xm * cpu::ConstMapF(ys.data() + p0 * d, np, d).transpose();
        for (i64 r = 0; r < nr; ++r) {
          const float* gr = g.data() + r * kSilCols;
          const float xn = xs_norm[r];
          // Sixteen pairs at a time: the expansion, and one vector compare for the recompute
          // test; the per-pair recompute runs only for the lanes that need it (near-duplicate
          // rows: rare in blobs, common in real customer data, where many rows coincide).
          auto recompute = [&](i64 p) {
            const float* a = ds.row(r0 + r);
            const float* b = ds.row(order[p0 + p]);
            double s2 = 0.0;
            for (i64 j = 0; j < d; ++j) {
              const double v = static_cast<double>(a[j]) - b[j];
              s2 += v * v;
            }
            dist[p] = static_cast<float>(s2);
          };
          const cpu::vf16 xn16 = cpu::splat(xn), two = cpu::splat(2.0f), frac = cpu::splat(kRecompute);
          i64 p = 0;
          for (; p + cpu::kLanes <= np; p += cpu::kLanes) {
            const cpu::vf16 norms = xn16 + cpu::load16(yn + p);
            const cpu::vf16 dv = norms - two * cpu::load16(gr + p);
            cpu::store16(dist.data() + p, dv);
            const cpu::vi16 lost = dv < frac * norms;
            if (cpu::any_lane(lost))
              for (int q = 0; q < cpu::kLanes; ++q)
                if (lost[q]) recompute(p + q);
          }
          for (; p < np; ++p) {
            dist[p] = (xn + yn[p]) - 2.0f * gr[p];
            if (dist[p] < kRecompute * (xn + yn[p])) recompute(p);
          }
          for (i64 p = 0; p < np; ++p) dist[p] = std::sqrt(std::max(0.0f, dist[p]));
          double* orow = out.row(r0 - row_begin + r);
          // Label l's rows are [run[l], run[l + 1]) of `order`: sum each run's part of the block
          // in eight fixed lanes folded in a fixed order (vectorisable and deterministic).
          for (i64 l = labels[order[p0]]; l < k && run[l] < p0 + np; ++l) {
            const i64 pe = std::min(run[l + 1], p0 + np) - p0;
            i64 p = std::max(run[l], p0) - p0;
            cpu::vd8 lanes{};
            for (; p + 8 <= pe; p += 8)
              lanes = cpu::fmadd(cpu::load8(yw + p), cpu::load8_widen(dist.data() + p), lanes);
            double sum = cpu::hsum(lanes);
            for (; p < pe; ++p) sum += yw[p] * static_cast<double>(dist[p]);
            orow[l] += sum;
          }
        }
      }
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  Eigen::initParallel();  // Eigen's cache-size statics, before our threads call its GEMM
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace segforge
