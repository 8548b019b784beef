"""experiments/generative_sharing.py: a tiny run in-process (records, selection, figures, resuming), the
sklearn weights loaded into hc.RBM, and the --quick run itself (slow)."""

import json
import os
import pathlib
import sys

import numpy as np
import pytest

import hamiltonian_cnn as hc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from scripts import load_script  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ("loglik_vs_params.png", "loglik_vs_size.png", "samples.png", "filters.png")


def test_tiny_run_records_selection_figures_and_resume(tmp_path):
    script = load_script("generative_sharing")
    args = ["--out", str(tmp_path), "--no-progress", "--datasets", "cat", "--families", "shared,local,full,sklearn",
            "--sizes", "40,80", "--steps", "20", "--lrs", "0.01,0.03", "--sklearn-lrs", "0.05", "--seeds", "2",
            "--ais-chains", "8", "--ais-betas", "50", "--sample-steps", "5"]
    report = script.main(args)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    records = on_disk["records"]
    assert len(records) == 4 * 2 * 2  # families x sizes x seeds
    assert len(on_disk["selection"]) == 3 * 2  # our families x their learning rates (sklearn: one, no selection)
    for f in {r["family"] for r in records}:
        sel = [s for s in on_disk["selection"] if s["family"] == f]
        lr = next(c["lr"] for c in on_disk["chosen_lr"] if c["family"] == f)
        if sel:
            assert lr == max(sel, key=lambda s: s["log_likelihood"])["lr"]
    params = {r["family"]: r["n_params"] for r in records}
    assert params["shared"] < params["local"] < params["full"] == params["sklearn"]
    assert len({r["n_hidden"] for r in records}) == 1  # matched hidden units
    for r in records:
        assert np.isfinite(r["log_likelihood"]) and r["log_likelihood"] < 0 and r["log_z_se"] >= 0
        rbm = hc.RBM.load(tmp_path / r["model"])
        X_test = script.dataset("cat")[1]
        assert rbm.log_likelihood(X_test, log_z=r["log_z"]) == pytest.approx(r["log_likelihood"])
    for s in on_disk["summary"]:
        lls = [r["log_likelihood"] for r in records if (r["family"], r["n_train"]) == (s["family"], s["n_train"])]
        assert s["n_seeds"] == 2 and np.isclose(s["mean"], np.mean(lls))
    for name in FIGURES:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG and len(data) > 3000
    assert on_disk["provenance"]["arguments"]["steps"] == 20 and report["records"] == records
    cells = sorted((tmp_path / "cells").iterdir())
    stamps = [os.stat(p).st_mtime_ns for p in cells]
    again = script.main(args)
    assert [os.stat(p).st_mtime_ns for p in cells] == stamps
    assert [r["log_likelihood"] for r in again["records"]] == [r["log_likelihood"] for r in records]


def test_sklearn_weights_give_sklearn_free_energy():
    from sklearn.neural_network import BernoulliRBM

    script = load_script("generative_sharing")
    X = script.dataset("cat")[0][:100]
    cell = {"dataset": "cat", "family": "sklearn", "lr": 0.05, "steps": 10, "seed": 0}
    rbm = script.train(cell, X)
    sk = BernoulliRBM(n_components=rbm.n_hidden, learning_rate=0.05, batch_size=script.BATCH, n_iter=2,
                      random_state=0).fit(X.reshape(len(X), -1))
    # sklearn's score_samples is a pseudo-likelihood; its free energy is -a.x - sum softplus(Wx + b), as ours
    np.testing.assert_allclose(rbm.free_energy(X), sk._free_energy(X.reshape(len(X), -1)), rtol=1e-10)


@pytest.mark.slow
def test_quick_run(tmp_path):
    script = load_script("generative_sharing")
    script.main(["--quick", "--no-progress", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "results.json").read_text())
    assert {s["dataset"] for s in report["summary"]} == {"digits", "translated", "cat"}
    assert all((tmp_path / name).stat().st_size > 3000 for name in FIGURES)
