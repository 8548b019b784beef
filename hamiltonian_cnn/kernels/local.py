"""Locally connected (untied) coupling kernels, 2D; 1D runs as H = 1.

h[n, o, I, J] = sum_{c, a, b} J[o, I, J, c, a, b] x[n, c, s1 I + a - p1, s2 J + b - p2] + b[o, I, J]
(eq. (4.1.4): one window J_{IJ,ab} per output site), y = g(h).

Two implementations of the same thing:

* ``local_forward_batch`` / ``local_backward_batch`` (what the layers run). Nothing is shared
  between sites, so each output site is a small (samples x window) by (window x channels)
  product. A block of samples is first laid out with the sample innermost on the zero-padded
  grid, xt[c, r, q, s], so that the input under one window offset of one site is a contiguous
  vector over the samples; the field of a site is then that site's window applied to those
  vectors, which is the micro-kernel of the direct convolution (conv.shifted_rows: 2 output
  channels x 8 offsets per pass) with the samples as the vector, and each site's weights are
  read once per block instead of once per sample. dJ of a site is a dot product over the
  samples (conv.shifted_dots_pair) and dx a sum over output channels added back at the window
  offsets. They work on all the samples they are given and release the GIL: the layer runs
  pieces of a batch on threads, each with its own dJ and db (summed afterwards).
* ``local_forward`` / ``local_backward``: the plain loops over (sample, channel, site, window),
  kept as the simple version (the physics couplings use it for their field, and the tests
  check the fast kernels against it and against the reference).
"""

import numpy as np
from numba import njit

from .activations import activate, activate_inplace, activation_backward, delta_from_output
from .conv import pad_planes, shifted_dots_pair, shifted_rows, shifted_rows_pair_add


@njit(cache=True, nogil=True)
def local_forward(x, weight, bias, sh, sw, ph, pw, act):
    """y = g(local(x, J) + b), weight (O, OH, OW, C, KH, KW), bias (O, OH, OW)."""
    n_batch, n_in, height, width = x.shape
    n_out, oh, ow, _, kh, kw = weight.shape
    y = np.empty((n_batch, n_out, oh, ow), dtype=x.dtype)
    for n in range(n_batch):
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


@njit(cache=True, nogil=True)
def local_backward(x, weight, y, dy, sh, sw, ph, pw, act):
    """Gradients of local_forward from its saved output y and dL/dy: (dx, dweight, dbias)."""
    n_batch, n_in, height, width = x.shape
    n_out, oh, ow, _, kh, kw = weight.shape
    delta = activation_backward(y.reshape(-1), dy.reshape(-1), act).reshape(y.shape)
    dx = np.zeros_like(x)
    for n in range(n_batch):
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
    for t in range(n_out * n_sites):
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


# ---------------------------------------------------------------- batch-innermost kernels


@njit(cache=True)
def transpose_into(src, dst):
    """dst[k, r] = src[r, k] for src (R, K), dst (K, R), in 16 x 16 tiles (both sides stay in cache)."""
    n_rows, n_cols = src.shape
    for r0 in range(0, n_rows, 16):
        r1 = min(n_rows, r0 + 16)
        for k0 in range(0, n_cols, 16):
            k1 = min(n_cols, k0 + 16)
            for k in range(k0, k1):
                row = dst[k]
                for r in range(r0, r1):
                    row[r] = src[r, k]


@njit(cache=True)
def _site_offsets(offs, n_in, kh, kw, hp, wp, r0, q0, m):
    """offs[(c KH + a) KW + b] = ((c hp + r0 + a) wp + q0 + b) m: where window offset (a, b) of channel c
    of the site with top-left corner (r0, q0) starts in xt (the padding taps stay at 0)."""
    for c in range(n_in):
        for a in range(kh):
            for b in range(kw):
                offs[(c * kh + a) * kw + b] = ((c * hp + r0 + a) * wp + q0 + b) * m


@njit(cache=True, nogil=True)
def local_forward_batch(x, wt, bias, sh, sw, ph, pw, kh, kw, block, act, y, work, offs):
    """y = g(local(x, J) + b) into y (N, O, OH, OW) for x (N, C, H, W).

    ``wt`` (P, O rounded up to even, C KH KW rounded up to 4): each site's window, tap by tap
    (t = (c KH + a) KW + b), zero-padded (P = OH OW sites); ``bias`` (O, P). ``block`` samples at a
    time are laid out with the sample innermost on the zero-padded grid the windows cover (hp =
    (OH - 1) sh + KH by wp = (OW - 1) sw + KW), so the input under one window offset of one site
    is a contiguous vector over the samples and a site's field is the direct convolution's
    micro-kernel (conv.shifted_rows) over those vectors. ``work``: scratch of at least
    block (2 C hp wp + 2 + O P) entries of x's dtype; ``offs``: int64 scratch, one per (padded) tap."""
    n_batch, n_in = x.shape[0], x.shape[1]
    n_out, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    n_sites = oh * ow
    hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    plane = n_in * hp * wp
    xn = work[:plane * block]
    xt = work[plane * block:2 * plane * block]
    at = 2 * plane * block
    acc = work[at:at + 2 * block].reshape(2, block)
    at += 2 * block
    fields = work[at:at + n_out * n_sites * block]
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        for s in range(m):
            pad_planes(x, n0 + s, 1, 0, n_in, ph, pw, hp, wp, xn[s * plane:(s + 1) * plane])
        transpose_into(xn[:m * plane].reshape(m, plane), xt[:plane * m].reshape(plane, m))
        for i in range(oh):
            for j in range(ow):
                p = i * ow + j
                _site_offsets(offs, n_in, kh, kw, hp, wp, i * sh, j * sw, m)
                for o in range(0, n_out, 2):
                    pair = min(2, n_out - o)
                    shifted_rows(xt, wt[p], o, pair, offs, m, acc)
                    for r in range(pair):
                        bo = bias[o + r, p]
                        src = acc[r]
                        dst = fields[((o + r) * n_sites + p) * m:((o + r) * n_sites + p + 1) * m]
                        for s in range(m):
                            dst[s] = src[s] + bo
        out = y[n0:n0 + m].reshape(m, n_out * n_sites)
        transpose_into(fields[:n_out * n_sites * m].reshape(n_out * n_sites, m), out)
        activate_inplace(out.reshape(-1), act)


@njit(cache=True, nogil=True)
def local_backward_batch(x, wt, wtt, y, dy, sh, sw, ph, pw, kh, kw, block, act, dx, dw_acc, db_acc, work, offs):
    """Gradients of local_forward_batch from its saved output y and dL/dy: dx written into dx; dJ
    added to dw_acc (like wt, x's dtype) and db to db_acc (O, P) (float64).

    ``wtt`` (P, C KH KW rounded up to even, O rounded up to 4): each site's window transposed, for
    dx; ``work``: scratch of at least block (3 C hp wp + 2 O P + 3) entries of x's dtype;
    ``offs``: int64 scratch of (padded taps + O rounded up to 4) entries."""
    n_batch, n_in, height, width = x.shape
    n_out, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    n_sites = oh * ow
    hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    n_taps = n_in * kh * kw
    o4 = wtt.shape[2]
    plane = n_in * hp * wp
    xn = work[:plane * block]  # natural layout (sample, padded grid); reused for dx
    xt = work[plane * block:2 * plane * block]
    dxt = work[2 * plane * block:3 * plane * block]
    at = 3 * plane * block
    delta = work[at:at + n_out * n_sites * block]  # (sample, channel, site)
    at += n_out * n_sites * block
    dsite = work[at:at + (n_out * n_sites + 1) * block]  # (channel, site, sample) + a zero row
    at += (n_out * n_sites + 1) * block
    out = work[at:at + 2 * block].reshape(2, block)
    offs_x = offs[:wt.shape[2]]
    offs_d = offs[wt.shape[2]:wt.shape[2] + o4]
    zero = x.dtype.type(0)
    r_lo, r_hi = max(0, -ph), min(height, hp - ph)
    q_lo, q_hi = max(0, -pw), min(width, wp - pw)
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        for s in range(m):
            pad_planes(x, n0 + s, 1, 0, n_in, ph, pw, hp, wp, xn[s * plane:(s + 1) * plane])
        transpose_into(xn[:m * plane].reshape(m, plane), xt[:plane * m].reshape(plane, m))
        for k in range(plane * m):
            dxt[k] = zero
        d2 = delta[:m * n_out * n_sites].reshape(m, n_out * n_sites)
        delta_from_output(y[n0:n0 + m].reshape(-1), dy[n0:n0 + m].reshape(-1), act, d2.reshape(-1))
        for s in range(m):
            row = d2[s]
            for o in range(n_out):
                for p in range(n_sites):
                    db_acc[o, p] += row[o * n_sites + p]
        transpose_into(d2, dsite[:n_out * n_sites * m].reshape(n_out * n_sites, m))
        for s in range(m):
            dsite[n_out * n_sites * m + s] = zero
        for i in range(oh):
            for j in range(ow):
                p = i * ow + j
                _site_offsets(offs_x, n_in, kh, kw, hp, wp, i * sh, j * sw, m)
                for o in range(o4):
                    offs_d[o] = (o * n_sites + p) * m if o < n_out else n_out * n_sites * m
                for o in range(0, n_out, 2):
                    d0 = dsite[offs_d[o]:offs_d[o] + m]
                    d1 = dsite[offs_d[o + 1]:offs_d[o + 1] + m]
                    shifted_dots_pair(xt, d0, d1, offs_x, m, dw_acc[p, o], dw_acc[p, o + 1])
                site = wtt[p]
                for t in range(0, n_taps - 1, 2):  # taps in pairs: add straight into dx at the two offsets
                    shifted_rows_pair_add(dsite, site[t], site[t + 1], offs_d, m, dxt[offs_x[t]:offs_x[t] + m],
                                          dxt[offs_x[t + 1]:offs_x[t + 1] + m])
                if n_taps % 2:
                    t = n_taps - 1
                    shifted_rows(dsite, site, t, 1, offs_d, m, out)
                    dst = dxt[offs_x[t]:offs_x[t] + m]
                    for s in range(m):
                        dst[s] += out[0, s]
        transpose_into(dxt[:plane * m].reshape(plane, m), xn[:m * plane].reshape(m, plane))
        for s in range(m):  # crop the padded grid back to the input sites
            grid = xn[s * plane:(s + 1) * plane]
            for c in range(n_in):
                for r in range(height):
                    dst = dx[n0 + s, c, r]
                    if r < r_lo or r >= r_hi:
                        for q in range(width):
                            dst[q] = zero
                        continue
                    for q in range(width):
                        dst[q] = grid[(c * hp + r + ph) * wp + q + pw] if q_lo <= q < q_hi else zero
