"""Locally connected (untied) coupling kernels, 2D; 1D runs as H = 1.

h[n, o, I, J] = sum_{c, a, b} J[o, I, J, c, a, b] x[n, c, s1 I + a - p1, s2 J + b - p2] + b[o, I, J]
(eq. (4.1.4): one window J_{IJ,ab} per output site), y = g(h).

Direct loops: nothing is shared between sites, so there is no matrix product to hand to BLAS.
The forward pass and dx run in parallel over the batch (each sample owns its rows of y and dx);
dJ and db run in parallel over (output channel, output site) (each owns its window of dJ), so no
two threads ever add into the same entry.
"""

import numpy as np
from numba import njit, prange

from .activations import activate, activation_backward


@njit(cache=True, parallel=True)
def local_forward(x, weight, bias, sh, sw, ph, pw, act):
    """y = g(local(x, J) + b), weight (O, OH, OW, C, KH, KW), bias (O, OH, OW)."""
    n_batch, n_in, height, width = x.shape
    n_out, oh, ow, _, kh, kw = weight.shape
    y = np.empty((n_batch, n_out, oh, ow), dtype=x.dtype)
    for n in prange(n_batch):
        for o in range(n_out):
            for i in range(oh):
                for j in range(ow):
                    acc = 0.0
                    for c in range(n_in):
                        for a in range(kh):
                            r = sh * i + a - ph
                            if r < 0 or r >= height:
                                continue
                            for b in range(kw):
                                q = sw * j + b - pw
                                if q < 0 or q >= width:
                                    continue
                                acc += weight[o, i, j, c, a, b] * x[n, c, r, q]
                    y[n, o, i, j] = activate(acc + bias[o, i, j], act)
    return y


@njit(cache=True, parallel=True)
def local_backward(x, weight, y, dy, sh, sw, ph, pw, act):
    """Gradients of local_forward from its saved output y and dL/dy: (dx, dweight, dbias)."""
    n_batch, n_in, height, width = x.shape
    n_out, oh, ow, _, kh, kw = weight.shape
    delta = activation_backward(y.reshape(-1), dy.reshape(-1), act).reshape(y.shape)
    dx = np.zeros_like(x)
    for n in prange(n_batch):
        for o in range(n_out):
            for i in range(oh):
                for j in range(ow):
                    dv = delta[n, o, i, j]
                    if dv == 0.0:
                        continue
                    for c in range(n_in):
                        for a in range(kh):
                            r = sh * i + a - ph
                            if r < 0 or r >= height:
                                continue
                            for b in range(kw):
                                q = sw * j + b - pw
                                if q < 0 or q >= width:
                                    continue
                                dx[n, c, r, q] += dv * weight[o, i, j, c, a, b]
    dweight = np.zeros_like(weight)
    dbias = np.empty((n_out, oh, ow), dtype=x.dtype)
    n_sites = oh * ow
    for t in prange(n_out * n_sites):
        o = t // n_sites
        i = (t % n_sites) // ow
        j = t % ow
        acc_b = 0.0
        for n in range(n_batch):
            dv = delta[n, o, i, j]
            acc_b += dv
            for c in range(n_in):
                for a in range(kh):
                    r = sh * i + a - ph
                    if r < 0 or r >= height:
                        continue
                    for b in range(kw):
                        q = sw * j + b - pw
                        if q < 0 or q >= width:
                            continue
                        dweight[o, i, j, c, a, b] += dv * x[n, c, r, q]
        dbias[o, i, j] = acc_b
    return dx, dweight, dbias
