"""Fuzz every layer of hc.nn: constructors, forward and backward with generated bad arguments.

Bad arguments must raise a ValueError/TypeError naming the argument before any kernel runs;
non-contiguous and read-only arrays are valid and must give the result of a contiguous copy.
"""

import numpy as np
import pytest
from fuzz_harness import bad_arrays, expect_error, expect_same, odd_layouts
from hypothesis import given, settings
from hypothesis import strategies as st

from hamiltonian_cnn import nn

F32, F64 = np.float32, np.float64

# name: (class, valid keyword arguments, per-sample input shape, accepted ranks of x)
LAYERS = {
    "SharedConv1d": (nn.SharedConv1d, dict(in_ch=2, out_ch=4, kernel_size=3, stride=1, padding=1, dilation=1,
                                           groups=2, activation="sigmoid", seed=0), (2, 7), (3,)),
    "SharedConv2d": (nn.SharedConv2d, dict(in_ch=2, out_ch=2, kernel_size=(2, 3), stride=(1, 2),
                                           padding=((1, 0), (0, 1)), dilation=(2, 1), groups=1,
                                           activation="tanh", seed=1), (2, 5, 6), (4,)),
    "LocalConv1d": (nn.LocalConv1d, dict(in_ch=1, out_ch=2, kernel_size=3, stride=2, padding=1, input_size=7,
                                         activation="relu", seed=2), (1, 7), (3,)),
    "LocalConv2d": (nn.LocalConv2d, dict(in_ch=2, out_ch=1, kernel_size=2, stride=1, padding=0, input_size=(4, 5),
                                         activation="softplus", seed=3), (2, 4, 5), (4,)),
    "ConvTranspose1d": (nn.ConvTranspose1d, dict(in_ch=2, out_ch=2, kernel_size=3, stride=2, padding=1,
                                                 output_padding=1, activation="sigmoid", seed=4), (2, 4), (3,)),
    "ConvTranspose2d": (nn.ConvTranspose2d, dict(in_ch=1, out_ch=2, kernel_size=(2, 3), stride=(2, 1), padding=0,
                                                 dilation=1, groups=1, activation=None, seed=5), (1, 3, 3), (4,)),
    "MaxPool1d": (nn.MaxPool1d, dict(kernel_size=2), (2, 6), (3,)),
    "MaxPool2d": (nn.MaxPool2d, dict(kernel_size=2, stride=1, padding=1), (1, 4, 5), (4,)),
    "AvgPool1d": (nn.AvgPool1d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), (2, 7), (3,)),
    "AvgPool2d": (nn.AvgPool2d, dict(kernel_size=(2, 2)), (1, 4, 4), (4,)),
    "GlobalAvgPool": (nn.GlobalAvgPool, dict(), (3, 4, 4), (3, 4, 5, 6)),
    "SpatialPyramidPool": (nn.SpatialPyramidPool, dict(levels=(1, 2), mode="avg"), (2, 5, 5), (3, 4)),
    "Flatten": (nn.Flatten, dict(), (2, 3, 3), (2, 3, 4, 5, 6)),
    "FullCoupled": (nn.FullCoupled, dict(in_features=(2, 3), out_features=4, activation="tanh", seed=6), (2, 3),
                    (2, 3)),
}
NAMES = sorted(LAYERS)
WITH_PARAMS = [n for n in NAMES if "Pool" not in n and n != "Flatten"]

INTS = [0, -1, -4, 1.5, "2", None, True, np.nan, (2,) * 5]
BAD = {
    "in_ch": INTS, "out_ch": INTS, "kernel_size": INTS, "stride": INTS, "dilation": INTS, "groups": INTS,
    "padding": [-1, "bogus", 1.5, None, True, [(-1, 0)] * 2, [(1, 2, 3)] * 2, [[0, 0]] * 3],
    "output_padding": [-1, 5, 1.5, "1", None],
    "activation": ["gelu", 3, "Sigmoid", "", ["relu"]],
    "dtype": [np.int32, "bogus", np.complex128, np.float16, object],
    "seed": [-1, 1.5, "a", [1, 2]],
    "bias": [1, "yes", None],
    "input_size": [0, -1, "66", None, (2,) * 4, 1.5],
    "in_features": [0, -1, (), (0, 2), "3", None, 1.5, (2, -3)],
    "out_features": [0, -1, (), (0, 2), "3", None, 1.5],
    "levels": [(), (0,), 2, ("a",), None, (1, -2)],
    "mode": ["min", None, 1],
    "count_include_pad": [1, "yes", None],
}
# arguments that are not in the base kwargs but every such layer accepts
EXTRA = {
    "SharedConv1d": ["dtype", "bias"], "SharedConv2d": ["dtype", "bias"],
    "LocalConv1d": ["dtype", "bias", "dilation", "groups"], "LocalConv2d": ["dtype", "bias", "dilation", "groups"],
    "ConvTranspose1d": ["dtype", "bias", "dilation", "groups"], "ConvTranspose2d": ["dtype", "bias", "output_padding"],
    "MaxPool1d": ["stride", "padding", "dtype"], "MaxPool2d": ["dtype"], "AvgPool1d": ["dtype"],
    "AvgPool2d": ["stride", "padding", "count_include_pad", "dtype"],
    "GlobalAvgPool": ["dtype"], "SpatialPyramidPool": ["dtype"], "Flatten": ["dtype"],
    "FullCoupled": ["dtype", "bias"],
}


def bad_constructor_cases():
    cases = []
    for name in NAMES:
        cls, base, shape, _ = LAYERS[name]
        for arg in sorted(set(base) | set(EXTRA[name])):
            for value in BAD.get(arg, []):
                if "Pool" in name and arg == "stride" and value is None:
                    continue
                if arg == "dtype" and value is None:
                    continue
                cases.append((name, arg, value))
    # groups that do not divide the channels; local couplings support only dilation 1 and groups 1
    cases += [("SharedConv1d", "groups", 3), ("SharedConv1d", "in_ch", 3), ("ConvTranspose1d", "groups", 2),
              ("LocalConv2d", "dilation", 2), ("LocalConv2d", "groups", 2), ("LocalConv1d", "input_size", 1),
              ("MaxPool2d", "padding", 2), ("ConvTranspose1d", "output_padding", 2),
              ("ConvTranspose2d", "padding", "same"), ("SharedConv2d", "padding", "half")]
    return cases


CONSTRUCTOR_CASES = bad_constructor_cases()


@settings(max_examples=250)
@given(case=st.sampled_from(CONSTRUCTOR_CASES))
def test_constructor_rejects_bad_arguments(case):
    name, arg, value = case
    cls, base, _, _ = LAYERS[name]
    kwargs = {**base, arg: value}
    # a window that no longer fits the input sites is blamed on either argument
    names = {"input_size": ("input_size", "kernel_size"), "in_ch": ("in_ch", "groups")}.get(arg, (arg,))
    expect_error("layer constructor", lambda: cls(**kwargs), names)


def make(name, dtype=None):
    cls, base, shape, ranks = LAYERS[name]
    kwargs = dict(base)
    if dtype is not None:
        kwargs["dtype"] = dtype
    return cls(**kwargs), shape, ranks


@settings(max_examples=150)
@given(name=st.sampled_from(NAMES), dtype=st.sampled_from([F32, F64]), seed=st.integers(0, 2**16),
       batch=st.integers(1, 3), pick=st.integers(0, 10**6))
def test_forward_rejects_bad_x_and_accepts_odd_layouts(name, dtype, seed, batch, pick):
    layer, shape, ranks = make(name, dtype if name in WITH_PARAMS else None)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + shape).astype(dtype)
    reference = layer.forward(x.copy())
    assert np.all(np.isfinite(reference))
    # invalid arrays: NaN, Inf, complex, object, strings, bool, empty batch, None, ragged
    cases = bad_arrays(x, rng)
    label, bad, types = cases[pick % len(cases)]
    expect_error("layer forward: bad x", lambda: layer.forward(bad), ("x",), types)
    # wrong rank
    rank = x.ndim + (1 if pick % 2 else -1)
    if rank not in ranks and rank >= 0:
        wrong = x[None] if rank > x.ndim else x[0]
        expect_error("layer forward: rank", lambda: layer.forward(wrong), ("x",), (ValueError,))
    # wrong channel count, where the layer fixes it
    if name in WITH_PARAMS:
        more = np.concatenate([x, x[:, :1]], axis=1)
        expect_error("layer forward: channels", lambda: layer.forward(more), ("x",), (ValueError,))
    # valid: strided, Fortran-ordered and read-only inputs give the contiguous result
    for odd in odd_layouts(x).values():
        expect_same("layer forward: odd layout", lambda: layer.forward(odd), reference)


@settings(max_examples=120)
@given(nd=st.sampled_from([1, 2]), kind=st.sampled_from(["shared", "transpose", "max", "avg", "local"]),
       kernel=st.integers(2, 4), dilation=st.integers(1, 2), data=st.data())
def test_input_smaller_than_the_window_is_refused(nd, kind, kernel, dilation, data):
    span = dilation * (kernel - 1) + 1
    if kind == "shared":
        layer = (nn.SharedConv1d if nd == 1 else nn.SharedConv2d)(1, 1, kernel, dilation=dilation)
        too_small = data.draw(st.integers(1, span - 1))
    elif kind == "transpose":  # padding that eats every output site
        layer = (nn.ConvTranspose1d if nd == 1 else nn.ConvTranspose2d)(1, 1, kernel, padding=span,
                                                                          dilation=dilation)
        too_small = 1
    elif kind == "local":  # built for other sites
        size = data.draw(st.integers(kernel, 6))
        layer = (nn.LocalConv1d if nd == 1 else nn.LocalConv2d)(1, 1, kernel, input_size=(size,) * nd)
        too_small = data.draw(st.integers(1, 8).filter(lambda s: s != size))
    else:
        cls = {("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d, ("avg", 1): nn.AvgPool1d,
               ("avg", 2): nn.AvgPool2d}[kind, nd]
        layer = cls(kernel)
        too_small = data.draw(st.integers(1, kernel - 1))
    sites = [data.draw(st.integers(span, span + 2)) for _ in range(nd)]
    sites[data.draw(st.integers(0, nd - 1))] = too_small
    x = np.ones((1, 1) + tuple(sites))
    expect_error("layer forward: too small", lambda: layer.forward(x), ("x",), (ValueError,))


@settings(max_examples=150)
@given(name=st.sampled_from(NAMES), dtype=st.sampled_from([F32, F64]), seed=st.integers(0, 2**16),
       pick=st.integers(0, 10**6))
def test_backward_rejects_bad_dy_and_accepts_odd_layouts(name, dtype, seed, pick):
    layer, shape, _ = make(name, dtype if name in WITH_PARAMS else None)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2,) + shape).astype(dtype)
    out_shape = (2,) + tuple(layer.output_shape(shape))
    dy = rng.standard_normal(out_shape).astype(dtype)
    # before any forward
    fresh, _, _ = make(name, dtype if name in WITH_PARAMS else None)
    expect_error("layer backward: no forward", lambda: fresh.backward(dy), ("backward",), (ValueError,))
    y = layer.forward(x)
    assert y.shape == out_shape
    dx = layer.backward(dy.copy())
    grads = {k: v.copy() for k, v in layer.grads.items()}
    assert dx.shape == x.shape and np.all(np.isfinite(dx))
    assert {k: v.shape for k, v in grads.items()} == {k: v.shape for k, v in layer.params.items()}
    cases = bad_arrays(dy, rng)
    label, bad, types = cases[pick % len(cases)]
    expect_error("layer backward: bad dy", lambda: layer.backward(bad), ("dy",), types + (ValueError,))
    wrong = [dy[None], dy[..., :-1] if dy.shape[-1] > 1 else np.concatenate([dy, dy], axis=-1), dy[:1]]
    expect_error("layer backward: shape", lambda: layer.backward(wrong[pick % 3]), ("dy",), (ValueError,))
    for odd in odd_layouts(dy).values():
        def again(odd=odd):
            layer.forward(x)
            return layer.backward(odd), {k: v.copy() for k, v in layer.grads.items()}
        expect_same("layer backward: odd layout", again, (dx, grads))


@pytest.mark.parametrize("name", WITH_PARAMS)
def test_swapped_or_corrupted_params_are_refused(name):
    for bad in ("shape", "nan", "complex", "str", "missing"):
        layer, shape, _ = make(name, F64)
        value = layer.params["J"]
        if bad == "shape":
            layer.params["J"] = value[..., :-1] if value.shape[-1] > 1 else value[None]
        elif bad == "nan":
            value.flat[0] = np.nan
        elif bad == "complex":
            layer.params["J"] = value.astype(np.complex128)
        elif bad == "str":
            layer.params["J"] = "weights"
        else:
            del layer.params["J"]
        x = np.ones((1,) + shape)
        expect_error("layer params", lambda: layer.forward(x), ("params",))


def _kernel_signatures():
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import hamiltonian_cnn.kernels as kernels

    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"hamiltonian_cnn.kernels.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher):
                for signature in obj.signatures:
                    yield obj.__name__, signature


@pytest.mark.parametrize("name", NAMES)
def test_readonly_inputs_reach_the_kernels_as_ordinary_arrays(name):
    """A read-only x or dy is copied once in validation: passing it on would make Numba compile
    every kernel a second time (a read-only array is another type), seconds per kernel. Only the
    signatures compiled during this test count: another test may have left its own."""
    from numba.core import types

    def readonly():
        return {(kernel, sig) for kernel, sig in _kernel_signatures()
                if any(isinstance(t, types.Array) and not t.mutable for t in sig)}

    before = readonly()
    layer, shape, _ = make(name, F64 if name in WITH_PARAMS else None)
    x = np.random.default_rng(0).standard_normal((2,) + shape)
    x.setflags(write=False)
    for key in layer.params:
        layer.params[key].setflags(write=False)
    y = layer.forward(x)
    dy = np.ones_like(y)
    dy.setflags(write=False)
    layer.backward(dy)
    new = readonly() - before
    assert not new, new
