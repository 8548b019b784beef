"""Centring: y = x - mu[c], a reparametrisation J (d - mu) + b = J d + (b - J mu).

Every check compares against an independent reference: the shifted bias computed by numpy loops
over windows, the running mean recomputed by hand, central differences for the gradients.
"""

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import hamiltonian_cnn as hc
from hamiltonian_cnn.nn import (
    AvgPool2d,
    Centring,
    Flatten,
    FullCoupled,
    GlobalAvgPool,
    LocalConv1d,
    LocalConv2d,
    MaxPool2d,
    SharedConv1d,
    SharedConv2d,
)
from hamiltonian_cnn.nn.architectures import INIT_GAIN
from hamiltonian_cnn.nn.losses import softmax_cross_entropy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import central_difference  # noqa: E402

COUPLINGS = (SharedConv1d, SharedConv2d, LocalConv1d, LocalConv2d, FullCoupled)


@pytest.fixture(scope="module")
def digits_small():
    X_train, y_train, X_test, y_test = hc.data.load("digits")
    return X_train[:320], y_train[:320], X_test[:64], y_test[:64]


# ---------------------------------------------------------------- independent references


def inside_mask(in_sites, kernel, stride, pads):
    """mask[*out_site, *tap] = 1 where the tap i = s I + a - p0 falls inside the input (dilation 1)."""
    out_sites = tuple((n + p0 + p1 - k) // s + 1 for n, k, s, (p0, p1) in zip(in_sites, kernel, stride, pads))
    mask = np.zeros(out_sites + tuple(kernel))
    for site in itertools.product(*map(range, out_sites)):
        for tap in itertools.product(*map(range, kernel)):
            idx = [s * o + a - p0 for s, o, a, (p0, _) in zip(stride, site, tap, pads)]
            mask[site + tap] = all(0 <= i < n for i, n in zip(idx, in_sites))
    return mask


def shared_bias_shift(J, mu):
    """sum_{c, taps} J[o, c, taps] mu[c]: the per-channel shift of a valid (unpadded) shared coupling."""
    shift = np.zeros(J.shape[0])
    for o in range(J.shape[0]):
        for c in range(J.shape[1]):
            shift[o] += J[o, c].sum() * mu[c]
    return shift


def local_bias_shift(J, mu, in_sites, kernel, stride, pads):
    """sum over the taps inside the input of J[o, *site, c, *taps] mu[c], per output channel and site."""
    nd = len(in_sites)
    mask = inside_mask(in_sites, kernel, stride, pads)
    out_sites = mask.shape[:nd]
    shift = np.zeros((J.shape[0],) + out_sites)
    for o in range(J.shape[0]):
        for site in itertools.product(*map(range, out_sites)):
            for c in range(J.shape[1 + nd]):
                w = J[(o,) + site + (c,)]
                shift[(o,) + site] += np.sum(w * mask[site]) * mu[c]
    return shift


def full_bias_shift(J, mu_full):
    """sum_i J[out, i] mu_full[i] by explicit loops over output and input units."""
    n_out = J.size // mu_full.size
    Jf = J.reshape(n_out, mu_full.size)
    mf = mu_full.reshape(-1)
    out = np.zeros(n_out)
    for k in range(n_out):
        out[k] = sum(Jf[k, i] * mf[i] for i in range(mf.size))
    return out.reshape(J.shape[: J.ndim - mu_full.ndim])


def pads_of(layer, in_sites):
    """(start, end) padding per axis of a conv layer for these input sites."""
    if isinstance(layer, (LocalConv1d, LocalConv2d)):
        return layer.geo.padding
    return layer.geometry(in_sites).padding


def shifted_bias(layer, mu_full):
    """b' such that the plain layer on d equals ``layer`` on d - mu_full (mu_full: one sample's offsets).

    Raises AssertionError where no per-parameter bias can absorb the shift (a shared coupling
    whose windows reach padding).
    """
    b = layer.params["b"]
    J = layer.params["J"]
    if isinstance(layer, FullCoupled):
        return b - full_bias_shift(J, mu_full)
    mu = mu_full.reshape(mu_full.shape[0], -1)[:, 0]
    assert np.all(mu_full == mu.reshape((-1,) + (1,) * (mu_full.ndim - 1)))
    in_sites = mu_full.shape[1:]
    pads = pads_of(layer, in_sites)
    if isinstance(layer, (SharedConv1d, SharedConv2d)):
        assert all(p == (0, 0) for p in pads), "a shared coupling absorbs the shift exactly only without padding"
        assert layer.dilation == (1,) * len(in_sites) and layer.groups == 1
        return b - shared_bias_shift(J, mu)
    return b - local_bias_shift(J, mu, in_sites, layer.kernel_size, layer.stride, pads)


def uncentred_equivalent(centred, plain):
    """Copy the couplings of the centred model into ``plain`` (the same layers without Centring),
    shifting every bias that reads centred units: b' = b - J mu."""
    plain_couplings = [layer for layer in plain.layers if isinstance(layer, COUPLINGS)]
    assert not any(isinstance(layer, Centring) for layer in plain.layers)
    mu_full = None  # offsets per unit of the current per-sample shape, or None when nothing is centred
    k = 0
    for layer, shape in zip(centred.layers, centred.shapes[1:]):
        if isinstance(layer, Centring):
            assert mu_full is None
            mu = layer.state["mu"].astype(np.float64)
            mu_full = np.broadcast_to(mu.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
        elif isinstance(layer, Flatten):
            mu_full = None if mu_full is None else mu_full.reshape(-1)
        elif isinstance(layer, COUPLINGS):
            target = plain_couplings[k]
            k += 1
            assert type(target) is type(layer) and target.params["J"].shape == layer.params["J"].shape
            target.params["J"][...] = layer.params["J"]
            target.params["b"][...] = layer.params["b"] if mu_full is None else shifted_bias(layer, mu_full)
            mu_full = None
        else:
            assert mu_full is None, f"{layer!r} between a Centring and a coupling: not handled by this reference"
    assert k == len(plain_couplings)


def centrings(model):
    return [layer for layer in model.layers if isinstance(layer, Centring)]


# ---------------------------------------------------------------- the reparametrisation identity


def random_conv(cls, in_ch, out_ch, kernel, stride, padding, in_sites, rng, activation="sigmoid"):
    kwargs = dict(stride=stride, padding=padding, activation=activation, dtype=np.float64,
                  seed=int(rng.integers(1 << 30)))
    if cls in (LocalConv1d, LocalConv2d):
        kwargs["input_size"] = in_sites
    layer = cls(in_ch, out_ch, kernel, **kwargs)
    layer.params["b"][...] = rng.normal(size=layer.params["b"].shape)
    twin = cls(in_ch, out_ch, kernel, **kwargs)
    twin.params["J"][...] = layer.params["J"]
    return layer, twin


@pytest.mark.parametrize(
    "cls, in_sites, kernel, stride, padding",
    [
        (SharedConv2d, (7, 6), 3, 1, 0),
        (SharedConv2d, (9, 8), (3, 2), 2, 0),
        (SharedConv1d, (11,), 4, 3, "valid"),
        (LocalConv2d, (6, 5), 3, 1, 0),
        (LocalConv2d, (7, 7), 3, 2, 1),       # local biases are per site: exact even with padding
        (LocalConv2d, (5, 6), 3, 1, "same"),
        (LocalConv1d, (9,), 3, 2, "same"),
    ],
)
def test_centring_then_conv_equals_conv_with_shifted_bias(cls, in_sites, kernel, stride, padding):
    rng = np.random.default_rng(len(in_sites) * 100 + stride)
    C = 3
    centre = Centring(C, dtype=np.float64)
    mu = rng.uniform(0.2, 0.9, size=C)
    centre.set_offset(mu)
    layer, plain = random_conv(cls, C, 4, kernel, stride, padding, in_sites, rng)
    mu_full = np.broadcast_to(mu.reshape((-1,) + (1,) * len(in_sites)), (C,) + in_sites)
    plain.params["b"][...] = shifted_bias(layer, mu_full)
    x = rng.uniform(0, 1, size=(5, C) + in_sites)  # sigmoid outputs: far from centred
    np.testing.assert_allclose(layer.forward(centre.forward(x)), plain.forward(x), rtol=1e-10, atol=1e-13)
    # the shift is not trivial: the unshifted plain layer computes a different function
    plain.params["b"][...] = layer.params["b"]
    assert not np.allclose(layer.forward(centre.forward(x)), plain.forward(x), rtol=1e-6)


def test_shared_conv_with_padding_is_not_a_bias_shift():
    """Where windows reach the zero padding, J (d - mu) differs from J d - J mu at the border:
    the reason the exactness checks use valid windows for a shared coupling."""
    rng = np.random.default_rng(3)
    centre = Centring(2, dtype=np.float64)
    mu = np.array([0.5, 0.3])
    centre.set_offset(mu)
    layer, plain = random_conv(SharedConv2d, 2, 3, 3, 1, "same", (5, 5), rng, activation=None)
    plain.params["b"][...] = layer.params["b"] - shared_bias_shift(layer.params["J"], mu)
    x = rng.uniform(0, 1, size=(2, 2, 5, 5))
    diff = layer.forward(centre.forward(x)) - plain.forward(x)
    np.testing.assert_allclose(diff[..., 1:-1, 1:-1], 0, atol=1e-12)  # interior windows are inside
    assert np.abs(diff[..., 0, :]).max() > 1e-3


@pytest.mark.parametrize("in_features", [(3, 4, 5), 6])
def test_centring_then_full_equals_full_with_shifted_bias(in_features):
    rng = np.random.default_rng(7)
    shape = in_features if isinstance(in_features, tuple) else (in_features,)
    C = shape[0]
    centre = Centring(C, dtype=np.float64)
    mu = rng.uniform(0.2, 0.9, size=C)
    centre.set_offset(mu)
    kwargs = dict(activation="tanh", dtype=np.float64, seed=11)
    layer = FullCoupled(in_features, 5, **kwargs)
    layer.params["b"][...] = rng.normal(size=5)
    plain = FullCoupled(in_features, 5, **kwargs)
    plain.params["J"][...] = layer.params["J"]
    mu_full = np.broadcast_to(mu.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
    plain.params["b"][...] = layer.params["b"] - layer.params["J"].reshape(5, -1) @ mu_full.reshape(-1)
    np.testing.assert_allclose(plain.params["b"], shifted_bias(layer, mu_full), rtol=1e-12)
    x = rng.uniform(0, 1, size=(4,) + shape)
    np.testing.assert_allclose(layer.forward(centre.forward(x)), plain.forward(x), rtol=1e-10, atol=1e-13)


def test_trained_centred_model_equals_uncentred_model_with_shifted_biases(digits_small):
    """After a short fit (offsets and couplings moved by training), the centred shared network and
    the plain one with b' = b - J mu compute the same logits."""
    X, y, X_test, _ = digits_small
    arch = dict(input_shape=(1, 8, 8), n_classes=10, padding=0, kernel_size=3, channels=(4, 4), pool=None,
                dtype=np.float64, seed=0)
    model = hc.models.build("shared", **arch)
    assert [type(layer) for layer in model.layers] == [SharedConv2d, Centring, SharedConv2d, Centring, Flatten,
                                                      FullCoupled]
    model.fit(X, y, epochs=1, batch_size=32, seed=0, progress=False)
    for c in centrings(model):
        assert np.all(c.state["mu"] > 0.05) and np.all(c.state["mu"] < 0.95)  # sigmoid means: far from 0
        assert int(c.state["updates"]) == math.ceil(len(X) / 32)
    plain = hc.models.build("shared", **arch, centring=False)
    assert len(plain.layers) == len(model.layers) - 2
    uncentred_equivalent(model, plain)
    logits = model.decision_function(X_test)
    np.testing.assert_allclose(plain.decision_function(X_test), logits, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(plain.predict(X_test), model.predict(X_test))
    # and the centring matters: the same couplings without the bias shift give other logits
    for layer, twin in zip([l for l in model.layers if isinstance(l, COUPLINGS)],
                           [l for l in plain.layers if isinstance(l, COUPLINGS)]):
        twin.params["b"][...] = layer.params["b"]
    assert np.abs(plain.decision_function(X_test) - logits).max() > 1e-3


@pytest.mark.parametrize(
    "family, arch",
    [
        ("shared", dict(padding=0, pool=2, channels=(3, 4))),          # 8 -> 6 -> pool 3 -> 1
        ("local", dict(padding="same", pool=2, channels=(3, 2), hidden=(5,))),
        ("full", dict(padding=0, pool=None, channels=(2, 3), hidden=(4,))),
    ],
)
def test_centred_model_equals_shifted_model_for_each_family(family, arch):
    rng = np.random.default_rng(5)
    common = dict(input_shape=(1, 8, 8), n_classes=10, kernel_size=3, dtype=np.float64, seed=4, **arch)
    model = hc.models.build(family, **common)
    cs = centrings(model)
    assert len(cs) == len(arch["channels"]) + len(arch.get("hidden", ()))
    for c in cs:
        c.set_offset(rng.uniform(0.1, 0.9, size=c.channels))
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][...] = rng.normal(scale=0.5, size=layer.params["b"].shape)
    plain = hc.models.build(family, **common, centring=False)
    uncentred_equivalent(model, plain)
    X = rng.uniform(0, 1, size=(6, 1, 8, 8))
    np.testing.assert_allclose(plain.decision_function(X), model.decision_function(X), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- the running mean


@pytest.mark.parametrize("sites", [(4, 5), (7,), ()])
def test_training_mode_running_mean(sites):
    rng = np.random.default_rng(1)
    C, rate = 3, 0.25
    layer = Centring(C, rate=rate, dtype=np.float64)
    axes = (0,) + tuple(range(2, 2 + len(sites)))
    batches = [rng.normal(loc=[2.0, -1.0, 0.5][:C], size=(6,) + sites + (C,)) for _ in range(4)]
    batches = [np.moveaxis(b, -1, 1).copy() for b in batches]

    # outside training mode: mu stays 0, the layer is the identity
    for b in batches[:2]:
        np.testing.assert_array_equal(layer.forward(b), b)
    assert np.all(layer.state["mu"] == 0) and int(layer.state["updates"]) == 0

    layer.training = True
    first = batches[0]
    mean0 = np.array([first[:, c].mean() for c in range(C)])
    y = layer.forward(first)
    np.testing.assert_allclose(layer.state["mu"], mean0, rtol=1e-13)  # the first batch sets mu
    np.testing.assert_allclose(y, first - mean0.reshape((1, C) + (1,) * len(sites)), rtol=1e-13, atol=1e-13)
    assert int(layer.state["updates"]) == 1

    expected = mean0.copy()
    for count, b in enumerate(batches[1:], start=2):
        old = layer.state["mu"].copy()
        layer.training = False
        eval_out = layer.forward(b)
        np.testing.assert_array_equal(layer.state["mu"], old)
        layer.training = True
        train_out = layer.forward(b)
        np.testing.assert_array_equal(train_out, eval_out)  # the output uses the old mu
        np.testing.assert_allclose(train_out, b - old.reshape((1, C) + (1,) * len(sites)), rtol=1e-13, atol=1e-13)
        batch_mean = np.array([np.mean(b[:, c]) for c in range(C)])
        expected = (1 - rate) * expected + rate * batch_mean
        np.testing.assert_allclose(layer.state["mu"], expected, rtol=1e-12)
        np.testing.assert_allclose(layer.state["mu"], b.mean(axis=axes) * rate + old * (1 - rate), rtol=1e-12)
        assert int(layer.state["updates"]) == count

    layer.training = False
    frozen = layer.state["mu"].copy()
    for b in batches:
        layer.forward(b)
    np.testing.assert_array_equal(layer.state["mu"], frozen)
    assert int(layer.state["updates"]) == len(batches)


def test_rate_one_follows_the_last_batch_and_float32_keeps_its_dtype():
    rng = np.random.default_rng(2)
    layer = Centring(2, rate=1.0)
    layer.training = True
    for _ in range(3):
        x = rng.normal(size=(5, 2, 3)).astype(np.float32)
        y = layer.forward(x)
        assert y.dtype == np.float32
    np.testing.assert_allclose(layer.state["mu"], x.astype(np.float64).mean(axis=(0, 2)), rtol=1e-6)
    assert layer.state["mu"].dtype == np.float32


def test_set_offset_counts_as_an_update():
    """After set_offset a training batch moves mu by ``rate`` (it does not overwrite it)."""
    layer = Centring(2, rate=0.5, dtype=np.float64)
    layer.set_offset([1.0, -1.0])
    assert int(layer.state["updates"]) == 1
    np.testing.assert_array_equal(layer.offset, [1.0, -1.0])
    layer.training = True
    x = np.stack([np.full((4, 3), 3.0), np.full((4, 3), 1.0)], axis=1)  # channel means 3 and 1
    np.testing.assert_array_equal(layer.forward(x)[:, :, 0], [[2.0, 2.0]] * 4)
    np.testing.assert_allclose(layer.state["mu"], [2.0, 0.0])


def test_fit_uses_training_mode_and_leaves_it(digits_small):
    X, y, X_test, _ = digits_small
    model = hc.models.build("shared", (1, 8, 8), 10, channels=(3,), hidden=(5,), seed=2)
    cs = centrings(model)
    assert len(cs) == 2 and not any(c.training for c in cs)
    model.fit(X[:100], y[:100], epochs=2, batch_size=25, seed=0, progress=False)
    assert not any(c.training for c in cs)
    for c in cs:
        assert int(c.state["updates"]) == 2 * 4
        assert np.all(c.state["mu"] != 0)
    frozen = [c.state["mu"].copy() for c in cs]
    model.predict(X_test)
    model.evaluate(X_test, np.zeros(len(X_test), dtype=int))
    model.loss_and_grad(X[:10], y[:10])
    for c, mu in zip(cs, frozen):
        np.testing.assert_array_equal(c.state["mu"], mu)
    # set_training by hand: forwards then move the offsets, and stop when it is switched off
    model.set_training(True)
    assert all(c.training for c in cs)
    model.forward(X_test[:16])
    assert all(int(c.state["updates"]) == 9 for c in cs)
    assert all(not np.array_equal(c.state["mu"], mu) for c, mu in zip(cs, frozen))
    model.set_training(False)
    moved = [c.state["mu"].copy() for c in cs]
    model.forward(X_test[:16])
    for c, mu in zip(cs, moved):
        np.testing.assert_array_equal(c.state["mu"], mu)


# ---------------------------------------------------------------- gradients


def test_backward_is_the_identity():
    rng = np.random.default_rng(0)
    layer = Centring(3, dtype=np.float64)
    layer.set_offset([0.1, 0.2, 0.3])
    x = rng.normal(size=(2, 3, 4))
    layer.forward(x)
    dy = rng.normal(size=x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy)
    assert layer.params == {} and layer.grads == {} and layer.n_params == 0


def test_model_with_centring_gradient_check_float64():
    model = hc.models.build("shared", (1, 6, 6), 3, channels=(2, 3), hidden=(4,), dtype=np.float64, seed=1)
    cs = centrings(model)
    assert len(cs) == 3
    rng = np.random.default_rng(0)
    for c in cs:
        c.set_offset(rng.uniform(0.2, 0.8, size=c.channels))
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][...] = rng.normal(scale=0.3, size=layer.params["b"].shape)
    X = rng.uniform(0, 1, size=(4, 1, 6, 6))
    y = np.array([0, 2, 1, 2])
    offsets = [c.state["mu"].copy() for c in cs]

    def loss():
        return softmax_cross_entropy(model.forward(X), y)[0]

    model.loss_and_grad(X, y)
    logits = model.forward(X)
    dX = model.backward(softmax_cross_entropy(logits, y)[1])
    eps = 1e-6
    checked = 0
    for layer, grads in zip(model.layers, model.grads):
        for key, p in layer.params.items():
            flat = p.reshape(-1)
            for i in rng.choice(flat.size, size=min(flat.size, 5), replace=False):
                numeric = central_difference(loss, flat, i, eps)
                assert grads[key].reshape(-1)[i] == pytest.approx(numeric, rel=1e-5, abs=1e-9), (layer, key)
                checked += 1
    assert checked >= 6 * 5
    flatX = X.reshape(-1)
    for i in rng.choice(flatX.size, size=6, replace=False):
        assert dX.reshape(-1)[i] == pytest.approx(central_difference(loss, flatX, i, eps), rel=1e-5, abs=1e-9)
    for c, mu in zip(cs, offsets):  # no forward above moved the offsets
        np.testing.assert_array_equal(c.state["mu"], mu)


# ---------------------------------------------------------------- persistence


def test_save_load_keeps_offsets(tmp_path, digits_small):
    X, y, X_test, _ = digits_small
    model = hc.models.build("shared", (1, 8, 8), 10, channels=(4, 4), hidden=(6,), seed=3)
    model.fit(X[:96], y[:96], epochs=1, batch_size=32, seed=1, progress=False)
    path = model.save(tmp_path / "m.npz")
    loaded = hc.models.load(path)
    before, after = centrings(model), centrings(loaded)
    assert len(before) == len(after) == 3
    for a, b in zip(before, after):
        assert np.any(a.state["mu"] != 0)
        np.testing.assert_array_equal(b.state["mu"], a.state["mu"])
        assert b.state["mu"].dtype == a.state["mu"].dtype
        assert int(b.state["updates"]) == int(a.state["updates"]) == 3
        assert b.rate == a.rate and not b.training
    np.testing.assert_array_equal(loaded.decision_function(X_test), model.decision_function(X_test))
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))

    # the offsets really are what is restored: zeroing them changes the logits
    after[0].set_offset(np.zeros(after[0].channels))
    assert not np.array_equal(loaded.decision_function(X_test), model.decision_function(X_test))

    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    i = model.layers.index(before[0])
    key = f"layer{i}/state/mu"
    assert key in arrays
    for bad in (np.zeros(before[0].channels + 1, dtype=np.float32), np.full(before[0].channels, np.nan, np.float32)):
        np.savez(tmp_path / "bad.npz", **{**arrays, key: bad})
        with pytest.raises(ValueError, match="state"):
            hc.models.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != key})
    with pytest.raises(ValueError):
        hc.models.load(tmp_path / "missing.npz")


# ---------------------------------------------------------------- validation


def test_centring_refuses_bad_arguments():
    with pytest.raises(ValueError, match="channels"):
        Centring(0)
    with pytest.raises(TypeError, match="channels"):
        Centring(2.0)
    for rate in (0, 0.0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            Centring(3, rate=rate)
    for rate in (True, "0.1", None):
        with pytest.raises(TypeError, match="rate"):
            Centring(3, rate=rate)
    assert Centring(3, rate=np.int64(1)).rate == 1.0
    layer = Centring(3)
    with pytest.raises(ValueError, match="x"):
        layer.forward(np.zeros((2, 4, 5)))
    with pytest.raises(ValueError):
        layer.forward(np.zeros((2, 2)))
    with pytest.raises(ValueError):
        layer.forward(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="mu"):
        layer.set_offset(np.zeros(4))
    with pytest.raises(ValueError, match="mu"):
        layer.set_offset(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="mu"):
        layer.set_offset([0.0, np.inf, 0.0])
    np.testing.assert_array_equal(layer.state["mu"], 0)  # refused offsets leave mu alone
    assert int(layer.state["updates"]) == 0
    assert Centring(3, rate=1).rate == 1.0
    assert layer.output_shape((3, 4)) == (3, 4)


# ---------------------------------------------------------------- build


def test_build_places_centring_after_every_block_and_hidden_layer():
    model = hc.models.build("shared", (1, 8, 8), 10, channels=(4, 5), hidden=(7,), seed=0)
    types = [type(layer) for layer in model.layers]
    assert types == [SharedConv2d, MaxPool2d, Centring, SharedConv2d, MaxPool2d, Centring, Flatten,
                     FullCoupled, Centring, FullCoupled]
    assert [c.channels for c in centrings(model)] == [4, 5, 7]
    assert model.meta["arch"]["centring"] is True
    for layer, shape in zip(model.layers, model.shapes[1:]):
        if isinstance(layer, Centring):
            assert layer.channels == shape[0]
    # default: on for the binary ensemble only
    assert len(centrings(hc.models.build("shared", (1, 8, 8), 10, channels=(4, 5), hidden=(7,)))) == 3
    for activation in ("tanh", "relu"):
        m = hc.models.build("shared", (1, 8, 8), 10, channels=(4, 5), hidden=(7,), activation=activation)
        assert centrings(m) == [] and m.meta["arch"]["centring"] is False
        assert len(centrings(hc.models.build("shared", (1, 8, 8), 10, channels=(4, 5), hidden=(7,),
                                             activation=activation, centring=True))) == 3
    assert centrings(hc.models.build("local", (1, 8, 8), 10, channels=(4, 5), centring=False)) == []
    assert len(centrings(hc.models.build("full", (1, 12), 10, channels=(3,), centring=np.True_))) == 1
    assert len(centrings(hc.models.build("shared", (1, 8, 8), 10, preset="lenet5"))) == 4
    assert centrings(hc.models.build("shared", (1, 8, 8), 10, preset="lenet5", centring=False)) == []


def test_build_refuses_bad_centring_and_init():
    for bad in ("yes", 1, 0.0):
        with pytest.raises(TypeError, match="centring"):
            hc.models.build("shared", (1, 8, 8), 10, centring=bad)
    with pytest.raises(ValueError, match="init"):
        hc.models.build("shared", (1, 8, 8), 10, init="bogus")
    with pytest.raises(ValueError, match="head"):
        hc.models.build("shared", (1, 8, 8), 10, head="bogus")


def test_gap_head():
    model = hc.models.build("shared", (1, 8, 8), 10, channels=(4, 6), head="gap", seed=0)
    assert isinstance(model.layers[-1], FullCoupled) and isinstance(model.layers[-2], GlobalAvgPool)
    assert isinstance(model.layers[-3], Centring)
    assert model.layers[-1].in_size == 6
    assert model.shapes[-2] == (6,)
    m2 = hc.models.build("shared", (1, 8, 8), 10, channels=(4, 6), head="gap", hidden=(5,), seed=0)
    assert [type(layer) for layer in m2.layers[-4:]] == [GlobalAvgPool, FullCoupled, Centring, FullCoupled]
    # the GAP head is the channel mean of the last block: check its logits against numpy
    X = np.random.default_rng(0).uniform(size=(3, 1, 8, 8)).astype(np.float32)
    h = X
    for layer in model.layers[:-2]:
        h = layer.forward(h)
    head = model.layers[-1]
    ref = h.astype(np.float64).mean(axis=(2, 3)) @ head.params["J"].T.astype(np.float64) + head.params["b"]
    np.testing.assert_allclose(model.decision_function(X), ref, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- init "variance"


def brute_inside_fraction(in_sites, kernel, stride, pads):
    mask = inside_mask(in_sites, kernel, stride, pads)
    return mask.mean()


@pytest.mark.parametrize("family", ["shared", "local"])
def test_variance_init_scales_glorot_by_gain_over_sqrt_inside_fraction(family):
    arch = dict(input_shape=(1, 8, 8), n_classes=10, channels=(16,) * 5, hidden=(8,), dtype=np.float64, seed=9)
    if family == "local":
        arch["channels"] = (4,) * 5
    var = hc.models.build(family, **arch)
    glo = hc.models.build(family, **arch, init="glorot")
    assert len(var.layers) == len(glo.layers)
    expected_sites = [(8, 8), (8, 8), (4, 4), (4, 4), (2, 2)]  # 3 pools spread over 5 blocks
    ratios, seen = [], []
    for layer, twin, in_shape in zip(var.layers, glo.layers, var.shapes[:-1]):
        assert type(layer) is type(twin)
        if "J" not in layer.params:
            continue
        ratio = layer.params["J"] / twin.params["J"]
        assert np.all(twin.params["J"] != 0)
        if isinstance(layer, FullCoupled):
            want = 1.0 if layer is var.layers[-1] else INIT_GAIN["sigmoid"]
        else:
            seen.append(in_shape[1:])
            pads = pads_of(layer, in_shape[1:])
            frac = brute_inside_fraction(in_shape[1:], layer.kernel_size, layer.stride, pads)
            want = INIT_GAIN["sigmoid"] / math.sqrt(frac)
        np.testing.assert_allclose(ratio, want, rtol=1e-12)
        ratios.append(want)
        if "b" in layer.params:
            np.testing.assert_array_equal(layer.params["b"], twin.params["b"])
    assert seen == expected_sites
    assert ratios[4] == pytest.approx(6.0)  # 4 / sqrt((2/3)^2): 4 of 6 taps per axis inside on 2x2 sites
    assert ratios[0] == pytest.approx(4.0 * 24 / 22)  # (22/24)^2 of 8x8 'same' taps are inside


def test_variance_init_other_activations_and_full_family():
    arch = dict(input_shape=(1, 8, 8), n_classes=10, channels=(3, 3, 3, 3), dtype=np.float64, seed=2)
    for activation, gain in (("tanh", 1.0), ("relu", 1.0)):
        var = hc.models.build("shared", **arch, activation=activation)
        glo = hc.models.build("shared", **arch, activation=activation, init="glorot")
        last_block = [l for l in var.layers if isinstance(l, SharedConv2d)][-1]
        twin = [l for l in glo.layers if isinstance(l, SharedConv2d)][-1]
        assert var.shapes[var.layers.index(last_block)][1:] == (2, 2)
        np.testing.assert_allclose(last_block.params["J"] / twin.params["J"], gain * 1.5, rtol=1e-12)
    var = hc.models.build("full", **arch)
    glo = hc.models.build("full", **arch, init="glorot")
    couplings = [(a, b) for a, b in zip(var.layers, glo.layers) if "J" in a.params]
    for a, b in couplings[:-1]:  # a full coupling has no padding: the gain alone
        np.testing.assert_allclose(a.params["J"] / b.params["J"], 4.0, rtol=1e-12)
    np.testing.assert_array_equal(couplings[-1][0].params["J"], couplings[-1][1].params["J"])


def test_variance_init_on_an_avg_pool_lenet():
    """LeNet-5's blocks (5x5 windows, padding only on the first) under both inits."""
    var = hc.models.build("shared", (1, 8, 8), 10, preset="lenet5", dtype=np.float64, seed=0, init="variance")
    glo = hc.models.build("shared", (1, 8, 8), 10, preset="lenet5", dtype=np.float64, seed=0, init="glorot")
    assert any(isinstance(layer, AvgPool2d) for layer in var.layers)
    convs = [(a, b, s) for a, b, s in zip(var.layers, glo.layers, var.shapes[:-1]) if isinstance(a, SharedConv2d)]
    assert len(convs) == 3
    for a, b, shape in convs:
        frac = brute_inside_fraction(shape[1:], a.kernel_size, a.stride, pads_of(a, shape[1:]))
        np.testing.assert_allclose(a.params["J"] / b.params["J"], 4.0 / math.sqrt(frac), rtol=1e-12)
    assert convs[0][2][1:] == (8, 8) and pads_of(convs[0][0], (8, 8)) == ((12, 12), (12, 12))


def test_fan_in_init_is_the_lenet_default_and_keeps_the_forward_variance():
    """init "fan_in": Glorot's 2 / (fan_in + fan_out) -> 1 / fan_in on top of "variance" (4 / sqrt(inside))."""
    fan = hc.models.build("shared", (1, 8, 8), 10, preset="lenet5", dtype=np.float64, seed=0)
    var = hc.models.build("shared", (1, 8, 8), 10, preset="lenet5", dtype=np.float64, seed=0, init="variance")
    assert fan.meta["arch"]["init"] == "fan_in" and var.meta["arch"]["init"] == "variance"
    pairs = [(a, b) for a, b in zip(fan.layers, var.layers) if "J" in a.params]
    # C1 1->6, C3 6->16, C5 16->120 (5x5 windows: fans c * 25), F6 120->84, logits 84->10
    fans = [(25, 150), (150, 400), (400, 3000), (120, 84)]
    for (a, b), (fan_in, fan_out) in zip(pairs, fans):
        np.testing.assert_allclose(a.params["J"] / b.params["J"], math.sqrt((fan_in + fan_out) / (2 * fan_in)),
                                   rtol=1e-12)
    np.testing.assert_array_equal(pairs[-1][0].params["J"], pairs[-1][1].params["J"])  # the logits: untouched
    # C5's 5x5 window covers its 5x5 input: its field is a dot product, and under "fan_in" its
    # variance over unit-variance inputs is the sigmoid's gain^2 = 16 (Glorot's would be 16 * 800 / 3400)
    x = np.random.default_rng(0).standard_normal((2048, 400))
    h = x @ pairs[2][0].params["J"].reshape(120, 400).T
    assert np.var(h) == pytest.approx(16.0, rel=0.1)
    assert np.var(x @ pairs[2][1].params["J"].reshape(120, 400).T) == pytest.approx(16.0 * 800 / 3400, rel=0.1)


def test_fan_in_init_for_relu_is_he_and_for_stacks_is_opt_in():
    arch = dict(input_shape=(1, 8, 8), n_classes=10, channels=(8, 16), dtype=np.float64, seed=4)
    for a, b in zip(hc.models.build("shared", **arch, activation="relu", init="fan_in").layers,
                    hc.models.build("shared", **arch, activation="relu", init="variance").layers):
        if "J" in a.params:
            np.testing.assert_array_equal(a.params["J"], b.params["J"])  # He's weights are already 2 / fan_in
    assert hc.models.build("shared", **arch).meta["arch"]["init"] == "variance"
    fan = [layer for layer in hc.models.build("shared", **arch, init="fan_in").layers if "J" in layer.params]
    var = [layer for layer in hc.models.build("shared", **arch).layers if "J" in layer.params]
    np.testing.assert_allclose(fan[1].params["J"] / var[1].params["J"], math.sqrt((72 + 144) / (2 * 72)),
                               rtol=1e-12)
