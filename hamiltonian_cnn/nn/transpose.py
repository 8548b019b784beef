"""Transposed convolution: the shared coupling read the other way (seed 004, section 4.1.2).

The field that d exerts on the input sites, f = conv_transpose(d, J). Weight layout
(in_ch, out_ch / groups, *window) as in PyTorch: it is the weight of the forward convolution that
maps out_ch channels to in_ch channels (``coupling()`` returns that SharedCoupling), and
<conv(x), d> = <x, conv_transpose(d)> holds for every stride, padding and dilation.

Output sites: (in - 1) stride - pad_start - pad_end + dilation (kernel - 1) + output_padding + 1.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_int_tuple, spatial_shape
from ..kernels.transpose import transpose_backward, transpose_forward
from ..physics.couplings import SharedCoupling
from ..physics.formulas import (
    Geometry,
    as4d,
    check_padding,
    kernel_geometry,
    normalize_padding,
)
from .coupling import CouplingLayer, activation_code
from .runtime import n_chunks, run_chunks


class _ConvTranspose(CouplingLayer):
    _uses_blas = True

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, output_padding=0, dilation=1,
                 activation=None, groups=1, dtype=np.float32, seed=None, bias=True):
        super().__init__(dtype)
        nd = self.nd
        self._window_options(in_ch, out_ch, kernel_size, stride)
        self.dilation = as_int_tuple(dilation, nd, "dilation", 1)
        self.groups = self._groups(groups)
        if isinstance(padding, str):
            raise ValueError(f"padding: {type(self).__name__} expects an int, per-axis ints or per-axis "
                             f"(start, end) pairs, got {padding!r}")
        self.padding = check_padding(padding, nd, self.kernel_size, self.stride, self.dilation)
        self._pads = normalize_padding(self.padding, (1,) * nd, self.kernel_size, self.stride, self.dilation)
        self.output_padding = as_int_tuple(output_padding, nd, "output_padding", 0)
        for axis in range(nd):
            if self.output_padding[axis] >= max(self.stride[axis], self.dilation[axis]):
                raise ValueError(f"output_padding: expected less than stride or dilation on every axis "
                                 f"(stride {self.stride}, dilation {self.dilation}), got {self.output_padding}")
        window = math.prod(self.kernel_size)
        self._init_coupling((self.in_ch, self.out_ch // self.groups) + self.kernel_size, (self.out_ch,),
                            self.in_ch // self.groups * window, self.out_ch // self.groups * window,
                            activation, bias, seed)

    def geometry(self, sites) -> Geometry:
        """The geometry of the adjoint (forward) convolution: from the output sites back to ``sites``."""
        out = []
        for axis, size in enumerate(sites):
            span = self.dilation[axis] * (self.kernel_size[axis] - 1) + 1
            o = ((size - 1) * self.stride[axis] - sum(self._pads[axis]) + span + self.output_padding[axis])
            if o < 1:
                raise ValueError(f"input_shape: {type(self).__name__} would give {o} output sites on axis {axis} "
                                 f"for {size} input sites (kernel {self.kernel_size}, stride {self.stride}, "
                                 f"padding {self._pads}); expected at least 1")
            out.append(o)
        return Geometry(tuple(out), self.kernel_size, self.stride, self._pads, self.dilation, tuple(sites))

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = spatial_shape(input_shape, self.nd, self.in_ch, type(self).__name__)
        return (self.out_ch,) + self.geometry(shape[1:]).in_sites

    def _forward(self, x):
        geo = self.geometry(x.shape[2:])
        sh, sw, ph, pw, dh, dw, _, _ = kernel_geometry(geo)
        height, width = (1, geo.in_sites[0]) if self.nd == 1 else geo.in_sites
        w = self._param("J", self.weight_shape)
        b = self._param("b", (self.out_ch,)) if self.use_bias else np.zeros(self.out_ch, self.dtype)
        x4, w4 = as4d(x), as4d(w)
        act, groups = activation_code(self.activation), self.groups
        flops = 2 * x.shape[0] * w.size * math.prod(x.shape[2:])

        def piece(slot, t, a, e):
            return transpose_forward(x4[a:e], w4, b, sh, sw, ph, pw, dh, dw, groups, height, width, act, 1)

        parts = run_chunks(piece, x.shape[0], n_chunks(flops))
        z4 = parts[0] if len(parts) == 1 else np.concatenate(parts)
        z = z4.reshape((x.shape[0], self.out_ch) + geo.in_sites)
        return z, (x4, w4, z4, geo, x.shape, flops)

    def _backward(self, dz, saved):
        x4, w4, z4, geo, x_shape, flops = saved
        sh, sw, ph, pw, dh, dw, _, _ = kernel_geometry(geo)
        act, groups = activation_code(self.activation), self.groups
        dz4 = dz.reshape(z4.shape)

        def piece(slot, t, a, e):
            return transpose_backward(x4[a:e], w4, z4[a:e], dz4[a:e], sh, sw, ph, pw, dh, dw, groups, act, 1)

        parts = run_chunks(piece, x4.shape[0], n_chunks(2 * flops))
        dx4, dw4, db = parts[0]
        if len(parts) > 1:
            dx4 = np.concatenate([p[0] for p in parts])
            for _, dw_part, db_part in parts[1:]:
                dw4, db = dw4 + dw_part, db + db_part
        grads = {"J": dw4.reshape(self.weight_shape)}
        if self.use_bias:
            grads["b"] = db
        return dx4.reshape(x_shape), grads

    def coupling(self) -> SharedCoupling:
        """The forward convolution (out_ch -> in_ch) whose adjoint this layer is, without bias."""
        return SharedCoupling(self.params["J"].copy(), None, stride=self.stride, padding=self._pads,
                              dilation=self.dilation, groups=self.groups)

    def config(self) -> dict:
        return {
            "in_ch": self.in_ch, "out_ch": self.out_ch, "kernel_size": list(self.kernel_size),
            "stride": list(self.stride), "padding": self.padding, "output_padding": list(self.output_padding),
            "dilation": list(self.dilation), "groups": self.groups, **self._coupling_config(),
        }


class ConvTranspose1d(_ConvTranspose):
    """f = g(conv_transpose(d, J) + b): (N, in_ch, L) -> (N, out_ch, L_out)."""

    nd = 1


class ConvTranspose2d(_ConvTranspose):
    """f = g(conv_transpose(d, J) + b): (N, in_ch, H, W) -> (N, out_ch, H_out, W_out)."""

    nd = 2
