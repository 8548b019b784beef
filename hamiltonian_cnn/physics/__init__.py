"""The derivation as objects: couplings, the Hamiltonian, ensembles, exact enumeration, formulas."""

from .couplings import Coupling, FullCoupling, LocalCoupling, SharedCoupling, SparseCoupling, random_wiring
from .ensembles import ENSEMBLES, BinaryEnsemble, Ensemble, OneHotEnsemble, SpinEnsemble, get_ensemble
from .formulas import (
    Geometry,
    conv_params,
    coupling_params,
    fc_params,
    make_geometry,
    output_size,
    padding_pair,
    pool_params,
    receptive_field,
)
from .hamiltonian import Hamiltonian

__all__ = [
    "Coupling", "SharedCoupling", "LocalCoupling", "FullCoupling", "SparseCoupling", "random_wiring", "Hamiltonian",
    "Ensemble", "BinaryEnsemble", "SpinEnsemble", "OneHotEnsemble", "ENSEMBLES", "get_ensemble",
    "Geometry", "make_geometry", "output_size", "padding_pair", "conv_params", "pool_params",
    "fc_params", "coupling_params", "receptive_field",
]
