"""segforge.DBSCAN against scikit-learn's DBSCAN on the same float32 values: the same core rows, the
same clusters of core rows (numbered the same way), the same noise; borders in the cluster of their
nearest core row; predict; the CLI's DBSCAN model loaded in Python predicts its segments.csv."""

import os
import subprocess

import h5py
import numpy as np
import pytest
from sklearn.cluster import DBSCAN as SkDBSCAN
from sklearn.datasets import make_blobs, make_moons

import segforge

CLI = os.environ.get("SEGFORGE_CLI", os.path.join(os.path.dirname(__file__), "..", "..", "build", "tools", "segforge"))


def _data(kind):
    if kind == "moons":
        x, _ = make_moons(n_samples=1500, noise=0.07, random_state=3)
        return x.astype(np.float32), 0.08, 8
    x, _ = make_blobs(n_samples=2000, centers=5, n_features=4, cluster_std=0.5, random_state=4)
    noise = np.random.default_rng(0).uniform(x.min(0), x.max(0), size=(200, 4))
    return np.vstack([x, noise]).astype(np.float32), 0.6, 10


@pytest.mark.parametrize("kind", ["moons", "blobs"])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_core_clusters_and_noise_as_scikit_learn(kind, weighted):
    x, eps, m = _data(kind)
    w = np.random.default_rng(1).integers(1, 4, size=len(x)).astype(np.float64) if weighted else None
    eps = float(np.float32(eps))
    sk = SkDBSCAN(eps=eps, min_samples=m, algorithm="kd_tree").fit(x.astype(np.float64), sample_weight=w)
    sf = segforge.DBSCAN(eps=eps, min_samples=m, device="cpu").fit(x, sample_weight=w)
    np.testing.assert_array_equal(sf.core_sample_indices_, sk.core_sample_indices_)
    core = sk.core_sample_indices_
    np.testing.assert_array_equal(sf.labels_[core], sk.labels_[core])
    np.testing.assert_array_equal(sf.labels_ == -1, sk.labels_ == -1)
    np.testing.assert_array_equal(sf.components_, x[core])
    # Borders: the cluster of the nearest core row within eps (brute force in float64).
    border = np.flatnonzero((sk.labels_ >= 0) & ~np.isin(np.arange(len(x)), core))
    xc = x[core].astype(np.float64)
    for i in border:
        d2 = ((xc - x[i].astype(np.float64)) ** 2).sum(1)
        d2[d2 > eps * eps] = np.inf
        assert sf.labels_[i] == sk.labels_[core[int(np.argmin(d2))]]
    # predict on the training rows gives labels_ back.
    np.testing.assert_array_equal(sf.predict(x), sf.labels_)


def test_cli_model_loads_and_predicts_its_segments(tmp_path):
    x, eps, m = _data("blobs")
    f = tmp_path / "features.h5"
    with h5py.File(f, "w") as h:
        h["features"] = x
    model, seg = tmp_path / "model.h5", tmp_path / "segments.csv"
    r = subprocess.run([CLI, "fit", str(f), "--algorithm", "dbscan", "--eps", repr(eps), "--min-samples", str(m),
                        "-o", str(model), "--labels", str(seg), "--device", "cpu"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    est = segforge.load_model(model)
    assert isinstance(est, segforge.DBSCAN)
    import pandas as pd
    labels = pd.read_csv(seg)["segment"].to_numpy()
    np.testing.assert_array_equal(est.predict(x), labels)
    np.testing.assert_array_equal(segforge.DBSCAN(eps=eps, min_samples=m, device="cpu").fit_predict(x), labels)


def test_bad_parameters():
    x, _, _ = _data("moons")
    for kwargs in ({"eps": 0.0}, {"eps": -1.0}, {"min_samples": 0}, {"metric": "manhattan"}):
        with pytest.raises(ValueError):
            segforge.DBSCAN(device="cpu", **kwargs).fit(x)
    # Every row noise: labels all -1, no core rows, no crash.
    est = segforge.DBSCAN(eps=1e-6, min_samples=5, device="cpu").fit(x)
    assert (est.labels_ == -1).all() and len(est.core_sample_indices_) == 0
    assert (est.predict(x) == -1).all()
