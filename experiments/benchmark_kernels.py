"""How fast are the kernels, against PyTorch (CPU) timed in the same run on the same inputs?

Five measurements, all float32, each the median of repeated runs after a warm-up (which also
compiles the kernels); ours and the references take turns in three rounds, so all see the same
load on a busy machine, but each runs its repeats back to back, so none is timed while another
one's thread pool is still spinning:

1. conv + sigmoid, forward + backward (dx, dJ, db), for the shapes below: ours
   (hamiltonian_cnn.nn.SharedConv1d/2d, validation included) against torch.nn.functional.conv
   + sigmoid with autograd, and a plain numpy im2col version for scale; GFLOP/s of ours
   (3 x the multiply-adds of the field x 2: forward, dJ and dx).
2. The locally connected layer (LocalConv2d/1d, forward + backward) against a numpy reference
   built from einsum-free batched matrix products (sliding windows, one np.matmul per site
   batch, col2im by window offset).
3. One training step of the default shared model on digits, hc.models.build("shared", (1, 8, 8),
   10) with batch 32: forward, softmax cross-entropy, backward, Adam; against the same network
   in torch (Conv2d + Sigmoid + MaxPool2d + centring twice, Flatten, Linear; F.cross_entropy;
   torch.optim.Adam). Then whole training runs (the fit defaults: 30 epochs of batches of 32) of
   the default shared model on digits and on MNIST-1D against that torch twin, with the same
   weights, batches and optimiser: the figure users feel.
4. Start-up: a fresh Python with an empty Numba cache (a new NUMBA_CACHE_DIR) times
   ``import hamiltonian_cnn`` + building the model + the first training step (cold), then a
   second fresh Python with that same cache (warm); and every layer's first forward + backward
   in a fresh Python with an empty cache.
5. The machine's scale: numpy's float32 matrix product (1024 x 1024, all threads), GFLOP/s.
6. Block Gibbs sweeps per second of a shared RBM (hc.RBM, 16 filters 5x5 on 28x28 binary inputs,
   64 chains, 10 sweeps per call through ``rbm.sample``, validation included) against the same
   sweep in torch (conv2d + sigmoid + bernoulli + conv_transpose2d + sigmoid + bernoulli, no
   autograd); the two conditionals' means are compared with torch's (target ratio >= 1.0).

Ratios are ours / reference: <= 1 means ours is at least as fast. The outputs and gradients are
compared with the references too, so a fast wrong kernel cannot pass unnoticed. Timing is never
a test.

    python experiments/benchmark_kernels.py            # full run (a few minutes)
    python experiments/benchmark_kernels.py --quick    # fewer repeats, start-up without per-layer cold starts
    python experiments/benchmark_kernels.py --only gibbs   # just the RBM's Gibbs sweeps (6.)

Writes results.json (numbers + provenance) to --out, atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

# (label, N, C_in, C_out, sites, kernel, padding, target ratio ours / torch)
SHAPES = [
    ("LeNet conv1", 64, 1, 6, (28, 28), 5, 0, 1.2),
    ("LeNet conv2", 64, 6, 16, (12, 12), 5, 0, 1.2),
    ("digits 8x8", 128, 1, 16, (8, 8), 3, 1, 1.2),
    ("CIFAR-like", 32, 32, 64, (32, 32), 3, 1, 1.5),
    ("1D chain", 100, 25, 25, (40,), 5, 2, 1.2),
]
# locally connected layers: (label, N, C_in, C_out, sites, kernel, padding); target: >= 3x faster
LOCAL_SHAPES = [
    ("digits 8x8", 128, 1, 16, (8, 8), 3, 1),
    ("LeNet conv2", 64, 6, 16, (12, 12), 5, 0),
    ("1D chain", 100, 25, 25, (40,), 5, 2),
]
STEP_BATCH = 32  # the default batch size of fit()


# ---------------------------------------------------------------- numpy im2col reference


def _sigmoid(h):
    e = np.exp(-np.abs(h))
    return np.where(h >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(h.dtype, copy=False)


def numpy_conv_sigmoid(x, w, b, pad, dy):
    """Forward + backward of y = sigmoid(conv(x, w) + b), stride 1, NC(H)W, plain numpy im2col."""
    nd = x.ndim - 2
    k = w.shape[2:]
    pads = ((0, 0), (0, 0)) + ((pad, pad),) * nd
    xp = np.pad(x, pads)
    win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=tuple(range(2, 2 + nd)))
    # win (N, C, *out, *k) -> cols (N * out, C * k)
    n, c = x.shape[:2]
    out = win.shape[2:2 + nd]
    order = (0,) + tuple(range(2, 2 + nd)) + (1,) + tuple(range(2 + nd, 2 + 2 * nd))
    cols = np.ascontiguousarray(win.transpose(order)).reshape(n * int(np.prod(out)), -1)
    w2 = w.reshape(w.shape[0], -1)
    h = cols @ w2.T + b
    y2 = _sigmoid(h)
    y = np.moveaxis(y2.reshape((n,) + out + (w.shape[0],)), -1, 1)
    # backward
    dh = (np.moveaxis(dy, 1, -1).reshape(y2.shape) * y2 * (1 - y2))
    dw = (dh.T @ cols).reshape(w.shape)
    db = dh.sum(axis=0)
    dcols = (dh @ w2).reshape((n,) + out + (c,) + k)
    dxp = np.zeros_like(xp)
    for offset in np.ndindex(*k):
        target = (slice(None), slice(None)) + tuple(slice(o, o + s) for o, s in zip(offset, out))
        src = dcols[(Ellipsis,) + offset]  # (N, *out, C)
        dxp[target] += np.moveaxis(src, -1, 1)
    dx = dxp[(slice(None), slice(None)) + tuple(slice(pad, pad + s) for s in x.shape[2:])]
    return y, dx, dw, db


def numpy_local_sigmoid(x, w, b, pad, dy):
    """Forward + backward of y = sigmoid(local(x, J) + b), stride 1, by batched matrix products.

    w (O, *out, C, *k), b (O, *out). The windows of every sample at output site p form a (N, K)
    matrix (K = C prod(k)); the field at p is one product with that site's (K, O) weights, all
    sites at once with np.matmul over a (P, N, K) stack; the gradients are two more stacked
    products and col2im by window offset."""
    nd = x.ndim - 2
    k = w.shape[-nd:]
    n, c = x.shape[:2]
    n_out = w.shape[0]
    out = w.shape[1:1 + nd]
    n_sites = int(np.prod(out))
    pads = ((0, 0), (0, 0)) + ((pad, pad),) * nd
    xp = np.pad(x, pads)
    win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=tuple(range(2, 2 + nd)))  # (N, C, *out, *k)
    order = tuple(range(2, 2 + nd)) + (0, 1) + tuple(range(2 + nd, 2 + 2 * nd))
    cols = np.ascontiguousarray(win.transpose(order)).reshape(n_sites, n, -1)  # (P, N, K)
    w3 = np.ascontiguousarray(np.moveaxis(w.reshape(n_out, n_sites, -1), 1, 0))  # (P, O, K)
    b2 = b.reshape(n_out, n_sites).T[:, None, :]  # (P, 1, O)
    y3 = _sigmoid(np.matmul(cols, w3.transpose(0, 2, 1)) + b2)  # (P, N, O)
    y = np.moveaxis(y3, 0, -1).reshape((n, n_out) + out)
    dh = np.moveaxis(dy.reshape(n, n_out, n_sites), -1, 0) * y3 * (1 - y3)  # (P, N, O)
    dw = np.moveaxis(np.matmul(dh.transpose(0, 2, 1), cols), 0, 1).reshape(w.shape)
    db = dh.sum(axis=1).T.reshape(b.shape)
    dcols = np.matmul(dh, w3).reshape(out + (n, c) + k)  # (*out, N, C, *k)
    dxp = np.zeros_like(xp)
    for offset in np.ndindex(*k):
        target = (slice(None), slice(None)) + tuple(slice(o, o + s) for o, s in zip(offset, out))
        dxp[target] += np.moveaxis(dcols[(Ellipsis,) + offset], tuple(range(nd)), tuple(range(2, 2 + nd)))
    dx = dxp[(slice(None), slice(None)) + tuple(slice(pad, pad + s) for s in x.shape[2:])]
    return y, dx, dw, db


# ---------------------------------------------------------------- runners


def run_ours(layer, x, dy):
    y = layer.forward(x)
    dx = layer.backward(dy)
    return y, dx, layer.grads["J"], layer.grads["b"]


def make_torch_runner(torch, x, w, b, pad):
    nd = x.ndim - 2
    conv = torch.nn.functional.conv1d if nd == 1 else torch.nn.functional.conv2d
    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(w.copy()).requires_grad_(True)
    bt = torch.from_numpy(b.copy()).requires_grad_(True)
    dyt = None

    def run(dy):
        nonlocal dyt
        if dyt is None or dyt.shape != dy.shape:
            dyt = torch.from_numpy(dy)
        for t in (xt, wt, bt):
            t.grad = None
        y = torch.sigmoid(conv(xt, wt, bt, padding=pad))
        y.backward(dyt)
        return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()

    return run


def paired_ms(fns, repeats, warmup=2, best=None, rounds=3):
    """Median milliseconds of each function over ``repeats`` runs, timed in ``rounds`` rounds: in each
    round every function runs its share of the repeats back to back (after at least ``warmup``
    untimed runs and 0.1 s), so that a change of load on a busy machine hits all of them alike, while no function
    is timed right after another one's thread pool (OpenBLAS and OpenMP threads keep spinning for
    a while after a call, and would slow down whatever runs next). ``best``: a list that receives
    each function's fastest run too."""
    times = [[] for _ in fns]
    for r in range(rounds):
        share = repeats // rounds + (1 if r < repeats % rounds else 0)
        for fn, bucket in zip(fns, times):
            time.sleep(0.2)  # let the spinning worker threads of the previous one go to sleep
            start, runs = time.perf_counter(), 0
            while runs < warmup or time.perf_counter() - start < 0.1:  # and its own caches fill again
                fn()
                runs += 1
            for _ in range(share):
                t0 = time.perf_counter()
                fn()
                bucket.append((time.perf_counter() - t0) * 1e3)
    if best is not None:
        best[:] = [min(bucket) for bucket in times]
    return [statistics.median(bucket) for bucket in times]


def max_rel_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(1e-30, np.abs(b).max()))


def sgemm_gflops(repeats, size=1024):
    """numpy float32 (size x size) @ (size x size), median over repeats, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(np.float32)
    c = rng.standard_normal((size, size)).astype(np.float32)
    (ms,) = paired_ms([lambda: a @ c], max(5, repeats))
    return 2 * size ** 3 / (ms * 1e-3) / 1e9


def torch_shared_model(torch, model):
    """A default shared model (1D or 2D, centred sigmoid blocks) as a torch network, starting from
    the same weights and offsets; its Centring twin updates its offsets like ours."""
    import torch.nn as tnn

    from hamiltonian_cnn import nn

    class Centring(tnn.Module):
        """y = x - mu[c]; in training mode mu starts at the first batch's mean and then moves by
        ``rate`` towards each batch's mean, after the subtraction (hc.nn.Centring)."""

        def __init__(self, layer):
            super().__init__()
            self.rate = layer.rate
            self.register_buffer("mu", torch.from_numpy(layer.state["mu"].copy()))
            self.updates = int(layer.state["updates"])

        def forward(self, x):
            shape = (1, -1) + (1,) * (x.dim() - 2)
            if self.training:
                with torch.no_grad():
                    mean = x.mean(dim=[0] + list(range(2, x.dim())))
                    if self.updates == 0:
                        self.mu.copy_(mean)
            y = x - self.mu.reshape(shape)
            if self.training:
                with torch.no_grad():
                    if self.updates > 0:
                        self.mu.mul_(1 - self.rate).add_(self.rate * mean)
                self.updates += 1
            return y

    layers = []
    for layer in model.layers:
        if isinstance(layer, (nn.SharedConv1d, nn.SharedConv2d)):
            cls = tnn.Conv1d if isinstance(layer, nn.SharedConv1d) else tnn.Conv2d
            conv = cls(layer.in_ch, layer.out_ch, layer.kernel_size, padding="same")
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(layer.params["J"]))
                conv.bias.copy_(torch.from_numpy(layer.params["b"]))
            layers.append(conv)
            assert layer.activation == "sigmoid" and layer.padding == "same"
            layers.append(tnn.Sigmoid())
        elif isinstance(layer, (nn.MaxPool1d, nn.MaxPool2d)):
            layers.append((tnn.MaxPool1d if isinstance(layer, nn.MaxPool1d) else tnn.MaxPool2d)(layer.kernel_size))
        elif isinstance(layer, nn.Centring):
            layers.append(Centring(layer))
        elif isinstance(layer, nn.Flatten):
            layers.append(tnn.Flatten())
        elif isinstance(layer, nn.FullCoupled):
            linear = tnn.Linear(layer.in_size, layer.out_size)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.params["J"].reshape(layer.out_size, layer.in_size)))
                linear.bias.copy_(torch.from_numpy(layer.params["b"]))
            layers.append(linear)
            assert layer.activation is None
        else:  # pragma: no cover - the default architecture changed
            raise TypeError(f"no torch twin for {type(layer).__name__}")
    return tnn.Sequential(*layers)


def training_run(hc, torch, dataset, epochs, seed):
    """A whole fit of the default shared model against its torch twin: the same initial weights,
    the same batches in the same order (one permutation per epoch from the same seed), Adam with
    the fit defaults; returns wall times and the test accuracy of both."""
    X, y, X_test, y_test = hc.data.load(dataset)
    model = hc.models.build("shared", X.shape[1:], 10, seed=seed)
    d = model.fit_defaults
    row = {"dataset": dataset, "epochs": epochs, "batch_size": d["batch_size"], "lr": d["lr"],
           "n_train": len(y), "n_params": model.n_params}
    tmodel = torch_shared_model(torch, model) if torch is not None else None
    t0 = time.perf_counter()
    model.fit(X, y, epochs=epochs, seed=seed, progress=False)
    row["ours_s"] = time.perf_counter() - t0
    row["ours_test_accuracy"] = model.score(X_test, y_test)
    if tmodel is not None:
        opt = torch.optim.Adam(tmodel.parameters(), lr=d["lr"])
        rng = np.random.default_rng(seed)  # what fit draws its batches from
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)
        bs = d["batch_size"]
        t0 = time.perf_counter()
        tmodel.train()
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(len(y)))
            for b in range(0, len(y), bs):
                idx = order[b:b + bs]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(tmodel(tX[idx]), ty[idx])
                loss.backward()
                opt.step()
        row["torch_s"] = time.perf_counter() - t0
        tmodel.eval()
        with torch.no_grad():
            pred = tmodel(torch.from_numpy(X_test)).argmax(dim=1).numpy()
        row["torch_test_accuracy"] = float(np.mean(pred == y_test))
        row["ours_over_torch"] = row["ours_s"] / row["torch_s"]
    return row


# ---------------------------------------------------------------- start-up, in fresh processes

STARTUP_CODE = textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import hamiltonian_cnn as hc
    t1 = time.perf_counter()
    import numpy as np
    X, y = hc.data.load("digits")[:2]
    t2 = time.perf_counter()
    from hamiltonian_cnn.nn.optim import make_optimizer
    model = hc.models.build("shared", (1, 8, 8), 10)
    opt = make_optimizer("adam", 1e-2)
    model.loss_and_grad(X[:32], y[:32])
    opt.step(model.params, model.grads)
    t3 = time.perf_counter()
    print(t1 - t0, t3 - t2, t2 - t1)
""")

LAYER_CODE = textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import numpy as np
    from hamiltonian_cnn import nn
    layer = eval({make!r})
    x = np.random.default_rng(0).standard_normal({shape!r}).astype(np.float32)
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    print(time.perf_counter() - t0)
""")

# every layer type, as the first (and only) thing a fresh process does: (label, constructor, input)
COLD_LAYERS = [
    ("SharedConv2d", "nn.SharedConv2d(3, 8, 3, padding='same')", (16, 3, 12, 12)),
    ("SharedConv2d stride 2", "nn.SharedConv2d(3, 8, 3, stride=2, padding=1)", (16, 3, 12, 12)),
    ("SharedConv1d", "nn.SharedConv1d(3, 8, 5, padding=2)", (16, 3, 40)),
    ("LocalConv2d", "nn.LocalConv2d(3, 8, 3, padding=1, input_size=(12, 12))", (16, 3, 12, 12)),
    ("LocalConv1d", "nn.LocalConv1d(3, 8, 5, padding=2, input_size=40)", (16, 3, 40)),
    ("FullCoupled", "nn.FullCoupled(64, 10)", (16, 64)),
    ("ConvTranspose2d", "nn.ConvTranspose2d(3, 8, 3, stride=2, padding=1)", (16, 3, 12, 12)),
    ("ConvTranspose1d", "nn.ConvTranspose1d(3, 8, 3, stride=2)", (16, 3, 40)),
    ("MaxPool2d", "nn.MaxPool2d(2)", (16, 3, 12, 12)),
    ("MaxPool1d", "nn.MaxPool1d(2)", (16, 3, 40)),
    ("AvgPool2d", "nn.AvgPool2d(2)", (16, 3, 12, 12)),
    ("AvgPool1d", "nn.AvgPool1d(2)", (16, 3, 40)),
    ("GlobalAvgPool", "nn.GlobalAvgPool()", (16, 3, 12, 12)),
    ("SpatialPyramidPool", "nn.SpatialPyramidPool((1, 2, 4))", (16, 3, 12, 12)),
    ("Flatten", "nn.Flatten()", (16, 3, 12, 12)),
]


def run_fresh(code, cache_dir, threads):
    """Run ``code`` in a fresh Python whose Numba cache is ``cache_dir``; its printed numbers."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"fresh process failed:\n{done.stderr[-2000:]}")
    return [float(v) for v in done.stdout.split()]


# ---------------------------------------------------------------- provenance and output


def provenance(args, wall):
    """The package's provenance (commit, marked -dirty for uncommitted changes; versions; CPU) with
    torch's version, the thread count and the wall time."""
    import numba

    from hamiltonian_cnn.sweep import provenance as package_provenance

    arguments = {key: str(v) if isinstance(v, Path) else v for key, v in vars(args).items()}
    info = package_provenance(arguments, seed=args.seed, numba_threads=numba.get_num_threads(), wall_time_s=wall)
    try:
        import torch

        info["versions"]["torch"] = torch.__version__
    except ImportError:
        info["versions"]["torch"] = None
    return info


def write_json_atomic(path: Path, data) -> None:
    """Temporary file, fsync, rename: a killed run leaves the old results.json or the new one."""
    from hamiltonian_cnn._io import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode())


GIBBS = {"chains": 64, "filters": 16, "kernel": 5, "sites": (28, 28), "sweeps": 10, "target": 1.0}


def gibbs_benchmark(hc, torch, repeats, seed):
    """Block Gibbs sweeps per second of a shared RBM, ours (rbm.sample from given states) against torch."""
    g = GIBBS
    rng = np.random.default_rng(seed)
    n, k, sweeps = g["chains"], g["kernel"], g["sweeps"]
    w = (0.1 * rng.standard_normal((g["filters"], 1, k, k))).astype(np.float32)
    b = rng.uniform(-1.5, -0.5, g["filters"]).astype(np.float32)
    a = np.full(1, -0.5, np.float32)
    rbm = hc.RBM(hc.SharedCoupling(w, b), (1,) + g["sites"], visible_bias=a)
    x = (rng.random((n, 1) + g["sites"]) < 0.3).astype(np.float32)

    def ours():
        return rbm.sample(n, sweeps, seed=seed, init=x)

    row = {**{key: list(v) if isinstance(v, tuple) else v for key, v in g.items()}, "dtype": "float32"}
    fns = [ours]
    if torch is not None:
        F = torch.nn.functional
        tw, tb, ta, tx = (torch.from_numpy(w), torch.from_numpy(b), torch.from_numpy(a).reshape(1, 1, 1, 1),
                          torch.from_numpy(x))

        def torch_sweeps():
            with torch.no_grad():
                v = tx
                for _ in range(sweeps):
                    d = torch.bernoulli(torch.sigmoid(F.conv2d(v, tw, tb)))
                    v = torch.bernoulli(torch.sigmoid(F.conv_transpose2d(d, tw) + ta))
                return v

        d = rbm.sample_hidden(x, np.random.default_rng(seed))
        with torch.no_grad():
            row["max_rel_diff_hidden_mean"] = max_rel_diff(rbm.hidden_mean(x), torch.sigmoid(F.conv2d(tx, tw, tb)))
            row["max_rel_diff_visible_mean"] = max_rel_diff(
                rbm.visible_mean(d), torch.sigmoid(F.conv_transpose2d(torch.from_numpy(d), tw) + ta))
        fns.append(torch_sweeps)
    fastest = []
    times = paired_ms(fns, repeats, best=fastest)
    row["ours_sweeps_per_s"] = sweeps / (times[0] * 1e-3)
    row["ours_best_sweeps_per_s"] = sweeps / (fastest[0] * 1e-3)
    if torch is not None:
        row["torch_sweeps_per_s"] = sweeps / (times[1] * 1e-3)
        row["torch_best_sweeps_per_s"] = sweeps / (fastest[1] * 1e-3)
        row["ours_over_torch_speed"] = row["ours_sweeps_per_s"] / row["torch_sweeps_per_s"]
        row["ours_over_torch_speed_best"] = row["ours_best_sweeps_per_s"] / row["torch_best_sweeps_per_s"]
    return row


def print_gibbs(row):
    g = row
    print(f"\n6. block Gibbs sweeps of a shared RBM ({g['filters']} filters {g['kernel']}x{g['kernel']} on "
          f"{g['sites'][0]}x{g['sites'][1]}, {g['chains']} chains, {g['sweeps']} sweeps per call, float32); "
          "ratio = ours / torch sweeps per second (>= 1: ours at least as fast)")
    line = f"ours {g['ours_sweeps_per_s']:.1f} sweeps/s"
    if "torch_sweeps_per_s" in g:
        ratio = g["ours_over_torch_speed"]
        line += (f", torch {g['torch_sweeps_per_s']:.1f} sweeps/s, ratio {ratio:.2f} "
                 f"(target >= {g['target']}: {'yes' if ratio >= g['target'] else 'NO'}; best-of ratio "
                 f"{g['ours_over_torch_speed_best']:.2f}; conditionals agree to "
                 f"{max(g['max_rel_diff_hidden_mean'], g['max_rel_diff_visible_mean']):.1e})")
    print(line)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="5 repeats instead of --repeats, and no per-layer cold starts")
    parser.add_argument("--repeats", type=int, default=21, help="timed runs per shape and implementation (median)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for our kernels (numba.set_num_threads) and torch (default: all cores)")
    parser.add_argument("--no-torch", action="store_true", help="skip torch even when it is installed")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurements (fresh processes)")
    parser.add_argument("--only", choices=["gibbs"], default=None, help="run one measurement only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-epochs", type=int, default=None,
                        help="epochs of the whole training runs (default 30, the fit default; --quick 3)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "benchmark_kernels")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats: expected >= 1, got {args.repeats}")
    if args.train_epochs is None:
        args.train_epochs = 3 if args.quick else 30
    if args.train_epochs < 1:
        parser.error(f"--train-epochs: expected >= 1, got {args.train_epochs}")
    import numba

    if args.threads is not None and not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
        parser.error(f"--threads: expected 1..{numba.config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS), got {args.threads}")
    from hamiltonian_cnn.sweep import check_cli_args

    check_cli_args(parser, args)
    return args


def fmt_ratio(value, target=None, better="low"):
    if value is None:
        return "-"
    if target is None:
        return f"{value:.2f}"
    ok = value <= target if better == "low" else value >= target
    return f"{value:.2f} {'ok' if ok else 'MISS'}"


def main(argv=None):
    args = parse_args(argv)
    repeats = 5 if args.quick else args.repeats

    import numba
    from tqdm import tqdm

    import hamiltonian_cnn as hc
    from hamiltonian_cnn import nn
    from hamiltonian_cnn.nn.losses import softmax_cross_entropy
    from hamiltonian_cnn.nn.optim import make_optimizer

    if args.threads is not None:
        numba.set_num_threads(args.threads)
    threads = numba.get_num_threads()
    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: F811

            torch.set_num_threads(threads)
        except ImportError:
            torch = None

    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    results = {"threads": threads, "torch_threads": torch.get_num_threads() if torch is not None else None}
    if args.only == "gibbs":
        results["gibbs"] = gibbs_benchmark(hc, torch, max(repeats, 7), args.seed)
        print_gibbs(results["gibbs"])
        out = args.out / "results.json"
        write_json_atomic(out, {**results, "repeats": max(repeats, 7),
                                "provenance": provenance(args, time.perf_counter() - start)})
        print(f"\nwrote {out}")
        return results
    steps = len(SHAPES) + len(LOCAL_SHAPES) + 1 + (0 if args.no_startup else 1)
    bar = tqdm(total=steps, desc="benchmark", file=sys.stderr)

    # -- 1. convolution + sigmoid
    rows = []
    for label, n, c_in, c_out, sites, k, pad, target in SHAPES:
        nd = len(sites)
        layer = (nn.SharedConv1d if nd == 1 else nn.SharedConv2d)(c_in, c_out, k, padding=pad, dtype=np.float32,
                                                                   seed=args.seed)
        layer.params["b"][:] = rng.uniform(-0.1, 0.1, c_out)
        x = rng.standard_normal((n, c_in) + sites).astype(np.float32)
        y_shape = (n,) + layer.output_shape((c_in,) + sites)
        dy = rng.standard_normal(y_shape).astype(np.float32)
        w, b = layer.params["J"], layer.params["b"]
        flops = 3 * 2 * int(np.prod(y_shape)) * c_in * k ** nd
        ours = tuple(np.array(a, copy=True) for a in run_ours(layer, x, dy))
        ref_out = numpy_conv_sigmoid(x, w, b, pad, dy)
        fns = [lambda: run_ours(layer, x, dy), lambda: numpy_conv_sigmoid(x, w, b, pad, dy)]
        row = {"shape": label, "N": n, "C_in": c_in, "C_out": c_out, "sites": list(sites), "kernel": k,
               "padding": pad, "gflop": flops / 1e9, "target": target,
               "max_rel_diff_vs_numpy": max(max_rel_diff(o, r) for o, r in zip(ours, ref_out))}
        if torch is not None:
            run_torch = make_torch_runner(torch, x, w, b, pad)
            row["max_rel_diff_vs_torch"] = max(max_rel_diff(o, r) for o, r in zip(ours, run_torch(dy)))
            fns.append(lambda: run_torch(dy))
        fastest = []
        times = paired_ms(fns, repeats, best=fastest)
        row["ours_ms"], row["numpy_ms"] = times[0], times[1]
        row["ours_best_ms"] = fastest[0]
        row["ours_gflops"] = flops / (times[0] * 1e-3) / 1e9
        row["ours_over_numpy"] = times[0] / times[1]
        if torch is not None:
            row["torch_ms"] = times[2]
            row["ours_over_torch"] = times[0] / times[2]
            row["torch_best_ms"] = fastest[2]
            row["ours_over_torch_best"] = fastest[0] / fastest[2]
        rows.append(row)
        bar.update(1)
    results["conv"] = rows

    # -- 2. locally connected layer
    local_rows = []
    for label, n, c_in, c_out, sites, k, pad in LOCAL_SHAPES:
        nd = len(sites)
        cls = nn.LocalConv1d if nd == 1 else nn.LocalConv2d
        layer = cls(c_in, c_out, k, padding=pad, input_size=sites, dtype=np.float32, seed=args.seed)
        layer.params["b"][:] = rng.uniform(-0.1, 0.1, layer.params["b"].shape)
        x = rng.standard_normal((n, c_in) + sites).astype(np.float32)
        dy = rng.standard_normal((n,) + layer.output_shape((c_in,) + sites)).astype(np.float32)
        w, b = layer.params["J"], layer.params["b"]
        ours = tuple(np.array(a, copy=True) for a in run_ours(layer, x, dy))
        ref_out = numpy_local_sigmoid(x, w, b, pad, dy)
        t_ours, t_ref = paired_ms([lambda: run_ours(layer, x, dy), lambda: numpy_local_sigmoid(x, w, b, pad, dy)],
                                  repeats)
        local_rows.append({"shape": label, "N": n, "C_in": c_in, "C_out": c_out, "sites": list(sites), "kernel": k,
                           "padding": pad, "ours_ms": t_ours, "numpy_bmm_ms": t_ref, "speedup": t_ref / t_ours,
                           "max_rel_diff_vs_numpy": max(max_rel_diff(o, r) for o, r in zip(ours, ref_out))})
        bar.update(1)
    results["local"] = local_rows

    # -- 3. one training step of the default shared model on digits
    X, y = hc.data.load("digits")[:2]
    xb, yb = X[:STEP_BATCH].astype(np.float32), y[:STEP_BATCH]
    model = hc.models.build("shared", (1, 8, 8), 10)
    opt = make_optimizer("adam", 1e-2)

    def our_step():
        logits = model.forward(xb)
        loss, dlogits = softmax_cross_entropy(logits, yb)
        model.backward(dlogits)
        opt.step(model.params, model.grads)
        return loss

    step = {"batch": STEP_BATCH, "model": repr(model), "n_params": model.n_params}
    fns = [our_step]
    if torch is not None:
        tmodel = torch_shared_model(torch, model)
        tmodel.eval()
        with torch.no_grad():
            step["max_rel_diff_logits_vs_torch"] = max_rel_diff(model.forward(xb), tmodel(torch.from_numpy(xb)).numpy())
        tmodel.train()  # both update their centring offsets while they step, as in fit
        model.set_training(True)
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-2)
        txb, tyb = torch.from_numpy(xb), torch.from_numpy(np.asarray(yb, np.int64))
        loss_fn = torch.nn.functional.cross_entropy

        def torch_step():
            topt.zero_grad()
            loss = loss_fn(tmodel(txb), tyb)
            loss.backward()
            topt.step()
            return loss

        fns.append(torch_step)
    fastest = []
    times = paired_ms(fns, max(repeats, 21) * 3, warmup=5, best=fastest)
    step["ours_ms"], step["ours_best_ms"] = times[0], fastest[0]
    if torch is not None:
        step["torch_ms"], step["torch_best_ms"] = times[1], fastest[1]
        step["ours_over_torch"] = times[0] / times[1]
        step["ours_over_torch_best"] = fastest[0] / fastest[1]
    model.set_training(False)
    results["train_step"] = step
    bar.update(1)

    # -- 3b. whole training runs, default fit, against the torch twin
    results["training_runs"] = [training_run(hc, torch, name, args.train_epochs, args.seed)
                                for name in ("digits", "mnist1d")]

    results["sgemm_gflops"] = sgemm_gflops(repeats)
    results["gibbs"] = gibbs_benchmark(hc, torch, max(repeats, 7), args.seed)

    # -- 4. start-up in fresh processes
    if not args.no_startup:
        with tempfile.TemporaryDirectory(prefix="hcnn-numba-cache-") as cache:
            t_import, t_step, t_data = run_fresh(STARTUP_CODE, cache, threads)
            w_import, w_step, _ = run_fresh(STARTUP_CODE, cache, threads)
        results["startup"] = {"cold_import_s": t_import, "cold_first_step_s": t_step, "cold_total_s": t_import + t_step,
                              "warm_import_s": w_import, "warm_first_step_s": w_step, "warm_total_s": w_import + w_step,
                              "data_load_s": t_data}
        cold_layers = []
        if not args.quick:
            for label, make, shape in tqdm(COLD_LAYERS, desc="cold layers", file=sys.stderr, leave=False):
                with tempfile.TemporaryDirectory(prefix="hcnn-numba-cache-") as cache:
                    (seconds,) = run_fresh(LAYER_CODE.format(make=make, shape=shape), cache, threads)
                cold_layers.append({"layer": label, "make": make, "input": list(shape), "first_call_s": seconds})
        results["cold_first_call"] = cold_layers
        bar.update(1)
    bar.close()
    made = provenance(args, time.perf_counter() - start)

    # -- report
    print(f"\nmachine: {made['cpu'] or 'CPU unknown'}, {made['cpu_count']} logical cores; "
          f"numpy float32 matmul (sgemm, 1024^3) {results['sgemm_gflops']:.0f} GFLOP/s; "
          f"{threads} thread(s) for ours (numba.get_num_threads) and "
          f"{results['torch_threads'] if torch is not None else '-'} for torch (torch.get_num_threads); "
          f"median of {repeats} runs, in 3 rounds of turns")
    print("\n1. conv + sigmoid, forward + backward, float32; ratio = ours / reference (<= 1: ours at least as fast); "
          "'best-of': fastest run / fastest run")
    header = (f"{'shape':<12} {'N':>4} {'C_in->C_out':>11} {'sites':>7} {'k':>2} {'pad':>3} {'ours ms':>8} "
              f"{'GFLOP/s':>7} {'numpy ms':>9} {'/numpy':>6} {'torch ms':>9} {'/torch':>6} {'target':>6}  met"
              f"  {'best-of /torch':>14}")
    print(header)
    print("-" * len(header))
    for row in rows:
        sites = "x".join(str(v) for v in row["sites"])
        ratio = row.get("ours_over_torch")
        met = "-" if ratio is None else ("yes" if ratio <= row["target"] else "NO")
        print(f"{row['shape']:<12} {row['N']:>4} {str(row['C_in']) + '->' + str(row['C_out']):>11} {sites:>7} "
              f"{row['kernel']:>2} {row['padding']:>3} {row['ours_ms']:>8.2f} {row['ours_gflops']:>7.1f} "
              f"{row['numpy_ms']:>9.2f} {row['ours_over_numpy']:>6.2f} "
              f"{row.get('torch_ms', float('nan')):>9.2f} {fmt_ratio(ratio):>6} "
              f"{'<= ' + str(row['target']):>6}  {met:>3}"
              f"  {fmt_ratio(row.get('ours_over_torch_best')):>14}")
    if torch is None:
        print("(torch not installed: `pip install torch` (CPU) adds the torch column)")
    worst = max(max(r["max_rel_diff_vs_numpy"], r.get("max_rel_diff_vs_torch", 0.0)) for r in rows)
    print(f"largest relative difference of y, dx, dJ, db against the references: {worst:.1e}")

    print("\n2. locally connected layer + sigmoid, forward + backward; speedup = numpy batched-matmul ms / ours ms "
          "(target >= 3)")
    for row in local_rows:
        sites = "x".join(str(v) for v in row["sites"])
        print(f"{row['shape']:<12} {row['N']:>4} {str(row['C_in']) + '->' + str(row['C_out']):>11} {sites:>7} "
              f"k{row['kernel']} p{row['padding']}: ours {row['ours_ms']:.2f} ms, numpy {row['numpy_bmm_ms']:.2f} ms, "
              f"speedup {row['speedup']:.1f}x {'yes' if row['speedup'] >= 3 else 'NO'}  "
              f"(max rel diff {row['max_rel_diff_vs_numpy']:.1e})")

    print(f"\n3. training step, default shared digits model ({model.n_params} parameters), batch {STEP_BATCH}: "
          f"forward + cross-entropy + backward + Adam")
    line = f"ours {step['ours_ms']:.3f} ms"
    if torch is not None:
        line += (f", torch {step['torch_ms']:.3f} ms, ratio {step['ours_over_torch']:.2f} "
                 f"(target <= 1.0: {'yes' if step['ours_over_torch'] <= 1.0 else 'NO'}; best-of ratio "
                 f"{step['ours_over_torch_best']:.2f}; logits agree to {step['max_rel_diff_logits_vs_torch']:.1e})")
    print(line)

    print(f"\n3b. whole training runs of the default shared model (fit defaults, {args.train_epochs} epochs), "
          "against a torch twin with the same weights, batches and Adam (target <= 0.8)")
    for run in results["training_runs"]:
        line = (f"{run['dataset']:<8} ({run['n_train']} samples, {run['n_params']} parameters): ours "
                f"{run['ours_s']:.2f} s "
                f"(test accuracy {run['ours_test_accuracy']:.3f})")
        if "torch_s" in run:
            ratio = run["ours_over_torch"]
            line += (f", torch {run['torch_s']:.2f} s (test accuracy {run['torch_test_accuracy']:.3f}), "
                     f"ratio {ratio:.2f} {'yes' if ratio <= 0.8 else 'NO'}")
        print(line)

    if "startup" in results:
        st = results["startup"]
        print("\n4. start-up: import hamiltonian_cnn + build + first training step, fresh process "
              f"(digits loading, {st['data_load_s']:.2f} s, not included)")
        print(f"cold (empty Numba cache): {st['cold_total_s']:.2f} s (import {st['cold_import_s']:.2f} s) "
              f"target < 20 s: {'yes' if st['cold_total_s'] < 20 else 'NO'}")
        print(f"warm (cache filled):      {st['warm_total_s']:.2f} s (import {st['warm_import_s']:.2f} s) "
              f"target < 2 s: {'yes' if st['warm_total_s'] < 2 else 'NO'}")
        if results["cold_first_call"]:
            print("every layer's first forward + backward in a fresh process, empty cache (target < 60 s):")
            print("  " + ", ".join(f"{r['layer']} {r['first_call_s']:.1f} s" for r in results["cold_first_call"]))
            slowest = max(r["first_call_s"] for r in results["cold_first_call"])
            print(f"  slowest {slowest:.1f} s: {'yes' if slowest < 60 else 'NO'}")

    print_gibbs(results["gibbs"])

    out = args.out / "results.json"
    write_json_atomic(out, {**results, "repeats": repeats, "provenance": made})
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
