"""Does a full coupling learn locality from the data? β-LASSO against Adam, with local and shared as references.

    python experiments/learned_locality.py            # MNIST-1D, 5 seeds, 30 epochs
    python experiments/learned_locality.py --quick    # 1 seed, 8 epochs: about a minute

Neyshabur (NeurIPS 2020) trains fully connected networks with β-LASSO (an L1 step, then every
weight below β λ set to zero) and finds local connectivity emerging. Here the default network on
MNIST-1D is built with full coupling and trained with Adam or with β-LASSO
(``optimizer="beta_lasso"``, ``--lr-lasso``, ``--lam``, ``--beta``); the local and shared networks,
local by construction, are the references. For the first coupling layer J_{o,I,c,i} (output site I
reads input site i; I sits over input i = I, the "same" geometry of a window of 3), per output site:

    spread   the |J|-weighted mean distance |i - I| (uniform |J| would give about L/3)
    inside   the fraction of |J| that lies within the window |i - I| <= 1 that a local coupling has
    zeros    the fraction of couplings that are exactly zero

averaged over output sites and channels, and the test accuracy. The figure shows the first layer's
|J| summed over channels as a (output site x input site) map: locality is a band on the diagonal.

Writes results.json ("records", "summary", provenance) and figures to --out, atomically; a killed
run restarted with the same --out skips finished cells.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import numpy as np

import hamiltonian_cnn as hc
from hamiltonian_cnn.nn.optim import BetaLasso
from hamiltonian_cnn.sweep import (
    CellStore,
    atomic_savefig,
    atomic_write_json,
    check_cli_args,
    mean_ci,
    output_folder,
    print_outputs,
    provenance,
    run_cells,
)

METHODS = ("full+adam", "full+beta_lasso", "local", "shared")
WINDOW = 3


@functools.lru_cache(maxsize=2)
def dataset():
    return hc.data.load("mnist1d")


def first_layer_map(model, input_shape):
    """|J_{o,I,c,i}| of the first coupling layer, as a dense (C_out, L_out, C_in, L_in) array."""
    layer = next(layer for layer in model.layers if "J" in layer.params)
    return np.abs(layer.coupling().dense(input_shape))


def locality(J_abs, window=WINDOW):
    """spread, inside and (for the raw map) zeros, per output site, of a (C_out, L_out, C_in, L_in) |J|."""
    c_out, l_out, c_in, l_in = J_abs.shape
    stride = l_in // l_out
    centre = stride * np.arange(l_out)[:, None]
    distance = np.abs(np.arange(l_in)[None, :] - centre)  # (L_out, L_in)
    per_site = J_abs.sum(axis=2)  # (C_out, L_out, L_in)
    total = per_site.sum(axis=-1)
    ok = total > 0
    spread = (per_site * distance).sum(axis=-1)[ok] / total[ok]
    inside = (per_site * (distance <= window // 2)).sum(axis=-1)[ok] / total[ok]
    return {"spread": float(spread.mean()) if ok.any() else float("nan"),
            "inside": float(inside.mean()) if ok.any() else float("nan"),
            "zeros": float(np.mean(J_abs == 0)), "dead_sites": float(np.mean(~ok))}


def run_cell(cell):
    X, y, Xt, yt = dataset()
    method = cell["method"]
    family = method.split("+")[0]
    model = hc.models.build(family, X.shape[1:], 10, seed=cell["seed"])
    optimizer = "adam"
    if method == "full+beta_lasso":
        optimizer = BetaLasso(lr=cell["lr_lasso"], lam=cell["lam"], beta=cell["beta"])
    t0 = time.perf_counter()
    model.fit(X, y, epochs=cell["epochs"], optimizer=optimizer, seed=cell["seed"], progress=False)
    J_abs = first_layer_map(model, X.shape[1:])
    return {"test_accuracy": model.score(Xt, yt), "n_params": model.n_params, **locality(J_abs),
            "map": J_abs.sum(axis=(0, 2)).tolist(), "train_time": time.perf_counter() - t0}


def summarise(cells, results):
    rows = []
    for method in METHODS:
        rs = [r for c, r in zip(cells, results) if c["method"] == method]
        if rs:
            rows.append({"method": method, "n_params": rs[0]["n_params"],
                         **{k: mean_ci([r[k] for r in rs]) for k in ("test_accuracy", "spread", "inside", "zeros")}})
    return rows


def uniform_reference(l_out, l_in):
    """spread and inside of a uniform |J| (no locality at all): the level to compare with."""
    return locality(np.ones((1, l_out, 1, l_in)))


def figures(out, cells, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = {c["method"]: r for c, r in zip(cells, results) if c["seed"] == cells[0]["seed"]}
    fig, axes = plt.subplots(1, len(first), figsize=(3.2 * len(first), 3.4), squeeze=False)
    for ax, (method, r) in zip(axes[0], first.items()):
        m = np.asarray(r["map"])
        ax.imshow(m / max(m.max(), 1e-300), cmap="magma", aspect="auto")
        ax.set_title(f"{method}\ninside {r['inside']:.2f}, zeros {r['zeros']:.2f}", fontsize=9)
        ax.set_xlabel("input site i")
    axes[0][0].set_ylabel("output site I")
    fig.suptitle("first layer |J| summed over channels (MNIST-1D)", fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "receptive_fields.png"), dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="epochs of every fit (default 30; --quick 8)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--lr-lasso", type=float, default=0.1, help="β-LASSO's learning rate (SGD, momentum 0.9)")
    p.add_argument("--lam", type=float, default=3e-3, help="β-LASSO's λ (L1 strength)")
    p.add_argument("--beta", type=float, default=50.0, help="β-LASSO's β (threshold β λ)")
    p.add_argument("--quick", action="store_true", help="1 seed, 8 epochs")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/learned_locality/<time>)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = 1
        args.epochs = 8 if args.epochs is None else args.epochs
    args.epochs = 30 if args.epochs is None else args.epochs
    if args.epochs < 1 or args.seeds < 1 or args.workers < 1:
        p.error("--epochs, --seeds and --workers must be >= 1")
    for name in ("lr_lasso", "lam", "beta"):
        value = getattr(args, name)
        if not (np.isfinite(value) and value >= 0) or (name == "lr_lasso" and value == 0):
            p.error(f"--{name.replace('_', '-')}: expected a finite number >= 0 (> 0 for the lr), got {value}")
    check_cli_args(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    out = output_folder(args.out, __file__)
    cells = [{"method": m, "seed": args.seed + k, "epochs": args.epochs, "lr_lasso": args.lr_lasso, "lam": args.lam,
              "beta": args.beta} for m in METHODS for k in range(args.seeds)]
    results = run_cells(run_cell, cells, CellStore(out), workers=args.workers, progress=not args.no_progress,
                        desc="learned locality")
    summary = summarise(cells, results)
    X = dataset()[0]
    l_out = len(results[0]["map"])
    report = {"question": "Does a full coupling trained with β-LASSO learn local windows?", "dataset": "mnist1d",
              "uniform": uniform_reference(l_out, X.shape[-1]), "records": [{**c, **r} for c, r in zip(cells, results)],
              "summary": summary, "provenance": provenance(args, seed=args.seed, wall_time=time.perf_counter() - t0)}
    atomic_write_json(os.path.join(out, "results.json"), report)
    figures(out, cells, results)
    u = report["uniform"]
    print(f"\nMNIST-1D, first layer (uniform |J|: spread {u['spread']:.1f} sites, inside {u['inside']:.2f})")
    for r in summary:
        print(f"  {r['method']:16s} params {r['n_params']:8d}  test {r['test_accuracy']['mean']:.3f}  "
              f"spread {r['spread']['mean']:5.2f}  inside {r['inside']['mean']:.2f}  zeros {r['zeros']['mean']:.2f}")
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
