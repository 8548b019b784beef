"""hamiltonian_cnn.data.load: the real digits and the planted-cat toy."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from hamiltonian_cnn.data import CAT_TEMPLATE, DATASETS, cat_info, load


def matched_filter(X, T):
    """Correlation of every image with T at every valid site: (N, rows, cols)."""
    windows = sliding_window_view(X[:, 0].astype(np.float64), T.shape, axis=(1, 2))
    return np.einsum("nijab,ab->nij", windows, T)


def embed(T, shape, site):
    img = np.zeros(shape)
    r, c = site
    img[r : r + T.shape[0], c : c + T.shape[1]] = T
    return img


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def test_digits_shapes_dtypes_range(digits):
    X_train, y_train, X_test, y_test = digits
    assert X_train.shape == (1347, 1, 8, 8) and X_test.shape == (450, 1, 8, 8)
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    assert X_train.dtype == X_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    for X in (X_train, X_test):
        assert X.min() == 0.0 and X.max() == 1.0
        # 0..16 divided by 16: every value is a multiple of 1/16
        assert np.array_equal(X * 16, np.round(X * 16))
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))


def test_digits_are_the_real_sklearn_digits(digits):
    from sklearn.datasets import load_digits

    raw, target = load_digits(return_X_y=True)
    X_train, y_train, X_test, y_test = digits
    ours = np.concatenate([X_train, X_test]).reshape(-1, 64) * 16
    ours = np.column_stack([ours, np.concatenate([y_train, y_test])])
    theirs = np.column_stack([raw, target])
    # same multiset of (image, label) rows: the split is a partition of the real data
    assert np.array_equal(np.unique(ours, axis=0), np.unique(theirs, axis=0))
    assert len(ours) == len(theirs)
    assert np.array_equal(np.sort(ours, axis=0), np.sort(theirs, axis=0))


def test_digits_split_is_stratified(digits):
    _, y_train, _, y_test = digits
    n_train, n_test = len(y_train), len(y_test)
    train_counts = np.bincount(y_train, minlength=10)
    test_counts = np.bincount(y_test, minlength=10)
    total = train_counts + test_counts
    # each class is split in the overall train:test ratio, to within one sample
    assert np.all(np.abs(test_counts - total * n_test / (n_train + n_test)) <= 1)
    assert np.all(np.abs(train_counts - total * n_train / (n_train + n_test)) <= 1)


def test_digits_deterministic_and_seeded(digits):
    again = load("digits")
    for a, b in zip(digits, again):
        assert np.array_equal(a, b)
    other = load("digits", seed=1)
    assert not np.array_equal(digits[1], other[1])


def test_digits_test_size_and_dtype():
    X_train, y_train, X_test, y_test = load("digits", test_size=0.5, dtype=np.float64)
    assert X_train.dtype == np.float64
    assert abs(len(y_test) - len(y_train)) <= 1
    _, _, X_test, _ = load("digits", test_size=100)
    assert len(X_test) == 100


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"test_size": 1.5}, ValueError, ["test_size", "1.5"]),
        ({"test_size": 3}, ValueError, ["test_size", "3"]),
        ({"test_size": "a"}, TypeError, ["test_size", "'a'"]),
        ({"seed": -1}, ValueError, ["seed", "-1"]),
        ({"seed": 1.5}, TypeError, ["seed", "1.5"]),
        ({"dtype": np.int32}, TypeError, ["dtype", "int32", "float32"]),
    ],
)
def test_digits_bad_arguments(kwargs, exc, words):
    with pytest.raises(exc) as info:
        load("digits", **kwargs)
    for word in words:
        assert word in str(info.value)


# --------------------------------------------------------------------------- load


def test_datasets_names():
    assert DATASETS == ("digits", "mnist1d", "cat")


def test_unknown_name_names_argument_value_and_choices():
    with pytest.raises(ValueError) as info:
        load("mnist")
    msg = str(info.value)
    assert "name" in msg and "'mnist'" in msg and "digits" in msg and "cat" in msg
    with pytest.raises(TypeError, match="name"):
        load(3)


def test_unknown_kwargs_are_named():
    with pytest.raises(TypeError) as info:
        load("cat", sise=8, n_trian=3)
    assert "sise" in str(info.value) and "n_trian" in str(info.value)
    with pytest.raises(TypeError, match="noise"):
        load("digits", noise=0.1)


# --------------------------------------------------------------------------- cat


def test_cat_shapes_and_dtypes():
    X_train, y_train, X_test, y_test = load("cat", size=(10, 12), n_train=30, n_test=20)
    assert X_train.shape == (30, 1, 10, 12) and X_test.shape == (20, 1, 10, 12)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    X64 = load("cat", n_train=5, n_test=5, dtype=np.float64)[0]
    assert X64.dtype == np.float64
    # the dtype changes only the rounding, not the draw
    assert np.allclose(X64, load("cat", n_train=5, n_test=5)[0], atol=1e-6)


def test_cat_info():
    info = cat_info()
    assert info == {"image_shape": (1, 16, 16), "template_shape": (4, 4),
                    "site_grid": (13, 13), "n_sites": 169}
    info = cat_info(size=(6, 9), template=np.ones((2, 3)))
    assert info["site_grid"] == (5, 7) and info["n_sites"] == 35


def test_cat_locate_noise_free_image_is_template_at_label():
    size, T = (7, 9), CAT_TEMPLATE
    grid = cat_info(size)["site_grid"]
    X_train, y_train, X_test, y_test = load("cat", size=size, noise=0, task="locate",
                                            n_train=60, n_test=20)
    for X, y in ((X_train, y_train), (X_test, y_test)):
        for img, label in zip(X, y):
            site = np.unravel_index(label, grid)
            assert np.array_equal(img[0], embed(T, size, site))


def test_cat_detect_noise_free():
    X, y, _, _ = load("cat", size=8, noise=0, n_train=40, n_test=1)
    assert y.sum() == 20  # exactly half
    for img, label in zip(X[:, 0], y):
        if label == 0:
            assert not img.any()
        else:
            scores = matched_filter(img[None, None], CAT_TEMPLATE)[0]
            site = np.unravel_index(np.argmax(scores), scores.shape)
            assert np.array_equal(img, embed(CAT_TEMPLATE, (8, 8), site))


def test_cat_locate_matched_filter_recovers_label():
    X_train, y_train, X_test, y_test = load("cat", task="locate", noise=0.2,
                                            n_train=300, n_test=100)
    for X, y in ((X_train, y_train), (X_test, y_test)):
        scores = matched_filter(X, CAT_TEMPLATE).reshape(len(X), -1)
        assert np.array_equal(np.argmax(scores, axis=1), y)


def test_cat_detect_matched_filter_recovers_label():
    X, y, _, _ = load("cat", noise=0.2, n_train=300, n_test=1)
    best = matched_filter(X, CAT_TEMPLATE).reshape(len(X), -1).max(axis=1)
    predicted = best > CAT_TEMPLATE.sum() / 2
    assert np.array_equal(predicted, y.astype(bool))


def test_cat_detect_labels_balanced():
    for n in (100, 101):
        _, y_train, _, y_test = load("cat", n_train=n, n_test=n, size=6)
        assert set(np.unique(y_train)) == {0, 1}
        assert y_train.sum() == n // 2 and y_test.sum() == n // 2


def test_cat_locate_classes_cover_sites():
    n_sites = cat_info(size=8)["n_sites"]  # 25
    _, y_train, _, y_test = load("cat", size=8, task="locate", n_train=103, n_test=50)
    counts = np.bincount(y_train, minlength=n_sites)
    assert len(counts) == n_sites and counts.min() == 4 and counts.max() == 5
    assert y_test.min() >= 0 and y_test.max() < n_sites
    assert np.bincount(y_test, minlength=n_sites).min() >= 2
    # not in site order: the sites are shuffled
    assert not np.array_equal(y_train, np.arange(103) % n_sites)


def test_cat_noise_statistics():
    X, y, _, _ = load("cat", size=12, noise=0.5, n_train=200, n_test=1, dtype=np.float64)
    background = X[y == 0]
    assert abs(background.mean()) < 0.02
    assert abs(background.std() - 0.5) < 0.02


def test_cat_deterministic_and_independent_streams():
    a = load("cat", n_train=20, n_test=10, seed=3)
    b = load("cat", n_train=20, n_test=10, seed=3)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    c = load("cat", n_train=20, n_test=10, seed=4)
    assert not np.array_equal(a[0], c[0])
    # the test set does not depend on how many training images were drawn
    d = load("cat", n_train=50, n_test=10, seed=3)
    assert np.array_equal(a[2], d[2]) and np.array_equal(a[3], d[3])
    # and train and test are different draws
    assert not np.array_equal(a[0][:10], a[2])


def test_cat_custom_template():
    T = np.array([[1, 2, 1], [0, 1, 0]])
    X, y, _, _ = load("cat", size=(5, 6), template=T, task="locate", noise=0,
                      n_train=12, n_test=1)
    grid = cat_info((5, 6), T)["site_grid"]
    assert grid == (4, 4)
    for img, label in zip(X[:, 0], y):
        assert np.array_equal(img, embed(T, (5, 6), np.unravel_index(label, grid)))


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"task": "find"}, ValueError, ["task", "'find'", "locate"]),
        ({"size": 3}, ValueError, ["template", "(4, 4)", "(3, 3)"]),
        ({"size": (8, 8, 8)}, ValueError, ["size"]),
        ({"size": 0}, ValueError, ["size", "0"]),
        ({"size": 8.0}, TypeError, ["size", "8.0"]),
        ({"noise": -0.1}, ValueError, ["noise", "-0.1"]),
        ({"noise": float("nan")}, ValueError, ["noise", "nan"]),
        ({"n_train": -1}, ValueError, ["n_train", "-1"]),
        ({"n_test": 2.5}, TypeError, ["n_test", "2.5"]),
        ({"template": np.zeros((2, 2))}, ValueError, ["template", "zeros"]),
        ({"template": np.ones(3)}, ValueError, ["template", "(3,)"]),
        ({"dtype": "float16"}, TypeError, ["dtype", "float16"]),
        ({"seed": None}, TypeError, ["seed", "None"]),
    ],
)
def test_cat_bad_arguments(kwargs, exc, words):
    with pytest.raises(exc) as info:
        load("cat", **{"n_train": 2, "n_test": 2, **kwargs})
    for word in words:
        assert word in str(info.value)
