"""Transposed convolution: the shared coupling read the other way (seed 004, section 4.1.2).

The field that the feature variables d exert on the input sites is

    f[n, c, i, j] = sum_{o, I, J, a, b} J[o, c', a, b] d[n, o, I, J] [i = s1 I + d1 a - p1] [j = s2 J + d2 b - p2]

with the *same* weight J (O, C/groups, KH, KW) as the forward convolution from C to O channels
(PyTorch's ConvTranspose layout: (in_channels, out_channels/groups, *window) of the transposed
layer). It is exactly col2im(J^T d), the dx of the forward convolution; its gradients are a
forward convolution (dd = conv(df, J)) and the forward convolution's weight gradient with the
roles of input and output swapped (dJ = d (x) im2col(df)).

The batch is processed in ``n_chunks`` consecutive pieces (weight gradients in per-piece buffers,
summed in order); the kernels release the GIL, and the layer runs pieces of a batch on threads
as in conv.py.
"""

import numpy as np
from numba import njit

from .activations import activate, derivative_from_output
from .conv import add_into, batch_chunks, block_size, col2im, gather_rows, im2col, scatter_rows, sum_parts


@njit(cache=True)
def _forward_chunk(d, w, bias, sh, sw, ph, pw, dh, dw, kh, kw, act, start, stop, z):
    """Samples start <= n < stop of transpose_forward (serial)."""
    groups, o_group, k = w.shape
    c_group = k // (kh * kw)
    oh, ow = d.shape[2], d.shape[3]
    n_sites = oh * ow
    block = block_size(k, n_sites)
    rows = np.empty(o_group * min(block, stop - start) * n_sites, dtype=d.dtype)
    for n0 in range(start, stop, block):
        n1 = min(n0 + block, stop)
        rview = rows[:o_group * (n1 - n0) * n_sites].reshape(o_group, (n1 - n0) * n_sites)
        for g in range(groups):
            gather_rows(d, n0, n1, g * o_group, rview)
            col2im(np.dot(w[g].T, rview), n0, n1, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, z)
    for n in range(start, stop):  # fused epilogue
        for c in range(z.shape[1]):
            for i in range(z.shape[2]):
                for j in range(z.shape[3]):
                    z[n, c, i, j] = activate(z[n, c, i, j] + bias[c], act)


@njit(cache=True)
def _backward_chunk(d, w, z, dz, sh, sw, ph, pw, dh, dw, kh, kw, act, start, stop, dd, dw_acc, db_acc):
    """Samples start <= n < stop of transpose_backward: dd of those samples, dJ and db added to this
    chunk's own accumulators (serial)."""
    groups, o_group, k = w.shape
    c_group = k // (kh * kw)
    oh, ow = d.shape[2], d.shape[3]
    _, n_ch, height, width = z.shape
    n_sites = oh * ow
    block = block_size(k, n_sites)
    count = min(block, stop - start)
    cols = np.empty(k * count * n_sites, dtype=d.dtype)
    rows = np.empty(o_group * count * n_sites, dtype=d.dtype)
    delta = np.empty((count, n_ch, height, width), dtype=d.dtype)
    for n0 in range(start, stop, block):
        n1 = min(n0 + block, stop)
        m = (n1 - n0) * n_sites
        for n in range(n0, n1):  # delta = dz g'(z) for this block, and its channel sums
            for c in range(n_ch):
                total = 0.0
                for i in range(height):
                    for j in range(width):
                        v = dz[n, c, i, j] * derivative_from_output(z[n, c, i, j], act)
                        delta[n - n0, c, i, j] = v
                        total += v
                db_acc[c] += total
        cview = cols[:k * m].reshape(k, m)
        rview = rows[:o_group * m].reshape(o_group, m)
        for g in range(groups):
            im2col(delta, 0, n1 - n0, g, c_group, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cview)
            gather_rows(d, n0, n1, g * o_group, rview)
            add_into(dw_acc[g], np.dot(rview, cview.T))
            scatter_rows(np.dot(w[g], cview), n0, n1, g * o_group, dd)  # dd = conv(delta, J)


@njit(cache=True, nogil=True)
def transpose_forward(d, weight, bias, sh, sw, ph, pw, dh, dw, groups, height, width, act, n_chunks):
    """z = g(conv_transpose(d, J) + b): d (N, O, OH, OW), weight (O, C/groups, KH, KW), bias (C,)
    -> z (N, C, height, width). (height, width) is the output size, output padding included."""
    n_batch = d.shape[0]
    n_in, c_group, kh, kw = weight.shape
    w = weight.reshape(groups, n_in // groups, c_group * kh * kw)
    z = np.zeros((n_batch, c_group * groups, height, width), dtype=d.dtype)
    n_chunks = batch_chunks(n_chunks, n_batch)
    for t in range(n_chunks):
        _forward_chunk(d, w, bias, sh, sw, ph, pw, dh, dw, kh, kw, act,
                       t * n_batch // n_chunks, (t + 1) * n_batch // n_chunks, z)
    return z


@njit(cache=True, nogil=True)
def transpose_backward(d, weight, z, dz, sh, sw, ph, pw, dh, dw, groups, act, n_chunks):
    """Gradients of transpose_forward from its saved output z and dL/dz.

    Returns (dd, dweight, dbias) shaped like d, weight and (C,).
    """
    n_batch = d.shape[0]
    n_in, c_group, kh, kw = weight.shape
    o_group = n_in // groups
    k = c_group * kh * kw
    w = weight.reshape(groups, o_group, k)
    dd = np.empty_like(d)
    n_chunks = batch_chunks(n_chunks, n_batch)
    dw_part = np.zeros((n_chunks, groups, o_group, k), dtype=d.dtype)
    db_part = np.zeros((n_chunks, z.shape[1]))
    for t in range(n_chunks):
        _backward_chunk(d, w, z, dz, sh, sw, ph, pw, dh, dw, kh, kw, act,
                        t * n_batch // n_chunks, (t + 1) * n_batch // n_chunks, dd, dw_part[t], db_part[t])
    dweight, dbias = sum_parts(dw_part, db_part, d)
    return dd, dweight.reshape(weight.shape), dbias
