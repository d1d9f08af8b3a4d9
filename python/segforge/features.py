"""features.h5 files <-> numpy / pandas, through the CLI's own reader and writer (src/io)."""

import os

import numpy as np

from . import _segforge


class Features:
    """A features file read into memory: unpacks as (X, ids, feature_names).

    X: float32 [n_samples x n_features]; ids: int64 array, list of str, or None;
    feature_names: list of str. Also: scaler (dict of mean, scale, transform, clip_low,
    clip_high, or None), feature_roles (list of role words, [] when the file has none),
    audience ('donors', 'customers' or ''), attributes (the file's root attributes), checksum."""

    def __init__(self, res, path):
        self.path = path
        self.X = res["X"]
        self.ids = res["ids"]
        self.feature_names = list(res["feature_names"])
        self.scaler = res["scaler"]
        self.feature_roles = list(res["feature_roles"])
        self.audience = res["audience"]
        self.attributes = dict(res["attributes"])
        self.checksum = res["checksum"]

    def __iter__(self):
        return iter((self.X, self.ids, self.feature_names))

    def __len__(self):
        return 3

    def __repr__(self):
        return "Features(%r, %d rows x %d features)" % (self.path, self.X.shape[0], self.X.shape[1])

    def to_frame(self):
        """A pandas DataFrame: one column per feature (float32, no copy of X), indexed by the
        ids (named 'id') when the file has them."""
        import pandas as pd
        index = None if self.ids is None else pd.Index(self.ids, name="id")
        return pd.DataFrame(self.X, columns=self.feature_names, index=index, copy=False)


def read_features(path, dataset="/features"):
    """Reads a features file as the CLI does (the same checks: NaN or Inf, shapes, names, roles,
    scaler; a ValueError naming the file, dataset and row). Returns a Features, which unpacks as
    X, ids, feature_names = read_features(path)."""
    return Features(_segforge.read_features(os.fspath(path), str(dataset)), os.fspath(path))


def _ids_arg(ids):
    """(int64 array or None, list of str or None): int ids stay numbers, anything else is text."""
    if ids is None:
        return None, None
    a = np.asarray(ids)
    if a.ndim != 1:
        raise ValueError("ids: expected one id per row (1-D), got shape %s" % (a.shape,))
    if a.dtype.kind in "iu" or a.dtype == bool:
        if a.dtype.kind == "u" and len(a) and a.max() > np.iinfo(np.int64).max:
            raise ValueError("ids: %d does not fit int64; pass them as strings" % a.max())
        return np.ascontiguousarray(a, dtype=np.int64), None
    if a.dtype.kind == "f":
        raise ValueError("ids: float ids would not round-trip exactly; pass ints or strings")
    if a.dtype.kind == "O" and len(a) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                             for v in a):
        return np.ascontiguousarray(a.astype(np.int64)), None
    return None, [str(v) for v in a]


def write_features(path, X, ids=None, feature_names=None, *, feature_roles=None, audience=None,
                   scaler=None, attributes=None):
    """Writes a features file the CLI reads (src/io's writer: a temporary file renamed when
    complete). X: [n_samples x n_features], or a pandas DataFrame (its columns are the names and,
    unless ids are given, a non-default index the ids). ids: ints (stored int64) or strings.
    feature_roles: one role word per feature ('' to infer it); audience: 'donors' or 'customers';
    scaler: as Features.scaler. Refused with a ValueError (nothing written): a NaN or infinite
    value, no rows or columns, names that are not unique, ids not one per row, unknown roles."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        if feature_names is None:
            feature_names = [str(c) for c in X.columns]
        if ids is None and not isinstance(X.index, pd.RangeIndex):
            ids = X.index.to_numpy()
        X = X.to_numpy()
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError("X: expected a 2-D array [n_samples x n_features], got shape %s" % (X.shape,))
    names = [] if feature_names is None else [str(n) for n in feature_names]
    if feature_names is not None and len(names) != X.shape[1]:
        raise ValueError("feature_names: %d names for %d columns of X; give one per column"
                         % (len(names), X.shape[1]))
    roles = [] if feature_roles is None else ["" if r is None else str(r) for r in feature_roles]
    numeric, text = _ids_arg(ids)
    _segforge.write_features(os.fspath(path), X, names, numeric, text, scaler, roles,
                             "" if audience is None else str(audience),
                             {str(k): str(v) for k, v in (attributes or {}).items()})
