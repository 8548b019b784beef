"""Full coupling J_{IJ,ij} kernels on flattened sites (eq. (4.1.2)).

    h[n, K] = sum_F J[K, F] x[n, F] + b[K],   y = g(h)

K runs over every output (channel, site), F over every input (channel, site). The batch is cut
into ``n_chunks`` chunks (one per thread); each chunk makes one BLAS product and runs the fused bias + activation
epilogue on its own rows. Backward writes dx for its own rows and adds dJ, db into the chunk's
own partial buffers, summed after the parallel loop.
"""

import numpy as np
from numba import njit, prange

from .activations import activate, derivative_from_output
from .conv import add_into, batch_chunks, sum_parts


@njit(cache=True)
def _forward_chunk(x, weight, bias, act, start, stop, y):
    h = np.dot(x[start:stop], weight.T)
    for n in range(stop - start):
        for k in range(weight.shape[0]):
            y[start + n, k] = activate(h[n, k] + bias[k], act)


@njit(cache=True)
def _backward_chunk(x, weight, y, dy, act, start, stop, dx, dw_acc, db_acc):
    n_out = weight.shape[0]
    delta = np.empty((stop - start, n_out), dtype=x.dtype)
    for n in range(stop - start):
        for k in range(n_out):
            v = dy[start + n, k] * derivative_from_output(y[start + n, k], act)
            delta[n, k] = v
            db_acc[k] += v
    dx_rows = np.dot(delta, weight)
    for n in range(stop - start):
        for f in range(x.shape[1]):
            dx[start + n, f] = dx_rows[n, f]
    add_into(dw_acc, np.dot(delta.T, x[start:stop]))


@njit(cache=True, parallel=True)
def full_forward(x, weight, bias, act, n_chunks):
    """y = g(x @ J^T + b): x (N, F), weight (K, F), bias (K,) -> y (N, K)."""
    n_batch = x.shape[0]
    y = np.empty((n_batch, weight.shape[0]), dtype=x.dtype)
    n_chunks = batch_chunks(n_chunks, n_batch)
    for t in prange(n_chunks):
        _forward_chunk(x, weight, bias, act, t * n_batch // n_chunks, (t + 1) * n_batch // n_chunks, y)
    return y


@njit(cache=True, parallel=True)
def full_backward(x, weight, y, dy, act, n_chunks):
    """Gradients of full_forward from its saved output y: (dx (N, F), dweight (K, F), dbias (K,))."""
    n_batch, n_in = x.shape
    n_out = weight.shape[0]
    dx = np.empty_like(x)
    n_chunks = batch_chunks(n_chunks, n_batch)
    dw_part = np.zeros((n_chunks, n_out, n_in), dtype=x.dtype)
    db_part = np.zeros((n_chunks, n_out))
    for t in prange(n_chunks):
        _backward_chunk(x, weight, y, dy, act, t * n_batch // n_chunks, (t + 1) * n_batch // n_chunks,
                        dx, dw_part[t], db_part[t])
    return (dx,) + sum_parts(dw_part, db_part, x)
