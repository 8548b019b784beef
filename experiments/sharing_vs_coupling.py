"""What does weight sharing buy? Shared vs local vs sparse vs full couplings, on data where it shows.

    python experiments/sharing_vs_coupling.py --quick              # MNIST-1D, about a minute on 2 cores
    python experiments/sharing_vs_coupling.py --dataset all        # every dataset, 10 seeds: the paper's run
    python experiments/sharing_vs_coupling.py --dataset translated --quick

The four coupling families have the same blocks, windows, pools and head, and differ only in the
ties of their couplings: shared (convolution), local (the same windows, untied), sparse (as many
inputs per site as a window, drawn at random: sparsity without locality) and full (every site to
every site); local_narrow is the equal-parameter control (local with its channels cut until it has
no more parameters than shared). Datasets (``--dataset``, a comma-separated list or "all"):

  mnist1d     Greydanus & Kobak's 1D digits, original and with the sites permuted (the shuffle
              control: published CNN 94 % -> 56 %, MLP 68 % -> 68 %); accuracy against training-set
              size and against a zero-fill shift of the test sequences.
  translated  8x8 digits on a 16x16 canvas, trained at the left positions, tested at the same
              positions and at unseen right ones; heads "dense" and "gap" (global average pool).
  digits      8x8 digits as they are: the null case (every digit is centred, the images tiny).
  cat         the textbook toy: locate a pattern planted at a random site (head "sites": the one-hot
              ensemble over output sites).
  cat_detect  the same toy, detect: is the pattern there at all (half of the images; heads "dense"
              and "gap").

Protocol: a fixed stratified validation split of the training data; for each (dataset, family,
head, control) the learning rate is chosen on it (first seed, full training set) from ``--lrs``;
every fit runs the same number of optimisation steps at every training-set size and keeps the
epoch with the best validation accuracy (early stopping within the budget). The test set is used
once per fit, for the numbers reported. Seeds are shared across families (the same training subset
and batch order), so differences are paired.

Writes results.json ("records": one per dataset, coupling, head, shuffled, n_train, seed, with
test_accuracy and the rest; "summary" with 95 % t-intervals; "paired" differences; provenance) and
figures to --out, atomically; a killed run restarted with the same --out skips finished cells.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import time

import numpy as np

import hamiltonian_cnn as hc
from hamiltonian_cnn.nn.coupling import CouplingLayer
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

FAMILIES = ("shared", "local", "sparse", "full", "local_narrow")
DATASETS = ("mnist1d", "translated", "digits", "cat", "cat_detect")
PERMUTATION_SEED = 12345  # the shuffle control's fixed permutation of sites
SPLIT_SEED = 2024  # the validation split and the canvas placements
BATCH = 32
CANVAS, TRAIN_COLUMNS, UNSEEN_COLUMNS = 16, (0, 4), (5, 9)

#: per dataset: heads, controls, training-set sizes ("all" = the whole training split), test-time
#: shifts (zero fill, in sites), validation fraction
PLAN = {
    "mnist1d": {"heads": ("dense",), "controls": ("original", "shuffled"), "sizes": (500, 1000, "all"),
                "shifts": (0, 1, 2, 4), "val": 0.1},
    "translated": {"heads": ("dense", "gap"), "controls": ("original",), "sizes": ("all",), "shifts": (),
                   "val": 0.2},
    "digits": {"heads": ("dense",), "controls": ("original", "shuffled"), "sizes": (100, "all"),
               "shifts": (0, 1, 2), "val": 0.2},
    "cat_detect": {"heads": ("dense", "gap"), "controls": ("original",), "sizes": (50, 100, 300, "all"),
                   "shifts": (), "val": 0.2},
    "cat": {"heads": ("sites",), "controls": ("original",), "sizes": (50, 100, 300, "all"), "shifts": (),
            "val": 0.2},
}


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


def validation_split(y, fraction):
    """(fit indices, validation indices): a fixed stratified split of the training data."""
    val = stratified_subset(y, max(len(np.unique(y)), int(round(fraction * len(y)))),
                            np.random.default_rng(SPLIT_SEED))
    return np.setdiff1d(np.arange(len(y)), val), val


@functools.lru_cache(maxsize=8)
def prepared(name: str, control: str):
    """The splits of a dataset: X_fit, y_fit, X_val, y_val, X_test, y_test, and extra test sets
    (translated: "unseen", the test digits at positions never trained on)."""
    extra = {}
    if name in ("cat", "cat_detect"):
        X, y, X_test, y_test = hc.data.load("cat", task="locate" if name == "cat" else "detect", size=12,
                                            n_train=1000, n_test=500, noise=0.5, seed=0)
    else:
        X, y, X_test, y_test = hc.data.load("mnist1d" if name == "mnist1d" else "digits")
    fit, val = validation_split(y, PLAN[name]["val"])
    X_fit, y_fit, X_val, y_val = X[fit], y[fit], X[val], y[val]
    if name == "translated":
        seen = hc.data.canvas_positions((8, 8), CANVAS, columns=TRAIN_COLUMNS)
        unseen = hc.data.canvas_positions((8, 8), CANVAS, columns=UNSEEN_COLUMNS)
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(SPLIT_SEED).spawn(4)]
        extra["unseen"] = hc.data.place_on_canvas(X_test, CANVAS, unseen, rngs[3])
        X_fit, X_val, X_test = (hc.data.place_on_canvas(A, CANVAS, seen, r) for A, r in
                                zip((X_fit, X_val, X_test), rngs[:3]))
    if control == "shuffled":
        X_fit, X_val, X_test = (hc.data.shuffle_sites(A, PERMUTATION_SEED) for A in (X_fit, X_val, X_test))
        extra = {k: hc.data.shuffle_sites(v, PERMUTATION_SEED) for k, v in extra.items()}
    n_classes = int(max(y.max(), y_test.max()) + 1)
    return X_fit, y_fit, X_val, y_val, X_test, y_test, extra, n_classes


@functools.lru_cache(maxsize=32)
def narrowed_channels(input_shape, n_classes, head):
    """The equal-parameter control: the widest local network, channels scaled down together from the
    default, with no more parameters than the shared one (same head)."""
    budget = hc.models.build("shared", input_shape, n_classes, head=head).n_params
    base = hc.models.default_channels(input_shape)
    for c in range(base[0], 0, -1):
        channels = tuple(max(1, round(w * c / base[0])) for w in base)
        if hc.models.build("local", input_shape, n_classes, channels=channels, head=head).n_params <= budget:
            return channels
    return channels


def build_model(cell, input_shape, n_classes):
    if cell["coupling"] == "local_narrow":
        channels = narrowed_channels(tuple(input_shape), n_classes, cell["head"])
        return hc.models.build("local", input_shape, n_classes, channels=channels, head=cell["head"],
                               seed=cell["seed"])
    if cell["head"] == "sites":  # locate: the output sites of one template-sized window are the classes
        info = hc.data.cat_info(size=12)
        return hc.models.build(cell["coupling"], input_shape, n_classes, channels=(), head="sites",
                               head_kernel=info["template_shape"], seed=cell["seed"])
    return hc.models.build(cell["coupling"], input_shape, n_classes, head=cell["head"], seed=cell["seed"])


def steps_budget(dataset, epochs):
    """Optimisation steps of every fit of a dataset: ``epochs`` passes over the full training split."""
    n_fit = len(prepared(dataset, "original")[1])
    return epochs * math.ceil(n_fit / BATCH)


def shifted(X, s):
    """The four (2D) or two (1D) zero-fill shifts of X by s sites."""
    if s == 0:
        return [X]
    moves = [(s, 0), (-s, 0)] if X.ndim == 3 else [(s, 0), (-s, 0), (0, s), (0, -s)]
    return [hc.data.shift(X, dx, dy) for dx, dy in moves]


def equivariance(model, X):
    """Per coupling layer with output sites: ||f(T x) - T f(x)|| / ||f(x)||, f the network up to that
    layer and T a shift by one of its sites along the last axis (the input shifted by the input
    sites one output site spans), circular (np.roll) and zero-fill (hc.data.shift)."""

    def trace(x):  # the output of every layer but the logits
        outs = []
        for layer in model.layers[:-1]:
            x = layer.forward(x)
            outs.append(x)
        return outs

    plain, shifted_traces, out = trace(X), {}, []
    n = X.shape[-1]
    for i, (layer, y) in enumerate(zip(model.layers, plain)):
        if not isinstance(layer, CouplingLayer) or y.ndim < 3 or n % y.shape[-1]:
            continue
        step = n // y.shape[-1]
        if step not in shifted_traces:
            shifted_traces[step] = (trace(np.roll(X, step, axis=-1)), trace(hc.data.shift(X, step)))
        rolled, zeroed = shifted_traces[step]
        want_roll, want_zero = np.roll(y, 1, axis=-1), hc.data.shift(y, 1)
        out.append({"layer": i, "type": type(layer).__name__, "sites": list(y.shape[2:]),
                    "circular": float(np.linalg.norm(rolled[i] - want_roll) / np.linalg.norm(want_roll)),
                    "zero": float(np.linalg.norm(zeroed[i] - want_zero) / np.linalg.norm(want_zero))})
    return out


def run_cell(cell: dict) -> dict:
    """Train one (dataset, coupling, head, control, size, seed, lr) cell and measure it."""
    X_fit, y_fit, X_val, y_val, X_test, y_test, extra, n_classes = prepared(cell["dataset"], cell["control"])
    idx = stratified_subset(y_fit, cell["size"], np.random.default_rng(cell["seed"]))
    model = build_model(cell, X_fit.shape[1:], n_classes)
    epochs = max(1, round(cell["steps"] / math.ceil(len(idx) / BATCH)))
    history = model.fit(X_fit[idx], y_fit[idx], epochs=epochs, batch_size=BATCH, lr=cell["lr"], seed=cell["seed"],
                        validation=(X_val, y_val), keep_best=True, progress=False)
    result = {
        "n_params": model.n_params,
        "train_size": int(len(idx)),
        "epochs": epochs,
        "steps": epochs * math.ceil(len(idx) / BATCH),
        "best_epoch": history["best_epoch"],
        "val_accuracy": float(max(history["val_accuracy"])),
        "train_accuracy": model.score(X_fit[idx], y_fit[idx]),
        "test_accuracy": model.score(X_test, y_test),
        "final_loss": history["loss"][-1],
        "train_time": history["wall_time"],
    }
    if "unseen" in extra:
        result["unseen_accuracy"] = model.score(extra["unseen"], y_test)
    if cell["shifts"]:
        # shift the sequence/image, then (shuffled control) apply the same fixed permutation
        plain = prepared(cell["dataset"], "original")[4]
        accs = {}
        for s in cell["shifts"]:
            moved = shifted(plain, s)
            if cell["control"] == "shuffled":
                moved = [hc.data.shuffle_sites(m, PERMUTATION_SEED) for m in moved]
            accs[str(s)] = float(np.mean([model.score(m, y_test) for m in moved]))
        result["shift_accuracy"] = accs
    if cell["control"] == "original" and cell["head"] != "sites":
        result["equivariance"] = equivariance(model, X_test[:200].astype(model.dtype))
    return result


# ---------------------------------------------------------------- the plan of cells


def groups(args):
    """Every (dataset, coupling, head, control) compared (the cat task's network has no block to narrow)."""
    return [(d, f, h, c) for d in args.datasets for h in PLAN[d]["heads"] for c in PLAN[d]["controls"]
            for f in args.couplings if not (d == "cat" and f == "local_narrow")]


def base_cell(args, dataset, coupling, head, control):
    return {"dataset": dataset, "coupling": coupling, "head": head, "control": control,
            "steps": steps_budget(dataset, args.epochs), "shifts": list(PLAN[dataset]["shifts"])}


def n_all(dataset):
    return len(prepared(dataset, "original")[1])


def sizes_of(args, dataset):
    sizes = PLAN[dataset]["sizes"] if args.sizes is None else args.sizes
    return sorted({n_all(dataset) if s == "all" else min(int(s), n_all(dataset)) for s in sizes})


def tuning_cells(args):
    """Learning-rate selection: the first seed, the full training split, every lr of the grid."""
    return [{**base_cell(args, *g), "size": n_all(g[0]), "seed": args.seed, "lr": lr}
            for g in groups(args) for lr in args.lrs]


def choose_lrs(args, cells, results):
    """The lr with the best validation accuracy per group (the smaller lr on ties)."""
    chosen = {}
    for g in groups(args):
        rows = [(r["val_accuracy"], -c["lr"], c["lr"]) for c, r in zip(cells, results)
                if (c["dataset"], c["coupling"], c["head"], c["control"]) == g]
        chosen[g] = max(rows)[2]
    return chosen


def main_cells(args, lrs):
    return [{**base_cell(args, *g), "size": size, "seed": args.seed + k, "lr": lrs[g]}
            for g in groups(args) for size in sizes_of(args, g[0]) for k in range(args.seeds)]


# ---------------------------------------------------------------- statistics


def to_records(cells, results):
    records = []
    for c, r in zip(cells, results):
        rec = {"dataset": c["dataset"], "coupling": c["coupling"], "head": c["head"],
               "shuffled": c["control"] == "shuffled", "n_train": r["train_size"], "seed": c["seed"], "lr": c["lr"]}
        rec.update(r)
        records.append(rec)
    return records


def key(r):
    return (r["dataset"], r["coupling"], r["head"], r["shuffled"], r["n_train"])


def summarise(records):
    """Per (dataset, coupling, head, shuffled, n_train): mean and 95 % t-interval over seeds."""
    by = {}
    for r in records:
        by.setdefault(key(r), []).append(r)
    out = []
    for k, rs in sorted(by.items(), key=lambda kv: (kv[0][0], FAMILIES.index(kv[0][1]), kv[0][2:])):
        row = dict(zip(("dataset", "coupling", "head", "shuffled", "n_train"), k))
        row.update({"n_params": rs[0]["n_params"], "lr": rs[0]["lr"], "steps": sorted({r["steps"] for r in rs}),
                    "test_accuracy": mean_ci([r["test_accuracy"] for r in rs]),
                    "train_time": mean_ci([r["train_time"] for r in rs])})
        if "unseen_accuracy" in rs[0]:
            row["unseen_accuracy"] = mean_ci([r["unseen_accuracy"] for r in rs])
        if "shift_accuracy" in rs[0]:
            row["shift_accuracy"] = {s: mean_ci([r["shift_accuracy"][s] for r in rs]) for s in rs[0]["shift_accuracy"]}
        if "equivariance" in rs[0]:
            row["equivariance"] = [{"layer": e["layer"], "type": e["type"], "sites": e["sites"],
                                    "circular": mean_ci([r["equivariance"][j]["circular"] for r in rs]),
                                    "zero": mean_ci([r["equivariance"][j]["zero"] for r in rs])}
                                   for j, e in enumerate(rs[0]["equivariance"])]
        out.append(row)
    return out


def paired(records, metric="test_accuracy"):
    """shared minus each other family, seed by seed (the same training subset and batch order), with a
    95 % t-interval of the mean difference."""
    value = {key(r) + (r["seed"],): r[metric] for r in records if metric in r}
    out = []
    for k in sorted({key(r) for r in records if r["coupling"] == "shared" and metric in r}):
        dataset, _, head, shuffled, n_train = k
        for other in FAMILIES[1:]:
            seeds = sorted(s for (*kk, s) in value if tuple(kk) == k
                           and (dataset, other, head, shuffled, n_train, s) in value)
            if seeds:
                diffs = [value[k + (s,)] - value[(dataset, other, head, shuffled, n_train, s)] for s in seeds]
                out.append({"dataset": dataset, "head": head, "shuffled": shuffled, "n_train": n_train,
                            "metric": metric, "versus": other, "shared_minus": mean_ci(diffs)})
    return out


# ---------------------------------------------------------------- figures

COLOURS = {"shared": "C0", "local": "C1", "sparse": "C2", "full": "C3", "local_narrow": "C4"}
STYLES = {"dense": "-", "gap": "--", "sites": "-"}


def _band(ax, xs, stats, **kw):
    ms = np.array([s["mean"] for s in stats])
    hs = np.array([s["ci95"] or 0.0 for s in stats])
    ax.plot(xs, ms, marker="o", **kw)
    ax.fill_between(xs, ms - hs, ms + hs, alpha=0.2, color=kw.get("color"))


def figures(out, summary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    datasets = sorted({r["dataset"] for r in summary}, key=DATASETS.index)
    # 1. accuracy against training-set size, original and shuffled sites
    # one panel per (dataset, original/shuffled) with more than one training-set size
    panels = [(d, sh) for d in datasets for sh in (False, True)
              if len({r["n_train"] for r in summary if r["dataset"] == d and r["shuffled"] == sh}) > 1]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
        for ax, (d, sh) in zip(axes[0], panels):
            rows = [r for r in summary if r["dataset"] == d and r["shuffled"] == sh]
            for f in FAMILIES:
                for h in ("dense", "gap", "sites"):
                    rs = sorted((r for r in rows if r["coupling"] == f and r["head"] == h), key=lambda r: r["n_train"])
                    if rs:
                        _band(ax, [r["n_train"] for r in rs], [r["test_accuracy"] for r in rs], color=COLOURS[f],
                              linestyle=STYLES[h], label=f"{f} ({h})")
            ax.set_xscale("log")
            ax.set_xlabel("training-set size")
            ax.set_title(f"{d}, {'shuffled' if sh else 'original'} sites", fontsize=10)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("test accuracy (95 % CI)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        atomic_savefig(fig, os.path.join(out, "accuracy_vs_size.png"), dpi=120)
        plt.close(fig)

    # 2. accuracy against a zero-fill shift of the test inputs (largest training set)
    shift_rows = [r for r in summary if "shift_accuracy" in r and not r["shuffled"]]
    if shift_rows:
        ds = sorted({r["dataset"] for r in shift_rows}, key=DATASETS.index)
        fig, axes = plt.subplots(1, len(ds), figsize=(4.5 * len(ds), 3.6), squeeze=False)
        for ax, d in zip(axes[0], ds):
            largest = max(r["n_train"] for r in shift_rows if r["dataset"] == d)
            for r in (r for r in shift_rows if r["dataset"] == d and r["n_train"] == largest):
                xs = sorted(r["shift_accuracy"], key=int)
                _band(ax, [int(s) for s in xs], [r["shift_accuracy"][s] for s in xs], color=COLOURS[r["coupling"]],
                      linestyle=STYLES[r["head"]], label=f"{r['coupling']} ({r['head']})")
            ax.set_xlabel("test-time shift (sites, zero fill)")
            ax.set_title(f"{d}, trained on {largest} unshifted", fontsize=10)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("test accuracy (95 % CI)")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        atomic_savefig(fig, os.path.join(out, "accuracy_vs_shift.png"), dpi=120)
        plt.close(fig)

    # 3. accuracy at seen and unseen positions (translated digits)
    moved = [r for r in summary if "unseen_accuracy" in r]
    if moved:
        fig, ax = plt.subplots(figsize=(7, 3.8))
        labels = [f"{r['coupling'].replace('_', chr(10))}\n{r['head']}" for r in moved]
        xs = np.arange(len(moved))
        for off, metric, name, alpha in ((-0.2, "test_accuracy", "seen positions", 0.45),
                                         (0.2, "unseen_accuracy", "unseen positions", 1.0)):
            ax.bar(xs + off, [r[metric]["mean"] for r in moved], 0.4, alpha=alpha, label=name,
                   yerr=[r[metric]["ci95"] or 0.0 for r in moved], capsize=3,
                   color=[COLOURS[r["coupling"]] for r in moved])
        ax.axhline(0.1, color="k", lw=0.8, ls=":", label="chance")
        ax.set_xticks(xs, labels, fontsize=8)
        ax.set_ylabel("test accuracy (95 % CI)")
        ax.set_title(f"digits on a {CANVAS}x{CANVAS} canvas: trained at columns {TRAIN_COLUMNS}, "
                     f"tested at {UNSEEN_COLUMNS}", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        atomic_savefig(fig, os.path.join(out, "unseen_positions.png"), dpi=120)
        plt.close(fig)

    # 4. equivariance error per coupling layer
    eq = [r for r in summary if r.get("equivariance")]
    if eq:
        ds = sorted({r["dataset"] for r in eq}, key=DATASETS.index)
        fig, axes = plt.subplots(1, len(ds), figsize=(4.5 * len(ds), 3.6), squeeze=False)
        for ax, d in zip(axes[0], ds):
            for r in eq:
                if r["dataset"] != d or r["n_train"] != max(x["n_train"] for x in eq if x["dataset"] == d):
                    continue
                for mode, marker in (("circular", "o"), ("zero", "x")):
                    ax.plot(range(1, len(r["equivariance"]) + 1), [e[mode]["mean"] for e in r["equivariance"]],
                            marker=marker, color=COLOURS[r["coupling"]], linestyle=STYLES[r["head"]],
                            label=f"{r['coupling']} ({r['head']}), {mode}")
            ax.set_yscale("symlog", linthresh=1e-3)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_xlabel("coupling block")
            ax.set_title(f"{d}: ||f(Tx) - T f(x)|| / ||f(x)||", fontsize=10)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=6)
        fig.tight_layout()
        atomic_savefig(fig, os.path.join(out, "equivariance.png"), dpi=120)
        plt.close(fig)


# ---------------------------------------------------------------- command line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist1d", help=f"comma-separated subset of {','.join(DATASETS)}, or all")
    p.add_argument("--couplings", default=",".join(FAMILIES), help=f"comma-separated subset of {','.join(FAMILIES)}")
    p.add_argument("--seeds", type=int, default=10, help="number of seeds (seed .. seed + seeds - 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed (also the seed of the lr selection)")
    p.add_argument("--sizes", default=None, help="training-set sizes for every dataset ('all' = the whole "
                                                 "training split; default: each dataset's own)")
    p.add_argument("--epochs", type=int, default=None,
                   help="the step budget, in passes over the full training split (default 20; --quick 8)")
    p.add_argument("--lrs", default=None, help="learning rates to choose from on the validation split "
                                               "(default 0.003,0.01,0.03; --quick 0.01)")
    p.add_argument("--quick", action="store_true", help="2 seeds, the full training split only, 8 epochs, lr 0.01")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/sharing_vs_coupling/<time>)")
    p.add_argument("--workers", type=int, default=1, help="worker processes for the cells")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (with --executor dask)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = min(args.seeds, 2)
        args.sizes = "all" if args.sizes is None else args.sizes
        args.epochs = 8 if args.epochs is None else args.epochs
        args.lrs = "0.01" if args.lrs is None else args.lrs
    args.epochs = 20 if args.epochs is None else args.epochs
    args.lrs = "0.003,0.01,0.03" if args.lrs is None else args.lrs
    args.datasets = list(DATASETS) if args.dataset.strip() == "all" else [d.strip() for d in args.dataset.split(",")]
    if not args.datasets or any(d not in DATASETS for d in args.datasets):
        p.error(f"--dataset: expected a subset of {','.join(DATASETS)} or all, got {args.dataset!r}")
    args.couplings = [c.strip() for c in args.couplings.split(",") if c.strip()]
    if not args.couplings or any(c not in FAMILIES for c in args.couplings):
        p.error(f"--couplings: expected a subset of {','.join(FAMILIES)}, got {','.join(args.couplings)!r}")
    try:
        args.lrs = sorted({float(v) for v in args.lrs.split(",")})
    except ValueError:
        p.error(f"--lrs: expected comma-separated numbers, got {args.lrs!r}")
    if any(not (math.isfinite(v) and v > 0) for v in args.lrs):
        p.error(f"--lrs: expected positive finite learning rates, got {args.lrs}")
    if args.sizes is not None:
        sizes = [s.strip() for s in args.sizes.split(",")]
        if not sizes or not all(s == "all" or (s.isdigit() and int(s) >= 1) for s in sizes):
            p.error(f"--sizes: expected comma-separated integers >= 1 or 'all', got {args.sizes!r}")
        args.sizes = sizes
    if args.seeds < 1 or args.epochs < 1 or args.workers < 1:
        p.error("--seeds, --epochs and --workers must be >= 1")
    if args.executor == "dask" and not args.scheduler:
        p.error("--executor dask needs --scheduler ADDRESS")
    check_cli_args(p, args)
    return args


def print_table(summary, pairs, seeds):
    print(f"\ntest accuracy, mean ± 95 % CI over {seeds} seed(s) (shift/unseen where measured)")
    for r in summary:
        t = r["test_accuracy"]
        extra = ""
        if "unseen_accuracy" in r:
            extra = f"   unseen positions {r['unseen_accuracy']['mean']:.3f}"
        if "shift_accuracy" in r:
            extra += "   shifts " + " ".join(f"{s}:{v['mean']:.3f}" for s, v in r["shift_accuracy"].items())
        ci = f" ± {t['ci95']:.3f}" if t["ci95"] is not None else ""
        print(f"  {r['dataset']:10s} {r['coupling']:7s} {r['head']:6s} "
              f"{'shuffled' if r['shuffled'] else 'original':8s} "
              f"n={r['n_train']:<5d} params={r['n_params']:<8d} lr={r['lr']:<6g} {t['mean']:.3f}{ci}{extra}")
    shown = [p for p in pairs if p["versus"] == "full"]
    if shown:
        print("shared − full, paired over seeds:")
        for p in shown:
            s = p["shared_minus"]
            ci = f" ± {s['ci95']:.3f}" if s["ci95"] is not None else ""
            print(f"  {p['dataset']:10s} {p['head']:6s} {'shuffled' if p['shuffled'] else 'original':8s} "
                  f"n={p['n_train']:<5d} {p['metric']:16s} {s['mean']:+.3f}{ci}")


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    out = output_folder(args.out, __file__)
    store = CellStore(out)
    progress = not args.no_progress
    tune = tuning_cells(args)
    tune_results = run_cells(run_cell, tune, store, workers=args.workers, executor=args.executor,
                             scheduler=args.scheduler, progress=progress, desc="lr on the validation split")
    lrs = choose_lrs(args, tune, tune_results)
    cells = main_cells(args, lrs)
    results = run_cells(run_cell, cells, store, workers=args.workers, executor=args.executor,
                        scheduler=args.scheduler, progress=progress, desc="sharing vs coupling")
    records = to_records(cells, results)
    summary = summarise(records)
    pairs = paired(records) + paired([r for r in records if "unseen_accuracy" in r], "unseen_accuracy")
    report = {
        "question": "What does weight sharing buy over local, sparse and full coupling at equal architecture?",
        "datasets": args.datasets,
        "protocol": {"batch_size": BATCH, "steps": {d: steps_budget(d, args.epochs) for d in args.datasets},
                     "lr_grid": args.lrs, "validation_fraction": {d: PLAN[d]["val"] for d in args.datasets},
                     "canvas": CANVAS, "train_columns": TRAIN_COLUMNS, "unseen_columns": UNSEEN_COLUMNS,
                     "permutation_seed": PERMUTATION_SEED},
        "lr_selection": [{**{k: c[k] for k in ("dataset", "coupling", "head", "control", "lr")},
                          "val_accuracy": r["val_accuracy"]} for c, r in zip(tune, tune_results)],
        "records": records,
        "summary": summary,
        "paired": pairs,
        "provenance": provenance(args, seed=args.seed, wall_time=time.perf_counter() - t0),
    }
    atomic_write_json(os.path.join(out, "results.json"), report)
    figures(out, summary)
    print_table(summary, pairs, args.seeds)
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
