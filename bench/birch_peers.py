#!/usr/bin/python3
"""segforge's BIRCH against scikit-learn's Birch on the same data: time and peak memory, each run
in its own process, alternating, medians over repetitions; prints markdown.

  segforge   `segforge fit --algorithm birch --threshold T -k 10 --max-subclusters 0 --metrics`
             (the whole job; metrics.json's timings: insert = the tree, fit = tree, global step and
             every row labelled, what scikit-learn's fit does)
  sklearn    sklearn.cluster.Birch(threshold=T, n_clusters=10).fit(X) then predict(X)
             (AgglomerativeClustering on the subclusters, as scikit-learn's global step),
             killed beyond --sk-timeout seconds or --sk-memory GiB

Both make the same kind of tree (same threshold, branching factor 50, no budget); the table
gives both subcluster counts. 10M rows run segforge alone.

  bench/birch_peers.py                       # N = 100k and 1M at D = 8, then 10M segforge alone
  bench/birch_peers.py --quick               # N = 20k (a smoke run)

Data: 10 Gaussian blobs (std 1) in a box of side 40, float32. Run with Debian's Python after
scripts/setup.sh and scripts/build.sh. Not a test.
"""
import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r"""
import resource, sys, time, json
import h5py, numpy as np
from sklearn.cluster import Birch
lim = int(float(sys.argv[3]) * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
x = h5py.File(sys.argv[1], "r")["features"][:].astype(np.float64)
t = time.perf_counter()
b = Birch(threshold=float(sys.argv[2]), n_clusters=10).fit(x)
fit = time.perf_counter() - t
labels = b.predict(x)
total = time.perf_counter() - t
print(json.dumps({"fit": fit, "total": total, "subclusters": int(len(b.subcluster_centers_))}))
"""


def make_data(path, n, d, seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-20, 20, size=(10, d))
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("features", shape=(n, d), dtype=np.float32, chunks=(min(n, 65536), d))
        for lo in range(0, n, 1_000_000):
            m = min(1_000_000, n - lo)
            ds[lo:lo + m] = (centres[rng.integers(0, 10, size=m)] + rng.standard_normal((m, d))).astype(np.float32)


def run_segforge(cli, path, threshold, out):
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", cli, "fit", path, "--algorithm", "birch", "--threshold", repr(threshold),
                        "-k", "10", "--max-subclusters", "0", "-o", out + "/model.h5", "--labels", out + "/labels.h5",
                        "--metrics", out + "/metrics.json", "--silhouette", "none", "--device", "cpu"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit("segforge failed: " + r.stderr)
    with open(out + "/metrics.json") as f:
        met = json.load(f)
    return dict(wall=wall, insert=met["timings"]["insert"], fit=met["timings"]["fit"], subclusters=met["n_subclusters"],
                peak=int(r.stderr.strip().splitlines()[-1]) * 1024)


def run_sklearn(path, threshold, timeout, memory_gib):
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", sys.executable, "-c", CHILD, path, repr(threshold), str(memory_gib)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return dict(failed="over %d s" % timeout)
    if proc.returncode != 0:
        return dict(failed="MemoryError" if "MemoryError" in stderr else "exit %d" % proc.returncode)
    r = json.loads(stdout.strip().splitlines()[-1])
    r["peak"] = int(stderr.strip().splitlines()[-1]) * 1024
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--d", type=int, default=8)
    ap.add_argument("--threshold", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sk-timeout", type=int, default=900)
    ap.add_argument("--sk-memory", type=float, default=16.0)
    ap.add_argument("--no-10m", action="store_true")
    a = ap.parse_args()
    cli = os.path.join(a.build, "tools", "segforge")
    out = os.path.join(ROOT, "out", "bench", "birch")
    os.makedirs(out, exist_ok=True)
    ns = a.n or ([20_000] if a.quick else [100_000, 1_000_000])
    cases = [(n, True) for n in ns]
    if not a.quick and not a.no_10m and not a.n:
        cases.append((10_000_000, False))
    reps = 1 if a.quick else a.reps
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("# BIRCH: segforge vs scikit-learn (%s, %s, commit %s, %d CPUs, reps %d, D = %d, threshold %g)\n"
          % (datetime.date.today(), platform.processor() or platform.machine(), commit, os.cpu_count(), reps, a.d,
             a.threshold))
    print("| N | segforge subclusters | segforge tree s | segforge fit s | segforge job s | segforge peak MiB | "
          "scikit-learn subclusters | scikit-learn fit s | scikit-learn fit + predict s | scikit-learn peak MiB | fit ratio | "
          "job ratio | memory ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, with_sk in cases:
        path = os.path.join(out, "data_%d_%d.h5" % (n, a.d))
        if not os.path.exists(path):
            make_data(path, n, a.d, seed=n + a.d)
        sf, sk = [], []
        for rep in range(reps if with_sk else 1):
            for who in (["sf", "sk"] if rep % 2 == 0 else ["sk", "sf"]):
                if who == "sf":
                    sf.append(run_segforge(cli, path, a.threshold, out))
                elif with_sk and not (sk and "failed" in sk[-1]):
                    sk.append(run_sklearn(path, a.threshold, a.sk_timeout, a.sk_memory))
        tree = statistics.median(r["insert"] for r in sf)
        sf_fit = statistics.median(r["fit"] for r in sf)
        job = statistics.median(r["wall"] for r in sf)
        peak = max(r["peak"] for r in sf)
        if not with_sk:
            cells = ["not run"] + [""] * 6
        elif "failed" in sk[-1]:
            cells = [sk[-1]["failed"]] + [""] * 6
        else:
            fit = statistics.median(r["fit"] for r in sk)
            total = statistics.median(r["total"] for r in sk)
            skpeak = max(r["peak"] for r in sk)
            cells = ["{:,}".format(sk[-1]["subclusters"]), "%.2f" % fit, "%.2f" % total, "%.0f" % (skpeak / 2**20),
                     "%.0f×" % (fit / sf_fit), "%.0f×" % (total / job), "%.1f×" % (skpeak / peak)]
        print("| %s | %s | %.3f | %.3f | %.2f | %.0f | %s |" % ("{:,}".format(n), "{:,}".format(sf[-1]["subclusters"]), tree,
                                                              sf_fit, job, peak / 2**20, " | ".join(cells)), flush=True)


if __name__ == "__main__":
    main()
