"""Small argument checks for the data subpackage.

They follow the package convention (see ``hamiltonian_cnn/_checks.py``): a wrong Python type is a
``TypeError``, a wrong value or shape is a ``ValueError``, and every message names the argument,
the value it got and what was expected. They live here so that ``hamiltonian_cnn.data`` imports
nothing but numpy and the standard library.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


class IsADirectoryPathError(IsADirectoryError, ValueError):
    """A path argument names a folder where a file is expected: an OSError like ``open`` raises,
    and a ValueError like every other bad argument of the package."""


def describe(value) -> str:
    """A short description of ``value`` for an error message."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not bool, not float) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {describe(value)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        lo = "-inf" if minimum is None else str(minimum)
        hi = "inf" if maximum is None else str(maximum)
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {value}")
    return value


def as_seed(seed, name: str = "seed") -> int:
    """A seed usable by both numpy and scikit-learn: an int in [0, 2**32 - 1]."""
    return as_int(seed, name, minimum=0, maximum=2**32 - 1)


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``np.dtype(dtype)`` if it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: expected float32 or float64, got {describe(dtype)}") from None
    if dt.type not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {dt}")
    return dt


def check_path(path, name: str) -> str:
    """A filesystem path (str, bytes or os.PathLike) as a string."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), got {describe(path)}")
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError(f"{name}: expected a non-empty path, got ''")
    return path


def check_finite(arr: np.ndarray, name: str) -> None:
    """Refuse NaN and Inf in a float array."""
    if arr.dtype.kind == "f" and arr.size and not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN or Inf value(s); expected finite numbers")
