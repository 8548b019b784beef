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

import numpy as np

from .._checks import as_float_array, check_dtype
from .runtime import blas_single_thread


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

    def __getstate__(self):
        """What pickling keeps: params, grads, state and config; not the kernels' scratch buffers nor
        the arrays the last forward saved for backward (transient, and rebuilt on demand)."""
        state = dict(self.__dict__)
        state.pop("_scratch_store", None)
        state["_saved"] = None
        return state

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
