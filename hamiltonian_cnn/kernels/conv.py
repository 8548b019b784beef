"""Shared coupling (cross-correlation) kernels, 2D; 1D runs as H = 1.

    h[n, o, I, J] = sum_{c, a, b} J[o, c, a, b] x[n, g C_g + c, s1 I + d1 a - p1, s2 J + d2 b - p2] + b[o]
    y = g(h)

(eq. (4.1.8) with channels, groups, zero padding and dilation; g = o // O_g is the group of the
output channel). Only the *start* padding enters a kernel: the end padding is already in the
number of output sites (oh, ow) that the caller computed.

The field is a matrix product per group, h_g = J_g @ cols_g, where
``cols[(c KH + a) KW + b, m P + I OW + J]`` is the input under window offset (a, b) of output site
(I, J) of the m-th sample of a block (im2col, P = OH OW sites). The batch is cut into one chunk
per thread (``prange`` over chunks); each chunk walks its samples in blocks of bounded memory,
fills its own columns, calls BLAS, and runs the fused epilogue (bias + activation, back to NCHW)
on its own samples. Backward mirrors it from the saved output: dh = dy g'(y), dJ_g += dh_g cols^T
and db += sum dh into the chunk's *own* partial buffers (summed after the parallel loop: no
race), dx = col2im(J_g^T dh_g) into the chunk's own samples.

BLAS should run single-threaded while these kernels run (the layers arrange it), because the
parallelism is over the batch; a multi-threaded BLAS would spin against Numba's threads.

The same helpers give the transposed convolution (transpose.py): it is col2im of J^T d.

Development note: Numba's on-disk cache is invalidated only by changes to the file that defines
a cached function, not to the files of the functions it calls. After editing a helper here (or
in activations.py), delete the cache (kernels/__pycache__/*.nbi, *.nbc, or NUMBA_CACHE_DIR) so
that transpose.py, full.py and local.py recompile against it.
"""

import numpy as np
from numba import njit, prange

from .activations import activate, derivative_from_output

# at most this many entries in one block of columns (16 MiB of float32)
BLOCK_ENTRIES = 1 << 22


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


@njit(cache=True)
def im2col(x, n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols):
    """cols[(c KH + a) KW + b, (n - n0) P + I OW + J] = x[n, g C_g + c, sh I + dh a - ph, sw J + dw b - pw]
    (0 in the padding), for samples n0 <= n < n1 of x (N, C, H, W)."""
    height, width = x.shape[2], x.shape[3]
    n_sites = oh * ow
    for n in range(n0, n1):
        for c in range(c_group):
            ci = g * c_group + c
            for a in range(kh):
                i_lo, i_hi = _valid_range(dh * a - ph, sh, height, oh)
                for b in range(kw):
                    row = (c * kh + a) * kw + b
                    j_lo, j_hi = _valid_range(dw * b - pw, sw, width, ow)
                    q0 = dw * b - pw
                    for i in range(oh):
                        base = (n - n0) * n_sites + i * ow
                        if i < i_lo or i >= i_hi:
                            for j in range(ow):
                                cols[row, base + j] = 0.0
                            continue
                        r = sh * i + dh * a - ph
                        for j in range(j_lo):
                            cols[row, base + j] = 0.0
                        for j in range(j_lo, j_hi):
                            cols[row, base + j] = x[n, ci, r, sw * j + q0]
                        for j in range(j_hi, ow):
                            cols[row, base + j] = 0.0


@njit(cache=True)
def col2im(cols, n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out):
    """Adjoint of im2col: out[n, g C_g + c, r, q] += cols[row, (n - n0) P + p] over every window position."""
    height, width = out.shape[2], out.shape[3]
    n_sites = oh * ow
    for n in range(n0, n1):
        for c in range(c_group):
            ci = g * c_group + c
            for a in range(kh):
                i_lo, i_hi = _valid_range(dh * a - ph, sh, height, oh)
                for b in range(kw):
                    row = (c * kh + a) * kw + b
                    j_lo, j_hi = _valid_range(dw * b - pw, sw, width, ow)
                    q0 = dw * b - pw
                    for i in range(i_lo, i_hi):
                        r = sh * i + dh * a - ph
                        base = (n - n0) * n_sites + i * ow
                        for j in range(j_lo, j_hi):
                            out[n, ci, r, sw * j + q0] += cols[row, base + j]


@njit(cache=True)
def gather_rows(h, n0, n1, o0, rows):
    """rows[o, (n - n0) P + p] = h[n, o0 + o, p] for samples n0 <= n < n1; h is (N, O, OH, OW)."""
    n_sites = h.shape[2] * h.shape[3]
    for n in range(n0, n1):
        for o in range(rows.shape[0]):
            for i in range(h.shape[2]):
                for j in range(h.shape[3]):
                    rows[o, (n - n0) * n_sites + i * h.shape[3] + j] = h[n, o0 + o, i, j]


@njit(cache=True)
def scatter_rows(rows, n0, n1, o0, out):
    """out[n, o0 + o, p] = rows[o, (n - n0) P + p]: the inverse of gather_rows."""
    n_sites = out.shape[2] * out.shape[3]
    for n in range(n0, n1):
        for o in range(rows.shape[0]):
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    out[n, o0 + o, i, j] = rows[o, (n - n0) * n_sites + i * out.shape[3] + j]


@njit(cache=True)
def scatter_rows_activate(rows, bias, n0, n1, o0, act, y):
    """Fused epilogue: y[n, o0 + o, p] = g(rows[o, (n - n0) P + p] + bias[o0 + o])."""
    n_sites = y.shape[2] * y.shape[3]
    for n in range(n0, n1):
        for o in range(rows.shape[0]):
            bo = bias[o0 + o]
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    y[n, o0 + o, i, j] = activate(rows[o, (n - n0) * n_sites + i * y.shape[3] + j] + bo, act)


@njit(cache=True)
def delta_rows(y, dy, n0, n1, o0, act, rows):
    """Fused backward prologue: rows[o, (n - n0) P + p] = dy[n, o0 + o, p] g'(h), g' read from y."""
    n_sites = y.shape[2] * y.shape[3]
    for n in range(n0, n1):
        for o in range(rows.shape[0]):
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    rows[o, (n - n0) * n_sites + i * y.shape[3] + j] = (
                        dy[n, o0 + o, i, j] * derivative_from_output(y[n, o0 + o, i, j], act))


@njit(cache=True)
def add_row_sums(rows, o0, acc):
    """acc[o0 + o] += sum_m rows[o, m] (acc is float64)."""
    for o in range(rows.shape[0]):
        total = 0.0
        for m in range(rows.shape[1]):
            total += rows[o, m]
        acc[o0 + o] += total


@njit(cache=True)
def _forward_chunk(x, w, bias, sh, sw, ph, pw, dh, dw, kh, kw, oh, ow, act, start, stop, y):
    """Samples start <= n < stop of shared_forward, in blocks of bounded memory (serial)."""
    groups, o_group, k = w.shape
    c_group = k // (kh * kw)
    n_sites = oh * ow
    block = block_size(k, n_sites)
    cols = np.empty(k * min(block, stop - start) * n_sites, dtype=x.dtype)
    for n0 in range(start, stop, block):
        n1 = min(n0 + block, stop)
        view = cols[:k * (n1 - n0) * n_sites].reshape(k, (n1 - n0) * n_sites)
        for g in range(groups):
            im2col(x, n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, view)
            scatter_rows_activate(np.dot(w[g], view), bias, n0, n1, g * o_group, act, y)


@njit(cache=True)
def _backward_chunk(x, w, y, dy, sh, sw, ph, pw, dh, dw, kh, kw, act, start, stop, dx, dw_acc, db_acc):
    """Samples start <= n < stop of shared_backward: dx of those samples, dJ and db added to this
    chunk's own accumulators (serial)."""
    groups, o_group, k = w.shape
    c_group = k // (kh * kw)
    oh, ow = y.shape[2], y.shape[3]
    n_sites = oh * ow
    block = block_size(k, n_sites)
    width = min(block, stop - start) * n_sites
    cols = np.empty(k * width, dtype=x.dtype)
    rows = np.empty(o_group * width, dtype=x.dtype)
    for n0 in range(start, stop, block):
        n1 = min(n0 + block, stop)
        m = (n1 - n0) * n_sites
        cview = cols[:k * m].reshape(k, m)
        rview = rows[:o_group * m].reshape(o_group, m)
        for g in range(groups):
            delta_rows(y, dy, n0, n1, g * o_group, act, rview)
            add_row_sums(rview, g * o_group, db_acc)
            im2col(x, n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cview)
            add_into(dw_acc[g], np.dot(rview, cview.T))
            col2im(np.dot(w[g].T, rview), n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, dx)


@njit(cache=True)
def add_into(acc, values):
    """acc += values for 2D arrays, as a loop (array expressions cost Numba much more compile time)."""
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            acc[i, j] += values[i, j]


@njit(cache=True)
def sum_parts(dw_part, db_part, dtype_like):
    """Sum the per-chunk accumulators: (sum_t dw_part[t], sum_t db_part[t] cast to the array dtype)."""
    dweight = dw_part[0].copy()
    flat = dweight.reshape(-1)
    parts = dw_part.reshape(dw_part.shape[0], -1)
    for t in range(1, dw_part.shape[0]):
        for i in range(flat.shape[0]):
            flat[i] += parts[t, i]
    dbias = np.empty(db_part.shape[1], dtype=dtype_like.dtype)
    for o in range(db_part.shape[1]):
        total = 0.0
        for t in range(db_part.shape[0]):
            total += db_part[t, o]
        dbias[o] = total
    return dweight, dbias


@njit(cache=True, parallel=True)
def shared_forward(x, weight, bias, sh, sw, ph, pw, dh, dw, groups, oh, ow, act, n_chunks):
    """y = g(conv(x, J) + b): x (N, C, H, W), weight (O, C/groups, KH, KW), bias (O,) -> y (N, O, oh, ow).

    ``n_chunks``: how many pieces of the batch run in parallel (the Numba thread count; 1 = serial).
    """
    n_batch = x.shape[0]
    n_out, c_group, kh, kw = weight.shape
    w = weight.reshape(groups, n_out // groups, c_group * kh * kw)
    y = np.empty((n_batch, n_out, oh, ow), dtype=x.dtype)
    n_chunks = batch_chunks(n_chunks, n_batch)
    for t in prange(n_chunks):
        _forward_chunk(x, w, bias, sh, sw, ph, pw, dh, dw, kh, kw, oh, ow, act,
                       t * n_batch // n_chunks, (t + 1) * n_batch // n_chunks, y)
    return y


@njit(cache=True, parallel=True)
def shared_backward(x, weight, y, dy, sh, sw, ph, pw, dh, dw, groups, act, n_chunks):
    """Gradients of a fused shared_forward from its saved output y and dL/dy.

    Returns (dx, dweight, dbias) shaped like x, weight and (O,).
    """
    n_batch = x.shape[0]
    n_out, c_group, kh, kw = weight.shape
    o_group = n_out // groups
    k = c_group * kh * kw
    w = weight.reshape(groups, o_group, k)
    dx = np.zeros_like(x)
    n_chunks = batch_chunks(n_chunks, n_batch)
    dw_part = np.zeros((n_chunks, groups, o_group, k), dtype=x.dtype)
    db_part = np.zeros((n_chunks, n_out))
    for t in prange(n_chunks):
        _backward_chunk(x, w, y, dy, sh, sw, ph, pw, dh, dw, kh, kw, act,
                        t * n_batch // n_chunks, (t + 1) * n_batch // n_chunks, dx, dw_part[t], db_part[t])
    dweight, dbias = sum_parts(dw_part, db_part, x)
    return dx, dweight.reshape(weight.shape), dbias
