"""Compile ahead (nn/ahead.py): the kernel signatures the layers announce are the ones their
backward compiles, the helper's protocol, and a cold first training step with the helper gives
the numbers a step without it gives, with the backward kernel taken from the helper's cache."""

import io
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import hamiltonian_cnn as hc
from hamiltonian_cnn import nn
from hamiltonian_cnn.nn import ahead
from hamiltonian_cnn.nn.base import array_type, int_type

LAYERS = [
    (lambda dt: nn.SharedConv2d(3, 8, 3, padding=1, dtype=dt), (4, 3, 6, 6)),          # direct
    (lambda dt: nn.SharedConv1d(3, 8, 3, stride=2, padding=1, dtype=dt), (4, 3, 9)),   # im2col
    (lambda dt: nn.LocalConv2d(3, 4, 3, padding=1, input_size=(5, 5), dtype=dt), (4, 3, 5, 5)),
    (lambda dt: nn.FullCoupled(12, 5, dtype=dt), (4, 12)),
    (lambda dt: nn.MaxPool2d(2), (4, 3, 6, 6)),
    (lambda dt: nn.AvgPool1d(2, padding=1), (4, 3, 7)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(LAYERS)))
def test_backward_kernels_are_what_backward_compiles(case, dtype):
    """Every (kernel, signature) a layer announces is a signature its backward really calls:
    otherwise the helper would compile something nobody uses."""
    make, shape = LAYERS[case]
    layer = make(dtype)
    y = layer.forward(np.random.default_rng(0).standard_normal(shape).astype(dtype))
    layer.backward(np.ones_like(y))
    kernels = layer.backward_kernels(dtype)
    assert kernels
    for kernel, sig in kernels:
        assert sig in kernel.signatures, (kernel, sig, kernel.signatures)


def test_model_lists_the_coupling_layers_kernels_first():
    model = hc.models.build("shared", (1, 8, 8), 10)
    names = [kernel.py_func.__name__ for kernel, _ in model.backward_kernels()]
    assert names[:2] == ["direct_backward", "direct_backward"]  # the two convolutions, last first
    assert set(names[2:]) == {"delta_from_output", "max_pool_backward"}


def test_worker_reports_each_job():
    """The helper's side: "start i", then "done i" or "failed i", for each job in order."""
    from hamiltonian_cnn.kernels.layout import grid_rows

    sig = (int_type(),) * 6
    jobs = [("hamiltonian_cnn.kernels.layout", "grid_rows", sig),
            ("hamiltonian_cnn.kernels.layout", "grid_rows", (array_type(np.float32, 1),))]  # wrong arity: fails
    out = io.StringIO()
    ahead._work(io.BytesIO(pickle.dumps(jobs)), out)
    assert out.getvalue().splitlines() == ["start 0", "done 0", "start 1", "failed 1"]
    assert sig in grid_rows.signatures


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(ahead.ENV_SWITCH, "0")
    assert not ahead.enabled()
    assert not ahead.request(hc.models.build("shared", (1, 8, 8), 10).backward_kernels())


STEP = """
import json, numpy as np, hamiltonian_cnn as hc
from hamiltonian_cnn.kernels.direct import direct_backward
from hamiltonian_cnn.nn import ahead
rng = np.random.default_rng(0)
X = rng.random((32, 1, 8, 8)).astype(np.float32)
y = rng.integers(0, 10, 32)
model = hc.models.build("shared", (1, 8, 8), 10)
loss = model.loss_and_grad(X, y)
helper = ahead._helper
print(json.dumps({
    "started": helper is not None,
    "done": [key[1] for key, ok in (helper.done.items() if helper else []) if ok],
    "cache_hits": sum(direct_backward.stats.cache_hits.values()),
    "loss": float(loss),
    "grads": [[g.ravel().tolist() for g in layer.values()] for layer in model.grads],
}))
"""


@pytest.mark.skipif(not ahead.enabled(), reason="compiling ahead needs two cores and Numba's JIT")
def test_cold_step_with_the_helper(tmp_path):
    """A fresh process with an empty cache: the helper compiles the convolutions' backward
    kernel, the backward loads it from the cache, and the loss and gradients are those of the
    same step run here (kernels compiled in this process)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    env.pop(ahead.ENV_SWITCH, None)
    done = subprocess.run([sys.executable, "-c", STEP], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    assert got["started"] and "direct_backward" in got["done"]
    assert got["cache_hits"] >= 1  # loaded from what the helper wrote, not compiled again

    rng = np.random.default_rng(0)
    X = rng.random((32, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 32)
    model = hc.models.build("shared", (1, 8, 8), 10)
    loss = model.loss_and_grad(X, y)
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-6)
    for theirs, ours in zip(got["grads"], model.grads):
        for a, b in zip(theirs, ours.values()):
            np.testing.assert_allclose(a, b.ravel(), rtol=1e-5, atol=1e-7)


def test_a_forked_child_does_not_wait_for_its_parents_helper(monkeypatch):
    """A forked child inherits the helper object but not its pipe: it must not wait on it."""
    from hamiltonian_cnn.kernels.layout import grid_rows

    monkeypatch.setattr(ahead, "_helper", None)
    monkeypatch.setattr(ahead, "_requested", set())
    kernels = [(grid_rows, (int_type(),) * 5 + (array_type(np.float64, 1),))]  # a signature nobody compiled
    monkeypatch.setattr(ahead, "_ready", lambda d, s: False)
    monkeypatch.setattr(ahead, "enabled", lambda: True)
    assert ahead.request(kernels)
    helper = ahead._helper
    try:
        assert ahead.pending()
        helper.pid = -1  # as seen from a child of this process
        assert not ahead.pending()
        ahead.wait(kernels)  # returns at once
    finally:
        helper.pid = os.getpid()
        helper.reader.join(timeout=120)
    assert helper.finished and helper.done == {ahead._key(*kernels[0]): False}  # that signature cannot compile


def test_fit_and_loss_and_grad_ask_once(monkeypatch):
    """The first training step asks for the backward kernels, later ones do not ask again."""
    calls = []
    monkeypatch.setattr(ahead, "request", lambda kernels: calls.append(list(kernels)) or False)
    rng = np.random.default_rng(0)
    X, y = rng.random((8, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 8)
    model = hc.models.build("shared", (1, 8, 8), 10)
    model.fit(X, y, epochs=2, batch_size=4, progress=False)
    model.loss_and_grad(X, y)
    assert len(calls) == 1 and calls[0] == model.backward_kernels()
    hc.models.build("shared", (1, 8, 8), 10).loss_and_grad(X, y)
    assert len(calls) == 2
