"""Shape-only layers."""

from __future__ import annotations

import math

from .._checks import sample_shape
from .base import Layer


class Flatten(Layer):
    """(N, *rest) -> (N, prod(rest)); backward restores the shape. No parameters."""

    def __init__(self, dtype=None):
        super().__init__(dtype)

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = sample_shape(input_shape)
        if not shape:
            raise ValueError("input_shape: Flatten expected at least one axis besides the batch, got "
                             f"{tuple(input_shape)!r}")
        return (math.prod(shape),)

    def _forward(self, x):
        return x.reshape(x.shape[0], -1), x.shape

    def _backward(self, dy, saved):
        return dy.reshape(saved), {}

    def config(self) -> dict:
        return {"dtype": self._dtype_config()}
