"""Slow, obvious numpy/scipy implementations of every kernel (stumpy's tests/naive.py idea).

Written straight from the definitions, in float64, with no cleverness: pad the input, then loop
over window offsets (a, b) or output sites (I, J) and let numpy slicing and einsum do the rest.
The tests compare every Numba kernel with these. Everything is 2D; 1D is H = 1 (``as2d``).

Padding is one (start, end) pair per axis; ``stride`` and ``dilation`` are per-axis pairs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

ACTIVATIONS = ("sigmoid", "tanh", "relu", "softplus", None)


# ---------------------------------------------------------------- activations


def activate(h, act):
    """y = g(h)."""
    h = np.asarray(h, dtype=np.float64)
    if act == "sigmoid":
        return special.expit(h)
    if act == "tanh":
        return np.tanh(h)
    if act == "relu":
        return np.maximum(h, 0.0)
    if act == "softplus":
        return np.logaddexp(0.0, h)
    if act is None:
        return h.copy()
    raise ValueError(act)


def activation_derivative(h, act):
    """g'(h), written in terms of h (the kernels use the output y instead)."""
    h = np.asarray(h, dtype=np.float64)
    if act == "sigmoid":
        s = special.expit(h)
        return s * (1.0 - s)
    if act == "tanh":
        return 1.0 - np.tanh(h) ** 2
    if act == "relu":
        return (h > 0).astype(np.float64)
    if act == "softplus":
        return special.expit(h)
    if act is None:
        return np.ones_like(h)
    raise ValueError(act)


def activation_backward(y, dy, act):
    """dL/dh = dy g'(h), with g'(h) written through the output y = g(h) (what a backward pass
    has): sigmoid y (1 - y), tanh 1 - y^2, relu [y > 0], softplus 1 - e^-y."""
    y = np.asarray(y, dtype=np.float64)
    if act == "sigmoid":
        deriv = y * (1.0 - y)
    elif act == "tanh":
        deriv = 1.0 - y * y
    elif act == "relu":
        deriv = (y > 0).astype(np.float64)
    elif act == "softplus":
        deriv = -np.expm1(-y)
    elif act is None:
        deriv = np.ones_like(y)
    else:
        raise ValueError(act)
    return np.asarray(dy, dtype=np.float64) * deriv


# ---------------------------------------------------------------- helpers


def as2d(x):
    """(N, C, L) -> (N, C, 1, L); 2D arrays pass through."""
    x = np.asarray(x)
    return x[:, :, None, :] if x.ndim == 3 else x


def pad2d(x, pads, value=0.0):
    """Pad the two spatial axes of (N, C, H, W) by ((top, bottom), (left, right))."""
    return np.pad(x, ((0, 0), (0, 0), tuple(pads[0]), tuple(pads[1])), constant_values=value)


def conv_out_size(size, kernel, stride, pads, dilation):
    return (size + pads[0] + pads[1] - dilation * (kernel - 1) - 1) // stride + 1


def _window_slice(offset, stride, count):
    """Input positions offset, offset + stride, ..., count of them (padded coordinates)."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


# ---------------------------------------------------------------- shared convolution


def conv2d(x, w, b=None, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Field h = conv(x, J) + b: cross-correlation, x (N, C, H, W), w (O, C/groups, KH, KW)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, height, width = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    xp = pad2d(x, pads)
    oh = conv_out_size(height, kh, stride[0], pads[0], dilation[0])
    ow = conv_out_size(width, kw, stride[1], pads[1], dilation[1])
    h = np.zeros((n, o, oh, ow))
    for a in range(kh):
        for bb in range(kw):
            rows = _window_slice(dilation[0] * a, stride[0], oh)
            patch = xp[:, :, rows, _window_slice(dilation[1] * bb, stride[1], ow)]
            for g in range(groups):
                h[:, g * og:(g + 1) * og] += np.einsum(
                    "ncij,oc->noij", patch[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og, :, a, bb])
    if b is not None:
        h += np.asarray(b, np.float64)[None, :, None, None]
    return h


def conv2d_backward(x, w, delta, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """(dx, dw, db) of conv2d, given delta = dL/dh."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, height, width = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    xp = pad2d(x, pads)
    oh, ow = delta.shape[2:]
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for a in range(kh):
        for bb in range(kw):
            rows = _window_slice(dilation[0] * a, stride[0], oh)
            cols = _window_slice(dilation[1] * bb, stride[1], ow)
            for g in range(groups):
                d_g = delta[:, g * og:(g + 1) * og]
                x_g = xp[:, g * cg:(g + 1) * cg, rows, cols]
                dw[g * og:(g + 1) * og, :, a, bb] = np.einsum("noij,ncij->oc", d_g, x_g)
                dxp[:, g * cg:(g + 1) * cg, rows, cols] += np.einsum("noij,oc->ncij", d_g,
                                                                     w[g * og:(g + 1) * og, :, a, bb])
    dx = dxp[:, :, pads[0][0]:pads[0][0] + height, pads[1][0]:pads[1][0] + width]
    return dx, dw, delta.sum(axis=(0, 2, 3))


# ---------------------------------------------------------------- transposed convolution


def conv_transpose2d(d, w, b=None, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
                     out_size=None):
    """f = conv_transpose(d, J) + b: scatter J^T d onto the padded grid, then crop the padding.

    d (N, O, OH, OW), w (O, C/groups, KH, KW) -> (N, C, *out_size).
    """
    d = np.asarray(d, np.float64)
    w = np.asarray(w, np.float64)
    n, o, oh, ow = d.shape
    _, cg, kh, kw = w.shape
    og = o // groups
    height, width = out_size
    hp = max(pads[0][0] + height, stride[0] * (oh - 1) + dilation[0] * (kh - 1) + 1)
    wp = max(pads[1][0] + width, stride[1] * (ow - 1) + dilation[1] * (kw - 1) + 1)
    zp = np.zeros((n, cg * groups, hp, wp))
    for a in range(kh):
        for bb in range(kw):
            rows = _window_slice(dilation[0] * a, stride[0], oh)
            cols = _window_slice(dilation[1] * bb, stride[1], ow)
            for g in range(groups):
                zp[:, g * cg:(g + 1) * cg, rows, cols] += np.einsum(
                    "noij,oc->ncij", d[:, g * og:(g + 1) * og], w[g * og:(g + 1) * og, :, a, bb])
    z = zp[:, :, pads[0][0]:pads[0][0] + height, pads[1][0]:pads[1][0] + width].copy()
    if b is not None:
        z += np.asarray(b, np.float64)[None, :, None, None]
    return z


def conv_transpose2d_backward(d, w, delta, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """(dd, dw, db) of conv_transpose2d, given delta = dL/df (N, C, H, W)."""
    d = np.asarray(d, np.float64)
    w = np.asarray(w, np.float64)
    n, o, oh, ow = d.shape
    _, cg, kh, kw = w.shape
    og = o // groups
    height, width = delta.shape[2:]
    hp = max(pads[0][0] + height, stride[0] * (oh - 1) + dilation[0] * (kh - 1) + 1)
    wp = max(pads[1][0] + width, stride[1] * (ow - 1) + dilation[1] * (kw - 1) + 1)
    dzp = np.zeros((n, cg * groups, hp, wp))
    dzp[:, :, pads[0][0]:pads[0][0] + height, pads[1][0]:pads[1][0] + width] = delta
    dd = np.zeros_like(d)
    dw = np.zeros_like(w)
    for a in range(kh):
        for bb in range(kw):
            rows = _window_slice(dilation[0] * a, stride[0], oh)
            cols = _window_slice(dilation[1] * bb, stride[1], ow)
            for g in range(groups):
                patch = dzp[:, g * cg:(g + 1) * cg, rows, cols]
                dd[:, g * og:(g + 1) * og] += np.einsum("ncij,oc->noij", patch, w[g * og:(g + 1) * og, :, a, bb])
                dw[g * og:(g + 1) * og, :, a, bb] = np.einsum("noij,ncij->oc", d[:, g * og:(g + 1) * og], patch)
    return dd, dw, delta.sum(axis=(0, 2, 3))


# ---------------------------------------------------------------- locally connected coupling


def local2d(x, w, b=None, stride=(1, 1), pads=((0, 0), (0, 0))):
    """h[n, o, I, J] = sum_{c,a,b} w[o, I, J, c, a, b] x_pad[n, c, s1 I + a, s2 J + b] + b[o, I, J]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    o, oh, ow, c, kh, kw = w.shape
    xp = pad2d(x, pads)
    h = np.zeros((x.shape[0], o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, stride[0] * i:stride[0] * i + kh, stride[1] * j:stride[1] * j + kw]
            h[:, :, i, j] = np.einsum("ncab,ocab->no", window, w[:, i, j])
    if b is not None:
        h += np.asarray(b, np.float64)[None]
    return h


def local2d_backward(x, w, delta, stride=(1, 1), pads=((0, 0), (0, 0))):
    """(dx, dw, db) of local2d, given delta = dL/dh."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    o, oh, ow, c, kh, kw = w.shape
    height, width = x.shape[2:]
    xp = pad2d(x, pads)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(oh):
        for j in range(ow):
            rows = slice(stride[0] * i, stride[0] * i + kh)
            cols = slice(stride[1] * j, stride[1] * j + kw)
            dw[:, i, j] = np.einsum("no,ncab->ocab", delta[:, :, i, j], xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("no,ocab->ncab", delta[:, :, i, j], w[:, i, j])
    dx = dxp[:, :, pads[0][0]:pads[0][0] + height, pads[1][0]:pads[1][0] + width]
    return dx, dw, delta.sum(axis=0)


# ---------------------------------------------------------------- full coupling


def full(x, w, b=None):
    """h[n, K] = sum_F w[K, F] x[n, F] + b[K] on flattened (channel, site) indices."""
    x2 = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    w2 = np.asarray(w, np.float64).reshape(-1, x2.shape[1])
    h = np.einsum("kf,nf->nk", w2, x2)
    if b is not None:
        h += np.asarray(b, np.float64).reshape(-1)
    return h


# ---------------------------------------------------------------- pooling


def _fixed_windows(size, kernel, stride, pads):
    """[(start, end)] in padded coordinates for every output site along one axis."""
    count = (size + pads[0] + pads[1] - kernel) // stride + 1
    return [(stride * i, stride * i + kernel) for i in range(count)]


def _adaptive_windows(size, bins):
    """PyTorch's adaptive bins: [floor(i size / bins), ceil((i + 1) size / bins))."""
    return [(math.floor(i * size / bins), math.ceil((i + 1) * size / bins)) for i in range(bins)]


def _pool(xp, rows, cols, reduce):
    n, c = xp.shape[:2]
    y = np.zeros((n, c, len(rows), len(cols)))
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            y[:, :, i, j] = reduce(xp[:, :, r0:r1, c0:c1])
    return y


def max_pool2d(x, kernel, stride, pads):
    """Max over each window of the input padded with -inf."""
    xp = pad2d(np.asarray(x, np.float64), pads, value=-np.inf)
    rows = _fixed_windows(x.shape[2], kernel[0], stride[0], pads[0])
    cols = _fixed_windows(x.shape[3], kernel[1], stride[1], pads[1])
    return _pool(xp, rows, cols, lambda win: win.max(axis=(2, 3)))


def _max_backward(xp, rows, cols, dy):
    """Each dy goes to the first (row-major) maximum of its window."""
    dxp = np.zeros_like(xp)
    n, c = xp.shape[:2]
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            win = xp[:, :, r0:r1, c0:c1].reshape(n, c, -1)
            flat = win.argmax(axis=2)
            rr, qq = np.unravel_index(flat, (r1 - r0, c1 - c0))
            for nn in range(n):
                for cc in range(c):
                    dxp[nn, cc, r0 + rr[nn, cc], c0 + qq[nn, cc]] += dy[nn, cc, i, j]
    return dxp


def max_pool2d_backward(x, dy, kernel, stride, pads):
    xp = pad2d(np.asarray(x, np.float64), pads, value=-np.inf)
    rows = _fixed_windows(x.shape[2], kernel[0], stride[0], pads[0])
    cols = _fixed_windows(x.shape[3], kernel[1], stride[1], pads[1])
    dxp = _max_backward(xp, rows, cols, dy)
    return dxp[:, :, pads[0][0]:pads[0][0] + x.shape[2], pads[1][0]:pads[1][0] + x.shape[3]]


def _avg_divisors(shape, rows, cols, pads, count_include_pad):
    if count_include_pad:
        return np.array([[(r1 - r0) * (c1 - c0) for (c0, c1) in cols] for (r0, r1) in rows], float)
    ones = pad2d(np.ones((1, 1) + tuple(shape)), pads)
    return _pool(ones, rows, cols, lambda win: win.sum(axis=(2, 3)))[0, 0]


def avg_pool2d(x, kernel, stride, pads, count_include_pad=True):
    """Mean over each window of the zero-padded input (divisor: the whole window, or only real sites)."""
    x = np.asarray(x, np.float64)
    xp = pad2d(x, pads)
    rows = _fixed_windows(x.shape[2], kernel[0], stride[0], pads[0])
    cols = _fixed_windows(x.shape[3], kernel[1], stride[1], pads[1])
    div = _avg_divisors(x.shape[2:], rows, cols, pads, count_include_pad)
    return _pool(xp, rows, cols, lambda win: win.sum(axis=(2, 3))) / div


def avg_pool2d_backward(x, dy, kernel, stride, pads, count_include_pad=True):
    x = np.asarray(x, np.float64)
    xp = pad2d(x, pads)
    rows = _fixed_windows(x.shape[2], kernel[0], stride[0], pads[0])
    cols = _fixed_windows(x.shape[3], kernel[1], stride[1], pads[1])
    div = _avg_divisors(x.shape[2:], rows, cols, pads, count_include_pad)
    dxp = np.zeros_like(xp)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            dxp[:, :, r0:r1, c0:c1] += (dy[:, :, i, j] / div[i, j])[:, :, None, None]
    return dxp[:, :, pads[0][0]:pads[0][0] + x.shape[2], pads[1][0]:pads[1][0] + x.shape[3]]


def adaptive_pool2d(x, bins, mode="max"):
    """PyTorch's adaptive max/avg pooling to ``bins`` = (rows, cols)."""
    x = np.asarray(x, np.float64)
    rows = _adaptive_windows(x.shape[2], bins[0])
    cols = _adaptive_windows(x.shape[3], bins[1])
    if mode == "max":
        return _pool(x, rows, cols, lambda win: win.max(axis=(2, 3)))
    return _pool(x, rows, cols, lambda win: win.mean(axis=(2, 3)))


def adaptive_pool2d_backward(x, dy, bins, mode="max"):
    x = np.asarray(x, np.float64)
    rows = _adaptive_windows(x.shape[2], bins[0])
    cols = _adaptive_windows(x.shape[3], bins[1])
    if mode == "max":
        return _max_backward(x, rows, cols, dy)
    dx = np.zeros_like(x)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            dx[:, :, r0:r1, c0:c1] += (dy[:, :, i, j] / ((r1 - r0) * (c1 - c0)))[:, :, None, None]
    return dx


def spatial_pyramid_pool(x, levels, mode="max", ndim=2):
    """Concatenate, level by level, the flattened (C, l[, l]) adaptive pools: (N, C sum l^ndim)."""
    x2 = as2d(x)
    parts = []
    for level in levels:
        bins = (level, level) if ndim == 2 else (1, level)
        parts.append(adaptive_pool2d(x2, bins, mode).reshape(x2.shape[0], -1))
    return np.concatenate(parts, axis=1)


def spatial_pyramid_pool_backward(x, dy, levels, mode="max", ndim=2):
    x2 = as2d(x)
    n, c = x2.shape[:2]
    dx = np.zeros(x2.shape)
    start = 0
    for level in levels:
        bins = (level, level) if ndim == 2 else (1, level)
        size = c * bins[0] * bins[1]
        dx += adaptive_pool2d_backward(x2, dy[:, start:start + size].reshape(n, c, *bins), bins, mode)
        start += size
    return dx.reshape(np.shape(x))


# ---------------------------------------------------------------- finite-difference gradient check

GRAD_EPS = 1e-6


def central_difference(loss, flat, i, eps=GRAD_EPS):
    """(loss(flat[i] + eps) - loss(flat[i] - eps)) / 2 eps, with flat[i] restored afterwards."""
    old = flat[i]
    flat[i] = old + eps
    up = loss()
    flat[i] = old - eps
    down = loss()
    flat[i] = old
    return (up - down) / (2 * eps)


def numeric_gradient(loss, array):
    """Central differences of loss() with respect to every entry of ``array`` (perturbed in place)."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        gflat[k] = central_difference(loss, flat, k)
    return grad


def check_gradients(layer, input_shape, seed=0):
    """L = sum(R * layer.forward(x)) with a fixed random R, float64: backward's dx and grads against
    central differences in every entry of x and of each parameter."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2,) + tuple(input_shape))
    y = layer.forward(x)
    assert y.shape == (2,) + layer.output_shape(input_shape)
    R = rng.standard_normal(y.shape)
    dx = layer.backward(R)
    grads = {key: value.copy() for key, value in layer.grads.items()}
    assert set(grads) == set(layer.params)

    def loss():
        return float(np.sum(layer.forward(x) * R))

    def close(got, want, what):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale, err_msg=f"{layer!r}: {what}")

    close(dx, numeric_gradient(loss, x), "dx")
    for key, param in layer.params.items():
        assert grads[key].shape == param.shape and grads[key].dtype == param.dtype
        close(grads[key], numeric_gradient(loss, param), f"d{key}")
