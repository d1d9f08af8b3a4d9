#!/usr/bin/python3
"""segforge's DBSCAN against scikit-learn's on the same HDF5 files and parameters: time and peak
memory, each run in its own process, alternating, medians over repetitions; prints markdown.

  segforge  `segforge fit --algorithm dbscan --eps E --min-samples M --metrics` (the whole job:
            read, fit, profiles, model, labels; and the fit alone from metrics.json's timings)
  sklearn   sklearn.cluster.DBSCAN(eps=E, min_samples=M) (algorithm='auto'), fit only, on the
            same float32 values as float64; killed beyond --sk-timeout seconds or --sk-memory GiB

Data: blobs (10 centres, std 1, in a box of side 40) plus 10% uniform noise over the box, at
N x D; eps is segforge's --eps auto choice on that file (the knee of the k-distance curve), so
both programs get the same eps. Both results are checked to agree: the same core rows and noise
(the labels of core rows equal up to numbering, which is the same).

  bench/dbscan_peers.py                      # N = 100k and 1M for D = 2, 8, 16; 10M x 8 segforge alone
  bench/dbscan_peers.py --quick              # N = 20k, one repetition (a smoke run)
  bench/dbscan_peers.py --n 100000 --d 8 --reps 3
  bench/dbscan_peers.py --n 10000000 --d 8 --segforge-only --reps 1

Run with Debian's Python after scripts/setup.sh and scripts/build.sh. Not a test and not run in CI.
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

SK_CHILD = r"""
import resource, sys, time, json
import h5py, numpy as np
from sklearn.cluster import DBSCAN
lim = int(float(sys.argv[4]) * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
x = h5py.File(sys.argv[1], "r")["features"][:].astype(np.float64)
t = time.perf_counter()
db = DBSCAN(eps=float(sys.argv[2]), min_samples=int(sys.argv[3])).fit(x)
sec = time.perf_counter() - t
np.save(sys.argv[5], db.labels_.astype(np.int32))
core = np.zeros(len(x), dtype=np.int8); core[db.core_sample_indices_] = 1
np.save(sys.argv[5].replace(".npy", "_core.npy"), core)
print(json.dumps({"fit_seconds": sec}))
"""


def make_data(path, n, d, seed):
    rng = np.random.default_rng(seed)
    n_noise = n // 10
    centres = rng.uniform(-20, 20, size=(10, d))
    which = rng.integers(0, 10, size=n - n_noise)
    x = centres[which] + rng.standard_normal((n - n_noise, d))
    noise = rng.uniform(-22, 22, size=(n_noise, d))
    x = np.vstack([x, noise]).astype(np.float32)
    rng.shuffle(x)
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=x, chunks=(min(n, 65536), d))


def run_segforge(cli, path, eps, m, out):
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", cli, "fit", path, "--algorithm", "dbscan", "--eps", repr(eps),
                        "--min-samples", str(m), "-o", out + "/model.h5", "--labels", out + "/labels.h5",
                        "--metrics", out + "/metrics.json", "--silhouette", "none", "--device", "cpu"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit("segforge failed: " + r.stderr)
    peak = int(r.stderr.strip().splitlines()[-1]) * 1024
    met = json.load(open(out + "/metrics.json"))
    with h5py.File(out + "/labels.h5", "r") as f:
        labels = f["labels"][:]
    return dict(wall=wall, fit=met["timings"]["fit"], peak=peak, labels=labels, n_clusters=met["k"],
                n_noise=met["n_noise"], grid=met["grid"])


def run_sklearn(path, eps, m, out, timeout, memory_gib):
    lab = out + "/sk_labels.npy"
    # Its own process group, so that a timeout ends scikit-learn too, not only /usr/bin/time.
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", sys.executable, "-c", SK_CHILD, path, repr(eps), str(m),
                             str(memory_gib), lab], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return dict(failed="over %d s" % timeout)
    r = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])
        return dict(failed="MemoryError" if "MemoryError" in r.stderr else "exit %d: %s" % (r.returncode, last[-2:]))
    peak = int(r.stderr.strip().splitlines()[-1]) * 1024
    fit = json.loads(r.stdout.strip().splitlines()[-1])["fit_seconds"]
    return dict(fit=fit, peak=peak, labels=np.load(lab), core=np.load(lab.replace(".npy", "_core.npy")))


def eps_auto(cli, path, m, out):
    r = subprocess.run([cli, "fit", path, "--algorithm", "dbscan", "--min-samples", str(m), "-o", out + "/auto.h5",
                        "--device", "cpu"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("segforge --eps auto failed: " + r.stderr)
    with h5py.File(out + "/auto.h5", "r") as f:
        return float(f.attrs["eps"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--d", type=int, action="append")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-samples", type=int, default=10)
    ap.add_argument("--sk-timeout", type=int, default=900)
    ap.add_argument("--sk-memory", type=float, default=16.0, help="GiB of address space for scikit-learn")
    ap.add_argument("--no-10m", action="store_true", help="leave out the 10M x 8 segforge-only row")
    ap.add_argument("--segforge-only", action="store_true", help="do not run scikit-learn")
    a = ap.parse_args()
    cli = os.path.join(a.build, "tools", "segforge")
    out = os.path.join(ROOT, "out", "bench", "dbscan")
    os.makedirs(out, exist_ok=True)
    ns = a.n or ([20_000] if a.quick else [100_000, 1_000_000])
    ds = a.d or [2, 8, 16]
    reps = 1 if a.quick else a.reps
    cases = [(n, d, not a.segforge_only) for n in ns for d in ds]
    if not a.quick and not a.no_10m and not a.n:
        cases.append((10_000_000, 8, False))
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("# DBSCAN: segforge vs scikit-learn (%s, %s, commit %s, %d CPUs, reps %d, min_samples %d)\n"
          % (datetime.date.today(), platform.processor() or platform.machine(), commit, os.cpu_count(), reps,
             a.min_samples))
    print("| N | D | eps | clusters | noise | segforge fit s | segforge job s | segforge peak MiB | "
          "sklearn fit s | sklearn peak MiB | fit ratio | memory ratio | same core & noise |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, d, with_sk in cases:
        path = os.path.join(out, "data_%d_%d.h5" % (n, d))
        if not os.path.exists(path):
            make_data(path, n, d, seed=n + d)
        eps = eps_auto(cli, path, a.min_samples, out)
        sf_runs, sk_runs = [], []
        for rep in range(reps):
            order = ["sf", "sk"] if rep % 2 == 0 else ["sk", "sf"]
            for who in order:
                if who == "sf":
                    sf_runs.append(run_segforge(cli, path, eps, a.min_samples, out))
                elif with_sk and not (sk_runs and "failed" in sk_runs[-1]):
                    sk_runs.append(run_sklearn(path, eps, a.min_samples, out, a.sk_timeout, a.sk_memory))
        sf = sf_runs[-1]
        sf_fit = statistics.median(r["fit"] for r in sf_runs)
        sf_wall = statistics.median(r["wall"] for r in sf_runs)
        sf_peak = max(r["peak"] for r in sf_runs)
        if not with_sk:
            sk_cell = ["not run", "", "", "", ""]
        elif sk_runs and "failed" in sk_runs[-1]:
            sk_cell = [sk_runs[-1]["failed"], "", "", "", ""]
        else:
            sk_fit = statistics.median(r["fit"] for r in sk_runs)
            sk_peak = max(r["peak"] for r in sk_runs)
            sk = sk_runs[-1]
            same = bool(np.array_equal(sf["labels"] < 0, sk["labels"] < 0))
            core = sk["core"].astype(bool)
            same = same and bool(np.array_equal(sf["labels"][core], sk["labels"][core]))
            sk_cell = ["%.3f" % sk_fit, "%.0f" % (sk_peak / 2**20), "%.1f×" % (sk_fit / sf_fit),
                       "%.1f×" % (sk_peak / sf_peak), "yes" if same else "NO"]
        print("| %s | %d | %.4g | %d | %d | %.3f | %.3f | %.0f | %s |" % (
            "{:,}".format(n), d, eps, sf["n_clusters"], sf["n_noise"], sf_fit, sf_wall, sf_peak / 2**20,
            " | ".join(sk_cell)), flush=True)


if __name__ == "__main__":
    main()
