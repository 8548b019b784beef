"""Pooling layers (no parameters): max, average, global average, spatial pyramid.

Every pooling is a set of windows, [r0, r1) x [c0, c1) per output site, clipped to the input
(see kernels/pool.py). Fixed windows follow PyTorch: stride defaults to the window size, zero
padding of at most half the window on each side, padding never wins a max, and the average
divides by the whole window (``count_include_pad=True``) or only by the sites inside the input.
Spatial pyramid pooling pools each channel into l x l adaptive bins (PyTorch's
floor(i S / l) .. ceil((i + 1) S / l)) for every level l and concatenates the flattened levels,
so any input size gives (N, C sum_l l^d).

Parameter-free layers take ``dtype=None``: float32 input stays float32, anything else is float64.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_int, as_int_tuple, choice, sample_shape, spatial_shape
from .._io import jsonable
from ..kernels.pool import (
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
)
from ..physics.formulas import as4d, make_geometry, normalize_padding
from .base import Layer


def _fixed_axis(size, kernel, stride, pad_start, count):
    start = np.arange(count, dtype=np.int64) * stride - pad_start
    return np.maximum(start, 0), np.minimum(start + kernel, size)


def _adaptive_axis(size, bins):
    i = np.arange(bins, dtype=np.int64)
    return (i * size) // bins, -((-(i + 1) * size) // bins)


def _windows_2d(rows, cols):
    """Kernel windows for a 2D layout; a 1D layer passes rows = ([0], [1])."""
    return rows[0], rows[1], cols[0], cols[1]


def _check_half_window(pads, kernel, layer):
    for axis, (p0, p1) in enumerate(pads):
        if max(p0, p1) > kernel[axis] // 2:
            raise ValueError(f"padding: {layer} expects at most half the window ({kernel[axis] // 2}) on each side "
                             f"of axis {axis}, got {pads}")


class _Pool(Layer):
    nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dtype=None):
        super().__init__(dtype)
        nd = self.nd
        self.kernel_size = as_int_tuple(kernel_size, nd, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else as_int_tuple(stride, nd, "stride", 1)
        if padding == "circular":
            raise ValueError(f"padding: {type(self).__name__} pads with zeros (or -inf); 'circular' is a "
                             f"coupling layer's boundary, got {padding!r}")
        pads = normalize_padding(padding, (max(self.kernel_size),) * nd, self.kernel_size, self.stride, (1,) * nd)
        if not isinstance(padding, str):
            _check_half_window(pads, self.kernel_size, type(self).__name__)
        self.padding = padding if isinstance(padding, str) else jsonable(padding)
        self._cache = {}

    _input_ndims = property(lambda self: (self.nd + 2,))

    def _geometry(self, sites):
        sites = tuple(sites)
        hit = self._cache.get(sites)
        if hit is None:
            geo = make_geometry(sites, self.kernel_size, self.stride, self.padding, 1)
            _check_half_window(geo.padding, self.kernel_size, type(self).__name__)
            axes = [_fixed_axis(sites[a], self.kernel_size[a], self.stride[a], geo.padding[a][0], geo.out_sites[a])
                    for a in range(self.nd)]
            if self.nd == 1:
                axes.insert(0, (np.zeros(1, np.int64), np.ones(1, np.int64)))
            hit = (geo, _windows_2d(*axes))
            self._cache[sites] = hit
        return hit

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = spatial_shape(input_shape, self.nd, None, type(self).__name__)
        return (shape[0],) + self._geometry(shape[1:])[0].out_sites

    def _config(self) -> dict:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": self.padding,
                "dtype": self._dtype_config()}


class _MaxPool(_Pool):
    def _forward(self, x):
        geo, windows = self._geometry(x.shape[2:])
        x4 = as4d(x)
        y4, arg = max_pool_forward(x4, *windows)
        return y4.reshape(x.shape[:2] + geo.out_sites), (arg, x4.shape, x.shape)

    def _backward(self, dy, saved):
        arg, shape4, x_shape = saved
        dx4 = max_pool_backward(dy.reshape(arg.shape), arg, shape4[2], shape4[3])
        return dx4.reshape(x_shape), {}

    def config(self) -> dict:
        return self._config()


class _AvgPool(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True, dtype=None):
        super().__init__(kernel_size, stride, padding, dtype)
        if not isinstance(count_include_pad, (bool, np.bool_)):
            raise TypeError(f"count_include_pad: expected True or False, got {count_include_pad!r}")
        self.count_include_pad = bool(count_include_pad)

    def _divisor(self, windows):
        r0, r1, c0, c1 = windows
        if self.count_include_pad:
            return np.full((r0.size, c0.size), float(math.prod(self.kernel_size)))
        return ((r1 - r0)[:, None] * (c1 - c0)[None, :]).astype(np.float64)

    def _forward(self, x):
        geo, windows = self._geometry(x.shape[2:])
        divisor = self._divisor(windows)
        x4 = as4d(x)
        y4 = avg_pool_forward(x4, *windows, divisor)
        return y4.reshape(x.shape[:2] + geo.out_sites), (windows, divisor, x4.shape, x.shape)

    def _backward(self, dy, saved):
        windows, divisor, shape4, x_shape = saved
        n, c = shape4[:2]
        dy4 = dy.reshape(n, c, windows[0].size, windows[2].size)
        dx4 = avg_pool_backward(dy4, *windows, divisor, shape4[2], shape4[3])
        return dx4.reshape(x_shape), {}

    def config(self) -> dict:
        return {**self._config(), "count_include_pad": self.count_include_pad}


class MaxPool1d(_MaxPool):
    """Max over windows of a chain: (N, C, L) -> (N, C, L_out); stride defaults to kernel_size."""

    nd = 1


class MaxPool2d(_MaxPool):
    """Max over windows of a grid: (N, C, H, W) -> (N, C, H_out, W_out); stride defaults to kernel_size."""

    nd = 2


class AvgPool1d(_AvgPool):
    """Mean over windows of a chain: (N, C, L) -> (N, C, L_out); stride defaults to kernel_size."""

    nd = 1


class AvgPool2d(_AvgPool):
    """Mean over windows of a grid: (N, C, H, W) -> (N, C, H_out, W_out); stride defaults to kernel_size."""

    nd = 2


class GlobalAvgPool(Layer):
    """Mean over all sites of each channel: (N, C, *sites) -> (N, C), for 1 or 2 (or more) spatial axes."""

    def __init__(self, dtype=None):
        super().__init__(dtype)

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = sample_shape(input_shape)
        if len(shape) < 2:
            raise ValueError(f"input_shape: GlobalAvgPool expected (C, *sites) with at least one spatial axis, "
                             f"got {tuple(input_shape)!r}")
        return (shape[0],)

    def _forward(self, x):
        n, c = x.shape[:2]
        sites = math.prod(x.shape[2:])
        windows = (np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, np.int64), np.full(1, sites, np.int64))
        divisor = np.full((1, 1), float(sites))
        y4 = avg_pool_forward(x.reshape(n, c, 1, sites), *windows, divisor)
        return y4.reshape(n, c), (windows, divisor, x.shape)

    def _backward(self, dy, saved):
        windows, divisor, x_shape = saved
        n, c = x_shape[:2]
        sites = math.prod(x_shape[2:])
        dx4 = avg_pool_backward(dy.reshape(n, c, 1, 1), *windows, divisor, 1, sites)
        return dx4.reshape(x_shape), {}

    def config(self) -> dict:
        return {"dtype": self._dtype_config()}


class SpatialPyramidPool(Layer):
    """Spatial pyramid pooling: for each level l, max (or mean) over l x l adaptive bins (l bins in 1D),
    flattened and concatenated level after level: (N, C, *sites) -> (N, C sum_l l^d) for any sites."""

    _input_ndims = (3, 4)

    def __init__(self, levels=(1, 2, 4), mode="max", dtype=None):
        super().__init__(dtype)
        if not isinstance(levels, (tuple, list)) or not levels:
            raise ValueError(f"levels: expected a non-empty sequence of ints >= 1, got {levels!r}")
        self.levels = tuple(as_int(level, "levels", 1) for level in levels)
        self.mode = choice(mode, "mode", ("max", "avg"))

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = sample_shape(input_shape)
        if len(shape) not in (2, 3):
            raise ValueError("input_shape: SpatialPyramidPool expected (C, L) or (C, H, W), got "
                             f"{tuple(input_shape)!r}")
        nd = len(shape) - 1
        return (shape[0] * sum(level ** nd for level in self.levels),)

    def _level_windows(self, sites, level):
        if len(sites) == 1:
            return (np.zeros(1, np.int64), np.ones(1, np.int64)) + _adaptive_axis(sites[0], level)
        return _adaptive_axis(sites[0], level) + _adaptive_axis(sites[1], level)

    def _forward(self, x):
        n, c = x.shape[:2]
        x4 = as4d(x)
        parts, saved = [], []
        for level in self.levels:
            windows = self._level_windows(x.shape[2:], level)
            if self.mode == "max":
                y4, arg = max_pool_forward(x4, *windows)
                saved.append((windows, arg))
            else:
                divisor = ((windows[1] - windows[0])[:, None] * (windows[3] - windows[2])[None, :]).astype(np.float64)
                y4 = avg_pool_forward(x4, *windows, divisor)
                saved.append((windows, divisor))
            parts.append(y4.reshape(n, -1))
        return np.concatenate(parts, axis=1), (saved, x4.shape, x.shape)

    def _backward(self, dy, saved):
        levels, shape4, x_shape = saved
        n, c, height, width = shape4
        dx4 = np.zeros(shape4, dtype=dy.dtype)
        start = 0
        for windows, extra in levels:
            bins = (windows[0].size, windows[2].size)
            size = c * bins[0] * bins[1]
            part = np.ascontiguousarray(dy[:, start:start + size]).reshape(n, c, *bins)
            if self.mode == "max":
                dx4 += max_pool_backward(part, extra, height, width)
            else:
                dx4 += avg_pool_backward(part, *windows, extra, height, width)
            start += size
        return dx4.reshape(x_shape), {}

    def config(self) -> dict:
        return {"levels": list(self.levels), "mode": self.mode, "dtype": self._dtype_config()}
