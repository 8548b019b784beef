"""Locally connected (untied) coupling kernels, 2D; 1D runs as H = 1.

h[n, o, I, J] = sum_{c, a, b} J[o, I, J, c, a, b] x[n, c, s1 I + a - p1, s2 J + b - p2] + b[o, I, J]
(eq. (4.1.4): one window J_{IJ,ab} per output site).
"""

import numpy as np
from numba import njit, prange

from .activations import activate


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
