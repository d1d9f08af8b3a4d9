"""segforge.profiles / names / stability and read_features / write_features against independent
references: pandas groupby means and hand-computed z-scores, the CLI's segments.json and
stability.json on the same file, h5py reading what write_features wrote, the README's example."""

import json
import os
import re
import subprocess

import h5py
import numpy as np
import pandas as pd
import pytest

import segforge

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("SEGFORGE_CLI", os.path.join(ROOT, "build", "tools", "segforge"))
NAMES = ["recency_days", "frequency", "monetary_total", "clicks_12m"]


def donors(n=1200, seed=3):
    """Four groups that differ in recency, frequency, money and engagement (standardised)."""
    rng = np.random.RandomState(seed)
    means = np.array([[2, -1, -1, 0], [-1, 2, 1, 1], [-1, -1, 2, -1], [0, 0, -1, 2]], dtype=float)
    g = rng.randint(0, 4, n)
    X = (means[g] + rng.normal(0, 0.6, (n, 4))).astype(np.float32)
    return X, g


def run_cli(*args):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)


# ---- profiles ---------------------------------------------------------------------------------

def test_profiles_are_pandas_groupby_means_and_hand_z_scores():
    X, g = donors()
    labels = np.array(["b", "a", "d", "c"])[g]  # any labels: segments in sorted order, as groupby
    prof = segforge.profiles(X, labels, NAMES)
    df = pd.DataFrame(X.astype(np.float64), columns=NAMES)
    means = df.groupby(labels).mean()
    assert list(prof.index) == ["a", "b", "c", "d"]
    sizes = pd.Series(labels).value_counts().sort_index()
    np.testing.assert_array_equal(prof["size"].to_numpy(), sizes.to_numpy())
    np.testing.assert_allclose(prof["share"].to_numpy(), sizes.to_numpy() / len(X), rtol=1e-12)
    col_mean, col_sd = df.mean().to_numpy(), df.std(ddof=0).to_numpy()
    for j, f in enumerate(NAMES):
        # Centres are float32 (the engine's precision): 1e-6 relative.
        np.testing.assert_allclose(prof["centre." + f].to_numpy(), means[f].to_numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(prof["z_scores." + f].to_numpy(),
                                   (means[f].to_numpy() - col_mean[j]) / col_sd[j], rtol=1e-5, atol=1e-5)
    # top_features: the three largest |z|, largest first (hand order from the z table).
    for seg, row in prof.iterrows():
        z = np.abs([row["z_scores." + f] for f in NAMES])
        assert row["top_features"] == [NAMES[j] for j in np.argsort(-z, kind="stable")[:3]]


def test_profiles_toy_by_hand_with_scaler_and_records():
    # Column 0 mean 2, population sd 1 (values 1, 1, 3, 3); column 1 constant (z = 0).
    X = np.array([[1, 5], [1, 5], [3, 5], [3, 5]], dtype=np.float32)
    scaler = {"mean": [1.0, 0.0], "scale": [2.0, 1.0], "transform": ["log1p", "identity"]}
    recs = segforge.profiles(X, [0, 0, 1, 1], ["x", "y"], scaler=scaler, n_top=1, as_frame=False)
    assert [r["size"] for r in recs] == [2, 2] and [r["share"] for r in recs] == [0.5, 0.5]
    assert recs[0]["centre"] == {"x": 1.0, "y": 5.0}
    assert recs[0]["z_scores"] == {"x": -1.0, "y": 0.0} and recs[1]["z_scores"]["x"] == 1.0
    assert recs[1]["top_features"] == ["x"]
    # original = expm1(v * scale + mean) for log1p; identity: v * scale + mean.
    assert recs[1]["centre_original"]["x"] == pytest.approx(np.expm1(3 * 2.0 + 1.0), rel=1e-12)
    assert recs[1]["centre_original"]["y"] == pytest.approx(5.0)


def test_profiles_with_centers_keep_empty_segments():
    X = np.array([[0, 0], [0, 2], [10, 0], [10, 2]], dtype=np.float32)
    centers = np.array([[0, 1], [10, 1], [50, 50]], dtype=np.float32)
    recs = segforge.profiles(X, np.array([0, 0, 1, 1]), centers=centers, as_frame=False)
    assert [r["size"] for r in recs] == [2, 2, 0]
    assert recs[2]["centre"] == {"f0": 50.0, "f1": 50.0}  # default names f0, f1 as the CLI's


@pytest.mark.parametrize("call, message", [
    (lambda X: segforge.profiles(X, [0, 1]), "labels: (2,) values for 6 rows"),
    (lambda X: segforge.profiles(X, [0, 1, 0, 1, 0, 5], centers=np.zeros((2, 2))), "labels row 5 is 5"),
    (lambda X: segforge.profiles(X, [0, 1, 0, 1, 0, 1], ["a"]), "feature_names: 1 names for 2 columns"),
    (lambda X: segforge.profiles(X, [0, 1, 0, 1, 0, 1], ["a", "a"]), "feature_names:/feature_names"),
    (lambda X: segforge.profiles(X, [0, 1, 0, 1, 0, 1], centers=np.zeros((2, 3))), "centers"),
    (lambda X: segforge.names(X, [0, 1, 0, 1, 0, 1], roles=["recency", "money"]), "'money' for feature 'f1' is not a role"),
    (lambda X: segforge.names(X, [0, 1, 0, 1, 0, 1], roles={"zz": "recency"}), "roles: no feature 'zz'"),
    (lambda X: segforge.names(X, [0, 1, 0, 1, 0, 1], audience="voters"), "audience='voters'"),
])
def test_segment_bad_input(call, message):
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    with pytest.raises(ValueError, match=re.escape(message)):
        call(X)


# ---- names and stability against the CLI on the same file -----------------------------------

@pytest.fixture(scope="module")
def cli_fit(tmp_path_factory):
    """A Python-written features file, fitted by the CLI (its model, labels and segments.json)."""
    d = tmp_path_factory.mktemp("cli_fit")
    X, _ = donors()
    path = d / "donors.h5"
    segforge.write_features(path, X, ids=np.arange(len(X)) + 1000, feature_names=NAMES,
                            feature_roles=["recency", "frequency", "monetary", "engagement"], audience="donors")
    r = run_cli("fit", path, "-k", 4, "--seed", 0, "--device", "cpu", "-o", d / "model.h5",
                "--labels", d / "labels.h5")
    assert r.returncode == 0, r.stderr
    with open(d / "model.segments.json") as f:
        seg = json.load(f)
    with h5py.File(d / "labels.h5", "r") as f:
        labels = f["/labels"][...]
        ids = f["/ids"][...]
    return dict(dir=d, path=path, X=X, labels=labels, ids=ids, segments=seg,
                model=segforge.load_model(d / "model.h5"))


def test_cli_fits_a_python_written_file(cli_fit):
    np.testing.assert_array_equal(cli_fit["ids"], np.arange(len(cli_fit["X"])) + 1000)  # ids kept
    assert list(cli_fit["model"].feature_names_in_) == NAMES


def test_names_match_the_cli_segments_json(cli_fit):
    f = segforge.read_features(cli_fit["path"])
    got = segforge.names(f.X, cli_fit["labels"], f.feature_names, centers=cli_fit["model"].cluster_centers_,
                         roles=f.feature_roles, audience=f.audience)
    want = cli_fit["segments"]["segments"]
    assert list(got.index) == [s["segment"] for s in want]
    assert list(got["name"]) == [s["name"] for s in want]
    assert list(got["description"]) == [s["description"] for s in want]
    assert list(got["outreach"]) == [s["outreach"] for s in want]
    # The profiles behind them: sizes and z-scores as segments.json has them.
    prof = segforge.profiles(f.X, cli_fit["labels"], f.feature_names, centers=cli_fit["model"].cluster_centers_,
                             scaler=f.scaler, as_frame=False)
    for p, s in zip(prof, want):
        assert p["size"] == s["size"]
        for name in NAMES:
            assert p["z_scores"][name] == pytest.approx(s["z_scores"][name], rel=1e-9, abs=1e-12)
        assert p["top_features"] == [t["feature"] for t in s["top_features"]]


def test_names_without_centers_are_the_same_for_a_converged_fit(cli_fit):
    # The label means of a converged Lloyd fit are its centres (to the tolerance): same words.
    f = segforge.read_features(cli_fit["path"])
    got = segforge.names(f.X, cli_fit["labels"], f.feature_names, roles=f.feature_roles, audience=f.audience)
    assert list(got["name"]) == [s["name"] for s in cli_fit["segments"]["segments"]]


def test_roles_as_dict_and_audience_change_the_words(cli_fit):
    X, labels = cli_fit["X"], cli_fit["labels"]
    customers = segforge.names(X, labels, NAMES, roles={"monetary_total": "monetary"}, audience="customers")
    donors_ = segforge.names(X, labels, NAMES, roles={"monetary_total": "monetary"}, audience="donors")
    assert all(n.endswith("Customers") for n in customers["name"])
    assert all(n.endswith("Donors") for n in donors_["name"])


def test_stability_matches_the_cli(cli_fit, tmp_path):
    out = tmp_path / "stability.json"
    r = run_cli("stability", cli_fit["path"], "-k", 4, "--runs", 4, "--seed", 5, "--device", "cpu", "-o", out)
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        want = json.load(f)
    got = segforge.stability(cli_fit["X"], 4, runs=4, random_state=5, device="cpu")
    for key in ("k", "runs", "n_samples", "eval_rows", "reference_sizes", "segment_verdicts", "stable", "verdict"):
        assert got[key] == want[key], key
    for key in ("ari_mean", "ari_min", "ari_reference_mean"):
        assert got[key] == pytest.approx(want[key], rel=1e-12), key
    np.testing.assert_allclose(got["jaccard_mean"], want["jaccard_mean"], rtol=1e-12)
    assert list(got["segments"]["verdict"]) == want["segment_verdicts"]
    # Four well separated groups: every run finds them.
    assert got["stable"] and got["ari_mean"] > 0.95


@pytest.mark.parametrize("kwargs, message", [
    (dict(runs=1), "runs=1 should be >= 2"),
    (dict(sample_fraction=0.0), "sample fraction 0.000 should be in (0, 1]"),
    (dict(init="array"), "init cannot be an array"),
    (dict(refine="always"), "refine='always'"),
])
def test_stability_bad_input(kwargs, message):
    X, _ = donors(200)
    with pytest.raises(ValueError, match=re.escape(message)):
        segforge.stability(X, 3, **kwargs)


# ---- features files ---------------------------------------------------------------------------

@pytest.mark.parametrize("ids", [np.array([7, -3, 2**40], dtype=np.int64), ["a", "β", "x y"], None])
def test_features_round_trip(tmp_path, ids):
    X = np.array([[1.5, -2], [0, 3.25], [1e-8, 7]], dtype=np.float32)
    path = tmp_path / "f.h5"
    scaler = {"mean": [1.0, 2.0], "scale": [0.5, 4.0], "transform": ["log1p", "identity"]}
    segforge.write_features(path, X, ids=ids, feature_names=["recency_days", "spend"],
                            feature_roles=[None, "monetary"], audience="customers", scaler=scaler,
                            attributes={"as_of": "2026-01-31"})
    f = segforge.read_features(path)
    X2, ids2, names2 = f
    np.testing.assert_array_equal(X2, X)
    assert X2.dtype == np.float32 and names2 == ["recency_days", "spend"]
    if ids is None:
        assert ids2 is None
    else:
        assert list(ids2) == list(ids)
    assert f.feature_roles == ["recency", "monetary"]  # None: inferred from the name on writing
    assert f.audience == "customers" and f.attributes["as_of"] == "2026-01-31"
    assert f.scaler["mean"] == [1.0, 2.0] and f.scaler["transform"] == ["log1p", "identity"]
    # An independent reader sees the documented layout (docs/formats.md).
    with h5py.File(path, "r") as h:
        np.testing.assert_array_equal(h["/features"][...], X)
        assert [n.decode() if isinstance(n, bytes) else n for n in h["/feature_names"][...]] == names2
        assert h.attrs["format"] in ("segforge-features", b"segforge-features")


def test_dataframe_in_and_out(tmp_path):
    df = pd.DataFrame({"recency": [1.0, 2.0, 3.0], "frequency": [4, 5, 6]},
                      index=pd.Index(["d1", "d2", "d3"], name="donor"))
    path = tmp_path / "df.h5"
    segforge.write_features(path, df)  # columns are the names, the index the ids
    back = segforge.read_features(path).to_frame()
    assert list(back.columns) == ["recency", "frequency"] and list(back.index) == ["d1", "d2", "d3"]
    np.testing.assert_array_equal(back.to_numpy(), df.to_numpy(dtype=np.float32))
    # A RangeIndex is row numbers, not ids.
    segforge.write_features(path, df.reset_index(drop=True))
    assert segforge.read_features(path).ids is None


def test_read_a_cli_written_file(tmp_path):
    path = tmp_path / "synth.h5"
    r = run_cli("synth", "-o", path, "--rows", 500, "--features", 3, "--segments", 2, "--seed", 1)
    assert r.returncode == 0, r.stderr
    X, ids, names = segforge.read_features(path)
    with h5py.File(path, "r") as h:
        np.testing.assert_array_equal(X, h["/features"][...].astype(np.float32))
        assert len(names) == h["/features"].shape[1]


@pytest.mark.parametrize("kwargs, message", [
    (dict(X=np.array([[1, 2], [3, np.nan]])), "X row 1 (0-based), column 1 'a1' is NaN"),
    (dict(X=np.array([[np.inf, 2]])), "X row 0 (0-based), column 0 'a0' is infinite"),
    (dict(X=np.zeros((0, 2))), "X has 0 rows"),
    (dict(X=np.zeros((2, 0)), feature_names=[]), "X has 0 columns"),
    (dict(X=np.zeros(3)), "X: expected a 2-D array"),
    (dict(feature_names=["a", "a"]), "/feature_names: feature name 'a' appears twice"),
    (dict(feature_names=["a"]), "feature_names: 1 names for 2 columns"),
    (dict(ids=[1, 2, 3]), "3 ids for 2 rows of X"),
    (dict(ids=[1.5, 2.5]), "float ids would not round-trip"),
    (dict(feature_roles=["recency", "money"]), "'money', not a role; use recency, tenure, frequency, monetary, engagement or other; fix the feature_roles argument"),
    (dict(feature_roles=["recency"]), "/feature_roles"),
    (dict(audience="voters"), "attribute audience is 'voters'; use donors or customers; fix the audience argument"),
    (dict(scaler={"mean": [0, 0], "scale": [1, 0], "transform": ["identity", "identity"]}), "/scaler/scale: value 1 (0-based) is 0"),
])
def test_write_features_bad_input_writes_nothing(tmp_path, kwargs, message):
    path = tmp_path / "bad.h5"
    args = dict(X=np.ones((2, 2)), feature_names=["a0", "a1"])
    args.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(message)) as e:
        segforge.write_features(path, args.pop("X"), **args)
    assert "segforge-prep" not in str(e.value)  # the remedy is the argument, not re-running prep
    assert os.listdir(tmp_path) == []  # nothing written, no temporary left


def test_read_features_bad_file(tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "missing.h5"))):
        segforge.read_features(tmp_path / "missing.h5")
    path = tmp_path / "nan.h5"
    with h5py.File(path, "w") as h:
        h["/features"] = np.array([[1, 2], [np.nan, 3]], dtype=np.float32)
    with pytest.raises(ValueError, match=r"row 1.*NaN"):
        segforge.read_features(path)


# ---- the README's notebook example, verbatim ------------------------------------------------

def readme_example():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("\n## Python\n"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs(tmp_path, monkeypatch):
    rng = np.random.RandomState(0)
    g = rng.randint(0, 3, 1500)
    pd.DataFrame({"donor_id": np.arange(1500),
                  "recency": np.array([30, 400, 900])[g] * rng.uniform(0.7, 1.3, 1500),
                  "frequency": np.array([12, 4, 1])[g] + rng.poisson(1, 1500),
                  "monetary": np.array([900, 150, 40])[g] * rng.uniform(0.7, 1.3, 1500)}
                 ).to_csv(tmp_path / "donors.csv", index=False)
    monkeypatch.chdir(tmp_path)
    code = readme_example()
    scope = {}
    exec(compile(code, "README.md (Python example)", "exec"), scope)
    df, km = scope["df"], scope["km"]
    assert len(df) == 1500 and df["segment"].nunique() == km.n_clusters
    assert df["segment_name"].notna().all() and df["segment_name"].str.endswith("Donors").all()
    assert os.path.exists(tmp_path / "model.h5")


def test_profiles_take_names_from_a_dataframe():
    X, g = donors(300)
    df = pd.DataFrame(X, columns=NAMES)
    prof = segforge.profiles(df, g)
    assert [c for c in prof.columns if c.startswith("centre.")] == ["centre." + n for n in NAMES]
    np.testing.assert_allclose(prof["centre.frequency"].to_numpy(),
                               df.astype(np.float64).groupby(g)["frequency"].mean().to_numpy(), rtol=1e-6)


def test_kmeans_timings_decompose_the_native_call():
    # bench/py_bench.py reads these: the driver's clocks and the labelling pass lie inside the
    # native call, which lies inside fit's wall time.
    import time
    X, _ = donors(5000)
    km = segforge.KMeans(4, random_state=0, device="cpu")
    t0 = time.perf_counter()
    km.fit(X)
    wall = time.perf_counter() - t0
    t = km.timings_
    assert set(t) == {"init", "iterations", "labels", "native_call"}
    assert min(t.values()) >= 0 and t["iterations"] > 0
    assert t["init"] + t["iterations"] + t["labels"] <= t["native_call"] <= wall
