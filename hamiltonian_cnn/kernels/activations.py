"""Numerically stable activations as Numba scalar functions (fields up to |h| = 1e4 and beyond).

Codes used by the fused kernels: 0 none, 1 sigmoid, 2 tanh, 3 relu, 4 softplus.
The derivative of each activation is written in terms of its *output* y, so backward passes
only need the saved activation.
"""

import math

import numpy as np
from numba import njit

NONE, SIGMOID, TANH, RELU, SOFTPLUS = 0, 1, 2, 3, 4
CODES = {None: NONE, "none": NONE, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "softplus": SOFTPLUS}


@njit(cache=True, inline="always")
def sigmoid(h):
    """1 / (1 + e^-h), without overflow for either sign."""
    if h >= 0:
        return 1.0 / (1.0 + math.exp(-h))
    e = math.exp(h)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def softplus(h):
    """log(1 + e^h) = max(h, 0) + log1p(e^-|h|)."""
    return max(h, 0.0) + math.log1p(math.exp(-abs(h)))


@njit(cache=True, inline="always")
def log_sigmoid(h):
    """log sigmoid(h) = -softplus(-h)."""
    return min(h, 0.0) - math.log1p(math.exp(-abs(h)))


@njit(cache=True, inline="always")
def log_2cosh(h):
    """log(2 cosh h) = |h| + log1p(e^{-2|h|})."""
    a = abs(h)
    return a + math.log1p(math.exp(-2.0 * a))


@njit(cache=True, inline="always")
def activate(h, code):
    """y = g(h) for the activation ``code``."""
    if code == SIGMOID:
        return sigmoid(h)
    if code == TANH:
        return math.tanh(h)
    if code == RELU:
        return h if h > 0.0 else 0.0
    if code == SOFTPLUS:
        return softplus(h)
    return h


@njit(cache=True, inline="always")
def derivative_from_output(y, code):
    """g'(h) expressed through y = g(h): sigmoid y(1-y), tanh 1-y^2, relu [y>0], softplus 1-e^{-y}."""
    if code == SIGMOID:
        return y * (1.0 - y)
    if code == TANH:
        return 1.0 - y * y
    if code == RELU:
        return 1.0 if y > 0.0 else 0.0
    if code == SOFTPLUS:
        return -math.expm1(-y)
    return 1.0


@njit(cache=True)
def activate_array(h, code):
    """y = g(h) elementwise on a 1D array (callers pass ``h.reshape(-1)``: one compiled version per dtype)."""
    y = np.empty_like(h)
    for k in range(h.shape[0]):
        y[k] = activate(h[k], code)
    return y


@njit(cache=True)
def activation_backward(y, dy, code):
    """dL/dh = dL/dy g'(h) on 1D arrays, with g'(h) read from the saved output y (a cheap serial pass)."""
    dh = np.empty_like(dy)
    for k in range(dy.shape[0]):
        dh[k] = dy[k] * derivative_from_output(y[k], code)
    return dh
