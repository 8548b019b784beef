"""Locally connected (untied) coupling kernels, 2D; 1D runs as H = 1.

h[n, o, I, J] = sum_{c, a, b} J[o, I, J, c, a, b] x[n, c, s1 I + a - p1, s2 J + b - p2] + b[o, I, J]
(eq. (4.1.4): one window J_{IJ,ab} per output site), y = g(h).

Two implementations:

* ``local_forward_sites`` / ``local_backward_sites`` (what the layers run). Nothing is shared
  between sites, so each output site is its own small matrix product over a block of samples:
  h_p (O, m) = J_p (O, T) cols_p (T, m), dJ_p = delta_p cols_p^T, dcols_p = J_p^T delta_p
  (T = C KH KW window taps). The block is laid out with the sample innermost on the zero-padded
  grid (layout.py), where every row of cols_p is a contiguous run of the block, so the products
  are the register-blocked micro-kernels of the direct convolution (tiles.py), reading the
  input and J_p where they lie: no copies of windows. With many input channels dx is summed one
  grid site at a time instead (``_grid_dx``, the covering windows' weights gathered). The
  kernels release the GIL and work on a range of output site rows (all samples): the layer runs
  the ranges on threads, each writing its own entries of y, dJ, db and dx.
* ``local_forward``: the plain loops over (sample, channel, site, window), forward only, kept
  as the simple version (the physics couplings compute their field with it).
"""

import numpy as np
from numba import njit

from .activations import activate, activate_inplace, delta_from_output
from .layout import samples_innermost, samples_outermost, transpose_squares
from .simd import VECTOR_BYTES
from .tiles import TILE_ROWS, outer_dots, shifted_rows


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


# ---------------------------------------------------------------- per-site tiled kernels


@njit(cache=True)
def _site_offsets(offs, n_in, kh, kw, hp, wp, r0, q0, m):
    """offs[(c KH + a) KW + b] = ((c hp + r0 + a) wp + q0 + b) m: where window offset (a, b) of channel c
    of the site with top-left corner (r0, q0) starts in xt (the entries past the real taps stay 0)."""
    for c in range(n_in):
        for a in range(kh):
            for b in range(kw):
                offs[(c * kh + a) * kw + b] = ((c * hp + r0 + a) * wp + q0 + b) * m


#: rows of dcols_p computed at a time (a multiple of tiles.TILE_ROWS)
DCOLS_ROWS = 16


def local_workspace(n_out, oh, ow, c_in, kh, kw, plane, n_box, n_own, block, dtype):
    """(work, offs) entries that local_forward_sites and local_backward_sites need for a range of
    site rows (plain Python: the nn driver sizes the scratch with it). ``plane`` = C hb wp, the
    range's box of the input grid per sample; ``n_box`` = OW x the box's site rows (B), ``n_own``
    = OW x the range's own site rows (A). work, in the order the backward cuts it: per sample of a
    block the laid-out input and its dx (2 C hb wp), the fields/delta of every site and of the box
    ((P + B) O), the delta with channels innermost (A O_v, O_v = O in whole vectors) and DCOLS_ROWS
    rows of dcols; then the gathered weights (KH KW O C), the dJ partial (T8 O_v, T8 = C KH KW
    rounded up to 8) and two vectors of slack. offs: T8 + KH KW O. The forward uses the start."""
    lane = VECTOR_BYTES // np.dtype(dtype).itemsize
    o_vec, taps8 = -(-n_out // lane) * lane, -(-(c_in * kh * kw) // 8) * 8
    n_cover = kh * kw * n_out  # (window, output channel) pairs over one grid site, at most
    work = (block * (2 * plane + (oh * ow + n_box) * n_out + n_own * o_vec + DCOLS_ROWS) + n_cover * c_in
            + taps8 * o_vec + 2 * lane)
    return work, taps8 + n_cover


@njit(cache=True)
def _scatter_site(dcols, offs, n_rows, m, dxt):
    """dxt[offs[t] + s] += dcols[t, s] for t < n_rows: the adjoint of reading those taps of a site's windows."""
    for t in range(n_rows):
        src = dcols[t]
        dst = dxt[offs[t]:offs[t] + m]
        for s in range(m):
            dst[s] += src[s]


@njit(cache=True)
def _grid_dx(w3, d_rows, sh, sw, kh, kw, oh, ow, b_lo, hb, wp, r_lo, r_hi, q_lo, q_hi, m, gathered, offs_g, dxt):
    """dx on the grid one grid site at a time, for the grid rows R in [r_lo, r_hi) and columns q in
    [q_lo, q_hi): dxt[c, R - r0, q, s] = sum over the sites (i, j) whose window covers (R, q), and
    over o, of J[o, i, j, c, R - i sh, q - j sw] delta[(i, j), o, s] (the adjoint of reading the
    windows, eq. (4.1.4); r0 = b_lo sh, the first grid row of the box in ``dxt``). That is a sum of
    shifted rows of ``d_rows`` (box site, channel, sample) with the input channels as output rows
    (tiles.shifted_rows), once the weights of the covering windows are gathered into ``gathered``
    (one row per (window, output channel) pair, one column per input channel). A grid site under no
    window gets 0."""
    n_out = w3.shape[0]
    n_in = gathered.shape[1]
    r0 = b_lo * sh
    dxt3 = dxt[:n_in * hb * wp * m].reshape(n_in, hb * wp, m)
    for big_r in range(r_lo, r_hi):
        for q in range(q_lo, q_hi):
            k = 0
            for a in range(kh):
                i_sh = big_r - a
                if i_sh < 0 or i_sh % sh != 0 or i_sh // sh >= oh:
                    continue
                for b in range(kw):
                    j_sw = q - b
                    if j_sw < 0 or j_sw % sw != 0 or j_sw // sw >= ow:
                        continue
                    p = (i_sh // sh) * ow + j_sw // sw
                    row = (p - b_lo * ow) * n_out * m
                    for o in range(n_out):
                        offs_g[k] = row + o * m
                        src = w3[o, p]
                        dst = gathered[k]
                        for c in range(n_in):
                            dst[c] = src[(c * kh + a) * kw + b]
                        k += 1
            # (gathered[0:k, 0:n_in] types as the other callers' weights do: no second compiled shifted_rows)
            shifted_rows(d_rows, gathered[0:k, 0:n_in].T, 0, n_in, offs_g[0:k], m, dxt3[:, (big_r - r0) * wp + q, :])


@njit(cache=True)
def reach(g_lo, g_hi, sh, kh, oh):
    """The output site rows [e_lo, e_hi) whose windows (rows i sh .. i sh + KH - 1 of the grid)
    reach a grid row in [g_lo, g_hi): those that dx of these grid rows is summed from."""
    return max(0, (g_lo - kh) // sh + 1), min(oh, (g_hi + sh - 1) // sh)


@njit(cache=True, nogil=True)
def local_forward_sites(x, w3, bias, sh, sw, ph, pw, kh, kw, i_lo, i_hi, b_lo, b_hi, block, act, y, work, offs):
    """y = g(local(x, J) + b) for the output site rows [i_lo, i_hi) of y (N, O, OH, OW), x (N, C, H, W):
    eq. (4.1.4) site by site.

    Nothing is tied between sites, so the field of output site p over a block of m samples is its
    own product, h_p (O, m) = J_p (O, T) cols_p (T, m), with J_p = ``w3[:, p]`` (w3 (O, P, T),
    T = C KH KW taps, P = OH OW sites), and any range of site rows can be computed apart (the
    layer gives each thread its own rows, all samples). The block's grid rows under the site rows
    [b_lo, b_hi) (which hold [i_lo, i_hi): the box that local_backward_sites reads) are laid out
    with the sample innermost at the start of ``work`` (layout.samples_innermost: hb = (b_hi - b_lo
    - 1) sh + KH by wp = (OW - 1) sw + KW), where the backward finds them when the batch is one
    block: there row t of cols_p is the contiguous run of m values at offs[t], so
    the product is a sum of shifted rows (tiles.shifted_rows, registers over samples) that reads
    the input and J_p where they lie. The fields, kept as (site, channel, sample), get b and g
    and reach y in one transpose per channel. ``bias`` (O P,); ``work`` and ``offs``: scratch
    sized by local_workspace."""
    n_batch, n_in = x.shape[0], x.shape[1]
    n_out, n_sites, n_taps = w3.shape
    ow = y.shape[3]
    hb, wp = (b_hi - b_lo - 1) * sh + kh, (ow - 1) * sw + kw
    plane = n_in * hb * wp
    n_box = (i_hi - i_lo) * ow  # the sites computed here: p = i_lo OW + pb
    lanes = VECTOR_BYTES // x.itemsize
    xt = work[:plane * block + lanes]  # tiles.shifted_rows reads up to a vector past a row
    at = plane * block + lanes
    fields = work[at:at + n_box * n_out * block]
    y_flat = y.reshape(-1)
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        samples_innermost(x, n0, m, ph - b_lo * sh, pw, hb, wp, xt)
        f3 = fields[:n_box * n_out * m].reshape(n_box, n_out, m)
        for pb in range(n_box):
            p = i_lo * ow + pb
            _site_offsets(offs, n_in, kh, kw, hb, wp, (p // ow - b_lo) * sh, (pb % ow) * sw, m)
            shifted_rows(xt, w3[:, p, 0:n_taps], 0, n_out, offs[0:n_taps], m, f3[pb][:, 0:m])
            for o in range(n_out):
                row = f3[pb, o]
                bo = bias[o * n_sites + p]
                for s in range(m):
                    row[s] += bo
        activate_inplace(fields[:n_box * n_out * m], act)
        for o in range(n_out):  # (site, channel, sample) -> y[n0 + s, o, site]
            transpose_squares(fields, o * m, n_out * m, y_flat, (n0 * n_out + o) * n_sites + i_lo * ow,
                              n_out * n_sites, n_box, m)


@njit(cache=True, nogil=True)
def local_backward_sites(x, w3, y, dy, sh, sw, ph, pw, kh, kw, i_lo, i_hi, g_lo, g_hi, block, act, laid_out, dx,
                         dweight, db, work, offs):
    """Gradients of local_forward_sites from its saved output y and dL/dy, for the output site rows
    [i_lo, i_hi) (dJ, db) and the grid rows [g_lo, g_hi) (dx), over every sample in blocks;
    delta = dy g'(y):

    - dJ_p[o, t] = sum_s delta_p[o, s] cols_p[t, s], a sum of outer products over the samples
      (tiles.outer_dots, channels in the vector lanes), written into dweight (O, P, T) (x's dtype);
      db added into db (O, P) (float64): these sites' entries only;
    - dx of the grid rows from the delta of every site row that reaches them (``reach``), then
      back to NCHW (input sites off the grid are not written: the caller zeroes them). With at
      least tiles.TILE_ROWS input channels, one grid site at a time (``_grid_dx``: the channels fill
      the register tiles, the sum runs over KH KW O window taps). With fewer, one output site at a
      time: dcols_p = J_p^T delta_p, a sum of shifted delta rows (T rows, a sum over O), added onto
      the windows it came from. Neighbouring ranges recompute what they share of the KH - 1 site
      rows between them, so that each range writes only its own entries.

    ``laid_out``: the batch is one block and local_forward_sites has laid out this box of the same
    x at the start of ``work`` (else it is laid out here).
    ``work`` and ``offs``: scratch sized by local_workspace (its box: the site rows from
    min(i_lo, e_lo) to max(i_hi, e_hi), e = reach(g_lo, g_hi, ...), and the grid rows hb under them)."""
    n_batch, n_in = x.shape[0], x.shape[1]
    n_out, n_sites, n_taps = w3.shape
    oh, ow = y.shape[2], y.shape[3]
    e_lo, e_hi = reach(g_lo, g_hi, sh, kh, oh)
    b_lo, b_hi = min(i_lo, e_lo), max(i_hi, e_hi)  # the site rows whose inputs are laid out
    r0 = b_lo * sh  # the first grid row laid out
    hb, wp = (b_hi - b_lo - 1) * sh + kh, (ow - 1) * sw + kw
    plane = n_in * hb * wp
    n_box = (b_hi - b_lo) * ow
    n_own = (i_hi - i_lo) * ow
    lanes = VECTOR_BYTES // x.itemsize
    o_vec = (n_out + lanes - 1) // lanes * lanes
    taps8 = (n_taps + 7) // 8 * 8
    xt = work[:plane * block]
    at = plane * block
    dxt = work[at:at + plane * block]
    at += plane * block
    delta = work[at:at + n_sites * n_out * block]  # (sample, channel, site), like y
    at += n_sites * n_out * block
    d_rows = work[at:at + n_box * n_out * block + lanes]  # (box site, channel, sample): rows for shifted_rows
    at += n_box * n_out * block + lanes
    d_lanes = work[at:at + n_own * block * o_vec]  # (own site, sample, channel padded to o_vec): for outer_dots
    at += n_own * block * o_vec
    dcols = work[at:at + DCOLS_ROWS * block]
    at += DCOLS_ROWS * block
    n_cover = kh * kw * n_out  # at most this many (window, output channel) pairs reach a grid site
    gathered = work[at:at + n_cover * n_in].reshape(n_cover, n_in)
    at += n_cover * n_in
    part = work[at:at + taps8 * o_vec].reshape(taps8, o_vec)
    offs_x = offs[:taps8]
    offs_d = offs[taps8:taps8 + n_out]
    offs_g = offs[taps8:taps8 + n_cover]
    by_grid = n_in >= TILE_ROWS  # dx one grid site at a time (else one output site at a time)
    # the input sites among the grid rows [g_lo, g_hi) (grid coordinates): where dx is written
    height, width = x.shape[2], x.shape[3]
    r_lo, r_hi = max(g_lo, ph), min(g_hi, ph + height, r0 + hb)  # (rows past the box: under no window)
    q_lo, q_hi = max(0, pw), min(wp, pw + width)
    zero = x.dtype.type(0)
    for t in range(taps8):
        offs_x[t] = 0  # the padding taps read the first samples' entries and are dropped
    y_flat, dy_flat = y.reshape(-1), dy.reshape(-1)
    # db of these sites summed apart (the rows of db are shared with the neighbouring ranges: adding
    # into them sample by sample would bounce their cache lines between the cores), added at the end
    db_own = np.zeros((n_out, n_own))
    last_m = -1
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        if m != last_m:
            for k in range(n_own * m * o_vec):  # the padding channels stay zero from here on
                d_lanes[k] = zero
            if not by_grid:
                for o in range(n_out):
                    offs_d[o] = o * m
            last_m = m
        if not laid_out:
            samples_innermost(x, n0, m, ph - r0, pw, hb, wp, xt)
        if not by_grid:
            for k in range(plane * m):
                dxt[k] = zero
        # delta of every site (one pass over the block: cheaper than the box's pieces of rows)
        begin, n_block = n0 * n_out * n_sites, m * n_out * n_sites
        delta_from_output(y_flat[begin:begin + n_block], dy_flat[begin:begin + n_block], act, delta[:n_block])
        for s in range(m):
            for o in range(n_out):
                seg = delta[(s * n_out + o) * n_sites + i_lo * ow:]
                acc = db_own[o]
                for k in range(n_own):
                    acc[k] += seg[k]
        for o in range(n_out):  # (sample, channel, box site) -> (box site, channel, sample)
            transpose_squares(delta, o * n_sites + b_lo * ow, n_out * n_sites, d_rows, o * m, n_out * m, m, n_box)
        for s in range(m):  # (sample, channel, own site) -> (own site, sample, channel)
            transpose_squares(delta, s * n_out * n_sites + i_lo * ow, n_sites, d_lanes, s * o_vec, m * o_vec,
                              n_out, n_own)
        dc2 = dcols[:DCOLS_ROWS * m].reshape(DCOLS_ROWS, m)
        for pb in range(n_box):
            p = b_lo * ow + pb
            i = p // ow
            _site_offsets(offs_x, n_in, kh, kw, hb, wp, (i - b_lo) * sh, (p % ow) * sw, m)
            if i_lo <= i < i_hi:
                ob = pb - (i_lo - b_lo) * ow
                outer_dots(xt, 0, 1, m, offs_x, d_lanes[ob * m * o_vec:], o_vec, part)
                for o in range(n_out):
                    dst = dweight[o, p]
                    if n0 == 0:
                        for t in range(n_taps):
                            dst[t] = part[t, o]
                    else:
                        for t in range(n_taps):
                            dst[t] += part[t, o]
            if not by_grid and e_lo <= i < e_hi:
                for t0 in range(0, n_taps, DCOLS_ROWS):  # a few rows at a time, added on while in L1
                    count = min(DCOLS_ROWS, n_taps - t0)
                    shifted_rows(d_rows[pb * n_out * m:], w3[:, p, 0:n_taps].T, t0, count, offs_d, m, dc2[:, 0:m])
                    _scatter_site(dc2, offs_x[t0:], count, m, dxt)
        if by_grid:
            _grid_dx(w3, d_rows, sh, sw, kh, kw, oh, ow, b_lo, hb, wp, r_lo, r_hi, q_lo, q_hi, m, gathered, offs_g, dxt)
        samples_outermost(dxt, n0, m, ph - r0, pw, hb, wp, g_lo - r0, g_hi - r0, dx)
    for o in range(n_out):
        for k in range(n_own):
            db[o, i_lo * ow + k] += db_own[o, k]
