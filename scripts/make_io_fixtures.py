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

    hostile()
    print("wrote fixtures to", os.path.normpath(OUT), file=sys.stderr)


def hostile():
    """Files that make HDF5 read other files or data segforge cannot decode (issue 15, items 4,
    10 and 12); every one must be refused with a message saying why."""
    ok = np.arange(8, dtype=np.float32).reshape(4, 2)
    vlen = h5py.string_dtype("utf-8")

    # The target of the links and mappings below: a normal file whose values the hostile files
    # would otherwise pass off as their own.
    with new("hostile_target.h5") as f:
        create(f, "secret", np.full((4, 2), 7.0, dtype=np.float32))
    with open(path("hostile_raw.bin"), "wb") as raw:
        raw.write(np.full((4, 2), 9.0, dtype=np.float32).tobytes())

    # /features as an external link into another file.
    with new("hostile_elink.h5") as f:
        f["features"] = h5py.ExternalLink("hostile_target.h5", "/secret")
    # /features fine, /ids an external link (an optional dataset read through a link).
    with new("hostile_elink_ids.h5") as f:
        create(f, "features", ok)
        f["ids"] = h5py.ExternalLink("hostile_target.h5", "/secret")
    # /features with external storage: its bytes live in a raw file beside it (any local path
    # would do, e.g. /etc/shadow).
    with new("hostile_external.h5") as f:
        f.create_dataset("features", shape=(4, 2), dtype=np.float32,
                         external=[("hostile_raw.bin", 0, 32)], track_times=False)
    # /features as a virtual dataset, one mapping from a file that exists and one whose source
    # is missing (HDF5 fills it with zeros, silently).
    with h5py.File(path("hostile_virtual.h5"), "w", libver="latest") as f:
        layout = h5py.VirtualLayout(shape=(4, 2), dtype=np.float32)
        layout[:] = h5py.VirtualSource("hostile_target.h5", "secret", shape=(4, 2))
        f.create_virtual_dataset("features", layout)
    with h5py.File(path("hostile_virtual_missing.h5"), "w", libver="latest") as f:
        layout = h5py.VirtualLayout(shape=(100, 2), dtype=np.float32)
        layout[:] = h5py.VirtualSource("hostile_no_such_file.h5", "x", shape=(100, 2))
        f.create_virtual_dataset("features", layout, fillvalue=0)
    # A model whose /centroids is an external link, and labels with external storage: every
    # reader goes through the same check.
    with new("hostile_model_elink.h5") as f:
        f["centroids"] = h5py.ExternalLink("hostile_target.h5", "/secret")
    with new("hostile_labels_external.h5") as f:
        f.create_dataset("labels", shape=(8,), dtype=np.int32,
                         external=[("hostile_raw.bin", 0, 32)], track_times=False)

    # Soft links: a dangling one named features, and a good one (features -> /data) that works.
    with new("dangling_link.h5") as f:
        create(f, "data", ok)
        f["features"] = h5py.SoftLink("/nowhere")
    with new("soft_link.h5") as f:
        create(f, "data", ok)
        f["features"] = h5py.SoftLink("/data")

    # LZF (h5py's own filter): not in the HDF5 library segforge links.
    with new("lzf.h5") as f:
        create(f, "features", ok, chunks=(2, 2), compression="lzf")

    # uint64 ids: all below 2^63 (read exactly) and some above (refused, naming the row).
    with new("ids_uint64.h5") as f:
        create(f, "features", ok)
        create(f, "ids", np.array([0, 1, 2**62, 2**63 - 1], dtype=np.uint64))
    with new("ids_uint64_big.h5") as f:
        create(f, "features", ok)
        create(f, "ids", np.array([5, 2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64))
    # uint32 and int8 ids: exact.
    with new("ids_uint32.h5") as f:
        create(f, "features", ok)
        create(f, "ids", np.array([0, 7, 2**31, 2**32 - 1], dtype=np.uint32))
    # Text ids that are not UTF-8 (Latin-1 bytes in fixed-length strings, as a pandas user with
    # df.index.astype("S") would store them).
    with new("ids_latin1.h5") as f:
        create(f, "features", ok)
        create(f, "ids", np.array([b"ok", "Zo\u00eb".encode("latin-1"), b"x", b"y"]))

    # Labels files' /ids follow the features' rules: good ones of every kind, and one fault each.
    four = np.array([0, 1, 0, 1], dtype=np.int32)
    with new("labels_ids_uint64.h5") as f:
        create(f, "labels", four)
        create(f, "ids", np.array([0, 1, 2**62, 2**63 - 1], dtype=np.uint64))
    with new("labels_ids_text.h5") as f:
        create(f, "labels", four)
        create(f, "ids", np.array(["a", "Zo\u00eb", "c", "d"], dtype=object), dtype=vlen)
    with new("labels_ids_uint64_big.h5") as f:
        create(f, "labels", four)
        create(f, "ids", np.array([5, 2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64))
    with new("labels_ids_latin1.h5") as f:
        create(f, "labels", four)
        create(f, "ids", np.array([b"ok", "Zo\u00eb".encode("latin-1"), b"x", b"y"]))
    with new("labels_ids_len.h5") as f:
        create(f, "labels", four)
        create(f, "ids", np.arange(3, dtype=np.int64))
    with new("labels_ids_float.h5") as f:
        create(f, "labels", four)
        create(f, "ids", np.arange(4, dtype=np.float64))

    huge()

    # A score label of 2147483647 (int32's largest): must be refused, not overflow.
    with new("labels_int32_max.h5") as f:
        create(f, "labels", np.array([0, 2147483647, 0, 2147483647], dtype=np.int32))


def huge():
    """Datasets whose extent claims far more values than the file stores (a damaged, crafted or
    never completely written file): the readers size their buffers from the extent, so each must
    be refused naming the dataset before anything is allocated. Datasets created with a shape
    and never written store nothing (HDF5 allocates on the first write), so the files stay tiny."""
    ok = np.arange(8, dtype=np.float32).reshape(4, 2)
    vlen = h5py.string_dtype("utf-8")
    n = 2**40

    def claim(f, name, shape, dtype, **kw):
        f.create_dataset(name, shape=shape, dtype=dtype, track_times=False, **kw)

    # 2^40 variable-length strings as a model's segment names (read before their count is checked).
    with new("huge_model_names.h5") as f:
        create(f, "centroids", ok)
        claim(f, "segments/names", (n,), vlen)
    # 2^40 fixed-length strings as a features file's roles, chunked (no chunk written).
    with new("huge_roles.h5") as f:
        create(f, "features", ok)
        claim(f, "feature_roles", (n,), "S16", chunks=(1024,))
    # A scaler mean of 2^40 float64 (8 TiB), gzip-compressed with no chunk written.
    with new("huge_scaler.h5") as f:
        create(f, "features", ok)
        g = f.create_group("scaler")
        claim(g, "mean", (n,), np.float64, chunks=(4096,), compression="gzip")
        create(g, "scale", np.ones(2))
    # 2^40 labels.
    with new("huge_labels.h5") as f:
        claim(f, "labels", (n,), np.int32)
    # Labels whose chunks were only partly written: 1000 claimed, 100 stored (the rest would read
    # as the fill value 0).
    with new("partial_labels.h5") as f:
        d = f.create_dataset("labels", shape=(1000,), dtype=np.int32, chunks=(100,),
                             track_times=False)
        d[0:100] = 1
    # A checkpoint (every attribute the reader needs) whose /centres claims [2^20 x 2^20] float32.
    with new("huge_checkpoint.h5") as f:
        attrs = {"format": "segforge-checkpoint", "algorithm": "lloyd", "phase": "runs",
                 "settings": "", "run": "0", "step": "0", "n_empty": "0", "best_inertia": "inf",
                 "best_n_iter": "0", "best_converged": "0", "best_n_empty": "0", "best_run": "0",
                 "swaps_accepted": "0", "since_reassign": "0", "has_ewa": "0", "ewa": "0x0p+0",
                 "has_ewa_min": "0", "ewa_min": "0x0p+0", "no_improvement": "0"}
        for i in range(4):
            attrs["rng_%d" % i] = "%016x" % (i + 1)
        for key, value in attrs.items():
            f.attrs[key] = value
        claim(f, "centres", (2**20, 2**20), np.float32)
        create(f, "previous", np.zeros((0, 0), dtype=np.float32))
        create(f, "counts", np.zeros(0))
        create(f, "run_inertia", np.zeros(0))
        create(f, "best/centroids", np.zeros((0, 0), dtype=np.float32))
        create(f, "best/counts", np.zeros(0))
    # The bound is not too tight: zeros compress ~1000:1 under deflate, and such a file is read.
    with new("zeros_gzip.h5") as f:
        create(f, "features", np.zeros((100000, 8), dtype=np.float32), chunks=(100000, 8),
               compression="gzip", compression_opts=9)


if __name__ == "__main__":
    main()
