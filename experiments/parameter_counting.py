"""How many parameters does each coupling family need? Seed 002's argument and seed 001's table.

    python experiments/parameter_counting.py            # a few seconds (--quick is the same run)

1. Seed 002: a 1000 x 1000 image and 10^6 hidden units (one per pixel). Full coupling needs
   10^12 weights, local coupling with 10 x 10 windows 10^8, shared (one 10 x 10 kernel) 10^2, and
   100 shared kernels 10^4. Every count is computed by ``hc.coupling_params`` with the output
   sites from ``hc.output_size`` (padding "same"); biases are left out, as in the argument, and
   the counts with biases are recorded beside them.
2. Seed 001's table: CONV (F F C + 1) K, POOL 0, FC (N_in + 1) N_out, layer by layer, for LeNet-5
   and VGG-16, with the totals checked against the published counts, and for LeNet-5 against the
   ``n_params`` of the networks the package builds (``hc.models.build(..., preset="lenet5")``) in
   each of the three families.
3. The formulas against the package's own objects at sizes that can be built: a shared coupling,
   its untied local coupling (``untie``) and the full coupling (``to_full``) at 28 x 28, and the
   layers SharedConv2d / LocalConv2d / FullCoupled with the same geometry.

Prints the tables; writes results.json and parameters_vs_side.png (parameters against image side
for the three families, log scale) to --out, atomically.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

import hamiltonian_cnn as hc
from hamiltonian_cnn.sweep import (
    atomic_savefig,
    atomic_write_json,
    check_cli_args,
    output_folder,
    print_outputs,
    provenance,
)

#: published totals the formulas must reproduce
LENET5_PUBLISHED = 61_706  # LeNet-5 with a fully connected C3 (the usual modern reading)
VGG16_PUBLISHED = 138_357_544  # Simonyan & Zisserman's configuration D ("138 M"), as in Keras / torchvision


# ---------------------------------------------------------------- seed 002


def seed002(side=1000, window=10, kernels=100):
    """Parameters of one layer from a side x side image to one hidden unit per pixel."""
    sites = (side, side)
    out = tuple(hc.output_size(s, window, padding="same") for s in sites)
    counts = {}
    for bias in (False, True):
        key = "with_bias" if bias else "weights"
        counts[key] = {
            "full": hc.coupling_params("full", sites, out, bias=bias),
            "local": hc.coupling_params("local", sites, out, (window, window), bias=bias),
            "shared": hc.coupling_params("shared", sites, out, (window, window), bias=bias),
            f"shared_{kernels}_kernels": hc.coupling_params("shared", sites, out, (window, window),
                                                           out_channels=kernels, bias=bias),
            f"local_{kernels}_kernels": hc.coupling_params("local", sites, out, (window, window),
                                                          out_channels=kernels, bias=bias),
        }
    return {"image": list(sites), "hidden_units": math.prod(out), "output_sites": list(out), "window": window,
            "kernels": kernels, **counts,
            "log10": {k: math.log10(v) for k, v in counts["weights"].items()}}


# ---------------------------------------------------------------- seed 001's table


def conv(name, shape, k, c_out, stride=1, padding=0):
    """A CONV row: (F F C + 1) K."""
    c_in, h, w = shape
    oh, ow = (hc.output_size(s, k, stride, padding) for s in (h, w))
    n = hc.conv_params(c_in, c_out, k)
    return {"layer": name, "type": "CONV", "kernel": k, "output": [c_out, oh, ow],
            "formula": f"({k}*{k}*{c_in} + 1) * {c_out}", "params": n}, (c_out, oh, ow)


def pool(name, shape, k, stride=None):
    c, h, w = shape
    stride = stride or k
    oh, ow = (hc.output_size(s, k, stride) for s in (h, w))
    row = {"layer": name, "type": "POOL", "output": [c, oh, ow], "formula": "0", "params": hc.pool_params()}
    return row, (c, oh, ow)


def fc(name, n_in, n_out):
    n_in = math.prod(n_in) if isinstance(n_in, tuple) else n_in
    return {"layer": name, "type": "FC", "output": [n_out], "formula": f"({n_in} + 1) * {n_out}",
            "params": hc.fc_params(n_in, n_out)}, n_out


def lenet5_table(shape=(1, 32, 32), n_classes=10):
    rows = []
    for builder in (lambda s: conv("C1", s, 5, 6), lambda s: pool("S2", s, 2), lambda s: conv("C3", s, 5, 16),
                    lambda s: pool("S4", s, 2), lambda s: conv("C5", s, 5, 120)):
        row, shape = builder(shape)
        rows.append(row)
    row, n = fc("F6", shape, 84)
    rows.append(row)
    row, _ = fc("output", n, n_classes)
    rows.append(row)
    return rows


def vgg16_table(shape=(3, 224, 224), n_classes=1000):
    rows = []
    plan = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
    for block, (width, repeat) in enumerate(plan, start=1):
        for r in range(1, repeat + 1):
            row, shape = conv(f"conv{block}_{r}", shape, 3, width, padding=1)
            rows.append(row)
        row, shape = pool(f"pool{block}", shape, 2)
        rows.append(row)
    n = shape
    for name, width in (("fc6", 4096), ("fc7", 4096), ("fc8", n_classes)):
        row, n = fc(name, n, width)
        rows.append(row)
    return rows


def family_counts(table, in_shape):
    """The same architecture with every CONV layer as a shared / local / full coupling (formulas)."""
    totals = {"shared": 0, "local": 0, "full": 0}
    shape = in_shape
    for row in table:
        if row["type"] == "CONV":
            k = row["kernel"]
            out = tuple(row["output"])
            for family in totals:
                totals[family] += hc.coupling_params(family, shape[1:], out[1:], (k, k), in_channels=shape[0],
                                                     out_channels=out[0])
        elif row["type"] == "FC":
            for family in totals:
                totals[family] += row["params"]
        shape = tuple(row["output"])
    return totals


def lenet5_built(in_shape=(1, 32, 32), n_classes=10):
    """n_params of the LeNet-5 networks the package builds, per family and per layer."""
    from hamiltonian_cnn import models

    out = {}
    for family in ("shared", "local", "full"):
        model = models.build(family, in_shape, n_classes, preset="lenet5", seed=0)
        out[family] = {"n_params": model.n_params,
                       "layers": [[type(layer).__name__, layer.n_params] for layer in model.layers]}
    return out


# ---------------------------------------------------------------- the package's objects at small sizes


GEOMETRIES = [  # (C_in, C_out, kernel, stride, padding)
    (1, 1, 5, 1, 0),
    (1, 6, 5, 1, "same"),
    (3, 4, 3, 2, 1),
]


def small_sizes(side, rng, geometries=GEOMETRIES):
    from hamiltonian_cnn import nn

    rows = []
    for c_in, c_out, k, stride, padding in geometries:
        shape = (c_in, side, side)
        shared = hc.SharedCoupling(rng.normal(size=(c_out, c_in, k, k)), rng.normal(size=c_out), stride=stride,
                                   padding=padding)
        local = shared.untie(shape)
        full = local.to_full()
        out_sites = shared.output_shape(shape)[1:]
        formula = {f: hc.coupling_params(f, (side, side), out_sites, (k, k), in_channels=c_in, out_channels=c_out)
                   for f in ("shared", "local", "full")}
        couplings = {"shared": shared.n_params, "local": local.n_params, "full": full.n_params}
        layers = {
            "shared": nn.SharedConv2d(c_in, c_out, k, stride=stride, padding=padding, seed=0).n_params,
            "local": nn.LocalConv2d(c_in, c_out, k, stride=stride, padding=padding, input_size=(side, side),
                                    seed=0).n_params,
            "full": nn.FullCoupled(shape, (c_out,) + tuple(out_sites), seed=0).n_params,
        }
        x = rng.normal(size=(2,) + shape)
        field_gap = max(float(np.abs(local.field(x) - shared.field(x)).max()),
                        float(np.abs(full.field(x) - shared.field(x)).max()))
        rows.append({"input": list(shape), "out_channels": c_out, "kernel": k, "stride": stride, "padding": padding,
                     "output_sites": list(out_sites), "formula": formula, "coupling_n_params": couplings,
                     "layer_n_params": layers, "field_max_gap": field_gap,
                     "nonzero_dense_entries": int(np.count_nonzero(full.weight)),
                     "agree": formula == couplings == layers})
    return rows


# ---------------------------------------------------------------- figure


def figure(out, sides, curves, s002):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8))
    styles = {"full": ("C3", "-"), "local": ("C1", "-"), "shared": ("C0", "-"),
              f"shared_{s002['kernels']}_kernels": ("C0", "--")}
    for name, values in curves.items():
        color, ls = styles[name]
        ax.loglog(sides, values, ls, color=color, lw=2, label=name.replace("_", " "))
    side = s002["image"][0]
    for name, value in s002["weights"].items():
        if name in curves:
            ax.plot([side], [value], "o", color=styles[name][0], ms=7)
            ax.annotate(f"$10^{{{math.log10(value):.0f}}}$", (side, value), textcoords="offset points",
                        xytext=(8, -4), fontsize=9)
    ax.axvline(side, color="k", ls=":", lw=1)
    ax.set_xlabel("image side n (n x n pixels, one hidden unit per pixel)")
    ax.set_ylabel("parameters (weights, no biases)")
    ax.set_title(f"Full ~ n^4, local ~ n^2 k^2, shared ~ k^2  (k = {s002['window']})")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "parameters_vs_side.png"), dpi=120)
    plt.close(fig)


def print_table(title, rows):
    print(f"\n{title}")
    print(f"  {'layer':9s} {'type':5s} {'output':>16s}  {'formula':28s} {'params':>12s}")
    for r in rows:
        print(f"  {r['layer']:9s} {r['type']:5s} {'x'.join(map(str, r['output'])):>16s}  {r['formula']:28s} "
              f"{r['params']:12,d}")
    print(f"  {'total':9s} {'':5s} {'':16s}  {'':28s} {sum(r['params'] for r in rows):12,d}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=1000, help="image side for seed 002's argument")
    p.add_argument("--window", type=int, default=10, help="window side for the local and shared couplings")
    p.add_argument("--kernels", type=int, default=100, help="number of shared kernels")
    p.add_argument("--small-side", type=int, default=28, help="image side at which the couplings are built")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="accepted for uniformity: the whole script takes seconds")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/parameter_counting/<time>)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.side < args.window or args.window < 1 or args.kernels < 1:
        p.error("--side >= --window >= 1 and --kernels >= 1 are required")
    if not 5 <= args.small_side <= 40:
        p.error(f"--small-side: expected 5..40 (the full coupling is built densely), got {args.small_side}")
    check_cli_args(p, args)
    return args


def main(argv=None):
    from tqdm.auto import tqdm

    args = parse_args(argv)
    t0 = time.perf_counter()
    out = output_folder(args.out, __file__)
    rng = np.random.default_rng(args.seed)
    steps = tqdm(total=4, desc="parameter counting", disable=args.no_progress)

    s002 = seed002(args.side, args.window, args.kernels)
    steps.update(1)
    lenet, vgg = lenet5_table(), vgg16_table()
    tables = {
        "lenet5": {"input": [1, 32, 32], "layers": lenet, "total": sum(r["params"] for r in lenet),
                   "published": LENET5_PUBLISHED, "families_by_formula": family_counts(lenet, (1, 32, 32))},
        "vgg16": {"input": [3, 224, 224], "layers": vgg, "total": sum(r["params"] for r in vgg),
                  "published": VGG16_PUBLISHED, "families_by_formula": family_counts(vgg, (3, 224, 224))},
    }
    for t in tables.values():
        t["matches_published"] = t["total"] == t["published"]
    steps.update(1)
    built = lenet5_built()
    tables["lenet5"]["built_n_params"] = {f: v["n_params"] for f, v in built.items()}
    tables["lenet5"]["built_layers"] = {f: v["layers"] for f, v in built.items()}
    tables["lenet5"]["built_matches_formula"] = {f: built[f]["n_params"] == tables["lenet5"]["families_by_formula"][f]
                                                 for f in built}
    steps.update(1)
    small = small_sizes(args.small_side, rng)
    steps.update(1)
    steps.close()

    sides = np.unique(np.logspace(math.log10(args.window), math.log10(max(4 * args.side, 10 * args.window)), 60)
                      .round().astype(int))
    curves = {
        "full": [hc.coupling_params("full", (n, n), (n, n), bias=False) for n in sides],
        "local": [hc.coupling_params("local", (n, n), (n, n), args.window, bias=False) for n in sides],
        "shared": [hc.coupling_params("shared", (n, n), (n, n), args.window, bias=False) for n in sides],
        f"shared_{args.kernels}_kernels": [hc.coupling_params("shared", (n, n), (n, n), args.window,
                                                              out_channels=args.kernels, bias=False) for n in sides],
    }
    report = {
        "question": "How many parameters do full, local and shared couplings need (seed 002), and do the "
                    "layer formulas of seed 001 match what the package builds?",
        "seed002": s002,
        "tables": tables,
        "small_sizes": small,
        "curves": {"sides": sides.tolist(), **curves},
        "provenance": provenance(args, seed=args.seed, wall_time=time.perf_counter() - t0),
    }
    atomic_write_json(os.path.join(out, "results.json"), report)
    figure(out, sides, curves, s002)

    w = s002["weights"]
    print(f"\nSeed 002: a {args.side}x{args.side} image, {s002['hidden_units']:.0e} hidden units, "
          f"{args.window}x{args.window} windows (weights only; with biases in results.json)")
    for name, value in w.items():
        print(f"  {name:22s} {value:>20,d}  = 10^{math.log10(value):.2f}")
    print_table("Seed 001: LeNet-5 on 1x32x32 (CONV (F F C + 1) K, POOL 0, FC (N_in + 1) N_out)", lenet)
    print(f"  published {LENET5_PUBLISHED:,}: {'match' if tables['lenet5']['matches_published'] else 'MISMATCH'}")
    fam = tables["lenet5"]["families_by_formula"]
    print("  the same network by family (formula): " + ", ".join(f"{f} {n:,}" for f, n in fam.items()))
    print("  hc.models.build(..., preset='lenet5').n_params: "
          + ", ".join(f"{f} {n:,}" for f, n in tables["lenet5"]["built_n_params"].items())
          + f"  ({'all match' if all(tables['lenet5']['built_matches_formula'].values()) else 'MISMATCH'})")
    print_table("Seed 001: VGG-16 on 3x224x224", vgg)
    print(f"  published {VGG16_PUBLISHED:,}: {'match' if tables['vgg16']['matches_published'] else 'MISMATCH'}")
    fam = tables["vgg16"]["families_by_formula"]
    print("  the same network by family (formula): " + ", ".join(f"{f} {n:,}" for f, n in fam.items()))
    print(f"\nFormula vs the package's couplings (shared, .untie(), .to_full()) and layers at "
          f"{args.small_side}x{args.small_side}:")
    print(f"  {'C_in->C_out k s pad':22s} {'shared':>8s} {'local':>10s} {'full':>12s}  agree  max|h gap|")
    for r in small:
        f = r["formula"]
        tag = f"{r['input'][0]}->{r['out_channels']} {r['kernel']} {r['stride']} {r['padding']}"
        print(f"  {tag:22s} {f['shared']:8,d} {f['local']:10,d} {f['full']:12,d}  {str(r['agree']):5s}  "
              f"{r['field_max_gap']:.1e}")
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
