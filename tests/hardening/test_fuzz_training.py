"""Fuzz the training API: hc.models.build / Model.fit / predict / score / save / load, losses, optimisers."""

import json
import os

import numpy as np
import pytest
from fuzz_harness import bad_arrays, expect_error, expect_same, odd_layouts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hamiltonian_cnn as hc
from hamiltonian_cnn import nn

SHAPE = (1, 6, 6)
RNG = np.random.default_rng(0)
X = RNG.random((12,) + SHAPE).astype(np.float32)
Y = np.arange(12) % 3
MODEL = hc.models.build("shared", SHAPE, 3, channels=(2,), seed=0)
MODEL.fit(X, Y, epochs=1, progress=False, seed=0)

BUILD = [
    (dict(coupling="tied"), "coupling"), (dict(coupling=None), "coupling"), (dict(input_shape=8), "input_shape"),
    (dict(input_shape=(1, 1, 8, 8)), "input_shape"), (dict(input_shape=(1, 0, 8)), "input_shape"),
    (dict(input_shape=(1.0, 8, 8)), "input_shape"), (dict(n_classes=1), "n_classes"),
    (dict(n_classes=2.0), "n_classes"),
    (dict(channels=(0,)), "channels"), (dict(channels="16"), "channels"), (dict(channels=(-2, 3)), "channels"),
    (dict(kernel_size=7, padding=0), "kernel_size"), (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=(3, 3, 3)), "kernel_size"), (dict(kernel_size="3"), "kernel_size"), (dict(stride=0), "stride"),
    (dict(stride=-1), "stride"), (dict(padding=-1), "padding"), (dict(padding="half"), "padding"),
    (dict(padding=1.5), "padding"), (dict(pool=0), "pool"), (dict(pool="2"), "pool"),
    (dict(pool_mode="min"), "pool_mode"),
    (dict(hidden=(-1,)), "hidden"), (dict(hidden=(0,)), "hidden"), (dict(activation="gelu"), "activation"),
    (dict(head="x"), "head"), (dict(head="sites", n_classes=3), "kernel_size"), (dict(preset="vgg"), "preset"),
    (dict(dtype=np.int32), "dtype"), (dict(dtype="float16"), "dtype"), (dict(seed=-1), "seed"),
    (dict(seed=0.5), "seed"),
    (dict(epochs=-1), "epochs"), (dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"), (dict(lr=0), "lr"),
    (dict(lr=float("nan")), "lr"), (dict(optimizer="rmsprop"), "optimizer"), (dict(weight_decay=-1.0), "weight_decay"),
    (dict(foo=1), "build"),
]


@settings(max_examples=len(BUILD) * 2)
@given(case=st.sampled_from(BUILD), coupling=st.sampled_from(["shared", "local", "full"]))
def test_build_rejects_bad_arguments(case, coupling):
    kwargs, name = case
    args = {"coupling": coupling, "input_shape": (1, 4, 4), "n_classes": 3, "channels": (2,), **kwargs}
    expect_error("build", lambda: hc.models.build(**args), (name,))


FIT = [
    (dict(epochs=0), "epochs"), (dict(epochs=1.5), "epochs"), (dict(epochs="2"), "epochs"),
    (dict(batch_size=0), "batch_size"), (dict(batch_size=-3), "batch_size"), (dict(batch_size=True), "batch_size"),
    (dict(lr=-1), "lr"), (dict(lr=float("inf")), "lr"), (dict(lr="fast"), "lr"), (dict(lr=0), "lr"),
    (dict(optimizer="rms"), "optimizer"), (dict(optimizer=3), "optimizer"), (dict(seed="a"), "seed"),
    (dict(seed=-5), "seed"), (dict(validation=X), "validation"), (dict(validation=(X,)), "validation"),
    (dict(validation=(X, Y[:3])), "y"), (dict(validation=(X[:, :, :5], Y)), "validation[0]"),
    (dict(weight_decay=float("nan")), "weight_decay"), (dict(clip_norm=-1), "clip_norm"),
    (dict(clip_norm=0), "clip_norm"), (dict(optimizer="sgd", momentum=5), "momentum"),
    (dict(optimizer="sgd", momentum=-0.1), "momentum"),
]


def bad_labels(y, rng):
    n = len(y)
    return [y[:-1], np.concatenate([y, y]), y + 3, y - 1, y + 0.5, y.astype(str), y > 0, y[:, None], None,
            np.full(n, np.nan), y.astype(np.complex128), list("abcdefghijkl"),
            np.full(n, 2**40)]


@settings(max_examples=120)
@given(case=st.sampled_from(FIT + [("X", None), ("y", None)] * 6), pick=st.integers(0, 10**6), seed=st.integers(0, 99))
def test_fit_rejects_bad_arguments_before_training(case, pick, seed):
    kwargs, name = case
    rng = np.random.default_rng(seed)
    before = {k: v.copy() for k, v in MODEL.layers[0].params.items()}
    if kwargs == "X":
        cases = bad_arrays(X, rng) + [(None, X[:, :, :5], (ValueError,)), (None, X[:, 0], (ValueError,)),
                                       (None, X[None], (ValueError,))]
        _, bad, types = cases[pick % len(cases)]
        expect_error("fit: bad X", lambda: MODEL.fit(bad, Y, epochs=1, progress=False), ("X",), types)
    elif kwargs == "y":
        cases = bad_labels(Y, rng)
        bad = cases[pick % len(cases)]
        expect_error("fit: bad y", lambda: MODEL.fit(X, bad, epochs=1, progress=False), ("y",))
    else:
        args = {"epochs": 1, "progress": False, **kwargs}
        expect_error("fit: bad argument", lambda: MODEL.fit(X, Y, **args), (name,))
    for key, value in MODEL.layers[0].params.items():  # nothing was trained
        assert np.array_equal(value, before[key])


@settings(max_examples=100)
@given(method=st.sampled_from(["predict", "predict_proba", "decision_function", "score", "evaluate"]),
       pick=st.integers(0, 10**6), seed=st.integers(0, 99))
def test_inference_rejects_bad_arguments_and_accepts_odd_layouts(method, pick, seed):
    rng = np.random.default_rng(seed)
    fn = getattr(MODEL, method)
    needs_y = method in ("score", "evaluate")

    def call(X_, y_=Y, **kw):
        return fn(X_, y_, **kw) if needs_y else fn(X_, **kw)

    reference = call(X.copy())
    cases = bad_arrays(X, rng) + [(None, X[:, :, :5], (ValueError,)), (None, X[:, 0], (ValueError,))]
    _, bad, types = cases[pick % len(cases)]
    expect_error(f"{method}: bad X", lambda: call(bad), ("X",), types)
    if needs_y:
        labels = bad_labels(Y, rng)
        expect_error(f"{method}: bad y", lambda: call(X, labels[pick % len(labels)]), ("y",))
    bad_batch = [0, -1, 1.5, "8", None][pick % 5]
    expect_error(f"{method}: batch_size", lambda: call(X, batch_size=bad_batch), ("batch_size",))
    for odd in odd_layouts(X).values():
        expect_same(f"{method}: odd layout", lambda: call(odd), reference)


def test_model_constructor_and_summary_reject_bad_arguments():
    layers = MODEL.layers
    for bad, name in [(3, "layers"), ("abc", "layers"), (layers[0], "layers"), (["abc"], "layers[0]"),
                      ([nn.Flatten()], "layers")]:
        expect_error("Model constructor", lambda: nn.Model(bad, SHAPE, 3), (name,))
    for bad in (4, None, (), (1, 0, 6), "166"):
        expect_error("Model constructor", lambda: nn.Model(layers, bad, 3), ("input_shape",))
    for bad in (1, 2.0, "3"):
        expect_error("Model constructor", lambda: nn.Model(layers, SHAPE, bad), ("n_classes",))
    expect_error("Model constructor", lambda: nn.Model(layers, SHAPE, 3, dtype=int), ("dtype",))
    expect_error("Model summary", lambda: MODEL.summary(file=3), ("file",))


# ------------------------------------------------------------------ save / load


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    path = MODEL.save(folder / "model.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    return folder, path, open(path, "rb").read(), arrays


def test_save_and_load_reject_bad_paths(saved):
    folder, path, _, _ = saved
    for bad in (3, None, b"", "", ["model.npz"]):
        expect_error("save/load: path", lambda: MODEL.save(bad), ("path",))
        expect_error("save/load: path", lambda: hc.models.load(bad), ("path",))
    os.makedirs(folder / "dir.npz", exist_ok=True)
    expect_error("save/load: path", lambda: MODEL.save(folder / "dir.npz"), ("path",))
    expect_error("save/load: path", lambda: hc.models.load(folder / "dir.npz"), ("path",))
    expect_error("save/load: missing", lambda: hc.models.load(folder / "missing.npz"), ("path",), (FileNotFoundError,))
    loaded = hc.models.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), MODEL.predict_proba(X))


def _load_or_error(group, path):
    """A corrupt file must raise naming path; a change that does not matter may load (and then work)."""
    try:
        model = hc.models.load(path)
    except (ValueError, TypeError) as exc:
        return expect_error(group, lambda exc=exc: (_ for _ in ()).throw(exc), ("path",))
    expect_same(group, lambda: np.all(np.isfinite(model.predict_proba(X))), True)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_load_refuses_corrupt_files(saved, data):
    folder, path, raw, _ = saved
    kind = data.draw(st.sampled_from(["truncate", "flip", "junk"]))
    if kind == "truncate":
        cut = data.draw(st.integers(0, len(raw) - 1))
        blob = raw[:cut]
    elif kind == "flip":
        blob = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
        blob = bytes(blob)
    else:
        blob = data.draw(st.binary(max_size=400))
    target = folder / f"corrupt-{kind}.npz"
    target.write_bytes(blob)
    _load_or_error(f"load: {kind}", target)


def _config_edits(cfg):
    """Valid JSON, wrong model description."""
    layer0 = cfg["layers"][0]
    return [
        ("layers", "abc"), ("layers", [{"type": "Model", "config": {}}]), ("layers", [{"type": "Evil", "config": {}}]),
        ("layers",
         [{"type": "SharedConv2d", "config": {**layer0["config"], "kernel_size": [0, 0]}}] + cfg["layers"][1:]),
        ("layers", [{"type": "SharedConv2d", "config": {**layer0["config"], "foo": 1}}] + cfg["layers"][1:]),
        ("layers", [{"type": "SharedConv2d", "config": [1, 2]}] + cfg["layers"][1:]),
        ("layers", [{"config": layer0["config"]}] + cfg["layers"][1:]),
        ("n_classes", 7), ("n_classes", "3"), ("input_shape", [1, 9, 9]), ("input_shape", 6), ("dtype", "int8"),
        (None, [1, 2]), (None, "text"), (None, None),
    ]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**6), param=st.sampled_from(["missing", "shape", "nan", "str", "complex", "inf"]))
def test_load_refuses_wrong_descriptions_and_parameters(saved, pick, param):
    folder, _, _, arrays = saved
    cfg = json.loads(str(arrays["__config__"]))
    edits = _config_edits(cfg)
    key, value = edits[pick % len(edits)]
    edited = dict(cfg) if key is not None else value
    if key is not None:
        edited[key] = value
    bad = {**arrays, "__config__": np.array(json.dumps(edited))}
    np.savez(folder / "edited.npz", **bad)
    expect_error("load: wrong description", lambda: hc.models.load(folder / "edited.npz"), ("path",))
    bad = dict(arrays)
    w = arrays["layer0/J"]
    if param == "missing":
        del bad["layer0/J"]
    else:
        bad["layer0/J"] = {"shape": w[..., :-1], "nan": np.full_like(w, np.nan), "str": w.astype(str),
                           "complex": w.astype(complex), "inf": np.full_like(w, -np.inf)}[param]
    np.savez(folder / "edited.npz", **bad)
    expect_error("load: wrong parameters", lambda: hc.models.load(folder / "edited.npz"), ("path",))


def test_diverging_fit_raises_instead_of_returning_nan():
    model = hc.models.build("shared", SHAPE, 3, channels=(2,), seed=0, activation=None)
    exc = expect_error("fit: divergence", lambda: model.fit(X * 1e4, Y, epochs=3, lr=1e30, optimizer="sgd",
                                                             progress=False), ("lr", "grads"))
    assert isinstance(exc, FloatingPointError) and isinstance(exc, ValueError)


# ------------------------------------------------------------------ losses and optimisers


@settings(max_examples=100)
@given(loss=st.sampled_from(["softmax", "binary"]), dtype=st.sampled_from([np.float32, np.float64]),
       pick=st.integers(0, 10**6), seed=st.integers(0, 99))
def test_losses_reject_bad_arguments_and_accept_odd_layouts(loss, dtype, pick, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(5, 4)).astype(dtype)
    if loss == "softmax":
        fn, target = nn.softmax_cross_entropy, np.arange(5) % 4
        bad_target = bad_labels(target, rng)[pick % 13]
        target_name = "y"
    else:
        fn, target = nn.binary_cross_entropy, (rng.random((5, 4)) > 0.5).astype(dtype)
        bad_target = [target[:, :-1], target * 2, target - 1, np.full_like(target, np.nan), target.astype(complex),
                      target.astype(str), None, target[None]][pick % 8]
        target_name = "targets"
    reference = fn(logits.copy(), target)
    assert np.isfinite(reference[0]) and np.all(np.isfinite(reference[1]))
    cases = bad_arrays(logits, rng) + [(None, logits[0], (ValueError,)), (None, logits[:, :0], (ValueError,))]
    _, bad, types = cases[pick % len(cases)]
    expect_error(f"loss {loss}: bad logits", lambda: fn(bad, target), ("logits",), types + (ValueError,))
    expect_error(f"loss {loss}: bad target", lambda: fn(logits, bad_target), (target_name,))
    for odd in odd_layouts(logits).values():
        expect_same(f"loss {loss}: odd layout", lambda: fn(odd, target), reference)


OPTIMISER_ARGS = [
    (nn.SGD, dict(lr=0), "lr"), (nn.SGD, dict(lr=float("nan")), "lr"), (nn.SGD, dict(lr="1"), "lr"),
    (nn.SGD, dict(momentum=2), "momentum"), (nn.SGD, dict(momentum=-1), "momentum"),
    (nn.SGD, dict(weight_decay=-1), "weight_decay"), (nn.SGD, dict(clip_norm=0), "clip_norm"),
    (nn.Adam, dict(betas=0.9), "betas"), (nn.Adam, dict(betas=(0.9,)), "betas"),
    (nn.Adam, dict(betas=(0.9, 0.9, 0.9)), "betas"),
    (nn.Adam, dict(betas=(1.0, 0.999)), "betas[0]"), (nn.Adam, dict(betas=(0.9, 1.0)), "betas[1]"),
    (nn.Adam, dict(betas=(-0.1, 0.9)), "betas[0]"), (nn.Adam, dict(betas="ab"), "betas"),
    (nn.Adam, dict(eps=0), "eps"), (nn.Adam, dict(eps=float("inf")), "eps"), (nn.Adam, dict(lr=-1e-3), "lr"),
]


@settings(max_examples=len(OPTIMISER_ARGS) * 2)
@given(case=st.sampled_from(OPTIMISER_ARGS))
def test_optimisers_reject_bad_hyperparameters(case):
    cls, kwargs, name = case
    expect_error("optimiser hyperparameters", lambda: cls(**kwargs), (name,))


@settings(max_examples=60)
@given(cls=st.sampled_from([nn.SGD, nn.Adam]), pick=st.integers(0, 10))
def test_optimiser_step_rejects_mismatched_grads(cls, pick):
    p = {"J": np.ones(3), "b": np.zeros(2)}
    g = {"J": np.full(3, 0.1), "b": np.full(2, 0.1)}
    ro = np.ones(3)
    ro.setflags(write=False)
    cases = [
        ([p], [{"J": g["J"]}], "grads[0]"), ([p], [], "grads"), ([p], [{**g, "J": np.ones(4)}], "grads[0]['J']"),
        ([p], [{**g, "J": np.array([np.nan, 0, 0])}], "grads"), ([p], [{**g, "J": "abc"}], "grads[0]['J']"),
        ([p], [{**g, "J": g["J"].astype(complex)}], "grads[0]['J']"), (p, g, "params"), ([p], g, "grads"),
        ([{**p, "J": np.ones(3, int)}], [g], "params[0]['J']"), ([{**p, "J": ro}], [g], "params[0]['J']"),
        (["p"], [g], "params[0]"),
    ]
    params, grads, name = cases[pick]
    before = {k: v.copy() for k, v in p.items()}
    expect_error("optimiser step", lambda: cls(lr=0.1).step(params, grads), (name,))
    for key in p:  # nothing was updated
        assert np.array_equal(p[key], before[key])
