"""KMeans and MiniBatchKMeans with scikit-learn's names, defaults and behaviour, over the engine.

Validation uses scikit-learn's own helpers (so messages and edge cases match); the fit, the
prediction and the distances are the engine's drivers (src/lloyd.cpp, src/minibatch.cpp) on the
Backend that `device` chooses."""

import logging
import numbers

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

    def _check_X(self, X, reset):
        if not self.copy and needs_copy(X):
            as_engine_array(X, copy=False)  # raises, naming what the array is
        return self._validate_data(X, accept_sparse=False, dtype=np.float32, order="C",
                                   copy=False, reset=reset)

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


def load_model(path):
    """A fitted KMeans, MiniBatchKMeans or DBSCAN from a model.h5 written by `segforge fit` (or by
    estimator.save). The model's segment names are kept in `segment_names_`."""
    m = _segforge.load_model(str(path))
    attrs = m["attributes"]
    if attrs.get("algorithm") == "dbscan":
        return _load_dbscan(m)
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
