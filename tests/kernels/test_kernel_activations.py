"""Stable activations: the values and the derivatives-from-the-output against scipy, for fields
up to |h| = 1e4 (nothing overflows, nothing turns into NaN)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_cases import DTYPES, KERNEL_SETTINGS, assert_close, code, ref
from numba import njit

from hamiltonian_cnn.kernels.activations import (
    activate,
    activate_inplace,
    delta_from_output,
    derivative_from_output,
    exp_nonpositive,
    log_2cosh,
    log_sigmoid,
    softplus,
)

fields = st.one_of(st.floats(-1e4, 1e4, allow_nan=False), st.floats(-30, 30, allow_nan=False),
                   st.sampled_from([-1e4, -745.0, -88.0, -1e-8, 0.0, 1e-8, 88.0, 745.0, 1e4]))


@njit
def activate_array(h, code):
    """The scalar kernel ``activate`` (what the plain-loop kernels call) on every entry of a 1D array."""
    y = np.empty_like(h)
    for k in range(h.shape[0]):
        y[k] = activate(h[k], code)
    return y


@njit
def derivatives_from_output(y, code):
    """The scalar kernel ``derivative_from_output`` (g'(h) read from y = g(h)) on every entry of a 1D array."""
    d = np.empty_like(y)
    for k in range(y.shape[0]):
        d[k] = derivative_from_output(y[k], code)
    return d


@KERNEL_SETTINGS
@given(st.lists(fields, min_size=1, max_size=40), st.sampled_from(ref.ACTIVATIONS), st.sampled_from(DTYPES))
def test_activation_values_and_derivatives(values, act, dtype):
    h = np.array(values, dtype=dtype)
    y = activate_array(h, code(act))
    assert y.dtype == dtype and np.all(np.isfinite(y))
    want = ref.activate(h.astype(np.float64), act)
    assert_close(y, want, dtype, "y")
    dh = derivatives_from_output(y, code(act))
    assert np.all(np.isfinite(dh))
    deriv = ref.activation_derivative(h.astype(np.float64), act)
    if act == "relu":
        deriv = (y > 0).astype(np.float64)
    # the derivative is read from the rounded output y: compare at the output's precision
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(dh, deriv, rtol=tol, atol=tol)


@KERNEL_SETTINGS
@given(fields)
def test_log_space_helpers(h):
    np.testing.assert_allclose(softplus(h), np.logaddexp(0.0, h), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(log_sigmoid(h), -np.logaddexp(0.0, -h), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(log_2cosh(h), np.logaddexp(h, -h), rtol=1e-13, atol=1e-300)
    assert np.isfinite(softplus(h)) and np.isfinite(log_sigmoid(h)) and np.isfinite(log_2cosh(h))


def test_extreme_fields_saturate_exactly():
    h = np.array([-1e4, 1e4])
    np.testing.assert_array_equal(activate_array(h, code("sigmoid")), [0.0, 1.0])
    np.testing.assert_array_equal(activate_array(h, code("tanh")), [-1.0, 1.0])
    np.testing.assert_array_equal(activate_array(h, code("softplus")), [0.0, 1e4])
    np.testing.assert_array_equal(activate_array(h, code("relu")), [0.0, 1e4])


@KERNEL_SETTINGS
@given(st.lists(fields, min_size=1, max_size=70), st.sampled_from(ref.ACTIVATIONS), st.sampled_from(DTYPES),
       st.floats(-3, 3))
def test_array_kernels_match_the_reference(values, act, dtype, bias):
    """The vectorised array versions the convolution kernels use (activate_inplace with its own exp,
    delta_from_output) against the reference, at the arrays' precision."""
    h = np.array(values, dtype=dtype)
    y = h.copy()
    activate_inplace(y, code(act))
    assert y.dtype == dtype and np.all(np.isfinite(y))
    assert_close(y, ref.activate(h.astype(np.float64), act), dtype, "activate_inplace")
    shifted = (h + dtype(bias)).astype(dtype)  # a field with a bias, as the kernels activate it
    yb = shifted.copy()
    activate_inplace(yb, code(act))
    assert_close(yb, ref.activate(shifted.astype(np.float64), act), dtype, "activate_inplace after a bias")
    dy = np.linspace(-1, 1, h.size).astype(dtype)
    out = np.empty_like(y)
    total = delta_from_output(y, dy, code(act), out)
    assert_close(out, ref.activation_backward(y, dy, act), dtype, "delta_from_output")
    np.testing.assert_allclose(total, out.astype(np.float64).sum(), rtol=1e-5, atol=1e-5 * h.size)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vectorised_exp_is_accurate(dtype):
    """exp(x) for x <= 0 written out for vectorisation: within 2 ulp where the result is a normal
    number, exactly 0 below that, 1 at 0."""
    from numba import njit

    @njit(error_model="numpy")
    def exps(x, out):
        for k in range(x.shape[0]):
            out[k] = exp_nonpositive(x[k])

    lowest = -87.0 if dtype == np.float32 else -708.0
    x = -np.concatenate([np.linspace(0.0, -lowest, 200_001), np.random.default_rng(0).exponential(3.0, 10_000)])
    x = x.astype(dtype)
    out = np.empty_like(x)
    exps(x, out)
    want = np.exp(x.astype(np.float64))
    normal = x >= lowest
    eps = np.finfo(dtype).eps
    np.testing.assert_array_less(np.abs(out[normal] - want[normal]), 2 * eps * want[normal] + 1e-300)
    below = np.array([lowest - 1, -1e4, -1e30], dtype)
    exps(below, out[:3])
    np.testing.assert_array_equal(out[:3], 0.0)
    exps(np.zeros(1, dtype), out[:1])
    assert out[0] == 1.0
