// BIRCH (include/segforge/birch.hpp): the CF-tree with BETULA's clustering features merged by
// Chan's formula, scikit-learn 1.2's insertion and split rules, rebuilds under a memory budget
// (Zhang, Ramakrishnan & Livny 1996, §5.1), the global step and predict.
//
// The tree is a pool of nodes with branching_factor + 1 entry slots each (a node holds one entry
// more than allowed for the moment before it splits), in contiguous arrays: no allocation per
// node or entry. Within a node the means are stored coordinate by coordinate,
// mean_[(node·d + k)·cap + j], so the distances from a row to a node's entries vectorise over j.

#include "segforge/birch.hpp"

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
using i32 = std::int32_t;

/// Rows read through the backend at a time (insertion and predict).
constexpr i64 kWindowRows = i64{1} << 16;
/// A rebuild multiplies the threshold by at least 2^(1/4): small steps keep the rebuilt tree
/// close to the budget (in D dimensions a step can divide the subclusters by up to 2^(D/4)),
/// and a rebuild re-inserts at most max_subclusters CFs, so many steps cost little.
const double kThresholdGrowth = std::pow(2.0, 0.25);

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// A clustering feature held outside the tree: n, μ (relative to the origin), S.
struct Cf {
  double n = 0.0;
  std::vector<double> mean;
  double ss = 0.0;
};

double sq_dist(const double* a, const double* b, i64 d) {
  double s = 0.0;
  for (i64 k = 0; k < d; ++k) {
    const double e = a[k] - b[k];
    s += e * e;
  }
  return s;
}

/// Chan's pairwise merge of (n_b, μ_b, S_b) into a: n = n_a + n_b, μ = μ_a + (n_b/n)(μ_b − μ_a),
/// S = S_a + S_b + (n_a·n_b/n)·‖μ_a − μ_b‖². Merging into an empty CF (n_a = 0) copies b.
void merge_into(Cf& a, double nb, const double* mb, double sb, i64 d) {
  if (a.n == 0.0) {
    a.n = nb;
    a.mean.assign(mb, mb + d);
    a.ss = sb;
    return;
  }
  const double d2 = sq_dist(a.mean.data(), mb, d);
  const double n = a.n + nb, f = nb / n;
  for (i64 k = 0; k < d; ++k) a.mean[static_cast<std::size_t>(k)] += f * (mb[k] - a.mean[static_cast<std::size_t>(k)]);
  a.ss = a.ss + sb + a.n * nb / n * d2;
  a.n = n;
}

class CfTree {
 public:
  CfTree(i64 d, int branching_factor, double threshold)
      : d_(d), b_(branching_factor), cap_(branching_factor + 1), threshold_(threshold),
        t2_(threshold * threshold), dist_(static_cast<std::size_t>(cap_)) {}

  i64 n_subclusters() const { return n_sub_; }
  double threshold() const { return threshold_; }

  /// Inserts the CF (w, x, ss) as scikit-learn's _CFNode.insert_cf_subcluster does, iteratively:
  /// descend to the nearest entry at each level, absorb or append in the leaf, then walk back up
  /// updating the entries on the path (or splitting the nodes that overflowed).
  void insert(double w, const double* x, double ss) {
    if (root_ < 0) {
      root_ = first_leaf_ = new_node(true);
      append(root_, w, x, ss, -1);
      ++n_sub_;
      return;
    }
    path_.clear();
    i32 v = root_;
    int j = 0;
    double d2 = 0.0;
    for (;;) {
      j = nearest(v, x, &d2);
      if (leaf_[static_cast<std::size_t>(v)]) break;
      path_.push_back(Step{v, j, d2});
      v = child_[slot(v, j)];
    }
    bool split = false;
    const i64 s = slot(v, j);
    const double n = w_[s] + w;
    const double ss_new = ss_[s] + ss + w_[s] * w / n * d2;
    if (ss_new / n <= t2_) {
      absorb(v, j, w, x, ss, d2);
    } else {
      append(v, w, x, ss, -1);
      ++n_sub_;
      split = count_[static_cast<std::size_t>(v)] > b_;
    }
    for (auto it = path_.rbegin(); it != path_.rend(); ++it) {
      if (!split) {
        absorb(it->node, it->entry, w, x, ss, it->d2);
        continue;
      }
      const i32 c = child_[slot(it->node, it->entry)];
      const i32 c2 = split_node(c);
      put(it->node, it->entry, half1_, c);
      append(it->node, half2_.n, half2_.mean.data(), half2_.ss, c2);
      split = count_[static_cast<std::size_t>(it->node)] > b_;
    }
    if (split) {
      const i32 old = root_;
      const i32 c2 = split_node(old);
      const i32 r = new_node(false);
      append(r, half1_.n, half1_.mean.data(), half1_.ss, old);
      append(r, half2_.n, half2_.mean.data(), half2_.ss, c2);
      root_ = r;
    }
  }

  /// The leaf CFs in leaf-chain order (the subclusters in subcluster order).
  std::vector<Cf> leaf_cfs() const {
    std::vector<Cf> out;
    out.reserve(static_cast<std::size_t>(n_sub_));
    for (i32 v = first_leaf_; v >= 0; v = next_[static_cast<std::size_t>(v)])
      for (int j = 0; j < count_[static_cast<std::size_t>(v)]; ++j) out.push_back(entry(v, j));
    return out;
  }

  /// The smallest squared radius that merging two entries of one leaf node would give (+inf
  /// when no leaf holds two).
  double min_pair_sq_radius() const {
    double best = std::numeric_limits<double>::infinity();
    std::vector<double> a(static_cast<std::size_t>(d_)), b(static_cast<std::size_t>(d_));
    for (i32 v = first_leaf_; v >= 0; v = next_[static_cast<std::size_t>(v)]) {
      const int c = count_[static_cast<std::size_t>(v)];
      for (int i = 0; i < c; ++i) {
        read_mean(v, i, a.data());
        for (int j = i + 1; j < c; ++j) {
          read_mean(v, j, b.data());
          const double ni = w_[slot(v, i)], nj = w_[slot(v, j)], n = ni + nj;
          const double s = ss_[slot(v, i)] + ss_[slot(v, j)] + ni * nj / n * sq_dist(a.data(), b.data(), d_);
          best = std::min(best, s / n);
        }
      }
    }
    return best;
  }

  void to_state(BirchState& st) const;
  static CfTree from_state(const BirchState& st);

 private:
  struct Step {
    i32 node;
    int entry;
    double d2;
  };

  i64 slot(i32 node, int j) const { return static_cast<i64>(node) * cap_ + j; }
  double* mean_col(i32 node, i64 k) { return mean_.data() + (static_cast<i64>(node) * d_ + k) * cap_; }
  const double* mean_col(i32 node, i64 k) const { return mean_.data() + (static_cast<i64>(node) * d_ + k) * cap_; }

  void read_mean(i32 node, int j, double* out) const {
    for (i64 k = 0; k < d_; ++k) out[k] = mean_col(node, k)[j];
  }

  Cf entry(i32 node, int j) const {
    Cf cf;
    cf.n = w_[slot(node, j)];
    cf.ss = ss_[slot(node, j)];
    cf.mean.resize(static_cast<std::size_t>(d_));
    read_mean(node, j, cf.mean.data());
    return cf;
  }

  i32 new_node(bool leaf) {
    const i64 id = static_cast<i64>(count_.size());
    SEGFORGE_ASSERT(id < std::numeric_limits<i32>::max(), "too many CF-tree nodes");
    count_.push_back(0);
    leaf_.push_back(leaf ? 1 : 0);
    next_.push_back(-1);
    const std::size_t slots = static_cast<std::size_t>((id + 1) * cap_);
    w_.resize(slots, 0.0);
    ss_.resize(slots, 0.0);
    child_.resize(slots, -1);
    mean_.resize(slots * static_cast<std::size_t>(d_), 0.0);
    return static_cast<i32>(id);
  }

  /// Squared distances ‖μ_j − x‖² to the node's entries, each summed over k in order; the
  /// first nearest entry and its distance.
  int nearest(i32 node, const double* x, double* d2) {
    const int c = count_[static_cast<std::size_t>(node)];
    double* out = dist_.data();
    std::fill(out, out + c, 0.0);
    for (i64 k = 0; k < d_; ++k) {
      const double xk = x[k];
      const double* m = mean_col(node, k);
      for (int j = 0; j < c; ++j) {
        const double e = m[j] - xk;
        out[j] += e * e;
      }
    }
    int best = 0;
    for (int j = 1; j < c; ++j)
      if (out[j] < out[best]) best = j;
    *d2 = out[best];
    return best;
  }

  void put(i32 node, int j, double n, const double* mean, double ss, i32 child) {
    const i64 s = slot(node, j);
    w_[s] = n;
    ss_[s] = ss;
    child_[s] = child;
    for (i64 k = 0; k < d_; ++k) mean_col(node, k)[j] = mean[k];
  }
  void put(i32 node, int j, const Cf& cf, i32 child) { put(node, j, cf.n, cf.mean.data(), cf.ss, child); }

  void append(i32 node, double n, const double* mean, double ss, i32 child) {
    int& c = count_[static_cast<std::size_t>(node)];
    SEGFORGE_ASSERT(c < cap_, "CF-tree node overflow");
    put(node, c, n, mean, ss, child);
    ++c;
  }

  /// Chan's merge of (w, x, ss) into entry j of the node, ‖μ_j − x‖² = d2 known.
  void absorb(i32 node, int j, double w, const double* x, double ss, double d2) {
    const i64 s = slot(node, j);
    const double na = w_[s], n = na + w, f = w / n;
    for (i64 k = 0; k < d_; ++k) {
      double& m = mean_col(node, k)[j];
      m += f * (x[k] - m);
    }
    ss_[s] = ss_[s] + ss + na * w / n * d2;
    w_[s] = n;
  }

  /// scikit-learn's _split_node on a node with branching_factor + 1 entries: the farthest pair
  /// (i, j) — the first maximum in row-major order of the distance matrix, (0, 0) when all
  /// entries coincide — then every entry to i's side when strictly nearer to i than to j (i
  /// always), else to j's, in node order. i's side stays in `node`, j's goes to a new node that
  /// follows it in the leaf chain. Leaves the two sides' CFs (merged in node order) in half1_,
  /// half2_; returns the new node.
  i32 split_node(i32 node) {
    const int c = count_[static_cast<std::size_t>(node)];
    const std::size_t cs = static_cast<std::size_t>(c);
    tmp_w_.resize(cs);
    tmp_ss_.resize(cs);
    tmp_child_.resize(cs);
    tmp_mean_.resize(cs * static_cast<std::size_t>(d_));
    for (int j = 0; j < c; ++j) {
      const i64 s = slot(node, j);
      tmp_w_[static_cast<std::size_t>(j)] = w_[s];
      tmp_ss_[static_cast<std::size_t>(j)] = ss_[s];
      tmp_child_[static_cast<std::size_t>(j)] = child_[s];
      read_mean(node, j, tmp_mean_.data() + static_cast<i64>(j) * d_);
    }
    const double* m = tmp_mean_.data();
    pair_.assign(cs * cs, 0.0);
    int far0 = 0, far1 = 0;
    double top = 0.0;
    for (int i = 0; i < c; ++i)
      for (int j = i + 1; j < c; ++j) {
        const double v = sq_dist(m + static_cast<i64>(i) * d_, m + static_cast<i64>(j) * d_, d_);
        pair_[static_cast<std::size_t>(i) * cs + static_cast<std::size_t>(j)] = v;
        pair_[static_cast<std::size_t>(j) * cs + static_cast<std::size_t>(i)] = v;
        if (v > top) top = v, far0 = i, far1 = j;
      }
    const bool leaf = leaf_[static_cast<std::size_t>(node)] != 0;
    const i32 node2 = new_node(leaf);  // may move the arrays: no pointers into them are held
    if (leaf) {
      next_[static_cast<std::size_t>(node2)] = next_[static_cast<std::size_t>(node)];
      next_[static_cast<std::size_t>(node)] = node2;
    }
    count_[static_cast<std::size_t>(node)] = 0;
    half1_ = Cf{};
    half2_ = Cf{};
    for (int idx = 0; idx < c; ++idx) {
      const bool first = idx == far0 || pair_[static_cast<std::size_t>(idx) * cs + static_cast<std::size_t>(far0)] <
                                            pair_[static_cast<std::size_t>(idx) * cs + static_cast<std::size_t>(far1)];
      const std::size_t u = static_cast<std::size_t>(idx);
      const double* mu = m + static_cast<i64>(idx) * d_;
      append(first ? node : node2, tmp_w_[u], mu, tmp_ss_[u], tmp_child_[u]);
      merge_into(first ? half1_ : half2_, tmp_w_[u], mu, tmp_ss_[u], d_);
    }
    return node2;
  }

  i64 d_;
  int b_, cap_;
  double threshold_, t2_;
  i32 root_ = -1, first_leaf_ = -1;
  i64 n_sub_ = 0;
  std::vector<double> w_, ss_, mean_;  // [nodes·cap], [nodes·cap], [nodes·d·cap]
  std::vector<i32> child_;             // [nodes·cap] −1 in leaves
  std::vector<int> count_;             // [nodes]
  std::vector<std::uint8_t> leaf_;     // [nodes]
  std::vector<i32> next_;              // [nodes] next leaf in the chain, −1 at the end
  // Scratch.
  std::vector<double> dist_;
  std::vector<Step> path_;
  std::vector<double> tmp_w_, tmp_ss_, tmp_mean_, pair_;
  std::vector<i32> tmp_child_;
  Cf half1_, half2_;
};

void CfTree::to_state(BirchState& st) const {
  // Node order: the leaves in chain order, then the internal nodes breadth first from the root.
  const std::size_t n_nodes = count_.size();
  std::vector<i64> id(n_nodes, -1);
  std::vector<i32> order;
  order.reserve(n_nodes);
  for (i32 v = first_leaf_; v >= 0; v = next_[static_cast<std::size_t>(v)]) {
    id[static_cast<std::size_t>(v)] = static_cast<i64>(order.size());
    order.push_back(v);
  }
  const std::size_t n_leaves = order.size();
  if (root_ >= 0 && !leaf_[static_cast<std::size_t>(root_)]) {
    id[static_cast<std::size_t>(root_)] = static_cast<i64>(order.size());
    order.push_back(root_);
    for (std::size_t q = n_leaves; q < order.size(); ++q) {
      const i32 v = order[q];
      for (int j = 0; j < count_[static_cast<std::size_t>(v)]; ++j) {
        const i32 c = child_[slot(v, j)];
        if (leaf_[static_cast<std::size_t>(c)]) continue;
        id[static_cast<std::size_t>(c)] = static_cast<i64>(order.size());
        order.push_back(c);
      }
    }
  }
  SEGFORGE_ASSERT(order.size() == n_nodes, "CF-tree nodes unreachable from the root");
  i64 n_entries = 0;
  for (i32 v : order) n_entries += count_[static_cast<std::size_t>(v)];
  st.threshold = threshold_;
  st.branching_factor = b_;
  st.n_features = d_;
  st.n_subclusters = n_sub_;
  st.weight.assign(static_cast<std::size_t>(n_entries), 0.0);
  st.sq_deviation.assign(static_cast<std::size_t>(n_entries), 0.0);
  st.child.assign(static_cast<std::size_t>(n_entries), -1);
  st.mean = Matrix<double>(n_entries, d_);
  st.node_start.assign(n_nodes == 0 ? 0 : n_nodes + 1, 0);
  i64 e = 0;
  for (std::size_t q = 0; q < order.size(); ++q) {
    const i32 v = order[q];
    st.node_start[q] = e;
    for (int j = 0; j < count_[static_cast<std::size_t>(v)]; ++j, ++e) {
      const i64 s = slot(v, j);
      st.weight[static_cast<std::size_t>(e)] = w_[s];
      st.sq_deviation[static_cast<std::size_t>(e)] = ss_[s];
      st.child[static_cast<std::size_t>(e)] = child_[s] < 0 ? -1 : id[static_cast<std::size_t>(child_[s])];
      read_mean(v, j, st.mean.row(e));
    }
  }
  if (n_nodes > 0) st.node_start[n_nodes] = e;
  SEGFORGE_ASSERT(n_nodes == 0 || st.node_start[n_leaves] == n_sub_, "the leaf entries are not the subclusters");
  st.root = root_ < 0 ? -1 : id[static_cast<std::size_t>(root_)];
}

CfTree CfTree::from_state(const BirchState& st) {
  CfTree t(st.n_features, st.branching_factor, st.threshold);
  const i64 n_nodes = st.n_nodes();
  i32 prev_leaf = -1;
  for (i64 q = 0; q < n_nodes; ++q) {
    const i64 lo = st.node_start[static_cast<std::size_t>(q)], hi = st.node_start[static_cast<std::size_t>(q + 1)];
    const bool leaf = lo < st.n_subclusters;
    const i32 v = t.new_node(leaf);
    for (i64 e = lo; e < hi; ++e)
      t.append(v, st.weight[static_cast<std::size_t>(e)], st.mean.row(e), st.sq_deviation[static_cast<std::size_t>(e)],
               static_cast<i32>(st.child[static_cast<std::size_t>(e)]));
    if (leaf) {
      if (prev_leaf < 0) t.first_leaf_ = v;
      else t.next_[static_cast<std::size_t>(prev_leaf)] = v;
      prev_leaf = v;
    }
  }
  t.root_ = static_cast<i32>(st.root);
  t.n_sub_ = st.n_subclusters;
  return t;
}

/// Zhang et al. 1996 §5.1: re-insert the leaf CFs, in subcluster order, into a new tree with
/// T' = max(2^(1/4)·T, r_min) (r_min: the smallest radius of a merge of two entries of one leaf),
/// until the subclusters fit the budget.
CfTree rebuild(const CfTree& tree, i64 budget, i64 d, int branching_factor, int* n_rebuilds) {
  const CfTree* current = &tree;
  CfTree next(d, branching_factor, tree.threshold());
  do {
    const double r_min = std::sqrt(current->min_pair_sq_radius());
    const double t = std::max(kThresholdGrowth * current->threshold(), std::isfinite(r_min) ? r_min : 0.0);
    const std::vector<Cf> leaves = current->leaf_cfs();
    CfTree fresh(d, branching_factor, t);
    for (const Cf& cf : leaves) fresh.insert(cf.n, cf.mean.data(), cf.ss);
    next = std::move(fresh);
    current = &next;
    ++*n_rebuilds;
  } while (next.n_subclusters() > budget);
  return next;
}

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

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

BirchGlobal parse_birch_global(const std::string& name) {
  const std::string s = lower(name);
  if (s == "ward") return BirchGlobal::ward;
  if (s == "kmeans" || s == "k-means") return BirchGlobal::kmeans;
  throw InputError("unknown BIRCH global step '" + name + "'; use ward or kmeans");
}

std::string birch_global_name(BirchGlobal global) {
  switch (global) {
    case BirchGlobal::ward: return "ward";
    case BirchGlobal::kmeans: return "kmeans";
  }
  SEGFORGE_ASSERT(false, "unknown BIRCH global step");
  return {};
}

BirchState make_birch_state(const BirchParams& params) {
  BirchState st;
  st.threshold = st.initial_threshold = params.threshold;
  st.branching_factor = params.branching_factor;
  st.max_subclusters = params.max_subclusters;
  return st;
}

Matrix<double> birch_subcluster_centroids(const BirchState& st) {
  Matrix<double> c(st.n_subclusters, st.n_features);
  for (i64 m = 0; m < st.n_subclusters; ++m)
    for (i64 k = 0; k < st.n_features; ++k) c(m, k) = st.origin[static_cast<std::size_t>(k)] + st.mean(m, k);
  return c;
}

void validate(const BirchParams& p, const std::string& where) {
  if (!(std::isfinite(p.threshold) && p.threshold > 0.0))
    throw InputError(where + ": threshold=" + num(p.threshold) +
                     " should be a finite radius > 0 (in feature units, e.g. 0.5 on standardised features)");
  if (p.branching_factor < 2 || p.branching_factor > 65536)
    throw InputError(where + ": branching_factor=" + std::to_string(p.branching_factor) +
                     " should be between 2 and 65536 (e.g. 50)");
  if (p.n_clusters < 0)
    throw InputError(where + ": n_clusters=" + std::to_string(p.n_clusters) +
                     " should be >= 1, or 0 to keep every subcluster as its own segment");
  if (p.max_subclusters < 0)
    throw InputError(where + ": max_subclusters=" + std::to_string(p.max_subclusters) + " should be >= 1, or 0 for no budget");
  if (p.kmeans_n_init < 1)
    throw InputError(where + ": kmeans_n_init=" + std::to_string(p.kmeans_n_init) + " should be >= 1");
  if (p.kmeans_max_iter < 1)
    throw InputError(where + ": kmeans_max_iter=" + std::to_string(p.kmeans_max_iter) + " should be >= 1");
}

void validate(const BirchState& st, const std::string& where) {
  auto fail = [&](const std::string& what) {
    throw InputError(where + ": BIRCH state: " + what + "; the saved tree is damaged: fit the model again");
  };
  BirchParams p;
  p.threshold = st.threshold;
  p.branching_factor = st.branching_factor;
  p.max_subclusters = st.max_subclusters;
  validate(p, where + ": BIRCH state");
  if (!(std::isfinite(st.initial_threshold) && st.initial_threshold > 0.0 && st.initial_threshold <= st.threshold))
    fail("initial_threshold=" + num(st.initial_threshold) + " should be > 0 and <= threshold=" + num(st.threshold));
  if (st.n_rebuilds < 0 || st.n_rows_seen < 0 || st.n_features < 0) fail("negative counters");
  const i64 e_count = st.n_entries(), d = st.n_features, m = st.n_subclusters, nodes = st.n_nodes();
  if (static_cast<i64>(st.origin.size()) != d && !(st.origin.empty() && nodes == 0))
    fail(std::to_string(st.origin.size()) + " origin values for " + std::to_string(d) + " features");
  for (double v : st.origin)
    if (!std::isfinite(v)) fail("origin is not finite");
  if (static_cast<i64>(st.sq_deviation.size()) != e_count || static_cast<i64>(st.child.size()) != e_count ||
      (e_count > 0 && (st.mean.rows() != e_count || st.mean.cols() != d)) || (e_count == 0 && st.mean.rows() != 0))
    fail("the entry arrays (weight, mean, sq_deviation, child) differ in length");
  if (m < 0 || m > e_count) fail("n_subclusters=" + std::to_string(m) + " outside [0, " + std::to_string(e_count) + "]");
  if (nodes == 0) {
    if (e_count != 0 || m != 0 || st.root != -1) fail("entries without nodes");
    return;
  }
  if (d < 1 || m < 1) fail("nodes without features or subclusters");
  if (st.node_start.front() != 0 || st.node_start.back() != e_count) fail("node_start does not span the entries");
  for (i64 q = 0; q < nodes; ++q) {
    const i64 lo = st.node_start[static_cast<std::size_t>(q)], hi = st.node_start[static_cast<std::size_t>(q + 1)];
    if (hi - lo < 1 || hi - lo > st.branching_factor)
      fail("node " + std::to_string(q) + " holds " + std::to_string(hi - lo) + " entries, not 1 to branching_factor=" +
           std::to_string(st.branching_factor));
    if (lo < m && hi > m) fail("node " + std::to_string(q) + " mixes subclusters and internal entries");
  }
  for (i64 e = 0; e < e_count; ++e) {
    const double w = st.weight[static_cast<std::size_t>(e)], s = st.sq_deviation[static_cast<std::size_t>(e)];
    if (!(std::isfinite(w) && w > 0.0)) fail("entry " + std::to_string(e) + " has weight " + num(w) + " (should be > 0)");
    if (!(std::isfinite(s) && s >= 0.0)) fail("entry " + std::to_string(e) + " has sq_deviation " + num(s) + " (should be >= 0)");
    for (i64 k = 0; k < d; ++k)
      if (!std::isfinite(st.mean(e, k))) fail("entry " + std::to_string(e) + " has a non-finite mean");
    const i64 c = st.child[static_cast<std::size_t>(e)];
    if (e < m ? c != -1 : (c < 0 || c >= nodes)) fail("entry " + std::to_string(e) + " has child " + std::to_string(c));
  }
  if (st.root < 0 || st.root >= nodes) fail("root " + std::to_string(st.root) + " is not a node");
  // A tree: every node but the root below exactly one entry, all reachable, leaves at one depth.
  std::vector<int> parents(static_cast<std::size_t>(nodes), 0);
  for (i64 e = m; e < e_count; ++e) ++parents[static_cast<std::size_t>(st.child[static_cast<std::size_t>(e)])];
  for (i64 q = 0; q < nodes; ++q) {
    const int k = parents[static_cast<std::size_t>(q)];
    if (q == st.root && k != 0) fail("the root (node " + std::to_string(q) + ") is below an entry");
    if (q != st.root && k != 1) fail("node " + std::to_string(q) + " is below " + std::to_string(k) + " entries, not 1");
  }
  std::vector<i64> depth(static_cast<std::size_t>(nodes), -1), queue{st.root};
  depth[static_cast<std::size_t>(st.root)] = 0;
  i64 leaf_depth = -1;
  for (std::size_t q = 0; q < queue.size(); ++q) {
    const i64 v = queue[q];
    const i64 lo = st.node_start[static_cast<std::size_t>(v)], hi = st.node_start[static_cast<std::size_t>(v + 1)];
    if (lo < m) {
      if (leaf_depth >= 0 && depth[static_cast<std::size_t>(v)] != leaf_depth) fail("leaves at different depths");
      leaf_depth = depth[static_cast<std::size_t>(v)];
      continue;
    }
    for (i64 e = lo; e < hi; ++e) {
      const i64 c = st.child[static_cast<std::size_t>(e)];
      if (depth[static_cast<std::size_t>(c)] >= 0) fail("a cycle in the tree");
      depth[static_cast<std::size_t>(c)] = depth[static_cast<std::size_t>(v)] + 1;
      queue.push_back(c);
      // An internal entry summarises its child node: its weight is the child's entries' total.
      double total = 0.0;
      for (i64 f = st.node_start[static_cast<std::size_t>(c)]; f < st.node_start[static_cast<std::size_t>(c + 1)]; ++f)
        total += st.weight[static_cast<std::size_t>(f)];
      if (std::abs(total - st.weight[static_cast<std::size_t>(e)]) > 1e-9 * total)
        fail("entry " + std::to_string(e) + " has weight " + num(st.weight[static_cast<std::size_t>(e)]) +
             " but its child node holds " + num(total));
    }
  }
  if (static_cast<i64>(queue.size()) != nodes) fail("nodes unreachable from the root");
}

void partial_fit_birch(Backend& backend, BirchState& state, const Dataset& data, std::span<const float> weights) {
  const std::string where = "birch";
  validate(state, where);
  const i64 n = data.n_samples(), d = data.n_features();
  if (d < 1) throw InputError(where + ": 0 features (columns); nothing to cluster");
  if (state.n_features != 0 && d != state.n_features)
    throw InputError(where + ": the data has " + std::to_string(d) + " features but the BIRCH tree was built on " +
                     std::to_string(state.n_features) + "; give rows with the same features, in the same order");
  if (data.weighted() && weights.empty())
    throw InputError(where + ": the dataset has sample weights but none were passed to partial_fit_birch; pass the same weights");
  if (!weights.empty() && static_cast<i64>(weights.size()) != n)
    throw InputError(where + ": " + std::to_string(weights.size()) + " weights for " + std::to_string(n) +
                     " rows; give one weight per row");
  for (i64 i = 0; i < static_cast<i64>(weights.size()); ++i)
    if (!(std::isfinite(weights[static_cast<std::size_t>(i)]) && weights[static_cast<std::size_t>(i)] >= 0.0f))
      throw InputError(where + ": row " + std::to_string(i) + " has weight " + num(weights[static_cast<std::size_t>(i)]) +
                       "; weights must be finite and >= 0 (repetition counts): fix or drop the row");
  if (n == 0) return;

  // Work on a copy: the caller's state changes only once every row is in.
  BirchState next = state;
  next.n_features = d;
  CfTree tree = next.n_nodes() > 0 ? CfTree::from_state(next) : CfTree(d, next.branching_factor, next.threshold);
  std::vector<double> x(static_cast<std::size_t>(d));
  std::vector<i64> rows;
  for (i64 lo = 0; lo < n; lo += kWindowRows) {
    const i64 hi = std::min(n, lo + kWindowRows);
    rows.resize(static_cast<std::size_t>(hi - lo));
    std::iota(rows.begin(), rows.end(), lo);
    const Matrix<float> window = backend.gather(data, rows);
    for (i64 r = 0; r < hi - lo; ++r) {
      const float* row = window.row(r);
      for (i64 k = 0; k < d; ++k)
        if (!std::isfinite(row[k]))
          throw InputError(where + ": row " + std::to_string(lo + r) + " column " + std::to_string(k) + " is " + num(row[k]) +
                           "; clean the data or drop the row");
      const double w = weights.empty() ? 1.0 : static_cast<double>(weights[static_cast<std::size_t>(lo + r)]);
      if (w == 0.0) continue;  // no copies: the tree without the row
      if (next.origin.empty()) next.origin.assign(row, row + d);
      // Relative to the origin: the difference of two float32 values is exact in double, so a
      // translation that keeps the rows exact leaves these bits unchanged.
      for (i64 k = 0; k < d; ++k) x[static_cast<std::size_t>(k)] = static_cast<double>(row[k]) - next.origin[static_cast<std::size_t>(k)];
      tree.insert(w, x.data(), 0.0);
      if (next.max_subclusters > 0 && tree.n_subclusters() > next.max_subclusters)
        tree = rebuild(tree, next.max_subclusters, d, next.branching_factor, &next.n_rebuilds);
    }
  }
  tree.to_state(next);
  next.n_rows_seen += n;
  state = std::move(next);
}

BirchSegments birch_global_step(Backend& backend, const BirchState& state, const BirchParams& params) {
  const std::string where = "birch";
  validate(params, where);
  const i64 m = state.n_subclusters, d = state.n_features;
  if (m == 0)
    throw InputError(where + ": the tree holds no subclusters (no row of positive weight was given); fit rows first");
  if (params.n_clusters > m)
    throw InputError(where + ": n_clusters=" + std::to_string(params.n_clusters) + " exceeds the " + std::to_string(m) +
                     " subclusters; lower the threshold (or raise max_subclusters) or choose a smaller K");
  SEGFORGE_ASSERT(m <= std::numeric_limits<std::int32_t>::max(), "too many subclusters for int32 labels");
  BirchSegments seg;
  // The global step sees the centroids relative to the origin (translation-exact, as the tree).
  Matrix<double> rel(m, d);
  std::copy(state.mean.data(), state.mean.data() + m * d, rel.data());
  const std::span<const double> sizes(state.weight.data(), static_cast<std::size_t>(m));
  std::vector<std::int32_t> labels(static_cast<std::size_t>(m));
  int k = 0;
  if (params.n_clusters == 0) {
    std::iota(labels.begin(), labels.end(), 0);
    k = static_cast<int>(m);
  } else if (params.global == BirchGlobal::ward) {
    seg.tree = linkage_tree(rel.view(), sizes, Linkage::ward);
    TreeCut cut = cut_by_count(seg.tree, params.n_clusters);
    labels = std::move(cut.labels);
    k = cut.n_clusters;
  } else {
    Matrix<float> c(m, d);
    std::vector<float> w(static_cast<std::size_t>(m));
    for (i64 i = 0; i < m * d; ++i) c.data()[i] = static_cast<float>(rel.data()[i]);
    for (i64 i = 0; i < m; ++i) w[static_cast<std::size_t>(i)] = static_cast<float>(sizes[static_cast<std::size_t>(i)]);
    auto points = backend.upload(c.view(), w);
    LloydParams km;
    km.n_clusters = params.n_clusters;
    km.max_iter = params.kmeans_max_iter;
    km.n_init = params.kmeans_n_init;
    km.seed = params.seed;
    km.init.init = Init::kmeans_pp;
    validate(km, m, d, where + " global K-Means");
    const KMeansResult fit = fit_lloyd(backend, *points, km);
    seg.kmeans_n_iter = fit.n_iter;
    labels = predict(backend, *points, fit.centroids.view()).labels;
    k = params.n_clusters;
  }
  seg.n_clusters = renumber_by_first(labels, k);
  seg.subcluster_labels = std::move(labels);
  // Segment CFs: Chan's merge of their subclusters in subcluster order (each the exact weighted
  // mean of the rows its subclusters absorbed).
  std::vector<Cf> merged(static_cast<std::size_t>(seg.n_clusters));
  for (i64 i = 0; i < m; ++i)
    merge_into(merged[static_cast<std::size_t>(seg.subcluster_labels[static_cast<std::size_t>(i)])],
               sizes[static_cast<std::size_t>(i)], rel.row(i), 0.0, d);
  seg.centroids = Matrix<float>(seg.n_clusters, d);
  seg.sizes.resize(static_cast<std::size_t>(seg.n_clusters));
  for (int c = 0; c < seg.n_clusters; ++c) {
    seg.sizes[static_cast<std::size_t>(c)] = merged[static_cast<std::size_t>(c)].n;
    for (i64 j = 0; j < d; ++j)
      seg.centroids(c, j) = static_cast<float>(state.origin[static_cast<std::size_t>(j)] +
                                               merged[static_cast<std::size_t>(c)].mean[static_cast<std::size_t>(j)]);
  }
  return seg;
}

BirchAssignment predict_birch(Backend& backend, const BirchState& state, const BirchSegments& segments, const Dataset& data) {
  const std::string where = "birch predict";
  const i64 n = data.n_samples(), d = data.n_features(), m = state.n_subclusters;
  if (m == 0) throw InputError(where + ": the BIRCH tree holds no subclusters; fit it first");
  if (d != state.n_features)
    throw InputError(where + ": the data has " + std::to_string(d) + " features but the BIRCH tree was built on " +
                     std::to_string(state.n_features) + "; give rows with the same features, in the same order");
  if (static_cast<i64>(segments.subcluster_labels.size()) != m)
    throw InputError(where + ": " + std::to_string(segments.subcluster_labels.size()) + " segment labels for " +
                     std::to_string(m) + " subclusters; run the global step on this tree");
  // float32 distances lose least near the data: rows and centroids are taken relative to the
  // subclusters' weighted mean (itself relative to the origin, so translation-exact).
  Cf all;
  for (i64 j = 0; j < m; ++j) merge_into(all, state.weight[static_cast<std::size_t>(j)], state.mean.row(j), 0.0, d);
  std::vector<double> centre(static_cast<std::size_t>(d));
  for (i64 k = 0; k < d; ++k) centre[static_cast<std::size_t>(k)] = all.mean[static_cast<std::size_t>(k)];
  Matrix<float> centres(m, d);
  for (i64 j = 0; j < m; ++j)
    for (i64 k = 0; k < d; ++k) centres(j, k) = static_cast<float>(state.mean(j, k) - centre[static_cast<std::size_t>(k)]);
  BirchAssignment out;
  out.labels.resize(static_cast<std::size_t>(n));
  out.subclusters.resize(static_cast<std::size_t>(n));
  out.sq_distances.resize(static_cast<std::size_t>(n));
  std::vector<i64> rows;
  for (i64 lo = 0; lo < n; lo += kWindowRows) {
    const i64 hi = std::min(n, lo + kWindowRows), len = hi - lo;
    rows.resize(static_cast<std::size_t>(len));
    std::iota(rows.begin(), rows.end(), lo);
    Matrix<float> window = backend.gather(data, rows);
    for (i64 r = 0; r < len; ++r) {
      float* row = window.row(r);
      for (i64 k = 0; k < d; ++k)
        row[k] = static_cast<float>((static_cast<double>(row[k]) - state.origin[static_cast<std::size_t>(k)]) -
                                    centre[static_cast<std::size_t>(k)]);
    }
    const auto shifted = backend.upload(window.view());
    backend.assign(*shifted, centres.view(), std::span<std::int32_t>(out.subclusters.data() + lo, static_cast<std::size_t>(len)),
                   std::span<float>(out.sq_distances.data() + lo, static_cast<std::size_t>(len)));
  }
  for (i64 i = 0; i < n; ++i)
    out.labels[static_cast<std::size_t>(i)] = segments.subcluster_labels[static_cast<std::size_t>(out.subclusters[static_cast<std::size_t>(i)])];
  return out;
}

BirchResult fit_birch(Backend& backend, const Dataset& data, const BirchParams& params, std::span<const float> weights) {
  validate(params, "birch");
  if (data.n_samples() < 1) throw InputError("birch: 0 rows; nothing to cluster");
  BirchResult r;
  r.state = make_birch_state(params);
  auto t0 = std::chrono::steady_clock::now();
  partial_fit_birch(backend, r.state, data, weights);
  r.insert_seconds = seconds_since(t0);
  if (r.state.n_subclusters == 0)
    throw InputError("birch: every row has weight 0; at least one row needs a positive weight");
  t0 = std::chrono::steady_clock::now();
  r.segments = birch_global_step(backend, r.state, params);
  r.global_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  r.assignment = predict_birch(backend, r.state, r.segments, data);
  r.predict_seconds = seconds_since(t0);
  return r;
}

}  // namespace segforge
