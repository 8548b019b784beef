"""The sample-innermost layout of the per-site and direct kernels (kernels/layout.py) against plain numpy."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from kernel_cases import DTYPES, KERNEL_SETTINGS

from hamiltonian_cnn.kernels.layout import samples_innermost, samples_outermost, transpose_rows, transpose_squares


@KERNEL_SETTINGS
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 3), st.integers(0, 3), st.sampled_from(DTYPES),
       st.integers(0, 2**32 - 1), st.sampled_from([transpose_rows, transpose_squares]))
def test_transposes_match_numpy(n_rows, n_cols, pad_src, pad_dst, dtype, seed, transpose):
    """transpose_rows and transpose_squares move a block between arrays with other row strides and
    offsets, transposed, and leave every other entry alone (row counts on both sides of the 8-row
    unrolling; sizes below, at and past one or two squares of simd.vtranspose, so that both the
    squares and the edges run)."""
    rng = np.random.default_rng(seed)
    s_stride, d_stride = n_cols + pad_src, n_rows + pad_dst
    src = rng.standard_normal(3 + n_rows * s_stride).astype(dtype)
    dst = rng.standard_normal(2 + n_cols * d_stride + 5).astype(dtype)
    want = dst.copy()
    block = src[3:3 + n_rows * s_stride].reshape(n_rows, s_stride)[:, :n_cols]
    want[2:2 + n_cols * d_stride].reshape(n_cols, d_stride)[:, :n_rows] = block.T
    transpose(src, 3, s_stride, dst, 2, d_stride, n_rows, n_cols)
    np.testing.assert_array_equal(dst, want)


@KERNEL_SETTINGS
@given(st.integers(1, 5), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(-2, 3),
       st.integers(-2, 3), st.integers(-3, 3), st.integers(-3, 3), st.integers(0, 9), st.integers(0, 9),
       st.sampled_from(DTYPES), st.integers(0, 2**32 - 1))
def test_samples_innermost_and_its_adjoint(m, c, height, width, ph, pw, extra_h, extra_w, g_a, g_b, dtype, seed):
    """samples_innermost is zero padding (or cropping, for negative values) then moving the sample
    axis last (every entry written, rows of the grid whole or not); samples_outermost on the grid
    rows [g_lo, g_hi) is its adjoint restricted to the input rows there: <inner(x), v> = <x, outer(v)>
    over those rows, and no other entry of dx is written."""
    hp, wp = max(1, height + ph + extra_h), max(1, width + pw + extra_w)
    ph, pw = max(ph, -(height - 1)), max(pw, -(width - 1))
    rng = np.random.default_rng(seed)
    n0 = 1
    x = rng.standard_normal((n0 + m + 1, c, height, width)).astype(dtype)
    # the reference: place x[n0:n0+m] on a (hp, wp) grid at offset (ph, pw), then (c, r, q, s)
    grid = np.zeros((m, c, hp, wp), dtype)
    for r in range(height):
        for q in range(width):
            if 0 <= r + ph < hp and 0 <= q + pw < wp:
                grid[:, :, r + ph, q + pw] = x[n0:n0 + m, :, r, q]
    want = np.moveaxis(grid, 0, -1).reshape(-1)
    xt = np.full(c * hp * wp * m, np.nan, dtype)
    samples_innermost(x, n0, m, ph, pw, hp, wp, xt)
    np.testing.assert_array_equal(xt, want)

    g_lo, g_hi = sorted((min(g_a, hp), min(g_b, hp)))
    v = rng.standard_normal(xt.shape).astype(np.float64)
    dx = np.full(x.shape, np.nan, np.float64)
    samples_outermost(v, n0, m, ph, pw, hp, wp, g_lo, g_hi, dx)
    rows = np.array([g_lo <= r + ph < g_hi for r in range(height)])
    cols = np.array([0 <= q + pw < wp for q in range(width)])
    inside = rows[:, None] & cols[None, :]
    assert np.isnan(dx[:n0]).all() and np.isnan(dx[n0 + m:]).all()  # only the block's samples are written
    assert np.isnan(dx[n0:n0 + m][:, :, ~inside]).all() and not np.isnan(dx[n0:n0 + m][:, :, inside]).any()
    on_rows = np.zeros((c, hp, wp))
    on_rows[:, g_lo:g_hi] = 1.0  # the grid rows whose input samples_outermost writes back
    lhs = float(np.dot(xt.astype(np.float64), v * np.repeat(on_rows.reshape(-1), m)))
    rhs = float(np.sum(np.where(inside, x[n0:n0 + m].astype(np.float64) * np.nan_to_num(dx[n0:n0 + m]), 0.0)))
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))
