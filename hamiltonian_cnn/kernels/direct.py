"""Direct shared coupling kernels for stride 1 (eq. (4.1.8), as in conv.py): no BLAS, no columns.

The field at stride 1 is a sum of shifted copies of the input, one per tap t = (c, a, b) of the
window. A block of m samples is laid out with the sample innermost (kernels/layout.py):

    xt[((c hp + r) wp + q) m + s] = x[n0 + s, c, r - ph, q - pw]

so one row I of output sites of all m samples, (J, s) for J < OW, is a contiguous run of OW m
entries, and the input under window offset (a, b) of that whole run is the contiguous run that
starts d1 a wp m + d2 b m further on. The field of row I is then a sum of shifted rows
(tiles.shifted_rows, a register-blocked micro-kernel), and every entry computed is an output
site: laying the samples side by side instead would make each row as wide as the padded input
(OW + d2 (KW - 1): 1.5x the work for LeNet's second layer). Backward runs the same shifts the
other way:

- dJ: a sum of outer products of the shifted input rows with the delta, channel innermost
  (tiles.outer_dots);
- dx: for each input row, a sum of shifted delta rows over the window offsets (a, b) whose
  output row exists: the taps are ordered (a, o, b), so those are one contiguous range, and no
  time goes into the zero rows of the frame.

Results are moved back to NCHW by transposes of the block (layout.transpose_rows).
"""

import numpy as np
from numba import njit

from .activations import REASSOC, activate_inplace, delta_from_output
from .conv import even_block
from .layout import samples_innermost, transpose_rows
from .simd import VECTOR_BYTES
from .tiles import TILE_ROWS, outer_dots, shifted_rows

# ---------------------------------------------------------------- the layouts the kernels expect
# Plain Python: the nn driver calls these to build the kernels' inputs and size their scratch, so
# each layout is written once, here, beside the kernel that reads it.


def _round8(n: int) -> int:
    return (n + 7) // 8 * 8


def direct_taps(w4, groups, dx: bool = True):
    """The kernels' tap tables: forward (groups, O_g, C_g KH KW rounded up to 8: the weight
    gradient takes taps 8 at a time), tap (c KH + a) KW + b holding J[g O_g + o, c, a, b],
    zero-padded; with ``dx``, the one for dx (groups, C_g, KH T), tap a T + o KW + b holding
    J[g O_g + o, c, a, b], T = O_g KW (else None)."""
    n_out, c_group, kh, kw = w4.shape
    o_group = n_out // groups
    n_taps = c_group * kh * kw
    wt = np.zeros((groups, o_group, _round8(n_taps)), dtype=w4.dtype)
    wt[:, :, :n_taps] = w4.reshape(groups, o_group, n_taps)
    if not dx:
        return wt, None
    wtr = w4.reshape(groups, o_group, c_group, kh, kw).transpose(0, 2, 3, 1, 4)
    return wt, np.ascontiguousarray(wtr).reshape(groups, c_group, kh * o_group * kw)


def direct_grids(kh, kw, dh, dw, oh, ow):
    """(hp, wp, hd, wd): the padded input grid and the delta grid framed by d (K - 1) zeros."""
    return oh + dh * (kh - 1), ow + dw * (kw - 1), oh + 2 * dh * (kh - 1), ow + 2 * dw * (kw - 1)


def direct_block(count, n_in, n_out, kh, kw, dh, dw, oh, ow) -> int:
    """Samples per block: up to 32 (rows of 32 OW entries), while the block's padded input and
    framed delta stay within 256 Ki entries each; blocks of even sizes."""
    hp, wp, hd, wd = direct_grids(kh, kw, dh, dw, oh, ow)
    largest = max(n_in * hp * wp, n_out * hd * wd, 1)
    return even_block(count, max(1, min(count, 32, (1 << 18) // largest)))


def direct_forward_workspace(n_in, kh, kw, dh, dw, oh, ow, n_taps8, block, dtype):
    """(work, offs) entries direct_forward needs: work of x's dtype holds the block's padded input
    (C hp wp block) and R rows of fields (R = TILE_ROWS, oh ow block), plus a vector of slack
    (shifted_rows reads up to a vector past a row); offs (int64) one entry per tap (``n_taps8``
    = wt.shape[2])."""
    hp, wp, _, _ = direct_grids(kh, kw, dh, dw, oh, ow)
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    return (n_in * hp * wp + TILE_ROWS * oh * ow) * block + lanes, n_taps8


def direct_backward_workspace(x_shape, n_out, groups, kh, kw, dh, dw, oh, ow, n_taps8, n_taps_dx, block, dtype):
    """(work, offs) entries direct_backward needs, in the order it cuts work: the padded input
    (C hp wp), the framed delta (O hd wd), the delta planes (O oh ow), the dx rows (R H W), the
    delta with channels innermost (oh ow O_v, O_v = O_g in whole vectors), all per sample of a
    block, then the dJ partial (n_taps8 O_v) and a vector of slack; offs: n_taps8 + n_taps_dx."""
    n_in, height, width = x_shape[1:]
    hp, wp, hd, wd = direct_grids(kh, kw, dh, dw, oh, ow)
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    o_vec = -(-(n_out // groups) // lanes) * lanes
    per_sample = n_in * hp * wp + n_out * hd * wd + oh * ow * (n_out + o_vec) + TILE_ROWS * height * width
    return per_sample * block + n_taps8 * o_vec + lanes, n_taps8 + n_taps_dx


@njit(cache=True)
def _fill_offsets(offs, n_ch, kh, kw, ch_stride, base, sign, row, dh, dw):
    """offs[(c KH + a) KW + b] = c ch_stride + base + sign (dh a row + dw b); the padding taps stay at 0."""
    for c in range(n_ch):
        for a in range(kh):
            for b in range(kw):
                offs[(c * kh + a) * kw + b] = c * ch_stride + base + sign * (dh * a * row + dw * b)


@njit(cache=True, nogil=True)
def direct_forward(x, wt, bias, ph, pw, dh, dw, kh, kw, block, act, y, work, offs):
    """y = g(conv(x, J) + b), stride 1, into y (N, O, oh, ow), for x (N, C, H, W).

    ``wt`` (groups, O_g, C_g KH KW rounded up to 8) holds the weights tap by tap (t = (c KH + a) KW + b),
    zero-padded;
    ``block`` samples per block; ``work`` and ``offs`` scratch sized by direct_forward_workspace;
    releases the GIL."""
    n_batch, n_in = x.shape[0], x.shape[1]
    groups = wt.shape[0]
    n_out = y.shape[1]
    o_group, c_group = n_out // groups, n_in // groups
    oh, ow = y.shape[2], y.shape[3]
    hp, wp = oh + dh * (kh - 1), ow + dw * (kw - 1)
    n_sites = oh * ow
    at = n_in * hp * wp * block
    xt = work[:at]
    acc_flat = work[at:at + TILE_ROWS * n_sites * block]
    acc = acc_flat.reshape(TILE_ROWS, n_sites * block)
    y_flat = y.reshape(-1)
    n_taps = c_group * kh * kw  # the real taps (the table is zero-padded for the backward)
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        samples_innermost(x, n0, m, ph, pw, hp, wp, xt)
        row = wp * m
        plane = hp * row
        run = ow * m  # one row of output sites of the block
        _fill_offsets(offs, c_group, kh, kw, plane, 0, 1, row, dh, dw * m)
        for g in range(groups):
            base = g * c_group * plane
            for o in range(0, o_group, TILE_ROWS):
                count = min(TILE_ROWS, o_group - o)
                for i in range(oh):
                    shifted_rows(xt[base + i * row:], wt[g, :, 0:n_taps], o, count, offs[0:n_taps], run,
                                 acc[:, i * run:(i + 1) * run])
                for r in range(count):
                    k = g * o_group + o + r
                    bo = bias[k]
                    fields = acc[r, :n_sites * m]
                    if m < 8:  # (site, sample) -> y[n0 + s, k, site] + b, a strided read per sample
                        for s in range(m):
                            dst = y_flat[((n0 + s) * n_out + k) * n_sites:((n0 + s) * n_out + k + 1) * n_sites]
                            for q in range(n_sites):
                                dst[q] = fields[q * m + s] + bo
                        continue
                    for q in range(n_sites * m):
                        fields[q] += bo
                    # (site, sample) -> y[n0 + s, k, site], 8 sites at a time
                    transpose_rows(acc_flat, r * n_sites * block, m, y_flat, (n0 * n_out + k) * n_sites,
                                   n_out * n_sites, n_sites, m)
        activate_inplace(y[n0:n0 + m].reshape(-1), act)


@njit(cache=True, nogil=True, fastmath=REASSOC)
def direct_backward(x, wt, wtr, y, dy, ph, pw, dh, dw, kh, kw, block, act, dx, dw_acc, db_acc, work, offs):
    """Gradients of direct_forward from its saved output y and dL/dy: dx written into dx (shaped
    like x); dJ (in wt's tap layout) and db added to the float64 accumulators dw_acc (like wt) and
    db_acc (O,). ``wtr`` (groups, C_g, KH T) holds the weights for dx tap by
    tap in the order (a, o, b), T = O_g KW taps per window row a (direct_taps); ``work`` and
    ``offs`` scratch sized by direct_backward_workspace; releases the GIL."""
    n_batch, n_in, height, width = x.shape
    groups, _, n_taps = wt.shape
    n_out = y.shape[1]
    o_group, c_group = n_out // groups, n_in // groups
    oh, ow = y.shape[2], y.shape[3]
    hp, wp = oh + dh * (kh - 1), ow + dw * (kw - 1)
    fh, fw = dh * (kh - 1), dw * (kw - 1)
    hd, wd = oh + 2 * fh, ow + 2 * fw
    n_sites, n_pixels = oh * ow, height * width
    per_row = wtr.shape[2] // kh
    zero = x.dtype.type(0)
    at = n_in * hp * wp * block
    xt = work[:at]
    dpad = work[at:at + n_out * hd * wd * block]
    at += n_out * hd * wd * block
    dplanes = work[at:at + block * n_out * n_sites]  # the block's delta, (sample, channel, site)
    at += block * n_out * n_sites
    dxt_flat = work[at:at + TILE_ROWS * n_pixels * block]
    dxt = dxt_flat.reshape(TILE_ROWS, n_pixels * block)
    at += TILE_ROWS * n_pixels * block
    lanes = VECTOR_BYTES // x.itemsize
    o_vec = (o_group + lanes - 1) // lanes * lanes  # channels per site in dt: whole vectors
    dt = work[at:at + n_sites * block * o_vec]
    at += n_sites * block * o_vec
    part = work[at:at + n_taps * o_vec].reshape(n_taps, o_vec)
    offs_f = offs[:n_taps]
    offs_b = offs[n_taps:n_taps + wtr.shape[2]]
    dx_flat = dx.reshape(-1)
    # the input sites that lie on the padded grid; the others get no gradient
    r_lo, r_hi = max(0, -ph), min(height, hp - ph)
    s_lo, s_hi = max(0, -pw), min(width, wp - pw)
    covered = r_lo == 0 and r_hi == height and s_lo == 0 and s_hi == width
    last_m = -1
    for n0 in range(0, n_batch, block):
        m = min(block, n_batch - n0)
        row = wp * m
        plane = hp * row
        line = hd * wd * m  # one output channel's framed delta
        run = ow * m
        if m != last_m:  # the frame stays zero from here on: only the real sites are written below
            for k in range(n_out * line):
                dpad[k] = zero
            for k in range(n_sites * m * o_vec):  # the padding channels of dt stay zero too
                dt[k] = zero
            _fill_offsets(offs_f, c_group, kh, kw, plane, 0, 1, row, dh, dw * m)
            for a in range(kh):
                for o in range(o_group):
                    for b in range(kw):
                        offs_b[a * per_row + o * kw + b] = o * line + ((fh - dh * a) * wd + fw - dw * b) * m
            last_m = m
        # delta = dy g'(y) for the whole block, db, then (sample, site) -> the framed rows
        delta = dplanes[:m * n_out * n_sites]
        delta_from_output(y[n0:n0 + m].reshape(-1), dy[n0:n0 + m].reshape(-1), act, delta)
        for s in range(m):
            for k in range(n_out):
                plane_sum = zero
                for q in range((s * n_out + k) * n_sites, (s * n_out + k + 1) * n_sites):
                    plane_sum += delta[q]
                db_acc[k] += plane_sum
        for k in range(n_out):
            for i in range(oh):
                transpose_rows(delta, k * n_sites + i * ow, n_out * n_sites, dpad, k * line + ((i + fh) * wd + fw) * m,
                               m, m, ow)
        samples_innermost(x, n0, m, ph, pw, hp, wp, xt)
        for g in range(groups):
            base = g * c_group * plane
            for i in range(oh):  # this group's delta, channel innermost
                transpose_rows(dpad, g * o_group * line + ((i + fh) * wd + fw) * m, line, dt, i * run * o_vec, o_vec,
                               o_group, run)
            outer_dots(xt[base:], row, oh, run, offs_f, dt, o_vec, part)
            for o in range(o_group):
                for t in range(n_taps):
                    dw_acc[g, o, t] += part[t, o]
            for c in range(0, c_group, TILE_ROWS):
                count = min(TILE_ROWS, c_group - c)
                if not covered:
                    for r in range(count):
                        for q in range(n_pixels * m):
                            dxt[r, q] = zero
                length = (s_hi - s_lo) * m
                for i in range(r_lo, r_hi):
                    r = i + ph  # the row on the padded grid; window row a reads output row r - dh a
                    a_lo = max(0, (r - oh) // dh + 1)
                    a_hi = min(kh - 1, r // dh)
                    begin = (i * width + s_lo) * m
                    outs = dxt[:, begin:begin + length]
                    if a_hi < a_lo:
                        for rr in range(count):
                            for q in range(length):
                                outs[rr, q] = zero
                        continue
                    t0, t1 = a_lo * per_row, (a_hi + 1) * per_row
                    shifted_rows(dpad[g * o_group * line + (r * wd + s_lo + pw) * m:], wtr[g, :, t0:t1], c, count,
                                 offs_b[t0:t1], length, outs)
                for rr in range(count):  # (pixel, sample) -> dx[n0 + s, channel, pixel]
                    channel = g * c_group + c + rr
                    transpose_rows(dxt_flat, rr * n_pixels * block, m, dx_flat, (n0 * n_in + channel) * n_pixels,
                                   n_in * n_pixels, n_pixels, m)
