"""Periodic boundaries (padding="circular"): wrap/fold adjoint, fields against scipy.ndimage's
wrap mode and the modular-index definition, dense/project, gradients, exact shift invariance."""

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import hamiltonian_cnn as hc
from hamiltonian_cnn.physics.boundary import fold, interior, wrap
from hamiltonian_cnn.physics.formulas import inside_fraction, kernel_geometry, make_geometry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import check_gradients  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(sites=st.lists(st.integers(1, 6), min_size=1, max_size=2), data=st.data())
def test_fold_is_the_adjoint_of_wrap(sites, data):
    kernel = [data.draw(st.integers(1, 2 * n + 1)) for n in sites]  # windows wider than the lattice too
    geo = make_geometry(sites, kernel, 1, "circular", 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3) + tuple(sites))
    xw = wrap(x, geo)
    assert xw.shape[2:] == interior(geo).in_sites
    g = rng.standard_normal(xw.shape)
    np.testing.assert_allclose(np.sum(xw * g), np.sum(x * fold(g, geo)), rtol=1e-12)


def test_wrap_copies_the_opposite_edge():
    geo = make_geometry((4,), 3, 1, "circular", 1)
    x = np.arange(4.0).reshape(1, 1, 4)
    np.testing.assert_array_equal(wrap(x, geo)[0, 0], [3, 0, 1, 2, 3, 0])


def modular_field(x, w, b, stride, p0):
    """The definition: h_{o,I} = sum_{c,a} J_{o,c,a} x_{c, (s I + a - p0) mod n} + b_o, on a 1D chain."""
    n = x.shape[-1]
    n_out = -(-n // stride)
    h = np.zeros((x.shape[0], w.shape[0], n_out))
    for i in range(n_out):
        for a in range(w.shape[-1]):
            h[:, :, i] += np.einsum("oc,nc->no", w[:, :, a], x[:, :, (stride * i + a - p0) % n])
    return h + b[None, :, None]


@pytest.mark.parametrize("n, k, stride", [(7, 3, 1), (8, 4, 1), (9, 3, 2), (5, 5, 3), (3, 5, 1)])
def test_shared_field_is_the_modular_definition(n, k, stride):
    rng = np.random.default_rng(n * k)
    x, w, b = rng.standard_normal((2, 3, n)), rng.standard_normal((2, 3, k)), rng.standard_normal(2)
    coupling = hc.SharedCoupling(w, b, stride=stride, padding="circular")
    p0 = coupling.geometry((n,)).padding[0][0]
    np.testing.assert_allclose(coupling.field(x), modular_field(x, w, b, stride, p0), atol=1e-12)


def test_shared_field_agrees_with_scipy_ndimage_wrap():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 1, 6, 7)), rng.standard_normal((1, 1, 3, 5))
    h = hc.SharedCoupling(w, padding="circular").field(x)
    np.testing.assert_allclose(h[0, 0], ndimage.correlate(x[0, 0], w[0, 0], mode="wrap"), atol=1e-12)


@pytest.mark.parametrize("family", ["shared", "local"])
def test_dense_and_project_wrap_around(family):
    rng = np.random.default_rng(2)
    shape = (2, 5, 4)
    shared = hc.SharedCoupling(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), padding="circular")
    coupling = shared if family == "shared" else shared.untie(shape)
    assert coupling.geometry(shape[1:]).circular if family == "shared" else coupling.geo.circular
    x = rng.standard_normal((4,) + shape)
    J = coupling.dense(shape)
    b = coupling.bias.reshape((3, 1, 1) if family == "shared" else (3, 5, 4))
    np.testing.assert_allclose(coupling.field(x), np.einsum("oIJcij,ncij->noIJ", J, x) + b, atol=1e-12)
    # every output site sees a full window: each row of J has 2 * 9 non-zeros (no tap on padding)
    assert np.all((J != 0).reshape(3, 20, -1).sum(axis=-1) == 18)
    T = rng.standard_normal(J.shape)
    np.testing.assert_allclose(np.sum(J * T), np.sum(coupling.weight * coupling.project(T, shape)), rtol=1e-12)


def test_untied_circular_coupling_has_the_same_field():
    rng = np.random.default_rng(3)
    shared = hc.SharedCoupling(rng.standard_normal((2, 1, 3)), rng.standard_normal(2), stride=2, padding="circular")
    x = rng.standard_normal((3, 1, 9))
    np.testing.assert_allclose(shared.untie((1, 9)).field(x), shared.field(x), atol=1e-12)


F64 = dict(dtype=np.float64, seed=1)


@pytest.mark.parametrize("make, input_shape", [
    (lambda: hc.nn.SharedConv2d(2, 3, (3, 2), padding="circular", activation="sigmoid", **F64), (2, 4, 5)),
    (lambda: hc.nn.SharedConv2d(2, 2, 3, stride=2, padding="circular", dilation=(1, 2), activation="tanh", **F64),
     (2, 5, 6)),
    (lambda: hc.nn.SharedConv1d(2, 3, 5, stride=2, padding="circular", activation=None, **F64), (2, 7)),
    (lambda: hc.nn.LocalConv2d(2, 3, 3, stride=(2, 1), padding="circular", input_size=(5, 4), **F64), (2, 5, 4)),
    (lambda: hc.nn.LocalConv1d(2, 3, 3, padding="circular", input_size=6, activation="relu", **F64), (2, 6)),
], ids=["shared2d", "shared2d-strided", "shared1d", "local2d", "local1d"])
def test_circular_layers_gradients(make, input_shape):
    check_gradients(make(), input_shape)


def test_circular_layer_field_is_its_coupling():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 6, 5))
    for layer in (hc.nn.SharedConv2d(2, 3, 3, padding="circular", activation=None, **F64),
                  hc.nn.LocalConv2d(2, 3, 3, padding="circular", input_size=(6, 5), activation=None, **F64)):
        np.testing.assert_allclose(layer.forward(x), layer.coupling().field(x), atol=1e-12)


def roll(x, shift):
    return np.roll(x, shift, axis=tuple(range(2, x.ndim)))


@pytest.mark.parametrize("input_shape, shift", [((1, 8, 8), (2, 3)), ((1, 12), (5,))])
def test_shared_network_is_exactly_invariant_to_circular_shifts(input_shape, shift):
    """Circular padding, no strided pooling, a global-average readout: f(T x) = f(x) for shared, and
    not for the families that untie or scatter the windows."""
    X = np.random.default_rng(5).random((6,) + input_shape)
    gaps = {}
    for family in ("shared", "local", "sparse", "full"):
        model = hc.models.build(family, input_shape, 10, padding="circular", pool=None, head="gap",
                                dtype=np.float64, seed=3)
        gaps[family] = np.abs(model.predict_proba(roll(X, shift)) - model.predict_proba(X)).max()
    assert gaps["shared"] < 1e-12
    for family in ("local", "sparse", "full"):
        assert gaps[family] > 1e-5, (family, gaps)


def test_shared_layer_is_equivariant_to_circular_shifts():
    layer = hc.nn.SharedConv2d(1, 2, 3, padding="circular", **F64)
    x = np.random.default_rng(6).random((2, 1, 7, 6))
    np.testing.assert_allclose(layer.forward(roll(x, (3, -2))), roll(layer.forward(x), (3, -2)), atol=1e-14)


def test_circular_geometry_bookkeeping():
    geo = make_geometry((5, 4), 3, 1, "circular", 1)
    assert geo.circular and geo.out_sites == (5, 4) and geo.padding == ((1, 1), (1, 1))
    assert inside_fraction(geo) == 1.0
    assert inside_fraction(make_geometry((5, 4), 3, 1, "same", 1)) < 1.0
    assert hc.output_size(9, 3, stride=2, padding="circular") == 5
    with pytest.raises(ValueError, match="circular"):
        kernel_geometry(geo)  # the kernels zero-pad: a circular geometry must be wrapped first


@pytest.mark.parametrize("make", [lambda: hc.nn.MaxPool2d(2, padding="circular"),
                                  lambda: hc.nn.AvgPool1d(3, padding="circular")])
def test_pools_refuse_circular_padding(make):
    with pytest.raises(ValueError, match="padding"):
        make()


def test_circular_model_saves_and_loads(tmp_path):
    model = hc.models.build("local", (1, 8, 8), 10, padding="circular", seed=2)
    X = np.random.default_rng(7).random((4, 1, 8, 8)).astype(np.float32)
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(hc.models.load(tmp_path / "m.npz").predict_proba(X), model.predict_proba(X))
