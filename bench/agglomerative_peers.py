#!/usr/bin/python3
"""segforge's agglomerative Ward against fastcluster and scikit-learn on the same data: time and
peak memory, each run in its own process, alternating, medians over repetitions; prints markdown.

  segforge      `segforge fit --algorithm agglomerative --strategy exact -k 10 --metrics` (the whole
                job, and the tree alone from metrics.json's timings.linkage)
  fastcluster   fastcluster.linkage_vector(X, method='ward') (Müllner 2013: O(N·D) memory)
  sklearn       sklearn.cluster.AgglomerativeClustering(n_clusters=10, linkage='ward').fit(X),
                killed beyond --sk-timeout seconds or --sk-memory GiB

Every tree is checked against segforge's: the same merges (child ids) and heights within 1e-6
relative (fastcluster), the same partition at K = 10 (scikit-learn).
The two-stage path (Ward on 2,000 K-Means micro-clusters) runs at --two-stage-n rows, segforge alone.

  bench/agglomerative_peers.py                    # N = 10k, 20k, 50k for D = 8, 16; two-stage at 10M x 8
  bench/agglomerative_peers.py --quick            # N = 5k, D = 8, one repetition (a smoke run)
  bench/agglomerative_peers.py --n 20000 --d 16 --reps 3 --two-stage-n 0

Data: 10 Gaussian blobs (std 1) in a box of side 40, float32. Run with Debian's Python
(python3-fastcluster, python3-sklearn) after scripts/setup.sh and scripts/build.sh. Not a test.
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
lim = int(float(sys.argv[3]) * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
x = h5py.File(sys.argv[2], "r")["features"][:].astype(np.float64)
t = time.perf_counter()
if sys.argv[1] == "fastcluster":
    import fastcluster
    z = fastcluster.linkage_vector(x, method="ward")
    sec = time.perf_counter() - t
    np.save(sys.argv[4], z)
else:
    from sklearn.cluster import AgglomerativeClustering
    a = AgglomerativeClustering(n_clusters=10, linkage="ward").fit(x)
    sec = time.perf_counter() - t
    np.save(sys.argv[4], a.labels_.astype(np.int32))
print(json.dumps({"seconds": sec}))
"""


def make_data(path, n, d, seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-20, 20, size=(10, d))
    x = (centres[rng.integers(0, 10, size=n)] + rng.standard_normal((n, d))).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=x, chunks=(min(n, 65536), d))


def run_segforge(cli, path, out, strategy="exact"):
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", cli, "fit", path, "--algorithm", "agglomerative", "--strategy", strategy,
                        "-k", "10", "-o", out + "/model.h5", "--labels", out + "/labels.h5", "--metrics",
                        out + "/metrics.json", "--silhouette", "none", "--device", "cpu"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit("segforge failed: " + r.stderr)
    peak = int(r.stderr.strip().splitlines()[-1]) * 1024
    with open(out + "/metrics.json") as f:
        met = json.load(f)
    with h5py.File(out + "/model.h5", "r") as f:
        merges = f["hierarchy/merges"][:]
    with h5py.File(out + "/labels.h5", "r") as f:
        labels = f["labels"][:]
    return dict(wall=wall, tree=met["timings"]["linkage"], micro=met["timings"]["micro_clusters"],
                fit=met["timings"]["fit"], peak=peak, merges=merges, labels=labels)


def run_peer(who, path, out, timeout, memory_gib):
    result = out + "/%s.npy" % who
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", sys.executable, "-c", CHILD, who, path, str(memory_gib), result],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return dict(failed="over %d s" % timeout)
    if proc.returncode != 0:
        return dict(failed="MemoryError" if "MemoryError" in stderr else "exit %d" % proc.returncode)
    peak = int(stderr.strip().splitlines()[-1]) * 1024
    return dict(seconds=json.loads(stdout.strip().splitlines()[-1])["seconds"], peak=peak, value=np.load(result))


def same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--d", type=int, action="append")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sk-timeout", type=int, default=600)
    ap.add_argument("--sk-memory", type=float, default=16.0, help="GiB of address space for each peer")
    ap.add_argument("--two-stage-n", type=int, default=10_000_000, help="rows of the two-stage row (0: none)")
    a = ap.parse_args()
    cli = os.path.join(a.build, "tools", "segforge")
    out = os.path.join(ROOT, "out", "bench", "agglomerative")
    os.makedirs(out, exist_ok=True)
    ns = a.n or ([5_000] if a.quick else [10_000, 20_000, 50_000])
    ds = a.d or ([8] if a.quick else [8, 16])
    reps = 1 if a.quick else a.reps
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("# Agglomerative Ward: segforge vs fastcluster and scikit-learn (%s, %s, commit %s, %d CPUs, reps %d)\n"
          % (datetime.date.today(), platform.processor() or platform.machine(), commit, os.cpu_count(), reps))
    print("| N | D | segforge tree s | segforge job s | segforge peak MiB | fastcluster s | fastcluster peak MiB | "
          "scikit-learn s | scikit-learn peak MiB | vs fastcluster | vs scikit-learn | memory vs scikit-learn | same tree |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in ns:
        for d in ds:
            path = os.path.join(out, "data_%d_%d.h5" % (n, d))
            if not os.path.exists(path):
                make_data(path, n, d, seed=n + d)
            runs = {"sf": [], "fastcluster": [], "sklearn": []}
            for rep in range(reps):
                order = ["sf", "fastcluster", "sklearn"]
                order = order[rep % 3:] + order[:rep % 3]
                for who in order:
                    if who == "sf":
                        runs["sf"].append(run_segforge(cli, path, out))
                    elif not (runs[who] and "failed" in runs[who][-1]):
                        runs[who].append(run_peer(who, path, out, a.sk_timeout, a.sk_memory))
            sf = runs["sf"][-1]
            tree = statistics.median(r["tree"] for r in runs["sf"])
            job = statistics.median(r["wall"] for r in runs["sf"])
            peak = max(r["peak"] for r in runs["sf"])
            cells, same = [], []
            for who in ["fastcluster", "sklearn"]:
                last = runs[who][-1]
                if "failed" in last:
                    cells.append((last["failed"], "", None, None))
                    continue
                sec = statistics.median(r["seconds"] for r in runs[who])
                cells.append(("%.3f" % sec, "%.0f" % (max(r["peak"] for r in runs[who]) / 2**20), sec,
                              max(r["peak"] for r in runs[who])))
                if who == "fastcluster":
                    z = last["value"]
                    ok = np.array_equal(z[:, :2], sf["merges"][:, :2]) and np.allclose(z[:, 2], sf["merges"][:, 2], rtol=1e-6)
                    same.append("fastcluster " + ("yes" if ok else "NO"))
                else:
                    same.append("scikit-learn K=10 " + ("yes" if same_partition(last["value"], sf["labels"]) else "NO"))
            ratio = lambda c: "%.1f×" % (c[2] / tree) if c[2] else ""
            mem = "%.1f×" % (cells[1][3] / peak) if cells[1][3] else ""
            print("| %s | %d | %.3f | %.3f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                "{:,}".format(n), d, tree, job, peak / 2**20, cells[0][0], cells[0][1], cells[1][0], cells[1][1],
                ratio(cells[0]), ratio(cells[1]), mem, ", ".join(same)), flush=True)
    if a.two_stage_n:
        n, d = a.two_stage_n, 8
        path = os.path.join(out, "data_%d_%d.h5" % (n, d))
        if not os.path.exists(path):
            make_data(path, n, d, seed=n + d)
        r = run_segforge(cli, path, out, strategy="two-stage")
        print("\nTwo-stage, segforge alone: N = %s, D = %d, K = 10: job %.1f s (micro-clusters %.1f s, Ward on them %.3f s), "
              "peak %.0f MiB" % ("{:,}".format(n), d, r["wall"], r["micro"], r["tree"], r["peak"] / 2**20))


if __name__ == "__main__":
    main()
