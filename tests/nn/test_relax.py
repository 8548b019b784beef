"""Relaxing the ties: Model.untie() and Model.to_full() compute the identical function and keep training."""

import numpy as np
import pytest

import hamiltonian_cnn as hc
from hamiltonian_cnn.nn.relax import full_layer

F64 = dict(dtype=np.float64, seed=1)


def trained(coupling, input_shape, **arch):
    """A float64 model fitted for one epoch on random data, so that offsets and biases are not at their init."""
    rng = np.random.default_rng(0)
    model = hc.models.build(coupling, input_shape, 10, dtype=np.float64, seed=1, **arch)
    X = rng.random((40,) + input_shape)
    model.fit(X, rng.integers(0, 10, 40), epochs=1, seed=0, progress=False)
    return model, rng.random((12,) + input_shape)


CASES = [
    ("shared", (1, 8, 8), {}),
    ("shared", (2, 12), {}),
    ("shared", (1, 9, 7), {"stride": 2, "pool": None}),
    ("shared", (2, 8, 8), {"padding": "circular", "head": "gap"}),
    ("shared", (1, 10, 10), {"padding": ((1, 0), (2, 1)), "pool_mode": "avg", "activation": "tanh"}),
    ("shared", (1, 8, 8), {"preset": "lenet5"}),
    ("local", (1, 8, 8), {"stride": 2, "padding": 1}),
    ("sparse", (1, 12), {}),
]


@pytest.mark.parametrize("coupling, input_shape, arch", CASES)
def test_relaxed_models_compute_the_identical_function(coupling, input_shape, arch):
    model, X = trained(coupling, input_shape, **arch)
    before = model.predict_proba(X)
    relaxed = [model.to_full()] + ([model.untie(), model.untie().to_full()] if coupling == "shared" else [])
    for other in relaxed:
        np.testing.assert_allclose(other.predict_proba(X), before, rtol=0, atol=1e-12)
        assert other.n_params >= model.n_params
        assert len(other.layers) == len(model.layers)
        # the Centring offsets came along
        for a, b in zip(model.layers, other.layers):
            for key, value in getattr(a, "state", {}).items():
                np.testing.assert_array_equal(b.state[key], value)
    np.testing.assert_array_equal(model.predict_proba(X), before)  # the original is untouched


def test_families_after_relaxation():
    model, _ = trained("shared", (1, 8, 8))
    kinds = lambda m: [type(layer).__name__ for layer in m.layers]  # noqa: E731
    assert "LocalConv2d" in kinds(model.untie()) and "SharedConv2d" not in kinds(model.untie())
    assert not any("Conv" in k for k in kinds(model.to_full()))
    assert model.untie().meta["coupling"] == "local" and model.to_full().meta["relaxed_from"] == "shared"
    # an untied network has one window per site, and they start equal
    J = model.untie().layers[0].params["J"]
    np.testing.assert_array_equal(J[:, 3, 5], J[:, 0, 0])


def test_relaxed_model_keeps_training_and_leaves_the_shared_subspace():
    model, X = trained("shared", (1, 8, 8))
    local = model.untie()
    rng = np.random.default_rng(1)
    history = local.fit(rng.random((40, 1, 8, 8)), rng.integers(0, 10, 40), epochs=2, seed=0, progress=False)
    assert np.all(np.isfinite(history["loss"]))
    J = local.layers[0].params["J"]
    assert not np.allclose(J[:, 3, 5], J[:, 0, 0])  # the windows now differ from site to site


@pytest.mark.parametrize("make, input_shape", [
    (lambda: hc.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, **F64), (3, 4, 3)),
    (lambda: hc.nn.ConvTranspose1d(2, 3, 4, stride=3, padding=(2, 1), activation="tanh", **F64), (2, 5)),
])
def test_transposed_layer_as_full_coupling(make, input_shape):
    layer = make()
    layer.params["b"][...] = np.random.default_rng(2).standard_normal(layer.params["b"].shape)
    out_shape = layer.output_shape(input_shape)
    full = full_layer(layer, input_shape, out_shape)
    d = np.random.default_rng(3).standard_normal((4,) + input_shape)
    np.testing.assert_allclose(full.forward(d), layer.forward(d), atol=1e-12)


def test_untie_refuses_what_has_no_local_version():
    model = hc.models.Model([hc.nn.SharedConv2d(2, 2, 3, groups=2, padding=1), hc.nn.Flatten(),
                             hc.nn.FullCoupled(32, 3, activation=None)], (2, 4, 4), 3)
    with pytest.raises(ValueError, match="groups"):
        model.untie()
    np.testing.assert_allclose(model.to_full().predict_proba(np.ones((1, 2, 4, 4), np.float32)),
                               model.predict_proba(np.ones((1, 2, 4, 4), np.float32)), atol=1e-6)
