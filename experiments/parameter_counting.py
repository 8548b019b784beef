"""How many parameters does each coupling family need? Seed 002's argument and seed 001's table.

    python experiments/parameter_counting.py            # a few minutes (trains the presets on digits)
    python experiments/parameter_counting.py --quick    # about a minute

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

4. Seed 002's classic networks: two (three) stacked 3x3 couplings see what one 5x5 (7x7) sees,
   with 18/25 (27/49 = 55 %) of its weights: receptive fields by the recursion and by an impulse
   response of the package's layers. An Inception module's 1x1 bottleneck: weights and
   multiply-adds with and without it (Szegedy et al.'s module 3a). The parameter count of every
   preset (lenet5, vgg, resnet, inception) per family and input kind, and its test accuracy on
   digits with the defaults (--accuracy-seeds fits per preset and family).

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
    mean_ci,
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


# ---------------------------------------------------------------- seed 002's classic networks


def impulse_extent(layers, side) -> list[int]:
    """Rows and columns of the output sites that respond to a unit impulse at the centre of a
    side x side input: the receptive field seen from the input (stride 1, "same" padding, linear
    layers with positive weights, so no response can cancel)."""
    x = np.zeros((1, layers[0].in_ch, side, side))
    x[0, :, side // 2, side // 2] = 1.0
    for layer in layers:
        x = layer.forward(x)
    rows, cols = np.nonzero(np.abs(x[0]).sum(axis=0) > 0)
    return [int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)]


def stacked_windows(channels=(1, 16, 64), seed=0):
    """Seed 002 (VGG): n stacked 3x3 couplings see what one (2n+1)x(2n+1) coupling sees, with
    n 9 C^2 weights instead of (2n+1)^2 C^2: 18/25 for two, 27/49 = 55 % for three. The receptive
    fields by the recursion (``hc.receptive_field``) and by an impulse response of the package's
    layers; the weights by ``hc.conv_params`` and by the layers' ``n_params`` (no biases)."""
    from hamiltonian_cnn import nn

    rng = np.random.default_rng(seed)

    def layer(c, k):
        conv = nn.SharedConv2d(c, c, k, padding="same", activation=None, bias=False, dtype=np.float64,
                               seed=int(rng.integers(2 ** 31)))
        conv.params["J"][...] = np.abs(conv.params["J"]) + 0.1  # positive: no cancellation in the response
        return conv

    rows = []
    for n, big in ((2, 5), (3, 7)):
        row = {"stack": f"{n} x 3x3", "single": f"{big}x{big}",
               "rf_recursion_stack": hc.receptive_field([(3, 1)] * n),
               "rf_recursion_single": hc.receptive_field([(big, 1)]), "ratio_formula": f"{9 * n}/{big * big}",
               "ratio": 9 * n / big ** 2, "channels": []}
        side = 2 * big + 1
        row["rf_impulse_stack"] = impulse_extent([layer(2, 3) for _ in range(n)], side)
        row["rf_impulse_single"] = impulse_extent([layer(2, big)], side)
        for c in channels:
            stack_w = n * hc.conv_params(c, c, 3, bias=False)
            single_w = hc.conv_params(c, c, big, bias=False)
            built = (sum(nn.SharedConv2d(c, c, 3, bias=False).n_params for _ in range(n)),
                     nn.SharedConv2d(c, c, big, bias=False).n_params)
            row["channels"].append({"C": c, "stack_weights": stack_w, "single_weights": single_w,
                                    "ratio": stack_w / single_w, "layers_n_params": list(built),
                                    "layers_match": built == (stack_w, single_w)})
        rf = row["rf_recursion_single"]
        row["match"] = (row["rf_recursion_stack"] == rf and row["rf_impulse_stack"] == [rf, rf]
                        == row["rf_impulse_single"] and all(c["layers_match"] for c in row["channels"]))
        rows.append(row)
    return rows


#: Szegedy et al. (2015) Table 1, module 3a: 192 channels in on 28 x 28 sites; the 3x3 branch
#: reduces to 96 channels first and gives 128, the 5x5 branch reduces to 16 and gives 32
INCEPTION_3A = {"in_channels": 192, "sites": 28, "branches": [(3, 96, 128), (5, 16, 32)]}


def inception_bottleneck(spec=INCEPTION_3A):
    """The 1x1 reduction in front of a k x k branch, C -> r -> K against C -> K directly: weights
    C r + k^2 r K against k^2 C K, a ratio r / C + r / (k^2 K) (seed 002: a 1x1 costs 1/k^2 of a
    k x k); multiply-adds are the weights times the output sites ("same" padding). Formulas and
    the package's layers (``n_params``; the multiply-adds counted from the field of a unit input)."""
    from hamiltonian_cnn import nn

    c, side = spec["in_channels"], spec["sites"]
    rows = []
    for k, r, out in spec["branches"]:
        direct = k * k * c * out
        reduced = c * r + k * k * r * out
        layers = {"direct": nn.SharedConv2d(c, out, k, bias=False).n_params,
                  "reduced": nn.SharedConv2d(c, r, 1, bias=False).n_params
                  + nn.SharedConv2d(r, out, k, bias=False).n_params}
        rows.append({"kernel": k, "in": c, "reduce": r, "out": out, "sites": side * side,
                     "direct_weights": direct, "bottleneck_weights": reduced,
                     "direct_mult_adds": direct * side * side, "bottleneck_mult_adds": reduced * side * side,
                     "ratio": reduced / direct, "ratio_formula": r / c + r / (k * k * out),
                     "layers_n_params": layers,
                     "layers_match": layers == {"direct": direct, "reduced": reduced}})
    total_direct = sum(r["direct_weights"] for r in rows)
    total_reduced = sum(r["bottleneck_weights"] for r in rows)
    return {"module": spec, "branches": rows, "ratio_both_branches": total_reduced / total_direct}


PRESET_INPUTS = {"digits": (1, 8, 8), "mnist1d": (1, 40), "canvas32": (1, 32, 32)}
PRESET_FAMILIES = ("shared", "local", "full", "sparse")
#: larger full couplings are counted by formula, not built (a 16 x 32 x 32 -> 16 x 32 x 32 one is 268 M)
MAX_BUILT = 5_000_000


def _couplings(layers, shape):
    """(layer, shape_in, shape_out) for every layer with parameters, containers' layers included."""
    from hamiltonian_cnn import nn

    for layer in layers:
        out = tuple(layer.output_shape(shape))
        if isinstance(layer, (nn.Residual, nn.Concat)):
            for _, inner, shapes in layer.sequence_shapes(shape):
                yield from _couplings(inner, shapes[0])
        elif layer.params:
            yield layer, shape, out
        shape = out


def full_count(model) -> int:
    """The parameters of the model with every coupling written as a full one (J_{IJ,ij} and a bias
    per output unit), by formula from the shapes."""
    return sum(math.prod(si) * math.prod(so) + (math.prod(so) if "b" in layer.params else 0)
               for layer, si, so in _couplings(model.layers, model.input_shape))


def preset_counts(presets=("lenet5", "vgg", "resnet", "inception")):
    """n_params of every preset, family and input kind; full couplings too large to build counted by
    formula from the shared network's shapes; None where the family cannot build it."""
    from hamiltonian_cnn import models

    out = {}
    for data, shape in PRESET_INPUTS.items():
        for preset in presets:
            if preset == "lenet5" and len(shape) != 3:
                continue
            shared = models.build("shared", shape, 10, preset=preset)
            for family in PRESET_FAMILIES:
                key = f"{data}/{preset}/{family}"
                if family == "full" and full_count(shared) > MAX_BUILT:
                    out[key] = {"n_params": full_count(shared), "built": False}
                    continue
                try:
                    model = shared if family == "shared" else models.build(family, shape, 10, preset=preset)
                except ValueError as exc:  # e.g. sparse windows wider than a stage's sites
                    out[key] = {"n_params": None, "built": False, "why": str(exc)}
                    continue
                out[key] = {"n_params": model.n_params, "built": True}
                if family == "full":
                    out[key]["formula_matches"] = full_count(shared) == model.n_params
    return out


def preset_accuracy(presets, families, seeds, epochs=None):
    """Test accuracy on digits of each preset and family with the defaults of ``build`` and ``fit``
    (``epochs`` overrides, for a quick run), one fit per seed (the batch order): the scores, their
    mean and the half-width of a 95 % t-interval."""
    from hamiltonian_cnn import models

    X, y, Xt, yt = hc.data.load("digits")
    out = {}
    for preset in presets:
        for family in families:
            scores = []
            for seed in seeds:
                try:
                    model = models.build(family, (1, 8, 8), 10, preset=preset)
                except ValueError:
                    break
                model.fit(X, y, seed=seed, epochs=epochs, progress=False)
                scores.append(model.score(Xt, yt))
            if scores:
                out[f"{preset}/{family}"] = {"seeds": list(seeds[:len(scores)]), "test_accuracy": scores,
                                             "n_params": model.n_params, **mean_ci(scores)}
    return out


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


def print_classic(classic):
    print("\nSeed 002 (VGG): stacked 3x3 couplings against one large window (C -> C, weights only)")
    for r in classic["stacked_windows"]:
        per_c = ", ".join(f"C={c['C']}: {c['stack_weights']:,}/{c['single_weights']:,}" for c in r["channels"])
        print(f"  {r['stack']} vs one {r['single']}: receptive field {r['rf_recursion_stack']} (recursion) = "
              f"{'x'.join(map(str, r['rf_impulse_stack']))} (impulse response) vs {r['rf_recursion_single']} / "
              f"{'x'.join(map(str, r['rf_impulse_single']))}; weights {r['ratio_formula']} = {r['ratio']:.1%} "
              f"({per_c})"
              f"  {'match' if r['match'] else 'MISMATCH'}")
    b = classic["inception_bottleneck"]
    m = b["module"]
    print(f"\nInception bottleneck (Szegedy et al. module 3a: {m['in_channels']} channels in, "
          f"{m['sites']}x{m['sites']} sites)")
    for r in b["branches"]:
        print(f"  {r['kernel']}x{r['kernel']} branch {r['in']} -> {r['out']}: weights {r['direct_weights']:,} direct, "
              f"{r['bottleneck_weights']:,} through a 1x1 to {r['reduce']}; multiply-adds {r['direct_mult_adds']:,} -> "
              f"{r['bottleneck_mult_adds']:,}; ratio {r['ratio']:.3f} = r/C + r/(k^2 K) "
              f"{r['ratio_formula']:.3f}  {'layers match' if r['layers_match'] else 'MISMATCH'}")
    print(f"  both branches: {b['ratio_both_branches']:.3f} of the weights and multiply-adds")
    print("\nPresets: parameters per family (full couplings over 5 M counted by formula, not built)")
    counts = classic["preset_params"]
    print(f"  {'input/preset':24s} " + " ".join(f"{f:>12s}" for f in PRESET_FAMILIES))
    for key in dict.fromkeys(k.rsplit("/", 1)[0] for k in counts):
        cells = []
        for f in PRESET_FAMILIES:
            n = counts[f"{key}/{f}"]["n_params"]
            cells.append(f"{'-':>12s}" if n is None else f"{n:12,d}")
        print(f"  {key:24s} " + " ".join(cells))
    acc = classic["preset_accuracy"]
    if acc:
        settings = classic["preset_accuracy_settings"]
        print(f"\nPresets on digits (test accuracy, fit seeds {settings['seeds']}, epochs {settings['epochs']})")
        for key, r in acc.items():
            print(f"  {key:20s} {r['n_params']:10,d} params  mean {r['mean']:.3f}  "
                  + " ".join(f"{a:.3f}" for a in r["test_accuracy"]))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=1000, help="image side for seed 002's argument")
    p.add_argument("--window", type=int, default=10, help="window side for the local and shared couplings")
    p.add_argument("--kernels", type=int, default=100, help="number of shared kernels")
    p.add_argument("--small-side", type=int, default=28, help="image side at which the couplings are built")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="train the presets on digits for 2 epochs, shared couplings and seed 0 only")
    p.add_argument("--accuracy-seeds", type=int, default=3,
                   help="fits (batch orders 0..n-1) per preset and family on digits; 0 skips the training")
    p.add_argument("--accuracy-families", default="shared,local",
                   help="comma-separated families trained on digits (of shared, local, full, sparse)")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/parameter_counting/<time>)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.side < args.window or args.window < 1 or args.kernels < 1:
        p.error("--side >= --window >= 1 and --kernels >= 1 are required")
    if not 5 <= args.small_side <= 40:
        p.error(f"--small-side: expected 5..40 (the full coupling is built densely), got {args.small_side}")
    families = [f for f in args.accuracy_families.split(",") if f]
    if not families or set(families) - set(PRESET_FAMILIES):
        p.error(f"--accuracy-families: expected comma-separated names of {PRESET_FAMILIES}, got "
                f"{args.accuracy_families!r}")
    if args.accuracy_seeds < 0:
        p.error(f"--accuracy-seeds: expected 0 or more fits, got {args.accuracy_seeds}")
    args.accuracy_families = families
    check_cli_args(p, args)
    return args


def main(argv=None):
    from tqdm.auto import tqdm

    args = parse_args(argv)
    t0 = time.perf_counter()
    out = output_folder(args.out, __file__)
    rng = np.random.default_rng(args.seed)
    steps = tqdm(total=6, desc="parameter counting", disable=args.no_progress)

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
    classic = {"stacked_windows": stacked_windows(seed=args.seed), "inception_bottleneck": inception_bottleneck(),
               "preset_params": preset_counts()}
    steps.update(1)
    families = ["shared"] if args.quick else args.accuracy_families
    seeds = list(range(1 if args.quick else args.accuracy_seeds))
    classic["preset_accuracy"] = preset_accuracy(("lenet5", "vgg", "resnet", "inception"), families, seeds,
                                                 epochs=2 if args.quick else None)
    classic["preset_accuracy_settings"] = {"data": "digits", "epochs": 2 if args.quick else "build default",
                                           "families": families, "seeds": seeds}
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
        "classic": classic,
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
    print_classic(classic)
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
