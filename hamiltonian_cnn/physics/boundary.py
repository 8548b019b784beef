"""Periodic boundaries: the lattice closes on itself (padding="circular").

With a periodic boundary, a window that runs off one edge re-enters at the opposite edge: the
coupling reads input site i as i mod n, as on the torus of a physics lattice. The padding amounts
are those of "same" (a stride-1 layer keeps its sites), but the padded sites hold copies of the
opposite edge instead of zeros. Every site then sees a full window, so a shared coupling commutes
with circular shifts exactly: h(T x) = T h(x) for T a shift by a multiple of the stride.

The kernels know only zero padding. A circular coupling runs them on the input wrapped by its
padding (``wrap``) with no padding left (``interior``), and folds the gradient with respect to the
wrapped input back onto the lattice (``fold``, the adjoint of ``wrap``: a padded site's gradient is
added to the site it copies).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .formulas import Geometry


def wrap(x: np.ndarray, geo: Geometry) -> np.ndarray:
    """x (N, C, *sites) padded periodically by ``geo.padding``: (N, C, *padded sites)."""
    return np.pad(x, ((0, 0), (0, 0)) + tuple(geo.padding), mode="wrap")


def interior(geo: Geometry) -> Geometry:
    """The geometry the kernels run on a wrapped input: the padded sites, no padding left."""
    padded = tuple(n + p0 + p1 for n, (p0, p1) in zip(geo.in_sites, geo.padding))
    return dataclasses.replace(geo, in_sites=padded, padding=((0, 0),) * geo.ndim, circular=False)


def fold(g: np.ndarray, geo: Geometry) -> np.ndarray:
    """Adjoint of ``wrap``: g (N, C, *padded sites) -> (N, C, *sites), each padded site's entry
    added to the lattice site it is a copy of."""
    for axis, (n, (p0, _)) in enumerate(zip(geo.in_sites, geo.padding)):
        g = _fold_axis(g, 2 + axis, n, p0)
    return g


def _fold_axis(g: np.ndarray, axis: int, n: int, p0: int) -> np.ndarray:
    """Sum g along ``axis`` onto n sites, padded position j -> site (j - p0) mod n, by runs of
    consecutive positions that map to consecutive sites."""
    g = np.moveaxis(g, axis, -1)
    out = np.zeros(g.shape[:-1] + (n,), dtype=g.dtype)
    j, length = 0, g.shape[-1]
    while j < length:
        site = (j - p0) % n
        run = min(n - site, length - j)
        out[..., site:site + run] += g[..., j:j + run]
        j += run
    return np.moveaxis(out, -1, axis)
