"""The layer interface every block of a network follows.

A layer keeps in ``forward`` exactly what ``backward`` needs, and ``backward`` mirrors it:

    y = layer.forward(x)        # x (N, *input_shape) -> y (N, *layer.output_shape(input_shape))
    dx = layer.backward(dy)     # fills layer.grads, keyed and shaped like layer.params

``params`` holds the live arrays: an optimiser updates them in place (``p -= lr * g``) and the
next forward reads them again. Validation happens here, in Python, before any kernel runs: the
Numba kernels index without bounds checks.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import queue
import threading
import time

import numpy as np

from .._checks import as_float_array, as_int, as_rng, check_dtype, choice
from ..kernels.activations import CODES
from ..kernels.spin import spin_until as _poll
from ..physics.formulas import Geometry
from . import ahead

ACTIVATIONS = ("sigmoid", "tanh", "relu", "softplus", None)

_BLAS_LIBS = None  # threadpoolctl controllers of the loaded BLAS libraries (found once), or []


class _BlasOneThread:
    """Sets every BLAS library to one thread on entry and restores each count on exit.

    A few microseconds, unlike ``threadpoolctl.threadpool_limits`` (which inspects every loaded
    library on each use): the layers enter it on every forward/backward of a kernel that calls BLAS.
    """

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
    """Context: BLAS on one thread while a kernel that is parallel over the batch runs.

    The layers run pieces of a batch on threads (run_chunks) and the im2col kernels call BLAS in
    each piece; a multi-threaded BLAS would start its own threads on the same cores, and
    OpenBLAS's spin-waiting threads slow ours down by an order of magnitude. With one Numba thread nothing is
    limited. Uses threadpoolctl (installed with scikit-learn); without it, this does nothing.
    """
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


def check_activation(activation) -> str | None:
    """One of ACTIVATIONS, or ValueError naming the value."""
    return choice(activation, "activation", ACTIVATIONS)


def activation_code(activation) -> int:
    return CODES[activation]


def jsonable(value):
    """Tuples (also nested) as lists, numpy scalars as Python ones: for ``config()``."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def seed_config(seed):
    """The seed as a JSON value: ints and None are kept, a Generator or SeedSequence is not."""
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return None if seed is None else int(seed)
    return None


def init_weight(rng: np.random.Generator, shape, fan_in: int, fan_out: int, activation, dtype) -> np.ndarray:
    """Fan-scaled uniform init: He (sqrt(6 / fan_in)) for relu, Glorot (sqrt(6 / (fan_in + fan_out))) else."""
    if activation == "relu":
        limit = math.sqrt(6.0 / fan_in)
    else:
        limit = math.sqrt(6.0 / (fan_in + fan_out))
    return np.ascontiguousarray(rng.uniform(-limit, limit, size=shape), dtype=dtype)


def sample_shape(input_shape, name: str = "input_shape") -> tuple[int, ...]:
    """A per-sample shape (C, *sites) as a tuple of positive ints."""
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{name}: expected a tuple (C, *sites) without the batch axis, got {input_shape!r}")
    return tuple(as_int(s, name, 1) for s in input_shape)


def spatial_shape(input_shape, nd: int, channels: int | None, layer: str) -> tuple[int, ...]:
    """Check (C, *sites) against ``nd`` spatial axes and ``channels``; return it."""
    shape = sample_shape(input_shape)
    want = "(C, L)" if nd == 1 else "(C, H, W)"
    if len(shape) != nd + 1:
        raise ValueError(f"input_shape: {layer} expected a per-sample shape {want}, got {tuple(input_shape)!r}")
    if channels is not None and shape[0] != channels:
        raise ValueError(f"input_shape: {layer} expected {channels} input channel(s), got {shape[0]} in {tuple(input_shape)!r}")
    return shape


def kernel_geometry(geo: Geometry):
    """(sh, sw, ph, pw, dh, dw, oh, ow) of a 1D or 2D geometry for the 2D kernels (1D is H = 1)."""
    if geo.ndim == 1:
        return 1, geo.stride[0], 0, geo.padding[0][0], 1, geo.dilation[0], 1, geo.out_sites[0]
    return (geo.stride[0], geo.stride[1], geo.padding[0][0], geo.padding[1][0],
            geo.dilation[0], geo.dilation[1], geo.out_sites[0], geo.out_sites[1])


def as4d(a: np.ndarray) -> np.ndarray:
    """(N, C, L) -> (N, C, 1, L); (N, C, H, W) unchanged (views, C-contiguous)."""
    return a.reshape(a.shape[0], a.shape[1], 1, a.shape[2]) if a.ndim == 3 else a


#: below this many floating-point operations a kernel call runs on the calling thread alone: handing
#: work to another thread costs 20-50 microseconds (far more when the cores are busy with other
#: work), which is what a call this small takes in all
PARALLEL_MIN_FLOPS = 10_000_000
#: what a direct convolution kernel spends per entry of x and y it moves (the layout transposes, the
#: activation), in floating-point operations' worth: about 2 ns here, at the 63 GFLOP/s its tiles
#: reach (fitted on forward calls of 1 and 16 input channels, 4x4 and 8x8 sites). With few input
#: channels the entries, not the multiply-adds, take the time: 128 samples of 1 -> 16 channels on
#: 8x8 sites are 2.4 MFLOP but 350 us on one thread, and 20% faster on two.
ENTRY_FLOPS = 126


#: how long a worker thread polls for its next piece, and a caller for its workers' results, before
#: blocking (seconds; the caller polls four times as long); 0: block at once
SPIN_SECONDS = 0.0003
#: how long a worker keeps polling after its piece is posted before it takes the GIL (seconds): the
#: caller posts, then runs its own piece's Python (about 20 us) until its kernel releases the GIL.
#: A worker that reaches for the GIL before that blocks on it and is woken 30-50 us after it is
#: released (measured here); one that waits this long finds it free: its piece starts about 40 us
#: earlier.
LINGER_SECONDS = 0.00003


def spin_until(counters, index: int, target: int, polls: int, mark=None, mark_index: int = -1,
               mark_value: int = 0, linger: int = 0) -> bool:
    """kernels.spin.spin_until (poll counters[index] until it reaches ``target``, at most ``polls``
    times, after writing ``mark[mark_index] = mark_value``, then ``linger`` polls more); with
    NUMBA_DISABLE_JIT plain Python could not release the GIL, so it does not poll at all."""
    from numba import config

    if config.DISABLE_JIT:
        if mark is not None and mark_index >= 0:
            mark[mark_index] = mark_value
        return counters[index] >= target
    return _poll(counters, index, target, polls, counters if mark is None else mark, mark_index, mark_value, linger)


_POLL_RATE = None


def polls_per_second() -> float:
    """How many polls (read + hint) this machine does per second, measured once (a few milliseconds)."""
    global _POLL_RATE
    if _POLL_RATE is None:
        counters = _padded_counters(1)  # the workers' layout: one compiled version
        spin_until(counters, 0, 1, 10)  # compile or load from the cache
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            spin_until(counters, 0, 1, 20_000)
            best = min(best, time.perf_counter() - start)
        _POLL_RATE = 20_000 / max(best, 1e-7)
    return _POLL_RATE


def _padded_counters(count: int) -> np.ndarray:
    """``count`` int64 counters 64 bytes apart (a strided view), each alone on its cache line."""
    raw = np.zeros(8 * (count + 2), np.int64)
    start = (-raw.ctypes.data // 8) % 8 + 8  # the first 64-byte boundary after one spare line
    return raw[start:start + 8 * count:8]


class _Workers:
    """Persistent worker threads, each with its own queue of pieces of work.

    ``posted[k]`` counts the pieces handed to worker k and ``finished[k]`` those it has finished; a
    worker polls ``posted`` (without the GIL, kernels.spin) for a while after each piece before it
    blocks on its queue, and the caller polls ``finished`` before blocking on the results: waking
    a sleeping thread costs tens of microseconds here, as much as a small kernel call. A count
    missed by a race only costs a poll: the queues carry the work and the results."""

    def __init__(self, count: int):
        self.pid = os.getpid()
        self.inboxes = [queue.SimpleQueue() for _ in range(count)]
        # one 64-byte cache line per counter, none shared with other data: a polling thread re-reads
        # its line constantly, and a write by anyone else to a neighbour would bounce it between cores
        self.posted = _padded_counters(count)
        self.finished = _padded_counters(count)
        for k in range(count):
            threading.Thread(target=self._serve, args=(k,), name=f"hamiltonian_cnn-{k + 1}", daemon=True).start()

    @staticmethod
    def polls(seconds: float) -> int:
        return int(seconds * polls_per_second()) if seconds > 0 else 0

    def _serve(self, k):
        inbox, taken, unreported = self.inboxes[k], 0, -1  # unreported: k once a piece awaits its count
        while True:
            # count the last piece finished only once the GIL is released (inside the poll): the
            # caller that sees the count then takes the GIL without waiting for this thread
            spin_until(self.posted, k, taken + 1, self.polls(SPIN_SECONDS), self.finished, unreported, taken,
                       self.polls(LINGER_SECONDS))
            task, done = inbox.get()  # done: the caller's own queue (callers on several threads stay apart)
            taken += 1
            try:
                task()
            except BaseException as exc:  # handed back to the caller, which re-raises it
                error = exc
            else:
                error = None
            done.put(error)  # before the count: a caller that sees the count finds the result waiting
            unreported = k

    def post(self, k, task, done):
        self.inboxes[k].put((task, done))
        self.posted[k] += 1

    def wait(self, k, target):
        spin_until(self.finished, k, target, self.polls(4 * SPIN_SECONDS))


_WORKERS = None  # made on first use, again after a fork (threads do not survive one) or to grow


def _workers(count: int) -> _Workers:
    global _WORKERS
    if _WORKERS is None or _WORKERS.pid != os.getpid() or len(_WORKERS.inboxes) < count:
        _WORKERS = _Workers(count)
    return _WORKERS


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


#: pieces per thread that run_chunks cuts a large batch into: threads that finish early take the
#: pieces of one slowed down by other work on its core, and the last piece to finish is small.
#: A call of fewer than BALANCE_MIN_FLOPS operations takes one piece per thread: its pieces would
#: be too small to run efficiently.
PIECES_PER_THREAD = 3
BALANCE_MIN_FLOPS = 100_000_000


def pieces_per_thread(flops) -> int:
    return PIECES_PER_THREAD if flops >= BALANCE_MIN_FLOPS else 1


def run_chunks(fn, n_batch: int, chunks: int, per_thread: int | None = None, granule: int = 1) -> list:
    """[fn(slot, t, a, b) for the consecutive pieces t = 0, 1, ... [a, b) of range(n_batch)], in order.

    ``chunks`` threads (the calling one and chunks - 1 workers; ``slot`` says which, for per-thread
    scratch) take the ``per_thread`` (default PIECES_PER_THREAD) x ``chunks`` pieces in turn until none is left (the kernels
    release the GIL, so they run at the same time). Pieces start at multiples of ``granule``
    samples (a kernel's natural block), when there are enough of them. Each piece writes its own slices of the outputs and returns its own partial
    gradients, which the caller sums in piece order: no race, and the result does not depend on
    which thread ran what. Plain threads (see _Workers) rather than Numba's ``prange``: a parallel Numba kernel
    costs seconds more to compile, and start-up time is part of what users wait for.
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

    workers, done = _workers(chunks - 1), queue.SimpleQueue()
    targets = [int(workers.finished[k]) + 1 for k in range(chunks - 1)]
    for slot in range(1, chunks):
        workers.post(slot - 1, functools.partial(work, slot), done)
    try:
        work(0)
    finally:
        # never leave a piece running on buffers the caller is about to use
        for k in range(chunks - 1):
            workers.wait(k, targets[k])
        errors = [done.get() for _ in range(1, chunks)]
    for error in errors:
        if error is not None:
            raise error  # a worker's exception
    return results


def n_chunks(flops=None) -> int:
    """How many threads run pieces of the batch (see run_chunks): the Numba thread count
    (``numba.set_num_threads``), or 1 for a call of fewer than PARALLEL_MIN_FLOPS operations
    (``flops`` None: always the thread count)."""
    import numba

    if flops is not None and flops < PARALLEL_MIN_FLOPS:
        return 1
    return numba.get_num_threads()


def array_type(dtype, ndim: int):
    """Numba's type of a C-contiguous array of this dtype and rank: what the layers hand the
    kernels (for the signatures in Layer.backward_kernels)."""
    from numba import from_dtype, types

    return types.Array(from_dtype(np.dtype(dtype)), ndim, "C")


def int_type():
    """Numba's type of the integer arguments the layers pass (Python ints)."""
    from numba import types

    return types.int64


class Layer:
    """Base class: ``forward``/``backward``, ``params``/``grads``, ``output_shape``, ``config``.

    Subclasses implement ``output_shape``, ``config``, ``_forward(x) -> (y, saved)`` and
    ``_backward(dy, saved) -> (dx, grads)``; ``_input_ndims`` lists the accepted ranks of x.
    """

    _input_ndims: tuple[int, ...] = ()
    _uses_blas = False  # kernels that call BLAS inside a parallel loop run under blas_single_thread()
    _slow_to_compile = False  # coupling layers: their backward kernels go to the compile-ahead helper first

    def __init__(self, dtype=np.float32):
        self._dtype = None if dtype is None else check_dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._saved = None
        self._out_shape = None

    # ------------------------------------------------------------ public interface

    @property
    def dtype(self):
        """The float dtype of params and outputs (None: follows the input, for parameter-free layers)."""
        return self._dtype

    @property
    def n_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def forward(self, x) -> np.ndarray:
        """y for a batch x (N, *input_shape); keeps what backward needs."""
        x = self._check_input(x)
        with blas_single_thread() if self._uses_blas else contextlib.nullcontext():
            y, saved = self._forward(x)
        self._saved, self._out_shape = saved, y.shape
        return y

    def backward(self, dy) -> np.ndarray:
        """dL/dx from dL/dy of the last forward; fills ``grads`` (same keys and shapes as ``params``)."""
        if self._saved is None:
            raise ValueError(f"backward: call forward first ({type(self).__name__} has no saved forward pass)")
        dy = as_float_array(dy, "dy", dtype=self._saved_dtype)
        if dy.shape != self._out_shape:
            raise ValueError(f"dy: expected the shape of the last output {self._out_shape}, got {dy.shape}")
        if ahead.pending():  # a helper process may be compiling this layer's kernels (nn/ahead.py)
            ahead.wait(self.backward_kernels(self._saved_dtype))
        with blas_single_thread() if self._uses_blas else contextlib.nullcontext():
            dx, grads = self._backward(dy, self._saved)
        for key, value in grads.items():
            self.grads[key] = value
        return dx

    def __call__(self, x) -> np.ndarray:
        return self.forward(x)

    def backward_kernels(self, dtype) -> list:
        """[(kernel, argument types)] that ``backward`` calls for inputs of ``dtype``: the
        compile-ahead helper (nn/ahead.py) compiles them while the forward runs. Layers whose
        backward compiles nothing large return []."""
        return []

    def output_shape(self, input_shape) -> tuple[int, ...]:
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------ helpers for subclasses

    @property
    def _saved_dtype(self):
        return self._dtype if self._dtype is not None else self._last_dtype

    def _check_input(self, x) -> np.ndarray:
        name = type(self).__name__
        x = as_float_array(x, "x", dtype=self._dtype)
        if self._input_ndims and x.ndim not in self._input_ndims:
            want = " or ".join(f"{d}-D" for d in self._input_ndims)
            raise ValueError(f"x: {name} expected a {want} array (N, ...), got shape {x.shape}")
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"x: {name} expected at least one sample (axis 0), got shape {x.shape}")
        # a layer's configuration is fixed once built, so a per-sample shape that fitted once fits again
        fitted = self.__dict__.setdefault("_fitted_shapes", set())
        if x.shape[1:] not in fitted:
            try:
                self.output_shape(x.shape[1:])
            except ValueError as exc:
                raise ValueError(f"x: shape {x.shape} (batch first) does not fit {name}: {exc}") from None
            fitted.add(x.shape[1:])
        self._last_dtype = x.dtype
        return x

    @property
    def _scratch(self) -> dict:
        """This layer's reusable kernel scratch arrays (see scratch); not part of its state."""
        store = self.__dict__.get("_scratch_store")
        if store is None:
            store = self.__dict__["_scratch_store"] = {}
        return store

    def _dtype_config(self):
        return None if self._dtype is None else self._dtype.name

    def _param(self, key: str, shape) -> np.ndarray:
        """The live parameter array, checked (an optimiser may have swapped it) before a kernel reads it."""
        value = self.params.get(key)
        if not isinstance(value, np.ndarray) or value.shape != tuple(shape):
            got = f"shape {value.shape}" if isinstance(value, np.ndarray) else repr(type(value))
            raise ValueError(f"params[{key!r}]: expected an array of shape {tuple(shape)}, got {got}")
        if value.dtype.kind not in "fiu":
            raise TypeError(f"params[{key!r}]: expected a real float array, got dtype {value.dtype}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"params[{key!r}]: contains NaN or Inf; expected finite numbers")
        value = np.ascontiguousarray(value, dtype=self._dtype)
        return value if value.flags.writeable else value.copy()  # one compiled kernel type, see as_float_array

    def _coupling_options(self, activation, bias, seed) -> np.random.Generator:
        """Validate and set ``activation``, ``use_bias`` and ``seed``; return the init generator."""
        self.activation = check_activation(activation)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected True or False, got {bias!r}")
        self.use_bias = bool(bias)
        self.seed = seed
        return as_rng(seed)

    def _init_grads(self):
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
