"""A scikit-learn classifier around ``build`` and ``fit``: the coupling networks inside the tools
researchers already use (``clone``, pipelines, ``cross_val_score``, ``GridSearchCV``).

    clf = hc.CouplingClassifier(coupling="shared", input_shape=(1, 8, 8), epochs=20, random_state=0)
    cross_val_score(clf, X_flat, y, cv=5)

X is a 2D array (n_samples, n_features), as scikit-learn expects. Without ``input_shape`` each row is
read as a chain of n_features sites with one channel, (1, n_features); with it, each row is
reshaped to ``input_shape`` (C, L) or (C, H, W), whose product must be n_features.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .nn.architectures import build


class CouplingClassifier(ClassifierMixin, BaseEstimator):
    """A network of shared, local, sparse or full coupling blocks, trained by maximum likelihood.

    Parameters
    ----------
    coupling : {"shared", "local", "full", "sparse"}
        The family of every block (``hc.models.build``).
    input_shape : tuple, optional
        (C, L) or (C, H, W) each row of X is reshaped to; None reads a row as (1, n_features).
    channels, kernel_size, padding, head, activation, centring, init
        The architecture, as in ``hc.models.build``.
    preset : {"lenet5", "vgg", "resnet", "inception"}, optional
        A classic network (``build(preset=...)``) instead of the plain stack; ``channels`` (vgg,
        resnet, inception), ``activation``, ``centring`` and ``init`` still apply, while the window,
        padding and head are the preset's own.
    epochs, batch_size, lr, optimizer, weight_decay
        The training, as in ``Model.fit``.
    random_state : int, RandomState or None
        Seeds the initialisation and the batch order (None: a fresh draw).

    Attributes
    ----------
    classes_ : array
        The class labels seen by ``fit``.
    n_features_in_ : int
        Number of features of X.
    model_ : hc.models.Model
        The trained network.
    history_ : dict
        Its training history.
    """

    def __init__(self, coupling="shared", input_shape=None, channels=None, kernel_size=3, padding="same",
                 head="dense", activation="sigmoid", centring=None, init=None, preset=None, epochs=30,
                 batch_size=32, lr=1e-2, optimizer="adam", weight_decay=0.0, random_state=None):
        self.coupling = coupling
        self.input_shape = input_shape
        self.channels = channels
        self.kernel_size = kernel_size
        self.padding = padding
        self.head = head
        self.activation = activation
        self.centring = centring
        self.init = init
        self.preset = preset
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.random_state = random_state

    def _sample_shape(self, n_features: int) -> tuple[int, ...]:
        if self.input_shape is None:
            return (1, n_features)
        shape = tuple(self.input_shape)
        if math.prod(shape) != n_features:
            raise ValueError(f"input_shape: {shape} holds {math.prod(shape)} values per sample, but X has "
                             f"{n_features} features")
        return shape

    def _seed(self):
        if self.random_state is None:
            return None
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(2**31))
        return int(self.random_state)

    def fit(self, X, y):
        """Build the network for X's shape and the classes of y, train it; returns self."""
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y: a classifier needs at least 2 classes, got 1 class ({self.classes_[0]!r})")
        shape = self._sample_shape(X.shape[1])
        seed = self._seed()
        self.model_ = build(self.coupling, shape, len(self.classes_), channels=self.channels,
                            kernel_size=self.kernel_size, padding=self.padding, head=self.head,
                            activation=self.activation, centring=self.centring, init=self.init,
                            preset=self.preset, seed=seed)
        self.history_ = self.model_.fit(self._as_samples(X), y_index, epochs=self.epochs, batch_size=self.batch_size,
                                        lr=self.lr, optimizer=self.optimizer, weight_decay=self.weight_decay,
                                        seed=seed, progress=False)
        return self

    def _as_samples(self, X):
        return np.ascontiguousarray(X, dtype=np.float32).reshape((len(X),) + self.model_.input_shape)

    def predict_proba(self, X):
        """Q(class | x): the softmax (one-hot ensemble over classes) of the network's logits."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self.model_.predict_proba(self._as_samples(X))

    def score(self, X, y, sample_weight=None):
        """The mean accuracy of ``predict(X)`` against y (weighted by ``sample_weight`` when given)."""
        return super().score(X, y, sample_weight=sample_weight)

    def predict(self, X):
        """The most probable class of each row of X."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
