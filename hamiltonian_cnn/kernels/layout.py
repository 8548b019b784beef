"""Sample-innermost layout, for the local coupling's kernels (local.py) and the direct kernels (direct.py).

A block of m samples is laid out on the zero-padded grid its windows cover, with the sample
innermost: ``xt[((c hp + r) wp + q) m + s] = x[n0 + s, c, r - ph, q - pw]`` (0 in the padding).
There every window offset of every output site starts a contiguous run of m values (of OW m
values along a row of sites, for stride 1), so the columns a matrix product needs are long
copies rather than gathers, and a shifted row is a contiguous run. Moving between this layout and NCHW
transposes the block channel by channel (row by row where columns are padded).
"""

from numba import njit

from .simd import VECTOR_BYTES, vtranspose


@njit(cache=True)
def transpose_rows(src, s_off, s_stride, dst, d_off, d_stride, n_rows, n_cols):
    """dst[d_off + k d_stride + r] = src[s_off + r s_stride + k] for r < n_rows, k < n_cols (1D arrays):
    the transpose of a (n_rows, n_cols) block with unit inner stride into another, 8 rows of the
    source at a time (each pass writes 8 neighbouring entries of the destination)."""
    r_end = n_rows - n_rows % 8
    for r0 in range(0, r_end, 8):
        base = s_off + r0 * s_stride
        s0 = src[base:base + n_cols]
        s1 = src[base + s_stride:base + s_stride + n_cols]
        s2 = src[base + 2 * s_stride:base + 2 * s_stride + n_cols]
        s3 = src[base + 3 * s_stride:base + 3 * s_stride + n_cols]
        s4 = src[base + 4 * s_stride:base + 4 * s_stride + n_cols]
        s5 = src[base + 5 * s_stride:base + 5 * s_stride + n_cols]
        s6 = src[base + 6 * s_stride:base + 6 * s_stride + n_cols]
        s7 = src[base + 7 * s_stride:base + 7 * s_stride + n_cols]
        for k in range(n_cols):
            b = d_off + k * d_stride + r0
            dst[b] = s0[k]
            dst[b + 1] = s1[k]
            dst[b + 2] = s2[k]
            dst[b + 3] = s3[k]
            dst[b + 4] = s4[k]
            dst[b + 5] = s5[k]
            dst[b + 6] = s6[k]
            dst[b + 7] = s7[k]
    for r in range(r_end, n_rows):
        row = src[s_off + r * s_stride:s_off + r * s_stride + n_cols]
        for k in range(n_cols):
            dst[d_off + k * d_stride + r] = row[k]


@njit(cache=True)
def transpose_squares(src, s_off, s_stride, dst, d_off, d_stride, n_rows, n_cols):
    """transpose_rows one square of lanes x lanes in registers at a time (simd.vtranspose: row loads,
    log2(lanes) rounds of shuffles, row stores), the edges that fill no square by transpose_rows.
    About 1.7x faster on large blocks, for a compiled version more (0.45 s): the locally connected
    kernels, whose transposes move every output, use it; the start-up path keeps transpose_rows."""
    n = VECTOR_BYTES // src.itemsize
    r_end, k_end = n_rows - n_rows % n, n_cols - n_cols % n
    for r0 in range(0, r_end, n):
        for k0 in range(0, k_end, n):
            vtranspose(src, s_off + r0 * s_stride + k0, s_stride, dst, d_off + k0 * d_stride + r0, d_stride)
    if k_end < n_cols:
        transpose_rows(src, s_off + k_end, s_stride, dst, d_off + k_end * d_stride, d_stride, r_end, n_cols - k_end)
    if r_end < n_rows:
        transpose_rows(src, s_off + r_end * s_stride, s_stride, dst, d_off + r_end, d_stride, n_rows - r_end, n_cols)


@njit(cache=True, inline="always")
def grid_rows(height, width, hp, wp, ph, pw):
    """The input rows and columns [r_lo, r_hi) x [q_lo, q_hi) that lie on the (hp, wp) grid padded by
    (ph, pw) at the start, and whether the grid's rows are whole input rows (no column padded or
    cropped), so that consecutive rows are back to back on both sides."""
    r_lo, r_hi = max(0, -ph), min(height, hp - ph)
    q_lo, q_hi = max(0, -pw), min(width, wp - pw)
    whole_rows = pw == 0 and wp == width
    return r_lo, r_hi, q_lo, q_hi, whole_rows


@njit(cache=True)
def samples_innermost(x, n0, m, ph, pw, hp, wp, xt):
    """xt[((c hp + r) wp + q) m + s] = x[n0 + s, c, r - ph, q - pw] (0 in the padding) for x (N, C, H, W):
    the block's rows transposed straight onto the padded grid (one transpose per channel where the
    grid rows are whole input rows, else one per input row), then zeros where the padding is.
    ``ph`` or ``pw`` < 0, or a grid smaller than the input, crops it."""
    n_in, height, width = x.shape[1], x.shape[2], x.shape[3]
    n_nat = n_in * height * width
    r_lo, r_hi, q_lo, q_hi, whole_rows = grid_rows(height, width, hp, wp, ph, pw)
    x_flat = x.reshape(-1)
    zero = xt.dtype.type(0)
    base = n0 * n_nat
    for c in range(n_in):
        ch = c * hp * wp * m  # channel c's plane in xt
        if q_hi <= q_lo or r_hi <= r_lo:
            for k in range(hp * wp * m):
                xt[ch + k] = zero
            continue
        for k in range((r_lo + ph) * wp * m):  # the padding rows above
            xt[ch + k] = zero
        for k in range((r_hi + ph) * wp * m, hp * wp * m):  # and below
            xt[ch + k] = zero
        if whole_rows:
            transpose_rows(x_flat, base + (c * height + r_lo) * width, n_nat, xt, ch + (r_lo + ph) * wp * m, m,
                           m, (r_hi - r_lo) * width)
            continue
        for r in range(r_lo, r_hi):
            row = ch + (r + ph) * wp * m
            for k in range((q_lo + pw) * m):  # the padding columns on the left
                xt[row + k] = zero
            for k in range((q_hi + pw) * m, wp * m):  # and on the right
                xt[row + k] = zero
            transpose_rows(x_flat, base + (c * height + r) * width + q_lo, n_nat, xt, row + (q_lo + pw) * m, m,
                           m, q_hi - q_lo)


@njit(cache=True)
def samples_outermost(dxt, n0, m, ph, pw, hp, wp, g_lo, g_hi, dx):
    """The adjoint of samples_innermost on the grid rows [g_lo, g_hi): dx[n0 + s, c, r, q] =
    dxt[((c hp + r + ph) wp + q + pw) m + s] for the input sites in those rows that lie on the
    grid. Input sites off the grid are not written (the caller zeroes them)."""
    n_in, height, width = dx.shape[1], dx.shape[2], dx.shape[3]
    n_nat = n_in * height * width
    r_lo, r_hi, q_lo, q_hi, whole_rows = grid_rows(height, width, hp, wp, ph, pw)
    r_lo, r_hi = max(r_lo, g_lo - ph), min(r_hi, g_hi - ph)
    if q_hi <= q_lo or r_hi <= r_lo:
        return
    dx_flat = dx.reshape(-1)
    base = n0 * n_nat
    for c in range(n_in):
        ch = c * hp * wp * m
        if whole_rows:
            transpose_rows(dxt, ch + (r_lo + ph) * wp * m, m, dx_flat, base + (c * height + r_lo) * width, n_nat,
                           (r_hi - r_lo) * width, m)
            continue
        for r in range(r_lo, r_hi):
            transpose_rows(dxt, ch + ((r + ph) * wp + q_lo + pw) * m, m, dx_flat,
                           base + (c * height + r) * width + q_lo, n_nat, q_hi - q_lo, m)
