"""Shared pieces of the kernel tests: hypothesis strategies for window geometries, tolerances,
and the 1D -> 2D (H = 1) plumbing the kernels expect."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import reference as ref  # noqa: E402

from hamiltonian_cnn.kernels.activations import CODES  # noqa: E402
from hamiltonian_cnn.kernels.conv import im2col_backward  # noqa: E402

# every kernel test runs this many random configurations
EXAMPLES = 200
KERNEL_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = (np.float32, np.float64)


def assert_close(got, want, dtype, what=""):
    """float64: 1e-10; float32: 1e-4 relative to the scale of the reference."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    tol = 1e-10 if np.dtype(dtype) == np.float64 else 1e-4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def code(act) -> int:
    return CODES[act]


def random_array(rng, shape, dtype, scale=1.0):
    return np.ascontiguousarray(rng.standard_normal(shape) * scale, dtype=dtype)


def as4(a):
    """(N, C, L) -> (N, C, 1, L) for the kernels; 2D unchanged."""
    return np.ascontiguousarray(ref.as2d(a))


def shared_backward(x, weight, y, dy, sh, sw, ph, pw, dh, dw, groups, act, n_chunks):
    """The im2col backward of the shared convolution on a whole batch, cut as a layer cuts it:
    im2col_backward on ``n_chunks`` consecutive pieces (at least 1, at most one per sample), dx
    written piece by piece, the pieces' dJ and db (float64) summed in order and cast to x's dtype.
    Returns (dx, dJ, db) shaped like x, weight and (O,)."""
    n_batch = x.shape[0]
    n_chunks = max(1, min(n_chunks, n_batch))
    dx = np.empty_like(x)
    dw_sum = np.zeros(weight.shape)
    db_sum = np.zeros(weight.shape[0])
    for t in range(n_chunks):
        a, b = t * n_batch // n_chunks, (t + 1) * n_batch // n_chunks
        dw_part, db_part = im2col_backward(x[a:b], weight, y[a:b], dy[a:b], sh, sw, ph, pw, dh, dw, groups, act,
                                           dx[a:b])
        dw_sum += dw_part
        db_sum += db_part
    return dx, dw_sum.astype(x.dtype), db_sum.astype(x.dtype)


def delta_for(h_ref, y_kernel, dy, act):
    """dL/dh for the reference backward: dy g'(h) with g' from the reference field; for relu the
    kink is decided by the kernel's own output (the forward check already pins y to relu(h)),
    so a float32 field within rounding of 0 cannot flip the comparison."""
    if act == "relu":
        return np.asarray(dy, np.float64) * (np.asarray(y_kernel) > 0)
    return np.asarray(dy, np.float64) * ref.activation_derivative(h_ref, act)


@st.composite
def window_geometry(draw, nd, max_kernel=4, max_stride=3, max_dilation=3, max_extra=6, modes=True):
    """Sites, kernel, stride, dilation and padding (pairs per axis) that fit together.

    Returns (sites, kernel, stride, dilation, pads) with pads ((start, end), ...) per axis;
    string modes are resolved through make_geometry, so "same" may be asymmetric.
    """
    from hamiltonian_cnn.physics.formulas import make_geometry

    kernel = tuple(draw(st.integers(1, max_kernel)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, max_dilation)) for _ in range(nd))
    mode = draw(st.sampled_from(["int", "pairs", "same", "valid", "full"] if modes else ["int", "pairs"]))
    if mode == "int":
        p = draw(st.integers(0, 3))
        pads = tuple((p, p) for _ in range(nd))
    elif mode == "pairs":
        pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
    else:
        pads = None
    sites = []
    for axis in range(nd):
        span = (kernel[axis] - 1) * dilation[axis] + 1
        need = 1 if pads is None and mode != "valid" else max(1, span - (0 if pads is None else sum(pads[axis])))
        sites.append(need + draw(st.integers(0, max_extra)))
    sites = tuple(sites)
    geo = make_geometry(sites, kernel, stride, mode if pads is None else pads, dilation)
    return sites, kernel, stride, dilation, geo.padding


def pairs2(nd, values, fill):
    """Per-axis values of a 1D or 2D geometry as the 2D pair the kernels/reference use."""
    return (fill,) + tuple(values) if nd == 1 else tuple(values)
