"""The energy models the data: a restricted Boltzmann machine with any of the coupling families.

The Hamiltonian H_{J,x}(d) of the classifier is read as a joint energy of the input and the
features (DESIGN.md section 1, seed 004 eq. 4.1.2):

    E(x, d) = - sum_IJ d_IJ h_IJ(x) - a.x,      h = coupling.field(x) = J x + b      (binary x)
    E(x, d) = - sum_IJ d_IJ h_IJ(x) + |x - a|^2 / 2                                 (Gaussian x)

with d_IJ in {0, 1}. Summing d out site by site (the d_IJ do not interact given x) gives the
marginal of x, p(x) = exp(-F(x)) / Z with the free energy

    F(x) = -a.x - sum_IJ softplus(h_IJ(x))            (Gaussian: |x - a|^2 / 2 - sum softplus(h))

and the two conditionals Q(d | x) = sigmoid(h) (the classifier's Boltzmann weight) and
P(x | d) = sigmoid(J^T d + a) (Gaussian: N(J^T d + a, 1)), J^T the coupling's adjoint: for the
shared coupling the transposed convolution, which gives it its probabilistic meaning. A shared
coupling makes this the convolutional RBM of Lee, Grosse, Ranganath & Ng (ICML 2009).

Training ascends the log-likelihood, whose gradient is a data term minus a model term,

    d log p(x) / dJ_{IJ,ij} = sigmoid(h_IJ(x)) x_ij - < sigmoid(h_IJ(x')) x'_ij >_{x' ~ p},

projected onto the tied entries by ``coupling.project``; the model term is estimated by
contrastive divergence (CD-k: k Gibbs sweeps started at the data) or persistent CD (PCD: chains
that carry over from one update to the next). ``log_partition`` gives log Z exactly (Gray-code
enumeration of the smaller side, the other side summed in closed form) or by annealed importance
sampling (Salakhutdinov & Murray, ICML 2008).
"""

from __future__ import annotations

import copy
import io
import json
import math
import os

import numpy as np

from ._checks import (
    DivergenceError,
    as_float_array,
    as_int,
    as_path,
    as_rng,
    choice,
    describe,
    kernel_array,
    sample_shape,
)
from ._io import atomic_write_bytes, jsonable
from .kernels.activations import NONE
from .kernels.conv import im2col_backward
from .kernels.gibbs import gibbs_conv, gibbs_dense, log_partition_binary, log_partition_gaussian
from .kernels.transpose import transpose_forward
from .nn.runtime import blas_single_thread, n_chunks, run_chunks
from .physics.couplings import Coupling, FullCoupling, LocalCoupling, SharedCoupling, SparseCoupling
from .physics.formulas import kernel_geometry

#: log_partition(method="exact") enumerates the smaller side; it refuses more than 2**MAX_EXACT_BITS states
MAX_EXACT_BITS = 26
#: Gibbs chains per block: each block draws from its own seeded generator (kernels/gibbs.py)
CHAIN_BLOCK = 16
VISIBLE = ("binary", "gaussian")
METHODS = ("cd", "pcd")


def _sigmoid(h):
    """sigmoid without overflow: exp(-log(1 + e^-h))."""
    return np.exp(-np.logaddexp(0.0, -h))


def _softplus(h):
    return np.logaddexp(0.0, h)


def _reduce_to(total, shape):
    """Sum a per-sample-shaped array over the axes that a parameter of ``shape`` ties ((C,) from (C, *sites))."""
    if total.shape == tuple(shape):
        return total
    return total.reshape(tuple(shape) + (-1,)).sum(axis=-1)


def ais_schedule(n_betas: int) -> np.ndarray:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1, denser near 1 like Salakhutdinov & Murray's
    (steps of 1e-3 up to 0.5, 1e-4 up to 0.9 and 1e-4 up to 1: 500, 4000 and 10000 of 14500 steps),
    scaled to ``n_betas`` points."""
    n = as_int(n_betas, "n_betas", 10)
    k1 = max(1, round(n * 500 / 14500))
    k2 = max(1, round(n * 4000 / 14500))
    k3 = max(1, n - 1 - k1 - k2)
    return np.concatenate([np.linspace(0.0, 0.5, k1, endpoint=False), np.linspace(0.5, 0.9, k2, endpoint=False),
                           np.linspace(0.9, 1.0, k3 + 1)])


class RBM:
    """Restricted Boltzmann machine E(x, d) = -sum_IJ d_IJ h_IJ(x) - a.x with h = coupling.field(x).

    Parameters
    ----------
    coupling : SharedCoupling, LocalCoupling, FullCoupling or SparseCoupling
        J and the hidden bias b (zeros when the coupling has none); the RBM keeps its own copy.
    input_shape : tuple
        (C, *sites) of one sample x.
    visible : "binary" or "gaussian"
        x in {0, 1}, or real x with unit variance (E has |x - a|^2 / 2 instead of -a.x).
    visible_bias : array or None
        a, shaped (C,) (one per input channel, tied over the sites) or (C, *sites) (one per site).
        None: zeros, of shape (C,) for a shared coupling, whose weights and hidden bias are the same
        at every site, so that E stays invariant under translations of x and d; of shape
        (C, *sites) for the local, full and sparse couplings, where nothing is tied and each input
        site has its own bias, like each output site.
    seed : int
        Seeds the RBM's own generator, used where a method's ``seed`` is None.
    """

    def __init__(self, coupling, input_shape, visible="binary", visible_bias=None, seed=0):
        if not isinstance(coupling, Coupling):
            raise TypeError("coupling: expected a SharedCoupling, LocalCoupling, FullCoupling or SparseCoupling, "
                            f"got {type(coupling).__name__}")
        self.visible = choice(visible, "visible", VISIBLE)
        self.input_shape = sample_shape(input_shape)
        try:
            self.hidden_shape = tuple(coupling.output_shape(self.input_shape))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"input_shape: {self.input_shape} does not fit the coupling: {exc}") from None
        self.coupling = copy.deepcopy(coupling)
        c = self.coupling
        if c.bias is None:
            c.bias = np.zeros((c.out_channels,) if isinstance(c, SharedCoupling) else self.hidden_shape, c.dtype)
        self.dtype = c.dtype
        if visible_bias is None:
            shape = (self.input_shape[0],) if isinstance(c, SharedCoupling) else self.input_shape
            self.a = np.zeros(shape, self.dtype)
        else:
            a = as_float_array(visible_bias, "visible_bias", dtype=self.dtype)
            if a.shape not in ((self.input_shape[0],), self.input_shape):
                raise ValueError(f"visible_bias: expected shape ({self.input_shape[0]},) or {self.input_shape}, "
                                 f"got {a.shape}")
            self.a = a.copy()
        self.seed = as_int(seed, "seed", 0)
        self.rng = np.random.default_rng(self.seed)
        self.chains_ = None
        self.history = None
        self._conv = isinstance(c, SharedCoupling) and not c.geometry(self.input_shape[1:]).circular

    @classmethod
    def build(cls, family, input_shape, channels, kernel_size, stride=1, padding=0, visible="binary", std=None,
              seed=0) -> RBM:
        """An RBM whose coupling ``family`` ("shared", "local" or "full") has ``channels`` hidden units per
        site of the shared coupling's output (kernel_size, stride, padding): the same hidden units
        for every family, a window per site for local, every input site for full. Weights
        N(0, std^2), std default 2 / sqrt(fan-in) (a field of order 1: small weights sit at the
        saddle J = 0 of the likelihood, which training leaves slowly); biases zero."""
        family = choice(family, "family", ("shared", "local", "full"))
        shape = sample_shape(input_shape)
        channels = as_int(channels, "channels", 1)
        rng = as_rng(seed, "seed")
        nd = len(shape) - 1
        window = (as_int(kernel_size, "kernel_size", 1),) * nd if not isinstance(kernel_size, (tuple, list)) \
            else tuple(as_int(k, "kernel_size", 1) for k in kernel_size)
        probe = SharedCoupling(np.zeros((channels, shape[0]) + window), stride=stride, padding=padding)
        try:
            hidden = tuple(probe.output_shape(shape))
        except ValueError as exc:
            raise ValueError(f"input_shape: {shape} does not fit kernel_size {kernel_size}: {exc}") from None
        if family == "shared":
            fan_in, wshape = shape[0] * math.prod(window), probe.weight.shape
        elif family == "local":
            fan_in, wshape = shape[0] * math.prod(window), hidden + (shape[0],) + window
        else:
            fan_in, wshape = math.prod(shape), hidden + shape
        std = 2.0 / math.sqrt(fan_in) if std is None else cls._positive(std, "std", allow_zero=True)
        weight = std * rng.standard_normal(wshape)
        if family == "shared":
            coupling = SharedCoupling(weight, stride=stride, padding=padding)
        elif family == "local":
            coupling = LocalCoupling(weight, stride=stride, padding=padding, input_shape=shape)
        else:
            coupling = FullCoupling(weight, input_shape=shape)
        return cls(coupling, shape, visible=visible, seed=seed if isinstance(seed, int) else 0)

    # ------------------------------------------------------------ parameters and sizes

    @property
    def params(self) -> dict:
        """{"J": the coupling's weight, "b": its bias, "a": the visible bias}: the live arrays."""
        return {"J": self.coupling.weight, "b": self.coupling.bias, "a": self.a}

    @property
    def n_visible(self) -> int:
        return math.prod(self.input_shape)

    @property
    def n_hidden(self) -> int:
        return math.prod(self.hidden_shape)

    @property
    def n_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self) -> str:
        return (f"RBM({self.coupling!r}, input_shape={self.input_shape}, visible={self.visible!r}, "
                f"visible_bias shape {self.a.shape})")

    def _a_full(self) -> np.ndarray:
        """a broadcast to (C, *sites)."""
        a = self.a.reshape(self.a.shape + (1,) * (len(self.input_shape) - self.a.ndim))
        return kernel_array(np.broadcast_to(a, self.input_shape), dtype=self.dtype)

    def _b_full(self) -> np.ndarray:
        b = self.coupling.bias
        b = b.reshape(b.shape + (1,) * (len(self.hidden_shape) - b.ndim))
        return kernel_array(np.broadcast_to(b, self.hidden_shape), dtype=self.dtype)

    def dense(self) -> np.ndarray:
        """J as a matrix (n_hidden, n_visible): ``coupling.dense`` flattened."""
        return self.coupling.dense(self.input_shape).reshape(self.n_hidden, self.n_visible)

    def _check_params(self) -> None:
        for key, value in self.params.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(f"params[{key!r}]: contains NaN or Inf; expected finite numbers")

    # ------------------------------------------------------------ validation of x and d

    def _check_x(self, x, name="x") -> np.ndarray:
        x = as_float_array(x, name, dtype=self.dtype)
        if x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape:
            raise ValueError(f"{name}: expected samples shaped (N, {', '.join(map(str, self.input_shape))}) "
                             f"(input_shape {self.input_shape}), got shape {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one sample, got shape {x.shape}")
        if self.visible == "binary":
            bad = (x != 0) & (x != 1)
            if bad.any():
                raise ValueError(f"{name}: binary visible units take the values 0 and 1, got {int(bad.sum())} "
                                 f"other value(s) such as {x[bad].flat[0]!r}; binarise x or use visible='gaussian'")
        return x

    def _check_d(self, d) -> np.ndarray:
        d = as_float_array(d, "d", dtype=self.dtype)
        if d.ndim != len(self.hidden_shape) + 1 or d.shape[1:] != self.hidden_shape:
            raise ValueError(f"d: expected hidden states shaped (N, {', '.join(map(str, self.hidden_shape))}) "
                             f"(the coupling's output for input_shape {self.input_shape}), got shape {d.shape}")
        bad = (d != 0) & (d != 1)
        if bad.any():
            raise ValueError(f"d: hidden units take the values 0 and 1, got {int(bad.sum())} other value(s)")
        return d

    # ------------------------------------------------------------ the two fields

    def _conv_args(self):
        """(x -> 4D view, weight 4D, kernel geometry) of the shared coupling for the 2D kernels (1D: H = 1)."""
        c = self.coupling
        geo = c.geometry(self.input_shape[1:])
        w = c.weight if c.weight.ndim == 4 else c.weight[:, :, None, :]
        return kernel_array(w, dtype=self.dtype), kernel_geometry(geo)

    def _as4d(self, arr):
        return arr if arr.ndim == 4 else arr[:, :, None, :]

    def field(self, x) -> np.ndarray:
        """h = J x + b, shaped (N, *hidden_shape) (the coupling's field)."""
        return self.coupling.field(self._check_x(x))

    def _adjoint(self, d, W=None) -> np.ndarray:
        """J^T d, shaped (N, *input_shape): the transposed convolution for a shared coupling, else d J with
        the dense J (``W``, computed when not given)."""
        n = d.shape[0]
        if self._conv:
            w, (sh, sw, ph, pw, dh, dw, _, _) = self._conv_args()
            height, width = (1,) + self.input_shape[1:] if len(self.input_shape) == 2 else self.input_shape[1:]
            d4 = kernel_array(self._as4d(d), dtype=self.dtype)
            z = transpose_forward(d4, w, np.zeros(self.input_shape[0], self.dtype), sh, sw, ph, pw, dh, dw,
                                  self.coupling.groups, height, width, NONE, 1)
            return z.reshape((n,) + self.input_shape)
        W = self.dense() if W is None else W
        return (d.reshape(n, -1) @ W).reshape((n,) + self.input_shape)

    # ------------------------------------------------------------ energies

    def _visible_term(self, x) -> np.ndarray:
        """-a.x (binary) or |x - a|^2 / 2 (Gaussian), per sample."""
        n = x.shape[0]
        if self.visible == "binary":
            return -(x.reshape(n, -1) @ self._a_full().reshape(-1).astype(np.float64))
        return 0.5 * ((x - self._a_full()).reshape(n, -1).astype(np.float64) ** 2).sum(axis=1)

    def energy(self, x, d) -> np.ndarray:
        """E(x, d) = -sum_IJ d_IJ h_IJ(x) - a.x (Gaussian: + |x - a|^2 / 2 instead of -a.x), shape (N,)."""
        x = self._check_x(x)
        d = self._check_d(d)
        if d.shape[0] != x.shape[0]:
            raise ValueError(f"d: expected {x.shape[0]} samples like x, got shape {d.shape}")
        h = self.coupling.field(x).astype(np.float64)
        return -(d.reshape(len(d), -1) * h.reshape(len(h), -1)).sum(axis=1) + self._visible_term(x)

    def free_energy(self, x) -> np.ndarray:
        """F(x) = -log sum_d exp(-E(x, d)) = -a.x - sum_IJ softplus(h_IJ(x)), shape (N,)."""
        x = self._check_x(x)
        h = self.coupling.field(x).astype(np.float64)
        return -_softplus(h).reshape(len(h), -1).sum(axis=1) + self._visible_term(x)

    # ------------------------------------------------------------ the conditionals

    def hidden_mean(self, x) -> np.ndarray:
        """Q(d_IJ = 1 | x) = sigmoid(h_IJ(x))."""
        return _sigmoid(self.field(x))

    def visible_mean(self, d) -> np.ndarray:
        """E[x | d]: sigmoid(J^T d + a) (binary), J^T d + a (Gaussian)."""
        d = self._check_d(d)
        z = self._adjoint(d) + self._a_full()
        return _sigmoid(z) if self.visible == "binary" else z

    def sample_hidden(self, x, rng=None) -> np.ndarray:
        """d ~ Q(d | x) = prod_IJ sigmoid(h_IJ)^d (1 - sigmoid(h_IJ))^(1 - d)."""
        rng = as_rng(self.rng if rng is None else rng, "rng")
        p = self.hidden_mean(x)
        return (rng.random(p.shape) < p).astype(self.dtype)

    def sample_visible(self, d, rng=None) -> np.ndarray:
        """x ~ P(x | d): Bernoulli(sigmoid(J^T d + a)) per site (binary) or N(J^T d + a, 1) (Gaussian)."""
        rng = as_rng(self.rng if rng is None else rng, "rng")
        mean = self.visible_mean(d)
        if self.visible == "binary":
            return (rng.random(mean.shape) < mean).astype(self.dtype)
        return (mean + rng.standard_normal(mean.shape)).astype(self.dtype)

    # ------------------------------------------------------------ block Gibbs sampling

    def _gibbs(self, x, n_steps: int, rng) -> np.ndarray:
        """``n_steps`` sweeps x -> d -> x of every chain (a fresh array), in Numba kernels: the shared
        coupling's convolution and transposed convolution, or the dense J of the other families."""
        x = np.array(x, dtype=self.dtype, copy=True, order="C")
        if n_steps == 0:
            return x
        n = x.shape[0]
        n_blocks = -(-n // CHAIN_BLOCK)
        seeds = rng.integers(0, 2**31 - 1, n_blocks).astype(np.int64)
        gaussian = self.visible == "gaussian"
        a = self._a_full()
        if self._conv:
            w, (sh, sw, ph, pw, dh, dw, oh, ow) = self._conv_args()
            b = kernel_array(self.coupling.bias, dtype=self.dtype)
            x4 = self._as4d(x)
            a4 = a if a.ndim == 3 else a[:, None, :]
            flops = 4 * n * n_steps * self.coupling.weight.size * oh * ow

            def piece(slot, t, k0, k1):
                gibbs_conv(x4[k0 * CHAIN_BLOCK:k1 * CHAIN_BLOCK], w, b, a4, sh, sw, ph, pw, dh, dw,
                           self.coupling.groups, oh, ow, gaussian, n_steps, seeds[k0:k1], CHAIN_BLOCK)
        else:
            W = kernel_array(self.dense(), dtype=self.dtype)
            b = self._b_full().reshape(-1)
            x2 = x.reshape(n, -1)
            a2 = a.reshape(-1)
            flops = 4 * n * n_steps * W.size

            def piece(slot, t, k0, k1):
                gibbs_dense(x2[k0 * CHAIN_BLOCK:k1 * CHAIN_BLOCK], W, b, a2, gaussian, n_steps, seeds[k0:k1],
                            CHAIN_BLOCK)
        with blas_single_thread(always=True):
            run_chunks(piece, n_blocks, n_chunks(flops), per_thread=1)
        return x

    def _initial_chains(self, n: int, rng) -> np.ndarray:
        """Draws from the visible biases alone (J = 0): Bernoulli(sigmoid(a)) or N(a, 1)."""
        a = self._a_full()
        if self.visible == "binary":
            return (rng.random((n,) + self.input_shape) < _sigmoid(a)).astype(self.dtype)
        return (a + rng.standard_normal((n,) + self.input_shape)).astype(self.dtype)

    def sample(self, n, n_steps=1000, seed=None, init=None) -> np.ndarray:
        """``n`` samples of x after ``n_steps`` block Gibbs sweeps of persistent chains started at ``init``
        (N = n states, e.g. data or ``chains_`` after PCD) or, by default, at draws from the visible
        biases alone. Shape (n, *input_shape)."""
        n = as_int(n, "n", 1)
        n_steps = as_int(n_steps, "n_steps", 0)
        rng = as_rng(self.rng if seed is None else seed, "seed")
        self._check_params()
        if init is None:
            x = self._initial_chains(n, rng)
        else:
            x = self._check_x(init, "init")
            if x.shape[0] != n:
                raise ValueError(f"init: expected {n} chains (n), got shape {x.shape}")
        return self._gibbs(x, n_steps, rng)

    # ------------------------------------------------------------ gradients

    def _statistics(self, x, p) -> dict:
        """sum over the batch of d(-E)/dtheta at (x, d = p): {"J": project(sum_n p_n x_n^T), "b": sum p, "a": sum x}."""
        c = self.coupling
        n = x.shape[0]
        if self._conv:
            w, (sh, sw, ph, pw, dh, dw, _, _) = self._conv_args()
            p4 = kernel_array(self._as4d(p), dtype=self.dtype)
            x4 = kernel_array(self._as4d(x), dtype=self.dtype)
            dw_sum, _ = im2col_backward(x4, w, p4, p4, sh, sw, ph, pw, dh, dw, c.groups, NONE, np.empty_like(x4))
            gJ = dw_sum.reshape(c.weight.shape)
        else:
            outer = p.reshape(n, -1).T.astype(np.float64) @ x.reshape(n, -1).astype(np.float64)
            gJ = c.project(outer.reshape(self.hidden_shape + self.input_shape), self.input_shape)
        gb = _reduce_to(p.sum(axis=0, dtype=np.float64), c.bias.shape)
        xs = x.sum(axis=0, dtype=np.float64)
        if self.visible == "gaussian":
            xs = xs - n * self._a_full()
        return {"J": np.asarray(gJ, np.float64), "b": gb, "a": _reduce_to(xs, self.a.shape)}

    def gradient(self, X, method="cd", k=1, chains=None, seed=None) -> dict:
        """An estimate of d/dtheta of the mean log-likelihood of X, keyed like ``params``: the data term
        (sigmoid(h(x)) x^T, projected onto the tied entries) minus the model term at the end of k
        Gibbs sweeps started at X (``cd``) or at ``chains`` (``pcd``; updated in place, default
        ``chains_``, started at X when there are none)."""
        X = self._check_x(X, "X")
        method = choice(method, "method", METHODS)
        k = as_int(k, "k", 1)
        rng = as_rng(self.rng if seed is None else seed, "seed")
        self._check_params()
        if method == "pcd":
            if chains is None:
                if self.chains_ is None:
                    self.chains_ = X.copy()
                chains = self.chains_
            elif not (isinstance(chains, np.ndarray) and chains.dtype == self.dtype and chains.flags.c_contiguous
                      and chains.shape[1:] == self.input_shape):
                raise ValueError(f"chains: expected a C-contiguous {self.dtype} array shaped (M, *{self.input_shape}) "
                                 f"(updated in place), got {describe(chains)}")
            start = chains
        else:
            start = X
        neg = self._gibbs(start, k, rng)
        if method == "pcd":
            chains[...] = neg
        pos = self._statistics(X, _sigmoid(self.coupling.field(X)))
        negs = self._statistics(neg, _sigmoid(self.coupling.field(neg)))
        return {key: pos[key] / len(X) - negs[key] / len(neg) for key in pos}

    # ------------------------------------------------------------ training

    def fit(self, X, epochs=50, method="pcd", k=1, lr=0.02, batch_size=5, seed=None, progress=True,
            momentum=0.5, weight_decay=1e-4, n_chains=100) -> dict:
        """Ascend the log-likelihood of X by stochastic gradient with momentum.

        Each minibatch: theta += v, v = momentum v + lr (gradient - weight_decay J) (the decay on J
        only), the gradient from ``gradient`` (CD-k, or PCD with ``n_chains`` persistent chains,
        default ``batch_size``, started at random training samples). Returns the history
        {"reconstruction": mean squared error of x against E[x | d ~ Q(d | x)], per epoch}.
        """
        X = self._check_x(X, "X")
        epochs = as_int(epochs, "epochs", 1)
        method = choice(method, "method", METHODS)
        k = as_int(k, "k", 1)
        batch_size = as_int(batch_size, "batch_size", 1)
        lr = self._positive(lr, "lr")
        momentum = self._positive(momentum, "momentum", allow_zero=True, below_one=True)
        weight_decay = self._positive(weight_decay, "weight_decay", allow_zero=True)
        rng = as_rng(self.rng if seed is None else seed, "seed")
        self._check_params()
        n = len(X)
        if method == "pcd":
            m = as_int(n_chains, "n_chains", 1)
            self.chains_ = X[rng.integers(0, n, m)].copy()
        velocity = {key: np.zeros(p.shape) for key, p in self.params.items()}
        history = {"reconstruction": []}
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs, desc="fit RBM", unit="epoch", leave=False)
        blas = blas_single_thread(always=True)  # small products: a multi-threaded BLAS only waits on its threads
        blas.__enter__()
        try:
            for _ in range(epochs):
                order = rng.permutation(n)
                errors = []
                for start in range(0, n, batch_size):
                    batch = X[order[start:start + batch_size]]
                    grads = self.gradient(batch, method, k, seed=rng)
                    for key, param in self.params.items():
                        g = grads[key] - (weight_decay * param if key == "J" else 0.0)
                        velocity[key] = momentum * velocity[key] + lr * g
                        param += velocity[key].astype(param.dtype)
                    if not all(np.all(np.isfinite(p)) for p in self.params.values()):
                        raise DivergenceError(f"lr: the parameters became NaN or Inf with lr={lr}; lower lr")
                    d = self.sample_hidden(batch, rng)
                    errors.append(float(np.mean((batch - self.visible_mean(d)) ** 2)))
                history["reconstruction"].append(float(np.mean(errors)))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(reconstruction=f"{history['reconstruction'][-1]:.4f}")
        finally:
            blas.__exit__(None, None, None)
            if bar is not None:
                bar.close()
        self.history = history
        return history

    @staticmethod
    def _positive(value, name, allow_zero=False, below_one=False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: expected a number, got {describe(value)}")
        value = float(value)
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0) and (value < 1 or not below_one)
        if not ok:
            want = "a finite number" + (" >= 0" if allow_zero else " > 0") + (" and < 1" if below_one else "")
            raise ValueError(f"{name}: expected {want}, got {value!r}")
        return value

    # ------------------------------------------------------------ the partition function

    def log_partition(self, method="exact", n_chains=100, n_betas=1000, seed=None, base=None):
        """log Z = log sum_{x, d} exp(-E(x, d)).

        ``method="exact"``: Gray-code enumeration of the smaller side (x or d; d for Gaussian x),
        the other side summed in closed form; refuses more than 2**MAX_EXACT_BITS states. Returns
        a float.

        ``method="ais"``: annealed importance sampling (Salakhutdinov & Murray 2008) from the
        base-rate model with no coupling (J = 0, b = 0, visible bias ``base``, default the RBM's own
        a; Gaussian: a), through p_beta(x) ~ exp((1 - beta) a_base.x + beta a.x) prod_IJ (1 + exp(beta
        h_IJ(x))), with ``n_chains`` runs over ``n_betas`` inverse temperatures (``ais_schedule``).
        Returns (estimate, standard error), the error of log of the mean importance weight (delta
        method).
        """
        method = choice(method, "method", ("exact", "ais"))
        self._check_params()
        if method == "exact":
            return self._log_partition_exact()
        with blas_single_thread(always=True):
            return self._log_partition_ais(as_int(n_chains, "n_chains", 2), n_betas,
                                           as_rng(self.rng if seed is None else seed, "seed"), base)

    def _log_partition_exact(self) -> float:
        V, H = self.n_visible, self.n_hidden
        side, bits = ("hidden", H) if self.visible == "gaussian" or H <= V else ("visible", V)
        if bits > MAX_EXACT_BITS:
            what = "the hidden units (Gaussian visible units are integrated, not enumerated)" \
                if self.visible == "gaussian" else f"the smaller side ({V} visible, {H} hidden units)"
            raise ValueError(f"method: exact enumeration of {what} would visit 2**{bits} states, more than the "
                             f"limit 2**{MAX_EXACT_BITS}; use method='ais'")
        W = self.dense().astype(np.float64)
        a = self._a_full().reshape(-1).astype(np.float64)
        b = self._b_full().reshape(-1).astype(np.float64)
        if self.visible == "gaussian":
            return float(0.5 * V * math.log(2 * math.pi) + log_partition_gaussian(kernel_array(W), b, a))
        if side == "visible":
            return float(log_partition_binary(kernel_array(W.T), a, b))
        return float(log_partition_binary(kernel_array(W), b, a))

    def _log_partition_ais(self, n_chains, n_betas, rng, base):
        betas = ais_schedule(n_betas)
        a = self._a_full().astype(np.float64).reshape(-1)
        if base is None or self.visible == "gaussian":
            a0 = a
        else:
            a0 = as_float_array(base, "base", dtype=np.float64)
            if a0.shape not in ((self.input_shape[0],), self.input_shape):
                raise ValueError(f"base: expected a visible bias shaped ({self.input_shape[0]},) or "
                                 f"{self.input_shape}, got {a0.shape}")
            a0 = np.broadcast_to(a0.reshape(a0.shape + (1,) * (len(self.input_shape) - a0.ndim)),
                                 self.input_shape).reshape(-1)
        V, H = self.n_visible, self.n_hidden
        W = None if self._conv else kernel_array(self.dense())
        gaussian = self.visible == "gaussian"
        if gaussian:
            log_z0 = 0.5 * V * math.log(2 * math.pi) + H * math.log(2.0)
            x = a + rng.standard_normal((n_chains, V))
        else:
            log_z0 = float(_softplus(a0).sum()) + H * math.log(2.0)
            x = (rng.random((n_chains, V)) < _sigmoid(a0)).astype(np.float64)

        def field(x):
            return self.coupling.field(x.reshape((n_chains,) + self.input_shape).astype(self.dtype)) \
                .reshape(n_chains, -1).astype(np.float64)

        def log_p(beta, x, h):
            """log p*_beta(x): the d summed out at inverse temperature beta."""
            vis = -0.5 * ((x - a) ** 2).sum(axis=1) if gaussian else x @ ((1 - beta) * a0 + beta * a)
            return vis + _softplus(beta * h).sum(axis=1)

        log_w = np.zeros(n_chains)
        h = field(x)
        for k in range(1, len(betas)):
            beta, prev = betas[k], betas[k - 1]
            log_w += log_p(beta, x, h) - log_p(prev, x, h)
            if k == len(betas) - 1:
                break
            d = (rng.random(h.shape) < _sigmoid(beta * h)).astype(self.dtype)
            z = self._adjoint(d.reshape((n_chains,) + self.hidden_shape), W).reshape(n_chains, -1)
            if gaussian:
                x = a + beta * z + rng.standard_normal(x.shape)
            else:
                x = (rng.random(x.shape) < _sigmoid((1 - beta) * a0 + beta * (z + a))).astype(np.float64)
            h = field(x)
        top = log_w.max()
        r = np.exp(log_w - top)
        estimate = log_z0 + top + math.log(r.mean())
        stderr = float(r.std(ddof=1) / (math.sqrt(n_chains) * r.mean()))
        return float(estimate), stderr

    def log_likelihood(self, X, log_z=None) -> float:
        """The mean log p(x) = -F(x) - log Z over X; ``log_z`` None: the exact log Z (small systems only;
        pass an AIS estimate otherwise)."""
        F = self.free_energy(X)
        if log_z is None:
            log_z = self.log_partition("exact")
        elif isinstance(log_z, bool) or not isinstance(log_z, (int, float, np.floating, np.integer)) \
                or not math.isfinite(float(log_z)):
            raise ValueError(f"log_z: expected a finite number (log Z, e.g. from log_partition), got {describe(log_z)}")
        return float(-F.mean() - float(log_z))

    # ------------------------------------------------------------ saving

    def config(self) -> dict:
        """Everything but the arrays: the coupling family and geometry, input_shape, visible, seed."""
        c = self.coupling
        cfg = {"family": c.family, "input_shape": list(self.input_shape), "visible": self.visible, "seed": self.seed,
               "dtype": np.dtype(self.dtype).name}
        if isinstance(c, SharedCoupling):
            cfg.update(stride=jsonable(c.stride), padding=jsonable(c.padding), dilation=jsonable(c.dilation),
                       groups=c.groups)
        elif isinstance(c, LocalCoupling):
            cfg.update(stride=jsonable(c.stride), padding=jsonable(c.padding))
        return cfg

    def save(self, path) -> str:
        """Write the configuration and J, b, a (and a sparse coupling's wiring) to one ``.npz``, atomically."""
        path = as_path(path)
        if not path.endswith(".npz"):
            path += ".npz"
        if os.path.isdir(path):
            raise ValueError(f"path: {path!r} is a directory; expected a file name")
        arrays = {"__config__": np.array(json.dumps(self.config())), **self.params}
        if isinstance(self.coupling, SparseCoupling):
            arrays["index"] = self.coupling.index
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path) -> RBM:
        """Rebuild an RBM written by ``save`` (the same energy, to the bit)."""
        path = as_path(path)
        if not os.path.exists(path) and os.path.exists(path + ".npz"):
            path += ".npz"
        if not os.path.exists(path):
            raise FileNotFoundError(f"path: no saved RBM at {path!r}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            cfg = json.loads(str(arrays["__config__"]))
            J, b, a = arrays["J"], arrays["b"], arrays["a"]
        except Exception as exc:
            raise ValueError(f"path: {path!r} is not a saved hamiltonian_cnn RBM ({exc})") from None
        shape = tuple(cfg["input_shape"])
        family = cfg.get("family")
        if family == "shared":
            coupling = SharedCoupling(J, b, stride=_tuples(cfg["stride"]), padding=_tuples(cfg["padding"]),
                                      dilation=_tuples(cfg["dilation"]), groups=cfg["groups"])
        elif family == "local":
            coupling = LocalCoupling(J, b, stride=_tuples(cfg["stride"]), padding=_tuples(cfg["padding"]),
                                     input_shape=shape)
        elif family == "full":
            coupling = FullCoupling(J, b, input_shape=shape)
        elif family == "sparse":
            coupling = SparseCoupling(J, arrays["index"], b, input_shape=shape)
        else:
            raise ValueError(f"path: {path!r} has an unknown coupling family {family!r}")
        return cls(coupling, shape, visible=cfg["visible"], visible_bias=a, seed=cfg["seed"])


def _tuples(value):
    """JSON lists back to tuples (nested), as the couplings were given them."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
