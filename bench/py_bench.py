#!/usr/bin/python3
"""The Python package against scikit-learn, in one process on the same arrays (issue 16).

1. segforge.KMeans vs sklearn.cluster.KMeans: the same starting centres (K seeded distinct rows,
   as bench/peers.py), n_init=1, the same max_iter, tol=0 (so both run max_iter iterations),
   float32 input to both; ms per iteration = the whole fit() wall time / n_iter_.
2. segforge.silhouette_score vs sklearn.metrics.silhouette_score: the same float32 array and
   labels (the blobs' true labels), seconds per call.
3. The Python layer's overhead over the CLI engine at N = 1M: the same fit through
   `segforge fit` on the HDF5 file the array was read from (see overhead() for exactly what is
   compared).

The programs alternate (the first one rotates between repetitions); medians over repetitions.
The shapes are those of bench/RESULTS.md ("Peers and the roofline"); the data are the same
generators (`segforge synth`, `segforge-prep synth blobs`, Online Retail through `segforge-prep
rfm`), made under --data. Prints a markdown section (and --json the raw numbers).

Run with Debian's Python, from the repository root after building with the Python package:
    PYTHONPATH=build/python bench/py_bench.py --markdown out/bench/py_bench.md
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

# Before numpy / scikit-learn / segforge load libgomp: under OMP_PROC_BIND it pins this
# process's main thread to one core at start-up, and a child would inherit that (1 thread).
ALL_CPUS = os.sched_getaffinity(0)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "build", "python"))

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import sklearn.cluster  # noqa: E402
import sklearn.metrics  # noqa: E402
from threadpoolctl import threadpool_info  # noqa: E402

import segforge  # noqa: E402

# (name, source, n, d, k, iterations, reps); source synth | online_retail. N as in RESULTS.md.
LLOYD = [
    ("lloyd_1m_d8_k8", "synth", 1_000_000, 8, 8, 20, 3),
    ("lloyd_1m_d32_k64", "synth", 1_000_000, 32, 64, 20, 3),
    ("lloyd_200k_d128_k1024", "synth", 200_000, 128, 1024, 10, 2),
    ("lloyd_online_retail_k5", "online_retail", 0, 0, 5, 20, 5),
]
# (name, source, n, d, k, reps). RESULTS.md's 100k x 16 takes scikit-learn 77 s a call (its
# N x N distance blocks); here it is scaled to 50k (about a quarter of that) to keep the run short.
SILHOUETTE = [
    ("silhouette_20k_d16", "blobs", 20_000, 16, 8, 3),
    ("silhouette_50k_d16 (RESULTS.md: 100k, scaled down)", "blobs", 50_000, 16, 8, 2),
    ("silhouette_online_retail_k5", "online_retail", 0, 0, 5, 5),
]


def log(msg):
    print(f"[py_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Data:
    def __init__(self, args):
        self.dir = args.data
        self.build = args.build
        self.datasets = args.datasets
        os.makedirs(self.dir, exist_ok=True)

    def tool(self, name):
        return os.path.join(self.build, "tools", name)

    def _make(self, path, cmd):
        if not os.path.exists(path):
            log(f"making {path}")
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return path

    def path(self, source, n, d, k):
        if source == "synth":  # bench/peers.py's Lloyd data
            p = os.path.join(self.dir, f"synth_{n}_{d}_{k}.h5")
            return self._make(p, [self.tool("segforge"), "synth", "-o", p, "--rows", str(n),
                                  "--features", str(d), "--segments", str(k), "--seed", "3"])
        if source == "blobs":  # bench/peers.py's silhouette data (true labels in /labels)
            p = os.path.join(self.dir, f"blobs_{n}_{d}_{k}.h5")
            return self._make(p, [self.tool("segforge-prep"), "synth", "blobs", "-n", str(n),
                                  "-d", str(d), "-k", str(k), "--seed", "3", "--spread", "3",
                                  "--std", "1", "-o", p])
        csv = os.path.join(self.datasets, "online_retail", "online_retail_sample_40000.csv")
        if not os.path.exists(csv):
            return None
        p = os.path.join(self.dir, "online_retail_rfm.h5")
        return self._make(p, [self.tool("segforge-prep"), "rfm", csv, "-o", p])


def starting_centres(X, k, seed=0):
    """K distinct seeded rows (bench/peers.py's "rows" init), float32 C-contiguous."""
    rng = np.random.RandomState(seed)
    return np.ascontiguousarray(X[np.sort(rng.choice(X.shape[0], k, replace=False))])


def inertia64(X, centres):
    """Inertia of `centres` on X in float64, the same way for both programs (blocks of rows)."""
    c = centres.astype(np.float64)
    cc = (c * c).sum(1)
    total = 0.0
    for s in range(0, X.shape[0], 65536):
        x = X[s:s + 65536].astype(np.float64)
        d = (x * x).sum(1)[:, None] - 2 * x @ c.T + cc[None, :]
        total += np.maximum(d.min(1), 0).sum()
    return total


def alternate(programs, reps):
    """Runs every program `reps` times, alternating, the first one rotating; {name: [results]}."""
    out = {name: [] for name, _ in programs}
    for r in range(reps):
        order = programs[r % len(programs):] + programs[:r % len(programs)]
        for name, fn in order:
            out[name].append(fn())
    return out


def bench_lloyd(data, rows):
    for name, source, n, d, k, iters, reps in LLOYD:
        path = data.path(source, n, d, k)
        if path is None:
            log(f"{name}: skipped (Online Retail CSV not under {data.datasets})")
            continue
        X = segforge.read_features(path).X
        C0 = starting_centres(X, k)
        log(f"{name}: {X.shape[0]} x {X.shape[1]}, K={k}, {iters} iterations, {reps} reps")

        def ours():
            km = segforge.KMeans(k, init=C0, n_init=1, max_iter=iters, tol=0.0, device="cpu")
            t0 = time.perf_counter()
            km.fit(X)
            return time.perf_counter() - t0, km.n_iter_, km.cluster_centers_

        def theirs():
            km = sklearn.cluster.KMeans(k, init=C0, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd")
            t0 = time.perf_counter()
            km.fit(X)
            return time.perf_counter() - t0, km.n_iter_, km.cluster_centers_

        res = alternate([("segforge", ours), ("sklearn", theirs)], reps)
        row = {"workload": name, "n": X.shape[0], "d": X.shape[1], "k": k}
        for prog, rs in res.items():
            row[prog] = {"seconds": [r[0] for r in rs], "n_iter": int(rs[-1][1]),
                         "ms_per_iter": 1e3 * statistics.median(r[0] / r[1] for r in rs),
                         "inertia64": inertia64(X, rs[-1][2])}
        rows.append(row)
        log(f"  segforge {row['segforge']['ms_per_iter']:.3g} ms/iter, sklearn {row['sklearn']['ms_per_iter']:.3g}")


def bench_silhouette(data, rows):
    import h5py
    for name, source, n, d, k, reps in SILHOUETTE:
        path = data.path(source, n, d, k)
        if path is None:
            log(f"{name}: skipped (Online Retail CSV not under {data.datasets})")
            continue
        X = segforge.read_features(path).X
        if source == "blobs":
            with h5py.File(path, "r") as f:
                labels = np.asarray(f["/labels"][...], dtype=np.int32)
        else:  # as bench/peers.py: labels of a scikit-learn Lloyd fit
            labels = sklearn.cluster.KMeans(k, init=starting_centres(X, k), n_init=1,
                                            algorithm="lloyd").fit(X).labels_.astype(np.int32)
        log(f"{name}: {X.shape[0]} x {X.shape[1]}, K={k}, {reps} reps")

        def timed(fn):
            def run():
                t0 = time.perf_counter()
                s = fn(X, labels)
                return time.perf_counter() - t0, s
            return run

        res = alternate([("segforge", timed(lambda x, l: segforge.silhouette_score(x, l, device="cpu"))),
                         ("sklearn", timed(sklearn.metrics.silhouette_score))], reps)
        row = {"workload": name, "n": X.shape[0], "d": X.shape[1], "k": k}
        for prog, rs in res.items():
            row[prog] = {"seconds": [r[0] for r in rs], "median_s": statistics.median(r[0] for r in rs),
                         "score": float(rs[-1][1])}
        rows.append(row)
        log(f"  segforge {row['segforge']['median_s']:.3g} s, sklearn {row['sklearn']['median_s']:.3g} s")


def overhead(data, args):
    """The Python layer over the CLI engine: the fit of lloyd_1m_d8_k8 (N = 1M, D = 8, K = 8,
    20 iterations, tol 0, the same starting centres, given to the CLI as an --init file).

    Measured, alternating, medians:
    - cli_engine: `segforge fit`'s metrics.json timings init + iterations (the driver's clocks);
    - py_engine: the same clocks of the driver KMeans.fit ran (KMeans.timings_);
    - py_layer: KMeans.fit's wall time minus the time inside the native call
      (timings_['native_call']): validation, input checks, building the estimator's attributes;
    - inside the native call but outside the driver's clocks, done by the CLI as well: the
      column-statistics pass of fit_lloyd, the final labelling pass, lending the array.
    overhead = (py_engine + py_layer) / cli_engine - 1 (target < 5 %)."""
    n, d, k, iters = args.overhead_n, 8, 8, 20
    path = data.path("synth", n, d, k)
    X = segforge.read_features(path).X
    C0 = starting_centres(X, k)
    tmp = tempfile.mkdtemp(prefix="py_bench_", dir=args.data)
    init = os.path.join(tmp, "init.h5")
    import h5py
    with h5py.File(init, "w") as f:  # a bare file with only /centroids is an --init file
        f["/centroids"] = C0
    log(f"overhead at N={n}: {args.overhead_reps} reps")

    def cli():
        out = os.path.join(tmp, "m.h5")
        metrics = os.path.join(tmp, "metrics.json")
        for p in (out, metrics, out[:-3] + ".segments.json"):
            if os.path.exists(p):
                os.remove(p)
        t0 = time.perf_counter()
        # All CPUs for the child (see ALL_CPUS).
        subprocess.run([data.tool("segforge"), "fit", path, "-k", str(k), "--init", init, "--n-init", "1",
                        "--max-iter", str(iters), "--tol", "0", "--refine", "none", "--device", "cpu",
                        "--silhouette", "none", "-o", out, "--metrics", metrics],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       preexec_fn=lambda: os.sched_setaffinity(0, ALL_CPUS))
        wall = time.perf_counter() - t0
        with open(metrics) as f:
            m = json.load(f)
        t = m["timings"]
        return {"engine": t["init"] + t["iterations"], "read": t["read"], "total": t["total"], "wall": wall,
                "n_iter": m["n_iter"], "inertia": m["inertia"], "device": m["device"]}

    def py():
        km = segforge.KMeans(k, init=C0, n_init=1, max_iter=iters, tol=0.0, device="cpu")
        t0 = time.perf_counter()
        km.fit(X)
        wall = time.perf_counter() - t0
        t = km.timings_
        return {"engine": t["init"] + t["iterations"], "labels": t["labels"], "native": t["native_call"],
                "device": km.device_,
                "wall": wall, "layer": wall - t["native_call"], "n_iter": km.n_iter_, "inertia": km.inertia_}

    res = alternate([("cli", cli), ("python", py)], args.overhead_reps)
    med = lambda rs, key: statistics.median(r[key] for r in rs)  # noqa: E731
    c, p = res["cli"], res["python"]
    out = {"cli_engine_s": med(c, "engine"), "cli_read_s": med(c, "read"), "cli_total_s": med(c, "total"),
           "cli_wall_s": med(c, "wall"), "py_engine_s": med(p, "engine"), "py_labels_s": med(p, "labels"),
           "py_wall_s": med(p, "wall"), "py_native_s": med(p, "native"), "py_layer_s": med(p, "layer"),
           "n_iter": [c[0]["n_iter"], p[0]["n_iter"]], "inertia": [c[0]["inertia"], p[0]["inertia"]],
           "devices": [c[0]["device"], p[0]["device"]], "raw": res}
    out["engine_ratio"] = out["py_engine_s"] / out["cli_engine_s"]
    out["overhead"] = (out["py_engine_s"] + out["py_layer_s"]) / out["cli_engine_s"] - 1
    log(f"  CLI engine {out['cli_engine_s']:.4f} s, Python engine {out['py_engine_s']:.4f} s, "
        f"Python layer {out['py_layer_s']:.4f} s: overhead {100 * out['overhead']:+.2f} %")
    return out


def markdown(rows, ov, meta):
    L = [f"- Machine: {meta['machine']}. Date: {meta['date']}. Commit: `{meta['commit']}`.",
         f"- Command: `{meta['command']}` ({meta['minutes']:.1f} min); load average before {meta['load_before']}, after {meta['load_after']}.",
         f"- {meta['versions']}", "",
         "| workload | N × D, K | segforge ms/iter | sklearn ms/iter | speed-up | iters | inertia (float64) segforge / sklearn, rel. diff |",
         "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "ms_per_iter" not in r["segforge"]:
            continue
        a, b = r["segforge"], r["sklearn"]
        rel = abs(a["inertia64"] - b["inertia64"]) / b["inertia64"]
        L.append(f"| {r['workload']} | {r['n']:,} × {r['d']}, {r['k']} | {a['ms_per_iter']:.3g} | {b['ms_per_iter']:.3g} | "
                 f"{b['ms_per_iter'] / a['ms_per_iter']:.2f}× | {a['n_iter']} / {b['n_iter']} | "
                 f"{a['inertia64']:.6g} / {b['inertia64']:.6g}, {rel:.1e} |")
    L += ["", "| workload | N × D, K | segforge s | sklearn s | speed-up | score segforge / sklearn, abs. diff |",
          "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "median_s" not in r["segforge"]:
            continue
        a, b = r["segforge"], r["sklearn"]
        L.append(f"| {r['workload']} | {r['n']:,} × {r['d']}, {r['k']} | {a['median_s']:.3g} | {b['median_s']:.3g} | "
                 f"{b['median_s'] / a['median_s']:.1f}× | {a['score']:.6f} / {b['score']:.6f}, {abs(a['score'] - b['score']):.1e} |")
    if ov:
        L += ["", "Python layer over the CLI engine, lloyd_1m_d8_k8 (1,000,000 × 8, K = 8, 20 iterations, same --init centres), medians:", "",
              "| measure | seconds |", "| --- | --- |",
              f"| CLI engine: metrics.json timings init + iterations | {ov['cli_engine_s']:.4f} |",
              f"| Python engine: KMeans.timings_ init + iterations (same driver clocks) | {ov['py_engine_s']:.4f} |",
              f"| Python layer: KMeans.fit wall time − time inside the native call (validation, attributes) | {ov['py_layer_s']:.4f} |",
              f"| Python KMeans.fit wall time | {ov['py_wall_s']:.4f} |",
              f"| of which inside the native call | {ov['py_native_s']:.4f} |",
              f"| of which the final labelling pass (the CLI runs it too) | {ov['py_labels_s']:.4f} |",
              f"| CLI for comparison: read {ov['cli_read_s']:.4f}, total {ov['cli_total_s']:.4f}, process wall {ov['cli_wall_s']:.4f} | |",
              "",
              f"Overhead = (Python engine + Python layer) / CLI engine − 1 = **{100 * ov['overhead']:+.2f} %** (target < 5 %); "
              f"Python engine / CLI engine = {ov['engine_ratio']:.3f}; n_iter {ov['n_iter'][0]} / {ov['n_iter'][1]}, "
              f"inertia {ov['inertia'][0]:.8g} / {ov['inertia'][1]:.8g}; CLI: {ov['devices'][0]}; Python: {ov['devices'][1]}."]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--data", default=os.path.join(ROOT, "out", "bench", "peers"))
    ap.add_argument("--datasets", default=os.environ.get("SEGFORGE_DATASETS", os.path.join(ROOT, "..", "shared", "datasets")))
    ap.add_argument("--only", choices=["lloyd", "silhouette", "overhead"], action="append", default=[])
    ap.add_argument("--overhead-reps", type=int, default=5)
    ap.add_argument("--overhead-n", type=int, default=1_000_000, help=argparse.SUPPRESS)  # smoke runs
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    only = set(args.only) or {"lloyd", "silhouette", "overhead"}
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        if subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD"]).returncode != 0:
            commit += " (with uncommitted changes)"
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    data = Data(args)
    t0 = time.time()
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    rows, ov = [], None
    if "lloyd" in only:
        bench_lloyd(data, rows)
    if "silhouette" in only:
        bench_silhouette(data, rows)
    if "overhead" in only:
        ov = overhead(data, args)
    pools = "; ".join(f"{p['internal_api']} {p.get('version') or ''} ({p['num_threads']} threads)" for p in threadpool_info())
    eng = segforge._common.engine("cpu")
    meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; "
                       "shared with other engineers' builds and tests (load average below)",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit, "command": "PYTHONPATH=build/python " + " ".join(["bench/py_bench.py"] + sys.argv[1:]),
            "minutes": (time.time() - t0) / 60, "load_before": load_before,
            "load_after": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "versions": f"Python {platform.python_version()}, NumPy {np.__version__}, scikit-learn {sklearn.__version__}; "
                        f"threadpoolctl: {pools}. segforge {segforge.__version__}: {eng.backend} backend, {eng.device}."}
    md = markdown(rows, ov, meta)
    print(md)
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "overhead": ov, "meta": meta}, f, indent=1, default=float)


if __name__ == "__main__":
    main()
