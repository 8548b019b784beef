"""hc.CouplingClassifier: scikit-learn's own conformance suite, and the tools built on it."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import check_estimator

import hamiltonian_cnn as hc


def test_check_estimator_passes():
    check_estimator(hc.CouplingClassifier(random_state=0))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def test_cross_validation_and_grid_search_on_digits(digits):
    X, y = digits
    clf = hc.CouplingClassifier(input_shape=(1, 8, 8), epochs=8, random_state=0)
    scores = cross_val_score(clone(clf), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    search = GridSearchCV(clf, {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert search.best_params_["lr"] in (1e-3, 1e-2)
    assert search.best_estimator_.score(X, y) > 0.85
    assert set(search.best_estimator_.classes_) == set(range(10))


def test_fit_returns_self_with_the_trained_model_and_labels_of_any_kind(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    clf = hc.CouplingClassifier(coupling="local", input_shape=(1, 8, 8), epochs=3, random_state=1)
    assert clf.fit(X, names) is clf
    assert clf.model_.meta["coupling"] == "local" and clf.n_features_in_ == 64
    assert set(clf.predict(X[:20])) <= set(names)
    np.testing.assert_allclose(clf.predict_proba(X[:5]).sum(axis=1), 1.0, rtol=1e-6)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X[:50]), clf.predict_proba(X[:50]))


def test_same_random_state_same_predictions(digits):
    X, y = digits
    runs = [hc.CouplingClassifier(epochs=2, random_state=5).fit(X, y).predict_proba(X[:40]) for _ in range(2)]
    np.testing.assert_array_equal(*runs)


def test_errors_name_the_argument(digits):
    X, y = digits
    with pytest.raises(ValueError, match="input_shape"):
        hc.CouplingClassifier(input_shape=(1, 7, 7)).fit(X, y)
    with pytest.raises(ValueError, match="class"):
        hc.CouplingClassifier().fit(X[:10], np.zeros(10))
    with pytest.raises(ValueError, match="coupling"):
        hc.CouplingClassifier(coupling="tied").fit(X, y)


def test_a_preset_is_a_hyper_parameter(digits):
    X, y = digits
    clf = hc.CouplingClassifier(preset="lenet5", input_shape=(1, 8, 8), epochs=4, random_state=0)
    assert clone(clf).get_params()["preset"] == "lenet5"
    clf.fit(X[:400], y[:400])
    assert clf.model_.n_params == hc.models.build("shared", (1, 8, 8), 10, preset="lenet5").n_params
    assert clf.score(X[400:], y[400:]) > 0.5  # chance is 0.10
    with pytest.raises(ValueError, match="preset"):
        hc.CouplingClassifier(preset="alexnet", input_shape=(1, 8, 8), epochs=1).fit(X[:50], y[:50])
