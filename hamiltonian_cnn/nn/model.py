"""A classifier: a stack of layers with a softmax (one-hot ensemble over classes) on top.

scikit-learn style: ``fit`` / ``predict`` / ``predict_proba`` / ``score``; ``save`` and ``load``
round-trip the architecture (JSON) and the couplings (npz).
"""

from __future__ import annotations

import io
import json
import math
import os
import time

import numpy as np
from scipy import special

from .._checks import DivergenceError, as_float_array, as_int, as_path, as_rng, check_dtype, choice
from .._io import atomic_write_bytes
from .losses import _labels, softmax_cross_entropy
from .optim import make_optimizer

FORMAT_VERSION = 1
SCHEDULES = ("constant", "cosine")


class Model:
    """Layers applied in order to x (N, *input_shape); the last layer's output are the class
    logits h_k, and Q(k | x) = softmax(h)_k."""

    def __init__(self, layers, input_shape, n_classes, dtype=np.float32, name="model", meta=None,
                 fit_defaults=None):
        from .base import Layer

        if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
            raise TypeError(f"layers: expected a list of layers, got {type(layers).__name__}")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}]: expected a hamiltonian_cnn.nn layer, got {type(layer).__name__}")
        self.layers = list(layers)
        if not isinstance(input_shape, (tuple, list)) or not input_shape:
            raise TypeError(f"input_shape: expected a per-sample shape (C, *sites), got {input_shape!r}")
        self.input_shape = tuple(as_int(s, "input_shape", 1) for s in input_shape)
        self.n_classes = as_int(n_classes, "n_classes", 2)
        self.dtype = check_dtype(dtype)
        self.name = name
        self.meta = dict(meta or {})
        self.fit_defaults = dict(fit_defaults or {})
        shape = self.input_shape
        self.shapes = [shape]
        for layer in self.layers:
            shape = tuple(layer.output_shape(shape))
            self.shapes.append(shape)
        if shape != (self.n_classes,):
            raise ValueError(f"layers: the last layer gives per-sample shape {shape}, expected ({self.n_classes},) "
                             "logits")

    # ------------------------------------------------------------------ bookkeeping
    @property
    def n_params(self) -> int:
        return int(sum(layer.n_params for layer in self.layers))

    @property
    def params(self):
        return [layer.params for layer in self.layers]

    def all_layers(self) -> list:
        """Every layer, the layers inside Residual and Concat containers included (each container
        followed by its own layers), in forward order."""
        from .containers import iter_layers

        return list(iter_layers(self.layers))

    @property
    def grads(self):
        return [layer.grads for layer in self.layers]

    def summary(self, file=None) -> str:
        """A compact table (printed and returned): each layer with its key hyper-parameters, output
        shape and parameter count, then the totals; at most about 100 characters wide."""
        rows = [("#", "layer", "output shape", "params"), ("", "input", str(self.input_shape), "")]
        for i, (layer, shape) in enumerate(zip(self.layers, self.shapes[1:])):
            rows.append((str(i), _brief(layer), str(shape), f"{layer.n_params:,}"))
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        widths[1] = min(widths[1], 100 - 6 - widths[0] - widths[2] - widths[3])
        lines = [f"{self.name}: {self.meta.get('coupling', '')} couplings"]
        for i, r in enumerate(rows):
            name = r[1] if len(r[1]) <= widths[1] else r[1][:widths[1] - 1] + "…"
            lines.append(f"{r[0]:>{widths[0]}}  {name:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}")
            if i == 0:
                lines.append("-" * (sum(widths) + 6))
        lines.append("-" * (sum(widths) + 6))
        lines.append(f"total: {self.n_params:,} parameters, {len(self.layers)} layers, {np.dtype(self.dtype).name}")
        text = "\n".join(lines)
        if file is not None and not callable(getattr(file, "write", None)):
            raise TypeError(f"file: expected a text stream with a write() method or None, got {type(file).__name__}")
        print(text, file=file)
        return text

    def __repr__(self) -> str:
        return f"Model({self.name!r}, {len(self.layers)} layers, n_params={self.n_params})"

    # ------------------------------------------------------------------ forward / backward
    def _check_X(self, X, name="X") -> np.ndarray:
        X = as_float_array(X, name, dtype=self.dtype)
        if X.ndim != len(self.input_shape) + 1 or X.shape[1:] != self.input_shape:
            raise ValueError(f"{name}: expected shape (N, {', '.join(map(str, self.input_shape))}), got {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one sample, got shape {X.shape}")
        return X

    def forward(self, X) -> np.ndarray:
        """Logits h (N, n_classes); keeps what ``backward`` needs.

        NaN or Inf appearing inside the stack from a finite X means the parameters have blown up
        (a diverged fit): that raises :class:`DivergenceError` (a ValueError) instead of going on.
        """
        out = X
        for i, layer in enumerate(self.layers):
            if i and not np.all(np.isfinite(out)):
                raise self._diverged(i - 1)
            out = layer.forward(out)
        if not np.all(np.isfinite(out)):
            raise self._diverged(len(self.layers) - 1)
        return out

    def _diverged(self, i) -> DivergenceError:
        return DivergenceError(f"lr: layer {i} ({type(self.layers[i]).__name__}) gave NaN or Inf from finite inputs; "
                               f"the parameters have blown up (a diverged fit: try a smaller lr or clip_norm)")

    def backward(self, dlogits) -> np.ndarray:
        """Back-propagate d loss / d logits; fills every layer's ``grads``. Returns d loss / d X."""
        grad = dlogits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def loss_and_grad(self, X, y):
        """Cross-entropy on (X, y) and the gradients of every layer (in ``grads``)."""
        X = self._check_X(X)
        logits = self.forward(X)
        loss, dlogits = softmax_cross_entropy(logits, y)
        self.backward(dlogits)
        return loss

    def decision_function(self, X, batch_size=256) -> np.ndarray:
        """Logits for X, computed in batches."""
        X = self._check_X(X)
        batch_size = as_int(batch_size, "batch_size", 1)
        return np.concatenate([self.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])

    def predict_proba(self, X, batch_size=256) -> np.ndarray:
        """Q(k | x) = softmax(h)_k, shape (N, n_classes)."""
        return special.softmax(self.decision_function(X, batch_size).astype(np.float64), axis=1)

    def predict(self, X, batch_size=256) -> np.ndarray:
        """The most probable class per sample."""
        return np.argmax(self.decision_function(X, batch_size), axis=1)

    def score(self, X, y, batch_size=256) -> float:
        """Mean accuracy."""
        X = self._check_X(X)
        y = _labels(y, len(X), self.n_classes)
        return float(np.mean(self.predict(X, batch_size) == y))

    def evaluate(self, X, y, batch_size=256):
        """(mean cross-entropy, accuracy) on (X, y)."""
        X = self._check_X(X)
        y = _labels(y, len(X), self.n_classes)
        logits = self.decision_function(X, batch_size)
        loss, _ = softmax_cross_entropy(logits, y)
        return loss, float(np.mean(np.argmax(logits, axis=1) == y))

    # ------------------------------------------------------------------ training
    def fit(self, X, y, epochs=None, batch_size=None, lr=None, optimizer=None, seed=None, progress=True,
            validation=None, weight_decay=None, clip_norm=None, momentum=0.9, schedule=None, keep_best=False,
            callback=None):
        """Minimise the cross-entropy (KL(P_data || Q_J) up to a constant) by mini-batch descent.

        Parameters
        ----------
        X : array (N, *input_shape)
            Training inputs.
        y : array of int (N,)
            Class labels in [0, n_classes).
        epochs, batch_size, lr, optimizer, weight_decay, schedule
            Default to the values given to ``build``. ``optimizer`` is "adam", "sgd", "beta_lasso"
            (sparse couplings, Neyshabur 2020) or an ``hc.nn.optim`` Optimizer instance (then its own
            lr and hyper-parameters are used); ``schedule`` "constant" or "cosine".
        seed : int, optional
            Seed of the batch order (None: a fresh draw each call).
        progress : bool
            Show a progress bar.
        validation : (X_val, y_val), optional
            Evaluated after every epoch, in inference mode (it never moves a Centring's offsets).
        clip_norm, momentum
            Clipping of the global gradient norm; momentum of "sgd".
        keep_best : bool
            Needs ``validation``: end with the parameters and offsets of the epoch with the highest
            validation accuracy (the earliest on ties), i.e. early stopping within ``epochs``.
        callback : callable, optional
            ``callback(epoch, model)`` after every epoch (1-based), in inference mode.

        Returns
        -------
        dict
            Per-epoch ``loss``, ``accuracy`` (training, during the epoch), ``val_loss`` /
            ``val_accuracy`` with validation, ``epoch_time``, ``wall_time``, and ``best_epoch`` under
            ``keep_best``. The same seed gives the same numbers.
        """
        d = self.fit_defaults
        epochs = as_int(d.get("epochs", 20) if epochs is None else epochs, "epochs", 1)
        batch_size = as_int(d.get("batch_size", 32) if batch_size is None else batch_size, "batch_size", 1)
        lr = d.get("lr", 1e-2) if lr is None else lr
        optimizer = d.get("optimizer", "adam") if optimizer is None else optimizer
        weight_decay = d.get("weight_decay", 0.0) if weight_decay is None else weight_decay
        schedule = choice(d.get("schedule", "constant") if schedule is None else schedule, "schedule", SCHEDULES)
        X = self._check_X(X)
        y = _labels(y, len(X), self.n_classes)
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise TypeError("validation: expected a pair (X_val, y_val)")
            X_val = self._check_X(validation[0], "validation[0]")
            y_val = _labels(validation[1], len(X_val), self.n_classes)
        if not isinstance(keep_best, (bool, np.bool_)):
            raise TypeError(f"keep_best: expected True or False, got {keep_best!r}")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a function callback(epoch, model), got {callback!r}")
        if keep_best and validation is None:
            raise ValueError("keep_best: needs validation=(X_val, y_val) to choose the best epoch")
        best = None  # (val accuracy, epoch, snapshot) under keep_best
        opt = make_optimizer(optimizer, lr, weight_decay=weight_decay, clip_norm=clip_norm, momentum=momentum)
        lr = opt.lr  # an Optimizer instance brings its own
        rng = as_rng(seed)
        history = {"loss": [], "accuracy": [], "epoch_time": []}
        if validation is not None:
            history["val_loss"], history["val_accuracy"] = [], []
        n = len(X)
        n_batches = math.ceil(n / batch_size)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs * n_batches, desc=f"fit {self.name}", unit="batch", leave=False)
        start = time.perf_counter()
        step, total_steps = 0, epochs * n_batches
        self.set_training(True)
        try:
            for _ in range(epochs):
                t0 = time.perf_counter()
                order = rng.permutation(n)
                total_loss, correct = 0.0, 0
                for b in range(n_batches):
                    if schedule == "cosine":
                        opt.lr = lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
                    step += 1
                    idx = order[b * batch_size:(b + 1) * batch_size]
                    logits = self.forward(X[idx])
                    loss, dlogits = softmax_cross_entropy(logits, y[idx])
                    self.backward(dlogits)
                    opt.step(self.params, self.grads)
                    total_loss += loss * len(idx)
                    correct += int(np.sum(np.argmax(logits, axis=1) == y[idx]))
                    if bar is not None:
                        bar.update(1)
                history["loss"].append(total_loss / n)
                history["accuracy"].append(correct / n)
                if validation is not None:
                    self.set_training(False)
                    vl, va = self.evaluate(X_val, y_val)
                    self.set_training(True)
                    history["val_loss"].append(vl)
                    history["val_accuracy"].append(va)
                    if keep_best and (best is None or va > best[0]):
                        best = (va, len(history["val_accuracy"]), self._snapshot())
                history["epoch_time"].append(time.perf_counter() - t0)
                if callback is not None:
                    self.set_training(False)
                    callback(len(history["loss"]), self)
                    self.set_training(True)
                if bar is not None:
                    post = {"loss": f"{history['loss'][-1]:.3f}", "acc": f"{history['accuracy'][-1]:.3f}"}
                    if validation is not None:
                        post["val_acc"] = f"{history['val_accuracy'][-1]:.3f}"
                    bar.set_postfix(post)
        finally:
            self.set_training(False)
            if bar is not None:
                bar.close()
        if best is not None:
            self._restore(best[2])
            history["best_epoch"] = best[1]
        history["wall_time"] = time.perf_counter() - start
        return history

    def _snapshot(self):
        """Copies of every layer's params and state (what ``keep_best`` restores)."""
        return [({k: v.copy() for k, v in layer.params.items()},
                 {k: v.copy() for k, v in getattr(layer, "state", {}).items()}) for layer in self.layers]

    def _restore(self, snapshot) -> None:
        """Write a ``_snapshot`` back into the live arrays (in place: optimisers hold references)."""
        for layer, (params, state) in zip(self.layers, snapshot):
            for k, v in params.items():
                layer.params[k][...] = v
            for k, v in state.items():
                layer.state[k][...] = v

    def untie(self) -> "Model":
        """A new model whose shared couplings are untied into local ones (J_{IJ,ab} = J_ab at every
        site): the identical function, pools, heads and Centring offsets preserved, trainable on."""
        from .relax import relaxed

        return relaxed(self, "local")

    def to_full(self) -> "Model":
        """A new model whose shared, local, sparse and transposed couplings are written as full ones
        (their dense J_{IJ,ij}): the identical function (d'Ascoli et al. 2019's embedded network)."""
        from .relax import relaxed

        return relaxed(self, "full")

    def set_training(self, on: bool) -> None:
        """Training mode for layers with running statistics (Centring updates its offsets only then)."""
        for layer in self.layers:
            if hasattr(layer, "training"):
                layer.training = on

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        """JSON-serialisable architecture: everything but the parameter values."""
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
            "dtype": np.dtype(self.dtype).name,
            "meta": self.meta,
            "fit_defaults": self.fit_defaults,
            "layers": [{"type": type(layer).__name__, "config": layer.config()} for layer in self.layers],
        }

    def save(self, path) -> str:
        """Write architecture and parameters to one ``.npz`` file, atomically (temp file + rename)."""
        path = as_path(path)
        if not path.endswith(".npz"):
            path += ".npz"
        if os.path.isdir(path):
            raise ValueError(f"path: {path!r} is a directory; expected a file name")
        arrays = {"__config__": np.array(json.dumps(self.config()))}
        for i, layer in enumerate(self.layers):
            for key, value in layer.params.items():
                arrays[f"layer{i}/{key}"] = value
            for key, value in getattr(layer, "state", {}).items():
                arrays[f"layer{i}/state/{key}"] = value
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())
        return path


def _brief(layer) -> str:
    """A layer's type and the hyper-parameters that differ from the defaults, in a few words."""
    cfg = layer.config()
    parts = []
    if "in_ch" in cfg:
        parts.append(f"{cfg['in_ch']}->{cfg['out_ch']}")
    elif "in_features" in cfg:
        parts.append(f"{cfg['in_features']}->{cfg['out_features']}".replace(" ", ""))
    elif "channels" in cfg:
        parts.append(f"{cfg['channels']} ch")
    elif "branches" in cfg:
        parts.append(" | ".join(f"{len(b)} layers" if b else "x" for b in cfg["branches"]))
    elif "shortcut" in cfg:
        parts.append(f"F {len(cfg['layers'])} layers + " + ("x" if cfg["shortcut"] is None
                                                           else f"{len(cfg['shortcut'])}-layer shortcut"))
    if "kernel_size" in cfg:
        parts.append("x".join(str(k) for k in np.atleast_1d(cfg["kernel_size"])))
    for key, short, default in (("stride", "stride", 1), ("dilation", "dil", 1), ("groups", "groups", 1)):
        value = cfg.get(key)
        if value is not None and any(v != default for v in np.atleast_1d(value)):
            parts.append(f"{short} {'x'.join(str(v) for v in np.atleast_1d(value))}")
    padding = cfg.get("padding")
    if padding not in (None, 0, "valid") and np.any(np.asarray(padding, dtype=object) != 0):
        parts.append(f"pad {padding}" if isinstance(padding, (str, int)) else f"pad {str(padding).replace(' ', '')}")
    if "activation" in cfg and cfg["activation"] is not None:
        parts.append(cfg["activation"])
    return f"{type(layer).__name__}({', '.join(parts)})" if parts else type(layer).__name__


def load(path) -> Model:
    """Rebuild a :class:`Model` written by ``Model.save`` (identical predictions)."""
    from .. import nn as layer_module

    path = as_path(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no saved model at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise ValueError(f"path: {path!r} is not a saved hamiltonian_cnn model ({exc})") from None
    if "__config__" not in arrays:
        raise ValueError(f"path: {path!r} has no __config__ entry; not a saved hamiltonian_cnn model")
    try:
        cfg = json.loads(str(arrays["__config__"]))
        if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
            raise ValueError("__config__ is not a dict with a list of layers")
        layers = []
        for i, spec in enumerate(cfg["layers"]):
            cls = getattr(layer_module, spec["type"], None)
            if not (isinstance(cls, type) and issubclass(cls, layer_module.Layer) and cls is not layer_module.Layer):
                raise ValueError(f"unknown layer type {spec['type']!r}")
            if not isinstance(spec["config"], dict):
                raise ValueError(f"layer {i} config is not a dict")
            layer = cls(**spec["config"])
            for key in layer.params:
                value = arrays[f"layer{i}/{key}"]
                if value.shape != layer.params[key].shape:
                    raise ValueError(f"layer {i} parameter {key!r} has shape {value.shape}, expected "
                                     f"{layer.params[key].shape}")
                if value.dtype.kind not in "fiu" or not np.all(np.isfinite(value)):
                    raise ValueError(f"layer {i} parameter {key!r} is not finite real numbers (dtype {value.dtype})")
                layer.params[key][...] = value
            for key in getattr(layer, "state", {}):
                value = arrays[f"layer{i}/state/{key}"]
                if value.shape != layer.state[key].shape or not np.all(np.isfinite(value)):
                    raise ValueError(f"layer {i} state {key!r} has shape {value.shape}, expected finite "
                                     f"numbers of shape {layer.state[key].shape}")
                layer.state[key][...] = value
            layers.append(layer)
        return Model(layers, cfg["input_shape"], cfg["n_classes"], dtype=cfg["dtype"], name=cfg["name"],
                     meta=cfg.get("meta"), fit_defaults=cfg.get("fit_defaults"))
    except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"path: {path!r} holds a corrupt model description ({exc!r})") from None
