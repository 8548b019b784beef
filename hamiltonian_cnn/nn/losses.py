"""Training objectives: maximum likelihood of the Boltzmann weights.

Training minimises KL(P_data || Q_J) = sum_d P_data(d) log P_data(d) - sum_d P_data(d) log Q_J(d | x).
The first term (minus the data entropy) does not depend on J, so minimising the KL is minimising
the cross-entropy -<log Q_J(d | x)>_data, which is what these functions return (mean over samples)
together with its gradient with respect to the field.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .._checks import as_float_array


def _labels(y, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and y.size and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise TypeError(f"y: expected integer class labels, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"y: expected {n} labels (one per sample), got shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"y: labels must lie in [0, {n_classes - 1}], got range [{y.min()}, {y.max()}]")
    return y.astype(np.int64, copy=False)


def softmax_cross_entropy(logits, y):
    """Cross-entropy of the one-hot ensemble over classes: Q(class k | x) = softmax(h)_k.

    loss = mean_n [ logsumexp(h_n) - h_{n, y_n} ]; equal to KL(P_data || Q_J) up to the data
    entropy, which does not depend on J. Returns (loss, d loss / d logits) with the gradient
    (softmax(h) - onehot(y)) / N. Stable for |h| up to 1e4 and beyond.
    """
    logits = as_float_array(logits, "logits", ndim=2)
    n, k = logits.shape
    if n == 0 or k == 0:
        raise ValueError("logits: expected (N, n_classes) with at least one sample and one class, got shape "
                         f"{logits.shape}")
    y = _labels(y, n, k)
    h = logits.astype(np.float64)  # float32 logits of order 1e4 would lose the O(1) differences
    shifted = h - h.max(axis=1, keepdims=True)  # logsumexp(h) = max + log sum exp(h - max)
    weights = np.exp(shifted)
    z = weights.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(z[:, 0]) - shifted[rows, y]))
    grad = weights / z  # softmax(h)
    grad[rows, y] -= 1.0
    grad /= n
    return loss, grad.astype(logits.dtype, copy=False)


def binary_cross_entropy(logits, targets):
    """Negative log-likelihood of the binary ensemble for per-site targets d_IJ in [0, 1].

    -log Q_J(d | x) = -sum_IJ d_IJ h_IJ + log Z = sum_IJ [softplus(h_IJ) - d_IJ h_IJ]; mean over
    samples. Gradient (sigmoid(h) - d) / N: for the coupling J_ab this is the textbook
    sum_IJ (sigmoid(h_IJ) - d_IJ) x_{s1 I + a, s2 J + b}. Returns (loss, d loss / d logits).
    """
    logits = as_float_array(logits, "logits")
    if logits.ndim < 2:
        raise ValueError(f"logits: expected (N, ...) with a sample axis, got shape {logits.shape}")
    if logits.size == 0:
        raise ValueError(f"logits: expected at least one sample and one unit, got shape {logits.shape}")
    targets = as_float_array(targets, "targets", dtype=logits.dtype)
    if targets.shape != logits.shape:
        raise ValueError(f"targets: expected shape {logits.shape} (like logits), got {targets.shape}")
    if targets.size and (targets.min() < 0 or targets.max() > 1):
        raise ValueError(f"targets: expected values in [0, 1], got range [{targets.min()}, {targets.max()}]")
    n = logits.shape[0]
    h, d = logits.astype(np.float64), targets.astype(np.float64)
    per_sample = (np.logaddexp(0.0, h) - d * h).reshape(n, -1).sum(axis=1)
    grad = (special.expit(h) - d) / n
    return float(per_sample.mean()), grad.astype(logits.dtype, copy=False)


LOSSES = {"softmax": softmax_cross_entropy, "binary": binary_cross_entropy}
