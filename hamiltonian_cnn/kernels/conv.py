"""Shared coupling (cross-correlation) kernels, 2D; 1D runs as H = 1.

    h[n, o, I, J] = sum_{c, a, b} J[o, c, a, b] x[n, g C_g + c, s1 I + d1 a - p1, s2 J + d2 b - p2] + b[o]
    y = g(h)

(eq. (4.1.8) with channels, groups, zero padding and dilation; g = o // O_g is the group of the
output channel). Only the *start* padding enters a kernel: the end padding is already in the
number of output sites (oh, ow) that the caller computed.

Two ways to compute the same thing: the im2col kernels here (any stride) and the direct kernels
of direct.py (stride 1, no BLAS, the faster one there); the layer picks one
(``nn.conv.conv_method``), and the tests check both against the reference.

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
same result whichever thread ran which piece). ``shared_forward`` runs im2col_forward on the
whole batch (in ``n_chunks`` consecutive pieces, one after the other): the physics couplings
compute their field with it.

The same helpers give the transposed convolution (transpose.py): it is col2im of J^T d.

Development note: Numba's on-disk cache is invalidated only by changes to the file that defines
a cached function, not to the files of the functions it calls. After editing a helper here (or
in activations.py, layout.py, simd.py or tiles.py), delete the cache (kernels/__pycache__/*.nbi,
*.nbc, or NUMBA_CACHE_DIR) so that the kernels that call it recompile against it.
"""

import numpy as np
from numba import njit

from .activations import activate_inplace, delta_from_output

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
def even_block(count, block):
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
    block = even_block(n_batch, block_size(k + o_group, n_sites))
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
    block = even_block(n_batch, block_size(2 * k + o_group, n_sites))
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
