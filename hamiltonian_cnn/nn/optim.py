"""Optimisers acting in place on the layers' parameter arrays: SGD (with momentum), Adam and β-LASSO.

Both take the list of parameter dicts and the matching list of gradient dicts (the ``params`` /
``grads`` of each layer), support decoupled weight decay and clipping of the global gradient norm.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import DivergenceError, choice


def _check_hyper(value, name, low=0.0, high=math.inf, open_low=False, open_high=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if (not math.isfinite(value) or value < low or value > high or (open_low and value == low)
            or (open_high and value == high)):
        bracket = "(" if open_low else "["
        close = ")" if open_high else "]"
        raise ValueError(f"{name}: expected a finite number in {bracket}{low}, {high}{close}, got {value}")
    return value


def _pairs(params, grads):
    """[((layer, key), param, grad)] after checking that ``grads`` matches ``params`` array for array."""
    for name, value in (("params", params), ("grads", grads)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name}: expected a list of dicts of arrays (one per layer), got {type(value).__name__}")
    if len(grads) != len(params):
        raise ValueError(f"grads: expected {len(params)} dict(s), one per dict of params, got {len(grads)}")
    pairs = []
    for i, (p, g) in enumerate(zip(params, grads)):
        if not isinstance(p, dict) or not isinstance(g, dict):
            which, bad = ("params", p) if not isinstance(p, dict) else ("grads", g)
            raise TypeError(f"{which}[{i}]: expected a dict of arrays, got {type(bad).__name__}")
        if set(p) != set(g):
            raise ValueError(f"grads[{i}]: expected the keys of params[{i}] {sorted(p)}, got {sorted(g)}")
        for key in p:
            value, grad = p[key], g[key]
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                raise TypeError(f"params[{i}][{key!r}]: expected a float array (updated in place), got "
                                f"{type(value).__name__ if not isinstance(value, np.ndarray) else value.dtype}")
            if not value.flags.writeable:
                raise ValueError(f"params[{i}][{key!r}]: is read-only; the optimiser updates parameters in place")
            if not isinstance(grad, np.ndarray) or grad.dtype.kind not in "fiu":
                raise TypeError(f"grads[{i}][{key!r}]: expected a real array, got "
                                f"{type(grad).__name__ if not isinstance(grad, np.ndarray) else grad.dtype}")
            if grad.shape != value.shape:
                raise ValueError(f"grads[{i}][{key!r}]: expected shape {value.shape} (like params), got {grad.shape}")
            pairs.append(((i, key), value, grad))
    return pairs


class Optimizer:
    """Base: gradient clipping and weight decay, then the rule in ``_update``."""

    def __init__(self, lr, weight_decay=0.0, clip_norm=None):
        self.lr = _check_hyper(lr, "lr", 0.0, open_low=True)
        self.weight_decay = _check_hyper(weight_decay, "weight_decay")
        self.clip_norm = None if clip_norm is None else _check_hyper(clip_norm, "clip_norm", 0.0, open_low=True)
        self.state: dict = {}
        self.t = 0

    def step(self, params, grads) -> float:
        """Update every array of ``params`` (list of dicts) in place; returns the gradient norm."""
        pairs = _pairs(params, grads)
        norm = math.sqrt(sum(float(np.vdot(g, g)) for _, _, g in pairs))
        if not math.isfinite(norm):
            bad = next(((i, key) for (i, key), _, g in pairs if not np.all(np.isfinite(g))), None)
            where = f" (NaN or Inf in grads[{bad[0]}][{bad[1]!r}])" if bad else ""
            raise DivergenceError(f"grads: gradient norm is {norm}{where}: the loss diverged "
                                  f"(try a smaller lr or clip_norm)")
        scale = 1.0
        if self.clip_norm is not None and norm > self.clip_norm:
            scale = self.clip_norm / norm
        self.t += 1
        for key, p, g in pairs:
            if self.weight_decay:
                p -= (self.lr * self.weight_decay) * p
            self._update(key, p, g * scale if scale != 1.0 else g)
        return norm

    def _update(self, key, p, g):
        raise NotImplementedError


class SGD(Optimizer):
    """p <- p - lr v, v <- momentum v + g (momentum = 0: plain gradient descent)."""

    def __init__(self, lr=0.1, momentum=0.0, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, weight_decay, clip_norm)
        self.momentum = _check_hyper(momentum, "momentum", 0.0, 1.0)

    def _update(self, key, p, g):
        if self.momentum:
            v = self.state.get(key)
            if v is None:
                v = self.state[key] = np.zeros_like(p)
            v *= self.momentum
            v += g
            g = v
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, weight_decay, clip_norm)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}")
        self.beta1 = _check_hyper(betas[0], "betas[0]", 0.0, 1.0, open_high=True)
        self.beta2 = _check_hyper(betas[1], "betas[1]", 0.0, 1.0, open_high=True)
        self.eps = _check_hyper(eps, "eps", 0.0, open_low=True)

    def _update(self, key, p, g):
        m, v = self.state.get(key, (None, None))
        if m is None:
            m, v = np.zeros_like(p), np.zeros_like(p)
            self.state[key] = (m, v)
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        step = self.lr * math.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        p -= (step * m / (np.sqrt(v) + self.eps)).astype(p.dtype, copy=False)


class BetaLasso(SGD):
    """β-LASSO (Neyshabur 2020, "Towards learning convolutions from scratch"): on the couplings J, a
    gradient step, then the L1 proximal step (soft thresholding by lr λ: J <- sign J max(|J| - lr λ, 0)),
    then hard thresholding: every |J| < β λ is set to exactly 0. Biases take the gradient step only.

    Neyshabur's algorithm writes the L1 term as a subgradient, λ sign J, inside the gradient step; the
    proximal form differs only where a step would carry a weight across zero (it stops at zero), and
    the hard threshold β λ, with β >> lr, is what makes the learned connectivity sparse.
    """

    def __init__(self, lr=0.1, lam=3e-3, beta=50.0, momentum=0.9, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, momentum=momentum, weight_decay=weight_decay, clip_norm=clip_norm)
        self.lam = _check_hyper(lam, "lam")
        self.beta = _check_hyper(beta, "beta")

    def _update(self, key, p, g):
        super()._update(key, p, g)
        if key[1] != "J":
            return
        magnitude = np.abs(p)
        magnitude -= self.lr * self.lam
        np.maximum(magnitude, 0, out=magnitude)
        magnitude[magnitude < self.beta * self.lam] = 0
        np.copysign(magnitude, p, out=p)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "beta_lasso": BetaLasso}


def make_optimizer(name, lr, weight_decay=0.0, clip_norm=None, momentum=0.9):
    """An optimiser by name: "adam", "sgd" (with ``momentum``) or "beta_lasso" (its default λ and β,
    plain gradient steps); or an :class:`Optimizer` instance, used as it is (its own lr)."""
    if isinstance(name, Optimizer):
        return name
    choice(name, "optimizer", OPTIMIZERS)
    if name == "sgd":
        return SGD(lr, momentum=momentum, weight_decay=weight_decay, clip_norm=clip_norm)
    if name == "beta_lasso":
        return BetaLasso(lr, momentum=momentum, weight_decay=weight_decay, clip_norm=clip_norm)
    return Adam(lr, weight_decay=weight_decay, clip_norm=clip_norm)
