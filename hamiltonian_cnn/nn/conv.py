"""Shared coupling layers: convolution J_ab, the same window weights at every site (eq. 4.1.5).

Weight layout (out_ch, in_ch / groups, *window) as in PyTorch; bias (out_ch,). groups = 1 is an
ordinary convolution, kernel_size = 1 a pointwise one, groups = in_ch = out_ch a depthwise one;
a depthwise-separable convolution is a depthwise layer followed by a pointwise one.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_int_tuple, spatial_shape
from ..kernels.conv import im2col_backward, im2col_forward
from ..kernels.direct import (
    direct_backward,
    direct_backward_workspace,
    direct_block,
    direct_forward,
    direct_forward_workspace,
    direct_taps,
)
from ..physics.boundary import fold, interior, wrap
from ..physics.couplings import SharedCoupling
from ..physics.formulas import as4d, check_padding, kernel_geometry, make_geometry
from .coupling import CouplingLayer, activation_code
from .runtime import (
    blas_single_thread,
    n_chunks,
    pieces_per_thread,
    run_chunks,
    scratch,
)

METHODS = ("auto", "direct", "im2col")


def conv_method(stride, method: str = "auto") -> str:
    """Which kernels compute a convolution: "direct" (shifted rows, no BLAS: kernels/direct.py)
    needs stride 1 on every axis and is the faster one there (each tap of the window is a fixed
    shift of the input, the sums run in registers, and there is no column buffer to fill);
    "im2col" (columns + BLAS) takes any stride. ``method`` forces one ("direct" falls back to
    "im2col" where it cannot run)."""
    if method == "im2col" or any(s != 1 for s in stride):
        return "im2col"
    return "direct"


# ---------------------------------------------------------------- kernel drivers
# The kernels run on whole (pieces of) batches; these prepare their inputs (tap tables, scratch
# buffers: numpy allocations here cost microseconds, inside Numba they cost compile time), run
# pieces of the batch on threads (run_chunks) and sum the pieces' weight gradients in order.
# x4, w4 are 2D layouts ((N, C, 1, L) for 1D); ``chunks`` is the number of threads; ``store`` a
# layer's dict of reusable scratch arrays (base.scratch; None: fresh arrays).


def direct_conv_forward(x4, w4, b, ph, pw, dh, dw, groups, act, oh, ow, chunks, store=None):
    """y (N, O, oh, ow) of a stride-1 convolution by the direct kernel, on ``chunks`` threads."""
    n_out, _, kh, kw = w4.shape
    n_in = x4.shape[1]
    wt, _ = direct_taps(w4, groups, dx=False)
    y4 = np.empty((x4.shape[0], n_out, oh, ow), dtype=x4.dtype)

    def piece(slot, t, a, e):
        block = direct_block(e - a, n_in, n_out, kh, kw, dh, dw, oh, ow)
        n_work, n_offs = direct_forward_workspace(n_in, kh, kw, dh, dw, oh, ow, wt.shape[2], block, x4.dtype)
        work = scratch(store, ("fwd", slot), n_work, x4.dtype)
        offs = scratch(store, ("fwd offs", slot), n_offs, np.int64, zero=True)
        direct_forward(x4[a:e], wt, b, ph, pw, dh, dw, kh, kw, block, act, y4[a:e], work, offs)

    run_chunks(piece, x4.shape[0], chunks, pieces_per_thread(2 * x4.shape[0] * oh * ow * w4.size),
               direct_block(x4.shape[0], n_in, n_out, kh, kw, dh, dw, oh, ow))
    return y4


def direct_conv_backward(x4, w4, y4, dy4, ph, pw, dh, dw, groups, act, chunks, store=None):
    """(dx, dJ, db) of a stride-1 convolution by the direct kernel, on ``chunks`` threads."""
    n_out, c_group, kh, kw = w4.shape
    n_in = x4.shape[1]
    o_group = n_out // groups
    oh, ow = y4.shape[2], y4.shape[3]
    wt, wtr = direct_taps(w4, groups)
    dx4 = np.empty_like(x4)

    def block_of(count):
        return direct_block(count, n_in, n_out, kh, kw, dh, dw, oh, ow)

    def piece(slot, t, a, e):
        block = block_of(e - a)
        n_work, n_offs = direct_backward_workspace(x4.shape, n_out, groups, kh, kw, dh, dw, oh, ow, wt.shape[2],
                                                   wtr.shape[2], block, x4.dtype)
        work = scratch(store, ("bwd", slot), n_work, x4.dtype)
        offs = scratch(store, ("bwd offs", slot), n_offs, np.int64, zero=True)
        dw_acc = scratch(store, ("dw", t), wt.size, np.float64, zero=True).reshape(wt.shape)
        db_acc = scratch(store, ("db", t), n_out, np.float64, zero=True)
        direct_backward(x4[a:e], wt, wtr, y4[a:e], dy4[a:e], ph, pw, dh, dw, kh, kw, block, act, dx4[a:e],
                        dw_acc, db_acc, work, offs)
        return dw_acc, db_acc

    parts = run_chunks(piece, x4.shape[0], chunks, pieces_per_thread(4 * x4.shape[0] * oh * ow * w4.size),
                       block_of(x4.shape[0]))
    dw_acc, db = parts[0]
    for dw_part, db_part in parts[1:]:
        dw_acc, db = dw_acc + dw_part, db + db_part
    dweight = dw_acc[:, :o_group, :c_group * kh * kw].reshape(w4.shape)
    return dx4, dweight.astype(w4.dtype), db.astype(w4.dtype)


def im2col_conv_forward(x4, w4, b, sh, sw, ph, pw, dh, dw, groups, act, oh, ow, chunks):
    """y (N, O, oh, ow) of a convolution (any stride) by im2col + BLAS, on ``chunks`` threads."""
    y4 = np.empty((x4.shape[0], w4.shape[0], oh, ow), dtype=x4.dtype)

    def piece(slot, t, a, e):
        im2col_forward(x4[a:e], w4, b, sh, sw, ph, pw, dh, dw, groups, act, y4[a:e])

    with blas_single_thread():
        run_chunks(piece, x4.shape[0], chunks)
    return y4


def im2col_conv_backward(x4, w4, y4, dy4, sh, sw, ph, pw, dh, dw, groups, act, chunks):
    """(dx, dJ, db) of a convolution (any stride) by im2col + BLAS, on ``chunks`` threads."""
    dx4 = np.empty_like(x4)

    def piece(slot, t, a, e):
        return im2col_backward(x4[a:e], w4, y4[a:e], dy4[a:e], sh, sw, ph, pw, dh, dw, groups, act, dx4[a:e])

    with blas_single_thread():
        parts = run_chunks(piece, x4.shape[0], chunks)
    dweight, db = parts[0]
    for dw_part, db_part in parts[1:]:
        dweight, db = dweight + dw_part, db + db_part
    return dx4, dweight.astype(w4.dtype), db.astype(w4.dtype)


class _SharedConv(CouplingLayer):
    #: "auto" (by stride, see conv_method), or force "direct" / "im2col" (the tests run both)
    _method = "auto"

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 activation="sigmoid", dtype=np.float32, seed=None, bias=True):
        super().__init__(dtype)
        self._window_options(in_ch, out_ch, kernel_size, stride)
        self.dilation = as_int_tuple(dilation, self.nd, "dilation", 1)
        self.groups = self._groups(groups)
        self.padding = check_padding(padding, self.nd, self.kernel_size, self.stride, self.dilation)
        window = math.prod(self.kernel_size)
        self._init_coupling((self.out_ch, self.in_ch // self.groups) + self.kernel_size, (self.out_ch,),
                            self.in_ch // self.groups * window, self.out_ch // self.groups * window,
                            activation, bias, seed)
        self._geometries = {}

    def geometry(self, sites):
        """Where every window sits for inputs with these sites (cached)."""
        sites = tuple(sites)
        geo = self._geometries.get(sites)
        if geo is None:
            geo = make_geometry(sites, self.kernel_size, self.stride, self.padding, self.dilation)
            self._geometries[sites] = geo
        return geo

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = spatial_shape(input_shape, self.nd, self.in_ch, type(self).__name__)
        return (self.out_ch,) + self.geometry(shape[1:]).out_sites

    def _weights(self):
        w = self._param("J", self.weight_shape)
        b = self._param("b", (self.out_ch,)) if self.use_bias else np.zeros(self.out_ch, self.dtype)
        return w, b

    def _forward(self, x):
        geo = lattice = self.geometry(x.shape[2:])
        if geo.circular:  # periodic boundary: the kernels see the wrapped input, no padding
            x, geo = wrap(x, geo), interior(geo)
        sh, sw, ph, pw, dh, dw, oh, ow = kernel_geometry(geo)
        w, b = self._weights()
        x4, w4 = as4d(x), as4d(w)
        act = activation_code(self.activation)
        method = conv_method(self.stride, self._method)
        flops = 2 * x.shape[0] * oh * ow * w.size  # multiply-adds of the field, times 2
        if method == "direct":
            y4 = direct_conv_forward(x4, w4, b, ph, pw, dh, dw, self.groups, act, oh, ow, n_chunks(flops),
                                     self._scratch)
        else:
            y4 = im2col_conv_forward(x4, w4, b, sh, sw, ph, pw, dh, dw, self.groups, act, oh, ow, n_chunks(flops))
        y = y4.reshape((x.shape[0], self.out_ch) + geo.out_sites)
        return y, (x4, w4, y4, geo, lattice, x.shape, method, 2 * flops)

    def _backward(self, dy, saved):
        x4, w4, y4, geo, lattice, x_shape, method, backward_work = saved  # the backward: twice the forward's flops
        sh, sw, ph, pw, dh, dw, _, _ = kernel_geometry(geo)
        act = activation_code(self.activation)
        dy4 = dy.reshape(y4.shape)
        if method == "direct":
            dx4, dw4, db = direct_conv_backward(x4, w4, y4, dy4, ph, pw, dh, dw, self.groups, act,
                                                n_chunks(backward_work), self._scratch)
        else:
            dx4, dw4, db = im2col_conv_backward(x4, w4, y4, dy4, sh, sw, ph, pw, dh, dw, self.groups, act,
                                                n_chunks(backward_work))
        grads = {"J": dw4.reshape(self.weight_shape)}
        if self.use_bias:
            grads["b"] = db
        dx = dx4.reshape(x_shape)
        return (fold(dx, lattice) if lattice.circular else dx), grads

    def coupling(self) -> SharedCoupling:
        """The physics object with the current params (copies): its field is this layer before g."""
        b = self.params["b"].copy() if self.use_bias else None
        padding = self.padding if isinstance(self.padding, (str, int)) else _as_tuples(self.padding)
        return SharedCoupling(self.params["J"].copy(), b, stride=self.stride, padding=padding,
                              dilation=self.dilation, groups=self.groups)

    def config(self) -> dict:
        return {
            "in_ch": self.in_ch, "out_ch": self.out_ch, "kernel_size": list(self.kernel_size),
            "stride": list(self.stride), "padding": self.padding, "dilation": list(self.dilation),
            "groups": self.groups, **self._coupling_config(),
        }


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


class SharedConv1d(_SharedConv):
    """Shared coupling on a 1D chain of sites: x (N, in_ch, L) -> y (N, out_ch, L_out).

    y = g(conv(x, J) + b) with g the activation ("sigmoid", the Boltzmann marginal, by default).
    """

    nd = 1


class SharedConv2d(_SharedConv):
    """Shared coupling on a 2D grid of sites: x (N, in_ch, H, W) -> y (N, out_ch, H_out, W_out).

    y = g(conv(x, J) + b) with g the activation ("sigmoid", the Boltzmann marginal, by default).
    """

    nd = 2
