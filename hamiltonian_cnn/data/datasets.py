"""Named datasets: ``load(name, **kwargs) -> X_train, y_train, X_test, y_test``.

X is shaped ``(N, C, *sites)`` (NCHW), float32 by default; y is int64.

``"digits"``
    The real 8x8 handwritten digits bundled with scikit-learn (1797 images, 10 classes, no
    download), scaled from 0..16 to [0, 1], with a fixed stratified train/test split.
``"mnist1d"``
    MNIST-1D (Greydanus & Kobak 2020): ten 1D templates translated, sheared, scaled and noised,
    generated offline by the ``mnist1d`` package from its standard arguments (seed 42):
    4000 training and 1000 test sequences of 40 sites, as (N, 1, 40).
``"cat"``
    The textbook toy "is there a cat, and where?": a small pattern (``CAT_TEMPLATE``) planted
    with amplitude 1 at a random site of an image of Gaussian noise. ``task="detect"`` asks
    whether it is there (y in {0, 1}); ``task="locate"`` asks where (y is the flat index of the
    planted top-left corner over the grid of valid sites, see ``cat_info``).
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np

from .._checks import as_int, as_seed, check_dtype, describe

__all__ = ["CAT_TEMPLATE", "DATASETS", "cat_info", "load", "load_cat", "load_digits", "load_mnist1d"]

#: The default "cat": two ears, a head with two eyes, a chin (4x4, binary).
CAT_TEMPLATE = np.array(
    [
        [1, 0, 0, 1],
        [1, 1, 1, 1],
        [1, 0, 0, 1],
        [0, 1, 1, 0],
    ],
    dtype=np.float64,
)
CAT_TEMPLATE.setflags(write=False)


def load_digits(*, test_size=0.25, seed=0, dtype=np.float32, canvas=None, positions=None):
    """The 8x8 handwritten digits, split into train and test, stratified by class.

    ``test_size`` is a fraction in (0, 1) or a number of test images; ``seed`` fixes the
    split (same seed, identical arrays). X is (N, 1, 8, 8) in [0, 1], y int64 in 0..9.
    ``canvas=S`` places every digit at a random position of an S x S canvas of zeros
    (``place_on_canvas``; ``positions`` restricts the top-left corners, the same for train and
    test; place the two splits yourself to train on some positions and test on others).
    """
    dt = check_dtype(dtype)
    seed = as_seed(seed)
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size: expected a fraction in (0, 1) or an int, got {describe(test_size)}")
    if isinstance(test_size, numbers.Integral):
        test_size = int(test_size)
    elif not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size: expected a fraction in (0, 1) or an int, got {test_size!r}")
    else:
        test_size = float(test_size)
    try:
        from sklearn.datasets import load_digits as _sk_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError(
            "load('digits') needs scikit-learn: pip install scikit-learn"
        ) from exc

    raw, target = _sk_digits(return_X_y=True)
    X = (raw.reshape(-1, 1, 8, 8) / 16.0).astype(dt)
    y = target.astype(np.int64)
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, random_state=seed, stratify=y
        )
    except ValueError as exc:
        raise ValueError(
            f"test_size: {test_size!r} does not give a stratified split of {len(y)} images "
            f"in 10 classes ({exc})"
        ) from None
    if canvas is not None:
        from .transforms import place_on_canvas

        train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        X_train = place_on_canvas(X_train, canvas, positions, train_rng)
        X_test = place_on_canvas(X_test, canvas, positions, test_rng)
    elif positions is not None:
        raise ValueError(f"positions: only meaningful with canvas=S, got positions={describe(positions)} and "
                         "canvas=None")
    return (np.ascontiguousarray(X_train), y_train, np.ascontiguousarray(X_test), y_test)


def load_mnist1d(*, shuffle=False, dtype=np.float32):
    """MNIST-1D (Greydanus & Kobak 2020) with the package's standard arguments and split.

    X is (N, 1, 40), standardised by the generator (mean 0, std 1 over the whole set); 4000
    training and 1000 test sequences. ``shuffle=True`` gives the fixed-permutation variant
    (``shuffle_seq``): one permutation of the 40 sites for every sequence, the published
    control under which a CNN falls from 94 % to 56 % and an MLP stays at 68 %.
    Generated from the ``mnist1d`` package's seed, nothing is downloaded; the generator seeds
    numpy's global random state, which is saved and restored around it.
    """
    dt = check_dtype(dtype)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle: expected True or False, got {describe(shuffle)}")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - mnist1d is a dependency
        raise ImportError("load('mnist1d') needs the mnist1d package: pip install mnist1d") from exc
    key = bool(shuffle)
    if key not in _MNIST1D:
        args = get_dataset_args()
        args.shuffle_seq = key
        # mnist1d draws from numpy's global generator: save it and put it back untouched
        state = np.random.get_state()  # noqa: NPY002
        try:
            data = make_dataset(args)
        finally:
            np.random.set_state(state)  # noqa: NPY002
        _MNIST1D[key] = tuple(np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test"))
    x, y, x_test, y_test = _MNIST1D[key]
    return (np.array(x[:, None, :], dtype=dt, order="C", copy=True), y.astype(np.int64),
            np.array(x_test[:, None, :], dtype=dt, order="C", copy=True), y_test.astype(np.int64))


_MNIST1D: dict = {}  # generated once per process (about 2 s), copied out on every load


def _cat_geometry(size, template):
    """Validated ((H, W), template array, (rows, cols) of valid sites)."""
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"size: expected an int or a pair (H, W), got {describe(size)}")
        H, W = (as_int(s, "size", minimum=1) for s in size)
    else:
        H = W = as_int(size, "size", minimum=1)
    if template is None:
        T = CAT_TEMPLATE
    else:
        try:
            T = np.asarray(template)
        except (ValueError, TypeError) as exc:  # ragged nested lists
            raise ValueError(f"template: expected a real 2-D array, got {describe(template)} ({exc})") from None
        if T.dtype.kind not in "fiub":
            raise TypeError(f"template: expected a real 2-D array, got dtype {T.dtype}")
        T = T.astype(np.float64)
        if T.ndim != 2 or T.size == 0:
            raise ValueError(f"template: expected a non-empty 2-D array (h, w), got shape {T.shape}")
        if not np.all(np.isfinite(T)):
            raise ValueError("template: contains NaN or Inf; expected finite numbers")
        if not np.any(T):
            raise ValueError("template: is all zeros; expected a pattern with a nonzero pixel")
    h, w = T.shape
    if h > H or w > W:
        raise ValueError(
            f"template: shape {T.shape} does not fit in images of size {(H, W)}; "
            f"expected h <= H and w <= W"
        )
    return (H, W), T, (H - h + 1, W - w + 1)


def cat_info(size=16, template=None) -> dict:
    """Geometry of ``load("cat", size=size, template=template)``.

    Returns a dict with ``image_shape`` (1, H, W), ``template_shape`` (h, w), ``site_grid``
    (H - h + 1, W - w + 1) and ``n_sites`` (the number of classes for ``task="locate"``).
    A locate label y is the planted top-left corner ``np.unravel_index(y, site_grid)``.
    """
    (H, W), T, grid = _cat_geometry(size, template)
    return {
        "image_shape": (1, H, W),
        "template_shape": T.shape,
        "site_grid": grid,
        "n_sites": grid[0] * grid[1],
    }


def _draw_cats(rng, n, shape, T, grid, task, noise):
    """n noisy images (float64) and their labels."""
    n_sites = grid[0] * grid[1]
    if task == "detect":
        y = rng.permutation(np.arange(n) < n // 2).astype(np.int64)  # exactly n // 2 cats
        sites = rng.integers(n_sites, size=n)
        planted = np.flatnonzero(y)
    else:
        sites = rng.permutation(np.arange(n) % n_sites)  # every site equally often
        y = sites.astype(np.int64)
        planted = np.arange(n)
    X = noise * rng.standard_normal((n, 1, *shape))
    r, c = np.unravel_index(sites[planted], grid)
    h, w = T.shape
    rows = r[:, None, None] + np.arange(h)[None, :, None]
    cols = c[:, None, None] + np.arange(w)[None, None, :]
    X[planted[:, None, None], 0, rows, cols] += T
    return X, y


def load_cat(*, size=16, n_train=1000, n_test=500, noise=0.3, template=None,
             task="detect", seed=0, dtype=np.float32):
    """The "is there a cat, and where?" toy, as (N, 1, H, W) images.

    ``size`` is an int or (H, W); ``noise`` the std of the Gaussian pixel noise; ``template``
    a 2-D pattern (default ``CAT_TEMPLATE``) added with amplitude 1 with its top-left corner at
    a site where it fits. ``task="detect"``: exactly half (n // 2) of the images hold the
    pattern, at a uniformly random site; y in {0, 1}. ``task="locate"``: every image holds it,
    each site used equally often (up to one) in random order; y is the flat site index, so
    there are ``cat_info(size, template)["n_sites"]`` classes. Train and test come from
    independent random streams spawned from ``seed``.
    """
    dt = check_dtype(dtype)
    seed = as_seed(seed)
    n_train = as_int(n_train, "n_train", minimum=0)
    n_test = as_int(n_test, "n_test", minimum=0)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real):
        raise TypeError(f"noise: expected a real number >= 0, got {describe(noise)}")
    noise = float(noise)
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise: expected a finite number >= 0, got {noise!r}")
    if task not in ("detect", "locate"):
        raise ValueError(f"task: expected 'detect' or 'locate', got {describe(task)}")
    shape, T, grid = _cat_geometry(size, template)

    train_ss, test_ss = np.random.SeedSequence(seed).spawn(2)
    out = []
    for ss, n in ((train_ss, n_train), (test_ss, n_test)):
        X, y = _draw_cats(np.random.default_rng(ss), n, shape, T, grid, task, noise)
        out += [X.astype(dt), y]
    return tuple(out)


def bars_and_stripes(size=4, dtype=np.float32):
    """Every bars-and-stripes pattern of a size x size grid (MacKay 2003): each row all on or all off
    (the bars), or each column (the stripes); 2 ** (size + 1) - 2 distinct patterns, shaped
    (N, 1, size, size). The textbook data set whose exact log-likelihood an RBM can be scored on."""
    size = as_int(size, "size", 1, 6)
    lines = ((np.arange(2**size)[:, None] >> np.arange(size)[None, :]) & 1).astype(dtype)  # (2^size, size)
    bars = np.repeat(lines[:, :, None], size, axis=2)
    stripes = np.repeat(lines[:, None, :], size, axis=1)
    patterns = np.unique(np.concatenate([bars, stripes]).reshape(-1, size * size), axis=0)
    return patterns.reshape(-1, 1, size, size)


_LOADERS = {"digits": load_digits, "mnist1d": load_mnist1d, "cat": load_cat}

#: Names accepted by ``load``.
DATASETS = tuple(_LOADERS)


def load(name, **kwargs):
    """Load a named dataset: ``X_train, y_train, X_test, y_test = load(name, **kwargs)``.

    ``name`` is one of ``DATASETS``; keyword arguments go to ``load_digits``, ``load_mnist1d``
    or ``load_cat``.
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected one of {list(DATASETS)}, got {describe(name)}")
    if name not in _LOADERS:
        raise ValueError(f"name: unknown dataset {name!r}; expected one of {list(DATASETS)}")
    loader = _LOADERS[name]
    valid = list(inspect.signature(loader).parameters)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise TypeError(
            f"load({name!r}): unexpected keyword argument(s) {unknown}; expected some of {valid}"
        )
    return loader(**kwargs)
