"""The three coupling families between input sites x_ij and feature variables d_IJ (seed 004).

    full    J_{IJ,ij}                      every output site to every input site      (4.1.2)
    local   J_{IJ,ab}, i = s1 I + a, ...   one k x k window per output site           (4.1.3-4)
    shared  J_ab, the same at every IJ     convolution                                (4.1.5)

and a control outside the chain: sparse, J_{IJ,k} on k x k input sites drawn at random per output
site (the fan-in of a window without its locality).

Each family gives the field h_IJ = sum_ij J_{IJ,ij} x_ij + J_IJ that the feature variables feel
(the argument of the sigmoid in (4.1.7)), can write itself as the dense tensor J_{IJ,ij}, and
counts its parameters. ``local`` and ``shared`` are the dense tensor with zeros and ties;
``project`` is the adjoint of ``dense`` (it sums a dense tensor over the tied entries), which is
how a gradient with respect to J_{IJ,ij} becomes a gradient with respect to the tied weights.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_float_array, as_int, as_int_tuple, kernel_array
from ..kernels.conv import shared_forward
from ..kernels.local import local_forward
from .boundary import interior, wrap
from .formulas import Geometry, kernel_geometry, make_geometry, normalize_padding


def _input_shape(input_shape, nd: int, channels: int, name: str = "input_shape") -> tuple[int, ...]:
    """(C_in, *sites) from either (C_in, *sites) or just the sites."""
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{name}: expected a tuple (C_in, *sites) or (*sites), got {input_shape!r}")
    shape = tuple(as_int(s, name, 1) for s in input_shape)
    if len(shape) == nd:
        shape = (channels,) + shape
    if len(shape) != nd + 1:
        raise ValueError(f"{name}: expected (C_in, *sites) with {nd} spatial axes, got {input_shape!r}")
    if shape[0] != channels:
        raise ValueError(f"{name}: expected {channels} input channels, got {shape[0]} in {input_shape!r}")
    return shape


def _shape_tuple(value, name: str) -> tuple[int, ...]:
    """A shape given as a tuple or list of positive ints."""
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name}: expected a tuple of positive ints such as (C, H, W), got {value!r}")
    return tuple(as_int(s, name, 1) for s in value)


def _fit_geometry(coupling, sites, name: str) -> Geometry:
    """``coupling.geometry(sites)``, with a window that does not fit blamed on ``name`` (x or input_shape)."""
    try:
        return coupling.geometry(sites)
    except ValueError as exc:
        raise ValueError(f"{name}: sites {tuple(sites)} do not fit this coupling: {exc}") from None


def _check_input(x, nd: int, channels: int, dtype) -> np.ndarray:
    want = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    x = as_float_array(x, "x", dtype=dtype)
    if x.ndim != nd + 2:
        raise ValueError(f"x: expected a {nd + 2}-D array {want}, got shape {x.shape}")
    if x.shape[1] != channels:
        raise ValueError(f"x: expected {channels} input channel(s) (axis 1), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"x: expected at least one sample, got shape {x.shape}")
    return x


def _common_dtype(x, weight) -> np.dtype:
    """float32 when both the input and the weights are float32, else float64."""
    both32 = isinstance(x, np.ndarray) and x.dtype == np.float32 and weight.dtype == np.float32
    return np.dtype(np.float32 if both32 else np.float64)


def _window_index(geo: Geometry):
    """For every (out site, window offset): the flat input site it touches, or -1 if padding
    (with a periodic boundary, the site i mod n: there is no padding).

    Returns an int array of shape (prod(out_sites), prod(kernel)).
    """
    axes = []
    for axis in range(geo.ndim):
        out_i = np.arange(geo.out_sites[axis])[:, None]
        a = np.arange(geo.kernel[axis])[None, :]
        i = geo.stride[axis] * out_i + geo.dilation[axis] * a - geo.padding[axis][0]
        axes.append(i % geo.in_sites[axis] if geo.circular else i)
    if geo.ndim == 1:
        idx = axes[0]
        valid = (idx >= 0) & (idx < geo.in_sites[0])
        return np.where(valid, idx, -1)
    rows, cols = axes
    r = rows[:, None, :, None]
    c = cols[None, :, None, :]
    valid = (r >= 0) & (r < geo.in_sites[0]) & (c >= 0) & (c < geo.in_sites[1])
    flat = np.where(valid, r * geo.in_sites[1] + c, -1)
    return flat.reshape(math.prod(geo.out_sites), math.prod(geo.kernel))


def _dense_from_index(weight, index, out_sites, input_shape) -> np.ndarray:
    """J_{o,IJ,c,ij} = sum_k J_{o,IJ,c,k} delta_{ij, index[IJ, k]}: a coupling in which output site IJ
    reads the input sites index[IJ, :] (-1: a padded site, which reads zero), as a dense tensor."""
    c_out, c_in = weight.shape[0], input_shape[0]
    n_out_sites, n_in_sites = math.prod(out_sites), math.prod(input_shape[1:])
    sites = np.where(index >= 0, index, n_in_sites)  # padding goes to a dump column
    w = weight.reshape(c_out, n_out_sites, c_in, -1)
    J = np.zeros((c_out, n_out_sites, c_in, n_in_sites + 1), w.dtype)
    rows = np.broadcast_to(np.arange(n_out_sites)[:, None], sites.shape)
    for o in range(c_out):
        for c in range(c_in):
            np.add.at(J[o, :, c], (rows, sites), w[o, :, c])
    return J[..., :n_in_sites].reshape((c_out,) + tuple(out_sites) + tuple(input_shape))


def _project_to_index(dense_tensor, weight_shape, index, out_sites, input_shape) -> np.ndarray:
    """Adjoint of ``_dense_from_index``: the entries of a J_{IJ,ij}-shaped tensor at the sites each
    output site reads, shaped like the weight."""
    c_out, c_in = weight_shape[0], input_shape[0]
    n_out_sites, n_in_sites = math.prod(out_sites), math.prod(input_shape[1:])
    T = as_float_array(dense_tensor, "dense_tensor")
    want = (c_out,) + tuple(out_sites) + tuple(input_shape)
    if T.shape != want:
        raise ValueError(f"dense_tensor: expected shape {want}, got {T.shape}")
    T = np.concatenate([T.reshape(c_out, n_out_sites, c_in, n_in_sites),
                        np.zeros((c_out, n_out_sites, c_in, 1), T.dtype)], axis=-1)
    sites = np.where(index >= 0, index, n_in_sites)
    rows = np.arange(n_out_sites)[:, None]
    out = T[:, rows, :, sites]  # advanced indices first: (P_out, K, C_out, C_in)
    out = np.moveaxis(out, (2, 3), (0, 2))  # (C_out, P_out, C_in, K)
    return np.ascontiguousarray(out).reshape(weight_shape)


class Coupling:
    """Common interface: ``field``, ``dense``, ``project``, ``n_params``."""

    family = "coupling"
    weight: np.ndarray
    bias: np.ndarray | None

    @property
    def n_params(self) -> int:
        """Number of free parameters (weights plus biases, when there is a bias)."""
        return int(self.weight.size + (0 if self.bias is None else self.bias.size))

    @property
    def dtype(self):
        return self.weight.dtype

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight shape {self.weight.shape}, n_params={self.n_params})"


class SharedCoupling(Coupling):
    """Shared (translation-invariant) coupling J_ab: convolution, eq. (4.1.5).

    weight (C_out, C_in / groups, *window), 1D or 2D; bias (C_out,) or None.
    padding: an int, one int per axis, one (start, end) pair per axis, or "valid"/"same"/"full",
    or "circular" (a periodic boundary: physics/boundary.py).
    """

    family = "shared"

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        weight = as_float_array(weight, "weight", ndim=(3, 4))
        self.nd = weight.ndim - 2
        self.groups = as_int(groups, "groups", 1)
        if weight.shape[0] % self.groups:
            raise ValueError(f"groups: {self.groups} does not divide the {weight.shape[0]} output channels of "
                             f"weight {weight.shape}")
        if min(weight.shape) < 1:
            raise ValueError(f"weight: expected every axis >= 1, got shape {weight.shape}")
        self.weight = weight
        self.bias = None if bias is None else as_float_array(bias, "bias", ndim=1, dtype=weight.dtype)
        if self.bias is not None and self.bias.shape != (weight.shape[0],):
            raise ValueError(f"bias: expected shape ({weight.shape[0]},), got {self.bias.shape}")
        self.kernel_size = weight.shape[2:]
        self.in_channels = weight.shape[1] * self.groups
        self.out_channels = weight.shape[0]
        self.padding = padding
        self.stride = as_int_tuple(stride, self.nd, "stride", 1)
        self.dilation = as_int_tuple(dilation, self.nd, "dilation", 1)
        normalize_padding(padding, (1,) * self.nd, self.kernel_size, self.stride, self.dilation)

    def geometry(self, sites) -> Geometry:
        """Window positions for inputs with these sites."""
        return make_geometry(sites, self.kernel_size, self.stride, self.padding, self.dilation)

    def output_shape(self, input_shape) -> tuple[int, ...]:
        """(C_out, *out_sites) for an input (C_in, *sites)."""
        shape = _input_shape(input_shape, self.nd, self.in_channels)
        return (self.out_channels,) + _fit_geometry(self, shape[1:], "input_shape").out_sites

    def field(self, x) -> np.ndarray:
        """h_{o,IJ} = sum_{c,ab} J_{o,c,ab} x_{c, s1 I + a, s2 J + b} + b_o  (eq. 4.1.7's argument)."""
        x = _check_input(x, self.nd, self.in_channels, _common_dtype(x, self.weight))
        geo = _fit_geometry(self, x.shape[2:], "x")
        w = kernel_array(self.weight, x.dtype)
        b = np.zeros(self.out_channels, x.dtype) if self.bias is None else kernel_array(self.bias, x.dtype)
        if geo.circular:
            x, geo = wrap(x, geo), interior(geo)
        args = kernel_geometry(geo)
        if self.nd == 1:
            y = shared_forward(x[:, :, None, :], w[:, :, None, :], b, *args[:6], self.groups, *args[6:], 0, 1)
            return y[:, :, 0, :]
        return shared_forward(x, w, b, *args[:6], self.groups, *args[6:], 0, 1)

    def dense(self, input_shape) -> np.ndarray:
        """The equivalent full coupling J_{IJ,ij} = sum_ab J_ab delta_{i, s1 I + a} delta_{j, s2 J + b}
        (eq. 4.1.5), shape (C_out, *out_sites, C_in, *in_sites)."""
        shape = _input_shape(input_shape, self.nd, self.in_channels)
        geo = _fit_geometry(self, shape[1:], "input_shape")
        index = _window_index(geo)  # (P_out, K)
        n_out_sites, n_in_sites = math.prod(geo.out_sites), math.prod(geo.in_sites)
        c_g = self.weight.shape[1]
        o_g = self.out_channels // self.groups
        J = np.zeros((self.out_channels, n_out_sites, self.in_channels, n_in_sites + 1), self.weight.dtype)
        w = self.weight.reshape(self.out_channels, c_g, -1)
        sites = np.where(index >= 0, index, n_in_sites)  # padding goes to a dump column
        rows = np.arange(n_out_sites)[:, None]
        for o in range(self.out_channels):
            g = o // o_g
            for c in range(c_g):
                np.add.at(J[o, :, g * c_g + c], (np.broadcast_to(rows, sites.shape), sites), w[o, c][None, :])
        J = J[..., :n_in_sites]
        return J.reshape((self.out_channels,) + geo.out_sites + (self.in_channels,) + geo.in_sites)

    def project(self, dense_tensor, input_shape) -> np.ndarray:
        """Adjoint of ``dense``: sum a tensor shaped like J_{IJ,ij} over the entries tied to each J_ab.

        A gradient dL/dJ_{IJ,ij} becomes dL/dJ_ab this way.
        """
        shape = _input_shape(input_shape, self.nd, self.in_channels)
        geo = _fit_geometry(self, shape[1:], "input_shape")
        index = _window_index(geo)
        n_out_sites, n_in_sites = math.prod(geo.out_sites), math.prod(geo.in_sites)
        T = as_float_array(dense_tensor, "dense_tensor")
        want = (self.out_channels,) + geo.out_sites + (self.in_channels,) + geo.in_sites
        if T.shape != want:
            raise ValueError(f"dense_tensor: expected shape {want}, got {T.shape}")
        T = np.concatenate([T.reshape(self.out_channels, n_out_sites, self.in_channels, n_in_sites),
                            np.zeros((self.out_channels, n_out_sites, self.in_channels, 1), T.dtype)], axis=-1)
        sites = np.where(index >= 0, index, n_in_sites)
        rows = np.arange(n_out_sites)[:, None]
        c_g = self.weight.shape[1]
        o_g = self.out_channels // self.groups
        out = np.zeros((self.out_channels, c_g, index.shape[1]), T.dtype)
        for o in range(self.out_channels):
            g = o // o_g
            for c in range(c_g):
                out[o, c] = T[o, rows, g * c_g + c, sites].sum(axis=0)
        return out.reshape(self.weight.shape)

    def untie(self, input_shape) -> "LocalCoupling":
        """The local coupling with every window equal to J_ab (groups must be 1)."""
        if self.groups != 1 or any(d != 1 for d in np.atleast_1d(self.dilation)):
            raise ValueError("untie: a local coupling has no groups or dilation; need groups=1, dilation=1")
        shape = _input_shape(input_shape, self.nd, self.in_channels)
        geo = _fit_geometry(self, shape[1:], "input_shape")
        w = np.broadcast_to(self.weight.reshape((self.out_channels,) + (1,) * self.nd + self.weight.shape[1:]),
                            (self.out_channels,) + geo.out_sites + self.weight.shape[1:]).copy()
        b = None
        if self.bias is not None:
            b = np.broadcast_to(self.bias.reshape((-1,) + (1,) * self.nd), (self.out_channels,) + geo.out_sites).copy()
        padding = "circular" if geo.circular else geo.padding
        return LocalCoupling(w, b, stride=self.stride, padding=padding, input_shape=shape)


class LocalCoupling(Coupling):
    """Locally connected coupling J_{IJ,ab}: a window per output site, not shared, eq. (4.1.4).

    weight (C_out, *out_sites, C_in, *window); bias (C_out, *out_sites) or None.
    """

    family = "local"

    def __init__(self, weight, bias=None, stride=1, padding=0, input_shape=None):
        weight = as_float_array(weight, "weight", ndim=(4, 6))
        self.nd = (weight.ndim - 2) // 2
        if min(weight.shape) < 1:
            raise ValueError(f"weight: expected every axis >= 1, got shape {weight.shape}")
        self.weight = weight
        self.out_channels = weight.shape[0]
        self.in_channels = weight.shape[1 + self.nd]
        self.kernel_size = weight.shape[2 + self.nd:]
        out_sites = weight.shape[1:1 + self.nd]
        if input_shape is None:
            raise TypeError("input_shape: LocalCoupling needs the input shape (C_in, *sites), got None")
        self.input_shape = _input_shape(input_shape, self.nd, self.in_channels)
        self.stride, self.padding = stride, padding
        strides = as_int_tuple(stride, self.nd, "stride", 1)
        normalize_padding(padding, self.input_shape[1:], self.kernel_size, strides, (1,) * self.nd)
        try:  # stride and padding are fine: a window that does not fit is the input's fault
            self.geo = make_geometry(self.input_shape[1:], self.kernel_size, stride, padding, 1)
        except ValueError as exc:
            raise ValueError(f"input_shape: {self.input_shape} does not fit the window of weight: {exc}") from None
        if self.geo.out_sites != out_sites:
            raise ValueError(
                f"weight: its output sites {out_sites} do not match the {self.geo.out_sites} sites that "
                f"input_shape {self.input_shape}, kernel {self.kernel_size}, stride {stride}, padding {padding} give"
            )
        self.bias = None if bias is None else as_float_array(bias, "bias", dtype=weight.dtype)
        if self.bias is not None and self.bias.shape != (self.out_channels,) + out_sites:
            raise ValueError(f"bias: expected shape {(self.out_channels,) + out_sites}, got {self.bias.shape}")

    def output_shape(self, input_shape=None) -> tuple[int, ...]:
        """(C_out, *out_sites); ``input_shape``, when given, must be this coupling's (or its sites)."""
        if input_shape is not None and _input_shape(input_shape, self.nd, self.in_channels) != self.input_shape:
            raise ValueError(f"input_shape: this coupling was built for {self.input_shape}, got {input_shape!r}")
        return (self.out_channels,) + self.geo.out_sites

    def field(self, x) -> np.ndarray:
        """h_{o,IJ} = sum_{c,ab} J_{o,IJ,c,ab} x_{c, s1 I + a, s2 J + b} + b_{o,IJ}  (eq. 4.1.4)."""
        x = _check_input(x, self.nd, self.in_channels, _common_dtype(x, self.weight))
        if x.shape[2:] != self.input_shape[1:]:
            raise ValueError(f"x: expected sites {self.input_shape[1:]} (this coupling's input_shape), got shape "
                             f"{x.shape}")
        geo = self.geo
        w = kernel_array(self.weight, x.dtype)
        b = (np.zeros((self.out_channels,) + geo.out_sites, x.dtype) if self.bias is None
             else kernel_array(self.bias, x.dtype))
        if geo.circular:
            x, geo = wrap(x, geo), interior(geo)
        sh, sw, ph, pw, _, _, _, _ = kernel_geometry(geo)
        if self.nd == 1:
            y = local_forward(x[:, :, None, :], w[:, None, :, :, None, :], b[:, None, :], sh, sw, ph, pw, 0)
            return y[:, :, 0, :]
        return local_forward(x, w, b, sh, sw, ph, pw, 0)

    def dense(self, input_shape=None) -> np.ndarray:
        """J_{IJ,ij} = sum_ab J_{IJ,ab} delta_{i, s1 I + a} delta_{j, s2 J + b}  (eq. 4.1.4)."""
        if input_shape is not None and _input_shape(input_shape, self.nd, self.in_channels) != self.input_shape:
            raise ValueError(f"input_shape: this coupling was built for {self.input_shape}, got {input_shape!r}")
        return _dense_from_index(self.weight, _window_index(self.geo), self.geo.out_sites, self.input_shape)

    def project(self, dense_tensor, input_shape=None) -> np.ndarray:
        """Adjoint of ``dense``: the entries of a J_{IJ,ij}-shaped tensor inside each window."""
        return _project_to_index(dense_tensor, self.weight.shape, _window_index(self.geo), self.geo.out_sites,
                                 self.input_shape)

    def to_full(self) -> "FullCoupling":
        """The same coupling written as a full J_{IJ,ij}."""
        return FullCoupling(self.dense(), self.bias, input_shape=self.input_shape,
                            output_shape=self.output_shape())


def random_wiring(in_sites, out_sites, fan_in: int, seed) -> np.ndarray:
    """The sparse control's wiring: for every output site, ``fan_in`` distinct input sites drawn
    uniformly at random (flat indices), fixed by ``seed``; int64 array (prod(out_sites), fan_in)."""
    n_in, n_out = math.prod(in_sites), math.prod(out_sites)
    fan_in = as_int(fan_in, "fan_in", 1)
    if fan_in > n_in:
        raise ValueError(f"fan_in: {fan_in} input sites per output site, but the input has only {n_in} sites")
    rng = np.random.default_rng(as_int(seed, "seed", 0))
    return np.stack([np.sort(rng.choice(n_in, fan_in, replace=False)) for _ in range(n_out)]).astype(np.int64)


class SparseCoupling(Coupling):
    """Sparse, non-local coupling J_{IJ,k}: output site IJ reads K input sites index[IJ, k] chosen
    at random (``random_wiring``), as many as a window holds, with its own weights.

    The control that separates sparsity from locality: a local coupling with its windows scattered.
    weight (C_out, *out_sites, C_in, K); index (prod(out_sites), K) flat input sites; bias
    (C_out, *out_sites) or None; input_shape (C_in, *in_sites).
    """

    family = "sparse"

    def __init__(self, weight, index, bias=None, input_shape=None):
        weight = as_float_array(weight, "weight", ndim=(4, 5))
        self.nd = weight.ndim - 3
        if min(weight.shape) < 1:
            raise ValueError(f"weight: expected every axis >= 1, got shape {weight.shape}")
        if input_shape is None:
            raise TypeError("input_shape: SparseCoupling needs the input shape (C_in, *sites), got None")
        self.weight = weight
        self.out_channels, self.in_channels = weight.shape[0], weight.shape[1 + self.nd]
        self.out_sites = tuple(weight.shape[1:1 + self.nd])
        self.input_shape = _input_shape(input_shape, self.nd, self.in_channels)
        index = np.asarray(index)
        want = (math.prod(self.out_sites), weight.shape[-1])
        if index.shape != want or not np.issubdtype(index.dtype, np.integer):
            raise ValueError(f"index: expected integer input sites shaped {want}, got {index.dtype} {index.shape}")
        n_in = math.prod(self.input_shape[1:])
        if index.size and (index.min() < 0 or index.max() >= n_in):
            raise ValueError(f"index: expected flat input sites in [0, {n_in}), got [{index.min()}, {index.max()}]")
        self.index = index.astype(np.int64)
        self.bias = None if bias is None else as_float_array(bias, "bias", dtype=weight.dtype)
        if self.bias is not None and self.bias.shape != (self.out_channels,) + self.out_sites:
            raise ValueError(f"bias: expected shape {(self.out_channels,) + self.out_sites}, got {self.bias.shape}")

    def output_shape(self, input_shape=None) -> tuple[int, ...]:
        """(C_out, *out_sites); ``input_shape``, when given, must be this coupling's (or its sites)."""
        if input_shape is not None and _input_shape(input_shape, self.nd, self.in_channels) != self.input_shape:
            raise ValueError(f"input_shape: this coupling was built for {self.input_shape}, got {input_shape!r}")
        return (self.out_channels,) + self.out_sites

    def field(self, x) -> np.ndarray:
        """h_{o,IJ} = sum_{c,k} J_{o,IJ,c,k} x_{c, index[IJ, k]} + b_{o,IJ}."""
        x = _check_input(x, self.nd, self.in_channels, _common_dtype(x, self.weight))
        if x.shape[2:] != self.input_shape[1:]:
            raise ValueError(f"x: expected sites {self.input_shape[1:]} (this coupling's input_shape), got shape "
                             f"{x.shape}")
        gathered = x.reshape(x.shape[0], self.in_channels, -1)[:, :, self.index]  # (N, C_in, P_out, K)
        w = self.weight.astype(x.dtype, copy=False)
        w = w.reshape(self.out_channels, -1, self.in_channels, self.index.shape[1])
        h = np.einsum("opck,ncpk->nop", w, gathered)
        if self.bias is not None:
            h += self.bias.reshape(self.out_channels, -1).astype(x.dtype, copy=False)
        return h.reshape((x.shape[0], self.out_channels) + self.out_sites)

    def dense(self, input_shape=None) -> np.ndarray:
        """J_{IJ,ij} = sum_k J_{IJ,k} delta_{ij, index[IJ, k]}."""
        self.output_shape(input_shape)
        return _dense_from_index(self.weight, self.index, self.out_sites, self.input_shape)

    def project(self, dense_tensor, input_shape=None) -> np.ndarray:
        """Adjoint of ``dense``: the entries of a J_{IJ,ij}-shaped tensor at each site's K inputs."""
        self.output_shape(input_shape)
        return _project_to_index(dense_tensor, self.weight.shape, self.index, self.out_sites, self.input_shape)

    def to_full(self) -> "FullCoupling":
        """The same coupling written as a full J_{IJ,ij}."""
        return FullCoupling(self.dense(), self.bias, input_shape=self.input_shape, output_shape=self.output_shape())


class FullCoupling(Coupling):
    """Full coupling J_{IJ,ij}: every output site to every input site, eq. (4.1.2).

    weight (C_out, *out_sites, C_in, *in_sites); bias (C_out, *out_sites) or None.
    ``input_shape`` = (C_in, *in_sites) and/or ``output_shape`` = (C_out, *out_sites) split the axes.
    """

    family = "full"

    def __init__(self, weight, bias=None, input_shape=None, output_shape=None):
        weight = as_float_array(weight, "weight")
        if weight.ndim < 4:
            raise ValueError("weight: expected (C_out, *out_sites, C_in, *in_sites) with >= 4 axes, got shape "
                             f"{weight.shape}")
        if min(weight.shape) < 1:
            raise ValueError(f"weight: expected every axis >= 1, got shape {weight.shape}")
        if input_shape is None and output_shape is None:
            raise TypeError("input_shape/output_shape: FullCoupling needs at least one of them to split weight's axes")
        if input_shape is not None:
            input_shape = _shape_tuple(input_shape, "input_shape")
            split = weight.ndim - len(input_shape)
        if output_shape is not None:
            output_shape = _shape_tuple(output_shape, "output_shape")
        if input_shape is None:
            split = len(output_shape)
        out_shape, in_shape = weight.shape[:split], weight.shape[split:]
        if input_shape is not None and tuple(in_shape) != input_shape:
            raise ValueError(f"input_shape: expected the trailing axes of weight {weight.shape}, got {input_shape}")
        if output_shape is not None and tuple(out_shape) != tuple(output_shape):
            raise ValueError(f"output_shape: expected the leading axes of weight {weight.shape}, got {output_shape}")
        if len(out_shape) < 2 or len(in_shape) < 2:
            raise ValueError(f"weight: cannot split shape {weight.shape} into (C_out, *out_sites) and (C_in, "
                             "*in_sites)")
        self.weight = weight
        self.input_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.nd = len(in_shape) - 1
        self.in_channels, self.out_channels = in_shape[0], out_shape[0]
        self.bias = None if bias is None else as_float_array(bias, "bias", dtype=weight.dtype)
        if self.bias is not None and self.bias.shape != self.out_shape:
            raise ValueError(f"bias: expected shape {self.out_shape}, got {self.bias.shape}")

    def output_shape(self, input_shape=None) -> tuple[int, ...]:
        """(C_out, *out_sites); ``input_shape``, when given, must be this coupling's (or its sites)."""
        if input_shape is not None and _shape_tuple(input_shape, "input_shape") not in (self.input_shape,
                                                                                       self.input_shape[1:]):
            raise ValueError(f"input_shape: this coupling was built for {self.input_shape}, got {input_shape!r}")
        return self.out_shape

    def field(self, x) -> np.ndarray:
        """h_IJ = sum_ij J_{IJ,ij} x_ij + J_IJ  (eq. 4.1.2)."""
        x = _check_input(x, self.nd, self.in_channels, _common_dtype(x, self.weight))
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"x: expected samples shaped {self.input_shape}, got shape {x.shape}")
        W = self.weight.astype(x.dtype, copy=False).reshape(math.prod(self.out_shape), -1)
        h = x.reshape(x.shape[0], -1) @ W.T
        if self.bias is not None:
            h += self.bias.reshape(-1).astype(x.dtype, copy=False)
        return h.reshape((x.shape[0],) + self.out_shape)

    def dense(self, input_shape=None) -> np.ndarray:
        """The coupling tensor itself."""
        if input_shape is not None and _shape_tuple(input_shape, "input_shape") not in (self.input_shape,
                                                                                       self.input_shape[1:]):
            raise ValueError(f"input_shape: this coupling was built for {self.input_shape}, got {input_shape!r}")
        return self.weight.copy()

    def project(self, dense_tensor, input_shape=None) -> np.ndarray:
        """Nothing is tied: the identity."""
        T = as_float_array(dense_tensor, "dense_tensor")
        if T.shape != self.weight.shape:
            raise ValueError(f"dense_tensor: expected shape {self.weight.shape}, got {T.shape}")
        return T.copy()
