#!/usr/bin/python3
"""Reference values for `segforge drift` (tests/test_drift.cpp), computed independently of
segforge with NumPy, SciPy and pandas. Run with Debian's /usr/bin/python3 (python3-numpy,
python3-scipy, python3-pandas, python3-h5py):

    /usr/bin/python3 scripts/make_drift_fixtures.py

Writes under tests/fixtures/drift/:

  reference.h5, current.h5  features files (float32 /features, int64 /ids, /feature_names and
                            one /scaler shared by both): 2000 and 1800 rows, 4 features — a
                            normal, a log-normal whose current scale is wider, a count 0..5 (ties:
                            quantile edges that coincide and collapse) and a normal whose current
                            mean is shifted; ids 0..1999 and 600..2399 (1400 common, 400 joiners,
                            600 leavers)
  model.h5                  a bare model: /centroids [3 x 4] float32 and /feature_names
  expected.json             per feature: the inner bin edges (numpy.quantile at 1/10..9/10,
                            duplicates removed), both files' bin shares (right-closed bins,
                            numpy.searchsorted side='left'), PSI with shares floored at 1e-4,
                            scipy.stats.ks_2samp's statistic, the mean shift in reference SDs
                            (ddof=0); per segment (argmin of the float64 distances to the
                            float32 centres): shares, share PSI, mean and 90th-percentile
                            distance; migration: pandas.crosstab of the common ids' segments,
                            joiners, leavers.
"""
import json
import os

import h5py
import numpy as np
import pandas as pd
from scipy import stats

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "drift")
BINS = 10
EPS = 1e-4
NAMES = ["spend", "basket", "visits", "tenure"]


def new(name):
    return h5py.File(os.path.join(OUT, name), "w", libver="earliest")


def create(f, name, data, **kw):
    return f.create_dataset(name, data=data, track_times=False, **kw)


def write_features(name, x, ids):
    vlen = h5py.string_dtype("utf-8")
    with new(name) as f:
        create(f, "features", x.astype(np.float32))
        create(f, "feature_names", np.array(NAMES, dtype=object), dtype=vlen)
        create(f, "ids", ids.astype(np.int64))
        g = f.create_group("scaler")
        create(g, "mean", np.array([10.0, 3.0, 2.0, 36.0]))
        create(g, "scale", np.array([4.0, 1.5, 1.0, 12.0]))
        create(g, "transform", np.array(["identity", "log1p", "identity", "identity"], dtype=object), dtype=vlen)
        f.attrs["format"] = "segforge-features"
        f.attrs["format_version"] = np.int64(1)


def psi(r, c):
    r = np.maximum(r, EPS)
    c = np.maximum(c, EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def shares(values, edges):
    bins = np.searchsorted(edges, values, side="left")
    return np.bincount(bins, minlength=len(edges) + 1) / len(values)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240617)

    def draw(n, wider, shifted):
        return np.column_stack([
            rng.normal(0.0, 1.0, n),
            rng.lognormal(0.0, 0.8 if wider else 0.5, n) - 1.0,
            rng.integers(0, 6 if not wider else 4, n).astype(float),
            rng.normal(0.6 if shifted else 0.0, 1.0, n),
        ]).astype(np.float32)

    ref = draw(2000, False, False)
    cur = draw(1800, True, True)
    ref_ids = np.arange(0, 2000)
    cur_ids = np.arange(600, 2400)
    write_features("reference.h5", ref, ref_ids)
    write_features("current.h5", cur, cur_ids)

    centroids = np.array([[-1.0, -0.5, 1.0, -1.0], [0.0, 0.3, 3.0, 0.0], [1.0, 1.0, 4.5, 1.2]], dtype=np.float32)
    with new("model.h5") as f:
        create(f, "centroids", centroids)
        create(f, "feature_names", np.array(NAMES, dtype=object), dtype=h5py.string_dtype("utf-8"))

    expected = {"bins": BINS, "epsilon": EPS, "features": [], "segments": []}
    r64, c64 = ref.astype(np.float64), cur.astype(np.float64)
    for j, name in enumerate(NAMES):
        edges = np.unique(np.quantile(r64[:, j], np.arange(1, BINS) / BINS))
        rs, cs = shares(r64[:, j], edges), shares(c64[:, j], edges)
        sd = r64[:, j].std()
        expected["features"].append({
            "name": name, "edges": edges.tolist(), "reference_shares": rs.tolist(), "current_shares": cs.tolist(),
            "psi": psi(rs, cs), "ks": float(stats.ks_2samp(r64[:, j], c64[:, j]).statistic),
            "mean_shift": float((c64[:, j].mean() - r64[:, j].mean()) / sd)})

    def assign(x):
        d = np.sqrt(((x[:, None, :] - centroids.astype(np.float64)[None, :, :]) ** 2).sum(axis=2))
        labels = d.argmin(axis=1)
        return labels, d[np.arange(len(x)), labels]

    rl, rd = assign(r64)
    cl, cd = assign(c64)
    k = len(centroids)
    rsh = np.bincount(rl, minlength=k) / len(rl)
    csh = np.bincount(cl, minlength=k) / len(cl)
    expected["share_psi"] = psi(rsh, csh)
    for c in range(k):
        expected["segments"].append({
            "reference_share": float(rsh[c]), "current_share": float(csh[c]),
            "reference_mean_distance": float(rd[rl == c].mean()), "current_mean_distance": float(cd[cl == c].mean()),
            "reference_p90_distance": float(np.percentile(rd[rl == c], 90)),
            "current_p90_distance": float(np.percentile(cd[cl == c], 90))})
    # The near-tie margin of each row (second-nearest minus nearest), so the test can tell a
    # float32 argmin flip from a real disagreement.
    margins = []
    for x in (r64, c64):
        d = np.sort(np.sqrt(((x[:, None, :] - centroids.astype(np.float64)[None, :, :]) ** 2).sum(axis=2)), axis=1)
        margins.append(float((d[:, 1] - d[:, 0]).min()))
    expected["min_assignment_margin"] = min(margins)

    a = pd.DataFrame({"id": ref_ids, "before": rl})
    b = pd.DataFrame({"id": cur_ids, "after": cl})
    both = a.merge(b, on="id")
    table = pd.crosstab(both["before"], both["after"]).reindex(index=range(k), columns=range(k), fill_value=0)
    expected["migration"] = {
        "n_common": int(len(both)), "n_joiners": int((~b["id"].isin(a["id"])).sum()),
        "n_leavers": int((~a["id"].isin(b["id"])).sum()), "counts": table.values.tolist(),
        "moved_share": float((both["before"] != both["after"]).mean())}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
