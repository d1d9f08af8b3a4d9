#!/usr/bin/python3
"""Starting centres for the benchmarks: K distinct random rows of FEATURES (seeded), written as
/centroids so both segforge (read_model) and scikit-learn start from the same place."""
import sys

import h5py
import numpy as np

features, k, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with h5py.File(features, "r") as f:
    n = f["/features"].shape[0]
    rows = np.sort(np.random.default_rng(0).choice(n, size=k, replace=False))
    c = f["/features"][rows, :].astype(np.float32)
with h5py.File(out, "w") as f:
    f["/centroids"] = c
