"""Losses (cross-entropies of the one-hot and binary ensembles) and optimisers."""

import numpy as np
import pytest

from hamiltonian_cnn.nn.losses import binary_cross_entropy, softmax_cross_entropy
from hamiltonian_cnn.nn.optim import SGD, Adam, make_optimizer


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(xp) - f(xm)) / (2 * eps)
    return g


def test_softmax_cross_entropy_value_gradient_and_kl():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 4))
    y = np.array([0, 3, 1, 1, 2])
    loss, grad = softmax_cross_entropy(logits, y)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), y])), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_grad(lambda z: softmax_cross_entropy(z, y)[0], logits), atol=1e-9)
    # KL(P_data || Q) = cross-entropy - H(P_data); for one-hot data H = 0, so they coincide here
    kl = np.mean([np.sum(np.eye(4)[t] * (np.log(np.eye(4)[t] + 1e-300) - np.log(q))) for t, q in zip(y, p)])
    assert loss == pytest.approx(kl, rel=1e-9)


def test_binary_cross_entropy_is_the_binary_ensemble_likelihood():
    rng = np.random.default_rng(1)
    h = rng.normal(size=(3, 2, 4))
    d = (rng.random(size=h.shape) < 0.5).astype(float)
    loss, grad = binary_cross_entropy(h, d)
    log_q = (d * h).reshape(3, -1).sum(1) - np.log1p(np.exp(h)).reshape(3, -1).sum(1)
    assert loss == pytest.approx(-log_q.mean(), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_grad(lambda z: binary_cross_entropy(z, d)[0], h), atol=1e-9)
    np.testing.assert_allclose(grad, (1 / (1 + np.exp(-h)) - d) / 3, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_are_finite_for_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=dtype)
    loss, grad = softmax_cross_entropy(logits, [1, 2])
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(1e4, rel=1e-6)
    loss, grad = binary_cross_entropy(logits, np.array([[0, 1, 0], [1, 0, 1]], dtype=dtype))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))


def test_loss_arguments_are_checked():
    with pytest.raises(ValueError, match="y"):
        softmax_cross_entropy(np.zeros((2, 3)), [0, 3])
    with pytest.raises(ValueError, match="y"):
        softmax_cross_entropy(np.zeros((2, 3)), [0])
    with pytest.raises(TypeError, match="y"):
        softmax_cross_entropy(np.zeros((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="logits"):
        softmax_cross_entropy(np.full((2, 3), np.nan), [0, 1])
    with pytest.raises(ValueError, match="targets"):
        binary_cross_entropy(np.zeros((2, 3)), np.full((2, 3), 2.0))


def quadratic(opt, steps=300):
    """Minimise 0.5 |A p - b|^2; returns the distance to the optimum."""
    rng = np.random.default_rng(2)
    A = rng.normal(size=(6, 4))
    b = rng.normal(size=6)
    p = {"J": np.zeros(4)}
    target = np.linalg.lstsq(A, b, rcond=None)[0]
    for _ in range(steps):
        g = {"J": A.T @ (A @ p["J"] - b)}
        opt.step([p], [g])
    return np.linalg.norm(p["J"] - target)


def test_optimisers_converge_on_a_quadratic():
    assert quadratic(SGD(lr=0.02), steps=20000) < 1e-3
    assert quadratic(SGD(lr=0.02, momentum=0.9), steps=1000) < 1e-6
    assert quadratic(Adam(lr=0.05), steps=2000) < 1e-3
    # weight decay pulls towards zero: the optimum moves
    assert quadratic(SGD(lr=0.02, weight_decay=0.5)) > 1e-2


def test_sgd_step_is_exact_and_clipping_bounds_the_step():
    p = {"J": np.array([1.0, 2.0])}
    SGD(lr=0.5).step([p], [{"J": np.array([2.0, -2.0])}])
    np.testing.assert_allclose(p["J"], [0.0, 3.0])
    p = {"J": np.zeros(2)}
    norm = SGD(lr=1.0, clip_norm=1.0).step([p], [{"J": np.array([30.0, 40.0])}])
    assert norm == pytest.approx(50.0)
    np.testing.assert_allclose(p["J"], [-0.6, -0.8])


def test_optimiser_arguments_are_checked():
    with pytest.raises(ValueError, match="lr"):
        SGD(lr=0)
    with pytest.raises(ValueError, match="lr"):
        Adam(lr=float("nan"))
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(FloatingPointError):
        SGD(lr=0.1).step([{"J": np.zeros(2)}], [{"J": np.array([np.inf, 0.0])}])
