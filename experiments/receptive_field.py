"""Which input sites can one output unit see? The receptive-field recursion against a measurement.

    python experiments/receptive_field.py            # a few seconds (--quick is the same run)

The recursion RF_{l-1} = (RF_l - 1) s_l + k_l from RF_N = 1 (``hc.receptive_field``; a dilated
window counts as k = (k - 1) d + 1) predicts how many input sites along each axis one output
unit of a stack of layers depends on. This script measures it: it builds each stack from the
package's layers (SharedConv2d, AvgPool2d; activation None and sigmoid, float64), runs forward on
an input just large enough that the central output unit's window lies inside it, runs backward
with a one-hot dy at that unit, and takes the bounding box of the input sites where dx != 0.
Stacks include strides, dilation, pooling and a rectangular window.

It also checks seed 002's claims: two stacked 3x3 layers see 5x5, three see 7x7, and three 3x3
layers (C -> C channels) use 27/49 = 55 % of the parameters of one 7x7 layer with the same
receptive field.

Writes results.json (each stack: formula vs measured) and receptive_field.png (the measured
gradient footprint of 1, 2 and 3 stacked 3x3 layers and of two dilated stacks) to --out, atomically.
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


def conv(k, s=1, d=1):
    k, s, d = (v if isinstance(v, tuple) else (v, v) for v in (k, s, d))
    return {"kind": "conv", "kernel": k, "stride": s, "dilation": d}


def avgpool(k, s=None):
    s = s or k
    return {"kind": "avgpool", "kernel": (k, k), "stride": (s, s), "dilation": (1, 1)}


#: name -> layers, first layer first
STACKS = {
    "3x3": [conv(3)],
    "3x3 x2": [conv(3), conv(3)],
    "3x3 x3": [conv(3), conv(3), conv(3)],
    "7x7": [conv(7)],
    "5x5 x2": [conv(5), conv(5)],
    "3x3/s2 + 3x3": [conv(3, 2), conv(3)],
    "3x3/s2 x3": [conv(3, 2), conv(3, 2), conv(3, 2)],
    "3x3 dilation 1,2,4": [conv(3, 1, 1), conv(3, 1, 2), conv(3, 1, 4)],
    "3x3 dilation 2,2": [conv(3, 1, 2), conv(3, 1, 2)],
    "5x5/s2 + 3x3 dil 2 + 3x3": [conv(5, 2), conv(3, 1, 2), conv(3)],
    "3x3 + avgpool 2 + 3x3": [conv(3), avgpool(2), conv(3)],
    "3x3 + avgpool 3/s2 + 3x3/s2 + 3x3": [conv(3), avgpool(3, 2), conv(3, 2), conv(3)],
    "3x5/s(1,2) x2": [conv((3, 5), (1, 2)), conv((3, 5), (1, 2))],
}


def formula_rf(stack):
    """(rows, cols) receptive field by the recursion, one axis at a time."""
    return tuple(hc.receptive_field([(l["kernel"][a], l["stride"][a], l["dilation"][a]) for l in stack])
                 for a in (0, 1))


def jump(stack):
    """Input sites between neighbouring output units (product of the strides), per axis."""
    return tuple(math.prod(l["stride"][a] for l in stack) for a in (0, 1))


def input_size(stack, n_out):
    """The valid-padding input size that gives exactly ``n_out`` output sites per axis."""
    return tuple(hc.receptive_field([(l["kernel"][a], l["stride"][a], l["dilation"][a]) for l in stack])
                 + (n_out - 1) * jump(stack)[a] for a in (0, 1))


def build_layers(stack, channels, activation, seed, padding=0):
    from hamiltonian_cnn import nn

    layers, rng = [], np.random.default_rng(seed)
    for l in stack:
        if l["kind"] == "conv":
            layers.append(nn.SharedConv2d(channels, channels, l["kernel"], stride=l["stride"], padding=padding,
                                          dilation=l["dilation"], activation=activation, dtype=np.float64,
                                          seed=int(rng.integers(2 ** 31))))
        else:
            layers.append(nn.AvgPool2d(l["kernel"], stride=l["stride"]))
    return layers


def footprint(layers, x, unit):
    """|dL/dx| summed over channels for L = y[0, 0, unit] (one-hot dy at that output unit)."""
    y = x
    for layer in layers:
        y = layer.forward(y)
    dy = np.zeros_like(y)
    dy[(0, 0) + tuple(unit)] = 1.0
    for layer in reversed(layers):
        dy = layer.backward(dy)
    return np.abs(dy[0]).sum(axis=0), y.shape[2:]


def bounding_box(grad):
    rows, cols = np.nonzero(grad)
    if len(rows) == 0:
        return None
    return {"rows": [int(rows.min()), int(rows.max())], "cols": [int(cols.min()), int(cols.max())],
            "size": [int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)],
            "nonzero_sites": int(len(rows))}


def measure(name, stack, channels, n_out, seed):
    rf = formula_rf(stack)
    size = input_size(stack, n_out)
    centre = (n_out // 2, n_out // 2)
    x = np.random.default_rng(seed).normal(size=(1, channels) + size)
    row = {"stack": name,
           "layers": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in l.items()} for l in stack],
           "formula": list(rf), "input_sites": list(size), "output_unit": list(centre),
           "expected_start": [centre[a] * jump(stack)[a] for a in (0, 1)]}
    for activation in (None, "sigmoid"):
        grad, out_sites = footprint(build_layers(stack, channels, activation, seed), x, centre)
        box = bounding_box(grad)
        row[f"measured_{activation or 'linear'}"] = box
        row["output_sites"] = list(out_sites)
    m_lin, m_sig = row["measured_linear"], row["measured_sigmoid"]
    row["match"] = (m_lin is not None and m_sig is not None and m_lin["size"] == list(rf) == m_sig["size"]
                    and [m_lin["rows"][0], m_lin["cols"][0]] == row["expected_start"]
                    and m_lin == m_sig)
    return row


def seed002_parameters(channels=(1, 3, 16, 64, 256)):
    """Three 3x3 C->C layers against one 7x7: the formula, and the package's layers."""
    from hamiltonian_cnn import nn

    rows = []
    for c in channels:
        three = 3 * hc.conv_params(c, c, 3, bias=False)
        seven = hc.conv_params(c, c, 7, bias=False)
        three_b = 3 * hc.conv_params(c, c, 3)
        seven_b = hc.conv_params(c, c, 7)
        row = {"channels": c, "three_3x3_weights": three, "one_7x7_weights": seven, "ratio_weights": three / seven,
               "three_3x3_with_bias": three_b, "one_7x7_with_bias": seven_b, "ratio_with_bias": three_b / seven_b}
        if c <= 64:
            l3 = [nn.SharedConv2d(c, c, 3, seed=i) for i in range(3)]
            l7 = nn.SharedConv2d(c, c, 7, seed=0)
            row["layers_three_3x3"] = sum(l.n_params for l in l3)
            row["layers_one_7x7"] = l7.n_params
            row["layers_match_formula"] = row["layers_three_3x3"] == three_b and row["layers_one_7x7"] == seven_b
            l3n = [nn.SharedConv2d(c, c, 3, seed=i, bias=False) for i in range(3)]
            row["layers_ratio_weights"] = sum(l.n_params for l in l3n) / nn.SharedConv2d(c, c, 7, bias=False).n_params
        rows.append(row)
    return rows


def figure(out, channels, seed):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    panels = [("one 3x3", STACKS["3x3"], 11), ("two 3x3", STACKS["3x3 x2"], 11), ("three 3x3", STACKS["3x3 x3"], 11),
              ("3x3, dilation 1, 2, 4", STACKS["3x3 dilation 1,2,4"], 19),
              ("3x3, dilation 2, 2 (holes)", STACKS["3x3 dilation 2,2"], 13)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 4.4))
    for ax, (title, stack, side) in zip(axes, panels):
        layers = build_layers(stack, channels, "sigmoid", seed, padding="same")
        x = np.random.default_rng(seed).normal(size=(1, channels, side, side))
        grad, _ = footprint(layers, x, (side // 2, side // 2))
        rf = formula_rf(stack)
        shown = np.where(grad > 0, grad, np.nan)
        ax.imshow(shown, cmap="viridis", origin="upper")
        start = side // 2 - rf[0] // 2
        ax.add_patch(patches.Rectangle((start - 0.5, start - 0.5), rf[1], rf[0], fill=False, ec="C3", lw=2,
                                       label=f"formula RF {rf[0]}x{rf[1]}"))
        ax.plot(side // 2, side // 2, "+", color="w", ms=10)
        box = bounding_box(grad)
        ax.set_title(f"{title}\nmeasured {box['size'][0]}x{box['size'][1]}, {box['nonzero_sites']} sites with dx != 0",
                     fontsize=10)
        ax.set_xticks(range(0, side, 2))
        ax.set_yticks(range(0, side, 2))
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.22), fontsize=9, frameon=False)
    fig.suptitle("|d y_centre / d x|: the input sites one output unit depends on (sigmoid layers, 'same' padding)")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    atomic_savefig(fig, os.path.join(out, "receptive_field.png"), dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--channels", type=int, default=2, help="channels of every layer")
    p.add_argument("--outputs", type=int, default=3, help="output sites per axis (the central one is measured)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="accepted for uniformity: the whole script takes seconds")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/receptive_field/<time>)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.channels < 1 or args.outputs < 1:
        p.error("--channels and --outputs must be >= 1")
    check_cli_args(p, args)
    return args


def main(argv=None):
    from tqdm.auto import tqdm

    args = parse_args(argv)
    t0 = time.perf_counter()
    out = output_folder(args.out, __file__)
    rows = [measure(name, stack, args.channels, args.outputs, args.seed)
            for name, stack in tqdm(STACKS.items(), desc="receptive fields", disable=args.no_progress, unit="stack")]
    by_name = {r["stack"]: r for r in rows}
    params = seed002_parameters()
    claims = {
        "two_3x3_see": by_name["3x3 x2"]["measured_linear"]["size"],
        "three_3x3_see": by_name["3x3 x3"]["measured_linear"]["size"],
        "one_7x7_sees": by_name["7x7"]["measured_linear"]["size"],
        "three_3x3_over_one_7x7_weights": 27 / 49,
        "percent": round(100 * 27 / 49),
        "ratio_from_conv_params": params[-1]["ratio_weights"],
    }
    claims["holds"] = (claims["two_3x3_see"] == [5, 5] and claims["three_3x3_see"] == [7, 7]
                       and claims["one_7x7_sees"] == [7, 7] and claims["percent"] == 55
                       and all(abs(r["ratio_weights"] - 27 / 49) < 1e-15 for r in params)
                       and all(r.get("layers_match_formula", True) for r in params))
    report = {
        "question": "Does the recursion RF_{l-1} = (RF_l - 1) s_l + k_l give the input region that one output "
                    "unit's gradient actually reaches, and are seed 002's 5x5 / 7x7 / 55 % claims right?",
        "all_match": all(r["match"] for r in rows),
        "stacks": rows,
        "seed002": {"claims": claims, "parameters": params},
        "provenance": provenance(args, seed=args.seed, wall_time=time.perf_counter() - t0),
    }
    atomic_write_json(os.path.join(out, "results.json"), report)
    figure(out, args.channels, args.seed)

    print(f"\n{'stack':36s} {'formula':>9s} {'measured':>9s} {'(sigmoid)':>9s}  start  match")
    for r in rows:
        f, m, s = r["formula"], r["measured_linear"]["size"], r["measured_sigmoid"]["size"]
        start = [r["measured_linear"]["rows"][0], r["measured_linear"]["cols"][0]]
        print(f"{r['stack']:36s} {f[0]:>4d}x{f[1]:<4d} {m[0]:>4d}x{m[1]:<4d} {s[0]:>4d}x{s[1]:<4d}  "
              f"{'ok' if start == r['expected_start'] else 'OFF':5s}  "
              f"{r['match']}")
    print(f"\nSeed 002: two 3x3 see {claims['two_3x3_see']}, three see {claims['three_3x3_see']}, one 7x7 sees "
          f"{claims['one_7x7_sees']}; three 3x3 (C->C) / one 7x7 = 27/49 = {27 / 49:.4f} ({claims['percent']} %)")
    for r in params:
        extra = f", layers {r['layers_three_3x3']:,} / {r['layers_one_7x7']:,}" if "layers_three_3x3" in r else ""
        print(f"  C = {r['channels']:3d}: weights {r['three_3x3_weights']:,} / {r['one_7x7_weights']:,} = "
              f"{r['ratio_weights']:.4f}; with biases {r['ratio_with_bias']:.4f}{extra}")
    print(f"all stacks match: {report['all_match']}; seed 002's claims hold: {claims['holds']}")
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
