"""From convolution to full coupling: relax the ties at a switch time t_w and keep training.

    python experiments/relax_coupling.py            # MNIST-1D, 5 seeds, 20 epochs, 7 switch times
    python experiments/relax_coupling.py --quick    # 1 seed, 8 epochs, 3 switch times: about a minute

d'Ascoli, Sagun, Bruna & Biroli (NeurIPS 2019) train a CNN, embed it at t_w in the fully connected
network that computes the same function (their eFCN) and train on. Here: the default shared
network on MNIST-1D is trained for t_w epochs, rewritten with ``Model.to_full()`` (target "full")
or ``Model.untie()`` (target "local") -- predictions identical at the switch -- and trained for
the remaining epochs (a fresh Adam at ``--lr-after``), with the same total number of epochs for
every t_w. t_w = 0 relaxes the
untrained CNN (its initialisation, embedded); t_w = epochs never relaxes (the CNN itself). The
same family trained from its own initialisation is the reference.

Measured every epoch: test accuracy, and for every coupling layer the unshared fraction
||J - P J|| / ||J||, P the orthogonal projection onto the shared subspace of that layer (the
couplings that a convolution with the same windows can write: P J = dense(project(J) / counts),
with the couplings' ``dense`` and ``project``). It is 0 for the CNN and grows as the relaxed
couplings leave the shared subspace.

Writes results.json ("records": one per seed, target and t_w, with the curves; provenance) and
figures to --out, atomically; a killed run restarted with the same --out skips finished cells.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import numpy as np

import hamiltonian_cnn as hc
from hamiltonian_cnn.nn.conv import _SharedConv
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

TARGETS = ("full", "local")


@functools.lru_cache(maxsize=2)
def dataset():
    return hc.data.load("mnist1d")


def shared_subspaces(model):
    """For every shared layer: (index, its coupling, input shape, tap counts) -- the shared subspace."""
    out = []
    for i, (layer, shape) in enumerate(zip(model.layers, model.shapes)):
        if isinstance(layer, _SharedConv):
            coupling = layer.coupling()
            ones = hc.SharedCoupling(np.ones_like(coupling.weight), stride=coupling.stride,
                                     padding=coupling.padding, dilation=coupling.dilation, groups=coupling.groups)
            counts = ones.project(ones.dense(shape), shape)
            out.append((i, coupling, shape, counts))
    return out


def unshared_fraction(layer, coupling, shape, counts):
    """||J - P J|| / ||J|| for the dense couplings J of a (relaxed) layer, P onto the shared subspace."""
    if isinstance(layer, _SharedConv):
        return 0.0
    J = layer.coupling().dense(shape).astype(np.float64)
    w = coupling.project(J, shape) / np.maximum(counts, 1)
    tied = hc.SharedCoupling(w, stride=coupling.stride, padding=coupling.padding, dilation=coupling.dilation,
                             groups=coupling.groups).dense(shape)
    return float(np.linalg.norm(J - tied) / max(np.linalg.norm(J), 1e-300))


def run_cell(cell):
    X, y, Xt, yt = dataset()
    curves = {"epoch": [], "test_accuracy": [], "unshared": []}
    if cell["t_w"] is None:  # the target family trained from its own initialisation
        model = hc.models.build(cell["target"], X.shape[1:], 10, seed=cell["seed"])
        subspaces = []
    else:
        model = hc.models.build("shared", X.shape[1:], 10, seed=cell["seed"])
        subspaces = shared_subspaces(model)

    def record(epoch, m):
        curves["epoch"].append(epoch)
        curves["test_accuracy"].append(m.score(Xt, yt))
        curves["unshared"].append([unshared_fraction(m.layers[i], c, s, n) for i, c, s, n in subspaces])

    t0 = time.perf_counter()
    t_w = cell["epochs"] if cell["t_w"] is None else cell["t_w"]
    if cell["t_w"] is None:
        model.fit(X, y, epochs=cell["epochs"], seed=cell["seed"], progress=False, callback=record)
    else:
        if t_w > 0:
            model.fit(X, y, epochs=t_w, seed=cell["seed"], progress=False, callback=record)
        before = model.score(Xt, yt)
        if t_w < cell["epochs"]:
            model = model.to_full() if cell["target"] == "full" else model.untie()
            switch_gap = abs(model.score(Xt, yt) - before)
            model.fit(X, y, epochs=cell["epochs"] - t_w, lr=cell["lr_after"], seed=cell["seed"] + 7919,
                      progress=False, callback=lambda e, m: record(e + t_w, m))
        else:
            switch_gap = 0.0
    return {"curves": curves, "final_test_accuracy": curves["test_accuracy"][-1], "n_params": model.n_params,
            "accuracy_change_at_switch": switch_gap if cell["t_w"] is not None else None,
            "train_time": time.perf_counter() - t0}


def summarise(cells, results):
    groups = {}
    for c, r in zip(cells, results):
        groups.setdefault((c["target"], c["t_w"]), []).append(r)
    rows = []
    for (target, t_w), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], -1 if kv[0][1] is None else kv[0][1])):
        rows.append({"target": target, "t_w": t_w, "n_params": rs[0]["n_params"],
                     "final_test_accuracy": mean_ci([r["final_test_accuracy"] for r in rs]),
                     "final_unshared": ([mean_ci([r["curves"]["unshared"][-1][k] for r in rs])
                                         for k in range(len(rs[0]["curves"]["unshared"][-1]))]
                                        if t_w is not None else None)})
    return rows


def figures(out, cells, results, summary, epochs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    for target, colour in zip(TARGETS, ("C3", "C1")):
        rows = [r for r in summary if r["target"] == target and r["t_w"] is not None]
        if not rows:
            continue
        xs = [r["t_w"] for r in rows]
        ms = np.array([r["final_test_accuracy"]["mean"] for r in rows])
        hs = np.array([r["final_test_accuracy"]["ci95"] or 0.0 for r in rows])
        ax.plot(xs, ms, "o-", color=colour, label=f"shared, relaxed to {target} at t_w")
        ax.fill_between(xs, ms - hs, ms + hs, color=colour, alpha=0.2)
        scratch = [r for r in summary if r["target"] == target and r["t_w"] is None]
        if scratch:
            ax.axhline(scratch[0]["final_test_accuracy"]["mean"], color=colour, ls=":",
                       label=f"{target} from its own initialisation")
    ax.set_xlabel(f"switch time t_w (epochs of {epochs}; t_w = {epochs}: the CNN)")
    ax.set_ylabel("final test accuracy (95 % CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[1]
    shown = "full" if any(c["target"] == "full" for c in cells) else cells[0]["target"]
    for c, r in zip(cells, results):
        if c["target"] != shown or c["t_w"] in (None, epochs) or c["seed"] != cells[0]["seed"]:
            continue
        unshared = np.array(r["curves"]["unshared"])
        ax.plot(r["curves"]["epoch"], unshared.mean(axis=1), marker=".", label=f"t_w = {c['t_w']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("unshared fraction ||J - PJ|| / ||J|| (mean over layers)")
    ax.set_title(f"relaxed to {shown} coupling (first seed)", fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "relaxation.png"), dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="total epochs of every run (default 20; --quick 8)")
    p.add_argument("--switch", default=None, help="switch times t_w in epochs, comma-separated "
                                                  "(default 0,1,2,5,10,15,epochs; --quick 0,2,epochs)")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset of full,local")
    p.add_argument("--lr-after", type=float, default=1e-3,
                   help="Adam's lr after the switch (default 1e-3, a tenth of fit's default: a fresh Adam at 1e-2 "
                        "throws the embedded network far from where the CNN left it)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--quick", action="store_true", help="1 seed, 8 epochs, switch at 0, 2 and 8")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/relax_coupling/<time>)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = 1
        args.epochs = 8 if args.epochs is None else args.epochs
        args.switch = "0,2,epochs" if args.switch is None else args.switch
    args.epochs = 20 if args.epochs is None else args.epochs
    args.switch = "0,1,2,5,10,15,epochs" if args.switch is None else args.switch
    if not (np.isfinite(args.lr_after) and args.lr_after > 0):
        p.error(f"--lr-after: expected a positive finite learning rate, got {args.lr_after}")
    if args.epochs < 1 or args.seeds < 1 or args.workers < 1:
        p.error("--epochs, --seeds and --workers must be >= 1")
    try:
        switch = {args.epochs if s.strip() == "epochs" else int(s) for s in args.switch.split(",")}
    except ValueError:
        p.error(f"--switch: expected comma-separated integers (or 'epochs'), got {args.switch!r}")
    if any(s < 0 or s > args.epochs for s in switch):
        p.error(f"--switch: every t_w must lie in [0, {args.epochs}], got {sorted(switch)}")
    args.switch = sorted(switch)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not args.targets or any(t not in TARGETS for t in args.targets):
        p.error(f"--targets: expected a subset of {','.join(TARGETS)}, got {args.targets}")
    check_cli_args(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    out = output_folder(args.out, __file__)
    cells = [{"target": target, "t_w": t_w, "seed": args.seed + k, "epochs": args.epochs, "lr_after": args.lr_after}
             for target in args.targets for t_w in [None] + args.switch for k in range(args.seeds)]
    results = run_cells(run_cell, cells, CellStore(out), workers=args.workers, progress=not args.no_progress,
                        desc="relax coupling")
    summary = summarise(cells, results)
    records = [{**c, **r} for c, r in zip(cells, results)]
    report = {"question": "Does a CNN relaxed to local or full coupling at t_w keep, lose or beat its accuracy?",
              "dataset": "mnist1d", "records": records, "summary": summary,
              "provenance": provenance(args, seed=args.seed, wall_time=time.perf_counter() - t0)}
    atomic_write_json(os.path.join(out, "results.json"), report)
    figures(out, cells, results, summary, args.epochs)
    print(f"\nMNIST-1D, final test accuracy after {args.epochs} epochs (mean ± 95 % CI over {args.seeds} seed(s))")
    for r in summary:
        a = r["final_test_accuracy"]
        ci = f" ± {a['ci95']:.3f}" if a["ci95"] is not None else ""
        which = "from its own init" if r["t_w"] is None else f"relaxed at t_w = {r['t_w']}"
        unshared = ("" if not r["final_unshared"] else
                    "   unshared fraction " + " ".join(f"{u['mean']:.2f}" for u in r["final_unshared"]))
        print(f"  {r['target']:5s} {which:22s} {a['mean']:.3f}{ci}{unshared}")
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
