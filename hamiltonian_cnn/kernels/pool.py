"""Pooling kernels, 2D; 1D runs as H = 1.

Every pooling here is described by its windows along each axis: output row I pools input rows
[r0[I], r1[I]) and output column J pools input columns [c0[J], c1[J]), already clipped to the
input (non-empty). Fixed windows (kernel, stride, padding), global pooling (one window) and the
adaptive bins of spatial pyramid pooling are all this one form, so four kernels cover them.
Zero padding never wins a max (it is -inf for max pooling, as in PyTorch); for the average the
caller chooses the divisor of each window (the full window, padding included, or only the
sites inside the input).

The forward passes run in parallel over (sample, channel), each owning its slice of the output;
the backward passes are cheap scatters and run serially.
"""

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def max_pool_forward(x, r0, r1, c0, c1):
    """y[n, c, I, J] = max of the window; also the flat input index (row * W + col) of the max."""
    n_batch, n_ch, height, width = x.shape
    oh, ow = r0.shape[0], c0.shape[0]
    y = np.empty((n_batch, n_ch, oh, ow), dtype=x.dtype)
    arg = np.empty((n_batch, n_ch, oh, ow), dtype=np.int64)
    for t in prange(n_batch * n_ch):
        n = t // n_ch
        c = t % n_ch
        for i in range(oh):
            for j in range(ow):
                best = x[n, c, r0[i], c0[j]]
                where = r0[i] * width + c0[j]
                for r in range(r0[i], r1[i]):
                    for q in range(c0[j], c1[j]):
                        v = x[n, c, r, q]
                        if v > best:
                            best = v
                            where = r * width + q
                y[n, c, i, j] = best
                arg[n, c, i, j] = where
    return y, arg


@njit(cache=True)
def max_pool_backward(dy, arg, height, width):
    """dx: each dy goes to the input site that won its window (added where windows overlap)."""
    n_batch, n_ch, oh, ow = dy.shape
    dx = np.zeros((n_batch, n_ch, height, width), dtype=dy.dtype)
    for t in range(n_batch * n_ch):
        n = t // n_ch
        c = t % n_ch
        for i in range(oh):
            for j in range(ow):
                where = arg[n, c, i, j]
                dx[n, c, where // width, where % width] += dy[n, c, i, j]
    return dx


@njit(cache=True, parallel=True)
def avg_pool_forward(x, r0, r1, c0, c1, divisor):
    """y[n, c, I, J] = (sum of the window) / divisor[I, J]."""
    n_batch, n_ch, height, width = x.shape
    oh, ow = r0.shape[0], c0.shape[0]
    y = np.empty((n_batch, n_ch, oh, ow), dtype=x.dtype)
    for t in prange(n_batch * n_ch):
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


@njit(cache=True)
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
