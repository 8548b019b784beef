"""Do the RBM's estimators agree with exact enumeration? Training, AIS and CD/PCD on bars and stripes.

    python experiments/rbm_exact.py            # 10 seeds (about a minute on 2 cores)
    python experiments/rbm_exact.py --quick    # 3 seeds

A 4-filter 2x2 shared RBM (the convolutional RBM, 36 hidden units, 21 parameters) on the 30
bars-and-stripes patterns of 4x4 pixels (hc.data.bars_and_stripes), small enough that every
quantity has an exact value (2**16 visible configurations, the hidden units summed out):

  training  the exact log-likelihood of the data before and after 50 epochs of ``fit`` with its
            defaults (PCD-1), and after 50 epochs of CD-1 from the same start; from build's
            initial weights (std 2 / sqrt(fan-in)) and from small ones (std 0.01)
  AIS       log Z of the trained model by annealed importance sampling (``--ais-chains`` runs over
            ``--ais-betas`` temperatures) against the exact value: the error in units of AIS's
            own standard error
  gradient  at the trained parameters, the exact gradient of the mean log-likelihood (the model
            term summed over all 2**16 x with weights exp(-F(x)) / Z) against CD-1, CD-10 and
            PCD-1 (averaged over 50 updates of persistent chains at fixed parameters), each with
            ``--negatives`` negative samples: the relative error |g - g_exact| / |g_exact|

Writes results.json (per-seed records, a summary with 95 % t-intervals, provenance) and
rbm_exact.png to --out, atomically; a killed run restarted with the same --out skips finished seeds.
"""

from __future__ import annotations

import argparse
import itertools
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

EPOCHS = 50
SHAPE, MAPS, WINDOW = (1, 4, 4), 4, 2


def data():
    return hc.data.bars_and_stripes(4).astype(np.float64)


def all_inputs():
    return np.array(list(itertools.product([0.0, 1.0], repeat=16))).reshape((-1,) + SHAPE)


def exact_gradient(rbm, X, xs):
    """d/dtheta of the mean log-likelihood of X: data term minus the model term summed over every x."""
    log_p = -rbm.free_energy(xs)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    q = 1 / (1 + np.exp(-rbm.coupling.field(xs)))
    model = rbm._statistics(xs, q * p.reshape((-1,) + (1,) * (q.ndim - 1)))
    model["a"] = np.array([p @ xs.reshape(len(xs), -1).sum(axis=1)])
    data_term = rbm._statistics(X, 1 / (1 + np.exp(-rbm.coupling.field(X))))
    return {k: data_term[k] / len(X) - model[k] for k in data_term}


def relative_error(g, exact):
    diff = np.sqrt(sum(np.sum((g[k] - exact[k]) ** 2) for k in exact))
    return float(diff / np.sqrt(sum(np.sum(exact[k] ** 2) for k in exact)))


def run_cell(cell):
    X = data()
    xs = all_inputs()
    seed = cell["seed"]
    out = {}
    def start(init):
        if init == "build":
            return hc.RBM.build("shared", SHAPE, channels=MAPS, kernel_size=WINDOW, seed=seed)
        w = 0.01 * np.random.default_rng(seed).standard_normal((MAPS, 1, WINDOW, WINDOW))
        return hc.RBM(hc.SharedCoupling(w), SHAPE, seed=seed)

    for init in ("build", "small"):
        rbm = start(init)
        before = rbm.log_likelihood(X)
        rbm.fit(X, epochs=EPOCHS, seed=seed, progress=False)
        cd = start(init)
        cd.fit(X, epochs=EPOCHS, method="cd", seed=seed, progress=False)
        out[init] = {"before": before, "pcd": rbm.log_likelihood(X), "cd1": cd.log_likelihood(X)}
        if init == "build":
            trained = rbm
    log_z = trained.log_partition()
    ais, se = trained.log_partition("ais", n_chains=cell["ais_chains"], n_betas=cell["ais_betas"], seed=seed)
    exact = exact_gradient(trained, X, xs)
    many = np.repeat(X, -(-cell["negatives"] // len(X)), axis=0)
    grads = {f"cd{k}": relative_error(trained.gradient(many, "cd", k=k, seed=seed), exact) for k in (1, 10)}
    chains = trained.sample(len(many), n_steps=0, seed=seed)
    estimates = [trained.gradient(many, "pcd", k=1, chains=chains, seed=seed + 1 + t) for t in range(60)]
    grads["pcd1"] = relative_error({k: np.mean([e[k] for e in estimates[10:]], axis=0) for k in exact}, exact)
    grads["pcd1_single"] = float(np.mean([relative_error(e, exact) for e in estimates[10:]]))
    return {"training": out, "log_z": log_z, "ais": ais, "ais_se": se, "ais_z": (ais - log_z) / se,
            "gradient_relative_error": grads, "optimum": float(np.log(1 / len(X)))}


def summarise(records):
    def stat(values):
        return mean_ci(values)

    s = {"training": {init: {k: stat([r["training"][init][k] for r in records]) for k in ("before", "pcd", "cd1")}
                      for init in ("build", "small")},
         "gain_pcd": {init: stat([r["training"][init]["pcd"] - r["training"][init]["before"] for r in records])
                      for init in ("build", "small")},
         "ais_abs_error": stat([abs(r["ais"] - r["log_z"]) for r in records]),
         "ais_se": stat([r["ais_se"] for r in records]),
         "ais_within_3se": int(sum(abs(r["ais_z"]) < 3 for r in records)),
         "gradient_relative_error": {k: stat([r["gradient_relative_error"][k] for r in records])
                                     for k in records[0]["gradient_relative_error"]},
         "n_seeds": len(records)}
    return s


def figure(out, records, summary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    ax = axes[0]
    for i, init in enumerate(("build", "small")):
        for j, key in enumerate(("before", "cd1", "pcd")):
            values = [r["training"][init][key] for r in records]
            ax.scatter(np.full(len(values), 4 * i + j) + np.linspace(-0.2, 0.2, len(values)), values, s=10,
                       color=("tab:gray", "tab:blue", "tab:red")[j])
    ax.axhline(records[0]["optimum"], color="k", lw=0.5, ls="--")
    ax.set_xticks([0, 1, 2, 4, 5, 6], ["init", "CD-1", "PCD", "init", "CD-1", "PCD"], fontsize=7)
    ax.set_title("exact log-likelihood (left: build's init, right: std 0.01)", fontsize=8)
    ax.set_ylabel("nats per pattern (dashed: log 1/30)")
    z = [r["ais_z"] for r in records]
    axes[1].scatter(range(len(z)), z, color="tab:red")
    axes[1].axhspan(-3, 3, color="0.9")
    axes[1].set_xlabel("seed")
    axes[1].set_ylabel("(AIS - exact) / AIS standard error")
    axes[1].set_title("AIS against exact log Z", fontsize=8)
    keys = list(summary["gradient_relative_error"])
    means = [summary["gradient_relative_error"][k]["mean"] for k in keys]
    cis = [summary["gradient_relative_error"][k]["ci95"] or 0.0 for k in keys]
    axes[2].bar(keys, means, yerr=cis, color=["tab:blue", "tab:cyan", "tab:red", "salmon"], capsize=3)
    axes[2].set_ylabel("|g - g_exact| / |g_exact|")
    axes[2].set_title("gradient estimates at the trained parameters", fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "rbm_exact.png"), dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10, help="number of seeds (seed .. seed + seeds - 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--ais-chains", type=int, default=100)
    p.add_argument("--ais-betas", type=int, default=1000)
    p.add_argument("--negatives", type=int, default=1200, help="negative samples per gradient estimate")
    p.add_argument("--quick", action="store_true", help="3 seeds")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/rbm_exact/<time>)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick and args.seeds == p.get_default("seeds"):
        args.seeds = 3
    for name, low in (("seeds", 1), ("ais_chains", 2), ("ais_betas", 10), ("negatives", 30)):
        if getattr(args, name) < low:
            p.error(f"--{name.replace('_', '-')}: expected an integer >= {low}, got {getattr(args, name)}")
    check_cli_args(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    prov = provenance(args, seed=args.seed)
    out = output_folder(args.out, __file__)
    common = {"ais_chains": args.ais_chains, "ais_betas": args.ais_betas, "negatives": args.negatives}
    cells = [{"seed": args.seed + k, **common} for k in range(args.seeds)]
    results = run_cells(run_cell, cells, CellStore(out), progress=not args.no_progress, desc="rbm_exact")
    records = [{**c, **r} for c, r in zip(cells, results)]
    summary = summarise(records)
    report = {"question": "Do the RBM's estimators (PCD training, AIS, CD/PCD gradients) agree with exact enumeration",
              "model": {"coupling": "shared", "maps": MAPS, "window": WINDOW, "input": list(SHAPE), "epochs": EPOCHS},
              "records": records, "summary": summary, "provenance": {**prov, "wall_time": time.perf_counter() - t0}}
    atomic_write_json(os.path.join(out, "results.json"), report)
    figure(out, records, summary)
    t = summary["training"]
    print(f"\nexact log-likelihood of bars and stripes (optimum {records[0]['optimum']:.2f}), {len(records)} seeds:")
    for init in ("build", "small"):
        print(f"  init {init:5s}: before {t[init]['before']['mean']:.2f}, CD-1 {t[init]['cd1']['mean']:.2f}, "
              f"PCD {t[init]['pcd']['mean']:.2f}")
    print(f"AIS: |error| {summary['ais_abs_error']['mean']:.3f} nats, standard error {summary['ais_se']['mean']:.3f}, "
          f"{summary['ais_within_3se']}/{len(records)} within 3 standard errors")
    print("gradient relative error: " + ", ".join(f"{k} {v['mean']:.3f}"
                                                  for k, v in summary["gradient_relative_error"].items()))
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
