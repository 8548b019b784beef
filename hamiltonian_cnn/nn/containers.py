"""Containers: layers made of layers, for networks that are not a flat stack.

    Residual(layers, shortcut=None):  y = F(x) + shortcut(x)      (He et al. 2016, ResNet)
    Concat(branches):                 y = [B_1(x), ..., B_m(x)]   along channels (Szegedy et al. 2015, Inception)

F, the shortcut and each branch are lists of layers applied in order. A container is itself a
:class:`Layer`: ``forward``/``backward`` (backward runs each list in reverse and sums the
gradients that reach x along every path), and ``params``/``grads``/``state`` hold the live
arrays of its layers under path keys, one prefix per list and position:

    Residual: "F/0/J", "F/0/b", "F/2/J", ..., "shortcut/0/J"
    Concat:   "branch0/0/J", ..., "branch2/1/J"   (nested containers nest the paths: "F/1/branch0/0/J")

so an optimiser updates them in place, ``Model.save`` stores them and ``load`` puts them back.
``config()`` describes the layers as ``{"type", "config"}`` entries, which the constructors
accept in place of layer objects (that is how ``load`` rebuilds a container).
"""

from __future__ import annotations

import numpy as np

from .._checks import sample_shape
from .base import Layer

SEP = "/"


def _layer_list(layers, name: str, allow_empty: bool) -> list:
    """A list of layers from a Layer, a list of Layers, or their ``{"type", "config"}`` specs."""
    from .. import nn as layer_module

    if isinstance(layers, (Layer, dict)):
        layers = [layers]
    if not isinstance(layers, (list, tuple)):
        raise TypeError(f"{name}: expected a list of hamiltonian_cnn.nn layers, got {type(layers).__name__}")
    if not layers and not allow_empty:
        raise ValueError(f"{name}: expected at least one layer, got an empty list")
    out = []
    for i, layer in enumerate(layers):
        if isinstance(layer, dict):  # a spec written by config(): rebuild it
            if set(layer) != {"type", "config"} or not isinstance(layer["config"], dict):
                raise ValueError(f"{name}[{i}]: expected a layer or a {{'type', 'config'}} spec, got keys "
                                 f"{sorted(layer)}")
            cls = getattr(layer_module, str(layer["type"]), None)
            if not (isinstance(cls, type) and issubclass(cls, Layer) and cls is not Layer):
                raise ValueError(f"{name}[{i}]: unknown layer type {layer['type']!r}")
            layer = cls(**layer["config"])
        if not isinstance(layer, Layer):
            raise TypeError(f"{name}[{i}]: expected a hamiltonian_cnn.nn layer, got {type(layer).__name__}")
        out.append(layer)
    return out


def iter_layers(layers):
    """Every layer of ``layers`` in forward order, each container followed by its own layers (F
    before the shortcut, branches in order), recursively: e.g. the norms of every coupling's
    gradient are ``[norm(l.grads["J"]) for l in iter_layers(model.layers) if "J" in l.params]``."""
    for layer in layers:
        yield layer
        if isinstance(layer, _Container):
            yield from iter_layers(inner for _, _, inner in layer.layers_by_path)


def _run_shapes(layers, shape, name):
    """Per-sample shapes through a list of layers: [shape_in, after layer 0, ...]."""
    shapes = [tuple(shape)]
    for i, layer in enumerate(layers):
        try:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        except ValueError as exc:
            raise ValueError(f"{name}[{i}] ({type(layer).__name__}) does not fit per-sample shape {shapes[-1]}: "
                             f"{exc}") from None
    return shapes


class _Container(Layer):
    """Shared machinery: named lists of layers, their params/grads/state under path keys,
    training mode passed down, and running a list forward and backward."""

    def __init__(self, sequences):
        self._sequences = [(name, list(layers)) for name, layers in sequences]
        seen = {}
        for name, layers in self._sequences:
            for i, layer in enumerate(layers):
                if id(layer) in seen:
                    raise ValueError(f"{name}[{i}]: the same layer object is also {seen[id(layer)]}; a container "
                                     f"needs a separate layer for each place (each keeps its own forward pass)")
                seen[id(layer)] = f"{name}[{i}]"
        dtypes = {np.dtype(layer.dtype).name for _, layers in self._sequences for layer in layers
                  if layer.dtype is not None}
        if len(dtypes) > 1:
            raise ValueError(f"layers: expected layers of one float dtype, got {sorted(dtypes)}")
        super().__init__(dtypes.pop() if dtypes else None)
        self.params = self._collect("params")
        self.state = self._collect("state")

    def _collect(self, attr) -> dict:
        return {SEP.join((name, str(i), key)): value
                for name, layers in self._sequences for i, layer in enumerate(layers)
                for key, value in getattr(layer, attr, {}).items()}

    @property
    def layers_by_path(self) -> list:
        """[(list name, position, layer)] for every layer of the container (not recursing)."""
        return [(name, i, layer) for name, layers in self._sequences for i, layer in enumerate(layers)]

    @property
    def training(self) -> bool:
        return any(getattr(layer, "training", False) for _, _, layer in self.layers_by_path)

    @training.setter
    def training(self, on) -> None:
        for _, _, layer in self.layers_by_path:
            if hasattr(layer, "training"):
                layer.training = on

    def sequence_shapes(self, input_shape) -> list:
        """[(list name, layers, shapes)] with the per-sample shapes through each list from ``input_shape``."""
        shape = sample_shape(input_shape)
        return [(name, layers, _run_shapes(layers, shape, name)) for name, layers in self._sequences]

    def rebuilt(self, fn, input_shape):
        """A container of the same kind whose layers are ``fn(layer, shape_in, shape_out)`` (e.g. the
        same couplings untied or written as full ones, see nn/relax.py)."""
        lists = {name: [fn(layer, si, so) for layer, si, so in zip(layers, shapes[:-1], shapes[1:])]
                 for name, layers, shapes in self.sequence_shapes(input_shape)}
        return self._from_lists(lists)

    @staticmethod
    def _forward_list(layers, x):
        for layer in layers:
            x = layer.forward(x)
        return x

    @staticmethod
    def _backward_list(layers, dy):
        for layer in reversed(layers):
            dy = layer.backward(dy)
        return dy

    def _after_backward(self) -> dict:
        return self._collect("grads")

    @staticmethod
    def _specs(layers) -> list:
        return [{"type": type(layer).__name__, "config": layer.config()} for layer in layers]


class Residual(_Container):
    """y = F(x) + shortcut(x) (He et al. 2016): F a list of layers, the shortcut the identity or a
    list of layers (a 1x1 coupling, ``activation=None``, where F changes channels or sites).

    The block learns the residual F(x) = y - x; d loss / dx is the sum of the gradient through F
    and the one through the shortcut (the identity passes dy through unchanged, which is what lets
    gradients reach the early layers of a deep stack).

    Parameters
    ----------
    layers : list of Layer
        F, applied in order.
    shortcut : list of Layer or Layer, optional
        None: the identity (F must keep the per-sample shape).
    """

    def __init__(self, layers, shortcut=None):
        F = _layer_list(layers, "layers", allow_empty=False)
        sequences = [("F", F)]
        if shortcut is not None:
            sequences.append(("shortcut", _layer_list(shortcut, "shortcut", allow_empty=False)))
        super().__init__(sequences)

    @property
    def F(self) -> list:
        return self._sequences[0][1]

    @property
    def shortcut(self):
        """The shortcut's layers, or None for the identity."""
        return self._sequences[1][1] if len(self._sequences) > 1 else None

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = sample_shape(input_shape)
        f_shape = _run_shapes(self.F, shape, "layers")[-1]
        if self.shortcut is None:
            if f_shape != shape:
                raise ValueError(
                    f"layers: Residual's F maps per-sample shape {shape} to {f_shape}, but the shortcut is the "
                    f"identity (shape {shape}); y = F(x) + x needs equal shapes: give shortcut=[a 1x1 coupling "
                    f"from {shape[0]} to {f_shape[0]} channels with the stride of F]")
            return f_shape
        s_shape = _run_shapes(self.shortcut, shape, "shortcut")[-1]
        if s_shape != f_shape:
            raise ValueError(f"shortcut: Residual's shortcut maps per-sample shape {shape} to {s_shape}, but F "
                             f"gives {f_shape}; y = F(x) + shortcut(x) needs equal shapes")
        return f_shape

    def _forward(self, x):
        y = self._forward_list(self.F, x)
        s = x if self.shortcut is None else self._forward_list(self.shortcut, x)
        return y + s, x.shape

    def _backward(self, dy, saved):
        dx = self._backward_list(self.F, dy)
        dx = dx + (dy if self.shortcut is None else self._backward_list(self.shortcut, dy))
        return dx, self._after_backward()

    def config(self) -> dict:
        return {"layers": self._specs(self.F),
                "shortcut": None if self.shortcut is None else self._specs(self.shortcut)}

    def _from_lists(self, lists):
        return Residual(lists["F"], lists.get("shortcut"))


class Concat(_Container):
    """y = [B_1(x), ..., B_m(x)] concatenated along channels (Szegedy et al. 2015's Inception
    module): every branch reads the same x, and all must end on the same sites.

    Parameters
    ----------
    branches : list of lists of Layer
        Each branch's layers, applied in order (an empty list passes x itself on).
    """

    def __init__(self, branches):
        if not isinstance(branches, (list, tuple)) or isinstance(branches, Layer):
            raise TypeError(f"branches: expected a list of branches (each a list of layers), got "
                            f"{type(branches).__name__}")
        if not branches:
            raise ValueError("branches: expected at least one branch, got an empty list")
        super().__init__([(f"branch{k}", _layer_list(b, f"branches[{k}]", allow_empty=True))
                          for k, b in enumerate(branches)])

    @property
    def branches(self) -> list:
        return [layers for _, layers in self._sequences]

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = sample_shape(input_shape)
        outs = [_run_shapes(b, shape, f"branches[{k}]")[-1] for k, b in enumerate(self.branches)]
        if len({o[1:] for o in outs}) > 1:
            listed = ", ".join(f"branch {k}: {o}" for k, o in enumerate(outs))
            raise ValueError(f"branches: Concat joins channels, so every branch must end on the same sites; from "
                             f"per-sample shape {shape} they give {listed} (pad the windows 'same' and give "
                             f"every branch the same stride)")
        return (sum(o[0] for o in outs),) + outs[0][1:]

    def _forward(self, x):
        outs = [self._forward_list(b, x) for b in self.branches]
        widths = [o.shape[1] for o in outs]
        return np.concatenate(outs, axis=1), widths

    def _backward(self, dy, widths):
        splits = np.cumsum(widths)[:-1]
        dx = None
        for branch, part in zip(self.branches, np.split(dy, splits, axis=1)):
            g = self._backward_list(branch, np.ascontiguousarray(part))
            dx = g if dx is None else dx + g
        return dx, self._after_backward()

    def config(self) -> dict:
        return {"branches": [self._specs(b) for b in self.branches]}

    def _from_lists(self, lists):
        return Concat([lists[f"branch{k}"] for k in range(len(self.branches))])
