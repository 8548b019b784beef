"""Shared convolution kernels (forward fused with bias + activation, backward) against tests/reference.py."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import (
    DTYPES,
    KERNEL_SETTINGS,
    as4,
    assert_close,
    code,
    delta_for,
    pairs2,
    random_array,
    ref,
    shared_backward,
    window_geometry,
)
from scipy import signal

from hamiltonian_cnn.kernels.conv import block_size, shared_forward
from hamiltonian_cnn.kernels.transpose import transpose_backward, transpose_forward


@st.composite
def conv_cases(draw):
    nd = draw(st.sampled_from([1, 2]))
    sites, kernel, stride, dilation, pads = draw(window_geometry(nd))
    groups = draw(st.integers(1, 3))
    c_group = draw(st.integers(1, 3))
    o_group = draw(st.integers(1, 3))
    return dict(
        nd=nd, sites=sites, kernel=kernel, stride=stride, dilation=dilation, pads=pads, groups=groups,
        c_group=c_group, o_group=o_group, n=draw(st.integers(1, 3)),
        act=draw(st.sampled_from(ref.ACTIVATIONS)), dtype=draw(st.sampled_from(DTYPES)),
        bias=draw(st.booleans()), seed=draw(st.integers(0, 2**32 - 1)), chunks=draw(st.integers(1, 4)),
    )


def run_kernels(x, w, b, stride2, pads2, dil2, groups, act, dy=None, chunks=2):
    """Call the kernels on 2D (H = 1 for 1D) arrays; returns y (and grads if dy is given)."""
    x4, w4 = as4(x), as4(w)
    oh = ref.conv_out_size(x4.shape[2], w4.shape[2], stride2[0], pads2[0], dil2[0])
    ow = ref.conv_out_size(x4.shape[3], w4.shape[3], stride2[1], pads2[1], dil2[1])
    y4 = shared_forward(x4, w4, b, stride2[0], stride2[1], pads2[0][0], pads2[1][0], dil2[0], dil2[1],
                        groups, oh, ow, code(act), chunks)
    if dy is None:
        return y4
    grads = shared_backward(x4, w4, y4, np.ascontiguousarray(dy.reshape(y4.shape)), stride2[0], stride2[1],
                            pads2[0][0], pads2[1][0], dil2[0], dil2[1], groups, code(act), chunks)
    return y4, grads


@KERNEL_SETTINGS
@given(conv_cases())
def test_shared_forward_backward_match_reference(case):
    rng = np.random.default_rng(case["seed"])
    nd, dtype, groups, act = case["nd"], case["dtype"], case["groups"], case["act"]
    c_in, c_out = case["c_group"] * groups, case["o_group"] * groups
    x = random_array(rng, (case["n"], c_in) + case["sites"], dtype)
    w = random_array(rng, (c_out, case["c_group"]) + case["kernel"], dtype, scale=0.5)
    b = random_array(rng, (c_out,), dtype) if case["bias"] else np.zeros(c_out, dtype)
    stride2 = pairs2(nd, case["stride"], 1)
    dil2 = pairs2(nd, case["dilation"], 1)
    pads2 = pairs2(nd, case["pads"], (0, 0))

    h_ref = ref.conv2d(ref.as2d(x), ref.as2d(w), b, stride2, pads2, dil2, groups)
    dy = random_array(rng, h_ref.shape, dtype)
    y4, (dx4, dw4, db) = run_kernels(x, w, b, stride2, pads2, dil2, groups, act, dy, case["chunks"])
    assert y4.dtype == dtype and dx4.dtype == dtype and dw4.dtype == dtype and db.dtype == dtype
    assert_close(y4, ref.activate(h_ref, act), dtype, "y")

    delta = delta_for(h_ref, y4, dy, act)
    dx_ref, dw_ref, db_ref = ref.conv2d_backward(ref.as2d(x), ref.as2d(w), delta, stride2, pads2, dil2, groups)
    assert_close(dx4.reshape(x.shape), dx_ref.reshape(x.shape), dtype, "dx")
    assert_close(dw4.reshape(w.shape), dw_ref.reshape(w.shape), dtype, "dJ")
    assert_close(db, db_ref, dtype, "db")


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_reference_conv_agrees_with_scipy(height, width, kh, kw, stride, dilation, seed):
    """The reference itself, checked against scipy: stride 1 is scipy.signal.correlate2d (valid and
    full); a strided conv is the stride-1 conv subsampled; a dilated conv is the conv with a kernel
    spread out by zeros."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((height + kh - 1, width + kw - 1))
    w = rng.standard_normal((kh, kw))
    valid = ref.conv2d(x[None, None], w[None, None])[0, 0]
    np.testing.assert_allclose(valid, signal.correlate2d(x, w, mode="valid"), rtol=1e-12, atol=1e-12)
    full = ref.conv2d(x[None, None], w[None, None], pads=((kh - 1, kh - 1), (kw - 1, kw - 1)))[0, 0]
    np.testing.assert_allclose(full, signal.correlate2d(x, w, mode="full"), rtol=1e-12, atol=1e-12)
    strided = ref.conv2d(x[None, None], w[None, None], stride=(stride, stride))[0, 0]
    np.testing.assert_allclose(strided, valid[::stride, ::stride], rtol=1e-12, atol=1e-12)
    spread = np.zeros(((kh - 1) * dilation + 1, (kw - 1) * dilation + 1))
    spread[::dilation, ::dilation] = w
    if spread.shape[0] <= x.shape[0] and spread.shape[1] <= x.shape[1]:
        dilated = ref.conv2d(x[None, None], w[None, None], dilation=(dilation, dilation))[0, 0]
        np.testing.assert_allclose(dilated, signal.correlate2d(x, spread, mode="valid"), rtol=1e-12, atol=1e-12)


def test_groups_are_independent_convolutions():
    """groups = g is g separate convolutions on channel blocks (depthwise when g = channels)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((4, 1, 3, 3))
    b = np.zeros(4)
    y = run_kernels(x, w, b, (1, 1), ((1, 1), (1, 1)), (1, 1), 4, None)
    for c in range(4):
        alone = run_kernels(np.ascontiguousarray(x[:, c:c + 1]), np.ascontiguousarray(w[c:c + 1]), b[:1],
                            (1, 1), ((1, 1), (1, 1)), (1, 1), 1, None)
        np.testing.assert_allclose(y[:, c:c + 1], alone, rtol=1e-12, atol=1e-12)


def test_large_fields_do_not_overflow():
    """Fields up to 1e4 in size: every activation stays finite, and so do the gradients."""
    rng = np.random.default_rng(1)
    for dtype in DTYPES:
        x = random_array(rng, (2, 2, 5, 5), dtype, scale=1e3)
        w = random_array(rng, (3, 2, 3, 3), dtype, scale=3.0)
        b = np.zeros(3, dtype)
        for act in ref.ACTIVATIONS:
            y, grads = run_kernels(x, w, b, (1, 1), ((0, 0), (0, 0)), (1, 1), 1, act, np.ones((2, 3, 3, 3), dtype))
            h = ref.conv2d(x, w, b)
            assert np.abs(h).max() > 1e3
            assert np.all(np.isfinite(y)), act
            assert all(np.all(np.isfinite(g)) for g in grads), act


def test_memory_blocks_and_chunks_agree_with_one_sample_at_a_time():
    """Inputs so large that every sample is its own block of columns (BLOCK_ENTRIES), cut into 1 or 2
    chunks: the batch gives exactly what each sample gives alone, for the convolution and its
    transpose, forward and backward."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8, 180, 180)).astype(np.float32)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32) * 0.3
    b = rng.standard_normal(4).astype(np.float32)
    assert block_size(8 * 9, 178 * 178) == 1
    args = (1, 1, 0, 0, 1, 1, 1)
    singles = [shared_forward(x[n:n + 1], w, b, *args, 178, 178, code("tanh"), 1) for n in range(3)]
    dy = rng.standard_normal((3, 4, 178, 178)).astype(np.float32)
    single_grads = [shared_backward(x[n:n + 1], w, singles[n], dy[n:n + 1], *args, code("tanh"), 1) for n in range(3)]
    z_singles = [transpose_forward(dy[n:n + 1], w, np.zeros(8, np.float32), *args, 180, 180, code(None), 1)
                 for n in range(3)]
    for chunks in (1, 2):
        y = shared_forward(x, w, b, *args, 178, 178, code("tanh"), chunks)
        np.testing.assert_array_equal(y, np.concatenate(singles))
        dx, dw, db = shared_backward(x, w, y, dy, *args, code("tanh"), chunks)
        np.testing.assert_array_equal(dx, np.concatenate([g[0] for g in single_grads]))
        np.testing.assert_allclose(dw, sum(g[1] for g in single_grads), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(db, sum(g[2] for g in single_grads), rtol=1e-4, atol=1e-3)
        z = transpose_forward(dy, w, np.zeros(8, np.float32), *args, 180, 180, code(None), chunks)
        np.testing.assert_array_equal(z, np.concatenate(z_singles))
        dd, dwt, _ = transpose_backward(dy, w, z, x, *args, code(None), chunks)
        dd_singles = [transpose_backward(dy[n:n + 1], w, z[n:n + 1], x[n:n + 1], *args, code(None), 1)
                      for n in range(3)]
        np.testing.assert_array_equal(dd, np.concatenate([g[0] for g in dd_singles]))
        np.testing.assert_allclose(dwt, sum(g[1] for g in dd_singles), rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------- the two paths the layers choose between


@st.composite
def path_cases(draw):
    case = draw(conv_cases())
    case["n"] = draw(st.integers(1, 20))  # several pieces and blocks of samples, blocks of fewer and of 8+
    case["strided"] = draw(st.booleans())
    if not case["strided"]:
        case["stride"] = (1,) * case["nd"]
        from hamiltonian_cnn.physics.formulas import make_geometry

        # the padding was drawn for the drawn stride: keep it valid for stride 1
        geo = make_geometry(case["sites"], case["kernel"], case["stride"], case["pads"], case["dilation"])
        case["pads"] = geo.padding
    return case


@KERNEL_SETTINGS
@given(path_cases())
def test_direct_and_im2col_paths_match_reference(case):
    """The layer's two kernels (direct: stride 1; im2col + BLAS: any stride), run through the drivers
    that cut the batch into pieces on threads, give the reference's y, dx, dJ, db; where both can run
    (stride 1) they agree with each other."""
    from hamiltonian_cnn.nn.conv import (
        conv_method,
        direct_conv_backward,
        direct_conv_forward,
        im2col_conv_backward,
        im2col_conv_forward,
    )

    rng = np.random.default_rng(case["seed"])
    nd, dtype, groups, act = case["nd"], case["dtype"], case["groups"], case["act"]
    c_in, c_out = case["c_group"] * groups, case["o_group"] * groups
    x = random_array(rng, (case["n"], c_in) + case["sites"], dtype)
    w = random_array(rng, (c_out, case["c_group"]) + case["kernel"], dtype, scale=0.5)
    b = random_array(rng, (c_out,), dtype) if case["bias"] else np.zeros(c_out, dtype)
    stride2 = pairs2(nd, case["stride"], 1)
    dil2 = pairs2(nd, case["dilation"], 1)
    pads2 = pairs2(nd, case["pads"], (0, 0))
    x4, w4 = as4(x), as4(w)
    h_ref = ref.conv2d(ref.as2d(x), ref.as2d(w), b, stride2, pads2, dil2, groups)
    oh, ow = h_ref.shape[2:]
    dy = random_array(rng, h_ref.shape, dtype)
    geometry = (pads2[0][0], pads2[1][0], dil2[0], dil2[1], groups)
    results = {}
    results["im2col"] = (im2col_conv_forward(x4, w4, b, *stride2, *geometry, code(act), oh, ow, case["chunks"]),)
    results["im2col"] += im2col_conv_backward(x4, w4, results["im2col"][0], dy, *stride2, *geometry, code(act),
                                              case["chunks"])
    assert conv_method(case["stride"]) == ("im2col" if case["strided"] and max(case["stride"]) > 1 else "direct")
    if max(case["stride"]) == 1:
        y = direct_conv_forward(x4, w4, b, *geometry, code(act), oh, ow, case["chunks"])
        results["direct"] = (y,) + direct_conv_backward(x4, w4, y, dy, *geometry, code(act), case["chunks"])
    delta = None
    for name, (y4, dx4, dw4, db) in results.items():
        assert y4.dtype == dx4.dtype == dw4.dtype == db.dtype == dtype, name
        assert_close(y4, ref.activate(h_ref, act), dtype, f"{name} y")
        if delta is None:
            delta = delta_for(h_ref, y4, dy, act)
            dx_ref, dw_ref, db_ref = ref.conv2d_backward(ref.as2d(x), ref.as2d(w), delta, stride2, pads2, dil2, groups)
        assert_close(dx4, dx_ref, dtype, f"{name} dx")
        assert_close(dw4, dw_ref, dtype, f"{name} dJ")
        assert_close(db, db_ref, dtype, f"{name} db")
    if "direct" in results:
        for got, want in zip(results["direct"], results["im2col"]):
            assert_close(got, want, dtype, "direct vs im2col")


@pytest.mark.parametrize("shape", [(64, 1, 6, (28, 28), 5, 0), (64, 6, 16, (12, 12), 5, 0), (128, 1, 16, (8, 8), 3, 1),
                                   (4, 32, 64, (32, 32), 3, 1), (100, 25, 25, (1, 40), (1, 5), (0, 2)),
                                   (32, 16, 32, (4, 4), 3, 1), (7, 3, 5, (9, 11), (2, 4), ((2, 0), (1, 3)))])
def test_direct_path_on_benchmark_shapes(shape):
    """The shapes the benchmark times (and a lopsided one): many samples side by side in blocks, odd
    channel counts, long rows; float64 against the reference to 1e-10."""
    from hamiltonian_cnn.nn.conv import direct_conv_backward, direct_conv_forward

    n, c_in, c_out, sites, k, pad = shape
    k = k if isinstance(k, tuple) else (k, k)
    pads = pad if isinstance(pad, tuple) and isinstance(pad[0], tuple) else (
        ((pad[0], pad[0]), (pad[1], pad[1])) if isinstance(pad, tuple) else ((pad, pad), (pad, pad)))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c_in) + sites)
    w = rng.standard_normal((c_out, c_in) + k) * 0.3
    b = rng.standard_normal(c_out)
    h = ref.conv2d(x, w, b, (1, 1), pads)
    dy = rng.standard_normal(h.shape)
    y = direct_conv_forward(x, w, b, pads[0][0], pads[1][0], 1, 1, 1, code("sigmoid"), *h.shape[2:], 2)
    assert_close(y, ref.activate(h, "sigmoid"), np.float64, "y")
    dx, dw, db = direct_conv_backward(x, w, y, dy, pads[0][0], pads[1][0], 1, 1, 1, code("sigmoid"), 2)
    dx_ref, dw_ref, db_ref = ref.conv2d_backward(x, w, dy * ref.activation_derivative(h, "sigmoid"), (1, 1), pads)
    assert_close(dx, dx_ref, np.float64, "dx")
    assert_close(dw, dw_ref, np.float64, "dJ")
    assert_close(db, db_ref, np.float64, "db")


def test_pieces_on_threads_give_the_same_result_as_one():
    """Cutting the batch into 1, 2 or 5 pieces (run on threads) changes nothing but the order in which
    the pieces' dJ, db are added: y and dx are identical, dJ and db agree to rounding."""
    from hamiltonian_cnn.nn.conv import direct_conv_backward, direct_conv_forward

    rng = np.random.default_rng(11)
    x = rng.standard_normal((23, 4, 10, 9)).astype(np.float32)
    w = (rng.standard_normal((6, 4, 3, 3)) * 0.3).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    dy = rng.standard_normal((23, 6, 10, 9)).astype(np.float32)
    runs = []
    for chunks in (1, 2, 5):
        y = direct_conv_forward(x, w, b, 1, 1, 1, 1, 1, code("tanh"), 10, 9, chunks)
        runs.append((y,) + direct_conv_backward(x, w, y, dy, 1, 1, 1, 1, 1, code("tanh"), chunks))
    for other in runs[1:]:
        np.testing.assert_array_equal(other[0], runs[0][0])
        np.testing.assert_array_equal(other[1], runs[0][1])
        np.testing.assert_allclose(other[2], runs[0][2], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(other[3], runs[0][3], rtol=1e-5, atol=1e-4)
