"""segforge's Python package against independent references: scikit-learn from the same initial
centres, hand-computed toys, repetition for weights, the CLI on the same files."""

import logging
import os
import signal
import subprocess
import threading
import time

import h5py
import numpy as np
import pytest
import sklearn.cluster
import sklearn.metrics
from sklearn.datasets import make_blobs

import segforge
from segforge import _segforge

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("SEGFORGE_CLI", os.path.join(ROOT, "build", "tools", "segforge"))


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=3000, centers=5, n_features=6, cluster_std=1.5, random_state=7)
    return X.astype(np.float32), y


# ---- same results as scikit-learn -------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_matches_sklearn_from_same_init(blobs, weighted):
    X, _ = blobs
    rng = np.random.RandomState(0)
    init = X[rng.choice(len(X), 5, replace=False)].copy()
    w = rng.uniform(0.5, 2.0, len(X)).astype(np.float32) if weighted else None
    ours = segforge.KMeans(5, init=init, max_iter=300, tol=1e-4, device="cpu").fit(X, sample_weight=w)
    ref = sklearn.cluster.KMeans(5, init=init.astype(np.float64), n_init=1, max_iter=300, tol=1e-4,
                                 algorithm="lloyd").fit(X.astype(np.float64), sample_weight=w)
    assert np.array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-4, atol=1e-4)
    assert np.array_equal(ours.predict(X), ref.predict(X.astype(np.float64)))
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-4, atol=1e-3)
    assert ours.score(X, sample_weight=w) == pytest.approx(ref.score(X.astype(np.float64), sample_weight=w), rel=1e-5)


def test_kmeans_toy_by_hand():
    # Two obvious groups; centres are their means, inertia the sum of squared deviations.
    X = np.array([[0, 0], [0, 2], [10, 0], [10, 2]], dtype=np.float32)
    km = segforge.KMeans(2, init=np.array([[0, 1], [10, 1]], dtype=np.float32), device="cpu").fit(X)
    np.testing.assert_array_equal(km.labels_, [0, 0, 1, 1])
    np.testing.assert_allclose(km.cluster_centers_, [[0, 1], [10, 1]])
    assert km.inertia_ == pytest.approx(4.0)
    np.testing.assert_allclose(km.transform(np.array([[0, 1]], dtype=np.float32)), [[0, 10]])


def test_sample_weight_equals_repetition(blobs):
    X, _ = blobs
    X = X[:600]
    reps = np.random.RandomState(1).randint(1, 4, len(X))
    init = X[:5].copy()
    a = segforge.KMeans(5, init=init, device="cpu").fit(X, sample_weight=reps.astype(np.float32))
    b = segforge.KMeans(5, init=init, device="cpu").fit(np.repeat(X, reps, axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-5)


@pytest.mark.parametrize("bad,message", [
    (lambda n: -np.ones(n), "must be >= 0"),
    (lambda n: np.zeros(n), "all zero"),
    (lambda n: np.r_[np.ones(n - 1), np.nan], "sample_weight contains NaN"),
    (lambda n: np.r_[np.ones(n - 1), np.inf], "sample_weight contains infinity"),
    (lambda n: np.ones(n + 1), "sample_weight"),
])
def test_bad_sample_weight(blobs, bad, message):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        segforge.KMeans(3, device="cpu").fit(X, sample_weight=bad(len(X)))


@pytest.mark.parametrize("params,message", [
    ({"n_clusters": 0}, "n_clusters=0"),
    ({"n_clusters": 5000}, "n_samples=3000 should be >= n_clusters=5000"),
    ({"init": "kmeans"}, "init='kmeans'"),
    ({"algorithm": "elkan"}, "algorithm='elkan'"),
    ({"device": "tpu"}, "device='tpu'"),
    ({"n_threads": 0}, "n_threads=0"),
    ({"refine": "always"}, "refine='always'"),
    ({"init": np.zeros((2, 6), np.float32), "n_clusters": 3}, "shape of the initial centers"),
])
def test_bad_parameters(blobs, params, message):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        segforge.KMeans(**{"n_clusters": 3, "device": "cpu", **params}).fit(X)


def test_minibatch_close_to_sklearn(blobs):
    X, y = blobs
    ours = segforge.MiniBatchKMeans(5, random_state=0, batch_size=256, device="cpu").fit(X)
    ref = sklearn.cluster.MiniBatchKMeans(5, random_state=0, batch_size=256, n_init=3).fit(X)
    # Different random streams: compare the quality, against the truth and each other.
    assert sklearn.metrics.adjusted_rand_score(y, ours.labels_) > 0.9
    assert ours.inertia_ <= 1.05 * ref.inertia_
    assert -ours.score(X) == pytest.approx(ours.inertia_, rel=1e-5)


def test_minibatch_partial_fit(blobs):
    X, y = blobs
    mb = segforge.MiniBatchKMeans(5, random_state=0, device="cpu")
    for chunk in np.array_split(X, 10):
        mb.partial_fit(chunk)
    assert mb.n_steps_ == 10
    np.testing.assert_allclose(mb._counts.sum(), len(X))
    assert sklearn.metrics.adjusted_rand_score(y, mb.predict(X)) > 0.8


# ---- determinism ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [segforge.KMeans, segforge.MiniBatchKMeans])
def test_same_seed_same_result_any_thread_count(blobs, cls):
    X, _ = blobs
    fits = [cls(5, random_state=3, n_init=2, device="cpu", n_threads=t).fit(X) for t in (1, 2, 1, 2)]
    for f in fits[1:]:
        assert np.array_equal(f.cluster_centers_, fits[0].cluster_centers_)
        assert np.array_equal(f.labels_, fits[0].labels_)
        assert f.inertia_ == fits[0].inertia_


# ---- memory: zero-copy, copy=False -----------------------------------------------------------

def test_float32_c_contiguous_is_not_copied(blobs):
    X, _ = blobs
    segforge.KMeans(3, random_state=0, device="cpu").fit(X)
    assert _segforge._last_rows_address() == X.ctypes.data
    segforge.silhouette_score(X, np.arange(len(X)) % 3, device="cpu")
    assert _segforge._last_rows_address() == X.ctypes.data
    # A float64 array is converted: the engine reads another buffer.
    X64 = X.astype(np.float64)
    segforge.KMeans(3, random_state=0, device="cpu").fit(X64)
    assert _segforge._last_rows_address() not in (0, X64.ctypes.data)


@pytest.mark.parametrize("make", [lambda X: X.astype(np.float64), lambda X: np.asfortranarray(X),
                                  lambda X: X[:, ::2], lambda X: X.tolist()])
def test_copy_false_refuses_a_copy(blobs, make):
    X, _ = blobs
    with pytest.raises(ValueError, match="copy=False"):
        segforge.KMeans(3, device="cpu", copy=False).fit(make(X))
    with pytest.raises(ValueError, match="copy=False"):
        segforge.silhouette_score(make(X), np.arange(len(X)) % 3, copy=False)
    segforge.KMeans(3, device="cpu", copy=False).fit(X)  # float32 C-contiguous: fine


# ---- progress, threads, interrupts ---------------------------------------------------------

def test_progress_goes_to_logging_not_stdout(blobs, caplog, capfd):
    X, _ = blobs
    with caplog.at_level(logging.DEBUG, logger="segforge"):
        segforge.KMeans(5, random_state=0, device="cpu").fit(X)
    assert any("lloyd run 0 step 1/300" in r.getMessage() for r in caplog.records)
    out, _ = capfd.readouterr()
    assert out == ""


def test_gil_released_during_fit():
    X = np.random.RandomState(0).rand(400_000, 16).astype(np.float32)
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    t = threading.Thread(target=tick)
    t.start()
    start = time.perf_counter()
    segforge.KMeans(32, random_state=0, max_iter=50, tol=0, device="cpu", n_threads=1).fit(X)
    end = time.perf_counter()
    stop.set()
    t.join()
    during = [x for x in ticks if start < x < end]
    # With the GIL held for the whole fit, the other thread would not run at all meanwhile.
    assert end - start > 0.2 and len(during) >= 0.25 * (end - start) / 0.005


def test_keyboard_interrupt_stops_a_long_fit():
    X = np.random.RandomState(0).rand(300_000, 16).astype(np.float32)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        segforge.KMeans(64, random_state=0, max_iter=10_000, tol=0, device="cpu").fit(X)
    assert time.perf_counter() - start < 20
    timer.join()
    # The engine is usable afterwards.
    km = segforge.KMeans(3, random_state=0, device="cpu").fit(X[:1000])
    assert km.labels_.shape == (1000,)


def test_exception_in_progress_callback_stops_the_driver(blobs):
    X, _ = blobs

    def boom(p):
        raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        _segforge.fit_kmeans(_segforge.Engine("cpu", 0), X, None, 5, "k-means++", None, 1, 300,
                             1e-4, 0, "none", boom)


# ---- metrics ---------------------------------------------------------------------------------

def test_metrics_match_sklearn(blobs):
    X, y = blobs
    X64 = X.astype(np.float64)
    assert segforge.silhouette_score(X, y, device="cpu") == pytest.approx(
        sklearn.metrics.silhouette_score(X64, y), abs=1e-5)
    np.testing.assert_allclose(segforge.silhouette_samples(X, y, device="cpu"),
                               sklearn.metrics.silhouette_samples(X64, y), atol=1e-5)
    assert segforge.davies_bouldin_score(X, y, device="cpu") == pytest.approx(
        sklearn.metrics.davies_bouldin_score(X64, y), rel=1e-5)
    assert segforge.calinski_harabasz_score(X, y, device="cpu") == pytest.approx(
        sklearn.metrics.calinski_harabasz_score(X64, y), rel=1e-5)
    # String labels are encoded as scikit-learn does.
    names = np.array(["abcde"[i] for i in y])
    assert segforge.davies_bouldin_score(X, names) == pytest.approx(
        sklearn.metrics.davies_bouldin_score(X64, y), rel=1e-5)


def test_sampled_silhouette_and_standard_error(blobs):
    X, y = blobs
    exact = sklearn.metrics.silhouette_score(X.astype(np.float64), y)
    score, se = segforge.silhouette_score(X, y, sample_size=500, random_state=0,
                                          return_standard_error=True, device="cpu")
    assert se is not None and 0 < se < 0.05
    assert abs(score - exact) < 4 * se + 1e-3
    assert segforge.silhouette_score(X, y, return_standard_error=True)[1] is None


def test_metric_bad_labels(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="Number of labels is 1"):
        segforge.silhouette_score(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="euclidean"):
        segforge.silhouette_score(X, np.arange(len(X)) % 2, metric="cosine")


def test_sweep_finds_the_blobs(blobs):
    X, _ = blobs
    res = segforge.sweep(X, 2, 8, criteria=["silhouette", "elbow", "davies_bouldin",
                                            "calinski_harabasz"], random_state=0, device="cpu")
    assert [r["k"] for r in res["records"]] == list(range(2, 9))
    assert res["recommended_k"] == 5
    # The record for K equals an independent fit with the same seed.
    km = segforge.KMeans(5, random_state=0, n_init=1, device="cpu").fit(X)
    assert res["records"][3]["inertia"] == pytest.approx(km.inertia_, rel=1e-12)


# ---- model.h5 round trip with the CLI --------------------------------------------------------

def _features(path, X, names):
    with h5py.File(path, "w") as f:
        f["features"] = X
        f["feature_names"] = np.array(names, dtype=h5py.string_dtype())


def _cli(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True)


@pytest.mark.skipif(not os.path.exists(CLI), reason="the segforge CLI is not built")
def test_model_round_trip_with_cli(blobs, tmp_path):
    import pandas as pd
    X, _ = blobs
    names = ["a", "b", "c", "d", "e", "f"]
    feats = tmp_path / "features.h5"
    _features(feats, X, names)

    # Python fit -> model.h5 -> CLI predict: same labels.
    km = segforge.KMeans(5, random_state=0, device="cpu").fit(pd.DataFrame(X, columns=names))
    km.save(tmp_path / "py_model.h5")
    r = _cli("predict", str(tmp_path / "py_model.h5"), str(feats), "-o", str(tmp_path / "l.h5"), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "l.h5") as f:
        assert np.array_equal(f["labels"][:], km.labels_)

    # CLI fit -> model.h5 -> load_model: same centres as the CLI's and as Python's fit with the
    # same seed (same driver), same labels as the CLI's.
    r = _cli("fit", str(feats), "-k", "5", "-o", str(tmp_path / "cli_model.h5"), "--n-init", "1",
             "--refine", "none", "--seed", "0", "--device", "cpu", "--labels", str(tmp_path / "cl.h5"))
    assert r.returncode == 0, r.stderr
    loaded = segforge.load_model(tmp_path / "cli_model.h5")
    with h5py.File(tmp_path / "cli_model.h5") as f:
        np.testing.assert_array_equal(loaded.cluster_centers_, f["centroids"][:])
    with h5py.File(tmp_path / "cl.h5") as f:
        assert np.array_equal(loaded.predict(pd.DataFrame(X, columns=names)), f["labels"][:])
    assert list(loaded.feature_names_in_) == names
    assert len(loaded.segment_names_) == 5
    np.testing.assert_array_equal(loaded.cluster_centers_, km.cluster_centers_)

    # Loaded and saved again: the CLI still reads it.
    loaded.save(tmp_path / "again.h5")
    r = _cli("predict", str(tmp_path / "again.h5"), str(feats), "-o", str(tmp_path / "l2.h5"), "--device", "cpu")
    assert r.returncode == 0, r.stderr


def test_minibatch_model_keeps_counts(blobs, tmp_path):
    X, _ = blobs
    mb = segforge.MiniBatchKMeans(4, random_state=0, device="cpu").fit(X)
    mb.save(tmp_path / "mb.h5")
    back = segforge.load_model(tmp_path / "mb.h5")
    assert isinstance(back, segforge.MiniBatchKMeans)
    np.testing.assert_allclose(back._counts, mb._counts)
    assert np.array_equal(back.predict(X), mb.predict(X))


def test_load_model_bad_file(tmp_path):
    p = tmp_path / "not_a_model.h5"
    p.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not_a_model.h5"):
        segforge.load_model(p)


# ---- the CLI's --sample-weight (fit, score, sweep) --------------------------------------------

@pytest.mark.skipif(not os.path.exists(CLI), reason="the segforge CLI is not built")
def test_cli_sample_weight_matches_python(blobs, tmp_path):
    X, _ = blobs
    w = np.random.RandomState(2).uniform(0, 3, len(X))
    feats = tmp_path / "features.h5"
    _features(feats, X, ["a", "b", "c", "d", "e", "f"])
    with h5py.File(feats, "a") as f:
        f["weight"] = w
    r = _cli("fit", str(feats), "-k", "4", "-o", str(tmp_path / "m.h5"), "--n-init", "1", "--refine",
             "none", "--seed", "0", "--device", "cpu", "--sample-weight", "weight",
             "--labels", str(tmp_path / "l.h5"))
    assert r.returncode == 0, r.stderr
    km = segforge.KMeans(4, random_state=0, device="cpu").fit(X, sample_weight=w)
    with h5py.File(tmp_path / "m.h5") as f:
        np.testing.assert_array_equal(f["centroids"][:], km.cluster_centers_)
        assert float(f.attrs["inertia"]) == pytest.approx(km.inertia_, rel=1e-9)
    unweighted = segforge.KMeans(4, random_state=0, device="cpu").fit(X)
    assert not np.array_equal(unweighted.cluster_centers_, km.cluster_centers_)
    for cmd in (["score", str(feats), "--labels", str(tmp_path / "l.h5")],
                ["sweep", str(feats), "--k", "2:4", "-o", str(tmp_path / "s.json")]):
        r = _cli(*cmd, "--device", "cpu", "--sample-weight", "/weight")
        assert r.returncode == 0, (cmd, r.stderr)


@pytest.mark.skipif(not os.path.exists(CLI), reason="the segforge CLI is not built")
@pytest.mark.parametrize("weights,message", [
    (lambda n: np.ones(n - 1), "2999 weights for 3000 rows"),
    (lambda n: np.r_[np.ones(n - 1), -1.0], "row 2999: weight -1; weights must be finite and >= 0"),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], "row 0: weight nan"),
    (lambda n: np.zeros(n), "every weight is 0"),
    (lambda n: np.ones((n, 2)), "expected 1-D"),
    (None, "features.h5: no dataset '/weight'"),  # missing: the reader's own message
])
@pytest.mark.parametrize("command", ["fit", "score", "sweep"])
def test_cli_bad_sample_weight(blobs, tmp_path, weights, message, command):
    X, _ = blobs
    feats = tmp_path / "features.h5"
    _features(feats, X, ["a", "b", "c", "d", "e", "f"])
    if weights is not None:
        with h5py.File(feats, "a") as f:
            f["weight"] = weights(len(X))
    with h5py.File(tmp_path / "l.h5", "w") as f:
        f["labels"] = (np.arange(len(X)) % 3).astype(np.int32)
    out = tmp_path / "out.h5"
    args = {"fit": ["fit", str(feats), "-k", "3", "-o", str(out)],
            "score": ["score", str(feats), "--labels", str(tmp_path / "l.h5")],
            "sweep": ["sweep", str(feats), "--k", "2:3", "-o", str(tmp_path / "s.json")]}[command]
    r = _cli(*args, "--device", "cpu", "--sample-weight", "weight")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert weights is None or "features.h5:/weight" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "s.json").exists()
