"""State spaces of the feature variables d and their closed forms (seed 004, eq. 4.1.7).

Given the field h, the log-weight of a configuration is A(d) = -H(d) = sum_k d_k h_k. The state
space of d decides the activation:

    binary   d_k in {0, 1}            log Z = sum softplus(h_k)      <d_k> = sigmoid(h_k)
    spin     d_k in {-1, +1}          log Z = sum log(2 cosh h_k)    <d_k> = tanh(h_k)
    onehot   one site on per channel  log Z = sum_c logsumexp_s h_cs  <d_cs> = softmax_s(h_c)_s

Arrays h and d are (N, C, *sites); sums run over everything but the sample axis N.
Every closed form here is checked against ``enumerate`` (a visit to every configuration).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..kernels.enumeration import enumerate_onehot, enumerate_two_state

MAX_CONFIGURATIONS = 2 ** 26


def _per_sample_sum(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], -1).sum(axis=1)


class Ensemble:
    """A state space for d: closed forms, sampling and exact enumeration."""

    name = "ensemble"
    states: tuple

    def energy(self, d: np.ndarray, h: np.ndarray) -> np.ndarray:
        """H(d) = -sum_k d_k h_k, one value per sample."""
        self.check_configuration(d)
        return -_per_sample_sum(d * h)

    def n_configurations(self, shape) -> int:
        raise NotImplementedError

    def check_configuration(self, d: np.ndarray) -> None:
        bad = ~np.isin(d, self.states)
        if bad.any():
            raise ValueError(f"d: expected values in {set(self.states)} for the {self.name} ensemble, "
                             f"got {d[bad].ravel()[:5].tolist()}")

    def _refuse_too_many(self, shape) -> None:
        n = self.n_configurations(shape)
        if n > MAX_CONFIGURATIONS:
            raise ValueError(
                f"x: exact enumeration of the {self.name} ensemble over units {tuple(shape)} would visit "
                f"{n:.3g} configurations; at most 2**26 = {MAX_CONFIGURATIONS} are allowed"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BinaryEnsemble(Ensemble):
    """d_k in {0, 1}: the Boltzmann weight of d_k = 1 is sigmoid(h_k)."""

    name = "binary"
    states = (0, 1)

    def log_partition(self, h):
        return _per_sample_sum(np.logaddexp(0.0, h))

    def marginals(self, h):
        return special.expit(h)

    def sample(self, h, rng):
        return (rng.random(h.shape) < special.expit(h)).astype(h.dtype)

    def n_configurations(self, shape):
        return 2 ** math.prod(shape)

    def enumerate(self, h):
        self._refuse_too_many(h.shape[1:])
        log_z, prob = enumerate_two_state(h.reshape(h.shape[0], -1).astype(np.float64), 0.0, 1.0)
        return log_z, prob.reshape(h.shape)


class SpinEnsemble(Ensemble):
    """d_k in {-1, +1}: <d_k> = tanh(h_k)."""

    name = "spin"
    states = (-1, 1)

    def log_partition(self, h):
        a = np.abs(h)
        return _per_sample_sum(a + np.log1p(np.exp(-2.0 * a)))

    def marginals(self, h):
        return np.tanh(h)

    def sample(self, h, rng):
        up = rng.random(h.shape) < special.expit(2.0 * h)
        return np.where(up, 1.0, -1.0).astype(h.dtype)

    def n_configurations(self, shape):
        return 2 ** math.prod(shape)

    def enumerate(self, h):
        self._refuse_too_many(h.shape[1:])
        log_z, p_up = enumerate_two_state(h.reshape(h.shape[0], -1).astype(np.float64), -1.0, 1.0)
        return log_z, (2.0 * p_up - 1.0).reshape(h.shape)


class OneHotEnsemble(Ensemble):
    """Exactly one site on per channel (one "cat" per feature map): softmax over sites."""

    name = "onehot"
    states = (0, 1)

    @staticmethod
    def _flat(h):
        return h.reshape(h.shape[0], h.shape[1], -1)

    def log_partition(self, h):
        return special.logsumexp(self._flat(h), axis=2).sum(axis=1)

    def marginals(self, h):
        return special.softmax(self._flat(h), axis=2).reshape(h.shape)

    def sample(self, h, rng):
        p = special.softmax(self._flat(h).astype(np.float64), axis=2)
        cdf = np.cumsum(p, axis=2)
        u = rng.random(cdf.shape[:2] + (1,))
        site = np.minimum((u > cdf).sum(axis=2), cdf.shape[2] - 1)
        d = np.zeros(p.shape, h.dtype)
        np.put_along_axis(d, site[..., None], 1, axis=2)
        return d.reshape(h.shape)

    def check_configuration(self, d):
        super().check_configuration(d)
        on = self._flat(d).sum(axis=2)
        if np.any(on != 1):
            raise ValueError("d: the onehot ensemble needs exactly one site on per channel, got counts "
                             f"{np.unique(on).tolist()}")

    def n_configurations(self, shape):
        return math.prod(shape[1:]) ** shape[0]

    def enumerate(self, h):
        self._refuse_too_many(h.shape[1:])
        log_z, prob = enumerate_onehot(self._flat(h).astype(np.float64))
        return log_z, prob.reshape(h.shape)


ENSEMBLES = {"binary": BinaryEnsemble, "spin": SpinEnsemble, "onehot": OneHotEnsemble}


def get_ensemble(ensemble) -> Ensemble:
    """An :class:`Ensemble` from its name ("binary", "spin", "onehot") or an instance."""
    if isinstance(ensemble, Ensemble):
        return ensemble
    if not isinstance(ensemble, str) or ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble: expected one of {list(ENSEMBLES)}, got {ensemble!r}")
    return ENSEMBLES[ensemble]()


