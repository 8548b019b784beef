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
import math

import numpy as np

from .._checks import as_float_array, as_int, check_dtype, choice
from ..kernels.activations import CODES
from ..physics.formulas import Geometry

ACTIVATIONS = ("sigmoid", "tanh", "relu", "softplus", None)

_BLAS_CONTROLLER = None


def blas_single_thread():
    """Context: BLAS on one thread while a kernel that is parallel over the batch runs.

    The kernels cut the batch into one chunk per Numba thread and call BLAS inside each chunk; a
    multi-threaded BLAS would start its own threads on the same cores, and OpenBLAS's spin-waiting
    threads slow Numba's by an order of magnitude. With one Numba thread nothing is limited.
    Uses threadpoolctl (installed with scikit-learn); without it, this does nothing.
    """
    global _BLAS_CONTROLLER
    import numba

    if numba.get_num_threads() <= 1:
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba calls: load it first)
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER = ThreadpoolController()
        except Exception:  # pragma: no cover - threadpoolctl missing or broken
            _BLAS_CONTROLLER = False
    if _BLAS_CONTROLLER is False:
        return contextlib.nullcontext()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


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


def n_chunks() -> int:
    """How many pieces of the batch the kernels run in parallel: the Numba thread count."""
    import numba

    return numba.get_num_threads()


class Layer:
    """Base class: ``forward``/``backward``, ``params``/``grads``, ``output_shape``, ``config``.

    Subclasses implement ``output_shape``, ``config``, ``_forward(x) -> (y, saved)`` and
    ``_backward(dy, saved) -> (dx, grads)``; ``_input_ndims`` lists the accepted ranks of x.
    """

    _input_ndims: tuple[int, ...] = ()
    _uses_blas = False  # kernels that call BLAS inside a parallel loop run under blas_single_thread()

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
        with blas_single_thread() if self._uses_blas else contextlib.nullcontext():
            dx, grads = self._backward(dy, self._saved)
        for key, value in grads.items():
            self.grads[key] = value
        return dx

    def __call__(self, x) -> np.ndarray:
        return self.forward(x)

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
        try:
            self.output_shape(x.shape[1:])
        except ValueError as exc:
            raise ValueError(f"x: shape {x.shape} (batch first) does not fit {name}: {exc}") from None
        self._last_dtype = x.dtype
        return x

    def _dtype_config(self):
        return None if self._dtype is None else self._dtype.name

    def _param(self, key: str, shape) -> np.ndarray:
        """The live parameter array, checked (an optimiser may have swapped it) before a kernel reads it."""
        value = self.params.get(key)
        if not isinstance(value, np.ndarray) or value.shape != tuple(shape):
            got = f"shape {value.shape}" if isinstance(value, np.ndarray) else repr(type(value))
            raise ValueError(f"params[{key!r}]: expected an array of shape {tuple(shape)}, got {got}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"params[{key!r}]: contains NaN or Inf; expected finite numbers")
        return np.ascontiguousarray(value, dtype=self._dtype)

    def _init_grads(self):
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
