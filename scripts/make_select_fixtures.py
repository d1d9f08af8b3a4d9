#!/usr/bin/python3
"""Reference values for choosing K (tests/test_sweep*.cpp), computed independently of segforge
with NumPy and scikit-learn. Run with Debian's /usr/bin/python3 (python3-numpy, python3-sklearn):

    /usr/bin/python3 scripts/make_select_fixtures.py

Writes plain-text fixtures under tests/fixtures/select/ (numbers printed with %.17g, so the C++
tests read exactly the doubles written here):

  kneedle.txt  curves and the knee Kneedle finds on each, with its difference curve
  gap_*.txt    a data set (blobs4: four blobs, K=4; noise: uniform, K=1), fixed uniform draws for B reference sets, the PCA-aligned box, the
               reference sets, log W_k of the data and of every reference (scikit-learn KMeans),
               Gap(k), s_k and the K chosen by the 1-standard-error rule.
"""
import os

import numpy as np
from sklearn.cluster import KMeans

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "select")


def fmt(values):
    return " ".join("%.17g" % v for v in np.ravel(values))


# ---- Kneedle (Satopää et al. 2011), offline, decreasing convex curve ---------------------------

def kneedle(x, y, s=1.0):
    """The knee index (or -1) and the difference curve, as the paper's steps describe."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(x)
    xn = (x - x[0]) / (x[-1] - x[0])
    yr = y.max() - y.min()
    yn = 1.0 - (y - y.min()) / yr if yr > 0 else np.zeros(n)
    diff = yn - xn
    if n < 3 or yr <= 0:
        return -1, diff
    left = np.concatenate(([diff[0]], diff[:-1]))
    right = np.concatenate((diff[1:], [diff[-1]]))
    maxima = np.flatnonzero((diff >= left) & (diff >= right))
    minima = set(np.flatnonzero((diff <= left) & (diff <= right)).tolist())
    if len(maxima) == 0:
        return -1, diff
    step = (xn[-1] - xn[0]) / (n - 1)
    thresholds = {int(i): diff[i] - s * step for i in maxima}
    threshold, where = 0.0, int(maxima[0])
    for i in range(int(maxima[0]), n - 1):
        if i in thresholds:
            threshold, where = thresholds[i], i
        if i in minima:
            threshold = 0.0
        if diff[i + 1] < threshold:
            return where, diff
    return -1, diff


def inertia_curve(x, ks, seed):
    return [KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x).inertia_ for k in ks]


def write_kneedle(rng):
    cases = []
    ks = np.arange(1, 11, dtype=float)
    cases.append(("hyperbola", ks, 1.0 / ks))
    cases.append(("exponential", ks, np.exp(-0.7 * ks)))
    cases.append(("line", ks, 10.0 - ks))
    cases.append(("sharp_elbow_at_4", ks, np.where(ks <= 4, 100.0 - 22.0 * (ks - 1), 34.0 - 1.0 * (ks - 4))))
    centres = rng.uniform(-10, 10, size=(5, 2))
    blobs = np.concatenate([c + rng.normal(size=(60, 2)) for c in centres])
    k2 = np.arange(2, 13, dtype=float)
    cases.append(("blobs5_inertia", k2, np.array(inertia_curve(blobs, k2.astype(int), 0))))
    cases.append(("noisy", ks, 1.0 / ks + rng.normal(scale=0.02, size=ks.size)))
    with open(os.path.join(OUT, "kneedle.txt"), "w") as f:
        f.write("# name n knee_index(-1: none) / x / y / difference\n")
        for name, x, y in cases:
            knee, diff = kneedle(x, y)
            f.write("%s %d %d\n%s\n%s\n%s\n" % (name, len(x), knee, fmt(x), fmt(y), fmt(diff)))


# ---- the gap statistic (Tibshirani, Walther & Hastie 2001) ----------------------------------

def pca_box(x):
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / x.shape[0]
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(-values, kind="stable")
    values, vectors = values[order], vectors[:, order]
    for j in range(vectors.shape[1]):  # largest-magnitude entry positive
        if vectors[np.argmax(np.abs(vectors[:, j])), j] < 0:
            vectors[:, j] = -vectors[:, j]
    proj = xc @ vectors
    return mean, vectors, values, proj.min(axis=0), proj.max(axis=0)


def log_w(x, k, seed):
    return float(np.log(KMeans(n_clusters=k, n_init=20, random_state=seed).fit(x).inertia_))


def write_gap(name, x, ks, b_count, rng, write=True):
    n, d = x.shape
    x = x.astype(np.float32).astype(np.float64)  # what the C++ side clusters
    mean, rotation, variance, lower, upper = pca_box(x)
    draws = rng.uniform(size=(b_count, n, d))
    refs = [(lower + u * (upper - lower)) @ rotation.T + mean for u in draws]
    refs32 = [r.astype(np.float32).astype(np.float64) for r in refs]
    lw = np.array([log_w(x, k, 0) for k in ks])
    lw_ref = np.array([[log_w(r, k, 0) for k in ks] for r in refs32])
    ref_mean = lw_ref.mean(axis=0)
    gap = ref_mean - lw
    sd = np.sqrt(((lw_ref - ref_mean) ** 2).mean(axis=0))
    s = sd * np.sqrt(1.0 + 1.0 / b_count)
    chosen = -1
    for i in range(len(ks) - 1):
        if gap[i] >= gap[i + 1] - s[i + 1]:
            chosen = ks[i]
            break
    if not write:
        return chosen
    with open(os.path.join(OUT, "gap_%s.txt" % name), "w") as f:
        f.write("%d %d %d %d %d\n" % (n, d, b_count, len(ks), chosen))
        f.write(fmt(ks) + "\n")
        f.write(fmt(x) + "\n")
        f.write(fmt(draws) + "\n")
        f.write(fmt(mean) + "\n" + fmt(rotation) + "\n" + fmt(variance) + "\n")
        f.write(fmt(lower) + "\n" + fmt(upper) + "\n")
        f.write(fmt(np.concatenate(refs)) + "\n")
        f.write(fmt(lw) + "\n" + fmt(lw_ref) + "\n" + fmt(gap) + "\n" + fmt(s) + "\n")
    print("gap_%s: Gap %s, s %s, chosen K=%d" % (name, np.round(gap, 4), np.round(s, 4), chosen))
    return chosen


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240607)
    write_kneedle(rng)
    # Four blobs on a 10 x 6 rectangle, rotated so the PCA box is tilted; K=4 is the answer.
    rotation = np.array([[np.cos(0.6), -np.sin(0.6)], [np.sin(0.6), np.cos(0.6)]])
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 6.0], [10.0, 6.0]])
    blobs = np.concatenate([c + rng.normal(size=(70, 2)) * [1.2, 0.8] for c in centres]) @ rotation.T + [100.0, -40.0]
    write_gap("blobs4", blobs, list(range(1, 8)), 10, rng)
    # Uniform noise in 3-D. The rule's answer varies with the draw (the gap statistic has a
    # false-positive rate); the fixture keeps the first draw, from a fixed sequence of seeds,
    # for which it gives K=1, so that the K = 1 path is compared too.
    for seed in range(100):
        noise_rng = np.random.default_rng(1000 + seed)
        noise = noise_rng.uniform(-1.0, 1.0, size=(400, 3)) * [3.0, 2.0, 1.0]
        state = noise_rng.bit_generator.state
        if write_gap("noise", noise, list(range(1, 5)), 20, noise_rng, write=False) == 1:
            noise_rng.bit_generator.state = state
            write_gap("noise", noise, list(range(1, 5)), 20, noise_rng)
            break


if __name__ == "__main__":
    main()
