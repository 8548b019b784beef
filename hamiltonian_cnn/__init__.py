"""hamiltonian_cnn: convolutional networks derived from a Hamiltonian.

Start from H_{J,x}(d) = -sum_IJ d_IJ (sum_ij J_{IJ,ij} x_ij + J_IJ), restrict the couplings to a
window (local), make them the same at every site (shared = convolution), and the Boltzmann
weight of d_IJ = 1 is sigmoid(conv(x) + bias). The same energy read as a joint model of x and d is
a restricted Boltzmann machine (``RBM``). See papers/hamiltonian_cnn.md.
"""

from . import data, interop, models, nn, physics
from ._version import __version__
from .estimator import CouplingClassifier
from .physics import (
    FullCoupling,
    Hamiltonian,
    LocalCoupling,
    SharedCoupling,
    SparseCoupling,
    conv_params,
    coupling_params,
    fc_params,
    output_size,
    pool_params,
    receptive_field,
)
from .rbm import RBM

__all__ = [
    "__version__", "physics", "data", "nn", "models", "interop",
    "SharedCoupling", "LocalCoupling", "FullCoupling", "SparseCoupling", "Hamiltonian",
    "output_size", "conv_params", "pool_params", "fc_params", "coupling_params", "receptive_field",
    "CouplingClassifier", "RBM",
]
