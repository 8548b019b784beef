"""MNIST-1D loading and digits placed on a canvas, checked by brute force."""

import numpy as np
import pytest

import hamiltonian_cnn as hc
from hamiltonian_cnn.data import datasets
from hamiltonian_cnn.data.transforms import canvas_positions, place_on_canvas

# ---------------------------------------------------------------- MNIST-1D


@pytest.fixture(scope="module")
def mnist1d():
    return hc.data.load("mnist1d")


def test_mnist1d_shapes_dtypes_labels(mnist1d):
    X, y, Xt, yt = mnist1d
    assert X.shape == (4000, 1, 40) and y.shape == (4000,)
    assert Xt.shape == (1000, 1, 40) and yt.shape == (1000,)
    assert X.dtype == Xt.dtype == np.float32
    assert y.dtype == yt.dtype == np.int64
    for labels in (y, yt):
        assert set(np.unique(labels)) == set(range(10))
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(Xt))
    # standardised by the generator over the whole set (train and test together)
    both = np.concatenate([X, Xt]).astype(np.float64)
    assert abs(both.mean()) < 1e-4 and abs(both.std() - 1) < 1e-4
    # the sequences are distinct (not one template repeated)
    assert len(np.unique(X.reshape(4000, -1), axis=0)) == 4000
    X64 = hc.data.load("mnist1d", dtype=np.float64)[0]
    assert X64.dtype == np.float64
    np.testing.assert_allclose(X64, X, rtol=1e-6, atol=1e-6)


def test_mnist1d_deterministic_and_leaves_the_global_random_state(monkeypatch, mnist1d):
    monkeypatch.setattr(datasets, "_MNIST1D", {})  # force a fresh generation, not the per-process copy
    saved = np.random.get_state()
    try:
        np.random.seed(12345)
        before = np.random.get_state()
        fresh = hc.data.load("mnist1d")
        after = np.random.get_state()
        assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
        assert np.random.random() == np.random.RandomState(12345).random()
    finally:
        np.random.set_state(saved)
    for a, b in zip(fresh, mnist1d):
        np.testing.assert_array_equal(a, b)  # the same data whatever the global state was
    again = hc.data.load("mnist1d")
    for a, b in zip(again, mnist1d):
        np.testing.assert_array_equal(a, b)


def test_mnist1d_shuffle_is_one_fixed_permutation_of_sites(mnist1d):
    X, y, Xt, yt = mnist1d
    Xs, ys, Xst, yst = hc.data.load("mnist1d", shuffle=True)
    assert Xs.shape == X.shape and Xst.shape == Xt.shape
    np.testing.assert_array_equal(ys, y)
    np.testing.assert_array_equal(yst, yt)
    # find p from the first 50 sequences: column j of the shuffled data is column p[j] of the original
    a = Xs[:50, 0].astype(np.float64)
    b = X[:50, 0].astype(np.float64)
    dist = np.abs(a[:, :, None] - b[:, None, :]).max(axis=0)  # (shuffled site, original site)
    p = dist.argmin(axis=1)
    assert np.all(dist[np.arange(40), p] < 1e-5)
    assert sorted(p) == list(range(40)), "not a permutation"
    assert not np.array_equal(p, np.arange(40)), "shuffle=True left the sites in order"
    np.testing.assert_allclose(Xs, X[..., p], rtol=0, atol=1e-5)
    np.testing.assert_allclose(Xst, Xt[..., p], rtol=0, atol=1e-5)
    # and locality really is gone: neighbouring sites are far less correlated after the shuffle
    def neighbour_corr(Z):
        Z = Z[:, 0].astype(np.float64)
        return np.mean([np.corrcoef(Z[:, i], Z[:, i + 1])[0, 1] for i in range(39)])
    assert neighbour_corr(X) > neighbour_corr(Xs) + 0.2


def test_mnist1d_refuses_bad_arguments():
    for bad in ("yes", 1, None):
        with pytest.raises(TypeError, match="shuffle"):
            hc.data.load("mnist1d", shuffle=bad)
    with pytest.raises(TypeError, match="dtype"):
        hc.data.load("mnist1d", dtype=np.int32)
    with pytest.raises(TypeError):
        hc.data.load("mnist1d", canvas=16)


def test_mnist1d_returns_copies_float32(monkeypatch, mnist1d):
    monkeypatch.setattr(datasets, "_MNIST1D", {k: tuple(a.copy() for a in v) for k, v in datasets._MNIST1D.items()})
    X, y, _, _ = hc.data.load("mnist1d")
    first = X[0, 0, 0]
    X[0, 0, 0] += 100.0
    y[0] = 99
    X2, y2, _, _ = hc.data.load("mnist1d")
    assert X2[0, 0, 0] == first and y2[0] != 99


def test_mnist1d_returns_copies_float64(monkeypatch, mnist1d):
    monkeypatch.setattr(datasets, "_MNIST1D", {k: tuple(a.copy() for a in v) for k, v in datasets._MNIST1D.items()})
    X, _, Xt, _ = hc.data.load("mnist1d", dtype=np.float64)
    first, first_t = X[0, 0, 0], Xt[0, 0, 0]
    X[0, 0, 0] += 100.0
    Xt[0, 0, 0] += 100.0
    X2, _, Xt2, _ = hc.data.load("mnist1d", dtype=np.float64)
    assert X2[0, 0, 0] == first and Xt2[0, 0, 0] == first_t


# ---------------------------------------------------------------- place_on_canvas


def locate(canvas_img, image, positions):
    """The corners among ``positions`` at which ``canvas_img`` is exactly ``image`` on zeros."""
    h, w = image.shape[-2:]
    found = []
    for r, c in positions:
        expected = np.zeros_like(canvas_img)
        expected[..., r:r + h, c:c + w] = image
        if np.array_equal(canvas_img, expected):
            found.append((int(r), int(c)))
    return found


def test_canvas_positions_brute_force():
    pos = canvas_positions((8, 8), 16)
    assert pos.shape == (81, 2) and pos.dtype.kind in "iu"
    assert {tuple(p) for p in pos} == {(r, c) for r in range(9) for c in range(9)}
    left = canvas_positions((8, 8), 16, columns=(0, 4))
    assert {tuple(p) for p in left} == {(r, c) for r in range(9) for c in range(4)}
    rect = canvas_positions((3, 5), 6)
    assert {tuple(p) for p in rect} == {(r, c) for r in range(4) for c in range(2)}
    assert canvas_positions((4, 4), 4).tolist() == [[0, 0]]
    with pytest.raises(ValueError, match="columns"):
        canvas_positions((8, 8), 16, columns=(9, 12))
    with pytest.raises(TypeError, match="columns"):
        canvas_positions((8, 8), 16, columns=3)
    with pytest.raises(ValueError, match="canvas"):
        canvas_positions((8, 8), 7)


def test_place_on_canvas_puts_each_image_once_on_zeros():
    rng = np.random.default_rng(0)
    X = rng.uniform(0.1, 1.0, size=(300, 2, 3, 4))  # nonzero everywhere: the block is identifiable
    X_copy = X.copy()
    out = place_on_canvas(X, 7, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(X, X_copy)  # input untouched
    assert out.shape == (300, 2, 7, 7) and out.dtype == X.dtype
    allowed = [(r, c) for r in range(5) for c in range(4)]
    used = set()
    for n in range(len(X)):
        nz = np.argwhere(np.any(out[n] != 0, axis=0))
        r, c = nz.min(axis=0)
        assert tuple(nz.max(axis=0) - nz.min(axis=0)) == (2, 3)
        assert locate(out[n], X[n], [(r, c)]) == [(r, c)]  # both channels at the same corner
        used.add((int(r), int(c)))
    assert used == set(allowed)  # every corner drawn at some point (300 draws of 20)


def test_place_on_canvas_restricted_positions_and_seeds():
    rng = np.random.default_rng(3)
    X = rng.uniform(0.5, 1.0, size=(400, 1, 8, 8)).astype(np.float32)
    pos = canvas_positions((8, 8), 16, columns=(0, 4))
    out = place_on_canvas(X, 16, positions=pos, rng=7)
    used = set()
    for n in range(len(X)):
        nz = np.argwhere(out[n, 0] != 0)
        r, c = nz.min(axis=0)
        assert c < 4 and r <= 8
        np.testing.assert_array_equal(out[n, 0, r:r + 8, c:c + 8], X[n, 0])
        assert np.count_nonzero(out[n]) == 64
        used.add((int(r), int(c)))
    assert used == {tuple(p) for p in pos}
    # seeds: the same seed (int or Generator) gives identical canvases, another seed others
    np.testing.assert_array_equal(place_on_canvas(X, 16, positions=pos, rng=7), out)
    np.testing.assert_array_equal(place_on_canvas(X, 16, pos, np.random.default_rng(7)),
                                  place_on_canvas(X, 16, pos, np.random.default_rng(7)))
    assert not np.array_equal(place_on_canvas(X, 16, positions=pos, rng=8), out)
    np.testing.assert_array_equal(place_on_canvas(X, 16), place_on_canvas(X, 16, rng=0))  # default seed 0
    # a single allowed corner is deterministic whatever the rng
    one = place_on_canvas(X[:5], 16, positions=[[2, 3]], rng=99)
    for n in range(5):
        assert locate(one[n], X[n], [(2, 3)]) == [(2, 3)]
    # integer images keep their dtype
    ints = place_on_canvas(np.arange(1, 17, dtype=np.uint8).reshape(1, 1, 4, 4), 5, rng=0)
    assert ints.dtype == np.uint8 and ints.sum() == sum(range(1, 17))


def test_place_on_canvas_refuses_bad_arguments():
    X = np.ones((3, 1, 8, 8))
    with pytest.raises(ValueError, match="canvas"):
        place_on_canvas(X, 7)
    with pytest.raises(TypeError, match="canvas"):
        place_on_canvas(X, 16.0)
    with pytest.raises(ValueError, match="positions"):
        place_on_canvas(X, 16, positions=[[0, 9]])
    with pytest.raises(ValueError, match="positions"):
        place_on_canvas(X, 16, positions=[[-1, 0]])
    with pytest.raises(ValueError, match="positions"):
        place_on_canvas(X, 16, positions=[[0, 1, 2]])
    with pytest.raises(ValueError, match="positions"):
        place_on_canvas(X, 16, positions=[0, 1])
    with pytest.raises(ValueError, match="positions"):
        place_on_canvas(X, 16, positions=np.zeros((0, 2), dtype=int))
    with pytest.raises(ValueError, match="positions"):
        place_on_canvas(X, 16, positions=[[0.0, 1.0]])
    with pytest.raises(ValueError, match="X"):
        place_on_canvas(np.ones((3, 1, 8)), 16)
    with pytest.raises(ValueError, match="X"):
        place_on_canvas(np.ones((8, 8)), 16)
    with pytest.raises(ValueError):
        place_on_canvas(np.full((1, 1, 2, 2), np.nan), 4)
    for rng in ("seed", 1.5, np.random.RandomState(0)):
        with pytest.raises(TypeError, match="rng"):
            place_on_canvas(X, 16, rng=rng)
    with pytest.raises(TypeError):
        place_on_canvas([[[[1.0]]]], 2)


# ---------------------------------------------------------------- load("digits", canvas=S)


def test_digits_on_a_canvas_hold_their_digit():
    plain = hc.data.load("digits")
    placed = hc.data.load("digits", canvas=16)
    for (Xp, yp), (Xc, yc) in zip((plain[:2], plain[2:]), (placed[:2], placed[2:])):
        assert Xc.shape == (len(Xp), 1, 16, 16) and Xc.dtype == np.float32
        np.testing.assert_array_equal(yc, yp)
        assert Xc.flags.c_contiguous
        np.testing.assert_allclose(Xc.sum(axis=(1, 2, 3)), Xp.sum(axis=(1, 2, 3)), rtol=1e-5)
        for n in range(len(Xp)):
            digit = Xp[n, 0]
            dr, dc = np.argwhere(digit != 0).min(axis=0)  # the digit's own first nonzero row/column
            r, c = np.argwhere(Xc[n, 0] != 0).min(axis=0)
            corner = (r - dr, c - dc)
            assert 0 <= corner[0] <= 8 and 0 <= corner[1] <= 8
            expected = np.zeros((16, 16), dtype=np.float32)
            expected[corner[0]:corner[0] + 8, corner[1]:corner[1] + 8] = digit
            np.testing.assert_array_equal(Xc[n, 0], expected)
    again = hc.data.load("digits", canvas=16)
    for a, b in zip(placed, again):
        np.testing.assert_array_equal(a, b)


def test_digits_on_restricted_positions():
    pos = canvas_positions((8, 8), 12, columns=(0, 2))
    plain = hc.data.load("digits", dtype=np.float64)
    X, y, Xt, yt = hc.data.load("digits", canvas=12, positions=pos, dtype=np.float64)
    assert X.dtype == np.float64 and X.shape[1:] == (1, 12, 12)
    for Xc, Xp in ((X, plain[0]), (Xt, plain[2])):
        for n in range(0, len(Xp), 7):
            found = locate(Xc[n], Xp[n], pos)
            assert found, f"sample {n}: its digit is not at an allowed corner"
        # nothing right of column 2 + 8 - 1
        assert not np.any(Xc[..., 10:])
    with pytest.raises(ValueError, match="positions"):
        hc.data.load("digits", positions=pos)
    with pytest.raises(ValueError, match="positions"):
        hc.data.load("digits", canvas=12, positions=[[0, 5]])
    with pytest.raises(ValueError, match="canvas"):
        hc.data.load("digits", canvas=6)
