"""Locally connected (untied) coupling kernels, 2D; 1D runs as H = 1.

h[n, o, I, J] = sum_{c, a, b} J[o, I, J, c, a, b] x[n, c, s1 I + a - p1, s2 J + b - p2] + b[o, I, J]
(eq. (4.1.4): one window J_{IJ,ab} per output site), y = g(h).

Two implementations of the same thing:

* ``local_forward_blas`` / ``local_backward_blas`` (what the layers run). Nothing is shared
  between sites, so each output site is its own small matrix product over a block of samples:
  h_p (O, m) = J_p (O, T) cols_p (T, m), dJ_p = delta_p cols_p^T, dcols_p = J_p^T delta_p
  (T = C KH KW window taps). The block is laid out with the sample innermost on the zero-padded
  grid, so the rows of cols_p are contiguous copies, and the products go to BLAS (np.dot), which
  runs these small shapes near the core's peak. They work on all the samples they are given and
  release the GIL: the layer runs pieces of a batch on threads, each with its own dJ and db
  (summed afterwards in piece order) and with BLAS on one thread.
* ``local_forward`` / ``local_backward``: the plain loops over (sample, channel, site, window),
  kept as the simple version (the physics couplings use it for their field, and the tests
  check the fast kernels against it and against the reference).
"""

import numpy as np
from numba import njit

from .activations import activate, activate_inplace, activation_backward, delta_from_output
from .layout import samples_innermost, samples_outermost, transpose2d


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


# ---------------------------------------------------------------- per-site BLAS kernels


@njit(cache=True)
def _site_offsets(offs, n_in, kh, kw, hp, wp, r0, q0, m):
    """offs[(c KH + a) KW + b] = ((c hp + r0 + a) wp + q0 + b) m: where window offset (a, b) of channel c
    of the site with top-left corner (r0, q0) starts in xt."""
    for c in range(n_in):
        for a in range(kh):
            for b in range(kw):
                offs[(c * kh + a) * kw + b] = ((c * hp + r0 + a) * wp + q0 + b) * m


@njit(cache=True)
def _site_window(w3, p, w_site):
    """w_site[o, t] = w3[o, p, t]: the window J_p of site p as a contiguous (O, T) matrix."""
    for o in range(w3.shape[0]):
        src = w3[o, p]
        dst = w_site[o]
        for t in range(w3.shape[2]):
            dst[t] = src[t]


@njit(cache=True)
def _gather_site(xt, offs, m, cols):
    """cols[t, s] = xt[offs[t] + s]: one site's windows over the block's samples, as a (T, m) matrix."""
    for t in range(offs.shape[0]):
        src = xt[offs[t]:offs[t] + m]
        dst = cols[t]
        for s in range(m):
            dst[s] = src[s]


@njit(cache=True)
def _scatter_site(dcols, offs, m, dxt):
    """dxt[offs[t] + s] += dcols[t, s]: the adjoint of _gather_site."""
    for t in range(offs.shape[0]):
        src = dcols[t]
        dst = dxt[offs[t]:offs[t] + m]
        for s in range(m):
            dst[s] += src[s]


@njit(cache=True, nogil=True)
def local_forward_blas(x, w3, bias, sh, sw, ph, pw, kh, kw, block, act, y, work, offs, w_site):
    """y = g(local(x, J) + b) into y (N, O, OH, OW) for x (N, C, H, W), eq. (4.1.4) site by site.

    Nothing is tied between sites, so the field of output site p over a block of m samples is one
    matrix product, h_p^T (m, O) = cols_p^T (m, T) J_p^T (T, O), with J_p = ``w3[:, p]`` (w3 (O, P, T),
    T = C KH KW taps, P = OH OW sites) and cols_p the input under each window offset of that site:
    a BLAS call (these small products run near the core's peak, where a hand loop did not).
    The block is first laid out with the sample innermost on the zero-padded grid (hp = (OH - 1) sh
    + KH by wp = (OW - 1) sw + KW), so every row of cols_p is one contiguous copy, and the fields,
    kept as (site, sample, channel), reach y in one transpose. ``bias`` (O P,); ``work``: scratch
    of block (C hp wp + C H W + T + P O) entries of x's dtype; ``offs``: int64, one per tap; ``w_site``:
    (O, T) scratch for one site's window (copied there, contiguous, for BLAS)."""
    n_batch, n_in = x.shape[0], x.shape[1]
    n_nat = n_in * x.shape[2] * x.shape[3]
    n_out, n_sites, n_taps = w3.shape
    oh, ow = y.shape[2], y.shape[3]
    hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    plane = n_in * hp * wp
    xt = work[:plane * block]
    at = plane * block
    tmp = work[at:at + n_nat * block]
    at += n_nat * block
    cols = work[at:at + n_taps * block]
    at += n_taps * block
    fields = work[at:at + n_sites * n_out * block]
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        samples_innermost(x, n0, m, ph, pw, hp, wp, tmp, xt)
        c2 = cols[:n_taps * m].reshape(n_taps, m)
        f3 = fields[:n_sites * m * n_out].reshape(n_sites, m, n_out)
        for i in range(oh):
            for j in range(ow):
                p = i * ow + j
                _site_offsets(offs, n_in, kh, kw, hp, wp, i * sh, j * sw, m)
                _gather_site(xt, offs, m, c2)
                _site_window(w3, p, w_site)
                np.dot(c2.T, w_site.T, f3[p])
        out = y[n0:n0 + m].reshape(m, n_out * n_sites)
        transpose2d(f3.reshape(n_sites, m * n_out), out.reshape(m * n_out, n_sites))  # -> (sample, channel, site)
        for s in range(m):
            row = out[s]
            for k in range(n_out * n_sites):
                row[k] += bias[k]
        activate_inplace(out.reshape(-1), act)


@njit(cache=True, nogil=True)
def local_backward_blas(x, w3, y, dy, sh, sw, ph, pw, kh, kw, block, act, dx, dw_part, db_acc, work, offs, w_site):
    """Gradients of local_forward_blas from its saved output y and dL/dy, site by site:
    delta = dy g'(y); dJ_p = delta_p cols_p^T, written into dw_part (P, O, T) (x's dtype: this
    call's samples only); db added to db_acc (O, P) (float64); dx = col2im(J_p^T delta_p), written
    into dx. ``work``: scratch of block (2 C hp wp + C H W + 2 T + 2 P O) + O T entries of x's dtype;
    ``offs``: int64, one per tap; ``w_site``: (O, T) scratch for one site's window."""
    n_batch, n_in = x.shape[0], x.shape[1]
    n_nat = n_in * x.shape[2] * x.shape[3]
    n_out, n_sites, n_taps = w3.shape
    oh, ow = y.shape[2], y.shape[3]
    hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    plane = n_in * hp * wp
    xt = work[:plane * block]
    dxt = work[plane * block:2 * plane * block]
    at = 2 * plane * block
    tmp = work[at:at + n_nat * block]
    at += n_nat * block
    cols = work[at:at + n_taps * block]
    at += n_taps * block
    dcols = work[at:at + n_taps * block]
    at += n_taps * block
    delta = work[at:at + n_sites * n_out * block]  # (sample, channel, site)
    at += n_sites * n_out * block
    dsite = work[at:at + n_sites * n_out * block]  # (site, sample, channel)
    at += n_sites * n_out * block
    dw_block = work[at:at + n_out * n_taps].reshape(n_out, n_taps)
    zero = x.dtype.type(0)
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        samples_innermost(x, n0, m, ph, pw, hp, wp, tmp, xt)
        for k in range(plane * m):
            dxt[k] = zero
        d2 = delta[:m * n_out * n_sites].reshape(m, n_out * n_sites)
        delta_from_output(y[n0:n0 + m].reshape(-1), dy[n0:n0 + m].reshape(-1), act, d2.reshape(-1))
        for s in range(m):
            row = d2[s]
            for o in range(n_out):
                acc = db_acc[o]
                seg = row[o * n_sites:(o + 1) * n_sites]
                for p in range(n_sites):
                    acc[p] += seg[p]
        ds3 = dsite[:n_sites * m * n_out].reshape(n_sites, m, n_out)
        transpose2d(d2.reshape(m * n_out, n_sites), ds3.reshape(n_sites, m * n_out))
        c2 = cols[:n_taps * m].reshape(n_taps, m)
        dc2 = dcols[:n_taps * m].reshape(n_taps, m)
        for i in range(oh):
            for j in range(ow):
                p = i * ow + j
                _site_offsets(offs, n_in, kh, kw, hp, wp, i * sh, j * sw, m)
                _gather_site(xt, offs, m, c2)
                dp = ds3[p].T  # (O, m)
                if n0 == 0:
                    np.dot(dp, c2.T, dw_part[p])
                else:
                    np.dot(dp, c2.T, dw_block)
                    acc = dw_part[p]
                    for o in range(n_out):
                        for t in range(n_taps):
                            acc[o, t] += dw_block[o, t]
                _site_window(w3, p, w_site)
                np.dot(w_site.T, dp, dc2)
                _scatter_site(dc2, offs, m, dxt)
        samples_outermost(dxt, n0, m, ph, pw, hp, wp, tmp, dx)


@njit(cache=True)
def sum_site_grads(parts, n_parts, dweight):
    """dweight[o, p, t] = sum_k parts[k, p, o, t] over the first ``n_parts`` per-piece dJ (summed in
    float64, in piece order), back in the coupling's layout (O, P, T)."""
    n_sites, n_out, n_taps = parts.shape[1], parts.shape[2], parts.shape[3]
    acc = np.empty(n_taps)
    for o in range(n_out):
        for p in range(n_sites):
            first = parts[0, p, o]
            for t in range(n_taps):
                acc[t] = first[t]
            for k in range(1, n_parts):
                part = parts[k, p, o]
                for t in range(n_taps):
                    acc[t] += part[t]
            dst = dweight[o, p]
            for t in range(n_taps):
                dst[t] = acc[t]
