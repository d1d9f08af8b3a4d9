#!/usr/bin/python3
"""Reference fixtures for tests/test_reference.cpp, computed with scikit-learn.

Regenerate (from the repository root) with Debian's Python, which has scikit-learn, numpy
and h5py (the first `python3` on PATH may be another one without them):

    /usr/bin/python3 scripts/make_fixtures.py            # writes tests/fixtures/*.h5
    /usr/bin/python3 scripts/make_fixtures.py --check    # recompute and compare, write nothing

The committed fixtures were made with scikit-learn 1.2.1, numpy 1.24.2, h5py 3.7.0 (the
versions are also stored in each file's root attributes). Everything is deterministic: fixed
numpy seeds, fixed sklearn random_state, single-threaded-equivalent float64 Lloyd.

Files (one per case) and what each holds:

    /features                 float32 [N, D]  the data (what segforge clusters)
    /init                     float32 [K, D]  the starting centres (sklearn k-means++ with a
                                              fixed random_state on the float32 data)
    /labels                   int32   [N]     sklearn KMeans labels_   (segforge::read_labels)
    /expected/centroids       float32 [K, D]  sklearn KMeans cluster_centers_
    /expected/silhouette_samples float64 [N, 1]  sklearn.metrics.silhouette_samples (2-D so
                                              that segforge::read_features can read it)
    /expected/<scalar>        float64 [1, 1]  inertia, n_iter, silhouette, davies_bouldin,
                                              calinski_harabasz (and minibatch_inertia for
                                              blobs): exact values, for h5py users
    /expected/<scalar>_split  float32 [1, 2]  the same value as float32 hi + lo parts
                                              (hi = float32(v), lo = float32(v - hi)), so that
                                              the tests, which read through
                                              segforge::read_features (which converts to
                                              float32), recover v as double(hi) + double(lo)
                                              to ~1e-14 relative without linking HDF5 directly
    root attributes           the same scalars (float64 / int64) plus provenance

The sklearn reference is KMeans(n_clusters=K, init=/init, n_init=1, max_iter=300, tol=0,
algorithm='lloyd').fit(X64), where X64 is the float32 /features converted to float64: the
reference is the exact (float64) Lloyd trajectory from the same data and the same start. The
metrics (silhouette, Davies-Bouldin, Calinski-Harabasz) are computed from X64 and sklearn's
labels. segforge computes distances in float32, so this script also replays Lloyd with
float32 distances ||x||^2 - 2x.c + ||c||^2 (double sums, float32 centres, as DESIGN.md
describes) and refuses a case whose label trajectory differs from the float64 one: then the
test's "same labels, same centres" expectation is well posed. It prints the smallest
distance margin met along the trajectory and the centroid / inertia differences that float32
arithmetic alone produces (what the C++ test can expect at best).

Mini-batch (blobs only): `minibatch_inertia` is sklearn MiniBatchKMeans(n_clusters=K,
init=/init, n_init=1, batch_size=100, random_state=0, max_iter=50).fit(X64).inertia_ (the
full-data inertia with the final centres). segforge draws its batches from its own RNG, so
the batches differ; the test only checks that segforge's final full-data inertia is within 1%
of sklearn's Lloyd inertia and of this mini-batch inertia.
"""

import argparse
import os
import sys

import h5py
import numpy as np
import sklearn
from sklearn.cluster import KMeans, MiniBatchKMeans, kmeans_plusplus
from sklearn.datasets import make_blobs
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_samples,
    silhouette_score,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
DATASETS = os.environ.get(
    "SEGFORGE_DATASETS", os.path.join(os.path.dirname(ROOT), "shared", "datasets")
)
MALL_CSV = os.path.join(DATASETS, "mall_customers", "Mall_Customers.csv")
if not os.path.exists(MALL_CSV):
    MALL_CSV = "/work/shared/datasets/mall_customers/Mall_Customers.csv"


def standardise(x):
    """Column-wise (x - mean) / std, population std (ddof = 0) as StandardScaler, in float64."""
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean(axis=0)) / x.std(axis=0)


# ---- the cases ----------------------------------------------------------------------------


def case_blobs():
    """(a) Well separated isotropic blobs, N=600, D=4, K=5, standardised."""
    x, _ = make_blobs(n_samples=600, n_features=4, centers=5, cluster_std=1.5, random_state=1)
    return standardise(x).astype(np.float32), 5, 1


def case_aniso():
    """(b) Anisotropic, overlapping clusters, N=1000, D=8, K=6: Lloyd needs many iterations."""
    rng = np.random.default_rng(20240502)
    k, d = 6, 8
    sizes = [260, 220, 180, 140, 110, 90]
    centres = rng.normal(0.0, 1.6, size=(k, d))
    parts = []
    for j in range(k):
        a = rng.normal(0.0, 1.0, size=(d, d))  # a random linear map: stretched, correlated
        parts.append(centres[j] + rng.normal(0.0, 1.0, size=(sizes[j], d)) @ a * 0.6)
    x = np.concatenate(parts)
    x = x[rng.permutation(len(x))]
    return standardise(x).astype(np.float32), k, 25


def case_mall():
    """(c) Mall Customers (200 rows): Age, Annual_Income, Spending_Score, standardised, K=5."""
    import csv

    with open(MALL_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r["Age"]), float(r["Annual_Income"]), float(r["Spending_Score"])]
                  for r in rows])
    return standardise(x).astype(np.float32), 5, 3


CASES = {
    "blobs": case_blobs,
    "aniso": case_aniso,
    "mall": case_mall,
}


# ---- replays of Lloyd (for checking that the reference is well posed in float32) ----------


def lloyd_float64(x64, c0, max_iter=300):
    """Plain float64 Lloyd with sklearn's stopping rule for tol=0 (labels unchanged)."""
    c = c0.astype(np.float64).copy()
    k = len(c)
    labels_old = None
    trajectory = []
    margins = []
    for _ in range(max_iter):
        d = ((x64[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        labels = d.argmin(axis=1)
        part = np.sort(d, axis=1)
        margins.append(((part[:, 1] - part[:, 0]) / (1.0 + (x64 ** 2).sum(1))).min())
        trajectory.append(labels)
        if labels_old is not None and np.array_equal(labels, labels_old):
            break
        counts = np.bincount(labels, minlength=k)
        if (counts == 0).any():
            raise RuntimeError("empty cluster in the float64 replay; choose another init")
        c = np.stack([x64[labels == j].mean(axis=0) for j in range(k)])
        labels_old = labels
    return c, trajectory, min(margins)


def lloyd_float32(x32, c0, max_iter=300):
    """Lloyd as DESIGN.md describes segforge: float32 distances ||x||^2 - 2x.c + ||c||^2
    clamped at 0, lower index on ties, double sums, float32 centres."""
    x = x32.astype(np.float32)
    xx = (x * x).sum(axis=1, dtype=np.float32)
    c = c0.astype(np.float32).copy()
    k = len(c)
    labels_old = None
    trajectory = []
    for _ in range(max_iter):
        cc = (c * c).sum(axis=1, dtype=np.float32)
        d = np.maximum(xx[:, None] - np.float32(2) * (x @ c.T) + cc[None, :], np.float32(0))
        labels = d.argmin(axis=1)
        trajectory.append(labels)
        if labels_old is not None and np.array_equal(labels, labels_old):
            break
        sums = np.zeros((k, x.shape[1]))
        np.add.at(sums, labels, x.astype(np.float64))
        counts = np.bincount(labels, minlength=k)
        c = (sums / counts[:, None]).astype(np.float32)
        labels_old = labels
    cc = (c * c).sum(axis=1, dtype=np.float32)
    d = np.maximum(xx[:, None] - np.float32(2) * (x @ c.T) + cc[None, :], np.float32(0))
    inertia = d.min(axis=1).astype(np.float64).sum()
    return c, trajectory, inertia


# ---- writing ------------------------------------------------------------------------------


def put_scalar(f, name, value):
    v = float(value)
    f.create_dataset(f"expected/{name}", data=np.array([[v]], dtype=np.float64))
    hi = np.float32(v)
    lo = np.float32(v - float(hi))
    f.create_dataset(f"expected/{name}_split", data=np.array([[hi, lo]], dtype=np.float32))
    f.attrs[name] = np.int64(value) if isinstance(value, (int, np.integer)) else v


def make_case(name, check_only):
    x32, k, init_seed = CASES[name]()
    x64 = x32.astype(np.float64)
    n, d = x32.shape
    init = kmeans_plusplus(x32, n_clusters=k, random_state=init_seed)[0].astype(np.float32)

    km = KMeans(n_clusters=k, init=init.astype(np.float64), n_init=1, max_iter=300, tol=0.0,
                algorithm="lloyd").fit(x64)
    labels = km.labels_.astype(np.int32)

    # Is the reference well posed for float32 distance arithmetic?
    c64, traj64, margin = lloyd_float64(x64, init)
    c32, traj32, inertia32 = lloyd_float32(x32, init)
    same_traj = len(traj64) == len(traj32) and all(
        np.array_equal(a, b) for a, b in zip(traj64, traj32))
    if not np.array_equal(traj64[-1], labels) or np.abs(c64 - km.cluster_centers_).max() > 1e-9:
        raise RuntimeError(f"{name}: the float64 replay does not reproduce sklearn")
    if not same_traj:
        raise RuntimeError(f"{name}: float32 distances change the Lloyd trajectory; "
                           "choose another seed")

    sil = silhouette_score(x64, labels)
    sil_samples = silhouette_samples(x64, labels)
    db = davies_bouldin_score(x64, labels)
    ch = calinski_harabasz_score(x64, labels)
    scalars = {
        "inertia": km.inertia_,
        "n_iter": km.n_iter_,
        "silhouette": sil,
        "davies_bouldin": db,
        "calinski_harabasz": ch,
    }
    if name == "blobs":
        mb = MiniBatchKMeans(n_clusters=k, init=init.astype(np.float64), n_init=1,
                             batch_size=100, random_state=0, max_iter=50).fit(x64)
        scalars["minibatch_inertia"] = mb.inertia_
        rel = abs(mb.inertia_ - km.inertia_) / km.inertia_
        if rel > 0.005:
            raise RuntimeError(f"{name}: sklearn mini-batch inertia is {rel:.2%} from Lloyd's")

    print(f"{name}: N={n} D={d} K={k} n_iter={km.n_iter_} inertia={km.inertia_:.10g} "
          f"silhouette={sil:.6f} DB={db:.6f} CH={ch:.6f}"
          + (f" minibatch_inertia={scalars['minibatch_inertia']:.10g}"
             f" ({(scalars['minibatch_inertia'] / km.inertia_ - 1):+.3%})"
             if "minibatch_inertia" in scalars else ""))
    print(f"    float32 replay: same trajectory ({len(traj32)} assignments); smallest margin "
          f"(d2 - d1)/(1 + |x|^2) = {margin:.3g}; max |c32 - c_sklearn| = "
          f"{np.abs(c32 - km.cluster_centers_).max():.3g}; inertia rel diff = "
          f"{abs(inertia32 - km.inertia_) / km.inertia_:.3g}; cluster sizes "
          f"{np.bincount(labels, minlength=k).tolist()}")

    path = os.path.join(FIXTURES, f"{name}.h5")
    if check_only:
        with h5py.File(path, "r") as f:
            ok = (np.array_equal(f["features"][...], x32) and np.array_equal(f["init"][...], init)
                  and np.array_equal(f["labels"][...], labels)
                  and np.allclose(f["expected/centroids"][...], km.cluster_centers_,
                                  rtol=0, atol=1e-6)
                  and all(np.isclose(f.attrs[s], v, rtol=1e-12, atol=0)
                          for s, v in scalars.items()))
        print(f"    {path}: {'matches' if ok else 'DIFFERS'}")
        return ok

    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.create_dataset("features", data=x32)
        f.create_dataset("init", data=init)
        f.create_dataset("labels", data=labels)
        f.create_dataset("expected/centroids", data=km.cluster_centers_.astype(np.float32))
        f.create_dataset("expected/silhouette_samples",
                         data=sil_samples.astype(np.float64).reshape(n, 1))
        for s, v in scalars.items():
            put_scalar(f, s, v)
        f.attrs["n_clusters"] = np.int64(k)
        f.attrs["n_samples"] = np.int64(n)
        f.attrs["n_features"] = np.int64(d)
        f.attrs["case"] = name
        f.attrs["reference"] = (
            "sklearn KMeans(n_clusters=K, init=/init, n_init=1, max_iter=300, tol=0, "
            "algorithm='lloyd').fit(X64), X64 = float64(/features); metrics from X64 and "
            "/labels; init = sklearn kmeans_plusplus on /features")
        f.attrs["created_by"] = "scripts/make_fixtures.py"
        f.attrs["sklearn_version"] = sklearn.__version__
        f.attrs["numpy_version"] = np.__version__
        f.attrs["h5py_version"] = h5py.__version__
    os.replace(tmp, path)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="recompute and compare, write nothing")
    ap.add_argument("cases", nargs="*", default=list(CASES), help="cases (default: all)")
    args = ap.parse_args()
    os.makedirs(FIXTURES, exist_ok=True)
    ok = all([make_case(name, args.check) for name in args.cases])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
