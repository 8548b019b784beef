"""Closed-form bookkeeping of convolutional layers (seeds 000, 001, 002).

* padding modes "valid" / "same" / "full" / "circular" and the output size
      O = floor((I + P_start + P_end - d (F - 1) - 1) / S) + 1
* parameter counts of CONV, POOL and FC layers, and of the three coupling families
* the receptive-field recursion RF_{l-1} = (RF_l - 1) s_l + k_l, RF_N = 1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import as_int, as_int_tuple

PADDING_MODES = ("valid", "same", "full", "circular")


def padding_pair(mode, size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(P_start, P_end) along one axis for a padding mode (seed 001).

    "valid": no padding. "same": P = S ceil(I/S) - I + F - S split floor/ceil, so that the output
    has ceil(I/S) sites. "full": F - 1 on both sides, every window that touches the input.
    "circular": the amounts of "same", filled periodically (physics/boundary.py), not with zeros.
    F is the dilated window (F - 1) d + 1.
    """
    span = (kernel - 1) * dilation + 1
    if mode == "valid":
        return 0, 0
    if mode in ("same", "circular"):
        total = max(stride * math.ceil(size / stride) - size + span - stride, 0)
        return total // 2, total - total // 2
    if mode == "full":
        return span - 1, span - 1
    raise ValueError(f"padding: expected an int, a pair, or one of {list(PADDING_MODES)}, got {mode!r}")


def output_size(size, kernel, stride=1, padding=0, dilation=1) -> int:
    """Number of output sites along one axis.

    ``padding`` is an int (both sides), a (start, end) pair, or "valid" / "same" / "full" / "circular".
    Raises ValueError when the (dilated) window is larger than the padded input.
    """
    size = as_int(size, "size", 1)
    kernel = as_int(kernel, "kernel", 1)
    stride = as_int(stride, "stride", 1)
    dilation = as_int(dilation, "dilation", 1)
    if isinstance(padding, str):
        p0, p1 = padding_pair(padding, size, kernel, stride, dilation)
    elif isinstance(padding, (tuple, list)):
        p0, p1 = as_int_tuple(padding, 2, "padding", 0)
    else:
        p0 = p1 = as_int(padding, "padding", 0)
    span = (kernel - 1) * dilation + 1
    padded = size + p0 + p1
    if span > padded:
        raise ValueError(
            f"kernel: window of span {span} (kernel {kernel}, dilation {dilation}) is larger than "
            f"the padded input {padded} (size {size} + padding {p0}+{p1})"
        )
    return (padded - span) // stride + 1


@dataclass(frozen=True)
class Geometry:
    """Where every window of a strided, padded, dilated coupling sits.

    Output site I along an axis sees input sites i = s I + d a - P_start, a = 0..k-1
    (the window of eq. (4.1.3), written with a padding offset instead of a centred alpha).
    ``circular``: the padded sites are periodic copies (i read as i mod n), not zeros.
    """

    in_sites: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    out_sites: tuple[int, ...]
    circular: bool = False

    @property
    def ndim(self) -> int:
        return len(self.in_sites)


def make_geometry(in_sites, kernel, stride=1, padding=0, dilation=1) -> Geometry:
    """Validate window parameters against input sites and return the :class:`Geometry`.

    ``padding``: an int, one int per axis, one (start, end) pair per axis, or a mode string.
    """
    in_sites = tuple(as_int(s, "input sites", 1) for s in in_sites)
    nd = len(in_sites)
    kernel = as_int_tuple(kernel, nd, "kernel_size", 1)
    stride = as_int_tuple(stride, nd, "stride", 1)
    dilation = as_int_tuple(dilation, nd, "dilation", 1)
    pads = normalize_padding(padding, in_sites, kernel, stride, dilation)
    out = []
    for axis in range(nd):
        span = (kernel[axis] - 1) * dilation[axis] + 1
        padded = in_sites[axis] + sum(pads[axis])
        if span > padded:
            raise ValueError(
                f"kernel_size: window {kernel} (dilation {dilation}) spans {span} sites on axis {axis}, "
                f"larger than the padded input {padded} (input sites {in_sites}, padding {pads})"
            )
        out.append((padded - span) // stride[axis] + 1)
    return Geometry(in_sites, kernel, stride, pads, dilation, tuple(out), circular=padding == "circular")


def kernel_geometry(geo: Geometry):
    """(sh, sw, ph, pw, dh, dw, oh, ow): the 2D kernels' arguments for a 1D or 2D geometry (1D is H = 1).

    The kernels zero-pad: a circular geometry must be run as ``boundary.interior(geo)`` on
    ``boundary.wrap(x, geo)``, and passing it here is a programming error."""
    if geo.circular:
        raise ValueError("geo: a circular geometry reaches the kernels only through boundary.wrap/interior")
    if geo.ndim == 1:
        return 1, geo.stride[0], 0, geo.padding[0][0], 1, geo.dilation[0], 1, geo.out_sites[0]
    return (geo.stride[0], geo.stride[1], geo.padding[0][0], geo.padding[1][0],
            geo.dilation[0], geo.dilation[1], geo.out_sites[0], geo.out_sites[1])


def as4d(a: np.ndarray) -> np.ndarray:
    """The 2D kernels' layout of an array: (N, C, L) -> (N, C, 1, L); (N, C, H, W) unchanged (views)."""
    return a.reshape(a.shape[0], a.shape[1], 1, a.shape[2]) if a.ndim == 3 else a


def inside_fraction(geo: Geometry) -> float:
    """The mean fraction of a window's taps that fall inside the input (not on padding), over
    all output sites: the field h_IJ sums fan_in * inside_fraction terms on average, which is
    what an initialisation that keeps the field's variance must divide by. 1 without padding,
    and 1 with a periodic boundary (every tap reads a lattice site)."""
    if geo.circular:
        return 1.0
    fraction = 1.0
    for n, k, s, (p0, _), d, m in zip(geo.in_sites, geo.kernel, geo.stride, geo.padding, geo.dilation, geo.out_sites):
        i = s * np.arange(m)[:, None] + d * np.arange(k)[None, :] - p0
        fraction *= float(np.mean((i >= 0) & (i < n)))
    return fraction


def normalize_padding(padding, in_sites, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """Padding as one (start, end) pair per axis."""
    nd = len(in_sites)
    if isinstance(padding, str):
        if padding not in PADDING_MODES:
            raise ValueError(
                f"padding: expected an int, a pair, or one of {list(PADDING_MODES)}, got {padding!r}"
            )
        return tuple(padding_pair(padding, in_sites[a], kernel[a], stride[a], dilation[a]) for a in range(nd))
    if isinstance(padding, (tuple, list)):
        items = list(padding)
        if len(items) == nd and all(isinstance(p, (tuple, list)) for p in items):
            return tuple(as_int_tuple(p, 2, "padding", 0) for p in items)
        if nd == 1 and len(items) == 2 and not any(isinstance(p, (tuple, list)) for p in items):
            # 1D: (start, end)
            return (as_int_tuple(items, 2, "padding", 0),)
        ints = as_int_tuple(items, nd, "padding", 0)
        return tuple((p, p) for p in ints)
    p = as_int(padding, "padding", 0)
    return tuple((p, p) for _ in range(nd))


# ---------------------------------------------------------------- parameter counts (seed 001)


def check_padding(padding, nd: int, kernel, stride, dilation):
    """Validate a padding argument (int, per-axis ints, per-axis (start, end) pairs, or a mode) and
    return it as a JSON value (what a layer keeps in its config)."""
    from .._io import jsonable

    normalize_padding(padding, (1,) * nd, kernel, stride, dilation)
    return padding if isinstance(padding, str) else jsonable(padding)


def _as_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _as_sites(value, name: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list, np.ndarray)) or len(value) == 0:
        raise TypeError(f"{name}: expected a non-empty tuple of site counts such as (H, W), got {value!r}")
    return tuple(as_int(v, name, 1) for v in value)


def conv_params(in_channels: int, out_channels: int, kernel_size, ndim: int = 2, bias: bool = True,
                groups: int = 1) -> int:
    """CONV layer: (F x F x C / groups + 1) K parameters (F^ndim when ``kernel_size`` is an int)."""
    in_channels = as_int(in_channels, "in_channels", 1)
    out_channels = as_int(out_channels, "out_channels", 1)
    ndim = as_int(ndim, "ndim", 1)
    groups = as_int(groups, "groups", 1)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups: expected a divisor of in_channels={in_channels} and "
                         f"out_channels={out_channels}, got {groups}")
    window = math.prod(as_int_tuple(kernel_size, ndim, "kernel_size", 1))
    return out_channels * (in_channels // groups * window + (1 if _as_bool(bias, "bias") else 0))


def pool_params() -> int:
    """POOL layer: no parameters."""
    return 0


def fc_params(n_in: int, n_out: int, bias: bool = True) -> int:
    """FC layer: (N_in + 1) N_out parameters."""
    n_in = as_int(n_in, "n_in", 1)
    n_out = as_int(n_out, "n_out", 1)
    return (n_in + (1 if _as_bool(bias, "bias") else 0)) * n_out


def coupling_params(family: str, in_sites, out_sites, kernel_size=None, in_channels: int = 1,
                    out_channels: int = 1, bias: bool = True) -> int:
    """Parameter count of the full / local / shared coupling between two grids of sites.

    full:   C_out O C_in I (+ C_out O),   O = prod(out_sites), I = prod(in_sites)
    local:  C_out O C_in k (+ C_out O),   k = prod(kernel_size)
    shared: C_out C_in k (+ C_out)
    """
    if not isinstance(family, str) or family not in ("full", "local", "shared"):
        raise ValueError(f"family: expected 'full', 'local' or 'shared', got {family!r}")
    in_sites = _as_sites(in_sites, "in_sites")
    out_sites = _as_sites(out_sites, "out_sites")
    in_channels = as_int(in_channels, "in_channels", 1)
    out_channels = as_int(out_channels, "out_channels", 1)
    b = 1 if _as_bool(bias, "bias") else 0
    n_out = math.prod(out_sites)
    n_in = math.prod(in_sites)
    if family == "full":
        return out_channels * n_out * (in_channels * n_in + b)
    if kernel_size is None:
        raise TypeError(f"kernel_size: the {family} coupling needs the window size, got None")
    window = math.prod(as_int_tuple(kernel_size, len(in_sites), "kernel_size", 1))
    if family == "local":
        return out_channels * n_out * (in_channels * window + b)
    return out_channels * (in_channels * window + b)


# ---------------------------------------------------------------- receptive field (seed 000)


def receptive_field(layers) -> int:
    """Receptive field RF_0 of one output unit of a stack of layers, along one axis.

    ``layers`` is a sequence of (kernel, stride) or (kernel, stride, dilation) tuples, first layer
    first. The recursion RF_{l-1} = (RF_l - 1) s_l + k_l runs from RF_N = 1 down to the input,
    with a dilated window counting as k = (k - 1) d + 1.
    """
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise TypeError(f"layers: expected a sequence of (kernel, stride[, dilation]) tuples, got {layers!r}")
    layers = list(layers)
    rf = 1
    for index, layer in enumerate(reversed(layers)):
        if not isinstance(layer, (tuple, list)) or len(layer) not in (2, 3):
            raise ValueError(f"layers[{len(layers) - 1 - index}]: expected (kernel, stride[, dilation]), got {layer!r}")
        k = as_int(layer[0], "kernel", 1)
        s = as_int(layer[1], "stride", 1)
        d = as_int(layer[2], "dilation", 1) if len(layer) == 3 else 1
        rf = (rf - 1) * s + (k - 1) * d + 1
    return rf
