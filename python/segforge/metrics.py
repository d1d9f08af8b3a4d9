"""Cluster scores with scikit-learn's signatures, computed by the engine (src/metrics.cpp)."""

import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_X_y

from . import _segforge
from ._common import as_engine_array, engine, progress_logger, seed_from


def _prepare(X, labels, copy, device, n_threads):
    if not copy:
        as_engine_array(X, copy=False)
    X, labels = check_X_y(X, labels, accept_sparse=False, dtype=np.float32, order="C")
    X = as_engine_array(X)
    encoded = LabelEncoder().fit_transform(labels).astype(np.int32)
    n_labels = int(encoded.max()) + 1 if len(encoded) else 0
    if not 1 < n_labels < X.shape[0]:
        raise ValueError("Number of labels is %d. Valid values are 2 to n_samples - 1 (inclusive)"
                         % n_labels)
    return engine(device, n_threads), X, encoded, n_labels


def _check_metric(metric):
    if metric != "euclidean":
        raise ValueError("metric=%r: segforge computes euclidean silhouettes only" % (metric,))


def silhouette_score(X, labels, *, metric="euclidean", sample_size=None, random_state=None,
                     return_standard_error=False, n_bootstrap=200, device="auto", n_threads=None,
                     copy=True):
    """Mean silhouette coefficient, as sklearn.metrics.silhouette_score.

    With sample_size, a stratified sample of that many rows is scored among itself (every
    cluster keeps at least min(2, size) rows); return_standard_error=True then also returns the
    bootstrap standard error of the score: (score, standard_error). Exact: standard error None."""
    _check_metric(metric)
    eng, X, lab, k = _prepare(X, labels, copy, device, n_threads)
    size = 0 if sample_size is None else int(sample_size)
    if sample_size is not None and size < 1:
        raise ValueError("sample_size=%r: use an int >= 1 or None" % (sample_size,))
    res = _segforge.silhouette(eng, X, lab, k, size, seed_from(random_state), int(n_bootstrap),
                               progress_logger("silhouette"))
    if return_standard_error:
        return float(res["score"]), res["standard_error"]
    return float(res["score"])


def silhouette_samples(X, labels, *, metric="euclidean", device="auto", n_threads=None, copy=True):
    """Silhouette coefficient of every row, float64 [n_samples], as sklearn's silhouette_samples."""
    _check_metric(metric)
    eng, X, lab, k = _prepare(X, labels, copy, device, n_threads)
    return _segforge.silhouette(eng, X, lab, k, 0, 0, 0, progress_logger("silhouette"))["values"]


def davies_bouldin_score(X, labels, *, device="auto", n_threads=None, copy=True):
    """Davies–Bouldin index, as sklearn.metrics.davies_bouldin_score."""
    eng, X, lab, k = _prepare(X, labels, copy, device, n_threads)
    return float(_segforge.davies_bouldin(eng, X, lab, k))


def calinski_harabasz_score(X, labels, *, device="auto", n_threads=None, copy=True):
    """Calinski–Harabasz index, as sklearn.metrics.calinski_harabasz_score."""
    eng, X, lab, k = _prepare(X, labels, copy, device, n_threads)
    return float(_segforge.calinski_harabasz(eng, X, lab, k))
