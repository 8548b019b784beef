"""Shared pieces of the fuzz tests: the outcome checks and the tried/passed counters.

Every generated case ends in one of two ways:

* an invalid argument: ``expect_error`` requires a ValueError / TypeError / FileNotFoundError
  (or the given types) whose message *starts with* the name of an argument it blames, the package
  convention ``"x: expected ..."`` (section 6 of DESIGN.md). A numpy error from deep inside, a
  KeyError, an AttributeError or a result are failures.
* a valid but unusual argument (non-contiguous, read-only): ``expect_same`` requires the result
  of a contiguous, writable copy, bit for bit, and finite.

The counters are printed at the end of the session by tests/hardening/conftest.py.
"""

from __future__ import annotations

import collections
import re

import numpy as np

ERRORS = (ValueError, TypeError, FileNotFoundError)

#: {group: [tried, passed]}
COUNTS: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])


def _summary(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array {value.shape} {value.dtype}"
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


def names_argument(message: str, names) -> bool:
    """Does ``message`` start with one of ``names`` (followed by ':', ' ', '[' or '=')?"""
    return any(re.match(rf"{re.escape(name)}(?=[:\s\[=(]|$)", message) for name in names)


def expect_error(group: str, fn, names, types=ERRORS):
    """``fn()`` must raise one of ``types`` with a message naming one of ``names``; returns the error."""
    if isinstance(names, str):
        names = (names,)
    COUNTS[group][0] += 1
    try:
        result = fn()
    except types as exc:
        message = str(exc)
        assert names_argument(message, names), f"{type(exc).__name__} does not name {names}: {message!r}"
        assert "nan" not in type(exc).__name__.lower()
        COUNTS[group][1] += 1
        return exc
    except Exception as exc:  # noqa: BLE001 - any other exception is the failure being tested for
        raise AssertionError(f"expected {[t.__name__ for t in types]} naming {names}, "
                             f"got {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"expected {[t.__name__ for t in types]} naming {names}, got a result: {_summary(result)}")


def _leaves(value):
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(value[key])
    else:
        yield value


def assert_finite(value):
    for leaf in _leaves(value):
        if isinstance(leaf, (np.ndarray, float, np.floating)):
            assert np.all(np.isfinite(leaf)), f"non-finite result: {_summary(leaf)}"


def expect_same(group: str, fn, reference):
    """``fn()`` must return ``reference`` exactly (arrays bit for bit), with finite numbers only."""
    COUNTS[group][0] += 1
    result = fn()
    got, want = list(_leaves(result)), list(_leaves(reference))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, np.ndarray):
            assert isinstance(g, np.ndarray) and g.dtype == w.dtype and g.shape == w.shape
            assert np.array_equal(g, w), "differs from the result for a contiguous copy"
        else:
            assert g == w or (g != g and w != w)
    assert_finite(result)
    COUNTS[group][1] += 1
    return result


def odd_layouts(x: np.ndarray):
    """Valid inputs that are not plain C-contiguous writable arrays, each equal to ``x``."""
    wide = np.repeat(x, 2, axis=-1)[..., ::2]  # a strided view
    assert not wide.flags.c_contiguous or x.shape[-1] == 1
    fortran = np.asfortranarray(x)
    readonly = x.copy()
    readonly.setflags(write=False)
    both = np.repeat(x, 2, axis=0)[::2]
    both.setflags(write=False)
    return {"strided": wide, "fortran": fortran, "readonly": readonly, "strided_readonly": both}


def bad_arrays(x: np.ndarray, rng: np.random.Generator):
    """Invalid variants of a valid array ``x``: (label, value, expected exception types).

    NaN and Inf at a random position, complex / object / string / bool / longdouble dtypes, an
    empty first axis, None, a string and a ragged list.
    """
    out = []
    for bad in (np.nan, np.inf, -np.inf):
        y = x.astype(np.float64 if x.dtype.kind != "f" else x.dtype, copy=True)
        y.flat[rng.integers(y.size)] = bad
        out.append((f"{bad}", y, (ValueError,)))
    out.append(("complex", x.astype(np.complex128) + 1j, (TypeError,)))
    out.append(("object", x.astype(object), (TypeError,)))
    out.append(("string", x.astype(str), (TypeError,)))
    out.append(("bool", x > 0, (TypeError,)))
    if np.dtype(np.longdouble).itemsize > 8:
        out.append(("longdouble", x.astype(np.longdouble), (TypeError,)))
    out.append(("empty batch", np.zeros((0,) + x.shape[1:], x.dtype), (ValueError,)))
    out.append(("None", None, (TypeError,)))
    out.append(("str", "not an array", (TypeError,)))
    out.append(("ragged", [[1.0], [1.0, 2.0]], (TypeError, ValueError)))
    return out
