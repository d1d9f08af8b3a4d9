#!/usr/bin/python3
"""Writes the small HDF5 files tests/test_io.cpp reads, made the way h5py and pandas users make
them (not by segforge): float64 / integer matrices, fixed-length byte strings, variable-length
UTF-8 strings, gzip-compressed 2-D chunks, and one file per bad input.

Run with Debian's python (it has h5py and numpy):

    /usr/bin/python3 scripts/make_io_fixtures.py            # writes tests/fixtures/io/

The values are simple formulas that tests/test_io.cpp recomputes; keep the two in step.
"""

import os
import sys

import h5py
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io")


def path(name):
    return os.path.join(OUT, name)


def new(name):
    # Datasets without timestamps (track_times=False): the bytes depend only on the content.
    return h5py.File(path(name), "w", libver="earliest")


def create(f, name, data, **kw):
    return f.create_dataset(name, data=data, track_times=False, **kw)


def main():
    os.makedirs(OUT, exist_ok=True)
    vlen = h5py.string_dtype("utf-8")

    # float64 [10 x 3], x[i, j] = (3 i + j) / 4 - 2, gzip in 4 x 2 chunks (h5py style);
    # names as variable-length UTF-8, ids int64 = 1000 + i, a few typed root attributes.
    x = (np.arange(30, dtype=np.float64).reshape(10, 3)) / 4.0 - 2.0
    with new("float64.h5") as f:
        create(f, "features", x, chunks=(4, 2), compression="gzip")
        create(f, "feature_names", np.array(["recency", "frequency", "monetary"], dtype=object), dtype=vlen)
        create(f, "ids", np.arange(1000, 1010, dtype=np.int64))
        f.attrs["as_of"] = "2024-06-30"
        f.attrs["n_source_rows"] = np.int64(12)
        f.attrs["ratio"] = np.float64(0.5)
        f.attrs["cleaned"] = np.bool_(True)

    # int32 [6 x 2], x[i, j] = 2 i + j - 5; ids as variable-length UTF-8 strings; no names.
    with new("int32.h5") as f:
        create(f, "features", (np.arange(12, dtype=np.int32).reshape(6, 2) - 5))
        create(f, "ids", np.array(["a%d" % i if i != 3 else "Zoë" for i in range(6)], dtype=object),
               dtype=vlen)

    # int64 [6 x 2], x[i, j] = 2 i + j, except x[5, 1] = 2^40 (exact in float32).
    xi = np.arange(12, dtype=np.int64).reshape(6, 2)
    xi[5, 1] = 2**40
    with new("int64.h5") as f:
        create(f, "features", xi)

    # float32 [4 x 3], x[i, j] = i + j / 10; names and ids as fixed-length byte strings
    # (np.array(..., dtype="S"), as df.columns.values.astype("S") gives); scaler in float32 with
    # fixed-length transform names.
    xf = (np.arange(4)[:, None] + np.arange(3)[None, :] / 10.0).astype(np.float32)
    with new("fixed_strings.h5") as f:
        create(f, "features", xf)
        create(f, "feature_names", np.array([b"recency", b"frequency", b"monetary_total"]))
        create(f, "ids", np.array([b"C-001", b"C-002", b"C-010", b"C-100"]))
        g = f.create_group("scaler")
        create(g, "mean", np.array([1.5, 2.0, 250.0], dtype=np.float32))
        create(g, "scale", np.array([0.5, 4.0, 100.0], dtype=np.float32))
        create(g, "transform", np.array([b"identity", b"log1p", b"log1p"]))

    # No /features: the matrix is /data [5 x 2] (read it with --dataset /data).
    with new("other_dataset.h5") as f:
        create(f, "data", np.arange(10, dtype=np.float32).reshape(5, 2))
        create(f, "ids", np.arange(5, dtype=np.int64))

    # A model with only /centroids, in float64 [3 x 2]: c[k, j] = 10 k + j.
    with new("model_bare.h5") as f:
        create(f, "centroids", (10.0 * np.arange(3)[:, None] + np.arange(2)[None, :]))

    # Labels stored as int64 and as uint8 (both read as int32); float labels are rejected.
    with new("labels_int64.h5") as f:
        create(f, "labels", np.array([0, 2, 1, 2, 0], dtype=np.int64))
    with new("labels_uint8.h5") as f:
        create(f, "labels", np.array([3, 0, 1], dtype=np.uint8))
    with new("labels_float.h5") as f:
        create(f, "labels", np.array([0.0, 1.0], dtype=np.float32))

    # Bad feature files, one fault each.
    with new("bad_1d.h5") as f:
        create(f, "features", np.arange(5, dtype=np.float32))
    with new("bad_3d.h5") as f:
        create(f, "features", np.zeros((2, 3, 4), dtype=np.float32))
    with new("bad_string.h5") as f:
        create(f, "features", np.array([[b"a", b"b"], [b"c", b"d"]]))
    with new("bad_0rows.h5") as f:
        create(f, "features", np.zeros((0, 3), dtype=np.float32))
    with new("bad_0cols.h5") as f:
        create(f, "features", np.zeros((5, 0), dtype=np.float32))
    with new("bad_ids_len.h5") as f:
        create(f, "features", np.zeros((5, 2), dtype=np.float32))
        create(f, "ids", np.arange(4, dtype=np.int64))
    with new("bad_names_len.h5") as f:
        create(f, "features", np.zeros((5, 2), dtype=np.float32))
        create(f, "feature_names", np.array([b"a", b"b", b"c"]))
    with new("bad_group.h5") as f:
        g = f.create_group("features")
        create(g, "values", np.zeros((5, 2), dtype=np.float32))

    print("wrote fixtures to", os.path.normpath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
