"""Register-blocked micro-kernel of the direct convolution: a sum of shifted rows.

    out[r, q] = sum_t w[row0 + r, t] src[offs[t] + q]      for r < n_rows, q < length

Every output of a convolution at stride 1 is such a sum over the taps t = (c, a, b) of the
window, once the input is laid out so that each tap is a fixed shift of the output sites
(kernels/direct.py). The sum is computed one tile at a time: R output rows x 2 vectors of q held
in registers (simd.Vector) while the loop runs over every tap, so that each tap costs 2 loads
of ``src`` and R broadcasts of a weight for 2 R vector multiply-adds, and each output is written
once. R is 8 where the CPU has 32 vector registers (AVX-512) and 4 where it has 16. Rows left
over take tiles of 2 rows x 4 vectors, then 1 row x 4 vectors; the last q that fill no whole tile
take single vectors, the last of them partial (it stores only its first lanes). outer_dots is
the same idea for the weight gradient (8 or 4 taps x 2 vectors of channels).

Few tile shapes on purpose: each one costs Numba about a second of compile time in every kernel
that calls it, and start-up time is part of what users wait for. So each entry point exists in a
version for either register count; the kernels call (and so compile) the one for this CPU, and
the tests run both on every machine (``shifted_rows_narrow`` / ``_wide``, ``outer_dots_*``).
"""

from numba import njit

from .simd import VECTOR_BYTES, vfma, vload, vsplat, vsplat_at, vstore, vstore_first

#: 32 vector registers (AVX-512): room for the 16 accumulators of _rows8 and _outer8x2
MANY_REGISTERS = VECTOR_BYTES == 64
#: rows that shifted_rows keeps in registers at once: what callers hand it per call, at most
TILE_ROWS = 8 if MANY_REGISTERS else 4


@njit(cache=True, inline="always")
def _rows8(src, w, row0, offs, q0, q1, out, r0):
    """Eight rows (w[row0 + k], out[r0 + k]) over q0 <= q < q1, 2 vectors at a time: 16
    accumulators, for CPUs with 32 vector registers (AVX-512); each pair of loads of ``src``
    serves 8 rows (4 in _rows4)."""
    lanes = VECTOR_BYTES // src.itemsize
    step = 2 * lanes
    zero = vsplat(src.dtype.type(0))
    n_taps = offs.shape[0]
    w0, w1, w2, w3 = w[row0], w[row0 + 1], w[row0 + 2], w[row0 + 3]
    w4, w5, w6, w7 = w[row0 + 4], w[row0 + 5], w[row0 + 6], w[row0 + 7]
    q = q0
    while q + step <= q1:
        a0 = a1 = b0 = b1 = c0 = c1 = d0 = d1 = zero
        e0 = e1 = f0 = f1 = g0 = g1 = h0 = h1 = zero
        for t in range(n_taps):
            at = offs[t] + q
            s0 = vload(src, at)
            s1 = vload(src, at + lanes)
            u = vsplat_at(w0, t)
            a0 = vfma(u, s0, a0)
            a1 = vfma(u, s1, a1)
            u = vsplat_at(w1, t)
            b0 = vfma(u, s0, b0)
            b1 = vfma(u, s1, b1)
            u = vsplat_at(w2, t)
            c0 = vfma(u, s0, c0)
            c1 = vfma(u, s1, c1)
            u = vsplat_at(w3, t)
            d0 = vfma(u, s0, d0)
            d1 = vfma(u, s1, d1)
            u = vsplat_at(w4, t)
            e0 = vfma(u, s0, e0)
            e1 = vfma(u, s1, e1)
            u = vsplat_at(w5, t)
            f0 = vfma(u, s0, f0)
            f1 = vfma(u, s1, f1)
            u = vsplat_at(w6, t)
            g0 = vfma(u, s0, g0)
            g1 = vfma(u, s1, g1)
            u = vsplat_at(w7, t)
            h0 = vfma(u, s0, h0)
            h1 = vfma(u, s1, h1)
        vstore(out[r0], q, a0)
        vstore(out[r0], q + lanes, a1)
        vstore(out[r0 + 1], q, b0)
        vstore(out[r0 + 1], q + lanes, b1)
        vstore(out[r0 + 2], q, c0)
        vstore(out[r0 + 2], q + lanes, c1)
        vstore(out[r0 + 3], q, d0)
        vstore(out[r0 + 3], q + lanes, d1)
        vstore(out[r0 + 4], q, e0)
        vstore(out[r0 + 4], q + lanes, e1)
        vstore(out[r0 + 5], q, f0)
        vstore(out[r0 + 5], q + lanes, f1)
        vstore(out[r0 + 6], q, g0)
        vstore(out[r0 + 6], q + lanes, g1)
        vstore(out[r0 + 7], q, h0)
        vstore(out[r0 + 7], q + lanes, h1)
        q += step
    while q < q1:  # single vectors, the last one maybe partial
        a0 = b0 = c0 = d0 = e0 = f0 = g0 = h0 = zero
        for t in range(n_taps):
            s0 = vload(src, offs[t] + q)
            a0 = vfma(vsplat_at(w0, t), s0, a0)
            b0 = vfma(vsplat_at(w1, t), s0, b0)
            c0 = vfma(vsplat_at(w2, t), s0, c0)
            d0 = vfma(vsplat_at(w3, t), s0, d0)
            e0 = vfma(vsplat_at(w4, t), s0, e0)
            f0 = vfma(vsplat_at(w5, t), s0, f0)
            g0 = vfma(vsplat_at(w6, t), s0, g0)
            h0 = vfma(vsplat_at(w7, t), s0, h0)
        n = min(lanes, q1 - q)
        vstore_first(out[r0], q, a0, n)
        vstore_first(out[r0 + 1], q, b0, n)
        vstore_first(out[r0 + 2], q, c0, n)
        vstore_first(out[r0 + 3], q, d0, n)
        vstore_first(out[r0 + 4], q, e0, n)
        vstore_first(out[r0 + 5], q, f0, n)
        vstore_first(out[r0 + 6], q, g0, n)
        vstore_first(out[r0 + 7], q, h0, n)
        q += lanes


@njit(cache=True, inline="always")
def _rows4(src, w0, w1, w2, w3, offs, q0, q1, out0, out1, out2, out3):
    """Four rows over q0 <= q < q1."""
    lanes = VECTOR_BYTES // src.itemsize
    step = 2 * lanes
    zero = vsplat(src.dtype.type(0))
    n_taps = offs.shape[0]
    q = q0
    while q + step <= q1:
        a0 = a1 = b0 = b1 = c0 = c1 = d0 = d1 = zero
        for t in range(n_taps):
            at = offs[t] + q
            s0 = vload(src, at)
            s1 = vload(src, at + lanes)
            u = vsplat_at(w0, t)
            a0 = vfma(u, s0, a0)
            a1 = vfma(u, s1, a1)
            u = vsplat_at(w1, t)
            b0 = vfma(u, s0, b0)
            b1 = vfma(u, s1, b1)
            u = vsplat_at(w2, t)
            c0 = vfma(u, s0, c0)
            c1 = vfma(u, s1, c1)
            u = vsplat_at(w3, t)
            d0 = vfma(u, s0, d0)
            d1 = vfma(u, s1, d1)
        vstore(out0, q, a0)
        vstore(out0, q + lanes, a1)
        vstore(out1, q, b0)
        vstore(out1, q + lanes, b1)
        vstore(out2, q, c0)
        vstore(out2, q + lanes, c1)
        vstore(out3, q, d0)
        vstore(out3, q + lanes, d1)
        q += step
    while q < q1:  # single vectors, the last one maybe partial
        a0 = b0 = c0 = d0 = zero
        for t in range(n_taps):
            s0 = vload(src, offs[t] + q)
            a0 = vfma(vsplat_at(w0, t), s0, a0)
            b0 = vfma(vsplat_at(w1, t), s0, b0)
            c0 = vfma(vsplat_at(w2, t), s0, c0)
            d0 = vfma(vsplat_at(w3, t), s0, d0)
        n = min(lanes, q1 - q)
        vstore_first(out0, q, a0, n)
        vstore_first(out1, q, b0, n)
        vstore_first(out2, q, c0, n)
        vstore_first(out3, q, d0, n)
        q += lanes


@njit(cache=True, inline="always")
def _rows2(src, w0, w1, offs, q0, q1, out0, out1):
    """Two rows over q0 <= q < q1, 4 vectors at a time."""
    lanes = VECTOR_BYTES // src.itemsize
    step = 4 * lanes
    zero = vsplat(src.dtype.type(0))
    n_taps = offs.shape[0]
    q = q0
    while q + step <= q1:
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = zero
        for t in range(n_taps):
            at = offs[t] + q
            s0 = vload(src, at)
            s1 = vload(src, at + lanes)
            s2 = vload(src, at + 2 * lanes)
            s3 = vload(src, at + 3 * lanes)
            u = vsplat_at(w0, t)
            a0 = vfma(u, s0, a0)
            a1 = vfma(u, s1, a1)
            a2 = vfma(u, s2, a2)
            a3 = vfma(u, s3, a3)
            u = vsplat_at(w1, t)
            b0 = vfma(u, s0, b0)
            b1 = vfma(u, s1, b1)
            b2 = vfma(u, s2, b2)
            b3 = vfma(u, s3, b3)
        vstore(out0, q, a0)
        vstore(out0, q + lanes, a1)
        vstore(out0, q + 2 * lanes, a2)
        vstore(out0, q + 3 * lanes, a3)
        vstore(out1, q, b0)
        vstore(out1, q + lanes, b1)
        vstore(out1, q + 2 * lanes, b2)
        vstore(out1, q + 3 * lanes, b3)
        q += step
    while q < q1:  # single vectors, the last one maybe partial
        a0 = b0 = zero
        for t in range(n_taps):
            s0 = vload(src, offs[t] + q)
            a0 = vfma(vsplat_at(w0, t), s0, a0)
            b0 = vfma(vsplat_at(w1, t), s0, b0)
        n = min(lanes, q1 - q)
        vstore_first(out0, q, a0, n)
        vstore_first(out1, q, b0, n)
        q += lanes


@njit(cache=True, inline="always")
def _rows1(src, w0, offs, q0, q1, out0):
    """One row over q0 <= q < q1."""
    lanes = VECTOR_BYTES // src.itemsize
    step = 4 * lanes
    zero = vsplat(src.dtype.type(0))
    n_taps = offs.shape[0]
    q = q0
    while q + step <= q1:
        a0 = a1 = a2 = a3 = zero
        for t in range(n_taps):
            at = offs[t] + q
            u = vsplat_at(w0, t)
            a0 = vfma(u, vload(src, at), a0)
            a1 = vfma(u, vload(src, at + lanes), a1)
            a2 = vfma(u, vload(src, at + 2 * lanes), a2)
            a3 = vfma(u, vload(src, at + 3 * lanes), a3)
        vstore(out0, q, a0)
        vstore(out0, q + lanes, a1)
        vstore(out0, q + 2 * lanes, a2)
        vstore(out0, q + 3 * lanes, a3)
        q += step
    while q < q1:  # single vectors, the last one maybe partial
        a0 = zero
        for t in range(n_taps):
            a0 = vfma(vsplat_at(w0, t), vload(src, offs[t] + q), a0)
        vstore_first(out0, q, a0, min(lanes, q1 - q))
        q += lanes


def _shifted_rows(src, w, row0, n_rows, offs, length, out):
    """out[r, q] = sum_t w[row0 + r, t] src[offs[t] + q] for r < n_rows, q < length.

    ``src`` and the rows of ``out`` are 1D C-contiguous arrays (out 2D, rows C-contiguous); every
    offs[t] + q must lie inside src, and so must the lanes - 1 entries after offs[t] + length - 1
    in memory (the last, partial vector reads them and drops what it computed from them): no
    bounds checks. Only out[r, :length] is written. Rows go 4 at a time (tiles of 4, 2, 1 rows)."""
    r = 0
    while r + 4 <= n_rows:
        _rows4(src, w[row0 + r], w[row0 + r + 1], w[row0 + r + 2], w[row0 + r + 3], offs, 0, length,
               out[r], out[r + 1], out[r + 2], out[r + 3])
        r += 4
    if r + 2 <= n_rows:
        _rows2(src, w[row0 + r], w[row0 + r + 1], offs, 0, length, out[r], out[r + 1])
        r += 2
    if r < n_rows:
        _rows1(src, w[row0 + r], offs, 0, length, out[r])


def _shifted_rows_wide(src, w, row0, n_rows, offs, length, out):
    """The same with 32 vector registers: 8 rows at a time (_rows8), the rest 2 at a time (_rows2
    loads as few times per multiply-add as _rows4 does); a last single row goes through _rows2
    as both of its rows (the same values stored twice), which costs less compile time than a
    tile of its own."""
    r = 0
    while r + 8 <= n_rows:
        _rows8(src, w, row0 + r, offs, 0, length, out, r)
        r += 8
    while r < n_rows:
        last = min(r + 1, n_rows - 1)
        _rows2(src, w[row0 + r], w[row0 + last], offs, 0, length, out[r], out[last])
        r += 2


#: both tile families, each compiled on first use (the tests run both on every machine)
shifted_rows_narrow = njit(cache=True)(_shifted_rows)
shifted_rows_wide = njit(cache=True)(_shifted_rows_wide)
#: the one the kernels call, for this CPU: each tile shape costs compile time in every kernel that calls it
shifted_rows = shifted_rows_wide if MANY_REGISTERS else shifted_rows_narrow


@njit(cache=True, inline="always")
def _outer4x2(src, offs, t, row_stride, n_rows, run, d, o_pad, v, acc):
    """acc[t + k, v L : (v + 2) L] for the 4 taps t + k and two vectors of channels from v L."""
    lanes = VECTOR_BYTES // src.itemsize
    zero = vsplat(src.dtype.type(0))
    a0 = a1 = b0 = b1 = c0 = c1 = e0 = e1 = zero
    o0, o1, o2, o3 = offs[t], offs[t + 1], offs[t + 2], offs[t + 3]
    for i in range(n_rows):
        s_at = i * row_stride
        d_at = i * run * o_pad + v * lanes
        for q in range(run):
            f0 = vload(d, d_at)
            f1 = vload(d, d_at + lanes)
            u = vsplat_at(src, o0 + s_at + q)
            a0 = vfma(u, f0, a0)
            a1 = vfma(u, f1, a1)
            u = vsplat_at(src, o1 + s_at + q)
            b0 = vfma(u, f0, b0)
            b1 = vfma(u, f1, b1)
            u = vsplat_at(src, o2 + s_at + q)
            c0 = vfma(u, f0, c0)
            c1 = vfma(u, f1, c1)
            u = vsplat_at(src, o3 + s_at + q)
            e0 = vfma(u, f0, e0)
            e1 = vfma(u, f1, e1)
            d_at += o_pad
    at = v * lanes
    vstore(acc[t], at, a0)
    vstore(acc[t], at + lanes, a1)
    vstore(acc[t + 1], at, b0)
    vstore(acc[t + 1], at + lanes, b1)
    vstore(acc[t + 2], at, c0)
    vstore(acc[t + 2], at + lanes, c1)
    vstore(acc[t + 3], at, e0)
    vstore(acc[t + 3], at + lanes, e1)


@njit(cache=True, inline="always")
def _outer8x1(src, offs, t, row_stride, n_rows, run, d, o_pad, v, acc):
    """acc[t + k, v L : (v + 1) L] for the 8 taps t + k and one vector of channels from v L."""
    lanes = VECTOR_BYTES // src.itemsize
    zero = vsplat(src.dtype.type(0))
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
    o0, o1, o2, o3 = offs[t], offs[t + 1], offs[t + 2], offs[t + 3]
    o4, o5, o6, o7 = offs[t + 4], offs[t + 5], offs[t + 6], offs[t + 7]
    for i in range(n_rows):
        s_at = i * row_stride
        d_at = i * run * o_pad + v * lanes
        for q in range(run):
            f = vload(d, d_at)
            a0 = vfma(vsplat_at(src, o0 + s_at + q), f, a0)
            a1 = vfma(vsplat_at(src, o1 + s_at + q), f, a1)
            a2 = vfma(vsplat_at(src, o2 + s_at + q), f, a2)
            a3 = vfma(vsplat_at(src, o3 + s_at + q), f, a3)
            a4 = vfma(vsplat_at(src, o4 + s_at + q), f, a4)
            a5 = vfma(vsplat_at(src, o5 + s_at + q), f, a5)
            a6 = vfma(vsplat_at(src, o6 + s_at + q), f, a6)
            a7 = vfma(vsplat_at(src, o7 + s_at + q), f, a7)
            d_at += o_pad
    at = v * lanes
    vstore(acc[t], at, a0)
    vstore(acc[t + 1], at, a1)
    vstore(acc[t + 2], at, a2)
    vstore(acc[t + 3], at, a3)
    vstore(acc[t + 4], at, a4)
    vstore(acc[t + 5], at, a5)
    vstore(acc[t + 6], at, a6)
    vstore(acc[t + 7], at, a7)


@njit(cache=True, inline="always")
def _outer8x2(src, offs, t, row_stride, n_rows, run, d, o_pad, v, acc):
    """acc[t + k, v L : (v + 2) L] for the 8 taps t + k and two vectors of channels from v L: 16
    accumulators, so only where there are 32 vector registers (AVX-512); each delta vector
    loaded serves 8 taps (4 in _outer4x2), which halves the delta's traffic from the cache."""
    lanes = VECTOR_BYTES // src.itemsize
    zero = vsplat(src.dtype.type(0))
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = zero
    o0, o1, o2, o3 = offs[t], offs[t + 1], offs[t + 2], offs[t + 3]
    o4, o5, o6, o7 = offs[t + 4], offs[t + 5], offs[t + 6], offs[t + 7]
    for i in range(n_rows):
        s_at = i * row_stride
        d_at = i * run * o_pad + v * lanes
        for q in range(run):
            f0 = vload(d, d_at)
            f1 = vload(d, d_at + lanes)
            u = vsplat_at(src, o0 + s_at + q)
            a0 = vfma(u, f0, a0)
            b0 = vfma(u, f1, b0)
            u = vsplat_at(src, o1 + s_at + q)
            a1 = vfma(u, f0, a1)
            b1 = vfma(u, f1, b1)
            u = vsplat_at(src, o2 + s_at + q)
            a2 = vfma(u, f0, a2)
            b2 = vfma(u, f1, b2)
            u = vsplat_at(src, o3 + s_at + q)
            a3 = vfma(u, f0, a3)
            b3 = vfma(u, f1, b3)
            u = vsplat_at(src, o4 + s_at + q)
            a4 = vfma(u, f0, a4)
            b4 = vfma(u, f1, b4)
            u = vsplat_at(src, o5 + s_at + q)
            a5 = vfma(u, f0, a5)
            b5 = vfma(u, f1, b5)
            u = vsplat_at(src, o6 + s_at + q)
            a6 = vfma(u, f0, a6)
            b6 = vfma(u, f1, b6)
            u = vsplat_at(src, o7 + s_at + q)
            a7 = vfma(u, f0, a7)
            b7 = vfma(u, f1, b7)
            d_at += o_pad
    at = v * lanes
    vstore(acc[t], at, a0)
    vstore(acc[t], at + lanes, b0)
    vstore(acc[t + 1], at, a1)
    vstore(acc[t + 1], at + lanes, b1)
    vstore(acc[t + 2], at, a2)
    vstore(acc[t + 2], at + lanes, b2)
    vstore(acc[t + 3], at, a3)
    vstore(acc[t + 3], at + lanes, b3)
    vstore(acc[t + 4], at, a4)
    vstore(acc[t + 4], at + lanes, b4)
    vstore(acc[t + 5], at, a5)
    vstore(acc[t + 5], at + lanes, b5)
    vstore(acc[t + 6], at, a6)
    vstore(acc[t + 6], at + lanes, b6)
    vstore(acc[t + 7], at, a7)
    vstore(acc[t + 7], at + lanes, b7)


def _outer_dots(src, row_stride, n_rows, run, offs, d, o_pad, acc):
    """acc[t, o] = sum_{i < n_rows} sum_{q < run} src[offs[t] + i row_stride + q] d[(i run + q) o_pad + o].

    The weight gradient of the direct kernels (direct.py) as a sum of outer products: for each input entry
    (broadcast to every lane) times a vector of the delta over output channels (``d`` holds
    the delta channel-innermost, ``o_pad`` channels per site, a multiple of the lane count), so
    no horizontal sum is needed. Tiles of 4 taps x 2 vectors of channels (8 taps x 1 vector
    where one vector is all there is) stay in registers over all n_rows runs. The number of
    taps is a multiple of 8."""
    lanes = VECTOR_BYTES // src.itemsize
    n_vecs = o_pad // lanes
    n_taps = offs.shape[0]
    v = 0
    while v + 2 <= n_vecs:
        for t in range(0, n_taps, 4):
            _outer4x2(src, offs, t, row_stride, n_rows, run, d, o_pad, v, acc)
        v += 2
    if v < n_vecs:
        for t in range(0, n_taps, 8):
            _outer8x1(src, offs, t, row_stride, n_rows, run, d, o_pad, v, acc)


def _outer_dots_wide(src, row_stride, n_rows, run, offs, d, o_pad, acc):
    """The same with 32 vector registers: tiles of 8 taps x 2 vectors (_outer8x2)."""
    lanes = VECTOR_BYTES // src.itemsize
    n_vecs = o_pad // lanes
    n_taps = offs.shape[0]
    v = 0
    while v + 2 <= n_vecs:
        for t in range(0, n_taps, 8):
            _outer8x2(src, offs, t, row_stride, n_rows, run, d, o_pad, v, acc)
        v += 2
    if v < n_vecs:
        for t in range(0, n_taps, 8):
            _outer8x1(src, offs, t, row_stride, n_rows, run, d, o_pad, v, acc)


#: both families, and the one the kernels call (as for shifted_rows)
outer_dots_narrow = njit(cache=True)(_outer_dots)
outer_dots_wide = njit(cache=True)(_outer_dots_wide)
outer_dots = outer_dots_wide if MANY_REGISTERS else outer_dots_narrow
