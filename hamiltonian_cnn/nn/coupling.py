"""What every layer that carries a coupling J (and a bias b) shares.

The shared, local, full and transposed couplings differ in how J is laid out and which kernels
compute the field; they share the activation g (the ensemble's marginal: "sigmoid" for the binary
ensemble, "tanh" for the spin one), the fan-scaled initialisation of J, the bias switch, the seed
and the part of ``config()`` that says so. ``CouplingLayer`` holds exactly that.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_int, as_int_tuple, as_rng, choice
from ..kernels.activations import CODES
from .base import Layer

ACTIVATIONS = ("sigmoid", "tanh", "relu", "softplus", None)


def check_activation(activation) -> str | None:
    """One of ACTIVATIONS, or ValueError naming the value."""
    return choice(activation, "activation", ACTIVATIONS)


def activation_code(activation) -> int:
    """The kernels' integer code of an activation (kernels/activations.py)."""
    return CODES[activation]


def seed_config(seed):
    """The seed as a JSON value: ints and None are kept, a Generator or SeedSequence is not."""
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return None if seed is None else int(seed)
    return None


def init_weight(rng: np.random.Generator, shape, fan_in: int, fan_out: int, activation, dtype) -> np.ndarray:
    """Fan-scaled uniform init: He (sqrt(6 / fan_in)) for relu, Glorot (sqrt(6 / (fan_in + fan_out))) else."""
    if activation == "relu":
        limit = math.sqrt(6.0 / fan_in)
    else:
        limit = math.sqrt(6.0 / (fan_in + fan_out))
    return np.ascontiguousarray(rng.uniform(-limit, limit, size=shape), dtype=dtype)


class CouplingLayer(Layer):
    """y = g(h), h the field of a coupling J with bias b; params {"J", "b"} (no "b" when bias=False)."""

    nd = 2  # spatial axes of the windowed couplings (1D layers set 1)
    _input_ndims = property(lambda self: (self.nd + 2,))

    def _window_options(self, in_ch, out_ch, kernel_size, stride) -> None:
        """Validate and set in_ch, out_ch, kernel_size and stride of a windowed coupling."""
        self.in_ch = as_int(in_ch, "in_ch", 1)
        self.out_ch = as_int(out_ch, "out_ch", 1)
        self.kernel_size = as_int_tuple(kernel_size, self.nd, "kernel_size", 1)
        self.stride = as_int_tuple(stride, self.nd, "stride", 1)

    def _groups(self, groups) -> int:
        groups = as_int(groups, "groups", 1)
        if self.in_ch % groups or self.out_ch % groups:
            raise ValueError(f"groups: expected a divisor of in_ch={self.in_ch} and out_ch={self.out_ch}, got {groups}")
        return groups

    def _init_coupling(self, weight_shape, bias_shape, fan_in, fan_out, activation, bias, seed) -> None:
        """Validate activation, bias and seed; draw J (init_weight), set b = 0 and zero grads."""
        self.activation = check_activation(activation)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected True or False, got {bias!r}")
        self.use_bias = bool(bias)
        self.seed = seed
        self.weight_shape = tuple(weight_shape)
        self.params["J"] = init_weight(as_rng(seed), self.weight_shape, fan_in, fan_out, self.activation, self.dtype)
        if self.use_bias:
            self.params["b"] = np.zeros(bias_shape, dtype=self.dtype)
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}

    def _coupling_config(self) -> dict:
        """The config() entries every coupling layer has."""
        return {"activation": self.activation, "dtype": self._dtype_config(), "seed": seed_config(self.seed),
                "bias": self.use_bias}
