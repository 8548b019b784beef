"""Pooling kernels (max, average, global average, adaptive bins of spatial pyramid pooling)
against tests/reference.py. The windows are built the way the layers build them."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from kernel_cases import DTYPES, KERNEL_SETTINGS, as4, assert_close, pairs2, random_array, ref

from hamiltonian_cnn.kernels.pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from hamiltonian_cnn.nn.pool import _adaptive_axis, _fixed_axis


@st.composite
def pool_cases(draw):
    nd = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    pads = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in kernel)
    sites = tuple(max(1, kernel[a] - sum(pads[a])) + draw(st.integers(0, 7)) for a in range(nd))
    return dict(nd=nd, kernel=kernel, stride=stride, pads=pads, sites=sites, n=draw(st.integers(1, 3)),
                c=draw(st.integers(1, 3)), dtype=draw(st.sampled_from(DTYPES)),
                count_include_pad=draw(st.booleans()), seed=draw(st.integers(0, 2**32 - 1)))


def fixed_windows(case):
    k2, s2 = pairs2(case["nd"], case["kernel"], 1), pairs2(case["nd"], case["stride"], 1)
    p2, n2 = pairs2(case["nd"], case["pads"], (0, 0)), pairs2(case["nd"], case["sites"], 1)
    axes = []
    for a in range(2):
        count = ref.conv_out_size(n2[a], k2[a], s2[a], p2[a], 1)
        axes += list(_fixed_axis(n2[a], k2[a], s2[a], p2[a][0], count))
    return tuple(axes), k2, s2, p2


@KERNEL_SETTINGS
@given(pool_cases())
def test_max_pool_matches_reference(case):
    rng = np.random.default_rng(case["seed"])
    dtype = case["dtype"]
    x = random_array(rng, (case["n"], case["c"]) + case["sites"], dtype)
    windows, k2, s2, p2 = fixed_windows(case)
    x4 = as4(x)
    y4, arg = max_pool_forward(x4, *windows)
    assert y4.dtype == dtype
    assert_close(y4, ref.max_pool2d(x4, k2, s2, p2), dtype, "y")
    dy = random_array(rng, y4.shape, dtype)
    dx4 = max_pool_backward(dy, arg, x4.shape[2], x4.shape[3])
    assert_close(dx4, ref.max_pool2d_backward(x4, dy, k2, s2, p2), dtype, "dx")


@KERNEL_SETTINGS
@given(pool_cases())
def test_avg_pool_matches_reference(case):
    rng = np.random.default_rng(case["seed"])
    dtype = case["dtype"]
    x = random_array(rng, (case["n"], case["c"]) + case["sites"], dtype)
    windows, k2, s2, p2 = fixed_windows(case)
    r0, r1, c0, c1 = windows
    if case["count_include_pad"]:
        divisor = np.full((r0.size, c0.size), float(k2[0] * k2[1]))
    else:
        divisor = ((r1 - r0)[:, None] * (c1 - c0)[None, :]).astype(float)
    x4 = as4(x)
    y4 = avg_pool_forward(x4, *windows, divisor)
    assert y4.dtype == dtype
    assert_close(y4, ref.avg_pool2d(x4, k2, s2, p2, case["count_include_pad"]), dtype, "y")
    dy = random_array(rng, y4.shape, dtype)
    dx4 = avg_pool_backward(dy, *windows, divisor, x4.shape[2], x4.shape[3])
    assert_close(dx4, ref.avg_pool2d_backward(x4, dy, k2, s2, p2, case["count_include_pad"]), dtype, "dx")


@KERNEL_SETTINGS
@given(st.sampled_from([1, 2]), st.integers(1, 12), st.integers(1, 12), st.integers(1, 6), st.integers(1, 6),
       st.sampled_from(["max", "avg"]), st.sampled_from(DTYPES), st.integers(0, 2**32 - 1))
def test_adaptive_bins_match_reference(nd, height, width, bins_h, bins_w, mode, dtype, seed):
    """The bins of spatial pyramid pooling (and global pooling: one bin), more bins than sites included."""
    rng = np.random.default_rng(seed)
    if nd == 1:
        height, bins_h = 1, 1
    x4 = random_array(rng, (2, 2, height, width), dtype)
    windows = _adaptive_axis(height, bins_h) + _adaptive_axis(width, bins_w)
    dy = random_array(rng, (2, 2, bins_h, bins_w), dtype)
    if mode == "max":
        y4, arg = max_pool_forward(x4, *windows)
        dx4 = max_pool_backward(dy, arg, height, width)
    else:
        r0, r1, c0, c1 = windows
        divisor = ((r1 - r0)[:, None] * (c1 - c0)[None, :]).astype(float)
        y4 = avg_pool_forward(x4, *windows, divisor)
        dx4 = avg_pool_backward(dy, *windows, divisor, height, width)
    assert_close(y4, ref.adaptive_pool2d(x4, (bins_h, bins_w), mode), dtype, "y")
    assert_close(dx4, ref.adaptive_pool2d_backward(x4, dy, (bins_h, bins_w), mode), dtype, "dx")


def test_global_average_is_one_bin():
    rng = np.random.default_rng(3)
    x4 = rng.standard_normal((3, 4, 5, 6))
    windows = _adaptive_axis(5, 1) + _adaptive_axis(6, 1)
    y4 = avg_pool_forward(x4, *windows, np.full((1, 1), 30.0))
    np.testing.assert_allclose(y4[:, :, 0, 0], x4.mean(axis=(2, 3)), rtol=1e-12)
