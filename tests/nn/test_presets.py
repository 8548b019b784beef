"""The classic presets of seed 002: "vgg", "resnet", "inception" for every family and input kind;
their structure (stages, shortcuts, branches), the skips switch, and training on digits."""

import io

import numpy as np
import pytest

import hamiltonian_cnn as hc
from hamiltonian_cnn import nn
from hamiltonian_cnn.models import build
from hamiltonian_cnn.nn.architectures import classic_channels, inception_widths

PRESETS = ["vgg", "resnet", "inception"]


def walk(layers):
    """Every layer, containers' layers included."""
    from hamiltonian_cnn.nn.containers import iter_layers

    return iter_layers(layers)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("family, input_shape", [
    ("shared", (1, 8, 8)), ("local", (1, 8, 8)), ("full", (1, 8, 8)), ("sparse", (1, 8, 8)),
    ("shared", (1, 40)), ("local", (1, 40)), ("shared", (1, 32, 32)),
])
def test_presets_build_and_predict(preset, family, input_shape):
    if family == "sparse" and preset == "inception":  # a 5x5 branch draws 25 inputs from a 4x4 stage
        with pytest.raises(ValueError, match=r"coupling: 'sparse' draws .* 25 .* input \(32, 4, 4\) has only 16"):
            build(family, input_shape, 10, preset=preset)
        return
    model = build(family, input_shape, 10, preset=preset)
    X = np.random.default_rng(0).random((2,) + input_shape).astype(np.float32)
    assert model.predict_proba(X).shape == (2, 10)
    couplings = {type(layer).__name__ for layer in walk(model.layers) if "J" in layer.params}
    want = {"shared": "SharedConv", "local": "LocalConv", "full": "FullCoupled", "sparse": "SparseCoupled"}[family]
    assert all(name.startswith(want) for name in couplings - {"FullCoupled"})
    # the default: the binary ensemble, centred after every coupling block
    assert any(isinstance(layer, nn.Centring) for layer in walk(model.layers))
    assert model.meta["arch"]["preset"] == preset and model.meta["arch"]["init"] == "variance"


def test_classic_channels_fit_the_inputs():
    assert classic_channels("vgg", (1, 8, 8)) == (16, 16, 32, 32)
    assert classic_channels("resnet", (1, 40)) == (16, 16, 32, 32, 64, 64)
    assert classic_channels("inception", (1, 32, 32)) == (32, 64, 128)
    for preset in PRESETS:
        for shape in ((1, 8, 8), (1, 40), (1, 32, 32)):
            model = build("shared", shape, 10, preset=preset)
            last_sites = [s for s in model.shapes if len(s) == len(shape)][-1][1:]
            assert min(last_sites) >= 2  # the pools stop while a few sites are left


def test_resnet_structure_and_skips_switch():
    model = build("shared", (1, 8, 8), 10, preset="resnet")
    blocks = [layer for layer in model.layers if isinstance(layer, nn.Residual)]
    assert len(blocks) == 4
    # a 1x1 shortcut exactly where the width changes (16 -> 32), the identity elsewhere
    assert [b.shortcut is not None for b in blocks] == [False, False, True, False]
    projection = blocks[2].shortcut[0]
    assert projection.kernel_size == (1, 1) and projection.activation is None
    assert all(isinstance(b.F[-1], nn.Centring) for b in blocks)  # F(x) centred before the sum
    plain = build("shared", (1, 8, 8), 10, preset="resnet", skips=False)
    assert not any(isinstance(layer, nn.Residual) for layer in plain.layers)
    assert plain.n_params == model.n_params - projection.n_params
    assert plain.name.endswith("noskips")
    deep = build("shared", (1, 8, 8), 10, preset="resnet", channels=(16,) * 8)
    assert sum(isinstance(layer, nn.Residual) for layer in deep.layers) == 8
    # all_layers reaches the couplings inside the blocks: the stem, 2 per block, the head
    couplings = [layer for layer in deep.all_layers() if "J" in layer.params]
    assert len(couplings) == 1 + 2 * 8 + 1
    plain_deep = build("shared", (1, 8, 8), 10, preset="resnet", channels=(16,) * 8, skips=False)
    assert [type(c) for c in couplings] == [type(layer) for layer in plain_deep.all_layers() if "J" in layer.params]
    text = deep.summary(file=io.StringIO())
    assert "Residual(F 4 layers + x)" in text
    with pytest.raises(ValueError, match="skips"):
        build("shared", (1, 8, 8), 10, preset="vgg", skips=False)
    with pytest.raises(TypeError, match="skips"):
        build("shared", (1, 8, 8), 10, preset="resnet", skips="no")
    with pytest.raises(ValueError, match="preset"):
        build("shared", (1, 8, 8), 10, preset="alexnet")


def test_inception_module_branches():
    model = build("shared", (1, 8, 8), 10, preset="inception")
    modules = [layer for layer in model.layers if isinstance(layer, nn.Concat)]
    assert len(modules) == 2
    w = inception_widths(64)
    b1, b3, b5, bp = modules[1].branches
    assert [layer.kernel_size for layer in b1 if "J" in layer.params] == [(1, 1)]
    assert [layer.kernel_size for layer in b3 if "J" in layer.params] == [(1, 1), (3, 3)]
    assert [layer.kernel_size for layer in b5 if "J" in layer.params] == [(1, 1), (5, 5)]
    assert isinstance(bp[0], nn.MaxPool2d) and bp[1].kernel_size == (1, 1)
    assert b3[0].out_ch == w["3x3_reduce"] and b5[0].out_ch == w["5x5_reduce"]
    assert model.shapes[model.layers.index(modules[1]) + 1][0] == 64 == w["1x1"] + w["3x3"] + w["5x5"] + w["pool_proj"]


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_map_to_torch(preset):
    torch = pytest.importorskip("torch")
    model = build("local", (1, 8, 8), 10, preset=preset, seed=3)
    X = np.random.default_rng(1).random((4, 1, 8, 8)).astype(np.float32)
    model.fit(X, np.arange(4), epochs=1, progress=False, seed=0)  # offsets leave their init
    with torch.no_grad():
        logits = hc.interop.to_torch(model)(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(logits, model.decision_function(X), rtol=1e-4, atol=1e-5)


def test_to_torch_refuses_an_unmappable_layer_inside_a_container():
    pytest.importorskip("torch")
    block = nn.Concat([[nn.SpatialPyramidPool((1, 2))], [nn.SpatialPyramidPool((1, 2))]])
    model = hc.nn.Model([block, nn.FullCoupled(20, 3)], (2, 4, 4), 3)
    with pytest.raises(ValueError, match=r"layer 0, branch0 layer 0 \(SpatialPyramidPool\) has no torch"):
        hc.interop.to_torch(model)


@pytest.mark.slow
@pytest.mark.parametrize("preset, bound", [("vgg", 0.95), ("resnet", 0.95), ("inception", 0.9)])
def test_presets_train_on_digits_with_defaults(preset, bound):
    # measured with fit seeds 0, 1, 2: vgg 0.984 0.980 0.984, resnet 0.993 0.984 0.987, inception 0.984 0.987
    # 0.989; chance is 0.1
    X, y, Xt, yt = hc.data.load("digits")
    model = build("shared", (1, 8, 8), 10, preset=preset)
    model.fit(X, y, seed=0, progress=False)
    assert model.score(Xt, yt) >= bound


@pytest.mark.slow
def test_a_deep_resnet_needs_its_skips():
    # 16 residual blocks (33 couplings) of the binary ensemble on digits, 5 epochs: measured over
    # seeds 0, 1, 2 the training accuracy of the last epoch is 0.98-0.995 with the skips and
    # 0.30-0.35 without them (chance 0.10); at 30 epochs the test accuracy is 0.996 against 0.27 (seed 0)
    X, y, _, _ = hc.data.load("digits")
    last = {}
    for skips in (True, False):
        model = build("shared", (1, 8, 8), 10, preset="resnet", channels=(16,) * 16, skips=skips)
        last[skips] = model.fit(X, y, epochs=5, seed=0, progress=False)["accuracy"][-1]
    assert last[True] >= 0.9 and last[False] <= 0.6, last
