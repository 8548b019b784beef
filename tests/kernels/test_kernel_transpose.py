"""Transposed convolution kernels against tests/reference.py, and the adjoint identity
<conv(x), d> = <x, conv_transpose(d)> for random shapes, strides, paddings, dilations and groups."""

import numpy as np
from hypothesis import assume, given
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
    window_geometry,
)

from hamiltonian_cnn.kernels.conv import shared_forward
from hamiltonian_cnn.kernels.transpose import transpose_backward, transpose_forward


@st.composite
def transpose_cases(draw):
    """A forward-conv geometry (sites = the transposed output) plus an output padding."""
    nd = draw(st.sampled_from([1, 2]))
    sites, kernel, stride, dilation, pads = draw(window_geometry(nd))
    out_pad = tuple(draw(st.integers(0, max(stride[a], dilation[a]) - 1)) for a in range(nd))
    groups = draw(st.integers(1, 3))
    return dict(
        nd=nd, sites=sites, kernel=kernel, stride=stride, dilation=dilation, pads=pads, out_pad=out_pad,
        groups=groups, c_group=draw(st.integers(1, 3)), o_group=draw(st.integers(1, 3)),
        n=draw(st.integers(1, 3)), act=draw(st.sampled_from(ref.ACTIVATIONS)),
        dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2**32 - 1)), chunks=draw(st.integers(1, 4)),
    )


def transposed_sizes(case, in_sites):
    """PyTorch's output size: (in - 1) s - p0 - p1 + d (k - 1) + output_padding + 1."""
    return tuple((in_sites[a] - 1) * case["stride"][a] - sum(case["pads"][a])
                 + case["dilation"][a] * (case["kernel"][a] - 1) + case["out_pad"][a] + 1
                 for a in range(case["nd"]))


@KERNEL_SETTINGS
@given(transpose_cases())
def test_transpose_forward_backward_match_reference(case):
    rng = np.random.default_rng(case["seed"])
    nd, dtype, groups, act = case["nd"], case["dtype"], case["groups"], case["act"]
    c_t_in, c_t_out = case["o_group"] * groups, case["c_group"] * groups  # transposed layer's channels
    # the input of the transposed conv lives on the output sites of the forward conv
    fwd_out = tuple(ref.conv_out_size(case["sites"][a], case["kernel"][a], case["stride"][a], case["pads"][a],
                                      case["dilation"][a]) for a in range(nd))
    out_sites = transposed_sizes(case, fwd_out)
    assume(all(o >= 1 for o in out_sites))  # a transposed output needs at least one site
    d = random_array(rng, (case["n"], c_t_in) + fwd_out, dtype)
    w = random_array(rng, (c_t_in, case["c_group"]) + case["kernel"], dtype, scale=0.5)
    b = random_array(rng, (c_t_out,), dtype)
    stride2, dil2 = pairs2(nd, case["stride"], 1), pairs2(nd, case["dilation"], 1)
    pads2 = pairs2(nd, case["pads"], (0, 0))
    out2 = pairs2(nd, out_sites, 1)

    f_ref = ref.conv_transpose2d(ref.as2d(d), ref.as2d(w), b, stride2, pads2, dil2, groups, out2)
    d4, w4 = as4(d), as4(w)
    z4 = transpose_forward(d4, w4, b, stride2[0], stride2[1], pads2[0][0], pads2[1][0], dil2[0], dil2[1],
                           groups, out2[0], out2[1], code(act), case["chunks"])
    assert z4.dtype == dtype
    assert_close(z4, ref.activate(f_ref, act), dtype, "z")

    dz = random_array(rng, z4.shape, dtype)
    dd4, dw4, db = transpose_backward(d4, w4, z4, dz, stride2[0], stride2[1], pads2[0][0], pads2[1][0],
                                      dil2[0], dil2[1], groups, code(act), case["chunks"])
    delta = delta_for(f_ref, z4, dz, act)
    dd_ref, dw_ref, db_ref = ref.conv_transpose2d_backward(ref.as2d(d), ref.as2d(w), delta, stride2, pads2, dil2,
                                                           groups)
    assert_close(dd4.reshape(d.shape), dd_ref.reshape(d.shape), dtype, "dd")
    assert_close(dw4.reshape(w.shape), dw_ref.reshape(w.shape), dtype, "dJ")
    assert_close(db, db_ref, dtype, "db")


@KERNEL_SETTINGS
@given(transpose_cases())
def test_adjoint_identity(case):
    """<conv(x, J), d> = <x, conv_transpose(d, J)> with the same J, in float64 to rounding."""
    rng = np.random.default_rng(case["seed"])
    nd, groups = case["nd"], case["groups"]
    c_in, c_out = case["c_group"] * groups, case["o_group"] * groups
    stride2, dil2 = pairs2(nd, case["stride"], 1), pairs2(nd, case["dilation"], 1)
    pads2 = pairs2(nd, case["pads"], (0, 0))
    x4 = as4(rng.standard_normal((case["n"], c_in) + case["sites"]))
    w4 = as4(rng.standard_normal((c_out, case["c_group"]) + case["kernel"]))
    oh = ref.conv_out_size(x4.shape[2], w4.shape[2], stride2[0], pads2[0], dil2[0])
    ow = ref.conv_out_size(x4.shape[3], w4.shape[3], stride2[1], pads2[1], dil2[1])
    conv_x = shared_forward(x4, w4, np.zeros(c_out), stride2[0], stride2[1], pads2[0][0], pads2[1][0],
                            dil2[0], dil2[1], groups, oh, ow, 0, case["chunks"])
    d4 = rng.standard_normal(conv_x.shape)
    convt_d = transpose_forward(d4, w4, np.zeros(c_in), stride2[0], stride2[1], pads2[0][0], pads2[1][0],
                                dil2[0], dil2[1], groups, x4.shape[2], x4.shape[3], 0, case["chunks"])
    assert convt_d.shape == x4.shape
    lhs, rhs = np.vdot(conv_x, d4), np.vdot(x4, convt_d)
    scale = np.abs(conv_x).sum() * np.abs(d4).max() + 1.0
    assert abs(lhs - rhs) <= 1e-12 * scale, (lhs, rhs)
