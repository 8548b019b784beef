"""How fast is the shared-coupling kernel (convolution + sigmoid, forward + backward, float32)?

Times, in one run and on the same inputs, forward + backward of a sigmoid convolution layer for
the shapes below, three ways:

* ours:  hamiltonian_cnn.nn.SharedConv1d/2d (validation + Numba im2col/BLAS kernels)
* numpy: a plain numpy im2col implementation (sliding windows, one matmul, col2im by window offset)
* torch: torch.nn.functional.conv1d/2d + sigmoid with autograd, when torch is installed (CPU)

Each is the median of repeated runs after a warm-up (the warm-up also compiles the kernels).
Ratios are reference time / our time, so > 1 means ours is faster. The outputs and gradients of
the three are compared too, so a fast wrong kernel cannot pass unnoticed. Timing is never a test.

    python experiments/benchmark_kernels.py            # full run
    python experiments/benchmark_kernels.py --quick    # a few repeats, well under a minute

Writes results.json (numbers + provenance) to --out, atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# (label, N, C_in, C_out, sites, kernel, padding)
SHAPES = [
    ("LeNet conv1", 64, 1, 6, (28, 28), 5, 0),
    ("LeNet conv2", 64, 6, 16, (12, 12), 5, 0),
    ("digits 8x8", 128, 1, 16, (8, 8), 3, 1),
    ("CIFAR-like", 32, 32, 64, (32, 32), 3, 1),
    ("1D chain", 100, 25, 25, (40,), 5, 2),
]


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

    def run(dy):
        for t in (xt, wt, bt):
            t.grad = None
        y = torch.sigmoid(conv(xt, wt, bt, padding=pad))
        y.backward(torch.from_numpy(dy))
        return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()

    return run


def median_ms(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


def max_rel_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(1e-30, np.abs(b).max()))


# ---------------------------------------------------------------- provenance and output


def provenance(args, wall):
    def version(name):
        try:
            return __import__(name).__version__
        except Exception:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip() or None
    except Exception:
        commit = None
    import numba

    return {
        "git_commit": commit, "python": sys.version.split()[0], "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(),
        "versions": {name: version(name) for name in ("numpy", "scipy", "numba", "torch", "hamiltonian_cnn")},
        "arguments": {key: str(v) if isinstance(v, Path) else v for key, v in vars(args).items()}, "seed": args.seed, "wall_time_s": wall,
    }


def write_json_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats per shape instead of --repeats")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per shape and implementation (median)")
    parser.add_argument("--threads", type=int, default=None, help="Numba and torch threads (default: all cores)")
    parser.add_argument("--no-torch", action="store_true", help="skip torch even when it is installed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "benchmark_kernels")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    if repeats < 1:
        parser.error(f"--repeats: expected >= 1, got {repeats}")

    import numba
    from tqdm import tqdm

    from hamiltonian_cnn import nn

    if args.threads is not None:
        numba.set_num_threads(args.threads)
    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: F811

            torch.set_num_threads(numba.get_num_threads())
        except ImportError:
            torch = None

    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    rows = []
    for label, n, c_in, c_out, sites, k, pad in tqdm(SHAPES, desc="shapes", file=sys.stderr):
        nd = len(sites)
        layer = (nn.SharedConv1d if nd == 1 else nn.SharedConv2d)(c_in, c_out, k, padding=pad, dtype=np.float32,
                                                                   seed=args.seed)
        layer.params["b"][:] = rng.uniform(-0.1, 0.1, c_out)
        x = rng.standard_normal((n, c_in) + sites).astype(np.float32)
        y_shape = (n,) + layer.output_shape((c_in,) + sites)
        dy = rng.standard_normal(y_shape).astype(np.float32)
        w, b = layer.params["J"], layer.params["b"]

        ours = run_ours(layer, x, dy)
        ours = tuple(np.array(a, copy=True) for a in ours)
        ours_ms, _ = median_ms(lambda: run_ours(layer, x, dy), repeats)
        row = {"shape": label, "N": n, "C_in": c_in, "C_out": c_out, "sites": list(sites), "kernel": k,
               "padding": pad, "ours_ms": ours_ms}

        ref_out = numpy_conv_sigmoid(x, w, b, pad, dy)
        row["numpy_ms"], _ = median_ms(lambda: numpy_conv_sigmoid(x, w, b, pad, dy), repeats)
        row["numpy_over_ours"] = row["numpy_ms"] / ours_ms
        row["max_rel_diff_vs_numpy"] = max(max_rel_diff(o, r) for o, r in zip(ours, ref_out))

        if torch is not None:
            run_torch = make_torch_runner(torch, x, w, b, pad)
            torch_out = run_torch(dy)
            row["torch_ms"], _ = median_ms(lambda: run_torch(dy), repeats)
            row["torch_over_ours"] = row["torch_ms"] / ours_ms
            row["max_rel_diff_vs_torch"] = max(max_rel_diff(o, r) for o, r in zip(ours, torch_out))
        rows.append(row)
    wall = time.perf_counter() - start

    print(f"\nconv + sigmoid, forward + backward, float32, median of {repeats} runs, "
          f"{numba.get_num_threads()} thread(s); ratio = reference ms / ours ms (> 1: ours faster)")
    header = f"{'shape':<12} {'N':>4} {'C_in->C_out':>11} {'sites':>7} {'k':>2} {'pad':>3} {'ours ms':>9} {'numpy ms':>9} {'ratio':>6}"
    if torch is not None:
        header += f" {'torch ms':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for row in rows:
        sites = "x".join(str(s) for s in row["sites"])
        line = (f"{row['shape']:<12} {row['N']:>4} {str(row['C_in']) + '->' + str(row['C_out']):>11} {sites:>7} "
                f"{row['kernel']:>2} {row['padding']:>3} {row['ours_ms']:>9.2f} {row['numpy_ms']:>9.2f} "
                f"{row['numpy_over_ours']:>6.2f}")
        if torch is not None:
            line += f" {row['torch_ms']:>9.2f} {row['torch_over_ours']:>6.2f}"
        print(line)
    if torch is None:
        print("(torch not installed: `pip install torch` (CPU) adds the torch column)")
    worst = max(max(r["max_rel_diff_vs_numpy"], r.get("max_rel_diff_vs_torch", 0.0)) for r in rows)
    print(f"largest relative difference of y, dx, dJ, db against the references: {worst:.1e}")

    out = args.out / "results.json"
    write_json_atomic(out, {"rows": rows, "repeats": repeats, "provenance": provenance(args, wall)})
    print(f"wrote {out}")
    return rows


if __name__ == "__main__":
    main()
