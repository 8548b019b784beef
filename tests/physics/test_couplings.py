"""The three coupling families: field against scipy, dense J_{IJ,ij}, ties, the seed's example."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import signal

import hamiltonian_cnn as hc


def scipy_shared_field(x, w, b, stride, pads, dilation, groups):
    """Reference: scipy.signal.correlate per (sample, out channel, in channel), then stride."""
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    # a dilated window is the window with zeros between its taps
    wd_shape = w.shape[:2] + tuple((k - 1) * d + 1 for k, d in zip(w.shape[2:], dilation))
    wd = np.zeros(wd_shape)
    wd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)] = w
    n_out, c_g = w.shape[:2]
    o_g = n_out // groups
    out = []
    for n in range(x.shape[0]):
        maps = []
        for o in range(n_out):
            g = o // o_g
            acc = sum(signal.correlate(xp[n, g * c_g + c], wd[o, c], mode="valid") for c in range(c_g))
            acc = acc[tuple(slice(None, None, s) for s in stride)]
            maps.append(acc + (0.0 if b is None else b[o]))
        out.append(maps)
    return np.array(out)


@st.composite
def shared_case(draw):
    nd = draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    sites = tuple(
        draw(st.integers(max(1, (k - 1) * d + 1 - p0 - p1), 7)) for k, d, (p0, p1) in zip(kernel, dilation, pads)
    )
    seed = draw(st.integers(0, 2**31))
    return nd, groups, c_in, c_out, kernel, stride, dilation, pads, sites, seed


@given(shared_case())
def test_shared_field_equals_scipy_correlate(case):
    nd, groups, c_in, c_out, kernel, stride, dilation, pads, sites, seed = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, c_in) + sites)
    w = rng.normal(size=(c_out, c_in // groups) + kernel)
    b = rng.normal(size=c_out)
    coupling = hc.SharedCoupling(w, b, stride=stride, padding=pads, dilation=dilation, groups=groups)
    h = coupling.field(x)
    ref = scipy_shared_field(x, w, b, stride, pads, dilation, groups)
    assert h.shape == ref.shape
    np.testing.assert_allclose(h, ref, rtol=1e-12, atol=1e-12)
    assert coupling.output_shape((c_in,) + sites) == h.shape[1:]


@given(shared_case())
def test_dense_reproduces_field_for_all_three_families(case):
    nd, groups, c_in, c_out, kernel, stride, dilation, pads, sites, seed = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, c_in) + sites)
    shared = hc.SharedCoupling(rng.normal(size=(c_out, c_in // groups) + kernel), rng.normal(size=c_out),
                               stride=stride, padding=pads, dilation=dilation, groups=groups)
    J = shared.dense((c_in,) + sites)
    h = shared.field(x)
    n_out_units = math.prod(h.shape[1:])
    dense_field = x.reshape(3, -1) @ J.reshape(n_out_units, -1).T
    bias = np.broadcast_to(shared.bias.reshape((-1,) + (1,) * nd), h.shape[1:]).reshape(-1)
    np.testing.assert_allclose(dense_field + bias, h.reshape(3, -1), atol=1e-12)

    # every non-zero of J sits inside a window: at most prod(kernel) per (o, I, c)
    per_site = (J.reshape(c_out, -1, c_in, math.prod(sites)) != 0).sum(axis=3)
    assert per_site.max() <= math.prod(kernel)

    # local: a window per site, random
    geo = shared.geometry(sites)
    if dilation == (1,) * nd:
        local = hc.LocalCoupling(rng.normal(size=(c_out,) + geo.out_sites + (c_in,) + kernel),
                                 rng.normal(size=(c_out,) + geo.out_sites), stride=stride, padding=pads,
                                 input_shape=(c_in,) + sites)
        JL = local.dense()
        hl = local.field(x)
        np.testing.assert_allclose(
            x.reshape(3, -1) @ JL.reshape(n_out_units, -1).T + local.bias.reshape(-1), hl.reshape(3, -1), atol=1e-12)
        full = local.to_full()
        np.testing.assert_allclose(full.field(x), hl, atol=1e-12)
        np.testing.assert_array_equal(full.dense(), JL)


@given(shared_case())
def test_project_is_the_adjoint_of_dense(case):
    """<dense(w), T> = <w, project(T)>: the tied gradient is the dense gradient summed over ties."""
    nd, groups, c_in, c_out, kernel, stride, dilation, pads, sites, seed = case
    rng = np.random.default_rng(seed)
    shared = hc.SharedCoupling(rng.normal(size=(c_out, c_in // groups) + kernel), stride=stride, padding=pads,
                               dilation=dilation, groups=groups)
    J = shared.dense((c_in,) + sites)
    T = rng.normal(size=J.shape)
    projected = shared.project(T, (c_in,) + sites)
    assert np.vdot(J, T) == pytest.approx(np.vdot(shared.weight, projected), rel=1e-10, abs=1e-10)


def test_local_with_tied_windows_equals_shared():
    rng = np.random.default_rng(1)
    for shape, kernel, stride, padding in [((2, 9, 8), 3, 2, 1), ((3, 11), 4, 1, "same"), ((1, 5, 5), 2, 3, "full")]:
        nd = len(shape) - 1
        shared = hc.SharedCoupling(rng.normal(size=(3, shape[0]) + (kernel,) * nd), rng.normal(size=3),
                                   stride=stride, padding=padding)
        local = shared.untie(shape)
        x = rng.normal(size=(4,) + shape)
        np.testing.assert_allclose(local.field(x), shared.field(x), atol=1e-12)
        np.testing.assert_allclose(local.dense(), shared.dense(shape), atol=0)
        # gradients: dL/dJ_{IJ,ab} of the local coupling summed over sites IJ is dL/dJ_ab of the shared one
        T = rng.normal(size=local.dense().shape)
        summed = local.project(T).sum(axis=tuple(range(1, 1 + nd)))
        np.testing.assert_allclose(summed, shared.project(T, shape), atol=1e-10)
        assert local.n_params > shared.n_params


def test_seed_worked_example_stride3_window3():
    """Seed 004: s = 3, window alpha in [-1, 1], 4x4 input, 2x2 output: J_{IJ,ij} != 0 exactly for
    |i - 3I| <= 1 and |j - 3J| <= 1 inside the image."""
    w = np.arange(1, 10, dtype=float).reshape(1, 1, 3, 3)
    coupling = hc.SharedCoupling(w, stride=3, padding=1)
    assert coupling.output_shape((1, 4, 4)) == (1, 2, 2)
    J = coupling.dense((1, 4, 4))[0, :, :, 0]
    for I in range(2):
        for Jc in range(2):
            for i in range(4):
                for j in range(4):
                    inside = abs(i - 3 * I) <= 1 and abs(j - 3 * Jc) <= 1
                    assert (J[I, Jc, i, j] != 0) == inside
                    if inside:  # the tap alpha = i - 3I, beta = j - 3J of the shared window
                        assert J[I, Jc, i, j] == w[0, 0, i - 3 * I + 1, j - 3 * Jc + 1]
    # "same" padding gives the same split here
    assert hc.SharedCoupling(w, stride=3, padding="same").geometry((4, 4)).padding == ((1, 1), (1, 1))


def test_parameter_counts_full_local_shared():
    rng = np.random.default_rng(0)
    shared = hc.SharedCoupling(rng.normal(size=(1, 1, 3, 3)), np.zeros(1))
    local = shared.untie((1, 10, 10))
    full = local.to_full()
    assert (shared.n_params, local.n_params, full.n_params) == (3 * 3 + 1, 64 * 9 + 64, 64 * 100 + 64)
    assert full.n_params > local.n_params > shared.n_params
    # seed 002: a 1000 x 1000 image, 10 x 10 windows, 10^6 hidden units
    sites = (1000, 1000)
    assert hc.coupling_params("full", sites, sites, bias=False) == 10**12
    assert hc.coupling_params("local", sites, sites, (10, 10), bias=False) == 10**8
    assert hc.coupling_params("shared", sites, sites, (10, 10), bias=False) == 10**2
    assert hc.coupling_params("shared", sites, sites, (10, 10), out_channels=100, bias=False) == 10**4


def test_one_dimensional_couplings():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 2, 10))
    shared = hc.SharedCoupling(rng.normal(size=(3, 2, 3)), rng.normal(size=3), stride=2, padding="same")
    assert shared.field(x).shape == (2, 3, 5)
    np.testing.assert_allclose(shared.untie((2, 10)).field(x), shared.field(x), atol=1e-12)


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3))).field(np.full((1, 1, 5, 5), np.nan)), "x"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3))).field(np.full((1, 1, 5, 5), np.inf)), "x"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3))).field(np.ones((1, 5, 5))), "x"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3))).field(np.ones((1, 2, 5, 5))), "channel"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3)), stride=0), "stride"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3)), stride=-1), "stride"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 0, 3))), "weight"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3)), padding=-1), "padding"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3)), padding="wide"), "padding"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3)), dilation=0), "dilation"),
        (lambda: hc.SharedCoupling(np.ones((3, 1, 3, 3)), groups=2), "groups"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 5, 5))).field(np.ones((1, 1, 3, 3))), "kernel"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3)), bias=np.ones(3)), "bias"),
        (lambda: hc.SharedCoupling(np.ones((2, 1, 3, 3)) * 1j), "weight"),
        (lambda: hc.SharedCoupling(np.array([["a"]])), "weight"),
        (lambda: hc.LocalCoupling(np.ones((1, 3, 3, 1, 3, 3)), input_shape=(1, 6, 6)), "weight"),
        (lambda: hc.LocalCoupling(np.ones((1, 3, 3, 1, 3, 3))), "input_shape"),
        (lambda: hc.FullCoupling(np.ones((1, 2, 2, 1, 3, 3)), input_shape=(1, 4, 4)), "input_shape"),
        (lambda: hc.FullCoupling(np.ones((1, 2, 2, 1, 3, 3))), "input_shape"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(make, error):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert error in str(info.value)
