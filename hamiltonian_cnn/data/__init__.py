"""Datasets (real and synthetic) and the transforms that probe locality.

    X_train, y_train, X_test, y_test = load("digits")          # real 8x8 digits
    X_train, y_train, X_test, y_test = load("cat", task="locate")  # the planted-pattern toy
    X, y = load_idx("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    shift(X, dx=1), shuffle_sites(X, seed=0)

Every X is a numpy array shaped (N, C, *sites); every y is int64.
"""

from .datasets import CAT_TEMPLATE, DATASETS, cat_info, load, load_cat, load_digits
from .idx import load_idx, read_idx, save_idx
from .transforms import shift, shuffle_sites, site_permutation

__all__ = [
    "CAT_TEMPLATE",
    "DATASETS",
    "cat_info",
    "load",
    "load_cat",
    "load_digits",
    "load_idx",
    "read_idx",
    "save_idx",
    "shift",
    "shuffle_sites",
    "site_permutation",
]
