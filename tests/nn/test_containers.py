"""Residual and Concat: against plain compositions of their layers, finite differences in float64,
save/load inside a Model, and clear errors for shapes that cannot be joined."""

import sys
from pathlib import Path

import numpy as np
import pytest

import hamiltonian_cnn as hc
from hamiltonian_cnn import nn
from hamiltonian_cnn.models import build, load

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import check_gradients  # noqa: E402

F64 = dict(dtype=np.float64)


def conv(c_in, c_out, k=3, act="sigmoid", seed=0, **kw):
    return nn.SharedConv2d(c_in, c_out, k, padding="same", activation=act, seed=seed, **F64, **kw)


def copies(layers):
    """Independent copies (same config, params and state) of a list of layers."""
    from hamiltonian_cnn.nn.relax import copy_layer

    return [copy_layer(layer) for layer in layers]


def run(layers, x):
    for layer in layers:
        x = layer.forward(x)
    return x


def back(layers, dy):
    for layer in reversed(layers):
        dy = layer.backward(dy)
    return dy


def centring(channels, mu_seed):
    layer = nn.Centring(channels, dtype=np.float64)
    layer.set_offset(np.random.default_rng(mu_seed).uniform(0.2, 0.8, channels))
    return layer


def test_exported():
    assert hc.nn.Residual is nn.Residual and hc.nn.Concat is nn.Concat
    assert issubclass(nn.Residual, nn.Layer) and issubclass(nn.Concat, nn.Layer)


@pytest.mark.parametrize("with_shortcut", [False, True])
def test_residual_equals_its_composition(with_shortcut):
    rng = np.random.default_rng(0)
    c_out = 5 if with_shortcut else 3
    F = [conv(3, 4, seed=1), centring(4, 2), conv(4, c_out, act="tanh", seed=3)]
    S = [conv(3, c_out, 1, act=None, seed=4)] if with_shortcut else None
    block = nn.Residual(F, shortcut=S)
    F2, S2 = copies(F), (copies(S) if S else None)
    x = rng.standard_normal((4, 3, 6, 5))
    y = block.forward(x)
    want = run(F2, x) + (run(S2, x) if S else x)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = block.backward(dy)
    want_dx = back(F2, dy) + (back(S2, dy) if S else dy)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    for prefix, layers in (("F", F2), ("shortcut", S2 or [])):
        for i, layer in enumerate(layers):
            for key, g in layer.grads.items():
                np.testing.assert_allclose(block.grads[f"{prefix}/{i}/{key}"], g, rtol=1e-12, atol=1e-12)
    assert set(block.grads) == set(block.params)
    assert block.n_params == sum(layer.n_params for layer in F + (S or []))


def test_concat_equals_its_composition():
    rng = np.random.default_rng(1)
    branches = [[conv(3, 2, 1, seed=1)],
                [conv(3, 2, 1, seed=2), centring(2, 3), conv(2, 4, seed=4)],
                [nn.MaxPool2d(3, stride=1, padding=1), conv(3, 1, 1, act="relu", seed=5)],
                []]  # an empty branch passes x on
    block = nn.Concat(branches)
    plain = [copies(b) for b in branches]
    x = rng.standard_normal((3, 3, 5, 6))
    y = block.forward(x)
    outs = [run(b, x) for b in plain]
    np.testing.assert_allclose(y, np.concatenate(outs, axis=1), rtol=1e-12, atol=1e-12)
    assert y.shape == (3, 2 + 4 + 1 + 3, 5, 6) == (3,) + block.output_shape((3, 5, 6))
    dy = rng.standard_normal(y.shape)
    dx = block.backward(dy)
    parts = np.split(dy, np.cumsum([o.shape[1] for o in outs])[:-1], axis=1)
    want = sum(back(b, np.ascontiguousarray(p)) for b, p in zip(plain, parts))
    np.testing.assert_allclose(dx, want, rtol=1e-12, atol=1e-12)
    for k, b in enumerate(plain):
        for i, layer in enumerate(b):
            for key, g in layer.grads.items():
                np.testing.assert_allclose(block.grads[f"branch{k}/{i}/{key}"], g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, input_shape", [
    (lambda: nn.Residual([conv(2, 3, seed=1), centring(3, 0), conv(3, 2, act="tanh", seed=2)]), (2, 4, 4)),
    (lambda: nn.Residual([conv(2, 3, stride=2, seed=1), conv(3, 3, act="softplus", seed=2)],
                         shortcut=[conv(2, 3, 1, stride=2, act=None, seed=3)]), (2, 5, 4)),
    (lambda: nn.Residual([nn.SharedConv1d(2, 2, 3, padding="same", activation="sigmoid", seed=1, **F64)]), (2, 6)),
    (lambda: nn.Residual([nn.LocalConv2d(2, 2, 3, padding="same", input_size=(3, 4), activation="sigmoid",
                                         seed=1, **F64)]), (2, 3, 4)),
    (lambda: nn.Concat([[conv(2, 2, 1, seed=1)], [conv(2, 1, 1, seed=2), conv(1, 2, seed=3)],
                        [nn.MaxPool2d(3, stride=1, padding=1), conv(2, 1, 1, seed=4)]]), (2, 4, 4)),
    (lambda: nn.Concat([[nn.FullCoupled(6, 3, activation="tanh", seed=1, **F64)], []]), (6,)),
    # nested: a residual block around an Inception module
    (lambda: nn.Residual([nn.Concat([[conv(2, 1, 1, seed=1)], [conv(2, 1, seed=2)]]), centring(2, 5)]), (2, 3, 4)),
], ids=["res-identity", "res-1x1-stride2", "res-1d", "res-local", "concat-inception", "concat-features", "nested"])
def test_gradients_float64(make, input_shape):
    check_gradients(make(), input_shape)


def _small_resnet_and_inception():
    block = nn.Residual([nn.SharedConv2d(1, 2, 3, padding="same", seed=1), nn.Centring(2),
                         nn.SharedConv2d(2, 2, 3, padding="same", seed=2)],
                        shortcut=[nn.SharedConv2d(1, 2, 1, activation=None, seed=3)])
    module = nn.Concat([[nn.SharedConv2d(2, 2, 1, seed=4)],
                        [nn.SharedConv2d(2, 1, 1, seed=5), nn.Centring(1), nn.SharedConv2d(1, 2, 3, padding=1, seed=6)],
                        [nn.MaxPool2d(3, stride=1, padding=1), nn.SharedConv2d(2, 1, 1, seed=7)]])
    layers = [block, nn.MaxPool2d(2), module, nn.Centring(5), nn.GlobalAvgPool(), nn.FullCoupled(5, 3, seed=8)]
    return hc.nn.Model(layers, (1, 6, 6), 3)


def test_model_trains_saves_and_loads(tmp_path):
    rng = np.random.default_rng(0)
    model = _small_resnet_and_inception()
    X = rng.standard_normal((40, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    before = {k: v.copy() for k, v in model.layers[0].params.items()}
    model.fit(X, y, epochs=2, batch_size=10, seed=0, progress=False)
    # the optimiser reached the arrays inside the containers, and so did training mode
    assert all(not np.array_equal(before[k], model.layers[0].params[k]) for k in before)
    assert model.layers[0].F[1].state["updates"] > 0 and model.layers[2].branches[1][1].state["updates"] > 0
    assert not model.layers[0].training
    path = model.save(tmp_path / "m.npz")
    again = load(path)
    assert type(again.layers[0]) is nn.Residual and type(again.layers[2]) is nn.Concat
    np.testing.assert_array_equal(again.decision_function(X), model.decision_function(X))
    assert again.n_params == model.n_params
    np.testing.assert_array_equal(again.layers[2].state["branch1/1/mu"], model.layers[2].state["branch1/1/mu"])


def test_untie_and_to_full_reach_inside():
    model = _small_resnet_and_inception()
    X = np.random.default_rng(1).standard_normal((5, 1, 6, 6)).astype(np.float32)
    for relaxed, cls in ((model.untie(), nn.LocalConv2d), (model.to_full(), nn.FullCoupled)):
        assert isinstance(relaxed.layers[0].F[0], cls) and isinstance(relaxed.layers[2].branches[1][2], cls)
        np.testing.assert_allclose(relaxed.decision_function(X), model.decision_function(X), rtol=1e-4, atol=1e-5)


def test_residual_refuses_a_shape_change_without_shortcut():
    block = nn.Residual([conv(3, 5)])
    with pytest.raises(ValueError, match=r"F maps per-sample shape \(3, 4, 4\) to \(5, 4, 4\).*shortcut"):
        block.forward(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="shortcut"):
        hc.nn.Model([block, nn.Flatten(), nn.FullCoupled(80, 2)], (3, 4, 4), 2)
    with pytest.raises(ValueError, match=r"shortcut maps per-sample shape \(3, 4, 4\) to \(5, 2, 2\).*F gives"):
        nn.Residual([conv(3, 5)], shortcut=[conv(3, 5, 1, stride=2)]).output_shape((3, 4, 4))


def test_concat_refuses_branches_with_different_sites():
    block = nn.Concat([[conv(2, 2, 1)], [nn.SharedConv2d(2, 2, 3, seed=1, **F64)]])  # 'valid' 3x3 loses a border
    with pytest.raises(ValueError, match=r"same sites.*branch 0: \(2, 5, 5\), branch 1: \(2, 3, 3\)"):
        block.forward(np.zeros((1, 2, 5, 5)))


@pytest.mark.parametrize("bad, match", [
    (lambda: nn.Residual([]), "layers: expected at least one layer"),
    (lambda: nn.Residual("conv"), "layers: expected a list"),
    (lambda: nn.Residual([np.zeros(3)]), r"layers\[0\]: expected a hamiltonian_cnn.nn layer"),
    (lambda: nn.Concat([]), "branches: expected at least one branch"),
    (lambda: nn.Concat(nn.Flatten()), "branches: expected a list of branches"),
    (lambda: nn.Concat([[{"type": "os.system", "config": {}}]]), "unknown layer type"),
    (lambda: nn.Residual([nn.SharedConv2d(1, 1, 1), nn.SharedConv2d(1, 1, 1, dtype=np.float64)]), "one float dtype"),
])
def test_bad_arguments(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        bad()


def test_a_layer_in_two_places_is_refused():
    shared = conv(2, 2)
    with pytest.raises(ValueError, match="same layer object"):
        nn.Concat([[shared], [shared]])


def test_preset_models_round_trip(tmp_path):
    for preset in ("vgg", "resnet", "inception"):
        model = build("shared", (1, 8, 8), 10, preset=preset)
        X = np.random.default_rng(2).standard_normal((3, 1, 8, 8)).astype(np.float32)
        again = load(model.save(tmp_path / f"{preset}.npz"))
        np.testing.assert_array_equal(again.decision_function(X), model.decision_function(X))
