"""Locally connected (untied) coupling kernels, 2D; 1D runs as H = 1.

h[n, o, I, J] = sum_{c, a, b} J[o, I, J, c, a, b] x[n, c, s1 I + a - p1, s2 J + b - p2] + b[o, I, J]
(eq. (4.1.4): one window J_{IJ,ab} per output site), y = g(h).

Two implementations of the same thing:

* ``local_forward_sites`` / ``local_backward_sites`` (what the layers run). Nothing is shared
  between sites, so each output site is its own small matrix product over a block of samples:
  h_p (O, m) = J_p (O, T) cols_p (T, m), dJ_p = delta_p cols_p^T, dcols_p = J_p^T delta_p
  (T = C KH KW window taps). The block is laid out with the sample innermost on the zero-padded
  grid (layout.py), where every row of cols_p is a contiguous run of the block, so the products
  are the register-blocked micro-kernels of the direct convolution (tiles.py), reading the
  input and J_p where they lie: no copies of windows or weights. They work on all the samples
  they are given and release the GIL: the layer runs pieces of a batch on threads, each with its
  own dJ and db (summed afterwards in piece order).
* ``local_forward`` / ``local_backward``: the plain loops over (sample, channel, site, window),
  kept as the simple version (the physics couplings use it for their field, and the tests
  check the fast kernels against it and against the reference).
"""

import numpy as np
from numba import njit

from .activations import activate, activate_inplace, activation_backward, delta_from_output
from .layout import samples_innermost, samples_outermost, transpose_rows
from .simd import VECTOR_BYTES
from .tiles import outer_dots, shifted_rows


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


# ---------------------------------------------------------------- per-site tiled kernels


@njit(cache=True)
def _site_offsets(offs, n_in, kh, kw, hp, wp, r0, q0, m):
    """offs[(c KH + a) KW + b] = ((c hp + r0 + a) wp + q0 + b) m: where window offset (a, b) of channel c
    of the site with top-left corner (r0, q0) starts in xt (the entries past the real taps stay 0)."""
    for c in range(n_in):
        for a in range(kh):
            for b in range(kw):
                offs[(c * kh + a) * kw + b] = ((c * hp + r0 + a) * wp + q0 + b) * m


@njit(cache=True)
def _scatter_site(dcols, offs, m, dxt):
    """dxt[offs[t] + s] += dcols[t, s] for the real taps t: the adjoint of reading site p's windows."""
    for t in range(dcols.shape[0]):
        src = dcols[t]
        dst = dxt[offs[t]:offs[t] + m]
        for s in range(m):
            dst[s] += src[s]


@njit(cache=True, nogil=True)
def local_forward_sites(x, w3, bias, sh, sw, ph, pw, kh, kw, block, act, y, work, offs):
    """y = g(local(x, J) + b) into y (N, O, OH, OW) for x (N, C, H, W), eq. (4.1.4) site by site.

    Nothing is tied between sites, so the field of output site p over a block of m samples is its
    own product, h_p (O, m) = J_p (O, T) cols_p (T, m), with J_p = ``w3[:, p]`` (w3 (O, P, T),
    T = C KH KW taps, P = OH OW sites). The block is laid out with the sample innermost on the
    zero-padded grid (layout.samples_innermost, hp = (OH - 1) sh + KH by wp = (OW - 1) sw + KW):
    there row t of cols_p is the contiguous run of m values at offs[t], so the product is a sum of
    shifted rows (tiles.shifted_rows, registers over samples) that reads the input where it lies.
    The fields, kept as (site, channel, sample), reach y in one transpose per channel.
    ``bias`` (O P,); ``work``: scratch of block (C hp wp + C H W + P O) + L entries of x's
    dtype (L = simd.lanes); ``offs``: int64 scratch of at least T entries."""
    n_batch, n_in = x.shape[0], x.shape[1]
    n_nat = n_in * x.shape[2] * x.shape[3]
    n_out, n_sites, n_taps = w3.shape
    oh, ow = y.shape[2], y.shape[3]
    hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    plane = n_in * hp * wp
    lanes = VECTOR_BYTES // x.itemsize
    xt = work[:plane * block + lanes]  # tiles.shifted_rows reads up to a vector past a row
    at = plane * block + lanes
    tmp = work[at:at + n_nat * block]
    at += n_nat * block
    fields = work[at:at + n_sites * n_out * block]
    at += n_sites * n_out * block
    y_flat = y.reshape(-1)
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        samples_innermost(x, n0, m, ph, pw, hp, wp, tmp, xt)
        f3 = fields[:n_sites * n_out * m].reshape(n_sites, n_out, m)
        for i in range(oh):
            for j in range(ow):
                p = i * ow + j
                _site_offsets(offs, n_in, kh, kw, hp, wp, i * sh, j * sw, m)
                shifted_rows(xt, w3[:, p, 0:n_taps], 0, n_out, offs[0:n_taps], m, f3[p][:, 0:m])
                for o in range(n_out):
                    row = f3[p, o]
                    bo = bias[o * n_sites + p]
                    for s in range(m):
                        row[s] += bo
        for o in range(n_out):  # (site, channel, sample) -> y[n0 + s, o, site]
            transpose_rows(fields, o * m, n_out * m, y_flat, (n0 * n_out + o) * n_sites, n_out * n_sites, n_sites, m)
        activate_inplace(y[n0:n0 + m].reshape(-1), act)


@njit(cache=True, nogil=True)
def local_backward_sites(x, w3, y, dy, sh, sw, ph, pw, kh, kw, block, act, dx, dw_part, db_acc, work, offs):
    """Gradients of local_forward_sites from its saved output y and dL/dy, site by site over the
    block: delta = dy g'(y);

    - dJ_p[o, t] = sum_s delta_p[o, s] cols_p[t, s], a sum of outer products over the samples
      (tiles.outer_dots, channels in the vector lanes), written into dw_part[p, t, o] (P, T8, O_v),
      x's dtype, this call's samples only (sum_site_grads adds the pieces up); db added to db_acc
      (O, P) (float64);
    - dcols_p = J_p^T delta_p, a sum of shifted delta rows (tiles.shifted_rows), added onto the
      windows it came from (the adjoint of reading them), then back to NCHW into dx.

    ``work``: scratch of block (2 C hp wp + C H W + 2 P O + P O_v + T) + T8 O_v + 2 L entries of x's dtype
    (O_v = O rounded up to whole vectors of L = simd.lanes, T8 = T rounded up to a multiple of 8);
    ``offs``: int64 scratch of T8 + O entries."""
    n_batch, n_in = x.shape[0], x.shape[1]
    n_nat = n_in * x.shape[2] * x.shape[3]
    n_out, n_sites, n_taps = w3.shape
    oh, ow = y.shape[2], y.shape[3]
    hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    plane = n_in * hp * wp
    lanes = VECTOR_BYTES // x.itemsize
    o_vec = (n_out + lanes - 1) // lanes * lanes
    taps8 = (n_taps + 7) // 8 * 8
    xt = work[:plane * block]
    at = plane * block
    dxt = work[at:at + plane * block]
    at += plane * block
    tmp = work[at:at + n_nat * block]
    at += n_nat * block
    delta = work[at:at + n_sites * n_out * block]  # (sample, channel, site), like y
    at += n_sites * n_out * block
    d_rows = work[at:at + n_sites * n_out * block + lanes]  # (site, channel, sample): rows for shifted_rows
    at += n_sites * n_out * block + lanes
    d_lanes = work[at:at + n_sites * block * o_vec]  # (site, sample, channel padded to o_vec): for outer_dots
    at += n_sites * block * o_vec
    dcols = work[at:at + n_taps * block]
    at += n_taps * block
    part = work[at:at + taps8 * o_vec].reshape(taps8, o_vec)
    offs_x = offs[:taps8]
    offs_d = offs[taps8:taps8 + n_out]
    zero = x.dtype.type(0)
    for t in range(taps8):
        offs_x[t] = 0  # the padding taps read the first samples' entries and are dropped
    last_m = -1
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        if m != last_m:
            for k in range(n_sites * m * o_vec):  # the padding channels stay zero from here on
                d_lanes[k] = zero
            for o in range(n_out):
                offs_d[o] = o * m
            last_m = m
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
        for o in range(n_out):  # (sample, channel, site) -> (site, channel, sample)
            transpose_rows(delta, o * n_sites, n_out * n_sites, d_rows, o * m, n_out * m, m, n_sites)
        for s in range(m):  # (sample, channel, site) -> (site, sample, channel)
            transpose_rows(delta, s * n_out * n_sites, n_sites, d_lanes, s * o_vec, m * o_vec, n_out, n_sites)
        dc2 = dcols[:n_taps * m].reshape(n_taps, m)
        for i in range(oh):
            for j in range(ow):
                p = i * ow + j
                _site_offsets(offs_x, n_in, kh, kw, hp, wp, i * sh, j * sw, m)
                if n0 == 0:
                    outer_dots(xt, 0, 1, m, offs_x, d_lanes[p * m * o_vec:], o_vec, dw_part[p])
                else:
                    outer_dots(xt, 0, 1, m, offs_x, d_lanes[p * m * o_vec:], o_vec, part)
                    dst = dw_part[p]
                    for t in range(n_taps):
                        for o in range(n_out):
                            dst[t, o] += part[t, o]
                shifted_rows(d_rows[p * n_out * m:], w3[:, p, 0:n_taps].T, 0, n_taps, offs_d, m, dc2[:, 0:m])
                _scatter_site(dc2, offs_x, m, dxt)
        samples_outermost(dxt, n0, m, ph, pw, hp, wp, tmp, dx)


@njit(cache=True)
def sum_site_grads(parts, n_parts, dweight):
    """dweight[o, p, t] = sum_k parts[k, p, t, o] over the first ``n_parts`` per-piece dJ (summed in
    float64, in piece order; parts (K, P, T8, O_v) as local_backward_sites writes them, taps and
    channels zero-padded), back in the coupling's layout (O, P, T)."""
    n_out, n_sites, n_taps = dweight.shape
    acc = np.empty((n_taps, n_out))
    for p in range(n_sites):
        first = parts[0, p]
        for t in range(n_taps):
            for o in range(n_out):
                acc[t, o] = first[t, o]
        for k in range(1, n_parts):
            part = parts[k, p]
            for t in range(n_taps):
                for o in range(n_out):
                    acc[t, o] += part[t, o]
        for o in range(n_out):
            dst = dweight[o, p]
            for t in range(n_taps):
                dst[t] = acc[t, o]
