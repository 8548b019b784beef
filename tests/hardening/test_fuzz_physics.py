"""Fuzz the physics API: couplings, the Hamiltonian and the closed-form formulas."""

import numpy as np
from fuzz_harness import bad_arrays, expect_error, expect_same, odd_layouts
from hypothesis import given, settings
from hypothesis import strategies as st

import hamiltonian_cnn as hc

RNG = np.random.default_rng(0)


def couplings():
    """(name, coupling, per-sample input shape) for every family, 1D and 2D."""
    shared2 = hc.SharedCoupling(RNG.normal(size=(2, 1, 3, 2)), RNG.normal(size=2), stride=(1, 2), padding=1)
    shared1 = hc.SharedCoupling(RNG.normal(size=(4, 1, 3)), None, dilation=2, groups=2)
    local2 = hc.LocalCoupling(RNG.normal(size=(2, 3, 3, 1, 2, 2)), RNG.normal(size=(2, 3, 3)), input_shape=(1, 4, 4))
    local1 = hc.LocalCoupling(RNG.normal(size=(1, 3, 2, 3)), None, stride=2, padding=1, input_shape=(2, 5))
    full = hc.FullCoupling(RNG.normal(size=(2, 2, 2, 1, 3, 3)), RNG.normal(size=(2, 2, 2)), input_shape=(1, 3, 3))
    return [("shared2", shared2, (1, 5, 6)), ("shared1", shared1, (2, 7)), ("local2", local2, (1, 4, 4)),
            ("local1", local1, (2, 5)), ("full", full, (1, 3, 3))]


COUPLINGS = couplings()
ENSEMBLES = ("binary", "spin", "onehot")


@settings(max_examples=150)
@given(index=st.integers(0, len(COUPLINGS) - 1), ensemble=st.sampled_from(ENSEMBLES), seed=st.integers(0, 2**16),
       pick=st.integers(0, 10**6), method=st.sampled_from(["field", "log_partition", "marginals", "enumerate",
                                                             "free_energy"]))
def test_methods_of_x_reject_bad_x_and_accept_odd_layouts(index, ensemble, seed, pick, method):
    _, coupling, shape = COUPLINGS[index]
    H = hc.Hamiltonian(coupling, ensemble)
    if method == "enumerate" and H.ensemble.n_configurations(coupling.output_shape(shape)) > 2**16:
        method = "log_partition"  # keep exact enumeration small here (its limit is tested below)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2,) + shape)
    fn = getattr(H, method)
    reference = fn(x.copy())
    cases = bad_arrays(x, rng)
    label, bad, types = cases[pick % len(cases)]
    expect_error(f"hamiltonian {method}: bad x", lambda: fn(bad), ("x",), types)
    wrong = [x[0], x[None], np.concatenate([x, x], axis=1), x[..., :0]]
    expect_error(f"hamiltonian {method}: shape", lambda: fn(wrong[pick % 4]), ("x",), (ValueError,))
    for odd in odd_layouts(x).values():
        expect_same(f"hamiltonian {method}: odd layout", lambda: fn(odd), reference)


@settings(max_examples=120)
@given(index=st.integers(0, len(COUPLINGS) - 1), ensemble=st.sampled_from(ENSEMBLES), seed=st.integers(0, 2**16),
       pick=st.integers(0, 10**6), method=st.sampled_from(["energy", "log_prob"]))
def test_methods_of_d_reject_bad_configurations(index, ensemble, seed, pick, method):
    _, coupling, shape = COUPLINGS[index]
    H = hc.Hamiltonian(coupling, ensemble)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2,) + shape)
    d = H.sample(x, rng)
    fn = getattr(H, method)
    reference = fn(d, x)
    assert np.all(np.isfinite(reference))
    wrong_value = d.copy()
    wrong_value.flat[rng.integers(d.size)] = 0.5
    choices = [np.full_like(d, 0.5), wrong_value, d[0], d[None], d[..., :-1] if d.shape[-1] > 1 else d[..., :0],
               d.astype(np.complex128), d.astype(str), np.where(d == d.flat[0], np.nan, d), None, "d"]
    bad = choices[pick % len(choices)]
    expect_error(f"hamiltonian {method}: bad d", lambda: fn(bad, x), ("d",))
    for odd in odd_layouts(d).values():
        expect_same(f"hamiltonian {method}: odd layout", lambda: fn(odd, x), reference)


@settings(max_examples=40)
@given(rng_arg=st.sampled_from([-1, 1.5, "seed", [1, 2], object(), True]))
def test_sample_rejects_bad_rng(rng_arg):
    H = hc.Hamiltonian(COUPLINGS[0][1])
    x = np.zeros((1,) + COUPLINGS[0][2])
    expect_error("hamiltonian sample: rng", lambda: H.sample(x, rng_arg), ("rng",))


def test_hamiltonian_rejects_bad_coupling_and_ensemble():
    for coupling in ("shared", None, np.zeros((1, 1, 3, 3)), hc.nn.SharedConv2d(1, 1, 3)):
        expect_error("hamiltonian constructor", lambda: hc.Hamiltonian(coupling), ("coupling",))
    for ensemble in ("ising", None, 3, "Binary"):
        expect_error("hamiltonian constructor", lambda: hc.Hamiltonian(COUPLINGS[0][1], ensemble), ("ensemble",))
    big = hc.Hamiltonian(hc.SharedCoupling(np.ones((1, 1, 1, 1))))
    expect_error("hamiltonian enumerate: too big", lambda: big.enumerate(np.zeros((1, 1, 6, 5))), ("x",))


WEIGHT_CASES = [
    # (family, weight shape, extra kwargs)
    ("shared", (2, 1, 3, 3), {}), ("shared", (2, 2, 3), {}),
    ("local", (2, 3, 3, 1, 2, 2), {"input_shape": (1, 4, 4)}), ("local", (1, 4, 2, 3), {"input_shape": (2, 6)}),
    ("full", (2, 3, 1, 4), {"input_shape": (1, 4)}),
]
CLASSES = {"shared": hc.SharedCoupling, "local": hc.LocalCoupling, "full": hc.FullCoupling}


@settings(max_examples=150)
@given(case=st.sampled_from(WEIGHT_CASES), seed=st.integers(0, 2**16), pick=st.integers(0, 10**6))
def test_coupling_constructors_reject_bad_weights_and_biases(case, seed, pick):
    family, shape, kwargs = case
    cls = CLASSES[family]
    rng = np.random.default_rng(seed)
    w = rng.normal(size=shape)
    reference = cls(w.copy(), **kwargs).weight
    cases = bad_arrays(w, rng)
    label, bad, types = cases[pick % len(cases)]
    expect_error(f"coupling {family}: bad weight", lambda: cls(bad, **kwargs), ("weight",), types + (ValueError,))
    wrong_rank = [w.reshape(-1), w.reshape((1,) * 7 + (-1,))][pick % 2]
    names = ("weight", "input_shape", "output_shape")  # a full coupling splits weight by input_shape
    expect_error(f"coupling {family}: weight rank", lambda: cls(wrong_rank, **kwargs), names)
    b_shape = (shape[0],) if family == "shared" else cls(w, **kwargs).output_shape()
    b = rng.normal(size=b_shape)
    bad_b = [b[:-1] if b.size > 1 else np.zeros(2), b[None], np.full(b.shape, np.nan), b.astype(complex), "b",
             np.zeros(b.shape, object)][pick % 6]
    expect_error(f"coupling {family}: bad bias", lambda: cls(w, bad_b, **kwargs), ("bias",))
    for odd in odd_layouts(w).values():
        expect_same(f"coupling {family}: odd layout", lambda: cls(odd, **kwargs).weight, reference)


GEOMETRY = {
    "stride": [0, -1, 1.5, "1", None, (1, 1, 1), (1, 0)],
    "padding": [-1, "half", 1.5, None, [(1, 2, 3), (0, 0)], ((0, -1), (0, 0))],
    "dilation": [0, -2, 2.5, "2", (1, 1, 1)],
    "groups": [0, -1, 3, 1.5, "2"],
}


@settings(max_examples=100)
@given(arg=st.sampled_from(sorted(GEOMETRY)), data=st.data())
def test_shared_coupling_rejects_bad_geometry(arg, data):
    value = data.draw(st.sampled_from(GEOMETRY[arg]))
    w = np.ones((2, 1, 3, 3))
    expect_error("coupling shared: geometry", lambda: hc.SharedCoupling(w, **{arg: value}), (arg,))


@settings(max_examples=60)
@given(value=st.sampled_from([0, (0, 4, 4), (2, 4, 4), (1, 4), (1, 5, 5), "144", None, 4.0, (1, 4, 4, 4)]),
       family=st.sampled_from(["local", "full"]))
def test_input_shape_is_checked(value, family):
    if family == "local":
        w = np.ones((2, 3, 3, 1, 2, 2))
        expect_error("coupling local: input_shape", lambda: hc.LocalCoupling(w, input_shape=value),
                     ("input_shape", "weight"))
    else:
        w = np.ones((2, 3, 1, 4, 4))
        names = ("input_shape", "input_shape/output_shape")  # None: neither shape given
        expect_error("coupling full: input_shape", lambda: hc.FullCoupling(w, input_shape=value), names)


@settings(max_examples=60)
@given(index=st.integers(0, len(COUPLINGS) - 1), method=st.sampled_from(["dense", "output_shape"]),
       value=st.sampled_from([0, "abc", (0, 5, 5), (3, 5, 5), (1, 2, 2, 2, 2), 2.5, (1,)]))
def test_dense_and_output_shape_check_input_shape(index, method, value):
    _, coupling, shape = COUPLINGS[index]
    fn = getattr(coupling, method)
    assert fn(shape) is not None  # the coupling's own input shape is fine
    expect_error(f"coupling {method}", lambda: fn(value), ("input_shape",))


@settings(max_examples=60)
@given(index=st.integers(0, len(COUPLINGS) - 1), pick=st.integers(0, 5))
def test_project_checks_the_dense_tensor(index, pick):
    _, coupling, shape = COUPLINGS[index]
    T = coupling.dense(shape)
    bad = [T[..., :-1], T[None], np.full(T.shape, np.inf), T.astype(complex), "T", T.reshape(-1)][pick]
    expect_error("coupling project", lambda: coupling.project(bad, shape), ("dense_tensor",))


FORMULAS = [
    (lambda: hc.output_size(0, 3), "size"), (lambda: hc.output_size(3, 5), "kernel"),
    (lambda: hc.output_size(5, 3, stride=0), "stride"), (lambda: hc.output_size(5, 3, padding="x"), "padding"),
    (lambda: hc.output_size(5, 3, padding=(1, 2, 3)), "padding"), (lambda: hc.output_size(5.0, 3), "size"),
    (lambda: hc.output_size(5, 3, dilation=0), "dilation"), (lambda: hc.output_size(5, 3, padding=-1), "padding"),
    (lambda: hc.conv_params(4, 4, 3, groups=0), "groups"), (lambda: hc.conv_params(-1, 4, 3), "in_channels"),
    (lambda: hc.conv_params(3, 4, 3, groups=2), "groups"), (lambda: hc.conv_params(3, 4, 3, ndim=0), "ndim"),
    (lambda: hc.conv_params("3", 4, 3), "in_channels"), (lambda: hc.conv_params(3, 0, 3), "out_channels"),
    (lambda: hc.conv_params(3, 4, (3, 3, 3)), "kernel_size"), (lambda: hc.conv_params(3, 4, 3, bias=2), "bias"),
    (lambda: hc.fc_params(-3, 4), "n_in"), (lambda: hc.fc_params("3", 4), "n_in"),
    (lambda: hc.fc_params(3, 0), "n_out"),
    (lambda: hc.coupling_params("tied", (4, 4), (2, 2), 3), "family"),
    (lambda: hc.coupling_params("local", (4, 4), (2, 2)), "kernel_size"),
    (lambda: hc.coupling_params("full", (4, -4), (2, 2)), "in_sites"),
    (lambda: hc.coupling_params("full", 4, (2, 2)), "in_sites"),
    (lambda: hc.coupling_params("full", (4, 4), ()), "out_sites"),
    (lambda: hc.coupling_params("shared", (4, 4), (2, 2), 3, in_channels=0), "in_channels"),
    (lambda: hc.coupling_params("shared", (4, 4), (2, 2), (3, 3, 3)), "kernel_size"),
    (lambda: hc.receptive_field(3), "layers"), (lambda: hc.receptive_field("ab"), "layers"),
    (lambda: hc.receptive_field([(3, 0)]), "stride"), (lambda: hc.receptive_field([(3,)]), "layers"),
    (lambda: hc.receptive_field([(0, 1)]), "kernel"), (lambda: hc.receptive_field([(3, 1, 0)]), "dilation"),
]


@settings(max_examples=len(FORMULAS) * 2)
@given(index=st.integers(0, len(FORMULAS) - 1))
def test_formulas_reject_bad_arguments(index):
    fn, name = FORMULAS[index]
    expect_error("formulas", fn, (name,))
