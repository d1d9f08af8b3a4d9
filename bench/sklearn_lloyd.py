#!/usr/bin/python3
"""scikit-learn's KMeans (lloyd, float32) on the same HDF5 file and starting centres as
bench_lloyd, timed the same way (whole fit / n_iter_). Prints one JSON line.

Run with Debian's Python (/usr/bin/python3: python3-sklearn, python3-h5py)."""
import json
import sys
import time

import h5py
import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_info


def main():
    features, init_file = sys.argv[1], sys.argv[2]
    iters = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    with h5py.File(features, "r") as f:
        x = np.ascontiguousarray(f["/features"][...], dtype=np.float32)
    with h5py.File(init_file, "r") as f:
        c0 = np.ascontiguousarray(f["/centroids"][...], dtype=np.float32)
    per_iter = []
    for _ in range(reps):
        km = KMeans(n_clusters=c0.shape[0], init=c0, n_init=1, max_iter=iters, tol=0.0,
                    algorithm="lloyd")
        t0 = time.perf_counter()
        km.fit(x)
        per_iter.append(1e3 * (time.perf_counter() - t0) / km.n_iter_)
    blas = [f"{p['internal_api']} {p.get('version', '')} threads={p['num_threads']}"
            for p in threadpool_info()]
    print(json.dumps({"impl": "scikit-learn", "n": x.shape[0], "d": x.shape[1], "k": c0.shape[0],
                      "n_iter": int(km.n_iter_), "inertia": float(km.inertia_),
                      "ms_per_iter_median": float(np.median(per_iter)),
                      "ms_per_iter_all": per_iter, "threadpools": blas}))


if __name__ == "__main__":
    main()
