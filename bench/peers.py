#!/usr/bin/python3
"""segforge against its peers and against the hardware, on the same HDF5 files and the same
starting centres: prints markdown tables (and, with --json, every raw measurement).

  Lloyd      segforge (bench/segforge_bench) | scikit-learn KMeans(algorithm="lloyd") |
             FAISS Kmeans (CPU, every point used: max_points_per_centroid >= N/K)
  mini-batch segforge | scikit-learn MiniBatchKMeans, same batch size and number of steps
  silhouette segforge's exact silhouette | sklearn.metrics.silhouette_score, same labels

Each measurement runs in its own process (so peak RSS is its own); programs alternate within a
repetition and the first one rotates between repetitions; medians over repetitions. The inertia
of every final set of centres is recomputed here in float64, the same way for all, and compared
with scikit-learn's. The floor column is the roofline of this machine, measured at the start and
the end of the run: max(bytes / bandwidth, flop / arithmetic rate) per iteration (or step, or
silhouette), the rate the best of SGEMM (NumPy/OpenBLAS, Eigen) and the FMA peak.

Run with Debian's Python (/usr/bin/python3: python3-sklearn, python3-faiss, python3-h5py) after
scripts/setup.sh and scripts/build.sh:

  OMP_PROC_BIND=true bench/peers.py                 # every workload (about 10 minutes on 2 cores)
  bench/peers.py --quick                            # small shapes, one repetition (under a minute)
  bench/peers.py --only lloyd_1m_d32_k64 --reps 5   # one workload (--list names them)
  bench/peers.py --build build-bench --json out/bench/peers.json
  nice -n -15 bench/peers.py --quiet-wait 120       # on a shared machine: wait for idle CPUs

Not a test and not run in CI: the numbers go in bench/RESULTS.md.
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time

try:
    import h5py
    import numpy as np
except ImportError as e:  # e.g. a python3 first on PATH that is not Debian's
    raise SystemExit(f"peers.py: {e}; run it with Debian's /usr/bin/python3 (python3-numpy, "
                     "python3-h5py, python3-sklearn, python3-faiss: scripts/setup.sh)")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# ---------------------------------------------------------------------------------------------
# Workloads. kind: lloyd (iters), minibatch (batch, epochs), silhouette (labels from the blobs).
# quick: the shapes of --quick.

WORKLOADS = [
    dict(name="lloyd_1m_d8_k8", kind="lloyd", n=1_000_000, d=8, k=8, iters=20,
         quick=dict(n=50_000, iters=5), note="RFM regime"),
    dict(name="lloyd_1m_d32_k64", kind="lloyd", n=1_000_000, d=32, k=64, iters=20,
         quick=dict(n=50_000, iters=5)),
    dict(name="lloyd_200k_d128_k1024", kind="lloyd", n=200_000, d=128, k=1024, iters=10,
         quick=dict(n=10_000, k=128, iters=3)),
    dict(name="lloyd_online_retail_k5", kind="lloyd", source="online_retail", k=5, iters=20,
         quick=dict(iters=5), note="real: segforge-prep rfm on the Online Retail sample"),
    dict(name="minibatch_10m_d16_k16", kind="minibatch", n=10_000_000, d=16, k=16, batch=1024,
         epochs=1, init="kmeans++", quick=dict(n=200_000)),
    dict(name="silhouette_20k_d16", kind="silhouette", n=20_000, d=16, k=8,
         quick=dict(n=2_000)),
    dict(name="silhouette_100k_d16", kind="silhouette", n=100_000, d=16, k=8, max_reps=2,
         quick=dict(n=5_000)),
    dict(name="silhouette_online_retail_k5", kind="silhouette", source="online_retail", k=5,
         quick=dict()),
]

IMPLS = {
    "lloyd": ["segforge", "sklearn", "faiss"],
    "minibatch": ["segforge", "sklearn"],
    "silhouette": ["segforge", "sklearn"],
}

ONLINE_RETAIL_CSV = "online_retail/online_retail_sample_40000.csv"


# ---------------------------------------------------------------------------------------------
# Worker side: one measurement of a Python peer, in its own process. Prints one JSON line.

def status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux: 5 > /proc/self/clear_refs), so the peak measured
    afterwards belongs to the task, not to loading the data. False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def read_matrix(path, dataset="/features"):
    with h5py.File(path, "r") as f:
        return np.ascontiguousarray(f[dataset][...], dtype=np.float32)


def threadpools():
    from threadpoolctl import threadpool_info
    return [dict(api=p["internal_api"], version=p.get("version"),
                 layer=p.get("threading_layer"), threads=p["num_threads"],
                 arch=p.get("architecture"), path=p.get("filepath"))
            for p in threadpool_info()]


def worker(spec):
    task, impl = spec["task"], spec["impl"]
    out = dict(impl=impl, task=task)
    if task == "env":
        import faiss
        import sklearn
        import numpy  # noqa: F401
        import sklearn.cluster  # noqa: F401  (loads its OpenMP runtime)
        out.update(python=sys.version.split()[0], numpy=np.__version__, sklearn=sklearn.__version__,
                   faiss=faiss.__version__, faiss_threads=faiss.omp_get_max_threads(),
                   threadpools=threadpools())
        print(json.dumps(out))
        return
    if task == "sgemm":
        n = spec.get("size", 4096)
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = a @ b
        times = []
        for _ in range(spec.get("reps", 5)):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - t0)
        flop = 2.0 * n ** 3
        out.update(size=n, gflops=flop / min(times) / 1e9, gflops_median=flop / np.median(times) / 1e9,
                   threadpools=threadpools())
        print(json.dumps(out))
        return

    x = read_matrix(spec["features"])
    n, d = x.shape
    out.update(n=n, d=d)
    if task in ("lloyd", "minibatch"):
        c0 = read_matrix(spec["init"], "/centroids")
        k = c0.shape[0]
        out["k"] = k
    rss_before = status_mib("VmRSS")
    out["peak_reset"] = reset_peak_rss()
    if task == "lloyd" and impl == "sklearn":
        from sklearn.cluster import KMeans
        km = KMeans(n_clusters=k, init=c0, n_init=1, max_iter=spec["iters"], tol=0.0,
                    algorithm="lloyd")
        t0 = time.perf_counter()
        km.fit(x)
        fit_s = time.perf_counter() - t0
        out.update(n_iter=int(km.n_iter_), inertia=float(km.inertia_),
                   ms_per_iter=1e3 * fit_s / km.n_iter_, fit_s=fit_s)
        centroids = km.cluster_centers_
    elif task == "lloyd" and impl == "faiss":
        import faiss
        # Every point is used (FAISS otherwise subsamples to 256·K points); no early stop.
        km = faiss.Kmeans(d, k, niter=spec["iters"], verbose=False, seed=1234,
                          max_points_per_centroid=int(math.ceil(n / k)) + 1,
                          min_points_per_centroid=1)
        t0 = time.perf_counter()
        km.train(x, init_centroids=c0)
        fit_s = time.perf_counter() - t0
        out.update(n_iter=spec["iters"], inertia=float(km.obj[-1]),
                   ms_per_iter=1e3 * fit_s / spec["iters"], fit_s=fit_s,
                   threads=faiss.omp_get_max_threads())
        centroids = km.centroids
    elif task == "minibatch" and impl == "sklearn":
        from sklearn.cluster import MiniBatchKMeans
        # Same rule as segforge_bench: epochs·N/batch steps, no early stop, the default
        # reassignment; compute_labels=False: the inertia is recomputed by the parent.
        km = MiniBatchKMeans(n_clusters=k, init=c0, n_init=1, batch_size=spec["batch"],
                             max_iter=spec["epochs"], tol=0.0, max_no_improvement=None,
                             reassignment_ratio=0.01, compute_labels=False,
                             random_state=spec["seed"])
        t0 = time.perf_counter()
        km.fit(x)
        fit_s = time.perf_counter() - t0
        out.update(n_steps=int(km.n_steps_), us_per_step=1e6 * fit_s / km.n_steps_,
                   fit_s=fit_s, seed=spec["seed"], batch_size=spec["batch"])
        centroids = km.cluster_centers_
    elif task == "silhouette" and impl == "sklearn":
        from sklearn.metrics import silhouette_score
        with h5py.File(spec["labels"], "r") as f:
            labels = f["/labels"][...].astype(np.int32)
        t0 = time.perf_counter()
        score = silhouette_score(x, labels)
        out.update(score=float(score), silhouette_s=time.perf_counter() - t0,
                   k=int(labels.max()) + 1)
        centroids = None
    else:
        raise SystemExit(f"peers.py worker: no {impl} for {task}")
    out.update(rss_before_mb=rss_before, peak_rss_mb=status_mib("VmHWM"),
               threadpools=threadpools())
    if centroids is not None and spec.get("centroids_out"):
        np.save(spec["centroids_out"], np.asarray(centroids, dtype=np.float32))
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------
# Driver side.

def log(msg):
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_json(cmd, timeout, env=None):
    """Runs cmd; returns the JSON objects it printed on stdout (one per line)."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


def py_worker(spec, timeout, env=None):
    return run_json([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                    timeout, env)[-1]


def cpu_busy(seconds=1.0):
    """Fraction of all CPUs busy (not idle or iowait) over `seconds`, from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(max_wait, threshold):
    """Waits (up to max_wait seconds) until other programs use at most `threshold` of the CPUs;
    returns the busy fraction seen last. The machines these run on are shared."""
    deadline = time.time() + max_wait
    busy = cpu_busy()
    while busy > threshold and time.time() < deadline:
        time.sleep(5)
        busy = cpu_busy()
    return busy


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return f"{model}, {os.cpu_count()} CPUs, {mem:.0f} GiB, {platform.platform()}"


def git_commit():
    try:
        c = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return c + (" (working tree has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


class Data:
    """Makes (once) and caches the HDF5 inputs under --data."""

    def __init__(self, args):
        self.dir = args.data
        self.build = args.build
        self.datasets = args.datasets
        os.makedirs(self.dir, exist_ok=True)

    def tool(self, name):
        return os.path.join(self.build, "tools", name)

    def synth(self, n, d, k):
        path = os.path.join(self.dir, f"synth_{n}_{d}_{k}.h5")
        if not os.path.exists(path):
            log(f"making {path}")
            subprocess.run([self.tool("segforge"), "synth", "-o", path, "--rows", str(n),
                            "--features", str(d), "--segments", str(k), "--seed", "3"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return path

    def blobs(self, n, d, k):
        """Gaussian blobs with their true labels in /labels (the silhouette's labelling)."""
        path = os.path.join(self.dir, f"blobs_{n}_{d}_{k}.h5")
        if not os.path.exists(path):
            log(f"making {path}")
            subprocess.run([self.tool("segforge-prep"), "synth", "blobs", "-n", str(n), "-d", str(d),
                            "-k", str(k), "--seed", "3", "--spread", "3", "--std", "1",
                            "-o", path], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return path

    def online_retail(self):
        csv = os.path.join(self.datasets, ONLINE_RETAIL_CSV)
        if not os.path.exists(csv):
            return None
        path = os.path.join(self.dir, "online_retail_rfm.h5")
        if not os.path.exists(path):
            log(f"making {path} (segforge-prep rfm {csv})")
            subprocess.run([self.tool("segforge-prep"), "rfm", csv, "-o", path], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return path

    def init(self, features, k, method="rows"):
        """Starting centres as /centroids; every program starts from them. rows: K distinct
        random rows (seeded; Lloyd, whose trajectory is then the same for every program).
        kmeans++: scikit-learn's kmeans_plusplus on 100 000 seeded rows (mini-batch, so that the
        seed of the batches, not a centre stuck between two clusters, makes the spread)."""
        path = features[:-3] + (f".init{k}.h5" if method == "rows" else f".initpp{k}.h5")
        if not os.path.exists(path):
            with h5py.File(features, "r") as f:
                n = f["/features"].shape[0]
                if method == "rows":
                    rows = np.sort(np.random.default_rng(0).choice(n, size=k, replace=False))
                    c = f["/features"][rows, :].astype(np.float32)
                else:
                    from sklearn.cluster import kmeans_plusplus
                    m = min(n, 100_000)
                    rows = np.sort(np.random.default_rng(0).choice(n, size=m, replace=False))
                    sample = f["/features"][...][rows, :].astype(np.float32)  # h5py's point
                    # selection is far slower than reading everything
                    c, _ = kmeans_plusplus(sample, k, random_state=0)
            with h5py.File(path, "w") as f:
                f["/centroids"] = np.asarray(c, dtype=np.float32)
        return path

    def nearest_labels(self, features, k):
        """Labels of a real file for the silhouette: a short Lloyd run (scikit-learn) from the
        seeded rows, written to /labels."""
        path = features[:-3] + f".labels{k}.h5"
        if not os.path.exists(path):
            from sklearn.cluster import KMeans
            x = read_matrix(features)
            c0 = read_matrix(self.init(features, k), "/centroids")
            labels = KMeans(k, init=c0, n_init=1, max_iter=100).fit(x).labels_.astype(np.int32)
            with h5py.File(path, "w") as f:
                f["/labels"] = labels
        return path


def inertia64(features, centroids, chunk=1 << 18):
    """Σ min_c ||x − c||² in float64, read in row chunks: the same yardstick for every program."""
    c = np.asarray(centroids, dtype=np.float64)
    cn = (c * c).sum(1)
    total = 0.0
    with h5py.File(features, "r") as f:
        ds = f["/features"]
        for i in range(0, ds.shape[0], chunk):
            x = ds[i:i + chunk].astype(np.float64)
            d2 = (x * x).sum(1)[:, None] - 2.0 * (x @ c.T) + cn[None, :]
            total += np.maximum(d2.min(1), 0.0).sum()
    return total


def read_centroids(path):
    if path.endswith(".npy"):
        return np.load(path)
    with h5py.File(path, "r") as f:
        return f["/centroids"][...]


def med(values):
    return float(np.median(values)) if values else float("nan")


def fmt(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}g}"


def measure_roofline(args):
    """Copy and read bandwidth, FMA peak, Eigen SGEMM (segforge_roofline) and NumPy/OpenBLAS
    SGEMM, measured after waiting for a quiet moment (the same --quiet-wait)."""
    busy = wait_quiet(args.quiet_wait, args.quiet_threshold) if args.quiet_wait > 0 else cpu_busy(0.5)
    log(f"roofline (CPUs busy before: {100 * busy:.0f}%)")
    roof = run_json([os.path.join(args.build, "bench", "segforge_roofline")]
                    + (["--mib", "64", "--reps", "3"] if args.quick else []), 300)[-1]
    sg = py_worker(dict(task="sgemm", impl="numpy", size=2048 if args.quick else 4096), 300)
    roof["openblas_sgemm_gflops"] = sg["gflops"]
    roof["busy_before"] = busy
    return roof


def add_floors(rows, roof):
    """The floor of each row: max(bytes / bandwidth, flop / arithmetic rate) per iteration, step
    or silhouette; bandwidth the better of copy and read, the rate the best of the two SGEMMs and
    the FMA peak (OpenBLAS 0.3.21 runs its Haswell AVX2 kernels on AVX-512 cores it does not
    know; segforge's kernels beat its SGEMM)."""
    roof["sgemm_gflops"] = max(roof["openblas_sgemm_gflops"], roof["eigen_sgemm_gflops"])
    roof["bandwidth_gbs"] = max(roof["copy_gbs"], roof["read_gbs"])
    roof["arith_gflops"] = max(roof["sgemm_gflops"], roof["fma_gflops"])
    bw, rate = roof["bandwidth_gbs"] * 1e9, roof["arith_gflops"] * 1e9
    for r in rows:
        n, d, k = r["n"], r["d"], r["k"]
        if r["kind"] == "lloyd":
            floor = max(4.0 * n * d / bw, 2.0 * n * k * d / rate) * 1e3  # ms per iteration
        elif r["kind"] == "minibatch":
            b = r["batch"]
            floor = max(4.0 * b * d / bw, 2.0 * b * k * d / rate) * 1e6  # µs per step
        else:
            floor = max(4.0 * n * d / bw, 2.0 * n * n * d / rate)  # s
        r["floor"] = floor
        r["over_floor"] = r["time"] / floor


def run_workload(w, args, data, rows_out, raw):
    kind, name = w["kind"], w["name"]
    if w.get("source") == "online_retail":
        features = data.online_retail()
        if features is None:
            log(f"{name}: skipped, {ONLINE_RETAIL_CSV} not under {data.datasets}")
            return
    elif kind == "silhouette":
        features = data.blobs(w["n"], w["d"], w["k"])
    else:
        features = data.synth(w["n"], w["d"], w["k"])
    with h5py.File(features, "r") as f:
        n, d = f["/features"].shape
    k = w["k"]
    impls = list(IMPLS[kind])
    if args.build_b:
        impls.insert(1, "segforge_b")
    if args.impls:
        impls = [i for i in impls if i in args.impls]
    reps = min(args.reps, w.get("max_reps", args.reps)) if not args.quick else 1
    bench = os.path.join(args.build, "bench", "segforge_bench")
    tmp = os.path.join(data.dir, "results")
    os.makedirs(tmp, exist_ok=True)
    timeout = args.timeout

    if kind == "silhouette":
        labels = (features if w.get("source") != "online_retail"
                  else data.nearest_labels(features, k))
    else:
        init = data.init(features, k, w.get("init", "rows"))

    results = {i: [] for i in impls}
    log(f"{name}: N={n} D={d} K={k}, {reps} repetition(s) of {', '.join(impls)}")
    for rep in range(reps):
        order = impls[rep % len(impls):] + impls[:rep % len(impls)]
        seed = rep  # mini-batch: one seed per repetition, the same for both programs
        for impl in order:
            busy = wait_quiet(args.quiet_wait, args.quiet_threshold) if args.quiet_wait > 0 else cpu_busy(0.5)
            cout = os.path.join(tmp, f"{name}.{impl}.{rep}")
            if impl in ("segforge", "segforge_b"):
                exe = bench if impl == "segforge" else os.path.join(args.build_b, "bench", "segforge_bench")
                cmd = [exe, kind, features, "--threads", str(args.threads)]
                if kind == "lloyd":
                    cmd += ["--init", init, "--iters", str(w["iters"]), "--centroids-out", cout + ".h5"]
                elif kind == "minibatch":
                    cmd += ["--init", init, "--batch-size", str(w["batch"]), "--epochs",
                            str(w["epochs"]), "--seed", str(seed), "--centroids-out", cout + ".h5"]
                else:
                    cmd += ["--labels", labels]
                r = run_json(cmd, timeout)[-1]
                r["impl"] = impl
                if kind != "silhouette":
                    r["centroids_file"] = cout + ".h5"
            else:
                spec = dict(impl=impl, task=kind, features=features)
                if kind == "lloyd":
                    spec.update(init=init, iters=w["iters"], centroids_out=cout + ".npy")
                elif kind == "minibatch":
                    spec.update(init=init, batch=w["batch"], epochs=w["epochs"], seed=seed,
                                centroids_out=cout + ".npy")
                else:
                    spec.update(labels=labels)
                env = None
                if impl == "faiss" and args.faiss_wait_policy:
                    env = dict(os.environ, OMP_WAIT_POLICY=args.faiss_wait_policy)
                r = py_worker(spec, timeout, env)
                if env:
                    r["omp_wait_policy"] = args.faiss_wait_policy
                if kind != "silhouette":
                    r["centroids_file"] = cout + ".npy"
            if kind != "silhouette":
                r["inertia64"] = inertia64(features, read_centroids(r["centroids_file"]))
            r["workload"] = name
            r["rep"] = rep
            r["busy_before"] = busy
            results[impl].append(r)
            raw.append(r)
            t = (r.get("ms_per_iter"), "ms/iter") if kind == "lloyd" else \
                (r.get("us_per_step"), "us/step") if kind == "minibatch" else \
                (r.get("phases", r).get("silhouette_s"), "s")
            log(f"  rep {rep} {impl}: {t[0]:.4g} {t[1]}, peak RSS {r['peak_rss_mb']:.0f} MB "
                f"(CPUs busy before: {100 * busy:.0f}%)")

    def timing(r):
        if kind == "lloyd":
            return r["ms_per_iter"]
        if kind == "minibatch":  # whole fit / steps for every program
            return r.get("us_per_step_fit", r["us_per_step"])
        return r.get("phases", r).get("silhouette_s")

    ref_inertia = med([r["inertia64"] for r in results.get("sklearn", [])]) if kind != "silhouette" else None
    ref_score = med([r["score"] for r in results.get("sklearn", [])]) if kind == "silhouette" else None
    seg_time = med([timing(r) for r in results.get("segforge", [])])
    for impl in impls:
        rs = results[impl]
        t = med([timing(r) for r in rs])
        row = dict(workload=name, kind=kind, impl=impl, n=n, d=d, k=k, reps=len(rs), time=t,
                   segforge_speedup=t / seg_time if impl != "segforge" else 1.0,
                   peak_rss_mb=med([r["peak_rss_mb"] for r in rs]),
                   extra_rss_mb=med([r["peak_rss_mb"] - r["rss_before_mb"] for r in rs]),
                   note=w.get("note", ""))
        if kind == "lloyd":
            row.update(n_iter=med([r["n_iter"] for r in rs]), iters=w["iters"])
        if kind == "minibatch":
            row.update(n_steps=med([r["n_steps"] for r in rs]), batch=w["batch"])
        if kind != "silhouette":
            inertia = med([r["inertia64"] for r in rs])
            row.update(inertia=inertia, inertia_rel=abs(inertia - ref_inertia) / ref_inertia
                       if ref_inertia else float("nan"),
                       inertia_spread=(max(r["inertia64"] for r in rs) - min(r["inertia64"] for r in rs))
                       / inertia if inertia else float("nan"))
        else:
            score = med([r["score"] for r in rs])
            row.update(score=score, score_diff=abs(score - ref_score) if ref_score is not None else float("nan"))
        rows_out.append(row)


def markdown(rows, env, roof, header):
    out = []
    out += header
    out.append("")
    tp = "; ".join(f"{p['api']} {p['version'] or ''} ({p['layer'] or '-'}, {p['threads']} threads"
                   + (f", {p['arch']} kernels" if p.get("arch") else "") + ")"
                   for p in env["threadpools"])
    out.append(f"- Python {env['python']}, NumPy {env['numpy']}, scikit-learn {env['sklearn']}, "
               f"FAISS {env['faiss']} ({env['faiss_threads']} OpenMP threads"
               + (f", OMP_WAIT_POLICY={env['faiss_wait_policy']}" if env.get("faiss_wait_policy") else "")
               + f", max_points_per_centroid = ceil(N/K)+1: every row used); threadpoolctl: {tp}. "
               f"segforge: {env.get('segforge_device', '?')}.")
    out.append(f"- Roofline (measured at the start and the end of this run, the better of the two; "
               f"{roof['threads']} threads): copy {roof['copy_gbs']:.1f} GB/s, "
               f"read {roof['read_gbs']:.1f} GB/s (STREAM-style, best of 10, 256 MiB arrays); "
               f"SGEMM {roof['openblas_sgemm_gflops']:.0f} GFLOP/s (NumPy/OpenBLAS, 4096²), "
               f"{roof['eigen_sgemm_gflops']:.0f} GFLOP/s (Eigen, 2048²); FMA peak {roof['fma_gflops']:.0f} GFLOP/s "
               f"(register-resident, {roof['fma_lanes']} lanes). "
               f"Floor = max(bytes / {roof['bandwidth_gbs']:.1f} GB/s, flop / {roof['arith_gflops']:.0f} GFLOP/s): "
               f"the better bandwidth and the better of SGEMM and the FMA peak, so that it is a lower bound; "
               f"bytes = N·D·4 (a step: batch·D·4), flop = 2·N·K·D (a step: 2·batch·K·D; silhouette: 2·N²·D).")
    busy = env.get("busy", [])
    if busy:
        out.append(f"- Other programs' share of the CPUs in the second before each measurement: median "
                   f"{100 * float(np.median(busy)):.0f}%, max {100 * max(busy):.0f}%.")
    lloyd = [r for r in rows if r["kind"] == "lloyd"]
    if lloyd:
        out += ["", "Lloyd, ms per iteration (whole fit / n_iter; median over repetitions). "
                "Inertia: of each program's final centres, recomputed in float64.", "",
                "| workload | N × D, K | program | ms/iter | iters | inertia (float64) | rel. diff vs sklearn | segforge speed-up | floor ms/iter | × floor | peak RSS MB |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in lloyd:
            out.append(f"| {r['workload']} | {r['n']:,} × {r['d']}, {r['k']} | {r['impl']} | {fmt(r['time'])} | "
                       f"{r['n_iter']:.0f} | {r['inertia']:,.6g} | {r['inertia_rel']:.1e} | "
                       f"{'' if r['impl'] == 'segforge' else fmt(r['segforge_speedup']) + '×'} | "
                       f"{fmt(r['floor'])} | {fmt(r['over_floor'])} | {r['peak_rss_mb']:.0f} |")
    mb = [r for r in rows if r["kind"] == "minibatch"]
    if mb:
        out += ["", "Mini-batch, µs per step: whole fit / steps (segforge's fit includes a column-statistics "
                "pass and a final assignment pass over all rows; scikit-learn's, with compute_labels=False, "
                "its row-norms pass); same starting centres (k-means++), batch size and number of steps, no "
                "early stop, the default reassignment, one seed per repetition; inertia of the final centres "
                "on all rows in float64, median over seeds.", "",
                "| workload | N × D, K, batch | program | µs/step | steps | inertia (float64) | rel. diff vs sklearn | spread over seeds | segforge speed-up | floor µs/step | × floor | peak RSS MB |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in mb:
            out.append(f"| {r['workload']} | {r['n']:,} × {r['d']}, {r['k']}, {r['batch']} | {r['impl']} | "
                       f"{fmt(r['time'])} | {r['n_steps']:.0f} | {r['inertia']:,.6g} | {r['inertia_rel']:.1e} | "
                       f"{r['inertia_spread']:.1e} | "
                       f"{'' if r['impl'] == 'segforge' else fmt(r['segforge_speedup']) + '×'} | "
                       f"{fmt(r['floor'])} | {fmt(r['over_floor'])} | {r['peak_rss_mb']:.0f} |")
    sil = [r for r in rows if r["kind"] == "silhouette"]
    if sil:
        out += ["", "Exact silhouette, seconds (the same labels; float32 data). Extra RSS: peak during the "
                "call minus the RSS before it (data already loaded).", "",
                "| workload | N × D, K | program | seconds | score | abs. diff vs sklearn | segforge speed-up | floor s | × floor | extra RSS MB | peak RSS MB |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in sil:
            out.append(f"| {r['workload']} | {r['n']:,} × {r['d']}, {r['k']} | {r['impl']} | {fmt(r['time'])} | "
                       f"{r['score']:.6f} | {r['score_diff']:.1e} | "
                       f"{'' if r['impl'] == 'segforge' else fmt(r['segforge_speedup']) + '×'} | "
                       f"{fmt(r['floor'])} | {fmt(r['over_floor'])} | {r['extra_rss_mb']:.1f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(out)


def check_blas(env, allow_any):
    apis = [p for p in env["threadpools"] if p["api"] not in ("openmp",)]
    ok = any(p["api"] == "openblas" for p in apis)
    if not ok and not allow_any:
        raise SystemExit("peers.py: NumPy is not using OpenBLAS (threadpoolctl: "
                         f"{apis}); Debian's reference BLAS is ~10x slower and would flatter "
                         "segforge. Install libopenblas0-pthread (scripts/setup.sh) or pass "
                         "--allow-any-blas.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build folder with tools/segforge and bench/segforge_bench (default: build)")
    ap.add_argument("--data", default=os.path.join(ROOT, "out", "bench", "peers"),
                    help="where the HDF5 inputs are made and kept (default: out/bench/peers)")
    ap.add_argument("--datasets", default=os.environ.get("SEGFORGE_DATASETS",
                                                          os.path.join(ROOT, "..", "shared", "datasets")),
                    help="real datasets folder (Online Retail)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (medians); default 3")
    ap.add_argument("--threads", type=int, default=0, help="segforge threads (0: all)")
    ap.add_argument("--only", action="append", default=[],
                    help="workload name (or a prefix: lloyd, minibatch, silhouette); repeatable")
    ap.add_argument("--impls", action="append", default=[], help="programs (segforge, sklearn, faiss)")
    ap.add_argument("--quick", action="store_true", help="small shapes, one repetition: a smoke run")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument("--json", help="also write every raw measurement here")
    ap.add_argument("--markdown", help="also write the tables here")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    ap.add_argument("--build-b", help="A/B: also run bench/segforge_bench of this second build "
                                      "(rows 'segforge_b'; its speed-up column is A's over B)")
    ap.add_argument("--faiss-wait-policy", default="passive",
                    help="OMP_WAIT_POLICY for FAISS (default passive: its spinning OpenMP threads "
                         "otherwise fight OpenBLAS's threads for the cores, 3-4x slower on 2 cores); "
                         "'' leaves it unset")
    ap.add_argument("--commit", help="the commit to print (default: git rev-parse --short HEAD)")
    ap.add_argument("--quiet-wait", type=float, default=0,
                    help="before each measurement, wait up to this many seconds for the other "
                         "programs on the machine to use at most --quiet-threshold of the CPUs")
    ap.add_argument("--quiet-threshold", type=float, default=0.15,
                    help="busy fraction of all CPUs counted as quiet (default 0.15)")
    ap.add_argument("--allow-any-blas", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.list:
        for w in WORKLOADS:
            print(f"{w['name']:32s} {w['kind']}")
        return

    os.environ.setdefault("OMP_PROC_BIND", "true")
    for exe in [os.path.join(args.build, "bench", "segforge_bench"),
                os.path.join(args.build, "bench", "segforge_roofline"),
                os.path.join(args.build, "tools", "segforge")]:
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"peers.py: {exe} not found; run scripts/build.sh (or pass --build DIR)")

    workloads = []
    for w in WORKLOADS:
        if args.only and not any(w["name"] == o or w["name"].startswith(o) for o in args.only):
            continue
        w = dict(w)
        if args.quick:
            w.update(w.get("quick", {}))
            w["name"] += "_quick"
        workloads.append(w)
    if not workloads:
        raise SystemExit(f"peers.py: no workload matches {args.only}; see --list")

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = loadavg()
    t_start = time.time()
    try:
        env = py_worker(dict(task="env", impl="python"), 300)
    except RuntimeError as e:
        raise SystemExit(f"peers.py: the peers do not load under {sys.executable} ({e}); run it "
                         "with Debian's /usr/bin/python3 (python3-sklearn, python3-faiss: scripts/setup.sh)")
    check_blas(env, args.allow_any_blas)
    roof_start = measure_roofline(args)

    data = Data(args)
    rows, raw = [], []
    for w in workloads:
        run_workload(w, args, data, rows, raw)
    roof_end = measure_roofline(args)
    # A floor must be a lower bound: the best of the two measurements (start and end of the run).
    roof = {k: max(v, roof_end[k]) if isinstance(v, (int, float)) else v for k, v in roof_start.items()}
    roof["runs"] = [roof_start, roof_end]
    add_floors(rows, roof)
    load_after = loadavg()
    minutes = (time.time() - t_start) / 60

    header = [f"- Machine: {machine()}.",
              f"- Date: {started}. Commit: `{args.commit or git_commit()}`. Build: `{os.path.relpath(args.build, ROOT)}`.",
              f"- Command: `OMP_PROC_BIND={os.environ.get('OMP_PROC_BIND')} {' '.join(['bench/peers.py'] + sys.argv[1:])}` "
              f"({minutes:.1f} min, niceness {os.nice(0)}); load average before {load_before}, after {load_after}."]
    if args.build_b:
        header.append(f"- segforge_b: the runner of `{args.build_b}` (A/B against `{args.build}`; its "
                      f"speed-up column is B's time / A's time: below 1 where B is faster).")
    env["busy"] = [r["busy_before"] for r in raw]
    env["faiss_wait_policy"] = args.faiss_wait_policy
    env["segforge_device"] = next((r["device"] for r in raw if r["impl"] == "segforge"), "?")
    text = markdown(rows, env, roof, header)
    print(text)
    for path in (args.markdown, args.json):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(env=env, roofline=roof, rows=rows, raw=raw, header=header,
                           load_before=load_before, load_after=load_after), f, indent=1)


if __name__ == "__main__":
    main()
