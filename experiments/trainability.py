"""Which Boltzmann networks train? Ensemble x depth x input size x initialisation.

    python experiments/trainability.py            # 3 seeds, depths 2/4/8, canvases 8/16/32 (about 40 min)
    python experiments/trainability.py --quick    # under two minutes on 2 cores

Every "stack" cell builds the default shared network (``hc.models.build``, blocks of 16 channels,
one per depth step, 3x3 windows, 'same' padding, 2x2 max pools spread over the blocks as far as
the sites allow, dense head) on the real 8x8 digits placed at random positions of an S x S
canvas (S = 8: the digits as they are); every "lenet5" cell builds the LeNet-5 preset on the
8x8 digits (its 3 coupling blocks C1, C3, C5 count as its depth); every "resnet" cell builds the
ResNet preset with --resnet-depth residual blocks of 16 channels on the 8x8 digits, and every
"plain" cell the same couplings without the skips (``skips=False``): what the skips buy in depth
(opt-in: 16 blocks take minutes per cell). Each trains with the default ``fit`` (Adam, lr 1e-2,
batch 32). The factors:

    ensemble  binary   sigmoid, <d> passed forward as it is
              centred  sigmoid, d - mu passed forward (Centring; mu a running mean per channel)
              spin     tanh (the spin ensemble: tanh h = 2 sigmoid(2h) - 1)
              relu     the non-Boltzmann reference
    init      glorot   the layers' own Glorot (He for relu) uniform weights
              variance Glorot/He times the marginal's inverse slope at h = 0 (4 for the sigmoid) and
                       1/sqrt(the fraction of each window inside the input), so the field keeps its
                       variance through depth (build's default for stacks)
              fan_in   the same from the forward variance 1 / fan_in instead of Glorot's
                       2 / (fan_in + fan_out): larger where a block widens (the LeNet-5 preset's default)

Per cell: final test accuracy, the loss per epoch, and the gradient norm of every coupling
layer on a fixed batch of 256 training images, at initialisation and after one epoch (measured on
a twin of the network, so that the trained network sees exactly the default ``fit``).
Writes results.json (a "records" list, one record per cell, plus provenance) and figures to
--out, atomically; a killed run restarted with the same --out skips the finished cells.
"""

from __future__ import annotations

import argparse
import functools
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

ENSEMBLES = {"binary": ("sigmoid", False), "centred": ("sigmoid", True), "spin": ("tanh", False),
             "relu": ("relu", False)}
INITS = ("glorot", "variance", "fan_in")
MODELS = ("stack", "lenet5", "resnet", "plain")
LENET_DEPTH = 3  # C1, C3, C5
GRAD_BATCH = 256


@functools.lru_cache(maxsize=4)
def dataset(canvas: int):
    if canvas == 8:
        return hc.data.load("digits")
    return hc.data.load("digits", canvas=canvas)


def make_model(cell):
    activation, centring = ENSEMBLES[cell["ensemble"]]
    X_train = dataset(cell["canvas"])[0]
    if cell["model"] in ("resnet", "plain"):
        return hc.models.build("shared", input_shape=X_train.shape[1:], n_classes=10, preset="resnet",
                               channels=(16,) * cell["depth"], skips=cell["model"] == "resnet",
                               activation=activation, centring=centring, init=cell["init"], seed=cell["seed"])
    if cell["model"] == "lenet5":
        return hc.models.build("shared", input_shape=X_train.shape[1:], n_classes=10, preset="lenet5",
                               activation=activation, centring=centring, init=cell["init"], seed=cell["seed"])
    return hc.models.build("shared", input_shape=X_train.shape[1:], n_classes=10, channels=(16,) * cell["depth"],
                           activation=activation, centring=centring, init=cell["init"], seed=cell["seed"])


def gradient_norms(model, X, y):
    """|dL/dJ| of every coupling layer on (X, y); the centring offsets are first set from X."""
    model.set_training(True)
    model.forward(X)  # a first training-mode forward sets the offsets mu to the batch means
    model.set_training(False)
    model.loss_and_grad(X, y)
    return [float(np.linalg.norm(layer.grads["J"])) for layer in model.all_layers() if "J" in layer.params]


def run_cell(cell):
    X_train, y_train, X_test, y_test = dataset(cell["canvas"])
    if cell["n_train"] < len(y_train):
        pick = np.random.default_rng(cell["seed"]).permutation(len(y_train))[:cell["n_train"]]
        X_train, y_train = X_train[pick], y_train[pick]
    Xg, yg = X_train[:GRAD_BATCH], y_train[:GRAD_BATCH]
    twin = make_model(cell)
    grad_init = gradient_norms(twin, Xg, yg)
    twin.fit(X_train, y_train, epochs=1, seed=cell["seed"], progress=False)
    grad_epoch1 = gradient_norms(twin, Xg, yg)
    model = make_model(cell)
    t0 = time.perf_counter()
    history = model.fit(X_train, y_train, epochs=cell["epochs"], seed=cell["seed"], progress=False)
    return {"test_accuracy": model.score(X_test, y_test), "train_accuracy": model.score(X_train, y_train),
            "loss": history["loss"], "grad_norm_init": grad_init, "grad_norm_epoch1": grad_epoch1,
            "n_params": model.n_params, "train_time": time.perf_counter() - t0}


def summarise(records):
    """Mean, std and a 95% t-interval of the test accuracy per (model, ensemble, init, depth, canvas)."""
    groups = {}
    for r in records:
        key = (r.get("model", "stack"), r["ensemble"], r["init"], r["depth"], r["canvas"])
        groups.setdefault(key, []).append(r["test_accuracy"])
    out = []
    for (model, ensemble, init, depth, canvas), accs in sorted(groups.items()):
        stat = mean_ci(accs)
        out.append({"model": model, "ensemble": ensemble, "init": init, "depth": depth, "canvas": canvas,
                    "n_seeds": stat["n"], "mean": stat["mean"], "ci95": stat["ci95"], "min": stat["min"],
                    "max": stat["max"]})
    return out


STYLES = {"variance": "-", "fan_in": "--", "glorot": ":"}
MARKERS = {"variance": "o", "fan_in": "s", "glorot": "v"}
COLOURS = {"binary": "tab:red", "centred": "tab:blue", "spin": "tab:green", "relu": "tab:gray"}


def figures(out, records, summary, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacks = [s for s in summary if s.get("model", "stack") == "stack"]
    presets = [m for m in ("lenet5", "resnet", "plain") if any(s.get("model") == m for s in summary)]
    panels = [c for c in args.canvases if any(s["canvas"] == c for s in stacks)]
    n = len(panels) + bool(presets)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 1.2 * max(0, len(presets) - 1) * bool(presets), 3.6),
                             squeeze=False)
    for ax, canvas in zip(axes[0], panels):
        for ensemble in args.ensembles:
            for init in args.inits:
                rows = [s for s in stacks if s["ensemble"] == ensemble and s["init"] == init and s["canvas"] == canvas]
                if not rows:
                    continue
                depth = [s["depth"] for s in rows]
                mean = np.array([s["mean"] for s in rows])
                ci = np.array([s["ci95"] or 0.0 for s in rows])
                ax.errorbar(depth, mean, yerr=ci, fmt="o" + STYLES[init], color=COLOURS[ensemble], capsize=3,
                            label=f"{ensemble}, {init}")
        ax.axhline(0.1, color="k", lw=0.5, ls="--")
        ax.set_title(f"digits on a {canvas}x{canvas} canvas" if canvas > 8 else "digits 8x8")
        ax.set_xlabel("coupling blocks")
        ax.set_xticks(args.depths)
        ax.set_ylim(0, 1.02)
    if presets:  # one group of points per preset: ensembles side by side, inits by marker
        ax = axes[0][-1]
        slots = len(args.ensembles) * len(args.inits)
        for p_i, model in enumerate(presets):
            for slot, (ensemble, init) in enumerate((e, i) for e in args.ensembles for i in args.inits):
                row = [s for s in summary if (s.get("model"), s["ensemble"], s["init"]) == (model, ensemble, init)]
                if row:
                    x = p_i + (slot - (slots - 1) / 2) * 0.7 / max(1, slots)
                    ax.errorbar([x], [row[0]["mean"]], yerr=[row[0]["ci95"] or 0.0], fmt=MARKERS[init], capsize=2,
                                color=COLOURS[ensemble])
        labels = {"lenet5": "LeNet-5", "resnet": "ResNet-{d}", "plain": "no skips-{d}"}
        depth_of = {s.get("model"): s["depth"] for s in summary}
        ax.set_xticks(range(len(presets)), [labels[m].format(d=depth_of[m]) for m in presets])
        ax.set_title("digits 8x8 (" + ", ".join(f"{MARKERS[i]} {i}" for i in args.inits) + ")", fontsize=8)
        ax.axhline(0.1, color="k", lw=0.5, ls="--")
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("test accuracy (mean, 95% CI)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    fig.legend(handles, labels, fontsize=7, loc="center right")
    atomic_savefig(fig, os.path.join(out, "trainability.png"), dpi=120)
    plt.close(fig)

    depth, canvas = max(args.depths), min(args.canvases)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ensemble in args.ensembles:
        for init in args.inits:
            rows = [r for r in records if r["ensemble"] == ensemble and r["init"] == init and r["depth"] == depth
                    and r["canvas"] == canvas and r.get("model", "stack") == "stack"]
            if not rows:
                continue
            g = np.exp(np.mean(np.log(np.maximum([r["grad_norm_init"] for r in rows], 1e-30)), axis=0))
            axes[0].semilogy(np.arange(1, len(g) + 1), g, STYLES[init], marker="o", color=COLOURS[ensemble],
                             label=f"{ensemble}, {init}")
            loss = np.mean([r["loss"] for r in rows], axis=0)
            axes[1].plot(np.arange(1, len(loss) + 1), loss, STYLES[init], color=COLOURS[ensemble])
    axes[0].set_xlabel("coupling layer (input first)")
    axes[0].set_ylabel("|dL/dJ| at initialisation")
    axes[0].set_title(f"{depth} blocks, {canvas}x{canvas}")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7)
    axes[1].axhline(np.log(10), color="k", lw=0.5, ls="--")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("training loss")
    axes[1].set_title("ln 10 = chance")
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "trainability_gradients.png"), dpi=120)
    plt.close(fig)


def _ints(p, text, name):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        p.error(f"--{name}: expected comma-separated integers, got {text!r}")
    if not values or any(v < 1 for v in values):
        p.error(f"--{name}: expected integers >= 1, got {text!r}")
    return values


def _names(p, text, name, allowed):
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or any(v not in allowed for v in values):
        p.error(f"--{name}: expected a subset of {','.join(allowed)}, got {text!r}")
    return values


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ensembles", default=",".join(ENSEMBLES), help="subset of binary,centred,spin,relu")
    p.add_argument("--inits", default=",".join(INITS), help="subset of glorot,variance,fan_in")
    p.add_argument("--models", default="stack,lenet5",
                   help="subset of stack,lenet5,resnet,plain (lenet5, resnet, plain: on the 8x8 digits, once per "
                        "ensemble x init)")
    p.add_argument("--resnet-depth", type=int, default=16, help="residual blocks of the resnet and plain cells")
    p.add_argument("--depths", default="2,4,8", help="coupling blocks (16 channels each)")
    p.add_argument("--canvases", default="8,16,32", help="canvas sides (8: the digits as they are)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (seed .. seed + seeds - 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 30, the fit default; --quick 8)")
    p.add_argument("--n-train", type=int, default=None, help="training images (default all 1347; --quick 600)")
    p.add_argument("--quick", action="store_true",
                   help="depths 2,8, canvases 8,16, inits variance,fan_in, 1 seed, 8 epochs, 600 images")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/trainability/<time>)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        if args.depths == p.get_default("depths"):
            args.depths = "2,8"
        if args.canvases == p.get_default("canvases"):
            args.canvases = "8,16"
        if args.inits == p.get_default("inits"):
            args.inits = "variance,fan_in"
        args.seeds = 1 if args.seeds == p.get_default("seeds") else args.seeds
        args.epochs = 8 if args.epochs is None else args.epochs
        args.n_train = 600 if args.n_train is None else args.n_train
    args.epochs = 30 if args.epochs is None else args.epochs
    args.n_train = 1347 if args.n_train is None else args.n_train
    if args.resnet_depth < 1:
        p.error(f"--resnet-depth: expected an integer >= 1, got {args.resnet_depth}")
    if args.seeds < 1 or args.epochs < 1 or args.n_train < 10:
        p.error("--seeds and --epochs must be >= 1, --n-train >= 10")
    args.ensembles = _names(p, args.ensembles, "ensembles", tuple(ENSEMBLES))
    args.inits = _names(p, args.inits, "inits", INITS)
    args.models = _names(p, args.models, "models", MODELS)
    args.depths = _ints(p, args.depths, "depths")
    args.canvases = _ints(p, args.canvases, "canvases")
    if any(c < 8 for c in args.canvases):
        p.error(f"--canvases: a canvas holds an 8x8 digit, expected sides >= 8, got {args.canvases}")
    check_cli_args(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    out = output_folder(args.out, __file__)
    common = {"epochs": args.epochs, "n_train": args.n_train}
    cells = [{"model": "stack", "ensemble": e, "init": i, "depth": d, "canvas": c, "seed": args.seed + k, **common}
             for c in args.canvases for d in args.depths for e in args.ensembles for i in args.inits
             for k in range(args.seeds)] if "stack" in args.models else []
    for model in ("resnet", "plain"):
        if model in args.models:
            cells += [{"model": model, "ensemble": e, "init": i, "depth": args.resnet_depth, "canvas": 8,
                       "seed": args.seed + k, **common}
                      for e in args.ensembles for i in args.inits for k in range(args.seeds)]
    if "lenet5" in args.models:
        cells += [{"model": "lenet5", "ensemble": e, "init": i, "depth": LENET_DEPTH, "canvas": 8,
                   "seed": args.seed + k, **common}
                  for e in args.ensembles for i in args.inits for k in range(args.seeds)]
    results = run_cells(run_cell, cells, CellStore(out), progress=not args.no_progress, desc="trainability")
    records = [{**c, **r} for c, r in zip(cells, results)]
    summary = summarise(records)
    report = {"question": "Which Boltzmann networks train: ensemble x depth x input size x initialisation",
              "records": records, "summary": summary,
              "provenance": provenance(args, seed=args.seed, wall_time=time.perf_counter() - t0)}
    atomic_write_json(os.path.join(out, "results.json"), report)
    figures(out, records, summary, args)
    print(f"\ntest accuracy, mean over {args.seeds} seed(s) (95% CI), {args.epochs} epochs, {args.n_train} images")
    columns = [("stack", d, c) for c in args.canvases for d in args.depths] if "stack" in args.models else []
    columns += [("lenet5", LENET_DEPTH, 8)] if "lenet5" in args.models else []
    columns += [(m, args.resnet_depth, 8) for m in ("resnet", "plain") if m in args.models]
    names = {"lenet5": "LeNet-5 8x8", "resnet": "ResNet-{d}", "plain": "plain-{d}", "stack": "d={d} S={c}"}
    print("  ensemble  init     " + "".join(f"  {names[m].format(d=d, c=c):<14s}" for m, d, c in columns))
    table = {(s["model"], s["ensemble"], s["init"], s["depth"], s["canvas"]): s for s in summary}
    for e in args.ensembles:
        for i in args.inits:
            texts = []
            for m, d, c in columns:
                cell = table.get((m, e, i, d, c))
                texts.append("–" if cell is None else f"{cell['mean']:.3f}"
                             + (f"+-{cell['ci95']:.3f}" if cell["ci95"] is not None else ""))
            print(f"  {e:8s}  {i:8s}" + "".join(f"  {t:<14s}" for t in texts))
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
