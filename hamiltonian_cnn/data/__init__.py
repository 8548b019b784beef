"""Datasets (real and synthetic) and the transforms that probe locality.

    X_train, y_train, X_test, y_test = load("digits")          # real 8x8 digits
    X_train, y_train, X_test, y_test = load("digits", canvas=16)  # at random positions of 16x16
    X_train, y_train, X_test, y_test = load("mnist1d")         # (N, 1, 40), Greydanus & Kobak
    X_train, y_train, X_test, y_test = load("cat", task="locate")  # the planted-pattern toy
    X, y = load_idx("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    shift(X, dx=1), shuffle_sites(X, seed=0)

Every X is a numpy array shaped (N, C, *sites); every y is int64.
"""

from .datasets import CAT_TEMPLATE, DATASETS, bars_and_stripes, cat_info, load, load_cat, load_digits, load_mnist1d
from .idx import load_idx, read_idx, save_idx
from .transforms import canvas_positions, place_on_canvas, shift, shuffle_sites, site_permutation

__all__ = [
    "CAT_TEMPLATE",
    "bars_and_stripes",
    "DATASETS",
    "cat_info",
    "load",
    "load_cat",
    "load_digits",
    "load_mnist1d",
    "canvas_positions",
    "place_on_canvas",
    "load_idx",
    "read_idx",
    "save_idx",
    "shift",
    "shuffle_sites",
    "site_permutation",
]
