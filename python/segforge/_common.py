"""Shared plumbing: the engine cache, input conversion (what is copied), progress to logging."""

import logging
import threading

import numpy as np

from . import _segforge

logger = logging.getLogger("segforge")

_engines = {}
_engines_lock = threading.Lock()


def engine(device="auto", n_threads=None):
    """The native Engine (one Backend) for (device, n_threads), made once per process."""
    key = (str(device), int(n_threads or 0))
    with _engines_lock:
        e = _engines.get(key)
        if e is None:
            e = _segforge.Engine(key[0], key[1])
            if e.note:
                logger.info("segforge: %s", e.note)
            logger.debug("segforge: backend %s on %s", e.backend, e.device)
            _engines[key] = e
        return e


def needs_copy(X):
    """True when X cannot be lent to the engine as it is (not a C-contiguous float32 ndarray)."""
    return not (isinstance(X, np.ndarray) and X.dtype == np.float32 and X.ndim == 2
                and X.flags.c_contiguous)


def as_engine_array(X, copy=True, name="X"):
    """X as a C-contiguous float32 array, the same object when it already is one (no copy).

    Anything else (float64, Fortran order, a slice with strides, a DataFrame of another dtype) is
    converted, which copies; with copy=False that is a ValueError instead."""
    if not needs_copy(X):
        return X
    if not copy:
        what = type(X).__name__
        if isinstance(X, np.ndarray):
            what = "%s array (%s)" % (X.dtype, "C-contiguous" if X.flags.c_contiguous else "not C-contiguous")
        raise ValueError(
            "%s: copy=False but the engine needs a C-contiguous float32 array and got a %s; "
            "pass np.ascontiguousarray(%s, dtype=np.float32) or copy=True" % (name, what, name))
    return np.ascontiguousarray(X, dtype=np.float32)


def progress_logger(name):
    """A progress callback for the native core: one DEBUG record per step, never stdout."""
    log = logging.getLogger("segforge." + name)

    def progress(p):
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s run %d step %d/%d inertia %s", p["phase"], p["run"], p["step"],
                      p["total"], p["inertia"])
    return progress


def seed_from(random_state):
    """An engine seed: an int is used as it is (so random_state=0 is the CLI's --seed 0); None
    or a RandomState draws one, as scikit-learn's check_random_state does."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError("random_state=%d: use an int >= 0, a RandomState or None" % random_state)
        return int(random_state)
    from sklearn.utils import check_random_state
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
