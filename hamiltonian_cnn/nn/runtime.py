"""How a layer runs its kernels on a batch: pieces of the batch on Numba's threads, reusable scratch.

Each kernel module has a ``*_pieces`` twin of its kernels (``@njit(parallel=True)``) that runs
the kernel on consecutive pieces [cuts[t], cuts[t + 1]) of the batch in a ``prange``: Numba's
own threads (its threading layer: OpenMP, TBB or its workqueue). Each piece writes its own
slices of the outputs and its own row of partial weight gradients, which the caller sums in
piece order, so the result does not depend on which thread ran which piece: the same seed and
thread count give bit-identical numbers. The thread count is Numba's (``numba.set_num_threads``);
calls smaller than PARALLEL_MIN_FLOPS stay on the calling thread, in the serial kernel.

Two guards, both because a threading layer is process-wide state: parallel calls from several
Python threads take turns (``launch``; Numba's workqueue layer must not be entered twice at
once), and a process forked from one that has started Numba's threads runs every kernel on
one thread (GNU OpenMP does not survive a fork).
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

#: below this many floating-point operations a kernel call runs on the calling thread alone:
#: starting Numba's threads costs microseconds to tens of microseconds, what a call this small
#: takes in all
PARALLEL_MIN_FLOPS = 10_000_000

_LAUNCH = threading.Lock()
_STARTED_IN = None  # the pid of the process that first ran a parallel kernel


def n_chunks(flops=None) -> int:
    """How many pieces a batch is cut into, one per thread: Numba's thread count, or 1 for a call of
    fewer than PARALLEL_MIN_FLOPS operations (``flops`` None: always the thread count) and in a
    process forked after Numba's threads had started."""
    import numba

    if flops is not None and flops < PARALLEL_MIN_FLOPS:
        return 1
    if _STARTED_IN is not None and _STARTED_IN != os.getpid():
        return 1
    return numba.get_num_threads()


def piece_cuts(n_batch: int, chunks: int, granule: int = 1) -> np.ndarray:
    """The cuts 0 = c_0 < c_1 < ... < c_P = n_batch of P = min(chunks, n_batch) consecutive pieces,
    as even as possible, each starting at a multiple of ``granule`` (a kernel's natural block of
    samples) when there are enough of them."""
    chunks = max(1, min(int(chunks), int(n_batch)))
    granule = max(1, min(int(granule), n_batch // chunks))
    n_units = -(-n_batch // granule)
    pieces = min(n_units, chunks)
    return np.array([min(n_batch, (t * n_units // pieces) * granule) for t in range(pieces + 1)], dtype=np.int64)


@contextlib.contextmanager
def launch():
    """Context for a call of a ``*_pieces`` kernel: one at a time per process, and the process noted
    as the one whose threads have started."""
    global _STARTED_IN
    with _LAUNCH:
        _STARTED_IN = os.getpid()
        yield


def scratch(store, key, size: int, dtype, zero: bool = False) -> np.ndarray:
    """A 1D work array of ``size`` entries, kept in ``store`` (a dict owned by a layer) under ``key``
    and reused by the next call: allocating the kernels' scratch afresh at every call costs page
    faults (large blocks come straight from the OS), often more than a small kernel itself.
    ``store`` None: a new array. ``zero``: filled with 0."""
    dtype = np.dtype(dtype)
    if store is None:
        return np.zeros(size, dtype) if zero else np.empty(size, dtype)
    arr = store.get(key)
    if arr is None or arr.size < size or arr.dtype != dtype:
        arr = np.empty(max(size, 1), dtype)
        store[key] = arr
    arr = arr[:size]
    if zero:
        arr[...] = 0
    return arr


_BLAS_LIBS = None  # threadpoolctl controllers of the loaded BLAS libraries (found once), or []


class _BlasOneThread:
    """Sets every BLAS library to one thread on entry and restores each count on exit (a few
    microseconds, unlike ``threadpoolctl.threadpool_limits``, which inspects every library on
    each use)."""

    __slots__ = ("_saved",)

    def __enter__(self):
        saved = []
        for lib in _BLAS_LIBS:
            n = lib.get_num_threads()
            if n is not None and n != 1:
                lib.set_num_threads(1)
                saved.append((lib, n))
        self._saved = saved
        return self

    def __exit__(self, *exc):
        for lib, n in self._saved:
            lib.set_num_threads(n)
        return False


def blas_single_thread():
    """Context: BLAS on one thread while the im2col kernels, which call BLAS, run pieces of a
    batch on several threads (a multi-threaded BLAS would start its own threads on the same
    cores). With one Numba thread nothing is limited. Uses threadpoolctl (installed with
    scikit-learn); without it, this does nothing."""
    global _BLAS_LIBS
    import numba

    if numba.get_num_threads() <= 1:
        return contextlib.nullcontext()
    if _BLAS_LIBS is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba calls: load it first)
            from threadpoolctl import ThreadpoolController

            _BLAS_LIBS = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        except Exception:  # pragma: no cover - threadpoolctl missing or broken
            _BLAS_LIBS = []
    if not _BLAS_LIBS:
        return contextlib.nullcontext()
    return _BlasOneThread()
