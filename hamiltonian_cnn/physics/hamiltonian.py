"""The Hamiltonian H_{J,x}(d) = - sum_IJ d_IJ (sum_ij J_{IJ,ij} x_ij + J_IJ)  (seed 004, eq. 4.1.2).

A coupling turns x into the field h; an ensemble (the state space of d) turns h into the
Boltzmann weight Q_J(d | x) = exp(-H) / Z. Everything a user asks of the model goes through here.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array, as_rng
from .couplings import Coupling
from .ensembles import get_ensemble


class Hamiltonian:
    """H_{J,x}(d) for a coupling (full / local / shared) and an ensemble (binary / spin / onehot)."""

    def __init__(self, coupling: Coupling, ensemble="binary"):
        if not isinstance(coupling, Coupling):
            raise TypeError("coupling: expected a SharedCoupling, LocalCoupling or FullCoupling, got "
                            f"{type(coupling).__name__}")
        self.coupling = coupling
        self.ensemble = get_ensemble(ensemble)

    def field(self, x) -> np.ndarray:
        """h_IJ = sum_ij J_{IJ,ij} x_ij + J_IJ, shape (N, C_out, *out_sites)."""
        return self.coupling.field(x)

    def energy(self, d, x) -> np.ndarray:
        """H_{J,x}(d) = -sum_IJ d_IJ h_IJ per sample (eq. 4.1.2), shape (N,)."""
        h = self.field(x)
        d = as_float_array(d, "d", dtype=h.dtype)
        if d.shape != h.shape:
            raise ValueError(f"d: expected shape {h.shape} (the field's shape for this x), got {d.shape}")
        return self.ensemble.energy(d, h)

    def log_partition(self, x) -> np.ndarray:
        """log Z_J(x) = log sum_d exp(-H_{J,x}(d)) in closed form, shape (N,)."""
        return self.ensemble.log_partition(self.field(x))

    def free_energy(self, x) -> np.ndarray:
        """F = -log Z."""
        return -self.log_partition(x)

    def marginals(self, x) -> np.ndarray:
        """<d_IJ> under Q_J(d | x) = d log Z / d h_IJ: sigmoid, tanh or softmax of the field (eq. 4.1.7)."""
        return self.ensemble.marginals(self.field(x))

    def log_prob(self, d, x) -> np.ndarray:
        """log Q_J(d | x) = -H_{J,x}(d) - log Z_J(x), shape (N,)."""
        h = self.field(x)
        d = as_float_array(d, "d", dtype=h.dtype)
        if d.shape != h.shape:
            raise ValueError(f"d: expected shape {h.shape}, got {d.shape}")
        return -self.ensemble.energy(d, h) - self.ensemble.log_partition(h)

    def sample(self, x, rng=None) -> np.ndarray:
        """Draw d ~ Q_J(d | x) (independent sites for binary/spin, one site per channel for onehot)."""
        return self.ensemble.sample(self.field(x), as_rng(rng, "rng"))

    def enumerate(self, x):
        """Exact (log Z, marginals) by visiting every configuration of d, per sample.

        Refuses more than 2**26 configurations per sample with a ValueError.
        """
        return self.ensemble.enumerate(self.field(x))

    def __repr__(self) -> str:
        return f"Hamiltonian({self.coupling!r}, ensemble={self.ensemble.name!r})"
