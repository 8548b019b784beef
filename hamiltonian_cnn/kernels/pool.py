"""Pooling kernels, 2D; 1D runs as H = 1.

Every pooling here is described by its windows along each axis: output row I pools input rows
[r0[I], r1[I]) and output column J pools input columns [c0[J], c1[J]), already clipped to the
input (non-empty). Fixed windows (kernel, stride, padding), global pooling (one window) and the
adaptive bins of spatial pyramid pooling are all this one form, so four kernels cover them.
Zero padding never wins a max (it is -inf for max pooling, as in PyTorch); for the average the
caller chooses the divisor of each window (the full window, padding included, or only the
sites inside the input).

All four run serially (and release the GIL): pooling reads each input once and does next to
no arithmetic, so a parallel kernel would mostly add its compile time (seconds, at the first
call) and the cost of waking threads (tens of microseconds, at every call).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def max_pool_forward(x, r0, r1, c0, c1):
    """y[n, c, I, J] = max of the window; also the flat input index (row * W + col) of the max
    (the first one on ties; the comparison is a select, not a branch, as random data would
    mispredict half of them)."""
    n_batch, n_ch, height, width = x.shape
    oh, ow = r0.shape[0], c0.shape[0]
    y = np.empty((n_batch, n_ch, oh, ow), dtype=x.dtype)
    arg = np.empty((n_batch, n_ch, oh, ow), dtype=np.int64)
    x3 = x.reshape(n_batch, n_ch, height * width)
    for n in range(n_batch):
        for c in range(n_ch):
            plane = x3[n, c]
            y_plane, arg_plane = y[n, c], arg[n, c]
            for i in range(oh):
                for j in range(ow):
                    where = r0[i] * width + c0[j]
                    best = plane[where]
                    for r in range(r0[i], r1[i]):
                        for q in range(r * width + c0[j], r * width + c1[j]):
                            v = plane[q]
                            better = v > best
                            best = v if better else best
                            where = q if better else where
                    y_plane[i, j] = best
                    arg_plane[i, j] = where
    return y, arg


@njit(cache=True, nogil=True)
def max_pool_backward(dy, arg, height, width):
    """dx: each dy goes to the input site that won its window (added where windows overlap)."""
    n_batch, n_ch, oh, ow = dy.shape
    dx = np.zeros((n_batch, n_ch, height, width), dtype=dy.dtype)
    dx3 = dx.reshape(n_batch, n_ch, height * width)
    for n in range(n_batch):
        for c in range(n_ch):
            plane = dx3[n, c]
            d_plane, arg_plane = dy[n, c], arg[n, c]
            for i in range(oh):
                for j in range(ow):
                    plane[arg_plane[i, j]] += d_plane[i, j]
    return dx


@njit(cache=True, nogil=True)
def avg_pool_forward(x, r0, r1, c0, c1, divisor):
    """y[n, c, I, J] = (sum of the window) / divisor[I, J]."""
    n_batch, n_ch, height, width = x.shape
    oh, ow = r0.shape[0], c0.shape[0]
    y = np.empty((n_batch, n_ch, oh, ow), dtype=x.dtype)
    for t in range(n_batch * n_ch):
        n = t // n_ch
        c = t % n_ch
        for i in range(oh):
            for j in range(ow):
                acc = 0.0
                for r in range(r0[i], r1[i]):
                    for q in range(c0[j], c1[j]):
                        acc += x[n, c, r, q]
                y[n, c, i, j] = acc / divisor[i, j]
    return y


@njit(cache=True, nogil=True)
def avg_pool_backward(dy, r0, r1, c0, c1, divisor, height, width):
    """dx: each dy / divisor spread evenly over its window."""
    n_batch, n_ch, oh, ow = dy.shape
    dx = np.zeros((n_batch, n_ch, height, width), dtype=dy.dtype)
    for t in range(n_batch * n_ch):
        n = t // n_ch
        c = t % n_ch
        for i in range(oh):
            for j in range(ow):
                share = dy[n, c, i, j] / divisor[i, j]
                for r in range(r0[i], r1[i]):
                    for q in range(c0[j], c1[j]):
                        dx[n, c, r, q] += share
    return dx
