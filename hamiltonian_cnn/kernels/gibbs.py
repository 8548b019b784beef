"""Block Gibbs sampling and exact partition functions of a restricted Boltzmann machine.

    E(x, d) = -sum_IJ d_IJ h_IJ(x) - a.x,   h = J x + b
    Q(d | x) = sigmoid(J x + b),            P(x | d) = sigmoid(J^T d + a)   (binary x)
                                            P(x | d) = N(J^T d + a, 1)      (Gaussian x)

``gibbs_conv`` runs sweeps x -> d -> x of the shared coupling with the convolution kernel
(conv.im2col_forward, sigmoid fused) and the transposed-convolution kernel
(transpose.transpose_forward: J^T d is col2im of J^T d); ``gibbs_dense`` does the same with a
dense J_{IJ,ij} (full, local and sparse couplings written as a matrix). Chains are independent:
they are taken ``block`` at a time, and each block draws from Numba's generator seeded with its
own ``seeds[block]``, so the result does not depend on how a caller cuts the chains into pieces
for its threads (pieces start at multiples of ``block``).

``log_partition_binary`` / ``log_partition_gaussian`` sum exp(-E) over every configuration of one
side in Gray-code order (one site flips per step, the field on the other side moves by one row of
J), the other side summed in closed form; a running log-sum-exp keeps every term <= 1.
"""

import math

import numpy as np
from numba import njit

from .activations import NONE, SIGMOID, sigmoid, softplus
from .conv import im2col_forward
from .transpose import transpose_forward


@njit(cache=True, inline="always")
def _lse_add(m, s, v):
    """Running log-sum-exp: (m, s) stands for m + log s; add exp(v)."""
    if v <= m:
        return m, s + math.exp(v - m)
    return v, s * math.exp(m - v) + 1.0


@njit(cache=True)
def _sample_visible(z, a, gaussian, x, n0, n1):
    """x[n] ~ P(x | d) for n0 <= n < n1, from z = J^T d (no bias); a shaped like one sample."""
    for n in range(n0, n1):
        xf = x[n].reshape(-1)
        zf = z[n - n0].reshape(-1)
        af = a.reshape(-1)
        for i in range(xf.shape[0]):
            mean = zf[i] + af[i]
            if gaussian:
                xf[i] = mean + np.random.standard_normal()  # noqa: NPY002  (Numba's per-thread generator)
            else:
                xf[i] = 1.0 if np.random.random() < sigmoid(mean) else 0.0  # noqa: NPY002


@njit(cache=True)
def _sample_bernoulli(p):
    """p[k] <- 1 with probability p[k], else 0 (in place, a contiguous 1D array)."""
    for k in range(p.shape[0]):
        p[k] = 1.0 if np.random.random() < p[k] else 0.0  # noqa: NPY002


@njit(cache=True, nogil=True)
def gibbs_conv(x, weight, bias, a, sh, sw, ph, pw, dh, dw, groups, oh, ow, gaussian, n_steps, seeds, block):
    """``n_steps`` block Gibbs sweeps of every chain x (N, C, H, W), in place: d ~ sigmoid(conv(x, J) + b),
    then x ~ P(x | conv_transpose(d, J) + a). weight (O, C/groups, KH, KW), bias (O,), a (C, H, W).

    Chains n in [k block, (k + 1) block) use Numba's generator seeded with seeds[k]."""
    n_batch, n_ch, height, width = x.shape
    zero_bias = np.zeros(n_ch, dtype=x.dtype)
    p = np.empty((min(block, n_batch), weight.shape[0], oh, ow), dtype=x.dtype)
    for k in range(len(seeds)):
        n0, n1 = k * block, min((k + 1) * block, n_batch)
        if n0 >= n1:
            break
        np.random.seed(seeds[k])  # noqa: NPY002
        xb = x[n0:n1]
        pb = p[:n1 - n0]
        for _ in range(n_steps):
            im2col_forward(xb, weight, bias, sh, sw, ph, pw, dh, dw, groups, SIGMOID, pb)
            _sample_bernoulli(pb.reshape(-1))
            z = transpose_forward(pb, weight, zero_bias, sh, sw, ph, pw, dh, dw, groups, height, width, NONE, 1)
            _sample_visible(z, a, gaussian, x, n0, n1)


@njit(cache=True, nogil=True)
def gibbs_dense(x, W, bias, a, gaussian, n_steps, seeds, block):
    """``n_steps`` block Gibbs sweeps of every chain x (N, V), in place, for a dense J = W (H, V):
    d ~ sigmoid(x W^T + b), then x ~ P(x | d W + a). Seeds per block of chains as in gibbs_conv."""
    n_batch = x.shape[0]
    for k in range(len(seeds)):
        n0, n1 = k * block, min((k + 1) * block, n_batch)
        if n0 >= n1:
            break
        np.random.seed(seeds[k])  # noqa: NPY002
        xb = x[n0:n1]
        for _ in range(n_steps):
            p = np.dot(xb, W.T)
            for n in range(p.shape[0]):
                for j in range(p.shape[1]):
                    p[n, j] = 1.0 if np.random.random() < sigmoid(p[n, j] + bias[j]) else 0.0  # noqa: NPY002
            _sample_visible(np.dot(p, W), a, gaussian, x, n0, n1)


@njit(cache=True)
def log_partition_binary(M, c, e):
    """log sum_{s in {0,1}^K} exp(c.s + sum_j softplus(e_j + (s M)_j)) for M (K, L), c (K,), e (L,).

    Enumerating x: M = J^T, c = a, e = b. Enumerating d: M = J, c = b, e = a."""
    n_enum, n_other = M.shape
    f = e.copy()
    lin = 0.0
    s = np.zeros(n_enum, dtype=np.int8)
    total = 0.0
    for j in range(n_other):
        total += softplus(f[j])
    m, acc = total, 1.0
    for t in range(1, 1 << n_enum):
        k = 0
        while ((t >> k) & 1) == 0:
            k += 1
        sign = 1.0 - 2.0 * s[k]  # +1 switches site k on, -1 off
        s[k] = 1 - s[k]
        lin += sign * c[k]
        total = lin
        for j in range(n_other):
            f[j] += sign * M[k, j]
            total += softplus(f[j])
        m, acc = _lse_add(m, acc, total)
    return m + math.log(acc)


@njit(cache=True)
def log_partition_gaussian(W, b, a):
    """log sum_{d in {0,1}^H} exp(b.d + a.f + |f|^2 / 2), f = d W (W (H, V)): the Gaussian integral over x
    of exp(-|x - a|^2 / 2 + d.(W x + b)) without its (2 pi)^(V/2)."""
    n_hidden, n_vis = W.shape
    f = np.zeros(n_vis)
    lin = 0.0
    s = np.zeros(n_hidden, dtype=np.int8)
    m, acc = 0.0, 1.0
    for t in range(1, 1 << n_hidden):
        k = 0
        while ((t >> k) & 1) == 0:
            k += 1
        sign = 1.0 - 2.0 * s[k]
        s[k] = 1 - s[k]
        lin += sign * b[k]
        total = lin
        for i in range(n_vis):
            f[i] += sign * W[k, i]
            total += a[i] * f[i] + 0.5 * f[i] * f[i]
        m, acc = _lse_add(m, acc, total)
    return m + math.log(acc)
