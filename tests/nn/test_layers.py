"""The layer contract (DESIGN.md section 3): shapes, params/grads, config round trip, seeds,
validation, dtype, and agreement with the physics couplings (same field by construction)."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from hamiltonian_cnn import FullCoupling, LocalCoupling, SharedCoupling, conv_params, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import reference as ref  # noqa: E402


def all_layers():
    """(layer, per-sample input shape) for one of everything."""
    return [
        (nn.SharedConv2d(3, 4, 3, padding="same", seed=0), (3, 6, 5)),
        (nn.SharedConv1d(2, 4, 3, stride=2, dilation=2, groups=2, seed=0), (2, 11)),
        (nn.LocalConv2d(3, 2, 3, stride=2, input_size=(7, 6), seed=0), (3, 7, 6)),
        (nn.LocalConv1d(2, 3, 2, padding="full", input_size=5, seed=0), (2, 5)),
        (nn.FullCoupled((3, 4, 4), 10, activation=None, seed=0), (3, 4, 4)),
        (nn.FullCoupled(12, (2, 3, 2), seed=0), (12,)),
        (nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, seed=0), (3, 4, 4)),
        (nn.ConvTranspose1d(2, 2, 3, stride=2, seed=0), (2, 5)),
        (nn.MaxPool2d(2), (2, 6, 7)),
        (nn.MaxPool1d(3, stride=2, padding=1), (2, 9)),
        (nn.AvgPool2d(3, stride=1, padding=1), (2, 5, 5)),
        (nn.AvgPool1d(2, count_include_pad=False), (3, 8)),
        (nn.GlobalAvgPool(), (4, 3, 3)),
        (nn.SpatialPyramidPool((1, 2, 4)), (3, 9, 10)),
        (nn.Flatten(), (3, 2, 2)),
    ]


LAYERS = all_layers()
IDS = [type(layer).__name__ + str(shape) for layer, shape in LAYERS]


@pytest.mark.parametrize("layer, shape", LAYERS, ids=IDS)
def test_shapes_params_grads(layer, shape):
    x = np.random.default_rng(0).standard_normal((3,) + shape)
    y = layer.forward(x)
    assert y.shape == (3,) + layer.output_shape(shape)
    assert y.dtype == (layer.dtype or np.float64)
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and np.all(np.isfinite(dx))
    assert set(layer.grads) == set(layer.params)
    for key, value in layer.params.items():
        assert layer.grads[key].shape == value.shape and layer.grads[key].dtype == value.dtype
    assert layer.n_params == sum(p.size for p in layer.params.values())
    assert type(layer).__name__ in repr(layer)


@pytest.mark.parametrize("layer, shape", LAYERS, ids=IDS)
def test_config_rebuilds_the_same_architecture(layer, shape):
    config = json.loads(json.dumps(layer.config()))
    twin = type(layer)(**config)
    assert twin.config() == layer.config()
    assert {k: v.shape for k, v in twin.params.items()} == {k: v.shape for k, v in layer.params.items()}
    for key in layer.params:
        twin.params[key][...] = layer.params[key]
    x = np.random.default_rng(1).standard_normal((2,) + shape)
    np.testing.assert_array_equal(twin.forward(x), layer.forward(x))


@pytest.mark.parametrize("layer, shape", LAYERS, ids=IDS)
def test_validation_before_any_kernel(layer, shape):
    good = np.zeros((2,) + shape)
    with pytest.raises(ValueError, match="backward: call forward first"):
        type(layer)(**layer.config()).backward(np.zeros((2,) + layer.output_shape(shape)))
    bad = good.copy()
    bad.flat[0] = np.nan
    with pytest.raises(ValueError, match="x: .*NaN"):
        layer.forward(bad)
    if not isinstance(layer, (nn.GlobalAvgPool, nn.Flatten, nn.SpatialPyramidPool)):  # several ranks
        with pytest.raises(ValueError, match="x: "):
            layer.forward(good[0])  # no batch axis
    with pytest.raises(ValueError, match="x: "):
        layer.forward(np.zeros((0,) + shape))
    with pytest.raises(TypeError, match="x: "):
        layer.forward("not an array")
    y = layer.forward(good)
    with pytest.raises(ValueError, match="dy: "):
        layer.backward(np.zeros(y.shape[:-1] + (y.shape[-1] + 1,)))
    with pytest.raises(ValueError, match="dy: .*NaN"):
        layer.backward(np.full(y.shape, np.inf))


@pytest.mark.parametrize("layer, shape", [(lay, s) for lay, s in LAYERS if len(s) > 1 and lay.params], ids=str)
def test_wrong_channels_or_sites_are_refused(layer, shape):
    with pytest.raises(ValueError, match="input_shape|x: "):
        layer.forward(np.zeros((2, shape[0] + 1) + shape[1:]))
    with pytest.raises(ValueError):
        layer.output_shape((shape[0] + 1,) + shape[1:])


def test_window_larger_than_input_is_refused():
    with pytest.raises(ValueError, match="kernel_size"):
        nn.SharedConv2d(1, 1, 5).forward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="input_shape"):
        nn.LocalConv2d(1, 1, 3, input_size=(6, 6)).forward(np.zeros((1, 1, 5, 6)))


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.SharedConv2d(3, 4, 3, groups=2), ValueError, "groups"),
    (lambda: nn.SharedConv2d(3, 4, 0), ValueError, "kernel_size"),
    (lambda: nn.SharedConv2d(3, 4, 3, stride=0), ValueError, "stride"),
    (lambda: nn.SharedConv2d(3, 4, 3, padding="half"), ValueError, "padding"),
    (lambda: nn.SharedConv2d(3, 4, 3, padding=-1), ValueError, "padding"),
    (lambda: nn.SharedConv2d(3, 4, 3, activation="softmax"), ValueError, "activation"),
    (lambda: nn.SharedConv2d(3, 4, 3, dtype=np.int32), TypeError, "dtype"),
    (lambda: nn.SharedConv2d(3.0, 4, 3), TypeError, "in_ch"),
    (lambda: nn.SharedConv1d(3, 4, (3, 3)), ValueError, "kernel_size"),
    (lambda: nn.LocalConv2d(3, 4, 3), TypeError, "input_size"),
    (lambda: nn.LocalConv2d(3, 4, 3, input_size=(5, 5), dilation=2), ValueError, "dilation"),
    (lambda: nn.LocalConv2d(3, 4, 3, input_size=(2, 5)), ValueError, "kernel_size"),
    (lambda: nn.FullCoupled(0, 3), ValueError, "in_features"),
    (lambda: nn.FullCoupled((3, -1), 3), ValueError, "in_features"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), ValueError, "output_padding"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, padding="same"), ValueError, "padding"),
    (lambda: nn.MaxPool2d(2, padding=2), ValueError, "padding"),
    (lambda: nn.AvgPool1d(3, count_include_pad="yes"), TypeError, "count_include_pad"),
    (lambda: nn.SpatialPyramidPool(()), ValueError, "levels"),
    (lambda: nn.SpatialPyramidPool((1, 0)), ValueError, "levels"),
    (lambda: nn.SpatialPyramidPool(mode="min"), ValueError, "mode"),
])
def test_bad_constructor_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_transpose_output_must_be_nonempty():
    layer = nn.ConvTranspose1d(1, 1, 1, padding=2)
    with pytest.raises(ValueError, match="output sites"):
        layer.forward(np.zeros((1, 1, 3)))


def test_same_seed_same_weights_and_fan_scaled_init():
    a = nn.SharedConv2d(3, 8, 5, seed=7)
    b = nn.SharedConv2d(3, 8, 5, seed=7)
    c = nn.SharedConv2d(3, 8, 5, seed=8)
    np.testing.assert_array_equal(a.params["J"], b.params["J"])
    assert not np.array_equal(a.params["J"], c.params["J"])
    np.testing.assert_array_equal(a.params["b"], 0.0)
    glorot = math.sqrt(6 / (3 * 25 + 8 * 25))
    assert np.abs(a.params["J"]).max() <= glorot and np.abs(a.params["J"]).max() > 0.8 * glorot
    he = math.sqrt(6 / (3 * 25))
    relu = nn.SharedConv2d(3, 8, 5, activation="relu", seed=7)
    assert np.abs(relu.params["J"]).max() > glorot and np.abs(relu.params["J"]).max() <= he


def test_params_are_live_and_read_every_forward():
    layer = nn.SharedConv2d(1, 2, 3, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5))
    layer.forward(x)
    layer.params["J"] -= layer.params["J"]  # an optimiser step in place
    layer.params["b"] += 2.0
    np.testing.assert_allclose(layer.forward(x), 1 / (1 + np.exp(-2.0)))
    layer.params["J"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"params\['J'\]"):
        layer.forward(x)


def test_dtype_casts_input_and_keeps_params():
    layer = nn.SharedConv2d(2, 3, 3, seed=0)  # float32 by default
    y = layer.forward(np.random.default_rng(0).standard_normal((2, 2, 5, 5)))  # float64 input
    assert y.dtype == np.float32 and layer.params["J"].dtype == np.float32
    assert layer.backward(np.ones_like(y, dtype=np.float64)).dtype == np.float32
    assert layer.grads["J"].dtype == np.float32
    pool = nn.MaxPool2d(2)
    assert pool.forward(np.zeros((1, 1, 4, 4), np.float32)).dtype == np.float32
    assert pool.forward(np.zeros((1, 1, 4, 4), np.int64)).dtype == np.float64


def test_n_params_match_the_formulas():
    assert nn.SharedConv2d(3, 8, 5).n_params == conv_params(3, 8, 5)
    assert nn.SharedConv2d(4, 8, 3, groups=4).n_params == conv_params(4, 8, 3, groups=4)
    assert nn.SharedConv1d(4, 8, 3, bias=False).n_params == conv_params(4, 8, 3, ndim=1, bias=False)
    assert nn.LocalConv2d(3, 8, 5, input_size=(12, 12)).n_params == 8 * 8 * 8 * (3 * 25 + 1)
    assert nn.FullCoupled((3, 4, 4), 10).n_params == (48 + 1) * 10
    assert nn.ConvTranspose2d(4, 6, 3, groups=2).n_params == 4 * 3 * 9 + 6


def test_pool_stride_defaults_to_window_and_pyramid_is_size_free():
    assert nn.MaxPool2d(3).stride == (3, 3)
    assert nn.MaxPool2d(2).output_shape((4, 9, 8)) == (4, 4, 4)
    spp = nn.SpatialPyramidPool((1, 2, 4))
    for sites in [(7, 7), (13, 20), (3, 2)]:
        assert spp.forward(np.ones((2, 5) + sites)).shape == (2, 5 * 21)
    assert nn.SpatialPyramidPool((1, 2, 4)).forward(np.ones((2, 5, 11))).shape == (2, 5 * 7)


def test_spatial_pyramid_matches_reference():
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 9))
    for mode in ("max", "avg"):
        spp = nn.SpatialPyramidPool((1, 2, 4), mode=mode)
        np.testing.assert_allclose(spp.forward(x), ref.spatial_pyramid_pool(x, (1, 2, 4), mode), rtol=1e-12)
        dy = np.random.default_rng(5).standard_normal((2, 63))
        np.testing.assert_allclose(spp.backward(dy), ref.spatial_pyramid_pool_backward(x, dy, (1, 2, 4), mode),
                                   rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- physics agreement


def test_shared_layer_is_its_coupling():
    rng = np.random.default_rng(0)
    layer = nn.SharedConv2d(4, 6, (3, 2), stride=(2, 1), padding="same", dilation=(1, 2), groups=2,
                            activation=None, dtype=np.float64, seed=0)
    layer.params["b"][:] = rng.standard_normal(6)
    coupling = layer.coupling()
    assert isinstance(coupling, SharedCoupling) and coupling.n_params == layer.n_params
    x = rng.standard_normal((2, 4, 7, 6))
    np.testing.assert_allclose(layer.forward(x), coupling.field(x), rtol=1e-12, atol=1e-12)
    sig = nn.SharedConv2d(**{**layer.config(), "activation": "sigmoid"})
    for key in layer.params:
        sig.params[key][...] = layer.params[key]
    np.testing.assert_allclose(sig.forward(x), 1 / (1 + np.exp(-coupling.field(x))), rtol=1e-12)


def test_shared1d_layer_is_its_coupling():
    layer = nn.SharedConv1d(2, 3, 4, stride=2, padding=(1, 2), activation=None, dtype=np.float64, seed=3)
    x = np.random.default_rng(1).standard_normal((3, 2, 10))
    np.testing.assert_allclose(layer.forward(x), layer.coupling().field(x), rtol=1e-12, atol=1e-12)


def test_local_layer_is_its_coupling_and_its_dense_full_coupling():
    rng = np.random.default_rng(0)
    layer = nn.LocalConv2d(2, 3, 3, stride=2, padding=1, input_size=(6, 5), activation=None,
                           dtype=np.float64, seed=0)
    layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    coupling = layer.coupling()
    assert isinstance(coupling, LocalCoupling)
    x = rng.standard_normal((2, 2, 6, 5))
    y = layer.forward(x)
    np.testing.assert_allclose(y, coupling.field(x), rtol=1e-12, atol=1e-12)
    full = nn.FullCoupled((2, 6, 5), layer.output_shape((2, 6, 5)), activation=None, dtype=np.float64)
    full.params["J"][...] = coupling.dense()
    full.params["b"][...] = layer.params["b"]
    np.testing.assert_allclose(full.forward(x), y, rtol=1e-12, atol=1e-12)
    assert isinstance(full.coupling(), FullCoupling)
    np.testing.assert_allclose(full.coupling().field(x), y, rtol=1e-12, atol=1e-12)


def test_full_layer_accepts_flat_and_shaped_inputs():
    layer = nn.FullCoupled((2, 3, 3), 4, activation="tanh", dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3, 3))
    y = layer.forward(x)
    assert y.shape == (5, 4)
    np.testing.assert_allclose(layer.forward(x.reshape(5, -1)), y)
    assert layer.backward(np.ones((5, 4))).shape == (5, 18)
    assert layer.output_shape((18,)) == (4,)
    flat = nn.FullCoupled(6, 2, activation=None, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).standard_normal((3, 6))
    np.testing.assert_allclose(flat.forward(x), flat.coupling().field(x[:, :, None])[:, :, 0], rtol=1e-12)


def test_tied_local_layer_equals_shared_layer():
    """LocalConv with every window equal to a SharedConv's: same y and dx; grads summed over sites."""
    rng = np.random.default_rng(2)
    for nd, sites, kwargs in [(2, (7, 6), dict(stride=(2, 1), padding="same")), (1, (9,), dict(stride=2, padding=1))]:
        shared = (nn.SharedConv2d if nd == 2 else nn.SharedConv1d)(3, 4, 3, activation="tanh", dtype=np.float64,
                                                                    seed=0, **kwargs)
        local = (nn.LocalConv2d if nd == 2 else nn.LocalConv1d)(3, 4, 3, activation="tanh", dtype=np.float64,
                                                                 input_size=sites, **kwargs)
        shared.params["b"][:] = rng.standard_normal(4)
        tied = shared.coupling().untie((3,) + sites)
        local.params["J"][...] = tied.weight
        local.params["b"][...] = tied.bias
        x = rng.standard_normal((2, 3) + sites)
        np.testing.assert_allclose(local.forward(x), shared.forward(x), rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(shared.forward(x).shape)
        local.forward(x)
        np.testing.assert_allclose(local.backward(dy), shared.backward(dy), rtol=1e-10, atol=1e-12)
        site_axes = tuple(range(1, 1 + nd))
        np.testing.assert_allclose(local.grads["J"].sum(axis=site_axes), shared.grads["J"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(local.grads["b"].sum(axis=site_axes), shared.grads["b"], rtol=1e-10, atol=1e-12)


def test_transpose_layer_is_the_adjoint_of_its_coupling():
    rng = np.random.default_rng(0)
    for layer, shape in [
        (nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, groups=1, seed=0), (3, 4, 5)),
        (nn.ConvTranspose2d(4, 2, (2, 3), stride=(1, 2), dilation=(2, 1), groups=2, seed=0), (4, 3, 4)),
        (nn.ConvTranspose1d(2, 3, 4, stride=3, padding=(1, 2), seed=0), (2, 5)),
    ]:
        layer = type(layer)(**{**layer.config(), "dtype": "float64", "bias": False})
        d = rng.standard_normal((2,) + shape)
        z = layer.forward(d)
        x = rng.standard_normal(z.shape)
        conv_x = layer.coupling().field(x)
        assert conv_x.shape == d.shape
        np.testing.assert_allclose(np.vdot(conv_x, d), np.vdot(x, z), rtol=1e-12)


def test_depthwise_separable_is_depthwise_then_pointwise():
    rng = np.random.default_rng(0)
    depthwise = nn.SharedConv2d(4, 4, 3, padding=1, groups=4, activation=None, dtype=np.float64, seed=0)
    pointwise = nn.SharedConv2d(4, 6, 1, activation="sigmoid", dtype=np.float64, seed=1)
    assert depthwise.n_params + pointwise.n_params == (4 * 9 + 4) + (4 * 6 + 6)
    x = rng.standard_normal((2, 4, 5, 5))
    y = pointwise.forward(depthwise.forward(x))
    h = ref.conv2d(x, depthwise.params["J"], depthwise.params["b"], pads=((1, 1), (1, 1)), groups=4)
    want = ref.activate(ref.conv2d(h, pointwise.params["J"], pointwise.params["b"]), "sigmoid")
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_huge_inputs_stay_finite():
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6)) * 1e4
    for act in nn.ACTIVATIONS:
        for dtype in (np.float32, np.float64):
            layer = nn.SharedConv2d(2, 3, 3, activation=act, dtype=dtype, seed=0)
            y = layer.forward(x)
            assert np.all(np.isfinite(y)) and np.all(np.isfinite(layer.backward(np.ones_like(y))))


# ---------------------------------------------------------------- the kernels behind the layers


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.SharedConv2d(3, 5, 3, padding="same", dilation=(1, 2), groups=1, activation="tanh", seed=0), (3, 7, 9)),
    (lambda: nn.SharedConv2d(4, 6, (2, 3), padding=((1, 0), (2, 1)), groups=2, seed=1), (4, 5, 6)),
    (lambda: nn.SharedConv1d(2, 4, 5, padding=2, activation="relu", seed=2), (2, 13)),
])
def test_direct_and_im2col_layers_agree(make, shape):
    """Stride 1 runs the direct kernel by default; forcing the im2col kernel gives the same y, dx and
    grads (float64, so any disagreement is a bug, not rounding)."""
    from hamiltonian_cnn.nn.conv import conv_method

    x = np.random.default_rng(0).standard_normal((5,) + shape)
    direct, im2col = make(), make()
    direct._dtype = im2col._dtype = np.dtype(np.float64)
    for layer in (direct, im2col):
        for key in layer.params:
            layer.params[key] = layer.params[key].astype(np.float64)
    im2col._method = "im2col"
    assert conv_method(direct.stride, direct._method) == "direct"
    assert conv_method(im2col.stride, im2col._method) == "im2col"
    y_d, y_i = direct.forward(x), im2col.forward(x)
    np.testing.assert_allclose(y_d, y_i, rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(1).standard_normal(y_d.shape)
    np.testing.assert_allclose(direct.backward(dy), im2col.backward(dy), rtol=1e-12, atol=1e-12)
    for key in direct.grads:
        np.testing.assert_allclose(direct.grads[key], im2col.grads[key], rtol=1e-11, atol=1e-11)
    assert conv_method((2, 1)) == "im2col" and conv_method((1,), "direct") == "direct"


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.SharedConv2d(2, 3, 3, padding=1, seed=0), (2, 6, 6)),
    (lambda: nn.LocalConv2d(2, 3, 3, padding=1, input_size=(6, 6), seed=0), (2, 6, 6)),
])
def test_reused_scratch_follows_the_batch_size(make, shape):
    """Layers keep their kernels' work arrays between calls; batches of other sizes (smaller, larger,
    in any order) still give what a fresh layer gives."""
    rng = np.random.default_rng(4)
    layer = make()
    for n in (5, 2, 9, 1, 9):
        x = rng.standard_normal((n,) + shape).astype(np.float32)
        dy = rng.standard_normal((n,) + layer.output_shape(shape)).astype(np.float32)
        fresh = make()
        np.testing.assert_array_equal(layer.forward(x), fresh.forward(x))
        np.testing.assert_array_equal(layer.backward(dy), fresh.backward(dy))
        for key in layer.grads:
            np.testing.assert_array_equal(layer.grads[key], fresh.grads[key])


def test_run_chunks_order_errors_and_thread_count():
    """Pieces come back in order, cover the batch exactly once, errors in any piece reach the caller,
    and small calls stay on the calling thread."""
    import numba

    from hamiltonian_cnn.nn.runtime import PARALLEL_MIN_FLOPS, n_chunks, run_chunks

    for n, chunks in ((10, 3), (2, 5), (7, 1), (100, 2)):
        pieces = run_chunks(lambda slot, t, a, b: (t, a, b, slot), n, chunks)
        assert [p[0] for p in pieces] == list(range(len(pieces)))
        assert pieces[0][1] == 0 and pieces[-1][2] == n
        assert all(p[2] == q[1] for p, q in zip(pieces, pieces[1:]))
        assert {p[3] for p in pieces} <= set(range(min(chunks, n)))

    def fail(slot, t, a, b):
        if t == 1:
            raise ValueError("piece 1 failed")

    with pytest.raises(ValueError, match="piece 1 failed"):
        run_chunks(fail, 10, 2)
    assert n_chunks(PARALLEL_MIN_FLOPS - 1) == 1
    assert n_chunks(PARALLEL_MIN_FLOPS) == numba.get_num_threads() == n_chunks()


def test_conv_threads_follow_the_flops(monkeypatch):
    """A convolution runs on Numba's threads when its field takes PARALLEL_MIN_FLOPS or more, on the
    calling thread below that; the backward (twice the flops) never takes fewer than the forward."""
    import numba

    from hamiltonian_cnn.nn import conv
    from hamiltonian_cnn.nn.runtime import PARALLEL_MIN_FLOPS

    if numba.get_num_threads() < 2:
        pytest.skip("needs 2 Numba threads")
    seen = []
    real = conv.run_chunks
    monkeypatch.setattr(conv, "run_chunks",
                        lambda fn, n, chunks, *a, **k: seen.append(chunks) or real(fn, n, chunks, *a, **k))
    rng = np.random.default_rng(0)
    for (n, c_in, c_out, sites), fwd, bwd in (((64, 16, 32, 16), numba.get_num_threads(), numba.get_num_threads()),
                                              ((32, 16, 32, 4), 1, 1)):
        layer = nn.SharedConv2d(c_in, c_out, 3, padding=1, seed=0)
        flops = 2 * n * sites * sites * layer.params["J"].size
        assert (flops >= PARALLEL_MIN_FLOPS) == (fwd > 1)
        y = layer.forward(rng.standard_normal((n, c_in, sites, sites)).astype(np.float32))
        layer.backward(np.ones_like(y))
        assert seen[-2:] == [fwd, bwd]


def test_run_chunks_from_several_threads():
    """Callers on several threads share the pool's threads but each gets its own pieces back."""
    import threading

    from hamiltonian_cnn.nn.runtime import run_chunks

    outputs, errors = {}, []

    def caller(k):
        try:
            for _ in range(50):
                pieces = run_chunks(lambda slot, t, a, b: (k, t, a, b), 12, 3)
                assert [p[0] for p in pieces] == [k] * len(pieces)
                assert pieces[0][2] == 0 and pieces[-1][3] == 12
            outputs[k] = True
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(outputs) == [0, 1, 2, 3]


def test_blas_single_thread_restores_the_thread_counts():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from hamiltonian_cnn.nn.runtime import blas_single_thread

    def counts():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]

    before = counts()
    with blas_single_thread():
        inside = counts()
    assert counts() == before
    import numba

    if numba.get_num_threads() > 1:
        assert all(n == 1 for n in inside)
