"""Shared coupling (cross-correlation) kernels, 2D; 1D runs as H = 1.

h[n, o, I, J] = sum_{c, a, b} J[o, c, a, b] x[n, g*C_g + c, s1 I + d1 a - p1, s2 J + d2 b - p2] + b[o]
(eq. (4.1.8) with channels, groups, padding and dilation), followed by y = g(h).
"""

import numpy as np
from numba import njit, prange

from .activations import activate


@njit(cache=True, parallel=True)
def shared_forward(x, weight, bias, sh, sw, ph, pw, dh, dw, groups, oh, ow, act):
    """y = g(conv(x, J) + b), x (N, C, H, W), weight (O, C/groups, KH, KW) -> y (N, O, oh, ow)."""
    n_batch, _, height, width = x.shape
    n_out, c_group, kh, kw = weight.shape
    o_group = n_out // groups
    y = np.empty((n_batch, n_out, oh, ow), dtype=x.dtype)
    for n in prange(n_batch):
        for o in range(n_out):
            g = o // o_group
            for i in range(oh):
                for j in range(ow):
                    acc = 0.0
                    for c in range(c_group):
                        ci = g * c_group + c
                        for a in range(kh):
                            r = sh * i + dh * a - ph
                            if r < 0 or r >= height:
                                continue
                            for b in range(kw):
                                q = sw * j + dw * b - pw
                                if q < 0 or q >= width:
                                    continue
                                acc += weight[o, c, a, b] * x[n, ci, r, q]
                    y[n, o, i, j] = activate(acc + bias[o], act)
    return y
