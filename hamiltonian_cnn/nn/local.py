"""Locally connected layers: the coupling J_{IJ,ab}, one window of weights per output site (eq. 4.1.4).

Weight layout (out_ch, *out_sites, in_ch, *window), the same as ``LocalCoupling``; bias
(out_ch, *out_sites). The output sites depend on the input sites, so the layer is built for one
``input_size``. With every window equal, it is the shared convolution (tests check this).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_int, as_int_tuple, spatial_shape
from ..kernels.conv import even_block
from ..kernels.local import (
    local_backward_sites,
    local_forward_sites,
    local_workspace,
    reach,
)
from ..physics.boundary import fold, interior, wrap
from ..physics.couplings import LocalCoupling
from ..physics.formulas import as4d, check_padding, kernel_geometry, make_geometry
from .coupling import CouplingLayer, activation_code
from .runtime import n_chunks, run_chunks, scratch

#: samples a block of the local kernels holds: the per-site products get more efficient up to about
#: 100 samples, while the padded input grid (C hp wp entries per sample) should stay within a
#: core's L2 cache
LOCAL_BLOCK_ENTRIES = 1 << 18
LOCAL_BLOCK_MAX = 128


def local_block(count: int, plane: int, block: int | None = None) -> int:
    """Samples per block for ``count`` samples with ``plane`` = C hp wp grid entries each (even blocks);
    ``block``: force a maximum (the tests use it to cover several blocks per call)."""
    return even_block(count, block or max(16, min(LOCAL_BLOCK_MAX, LOCAL_BLOCK_ENTRIES // max(1, plane))))


def _as_rows(x4, w6, sh, sw, ph, pw):
    """The kernels split the work by rows of output sites. A layer with a single row of input and
    output sites (every 1D layer) is therefore handed over as a column: (N, C, 1, W) as (N, C, W, 1),
    the same memory, with the roles of the two axes (stride, padding, window) swapped."""
    n_out, oh, ow, c_in, kh, kw = w6.shape
    if x4.shape[2] == 1 and oh == 1 and kh == 1 and ph == 0 and ow > 1:
        n, c, _, width = x4.shape
        return x4.reshape(n, c, width, 1), w6.reshape(n_out, ow, 1, c_in, kw, 1), (sw, sh, pw, ph)
    return x4, w6, (sh, sw, ph, pw)


def _rows_of(sh, kh, a, e):
    """Grid rows under the output site rows [a, e): (e - a - 1) sh + KH."""
    return (e - a - 1) * sh + kh


def _owned_grid_rows(a, e, oh, sh, kh):
    """The grid rows whose dx the piece with site rows [a, e) writes: a partition of the grid with
    cuts half a window below each piece's first row, so that neighbours recompute the dx
    contributions of about KH / 2 site rows each."""
    def cut(i):
        if i == 0 or i == oh:
            return 0 if i == 0 else (oh - 1) * sh + kh
        return i * sh + (kh - 1) // 2

    return cut(a), cut(e)


def _piece_scratch(store, t, x4, w6, sh, wp, a, e, block):
    """What piece t, with output site rows [a, e), works on, the same in the forward and the
    backward: its grid rows (g_lo, g_hi), the site rows of its box (b_lo, b_hi), the samples per
    block m, and its scratch (work, offs), sized for the backward and kept per piece (not per
    thread: whichever thread runs the piece). The forward lays out x on the box at the start of
    ``work``, where the backward finds it (see local_backward_sites)."""
    n_out, oh, ow, c_in, kh, kw = w6.shape
    g_lo, g_hi = _owned_grid_rows(a, e, oh, sh, kh)
    e_lo, e_hi = reach(g_lo, g_hi, sh, kh, oh)
    b_lo, b_hi = min(a, e_lo), max(e, e_hi)
    plane = c_in * _rows_of(sh, kh, b_lo, b_hi) * wp
    m = local_block(x4.shape[0], plane, block)
    n_work, n_offs = local_workspace(n_out, oh, ow, c_in, kh, kw, plane, (b_hi - b_lo) * ow, (e - a) * ow, m,
                                     x4.dtype)
    work = scratch(store, ("local", t), n_work, x4.dtype)
    offs = scratch(store, ("offs", t), n_offs, np.int64)
    return g_lo, g_hi, b_lo, b_hi, m, work, offs


def local_conv_forward(x4, w6, b3, sh, sw, ph, pw, act, chunks, store=None, block=None):
    """y (N, O, OH, OW) of a locally connected layer by the per-site kernels, on ``chunks`` threads,
    each with its own rows of output sites and every sample (``store``: a layer's dict of reusable
    scratch arrays, see base.scratch, where the laid-out input is kept for local_conv_backward;
    None: fresh arrays; ``block``: at most this many samples per block, for the tests)."""
    given = x4
    y_shape = (x4.shape[0], w6.shape[0]) + w6.shape[1:3]
    x4, w6, (sh, sw, ph, pw) = _as_rows(x4, w6, sh, sw, ph, pw)
    n_out, oh, ow, c_in, kh, kw = w6.shape
    n_sites, n_taps = oh * ow, c_in * kh * kw
    w3 = w6.reshape(n_out, n_sites, n_taps)  # J_{IJ,cab} as (O, P, T): a view
    bias = np.ascontiguousarray(b3).reshape(-1)
    y = np.empty(y_shape, dtype=x4.dtype)
    y4 = y.reshape(x4.shape[0], n_out, oh, ow)
    wp = (ow - 1) * sw + kw
    if store is not None:
        store.pop("laid_out", None)

    def piece(slot, t, a, e):
        _, _, b_lo, b_hi, m, work, offs = _piece_scratch(store, t, x4, w6, sh, wp, a, e, block)
        local_forward_sites(x4, w3, bias, sh, sw, ph, pw, kh, kw, a, e, b_lo, b_hi, m, act, y4, work, offs)

    run_chunks(piece, oh, chunks, per_thread=1)
    if store is not None:
        store["laid_out"] = (given, chunks, block)  # which x the scratch holds, cut how
    return y


def local_conv_backward(x4, w6, y4, dy4, sh, sw, ph, pw, act, chunks, store=None, block=None):
    """(dx, dJ, db) of local_conv_forward from its saved output, on ``chunks`` threads, each with
    its own rows of output sites (dJ, db) and of the input grid (dx). When ``store`` holds the
    input local_conv_forward laid out for this x, cut into the same pieces, it is used as it is."""
    laid = store.get("laid_out") if store is not None else None
    reuse = laid is not None and laid[0] is x4 and laid[1:] == (chunks, block)
    shapes = x4.shape, w6.shape, (w6.shape[0],) + w6.shape[1:3]
    x4, w6, (sh, sw, ph, pw) = _as_rows(x4, w6, sh, sw, ph, pw)
    n_out, oh, ow, c_in, kh, kw = w6.shape
    n_sites, n_taps = oh * ow, c_in * kh * kw
    w3 = w6.reshape(n_out, n_sites, n_taps)
    y4, dy4 = y4.reshape(x4.shape[0], n_out, oh, ow), dy4.reshape(x4.shape[0], n_out, oh, ow)
    height, width = x4.shape[2], x4.shape[3]
    hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    # every input site lies on the grid and under some window: the kernels write all of dx
    covered = ph >= 0 and pw >= 0 and hp - ph >= height and wp - pw >= width and sh <= kh and sw <= kw
    dx4 = np.empty_like(x4) if covered else np.zeros_like(x4)
    dweight = np.empty((n_out, n_sites, n_taps), dtype=x4.dtype)
    db = np.zeros((n_out, n_sites))

    def piece(slot, t, a, e):
        g_lo, g_hi, _, _, m, work, offs = _piece_scratch(store, t, x4, w6, sh, wp, a, e, block)
        laid_out = int(reuse and x4.shape[0] <= m)
        local_backward_sites(x4, w3, y4, dy4, sh, sw, ph, pw, kh, kw, a, e, g_lo, g_hi, m, act, laid_out, dx4,
                             dweight, db, work, offs)

    run_chunks(piece, oh, chunks, per_thread=1)
    return dx4.reshape(shapes[0]), dweight.reshape(shapes[1]), db.reshape(shapes[2]).astype(x4.dtype)


class _LocalConv(CouplingLayer):

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, activation="sigmoid",
                 dtype=np.float32, seed=None, bias=True, input_size=None, dilation=1, groups=1):
        super().__init__(dtype)
        nd = self.nd
        name = type(self).__name__
        self._window_options(in_ch, out_ch, kernel_size, stride)
        if as_int_tuple(dilation, nd, "dilation", 1) != (1,) * nd:
            raise ValueError(f"dilation: {name} (a local coupling) supports only dilation 1, got {dilation!r}")
        if as_int(groups, "groups", 1) != 1:
            raise ValueError(f"groups: {name} (a local coupling) supports only groups=1, got {groups!r}")
        self.padding = check_padding(padding, nd, self.kernel_size, self.stride, (1,) * nd)
        if input_size is None:
            raise TypeError(f"input_size: {name} needs the input sites ({'L' if nd == 1 else 'H, W'}), got None")
        if isinstance(input_size, (tuple, list)) and len(input_size) == nd + 1:
            if as_int(input_size[0], "input_size", 1) != self.in_ch:
                raise ValueError(f"input_size: expected {self.in_ch} channels first or only the sites, got "
                                 f"{input_size!r}")
            input_size = tuple(input_size)[1:]
        self.input_size = as_int_tuple(input_size, nd, "input_size", 1)
        self.geo = make_geometry(self.input_size, self.kernel_size, self.stride, self.padding, 1)
        window = math.prod(self.kernel_size)
        out_sites = self.geo.out_sites
        self.bias_shape = (self.out_ch,) + out_sites
        self._init_coupling((self.out_ch,) + out_sites + (self.in_ch,) + self.kernel_size, self.bias_shape,
                            self.in_ch * window, self.out_ch * window, activation, bias, seed)

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = spatial_shape(input_shape, self.nd, self.in_ch, type(self).__name__)
        if shape[1:] != self.input_size:
            raise ValueError(f"input_shape: {type(self).__name__} was built for input sites {self.input_size} "
                             f"(input_size), got {tuple(input_shape)!r}")
        return (self.out_ch,) + self.geo.out_sites

    def _kernel_arrays(self):
        w = self._param("J", self.weight_shape)
        b = self._param("b", self.bias_shape) if self.use_bias else np.zeros(self.bias_shape, self.dtype)
        if self.nd == 1:
            o, ol, c, k = w.shape
            return w.reshape(o, 1, ol, c, 1, k), b.reshape(o, 1, ol)
        return w, b

    def _kernel_geometry(self):
        """The kernels' geometry: this layer's, or with a periodic boundary that of the wrapped input."""
        return kernel_geometry(interior(self.geo) if self.geo.circular else self.geo)

    def _forward(self, x):
        if self.geo.circular:  # periodic boundary: the kernels see the wrapped input, no padding
            x = wrap(x, self.geo)
        sh, sw, ph, pw, _, _, _, _ = self._kernel_geometry()
        w6, b3 = self._kernel_arrays()
        x4 = as4d(x)
        flops = 2 * x.shape[0] * w6.size
        y4 = local_conv_forward(x4, w6, b3, sh, sw, ph, pw, activation_code(self.activation), n_chunks(flops),
                                self._scratch)
        y = y4.reshape((x.shape[0], self.out_ch) + self.geo.out_sites)
        return y, (x4, w6, y4, x.shape, flops)

    def _backward(self, dy, saved):
        x4, w6, y4, x_shape, flops = saved
        sh, sw, ph, pw, _, _, _, _ = self._kernel_geometry()
        dx4, dw6, db3 = local_conv_backward(x4, w6, y4, dy.reshape(y4.shape), sh, sw, ph, pw,
                                            activation_code(self.activation), n_chunks(2 * flops), self._scratch)
        grads = {"J": dw6.reshape(self.weight_shape)}
        if self.use_bias:
            grads["b"] = db3.reshape(self.bias_shape)
        dx = dx4.reshape(x_shape)
        return (fold(dx, self.geo) if self.geo.circular else dx), grads

    def coupling(self) -> LocalCoupling:
        """The physics object with the current params (copies): its field is this layer before g."""
        b = self.params["b"].copy() if self.use_bias else None
        padding = "circular" if self.geo.circular else self.geo.padding
        return LocalCoupling(self.params["J"].copy(), b, stride=self.stride, padding=padding,
                             input_shape=(self.in_ch,) + self.input_size)

    def config(self) -> dict:
        return {
            "in_ch": self.in_ch, "out_ch": self.out_ch, "kernel_size": list(self.kernel_size),
            "stride": list(self.stride), "padding": self.padding, **self._coupling_config(),
            "input_size": list(self.input_size),
        }


class LocalConv1d(_LocalConv):
    """Locally connected coupling on a chain: x (N, in_ch, L) -> y (N, out_ch, L_out), L = input_size."""

    nd = 1


class LocalConv2d(_LocalConv):
    """Locally connected coupling on a grid: x (N, in_ch, H, W) -> y (N, out_ch, H_out, W_out), (H, W) = input_size."""

    nd = 2
