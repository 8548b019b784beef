"""Boltzmann weights: exact enumeration against every closed form, derivatives, sampling."""

import itertools

import numpy as np
import pytest
from scipy import stats

import hamiltonian_cnn as hc
from hamiltonian_cnn.physics import get_ensemble

ENSEMBLES = ["binary", "spin", "onehot"]


def hamiltonian(ensemble, seed=0, c_out=2, scale=1.0):
    rng = np.random.default_rng(seed)
    coupling = hc.SharedCoupling(scale * rng.normal(size=(c_out, 1, 2, 2)), scale * rng.normal(size=c_out), stride=1)
    return hc.Hamiltonian(coupling, ensemble)


def brute_force(ensemble, h):
    """Independent reference: itertools over every configuration, plain numpy."""
    ens = get_ensemble(ensemble)
    flat = h.reshape(-1)
    if ensemble == "onehot":
        c, s = h.shape[0], h[0].size
        configs = []
        for sites in itertools.product(range(s), repeat=c):
            d = np.zeros((c, s))
            d[np.arange(c), sites] = 1
            configs.append(d.reshape(-1))
    else:
        configs = [np.array(v, float) for v in itertools.product(ens.states, repeat=flat.size)]
    configs = np.array(configs)
    a = configs @ flat
    log_z = np.log(np.exp(a - a.max()).sum()) + a.max()
    p = np.exp(a - log_z)
    return log_z, (p @ configs).reshape(h.shape)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_enumeration_equals_closed_forms(ensemble):
    H = hamiltonian(ensemble, seed=1)
    x = np.random.default_rng(2).normal(size=(5, 1, 4, 3))  # 2 channels x 3 x 2 sites = 12 units
    log_z, marg = H.enumerate(x)
    np.testing.assert_allclose(log_z, H.log_partition(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(marg, H.marginals(x), rtol=1e-12, atol=1e-12)
    h = H.field(x)
    for n in range(2):
        ref_z, ref_m = brute_force(ensemble, h[n])
        assert log_z[n] == pytest.approx(ref_z, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(marg[n], ref_m, atol=1e-12)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_enumeration_is_exact_for_large_systems_and_large_fields(ensemble):
    rng = np.random.default_rng(5)
    units = (1, 20) if ensemble != "onehot" else (4, 30)
    ens = get_ensemble(ensemble)
    for scale in (1.0, 30.0, 1e4):
        h = scale * rng.normal(size=(2,) + units)
        log_z, marg = ens.enumerate(h)
        assert np.all(np.isfinite(log_z)) and np.all(np.isfinite(marg))
        np.testing.assert_allclose(log_z, ens.log_partition(h), rtol=1e-12)
        np.testing.assert_allclose(marg, ens.marginals(h), atol=1e-12)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_log_partition_derivative_is_the_marginal(ensemble):
    """d log Z / d h_IJ = <d_IJ> (central finite differences of the closed form)."""
    ens = get_ensemble(ensemble)
    h = np.random.default_rng(3).normal(size=(1, 2, 3, 2))
    eps = 1e-6
    grad = np.zeros_like(h)
    for idx in np.ndindex(h.shape):
        hp, hm = h.copy(), h.copy()
        hp[idx] += eps
        hm[idx] -= eps
        grad[idx] = (ens.log_partition(hp)[0] - ens.log_partition(hm)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, ens.marginals(h), atol=1e-8)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_probabilities_sum_to_one_and_energy_is_minus_d_dot_h(ensemble):
    H = hamiltonian(ensemble, seed=4, c_out=1)
    x = np.random.default_rng(6).normal(size=(1, 1, 3, 3))
    h = H.field(x)
    ens = H.ensemble
    total = 0.0
    if ensemble == "onehot":
        configs = [np.eye(h.size)[k].reshape(h.shape) for k in range(h.size)]
    else:
        configs = [np.array(v, float).reshape(h.shape) for v in itertools.product(ens.states, repeat=h.size)]
    for d in configs:
        assert H.energy(d, x)[0] == pytest.approx(-(d * h).sum(), abs=1e-12)
        total += np.exp(H.log_prob(d, x)[0])
    assert total == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_sample_frequencies_match_marginals(ensemble):
    """Chi-square goodness of fit of per-unit frequencies against the marginals (fixed seed)."""
    H = hamiltonian(ensemble, seed=7, c_out=1)
    x = np.random.default_rng(8).normal(size=(1, 1, 3, 3))
    x = np.repeat(x, 4000, axis=0)
    d = H.sample(x, rng=np.random.default_rng(9))
    assert set(np.unique(d)) <= set(H.ensemble.states)
    m = H.marginals(x[:1])[0].reshape(-1)
    d = d.reshape(d.shape[0], -1)
    n = d.shape[0]
    if ensemble == "onehot":
        assert np.all(d.sum(axis=1) == 1)
        observed = d.sum(axis=0)
        chi2, p = stats.chisquare(observed, m * n)
        assert p > 1e-3
    else:
        p_up = (m + 1) / 2 if ensemble == "spin" else m
        ups = (d == 1).sum(axis=0)
        chi2 = (((ups - n * p_up) ** 2) / (n * p_up * (1 - p_up))).sum()
        assert stats.chi2.sf(chi2, df=len(m)) > 1e-3
    # a different field gives visibly different frequencies (the test can fail)
    assert not np.allclose(d.mean(axis=0), 0.5, atol=0.01)


def test_enumeration_refuses_more_than_2_to_the_26():
    H = hc.Hamiltonian(hc.SharedCoupling(np.ones((1, 1, 1, 1))), "binary")
    with pytest.raises(ValueError, match="2\\*\\*26") as info:
        H.enumerate(np.ones((1, 1, 3, 9)))  # 27 units
    assert "1.34e+08" in str(info.value)
    H.enumerate(np.ones((1, 1, 1, 20)))  # fine


def test_closed_forms_are_stable_for_huge_fields():
    for ensemble in ENSEMBLES:
        ens = get_ensemble(ensemble)
        h = np.array([[[1e4, -1e4, 0.0, 5e3]]])
        assert np.all(np.isfinite(ens.log_partition(h)))
        m = ens.marginals(h)
        assert np.all(np.isfinite(m)) and np.all(np.abs(m) <= 1)
    assert get_ensemble("binary").log_partition(np.array([[1e4, -1e4]]))[0] == pytest.approx(1e4)
    assert get_ensemble("spin").log_partition(np.array([[1e4, -1e4]]))[0] == pytest.approx(2e4)


def test_bad_ensemble_and_configurations():
    coupling = hc.SharedCoupling(np.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="ensemble"):
        hc.Hamiltonian(coupling, "ising")
    with pytest.raises(TypeError, match="coupling"):
        hc.Hamiltonian(np.ones(3), "binary")
    x = np.ones((1, 1, 3, 3))
    with pytest.raises(ValueError, match="d"):
        hc.Hamiltonian(coupling, "binary").energy(np.full((1, 1, 2, 2), 2.0), x)
    with pytest.raises(ValueError, match="d"):
        hc.Hamiltonian(coupling, "spin").energy(np.zeros((1, 1, 2, 2)), x)
    with pytest.raises(ValueError, match="exactly one"):
        hc.Hamiltonian(coupling, "onehot").energy(np.zeros((1, 1, 2, 2)), x)
    with pytest.raises(ValueError, match="d: expected shape"):
        hc.Hamiltonian(coupling, "binary").energy(np.zeros((1, 1, 3, 3)), x)
