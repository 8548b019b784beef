"""Do sigmoid, tanh and softmax really come out of the sums over configurations?

    python experiments/boltzmann_ensembles.py            # systems up to 2^26 configurations (seconds)
    python experiments/boltzmann_ensembles.py --quick    # a few seconds

Given the field h that a coupling exerts on the feature variables d, the Boltzmann weight is
Q(d) = exp(sum_k d_k h_k) / Z. The state space of d (the ensemble) decides the activation:

    binary   d_k in {0, 1}          <d_k> = sigmoid(h_k)   log Z = sum softplus(h_k)
    spin     d_k in {-1, +1}        <d_k> = tanh(h_k)      log Z = sum log(2 cosh h_k)
    onehot   one site on / channel  <d>   = softmax(h)     log Z = sum_c logsumexp_s h_cs

For random couplings and inputs (the field comes from ``hc.Hamiltonian(hc.SharedCoupling(...))``)
this script visits every configuration of d (``H.enumerate``, the package's Gray-code kernel) and
compares log Z and the marginals with the closed forms; for small systems it also enumerates with
plain numpy (every configuration as a row of a matrix), as an independent check of the kernel.
It checks d log Z / dh = <d> two ways: the complex-step derivative of the closed-form log Z
against the enumerated marginals (exact to rounding), and central finite differences of the
enumerated log Z against the closed-form marginals (exact to the step's truncation error).
It sweeps the field on one unit of a small system and plots the enumerated marginal over the
closed-form curve, and it measures the enumeration rate (configurations per second).

Writes results.json (numbers + provenance) and PNG figures to --out, atomically.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time

import numpy as np
from scipy import special

import hamiltonian_cnn as hc
from hamiltonian_cnn.physics import get_ensemble
from hamiltonian_cnn.physics.ensembles import MAX_CONFIGURATIONS
from hamiltonian_cnn.sweep import (
    atomic_savefig,
    atomic_write_json,
    check_cli_args,
    output_folder,
    print_outputs,
    provenance,
)

ENSEMBLES = ("binary", "spin", "onehot")
ACTIVATION = {"binary": "sigmoid", "spin": "tanh", "onehot": "softmax"}
#: (output channels, output rows, output columns) of the random systems; units = C * rows * cols
SYSTEMS_QUICK = ((1, 2, 2), (2, 2, 3), (3, 2, 3), (4, 2, 3), (8, 2, 3))
SYSTEMS_FULL = SYSTEMS_QUICK[:-1] + ((5, 2, 2), (6, 2, 2), (13, 1, 2), (8, 2, 3), (9, 2, 3))
BRUTE_FORCE_MAX = 2 ** 14  # numpy enumeration (a row per configuration) up to this many configurations


# ---------------------------------------------------------------- closed forms, also for complex h


def closed_log_z(ensemble: str, h: np.ndarray) -> np.ndarray:
    """Textbook closed form of log Z per sample, written so that it also takes complex h (N, C, *sites)."""
    flat = h.reshape(h.shape[0], h.shape[1], -1)
    if ensemble == "binary":
        return np.log(1.0 + np.exp(flat)).sum(axis=(1, 2))
    if ensemble == "spin":
        return np.log(2.0 * np.cosh(flat)).sum(axis=(1, 2))
    return np.log(np.exp(flat).sum(axis=2)).sum(axis=1)


def complex_step_grad(ensemble: str, h: np.ndarray, step: float = 1e-30) -> np.ndarray:
    """d log Z / dh_k = Im log Z(h + i step e_k) / step: a derivative with no cancellation error."""
    n, size = h.shape[0], h[0].size
    grad = np.empty(h.shape)
    flat_grad = grad.reshape(n, size)
    for k in range(size):
        hc_ = h.astype(complex).reshape(n, size)
        hc_[:, k] += 1j * step
        flat_grad[:, k] = closed_log_z(ensemble, hc_.reshape(h.shape)).imag / step
    return grad


def brute_force(ensemble: str, h: np.ndarray):
    """(log Z, marginals) with every configuration as one row of a matrix (independent of the kernel)."""
    n, n_ch = h.shape[0], h.shape[1]
    flat = h.reshape(n, -1)
    if ensemble in ("binary", "spin"):
        states = (0.0, 1.0) if ensemble == "binary" else (-1.0, 1.0)
        D = np.array(list(itertools.product(states, repeat=flat.shape[1])))  # (configs, K)
    else:
        sites = flat.shape[1] // n_ch
        D = np.zeros((sites ** n_ch, n_ch, sites))
        for row, choice in enumerate(itertools.product(range(sites), repeat=n_ch)):
            D[row, np.arange(n_ch), choice] = 1.0
        D = D.reshape(len(D), -1)
    A = flat @ D.T  # (N, configs): log-weights -H(d)
    log_z = special.logsumexp(A, axis=1)
    p = np.exp(A - log_z[:, None])
    return log_z, (p @ D).reshape(h.shape)


# ---------------------------------------------------------------- the checks


def random_system(shape, n_samples, rng, scale):
    """A Hamiltonian over a random 2x2 shared coupling with ``shape`` = (C, rows, cols) output units,
    and ``n_samples`` random inputs."""
    c, rows, cols = shape
    coupling = hc.SharedCoupling(rng.normal(scale=scale, size=(c, 1, 2, 2)), rng.normal(scale=scale, size=c))
    x = rng.normal(size=(n_samples, 1, rows + 1, cols + 1))
    return coupling, x


def check_system(ensemble: str, shape, n_samples, rng, scale, fd_step):
    coupling, x = random_system(shape, n_samples, rng, scale)
    H = hc.Hamiltonian(coupling, ensemble)
    h = H.field(x)
    n_conf = H.ensemble.n_configurations(h.shape[1:])
    row = {"ensemble": ensemble, "activation": ACTIVATION[ensemble], "units": int(h[0].size),
           "shape": list(h.shape[1:]), "configurations": int(n_conf), "samples": n_samples}
    if n_conf > MAX_CONFIGURATIONS:
        row["skipped"] = f"{n_conf:.3g} configurations > 2**26"
        return row
    t = time.perf_counter()
    log_z, marg = H.enumerate(x)
    dt = time.perf_counter() - t
    row["enumeration_seconds"] = dt
    row["log_z_max_error"] = float(np.abs(log_z - H.log_partition(x)).max())
    row["log_z_max_rel_error"] = float((np.abs(log_z - H.log_partition(x)) / np.abs(log_z)).max())
    row["marginal_max_error"] = float(np.abs(marg - H.marginals(x)).max())
    row["log_z_range"] = [float(log_z.min()), float(log_z.max())]
    # which side is off, if any: both against the closed form evaluated in extended precision
    exact = closed_log_z(ensemble, h.astype(np.longdouble))
    row["enumeration_vs_longdouble_log_z_error"] = float(np.abs(log_z - exact).max())
    row["closed_form_vs_longdouble_log_z_error"] = float(np.abs(H.log_partition(x) - exact).max())
    # d log Z / dh = <d>: complex step on the closed form vs the enumerated marginals (to rounding)
    row["dlogz_dh_complex_step_max_error"] = float(np.abs(complex_step_grad(ensemble, h) - marg).max())
    if n_conf <= BRUTE_FORCE_MAX:
        bz, bm = brute_force(ensemble, h)
        row["bruteforce_log_z_max_error"] = float(np.abs(bz - log_z).max())
        row["bruteforce_marginal_max_error"] = float(np.abs(bm - marg).max())
        # d log Z / dh by central differences of the *enumerated* log Z vs the closed-form marginals
        ens = H.ensemble
        flat = h.reshape(h.shape[0], -1)
        fd = np.empty_like(flat)
        for k in range(flat.shape[1]):
            up, down = flat.copy(), flat.copy()
            up[:, k] += fd_step
            down[:, k] -= fd_step
            fd[:, k] = (ens.enumerate(up.reshape(h.shape))[0] - ens.enumerate(down.reshape(h.shape))[0]) / (2 * fd_step)
        row["dlogz_dh_finite_difference_max_error"] = float(np.abs(fd.reshape(h.shape) - H.marginals(x)).max())
        row["finite_difference_step"] = fd_step
    return row


def sweep(ensemble: str, units: int, h_values, rng):
    """Sweep the field on unit 0 of a ``units``-unit system (other fields fixed, random)."""
    # binary / spin: ``units`` sites in one channel; onehot: two channels ("cats") of ``units`` sites
    # each, so the sum also runs over a channel that must drop out of unit 0's marginal
    channels = 2 if ensemble == "onehot" else 1
    base = rng.normal(size=(channels, units))
    h = np.tile(base, (len(h_values), 1, 1))
    h[:, 0, 0] = h_values
    ens = get_ensemble(ensemble)
    _, marg = ens.enumerate(h)
    closed = ens.marginals(h)
    return {"h": np.asarray(h_values).tolist(), "other_fields": base[0, 1:].tolist(), "shape": [channels, units],
            "enumerated": marg[:, 0, 0].tolist(), "closed_form": closed[:, 0, 0].tolist(),
            "abs_error": np.abs(marg[:, 0, 0] - closed[:, 0, 0]).tolist(),
            "max_error": float(np.abs(marg - closed).max()),
            "configurations": int(ens.n_configurations((channels, units)))}


def enumeration_rate(ensemble: str, units: int, rng, repeats: int = 3):
    """Configurations per second of the exact enumeration (one sample, so one thread)."""
    ens = get_ensemble(ensemble)
    if ensemble == "onehot":
        channels, sites = units
        h = rng.normal(size=(1, channels, sites))
        ens.enumerate(h[:, :1, :2])  # compile outside the timing
    else:
        h = rng.normal(size=(1, units))
        ens.enumerate(h[:, :2])
    n_conf = ens.n_configurations(h.shape[1:])
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        log_z, _ = ens.enumerate(h)
        best = min(best, time.perf_counter() - t)
    return {"ensemble": ensemble, "shape": list(h.shape[1:]), "configurations": int(n_conf), "seconds": best,
            "configurations_per_second": n_conf / best,
            "log_z_error": float(abs(log_z[0] - ens.log_partition(h)[0])), "threads": 1}


# ---------------------------------------------------------------- figures


def figures(out, sweeps, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for j, ensemble in enumerate(ENSEMBLES):
        s = sweeps[ensemble]
        h = np.array(s["h"])
        fine = np.linspace(h.min(), h.max(), 400)
        others = np.array(s["other_fields"])
        if ensemble == "binary":
            curve, label = special.expit(fine), r"$\sigma(h_0)$"
        elif ensemble == "spin":
            curve, label = np.tanh(fine), r"$\tanh(h_0)$"
        else:
            curve = np.exp(fine - np.logaddexp(fine, special.logsumexp(others)))
            label = r"softmax$(h)_0$"
        ax = axes[0, j]
        ax.plot(fine, curve, color="C0", lw=2, label=f"closed form {label}")
        ax.plot(h, s["enumerated"], "o", color="C3", ms=4, mfc="none",
                label=f"sum over {s['configurations']} configurations")
        ax.set_title(f"{ensemble}: " + {"binary": r"$d_k\in\{0,1\}$", "spin": r"$d_k\in\{-1,+1\}$",
                                          "onehot": "one site on"}[ensemble])
        ax.set_ylabel(r"$\langle d_0\rangle$")
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        err = np.maximum(np.array(s["abs_error"]), 1e-18)
        axes[1, j].semilogy(h, err, ".", color="C3")
        axes[1, j].axhline(np.finfo(float).eps, color="k", ls=":", lw=1, label="machine epsilon")
        axes[1, j].set_ylim(1e-19, 1e-13)
        axes[1, j].set_xlabel(r"field on unit 0, $h_0$")
        axes[1, j].set_ylabel("|enumerated - closed|\n(0 drawn at 1e-18)", fontsize=9)
        axes[1, j].legend(fontsize=8)
        axes[1, j].grid(alpha=0.3)
    fig.suptitle("The activation is a sum over configurations: sigmoid, tanh and softmax by exact enumeration")
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "ensembles.png"), dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    markers = {"binary": "o", "spin": "s", "onehot": "^"}
    colors = {"binary": "C0", "spin": "C2", "onehot": "C3"}
    for ensemble in ENSEMBLES:
        done = sorted((r for r in rows if r["ensemble"] == ensemble and "skipped" not in r),
                      key=lambda r: r["configurations"])
        n = [r["configurations"] for r in done]
        ax.loglog(n, [max(r["marginal_max_error"], 1e-18) for r in done], markers[ensemble] + "-",
                  color=colors[ensemble], label=f"{ensemble}: marginals", mfc="none")
        ax.loglog(n, [max(r["log_z_max_error"], 1e-18) for r in done], markers[ensemble] + "--",
                  color=colors[ensemble], label=f"{ensemble}: log Z", alpha=0.6)
    ax.axhline(1e-12, color="k", ls=":", lw=1, label="1e-12")
    ax.set_xlabel("configurations visited per sample")
    ax.set_ylabel("max |enumerated - closed form|  (0 at 1e-18)")
    ax.set_title("Enumeration error against the number of configurations")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    atomic_savefig(fig, os.path.join(out, "enumeration_error.png"), dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=4, help="random inputs per system")
    p.add_argument("--scale", type=float, default=1.0, help="std of the random couplings and biases")
    p.add_argument("--sweep-units", type=int, default=6, help="units of the system whose field is swept")
    p.add_argument("--points", type=int, default=41, help="field values in the sweep")
    p.add_argument("--rate-units", type=int, default=None, help="units for the rate measurement (default 24; "
                                                                "--quick 20)")
    p.add_argument("--fd-step", type=float, default=1e-5, help="finite-difference step for d log Z / dh")
    p.add_argument("--quick", action="store_true", help="smaller systems and rate run: a few seconds")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/boltzmann_ensembles/<time>)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    check_cli_args(p, args, finite=("scale", "fd_step"))
    args.rate_units = (20 if args.quick else 24) if args.rate_units is None else args.rate_units
    if not 2 <= args.rate_units <= 26:
        p.error(f"--rate-units: expected 2..26, got {args.rate_units}")
    if not 2 <= args.sweep_units <= 20:
        p.error(f"--sweep-units: expected 2..20, got {args.sweep_units}")
    if args.samples < 1 or args.points < 2 or args.fd_step <= 0 or args.scale <= 0:
        p.error("--samples >= 1, --points >= 2, --fd-step > 0 and --scale > 0 are required")
    return args


def main(argv=None):
    from tqdm.auto import tqdm

    args = parse_args(argv)
    t0 = time.perf_counter()
    out = output_folder(args.out, __file__)
    rng = np.random.default_rng(args.seed)
    systems = SYSTEMS_QUICK if args.quick else SYSTEMS_FULL
    jobs = [(e, s) for s in systems for e in ENSEMBLES]
    rows = []
    for ensemble, shape in tqdm(jobs, desc="enumerating", disable=args.no_progress, unit="system"):
        rows.append(check_system(ensemble, shape, args.samples, rng, args.scale, args.fd_step))
    h_values = np.linspace(-6.0, 6.0, args.points)
    sweeps = {e: sweep(e, args.sweep_units, h_values, rng) for e in ENSEMBLES}
    rates = {"binary": enumeration_rate("binary", args.rate_units, rng),
             "spin": enumeration_rate("spin", args.rate_units, rng),
             "onehot": enumeration_rate("onehot", (args.rate_units // 3, 8), rng)}

    done = [r for r in rows if "skipped" not in r]
    per_ensemble = {}
    for e in ENSEMBLES:
        rs = [r for r in done if r["ensemble"] == e]
        per_ensemble[e] = {
            "activation": ACTIVATION[e],
            "systems": len(rs),
            "max_configurations": max(r["configurations"] for r in rs),
            "marginal_max_error": max(r["marginal_max_error"] for r in rs),
            "log_z_max_error": max(r["log_z_max_error"] for r in rs),
            "dlogz_dh_complex_step_max_error": max(r["dlogz_dh_complex_step_max_error"] for r in rs),
            "dlogz_dh_finite_difference_max_error": max(r.get("dlogz_dh_finite_difference_max_error", 0.0) for r in rs),
            "bruteforce_max_error": max(max(r.get("bruteforce_log_z_max_error", 0.0),
                                            r.get("bruteforce_marginal_max_error", 0.0)) for r in rs),
            "sweep_max_error": sweeps[e]["max_error"],
            "configurations_per_second": rates[e]["configurations_per_second"],
        }
    summary = {
        "marginal_max_error": max(v["marginal_max_error"] for v in per_ensemble.values()),
        "log_z_max_error": max(v["log_z_max_error"] for v in per_ensemble.values()),
        "dlogz_dh_complex_step_max_error": max(v["dlogz_dh_complex_step_max_error"] for v in per_ensemble.values()),
        "dlogz_dh_finite_difference_max_error": max(v["dlogz_dh_finite_difference_max_error"]
                                                    for v in per_ensemble.values()),
        "bruteforce_max_error": max(v["bruteforce_max_error"] for v in per_ensemble.values()),
        "sweep_max_error": max(s["max_error"] for s in sweeps.values()),
        "configurations_visited": int(sum(r["configurations"] * r["samples"] for r in done)),
        "max_configurations": max(r["configurations"] for r in done),
    }
    report = {
        "question": "Do sigmoid / tanh / softmax and their log Z follow exactly from summing the Boltzmann "
                    "weights over every configuration of the binary / spin / one-hot ensembles?",
        "summary": summary,
        "per_ensemble": per_ensemble,
        "systems": rows,
        "sweep": sweeps,
        "rate": rates,
        "provenance": provenance(args, seed=args.seed, wall_time=time.perf_counter() - t0),
    }
    atomic_write_json(os.path.join(out, "results.json"), report)
    figures(out, sweeps, rows)

    print("\nensemble  activation  systems  max configs   max|marg err|  max|logZ err|  dlogZ/dh (cstep)  "
          "dlogZ/dh (fd)  config/s")
    for e, v in per_ensemble.items():
        print(f"{e:8s}  {v['activation']:10s}  {v['systems']:7d}  {v['max_configurations']:11d}   "
              f"{v['marginal_max_error']:12.1e}  {v['log_z_max_error']:12.1e}  "
              f"{v['dlogz_dh_complex_step_max_error']:15.1e}  {v['dlogz_dh_finite_difference_max_error']:12.1e}  "
              f"{v['configurations_per_second']:.3g}")
    for r in rows:
        if "skipped" in r:
            print(f"  skipped {r['ensemble']} over units {tuple(r['shape'])}: {r['skipped']}")
    print(f"sweep of h_0 over {args.points} values: max error {summary['sweep_max_error']:.1e}")
    print_outputs(out, t0)
    return report


if __name__ == "__main__":
    main()
