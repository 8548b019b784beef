"""The sparse control: every output site couples to as many input sites as a window holds, but
chosen at random and fixed (physics.couplings.SparseCoupling, random_wiring).

It has the local coupling's output sites, fan-in and parameter count, and none of its locality:
sparsity without locality. Weight layout (out_ch, *out_sites, in_ch, K), K = prod(kernel_size);
bias (out_ch, *out_sites). The wiring is a function of ``wiring`` (an int seed), kept in config().

Forward gathers each site's K inputs and multiplies per site (one batched BLAS product over
sites); backward scatters the inputs' gradient back with a sparse (sites x taps) matrix.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse

from .._checks import as_int, as_int_tuple, as_rng, spatial_shape
from ..kernels.full import activate_inplace, delta_from_output
from ..physics.couplings import SparseCoupling, random_wiring
from ..physics.formulas import check_padding, make_geometry
from .coupling import CouplingLayer, activation_code


class SparseCoupled(CouplingLayer):
    """y = g(h), h_{o,IJ} = sum_{c,k} J_{o,IJ,c,k} x_{c, index[IJ,k]} + b_{o,IJ}, on a chain or a grid.

    Output sites are those of a window ``kernel_size`` with ``stride`` and ``padding`` on
    ``input_size`` (as for LocalConv; padding only sets how many there are); each reads
    prod(kernel_size) distinct input sites drawn at random by ``wiring`` (default: from ``seed``).
    """

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, activation="sigmoid", dtype=np.float32,
                 seed=None, bias=True, input_size=None, wiring=None):
        super().__init__(dtype)
        if input_size is None:
            raise TypeError("input_size: SparseCoupled needs the input sites (L) or (H, W), got None")
        if isinstance(input_size, (int, np.integer)):
            input_size = (input_size,)
        if not isinstance(input_size, (tuple, list)) or len(input_size) not in (1, 2):
            raise ValueError(f"input_size: expected the input sites (L) or (H, W), got {input_size!r}")
        self.nd = len(input_size)
        self._window_options(in_ch, out_ch, kernel_size, stride)
        self.input_size = as_int_tuple(input_size, self.nd, "input_size", 1)
        self.padding = check_padding(padding, self.nd, self.kernel_size, self.stride, (1,) * self.nd)
        geo = make_geometry(self.input_size, self.kernel_size, self.stride, self.padding, 1)
        self.out_sites = geo.out_sites
        self.fan_in = math.prod(self.kernel_size)
        if wiring is None:
            wiring = int(as_rng(seed).integers(2**31))
        self.wiring = as_int(wiring, "wiring", 0)
        self.index = random_wiring(self.input_size, self.out_sites, self.fan_in, self.wiring)
        n_in, n_out = math.prod(self.input_size), math.prod(self.out_sites)
        # taps -> input sites: scatters a gradient on the gathered inputs back onto the lattice
        self._scatter = scipy.sparse.csr_array(
            (np.ones(self.index.size, dtype=self.dtype), (self.index.reshape(-1), np.arange(self.index.size))),
            shape=(n_in, n_out * self.fan_in))
        self.bias_shape = (self.out_ch,) + self.out_sites
        self._init_coupling((self.out_ch,) + self.out_sites + (self.in_ch, self.fan_in), self.bias_shape,
                            self.in_ch * self.fan_in, self.out_ch * self.fan_in, activation, bias, seed)

    _input_ndims = property(lambda self: (self.nd + 2,))

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = spatial_shape(input_shape, self.nd, self.in_ch, type(self).__name__)
        if shape[1:] != self.input_size:
            raise ValueError(f"input_shape: SparseCoupled was built for input sites {self.input_size} "
                             f"(input_size), got {tuple(input_shape)!r}")
        return (self.out_ch,) + self.out_sites

    def _per_site_weight(self):
        """J as (P_out, C_in * K, C_out): one matrix per output site."""
        w = self._param("J", self.weight_shape).reshape(self.out_ch, -1, self.in_ch * self.fan_in)
        return np.ascontiguousarray(w.transpose(1, 2, 0))

    def _forward(self, x):
        n = x.shape[0]
        gathered = x.reshape(n, self.in_ch, -1)[:, :, self.index]  # (N, C_in, P, K)
        a = np.ascontiguousarray(gathered.transpose(2, 0, 1, 3)).reshape(len(self.index), n, -1)  # (P, N, C_in K)
        w = self._per_site_weight()
        h = np.matmul(a, w).transpose(1, 2, 0)  # (N, C_out, P)
        y = np.ascontiguousarray(h)
        if self.use_bias:
            y += self._param("b", self.bias_shape).reshape(self.out_ch, -1)
        activate_inplace(y.reshape(-1), activation_code(self.activation))
        return y.reshape((n,) + self.bias_shape), (a, w, y, x.shape)

    def _backward(self, dy, saved):
        a, w, y, x_shape = saved
        n = x_shape[0]
        delta = np.empty_like(y)
        delta_from_output(y.reshape(-1), np.ascontiguousarray(dy, dtype=y.dtype).reshape(-1),
                          activation_code(self.activation), delta.reshape(-1))
        d = np.ascontiguousarray(delta.transpose(2, 0, 1))  # (P, N, C_out)
        dw = np.matmul(a.transpose(0, 2, 1), d)  # (P, C_in K, C_out)
        grads = {"J": np.ascontiguousarray(dw.transpose(2, 0, 1)).reshape(self.weight_shape)}
        if self.use_bias:
            grads["b"] = delta.sum(axis=0, dtype=np.float64).astype(self.dtype).reshape(self.bias_shape)
        da = np.matmul(d, w.transpose(0, 2, 1))  # (P, N, C_in K)
        taps = da.reshape(len(self.index), n, self.in_ch, self.fan_in).transpose(1, 2, 0, 3)  # (N, C_in, P, K)
        dx = self._scatter @ taps.reshape(n * self.in_ch, -1).T  # (P_in, N C_in)
        return np.ascontiguousarray(dx.T, dtype=y.dtype).reshape(x_shape), grads

    def coupling(self) -> SparseCoupling:
        """The physics object with the current params (copies): its field is this layer before g."""
        b = self.params["b"].copy() if self.use_bias else None
        return SparseCoupling(self.params["J"].copy(), self.index.copy(), b,
                              input_shape=(self.in_ch,) + self.input_size)

    def config(self) -> dict:
        return {
            "in_ch": self.in_ch, "out_ch": self.out_ch, "kernel_size": list(self.kernel_size),
            "stride": list(self.stride), "padding": self.padding, **self._coupling_config(),
            "input_size": list(self.input_size), "wiring": self.wiring,
        }
