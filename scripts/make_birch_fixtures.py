#!/usr/bin/python3
"""scikit-learn's Birch on the cases tests/test_birch.cpp compares with.

    make_birch_fixtures.py OUT_DIR [DATASETS_DIR]

Writes OUT_DIR/<case>.json for each case (JSON numbers are Python's shortest round-trip repr, so
every float64 reads back exactly):
  n, d              the shape
  x                 [n*d] row-major: float32 values (what segforge reads), widened to float64;
                    scikit-learn is given these float64 values (so it computes in float64)
  threshold, branching_factor
  centers           [M*d] Birch(threshold, branching_factor, n_clusters=None).fit(x).subcluster_centers_
  sizes             [M] n_samples_ of each subcluster, in the same (leaf-chain) order
  labels            [n] its predict(x): the nearest subcluster
  partial_equal     true: partial_fit over the two halves gave the same subclusters and labels
  truth             (blobs_2000x4) [n] the blob each row was drawn from
The "translation" case also has
  x_shifted         [n*d] x + 1e6, exact in float32 (x lies on a grid of 1/16)
  sklearn_m, sklearn_m_shifted
                    scikit-learn's subcluster counts on x and on x + 1e6: they differ, since its
                    radius SS/n - ||c||^2 cancels catastrophically far from the origin
                    (scikit-learn #34436); the test asserts only on segforge.
Cases on real data (Mall Customers, Franti S1) are skipped when DATASETS_DIR lacks them.
Needs Debian's scikit-learn 1.2 (/usr/bin/python3).
"""
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.cluster import Birch


def fit(x, threshold, branching_factor):
    b = Birch(threshold=threshold, branching_factor=branching_factor, n_clusters=None)
    b.fit(x)
    sizes = [sc.n_samples_ for leaf in b._get_leaves() for sc in leaf.subclusters_]
    return b, sizes


def write(out, name, x, threshold, branching_factor, extra=None):
    x = np.ascontiguousarray(x, dtype=np.float32).astype(np.float64)
    n, d = x.shape
    b, sizes = fit(x, threshold, branching_factor)
    labels = b.predict(x)
    # partial_fit over two halves continues the same tree: the same subclusters as one fit.
    p = Birch(threshold=threshold, branching_factor=branching_factor, n_clusters=None)
    p.partial_fit(x[: n // 2])
    p.partial_fit(x[n // 2 :])
    partial_equal = bool(
        np.array_equal(p.subcluster_centers_, b.subcluster_centers_) and np.array_equal(p.predict(x), labels)
    )
    case = {
        "n": n,
        "d": d,
        "x": x.ravel().tolist(),
        "threshold": threshold,
        "branching_factor": branching_factor,
        "centers": b.subcluster_centers_.ravel().tolist(),
        "sizes": [int(s) for s in sizes],
        "labels": labels.tolist(),
        "partial_equal": partial_equal,
        "sklearn_version": sklearn.__version__,
    }
    if extra:
        case.update(extra)
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(case, f)
    return len(sizes)


def blobs(rng, n, d, k, spread, std):
    centres = rng.uniform(-spread, spread, size=(k, d))
    return centres[rng.integers(0, k, size=n)] + std * rng.standard_normal((n, d))


def main():
    out = sys.argv[1]
    datasets = sys.argv[2] if len(sys.argv) > 2 else ""
    rng = np.random.default_rng(20260219)
    # scikit-learn's docstring example.
    write(out, "doc", np.array([[0, 1], [0.3, 1], [-0.3, 1], [0, -1], [0.3, -1], [-0.3, -1]]), 0.5, 50)
    # Six separated blobs (centres ±4 on three axes, std 0.7), with their true labels.
    centres = np.zeros((6, 4))
    for i in range(6):
        centres[i, i // 2] = 4.0 if i % 2 == 0 else -4.0
    truth = rng.integers(0, 6, size=2000)
    x = centres[truth] + 0.7 * rng.standard_normal((2000, 4))
    write(out, "blobs_2000x4", x, 0.5, 50, {"truth": truth.tolist()})
    # Small branching factors: deep trees, splits at every level.
    write(out, "blobs_3000x8_b8", blobs(rng, 3000, 8, 10, 4.0, 1.0), 1.0, 8)
    write(out, "gauss_1500x2_b3", rng.standard_normal((1500, 2)), 0.2, 3)
    write(out, "gauss_1000x3_b2", rng.standard_normal((1000, 3)), 0.3, 2)

    # Translation by 1e6: data on a grid of 1/16, so that x + 1e6 is exact in float32.
    x = np.round(blobs(rng, 3000, 4, 8, 4.0, 1.0) * 16) / 16
    x = x.astype(np.float32).astype(np.float64)
    shifted = (x + 1e6).astype(np.float32).astype(np.float64)
    assert np.array_equal(shifted - 1e6, x), "the translated grid is not exact in float32"
    # A threshold no radius of grid points equals exactly (0.51² = 2601/10000).
    m0 = len(fit(x, 0.51, 20)[1])
    m1 = len(fit(shifted, 0.51, 20)[1])
    print(f"translation: scikit-learn {sklearn.__version__} finds {m0} subclusters on x and {m1} on x + 1e6")
    assert m0 != m1, "scikit-learn's Birch was expected to change its subclusters under translation (#34436)"
    write(out, "translation", x, 0.51, 20,
          {"x_shifted": shifted.ravel().tolist(), "sklearn_m": m0, "sklearn_m_shifted": m1})

    mall = os.path.join(datasets, "mall_customers", "Mall_Customers.csv")
    if datasets and os.path.exists(mall):
        import pandas as pd

        df = pd.read_csv(mall)
        cols = [c for c in df.columns if df[c].dtype.kind in "if" and "id" not in c.lower()]
        z = (df[cols] - df[cols].mean()) / df[cols].std(ddof=0)
        write(out, "mall", z.to_numpy(), 0.5, 10)
    s1 = os.path.join(datasets, "franti_sieranoja_benchmark", "s1.txt")
    if datasets and os.path.exists(s1):
        x = np.loadtxt(s1)
        keep = np.sort(np.random.default_rng(1).choice(len(x), size=3000, replace=False))
        x = x[keep]
        # Standardised: S1's coordinates are ~1e5..1e6, where scikit-learn's radius loses digits.
        write(out, "s1", (x - x.mean(axis=0)) / x.std(axis=0), 0.1, 50)


if __name__ == "__main__":
    main()
