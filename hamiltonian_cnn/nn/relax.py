"""Relaxing the ties: a network rewritten with a larger coupling family, computing the same function.

The families are nested, shared ⊂ local ⊂ full (paper §2-3), so every shared layer *is* a local
layer whose windows happen to be equal, and every local (or sparse) layer a full one whose
couplings happen to vanish outside the windows. ``untie`` and ``to_full`` write a trained model in
the larger family: the same field h for every input, so the same predictions, and from there on
the copied couplings train freely (d'Ascoli et al. 2019's embedded CNN, "eFCN").

    untie:    SharedConv J_ab           -> LocalConv J_{IJ,ab} = J_ab at every site      (SharedCoupling.untie)
    to_full:  Shared/Local/Sparse/ConvTranspose -> FullCoupled J_{IJ,ij}                 (coupling.dense)

Every other layer (pools, Centring with its offsets, Flatten, FullCoupled, ...) is copied as it is;
the layers inside a Residual or Concat are rewritten the same way.
"""

from __future__ import annotations

import numpy as np

from .containers import _Container
from .conv import _SharedConv
from .full import FullCoupled
from .local import LocalConv1d, LocalConv2d, _LocalConv
from .sparse import SparseCoupled
from .transpose import _ConvTranspose


def copy_layer(layer):
    """A new layer of the same type and config, with copies of its params and state (a container's
    layers are rebuilt from its config, so the copy shares no array with the original)."""
    new = type(layer)(**layer.config())
    for key, value in layer.params.items():
        new.params[key][...] = value
    for key, value in getattr(layer, "state", {}).items():
        new.state[key][...] = value
    return new


def untied_layer(layer, input_shape):
    """A SharedConv as the LocalConv with J_{IJ,ab} = J_ab at every output site (same field)."""
    if layer.groups != 1 or any(d != 1 for d in layer.dilation):
        raise ValueError(f"model: {layer!r} has groups={layer.groups}, dilation={layer.dilation}; a local coupling "
                         f"has neither (untie needs groups=1, dilation=1)")
    local = layer.coupling().untie(tuple(input_shape))
    cls = LocalConv1d if layer.nd == 1 else LocalConv2d
    new = cls(layer.in_ch, layer.out_ch, layer.kernel_size, stride=layer.stride, padding=layer.padding,
              activation=layer.activation, dtype=layer.dtype, bias=layer.use_bias, input_size=tuple(input_shape[1:]))
    new.params["J"][...] = local.weight
    if layer.use_bias:
        new.params["b"][...] = local.bias
    return new


def full_layer(layer, input_shape, output_shape):
    """A windowed coupling layer (shared, local, sparse or transposed) as a FullCoupled with the
    dense J_{IJ,ij} of its coupling (same field)."""
    coupling = layer.coupling()
    if isinstance(layer, _ConvTranspose):
        # the transposed layer's field is the adjoint of the convolution x -> d: J^T, axes swapped
        forward = coupling.dense(tuple(output_shape))  # (C_d, *d_sites, C_x, *x_sites)
        nd = len(input_shape) - 1
        axes = tuple(range(nd + 1, 2 * nd + 2)) + tuple(range(nd + 1))
        weight = np.transpose(forward, axes)
        bias = layer.params["b"] if layer.use_bias else None
    else:
        weight = coupling.dense(tuple(input_shape))
        bias = coupling.bias
    new = FullCoupled(tuple(input_shape), tuple(output_shape), activation=layer.activation, dtype=layer.dtype,
                      bias=layer.use_bias)
    new.params["J"][...] = weight.reshape(new.params["J"].shape)
    if layer.use_bias:
        sites = (1,) * (len(output_shape) - 1)
        new.params["b"][...] = np.broadcast_to(np.reshape(bias, (output_shape[0],) + sites if np.ndim(bias) == 1
                                                          else bias.shape), output_shape)
    return new


def relaxed_layer(layer, shape_in, shape_out, family: str):
    """One layer rewritten in ``family``; a container (Residual, Concat) has its layers rewritten."""
    if isinstance(layer, _Container):
        return layer.rebuilt(lambda inner, si, so: relaxed_layer(inner, si, so, family), shape_in)
    if family == "local" and isinstance(layer, _SharedConv):
        return untied_layer(layer, shape_in)
    if family == "local" and isinstance(layer, _ConvTranspose):
        raise ValueError(f"model: {layer!r} has no locally connected version; use to_full()")
    if family == "full" and isinstance(layer, (_SharedConv, _LocalConv, SparseCoupled, _ConvTranspose)):
        return full_layer(layer, shape_in, shape_out)
    return copy_layer(layer)


def relaxed(model, family: str):
    """The model with its coupling layers rewritten in ``family`` ("local" or "full")."""
    from .model import Model

    layers = [relaxed_layer(layer, shape_in, shape_out, family)
              for layer, shape_in, shape_out in zip(model.layers, model.shapes[:-1], model.shapes[1:])]
    meta = {**model.meta, "coupling": family, "relaxed_from": model.meta.get("coupling")}
    return Model(layers, model.input_shape, model.n_classes, dtype=model.dtype, name=f"{model.name}->{family}",
                 meta=meta, fit_defaults=model.fit_defaults)
