"""shift and shuffle_sites against plain loops and their defining properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hamiltonian_cnn.data import shift, shuffle_sites, site_permutation

SETTINGS = settings(max_examples=50, deadline=None)


def shift_loop(X, dx, dy):
    """out[..., i, j] = X[..., i - dy, j - dx] where inside, else 0 (1-D: out[..., j] = X[..., j - dx])."""
    out = np.zeros_like(X)
    if X.ndim == 3:
        L = X.shape[-1]
        for j in range(L):
            if 0 <= j - dx < L:
                out[..., j] = X[..., j - dx]
        return out
    H, W = X.shape[-2:]
    for i in range(H):
        for j in range(W):
            if 0 <= i - dy < H and 0 <= j - dx < W:
                out[..., i, j] = X[..., i - dy, j - dx]
    return out


@st.composite
def batches(draw, dtypes=(np.float32, np.float64, np.int32, np.uint8)):
    ndim = draw(st.sampled_from([3, 4]))
    sites = tuple(draw(st.integers(1, 7)) for _ in range(ndim - 2))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), *sites)
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = rng.integers(1, 100, size=shape).astype(dtype)  # nonzero, so zero fill is visible
    return X


def readonly(X):
    X = X.copy()
    X.setflags(write=False)  # any attempt to write into the input raises
    return X


@SETTINGS
@given(X=batches(), dx=st.integers(-9, 9), dy=st.integers(-9, 9))
def test_shift_matches_loop(X, dx, dy):
    if X.ndim == 3:
        dy = 0
    before = X.copy()
    out = shift(readonly(X), dx, dy)
    assert out.dtype == X.dtype and out.shape == X.shape
    assert np.array_equal(out, shift_loop(X, dx, dy))
    assert np.array_equal(X, before)


@SETTINGS
@given(X=batches(dtypes=(np.float64,)), dx=st.integers(-9, 9), dy=st.integers(-9, 9))
def test_shift_back_restores_all_but_the_edges(X, dx, dy):
    if X.ndim == 3:
        dy = 0
    back = shift(shift(X, dx, dy), -dx, -dy)
    if X.ndim == 3:
        mask = (np.arange(X.shape[-1]) + dx >= 0) & (np.arange(X.shape[-1]) + dx < X.shape[-1])
    else:
        H, W = X.shape[-2:]
        rows = (np.arange(H) + dy >= 0) & (np.arange(H) + dy < H)
        cols = (np.arange(W) + dx >= 0) & (np.arange(W) + dx < W)
        mask = rows[:, None] & cols[None, :]
    assert np.array_equal(back, X * mask)


def test_shift_direction():
    X = np.zeros((1, 1, 4, 5))
    X[0, 0, 1, 2] = 1.0
    out = shift(X, 1, 2)  # right by one, down by two
    assert out[0, 0, 3, 3] == 1.0 and out.sum() == 1.0
    out = shift(X, -2, -1)
    assert out[0, 0, 0, 0] == 1.0 and out.sum() == 1.0
    x1 = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5)
    assert np.array_equal(shift(x1, 2)[0, 0], [0, 0, 1, 2, 3])
    assert np.array_equal(shift(x1, -1)[0, 0], [2, 3, 4, 5, 0])


def test_shift_by_size_or_more_is_zero_and_zero_shift_copies():
    X = np.ones((2, 3, 4, 6))
    for dx, dy in ((6, 0), (-6, 0), (0, 4), (0, -4), (100, 1)):
        assert not shift(X, dx, dy).any()
    out = shift(X, 0, 0)
    assert np.array_equal(out, X) and out is not X and not np.shares_memory(out, X)


def test_shift_accepts_numpy_ints_and_non_contiguous_input():
    X = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    view = X.transpose(0, 1, 3, 2)[:, ::2]  # (2, 2, 5, 4), not contiguous
    assert np.array_equal(shift(view, np.int64(1), np.int32(-1)), shift_loop(view, 1, -1))


@SETTINGS
@given(X=batches(), seed=st.integers(0, 2**32 - 1))
def test_shuffle_sites_is_one_fixed_permutation(X, seed):
    before = X.copy()
    out = shuffle_sites(readonly(X), seed)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert np.array_equal(X, before)
    N, C = X.shape[:2]
    flat_in, flat_out = X.reshape(N, C, -1), out.reshape(N, C, -1)
    # every image keeps its pixel values
    assert np.array_equal(np.sort(flat_in, axis=-1), np.sort(flat_out, axis=-1))
    # and the same permutation is applied to every sample and channel
    perm = site_permutation(X.shape[2:], seed)
    assert np.array_equal(np.sort(perm), np.arange(flat_in.shape[-1]))
    for n in range(N):
        for c in range(C):
            assert np.array_equal(flat_out[n, c], flat_in[n, c][perm])
    # inverse via the permutation, or via inverse=True
    restored = np.empty_like(flat_out)
    restored[..., perm] = flat_out
    assert np.array_equal(restored.reshape(X.shape), X)
    assert np.array_equal(flat_out[..., np.argsort(perm)].reshape(X.shape), X)
    assert np.array_equal(shuffle_sites(out, seed, inverse=True), X)


def test_shuffle_sites_depends_on_seed_and_moves_pixels():
    X = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8)
    a, b = shuffle_sites(X, 0), shuffle_sites(X, 1)
    assert np.array_equal(a, shuffle_sites(X, 0))
    assert not np.array_equal(a, b)
    assert np.count_nonzero(a != X) > 48  # locality is destroyed, not mildly perturbed
    assert np.array_equal(site_permutation((8, 8), 5), np.random.default_rng(5).permutation(64))
    assert np.array_equal(site_permutation(7, 5), site_permutation((7,), 5))


@pytest.mark.parametrize("fn", [lambda X: shift(X, 1), lambda X: shuffle_sites(X, 0)])
def test_bad_X(fn):
    with pytest.raises(ValueError) as info:
        fn(np.zeros((8, 8)))
    msg = str(info.value)
    assert "X" in msg and "(8, 8)" in msg and "(N, C, H, W)" in msg and "(N, C, L)" in msg
    with pytest.raises(ValueError, match=r"X.*\(1, 1, 1, 1, 1\)"):
        fn(np.zeros((1, 1, 1, 1, 1)))
    with pytest.raises(TypeError, match="X"):
        fn([[[1.0]]])
    with pytest.raises(TypeError, match="X.*complex"):
        fn(np.zeros((1, 1, 2), dtype=complex))
    with pytest.raises(TypeError, match="X.*bool"):
        fn(np.zeros((1, 1, 2), dtype=bool))
    for bad in (np.nan, np.inf):
        X = np.zeros((2, 1, 3, 3))
        X[1, 0, 2, 2] = bad
        with pytest.raises(ValueError, match="X.*NaN or Inf"):
            fn(X)


def test_bad_shifts():
    X = np.zeros((1, 1, 3, 3))
    for bad in (1.0, 1.5, "1", None, True):
        with pytest.raises(TypeError, match="dx"):
            shift(X, bad)
        with pytest.raises(TypeError, match="dy"):
            shift(X, 0, bad)
    with pytest.raises(ValueError) as info:
        shift(np.zeros((1, 1, 3)), 1, 2)
    assert "dy" in str(info.value) and "2" in str(info.value)


def test_bad_seeds_and_shapes():
    X = np.zeros((1, 1, 3, 3))
    with pytest.raises(TypeError, match="seed"):
        shuffle_sites(X, 0.5)
    with pytest.raises(ValueError, match="seed.*-1"):
        shuffle_sites(X, -1)
    with pytest.raises(TypeError, match="inverse"):
        shuffle_sites(X, 0, inverse="no")
    with pytest.raises(ValueError, match="sites_shape"):
        site_permutation((3, 0), 0)
    with pytest.raises(TypeError, match="sites_shape"):
        site_permutation("3x3", 0)
