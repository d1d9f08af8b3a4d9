"""Segments people act on: profiles, automatic names and stability, computed by the same C++ as
`segforge fit`, `report` and `stability` (src/segments/profile.cpp, names.cpp, stability.cpp).

Results are lists of dicts; with pandas importable (as_frame=None) they are DataFrames indexed
by segment, the nested per-feature dicts flattened as pandas.json_normalize does
("centre.recency", "z_scores.recency", ...)."""

import numbers

import numpy as np
from sklearn.utils import check_array

from . import _segforge
from ._common import as_engine_array, engine, progress_logger, seed_from


def _as_frame(records, as_frame, index="segment"):
    if as_frame is False:
        return records
    try:
        import pandas as pd
    except ImportError:
        if as_frame:
            raise
        return records
    return pd.json_normalize(records).set_index(index) if records else pd.DataFrame()


def _feature_names(X, feature_names):
    if feature_names is not None:
        return [str(n) for n in feature_names]
    columns = getattr(X, "columns", None)  # a DataFrame's column names
    if columns is not None:
        return [str(c) for c in columns]
    return None


def _roles(roles, names):
    """One role word per feature ('' = infer from the name) from a list or a {feature: role} dict."""
    if roles is None:
        return []
    if isinstance(roles, dict):
        unknown = [f for f in roles if str(f) not in names]
        if unknown:
            raise ValueError("roles: no feature %r; the features are %s" % (unknown[0], ", ".join(names)))
        return [str(roles.get(n, "") or "") for n in names]
    return ["" if r is None else str(r) for r in roles]


def _describe(X, labels, feature_names, centers, scaler, roles, audience, n_top, device, n_threads, copy):
    if not copy:
        as_engine_array(X, copy=False)
    names = _feature_names(X, feature_names)
    X = as_engine_array(check_array(X, dtype=np.float32, order="C"))
    names = names if names is not None else ["f%d" % j for j in range(X.shape[1])]
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != X.shape[0]:
        raise ValueError("labels: %s values for %d rows of X; give one label per row"
                         % (labels.shape, X.shape[0]))
    if centers is not None:
        # Segment j is row j of centers: labels are its indices (a model's labels_ or segments.csv).
        centers = np.ascontiguousarray(centers, dtype=np.float32)
        if labels.dtype.kind not in "iu":
            raise ValueError("labels: with centers, labels must be ints 0 .. n_clusters-1, got %s" % labels.dtype)
        if len(labels) and (labels.min() < 0 or labels.max() >= len(centers)):
            bad = int(np.flatnonzero((labels < 0) | (labels >= len(centers)))[0])
            raise ValueError("labels row %d is %d; with %d centers labels must be 0 .. %d"
                             % (bad, labels[bad], len(centers), len(centers) - 1))
        values, codes, k = np.arange(len(centers)), labels.astype(np.int32), len(centers)
    else:
        # Any labels (ints, strings): segments in sorted order, as pandas' groupby.
        values, codes = np.unique(labels, return_inverse=True)
        codes, k = codes.astype(np.int32), len(values)
        if k == 0:
            raise ValueError("labels: no rows")
    res = _segforge.describe_segments(engine(device, n_threads), X, np.ascontiguousarray(codes), int(k),
                                      centers, scaler, names, _roles(roles, names),
                                      "auto" if audience is None else str(audience), int(n_top))
    return res, names, [v.item() if hasattr(v, "item") else v for v in values], scaler is not None


def profiles(X, labels, feature_names=None, *, centers=None, scaler=None, n_top=3, as_frame=None,
             device="auto", n_threads=None, copy=True):
    """Segment profiles as `segforge fit` writes them: per segment its size, share, centre,
    z-scores ((centre - column mean) / column sd of X, population sd) and the n_top features of
    largest |z| (names). The centre is the segment's mean row, or row j of `centers` (e.g. a
    fitted KMeans's cluster_centers_; labels are then 0 .. K-1). `scaler` (Features.scaler)
    adds each centre in original units ("centre_original"; None where the transform is unknown).

    One record per segment: {"segment", "size", "share", "top_features": [names],
    "centre": {feature: value}, "z_scores": {feature: z}[, "centre_original": {...}]}; a
    DataFrame indexed by segment when pandas is importable (as_frame=None) or as_frame=True."""
    res, names, values, original = _describe(X, labels, feature_names, centers, scaler, None, None,
                                             n_top, device, n_threads, copy)
    records = []
    for p, seg in zip(res["profiles"], values):
        r = {"segment": seg, "size": int(p["size"]), "share": float(p["share"]),
             "top_features": [names[j] for j in p["top_features"]],
             "centre": dict(zip(names, p["centre"])),
             "z_scores": dict(zip(names, p["z_scores"]))}
        if original:
            r["centre_original"] = {n: (None if np.isnan(v) else v)
                                    for n, v in zip(names, p["centre_original"])}
        records.append(r)
    return _as_frame(records, as_frame)


def names(X, labels, feature_names=None, *, centers=None, roles=None, audience="auto", scaler=None,
          as_frame=None, device="auto", n_threads=None, copy=True):
    """Automatic segment names, descriptions and suggested outreach, as `segforge fit` makes them
    from the profiles (rules in docs/segments.md). roles: one role word per feature (recency,
    tenure, frequency, monetary, engagement, other; None or '' to infer it from the name) or a
    {feature: role} dict; a features file's Features.feature_roles. audience: 'auto' (from the
    names), 'donors' or 'customers' (Features.audience). centers, scaler: as profiles().

    One record per segment: {"segment", "name", "description", "outreach"}; a DataFrame
    indexed by segment when pandas is importable (as_frame=None) or as_frame=True."""
    res, _, values, _ = _describe(X, labels, feature_names, centers, scaler, roles, audience or "auto",
                                  3, device, n_threads, copy)
    records = [dict(e, segment=seg) for e, seg in zip(res["names"], values)]
    return _as_frame(records, as_frame)


def stability(X, n_clusters, *, runs=10, sample_fraction=0.8, init="k-means++", n_init=3,
              refine="auto", random_state=0, max_eval_rows=1_000_000, ari_threshold=0.8,
              jaccard_threshold=0.75, device="auto", n_threads=None, copy=True):
    """`segforge stability` (same defaults; random_state is its --seed): re-fits K-Means on `runs`
    subsamples with other seeds and compares the labelings: ARI between runs and against the
    full-data fit, and per segment of the full-data fit the mean and worst Jaccard index of its
    Hungarian-matched counterpart, with Hennig's verdicts.

    Returns the keys of stability.json (k, runs, ari_mean, ari_min, ari_reference_mean,
    reference_sizes, jaccard_mean, jaccard_min, segment_verdicts, thresholds, stable, verdict,
    seconds, ...) plus "segments": one record per segment (segment, size, jaccard_mean,
    jaccard_min, verdict), a DataFrame when pandas is importable."""
    if not isinstance(n_clusters, numbers.Integral) or isinstance(n_clusters, bool):
        raise ValueError("n_clusters=%r: use an int >= 1" % (n_clusters,))
    if not isinstance(runs, numbers.Integral) or isinstance(runs, bool):
        raise ValueError("runs=%r: use an int >= 2" % (runs,))
    if not copy:
        as_engine_array(X, copy=False)
    X = as_engine_array(check_array(X, dtype=np.float32, order="C"))
    res = _segforge.stability(engine(device, n_threads), X, int(n_clusters), int(runs),
                              float(sample_fraction), str(init), int(n_init), str(refine),
                              seed_from(random_state), int(max_eval_rows), float(ari_threshold),
                              float(jaccard_threshold), progress_logger("stability"))
    res = dict(res)
    segs = [{"segment": j, "size": int(res["reference_sizes"][j]), "jaccard_mean": res["jaccard_mean"][j],
             "jaccard_min": res["jaccard_min"][j], "verdict": res["segment_verdicts"][j]}
            for j in range(res["k"])]
    res["segments"] = _as_frame(segs, None)
    return res
