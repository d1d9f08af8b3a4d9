"""segforge reads /features the same, bit for bit, in every storage layout h5py can write: the
direct path (pread of float32 stored contiguously or in unfiltered chunks of whole rows, several
threads above 8 MB) and HDF5's path (conversion, filters, chunks of part of a row, big-endian)
against h5py's own reading of the file (src/io/hdf5_util.cpp, read_rows)."""

import os
import subprocess

import h5py
import numpy as np
import pytest

import segforge

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("SEGFORGE_CLI", os.path.join(ROOT, "build", "tools", "segforge"))


def values(n, d, seed):
    """Every bit pattern counts: signed zeros, subnormals and large values among normal ones."""
    rng = np.random.RandomState(seed)
    x = (rng.standard_normal((n, d)) * 10.0 ** rng.randint(-3, 4, (n, d))).astype(np.float32)
    x[::97, 0] = -0.0
    x[::89, -1] = np.float32(1e-42)  # subnormal
    return x


# (name, rows, cols, create_dataset keyword arguments, file keyword arguments)
LAYOUTS = [
    ("contiguous", 1000, 5, {}, {}),
    ("chunks of 7 whole rows, the last partial", 1000, 5, {"chunks": (7, 5)}, {}),
    ("one chunk larger than the data", 10, 3, {"chunks": (64, 3), "maxshape": (None, 3)}, {}),
    ("chunks of part of a row", 1000, 5, {"chunks": (7, 2)}, {}),
    ("userblock, contiguous", 1000, 5, {}, {"userblock_size": 4096}),
    ("userblock, chunked", 1000, 5, {"chunks": (13, 5)}, {"userblock_size": 512}),
    ("float64", 1000, 5, {"dtype": np.float64}, {}),
    ("big-endian float32", 1000, 5, {"dtype": ">f4"}, {}),
    ("gzip", 1000, 5, {"chunks": (50, 5), "compression": "gzip"}, {}),
    ("shuffle, no compression", 1000, 5, {"chunks": (50, 5), "shuffle": True}, {}),
    ("latest format, chunked", 1000, 5, {"chunks": (9, 5)}, {"libver": "latest"}),
    # Above 8 MB: several threads, and reads of 65,536 rows that start inside a chunk.
    ("large contiguous", 300_000, 8, {}, {}),
    ("large chunked", 300_000, 8, {"chunks": (1000, 8)}, {}),
    ("large chunked, rows per chunk not dividing 65,536", 300_000, 8, {"chunks": (4099, 8)}, {}),
]


@pytest.mark.parametrize("name,n,d,kwargs,file_kwargs", LAYOUTS, ids=[c[0] for c in LAYOUTS])
def test_read_features_is_h5py_bit_for_bit(tmp_path, name, n, d, kwargs, file_kwargs):
    x = values(n, d, seed=n + d)
    path = tmp_path / "f.h5"
    with h5py.File(path, "w", **file_kwargs) as f:
        dtype = kwargs.pop("dtype", np.float32)
        f.create_dataset("features", data=x.astype(dtype), dtype=dtype, **kwargs)
    with h5py.File(path, "r") as f:
        expected = f["features"][...].astype(np.float32)
    got = segforge.read_features(path).X
    assert got.shape == expected.shape
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32)), name


def test_segforge_writes_features_contiguous_and_reads_them_back(tmp_path):
    x = values(70_000, 4, seed=5)
    path = tmp_path / "w.h5"
    segforge.write_features(path, x)
    with h5py.File(path, "r") as f:
        assert f["features"].chunks is None  # contiguous: one range of bytes per block of rows
        assert np.array_equal(f["features"][...].view(np.uint32), x.view(np.uint32))
    assert np.array_equal(segforge.read_features(path).X.view(np.uint32), x.view(np.uint32))


@pytest.mark.parametrize("chunks", [None, (1000, 8)], ids=["contiguous", "chunked"])
def test_a_file_cut_short_is_one_clear_line(tmp_path, chunks):
    path = tmp_path / "cut.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=values(300_000, 8, seed=1), chunks=chunks)
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.truncate(size - 1_000_000)  # the last rows' bytes are gone; the metadata came first
    r = subprocess.run([CLI, "fit", str(path), "-k", "3", "--device", "cpu", "-o", str(tmp_path / "m.h5")],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "truncated" in lines[0], r.stderr
    assert not (tmp_path / "m.h5").exists()
