#!/usr/bin/env python3
"""segforge's CUDA backend against GPU peers, for scripts/device_check.sh (issue 20).

On one GPU, in one run, each step capped so that a run cut short still leaves its numbers:
  1. the roofline: device-to-device copy bandwidth (bytes read + written) and the plain FP32
     matrix-product rate (TF32 off), measured here rather than taken from a datasheet;
  2. Lloyd per iteration at N = 10M with D = 8, K = 8 and D = 32, K = 64, and N = 2M with
     D = 128, K = 1024 (blobs generated on the device, seeded): segforge_bench --device gpu, a
     straightforward PyTorch FP32 K-Means (matrix-product distances, argmin, index_add) and
     Flash-KMeans (svg-project/flash-kmeans, FP32, when peers/flash-kmeans imports), from the same
     starting centres, beside the floor max(N·D·4 B / bandwidth, 2·N·K·D flop / FP32 rate);
  3. on the first shape, segforge --device cpu from the same start: inertia relative difference
     and the ARI of the two runs' labels (DESIGN.md: ARI >= 0.999, inertia within 1e-5);
  4. the exact silhouette at N = 1M, D = 32, K = 16 (segforge_bench silhouette --device gpu);
  5. streaming at N = 200M, D = 16 under a forced 4 GB budget, once segforge_bench has a task
     for it (issue 20, item 2); until then the step says it skipped.

One JSON object per measurement goes to --out (JSON lines); a Markdown table goes to stdout.
Without PyTorch or a CUDA device it says so and exits 0 (the device check's dry run).
Only the project's binaries get LD_LIBRARY_PATH (--lib); this process never sets it.

  gpu_peers.py --bench BIN/segforge_bench --lib LIB --work /tmp/dc --out bench.jsonl
               [--deadline SECONDS] [--scale 1.0] [--flash peers/flash-kmeans]
"""
import argparse
import json
import os
import subprocess
import sys
import time

ITERS = 20
LLOYD_SHAPES = [(10_000_000, 8, 8), (10_000_000, 32, 64), (2_000_000, 128, 1024)]
SILHOUETTE_SHAPE = (1_000_000, 32, 16)
STREAM_SHAPE = (200_000_000, 16)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Run:
    def __init__(self, args):
        self.args = args
        self.t_end = time.monotonic() + args.deadline
        self.records = []
        self.out = open(args.out, "a")

    def left(self):
        return self.t_end - time.monotonic()

    def record(self, **r):
        self.records.append(r)
        self.out.write(json.dumps(r) + "\n")
        self.out.flush()
        log("gpu_peers:", json.dumps(r))

    def project(self, argv, timeout):
        """A project binary with LD_LIBRARY_PATH = --lib for it alone; its JSON lines."""
        env = dict(os.environ)
        if self.args.lib:
            env["LD_LIBRARY_PATH"] = self.args.lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=max(1.0, timeout))
        if p.returncode != 0:
            raise RuntimeError(f"{os.path.basename(argv[0])} exit {p.returncode}: {p.stderr.strip()[-400:]}")
        return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def cuda_events_ms(torch, fn, reps):
    """Median of `reps` timings of fn() with CUDA events, after one warm-up."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def roofline(torch, run):
    """Copy bandwidth (GB/s, read + write) and FP32 matrix-product rate (TFLOP/s, TF32 off)."""
    def copy_ms(n):
        src = torch.rand(n, device="cuda")
        dst = torch.empty_like(src)
        return cuda_events_ms(torch, lambda: dst.copy_(src), 10)

    def matmul_ms(m):
        a = torch.randn(m, m, device="cuda")
        b = torch.randn(m, m, device="cuda")
        return cuda_events_ms(torch, lambda: a @ b, 5)

    n = 1 << 29  # 2 GiB of float32
    bw = 2 * 4 * n / (copy_ms(n) * 1e-3) / 1e9
    torch.backends.cuda.matmul.allow_tf32 = False
    m = 8192
    rate = 2 * m ** 3 / (matmul_ms(m) * 1e-3) / 1e12
    torch.cuda.empty_cache()
    run.record(step="roofline", copy_gbs=bw, fp32_tflops=rate, device=torch.cuda.get_device_name())
    return bw, rate


def blobs(torch, n, d, k, seed):
    """Gaussian blobs on the device: K centres with spread 4, unit noise."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    centres = 4.0 * torch.randn(k, d, device="cuda", generator=g)
    truth = torch.randint(0, k, (n,), device="cuda", generator=g)
    x = centres[truth]
    x.add_(torch.randn(n, d, device="cuda", generator=g))
    return x, truth


def write_h5(path, **datasets):
    import h5py
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value


def nearest(torch, x, c, chunk_bytes=1 << 30):
    """Labels and squared distances of x to c: ||x||² − 2x·c + ||c||² in FP32, row chunks."""
    n, k = x.shape[0], c.shape[0]
    rows = max(1024, chunk_bytes // (4 * k))
    cn = (c * c).sum(1)
    labels = torch.empty(n, dtype=torch.int64, device="cuda")
    dist = torch.empty(n, device="cuda")
    for s in range(0, n, rows):
        xs = x[s:s + rows]
        d2 = torch.addmm(cn[None, :], xs, c.t(), beta=1.0, alpha=-2.0)
        d2.add_((xs * xs).sum(1, keepdim=True))
        v, i = d2.min(1)
        labels[s:s + rows] = i
        dist[s:s + rows] = v.clamp_min_(0)
    return labels, dist


def torch_lloyd(torch, x, c0, iters):
    """The straightforward PyTorch FP32 K-Means: per iteration, matrix-product distances, argmin,
    index_add of the rows and a bincount; empty clusters keep their centre. Returns the centres and
    the median ms per iteration (CUDA events)."""
    k, d = c0.shape
    c = c0.clone()
    times = []
    for it in range(iters + 1):  # iteration 0 warms up
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        labels, _ = nearest(torch, x, c)
        sums = torch.zeros(k, d, device="cuda").index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(torch.float32)
        c = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c)
        b.record()
        b.synchronize()
        if it > 0:
            times.append(a.elapsed_time(b))
    times.sort()
    return c, times[len(times) // 2]


def flash_lloyd(torch, flash_dir, x, c0, iters):
    """Flash-KMeans (FP32) from c0: ms per iteration of a timed run after a warm-up run (which
    compiles its Triton kernels)."""
    if flash_dir not in sys.path:
        sys.path.insert(0, flash_dir)
    from flash_kmeans import batch_kmeans_Euclid
    if "triton" not in batch_kmeans_Euclid.__module__:  # its package falls back to plain torch
        raise RuntimeError(f"flash_kmeans has no Triton path here ({batch_kmeans_Euclid.__module__})")
    xb, cb = x[None], c0[None].clone()
    batch_kmeans_Euclid(xb, c0.shape[0], max_iters=2, tol=-1.0, init_centroids=cb.clone())
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    _, c, n_iter = batch_kmeans_Euclid(xb, c0.shape[0], max_iters=iters, tol=-1.0, init_centroids=cb.clone())
    torch.cuda.synchronize()
    return c[0], 1e3 * (time.perf_counter() - t0) / n_iter


def inertia(torch, x, c):
    _, dist = nearest(torch, x, c)
    return float(dist.double().sum())


def ari(torch, a, b, k):
    """Adjusted Rand index of two labelings in [0, k), from their contingency table."""
    n = a.numel()
    table = torch.bincount(a * k + b, minlength=k * k).reshape(k, k).double()
    comb = lambda t: (t * (t - 1) / 2).sum()
    index, rows, cols = comb(table), comb(table.sum(1)), comb(table.sum(0))
    expected = rows * cols / (n * (n - 1) / 2)
    top = 0.5 * (rows + cols)
    return float((index - expected) / (top - expected)) if float(top - expected) != 0 else 1.0


def lloyd_shape(torch, run, n, d, k, bw, rate, first):
    args = run.args
    tag = f"n{n}_d{d}_k{k}"
    x, _ = blobs(torch, n, d, k, seed=20 + d)
    rows = torch.randperm(n, device="cuda", generator=torch.Generator(device="cuda").manual_seed(0))[:k]
    c0 = x[rows.sort().values].clone()
    features, init = os.path.join(args.work, tag + ".h5"), os.path.join(args.work, tag + ".init.h5")
    write_h5(features, features=x.cpu().numpy())
    write_h5(init, centroids=c0.cpu().numpy())
    floor_ms = 1e3 * max(n * d * 4 / (bw * 1e9), 2.0 * n * k * d / (rate * 1e12))
    base = dict(step="lloyd", n=n, d=d, k=k, floor_ms=floor_ms)

    gpu_centres = os.path.join(args.work, tag + ".gpu.h5")
    try:
        lines = run.project([args.bench, "lloyd", features, "--init", init, "--iters", str(ITERS), "--tol", "0",
                             "--device", "gpu", "--reps", "2", "--centroids-out", gpu_centres, "--tag", tag],
                            timeout=min(120.0, run.left() - 10))
        r = lines[-1]
        ms = 1e3 * r["phases"]["iter_s"] / max(1, r["n_iter"])
        run.record(**base, impl="segforge", ms_per_iter=ms, ms_per_iter_fit=r["ms_per_iter"], n_iter=r["n_iter"],
                   inertia=r["inertia"], upload_s=r["phases"]["upload_s"], x_floor=ms / floor_ms,
                   device=r.get("device"))
        seg_ms, seg_iters = ms, r["n_iter"]
    except Exception as e:  # noqa: BLE001 - every failure is a row of the table, not a stop
        run.record(**base, impl="segforge", error=str(e))
        seg_ms, seg_iters = None, ITERS

    try:
        c, ms = torch_lloyd(torch, x, c0, seg_iters)
        run.record(**base, impl="pytorch_fp32", ms_per_iter=ms, n_iter=seg_iters, inertia=inertia(torch, x, c),
                   x_floor=ms / floor_ms, segforge_speedup=(ms / seg_ms) if seg_ms else None)
    except Exception as e:  # noqa: BLE001
        run.record(**base, impl="pytorch_fp32", error=str(e))
    torch.cuda.empty_cache()

    if args.flash and os.path.isdir(args.flash) and run.left() > 30:
        try:
            c, ms = flash_lloyd(torch, os.path.abspath(args.flash), x, c0, seg_iters)
            run.record(**base, impl="flash_kmeans_fp32", ms_per_iter=ms, n_iter=seg_iters,
                       inertia=inertia(torch, x, c), x_floor=ms / floor_ms,
                       segforge_speedup=(ms / seg_ms) if seg_ms else None)
        except Exception as e:  # noqa: BLE001
            run.record(**base, impl="flash_kmeans_fp32", error=f"{type(e).__name__}: {e}"[:400])
        torch.cuda.empty_cache()

    if first and seg_ms is not None and run.left() > 60:
        # segforge --device cpu from the same start: the GPU must agree (DESIGN.md tolerances).
        cpu_centres = os.path.join(args.work, tag + ".cpu.h5")
        try:
            lines = run.project([args.bench, "lloyd", features, "--init", init, "--iters", str(ITERS), "--tol", "0",
                                 "--device", "cpu", "--centroids-out", cpu_centres, "--tag", tag],
                                timeout=min(120.0, run.left() - 30))
            import h5py
            with h5py.File(gpu_centres, "r") as f:
                cg = torch.from_numpy(f["/centroids"][...]).cuda()
            with h5py.File(cpu_centres, "r") as f:
                cc = torch.from_numpy(f["/centroids"][...]).cuda()
            lg, _ = nearest(torch, x, cg)
            lc, _ = nearest(torch, x, cc)
            gi = [rec for rec in run.records if rec.get("impl") == "segforge" and rec.get("n") == n][-1]["inertia"]
            ci = lines[-1]["inertia"]
            run.record(step="gpu_vs_cpu", n=n, d=d, k=k, inertia_gpu=gi, inertia_cpu=ci,
                       inertia_rel_diff=abs(gi - ci) / abs(ci), ari=ari(torch, lg, lc, k),
                       cpu_ms_per_iter=lines[-1]["ms_per_iter"], n_iter_cpu=lines[-1]["n_iter"])
        except Exception as e:  # noqa: BLE001
            run.record(step="gpu_vs_cpu", n=n, d=d, k=k, error=str(e))
    del x
    for path in (features, init):
        os.remove(path)
    torch.cuda.empty_cache()


def silhouette(torch, run, n, d, k):
    args = run.args
    x, truth = blobs(torch, n, d, k, seed=7)
    features, labels = os.path.join(args.work, "sil.h5"), os.path.join(args.work, "sil.labels.h5")
    write_h5(features, features=x.cpu().numpy())
    write_h5(labels, labels=truth.to(torch.int32).cpu().numpy())
    del x, truth
    torch.cuda.empty_cache()
    # 2·N²·D flop for the pairwise distances, at the FP32 rate: the floor.
    try:
        r = run.project([args.bench, "silhouette", features, "--labels", labels, "--device", "gpu"],
                        timeout=min(90.0, run.left() - 5))[-1]
        run.record(step="silhouette", impl="segforge", n=n, d=d, k=k, seconds=r["phases"]["silhouette_s"],
                   score=r["score"])
    except subprocess.TimeoutExpired as e:
        run.record(step="silhouette", impl="segforge", n=n, d=d, k=k, error=f"timed out after {e.timeout:.0f} s")
    except Exception as e:  # noqa: BLE001
        run.record(step="silhouette", impl="segforge", n=n, d=d, k=k, error=str(e))


def streaming(run):
    """segforge_bench's streaming task (issue 20, item 2), when the binary has one."""
    env = dict(os.environ)
    if run.args.lib:
        env["LD_LIBRARY_PATH"] = run.args.lib
    help_text = subprocess.run([run.args.bench, "--help"], env=env, capture_output=True, text=True).stdout
    n, d = STREAM_SHAPE
    if "stream" not in help_text:
        run.record(step="streaming", n=n, d=d, skipped="segforge_bench has no streaming task yet (issue 20, item 2)")
        return
    try:
        lines = run.project([run.args.bench, "stream", "--rows", str(n), "--features", str(d), "--budget", "4G",
                             "--device", "gpu"], timeout=min(120.0, run.left() - 5))
        run.record(step="streaming", n=n, d=d, **lines[-1])
    except Exception as e:  # noqa: BLE001
        run.record(step="streaming", n=n, d=d, error=str(e))


def table(records):
    out = ["| step | shape | impl | ms/iter | × floor | segforge speedup | notes |", "|---|---|---|---|---|---|---|"]
    for r in records:
        shape = f"{r.get('n', '')}×{r.get('d', '')}, K={r.get('k', '')}" if "n" in r else ""
        f = lambda key, fmt="{:.3f}": fmt.format(r[key]) if r.get(key) is not None else ""
        if r["step"] == "roofline":
            note = f"copy {r['copy_gbs']:.0f} GB/s, FP32 {r['fp32_tflops']:.1f} TFLOP/s, {r['device']}"
        elif r["step"] == "gpu_vs_cpu":
            note = r.get("error") or (f"ARI {r['ari']:.6f}, inertia rel diff {r['inertia_rel_diff']:.2e}, "
                                      f"cpu {r['cpu_ms_per_iter']:.1f} ms/iter")
        elif r["step"] == "silhouette":
            note = r.get("error") or f"{r['seconds']:.2f} s, score {r['score']:.6f}"
        else:
            note = r.get("error") or r.get("skipped") or (f"floor {r['floor_ms']:.3f} ms, {r.get('n_iter')} iter"
                                                          if "floor_ms" in r else "")
        out.append(f"| {r['step']} | {shape} | {r.get('impl', '')} | {f('ms_per_iter')} | {f('x_floor', '{:.1f}')} "
                   f"| {f('segforge_speedup', '{:.2f}')} | {note} |")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", required=True, help="segforge_bench")
    p.add_argument("--lib", default="", help="LD_LIBRARY_PATH for the project's binaries alone")
    p.add_argument("--work", required=True, help="scratch folder for the HDF5 files")
    p.add_argument("--out", required=True, help="JSON lines, appended")
    p.add_argument("--deadline", type=float, default=150.0, help="seconds for the whole run")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every N (a quick look: 0.01)")
    p.add_argument("--flash", default="", help="folder holding flash_kmeans/ (svg-project/flash-kmeans)")
    args = p.parse_args()

    try:
        import torch
    except ImportError as e:
        print(f"gpu_peers: skipped: no PyTorch in {sys.executable} ({e})")
        return 0
    if not torch.cuda.is_available():
        print(f"gpu_peers: skipped: PyTorch {torch.__version__} sees no CUDA device")
        return 0
    os.makedirs(args.work, exist_ok=True)
    run = Run(args)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False  # FP32 products: the baseline and the roofline
    bw, rate = roofline(torch, run)
    scale = lambda n: max(1000, int(n * args.scale))
    for i, (n, d, k) in enumerate(LLOYD_SHAPES):
        if run.left() < 20:
            run.record(step="lloyd", n=scale(n), d=d, k=k, skipped="out of time")
            continue
        lloyd_shape(torch, run, scale(n), d, k, bw, rate, first=(i == 0))
    n, d, k = SILHOUETTE_SHAPE
    if run.left() > 20:
        silhouette(torch, run, scale(n), d, k)
    else:
        run.record(step="silhouette", n=scale(n), d=d, k=k, skipped="out of time")
    streaming(run)
    print(table(run.records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
