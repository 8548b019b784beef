"""hc.interop: to_torch reproduces the logits of every family; from_torch maps what it can and names
what it cannot. Skipped where PyTorch is not installed (it is an optional extra)."""

import numpy as np
import pytest
from scipy.special import softmax

import hamiltonian_cnn as hc

torch = pytest.importorskip("torch", reason="PyTorch is an optional extra: pip install 'hamiltonian_cnn[torch]'")


def trained(coupling, input_shape, **arch):
    rng = np.random.default_rng(0)
    model = hc.models.build(coupling, input_shape, 10, seed=1, **arch)
    X = rng.random((24,) + input_shape).astype(np.float32)
    model.fit(X, rng.integers(0, 10, 24), epochs=1, seed=0, progress=False)  # offsets and biases leave their init
    return model, X


@pytest.mark.parametrize("coupling, input_shape, arch", [
    ("shared", (1, 8, 8), {}),
    ("local", (1, 8, 8), {}),
    ("full", (1, 8, 8), {}),
    ("sparse", (1, 8, 8), {}),
    ("shared", (1, 40), {}),
    ("local", (2, 12), {"padding": "circular"}),
    ("shared", (1, 9, 9), {"padding": "circular", "head": "gap", "pool_mode": "avg"}),
    ("shared", (1, 8, 8), {"preset": "lenet5"}),
    ("local", (1, 10, 10), {"padding": ((1, 0), (2, 1)), "activation": "relu"}),
    ("shared", (1, 12, 12), {"stride": 2, "pool": None, "activation": "tanh"}),
])
def test_to_torch_gives_the_same_probabilities(coupling, input_shape, arch):
    model, X = trained(coupling, input_shape, **arch)
    module = hc.interop.to_torch(model)
    with torch.no_grad():
        logits = module(torch.as_tensor(X)).numpy()
    # float32 rounding: torch and the kernels sum in different orders (and torch's order follows its
    # thread count), a few ulps per layer; 2e-6 was exceeded once (4.7e-6, stride-2 tanh) on a loaded machine
    np.testing.assert_allclose(softmax(logits, axis=1), model.predict_proba(X), atol=1e-5)


def test_to_torch_float64_model_is_exact():
    model = hc.models.build("shared", (1, 8, 8), 10, seed=2, dtype=np.float64)
    X = np.random.default_rng(1).random((5, 1, 8, 8))
    with torch.no_grad():
        logits = hc.interop.to_torch(model)(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(logits, model.decision_function(X), atol=1e-12)


def test_from_torch_maps_a_plain_cnn():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 8, 3), torch.nn.Sigmoid(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(8, 10),
    ).eval()
    model = hc.interop.from_torch(net, (1, 8, 8))
    assert [type(layer).__name__ for layer in model.layers] == [
        "SharedConv2d", "MaxPool2d", "SharedConv2d", "AvgPool2d", "Flatten", "FullCoupled"]
    assert model.layers[0].activation == "relu" and model.layers[5].activation is None
    X = np.random.default_rng(2).random((7, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        want = torch.softmax(net(torch.as_tensor(X)), dim=1).numpy()
    np.testing.assert_allclose(model.predict_proba(X), want, atol=2e-6)


@pytest.mark.parametrize("net, match", [
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)), "BatchNorm2d"),
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")), "circular"),
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), "logits"),
])
def test_from_torch_refuses_what_it_cannot_map(net, match):
    with pytest.raises(ValueError, match=match):
        hc.interop.from_torch(net(), (1, 8, 8))


def test_to_torch_maps_a_transposed_coupling_as_its_adjoint():
    layers = [hc.nn.ConvTranspose2d(1, 2, 3, stride=2, padding=1, output_padding=1, dtype=np.float64, seed=0),
              hc.nn.Flatten(), hc.nn.FullCoupled(2 * 8 * 8, 3, activation=None, dtype=np.float64, seed=1)]
    layers[0].params["b"][...] = [0.3, -0.2]
    model = hc.models.Model(layers, (1, 4, 4), 3, dtype=np.float64)
    X = np.random.default_rng(0).random((5, 1, 4, 4))
    with torch.no_grad():
        logits = hc.interop.to_torch(model)(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(logits, model.decision_function(X), atol=1e-12)
