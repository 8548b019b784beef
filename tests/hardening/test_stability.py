"""Numerical stability: fields up to +-1e4 in every activation, loss and log-partition, in float32 and
float64, give finite values with the right limits, and finite gradients.

Each layer is given the identity coupling (a 1x1 window of weight 1, or J = eye), so its field h is
exactly the input x, and x sweeps -1e4 .. 1e4.
"""

import numpy as np
import pytest
from scipy import special

import hamiltonian_cnn as hc
from hamiltonian_cnn import nn

H = np.array([-1e4, -1e3, -50.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 50.0, 1e3, 1e4])
DTYPES = (np.float32, np.float64)
ACTIVATIONS = ("sigmoid", "tanh", "relu", "softplus", None)

VALUE = {"sigmoid": special.expit, "tanh": np.tanh, "relu": lambda h: np.maximum(h, 0.0),
         "softplus": lambda h: np.logaddexp(0.0, h), None: lambda h: h}
SLOPE = {"sigmoid": lambda h: special.expit(h) * special.expit(-h),
         "tanh": lambda h: 4 * np.exp(-2 * abs(h)) / (1 + np.exp(-2 * abs(h))) ** 2,
         "relu": lambda h: (h > 0).astype(float), "softplus": special.expit, None: np.ones_like}


def identity_layers(activation, dtype):
    """(layer, x) pairs whose field h equals x = H (and -H), for every coupling layer."""
    L = H.size
    x2 = np.stack([H, -H])  # (2, L)
    out = []
    full = nn.FullCoupled(L, L, activation=activation, dtype=dtype, bias=False)
    full.params["J"][...] = np.eye(L)
    out.append((full, x2))
    for cls, shape in ((nn.SharedConv1d, (2, 1, L)), (nn.SharedConv2d, (2, 1, 1, L))):
        layer = cls(1, 1, 1, activation=activation, dtype=dtype)
        layer.params["J"][...] = 1.0
        out.append((layer, x2.reshape(shape)))
    for cls, shape in ((nn.LocalConv1d, (2, 1, L)), (nn.LocalConv2d, (2, 1, 1, L))):
        layer = cls(1, 1, 1, activation=activation, dtype=dtype, input_size=shape[2:])
        layer.params["J"][...] = 1.0
        out.append((layer, x2.reshape(shape)))
    for cls, shape in ((nn.ConvTranspose1d, (2, 1, L)), (nn.ConvTranspose2d, (2, 1, 1, L))):
        layer = cls(1, 1, 1, activation=activation, dtype=dtype)
        layer.params["J"][...] = 1.0
        out.append((layer, x2.reshape(shape)))
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_every_activation_of_every_layer_is_finite_at_1e4(activation, dtype):
    tol = dict(rtol=2e-6 if dtype == np.float32 else 1e-12, atol=1e-30)
    for layer, x in identity_layers(activation, dtype):
        name = type(layer).__name__
        x = x.astype(dtype)
        h = x.astype(np.float64)
        y = layer.forward(x)
        assert y.dtype == dtype and np.all(np.isfinite(y)), name
        np.testing.assert_allclose(y, VALUE[activation](h), **tol, err_msg=name)
        dy = np.ones_like(y)
        dx = layer.backward(dy)
        assert np.all(np.isfinite(dx)), name
        for key, grad in layer.grads.items():
            assert np.all(np.isfinite(grad)), (name, key)
        # d y / d x = g'(h): exact in the saturated tails too (0 for sigmoid/tanh, 1 for softplus)
        np.testing.assert_allclose(dx, SLOPE[activation](h), rtol=tol["rtol"] * 10, atol=1e-6 if dtype == np.float32
                                   else 1e-12, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_pooling_is_finite_at_1e4(dtype):
    x = np.stack([H, -H]).astype(dtype).reshape(1, 2, 1, H.size)
    for layer in (nn.MaxPool2d((1, 2)), nn.AvgPool2d((1, 3), padding=(0, 1)), nn.GlobalAvgPool(),
                  nn.SpatialPyramidPool((1, 2), mode="max"), nn.SpatialPyramidPool((1, 3), mode="avg")):
        y = layer.forward(x)
        dx = layer.backward(np.ones_like(y))
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx)), type(layer).__name__
        assert np.abs(y).max() <= 1e4


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_softmax_cross_entropy_is_finite_at_1e4(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]], dtype=dtype)
    y = np.array([1, 1, 2])
    loss, grad = nn.softmax_cross_entropy(logits, y)
    exact = np.mean(special.logsumexp(logits.astype(np.float64), axis=1) - logits.astype(np.float64)[np.arange(3), y])
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and grad.dtype == dtype
    assert loss == pytest.approx(exact, rel=1e-6)  # (2e4 + 0 + (2e4 + log 2)) / 3
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(grad * 3, special.softmax(logits.astype(np.float64), axis=1) - np.eye(3)[y], atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_binary_cross_entropy_is_finite_at_1e4(dtype):
    logits = np.stack([H, -H]).astype(dtype)
    targets = (np.arange(logits.size).reshape(logits.shape) % 2).astype(dtype)
    loss, grad = nn.binary_cross_entropy(logits, targets)
    h = logits.astype(np.float64)
    exact = np.mean((np.logaddexp(0.0, h) - targets * h).sum(axis=1))
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and grad.dtype == dtype
    assert loss == pytest.approx(exact, rel=1e-6)
    np.testing.assert_allclose(grad * 2, special.expit(h) - targets, atol=1e-6)


def _closed_forms(h):
    """log Z per ensemble, in float64, written independently of the package."""
    flat = h.reshape(h.shape[0], -1)
    return {
        "binary": np.logaddexp(0.0, flat).sum(axis=1),
        "spin": np.logaddexp(flat, -flat).sum(axis=1),
        "onehot": special.logsumexp(h.reshape(h.shape[0], h.shape[1], -1), axis=2).sum(axis=1),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("ensemble", ("binary", "spin", "onehot"))
def test_log_partition_marginals_and_log_prob_are_finite_at_1e4(ensemble, dtype):
    coupling = hc.SharedCoupling(np.ones((1, 1, 1, 1), dtype=dtype))  # field = x
    x = np.stack([H, -H]).astype(dtype).reshape(2, 1, 1, H.size)
    Ham = hc.Hamiltonian(coupling, ensemble)
    h = Ham.field(x)
    assert h.dtype == dtype
    log_z = Ham.log_partition(x)
    assert np.all(np.isfinite(log_z))
    np.testing.assert_allclose(log_z, _closed_forms(h.astype(np.float64))[ensemble], rtol=1e-6)
    marginals = Ham.marginals(x)
    assert np.all(np.isfinite(marginals))
    low = -1.0 if ensemble == "spin" else 0.0
    assert marginals.min() >= low and marginals.max() <= 1.0
    d = Ham.sample(x, np.random.default_rng(0))
    log_q = Ham.log_prob(d, x)
    assert np.all(np.isfinite(log_q)) and np.all(log_q <= 1e-3)
    # the most probable configuration has log Q = 0 up to rounding; any other is far below
    assert np.all(np.isfinite(Ham.energy(d, x))) and np.all(np.isfinite(Ham.free_energy(x)))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("ensemble", ("binary", "spin", "onehot"))
def test_exact_enumeration_is_finite_at_1e4(ensemble, dtype):
    coupling = hc.SharedCoupling(np.ones((1, 1, 1), dtype=dtype))
    x = np.stack([H, -H]).astype(dtype)[:, None, :]  # 11 units, 2**11 configurations
    Ham = hc.Hamiltonian(coupling, ensemble)
    log_z, marginals = Ham.enumerate(x)
    assert np.all(np.isfinite(log_z)) and np.all(np.isfinite(marginals))
    np.testing.assert_allclose(log_z, Ham.log_partition(x), rtol=1e-6)
    np.testing.assert_allclose(marginals, Ham.marginals(x), atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_model_probabilities_are_finite_for_huge_logits(dtype):
    model = hc.models.build("full", (1, 3, 3), 3, channels=(2,), pool=None, seed=0, dtype=dtype, activation=None)
    model.layers[-1].params["J"][...] *= 1e3  # logits of order 1e4
    X = np.random.default_rng(0).normal(size=(5, 1, 3, 3)).astype(dtype) * 10
    p = model.predict_proba(X)
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1.0)
    loss, acc = model.evaluate(X, np.arange(5) % 3)
    assert np.isfinite(loss) and 0 <= acc <= 1
