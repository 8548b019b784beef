"""The sparse control: random non-local windows of a window's fan-in (sparsity without locality)."""

import sys
from pathlib import Path

import numpy as np
import pytest

import hamiltonian_cnn as hc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import check_gradients  # noqa: E402

F64 = dict(dtype=np.float64, seed=1)


def test_random_wiring_draws_distinct_sites_per_output_site():
    index = hc.physics.random_wiring((6, 5), (3, 3), 9, seed=4)
    assert index.shape == (9, 9) and index.dtype == np.int64
    assert all(len(set(row)) == 9 for row in index)
    assert index.min() >= 0 and index.max() < 30
    np.testing.assert_array_equal(index, hc.physics.random_wiring((6, 5), (3, 3), 9, seed=4))
    assert not np.array_equal(index, hc.physics.random_wiring((6, 5), (3, 3), 9, seed=5))
    with pytest.raises(ValueError, match="fan_in"):
        hc.physics.random_wiring((2, 2), (1, 1), 5, seed=0)


def test_sparse_windows_are_not_local():
    """On a 16x16 lattice, a 3x3 window's sites lie within distance 2 of each other; random ones do not."""
    index = hc.physics.random_wiring((16, 16), (16, 16), 9, seed=0)
    rows, cols = np.divmod(index, 16)
    spread = np.maximum(np.ptp(rows, axis=1), np.ptp(cols, axis=1))
    assert np.mean(spread > 2) > 0.9


@pytest.mark.parametrize("input_size, kernel, stride, padding", [
    ((5, 4), 3, 1, "same"), ((9,), 3, 2, 0), ((6, 6), (2, 3), (2, 1), 1), ((7,), 5, 1, "circular"),
])
def test_sparse_layer_field_is_its_dense_coupling(input_size, kernel, stride, padding):
    layer = hc.nn.SparseCoupled(2, 3, kernel, stride=stride, padding=padding, input_size=input_size,
                                activation=None, **F64)
    layer.params["b"][...] = np.random.default_rng(0).standard_normal(layer.params["b"].shape)
    x = np.random.default_rng(1).standard_normal((4, 2) + input_size)
    y = layer.forward(x)
    coupling = layer.coupling()
    J = coupling.dense()
    letters = "IJ"[:len(input_size)]
    inputs = "ij"[:len(input_size)]
    h = np.einsum(f"o{letters}c{inputs},nc{inputs}->no{letters}", J, x) + coupling.bias
    np.testing.assert_allclose(y, h, atol=1e-12)
    np.testing.assert_allclose(coupling.field(x), h, atol=1e-12)
    # each output site couples to exactly K input sites per channel pair
    K = int(np.prod(layer.kernel_size))
    assert np.all((J != 0).reshape(3, -1, 2, int(np.prod(input_size))).sum(axis=-1) == K)
    T = np.random.default_rng(2).standard_normal(J.shape)
    np.testing.assert_allclose(np.sum(J * T), np.sum(coupling.weight * coupling.project(T)), rtol=1e-12)


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", None])
@pytest.mark.parametrize("make, shape", [
    (lambda a: hc.nn.SparseCoupled(2, 3, 3, padding="same", input_size=(5, 4), activation=a, **F64), (2, 5, 4)),
    (lambda a: hc.nn.SparseCoupled(3, 2, 3, stride=2, input_size=9, activation=a, bias=False, **F64), (3, 9)),
], ids=["2d", "1d"])
def test_sparse_layer_gradients(make, shape, act):
    check_gradients(make(act), shape)


def test_sparse_has_the_local_parameter_count_and_float32_fields():
    local = hc.models.build("local", (1, 8, 8), 10)
    sparse = hc.models.build("sparse", (1, 8, 8), 10)
    assert sparse.n_params == local.n_params
    X = np.random.default_rng(3).random((5, 1, 8, 8)).astype(np.float32)
    assert sparse.layers[0].forward(X).dtype == np.float32


def test_wiring_is_kept_by_save_and_load(tmp_path):
    model = hc.models.build("sparse", (1, 12), 3, seed=7)
    X = np.random.default_rng(4).random((6, 1, 12)).astype(np.float32)
    model.save(tmp_path / "sparse.npz")
    loaded = hc.models.load(tmp_path / "sparse.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.layers[0].index, model.layers[0].index)


def test_sparse_coupling_validates_its_index():
    w = np.zeros((2, 3, 1, 4))
    with pytest.raises(ValueError, match="index"):
        hc.SparseCoupling(w, np.zeros((3, 5), np.int64), input_shape=(1, 6))
    with pytest.raises(ValueError, match="index"):
        hc.SparseCoupling(w, np.full((3, 4), 6), input_shape=(1, 6))
    with pytest.raises(TypeError, match="input_shape"):
        hc.SparseCoupling(w, np.zeros((3, 4), np.int64))


def test_sparse_model_trains_above_chance_on_digits():
    X, y, Xt, yt = hc.data.load("digits")
    model = hc.models.build("sparse", X.shape[1:], 10, seed=0)
    model.fit(X[:600], y[:600], epochs=8, seed=0, progress=False)
    assert model.score(Xt, yt) > 0.6
