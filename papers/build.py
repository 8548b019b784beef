"""Regenerate the results sections of papers/hamiltonian_cnn.md from experiments' results.json.

    python papers/build.py                          # newest experiments/results/sharing_vs_coupling/*/
    python papers/build.py --results path/to/results.json
    python papers/build.py --trainability path/to/results.json   # experiments/trainability.py -> §6.1

Copies results.json to papers/data/ and its figures to papers/figures/, then rewrites the text
between the ``results:begin`` / ``results:end`` markers with tables computed from the JSON.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

from hamiltonian_cnn._io import atomic_write_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PAPER = os.path.join(HERE, "hamiltonian_cnn.md")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
FIGURES = ("accuracy_vs_size.png", "accuracy_vs_shift.png", "parameters.png")
TRAIN_BEGIN, TRAIN_END = "<!-- trainability:begin -->", "<!-- trainability:end -->"
TRAIN_FIGURES = ("trainability.png", "trainability_gradients.png")


def _copy(src: str, dst: str) -> None:
    with open(src, "rb") as fh:
        atomic_write_bytes(dst, fh.read())


def newest_results() -> str | None:
    paths = glob.glob(os.path.join(ROOT, "experiments", "results", "sharing_vs_coupling", "*", "results.json"))
    return max(paths, key=os.path.getmtime) if paths else None


def fmt(ms) -> str:
    return f"{ms['mean']:.3f} ± {ms['std']:.3f}"


def render(report: dict, paper_dir: str, figure_dir: str = "figures") -> str:
    summary, shift = report["summary"], report["shift"]
    sizes = [str(s) for s in report["sizes"]]
    order = ["shared", "local", "full"]
    families = sorted(summary, key=lambda f: order.index(f) if f in order else len(order))
    controls = sorted(next(iter(summary.values())), key=lambda c: (c != "original", c))
    prov = report["provenance"]
    seeds = sorted({c["cell"]["seed"] for c in report["cells"]})
    lines = [
        f"Dataset: **{report['dataset']}** ({report['n_train_all']} training images), seeds {seeds}, "
        f"commit `{prov.get('git_commit')}`, command `{prov.get('command')}`, "
        f"wall time {prov.get('wall_time', 0):.0f} s.",
        "",
        "**Parameters and accuracy at the full training set** (mean ± std over seeds):",
        "",
        "| coupling | parameters | " + " | ".join(f"test acc. ({c})" for c in controls) + " | train time (s) |",
        "|---|---|" + "---|" * len(controls) + "---|",
    ]
    for f in families:
        full = {c: summary[f][c][sizes[-1]] for c in controls}
        first = full[controls[0]]
        lines.append(f"| {f} | {first['n_params']:,} | " + " | ".join(fmt(full[c]["test_accuracy"]) for c in controls)
                     + f" | {first['train_time']['mean']:.1f} |")
    lines += ["", "**Sample efficiency**: test accuracy against the number of training images.", ""]
    for c in controls:
        lines.append(f"*{c} pixels*")
        lines.append("")
        lines.append("| coupling | " + " | ".join(f"n = {summary[families[0]][c][s]['train_size']}" for s in sizes) + " |")
        lines.append("|---|" + "---|" * len(sizes))
        for f in families:
            lines.append(f"| {f} | " + " | ".join(fmt(summary[f][c][s]["test_accuracy"]) for s in sizes) + " |")
        lines.append("")
    if "shuffled" in controls and "original" in controls:
        lines += ["**The shuffle control**: change of test accuracy when the pixel positions are permuted "
                  "(shuffled − original, mean over seeds, per training-set size). Locality is what a "
                  "local window exploits, so a coupling that relies on it loses accuracy; full coupling "
                  "is permutation-blind and should not move.", ""]
        lines.append("| coupling | " + " | ".join(f"n = {summary[families[0]]['original'][s]['train_size']}"
                                                   for s in sizes) + " |")
        lines.append("|---|" + "---|" * len(sizes))
        for f in families:
            deltas = [summary[f]["shuffled"][s]["test_accuracy"]["mean"] - summary[f]["original"][s]["test_accuracy"]["mean"]
                      for s in sizes]
            lines.append(f"| {f} | " + " | ".join(f"{d:+.3f}" for d in deltas) + " |")
        lines.append("")
    shifts = sorted(next(iter(shift.values()))[controls[0]], key=int)
    lines += ["**Translation**: trained on unshifted images, tested on images shifted by s pixels "
              "(mean over the four directions).", ""]
    lines.append("| coupling | pixels | " + " | ".join(f"s = {s}" for s in shifts) + " |")
    lines.append("|---|---|" + "---|" * len(shifts))
    for f in families:
        for c in controls:
            lines.append(f"| {f} | {c} | " + " | ".join(fmt(shift[f][c][s]) for s in shifts) + " |")
    lines.append("")
    for name in FIGURES:
        if os.path.exists(os.path.join(paper_dir, figure_dir, name)):
            lines.append(f"![{name[:-4].replace('_', ' ')}]({figure_dir}/{name})")
            lines.append("")
    return "\n".join(lines)


def render_trainability(report: dict, figure_dir: str = "figures") -> str:
    """The trainability table (test accuracy per ensemble x init x depth x canvas) and its figures."""
    summary = report["summary"]
    prov = report["provenance"]
    args = prov.get("arguments") or {}
    depths = sorted({s["depth"] for s in summary})
    canvases = sorted({s["canvas"] for s in summary})
    seeds = sorted({r["seed"] for r in report["records"]})
    lines = [
        f"Generated by `python papers/build.py --trainability` from commit `{prov.get('git_commit')}`, "
        f"command `{prov.get('command')}`: seeds {seeds}, {args.get('epochs')} epochs of the default `fit`, "
        f"{args.get('n_train')} training images, wall time {prov.get('wall_time', 0):.0f} s. Test accuracy, "
        f"mean over seeds ± the half-width of a 95 % t-interval (chance is 0.10):",
        "",
        "| ensemble | init | " + " | ".join(f"{d} blocks, {c}×{c}" for c in canvases for d in depths) + " |",
        "|---|---|" + "---|" * (len(depths) * len(canvases)),
    ]
    order = ["binary", "centred", "spin", "relu"]
    keys = sorted({(s["ensemble"], s["init"]) for s in summary},
                  key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[1]))
    table = {(s["ensemble"], s["init"], s["depth"], s["canvas"]): s for s in summary}
    for ensemble, init in keys:
        cells = []
        for c in canvases:
            for d in depths:
                s = table.get((ensemble, init, d, c))
                if s is None:
                    cells.append("–")
                else:
                    cells.append(f"{s['mean']:.3f}" + (f" ± {s['ci95']:.3f}" if s.get("ci95") is not None else ""))
        lines.append(f"| {ensemble} | {init} | " + " | ".join(cells) + " |")
    lines.append("")
    for name in TRAIN_FIGURES:
        lines.append(f"![{name[:-4].replace('_', ' ')}]({figure_dir}/{name})")
        lines.append("")
    return "\n".join(lines)


def install(path: str, paper: str, data_name: str, figures, require_figures: bool = False):
    """Copy a results.json to papers/data/<data_name> and the figures beside it to papers/figures/;
    returns the report and the paper's folder. A missing figure is skipped, or refused when
    ``require_figures``."""
    with open(path) as fh:
        report = json.load(fh)
    paper_dir = os.path.dirname(os.path.abspath(paper))
    os.makedirs(os.path.join(paper_dir, "data"), exist_ok=True)
    os.makedirs(os.path.join(paper_dir, "figures"), exist_ok=True)
    target = os.path.join(paper_dir, "data", data_name)
    if os.path.abspath(path) != os.path.abspath(target):
        _copy(path, target)
    for name in figures:
        src = os.path.join(os.path.dirname(path), name)
        if not os.path.exists(src):
            if require_figures:
                raise SystemExit(f"{src}: figure missing; run the experiment to the end first")
            continue
        if os.path.abspath(src) != os.path.abspath(os.path.join(paper_dir, "figures", name)):
            _copy(src, os.path.join(paper_dir, "figures", name))
    return report, paper_dir


def rewrite_between(paper: str, begin: str, end: str, body: str) -> None:
    """Replace the text between the ``begin`` and ``end`` markers of the paper, atomically."""
    with open(paper) as fh:
        text = fh.read()
    if begin not in text or end not in text:
        raise SystemExit(f"{paper}: markers {begin} / {end} not found")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    atomic_write_bytes(paper, (head + begin + "\n" + body + "\n" + end + tail).encode())


def build_trainability(path: str, paper: str) -> None:
    """Copy a trainability results.json and its figures into papers/ and rewrite §6.1's table."""
    report, _ = install(path, paper, "trainability.json", TRAIN_FIGURES, require_figures=True)
    rewrite_between(paper, TRAIN_BEGIN, TRAIN_END, render_trainability(report))
    print(f"wrote the trainability table of {paper} from {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=None, help="a results.json of experiments/sharing_vs_coupling.py")
    p.add_argument("--paper", default=PAPER)
    p.add_argument("--trainability", default=None, metavar="RESULTS",
                   help="a results.json of experiments/trainability.py: rewrite §6.1's table instead")
    args = p.parse_args(argv)
    if args.trainability is not None:
        if not os.path.exists(args.trainability):
            p.error(f"--trainability: no file {args.trainability!r}")
        build_trainability(args.trainability, args.paper)
        return
    path = args.results or newest_results()
    if path is None or not os.path.exists(path):
        p.error("no results.json found: run python experiments/sharing_vs_coupling.py first, or pass --results")
    report, paper_dir = install(path, args.paper, "sharing_vs_coupling.json", FIGURES)
    rewrite_between(args.paper, BEGIN, END, render(report, paper_dir))
    print(f"wrote the results section of {args.paper} from {path}")


if __name__ == "__main__":
    main()
