#!/usr/bin/python3
"""scikit-learn's DBSCAN on the cases tests/test_dbscan.cpp compares with.

    make_dbscan_fixtures.py OUT_DIR [DATASETS_DIR]

Writes OUT_DIR/<case>.h5 for each case: /features float32 [N x D] (the exact values both
programs read), optional /weights float32 [N x 1], /expected/labels float32 [N x 1] (scikit-learn's
labels_, -1 noise), /expected/core float32 [N x 1] (1 for core_sample_indices_), /expected/params
float32 [1 x 2] (eps, min_samples; eps is a float32 value so that both sides square the same
double), /expected/kdist float32 [N x 1] (each row's distance to its min_samples-th nearest row,
itself first, from scikit-learn's NearestNeighbors). scikit-learn runs in float64 on the float32
values, with algorithm='kd_tree' (the tree queries compute Σ (x_j − y_j)², as segforge does).
Cases on real data (Fränti S1, Mall Customers) are skipped when DATASETS_DIR lacks them.
"""
import os
import sys

import h5py
import numpy as np
from sklearn.cluster import DBSCAN
from sklearn.datasets import make_blobs, make_moons
from sklearn.neighbors import NearestNeighbors


def write(out, name, x, eps, min_samples, weights=None):
    x = np.ascontiguousarray(x, dtype=np.float32)
    eps = float(np.float32(eps))
    x64 = x.astype(np.float64)
    db = DBSCAN(eps=eps, min_samples=min_samples, algorithm="kd_tree")
    db.fit(x64, sample_weight=None if weights is None else weights.astype(np.float64))
    core = np.zeros(len(x), dtype=np.float32)
    core[db.core_sample_indices_] = 1
    k = int(min(min_samples, len(x)))
    dist, _ = NearestNeighbors(n_neighbors=k, algorithm="kd_tree").fit(x64).kneighbors(x64)
    with h5py.File(os.path.join(out, name + ".h5"), "w") as f:
        f["features"] = x
        if weights is not None:
            f["weights"] = weights.astype(np.float32).reshape(-1, 1)
        f["expected/labels"] = db.labels_.astype(np.float32).reshape(-1, 1)
        f["expected/core"] = core.reshape(-1, 1)
        f["expected/params"] = np.array([[eps, min_samples]], dtype=np.float32)
        f["expected/kdist"] = dist[:, k - 1].astype(np.float32).reshape(-1, 1)


def main():
    out = sys.argv[1]
    datasets = sys.argv[2] if len(sys.argv) > 2 else ""
    rng = np.random.default_rng(20261207)
    x, _ = make_moons(n_samples=3000, noise=0.07, random_state=1)
    write(out, "moons", x, 0.08, 8)
    # Blobs with uniform background noise, in 3 and in 8 dimensions (the grid uses 3 columns).
    for d, eps, m in ((3, 0.45, 10), (8, 1.6, 10)):
        b, _ = make_blobs(n_samples=4000, centers=6, n_features=d, cluster_std=0.6, random_state=d)
        lo, hi = b.min(axis=0), b.max(axis=0)
        noise = rng.uniform(lo, hi, size=(400, d))
        write(out, "blobs_noise_%dd" % d, np.vstack([b, noise]), eps, m)
    # Integer weights: the same as repeating each row that many times.
    b, _ = make_blobs(n_samples=1500, centers=4, n_features=2, cluster_std=0.5, random_state=7)
    w = rng.integers(0, 4, size=len(b)).astype(np.float64)
    write(out, "weighted", b, 0.3, 6, weights=w)
    s1 = os.path.join(datasets, "franti_sieranoja_benchmark", "s1.txt")
    if datasets and os.path.exists(s1):
        write(out, "s1", np.loadtxt(s1), 25000.5, 10)
    mall = os.path.join(datasets, "mall_customers", "Mall_Customers.csv")
    if datasets and os.path.exists(mall):
        import pandas as pd
        df = pd.read_csv(mall)
        cols = [c for c in df.columns if df[c].dtype.kind in "if" and "id" not in c.lower()]
        z = (df[cols] - df[cols].mean()) / df[cols].std(ddof=0)
        write(out, "mall", z.to_numpy(), 0.5, 5)


if __name__ == "__main__":
    main()
