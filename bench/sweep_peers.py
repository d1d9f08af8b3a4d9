#!/usr/bin/python3
"""Choosing K, the user's whole job: `segforge sweep` against the equivalent scikit-learn loop on
the same HDF5 file. Wall time of each whole process (start, read, every fit and score, exit) and
its peak RSS, each run in its own process, alternating (the first program rotates), medians over
repetitions; prints markdown (and writes it to --markdown FILE).

  segforge      `segforge sweep FILE --k 2:12 -o sweep.json --device cpu`, its defaults otherwise:
                3 restarts per K (--n-init 3), silhouette auto (exact up to 100,000 rows, else a
                20,000-row sample), gap statistic with 10 reference sets (--gap-refs 10) of
                min(N, 10,000) rows, Davies-Bouldin, Calinski-Harabasz, elbow; all cores
                (--threads 0). Recommended K and per-K inertia from sweep.json.
  scikit-learn  `bench/sweep_peers.py --sklearn-child FILE --k 2:12`, in Debian's Python: reads
                /features (float32, kept float32) with h5py, then for K = 2..12
                KMeans(n_clusters=K, n_init=10, random_state=0) (algorithm 'lloyd', the default),
                silhouette_score(X, labels, sample_size=S, random_state=0) with S = None (exact)
                for N <= 100,000 else 20,000 (segforge's sample size), davies_bouldin_score,
                calinski_harabasz_score, and the gap statistic (Tibshirani, Walther & Hastie 2001)
                done the standard way: B = 10 reference sets drawn uniformly in the bounding box of
                min(N, 10,000) rows sampled from X, each clustered at every K; Gap(K) =
                mean_b log W*_Kb - log W_K on the sample; s_K = sd_K sqrt(1 + 1/B); K by the
                1-SE rule (the smallest K with Gap(K) >= Gap(K+1) - s_(K+1)). Silhouette and CH
                pick the highest, DB the lowest (ties: the smaller K). All cores (OpenMP default).

The quality check ("inertia vs scikit-learn") is the largest relative difference over K between
segforge's best-of-3 inertia and scikit-learn's best-of-10 inertia_, signed: + means segforge's
is higher (worse), at the K where it occurs.

Data: `segforge synth -o FILE --rows N --features D --segments 8` (8 true segments), made once per
(N, D) and cached in --out (default out/bench/sweep/, which git ignores).

Differences that are the programs' own, not the benchmark's (see src/select/sweep.cpp):
  - segforge's gap reference sets are uniform in the box of the data's principal components
    (Tibshirani's method (b)) over all rows, its log W_K is the full-data fit's, and each reference
    log W is put on the data's scale with + log(N / rows); the scikit-learn loop uses method (a),
    the bounding box of a row sample, and log W_K of a fit on that sample (the whole X when
    N <= 10,000, then the K-Means fit above is reused).
  - segforge's silhouette sample is stratified by segment; silhouette_score's is uniform.
  - segforge picks silhouette/DB/CH as the smallest K within 1% of the best, and no K when that is
    the top of the range; the scikit-learn loop takes the plain argmax/argmin.
  - segforge may refine each K's best restart by random swap (--refine auto, on small data).

  bench/sweep_peers.py                                   # N = 100k and 1M, D = 16, one repetition
  bench/sweep_peers.py --n 5000 --d 4 --reps 1 --timeout 120        # a smoke run, seconds
  bench/sweep_peers.py --n 100000 --reps 3 --markdown out/bench/sweep/table.md
  bench/sweep_peers.py --n 1000000 --segforge-only

Run with Debian's Python (/usr/bin/python3: numpy, scikit-learn, h5py) after scripts/setup.sh and
scripts/build.sh. Not a test and not run in CI.
"""
import argparse
import datetime
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np

from peers import git_commit, loadavg, machine  # bench/peers.py: the same header facts for every table

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.abspath(__file__)

# segforge sweep's defaults that the scikit-learn loop mirrors (tools/cmd_sweep.cpp, src/select/).
SILHOUETTE_EXACT_MAX = 100_000   # --silhouette auto: exact up to this many rows
SILHOUETTE_SAMPLE = 20_000       # ... else a sample of this many
GAP_REFS = 10                    # --gap-refs
GAP_ROWS = 10_000                # --gap-rows 0: min(N, 10 000)
# segforge clusters each gap reference set with the sweep's own Lloyd settings, restarts included
# (--n-init, 3 by default), without random-swap refinement: SweepParams::gap_lloyd in
# include/segforge/select.hpp, "default: as `lloyd` without random-swap refinement", and
# src/select/sweep.cpp. So the scikit-learn loop gives its reference fits the same 3 restarts.
GAP_REF_N_INIT = 3
SK_N_INIT = 10                   # scikit-learn 1.2's default, set explicitly


# ---- the scikit-learn side (run as its own process: bench/sweep_peers.py --sklearn-child) -------

def sklearn_child(path, k_min, k_max):
    t_start = time.perf_counter()
    from sklearn.cluster import KMeans
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
    t = {"import": time.perf_counter() - t_start}

    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        x = np.ascontiguousarray(f["features"][...], dtype=np.float32)
    t["read"] = time.perf_counter() - t0
    n, d = x.shape
    ks = list(range(k_min, k_max + 1))
    sample = None if n <= SILHOUETTE_EXACT_MAX else SILHOUETTE_SAMPLE
    for key in ("kmeans", "silhouette", "davies_bouldin", "calinski_harabasz", "gap"):
        t[key] = 0.0

    inertia, sil, db, ch = [], [], [], []
    for k in ks:
        t0 = time.perf_counter()
        km = KMeans(n_clusters=k, n_init=SK_N_INIT, random_state=0).fit(x)
        t1 = time.perf_counter()
        sil.append(float(silhouette_score(x, km.labels_, sample_size=sample, random_state=0)))
        t2 = time.perf_counter()
        db.append(float(davies_bouldin_score(x, km.labels_)))
        t3 = time.perf_counter()
        ch.append(float(calinski_harabasz_score(x, km.labels_)))
        t4 = time.perf_counter()
        inertia.append(float(km.inertia_))
        t["kmeans"] += t1 - t0
        t["silhouette"] += t2 - t1
        t["davies_bouldin"] += t3 - t2
        t["calinski_harabasz"] += t4 - t3

    # The gap statistic (Tibshirani, Walther & Hastie 2001), method (a): references uniform over
    # the range of each feature of the (sampled) data, drawn once and clustered at every K.
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    m = min(n, GAP_ROWS)
    xs = x if m == n else x[np.sort(rng.choice(n, size=m, replace=False))]
    lo, hi = xs.min(axis=0).astype(np.float64), xs.max(axis=0).astype(np.float64)
    refs = [rng.uniform(lo, hi, size=(m, d)).astype(np.float32) for _ in range(GAP_REFS)]
    log_w, log_w_ref = [], []
    for i, k in enumerate(ks):
        if m == n:
            w = inertia[i]  # the sample is X: the fit above
        else:
            w = KMeans(n_clusters=k, n_init=SK_N_INIT, random_state=0).fit(xs).inertia_
        log_w.append(np.log(w))
        log_w_ref.append([np.log(KMeans(n_clusters=k, n_init=GAP_REF_N_INIT, random_state=0).fit(r).inertia_)
                          for r in refs])
    log_w, log_w_ref = np.array(log_w), np.array(log_w_ref)       # [nk], [nk, B]
    gap = log_w_ref.mean(axis=1) - log_w
    s = log_w_ref.std(axis=1) * np.sqrt(1.0 + 1.0 / GAP_REFS)      # sd with 1/B, as in the paper
    gap_k = next((ks[i] for i in range(len(ks) - 1) if gap[i] >= gap[i + 1] - s[i + 1]), None)
    t["gap"] = time.perf_counter() - t0

    first = lambda v: ks[int(v)]  # np.argmax/argmin: the first, i.e. the smaller K, on ties
    print(json.dumps(dict(
        n=n, d=d, ks=ks, inertia=inertia, silhouette=sil, davies_bouldin=db, calinski_harabasz=ch,
        gap=gap.tolist(), gap_s=s.tolist(), silhouette_sample=sample, gap_rows=m,
        chosen=dict(silhouette=first(np.argmax(sil)), gap=gap_k, davies_bouldin=first(np.argmin(db)),
                    calinski_harabasz=first(np.argmax(ch))),
        timings=t, seconds=time.perf_counter() - t_start)))


def sklearn_env():
    """Versions and thread pools of the scikit-learn side, from a process like the child."""
    code = r"""
import json, os, sys
import numpy, sklearn, sklearn.cluster, sklearn.metrics
out = dict(python=sys.version.split()[0], numpy=numpy.__version__, sklearn=sklearn.__version__)
try:
    from threadpoolctl import threadpool_info
    out["threadpools"] = [dict(api=p["internal_api"], version=p.get("version"), threads=p["num_threads"])
                          for p in threadpool_info()]
except ImportError:
    out["threadpools"] = None
print(json.dumps(out))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- running one process -------------------------------------------------------------------------

def run_timed(argv, timeout):
    """argv under /usr/bin/time in its own process group: (wall s, peak bytes, stdout, failure)."""
    t = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M"] + argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the program too, not only /usr/bin/time
        proc.communicate()
        return None, None, "", "over %d s" % timeout
    wall = time.perf_counter() - t
    lines = stderr.strip().splitlines() or ["?"]
    if proc.returncode != 0:
        why = "MemoryError" if "MemoryError" in stderr else "exit %d" % proc.returncode
        sys.stderr.write("%s failed (%s):\n%s\n" % (argv[0], why, "\n".join(lines[-6:])))
        return None, None, stdout, why
    return wall, int(lines[-1]) * 1024, stdout, None


def segforge_argv(cli, path, k_range, json_path):
    return [cli, "sweep", path, "--k", k_range, "-o", json_path, "--device", "cpu"]


def sklearn_argv(path, k_range):
    return [sys.executable, SCRIPT, "--sklearn-child", path, "--k", k_range]


def run_segforge(cli, path, k_range, out, timeout):
    json_path = os.path.join(out, "sweep.json")
    if os.path.exists(json_path):
        os.remove(json_path)
    wall, peak, _, failed = run_timed(segforge_argv(cli, path, k_range, json_path), timeout)
    if failed:
        return dict(failed=failed)
    with open(json_path) as f:
        sw = json.load(f)
    return dict(wall=wall, peak=peak, recommended=sw["recommended_k"],
                criteria={c: v["k"] for c, v in sw["criteria"].items()},
                inertia={r["k"]: r["inertia"] for r in sw["records"]},
                silhouette_method=sw.get("silhouette_method"), gap_rows=sw.get("gap_reference_rows"),
                n_init=sw.get("n_init"), timings=sw.get("timings", {}))


def run_sklearn(path, k_range, timeout):
    wall, peak, stdout, failed = run_timed(sklearn_argv(path, k_range), timeout)
    if failed:
        return dict(failed=failed)
    res = json.loads(stdout.strip().splitlines()[-1])
    res.update(wall=wall, peak=peak)
    return res


# ---- data and the report -------------------------------------------------------------------------

def make_data(cli, path, n, d, segments):
    tmp = path[:-3] + ".partial.h5"
    r = subprocess.run([cli, "synth", "-o", tmp, "--rows", str(n), "--features", str(d), "--segments",
                        str(segments)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("segforge synth failed: " + r.stderr)
    os.replace(tmp, path)


def segforge_version(cli):
    r = subprocess.run([cli, "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip() or "?"


def relpath(p):
    r = os.path.relpath(p, os.getcwd())
    return p if r.startswith("..") else r


def inertia_check(sf, sk):
    """The largest |relative difference| over K, signed (+: segforge's inertia is higher)."""
    worst = None
    for k, w in zip(sk["ks"], sk["inertia"]):
        if k not in sf["inertia"] or not w:
            continue
        rel = (sf["inertia"][k] - w) / w
        if worst is None or abs(rel) > abs(worst[0]):
            worst = (rel, k)
    if worst is None:
        return "–"
    return "%+.2g%% (K=%d)" % (100 * worst[0], worst[1])


def k_cell(k):
    return "–" if k in (None, 0) else str(k)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--sklearn-child":
        cp = argparse.ArgumentParser()
        cp.add_argument("--sklearn-child", required=True)
        cp.add_argument("--k", default="2:12")
        c = cp.parse_args()
        lo, hi = (int(v) for v in c.k.split(":"))
        sklearn_child(c.sklearn_child, lo, hi)
        return

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="segforge build folder")
    ap.add_argument("--n", type=int, action="append", help="rows (repeatable; default 100000 and 1000000)")
    ap.add_argument("--d", type=int, action="append", help="features (repeatable; default 16)")
    ap.add_argument("--segments", type=int, default=8, help="true segments of the synthetic data")
    ap.add_argument("--k", default="2:12", help="range of K, LOW:HIGH (both sides)")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per process")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "bench", "sweep"), help="data and sweep.json")
    ap.add_argument("--markdown", help="write the report to this file too")
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--sklearn-only", action="store_true", help="do not run segforge")
    only.add_argument("--segforge-only", action="store_true", help="do not run scikit-learn")
    a = ap.parse_args()
    lo, hi = (int(v) for v in a.k.split(":"))
    if not 2 <= lo <= hi:
        ap.error("--k LOW:HIGH with 2 <= LOW <= HIGH (scikit-learn's scores need K >= 2)")
    cli = os.path.join(a.build, "tools", "segforge")
    if not os.access(cli, os.X_OK):
        raise SystemExit("no segforge at %s: run scripts/build.sh (or pass --build)" % cli)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    ns = a.n or [100_000, 1_000_000]
    ds = a.d or [16]
    run_sf, run_sk = not a.sklearn_only, not a.segforge_only

    report = []

    def emit(line=""):
        print(line, flush=True)
        report.append(line)

    env = sklearn_env() if run_sk else None
    if env and env.get("threadpools") is not None:
        pools = ", ".join("%s%s: %d threads" % (p["api"], " " + p["version"] if p["version"] else "", p["threads"])
                          for p in env["threadpools"])
        threads = "threadpoolctl: " + pools
    elif env:
        threads = "threadpoolctl not importable: OpenMP's default (one thread per core)"
    else:
        threads = "not run"
    omp = os.environ.get("OMP_NUM_THREADS")
    data_path = os.path.join(relpath(out), "data_N_D_s%d.h5" % a.segments)
    emit("# Choosing K: `segforge sweep` vs the scikit-learn loop (the whole job)")
    emit()
    emit("- Machine: %s; load average %s at the start." % (machine(), loadavg()))
    emit("- Date: %s. Commit: `%s`. %s." % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                           git_commit(), segforge_version(cli)))
    emit("- Command: `%s`" % " ".join(shlex.quote(v) for v in [relpath(sys.executable), relpath(SCRIPT)] + sys.argv[1:]))
    emit("- Data: `%s synth -o %s --rows N --features D --segments %d` (float32 `/features`)."
         % (relpath(cli), data_path, a.segments))
    emit("- segforge: `%s` (defaults otherwise: --n-init 3, --silhouette auto, --gap-refs 10, "
         "--threads 0 = all cores%s)." % (" ".join(segforge_argv(relpath(cli), data_path, a.k,
                                                               os.path.join(relpath(out), "sweep.json"))),
                                         "; OMP_NUM_THREADS=%s" % omp if omp else ""))
    emit("- scikit-learn: `%s`: KMeans(K, n_init=%d, random_state=0), silhouette_score (exact up to %s rows, "
         "else sample_size=%s), davies_bouldin_score, calinski_harabasz_score, gap with B=%d uniform "
         "reference sets of min(N, %s) rows in a row sample's bounding box, KMeans(n_init=%d) each, 1-SE rule."
         % (" ".join(sklearn_argv(data_path, a.k)).replace(sys.executable, relpath(sys.executable))
            .replace(SCRIPT, relpath(SCRIPT)), SK_N_INIT, "{:,}".format(SILHOUETTE_EXACT_MAX),
            "{:,}".format(SILHOUETTE_SAMPLE), GAP_REFS, "{:,}".format(GAP_ROWS), GAP_REF_N_INIT))
    if env:
        emit("- Python %s, scikit-learn %s, numpy %s. Threads: all cores, OpenMP's default (%s%s)."
             % (env["python"], env["sklearn"], env["numpy"], threads,
                "; OMP_NUM_THREADS=%s" % omp if omp else ""))
    else:
        emit("- scikit-learn: not run.")
    emit("- Each program in its own process, alternating (the first rotates each repetition), "
         "%d repetition(s); seconds: median wall time of the whole process; peak: the largest RSS "
         "(`/usr/bin/time -f %%M`); a process killed at --timeout %d s is \"over %d s\"."
         % (a.reps, a.timeout, a.timeout))
    emit()
    emit("| N | D | segforge s | segforge peak MiB | scikit-learn s | scikit-learn peak MiB | speed-up (×) | "
         "segforge K | sklearn silhouette K | sklearn gap K | sklearn DB K | sklearn CH K | "
         "inertia vs scikit-learn (max rel. diff) |")
    emit("| " + " | ".join(["---"] * 13) + " |")
    details = []

    for n in ns:
        for d in ds:
            path = os.path.join(out, "data_%d_%d_s%d.h5" % (n, d, a.segments))
            if not os.path.exists(path):
                make_data(cli, path, n, d, a.segments)
            runs = {"sf": [], "sk": []}
            order = [w for w, on in (("sf", run_sf), ("sk", run_sk)) if on]
            for rep in range(a.reps):
                for who in order[rep % len(order):] + order[:rep % len(order)]:
                    if runs[who] and "failed" in runs[who][-1]:
                        continue  # a timeout or crash once is enough
                    runs[who].append(run_segforge(cli, path, a.k, out, a.timeout) if who == "sf"
                                     else run_sklearn(path, a.k, a.timeout))

            def summary(who):
                rs = runs[who]
                if not rs:
                    return None, ["not run", ""]
                if "failed" in rs[-1]:
                    return rs[-1], [rs[-1]["failed"], ""]
                return rs[-1], [statistics.median(r["wall"] for r in rs), max(r["peak"] for r in rs) / 2 ** 20]

            sf, sf_cells = summary("sf")
            sk, sk_cells = summary("sk")
            ok_sf = sf is not None and "failed" not in sf
            ok_sk = sk is not None and "failed" not in sk
            if ok_sf and ok_sk:
                speed = "%.1f×" % (sk_cells[0] / sf_cells[0])
            elif ok_sf and sk is not None:  # scikit-learn timed out or failed: at least this much
                speed = "> %.1f×" % (a.timeout / sf_cells[0]) if sk["failed"].startswith("over") else "–"
            elif ok_sk and sf is not None:
                speed = "< %.2f×" % (sk_cells[0] / a.timeout) if sf["failed"].startswith("over") else "–"
            else:
                speed = "–"
            fmt = lambda c: ("%.2f" % c[0] if isinstance(c[0], float) else c[0],
                             "%.0f" % c[1] if isinstance(c[1], float) else c[1])
            sf_s, sf_mib = fmt(sf_cells)
            sk_s, sk_mib = fmt(sk_cells)
            sf_k = k_cell(sf["recommended"]) if ok_sf else "–"
            sk_k = [k_cell(sk["chosen"][c]) if ok_sk else "–"
                    for c in ("silhouette", "gap", "davies_bouldin", "calinski_harabasz")]
            check = inertia_check(sf, sk) if ok_sf and ok_sk else "–"
            emit("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                "{:,}".format(n), d, sf_s, sf_mib, sk_s, sk_mib, speed, sf_k, " | ".join(sk_k), check))

            parts = []
            if ok_sf:
                parts.append("segforge's criteria %s (silhouette %s, gap rows %s, n_init %s; sweep.json timings %s)"
                             % (", ".join("%s %s" % (c, k_cell(k)) for c, k in sf["criteria"].items()),
                                sf["silhouette_method"], sf["gap_rows"], sf["n_init"],
                                ", ".join("%s %.2f s" % kv for kv in sf["timings"].items())))
            if ok_sk:
                parts.append("scikit-learn's seconds (last run): %s"
                             % ", ".join("%s %.2f" % kv for kv in sk["timings"].items()))
            if ok_sf and ok_sk:
                parts.append("inertia per K, segforge / scikit-learn: %s" % ", ".join(
                    "K=%d %.6g / %.6g" % (k, sf["inertia"].get(k, float("nan")), w)
                    for k, w in zip(sk["ks"], sk["inertia"])))
            details.append("- N = %s, D = %d: %s." % ("{:,}".format(n), d,
                                                      "; ".join(parts) or "no result from either program"))

    emit()
    emit("Load average at the end: %s. Details (segforge's per-criterion K, where the time went):" % loadavg())
    emit()
    for line in details:
        emit(line)
    if a.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(a.markdown)), exist_ok=True)
        with open(a.markdown, "w") as f:
            f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
