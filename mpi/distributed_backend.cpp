// The DistributedBackend: the Backend seam over MPI ranks, as a decorator of each rank's local
// backend (see distributed.hpp). Every operation on a partitioned dataset is the local operation
// on this rank's rows followed by one collective; every rank ends with the same bytes.
//
// How the results relate to one process holding all the rows (ranks cut at multiples of the
// CPU backend's 2048-row chunk, so each rank's chunk partials are the single process's):
//   - sums (per-cluster sums and counts, inertia, φ, candidate potentials, label statistics):
//     the per-rank partials are added in rank order, where one process adds the same chunk
//     partials in one running sum. Only the association of those additions differs: ~1e-16
//     relative in the double sums. R = 1 is bit-identical.
//   - centroids: float32 means of those sums; a double that differs in its last bits rounds to
//     the same float unless it lies within ~1e-16 of a rounding boundary, so in practice the
//     centroids and labels are identical.
//   - column statistics: Chan et al.'s pairwise combination of the ranks' means and variances
//     (a second pass around the global mean cannot be asked of the local backend): ~1e-15.
//   - mini-batch steps: the batch rows are all-gathered in batch order and the local backend
//     runs the step on them, so every rank does exactly the single process's arithmetic.
//   - labels, gathers, oversampling (counter-based draws indexed by global row): exact.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "comm.hpp"
#include "distributed.hpp"

namespace segforge::mpi {

namespace {

using detail::allgather;
using detail::check;
using detail::count_of;
using detail::data_comm;

/// Σ over ranks, in rank order, of each rank's [m] partial (all[r·m + e]).
std::vector<double> sum_in_rank_order(const std::vector<double>& all, int ranks, std::size_t m) {
  std::vector<double> out(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(m));
  for (int r = 1; r < ranks; ++r)
    for (std::size_t e = 0; e < m; ++e) out[e] += all[static_cast<std::size_t>(r) * m + e];
  return out;
}

/// Every rank's partial added in rank order, on every rank.
std::vector<double> combine(std::span<const double> partial) {
  if (size() == 1) return {partial.begin(), partial.end()};
  return sum_in_rank_order(allgather<double>(partial, size()), size(), partial.size());
}

class DistDataset final : public Dataset {
 public:
  /// Replicated: every rank holds the same rows.
  explicit DistDataset(std::unique_ptr<Dataset> all)
      : local(std::move(all)), n(local->n_samples()), d(local->n_features()),
        is_weighted(local->weighted()) {}
  /// Partitioned: this rank holds rows [starts[rank], starts[rank + 1]) of starts.back().
  DistDataset(std::unique_ptr<Dataset> part, std::vector<std::int64_t> rank_starts,
              std::int64_t width, std::vector<float> part_weights, bool any_weights)
      : local(std::move(part)), partitioned(true), n(rank_starts.back()), d(width),
        starts(std::move(rank_starts)), weights(std::move(part_weights)), is_weighted(any_weights) {}

  std::int64_t n_samples() const override { return n; }
  std::int64_t n_features() const override { return d; }
  bool weighted() const override { return is_weighted; }

  std::int64_t first_row() const { return starts[static_cast<std::size_t>(rank())]; }
  std::int64_t local_n() const { return starts[static_cast<std::size_t>(rank()) + 1] - first_row(); }
  /// The rank holding global row i.
  int owner(std::int64_t i) const {
    SEGFORGE_ASSERT(i >= 0 && i < n, "row index out of range");
    return static_cast<int>(std::upper_bound(starts.begin(), starts.end(), i) - starts.begin()) - 1;
  }

  std::unique_ptr<Dataset> local;
  bool partitioned = false;
  std::int64_t n = 0;
  std::int64_t d = 0;
  std::vector<std::int64_t> starts;  ///< [size + 1] (partitioned)
  std::vector<float> weights;        ///< this rank's weights (partitioned and weighted)
  bool is_weighted = false;
  std::vector<double> rank_phi;      ///< every rank's φ after the last min-distance call
  mutable std::unique_ptr<Dataset> whole;  ///< all rows on this rank (exact silhouette), on first need
};

const DistDataset& dist(const Dataset& data) {
  const auto* p = dynamic_cast<const DistDataset*>(&data);
  SEGFORGE_ASSERT(p != nullptr, "dataset was not made by the distributed backend");
  return *p;
}
DistDataset& dist(Dataset& data) {
  auto* p = dynamic_cast<DistDataset*>(&data);
  SEGFORGE_ASSERT(p != nullptr, "dataset was not made by the distributed backend");
  return *p;
}

/// Per-rank row counts of a partitioned dataset.
std::vector<std::int64_t> rank_counts(const DistDataset& ds) {
  std::vector<std::int64_t> counts(ds.starts.size() - 1);
  for (std::size_t r = 0; r + 1 < ds.starts.size(); ++r) counts[r] = ds.starts[r + 1] - ds.starts[r];
  return counts;
}

class DistributedBackendImpl final : public DistributedBackend {
 public:
  DistributedBackendImpl(std::unique_ptr<Backend> local, std::int64_t max_replicated_rows)
      : local_(std::move(local)), max_replicated_rows_(max_replicated_rows) {}

  Backend& local() override { return *local_; }

  BackendInfo info() const override {
    BackendInfo i = local_->info();
    i.device += "; MPI, " + std::to_string(size()) + (size() == 1 ? " rank" : " ranks");
    return i;
  }

  std::unique_ptr<Dataset> upload(MatrixView<const float> x,
                                  std::span<const float> weights) override {
    return std::make_unique<DistDataset>(local_->upload(x, weights));
  }

  std::unique_ptr<Dataset> adopt_part(std::unique_ptr<Dataset> local,
                                      std::span<const float> weights) override {
    const std::vector<std::int64_t> counts = mpi::allgather(local->n_samples());
    std::vector<std::int64_t> starts(counts.size() + 1, 0);
    for (std::size_t r = 0; r < counts.size(); ++r) starts[r + 1] = starts[r] + counts[r];
    const std::vector<std::int64_t> widths = mpi::allgather(local->n_features());
    SEGFORGE_ASSERT(std::all_of(widths.begin(), widths.end(), [&](auto w) { return w == widths[0]; }),
                    "every rank's part must have the same n_features");
    const bool weighted = mpi::any(local->weighted());
    SEGFORGE_ASSERT(!local->weighted() || static_cast<std::int64_t>(weights.size()) == local->n_samples(),
                    "a weighted part needs its weights");
    return std::make_unique<DistDataset>(std::move(local), std::move(starts), widths[0],
                                         std::vector<float>(weights.begin(), weights.end()), weighted);
  }

  Matrix<float> gather(const Dataset& data, std::span<const std::int64_t> rows) override {
    const auto& ds = dist(data);
    if (!ds.partitioned) return local_->gather(*ds.local, rows);
    // Each rank gathers the rows it owns (in the order asked), the blocks are all-gathered in
    // rank order, and every rank puts each row back at its place: all ranks know who owns what.
    const int ranks = size(), me = rank();
    std::vector<int> owner(rows.size());
    std::vector<std::int64_t> counts(static_cast<std::size_t>(ranks), 0);
    std::vector<std::int64_t> mine;
    for (std::size_t p = 0; p < rows.size(); ++p) {
      owner[p] = ds.owner(rows[p]);
      ++counts[static_cast<std::size_t>(owner[p])];
      if (owner[p] == me) mine.push_back(rows[p] - ds.first_row());
    }
    const Matrix<float> part = local_->gather(*ds.local, mine);
    Matrix<float> all(static_cast<std::int64_t>(rows.size()), ds.d);
    allgather_rows(part, counts, all.data(), ds.d);
    Matrix<float> out(static_cast<std::int64_t>(rows.size()), ds.d);
    std::vector<std::int64_t> next(static_cast<std::size_t>(ranks), 0);
    for (int r = 1; r < ranks; ++r) next[r] = next[r - 1] + counts[r - 1];
    for (std::size_t p = 0; p < rows.size(); ++p) {
      const std::int64_t from = next[static_cast<std::size_t>(owner[p])]++;
      std::copy(all.row(from), all.row(from) + ds.d, out.row(static_cast<std::int64_t>(p)));
    }
    return out;
  }

  ColumnStats column_stats(const Dataset& data) override {
    const auto& ds = dist(data);
    const ColumnStats mine = local_->column_stats(*ds.local);
    if (!ds.partitioned || size() == 1) return mine;
    // Chan, Golub & LeVeque (1983): M2 = Σ_r (n_r·var_r + n_r·(mean_r − mean)²), ranks in order.
    const std::int64_t d = ds.d;
    std::vector<double> partial(static_cast<std::size_t>(2 * d));
    std::copy(mine.mean.begin(), mine.mean.end(), partial.begin());
    std::copy(mine.variance.begin(), mine.variance.end(), partial.begin() + d);
    const std::vector<double> all = allgather<double>(partial, size());
    const std::vector<std::int64_t> counts = rank_counts(ds);
    const auto total = static_cast<double>(ds.n);
    ColumnStats out;
    out.mean.assign(static_cast<std::size_t>(d), 0.0);
    out.variance.assign(static_cast<std::size_t>(d), 0.0);
    for (int r = 0; r < size(); ++r) {
      const auto nr = static_cast<double>(counts[static_cast<std::size_t>(r)]);
      for (std::int64_t j = 0; j < d; ++j) out.mean[j] += nr * all[static_cast<std::size_t>(r * 2 * d + j)];
    }
    if (total > 0)
      for (auto& m : out.mean) m /= total;
    for (int r = 0; r < size(); ++r) {
      const auto nr = static_cast<double>(counts[static_cast<std::size_t>(r)]);
      if (nr == 0) continue;
      for (std::int64_t j = 0; j < d; ++j) {
        const double delta = all[static_cast<std::size_t>(r * 2 * d + j)] - out.mean[j];
        out.variance[j] += nr * all[static_cast<std::size_t>(r * 2 * d + d + j)] + nr * delta * delta;
      }
    }
    if (total > 0)
      for (auto& v : out.variance) v /= total;
    return out;
  }

  // ---- Lloyd ------------------------------------------------------------------------------

  AccumulateResult assign_accumulate(Dataset& data, MatrixView<const float> centroids) override {
    auto& ds = dist(data);
    AccumulateResult mine = local_->assign_accumulate(*ds.local, centroids);
    if (!ds.partitioned || size() == 1) return mine;
    const std::size_t kd = mine.sums.size(), k = mine.counts.size();
    std::vector<double> partial(kd + k + 2);
    std::copy(mine.sums.begin(), mine.sums.end(), partial.begin());
    std::copy(mine.counts.begin(), mine.counts.end(), partial.begin() + kd);
    partial[kd + k] = mine.inertia;
    partial[kd + k + 1] = static_cast<double>(mine.n_changed);  // exact below 2^53
    const std::vector<double> total = combine(partial);
    AccumulateResult out;
    out.sums.assign(total.begin(), total.begin() + kd);
    out.counts.assign(total.begin() + kd, total.begin() + kd + k);
    out.inertia = total[kd + k];
    out.n_changed = static_cast<std::int64_t>(total[kd + k + 1]);
    return out;
  }

  void assign(const Dataset& data, MatrixView<const float> centroids,
              std::span<std::int32_t> labels, std::span<float> sq_distances) override {
    const auto& ds = dist(data);
    if (!ds.partitioned) return local_->assign(*ds.local, centroids, labels, sq_distances);
    SEGFORGE_ASSERT(static_cast<std::int64_t>(labels.size()) == ds.n, "labels must have n_samples entries");
    SEGFORGE_ASSERT(sq_distances.empty() || static_cast<std::int64_t>(sq_distances.size()) == ds.n,
                    "sq_distances must be empty or have n_samples entries");
    const auto first = static_cast<std::size_t>(ds.first_row());
    const auto count = static_cast<std::size_t>(ds.local_n());
    local_->assign(*ds.local, centroids, labels.subspan(first, count),
                   sq_distances.empty() ? std::span<float>() : sq_distances.subspan(first, count));
    if (size() == 1) return;
    const std::vector<std::int64_t> counts = rank_counts(ds);
    allgather_in_place(labels, counts);
    if (!sq_distances.empty()) allgather_in_place(sq_distances, counts);
  }

  // ---- k-means++ and k-means|| --------------------------------------------------------------

  double reset_min_distances(Dataset& data, MatrixView<const float> centres) override {
    auto& ds = dist(data);
    return record_phi(ds, local_->reset_min_distances(*ds.local, centres));
  }

  double update_min_distances(Dataset& data, MatrixView<const float> centres) override {
    auto& ds = dist(data);
    return record_phi(ds, local_->update_min_distances(*ds.local, centres));
  }

  std::vector<double> candidate_potentials(const Dataset& data,
                                           MatrixView<const float> candidates) override {
    const auto& ds = dist(data);
    std::vector<double> mine = local_->candidate_potentials(*ds.local, candidates);
    if (!ds.partitioned) return mine;
    return combine(mine);
  }

  std::vector<std::int64_t> sample_by_min_distance(const Dataset& data,
                                                   std::span<const double> targets) override {
    const auto& ds = dist(data);
    if (!ds.partitioned) return local_->sample_by_min_distance(*ds.local, targets);
    SEGFORGE_ASSERT(static_cast<int>(ds.rank_phi.size()) == size(),
                    "sample_by_min_distance before reset_min_distances");
    // The cumulative mass Σ_{j<=i} w_j·d(x_j) runs through the ranks in order: rank r's rows
    // start at offset O_r = Σ_{q<r} φ_q. A target t belongs to the rank with O_r <= t < O_{r+1}
    // (ranks with φ_r = 0 own nothing), which answers t − O_r against its own cumulative sums.
    // Targets at or past φ clip to the last row with w·d > 0: the last such row of the last rank
    // with φ_r > 0, which its local search clips to. With φ = 0 every target is the last row.
    const int ranks = size(), me = rank();
    int last_positive = -1;
    for (int r = 0; r < ranks; ++r)
      if (ds.rank_phi[static_cast<std::size_t>(r)] > 0) last_positive = r;
    if (last_positive < 0) return std::vector<std::int64_t>(targets.size(), ds.n - 1);
    std::vector<double> offsets(static_cast<std::size_t>(ranks) + 1, 0.0);
    for (int r = 0; r < ranks; ++r) offsets[r + 1] = offsets[r] + ds.rank_phi[static_cast<std::size_t>(r)];
    std::vector<std::int64_t> counts(static_cast<std::size_t>(ranks), 0);
    std::vector<double> mine;
    int r = 0;
    for (const double t : targets) {
      // Ascending targets: the owner only moves forward.
      while (r < last_positive &&
             (ds.rank_phi[static_cast<std::size_t>(r)] <= 0 || t >= offsets[static_cast<std::size_t>(r) + 1]))
        ++r;
      ++counts[static_cast<std::size_t>(r)];
      if (r == me) mine.push_back(t - offsets[static_cast<std::size_t>(r)]);
    }
    std::vector<std::int64_t> found;
    if (!mine.empty()) found = local_->sample_by_min_distance(*ds.local, mine);
    for (auto& i : found) i += ds.first_row();
    std::vector<std::int64_t> out(targets.size());
    detail::allgatherv<std::int64_t>(found, counts, out.data(), MPI_INT64_T, 1);
    return out;
  }

  std::vector<std::int64_t> oversample(const Dataset& data, double factor, std::uint64_t seed,
                                       std::int64_t first_row) override {
    const auto& ds = dist(data);
    if (!ds.partitioned) return local_->oversample(*ds.local, factor, seed, first_row);
    // Draws indexed by global row (first_row + i), so the union over ranks is the single
    // process's pick; local indices shifted to global, concatenated in rank order (ascending).
    std::vector<std::int64_t> mine = local_->oversample(*ds.local, factor, seed, first_row + ds.first_row());
    for (auto& i : mine) i += ds.first_row();
    const std::vector<std::int64_t> counts = mpi::allgather(static_cast<std::int64_t>(mine.size()));
    std::vector<std::int64_t> out(static_cast<std::size_t>(std::accumulate(counts.begin(), counts.end(), std::int64_t{0})));
    detail::allgatherv<std::int64_t>(mine, counts, out.data(), MPI_INT64_T, 1);
    return out;
  }

  // ---- mini-batch -------------------------------------------------------------------------

  double minibatch_step(const Dataset& data, std::span<const std::int64_t> batch,
                        MatrixView<float> centroids, std::span<double> counts) override {
    const auto& ds = dist(data);
    if (!ds.partitioned) return local_->minibatch_step(*ds.local, batch, centroids, counts);
    // The batch rows, in batch order, on every rank; then the single process's step on them.
    const Matrix<float> rows = gather(data, batch);
    const std::vector<float> w = ds.is_weighted ? gather_weights(ds, batch) : std::vector<float>();
    const std::unique_ptr<Dataset> block = local_->upload(rows.view(), w);
    std::vector<std::int64_t> all(batch.size());
    std::iota(all.begin(), all.end(), std::int64_t{0});
    return local_->minibatch_step(*block, all, centroids, counts);
  }

  // ---- metrics and distance matrices --------------------------------------------------------

  LabelStats label_stats(const Dataset& data, std::span<const std::int32_t> labels,
                         int n_clusters, MatrixView<const float> centroids) override {
    const auto& ds = dist(data);
    if (!ds.partitioned) return local_->label_stats(*ds.local, labels, n_clusters, centroids);
    SEGFORGE_ASSERT(static_cast<std::int64_t>(labels.size()) == ds.n, "labels must have n_samples entries");
    LabelStats mine = local_->label_stats(
        *ds.local,
        labels.subspan(static_cast<std::size_t>(ds.first_row()), static_cast<std::size_t>(ds.local_n())),
        n_clusters, centroids);
    if (size() == 1) return mine;
    const std::size_t kd = mine.sums.size(), k = mine.counts.size();
    std::vector<double> partial;
    partial.reserve(kd + 3 * k);
    for (const auto* v : {&mine.sums, &mine.counts, &mine.dist_sums, &mine.sq_dist_sums})
      partial.insert(partial.end(), v->begin(), v->end());
    const std::vector<double> total = combine(partial);
    LabelStats out;
    auto at = total.begin();
    out.sums.assign(at, at + static_cast<std::ptrdiff_t>(kd));
    at += static_cast<std::ptrdiff_t>(kd);
    for (auto* v : {&out.counts, &out.dist_sums, &out.sq_dist_sums}) {
      v->assign(at, at + static_cast<std::ptrdiff_t>(k));
      at += static_cast<std::ptrdiff_t>(k);
    }
    return out;
  }

  Matrix<double> cluster_distance_sums(const Dataset& data, std::span<const std::int32_t> labels,
                                       int n_clusters, std::int64_t row_begin,
                                       std::int64_t row_count) override {
    const auto& ds = dist(data);
    return local_->cluster_distance_sums(local_view(ds, "exact silhouette"), labels, n_clusters,
                                         row_begin, row_count);
  }

  Matrix<float> distance_tile(const Dataset& a, std::int64_t a_begin, std::int64_t a_count,
                              const Dataset& b, std::int64_t b_begin, std::int64_t b_count,
                              bool squared) override {
    const Dataset& la = local_view(dist(a), "pairwise distances");
    const Dataset& lb = local_view(dist(b), "pairwise distances");
    return local_->distance_tile(la, a_begin, a_count, lb, b_begin, b_count, squared);
  }

 private:
  double record_phi(DistDataset& ds, double mine) {
    if (!ds.partitioned) return mine;
    ds.rank_phi = allgather<double>(std::span(&mine, 1), size());
    return sum_in_rank_order(ds.rank_phi, size(), 1)[0];
  }

  /// A dataset on this rank with all the rows: the local one when replicated, else a copy of
  /// every rank's rows made on first need (collective: the drivers call this on every rank at
  /// the same point) when they are few enough.
  const Dataset& local_view(const DistDataset& ds, const char* what) {
    if (!ds.partitioned) return *ds.local;
    if (ds.whole) return *ds.whole;
    constexpr std::int64_t kMaxValues = std::int64_t{1} << 26;
    if (ds.n > max_replicated_rows_ || ds.n * ds.d > kMaxValues)
      throw InputError(std::string(what) + " under MPI on " + std::to_string(ds.n) + " x " +
                       std::to_string(ds.d) + " rows would copy every row to every rank (limit " +
                       std::to_string(max_replicated_rows_) +
                       " rows); use --silhouette sample=N, or run in one process");
    std::vector<std::int64_t> mine(static_cast<std::size_t>(ds.local_n()));
    std::iota(mine.begin(), mine.end(), std::int64_t{0});
    const Matrix<float> part = local_->gather(*ds.local, mine);
    Matrix<float> all(ds.n, ds.d);
    allgather_rows(part, rank_counts(ds), all.data(), ds.d);
    std::vector<float> w;
    if (ds.is_weighted) {
      w.resize(static_cast<std::size_t>(ds.n));
      detail::allgatherv<float>(ds.weights, rank_counts(ds), w.data(), MPI_FLOAT, 1);
    }
    ds.whole = local_->upload(all.view(), w);
    return *ds.whole;
  }

  /// The weights of global rows `rows`, in order (a weighted partitioned dataset).
  std::vector<float> gather_weights(const DistDataset& ds, std::span<const std::int64_t> rows) {
    const int ranks = size(), me = rank();
    std::vector<int> owner(rows.size());
    std::vector<std::int64_t> counts(static_cast<std::size_t>(ranks), 0);
    std::vector<float> mine;
    for (std::size_t p = 0; p < rows.size(); ++p) {
      owner[p] = ds.owner(rows[p]);
      ++counts[static_cast<std::size_t>(owner[p])];
      if (owner[p] == me) mine.push_back(ds.weights[static_cast<std::size_t>(rows[p] - ds.first_row())]);
    }
    std::vector<float> all(rows.size()), out(rows.size());
    detail::allgatherv<float>(mine, counts, all.data(), MPI_FLOAT, 1);
    std::vector<std::int64_t> next(static_cast<std::size_t>(ranks), 0);
    for (int r = 1; r < ranks; ++r) next[r] = next[r - 1] + counts[r - 1];
    for (std::size_t p = 0; p < rows.size(); ++p) out[p] = all[static_cast<std::size_t>(next[owner[p]]++)];
    return out;
  }

  /// Every rank's block of rows (counts[r] rows of d floats), in rank order, into `out`.
  static void allgather_rows(const Matrix<float>& part, std::span<const std::int64_t> counts,
                             float* out, std::int64_t d) {
    MPI_Datatype row = MPI_DATATYPE_NULL;
    check(MPI_Type_contiguous(count_of(d, "row width"), MPI_FLOAT, &row), "MPI_Type_contiguous");
    MPI_Type_commit(&row);
    detail::allgatherv<float>(std::span<const float>(part.data(), static_cast<std::size_t>(part.size())),
                              counts, out, row, d);
    MPI_Type_free(&row);
  }

  /// Rank r's values sit at [start_r, start_r + counts[r]) of `v`: fill in everyone else's.
  template <class T>
  static void allgather_in_place(std::span<T> v, std::span<const std::int64_t> counts) {
    const detail::Layout l = detail::layout_of(counts);
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v.data(), l.counts.data(),
                         l.displs.data(), detail::type_of<T>(), data_comm()),
          "MPI_Allgatherv");
  }

  std::unique_ptr<Backend> local_;
  std::int64_t max_replicated_rows_;
};

}  // namespace

std::unique_ptr<DistributedBackend> make_distributed_backend(std::unique_ptr<Backend> local,
                                                             std::int64_t max_replicated_rows) {
  // The replicated steps (k-means|| reclustering, mini-batch steps, silhouette samples) run on
  // every rank and must come out the same everywhere: one kind of backend on every rank.
  const std::string mine = local->info().name;
  const std::string first = broadcast(mine);
  if (any(mine != first))
    throw InputError("the MPI ranks do not all run on the same backend (rank 0 on " + first +
                     "; e.g. nodes without a GPU under --device auto); pass --device gpu or "
                     "--device cpu so that every rank uses the same one");
  return std::make_unique<DistributedBackendImpl>(std::move(local), max_replicated_rows);
}

}  // namespace segforge::mpi
