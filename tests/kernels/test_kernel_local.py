"""Locally connected (untied) coupling kernels against tests/reference.py, and the tie to convolution."""

import numpy as np
import pytest
from hypothesis import given
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

from hamiltonian_cnn.kernels.conv import shared_forward
from hamiltonian_cnn.kernels.local import local_forward


@st.composite
def local_cases(draw):
    nd = draw(st.sampled_from([1, 2]))
    sites, kernel, stride, _, pads = draw(window_geometry(nd, max_dilation=1))
    return dict(nd=nd, sites=sites, kernel=kernel, stride=stride, pads=pads,
                c_in=draw(st.integers(1, 3)), c_out=draw(st.integers(1, 3)), n=draw(st.integers(1, 3)),
                act=draw(st.sampled_from(ref.ACTIVATIONS)), dtype=draw(st.sampled_from(DTYPES)),
                seed=draw(st.integers(0, 2**32 - 1)))


def out_sites(case):
    return tuple(ref.conv_out_size(case["sites"][a], case["kernel"][a], case["stride"][a], case["pads"][a], 1)
                 for a in range(case["nd"]))


def reference_backward(x4, w6, y4, dy, sh, sw, ph, pw, act):
    """The reference (dx, dJ, db) from the kernels' arguments: delta from their saved output y and
    dL/dy, the start padding (ph, pw) as they take it, the end padding whatever the windows reach."""
    _, oh, ow, _, kh, kw = w6.shape
    height, width = x4.shape[2:]
    pads = ((ph, max(0, (oh - 1) * sh + kh - ph - height)), (pw, max(0, (ow - 1) * sw + kw - pw - width)))
    return ref.local2d_backward(x4, w6, ref.activation_backward(y4, dy, act), (sh, sw), pads)


def to_kernel_layout(w, b, nd):
    """(O, *out_sites, C, *window) -> (O, OH, OW, C, KH, KW) and bias (O, OH, OW)."""
    if nd == 1:
        o, ol, c, k = w.shape
        return np.ascontiguousarray(w.reshape(o, 1, ol, c, 1, k)), np.ascontiguousarray(b.reshape(o, 1, ol))
    return w, b


@KERNEL_SETTINGS
@given(local_cases())
def test_local_forward_matches_reference(case):
    rng = np.random.default_rng(case["seed"])
    nd, dtype, act = case["nd"], case["dtype"], case["act"]
    osites = out_sites(case)
    x = random_array(rng, (case["n"], case["c_in"]) + case["sites"], dtype)
    w = random_array(rng, (case["c_out"],) + osites + (case["c_in"],) + case["kernel"], dtype, scale=0.5)
    b = random_array(rng, (case["c_out"],) + osites, dtype)
    stride2, pads2 = pairs2(nd, case["stride"], 1), pairs2(nd, case["pads"], (0, 0))
    w6, b3 = to_kernel_layout(w, b, nd)

    h_ref = ref.local2d(ref.as2d(x), w6, b3, stride2, pads2)
    x4 = as4(x)
    y4 = local_forward(x4, w6, b3, stride2[0], stride2[1], pads2[0][0], pads2[1][0], code(act))
    assert y4.dtype == dtype
    assert_close(y4, ref.activate(h_ref, act), dtype, "y")


@KERNEL_SETTINGS
@given(local_cases())
def test_tied_local_is_shared_convolution(case):
    """Every window equal to J_ab: the local kernels give the convolution's y and dx, and their dJ, db
    summed over output sites are the convolution's dJ, db (float64)."""
    from hamiltonian_cnn.nn.local import local_conv_backward

    rng = np.random.default_rng(case["seed"])
    nd, act = case["nd"], case["act"]
    osites = out_sites(case)
    stride2, pads2 = pairs2(nd, case["stride"], 1), pairs2(nd, case["pads"], (0, 0))
    x4 = as4(rng.standard_normal((case["n"], case["c_in"]) + case["sites"]))
    w_shared = as4(rng.standard_normal((case["c_out"], case["c_in"]) + case["kernel"]))
    b_shared = rng.standard_normal(case["c_out"])
    oh, ow = pairs2(nd, osites, 1)
    w6 = np.broadcast_to(w_shared[:, None, None], (case["c_out"], oh, ow) + w_shared.shape[1:]).copy()
    b3 = np.broadcast_to(b_shared[:, None, None], (case["c_out"], oh, ow)).copy()

    args = (stride2[0], stride2[1], pads2[0][0], pads2[1][0])
    y_local = local_forward(x4, w6, b3, *args, code(act))
    y_shared = shared_forward(x4, w_shared, b_shared, *args, 1, 1, 1, oh, ow, code(act), 2)
    np.testing.assert_allclose(y_local, y_shared, rtol=1e-12, atol=1e-12)

    dy = rng.standard_normal(y_local.shape)
    dx_l, dw_l, db_l = local_conv_backward(x4, w6, y_local, dy, *args, code(act), 2)
    dx_s, dw_s, db_s = shared_backward(x4, w_shared, y_shared, dy, *args, 1, 1, 1, code(act), 2)
    np.testing.assert_allclose(dx_l, dx_s, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw_l.sum(axis=(1, 2)), dw_s, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db_l.sum(axis=(1, 2)), db_s, rtol=1e-10, atol=1e-10)


@KERNEL_SETTINGS
@given(local_cases(), st.integers(1, 4), st.integers(1, 9), st.sampled_from([None, 1, 2, 3]),
       st.sampled_from([None, 9]))
def test_batch_kernels_match_reference(case, chunks, n, block, c_in):
    """The layer's kernels (per-site products over blocks of samples, pieces of the batch on threads)
    against the reference, its gradients given delta both from the reference field and from the
    kernels' own output y (as the kernels compute it); ``block`` forces several blocks per
    piece (where dJ of later blocks is added to the first's); ``c_in`` 9 takes the input channels
    past tiles.TILE_ROWS, where dx is summed one grid site at a time."""
    from hamiltonian_cnn.nn.local import local_conv_backward, local_conv_forward

    if c_in is not None:
        case = dict(case, c_in=c_in)
    rng = np.random.default_rng(case["seed"])
    nd, dtype, act = case["nd"], case["dtype"], case["act"]
    osites = out_sites(case)
    x = random_array(rng, (n, case["c_in"]) + case["sites"], dtype)
    w = random_array(rng, (case["c_out"],) + osites + (case["c_in"],) + case["kernel"], dtype, scale=0.5)
    b = random_array(rng, (case["c_out"],) + osites, dtype)
    stride2, pads2 = pairs2(nd, case["stride"], 1), pairs2(nd, case["pads"], (0, 0))
    w6, b3 = to_kernel_layout(w, b, nd)
    x4 = as4(x)
    args = (stride2[0], stride2[1], pads2[0][0], pads2[1][0])
    h_ref = ref.local2d(ref.as2d(x), w6, b3, stride2, pads2)
    y4 = local_conv_forward(x4, w6, b3, *args, code(act), chunks, block=block)
    assert y4.dtype == dtype
    assert_close(y4, ref.activate(h_ref, act), dtype, "y")
    dy = random_array(rng, y4.shape, dtype)
    dx4, dw6, db3 = local_conv_backward(x4, w6, y4, dy, *args, code(act), chunks, block=block)
    assert dx4.dtype == dw6.dtype == db3.dtype == dtype
    dx_ref, dw_ref, db_ref = ref.local2d_backward(ref.as2d(x), w6, delta_for(h_ref, y4, dy, act), stride2, pads2)
    assert_close(dx4, dx_ref, dtype, "dx")
    assert_close(dw6, dw_ref, dtype, "dJ")
    assert_close(db3, db_ref, dtype, "db")
    from_y = reference_backward(x4, w6, y4, dy, *args, act)
    for got, want, what in zip((dx4, dw6, db3), from_y, ("dx", "dJ", "db")):
        assert_close(got, want, dtype, f"{what} vs the reference from y")


@pytest.mark.parametrize("sites, kernel, stride, pads", [
    ((1, 29), (1, 5), (1, 1), (0, 2)),     # a 1D chain: handed over as one column of rows
    ((11, 9), (3, 3), (1, 1), (1, 1)),
    ((12, 10), (3, 2), (2, 1), (1, 0)),    # windows overlap along rows, by stride 2
    ((13, 8), (2, 3), (3, 2), (0, 1)),     # stride 3 > window 2: grid rows no window reaches
    ((11, 7), (4, 3), (3, 2), (0, 0)),     # the last input row lies past the last window
])
@pytest.mark.parametrize("chunks", [2, 3, 5])
@pytest.mark.parametrize("c_in", [2, 9])
def test_row_pieces_match_one_piece(sites, kernel, stride, pads, chunks, c_in):
    """Cut into pieces of site rows (each recomputing dx for the rows it shares with its
    neighbours), a call gives what the plain loops (forward) and the reference (backward) give,
    for every number of pieces; with few input channels dx is summed per output site, with many
    (>= tiles.TILE_ROWS) per grid site."""
    from hamiltonian_cnn.nn.local import local_conv_backward, local_conv_forward

    rng = np.random.default_rng(sum(sites) + chunks + c_in)
    (h, w), (kh, kw), (sh, sw), (ph, pw) = sites, kernel, stride, pads
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    x4 = rng.standard_normal((5, c_in, h, w))
    w6 = rng.standard_normal((3, oh, ow, c_in, kh, kw)) * 0.5
    b3 = rng.standard_normal((3, oh, ow))
    y4 = local_conv_forward(x4, w6, b3, sh, sw, ph, pw, code("tanh"), chunks, block=2)
    np.testing.assert_allclose(y4, local_forward(x4, w6, b3, sh, sw, ph, pw, code("tanh")), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y4.shape)
    got = local_conv_backward(x4, w6, y4, dy, sh, sw, ph, pw, code("tanh"), chunks, block=2)
    for g, want, what in zip(got, reference_backward(x4, w6, y4, dy, sh, sw, ph, pw, "tanh"), ("dx", "dJ", "db")):
        np.testing.assert_allclose(g, want, rtol=1e-11, atol=1e-11, err_msg=what)


def test_backward_reuses_the_forward_layout_only_for_its_x(monkeypatch):
    """The backward takes the input the forward laid out in the layer's scratch only for the same x
    cut into the same pieces, whichever thread runs which piece; otherwise it lays x out again."""
    import hamiltonian_cnn.nn.local as local_nn

    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal((2, 6, 9, 1, 17))
    w6 = rng.standard_normal((4, 1, 17, 9, 1, 3)) * 0.5
    b3 = rng.standard_normal((4, 1, 17))
    args = (1, 1, 0, 1, code("sigmoid"))

    def plain(x4, y4, dy):
        return reference_backward(x4, w6, y4, dy, *args[:4], "sigmoid")

    real = local_nn.run_chunks
    swap = {"on": False}

    def run_chunks(piece, n, chunks, per_thread=None):  # the pieces on the other threads' slots
        if not swap["on"]:
            return real(piece, n, chunks, per_thread=per_thread)
        cuts = [t * n // chunks for t in range(chunks + 1)]
        return [piece(chunks - 1 - t, t, cuts[t], cuts[t + 1]) for t in reversed(range(chunks))]

    monkeypatch.setattr(local_nn, "run_chunks", run_chunks)
    store = {}
    y1 = local_nn.local_conv_forward(x1, w6, b3, *args, 2, store)
    y2 = local_nn.local_conv_forward(x2, w6, b3, *args, 2, store)  # the scratch now holds x2
    dy = rng.standard_normal(y1.shape)
    for got, want in zip(local_nn.local_conv_backward(x1, w6, y1, dy, *args, 2, store), plain(x1, y1, dy)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    y2 = local_nn.local_conv_forward(x2, w6, b3, *args, 2, store)
    swap["on"] = True
    for got, want in zip(local_nn.local_conv_backward(x2, w6, y2, dy, *args, 2, store), plain(x2, y2, dy)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    y2 = local_nn.local_conv_forward(x2, w6, b3, *args, 2, store)
    for got, want in zip(local_nn.local_conv_backward(x2, w6, y2, dy, *args, 3, store), plain(x2, y2, dy)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
