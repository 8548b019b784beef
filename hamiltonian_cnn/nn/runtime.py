"""How a layer runs its kernels on a batch: pieces of the batch on threads, reusable scratch.

The kernels release the GIL (``nogil``), so pieces of a batch run at the same time on the
threads of a standard ``concurrent.futures.ThreadPoolExecutor``: the calling thread takes pieces
too, each piece writes its own slices of the outputs and returns its own partial weight
gradients, and the caller sums those in piece order. The result therefore does not depend on
which thread ran which piece: the same seed and thread count give bit-identical numbers.
The thread count is Numba's (``numba.set_num_threads``); calls smaller than PARALLEL_MIN_FLOPS
stay on the calling thread, where handing work over would cost more than it saves.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: below this many floating-point operations a kernel call runs on the calling thread alone:
#: waking another thread costs tens of microseconds, what a call this small takes in all
PARALLEL_MIN_FLOPS = 10_000_000
#: pieces per thread that a large batch is cut into: threads that finish early take the pieces of
#: one slowed down by other work on its core, and the last piece to finish is small. A call of
#: fewer than BALANCE_MIN_FLOPS operations takes one piece per thread.
PIECES_PER_THREAD = 3
BALANCE_MIN_FLOPS = 100_000_000

_POOL: ThreadPoolExecutor | None = None
_POOL_KEY = None  # (pid, workers): a pool does not survive a fork, and grows with the thread count
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_KEY
    with _POOL_LOCK:
        if _POOL is None or _POOL_KEY[0] != os.getpid() or _POOL_KEY[1] < workers:
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hamiltonian_cnn")
            _POOL_KEY = (os.getpid(), workers)
        return _POOL


def n_chunks(flops=None) -> int:
    """How many threads run pieces of a batch: Numba's thread count, or 1 for a call of fewer than
    PARALLEL_MIN_FLOPS operations (``flops`` None: always the thread count)."""
    import numba

    if flops is not None and flops < PARALLEL_MIN_FLOPS:
        return 1
    return numba.get_num_threads()


def pieces_per_thread(flops) -> int:
    return PIECES_PER_THREAD if flops >= BALANCE_MIN_FLOPS else 1


def run_chunks(fn, n_batch: int, chunks: int, per_thread: int | None = None, granule: int = 1) -> list:
    """[fn(slot, t, a, b) for the consecutive pieces t = 0, 1, ... [a, b) of range(n_batch)], in order.

    ``chunks`` threads (the calling one and chunks - 1 of the pool; ``slot`` says which, for
    per-thread scratch) take the ``per_thread`` (default PIECES_PER_THREAD) x ``chunks`` pieces in
    turn until none is left. Pieces start at multiples of ``granule`` samples (a kernel's natural
    block) when there are enough of them. An exception in any piece is raised here, after every
    piece has stopped.
    """
    chunks = max(1, min(chunks, n_batch))
    if chunks == 1:
        return [fn(0, 0, 0, n_batch)]
    granule = max(1, min(granule, n_batch // chunks))
    n_units = -(-n_batch // granule)
    n_pieces = min(n_units, max(1, PIECES_PER_THREAD if per_thread is None else per_thread) * chunks)
    cuts = [min(n_batch, (t * n_units // n_pieces) * granule) for t in range(n_pieces + 1)]
    bounds = list(zip(cuts[:-1], cuts[1:]))
    results = [None] * n_pieces
    turns = itertools.count()  # next() is atomic under the GIL

    def work(slot):
        for t in iter(turns.__next__, None):
            if t >= n_pieces:
                return
            results[t] = fn(slot, t, *bounds[t])

    pool = _pool(chunks - 1)
    futures = [pool.submit(work, slot) for slot in range(1, chunks)]
    try:
        work(0)
    finally:
        errors = [f.exception() for f in futures]  # waits: no piece keeps running on the caller's buffers
    for error in errors:
        if error is not None:
            raise error
    return results


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


def blas_single_thread(always: bool = False):
    """Context: BLAS on one thread while the im2col kernels, which call BLAS, run pieces of a
    batch on several threads (a multi-threaded BLAS would start its own threads on the same
    cores). With one Numba thread nothing is limited, unless ``always`` (a run of many small
    products, such as Gibbs sweeps, where BLAS's threads only wait for each other). Uses
    threadpoolctl (installed with scikit-learn); without it, this does nothing."""
    global _BLAS_LIBS
    import numba

    if numba.get_num_threads() <= 1 and not always:
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
