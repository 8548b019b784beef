"""PyTorch interoperability: hand a trained network to torch, or bring a torch network here.

    module = hc.interop.to_torch(model)          # torch.nn.Sequential, same couplings, outputs the logits
    model = hc.interop.from_torch(module, (1, 8, 8))

torch is an optional extra (``pip install hamiltonian_cnn[torch]``); it is imported only when one of
these functions is called. ``to_torch`` maps every layer of the package except SpatialPyramidPool:
shared couplings become ``Conv1d/Conv2d`` (padding, including circular and uneven padding, done by
``F.pad`` in front), local couplings an unfold-based module (one window per site), sparse couplings a
gather, full couplings ``Linear``, Centring a subtraction of its frozen offsets, Residual and Concat a
sum and a concatenation of the mapped layers. ``from_torch`` maps
``Conv1d/Conv2d`` (zero padding), ``Linear``, max and average pools, ``Flatten`` and the activations
that follow a coupling (Sigmoid, Tanh, ReLU, Softplus), and refuses anything else by name.
"""

from __future__ import annotations

import numpy as np

from .nn import (
    AvgPool1d,
    AvgPool2d,
    Centring,
    Concat,
    ConvTranspose1d,
    ConvTranspose2d,
    Flatten,
    FullCoupled,
    GlobalAvgPool,
    LocalConv1d,
    LocalConv2d,
    MaxPool1d,
    MaxPool2d,
    Residual,
    SharedConv1d,
    SharedConv2d,
    SparseCoupled,
)
from .nn.model import Model
from .nn.relax import full_layer


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("hamiltonian_cnn.interop needs PyTorch: pip install 'hamiltonian_cnn[torch]'") from exc
    return torch


def _activation(name):
    torch = _torch()
    return {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU,
            "softplus": torch.nn.Softplus, None: torch.nn.Identity}[name]()


def _flat_pads(padding):
    """Per-axis (start, end) pairs -> F.pad's order: last axis first."""
    return [p for pair in reversed(padding) for p in pair]


def _modules():
    """The torch modules this file needs, defined once torch is imported."""
    torch = _torch()
    F = torch.nn.functional

    class Pad(torch.nn.Module):
        """Zero or circular padding by (start, end) pairs per spatial axis."""

        def __init__(self, padding, mode):
            super().__init__()
            self.pads, self.mode = _flat_pads(padding), mode

        def forward(self, x):
            if self.mode == "circular":
                return F.pad(x, self.pads, mode="circular")
            return F.pad(x, self.pads, value=0.0)

    class Centre(torch.nn.Module):
        """x - mu per channel (a frozen Centring)."""

        def __init__(self, mu):
            super().__init__()
            self.register_buffer("mu", torch.as_tensor(mu))

        def forward(self, x):
            return x - self.mu.reshape((1, -1) + (1,) * (x.dim() - 2))

    class Local(torch.nn.Module):
        """Locally connected coupling: unfold the (padded) input into windows, one weight per site."""

        def __init__(self, weight, bias, kernel, stride):
            super().__init__()
            nd = weight.ndim // 2 - 1  # weight (C_out, *out_sites, C_in, *window)
            out_ch, self.out_sites = weight.shape[0], tuple(weight.shape[1:1 + nd])
            self.kernel, self.stride = kernel, stride
            features = int(np.prod(weight.shape[1 + nd:]))
            self.weight = torch.nn.Parameter(torch.as_tensor(weight).reshape(out_ch, -1, features))
            self.bias = None if bias is None else torch.nn.Parameter(torch.as_tensor(bias).reshape(out_ch, -1))

        def forward(self, x):
            one_d = x.dim() == 3
            x4 = x.unsqueeze(2) if one_d else x
            cols = F.unfold(x4, self.kernel, stride=self.stride)  # (N, C k, sites)
            h = torch.einsum("osf,nfs->nos", self.weight, cols)
            if self.bias is not None:
                h = h + self.bias
            return h.reshape((x.shape[0], h.shape[1]) + self.out_sites)

    class Sparse(torch.nn.Module):
        """Sparse coupling: gather each site's K inputs, one weight per site."""

        def __init__(self, weight, bias, index, out_sites):
            super().__init__()
            shape = (weight.shape[0], len(index), weight.shape[-2], weight.shape[-1])
            self.weight = torch.nn.Parameter(torch.as_tensor(weight).reshape(shape))
            self.bias = None if bias is None else torch.nn.Parameter(torch.as_tensor(bias).reshape(shape[0], -1))
            self.register_buffer("index", torch.as_tensor(index))
            self.out_sites = tuple(out_sites)

        def forward(self, x):
            gathered = x.flatten(2)[:, :, self.index]  # (N, C, P, K)
            h = torch.einsum("opck,ncpk->nop", self.weight, gathered)
            if self.bias is not None:
                h = h + self.bias
            return h.reshape((x.shape[0], h.shape[1]) + self.out_sites)

    class Dense(torch.nn.Module):
        """Full coupling between (C, *sites) shapes: Linear on the flattened sample, reshaped."""

        def __init__(self, weight, bias, out_shape):
            super().__init__()
            dtype = torch.float64 if weight.dtype == np.float64 else torch.float32
            self.linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=dtype)
            with torch.no_grad():
                self.linear.weight.copy_(torch.as_tensor(weight))
                if bias is not None:
                    self.linear.bias.copy_(torch.as_tensor(bias))
            self.out_shape = tuple(out_shape)

        def forward(self, x):
            return self.linear(x.flatten(1)).reshape((x.shape[0],) + self.out_shape)

    class GlobalMean(torch.nn.Module):
        def forward(self, x):
            return x.flatten(2).mean(dim=2)

    class Sum(torch.nn.Module):
        """A Residual: F(x) + shortcut(x), the shortcut the identity when only F is given."""

        def __init__(self, F, shortcut=None):
            super().__init__()
            self.F, self.shortcut = F, shortcut

        def forward(self, x):
            return self.F(x) + (x if self.shortcut is None else self.shortcut(x))

    class Join(torch.nn.Module):
        """A Concat: the branches on the same x, joined along channels."""

        def __init__(self, *branches):
            super().__init__()
            self.branches = torch.nn.ModuleList(branches)

        def forward(self, x):
            return torch.cat([branch(x) for branch in self.branches], dim=1)

    return torch, Pad, Centre, Local, Sparse, Dense, GlobalMean, Sum, Join


def to_torch(model: Model):
    """The network as PyTorch modules.

    Parameters
    ----------
    model : hc.models.Model
        Any model of the package's layers except SpatialPyramidPool.

    Returns
    -------
    torch.nn.Sequential
        In eval mode, float32 or float64 like the model; it outputs the logits, so their softmax is
        ``model.predict_proba`` to rounding.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model: expected a hamiltonian_cnn Model, got {type(model).__name__}")
    torch = _torch()
    dtype = torch.float32 if np.dtype(model.dtype) == np.float32 else torch.float64
    module = _sequential(model.layers, model.shapes, dtype, "model: layer ")
    return module.to(dtype).eval()


def _sequential(layers, shapes, dtype, where):
    """torch.nn.Sequential of the modules of ``layers`` (per-sample ``shapes`` [in, after 0, ...])."""
    torch, Pad, Centre, Local, Sparse, Dense, GlobalMean, Sum, Join = _modules()
    parts = []
    for i, (layer, shape_in, shape_out) in enumerate(zip(layers, shapes[:-1], shapes[1:])):
        if isinstance(layer, (ConvTranspose1d, ConvTranspose2d)):
            layer = full_layer(layer, shape_in, shape_out)  # the adjoint coupling, written as J_{IJ,ij}
        if isinstance(layer, (SharedConv1d, SharedConv2d)):
            geo = layer.geometry(shape_in[1:])
            conv = (torch.nn.Conv1d if layer.nd == 1 else torch.nn.Conv2d)(
                layer.in_ch, layer.out_ch, layer.kernel_size, stride=layer.stride, dilation=layer.dilation,
                groups=layer.groups, bias=layer.use_bias, dtype=dtype)
            with torch.no_grad():
                conv.weight.copy_(torch.as_tensor(layer.params["J"]))
                if layer.use_bias:
                    conv.bias.copy_(torch.as_tensor(layer.params["b"]))
            parts += [Pad(geo.padding, "circular" if geo.circular else "zeros"), conv, _activation(layer.activation)]
        elif isinstance(layer, (LocalConv1d, LocalConv2d)):
            geo = layer.geo
            kernel = (1,) + layer.kernel_size if layer.nd == 1 else layer.kernel_size
            stride = (1,) + layer.stride if layer.nd == 1 else layer.stride
            parts += [Pad(geo.padding, "circular" if geo.circular else "zeros"),
                      Local(layer.params["J"], layer.params.get("b"), kernel, stride), _activation(layer.activation)]
        elif isinstance(layer, SparseCoupled):
            parts += [Sparse(layer.params["J"], layer.params.get("b"), layer.index, layer.out_sites),
                      _activation(layer.activation)]
        elif isinstance(layer, FullCoupled):
            weight = layer.params["J"].reshape(layer.out_size, layer.in_size)
            bias = layer.params["b"].reshape(-1) if layer.use_bias else None
            parts += [Dense(weight, bias, layer.out_shape), _activation(layer.activation)]
        elif isinstance(layer, (MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d)):
            geo, _ = layer._geometry(shape_in[1:])
            pads = [p for p, q in geo.padding]
            if any(p != q for p, q in geo.padding) or (isinstance(layer, (AvgPool1d, AvgPool2d))
                                                       and any(pads) and not layer.count_include_pad):
                raise ValueError(f"{where}{i} {layer!r} pads unevenly; torch pools pad evenly")
            if isinstance(layer, (MaxPool1d, MaxPool2d)):
                cls = torch.nn.MaxPool1d if layer.nd == 1 else torch.nn.MaxPool2d
                parts.append(cls(layer.kernel_size, layer.stride, padding=tuple(pads)))
            else:
                cls = torch.nn.AvgPool1d if layer.nd == 1 else torch.nn.AvgPool2d
                parts.append(cls(layer.kernel_size, layer.stride, padding=tuple(pads),
                                 count_include_pad=layer.count_include_pad))
        elif isinstance(layer, GlobalAvgPool):
            parts.append(GlobalMean())
        elif isinstance(layer, Flatten):
            parts.append(torch.nn.Flatten())
        elif isinstance(layer, Centring):
            parts.append(Centre(layer.state["mu"].copy()))
        elif isinstance(layer, (Residual, Concat)):
            inner = [_sequential(sub, sub_shapes, dtype, f"{where}{i}, {name} layer ")
                     for name, sub, sub_shapes in layer.sequence_shapes(shape_in)]
            parts.append(Sum(*inner) if isinstance(layer, Residual) else Join(*inner))
        else:
            raise ValueError(f"{where}{i} ({type(layer).__name__}) has no torch counterpart here")
    return torch.nn.Sequential(*[p for p in parts if not isinstance(p, torch.nn.Identity)])


_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "ReLU": "relu", "Softplus": "softplus"}


def from_torch(module, input_shape, dtype=np.float32) -> Model:
    """A PyTorch network as a Model with the same couplings.

    Parameters
    ----------
    module : torch.nn.Sequential
        Conv1d/Conv2d (zero padding), Linear, MaxPool/AvgPool, Flatten, and activations (Sigmoid, Tanh,
        ReLU, Softplus) right after a Conv or Linear; the last module must give the class logits.
    input_shape : tuple
        (C, L) or (C, H, W) of one sample.
    dtype : numpy float type
        The Model's parameter type.

    Returns
    -------
    hc.models.Model

    Raises
    ------
    ValueError
        For a module with no counterpart here, named in the message.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Sequential):
        raise TypeError(f"module: expected a torch.nn.Sequential, got {type(module).__name__}")
    layers, shape = [], tuple(input_shape)
    children = list(module.children())
    i = 0
    while i < len(children):
        m = children[i]
        follow = type(children[i + 1]).__name__ if i + 1 < len(children) else None
        activation = _ACTIVATIONS.get(follow)
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)):
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ValueError(f"module[{i}]: {m} pads with {m.padding_mode!r}/{m.padding!r}; only explicit zero "
                                 f"padding maps to a shared coupling")
            cls = SharedConv1d if isinstance(m, torch.nn.Conv1d) else SharedConv2d
            layer = cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                        dilation=m.dilation, groups=m.groups, activation=activation, dtype=dtype,
                        bias=m.bias is not None)
            layer.params["J"][...] = m.weight.detach().cpu().numpy()
            if m.bias is not None:
                layer.params["b"][...] = m.bias.detach().cpu().numpy()
        elif isinstance(m, torch.nn.Linear):
            layer = FullCoupled(m.in_features, m.out_features, activation=activation, dtype=dtype,
                                bias=m.bias is not None)
            layer.params["J"][...] = m.weight.detach().cpu().numpy()
            if m.bias is not None:
                layer.params["b"][...] = m.bias.detach().cpu().numpy()
        elif isinstance(m, (torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.AvgPool1d, torch.nn.AvgPool2d)):
            if getattr(m, "ceil_mode", False) or getattr(m, "dilation", 1) not in (1, (1, 1)):
                raise ValueError(f"module[{i}]: {m} uses ceil_mode or dilation, which the package's pools do not")
            activation = None
            two_d = isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d))
            if isinstance(m, (torch.nn.MaxPool1d, torch.nn.MaxPool2d)):
                layer = (MaxPool2d if two_d else MaxPool1d)(m.kernel_size, m.stride, padding=m.padding)
            else:
                layer = (AvgPool2d if two_d else AvgPool1d)(m.kernel_size, m.stride, padding=m.padding,
                                                            count_include_pad=m.count_include_pad)
        elif isinstance(m, torch.nn.Flatten):
            layer, activation = Flatten(), None
        else:
            raise ValueError(f"module[{i}]: {type(m).__name__} has no counterpart in hamiltonian_cnn "
                             f"(supported: Conv1d/Conv2d, Linear, MaxPool/AvgPool, Flatten, and an activation "
                             f"right after a Conv or Linear)")
        layers.append(layer)
        shape = tuple(layer.output_shape(shape))
        i += 2 if activation is not None else 1
    if len(shape) != 1:
        raise ValueError(f"module: its output per sample has shape {shape}; expected the class logits (n_classes,)")
    return Model(layers, tuple(input_shape), shape[0], dtype=dtype, name="from_torch", meta={"coupling": "shared"})
