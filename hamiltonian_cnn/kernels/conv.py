"""Shared coupling (cross-correlation) kernels, 2D; 1D runs as H = 1.

    h[n, o, I, J] = sum_{c, a, b} J[o, c, a, b] x[n, g C_g + c, s1 I + d1 a - p1, s2 J + d2 b - p2] + b[o]
    y = g(h)

(eq. (4.1.8) with channels, groups, zero padding and dilation; g = o // O_g is the group of the
output channel). Only the *start* padding enters a kernel: the end padding is already in the
number of output sites (oh, ow) that the caller computed.

Two ways to compute the same thing; the layer picks one (``nn.conv.conv_method``: direct for
stride 1, where it was the faster one on every shape measured, im2col otherwise), and the tests
check both against the reference.

``direct_forward`` / ``direct_backward`` (no BLAS; stride 1). Each block of samples is copied
once onto zero-padded grids of width Wp = OW + d2 (KW - 1), laid side by side. On that layout
the input under window offset (a, b) of output site (I, J) sits at a fixed shift d1 a W + d2 b
from the site itself, so the field of an output channel, computed on the "wide" grid (the
columns J >= OW of each sample are junk and never read), is a sum of contiguous, shifted rows of
the buffer: long unit-stride loops that LLVM vectorises. The micro-kernel (shifted_rows_pair)
sums 8 window offsets into 2 output channels per pass, so every load feeds 2 multiply-adds and
every store 8. Backward runs the same shifts the other way: dJ is a dot product of the
(zero-junk) wide delta with the shifted rows (shifted_dots_pair), dx a shifted-row sum over the
delta framed by zeros, then cropped to the input sites.

``im2col_forward`` / ``im2col_backward`` (columns + BLAS; any stride). The field is a matrix
product per group, h_g = J_g @ cols_g, where ``cols[(c KH + a) KW + b, m P + I OW + J]`` is the
input under window offset (a, b) of output site (I, J) of the m-th sample of a block (im2col,
P = OH OW sites); blocks are small enough to stay in the core's L2 cache. Backward mirrors it
from the saved output: dh = dy g'(y), dJ_g += dh_g cols^T, db += sum dh, dx = col2im(J_g^T dh_g).
BLAS must run single-threaded meanwhile (the layers arrange it): a multi-threaded BLAS would
spin against the threads that run the pieces of the batch.

Every kernel works on all the samples it is given and releases the GIL: a layer cuts the batch
into pieces and runs them on threads (nn.base.run_chunks), each piece writing its own slices of
the output and returning its own dJ and db (summed afterwards in piece order: no race, and the
same result whichever thread ran which piece). ``shared_forward`` / ``shared_backward`` run the
im2col kernels on the whole batch (in ``n_chunks`` consecutive pieces, one after the other).

The same helpers give the transposed convolution (transpose.py): it is col2im of J^T d.

Development note: Numba's on-disk cache is invalidated only by changes to the file that defines
a cached function, not to the files of the functions it calls. After editing a helper here (or
in activations.py), delete the cache (kernels/__pycache__/*.nbi, *.nbc, or NUMBA_CACHE_DIR) so
that transpose.py, full.py and local.py recompile against it.
"""

import numpy as np
from numba import njit

from .activations import REASSOC, activate_inplace, delta_from_output

# at most this many entries in one block of columns (1 MiB of float32: stays in a core's L2)
BLOCK_ENTRIES = 1 << 18


@njit(cache=True)
def batch_chunks(n_chunks, n_batch):
    """Chunks to cut the batch into: as asked (one per thread, say), at least 1, at most one per sample.

    The caller passes the thread count (numba.get_num_threads() inside a kernel would make it
    uncachable); 1 chunk is a serial loop around whole-batch BLAS products.
    """
    return max(1, min(n_chunks, n_batch))


@njit(cache=True)
def block_size(k, n_sites):
    """Samples per block so that a (k, samples * n_sites) column buffer stays under BLOCK_ENTRIES."""
    return max(1, BLOCK_ENTRIES // max(1, k * n_sites))


@njit(cache=True)
def _even_block(count, block):
    """The same number of blocks as ``block`` gives for ``count`` samples, but of even sizes."""
    n_blocks = (count + block - 1) // block
    return max(1, (count + n_blocks - 1) // max(1, n_blocks))


@njit(cache=True)
def _valid_range(start, step, size, count):
    """Indices k in [0, count) with 0 <= start + step k < size, as [k_lo, k_hi)."""
    k_lo = 0 if start >= 0 else (-start + step - 1) // step
    last = size - 1 - start
    if last < 0:
        return 0, 0
    k_hi = min(last // step + 1, count)
    if k_lo > k_hi:
        k_lo = k_hi
    return k_lo, k_hi


# ---------------------------------------------------------------- im2col / col2im (any stride)


@njit(cache=True)
def im2col(x, n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols):
    """cols[(c KH + a) KW + b, (n - n0) P + I OW + J] = x[n, g C_g + c, sh I + dh a - ph, sw J + dw b - pw]
    (0 in the padding), for samples n0 <= n < n1 of x (N, C, H, W)."""
    height, width = x.shape[2], x.shape[3]
    n_sites = oh * ow
    zero = cols.dtype.type(0)
    for n in range(n0, n1):
        base = (n - n0) * n_sites
        for c in range(c_group):
            plane = x[n, g * c_group + c]
            for a in range(kh):
                i_lo, i_hi = _valid_range(dh * a - ph, sh, height, oh)
                for b in range(kw):
                    row = cols[(c * kh + a) * kw + b]
                    q0 = dw * b - pw
                    j_lo, j_hi = _valid_range(q0, sw, width, ow)
                    for i in range(oh):
                        dst = row[base + i * ow:base + (i + 1) * ow]
                        if i < i_lo or i >= i_hi:
                            for j in range(ow):
                                dst[j] = zero
                            continue
                        src_row = plane[sh * i + dh * a - ph]
                        for j in range(j_lo):
                            dst[j] = zero
                        if sw == 1:
                            src = src_row[j_lo + q0:j_hi + q0]
                            inner = dst[j_lo:j_hi]
                            for j in range(j_hi - j_lo):
                                inner[j] = src[j]
                        else:
                            for j in range(j_lo, j_hi):
                                dst[j] = src_row[sw * j + q0]
                        for j in range(j_hi, ow):
                            dst[j] = zero


@njit(cache=True)
def col2im(cols, n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out):
    """Adjoint of im2col: out[n, g C_g + c, r, q] += cols[row, (n - n0) P + p] over every window position."""
    height, width = out.shape[2], out.shape[3]
    n_sites = oh * ow
    for n in range(n0, n1):
        base = (n - n0) * n_sites
        for c in range(c_group):
            plane = out[n, g * c_group + c]
            for a in range(kh):
                i_lo, i_hi = _valid_range(dh * a - ph, sh, height, oh)
                for b in range(kw):
                    row = cols[(c * kh + a) * kw + b]
                    q0 = dw * b - pw
                    j_lo, j_hi = _valid_range(q0, sw, width, ow)
                    if j_hi <= j_lo:
                        continue
                    for i in range(i_lo, i_hi):
                        src = row[base + i * ow + j_lo:base + i * ow + j_hi]
                        dst_row = plane[sh * i + dh * a - ph]
                        if sw == 1:
                            dst = dst_row[j_lo + q0:j_hi + q0]
                            for j in range(j_hi - j_lo):
                                dst[j] += src[j]
                        else:
                            for j in range(j_hi - j_lo):
                                dst_row[sw * (j_lo + j) + q0] += src[j]


@njit(cache=True)
def gather_rows(h, n0, n1, o0, rows):
    """rows[o, (n - n0) P + p] = h[n, o0 + o, p] for samples n0 <= n < n1; h is (N, O, OH, OW)."""
    n_sites = h.shape[2] * h.shape[3]
    h3 = h.reshape(h.shape[0], h.shape[1], n_sites)
    for n in range(n0, n1):
        for o in range(rows.shape[0]):
            src = h3[n, o0 + o]
            dst = rows[o, (n - n0) * n_sites:(n - n0 + 1) * n_sites]
            for p in range(n_sites):
                dst[p] = src[p]


@njit(cache=True)
def scatter_rows(rows, n0, n1, o0, out):
    """out[n, o0 + o, p] = rows[o, (n - n0) P + p]: the inverse of gather_rows."""
    n_sites = out.shape[2] * out.shape[3]
    out3 = out.reshape(out.shape[0], out.shape[1], n_sites)
    for n in range(n0, n1):
        for o in range(rows.shape[0]):
            src = rows[o, (n - n0) * n_sites:(n - n0 + 1) * n_sites]
            dst = out3[n, o0 + o]
            for p in range(n_sites):
                dst[p] = src[p]


@njit(cache=True)
def scatter_rows_activate(rows, bias, n0, n1, o0, act, y):
    """Fused epilogue: y[n, o0 + o, p] = g(rows[o, (n - n0) P + p] + bias[o0 + o])."""
    n_sites = y.shape[2] * y.shape[3]
    y3 = y.reshape(y.shape[0], y.shape[1], n_sites)
    for n in range(n0, n1):
        for o in range(rows.shape[0]):
            bo = bias[o0 + o]
            src = rows[o, (n - n0) * n_sites:(n - n0 + 1) * n_sites]
            dst = y3[n, o0 + o]
            for p in range(n_sites):
                dst[p] = src[p] + bo
            activate_inplace(dst, act)


@njit(cache=True)
def delta_rows(y, dy, n0, n1, o0, act, rows, db_acc):
    """Fused backward prologue: rows[o, (n - n0) P + p] = dy[n, o0 + o, p] g'(h), g' read from y;
    db_acc[o0 + o] += the sum of each row (db_acc is float64)."""
    n_sites = y.shape[2] * y.shape[3]
    y3 = y.reshape(y.shape[0], y.shape[1], n_sites)
    dy3 = dy.reshape(dy.shape[0], dy.shape[1], n_sites)
    for n in range(n0, n1):
        for o in range(rows.shape[0]):
            db_acc[o0 + o] += delta_from_output(y3[n, o0 + o], dy3[n, o0 + o], act,
                                                rows[o, (n - n0) * n_sites:(n - n0 + 1) * n_sites])


@njit(cache=True)
def add_row_sums(rows, o0, acc):
    """acc[o0 + o] += sum_m rows[o, m] (acc is float64)."""
    for o in range(rows.shape[0]):
        total = 0.0
        for m in range(rows.shape[1]):
            total += rows[o, m]
        acc[o0 + o] += total


@njit(cache=True)
def add_into(acc, values):
    """acc += values for 2D arrays, as a loop (array expressions cost Numba much more compile time)."""
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            acc[i, j] += values[i, j]


@njit(cache=True)
def sum_parts(dw_part, db_part, dtype_like):
    """Sum the per-chunk accumulators: (sum_t dw_part[t], sum_t db_part[t]), both cast to the array dtype."""
    flat_parts = dw_part.reshape(dw_part.shape[0], -1)
    dweight = np.empty(flat_parts.shape[1], dtype=dtype_like.dtype)
    for i in range(flat_parts.shape[1]):
        total = flat_parts[0, i]
        for t in range(1, flat_parts.shape[0]):
            total += flat_parts[t, i]
        dweight[i] = total
    dbias = np.empty(db_part.shape[1], dtype=dtype_like.dtype)
    for o in range(db_part.shape[1]):
        total = 0.0
        for t in range(db_part.shape[0]):
            total += db_part[t, o]
        dbias[o] = total
    return dweight, dbias


# ---------------------------------------------------------------- im2col + BLAS path


@njit(cache=True, nogil=True)
def im2col_forward(x, weight, bias, sh, sw, ph, pw, dh, dw, groups, act, y):
    """y = g(conv(x, J) + b) into y (N, O, oh, ow), for x (N, C, H, W), weight (O, C/groups, KH, KW), bias (O,).

    Every sample of x, in blocks of bounded memory; releases the GIL (callers run pieces of a
    batch on several threads, each with its own slices of x and y)."""
    n_batch = x.shape[0]
    n_out, c_group, kh, kw = weight.shape
    o_group = n_out // groups
    k = c_group * kh * kw
    w = weight.reshape(groups, o_group, k)
    oh, ow = y.shape[2], y.shape[3]
    n_sites = oh * ow
    if n_batch == 0:
        return
    block = _even_block(n_batch, block_size(k + o_group, n_sites))
    cols = np.empty(k * block * n_sites, dtype=x.dtype)
    rows = np.empty(o_group * block * n_sites, dtype=x.dtype)
    for n0 in range(0, n_batch, block):
        n1 = min(n0 + block, n_batch)
        m = (n1 - n0) * n_sites
        cview = cols[:k * m].reshape(k, m)
        rview = rows[:o_group * m].reshape(o_group, m)
        for g in range(groups):
            im2col(x, n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cview)
            np.dot(w[g], cview, rview)
            scatter_rows_activate(rview, bias, n0, n1, g * o_group, act, y)


@njit(cache=True, nogil=True)
def im2col_backward(x, weight, y, dy, sh, sw, ph, pw, dh, dw, groups, act, dx):
    """Gradients of im2col_forward from its saved output y and dL/dy: dx written into dx (shaped
    like x); returns this batch's (dJ, db) as float64 arrays shaped like weight and (O,)."""
    n_batch = x.shape[0]
    n_out, c_group, kh, kw = weight.shape
    o_group = n_out // groups
    k = c_group * kh * kw
    w = weight.reshape(groups, o_group, k)
    oh, ow = y.shape[2], y.shape[3]
    n_sites = oh * ow
    dw_acc = np.zeros((groups, o_group, k))
    db_acc = np.zeros(n_out)
    zero = x.dtype.type(0)
    flat = dx.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = zero
    if n_batch == 0:
        return dw_acc.reshape(weight.shape), db_acc
    block = _even_block(n_batch, block_size(2 * k + o_group, n_sites))
    width = block * n_sites
    cols = np.empty(k * width, dtype=x.dtype)
    dcols = np.empty(k * width, dtype=x.dtype)
    rows = np.empty(o_group * width, dtype=x.dtype)
    dwt = np.empty((o_group, k), dtype=x.dtype)
    for n0 in range(0, n_batch, block):
        n1 = min(n0 + block, n_batch)
        m = (n1 - n0) * n_sites
        cview = cols[:k * m].reshape(k, m)
        dview = dcols[:k * m].reshape(k, m)
        rview = rows[:o_group * m].reshape(o_group, m)
        for g in range(groups):
            delta_rows(y, dy, n0, n1, g * o_group, act, rview, db_acc)
            im2col(x, n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cview)
            np.dot(rview, cview.T, dwt)
            add_into(dw_acc[g], dwt)
            np.dot(w[g].T, rview, dview)
            col2im(dview, n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, dx)
    return dw_acc.reshape(weight.shape), db_acc


@njit(cache=True)
def shared_forward(x, weight, bias, sh, sw, ph, pw, dh, dw, groups, oh, ow, act, n_chunks):
    """y = g(conv(x, J) + b): x (N, C, H, W), weight (O, C/groups, KH, KW), bias (O,) -> y (N, O, oh, ow).

    im2col_forward on ``n_chunks`` consecutive pieces of the batch, one after the other (the layers
    run the pieces on threads instead; the result does not depend on the cut).
    """
    n_batch = x.shape[0]
    y = np.empty((n_batch, weight.shape[0], oh, ow), dtype=x.dtype)
    n_chunks = batch_chunks(n_chunks, n_batch)
    for t in range(n_chunks):
        a, b = t * n_batch // n_chunks, (t + 1) * n_batch // n_chunks
        im2col_forward(x[a:b], weight, bias, sh, sw, ph, pw, dh, dw, groups, act, y[a:b])
    return y


@njit(cache=True)
def shared_backward(x, weight, y, dy, sh, sw, ph, pw, dh, dw, groups, act, n_chunks):
    """Gradients of a fused shared_forward from its saved output y and dL/dy, the batch cut into
    ``n_chunks`` pieces whose dJ and db are summed in order. Returns (dx, dweight, dbias) shaped like
    x, weight and (O,)."""
    n_batch = x.shape[0]
    dx = np.empty_like(x)
    dw_sum = np.zeros(weight.shape)
    db_sum = np.zeros(weight.shape[0])
    n_chunks = batch_chunks(n_chunks, n_batch)
    for t in range(n_chunks):
        a, b = t * n_batch // n_chunks, (t + 1) * n_batch // n_chunks
        dw_part, db_part = im2col_backward(x[a:b], weight, y[a:b], dy[a:b], sh, sw, ph, pw, dh, dw, groups, act,
                                           dx[a:b])
        add_parts(dw_sum.reshape(-1), dw_part.reshape(-1), db_sum, db_part)
    return dx, cast_like(dw_sum, x), cast_like(db_sum, x)


@njit(cache=True)
def add_parts(dw_sum, dw_part, db_sum, db_part):
    """dw_sum += dw_part, db_sum += db_part (1D arrays)."""
    for i in range(dw_sum.shape[0]):
        dw_sum[i] += dw_part[i]
    for i in range(db_sum.shape[0]):
        db_sum[i] += db_part[i]


@njit(cache=True)
def cast_like(values, like):
    """``values`` as a new array of ``like``'s dtype (an explicit loop: astype costs Numba more compile time)."""
    out = np.empty(values.shape, dtype=like.dtype)
    flat_out, flat_in = out.reshape(-1), values.reshape(-1)
    for i in range(flat_in.shape[0]):
        flat_out[i] = flat_in[i]
    return out


# ---------------------------------------------------------------- direct path (stride 1)


@njit(cache=True)
def pad_planes(x, n0, count, c0, c_group, ph, pw, hp, wp, xp):
    """Copy samples n0 <= n < n0 + count, channels c0 <= c < c0 + C_g of x onto zero-padded (hp, wp) grids
    laid side by side: xp[c hp W + r W + m wp + s] = x[n0 + m, c0 + c, r - ph, s - pw] with W = count wp."""
    height, width = x.shape[2], x.shape[3]
    row = count * wp
    plane = hp * row
    r_lo, r_hi = max(0, -ph), min(height, hp - ph)
    s_lo, s_hi = max(0, -pw), min(width, wp - pw)
    if ph != 0 or pw != 0 or r_hi - r_lo != hp or s_hi - s_lo != wp:
        zero = xp.dtype.type(0)
        for k in range(c_group * plane):
            xp[k] = zero
    for c in range(c_group):
        for m in range(count):
            src_plane = x[n0 + m, c0 + c]
            for r in range(r_lo, r_hi):
                src = src_plane[r, s_lo:s_hi]
                start = c * plane + (r + ph) * row + m * wp + s_lo + pw
                dst = xp[start:start + (s_hi - s_lo)]
                for s in range(s_hi - s_lo):
                    dst[s] = src[s]


@njit(cache=True, fastmath=REASSOC)
def shifted_rows_pair(src, w0, w1, offs, length, out0, out1):
    """out0[q] = sum_t w0[t] src[offs[t] + q] and out1[q] likewise with w1, for q < length.

    The register-blocked micro-kernel of the direct path: two output rows share every load of
    ``src``, and 8 taps (4 in a last group) are summed before an output row is written back. The
    number of taps is a multiple of 4 (padded with zero weights at offset 0)."""
    zero = src.dtype.type(0)
    for q in range(length):
        out0[q] = zero
        out1[q] = zero
    n_taps = offs.shape[0]
    t = 0
    while t + 8 <= n_taps:
        u0, u1, u2, u3, u4, u5, u6, u7 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3], w0[t + 4], w0[t + 5], w0[t + 6], w0[t + 7]
        v0, v1, v2, v3, v4, v5, v6, v7 = w1[t], w1[t + 1], w1[t + 2], w1[t + 3], w1[t + 4], w1[t + 5], w1[t + 6], w1[t + 7]
        s0 = src[offs[t]:offs[t] + length]
        s1 = src[offs[t + 1]:offs[t + 1] + length]
        s2 = src[offs[t + 2]:offs[t + 2] + length]
        s3 = src[offs[t + 3]:offs[t + 3] + length]
        s4 = src[offs[t + 4]:offs[t + 4] + length]
        s5 = src[offs[t + 5]:offs[t + 5] + length]
        s6 = src[offs[t + 6]:offs[t + 6] + length]
        s7 = src[offs[t + 7]:offs[t + 7] + length]
        for q in range(length):
            x0, x1, x2, x3, x4, x5, x6, x7 = s0[q], s1[q], s2[q], s3[q], s4[q], s5[q], s6[q], s7[q]
            out0[q] += (u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3) + (u4 * x4 + u5 * x5 + u6 * x6 + u7 * x7)
            out1[q] += (v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3) + (v4 * x4 + v5 * x5 + v6 * x6 + v7 * x7)
        t += 8
    if t < n_taps:
        u0, u1, u2, u3 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3]
        v0, v1, v2, v3 = w1[t], w1[t + 1], w1[t + 2], w1[t + 3]
        s0 = src[offs[t]:offs[t] + length]
        s1 = src[offs[t + 1]:offs[t + 1] + length]
        s2 = src[offs[t + 2]:offs[t + 2] + length]
        s3 = src[offs[t + 3]:offs[t + 3] + length]
        for q in range(length):
            x0, x1, x2, x3 = s0[q], s1[q], s2[q], s3[q]
            out0[q] += u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3
            out1[q] += v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3


@njit(cache=True, fastmath=REASSOC)
def shifted_rows_one(src, w0, offs, length, out0):
    """shifted_rows_pair for a single output row (the odd one out)."""
    zero = src.dtype.type(0)
    for q in range(length):
        out0[q] = zero
    for t in range(0, offs.shape[0], 4):
        u0, u1, u2, u3 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3]
        s0 = src[offs[t]:offs[t] + length]
        s1 = src[offs[t + 1]:offs[t + 1] + length]
        s2 = src[offs[t + 2]:offs[t + 2] + length]
        s3 = src[offs[t + 3]:offs[t + 3] + length]
        for q in range(length):
            out0[q] += u0 * s0[q] + u1 * s1[q] + u2 * s2[q] + u3 * s3[q]


@njit(cache=True, inline="always")
def shifted_rows(src, w, row0, n_rows, offs, length, out):
    """out[r, q] = sum_t w[row0 + r, t] src[offs[t] + q] for r < n_rows (pairs of rows, then the odd one)."""
    for r in range(0, n_rows - 1, 2):
        shifted_rows_pair(src, w[row0 + r], w[row0 + r + 1], offs, length, out[r], out[r + 1])
    if n_rows % 2:
        shifted_rows_one(src, w[row0 + n_rows - 1], offs, length, out[n_rows - 1])


@njit(cache=True, fastmath=REASSOC, inline="always")
def shifted_dots_pair(src, d0, d1, offs, length, acc0, acc1):
    """acc0[t] += sum_q d0[q] src[offs[t] + q] and acc1[t] likewise with d1, for q < length (taps in
    groups of 8, then 4: the number of taps is a multiple of 4)."""
    zero = src.dtype.type(0)
    n_taps = offs.shape[0]
    t = 0
    while t + 8 <= n_taps:
        s0 = src[offs[t]:offs[t] + length]
        s1 = src[offs[t + 1]:offs[t + 1] + length]
        s2 = src[offs[t + 2]:offs[t + 2] + length]
        s3 = src[offs[t + 3]:offs[t + 3] + length]
        s4 = src[offs[t + 4]:offs[t + 4] + length]
        s5 = src[offs[t + 5]:offs[t + 5] + length]
        s6 = src[offs[t + 6]:offs[t + 6] + length]
        s7 = src[offs[t + 7]:offs[t + 7] + length]
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
        b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = zero
        for q in range(length):
            e, f = d0[q], d1[q]
            x0, x1, x2, x3, x4, x5, x6, x7 = s0[q], s1[q], s2[q], s3[q], s4[q], s5[q], s6[q], s7[q]
            a0 += e * x0
            a1 += e * x1
            a2 += e * x2
            a3 += e * x3
            a4 += e * x4
            a5 += e * x5
            a6 += e * x6
            a7 += e * x7
            b0 += f * x0
            b1 += f * x1
            b2 += f * x2
            b3 += f * x3
            b4 += f * x4
            b5 += f * x5
            b6 += f * x6
            b7 += f * x7
        acc0[t] += a0
        acc0[t + 1] += a1
        acc0[t + 2] += a2
        acc0[t + 3] += a3
        acc0[t + 4] += a4
        acc0[t + 5] += a5
        acc0[t + 6] += a6
        acc0[t + 7] += a7
        acc1[t] += b0
        acc1[t + 1] += b1
        acc1[t + 2] += b2
        acc1[t + 3] += b3
        acc1[t + 4] += b4
        acc1[t + 5] += b5
        acc1[t + 6] += b6
        acc1[t + 7] += b7
        t += 8
    if t < n_taps:
        s0 = src[offs[t]:offs[t] + length]
        s1 = src[offs[t + 1]:offs[t + 1] + length]
        s2 = src[offs[t + 2]:offs[t + 2] + length]
        s3 = src[offs[t + 3]:offs[t + 3] + length]
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = zero
        for q in range(length):
            e, f = d0[q], d1[q]
            x0, x1, x2, x3 = s0[q], s1[q], s2[q], s3[q]
            a0 += e * x0
            a1 += e * x1
            a2 += e * x2
            a3 += e * x3
            b0 += f * x0
            b1 += f * x1
            b2 += f * x2
            b3 += f * x3
        acc0[t] += a0
        acc0[t + 1] += a1
        acc0[t + 2] += a2
        acc0[t + 3] += a3
        acc1[t] += b0
        acc1[t + 1] += b1
        acc1[t + 2] += b2
        acc1[t + 3] += b3


@njit(cache=True, fastmath=REASSOC, inline="always")
def shifted_dots_one(src, d0, offs, length, acc0):
    """shifted_dots_pair for a single delta row (the odd one out)."""
    zero = src.dtype.type(0)
    for t in range(0, offs.shape[0], 4):
        s0 = src[offs[t]:offs[t] + length]
        s1 = src[offs[t + 1]:offs[t + 1] + length]
        s2 = src[offs[t + 2]:offs[t + 2] + length]
        s3 = src[offs[t + 3]:offs[t + 3] + length]
        a0 = a1 = a2 = a3 = zero
        for q in range(length):
            e = d0[q]
            a0 += e * s0[q]
            a1 += e * s1[q]
            a2 += e * s2[q]
            a3 += e * s3[q]
        acc0[t] += a0
        acc0[t + 1] += a1
        acc0[t + 2] += a2
        acc0[t + 3] += a3


@njit(cache=True)
def _fill_offsets(offs, n_ch, kh, kw, ch_stride, base, sign, row, dh, dw):
    """offs[(c KH + a) KW + b] = c ch_stride + base + sign (dh a row + dw b); the padding taps stay at 0."""
    for c in range(n_ch):
        for a in range(kh):
            for b in range(kw):
                offs[(c * kh + a) * kw + b] = c * ch_stride + base + sign * (dh * a * row + dw * b)


@njit(cache=True, nogil=True)
def direct_forward(x, wt, bias, ph, pw, dh, dw, kh, kw, block, act, y, work, offs):
    """y = g(conv(x, J) + b) with stride 1 (the caller checks) into y (N, O, oh, ow), for x (N, C, H, W).

    ``wt`` (groups, O_g rounded up to even, C_g KH KW rounded up to 4) holds the weights tap by tap
    (t = (c KH + a) KW + b), zero-padded; ``block`` samples are laid side by side; ``work`` is a
    scratch array of at least (C_g + 2) hp wp block entries of x's dtype and ``offs`` one of int64
    with one entry per tap (hp, wp = the padded grid: oh + dh (KH - 1), ow + dw (KW - 1)). The
    caller prepares them (nn.conv.direct_conv_forward); releases the GIL."""
    n_batch = x.shape[0]
    groups, o_pad, n_taps = wt.shape
    o_group = y.shape[1] // groups
    c_group = x.shape[1] // groups
    oh, ow = y.shape[2], y.shape[3]
    hp, wp = oh + dh * (kh - 1), ow + dw * (kw - 1)
    size = hp * wp * block
    xp = work[:c_group * size]
    acc = work[c_group * size:(c_group + 2) * size].reshape(2, size)
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        row = m * wp
        q_len = (oh - 1) * row + (m - 1) * wp + ow  # the wide grid up to the last real output site
        _fill_offsets(offs, c_group, kh, kw, hp * row, 0, 1, row, dh, dw)
        for g in range(groups):
            pad_planes(x, n0, m, g * c_group, c_group, ph, pw, hp, wp, xp)
            for o in range(0, o_group, 2):
                pair = min(2, o_group - o)
                shifted_rows(xp, wt[g], o, pair, offs, q_len, acc)
                for r in range(pair):
                    k = g * o_group + o + r
                    bo = bias[k]
                    wide = acc[r, :q_len]
                    for s in range(m):
                        out = y[n0 + s, k]
                        for i in range(oh):
                            src = wide[i * row + s * wp:i * row + s * wp + ow]
                            dst = out[i]
                            for j in range(ow):
                                dst[j] = src[j] + bo
        activate_inplace(y[n0:n0 + m].reshape(-1), act)  # the block's real sites only, one vector loop


@njit(cache=True, nogil=True, fastmath=REASSOC)
def direct_backward(x, wt, wtb, y, dy, ph, pw, dh, dw, kh, kw, block, act, dx, dw_acc, db_acc, work, offs):
    """Gradients of direct_forward from its saved output y and dL/dy: dx written into dx (shaped like
    x); dJ (in wt's tap layout) and db added to the float64 accumulators dw_acc (like wt) and
    db_acc (O,). ``wtb`` (groups, C_g rounded up to even, O_g KH KW rounded up to 4) holds the
    weights tap by tap for dx (t = (o KH + a) KW + b); ``work`` is a scratch array of at least
    (C_g + 2 + O_pad) hp wp block + O_pad margin + 2 n_taps + oh ow entries of x's dtype
    (margin = dh (KH - 1) wp block + dw (KW - 1)), ``offs`` one of int64 with n_taps + n_taps_dx
    entries (nn.conv.direct_conv_backward prepares them); releases the GIL."""
    n_batch = x.shape[0]
    groups, o_pad, n_taps = wt.shape
    o_group = y.shape[1] // groups
    c_group = x.shape[1] // groups
    oh, ow = y.shape[2], y.shape[3]
    height, width = x.shape[2], x.shape[3]
    hp, wp = oh + dh * (kh - 1), ow + dw * (kw - 1)
    zero = x.dtype.type(0)
    size = hp * wp * block
    max_margin = dh * (kh - 1) * wp * block + dw * (kw - 1)
    xp = work[:c_group * size]
    at = c_group * size
    dxp = work[at:at + 2 * size].reshape(2, size)
    at += 2 * size
    # wide delta rows framed by zeros: only the real sites are written, the rest stays 0
    dpad = work[at:at + o_pad * (max_margin + size)]
    at += o_pad * (max_margin + size)
    part = work[at:at + n_taps]
    part2 = work[at + n_taps:at + 2 * n_taps]
    dplane = work[at + 2 * n_taps:at + 2 * n_taps + oh * ow]  # one plane of delta, before it is framed
    offs_f = offs[:n_taps]
    offs_b = offs[n_taps:n_taps + wtb.shape[2]]
    y3 = y.reshape(n_batch, y.shape[1], oh * ow)
    dy3 = dy.reshape(n_batch, y.shape[1], oh * ow)
    r_lo, r_hi = max(0, -ph), min(height, hp - ph)
    s_lo, s_hi = max(0, -pw), min(width, wp - pw)
    last_row = -1
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        row = m * wp
        plane = hp * row
        margin = dh * (kh - 1) * row + dw * (kw - 1)
        line = margin + plane  # one output channel's framed delta
        q_len = (oh - 1) * row + (m - 1) * wp + ow
        # dx is needed only on the padded grid's real input sites: rows ph + r_lo .. ph + r_hi - 1
        p0 = (ph + r_lo) * row
        p_len = 0 if r_hi <= r_lo or s_hi <= s_lo else (r_hi - r_lo - 1) * row + (m - 1) * wp + pw + s_hi
        if row != last_row:
            for k in range(o_pad * line):
                dpad[k] = zero
            _fill_offsets(offs_f, c_group, kh, kw, plane, 0, 1, row, dh, dw)
            _fill_offsets(offs_b, o_group, kh, kw, line, margin + p0, -1, row, dh, dw)
            last_row = row
        for g in range(groups):
            o0 = g * o_group
            for o in range(o_group):  # delta = dy g'(y), straight into the wide rows
                total = zero
                for s in range(m):
                    total += delta_from_output(y3[n0 + s, o0 + o], dy3[n0 + s, o0 + o], act, dplane)
                    for i in range(oh):
                        begin = o * line + margin + i * row + s * wp
                        dst = dpad[begin:begin + ow]
                        src = dplane[i * ow:(i + 1) * ow]
                        for j in range(ow):
                            dst[j] = src[j]
                db_acc[o0 + o] += total
            pad_planes(x, n0, m, g * c_group, c_group, ph, pw, hp, wp, xp)
            for o in range(0, o_group, 2):
                for t in range(n_taps):
                    part[t] = zero
                    part2[t] = zero
                d0 = dpad[o * line + margin:o * line + margin + q_len]
                if o + 1 < o_group:
                    shifted_dots_pair(xp, d0, dpad[(o + 1) * line + margin:(o + 1) * line + margin + q_len],
                                      offs_f, q_len, part, part2)
                    for t in range(n_taps):
                        dw_acc[g, o, t] += part[t]
                        dw_acc[g, o + 1, t] += part2[t]
                else:
                    shifted_dots_one(xp, d0, offs_f, q_len, part)
                    for t in range(n_taps):
                        dw_acc[g, o, t] += part[t]
            for c in range(0, c_group, 2):
                pair = min(2, c_group - c)
                shifted_rows(dpad, wtb[g], c, pair, offs_b, p_len, dxp)
                for r in range(pair):  # crop the padded grids back to the input sites
                    for s in range(m):
                        out = dx[n0 + s, g * c_group + c + r]
                        for i in range(height):
                            dst = out[i]
                            if i < r_lo or i >= r_hi:
                                for k in range(width):
                                    dst[k] = zero
                                continue
                            for k in range(s_lo):
                                dst[k] = zero
                            begin = (i + ph) * row + s * wp + pw - p0
                            src = dxp[r, begin + s_lo:begin + s_hi]
                            inner = dst[s_lo:s_hi]
                            for k in range(s_hi - s_lo):
                                inner[k] = src[k]
                            for k in range(s_hi, width):
                                dst[k] = zero
