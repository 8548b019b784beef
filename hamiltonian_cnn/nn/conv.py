"""Shared coupling layers: convolution J_ab, the same window weights at every site (eq. 4.1.5).

Weight layout (out_ch, in_ch / groups, *window) as in PyTorch; bias (out_ch,). groups = 1 is an
ordinary convolution, kernel_size = 1 a pointwise one, groups = in_ch = out_ch a depthwise one;
a depthwise-separable convolution is a depthwise layer followed by a pointwise one.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_int, as_int_tuple, as_rng
from ..kernels.conv import shared_backward, shared_forward
from ..physics.couplings import SharedCoupling
from ..physics.formulas import make_geometry, normalize_padding
from .base import (
    Layer,
    activation_code,
    as4d,
    check_activation,
    init_weight,
    jsonable,
    kernel_geometry,
    n_chunks,
    seed_config,
    spatial_shape,
)


def check_padding(padding, nd: int, kernel, stride, dilation):
    """Validate a padding argument (int, per-axis ints, per-axis (start, end) pairs, or a mode)."""
    normalize_padding(padding, (1,) * nd, kernel, stride, dilation)
    return padding if isinstance(padding, str) else jsonable(padding)


class _SharedConv(Layer):
    nd = 2
    _uses_blas = True

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 activation="sigmoid", dtype=np.float32, seed=None, bias=True):
        super().__init__(dtype)
        nd = self.nd
        self.in_ch = as_int(in_ch, "in_ch", 1)
        self.out_ch = as_int(out_ch, "out_ch", 1)
        self.kernel_size = as_int_tuple(kernel_size, nd, "kernel_size", 1)
        self.stride = as_int_tuple(stride, nd, "stride", 1)
        self.dilation = as_int_tuple(dilation, nd, "dilation", 1)
        self.groups = as_int(groups, "groups", 1)
        if self.in_ch % self.groups or self.out_ch % self.groups:
            raise ValueError(f"groups: expected a divisor of in_ch={self.in_ch} and out_ch={self.out_ch}, got {self.groups}")
        self.padding = check_padding(padding, nd, self.kernel_size, self.stride, self.dilation)
        self.activation = check_activation(activation)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected True or False, got {bias!r}")
        self.use_bias = bool(bias)
        self.seed = seed
        rng = as_rng(seed)
        window = math.prod(self.kernel_size)
        self.weight_shape = (self.out_ch, self.in_ch // self.groups) + self.kernel_size
        fan_in = self.in_ch // self.groups * window
        fan_out = self.out_ch // self.groups * window
        self.params["J"] = init_weight(rng, self.weight_shape, fan_in, fan_out, self.activation, self.dtype)
        if self.use_bias:
            self.params["b"] = np.zeros(self.out_ch, dtype=self.dtype)
        self._init_grads()
        self._geometries = {}

    _input_ndims = property(lambda self: (self.nd + 2,))

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
        geo = self.geometry(x.shape[2:])
        sh, sw, ph, pw, dh, dw, oh, ow = kernel_geometry(geo)
        w, b = self._weights()
        x4, w4 = as4d(x), as4d(w)
        y4 = shared_forward(x4, w4, b, sh, sw, ph, pw, dh, dw, self.groups, oh, ow, activation_code(self.activation),
                            n_chunks())
        y = y4.reshape((x.shape[0], self.out_ch) + geo.out_sites)
        return y, (x4, w4, y4, geo, x.shape)

    def _backward(self, dy, saved):
        x4, w4, y4, geo, x_shape = saved
        sh, sw, ph, pw, dh, dw, _, _ = kernel_geometry(geo)
        dx4, dw4, db = shared_backward(x4, w4, y4, dy.reshape(y4.shape), sh, sw, ph, pw, dh, dw,
                                       self.groups, activation_code(self.activation), n_chunks())
        grads = {"J": dw4.reshape(self.weight_shape)}
        if self.use_bias:
            grads["b"] = db
        return dx4.reshape(x_shape), grads

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
            "groups": self.groups, "activation": self.activation, "dtype": self._dtype_config(),
            "seed": seed_config(self.seed), "bias": self.use_bias,
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
