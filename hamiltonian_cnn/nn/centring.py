"""Centring: pass d - mu forward instead of d (Montavon & Muller 2012; Melchior et al. 2016).

A coupling that reads centred units computes J (d - mu) + b = J d + (b - J mu): the same family
of functions, so the marginals are still sigmoid(h), only the geometry of the optimisation
changes. The binary ensemble's <d> = sigmoid(h) lies in (0, 1) with mean near 1/2; fed forward
as it is, every unit of the next layer sees a large common-mode input and the gradients of its
couplings share a large common component (Schraudolph 1998; LeCun et al. 1998, "Efficient
BackProp"). Subtracting the mean removes it.

mu is one offset per channel: a running mean of the channel's units over the training data
(an exponential average of batch means, the first batch taken as it is). It is state, not a
parameter: no gradient flows into it, the optimiser never sees it, it is frozen outside
``Model.fit`` (``training = False``) and saved with the model.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array, as_int, sample_shape
from .base import Layer


class Centring(Layer):
    """y = x - mu[c] for x (N, C, *sites) or (N, C); mu a running mean per channel c.

    ``rate`` is the weight of a new batch mean in the running mean (Melchior et al.'s sliding
    factor nu). In training mode (``training = True``, set by ``Model.fit``) each forward first
    subtracts mu, then moves mu towards the batch mean; otherwise mu is left as it is. So after the
    first batch (which sets mu to its own mean before subtracting it) a forward in training mode
    computes the same function as one outside it.
    """

    def __init__(self, channels, rate=0.1, dtype=np.float32):
        super().__init__(dtype)
        self.channels = as_int(channels, "channels", 1)
        if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
            raise TypeError(f"rate: expected a number in (0, 1], got {rate!r}")
        if not 0.0 < float(rate) <= 1.0:
            raise ValueError(f"rate: expected a number in (0, 1], got {rate!r}")
        self.rate = float(rate)
        self.training = False
        #: the offsets mu (C,) and how many batches have updated them
        self.state = {"mu": np.zeros(self.channels, dtype=self.dtype), "updates": np.zeros((), dtype=np.int64)}

    @property
    def offset(self) -> np.ndarray:
        """mu, one offset per channel."""
        return self.state["mu"]

    def output_shape(self, input_shape) -> tuple[int, ...]:
        shape = sample_shape(input_shape)
        if not shape or shape[0] != self.channels:
            raise ValueError(f"input_shape: Centring expected {self.channels} channel(s) first, "
                             f"got per-sample shape {tuple(input_shape)!r}")
        return shape

    def set_offset(self, mu) -> None:
        """Set mu (C,) by hand (e.g. from a data mean); counts as an update."""
        mu = as_float_array(mu, "mu", ndim=1, dtype=self.dtype)
        if mu.shape != (self.channels,):
            raise ValueError(f"mu: expected shape ({self.channels},), got {mu.shape}")
        self.state["mu"][...] = mu
        self.state["updates"][...] = max(1, int(self.state["updates"]))

    def _forward(self, x):
        mu = self.state["mu"]
        if self.training:
            axes = (0,) + tuple(range(2, x.ndim))
            batch_mean = x.mean(axis=axes, dtype=np.float64)
            if int(self.state["updates"]) == 0:
                mu[...] = batch_mean
        y = x - mu.reshape((1, -1) + (1,) * (x.ndim - 2))
        if self.training:  # after the subtraction: past the first batch, no output depends on its batch's mean
            if int(self.state["updates"]) > 0:
                mu[...] = (1.0 - self.rate) * mu + self.rate * batch_mean
            self.state["updates"] += 1
        return y, x.shape

    def _backward(self, dy, saved):
        return dy, {}

    def config(self) -> dict:
        return {"channels": self.channels, "rate": self.rate, "dtype": self._dtype_config()}
