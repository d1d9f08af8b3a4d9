// Agglomerative clustering (include/segforge/agglomerative.hpp): the nearest-neighbour chain
// (Ward on centroids; complete and average on a condensed distance matrix), Prim's algorithm for
// single linkage, SciPy's post-processing into a linkage matrix, cuts, and the driver with its
// two-stage path (K-Means micro-clusters, then size-weighted Ward).
//
// Built with -ffp-contract=off (src/CMakeLists.txt): distances must round as SciPy's do, so no
// a·b + c may be fused where the target has FMA.

#include "segforge/agglomerative.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "segforge/error.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/validate.hpp"

namespace segforge {
namespace {

using i64 = std::int64_t;
constexpr double kInf = std::numeric_limits<double>::infinity();

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string bytes_text(double bytes) {
  std::ostringstream s;
  s.precision(3);
  if (bytes >= double(1 << 30)) s << bytes / double(1 << 30) << " GiB";
  else s << bytes / double(1 << 20) << " MiB";
  return s.str();
}

/// A merge as the chain or Prim's algorithm records it, before SciPy's post-processing: two leaf
/// indices standing for the two clusters, and the height.
struct RawMerge {
  i64 x = 0, y = 0;
  double height = 0.0;
};

/// SciPy's nn_chain / mst_single_linkage epilogue: `order = argsort(Z[:, 2], kind='mergesort')`
/// (stable), then `label(Z, n)`: for each merge in that order, the union-find roots of its two
/// leaves become its children (the lower first) and their union the next cluster id.
LinkageTree finish(std::vector<RawMerge>& raw, i64 n, std::span<const double> leaf_size, Linkage linkage) {
  LinkageTree tree;
  tree.linkage = linkage;
  tree.n_leaves = n;
  std::stable_sort(raw.begin(), raw.end(), [](const RawMerge& a, const RawMerge& b) { return a.height < b.height; });
  const i64 nodes = 2 * n - 1;
  std::vector<i64> parent(static_cast<std::size_t>(std::max<i64>(nodes, 0)));
  std::iota(parent.begin(), parent.end(), i64{0});
  std::vector<double> size(parent.size(), 1.0);
  for (i64 i = 0; i < n && !leaf_size.empty(); ++i) size[static_cast<std::size_t>(i)] = leaf_size[static_cast<std::size_t>(i)];
  auto find = [&](i64 v) {
    i64 r = v;
    while (parent[static_cast<std::size_t>(r)] != r) r = parent[static_cast<std::size_t>(r)];
    while (parent[static_cast<std::size_t>(v)] != r) {
      const i64 next = parent[static_cast<std::size_t>(v)];
      parent[static_cast<std::size_t>(v)] = r;
      v = next;
    }
    return r;
  };
  tree.merges.reserve(raw.size());
  i64 next = n;
  for (const RawMerge& m : raw) {
    const i64 rx = find(m.x), ry = find(m.y);
    SEGFORGE_ASSERT(rx != ry, "a merge joins a cluster with itself");
    parent[static_cast<std::size_t>(rx)] = next;
    parent[static_cast<std::size_t>(ry)] = next;
    const double s = size[static_cast<std::size_t>(rx)] + size[static_cast<std::size_t>(ry)];
    size[static_cast<std::size_t>(next)] = s;
    tree.merges.push_back(Merge{std::min(rx, ry), std::max(rx, ry), m.height, s});
    ++next;
  }
  return tree;
}

/// Chain merges keep the cluster at the higher position, so the cluster at position p always
/// holds leaf p. Rounding may put a merge a few ulps below a merge of one of its children (never
/// in exact arithmetic: the four linkages are reducible); the stable sort would then put the
/// parent first and relabel a different tree. Lift such a height to its child's.
void lift_below_children(std::vector<RawMerge>& raw, i64 n) {
  std::vector<double> top(static_cast<std::size_t>(n), 0.0);  // height that made the cluster at p
  for (RawMerge& m : raw) {
    m.height = std::max({m.height, top[static_cast<std::size_t>(m.x)], top[static_cast<std::size_t>(m.y)]});
    top[static_cast<std::size_t>(m.y)] = m.height;
  }
}

/// Squared distances from `centre` [d] to `count` points stored column by column (coordinate k
/// of point t at cols[k·stride + t]), each summed over k = 0, 1, ... in order as scipy's pdist
/// sums them. Four coordinates per pass over the points: the running sums stay in registers
/// while the order of the additions stays the same. [out] out [count]
void sq_distances(const double* centre, const double* cols, i64 stride, i64 d, i64 count, double* out) {
  std::fill(out, out + count, 0.0);
  i64 k = 0;
  for (; k + 4 <= d; k += 4) {
    const double c0 = centre[k], c1 = centre[k + 1], c2 = centre[k + 2], c3 = centre[k + 3];
    const double* p0 = cols + k * stride;
    const double* p1 = p0 + stride;
    const double* p2 = p1 + stride;
    const double* p3 = p2 + stride;
    for (i64 t = 0; t < count; ++t) {
      double a = out[t], e = c0 - p0[t];
      a += e * e;
      e = c1 - p1[t];
      a += e * e;
      e = c2 - p2[t];
      a += e * e;
      e = c3 - p3[t];
      a += e * e;
      out[t] = a;
    }
  }
  for (; k < d; ++k) {
    const double ck = centre[k];
    const double* p = cols + k * stride;
    for (i64 t = 0; t < count; ++t) {
      const double e = ck - p[t];
      out[t] += e * e;
    }
  }
}

// ---- Ward: nearest-neighbour chain on centroids -------------------------------------------------

/// The active clusters, compact in slots 0..m−1 (a merge swap-removes the lower position's
/// slot). Coordinates are stored column by column, coord[k·n + slot], so that the search for a
/// nearest neighbour runs over contiguous slots for each coordinate.
class WardClusters {
 public:
  WardClusters(MatrixView<const double> x, std::span<const double> w)
      : n_(x.rows), d_(x.cols), m_(x.rows), coord_(static_cast<std::size_t>(x.rows * x.cols)),
        size_(static_cast<std::size_t>(x.rows), 1.0), pos_(static_cast<std::size_t>(x.rows)),
        slot_(static_cast<std::size_t>(x.rows)), centre_(static_cast<std::size_t>(x.cols)) {
    for (i64 i = 0; i < n_; ++i)
      for (i64 k = 0; k < d_; ++k) coord_[static_cast<std::size_t>(k * n_ + i)] = x(i, k);
    if (!w.empty()) std::copy(w.begin(), w.end(), size_.begin());
    std::iota(pos_.begin(), pos_.end(), i64{0});
    std::iota(slot_.begin(), slot_.end(), i64{0});
  }

  i64 active() const { return m_; }
  i64 slot_of(i64 position) const { return slot_[static_cast<std::size_t>(position)]; }
  i64 position_of(i64 slot) const { return pos_[static_cast<std::size_t>(slot)]; }

  struct Nearest {
    i64 slot = -1;
    double value = kInf;       ///< the nearest one's f
    double want_value = kInf;  ///< f of the slot asked for (the previous chain element)
  };

  /// The nearest active cluster to the one in slot s by f(A, B) = |A|·|B|/(|A| + |B|)·||c_A − c_B||²
  /// (half the squared Ward distance), ties to the lowest position; and f to slot `want` (−1:
  /// none). For two leaves f = ||a − b||²/2 exactly, and ||a − b||² is summed over the
  /// coordinates in order, as scipy's pdist does, so leaf distances are SciPy's bit for bit.
  Nearest nearest(i64 s, i64 want) {
    constexpr i64 kBlock = 256;
    double acc[kBlock];
    for (i64 k = 0; k < d_; ++k) centre_[static_cast<std::size_t>(k)] = coord_[static_cast<std::size_t>(k * n_ + s)];
    const double sx = size_[static_cast<std::size_t>(s)];
    Nearest best;
    i64 best_pos = std::numeric_limits<i64>::max();
    for (i64 j0 = 0; j0 < m_; j0 += kBlock) {
      const i64 nb = std::min(kBlock, m_ - j0);
      sq_distances(centre_.data(), coord_.data() + j0, n_, d_, nb, acc);
      const double* sj = size_.data() + j0;
      for (i64 t = 0; t < nb; ++t) acc[t] *= sx * sj[t] / (sx + sj[t]);
      if (want >= j0 && want < j0 + nb) best.want_value = acc[want - j0];
      for (i64 t = 0; t < nb; ++t) {
        const double v = acc[t];
        if (v > best.value || j0 + t == s) continue;
        const i64 p = pos_[static_cast<std::size_t>(j0 + t)];
        if (v < best.value || p < best_pos) best.value = v, best.slot = j0 + t, best_pos = p;
      }
    }
    return best;
  }

  /// Merges the clusters in slots a and b into the one at the higher position, drops the other.
  void merge(i64 a, i64 b) {
    if (pos_[static_cast<std::size_t>(a)] > pos_[static_cast<std::size_t>(b)]) std::swap(a, b);
    const double sa = size_[static_cast<std::size_t>(a)], sb = size_[static_cast<std::size_t>(b)], s = sa + sb;
    for (i64 k = 0; k < d_; ++k) {
      double& cb = coord_[static_cast<std::size_t>(k * n_ + b)];
      cb = (sa * coord_[static_cast<std::size_t>(k * n_ + a)] + sb * cb) / s;
    }
    size_[static_cast<std::size_t>(b)] = s;
    // Swap-remove slot a.
    const i64 last = m_ - 1;
    slot_[static_cast<std::size_t>(pos_[static_cast<std::size_t>(a)])] = -1;
    if (a != last) {
      for (i64 k = 0; k < d_; ++k) coord_[static_cast<std::size_t>(k * n_ + a)] = coord_[static_cast<std::size_t>(k * n_ + last)];
      size_[static_cast<std::size_t>(a)] = size_[static_cast<std::size_t>(last)];
      pos_[static_cast<std::size_t>(a)] = pos_[static_cast<std::size_t>(last)];
      slot_[static_cast<std::size_t>(pos_[static_cast<std::size_t>(a)])] = a;
    }
    --m_;
  }

 private:
  i64 n_, d_, m_;
  std::vector<double> coord_;  // [d x n] by slot
  std::vector<double> size_;   // [n] by slot
  std::vector<i64> pos_;       // [n] slot -> position
  std::vector<i64> slot_;      // [n] position -> slot, −1 once merged away
  std::vector<double> centre_;
};

/// NN-chain-linkage (Müllner 2011, Fig. 4) as scipy's nn_chain runs it: start at the lowest
/// active position; extend the chain by the top's nearest neighbour, the previous element
/// winning a tie; merge when the top and the previous element are mutual nearest neighbours.
std::vector<RawMerge> ward_chain(MatrixView<const double> x, std::span<const double> w) {
  const i64 n = x.rows;
  WardClusters c(x, w);
  std::vector<RawMerge> raw;
  raw.reserve(static_cast<std::size_t>(n - 1));
  std::vector<i64> chain;  // positions
  chain.reserve(static_cast<std::size_t>(n));
  i64 lowest = 0;
  for (i64 k = 0; k < n - 1; ++k) {
    if (chain.empty()) {
      while (c.slot_of(lowest) < 0) ++lowest;
      chain.push_back(lowest);
    }
    i64 xp = 0, yp = 0;
    double f = 0.0;
    for (;;) {
      xp = chain.back();
      const i64 prev = chain.size() > 1 ? chain[chain.size() - 2] : -1;
      const WardClusters::Nearest nn = c.nearest(c.slot_of(xp), prev >= 0 ? c.slot_of(prev) : -1);
      if (prev >= 0 && nn.want_value <= nn.value) {
        yp = prev;
        f = nn.want_value;
        break;
      }
      chain.push_back(c.position_of(nn.slot));
      SEGFORGE_ASSERT(static_cast<i64>(chain.size()) <= c.active(), "the nearest-neighbour chain does not close");
    }
    chain.resize(chain.size() - 2);
    c.merge(c.slot_of(xp), c.slot_of(yp));
    // Ward distance sqrt(2·f): for two leaves sqrt(||a − b||²), SciPy's pdist value.
    raw.push_back(RawMerge{std::min(xp, yp), std::max(xp, yp), std::sqrt(2.0 * f)});
  }
  return raw;
}

// ---- complete and average: scipy's nn_chain over the condensed matrix ---------------------------

/// Euclidean distance as scipy's pdist computes it: Σ_k (a_k − b_k)² in order k = 0, 1, ...,
/// then the square root.
double pdist_distance(const double* a, const double* b, i64 d) {
  double s = 0.0;
  for (i64 k = 0; k < d; ++k) {
    const double diff = a[k] - b[k];
    s += diff * diff;
  }
  return std::sqrt(s);
}

std::vector<RawMerge> matrix_chain(MatrixView<const double> x, std::span<const double> w, Linkage linkage) {
  const i64 n = x.rows, d = x.cols;
  // Condensed index of (i, j), i < j: n·i − i(i+1)/2 + (j − i − 1) = offset[i] + j.
  std::vector<i64> offset(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i) offset[static_cast<std::size_t>(i)] = n * i - i * (i + 1) / 2 - i - 1;
  std::vector<double> dist(static_cast<std::size_t>(n * (n - 1) / 2));
  for (i64 i = 0; i < n; ++i)
    for (i64 j = i + 1; j < n; ++j)
      dist[static_cast<std::size_t>(offset[static_cast<std::size_t>(i)] + j)] = pdist_distance(x.row(i), x.row(j), d);
  auto at = [&](i64 i, i64 j) -> double& {
    return i < j ? dist[static_cast<std::size_t>(offset[static_cast<std::size_t>(i)] + j)]
                 : dist[static_cast<std::size_t>(offset[static_cast<std::size_t>(j)] + i)];
  };
  std::vector<double> size(static_cast<std::size_t>(n), 1.0);
  if (!w.empty()) std::copy(w.begin(), w.end(), size.begin());
  std::vector<i64> active(static_cast<std::size_t>(n));  // ascending: scans go in SciPy's order
  std::iota(active.begin(), active.end(), i64{0});
  std::vector<i64> chain;
  chain.reserve(static_cast<std::size_t>(n));
  std::vector<RawMerge> raw;
  raw.reserve(static_cast<std::size_t>(n - 1));
  for (i64 k = 0; k < n - 1; ++k) {
    if (chain.empty()) chain.push_back(active.front());
    i64 xp = 0, yp = 0;
    double current = kInf;
    for (;;) {
      xp = chain.back();
      // The previous element is the minimum unless another is strictly nearer (no cycles).
      if (chain.size() > 1) {
        yp = chain[chain.size() - 2];
        current = at(xp, yp);
      } else {
        current = kInf;
      }
      const double* below = dist.data();  // rows i < xp: column xp of row i
      const double* above = dist.data() + offset[static_cast<std::size_t>(xp)];  // row xp
      for (i64 i : active) {
        if (i == xp) continue;
        const double v = i < xp ? below[offset[static_cast<std::size_t>(i)] + xp] : above[i];
        if (v < current) current = v, yp = i;
      }
      if (chain.size() > 1 && yp == chain[chain.size() - 2]) break;
      chain.push_back(yp);
      SEGFORGE_ASSERT(static_cast<i64>(chain.size()) <= static_cast<i64>(active.size()), "the nearest-neighbour chain does not close");
    }
    chain.resize(chain.size() - 2);
    if (xp > yp) std::swap(xp, yp);
    const double nx = size[static_cast<std::size_t>(xp)], ny = size[static_cast<std::size_t>(yp)];
    raw.push_back(RawMerge{xp, yp, current});
    active.erase(std::lower_bound(active.begin(), active.end(), xp));
    size[static_cast<std::size_t>(yp)] = nx + ny;
    // Lance–Williams updates as scipy's _hierarchy_distance_update.pxi writes them.
    for (i64 i : active) {
      if (i == yp) continue;
      const double dxi = at(i, xp), dyi = at(i, yp);
      at(i, yp) = linkage == Linkage::complete ? std::max(dxi, dyi) : (nx * dxi + ny * dyi) / (nx + ny);
    }
  }
  return raw;
}

// ---- single: scipy's mst_single_linkage (Prim) without the matrix ---------------------------------

std::vector<RawMerge> prim_single(MatrixView<const double> x) {
  const i64 n = x.rows, d = x.cols;
  // Coordinates column by column, so distances from one row to a block of rows vectorise; each
  // distance still sums its coordinates in order, as pdist does.
  std::vector<double> coord(static_cast<std::size_t>(n * d));
  for (i64 i = 0; i < n; ++i)
    for (i64 k = 0; k < d; ++k) coord[static_cast<std::size_t>(k * n + i)] = x(i, k);
  std::vector<double> reach(static_cast<std::size_t>(n), kInf);  // D in SciPy: distance to the tree
  std::vector<std::uint8_t> merged(static_cast<std::size_t>(n), 0);
  std::vector<RawMerge> raw;
  raw.reserve(static_cast<std::size_t>(n - 1));
  constexpr i64 kBlock = 256;
  double acc[kBlock];
  std::vector<double> centre(static_cast<std::size_t>(d));
  i64 xp = 0, first = 0;  // first: lowest row not in the tree
  for (i64 k = 0; k < n - 1; ++k) {
    merged[static_cast<std::size_t>(xp)] = 1;
    for (i64 c = 0; c < d; ++c) centre[static_cast<std::size_t>(c)] = coord[static_cast<std::size_t>(c * n + xp)];
    while (merged[static_cast<std::size_t>(first)]) ++first;
    double current = kInf;
    i64 yp = 0;
    for (i64 j0 = first; j0 < n; j0 += kBlock) {
      const i64 nb = std::min(kBlock, n - j0);
      sq_distances(centre.data(), coord.data() + j0, n, d, nb, acc);
      for (i64 t = 0; t < nb; ++t) acc[t] = std::sqrt(acc[t]);
      for (i64 t = 0; t < nb; ++t) {
        const i64 i = j0 + t;
        if (merged[static_cast<std::size_t>(i)]) continue;
        double& r = reach[static_cast<std::size_t>(i)];
        if (r > acc[t]) r = acc[t];
        if (r < current) current = r, yp = i;
      }
    }
    raw.push_back(RawMerge{xp, yp, current});
    xp = yp;
  }
  return raw;
}

void check_input(MatrixView<const double> x, std::span<const double> w) {
  if (x.rows < 1) throw InputError("agglomerative clustering: no rows to cluster");
  for (i64 i = 0; i < x.rows; ++i)
    for (i64 k = 0; k < x.cols; ++k)
      if (!std::isfinite(x(i, k)))
        throw InputError("agglomerative clustering: row " + std::to_string(i) + " column " + std::to_string(k) +
                         " is not finite; clean the data or drop the row");
  if (w.empty()) return;
  if (static_cast<i64>(w.size()) != x.rows)
    throw InputError("agglomerative clustering: " + std::to_string(w.size()) + " weights for " + std::to_string(x.rows) +
                     " rows; give one weight per row");
  for (i64 i = 0; i < x.rows; ++i)
    if (!(std::isfinite(w[static_cast<std::size_t>(i)]) && w[static_cast<std::size_t>(i)] > 0.0)) {
      std::ostringstream v;
      v << w[static_cast<std::size_t>(i)];
      throw InputError("agglomerative clustering: row " + std::to_string(i) + " has weight " + v.str() +
                       "; weights are cluster sizes and must be finite and > 0: drop the row or fix its weight");
    }
}

/// The labels of a cut after the first `kept` merges, numbered by lowest leaf.
TreeCut cut_after(const LinkageTree& tree, i64 kept) {
  const i64 n = tree.n_leaves;
  std::vector<i64> parent(static_cast<std::size_t>(n));
  std::iota(parent.begin(), parent.end(), i64{0});
  auto find = [&](i64 v) {
    while (parent[static_cast<std::size_t>(v)] != v) {
      parent[static_cast<std::size_t>(v)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(v)])];
      v = parent[static_cast<std::size_t>(v)];
    }
    return v;
  };
  std::vector<i64> leaf_of(static_cast<std::size_t>(n + kept));  // a leaf of each cluster id
  std::iota(leaf_of.begin(), leaf_of.begin() + n, i64{0});
  for (i64 i = 0; i < kept; ++i) {
    const Merge& m = tree.merges[static_cast<std::size_t>(i)];
    const i64 a = leaf_of[static_cast<std::size_t>(m.a)], b = leaf_of[static_cast<std::size_t>(m.b)];
    parent[static_cast<std::size_t>(find(b))] = find(a);
    leaf_of[static_cast<std::size_t>(n + i)] = a;
  }
  TreeCut cut;
  cut.labels.resize(static_cast<std::size_t>(n));
  std::vector<std::int32_t> label_of_root(static_cast<std::size_t>(n), -1);
  for (i64 i = 0; i < n; ++i) {
    std::int32_t& l = label_of_root[static_cast<std::size_t>(find(i))];
    if (l < 0) l = cut.n_clusters++;
    cut.labels[static_cast<std::size_t>(i)] = l;
  }
  return cut;
}

/// Renumbers labels in the order of their lowest index.
int renumber_by_first(std::vector<std::int32_t>& labels, int n_labels) {
  std::vector<std::int32_t> to(static_cast<std::size_t>(n_labels), -1);
  int next = 0;
  for (std::int32_t& l : labels) {
    std::int32_t& t = to[static_cast<std::size_t>(l)];
    if (t < 0) t = next++;
    l = t;
  }
  return next;
}

}  // namespace

Linkage parse_linkage(const std::string& name) {
  std::string s = name;
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (s == "ward") return Linkage::ward;
  if (s == "complete") return Linkage::complete;
  if (s == "average") return Linkage::average;
  if (s == "single") return Linkage::single;
  throw InputError("unknown linkage '" + name + "'; use ward, complete, average or single");
}

std::string linkage_name(Linkage linkage) {
  switch (linkage) {
    case Linkage::ward: return "ward";
    case Linkage::complete: return "complete";
    case Linkage::average: return "average";
    case Linkage::single: return "single";
  }
  SEGFORGE_ASSERT(false, "unknown linkage");
  return {};
}

std::int64_t max_samples_for_matrix(std::int64_t memory_budget_bytes) {
  // Largest n with 8·n(n−1)/2 <= budget (capped at 2^60 bytes, so that 4·n² cannot overflow).
  const i64 budget = std::clamp<i64>(memory_budget_bytes, 0, i64{1} << 60);
  i64 n = static_cast<i64>((1.0 + std::sqrt(1.0 + static_cast<double>(budget))) / 2.0);
  while (n > 1 && 4 * n * (n - 1) > budget) --n;
  while (4 * (n + 1) * n <= budget) ++n;
  return std::max<i64>(n, 1);
}

LinkageTree linkage_tree(MatrixView<const double> x, std::span<const double> weights, Linkage linkage,
                         const LinkageOptions& options) {
  check_input(x, weights);
  const i64 n = x.rows;
  if ((linkage == Linkage::complete || linkage == Linkage::average) && n > max_samples_for_matrix(options.memory_budget_bytes))
    throw InputError(linkage_name(linkage) + " linkage on " + std::to_string(n) + " rows needs a " +
                     bytes_text(4.0 * static_cast<double>(n) * static_cast<double>(n - 1)) +
                     " distance matrix, over the memory budget of " + bytes_text(static_cast<double>(options.memory_budget_bytes)) +
                     " (" + std::to_string(max_samples_for_matrix(options.memory_budget_bytes)) +
                     " rows at most); raise the memory budget, sample the rows, or use ward linkage (no matrix; two-stage for large N)");
  std::vector<RawMerge> raw;
  if (n >= 2) {
    switch (linkage) {
      case Linkage::ward:
        raw = ward_chain(x, weights);
        lift_below_children(raw, n);
        break;
      case Linkage::complete:
      case Linkage::average:
        raw = matrix_chain(x, weights, linkage);
        lift_below_children(raw, n);
        break;
      case Linkage::single:
        raw = prim_single(x);  // Prim's path: a union in any order gives a tree
        break;
    }
  }
  return finish(raw, n, weights, linkage);
}

TreeCut cut_by_count(const LinkageTree& tree, std::int64_t n_clusters) {
  if (n_clusters < 1 || n_clusters > tree.n_leaves)
    throw InputError("n_clusters=" + std::to_string(n_clusters) + " must be between 1 and the tree's " +
                     std::to_string(tree.n_leaves) + " leaves; choose a K in that range");
  return cut_after(tree, tree.n_leaves - n_clusters);
}

TreeCut cut_by_height(const LinkageTree& tree, double height) {
  if (!std::isfinite(height) || height < 0.0) {
    std::ostringstream v;
    v << height;
    throw InputError("distance_threshold=" + v.str() + " must be a finite height >= 0");
  }
  i64 kept = 0;
  while (kept < static_cast<i64>(tree.merges.size()) && tree.merges[static_cast<std::size_t>(kept)].height <= height) ++kept;
  return cut_after(tree, kept);
}

void validate(const AgglomerativeParams& p, std::int64_t n_samples, const std::string& where) {
  const std::string method = linkage_name(p.linkage);
  if (n_samples < 1) throw InputError(where + ": no rows to cluster");
  if (p.distance_threshold) {
    if (!std::isfinite(*p.distance_threshold) || *p.distance_threshold < 0.0) {
      std::ostringstream v;
      v << *p.distance_threshold;
      throw InputError(where + ": distance_threshold=" + v.str() + " must be a finite height >= 0");
    }
  } else if (p.n_clusters < 1 || p.n_clusters > n_samples) {
    throw InputError(where + ": n_clusters=" + std::to_string(p.n_clusters) + " should be between 1 and n_samples=" +
                     std::to_string(n_samples) + "; choose a K in that range");
  }
  if (p.exact_max_samples < 1)
    throw InputError(where + ": exact_max_samples=" + std::to_string(p.exact_max_samples) + " should be >= 1");
  if (p.n_micro_clusters < 1 || p.n_micro_clusters > std::numeric_limits<std::int32_t>::max())
    throw InputError(where + ": n_micro_clusters=" + std::to_string(p.n_micro_clusters) + " should be >= 1 (e.g. 2000)");
  if (p.micro_max_iter < 1)
    throw InputError(where + ": micro_max_iter=" + std::to_string(p.micro_max_iter) + " should be >= 1");
  if (p.micro_init == Init::given)
    throw InputError(where + ": the micro-clusters' K-Means starts from random rows, k-means++ or k-means||, not from given centres");
  if (!std::isfinite(p.micro_tol) || p.micro_tol < 0.0)
    throw InputError(where + ": micro_tol should be a finite number >= 0");
  if (p.memory_budget_bytes < 1) throw InputError(where + ": the memory budget should be > 0 bytes");
  const bool above = n_samples > p.exact_max_samples;
  const bool two_stage = p.strategy == AgglomerativeStrategy::two_stage ||
                         (p.strategy == AgglomerativeStrategy::auto_select && above);
  if (two_stage && p.linkage != Linkage::ward) {
    if (p.strategy == AgglomerativeStrategy::two_stage)
      throw InputError(where + ": only ward linkage has a two-stage path (size-weighted Ward continues from the micro-clusters); " +
                       method + " linkage runs exact only");
    throw InputError(where + ": " + method + " linkage on " + std::to_string(n_samples) + " rows is above exact_max_samples=" +
                     std::to_string(p.exact_max_samples) + " (its exact tree takes O(N²) time" +
                     (p.linkage == Linkage::single ? std::string() : std::string(" and memory")) +
                     "); use ward linkage, which goes two-stage above that, or raise exact_max_samples");
  }
  if (two_stage && !p.distance_threshold) {
    const i64 m = std::min<i64>(n_samples, p.n_micro_clusters);
    if (p.n_clusters > m)
      throw InputError(where + ": n_clusters=" + std::to_string(p.n_clusters) + " exceeds the " + std::to_string(m) +
                       " micro-clusters of the two-stage path; raise n_micro_clusters or choose a smaller K");
  }
}

AgglomerativeResult fit_agglomerative(Backend& backend, Dataset& data, const AgglomerativeParams& params) {
  const i64 n = data.n_samples(), d = data.n_features();
  validate(params, n, "agglomerative");
  AgglomerativeResult r;
  r.two_stage = params.strategy == AgglomerativeStrategy::two_stage ||
                (params.strategy == AgglomerativeStrategy::auto_select && n > params.exact_max_samples);
  LinkageOptions options;
  options.memory_budget_bytes = params.memory_budget_bytes;
  std::vector<std::int32_t> row_labels;
  int n_row_labels = 0;

  if (!r.two_stage) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<i64> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), i64{0});
    const Matrix<float> rows = backend.gather(data, all);
    Matrix<double> x(n, d);
    std::copy(rows.values().begin(), rows.values().end(), x.values().begin());
    std::vector<double> weights;
    if (data.weighted()) {
      // The rows' weights: label_stats with every row its own label gives counts = w_i.
      SEGFORGE_ASSERT(n <= std::numeric_limits<std::int32_t>::max(), "too many rows for an exact tree");
      std::vector<std::int32_t> own(static_cast<std::size_t>(n));
      std::iota(own.begin(), own.end(), 0);
      weights = backend.label_stats(data, own, static_cast<int>(n), MatrixView<const float>{}).counts;
    }
    r.tree = linkage_tree(x.view(), weights, params.linkage, options);
    r.linkage_seconds = seconds_since(t0);
    TreeCut cut = params.distance_threshold ? cut_by_height(r.tree, *params.distance_threshold)
                                            : cut_by_count(r.tree, params.n_clusters);
    row_labels = std::move(cut.labels);
    n_row_labels = cut.n_clusters;
  } else {
    // Stage 1: M K-Means micro-clusters, each row to its nearest centre;
    // a micro-cluster's centroid is then the exact mean of its rows, so that stage 2 is the
    // exact Ward continuation from this partition.
    auto t0 = std::chrono::steady_clock::now();
    const i64 m = std::min<i64>(n, params.n_micro_clusters);
    LloydParams km;
    km.n_clusters = static_cast<int>(m);
    km.max_iter = params.micro_max_iter;
    km.tol = params.micro_tol;
    km.n_init = 1;
    km.seed = params.seed;
    km.init.init = params.micro_init;
    validate(km, n, d, "agglomerative micro-clusters");
    const KMeansResult fit = fit_lloyd(backend, data, km);
    r.micro_n_iter = fit.n_iter;
    const Assignment assigned = predict(backend, data, fit.centroids.view());
    const LabelStats stats = backend.label_stats(data, assigned.labels, static_cast<int>(m), MatrixView<const float>{});
    std::vector<i64> members(static_cast<std::size_t>(m), 0);
    for (std::int32_t l : assigned.labels) ++members[static_cast<std::size_t>(l)];
    std::vector<std::int32_t> leaf_of(static_cast<std::size_t>(m), -1);
    std::int32_t leaves = 0;
    for (i64 c = 0; c < m; ++c) {
      if (members[static_cast<std::size_t>(c)] == 0) continue;
      if (!(stats.counts[static_cast<std::size_t>(c)] > 0.0))
        throw InputError("agglomerative: a micro-cluster's rows all have weight 0; agglomerative clustering needs "
                         "positive weights (cluster sizes): drop the weightless rows");
      leaf_of[static_cast<std::size_t>(c)] = leaves++;
    }
    r.micro_centroids = Matrix<double>(leaves, d);
    r.micro_centres = Matrix<float>(leaves, d);
    r.micro_sizes.resize(static_cast<std::size_t>(leaves));
    for (i64 c = 0; c < m; ++c) {
      const std::int32_t leaf = leaf_of[static_cast<std::size_t>(c)];
      if (leaf < 0) continue;
      for (i64 k = 0; k < d; ++k) r.micro_centres(leaf, k) = fit.centroids(c, k);
      const double w = stats.counts[static_cast<std::size_t>(c)];
      r.micro_sizes[static_cast<std::size_t>(leaf)] = w;
      for (i64 k = 0; k < d; ++k) r.micro_centroids(leaf, k) = stats.sums[static_cast<std::size_t>(c * d + k)] / w;
    }
    r.micro_labels.resize(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i)
      r.micro_labels[static_cast<std::size_t>(i)] = leaf_of[static_cast<std::size_t>(assigned.labels[static_cast<std::size_t>(i)])];
    r.micro_inertia = fit.inertia;
    r.micro_seconds = seconds_since(t0);

    // Stage 2: size-weighted Ward over the micro-clusters.
    t0 = std::chrono::steady_clock::now();
    if (!params.distance_threshold && params.n_clusters > leaves)
      throw InputError("agglomerative: n_clusters=" + std::to_string(params.n_clusters) + " exceeds the " + std::to_string(leaves) +
                       " non-empty micro-clusters; raise n_micro_clusters or choose a smaller K");
    r.tree = linkage_tree(r.micro_centroids.view(), r.micro_sizes, Linkage::ward, options);
    r.linkage_seconds = seconds_since(t0);
    const TreeCut cut = params.distance_threshold ? cut_by_height(r.tree, *params.distance_threshold)
                                                  : cut_by_count(r.tree, params.n_clusters);
    row_labels.resize(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i)
      row_labels[static_cast<std::size_t>(i)] = cut.labels[static_cast<std::size_t>(r.micro_labels[static_cast<std::size_t>(i)])];
    n_row_labels = cut.n_clusters;
  }

  r.n_clusters = renumber_by_first(row_labels, n_row_labels);
  r.labels = std::move(row_labels);
  if (r.two_stage) {
    r.leaf_labels.assign(static_cast<std::size_t>(r.micro_centres.rows()), -1);
    for (i64 i = 0; i < n; ++i)
      r.leaf_labels[static_cast<std::size_t>(r.micro_labels[static_cast<std::size_t>(i)])] = r.labels[static_cast<std::size_t>(i)];
  } else {
    r.leaf_labels = r.labels;
  }
  const LabelStats cs = backend.label_stats(data, r.labels, r.n_clusters, MatrixView<const float>{});
  r.centroids = Matrix<float>(r.n_clusters, d);
  r.sizes = cs.counts;
  for (i64 c = 0; c < r.n_clusters; ++c)
    for (i64 k = 0; k < d; ++k)
      r.centroids(c, k) = cs.counts[static_cast<std::size_t>(c)] > 0.0
                              ? static_cast<float>(cs.sums[static_cast<std::size_t>(c * d + k)] / cs.counts[static_cast<std::size_t>(c)])
                              : 0.0f;
  return r;
}

LeafAssignment predict_by_leaves(Backend& backend, const Dataset& data, MatrixView<const float> leaves,
                                 std::span<const std::int32_t> leaf_labels, MatrixView<const float> centroids) {
  SEGFORGE_ASSERT(static_cast<i64>(leaf_labels.size()) == leaves.rows, "one label per leaf");
  const i64 n = data.n_samples();
  LeafAssignment out;
  std::vector<std::int32_t> leaf(static_cast<std::size_t>(n));
  std::vector<float> leaf_distance(static_cast<std::size_t>(n));
  backend.assign(data, leaves, leaf, leaf_distance);
  out.labels.resize(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i) out.labels[static_cast<std::size_t>(i)] = leaf_labels[static_cast<std::size_t>(leaf[static_cast<std::size_t>(i)])];
  out.distances = distances_to_own_centroid(backend, data, out.labels, centroids);
  return out;
}

std::vector<float> distances_to_own_centroid(Backend& backend, const Dataset& data, std::span<const std::int32_t> labels,
                                             MatrixView<const float> centroids) {
  const i64 n = data.n_samples(), d = data.n_features();
  SEGFORGE_ASSERT(static_cast<i64>(labels.size()) == n && centroids.cols == d, "one label per row, centroids of the data's width");
  std::vector<float> out(static_cast<std::size_t>(n));
  constexpr i64 kWindow = 65536;
  std::vector<i64> rows;
  for (i64 r0 = 0; r0 < n; r0 += kWindow) {
    const i64 m = std::min(kWindow, n - r0);
    rows.resize(static_cast<std::size_t>(m));
    std::iota(rows.begin(), rows.end(), r0);
    const Matrix<float> x = backend.gather(data, rows);
    for (i64 i = 0; i < m; ++i) {
      const std::int32_t c = labels[static_cast<std::size_t>(r0 + i)];
      SEGFORGE_ASSERT(c >= 0 && c < centroids.rows, "a label outside the centroids");
      double s = 0.0;
      for (i64 j = 0; j < d; ++j) {
        const double v = static_cast<double>(x(i, j)) - centroids(c, j);
        s += v * v;
      }
      out[static_cast<std::size_t>(r0 + i)] = static_cast<float>(std::sqrt(s));
    }
  }
  return out;
}

}  // namespace segforge
