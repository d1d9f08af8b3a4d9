"""KMeans, MiniBatchKMeans, DBSCAN and AgglomerativeClustering with scikit-learn's names, defaults
and behaviour, over the engine.

Validation uses scikit-learn's own helpers (so messages and edge cases match); the fit, the
prediction and the distances are the engine's drivers (src/lloyd.cpp, src/minibatch.cpp,
src/cluster/) on the Backend that `device` chooses."""

import heapq
import logging
import numbers
import warnings

import numpy as np
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin,
                          TransformerMixin)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import _segforge
from ._common import as_engine_array, engine, needs_copy, progress_logger, seed_from

logger = logging.getLogger("segforge")

_INITS = ("k-means++", "scalable-k-means++", "random")
# scikit-learn's _xfail_checks key is the check's name, which covers both of its kinds; only
# kind=zeros fails (tests/python marks exactly that one).
_XFAIL = {
    "check_sample_weights_invariance":
        "zero sample_weight is not equivalent to removing samples: the random draws of the "
        "initialisation are over row indices (as scikit-learn's own KMeans, which marks it too)",
}


def _check_weights(sample_weight, X):
    """sample_weight as float32 [n_samples]: finite, >= 0, not all zero (the engine's and the
    CLI's --sample-weight rules)."""
    if sample_weight is None:
        return None
    w = _check_sample_weight(sample_weight, X, dtype=np.float64)  # shape, NaN, infinity
    if np.any(w < 0):
        raise ValueError("sample_weight row %d is %g; weights must be >= 0"
                         % (int(np.flatnonzero(w < 0)[0]), w[w < 0][0]))
    if not np.any(w > 0):
        raise ValueError("sample_weight is all zero; at least one row needs a positive weight")
    return np.ascontiguousarray(w, dtype=np.float32)


class _EngineMixin:
    """Every estimator's input conversion (copy=False refuses a copy) and its engine."""

    def _check_X(self, X, reset, **check_params):
        if not self.copy and needs_copy(X):
            as_engine_array(X, copy=False)  # raises, naming what the array is
        return self._validate_data(X, accept_sparse=False, dtype=np.float32, order="C",
                                   copy=False, reset=reset, **check_params)

    def _engine(self):
        if self.device not in ("auto", "cpu", "gpu"):
            raise ValueError("device=%r: use 'auto', 'cpu' or 'gpu'" % (self.device,))
        if self.n_threads is not None and (not isinstance(self.n_threads, numbers.Integral)
                                           or self.n_threads < 1):
            raise ValueError("n_threads=%r: use an int >= 1 or None" % (self.n_threads,))
        return engine(self.device, self.n_threads)


class _BaseKMeans(_EngineMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """What KMeans and MiniBatchKMeans share: input checks, predict, transform, score, save."""

    _algorithm_name = "lloyd"

    def _check_common(self, X):
        n_samples = X.shape[0]
        if not isinstance(self.n_clusters, numbers.Integral) or isinstance(self.n_clusters, bool) \
                or self.n_clusters < 1:
            raise ValueError("n_clusters=%r: use an int >= 1" % (self.n_clusters,))
        if n_samples < self.n_clusters:
            raise ValueError("n_samples=%d should be >= n_clusters=%d." % (n_samples, self.n_clusters))
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ValueError("max_iter=%r: use an int >= 1" % (self.max_iter,))
        if not isinstance(self.tol, numbers.Real) or self.tol < 0:
            raise ValueError("tol=%r: use a float >= 0" % (self.tol,))
        if isinstance(self.init, str):
            if self.init not in _INITS:
                raise ValueError("init=%r: use 'k-means++', 'scalable-k-means++', 'random' or an "
                                 "array of shape (n_clusters, n_features)" % (self.init,))
            return self.init, None
        if callable(self.init):
            raise ValueError("init: a callable is not supported; pass an array of shape "
                             "(n_clusters, n_features) or a method name")
        centers = np.ascontiguousarray(self.init, dtype=np.float32)
        if centers.shape != (self.n_clusters, X.shape[1]):
            raise ValueError("The shape of the initial centers %s does not match the number of "
                             "clusters %d and features %d." % (centers.shape, self.n_clusters, X.shape[1]))
        return "array", centers

    def _n_init(self, init, auto_random):
        if init == "array":
            return 1
        if self.n_init == "auto":
            return auto_random if init == "random" else 1
        if not isinstance(self.n_init, numbers.Integral) or self.n_init < 1:
            raise ValueError("n_init=%r: use an int >= 1 or 'auto'" % (self.n_init,))
        return int(self.n_init)

    def _progress(self):
        return progress_logger(type(self).__name__)

    def _set_result(self, res, n_clusters):
        self.cluster_centers_ = res["cluster_centers"]
        self.labels_ = res["labels"]
        self.inertia_ = float(res["inertia"])
        self.n_iter_ = int(res["n_iter"])
        self.converged_ = bool(res["converged"])
        self.backend_ = res["backend"]
        self.device_ = res["device"]
        self._counts = res["counts"]
        self._n_threads = 0

    def _centers(self):
        # Small (K x D); a copy only when unpickling or a user made them another dtype or order.
        return np.ascontiguousarray(self.cluster_centers_, dtype=np.float32)

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[0]

    def fit_predict(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).labels_

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def predict(self, X):
        """Index of the nearest centre of each row, int32 [n_samples]."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        labels, _, _ = _segforge.predict(self._engine(), X, None, self._centers())
        return labels

    def transform(self, X):
        """Euclidean distances to every centre [n_samples x n_clusters]: float32 for float32
        input, float64 otherwise (computed in float32 by the engine)."""
        check_is_fitted(self)
        dtype = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
        Xc = self._check_X(X, reset=False)
        d = _segforge.transform(self._engine(), Xc, self._centers())
        return d if dtype == np.float32 else d.astype(np.float64)

    def score(self, X, y=None, sample_weight=None):
        """Minus the (weighted) inertia of X against the centres, as scikit-learn."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        w = _check_weights(sample_weight, X)
        _, _, inertia = _segforge.predict(self._engine(), X, w, self._centers())
        return -float(inertia)

    def save(self, path):
        """Writes the CLI's model.h5 (src/io/model.cpp): `segforge predict --model path` labels
        rows as this estimator's predict does."""
        check_is_fitted(self)
        k, d = self.cluster_centers_.shape
        names = ([str(n) for n in self.feature_names_in_] if hasattr(self, "feature_names_in_")
                 else ["f%d" % j for j in range(d)])
        sizes = (np.bincount(self.labels_, minlength=k).astype(np.int64).tolist()
                 if hasattr(self, "labels_") else [])
        counts = (np.asarray(self._counts, dtype=np.float64).tolist()
                  if self._algorithm_name == "minibatch" and hasattr(self, "_counts") else [])
        attrs = {"algorithm": self._algorithm_name, "k": str(k),
                 "init": self.init if isinstance(self.init, str) else "array",
                 "n_iter": str(getattr(self, "n_iter_", 0)),
                 "converged": "true" if getattr(self, "converged_", False) else "false",
                 "inertia": repr(float(getattr(self, "inertia_", 0.0))),
                 "backend": getattr(self, "backend_", ""), "device": getattr(self, "device_", ""),
                 "segforge_version": _segforge.__version__, "created_by": "segforge (Python)"}
        if isinstance(self.random_state, numbers.Integral):
            attrs["seed"] = str(int(self.random_state))
        segment_names = list(getattr(self, "segment_names_", []))
        _segforge.save_model(str(path), np.ascontiguousarray(self.cluster_centers_, dtype=np.float32),
                             names, segment_names, sizes, counts, attrs)
        return self

    def _more_tags(self):
        return {"preserves_dtype": [np.float64, np.float32], "_xfail_checks": dict(_XFAIL)}


class KMeans(_BaseKMeans):
    """K-Means (Lloyd) as scikit-learn's sklearn.cluster.KMeans, on segforge's engine.

    Differences: n_init='auto' is 1 for 'k-means++' (scikit-learn >= 1.4's default); the
    centres are float32 (the engine's precision); an int random_state is the engine's seed
    (the CLI's --seed), so the same seed gives the same centres in Python and the CLI.
    Extras: init='scalable-k-means++' (k-means||), device, refine ('none', 'random_swap',
    'auto'), n_threads, copy (False: raise instead of copying X)."""

    _algorithm_name = "lloyd"

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300, tol=1e-4,
                 verbose=0, random_state=None, algorithm="lloyd", device="auto", refine="none",
                 n_threads=None, copy=True):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.algorithm = algorithm
        self.device = device
        self.refine = refine
        self.n_threads = n_threads
        self.copy = copy

    def fit(self, X, y=None, sample_weight=None):
        X = self._check_X(X, reset=True)
        w = _check_weights(sample_weight, X)
        if self.algorithm != "lloyd":
            raise ValueError("algorithm=%r: segforge runs 'lloyd' (its fused pass reads the data "
                             "once per iteration); use algorithm='lloyd'" % (self.algorithm,))
        init, centers = self._check_common(X)
        n_init = self._n_init(init, 10)
        res = _segforge.fit_kmeans(self._engine(), X, w, int(self.n_clusters), init, centers,
                                   n_init, int(self.max_iter), float(self.tol),
                                   seed_from(self.random_state), str(self.refine), self._progress())
        self._set_result(res, self.n_clusters)
        # Seconds the engine spent (its driver's own clocks), for comparing with the CLI's
        # metrics.json timings (bench/py_bench.py).
        self.timings_ = {"init": float(res["init_seconds"]), "iterations": float(res["iter_seconds"]),
                         "labels": float(res["labels_seconds"]), "native_call": float(res["call_seconds"])}
        return self


class MiniBatchKMeans(_BaseKMeans):
    """Mini-batch K-Means (Sculley 2010) as scikit-learn's sklearn.cluster.MiniBatchKMeans.

    Differences: n_init='auto' is 1 for 'k-means++' (scikit-learn >= 1.4); partial_fit does
    one step over all of X (as scikit-learn) without the low-count reassignment; centres are
    float32. Extras as KMeans (device, n_threads, copy)."""

    _algorithm_name = "minibatch"

    def __init__(self, n_clusters=8, *, init="k-means++", max_iter=100, batch_size=1024, verbose=0,
                 compute_labels=True, random_state=None, tol=0.0, max_no_improvement=10,
                 init_size=None, n_init="auto", reassignment_ratio=0.01, device="auto",
                 n_threads=None, copy=True):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.device = device
        self.n_threads = n_threads
        self.copy = copy

    def _check_minibatch(self, X):
        if not isinstance(self.batch_size, numbers.Integral) or self.batch_size < 1:
            raise ValueError("batch_size=%r: use an int >= 1" % (self.batch_size,))
        if self.max_no_improvement is not None and self.max_no_improvement < 0:
            raise ValueError("max_no_improvement=%r: use an int >= 0 or None" % (self.max_no_improvement,))
        if self.reassignment_ratio < 0:
            raise ValueError("reassignment_ratio=%r: use a float >= 0" % (self.reassignment_ratio,))
        batch_size = min(int(self.batch_size), X.shape[0])
        init_size = 0 if self.init_size is None else min(int(self.init_size), X.shape[0])
        return batch_size, init_size

    def fit(self, X, y=None, sample_weight=None):
        X = self._check_X(X, reset=True)
        w = _check_weights(sample_weight, X)
        init, centers = self._check_common(X)
        batch_size, init_size = self._check_minibatch(X)
        n_init = self._n_init(init, 3)
        res = _segforge.fit_minibatch(
            self._engine(), X, w, int(self.n_clusters), init, centers, n_init, int(self.max_iter),
            float(self.tol), batch_size, int(self.max_no_improvement or 0),
            float(self.reassignment_ratio), init_size, seed_from(self.random_state), self._progress())
        self._set_result(res, self.n_clusters)
        self.n_steps_ = self.n_iter_
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """One mini-batch step over all rows of X (the first call seeds the centres from X)."""
        first = not hasattr(self, "cluster_centers_")
        X = self._check_X(X, reset=first)
        w = _check_weights(sample_weight, X)
        eng = self._engine()
        if first:
            init, centers = self._check_common(X)
            self._check_minibatch(X)
            if centers is None:
                centers = _segforge.init_centers(eng, X, int(self.n_clusters), init,
                                                 seed_from(self.random_state))
            self.cluster_centers_ = centers
            self._counts = np.zeros(self.n_clusters, dtype=np.float64)
            self.n_steps_ = 0
            self.n_iter_ = 0
            self.converged_ = False
            self.backend_, self.device_ = eng.backend, eng.device
        centers, counts, _ = _segforge.minibatch_partial_step(eng, X, w, self._centers(),
                                                              np.asarray(self._counts, dtype=np.float64))
        self.cluster_centers_, self._counts = centers, counts
        self.n_steps_ += 1
        if self.compute_labels:
            self.labels_, _, inertia = _segforge.predict(eng, X, w, self._centers())
            self.inertia_ = float(inertia)
        return self


class DBSCAN(_EngineMixin, ClusterMixin, BaseEstimator):
    """Exact DBSCAN with scikit-learn's parameters and results, over segforge's engine.

    The same core rows (``core_sample_indices_``), the same clusters of core rows numbered the
    same way, and the same noise (-1) as ``sklearn.cluster.DBSCAN`` on the same float32 values;
    a border row joins the cluster of its *nearest* core row within eps (scikit-learn: the
    cluster that reached it first, which depends on the row order). Memory is O(N) beyond the
    data (no neighbourhoods are stored). Only ``metric='euclidean'``; ``algorithm``,
    ``leaf_size``, ``p`` and ``n_jobs`` are accepted for compatibility and ignored (``n_threads``
    sets the threads). Beyond scikit-learn, ``predict(X)`` gives new rows the cluster of their
    nearest core row within eps, else -1; on the training rows it returns ``labels_``."""

    def __init__(self, eps=0.5, *, min_samples=5, metric="euclidean", metric_params=None,
                 algorithm="auto", leaf_size=30, p=None, n_jobs=None, device="auto", n_threads=None,
                 copy=True):
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.p = p
        self.n_jobs = n_jobs
        self.device = device
        self.n_threads = n_threads
        self.copy = copy

    def fit(self, X, y=None, sample_weight=None):
        if not isinstance(self.eps, numbers.Real) or isinstance(self.eps, bool) or not self.eps > 0:
            raise ValueError("eps=%r: use a float > 0" % (self.eps,))
        if not isinstance(self.min_samples, numbers.Integral) or isinstance(self.min_samples, bool) \
                or self.min_samples < 1:
            raise ValueError("min_samples=%r: use an int >= 1" % (self.min_samples,))
        if self.metric != "euclidean":
            raise ValueError("metric=%r: segforge's DBSCAN is Euclidean only" % (self.metric,))
        X = self._check_X(X, reset=True)
        w = None
        if sample_weight is not None:
            w = np.ascontiguousarray(_check_sample_weight(sample_weight, X, dtype=np.float64), dtype=np.float32)
            if np.any(w < 0):
                raise ValueError("sample_weight row %d is negative; weights must be >= 0"
                                 % int(np.flatnonzero(w < 0)[0]))
        res = _segforge.fit_dbscan(self._engine(), X, w, float(self.eps), float(self.min_samples))
        self.labels_ = np.asarray(res["labels"], dtype=np.int64)
        core = np.asarray(res["core"], dtype=bool)
        self.core_sample_indices_ = np.flatnonzero(core)
        self.components_ = np.array(X[core], dtype=np.float32)
        self._core_labels = np.ascontiguousarray(res["labels"][core], dtype=np.int32)
        self.n_clusters_ = int(res["n_clusters"])
        self.backend_ = res["backend"]
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X):
        check_is_fitted(self, "components_")
        X = self._check_X(X, reset=False)
        if len(self.components_) == 0:
            return np.full(X.shape[0], -1, dtype=np.int64)
        labels, _ = _segforge.predict_dbscan(self._engine(), X, self.components_, self._core_labels,
                                             float(self.eps))
        return np.asarray(labels, dtype=np.int64)

    def _more_tags(self):
        return {"preserves_dtype": [np.float32]}


_LINKAGES = ("ward", "complete", "average", "single")
_STRATEGIES = ("auto", "exact", "two-stage")
# strategy='auto': the exact tree up to this many rows, two-stage Ward above (the engine's
# AgglomerativeParams::exact_max_samples, and the CLI's --exact-max-rows default).
_EXACT_MAX_SAMPLES = 20000


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _hc_cut(n_clusters, children, n_leaves):
    """scikit-learn's cut of a merge tree into n_clusters (sklearn.cluster._agglomerative._hc_cut):
    split the root, then always the highest node left (the last merges undone), and number the
    clusters in the order its heap of nodes holds them, so labels are numbered as scikit-learn's.
    Prior validation (1 <= n_clusters <= n_leaves) is assumed. [in] children [n_leaves - 1 x 2]"""
    if n_leaves == 1:
        return np.zeros(1, dtype=np.int64)
    ch = children.tolist()
    nodes = [-(max(ch[-1]) + 1)]
    for _ in range(n_clusters - 1):
        a, b = ch[-nodes[0] - n_leaves]
        heapq.heappush(nodes, -a)
        heapq.heappushpop(nodes, -b)
    label = [-1] * (2 * n_leaves - 1)
    for i, node in enumerate(nodes):
        label[-node] = i
    for j in range(n_leaves - 2, -1, -1):  # top down: a node below the cut takes its parent's label
        lab = label[n_leaves + j]
        if lab >= 0:
            a, b = ch[j]
            label[a] = label[b] = lab
    return np.asarray(label[:n_leaves], dtype=np.int64)


def _cluster_means(X, labels, k):
    """The mean row of each cluster, float32 [k x n_features] (every cluster has a row)."""
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.empty((k, X.shape[1]), dtype=np.float64)
    for j in range(X.shape[1]):
        sums[:, j] = np.bincount(labels, weights=X[:, j], minlength=k)
    return np.ascontiguousarray(sums / counts[:, None], dtype=np.float32)


class AgglomerativeClustering(_EngineMixin, ClusterMixin, BaseEstimator):
    """Agglomerative clustering with scikit-learn 1.2's parameters and results, over segforge's engine.

    The tree is segforge's (src/cluster/agglomerative.cpp), which is SciPy's
    ``linkage(X, method)`` on the same values, as scikit-learn's is (without connectivity). So on
    data without exact ties, for ``linkage`` 'ward', 'complete' and 'average', ``children_`` is
    scikit-learn's, ``distances_`` are its heights (ascending; Ward's within ~1e-13 relative,
    the others' equal) and ``labels_`` is its cut, numbered the same way (the cut is
    scikit-learn's ``_hc_cut``: the last n_clusters - 1 merges undone). For 'single',
    scikit-learn lists a merge's two children in the order its minimum spanning tree met them,
    segforge the lower id first (SciPy's order): the same merges, heights and partition, but the
    clusters may be numbered differently. As scikit-learn, ``distance_threshold`` undoes the
    merges of height >= the threshold (``segforge fit --distance-threshold`` keeps those of
    height <= it, so the two differ only at a threshold equal to a height).

    Differences: X is converted to float32 (the engine's precision) and widened to double for
    the tree, so float64 data is clustered at float32 precision; with ``strategy='auto'`` above
    20,000 rows Ward goes two-stage (below) and the other linkages raise ValueError (their exact
    tree takes O(N²) time, and complete and average an O(N²) distance matrix: use
    ``strategy='exact'`` up to 23,170 rows); only the Euclidean metric (``metric`` None,
    'euclidean', or 'l2' for linkages other than Ward) and ``connectivity=None``;
    ``memory`` is accepted and ignored, the full tree is always built (``compute_full_tree``
    only checked). Where distances tie exactly, tied merges may be ordered differently from
    scikit-learn's (see include/segforge/agglomerative.hpp).

    Extras: ``device``, ``n_threads`` and ``copy`` as KMeans; ``strategy`` 'auto' | 'exact' |
    'two-stage': two-stage Ward clusters the rows into ``n_micro_clusters`` K-Means
    micro-clusters (seeded by ``random_state``), then runs size-weighted Ward over them; its tree
    (``children_``, ``distances_``, ``n_leaves_``, ``linkage_matrix_``) is over those leaves and
    each row takes its micro-cluster's label. ``linkage_matrix_`` is the tree in SciPy's format
    ([n_leaves - 1 x 4]: child, child, height, size), for ``scipy.cluster.hierarchy.dendrogram``
    and ``fcluster``; ``leaves_`` holds the tree's leaves (the training rows, or the
    micro-clusters' centres), ``leaf_labels_`` their clusters, ``leaf_sizes_`` their sizes
    (rows per micro-cluster), ``strategy_`` the path taken.
    ``predict(X)`` gives each row the cluster of its nearest leaf (ties: the lower leaf), which is
    ``labels_`` on the training rows (but for duplicate rows that the cut separates).

    ``load_model`` returns this estimator for a model of ``segforge fit --algorithm
    agglomerative``; its ``predict`` gives the CLI's segments, which the CLI numbers by their
    lowest row (``leaf_labels_``; for an exact model those are the training rows' segments)."""

    def __init__(self, n_clusters=2, *, affinity="deprecated", metric=None, memory=None, connectivity=None,
                 compute_full_tree="auto", linkage="ward", distance_threshold=None, compute_distances=False,
                 device="auto", n_threads=None, strategy="auto", n_micro_clusters=2000, random_state=0,
                 copy=True):
        self.n_clusters = n_clusters
        self.affinity = affinity
        self.metric = metric
        self.memory = memory
        self.connectivity = connectivity
        self.compute_full_tree = compute_full_tree
        self.linkage = linkage
        self.distance_threshold = distance_threshold
        self.compute_distances = compute_distances
        self.device = device
        self.n_threads = n_threads
        self.strategy = strategy
        self.n_micro_clusters = n_micro_clusters
        self.random_state = random_state
        self.copy = copy

    def _check_params(self):
        """scikit-learn's checks (its _parameter_constraints and _fit), then what segforge
        supports; messages as scikit-learn's where it has one."""
        if self.n_clusters is not None and (not _is_int(self.n_clusters) or self.n_clusters < 1):
            raise ValueError("n_clusters=%r: use an int >= 1 or None" % (self.n_clusters,))
        t = self.distance_threshold
        if t is not None and (not isinstance(t, numbers.Real) or isinstance(t, (bool, np.bool_))
                              or not 0 <= t < np.inf):
            raise ValueError("distance_threshold=%r: use a finite float >= 0 or None" % (t,))
        if (self.n_clusters is None) == (t is None):
            raise ValueError("Exactly one of n_clusters and distance_threshold has to be set, and the "
                             "other needs to be None.")
        if not (isinstance(self.compute_full_tree, (bool, np.bool_))
                or (isinstance(self.compute_full_tree, str) and self.compute_full_tree == "auto")):
            raise ValueError("compute_full_tree=%r: use 'auto', True or False" % (self.compute_full_tree,))
        if t is not None and self.compute_full_tree is False:
            raise ValueError("compute_full_tree must be True if distance_threshold is set.")
        if not isinstance(self.compute_distances, (bool, np.bool_)):
            raise ValueError("compute_distances=%r: use True or False" % (self.compute_distances,))
        if not isinstance(self.linkage, str) or self.linkage not in _LINKAGES:
            raise ValueError("linkage=%r: use 'ward', 'complete', 'average' or 'single'" % (self.linkage,))
        metric = self.metric
        if not (isinstance(self.affinity, str) and self.affinity == "deprecated"):
            if self.metric is not None:
                raise ValueError("Both `affinity` and `metric` attributes were set. Attribute `affinity` was "
                                 "deprecated in version 1.2 and will be removed in 1.4. To avoid this error, "
                                 "only set the `metric` attribute.")
            warnings.warn("Attribute `affinity` was deprecated in version 1.2 and will be removed in 1.4. "
                          "Use `metric` instead", FutureWarning)
            metric = self.affinity
        elif metric is None:
            metric = "euclidean"
        if self.linkage == "ward" and not (isinstance(metric, str) and metric == "euclidean"):
            raise ValueError("%s was provided as metric. Ward can only work with euclidean distances." % (metric,))
        if not (isinstance(metric, str) and metric in ("euclidean", "l2")):
            raise ValueError("metric=%r: segforge's AgglomerativeClustering is Euclidean only; use "
                             "metric='euclidean' (or None)" % (metric,))
        if self.connectivity is not None:
            raise ValueError("connectivity: segforge builds the unstructured tree only (every pair of "
                             "clusters may merge); use connectivity=None, or scikit-learn's "
                             "AgglomerativeClustering for a connectivity graph")
        if not (self.memory is None or isinstance(self.memory, str) or hasattr(self.memory, "cache")):
            raise ValueError("'memory' should be None, a string or have the same interface as joblib.Memory. "
                             "Got memory='%s' instead." % (self.memory,))
        if not isinstance(self.strategy, str) or self.strategy not in _STRATEGIES:
            raise ValueError("strategy=%r: use 'auto', 'exact' or 'two-stage'" % (self.strategy,))
        if not _is_int(self.n_micro_clusters) or self.n_micro_clusters < 1:
            raise ValueError("n_micro_clusters=%r: use an int >= 1 (e.g. 2000)" % (self.n_micro_clusters,))

    def fit(self, X, y=None):
        """Builds the tree of X [n_samples x n_features] and cuts it; returns self."""
        self._check_params()
        X = self._check_X(X, reset=True, ensure_min_samples=2)
        n = X.shape[0]
        if self.n_clusters is not None and self.n_clusters > n:
            raise ValueError("n_samples=%d should be >= n_clusters=%d." % (n, self.n_clusters))
        if self.strategy == "auto" and self.linkage != "ward" and n > _EXACT_MAX_SAMPLES:
            raise ValueError("linkage=%r on %d rows: above %d rows strategy='auto' runs Ward only (two-stage); "
                             "pass strategy='exact' (its tree takes O(N²) time%s) or use linkage='ward'"
                             % (self.linkage, n, _EXACT_MAX_SAMPLES,
                                "" if self.linkage == "single" else
                                ", and a distance matrix of 4·N² bytes, 23,170 rows at most"))
        eng = self._engine()
        # The engine builds the tree; the cut is scikit-learn's (_hc_cut's numbering, and
        # distance_threshold's merges of height >= it undone), so the engine's own is not used.
        res = _segforge.fit_agglomerative(eng, X, None, self.linkage, int(self.n_clusters or 1), None,
                                          self.strategy, int(self.n_micro_clusters), seed_from(self.random_state))
        Z = np.asarray(res["merges"], dtype=np.float64)
        n_leaves = int(res["n_leaves"])
        children = Z[:, :2].astype(np.int64)
        distances = Z[:, 2].copy()
        if self.distance_threshold is not None:
            n_clusters = int(np.count_nonzero(distances >= self.distance_threshold)) + 1
        else:
            n_clusters = int(self.n_clusters)
        leaf_labels = _hc_cut(n_clusters, children, n_leaves)
        two_stage = bool(res["two_stage"])
        if two_stage:
            self.leaves_ = np.asarray(res["micro_centres"], dtype=np.float32)
            self.labels_ = leaf_labels[np.asarray(res["micro_labels"], dtype=np.intp)]
        else:
            self.leaves_ = np.array(X, dtype=np.float32)  # X may be the caller's array, lent in place
            self.labels_ = leaf_labels
        self.leaf_labels_ = leaf_labels
        self.leaf_sizes_ = (np.asarray(res["micro_sizes"], dtype=np.float64) if two_stage
                            else np.ones(n_leaves, dtype=np.float64))
        self.n_clusters_ = n_clusters
        self.n_leaves_ = n_leaves
        self.n_connected_components_ = 1
        self.children_ = children
        if self.distance_threshold is not None or self.compute_distances:
            self.distances_ = distances
        self.linkage_matrix_ = Z
        self.strategy_ = "two-stage" if two_stage else "exact"
        self.backend_ = res["backend"]
        self.device_ = res["device"]
        self._centroids = _cluster_means(X, self.labels_, n_clusters)
        return self

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_

    def predict(self, X):
        """The cluster of each row's nearest leaf, int64 [n_samples] (labels_ on the training rows)."""
        check_is_fitted(self, "leaves_")
        X = self._check_X(X, reset=False)
        labels, _ = _segforge.predict_by_leaves(
            self._engine(), X, np.ascontiguousarray(self.leaves_, dtype=np.float32),
            np.ascontiguousarray(self.leaf_labels_, dtype=np.int32),
            np.ascontiguousarray(self._centroids, dtype=np.float32))
        return np.asarray(labels, dtype=np.int64)

    def _more_tags(self):
        return {"preserves_dtype": [np.float32]}


def _load_dbscan(m):
    attrs = m["attributes"]
    est = DBSCAN(eps=float(attrs["eps"]), min_samples=int(float(attrs.get("min_samples", "5"))))
    est.components_ = np.asarray(m["dbscan_core_rows"], dtype=np.float32)
    est._core_labels = np.ascontiguousarray(m["dbscan_core_labels"], dtype=np.int32)
    est.n_features_in_ = est.components_.shape[1]
    names = list(m["feature_names"])
    d = est.n_features_in_
    if names and names != ["f%d" % j for j in range(d)]:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    est.n_clusters_ = int(attrs.get("k", "0"))
    est.segment_names_ = list(m["segment_names"])
    est.model_attributes_ = dict(attrs)
    return est


def _load_agglomerative(m):
    """An AgglomerativeClustering from a `segforge fit --algorithm agglomerative` model: its tree's
    leaves, their segments (the CLI's numbering: by lowest row) and merges."""
    attrs = m["attributes"]
    k = int(attrs.get("k", "0"))
    threshold = attrs.get("distance_threshold")
    strategy = attrs.get("strategy", "exact")
    est = AgglomerativeClustering(n_clusters=None if threshold is not None else k,
                                  linkage=attrs.get("linkage", "ward"),
                                  distance_threshold=float(threshold) if threshold is not None else None,
                                  strategy=strategy if strategy in _STRATEGIES else "auto")
    if attrs.get("seed", "").isdigit():
        est.random_state = int(attrs["seed"])
    est.leaves_ = np.asarray(m["hierarchy_leaves"], dtype=np.float32)
    est.leaf_labels_ = np.asarray(m["hierarchy_leaf_labels"], dtype=np.int64)
    est.leaf_sizes_ = np.asarray(m["hierarchy_leaf_sizes"], dtype=np.float64)
    est.n_features_in_ = est.leaves_.shape[1]
    names = list(m["feature_names"])
    if names and names != ["f%d" % j for j in range(est.n_features_in_)]:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    est.n_clusters_ = k
    est.n_leaves_ = est.leaves_.shape[0]
    est.n_connected_components_ = 1
    Z = np.asarray(m["hierarchy_merges"], dtype=np.float64).reshape(-1, 4)
    if len(Z) == est.n_leaves_ - 1:  # absent when the segments did not come from one tree
        est.linkage_matrix_ = Z
        est.children_ = Z[:, :2].astype(np.int64)
        est.distances_ = Z[:, 2].copy()
        est.compute_distances = True
    est.strategy_ = "two-stage" if strategy == "two-stage" else "exact"
    est.backend_ = attrs.get("backend", "")
    est.device_ = attrs.get("device", "")
    est._centroids = np.ascontiguousarray(m["centroids"], dtype=np.float32)
    est.segment_names_ = list(m["segment_names"])
    est.segment_sizes_ = np.asarray(m["segment_sizes"], dtype=np.int64)
    est.model_attributes_ = dict(attrs)
    return est


def load_model(path):
    """A fitted KMeans, MiniBatchKMeans, DBSCAN or AgglomerativeClustering from a model.h5 written
    by `segforge fit` (or by estimator.save). The model's segment names are kept in
    `segment_names_`."""
    m = _segforge.load_model(str(path))
    attrs = m["attributes"]
    if attrs.get("algorithm") == "dbscan":
        return _load_dbscan(m)
    if attrs.get("algorithm") == "agglomerative":
        return _load_agglomerative(m)
    if attrs.get("algorithm") not in (None, "", "lloyd", "minibatch"):
        # A BIRCH model labels rows by its subclusters, which no estimator here reproduces yet:
        # refused rather than loaded as a K-Means that would label by the segment centres.
        raise ValueError("%s: a %s model; load_model reads KMeans, MiniBatchKMeans, DBSCAN and "
                         "AgglomerativeClustering models. Use `segforge predict` for it"
                         % (path, attrs.get("algorithm")))
    centers = m["centroids"]
    k, d = centers.shape
    cls = MiniBatchKMeans if attrs.get("algorithm") == "minibatch" else KMeans
    est = cls(n_clusters=k)
    if attrs.get("seed", "").isdigit():
        est.random_state = int(attrs["seed"])
    if attrs.get("init") in _INITS:
        est.init = attrs["init"]
    est.cluster_centers_ = centers
    est.n_features_in_ = d
    names = list(m["feature_names"])
    if names and names != ["f%d" % j for j in range(d)]:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    est.inertia_ = float(attrs.get("inertia", "nan"))
    est.n_iter_ = int(attrs.get("n_iter", "0") or 0)
    est.converged_ = attrs.get("converged") == "true"
    est.backend_ = attrs.get("backend", "")
    est.device_ = attrs.get("device", "")
    est.segment_names_ = list(m["segment_names"])
    est.segment_sizes_ = np.asarray(m["segment_sizes"], dtype=np.int64)
    est._counts = m["counts"] if len(m["counts"]) == k else np.zeros(k)
    est.model_attributes_ = dict(attrs)
    return est
