"""Choosing K: the engine's sweep (src/select/sweep.cpp), as `segforge sweep` runs it."""

import numpy as np
from sklearn.utils import check_array

from . import _segforge
from ._common import as_engine_array, engine, progress_logger, seed_from

CRITERIA = ("silhouette", "gap", "elbow", "davies_bouldin", "calinski_harabasz")


def sweep(X, k_min=2, k_max=10, *, criteria=CRITERIA, init="k-means++", n_init=1, max_iter=300,
          tol=1e-4, random_state=0, silhouette_sample=0, gap_references=10, min_segment_size=0,
          device="auto", n_threads=None, copy=True):
    """Fits K = k_min..k_max and scores each as the CLI's sweep does.

    Returns a dict: `records` (one dict per K: inertia, silhouette, davies_bouldin,
    calinski_harabasz, gap, sizes, ...; pandas.DataFrame(result["records"]) makes a table),
    `choices` (criterion -> K or None), `notes`, `recommended_k` (0 when none) and `reason`."""
    if not copy:
        as_engine_array(X, copy=False)
    X = as_engine_array(check_array(X, dtype=np.float32, order="C"))
    return _segforge.sweep(engine(device, n_threads), X, int(k_min), int(k_max), list(criteria),
                           init, int(n_init), int(max_iter), float(tol), seed_from(random_state),
                           int(silhouette_sample), int(gap_references), int(min_segment_size),
                           progress_logger("sweep"))
