"""Regenerate the results sections of papers/hamiltonian_cnn.md from experiments' results.json.

    python papers/build.py                          # newest experiments/results/sharing_vs_coupling/*/
    python papers/build.py --results path/to/results.json
    python papers/build.py --trainability path/to/results.json   # experiments/trainability.py -> §6.1
    python papers/build.py --relax R.json --locality L.json       # relax_coupling / learned_locality -> §8.2
    python papers/build.py --skips path/to/results.json          # trainability --models resnet,plain -> §6.1
    python papers/build.py --counting path/to/results.json       # parameter_counting -> §7's classic networks
    python papers/build.py --rbm R.json --generative G.json       # rbm_exact -> §6.2, generative_sharing -> §8.3

Copies results.json to papers/data/ and its figures to papers/figures/, then rewrites the text
between the ``results:begin`` / ``results:end`` markers with tables and a discussion computed from
the JSON. A results.json made on a dirty tree, or outside git, is refused.
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
FIGURES = ("accuracy_vs_size.png", "accuracy_vs_shift.png", "unseen_positions.png", "equivariance.png")
TRAIN_BEGIN, TRAIN_END = "<!-- trainability:begin -->", "<!-- trainability:end -->"
TRAIN_FIGURES = ("trainability.png", "trainability_gradients.png")
SKIPS_BEGIN, SKIPS_END = "<!-- skips:begin -->", "<!-- skips:end -->"
RELAX_BEGIN, RELAX_END = "<!-- relax:begin -->", "<!-- relax:end -->"
LOCALITY_BEGIN, LOCALITY_END = "<!-- locality:begin -->", "<!-- locality:end -->"
CLASSIC_BEGIN, CLASSIC_END = "<!-- classic:begin -->", "<!-- classic:end -->"
RBM_BEGIN, RBM_END = "<!-- rbm:begin -->", "<!-- rbm:end -->"
GENERATIVE_BEGIN, GENERATIVE_END = "<!-- generative:begin -->", "<!-- generative:end -->"
GENERATIVE_FIGURES = ("loglik_vs_params.png", "loglik_vs_size.png", "samples.png", "filters.png")


def _copy(src: str, dst: str) -> None:
    with open(src, "rb") as fh:
        atomic_write_bytes(dst, fh.read())


def newest_results() -> str | None:
    paths = glob.glob(os.path.join(ROOT, "experiments", "results", "sharing_vs_coupling", "*", "results.json"))
    return max(paths, key=os.path.getmtime) if paths else None


def check_commit(report: dict, path: str) -> str:
    """The clean commit a results.json was made on; a missing or dirty one is refused: numbers that
    go into the paper must be reproducible from a commit."""
    commit = (report.get("provenance") or {}).get("git_commit")
    if not commit:
        raise SystemExit(f"{path}: no git commit in its provenance; rerun the experiment from a git checkout")
    if commit.endswith("-dirty"):
        raise SystemExit(f"{path}: made on a dirty tree ({commit}); commit, rerun, then build the paper")
    return commit


def fmt(stat) -> str:
    """mean ± the 95 % half-width (mean alone for one seed)."""
    return f"{stat['mean']:.3f}" + (f" ± {stat['ci95']:.3f}" if stat.get("ci95") is not None else "")


def verdict(diff) -> str:
    """What a paired difference's 95 % interval says, in words."""
    if diff.get("ci95") is None:
        return "one seed: no interval"
    lo, hi = diff["mean"] - diff["ci95"], diff["mean"] + diff["ci95"]
    if lo > 0:
        return "shared ahead: the interval excludes 0"
    if hi < 0:
        return "shared behind: the interval excludes 0"
    return "the interval contains 0: no difference resolved"


ORDER = ["shared", "local", "sparse", "full", "local_narrow"]


def _rows(summary, **match):
    rows = [r for r in summary if all(r[k] == v for k, v in match.items())]
    return sorted(rows, key=lambda r: (ORDER.index(r["coupling"]) if r["coupling"] in ORDER else 9, r["head"],
                                       r["shuffled"], r["n_train"]))


def _largest(summary, dataset):
    return max(r["n_train"] for r in summary if r["dataset"] == dataset)


def _pair(report, dataset, versus, shuffled=False, head=None, n_train=None, metric="test_accuracy"):
    for p in report["paired"]:
        if (p["dataset"], p["versus"], p["shuffled"], p["metric"]) == (dataset, versus, shuffled, metric) \
                and (head is None or p["head"] == head) and (n_train is None or p["n_train"] == n_train):
            return p["shared_minus"]
    return None


def _get(summary, dataset, coupling, head=None, shuffled=False, n_train=None):
    for r in summary:
        if (r["dataset"], r["coupling"], r["shuffled"]) == (dataset, coupling, shuffled) \
                and (head is None or r["head"] == head) and (n_train is None or r["n_train"] == n_train):
            return r
    return None


def render(report: dict, paper_dir: str, figure_dir: str = "figures") -> str:
    summary = report["summary"]
    prov, proto = report["provenance"], report["protocol"]
    seeds = sorted({r["seed"] for r in report["records"]})
    datasets = report["datasets"]
    lines = [
        f"Generated by `python papers/build.py` from commit `{prov.get('git_commit')}`, command "
        f"`{prov.get('command')}`; the fits took {sum(r['train_time'] for r in report['records']) / 60:.0f} min "
        f"of training in all (the last invocation {prov.get('wall_time', 0) / 60:.0f} min of wall time: a run resumes "
        f"the cells it already finished). Seeds {seeds[0]}–{seeds[-1]} "
        f"({len(seeds)}), shared by the families (the same training subset and batch order), so differences are "
        f"paired. Every fit: {', '.join(f'{d} {n} steps' for d, n in proto['steps'].items())} of Adam with batch "
        f"{proto['batch_size']} at every training-set size, the epoch with the best accuracy on a fixed validation "
        f"split of the training data kept, the learning rate chosen per family, head and control on that split "
        f"from {proto['lr_grid']}. Test accuracy: mean ± the half-width of a 95 % t-interval.",
        "",
    ]
    for d in datasets:
        lines += SECTIONS[d](report, summary, d)
    lines += _equivariance_table(summary)
    for name in FIGURES:
        if os.path.exists(os.path.join(paper_dir, figure_dir, name)):
            lines += [f"![{name[:-4].replace('_', ' ')}]({figure_dir}/{name})", ""]
    lines += ["### 8.1 Discussion (generated from the numbers above)", ""] + discussion(report) + [""]
    return "\n".join(lines)


def _shuffle_table(report, summary, d, title):
    n = _largest(summary, d)
    lines = [title, "", "| coupling | parameters | original sites | shuffled sites | shuffled − original |",
             "|---|---|---|---|---|"]
    for r in _rows(summary, dataset=d, shuffled=False, n_train=n):
        s = _get(summary, d, r["coupling"], r["head"], True, n)
        delta = f"{s['test_accuracy']['mean'] - r['test_accuracy']['mean']:+.3f}" if s else "–"
        lines.append(f"| {r['coupling']} ({r['head']}) | {r['n_params']:,} | {fmt(r['test_accuracy'])} | "
                     f"{fmt(s['test_accuracy']) if s else '–'} | {delta} |")
    lines.append("")
    sizes = sorted({r["n_train"] for r in summary if r["dataset"] == d})
    if len(sizes) > 1:
        lines += [f"Test accuracy against the training-set size ({d}):", "",
                  "| coupling | sites | " + " | ".join(f"n = {s}" for s in sizes) + " |",
                  "|---|---|" + "---|" * len(sizes)]
        for shuffled in (False, True):
            for r in _rows(summary, dataset=d, shuffled=shuffled, n_train=n):
                cells = [_get(summary, d, r["coupling"], r["head"], shuffled, s) for s in sizes]
                lines.append(f"| {r['coupling']} | {'shuffled' if shuffled else 'original'} | "
                             + " | ".join(fmt(c["test_accuracy"]) if c else "–" for c in cells) + " |")
        lines.append("")
    shifts = [r for r in _rows(summary, dataset=d, shuffled=False, n_train=n) if "shift_accuracy" in r]
    if shifts:
        keys = sorted(shifts[0]["shift_accuracy"], key=int)
        lines += [f"Test inputs shifted by s sites, zero fill (mean over directions), trained on {n} unshifted:",
                  "", "| coupling | " + " | ".join(f"s = {k}" for k in keys) + " |", "|---|" + "---|" * len(keys)]
        for r in shifts:
            lines.append(f"| {r['coupling']} | " + " | ".join(fmt(r["shift_accuracy"][k]) for k in keys) + " |")
        lines.append("")
    return lines


def _mnist1d(report, summary, d):
    return _shuffle_table(report, summary, d, "**MNIST-1D** (Greydanus & Kobak; 40 sites; published: CNN 0.94 → "
                          "0.56 with the sites shuffled, MLP 0.68 → 0.68):")


def _digits(report, summary, d):
    return _shuffle_table(report, summary, d, "**Digits 8×8** (every digit centred on a tiny image, so that "
                          "translation has little room to act):")


def _translated(report, summary, d):
    proto = report["protocol"]
    lines = [f"**Translated digits**: the 8×8 digits on a {proto['canvas']}×{proto['canvas']} canvas, trained "
             f"at corner columns {tuple(proto['train_columns'])}, tested at the same columns (seen) and at "
             f"{tuple(proto['unseen_columns'])} (unseen):", "",
             "| coupling | head | parameters | seen positions | unseen positions |", "|---|---|---|---|---|"]
    for r in _rows(summary, dataset=d, shuffled=False):
        lines.append(f"| {r['coupling']} | {r['head']} | {r['n_params']:,} | {fmt(r['test_accuracy'])} | "
                     f"{fmt(r['unseen_accuracy'])} |")
    return lines + [""]


def _cat(report, summary, d):
    sizes = sorted({r["n_train"] for r in summary if r["dataset"] == d})
    title = ("**The cat task, locate** (a 3×3 pattern on a 12×12 noisy image; the classes are its sites; head "
             "\"sites\": the one-hot ensemble over output sites):" if d == "cat" else
             "**The cat task, detect** (is the 3×3 pattern on the 12×12 noisy image at all? half of the images "
             "hold it, at a random site):")
    lines = [title, "", "| coupling | head | parameters | " + " | ".join(f"n = {s}" for s in sizes) + " |",
             "|---|---|---|" + "---|" * len(sizes)]
    for r in _rows(summary, dataset=d, shuffled=False, n_train=sizes[-1]):
        cells = [_get(summary, d, r["coupling"], r["head"], False, s) for s in sizes]
        lines.append(f"| {r['coupling']} | {r['head']} | {r['n_params']:,} | "
                     + " | ".join(fmt(c["test_accuracy"]) if c else "–" for c in cells) + " |")
    return lines + [""]


SECTIONS = {"mnist1d": _mnist1d, "translated": _translated, "digits": _digits, "cat": _cat, "cat_detect": _cat}


def _equivariance_table(summary):
    rows = [r for r in summary if r.get("equivariance") and not r["shuffled"]]
    if not rows:
        return []
    lines = ["**Equivariance** of the first and the last coupling block with output sites, "
             "‖f(Tx) − T f(x)‖ / ‖f(x)‖ for T a shift by one site (circular / zero fill), on 200 test inputs:", "",
             "| dataset | coupling | head | first block | last block |", "|---|---|---|---|---|"]
    for r in rows:
        if r["n_train"] != _largest(summary, r["dataset"]):
            continue
        first, last = r["equivariance"][0], r["equivariance"][-1]
        lines.append(f"| {r['dataset']} | {r['coupling']} | {r['head']} | "
                     f"{first['circular']['mean']:.3f} / {first['zero']['mean']:.3f} | "
                     f"{last['circular']['mean']:.3f} / {last['zero']['mean']:.3f} |")
    return lines + [""]


def _below(a, b) -> bool:
    """a's 95 % interval lies entirely below b's (False without intervals)."""
    if a.get("ci95") is None or b.get("ci95") is None:
        return False
    return a["mean"] + a["ci95"] < b["mean"] - b["ci95"]


def _diff(d):
    return f"{d['mean']:+.3f} ± {d['ci95']:.3f}" if d.get("ci95") is not None else f"{d['mean']:+.3f}"


def discussion(report) -> list[str]:
    """Paragraphs whose every claim is read off the numbers: a comparison is called a difference
    only when its paired 95 % interval excludes 0."""
    summary, out = report["summary"], []
    if "mnist1d" in report["datasets"]:
        d, n = "mnist1d", _largest(summary, "mnist1d")
        g = {(f, s): _get(summary, d, f, None, s, n) for f in ORDER for s in (False, True)}
        if g[("shared", False)] and g[("full", False)]:
            orig, shuf = _pair(report, d, "full", False, n_train=n), _pair(report, d, "full", True, n_train=n)
            shared, full = g[("shared", False)]["test_accuracy"], g[("full", False)]["test_accuracy"]
            text = (f"*MNIST-1D.* With the sites in their order, shared reaches {fmt(shared)} and full {fmt(full)}: "
                    f"shared − full = {_diff(orig)} ({verdict(orig)}). ")
            if g[("shared", True)] and g[("full", True)] and shuf:
                shared, full = g[("shared", True)]["test_accuracy"], g[("full", True)]["test_accuracy"]
                text += (f"With the sites shuffled, shared moves to {fmt(shared)} and full to {fmt(full)}: "
                         f"shared − full = {_diff(shuf)} ({verdict(shuf)}). ")
            if g[("local", False)] and g[("sparse", False)]:
                text += (f"The local coupling (the same windows, untied) reaches "
                         f"{fmt(g[('local', False)]['test_accuracy'])} and the sparse control (a window's fan-in, no "
                         f"locality) {fmt(g[('sparse', False)]['test_accuracy'])}. ")
            narrow = _get(summary, d, "local_narrow", None, False, n)
            if narrow:
                p = _pair(report, d, "local_narrow", False, n_train=n)
                text += (f"Cut to the shared network's parameter count ({narrow['n_params']:,} against "
                         f"{g[('shared', False)]['n_params']:,}), the local network reaches "
                         f"{fmt(narrow['test_accuracy'])}: shared − narrowed local = {_diff(p)} ({verdict(p)}). ")
            text += ("Greydanus & Kobak report 0.94 → 0.56 for their CNN and 0.68 → 0.68 for an MLP under the same "
                     "permutation of sites.")
            out += [text, ""]
    if "translated" in report["datasets"]:
        d = "translated"
        rows = _rows(summary, dataset=d, shuffled=False)
        best = max(rows, key=lambda r: r["unseen_accuracy"]["mean"])
        others = [r for r in rows if r["coupling"] != "shared"]
        text = (f"*Translated digits.* At corner positions never seen in training, the best network is "
                f"{best['coupling']} with the {best['head']} head, {fmt(best['unseen_accuracy'])} (seen positions: "
                f"{fmt(best['test_accuracy'])}). ")
        if others:
            lo = min(r["unseen_accuracy"]["mean"] for r in others)
            hi = max(r["unseen_accuracy"]["mean"] for r in others)
            text += (f"Every other family ({', '.join(sorted({r['coupling'] for r in others}, key=ORDER.index))}) "
                     f"reaches {lo:.3f}–{hi:.3f} there, with either head (chance: 0.10). ")
        gap, dense = _get(summary, d, "shared", "gap"), _get(summary, d, "shared", "dense")
        if gap and dense:
            text += f"The shared network with a dense head reaches {fmt(dense['unseen_accuracy'])} there"
            if _below(dense["unseen_accuracy"], gap["unseen_accuracy"]):
                text += (", below the gap head (the two 95 % intervals do not overlap): the dense readout weights each "
                         "site separately, so a feature the shared blocks detect at a new position meets readout "
                         "weights that never saw it; only the readout that averages over sites carries the blocks' "
                         "equivariance through to the class (Novak et al. 2019: without an invariant readout a CNN "
                         "behaves, in the limit of infinitely many channels, like a locally connected network). ")
            else:
                text += ", and its interval overlaps the gap head's: the head makes no resolved difference here. "
            for head in ("gap", "dense"):
                p = _pair(report, d, "full", head=head, metric="unseen_accuracy")
                if p:
                    text += f"Shared − full at unseen positions, {head} head: {_diff(p)} ({verdict(p)}). "
        out += [text.strip(), ""]
    if "digits" in report["datasets"]:
        d, n = "digits", _largest(summary, "digits")
        rows = _rows(summary, dataset=d, shuffled=False, n_train=n)
        if rows:
            lo = min(r["test_accuracy"]["mean"] for r in rows)
            hi = max(r["test_accuracy"]["mean"] for r in rows)
            p = _pair(report, d, "full", False, n_train=n)
            ps = _pair(report, d, "full", True, n_train=n)
            text = (f"*Digits 8×8.* All {len(rows)} networks reach {lo:.3f}–{hi:.3f} on the centred 8×8 digits; "
                    "shared − "
                    f"full = {_diff(p)} ({verdict(p)})")
            text += f", and {_diff(ps)} with the sites shuffled ({verdict(ps)}). " if ps else ". "
            one = [r["shift_accuracy"].get("1") for r in rows if "shift_accuracy" in r]
            if one and all(one):
                text += (f"A 1-pixel zero-fill shift takes every family to {min(o['mean'] for o in one):.3f}–"
                         f"{max(o['mean'] for o in one):.3f}")
                if all(_below(o, r["test_accuracy"]) for o, r in zip(one, rows)):
                    text += (", below its unshifted accuracy for every family: on an 8×8 image the shift deletes "
                             "a row or column of the digit, and the dense head reads fixed sites. ")
                else:
                    text += ". "
            out += [text.strip(), ""]
    for d in ("cat", "cat_detect"):
        if d not in report["datasets"]:
            continue
        sizes = sorted({r["n_train"] for r in summary if r["dataset"] == d})
        text = f"*The cat task, {'locate' if d == 'cat' else 'detect'}.* "
        for head in sorted({r["head"] for r in summary if r["dataset"] == d}):
            for n in sorted(set(sizes[:1] + sizes[-1:])):
                sh, fu = _get(summary, d, "shared", head, False, n), _get(summary, d, "full", head, False, n)
                p = _pair(report, d, "full", head=head, n_train=n)
                if sh and fu and p:
                    text += (f"With {n} training images and the {head} head, shared reaches {fmt(sh['test_accuracy'])} "
                             f"and full {fmt(fu['test_accuracy'])}, shared − full = {_diff(p)} ({verdict(p)}). ")
        out += [text.strip(), ""]
    return out[:-1] if out else ["No dataset of this run has a comparison to discuss."]


def render_trainability(report: dict, figure_dir: str = "figures") -> str:
    """The trainability table (test accuracy per ensemble x init, one column per depth x canvas of
    the stacks and per preset) and its figures."""
    summary = report["summary"]
    prov = report["provenance"]
    args = prov.get("arguments") or {}
    stacks = [s for s in summary if s.get("model", "stack") == "stack"]
    depths = sorted({s["depth"] for s in stacks})
    canvases = sorted({s["canvas"] for s in stacks})
    columns = [("stack", d, c) for c in canvases for d in depths]
    names = {"lenet5": "LeNet-5, 8×8", "resnet": "ResNet, {d} blocks, 8×8", "plain": "no skips, {d} blocks, 8×8"}
    for model in names:
        depth = sorted({s["depth"] for s in summary if s.get("model") == model})
        columns += [(model, d, 8) for d in depth]
    seeds = sorted({r["seed"] for r in report["records"]})
    lines = [
        f"Generated by `python papers/build.py --trainability` from commit `{prov.get('git_commit')}`, "
        f"command `{prov.get('command')}`: seeds {seeds}, {args.get('epochs')} epochs of the default `fit`, "
        f"{args.get('n_train')} training images, wall time {prov.get('wall_time', 0):.0f} s (cells already on disk "
        f"are read back; the final fits alone took {sum(r.get('train_time', 0) for r in report['records']):.0f} s "
        f"summed over the cells). Test accuracy, mean over seeds ± the half-width of a 95 % t-interval "
        f"(chance is 0.10):",
        "",
        "| ensemble | init | " + " | ".join(f"{d} blocks, {c}×{c}" if m == "stack" else names[m].format(d=d)
                                          for m, d, c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    order = ["binary", "centred", "spin", "relu"]
    inits = ["glorot", "variance", "fan_in"]
    keys = sorted({(s["ensemble"], s["init"]) for s in summary},
                  key=lambda k: (order.index(k[0]) if k[0] in order else len(order),
                                 inits.index(k[1]) if k[1] in inits else len(inits), k[1]))
    table = {(s.get("model", "stack"), s["ensemble"], s["init"], s["depth"], s["canvas"]): s for s in summary}
    for ensemble, init in keys:
        cells = []
        for model, d, c in columns:
            s = table.get((model, ensemble, init, d, c))
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


def render_skips(report: dict, figure_dir: str = "figures") -> str:
    """The residual stack against the same couplings without skips (experiments/trainability.py
    --models resnet,plain): accuracy per seed, the interval, the training accuracy, and what the
    intervals say."""
    prov, args = report["provenance"], report["provenance"].get("arguments") or {}
    summary = [s for s in report["summary"] if s.get("model") in ("resnet", "plain")]
    if not summary:
        raise SystemExit("--skips: the results hold no resnet / plain cells; run trainability.py --models resnet,plain")
    records = [r for r in report["records"] if r.get("model") in ("resnet", "plain")]
    seeds = sorted({r["seed"] for r in records})
    lines = [
        f"Generated by `python papers/build.py --skips` from commit `{prov.get('git_commit')}`, command "
        f"`{prov.get('command')}`: seeds {seeds}, {args.get('epochs')} epochs of the default `fit`, "
        f"{args.get('n_train')} training images of the 8×8 digits. Test accuracy, mean ± the half-width of a "
        "95 % t-interval, and the training accuracy at the end (mean over seeds: a network that cannot fit "
        "its training set has an optimisation problem, not a generalisation one):",
        "",
        "| network | ensemble | init | blocks | parameters | test accuracy per seed | mean | training accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {"resnet": "ResNet (skips)", "plain": "no skips"}
    for s in sorted(summary, key=lambda s: (s["ensemble"], s["init"], s["depth"], s["model"] != "resnet")):
        cell = [r for r in records if all(r[k] == s[k] for k in ("model", "ensemble", "init", "depth", "canvas"))]
        cell.sort(key=lambda r: r["seed"])
        per_seed = ", ".join(f"{r['test_accuracy']:.3f}" for r in cell)
        train = sum(r["train_accuracy"] for r in cell) / len(cell)
        lines.append(f"| {names[s['model']]} | {s['ensemble']} | {s['init']} | {s['depth']} | "
                     f"{cell[0]['n_params']:,} | {per_seed} | {fmt(s)} | {train:.3f} |")
    lines.append("")
    table = {(s["model"], s["ensemble"], s["init"], s["depth"]): s for s in summary}
    for (model, ensemble, init, depth), s in sorted(table.items()):
        plain = table.get(("plain", ensemble, init, depth))
        if model == "resnet" and plain is not None:
            lines.append(f"At {depth} blocks ({ensemble}, {init}), with skips against without: {fmt(s)} against "
                         f"{fmt(plain)}, {_compare(s, plain)}.")
    return "\n".join(lines)


def _provenance_line(report, what):
    prov = report["provenance"]
    return (f"Generated by `python papers/build.py {what}` from commit `{prov.get('git_commit')}`, command "
            f"`{prov.get('command')}`, wall time {prov.get('wall_time', 0) / 60:.0f} min.")


def _compare(a, b) -> str:
    """How interval a sits against interval b (mean ± 95 % half-width each)."""
    ha, hb = a.get("ci95") or 0.0, b.get("ci95") or 0.0
    if a.get("ci95") is None or b.get("ci95") is None:
        return "one seed: no interval"
    if a["mean"] - ha > b["mean"] + hb:
        return "above, the intervals do not overlap"
    if a["mean"] + ha < b["mean"] - hb:
        return "below, the intervals do not overlap"
    return "the intervals overlap"


def render_relax(report: dict, figure_dir: str = "figures") -> str:
    """The relaxation table (final accuracy and unshared fraction per target and switch time) and a
    comparison with the CNN, every verdict read off the intervals."""
    rows, args = report["summary"], report["provenance"].get("arguments") or {}
    epochs = args.get("epochs")
    seeds = sorted({r["seed"] for r in report["records"]})
    lines = [_provenance_line(report, "--relax") + f" MNIST-1D, {len(seeds)} seeds, {epochs} epochs in every run, "
             f"Adam at lr {args.get('lr_after')} after the switch. Final test accuracy, mean ± 95 % half-width; "
             "unshared fraction ‖J − PJ‖/‖J‖ of the coupling blocks at the end (first … last block):", "",
             "| relaxed to | switch t_w | parameters | final test accuracy | unshared fraction |",
             "|---|---|---|---|---|"]
    for r in rows:
        which = ("— (trained from its own init)" if r["t_w"] is None else
                 f"{r['t_w']} (never: the CNN)" if r["t_w"] == epochs else str(r["t_w"]))
        ends = r["final_unshared"] or []
        unshared = " … ".join(f"{u['mean']:.2f}" for u in ends[::max(1, len(ends) - 1)])
        lines.append(f"| {r['target']} | {which} | {r['n_params']:,} | {fmt(r['final_test_accuracy'])} | "
                     f"{unshared or '–'} |")
    lines.append("")
    for target in sorted({r["target"] for r in rows}):
        cnn = next((r for r in rows if r["target"] == target and r["t_w"] == epochs), None)
        if cnn is None:
            continue
        parts = [f"t_w = {r['t_w']}: {_compare(r['final_test_accuracy'], cnn['final_test_accuracy'])}"
                 for r in rows if r["target"] == target and r["t_w"] not in (None, epochs)]
        scratch = next((r for r in rows if r["target"] == target and r["t_w"] is None), None)
        text = (f"Relaxed to {target}, against the CNN trained for all {epochs} epochs "
                f"({fmt(cnn['final_test_accuracy'])}): " + "; ".join(parts) + ".")
        if scratch:
            text += (f" The {target} network from its own initialisation reaches {fmt(scratch['final_test_accuracy'])} "
                     f"({_compare(scratch['final_test_accuracy'], cnn['final_test_accuracy'])} against the CNN).")
            zero = next((r for r in rows if r["target"] == target and r["t_w"] == 0), None)
            if zero:
                versus = _compare(zero["final_test_accuracy"], scratch["final_test_accuracy"])
                text += (f" Started from the CNN's initialisation embedded (t_w = 0) it reaches "
                         f"{fmt(zero['final_test_accuracy'])}: {versus} against its own initialisation.")
        runs = [r for r in report["records"] if r["target"] == target and r["t_w"] not in (None, epochs)
                and r["t_w"] > 0]
        if runs:
            kept = sum(r["final_test_accuracy"] >= r["curves"]["test_accuracy"][r["t_w"] - 1] for r in runs)
            text += (f" d'Ascoli et al. find that the embedded network never falls below the CNN it was switched "
                     f"from: here the relaxed network ends at or above the CNN's accuracy at its switch time in "
                     f"{kept} of {len(runs)} runs (t_w > 0, every seed).")
        lines += [text, ""]
    lines += [f"![relaxation]({figure_dir}/relaxation.png)", ""]
    return "\n".join(lines)


def render_locality(report: dict, figure_dir: str = "figures") -> str:
    """The learned-locality table: accuracy, spread, inside-window fraction and zeros per method."""
    u = report["uniform"]
    args = report["provenance"].get("arguments") or {}
    seeds = sorted({r["seed"] for r in report["records"]})
    lines = [_provenance_line(report, "--locality") + f" MNIST-1D, {len(seeds)} seeds, {args.get('epochs')} epochs; "
             f"β-LASSO with lr {args.get('lr_lasso')}, λ = {args.get('lam')}, β = {args.get('beta')}. First coupling "
             f"layer: spread = |J|-weighted mean distance between output and input site, inside = fraction of |J| "
             f"within the window of 3 (a uniform |J| gives spread {u['spread']:.1f} and inside {u['inside']:.2f}):", "",
             "| network | parameters | test accuracy | spread (sites) | inside | zeros |", "|---|---|---|---|---|---|"]
    for r in report["summary"]:
        lines.append(f"| {r['method']} | {r['n_params']:,} | {fmt(r['test_accuracy'])} | {fmt(r['spread'])} | "
                     f"{fmt(r['inside'])} | {fmt(r['zeros'])} |")
    lines.append("")
    rows = {r["method"]: r for r in report["summary"]}
    lasso, adam = rows.get("full+beta_lasso"), rows.get("full+adam")
    if lasso and adam:
        text = (f"β-LASSO sets {lasso['zeros']['mean']:.0%} of the first layer's couplings to exactly zero. The share "
                f"of |J| inside the window is {lasso['inside']['mean']:.2f} with β-LASSO and "
                f"{adam['inside']['mean']:.2f} "
                f"with Adam ({_compare(lasso['inside'], adam['inside'])}), against {u['inside']:.2f} for no locality "
                f"at all and 1 for the local and shared couplings, which have it by construction. Test accuracy: "
                f"{fmt(lasso['test_accuracy'])} with β-LASSO, {fmt(adam['test_accuracy'])} with Adam.")
        inside = lasso["inside"]
        if inside.get("ci95") is not None:
            if inside["mean"] - inside["ci95"] > u["inside"]:
                text += (" The β-LASSO couplings concentrate inside the window beyond the uniform level: some "
                         "locality is learned from the data, as Neyshabur reports for images.")
            else:
                text += (" The β-LASSO couplings are sparse but not local: their share inside the window is not "
                         "resolved above the uniform level in this run. Neyshabur's locality emerged on image "
                         "data sets (CIFAR-10, CIFAR-100, SVHN) with another architecture and training budget; "
                         "this run does not reproduce it on MNIST-1D.")
        lines += [text, ""]
    lines += [f"![receptive fields]({figure_dir}/receptive_fields.png)", ""]
    return "\n".join(lines)


def render_classic(report: dict) -> str:
    """§7's classic networks from parameter_counting.py: stacked 3x3 windows against one large one,
    the Inception bottleneck, and every preset's parameters per family with its accuracy on digits."""
    classic = report["classic"]
    lines = [_provenance_line(report, "--counting"), ""]
    for r in classic["stacked_windows"]:
        agree = ("the recursion and the impulse response agree" if r["match"]
                 else "the recursion and the impulse response DISAGREE")
        sizes = "×".join(map(str, r["rf_impulse_stack"]))
        single = "×".join(map(str, r["rf_impulse_single"]))
        c = r["channels"][-1]
        lines.append(f"- {r['stack']} couplings see {r['rf_recursion_stack']}×{r['rf_recursion_stack']} input sites "
                     f"by (14) and {sizes} by the response of the package's layers to an impulse, one {r['single']} "
                     f"coupling {single} ({agree}); their weights are {r['ratio_formula']} = {r['ratio']:.1%} of "
                     f"the single window's ({c['stack_weights']:,} against {c['single_weights']:,} for C = {c['C']}).")
    b = classic["inception_bottleneck"]
    m = b["module"]
    lines += ["", f"An Inception module's 1×1 bottleneck (Szegedy et al.'s module 3a: {m['in_channels']} channels in, "
              f"{m['sites']}×{m['sites']} sites). A k×k branch C → K read through a 1×1 reduction to r channels "
              "costs C r + k² r K weights instead of k² C K, a ratio r/C + r/(k² K); every weight is used once per "
              "output site, so the multiply-adds shrink by the same ratio:", "",
              "| branch | direct weights | with the 1×1 | ratio | multiply-adds direct | with the 1×1 |",
              "|---|---|---|---|---|---|"]
    for r in b["branches"]:
        lines.append(f"| {r['kernel']}×{r['kernel']}, {r['in']} → {r['reduce']} → {r['out']} | "
                     f"{r['direct_weights']:,} | {r['bottleneck_weights']:,} | {r['ratio']:.3f} | "
                     f"{r['direct_mult_adds']:,} | {r['bottleneck_mult_adds']:,} |")
    lines += ["", f"Both branches together keep {b['ratio_both_branches']:.1%} of the weights and multiply-adds.", ""]
    counts = classic["preset_params"]
    families = ["shared", "local", "full", "sparse"]
    lines += ["Parameters of each preset of `build` per family (full couplings above 5 M counted by formula "
              "from the shapes, not built; – where the family cannot build it):", "",
              "| input | preset | " + " | ".join(families) + " |", "|---|---|" + "---|" * len(families)]
    for key in dict.fromkeys(k.rsplit("/", 1)[0] for k in counts):
        data, preset = key.split("/")
        cells = [("–" if counts[f"{key}/{f}"]["n_params"] is None else f"{counts[f'{key}/{f}']['n_params']:,}")
                 for f in families]
        lines.append(f"| {data} | {preset} | " + " | ".join(cells) + " |")
    acc = classic.get("preset_accuracy") or {}
    if acc:
        settings = classic["preset_accuracy_settings"]
        seeds = settings["seeds"]
        few = len(seeds) <= 5
        lines += ["", f"Test accuracy on digits with the defaults of `build` and `fit` (epochs: {settings['epochs']}), "
                  f"one fit per batch-order seed ({len(seeds)} seeds: {seeds[0]}–{seeds[-1]}), mean ± the "
                  "half-width of a 95 % t-interval (chance is 0.10):", "",
                  f"| preset | family | parameters | {'accuracy per seed' if few else 'min – max'} | mean |",
                  "|---|---|---|---|---|"]
        for key, r in acc.items():
            preset, family = key.split("/")
            spread = (", ".join(f"{a:.3f}" for a in r["test_accuracy"]) if few
                      else f"{min(r['test_accuracy']):.3f} – {max(r['test_accuracy']):.3f}")
            lines.append(f"| {preset} | {family} | {r['n_params']:,} | {spread} | {fmt(r)} |")
        presets = dict.fromkeys(k.split("/")[0] for k in acc)
        pairs = [(p, acc[f"{p}/shared"], acc[f"{p}/local"]) for p in presets
                 if f"{p}/shared" in acc and f"{p}/local" in acc]
        if pairs:
            lines += ["", "Shared against local coupling, preset by preset (read off the intervals): "
                      + "; ".join(f"{p}: shared {fmt(a)} against local {fmt(b)}, {_compare(a, b)}" for p, a, b in pairs)
                      + "."]
    return "\n".join(lines)


def _relation(a, b, la, lb) -> str:
    """A sentence on how interval a (named la) sits against interval b (lb)."""
    verdict = _compare(a, b)
    if verdict.startswith("one seed"):
        return f"{la} {a['mean']:.2f} against {lb} {b['mean']:.2f} (one seed: no interval)"
    if verdict.startswith("above"):
        return f"{la} lies above {lb} (the 95 % intervals do not overlap)"
    if verdict.startswith("below"):
        return f"{la} lies below {lb} (the 95 % intervals do not overlap)"
    return f"{la} and {lb} are not resolved (the 95 % intervals overlap)"


def fmt2(stat) -> str:
    """mean ± the 95 % half-width, two decimals (nats)."""
    return f"{stat['mean']:.2f}" + (f" ± {stat['ci95']:.2f}" if stat.get("ci95") is not None else "")


def render_rbm(report: dict, figure_dir: str = "figures") -> str:
    """§6.2's numbers: exact log-likelihood before and after training, AIS against exact log Z, and the
    CD/PCD gradient estimates against the exact gradient (experiments/rbm_exact.py)."""
    s, m = report["summary"], report["model"]
    n = s["n_seeds"]
    optimum = report["records"][0]["optimum"]
    t = s["training"]
    lines = [_provenance_line(report, "--rbm") + f" {n} seeds; a {m['maps']}-filter {m['window']}×{m['window']} "
             f"shared RBM on the 30 bars-and-stripes patterns of 4×4 pixels, {m['epochs']} epochs. Exact "
             f"log-likelihood per pattern (nats; the best any model can do is log 1/30 = {optimum:.2f}), mean ± "
             "95 % half-width over seeds:", "",
             "| initial weights | before training | after CD-1 | after PCD-1 (`fit`'s defaults) |", "|---|---|---|---|"]
    for init, label in (("build", "`RBM.build` (std 2/√fan-in = 1)"), ("small", "std 0.01")):
        lines.append(f"| {label} | {fmt2(t[init]['before'])} | {fmt2(t[init]['cd1'])} | {fmt2(t[init]['pcd'])} |")
    g = s["gradient_relative_error"]
    args = report["provenance"].get("arguments") or {}
    lines += ["", f"AIS ({args.get('ais_chains')} runs over {args.get('ais_betas')} temperatures) against the exact "
              f"log Z of the trained models: mean |error| {s['ais_abs_error']['mean']:.3f} nats, mean standard error "
              f"{s['ais_se']['mean']:.3f}; {s['ais_within_3se']} of {n} estimates within three of their standard "
              "errors.", "",
              f"Gradient estimates at the trained parameters, {args.get('negatives')} negative samples each, relative "
              "error |g − g_exact| / |g_exact|:", "",
              "| CD-1 | CD-10 | PCD-1, one update | PCD-1, mean of 50 updates |", "|---|---|---|---|",
              f"| {fmt(g['cd1'])} | {fmt(g['cd10'])} | {fmt(g['pcd1_single'])} | {fmt(g['pcd1'])} |", "",
              f"![rbm exact]({figure_dir}/rbm_exact.png)", ""]
    text = (f"Read off the tables: from `build`'s weights, "
            f"{_relation(t['build']['pcd'], t['build']['cd1'], 'PCD', 'CD-1')}; from weights of 0.01, "
            f"{_relation(t['small']['pcd'], t['small']['cd1'], 'PCD', 'CD-1')}. PCD gains "
            f"{fmt2(s['gain_pcd']['build'])} nats over its start from `build`'s weights and "
            f"{fmt2(s['gain_pcd']['small'])} from 0.01. Of the gradient errors, "
            f"{_relation(g['cd1'], g['cd10'], 'CD-1', 'CD-10')}, and "
            f"{_relation(g['pcd1_single'], g['pcd1'], 'one PCD-1 update', 'the mean of 50')}.")
    lines.append(text)
    return "\n".join(lines)


def render_generative(report: dict, figure_dir: str = "figures") -> str:
    """§8.3: AIS test log-likelihood per dataset, family and training-set size (experiments/generative_sharing.py)."""
    summary = report["summary"]
    args = report["provenance"].get("arguments") or {}
    seeds = sorted({r["seed"] for r in report["records"]})
    sizes = sorted({s["n_train"] for s in summary})
    lines = [_provenance_line(report, "--generative") + f" {len(seeds)} seeds, {args.get('steps')} PCD-1 updates per "
             f"model, AIS with {args.get('ais_chains')} runs over {args.get('ais_betas')} temperatures from the data's "
             "base rate; learning rates chosen on a validation split. Test log-likelihood per image (nats), mean ± "
             "95 % half-width over seeds (the AIS standard error, averaged, in the last column):", "",
             "| dataset | family | parameters | lr | " + " | ".join(f"test, {n} images" for n in sizes)
             + " | train, " + f"{sizes[-1]} images | AIS s.e. |",
             "|---|---|---|---|" + "---|" * len(sizes) + "---|---|"]
    datasets = [d for d in ("digits", "translated", "cat") if any(s["dataset"] == d for s in summary)]
    for d in datasets:
        for f in ("shared", "local", "full", "sklearn"):
            rows = {s["n_train"]: s for s in summary if s["dataset"] == d and s["family"] == f}
            if not rows:
                continue
            last = rows[max(rows)]
            lines.append(f"| {d} | {f} | {last['n_params']:,} | {last['lr']:g} | "
                         + " | ".join(fmt2(rows[n]) if n in rows else "–" for n in sizes)
                         + f" | {last['train_log_likelihood']:.2f} | {last['ais_se']:.2f} |")
    lines += ["", f"![log-likelihood against parameters]({figure_dir}/loglik_vs_params.png)", "",
              f"![log-likelihood against training-set size]({figure_dir}/loglik_vs_size.png)", "",
              f"![samples]({figure_dir}/samples.png)", "", f"![filters]({figure_dir}/filters.png)", ""]
    edges = []
    for c in report.get("chosen_lr", []):
        grid = args.get("sklearn_lrs" if c["family"] == "sklearn" else "lrs") or []
        if len(grid) > 1 and c["lr"] in (min(grid), max(grid)):
            edges.append(f"{c['dataset']}/{c['family']} ({c['lr']:g}, the {'top' if c['lr'] == max(grid) else 'bottom'}"
                         f" of {', '.join(f'{v:g}' for v in grid)})")
    if edges:
        lines += ["The learning rate chosen on validation lies at an edge of its grid for " + "; ".join(edges)
                  + ": a rate beyond the grid might do better there, so these cells are a lower bound of what the "
                  "family reaches with this budget.", ""]
    for d in datasets:
        n = max(s["n_train"] for s in summary if s["dataset"] == d)
        row = {s["family"]: s for s in summary if s["dataset"] == d and s["n_train"] == n}
        best = max(row.values(), key=lambda s: s["mean"])
        text = f"*{d}, {n} training images.* The highest test log-likelihood is {best['family']}'s ({fmt2(best)}). "
        pairs = [(a, b) for a, b in (("shared", "local"), ("shared", "full"), ("local", "full"), ("full", "sklearn"))
                 if a in row and b in row]
        relations = "; ".join(_relation(row[a], row[b], a, b) for a, b in pairs)
        text += relations[:1].upper() + relations[1:] + ". "
        small = {s["family"]: s for s in summary if s["dataset"] == d and s["n_train"] == min(sizes)}
        if min(sizes) < n and "shared" in small and "full" in small:
            text += (f"With {min(sizes)} images, {_relation(small['shared'], small['full'], 'shared', 'full')}; the "
                     f"gap full − shared is {small['full']['mean'] - small['shared']['mean']:.2f} nats there and "
                     f"{row['full']['mean'] - row['shared']['mean']:.2f} with {n}.")
        lines += [text.strip(), ""]
    return "\n".join(lines[:-1])


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
    with open(path) as fh:
        check_commit(json.load(fh), path)
    report, _ = install(path, paper, "trainability.json", TRAIN_FIGURES, require_figures=True)
    rewrite_between(paper, TRAIN_BEGIN, TRAIN_END, render_trainability(report))
    print(f"wrote the trainability table of {paper} from {path}")


def build_section(path: str, paper: str, data_name: str, figures, begin: str, end: str, render_fn) -> None:
    """Copy a results.json (from a clean commit) and its figures into papers/ and rewrite one section."""
    with open(path) as fh:
        check_commit(json.load(fh), path)
    report, _ = install(path, paper, data_name, figures, require_figures=True)
    rewrite_between(paper, begin, end, render_fn(report))
    print(f"wrote the section between {begin} and {end} of {paper} from {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=None, help="a results.json of experiments/sharing_vs_coupling.py")
    p.add_argument("--paper", default=PAPER)
    p.add_argument("--trainability", default=None, metavar="RESULTS",
                   help="a results.json of experiments/trainability.py: rewrite §6.1's table instead")
    p.add_argument("--skips", default=None, metavar="RESULTS",
                   help="a results.json of experiments/trainability.py --models resnet,plain: rewrite §6.1's "
                        "skip comparison")
    p.add_argument("--relax", default=None, metavar="RESULTS",
                   help="a results.json of experiments/relax_coupling.py: rewrite §8.2's relaxation part")
    p.add_argument("--locality", default=None, metavar="RESULTS",
                   help="a results.json of experiments/learned_locality.py: rewrite §8.2's locality part")
    p.add_argument("--counting", default=None, metavar="RESULTS",
                   help="a results.json of experiments/parameter_counting.py: rewrite §7's classic networks")
    p.add_argument("--rbm", default=None, metavar="RESULTS",
                   help="a results.json of experiments/rbm_exact.py: rewrite §6.2's numbers")
    p.add_argument("--generative", default=None, metavar="RESULTS",
                   help="a results.json of experiments/generative_sharing.py: rewrite §8.3")
    args = p.parse_args(argv)
    for option, data_name, figures, begin, end, fn in (
            ("relax", "relax_coupling.json", ("relaxation.png",), RELAX_BEGIN, RELAX_END, render_relax),
            ("locality", "learned_locality.json", ("receptive_fields.png",), LOCALITY_BEGIN, LOCALITY_END,
             render_locality),
            ("counting", "parameter_counting.json", ("parameters_vs_side.png",), CLASSIC_BEGIN, CLASSIC_END,
             render_classic),
            ("skips", "trainability_skips.json", (), SKIPS_BEGIN, SKIPS_END, render_skips),
            ("rbm", "rbm_exact.json", ("rbm_exact.png",), RBM_BEGIN, RBM_END, render_rbm),
            ("generative", "generative_sharing.json", GENERATIVE_FIGURES, GENERATIVE_BEGIN, GENERATIVE_END,
             render_generative)):
        path = getattr(args, option)
        if path is not None:
            if not os.path.exists(path):
                p.error(f"--{option}: no file {path!r}")
            build_section(path, args.paper, data_name, figures, begin, end, fn)
    if any(getattr(args, o) is not None for o in ("skips", "relax", "locality", "counting", "rbm", "generative")):
        return
    if args.trainability is not None:
        if not os.path.exists(args.trainability):
            p.error(f"--trainability: no file {args.trainability!r}")
        build_trainability(args.trainability, args.paper)
        return
    path = args.results or newest_results()
    if path is None or not os.path.exists(path):
        p.error("no results.json found: run python experiments/sharing_vs_coupling.py first, or pass --results")
    with open(path) as fh:
        check_commit(json.load(fh), path)
    report, paper_dir = install(path, args.paper, "sharing_vs_coupling.json", FIGURES)
    rewrite_between(args.paper, BEGIN, END, render(report, paper_dir))
    print(f"wrote the results section of {args.paper} from {path}")


if __name__ == "__main__":
    main()
