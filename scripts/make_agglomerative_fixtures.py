#!/usr/bin/python3
"""SciPy's hierarchical clustering on the cases tests/test_agglomerative.cpp compares with.

    make_agglomerative_fixtures.py OUT_DIR [DATASETS_DIR]

Writes OUT_DIR/<case>.json for each case (JSON numbers are Python's shortest round-trip repr,
so every float64 reads back exactly):
  n, d           the shape
  x              [n*d] row-major: float32 values (what segforge reads), widened to float64
  weights        [n] integer weights, or null
  methods        {method: {"Z": [(n-1)*4] scipy.cluster.hierarchy.linkage(x, method),
                           "cuts_k": [[K, labels[n]], ...]  fcluster(Z, K, 'maxclust'),
                           "cuts_h": [[t, labels[n]], ...]  fcluster(Z, t, 'distance')}}
  repeated       (weighted cases) {"n": n', "Z": {method: [(n'-1)*4]}}: linkage of x with row i
                 repeated weights[i] times (np.repeat), which the weighted tree must continue
Cuts into 1 < K < n-1 clusters are listed only where SciPy's heights at the cut differ
(maxclust then gives exactly K clusters); height thresholds sit halfway between two consecutive distinct heights.
Cases on real data (Fränti S1, Mall Customers) are skipped when DATASETS_DIR lacks them.
"""
import json
import os
import sys

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

METHODS = ("ward", "complete", "average", "single")


def cuts(Z, n):
    h = Z[:, 2]
    ks = []
    for k in (2, 3, 4, 5, 7, 10, 15, 20, 50):
        # K clusters: merges 0..n-K-1 kept; the next (index n-K) must be strictly higher.
        # (SciPy 1.10's maxclust gives n-2 clusters for K = n-1, and its search over the heights
        # need not give K clusters at K = 1 or n: those are left to the hand-computed tests.)
        if k < n - 1 and h[n - k - 1] < h[n - k]:
            ks.append([k, fcluster(Z, k, criterion="maxclust").tolist()])
    hs = []
    for k in (2, 3, 6, 12):
        if k < n and h[n - k - 1] < h[n - k]:
            t = 0.5 * (h[n - k - 1] + h[n - k])
            hs.append([t, fcluster(Z, t, criterion="distance").tolist()])
    return ks, hs


def write(out, name, x, weights=None, methods=METHODS):
    x = np.ascontiguousarray(x, dtype=np.float32).astype(np.float64)
    n, d = x.shape
    case = {"n": n, "d": d, "x": x.ravel().tolist(), "weights": None, "methods": {}}
    for m in methods:
        Z = linkage(x, method=m)
        ks, hs = cuts(Z, n)
        case["methods"][m] = {"Z": Z.ravel().tolist(), "cuts_k": ks, "cuts_h": hs}
    if weights is not None:
        w = np.asarray(weights, dtype=np.int64)
        case["weights"] = w.astype(float).tolist()
        xr = np.repeat(x, w, axis=0)
        case["repeated"] = {"n": len(xr), "Z": {m: linkage(xr, method=m).ravel().tolist() for m in methods}}
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(case, f)


def main():
    out = sys.argv[1]
    datasets = sys.argv[2] if len(sys.argv) > 2 else ""
    rng = np.random.default_rng(20260119)
    write(out, "n2", rng.standard_normal((2, 3)))
    write(out, "n3", rng.standard_normal((3, 2)))
    write(out, "tiny", rng.standard_normal((10, 2)))
    write(out, "gauss_200x5", rng.standard_normal((200, 5)) * 3.0 + 10.0)
    # Blobs in 8 dimensions, far from the origin.
    centres = rng.uniform(-50, 50, size=(6, 8)) + 1000.0
    blobs = centres[rng.integers(0, 6, size=1000)] + rng.standard_normal((1000, 8))
    write(out, "blobs_1000x8", blobs)
    # Exact duplicates: 120 distinct rows drawn 300 times (pairs, triples, ...), shuffled.
    base = rng.standard_normal((120, 4))
    write(out, "duplicates", base[rng.integers(0, 120, size=300)])
    # Integer lattice: many exactly equal distances (and duplicates). complete, average and
    # single are SciPy's bit for bit, ties included; ward is compared on the other cases.
    write(out, "lattice", rng.integers(0, 12, size=(400, 2)).astype(float), methods=("complete", "average", "single"))
    write(out, "gauss_4000x16", rng.standard_normal((4000, 16)), methods=("ward",))
    # Weights 1..4 against repetition.
    write(out, "weighted", rng.standard_normal((150, 3)), weights=rng.integers(1, 5, size=150))
    s1 = os.path.join(datasets, "franti_sieranoja_benchmark", "s1.txt")
    if datasets and os.path.exists(s1):
        x = np.loadtxt(s1)
        keep = np.sort(np.random.default_rng(1).choice(len(x), size=3000, replace=False))
        write(out, "s1", x[keep])
    mall = os.path.join(datasets, "mall_customers", "Mall_Customers.csv")
    if datasets and os.path.exists(mall):
        import pandas as pd
        df = pd.read_csv(mall)
        cols = [c for c in df.columns if df[c].dtype.kind in "if" and "id" not in c.lower()]
        z = (df[cols] - df[cols].mean()) / df[cols].std(ddof=0)
        write(out, "mall", z.to_numpy())


if __name__ == "__main__":
    main()
