"""Does weight sharing help? Shared vs local vs full couplings with the same architecture.

    python experiments/sharing_vs_coupling.py            # digits, 3 seeds, the full sweep
    python experiments/sharing_vs_coupling.py --quick    # about a minute on 2 cores

For each coupling family (shared = convolution, local = the same windows untied per site,
full = every site coupled to every site) and several seeds it measures parameter count,
train/test accuracy and training time; test accuracy against training-set size (sample
efficiency); accuracy on test inputs shifted by 0..k pixels (translation: weight sharing is
equivariant, full coupling is not); and the same comparison after a fixed permutation of the pixel
positions (the shuffle control: locality is destroyed, so sharing should lose its edge while full
coupling, which never used locality, is unaffected).

Writes results.json (numbers + provenance) and PNG figures to --out, atomically; a run killed and
restarted with the same --out skips the cells it already finished.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import numpy as np

import hamiltonian_cnn as hc
from hamiltonian_cnn.sweep import CellStore, atomic_savefig, atomic_write_json, check_cli_args, provenance, run_cells

FAMILIES = ("shared", "local", "full")
CONTROLS = ("original", "shuffled")
PERMUTATION_SEED = 12345


@functools.lru_cache(maxsize=4)
def dataset(name: str):
    if name == "cat":
        return hc.data.load("cat", task="detect", size=12, n_train=800, n_test=400, noise=0.5, seed=0)
    return hc.data.load(name)


def stratified_subset(y, size, rng):
    """Indices of ``size`` samples with every class in proportion (at least one each)."""
    if size >= len(y):
        return np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    take = np.maximum(1, np.floor(counts / counts.sum() * size).astype(int))
    while take.sum() < size:
        take[np.argmax(counts / counts.sum() * size - take)] += 1
    idx = [rng.choice(np.flatnonzero(y == c), k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(idx))


def shifted_accuracy(model, X, y, s, control):
    """Mean accuracy over the four shifts by s pixels (right, left, down, up)."""
    if s == 0:
        moves = [(0, 0)]
    else:
        moves = [(s, 0), (-s, 0), (0, s), (0, -s)]
    accs = []
    for dx, dy in moves:
        Xs = hc.data.shift(X, dx, dy)
        if control == "shuffled":  # move the image, then apply the same fixed permutation
            Xs = hc.data.shuffle_sites(Xs, PERMUTATION_SEED)
        accs.append(model.score(Xs, y))
    return float(np.mean(accs))


def run_cell(cell: dict) -> dict:
    """Train one (coupling, seed, size, control) cell and measure it."""
    X_train, y_train, X_test, y_test = dataset(cell["dataset"])
    X_plain = X_test
    if cell["control"] == "shuffled":
        X_train = hc.data.shuffle_sites(X_train, PERMUTATION_SEED)
        X_test = hc.data.shuffle_sites(X_test, PERMUTATION_SEED)
    rng = np.random.default_rng(cell["seed"])
    idx = stratified_subset(y_train, cell["size"], rng)
    n_classes = int(max(y_train.max(), y_test.max()) + 1)
    model = hc.models.build(cell["coupling"], X_train.shape[1:], n_classes, seed=cell["seed"])
    # the same number of gradient steps at every training-set size (capped at 10x the epochs)
    epochs = min(10 * cell["epochs"], max(cell["epochs"], round(cell["epochs"] * len(y_train) / len(idx))))
    history = model.fit(X_train[idx], y_train[idx], epochs=epochs, seed=cell["seed"], progress=False)
    return {
        "n_params": model.n_params,
        "train_size": int(len(idx)),
        "epochs": epochs,
        "train_accuracy": model.score(X_train[idx], y_train[idx]),
        "test_accuracy": model.score(X_test, y_test),
        "train_time": history["wall_time"],
        "final_loss": history["loss"][-1],
        "shift_accuracy": {str(s): shifted_accuracy(model, X_plain, y_test, s, cell["control"]) for s in cell["shifts"]},
    }


def mean_std(values):
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "n": int(len(values))}


def summarise(cells, results, sizes, shifts):
    summary, shift_summary = {}, {}
    for family in sorted({c["coupling"] for c in cells}, key=FAMILIES.index):
        summary[family], shift_summary[family] = {}, {}
        for control in sorted({c["control"] for c in cells}, key=CONTROLS.index):
            rows = {}
            for size in sizes:
                rs = [r for c, r in zip(cells, results)
                      if c["coupling"] == family and c["control"] == control and c["size"] == size]
                if not rs:
                    continue
                rows[str(size)] = {
                    "train_size": rs[0]["train_size"],
                    "n_params": rs[0]["n_params"],
                    "test_accuracy": mean_std([r["test_accuracy"] for r in rs]),
                    "train_accuracy": mean_std([r["train_accuracy"] for r in rs]),
                    "train_time": mean_std([r["train_time"] for r in rs]),
                }
            summary[family][control] = rows
            largest = [r for c, r in zip(cells, results)
                       if c["coupling"] == family and c["control"] == control and c["size"] == max(sizes)]
            shift_summary[family][control] = {str(s): mean_std([r["shift_accuracy"][str(s)] for r in largest])
                                              for s in shifts}
    return summary, shift_summary


def figures(out, summary, shift_summary, n_train_all):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"shared": "C0", "local": "C1", "full": "C3"}
    controls = [c for c in CONTROLS if any(c in summary[f] for f in summary)]
    fig, axes = plt.subplots(1, len(controls), figsize=(5 * len(controls), 4), sharey=True, squeeze=False)
    for ax, control in zip(axes[0], controls):
        for family, by_control in summary.items():
            rows = by_control.get(control, {})
            xs = [rows[k]["train_size"] for k in rows]
            ms = [rows[k]["test_accuracy"]["mean"] for k in rows]
            ss = [rows[k]["test_accuracy"]["std"] for k in rows]
            ax.errorbar(xs, ms, yerr=ss, marker="o", capsize=3, color=colors[family], label=family)
        ax.set_xscale("log")
        ax.set_xlabel("training-set size")
        ax.set_title(f"{control} pixels")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend()
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "accuracy_vs_size.png"), dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(controls), figsize=(5 * len(controls), 4), sharey=True, squeeze=False)
    for ax, control in zip(axes[0], controls):
        for family, by_control in shift_summary.items():
            rows = by_control.get(control, {})
            xs = [int(s) for s in rows]
            ax.errorbar(xs, [rows[s]["mean"] for s in rows], yerr=[rows[s]["std"] for s in rows], marker="o",
                        capsize=3, color=colors[family], label=family)
        ax.set_xlabel("test-time shift (pixels)")
        ax.set_title(f"{control} pixels, trained on {n_train_all} unshifted")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend()
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "accuracy_vs_shift.png"), dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    families = list(summary)
    counts = [next(iter(summary[f][controls[0]].values()))["n_params"] for f in families]
    ax.bar(families, counts, color=[colors[f] for f in families])
    ax.set_yscale("log")
    ax.set_ylabel("parameters")
    for i, c in enumerate(counts):
        ax.text(i, c, f"{c:,}", ha="center", va="bottom")
    ax.set_title("parameters of the matched networks")
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "parameters.png"), dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("digits", "cat"), default="digits")
    p.add_argument("--couplings", default=",".join(FAMILIES), help="comma-separated subset of shared,local,full")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..seeds-1)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--sizes", default="50,100,200,500,all", help="training-set sizes, 'all' = every sample")
    p.add_argument("--shifts", default="0,1,2", help="test-time shifts in pixels")
    p.add_argument("--epochs", type=int, default=None, help="epochs at the full training size (default 30; --quick 8)")
    p.add_argument("--no-control", action="store_true", help="skip the shuffled-pixel control")
    p.add_argument("--quick", action="store_true", help="2 seeds, sizes 100 and all, 8 epochs: about a minute")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/sharing_vs_coupling/<time>)")
    p.add_argument("--workers", type=int, default=1, help="worker processes for the cells")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (with --executor dask)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = min(args.seeds, 2)
        if args.sizes == p.get_default("sizes"):
            args.sizes = "100,all"
        args.epochs = 8 if args.epochs is None else args.epochs
    args.epochs = 30 if args.epochs is None else args.epochs
    couplings = [c.strip() for c in args.couplings.split(",") if c.strip()]
    bad = [c for c in couplings if c not in FAMILIES]
    if bad or not couplings:
        p.error(f"--couplings: expected a subset of {','.join(FAMILIES)}, got {args.couplings!r}")
    args.couplings = couplings
    try:
        args.shifts = [int(s) for s in args.shifts.split(",")]
    except ValueError:
        p.error(f"--shifts: expected comma-separated integers, got {args.shifts!r}")
    if args.seeds < 1 or args.epochs < 1 or args.workers < 1 or any(s < 0 for s in args.shifts):
        p.error("--seeds, --epochs and --workers must be >= 1 and --shifts >= 0")
    if args.executor == "dask" and not args.scheduler:
        p.error("--executor dask needs --scheduler ADDRESS")
    sizes = [s.strip() for s in args.sizes.split(",")]
    if not all(s == "all" or (s.isdigit() and int(s) >= 1) for s in sizes):
        p.error(f"--sizes: expected comma-separated integers >= 1 or 'all', got {args.sizes!r}")
    check_cli_args(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    X_train, y_train, _, _ = dataset(args.dataset)
    n_all = len(y_train)
    sizes = []
    for s in args.sizes.split(","):
        s = s.strip()
        sizes.append(n_all if s == "all" else min(int(s), n_all))
    sizes = sorted(set(sizes))
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "sharing_vs_coupling",
                                   time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    controls = ["original"] if args.no_control else list(CONTROLS)
    cells = [{"dataset": args.dataset, "coupling": f, "seed": args.seed + k, "size": size, "control": control,
              "epochs": args.epochs, "shifts": args.shifts}
             for control in controls for size in sizes for k in range(args.seeds) for f in args.couplings]
    store = CellStore(out)
    results = run_cells(run_cell, cells, store, workers=args.workers, executor=args.executor,
                        scheduler=args.scheduler, progress=not args.no_progress, desc="sharing vs coupling")
    summary, shift_summary = summarise(cells, results, sizes, args.shifts)
    report = {
        "question": "Does weight sharing (convolution) beat local and full coupling at equal architecture?",
        "dataset": args.dataset,
        "n_train_all": n_all,
        "sizes": sizes,
        "summary": summary,
        "shift": shift_summary,
        "cells": [{"cell": c, "result": r} for c, r in zip(cells, results)],
        "provenance": provenance(args, seed=args.seed, wall_time=time.perf_counter() - t0),
    }
    atomic_write_json(os.path.join(out, "results.json"), report)
    figures(out, summary, shift_summary, n_all)
    print(f"\n{args.dataset}: test accuracy, mean +- std over {args.seeds} seed(s)")
    for control in controls:
        print(f"  [{control} pixels]")
        header = "  coupling   params  " + "  ".join(f"n={s:<11d}" for s in sizes)
        print(header)
        for family in args.couplings:
            rows = summary[family][control]
            cells_txt = "  ".join(f"{rows[str(s)]['test_accuracy']['mean']:.3f}+-{rows[str(s)]['test_accuracy']['std']:.3f}"
                                  for s in sizes)
            print(f"  {family:8s} {next(iter(rows.values()))['n_params']:8d}  {cells_txt}")
        shifts = "  ".join(f"{family}: " + " ".join(f"{shift_summary[family][control][str(s)]['mean']:.3f}"
                                                     for s in args.shifts) for family in args.couplings)
        print(f"  accuracy at shifts {args.shifts}: {shifts}")
    print(f"results: {os.path.join(out, 'results.json')} ({time.perf_counter() - t0:.1f} s)")
    return report


if __name__ == "__main__":
    main()
