"""Sample-innermost layout, for the local coupling's kernels (local.py) and the direct kernels (direct.py).

A block of m samples is laid out on the zero-padded grid its windows cover, with the sample
innermost: ``xt[((c hp + r) wp + q) m + s] = x[n0 + s, c, r - ph, q - pw]`` (0 in the padding).
There every window offset of every output site starts a contiguous run of m values (of OW m
values along a row of sites, for stride 1), so the columns a matrix product needs are long
copies rather than gathers, and a shifted row is a contiguous run. Moving between this layout and NCHW is one transpose of the block.
"""

from numba import njit

from .simd import VECTOR_BYTES, vtranspose


@njit(cache=True)
def _transpose_scalar(src, s_off, s_stride, dst, d_off, d_stride, n_rows, n_cols):
    """transpose_rows entry by entry, 8 rows of the source at a time (each pass writes 8
    neighbouring entries of the destination): for the edges that fill no whole block."""
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
def transpose_rows(src, s_off, s_stride, dst, d_off, d_stride, n_rows, n_cols):
    """dst[d_off + k d_stride + r] = src[s_off + r s_stride + k] for r < n_rows, k < n_cols (1D arrays):
    the transpose of a (n_rows, n_cols) block with unit inner stride into another, one square of
    lanes x lanes in registers at a time (simd.vtranspose), the edges entry by entry."""
    n = VECTOR_BYTES // src.itemsize
    r_end, k_end = n_rows - n_rows % n, n_cols - n_cols % n
    for r0 in range(0, r_end, n):
        for k0 in range(0, k_end, n):
            vtranspose(src, s_off + r0 * s_stride + k0, s_stride, dst, d_off + k0 * d_stride + r0, d_stride)
    if k_end < n_cols:
        _transpose_scalar(src, s_off + k_end, s_stride, dst, d_off + k_end * d_stride, d_stride, r_end, n_cols - k_end)
    if r_end < n_rows:
        _transpose_scalar(src, s_off + r_end * s_stride, s_stride, dst, d_off + r_end, d_stride, n_rows - r_end, n_cols)


@njit(cache=True)
def transpose2d(src, dst):
    """dst[k, r] = src[r, k] for C-contiguous src (R, K) and dst (K, R)."""
    n_rows, n_cols = src.shape
    origin = n_rows - n_rows  # 0, typed as a run-time integer: a literal 0 would compile another copy
    transpose_rows(src.reshape(-1), origin, n_cols, dst.reshape(-1), origin, n_rows, n_rows, n_cols)


@njit(cache=True)
def grid_rows(height, width, hp, wp, ph, pw):
    """The input rows and columns [r_lo, r_hi) x [q_lo, q_hi) that lie on the (hp, wp) grid padded by
    (ph, pw) at the start, and whether the grid is exactly the input (no padding, nothing cropped)."""
    r_lo, r_hi = max(0, -ph), min(height, hp - ph)
    q_lo, q_hi = max(0, -pw), min(width, wp - pw)
    exact = ph == 0 and pw == 0 and hp == height and wp == width
    return r_lo, r_hi, q_lo, q_hi, exact


@njit(cache=True)
def samples_innermost(x, n0, m, ph, pw, hp, wp, tmp, xt):
    """xt[((c hp + r) wp + q) m + s] = x[n0 + s, c, r - ph, q - pw] (0 in the padding) for x (N, C, H, W):
    one transpose of the block (into tmp, C H W m entries, or straight into xt when the grid is
    the input), then whole rows onto the padded grid."""
    n_in, height, width = x.shape[1], x.shape[2], x.shape[3]
    n_nat = n_in * height * width
    r_lo, r_hi, q_lo, q_hi, exact = grid_rows(height, width, hp, wp, ph, pw)
    block = x[n0:n0 + m].reshape(m, n_nat)
    if exact:
        transpose2d(block, xt[:n_nat * m].reshape(n_nat, m))
        return
    transpose2d(block, tmp[:n_nat * m].reshape(n_nat, m))
    zero = xt.dtype.type(0)
    for k in range(n_in * hp * wp * m):
        xt[k] = zero
    if q_hi <= q_lo:
        return
    run = (q_hi - q_lo) * m
    for c in range(n_in):
        for r in range(r_lo, r_hi):
            begin = ((c * height + r) * width + q_lo) * m
            src = tmp[begin:begin + run]
            at = ((c * hp + r + ph) * wp + q_lo + pw) * m
            dst = xt[at:at + run]
            for k in range(run):
                dst[k] = src[k]


@njit(cache=True)
def samples_outermost(dxt, n0, m, ph, pw, hp, wp, tmp, dx):
    """The adjoint of samples_innermost: dx[n0 + s, c, r, q] = dxt[((c hp + r + ph) wp + q + pw) m + s]
    for the input sites on the grid, 0 for those no window reaches."""
    n_in, height, width = dx.shape[1], dx.shape[2], dx.shape[3]
    n_nat = n_in * height * width
    r_lo, r_hi, q_lo, q_hi, exact = grid_rows(height, width, hp, wp, ph, pw)
    block = dx[n0:n0 + m].reshape(m, n_nat)
    if exact:
        transpose2d(dxt[:n_nat * m].reshape(n_nat, m), block)
        return
    zero = tmp.dtype.type(0)
    if r_lo > 0 or r_hi < height or q_lo > 0 or q_hi < width:
        for k in range(n_nat * m):
            tmp[k] = zero
    if q_hi > q_lo:
        run = (q_hi - q_lo) * m
        for c in range(n_in):
            for r in range(r_lo, r_hi):
                at = ((c * hp + r + ph) * wp + q_lo + pw) * m
                src = dxt[at:at + run]
                begin = ((c * height + r) * width + q_lo) * m
                dst = tmp[begin:begin + run]
                for k in range(run):
                    dst[k] = src[k]
    transpose2d(tmp[:n_nat * m].reshape(n_nat, m), block)
