"""segforge.AgglomerativeClustering against scikit-learn's AgglomerativeClustering and SciPy's linkage
on the same float32 values: the same merges and heights, the same cut numbered the same way
(ward, complete, average; single: the same partition), scikit-learn's distance_threshold rule;
predict; two-stage Ward; the CLI's agglomerative model loaded in Python predicts its segments.csv."""

import os
import subprocess
import warnings

import h5py
import numpy as np
import pytest
from scipy.cluster.hierarchy import dendrogram, linkage
from sklearn.cluster import AgglomerativeClustering as SkAgglomerative
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import segforge

CLI = os.environ.get("SEGFORGE_CLI", os.path.join(os.path.dirname(__file__), "..", "..", "build", "tools", "segforge"))
LINKAGES = ["ward", "complete", "average", "single"]


def _data(kind):
    """float32 rows without exact ties in their distances (continuous features)."""
    if kind == "blobs":
        x, _ = make_blobs(n_samples=400, centers=6, n_features=4, cluster_std=1.2, random_state=5)
    else:
        x = np.random.default_rng(7).normal(size=(300, 3))
    return x.astype(np.float32)


def _same_partition(a, b):
    """Each label of a maps to exactly one label of b and back."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("kind", ["blobs", "normal"])
@pytest.mark.parametrize("method", LINKAGES)
def test_same_tree_and_labels_as_scikit_learn(kind, method):
    x = _data(kind)
    sk = SkAgglomerative(n_clusters=5, linkage=method, compute_distances=True).fit(x.astype(np.float64))
    sf = segforge.AgglomerativeClustering(n_clusters=5, linkage=method, compute_distances=True, device="cpu").fit(x)
    assert sf.labels_.dtype == np.int64 and sf.children_.dtype == np.int64
    assert sf.n_clusters_ == 5 and sf.n_leaves_ == len(x) and sf.n_connected_components_ == 1
    assert sf.n_features_in_ == x.shape[1] and sf.strategy_ == "exact"
    np.testing.assert_allclose(sf.distances_, sk.distances_, rtol=1e-9, atol=0)
    # Both sorted ascending (SciPy's order), so merge i is the same merge in both.
    assert np.all(np.diff(sk.distances_) >= 0) and np.all(np.diff(sf.distances_) >= 0)
    if method == "single":
        # scikit-learn lists a merge's children in its MST's order, segforge the lower id first.
        np.testing.assert_array_equal(sf.children_, np.sort(sk.children_, axis=1))
        assert _same_partition(sf.labels_, sk.labels_)
    else:
        np.testing.assert_array_equal(sf.children_, sk.children_)
        np.testing.assert_array_equal(sf.labels_, sk.labels_)  # numbered as scikit-learn's too
    np.testing.assert_array_equal(sf.fit_predict(x), sf.labels_)


@pytest.mark.parametrize("method", LINKAGES)
def test_distance_threshold_as_scikit_learn(method):
    x = _data("blobs")
    sk = SkAgglomerative(n_clusters=None, distance_threshold=0.0, linkage=method).fit(x.astype(np.float64))
    heights = np.unique(sk.distances_)
    # Between two heights, and exactly at one: scikit-learn undoes the merges of height >= t.
    for t in [float((heights[-8] + heights[-7]) / 2), float(heights[-6]), 0.0, float(heights[-1]) + 1.0]:
        sk = SkAgglomerative(n_clusters=None, distance_threshold=t, linkage=method).fit(x.astype(np.float64))
        sf = segforge.AgglomerativeClustering(n_clusters=None, distance_threshold=t, linkage=method,
                                              device="cpu").fit(x)
        assert sf.n_clusters_ == sk.n_clusters_, t
        np.testing.assert_allclose(sf.distances_, sk.distances_, rtol=1e-9, atol=0)
        if method == "single":
            assert _same_partition(sf.labels_, sk.labels_)
        else:
            np.testing.assert_array_equal(sf.labels_, sk.labels_)
    assert not hasattr(segforge.AgglomerativeClustering(device="cpu").fit(x), "distances_")


@pytest.mark.parametrize("method", LINKAGES)
def test_linkage_matrix_is_scipys(method):
    x = _data("normal")
    z = linkage(x.astype(np.float64), method)
    sf = segforge.AgglomerativeClustering(n_clusters=3, linkage=method, device="cpu").fit(x)
    assert sf.linkage_matrix_.shape == (len(x) - 1, 4) and sf.linkage_matrix_.dtype == np.float64
    np.testing.assert_array_equal(sf.linkage_matrix_[:, [0, 1, 3]], z[:, [0, 1, 3]])
    if method == "ward":  # heights from centroids, not Lance-Williams updates: last bits differ
        np.testing.assert_allclose(sf.linkage_matrix_[:, 2], z[:, 2], rtol=1e-9, atol=0)
    else:
        np.testing.assert_array_equal(sf.linkage_matrix_[:, 2], z[:, 2])
    assert len(dendrogram(sf.linkage_matrix_, no_plot=True)["leaves"]) == len(x)


@pytest.mark.parametrize("method", LINKAGES)
def test_predict_nearest_leaf(method):
    x = _data("blobs")
    est = segforge.AgglomerativeClustering(n_clusters=6, linkage=method, device="cpu").fit(x)
    np.testing.assert_array_equal(est.predict(x), est.labels_)
    np.testing.assert_array_equal(est.leaves_, x)
    np.testing.assert_array_equal(est.leaf_labels_, est.labels_)
    new = np.random.default_rng(2).uniform(x.min(0), x.max(0), size=(200, x.shape[1])).astype(np.float32)
    d2 = ((new[:, None, :].astype(np.float64) - x[None, :, :].astype(np.float64)) ** 2).sum(2)
    np.testing.assert_array_equal(est.predict(new), est.labels_[np.argmin(d2, axis=1)])


def test_float64_dataframe_and_threads():
    pd = pytest.importorskip("pandas")
    x = _data("normal")
    a = segforge.AgglomerativeClustering(n_clusters=4, device="cpu", n_threads=1).fit(x)
    df = pd.DataFrame(x.astype(np.float64), columns=["a", "b", "c"])
    b = segforge.AgglomerativeClustering(n_clusters=4, device="cpu", n_threads=2).fit(df)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.children_, b.children_)
    assert list(b.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(b.predict(df), b.labels_)


def test_two_stage_forced_on_a_small_set():
    x, truth = make_blobs(n_samples=3000, centers=4, n_features=3, cluster_std=0.6, random_state=11)
    x = x.astype(np.float32)
    est = segforge.AgglomerativeClustering(n_clusters=4, strategy="two-stage", n_micro_clusters=60, random_state=3,
                                           compute_distances=True, device="cpu").fit(x)
    assert est.strategy_ == "two-stage"
    m = est.n_leaves_
    assert 4 <= m <= 60
    assert est.leaves_.shape == (m, 3) and est.leaf_labels_.shape == (m,)
    assert est.children_.shape == (m - 1, 2) and est.distances_.shape == (m - 1,)
    assert est.linkage_matrix_[-1, 3] == len(x)  # sizes: rows under each merge
    assert est.leaf_sizes_.sum() == len(x)
    assert np.all(np.diff(est.distances_) >= 0)
    assert set(est.labels_.tolist()) == {0, 1, 2, 3}
    # Each row takes its micro-cluster's segment; predict gives labels_ back on the training rows.
    np.testing.assert_array_equal(est.predict(x), est.labels_)
    d2 = ((x[:, None, :].astype(np.float64) - est.leaves_[None, :, :].astype(np.float64)) ** 2).sum(2)
    np.testing.assert_array_equal(est.leaf_labels_[np.argmin(d2, axis=1)], est.labels_)
    # Well-separated blobs: the true clusters.
    assert adjusted_rand_score(truth, est.labels_) == 1.0
    # Same seed, same tree; the cut is scikit-learn's over the micro-cluster tree.
    again = segforge.AgglomerativeClustering(n_clusters=4, strategy="two-stage", n_micro_clusters=60, random_state=3,
                                             device="cpu").fit(x)
    np.testing.assert_array_equal(again.labels_, est.labels_)
    from sklearn.cluster._agglomerative import _hc_cut
    np.testing.assert_array_equal(est.leaf_labels_, _hc_cut(4, est.children_, m))


def _write_features(path, x):
    with h5py.File(path, "w") as h:
        h["features"] = x


def _cli(*args):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def test_cli_model_loads_and_predicts_its_segments(tmp_path):
    import pandas as pd
    x = _data("blobs")
    f = tmp_path / "features.h5"
    _write_features(f, x)
    model, seg = tmp_path / "m.h5", tmp_path / "segments.csv"
    _cli("fit", f, "--algorithm", "agglomerative", "-k", 3, "-o", model, "--labels", seg, "--device", "cpu")
    est = segforge.load_model(model)
    assert isinstance(est, segforge.AgglomerativeClustering)
    assert est.n_clusters == 3 and est.n_clusters_ == 3 and est.linkage == "ward" and est.strategy_ == "exact"
    assert est.n_leaves_ == len(x) and est.n_features_in_ == x.shape[1]
    labels = pd.read_csv(seg)["segment"].to_numpy()
    np.testing.assert_array_equal(est.predict(x), labels)
    np.testing.assert_array_equal(est.leaf_labels_, labels)  # exact: the leaves are the training rows
    fitted = segforge.AgglomerativeClustering(n_clusters=3, device="cpu").fit(x)
    np.testing.assert_array_equal(est.linkage_matrix_, fitted.linkage_matrix_)
    np.testing.assert_array_equal(est.children_, fitted.children_)
    assert _same_partition(fitted.labels_, labels)  # the CLI numbers segments by their lowest row
    assert len(est.segment_names_) == 3
    # Pickles and predicts the same.
    import pickle
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict(x), labels)


def test_cli_threshold_and_two_stage_models(tmp_path):
    import pandas as pd
    x, _ = make_blobs(n_samples=1500, centers=4, n_features=3, cluster_std=0.7, random_state=2)
    x = x.astype(np.float32)
    f = tmp_path / "features.h5"
    _write_features(f, x)
    # By height, between two of the tree's heights (where the CLI's <= and scikit-learn's < agree).
    h = np.unique(segforge.AgglomerativeClustering(n_clusters=None, distance_threshold=0.0, linkage="average",
                                                   device="cpu").fit(x).distances_)
    t = float((h[-4] + h[-3]) / 2)  # the last three merges undone
    model, seg = tmp_path / "h.h5", tmp_path / "h.csv"
    _cli("fit", f, "--algorithm", "agglomerative", "--linkage", "average", "--distance-threshold", repr(t),
         "-o", model, "--labels", seg, "--device", "cpu")
    est = segforge.load_model(model)
    assert est.n_clusters is None and est.distance_threshold == t and est.n_clusters_ == 4
    labels = pd.read_csv(seg)["segment"].to_numpy()
    np.testing.assert_array_equal(est.predict(x), labels)
    py = segforge.AgglomerativeClustering(n_clusters=None, distance_threshold=t, linkage="average", device="cpu").fit(x)
    assert py.n_clusters_ == 4 and _same_partition(py.labels_, labels)
    # Two-stage: the leaves are the micro-clusters' centres.
    model, seg = tmp_path / "t.h5", tmp_path / "t.csv"
    _cli("fit", f, "--algorithm", "agglomerative", "-k", 4, "--strategy", "two-stage", "--micro-clusters", 40,
         "-o", model, "--labels", seg, "--device", "cpu")
    est = segforge.load_model(model)
    assert est.strategy_ == "two-stage" and est.n_leaves_ <= 40 and est.children_.shape == (est.n_leaves_ - 1, 2)
    np.testing.assert_array_equal(est.predict(x), pd.read_csv(seg)["segment"].to_numpy())


BAD = [
    ({"n_clusters": None}, "Exactly one of n_clusters and distance_threshold"),
    ({"n_clusters": 3, "distance_threshold": 1.0}, "Exactly one of n_clusters and distance_threshold"),
    ({"n_clusters": 0}, "n_clusters=0"),
    ({"n_clusters": 2.5}, "n_clusters=2.5"),
    ({"n_clusters": None, "distance_threshold": -1.0}, "distance_threshold=-1.0"),
    ({"n_clusters": None, "distance_threshold": float("nan")}, "distance_threshold=nan"),
    ({"n_clusters": None, "distance_threshold": float("inf")}, "distance_threshold=inf"),
    ({"n_clusters": None, "distance_threshold": 1.0, "compute_full_tree": False}, "compute_full_tree must be True"),
    ({"compute_full_tree": "yes"}, "compute_full_tree='yes'"),
    ({"linkage": "centroid"}, "linkage='centroid'"),
    ({"metric": "manhattan"}, "Ward can only work with euclidean distances"),
    ({"metric": "l2"}, "Ward can only work with euclidean distances"),
    ({"metric": "manhattan", "linkage": "average"}, "Euclidean only"),
    ({"metric": "precomputed", "linkage": "complete"}, "Euclidean only"),
    ({"metric": "euclidean", "affinity": "euclidean"}, "Both `affinity` and `metric`"),
    ({"connectivity": np.eye(300)}, "connectivity"),
    ({"memory": 3}, "'memory' should be None"),
    ({"strategy": "fast"}, "strategy='fast'"),
    ({"n_micro_clusters": 0}, "n_micro_clusters=0"),
    ({"linkage": "average", "strategy": "two-stage"}, "only ward linkage has a two-stage path"),
    ({"n_clusters": 301}, "n_samples=300 should be >= n_clusters=301"),
    ({"device": "tpu"}, "device='tpu'"),
    ({"n_threads": 0}, "n_threads=0"),
    ({"compute_distances": "yes"}, "compute_distances='yes'"),
]


@pytest.mark.parametrize("kwargs,message", BAD, ids=[str(k) for k, _ in BAD])
def test_bad_parameters(kwargs, message):
    x = _data("normal")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        segforge.AgglomerativeClustering(**kwargs).fit(x)


def test_auto_strategy_runs_only_ward_above_20000_rows():
    x = np.random.default_rng(4).normal(size=(20001, 2)).astype(np.float32)
    for method in ("complete", "average", "single"):
        with pytest.raises(ValueError, match="strategy='exact'"):
            segforge.AgglomerativeClustering(n_clusters=2, linkage=method, device="cpu").fit(x)
    est = segforge.AgglomerativeClustering(n_clusters=2, device="cpu", n_micro_clusters=100).fit(x)
    assert est.strategy_ == "two-stage" and est.n_leaves_ <= 100


def test_accepted_compatibility_parameters():
    x = _data("normal")
    ref = segforge.AgglomerativeClustering(n_clusters=3, linkage="average", device="cpu").fit(x).labels_
    for kwargs in ({"metric": "euclidean"}, {"metric": "l2"}, {"memory": "/nonexistent/cache"},
                   {"compute_full_tree": False}, {"compute_full_tree": True}):
        est = segforge.AgglomerativeClustering(n_clusters=3, linkage="average", device="cpu", **kwargs).fit(x)
        np.testing.assert_array_equal(est.labels_, ref)
    with pytest.warns(FutureWarning, match="affinity"):
        est = segforge.AgglomerativeClustering(n_clusters=3, linkage="average", affinity="euclidean", device="cpu").fit(x)
    np.testing.assert_array_equal(est.labels_, ref)
    # Too few rows, as scikit-learn: at least 2.
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        segforge.AgglomerativeClustering(n_clusters=1, device="cpu").fit(x[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        two = segforge.AgglomerativeClustering(n_clusters=1, device="cpu").fit(x[:2])
    assert two.labels_.tolist() == [0, 0] and two.children_.tolist() == [[0, 1]]


def test_load_model_refuses_a_birch_model(tmp_path):
    # A BIRCH model labels rows by its subclusters; no estimator here does, so it is refused
    # rather than loaded as a K-Means that would label rows by the segment centres.
    x = _data("blobs")
    f = tmp_path / "features.h5"
    _write_features(f, x)
    model = tmp_path / "birch.h5"
    _cli("fit", f, "--algorithm", "birch", "-k", 3, "-o", model, "--device", "cpu")
    with pytest.raises(ValueError, match="a birch model"):
        segforge.load_model(model)
