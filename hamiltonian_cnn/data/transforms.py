"""Transforms of image batches that probe what a coupling assumes about space.

``place_on_canvas`` puts small images at random positions of a larger canvas (translated
digits: where a shared coupling's invariance can show). ``shift`` translates every image by whole
pixels (a shared coupling commutes with it, up to the edges). ``shuffle_sites`` applies one fixed
permutation to the pixel positions: it keeps every pixel value but destroys locality, the control
under which a local or shared coupling loses its advantage over a full one.

Inputs are NCHW ``(N, C, H, W)`` or NCL ``(N, C, L)`` numpy arrays; the input is never modified.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_int, as_seed, check_finite, describe

__all__ = ["canvas_positions", "place_on_canvas", "shift", "shuffle_sites", "site_permutation"]


def _check_images(X, name: str = "X") -> np.ndarray:
    if not isinstance(X, np.ndarray):
        raise TypeError(
            f"{name}: expected a numpy array (N, C, H, W) or (N, C, L), got {describe(X)}"
        )
    if X.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real float or integer array, got dtype {X.dtype}")
    if X.ndim not in (3, 4):
        raise ValueError(
            f"{name}: expected a 4-D array (N, C, H, W) or 3-D (N, C, L), got shape {X.shape}"
        )
    if 0 in X.shape:
        raise ValueError(f"{name}: expected at least one sample, one channel and one site per axis, "
                         f"got shape {X.shape}")
    check_finite(X, name)
    return X


def _slices(step: int, n: int):
    """(destination, source) slices that move content by ``step`` along an axis of length n."""
    if abs(step) >= n:
        return None
    if step >= 0:
        return slice(step, n), slice(0, n - step)
    return slice(0, n + step), slice(-step, n)


def shift(X: np.ndarray, dx: int, dy: int = 0) -> np.ndarray:
    """Translate images by whole pixels, filling with zeros.

    ``dx`` moves content along the last axis (columns; positive = right), ``dy`` along the
    second-to-last (rows; positive = down): ``out[..., i, j] = X[..., i - dy, j - dx]`` where
    that index is inside the image, else 0. For 1-D inputs ``(N, C, L)`` only ``dx`` is
    allowed. A shift of at least the image size gives all zeros. Returns a new array of the
    same shape and dtype.
    """
    X = _check_images(X)
    dx = as_int(dx, "dx")
    dy = as_int(dy, "dy")
    if X.ndim == 3 and dy != 0:
        raise ValueError(
            f"dy: 1-D inputs (N, C, L) can only be shifted along L with dx; expected dy=0, got {dy}"
        )
    out = np.zeros_like(X)
    steps = (dx,) if X.ndim == 3 else (dy, dx)
    pairs = [_slices(s, n) for s, n in zip(steps, X.shape[2:])]
    if any(p is None for p in pairs):
        return out
    dst = (Ellipsis, *(p[0] for p in pairs))
    src = (Ellipsis, *(p[1] for p in pairs))
    out[dst] = X[src]
    return out


def site_permutation(sites_shape, seed: int) -> np.ndarray:
    """The permutation of flattened pixel positions used by ``shuffle_sites``.

    ``sites_shape`` is the spatial shape, e.g. ``(H, W)`` or ``(L,)``. The permutation is
    ``np.random.default_rng(seed).permutation(prod(sites_shape))``, so it is fixed by the seed
    and the number of sites. Invert it with ``np.argsort(perm)``.
    """
    if isinstance(sites_shape, (int, np.integer)) and not isinstance(sites_shape, bool):
        sites_shape = (sites_shape,)
    if not isinstance(sites_shape, (tuple, list)) or len(sites_shape) == 0:
        raise TypeError(
            f"sites_shape: expected a tuple of positive ints such as (H, W), got {describe(sites_shape)}"
        )
    dims = tuple(as_int(d, "sites_shape", minimum=1) for d in sites_shape)
    seed = as_seed(seed)
    return np.random.default_rng(seed).permutation(math.prod(dims))


def shuffle_sites(X: np.ndarray, seed: int, inverse: bool = False) -> np.ndarray:
    """Apply one fixed permutation of pixel positions to every sample and channel.

    With ``perm = site_permutation(X.shape[2:], seed)`` and sites flattened in C order,
    ``out[n, c].flat[k] = X[n, c].flat[perm[k]]``. ``inverse=True`` applies the inverse
    permutation, so ``shuffle_sites(shuffle_sites(X, s), s, inverse=True)`` equals ``X``.
    Pixel values are kept, locality is destroyed. Returns a new array.
    """
    X = _check_images(X)
    if not isinstance(inverse, (bool, np.bool_)):
        raise TypeError(f"inverse: expected a bool, got {describe(inverse)}")
    perm = site_permutation(X.shape[2:], seed)
    flat = X.reshape(X.shape[0], X.shape[1], -1)
    if inverse:
        out = np.empty_like(flat)
        out[..., perm] = flat
    else:
        out = flat[..., perm]
    return out.reshape(X.shape)


def canvas_positions(image_shape, canvas, columns=None) -> np.ndarray:
    """Every top-left corner (row, col) at which an ``image_shape`` (h, w) image fits on an
    ``canvas`` x ``canvas`` canvas, as an (n, 2) int array; ``columns=(lo, hi)`` keeps the corners
    with lo <= col < hi (e.g. train on the left half, test on the right)."""
    h, w = (as_int(s, "image_shape", minimum=1) for s in image_shape)
    S = as_int(canvas, "canvas", minimum=max(h, w))
    rows, cols = np.meshgrid(np.arange(S - h + 1), np.arange(S - w + 1), indexing="ij")
    corners = np.stack([rows.ravel(), cols.ravel()], axis=1)
    if columns is not None:
        if not isinstance(columns, (tuple, list)) or len(columns) != 2:
            raise TypeError(f"columns: expected a pair (lo, hi), got {describe(columns)}")
        lo, hi = (as_int(c, "columns") for c in columns)
        corners = corners[(corners[:, 1] >= lo) & (corners[:, 1] < hi)]
        if len(corners) == 0:
            raise ValueError(f"columns: no corner column in [{lo}, {hi}) fits; expected a range inside "
                             f"[0, {S - w + 1})")
    return corners


def place_on_canvas(X, canvas, positions=None, rng=None) -> np.ndarray:
    """Put each image of X (N, C, h, w) at a random position of a zero canvas (N, C, S, S).

    ``positions`` is an (n, 2) array of allowed top-left corners (default: every corner where
    the image fits, ``canvas_positions``); each image draws one uniformly with ``rng`` (a
    Generator or a seed; default seed 0). The input is never modified.
    """
    X = _check_images(X)
    if X.ndim != 4:
        raise ValueError(f"X: expected 2-D images (N, C, h, w), got shape {X.shape}")
    h, w = X.shape[2:]
    S = as_int(canvas, "canvas", minimum=max(h, w))
    if positions is None:
        positions = canvas_positions((h, w), S)
    positions = np.asarray(positions)
    if positions.ndim != 2 or positions.shape[1] != 2 or len(positions) == 0 or positions.dtype.kind not in "iu":
        raise ValueError(f"positions: expected an (n, 2) int array of top-left corners, got {describe(positions)}")
    if positions.min() < 0 or positions[:, 0].max() > S - h or positions[:, 1].max() > S - w:
        raise ValueError(f"positions: every corner (r, c) must satisfy 0 <= r <= {S - h} and 0 <= c <= {S - w} "
                         f"for {h}x{w} images on a {S}x{S} canvas")
    if rng is None or isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(as_seed(0 if rng is None else rng))
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy Generator, an int seed or None, got {describe(rng)}")
    corners = positions[rng.integers(len(positions), size=len(X))]
    out = np.zeros(X.shape[:2] + (S, S), dtype=X.dtype)
    rows = corners[:, 0, None, None] + np.arange(h)[None, :, None]
    cols = corners[:, 1, None, None] + np.arange(w)[None, None, :]
    n = np.arange(len(X))[:, None, None]
    for c in range(X.shape[1]):
        out[n, c, rows, cols] = X[:, c]
    return out
