"""hc.RBM against brute force: every (x, d) enumerated with itertools, fields written as loops.

    E(x, d) = -sum_IJ d_IJ h_IJ(x) - a.x,  F(x) = -a.x - sum softplus(h(x)),  Z = sum_{x, d} exp(-E)
"""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import hamiltonian_cnn as hc
from hamiltonian_cnn import rbm as rbm_module

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import central_difference  # noqa: E402

# ------------------------------------------------------------------ references


def shared_field_loops(W, b, x):
    """h[n, o, I, J] = sum_{c, a, b} W[o, c, a, b] x[n, c, I + a, J + b] + b[o]: stride 1, no padding."""
    n, C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    h = np.zeros((n, O, H - kh + 1, Wd - kw + 1))
    for s in range(n):
        for o in range(O):
            for I in range(H - kh + 1):
                for J in range(Wd - kw + 1):
                    h[s, o, I, J] = b[o] + sum(W[o, c, p, q] * x[s, c, I + p, J + q]
                                               for c in range(C) for p in range(kh) for q in range(kw))
    return h


def all_states(shape):
    """Every binary array of this per-sample shape, (2**prod(shape), *shape)."""
    n = int(np.prod(shape))
    return np.array(list(itertools.product([0.0, 1.0], repeat=n))).reshape((-1,) + tuple(shape))


def brute_log_z(field, a_full, input_shape, hidden_shape):
    """log sum over every (x, d) of exp(d.h(x) + a.x)."""
    xs = all_states(input_shape)
    ds = all_states(hidden_shape).reshape(-1, int(np.prod(hidden_shape)))
    h = field(xs).reshape(len(xs), -1)
    log_w = ds @ h.T + (xs.reshape(len(xs), -1) @ a_full.reshape(-1))[None, :]
    top = log_w.max()
    return top + np.log(np.exp(log_w - top).sum())


def shared_rbm(seed=0, shape=(1, 2, 3), filters=2, window=(2, 2), scale=1.0, **kwargs):
    rng = np.random.default_rng(seed)
    c = hc.SharedCoupling(scale * rng.standard_normal((filters, shape[0]) + window),
                          0.5 * rng.standard_normal(filters))
    return hc.RBM(c, shape, visible_bias=0.5 * rng.standard_normal(shape[0]), **kwargs)


def full_rbm(seed=0, shape=(1, 2, 2), hidden=(3, 1), scale=1.0, visible="binary"):
    rng = np.random.default_rng(seed)
    c = hc.FullCoupling(scale * rng.standard_normal(hidden + shape), 0.5 * rng.standard_normal(hidden),
                        input_shape=shape)
    return hc.RBM(c, shape, visible=visible, visible_bias=0.5 * rng.standard_normal(shape))


def local_rbm(seed=0, shape=(1, 3, 3), filters=1, scale=1.0):
    rng = np.random.default_rng(seed)
    c = hc.LocalCoupling(scale * rng.standard_normal((filters, 2, 2, shape[0], 2, 2)),
                         0.5 * rng.standard_normal((filters, 2, 2)), input_shape=shape)
    return hc.RBM(c, shape, visible_bias=0.5 * rng.standard_normal(shape))


def dense_field(r):
    """h(x) from the RBM's dense J and bias (for the families whose field is a matrix product anyway)."""
    W = r.coupling.dense(r.input_shape).reshape(r.n_hidden, r.n_visible)
    b = np.broadcast_to(r.coupling.bias.reshape(r.coupling.bias.shape + (1,) * (len(r.hidden_shape)
                                                                               - r.coupling.bias.ndim)),
                        r.hidden_shape).reshape(-1)
    return lambda xs: xs.reshape(len(xs), -1) @ W.T + b


def a_full(r):
    a = r.a.reshape(r.a.shape + (1,) * (len(r.input_shape) - r.a.ndim))
    return np.broadcast_to(a, r.input_shape)


# ------------------------------------------------------------------ energies and log Z


def test_shared_field_is_the_loop_reference():
    r = shared_rbm(shape=(2, 3, 4))
    x = (np.random.default_rng(0).random((20, 2, 3, 4)) < 0.5).astype(float)
    np.testing.assert_allclose(r.field(x), shared_field_loops(r.params["J"], r.params["b"], x), atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: shared_rbm(shape=(1, 2, 3)),                       # 6 visible < 8 hidden: x enumerated
    lambda: shared_rbm(shape=(1, 3, 3), filters=1),            # 9 visible > 4 hidden: d enumerated
    lambda: shared_rbm(shape=(2, 2, 3), filters=1, window=(1, 2)),
    lambda: full_rbm(),
    lambda: local_rbm(),
], ids=["shared_x", "shared_d", "shared_2ch", "full", "local"])
def test_exact_log_partition_is_brute_force(make):
    r = make()
    field = (lambda xs: shared_field_loops(r.params["J"], r.params["b"], xs)) \
        if isinstance(r.coupling, hc.SharedCoupling) else dense_field(r)
    want = brute_log_z(field, a_full(r), r.input_shape, r.hidden_shape)
    assert r.log_partition() == pytest.approx(want, rel=1e-10, abs=1e-10)


def test_log_partition_1d_strided_and_padded_shared_coupling():
    rng = np.random.default_rng(3)
    c = hc.SharedCoupling(rng.standard_normal((2, 1, 3)), rng.standard_normal(2), stride=2, padding=1)
    r = hc.RBM(c, (1, 5), visible_bias=rng.standard_normal((1, 5)))
    W = c.dense((1, 5)).reshape(-1, 5)
    b = np.repeat(c.bias, 3)
    want = brute_log_z(lambda xs: xs.reshape(len(xs), -1) @ W.T + b, r.a, (1, 5), r.hidden_shape)
    assert r.log_partition() == pytest.approx(want, rel=1e-10)


def test_energy_and_free_energy_are_brute_force():
    r = shared_rbm(shape=(1, 2, 3))
    xs = all_states(r.input_shape)
    ds = all_states(r.hidden_shape)
    h = shared_field_loops(r.params["J"], r.params["b"], xs).reshape(len(xs), -1)
    ax = xs.reshape(len(xs), -1) @ a_full(r).reshape(-1)
    E = r.energy(np.repeat(xs, len(ds), axis=0), np.tile(ds, (len(xs), 1, 1, 1))).reshape(len(xs), len(ds))
    want = -(h @ ds.reshape(len(ds), -1).T) - ax[:, None]
    np.testing.assert_allclose(E, want, atol=1e-12)
    F = r.free_energy(xs)
    np.testing.assert_allclose(F, -np.log(np.exp(-want).sum(axis=1)), atol=1e-10)
    # the marginal of x: exp(-F) / Z sums to one
    assert np.exp(-F - r.log_partition()).sum() == pytest.approx(1.0, rel=1e-10)


def test_gaussian_log_partition_is_a_numerical_integral():
    r = full_rbm(shape=(1, 2), hidden=(2, 1), scale=0.7, visible="gaussian")
    W = r.params["J"].reshape(2, 2)
    b = r.params["b"].reshape(-1)
    a = r.params["a"].reshape(-1)
    grid = np.linspace(-12, 12, 1201)
    X1, X2 = np.meshgrid(grid, grid, indexing="ij")
    x = np.stack([X1.ravel(), X2.ravel()], axis=1)
    total = 0.0
    for d in itertools.product([0.0, 1.0], repeat=2):
        d = np.array(d)
        log_w = d @ (W @ x.T + b[:, None]) - 0.5 * ((x - a) ** 2).sum(axis=1)
        total += np.exp(log_w).sum() * (grid[1] - grid[0]) ** 2
    assert r.log_partition() == pytest.approx(np.log(total), rel=1e-8)
    # and its free energy: |x - a|^2 / 2 - sum softplus(h)
    xs = x[::50000].reshape(-1, 1, 2)
    F = 0.5 * ((xs.reshape(-1, 2) - a) ** 2).sum(axis=1) - np.logaddexp(0, xs.reshape(-1, 2) @ W.T + b).sum(axis=1)
    np.testing.assert_allclose(r.free_energy(xs), F, atol=1e-12)


@pytest.mark.parametrize("make", [lambda: shared_rbm(shape=(1, 3, 3), filters=2),
                                  lambda: full_rbm(shape=(1, 3, 3), hidden=(4, 1)),
                                  lambda: full_rbm(shape=(1, 3), hidden=(3, 1), scale=0.5, visible="gaussian")],
                         ids=["shared", "full", "gaussian"])
def test_ais_agrees_with_exact_within_its_error_bars(make):
    r = make()
    exact = r.log_partition()
    estimate, stderr = r.log_partition("ais", n_chains=200, n_betas=1000, seed=1)
    assert 0 < stderr < 0.1
    assert abs(estimate - exact) < 3 * stderr


def test_ais_from_a_data_base_rate_and_log_likelihood():
    r = shared_rbm(shape=(1, 3, 3), filters=2)
    X = all_states((1, 3, 3))[::37]
    exact = r.log_partition()
    estimate, stderr = r.log_partition("ais", n_chains=200, n_betas=1000, seed=2, base=np.full((1, 3, 3), 0.3))
    assert abs(estimate - exact) < 3 * stderr
    assert r.log_likelihood(X) == pytest.approx(-r.free_energy(X).mean() - exact)
    assert r.log_likelihood(X, log_z=estimate) == pytest.approx(-r.free_energy(X).mean() - estimate)


# ------------------------------------------------------------------ gradients


def exact_gradient(r, X):
    """d/dtheta of the mean log-likelihood, by central differences of the brute-force log p(X)."""
    def ll():
        field = dense_field(r)
        return -r.free_energy(X).mean() - brute_log_z(field, a_full(r), r.input_shape, r.hidden_shape)

    grads = {}
    for key, p in r.params.items():
        flat = p.reshape(-1)
        grads[key] = np.array([central_difference(ll, flat, i, eps=1e-5) for i in range(flat.size)]).reshape(p.shape)
    return grads


def gradient_error(g, exact):
    return max(float(np.abs(g[k] - exact[k]).max()) for k in exact)


@pytest.mark.parametrize("make", [lambda: shared_rbm(shape=(1, 2, 3), scale=1.5),
                                  lambda: local_rbm(shape=(1, 3, 3), scale=1.5)], ids=["shared", "local"])
def test_cd_and_pcd_gradients_converge_to_the_exact_gradient(make):
    r = make()
    X = all_states(r.input_shape)[[1, 6, 11, 20, 35, 48, 63][: min(7, 2 ** r.n_visible)]]
    exact = exact_gradient(r, X)
    scale = max(float(np.abs(v).max()) for v in exact.values())
    many = np.repeat(X, 3000, axis=0)  # the same data term; 3000 negative chains per data point
    cd1 = gradient_error(r.gradient(many, "cd", k=1, seed=0), exact)
    cd_long = gradient_error(r.gradient(many, "cd", k=40, seed=0), exact)
    assert cd_long < 0.03 * scale + 0.01, (cd_long, scale)
    assert cd1 > 2 * cd_long  # CD-1 is biased at these couplings; the bias goes with the mixing
    chains = r.sample(len(many), n_steps=0, seed=3)
    estimates = [r.gradient(many, "pcd", k=1, chains=chains, seed=s) for s in range(40)]
    pcd = {k: np.mean([e[k] for e in estimates[10:]], axis=0) for k in exact}
    assert gradient_error(pcd, exact) < 0.03 * scale + 0.01


def test_tied_gradient_is_the_projection_of_the_dense_one():
    r = shared_rbm(shape=(2, 4, 5), filters=3)
    rng = np.random.default_rng(0)
    x = (rng.random((6,) + r.input_shape) < 0.5).astype(float)
    p = rng.random((6,) + r.hidden_shape)
    got = r._statistics(x, p)
    outer = np.einsum("nh,nv->hv", p.reshape(6, -1), x.reshape(6, -1)).reshape(r.hidden_shape + r.input_shape)
    np.testing.assert_allclose(got["J"], r.coupling.project(outer, r.input_shape), atol=1e-10)
    np.testing.assert_allclose(got["b"], p.sum(axis=(0, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(got["a"], x.sum(axis=(0, 2, 3)), atol=1e-12)


@pytest.mark.parametrize("make", [lambda: shared_rbm(shape=(2, 5, 6), filters=3),
                                  lambda: local_rbm(), lambda: full_rbm()], ids=["shared", "local", "full"])
def test_visible_field_is_the_adjoint_of_the_hidden_field(make):
    r = make()
    rng = np.random.default_rng(1)
    x = (rng.random((4,) + r.input_shape) < 0.5).astype(float)
    d = (rng.random((4,) + r.hidden_shape) < 0.5).astype(float)
    Jx = r.field(x) - r.field(np.zeros_like(x))
    assert np.sum(Jx * d) == pytest.approx(np.sum(x * r._adjoint(d)), rel=1e-12)


# ------------------------------------------------------------------ sampling


def chi_square_p(samples, probs):
    """p-value of the samples' configuration counts (rows of 0/1) against the probabilities of all states."""
    codes = samples.reshape(len(samples), -1) @ (2 ** np.arange(samples[0].size)[::-1])
    counts = np.bincount(codes.astype(int), minlength=len(probs))
    return stats.chisquare(counts, probs * len(samples)).pvalue


def test_conditionals_sample_their_closed_forms():
    r = shared_rbm(shape=(1, 2, 3), filters=1)  # 6 visible, 2 hidden
    rng = np.random.default_rng(5)
    x = np.array([[[[1.0, 0, 1], [0, 1, 1]]]])
    q = 1 / (1 + np.exp(-shared_field_loops(r.params["J"], r.params["b"], x).reshape(-1)))
    ds = all_states(r.hidden_shape).reshape(-1, r.n_hidden)
    probs = np.prod(np.where(ds == 1, q, 1 - q), axis=1)
    samples = r.sample_hidden(np.repeat(x, 20000, axis=0), rng)
    assert chi_square_p(samples, probs) > 1e-3
    d = np.array([[[[1.0, 0]]]])
    W = r.coupling.dense(r.input_shape).reshape(r.n_hidden, r.n_visible)
    p = 1 / (1 + np.exp(-(d.reshape(-1) @ W + a_full(r).reshape(-1))))
    xs = all_states(r.input_shape).reshape(-1, r.n_visible)
    probs = np.prod(np.where(xs == 1, p, 1 - p), axis=1)
    samples = r.sample_visible(np.repeat(d, 20000, axis=0), rng)
    assert chi_square_p(samples, probs) > 1e-3
    # a wrong distribution is rejected: the test can fail
    assert chi_square_p(samples, np.full(len(probs), 1 / len(probs))) < 1e-6


@pytest.mark.parametrize("make", [lambda: shared_rbm(shape=(1, 2, 3), filters=1, scale=1.2),
                                  lambda: full_rbm(shape=(1, 2, 3), hidden=(2, 1), scale=1.2)],
                         ids=["conv_kernel", "dense_kernel"])
def test_gibbs_chains_reach_the_marginal_exp_minus_F(make):
    r = make()
    xs = all_states(r.input_shape)
    log_p = -r.free_energy(xs) - r.log_partition()
    samples = r.sample(20000, n_steps=30, seed=7)
    assert set(np.unique(samples)) <= {0.0, 1.0}
    assert chi_square_p(samples, np.exp(log_p)) > 1e-3


def test_gaussian_gibbs_chains_have_the_exact_mean():
    r = full_rbm(shape=(1, 3), hidden=(2, 1), scale=0.6, visible="gaussian")
    W = r.params["J"].reshape(2, 3)
    b, a = r.params["b"].reshape(-1), r.params["a"].reshape(-1)
    ds = all_states((2,)).reshape(-1, 2)
    f = ds @ W
    log_w = ds @ b + f @ a + 0.5 * (f ** 2).sum(axis=1)
    w = np.exp(log_w - log_w.max())
    mean = (w[:, None] * (f + a)).sum(axis=0) / w.sum()
    samples = r.sample(20000, n_steps=30, seed=3).reshape(-1, 3)
    se = samples.std(axis=0) / np.sqrt(len(samples))
    assert np.all(np.abs(samples.mean(axis=0) - mean) < 4 * se)
    d = np.ones((20000, 2, 1))
    xv = r.sample_visible(d, np.random.default_rng(0)).reshape(-1, 3)
    assert np.all(np.abs(xv.mean(axis=0) - (W.sum(axis=0) + a)) < 0.05)
    assert np.all(np.abs(xv.var(axis=0) - 1.0) < 0.05)


def test_sampling_is_reproducible_and_independent_of_the_thread_count():
    import numba

    r = shared_rbm(shape=(1, 6, 6), filters=3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = r.sample(50, n_steps=5, seed=11)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = r.sample(50, n_steps=5, seed=11)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, r.sample(50, n_steps=5, seed=12))


def _readonly_signatures():
    """(kernel, signature) of every compiled kernel signature that takes a read-only array."""
    import importlib
    import pkgutil

    from numba.core import types
    from numba.core.registry import CPUDispatcher

    import hamiltonian_cnn.kernels as kernels

    found = set()
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"hamiltonian_cnn.kernels.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher):
                found |= {(obj.__name__, sig) for sig in obj.signatures
                          if any(isinstance(t, types.Array) and not t.mutable for t in sig)}
    return found


@pytest.mark.parametrize("make", [full_rbm, shared_rbm])
def test_read_only_arrays_reach_the_kernels_as_ordinary_arrays(make):
    """Broadcast views (a visible bias per site) and frozen parameters are copied before a kernel:
    Numba types a read-only array differently and would compile every kernel a second time. Only the
    signatures compiled during this test count (other tests may have left their own)."""
    before = _readonly_signatures()
    r = make(seed=3)
    X = r.sample(8, n_steps=2, seed=0)
    X.setflags(write=False)
    r.fit(X, epochs=1, batch_size=4, progress=False)
    for value in r.params.values():
        value.setflags(write=False)
    r.sample(8, n_steps=2, seed=1)
    r.log_partition()
    r.log_likelihood(X)
    new = _readonly_signatures() - before
    assert not new, new


# ------------------------------------------------------------------ training, saving


def test_pcd_defaults_train_a_shared_rbm_on_bars_and_stripes():
    X = hc.data.bars_and_stripes(4).astype(np.float64)
    assert X.shape == (30, 1, 4, 4) and len(np.unique(X.reshape(30, -1), axis=0)) == 30
    rows_constant = (X == X[:, :, :, :1]).all(axis=(1, 2, 3))
    cols_constant = (X == X[:, :, :1, :]).all(axis=(1, 2, 3))
    assert np.all(rows_constant | cols_constant)
    rng = np.random.default_rng(0)
    small = hc.RBM(hc.SharedCoupling(0.01 * rng.standard_normal((4, 1, 2, 2))), (1, 4, 4))
    built = hc.RBM.build("shared", (1, 4, 4), channels=4, kernel_size=2, seed=0)
    for r in (small, built):
        before = r.log_likelihood(X)
        history = r.fit(X, epochs=50, method="pcd", seed=0, progress=False)
        after = r.log_likelihood(X)
        assert len(history["reconstruction"]) == 50
        assert after > before + 0.5, (before, after)
    assert built.log_likelihood(X) > -10.0


def test_cd_fit_lowers_the_reconstruction_error_and_decay_shrinks_weights():
    X = hc.data.bars_and_stripes(4).astype(np.float64)
    r = hc.RBM.build("full", (1, 4, 4), channels=2, kernel_size=2, seed=1)
    before = r.log_likelihood(X)
    history = r.fit(X, epochs=30, method="cd", k=1, seed=0, progress=False)
    assert history["reconstruction"][-1] < history["reconstruction"][0]
    assert r.log_likelihood(X) > before
    decayed = hc.RBM.build("full", (1, 4, 4), channels=2, kernel_size=2, seed=1)
    decayed.fit(X, epochs=30, method="cd", seed=0, progress=False, weight_decay=0.5)
    assert np.abs(decayed.params["J"]).sum() < np.abs(r.params["J"]).sum()


@pytest.mark.parametrize("family", ["shared", "local", "full", "sparse", "gaussian", "circular"])
def test_save_and_load_round_trip(tmp_path, family):
    rng = np.random.default_rng(0)
    if family == "sparse":
        index = hc.physics.random_wiring((3, 3), (2, 2), 4, seed=0)
        r = hc.RBM(hc.SparseCoupling(rng.standard_normal((2, 2, 2, 1, 4)), index, input_shape=(1, 3, 3)), (1, 3, 3))
    elif family == "gaussian":
        r = full_rbm(shape=(1, 3), hidden=(2, 1), visible="gaussian")
    elif family == "circular":
        r = hc.RBM(hc.SharedCoupling(rng.standard_normal((2, 1, 3, 3)), padding="circular"), (1, 4, 4))
    else:
        r = hc.RBM.build(family, (1, 4, 4), channels=2, kernel_size=3, padding=1, seed=3)
    r.params["a"][...] = rng.standard_normal(r.params["a"].shape)
    path = r.save(tmp_path / "model")
    assert path.endswith(".npz") and not list(tmp_path.glob("*.tmp"))
    back = hc.RBM.load(tmp_path / "model")
    assert type(back.coupling) is type(r.coupling) and back.visible == r.visible
    for key in r.params:
        np.testing.assert_array_equal(back.params[key], r.params[key])
    x = r.sample(5, n_steps=0, seed=0)
    np.testing.assert_array_equal(back.free_energy(x), r.free_energy(x))
    if r.n_visible <= 16:
        assert back.log_partition() == r.log_partition()


# ------------------------------------------------------------------ errors


def test_bad_input_gets_a_clear_error(tmp_path):
    r = shared_rbm(shape=(1, 3, 3))
    with pytest.raises(ValueError, match=r"x: binary visible units take the values 0 and 1"):
        r.free_energy(np.full((2, 1, 3, 3), 0.5))
    with pytest.raises(ValueError, match=r"x: expected samples shaped \(N, 1, 3, 3\)"):
        r.free_energy(np.zeros((2, 1, 4, 3)))
    with pytest.raises(ValueError, match=r"d: expected hidden states shaped"):
        r.sample_visible(np.zeros((2, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"d: hidden units take the values 0 and 1"):
        r.sample_visible(np.full((1,) + r.hidden_shape, 0.3))
    with pytest.raises(ValueError, match="NaN or Inf"):
        r.free_energy(np.full((1, 1, 3, 3), np.nan))
    with pytest.raises(ValueError, match=r"input_shape: \(1, 1, 1\) does not fit the coupling"):
        hc.RBM(hc.SharedCoupling(np.ones((2, 1, 2, 2))), (1, 1, 1))
    with pytest.raises(ValueError, match=r"input_shape: .* does not fit the coupling"):
        hc.RBM(hc.FullCoupling(np.ones((2, 1, 1, 3, 3)), input_shape=(1, 3, 3)), (1, 4, 4))
    with pytest.raises(ValueError, match=r"visible_bias: expected shape \(1,\) or \(1, 3, 3\), got \(3,\)"):
        hc.RBM(hc.SharedCoupling(np.ones((2, 1, 2, 2))), (1, 3, 3), visible_bias=np.zeros(3))
    with pytest.raises(ValueError, match=r"visible: expected one of \['binary', 'gaussian'\]"):
        hc.RBM(hc.SharedCoupling(np.ones((2, 1, 2, 2))), (1, 3, 3), visible="spin")
    with pytest.raises(TypeError, match="coupling: expected"):
        hc.RBM(np.ones((2, 1, 2, 2)), (1, 3, 3))
    with pytest.raises(ValueError, match="method: expected one of"):
        r.fit(np.zeros((2, 1, 3, 3)), method="sgd", progress=False)
    with pytest.raises(ValueError, match="lr: expected a finite number > 0"):
        r.fit(np.zeros((2, 1, 3, 3)), lr=-1.0, progress=False)
    big = hc.RBM.build("shared", (1, 8, 8), channels=4, kernel_size=3)  # 64 visible, 144 hidden
    with pytest.raises(ValueError, match=r"would visit 2\*\*64 states, more than the limit 2\*\*26; use method='ais'"):
        big.log_partition()
    with pytest.raises(ValueError, match=r"2\*\*64 states"):
        big.log_likelihood(np.zeros((1, 1, 8, 8)))
    assert rbm_module.MAX_EXACT_BITS == 26
    with pytest.raises(FileNotFoundError, match="path: no saved RBM"):
        hc.RBM.load(tmp_path / "nothing.npz")


def test_default_visible_bias_per_family():
    shared = hc.RBM.build("shared", (2, 4, 4), channels=2, kernel_size=2)
    local = hc.RBM.build("local", (2, 4, 4), channels=2, kernel_size=2)
    full = hc.RBM.build("full", (2, 4, 4), channels=2, kernel_size=2)
    assert shared.params["a"].shape == (2,)
    assert local.params["a"].shape == full.params["a"].shape == (2, 4, 4)
    assert shared.hidden_shape == local.hidden_shape == full.hidden_shape == (2, 3, 3)
    assert shared.n_params < local.n_params < full.n_params
    assert set(shared.params) == {"J", "b", "a"}


def test_gaussian_visible_units_train_and_score():
    rng = np.random.default_rng(2)
    centres = np.array([[2.0, 0.0, -1.0], [-1.0, 1.5, 1.0]])
    X = (centres[rng.integers(0, 2, 400)] + 0.3 * rng.standard_normal((400, 3))).reshape(400, 1, 3)
    r = hc.RBM.build("full", (1, 3), channels=2, kernel_size=2, visible="gaussian", std=0.1, seed=0)
    assert r.hidden_shape == (2, 2)
    before = r.log_likelihood(X)
    r.fit(X, epochs=30, method="cd", lr=0.01, batch_size=20, seed=0, progress=False)
    after = r.log_likelihood(X)
    assert after > before + 0.5, (before, after)
    estimate, stderr = r.log_partition("ais", n_chains=200, n_betas=1000, seed=0)
    assert abs(estimate - r.log_partition()) < 3 * stderr + 1e-3


def test_float32_model_runs_the_float32_kernels_to_the_same_distribution():
    r64 = shared_rbm(shape=(1, 2, 3), filters=1, scale=1.2)
    c = r64.coupling
    r32 = hc.RBM(hc.SharedCoupling(c.weight.astype(np.float32), c.bias.astype(np.float32)), (1, 2, 3),
                 visible_bias=r64.params["a"].astype(np.float32))
    assert r32.dtype == np.float32 and r32.params["J"].dtype == np.float32
    assert r32.log_partition() == pytest.approx(r64.log_partition(), rel=1e-6)
    samples = r32.sample(20000, n_steps=30, seed=7)
    assert samples.dtype == np.float32
    xs = all_states(r64.input_shape)
    assert chi_square_p(samples, np.exp(-r64.free_energy(xs) - r64.log_partition())) > 1e-3
    X = xs[[3, 17, 40]].astype(np.float32)
    g32, g64 = r32.gradient(X, "cd", k=1, seed=0), r64.gradient(X, "cd", k=1, seed=0)
    assert set(g32) == set(g64) == {"J", "b", "a"}
