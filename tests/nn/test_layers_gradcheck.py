"""Finite-difference gradient checks, in float64, of every layer, for dx and for every parameter.

L = sum(R * layer.forward(x)) with a fixed random R; every entry of x and of each parameter is
moved by +-eps and the central difference is compared with backward's dx and grads.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from hamiltonian_cnn import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import check_gradients  # noqa: E402

ACTS = ["sigmoid", "tanh", "relu", "softplus", None]


F64 = dict(dtype=np.float64, seed=1)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("make, input_shape", [
    (lambda a: nn.SharedConv2d(3, 4, 3, activation=a, **F64), (3, 5, 5)),
    (lambda a: nn.SharedConv1d(2, 3, 3, stride=2, padding="same", dilation=2, activation=a, **F64), (2, 9)),
    (lambda a: nn.LocalConv2d(2, 3, 3, stride=2, padding=1, input_size=(5, 4), activation=a, **F64), (2, 5, 4)),
    (lambda a: nn.LocalConv1d(2, 2, 3, padding="same", input_size=7, activation=a, **F64), (2, 7)),
    (lambda a: nn.FullCoupled((2, 3, 3), (2, 2, 2), activation=a, **F64), (2, 3, 3)),
    (lambda a: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, activation=a, **F64), (3, 3, 3)),
], ids=["shared2d", "shared1d", "local2d", "local1d", "full", "transpose2d"])
def test_coupling_layers_every_activation(make, input_shape, act):
    check_gradients(make(act), input_shape)


@pytest.mark.parametrize("layer, input_shape", [
    (nn.SharedConv2d(4, 6, (3, 2), stride=(2, 1), padding=((1, 0), (0, 2)), dilation=(1, 2), groups=2,
                     activation="tanh", **F64), (4, 6, 5)),
    (nn.SharedConv2d(3, 3, 3, padding="same", groups=3, activation="softplus", **F64), (3, 4, 5)),  # depthwise
    (nn.SharedConv2d(4, 2, 1, activation="sigmoid", **F64), (4, 3, 3)),  # pointwise
    (nn.SharedConv2d(2, 2, 3, padding="full", activation=None, bias=False, **F64), (2, 3, 3)),
    (nn.SharedConv1d(4, 2, 2, stride=3, padding=(2, 1), groups=2, activation="sigmoid", **F64), (4, 8)),
    (nn.FullCoupled(7, 4, activation="softplus", **F64), (7,)),
    (nn.FullCoupled((2, 4), 3, activation=None, bias=False, **F64), (2, 4)),
    (nn.ConvTranspose2d(4, 2, (2, 3), stride=(1, 2), dilation=(2, 1), groups=2, activation=None, **F64), (4, 3, 4)),
    (nn.ConvTranspose2d(2, 3, 3, stride=1, padding=((0, 2), (1, 0)), activation="tanh", **F64), (2, 4, 4)),
    (nn.ConvTranspose1d(2, 3, 4, stride=3, padding=(1, 2), output_padding=2, activation="sigmoid", **F64), (2, 4)),
    (nn.LocalConv2d(1, 2, (2, 3), stride=(1, 2), padding=((1, 0), (0, 1)), input_size=(4, 5), bias=False,
                    activation="relu", **F64), (1, 4, 5)),
], ids=lambda v: repr(v) if isinstance(v, nn.Layer) else None)
def test_coupling_layers_geometries(layer, input_shape):
    check_gradients(layer, input_shape)


@pytest.mark.parametrize("layer, input_shape", [
    (nn.MaxPool2d(2), (2, 4, 5)),
    (nn.MaxPool2d(3, stride=2, padding=1), (2, 5, 6)),
    (nn.MaxPool1d(3, stride=1, padding=1), (3, 6)),
    (nn.AvgPool2d(3, stride=2, padding=1), (2, 5, 5)),
    (nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False), (2, 3, 4)),
    (nn.AvgPool1d(2), (3, 7)),
    (nn.GlobalAvgPool(), (3, 4, 5)),
    (nn.GlobalAvgPool(), (3, 6)),
    (nn.SpatialPyramidPool((1, 2, 3), mode="max"), (2, 5, 7)),
    (nn.SpatialPyramidPool((1, 2, 4), mode="avg"), (2, 9)),
    (nn.SpatialPyramidPool((1, 3), mode="avg"), (2, 4, 4)),
    (nn.Flatten(), (2, 3, 4)),
], ids=lambda v: repr(v) if isinstance(v, nn.Layer) else None)
def test_parameter_free_layers(layer, input_shape):
    assert layer.params == {} and layer.grads == {}
    check_gradients(layer, input_shape)
