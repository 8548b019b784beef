"""The full coupling J_{IJ,ij}: every output (channel, site) to every input (channel, site) (eq. 4.1.2).

``in_features`` / ``out_features`` are ints (flat vectors) or per-sample shapes (C, *sites), so a
FullCoupled maps a (C_in, H, W) input straight to a (C_out, OH, OW) output, or to class scores.
Weight layout (*out_features, *in_features), i.e. (C_out, *out_sites, C_in, *in_sites) as in
``FullCoupling``; bias shaped like out_features. An input is accepted either shaped
(N, *in_features) or flat (N, prod(in_features)); dx comes back shaped like the input.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_int, sample_shape
from .._io import jsonable
from ..kernels.full import activate_inplace, delta_from_output
from ..physics.couplings import FullCoupling
from .coupling import CouplingLayer, activation_code


def full_forward(x2, w, b, act):
    """y = g(x2 @ J^T + b) for x2 (N, F), J (K, F), b (K,): one BLAS product, then the epilogue in place."""
    y2 = x2 @ w.T
    y2 += b
    activate_inplace(y2.reshape(-1), act)
    return y2


def full_backward(x2, w, y2, dy2, act):
    """(dx (N, F), dJ (K, F), db (K,)) of full_forward from its saved output y2 and dL/dy2."""
    delta = np.empty_like(y2)
    delta_from_output(y2.reshape(-1), np.ascontiguousarray(dy2).reshape(-1), act, delta.reshape(-1))
    db = delta.sum(axis=0, dtype=np.float64).astype(y2.dtype)
    return delta @ w, delta.T @ x2, db


def _features(value, name: str) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        shape = sample_shape(value, name)
        if not shape:
            raise ValueError(f"{name}: expected an int or a non-empty shape (C, *sites), got {value!r}")
        return shape
    return (as_int(value, name, 1),)


class FullCoupled(CouplingLayer):
    """y = g(J x + b) with J the full coupling between all input and all output units."""

    _input_ndims = ()  # (N, *in_features) or flat (N, prod(in_features)): output_shape checks

    def __init__(self, in_features, out_features, activation="sigmoid", dtype=np.float32, seed=None, bias=True):
        super().__init__(dtype)
        self.in_shape = _features(in_features, "in_features")
        self.out_shape = _features(out_features, "out_features")
        self._in_is_int = not isinstance(in_features, (tuple, list))
        self._out_is_int = not isinstance(out_features, (tuple, list))
        self.in_size = math.prod(self.in_shape)
        self.out_size = math.prod(self.out_shape)
        self._init_coupling(self.out_shape + self.in_shape, self.out_shape, self.in_size, self.out_size,
                            activation, bias, seed)

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = sample_shape(input_shape)
        if shape != self.in_shape and shape != (self.in_size,):
            raise ValueError(f"input_shape: FullCoupled expected per-sample shape {self.in_shape} "
                             f"(or flat ({self.in_size},)), got {tuple(input_shape)!r}")
        return self.out_shape

    def _forward(self, x):
        w = self._param("J", self.weight_shape).reshape(self.out_size, self.in_size)
        b = (self._param("b", self.out_shape).reshape(self.out_size) if self.use_bias
             else np.zeros(self.out_size, self.dtype))
        x2 = x.reshape(x.shape[0], self.in_size)
        y2 = full_forward(x2, w, b, activation_code(self.activation))
        return y2.reshape((x.shape[0],) + self.out_shape), (x2, w, y2, x.shape)

    def _backward(self, dy, saved):
        x2, w, y2, x_shape = saved
        dx2, dw, db = full_backward(x2, w, y2, dy.reshape(y2.shape), activation_code(self.activation))
        grads = {"J": dw.reshape(self.weight_shape)}
        if self.use_bias:
            grads["b"] = db.reshape(self.out_shape)
        return dx2.reshape(x_shape), grads

    def coupling(self) -> FullCoupling:
        """The physics object with the current params (copies). An int feature count F is written as
        F channels on one site, (F, 1), since FullCoupling splits (C, *sites) on each side."""
        out4 = self.out_shape + (1,) if len(self.out_shape) == 1 else self.out_shape
        in4 = self.in_shape + (1,) if len(self.in_shape) == 1 else self.in_shape
        b = self.params["b"].reshape(out4).copy() if self.use_bias else None
        return FullCoupling(self.params["J"].reshape(out4 + in4).copy(), b, input_shape=in4, output_shape=out4)

    def config(self) -> dict:
        return {
            "in_features": self.in_shape[0] if self._in_is_int else jsonable(self.in_shape),
            "out_features": self.out_shape[0] if self._out_is_int else jsonable(self.out_shape),
            **self._coupling_config(),
        }
