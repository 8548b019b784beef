"""Does weight sharing help when the energy models the data? Shared vs local vs full RBMs.

    python experiments/generative_sharing.py --quick     # 1 seed, two training-set sizes, under two minutes
    python experiments/generative_sharing.py             # 10 seeds, four sizes, learning rate chosen on validation

The three coupling families have the same hidden units (``channels`` feature maps on the output
sites of one k x k window, stride 1, no padding) and differ only in their ties: shared (the
convolutional RBM), local (the same windows, untied) and full (every hidden unit to every pixel).
Datasets, all binary:

  digits      the real 8x8 digits, binarised at 0.5 (4 maps, 3x3 windows: 144 hidden units)
  translated  the same digits at random positions of a 16x16 canvas (4 maps, 5x5: 576 hidden)
  cat         the 4x4 "cat" pattern planted at a random site of an 8x8 image, no noise
              (2 maps, 4x4: 50 hidden); the best model puts 1/25 on each of the 25 images

Every model trains with PCD-1 (100 persistent chains, batch 20, momentum 0.5, weight decay 1e-4)
for the same number of updates at every training-set size, from weights N(0, (2/sqrt(fan-in))^2)
and visible biases at the logit of the training pixels' means. The learning rate is lr / (sites
a weight is tied over) (a shared weight's gradient is a sum over the output sites), with lr
chosen from ``--lrs`` on a validation split (a fifth of the training images) by AIS
log-likelihood, at the first seed and the largest training set. The outside reference is
scikit-learn's BernoulliRBM (full coupling, the same hidden units and number of updates, its own
learning rate chosen the same way), its weights loaded into ``hc.RBM(FullCoupling)``.

Every model is scored the same way: test log-likelihood -F(x) - log Z, log Z by AIS from the
data's base rate (``--ais-chains`` runs over ``--ais-betas`` temperatures) with its standard
error. Writes results.json (records, a summary with 95 % t-intervals over seeds, provenance),
figures (log-likelihood against parameters and against training-set size, samples, learned
filters) and the trained models to --out, atomically; a killed run restarted with the same --out
skips the finished cells.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import time

import numpy as np

import hamiltonian_cnn as hc
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

FAMILIES = ("shared", "local", "full", "sklearn")
#: (maps, window) per dataset: the hidden units every family shares
ARCH = {"digits": (4, 3), "translated": (4, 5), "cat": (2, 4)}
DATASETS = tuple(ARCH)
BATCH, CHAINS, MOMENTUM, DECAY = 20, 100, 0.5, 1e-4


@functools.lru_cache(maxsize=8)
def dataset(name: str, seed: int = 0):
    """Binary (X_train, X_test), float64, shaped (N, 1, H, W)."""
    if name == "digits":
        X, _, Xt, _ = hc.data.load("digits")
    elif name == "translated":
        X, _, Xt, _ = hc.data.load("digits", canvas=16, seed=seed)
    elif name == "cat":
        X, _, Xt, _ = hc.data.load("cat", size=8, noise=0.0, task="locate", n_train=1000, n_test=500, seed=seed)
    else:
        raise ValueError(f"dataset: expected one of {DATASETS}, got {name!r}")
    return (X > 0.5).astype(np.float64), (Xt > 0.5).astype(np.float64)


def split(X, n_train, seed, validation):
    """The training subset of ``n_train`` images (first seed's permutation), or (train, validation)."""
    order = np.random.default_rng(1000 + seed).permutation(len(X))
    n_val = len(X) // 5
    if validation:
        return X[order[n_val:]][:n_train], X[order[:n_val]]
    return X[order[:n_train]], None


def logit_mean(X, axis=0, eps=1e-3):
    p = np.clip(X.mean(axis=axis), eps, 1 - eps)
    return np.log(p / (1 - p))


def base_rate(X):
    """The data's base rate as a visible bias: logit of each pixel's mean (Salakhutdinov & Murray's AIS start)."""
    return logit_mean(X)


def tied_sites(rbm) -> int:
    """How many entries of J_{IJ,ij} one weight stands for: the output sites for shared, else 1."""
    return math.prod(rbm.hidden_shape[1:]) if rbm.coupling.family == "shared" else 1


def train(cell, X):
    """Train one model of ``cell`` on X; returns the hc.RBM (sklearn's weights loaded into a full one)."""
    steps, seed = cell["steps"], cell["seed"]
    shape = X.shape[1:]
    maps, window = ARCH[cell["dataset"]]
    epochs = max(1, round(steps * BATCH / len(X)))
    if cell["family"] == "sklearn":
        from sklearn.neural_network import BernoulliRBM

        probe = hc.RBM.build("full", shape, channels=maps, kernel_size=window)
        sk = BernoulliRBM(n_components=probe.n_hidden, learning_rate=cell["lr"], batch_size=BATCH, n_iter=epochs,
                          random_state=seed)
        sk.fit(X.reshape(len(X), -1))
        coupling = hc.FullCoupling(sk.components_.reshape(probe.hidden_shape + shape),
                                   sk.intercept_hidden_.reshape(probe.hidden_shape), input_shape=shape)
        return hc.RBM(coupling, shape, visible_bias=sk.intercept_visible_.reshape(shape), seed=seed)
    rbm = hc.RBM.build(cell["family"], shape, channels=maps, kernel_size=window, seed=seed)
    a = rbm.params["a"]
    a[...] = logit_mean(X, axis=(0, 2, 3)) if a.shape == (shape[0],) else logit_mean(X)
    rbm.fit(X, epochs=epochs, method="pcd", lr=cell["lr"] / tied_sites(rbm), batch_size=BATCH, momentum=MOMENTUM,
            weight_decay=DECAY, n_chains=CHAINS, seed=seed, progress=False)
    return rbm


def score(rbm, X_eval, X_train, cell):
    log_z, se = rbm.log_partition("ais", n_chains=cell["ais_chains"], n_betas=cell["ais_betas"],
                                  seed=cell["seed"] + 7, base=base_rate(X_train))
    return {"log_likelihood": rbm.log_likelihood(X_eval, log_z=log_z), "log_z": log_z, "log_z_se": se,
            "train_log_likelihood": rbm.log_likelihood(X_train, log_z=log_z)}


def run_cell(cell, out=None):
    X_all, X_test = dataset(cell["dataset"])
    t0 = time.perf_counter()
    if cell["phase"] == "select":
        X, X_val = split(X_all, cell["n_train"], cell["seed"], validation=True)
        rbm = train(cell, X)
        return {**score(rbm, X_val, X, cell), "train_time": time.perf_counter() - t0}
    X, _ = split(X_all, cell["n_train"], cell["seed"], validation=False)
    rbm = train(cell, X)
    train_time = time.perf_counter() - t0
    result = {**score(rbm, X_test, X, cell), "n_params": rbm.n_params, "n_hidden": rbm.n_hidden,
              "train_time": train_time}
    if out is not None:
        name = f"{cell['dataset']}_{cell['family']}_n{cell['n_train']}_s{cell['seed']}"
        result["model"] = os.path.relpath(rbm.save(os.path.join(out, "models", name)), out)
    return result


def summarise(records):
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["family"], r["n_train"]), []).append(r)
    out = []
    for (d, f, n), rows in sorted(groups.items()):
        stat = mean_ci([r["log_likelihood"] for r in rows])
        out.append({"dataset": d, "family": f, "n_train": n, "n_params": rows[0]["n_params"],
                    "n_hidden": rows[0]["n_hidden"], "lr": rows[0]["lr"], "n_seeds": stat["n"],
                    "mean": stat["mean"], "ci95": stat["ci95"],
                    "ais_se": float(np.sqrt(np.mean([r["log_z_se"] ** 2 for r in rows]))),
                    "train_log_likelihood": float(np.mean([r["train_log_likelihood"] for r in rows]))})
    return out


COLOURS = {"shared": "tab:red", "local": "tab:blue", "full": "tab:green", "sklearn": "tab:gray"}


def _err(s):
    """Error bar: the 95 % interval over seeds, or twice the AIS standard error with one seed."""
    return s["ci95"] if s["ci95"] is not None else 2 * s["ais_se"]


def figures(out, records, summary, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_max = {d: max(s["n_train"] for s in summary if s["dataset"] == d) for d in args.datasets}
    fig, axes = plt.subplots(1, len(args.datasets), figsize=(4.2 * len(args.datasets), 3.6), squeeze=False)
    for ax, d in zip(axes[0], args.datasets):
        for s in summary:
            if s["dataset"] == d and s["n_train"] == n_max[d]:
                ax.errorbar(s["n_params"], s["mean"], yerr=_err(s), fmt="o", capsize=3, color=COLOURS[s["family"]],
                            label=s["family"])
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_title(f"{d} ({n_max[d]} training images)")
    axes[0][0].set_ylabel("test log-likelihood (nats, AIS)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "loglik_vs_params.png"), dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(args.datasets), figsize=(4.2 * len(args.datasets), 3.6), squeeze=False)
    for ax, d in zip(axes[0], args.datasets):
        for f in args.families:
            rows = sorted((s for s in summary if s["dataset"] == d and s["family"] == f), key=lambda s: s["n_train"])
            if rows:
                ax.errorbar([s["n_train"] for s in rows], [s["mean"] for s in rows], yerr=[_err(s) for s in rows],
                            fmt="o-", capsize=3, color=COLOURS[f], label=f)
        ax.set_xscale("log")
        ax.set_xlabel("training images")
        ax.set_title(d)
    axes[0][0].set_ylabel("test log-likelihood (nats, AIS)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "loglik_vs_size.png"), dpi=120)
    plt.close(fig)

    # samples: 8 chains per model after 1000 sweeps from the base rate, shown as E[x | d]
    n_show = 8
    models = {}
    for r in records:
        if r["seed"] == args.seed and r["n_train"] == n_max[r["dataset"]] and r.get("model"):
            models[(r["dataset"], r["family"])] = hc.RBM.load(os.path.join(out, r["model"]))
    rows = [(d, f) for d in args.datasets for f in args.families if (d, f) in models]
    fig, axes = plt.subplots(len(rows), n_show + 1, figsize=(1.1 * (n_show + 1), 1.15 * len(rows)), squeeze=False)
    for i, (d, f) in enumerate(rows):
        rbm = models[(d, f)]
        x = rbm.sample(n_show, n_steps=args.sample_steps, seed=args.seed)
        mean = rbm.visible_mean(rbm.sample_hidden(x, np.random.default_rng(args.seed)))
        axes[i][0].axis("off")
        axes[i][0].text(0.0, 0.5, f"{d}\n{f}", fontsize=7, va="center")
        for j in range(n_show):
            axes[i][j + 1].imshow(mean[j, 0], cmap="gray_r", vmin=0, vmax=1)
            axes[i][j + 1].axis("off")
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "samples.png"), dpi=120)
    plt.close(fig)

    # filters: every shared map; for local and full the weights into the first map's central hidden unit
    fig, axes = plt.subplots(len(args.datasets), 6, figsize=(7.5, 1.4 * len(args.datasets)), squeeze=False)
    for i, d in enumerate(args.datasets):
        for ax in axes[i]:
            ax.axis("off")
        if (d, "shared") in models:
            W = models[(d, "shared")].params["J"]
            for j in range(min(4, W.shape[0])):
                axes[i][j].imshow(W[j, 0], cmap="RdBu_r", vmin=-np.abs(W).max(), vmax=np.abs(W).max())
                axes[i][j].set_title(f"{d}: shared {j}", fontsize=6)
        for k, f in enumerate(("local", "full")):
            if (d, f) in models:
                rbm = models[(d, f)]
                J = rbm.coupling.dense(rbm.input_shape)
                centre = tuple(s // 2 for s in rbm.hidden_shape[1:])
                w = J[(0,) + centre][0]
                axes[i][4 + k].imshow(w, cmap="RdBu_r", vmin=-np.abs(w).max(), vmax=np.abs(w).max())
                axes[i][4 + k].set_title(f"{f}: unit {centre}", fontsize=6)
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "filters.png"), dpi=120)
    plt.close(fig)


def _list(p, text, name, allowed=None, kind=str):
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        p.error(f"--{name}: expected comma-separated {kind.__name__}s, got {text!r}")
    if not values:
        p.error(f"--{name}: expected a comma-separated list, got {text!r}")
    if allowed is not None and any(v not in allowed for v in values):
        p.error(f"--{name}: expected a subset of {','.join(allowed)}, got {text!r}")
    return values


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS), help="subset of digits,translated,cat")
    p.add_argument("--families", default=",".join(FAMILIES), help="subset of shared,local,full,sklearn")
    p.add_argument("--sizes", default="100,200,400,800", help="training-set sizes (capped at the data's)")
    p.add_argument("--steps", type=int, default=None, help="parameter updates per model (default 3000; --quick 300)")
    p.add_argument("--lrs", default="0.01,0.03,0.1,0.3,1", help="learning rates to choose from on validation")
    p.add_argument("--sklearn-lrs", default="0.01,0.03,0.1", help="BernoulliRBM learning rates to choose from")
    p.add_argument("--ais-chains", type=int, default=None, help="AIS runs (default 100; --quick 50)")
    p.add_argument("--ais-betas", type=int, default=None, help="AIS temperatures (default 3000; --quick 500)")
    p.add_argument("--sample-steps", type=int, default=1000, help="Gibbs sweeps for the samples figure")
    p.add_argument("--seeds", type=int, default=10, help="number of seeds (seed .. seed + seeds - 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--quick", action="store_true",
                   help="1 seed, sizes 200 and 800, 300 updates, lr 0.1 and sklearn 0.03 (no selection), small AIS")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/generative_sharing/<time>)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        if args.sizes == p.get_default("sizes"):
            args.sizes = "200,800"
        if args.lrs == p.get_default("lrs"):
            args.lrs = "0.1"
        if args.sklearn_lrs == p.get_default("sklearn_lrs"):
            args.sklearn_lrs = "0.03"
        args.seeds = 1 if args.seeds == p.get_default("seeds") else args.seeds
        args.steps = 300 if args.steps is None else args.steps
        args.ais_chains = 50 if args.ais_chains is None else args.ais_chains
        args.ais_betas = 500 if args.ais_betas is None else args.ais_betas
        args.sample_steps = 200 if args.sample_steps == p.get_default("sample_steps") else args.sample_steps
    args.steps = 3000 if args.steps is None else args.steps
    args.ais_chains = 100 if args.ais_chains is None else args.ais_chains
    args.ais_betas = 3000 if args.ais_betas is None else args.ais_betas
    for name, low in (("seeds", 1), ("steps", 1), ("ais_chains", 2), ("ais_betas", 10), ("sample_steps", 0)):
        if getattr(args, name) < low:
            p.error(f"--{name.replace('_', '-')}: expected an integer >= {low}, got {getattr(args, name)}")
    args.datasets = _list(p, args.datasets, "datasets", DATASETS)
    args.families = _list(p, args.families, "families", FAMILIES)
    args.sizes = sorted(set(_list(p, args.sizes, "sizes", kind=int)))
    if min(args.sizes) < 10:
        p.error(f"--sizes: expected training-set sizes >= 10, got {args.sizes}")
    for name in ("lrs", "sklearn_lrs"):
        values = _list(p, getattr(args, name), name.replace("_", "-"), kind=float)
        if not all(math.isfinite(v) and v > 0 for v in values):
            p.error(f"--{name.replace('_', '-')}: expected finite learning rates > 0, got {values}")
        setattr(args, name, values)
    check_cli_args(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    prov = provenance(args, seed=args.seed)  # the commit the code was loaded from, taken before the run
    out = output_folder(args.out, __file__)
    store = CellStore(out)
    common = {"steps": args.steps, "ais_chains": args.ais_chains, "ais_betas": args.ais_betas}
    sizes = {d: [n for n in args.sizes if n <= len(split(dataset(d)[0], 10**9, args.seed, False)[0])]
             or [len(dataset(d)[0])] for d in args.datasets}

    # 1. the learning rate of each (dataset, family), on the validation split
    chosen, select_cells = {}, []
    for d in args.datasets:
        for f in args.families:
            lrs = args.sklearn_lrs if f == "sklearn" else args.lrs
            if len(lrs) == 1:
                chosen[(d, f)] = lrs[0]
                continue
            n_fit = len(split(dataset(d)[0], 10**9, args.seed, True)[0])
            select_cells += [{"phase": "select", "dataset": d, "family": f, "lr": lr, "n_train": min(max(sizes[d]),
                             n_fit), "seed": args.seed, **common} for lr in lrs]
    selection = run_cells(run_cell, select_cells, store, progress=not args.no_progress, desc="select lr")
    best = {}
    for c, r in zip(select_cells, selection):
        key = (c["dataset"], c["family"])
        if key not in best or r["log_likelihood"] > best[key]:
            best[key], chosen[key] = r["log_likelihood"], c["lr"]

    # 2. the runs that are reported
    cells = [{"phase": "test", "dataset": d, "family": f, "lr": chosen[(d, f)], "n_train": n, "seed": args.seed + k,
              **common}
             for d in args.datasets for n in sizes[d] for f in args.families for k in range(args.seeds)]
    results = run_cells(functools.partial(run_cell, out=out), cells, store, progress=not args.no_progress,
                        desc="generative_sharing")
    records = [{**c, **r} for c, r in zip(cells, results)]
    summary = summarise(records)
    report = {"question": "Does weight sharing help when the energy models the data: shared vs local vs full RBMs",
              "arch": {d: {"maps": ARCH[d][0], "window": ARCH[d][1]} for d in args.datasets},
              "training": {"method": "pcd", "k": 1, "batch_size": BATCH, "n_chains": CHAINS, "momentum": MOMENTUM,
                           "weight_decay": DECAY, "steps": args.steps},
              "chosen_lr": [{"dataset": d, "family": f, "lr": lr} for (d, f), lr in chosen.items()],
              "selection": [{**c, **r} for c, r in zip(select_cells, selection)],
              "records": records, "summary": summary,
              "provenance": {**prov, "wall_time": time.perf_counter() - t0}}
    atomic_write_json(os.path.join(out, "results.json"), report)
    figures(out, records, summary, args)
    print(f"\ntest log-likelihood (nats; AIS, {args.ais_chains} runs x {args.ais_betas} temperatures), "
          f"{args.seeds} seed(s), {args.steps} updates")
    for s in summary:
        err = f"+-{s['ci95']:.2f}" if s["ci95"] is not None else f"(AIS se {s['ais_se']:.2f})"
        print(f"  {s['dataset']:10s} {s['family']:8s} n={s['n_train']:<5d} params={s['n_params']:<7d} "
              f"lr={s['lr']:<6g} {s['mean']:9.2f} {err}   train {s['train_log_likelihood']:.2f}")
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
