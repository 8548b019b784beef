"""β-LASSO (Neyshabur 2020): gradient step, L1 proximal step, hard threshold at β λ."""

import numpy as np
import pytest

import hamiltonian_cnn as hc
from hamiltonian_cnn.nn.optim import BetaLasso, make_optimizer


def test_one_step_against_a_hand_computation():
    J = np.array([0.50, -0.30, 0.12, -0.05, 0.0, 0.2009])
    b = np.array([0.4, -0.4])
    gJ = np.array([1.0, -1.0, 0.0, 0.0, 2.0, 0.0])
    gb = np.array([1.0, 1.0])
    opt = BetaLasso(lr=0.1, lam=0.01, beta=20.0, momentum=0.0)
    params, grads = [{"J": J.copy(), "b": b.copy()}], [{"J": gJ, "b": gb}]
    opt.step(params, grads)
    # gradient step: [0.4, -0.2, 0.12, -0.05, -0.2, 0.2009]; soft threshold by lr*lam = 0.001:
    # [0.399, -0.199, 0.119, -0.049, -0.199, 0.1999]; hard threshold beta*lam = 0.2 zeroes |J| < 0.2
    np.testing.assert_allclose(params[0]["J"], [0.399, 0.0, 0.0, 0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(params[0]["b"], [0.3, -0.5])  # biases: the gradient step only


def test_soft_threshold_stops_at_zero():
    params = [{"J": np.array([0.0005, -0.0005, 0.3])}]
    BetaLasso(lr=1.0, lam=0.001, beta=0.0, momentum=0.0).step(params, [{"J": np.zeros(3)}])
    np.testing.assert_allclose(params[0]["J"], [0.0, 0.0, 0.299])


def test_names_instances_and_arguments():
    assert isinstance(make_optimizer("beta_lasso", 0.05), BetaLasso)
    mine = BetaLasso(lr=0.2, lam=1e-4)
    assert make_optimizer(mine, 0.01) is mine
    with pytest.raises(ValueError, match="lam"):
        BetaLasso(lam=-1.0)
    with pytest.raises(ValueError, match="beta"):
        BetaLasso(beta=float("nan"))


def test_full_coupling_learns_sparse_couplings_and_still_classifies_digits():
    X, y, Xt, yt = hc.data.load("digits")
    model = hc.models.build("full", (1, 8, 8), 10, seed=0)
    model.fit(X, y, epochs=10, lr=0.1, optimizer="beta_lasso", seed=0, progress=False)
    first = model.layers[0].params["J"]
    assert np.mean(first == 0) > 0.5
    assert model.score(Xt, yt) > 0.85
