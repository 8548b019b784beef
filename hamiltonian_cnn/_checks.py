"""Argument validation shared by every public entry point.

Numba kernels index without bounds checks, so everything is checked here, in Python, before a
kernel runs. A wrong Python type is a ``TypeError``, a wrong value or shape is a ``ValueError``,
and every message names the argument, the value it got and what was expected. This module
imports nothing but numpy and the standard library (``hamiltonian_cnn.data`` relies on that).
"""

from __future__ import annotations

import numbers
import os

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


class DivergenceError(FloatingPointError, ValueError):
    """Training produced NaN or Inf from finite inputs (a too large learning rate, usually).

    A FloatingPointError (the arithmetic blew up) and a ValueError (the convention for bad
    arguments: the message names the argument to change, ``lr`` or ``clip_norm``).
    """


class IsADirectoryPathError(IsADirectoryError, ValueError):
    """A path argument names a folder where a file is expected: an OSError like ``open`` raises,
    and a ValueError like every other bad argument of the package."""


def describe(value) -> str:
    """A short description of ``value`` for an error message."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_float_array(x, name: str, ndim=None, dtype=None, finite: bool = True) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32/float64 array, or raise naming ``name``.

    ``ndim`` is an int or a tuple of allowed ranks. ``dtype`` forces a dtype (float32/float64);
    otherwise float32 stays float32 and everything else real becomes float64. Complex, object,
    string and boolean arrays are refused, as are NaN and Inf when ``finite``.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name}: expected a real numeric array, got {describe(x)}")
    arr = x if isinstance(x, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name}: expected a real numeric array, got {describe(x)} ({exc})") from None
    kind = arr.dtype.kind
    if kind not in "fiu":
        raise TypeError(
            f"{name}: expected a real numeric array (float or int), got dtype {arr.dtype}"
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name}: expected a {want} array, got shape {arr.shape}")
    if dtype is not None:
        target = check_dtype(dtype)
    elif arr.dtype == np.float32:
        target = np.dtype(np.float32)
    else:
        target = np.dtype(np.float64)
    if kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(f"{name}: expected float32 or float64, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=target)
    if not arr.flags.writeable:
        # Numba types a read-only array differently: passing it on would compile every kernel a
        # second time. A writable copy keeps one compiled version (kernels never write into x).
        arr = arr.copy()
    if finite:
        check_finite(arr, name)
    return arr


def kernel_array(arr, dtype=None) -> np.ndarray:
    """``arr`` C-contiguous and writable, copied only when needed. Numba types a read-only array (a
    broadcast view, frozen parameters) as another type and would compile each kernel a second time."""
    arr = np.ascontiguousarray(arr, dtype=dtype)
    return arr if arr.flags.writeable else arr.copy()


def check_finite(arr: np.ndarray, name: str) -> None:
    """Refuse NaN and Inf in a float array (other dtypes pass unchecked)."""
    if arr.dtype.kind == "f" and arr.size and not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN or Inf value(s); expected finite numbers")


def as_path(path, name: str = "path") -> str:
    """A filesystem path (str, bytes or os.PathLike) as a non-empty string."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), got {describe(path)}")
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError(f"{name}: expected a non-empty path, got ''")
    return path


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: expected float32 or float64, got {describe(dtype)}") from None
    if dt.type not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {dt}")
    return dt


def as_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not bool, not float) >= ``minimum`` and <= ``maximum`` (each when given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {describe(value)}")
    value = int(value)
    if maximum is None:
        if minimum is not None and value < minimum:
            raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    elif (minimum is not None and value < minimum) or value > maximum:
        lo = "-inf" if minimum is None else str(minimum)
        raise ValueError(f"{name}: expected an integer in [{lo}, {maximum}], got {value}")
    return value


def as_int_tuple(value, n: int, name: str, minimum: int | None = None) -> tuple[int, ...]:
    """An int (repeated ``n`` times) or a sequence of ``n`` ints, each >= ``minimum``."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if len(items) != n:
            raise ValueError(f"{name}: expected {n} value(s), one per spatial axis, got {describe(value)}")
    else:
        items = [value] * n
    return tuple(as_int(v, name, minimum) for v in items)


def as_seed(seed, name: str = "seed") -> int:
    """A seed usable by both numpy and scikit-learn: an int in [0, 2**32 - 1]."""
    return as_int(seed, name, minimum=0, maximum=2**32 - 1)


def as_rng(seed, name: str = "seed") -> np.random.Generator:
    """A numpy Generator from None, an int >= 0, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name}: expected None, an integer >= 0, a SeedSequence or a Generator, got {describe(seed)}")
    return np.random.default_rng(as_int(seed, name, minimum=0))


def choice(value, name: str, options) -> str:
    """``value`` must be one of ``options`` (strings, or None)."""
    if not (value is None or isinstance(value, str)) or value not in tuple(options):
        raise ValueError(f"{name}: expected one of {list(options)}, got {describe(value)}")
    return value


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
        raise ValueError(f"input_shape: {layer} expected {channels} input channel(s), got {shape[0]} in "
                         f"{tuple(input_shape)!r}")
    return shape
