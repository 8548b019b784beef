"""Seeds 000-002 formulas: padding modes, output size, parameter counts, receptive fields."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import hamiltonian_cnn as hc
from hamiltonian_cnn.physics import padding_pair


@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3))
def test_padding_modes(size, kernel, stride, dilation):
    span = (kernel - 1) * dilation + 1
    assert hc.output_size(size, kernel, stride, "same", dilation) == math.ceil(size / stride)
    p0, p1 = padding_pair("same", size, kernel, stride, dilation)
    assert 0 <= p1 - p0 <= 1
    if stride == 1:
        assert hc.output_size(size, kernel, 1, "full", dilation) == size + span - 1
    if span <= size:
        assert hc.output_size(size, kernel, stride, "valid", dilation) == (size - span) // stride + 1


def test_output_size_matches_the_coupling():
    rng = np.random.default_rng(0)
    for size, k, s, p in [(28, 5, 1, 0), (12, 5, 1, 2), (8, 3, 2, 1), (32, 3, 1, "same"), (7, 2, 3, (0, 1))]:
        c = hc.SharedCoupling(rng.normal(size=(1, 1, k)), stride=s, padding=p)
        assert c.field(np.ones((1, 1, size))).shape[-1] == hc.output_size(size, k, s, p)


def test_output_size_refuses_a_window_larger_than_the_padded_input():
    with pytest.raises(ValueError, match="kernel"):
        hc.output_size(3, 5, 1, 0)
    with pytest.raises(ValueError, match="stride"):
        hc.output_size(3, 1, 0, 0)


def test_parameter_counts_seed_001_table():
    # CONV: (F F C + 1) K; POOL: 0; FC: (N_in + 1) N_out
    assert hc.conv_params(3, 64, 3) == (3 * 3 * 3 + 1) * 64
    assert hc.conv_params(6, 16, 5) == 2416  # LeNet-5 C3 with a full connection table
    assert hc.conv_params(8, 8, 3, groups=8) == 8 * (9 + 1)  # depthwise
    assert hc.conv_params(4, 8, 1) == 8 * 5  # pointwise
    assert hc.pool_params() == 0
    assert hc.fc_params(400, 120) == 48120


def test_receptive_field_recursion_seed_000_and_002():
    assert hc.receptive_field([(3, 1), (3, 1)]) == 5
    assert hc.receptive_field([(3, 1)] * 3) == 7
    assert hc.receptive_field([(3, 1, 2)]) == 5  # k3 d2 sees like k5
    assert hc.receptive_field([(5, 1), (2, 2), (5, 1), (2, 2)]) == 16  # LeNet-5 C1 S2 C3 S4
    # three 3x3 layers (C -> C) use 27 C^2 weights, one 7x7 uses 49 C^2: 55 %
    c = 64
    ratio = 3 * hc.conv_params(c, c, 3, bias=False) / hc.conv_params(c, c, 7, bias=False)
    assert round(100 * ratio) == 55
    with pytest.raises(ValueError, match="layers"):
        hc.receptive_field([(3,)])
