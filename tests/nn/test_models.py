"""Models of the three coupling families: gradients, training on real data, persistence."""

import numpy as np
import pytest

import hamiltonian_cnn as hc
from hamiltonian_cnn.nn.losses import softmax_cross_entropy

FAMILIES = ["shared", "local", "full"]


@pytest.fixture(scope="module")
def digits():
    return hc.data.load("digits")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("input_shape", [(2, 6, 5), (2, 9)])
def test_whole_model_gradient_check_float64(family, input_shape):
    model = hc.models.build(family, input_shape, 3, channels=(3, 2), kernel_size=3, padding="same", pool=2,
                            hidden=(4,), dtype=np.float64, seed=1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4,) + input_shape)
    y = np.array([0, 2, 1, 2])
    model.loss_and_grad(X, y)
    eps = 1e-6
    for layer, grads in zip(model.layers, model.grads):
        for key, p in layer.params.items():
            flat = p.reshape(-1)
            picks = rng.choice(flat.size, size=min(flat.size, 6), replace=False)
            for i in picks:
                old = flat[i]
                flat[i] = old + eps
                lp = softmax_cross_entropy(model.forward(X), y)[0]
                flat[i] = old - eps
                lm = softmax_cross_entropy(model.forward(X), y)[0]
                flat[i] = old
                numeric = (lp - lm) / (2 * eps)
                assert grads[key].reshape(-1)[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (layer, key, i)


def test_families_share_the_architecture_and_differ_in_ties():
    models = {f: hc.models.build(f, (1, 8, 8), 10) for f in FAMILIES}
    shapes = {f: m.shapes for f, m in models.items()}
    assert shapes["shared"] == shapes["local"] == shapes["full"]
    counts = {f: m.n_params for f, m in models.items()}
    assert counts["shared"] < counts["local"] < counts["full"]
    text = models["shared"].summary(file=open("/dev/null", "w"))
    assert f"{counts['shared']:,}" in text


@pytest.mark.slow
@pytest.mark.parametrize("family, target", [("shared", 0.95), ("local", 0.90), ("full", 0.90)])
def test_each_family_trains_on_digits(digits, family, target):
    X_train, y_train, X_test, y_test = digits
    model = hc.models.build(family, X_train.shape[1:], 10, seed=0)
    history = model.fit(X_train, y_train, seed=0, progress=False)
    assert history["loss"][-1] < history["loss"][0]
    assert model.score(X_test, y_test) >= target


def test_cat_locate_learned_from_a_few_hundred_examples():
    X_train, y_train, X_test, y_test = hc.data.load("cat", task="locate", size=12, n_train=300, n_test=200,
                                                    noise=0.3, seed=0)
    info = hc.data.cat_info(size=12)
    model = hc.models.build("shared", X_train.shape[1:], info["n_sites"], channels=(), head="sites",
                            head_kernel=info["template_shape"], seed=0)
    model.fit(X_train, y_train, epochs=15, lr=0.05, progress=False, seed=0)
    assert model.score(X_test, y_test) >= 0.9


def test_same_seed_same_numbers(digits):
    X_train, y_train, _, _ = digits
    runs = []
    for _ in range(2):
        model = hc.models.build("shared", (1, 8, 8), 10, seed=3)
        history = model.fit(X_train[:200], y_train[:200], epochs=2, seed=4, progress=False)
        runs.append((history["loss"], model.layers[0].params["J"].copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_round_trip(tmp_path, digits, family):
    X_train, y_train, X_test, _ = digits
    model = hc.models.build(family, (1, 8, 8), 10, seed=0)
    model.fit(X_train[:100], y_train[:100], epochs=1, progress=False, seed=0)
    path = model.save(tmp_path / "m")
    again = hc.models.load(path)
    np.testing.assert_array_equal(again.predict_proba(X_test), model.predict_proba(X_test))
    assert again.n_params == model.n_params
    assert [type(layer).__name__ for layer in again.layers] == [type(layer).__name__ for layer in model.layers]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_load_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        hc.models.load(tmp_path / "nothing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="path"):
        hc.models.load(bad)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="__config__"):
        hc.models.load(tmp_path / "other.npz")


def test_lenet5_preset_and_1d_models():
    lenet = hc.models.build("shared", (1, 32, 32), 10, preset="lenet5")
    # LeNet-5 with full connection tables: C1 156, C3 2416, C5 48120, F6 10164, out 850
    assert lenet.n_params == 156 + 2416 + 48120 + 10164 + 850
    assert lenet.shapes[1] == (6, 28, 28)
    X = np.random.default_rng(0).random((3, 1, 32, 32)).astype(np.float32)
    assert lenet.predict_proba(X).shape == (3, 10)
    model = hc.models.build("local", (2, 20), 4, channels=(3,), kernel_size=5)
    assert model.predict(np.zeros((2, 2, 20), np.float32)).shape == (2,)


def test_model_arguments_are_checked(digits):
    X_train, y_train, _, _ = digits
    model = hc.models.build("shared", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="coupling"):
        hc.models.build("tied", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="X"):
        model.fit(X_train[:, :, :4], y_train, progress=False)
    with pytest.raises(ValueError, match="y"):
        model.fit(X_train, y_train[:-1], progress=False)
    with pytest.raises(ValueError, match="y"):
        model.fit(X_train[:3], np.array([0, 1, 10]), progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        model.fit(X_train[:3], y_train[:3], optimizer="lbfgs", progress=False)
    with pytest.raises(ValueError, match="X"):
        model.predict(np.full((1, 1, 8, 8), np.nan))
    with pytest.raises(TypeError, match="build"):
        hc.models.build("shared", (1, 8, 8), 10, epoch=3)


def test_validation_never_moves_the_centring_offsets(digits):
    """Validation runs in inference mode: a fit with validation data ends with the same offsets and
    weights as the same fit without it."""
    X, y, Xt, yt = digits
    runs = []
    for validation in (None, (Xt[:100] + 0.5, yt[:100])):
        model = hc.models.build("shared", (1, 8, 8), 10, seed=3)
        model.fit(X[:200], y[:200], epochs=2, seed=4, progress=False, validation=validation)
        runs.append([layer.state["mu"].copy() for layer in model.layers if hasattr(layer, "state")])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_keep_best_restores_the_best_validation_epoch(digits):
    X, y, Xt, yt = digits
    model = hc.models.build("shared", (1, 8, 8), 10, seed=3)
    history = model.fit(X[:150], y[:150], epochs=6, lr=0.05, seed=4, progress=False,
                        validation=(Xt[:200], yt[:200]), keep_best=True)
    best = int(np.argmax(history["val_accuracy"]))
    assert history["best_epoch"] == best + 1
    # the model ends at the best epoch's accuracy, not the last epoch's
    assert model.score(Xt[:200], yt[:200]) == pytest.approx(history["val_accuracy"][best])
    with pytest.raises(ValueError, match="keep_best"):
        model.fit(X[:50], y[:50], epochs=1, keep_best=True, progress=False)


def test_callback_sees_every_epoch_in_inference_mode(digits):
    X, y, _, _ = digits
    model = hc.models.build("shared", (1, 8, 8), 10, seed=3)
    seen = []
    model.fit(X[:64], y[:64], epochs=3, seed=0, progress=False,
              callback=lambda epoch, m: seen.append((epoch, m is model, m.layers[2].training)))
    assert seen == [(1, True, False), (2, True, False), (3, True, False)]
    with pytest.raises(TypeError, match="callback"):
        model.fit(X[:8], y[:8], epochs=1, progress=False, callback=3)


@pytest.mark.parametrize("kwargs", [{}, {"preset": "lenet5"}, {"coupling": "local", "padding": ((1, 0), (2, 1))},
                                    {"input_shape": (1, 40), "channels": (64, 128, 128)}])
def test_summary_is_a_compact_table(kwargs):
    kwargs = {"coupling": "shared", "input_shape": (1, 16, 16), **kwargs}
    model = hc.models.build(kwargs.pop("coupling"), kwargs.pop("input_shape"), 10, **kwargs)
    text = model.summary(file=open("/dev/null", "w"))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert len(lines) == len(model.layers) + 6  # title, header, rule, input, layers, rule, total
    assert f"total: {model.n_params:,} parameters" in lines[-1]
    assert "SharedConv" in text or "LocalConv" in text
    assert "dtype" not in text and "seed" not in text


# ---------------------------------------------------------------- where the pools go


@pytest.mark.parametrize("input_shape, depth, expected", [
    ((1, 8, 8), 2, [True, True]),
    ((1, 8, 8), 3, [True, True, True]),
    ((1, 8, 8), 4, [False, True, True, True]),
    ((1, 8, 8), 8, [False, False, True, False, False, True, False, True]),
    ((1, 16, 16), 8, [False, True, False, True, False, True, False, True]),
    ((1, 40), 8, [False, True, False, True, True, False, True, True]),
])
def test_pool_schedule_spreads_the_pools_and_ends_with_one(input_shape, depth, expected):
    assert hc.models.pool_schedule(input_shape, (16,) * depth) == expected


def test_pool_schedule_matches_the_built_stack():
    """As many pools as the sites allow (greedy count), never a pool on fewer sites than its width."""
    for input_shape in ((1, 8, 8), (1, 16, 16), (1, 32, 32), (1, 40)):
        for depth in range(1, 10):
            model = hc.models.build("shared", input_shape, 10, channels=(4,) * depth)
            pools = [i for i, layer in enumerate(model.layers) if type(layer).__name__.startswith("MaxPool")]
            sites = min(input_shape[1:])
            possible = 0
            while sites >= 2 and possible < depth:
                sites, possible = sites // 2, possible + 1
            assert len(pools) == possible
            assert sum(hc.models.pool_schedule(input_shape, (4,) * depth)) == possible
            assert all(min(model.shapes[i][1:]) >= 2 for i in pools)
    assert hc.models.pool_schedule((1, 8, 8), (16, 16), pool=None) == [False, False]
