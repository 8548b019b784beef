"""Layers with forward/backward: the couplings of physics/ as trainable network blocks.

Every layer follows :class:`Layer`: ``forward(x)``, ``backward(dy) -> dx``, ``params`` and
``grads`` keyed alike, ``output_shape``, ``config``.
"""

from .base import Layer
from .centring import Centring
from .containers import Concat, Residual
from .conv import SharedConv1d, SharedConv2d
from .coupling import ACTIVATIONS
from .full import FullCoupled
from .local import LocalConv1d, LocalConv2d
from .pool import AvgPool1d, AvgPool2d, GlobalAvgPool, MaxPool1d, MaxPool2d, SpatialPyramidPool
from .shape import Flatten
from .sparse import SparseCoupled
from .transpose import ConvTranspose1d, ConvTranspose2d

__all__ = [
    "ACTIVATIONS", "Layer",
    "SharedConv1d", "SharedConv2d", "LocalConv1d", "LocalConv2d", "FullCoupled", "SparseCoupled",
    "ConvTranspose1d", "ConvTranspose2d",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool", "SpatialPyramidPool",
    "Flatten", "Centring", "Residual", "Concat",
]

from .losses import binary_cross_entropy, softmax_cross_entropy  # noqa: E402
from .model import Model  # noqa: E402
from .optim import SGD, Adam  # noqa: E402

__all__ += ["softmax_cross_entropy", "binary_cross_entropy", "SGD", "Adam", "Model"]
