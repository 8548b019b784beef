"""What does a local coupling learn, and how far are its untied windows from being shared?

    python experiments/learned_filters.py            # 3 seeds, 40 epochs
    python experiments/learned_filters.py --quick    # 1 seed, 10 epochs: a few seconds

Trains three one-block networks on the 8x8 digits (a k x k coupling with C channels, sigmoid,
2x2 max pool, a linear classifier; ``hc.models.build(family, (1, 8, 8), 10, channels=(C,))``):

    shared        J_ab: one window per filter (convolution)
    local         J_{IJ,ab}: one window per filter and output site, randomly initialised
    local (tied)  the same local network started *at* the shared one: every site's window set to
                  the shared network's initial J_ab and the same classifier, so at step 0 the two
                  compute the same function and any difference after training comes from untying

For each local filter it measures how far the per-site windows w_IJ are from a shared coupling.
The site-mean window m = mean_IJ w_IJ is the orthogonal projection of J_{IJ,ab} onto the tied
(shared) couplings, so

    unshared fraction = sum_IJ |w_IJ - m|^2 / sum_IJ |w_IJ|^2    (0: shared; 1 - 1/sites: i.i.d. windows)
    relative spread   = rms_IJ |w_IJ - m| / |m|
    correlation       = Pearson correlation of each site's window with m (1: the same pattern)

and the same numbers at initialisation, for reference. Also: the correlation of each tied local
filter's site-mean with the shared filter it started from, after training.

Writes results.json (accuracies, per-filter numbers, per-site correlation maps) and PNGs:
filters.png (the shared J_ab next to the local J_{IJ,ab}: site means and every site's window)
and sharing.png (unshared fraction per filter and the per-site correlation map), atomically.
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np

import hamiltonian_cnn as hc
from hamiltonian_cnn._io import atomic_write_bytes
from hamiltonian_cnn.sweep import (
    atomic_savefig,
    atomic_write_json,
    check_cli_args,
    output_folder,
    print_outputs,
    provenance,
)

RUNS = ("shared", "local", "local_tied")


def sharing_stats(J: np.ndarray) -> dict:
    """How far a local coupling J (C_out, OH, OW, C_in, kh, kw) is from a shared one, per filter."""
    n_out, oh, ow = J.shape[:3]
    W = J.reshape(n_out, oh * ow, -1).astype(np.float64)
    m = W.mean(axis=1)
    dev = W - m[:, None, :]
    unshared = (dev ** 2).sum(axis=(1, 2)) / (W ** 2).sum(axis=(1, 2))
    spread = np.sqrt((dev ** 2).sum(axis=2).mean(axis=1)) / np.linalg.norm(m, axis=1)
    Wc = W - W.mean(axis=2, keepdims=True)
    mc = m - m.mean(axis=1, keepdims=True)
    corr = (Wc * mc[:, None, :]).sum(axis=2) / (np.linalg.norm(Wc, axis=2) * np.linalg.norm(mc, axis=1)[:, None])
    return {
        "unshared_fraction": unshared.tolist(),
        "relative_spread": spread.tolist(),
        "mean_correlation": corr.mean(axis=1).tolist(),
        "min_correlation": corr.min(axis=1).tolist(),
        "correlation_map": corr.reshape(n_out, oh, ow).mean(axis=0).tolist(),  # averaged over filters
        "summary": {"unshared_fraction": float(np.median(unshared)), "relative_spread": float(np.median(spread)),
                    "mean_correlation": float(corr.mean()), "iid_unshared_fraction": 1 - 1 / (oh * ow)},
    }


def pearson(a, b):
    a = np.ravel(a) - np.mean(a)
    b = np.ravel(b) - np.mean(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def train(args, seed, data):
    """Train the three networks for one seed; return numbers and the first-layer couplings."""
    from hamiltonian_cnn import models

    X, y, Xt, yt = data
    arch = dict(channels=(args.channels,), kernel_size=args.kernel, padding=args.padding, seed=seed)
    shared = models.build("shared", X.shape[1:], 10, **arch)
    local = models.build("local", X.shape[1:], 10, **arch)
    tied = models.build("local", X.shape[1:], 10, **arch)
    J0 = shared.layers[0].params["J"].copy()
    # start the tied local network at the shared one: every site's window = J_ab, same classifier
    tied.layers[0].params["J"][...] = J0[:, None, None]
    if "b" in tied.layers[0].params:
        tied.layers[0].params["b"][...] = shared.layers[0].params["b"][:, None, None]
    for lt, ls in zip(tied.layers[1:], shared.layers[1:]):
        for key in lt.params:
            lt.params[key][...] = ls.params[key]
    start_gap = float(np.abs(tied.decision_function(Xt[:64]) - shared.decision_function(Xt[:64])).max())
    init = {"local": local.layers[0].params["J"].copy(), "local_tied": tied.layers[0].params["J"].copy()}
    out = {"seed": seed, "tied_start_max_logit_gap": start_gap, "runs": {}}
    couplings = {}
    for name, model in (("shared", shared), ("local", local), ("local_tied", tied)):
        hist = model.fit(X, y, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer, seed=seed, progress=False)
        J = model.layers[0].params["J"].copy()
        couplings[name] = J
        run = {"n_params": model.n_params, "first_layer_params": model.layers[0].n_params,
               "train_accuracy": model.score(X, y), "test_accuracy": model.score(Xt, yt),
               "final_loss": hist["loss"][-1], "train_time": hist["wall_time"]}
        if name != "shared":
            run["trained"] = sharing_stats(J)
            run["init"] = sharing_stats(init[name])
        out["runs"][name] = run
    # the tied network's site-mean windows against the shared filters they started from
    tied_mean = couplings["local_tied"].mean(axis=(1, 2))
    out["tied_vs_shared_filter_correlation"] = [pearson(tied_mean[o], couplings["shared"][o])
                                                for o in range(args.channels)]
    # the random-init local network: best |correlation| of each site-mean with any shared filter
    local_mean = couplings["local"].mean(axis=(1, 2))
    out["local_best_match_to_shared"] = [max(abs(pearson(local_mean[o], couplings["shared"][p]))
                                             for p in range(args.channels)) for o in range(args.channels)]
    return out, couplings


# ---------------------------------------------------------------- figures


def mosaic(J_o: np.ndarray) -> np.ndarray:
    """Every site's window of one local filter (OH, OW, C_in, kh, kw) tiled, channels summed, NaN gaps."""
    oh, ow = J_o.shape[:2]
    w = J_o.sum(axis=2)  # (OH, OW, kh, kw)
    kh, kw = w.shape[2:]
    img = np.full((oh * (kh + 1) - 1, ow * (kw + 1) - 1), np.nan)
    for i in range(oh):
        for j in range(ow):
            img[i * (kh + 1):i * (kh + 1) + kh, j * (kw + 1):j * (kw + 1) + kw] = w[i, j]
    return img


def figures(out, couplings, result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shared, local, tied = couplings["shared"], couplings["local"], couplings["local_tied"]
    n = shared.shape[0]
    rows = [("shared $J_{ab}$", [shared[o].sum(axis=0) for o in range(n)]),
            ("local (tied start)\nsite mean", [tied[o].mean(axis=(0, 1)).sum(axis=0) for o in range(n)]),
            ("local (tied start)\nevery site $J_{IJ,ab}$", [mosaic(tied[o]) for o in range(n)]),
            ("local (random start)\nsite mean", [local[o].mean(axis=(0, 1)).sum(axis=0) for o in range(n)]),
            ("local (random start)\nevery site $J_{IJ,ab}$", [mosaic(local[o]) for o in range(n)])]
    heights = [1, 1, 2.2, 1, 2.2]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n + 1.5, sum(heights) * 1.35),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    runs = result["runs"]
    for r, (label, images) in enumerate(rows):
        for o, img in enumerate(images):
            ax = axes[r, o]
            vmax = np.nanmax(np.abs(img)) or 1.0
            ax.imshow(img, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"filter {o}", fontsize=9)
            if r in (2, 4):
                key = "local_tied" if r == 2 else "local"
                ax.set_xlabel(f"unshared {runs[key]['trained']['unshared_fraction'][o]:.2f}", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=9)
    acc = ", ".join(f"{k.replace('_', ' ')} {runs[k]['test_accuracy']:.3f}" for k in RUNS)
    fig.suptitle(f"First-layer couplings after training on digits (seed {result['seed']}; test accuracy: {acc})",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    atomic_savefig(fig, os.path.join(out, "filters.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    x = np.arange(n)
    width = 0.2
    bars = [("local, init", runs["local"]["init"]), ("local, trained", runs["local"]["trained"]),
            ("tied start, trained", runs["local_tied"]["trained"])]
    for i, (label, stats) in enumerate(bars):
        axes[0].bar(x + (i - 1) * width, stats["unshared_fraction"], width, label=label)
    axes[0].axhline(runs["local"]["init"]["summary"]["iid_unshared_fraction"], color="k", ls=":", lw=1,
                    label="i.i.d. windows")
    axes[0].set_xlabel("filter")
    axes[0].set_ylabel(r"$\sum |w_{IJ} - \bar w|^2 / \sum |w_{IJ}|^2$")
    axes[0].set_title("unshared fraction of each local filter (0 = shared)")
    axes[0].set_ylim(0, 1.3)
    axes[0].legend(fontsize=8, ncol=2, loc="upper center")
    for ax, key, title in ((axes[1], "local", "random start"), (axes[2], "local_tied", "tied start")):
        cmap = np.array(runs[key]["trained"]["correlation_map"])
        im = ax.imshow(cmap, cmap="viridis", vmin=-1, vmax=1)
        for (i, j), v in np.ndenumerate(cmap):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.5 else "k")
        ax.set_title(f"{title}: corr(site window, site mean),\nmean over filters, per output site", fontsize=10)
        ax.set_xlabel("output column J")
        ax.set_ylabel("output row I")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "sharing.png"), dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--channels", type=int, default=8, help="filters in the coupling block")
    p.add_argument("--kernel", type=int, default=3, help="window side k")
    p.add_argument("--padding", default="0", help="padding of the block: an int or valid/same (default 0)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 40; --quick 10)")
    p.add_argument("--lr", type=float, default=1e-2, help="learning rate")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="adam rescales every weight's step (a site with tiny gradients moves as fast as the "
                        "rest); sgd moves each weight in proportion to its gradient")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3; --quick 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--quick", action="store_true", help="1 seed, 10 epochs: a few seconds")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/learned_filters/<time>)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.epochs = (10 if args.quick else 40) if args.epochs is None else args.epochs
    args.seeds = (1 if args.quick else 3) if args.seeds is None else args.seeds
    if args.padding.isdigit():
        args.padding = int(args.padding)
    elif args.padding not in ("valid", "same"):
        p.error(f"--padding: expected an int >= 0, valid or same, got {args.padding!r}")
    if min(args.channels, args.kernel, args.epochs, args.seeds) < 1 or not args.lr > 0:
        p.error("--channels, --kernel, --epochs, --seeds must be >= 1 and --lr > 0")
    if isinstance(args.padding, int) and args.padding >= args.kernel:
        p.error(f"--padding: expected less than --kernel ({args.kernel}): wider padding only adds sites that see "
                f"zeros, got {args.padding}")
    check_cli_args(p, args, finite=("lr",))
    try:  # the block must fit the 8x8 digits
        hc.output_size(8, args.kernel, padding=args.padding)
    except ValueError as exc:
        p.error(f"--kernel: a {args.kernel}x{args.kernel} window with padding {args.padding!r} does not fit "
                f"the 8x8 digits ({exc})")
    return args


def main(argv=None):
    from tqdm.auto import tqdm

    args = parse_args(argv)
    t0 = time.perf_counter()
    out = output_folder(args.out, __file__)
    data = hc.data.load("digits")
    per_seed, first_couplings = [], None
    for k in tqdm(range(args.seeds), desc="training", disable=args.no_progress, unit="seed"):
        result, couplings = train(args, args.seed + k, data)
        per_seed.append(result)
        if first_couplings is None:
            first_couplings = couplings
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **couplings)
            atomic_write_bytes(os.path.join(out, "couplings.npz"), buffer.getvalue())

    def mean(values):
        return float(np.mean(values))

    summary = {}
    for name in RUNS:
        rs = [r["runs"][name] for r in per_seed]
        summary[name] = {"n_params": rs[0]["n_params"], "first_layer_params": rs[0]["first_layer_params"],
                         "test_accuracy": mean([r["test_accuracy"] for r in rs]),
                         "train_accuracy": mean([r["train_accuracy"] for r in rs])}
        if name != "shared":
            for when in ("init", "trained"):
                summary[name][when] = {key: mean([r[when]["summary"][key] for r in rs])
                                       for key in ("unshared_fraction", "relative_spread", "mean_correlation")}
            summary[name]["iid_unshared_fraction"] = rs[0]["init"]["summary"]["iid_unshared_fraction"]
    summary["tied_vs_shared_filter_correlation"] = mean([np.mean(r["tied_vs_shared_filter_correlation"])
                                                         for r in per_seed])
    summary["local_best_match_to_shared"] = mean([np.mean(r["local_best_match_to_shared"]) for r in per_seed])
    summary["tied_start_max_logit_gap"] = max(r["tied_start_max_logit_gap"] for r in per_seed)
    report = {
        "question": "After training, how far are a local coupling's per-site windows J_{IJ,ab} from one shared "
                    "window J_ab?",
        "architecture": {"channels": args.channels, "kernel": args.kernel, "padding": args.padding,
                         "epochs": args.epochs, "lr": args.lr, "optimizer": args.optimizer},
        "summary": summary,
        "per_seed": per_seed,
        "provenance": provenance(args, seed=args.seed, wall_time=time.perf_counter() - t0),
    }
    atomic_write_json(os.path.join(out, "results.json"), report)
    figures(out, first_couplings, per_seed[0])

    print(f"\ndigits, {args.channels} filters {args.kernel}x{args.kernel}, padding {args.padding}, {args.epochs} "
          "epochs, "
          f"{args.optimizer} lr {args.lr}, {args.seeds} seed(s)")
    print(f"  {'network':12s} {'params':>7s} {'layer 1':>8s} {'test acc':>9s}  unshared (init -> trained)  "
          f"rel. spread   corr(site, mean)")
    for name in RUNS:
        s = summary[name]
        line = f"  {name:12s} {s['n_params']:7d} {s['first_layer_params']:8d} {s['test_accuracy']:9.3f}"
        if name != "shared":
            i, t = s["init"], s["trained"]
            line += (f"  {i['unshared_fraction']:.3f} -> {t['unshared_fraction']:.3f}           "
                     f"{i['relative_spread']:.2f} -> {t['relative_spread']:.2f}  "
                     f"{i['mean_correlation']:.2f} -> {t['mean_correlation']:.2f}")
        print(line)
    print(f"  i.i.d. windows would give unshared fraction {summary['local']['iid_unshared_fraction']:.3f}; "
          f"tied start vs its shared filter after training: corr {summary['tied_vs_shared_filter_correlation']:.3f}; "
          f"random start best match to a shared filter: |corr| {summary['local_best_match_to_shared']:.3f}")
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
